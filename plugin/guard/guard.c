/* Per-worker memory of the expensive path: replay cache, credential cache, prefix budgets. */
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "policy/addr.h"
#include "guard/guard.h"
#include "util/clock.h"
#include "util/mix.h"

typedef struct ug_replay_entry ug_replay_entry;

struct ug_replay_entry {
    uint8_t key[UG_KEY_LEN];
    uint64_t at, tag, used; /* used: its clock at the last store or hit */
    uint8_t *heap;          /* a reply over UG_REPLAY_INLINE bytes, else NULL */
    uint16_t len;
    uint8_t flags;
    uint8_t inl[UG_REPLAY_INLINE];
};

typedef struct {
    _Alignas(64) pthread_mutex_t mu;
    uint64_t clock; /* counts uses in its sets, to tell least recently used */
} replay_stripe;

struct ug_replay {
    ug_replay_entry *e;
    uint32_t sets;
    replay_stripe *stripes; /* shared: UG_REPLAY_STRIPES locks; NULL: one owner */
    uint64_t clock;         /* one owner's use counter */
    uint8_t secret[16];     /* keys ug_replay_key */
};

/* 16 bytes: 12 of the key's digest (its first 4 chose the set) and the
 * use that tells the least recently used. The policy generation is in the
 * digest (its salt), so an entry of an older policy matches nothing and
 * ages out first: nothing touches it again. used == 0: empty. */
struct ug_cred_entry {
    uint8_t fp[UG_CRED_FP];
    uint32_t used;
};
_Static_assert(sizeof(struct ug_cred_entry) == 16, "a credential cache entry is 16 bytes");
_Static_assert(4 + UG_CRED_FP == UG_KEY_LEN, "the set's bytes and the entry's make the key");

struct ug_budget_entry {
    uint64_t tag; /* 0: empty */
    uint64_t last, used;
    double tokens;
};

ug_replay *ug_replay_new(uint32_t sets, bool shared)
{
    ug_replay *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->sets = sets;
    r->e = calloc((size_t)sets * UG_REPLAY_WAYS, sizeof *r->e);
    if (shared) {
        r->stripes = aligned_alloc(64, UG_REPLAY_STRIPES * sizeof *r->stripes);
        for (unsigned i = 0; r->stripes && i < UG_REPLAY_STRIPES; i++) {
            pthread_mutex_init(&r->stripes[i].mu, NULL);
            r->stripes[i].clock = 0;
        }
    }
    randombytes_buf(r->secret, sizeof r->secret);
    if (r->e && (r->stripes || !shared))
        return r;
    free(r->e);
    free(r->stripes);
    free(r);
    return NULL;
}

void ug_replay_free(ug_replay *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < (size_t)r->sets * UG_REPLAY_WAYS; i++)
        free(r->e[i].heap);
    for (unsigned i = 0; r->stripes && i < UG_REPLAY_STRIPES; i++)
        pthread_mutex_destroy(&r->stripes[i].mu);
    free(r->stripes);
    free(r->e);
    sodium_memzero(r->secret, sizeof r->secret);
    free(r);
}

uint32_t ug_guard_cred_sets(unsigned nworkers, bool roaming)
{
    if (roaming || nworkers <= 1)
        return UG_CRED_SETS;
    uint32_t sets = UG_CRED_SETS / nworkers;
    return sets < UG_CRED_SETS_MIN ? UG_CRED_SETS_MIN : sets;
}

int ug_guard_init(ug_guard *g, uint32_t cred_sets)
{
    memset(g, 0, sizeof *g);
    g->replay = ug_replay_new(UG_REPLAY_SETS, false);
    g->own_replay = true;
    g->cred_sets = cred_sets ? cred_sets : 1;
    g->cred = calloc((size_t)g->cred_sets * UG_CRED_WAYS, sizeof *g->cred);
    g->budget = calloc(UG_BUDGET_SETS * UG_BUDGET_WAYS, sizeof *g->budget);
    g->report_net = calloc(UG_BUDGET_SETS * UG_BUDGET_WAYS, sizeof *g->report_net);
    randombytes_buf(g->budget_key, sizeof g->budget_key);
    if (g->replay && g->cred && g->budget && g->report_net)
        return 0;
    ug_guard_free(g);
    return -1;
}

void ug_guard_share_replay(ug_guard *g, ug_replay *r)
{
    if (g->own_replay)
        ug_replay_free(g->replay);
    g->replay = r;
    g->own_replay = false;
}

