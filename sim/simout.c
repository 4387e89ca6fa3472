/* upgate-sim's text output: the header, the table per time step, the headline figures, and the CSV of every series. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"
#include "simsuggest.h"

#define TABLE_STAGES_MAX 6u   /* more stages: one "offers" column */
#define TABLE_MIRRORS_MAX 3u  /* more mirrors: one "all mirrors" column */

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Is stage i worth a column: a stage of the policy, or "other" with offers. */
static bool shown_stage(const sim_result *r, unsigned i)
{
    return i < r->nstages || r->stages[i].offered > 0;
}

static unsigned nmirrors(const sim_result *r)
{
    return r->nmirrors ? r->nmirrors : 1;
}

static double share_at(const sim_result *r, uint64_t upgraded)
{
    return r->targeted ? 100.0 * (double)upgraded / (double)r->targeted : 0;
}

/* Does any mirror's busiest minute of step s pass the bound? */
static bool over(const sim_opts *o, const sim_result *r, unsigned s)
{
    if (!o->max_bw)
        return false;
    for (unsigned m = 0; m < nmirrors(r); m++)
        if (sim_step_peak_bps(r, s, m) > o->max_bw)
            return true;
    return false;
}

/* "package 1.0 MB", or with rollouts of different packages each one's:
 * "packages: big 1.0 MB, small 250.0 kB" (first: the first download's). */
static void print_packages(const sim_result *r, const char *first)
{
    bool differ = false;
    for (unsigned i = 0; i <= r->nstages; i++)
        differ |= r->stages[i].package_size && r->stages[i].package_size != r->package_size;
    if (!differ) {
        printf("package %s", first);
        return;
    }
    printf("packages:");
    const char *sep = " ";
    for (unsigned i = 0; i <= r->nstages; i++) {
        const sim_stageinfo *si = &r->stages[i];
        bool seen = false;
        for (unsigned k = 0; k < i; k++)
            seen |= r->stages[k].package_size && !strcmp(r->stages[k].rollout, si->rollout);
        if (!si->package_size || seen)
            continue;
        char b[32];
        sim_fmt_bytes((double)si->package_size, b, sizeof b);
        printf("%s%s %s", sep, si->rollout[0] ? si->rollout : si->name, b);
        sep = ", ";
    }
}

void sim_print_header(const sim_opts *o, const sim_pop *pop, const sim_result *r, unsigned n)
{
    char peers[32], from[40], span[40], size[32], speed[80], a[32], b[32];
    sim_fmt_count(o->nreplay ? pop->npeers : o->peers, peers, sizeof peers);
    sim_fmt_time(o->start, from, sizeof from);
    sim_fmt_offset(o->horizon, false, span, sizeof span);
    sim_fmt_bytes((double)r[0].package_size, size, sizeof size);
    sim_fmt_bitrate(o->speed_lo, a, sizeof a);
    sim_fmt_bitrate(o->speed_hi, b, sizeof b);
    if (o->speed_lo == o->speed_hi)
        snprintf(speed, sizeof speed, "%s", a);
    else
        snprintf(speed, sizeof speed, "%s to %s", a, b);
    if (o->nreplay) {
        char recs[32];
        sim_fmt_count(pop->nrecs, recs, sizeof recs);
        printf("upgate-sim: %s recorded HELLOs of %s peers (%s%s, time scale %g)\n", recs, peers, o->replay[0],
               o->nreplay > 1 ? " and more" : "", o->time_scale);
    } else if (o->logins > 0) {
        printf("upgate-sim: %s synthetic peers (seed %llu), %g logins a day peaking at %02u:00 UTC, online %llu s each\n",
               peers, (unsigned long long)o->seed, o->logins, o->peak_hour, (unsigned long long)o->session);
    } else {
        printf("upgate-sim: %s synthetic peers (seed %llu), always online\n", peers, (unsigned long long)o->seed);
    }
    printf("  from %s for %s, steps of %llu min; accept %g, think %llu s, speed %s, fail %g, rollback %g\n", from,
           span + 1, (unsigned long long)(o->step / 60), o->accept, (unsigned long long)o->think, speed, o->fail,
           o->rollback);
    for (unsigned i = 0; i < n; i++) {
        printf("  policy %c: %s; ", 'A' + i, r[i].policy);
        print_packages(&r[i], size);
        printf("; mirrors:");
        for (unsigned m = 0; m < nmirrors(&r[i]); m++)
            printf(" %s", r[i].mirror[m]);
        printf("\n");
    }
}

