/* The percent-bucket memo of ug_claims (ABI minor 3): a caller that decides for one uid many times skips the BLAKE2b. */
#include <stdatomic.h>
#include <string.h>

#include "core/memo.h"
#include "ug_proto.h"
#include "util/mix.h"

/* Process-wide, not per instance: a memo handed to two instances must not
 * mistake one's salt numbers for the other's. */
static atomic_uint_fast32_t marks;

void ug_memo_number(ug_live *l)
{
    uint32_t mark;
    do
        mark = (uint32_t)atomic_fetch_add(&marks, 1) + 1;
    while (mark == 0); /* 0 is an empty memo's */
    l->memo_mark = mark;
    unsigned next = 1;
    for (size_t i = 0; i < l->pol->nrollouts; i++) {
        ug_live_rollout *lr = &l->ro[i];
        for (size_t j = 0; j < lr->r->nstages; j++) {
            ug_live_stage *ls = &lr->stages[j];
            const ug_stage *s = ls->s;
            ls->salt_id = 0;
            if (!s->has_percent)
                continue;
            /* a salt seen before keeps its number: stages sharing a salt share a slot */
            const ug_live_stage *seen = NULL;
            for (size_t a = 0; a <= i && !seen; a++)
                for (size_t b = 0; b < (a == i ? j : l->ro[a].r->nstages) && !seen; b++) {
                    const ug_live_stage *o = &l->ro[a].stages[b];
                    if (o->salt_id && o->s->salt_len == s->salt_len && memcmp(o->s->salt, s->salt, s->salt_len) == 0)
                        seen = o;
                }
            if (seen)
                ls->salt_id = seen->salt_id;
            else if (next <= UINT16_MAX)
                ls->salt_id = (uint16_t)next++;
        }
    }
}

uint32_t ug_memo_bucket(ug_bucket_memo *m, const ug_live *l, const ug_live_stage *ls, uint64_t uid)
{
    const ug_stage *s = ls->s;
    if (!m || !ls->salt_id)
        return ug_percent_bucket(s->salt, s->salt_len, uid);
    uint32_t mark = l->memo_mark ^ (uint32_t)ug_mix64(uid); /* another uid's memo is emptied too */
    if (m->mark != mark) {
        memset(m, 0, sizeof *m);
        m->mark = mark;
    }
    unsigned k = ls->salt_id % UG_BUCKET_MEMO_SLOTS;
    if (m->salt[k] != ls->salt_id || m->bucket[k] >= 10000) {
        m->bucket[k] = (uint16_t)ug_percent_bucket(s->salt, s->salt_len, uid);
        m->salt[k] = ls->salt_id;
    }
    return m->bucket[k];
}
