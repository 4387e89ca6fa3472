/* Where a running upgate-node records its control socket, keyed by its policy file, so that upgate-ctl --policy finds it without reading the policy (docs/control.md "Finding the socket"). */
#ifndef UG_RUNREC_H
#define UG_RUNREC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "ug_proto.h"

#define UG_RUNREC_DIRS 4
/* A record's first line, and the most bytes of one (three lines, two paths). */
#define UG_RUNREC_MAGIC "upgate-node control record 1"
#define UG_RUNREC_MAX (2 * PATH_MAX + 64)
/* A record's file name: this prefix and 32 hex digits. */
#define UG_RUNREC_PREFIX "node-"
#define UG_RUNREC_NAME_MAX (sizeof UG_RUNREC_PREFIX + 32)

/* The runtime folders, in the order the node picks one and upgate-ctl
 * looks: $RUNTIME_DIRECTORY (systemd's RuntimeDirectory=, and an override),
 * /run/upgate, $XDG_RUNTIME_DIR/upgate, /tmp/upgate-UID. */
typedef struct {
    char path[UG_RUNREC_DIRS][PATH_MAX];
    bool shared_parent[UG_RUNREC_DIRS]; /* in a world-writable folder: must be ours */
    unsigned n;
} ug_rundirs;

/* What a record says. */
typedef struct {
    pid_t pid;
    char policy[PATH_MAX]; /* the policy file's real path */
    char socket[PATH_MAX]; /* the control socket, absolute */
} ug_runrec;

void ug_rundirs_list(ug_rundirs *d);

/* Whether folder i of d may hold records this process trusts: a folder,
 * not a link, writable by no one but its owner (and, in a world-writable
 * parent such as /tmp, owned by this user). */
bool ug_rundir_trusted(const ug_rundirs *d, unsigned i);

/* The record name for a policy: UG_RUNREC_PREFIX and 32 hex digits of the
 * BLAKE2b of its real path, which goes to real. 0, or -1 with
 * "POLICY: why" in err (no such file, say). */
int ug_runrec_name(const char *policy, char real[PATH_MAX], char name[UG_RUNREC_NAME_MAX], char *err,
                   size_t errcap) UG_WUR;

/* The record's text: the magic line, "pid N", "policy PATH", "socket PATH". */
int ug_runrec_format(const ug_runrec *r, char *out, size_t cap) UG_WUR;

/* Parses exactly what ug_runrec_format writes: a pid from 1, absolute
 * paths without control bytes. 0, or -1 with why. */
int ug_runrec_parse(const char *text, size_t len, ug_runrec *r, char *why, size_t whycap) UG_WUR;

/* Reads the record at path (a regular file, not a link, at most
 * UG_RUNREC_MAX bytes). 0; 1 when there is none; -1 with why. */
int ug_runrec_read(const char *path, ug_runrec *r, char *why, size_t whycap) UG_WUR;

/* Whether process pid exists (it may be another user's). */
bool ug_runrec_alive(pid_t pid);

#endif
