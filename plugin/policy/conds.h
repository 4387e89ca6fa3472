/* The stage condition table, loader side: each row is a stage key with its
 * loader (YAML -> arg) beside what the runtime sees (ug_cond_kind: match,
 * describe, free). Adding a condition is one row, its functions and its
 * test: docs/conditions.md. */
#ifndef UG_CONDS_H
#define UG_CONDS_H

#include "policy/policy.h"
#include "policy/yaml_doc.h"

/* What a row's loader may use besides its YAML. */
typedef struct {
    const ug_ylog *y;   /* where messages go */
    const char *dir;    /* relative paths resolve against it */
    const ug_policy *p; /* the policy being loaded (its geo, for regions) */
} ug_cload;

/* Builds a condition's arg: v[0] is the value of the row's key, v[1] that
 * of its `also` key; either may be NULL, never both; key[i] are their
 * dotted keys for messages. 0, or -1 with one line in c->y (and *arg
 * NULL: a loader frees what it built before failing). The arg must depend
 * on v alone (and the policy-wide c), never on the stage: the loader
 * shares it between stages whose YAML shares the node (an alias). */
typedef int (*ug_cond_load_fn)(const ug_cload *c, const ug_ynode *const v[2], const char *const key[2],
                               void **arg);

typedef struct {
    ug_cond_kind kind;  /* kind.key is the row's stage key */
    const char *also;   /* a second stage key feeding the same condition, or NULL */
    ug_cond_load_fn load;
} ug_cond_row;

#define UG_COND_ROWS_MAX 16u /* room the loader keeps for the table's keys */

/* Cheapest match first: a stage's conditions are evaluated in this order. */
extern const ug_cond_row ug_cond_rows[];
extern const size_t ug_cond_nrows;

/* Entries of a plat, chan or regions list (networks and uids are bounded
 * by the YAML node cap only: they are looked up, never scanned). */
#define UG_COND_LIST_MAX 1000u

#endif
