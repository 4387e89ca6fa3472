/* Policy summaries and decision traces (JSON from the plugin's check() and control()) as text for people. */
#ifndef UG_RENDER_H
#define UG_RENDER_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/* Renders check()'s object on out: rollouts, their manifest and stages,
 * keys, the explain trace if any, and the warnings; each warning also goes
 * to warn (if not NULL) as "PROG: warning: TEXT". Members it does not know
 * are shown as "name: value", so nothing the plugin says is hidden. 0, or -1
 * with err set when json is not one JSON object. */
int ug_render_check(const char *json, size_t len, FILE *out, FILE *warn, char *err, size_t errcap);
/* An explain object (docs/control.md `explain`), indented by indent spaces. */
void ug_render_explain(const json_t *ex, FILE *out, int indent);
/* Any JSON value on one line: strings bare, lists "a, b", objects "{k: v}",
 * true/false as yes/no, null as none; Unix times of members named at,
 * start, end or expires... as RFC 3339 (see ug_render_value_key). */
void ug_render_value(const json_t *v, FILE *out);
/* ug_render_value, knowing the member's name (times by name). */
void ug_render_value_key(const char *key, const json_t *v, FILE *out);

#endif
