/* Reading the policy's files after the host dropped privileges: a helper process that keeps the folders open. */
#ifndef UG_OPENER_H
#define UG_OPENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ug_proto.h"

/*
 * A host that starts as root and then setuid()s (to nobody) or chroot()s
 * says so at create() (UG_HF_DROPS_PRIVILEGES). A directory handle alone
 * does not let nobody read a 0600 key in a 0700 folder (the kernel checks
 * the folder's search bit and the file's mode on every openat), and a
 * chroot hides every path. So create() forks a helper first, which keeps
 * the user and the root that started the host: it holds a directory handle
 * of each folder the first policy read a file in, and opens single names
 * beneath them (openat2 RESOLVE_BENEATH: no link out of the folder) for
 * the plugin, passing the descriptor back over a socket (SCM_RIGHTS). It
 * runs nothing but system calls (it is a fork of a threaded process), takes
 * no new folder once sealed, and exits when the plugin closes its socket.
 * A reload reads every file through it: a file in a folder the first
 * policy did not name cannot be read, and says so.
 */

#define UG_OPENER_FOLDERS 64u /* folders the helper holds */
#define UG_OPENER_FILES 256u  /* files of the first policy remembered for the checks */

typedef struct ug_opener ug_opener;

/* A refusal the checks found: a file a reload after dropping privileges
 * could not read, and why. */
typedef struct {
    const char *file;
    char why[200];
} ug_opener_fail;

/* Forks the helper (nothing held yet). NULL with why in err. */
ug_opener *ug_opener_start(char *err, size_t errcap);
/* An opener without a helper, to list what a load reads (check()); NULL
 * when out of memory. */
ug_opener *ug_opener_lister(void);
/* Closes its socket (the helper exits), reaps it, frees o. NULL is fine. */
void ug_opener_stop(ug_opener *o);

/* Until ug_opener_seal, the calling thread's file opens are plain open()s
 * whose paths o remembers (ug_file_opener_set): the first policy's load. */
void ug_opener_record(ug_opener *o);
/* Hands the helper a handle of each remembered folder, seals it, then opens
 * each remembered file through it: *fails gets those it could not (at most
 * cap; how many there were is returned, or -1 with err when the helper
 * failed). The thread's opens are plain open()s again. */
int ug_opener_seal(ug_opener *o, ug_opener_fail *fails, size_t cap, char *err, size_t errcap);

/* A lister's audit: each remembered file opened beneath its folder as the
 * helper would (as this process's user): *fails gets those it could not,
 * at most cap; how many there were. The thread's opens are plain again. */
int ug_opener_audit(ug_opener *o, ug_opener_fail *fails, size_t cap);
/* The remembered folders; how many. */
unsigned ug_opener_folders(const ug_opener *o, const char *const **dirs);

/* The calling thread's file opens go through the helper (a reload), until
 * ug_opener_plain(). */
void ug_opener_use(ug_opener *o);
void ug_opener_plain(void);
/* One file through the helper: a descriptor, or -1 with why (ug_file_opener). */
int ug_opener_open(void *o, const char *path, char *why, size_t whycap);

/* The helper's side, apart so that fuzz/fuzz_opener.c can drive it: the
 * folders it holds, and whether it still takes one. */
typedef struct {
    int dirs[UG_OPENER_FOLDERS];
    unsigned n;
    bool sealed;
} ug_opener_helper;

/* A request: uint32 op (1 add the folder passed with it, 2 seal, 3 open
 * name beneath folder index), uint32 index, char name[256] (one name,
 * NUL-terminated, no '/'), in the plugin's byte order. */
#define UG_OPENER_REQUEST_LEN 264u

/* Serves one message of len bytes (what recvmsg gave: anything the
 * unprivileged host sends) with the descriptor it carried, or -1, which h
 * now owns (kept as a folder, else closed). The errno to answer (0: done);
 * *fd the file opened, or -1. Only system calls: it runs in a fork of a
 * threaded process. */
int32_t ug_opener_serve(ug_opener_helper *h, const void *msg, size_t len, int passed, int *fd) UG_WUR;

/* Could user read path by its path (each folder on the way searchable, the
 * file readable, by mode bits, owner and groups; ACLs are not read)? false
 * with why, which names the user and the folder or file at fault. */
bool ug_user_can_read(const char *user, const char *path, char *why, size_t whycap);

#endif
