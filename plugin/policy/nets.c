/* Policy lookup sets: CIDR prefixes as sorted, merged address ranges (one
 * array per family) and uids as an open-addressing hash. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "policy/addr.h"
#include "util/mix.h"
#include "policy/policy.h"

/* ---- ug_nets ------------------------------------------------------------ */

/* Each prefix is the range of addresses it holds. Ranges go in as added;
 * ug_nets_seal sorts and merges them, so that a lookup is one binary search
 * over disjoint ranges. Memory is linear in the prefixes (a trie of bits
 * cost up to 128 nodes for each IPv6 one). */
typedef unsigned __int128 u128;
typedef struct {
    uint32_t lo, hi;
} range4;
typedef struct {
    u128 lo, hi;
} range6;

struct ug_nets {
    range4 *v4;
    size_t n4, cap4, sealed4; /* v4[0..sealed4) sorted and disjoint */
    range6 *v6;
    size_t n6, cap6, sealed6;
};

/* ::ffff:0:0/96, the IPv4-mapped IPv6 range. */
static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

ug_nets *ug_nets_new(void)
{
    return calloc(1, sizeof(ug_nets));
}

void ug_nets_free(ug_nets *n)
{
    if (!n)
        return;
    free(n->v4);
    free(n->v6);
    free(n);
}

/* Room for one more item in *arr (of size elem), doubling. */
static int grow(void **arr, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    if (c > SIZE_MAX / elem)
        return -1;
    void *a = realloc(*arr, c * elem);
    if (!a)
        return -1;
    *arr = a;
    *cap = c;
    return 0;
}

static u128 load128(const uint8_t a[16])
{
    u128 x = 0;
    for (unsigned i = 0; i < 16; i++)
        x = x << 8 | a[i];
    return x;
}

static uint32_t load32(const uint8_t a[4])
{
    return (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
}

/* The range of the first len bits of a (IPv4). */
static int add4(ug_nets *n, uint32_t a, unsigned len)
{
    uint32_t host = len == 0 ? UINT32_MAX : len >= 32 ? 0 : UINT32_MAX >> len;
    if (grow((void **)&n->v4, n->n4, &n->cap4, sizeof *n->v4) != 0)
        return -1;
    n->v4[n->n4++] = (range4){a & ~host, a | host};
    return 0;
}

static int add6(ug_nets *n, u128 a, unsigned len)
{
    u128 host = len == 0 ? ~(u128)0 : len >= 128 ? 0 : ~(u128)0 >> len;
    if (grow((void **)&n->v6, n->n6, &n->cap6, sizeof *n->v6) != 0)
        return -1;
    n->v6[n->n6++] = (range6){a & ~host, a | host};
    return 0;
}

static bool bit_at(const uint8_t *a, unsigned i)
{
    return (a[i >> 3] >> (7u - (i & 7u))) & 1u;
}

/* "/len": 1..3 digits, no leading zero ("/08" is more likely a typo than
 * 8), at most maxlen. */
static int prefix_len(const char *d, unsigned maxlen, unsigned *len)
{
    size_t dl = strlen(d);
    if (dl == 0 || dl > 3 || (dl > 1 && d[0] == '0'))
        return -1;
    *len = 0;
    for (size_t i = 0; i < dl; i++) {
        if (d[i] < '0' || d[i] > '9')
            return -1;
        *len = *len * 10 + (unsigned)(d[i] - '0');
    }
    return *len <= maxlen ? 0 : -1;
}

int ug_nets_add(ug_nets *n, const char *cidr)
{
    if (!n || !cidr)
        return -1;
    const char *slash = strchr(cidr, '/');
    size_t alen = slash ? (size_t)(slash - cidr) : strlen(cidr);
    char a[INET6_ADDRSTRLEN + 1];
    if (alen == 0 || alen >= sizeof a)
        return -1;
    memcpy(a, cidr, alen);
    a[alen] = '\0';

    uint8_t addr[16] = {0};
    bool v6 = memchr(a, ':', alen) != NULL;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, a, addr) != 1)
        return -1;
    unsigned maxlen = v6 ? 128u : 32u, len = maxlen;
    if (slash && prefix_len(slash + 1, maxlen, &len) != 0)
        return -1;
    /* Host bits past len must be zero: "10.0.0.1/8" is a mistake, not 10/8. */
    for (unsigned i = len; i < maxlen; i++)
        if (bit_at(addr, i))
            return -1;

    if (!v6)
        return add4(n, load32(addr), len);
    /* Mapped addresses are looked up as IPv4, so mapped prefixes live there. */
    bool in_mapped = memcmp(addr, mapped_prefix, 12) == 0;
    if (len >= 96 && in_mapped)
        return add4(n, load32(addr + 12), len - 96);
    if (add6(n, load128(addr), len) != 0)
        return -1;
    /* a prefix holding all of ::ffff:0:0/96 (::/0, say) holds every IPv4 peer */
    bool covers_mapped = len < 96;
    for (unsigned i = 0; covers_mapped && i < len; i++)
        covers_mapped = bit_at(addr, i) == bit_at(mapped_prefix, i);
    return covers_mapped ? add4(n, 0, 0) : 0;
}

static int cmp4(const void *a, const void *b)
{
    uint32_t x = ((const range4 *)a)->lo, y = ((const range4 *)b)->lo;
    return (x > y) - (x < y);
}