/* ---- the table --------------------------------------------------------------------------- */

static void cell_rate(double bps, bool flag, int width)
{
    char s[40];
    sim_fmt_bitrate(bps, s, sizeof s);
    if (flag)
        strncat(s, "!", sizeof s - strlen(s) - 1);
    printf(" %*s", width, s);
}

/* A column as wide as its header, never narrower than min: names are not cut. */
static int col_width(const char *name, int min)
{
    size_t n = strlen(name);
    return n > (size_t)min ? (int)n : min;
}

static void table_one(const sim_opts *o, const sim_result *r)
{
    unsigned nm = nmirrors(r), ns = 0;
    int sw[SIM_STAGES_MAX + 1], mw[SIM_MIRRORS_MAX];
    for (unsigned i = 0; i <= r->nstages; i++) {
        ns += shown_stage(r, i);
        sw[i] = col_width(r->stages[i].name, 10);
    }
    for (unsigned m = 0; m < nm; m++)
        mw[m] = col_width(r->mirror[m], 13);
    bool per_stage = ns <= TABLE_STAGES_MAX, per_mirror = nm <= TABLE_MIRRORS_MAX;
    printf("%-10s", "time");
    if (per_stage) {
        for (unsigned i = 0; i <= r->nstages; i++)
            if (shown_stage(r, i))
                printf(" %*s", sw[i], r->stages[i].name);
    } else {
        printf(" %10s", "offers");
    }
    printf(" %10s %7s %9s", "upgraded", "fleet", "in flight");
    if (per_mirror)
        for (unsigned m = 0; m < nm; m++)
            printf(" %*s", mw[m], r->mirror[m]);
    else
        printf(" %13s", "all mirrors");
    printf(" %13s\n", "peak minute");
    uint64_t cum = 0;
    for (unsigned s = 0; s < r->nsteps; s++) {
        const sim_stepstat *st = &r->steps[s];
        char t[32];
        sim_fmt_offset((uint64_t)s * r->step, false, t, sizeof t);
        printf("%-10s", t);
        const uint64_t *off = &r->offers[(size_t)s * (SIM_STAGES_MAX + 1)];
        if (per_stage) {
            for (unsigned i = 0; i <= r->nstages; i++)
                if (shown_stage(r, i))
                    printf(" %*llu", sw[i], (unsigned long long)off[i]);
        } else {
            printf(" %10llu", (unsigned long long)st->offers_new);
        }
        cum += st->upgraded;
        printf(" %10llu %6.1f%% %9u", (unsigned long long)cum, share_at(r, cum), st->in_flight_max);
        if (per_mirror)
            for (unsigned m = 0; m < nm; m++)
                cell_rate(sim_step_avg_bps(r, s, m), false, mw[m]);
        else
            cell_rate(sim_step_avg_bps(r, s, SIM_MIRRORS_MAX), false, 13);
        double worst = 0;
        for (unsigned m = 0; m < nm; m++)
            worst = fmax(worst, sim_step_peak_bps(r, s, m));
        cell_rate(worst, over(o, r, s), 13);
        printf("\n");
    }
    printf("(offers: new offers in the step; mirrors: average over the step; peak minute: the busiest minute of the "
           "busiest mirror%s)\n", o->max_bw ? ", ! above --max-bandwidth" : "");
}

