/* upgate plugin ABI: the one header a tracker host includes to load upgate.so. */
#ifndef UPGATE_PLUGIN_H
#define UPGATE_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Loading. The host dlopen()s upgate.so and looks up one symbol,
 * UG_PLUGIN_SYMBOL, a `const ug_plugin`. It is the only symbol the library
 * exports.
 *
 * Versioning. `abi_major` changes when anything already published changes
 * meaning or place; a host refuses a plugin whose major differs from the
 * UG_PLUGIN_ABI_MAJOR it was built with. `abi_minor` grows when fields are
 * appended at the end of ug_plugin or ug_host, or of a struct an entry
 * point takes (ug_claims, ug_decision), and only then. `size` is
 * sizeof the struct as its builder compiled it: before using a field added
 * in a later minor, the reader checks that `size` covers it (UG_HAS_FIELD).
 * So an old host runs a newer plugin and a newer host an older plugin, of
 * the same major.
 *
 * Threading. The host picks a number of workers N when it calls create()
 * and numbers them 0..N-1.
 *  - create(), finish() and destroy() are called alone: no other call is in
 *    flight.
 *  - handle(), handle2(), decide() and flush() may be called concurrently
 *    from many threads, as long as each worker index is used by one thread
 *    at a time. Per-worker state is indexed by that number, so the hot path
 *    shares no lock.
 *  - tick(), reload(), stats() and control() may be called from any thread
 *    while workers run, but never two of them at once: the host serializes
 *    these four (the reference node holds one mutex around them, since its
 *    control socket and metrics endpoint have threads of their own).
 *  - check() touches no instance and may be called from any thread at any
 *    time.
 *  - The plugin starts no threads, with two exceptions. A policy with a
 *    `fleet:` section makes create() start one thread for Redis I/O, which
 *    finish() stops and joins (destroy() does, for a host that does not
 *    call finish()); it lives no longer than the instance. It never calls a
 *    host callback other than log() and now(), and it never runs on, or
 *    blocks, a worker: workers only hand it what they made durable. And
 *    loading a release's grants from the state folder (create(), or a
 *    reload() that names a release not loaded yet), when there are more
 *    than 65,536 of them, fills half of its tables on one short-lived
 *    thread, joined before that call returns; it calls no host callback.
 * Reload builds the new policy aside and swaps one pointer; a worker inside
 * handle() finishes with the policy it started with. reload() and the
 * control commands that change what a HELLO gets (pause, resume, halt)
 * return only once no worker is still answering with the old state.
 *
 * Durability. A HINT may promise a quota slot that is not yet on disk.
 * handle2() marks such a reply with UG_REPLY_AFTER_FLUSH: the host sends
 * it only after flush(w) returned 0, and drops it (the peer asks again)
 * when flush(w) returns -1. Replies without the flag (WAIT, COOKIE, a HINT
 * whose grant is already durable) do not wait for the disk, so a stuck
 * store silences nobody but the peers it would wrong. A host of ABI 1.0
 * calls handle() and treats every reply as flagged. Calling flush() once
 * per receive batch keeps disk writes to at most one per batch; flush()
 * calls of several workers that overlap share one write (a group commit):
 * a flush waits up to 0.7 ms for other workers that have grants queued,
 * never when no other worker has. A HINT for a grant still queued on
 * another worker is flagged too, and that grant is queued on this worker
 * as well, so that this worker's own flush() makes it durable.
 * In fleet mode a verified HELLO whose stage waits for a lease is held
 * back (DROP, counted as "held_for_lease"): the fleet thread brings the
 * slots at once, and the resend is decided again.
 *
 * Privileges. create() runs as the user that starts the host (root, say),
 * before the host setuid()s or chroot()s. A host that will do so says it
 * (UG_HF_DROPS_PRIVILEGES); the plugin then keeps what reload() needs to
 * read the policy's files afterwards (a helper process, forked at create(),
 * that holds the folders the policy's files are in), and create() logs
 * each file a reload could not read then. ug_host.run_as names the user the
 * host becomes, when it knows it, for that check (check() makes it too).
 *
 * Extending. Minor 1 appended handle2, finish, check, decide and control;
 * minor 2 appended flags and run_as to ug_host; minor 3 appended
 * control_by and reload_by, which say who asked (ug_caller) so that the
 * history names them, and memo to ug_claims (a plugin of minor 2 or less
 * ignores it: the caller's size covers a field the plugin does not read),
 * then prefetch to ug_plugin; minor 4 appended batch (ug_batch). A host
 * calls prefetch and batch only when the plugin's size covers them. Later
 * minors append after `batch`; every new entry point takes a struct whose
 * first member is its `size`, so it can grow the same way. A
 * host of minor 3 calls control_by and reload_by when the plugin's size
 * covers them, control and reload otherwise; a plugin answers control and
 * reload as asked by the host itself (UG_CALLER_HOST).
 */

#define UG_PLUGIN_ABI_MAJOR 1u
#define UG_PLUGIN_ABI_MINOR 4u
#define UG_PLUGIN_SYMBOL "upgate_plugin"

/* Port sharing (protocol.md section 3). Every upgate datagram starts with
 * these 4 bytes (msgpack: an array of 5, then the string "UG"), then its
 * protocol version: 95 a2 55 47 01 for protocol v1, 95 a2 55 47 02 for v2.
 * A host that serves its own protocol on the same UDP port hands upgate.so
 * the datagrams that start so, and keeps everything it gives out (a
 * BitTorrent connection id, say) from starting with the 4 bytes, whatever
 * the version byte after them. libupgate-host's ug_host_is_upgate() is
 * the test. */
#define UG_PORT_PREFIX "\x95\xa2\x55\x47"
#define UG_PORT_PREFIX_LEN 4u
#define UG_PORT_VERSION_MIN 1u /* the version bytes a host passes on */
#define UG_PORT_VERSION_MAX 2u

/* Does a struct whose size field says `size` contain member m? */
#define UG_HAS_FIELD(type, size, m) ((size) >= offsetof(type, m) + sizeof(((type *)0)->m))

typedef enum {
    UG_LOG_ERROR = 0,
    UG_LOG_WARN = 1,
    UG_LOG_INFO = 2,
    UG_LOG_DEBUG = 3,
} ug_log_level;

/* Services the host lends the plugin. */
typedef struct ug_host {
    uint32_t size; /* sizeof(ug_host) as the host compiled it */
    void *ctx;     /* passed back to the callbacks */
    /* One line, no newline. Called from any thread, the host serializes. */
    void (*log)(void *ctx, ug_log_level level, const char *msg);
    /* Unix seconds. Hosts return time(NULL); tests return what they like. */
    uint64_t (*now)(void *ctx);
    unsigned nworkers; /* 1..256 */
    /* ---- ABI minor 1 ---- */
    /* When not NULL: the state folder to use instead of the policy's
     * `state`, and the policy's `fleet` section is ignored (a simulator
     * runs a tracker's policy on state of its own). */
    const char *state_override;
    /* ---- ABI minor 2 ---- */
    unsigned flags;     /* UG_HF_* */
    /* With UG_HF_DROPS_PRIVILEGES: the user the host becomes after create()
     * (its setuid()), or NULL when it does not say. */
    const char *run_as;
} ug_host;

/* Bits of ug_host.flags (minor 2). */
#define UG_HF_ROAMING_PEERS 1u     /* a peer's datagrams may reach any worker (several threads read one
                                      socket): a retransmit is recognised whichever worker answered first */
