/* The run-time state of rollouts and stages, by name: made on first use, kept across reloads, swept when no policy names it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/flags.h"
#include "core/state.h"

static ug_waits *waits_new(unsigned n)
{
    ug_waits *w = aligned_alloc(64, n * sizeof *w);
    if (w)
        memset(w, 0, n * sizeof *w);
    return w;
}

/* The operator's durable word on a rollout: pause, halt (with why), hold. */

ug_rollout_state *ug_state_rollout(ug_inst *I, const char *name)
{
    for (size_t i = 0; i < I->nrollout_states; i++)
        if (strcmp(I->rollout_states[i]->name, name) == 0)
            return I->rollout_states[i]->marked = true, I->rollout_states[i];
    ug_rollout_state **v = realloc(I->rollout_states, (I->nrollout_states + 1) * sizeof *v);
    if (!v)
        return NULL;
    I->rollout_states = v;
    ug_rollout_state *rt = calloc(1, sizeof *rt);
    if (!rt || !(rt->waits = waits_new(I->nworkers))) {
        free(rt);
        return NULL;
    }
    snprintf(rt->name, sizeof rt->name, "%s", name);
    (void)pthread_mutex_init(&rt->health.mu, NULL);
    ug_flags_load(I, rt);
    rt->marked = true;
    I->rollout_states[I->nrollout_states++] = rt;
    return rt;
}

ug_stage_state *ug_state_stage(ug_inst *I, const char *rollout, const char *stage)
{
    for (size_t i = 0; i < I->nstage_states; i++)
        if (strcmp(I->stage_states[i]->rollout, rollout) == 0 && strcmp(I->stage_states[i]->stage, stage) == 0)
            return I->stage_states[i]->marked = true, I->stage_states[i];
    ug_stage_state **v = realloc(I->stage_states, (I->nstage_states + 1) * sizeof *v);
    if (!v)
        return NULL;
    I->stage_states = v;
    ug_stage_state *st = calloc(1, sizeof *st);
    if (st && (!(st->waits = waits_new(I->nworkers)) || !(st->tally = aligned_alloc(64, I->nworkers * sizeof *st->tally)))) {
        free(st->waits);
        free(st);
        st = NULL;
    }
    if (!st)
        return NULL;
    memset(st->tally, 0, I->nworkers * sizeof *st->tally);
    snprintf(st->rollout, sizeof st->rollout, "%s", rollout);
    snprintf(st->stage, sizeof st->stage, "%s", stage);
    (void)pthread_mutex_init(&st->rate.mu, NULL);
    (void)pthread_mutex_init(&st->gate.mu, NULL);
    st->gate.step = -1;
    st->marked = true;
    I->stage_states[I->nstage_states++] = st;
    return st;
}

void ug_state_stage_release(ug_inst *I, ug_stage_state *st, const char *release)
{
    if (strcmp(st->release, release) == 0)
        return;
    if (st->release[0]) { /* workers count relaxed: a count racing this reset is lost, never torn */
        for (unsigned w = 0; w < I->nworkers; w++) {
            for (unsigned why = 0; why < UG_WHY_COUNT_; why++)
                atomic_store(&st->waits[w].why[why], 0), atomic_store(&st->waits[w].unverified[why], 0);
            ug_tally *t = &st->tally[w];
            atomic_store(&t->offers_new, 0);
            atomic_store(&t->offers_again, 0);
            for (unsigned k = 0; k < UG_RES_COUNT_; k++)
                atomic_store(&t->reports[k], 0);
            for (unsigned k = 0; k < UG_OUT_COUNT_; k++)
                atomic_store(&t->changes[k], 0);
        }
    }
    snprintf(st->release, sizeof st->release, "%s", release);
}

static void rollout_state_free(ug_rollout_state *rt)
{
    pthread_mutex_destroy(&rt->health.mu);
    free(rt->waits);
    free(rt);
}

static void stage_state_free(ug_stage_state *st)
{
    pthread_mutex_destroy(&st->rate.mu);
    pthread_mutex_destroy(&st->gate.mu);
    free(st->waits);
    free(st->tally);
    free(st);
}

void ug_state_unmark_all(ug_inst *I)
{
    pthread_mutex_lock(&I->reg_mu);
    for (size_t i = 0; i < I->nrollout_states; i++)
        I->rollout_states[i]->marked = false;
    for (size_t i = 0; i < I->nstage_states; i++)
        I->stage_states[i]->marked = false;
    pthread_mutex_unlock(&I->reg_mu);
}

/* After a swap, once no worker reads the old policy: what the new one does
 * not name goes (its durable flags stay in the store). */
void ug_state_sweep(ug_inst *I)
{
    pthread_mutex_lock(&I->reg_mu);
    size_t k = 0;
    for (size_t i = 0; i < I->nrollout_states; i++)
        I->rollout_states[i]->marked ? (void)(I->rollout_states[k++] = I->rollout_states[i]) : rollout_state_free(I->rollout_states[i]);
    I->nrollout_states = k;
    k = 0;
    for (size_t i = 0; i < I->nstage_states; i++)
        I->stage_states[i]->marked ? (void)(I->stage_states[k++] = I->stage_states[i]) : stage_state_free(I->stage_states[i]);
    I->nstage_states = k;
    pthread_mutex_unlock(&I->reg_mu);
}

void ug_state_free_all(ug_inst *I)
{
    for (size_t i = 0; i < I->nrollout_states; i++)
        rollout_state_free(I->rollout_states[i]);
    for (size_t i = 0; i < I->nstage_states; i++)
        stage_state_free(I->stage_states[i]);
    free(I->rollout_states);
    free(I->stage_states);
    I->rollout_states = NULL, I->stage_states = NULL, I->nrollout_states = I->nstage_states = 0;
}

