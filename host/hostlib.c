/* libupgate-host's life cycle: open (load, create, admin threads), reload, control, close at exit or on demand. */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#ifndef UG_HOST_DEFAULT_PLUGIN
#define UG_HOST_DEFAULT_PLUGIN "/usr/local/lib/upgate/upgate.so"
#endif
#define LINE_MAX_ 1024 /* bytes of one log line */

static _Atomic uint64_t next_id = 1;
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static ug_host_adapter *open_list; /* what exit() closes */
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

int64_t ug_host_mono_ms_(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- log ------------------------------------------------------------- */

static void stderr_log(void *ctx, ug_log_level level, const char *line)
{
    (void)ctx;
    static const char *const names[] = {"error", "warning", "info", "debug"};
    char out[LINE_MAX_ + 64];
    int n = snprintf(out, sizeof out, "upgate: %s: %s\n", names[level <= UG_LOG_DEBUG ? level : UG_LOG_DEBUG], line);
    if (n > (int)sizeof out - 1)
        n = (int)sizeof out - 1, out[n - 1] = '\n';
    ssize_t k = write(2, out, (size_t)n); /* one write: lines of threads never interleave */
    (void)k;
}

/* One line to the host's log: control characters (a newline inside a
 * plugin's message) become spaces. */
static void log_line(ug_host_adapter *a, ug_log_level level, const char *msg)
{
    char line[LINE_MAX_];
    size_t n = 0;
    for (; msg[n] && n < sizeof line - 1; n++)
        line[n] = (unsigned char)msg[n] < 0x20 ? ' ' : msg[n];
    line[n] = 0;
    pthread_mutex_lock(&a->log_mu);
    a->log(a->log_ctx, level, line);
    pthread_mutex_unlock(&a->log_mu);
}

void ug_host_logf_(ug_host_adapter *a, ug_log_level level, const char *fmt, ...)
{
    char line[LINE_MAX_];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_line(a, level, line);
}

void ug_host_plugin_log_(void *ctx, ug_log_level level, const char *msg)
{
    log_line(ctx, level, msg);
}

static uint64_t host_now(void *ctx)
{
    (void)ctx;
    return (uint64_t)time(NULL);
}

/* ---- open -------------------------------------------------------------- */

/* c, as far as its size says, over a zeroed config; the paths made absolute
 * (the host may chdir or chroot later). */
static int take_config(ug_host_adapter *a, const ug_host_config *in, ug_host_config *c, char *err, size_t errcap)
{
    memset(c, 0, sizeof *c);
    snprintf(a->setting, sizeof a->setting, "upgate.");
    if (!in || in->size < offsetof(ug_host_config, workers)) {
        snprintf(err, errcap, "upgate: the host passed no configuration (or one of %u bytes)", in ? in->size : 0);
        return -1;
    }
    memcpy(c, in, in->size < sizeof *c ? in->size : sizeof *c);
    a->log = c->log ? c->log : stderr_log;
    a->log_ctx = c->log_ctx;
    a->flags = c->flags;
    sigfillset(&a->deferred); /* every signal but those a fault raises, for the thread at fault */
    static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        sigdelset(&a->deferred, faults[i]);
    snprintf(a->name, sizeof a->name, "%s", c->name ? c->name : "host");
    snprintf(a->setting, sizeof a->setting, "%s", c->setting_prefix ? c->setting_prefix : "upgate.");
    a->every = c->flags & UG_HOST_EVERY_DATAGRAM;
    a->answered = c->answered;
    a->answered_ctx = c->answered_ctx;
    a->model = c->model ? c->model : UG_HOST_ONE_AT_A_TIME;
    a->nworkers = c->workers && !(c->flags & UG_HOST_OFFLOAD) ? c->workers : 1; /* offload: its worker alone */
    a->hold_ms = c->hold_ms ? c->hold_ms : UG_HOST_HOLD_MS;
    if (a->model > UG_HOST_BATCH || a->nworkers > UG_HOST_WORKERS_MAX) {
        snprintf(err, errcap, "upgate: model %d or %u workers: not a read model, or over %u workers", (int)a->model,
                 a->nworkers, UG_HOST_WORKERS_MAX);
        return -1;
    }
    if (!c->policy || !c->policy[0]) {
        snprintf(err, errcap, "%spolicy: not set; it names the policy file", a->setting);
        return -1;
    }
    if (!realpath(c->policy, a->policy)) {
        snprintf(err, errcap, "%spolicy %s: %s", a->setting, c->policy, strerror(errno));
        return -1;
    }
    return 0;
}

/* dlopen, the ABI check, create() with every signal blocked (a fleet
 * thread it starts inherits that). */
static int start_plugin(ug_host_adapter *a, const ug_host_config *c, char *err, size_t errcap)
{
    char why[1024];
    a->api = ug_host_load(c->plugin ? c->plugin : UG_HOST_DEFAULT_PLUGIN, why, sizeof why);
    if (!a->api) {
        snprintf(err, errcap, "%splugin %s", a->setting, why);
        return -1;
    }
    a->handle2 = UH_ENTRY(a->api, handle2);
    /* threads sharing a socket: a peer's retransmit may reach any of them;
     * a host started as root drops privileges after this (or says it does
     * not with user "") */
    bool drops = c->user ? c->user[0] != 0 : geteuid() == 0;
    snprintf(a->user, sizeof a->user, "%s", c->user ? c->user : "");
    a->host = (ug_host){.size = sizeof a->host, .ctx = a, .log = ug_host_plugin_log_, .now = host_now,
                        .nworkers = a->nworkers,
                        .flags = (a->model == UG_HOST_SHARED_SOCKET && a->nworkers > 1 ? UG_HF_ROAMING_PEERS : 0) |
                                 (drops ? UG_HF_DROPS_PRIVILEGES : 0),
                        .run_as = a->user[0] ? a->user : NULL};
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    a->inst = a->api->create(&a->host, a->policy, err, errcap);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return a->inst ? 0 : -1;
}

/* The control socket (c->control, else the state folder's upgate.ctl;
 * "off": none) and the admin thread. */
static int start_services(ug_host_adapter *a, const ug_host_config *c, char *err, size_t errcap)
{
    char path[PATH_MAX], cwd[PATH_MAX];
    const char *want = c->control;
    if (want && !strcmp(want, "off")) {
        want = NULL;
    } else if (want && want[0] != '/') { /* absolute: the host may chdir later */
        if (!getcwd(cwd, sizeof cwd) || (size_t)snprintf(path, sizeof path, "%s/%s", cwd, want) >= sizeof path) {
            snprintf(err, errcap, "%scontrol %s: cannot make it an absolute path", a->setting, want);
            return -1;
        }
        want = path;
    } else if (!want && UH_ENTRY(a->api, control)) {
        if (ug_host_ctl_default_(a, path, sizeof path))
            want = path;
        else
            ug_host_logf_(a, UG_LOG_WARN, "no control socket: the plugin did not name its state folder in reply "
                                          "to {\"cmd\":\"info\"}; set %scontrol", a->setting);
    }
    if (want && ug_host_ctl_start_(a, want, err, errcap) != 0)
        return -1;
    if ((a->flags & UG_HOST_OFFLOAD) && a->model != UG_HOST_BATCH && ug_host_offload_start_(a, err, errcap) != 0)
        return -1;
    return ug_host_admin_start_(a, err, errcap);
}

static void at_exit(void)
{
    for (;;) { /* close() may log, and the host's log must not run under open_mu */
        pthread_mutex_lock(&open_mu);
        ug_host_adapter *a = open_list;
        while (a && (atomic_load(&a->state) != 0 || (a->flags & UG_HOST_NO_ATEXIT) || a->pid != getpid()))
            a = a->next;
        pthread_mutex_unlock(&open_mu);
        if (!a)
            return;
        ug_host_close(a);
    }
}

static void register_exit(void)
{
    atexit(at_exit);
}

static void teardown(ug_host_adapter *a)
{
    ug_host_ctl_stop_(a);
    ug_host_offload_stop_(a);
    ug_host_offload_free_(a);
    ug_host_admin_stop_(a);
    if (a->inst)
        a->api->destroy(a->inst);
    ug_host_slots_free_(a);
    pthread_mutex_destroy(&a->plugin_mu);
    pthread_mutex_destroy(&a->log_mu);
    free(a);
}

static const char *model_name(const ug_host_adapter *a)
{
    if (a->off)
        return a->model == UG_HOST_SHARED_SOCKET ? "threads sharing one socket, handing over to the adapter's worker"
                                                 : "one datagram per wake-up, handed over to the adapter's worker";
    return a->model == UG_HOST_SHARED_SOCKET ? "threads sharing one socket"
           : a->model == UG_HOST_BATCH       ? "batches"
                                             : "one datagram per wake-up";
}

ug_host_adapter *ug_host_open(const ug_host_config *c, char *err, size_t errcap)
{
    char local[1024];
    if (!err || !errcap)
        err = local, errcap = sizeof local;
    err[0] = 0;
    ug_host_adapter *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errcap, "upgate: out of memory");
        return NULL;
    }
    a->id = atomic_fetch_add(&next_id, 1);
    a->pid = getpid();
    a->wake = a->ctl.fd = a->ctl.stop[0] = a->ctl.stop[1] = -1;
    a->log = stderr_log;
    pthread_mutex_init(&a->plugin_mu, NULL);
    pthread_mutex_init(&a->log_mu, NULL);
    ug_host_config cfg;
    if (take_config(a, c, &cfg, err, errcap) != 0 || ug_host_slots_init_(a, err, errcap) != 0 ||
        start_plugin(a, &cfg, err, errcap) != 0 || start_services(a, &cfg, err, errcap) != 0) {
        ug_host_logf_(a, UG_LOG_ERROR, "%s", err);
        teardown(a);
        return NULL;
    }
    pthread_mutex_lock(&open_mu);
    a->next = open_list;
    open_list = a;
    pthread_mutex_unlock(&open_mu);
    pthread_once(&exit_once, register_exit);
    /* A host that chroot()s after this: glibc loads libgcc_s.so.1 when a
     * thread is first cancelled or exits (opentracker cancels its threads
     * at shutdown), which fails inside an empty chroot and aborts the
     * process before the close. Loaded now, while the path is there. */
    if (a->host.flags & UG_HF_DROPS_PRIVILEGES)
        (void)dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_NODELETE);
    ug_host_logf_(a, UG_LOG_INFO, "plugin %s %s (ABI %u.%u) serving in %s: policy %s, %u worker%s (%s), control %s",
                  a->api->name, a->api->version, a->api->abi_major, a->api->abi_minor, a->name, a->policy,
                  a->nworkers, a->nworkers == 1 ? "" : "s", model_name(a), a->ctl.on ? a->ctl.path : "off");
    return a;
}

