/* An instance's life: made, its store opened, its first policy made live, reloaded, ticked, flushed, finished, freed. */
#ifndef UG_INSTANCE_H
#define UG_INSTANCE_H

#include "core/live.h"

/* A new instance for host (libsodium ready, workers and their guards);
 * NULL with err set. Free it with ug_inst_free. */
ug_inst *ug_inst_new(const ug_host *host, char *err, size_t errcap);
/* Loads the policy at path and opens the state folder it names (or the
 * host's); the policy, or NULL with err set. */
ug_policy *ug_inst_open(ug_inst *I, const char *path, char *err, size_t errcap);
/* An add-on's hooks (core/sink.h) and what it adds to control
 * (core/control.h), either NULL; once, between ug_inst_open and
 * ug_inst_start. */
void ug_inst_subscribe(ug_inst *I, const ug_sink *sink, const ug_ctl_ext *ext);
/* Makes p (taken) the live policy and starts the sink; 0, or -1 with err. */
int ug_inst_start(ug_inst *I, ug_policy *p, char *err, size_t errcap);
/* Loads the policy at path (NULL: the live one's) and swaps it in; 0, or
 * -1 with err. */
int ug_inst_reload(ug_inst *I, const char *path, char *err, size_t errcap);
/* The ABI's flush(), tick() and finish(). */
int ug_inst_flush(ug_inst *I, unsigned worker);
void ug_inst_tick(ug_inst *I);
int ug_inst_finish(ug_inst *I, char *err, size_t errcap);
/* The ABI's destroy(): stops the sink when finish() did not, frees all. */
void ug_inst_free(ug_inst *I);

#endif
