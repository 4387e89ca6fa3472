/* Tests of delta/: round trips on built programs and text, the 60% refusal, the delta check, tampered and hostile frames, caps, limits, the zstd CLI both ways. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "testutil.h"
#include "ug_delta.h"

typedef struct {
    uint8_t *p;
    size_t n;
} blob;

static const char *dir;

static void setup(void)
{
    cr_assert(sodium_init() >= 0);
    dir = tu_tmpdir();
}

TestSuite(delta, .init = setup);

static const char *path(const char *name)
{
    static char buf[4][PATH_MAX];
    static unsigned next;
    char *p = buf[next++ % 4];
    cr_assert_lt((size_t)snprintf(p, PATH_MAX, "%s/%s", dir, name), PATH_MAX);
    return p;
}

static blob slurp(const char *file)
{
    FILE *f = fopen(file, "rb");
    cr_assert_not_null(f, "%s: %s", file, strerror(errno));
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    cr_assert_geq(n, 0);
    rewind(f);
    blob b = {malloc((size_t)n + 1), (size_t)n};
    cr_assert_not_null(b.p);
    cr_assert_eq(fread(b.p, 1, b.n, f), b.n, "%s: short read", file);
    fclose(f);
    return b;
}

static blob built(const char *name)
{
    char p[PATH_MAX];
    cr_assert_lt((size_t)snprintf(p, sizeof p, "%s/%s", tu_build_dir(), name), sizeof p);
    return slurp(p);
}

static int open_ro(const char *file)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "%s: %s", file, strerror(errno));
    return fd;
}

static int open_out(const char *file)
{
    int fd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0, "%s: %s", file, strerror(errno));
    return fd;
}

static off_t file_size(int fd)
{
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    return st.st_size;
}

static void hash_of(const blob *b, uint8_t out[UG_DELTA_HASH_LEN])
{
    crypto_generichash(out, UG_DELTA_HASH_LEN, b->p, b->n, NULL, 0);
}

/* Deterministic bytes: what a test needs to be the same on every run. */
static void fill(uint8_t *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        p[i] = (uint8_t)seed;
    }
}

/* A new release of old, as a rebuild changes a binary: a few KB of new
 * code in, a function out, and addresses shifted every page. */
static blob next_release(const blob *old)
{
    size_t ins = 3000, del = 2000, at_ins = old->n * 3 / 10, at_del = old->n * 6 / 10;
    cr_assert_gt(old->n, at_del + del);
    blob b = {malloc(old->n + ins), 0};
    cr_assert_not_null(b.p);
    memcpy(b.p, old->p, at_ins);
    fill(b.p + at_ins, ins, 0x9e3779b97f4a7c15u);
    memcpy(b.p + at_ins + ins, old->p + at_ins, at_del - at_ins);
    memcpy(b.p + ins + at_del, old->p + at_del + del, old->n - at_del - del);
    b.n = old->n + ins - del;
    for (size_t i = 64; i + 4 <= b.n; i += 4096)
        b.p[i] ^= 0x40;
    return b;
}

static blob make_delta(const blob *old, const blob *nw, const ug_delta_opts *o)
{
    blob d;
    ug_delta_err e;
    ug_delta_rc rc = ug_delta_make_buf(old->p, old->n, nw->p, nw->n, o, &d.p, &d.n, &e);
    cr_assert_eq(rc, UG_DELTA_OK, "make: %s: %s", ug_delta_rc_name(rc), e.msg);
    return d;
}

/* Writes the delta to a file and returns it open at offset 0. */
static int delta_file(const blob *d, const char *name)
{
    tu_write_file(path(name), d->p, d->n);
    return open_ro(path(name));
}

/* Applies d over old with the cap out_max into a fresh output file. */
static ug_delta_rc apply(const blob *old, const blob *d, uint64_t out_max, ug_delta_result *res, int *out_fd,
                         ug_delta_err *e)
{
    int dfd = delta_file(d, "apply.delta");
    *out_fd = open_out(path("apply.out"));
    ug_delta_rc rc = ug_delta_apply_buf(old->p, old->n, dfd, *out_fd, out_max, res, e);
    close(dfd);
    return rc;
}

