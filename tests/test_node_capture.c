/* upgate-node --capture: records from real HELLOs read back, rotation, torn tails; the reader's strictness. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "nodeutil.h"
#include "testutil.h"

static nu_node N;

static void teardown(void)
{
    if (N.pid)
        nu_stop(&N, SIGKILL);
}

TestSuite(node_capture, .fini = teardown, .timeout = 120);

/* Every record of path, into recs; asserts the file reads cleanly. */
static int read_all(const char *path, ug_capture_rec *recs, int cap)
{
    char err[512];
    ug_capture_reader *r = ug_capture_open(path, err, sizeof err);
    cr_assert(r, "%s", err);
    int n = 0, rc;
    ug_capture_rec rec;
    while ((rc = ug_capture_next(r, &rec, err, sizeof err)) == 1) {
        if (n < cap)
            recs[n] = rec;
        n++;
    }
    cr_assert_eq(rc, 0, "clean end: %s", err);
    ug_capture_close(r);
    return n;
}

static int peer(uint64_t uid, const char *ver, const char *extra)
{
    const char *b = tu_build_dir();
    return nu_sh("cd %s && %s/upgate-keys cred --issuer issuer.key --uid %llu --pub client.pub --ttl 3600 --out c.cred "
                 "&& %s/upgate-peer --tracker 127.0.0.1:%u --uid %llu --version %s --key client.key --cred c.cred "
                 "--hint-pub hint.pub --release-pub release.pub --timeout 10 --no %s </dev/null >/dev/null 2>&1",
                 N.dir, b, (unsigned long long)uid, b, N.port, (unsigned long long)uid, ver, extra);
}

Test(node_capture, real_hellos_read_back_with_their_fields)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    const char *cap = nu_path(&N, "hellos.cap");
    const char *extra[] = {"--capture", cap, NULL};
    nu_start(&N, extra, NULL);
    cr_assert(strstr(N.ready, "capture "), "%s", N.ready);
    cr_assert_eq(peer(41, "1.4.0", "--plat linux-x86_64 --chan beta"), 0);
    cr_assert_eq(peer(42, "1.4", ""), 0);
    cr_assert_eq(peer(43, "1.9", ""), 0); /* untargeted: the plugin passes it, not captured */
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
    struct stat st;
    cr_assert_eq(stat(cap, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "peers' addresses are private: %o", st.st_mode & 0777);
    ug_capture_rec r[8];
    int n = read_all(cap, r, 8);
    cr_assert_eq(n, 2, "one record per targeted HELLO");
    uint64_t now_ms = (uint64_t)time(NULL) * 1000u;
    for (int i = 0; i < 2; i++) {
        cr_assert(r[i].time_ms > now_ms - 60000 && r[i].time_ms <= now_ms + 1000, "time in ms");
        cr_assert_eq(r[i].family, 4);
        cr_assert_eq(memcmp(r[i].addr, "\x7f\0\0\1", 4), 0);
        cr_assert_gt(r[i].port, 0);
        cr_assert_eq(r[i].verdict, UG_VERDICT_REPLY);
        cr_assert_eq(r[i].reply, UG_TYPE_HINT);
    }
    cr_assert_eq(r[0].uid, 41);
    cr_assert_str_eq(r[0].ver, "1.4.0");
    cr_assert_str_eq(r[0].plat, "linux-x86_64");
    cr_assert_str_eq(r[0].chan, "beta");
    cr_assert_eq(r[1].uid, 42);
    cr_assert_str_eq(r[1].ver, "1.4", "the version as the peer sent it (canonical text)");
    cr_assert_str_eq(r[1].plat, "");
    cr_assert_str_eq(r[1].chan, "");
    /* nothing secret: the client's public key is nowhere in the file */
    cr_assert_neq(nu_sh("cd %s && k=$(tail -n 1 client.pub | base64 -d | od -An -tx1 | tr -d ' \\n') && "
                        "od -An -tx1 hellos.cap | tr -d ' \\n' | grep -q \"$k\"", N.dir), 0);
}

static void send_hellos(int n, uint64_t uid0)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)N.port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    uint8_t h[UG_DGRAM_MAX];
    for (int i = 0; i < n; i++) {
        size_t len = nu_hello(h, sizeof h, uid0 + (uint64_t)i, "1.4.0", NULL, NULL);
        cr_assert_eq(sendto(fd, h, len, 0, (struct sockaddr *)&to, sizeof to), (ssize_t)len);
        if (i % 16 == 15)
            nu_sleep_ms(2);
    }
    close(fd);
}

