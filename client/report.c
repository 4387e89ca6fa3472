/* libupgate: REPORT datagrams (protocol type 5) and the state file that remembers the installed version. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "internal.h"

#define STATE_KEY "version="
#define STATE_MAX (sizeof STATE_KEY - 1 + UG_VER_MAX + 1) /* the longest valid state file */

ug_client_err ug_client_report(ug_client *c, ug_client_res res, const char *to, uint8_t *out, size_t cap,
                               size_t *len)
{
    if (!c || !out || !len)
        return UG_CLIENT_E_INVALID;
    ug_version v;
    if (!to || strlen(to) > UG_VER_MAX || ug_version_parse(&v, to, strlen(to)) != 0)
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "report: not a version: %.40s", to ? to : "(null)");
    if ((unsigned)res >= UG_RES_COUNT_)
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "report: no such result %d", (int)res);
    if (res == UG_CLIENT_RES_ROLLED_BACK && ug_version_cmp(&c->running, &v) >= 0)
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "report: rolled back from %s, yet running %s", to,
                               c->version);
    if (!c->sk || !c->cred_len)
        return ug_client_fail_(c, UG_CLIENT_E_NOKEY, "report: no client key or credential set");
    ug_report_fields f = {
        .uid = c->uid, .ver = c->version, .to = to, .res = (ug_res)res, .ts = ug_client_now_(c),
        .cred = c->cred, .cred_len = c->cred_len,
    };
    ug_client_random_(c, f.nonce, sizeof f.nonce);
    memcpy(f.pk, c->sk + UG_SEED_LEN, UG_PK_LEN);
    uint8_t buf[UG_DGRAM_MAX];
    size_t n;
    /* version 2: the app, and how the package came (deltas are a later step: the full package) */
    ug2_report_fields f2 = {.base = f, .app = c->app, .via = (ug2_via)c->via}; /* the last download's way */
    bool v2 = ug_client_protocol(c) == 2;
    if (v2 && !c->app[0])
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "report: config app is needed for protocol version 2");
    if ((v2 ? ug2_report_build(buf, sizeof buf, &n, &f2, c->report_size, c->sk)
            : ug_report_build(buf, sizeof buf, &n, &f, c->report_size, c->sk)) != 0)
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "report: does not fit a datagram (credential too long?)");
    if (cap < n)
        return ug_client_fail_(c, UG_CLIENT_E_BUFFER, "REPORT of %zu bytes, buffer of %zu", n, cap);
    memcpy(out, buf, n);
    *len = n;
    return UG_CLIENT_OK;
}

ug_client_res ug_client_res_of(ug_client_err e)
{
    switch (e) {
    case UG_CLIENT_OK: return UG_CLIENT_RES_INSTALLED;
    case UG_CLIENT_E_MISMATCH: return UG_CLIENT_RES_MISMATCH;
    case UG_CLIENT_E_IO: return UG_CLIENT_RES_INSTALL_FAILED;
    default: return UG_CLIENT_RES_DOWNLOAD_FAILED;
    }
}

/* ---- the state file ------------------------------------------------- */

int ug_client_state_parse_(const uint8_t *text, size_t len, char *out, size_t cap)
{
    const size_t klen = sizeof STATE_KEY - 1;
    if (len < klen + 2 || len > STATE_MAX || memcmp(text, STATE_KEY, klen) != 0 || text[len - 1] != '\n')
        return -1;
    const char *v = (const char *)text + klen;
    size_t vlen = len - klen - 1;
    ug_version ver;
    if (memchr(v, '\n', vlen) || ug_version_parse(&ver, v, vlen) != 0 || vlen >= cap)
        return -1;
    memcpy(out, v, vlen);
    out[vlen] = 0;
    return 0;
}

ug_client_err ug_client_state_load(ug_client *c, const char *path, char *version, size_t cap)
{
    if (!c || !path || !version || cap == 0)
        return UG_CLIENT_E_INVALID;
    uint8_t text[STATE_MAX];
    size_t len;
    char why[256] = "";
    struct stat st;
    int sr = stat(path, &st);
    if (sr != 0 && errno == ENOENT)
        return ug_client_fail_(c, UG_CLIENT_E_NOTFOUND, "%s: no such file", path);
    if (sr == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > sizeof text)
        return ug_client_fail_(c, UG_CLIENT_E_FORMAT, "%s: not one line \"version=V\"", path);
    if (ug_file_read(path, text, sizeof text, &len, why, sizeof why) != 0)
        return ug_client_fail_(c, UG_CLIENT_E_IO, "%s: %s", path, why);
    if (ug_client_state_parse_(text, len, version, cap) != 0)
        return ug_client_fail_(c, UG_CLIENT_E_FORMAT, "%s: not one line \"version=V\" with a valid version", path);
    return UG_CLIENT_OK;
}

void ug_client_sync_dir_(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

ug_client_err ug_client_atomic_write_(ug_client *c, const char *path, const void *data, size_t len)
{
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path) >= sizeof tmp)
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "%s: path too long", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return ug_client_fail_(c, UG_CLIENT_E_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
    int rc = ug_write_all(fd, data, len) == 0 && fsync(fd) == 0 ? 0 : errno;
    if (close(fd) != 0 && rc == 0)
        rc = errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = errno;
    if (rc != 0) {
        unlink(tmp);
        return ug_client_fail_(c, UG_CLIENT_E_IO, "%s: %s", path, strerror(rc));
    }
    ug_client_sync_dir_(path);
    return UG_CLIENT_OK;
}

ug_client_err ug_client_state_save(ug_client *c, const char *path, const char *version)
{
    if (!c || !path || !version)
        return UG_CLIENT_E_INVALID;
    ug_version v;
    size_t vlen = strnlen(version, UG_VER_MAX + 1);
    if (vlen > UG_VER_MAX || ug_version_parse(&v, version, vlen) != 0)
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "state: not a version: %.40s", version);
    char line[STATE_MAX + 1];
    int n = snprintf(line, sizeof line, STATE_KEY "%s\n", version);
    return ug_client_atomic_write_(c, path, line, (size_t)n);
}

ug_client_err ug_client_state_check(ug_client *c, const char *path, bool *rolled_back, char *installed, size_t cap)
{
    if (!c || !path || !rolled_back || !installed || cap == 0)
        return UG_CLIENT_E_INVALID;
    *rolled_back = false;
    installed[0] = 0;
    ug_client_err e = ug_client_state_load(c, path, installed, cap);
    if (e == UG_CLIENT_E_NOTFOUND) {
        installed[0] = 0;
        return UG_CLIENT_OK; /* nothing installed yet */
    }
    if (e != UG_CLIENT_OK)
        return e;
    ug_version v;
    if (ug_version_parse(&v, installed, strlen(installed)) != 0) /* cannot fail: load checked it */
        return UG_CLIENT_E_FORMAT;
    *rolled_back = ug_version_cmp(&c->running, &v) < 0;
    return UG_CLIENT_OK;
}
