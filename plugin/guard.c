/* Per-worker memory of the expensive path: replay cache, credential cache, prefix budgets. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "addr.h"
#include "guard.h"
#include "mix.h"

struct ug_replay_entry {
    uint8_t key[UG_KEY_LEN];
    uint64_t at;
    uint16_t len;
    uint64_t used; /* replay_clock at the last store or hit */
    uint8_t reply[UG_DGRAM_MAX];
};

struct ug_cred_entry {
    uint8_t key[UG_KEY_LEN];
    uint64_t gen;
};

struct ug_budget_entry {
    uint64_t tag; /* 0: empty */
    uint64_t last;
    double tokens;
};

int ug_guard_init(ug_guard *g)
{
    g->replay = calloc(UG_REPLAY_SETS * UG_REPLAY_WAYS, sizeof *g->replay);
    g->cred = calloc(UG_CRED_SLOTS, sizeof *g->cred);
    g->budget = calloc(UG_BUDGET_SLOTS, sizeof *g->budget);
    if (g->replay && g->cred && g->budget)
        return 0;
    ug_guard_free(g);
    return -1;
}

void ug_guard_free(ug_guard *g)
{
    free(g->replay);
    free(g->cred);
    free(g->budget);
    g->replay = NULL, g->cred = NULL, g->budget = NULL;
}

static uint32_t slot_of(const uint8_t key[UG_KEY_LEN], uint32_t slots)
{
    uint32_t v;
    memcpy(&v, key, sizeof v);
    return v % slots;
}

void ug_replay_key(uint8_t key[UG_KEY_LEN], const struct sockaddr *src, const uint8_t *in, size_t len)
{
    uint8_t who[UG_ADDR_KEY_MAX];
    size_t n = ug_addr_key(src, who);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, UG_KEY_LEN);
    crypto_generichash_update(&st, who, n);
    crypto_generichash_update(&st, in, len);
    crypto_generichash_final(&st, key, UG_KEY_LEN);
}

/* A key lives in one of the UG_REPLAY_WAYS entries of set slot_of(key). */
static ug_replay_entry *replay_set(ug_guard *g, const uint8_t key[UG_KEY_LEN])
{
    return &g->replay[UG_REPLAY_WAYS * slot_of(key, UG_REPLAY_SETS)];
}

size_t ug_replay_find(ug_guard *g, const uint8_t key[UG_KEY_LEN], uint64_t now, uint8_t *out, size_t cap)
{
    ug_replay_entry *set = replay_set(g, key);
    for (unsigned way = 0; way < UG_REPLAY_WAYS; way++) {
        ug_replay_entry *e = &set[way];
        if (e->len == 0 || e->len > cap || now < e->at || now - e->at > UG_REPLAY_TTL ||
            memcmp(e->key, key, UG_KEY_LEN) != 0)
            continue;
        memcpy(out, e->reply, e->len);
        e->used = ++g->replay_clock;
        return e->len;
    }
    return 0;
}

void ug_replay_store(ug_guard *g, const uint8_t key[UG_KEY_LEN], uint64_t now, const uint8_t *reply, size_t len)
{
    if (len == 0 || len > UG_DGRAM_MAX)
        return;
    /* an empty way has used == 0, so it goes first; else the least recently
     * used (clock seconds tie too often to decide by age) */
    ug_replay_entry *set = replay_set(g, key), *e = &set[0];
    for (unsigned way = 1; way < UG_REPLAY_WAYS; way++)
        if (set[way].used < e->used)
            e = &set[way];
    memcpy(e->key, key, UG_KEY_LEN);
    e->at = now;
    e->len = (uint16_t)len;
    e->used = ++g->replay_clock;
    memcpy(e->reply, reply, len);
}

bool ug_credcache_has(ug_guard *g, const ug_signed *cred, uint64_t gen, uint8_t key_out[UG_KEY_LEN])
{
    crypto_generichash(key_out, UG_KEY_LEN, cred->raw, cred->raw_len, NULL, 0);
    const ug_cred_entry *e = &g->cred[slot_of(key_out, UG_CRED_SLOTS)];
    return e->gen == gen && gen != 0 && memcmp(e->key, key_out, UG_KEY_LEN) == 0;
}

void ug_credcache_put(ug_guard *g, const uint8_t key[UG_KEY_LEN], uint64_t gen)
{
    ug_cred_entry *e = &g->cred[slot_of(key, UG_CRED_SLOTS)];
    memcpy(e->key, key, UG_KEY_LEN);
    e->gen = gen;
}

bool ug_budget_take(ug_guard *g, const struct sockaddr *src, uint64_t now, double per_second)
{
    uint64_t tag;
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)src)->sin6_addr;
    if (src->sa_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(a6)) {
        tag = UINT64_C(6) << 56;
        for (unsigned i = 0; i < 7; i++) /* the /56 */
            tag |= (uint64_t)a6->s6_addr[i] << (8 * (6 - i));
    } else {
        /* IPv4, also when it reaches a dual-stack socket as ::ffff:a.b.c.d:
         * its /56 would be all zeros, one budget for every IPv4 peer */
        const uint8_t *a = src->sa_family == AF_INET6 ? a6->s6_addr + 12
                                                      : (const uint8_t *)&((const struct sockaddr_in *)src)->sin_addr;
        tag = (UINT64_C(4) << 56) | ((uint64_t)a[0] << 16) | ((uint64_t)a[1] << 8) | a[2]; /* the /24 */
    }
    double burst = per_second < 1 ? 1 : per_second;
    ug_budget_entry *e = &g->budget[ug_mix64(tag) % UG_BUDGET_SLOTS];
    if (e->tag != tag) { /* a network we have not seen lately starts full */
        e->tag = tag;
        e->last = now;
        e->tokens = burst;
    } else if (now > e->last) {
        e->tokens += per_second * (double)(now - e->last);
        if (e->tokens > burst)
            e->tokens = burst;
        e->last = now;
    }
    if (e->tokens < 1)
        return false;
    e->tokens -= 1;
    return true;
}