/* The full path: file in, file out, delta checked, result checked. */
static void round_trip(const char *old_file, const blob *old, const blob *nw)
{
    tu_write_file(path("new"), nw->p, nw->n);
    int ofd = open_ro(old_file), nfd = open_ro(path("new")), dfd = open_out(path("d"));
    ug_delta_info info;
    ug_delta_err e;
    ug_delta_rc rc = ug_delta_make(ofd, nfd, dfd, NULL, &info, &e);
    cr_assert_eq(rc, UG_DELTA_OK, "%s: %s", ug_delta_rc_name(rc), e.msg);
    cr_assert_eq((uint64_t)file_size(dfd), info.size);
    cr_assert_lt(info.size * 100, (uint64_t)nw->n * 60, "%llu of %zu", (unsigned long long)info.size, nw->n);
    cr_assert_eq(ug_delta_check(dfd, info.size, info.hash, &e), UG_DELTA_OK, "%s", e.msg);
    cr_assert_eq(lseek(dfd, 0, SEEK_SET), 0);
    int out = open_out(path("out"));
    ug_delta_result res;
    rc = ug_delta_apply(ofd, dfd, out, nw->n, &res, &e);
    cr_assert_eq(rc, UG_DELTA_OK, "%s: %s", ug_delta_rc_name(rc), e.msg);
    uint8_t want[UG_DELTA_HASH_LEN];
    hash_of(nw, want);
    cr_assert_eq(res.size, nw->n);
    cr_assert_arr_eq(res.hash, want, sizeof want);
    blob got = slurp(path("out"));
    cr_assert_eq(got.n, nw->n);
    cr_assert_arr_eq(got.p, nw->p, nw->n);
    cr_assert_leq(res.mem, ug_delta_mem_bound(old->n, nw->n), "%llu", (unsigned long long)res.mem);
    cr_assert_leq(ug_delta_mem_bound(old->n, nw->n), old->n + (UINT64_C(1) << ug_delta_wlog(old->n, nw->n)) + (64u << 20));
    free(got.p);
    close(ofd), close(nfd), close(dfd), close(out);
}

/* A build's program and its next release (next_release's edits). */
static void round_trip_built(const char *name)
{
    blob old = built(name), nw = next_release(&old);
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", tu_build_dir(), name);
    round_trip(p, &old, &nw);
    free(old.p), free(nw.p);
}

Test(delta, round_trip_plugin_next_release)
{
    round_trip_built("upgate.so");
}

Test(delta, round_trip_node_next_release)
{
    round_trip_built("upgate-node");
}

/* Two programs sharing proto/ and node/common.c: a related pair, not an edit. */
Test(delta, round_trip_ctl_to_node)
{
    blob old = built("upgate-ctl"), nw = built("upgate-node");
    blob d;
    ug_delta_err e;
    ug_delta_rc rc = ug_delta_make_buf(old.p, old.n, nw.p, nw.n, &(ug_delta_opts){.max_percent = 100}, &d.p, &d.n, &e);
    cr_assert_eq(rc, UG_DELTA_OK, "%s", e.msg);
    ug_delta_result res;
    int out;
    cr_assert_eq(apply(&old, &d, nw.n, &res, &out, &e), UG_DELTA_OK, "%s", e.msg);
    blob got = slurp(path("apply.out"));
    cr_assert_eq(got.n, nw.n);
    cr_assert_arr_eq(got.p, nw.p, nw.n);
    close(out);
    free(old.p), free(nw.p), free(d.p), free(got.p);
}

/* Text with a paragraph moved and one added, old larger than new, an empty
 * old file, identical files. */
Test(delta, round_trip_shapes)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/docs/protocol-v2.md", getenv("UG_ROOT") ? getenv("UG_ROOT") : ".");
    blob text = slurp(p);
    cr_assert_gt(text.n, 20000u);
    blob edited = {malloc(text.n + 64), 0};
    size_t cut = text.n / 2;
    memcpy(edited.p, text.p + cut, text.n - cut);
    memcpy(edited.p + text.n - cut, "## A section the next release adds\n\n", 36);
    memcpy(edited.p + text.n - cut + 36, text.p, cut);
    edited.n = text.n + 36;
    tu_write_file(path("old-text"), text.p, text.n);
    round_trip(path("old-text"), &text, &edited);

    blob shorter = {text.p, text.n / 3};
    round_trip(path("old-text"), &text, &shorter);
    round_trip(path("old-text"), &text, &text);

    tu_write_file(path("empty"), "", 0);
    blob none = {(uint8_t *)"", 0}, zeros = {calloc(1, 100000), 100000};
    round_trip(path("empty"), &none, &zeros);
    free(text.p), free(edited.p), free(zeros.p);
}

