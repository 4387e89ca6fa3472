/* The single-pass decoders against the oracle (fuzz/oracle: the old
 * msgpack-c path): same verdict, reason and fields on every vector, every
 * committed fuzz corpus input, and every one-byte change and truncation of
 * the valid vectors. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "../fuzz/oracle/oracle.h"
#include "testutil.h"

static void init(void)
{
    cr_assert(sodium_init() >= 0);
}

TestSuite(oracle, .init = init, .timeout = 120);

static void agree(const uint8_t *buf, size_t len, const char *what)
{
    or_msg m;
    const char *d = or_cmp_all(buf, len, &m);
    cr_assert_null(d, "%s: %s", what, d);
}

/* Every hex string of a vectors file's arrays "vectors" and "unsigned_replies". */
static size_t each_vector(const char *file, void (*fn)(const uint8_t *, size_t, const char *))
{
    json_t *j = tu_vectors(file);
    static const char *const arrays[] = {"vectors", "unsigned_replies"};
    size_t n = 0;
    for (size_t a = 0; a < 2; a++) {
        json_t *v;
        size_t i;
        json_array_foreach(json_object_get(j, arrays[a]), i, v) {
            uint8_t buf[4096];
            size_t len = tu_unhex(json_string_value(json_object_get(v, "hex")), buf, sizeof buf);
            char what[256];
            snprintf(what, sizeof what, "%s '%s'", file, json_string_value(json_object_get(v, "name")));
            fn(buf, len, what);
            n++;
        }
    }
    json_decref(j);
    return n;
}

Test(oracle, every_vector)
{
    size_t n = each_vector("tracker.json", agree) + each_vector("peer.json", agree) +
               each_vector("report.json", agree);
    cr_assert_geq(n, 80);
}

/* Each one-byte change (three ways) and each truncation of a vector. */
static void mutations(const uint8_t *good, size_t len, const char *what)
{
    static const uint8_t flips[] = {0x01, 0x80, 0xff};
    uint8_t buf[4096];
    char w[320];
    for (size_t pos = 0; pos < len; pos++) {
        for (size_t k = 0; k < sizeof flips; k++) {
            memcpy(buf, good, len);
            buf[pos] ^= flips[k];
            snprintf(w, sizeof w, "%s, byte %zu ^ %02x", what, pos, flips[k]);
            agree(buf, len, w);
        }
        snprintf(w, sizeof w, "%s, first %zu bytes", what, pos);
        agree(good, pos, w);
    }
}

Test(oracle, mutations_of_every_vector)
{
    size_t n = each_vector("tracker.json", mutations) + each_vector("peer.json", mutations) +
               each_vector("report.json", mutations);
    cr_assert_geq(n, 80);
}

Test(oracle, every_committed_fuzz_corpus_input)
{
    const char *root = getenv("UG_ROOT");
    char base[1024];
    snprintf(base, sizeof base, "%s/fuzz/corpus", root && *root ? root : ".");
    static const char *const dirs[] = {"dgram", "hello", "hint", "report", "plugin"};
    size_t n = 0;
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        char dir[1200];
        snprintf(dir, sizeof dir, "%s/%s", base, dirs[i]);
        DIR *dp = opendir(dir);
        cr_assert_not_null(dp, "%s: %s", dir, strerror(errno));
        struct dirent *de;
        while ((de = readdir(dp)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            char path[1500], why[128];
            static uint8_t buf[8192];
            size_t len;
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            cr_assert_eq(ug_file_read(path, buf, sizeof buf, &len, why, sizeof why), 0, "%s: %s", path, why);
            agree(buf, len, path);
            /* the plugin harness's inputs carry two header bytes */
            if (i == 4 && len >= 2)
                agree(buf + 2, len - 2, path);
            n++;
        }
        closedir(dp);
    }
    cr_assert_geq(n, 500);
}
