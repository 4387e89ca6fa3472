/* The load generator's machinery (see loadgen.h): pools of signed HELLOs,
 * windowed sendmmsg/recvmmsg from many sockets, the server's CPU from /proc. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "common.h"
#include "loadgen.h"

static const uint8_t ug_prefix[5] = {0x95, 0xa2, 0x55, 0x47, 0x01};

double lg_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&t, NULL);
}

/* ---- keys and credentials -------------------------------------------- */

int lg_keys_load(lg_keys *k, const char *dir, char *why, size_t whycap)
{
    memset(k, 0, sizeof *k);
    char path[4096], err[256];
    snprintf(path, sizeof path, "%s/issuer.key", dir);
    k->issuer_sk = ug_seckey_load(path, err, sizeof err);
    if (!k->issuer_sk) {
        snprintf(why, whycap, "%s: %s", path, err);
        return -1;
    }
    snprintf(path, sizeof path, "%s/client.key", dir);
    k->client_sk = ug_seckey_load(path, err, sizeof err);
    if (!k->client_sk) {
        snprintf(why, whycap, "%s: %s", path, err);
        lg_keys_free(k);
        return -1;
    }
    memcpy(k->issuer_pk, k->issuer_sk + UG_SEED_LEN, UG_PK_LEN);
    memcpy(k->client_pk, k->client_sk + UG_SEED_LEN, UG_PK_LEN);
    return 0;
}

void lg_keys_free(lg_keys *k)
{
    if (k->issuer_sk)
        ug_secret_free(k->issuer_sk);
    if (k->client_sk)
        ug_secret_free(k->client_sk);
    k->issuer_sk = k->client_sk = NULL;
}

int lg_creds_issue(lg_creds *c, const lg_keys *k, uint64_t base, size_t n, uint64_t exp)
{
    memset(c, 0, sizeof *c);
    if (n == 0 || n > LG_PEERS_MAX || base == 0 || base > UG_UID_MAX - n)
        return -1;
    c->obj = malloc(n * LG_CRED_MAX);
    c->len = malloc(n);
    if (!c->obj || !c->len) {
        lg_creds_free(c);
        return -1;
    }
    c->base = base;
    c->n = n;
    ug_cred cr = {.exp = exp};
    memcpy(cr.pk, k->client_pk, UG_PK_LEN);
    ug_kid(cr.kid, k->issuer_pk);
    for (size_t i = 0; i < n; i++) {
        uint8_t body[128];
        size_t blen, olen;
        cr.uid = base + i;
        if (ug_cred_encode_body(body, sizeof body, &blen, &cr) != 0 ||
            ug_signed_encode(c->obj + i * LG_CRED_MAX, LG_CRED_MAX, &olen, UG_CTX_CRED, body, blen, k->issuer_sk) != 0) {
            lg_creds_free(c);
            return -1;
        }
        c->len[i] = (uint8_t)olen;
    }
    return 0;
}

const uint8_t *lg_cred(const lg_creds *c, uint64_t uid, size_t *len)
{
    if (uid < c->base || uid - c->base >= c->n)
        return NULL;
    *len = c->len[uid - c->base];
    return c->obj + (uid - c->base) * LG_CRED_MAX;
}

void lg_creds_free(lg_creds *c)
{
    free(c->obj);
    free(c->len);
    memset(c, 0, sizeof *c);
}

/* ---- pools ------------------------------------------------------------- */

int lg_pool_init(lg_pool *p, size_t cap)
{
    memset(p, 0, sizeof *p);
    if (cap == 0 || cap > LG_POOL_MAX)
        return -1;
    p->buf = malloc(cap * UG_DGRAM_MAX);
    p->len = malloc(cap * sizeof *p->len);
    p->uid = malloc(cap * sizeof *p->uid);
    if (!p->buf || !p->len || !p->uid) {
        lg_pool_free(p);
        return -1;
    }
    p->cap = cap;
    return 0;
}

