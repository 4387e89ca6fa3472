/* upgate-keys: what the commands share: options, the secret keys' registry, files, version 2 objects. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "keys.h"

#define OPTS_MAX 32u

void keys_getopt(int argc, char **argv, const keys_opt *spec, size_t n, keys_val *vals)
{
    struct option lo[OPTS_MAX + 1];
    if (n > OPTS_MAX)
        ug_die(UG_EXIT_FAIL, "internal: too many options");
    for (size_t i = 0; i < n; i++)
        lo[i] = (struct option){spec[i].name, spec[i].flag ? no_argument : required_argument, NULL, (int)i + 1};
    lo[n] = (struct option){NULL, 0, NULL, 0};
    memset(vals, 0, n * sizeof *vals);
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c < 1 || (size_t)c > n)
            ug_usage_error("unexpected or incomplete option %s", argv[optind - 1]);
        const keys_opt *o = &spec[c - 1];
        keys_val *v = &vals[c - 1];
        if (v->n && !o->many)
            ug_usage_error("option given twice: --%s", o->name);
        if (v->n == KEYS_VALS_MAX)
            ug_usage_error("--%s: at most %u values", o->name, KEYS_VALS_MAX);
        v->v[v->n++] = o->flag ? "1" : optarg;
    }
    if (optind != argc)
        ug_usage_error("unexpected argument %s", argv[optind]);
}

uint64_t keys_u64(const keys_val *v, const char *flag, uint64_t min, uint64_t max, uint64_t def)
{
    uint64_t x;
    if (!v->n)
        return def;
    if (ug_parse_u64(v->v[0], min, max, &x) != 0)
        ug_usage_error("--%s: not a number %llu..%llu: %s", flag, (unsigned long long)min, (unsigned long long)max,
                       v->v[0]);
    return x;
}

/* ---- secrets -------------------------------------------------------- */

#define SECRETS_MAX 32u
static uint8_t *secrets[SECRETS_MAX];
static unsigned nsecrets;

void keys_secrets_wipe(void)
{
    for (unsigned i = 0; i < nsecrets; i++) {
        ug_secret_free(secrets[i]); /* sodium_free wipes before it frees */
        secrets[i] = NULL;
    }
    nsecrets = 0;
}

uint8_t *keys_secret(const char *path)
{
    char why[256] = "";
    if (nsecrets == SECRETS_MAX)
        ug_die(UG_EXIT_FAIL, "%s: at most %u secret keys at once", path, SECRETS_MAX);
    uint8_t *sk = ug_seckey_load(path, why, sizeof why);
    if (!sk)
        ug_die(UG_EXIT_FAIL, "%s: %s", path, why);
    secrets[nsecrets++] = sk;
    return sk;
}

/* ---- files ---------------------------------------------------------- */

void keys_public(const char *path, uint8_t pk[UG_PK_LEN])
{
    char why[256] = "";
    if (ug_pubkey_read(path, pk, why, sizeof why) != 0)
        ug_die(UG_EXIT_FAIL, "%s: %s", path, why);
}

size_t keys_read(const char *path, uint8_t *buf, size_t cap)
{
    char why[256] = "";
    size_t len = 0;
    if (ug_file_read(path, buf, cap, &len, why, sizeof why) != 0)
        ug_die(UG_EXIT_FAIL, "%s: %s", path, why);
    return len;
}

void keys_write(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        ug_die(UG_EXIT_FAIL, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        ug_die(UG_EXIT_FAIL, "%s: %s", tmp, strerror(errno));
    if (ug_write_all(fd, data, len) != 0 || fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        ug_die(UG_EXIT_FAIL, "%s: %s", path, strerror(e));
    }
}

const char *keys_shown(const char *s, char *out, size_t cap)
{
    size_t used = 0, i = 0;
    for (; s[i] && i < 64 && used + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"')
            out[used++] = (char)c;
        else
            used += (size_t)snprintf(out + used, cap - used, "\\x%02x", c);
    }
    if (s[i] && used + 4 <= cap)
        memcpy(out + used, "...", 3), used += 3;
    out[used] = 0;
    return out;
}

void keys_hash_file(const char *path, uint64_t *size, uint8_t hash[UG_HASH_LEN])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        ug_die(UG_EXIT_FAIL, "%s: %s", path, strerror(errno));
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, UG_HASH_LEN);
    uint8_t buf[65536];
    *size = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            ug_die(UG_EXIT_FAIL, "%s: %s", path, strerror(errno));
        if (n == 0)
            break;
        crypto_generichash_update(&st, buf, (size_t)n);
        *size += (uint64_t)n;
    }
    close(fd);
    crypto_generichash_final(&st, hash, UG_HASH_LEN);
}

/* ---- version 2 objects ---------------------------------------------- */

const char *keys_ctx(keys_kind k)
{
    return k == KIND_KEYRING ? UG2_CTX_KEYRING : k == KIND_CERT ? UG2_CTX_CERT : UG2_CTX_RELEASE;
}