/* ---- from any thread -------------------------------------------------- */

int ug_host_reload_by(ug_host_adapter *a, const ug_caller *by, char *err, size_t errcap)
{
    if (!a || atomic_load(&a->state) != 0) {
        snprintf(err, errcap, "upgate is not running");
        return -1;
    }
    int (*reload_by)(void *, const ug_caller *, const char *, char *, size_t) = UH_ENTRY(a->api, reload_by);
    pthread_mutex_lock(&a->plugin_mu);
    int rc = reload_by ? reload_by(a->inst, by, NULL, err, errcap) : a->api->reload(a->inst, NULL, err, errcap);
    pthread_mutex_unlock(&a->plugin_mu);
    return rc; /* a reload that worked, the plugin logs itself, once (ABI) */
}

int ug_host_reload(ug_host_adapter *a, char *err, size_t errcap)
{
    return ug_host_reload_by(a, NULL, err, errcap);
}

int ug_host_control_by(ug_host_adapter *a, const ug_caller *by, const char *req, size_t len, ug_emit emit,
                       void *ctx)
{
    int (*control)(void *, const char *, size_t, ug_emit, void *) = a ? UH_ENTRY(a->api, control) : NULL;
    int (*control_by)(void *, const ug_caller *, const char *, size_t, ug_emit, void *) =
        a ? UH_ENTRY(a->api, control_by) : NULL;
    if (!control || atomic_load(&a->state) == 2)
        return -2;
    pthread_mutex_lock(&a->plugin_mu);
    int rc = control_by ? control_by(a->inst, by, req, len, emit, ctx) : control(a->inst, req, len, emit, ctx);
    pthread_mutex_unlock(&a->plugin_mu);
    return rc;
}

