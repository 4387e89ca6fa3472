/* make bench: a plugin build loaded through its ABI and driven in-process,
 * and bare libsodium at the sizes the tracker signs, on this thread's CPU clock. */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "bench.h"

#define SOURCES 32 /* source ports, one per peer, as upgate-load's sockets */
#define FLUSH_EVERY 64 /* the node's receive batch */

double thread_cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The plugin's rows count every thread's CPU: a commit one worker leads
 * for others is work of the request it carries. */
double process_cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int bp_open(bp_lib *l, const char *so, char *why, size_t whycap)
{
    memset(l, 0, sizeof *l);
    l->dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!l->dl) {
        snprintf(why, whycap, "%s", dlerror());
        return -1;
    }
    l->api = dlsym(l->dl, UG_PLUGIN_SYMBOL);
    if (!l->api || l->api->abi_major != UG_PLUGIN_ABI_MAJOR || !UG_HAS_FIELD(ug_plugin, l->api->size, destroy)) {
        snprintf(why, whycap, "%s: not an upgate plugin of ABI %u", so, UG_PLUGIN_ABI_MAJOR);
        return -1;
    }
    /* minor 0 (today's main) has no handle2: it gets handle(), as a 1.0 host does */
    l->v2 = UG_HAS_FIELD(ug_plugin, l->api->size, handle2) && l->api->handle2;
    return 0;
}

static void host_log(void *ctx, ug_log_level level, const char *msg)
{
    (void)ctx;
    if (level <= UG_LOG_WARN)
        fprintf(stderr, "bench: plugin: %s\n", msg);
}

void *bp_create(bp_lib *l, const char *policy, char *why, size_t whycap)
{
    ug_host host = {.size = sizeof host, .log = host_log, .nworkers = 1};
    return l->api->create(&host, policy, why, whycap);
}

void bp_run(bp_lib *l, void *inst, const lg_pool *p, uint64_t count, double cpu_budget, bp_result *r)
{
    memset(r, 0, sizeof *r);
    struct sockaddr_in src[SOURCES];
    for (unsigned i = 0; i < SOURCES; i++)
        src[i] = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)(20000 + i)),
                                      .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    uint64_t sigs0 = 0, sigs1 = 0;
    bool known = bp_stat(l, inst, "signature_checks", &sigs0) == 0;
    uint8_t out[UG_DGRAM_MAX];
    double t0 = process_cpu(), stop = cpu_budget > 0 ? t0 + cpu_budget : 1e300;
    uint64_t i = 0;
    while (i < count) {
        uint64_t end = i + FLUSH_EVERY < count ? i + FLUSH_EVERY : count;
        for (; i < end; i++) {
            size_t k = (size_t)(i % p->n), out_len = 0;
            const struct sockaddr *sa = (const struct sockaddr *)&src[lg_socket_of(p->uid[k], k, SOURCES)];
            unsigned flags = 0;
            if (l->v2)
                (void)l->api->handle2(inst, 0, sa, sizeof src[0], p->buf + k * UG_DGRAM_MAX, p->len[k], out,
                                      sizeof out, &out_len, &flags);
            else
                (void)l->api->handle(inst, 0, sa, sizeof src[0], p->buf + k * UG_DGRAM_MAX, p->len[k], out,
                                     sizeof out, &out_len);
            r->by_type[out_len >= 6 && out[5] < LG_TYPES ? out[5] : LG_OTHER] += out_len > 0;
        }
        double c = thread_cpu();
        if (l->api->flush(inst, 0) != 0)
            bench_die("flush() failed");
        r->flush_ns += (uint64_t)((thread_cpu() - c) * 1e9);
        r->flushes++;
        if (process_cpu() > stop)
            break;
    }
    r->cpu_ns = (uint64_t)((process_cpu() - t0) * 1e9);
    r->n = i;
    r->sigs_known = known && bp_stat(l, inst, "signature_checks", &sigs1) == 0;
    r->sigs = sigs1 - sigs0;
}

