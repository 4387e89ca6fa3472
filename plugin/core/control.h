/* Control (docs/control.md): one JSON request in, one reply out; and what an add-on adds to it. */
#ifndef UG_CONTROL_H
#define UG_CONTROL_H

#include <jansson.h>

#include "core/live.h"

/* What an add-on adds to control, registered with its sink
 * (ug_inst_subscribe). Every member may be NULL. */
struct ug_ctl_ext {
    void *ctx;
    /* Members added to status: to the tracker object, and to each stage's
     * (outcomes: its counts by ug_outcome, then one of offers not taken). */
    void (*status_tracker)(void *ctx, json_t *tracker);
    void (*status_stage)(void *ctx, json_t *stage, const ug_live_rollout *lr, const ug_live_stage *ls,
                         const uint64_t *outcomes);
    /* Members added to the reply of pause, resume and halt; told: what the
     * sink's flag() answered for the last rollout named, -1 without one. */
    void (*flag_reply)(void *ctx, json_t *reply, int told);
    /* Families added to the metrics' text exposition, each with its HELP
     * and TYPE lines, through emit(ectx, ...); quick. */
    void (*metrics)(void *ctx, ug_emit emit, void *ectx);
    /* The command it answers, one of control.def's ADDON rows (which say
     * the members it takes), and what runs it (ug_ctl_reply, ug_ctl_refuse). */
    const char *cmd;
    int (*run)(void *ctx, ug_inst *I, json_t *req, ug_emit emit, void *ectx);
};

/* The ABI's control(), check() and stats(). */
int ug_control(ug_inst *I, const char *req, size_t len, ug_emit emit, void *ctx);
int ug_check(const ug_host *host, const char *path, const char *explain, ug_emit emit, void *ctx, char *err,
             size_t errcap);
size_t ug_stats(ug_inst *I, ug_stat *out, size_t cap);

/* Emits o (stolen; NULL: an empty object) with "ok" set; 0 or -1 to match ok. */
int ug_ctl_reply(ug_emit emit, void *ctx, json_t *o, bool ok);
/* Refuses with one line of ASCII under "error"; -1. */
int ug_ctl_refuse(ug_emit emit, void *ctx, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A control action, logged and written to the history as the caller's
 * (action: a word; rollout, reason: NULL when none; line: the whole
 * sentence); 0 or -1. */
int ug_ctl_note(ug_inst *I, const char *action, const char *rollout, const char *reason, const char *line);

#endif