#define UG_HF_DROPS_PRIVILEGES 2u  /* the host setuid()s or chroot()s after create(): reload() must still
                                      read the policy's files (see Privileges) */

typedef enum {
    UG_VERDICT_REPLY = 0, /* send out[0..*out_len) back to the source */
    UG_VERDICT_PASS = 1,  /* not upgate's to answer: serve it as usual; when
                             *out_len > 0, out holds a WAIT the host may send
                             if it has no service of its own for the peer */
    UG_VERDICT_DROP = 2,  /* malformed or refused: send nothing */
} ug_verdict;

/* A named counter; names are stable strings owned by the plugin. */
typedef struct {
    const char *name;
    uint64_t value;
} ug_stat;


/* Bits handle2() sets in *flags. */
#define UG_REPLY_AFTER_FLUSH 1u /* send only once flush(worker) returned 0 */

/* Receives the text of a reply in pieces (JSON for control and check),
 * in order; the pieces concatenated are the whole reply. */
typedef void (*ug_emit)(void *ctx, const char *data, size_t len);

/* What a peer claims, for decide(): the fields of a HELLO (kind
 * UG_CLAIM_HELLO) or of a REPORT (kind UG_CLAIM_REPORT), taken as true. No
 * signature is involved: the host vouches for them (a simulator), or only
 * asks what would happen (explain). */
