/* make bench, the REPORT-flood row (issue 21 §1): honest HELLOs (new
 * grants, full signature work) handled in-process alone, then with forged
 * REPORTs from 512 /24s interleaved; the ratio of CPU per honest HINT,
 * the median over rounds that alternate which phase runs first. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#define RF_HONEST 2000u  /* honest HELLOs per phase, each a new grant */
#define RF_PER 10u       /* forged REPORTs per honest HELLO in the flood phase */
#define RF_NETS 512u     /* /24s the flood comes from */
#define RF_FLUSH 64u     /* the node's receive batch */
#define RF_GOAL 0.9 /* issue 21: honest grant service under the REPORT flood, as under a HELLO flood */
#define RF_ROUNDS 5u     /* alone and flooded interleaved, the median ratio */

static struct sockaddr_in rf_addr(uint32_t a, uint16_t port)
{
    return (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(a)};
}

/* One datagram through handle2 (or handle) on worker 0; true when a HINT came back. */
static bool rf_send(bp_lib *l, void *inst, const struct sockaddr_in *sa, const uint8_t *in, size_t len)
{
    uint8_t out[UG_DGRAM_MAX];
    size_t out_len = 0;
    unsigned flags = 0;
    if (l->v2)
        (void)l->api->handle2(inst, 0, (const struct sockaddr *)sa, sizeof *sa, in, len, out, sizeof out, &out_len,
                              &flags);
    else
        (void)l->api->handle(inst, 0, (const struct sockaddr *)sa, sizeof *sa, in, len, out, sizeof out, &out_len);
    return out_len >= 6 && out[5] == UG_TYPE_HINT;
}

/* The honest pool's HELLOs (from 192.168.0.0/16), each followed by `per`
 * copies of the forged REPORT from rotating /24s; CPU s per honest HINT. */
static double rf_phase(bp_lib *l, void *inst, const lg_pool *p, const uint8_t *rep, size_t rep_len, unsigned per,
                       uint64_t *hints)
{
    double t0 = process_cpu();
    uint64_t f = 0;
    *hints = 0;
    for (size_t i = 0; i < p->n; i++) {
        struct sockaddr_in sa = rf_addr(0xC0A80000u + (uint32_t)(i & 0xffff), 20000);
        *hints += rf_send(l, inst, &sa, p->buf + i * UG_DGRAM_MAX, p->len[i]);
        for (unsigned k = 0; k < per; k++, f++) {
            struct sockaddr_in fa = rf_addr(0x0A000001u + (uint32_t)((f % RF_NETS) << 8), 4000);
            (void)rf_send(l, inst, &fa, rep, rep_len);
        }
        if ((i + 1) % RF_FLUSH == 0 && l->api->flush(inst, 0) != 0)
            bench_die("flush() failed");
    }
    if (l->api->flush(inst, 0) != 0)
        bench_die("flush() failed");
    return *hints ? (process_cpu() - t0) / (double)*hints : 0;
}

/* A REPORT about uid with its real credential and a spoiled signature. */
static size_t rf_forged_report(uint8_t *out, const lg_keys *k, const lg_creds *c, uint64_t uid)
{
    ug_report_fields r = {.uid = uid, .ver = "1.4.0", .to = "2.0.0", .res = UG_RES_DOWNLOAD_FAILED,
                          .ts = (uint64_t)time(NULL)};
    r.cred = lg_cred(c, uid, &r.cred_len);
    memset(r.nonce, 7, UG_NONCE_LEN);
    memcpy(r.pk, k->client_pk, UG_PK_LEN);
    size_t len;
    if (!r.cred || ug_report_build(out, UG_DGRAM_MAX, &len, &r, 512, k->client_sk) != 0)
        bench_die("cannot build the flood's REPORT");
    out[len - 1] ^= 1;
    return len;
}