void lg_pool_free(lg_pool *p)
{
    free(p->buf);
    free(p->len);
    free(p->uid);
    memset(p, 0, sizeof *p);
}

lg_pool lg_pool_view(const lg_pool *p, size_t first, size_t n)
{
    lg_pool v = {0};
    if (first >= p->n)
        return v;
    if (n > p->n - first)
        n = p->n - first;
    v.buf = p->buf + first * UG_DGRAM_MAX;
    v.len = p->len + first;
    v.uid = p->uid + first;
    v.n = v.cap = n;
    return v;
}

int lg_pool_add_hello(lg_pool *p, const lg_keys *k, uint64_t uid, const uint8_t *cred, size_t cred_len,
                      const char *ver, size_t size, uint64_t now)
{
    if (p->n >= p->cap)
        return -1;
    ug_hello_fields h = {.uid = uid, .ver = ver, .ts = now, .cred = cred, .cred_len = cred_len};
    randombytes_buf(h.nonce, sizeof h.nonce);
    memcpy(h.pk, k->client_pk, UG_PK_LEN);
    size_t len;
    if (ug_hello_build(p->buf + p->n * UG_DGRAM_MAX, UG_DGRAM_MAX, &len, &h, size, k->client_sk) != 0)
        return -1;
    p->len[p->n] = (uint16_t)len;
    p->uid[p->n] = uid;
    p->n++;
    return 0;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static bool hello_refused(const uint8_t *d, size_t len)
{
    ug_hello h;
    ug_dgram dg;
    ug_err e;
    return ug_hello_parse(&h, &dg, d, len, &e) != 0;
}

int lg_pool_add_garbage(lg_pool *p, const uint8_t *hello, size_t len, uint32_t seed)
{
    if (p->n >= p->cap || len < sizeof ug_prefix || len > UG_DGRAM_MAX)
        return -1;
    uint8_t *d = p->buf + p->n * UG_DGRAM_MAX;
    uint64_t s = seed;
    bool done = false;
    /* most of a HELLO is pad and signature, where a damaged byte still
     * parses: damage random bytes until the decoder refuses the result */
    for (int tries = 0; seed % 8 != 0 && tries < 256 && !done; tries++) {
        memcpy(d, hello, len);
        size_t at = sizeof ug_prefix + splitmix(&s) % (len - sizeof ug_prefix);
        d[at] ^= (uint8_t)(1 + splitmix(&s) % 255);
        done = hello_refused(d, len);
    }
    if (!done) { /* one in eight, or no luck: noise after the prefix */
        memcpy(d, ug_prefix, sizeof ug_prefix);
        for (size_t i = sizeof ug_prefix; i < len; i++)
            d[i] = (uint8_t)splitmix(&s);
        if (!hello_refused(d, len))
            return -1;
    }
    p->len[p->n] = (uint16_t)len;
    p->uid[p->n] = 0;
    p->n++;
    return 0;
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

uint64_t lg_walk(uint64_t base, uint64_t peers, uint64_t salt, uint64_t i)
{
    if (peers <= 1)
        return base;
    uint64_t s = salt;
    uint64_t a = 1 + splitmix(&s) % (peers - 1), b = splitmix(&s) % peers;
    while (gcd(a, peers) != 1) /* an affine map mod peers is a permutation when a is coprime */
        a = a % (peers - 1) + 1;
    return base + (uint64_t)(((unsigned __int128)a * (i % peers) + b) % peers);
}

bool lg_percent_selects(const char *salt, uint64_t uid, uint32_t bp)
{
    return ug_percent_bucket(salt, strlen(salt), uid) < bp;
}

/* ---- targets and sockets ---------------------------------------------- */

int lg_parse_target(const char *s, struct sockaddr_storage *ss, socklen_t *len, char *why, size_t whycap)
{
    char host[64];
    const char *port;
    const char *colon = strrchr(s, ':');
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            goto bad;
        hl = (size_t)(close - s - 1);
        if (hl >= sizeof host)
            goto bad;
        memcpy(host, s + 1, hl);
        port = close + 2;
    } else {
        if (!colon || strchr(s, ':') != colon || (hl = (size_t)(colon - s)) >= sizeof host)
            goto bad;
        memcpy(host, s, hl);
        port = colon + 1;
    }
    host[hl] = 0;
    uint64_t p;
    if (ug_parse_u64(port, 1, 65535, &p) != 0)
        goto bad;
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (s[0] != '[' && inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        if ((ntohl(s4->sin_addr.s_addr) >> 24) != 127) {
            snprintf(why, whycap, "%s: not a loopback address (127.0.0.0/8 or ::1 only)", s);
            return -1;
        }
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)p);
        *len = sizeof *s4;
        return 0;
    }
    if (s[0] == '[' && inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr)) {
            snprintf(why, whycap, "%s: not a loopback address (127.0.0.0/8 or ::1 only)", s);
            return -1;
        }
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)p);
        *len = sizeof *s6;
        return 0;
    }