static int cmp6(const void *a, const void *b)
{
    u128 x = ((const range6 *)a)->lo, y = ((const range6 *)b)->lo;
    return (x > y) - (x < y);
}

/* Sorted by lo, each range that overlaps or touches the one kept before it
 * joins that one: what is left is disjoint and in order. (hi + 1 wraps to
 * 0 at the top of the family: nothing comes after.) */
#define MERGE(arr, n)                                                                                   \
    do {                                                                                                \
        size_t out_ = 0;                                                                                \
        for (size_t i_ = 0; i_ < (n); i_++) {                                                          \
            if (out_ && ((arr)[out_ - 1].hi + 1 == 0 || (arr)[i_].lo <= (arr)[out_ - 1].hi + 1)) {      \
                if ((arr)[i_].hi > (arr)[out_ - 1].hi)                                                  \
                    (arr)[out_ - 1].hi = (arr)[i_].hi;                                                  \
            } else {                                                                                    \
                (arr)[out_++] = (arr)[i_];                                                              \
            }                                                                                           \
        }                                                                                               \
        (n) = out_;                                                                                     \
    } while (0)

void ug_nets_seal(ug_nets *n)
{
    if (!n)
        return;
    if (n->n4) { /* qsort's base may not be NULL, even for none */
        qsort(n->v4, n->n4, sizeof *n->v4, cmp4);
        MERGE(n->v4, n->n4);
    }
    n->sealed4 = n->n4;
    if (n->n6) {
        qsort(n->v6, n->n6, sizeof *n->v6, cmp6);
        MERGE(n->v6, n->n6);
    }
    n->sealed6 = n->n6;
}

/* The last sealed range starting at or before x holds it, or none does;
 * ranges added since the seal are scanned. */
#define FIND(arr, sealed, n, x)                                                                         \
    do {                                                                                                \
        size_t lo_ = 0, hi_ = (sealed);                                                                 \
        while (lo_ < hi_) {                                                                             \
            size_t mid_ = lo_ + (hi_ - lo_) / 2;                                                        \
            if ((arr)[mid_].lo <= (x))                                                                  \
                lo_ = mid_ + 1;                                                                         \
            else                                                                                        \
                hi_ = mid_;                                                                             \
        }                                                                                               \
        if (lo_ && (x) <= (arr)[lo_ - 1].hi)                                                            \
            return true;                                                                                \
        for (size_t i_ = (sealed); i_ < (n); i_++)                                                      \
            if ((arr)[i_].lo <= (x) && (x) <= (arr)[i_].hi)                                             \
                return true;                                                                            \
        return false;                                                                                   \
    } while (0)

static bool has4(const ug_nets *n, uint32_t x)
{
    FIND(n->v4, n->sealed4, n->n4, x);
}

static bool has6(const ug_nets *n, u128 x)
{
    FIND(n->v6, n->sealed6, n->n6, x);
}

bool ug_nets_contains_sa(const ug_nets *n, const struct sockaddr *sa)
{
    uint8_t ip[16];
    size_t len = ug_addr_ip(sa, ip); /* a mapped address comes back as IPv4 */
    if (!n || !len)
        return false;
    return len == 4 ? has4(n, load32(ip)) : has6(n, load128(ip));
}

/* ---- ug_uidset ---------------------------------------------------------- */

/* Linear probing over a power-of-two table kept at most half full; slot value
 * 0 marks empty (uid 0 is never valid, but is still tracked by a flag so the
 * set stays exact). */
struct ug_uidset {
    uint64_t *slots;
    size_t cap, count;
    bool has_zero;
};

ug_uidset *ug_uidset_new(void)
{
    return calloc(1, sizeof(ug_uidset));
}

void ug_uidset_free(ug_uidset *s)
{
    if (!s)
        return;
    free(s->slots);
    free(s);
}

static void slot_put(uint64_t *slots, size_t cap, uint64_t uid)
{
    size_t mask = cap - 1, i = (size_t)ug_mix64(uid) & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = uid;
}

static int uidset_grow(ug_uidset *s)
{
    size_t cap = s->cap ? s->cap * 2 : 16;
    if (cap < s->cap || cap > SIZE_MAX / sizeof(uint64_t))
        return -1;
    uint64_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i])
            slot_put(slots, cap, s->slots[i]);
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

int ug_uidset_add(ug_uidset *s, uint64_t uid)
{
    if (!s)
        return -1;
    if (uid == 0) {
        s->has_zero = true;
        return 0;
    }
    if (ug_uidset_has(s, uid))
        return 0;
    if ((s->count + 1) * 2 > s->cap && uidset_grow(s) != 0)
        return -1;
    slot_put(s->slots, s->cap, uid);
    s->count++;
    return 0;
}

bool ug_uidset_has(const ug_uidset *s, uint64_t uid)
{
    if (!s)
        return false;
    if (uid == 0)
        return s->has_zero;
    if (!s->cap)
        return false;
    size_t mask = s->cap - 1, i = (size_t)ug_mix64(uid) & mask;
    /* Terminates: the table is never more than half full. */
    while (s->slots[i]) {
        if (s->slots[i] == uid)
            return true;
        i = (i + 1) & mask;
    }
    return false;
}