void ug_guard_free(ug_guard *g)
{
    if (g->own_replay)
        ug_replay_free(g->replay);
    free(g->cred);
    free(g->budget);
    free(g->report_net);
    g->report_net = NULL;
    g->replay = NULL, g->cred = NULL, g->budget = NULL;
}

static uint32_t set_of(const uint8_t key[UG_KEY_LEN], uint32_t sets)
{
    uint32_t v;
    memcpy(&v, key, sizeof v);
    return v % sets;
}

/* A keyed 128-bit PRF rather than BLAKE2b: with the key secret, nobody can
 * choose a collision, and SipHash costs 0.45 us on a full HELLO where
 * BLAKE2b costs 1.15 us, 1.2% of a sticky re-offer's whole cost. */
_Static_assert(sizeof ((ug_replay *)0)->secret == crypto_shorthash_siphashx24_KEYBYTES, "replay secret");
_Static_assert(UG_KEY_LEN == crypto_shorthash_siphashx24_BYTES, "replay key");

void ug_replay_key(const ug_guard *g, uint8_t key[UG_KEY_LEN], const struct sockaddr *src, const uint8_t *in,
                   size_t len)
{
    uint8_t buf[UG_ADDR_KEY_MAX + UG_KEY_LEN];
    size_t n = ug_addr_key(src, buf);
    crypto_shorthash_siphashx24(buf + n, in, len, g->replay->secret);
    crypto_shorthash_siphashx24(key, buf, n + UG_KEY_LEN, g->replay->secret);
}

/* key's set, with its stripe locked when the cache is shared; *clock the
 * counter of uses that tells the set's least recently used way. */
static ug_replay_entry *replay_enter(ug_replay *r, const uint8_t key[UG_KEY_LEN], uint64_t **clock)
{
    uint32_t set = set_of(key, r->sets);
    *clock = &r->clock;
    if (r->stripes) {
        replay_stripe *st = &r->stripes[set % UG_REPLAY_STRIPES];
        pthread_mutex_lock(&st->mu);
        *clock = &st->clock;
    }
    return &r->e[(size_t)UG_REPLAY_WAYS * set];
}

static void replay_leave(ug_replay *r, const uint8_t key[UG_KEY_LEN])
{
    if (r->stripes)
        pthread_mutex_unlock(&r->stripes[set_of(key, r->sets) % UG_REPLAY_STRIPES].mu);
}

size_t ug_replay_find(ug_guard *g, const uint8_t key[UG_KEY_LEN], uint64_t now, uint64_t tag, uint8_t *out,
                      size_t cap, unsigned *flags)
{
    uint64_t *clock;
    ug_replay_entry *set = replay_enter(g->replay, key, &clock);
    size_t len = 0;
    for (unsigned way = 0; way < UG_REPLAY_WAYS && !len; way++) {
        ug_replay_entry *e = &set[way];
        if (e->len == 0 || e->len > cap || e->tag != tag || now < e->at || now - e->at > UG_REPLAY_TTL ||
            memcmp(e->key, key, UG_KEY_LEN) != 0)
            continue;
        memcpy(out, e->heap ? e->heap : e->inl, e->len);
        e->used = ++*clock;
        *flags = e->flags;
        len = e->len;
    }
    replay_leave(g->replay, key);
    return len;
}

/* e remembers reply; false when a long reply finds no memory (not
 * remembering costs a retransmit its signature work, nothing else). */
static bool replay_put(ug_replay_entry *e, const uint8_t key[UG_KEY_LEN], uint64_t now, uint64_t tag,
                       const uint8_t *reply, size_t len, unsigned flags, uint64_t use)
{
    uint8_t *heap = NULL;
    if (len > UG_REPLAY_INLINE) {
        heap = e->heap && e->len >= len ? e->heap : realloc(e->heap, len);
        if (!heap)
            return false;
    } else {
        free(e->heap);
    }
    memcpy(e->key, key, UG_KEY_LEN);
    e->at = now;
    e->tag = tag;
    e->len = (uint16_t)len;
    e->flags = (uint8_t)flags;
    e->used = use;
    e->heap = heap;
    memcpy(heap ? heap : e->inl, reply, len);
    return true;
}