bad:
    snprintf(why, whycap, "%s: not a numeric 127.x.y.z:PORT or [::1]:PORT", s);
    return -1;
}

int lg_conn_open(lg_conn *c, const struct sockaddr_storage *to, socklen_t tolen, unsigned sockets, char *why,
                 size_t whycap)
{
    memset(c, 0, sizeof *c);
    memcpy(&c->to, to, tolen);
    c->tolen = tolen;
    if (sockets == 0 || sockets > LG_SOCKETS_MAX) {
        snprintf(why, whycap, "sockets: 1..%u", LG_SOCKETS_MAX);
        return -1;
    }
    for (unsigned i = 0; i < sockets; i++) {
        int fd = socket(to->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int buf = 4 << 20;
        if (fd < 0) {
            snprintf(why, whycap, "socket: %s", strerror(errno));
            lg_conn_close(c);
            return -1;
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
        c->fd[c->n++] = fd;
        if (connect(fd, (const struct sockaddr *)to, tolen) != 0) {
            snprintf(why, whycap, "connect: %s", strerror(errno));
            lg_conn_close(c);
            return -1;
        }
    }
    return 0;
}

void lg_conn_close(lg_conn *c)
{
    for (unsigned i = 0; i < c->n; i++)
        close(c->fd[i]);
    c->n = 0;
}

/* ---- the server's side, from /proc ------------------------------------- */

int lg_cpu_ns(pid_t pid, uint64_t *ns)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    uint64_t sum = 0;
    unsigned seen = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char f[128];
        snprintf(f, sizeof f, "/proc/%d/task/%.20s/schedstat", (int)pid, e->d_name);
        FILE *fp = fopen(f, "r");
        unsigned long long v;
        if (fp && fscanf(fp, "%llu", &v) == 1) {
            sum += v;
            seen++;
        }
        if (fp)
            fclose(fp);
    }
    closedir(d);
    *ns = sum;
    return seen ? 0 : -1;
}

/* /proc/net/udp prints an address as the 32-bit words of its bytes in
 * host order, %08X each: read them back the same way. */
static bool addr_matches(const char *hex, size_t hexlen, const struct sockaddr_storage *to)
{
    size_t words = to->ss_family == AF_INET ? 1 : 4;
    if (hexlen != words * 8)
        return false;
    uint32_t got[4], want[4], zero[4] = {0};
    for (size_t i = 0; i < words; i++) {
        char w[9];
        memcpy(w, hex + 8 * i, 8);
        w[8] = 0;
        got[i] = (uint32_t)strtoul(w, NULL, 16);
    }
    if (to->ss_family == AF_INET)
        memcpy(want, &((const struct sockaddr_in *)to)->sin_addr, 4);
    else
        memcpy(want, &((const struct sockaddr_in6 *)to)->sin6_addr, 16);
    return memcmp(got, want, words * 4) == 0 || memcmp(got, zero, words * 4) == 0;
}

