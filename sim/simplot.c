/* upgate-sim --plot: an SVG of its own (offers per stage, mirror bandwidth with the peak marked, share upgraded); PNG through rsvg-convert. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sim.h"
#include "simsuggest.h"

/*
 * Three panels share the time axis: new offers per step and stage; each
 * mirror's bandwidth per minute (the peak circled and labelled, the
 * --max-bandwidth line dashed red); the share of targeted peers upgraded.
 * A second policy is drawn dashed over the first. Long series are thinned
 * to at most PLOT_POINTS points a line, keeping each bucket's maximum, so
 * no peak is lost.
 */

#define W 1100
#define LEFT 90
#define RIGHT 270 /* the legend's room */
#define PW (W - LEFT - RIGHT)
#define PLOT_POINTS 1500
#define LEGEND_MAX 24

/* Red is kept for the peak and the --max-bandwidth line. */
static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
                                      "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define NCOLORS (sizeof palette / sizeof palette[0])

typedef struct {
    FILE *f;
    const sim_opts *o;
    const sim_result *r;
    unsigned n;
    double horizon;
    unsigned legend; /* entries so far */
    unsigned colours; /* series given a colour so far */
    int ly;          /* the legend's next baseline */
} plot;

typedef struct {
    int top, height;
    double ymax;
    const char *title;
    int unit; /* 0 count, 1 bit/s, 2 percent */
} panel;

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t')
                fputc(*s, f);
        }
    }
}

/* The next series' colour, one of its own across the whole plot: the
 * palette, then hues a golden angle apart (away from red) in buf. */
static const char *next_colour(plot *P, char buf[8])
{
    unsigned k = P->colours++;
    if (k < NCOLORS)
        return palette[k];
    double h = 30 + fmod((double)(k - NCOLORS) * 137.508, 300.0); /* 30..330: no red */
    double c = 0.6, x = c * (1 - fabs(fmod(h / 60, 2) - 1)), m = 0.15, rgb[3];
    int sector = (int)(h / 60);
    static const int pick[6][3] = {{0, 1, 2}, {1, 0, 2}, {2, 0, 1}, {2, 1, 0}, {1, 2, 0}, {0, 2, 1}};
    double val[3] = {c, x, 0};
    for (int i = 0; i < 3; i++)
        rgb[i] = val[pick[sector % 6][i]] + m;
    snprintf(buf, 8, "#%02x%02x%02x", (unsigned)(rgb[0] * 255), (unsigned)(rgb[1] * 255), (unsigned)(rgb[2] * 255));
    return buf;
}

static double px(const plot *P, double t)
{
    return LEFT + PW * (P->horizon > 0 ? t / P->horizon : 0);
}

static double py(const panel *pn, double v)
{
    return pn->top + pn->height - pn->height * (pn->ymax > 0 ? fmin(v, pn->ymax) / pn->ymax : 0);
}

/* A round step for about `want` ticks up to max: 1, 2 or 5 times a power of ten. */
static double nice_step(double max, int want)
{
    double raw = max / want, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static void label_value(double v, int unit, char *out, size_t cap)
{
    if (unit == 1)
        sim_fmt_bitrate(v, out, cap);
    else if (unit == 2)
        snprintf(out, cap, "%g%%", v);
    else if (v >= 1e6)
        snprintf(out, cap, "%gM", v / 1e6);
    else if (v >= 1e3)
        snprintf(out, cap, "%gk", v / 1e3);
    else
        snprintf(out, cap, "%g", v);
}

/* A time tick's label: "12-07" for day ticks, else "17:00", with the date
 * ("12-08 00:00") at midnight and on the first tick. */
static void clock_label(int64_t at, double ts, bool first, char *out, size_t cap)
{
    time_t tt = (time_t)at;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(out, cap, ts >= 86400 ? "%m-%d" :
                                         first || (tm.tm_hour == 0 && tm.tm_min == 0) ? "%m-%d %H:%M" : "%H:%M", &tm))
        snprintf(out, cap, "?");
}