static void table_side_by_side(const sim_opts *o, const sim_result *r, unsigned n)
{
    printf("%-10s", "");
    for (unsigned p = 0; p < n; p++)
        printf(" | policy %c: %-41.41s", 'A' + p, base_name(r[p].policy));
    printf("\n%-10s", "time");
    for (unsigned p = 0; p < n; p++)
        printf(" | %8s %7s %7s %11s %13s", "offers", "fleet", "flight", "all mirrors", "peak minute");
    printf("\n");
    uint64_t cum[SIM_POLICIES_MAX] = {0};
    unsigned rows = 0;
    for (unsigned p = 0; p < n; p++)
        rows = r[p].nsteps > rows ? r[p].nsteps : rows;
    for (unsigned s = 0; s < rows; s++) {
        char t[32];
        sim_fmt_offset((uint64_t)s * r[0].step, false, t, sizeof t);
        printf("%-10s", t);
        for (unsigned p = 0; p < n; p++) {
            const sim_result *x = &r[p];
            const sim_stepstat *st = &x->steps[s];
            cum[p] += st->upgraded;
            double worst = 0;
            for (unsigned m = 0; m < nmirrors(x); m++)
                worst = fmax(worst, sim_step_peak_bps(x, s, m));
            printf(" | %8llu %6.1f%% %7u", (unsigned long long)st->offers_new, share_at(x, cum[p]), st->in_flight_max);
            cell_rate(sim_step_avg_bps(x, s, SIM_MIRRORS_MAX), false, 11);
            cell_rate(worst, over(o, x, s), 13);
        }
        printf("\n");
    }
    printf("(offers: new offers in the step, every stage; all mirrors: average over the step; peak minute: the "
           "busiest minute of the busiest mirror%s)\n", o->max_bw ? ", ! above --max-bandwidth" : "");
}

void sim_print_table(const sim_opts *o, const sim_result *r, unsigned n)
{
    printf("\n");
    if (n == 1)
        table_one(o, r);
    else
        table_side_by_side(o, r, n);
}

/* ---- the headline ------------------------------------------------------------------------- */

static void when(const sim_opts *o, int64_t at, bool secs, char *out, size_t cap)
{
    char off[32], abs[40];
    sim_fmt_offset((uint64_t)at, secs, off, sizeof off);
    sim_fmt_time(o->start + at, abs, sizeof abs);
    snprintf(out, cap, "%s (%s)", off, abs);
}

static void headline_peak(const sim_opts *o, const sim_result *r)
{
    unsigned nm = nmirrors(r), mirror, minute;
    double worst = sim_worst_mirror_bps(r, &mirror, &minute);
    char bw[32], at[96];
    if (worst <= 0) {
        printf("  peak bandwidth: none: no download in the simulated time\n");
        return;
    }
    sim_fmt_bitrate(worst, bw, sizeof bw);
    when(o, (int64_t)minute * 60, false, at, sizeof at);
    printf("  peak bandwidth: %s on %s in the minute from %s\n", bw, r->mirror[mirror], at);
    if (nm > 1) {
        double all = sim_peak_bps(r, SIM_MIRRORS_MAX, &minute);
        sim_fmt_bitrate(all, bw, sizeof bw);
        when(o, (int64_t)minute * 60, false, at, sizeof at);
        printf("    all %u mirrors together: %s from %s\n", nm, bw, at);
    }
    double total = 0;
    for (unsigned i = 0; i < r->nminutes; i++)
        total += sim_minute_bps(r, i, SIM_MIRRORS_MAX) * fmin(60.0, (double)r->horizon - 60.0 * i) / 8;
    char tb[32];
    sim_fmt_bytes(total, tb, sizeof tb);
    printf("    downloaded in all: %s\n", tb);
    if (r->delta_downloads) {
        char saved[32];
        sim_fmt_bytes(r->delta_saved, saved, sizeof saved);
        printf("    by delta: %llu of %llu downloads, %s less than full packages\n",
               (unsigned long long)r->delta_downloads, (unsigned long long)r->downloads, saved);
    }
}

static void headline_share(const sim_opts *o, const sim_result *r)
{
    static const double shares[] = {0.5, 0.9, 0.99};
    printf("  upgraded:");
    for (unsigned i = 0; i < 3; i++) {
        int64_t t = sim_time_to_share(r, shares[i]);
        if (t < 0) {
            printf("%s %g%% not reached", i ? ";" : "", shares[i] * 100);
            break;
        }
        char at[96];
        when(o, t, false, at, sizeof at);
        printf("%s %g%% at %s", i ? "," : "", shares[i] * 100, at);
    }
    printf(" (%.1f%% of the targeted at the end)\n", share_at(r, r->upgraded));
}