/* A pair with nothing in common: the delta is the whole package, refused,
 * and not one byte is written. */
Test(delta, refuses_a_delta_not_under_60_percent)
{
    blob old = {malloc(200000), 200000}, nw = {malloc(200000), 200000};
    fill(old.p, old.n, 1);
    fill(nw.p, nw.n, 2);
    tu_write_file(path("old"), old.p, old.n);
    tu_write_file(path("new"), nw.p, nw.n);
    int ofd = open_ro(path("old")), nfd = open_ro(path("new")), dfd = open_out(path("d"));
    ug_delta_info info;
    ug_delta_err e;
    ug_delta_rc rc = ug_delta_make(ofd, nfd, dfd, NULL, &info, &e);
    cr_assert_eq(rc, UG_DELTA_E_NOT_SMALLER, "%s", ug_delta_rc_name(rc));
    cr_assert(strstr(e.msg, "60%") != NULL, "%s", e.msg);
    cr_assert_eq(file_size(dfd), 0);
    close(ofd), close(nfd), close(dfd);
    free(old.p), free(nw.p);
}

/* The share is strict and exact: the smallest percent the delta is under
 * makes it, one less refuses it. */
Test(delta, percent_boundary)
{
    blob old = built("upgate-ctl"), nw = built("upgate-node");
    blob d = make_delta(&old, &nw, &(ug_delta_opts){.max_percent = 100});
    unsigned pct = (unsigned)(d.n * 100 / nw.n) + 1; /* d.n * 100 < nw.n * pct */
    cr_assert_geq(pct, 2u, "a pair whose delta is a few percent: %zu of %zu", d.n, nw.n);
    blob d2 = make_delta(&old, &nw, &(ug_delta_opts){.max_percent = pct});
    cr_assert_eq(d2.n, d.n);
    cr_assert_arr_eq(d2.p, d.p, d.n);
    uint8_t *none = (uint8_t *)&d;
    size_t n = 1;
    ug_delta_err e;
    cr_assert_eq(ug_delta_make_buf(old.p, old.n, nw.p, nw.n, &(ug_delta_opts){.max_percent = pct - 1}, &none, &n, &e),
                 UG_DELTA_E_NOT_SMALLER, "%s", e.msg);
    cr_assert_null(none);
    cr_assert_eq(n, 0);
    blob empty = {(uint8_t *)"", 0};
    cr_assert_eq(ug_delta_make_buf(old.p, old.n, empty.p, 0, NULL, &none, &n, &e), UG_DELTA_E_NOT_SMALLER);
    free(old.p), free(nw.p), free(d.p), free(d2.p);
}

Test(delta, check_refuses_a_tampered_or_resized_delta)
{
    blob old = built("upgate.so"), nw = next_release(&old);
    blob d = make_delta(&old, &nw, NULL);
    uint8_t h[UG_DELTA_HASH_LEN];
    hash_of(&d, h);
    ug_delta_err e;
    int fd = delta_file(&d, "good");
    cr_assert_eq(ug_delta_check(fd, d.n, h, &e), UG_DELTA_OK, "%s", e.msg);
    cr_assert_eq(ug_delta_check(fd, d.n + 1, h, &e), UG_DELTA_E_MISMATCH);
    cr_assert(strstr(e.msg, "manifest says") != NULL, "%s", e.msg);
    close(fd);
    d.p[d.n / 2] ^= 1;
    fd = delta_file(&d, "tampered");
    cr_assert_eq(ug_delta_check(fd, d.n, h, &e), UG_DELTA_E_MISMATCH);
    cr_assert(strstr(e.msg, "BLAKE2b") != NULL, "%s", e.msg);
    close(fd);
    free(old.p), free(nw.p), free(d.p);
}

/* Bytes of a zstd frame header (magic included), read from its descriptor. */
static size_t frame_head_len(const uint8_t *f)
{
    unsigned fhd = f[4], single = (fhd >> 5) & 1;
    static const size_t dict[] = {0, 1, 2, 4};
    size_t fcs[] = {single, 2, 4, 8};
    return 4 + 1 + (single ? 0 : 1) + dict[fhd & 3] + fcs[fhd >> 6];
}