int ug_host_control(ug_host_adapter *a, const char *req, size_t len, ug_emit emit, void *ctx)
{
    return ug_host_control_by(a, NULL, req, len, emit, ctx);
}

size_t ug_host_stats(ug_host_adapter *a, ug_stat *out, size_t cap)
{
    if (!a || atomic_load(&a->state) == 2)
        return 0;
    pthread_mutex_lock(&a->plugin_mu);
    size_t n = a->api->stats(a->inst, out, cap);
    pthread_mutex_unlock(&a->plugin_mu);
    return n;
}

const ug_plugin *ug_host_plugin(const ug_host_adapter *a)
{
    return a ? a->api : NULL;
}

const char *ug_host_control_path(const ug_host_adapter *a)
{
    return a && a->ctl.on ? a->ctl.path : NULL;
}

/* ---- close ------------------------------------------------------------ */

static void log_summary(ug_host_adapter *a, int rc, bool inside)
{
    ug_host_counters k;
    ug_host_counters_get(a, &k, sizeof k);
    ug_host_logf_(a, rc == 0 ? UG_LOG_INFO : UG_LOG_ERROR,
                  "closed: %llu upgate datagrams, %llu foreign, %llu replies at once, %llu held, %llu sent after "
                  "%llu commits (%llu by the admin thread), %llu held back, %llu send errors; %s",
                  (unsigned long long)k.upgate, (unsigned long long)k.foreign, (unsigned long long)k.sent_now,
                  (unsigned long long)k.held, (unsigned long long)k.sent_held, (unsigned long long)k.commits,
                  (unsigned long long)k.idle_commits, (unsigned long long)k.held_back,
                  (unsigned long long)k.send_errors,
                  inside ? "closed from inside a datagram call (a signal handler's exit()?): that worker's queued "
                           "grants stay uncommitted, and no reply that waits for them was sent"
                  : rc == 0 ? "every grant is on disk"
                            : "not every grant is on disk; no reply that promised one was sent");
}