Test(node_capture, rotates_at_the_limit_keeping_one_old_file)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    const char *cap = nu_path(&N, "hellos.cap"), *old = nu_path(&N, "hellos.cap.1");
    const char *extra[] = {"--capture", cap, "--capture-max", "4096", NULL};
    nu_start(&N, extra, NULL);
    send_hellos(150, 1000);
    nu_sleep_ms(300);
    char line[4096];
    nu_stats(&N, line, sizeof line);
    cr_assert_eq(nu_stat(line, "node_captured"), 150, "%s", line);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
    struct stat a, b;
    cr_assert_eq(stat(cap, &a), 0);
    cr_assert_eq(stat(old, &b), 0, "rotated to FILE.1");
    cr_assert_leq(a.st_size, 4096);
    cr_assert_leq(b.st_size, 4096);
    cr_assert_gt(b.st_size, 4096 - UG_CAP_RECORD_MAX, "filled up to the limit before rotating");
    static ug_capture_rec r1[200], r2[200];
    int n1 = read_all(old, r1, 200), n2 = read_all(cap, r2, 200);
    cr_assert_eq(n1 + n2, 150, "every HELLO in one of the two files");
    cr_assert_eq(r1[0].uid, 1000);
    cr_assert_eq(r2[n2 - 1].uid, 1149, "in order, newest last");
    cr_assert_eq(r1[0].verdict, UG_VERDICT_DROP, "a credential nobody trusts is dropped, and captured");
}

Test(node_capture, torn_tail_is_reported_then_cut_on_restart)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    const char *cap = nu_path(&N, "hellos.cap");
    const char *extra[] = {"--capture", cap, NULL};
    nu_start(&N, extra, NULL);
    send_hellos(5, 1);
    nu_sleep_ms(300);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
    struct stat st;
    cr_assert_eq(stat(cap, &st), 0);
    cr_assert_eq(truncate(cap, st.st_size - 3), 0); /* a crash mid-record */

    char err[512];
    ug_capture_reader *r = ug_capture_open(cap, err, sizeof err);
    cr_assert(r, "%s", err);
    ug_capture_rec rec;
    int n = 0, rc;
    while ((rc = ug_capture_next(r, &rec, err, sizeof err)) == 1)
        n++;
    cr_assert_eq(rc, -1);
    cr_assert_eq(n, 4, "the whole records before the torn one");
    char want[256];
    snprintf(want, sizeof want, "%s: at byte %llu: record cut short", cap, (unsigned long long)ug_capture_offset(r));
    cr_assert(strstr(err, want), "names the file and the offset: %s (want %s)", err, want);
    uint64_t good = ug_capture_offset(r);
    ug_capture_close(r);

    nu_start(&N, extra, NULL);
    send_hellos(2, 100);
    nu_sleep_ms(300);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
    char log[8192];
    nu_stderr(&N, log, sizeof log);
    cr_assert(strstr(log, "warning upgate-node: ") && strstr(log, "cut a torn last record"), "%s", log);
    ug_capture_rec recs[16];
    cr_assert_eq(read_all(cap, recs, 16), 6, "4 kept, 2 new, the torn one gone");
    cr_assert_eq(recs[4].uid, 100);
    cr_assert_gt(good, UG_CAP_HEADER_LEN);
}

Test(node_capture, a_file_that_is_not_a_capture_is_left_alone)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    const char *cap = nu_path(&N, "notes.txt");
    nu_write(cap, "my notes, not a capture\n");
    const char *extra[] = {"--capture", cap, NULL};
    char err[4096];
    cr_assert_eq(nu_start_fails(&N, extra, NULL, err, sizeof err), 1, "%s", err);
    cr_assert(strstr(err, cap) && strstr(err, "not an upgate capture file"), "%s", err);
    const char *small[] = {"--capture", cap, "--capture-max", "100", NULL};
    cr_assert_eq(nu_start_fails(&N, small, NULL, err, sizeof err), 2, "%s", err);
}

/* ---- the reader on its own ------------------------------------------ */

static size_t first_end; /* where sample_file's first record ends */

static size_t sample_file(uint8_t *buf, size_t cap)
{
    ug_capture_header(buf);
    size_t at = UG_CAP_HEADER_LEN;
    ug_capture_rec a = {.time_ms = 1790000000123, .uid = 77, .verdict = 0, .reply = 3, .ver = "1.4.0",
                        .plat = "linux", .chan = "beta"};
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(4242)};
    inet_pton(AF_INET6, "2001:db8::7", &s6.sin6_addr);
    cr_assert_eq(ug_capture_set_src(&a, (struct sockaddr *)&s6, sizeof s6), 0);
    size_t n = ug_capture_encode(buf + at, cap - at, &a);
    cr_assert_gt(n, 0);
    at += n;
    first_end = at;
    ug_capture_rec b = {.time_ms = 1, .uid = UG_UID_MAX, .verdict = 2, .ver = "4294967295.0.1.2"};
    struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(1)};
    inet_pton(AF_INET, "10.1.2.3", &s4.sin_addr);
    cr_assert_eq(ug_capture_set_src(&b, (struct sockaddr *)&s4, sizeof s4), 0);
    n = ug_capture_encode(buf + at, cap - at, &b);
    cr_assert_gt(n, 0);
    return at + n;
}

