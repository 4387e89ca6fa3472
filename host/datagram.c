/* libupgate-host's hot path: one call per datagram; replies that wait for the disk are held until a commit. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

#include "internal.h"

/* The worker a thread uses in one adapter, cached on its first call. */
static _Thread_local struct {
    uint64_t id;               /* the adapter's id; 0: none yet */
    unsigned slot;
    const ug_host_adapter *inside; /* set while this thread is inside a call */
} tls;

/* Counts made during one call, added to the slot's atomics once at its end. */
typedef struct {
    uint64_t c[UC_COUNT];
} uh_tally;

static void add(uh_slot *s, unsigned c, uint64_t n)
{
    atomic_fetch_add_explicit(&s->c[c], n, memory_order_relaxed);
}

static void tally_put(uh_slot *s, const uh_tally *t)
{
    for (unsigned c = 0; c < UC_COUNT; c++)
        if (t->c[c])
            add(s, c, t->c[c]);
}

/* Does the admin thread commit what a quiet host left held? Not for a
 * batch host (it calls ug_host_end_batch) nor for the adapter's own worker
 * (it commits before it waits). */
static bool watched(const ug_host_adapter *a)
{
    return a->model != UG_HOST_BATCH && !a->off;
}

/* A REPORT (type 5 after the prefix and version byte, in both versions):
 * nothing answers one, by design, so it is no drop. */
static bool is_report(const uint8_t *in, size_t len)
{
    return len > UG_PORT_PREFIX_LEN + 1 && in[UG_PORT_PREFIX_LEN + 1] == UG_HOST_TYPE_REPORT;
}

bool ug_host_is_upgate(const void *buf, size_t len)
{
    const uint8_t *b = buf;
    return len > UG_PORT_PREFIX_LEN && memcmp(b, UG_PORT_PREFIX, UG_PORT_PREFIX_LEN) == 0 &&
           b[UG_PORT_PREFIX_LEN] >= UG_PORT_VERSION_MIN && b[UG_PORT_PREFIX_LEN] <= UG_PORT_VERSION_MAX;
}

