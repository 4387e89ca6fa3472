/* libupgate-host: loads upgate.so into a tracker and runs everything a host needs around it. */
#ifndef UPGATE_HOST_H
#define UPGATE_HOST_H

/*
 * A tracker (or any UDP server) that loads upgate.so makes four calls:
 *
 *   ug_host_open()      once, after daemon()/fork and before it drops
 *                       privileges: loads the plugin, checks its ABI,
 *                       create()s it, starts the admin threads.
 *   ug_host_datagram()  for every datagram its UDP socket receives, before
 *                       it parses it: UG_HOST_NOT_MINE means "serve it as
 *                       usual"; anything else means the adapter answered,
 *                       holds the answer for the commit, or dropped it.
 *   ug_host_end_batch() only in UG_HOST_BATCH, after each receive batch.
 *   ug_host_close()     at shutdown (also run by exit(), see below).
 *
 * Read models, chosen at open (docs/hosts.md):
 *   UG_HOST_ONE_AT_A_TIME  one thread reads one datagram per wake-up of its
 *       event loop (select, poll, epoll, libowfat). A HINT that promises a
 *       grant not yet on disk is held; the adapter commits (flush) and sends
 *       what it holds when the socket has nothing more queued (FIONREAD),
 *       when 64 replies are held, and when a datagram of the host's own
 *       protocol finds the queue empty. It never leaves a reply held while
 *       the host waits for the socket: the admin thread commits what a
 *       quiet socket left behind within UG_HOST_HOLD_MS.
 *   UG_HOST_SHARED_SOCKET  several threads block in recvfrom() on one
 *       socket. As above, and the thread that finds the queue empty also
 *       commits for the others.
 *   UG_HOST_BATCH  the host reads batches (recvmmsg) and hands each to
 *       ug_host_batch() (or each datagram to ug_host_datagram(), then
 *       calls ug_host_end_batch()): the replies that need no disk go out
 *       in one sendmmsg, then one commit, then the held ones in another,
 *       as upgate-node does.
 *
 * Threads. ug_host_datagram() may be called from any thread, also from
 * threads the host started before ug_host_open(): each calling thread gets a
 * worker index on its first call (0, 1, ... up to `workers`; more threads
 * than workers share indexes, one at a time). ug_host_reload(),
 * ug_host_control() and ug_host_stats() may be called from any thread; the
 * adapter serializes them with the plugin's tick(). ug_host_reload_async()
 * may be called from a signal handler.
 *
 * Admin threads. ug_host_open() starts one thread that calls tick() every
 * second and commits what a quiet socket left held, and one that serves the
 * control socket (docs/control.md, for upgate-ctl). Both, and create()
 * itself (whose fleet thread inherits it), run with every signal blocked, so
 * the host's signals reach the host's own threads only.
 *
 * Fork. Threads do not survive fork(): open after daemon(). A process forked
 * later never touches the plugin (its exit() does not close it).
 *
 * Shutdown. ug_host_close() commits what is held, then calls the plugin's
 * finish() and destroy(). ug_host_open() registers it with atexit(), so a
 * host that leaves with exit() (also from a signal handler) closes too;
 * the second call is a no-op. Called from inside ug_host_datagram() (a
 * signal handler that calls exit() interrupted it), it commits every other
 * worker and leaves the plugin as it is: a reply that waits for a commit is
 * never sent without it. UG_HOST_DEFER_SIGNALS keeps such a handler out of
 * the calls, so that the close commits everything.
 *
 * Link: -lupgate-host (it dlopen()s upgate.so; -ldl -lpthread -ljansson).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "upgate_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define UG_HOST_API __attribute__((visibility("default")))
#define UG_HOST_WUR __attribute__((warn_unused_result))
#else
#define UG_HOST_API
#define UG_HOST_WUR
#endif

#define UG_HOST_VERSION "1.0.0"
#define UG_HOST_WORKERS_MAX 256u
#define UG_HOST_HOLD_MAX 64u /* replies held per worker before a commit is forced */
#define UG_HOST_HOLD_MS 5    /* the longest a quiet host leaves a reply held (default) */

