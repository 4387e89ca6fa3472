/* upgate-node: the reference tracker host; loads upgate.so and serves UDP (or checks a policy). */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <jansson.h>

#include "capwrite.h"
#include "check.h"
#include "common.h"
#include "ctlrec.h"
#include "log.h"
#include "metrics.h"
#include "node.h"
#include "notify.h"
#include "serve.h"

#define LISTEN_MAX 16

static const char usage[] =
    "usage: upgate-node --listen HOST:PORT [--listen ...] [--plugin PATH/upgate.so] --policy FILE\n"
    "                   [--workers N] [--stats SECONDS] [--control PATH] [--metrics HOST:PORT]\n"
    "                   [--capture FILE [--capture-max BYTES]] [--user NAME]\n"
    "       upgate-node --check --policy FILE [--plugin PATH] [--explain uid=N,ver=V,src=ADDR[,plat=P][,chan=C]]\n"
    "                   [--json] [--user NAME]\n"
    "       upgate-node --version\n"
    "\n"
    "Serves upgate HELLOs over UDP on every --listen address (IPv4 or IPv6, port 0 picks one),\n"
    "with N worker threads (default: one per core), each with its own SO_REUSEPORT socket.\n"
    "SIGHUP reloads the policy, SIGUSR1 prints counters, SIGTERM/SIGINT stop cleanly.\n"
    "\n"
    "  --plugin PATH          the plugin (default: upgate.so beside it, else in PLUGINDIR)\n"
    "  --stats SECONDS        print the counters on stdout this often\n"
    "  --control PATH         the control socket for upgate-ctl (Unix stream, mode 0600; default:\n"
    "                         upgate.ctl in the policy's state folder, when the plugin has control)\n"
    "  --metrics HOST:PORT    serve Prometheus text at GET /metrics (port 0 picks one)\n"
    "  --capture FILE         append a record per targeted HELLO (time, uid, version, source,\n"
    "                         platform, channel; nothing secret) for upgate-sim --replay\n"
    "  --capture-max BYTES    rotate FILE to FILE.1 at this size (default 64 MiB)\n"
    "  --user NAME            started as root: become NAME once the plugin is loaded and the sockets\n"
    "                         are bound (reloads still read the policy's files); with --check: say\n"
    "                         which file a reload as NAME could not read (exit 1 if any)\n"
    "  --check                validate the policy and print its summary; serve nothing (exit 0 valid,\n"
    "                         1 invalid); --explain adds the decision for one peer, --json prints JSON\n"
    "\n"
    "Log lines go to stderr with an RFC 3339 UTC time and a level, or a <N> syslog prefix when\n"
    "JOURNAL_STREAM is set; with NOTIFY_SOCKET it tells systemd READY, RELOADING and STOPPING.\n";

typedef struct {
    const char *listen[LISTEN_MAX], *plugin, *policy, *control, *metrics, *capture, *explain, *user;
    unsigned nlisten;
    uint64_t workers, stats_every, capture_max;
    bool check, json;
} args;

