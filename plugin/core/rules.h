/* The tracker rules: one HELLO or REPORT in, a HINT, WAIT or COOKIE (or nothing) out; and decide() on claims. */
#ifndef UG_RULES_H
#define UG_RULES_H

#include "core/live.h"

/* What the policy gives claimed fields (the tracker rules after rule 4). */
typedef struct {
    unsigned answer;      /* UG_ANSWER_HINT, _WAIT, _COOKIE */
    ug_why why;
    const ug_live_rollout *lr;
    const ug_live_stage *ls;  /* the stage that selected (HINT) or decided the WAIT; NULL if none */
    bool fresh;           /* a new grant */
    bool needs_flush;     /* the HINT rests on a grant not yet durable */
    ug_shortfall shortfall; /* WAIT why=2: what the empty stage said (a hold, a short retry, spent) */
    int64_t reopen;       /* a window that kept the peer out next opens then: its
                             WAIT not_selected's retry brings it back; 0 none */
} ug_plan;

typedef struct {
    ug_inst *I;
    ug_worker *w;
    unsigned worker;
    const ug_live *l;
    uint64_t now;
    uint64_t uid;
    const ug_version *ver;
    const char *plat, *chan; /* "" when absent */
    uint64_t ts;
    const struct sockaddr *src;
    bool addr_proved;
    bool v2;     /* a version 2 peer: its rollout's v2 manifest must be unexpired too */
    void *trace; /* json_t array of the explain trace, or NULL */
    /* uid's grant in the rollout's scope as the caller looked it up, or
     * NULL (the rules look it up). A grant is never taken back, so one
     * found stays found; one not found may be granted meanwhile, which
     * the grant itself then finds (UG_GRANT_ALREADY). */
    const ug_grant_info *grant;
    ug_bucket_memo *memo; /* the caller's percent-bucket memo (decide()), or NULL */
} ug_rule_input;

/* Runs rules 5 to 7 for c: dry (spend false: changes nothing, looks at the
 * rate without taking it) or for real. */
ug_plan ug_rules_run(const ug_rule_input *c, const ug_live_rollout *lr, bool spend);
uint64_t ug_jittered(uint64_t retry, uint64_t uid);
/* The retry of p's WAIT: 0 for too_small, else retry (or the time until
 * a closed window reopens) spread by ug_jittered. */
uint64_t ug_plan_retry(const ug_plan *p, uint64_t retry, uint64_t now, uint64_t uid);
/* The datagram path (handle2). */
ug_verdict ug_rules_handle(ug_inst *I, unsigned worker, const struct sockaddr *src, const uint8_t *in, size_t in_len,
                           uint8_t *out, size_t out_cap, size_t *out_len, unsigned *flags);
/* decide() for one claim, inside l; trace_out (may be NULL) gets the
 * explain object instead of it being emitted. */
int ug_decide_in(ug_inst *I, const ug_live *l, unsigned worker, const ug_claims *cl, ug_decision *d, void **trace_out);
/* decide() for one claim. */
int ug_rules_decide(ug_inst *I, unsigned worker, const ug_claims *cl, ug_decision *d);
/* The plugin's prefetch(): each rollout's grant slot of uid is fetched
 * from memory ahead of a decide() for it (ABI minor 3). */
void ug_rules_prefetch(ug_inst *I, unsigned worker, uint64_t uid);

#endif