/* Patched without the check: a block made invalid is refused and the
 * output file is cut back to what it held before (nothing of the result). */
Test(delta, tampered_frame_keeps_no_output)
{
    blob old = built("upgate.so"), nw = next_release(&old);
    blob d = make_delta(&old, &nw, NULL);
    size_t block = frame_head_len(d.p);
    d.p[block] |= 0x06; /* block type 3: reserved, always corrupt */
    int dfd = delta_file(&d, "bad"), out = open_out(path("out"));
    cr_assert_eq(write(out, "kept", 4), 4);
    ug_delta_result res;
    ug_delta_err e;
    ug_delta_rc rc = ug_delta_apply_buf(old.p, old.n, dfd, out, nw.n, &res, &e);
    cr_assert_eq(rc, UG_DELTA_E_CORRUPT, "%s: %s", ug_delta_rc_name(rc), e.msg);
    cr_assert_eq(file_size(out), 4);
    cr_assert_eq(lseek(out, 0, SEEK_CUR), 4);
    cr_assert_eq(res.size, 0);
    close(dfd), close(out);
    free(d.p);

    /* cut short, after some output: the frame does not end */
    d = make_delta(&old, &nw, NULL);
    blob cut = {d.p, d.n * 3 / 4};
    rc = apply(&old, &cut, nw.n, &res, &out, &e);
    cr_assert_eq(rc, UG_DELTA_E_FORMAT, "%s: %s", ug_delta_rc_name(rc), e.msg);
    cr_assert(strstr(e.msg, "truncated") != NULL, "%s", e.msg);
    cr_assert_eq(file_size(out), 0);
    close(out);
    free(old.p), free(nw.p), free(d.p);
}

/* An installed file that is not the version the delta was made from: the
 * frame decodes, but into other bytes; the caller's hash check sees it. */
Test(delta, other_old_file_gives_another_hash)
{
    blob old = built("upgate.so"), nw = next_release(&old);
    blob d = make_delta(&old, &nw, NULL);
    for (size_t i = 0; i < old.n; i += 512)
        old.p[i] ^= 0x5a;
    ug_delta_result res;
    ug_delta_err e;
    int out;
    ug_delta_rc rc = apply(&old, &d, nw.n, &res, &out, &e);
    cr_assert_eq(rc, UG_DELTA_OK, "%s: %s", ug_delta_rc_name(rc), e.msg);
    uint8_t want[UG_DELTA_HASH_LEN];
    hash_of(&nw, want);
    cr_assert_eq(res.size, nw.n);
    cr_assert(sodium_memcmp(res.hash, want, sizeof want) != 0);
    close(out);
    free(old.p), free(nw.p), free(d.p);
}

/* A frame made by libzstd with no content size: the cap stops the output
 * as it passes; one with a content size over the cap is refused first. */
Test(delta, output_cap)
{
    blob old = built("upgate.so"), nw = next_release(&old);
    blob d = make_delta(&old, &nw, NULL);
    ug_delta_result res;
    ug_delta_err e;
    int out;
    ug_delta_rc rc = apply(&old, &d, nw.n - 1, &res, &out, &e);
    cr_assert_eq(rc, UG_DELTA_E_OVERSIZE, "%s: %s", ug_delta_rc_name(rc), e.msg);
    cr_assert(strstr(e.msg, "claims") != NULL, "%s", e.msg);
    cr_assert_eq(file_size(out), 0);
    close(out);
    /* the same frame with its content size dropped (descriptor bits 7-6 and
     * single segment cleared, the window byte a 2^W window) */
    cr_assert_eq(d.p[4] & 3, 0, "no dictionary id");
    unsigned w = ug_delta_wlog(old.n, nw.n);
    size_t rest = frame_head_len(d.p);
    blob nofcs = {malloc(d.n + 2), 0};
    memcpy(nofcs.p, d.p, 4);
    nofcs.p[4] = (uint8_t)(d.p[4] & 0x1f & ~0x20);
    nofcs.p[5] = (uint8_t)((w - 10) << 3);
    memcpy(nofcs.p + 6, d.p + rest, d.n - rest);
    nofcs.n = 6 + d.n - rest;
    rc = apply(&old, &nofcs, nw.n, &res, &out, &e);
    cr_assert_eq(rc, UG_DELTA_OK, "%s: %s", ug_delta_rc_name(rc), e.msg);
    cr_assert_eq(res.size, nw.n);
    close(out);
    rc = apply(&old, &nofcs, nw.n / 2, &res, &out, &e);
    cr_assert_eq(rc, UG_DELTA_E_OVERSIZE, "%s: %s", ug_delta_rc_name(rc), e.msg);
    cr_assert(strstr(e.msg, "passes") != NULL, "%s", e.msg);
    cr_assert_eq(file_size(out), 0);
    close(out);
    free(old.p), free(nw.p), free(d.p), free(nofcs.p);
}

