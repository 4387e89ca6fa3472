/* Tests of libupgate's downloads against tests/httpserv.py: Range resume, restarts, start-over, deadline, the multi API. */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <upgate/client.h>

#include "httpserv.h"
#include "testutil.h"

#define PKG_LEN 40000
#define BIG_LEN (64 * 1024)

static struct {
    char dir[64], www[128], dest[160], part[170], id[180];
    uint8_t pkg[PKG_LEN], big[BIG_LEN], other[PKG_LEN];
    hs_server srv, srv2;
    ug_client *c;
} D;

static void setup(void)
{
    cr_assert(sodium_init() >= 0);
    signal(SIGPIPE, SIG_IGN);
    memset(&D, 0, sizeof D);
    snprintf(D.dir, sizeof D.dir, "%s", tu_tmpdir());
    snprintf(D.www, sizeof D.www, "%s/www", D.dir);
    snprintf(D.dest, sizeof D.dest, "%s/got.bin", D.dir);
    snprintf(D.part, sizeof D.part, "%s.part", D.dest);
    snprintf(D.id, sizeof D.id, "%s.part.id", D.dest);
    cr_assert_eq(mkdir(D.www, 0755), 0);
    randombytes_buf(D.pkg, sizeof D.pkg);
    randombytes_buf(D.big, sizeof D.big);
    randombytes_buf(D.other, sizeof D.other);
    char p[256];
    snprintf(p, sizeof p, "%s/pkg.bin", D.www);
    tu_write_file(p, D.pkg, sizeof D.pkg);
    snprintf(p, sizeof p, "%s/big.bin", D.www);
    tu_write_file(p, D.big, sizeof D.big);
    snprintf(p, sizeof p, "%s/other.bin", D.www);
    tu_write_file(p, D.other, sizeof D.other);
    ug_client_config cfg;
    ug_client_config_init(&cfg);
    cfg.uid = 7;
    cfg.version = "1.0";
    cr_assert_eq(ug_client_new(&cfg, &D.c, NULL), UG_CLIENT_OK);
}

static void teardown(void)
{
    hs_stop(&D.srv);
    hs_stop(&D.srv2);
    ug_client_free(D.c);
}

TestSuite(client_dl, .init = setup, .fini = teardown, .timeout = 60);

/* An offer of data[0..len) at the given URLs (try order). */
static ug_client_offer offer_of(const uint8_t *data, size_t len, const char *url0, const char *url1)
{
    ug_client_offer o;
    memset(&o, 0, sizeof o);
    snprintf(o.to, sizeof o.to, "2.0.0");
    o.size = len;
    crypto_generichash(o.hash, sizeof o.hash, data, len, NULL, 0);
    snprintf(o.urls[o.nurls++], sizeof o.urls[0], "%s", url0);
    if (url1)
        snprintf(o.urls[o.nurls++], sizeof o.urls[0], "%s", url1);
    o.exp = (uint64_t)time(NULL) + 3600;
    return o;
}

static void url_of(char *out, size_t cap, const hs_server *s, const char *name)
{
    snprintf(out, cap, "http://127.0.0.1:%d/%s", s->port, name);
}

static void assert_file(const char *path, const uint8_t *data, size_t len)
{
    static uint8_t buf[BIG_LEN + 16];
    size_t got;
    char why[128];
    cr_assert_eq(ug_file_read(path, buf, sizeof buf, &got, why, sizeof why), 0, "%s: %s", path, why);
    cr_assert_eq(got, len, "%s holds %zu bytes, want %zu", path, got, len);
    cr_assert_arr_eq(buf, data, len, "%s differs", path);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static struct {
    char url[256], why[256];
    unsigned calls;
} FB;

static void on_fallback(void *ctx, const char *url, const char *why)
{
    (void)ctx;
    snprintf(FB.url, sizeof FB.url, "%s", url);
    snprintf(FB.why, sizeof FB.why, "%s", why);
    FB.calls++;
}

static off_t size_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
    return st.st_size;
}