static void headline_quotas(const sim_opts *o, const sim_result *r)
{
    for (unsigned i = 0; i < r->nstages; i++) {
        const sim_stageinfo *si = &r->stages[i];
        if (!si->has_quota)
            continue;
        char q[32], off[32], at[96];
        sim_fmt_count(si->quota, q, sizeof q);
        sim_fmt_count(si->offered, off, sizeof off);
        if (si->spent_at >= 0) {
            when(o, si->spent_at, true, at, sizeof at);
            printf("  quota of stage %s (%s): spent at %s\n", si->name, q, at);
        } else {
            printf("  quota of stage %s (%s): not spent (%s offered)\n", si->name, q, off);
        }
    }
}

static void headline_over(const sim_opts *o, const sim_result *r)
{
    if (!o->max_bw)
        return;
    char b[32], at[96];
    sim_fmt_bitrate(o->max_bw, b, sizeof b);
    unsigned n = 0, first = 0;
    for (unsigned s = 0; s < r->nsteps; s++)
        if (over(o, r, s) && !n++)
            first = s;
    if (!n) {
        printf("  --max-bandwidth %s: every mirror stays under it\n", b);
        return;
    }
    when(o, (int64_t)first * (int64_t)r->step, false, at, sizeof at);
    printf("  --max-bandwidth %s: exceeded in %u step%s, the first from %s\n", b, n, n == 1 ? "" : "s", at);
}

void sim_print_headline(const sim_opts *o, const sim_result *r, unsigned n)
{
    for (unsigned p = 0; p < n; p++) {
        const sim_result *x = &r[p];
        char tg[32], ut[32], dec[32];
        sim_fmt_count(x->targeted, tg, sizeof tg);
        sim_fmt_count(x->untargeted, ut, sizeof ut);
        sim_fmt_count(x->decisions, dec, sizeof dec);
        printf("\n%s%c: %s\n", n > 1 ? "policy " : "policy ", 'A' + p, x->policy);
        printf("  peers: %s targeted, %s not targeted (no rollout takes their version, platform or channel)", tg, ut);
        if (x->unasked) {
            char un[32];
            sim_fmt_count(x->unasked, un, sizeof un);
            printf(", %s never asked (not online within the horizon%s)", un,
                   x->errors ? ", or the plugin refused them" : "");
        }
        printf("\n");
        if (!x->targeted)
            printf("  nothing to forecast: no peer is targeted; check --versions, --plat and --chan against the "
                   "policy's rollouts\n");
        headline_peak(o, x);
        headline_share(o, x);
        headline_quotas(o, x);
        headline_over(o, x);
        if (x->stopped[0]) {
            char at[96];
            when(o, x->stopped_at, true, at, sizeof at);
            printf("  stopped: %s%s%s\n", x->stopped, x->stopped_at ? " at " : "", x->stopped_at ? at : "");
        }
        if (x->halted[0])
            printf("  halted at the end: %s\n", x->halted);
        if (x->outcomes[0])
            printf("  outcomes (the tracker's count): %s\n", x->outcomes);
        if (x->cookies || x->errors)
            printf("  anomalies: %llu COOKIE answers, %llu claims refused\n", (unsigned long long)x->cookies,
                   (unsigned long long)x->errors);
        for (unsigned i = 0; i < x->nlogs; i++)
            printf("  plugin: %s\n", x->logs[i]);
        if (x->logs_dropped)
            printf("  plugin: ... and %u more lines\n", x->logs_dropped);
        printf("  simulated: %s decisions, %.1f s (%.0f ns of CPU each)\n", dec, x->loop_seconds,
               x->decisions ? x->cpu_seconds * 1e9 / (double)x->decisions : 0.0);
    }
}

/* ---- CSV ------------------------------------------------------------------------------------ */