/* magic, descriptor (no content size), window byte, an empty last raw block */
static blob window_frame(unsigned wlog)
{
    static uint8_t f[9] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0, 0x01, 0x00, 0x00};
    f[5] = (uint8_t)((wlog - 10) << 3);
    return (blob){f, sizeof f};
}

Test(delta, window_over_the_bound_is_refused)
{
    blob old = {malloc(4096), 4096};
    fill(old.p, old.n, 3);
    unsigned w = ug_delta_wlog(old.n, 4096);
    cr_assert_eq(w, 12);
    ug_delta_result res;
    ug_delta_err e;
    int out;
    blob ok = window_frame(w);
    cr_assert_eq(apply(&old, &ok, 4096, &res, &out, &e), UG_DELTA_OK, "%s", e.msg);
    cr_assert_eq(res.size, 0);
    close(out);
    unsigned bad[] = {w + 1, 20, 30, 41};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        blob f = window_frame(bad[i]);
        ug_delta_rc rc = apply(&old, &f, 4096, &res, &out, &e);
        cr_assert_eq(rc, UG_DELTA_E_WINDOW, "2^%u: %s: %s", bad[i], ug_delta_rc_name(rc), e.msg);
        cr_assert_leq(res.mem, ug_delta_mem_bound(old.n, 4096), "%llu", (unsigned long long)res.mem);
        close(out);
    }
    free(old.p);
}

static void expect_format(const blob *old, const uint8_t *p, size_t n, const char *why)
{
    blob d = {(uint8_t *)p, n};
    ug_delta_result res;
    ug_delta_err e;
    int out;
    ug_delta_rc rc = apply(old, &d, 16u << 20, &res, &out, &e);
    cr_assert_eq(rc, UG_DELTA_E_FORMAT, "%s: %s: %s", why, ug_delta_rc_name(rc), e.msg);
    cr_assert_eq(file_size(out), 0, "%s", why);
    close(out);
}

Test(delta, empty_garbage_skippable_and_trailing_input)
{
    blob old = built("upgate.so"), nw = next_release(&old);
    blob d = make_delta(&old, &nw, NULL);
    expect_format(&old, (const uint8_t *)"", 0, "empty");
    uint8_t junk[3000];
    fill(junk, sizeof junk, 7);
    expect_format(&old, junk, sizeof junk, "garbage");
    expect_format(&old, d.p, 3, "three bytes of magic");
    expect_format(&old, d.p, 4, "magic alone");
    static const uint8_t skip[] = {0x50, 0x2a, 0x4d, 0x18, 2, 0, 0, 0, 'h', 'i'};
    expect_format(&old, skip, sizeof skip, "skippable frame");
    uint8_t *two = malloc(2 * d.n);
    memcpy(two, d.p, d.n);
    memcpy(two + d.n, d.p, d.n);
    expect_format(&old, two, 2 * d.n, "two frames");
    two[d.n] = 0;
    expect_format(&old, two, d.n + 1, "one byte after the frame");
    free(old.p), free(nw.p), free(d.p), free(two);
}

/* The delta read from a pipe: apply reads from the fd to its end. */
Test(delta, delta_from_a_pipe)
{
    blob old = built("upgate.so"), nw = next_release(&old);
    blob d = make_delta(&old, &nw, NULL);
    cr_assert_lt(d.n, 65536u, "the pipe must hold it: %zu", d.n);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(write(fds[1], d.p, d.n), (ssize_t)d.n);
    close(fds[1]);
    int out = open_out(path("out"));
    ug_delta_result res;
    ug_delta_err e;
    cr_assert_eq(ug_delta_apply_buf(old.p, old.n, fds[0], out, nw.n, &res, &e), UG_DELTA_OK, "%s", e.msg);
    cr_assert_eq(res.size, nw.n);
    close(fds[0]), close(out);
    free(old.p), free(nw.p), free(d.p);
}

