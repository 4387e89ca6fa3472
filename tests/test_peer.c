/* Tests of build/upgate-peer against a fake tracker thread, busybox httpd and a raw HTTP server, all on loopback. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "httpserv.h"
#include "../fuzz/oracle/oracle.h"
#include "testutil.h"

#define PKG_LEN 5000
#define UID 4242u
#define CURRENT "1.4.2"
#define MAX_HEARD 16

typedef struct {
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN];
} keypair;

/* The per-test world: keys and files in a scratch dir, and the servers. */
static struct {
    char dir[64], www[128], dl[128], bin[PATH_MAX];
    keypair client, issuer, hint, release, stranger;
    char client_key[160], cred[160], hint_pub[160], release_pub[160], stranger_pub[160];
    uint8_t pkg[PKG_LEN], pkg_hash[UG_HASH_LEN];
    pid_t httpd;
    int http_port;
} F;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void path_in(char *buf, size_t cap, const char *dir, const char *name)
{
    cr_assert_lt((size_t)snprintf(buf, cap, "%s/%s", dir, name), cap);
}

static void write_key(char *path, size_t cap, const char *name, const uint8_t *data, bool secret)
{
    char why[128];
    path_in(path, cap, F.dir, name);
    cr_assert_eq(ug_keyfile_write(path, data, secret ? UG_SEED_LEN : UG_PK_LEN, secret, why, sizeof why), 0,
                 "%s: %s", path, why);
}

/* A credential for uid and the client key, signed by the issuer, as one base64 line. */
static void write_cred(const char *path, uint64_t uid, int64_t ttl)
{
    ug_cred c = {.uid = uid, .exp = (uint64_t)((int64_t)time(NULL) + ttl)};
    memcpy(c.pk, F.client.pk, UG_PK_LEN);
    ug_kid(c.kid, F.issuer.pk);
    uint8_t body[256], obj[512];
    size_t blen, olen;
    cr_assert_eq(ug_cred_encode_body(body, sizeof body, &blen, &c), 0);
    cr_assert_eq(ug_signed_encode(obj, sizeof obj, &olen, UG_CTX_CRED, body, blen, F.issuer.sk), 0);
    char text[1024];
    sodium_bin2base64(text, sizeof text, obj, olen, sodium_base64_VARIANT_ORIGINAL);
    size_t n = strlen(text);
    text[n++] = '\n';
    tu_write_file(path, text, n);
}

static void stop_all(void);

static void setup(void)
{
    cr_assert(sodium_init() >= 0);
    signal(SIGPIPE, SIG_IGN);
    memset(&F, 0, sizeof F);
    snprintf(F.dir, sizeof F.dir, "/tmp/ugpeer-XXXXXX");
    cr_assert_not_null(mkdtemp(F.dir), "mkdtemp: %s", strerror(errno));
    path_in(F.www, sizeof F.www, F.dir, "www");
    path_in(F.dl, sizeof F.dl, F.dir, "dl");
    cr_assert_eq(mkdir(F.www, 0755), 0);
    cr_assert_eq(mkdir(F.dl, 0755), 0);
    char build[PATH_MAX];
    cr_assert_not_null(realpath(tu_build_dir(), build), "build dir %s: %s", tu_build_dir(), strerror(errno));
    cr_assert_lt((size_t)snprintf(F.bin, sizeof F.bin, "%s/upgate-peer", build), sizeof F.bin);
    cr_assert_eq(access(F.bin, X_OK), 0, "%s is not built", F.bin);

    keypair *kps[] = {&F.client, &F.issuer, &F.hint, &F.release, &F.stranger};
    for (size_t i = 0; i < sizeof kps / sizeof kps[0]; i++)
        crypto_sign_keypair(kps[i]->pk, kps[i]->sk);
    write_key(F.client_key, sizeof F.client_key, "client.key", F.client.sk, true); /* sk starts with the seed */
    write_key(F.hint_pub, sizeof F.hint_pub, "hint.pub", F.hint.pk, false);
    write_key(F.release_pub, sizeof F.release_pub, "release.pub", F.release.pk, false);
    write_key(F.stranger_pub, sizeof F.stranger_pub, "stranger.pub", F.stranger.pk, false);
    path_in(F.cred, sizeof F.cred, F.dir, "client.cred");
    write_cred(F.cred, UID, 3600);

    randombytes_buf(F.pkg, sizeof F.pkg);
    crypto_generichash(F.pkg_hash, sizeof F.pkg_hash, F.pkg, sizeof F.pkg, NULL, 0);
    char p[256];
    path_in(p, sizeof p, F.www, "pkg.bin");
    tu_write_file(p, F.pkg, sizeof F.pkg);
}

