/* libupgate-host's insides: the adapter, its worker slots and the parts' hidden entry points. */
#ifndef UG_HOST_INTERNAL_H
#define UG_HOST_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/un.h>

#include "upgate/host.h"
#include "ug_proto.h"

#define UG_HOST_HIDDEN __attribute__((visibility("hidden")))
#define UH_ENTRY(p, m) (UG_HAS_FIELD(ug_plugin, (p)->size, m) ? (p)->m : NULL)

typedef struct uh_offload uh_offload; /* offload.c */

/* A reply waiting for its worker's commit, or (UG_HOST_BATCH) for the end
 * of its batch. */
typedef struct {
    int fd;
    bool late; /* waits for the commit (UG_REPLY_AFTER_FLUSH) */
    socklen_t tolen;
    struct sockaddr_storage to;
    size_t len;
    uint8_t bytes[UG_DGRAM_MAX];
} uh_reply;

/* Counters of one worker, written under its lock, read without. */
#define UG_HOST_TYPE_REPORT 5u /* the type byte of a REPORT (protocol.md, protocol-v2.md section 3) */

enum { UC_UPGATE, UC_FOREIGN, UC_SENT_NOW, UC_HELD, UC_SENT_HELD, UC_HELD_BACK, UC_DROPPED, UC_COMMITS,
       UC_COMMIT_FAILS, UC_IDLE_COMMITS, UC_SEND_ERRORS, UC_OVERSIZED, UC_RING_FULL, UC_SENT, UC_SEND_UNREACH,
       UC_SEND_DENIED, UC_SEND_BUSY, UC_SEND_OTHER, UC_UNTARGETED, UC_REPORTS, UC_COUNT };

/* One worker index: what its threads hold between commits. */
typedef struct {
    _Alignas(64) pthread_mutex_t mu;
    unsigned index;
    bool closed;             /* after close: no call reaches the plugin */
    unsigned n;              /* replies held (UG_HOST_BATCH: also those waiting for the batch's end) */
    unsigned late;           /* of those, how many wait for the commit */
    uh_reply *held;          /* UG_HOST_HOLD_MAX of them; freed at close */
    _Atomic bool dirty;      /* handled an upgate datagram since the last commit */
    _Atomic int64_t last;    /* monotonic ms of its last call: the host is quiet after UG_HOST_HOLD_MS */
    _Atomic uint64_t c[UC_COUNT];
} uh_slot;

typedef struct {
    int fd, stop[2];
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev;
    ino_t ino;
    pthread_t thread;
    bool on;
    struct uh_conn *conns; /* its clients' slots (ctlsock.c), the thread's alone */
} uh_ctl;

struct ug_host_adapter {
    uint64_t id;     /* process-unique: a thread's cached index names it */
    pid_t pid;       /* the process that opened it; a forked child never closes it */
    const ug_plugin *api;
    void *inst;
    ug_host host;    /* lent to create(); lives as long as the instance */
    ug_verdict (*handle2)(void *, unsigned, const struct sockaddr *, socklen_t, const uint8_t *, size_t, uint8_t *,
                          size_t, size_t *, unsigned *);
    ug_host_model model;
    bool every;      /* UG_HOST_EVERY_DATAGRAM */
    void (*answered)(void *ctx, const ug_host_answer *ans);
    void *answered_ctx;
    unsigned nworkers;
    unsigned hold_ms;
    uh_slot *slots;
    _Atomic unsigned threads; /* calling threads seen so far */
    pthread_mutex_t plugin_mu; /* tick, reload, stats, control: the ABI's rule */
    pthread_mutex_t log_mu;
    void (*log)(void *ctx, ug_log_level level, const char *line);
    void *log_ctx;
    char name[32];
    char setting[24]; /* what the host's settings are called in messages, before "plugin" (upgate.) */
    char policy[PATH_MAX];
    char user[64];   /* ug_host.run_as points here */
    /* the admin thread */
    pthread_t admin;
    bool admin_on;
    int wake;                   /* eventfd: stop, reload, a worker became dirty */
    _Atomic bool admin_idle;    /* sleeping for up to a second: a new hold must wake it */
    _Atomic bool want_reload, want_stop;
    uh_ctl ctl;
    _Atomic uint64_t ctl_served; /* control connections served */
    uh_offload *off;            /* UG_HOST_OFFLOAD: the ring and its worker */
    /* closing */
    _Atomic int state;          /* 0 open, 1 closing, 2 closed */
    int close_rc;
    char close_err[1024];       /* what finish() said when it failed */
    unsigned flags;
    sigset_t deferred;          /* UG_HOST_DEFER_SIGNALS: what a call blocks */
    ug_host_adapter *next;      /* the list exit() closes */
};