Test(delta, limits)
{
    cr_assert_eq(ug_delta_wlog(0, 0), 10);
    cr_assert_eq(ug_delta_wlog(1024, 1), 10);
    cr_assert_eq(ug_delta_wlog(1025, 1), 11);
    cr_assert_eq(ug_delta_wlog(1, 3u << 20), 22);
    cr_assert_eq(ug_delta_wlog(UG_DELTA_FILE_MAX, 0), 30);
    cr_assert_eq(ug_delta_wlog(0, UG_DELTA_FILE_MAX + 1), 0);
    cr_assert_eq(ug_delta_mem_bound(1000, 5000), 1000 + 8192 + UG_DELTA_MEM_SLACK);
    uint8_t one = 0, *out = NULL;
    size_t n;
    ug_delta_err e;
    /* sizes are checked before a byte is read */
    cr_assert_eq(ug_delta_make_buf(&one, 1, &one, (size_t)UG_DELTA_FILE_MAX + 1, NULL, &out, &n, &e), UG_DELTA_E_LIMIT);
    cr_assert(strstr(e.msg, "new file") != NULL, "%s", e.msg);
    cr_assert_eq(ug_delta_make_buf(&one, 1, &one, 1, &(ug_delta_opts){.level = 99}, &out, &n, &e), UG_DELTA_E_ARG);
    uint8_t two[200] = {0};
    cr_assert_eq(ug_delta_make_buf(two, 150, two + 100, 100, NULL, &out, &n, &e), UG_DELTA_E_ARG);
    cr_assert(strstr(e.msg, "overlap") != NULL, "%s", e.msg);
    cr_assert_eq(ug_delta_make_buf(&one, 1, &one, 1, &(ug_delta_opts){.max_percent = 101}, &out, &n, &e), UG_DELTA_E_ARG);
    ug_delta_result res;
    cr_assert_eq(ug_delta_apply_buf(&one, 1, 0, 1, UG_DELTA_FILE_MAX + 1, &res, &e), UG_DELTA_E_LIMIT);
    cr_assert(strstr(e.msg, "expected size") != NULL, "%s", e.msg);
    /* an old file over 1 GiB (sparse) is refused unread */
    int big = open_out(path("big"));
    cr_assert_eq(ftruncate(big, (off_t)UG_DELTA_FILE_MAX + 1), 0);
    blob w12 = window_frame(12);
    int dfd = delta_file(&w12, "w12"), o = open_out(path("out"));
    cr_assert_eq(ug_delta_apply(big, dfd, o, 4096, &res, &e), UG_DELTA_E_LIMIT);
    cr_assert(strstr(e.msg, "old file") != NULL, "%s", e.msg);
    close(big), close(dfd), close(o);
    for (int rc = 0; rc < UG_DELTA_E_COUNT_; rc++)
        cr_assert_str_neq(ug_delta_rc_name((ug_delta_rc)rc), "unknown");
}

/* The format is a plain zstd frame: the CLI patches ours, we patch the CLI's. */
Test(delta, zstd_cli_both_ways)
{
    blob old = built("upgate.so"), nw = next_release(&old);
    blob d = make_delta(&old, &nw, NULL);
    tu_write_file(path("old"), old.p, old.n);
    tu_write_file(path("new"), nw.p, nw.n);
    tu_write_file(path("ours.zst"), d.p, d.n);
    char cmd[4 * PATH_MAX];
    unsigned w = ug_delta_wlog(old.n, nw.n);
    snprintf(cmd, sizeof cmd, "cd %s && zstd -qq -f -d --long=%u --patch-from=old ours.zst -o by-cli && cmp by-cli new"
             " && zstd -qq -f -19 --long=%u --patch-from=old new -o cli.zst", dir, w, w);
    cr_assert_eq(tu_run(cmd, NULL, 0), 0, "%s", cmd);
    blob cli = slurp(path("cli.zst"));
    ug_delta_result res;
    ug_delta_err e;
    int out;
    cr_assert_eq(apply(&old, &cli, nw.n, &res, &out, &e), UG_DELTA_OK, "%s", e.msg);
    uint8_t want[UG_DELTA_HASH_LEN];
    hash_of(&nw, want);
    cr_assert_arr_eq(res.hash, want, sizeof want);
    close(out);
    free(old.p), free(nw.p), free(d.p), free(cli.p);
}
