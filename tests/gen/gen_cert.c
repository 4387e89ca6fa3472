/* cert.json and manifest.json: hint certificates and manifests under a keyring. */
#include <string.h>

#include "gen.h"
#include "mp.h"

static uint8_t obj[GEN_BUF];

static json_t *cert_vec(json_t *arr, const char *name, ug_err want, const ug2_cert *c, const gen_sig *s, size_t n,
                        gen_edit edit)
{
    return gen_vec(arr, name, want, obj, gen_cert_obj(obj, sizeof obj, c, s, n, edit));
}

static void ed_kid(gen_map *m) { gm_set_hex(m, "kid", "c4080000000000000000"); }
static void ed_unknown(gen_map *m) { gm_set_uint(m, "foo", 1); }
static void ed_serial16(gen_map *m) { gm_set_hex(m, "serial", "cd0007"); }
static void ed_no_nbf(gen_map *m) { gm_del(m, "nbf"); }
static void ed_kv0(gen_map *m) { gm_set_uint(m, "kv", 0); }
static void ed_pk31(gen_map *m) { gm_set_hex(m, "pk", "c41f00000000000000000000000000000000000000000000000000000000000000"); }

static void certs_ok(json_t *arr)
{
    ug2_cert c;
    gen_cert_default(&c);
    cert_vec(arr, "valid certificate (serial 7, tracker eu-1)", UG_OK, &c, NULL, 0, NULL);
    c.trk[0] = 0;
    cert_vec(arr, "valid certificate naming no tracker", UG_OK, &c, NULL, 0, NULL);
    gen_cert_default(&c);
    c.exp = c.nbf + 90 * DAY;
    cert_vec(arr, "valid for exactly 90 days", UG_OK, &c, NULL, 0, NULL);
    gen_cert_default(&c);
    gen_sig both[] = {SG(K_CERT1), SG(K_CERT2)};
    json_t *v = cert_vec(arr, "threshold 2, both certificate keys", UG_OK, &c, both, 2, NULL);
    json_object_set_new(v, "peer", json_pack("{s:s}", "keyring", "kr3-t2"));
    gen_sig extra[] = {SG(K_STRANGER), SG(K_CERT2)};
    cert_vec(arr, "a stranger's entry ignored, cert2's counts", UG_OK, &c, extra, 2, NULL);
    c.nbf = NOW + 10;
    c.exp = NOW + 30 * DAY;
    v = cert_vec(arr, "not valid before now+10, at a signed time of now+20", UG_OK, &c, NULL, 0, NULL);
    json_object_set_new(v, "ts", json_integer((json_int_t)(NOW + 20)));
    gen_cert_default(&c);
    v = cert_vec(arr, "a peer configured with no tracker name takes any", UG_OK, &c, NULL, 0, NULL);
    json_object_set_new(v, "peer", json_pack("{s:s}", "tracker", ""));
    c.serial = 5;
    cert_vec(arr, "serial equal to the minimum", UG_OK, &c, NULL, 0, NULL);
}

