/* upgate-sim --suggest (simsuggest.h): bisection over one stage's rate and ramp, each trial a whole run on a rewritten copy of the policy. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "simedit.h"
#include "simsuggest.h"

/*
 * Both searches assume that a lower rate, or a longer ramp, never raises
 * the peak: true of the offers, and so of the downloads they start, up to
 * the population's own noise. The rate is searched on a log scale from
 * 0.001/s to 10^9/s (unlimited, in effect) to 2%, the ramp's duration
 * (its `end` moved, `start` kept) from one minute to 365 days, to a
 * minute or 1%. The copy is written beside the policy because the
 * policy's relative paths resolve against its own folder.
 */

#define POLICY_TEXT_MAX (16u << 20)
#define RATE_MIN 0.001
#define RATE_MAX 1e9
#define RAMP_MIN 60
#define RAMP_MAX (365 * 86400LL)
#define TRIALS_MAX 16

double sim_worst_mirror_bps(const sim_result *r, unsigned *mirror, unsigned *minute)
{
    double best = 0;
    for (unsigned m = 0; m < SIM_MIRRORS_MAX; m++) {
        unsigned at;
        double v = sim_peak_bps(r, m, &at);
        if (v > best || (m == 0 && v == best)) {
            best = v;
            if (mirror)
                *mirror = m;
            if (minute)
                *minute = at;
        }
    }
    return best;
}

typedef struct {
    const sim_plugin *pl;
    const sim_opts *o;
    const sim_pop *pop;
    uint64_t retry;
    const char *text;
    size_t len;
    sim_stage_loc loc;
    const char *stage;
    char copy[4096 + 64];
    char *err;
    size_t errcap;
} search;

static int read_text(const char *path, char **text, size_t *len, char *err, size_t errcap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return snprintf(err, errcap, "%s: %s", path, strerror(errno)), -1;
    char *buf = malloc(POLICY_TEXT_MAX + 1);
    size_t n = buf ? fread(buf, 1, POLICY_TEXT_MAX + 1, f) : 0;
    bool bad = ferror(f) || !buf;
    fclose(f);
    if (bad || n > POLICY_TEXT_MAX) {
        free(buf);
        return snprintf(err, errcap, "%s: cannot read it (at most %u bytes)", path, POLICY_TEXT_MAX), -1;
    }
    buf[n] = 0;
    *text = buf, *len = n;
    return 0;
}

/* Writes text to a fresh hidden file beside the policy. */
static int write_copy(search *S, const char *text, size_t len)
{
    const char *policy = S->o->policy[0], *slash = strrchr(policy, '/');
    int dirlen = slash ? (int)(slash - policy) : 1;
    const char *dir = slash ? policy : ".";
    const char *base = slash ? slash + 1 : policy;
    snprintf(S->copy, sizeof S->copy, "%.*s/.%.200s.sim-XXXXXX", dirlen, slash == policy ? "/" : dir, base);
    int fd = mkstemp(S->copy);
    if (fd < 0)
        return snprintf(S->err, S->errcap,
                        "%s: --suggest writes its trial copies beside the policy (its relative paths resolve there): "
                        "%s", S->copy, strerror(errno)), -1;
    sim_scratch_add(S->copy);
    bool ok = write(fd, text, len) == (ssize_t)len;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        sim_scratch_remove(S->copy);
        return snprintf(S->err, S->errcap, "%s: cannot write the trial copy", S->copy), -1;
    }
    return 0;
}

/* One trial: the policy with [at, at + cut) replaced; the worst mirror's peak. */
static int trial(search *S, size_t at, size_t cut, const char *insert, double *peak, sim_result *keep)
{
    size_t n;
    char *text = sim_edit_apply(S->text, S->len, at, cut, insert, &n);
    if (!text)
        return snprintf(S->err, S->errcap, "out of memory"), -1;
    int rc = write_copy(S, text, n);
    free(text);
    if (rc != 0)
        return -1;
    sim_result r;
    rc = sim_run(S->pl, S->o, S->pop, S->copy, S->retry, &r, S->err, S->errcap);
    sim_scratch_remove(S->copy);
    if (rc != 0)
        return -1;
    *peak = sim_worst_mirror_bps(&r, NULL, NULL);
    if (keep)
        *keep = r;
    else
        sim_result_free(&r);
    return 0;
}