/* A CSV field: quoted when it holds a comma, quote or line break. */
static void csv_text(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* The stage names of every policy, each once, in order of appearance. */
static unsigned stage_union(const sim_result *r, unsigned n, const char *names[], unsigned cap)
{
    unsigned k = 0;
    for (unsigned p = 0; p < n; p++)
        for (unsigned i = 0; i <= r[p].nstages; i++) {
            bool have = false;
            for (unsigned j = 0; j < k; j++)
                have |= strcmp(names[j], r[p].stages[i].name) == 0;
            if (!have && k < cap)
                names[k++] = r[p].stages[i].name;
        }
    return k;
}

static int stage_index(const sim_result *r, const char *name)
{
    for (unsigned i = 0; i <= r->nstages; i++)
        if (strcmp(r->stages[i].name, name) == 0)
            return (int)i;
    return -1;
}

int sim_write_csv(const sim_opts *o, const sim_result *r, unsigned n, const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return snprintf(err, errcap, "--csv %s: %s", path, strerror(errno)), -1;
    const char *names[SIM_POLICIES_MAX * (SIM_STAGES_MAX + 1)];
    unsigned k = stage_union(r, n, names, sizeof names / sizeof names[0]);
    fputs("policy,step,offset_s,time,decisions,offers_new,offers_sticky", f);
    for (unsigned j = 0; j < k; j++) {
        char h[128];
        snprintf(h, sizeof h, "offers:%s", names[j]);
        fputc(',', f);
        csv_text(f, h);
    }
    for (unsigned w = 0; w < UG_WHY_COUNT_; w++)
        fprintf(f, ",waits:%s", ug_why_name(w));
    fputs(",cookies,upgraded,declined,failed,rolled_back,upgraded_total,fleet_share,in_flight_max", f);
    unsigned nm = 1;
    for (unsigned p = 0; p < n; p++)
        nm = nmirrors(&r[p]) > nm ? nmirrors(&r[p]) : nm;
    for (unsigned m = 0; m < nm; m++)
        fprintf(f, ",bytes:m%u,avg_bps:m%u,peak_bps:m%u", m, m, m);
    fputs(",avg_bps:all,peak_bps:all,over_max\n", f);
    for (unsigned p = 0; p < n; p++) {
        const sim_result *x = &r[p];
        uint64_t cum = 0;
        for (unsigned s = 0; s < x->nsteps; s++) {
            const sim_stepstat *st = &x->steps[s];
            char t[40];
            sim_fmt_time(o->start + (int64_t)s * (int64_t)x->step, t, sizeof t);
            csv_text(f, x->policy);
            fprintf(f, ",%u,%llu,%s,%llu,%llu,%llu", s, (unsigned long long)s * x->step, t,
                    (unsigned long long)st->decisions, (unsigned long long)st->offers_new,
                    (unsigned long long)st->offers_sticky);
            for (unsigned j = 0; j < k; j++) {
                int i = stage_index(x, names[j]);
                if (i < 0)
                    fputs(",", f);
                else
                    fprintf(f, ",%llu", (unsigned long long)x->offers[(size_t)s * (SIM_STAGES_MAX + 1) + (unsigned)i]);
            }
            for (unsigned w = 0; w < UG_WHY_COUNT_; w++)
                fprintf(f, ",%llu", (unsigned long long)st->waits[w]);
            cum += st->upgraded;
            fprintf(f, ",%llu,%llu,%llu,%llu,%llu,%llu,%.6f,%u", (unsigned long long)st->cookies,
                    (unsigned long long)st->upgraded, (unsigned long long)st->declined, (unsigned long long)st->failed,
                    (unsigned long long)st->rolled_back, (unsigned long long)cum, share_at(x, cum) / 100,
                    st->in_flight_max);
            for (unsigned m = 0; m < nm; m++) {
                fprintf(f, ",%.0f,%.0f,%.0f", sim_step_bytes(x, s, m), sim_step_avg_bps(x, s, m),
                        sim_step_peak_bps(x, s, m));
            }
            fprintf(f, ",%.0f,%.0f,%d\n", sim_step_avg_bps(x, s, SIM_MIRRORS_MAX),
                    sim_step_peak_bps(x, s, SIM_MIRRORS_MAX), over(o, x, s));
        }
    }
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad)
        return snprintf(err, errcap, "--csv %s: cannot write: %s", path, strerror(errno)), -1;
    return 0;
}