static void parse_args(int argc, char **argv, args *a)
{
    enum { O_LISTEN = 1, O_PLUGIN, O_POLICY, O_WORKERS, O_STATS, O_HELP, O_VERSION, O_CONTROL, O_METRICS,
           O_CAPTURE, O_CAPTURE_MAX, O_CHECK, O_EXPLAIN, O_JSON, O_USER };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, O_LISTEN},   {"plugin", required_argument, NULL, O_PLUGIN},
        {"policy", required_argument, NULL, O_POLICY},   {"workers", required_argument, NULL, O_WORKERS},
        {"stats", required_argument, NULL, O_STATS},     {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION},       {"control", required_argument, NULL, O_CONTROL},
        {"metrics", required_argument, NULL, O_METRICS}, {"capture", required_argument, NULL, O_CAPTURE},
        {"capture-max", required_argument, NULL, O_CAPTURE_MAX}, {"check", no_argument, NULL, O_CHECK},
        {"explain", required_argument, NULL, O_EXPLAIN}, {"json", no_argument, NULL, O_JSON},
        {"user", required_argument, NULL, O_USER},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN:
            if (a->nlisten == LISTEN_MAX)
                ug_die(UG_EXIT_USAGE, "at most %d --listen", LISTEN_MAX);
            a->listen[a->nlisten++] = optarg;
            break;
        case O_PLUGIN: a->plugin = optarg; break;
        case O_POLICY: a->policy = optarg; break;
        case O_CONTROL: a->control = optarg; break;
        case O_METRICS: a->metrics = optarg; break;
        case O_CAPTURE: a->capture = optarg; break;
        case O_EXPLAIN: a->explain = optarg; break;
        case O_CHECK: a->check = true; break;
        case O_JSON: a->json = true; break;
        case O_USER: a->user = optarg; break;
        case O_WORKERS:
            if (ug_parse_u64(optarg, 1, 256, &a->workers) != 0)
                ug_die(UG_EXIT_USAGE, "--workers: not a number from 1 to 256: %s", optarg);
            break;
        case O_STATS:
            if (ug_parse_u64(optarg, 1, 86400, &a->stats_every) != 0)
                ug_die(UG_EXIT_USAGE, "--stats: not a number of seconds: %s", optarg);
            break;
        case O_CAPTURE_MAX:
            if (ug_parse_u64(optarg, UG_CAPTURE_MAX_MIN, UINT64_C(1) << 50, &a->capture_max) != 0)
                ug_die(UG_EXIT_USAGE, "--capture-max: not a number of bytes from %llu: %s",
                       (unsigned long long)UG_CAPTURE_MAX_MIN, optarg);
            break;
        case O_HELP: fputs(usage, stdout); exit(UG_EXIT_OK);
        case O_VERSION: exit(ug_print_version());
        default: ug_die(UG_EXIT_USAGE, "unexpected or incomplete option %s (see --help)", argv[optind - 1]);
        }
    }
    if (optind != argc)
        ug_die(UG_EXIT_USAGE, "unexpected argument %s (see --help)", argv[optind]);
    if ((a->explain || a->json) && !a->check)
        ug_die(UG_EXIT_USAGE, "--explain and --json go with --check (see --help)");
    if (a->capture_max && !a->capture)
        ug_die(UG_EXIT_USAGE, "--capture-max goes with --capture (see --help)");
    if (a->check) {
        if (!a->policy)
            ug_die(UG_EXIT_USAGE, "--check needs --policy (see --help)");
        if (a->explain)
            ug_check_explain_syntax(a->explain);
    } else if (!a->nlisten || !a->policy) {
        ug_die(UG_EXIT_USAGE, "--listen and --policy are required (see --help)");
    }
}

static unsigned nworkers;

static void print_stats(void)
{
    char line[4096];
    size_t used = (size_t)snprintf(line, sizeof line, "stats:");
    ug_stat st[128];
    size_t n = ug_host_stats(ug_node_adapter, st, 128);
    for (size_t i = 0; i < n && i < 128; i++)
        if (st[i].value && used < sizeof line)
            used += (size_t)snprintf(line + used, sizeof line - used, " %s=%llu", st[i].name,
                                     (unsigned long long)st[i].value);
    for (unsigned c = 0; c < NC_COUNT; c++) {
        uint64_t v = ug_node_counter_sum(c);
        if (v && used < sizeof line)
            used += (size_t)snprintf(line + used, sizeof line - used, " %s=%llu", ug_node_counters[c].stat,
                                     (unsigned long long)v);
    }
    printf("%s\n", line);
    fflush(stdout);
}

static unsigned long long monotonic_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u;
}

static void reload(void)
{
    char err[1024];
    ug_notify("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the policy", monotonic_usec());
    ug_caller by = {.size = sizeof by, .kind = UG_CALLER_SIGNAL};
    int rc = ug_host_reload_by(ug_node_adapter, &by, err, sizeof err);
    if (rc != 0) /* a reload that worked, the plugin logs itself, once (ABI) */
        ug_log(UG_LOG_ERROR, "SIGHUP: reload refused, the running policy stays: %s", err);
    ug_notify("READY=1\nSTATUS=%s", rc == 0 ? "serving; policy reloaded" : "serving; reload refused");
}

static void on_signal(struct ev_loop *loop, ev_signal *s, int revents)
{
    (void)revents;
    if (s->signum == SIGHUP)
        reload();
    else if (s->signum == SIGUSR1)
        print_stats();
    else
        ev_break(loop, EVBREAK_ALL);
}

static void on_stats_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)t, (void)revents;
    print_stats();
}

/* The state folder the plugin names in its reply to {"cmd":"info"}, into
 * out ("" when it does not say); false when the plugin has no control. */
