/* upgate-peer: asks a tracker for an upgrade and acts on the answer (cli.md); a thin program on libupgate. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <upgate/client.h>

#include "common.h"

#define BACKOFF_FIRST_MS 500u /* first wait for an answer; doubles per resend */
#define BACKOFF_CAP_MS 8000u
#define COOKIE_ROUNDS_MAX 3
#define DEADLINE_MAX_S (30u * 86400u)

static const char usage[] =
    "usage: upgate-peer --tracker HOST:PORT --uid N --version V --key CLIENT.key --cred FILE\n"
    "                   --root FILE [--root FILE ...] [--threshold N] --state FILE\n"
    "                   --app A --plat P --chan C [--keyring-url URL ...] [--anchor-kv N]\n"
    "                   [--tracker-name NAME] [--blocked-after SECONDS]\n"
    "                   [--yes|--no] [--out PATH] [--timeout SECONDS] [--tries N] [--pad]\n"
    "                   [--bind ADDR] [--deadline SECONDS] [--installed FILE]\n"
    "       upgate-peer --tracker HOST:PORT --uid N --version V --key CLIENT.key --cred FILE\n"
    "                   --hint-pub FILE [--hint-pub FILE ...] --release-pub FILE [--release-pub FILE ...]\n"
    "                   [--plat P] [--chan C] [--yes|--no] [--out PATH]\n"
    "                   [--timeout SECONDS] [--tries N] [--pad] [--bind ADDR]\n"
    "                   [--state FILE] [--deadline SECONDS]\n"
    "\n"
    "Asks the tracker whether this peer (user N, at version V) should upgrade. With\n"
    "--root it speaks protocol version 2 (docs/protocol-v2.md): it trusts the keyrings\n"
    "a threshold of the pinned roots signs (fetched from the keyring URLs, walked\n"
    "version by version) and remembers in the --state file what it verified (newest\n"
    "keyring, highest release seq, the signed clock); with --hint-pub and --release-pub\n"
    "it speaks version 1 (pinned keys). A HINT\n"
    "is acted on only if it passes every check of the protocol; then the offer\n"
    "is shown and, on yes, the package is downloaded (hinted mirror first, the others\n"
    "after), its size and BLAKE2b-256 are checked, and only then is it moved to PATH\n"
    "(default: the URL's file name in the current directory). Until then it grows in\n"
    "PATH.part, which a later run resumes (HTTP Range). After acting on a HINT the\n"
    "peer sends the tracker one signed REPORT: installed (verified and in place),\n"
    "declined, download failed, or size/hash mismatch.\n"
    "\n"
    "  --root FILE                 a pinned root key (version 2); repeat for up to 8\n"
    "  --threshold N               how many pinned roots must sign (default 1)\n"
    "  --state FILE                version 2: what the peer verified (keyring, seq, signed\n"
    "                              clock), written atomically; FILE.installed remembers\n"
    "                              the version installed, as --state does in version 1\n"
    "  --app, --plat, --chan       version 2: the application, platform and channel a\n"
    "                              manifest must be bound to\n"
    "  --keyring-url URL           where keyrings are fetched (URL + N.keyring); repeat\n"
    "  --anchor-kv N               the keyring version the pinned roots come from\n"
    "  --tracker-name NAME         accept certificates and tokens of this tracker only\n"
    "  --blocked-after SECONDS     print \"updates may be blocked\" after this long without\n"
    "                              a valid token or offer (default 604800: 7 days)\n"
    "  --hint-pub, --release-pub   pinned keys (version 1); repeat to pin up to 8 of each\n"
    "  --yes, --no                 answer the prompt (default: ask; end of input is no)\n"
    "  --timeout SECONDS           give up on the tracker after this long (default 30)\n"
    "  --tries N                   HELLO sends before giving up on silence (default 5)\n"
    "  --pad                       pad every HELLO to 1232 bytes (saves a round trip)\n"
    "  --bind ADDR                 send from this local address (e.g. 127.0.1.5)\n"
    "  --state FILE                version 1: remember the version installed here; at start,\n"
    "                              if V is below it, report the rollback to the tracker\n"
    "  --deadline SECONDS          give the whole download this long (default 60 s plus\n"
    "                              1 s per 16 KiB of package); each mirror gets an equal\n"
    "                              share of the time left before the next is tried\n"
    "  --installed FILE            version 2: the installed file of V; when the tracker\n"
    "                              names a delta from V, it is fetched and patches FILE,\n"
    "                              kept only if the result is the package, else the\n"
    "                              package is fetched whole (the REPORT says which way)\n"
    "\n"
    "Exit: 0 upgraded, declined or told to wait; 1 failure; 2 bad usage; 3 HINT rejected.\n"
    "`upgate-peer --version` alone prints the program's version.\n";

