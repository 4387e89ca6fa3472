/* upgate-ctl --policy: the control socket a policy's node serves by default, from the policy's top-level state key alone.
 * It walks libyaml's events rather than building the plugin's tree
 * (ug_ydoc_read): it stops at that key, so a large policy, or one being
 * edited past the key, still names its socket; the input reader (bounded)
 * and the path rule are the plugin's own. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctlpolicy.h"
#include "policy/yaml_doc.h"

typedef struct {
    yaml_parser_t ps;
    const char *name;
    char *err;
    size_t errcap;
} scan;

/* The next event; -1 with err set on a syntax error. */
static int next(scan *s, yaml_event_t *ev)
{
    if (yaml_parser_parse(&s->ps, ev))
        return 0;
    snprintf(s->err, s->errcap, "%s:%zu: (yaml) %s%s%s", s->name, (size_t)s->ps.problem_mark.line + 1,
             s->ps.problem ? s->ps.problem : "syntax error", s->ps.context ? " " : "",
             s->ps.context ? s->ps.context : "");
    return -1;
}

/* Consumes the rest of the node that ev starts (nothing for a scalar or an
 * alias). Iterative: the depth is only a counter. */
static int skip_node(scan *s, const yaml_event_t *first)
{
    if (first->type != YAML_MAPPING_START_EVENT && first->type != YAML_SEQUENCE_START_EVENT)
        return 0;
    for (size_t depth = 1; depth;) {
        yaml_event_t ev;
        if (next(s, &ev) != 0)
            return -1;
        if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT)
            depth++;
        else if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT)
            depth--;
        else if (ev.type == YAML_STREAM_END_EVENT)
            depth = 0; /* cannot happen in a well-formed stream; never loop on it */
        yaml_event_delete(&ev);
    }
    return 0;
}

static const char *kind(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_MAPPING_START_EVENT: return "a mapping";
    case YAML_SEQUENCE_START_EVENT: return "a list";
    case YAML_ALIAS_EVENT: return "an alias";
    case YAML_SCALAR_EVENT: return "a scalar";
    default: return "nothing";
    }
}

/* The state value, given the event after the key. */
static int take_state(scan *s, const yaml_event_t *ev, char *out, size_t cap)
{
    size_t line = (size_t)ev->start_mark.line + 1;
    if (ev->type != YAML_SCALAR_EVENT)
        return snprintf(s->err, s->errcap, "%s:%zu: state: expected a folder path, got %s", s->name, line, kind(ev)),
               -1;
    size_t n = ev->data.scalar.length;
    const char *v = (const char *)ev->data.scalar.value;
    if (n == 0 || n >= cap || memchr(v, 0, n))
        return snprintf(s->err, s->errcap, "%s:%zu: state: expected a folder path of 1..%zu bytes", s->name, line,
                        cap - 1), -1;
    memcpy(out, v, n);
    out[n] = 0;
    return 0;
}

/* Walks the top-level mapping's keys until state. */
static int find_state(scan *s, char *out, size_t cap)
{
    bool in_top = false;
    for (;;) {
        yaml_event_t ev;
        if (next(s, &ev) != 0)
            return -1;
        int rc = 1; /* 1: go on */
        size_t line = (size_t)ev.start_mark.line + 1;
        if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_START_EVENT) {
            /* before the top node */
        } else if (!in_top && ev.type == YAML_MAPPING_START_EVENT) {
            in_top = true;
        } else if (!in_top || ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_DOCUMENT_END_EVENT ||
                   ev.type == YAML_STREAM_END_EVENT) {
            if (in_top)
                snprintf(s->err, s->errcap, "%s: no top-level state key, so no default control socket: give --socket",
                         s->name);
            else
                snprintf(s->err, s->errcap, "%s:%zu: expected a mapping of policy keys, got %s", s->name, line,
                         kind(&ev));
            rc = -1;
        } else if (ev.type == YAML_SCALAR_EVENT && strcmp((const char *)ev.data.scalar.value, "state") == 0 &&
                   ev.data.scalar.length == 5) {
            yaml_event_t val;
            rc = next(s, &val);
            if (rc == 0) {
                rc = take_state(s, &val, out, cap);
                yaml_event_delete(&val);
            }
        } else { /* another key (a collection as a key, too), then its value */
            yaml_event_t val;
            rc = skip_node(s, &ev) != 0 || next(s, &val) != 0 ? -1 : 1;
            if (rc == 1) {
                rc = skip_node(s, &val) != 0 ? -1 : 1;
                yaml_event_delete(&val);
            }
        }
        yaml_event_delete(&ev);
        if (rc != 1)
            return rc;
    }
}

int ug_ctlp_state(yaml_read_handler_t *read, void *data, const char *name, char *out, size_t cap, char *err,
                  size_t errcap)
{
    scan s = {.name = name, .err = err, .errcap = errcap};
    if (!yaml_parser_initialize(&s.ps))
        return snprintf(err, errcap, "%s: out of memory", name), -1;
    yaml_parser_set_input(&s.ps, read, data);
    int rc = find_state(&s, out, cap);
    yaml_parser_delete(&s.ps);
    return rc;
}

int ug_ctlp_socket(const char *policy, char *out, size_t cap, char *err, size_t errcap)
{
    char why[128], state[UG_PATH_MAX], dir[UG_PATH_MAX];
    int fd = ug_file_open(policy, UG_POLICY_FILE_MAX, NULL, why, sizeof why);
    if (fd < 0)
        return snprintf(err, errcap, "--policy %s: cannot read: %s (at most %u bytes)", policy, why,
                        UG_POLICY_FILE_MAX), -1;
    ug_yinput in = {.fd = fd, .max = UG_POLICY_FILE_MAX};
    int rc = ug_ctlp_state(ug_yinput_read, &in, policy, state, sizeof state, err, errcap);
    close(fd);
    if (rc != 0 && in.too_big)
        return snprintf(err, errcap, "--policy %s: cannot read: larger than %u bytes", policy, UG_POLICY_FILE_MAX), -1;
    if (rc != 0 && in.err)
        return snprintf(err, errcap, "--policy %s: cannot read: %s", policy, strerror(in.err)), -1;
    if (rc != 0)
        return -1;
    int w = state[0] == '/' ? snprintf(out, cap, "%s/upgate.ctl", state)
                            : (ug_policy_dir(policy, dir), snprintf(out, cap, "%s/%s/upgate.ctl", dir, state));
    if (w < 0 || (size_t)w >= cap)
        return snprintf(err, errcap, "--policy %s: the control socket's path is too long", policy), -1;
    return 0;
}
