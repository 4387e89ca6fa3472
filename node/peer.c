/* upgate-peer: asks a tracker for an upgrade, checks the HINT, then downloads and verifies the package (cli.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "common.h"

#define PINS_MAX 8            /* --hint-pub / --release-pub each */
#define CRED_MAX 512          /* decoded credential signed object */
#define CRED_TEXT_MAX 1024    /* its base64 line */
#define BACKOFF_FIRST_MS 500u /* first wait for an answer; doubles per resend */
#define BACKOFF_CAP_MS 8000u
#define COOKIE_ROUNDS_MAX 3
#define RETRY_MIN_S 60u /* protocol section 6: clamp a WAIT's retry */
#define RETRY_MAX_S 86400u
#define CONNECT_TIMEOUT_S 10L
#define LOW_SPEED_BPS 1024L /* a mirror slower than this ... */
#define LOW_SPEED_S 30L     /* ... for this long is given up */

static const char usage[] =
    "usage: upgate-peer --tracker HOST:PORT --uid N --version V --key CLIENT.key --cred FILE\n"
    "                   --hint-pub FILE [--hint-pub FILE ...] --release-pub FILE [--release-pub FILE ...]\n"
    "                   [--plat P] [--chan C] [--yes|--no] [--out PATH]\n"
    "                   [--timeout SECONDS] [--tries N] [--pad] [--bind ADDR]\n"
    "\n"
    "Asks the tracker whether this peer (user N, at version V) should upgrade. A HINT\n"
    "is acted on only if it passes every check of protocol section 6; then the offer\n"
    "is shown and, on yes, the package is downloaded (hinted mirror first, the others\n"
    "after), its size and BLAKE2b-256 are checked, and only then is it moved to PATH\n"
    "(default: the URL's file name in the current directory).\n"
    "\n"
    "  --hint-pub, --release-pub   pinned keys; repeat to pin up to 8 of each\n"
    "  --yes, --no                 answer the prompt (default: ask; end of input is no)\n"
    "  --timeout SECONDS           give up on the tracker after this long (default 30)\n"
    "  --tries N                   HELLO sends before giving up on silence (default 5)\n"
    "  --pad                       pad every HELLO to 1232 bytes (saves a round trip)\n"
    "  --bind ADDR                 send from this local address (e.g. 127.0.1.5)\n"
    "\n"
    "Exit: 0 upgraded, declined or told to wait; 1 failure; 2 bad usage; 3 HINT rejected.\n"
    "`upgate-peer --version` alone prints the program's version.\n";

typedef struct {
    const char *tracker, *version, *key, *cred, *plat, *chan, *out, *bind;
    const char *hint_pub[PINS_MAX], *release_pub[PINS_MAX];
    unsigned nhint, nrelease;
    int answer; /* 1 --yes, -1 --no, 0 ask */
    bool pad;
    uint64_t uid, timeout_s, tries;
    ug_version current;
    struct sockaddr_storage addr, bind_addr;
    socklen_t addrlen, bind_len;
} opts;

typedef struct {
    opts o;
    uint8_t *sk; /* sodium memory; ug_secret_free on every exit path */
    uint8_t cred[CRED_MAX];
    size_t cred_len;
    ug_pubkey hint_keys[PINS_MAX], release_keys[PINS_MAX];
    int sock;
} peer;

/* One answer from the tracker, decoded; hint points into buf. */
typedef struct {
    uint8_t buf[UG_DGRAM_MAX + 1]; /* one more, so an oversized datagram is seen as such */
    size_t len;
    ug_type type;
    ug_hint hint;
    ug_wait wait;
    ug_cookie cookie;
} reply;

/* The temporary download, removed by the signal handler if we are killed. */
static char tmp_path[PATH_MAX];
static volatile sig_atomic_t tmp_live;

