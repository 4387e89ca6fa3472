/* A bucket's sketch: 2^p registers (census_reg.c), stored sparse (only the
 * registers with entries, 4 bytes an entry) up to 4096 entries (16 KiB, a
 * dense sketch's size at P_MIN) or half the registers, dense (2^p * K
 * entries of 2 bytes) after. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "census_impl.h"

#define SPARSE_MIN 16u
#define SPARSE_MAX 4096u

static ug_census_entry *cells(const ug_census_sketch *s, uint32_t j)
{
    return (ug_census_entry *)s->data + (size_t)j * UG_CENSUS_K;
}

size_t ug_census_sk_bytes(const ug_census_sketch *s)
{
    return s->dense ? ((size_t)1 << s->p) * UG_CENSUS_K * sizeof(ug_census_entry) : (size_t)s->cap * 4;
}

/* First sparse item of register j or later. */
static uint32_t lower(const ug_census_sketch *s, uint32_t j)
{
    const uint32_t *it = s->data;
    uint32_t lo = 0, hi = s->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (it[mid] >> 16 < j)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

unsigned ug_census_sk_get(const ug_census_sketch *s, uint32_t j, ug_census_entry *e)
{
    unsigned n = 0;
    if (s->dense) {
        const ug_census_entry *c = cells(s, j);
        while (n < UG_CENSUS_K && c[n])
            e[n] = c[n], n++;
        return n;
    }
    const uint32_t *it = s->data;
    for (uint32_t i = lower(s, j); i < s->n && it[i] >> 16 == j && n < UG_CENSUS_K; i++)
        e[n++] = (ug_census_entry)it[i];
    return n;
}

void *ug_census_big_alloc(size_t n)
{
    if (n < UG_CENSUS_BIG)
        return n ? calloc(1, n) : NULL;
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void ug_census_big_free(void *p, size_t n)
{
    if (p && n < UG_CENSUS_BIG)
        free(p);
    else if (p)
        (void)munmap(p, n);
}

/* A sketch's registers: a dense one's are a big block. */
static void data_free(ug_census_sketch *s)
{
    if (s->dense)
        ug_census_big_free(s->data, ug_census_sk_bytes(s));
    else
        free(s->data);
}

static int densify(ug_census_sketch *s)
{
    ug_census_entry *d = ug_census_big_alloc(((size_t)1 << s->p) * UG_CENSUS_K * sizeof *d);
    if (!d)
        return -1;
    const uint32_t *it = s->data;
    for (uint32_t i = 0, k = 0; i < s->n; i++, k++) {
        if (i > 0 && it[i] >> 16 != it[i - 1] >> 16)
            k = 0;
        d[(size_t)(it[i] >> 16) * UG_CENSUS_K + k] = (ug_census_entry)it[i];
    }
    free(s->data);
    s->data = d;
    s->dense = true;
    s->n = s->cap = 0;
    return 0;
}

int ug_census_sk_put(ug_census_sketch *s, uint32_t j, const ug_census_entry *e, unsigned n)
{
    if (!s->dense) {
        uint32_t a = lower(s, j), b = a, *it = s->data;
        while (b < s->n && it[b] >> 16 == j)
            b++;
        uint32_t want = s->n - (b - a) + n;
        if (want > SPARSE_MAX || want > (1u << s->p) / 2) {
            if (densify(s) != 0)
                return -1;
            return ug_census_sk_put(s, j, e, n);
        }
        if (want > s->cap) {
            uint32_t cap = s->cap ? s->cap * 2 : SPARSE_MIN;
            uint32_t *grown = realloc(s->data, (size_t)cap * 4);
            if (!grown)
                return -1;
            s->data = it = grown;
            s->cap = cap;
        }
        memmove(it + a + n, it + b, (size_t)(s->n - b) * 4);
        for (unsigned i = 0; i < n; i++)
            it[a + i] = j << 16 | e[i];
        s->n = want;
        return 0;
    }
    ug_census_entry *c = cells(s, j);
    for (unsigned i = 0; i < UG_CENSUS_K; i++)
        c[i] = i < n ? e[i] : 0;
    return 0;
}

int ug_census_sk_add(ug_census_sketch *s, uint64_t h, uint32_t stamp, uint32_t cur)
{
    ug_census_entry e[2 * UG_CENSUS_K];
    uint32_t j = (uint32_t)(h >> (64 - s->p));
    unsigned n = ug_census_sk_get(s, j, e);
    bool changed;
    n = ug_census_reg_add(e, n, ug_census_hash_rank(h, s->p), stamp, cur, &changed);
    return changed ? ug_census_sk_put(s, j, e, n) : 0;
}

/* Register j' at p - 1 holds the hashes of registers 2j' and 2j'+1 at p:
 * the dropped index bit is the first bit of the new rank, so 2j'+1's
 * entries rank 1 and 2j''s one more than they did. */
static unsigned fold_pair(const ug_census_entry *lo, unsigned nlo, const ug_census_entry *hi, unsigned nhi,
                          ug_census_entry *out, uint32_t cur)
{
    unsigned n = 0;
    for (unsigned i = 0; i < nlo; i++) {
        unsigned r = ug_census_rank(lo[i]) + 1;
        out[n++] = ug_census_make(r > UG_CENSUS_RANK_MAX ? UG_CENSUS_RANK_MAX : r, lo[i]);
    }
    for (unsigned i = 0; i < nhi; i++)
        out[n++] = ug_census_make(1, hi[i]);
    return ug_census_reg_norm(out, n, cur);
}

int ug_census_sk_fold(ug_census_sketch *s, uint32_t cur)
{
    ug_census_sketch t = {.p = (uint8_t)(s->p - 1)};
    if (s->p <= 1)
        return -1;
    for (uint32_t j = 0; j < 1u << t.p; j++) {
        ug_census_entry a[UG_CENSUS_K], b[UG_CENSUS_K], out[2 * UG_CENSUS_K];
        unsigned na = ug_census_sk_get(s, 2 * j, a), nb = ug_census_sk_get(s, 2 * j + 1, b);
        if (na + nb == 0)
            continue;
        unsigned n = fold_pair(a, na, b, nb, out, cur);
        if (n && ug_census_sk_put(&t, j, out, n) != 0) {
            ug_census_sk_clear(&t);
            return -1;
        }
    }
    data_free(s);
    *s = t;
    return 0;
}

uint64_t ug_census_sk_prune(ug_census_sketch *s, uint32_t cur)
{
    uint64_t left = 0;
    uint32_t regs = 1u << s->p;
    for (uint32_t j = 0; j < regs; j++) {
        ug_census_entry e[UG_CENSUS_K];
        unsigned n = ug_census_sk_get(s, j, e), m;
        if (n == 0)
            continue;
        m = ug_census_reg_norm(e, n, cur);
        left += m;
        if (m != n && ug_census_sk_put(s, j, e, m) != 0)
            left += n - m; /* a shrinking sparse put never allocates; unreachable */
    }
    return left;
}

int ug_census_sk_union(ug_census_sketch *a, ug_census_sketch *b, uint32_t cur)
{
    while (a->p > b->p)
        if (ug_census_sk_fold(a, cur) != 0)
            return -1;
    while (b->p > a->p)
        if (ug_census_sk_fold(b, cur) != 0)
            return -1;
    for (uint32_t j = 0; j < 1u << a->p; j++) {
        ug_census_entry e[2 * UG_CENSUS_K];
        unsigned nb = ug_census_sk_get(b, j, e);
        if (nb == 0)
            continue;
        unsigned n = ug_census_reg_norm(e, nb + ug_census_sk_get(a, j, e + nb), cur);
        if (ug_census_sk_put(a, j, e, n) != 0)
            return -1;
    }
    return 0;
}

void ug_census_sk_clear(ug_census_sketch *s)
{
    data_free(s);
    s->data = NULL;
    s->n = s->cap = 0;
    s->dense = false;
}