typedef struct {
    const char *tracker, *version, *key, *cred, *plat, *chan, *out, *bind, *state, *installed_file;
    const char *hint_pub[UG_CLIENT_PINS_MAX], *release_pub[UG_CLIENT_PINS_MAX];
    unsigned nhint, nrelease;
    /* protocol version 2 */
    const char *roots[UG_CLIENT_PINS_MAX], *kr_urls[UG_CLIENT_KEYRING_URLS_MAX], *app, *tracker_name;
    unsigned nroots, nkr_urls;
    uint64_t threshold, anchor_kv, blocked_after;
    char installed[PATH_MAX]; /* the installed version's file: --state (v1), --state.installed (v2) */
    int answer; /* 1 --yes, -1 --no, 0 ask */
    bool pad;
    uint64_t uid, timeout_s, tries, deadline_s;
    struct sockaddr_storage addr, bind_addr;
    socklen_t addrlen, bind_len;
} opts;

typedef struct {
    opts o;
    ug_client *c; /* holds the client key; ug_client_free wipes it */
    int sock;
} peer;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- command line --------------------------------------------------- */

enum {
    OPT_TRACKER = 1, OPT_UID, OPT_VERSION, OPT_KEY, OPT_CRED, OPT_HINT_PUB, OPT_RELEASE_PUB, OPT_PLAT,
    OPT_CHAN, OPT_YES, OPT_NO, OPT_OUT, OPT_TIMEOUT, OPT_TRIES, OPT_PAD, OPT_BIND, OPT_STATE, OPT_DEADLINE,
    OPT_ROOT, OPT_THRESHOLD, OPT_APP, OPT_KEYRING_URL, OPT_ANCHOR_KV, OPT_TRACKER_NAME, OPT_BLOCKED_AFTER,
    OPT_INSTALLED,
};
static const struct option long_opts[] = {
    {"tracker", required_argument, NULL, OPT_TRACKER}, {"uid", required_argument, NULL, OPT_UID},
    {"version", required_argument, NULL, OPT_VERSION}, {"key", required_argument, NULL, OPT_KEY},
    {"cred", required_argument, NULL, OPT_CRED},       {"hint-pub", required_argument, NULL, OPT_HINT_PUB},
    {"release-pub", required_argument, NULL, OPT_RELEASE_PUB},
    {"plat", required_argument, NULL, OPT_PLAT},       {"chan", required_argument, NULL, OPT_CHAN},
    {"yes", no_argument, NULL, OPT_YES},               {"no", no_argument, NULL, OPT_NO},
    {"out", required_argument, NULL, OPT_OUT},         {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"tries", required_argument, NULL, OPT_TRIES},     {"pad", no_argument, NULL, OPT_PAD},
    {"bind", required_argument, NULL, OPT_BIND},       {"state", required_argument, NULL, OPT_STATE},
    {"deadline", required_argument, NULL, OPT_DEADLINE}, {"root", required_argument, NULL, OPT_ROOT},
    {"threshold", required_argument, NULL, OPT_THRESHOLD}, {"app", required_argument, NULL, OPT_APP},
    {"keyring-url", required_argument, NULL, OPT_KEYRING_URL},
    {"anchor-kv", required_argument, NULL, OPT_ANCHOR_KV},
    {"tracker-name", required_argument, NULL, OPT_TRACKER_NAME},
    {"blocked-after", required_argument, NULL, OPT_BLOCKED_AFTER},
    {"installed", required_argument, NULL, OPT_INSTALLED}, {NULL, 0, NULL, 0},
};

static void set_once(const char **slot, const char *flag)
{
    if (*slot)
        ug_usage_error("option given twice: --%s", flag);
    *slot = optarg;
}

static void add_pin(const char **pins, unsigned *n, const char *flag)
{
    unsigned max = strcmp(flag, "keyring-url") ? UG_CLIENT_PINS_MAX : UG_CLIENT_KEYRING_URLS_MAX;
    if (*n == max)
        ug_usage_error("--%s: at most %u (got more at %s)", flag, max, optarg);
    pins[(*n)++] = optarg;
}

/* The tracker's address and the optional local one. */
static void parse_addresses(opts *o)
{
    if (ug_parse_hostport(o->tracker, &o->addr, &o->addrlen) != 0)
        ug_usage_error("--tracker: not HOST:PORT, or the host does not resolve: %s", o->tracker);
    const struct sockaddr *sa = (const struct sockaddr *)&o->addr;
    in_port_t port = sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                                : ((const struct sockaddr_in *)sa)->sin_port;
    if (port == 0)
        ug_usage_error("--tracker: port 0: %s", o->tracker);
    if (o->bind) {
        char hostport[300];
        bool v6 = strchr(o->bind, ':') != NULL;
        snprintf(hostport, sizeof hostport, v6 ? "[%s]:0" : "%s:0", o->bind);
        if (ug_parse_hostport(hostport, &o->bind_addr, &o->bind_len) != 0 ||
            o->bind_addr.ss_family != o->addr.ss_family)
            ug_usage_error("--bind: not a local address of the tracker's family: %s", o->bind);
    }
}

