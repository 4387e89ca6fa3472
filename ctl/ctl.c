/* upgate-ctl: steers a running tracker through its control socket (docs/control.md; cli.md "Operating a running tracker"). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common.h"
#include "ctlclient.h"
#include "ctlfind.h"
#include "explain_arg.h"
#include "jwalk.h"
#include "render.h"
#include "ug_proto.h"

#ifndef UG_CTL_DEFAULT_POLICY
#define UG_CTL_DEFAULT_POLICY "/etc/upgate/policy.yaml"
#endif
#define SHOWN_MAX 200  /* bytes of a malformed reply shown in the error */
#define ERROR_MAX 2000 /* bytes of the tracker's error shown */

/* --help: this, each command's usage and help (control.def), then usage_tail. */
static const char usage_head[] =
    "usage: upgate-ctl [--socket PATH | --policy FILE] [--json] [--timeout SECONDS] COMMAND [ARGS]\n"
    "\n"
    "Steers a running upgate tracker through its control socket.\n"
    "\n"
    "commands:\n";

static const char usage_tail[] =
    "\n"
    "options:\n"
    "  --socket PATH       the tracker's control socket\n"
    "  --policy FILE       the socket of the node serving that policy, from the record it keeps\n"
    "                      in a runtime folder (by default the socket is upgate.ctl in the\n"
    "                      policy's state folder)\n"
    "                      (when neither is given: --policy " UG_CTL_DEFAULT_POLICY ", if it exists)\n"
    "  --json              print the tracker's JSON reply as it is, on one line\n"
    "                      (watch: one line per interval)\n"
    "  --timeout SECONDS   give up on a reply after this long (default 10; 1..86400)\n"
    "  --all               pause, resume or halt every rollout\n"
    "  --why TEXT          the reason for halt (required), pause or resume, kept in the history\n"
    "  --interval SECONDS  watch: seconds between two looks (default 1; 1..3600)\n"
    "  --count N           watch: stop after N looks (default: until interrupted)\n"
    "  --force             fleet forget: write off a tracker that still looks alive, or this one\n"
    "  --release VERSION   grants: the grants of that release of the rollout (an earlier one)\n"
    "  --help              this text\n"
    "  --version           the program's version\n"
    "\n"
    "Exit status: 0 done; 1 the tracker refused or failed, or could not be reached (the\n"
    "reason on stderr, one line); 2 bad usage. Replies are read to the end, at most 256 MiB.\n";

typedef struct {
    const char *socket, *policy, *why, *release;
    bool json, all, force;
    long timeout_ms, interval_ms;
    unsigned long count;
    bool has_timeout, has_interval, has_count;
    const char *pos[4]; /* the command and its arguments */
    int npos;
    char *why_failed; /* when set, ask() puts its one line here, not on stderr (a watch frame shows it) */
    size_t why_cap;
} opts;

/* ---- the request and its reply -------------------------------------------- */

/* The first bytes of a reply that is not what it should be, control bytes
 * escaped: enough to recognise it, never a flood. */
static const char *shown(const char *data, size_t len, size_t max, char *buf, size_t cap)
{
    size_t at = 0, n = len < max ? len : max;
    for (size_t i = 0; i < n && at + 5 < cap; i++) {
        unsigned char c = (unsigned char)data[i];
        at += (size_t)snprintf(buf + at, cap - at, c < 0x20 || c >= 0x7f ? "\\x%02x" : "%c", c);
    }
    snprintf(buf + at, cap - at, "%s", len > n ? "..." : "");
    return buf;
}

typedef struct {
    ug_buf raw;
    json_t *members; /* the reply's members (less the split array) */
} reply;

static void reply_free(reply *r)
{
    ug_buf_free(&r->raw);
    json_decref(r->members);
    r->members = NULL;
}

static int validate_only(void *ctx, size_t i, const json_t *elem)
{
    (void)ctx, (void)i, (void)elem;
    return 0;
}