int ug_host_close(ug_host_adapter *a)
{
    if (!a || a->pid != getpid()) /* a forked child leaves its parent's plugin alone */
        return 0;
    int expect = 0;
    if (!atomic_compare_exchange_strong(&a->state, &expect, 1))
        return a->close_rc;
    ug_host_ctl_stop_(a);
    ug_host_offload_stop_(a); /* its worker answers what the ring holds first */
    ug_host_admin_stop_(a);
    bool inside = ug_host_slots_close_(a); /* no worker is in the plugin after this */
    int rc = inside ? -1 : 0;
    if (!inside) {
        int (*finish)(void *, char *, size_t) = UH_ENTRY(a->api, finish);
        rc = finish ? finish(a->inst, a->close_err, sizeof a->close_err) : 0;
        if (rc != 0)
            ug_host_logf_(a, UG_LOG_ERROR, "finish: %s", a->close_err[0] ? a->close_err : "failed");
        a->api->destroy(a->inst); /* commits every pending grant */
        a->inst = NULL;
    }
    log_summary(a, rc, inside);
    a->close_rc = rc;
    atomic_store(&a->state, 2);
    return rc;
}

const char *ug_host_close_error(const ug_host_adapter *a)
{
    return a && atomic_load(&a->state) == 2 ? a->close_err : "";
}

void ug_host_free(ug_host_adapter *a)
{
    if (!a)
        return;
    ug_host_close(a);
    pthread_mutex_lock(&open_mu);
    for (ug_host_adapter **p = &open_list; *p; p = &(*p)->next)
        if (*p == a) {
            *p = a->next;
            break;
        }
    pthread_mutex_unlock(&open_mu);
    ug_host_offload_free_(a);
    ug_host_slots_free_(a);
    pthread_mutex_destroy(&a->plugin_mu);
    pthread_mutex_destroy(&a->log_mu);
    free(a);
}