/* Version 2's options: --root and the rest; none of them beside version 1's pins. */
static void check_v2(opts *o, const char *const v2num[3])
{
    bool v1 = o->nhint || o->nrelease;
    if (v1 && (o->nroots || o->app || o->nkr_urls || o->tracker_name || v2num[0] || v2num[1] || v2num[2]))
        ug_usage_error("--%s is protocol version 2's (--root); --hint-pub and --release-pub are version 1's",
                       o->nroots ? "root" : o->app ? "app" : o->nkr_urls ? "keyring-url" : o->tracker_name ? "tracker-name"
                       : v2num[0] ? "threshold" : v2num[1] ? "anchor-kv" : "blocked-after");
    if (v1)
        return;
    if (!o->nroots)
        ug_usage_error("missing --root (protocol version 2) or --hint-pub and --release-pub (version 1)");
    static const char *const need[] = {"--state", "--app", "--plat", "--chan"};
    const bool have[] = {o->state, o->app, o->plat, o->chan};
    for (size_t i = 0; i < sizeof have / sizeof have[0]; i++)
        if (!have[i])
            ug_usage_error("missing %s (protocol version 2)", need[i]);
    o->threshold = 1;
    if (v2num[0] && ug_parse_u64(v2num[0], 1, o->nroots, &o->threshold) != 0)
        ug_usage_error("--threshold: not 1..%u (the pinned roots): %s", o->nroots, v2num[0]);
    if (v2num[1] && ug_parse_u64(v2num[1], 0, UINT32_MAX, &o->anchor_kv) != 0)
        ug_usage_error("--anchor-kv: not a keyring version: %s", v2num[1]);
    o->blocked_after = 7 * 86400;
    if (v2num[2] && ug_parse_u64(v2num[2], 1, UINT32_MAX, &o->blocked_after) != 0)
        ug_usage_error("--blocked-after: not a number of seconds: %s", v2num[2]);
    if (strlen(o->state) > PATH_MAX - 64)
        ug_usage_error("--state: too long a path");
    snprintf(o->installed, sizeof o->installed, "%s.installed", o->state);
}

