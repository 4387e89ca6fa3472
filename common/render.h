/* Policy summaries and decision traces (JSON from the plugin's check() and control()) as text for people. */
#ifndef UG_RENDER_H
#define UG_RENDER_H

#include <stddef.h>
#include <stdint.h>
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

/* t (Unix seconds) as RFC 3339 UTC ("2026-12-01T10:00:00Z") in buf, or
 * the number when it is no such time; returns buf. */
const char *ug_render_time(int64_t t, char *buf, size_t cap);
/* Hundredths of a percent (150) as "1.50%" in buf, "-" when v is not a
 * non-negative integer; returns buf. */
const char *ug_render_percent(const json_t *v, char *buf, size_t cap);
/* len bytes of s, each control byte as \xNN: text from the tracker cannot
 * move the cursor or colour the terminal. */
void ug_render_text(const char *s, size_t len, FILE *out);

/* ---- upgate-ctl (render_ctl.c): replies of docs/control.md for people ---- */

/* status as tables: the tracker, then per rollout its header and one row
 * per stage; now (Unix seconds) for "expires in N days". */
void ug_render_status(const json_t *st, FILE *out, int64_t now);
/* One frame of upgate-ctl watch: status with a progress bar per stage
 * (granted/quota, else the percentage in force). */
void ug_render_watch(const json_t *st, FILE *out, int64_t now);
/* history: one line per change, "TIME  WHO  WHAT" (WHO: "uid U pid P",
 * "host pid P", "signal", "automatic", "fleet"). */
void ug_render_history(const json_t *reply, FILE *out);
/* status' and explain's census: {"hour", "day", "week", "top_day", "source",
 * "trackers"}, printed "census (fleet, K trackers): ..." for the fleet's
 * merged census; nothing for null. */
void ug_render_census_brief(const json_t *c, FILE *out, int indent);
/* A rollout's or stage's off-peak windows ({"open", "next", "peer"}); nothing for null. */
void ug_render_window(const json_t *w, FILE *out, int indent, int64_t now);
/* A stage's gate state (status, explain): "PREFIXstep N in force; gate
 * before step K waits for: ..."; nothing for null. */
void ug_render_gate(const json_t *g, const char *prefix, FILE *out, int indent);
/* The census reply: each window's total and top versions, then the buckets. */
void ug_render_census(const json_t *reply, FILE *out);
/* One row of grants: uid, stage and grant time. */
void ug_render_grant(const json_t *row, FILE *out);
/* Any reply: every member but ok as "name: value", objects and lists of
 * objects nested by indent. */
void ug_render_members(const json_t *o, FILE *out, int indent);

#endif