static void draw_panel(plot *P, panel *pn)
{
    FILE *f = P->f;
    if (pn->ymax <= 0)
        pn->ymax = 1;
    double ys = nice_step(pn->ymax, 5);
    pn->ymax = ceil(pn->ymax / ys - 1e-9) * ys;
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"14\" font-weight=\"bold\">", LEFT, pn->top - 8);
    xml_text(f, pn->title);
    fputs("</text>\n", f);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>\n", LEFT, pn->top,
            PW, pn->height);
    for (double v = 0; v <= pn->ymax + ys / 2; v += ys) {
        char lab[32];
        double y = py(pn, v);
        label_value(v, pn->unit, lab, sizeof lab);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", LEFT, y, LEFT + PW, y);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%s</text>\n", LEFT - 6, y + 4,
                lab);
    }
    /* time ticks: minutes, hours, days or weeks, at most 8 of them */
    static const double ticks[] = {600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400,
                                   14 * 86400, 28 * 86400};
    double ts = ticks[0];
    for (size_t i = 0; i < sizeof ticks / sizeof ticks[0] && P->horizon / ticks[i] > 8; i++)
        ts = i + 1 < sizeof ticks / sizeof ticks[0] ? ticks[i + 1] : ticks[i];
    /* on the clock (UTC): ticks at whole multiples of ts, the date where a day starts */
    double start = (double)P->o->start, first = ceil(start / ts) * ts - start;
    for (double t = first; t <= P->horizon + 1; t += ts) {
        double x = px(P, t);
        char lab[32];
        clock_label((int64_t)(start + t), ts, t == first, lab, sizeof lab);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#eee\"/>\n", x, pn->top, x,
                pn->top + pn->height);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\">%s</text>\n", x,
                pn->top + pn->height + 14, lab);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">UTC</text>\n", LEFT + PW,
            pn->top + pn->height + 28);
}

/* A heading in the legend. */
static void legend_head(plot *P, const char *text)
{
    if (P->legend++ == LEGEND_MAX)
        return;
    P->ly += P->legend > 1 ? 10 : 0;
    int y = P->ly;
    P->ly += 18;
    fprintf(P->f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" font-weight=\"bold\">", W - RIGHT + 20, y);
    xml_text(P->f, text);
    fputs("</text>\n", P->f);
}

/* A legend entry: "A: what" when two policies are drawn, else "what". */
static void legend(plot *P, const char *color, unsigned policy, const char *what, const char *name)
{
    if (P->legend++ == LEGEND_MAX)
        return;
    int y = P->ly, x = W - RIGHT + 20;
    P->ly += 18;
    fprintf(P->f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2.5\"%s/>\n", x, y - 4,
            x + 24, y - 4, color, policy ? " stroke-dasharray=\"6,3\"" : "");
    char text[200];
    if (P->n > 1)
        snprintf(text, sizeof text, "%c: %s%s", 'A' + policy, what, name);
    else
        snprintf(text, sizeof text, "%s%s", what, name);
    fprintf(P->f, "<text x=\"%d\" y=\"%d\" font-size=\"12\">", x + 30, y);
    xml_text(P->f, text);
    fputs("</text>\n", P->f);
}

/* A polyline of n values, value i spanning [t0 + i*dt, t0 + (i+1)*dt), thinned. */
static void series(plot *P, const panel *pn, const double *v, size_t n, double dt, const char *color, bool dashed)
{
    size_t per = n > PLOT_POINTS ? (n + PLOT_POINTS - 1) / PLOT_POINTS : 1;
    fprintf(P->f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"", color,
            dashed ? " stroke-dasharray=\"6,3\"" : "");
    for (size_t i = 0; i < n; i += per) {
        double m = 0;
        for (size_t k = i; k < i + per && k < n; k++)
            m = fmax(m, v[k]);
        double a = px(P, (double)i * dt), b = px(P, fmin((double)(i + per) * dt, P->horizon)), y = py(pn, m);
        fprintf(P->f, "%.1f,%.1f %.1f,%.1f ", a, y, b, y);
    }
    fputs("\"/>\n", P->f);
}