int lg_udp_queue(const struct sockaddr_storage *to, uint64_t *rx_bytes, uint64_t *drops)
{
    bool v4 = to->ss_family == AF_INET;
    unsigned port = ntohs(v4 ? ((const struct sockaddr_in *)to)->sin_port : ((const struct sockaddr_in6 *)to)->sin6_port);
    FILE *f = fopen(v4 ? "/proc/net/udp" : "/proc/net/udp6", "r");
    if (!f)
        return -1;
    char line[512];
    *rx_bytes = *drops = 0;
    if (!fgets(line, sizeof line, f)) { /* the header */
        fclose(f);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        char local[40];
        unsigned lport;
        unsigned long rxq;
        unsigned long long dr;
        if (sscanf(line, " %*u: %39[0-9A-Fa-f]:%x %*s %*x %*x:%lx %*s %*s %*s %*s %*s %*s %*s %llu", local, &lport,
                   &rxq, &dr) != 4)
            continue;
        if (lport != port || !addr_matches(local, strlen(local), to))
            continue;
        *rx_bytes += rxq;
        *drops += dr;
    }
    fclose(f);
    return 0;
}

/* ---- the run ------------------------------------------------------------ */

static unsigned reply_type(const uint8_t *b, size_t len)
{
    if (len < 6 || memcmp(b, ug_prefix, sizeof ug_prefix) != 0 || b[5] >= LG_TYPES)
        return LG_OTHER;
    return b[5];
}

/* Reads every reply waiting on socket k; returns how many. Only the first
 * bytes are read: the type is all we count. */
static unsigned drain_socket(lg_conn *c, unsigned k, lg_result *r)
{
    uint8_t head[LG_BATCH][8];
    struct mmsghdr rx[LG_BATCH];
    struct iovec rxv[LG_BATCH];
    unsigned got = 0;
    for (int rounds = 0; rounds < 64; rounds++) {
        for (unsigned i = 0; i < LG_BATCH; i++) {
            rxv[i] = (struct iovec){head[i], sizeof head[i]};
            rx[i].msg_hdr = (struct msghdr){.msg_iov = &rxv[i], .msg_iovlen = 1};
        }
        int n = recvmmsg(c->fd[k], rx, LG_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            if (n < 0 && errno == ECONNREFUSED)
                r->refused++;
            break;
        }
        for (int i = 0; i < n; i++)
            r->by_type[reply_type(head[i], rx[i].msg_len)]++;
        got += (unsigned)n;
        if (n < (int)LG_BATCH)
            break;
    }
    r->replies += got;
    return got;
}

/* Waits (at most `limit` seconds) until the target's sockets hold nothing
 * more to read, draining our own meanwhile; then lets the server go back
 * to sleep so its schedstat is exact. Returns when the queue emptied. */
static double settle(lg_conn *c, lg_result *r, double limit)
{
    double t0 = lg_now(), emptied = t0;
    for (;;) {
        uint64_t rxq = 0, drops;
        for (unsigned k = 0; k < c->n; k++)
            drain_socket(c, k, r);
        emptied = lg_now();
        if (lg_udp_queue(&c->to, &rxq, &drops) != 0 || rxq == 0 || emptied - t0 > limit)
            break;
        sleep_s(0.001);
    }
    sleep_s(0.005);
    for (unsigned k = 0; k < c->n; k++)
        drain_socket(c, k, r);
    return emptied;
}

unsigned lg_socket_of(uint64_t uid, uint64_t i, unsigned k)
{
    uint64_t x = uid ? uid : i + 1;
    return (unsigned)(splitmix(&x) % k);
}

/* The pool's indices grouped by the socket each datagram leaves from:
 * q[first[k] .. first[k+1]) is socket k's queue, in pool order. */