static void fmt_rate(double r, char *out, size_t cap)
{
    snprintf(out, cap, "%.6f", r);
    char *dot = strchr(out, '.');
    if (!dot)
        return;
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '0')
        out[--n] = 0;
    if (n > 0 && out[n - 1] == '.')
        out[--n] = 0;
}

/* Three significant digits, rounded down: the rate written is never above the one found. */
static double floor3(double v)
{
    double p = pow(10, floor(log10(v)) - 2);
    return floor(v / p) * p;
}

static int try_rate(search *S, double rate, bool *ok, double *peak)
{
    char num[64], ins[160];
    fmt_rate(rate, num, sizeof num);
    if (S->loc.has_rate)
        snprintf(ins, sizeof ins, "%s", num);
    else
        snprintf(ins, sizeof ins, "%srate: %s", S->loc.insert_pre, num);
    int rc = S->loc.has_rate ? trial(S, S->loc.rate_at, S->loc.rate_len, ins, peak, NULL)
                             : trial(S, S->loc.insert_at, 0, ins, peak, NULL);
    if (rc != 0)
        return -1;
    *ok = *peak <= S->o->max_bw;
    char p[32];
    sim_fmt_bitrate(*peak, p, sizeof p);
    printf("  try rate %s/s: peak %s (%s)\n", num, p, *ok ? "under" : "over");
    fflush(stdout);
    return 0;
}

static int search_rate(search *S, const sim_result *base)
{
    const sim_opts *o = S->o;
    double p0 = sim_worst_mirror_bps(base, NULL, NULL), peak;
    bool ok0 = p0 <= o->max_bw, ok;
    char b[32];
    sim_fmt_bitrate(o->max_bw, b, sizeof b);
    if (ok0 && !S->loc.has_rate) {
        printf("suggest rate: the stage has no rate and the peak stays under %s: none is needed\n", b);
        return 0;
    }
    double lo, hi; /* lo keeps under the bound, hi does not */
    if (ok0) {
        lo = S->loc.rate;
        if (try_rate(S, RATE_MAX, &ok, &peak) != 0)
            return -1;
        if (ok) {
            printf("suggest rate: any rate keeps the peak under %s\n", b);
            return 0;
        }
        hi = RATE_MAX;
    } else {
        hi = S->loc.has_rate ? S->loc.rate : RATE_MAX;
        if (try_rate(S, RATE_MIN, &ok, &peak) != 0)
            return -1;
        if (!ok) {
            printf("suggest rate: no rate of this stage keeps the peak under %s (%s/s still peaks there): the "
                   "load comes from elsewhere\n", b, "0.001");
            return 0;
        }
        lo = RATE_MIN;
    }
    for (int i = 0; i < TRIALS_MAX && hi / lo > 1.02; i++) {
        double mid = sqrt(lo * hi);
        if (try_rate(S, mid, &ok, &peak) != 0)
            return -1;
        *(ok ? &lo : &hi) = mid;
    }
    char num[64];
    fmt_rate(floor3(lo), num, sizeof num);
    printf("suggest rate: at most %s new offers a second on stage %s/%s keeps every mirror under %s: rate: %s\n", num,
           S->loc.rollout, S->stage, b, num);
    return 0;
}

static void fmt_span(int64_t secs, char *out, size_t cap)
{
    long long d = secs / 86400, h = secs % 86400 / 3600, m = secs % 3600 / 60;
    snprintf(out, cap, "%lldd %02lld:%02lld", d, h, m);
}

static int try_ramp(search *S, int64_t dur, bool *ok, double *peak)
{
    char end[40], d[40], p[32];
    sim_fmt_time(S->loc.start + dur, end, sizeof end);
    if (trial(S, S->loc.end_at, S->loc.end_len, end, peak, NULL) != 0)
        return -1;
    *ok = *peak <= S->o->max_bw;
    fmt_span(dur, d, sizeof d);
    sim_fmt_bitrate(*peak, p, sizeof p);
    printf("  try ramp %s (end: %s): peak %s (%s)\n", d, end, p, *ok ? "under" : "over");
    fflush(stdout);
    return 0;
}