static int panel_offers(plot *P, int top)
{
    panel pn = {.top = top, .height = 200, .title = "New offers per step, by stage"};
    double *v = NULL;
    for (unsigned p = 0; p < P->n; p++)
        for (unsigned s = 0; s < P->r[p].nsteps; s++)
            for (unsigned i = 0; i <= P->r[p].nstages; i++)
                pn.ymax = fmax(pn.ymax, (double)P->r[p].offers[(size_t)s * (SIM_STAGES_MAX + 1) + i]);
    draw_panel(P, &pn);
    legend_head(P, "Offers per step");
    for (unsigned p = 0; p < P->n; p++) {
        const sim_result *r = &P->r[p];
        if (!(v = realloc(v, r->nsteps * sizeof *v)))
            return -1;
        for (unsigned i = 0; i <= r->nstages; i++) {
            if (i == r->nstages && !r->stages[i].offered)
                continue;
            for (unsigned s = 0; s < r->nsteps; s++)
                v[s] = (double)r->offers[(size_t)s * (SIM_STAGES_MAX + 1) + i];
            char cb[8];
            const char *c = next_colour(P, cb);
            series(P, &pn, v, r->nsteps, (double)r->step, c, p > 0);
            legend(P, c, p, "", r->stages[i].name);
        }
    }
    free(v);
    return 0;
}

static void mark_peak(plot *P, const panel *pn, const sim_result *r, unsigned p)
{
    unsigned mirror, minute;
    double peak = sim_worst_mirror_bps(r, &mirror, &minute);
    if (peak <= 0)
        return;
    double x = px(P, minute * 60.0 + 30), y = py(pn, peak);
    char bw[32], at[32];
    sim_fmt_bitrate(peak, bw, sizeof bw);
    sim_fmt_offset((uint64_t)minute * 60, false, at, sizeof at);
    fprintf(P->f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\"/>\n", x, y);
    char text[160];
    snprintf(text, sizeof text, "%speak %s at %s on %s", P->n > 1 ? (p ? "B: " : "A: ") : "", bw, at, r->mirror[mirror]);
    /* the label on a white ground, right of the circle (left of it near the right edge), one line per policy */
    double w = 6.6 * (double)strlen(text), tx = x + 10 + w < LEFT + PW ? x + 10 : x - 10 - w;
    double ty = pn->top + 18 + 16.0 * p;
    fprintf(P->f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"15\" fill=\"white\" fill-opacity=\"0.85\"/>\n",
            tx - 2, ty - 12, w + 4);
    fprintf(P->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" stroke-width=\"0.8\"/>\n", x,
            y - 6, tx < x ? tx + w : tx, ty - 4);
    fprintf(P->f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" fill=\"#d62728\">", tx, ty);
    xml_text(P->f, text);
    fputs("</text>\n", P->f);
}

static int panel_bandwidth(plot *P, int top)
{
    panel pn = {.top = top, .height = 220, .title = "Mirror bandwidth (1-minute average)", .unit = 1};
    for (unsigned p = 0; p < P->n; p++)
        pn.ymax = fmax(pn.ymax, sim_worst_mirror_bps(&P->r[p], NULL, NULL));
    pn.ymax = fmax(pn.ymax, P->o->max_bw * 1.05);
    draw_panel(P, &pn);
    legend_head(P, "Mirrors");
    double *v = NULL;
    for (unsigned p = 0; p < P->n; p++) {
        const sim_result *r = &P->r[p];
        unsigned nm = r->nmirrors ? r->nmirrors : 1;
        if (!(v = realloc(v, r->nminutes * sizeof *v)))
            return -1;
        for (unsigned m = 0; m < nm; m++) {
            for (unsigned i = 0; i < r->nminutes; i++)
                v[i] = sim_minute_bps(r, i, m);
            char cb[8];
            const char *c = next_colour(P, cb);
            series(P, &pn, v, r->nminutes, 60, c, p > 0);
            legend(P, c, p, "", r->mirror[m]);
        }
    }
    free(v);
    if (P->o->max_bw > 0) {
        double y = py(&pn, P->o->max_bw);
        char b[32];
        sim_fmt_bitrate(P->o->max_bw, b, sizeof b);
        fprintf(P->f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#d62728\" stroke-dasharray=\"8,4\"/>\n",
                LEFT, y, LEFT + PW, y);
        fprintf(P->f, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" fill=\"#d62728\" text-anchor=\"end\">max %s</text>\n",
                LEFT + PW - 4, y - 4, b);
    }
    for (unsigned p = 0; p < P->n; p++)
        mark_peak(P, &pn, &P->r[p], p);
    return 0;
}