static uint32_t *by_socket(const lg_pool *p, unsigned k, size_t *first)
{
    uint32_t *q = malloc(p->n * sizeof *q);
    if (!q)
        return NULL;
    memset(first, 0, (k + 1) * sizeof *first);
    for (size_t i = 0; i < p->n; i++)
        first[lg_socket_of(p->uid[i], i, k) + 1]++;
    for (unsigned s = 0; s < k; s++)
        first[s + 1] += first[s];
    size_t fill[LG_SOCKETS_MAX];
    memcpy(fill, first, k * sizeof *fill);
    for (size_t i = 0; i < p->n; i++)
        q[fill[lg_socket_of(p->uid[i], i, k)]++] = (uint32_t)i;
    return q;
}

/* One run's sending side: each socket's queue of pool indexes (by_socket),
 * where it stands in it, and its window of replies awaited. */
typedef struct {
    lg_conn *c;
    const lg_pool *p;
    lg_result *r;
    uint32_t *q;
    size_t first[LG_SOCKETS_MAX + 1], pos[LG_SOCKETS_MAX];
    unsigned inflight[LG_SOCKETS_MAX];
    double quiet[LG_SOCKETS_MAX]; /* since when socket k has waited for a reply */
    uint64_t total, next;         /* datagrams to send, sent */
    bool cycle;                   /* more than the pool: queues wrap around */
    unsigned window;              /* replies awaited per socket; 0: open loop */
    double last;                  /* when the last datagram went or came */
} lg_send;

/* Sends each socket's next batch (what its window and queue allow) at time
 * t; false when no socket had anything left to send. */
static bool send_batches(lg_send *st, double t)
{
    struct mmsghdr tx[LG_BATCH];
    struct iovec txv[LG_BATCH];
    bool more = false;
    for (unsigned k = 0; k < st->c->n && st->next < st->total; k++) {
        size_t qlen = st->first[k + 1] - st->first[k];
        size_t left = st->cycle ? SIZE_MAX : qlen - st->pos[k];
        unsigned want = st->window ? st->window - st->inflight[k] : LG_BATCH;
        want = want > LG_BATCH ? LG_BATCH : want;
        want = want > st->total - st->next ? (unsigned)(st->total - st->next) : want;
        want = want > left ? (unsigned)left : want;
        more = more || left > 0;
        if (!want || !qlen)
            continue;
        for (unsigned j = 0; j < want; j++) {
            size_t idx = st->q[st->first[k] + (st->pos[k] + j) % qlen];
            txv[j] = (struct iovec){st->p->buf + idx * UG_DGRAM_MAX, st->p->len[idx]};
            tx[j].msg_hdr = (struct msghdr){.msg_iov = &txv[j], .msg_iovlen = 1};
        }
        int s = sendmmsg(st->c->fd[k], tx, want, MSG_DONTWAIT);
        if (s > 0) {
            if (st->window && !st->inflight[k])
                st->quiet[k] = t;
            st->inflight[k] += st->window ? (unsigned)s : 0;
            st->pos[k] = st->cycle ? (st->pos[k] + (size_t)s) % qlen : st->pos[k] + (size_t)s;
            st->next += (uint64_t)s;
            st->r->sent += (uint64_t)s;
            st->last = t;
        } else if (s < 0 && errno == ECONNREFUSED) {
            st->r->refused++;
        }
    }
    return more;
}

/* Replies awaited over every socket; *room: some socket may send more. */
static unsigned outstanding(const lg_send *st, bool *room)
{
    unsigned n = 0;
    *room = false;
    for (unsigned k = 0; k < st->c->n; k++) {
        n += st->inflight[k];
        *room = *room || !st->window || st->inflight[k] < st->window;
    }
    return n;
}

/* Reads what has come (waiting up to 5 ms when no socket may send), each
 * reply opening its socket's window; returns the time now if anything came,
 * else t. */
