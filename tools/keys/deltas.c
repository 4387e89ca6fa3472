/* upgate-keys release --delta-from OLD_FILE=VERSION: a delta package per from-version (delta/, zstd
 * patch-from), written beside the package and listed in the version 2 manifest's deltas. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "keys.h"
#include "ug_delta.h"

/* FILE.from-VERSION.delta beside the package FILE. */
static void delta_path(char *out, size_t cap, const char *file, const char *ver)
{
    if ((size_t)snprintf(out, cap, "%s.from-%s.delta", file, ver) >= cap)
        ug_usage_error("--file: %s: path too long for its deltas", file);
}

/* Each package URL with its last path segment replaced by the delta's file
 * name: the delta sits beside the package on every mirror. */
static void delta_urls(ug2_delta *d, const ug2_manifest *m, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (unsigned i = 0; i < m->nurls; i++) {
        const char *u = m->urls[i];
        const char *slash = strrchr(u + strcspn(u, ":") + 3, '/');
        size_t keep = slash ? (size_t)(slash - u) + 1 : strlen(u);
        int n = snprintf(d->urls[i], sizeof d->urls[i], "%.*s%s%s", (int)keep, u, slash ? "" : "/", base);
        if (n < 0 || (size_t)n >= sizeof d->urls[i] || !ug_url_valid(d->urls[i], (size_t)n))
            ug_die(UG_EXIT_FAIL, "%s: its URL beside %s is not a URL of at most %u bytes", path, u, UG_URL_MAX);
    }
    d->nurls = m->nurls;
}

/* One --delta-from value: OLD_FILE=VERSION split at its last '='. */
static void parse_from(const char *arg, char *file, size_t cap, ug_version *v, char *ver, size_t vcap)
{
    char shown[300];
    const char *eq = strrchr(arg, '=');
    if (!eq || eq == arg || (size_t)(eq - arg) >= cap || strlen(eq + 1) >= vcap ||
        ug_version_parse(v, eq + 1, strlen(eq + 1)) != 0)
        ug_usage_error("--delta-from: not OLD_FILE=VERSION (e.g. app-1.4.bin=1.4.0): \"%s\"",
                       keys_shown(arg, shown, sizeof shown));
    memcpy(file, arg, (size_t)(eq - arg));
    file[eq - arg] = 0;
    snprintf(ver, vcap, "%s", eq + 1);
}

/* Makes the delta from old to the package; false (and says why on stderr)
 * when it would not be smaller than 60% of the package: then none is listed. */
static bool make_one(ug2_delta *d, const char *old, const char *file, const char *out, const char *ver)
{
    int ofd = open(old, O_RDONLY | O_CLOEXEC), nfd = open(file, O_RDONLY | O_CLOEXEC);
    if (ofd < 0 || nfd < 0)
        ug_die(UG_EXIT_FAIL, "%s: %s", ofd < 0 ? old : file, strerror(errno));
    int dfd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (dfd < 0)
        ug_die(UG_EXIT_FAIL, "%s: %s", out, strerror(errno));
    ug_delta_info info;
    ug_delta_err err;
    ug_delta_rc rc = ug_delta_make(ofd, nfd, dfd, NULL, &info, &err);
    close(ofd);
    close(nfd);
    if (rc == UG_DELTA_OK && fsync(dfd) != 0)
        ug_die(UG_EXIT_FAIL, "%s: %s", out, strerror(errno));
    close(dfd);
    if (rc == UG_DELTA_E_NOT_SMALLER) {
        unlink(out);
        fprintf(stderr, "upgate-keys: no delta from %s (%s): %s\n", ver, old, err.msg);
        return false;
    }
    if (rc != UG_DELTA_OK) {
        unlink(out);
        ug_die(UG_EXIT_FAIL, "%s: delta from %s: %s", out, old, err.msg);
    }
    d->size = info.size;
    memcpy(d->hash, info.hash, UG_HASH_LEN);
    return true;
}

void keys_deltas(ug2_manifest *m, const char *file, const keys_val *v)
{
    if (v->n > UG2_DELTAS_MAX)
        ug_usage_error("--delta-from: at most %u", UG2_DELTAS_MAX);
    for (unsigned i = 0; i < v->n; i++) {
        char old[4096], ver[UG_VER_MAX + 1], out[4096 + 64];
        ug2_delta *d = &m->deltas[m->ndeltas];
        memset(d, 0, sizeof *d);
        parse_from(v->v[i], old, sizeof old, &d->from, ver, sizeof ver);
        if (ug_version_cmp(&d->from, &m->to) == 0)
            ug_usage_error("--delta-from %s: the release's own version", ver);
        for (unsigned j = 0; j < m->ndeltas; j++)
            if (ug_version_cmp(&d->from, &m->deltas[j].from) == 0)
                ug_usage_error("--delta-from: version %s given twice", ver);
        delta_path(out, sizeof out, file, ver);
        if (!make_one(d, old, file, out, ver))
            continue;
        delta_urls(d, m, out);
        m->ndeltas++;
        printf("delta from %s: %s (%llu bytes)\n", ver, out, (unsigned long long)d->size);
    }
}