static void certs_refused(json_t *arr)
{
    ug2_cert c;
    gen_cert_default(&c);
    c.kv = 4;
    json_t *v = cert_vec(arr, "issued under keyring 4, the peer holds 3", UG_E_KEYRING, &c, NULL, 0, NULL);
    json_object_set_new(v, "need_kv", json_integer(4));
    gen_cert_default(&c);
    gen_sig st[] = {SG(K_STRANGER)}, hk[] = {SG(K_HINT1)}, one[] = {SG(K_CERT1)},
            dup[] = {SG(K_CERT1), SG(K_CERT1)}, pl[] = {{K_CERT1, -1, 1}};
    cert_vec(arr, "signed by a stranger", UG_E_THRESHOLD, &c, st, 1, NULL);
    cert_vec(arr, "signed by the hint key itself", UG_E_THRESHOLD, &c, hk, 1, NULL);
    cert_vec(arr, "certificate key signature with S + L", UG_E_THRESHOLD, &c, pl, 1, NULL);
    v = cert_vec(arr, "threshold 2, one signature short", UG_E_THRESHOLD, &c, one, 1, NULL);
    json_object_set_new(v, "peer", json_pack("{s:s}", "keyring", "kr3-t2"));
    v = cert_vec(arr, "threshold 2, the same key twice", UG_E_THRESHOLD, &c, dup, 2, NULL);
    json_object_set_new(v, "peer", json_pack("{s:s}", "keyring", "kr3-t2"));
    c.exp = c.nbf + 90 * DAY + 1;
    cert_vec(arr, "valid for 90 days and a second", UG_E_LIFETIME, &c, NULL, 0, NULL);
    c.exp = c.nbf;
    cert_vec(arr, "exp equal to nbf", UG_E_LIFETIME, &c, NULL, 0, NULL);
    gen_cert_default(&c);
    c.serial = 4;
    cert_vec(arr, "serial 4 below the keyring's minimum 5 (revoked)", UG_E_REVOKED, &c, NULL, 0, NULL);
    gen_cert_default(&c);
    v = cert_vec(arr, "serial 7 below a minimum 8 learned from a manifest", UG_E_REVOKED, &c, NULL, 0, NULL);
    json_object_set_new(v, "peer", json_pack("{s:I}", "min_serial", (json_int_t)8));
    c.nbf = NOW + 10;
    cert_vec(arr, "not valid before now+10, signed time now", UG_E_NOT_YET, &c, NULL, 0, NULL);
    gen_cert_default(&c);
    c.exp = NOW;
    cert_vec(arr, "expired (exp = now)", UG_E_EXPIRED, &c, NULL, 0, NULL);
    gen_cert_default(&c);
    v = cert_vec(arr, "expired at the peer's clock floor", UG_E_EXPIRED, &c, NULL, 0, NULL);
    json_object_set_new(v, "peer", json_pack("{s:I}", "floor", (json_int_t)(NOW + 60 * DAY)));
    v = cert_vec(arr, "expired at its own signed time", UG_E_EXPIRED, &c, NULL, 0, NULL);
    json_object_set_new(v, "ts", json_integer((json_int_t)(NOW + 60 * DAY)));
    memcpy(c.trk, "us-2", 5);
    cert_vec(arr, "for tracker us-2, the peer asked eu-1", UG_E_TRACKER, &c, NULL, 0, NULL);
    memcpy(c.trk, "eu 1", 5);
    cert_vec(arr, "tracker name with a space", UG_E_STRING, &c, NULL, 0, NULL);
    gen_cert_default(&c);
    static const struct {
        const char *name;
        gen_edit edit;
        ug_err want;
    } e[] = {
        {"kid not the hint key's", ed_kid, UG_E_SCHEMA},   {"unknown key", ed_unknown, UG_E_SCHEMA},
        {"serial as a uint16 (non-canonical)", ed_serial16, UG_E_MSGPACK}, {"nbf missing", ed_no_nbf, UG_E_SCHEMA},
        {"kv 0", ed_kv0, UG_E_SCHEMA},                     {"a hint key of 31 bytes", ed_pk31, UG_E_SCHEMA},
    };
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++)
        cert_vec(arr, e[i].name, e[i].want, &c, NULL, 0, e[i].edit);
    size_t n = gen_cert_obj(obj, sizeof obj, &c, NULL, 0, NULL);
    obj[n - 78] = 0x90; /* the entries' array, before its one entry of 1 + 10 + 66 bytes */
    gen_vec(arr, "no signature entry", UG_E_SCHEMA, obj, n - 77);
}

void gen_file_cert(const char *dir)
{
    json_t *arr = json_array();
    certs_ok(arr);
    certs_refused(arr);
    json_t *j = json_pack("{s:s, s:o, s:o, s:o}", "note",
                          "a peer with this state (keyring named from `keyrings`, `min_serial` learned, clock "
                          "max(now, floor)) judges each certificate at the signed time `ts` (default now)",
                          "keyrings", gen_keyrings(), "peer", gen_peer_ctx(), "vectors", arr);
    gen_write(dir, "cert.json", j);
}