enum { UG_CLAIM_HELLO = 1, UG_CLAIM_REPORT = 5 };

/* Bits of ug_claims.flags. */
#define UG_DECIDE_SPEND 1u      /* act as a tracker would after verifying: grant,
                                   spend quota and rate, record outcomes. Without
                                   it, decide() changes nothing (explain). */
#define UG_DECIDE_ADDR_PROVED 2u /* the source address counts as proved (as if
                                    the HELLO carried a valid cookie) */

/* A memo of one peer's percent buckets (ABI minor 3), for a caller that
 * decides for the same uid many times (a simulator): a bucket is a BLAKE2b
 * of the stage's salt and the uid (protocol.md), the same every time, and
 * most of a decision's CPU when recomputed. The caller owns it and passes
 * it in ug_claims.memo; decide() reads and fills it, and keeps no pointer.
 * Rules for the caller:
 *  - zero it before its first use (a zeroed memo is empty);
 *  - one memo per uid: never hand one uid's memo with another uid (the
 *    plugin mixes the uid into `mark` and empties a memo it does not
 *    recognise, but that check is 32 bits, not a proof);
 *  - one call at a time per memo (decide() writes it);
 *  - do not interpret or write the fields: they are the plugin's.
 * A memo follows reloads by itself: `mark` names the policy build
 * (distinct per build among the instances of one loaded upgate.so) and
 * the uid, and a memo of another build is emptied before use; a caller
 * that loads two copies of the library keeps a memo per copy. With or
 * without a memo, decide() answers the same. */
#define UG_BUCKET_MEMO_SLOTS 3u
typedef struct {
    uint32_t mark;                   /* 0: empty */
    uint16_t salt[UG_BUCKET_MEMO_SLOTS];    /* the plugin's number of a salt in the build; 0: slot empty */
    uint16_t bucket[UG_BUCKET_MEMO_SLOTS];  /* that salt's bucket for the uid, 0..9999 */
} ug_bucket_memo;

typedef struct {
    uint32_t size; /* sizeof(ug_claims) as the caller compiled it */
    unsigned kind; /* UG_CLAIM_HELLO or UG_CLAIM_REPORT */
    unsigned flags;
    uint64_t uid;
    const char *ver;  /* the peer's version text */
    const char *plat; /* NULL: absent */
    const char *chan; /* NULL: absent */
    const struct sockaddr *src;
    socklen_t srclen;
    uint64_t ts;      /* the peer's clock; 0: the host's now() */
    /* REPORT only */
    const char *to;   /* the release the report is about */
    unsigned res;     /* 0 installed .. 5 rolled back (protocol.md) */
    /* Optional: a JSON trace of every rollout, stage and condition tried
     * (the `explain` of upgate-node --check and upgate-ctl). */
    ug_emit trace;
    void *trace_ctx;
    /* ---- ABI minor 3 ---- */
    ug_bucket_memo *memo; /* NULL: none; see ug_bucket_memo */
} ug_claims;