/* ask()'s one line: on stderr, or into o->why_failed. Returns 1. */
__attribute__((format(printf, 2, 3))) static int failed(const opts *o, const char *fmt, ...)
{
    char line[ERROR_MAX * 4 + 1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (o->why_failed)
        snprintf(o->why_failed, o->why_cap, "%s", line);
    else
        ug_complain(UG_EXIT_FAIL, "%s", line);
    return UG_EXIT_FAIL;
}

/* Sends req (stolen) and reads the reply. split names an array member to
 * hand to on_elem row by row (grants). With --json the reply goes to
 * stdout as it came. 0 when the tracker said ok; else 1, the reason on
 * stderr in one line. */
static int ask(const opts *o, const char *sock, json_t *req, const char *split, ug_jwalk_elem on_elem, void *ctx,
               reply *r)
{
    char err[1024], buf[ERROR_MAX * 4 + 8];
    char *line = req ? json_dumps(req, JSON_COMPACT) : NULL;
    bool reload = req && !strcmp(json_string_value(json_object_get(req, "cmd")) ?: "", "reload");
    json_decref(req);
    *r = (reply){.raw = {.max = UG_CTLC_REPLY_MAX}};
    if (!line)
        return failed(o, "out of memory");
    int rc = ug_ctlc_call(sock, line, strlen(line), o->timeout_ms, &r->raw, err, sizeof err);
    free(line);
    if (rc != 0)
        return failed(o, "%s", err);
    if (o->json && split)
        on_elem = validate_only;
    rc = ug_jwalk(r->raw.data, r->raw.len, split, on_elem, ctx, &r->members, err, sizeof err);
    if (rc != 0)
        return failed(o, "the reply from %s is not one JSON object (%s): %s", sock, err,
                      shown(r->raw.data, r->raw.len, SHOWN_MAX, buf, sizeof buf));
    const json_t *ok = json_object_get(r->members, "ok");
    if (!json_is_boolean(ok))
        return failed(o, "the reply from %s has no \"ok\": %s", sock,
                      shown(r->raw.data, r->raw.len, SHOWN_MAX, buf, sizeof buf));
    if (o->json) {
        fwrite(r->raw.data, 1, r->raw.len, stdout);
        if (r->raw.data[r->raw.len - 1] != '\n')
            fputc('\n', stdout);
    }
    if (json_is_true(ok))
        return UG_EXIT_OK;
    const char *why = json_string_value(json_object_get(r->members, "error"));
    if (!why)
        return failed(o, "the tracker refused without a reason");
    return failed(o, "%s%s", shown(why, strlen(why), ERROR_MAX, buf, sizeof buf),
                  reload ? " (not reloaded: the running policy stays)" : "");
}

/* ---- commands -------------------------------------------------------------- */

static int finish(int code)
{
    if (fflush(stdout) != 0 || ferror(stdout))
        return ug_complain(UG_EXIT_FAIL, "cannot write the output: %s", strerror(errno));
    return code;
}

static int run_status(const opts *o, const char *sock)
{
    reply r;
    int rc = ask(o, sock, json_pack("{s:s}", "cmd", "status"), NULL, NULL, NULL, &r);
    if (rc == 0 && !o->json)
        ug_render_status(r.members, stdout, (int64_t)ug_now());
    reply_free(&r);
    return finish(rc);
}

/* The member k of o on stdout, or dflt when it has none. */
static void member(const json_t *o, const char *k, const char *dflt)
{
    const json_t *v = json_object_get(o, k);
    if (v)
        ug_render_value_key(k, v, stdout);
    else
        fputs(dflt, stdout);
}

/* "desktop" or "desktop, mobile" from the reply's list of rollouts. */
static void names(const json_t *list, FILE *out)
{
    size_t i;
    const json_t *n;
    json_array_foreach(list, i, n)
    {
        fputs(i ? ", " : "", out);
        ug_render_value(n, out);
    }
}

/* After resume: the rollouts of done that a policy's paused: true still
 * holds (control cannot lift it), said in a note; silent if status fails. */
static void still_paused(const opts *o, const char *sock, const json_t *done)
{
    char why[64];
    opts quiet = *o;
    quiet.json = false, quiet.why_failed = why, quiet.why_cap = sizeof why;
    reply r;
    if (ask(&quiet, sock, json_pack("{s:s}", "cmd", "status"), NULL, NULL, NULL, &r) == 0) {
        size_t i, j;
        const json_t *ro, *d;
        json_array_foreach(json_object_get(r.members, "rollouts"), i, ro)
        {
            const char *by = json_string_value(json_object_get(ro, "paused_by"));
            json_array_foreach(done, j, d)
            {
                if (by && !strcmp(by, "policy") && json_equal(d, json_object_get(ro, "name"))) {
                    printf("note: rollout ");
                    ug_render_value(d, stdout);
                    printf(" stays paused: its policy says paused: true (edit the file, then reload)\n");
                }
            }
        }
    }
    reply_free(&r);
}

/* pause, resume, halt */
static int run_flag(const opts *o, const char *sock, const char *cmd)
{
    json_t *req = o->all ? json_pack("{s:s, s:b}", "cmd", cmd, "all", 1) : json_pack("{s:s, s:s}", "cmd", cmd,
                                                                                       "rollout", o->pos[1]);
    if (o->why)
        json_object_set_new(req, "why", json_string(o->why));
    reply r;
    int rc = ask(o, sock, req, NULL, NULL, NULL, &r);
    if (rc != 0 || o->json) {
        reply_free(&r);
        return finish(rc);
    }
    const json_t *list = json_object_get(r.members, "rollouts");
    size_t n = json_array_size(list);
    const char *did = !strcmp(cmd, "pause") ? "paused" : !strcmp(cmd, "halt") ? "halted" : "resumed";
    if (!n) {
        printf("no rollouts to %s\n", cmd);
    } else {
        printf("%s rollout%s ", did, n == 1 ? "" : "s");
        names(list, stdout);
        if (o->why) {
            fputs(": ", stdout);
            ug_render_text(o->why, strlen(o->why), stdout);
        }
        if (strcmp(cmd, "resume") != 0)
            printf(" (WAIT %s for %s peers from now)\n", ug_why_name(UG_WHY_PAUSED), n == 1 ? "its" : "their");
        else
            printf(" (%s peers get the policy's answers from now)\n", n == 1 ? "its" : "their");
    }
    const char *name;
    json_t *c;
    json_object_foreach(json_object_get(r.members, "halt_when_counts_from"), name, c) {
        fputs("rollout ", stdout);
        ug_render_text(name, strlen(name), stdout);
        printf(" halted itself: halt_when now judges only outcomes recorded from now on, once there are "
               "%" JSON_INTEGER_FORMAT " of them\n", json_integer_value(json_object_get(c, "min_outcomes")));
    }
    json_t *done = json_incref((json_t *)list);
    reply_free(&r);
    if (!strcmp(cmd, "resume") && n)
        still_paused(o, sock, done);
    json_decref(done);
    return finish(rc);
}

static int run_pause(const opts *o, const char *sock) { return run_flag(o, sock, "pause"); }
static int run_resume(const opts *o, const char *sock) { return run_flag(o, sock, "resume"); }
static int run_halt(const opts *o, const char *sock) { return run_flag(o, sock, "halt"); }

static int run_promote(const opts *o, const char *sock)
{
    reply r;
    int rc = ask(o, sock, json_pack("{s:s, s:s}", "cmd", "promote", "rollout", o->pos[1]), NULL, NULL, NULL, &r);
    if (rc == 0 && !o->json) {
        size_t i;
        json_t *st;
        json_array_foreach(json_object_get(r.members, "stages"), i, st) {
            json_t *g = json_object_get(st, "gate");
            fputs("stage ", stdout);
            member(st, "stage", "?");
            printf(": step %" JSON_INTEGER_FORMAT " in force", json_integer_value(json_object_get(g, "step")));
            if (json_is_string(json_object_get(g, "waits_for"))) {
                fputs("; the next gate waits for ", stdout);
                member(g, "waits_for", "?");
            }
            fputc('\n', stdout);
        }
        if (json_is_string(json_object_get(r.members, "fleet"))) { /* fleet mode: the others release it too */
            fputs("fleet: ", stdout);
            member(r.members, "fleet", "?");
            fputs(" (every tracker of the fleet releases the same gate once it is due there)\n", stdout);
        }
    }
    reply_free(&r);
    return finish(rc);
}

static int run_reload(const opts *o, const char *sock)
{
    reply r;
    int rc = ask(o, sock, json_pack("{s:s}", "cmd", "reload"), NULL, NULL, NULL, &r);
    if (rc == 0 && !o->json) {
        fputs("reloaded ", stdout);
        member(r.members, "policy", "the policy");
        fputs(": generation ", stdout);
        member(r.members, "generation", "?");
        fputc('\n', stdout);
    }
    reply_free(&r);
    return finish(rc);
}

static int run_explain(const opts *o, const char *sock)
{
    json_t *req = NULL;
    char err[300];
    if (ug_explain_arg(o->pos[1], &req, err, sizeof err) != 0)
        ug_usage_error("explain: %s", err);
    json_object_set_new(req, "cmd", json_string("explain"));
    reply r;
    int rc = ask(o, sock, req, NULL, NULL, NULL, &r);
    if (rc == 0 && !o->json)
        ug_render_explain(r.members, stdout, 0);
    reply_free(&r);
    return finish(rc);
}

typedef struct {
    size_t n;
    json_t *per_stage; /* stage name: count */
} grant_tally;

static int grant_row(void *ctx, size_t i, const json_t *row)
{
    grant_tally *t = ctx;
    (void)i;
    if (t->n == 0)
        printf("%-10s  %-16s  %s\n", "UID", "STAGE", "GRANTED");
    ug_render_grant(row, stdout);
    t->n++;
    const char *stage = json_string_value(json_object_get(row, "stage"));
    if (stage) {
        json_t *c = json_object_get(t->per_stage, stage);
        json_object_set_new(t->per_stage, stage, json_integer(json_integer_value(c) + 1));
    }
    return ferror(stdout) ? -1 : 0;
}

static int run_grants(const opts *o, const char *sock)
{
    json_t *req = json_pack("{s:s, s:s}", "cmd", "grants", "rollout", o->pos[1]);
    if (o->npos > 2)
        json_object_set_new(req, "stage", json_string(o->pos[2]));
    if (o->release)
        json_object_set_new(req, "release", json_string(o->release));
    grant_tally t = {.per_stage = json_object()};
    reply r;
    int rc = ask(o, sock, req, "grants", grant_row, &t, &r);
    if (rc == 0 && !o->json) {
        printf("%zu uid%s granted release ", t.n, t.n == 1 ? "" : "s");
        member(r.members, "release", "?");
        fputs(" of rollout ", stdout);
        member(r.members, "rollout", "?");
        const char *k;
        json_t *v;
        bool first = true;
        json_object_foreach(t.per_stage, k, v)
        {
            printf("%s", first ? ": " : ", ");
            ug_render_text(k, strlen(k), stdout);
            printf(" %" JSON_INTEGER_FORMAT, json_integer_value(v));
            first = false;
        }
        fputc('\n', stdout);
    }
    json_decref(t.per_stage);
    reply_free(&r);
    return finish(rc);
}

static int run_history(const opts *o, const char *sock)
{
    reply r;
    int rc = ask(o, sock, json_pack("{s:s}", "cmd", "history"), NULL, NULL, NULL, &r);
    if (rc == 0 && !o->json)
        ug_render_history(r.members, stdout);
    reply_free(&r);
    return finish(rc);
}

static int run_census(const opts *o, const char *sock)
{
    reply r;
    int rc = ask(o, sock, json_pack("{s:s}", "cmd", "census"), NULL, NULL, NULL, &r);
    if (rc == 0 && !o->json)
        ug_render_census(r.members, stdout);
    reply_free(&r);
    return finish(rc);
}

static int run_fleet(const opts *o, const char *sock)
{
    json_t *req = json_pack("{s:s, s:s}", "cmd", "fleet", "sub", o->pos[1]);
    if (o->npos > 2)
        json_object_set_new(req, "tracker", json_string(o->pos[2]));
    if (o->force)
        json_object_set_new(req, "force", json_true());
    reply r;
    int rc = ask(o, sock, req, NULL, NULL, NULL, &r);
    if (rc == 0 && !o->json)
        ug_render_members(r.members, stdout, 0);
    reply_free(&r);
    return finish(rc);
}

/* ---- watch ------------------------------------------------------------------ */

/* A signal ends watch: at once while nothing is half written (restoring
 * the cursor on a terminal), else once the frame is out. */
static volatile sig_atomic_t w_stop, w_writing, w_tty, w_code;

static void on_signal(int sig)
{
    (void)sig;
    w_stop = 1;
    if (w_writing)
        return;
    if (w_tty) {
        ssize_t k = write(STDOUT_FILENO, "\033[?25h\n", 7);
        (void)k;
    }
    _exit(w_code);
}

/* The frame on a terminal: from the top left, each line cut to the width
 * and cleared to its end, the rest of the screen cleared; lines past the
 * height are left out (said so on the last line). */
static void paint(const char *frame, size_t len)
{
    struct winsize ws = {0};
    size_t rows = 24, cols = 80;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col)
        rows = ws.ws_row, cols = ws.ws_col;
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += frame[i] == '\n';
    fputs("\033[H", stdout);
    char more[96];
    const char *p = frame, *end = frame + len;
    for (size_t row = 0; p < end && row + 1 < rows; row++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *stop = nl ? nl : end, *next = nl ? nl + 1 : end;
        if (row + 2 == rows && lines > rows - 1) { /* the last row says what is left out */
            int n = snprintf(more, sizeof more, "... %zu more lines (a taller terminal shows them)", lines - row);
            p = more, stop = more + (n > 0 ? (size_t)n : 0), next = end;
        }
        size_t w = 0;
        for (const char *c = p; c < stop; c++) { /* cut at the width: UTF-8 continuations take no column */
            if (((unsigned char)*c & 0xc0) != 0x80 && ++w > cols)
                break;
            fputc(*c, stdout);
        }
        fputs("\033[K\n", stdout);
        p = next;
    }
    fputs("\033[J", stdout);
}