static int panel_share(plot *P, int top)
{
    panel pn = {.top = top, .height = 140, .title = "Targeted peers upgraded (%)", .unit = 2, .ymax = 100};
    draw_panel(P, &pn);
    legend_head(P, "Fleet");
    double *v = NULL;
    for (unsigned p = 0; p < P->n; p++) {
        const sim_result *r = &P->r[p];
        if (!(v = realloc(v, r->nsteps * sizeof *v)))
            return -1;
        uint64_t cum = 0;
        for (unsigned s = 0; s < r->nsteps; s++) {
            cum += r->steps[s].upgraded;
            v[s] = r->targeted ? 100.0 * (double)cum / (double)r->targeted : 0;
        }
        char cb[8];
        const char *c = next_colour(P, cb);
        series(P, &pn, v, r->nsteps, (double)r->step, c, p > 0);
        legend(P, c, p, "targeted peers upgraded", "");
    }
    free(v);
    return 0;
}

static int write_svg(const sim_opts *o, const sim_result *r, unsigned n, FILE *f)
{
    plot P = {.f = f, .o = o, .r = r, .n = n, .horizon = (double)r[0].horizon, .ly = 66};
    int h = 40 + 30 + 200 + 60 + 220 + 60 + 140 + 40;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
               W, h, W, h);
    fputs("<text x=\"20\" y=\"28\" font-size=\"16\" font-weight=\"bold\">upgate-sim: ", f);
    for (unsigned p = 0; p < n; p++) {
        char lab[8];
        snprintf(lab, sizeof lab, "%s%c ", p ? ", " : "", 'A' + p);
        fputs(n > 1 ? lab : "", f);
        xml_text(f, r[p].policy);
    }
    char from[40];
    sim_fmt_time(o->start, from, sizeof from);
    fprintf(f, "%s from %s</text>\n", n > 1 ? " (B dashed)," : ",", from);
    if (panel_offers(&P, 70) != 0 || panel_bandwidth(&P, 330) != 0 || panel_share(&P, 610) != 0)
        return -1;
    fputs("</svg>\n", f);
    return 0;
}

/* rsvg-convert svg -> png, without a shell. */
static int to_png(const char *svg, const char *png, char *err, size_t errcap)
{
    pid_t pid = fork();
    if (pid < 0)
        return snprintf(err, errcap, "--plot %s: fork: %s", png, strerror(errno)), -1;
    if (pid == 0) {
        execlp("rsvg-convert", "rsvg-convert", "-f", "png", "-o", png, svg, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return snprintf(err, errcap, "--plot %s: waitpid: %s", png, strerror(errno)), -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
        return snprintf(err, errcap, "--plot %s: rsvg-convert is not installed (Debian: librsvg2-bin); --plot "
                                     "FILE.svg needs nothing", png), -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return snprintf(err, errcap, "--plot %s: rsvg-convert failed", png), -1;
    return 0;
}

int sim_write_plot(const sim_opts *o, const sim_result *r, unsigned n, const char *path, char *err, size_t errcap)
{
    const char *dot = strrchr(path, '.');
    bool png = dot && strcmp(dot, ".png") == 0;
    char svg[4096 + 32];
    if (png) {
        snprintf(svg, sizeof svg, "%s.XXXXXX", path);
        int fd = mkstemp(svg);
        if (fd < 0)
            return snprintf(err, errcap, "--plot %s: %s", path, strerror(errno)), -1;
        close(fd);
        sim_scratch_add(svg);
    } else {
        snprintf(svg, sizeof svg, "%s", path);
    }
    FILE *f = fopen(svg, "w");
    if (!f)
        return snprintf(err, errcap, "--plot %s: %s", path, strerror(errno)), -1;
    int rc = write_svg(o, r, n, f);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad || rc != 0)
        rc = (snprintf(err, errcap, "--plot %s: cannot write: %s", svg, rc ? "out of memory" : strerror(errno)), -1);
    if (rc == 0 && png)
        rc = to_png(svg, path, err, errcap);
    if (png)
        sim_scratch_remove(svg);
    return rc;
}
