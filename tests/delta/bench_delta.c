/* make bench's delta rows (tests/delta/bench_delta.sh runs it): for one old/new pair, the project's delta against
 * the full package at zstd -19, the zstd CLI's --patch-from and bsdiff (their sizes measured by the script), the
 * patch time against reading and hashing the full package, and the memory held against the stated bound. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <zstd.h>

#include "ug_delta.h"
#include "../bench_stamp.h"

#define ROUNDS 7
#define CHUNK 65536u

typedef struct {
    const char *name, *old, *new_, *work;
    unsigned long long full_zst, cli, bsdiff; /* bytes, 0 when the script had none */
} pair;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench-delta: %s: %s\n", what, why);
    exit(1);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

static int open_or_die(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC, 0600);
    if (fd < 0)
        die(path, strerror(errno));
    return fd;
}

static off_t size_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        die(path, strerror(errno));
    return st.st_size;
}

/* The baseline: the full package read from disk and hashed, as a peer
 * checks a download. */
static double read_and_hash(const char *path, uint8_t h[UG_DELTA_HASH_LEN])
{
    static uint8_t buf[CHUNK];
    double t0 = now();
    int fd = open_or_die(path, O_RDONLY);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, UG_DELTA_HASH_LEN);
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        crypto_generichash_update(&st, buf, (size_t)r);
    crypto_generichash_final(&st, h, UG_DELTA_HASH_LEN);
    close(fd);
    return now() - t0;
}

/* The peer's patch: old file read, delta streamed, result written and hashed. */
static double patch(const pair *p, const char *delta, const char *out, uint64_t size, ug_delta_result *res)
{
    ug_delta_err e;
    double t0 = now();
    int ofd = open_or_die(p->old, O_RDONLY), dfd = open_or_die(delta, O_RDONLY);
    int out_fd = open_or_die(out, O_WRONLY | O_CREAT | O_TRUNC);
    ug_delta_rc rc = ug_delta_apply(ofd, dfd, out_fd, size, res, &e);
    close(ofd), close(dfd), close(out_fd);
    if (rc != UG_DELTA_OK)
        die("apply", e.msg);
    return now() - t0;
}

static void row(const char *name, const char *what, const char *a, const char *b, const char *ratio,
                const char *versus, const char *goal, const char *verdict)
{
    char path[96];
    snprintf(path, sizeof path, "%s: %s", name, what);
    printf("  %-44s | %10s | %9s | %8s | %-18s | %-17s | %s\n", path, a, b, ratio, versus, goal, verdict);
}

static void bytes_row(const pair *p, const char *what, unsigned long long ours, unsigned long long theirs,
                      const char *versus, double goal)
{
    char a[32], b[32], r[32], verdict[32] = "";
    snprintf(a, sizeof a, "%llu B", ours);
    if (theirs == 0) {
        row(p->name, what, a, "-", "-", versus, goal > 0 ? "<= 1.05" : "report", "unavailable");
        return;
    }
    snprintf(b, sizeof b, "%llu B", theirs);
    double x = (double)ours / (double)theirs;
    snprintf(r, sizeof r, "%.3f", x);
    if (goal > 0)
        snprintf(verdict, sizeof verdict, "%s", x <= goal ? "ok" : "MISS");
    row(p->name, what, a, b, r, versus, goal > 0 ? "<= 1.05" : "report", verdict);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    int fd = open_or_die(path, O_RDONLY);
    off_t sz = size_of(path);
    unsigned char *b = malloc((size_t)sz + 1);
    size_t got = 0;
    ssize_t r;
    while (b && got < (size_t)sz && (r = read(fd, b + got, (size_t)sz - got)) > 0)
        got += (size_t)r;
    close(fd);
    if (b == NULL || got != (size_t)sz)
        die(path, "short read");
    *n = got;
    return b;
}

/* Makes the delta (every share allowed, so a pair over 60% still gets its
 * rows), writes it to work/NAME.delta; its size, and the time it took. */
static size_t make(const pair *p, char *delta_path, size_t cap, double *secs)
{
    size_t on, nn, dn;
    unsigned char *o = slurp(p->old, &on), *n = slurp(p->new_, &nn), *d;
    ug_delta_err e;
    double t0 = now();
    if (ug_delta_make_buf(o, on, n, nn, &(ug_delta_opts){.max_percent = 100}, &d, &dn, &e) != UG_DELTA_OK)
        die("make", e.msg);
    *secs = now() - t0;
    snprintf(delta_path, cap, "%s/%s.delta", p->work, p->name);
    int fd = open_or_die(delta_path, O_WRONLY | O_CREAT | O_TRUNC);
    if (write(fd, d, dn) != (ssize_t)dn)
        die(delta_path, "short write");
    close(fd);
    free(o), free(n), free(d);
    return dn;
}