int ug_host_slots_init_(ug_host_adapter *a, char *err, size_t errcap)
{
    /* aligned_alloc: each slot's lock and counters on cache lines of their own */
    a->slots = aligned_alloc(64, a->nworkers * sizeof *a->slots);
    if (!a->slots) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    memset(a->slots, 0, a->nworkers * sizeof *a->slots);
    for (unsigned i = 0; i < a->nworkers; i++) {
        uh_slot *s = &a->slots[i];
        s->index = i;
        pthread_mutex_init(&s->mu, NULL);
        s->held = calloc(UG_HOST_HOLD_MAX, sizeof *s->held);
        if (!s->held) {
            snprintf(err, errcap, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* This thread's worker: assigned on its first call, in the order threads
 * come; past nworkers, threads share (the slot's lock makes that safe). */
static uh_slot *slot_of(ug_host_adapter *a)
{
    if (tls.id != a->id) {
        unsigned n = atomic_fetch_add(&a->threads, 1);
        if (n == a->nworkers)
            ug_host_logf_(a, UG_LOG_WARN, "more threads call upgate than the %u workers it was opened with: they "
                                          "share workers (correct, but they wait for each other)", a->nworkers);
        tls.id = a->id;
        tls.slot = n % a->nworkers;
    }
    return &a->slots[tls.slot];
}

unsigned ug_host_worker(ug_host_adapter *a)
{
    return slot_of(a)->index;
}

/* The counter of a send error's class (a prohibit route, an unreachable
 * network, a full buffer: the operator's metrics tell them apart). */
static unsigned send_class(int e)
{
    switch (e) {
    case EHOSTUNREACH: case ENETUNREACH: case EHOSTDOWN: case ENETDOWN: case EADDRNOTAVAIL:
        return UC_SEND_UNREACH;
    case EACCES: case EPERM:
        return UC_SEND_DENIED;
    case EAGAIN: case ENOBUFS: case ENOMEM:
        return UC_SEND_BUSY;
    default:
        return UC_SEND_OTHER;
    }
}

/* sendto() that counts; a v4-mapped destination on an IPv4-only socket is
 * sent again as plain IPv4. */
static void send_one(uh_tally *t, int fd, const struct sockaddr *to, socklen_t tolen, const uint8_t *b, size_t len)
{
    ssize_t k;
    for (int eintr = 0; (k = sendto(fd, b, len, MSG_DONTWAIT | MSG_NOSIGNAL, to, tolen)) < 0 && errno == EINTR &&
                        eintr < 4;
         eintr++)
        ;
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)to;
    if (k < 0 && errno == EAFNOSUPPORT && to->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
        struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = s6->sin6_port};
        memcpy(&s4.sin_addr, s6->sin6_addr.s6_addr + 12, 4);
        k = sendto(fd, b, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&s4, sizeof s4);
    }
    if (k >= 0) {
        t->c[UC_SENT]++;
        return;
    }
    t->c[UC_SEND_ERRORS]++;
    t->c[send_class(errno)]++;
}

/* Sends m[0..n) (the replies r[0..n)) on fd with sendmmsg: a reply the
 * kernel refuses goes through send_one (which counts it, or resends a
 * mapped address as IPv4) and the rest still go out. */
static void send_run(uh_tally *t, int fd, struct mmsghdr *m, const uh_reply *const *r, unsigned n)
{
    unsigned at = 0, eintr = 0;
    while (at < n) {
        int k = sendmmsg(fd, m + at, n - at, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k > 0) {
            at += (unsigned)k;
            t->c[UC_SENT] += (unsigned)k;
            continue;
        }
        if (k < 0 && errno == EINTR && eintr++ < 4)
            continue;
        const uh_reply *one = r[at++]; /* sendmmsg stopped at it: it alone, then the rest */
        send_one(t, one->fd, (const struct sockaddr *)&one->to, one->tolen, one->bytes, one->len);
    }
}

/* Sends the held replies that are `late` (or not), in order, one sendmmsg
 * per run of the same socket. */
static void send_held(uh_slot *s, uh_tally *t, bool late)
{
    struct mmsghdr m[UG_HOST_HOLD_MAX];
    struct iovec v[UG_HOST_HOLD_MAX];
    const uh_reply *r[UG_HOST_HOLD_MAX];
    unsigned k = 0;
    for (unsigned i = 0; i < s->n; i++) {
        const uh_reply *h = &s->held[i];
        if (h->late != late)
            continue;
        v[k] = (struct iovec){(void *)h->bytes, h->len};
        m[k].msg_hdr = (struct msghdr){.msg_name = (void *)&h->to, .msg_namelen = h->tolen, .msg_iov = &v[k],
                                       .msg_iovlen = 1};
        r[k++] = h;
    }
    for (unsigned i = 0, j; i < k; i = j) {
        for (j = i + 1; j < k && r[j]->fd == r[i]->fd; j++)
            ;
        send_run(t, r[i]->fd, m + i, r + i, j - i);
    }
}

/* The replies that need no disk (UG_HOST_BATCH keeps them for the end of
 * its batch), flush(), then the held replies go out, or are dropped when
 * it failed (the peers ask again). With the slot's lock held. */
static void commit(ug_host_adapter *a, uh_slot *s, uh_tally *t)
{
    if (s->n > s->late)
        send_held(s, t, false);
    int rc = a->api->flush(a->inst, s->index);
    t->c[UC_COMMITS]++;
    if (rc == 0) {
        if (s->late)
            send_held(s, t, true);
        t->c[UC_SENT_HELD] += s->late;
    } else {
        t->c[UC_COMMIT_FAILS]++;
        t->c[UC_HELD_BACK] += s->late;
    }
    s->n = s->late = 0;
    atomic_store_explicit(&s->dirty, false, memory_order_release);
}

/* Asks the plugin about one datagram; sends now what need not wait (or,
 * with `batch`, keeps it for the end of the batch), holds the rest.
 * Called with the slot's lock held. */
static ug_host_result answer(ug_host_adapter *a, uh_slot *s, uh_tally *t, int fd, const struct sockaddr *src,
                             socklen_t sl, const uint8_t *in, size_t len, bool batch)
{
    uh_reply *r = &s->held[s->n];
    size_t out_len = 0;
    unsigned flags = UG_REPLY_AFTER_FLUSH; /* an ABI 1.0 plugin: every reply waits */
    ug_verdict v = a->handle2 ? a->handle2(a->inst, s->index, src, sl, in, len, r->bytes, sizeof r->bytes,
                                           &out_len, &flags)
                              : a->api->handle(a->inst, s->index, src, sl, in, len, r->bytes, sizeof r->bytes,
                                               &out_len);
    t->c[UC_UPGATE]++;
    if (a->answered)
        a->answered(a->answered_ctx, &(ug_host_answer){.worker = s->index, .src = src, .srclen = sl, .in = in,
                                                        .len = len, .verdict = v, .out = r->bytes,
                                                        .out_len = v == UG_VERDICT_DROP ? 0 : out_len,
                                                        .flags = flags});
    if (!atomic_load_explicit(&s->dirty, memory_order_relaxed)) { /* a REPORT queues an outcome, too */
        atomic_store(&s->dirty, true); /* seq_cst: the admin thread's look at it pairs with its poke */
        if (watched(a))
            ug_host_admin_poke_(a);
    }
    /* PASS with a reply: the WAIT for an untargeted peer, which a host that
     * shares its port has no other service for; PASS without one: not the
     * plugin's (a host with no protocol of its own drops it), or an upgate
     * datagram nobody answers (the host's protocol never starts so) */
    if (v == UG_VERDICT_DROP || out_len == 0) {
        bool foreign = v == UG_VERDICT_PASS && a->every;
        t->c[foreign ? UC_FOREIGN : is_report(in, len) ? UC_REPORTS : UC_DROPPED]++;
        return foreign ? UG_HOST_NOT_MINE : UG_HOST_DROPPED;
    }
    if (out_len > len || out_len > sizeof r->bytes) { /* never amplify, whatever the plugin says */
        t->c[UC_OVERSIZED]++;
        return UG_HOST_DROPPED;
    }
    if (v == UG_VERDICT_PASS)
        t->c[UC_UNTARGETED]++;
    r->late = flags & UG_REPLY_AFTER_FLUSH;
    if (!r->late && !batch) {
        send_one(t, fd, src, sl, r->bytes, out_len);
        t->c[UC_SENT_NOW]++;
        return UG_HOST_SENT;
    }
    r->fd = fd, r->len = out_len;
    r->tolen = sl <= sizeof r->to ? sl : sizeof r->to;
    memcpy(&r->to, src, r->tolen);
    s->n++;
    if (!r->late) {
        t->c[UC_SENT_NOW]++;
        return UG_HOST_SENT; /* at the end of the batch */
    }
    s->late++;
    t->c[UC_HELD]++;
    return UG_HOST_HELD;
}

/* Does fd have a datagram queued? (FIONREAD: the size of the next one; a
 * socket that cannot say counts as empty, which only commits sooner.) */
static bool queued(int fd)
{
    int n = 0;
    return ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/* The other workers' held replies, when this thread found the socket empty
 * (UG_HOST_SHARED_SOCKET): their threads wait in recvfrom() now. A worker
 * whose lock is taken is busy and commits itself. */
static void commit_others(ug_host_adapter *a, const uh_slot *self)
{
    for (unsigned i = 0; i < a->nworkers; i++) {
        uh_slot *o = &a->slots[i];
        if (o == self || !atomic_load_explicit(&o->dirty, memory_order_acquire) || pthread_mutex_trylock(&o->mu))
            continue;
        uh_tally t = {0};
        if (!o->closed && atomic_load_explicit(&o->dirty, memory_order_relaxed))
            commit(a, o, &t);
        pthread_mutex_unlock(&o->mu);
        tally_put(o, &t);
    }
}

/* UG_HOST_OFFLOAD: the host's thread hands the datagram over and goes on. */
static ug_host_result hand_over(ug_host_adapter *a, int fd, const struct sockaddr *src, socklen_t srclen,
                                const void *buf, size_t len)
{
    uh_slot *s = &a->slots[0]; /* its counters only: the worker owns it */
    if (!ug_host_is_upgate(buf, len)) {
        add(s, UC_FOREIGN, 1);
        return UG_HOST_NOT_MINE;
    }
    if (atomic_load_explicit(&a->state, memory_order_relaxed) != 0)
        return UG_HOST_DROPPED; /* closing or closed */
    ug_host_result r = ug_host_offload_push_(a, fd, src, srclen, buf, len);
    if (r != UG_HOST_HELD)
        add(s, UC_RING_FULL, 1);
    return r;
}

/* Takes the slot for a call: the host's signals held (UG_HOST_DEFER_SIGNALS),
 * its lock. false when the slot is closed (then nothing is held). */
static bool enter(ug_host_adapter *a, uh_slot *s, sigset_t *old)
{
    if (a->flags & UG_HOST_DEFER_SIGNALS) /* a handler that calls exit() runs after the call */
        pthread_sigmask(SIG_BLOCK, &a->deferred, old);
    pthread_mutex_lock(&s->mu);
    if (!s->closed) {
        tls.inside = a;
        return true;
    }
    pthread_mutex_unlock(&s->mu);
    if (a->flags & UG_HOST_DEFER_SIGNALS)
        pthread_sigmask(SIG_SETMASK, old, NULL);
    return false;
}

static void leave(ug_host_adapter *a, uh_slot *s, const sigset_t *old)
{
    tls.inside = NULL;
    pthread_mutex_unlock(&s->mu);
    if (a->flags & UG_HOST_DEFER_SIGNALS)
        pthread_sigmask(SIG_SETMASK, old, NULL);
}

ug_host_result ug_host_datagram(ug_host_adapter *a, int fd, const struct sockaddr *src, socklen_t srclen,
                                const void *buf, size_t len)
{
    if (!a || len > 65535) /* no datagram is longer: a host's error value (-1 as a size) */
        return UG_HOST_NOT_MINE;
    if (a->off)
        return hand_over(a, fd, src, srclen, buf, len);
    bool mine = a->every || ug_host_is_upgate(buf, len);
    uh_slot *s = slot_of(a);
    if (!mine) {
        add(s, UC_FOREIGN, 1);
        /* the host's own datagram ends a burst only when something waits */
        if (a->model == UG_HOST_BATCH || !atomic_load_explicit(&s->dirty, memory_order_acquire))
            return UG_HOST_NOT_MINE;
    }
    sigset_t old;
    if (!enter(a, s, &old))
        return mine ? UG_HOST_DROPPED : UG_HOST_NOT_MINE;
    uh_tally t = {0};
    atomic_store_explicit(&s->last, ug_host_mono_ms_(), memory_order_relaxed); /* the host is not quiet */
    bool batch = a->model == UG_HOST_BATCH;
    ug_host_result r = mine ? answer(a, s, &t, fd, src, srclen, buf, len, batch) : UG_HOST_NOT_MINE;
    if (!batch && atomic_load_explicit(&s->dirty, memory_order_relaxed) &&
        (s->n >= UG_HOST_HOLD_MAX || !queued(fd))) {
        commit(a, s, &t);
        if (a->model == UG_HOST_SHARED_SOCKET)
            commit_others(a, s);
    } else if (s->n >= UG_HOST_HOLD_MAX) {
        commit(a, s, &t); /* a batch longer than the hold: commit part of it now */
    }
    leave(a, s, &old);
    tally_put(s, &t);
    return r;
}

ug_host_result ug_host_datagram6(ug_host_adapter *a, int fd, const uint8_t ip[16], uint16_t port, uint32_t scope_id,
                                 const void *buf, size_t len)
{
    if (!a)
        return UG_HOST_NOT_MINE;
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_scope_id = scope_id};
    memcpy(s6.sin6_addr.s6_addr, ip, 16);
    return ug_host_datagram(a, fd, (struct sockaddr *)&s6, sizeof s6, buf, len);
}

void ug_host_end_batch(ug_host_adapter *a)
{
    if (!a)
        return;
    uh_slot *s = slot_of(a);
    if (!atomic_load_explicit(&s->dirty, memory_order_acquire))
        return;
    sigset_t old;
    if (!enter(a, s, &old))
        return;
    uh_tally t = {0};
    if (atomic_load_explicit(&s->dirty, memory_order_relaxed))
        commit(a, s, &t);
    leave(a, s, &old);
    tally_put(s, &t);
}

/* A received message's bytes: its one iovec, as long as the kernel said (a
 * truncated one as long as the iovec: the plugin sees it oversized). */
static size_t msg_bytes(const struct mmsghdr *m, const uint8_t **buf)
{
    const struct iovec *v = m->msg_hdr.msg_iov;
    *buf = v->iov_base;
    return (m->msg_hdr.msg_flags & MSG_TRUNC) || m->msg_len > v->iov_len ? v->iov_len : m->msg_len;
}

void ug_host_batch(ug_host_adapter *a, int fd, struct mmsghdr *msgs, unsigned n, ug_host_result *res)
{
    const uint8_t *buf;
    if (!a || a->model != UG_HOST_BATCH || a->off) {
        for (unsigned i = 0; i < n; i++) {
            size_t len = msg_bytes(&msgs[i], &buf);
            ug_host_result r = ug_host_datagram(a, fd, msgs[i].msg_hdr.msg_name, msgs[i].msg_hdr.msg_namelen, buf, len);
            if (res)
                res[i] = r;
        }
        return;
    }
    uh_slot *s = slot_of(a);
    sigset_t old;
    bool open = enter(a, s, &old);
    uh_tally t = {0};
    for (unsigned i = 0; i < n; i++) {
        size_t len = msg_bytes(&msgs[i], &buf);
        bool mine = a->every || ug_host_is_upgate(buf, len);
        ug_host_result r = mine ? UG_HOST_DROPPED : UG_HOST_NOT_MINE;
        if (!mine)
            t.c[UC_FOREIGN]++;
        else if (open)
            r = answer(a, s, &t, fd, msgs[i].msg_hdr.msg_name, msgs[i].msg_hdr.msg_namelen, buf, len, true);
        if (open && s->n == UG_HOST_HOLD_MAX)
            commit(a, s, &t);
        if (res)
            res[i] = r;
    }
    if (open && atomic_load_explicit(&s->dirty, memory_order_relaxed))
        commit(a, s, &t);
    if (open)
        leave(a, s, &old);
    tally_put(s, &t);
}

void ug_host_worker_begin_(ug_host_adapter *a)
{
    pthread_mutex_lock(&a->slots[0].mu);
    tls.inside = a, tls.id = a->id, tls.slot = 0;
}

void ug_host_worker_one_(ug_host_adapter *a, int fd, const struct sockaddr *src, socklen_t sl, const uint8_t *buf,
                         size_t len)
{
    uh_slot *s = &a->slots[0];
    if (s->closed)
        return;
    uh_tally t = {0};
    answer(a, s, &t, fd, src, sl, buf, len, true); /* as a batch host: the replies go out at its end */
    if (s->n >= UG_HOST_HOLD_MAX)
        commit(a, s, &t);
    tally_put(s, &t);
}

void ug_host_worker_end_(ug_host_adapter *a)
{
    uh_slot *s = &a->slots[0];
    uh_tally t = {0};
    if (!s->closed && atomic_load_explicit(&s->dirty, memory_order_relaxed))
        commit(a, s, &t);
    tls.inside = NULL;
    pthread_mutex_unlock(&s->mu);
    tally_put(s, &t);
}

unsigned ug_host_commit_idle_(ug_host_adapter *a, int64_t older_than)
{
    unsigned n = 0;
    for (unsigned i = 0; watched(a) && i < a->nworkers; i++) {
        uh_slot *s = &a->slots[i];
        int64_t last = atomic_load_explicit(&s->last, memory_order_relaxed);
        if (!atomic_load_explicit(&s->dirty, memory_order_acquire) || last > older_than ||
            pthread_mutex_trylock(&s->mu))
            continue;
        uh_tally t = {0};
        if (!s->closed && atomic_load_explicit(&s->dirty, memory_order_relaxed)) {
            commit(a, s, &t);
            t.c[UC_IDLE_COMMITS]++;
            n++;
        }
        pthread_mutex_unlock(&s->mu);
        tally_put(s, &t);
    }
    return n;
}

int64_t ug_host_oldest_dirty_(ug_host_adapter *a)
{
    int64_t oldest = 0;
    for (unsigned i = 0; watched(a) && i < a->nworkers; i++) {
        uh_slot *s = &a->slots[i];
        if (!atomic_load(&s->dirty))
            continue;
        int64_t last = atomic_load_explicit(&s->last, memory_order_relaxed);
        if (last && (!oldest || last < oldest))
            oldest = last;
    }
    return oldest;
}

bool ug_host_slots_close_(ug_host_adapter *a)
{
    bool inside = tls.inside == a;
    uh_slot *mine = inside ? &a->slots[tls.slot] : NULL;
    for (unsigned i = 0; i < a->nworkers; i++) {
        uh_slot *s = &a->slots[i];
        if (s == mine) /* its lock is ours, and the plugin is mid-call on it */
            continue;
        uh_tally t = {0};
        pthread_mutex_lock(&s->mu);
        if (atomic_load_explicit(&s->dirty, memory_order_relaxed))
            commit(a, s, &t);
        s->closed = true;
        pthread_mutex_unlock(&s->mu);
        tally_put(s, &t);
    }
    if (mine)
        mine->closed = true; /* read by other threads only under the lock this thread holds */
    return inside;
}

void ug_host_slots_free_(ug_host_adapter *a)
{
    if (!a->slots)
        return;
    for (unsigned i = 0; i < a->nworkers; i++) {
        free(a->slots[i].held);
        pthread_mutex_destroy(&a->slots[i].mu);
    }
    free(a->slots);
    a->slots = NULL;
}

void ug_host_counters_get(const ug_host_adapter *a, ug_host_counters *out, size_t size)
{
    uint64_t v[UC_COUNT] = {0};
    for (unsigned i = 0; a && a->slots && i < a->nworkers; i++)
        for (unsigned c = 0; c < UC_COUNT; c++)
            v[c] += atomic_load_explicit(&a->slots[i].c[c], memory_order_relaxed);
    ug_host_counters k = {
        .upgate = v[UC_UPGATE], .foreign = v[UC_FOREIGN], .sent_now = v[UC_SENT_NOW], .held = v[UC_HELD],
        .sent_held = v[UC_SENT_HELD], .held_back = v[UC_HELD_BACK], .dropped = v[UC_DROPPED],
        .commits = v[UC_COMMITS], .commit_fails = v[UC_COMMIT_FAILS], .idle_commits = v[UC_IDLE_COMMITS],
        .send_errors = v[UC_SEND_ERRORS], .oversized = v[UC_OVERSIZED], .ring_full = v[UC_RING_FULL],
        .sent = v[UC_SENT], .send_unreach = v[UC_SEND_UNREACH], .send_denied = v[UC_SEND_DENIED],
        .send_busy = v[UC_SEND_BUSY], .send_other = v[UC_SEND_OTHER], .untargeted = v[UC_UNTARGETED], .reports = v[UC_REPORTS],
        .control_requests = a ? atomic_load_explicit(&a->ctl_served, memory_order_relaxed) : 0,
    };
    memcpy(out, &k, size < sizeof k ? size : sizeof k);
}