static void parse_args(int argc, char **argv, opts *o)
{
    const char *uid = NULL, *timeout = NULL, *tries = NULL, *deadline = NULL, *v2num[3] = {NULL, NULL, NULL};
    opterr = 0;
    int c, idx = 0;
    while ((c = getopt_long(argc, argv, "", long_opts, &idx)) != -1) {
        if (c == '?' || c == ':')
            ug_usage_error("unknown option or missing value: %s", argv[optind - 1]);
        const char *flag = long_opts[idx].name;
        switch (c) {
        case OPT_TRACKER: set_once(&o->tracker, flag); break;
        case OPT_UID: set_once(&uid, flag); break;
        case OPT_VERSION: set_once(&o->version, flag); break;
        case OPT_KEY: set_once(&o->key, flag); break;
        case OPT_CRED: set_once(&o->cred, flag); break;
        case OPT_PLAT: set_once(&o->plat, flag); break;
        case OPT_CHAN: set_once(&o->chan, flag); break;
        case OPT_OUT: set_once(&o->out, flag); break;
        case OPT_TIMEOUT: set_once(&timeout, flag); break;
        case OPT_TRIES: set_once(&tries, flag); break;
        case OPT_PAD: o->pad = true; break;
        case OPT_BIND: set_once(&o->bind, flag); break;
        case OPT_STATE: set_once(&o->state, flag); break;
        case OPT_DEADLINE: set_once(&deadline, flag); break;
        case OPT_INSTALLED: set_once(&o->installed_file, flag); break;
        case OPT_HINT_PUB: add_pin(o->hint_pub, &o->nhint, flag); break;
        case OPT_RELEASE_PUB: add_pin(o->release_pub, &o->nrelease, flag); break;
        case OPT_ROOT: add_pin(o->roots, &o->nroots, flag); break;
        case OPT_KEYRING_URL: add_pin(o->kr_urls, &o->nkr_urls, flag); break;
        case OPT_APP: set_once(&o->app, flag); break;
        case OPT_TRACKER_NAME: set_once(&o->tracker_name, flag); break;
        case OPT_THRESHOLD: set_once(&v2num[0], flag); break;
        case OPT_ANCHOR_KV: set_once(&v2num[1], flag); break;
        case OPT_BLOCKED_AFTER: set_once(&v2num[2], flag); break;
        case OPT_YES:
        case OPT_NO:
            if (o->answer != 0)
                ug_usage_error("give at most one of --yes and --no");
            o->answer = c == OPT_YES ? 1 : -1;
            break;
        default:
            ug_usage_error("unexpected option %s", argv[optind - 1]);
        }
    }
    if (optind != argc)
        ug_usage_error("unexpected argument %s", argv[optind]);
    static const char *const need[] = {"--tracker", "--uid", "--version", "--key", "--cred"};
    const bool have[] = {o->tracker, uid, o->version, o->key, o->cred};
    for (size_t i = 0; i < sizeof have / sizeof have[0]; i++)
        if (!have[i])
            ug_usage_error("missing %s", need[i]);
    if ((o->nhint || o->nrelease) && (!o->nhint || !o->nrelease))
        ug_usage_error("missing %s (protocol version 1 pins both)", o->nhint ? "--release-pub" : "--hint-pub");
    check_v2(o, v2num);
    if (ug_parse_u64(uid, 1, UG_UID_MAX, &o->uid) != 0)
        ug_usage_error("--uid: not a user id (1..2^63-1): %s", uid);
    if (!ug_client_version_valid(o->version))
        ug_usage_error("--version: not a version (1 to 4 numbers, e.g. 1.4.2): %s", o->version);
    o->timeout_s = 30;
    if (timeout && ug_parse_u64(timeout, 1, 86400, &o->timeout_s) != 0)
        ug_usage_error("--timeout: not a number of seconds (1..86400): %s", timeout);
    o->tries = 5;
    if (tries && ug_parse_u64(tries, 1, 20, &o->tries) != 0)
        ug_usage_error("--tries: not a number of tries (1..20): %s", tries);
    if (deadline && ug_parse_u64(deadline, 1, DEADLINE_MAX_S, &o->deadline_s) != 0)
        ug_usage_error("--deadline: not a number of seconds (1..%u): %s", DEADLINE_MAX_S, deadline);
    if (o->out && (o->out[0] == 0 || strlen(o->out) > PATH_MAX - 64))
        ug_usage_error("--out: empty or too long a path");
    if (o->state && (o->state[0] == 0 || strlen(o->state) > PATH_MAX - 64))
        ug_usage_error("--state: empty or too long a path");
    if (o->state && !o->installed[0])
        snprintf(o->installed, sizeof o->installed, "%s", o->state);
    parse_addresses(o);
}

/* "Updates may be blocked" (protocol version 2): said once, then the peer keeps asking. */
static void on_blocked(void *ctx, uint64_t fresh_at, uint64_t now)
{
    (void)ctx;
    uint64_t days = (now - fresh_at) / 86400, hours = (now - fresh_at) % 86400 / 3600;
    printf("updates may be blocked: no valid freshness token or offer from a tracker for %llu d %llu h; "
           "asking anyway\n", (unsigned long long)days, (unsigned long long)hours);
    fflush(stdout);
}

/* The library handle for the options; a bad --plat or --chan is bad usage. */
static ug_client *make_client(const opts *o)
{
    ug_client_config cfg;
    ug_client_config_init(&cfg);
    cfg.uid = o->uid;
    cfg.version = o->version;
    cfg.plat = o->plat;
    cfg.chan = o->chan;
    cfg.hello_size = o->pad ? UG_CLIENT_DGRAM_MAX : 512;
    if (o->nroots) { /* protocol version 2 */
        cfg.app = o->app;
        cfg.root_threshold = (unsigned)o->threshold;
        cfg.anchor_kv = (uint32_t)o->anchor_kv;
        cfg.state_path = o->state;
        cfg.tracker_name = o->tracker_name;
        cfg.blocked_after_s = o->blocked_after;
        cfg.blocked = on_blocked;
    }
    ug_client *c = NULL;
    const char *msg = "";
    ug_client_err e = ug_client_new(&cfg, &c, &msg);
    if (e == UG_CLIENT_E_INVALID) {
        const char *field = strncmp(msg, "config: ", 8) == 0 ? msg + 8 : msg;
        ug_usage_error("--%s", field);
    }
    if (e != UG_CLIENT_OK)
        ug_die(UG_EXIT_FAIL, "%s", msg);
    return c;
}

/* ---- files ---------------------------------------------------------- */

