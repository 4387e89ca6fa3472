/* upgate-keys show: what a version 2 object or body says, one field a line. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "keys.h"
#include "render.h"

static void kid_line(const char *what, const uint8_t kid[UG_KID_LEN])
{
    char hex[2 * UG_KID_LEN + 1];
    printf("%s %s\n", what, sodium_bin2hex(hex, sizeof hex, kid, UG_KID_LEN));
}

void keys_time_line(const char *what, uint64_t t)
{
    char when[64];
    printf("%s %s\n", what, ug_render_time(t > INT64_MAX ? -1 : (int64_t)t, when, sizeof when));
}

static void keys_lines(const char *what, const ug_pubkey *k, unsigned n, unsigned t)
{
    printf("%s_threshold %u\n", what, t);
    for (unsigned i = 0; i < n; i++)
        kid_line(what, k[i].kid);
}

static void show_keyring(const ug2_keyring *k)
{
    printf("kv %u\n", k->kv);
    keys_time_line("exp", k->exp);
    keys_lines("root", k->root, k->nroot, k->root_t);
    keys_lines("release", k->rel, k->nrel, k->rel_t);
    keys_lines("cert", k->cert, k->ncert, k->cert_t);
    printf("min_serial %llu\n", (unsigned long long)k->min_serial);
    for (unsigned i = 0; i < k->nurls; i++)
        printf("url %s\n", k->urls[i]);
}

static void show_cert(const ug2_cert *c)
{
    kid_line("hint_kid", c->kid);
    printf("serial %llu\n", (unsigned long long)c->serial);
    keys_time_line("nbf", c->nbf);
    keys_time_line("exp", c->exp);
    printf("kv %u\n", c->kv);
    if (c->trk[0])
        printf("tracker %s\n", c->trk);
}

static void show_manifest(const ug2_manifest *m)
{
    char ver[UG_VER_MAX + 1], hex[2 * UG_HASH_LEN + 1];
    if (ug_version_format(&m->to, ver, sizeof ver) != 0)
        ver[0] = 0;
    printf("to %s\nsize %llu\nhash %s\n", ver, (unsigned long long)m->size,
           sodium_bin2hex(hex, sizeof hex, m->hash, UG_HASH_LEN));
    keys_time_line("exp", m->exp);
    printf("app %s\n", m->app);
    for (unsigned i = 0; i < m->nplat; i++)
        printf("plat %s\n", m->plat[i]);
    printf("chan %s\nseq %llu\nurgency %s\n", m->chan, (unsigned long long)m->seq,
           m->urgency == UG2_URGENCY_CRITICAL ? "critical" : "normal");
    if (m->downgrade)
        printf("downgrade true\n");
    if (m->min_serial)
        printf("min_serial %llu\n", (unsigned long long)m->min_serial);
    for (unsigned i = 0; i < m->nurls; i++)
        printf("url %s\n", m->urls[i]);
    for (unsigned i = 0; i < m->ndeltas; i++) {
        if (ug_version_format(&m->deltas[i].from, ver, sizeof ver) != 0)
            ver[0] = 0;
        printf("delta from %s, %llu bytes\n", ver, (unsigned long long)m->deltas[i].size);
    }
    for (unsigned i = 0; i < m->nkeyring; i++)
        printf("keyring_url %s\n", m->keyring[i]);
}

int keys_show2(const char *path)
{
    static keys_obj o;
    keys_obj_read(&o, path);
    printf("kind %s%s\n", keys_kind_name(o.kind), o.is_body ? " (unsigned body)" : "");
    if (o.kind == KIND_KEYRING)
        show_keyring(&o.u.kr);
    else if (o.kind == KIND_CERT)
        show_cert(&o.u.cert);
    else
        show_manifest(&o.u.man);
    for (unsigned i = 0; !o.is_body && i < o.ms.nsigs; i++)
        kid_line("signed_by", o.ms.kid[i]);
    return 0;
}