static bool sleep_until_next(long ms)
{
    struct timespec left = {ms / 1000, (ms % 1000) * 1000000L};
    while (!w_stop && nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
    return !w_stop;
}

/* One look: a frame on stdout, or the reason it failed. */
static int watch_once(const opts *o, const char *sock, bool tty)
{
    char *frame = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&frame, &len);
    if (!f)
        return ug_complain(UG_EXIT_FAIL, "out of memory");
    reply r;
    opts q = *o;
    char why[ERROR_MAX + 1200] = "";
    q.json = false; /* printed below, between the signals' guards */
    if (tty) /* the reason goes into the frame: stderr would be painted over */
        q.why_failed = why, q.why_cap = sizeof why;
    int rc = ask(&q, sock, json_pack("{s:s}", "cmd", "status"), NULL, NULL, NULL, &r);
    char t[64];
    if (rc == 0 && o->json)
        fwrite(r.raw.data, 1, r.raw.len, f);
    else if (rc == 0)
        ug_render_watch(r.members, f, (int64_t)ug_now());
    else if (tty)
        fprintf(f, "%s  no status: %s\ntrying again every %ld s (Ctrl-C ends)\n",
                ug_render_time((int64_t)ug_now(), t, sizeof t), why, o->interval_ms / 1000);
    reply_free(&r);
    fclose(f);
    w_writing = 1;
    if (tty)
        paint(frame, len);
    else
        fwrite(frame, 1, len, stdout), fputs(o->json || rc ? "" : "\n", stdout);
    fflush(stdout);
    w_writing = 0;
    free(frame);
    return rc;
}