/* Pins, credential and client key; on failure says which file. */
static int load_files(peer *p)
{
    ug_client *c = p->c;
    for (unsigned i = 0; i < p->o.nroots; i++)
        if (ug_client_add_root_key_file(c, p->o.roots[i]) != UG_CLIENT_OK)
            return ug_complain(UG_EXIT_FAIL, "%s", ug_client_errmsg(c));
    for (unsigned i = 0; i < p->o.nkr_urls; i++)
        if (ug_client_add_keyring_url(c, p->o.kr_urls[i]) != UG_CLIENT_OK)
            return ug_complain(UG_EXIT_USAGE, "--keyring-url: %s", ug_client_errmsg(c));
    for (unsigned i = 0; i < p->o.nhint; i++)
        if (ug_client_add_hint_key_file(c, p->o.hint_pub[i]) != UG_CLIENT_OK)
            return ug_complain(UG_EXIT_FAIL, "%s", ug_client_errmsg(c));
    for (unsigned i = 0; i < p->o.nrelease; i++)
        if (ug_client_add_release_key_file(c, p->o.release_pub[i]) != UG_CLIENT_OK)
            return ug_complain(UG_EXIT_FAIL, "%s", ug_client_errmsg(c));
    if (ug_client_load_cred(c, p->o.cred) != UG_CLIENT_OK || ug_client_load_key(c, p->o.key) != UG_CLIENT_OK)
        return ug_complain(UG_EXIT_FAIL, "%s", ug_client_errmsg(c));
    uint64_t exp = ug_client_cred_expiry(c), now = ug_now();
    if (exp <= now)
        fprintf(stderr, "%s: warning: %s expired %llu s ago; trackers will ignore us\n", ug_prog, p->o.cred,
                (unsigned long long)(now - exp));
    return UG_EXIT_OK;
}

/* ---- REPORT --------------------------------------------------------- */

/* Sends one REPORT about version `to`; it is never answered, and a failure
 * to send it changes nothing else. */
static void send_report(const peer *p, ug_client_res res, const char *to)
{
    uint8_t buf[UG_CLIENT_DGRAM_MAX];
    size_t len;
    if (ug_client_report(p->c, res, to, buf, sizeof buf, &len) != UG_CLIENT_OK)
        fprintf(stderr, "%s: warning: no REPORT: %s\n", ug_prog, ug_client_errmsg(p->c));
    else if (send(p->sock, buf, len, 0) < 0)
        fprintf(stderr, "%s: warning: REPORT not sent to %s: %s\n", ug_prog, p->o.tracker, strerror(errno));
}

/* --state: running below the version installed here is a rollback. */
static int check_state(const peer *p)
{
    if (!p->o.state)
        return UG_EXIT_OK;
    char installed[UG_CLIENT_VER_MAX + 1];
    bool rolled_back = false;
    if (ug_client_state_check(p->c, p->o.installed, &rolled_back, installed, sizeof installed) != UG_CLIENT_OK)
        return ug_complain(UG_EXIT_FAIL, "%s", ug_client_errmsg(p->c));
    if (rolled_back) {
        send_report(p, UG_CLIENT_RES_ROLLED_BACK, installed);
        printf("running %s below the installed %s: rollback reported\n", p->o.version, installed);
        /* the file says what is installed: now the version running, so the
         * rollback is told once, not at every start */
        if (ug_client_state_save(p->c, p->o.installed, p->o.version) != UG_CLIENT_OK)
            return ug_complain(UG_EXIT_FAIL, "%s", ug_client_errmsg(p->c));
    }
    return UG_EXIT_OK;
}

/* ---- talking to the tracker ----------------------------------------- */

/* Sends the outstanding HELLO and waits for its answer, resending the very
 * same bytes on silence after 0.5, 1, 2, ... s (capped), at most tries
 * sends and never past deadline. Returns 0 with *out holding an answer
 * (done or send_now); UG_EXIT_CHECK when the only HINTs heard failed a
 * check (*bad and *bad_name say which); UG_EXIT_FAIL on silence. */