void ug_replay_store(ug_guard *g, const uint8_t key[UG_KEY_LEN], uint64_t now, uint64_t tag, const uint8_t *reply,
                     size_t len, unsigned flags)
{
    if (len == 0 || len > UG_DGRAM_MAX)
        return;
    uint64_t *clock;
    ug_replay_entry *set = replay_enter(g->replay, key, &clock), *e = &set[0];
    /* an empty way has used == 0, so it goes first; else the least recently
     * used (clock seconds tie too often to decide by age) */
    for (unsigned way = 1; way < UG_REPLAY_WAYS; way++)
        if (set[way].used < e->used)
            e = &set[way];
    (void)replay_put(e, key, now, tag, reply, len, flags, ++*clock);
    replay_leave(g->replay, key);
}

/* The next use of g's credential cache; never 0, which marks an empty way. */
static uint32_t cred_tick(ug_guard *g)
{
    return ++g->cred_clock ? g->cred_clock : ++g->cred_clock;
}

/* A false hit would let an unverified credential pass: the key is a
 * digest of every byte that was verified (body and signature, under the
 * generation that named the issuers), and an entry matches on 4 + 12
 * bytes of it, of which at least log2(UG_CRED_SETS_MIN) = 10 bits choose
 * the set: 106 bits or more. A forgery that lands on one of a worker's
 * 2^18 entries costs 2^88 BLAKE2b evaluations (a second preimage; the
 * digest is unkeyed, so an attacker who reads the cache gains nothing). */
bool ug_credcache_has(ug_guard *g, const ug_signed *cred, uint64_t gen, uint8_t key_out[UG_KEY_LEN])
{
    uint8_t salt[crypto_generichash_blake2b_SALTBYTES] = {0};
    for (unsigned i = 0; i < 8; i++)
        salt[i] = (uint8_t)(gen >> (8 * i));
    (void)crypto_generichash_blake2b_salt_personal(key_out, UG_KEY_LEN, cred->raw, cred->raw_len, NULL, 0, salt,
                                                   NULL);
    ug_cred_entry *set = &g->cred[UG_CRED_WAYS * set_of(key_out, g->cred_sets)];
    for (unsigned way = 0; way < UG_CRED_WAYS && gen != 0; way++)
        if (set[way].used != 0 && memcmp(set[way].fp, key_out + 4, UG_CRED_FP) == 0) {
            set[way].used = cred_tick(g);
            return true;
        }
    return false;
}

void ug_credcache_put(ug_guard *g, const uint8_t key[UG_KEY_LEN], uint64_t gen)
{
    if (gen == 0)
        return; /* never hits: keep the room */
    ug_cred_entry *set = &g->cred[UG_CRED_WAYS * set_of(key, g->cred_sets)], *e = &set[0];
    for (unsigned way = 1; way < UG_CRED_WAYS; way++)
        if (set[way].used < e->used)
            e = &set[way]; /* an empty way (used 0) first, else the least recently used */
    memcpy(e->fp, key + 4, UG_CRED_FP);
    e->used = cred_tick(g);
}

/* IPv4 /24 or IPv6 /56; an IPv4-mapped source (a dual-stack socket) by its
 * IPv4 /24, else every IPv4 peer would share the all-zero /56. */
static uint64_t prefix_tag(const struct sockaddr *src)
{
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)src)->sin6_addr;
    if (src->sa_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(a6)) {
        uint64_t tag = UINT64_C(6) << 56;
        for (unsigned i = 0; i < 7; i++)
            tag |= (uint64_t)a6->s6_addr[i] << (8 * (6 - i));
        return tag;
    }
    const uint8_t *a = src->sa_family == AF_INET6 ? a6->s6_addr + 12
                                                  : (const uint8_t *)&((const struct sockaddr_in *)src)->sin_addr;
    return (UINT64_C(4) << 56) | ((uint64_t)a[0] << 16) | ((uint64_t)a[1] << 8) | a[2];
}

uint64_t ug_guard_ms(ug_guard *g, uint64_t now_s)
{
    int64_t mono = ug_mono_ms();
    if (!g->clock_mono) {
        g->clock_ms = now_s * 1000 + 1; /* never 0: a bucket's 0 means never used */
        g->clock_mono = g->clock_sec_mono = mono;
        g->clock_sec = now_s;
        return g->clock_ms;
    }
    if (mono > g->clock_mono)
        g->clock_ms += (uint64_t)(mono - g->clock_mono), g->clock_mono = mono;
    if (now_s != g->clock_sec) {
        int64_t host = ((int64_t)now_s - (int64_t)g->clock_sec) * 1000, real = mono - g->clock_sec_mono;
        if (host > real) /* the host's clock ran ahead of ours (a step, or a test's clock) */
            g->clock_ms += (uint64_t)(host - real);
        g->clock_sec = now_s, g->clock_sec_mono = mono;
    }
    return g->clock_ms;
}