static unsigned count(const char *hay, const char *needle)
{
    unsigned n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Leaves a partial file of the package at name behind: a dripping mirror
 * and a 1-second deadline interrupt the download. Returns its size. */
static off_t interrupted_download(const char *name, const uint8_t *data, size_t len)
{
    hs_server drip;
    hs_start(&drip, D.www, "drip", "--rate 8192");
    char url[128];
    url_of(url, sizeof url, &drip, name);
    ug_client_offer o = offer_of(data, len, url, NULL);
    ug_client_download_config dc;
    ug_client_download_config_init(&dc);
    dc.dest = D.dest;
    dc.deadline_s = 1;
    ug_client_err e = ug_client_download(D.c, &o, &dc);
    hs_stop(&drip);
    cr_assert_eq(e, UG_CLIENT_E_DEADLINE, "%s: %s", ug_client_strerror(e), ug_client_errmsg(D.c));
    cr_assert_not_null(strstr(ug_client_errmsg(D.c), "deadline"), "%s", ug_client_errmsg(D.c));
    cr_assert(!exists(D.dest));
    off_t have = size_of(D.part);
    cr_assert(have > 0 && (size_t)have < len, "partial file of %lld bytes", (long long)have);
    cr_assert(exists(D.id));
    return have;
}

static ug_client_download_config config(void)
{
    ug_client_download_config dc;
    ug_client_download_config_init(&dc);
    dc.dest = D.dest;
    return dc;
}

Test(client_dl, a_mirror_that_breaks_off_is_resumed_with_range)
{
    char flags[64], url[128], log[4096], want[64];
    snprintf(flags, sizeof flags, "--drop-first %d", PKG_LEN / 2);
    hs_start(&D.srv, D.www, "srv", flags);
    url_of(url, sizeof url, &D.srv, "pkg.bin");
    ug_client_offer o = offer_of(D.pkg, PKG_LEN, url, NULL);
    ug_client_download_config dc = config();
    ug_client_err e = ug_client_download(D.c, &o, &dc);
    cr_assert_eq(e, UG_CLIENT_OK, "%s", ug_client_errmsg(D.c));
    assert_file(D.dest, D.pkg, PKG_LEN);
    cr_assert(!exists(D.part) && !exists(D.id), "partial file left behind");
    hs_log(&D.srv, log, sizeof log);
    snprintf(want, sizeof want, "range=bytes=%d-", PKG_LEN / 2);
    cr_assert_eq(count(log, "GET /pkg.bin"), 2, "%s", log);
    cr_assert_not_null(strstr(log, "range=none"), "%s", log);
    cr_assert_not_null(strstr(log, want), "want a request for %s:\n%s", want, log);
}

/* After an interrupted download of `first`, downloads pkg.bin from a server
 * started with flags; it must verify and leave nothing behind. The
 * server's log goes to log. */
static void download_after(const char *first, const uint8_t *first_data, const char *flags, off_t *have,
                           char *log, size_t cap)
{
    *have = interrupted_download(first, first_data, PKG_LEN);
    hs_start(&D.srv, D.www, "srv", flags);
    char url[128];
    url_of(url, sizeof url, &D.srv, "pkg.bin");
    ug_client_offer o = offer_of(D.pkg, PKG_LEN, url, NULL);
    ug_client_download_config dc = config();
    cr_assert_eq(ug_client_download(D.c, &o, &dc), UG_CLIENT_OK, "%s", ug_client_errmsg(D.c));
    assert_file(D.dest, D.pkg, PKG_LEN);
    cr_assert(!exists(D.part) && !exists(D.id), "partial file left behind");
    hs_log(&D.srv, log, cap);
    cr_assert_eq(count(log, "GET"), 1, "%s", log);
}

Test(client_dl, a_restart_resumes_the_partial_file)
{
    char log[4096], want[64];
    off_t have;
    download_after("pkg.bin", D.pkg, "", &have, log, sizeof log);
    snprintf(want, sizeof want, "range=bytes=%lld-\n", (long long)have);
    cr_assert_not_null(strstr(log, want), "want %s:\n%s", want, log);
}

Test(client_dl, a_partial_file_of_another_release_is_discarded)
{
    char log[4096];
    off_t have;
    download_after("other.bin", D.other, "", &have, log, sizeof log);
    cr_assert_str_eq(log, "GET /pkg.bin range=none\n", "the other release's bytes were resumed:\n%s", log);
}

Test(client_dl, a_server_ignoring_range_sends_it_all_again)
{
    char log[4096];
    off_t have;
    download_after("pkg.bin", D.pkg, "--ignore-range", &have, log, sizeof log);
    cr_assert_not_null(strstr(log, "range=bytes="), "it asked for a range:\n%s", log);
}

Test(client_dl, a_wrong_range_moves_on_and_keeps_the_bytes)
{
    off_t have = interrupted_download("pkg.bin", D.pkg, PKG_LEN);
    hs_start(&D.srv, D.www, "srv", "--wrong-range");
    hs_start(&D.srv2, D.www, "srv2", "");
    char url[128], url2[128], log[4096], want[64];
    url_of(url, sizeof url, &D.srv, "pkg.bin");
    url_of(url2, sizeof url2, &D.srv2, "pkg.bin");
    ug_client_offer o = offer_of(D.pkg, PKG_LEN, url, url2);
    ug_client_download_config dc = config();
    memset(&FB, 0, sizeof FB);
    dc.fallback = on_fallback;
    cr_assert_eq(ug_client_download(D.c, &o, &dc), UG_CLIENT_OK, "%s", ug_client_errmsg(D.c));
    assert_file(D.dest, D.pkg, PKG_LEN);
    cr_assert_eq(FB.calls, 1);
    cr_assert_not_null(strstr(FB.why, "another range"), "%s", FB.why);
    /* the second mirror resumed where the first run stopped */
    hs_log(&D.srv2, log, sizeof log);
    snprintf(want, sizeof want, "GET /pkg.bin range=bytes=%lld-\n", (long long)have);
    cr_assert_str_eq(log, want);
}

Test(client_dl, a_complete_partial_file_is_installed_without_a_request)
{
    hs_start(&D.srv, D.www, "srv", "");
    char url[128], log[4096];
    url_of(url, sizeof url, &D.srv, "pkg.bin");
    ug_client_offer o = offer_of(D.pkg, PKG_LEN, url, NULL);
    ug_client_download_config dc = config();
    /* the rename fails (a folder is in the way): the verified bytes stay in DEST.part */
    cr_assert_eq(mkdir(D.dest, 0755), 0);
    cr_assert_eq(ug_client_download(D.c, &o, &dc), UG_CLIENT_E_IO);
    cr_assert_not_null(strstr(ug_client_errmsg(D.c), D.dest), "%s", ug_client_errmsg(D.c));
    cr_assert_eq(ug_client_res_of(UG_CLIENT_E_IO), UG_CLIENT_RES_INSTALL_FAILED);
    cr_assert_eq(size_of(D.part), PKG_LEN);
    cr_assert_eq(rmdir(D.dest), 0);
    hs_stop(&D.srv);
    unlink(D.srv.log);
    cr_assert_eq(ug_client_download(D.c, &o, &dc), UG_CLIENT_OK, "%s", ug_client_errmsg(D.c));
    assert_file(D.dest, D.pkg, PKG_LEN);
    hs_log(&D.srv, log, sizeof log);
    cr_assert_str_eq(log, "", "asked again: %s", log);
}

Test(client_dl, wrong_bytes_are_a_mismatch_and_not_kept)
{
    hs_start(&D.srv, D.www, "srv", "");
    char url[128], url2[128];
    url_of(url, sizeof url, &D.srv, "other.bin"); /* same size, other bytes */
    url_of(url2, sizeof url2, &D.srv, "big.bin");  /* too many bytes */
    ug_client_offer o = offer_of(D.pkg, PKG_LEN, url, url2);
    ug_client_download_config dc = config();
    ug_client_err e = ug_client_download(D.c, &o, &dc);
    cr_assert_eq(e, UG_CLIENT_E_MISMATCH, "%s", ug_client_strerror(e));
    cr_assert_eq(ug_client_res_of(e), UG_CLIENT_RES_MISMATCH);
    cr_assert_not_null(strstr(ug_client_errmsg(D.c), "more than"), "%s", ug_client_errmsg(D.c));
    cr_assert_not_null(strstr(ug_client_errmsg(D.c), "no mirror left"), "%s", ug_client_errmsg(D.c));
    cr_assert(!exists(D.dest) && !exists(D.part) && !exists(D.id), "something was kept");
}

Test(client_dl, a_dripping_mirror_is_given_up_at_the_deadline)
{
    hs_start(&D.srv, D.www, "srv", "--rate 2048");
    char url[128];
    url_of(url, sizeof url, &D.srv, "big.bin");
    ug_client_offer o = offer_of(D.big, BIG_LEN, url, NULL);
    ug_client_download_config dc = config();
    dc.deadline_s = 2;
    double t0 = now_s();
    ug_client_err e = ug_client_download(D.c, &o, &dc);
    double took = now_s() - t0;
    cr_assert_eq(e, UG_CLIENT_E_DEADLINE, "%s: %s", ug_client_strerror(e), ug_client_errmsg(D.c));
    cr_assert(took >= 1.5 && took < 5.0, "took %.1f s with a 2 s deadline", took);
    cr_assert(exists(D.part), "the partial file is kept for a resume");
    cr_assert(!exists(D.dest));
}

/* Progress as the application sees it. */
static struct {
    uint64_t last, total, calls;
    bool backwards;
} P;

static void on_progress(void *ctx, uint64_t done, uint64_t total, const char *url)
{
    (void)ctx;
    cr_assert_not_null(url);
    if (done < P.last)
        P.backwards = true;
    P.last = done;
    P.total = total;
    P.calls++;
}

Test(client_dl, the_multi_interface_from_the_applications_loop)
{
    hs_start(&D.srv, D.www, "srv", "");
    char bad[128], good[128];
    snprintf(bad, sizeof bad, "http://127.0.0.1:%d/nope.bin", D.srv.port);
    url_of(good, sizeof good, &D.srv, "big.bin");
    ug_client_offer o = offer_of(D.big, BIG_LEN, bad, good);
    ug_client_download_config dc = config();
    dc.progress = on_progress;
    dc.fallback = on_fallback;
    memset(&P, 0, sizeof P);
    memset(&FB, 0, sizeof FB);
    ug_client_transfer *t = NULL;
    cr_assert_eq(ug_client_download_start(D.c, &o, &dc, &t), UG_CLIENT_OK, "%s", ug_client_errmsg(D.c));
    cr_assert_not_null(ug_client_download_multi(t));
    cr_assert_eq(ug_client_download_result(t), UG_CLIENT_E_AGAIN);
    int running = 1;
    for (unsigned round = 0; running && round < 10000; round++) {
        fd_set rd, wr, ex;
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        FD_ZERO(&ex);
        int maxfd = -1;
        long ms = -1;
        cr_assert_eq(ug_client_download_fdset(t, &rd, &wr, &ex, &maxfd), UG_CLIENT_OK);
        cr_assert_eq(ug_client_download_timeout(t, &ms), UG_CLIENT_OK);
        if (ms < 0 || ms > 100)
            ms = 100;
        struct timeval tv = {0, ms * 1000};
        select(maxfd + 1, &rd, &wr, &ex, &tv);
        cr_assert_eq(ug_client_download_perform(t, &running), UG_CLIENT_OK);
    }
    cr_assert_eq(running, 0);
    cr_assert_eq(ug_client_download_result(t), UG_CLIENT_OK, "%s", ug_client_download_errmsg(t));
    ug_client_download_free(t);
    assert_file(D.dest, D.big, BIG_LEN);
    cr_assert_eq(FB.calls, 1);
    cr_assert_str_eq(FB.url, bad);
    cr_assert_not_null(strstr(FB.why, "404"), "%s", FB.why);
    cr_assert(!P.backwards);
    cr_assert_eq(P.last, BIG_LEN);
    cr_assert_eq(P.total, BIG_LEN);
    cr_assert_geq(P.calls, 1);
}

Test(client_dl, a_stopped_transfer_keeps_its_bytes)
{
    hs_start(&D.srv, D.www, "srv", "--rate 16384");
    char url[128];
    url_of(url, sizeof url, &D.srv, "big.bin");
    ug_client_offer o = offer_of(D.big, BIG_LEN, url, NULL);
    ug_client_download_config dc = config();
    ug_client_transfer *t;
    cr_assert_eq(ug_client_download_start(D.c, &o, &dc, &t), UG_CLIENT_OK);
    int running = 1;
    for (unsigned i = 0; i < 200 && running; i++) { /* about a second */
        cr_assert_eq(curl_multi_poll(ug_client_download_multi(t), NULL, 0, 5, NULL), CURLM_OK);
        cr_assert_eq(ug_client_download_perform(t, &running), UG_CLIENT_OK);
    }
    cr_assert_eq(running, 1);
    ug_client_download_free(t);
    cr_assert(size_of(D.part) > 0);
    cr_assert(!exists(D.dest));
}

Test(client_dl, refusals)
{
    ug_client_offer o = offer_of(D.pkg, PKG_LEN, "http://127.0.0.1:9/pkg.bin", NULL);
    ug_client_download_config dc = config();
    ug_client_transfer *t = (ug_client_transfer *)&o;
    o.exp = (uint64_t)time(NULL) - 1;
    cr_assert_eq(ug_client_download_start(D.c, &o, &dc, &t), UG_CLIENT_E_EXPIRED);
    cr_assert_null(t);
    o.exp += 3600;
    dc.dest = NULL;
    cr_assert_eq(ug_client_download(D.c, &o, &dc), UG_CLIENT_E_INVALID);
    cr_assert_not_null(strstr(ug_client_errmsg(D.c), "dest"));
    dc.dest = D.dest;
    snprintf(o.urls[0], sizeof o.urls[0], "ftp://127.0.0.1/pkg.bin");
    cr_assert_eq(ug_client_download(D.c, &o, &dc), UG_CLIENT_E_INVALID, "only http and https");
    o.nurls = 0;
    cr_assert_eq(ug_client_download(D.c, &o, &dc), UG_CLIENT_E_INVALID);
    /* a dead mirror: download failed, nothing left behind */
    o = offer_of(D.pkg, PKG_LEN, "http://127.0.0.1:9/pkg.bin", NULL);
    cr_assert_eq(ug_client_download(D.c, &o, &dc), UG_CLIENT_E_DOWNLOAD);
    cr_assert_eq(ug_client_res_of(UG_CLIENT_E_DOWNLOAD), UG_CLIENT_RES_DOWNLOAD_FAILED);
    cr_assert(!exists(D.part) && !exists(D.id));
    /* a folder that does not exist */
    char deep[256];
    snprintf(deep, sizeof deep, "%s/no/such/x.bin", D.dir);
    dc.dest = deep;
    cr_assert_eq(ug_client_download(D.c, &o, &dc), UG_CLIENT_E_IO);
    cr_assert_not_null(strstr(ug_client_errmsg(D.c), "x.bin.part"), "%s", ug_client_errmsg(D.c));
}

/* Issue 21 §6: a mirror that drips is abandoned once its rate since the
 * first byte (after a 10 s grace) cannot finish within its share of the
 * deadline; the next mirror resumes after its bytes with the time left
 * (before: it held the download for all of its share, 20 s here). */
Test(client_dl, a_mirror_too_slow_to_finish_is_abandoned_early)
{
    hs_server fast;
    hs_start(&D.srv, D.www, "srv", "--rate 2048");
    hs_start(&fast, D.www, "fast", "");
    char slow_url[128], fast_url[128];
    url_of(slow_url, sizeof slow_url, &D.srv, "big.bin");
    url_of(fast_url, sizeof fast_url, &fast, "big.bin");
    ug_client_offer o = offer_of(D.big, BIG_LEN, slow_url, fast_url);
    ug_client_download_config dc = config();
    dc.deadline_s = 40; /* 20 s for each mirror; the drip needs 32 s for it all */
    dc.fallback = on_fallback;
    FB.calls = 0;
    ug_client_err e = ug_client_download(D.c, &o, &dc);
    char log[4096];
    hs_log(&fast, log, sizeof log);
    hs_stop(&fast);
    cr_assert_eq(e, UG_CLIENT_OK, "%s: %s", ug_client_strerror(e), ug_client_errmsg(D.c));
    cr_assert_eq(FB.calls, 1);
    cr_assert_not_null(strstr(FB.why, "too slow"), "given up for its rate: %s", FB.why);
    cr_assert_not_null(strstr(log, "range=bytes="), "the next mirror resumed after its bytes: %s", log);
    assert_file(D.dest, D.big, BIG_LEN);
}