static int search_ramp(search *S, const sim_result *base)
{
    const sim_opts *o = S->o;
    int64_t d0 = S->loc.end - S->loc.start, lo, hi; /* lo is over the bound, hi under */
    double peak;
    bool ok;
    char b[32], d[40], end[40];
    sim_fmt_bitrate(o->max_bw, b, sizeof b);
    if (d0 < RAMP_MIN)
        d0 = RAMP_MIN;
    if (sim_worst_mirror_bps(base, NULL, NULL) <= o->max_bw) {
        hi = d0;
        if (try_ramp(S, RAMP_MIN, &ok, &peak) != 0)
            return -1;
        if (ok) {
            printf("suggest ramp: even a one-minute ramp keeps the peak under %s\n", b);
            return 0;
        }
        lo = RAMP_MIN;
    } else {
        lo = d0;
        for (hi = d0 * 2;; hi *= 2) {
            if (hi > RAMP_MAX)
                hi = RAMP_MAX;
            if (try_ramp(S, hi, &ok, &peak) != 0)
                return -1;
            if (ok)
                break;
            if (hi == RAMP_MAX) {
                printf("suggest ramp: no ramp up to 365 days keeps the peak under %s: the load comes from "
                       "elsewhere\n", b);
                return 0;
            }
            lo = hi;
        }
    }
    for (int i = 0; i < TRIALS_MAX && hi - lo > 60 && (double)(hi - lo) > 0.01 * (double)hi; i++) {
        int64_t mid = lo + (hi - lo) / 2;
        if (try_ramp(S, mid, &ok, &peak) != 0)
            return -1;
        *(ok ? &hi : &lo) = mid;
    }
    hi = (hi + 59) / 60 * 60; /* whole minutes, rounded up: never faster than what was found */
    fmt_span(hi, d, sizeof d);
    sim_fmt_time(S->loc.start + hi, end, sizeof end);
    printf("suggest ramp: at least %s from its start on stage %s/%s keeps every mirror under %s: end: %s\n", d,
           S->loc.rollout, S->stage, b, end);
    if ((double)(S->loc.start + hi) > (double)o->start + (double)o->horizon)
        printf("  (the ramp ends after the simulated days: --days covers only its beginning)\n");
    return 0;
}

int sim_suggest(const sim_plugin *pl, const sim_opts *o, const sim_pop *pop, uint64_t retry, const sim_result *base,
                char *err, size_t errcap)
{
    search S = {.pl = pl, .o = o, .pop = pop, .retry = retry, .err = err, .errcap = errcap};
    char *text;
    if (read_text(o->policy[0], &text, &S.len, err, errcap) != 0)
        return UG_EXIT_FAIL;
    S.text = text;
    char rollout[64] = "", why[256];
    const char *stage = o->suggest, *slash = strchr(stage, '/');
    if (slash) {
        snprintf(rollout, sizeof rollout, "%.*s", (int)(slash - stage < 63 ? slash - stage : 63), stage);
        stage = slash + 1;
    }
    int rc = UG_EXIT_OK;
    if (sim_edit_find(text, S.len, slash ? rollout : NULL, stage, &S.loc, why, sizeof why) != 0) {
        snprintf(err, errcap, "--suggest %s: %s: %s", o->suggest, o->policy[0], why);
        rc = UG_EXIT_USAGE;
    } else {
        char b[32];
        S.stage = stage;
        sim_fmt_bitrate(o->max_bw, b, sizeof b);
        printf("suggest: searching stage %s/%s against %s per mirror (each try runs the whole simulation again)\n",
               S.loc.rollout, stage, b);
        if (search_rate(&S, base) != 0 || (S.loc.linear && search_ramp(&S, base) != 0))
            rc = UG_EXIT_FAIL;
        else if (!S.loc.linear)
            printf("suggest ramp: stage %s has no linear percent ramp {from, to, start, end} to stretch\n", stage);
    }
    free(text);
    return rc;
}
