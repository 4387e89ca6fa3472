/* upgate-sim --suggest (simedit.h): a stage's rate and ramp located with libyaml's marks, rewritten in place, every other byte kept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "policy/ugpolicy.h"
#include "simedit.h"

/*
 * libyaml's marks count characters (a CRLF as two), not bytes, so each is
 * turned into a byte offset by walking the text's UTF-8. Only a plain
 * mapping structure is followed: a stage reached through an alias or a
 * merge key is "not found", and --suggest says so rather than guess.
 */

static size_t byte_at(const char *s, size_t len, size_t chars)
{
    size_t b = 0, c = 0;
    while (b < len && c < chars) {
        b++;
        while (b < len && ((unsigned char)s[b] & 0xc0) == 0x80)
            b++; /* the rest of a multi-byte character */
        c++;
    }
    return b;
}

typedef struct {
    yaml_document_t *doc;
    const char *text;
    size_t len;
} ydoc;

static yaml_node_t *node(ydoc *d, int i)
{
    return yaml_document_get_node(d->doc, i);
}

static bool scalar_is(const yaml_node_t *n, const char *s)
{
    return n && n->type == YAML_SCALAR_NODE && n->data.scalar.length == strlen(s) &&
           memcmp(n->data.scalar.value, s, n->data.scalar.length) == 0;
}

/* The value of key in mapping m (and the key node), or NULL. */
static yaml_node_t *get(ydoc *d, yaml_node_t *m, const char *key, yaml_node_t **k)
{
    if (!m || m->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++)
        if (scalar_is(node(d, p->key), key)) {
            if (k)
                *k = node(d, p->key);
            return node(d, p->value);
        }
    return NULL;
}

static int scalar_time(const yaml_node_t *n, int64_t *t)
{
    return n && n->type == YAML_SCALAR_NODE ? ug_parse_time((const char *)n->data.scalar.value, n->data.scalar.length, t)
                                            : -1;
}

/* Fills loc from the stage mapping s. */
static int locate(ydoc *d, yaml_node_t *s, sim_stage_loc *loc, char *why, size_t whycap)
{
    yaml_node_t *namekey, *name = get(d, s, "name", &namekey);
    yaml_node_t *rate = get(d, s, "rate", NULL);
    if (rate) {
        if (rate->type != YAML_SCALAR_NODE ||
            ug_parse_rate((const char *)rate->data.scalar.value, rate->data.scalar.length, &loc->rate) != 0)
            return snprintf(why, whycap, "its rate is not a number"), -1;
        loc->has_rate = true;
        loc->rate_at = byte_at(d->text, d->len, rate->start_mark.index);
        loc->rate_len = byte_at(d->text, d->len, rate->end_mark.index) - loc->rate_at;
    }
    loc->insert_at = byte_at(d->text, d->len, name->end_mark.index);
    if (s->data.mapping.style == YAML_FLOW_MAPPING_STYLE)
        snprintf(loc->insert_pre, sizeof loc->insert_pre, ", ");
    else
        snprintf(loc->insert_pre, sizeof loc->insert_pre, "\n%*s", (int)(namekey->start_mark.column % 64), "");
    yaml_node_t *pc = get(d, s, "percent", NULL), *end = get(d, pc, "end", NULL);
    if (pc && pc->type == YAML_MAPPING_NODE && get(d, pc, "from", NULL) && end &&
        scalar_time(get(d, pc, "start", NULL), &loc->start) == 0 && scalar_time(end, &loc->end) == 0) {
        loc->linear = true;
        loc->end_at = byte_at(d->text, d->len, end->start_mark.index);
        loc->end_len = byte_at(d->text, d->len, end->end_mark.index) - loc->end_at;
    }
    return 0;
}

/* The stage named stage in the sequence of stages seq, or NULL. */
static yaml_node_t *find_stage(ydoc *d, yaml_node_t *seq, const char *stage)
{
    if (!seq || seq->type != YAML_SEQUENCE_NODE)
        return NULL;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        yaml_node_t *s = node(d, *it);
        if (scalar_is(get(d, s, "name", NULL), stage))
            return s;
    }
    return NULL;
}

static int search(ydoc *d, const char *rollout, const char *stage, sim_stage_loc *loc, char *why, size_t whycap)
{
    yaml_node_t *root = yaml_document_get_root_node(d->doc);
    if (!root || root->type != YAML_MAPPING_NODE)
        return snprintf(why, whycap, "not a mapping of policy keys"), -1;
    yaml_node_t *ros = get(d, root, "rollouts", NULL);
    if (!ros) { /* version 1: one rollout, "default" */
        yaml_node_t *s = rollout && strcmp(rollout, "default") != 0 ? NULL : find_stage(d, get(d, root, "stages", NULL), stage);
        if (!s)
            return snprintf(why, whycap, "no stage %s%s%s", rollout ? rollout : "", rollout ? "/" : "", stage), -1;
        snprintf(loc->rollout, sizeof loc->rollout, "default");
        return locate(d, s, loc, why, whycap);
    }
    if (ros->type != YAML_SEQUENCE_NODE)
        return snprintf(why, whycap, "rollouts is not a list"), -1;
    yaml_node_t *found = NULL;
    const char *found_in = NULL;
    for (yaml_node_item_t *it = ros->data.sequence.items.start; it < ros->data.sequence.items.top; it++) {
        yaml_node_t *r = node(d, *it), *rname = get(d, r, "name", NULL);
        if (!rname || rname->type != YAML_SCALAR_NODE || (rollout && !scalar_is(rname, rollout)))
            continue;
        yaml_node_t *s = find_stage(d, get(d, r, "stages", NULL), stage);
        if (!s)
            continue;
        if (found)
            return snprintf(why, whycap, "stage %s is in rollouts %s and %s: name one (%s/%s)", stage, found_in,
                            (const char *)rname->data.scalar.value, found_in, stage), -1;
        found = s;
        found_in = (const char *)rname->data.scalar.value;
    }
    if (!found)
        return snprintf(why, whycap, "no stage %s%s%s", rollout ? rollout : "", rollout ? "/" : "", stage), -1;
    snprintf(loc->rollout, sizeof loc->rollout, "%s", found_in);
    return locate(d, found, loc, why, whycap);
}

int sim_edit_find(const char *text, size_t len, const char *rollout, const char *stage, sim_stage_loc *loc, char *why,
                  size_t whycap)
{
    memset(loc, 0, sizeof *loc);
    yaml_parser_t p;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&p))
        return snprintf(why, whycap, "out of memory"), -1;
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int rc;
    if (!yaml_parser_load(&p, &doc)) {
        snprintf(why, whycap, "line %zu: %s", p.problem_mark.line + 1, p.problem ? p.problem : "not YAML");
        rc = -1;
    } else {
        ydoc d = {.doc = &doc, .text = text, .len = len};
        rc = search(&d, rollout, stage, loc, why, whycap);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&p);
    return rc;
}

char *sim_edit_apply(const char *text, size_t len, size_t at, size_t cut, const char *insert, size_t *outlen)
{
    if (at > len || cut > len - at)
        return NULL;
    size_t n = strlen(insert), total = len - cut + n;
    char *out = malloc(total + 1);
    if (!out)
        return NULL;
    memcpy(out, text, at);
    memcpy(out + at, insert, n);
    memcpy(out + at + n, text + at + cut, len - at - cut);
    out[total] = 0;
    *outlen = total;
    return out;
}