static void on_fatal_signal(int sig)
{
    if (tmp_live)
        unlink(tmp_path);
    raise(sig); /* SA_RESETHAND: default action, right exit status */
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- command line --------------------------------------------------- */

enum {
    OPT_TRACKER = 1, OPT_UID, OPT_VERSION, OPT_KEY, OPT_CRED, OPT_HINT_PUB, OPT_RELEASE_PUB, OPT_PLAT,
    OPT_CHAN, OPT_YES, OPT_NO, OPT_OUT, OPT_TIMEOUT, OPT_TRIES, OPT_PAD, OPT_BIND,
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
    {"bind", required_argument, NULL, OPT_BIND},       {NULL, 0, NULL, 0},
};

/* plat and chan go on the wire as msgpack str: keep them printable ASCII. */
static bool printable(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return false;
    return true;
}

static void set_once(const char **slot, const char *flag)
{
    if (*slot)
        ug_usage_error("option given twice: --%s", flag);
    *slot = optarg;
}

static void parse_args(int argc, char **argv, opts *o)
{
    const char *uid = NULL, *timeout = NULL, *tries = NULL;
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
        case OPT_HINT_PUB:
            if (o->nhint == PINS_MAX)
                ug_usage_error("--hint-pub: at most %d pinned keys (got more at %s)", PINS_MAX, optarg);
            o->hint_pub[o->nhint++] = optarg;
            break;
        case OPT_RELEASE_PUB:
            if (o->nrelease == PINS_MAX)
                ug_usage_error("--release-pub: at most %d pinned keys (got more at %s)", PINS_MAX, optarg);
            o->release_pub[o->nrelease++] = optarg;
            break;
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
    static const char *const need[] = {"--tracker", "--uid", "--version", "--key", "--cred", "--hint-pub",
                                       "--release-pub"};
    const bool have[] = {o->tracker, uid, o->version, o->key, o->cred, o->nhint > 0, o->nrelease > 0};
    for (size_t i = 0; i < sizeof have / sizeof have[0]; i++)
        if (!have[i])
            ug_usage_error("missing %s", need[i]);
    if (ug_parse_u64(uid, 1, UG_UID_MAX, &o->uid) != 0)
        ug_usage_error("--uid: not a user id (1..2^63-1): %s", uid);
    if (ug_version_parse(&o->current, o->version, strlen(o->version)) != 0)
        ug_usage_error("--version: not a version (1 to 4 numbers, e.g. 1.4.2): %s", o->version);
    if (o->plat && !printable(o->plat, UG_PLAT_MAX))
        ug_usage_error("--plat: want 1 to %u printable ASCII bytes: %s", UG_PLAT_MAX, o->plat);
    if (o->chan && !printable(o->chan, UG_CHAN_MAX))
        ug_usage_error("--chan: want 1 to %u printable ASCII bytes: %s", UG_CHAN_MAX, o->chan);
    o->timeout_s = 30;
    if (timeout && ug_parse_u64(timeout, 1, 86400, &o->timeout_s) != 0)
        ug_usage_error("--timeout: not a number of seconds (1..86400): %s", timeout);
    o->tries = 5;
    if (tries && ug_parse_u64(tries, 1, 20, &o->tries) != 0)
        ug_usage_error("--tries: not a number of tries (1..20): %s", tries);
    if (o->out && (o->out[0] == 0 || strlen(o->out) > PATH_MAX - 64))
        ug_usage_error("--out: empty or too long a path");
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

/* ---- files ---------------------------------------------------------- */

/* Loads pins, credential and secret key; on failure says which file and
 * returns UG_EXIT_FAIL (p->sk may then be set: the caller frees it). */
static int load_files(peer *p)
{
    char why[256] = "";
    uint8_t pk[UG_PK_LEN];
    for (unsigned i = 0; i < p->o.nhint; i++) {
        if (ug_pubkey_read(p->o.hint_pub[i], pk, why, sizeof why) != 0)
            return ug_complain(UG_EXIT_FAIL, "%s: %s", p->o.hint_pub[i], why);
        ug_pubkey_set(&p->hint_keys[i], pk);
    }
    for (unsigned i = 0; i < p->o.nrelease; i++) {
        if (ug_pubkey_read(p->o.release_pub[i], pk, why, sizeof why) != 0)
            return ug_complain(UG_EXIT_FAIL, "%s: %s", p->o.release_pub[i], why);
        ug_pubkey_set(&p->release_keys[i], pk);
    }

    uint8_t text[CRED_TEXT_MAX];
    size_t len;
    const char *end = NULL;
    if (ug_file_read(p->o.cred, text, sizeof text, &len, why, sizeof why) != 0)
        return ug_complain(UG_EXIT_FAIL, "%s: %s", p->o.cred, why);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    ug_signed obj;
    ug_cred cred;
    if (len == 0 ||
        sodium_base642bin(p->cred, sizeof p->cred, (const char *)text, len, NULL, &p->cred_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != (const char *)text + len || ug_signed_decode(&obj, p->cred, p->cred_len, NULL) != 0 ||
        obj.raw_len != p->cred_len || ug_cred_decode(&cred, obj.body, obj.body_len, NULL) != 0)
        return ug_complain(UG_EXIT_FAIL, "%s: not a credential (one line of base64 of a signed object)", p->o.cred);

    p->sk = ug_seckey_load(p->o.key, why, sizeof why);
    if (!p->sk)
        return ug_complain(UG_EXIT_FAIL, "%s: %s", p->o.key, why);
    /* a tracker drops a HELLO whose credential does not match silently; say it here */
    if (cred.uid != p->o.uid)
        return ug_complain(UG_EXIT_FAIL, "%s: credential is for uid %llu, not --uid %llu", p->o.cred,
                        (unsigned long long)cred.uid, (unsigned long long)p->o.uid);
    if (sodium_memcmp(cred.pk, p->sk + UG_SEED_LEN, UG_PK_LEN) != 0)
        return ug_complain(UG_EXIT_FAIL, "%s: credential is for another client key than %s", p->o.cred, p->o.key);
    uint64_t now = ug_now();
    if (cred.exp <= now)
        fprintf(stderr, "%s: warning: %s expired %llu s ago; trackers will ignore us\n", ug_prog, p->o.cred,
                (unsigned long long)(now - cred.exp));
    return UG_EXIT_OK;
}

/* ---- talking to the tracker ----------------------------------------- */

enum { HEARD_NOTHING, HEARD_ANSWER, HEARD_BAD_HINT, HEARD_FINAL_BAD_HINT };

/* True when a HINT is signed by a pinned hint key and echoes our uid and
 * nonce: only the tracker answering this very HELLO can have made it, so a
 * later check it fails is final. Anything else might be injected by an
 * off-path sender and must not stop us from hearing the real answer. */
static bool hint_is_ours(const peer *p, const ug_dgram *d, const uint8_t nonce[UG_NONCE_LEN])
{
    ug_hint h;
    if (ug_hint_decode(&h, d->body, d->body_len, NULL) != 0)
        return false;
    const ug_pubkey *k = ug_pubkey_find(p->hint_keys, p->o.nhint, h.kid);
    return k && ug_verify(d->sig, UG_CTX_HINT, d->body, d->body_len, k->pk) == 0 && h.uid == p->o.uid &&
           sodium_memcmp(h.nonce, nonce, UG_NONCE_LEN) == 0;
}

/* Sorts one received datagram: undecodable ones, HELLOs, and WAITs or
 * COOKIEs for another nonce are nothing; a HINT is an answer only if
 * ug_hint_verify accepts it (else *err says which check failed). */
static int classify(const peer *p, reply *r, const uint8_t nonce[UG_NONCE_LEN], ug_err *err)
{
    ug_dgram d;
    if (ug_dgram_decode(&d, r->buf, r->len, NULL) != 0)
        return HEARD_NOTHING;
    r->type = d.type;
    switch (d.type) {
    case UG_TYPE_WAIT:
        return ug_wait_decode(&r->wait, d.body, d.body_len, NULL) == 0 &&
                       sodium_memcmp(r->wait.nonce, nonce, UG_NONCE_LEN) == 0
                   ? HEARD_ANSWER : HEARD_NOTHING;
    case UG_TYPE_COOKIE:
        return ug_cookie_decode(&r->cookie, d.body, d.body_len, NULL) == 0 &&
                       sodium_memcmp(r->cookie.nonce, nonce, UG_NONCE_LEN) == 0
                   ? HEARD_ANSWER : HEARD_NOTHING;
    case UG_TYPE_HINT: {
        ug_peer_expect want = {
            .hint_keys = p->hint_keys, .nhint_keys = p->o.nhint,
            .release_keys = p->release_keys, .nrelease_keys = p->o.nrelease,
            .uid = p->o.uid, .current = p->o.current, .now = ug_now(),
        };
        memcpy(want.nonce, nonce, UG_NONCE_LEN);
        if (ug_hint_verify(&r->hint, r->buf, r->len, &want, err) == 0)
            return HEARD_ANSWER;
        return hint_is_ours(p, &d, nonce) ? HEARD_FINAL_BAD_HINT : HEARD_BAD_HINT;
    }
    default:
        return HEARD_NOTHING;
    }
}

/* Sends one HELLO and waits for its answer, resending the very same bytes on
 * silence after 0.5, 1, 2, ... s (capped), at most tries sends and never past
 * deadline. Returns 0 with *r holding the answer; UG_EXIT_CHECK when the only
 * HINTs heard failed a check (*err names it); UG_EXIT_FAIL on silence. */
static int converse(peer *p, const uint8_t *hello, size_t hello_len, const uint8_t nonce[UG_NONCE_LEN],
                    uint64_t deadline, reply *r, ug_err *err)
{
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
        ssize_t n = recv(p->sock, r->buf, sizeof r->buf, MSG_DONTWAIT);
        if (n <= 0)
            continue; /* ICMP unreachable and friends: keep listening until the next resend */
        r->len = (size_t)n;
        ug_err e = UG_OK;
        switch (classify(p, r, nonce, &e)) {
        case HEARD_ANSWER:
            return 0;
        case HEARD_FINAL_BAD_HINT:
            *err = e;
            return UG_EXIT_CHECK;
        case HEARD_BAD_HINT:
            bad_hint = true;
            *err = e;
            break;
        default:
            break;
        }
    }
    if (bad_hint)
        return UG_EXIT_CHECK;
    if (send_errno)
        return ug_complain(UG_EXIT_FAIL, "no answer from %s after %llu tries (last send: %s)", p->o.tracker,
                        (unsigned long long)sent, strerror(send_errno));
    return ug_complain(UG_EXIT_FAIL, "no answer from %s after %llu tries", p->o.tracker, (unsigned long long)sent);
}

static int report_wait(const peer *p, const ug_wait *w, uint64_t our_ts)
{
    static const char *const words[] = {
        [UG_WHY_NOT_TARGETED] = "your version is not being upgraded",
        [UG_WHY_NOT_SELECTED] = "not selected yet",
        [UG_WHY_QUOTA] = "quota spent",
        [UG_WHY_PAUSED] = "paused",
        [UG_WHY_RATE] = "rate limited",
    };
    char reason[128];
    if (w->why == UG_WHY_CLOCK) {
        uint64_t off = our_ts > w->ts ? our_ts - w->ts : w->ts - our_ts;
        snprintf(reason, sizeof reason, "clock skew: your clock is %llu s off the tracker's (%s)",
                 (unsigned long long)off, our_ts > w->ts ? "ahead" : "behind");
    } else if (w->why < sizeof words / sizeof words[0] && words[w->why]) {
        snprintf(reason, sizeof reason, "%s", words[w->why]);
    } else {
        snprintf(reason, sizeof reason, "unknown reason %llu", (unsigned long long)w->why);
    }
    /* a WAIT is unsigned: its retry is advice, clamped, and nothing more */
    uint64_t retry = w->retry < RETRY_MIN_S ? RETRY_MIN_S : w->retry > RETRY_MAX_S ? RETRY_MAX_S : w->retry;
    printf("no upgrade now for version %s: %s; ask again in %llu s\n", p->o.version, reason,
           (unsigned long long)retry);
    return UG_EXIT_OK;
}

/* ---- download ------------------------------------------------------- */

/* Where the hashed, counted bytes of one transfer go. */
typedef struct {
    int fd;
    crypto_generichash_state st;
    uint64_t got, limit;
    bool too_big;
    int write_errno;
} sink;

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
    sink *s = arg;
    size_t n = size * nmemb; /* size is 1 */
    if (n > s->limit - s->got) {
        s->too_big = true;
        return 0; /* aborts the transfer */
    }
    if (ug_write_all(s->fd, data, n) != 0) {
        s->write_errno = errno;
        return 0;
    }
    crypto_generichash_update(&s->st, (const unsigned char *)data, n);
    s->got += n;
    return n;
}

enum { FETCH_OK, FETCH_MIRROR_FAILED, FETCH_LOCAL_FAILED };

/* One attempt at url into the (emptied) temp file; why[] says what failed
 * (for FETCH_LOCAL_FAILED: what went wrong with the temp file). */
static int fetch(const char *url, const ug_manifest *m, sink *s, char *why, size_t whycap)
{
    if (ftruncate(s->fd, 0) != 0 || lseek(s->fd, 0, SEEK_SET) != 0) {
        snprintf(why, whycap, "%s", strerror(errno));
        return FETCH_LOCAL_FAILED;
    }
    crypto_generichash_init(&s->st, NULL, 0, UG_HASH_LEN);
    s->got = 0;
    s->limit = m->size;
    s->too_big = false;
    s->write_errno = 0;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(why, whycap, "libcurl failed to start a transfer");
        return FETCH_LOCAL_FAILED;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BPS);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_S);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "upgate-peer/1");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    if (m->size > 0 && m->size <= (uint64_t)INT64_MAX) /* 0 would mean "no limit" to curl */
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)m->size);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, isatty(STDERR_FILENO) ? 0L : 1L);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_cleanup(c);

    if (s->write_errno) {
        snprintf(why, whycap, "%s", strerror(s->write_errno));
        return FETCH_LOCAL_FAILED;
    }
    if (s->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(why, whycap, "more than the %llu bytes the manifest allows", (unsigned long long)m->size);
        return FETCH_MIRROR_FAILED;
    }
    if (cc != CURLE_OK) {
        snprintf(why, whycap, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
        return FETCH_MIRROR_FAILED;
    }
    uint8_t hash[UG_HASH_LEN];
    crypto_generichash_final(&s->st, hash, sizeof hash);
    if (s->got != m->size) {
        snprintf(why, whycap, "size mismatch (%llu bytes, manifest says %llu)", (unsigned long long)s->got,
                 (unsigned long long)m->size);
        return FETCH_MIRROR_FAILED;
    }
    if (sodium_memcmp(hash, m->hash, UG_HASH_LEN) != 0) {
        snprintf(why, whycap, "hash mismatch");
        return FETCH_MIRROR_FAILED;
    }
    return FETCH_OK;
}

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