static int run_watch(const opts *o, const char *sock)
{
    bool tty = isatty(STDOUT_FILENO) && !o->json;
    w_tty = tty;
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: the sleep ends at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    if (tty)
        fputs("\033[?25l\033[2J", stdout); /* cursor hidden, screen cleared */
    int rc = 0;
    for (unsigned long n = 0; !w_stop && (!o->count || n < o->count); n++) {
        if (n && !sleep_until_next(o->interval_ms))
            break;
        rc = watch_once(o, sock, tty);
        w_code = rc;
    }
    if (tty)
        fputs("\033[?25h", stdout);
    return finish(rc);
}

/* ---- arguments ----------------------------------------------------------------- */

/* The flags a command takes besides the common ones (control.def's flags). */
enum {
    CTLF_ALL = 1,   /* a rollout or --all */
    CTLF_WHY = 2,   /* --why TEXT, required */
    CTLF_WATCH = 4, /* --interval, --count */
    CTLF_FORCE = 8, /* --force */
    CTLF_WHYOPT = 16, /* --why TEXT, optional */
    CTLF_RELEASE = 32, /* --release VERSION */
};

typedef struct {
    const char *name;
    int min, max;   /* arguments after the command */
    unsigned flags; /* CTLF_* */
    const char *usage, *help;
    int (*run)(const opts *o, const char *sock); /* sends it, renders the reply */
} command;