static bool plugin_state(char *out, size_t cap)
{
    static const char req[] = "{\"cmd\":\"info\"}";
    ug_buf b = {.max = 1u << 20};
    out[0] = 0;
    int rc = ug_node_control(req, sizeof req - 1, ug_buf_emit, &b);
    if (rc == -2)
        return false;
    json_t *j = rc == 0 && ug_buf_finish(&b) == 0 ? json_loadb(b.data, b.len, 0, NULL) : NULL;
    const char *state = json_string_value(json_object_get(j, "state"));
    if (state && state[0] == '/' && (size_t)snprintf(out, cap, "%s", state) >= cap)
        out[0] = 0;
    json_decref(j);
    ug_buf_free(&b);
    return true;
}

/* Everything else that must be up before the ready line: metrics,
 * capture; appends what it started (and the adapter's control socket) to
 * the ready line. Then the record of the control socket (ctlrec.c), once
 * nothing can stop the start. */
static void start_services(const args *a, char *ready, size_t cap, size_t *used)
{
    char err[1024], state[4096];
    (void)plugin_state(state, sizeof state);
    const char *ctl = ug_host_control_path(ug_node_adapter);
    if (ctl)
        *used += (size_t)snprintf(ready + *used, cap - *used, ", control %s", ctl);
    if (a->metrics) {
        struct sockaddr_storage ss;
        socklen_t sl;
        char shown[128];
        if (ug_parse_hostport(a->metrics, &ss, &sl) != 0)
            ug_die(UG_EXIT_USAGE, "--metrics: not HOST:PORT: %s", a->metrics);
        if (ug_metrics_start(&ss, sl, err, sizeof err) != 0)
            ug_die(UG_EXIT_FAIL, "%s", err);
        ug_format_addr((struct sockaddr *)&ss, shown, sizeof shown);
        *used += (size_t)snprintf(ready + *used, cap - *used, ", metrics on %s", shown);
    }
    if (a->capture)
        *used += (size_t)snprintf(ready + *used, cap - *used, ", capture %s", a->capture);
    if (ctl)
        ug_ctlrec_publish(a->policy, ctl, state[0] ? state : NULL);
}

/* Commits what is pending, finish() (when the plugin has it), destroy().
 * The exit code: 1 when finish said a promised grant is not on disk. */
static int shut_down(void)
{
    if (ug_host_close(ug_node_adapter) != 0) {
        const char *why = ug_host_close_error(ug_node_adapter);
        ug_log(UG_LOG_ERROR, "stopped, but not every grant is on disk: %s", why[0] ? why : "finish failed");
        return UG_EXIT_FAIL;
    }
    ug_log(UG_LOG_INFO, "stopped; every grant is on disk");
    return UG_EXIT_OK;
}

/* --user NAME: who to become, looked up before anything starts (so that a
 * typo stops the start at once); exits when NAME is unknown or this
 * process cannot switch users. */
static struct passwd *user_to_be(const char *name)
{
    static struct passwd pw;
    static char buf[4096];
    struct passwd *res = NULL;
    if (getpwnam_r(name, &pw, buf, sizeof buf, &res) != 0 || !res)
        ug_die(UG_EXIT_USAGE, "--user %s: no such user", name);
    if (geteuid() != 0)
        ug_die(UG_EXIT_USAGE, "--user %s: only a node started as root can switch users", name);
    return res;
}

/* Becomes pw for good (groups, group, user, in every thread: glibc's
 * setuid() reaches them all), after create() and the binds, as the hosts
 * in contrib/ do. */