/* Makes the rename durable; best effort. */
static void sync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Downloads the offer into a fresh 0600 temp file beside out, the hinted
 * mirror first and then the others in order, and renames it to out only
 * once size and hash match. Nothing is left behind on failure. */
static int download(const ug_hint *h, const char *out)
{
    const ug_manifest *m = &h->rel;
    uint8_t rnd[8];
    char hex[2 * sizeof rnd + 1];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    if ((size_t)snprintf(tmp_path, sizeof tmp_path, "%s.part-%s", out, hex) >= sizeof tmp_path)
        return ug_complain(UG_EXIT_FAIL, "%s: path too long", out);
    sink s = {.fd = open(tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
    if (s.fd < 0)
        return ug_complain(UG_EXIT_FAIL, "cannot create %s: %s", tmp_path, strerror(errno));
    tmp_live = 1;
    char why[CURL_ERROR_SIZE + 128] = "";
    const char *url = NULL, *culprit = tmp_path; /* the file a local failure is about */
    int rc = FETCH_MIRROR_FAILED;
    for (unsigned i = 0; i < m->nurls && rc == FETCH_MIRROR_FAILED; i++) {
        /* order: urls[mirror], then every other url as listed */
        unsigned k = i == 0 ? (unsigned)h->mirror : i <= h->mirror ? i - 1 : i;
        if (url)
            fprintf(stderr, "%s: download from %s failed: %s; trying the next mirror\n", ug_prog, url, why);
        url = m->urls[k];
        rc = fetch(url, m, &s, why, sizeof why);
    }
    if (rc == FETCH_OK) {
        int synced = fsync(s.fd) == 0 ? 0 : errno;
        int closed = close(s.fd) == 0 ? 0 : errno;
        s.fd = -1;
        if (synced || closed) {
            snprintf(why, sizeof why, "%s", strerror(synced ? synced : closed));
            rc = FETCH_LOCAL_FAILED;
        } else if (rename(tmp_path, out) != 0) {
            snprintf(why, sizeof why, "%s", strerror(errno));
            culprit = out;
            rc = FETCH_LOCAL_FAILED;
        } else {
            tmp_live = 0;
        }
    }
    if (s.fd >= 0)
        close(s.fd);
    if (rc != FETCH_OK) {
        unlink(tmp_path);
        tmp_live = 0;
        if (rc == FETCH_LOCAL_FAILED)
            return ug_complain(UG_EXIT_FAIL, "download failed: %s: %s", culprit, why);
        return ug_complain(UG_EXIT_FAIL, "download failed: %s from %s%s", why, url,
                        m->nurls > 1 ? " (no mirror left)" : "");
    }
    sync_dir_of(out);
    printf("upgraded package saved to %s (%llu bytes, BLAKE2b ok)\n", out, (unsigned long long)m->size);
    return UG_EXIT_OK;
}

/* ---- the offer ------------------------------------------------------ */

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

static int offer(const peer *p, const ug_hint *h)
{
    const ug_manifest *m = &h->rel;
    char to[UG_VER_MAX + 1], size[32], host[UG_URL_MAX + 1], out_buf[NAME_MAX + 1];
    if (ug_version_format(&m->to, to, sizeof to) != 0)
        snprintf(to, sizeof to, "?");
    human_size(m->size, size, sizeof size);
    url_host(m->urls[h->mirror], host, sizeof host);
    printf("upgrade offered: version %s -> %s, %s (%llu bytes) from %s\n", p->o.version, to, size,
           (unsigned long long)m->size, host);
    const char *out = p->o.out;
    if (!out && p->o.answer >= 0) { /* fail before the prompt, not after a yes */
        if (default_out(m->urls[h->mirror], out_buf, sizeof out_buf) != 0)
            return ug_complain(UG_EXIT_FAIL, "no safe file name in %s; give --out PATH", m->urls[h->mirror]);
        out = out_buf;
    }
    if (!ask(&p->o)) {
        printf("keeping version %s\n", p->o.version);
        return UG_EXIT_OK;
    }
    /* the user may have taken a while: the offer must still be valid */
    uint64_t now = ug_now();
    if (h->exp <= now || m->exp <= now)
        return ug_complain(UG_EXIT_CHECK, "HINT rejected: %s (the offer expired while we waited)",
                        ug_err_name(UG_E_EXPIRED));
    return download(h, out);
}

/* ---- main ----------------------------------------------------------- */

static const char *check_phrase(ug_err e)
{
    switch (e) {
    case UG_E_KEY: return "signed by a key that is not pinned";
    case UG_E_SIG: return "bad signature";
    case UG_E_EXPIRED: return "hint or manifest expired";
    case UG_E_UID: return "meant for another user";
    case UG_E_NONCE: return "not an answer to our HELLO";
    case UG_E_ROLLBACK: return "offered version is not newer than ours";
    case UG_E_MIRROR: return "mirror index outside the manifest's URLs";
    default: return "malformed";
    }
}

/* HELLO, COOKIE and WAIT why=6 rounds until a final answer, then acts on it. */
static int run(peer *p)
{
    size_t target = p->o.pad ? UG_DGRAM_MAX : UG_HELLO_MIN;
    unsigned cookie_rounds = 0;
    bool have_cookie = false;
    uint8_t cookie[UG_COOKIE_LEN];
    uint64_t deadline = mono_ms() + p->o.timeout_s * 1000u;
    reply r;
    for (;;) {
        ug_hello_fields f = {
            .uid = p->o.uid, .ver = p->o.version, .ts = ug_now(), .cred = p->cred, .cred_len = p->cred_len,
            .plat = p->o.plat, .chan = p->o.chan, .cookie = have_cookie ? cookie : NULL,
        };
        randombytes_buf(f.nonce, sizeof f.nonce);
        memcpy(f.pk, p->sk + UG_SEED_LEN, UG_PK_LEN); /* libsodium's sk ends with the pk */
        uint8_t hello[UG_DGRAM_MAX];
        size_t hello_len;
        if (ug_hello_build(hello, sizeof hello, &hello_len, &f, target, p->sk) != 0)
            return ug_complain(UG_EXIT_FAIL, "cannot build a HELLO of %zu bytes (credential too long?)", target);
        ug_err err = UG_OK;
        int rc = converse(p, hello, hello_len, f.nonce, deadline, &r, &err);
        if (rc == UG_EXIT_CHECK)
            return ug_complain(UG_EXIT_CHECK, "HINT rejected: %s (%s); nothing downloaded", ug_err_name(err),
                            check_phrase(err));
        if (rc != 0)
            return rc;
        switch (r.type) {
        case UG_TYPE_COOKIE:
            if (++cookie_rounds > COOKIE_ROUNDS_MAX)
                return ug_complain(UG_EXIT_FAIL, "%s keeps asking for a cookie; giving up", p->o.tracker);
            memcpy(cookie, r.cookie.cookie, sizeof cookie);
            have_cookie = true;
            continue;
        case UG_TYPE_WAIT:
            if (r.wait.why == UG_WHY_TOO_SMALL) {
                if (target == UG_DGRAM_MAX)
                    return ug_complain(UG_EXIT_FAIL, "%s says even a %u-byte HELLO is too small for its answer",
                                    p->o.tracker, UG_DGRAM_MAX);
                target = UG_DGRAM_MAX;
                continue;
            }
            return report_wait(p, &r.wait, f.ts);
        case UG_TYPE_HINT:
            return offer(p, &r.hint);
        default:
            return ug_complain(UG_EXIT_FAIL, "unexpected answer type %d", (int)r.type);
        }
    }
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
    if (sodium_init() < 0)
        ug_die(UG_EXIT_FAIL, "libsodium failed to initialise");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        ug_die(UG_EXIT_FAIL, "libcurl failed to initialise");
    struct sigaction sa = {.sa_handler = on_fatal_signal, .sa_flags = SA_RESETHAND};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    int rc = load_files(&p);
    if (rc == UG_EXIT_OK) {
        p.sock = socket(p.o.addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (p.sock >= 0 && p.o.bind && bind(p.sock, (const struct sockaddr *)&p.o.bind_addr, p.o.bind_len) != 0)
            rc = ug_complain(UG_EXIT_FAIL, "--bind %s: %s", p.o.bind, strerror(errno));
        else if (p.sock < 0 || connect(p.sock, (const struct sockaddr *)&p.o.addr, p.o.addrlen) != 0)
            rc = ug_complain(UG_EXIT_FAIL, "%s: %s", p.o.tracker, strerror(errno));
    }
    if (rc == UG_EXIT_OK)
        rc = run(&p);
    if (p.sock >= 0)
        close(p.sock);
    ug_secret_free(p.sk);
    curl_global_cleanup();
    return rc;
}