static int converse(peer *p, uint64_t deadline, const ug_client_event **out, ug_client_reason *bad,
                    const char **bad_name)
{
    uint8_t hello[UG_CLIENT_DGRAM_MAX], buf[UG_CLIENT_DGRAM_MAX + 1]; /* one more: an oversized datagram shows */
    size_t hello_len;
    if (ug_client_hello(p->c, hello, sizeof hello, &hello_len) != UG_CLIENT_OK)
        return ug_complain(UG_EXIT_FAIL, "%s", ug_client_errmsg(p->c));
    uint64_t sent = 0, backoff = BACKOFF_FIRST_MS, next_send = mono_ms();
    bool bad_hint = false;
    int send_errno = 0;
    for (;;) {
        uint64_t now = mono_ms();
        if (now >= deadline)
            break;
        if (now >= next_send) {
            if (sent == p->o.tries)
                break;
            /* a failed send (e.g. a queued ICMP error) counts as a try */
            if (send(p->sock, hello, hello_len, 0) < 0)
                send_errno = errno;
            sent++;
            next_send = now + backoff;
            backoff = backoff * 2 > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : backoff * 2;
        }
        uint64_t until = next_send < deadline ? next_send : deadline;
        struct pollfd pfd = {.fd = p->sock, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)(until - now));
        if (pr < 0 && errno != EINTR)
            return ug_complain(UG_EXIT_FAIL, "poll: %s", strerror(errno));
        if (pr <= 0)
            continue;
        ssize_t n = recv(p->sock, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0)
            continue; /* ICMP unreachable and friends: keep listening until the next resend */
        const ug_client_event *ev;
        if (ug_client_receive(p->c, buf, (size_t)n, &ev) != UG_CLIENT_OK)
            continue;
        if (ev->done || ev->send_now) {
            *out = ev;
            return 0;
        }
        if (ev->hint) { /* an off-path sender can forge these: only ours ends the wait */
            bad_hint = true;
            *bad = ev->reason;
            *bad_name = ev->reason_name; /* a static string */
            if (ev->authentic)
                return UG_EXIT_CHECK;
        }
    }
    if (bad_hint)
        return UG_EXIT_CHECK;
    if (send_errno)
        return ug_complain(UG_EXIT_FAIL, "no answer from %s after %llu tries (last send: %s)", p->o.tracker,
                           (unsigned long long)sent, strerror(send_errno));
    return ug_complain(UG_EXIT_FAIL, "no answer from %s after %llu tries", p->o.tracker, (unsigned long long)sent);
}

static int report_wait(const peer *p, const ug_client_event *ev)
{
    static const char *const words[] = {
        [0] = "your version is not being upgraded",
        [1] = "not selected yet",
        [2] = "quota spent",
        [4] = "paused",
        [5] = "rate limited",
    };
    char reason[128];
    if (ev->why == 3) {
        uint64_t ours = ev->hello_ts, theirs = ev->tracker_ts;
        uint64_t off = ours > theirs ? ours - theirs : theirs - ours;
        snprintf(reason, sizeof reason, "clock skew: your clock is %llu s off the tracker's (%s)",
                 (unsigned long long)off, ours > theirs ? "ahead" : "behind");
    } else if (ev->why < sizeof words / sizeof words[0] && words[ev->why]) {
        snprintf(reason, sizeof reason, "%s", words[ev->why]);
    } else {
        snprintf(reason, sizeof reason, "unknown reason %u", ev->why);
    }
    /* the library clamped the unsigned retry to 60..86400 s */
    printf("no upgrade now for version %s: %s; ask again in %llu s\n", p->o.version, reason,
           (unsigned long long)ev->retry);
    if (ev->token) /* version 2: the WAIT carried a valid signed token */
        printf("freshness token verified: the tracker's newest release for %s/%s is seq %llu\n", p->o.app, p->o.chan,
               (unsigned long long)ev->newest_seq);
    else if (ev->protocol == 2 && ev->token_reason)
        printf("freshness token refused: %s\n", ev->token_reason_name);
    return UG_EXIT_OK;
}

/* ---- the offer ------------------------------------------------------ */

/* The default --out: the URL path's last component, decoded, if it is a
 * plain file name (no "/", no leading "."). */
static int default_out(const char *url, char *out, size_t cap)
{
    CURLU *u = curl_url();
    char *path = NULL;
    int rc = -1;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) == CURLUE_OK) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        size_t n = strlen(base);
        bool ok = n > 0 && n < cap && n <= NAME_MAX && base[0] != '.';
        for (size_t i = 0; ok && i < n; i++)
            ok = (base[i] >= 'a' && base[i] <= 'z') || (base[i] >= 'A' && base[i] <= 'Z') ||
                 (base[i] >= '0' && base[i] <= '9') || strchr("._+-", base[i]);
        if (ok) {
            memcpy(out, base, n + 1);
            rc = 0;
        }
    }
    curl_free(path);
    curl_url_cleanup(u);
    return rc;
}

static void url_host(const char *url, char *out, size_t cap)
{
    CURLU *u = curl_url();
    char *host = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        snprintf(out, cap, "%s", host);
    else
        snprintf(out, cap, "?");
    curl_free(host);
    curl_url_cleanup(u);
}

static void human_size(uint64_t n, char *out, size_t cap)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    unsigned u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof units[0])
        v /= 1024, u++;
    if (u == 0)
        snprintf(out, cap, "%llu bytes", (unsigned long long)n);
    else
        snprintf(out, cap, "%.1f %s", v, units[u]);
}