static void teardown(void)
{
    stop_all();
    if (F.dir[0])
        (void)nftw(F.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(peer, .init = setup, .fini = teardown, .timeout = 60);

/* ---- loopback ports ------------------------------------------------- */

static int bound_socket(int type, int *port)
{
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0, "bind: %s", strerror(errno));
    socklen_t alen = sizeof a;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* ---- busybox httpd -------------------------------------------------- */

static void start_httpd(void)
{
    unsigned port;
    F.httpd = tu_httpd(F.www, &port);
    F.http_port = (int)port;
}

static void stop_httpd(void)
{
    if (F.httpd) {
        kill(F.httpd, SIGTERM);
        waitpid(F.httpd, NULL, 0);
        F.httpd = 0;
    }
}

/* ---- a raw HTTP server: counts connections, may omit Content-Length -- */

static struct {
    int fd, port;
    pthread_t th;
    bool running;
    atomic_bool stop;
    atomic_int conns;
    uint8_t data[2 * PKG_LEN];
    size_t len;
    bool content_length;
} R;

static void *raw_http_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&R.stop)) {
        struct pollfd p = {.fd = R.fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept4(R.fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        atomic_fetch_add(&R.conns, 1);
        char req[4096];
        size_t got = 0;
        while (got < sizeof req - 1) { /* read the request head */
            struct pollfd q = {.fd = c, .events = POLLIN};
            if (poll(&q, 1, 2000) <= 0)
                break;
            ssize_t n = recv(c, req + got, sizeof req - 1 - got, 0);
            if (n <= 0)
                break;
            got += (size_t)n;
            req[got] = 0;
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        char head[256];
        int hl = R.content_length
                     ? snprintf(head, sizeof head, "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\n\r\n", R.len)
                     : snprintf(head, sizeof head, "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n");
        (void)!send(c, head, (size_t)hl, MSG_NOSIGNAL);
        for (size_t off = 0; off < R.len;) {
            ssize_t n = send(c, R.data + off, R.len - off, MSG_NOSIGNAL);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        shutdown(c, SHUT_WR);
        close(c);
    }
    return NULL;
}

static void start_raw_http(const uint8_t *data, size_t len, bool content_length)
{
    cr_assert_leq(len, sizeof R.data);
    memcpy(R.data, data, len);
    R.len = len;
    R.content_length = content_length;
    R.fd = bound_socket(SOCK_STREAM, &R.port);
    cr_assert_eq(listen(R.fd, 8), 0);
    atomic_store(&R.stop, false);
    atomic_store(&R.conns, 0);
    cr_assert_eq(pthread_create(&R.th, NULL, raw_http_main, NULL), 0);
    R.running = true;
}

static void stop_raw_http(void)
{
    if (R.running) {
        atomic_store(&R.stop, true);
        pthread_join(R.th, NULL);
        close(R.fd);
        R.running = false;
    }
}

/* ---- the fake tracker ----------------------------------------------- */

/* One datagram the tracker received, decoded and checked as a tracker would. */
typedef struct {
    uint8_t raw[UG_DGRAM_MAX + 1];
    size_t len;
    bool valid; /* a HELLO whose credential and signature verify */
    ug_hello h;
} heard;

typedef void (*answer_fn)(unsigned idx, const heard *s);

/* A REPORT the tracker received: kept apart from the HELLOs (never answered). */
typedef struct {
    uint8_t raw[UG_DGRAM_MAX + 1];
    size_t len;
    bool valid; /* parses, and its credential and signature verify */
    ug_report r;
} heard_report;

static struct {
    int fd, port;
    pthread_t th;
    bool running;
    atomic_bool stop;
    answer_fn answer;
    heard seen[MAX_HEARD];
    unsigned nseen; /* read only after tracker_stop() */
    heard_report reports[MAX_HEARD];
    unsigned nreports; /* likewise */
    struct sockaddr_storage from;
    socklen_t fromlen;
} T;

static void *tracker_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&T.stop)) {
        struct pollfd p = {.fd = T.fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        heard *s = &T.seen[T.nseen < MAX_HEARD ? T.nseen : MAX_HEARD - 1];
        uint8_t raw[UG_DGRAM_MAX + 1];
        T.fromlen = sizeof T.from;
        ssize_t n = recvfrom(T.fd, raw, sizeof raw, 0, (struct sockaddr *)&T.from, &T.fromlen);
        if (n <= 0)
            continue;
        ug_dgram d;
        ug_pubkey issuer;
        ug_pubkey_set(&issuer, F.issuer.pk);
        if (ug_dgram_decode(&d, raw, (size_t)n, NULL) == 0 && d.type == UG_TYPE_REPORT) {
            heard_report *hr = &T.reports[T.nreports < MAX_HEARD ? T.nreports : MAX_HEARD - 1];
            memset(hr, 0, sizeof *hr);
            memcpy(hr->raw, raw, (size_t)n);
            hr->len = (size_t)n;
            hr->valid = ug_report_parse(&hr->r, &d, hr->raw, hr->len, NULL) == 0 &&
                        ug_report_verify(&hr->r, &d, &issuer, 1, (uint64_t)time(NULL), NULL) == 0;
            if (T.nreports < MAX_HEARD)
                T.nreports++;
            continue;
        }
        memset(s, 0, sizeof *s);
        memcpy(s->raw, raw, (size_t)n);
        s->len = (size_t)n;
        s->valid = ug_dgram_decode(&d, s->raw, s->len, NULL) == 0 && d.type == UG_TYPE_HELLO &&
                   ug_hello_decode(&s->h, d.body, d.body_len, NULL) == 0 &&
                   or_hello_verify(&s->h, &d, &issuer, 1, (uint64_t)time(NULL), NULL) == 0;
        unsigned idx = T.nseen;
        if (T.nseen < MAX_HEARD)
            T.nseen++;
        if (T.answer)
            T.answer(idx, s);
    }
    return NULL;
}

static void tracker_start(answer_fn fn)
{
    memset(T.seen, 0, sizeof T.seen);
    T.nseen = 0;
    memset(T.reports, 0, sizeof T.reports);
    T.nreports = 0;
    T.answer = fn;
    T.fd = bound_socket(SOCK_DGRAM, &T.port);
    atomic_store(&T.stop, false);
    cr_assert_eq(pthread_create(&T.th, NULL, tracker_main, NULL), 0);
    T.running = true;
}

static void tracker_stop(void)
{
    if (T.running) {
        atomic_store(&T.stop, true);
        pthread_join(T.th, NULL);
        close(T.fd);
        T.running = false;
    }
}

static void stop_all(void)
{
    tracker_stop();
    stop_raw_http();
    stop_httpd();
}

static void tr_send(const uint8_t *buf, size_t len)
{
    (void)!sendto(T.fd, buf, len, 0, (struct sockaddr *)&T.from, T.fromlen);
}

/* The manifest the next HINTs carry, and how to build it. */
typedef struct {
    const char *to;
    const char *urls[UG_URLS_MAX];
    unsigned nurls;
    uint64_t size;
    const uint8_t *hash;
    int64_t exp_delta;
    const keypair *signer, *kid_of;
} manifest_spec;

static uint8_t g_rel[UG_OBJ_MAX];
static size_t g_rel_len;
static char g_url[4][128]; /* storage for URLs tests build */

static manifest_spec manifest_defaults(void)
{
    snprintf(g_url[0], sizeof g_url[0], "http://127.0.0.1:%d/pkg.bin", F.http_port);
    return (manifest_spec){.to = "2.0.0", .urls = {g_url[0]}, .nurls = 1, .size = PKG_LEN, .hash = F.pkg_hash,
                           .exp_delta = 3600, .signer = &F.release, .kid_of = &F.release};
}

static void make_manifest(const manifest_spec *ms)
{
    ug_manifest m = {.nurls = (uint8_t)ms->nurls, .size = ms->size,
                     .exp = (uint64_t)((int64_t)time(NULL) + ms->exp_delta)};
    cr_assert_eq(ug_version_parse(&m.to, ms->to, strlen(ms->to)), 0);
    for (unsigned i = 0; i < ms->nurls; i++)
        snprintf(m.urls[i], sizeof m.urls[i], "%s", ms->urls[i]);
    memcpy(m.hash, ms->hash, UG_HASH_LEN);
    ug_kid(m.kid, ms->kid_of->pk);
    uint8_t body[UG_OBJ_MAX];
    size_t blen;
    cr_assert_eq(ug_manifest_encode_body(body, sizeof body, &blen, &m), 0);
    cr_assert_eq(ug_signed_encode(g_rel, sizeof g_rel, &g_rel_len, UG_CTX_RELEASE, body, blen, ms->signer->sk), 0);
}

/* How the tracker forges (or not) the next HINTs. */
typedef struct {
    const keypair *signer, *kid_of;
    uint64_t uid; /* 0: echo the HELLO's */
    bool other_nonce, break_sig;
    int64_t exp_delta;
    uint64_t mirror;
} hint_spec;

static hint_spec H;

static hint_spec hint_defaults(void)
{
    return (hint_spec){.signer = &F.hint, .kid_of = &F.hint, .exp_delta = 3600};
}

static void send_hint(const heard *s)
{
    ug_hint_fields f = {.uid = H.uid ? H.uid : s->h.uid, .ts = (uint64_t)time(NULL), .mirror = H.mirror,
                        .rel = g_rel, .rel_len = g_rel_len};
    f.exp = (uint64_t)((int64_t)f.ts + H.exp_delta);
    memcpy(f.nonce, s->h.nonce, UG_NONCE_LEN);
    if (H.other_nonce)
        f.nonce[0] ^= 1;
    ug_kid(f.kid, H.kid_of->pk);
    uint8_t body[UG_DGRAM_MAX], out[UG_DGRAM_MAX];
    size_t blen, len;
    cr_assert_eq(ug_hint_encode_body(body, sizeof body, &blen, &f), 0);
    cr_assert_eq(ug_dgram_encode(out, sizeof out, &len, UG_TYPE_HINT, body, blen, H.signer->sk), 0);
    if (H.break_sig)
        out[len - 1] ^= 0x40; /* the signature is last */
    tr_send(out, len);
}

static void send_wait(const heard *s, uint64_t why, uint64_t retry, int64_t ts_delta, bool other_nonce)
{
    ug_wait w = {.why = why, .retry = retry, .ts = (uint64_t)((int64_t)s->h.ts + ts_delta)};
    memcpy(w.nonce, s->h.nonce, UG_NONCE_LEN);
    if (other_nonce)
        w.nonce[15] ^= 1;
    uint8_t body[256], out[512];
    size_t blen, len;
    cr_assert_eq(ug_wait_encode_body(body, sizeof body, &blen, &w), 0);
    cr_assert_eq(ug_dgram_encode(out, sizeof out, &len, UG_TYPE_WAIT, body, blen, NULL), 0);
    tr_send(out, len);
}

static const uint8_t g_cookie[UG_COOKIE_LEN] = "0123456789abcdef";

static void send_cookie(const heard *s, bool other_nonce)
{
    ug_cookie c = {.ts = (uint64_t)time(NULL)};
    memcpy(c.nonce, s->h.nonce, UG_NONCE_LEN);
    if (other_nonce)
        c.nonce[3] ^= 1;
    memcpy(c.cookie, g_cookie, UG_COOKIE_LEN);
    uint8_t body[256], out[512];
    size_t blen, len;
    cr_assert_eq(ug_cookie_encode_body(body, sizeof body, &blen, &c), 0);
    cr_assert_eq(ug_dgram_encode(out, sizeof out, &len, UG_TYPE_COOKIE, body, blen, NULL), 0);
    tr_send(out, len);
}

/* Answer scripts. W is the WAIT the scripts below send. */
static struct {
    uint64_t why, retry;
    int64_t ts_delta;
} W;

static void answer_hint(unsigned idx, const heard *s)
{
    (void)idx;
    if (s->valid)
        send_hint(s);
}

static void answer_wait(unsigned idx, const heard *s)
{
    (void)idx;
    if (s->valid)
        send_wait(s, W.why, W.retry, W.ts_delta, false);
}

static void answer_cookie_then_hint(unsigned idx, const heard *s)
{
    (void)idx;
    if (s->valid && s->h.has_cookie && memcmp(s->h.cookie, g_cookie, UG_COOKIE_LEN) == 0)
        send_hint(s);
    else if (s->valid)
        send_cookie(s, false);
}

static void answer_cookie_always(unsigned idx, const heard *s)
{
    (void)idx;
    if (s->valid)
        send_cookie(s, false);
}

static void answer_too_small_then_wait(unsigned idx, const heard *s)
{
    (void)idx;
    if (s->valid && s->len < UG_DGRAM_MAX)
        send_wait(s, UG_WHY_TOO_SMALL, 0, 0, false);
    else if (s->valid)
        send_wait(s, W.why, W.retry, 0, false);
}

static void answer_too_small_always(unsigned idx, const heard *s)
{
    (void)idx;
    if (s->valid)
        send_wait(s, UG_WHY_TOO_SMALL, 0, 0, false);
}

/* What an off-path sender could inject before the real answer: garbage,
 * unsigned replies for another nonce, a HINT under an unpinned key. */
static void answer_noise_then_wait(unsigned idx, const heard *s)
{
    if (!s->valid || idx > 0)
        return;
    static const uint8_t junk[] = {0x95, 0xa2, 'U', 'G', 0x01, 0x03, 0xc0};
    tr_send(junk, sizeof junk);
    tr_send((const uint8_t *)"hello", 5);
    send_wait(s, UG_WHY_QUOTA, 600, 0, true);
    send_cookie(s, true);
    hint_spec saved = H;
    H.signer = H.kid_of = &F.stranger;
    send_hint(s);
    H = saved;
    send_wait(s, UG_WHY_NOT_SELECTED, 7200, 0, false);
}

/* ---- running the peer ----------------------------------------------- */

typedef struct {
    int rc;
    double secs;
    char out[16384]; /* stdout and stderr */
} run_result;

/* Runs upgate-peer in the download dir against the fake tracker with the
 * standard flags plus EXTRA; stdin is stdin_text, or /dev/null when NULL. */
static void run_peer(run_result *r, const char *stdin_text, unsigned tries, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void run_peer(run_result *r, const char *stdin_text, unsigned tries, const char *fmt, ...)
{
    char extra[2048], in[256] = "/dev/null", cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    cr_assert_lt((size_t)vsnprintf(extra, sizeof extra, fmt, ap), sizeof extra);
    va_end(ap);
    if (stdin_text) {
        path_in(in, sizeof in, F.dir, "stdin");
        tu_write_file(in, stdin_text, strlen(stdin_text));
    }
    cr_assert_lt((size_t)snprintf(cmd, sizeof cmd,
                                  "cd %s && %s --tracker 127.0.0.1:%d --uid %u --version " CURRENT
                                  " --key %s --cred %s --hint-pub %s --release-pub %s --timeout 10 --tries %u %s "
                                  "<%s 2>&1",
                                  F.dl, F.bin, T.port, UID, F.client_key, F.cred, F.hint_pub, F.release_pub, tries,
                                  extra, in),
                 sizeof cmd);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    r->rc = tu_run(cmd, r->out, sizeof r->out);
    clock_gettime(CLOCK_MONOTONIC, &b);
    r->secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

static unsigned dl_entries(void)
{
    DIR *d = opendir(F.dl);
    cr_assert_not_null(d);
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* The file at path holds exactly the package. */
static void assert_is_package(const char *path)
{
    static uint8_t buf[2 * PKG_LEN];
    size_t len;
    char why[128];
    cr_assert_eq(ug_file_read(path, buf, sizeof buf, &len, why, sizeof why), 0, "%s: %s", path, why);
    cr_assert_eq(len, PKG_LEN, "%s holds %zu bytes", path, len);
    cr_assert_arr_eq(buf, F.pkg, PKG_LEN, "%s differs from the package", path);
}

static void assert_contains(const run_result *r, const char *needle)
{
    cr_assert_not_null(strstr(r->out, needle), "want \"%s\" in the output:\n%s", needle, r->out);
}

/* ---- honest exchanges ----------------------------------------------- */

Test(peer, honest_hint_with_yes_downloads_the_package)
{
    start_httpd();
    manifest_spec ms = manifest_defaults();
    make_manifest(&ms);
    H = hint_defaults();
    tracker_start(answer_hint);
    run_result r;
    run_peer(&r, NULL, 2, "--yes --out %s/new.bin --plat linux-x86_64 --chan stable", F.dl);
    tracker_stop();
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    char out[256];
    path_in(out, sizeof out, F.dl, "new.bin");
    assert_is_package(out);
    cr_assert_eq(dl_entries(), 1, "a temporary file was left behind");
    assert_contains(&r, "upgraded package saved to");
    assert_contains(&r, "BLAKE2b ok");
    assert_contains(&r, "2.0.0");

    /* the HELLO the tracker saw */
    cr_assert_eq(T.nseen, 1);
    const heard *s = &T.seen[0];
    cr_assert(s->valid, "the HELLO does not verify");
    cr_assert_eq(s->len, UG_HELLO_MIN, "default HELLO is %zu bytes, want 512", s->len);
    cr_assert_eq(s->h.uid, UID);
    ug_version cur;
    cr_assert_eq(ug_version_parse(&cur, CURRENT, strlen(CURRENT)), 0);
    cr_assert_eq(ug_version_cmp(&s->h.ver, &cur), 0);
    cr_assert_arr_eq(s->h.pk, F.client.pk, UG_PK_LEN);
    cr_assert_str_eq(s->h.plat, "linux-x86_64");
    cr_assert_str_eq(s->h.chan, "stable");
    cr_assert(!s->h.has_cookie);
    uint64_t now = (uint64_t)time(NULL);
    cr_assert(s->h.ts + 15 >= now && s->h.ts <= now, "ts %llu is not now", (unsigned long long)s->h.ts);
}

Test(peer, default_out_is_the_url_file_name)
{
    start_httpd();
    manifest_spec ms = manifest_defaults();
    make_manifest(&ms);
    H = hint_defaults();
    tracker_start(answer_hint);
    run_result r;
    run_peer(&r, NULL, 2, "--yes");
    tracker_stop();
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    char out[256];
    path_in(out, sizeof out, F.dl, "pkg.bin");
    assert_is_package(out);
    cr_assert_eq(dl_entries(), 1);
}

Test(peer, prompt_answered_yes_on_stdin)
{
    start_httpd();
    manifest_spec ms = manifest_defaults();
    make_manifest(&ms);
    H = hint_defaults();
    tracker_start(answer_hint);
    run_result r;
    run_peer(&r, "y\n", 2, "--out got.bin");
    tracker_stop();
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    assert_contains(&r, "Upgrade now? [y/N]");
    assert_contains(&r, "127.0.0.1");
    char out[256];
    path_in(out, sizeof out, F.dl, "got.bin");
    assert_is_package(out);
}

Test(peer, no_and_end_of_input_download_nothing)
{
    start_raw_http(F.pkg, PKG_LEN, true);
    manifest_spec ms = manifest_defaults();
    snprintf(g_url[1], sizeof g_url[1], "http://127.0.0.1:%d/pkg.bin", R.port);
    ms.urls[0] = g_url[1];
    make_manifest(&ms);
    H = hint_defaults();
    tracker_start(answer_hint);
    run_result r;
    run_peer(&r, NULL, 2, "--no --out x.bin");
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    assert_contains(&r, "keeping version " CURRENT);
    run_peer(&r, NULL, 2, "--out x.bin"); /* stdin is /dev/null: end of input is no */
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    assert_contains(&r, "keeping version " CURRENT);
    run_peer(&r, "n\n", 2, "--out x.bin");
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    assert_contains(&r, "keeping version " CURRENT);
    tracker_stop();
    cr_assert_eq(dl_entries(), 0);
    cr_assert_eq(atomic_load(&R.conns), 0, "the mirror was contacted");
}

Test(peer, several_pinned_keys)
{
    start_httpd();
    manifest_spec ms = manifest_defaults();
    make_manifest(&ms);
    H = hint_defaults();
    tracker_start(answer_hint);
    run_result r;
    run_peer(&r, NULL, 2, "--yes --out a.bin --hint-pub %s --release-pub %s", F.stranger_pub, F.stranger_pub);
    tracker_stop();
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
}

/* ---- WAIT and COOKIE ------------------------------------------------ */

static void check_wait(uint64_t why, uint64_t retry, int64_t ts_delta, const char *reason, const char *ask)
{
    W.why = why, W.retry = retry, W.ts_delta = ts_delta;
    tracker_start(answer_wait);
    run_result r;
    run_peer(&r, NULL, 2, "--yes --out w.bin");
    tracker_stop();
    cr_assert_eq(r.rc, 0, "why %llu: exit %d:\n%s", (unsigned long long)why, r.rc, r.out);
    assert_contains(&r, reason);
    assert_contains(&r, ask);
    cr_assert_eq(T.nseen, 1);
    cr_assert_eq(dl_entries(), 0);
}

Test(peer, wait_prints_the_reason_and_the_clamped_retry)
{
    check_wait(UG_WHY_NOT_TARGETED, 3600, 0, "your version is not being upgraded", "ask again in 3600 s");
    check_wait(UG_WHY_NOT_SELECTED, 5, 0, "not selected yet", "ask again in 60 s");
    check_wait(UG_WHY_QUOTA, 100000, 0, "quota spent", "ask again in 86400 s");
    check_wait(UG_WHY_CLOCK, 0, 1000, "clock skew: your clock is 1000 s off the tracker's", "ask again in 60 s");
    check_wait(UG_WHY_PAUSED, UINT64_MAX, 0, "paused", "ask again in 86400 s");
    check_wait(UG_WHY_RATE, 61, 0, "rate limited", "ask again in 61 s");
    check_wait(9, 300, 0, "unknown reason 9", "ask again in 300 s");
}

Test(peer, cookie_is_echoed_in_a_new_signed_hello)
{
    start_httpd();
    manifest_spec ms = manifest_defaults();
    make_manifest(&ms);
    H = hint_defaults();
    tracker_start(answer_cookie_then_hint);
    run_result r;
    run_peer(&r, NULL, 2, "--no");
    tracker_stop();
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    assert_contains(&r, "keeping version");
    cr_assert_eq(T.nseen, 2);
    cr_assert(T.seen[0].valid && T.seen[1].valid);
    cr_assert(!T.seen[0].h.has_cookie);
    cr_assert(T.seen[1].h.has_cookie, "the second HELLO has no cookie");
    cr_assert_arr_eq(T.seen[1].h.cookie, g_cookie, UG_COOKIE_LEN);
    cr_assert_arr_neq(T.seen[0].h.nonce, T.seen[1].h.nonce, UG_NONCE_LEN, "a new HELLO needs a new nonce");
    cr_assert_geq(T.seen[1].len, UG_HELLO_MIN);
}

Test(peer, endless_cookies_are_given_up)
{
    tracker_start(answer_cookie_always);
    run_result r;
    run_peer(&r, NULL, 2, "--yes");
    tracker_stop();
    cr_assert_eq(r.rc, 1, "exit %d:\n%s", r.rc, r.out);
    assert_contains(&r, "cookie");
    cr_assert_eq(T.nseen, 4, "want 1 HELLO and 3 cookie rounds, got %u", T.nseen);
}

Test(peer, wait_too_small_resends_padded_to_1232)
{
    W.why = UG_WHY_NOT_SELECTED, W.retry = 100;
    tracker_start(answer_too_small_then_wait);
    run_result r;
    run_peer(&r, NULL, 2, "--yes");
    tracker_stop();
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    assert_contains(&r, "ask again in 100 s");
    cr_assert_eq(T.nseen, 2);
    cr_assert_eq(T.seen[0].len, UG_HELLO_MIN);
    cr_assert_eq(T.seen[1].len, UG_DGRAM_MAX, "the resent HELLO is %zu bytes", T.seen[1].len);
    cr_assert(T.seen[1].valid);
    cr_assert_arr_neq(T.seen[0].h.nonce, T.seen[1].h.nonce, UG_NONCE_LEN);
}

Test(peer, wait_too_small_twice_fails)
{
    tracker_start(answer_too_small_always);
    run_result r;
    run_peer(&r, NULL, 2, "--yes");
    tracker_stop();
    cr_assert_eq(r.rc, 1, "exit %d:\n%s", r.rc, r.out);
    cr_assert_eq(T.nseen, 2);
}

Test(peer, pad_flag_sends_1232_at_once)
{
    W.why = UG_WHY_PAUSED, W.retry = 120;
    tracker_start(answer_too_small_then_wait);
    run_result r;
    run_peer(&r, NULL, 2, "--pad");
    tracker_stop();
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    assert_contains(&r, "paused");
    cr_assert_eq(T.nseen, 1);
    cr_assert_eq(T.seen[0].len, UG_DGRAM_MAX);
}

Test(peer, silence_resends_the_same_hello_then_fails)
{
    tracker_start(NULL);
    run_result r;
    run_peer(&r, NULL, 3, "--yes");
    tracker_stop();
    cr_assert_eq(r.rc, 1, "exit %d:\n%s", r.rc, r.out);
    assert_contains(&r, "no answer from 127.0.0.1:");
    cr_assert_eq(T.nseen, 3, "want 3 tries, got %u", T.nseen);
    for (unsigned i = 1; i < 3; i++) {
        cr_assert_eq(T.seen[i].len, T.seen[0].len);
        cr_assert_arr_eq(T.seen[i].raw, T.seen[0].raw, T.seen[0].len, "resend %u differs", i);
    }
    /* backoff 0.5 + 1 + 2 s */
    cr_assert(r.secs > 3.0 && r.secs < 6.0, "took %.1f s", r.secs);
    cr_assert_eq(dl_entries(), 0);
}

Test(peer, timeout_bounds_the_wait)
{
    /* the runner gives --timeout 10; a short one needs its own command */
    char cmd[8192];
    cr_assert_lt((size_t)snprintf(cmd, sizeof cmd,
                                  "%s --tracker 127.0.0.1:%u --uid %u --version 1 --key %s --cred %s --hint-pub %s "
                                  "--release-pub %s --timeout 1 --tries 20 --yes </dev/null 2>&1",
                                  F.bin, tu_free_port(SOCK_STREAM), UID, F.client_key, F.cred, F.hint_pub, F.release_pub),
                 sizeof cmd);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    char out[1024];
    int rc = tu_run(cmd, out, sizeof out);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
    cr_assert_not_null(strstr(out, "no answer"), "%s", out);
    cr_assert(secs >= 0.9 && secs < 3.0, "took %.1f s with --timeout 1", secs);
}

Test(peer, noise_before_the_answer_is_ignored)
{
    H = hint_defaults();
    manifest_spec ms = manifest_defaults();
    make_manifest(&ms);
    tracker_start(answer_noise_then_wait);
    run_result r;
    run_peer(&r, NULL, 2, "--yes");
    tracker_stop();
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    assert_contains(&r, "not selected yet");
    assert_contains(&r, "ask again in 7200 s");
    cr_assert_eq(T.nseen, 1);
}

/* ---- forged HINTs --------------------------------------------------- */

/* The tracker answers with H and the manifest ms: the peer must exit 3
 * naming check, create nothing, and never contact the mirror. */
static void expect_rejected(const manifest_spec *ms_in, const char *check)
{
    start_raw_http(F.pkg, PKG_LEN, true);
    manifest_spec ms = *ms_in;
    snprintf(g_url[1], sizeof g_url[1], "http://127.0.0.1:%d/pkg.bin", R.port);
    for (unsigned i = 0; i < ms.nurls; i++)
        ms.urls[i] = g_url[1];
    make_manifest(&ms);
    tracker_start(answer_hint);
    run_result r;
    run_peer(&r, NULL, 1, "--yes --out %s/x.bin", F.dl);
    tracker_stop();
    stop_raw_http();
    cr_assert_eq(r.rc, 3, "exit %d, want 3:\n%s", r.rc, r.out);
    assert_contains(&r, "HINT rejected: ");
    assert_contains(&r, check);
    cr_assert_eq(dl_entries(), 0, "something was created in the download dir");
    cr_assert_eq(atomic_load(&R.conns), 0, "the mirror was contacted");
    cr_assert_eq(T.nseen, 1);
}

Test(peer, hint_signed_by_an_unpinned_key)
{
    manifest_spec ms = manifest_defaults();
    H = hint_defaults();
    H.signer = H.kid_of = &F.stranger;
    expect_rejected(&ms, "unknown key id");
}

Test(peer, hint_with_a_bad_signature)
{
    manifest_spec ms = manifest_defaults();
    H = hint_defaults();
    H.break_sig = true;
    expect_rejected(&ms, "signature");
    H = hint_defaults();
    H.signer = &F.stranger; /* claims the pinned key's id */
    expect_rejected(&ms, "signature");
}

Test(peer, manifest_signed_by_the_hint_key)
{
    manifest_spec ms = manifest_defaults();
    ms.signer = ms.kid_of = &F.hint;
    H = hint_defaults();
    expect_rejected(&ms, "unknown key id");
}

Test(peer, manifest_with_a_forged_signature)
{
    manifest_spec ms = manifest_defaults();
    ms.signer = &F.stranger; /* kid says release key */
    H = hint_defaults();
    expect_rejected(&ms, "signature");
}

Test(peer, rollback_to_the_same_version)
{
    manifest_spec ms = manifest_defaults();
    H = hint_defaults();
    ms.to = CURRENT;
    expect_rejected(&ms, "rollback");
    ms.to = CURRENT ".0";
    expect_rejected(&ms, "rollback");
}

Test(peer, rollback_to_an_older_version)
{
    manifest_spec ms = manifest_defaults();
    H = hint_defaults();
    ms.to = "1.4.1";
    expect_rejected(&ms, "rollback");
    ms.to = "0.9";
    expect_rejected(&ms, "rollback");
}

Test(peer, hint_for_another_nonce)
{
    manifest_spec ms = manifest_defaults();
    H = hint_defaults();
    H.other_nonce = true;
    expect_rejected(&ms, "nonce");
}

Test(peer, hint_for_another_uid)
{
    manifest_spec ms = manifest_defaults();
    H = hint_defaults();
    H.uid = UID + 1;
    expect_rejected(&ms, "uid");
}

Test(peer, expired_hint)
{
    manifest_spec ms = manifest_defaults();
    H = hint_defaults();
    H.exp_delta = -1;
    expect_rejected(&ms, "expired");
    H.exp_delta = -100000;
    expect_rejected(&ms, "expired");
}

Test(peer, expired_manifest)
{
    manifest_spec ms = manifest_defaults();
    H = hint_defaults();
    ms.exp_delta = -1;
    expect_rejected(&ms, "expired");
}

Test(peer, mirror_out_of_range)
{
    manifest_spec ms = manifest_defaults();
    H = hint_defaults();
    H.mirror = 1;
    expect_rejected(&ms, "mirror");
    ms.urls[1] = g_url[0];
    ms.nurls = 2;
    H.mirror = 2;
    expect_rejected(&ms, "mirror");
    H.mirror = UINT64_MAX;
    expect_rejected(&ms, "mirror");
}

/* ---- downloads that go wrong ---------------------------------------- */

/* Runs an honest exchange over ms with --yes; returns the run. */
static void download_with(const manifest_spec *ms, run_result *r)
{
    make_manifest(ms);
    H = hint_defaults();
    tracker_start(answer_hint);
    run_peer(r, NULL, 2, "--yes --out %s/out.bin", F.dl);
    tracker_stop();
}

Test(peer, tampered_package_is_not_kept)
{
    start_httpd();
    manifest_spec ms = manifest_defaults();
    uint8_t other[UG_HASH_LEN];
    memcpy(other, F.pkg_hash, sizeof other);
    other[7] ^= 1;
    ms.hash = other;
    run_result r;
    download_with(&ms, &r);
    cr_assert_neq(r.rc, 0, "a package with the wrong hash was accepted:\n%s", r.out);
    assert_contains(&r, "hash mismatch");
    cr_assert_eq(dl_entries(), 0, "a file was left in the download dir");
}

Test(peer, short_package_is_not_kept)
{
    start_httpd();
    manifest_spec ms = manifest_defaults();
    ms.size = PKG_LEN + 1;
    run_result r;
    download_with(&ms, &r);
    cr_assert_neq(r.rc, 0, "%s", r.out);
    assert_contains(&r, "size mismatch");
    cr_assert_eq(dl_entries(), 0);
}

Test(peer, oversized_download_with_content_length_is_refused)
{
    start_httpd();
    manifest_spec ms = manifest_defaults();
    ms.size = PKG_LEN - 100; /* the server announces and sends more */
    run_result r;
    download_with(&ms, &r);
    cr_assert_neq(r.rc, 0, "%s", r.out);
    assert_contains(&r, "more than");
    cr_assert_eq(dl_entries(), 0);
}

Test(peer, oversized_download_without_content_length_is_refused)
{
    /* the real package followed by extra bytes: a prefix that would hash
     * right must still be refused, not truncated and kept */
    uint8_t more[PKG_LEN + 100];
    memcpy(more, F.pkg, PKG_LEN);
    memset(more + PKG_LEN, 'x', 100);
    start_raw_http(more, sizeof more, false);
    manifest_spec ms = manifest_defaults();
    snprintf(g_url[1], sizeof g_url[1], "http://127.0.0.1:%d/pkg.bin", R.port);
    ms.urls[0] = g_url[1];
    run_result r;
    download_with(&ms, &r);
    cr_assert_neq(r.rc, 0, "%s", r.out);
    assert_contains(&r, "more than");
    cr_assert_eq(dl_entries(), 0);
    cr_assert_geq(atomic_load(&R.conns), 1);
}

Test(peer, missing_file_on_the_only_mirror)
{
    start_httpd();
    manifest_spec ms = manifest_defaults();
    snprintf(g_url[1], sizeof g_url[1], "http://127.0.0.1:%d/nope.bin", F.http_port);
    ms.urls[0] = g_url[1];
    run_result r;
    download_with(&ms, &r);
    cr_assert_eq(r.rc, 1, "%s", r.out);
    assert_contains(&r, "download failed");
    assert_contains(&r, "404");
    cr_assert_eq(dl_entries(), 0);
}

Test(peer, first_mirror_down_falls_back_to_the_second)
{
    start_httpd();
    manifest_spec ms = manifest_defaults();
    snprintf(g_url[1], sizeof g_url[1], "http://127.0.0.1:%u/pkg.bin", tu_free_port(SOCK_STREAM));
    ms.urls[0] = g_url[1];
    snprintf(g_url[2], sizeof g_url[2], "http://127.0.0.1:%d/pkg.bin", F.http_port);
    ms.urls[1] = g_url[2];
    ms.nurls = 2;
    run_result r;
    download_with(&ms, &r);
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    assert_contains(&r, "trying the next mirror");
    char out[256];
    path_in(out, sizeof out, F.dl, "out.bin");
    assert_is_package(out);
    cr_assert_eq(dl_entries(), 1);
}

Test(peer, tampered_mirror_falls_back_to_a_good_one)
{
    start_httpd();
    uint8_t evil[PKG_LEN];
    memcpy(evil, F.pkg, PKG_LEN);
    evil[PKG_LEN / 2] ^= 0xff;
    start_raw_http(evil, sizeof evil, true);
    manifest_spec ms = manifest_defaults();
    snprintf(g_url[1], sizeof g_url[1], "http://127.0.0.1:%d/pkg.bin", R.port);
    ms.urls[0] = g_url[0]; /* httpd, good */
    ms.urls[1] = g_url[1]; /* raw, evil */
    ms.nurls = 2;
    make_manifest(&ms);
    H = hint_defaults();
    H.mirror = 1; /* hinted first: the evil one */
    tracker_start(answer_hint);
    run_result r;
    run_peer(&r, NULL, 2, "--yes --out %s/out.bin", F.dl);
    tracker_stop();
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    cr_assert_eq(atomic_load(&R.conns), 1, "the hinted mirror was not tried first");
    assert_contains(&r, "hash mismatch");
    char out[256];
    path_in(out, sizeof out, F.dl, "out.bin");
    assert_is_package(out);
    cr_assert_eq(dl_entries(), 1);
}

/* ---- command line --------------------------------------------------- */

static void run_cmd(const char *args, int *rc, char *out, size_t cap)
{
    char cmd[8192];
    cr_assert_lt((size_t)snprintf(cmd, sizeof cmd, "%s %s </dev/null 2>&1", F.bin, args), sizeof cmd);
    *rc = tu_run(cmd, out, cap);
}

static size_t lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

Test(peer, usage_errors)
{
    char base[2048], args[4096], out[2048];
    int rc;
    snprintf(base, sizeof base, "--key %s --cred %s --hint-pub %s --release-pub %s", F.client_key, F.cred,
             F.hint_pub, F.release_pub);
    static const struct {
        const char *args, *names;
    } cases[] = {
        {"--uid 1 --version 1", "--tracker"},
        {"--tracker 127.0.0.1:9 --version 1", "--uid"},
        {"--tracker 127.0.0.1:9 --uid 1", "--version"},
        {"--tracker 127.0.0.1:9 --uid 0 --version 1", "--uid"},
        {"--tracker 127.0.0.1:9 --uid 12x --version 1", "--uid"},
        {"--tracker 127.0.0.1:9 --uid 9223372036854775808 --version 1", "--uid"},
        {"--tracker 127.0.0.1:9 --uid 1 --version 1.02", "--version"},
        {"--tracker 127.0.0.1 --uid 1 --version 1", "--tracker"},
        {"--tracker 127.0.0.1:99999 --uid 1 --version 1", "--tracker"},
        {"--tracker 127.0.0.1:9 --uid 1 --version 1 --tries 0", "--tries"},
        {"--tracker 127.0.0.1:9 --uid 1 --version 1 --timeout 0", "--timeout"},
        {"--tracker 127.0.0.1:9 --uid 1 --version 1 --yes --no", "--yes"},
        {"--tracker 127.0.0.1:9 --uid 1 --version 1 --chan 01234567890123456", "--chan"},
        {"--tracker 127.0.0.1:9 --uid 1 --version 1 --bogus", "--bogus"},
        {"--tracker 127.0.0.1:9 --uid 1 --uid 2 --version 1", "--uid"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, "%s %s", base, cases[i].args);
        run_cmd(args, &rc, out, sizeof out);
        cr_assert_eq(rc, 2, "%s: exit %d: %s", cases[i].args, rc, out);
        cr_assert_eq(lines(out), 1, "%s: want one line: %s", cases[i].args, out);
        cr_assert_not_null(strstr(out, cases[i].names), "%s: should name %s: %s", cases[i].args, cases[i].names,
                           out);
    }
    run_cmd("--help", &rc, out, sizeof out);
    cr_assert_eq(rc, 0);
    cr_assert_not_null(strstr(out, "--release-pub"), "%s", out);
}

Test(peer, file_errors_name_the_file)
{
    char args[4096], out[2048], other_cred[256];
    int rc;
    snprintf(args, sizeof args,
             "--tracker 127.0.0.1:9 --uid %u --version 1 --key %s/none.key --cred %s --hint-pub %s --release-pub %s",
             UID, F.dir, F.cred, F.hint_pub, F.release_pub);
    run_cmd(args, &rc, out, sizeof out);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert_not_null(strstr(out, "none.key"), "%s", out);

    snprintf(args, sizeof args,
             "--tracker 127.0.0.1:9 --uid %u --version 1 --key %s --cred %s --hint-pub %s --release-pub %s/none.pub",
             UID, F.client_key, F.cred, F.hint_pub, F.dir);
    run_cmd(args, &rc, out, sizeof out);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert_not_null(strstr(out, "none.pub"), "%s", out);

    /* a credential that is not base64 of a signed object */
    snprintf(args, sizeof args,
             "--tracker 127.0.0.1:9 --uid %u --version 1 --key %s --cred %s --hint-pub %s --release-pub %s", UID,
             F.client_key, F.hint_pub, F.hint_pub, F.release_pub);
    run_cmd(args, &rc, out, sizeof out);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert_not_null(strstr(out, "hint.pub"), "%s", out);

    /* a secret key file (its kind comment says so) as a pinned public key */
    char marked[256], why[128];
    path_in(marked, sizeof marked, F.dir, "marked.key");
    cr_assert_eq(ug_key_write(marked, true, F.client.sk, F.client.pk, why, sizeof why), 0, "%s", why);
    snprintf(args, sizeof args,
             "--tracker 127.0.0.1:9 --uid %u --version 1 --key %s --cred %s --hint-pub %s --release-pub %s", UID,
             F.client_key, F.cred, marked, F.release_pub);
    run_cmd(args, &rc, out, sizeof out);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert_not_null(strstr(out, "marked.key"), "%s", out);
    cr_assert_not_null(strstr(out, "secret key file"), "%s", out);

    /* a credential for someone else */
    path_in(other_cred, sizeof other_cred, F.dir, "other.cred");
    write_cred(other_cred, UID + 1, 3600);
    snprintf(args, sizeof args,
             "--tracker 127.0.0.1:9 --uid %u --version 1 --key %s --cred %s --hint-pub %s --release-pub %s", UID,
             F.client_key, other_cred, F.hint_pub, F.release_pub);
    run_cmd(args, &rc, out, sizeof out);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert_not_null(strstr(out, "other.cred"), "%s", out);
}

Test(peer, unwritable_out_fails_cleanly)
{
    start_httpd();
    manifest_spec ms = manifest_defaults();
    make_manifest(&ms);
    H = hint_defaults();
    tracker_start(answer_hint);
    run_result r;
    run_peer(&r, NULL, 2, "--yes --out %s/no/such/dir/x.bin", F.dl);
    tracker_stop();
    cr_assert_eq(r.rc, 1, "exit %d:\n%s", r.rc, r.out);
    cr_assert_eq(dl_entries(), 0);
}

/* ---- REPORTs -------------------------------------------------------- */

/* REPORT i verifies under the issuer and says res about `to`, from CURRENT. */
static void assert_report(unsigned i, ug_res res, const char *ver, const char *to)
{
    cr_assert_lt(i, T.nreports, "REPORT %u was not sent (%u heard)", i, T.nreports);
    const heard_report *hr = &T.reports[i];
    cr_assert(hr->valid, "REPORT %u does not parse or verify", i);
    cr_assert_eq(hr->r.res, res, "REPORT %u: res %d, want %d", i, (int)hr->r.res, (int)res);
    cr_assert_eq(hr->r.uid, UID);
    cr_assert_arr_eq(hr->r.pk, F.client.pk, UG_PK_LEN);
    ug_version v;
    cr_assert_eq(ug_version_parse(&v, ver, strlen(ver)), 0);
    cr_assert_eq(ug_version_cmp(&hr->r.ver, &v), 0, "REPORT %u: ver", i);
    cr_assert_eq(ug_version_parse(&v, to, strlen(to)), 0);
    cr_assert_eq(ug_version_cmp(&hr->r.to, &v), 0, "REPORT %u: to", i);
    uint64_t now = (uint64_t)time(NULL);
    cr_assert(hr->r.ts + 15 >= now && hr->r.ts <= now, "REPORT %u: ts is not now", i);
    cr_assert_geq(hr->len, 512, "a REPORT is padded like a HELLO");
}

Test(peer, installed_is_reported_once)
{
    start_httpd();
    manifest_spec ms = manifest_defaults();
    run_result r;
    download_with(&ms, &r);
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    cr_assert_eq(T.nreports, 1);
    assert_report(0, UG_RES_INSTALLED, CURRENT, "2.0.0");
    cr_assert_eq(T.nseen, 1, "one HELLO");
}

Test(peer, declined_is_reported)
{
    manifest_spec ms = manifest_defaults();
    make_manifest(&ms);
    H = hint_defaults();
    tracker_start(answer_hint);
    run_result r;
    run_peer(&r, "n\n", 2, "--out x.bin");
    tracker_stop();
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    cr_assert_eq(T.nreports, 1);
    assert_report(0, UG_RES_DECLINED, CURRENT, "2.0.0");
}

Test(peer, failures_are_reported_by_kind)
{
    start_httpd();
    manifest_spec ms = manifest_defaults();
    snprintf(g_url[1], sizeof g_url[1], "http://127.0.0.1:%d/nope.bin", F.http_port);
    ms.urls[0] = g_url[1];
    run_result r;
    download_with(&ms, &r);
    cr_assert_eq(r.rc, 1, "%s", r.out);
    assert_report(0, UG_RES_DOWNLOAD_FAILED, CURRENT, "2.0.0");

    ms = manifest_defaults();
    uint8_t other[UG_HASH_LEN];
    memcpy(other, F.pkg_hash, sizeof other);
    other[0] ^= 1;
    ms.hash = other;
    download_with(&ms, &r);
    cr_assert_eq(r.rc, 1, "%s", r.out);
    assert_contains(&r, "hash mismatch");
    cr_assert_eq(T.nreports, 1);
    assert_report(0, UG_RES_MISMATCH, CURRENT, "2.0.0");

    /* nowhere to put it: the package could not be installed here */
    ms = manifest_defaults();
    make_manifest(&ms);
    H = hint_defaults();
    tracker_start(answer_hint);
    run_peer(&r, NULL, 2, "--yes --out %s/no/such/dir/x.bin", F.dl);
    tracker_stop();
    cr_assert_eq(r.rc, 1, "%s", r.out);
    assert_report(0, UG_RES_INSTALL_FAILED, CURRENT, "2.0.0");
}

Test(peer, rejected_hints_and_waits_are_not_reported)
{
    manifest_spec ms = manifest_defaults();
    H = hint_defaults();
    H.signer = H.kid_of = &F.stranger;
    expect_rejected(&ms, "unknown key id");
    cr_assert_eq(T.nreports, 0);
    W.why = UG_WHY_NOT_SELECTED, W.retry = 600, W.ts_delta = 0;
    tracker_start(answer_wait);
    run_result r;
    run_peer(&r, NULL, 2, "--yes");
    tracker_stop();
    cr_assert_eq(r.rc, 0, "%s", r.out);
    cr_assert_eq(T.nreports, 0);
}

/* ---- --state: the installed version, and rollbacks -------------------- */

Test(peer, state_remembers_the_install_and_reports_a_rollback)
{
    char state[256];
    path_in(state, sizeof state, F.dir, "peer.state");
    start_httpd();
    manifest_spec ms = manifest_defaults();
    make_manifest(&ms);
    H = hint_defaults();
    tracker_start(answer_hint);
    run_result r;
    run_peer(&r, NULL, 2, "--yes --out new.bin --state %s", state);
    tracker_stop();
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    uint8_t text[64];
    size_t len;
    char why[128];
    cr_assert_eq(ug_file_read(state, text, sizeof text, &len, why, sizeof why), 0, "%s", why);
    cr_assert_eq(len, 14);
    cr_assert_arr_eq(text, "version=2.0.0\n", 14);

    /* still at CURRENT at the next start: the install was rolled back */
    W.why = UG_WHY_NOT_SELECTED, W.retry = 600, W.ts_delta = 0;
    tracker_start(answer_wait);
    run_peer(&r, NULL, 2, "--state %s", state);
    tracker_stop();
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    assert_contains(&r, "rollback reported");
    cr_assert_eq(T.nreports, 1);
    assert_report(0, UG_RES_ROLLED_BACK, CURRENT, "2.0.0");
    cr_assert_eq(T.nseen, 1, "and the HELLO still went out");
    /* the state file says what runs now: the rollback is told once */
    cr_assert_eq(ug_file_read(state, text, sizeof text, &len, why, sizeof why), 0, "%s", why);
    cr_assert_eq(len, strlen("version=" CURRENT "\n"), "%.*s", (int)len, (const char *)text);
    cr_assert_arr_eq(text, "version=" CURRENT "\n", len);
    tracker_start(answer_wait);
    run_peer(&r, NULL, 2, "--state %s", state);
    tracker_stop();
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    cr_assert_eq(T.nreports, 0, "the rollback is not reported again at the next start");

    /* at or above the installed version: nothing to report */
    tu_write_file(state, "version=1.4.2\n", 14);
    tracker_start(answer_wait);
    run_peer(&r, NULL, 2, "--state %s", state);
    tracker_stop();
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    cr_assert_eq(T.nreports, 0);

    /* a malformed state file is an error naming it */
    tu_write_file(state, "version=2.0.0", 13);
    tracker_start(answer_wait);
    run_peer(&r, NULL, 2, "--state %s", state);
    tracker_stop();
    cr_assert_eq(r.rc, 1, "exit %d:\n%s", r.rc, r.out);
    assert_contains(&r, "peer.state");
    cr_assert_eq(T.nseen, 0);
}

/* ---- resume and deadline -------------------------------------------- */

Test(peer, a_broken_off_download_is_resumed)
{
    hs_server hs;
    hs_start(&hs, F.www, "halfway", "--drop-first 2500");
    manifest_spec ms = manifest_defaults();
    snprintf(g_url[1], sizeof g_url[1], "http://127.0.0.1:%d/pkg.bin", hs.port);
    ms.urls[0] = g_url[1];
    run_result r;
    download_with(&ms, &r);
    char log[2048];
    hs_log(&hs, log, sizeof log);
    hs_stop(&hs);
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    char out[256];
    path_in(out, sizeof out, F.dl, "out.bin");
    assert_is_package(out);
    cr_assert_eq(dl_entries(), 1, "the partial file is gone");
    cr_assert_not_null(strstr(log, "range=none"), "%s", log);
    cr_assert_not_null(strstr(log, "range=bytes=2500-"), "no Range request:\n%s", log);
}

#define BIG_LEN (64 * 1024)

Test(peer, a_dripping_mirror_gives_way_at_the_deadline)
{
    static uint8_t big[BIG_LEN], got[BIG_LEN + 1];
    uint8_t big_hash[UG_HASH_LEN];
    randombytes_buf(big, sizeof big);
    crypto_generichash(big_hash, sizeof big_hash, big, sizeof big, NULL, 0);
    char p[256];
    path_in(p, sizeof p, F.www, "big.bin");
    tu_write_file(p, big, sizeof big);
    hs_server drip;
    hs_start(&drip, F.www, "drip", "--rate 2048"); /* 32 s for the whole package */
    start_httpd();
    manifest_spec ms = manifest_defaults();
    snprintf(g_url[1], sizeof g_url[1], "http://127.0.0.1:%d/big.bin", drip.port);
    snprintf(g_url[2], sizeof g_url[2], "http://127.0.0.1:%d/big.bin", F.http_port);
    ms.urls[0] = g_url[1];
    ms.urls[1] = g_url[2];
    ms.nurls = 2;
    ms.size = BIG_LEN;
    ms.hash = big_hash;
    make_manifest(&ms);
    H = hint_defaults(); /* mirror 0: the drip */
    tracker_start(answer_hint);
    run_result r;
    run_peer(&r, NULL, 2, "--yes --out big.bin --deadline 3");
    tracker_stop();
    char log[2048];
    hs_log(&drip, log, sizeof log);
    hs_stop(&drip);
    cr_assert_eq(r.rc, 0, "exit %d:\n%s", r.rc, r.out);
    cr_assert(r.secs < 10.0, "took %.1f s with --deadline 3", r.secs);
    assert_contains(&r, "trying the next mirror");
    assert_contains(&r, "deadline");
    cr_assert_not_null(strstr(log, "GET /big.bin"), "the drip was tried first:\n%s", log);
    char out[256], why[128];
    size_t len;
    path_in(out, sizeof out, F.dl, "big.bin");
    cr_assert_eq(ug_file_read(out, got, sizeof got, &len, why, sizeof why), 0, "%s", why);
    cr_assert_eq(len, BIG_LEN);
    cr_assert_arr_eq(got, big, BIG_LEN);
    assert_report(0, UG_RES_INSTALLED, CURRENT, "2.0.0");
}

Test(peer, deadline_and_state_usage)
{
    char base[2048], args[4096], out[2048];
    int rc;
    snprintf(base, sizeof base,
             "--tracker 127.0.0.1:9 --uid 1 --version 1 --key %s --cred %s --hint-pub %s --release-pub %s",
             F.client_key, F.cred, F.hint_pub, F.release_pub);
    static const char *const cases[] = {"--deadline 0", "--deadline 1x", "--deadline 99999999", "--state ''"};
    static const char *const names[] = {"--deadline", "--deadline", "--deadline", "--state"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, "%s %s", base, cases[i]);
        run_cmd(args, &rc, out, sizeof out);
        cr_assert_eq(rc, 2, "%s: exit %d: %s", cases[i], rc, out);
        cr_assert_eq(lines(out), 1, "%s: %s", cases[i], out);
        cr_assert_not_null(strstr(out, names[i]), "%s: %s", cases[i], out);
    }
    run_cmd("--help", &rc, out, sizeof out);
    cr_assert_eq(rc, 0);
    cr_assert_not_null(strstr(out, "--deadline"), "%s", out);
    cr_assert_not_null(strstr(out, "--state"), "%s", out);
}