static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
    struct timespec ts = {.tv_sec = (time_t)t, .tv_nsec = (long)((t - (double)(time_t)t) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, size_t n, double q)
{
    if (!n)
        return 0;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* Flushes worker 0 and lets every held reply go: their latencies. */
static void paced_flush(bp_lib *l, void *inst, double *held, size_t *nheld, double *lat, size_t *nlat, bp_paced *r)
{
    double c = r->detail ? thread_cpu() : 0;
    if (l->api->flush(inst, 0) != 0)
        bench_die("flush() failed");
    if (r->detail)
        r->flush_ns += (uint64_t)((thread_cpu() - c) * 1e9);
    r->flushes++;
    double t = mono_s();
    for (size_t k = 0; k < *nheld; k++)
        lat[(*nlat)++] = (t - held[k]) * 1e3;
    *nheld = 0;
}

void bp_run_paced(bp_lib *l, void *inst, const lg_pool *p, double rate, double max_seconds, bool detail, bp_paced *r)
{
    memset(r, 0, sizeof *r);
    r->detail = detail;
    size_t n = p->n;
    double *at = malloc(n * sizeof *at), *lat = malloc(n * sizeof *lat), *late = malloc(n * sizeof *late);
    double held[FLUSH_EVERY];
    size_t nheld = 0, nlat = 0;
    if (!at || !lat || !late)
        bench_die("out of memory");
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    double t = mono_s() + 0.002;
    for (size_t i = 0; i < n; i++) { /* Poisson arrivals: exponential gaps */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        t += -log(((double)(x >> 11) + 0.5) / 9007199254740992.0) / rate;
        at[i] = t;
    }
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    uint8_t out[UG_DGRAM_MAX];
    double c0 = process_cpu(), t0 = mono_s(), stop = t0 + max_seconds;
    size_t i = 0;
    while (i < n) {
        double now = mono_s();
        if (at[i] <= now) {
            size_t out_len = 0;
            unsigned flags = 0;
            src.sin_port = htons((uint16_t)(20000 + lg_socket_of(p->uid[i], i, SOURCES)));
            late[i] = (now - at[i]) * 1e3;
            double c = detail ? thread_cpu() : 0;
            ug_verdict v = l->api->handle2(inst, 0, (const struct sockaddr *)&src, sizeof src,
                                           p->buf + i * UG_DGRAM_MAX, p->len[i], out, sizeof out, &out_len, &flags);
            if (detail)
                r->handle_ns += (uint64_t)((thread_cpu() - c) * 1e9);
            r->hints += v == UG_VERDICT_REPLY && out_len >= 6 && out[5] == UG_TYPE_HINT;
            if (flags & UG_REPLY_AFTER_FLUSH)
                held[nheld++] = at[i];
            else
                lat[nlat++] = (mono_s() - at[i]) * 1e3;
            i++;
            if (nheld == FLUSH_EVERY)
                paced_flush(l, inst, held, &nheld, lat, &nlat, r);
            continue;
        }
        if (nheld) /* nothing due: the socket is empty */
            paced_flush(l, inst, held, &nheld, lat, &nlat, r);
        else if (now > stop)
            break;
        else
            sleep_until(at[i]);
    }
    if (nheld)
        paced_flush(l, inst, held, &nheld, lat, &nlat, r);
    r->cpu_ns = (uint64_t)((process_cpu() - c0) * 1e9);
    r->seconds = mono_s() - t0;
    r->n = i;
    qsort(lat, nlat, sizeof *lat, cmp_double);
    qsort(late, i, sizeof *late, cmp_double);
    r->p50_ms = pct(lat, nlat, 0.50);
    r->p99_ms = pct(lat, nlat, 0.99);
    r->max_ms = nlat ? lat[nlat - 1] : 0;
    r->late_ms = pct(late, i, 0.99);
    free(at);
    free(lat);
    free(late);
}

int bp_stat(bp_lib *l, void *inst, const char *name, uint64_t *v)
{
    ug_stat st[256];
    size_t n = l->api->stats(inst, st, 256);
    for (size_t i = 0; i < n && i < 256; i++)
        if (strcmp(st[i].name, name) == 0) {
            *v = st[i].value;
            return 0;
        }
    return -1;
}

double bare_verify(const bare_item *b, double budget)
{
    double t0 = thread_cpu(), t;
    uint64_t n = 0;
    do {
        for (int i = 0; i < 32; i++, n++)
            if (crypto_sign_verify_detached(b->sig, b->msg, b->len, b->pk) != 0)
                bench_die("the bare signature does not verify");
        t = thread_cpu();
    } while (t - t0 < budget);
    return (t - t0) * 1e9 / (double)n;
}

double bare_sign(const bare_item *b, const uint8_t sk[UG_SK_LEN], double budget)
{
    uint8_t sig[UG_SIG_LEN];
    double t0 = thread_cpu(), t;
    uint64_t n = 0;
    do {
        for (int i = 0; i < 32; i++, n++)
            crypto_sign_detached(sig, NULL, b->msg, b->len, sk);
        t = thread_cpu();
    } while (t - t0 < budget);
    return (t - t0) * 1e9 / (double)n;
}

void bare_set_free(bare_set *s)
{
    free(s->msg);
    free(s->len);
    free(s->sig);
    memset(s, 0, sizeof *s);
}

static bool set_verifies(const bare_set *s, size_t i)
{
    return crypto_sign_verify_detached(s->sig + i * UG_SIG_LEN, s->msg + i * BARE_MSG_MAX, s->len[i],
                                       s->pk) == 0;
}

double bare_request_set(const bare_set *a, const bare_set *b, const bare_item *hint, const uint8_t sk[UG_SK_LEN],
                        double budget)
{
    uint8_t sig[UG_SIG_LEN];
    double t0 = thread_cpu(), t = t0;
    size_t i = 0;
    while (i < a->n && t - t0 < budget) {
        for (size_t end = i + 32 < a->n ? i + 32 : a->n; i < end; i++) {
            if (!set_verifies(a, i) || (b && !set_verifies(b, i)))
                bench_die("a pool signature does not verify");
            crypto_sign_detached(sig, NULL, hint->msg, hint->len, sk);
        }
        t = thread_cpu();
    }
    return (t - t0) * 1e9 / (double)i;
}