/* --yes / --no, else one line from stdin; end of input is no. */
static bool ask(const opts *o)
{
    if (o->answer)
        return o->answer > 0;
    printf("Upgrade now? [y/N] ");
    fflush(stdout);
    char line[64];
    bool got = fgets(line, sizeof line, stdin) != NULL;
    if (!isatty(STDIN_FILENO))
        putchar('\n'); /* the answer was not echoed: end the prompt's line */
    if (!got)
        return false;
    if (!strchr(line, '\n')) { /* swallow the rest of a long line */
        int ch;
        while ((ch = getchar()) != EOF && ch != '\n')
            ;
    }
    char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strcspn(p, " \t\r\n");
    return (n == 1 && (p[0] == 'y' || p[0] == 'Y')) || (n == 3 && strncasecmp(p, "yes", 3) == 0);
}

/* A progress line on a terminal, redrawn when the percentage moves. */
static void on_progress(void *ctx, uint64_t done, uint64_t total, const char *url)
{
    (void)url;
    unsigned *last = ctx;
    unsigned pct = total ? (unsigned)(done * 100 / total) : 100;
    if (pct != *last) {
        *last = pct;
        fprintf(stderr, "\r%s: %3u%% of %llu bytes%s", ug_prog, pct, (unsigned long long)total, pct == 100 ? "\n" : "");
    }
}

static void on_fallback(void *ctx, const char *url, const char *why)
{
    (void)ctx;
    bool delta = strncmp(why, "delta failed: ", 14) == 0;
    fprintf(stderr, "%s: download from %s failed: %s; %s\n", ug_prog, url, why,
            delta ? "fetching the full package" : "trying the next mirror");
}

/* Downloads, verifies and moves the package into place, then reports. */
static int download(const peer *p, const ug_client_offer *o, const char *out)
{
    unsigned last_pct = 101;
    ug_client_download_config dc;
    ug_client_download_config_init(&dc);
    dc.dest = out;
    dc.deadline_s = p->o.deadline_s;
    dc.fallback = on_fallback;
    dc.ctx = &last_pct;
    dc.user_agent = "upgate-peer/1";
    dc.installed = p->o.installed_file;
    if (isatty(STDERR_FILENO))
        dc.progress = on_progress;
    ug_client_err e = ug_client_download(p->c, o, &dc);
    send_report(p, ug_client_res_of(e), o->to);
    uint64_t bytes;
    unsigned via = ug_client_last_via(p->c, &bytes);
    if (e != UG_CLIENT_OK)
        return ug_complain(UG_EXIT_FAIL, "download failed: %s", ug_client_errmsg(p->c));
    printf("upgraded package saved to %s (%llu bytes, BLAKE2b ok)\n", out, (unsigned long long)o->size);
    if (ug_client_protocol(p->c) == 2) /* version 1 has no via */
        printf("via %s: %llu bytes fetched from mirrors\n", ug_client_via_name(via), (unsigned long long)bytes);
    if (p->o.state && ug_client_state_save(p->c, p->o.installed, o->to) != UG_CLIENT_OK)
        return ug_complain(UG_EXIT_FAIL, "%s", ug_client_errmsg(p->c));
    return UG_EXIT_OK;
}

static int offer(const peer *p, const ug_client_event *ev)
{
    const ug_client_offer *o = &ev->offer;
    char size[32], host[UG_CLIENT_URL_MAX + 1], out_buf[NAME_MAX + 1];
    human_size(o->size, size, sizeof size);
    url_host(o->urls[0], host, sizeof host); /* urls[0] is the hinted mirror */
    printf("upgrade offered: version %s -> %s, %s (%llu bytes) from %s\n", p->o.version, o->to, size,
           (unsigned long long)o->size, host);
    if (ev->has_delta)
        printf("delta offered: from %s, %llu bytes%s\n", ev->delta.from, (unsigned long long)ev->delta.size,
               p->o.installed_file ? "" : " (not used: no --installed file)");
    const char *out = p->o.out;
    if (!out && p->o.answer >= 0) { /* fail before the prompt, not after a yes */
        if (default_out(o->urls[0], out_buf, sizeof out_buf) != 0)
            return ug_complain(UG_EXIT_FAIL, "no safe file name in %s; give --out PATH", o->urls[0]);
        out = out_buf;
    }
    if (!ask(&p->o)) {
        printf("keeping version %s\n", p->o.version);
        send_report(p, UG_CLIENT_RES_DECLINED, o->to);
        return UG_EXIT_OK;
    }
    /* the user may have taken a while: the offer must still be valid */
    if (o->exp <= ug_now())
        return ug_complain(UG_EXIT_CHECK, "HINT rejected: expired (the offer expired while we waited)");
    return download(p, o, out);
}

/* ---- main ----------------------------------------------------------- */

