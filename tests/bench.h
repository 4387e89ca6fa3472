/* make bench, its parts: bench.c runs the rounds and prints the table,
 * bench_env.c owns the temp dir, keys, policies and child processes,
 * bench_servers.c the yardstick servers, bench_plugin.c the plugin loaded
 * in-process and bare libsodium. */
#ifndef UG_BENCH_H
#define UG_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "loadgen.h"
#include "ug_proto.h"
#include "upgate_plugin.h"

/* Prints "bench: ..." and exits 1; the exit handler stops every child. */
void bench_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* ---- bench_env.c ------------------------------------------------------ */

typedef struct {
    char dir[64]; /* temp dir: keys, manifest, policies, states, logs */
    uint8_t hint_sk[UG_SK_LEN], hint_pk[UG_PK_LEN];
    uint8_t rel_sk[UG_SK_LEN], rel_pk[UG_PK_LEN];
    uint8_t manifest[UG_OBJ_MAX];
    size_t manifest_len;
} bench_env;

/* Makes the temp dir (removed at exit), the keys (hint, issuer, release,
 * client; key files without a kind comment, which today's main reads too)
 * and a release manifest for 2.0.0. */
void env_init(bench_env *e);
/* Writes DIR/NAME.yaml: the keys, the release, state-NAME, targets 1.4.0,
 * no cookies, no per-network budget, then `stages`. Returns its path. */
const char *env_policy(bench_env *e, const char *name, const char *stages);

/* A child the bench started; every one is killed by PID on any exit. */
typedef struct {
    pid_t pid;
    int out;       /* node: its stdout (ready line, stats lines) */
    unsigned port; /* on 127.0.0.1 */
    char label[32];
} bench_proc;

/* Starts NODE --listen 127.0.0.1:0 --plugin SO --policy POLICY --workers N
 * and reads its port from the ready line; stderr goes to DIR/LABEL.log. */
void proc_node(bench_proc *p, bench_env *e, const char *label, const char *node, const char *so,
               const char *policy, unsigned workers);
/* Forks a yardstick server (BS_*) on 127.0.0.1:0. */
void proc_server(bench_proc *p, const char *label, int kind);
/* SIGTERM, then SIGKILL after 10 s: a node commits its grants on SIGTERM. */
void proc_stop(bench_proc *p);
/* A node's counter, asked with SIGUSR1 (absent from the stats line: 0). */
int proc_stat(bench_proc *p, const char *name, uint64_t *v) __attribute__((warn_unused_result));

/* ---- bench_servers.c -------------------------------------------------- */

enum { BS_ECHO, BS_DRAIN, BS_LIBEV };
/* Serves fd forever: echo (blocking recvmmsg, sendmmsg back), drain
 * (recvmmsg only), or libev (the node's loop and batches, echoing copies). */
void server_loop(int kind, int fd) __attribute__((noreturn));

/* ---- bench_plugin.c --------------------------------------------------- */

typedef struct {
    void *dl;
    const ug_plugin *api;
    bool v2; /* handle2 is there */
} bp_lib;

/* dlopen (RTLD_LOCAL: two builds of the plugin live side by side). */
int bp_open(bp_lib *l, const char *so, char *why, size_t whycap) __attribute__((warn_unused_result));
void *bp_create(bp_lib *l, const char *policy, char *why, size_t whycap);

typedef struct {
    uint64_t n, by_type[LG_TYPES], sigs;
    bool sigs_known; /* the plugin has a signature_checks counter */
    uint64_t cpu_ns; /* this thread's CPU over the handle() and flush() calls */
    uint64_t flush_ns, flushes; /* this thread's CPU in flush(), and how many */
} bp_result;

/* Feeds pool (cycling when count > pool) through handle() on worker 0 from
 * 32 source ports (a peer always from the same one), flush() after every 64 as the node does, until count
 * datagrams or cpu_budget seconds of the process's CPU (0: no limit). */
void bp_run(bp_lib *l, void *inst, const lg_pool *p, uint64_t count, double cpu_budget, bp_result *r);
/* A host of read model (a) at a given load: datagrams of pool arrive one
 * by one at Poisson times, rate per second (a fixed seed); each is handled
 * when due, and worker 0 is flushed when none is due (the socket is
 * empty) or 64 replies wait for it. A reply's latency runs from its
 * arrival to the moment it may leave (handle2's return, or the flush's).
 * CPU is the process's over the run. */
typedef struct {
    uint64_t n, hints, flushes;
    uint64_t cpu_ns;
    double p50_ms, p99_ms, max_ms, late_ms; /* late: how far past its arrival a datagram was first looked at (p99) */
    double seconds;
    bool detail;                /* handle_ns, flush_ns: this thread's CPU in handle2() and flush() */
    uint64_t handle_ns, flush_ns;
} bp_paced;
void bp_run_paced(bp_lib *l, void *inst, const lg_pool *p, double rate, double max_seconds, bool detail, bp_paced *r);
double process_cpu(void);

/* A counter from stats(); -1 when the plugin has none by that name. */
int bp_stat(bp_lib *l, void *inst, const char *name, uint64_t *v) __attribute__((warn_unused_result));

/* Room for ctx, 0x00, body: a body fits a datagram, a context 15 bytes. */
#define BARE_MSG_MAX (UG_DGRAM_MAX + 16)

/* A signature to check: the exact bytes the tracker would hash. */
typedef struct {
    uint8_t msg[BARE_MSG_MAX];
    size_t len;
    uint8_t sig[UG_SIG_LEN], pk[UG_PK_LEN];
} bare_item;
/* ns of this thread's CPU per crypto_sign_verify_detached of it (sign:
 * per crypto_sign_detached with sk), over about budget seconds. */
double bare_verify(const bare_item *b, double budget);
double bare_sign(const bare_item *b, const uint8_t sk[UG_SK_LEN], double budget);

/* The signatures of many datagrams, copied out of a pool into memory of
 * their own (as cold as the pool's): what the plugin verifies, minus the
 * plugin. Item i of a HELLO set and of a credential set is pool item i. */
typedef struct {
    uint8_t *msg; /* n slots of BARE_MSG_MAX bytes: ctx, 0x00, body */
    uint16_t *len;
    uint8_t *sig; /* n * UG_SIG_LEN */
    size_t n;
    uint8_t pk[UG_PK_LEN];
} bare_set;

void bare_set_free(bare_set *s);
/* ns of this thread's CPU per request: for items 0, 1, ... in order, one
 * crypto_sign_verify_detached per set (a, and b when not NULL), then one
 * crypto_sign_detached of hint with sk, as a tracker answering a HINT does;
 * until about budget seconds or the end of the sets. */
double bare_request_set(const bare_set *a, const bare_set *b, const bare_item *hint, const uint8_t sk[UG_SK_LEN],
                        double budget);
double thread_cpu(void);

/* ---- bench_reports.c ------------------------------------------------- */

/* The REPORT-flood row: honest HELLOs served per CPU-second alone and
 * under a flood of forged REPORTs from many /24s, in-process; prints it. */
void bench_report_flood(bench_env *e, bp_lib *l, const lg_keys *k, const lg_creds *c);

#endif