static void rf_pool(lg_pool *p, const lg_keys *k, const lg_creds *c, uint64_t first)
{
    if (lg_pool_init(p, RF_HONEST) != 0)
        bench_die("out of memory");
    for (uint64_t uid = first; uid < first + RF_HONEST; uid++) {
        size_t cl;
        const uint8_t *cred = lg_cred(c, uid, &cl);
        if (!cred || lg_pool_add_hello(p, k, uid, cred, cl, "1.4.0", 512, (uint64_t)time(NULL)) != 0)
            bench_die("cannot build the honest HELLOs (uid %llu)", (unsigned long long)uid);
    }
}

static int rf_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One round: fresh uids for both phases (new grants), in the order `flood_first`
 * says; CPU s per honest HINT alone (base) and flooded (hit). */
static void rf_round(bp_lib *l, void *inst, const lg_keys *k, const lg_creds *c, uint64_t first, bool flood_first,
                     double *base, double *hit, uint64_t *hints)
{
    lg_pool alone, flood;
    rf_pool(&alone, k, c, first);
    rf_pool(&flood, k, c, first + RF_HONEST);
    uint8_t rep[UG_DGRAM_MAX];
    size_t rep_len = rf_forged_report(rep, k, c, c->base + 1); /* granted in round 0, before any flood */
    uint64_t h0 = 0, h1 = 0;
    if (flood_first)
        *hit = rf_phase(l, inst, &flood, rep, rep_len, RF_PER, &h1);
    *base = rf_phase(l, inst, &alone, rep, rep_len, 0, &h0);
    if (!flood_first)
        *hit = rf_phase(l, inst, &flood, rep, rep_len, RF_PER, &h1);
    hints[0] += h0, hints[1] += h1;
    lg_pool_free(&alone);
    lg_pool_free(&flood);
}

void bench_report_flood(bench_env *e, bp_lib *l, const lg_keys *k, const lg_creds *c)
{
    char why[1024];
    void *inst = bp_create(l, env_policy(e, "report-flood", "  - {name: everyone, quota: 10000000}\n"), why,
                           sizeof why);
    if (!inst)
        bench_die("report-flood: %s", why);
    if (c->n < 2 * RF_HONEST * RF_ROUNDS + 1u)
        bench_die("report-flood: %zu credentials, %u needed", c->n, 2 * RF_HONEST * RF_ROUNDS + 1);
    double base[RF_ROUNDS], hit[RF_ROUNDS], ratio[RF_ROUNDS];
    uint64_t hints[2] = {0, 0};
    for (unsigned r = 0; r < RF_ROUNDS; r++) {
        rf_round(l, inst, k, c, c->base + 1 + 2 * RF_HONEST * r, r & 1, &base[r], &hit[r], hints);
        ratio[r] = hit[r] > 0 ? base[r] / hit[r] : 0;
    }
    qsort(base, RF_ROUNDS, sizeof base[0], rf_cmp);
    qsort(hit, RF_ROUNDS, sizeof hit[0], rf_cmp);
    qsort(ratio, RF_ROUNDS, sizeof ratio[0], rf_cmp);
    double b = base[RF_ROUNDS / 2], h = hit[RF_ROUNDS / 2], q = ratio[RF_ROUNDS / 2];
    printf("\n%-58s %8.0f /s %8.0f /s  ratio %5.2f  goal >= %.1f  %s  (median of %u rounds; HINTs %llu/%u alone, "
           "%llu/%u flooded)\n",
           "REPORT flood: honest new grants, flood 10:1 from 512 /24s", b > 0 ? 1 / b : 0, h > 0 ? 1 / h : 0, q,
           RF_GOAL, q >= RF_GOAL ? "ok" : "MISSED", RF_ROUNDS, (unsigned long long)hints[0], RF_HONEST * RF_ROUNDS,
           (unsigned long long)hints[1], RF_HONEST * RF_ROUNDS);
    fflush(stdout);
    l->api->destroy(inst);
}
