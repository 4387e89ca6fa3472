/* upgate plugin ABI: the one header a tracker host includes to load upgate.so. */
#ifndef UPGATE_PLUGIN_H
#define UPGATE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * Loading. The host dlopen()s upgate.so and looks up one symbol,
 * UG_PLUGIN_SYMBOL, a `const ug_plugin`. It is the only symbol the library
 * exports.
 *
 * Versioning. `abi_major` changes when anything already published changes
 * meaning or place; a host refuses a plugin whose major differs from the
 * UG_PLUGIN_ABI_MAJOR it was built with. `abi_minor` grows when fields are
 * appended at the end of ug_plugin or ug_host, and only then. `size` is
 * sizeof the struct as its builder compiled it: before using a field added
 * in a later minor, the reader checks that `size` covers it (UG_HAS_FIELD).
 * So an old host runs a newer plugin and a newer host an older plugin, of
 * the same major.
 *
 * Threading. The plugin starts no threads. The host picks a number of
 * workers N when it calls create() and numbers them 0..N-1.
 *  - create() and destroy() are called alone: no other call is in flight.
 *  - handle() and flush() may be called concurrently from many threads, as
 *    long as each worker index is used by one thread at a time. Per-worker
 *    state is indexed by that number, so the hot path shares no lock.
 *  - tick(), reload() and stats() may be called from any one thread (say the
 *    host's main thread) while workers run handle() and flush(); the host
 *    does not call these three concurrently with one another.
 * Reload builds the new policy aside and swaps one pointer; a worker inside
 * handle() finishes with the policy it started with.
 *
 * Durability. A HINT may promise a quota slot that is not yet on disk. The
 * host sends the replies that handle() produced on worker w only after
 * flush(w) returned 0; if it returns -1 the host drops those replies (the
 * peers will ask again). Calling flush() once per receive batch keeps disk
 * commits to one per batch.
 */

#define UG_PLUGIN_ABI_MAJOR 1u
#define UG_PLUGIN_ABI_MINOR 0u
#define UG_PLUGIN_SYMBOL "upgate_plugin"

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
} ug_host;

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
     * running policy stays and err says why; returns 0 or -1. */
    int (*reload)(void *inst, const char *policy_path, char *err, size_t errcap);

    /* Fills up to cap counters, returns how many exist (call with cap 0 to
     * size the array). Values are sums over workers, read without locks. */
    size_t (*stats)(void *inst, ug_stat *out, size_t cap);

    /* Commits what is pending, wipes keys, frees everything. */
    void (*destroy)(void *inst);
} ug_plugin;

#endif