static const char *check_phrase(ug_client_reason r)
{
    switch (r) {
    case UG_CLIENT_R_KEY: return "signed by a key that is not pinned";
    case UG_CLIENT_R_SIG: return "bad signature";
    case UG_CLIENT_R_EXPIRED: return "hint or manifest expired";
    case UG_CLIENT_R_UID: return "meant for another user";
    case UG_CLIENT_R_NONCE: return "not an answer to our HELLO";
    case UG_CLIENT_R_ROLLBACK: return "offered version is not newer than ours";
    case UG_CLIENT_R_MIRROR: return "mirror index outside the manifest's URLs";
    case UG_CLIENT_R_THRESHOLD: return "too few of the keyring's keys signed";
    case UG_CLIENT_R_KEYRING: return "the keyring it needs could not be fetched, or ours expired";
    case UG_CLIENT_R_REVOKED: return "the hint key's certificate is revoked";
    case UG_CLIENT_R_NOT_YET_VALID: return "the hint key's certificate is not valid yet";
    case UG_CLIENT_R_LIFETIME: return "a certificate valid for too long";
    case UG_CLIENT_R_TRACKER: return "a certificate of another tracker";
    case UG_CLIENT_R_APP: return "a release of another application";
    case UG_CLIENT_R_PLATFORM: return "a release for other platforms";
    case UG_CLIENT_R_CHANNEL: return "a release of another channel";
    case UG_CLIENT_R_SEQ: return "an older release than one already verified";
    case UG_CLIENT_R_DELTA: return "a delta outside the manifest";
    default: return "malformed";
    }
}

/* HELLO, COOKIE and WAIT why=6 rounds until a final answer, then acts on it. */
static int run(peer *p)
{
    unsigned cookie_rounds = 0;
    uint64_t deadline = mono_ms() + p->o.timeout_s * 1000u;
    for (;;) {
        const ug_client_event *ev = NULL;
        ug_client_reason bad = UG_CLIENT_R_NONE;
        const char *bad_name = "";
        int rc = converse(p, deadline, &ev, &bad, &bad_name);
        if (rc == UG_EXIT_CHECK)
            return ug_complain(UG_EXIT_CHECK, "HINT rejected: %s (%s); nothing downloaded", bad_name,
                               check_phrase(bad));
        if (rc != 0)
            return rc;
        switch (ev->type) {
        case UG_CLIENT_EV_COOKIE:
            if (++cookie_rounds > COOKIE_ROUNDS_MAX)
                return ug_complain(UG_EXIT_FAIL, "%s keeps asking for a cookie; giving up", p->o.tracker);
            continue;
        case UG_CLIENT_EV_WAIT:
            if (ev->send_now)
                continue; /* why=6: the same question, padded to 1232 bytes */
            if (ev->why == 6)
                return ug_complain(UG_EXIT_FAIL, "%s says even a %u-byte HELLO is too small for its answer",
                                   p->o.tracker, UG_CLIENT_DGRAM_MAX);
            return report_wait(p, ev);
        case UG_CLIENT_EV_OFFER:
            return offer(p, ev);
        default:
            return ug_complain(UG_EXIT_FAIL, "unexpected event %d", (int)ev->type);
        }
    }
}

static int open_socket(peer *p)
{
    p->sock = socket(p->o.addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (p->sock >= 0 && p->o.bind && bind(p->sock, (const struct sockaddr *)&p->o.bind_addr, p->o.bind_len) != 0)
        return ug_complain(UG_EXIT_FAIL, "--bind %s: %s", p->o.bind, strerror(errno));
    if (p->sock < 0 || connect(p->sock, (const struct sockaddr *)&p->o.addr, p->o.addrlen) != 0)
        return ug_complain(UG_EXIT_FAIL, "%s: %s", p->o.tracker, strerror(errno));
    return UG_EXIT_OK;
}

int main(int argc, char **argv)
{
    ug_prog = "upgate-peer";
    if (argc == 2 && !strcmp(argv[1], "--version")) /* alone: --version V is the peer's version */
        return ug_print_version();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return UG_EXIT_OK;
        }
        if (!strcmp(argv[i], "--"))
            break;
    }
    peer p = {.sock = -1};
    parse_args(argc, argv, &p.o);
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* the client key is in sodium_malloc memory; keep it out of core dumps */
    (void)setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        ug_die(UG_EXIT_FAIL, "libcurl failed to initialise");
    p.c = make_client(&p.o);
    int rc = load_files(&p);
    if (rc == UG_EXIT_OK)
        rc = open_socket(&p);
    if (rc == UG_EXIT_OK)
        rc = check_state(&p);
    if (rc == UG_EXIT_OK)
        rc = run(&p);
    if (p.sock >= 0)
        close(p.sock);
    ug_client_free(p.c);
    curl_global_cleanup();
    return rc;
}