static void drop_to(const struct passwd *pw)
{
    if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
        ug_die(UG_EXIT_FAIL, "--user %s: cannot switch to it: %s", pw->pw_name, strerror(errno));
    if (pw->pw_uid != 0 && setuid(0) == 0)
        ug_die(UG_EXIT_FAIL, "--user %s: root could be regained; refusing to serve", pw->pw_name);
    ug_log(UG_LOG_INFO, "running as %s (uid %u, gid %u)", pw->pw_name, (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
}

/* dlopen, the ABI check, create() (every signal blocked), the admin thread
 * (tick() every second), the control socket: libupgate-host, in its batch
 * model, with every datagram the plugin's. Exits on failure (the adapter
 * logged the line naming the file or setting). */
static void open_adapter(const args *a)
{
    char err[1024];
    if (a->capture && ug_capw_start(a->capture, a->capture_max ? a->capture_max : UG_CAPTURE_MAX_DEFAULT, nworkers,
                                    err, sizeof err) != 0)
        ug_die(UG_EXIT_FAIL, "--capture %s", err);
    ug_host_config c = {
        .size = sizeof c, .plugin = a->plugin ? a->plugin : ug_default_plugin(), .policy = a->policy,
        .control = a->control, .model = UG_HOST_BATCH, .workers = nworkers, .name = "upgate-node",
        .log = ug_log_host, .flags = UG_HOST_EVERY_DATAGRAM, .setting_prefix = "--",
        .answered = a->capture ? ug_serve_capture : NULL, .user = a->user ? a->user : "",
    };
    ug_node_adapter = ug_host_open(&c, err, sizeof err);
    if (!ug_node_adapter)
        exit(UG_EXIT_FAIL);
    ug_api = ug_host_plugin(ug_node_adapter);
}

static int serve(const args *a)
{
    struct sockaddr_storage addrs[LISTEN_MAX];
    socklen_t lens[LISTEN_MAX];
    for (unsigned i = 0; i < a->nlisten; i++)
        if (ug_parse_hostport(a->listen[i], &addrs[i], &lens[i]) != 0)
            ug_die(UG_EXIT_USAGE, "--listen: not HOST:PORT: %s", a->listen[i]);
    uint64_t nw = a->workers;
    if (!nw) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        nw = cores > 0 ? (uint64_t)(cores < 256 ? cores : 256) : 1;
    }
    nworkers = (unsigned)nw;
    ug_log_init();
    ug_log_take_errors();

    /* keys live in the plugin's locked memory (sodium_malloc: mlock'ed,
     * excluded from dumps); also refuse core dumps and ptrace outright */
    (void)setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    /* every thread, the plugin's included, starts with these blocked: only
     * the main loop sees them */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGHUP), sigaddset(&block, SIGTERM), sigaddset(&block, SIGINT), sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    signal(SIGPIPE, SIG_IGN);

    const struct passwd *pw = a->user ? user_to_be(a->user) : NULL;
    ug_serve_init(nworkers);
    open_adapter(a);
    char ready[2048];
    size_t used = (size_t)snprintf(ready, sizeof ready, "upgate-node ready on");
    for (unsigned i = 0; i < a->nlisten; i++) {
        char shown[128];
        ug_serve_bind(&addrs[i], lens[i], shown, sizeof shown);
        used += (size_t)snprintf(ready + used, sizeof ready - used, " %s", shown);
    }
    used += (size_t)snprintf(ready + used, sizeof ready - used, " (%u workers, plugin %s %s", nworkers,
                             ug_api->name, ug_api->version);
    start_services(a, ready, sizeof ready - 1, &used);
    if (pw)
        drop_to(pw);
    ug_serve_start();

    struct ev_loop *main_loop = EV_DEFAULT;
    ev_signal sigs[4];
    int signums[4] = {SIGHUP, SIGTERM, SIGINT, SIGUSR1};
    for (int i = 0; i < 4; i++) {
        ev_signal_init(&sigs[i], on_signal, signums[i]);
        ev_signal_start(main_loop, &sigs[i]);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    ev_timer stats_timer;
    if (a->stats_every) {
        ev_timer_init(&stats_timer, on_stats_timer, (double)a->stats_every, (double)a->stats_every);
        ev_timer_start(main_loop, &stats_timer);
    }

    printf("%s)\n", ready);
    fflush(stdout);
    ug_notify("READY=1\nSTATUS=serving (%u workers)", nworkers);
    ev_run(main_loop, 0);

    ug_notify("STOPPING=1\nSTATUS=stopping");
    ug_log(UG_LOG_INFO, "stopping");
    ug_ctlrec_withdraw();
    ug_metrics_stop();
    ug_serve_stop();
    ug_capw_stop();
    print_stats();
    return shut_down();
}

ug_host_adapter *ug_node_adapter;
const ug_plugin *ug_api;

const ug_plugin *ug_node_load(const char *path)
{
    char err[1024];
    const ug_plugin *p = ug_host_load(path, err, sizeof err);
    if (!p)
        ug_die(UG_EXIT_FAIL, "--plugin %s", err);
    return p;
}

int ug_node_control(const char *req, size_t len, ug_emit emit, void *ctx)
{
    return ug_host_control(ug_node_adapter, req, len, emit, ctx);
}

int main(int argc, char **argv)
{
    ug_prog = "upgate-node";
    args a = {0};
    parse_args(argc, argv, &a);
    if (a.check)
        return ug_check_run(a.plugin ? a.plugin : ug_default_plugin(), a.policy, a.explain, a.json, a.user);
    return serve(&a);
}