/* Logs one formatted line through the host's log (serialized). */
void ug_host_logf_(ug_host_adapter *a, ug_log_level level, const char *fmt, ...) UG_HOST_HIDDEN
    __attribute__((format(printf, 3, 4)));
/* The host callbacks the plugin gets. */
void ug_host_plugin_log_(void *ctx, ug_log_level level, const char *msg) UG_HOST_HIDDEN;
int64_t ug_host_mono_ms_(void) UG_HOST_HIDDEN;

/* datagram.c */
int ug_host_slots_init_(ug_host_adapter *a, char *err, size_t errcap) UG_HOST_HIDDEN;
/* Commits every dirty worker whose lock is free and whose last call came
 * before `older_than` (monotonic ms); how many it committed. Not in
 * UG_HOST_BATCH, whose host commits with ug_host_end_batch(). */
unsigned ug_host_commit_idle_(ug_host_adapter *a, int64_t older_than) UG_HOST_HIDDEN;
/* The earliest last call of a dirty worker, or 0 when none is dirty. */
int64_t ug_host_oldest_dirty_(ug_host_adapter *a) UG_HOST_HIDDEN;
/* Takes every worker (commits what it holds, closes it) except one the
 * calling thread is inside of; true when the caller is inside a call. */
bool ug_host_slots_close_(ug_host_adapter *a) UG_HOST_HIDDEN;
void ug_host_slots_free_(ug_host_adapter *a) UG_HOST_HIDDEN;

/* The worker of UG_HOST_OFFLOAD (datagram.c): takes worker 0 for a batch,
 * answers each datagram of it, commits and sends what it held. */
void ug_host_worker_begin_(ug_host_adapter *a) UG_HOST_HIDDEN;
void ug_host_worker_one_(ug_host_adapter *a, int fd, const struct sockaddr *src, socklen_t sl, const uint8_t *buf,
                         size_t len) UG_HOST_HIDDEN;
void ug_host_worker_end_(ug_host_adapter *a) UG_HOST_HIDDEN;

/* offload.c: the ring between the host's threads and the worker. */
int ug_host_offload_start_(ug_host_adapter *a, char *err, size_t errcap) UG_HOST_HIDDEN;
/* Copies one upgate datagram in: UG_HOST_HELD, or UG_HOST_DROPPED when the
 * ring is full or stopping. */
ug_host_result ug_host_offload_push_(ug_host_adapter *a, int fd, const struct sockaddr *src, socklen_t sl,
                                     const void *buf, size_t len) UG_HOST_HIDDEN;
/* The worker answers what the ring holds, then ends. */
void ug_host_offload_stop_(ug_host_adapter *a) UG_HOST_HIDDEN;
void ug_host_offload_free_(ug_host_adapter *a) UG_HOST_HIDDEN;

/* admin.c */
int ug_host_admin_start_(ug_host_adapter *a, char *err, size_t errcap) UG_HOST_HIDDEN;
void ug_host_admin_stop_(ug_host_adapter *a) UG_HOST_HIDDEN;
/* Wakes the admin thread if it sleeps long (a worker just became dirty). */
void ug_host_admin_poke_(ug_host_adapter *a) UG_HOST_HIDDEN;

/* ctlsock.c: the control socket of docs/control.md. */
int ug_host_ctl_start_(ug_host_adapter *a, const char *path, char *err, size_t errcap) UG_HOST_HIDDEN;
void ug_host_ctl_stop_(ug_host_adapter *a) UG_HOST_HIDDEN;
/* The default socket: upgate.ctl in the state folder the plugin names in
 * reply to {"cmd":"info"}; false when it names none. */
bool ug_host_ctl_default_(ug_host_adapter *a, char *path, size_t cap) UG_HOST_HIDDEN;

/* Runs fn(arg) in a new thread with every signal blocked. */
int ug_host_thread_(pthread_t *t, void *(*fn)(void *), void *arg) UG_HOST_HIDDEN;

#endif