/* upgate-ctl's commands (control.def): the core's, an add-on's, its own. */
#define ROW_CORE(name, min, max, flags, usage, help) {#name, min, max, flags, usage, help, run_##name},
#define ROW_ADDON(...) ROW_CORE(__VA_ARGS__)
#define ROW_CTL(...) ROW_CORE(__VA_ARGS__)
#define ROW_HOST(...)
static const command commands[] = {
#define UG_CONTROL(name, who, members, min, max, flags, usage, help) ROW_##who(name, min, max, flags, usage, help)
#include "control.def"
#undef UG_CONTROL
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void print_usage(void)
{
    fputs(usage_head, stdout);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strlen(commands[i].usage) <= 30)
            printf("  %-31s%s\n", commands[i].usage, commands[i].help);
        else
            printf("  %s\n%33s%s\n", commands[i].usage, "", commands[i].help);
    }
    fputs(usage_tail, stdout);
}

/* The commands taking any of flags (every one for ~0u): "a, b and c" (and_last), else "a, b, c". */
static const char *names_with(unsigned flags, bool and_last, char *buf, size_t cap)
{
    size_t at = 0, n = 0, total = 0;
    for (size_t i = 0; i < NCOMMANDS; i++)
        total += (commands[i].flags & flags) || flags == ~0u;
    buf[0] = 0;
    for (size_t i = 0; i < NCOMMANDS && at < cap; i++) {
        if (!(commands[i].flags & flags) && flags != ~0u)
            continue;
        const char *sep = !n ? "" : and_last && n + 1 == total ? " and " : ", ";
        at += (size_t)snprintf(buf + at, cap - at, "%s%s", sep, commands[i].name);
        n++;
    }
    return buf;
}