/* A token bucket: refilled at per_second for the ms since *last, kept
 * under burst (at least 1), then one token taken if there is one. */
static bool bucket_take(double *tokens, uint64_t *last, uint64_t now_ms, double per_second, double burst)
{
    if (burst < 1)
        burst = 1;
    if (now_ms > *last) {
        *tokens += per_second * (double)(now_ms - *last) / 1000;
        *last = now_ms;
    }
    if (*tokens > burst)
        *tokens = burst;
    if (*tokens < 1 - 1e-9) /* a second's worth refilled in ms pieces may sum to 0.9999... */
        return false;
    *tokens = *tokens > 1 ? *tokens - 1 : 0;
    return true;
}

/* src's prefix's bucket in table (g->budget, or g->report_net). */
static bool net_take(ug_guard *g, ug_budget_entry *table, const struct sockaddr *src, uint64_t now_ms,
                     double per_second)
{
    uint64_t tag = prefix_tag(src), h;
    crypto_shorthash((uint8_t *)&h, (const uint8_t *)&tag, sizeof tag, g->budget_key);
    ug_budget_entry *set = &table[UG_BUDGET_WAYS * (h % UG_BUDGET_SETS)], *e = NULL, *lru = &set[0];
    for (unsigned way = 0; way < UG_BUDGET_WAYS && !e; way++) {
        if (set[way].tag == tag)
            e = &set[way];
        else if (set[way].used < lru->used)
            lru = &set[way];
    }
    if (!e) { /* a network not seen lately starts full; it evicts the least recent */
        e = lru;
        *e = (ug_budget_entry){.tag = tag, .last = now_ms, .tokens = per_second < 1 ? 1 : per_second};
    }
    e->used = ++g->budget_clock;
    return bucket_take(&e->tokens, &e->last, now_ms, per_second, per_second);
}

bool ug_budget_take(ug_guard *g, const struct sockaddr *src, uint64_t now_ms, double per_second)
{
    return net_take(g, g->budget, src, now_ms, per_second);
}

bool ug_report_net_take(ug_guard *g, const struct sockaddr *src, uint64_t now_ms, double per_second)
{
    return net_take(g, g->report_net, src, now_ms, per_second);
}

/* Moves the windows of HELLO work up to now_ms. */
static void hello_roll(ug_guard *g, uint64_t now_ms)
{
    if (now_ms < g->hello_win + UG_BUSY_WINDOW_MS)
        return;
    g->hello_prev = now_ms < g->hello_win + 2 * UG_BUSY_WINDOW_MS ? g->hello_n : 0;
    g->hello_n = 0;
    g->hello_win = now_ms;
}

void ug_guard_hello_work(ug_guard *g, uint64_t now_ms, unsigned n)
{
    hello_roll(g, now_ms);
    g->hello_n += n;
}

bool ug_guard_hello_busy(const ug_guard *g, uint64_t now_ms)
{
    const uint32_t busy = UG_HELLO_BUSY * UG_BUSY_WINDOW_MS / 1000;
    if (now_ms >= g->hello_win + 2 * UG_BUSY_WINDOW_MS)
        return false;
    if (now_ms >= g->hello_win + UG_BUSY_WINDOW_MS)
        return g->hello_n >= busy; /* the current window is the last one now */
    return g->hello_n >= busy || g->hello_prev >= busy;
}

void ug_guard_report_wasted(ug_guard *g, uint64_t now_ms)
{
    g->report_wasted = now_ms ? now_ms : 1;
}

bool ug_report_budget_take(ug_guard *g, uint64_t now_ms, unsigned nworkers)
{
    bool tight = g->report_wasted && now_ms < g->report_wasted + UG_REPORT_WARY_MS && ug_guard_hello_busy(g, now_ms);
    double rate = (tight ? UG_REPORT_BUDGET_BUSY : UG_REPORT_BUDGET) / (double)(nworkers ? nworkers : 1);
    double burst = tight ? rate * UG_REPORT_BURST_BUSY_MS / 1000 : rate;
    if (!g->report_last) /* the first REPORT finds the bucket full */
        g->report_tokens = burst < 1 ? 1 : burst, g->report_last = now_ms;
    return bucket_take(&g->report_tokens, &g->report_last, now_ms, rate, burst);
}