static double receive(lg_send *st, bool room, double t)
{
    struct pollfd pf[LG_SOCKETS_MAX];
    for (unsigned k = 0; k < st->c->n; k++)
        pf[k] = (struct pollfd){.fd = st->c->fd[k], .events = POLLIN};
    if (poll(pf, st->c->n, room ? 0 : 5) <= 0)
        return t;
    t = lg_now();
    for (unsigned k = 0; k < st->c->n; k++) {
        if (!pf[k].revents)
            continue;
        unsigned got = drain_socket(st->c, k, st->r);
        if (st->window && got) {
            st->inflight[k] -= got < st->inflight[k] ? got : st->inflight[k];
            st->quiet[k] = t;
            st->last = t;
        }
    }
    return t;
}

/* Counts as lost what a socket has awaited longer than lost_after; stops
 * sending when a whole window was lost on every socket and nothing ever
 * answered: nobody is answering, and waiting for each window would be long. */
static void expire(lg_send *st, double t, double lost_after)
{
    for (unsigned k = 0; st->window && k < st->c->n; k++) {
        if (st->inflight[k] && t - st->quiet[k] > lost_after) {
            st->r->lost += st->inflight[k];
            st->inflight[k] = 0;
        }
    }
    if (st->window && !st->r->replies && st->r->lost >= (uint64_t)st->window * st->c->n)
        st->total = st->next;
}

int lg_run(lg_conn *c, const lg_pool *p, const lg_opts *o, lg_result *r, char *why, size_t whycap)
{
    memset(r, 0, sizeof *r);
    lg_send st = {.c = c, .p = p, .r = r};
    st.q = p->n && c->n ? by_socket(p, c->n, st.first) : NULL;
    if (!st.q) {
        snprintf(why, whycap, p->n && c->n ? "out of memory" : "nothing to send");
        return -1;
    }
    st.total = o->count ? o->count : p->n;
    st.cycle = st.total > p->n; /* else each socket sends its queue once */
    st.window = o->window > LG_WINDOW_MAX ? LG_WINDOW_MAX : o->window;
    double lost_after = o->lost_after > 0 ? o->lost_after : LG_LOST_AFTER;
    uint64_t cpu0 = 0, rxq, drops0 = 0, drops1 = 0;
    bool qok = lg_udp_queue(&c->to, &rxq, &drops0) == 0;
    for (unsigned k = 0; k < c->n; k++) /* stale replies of an earlier run */
        drain_socket(c, k, &(lg_result){0});
    r->cpu_ok = o->pid && lg_cpu_ns(o->pid, &cpu0) == 0;
    double t0 = lg_now(), stop_at = o->seconds > 0 ? t0 + o->seconds : HUGE_VAL;
    st.last = t0;
    for (;;) {
        double t = lg_now();
        if (st.next < st.total && t < stop_at && !send_batches(&st, t))
            st.total = st.next; /* every queue sent once */
        bool room;
        unsigned awaited = outstanding(&st, &room);
        if (st.next >= st.total || t >= stop_at) {
            if (!awaited)
                break;
            room = false;
        }
        expire(&st, receive(&st, room, t), lost_after);
    }
    free(st.q);
    double emptied = settle(c, r, 2.0);
    r->seconds = (st.window ? st.last : emptied) - t0;
    uint64_t cpu1 = 0;
    if (r->cpu_ok && lg_cpu_ns(o->pid, &cpu1) == 0 && cpu1 >= cpu0)
        r->cpu_ns = cpu1 - cpu0;
    else
        r->cpu_ok = false;
    if (qok && lg_udp_queue(&c->to, &rxq, &drops1) == 0 && drops1 >= drops0)
        r->kernel_drops = drops1 - drops0;
    if (!r->sent) {
        snprintf(why, whycap, "no datagram could be sent");
        return -1;
    }
    return 0;
}
