/* Policy lookup sets: CIDR prefixes as binary tries (one per family) and uids as an open-addressing hash. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "mix.h"
#include "policy.h"

/* ---- ug_nets ------------------------------------------------------------ */

/* One trie node per address bit walked. Children are indices into the node
 * array (0 means none: node 0 is the v4 root, never anyone's child), so the
 * array can grow by realloc without fixing pointers. */
typedef struct {
    uint32_t child[2];
    uint8_t term; /* a prefix ends here: everything below is inside */
} nnode;

struct ug_nets {
    nnode *nodes;
    size_t n, cap;
};

enum { ROOT4 = 0, ROOT6 = 1 };

/* ::ffff:0:0/96, the IPv4-mapped IPv6 range. */
static const uint8_t mapped_prefix[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};

ug_nets *ug_nets_new(void)
{
    ug_nets *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->cap = 64;
    n->nodes = calloc(n->cap, sizeof *n->nodes);
    if (!n->nodes) {
        free(n);
        return NULL;
    }
    n->n = 2; /* the two roots */
    return n;
}

void ug_nets_free(ug_nets *n)
{
    if (!n)
        return;
    free(n->nodes);
    free(n);
}

static int node_alloc(ug_nets *n, uint32_t *idx)
{
    if (n->n >= UINT32_MAX)
        return -1;
    if (n->n == n->cap) {
        if (n->cap > SIZE_MAX / 2 / sizeof *n->nodes)
            return -1;
        size_t cap = n->cap * 2;
        nnode *nodes = realloc(n->nodes, cap * sizeof *nodes);
        if (!nodes)
            return -1;
        memset(nodes + n->cap, 0, (cap - n->cap) * sizeof *nodes);
        n->nodes = nodes;
        n->cap = cap;
    }
    *idx = (uint32_t)n->n++;
    return 0;
}

static inline unsigned bit_at(const uint8_t *a, unsigned i)
{
    return (a[i >> 3] >> (7u - (i & 7u))) & 1u;
}

/* Inserts the first len bits of a under root. */
static int trie_add(ug_nets *n, uint32_t root, const uint8_t *a, unsigned len)
{
    uint32_t cur = root;
    for (unsigned i = 0; i < len; i++) {
        if (n->nodes[cur].term)
            return 0; /* a shorter prefix already covers this one */
        unsigned b = bit_at(a, i);
        if (!n->nodes[cur].child[b]) {
            uint32_t idx;
            if (node_alloc(n, &idx) != 0)
                return -1;
            n->nodes[cur].child[b] = idx; /* after node_alloc: it may move nodes */
        }
        cur = n->nodes[cur].child[b];
    }
    n->nodes[cur].term = 1;
    return 0;
}

/* True when any prefix stored under root contains a: at most bits steps. */
static bool trie_has(const ug_nets *n, uint32_t root, const uint8_t *a, unsigned bits)
{
    uint32_t cur = root;
    for (unsigned i = 0; i < bits; i++) {
        if (n->nodes[cur].term)
            return true;
        uint32_t next = n->nodes[cur].child[bit_at(a, i)];
        if (!next)
            return false;
        cur = next;
    }
    return n->nodes[cur].term != 0;
}

static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned len)
{
    for (unsigned i = 0; i < len; i++)
        if (bit_at(a, i) != bit_at(b, i))
            return false;
    return true;
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
    if (slash) {
        const char *d = slash + 1;
        size_t dl = strlen(d);
        /* 1..3 digits, no leading zero: "/08" is more likely a typo than 8 */
        if (dl == 0 || dl > 3 || (dl > 1 && d[0] == '0'))
            return -1;
        len = 0;
        for (size_t i = 0; i < dl; i++) {
            if (d[i] < '0' || d[i] > '9')
                return -1;
            len = len * 10 + (unsigned)(d[i] - '0');
        }
        if (len > maxlen)
            return -1;
    }
    /* Host bits past len must be zero: "10.0.0.1/8" is a mistake, not 10/8. */
    for (unsigned i = len; i < maxlen; i++)
        if (bit_at(addr, i))
            return -1;

    if (!v6)
        return trie_add(n, ROOT4, addr, len);
    /* Mapped addresses are looked up as IPv4, so mapped prefixes live there. */
    if (len >= 96 && prefix_eq(addr, mapped_prefix, 96))
        return trie_add(n, ROOT4, addr + 12, len - 96);
    if (trie_add(n, ROOT6, addr, len) != 0)
        return -1;
    if (len < 96 && prefix_eq(addr, mapped_prefix, len)) /* e.g. ::/0 covers them all */
        return trie_add(n, ROOT4, addr + 12, 0);
    return 0;
}

bool ug_nets_contains_sa(const ug_nets *n, const struct sockaddr *sa)
{
    uint8_t ip[16];
    size_t len = ug_addr_ip(sa, ip); /* a mapped address comes back as IPv4 */
    if (!n || !len)
        return false;
    return len == 4 ? trie_has(n, ROOT4, ip, 32) : trie_has(n, ROOT6, ip, 128);
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