/* The value of flag at argv[*i] ("--flag VALUE" or "--flag=VALUE"); NULL when a is not that flag. */
static const char *value_of(int argc, char **argv, int *i, const char *flag)
{
    const char *a = argv[*i];
    size_t n = strlen(flag);
    if (strncmp(a, flag, n) != 0 || (a[n] != 0 && a[n] != '='))
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (*i + 1 >= argc)
        ug_usage_error("%s needs a value", flag);
    return argv[++*i];
}

static long seconds(const char *flag, const char *v, uint64_t max)
{
    uint64_t s;
    if (ug_parse_u64(v, 1, max, &s) != 0)
        ug_usage_error("%s %s: not a whole number of seconds 1..%llu", flag, v, (unsigned long long)max);
    return (long)s * 1000;
}

static void once(bool *seen, const char *flag)
{
    if (*seen)
        ug_usage_error("%s given twice", flag);
    *seen = true;
}

static void parse(int argc, char **argv, opts *o)
{
    bool ended = false, s_json = false, s_all = false, s_why = false, s_sock = false, s_pol = false, s_force = false,
         s_rel = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (ended || a[0] != '-' || !a[1]) {
            if (o->npos == (int)(sizeof o->pos / sizeof o->pos[0]))
                ug_usage_error("too many arguments: %s", a);
            o->pos[o->npos++] = a;
        } else if (!strcmp(a, "--")) {
            ended = true;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_usage();
            exit(finish(UG_EXIT_OK));
        } else if (!strcmp(a, "--version")) {
            exit(ug_print_version());
        } else if (!strcmp(a, "--json")) {
            once(&s_json, a), o->json = true;
        } else if (!strcmp(a, "--all")) {
            once(&s_all, a), o->all = true;
        } else if (!strcmp(a, "--force")) {
            once(&s_force, a), o->force = true;
        } else if ((v = value_of(argc, argv, &i, "--socket"))) {
            once(&s_sock, "--socket"), o->socket = v;
        } else if ((v = value_of(argc, argv, &i, "--policy"))) {
            once(&s_pol, "--policy"), o->policy = v;
        } else if ((v = value_of(argc, argv, &i, "--release"))) {
            once(&s_rel, "--release"), o->release = v;
        } else if ((v = value_of(argc, argv, &i, "--why"))) {
            once(&s_why, "--why"), o->why = v;
        } else if ((v = value_of(argc, argv, &i, "--timeout"))) {
            once(&o->has_timeout, "--timeout"), o->timeout_ms = seconds("--timeout", v, 86400);
        } else if ((v = value_of(argc, argv, &i, "--interval"))) {
            once(&o->has_interval, "--interval"), o->interval_ms = seconds("--interval", v, 3600);
        } else if ((v = value_of(argc, argv, &i, "--count"))) {
            uint64_t n;
            once(&o->has_count, "--count");
            if (ug_parse_u64(v, 1, 1000000000, &n) != 0)
                ug_usage_error("--count %s: not a number 1..1000000000", v);
            o->count = (unsigned long)n;
        } else {
            ug_usage_error("unknown flag %s", a);
        }
    }
}