typedef enum {
    UG_HOST_ONE_AT_A_TIME = 1,
    UG_HOST_SHARED_SOCKET = 2,
    UG_HOST_BATCH = 3,
} ug_host_model;

/* Bits of ug_host_config.flags. */
#define UG_HOST_NO_ATEXIT 1u     /* the host calls ug_host_close() itself */
#define UG_HOST_DEFER_SIGNALS 2u /* hold the host's signals while a thread is inside the plugin (two system
                                    calls per upgate datagram): a signal handler that calls exit()
                                    (opentracker's SIGINT) then runs between calls, and the close at exit
                                    commits every worker */
#define UG_HOST_OFFLOAD 4u       /* UG_HOST_ONE_AT_A_TIME, UG_HOST_SHARED_SOCKET: the host's thread only
                                    copies an upgate datagram into a ring (512 deep) and returns
                                    UG_HOST_HELD; a worker thread of the adapter's answers them in batches
                                    and commits after each. The host's own protocol then never waits behind
                                    upgate's signatures; the plugin runs with one worker. */
#define UG_HOST_EVERY_DATAGRAM 8u /* the host has no protocol of its own on the socket (upgate-node): every
                                     datagram goes to the plugin, not only those with the prefix; a PASS
                                     with a reply (the WAIT for an untargeted peer) is sent as the host's
                                     normal service, a PASS without one is UG_HOST_NOT_MINE */

/* What the plugin answered to one datagram, for ug_host_config.answered. */
typedef struct {
    unsigned worker;
    const struct sockaddr *src;
    socklen_t srclen;
    const uint8_t *in;
    size_t len;
    ug_verdict verdict;
    const uint8_t *out; /* the reply; out_len 0: none */
    size_t out_len;
    unsigned flags;     /* UG_REPLY_* */
} ug_host_answer;

typedef struct {
    uint32_t size;       /* sizeof(ug_host_config) as the host compiled it */
    const char *plugin;  /* upgate.so; NULL: UG_HOST_DEFAULT_PLUGIN */
    const char *policy;  /* the policy file (required) */
    const char *control; /* the control socket; NULL: upgate.ctl in the policy's state folder; "off": none */
    ug_host_model model;
    unsigned workers;    /* threads that call ug_host_datagram at once; 0: 1 */
    const char *name;    /* the host, for log lines ("opentracker"); NULL: "host" */
    /* One line, no newline, from any thread (the adapter serializes).
     * NULL: "upgate: LEVEL: line" on stderr. */
    void (*log)(void *ctx, ug_log_level level, const char *line);
    void *log_ctx;
    unsigned flags;      /* UG_HOST_* bits */
    unsigned hold_ms;    /* how long a quiet host may leave replies held; 0: UG_HOST_HOLD_MS */
    /* Optional: called on the worker's thread after the plugin answered a
     * datagram, before its reply is sent (upgate-node --capture). It must
     * not block: the worker's other peers wait. */
    void (*answered)(void *ctx, const ug_host_answer *ans);
    void *answered_ctx;
    /* How messages name the three settings: PREFIX "plugin", "policy",
     * "control". NULL: "upgate." (opentracker's keys); "--" for a host
     * whose settings are options (upgate-node's --plugin). */
    const char *setting_prefix;
    /* The user the host switches to after ug_host_open() (its setuid()):
     * NULL when it does not say (a host started as root is taken to drop
     * privileges, or chroot, later); "" when it never does. The plugin
     * then keeps what a reload needs to read the policy's files (a helper
     * process holding their folders) and logs each file a reload could
     * not read (docs/hosts.md, Privileges). */
    const char *user;
} ug_host_config;

typedef struct ug_host_adapter ug_host_adapter;
struct mmsghdr; /* <sys/socket.h> with _GNU_SOURCE: recvmmsg()'s */

typedef enum {
    UG_HOST_NOT_MINE = 0, /* not an upgate datagram: serve it as usual */
    UG_HOST_SENT = 1,     /* answered now */
    UG_HOST_HELD = 2,     /* the answer goes out with the next commit */
    UG_HOST_DROPPED = 3,  /* upgate's, and unanswered (malformed, a REPORT, closed) */
} ug_host_result;

/* What the adapter did, summed over workers (read without locks). Later
 * versions append fields: ug_host_counters_get() fills as many as the
 * caller's size covers. */
typedef struct {
    uint64_t upgate;        /* datagrams the plugin was asked about */
    uint64_t foreign;       /* datagrams handed back to the host (UG_HOST_NOT_MINE) */
    uint64_t sent_now;      /* replies that did not wait for the disk */
    uint64_t held;          /* replies that waited for a commit */
    uint64_t sent_held;     /* of those, sent after their commit */
    uint64_t held_back;     /* of those, dropped: the commit failed */
    uint64_t dropped;       /* upgate datagrams with no reply, REPORTs apart */
    uint64_t commits;       /* flush() calls */
    uint64_t commit_fails;
    uint64_t idle_commits;  /* commits the admin thread made for a quiet socket */
    uint64_t send_errors;   /* replies the kernel refused, all classes below */
    uint64_t oversized;     /* replies longer than their request, never sent */
    uint64_t ring_full;     /* UG_HOST_OFFLOAD: datagrams dropped, the worker was behind */
    uint64_t sent;          /* replies the kernel took */
    uint64_t send_unreach;  /* EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ENETDOWN, EADDRNOTAVAIL */
    uint64_t send_denied;   /* EACCES, EPERM: a prohibit route or a firewall */
    uint64_t send_busy;     /* EAGAIN, ENOBUFS, ENOMEM: the socket or the kernel was full */
    uint64_t send_other;
    uint64_t untargeted;    /* PASS with the plugin's WAIT, sent (the host's normal service) */
    uint64_t control_requests; /* control socket connections served */
    uint64_t reports;       /* REPORTs: never answered, by design (not in dropped) */
} ug_host_counters;

/* Does buf start like an upgate datagram (UG_PORT_PREFIX, then a version
 * byte from UG_PORT_VERSION_MIN to UG_PORT_VERSION_MAX)? */
UG_HOST_API bool ug_host_is_upgate(const void *buf, size_t len);

/* Loads and starts the plugin as c says. NULL on failure, with one line
 * naming the file or setting at fault in err (also logged). */
UG_HOST_API ug_host_adapter *ug_host_open(const ug_host_config *c, char *err, size_t errcap) UG_HOST_WUR;

/* One datagram the host received on fd from src (as recvfrom gave it).
 * a NULL: UG_HOST_NOT_MINE, so a host without upgate configured may call
 * it all the same. Replies go out on fd with sendto(). */
UG_HOST_API ug_host_result ug_host_datagram(ug_host_adapter *a, int fd, const struct sockaddr *src, socklen_t srclen,
                                            const void *buf, size_t len);
/* The same, for hosts that keep a source as 16 bytes of IPv6 (IPv4
 * mapped) and a port in host order (libowfat's socket_recv6). */
UG_HOST_API ug_host_result ug_host_datagram6(ug_host_adapter *a, int fd, const uint8_t ip[16], uint16_t port,
                                             uint32_t scope_id, const void *buf, size_t len);
/* UG_HOST_BATCH: commits this thread's worker and sends what it held. */
UG_HOST_API void ug_host_end_batch(ug_host_adapter *a);
/* UG_HOST_BATCH: the n datagrams one recvmmsg() on fd gave (msg_len set;
 * msg_name, msg_namelen their sources; one iovec each; MSG_TRUNC in
 * msg_flags: longer than the iovec), answered as one batch under one lock:
 * the replies that need no disk in one sendmmsg, one commit, the held ones
 * in another. res (may be NULL) gets each datagram's result: those
 * UG_HOST_NOT_MINE are the host's to serve. The same as ug_host_datagram()
 * for each, then ug_host_end_batch(), in one call. In the other models it
 * is ug_host_datagram() for each. */
UG_HOST_API void ug_host_batch(ug_host_adapter *a, int fd, struct mmsghdr *msgs, unsigned n, ug_host_result *res);

/* Re-reads the policy file. 0, or -1 with why in err (the running policy
 * stays; the adapter logs it too). From any thread. */
UG_HOST_API int ug_host_reload(ug_host_adapter *a, char *err, size_t errcap);
/* The same, saying who asked (a SIGHUP: UG_CALLER_SIGNAL; by NULL: the host
 * itself), for the plugin's history (a plugin of ABI minor 3 or later). */
UG_HOST_API int ug_host_reload_by(ug_host_adapter *a, const ug_caller *by, char *err, size_t errcap);
/* Asks the admin thread to reload soon; async-signal-safe (for a SIGHUP
 * handler, when the host has SIGHUP to spare); the history says a signal
 * asked. */
UG_HOST_API void ug_host_reload_async(ug_host_adapter *a);
/* One control request (docs/control.md), as the control socket passes it.
 * 0 or -1 as the plugin's control() returned; -2: the plugin has none. */
UG_HOST_API int ug_host_control(ug_host_adapter *a, const char *req, size_t len, ug_emit emit, void *ctx);
/* The same, saying who asked (the control socket passes its client's
 * SO_PEERCRED as UG_CALLER_CONTROL; by NULL: the host itself), for the
 * plugin's history (a plugin of ABI minor 3 or later). */
UG_HOST_API int ug_host_control_by(ug_host_adapter *a, const ug_caller *by, const char *req, size_t len,
                                   ug_emit emit, void *ctx);
/* The plugin's counters (its stats()); returns how many exist. */
UG_HOST_API size_t ug_host_stats(ug_host_adapter *a, ug_stat *out, size_t cap);
/* Fills out as far as size (sizeof *out as the host compiled it) covers. */
UG_HOST_API void ug_host_counters_get(const ug_host_adapter *a, ug_host_counters *out, size_t size);
/* The control socket in use, or NULL. */
UG_HOST_API const char *ug_host_control_path(const ug_host_adapter *a);
/* This thread's worker index (assigned on first use). */
UG_HOST_API unsigned ug_host_worker(ug_host_adapter *a);
/* The plugin's table, as loaded (its name, version, ABI, entry points). */
UG_HOST_API const ug_plugin *ug_host_plugin(const ug_host_adapter *a);
/* Loads a plugin without creating it (to check() a policy, say): dlopen,
 * the ABI check. NULL with a line naming path in err. */
UG_HOST_API const ug_plugin *ug_host_load(const char *path, char *err, size_t errcap) UG_HOST_WUR;

/* Commits what is held, finish(), destroy(). 0 when every grant a reply
 * promised is on disk, else -1 (logged). A no-op returning the same the
 * second time; threads that still call ug_host_datagram() get
 * UG_HOST_DROPPED or UG_HOST_NOT_MINE. The adapter's memory stays: a
 * thread may still hold the pointer. */
UG_HOST_API int ug_host_close(ug_host_adapter *a);
/* After a close that returned -1: why (finish()'s line; "" when the
 * close ran from inside a datagram call). "" otherwise. */
UG_HOST_API const char *ug_host_close_error(const ug_host_adapter *a);
/* ug_host_close(), then frees the adapter: only once no thread can call
 * it any more. */
UG_HOST_API void ug_host_free(ug_host_adapter *a);

#ifdef __cplusplus
}
#endif

#endif