static int read_mem(uint8_t *buf, size_t len, ug_capture_rec *recs, char *err, size_t errcap)
{
    FILE *f = fmemopen(buf, len, "rb");
    ug_capture_reader *r = ug_capture_open_stream(f, "mem.cap", err, errcap);
    if (!r)
        return -100;
    int n = 0, rc;
    while ((rc = ug_capture_next(r, &recs[n < 4 ? n : 3], err, errcap)) == 1)
        n++;
    ug_capture_close(r);
    return rc < 0 ? -1 - n : n;
}

Test(node_capture, reader_round_trip_and_strictness)
{
    cr_assert_eq(ug_crc32c(0, (const uint8_t *)"123456789", 9), 0xE3069283u, "CRC-32C check value");
    uint8_t buf[1024];
    size_t len = sample_file(buf, sizeof buf);
    ug_capture_rec r[4];
    char err[512];
    cr_assert_eq(read_mem(buf, len, r, err, sizeof err), 2, "%s", err);
    cr_assert_eq(r[0].uid, 77);
    cr_assert_eq(r[0].family, 6);
    struct sockaddr_storage ss;
    socklen_t sl;
    ug_capture_src(&r[0], &ss, &sl);
    char shown[64];
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, shown, sizeof shown);
    cr_assert_str_eq(shown, "2001:db8::7");
    cr_assert_eq(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 4242);
    cr_assert_str_eq(r[0].plat, "linux");
    cr_assert_eq(r[0].reply, 3);
    cr_assert_eq(r[1].uid, UG_UID_MAX);
    cr_assert_str_eq(r[1].ver, "4294967295.0.1.2");
    cr_assert_eq(memcmp(r[1].addr, "\x0a\x01\x02\x03", 4), 0);

    /* every truncation is an error, never a crash or a short success */
    for (size_t cut = 0; cut < len; cut++) {
        int rc = read_mem(buf, cut, r, err, sizeof err);
        int want = cut < UG_CAP_HEADER_LEN ? -100 : cut == UG_CAP_HEADER_LEN ? 0 : cut < first_end ? -1
                 : cut == first_end ? 1 : -2;
        cr_assert_eq(rc, want, "cut at %zu read as %d: %s", cut, rc, err);
    }
    /* one flipped bit anywhere after the header: the CRC or a check catches it */
    for (size_t i = UG_CAP_HEADER_LEN; i < len; i++) {
        buf[i] ^= 0x10;
        cr_assert_lt(read_mem(buf, len, r, err, sizeof err), 2, "bit flip at %zu went unnoticed", i);
        buf[i] ^= 0x10;
    }
    buf[7] = 2;
    cr_assert_eq(read_mem(buf, len, r, err, sizeof err), -100);
    cr_assert(strstr(err, "version 2"), "%s", err);
    buf[7] = 1, buf[0] = 'X';
    cr_assert_eq(read_mem(buf, len, r, err, sizeof err), -100);
    cr_assert(strstr(err, "mem.cap") && strstr(err, "not an upgate capture file"), "%s", err);
    buf[0] = 'U';
    buf[UG_CAP_HEADER_LEN] = 0xff, buf[UG_CAP_HEADER_LEN + 1] = 0xff;
    cr_assert_eq(read_mem(buf, len, r, err, sizeof err), -1);
    cr_assert(strstr(err, "mem.cap: at byte 8: record length 65535"), "%s", err);

    ug_capture_rec bad = {.family = 5, .ver = "1"};
    cr_assert_eq(ug_capture_encode(buf, sizeof buf, &bad), 0, "unknown family refused");
    ug_capture_rec nover = {.family = 4};
    cr_assert_eq(ug_capture_encode(buf, sizeof buf, &nover), 0, "a version is required");
}

/* Issue 21 §5: --capture never writes through a link someone left at its
 * path: a dangling one is refused and its target is not created. */
Test(node_capture, a_symbolic_link_at_the_path_is_refused)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    char target[600];
    snprintf(target, sizeof target, "%s", nu_path(&N, "elsewhere"));
    const char *cap = nu_path(&N, "cap.log");
    cr_assert_eq(symlink(target, cap), 0);
    const char *extra[] = {"--capture", cap, NULL};
    char err[4096];
    cr_assert_eq(nu_start_fails(&N, extra, NULL, err, sizeof err), 1, "%s", err);
    cr_assert(strstr(err, "symbolic link"), "%s", err);
    cr_assert_neq(access(target, F_OK), 0, "the link's target was not created");
}