/* What decide() answered. Strings point into the plugin's policy and stay
 * valid until the next reload() or control() call. */
enum { UG_ANSWER_NONE = 0, UG_ANSWER_HINT = 2, UG_ANSWER_WAIT = 3, UG_ANSWER_COOKIE = 4 };

typedef struct {
    uint32_t size;       /* sizeof(ug_decision) as the caller compiled it */
    unsigned answer;     /* UG_ANSWER_* (NONE: a REPORT, never answered) */
    unsigned why;        /* WAIT: the protocol's why */
    uint64_t retry;      /* WAIT: seconds, jitter included */
    bool fresh;          /* HINT: a new grant (quota spent), not a sticky one */
    bool counted;        /* REPORT: it changed a recorded outcome */
    const char *rollout; /* NULL when no rollout owns the peer */
    const char *stage;   /* the stage that selected or held it back; NULL if none */
    const char *to;      /* the release offered (HINT) or owning the peer */
    uint64_t package_size; /* bytes, from the manifest */
    unsigned mirror;     /* HINT: index into the manifest's URLs */
    unsigned nmirrors;
    /* Added later in ABI minor 1 (a host sees it when d->size covers it;
     * an older plugin leaves the host's zeroes): what a version 2 peer of
     * ver would be sent to fetch, the delta its HINT names (issue 26). */
    uint64_t fetch_size; /* HINT: the delta's size, else package_size */
    bool delta;          /* HINT: fetch_size is a delta's */
} ug_decision;

/* A run of calls on one worker that batch() enters the policy for once. */
typedef struct {
    uint32_t size; /* sizeof(ug_batch) as the caller compiled it */
    void (*run)(void *ctx);
    void *ctx;
} ug_batch;

/* Who asked for a control request or a reload (minor 3), as the history
 * records it (docs/control.md "history"). */
enum {
    UG_CALLER_HOST = 0,    /* the host itself (what control() and reload() mean) */
    UG_CALLER_CONTROL = 1, /* a control socket's client: uid and pid say who */
    UG_CALLER_SIGNAL = 2,  /* a signal (SIGHUP) */
};

typedef struct {
    uint32_t size; /* sizeof(ug_caller) as the caller compiled it */
    unsigned kind; /* UG_CALLER_* */
    /* UG_CALLER_CONTROL: the client's credentials as the kernel gave them
     * (SO_PEERCRED); pid 0 when the host could not learn them. */
    uint32_t uid;
    int32_t pid;
} ug_caller;