static void time_rows(const pair *p, const char *delta, uint64_t size)
{
    char out[4096], a[32], b[32], r[32];
    snprintf(out, sizeof out, "%s/%s.out", p->work, p->name);
    double tp[ROUNDS], th[ROUNDS];
    uint8_t want[UG_DELTA_HASH_LEN];
    ug_delta_result res;
    for (int i = 0; i < ROUNDS; i++) { /* interleaved: both see the same machine */
        tp[i] = patch(p, delta, out, size, &res);
        th[i] = read_and_hash(p->new_, want);
    }
    if (res.size != size || sodium_memcmp(res.hash, want, sizeof want) != 0)
        die(p->name, "the patched file is not the new one");
    double mp = median(tp, ROUNDS), mh = median(th, ROUNDS);
    snprintf(a, sizeof a, "%.2f ms", mp * 1e3);
    snprintf(b, sizeof b, "%.2f ms", mh * 1e3);
    snprintf(r, sizeof r, "%.2fx", mp / mh);
    row(p->name, "patch / read+hash NEW", a, b, r, "read + BLAKE2b", "report", "");
    uint64_t bound = ug_delta_mem_bound((uint64_t)size_of(p->old), size);
    snprintf(a, sizeof a, "%.2f MiB", (double)res.mem / 1048576.0);
    snprintf(b, sizeof b, "%.2f MiB", (double)bound / 1048576.0);
    snprintf(r, sizeof r, "%.3f", (double)res.mem / (double)bound);
    row(p->name, "patch memory / bound", a, b, r, "old + 2^W + 1 MiB", "<= 1", res.mem <= bound ? "ok" : "MISS");
}

static void run(const pair *p)
{
    char delta[4096], a[32], b[32], r[32];
    uint64_t on = (uint64_t)size_of(p->old), nn = (uint64_t)size_of(p->new_);
    double secs;
    size_t dn = make(p, delta, sizeof delta, &secs);
    printf("\n%s: %llu -> %llu bytes, window 2^%u, delta made in %.2f s\n", p->name, (unsigned long long)on,
           (unsigned long long)nn, ug_delta_wlog(on, nn), secs);
    bytes_row(p, "delta / zstd -19 of NEW", dn, p->full_zst, "zstd -19 NEW", 0);
    bytes_row(p, "delta / zstd --patch-from", dn, p->cli, "zstd -19 --long", 1.05);
    bytes_row(p, "delta / bsdiff", dn, p->bsdiff, "bsdiff OLD NEW", 0);
    snprintf(a, sizeof a, "%zu B", dn);
    snprintf(b, sizeof b, "%llu B", (unsigned long long)nn);
    snprintf(r, sizeof r, "%.3f", (double)dn / (double)nn);
    row(p->name, "delta / NEW (the 60% rule)", a, b, r, "NEW as shipped", "< 0.60",
        dn * 100 < nn * UG_DELTA_PERCENT_DEFAULT ? "made" : "refused");
    time_rows(p, delta, nn);
}

/* bench-delta WORK NAME OLD NEW FULL_ZST CLI BSDIFF [NAME OLD NEW ...] */
int main(int argc, char **argv)
{
    if (argc < 8 || (argc - 2) % 6 != 0 || sodium_init() < 0) {
        fprintf(stderr, "usage: bench-delta WORK NAME OLD NEW FULL_ZST_BYTES CLI_BYTES BSDIFF_BYTES ...\n");
        return 2;
    }
    printf("\n");
    bench_stamp("bench-delta");
    printf("delta packages (delta/, libzstd %s, level %d; sizes in bytes, times the median of %d)\n",
           ZSTD_versionString(), UG_DELTA_LEVEL_DEFAULT, ROUNDS);
    printf("  %-44s | %10s | %9s | %8s | %-18s | %-17s | %s\n", "pair: row", "ours", "versus", "ratio", "versus what",
           "goal", "verdict");
    for (int i = 2; i + 5 < argc; i += 6) {
        pair p = {argv[i], argv[i + 1], argv[i + 2], argv[1], strtoull(argv[i + 3], NULL, 10),
                  strtoull(argv[i + 4], NULL, 10), strtoull(argv[i + 5], NULL, 10)};
        run(&p);
    }
    return 0;
}