const char *keys_kind_name(keys_kind k)
{
    return k == KIND_KEYRING ? "keyring" : k == KIND_CERT ? "hint certificate" : "release manifest (v2)";
}

/* The kind of a body: its key set tells (each decoder is strict). */
static keys_kind body_kind(keys_obj *o, ug_err *first)
{
    ug_err e[3] = {UG_OK, UG_OK, UG_OK};
    if (ug2_keyring_decode(&o->u.kr, o->body, o->body_len, &e[0]) == 0)
        return KIND_KEYRING;
    if (ug2_cert_decode(&o->u.cert, o->body, o->body_len, &e[1]) == 0)
        return KIND_CERT;
    if (ug2_manifest_decode(&o->u.man, o->body, o->body_len, &e[2]) == 0)
        return KIND_MANIFEST;
    /* the most specific reason: a body that got past the schema of one kind */
    *first = e[0];
    for (int i = 0; i < 3; i++)
        if (e[i] != UG_E_SCHEMA && e[i] != UG_E_MSGPACK && e[i] != UG_E_SIZE)
            *first = e[i];
    return KIND_NONE;
}

void keys_obj_read(keys_obj *o, const char *path)
{
    memset(o, 0, sizeof *o);
    o->raw_len = keys_read(path, o->raw, sizeof o->raw);
    ug_err e = UG_OK;
    if (ug2_multisig_decode(&o->ms, o->raw, o->raw_len, UG2_KEYRING_MAX, &e) == 0) {
        o->body = o->ms.body;
        o->body_len = o->ms.body_len;
    } else {
        o->is_body = true;
        o->body = o->raw;
        o->body_len = o->raw_len;
    }
    ug_err why = e;
    o->kind = body_kind(o, &why);
    if (o->kind == KIND_NONE)
        ug_die(UG_EXIT_FAIL, "%s: not a keyring, hint certificate or release manifest (v2), signed or not (%s)",
               path, ug_err_name(why));
    if (!o->is_body && o->kind != KIND_KEYRING && o->raw_len > UG_OBJ_MAX)
        ug_die(UG_EXIT_FAIL, "%s: %zu bytes, over the %u-byte cap of a %s", path, o->raw_len, UG_OBJ_MAX,
               keys_kind_name(o->kind));
}

void keys_keyring_read(keys_obj *o, const char *path, const char *flag)
{
    keys_obj_read(o, path);
    if (o->kind != KIND_KEYRING)
        ug_die(UG_EXIT_FAIL, "--%s %s: a %s, not a keyring", flag, path, keys_kind_name(o->kind));
}

const ug_pubkey *keys_list_of(const ug2_keyring *k, keys_kind kind, unsigned *n, unsigned *t)
{
    switch (kind) {
    case KIND_CERT: *n = k->ncert, *t = k->cert_t; return k->cert;
    case KIND_MANIFEST: *n = k->nrel, *t = k->rel_t; return k->rel;
    default: *n = k->nroot, *t = k->root_t; return k->root;
    }
}

void keys_emit(const char *out, keys_kind kind, const uint8_t *body, size_t body_len, const keys_val *keys)
{
    uint8_t obj[UG2_KEYRING_MAX];
    size_t len = 0;
    size_t cap = kind == KIND_KEYRING ? UG2_KEYRING_MAX : UG_OBJ_MAX;
    if (keys->n == 0) {
        keys_write(out, body, body_len);
        printf("%s: unsigned %s body, %zu bytes: each holder runs `upgate-keys sign`, then one `combine`s\n", out,
               keys_kind_name(kind), body_len);
        return;
    }
    const uint8_t *sks[KEYS_VALS_MAX];
    for (unsigned i = 0; i < keys->n; i++) {
        sks[i] = keys_secret(keys->v[i]);
        for (unsigned j = 0; j < i; j++)
            if (sodium_memcmp(sks[i] + UG_SEED_LEN, sks[j] + UG_SEED_LEN, UG_PK_LEN) == 0)
                ug_die(UG_EXIT_USAGE, "--key %s: the same key as --key %s", keys->v[i], keys->v[j]);
    }
    int rc = ug2_multisig_sign(obj, cap, &len, keys_ctx(kind), body, body_len, sks, keys->n);
    keys_secrets_wipe();
    if (rc != 0)
        ug_die(UG_EXIT_FAIL, "%s: the signed %s does not fit %zu bytes", out, keys_kind_name(kind), cap);
    ug2_multisig m;
    if (ug2_multisig_decode(&m, obj, len, cap, NULL) != 0)
        ug_die(UG_EXIT_FAIL, "%s: internal: the signed object does not decode", out);
    keys_write(out, obj, len);
    printf("%s: %s, %zu bytes, %u signature%s\n", out, keys_kind_name(kind), len, keys->n, keys->n == 1 ? "" : "s");
}