typedef struct ug_plugin {
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t size; /* sizeof(ug_plugin) as the plugin compiled it */
    const char *name;
    const char *version;

    /* Loads the policy file and opens its state. NULL on failure with one
     * line in err naming the file, line and key at fault. */
    void *(*create)(const ug_host *host, const char *policy_path, char *err, size_t errcap);

    /* One datagram from src. out has room for out_cap bytes (the host gives
     * at least 1232); *out_len is set on every verdict (0 when none). A
     * reply is never longer than in_len. */
    ug_verdict (*handle)(void *inst, unsigned worker, const struct sockaddr *src, socklen_t srclen,
                         const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len);

    /* Makes the grants behind worker's replies durable; see Durability. */
    int (*flush)(void *inst, unsigned worker);

    /* Once a second or so: cookie load detection and other housekeeping. */
    void (*tick)(void *inst);

    /* Re-reads the policy (policy_path NULL: the same file). On failure the
     * running policy stays and err says why (the host logs it); on success
     * the plugin logs the reload itself, once, whatever asked for it (a
     * signal, the control socket). Returns 0 or -1. */
    int (*reload)(void *inst, const char *policy_path, char *err, size_t errcap);

    /* Fills up to cap counters, returns how many exist (call with cap 0 to
     * size the array). Values are sums over workers, read without locks. */
    size_t (*stats)(void *inst, ug_stat *out, size_t cap);

    /* Commits what is pending, wipes keys, frees everything. */
    void (*destroy)(void *inst);

    /* ---- ABI minor 1 ------------------------------------------------- */

    /* handle() that also says, in *flags, whether the reply depends on a
     * grant not yet durable (UG_REPLY_AFTER_FLUSH); see Durability. */
    ug_verdict (*handle2)(void *inst, unsigned worker, const struct sockaddr *src, socklen_t srclen,
                          const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len,
                          unsigned *flags);

    /* Commits everything pending (every worker's grants, outcomes) and
     * stops the fleet thread. 0 when every grant any reply promised is
     * durable; -1 with the cause in err otherwise. The host calls
     * destroy() afterwards either way. */
    int (*finish)(void *inst, char *err, size_t errcap);

    /* Validates the policy at path without serving: opens nothing for
     * writing, takes no lock, binds nothing. Emits one JSON object: the
     * summary (rollouts, targets, stages, keys, manifests), "warnings",
     * and, when explain is not NULL ("uid=N,ver=V,src=ADDR[,plat=P][,chan=C]"),
     * the trace of decide() for that peer. 0 when the policy is valid;
     * -1 when not, with the one-line error in err (and nothing emitted).
     * host may be NULL (then log and now are the plugin's own). */
    int (*check)(const ug_host *host, const char *policy_path, const char *explain, ug_emit emit,
                 void *ctx, char *err, size_t errcap);

    /* Decides for claimed fields, without any signature work, exactly as
     * handle2() would after the signatures checked out (quota, rate,
     * ramps, stickiness, pause, halt, jitter). With UG_DECIDE_SPEND it
     * also grants and records as handle2() would (a simulator drives the
     * plugin this way); grants are queued on worker as with handle2(), so
     * flush(worker) makes them durable. 0, or -1 on a claim that does not
     * parse (a bad version text, say). */
    int (*decide)(void *inst, unsigned worker, const ug_claims *claims, ug_decision *out);

    /* One control request (a JSON object, see docs/control.md), one reply
     * (a JSON object with "ok"). 0 when the request was carried out, -1
     * when it was refused or failed (the reply says why). Commands that
     * change what a HELLO gets return only after they took effect. */
    int (*control)(void *inst, const char *req, size_t req_len, ug_emit emit, void *ctx);

    /* ---- ABI minor 3 ------------------------------------------------- */

    /* control() and reload(), told who asked (by may be NULL: the host);
     * the history records it with what changed. */
    int (*control_by)(void *inst, const ug_caller *by, const char *req, size_t req_len, ug_emit emit, void *ctx);
    int (*reload_by)(void *inst, const ug_caller *by, const char *policy_path, char *err, size_t errcap);

    /* A hint that decide() (or a HELLO) for uid on worker comes soon: the
     * plugin starts fetching what that decision reads first from memory
     * (each rollout's grant slot of uid), so that a caller with many peers
     * due (a simulator) overlaps their cache misses. Changes nothing and
     * answers nothing; called like decide() (one call at a time per
     * worker). Any number of peers ahead works; a few is best. */
    void (*prefetch)(void *inst, unsigned worker, uint64_t uid);

    /* Calls b->run(b->ctx) once, with worker inside the running policy for all
     * of it: the decide(), prefetch(), handle() and handle2() calls that
     * run makes on worker skip entering and leaving the policy (for a
     * simulator, a tenth of a decision's CPU), and answer as they would
     * outside. Called like decide() (one call at a time per worker); inside
     * run, the thread calls nothing of the plugin's but those four, on that
     * worker (a reload(), or a control() command that changes what a HELLO
     * gets, waits for run to return). Keep a batch short, a reload waits
     * for it as for one long decision. A nested batch is the outer one's;
     * a worker out of range gets run(ctx) alone. */
    void (*batch)(void *inst, unsigned worker, const ug_batch *b);
} ug_plugin;

#ifdef __cplusplus
}
#endif

#endif