static bool tracker_name(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 64 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* Each command's own rules, so that bad usage is found before the socket. */
static const command *check_usage(const opts *o)
{
    char names[256];
    if (!o->npos)
        ug_usage_error("no command (%s)", names_with(~0u, false, names, sizeof names));
    const command *c = NULL;
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(o->pos[0], commands[i].name))
            c = &commands[i];
    if (!c)
        ug_usage_error("unknown command %s (%s)", o->pos[0], names_with(~0u, false, names, sizeof names));
    int args = o->npos - 1;
    if (args < c->min || args > c->max)
        ug_usage_error("%s: %s arguments; usage: upgate-ctl %s", c->name, args < c->min ? "too few" : "too many",
                       c->usage);
    bool flag = c->flags & CTLF_ALL;
    if (o->all && !flag)
        ug_usage_error("--all: only for %s", names_with(CTLF_ALL, true, names, sizeof names));
    if (flag && o->all == (args == 1))
        ug_usage_error("%s: give a rollout or --all%s", c->name, o->all ? ", not both" : "");
    if (o->why && !(c->flags & (CTLF_WHY | CTLF_WHYOPT)))
        ug_usage_error("--why: only for %s", names_with(CTLF_WHY | CTLF_WHYOPT, true, names, sizeof names));
    if ((c->flags & CTLF_WHY) && !o->why)
        ug_usage_error("%s: --why TEXT is required (the reason, kept in the history)", c->name);
    if (o->why && (!o->why[0] || strlen(o->why) > 200 || strpbrk(o->why, "\n\r")))
        ug_usage_error("--why: one line of 1..200 bytes");
    if ((o->has_interval || o->has_count) && !(c->flags & CTLF_WATCH))
        ug_usage_error("%s: only for %s", o->has_interval ? "--interval" : "--count",
                       names_with(CTLF_WATCH, true, names, sizeof names));
    if (o->release && !(c->flags & CTLF_RELEASE))
        ug_usage_error("--release: only for %s", names_with(CTLF_RELEASE, true, names, sizeof names));
    ug_version rv;
    if (o->release && ug_version_parse(&rv, o->release, strlen(o->release)) != 0)
        ug_usage_error("--release %s: not a version like 2.0.0", o->release);
    if (o->force && !(c->flags & CTLF_FORCE))
        ug_usage_error("--force: only for %s", names_with(CTLF_FORCE, true, names, sizeof names));
    if (!strcmp(c->name, "fleet")) { /* its first argument is a sub-command */
        bool st = !strcmp(o->pos[1], "status"), fo = !strcmp(o->pos[1], "forget");
        if (o->force && !fo)
            ug_usage_error("--force: only for fleet forget");
        if ((!st && !fo) || (st && args != 1) || (fo && args != 2))
            ug_usage_error("fleet: %s; usage: upgate-ctl %s", st || fo ? "wrong arguments" : o->pos[1], c->usage);
        if (fo && !tracker_name(o->pos[2]))
            ug_usage_error("fleet forget %s: not a tracker name ([A-Za-z0-9._-], 1..64)", o->pos[2]);
    }
    for (int i = 1; i <= o->npos; i++) { /* the request is JSON: what goes in must be text */
        const char *s = i < o->npos ? o->pos[i] : o->why;
        json_t *j = s ? json_string(s) : NULL;
        if (s && !j)
            ug_usage_error("%s: %s is not UTF-8 text", c->name, i < o->npos ? "an argument" : "--why");
        json_decref(j);
    }
    return c;
}

/* --socket, else --policy's default socket, else the default policy's. */
static const char *socket_path(const opts *o, char *buf, size_t cap)
{
    if (o->socket)
        return o->socket;
    const char *policy = o->policy;
    if (!policy) {
        if (access(UG_CTL_DEFAULT_POLICY, F_OK) != 0)
            ug_usage_error("no --socket or --policy given, and %s does not exist: give one", UG_CTL_DEFAULT_POLICY);
        policy = UG_CTL_DEFAULT_POLICY;
    }
    char err[4 * PATH_MAX + 512];
    if (ug_ctlf_socket(policy, buf, cap, err, sizeof err) != 0)
        ug_die(UG_EXIT_FAIL, "%s", err);
    return buf;
}

int main(int argc, char **argv)
{
    ug_prog = "upgate-ctl";
    signal(SIGPIPE, SIG_DFL);
    opts o = {.timeout_ms = 10000, .interval_ms = 1000};
    parse(argc, argv, &o);
    if (o.socket && o.policy)
        ug_usage_error("--socket and --policy: give one");
    const command *c = check_usage(&o);
    char path[PATH_MAX];
    return c->run(&o, socket_path(&o, path, sizeof path));
}
