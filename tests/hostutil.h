/* Running the real hosts of `make hosts` (opentracker, n2n's supernode) in tests: config, start, stop, their own protocols. */
#ifndef UG_HOSTUTIL_H
#define UG_HOSTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum { HU_OPENTRACKER, HU_SUPERNODE } hu_kind;

typedef struct {
    hu_kind kind;
    char dir[64];    /* where its config and log go */
    pid_t pid;       /* 0: not running */
    unsigned port;   /* its UDP port on 127.0.0.1 */
    char conf[128];
    char log[128];   /* its stdout and stderr */
    char ctl[128];   /* the adapter's control socket */
} hu_host;

/* build/hosts/opentracker or build/hosts/supernode */
const char *hu_binary(hu_kind kind);
/* Writes DIR/KIND.conf in the host's own syntax: a loopback UDP port, the
 * three upgate settings (plugin: build/upgate.so unless `plugin`; policy;
 * control: DIR/KIND.ctl) and `lines`, verbatim (opentracker: before its
 * listen line, so listen.udp.workers applies). Starts the host with env
 * (NULL-ended "K=V", may be NULL) added to ours and waits (10 s at most)
 * until the adapter's control socket and the host's own protocol answer;
 * aborts the test with its log if not. */
void hu_start(hu_host *h, hu_kind kind, const char *dir, const char *policy, const char *plugin, const char *lines,
              const char *const *env);
/* Sends sig and waits (20 s, then SIGKILL); the exit code, or 128 + the
 * signal that ended it. */
int hu_stop(hu_host *h, int sig);
/* SIGKILL and reap, when it still runs (a suite's fini). */
void hu_kill(hu_host *h);
/* Waits (ms at most) for it to end on its own; its code as hu_stop, or -1. */
int hu_wait(hu_host *h, int ms);
/* Its log so far. */
void hu_log(const hu_host *h, char *out, size_t cap);
/* Waits (ms at most) until its log holds what; true when it does. */
bool hu_log_has(const hu_host *h, const char *what, int ms);

/* BEP 15 against 127.0.0.1:port from a fresh socket: connect, announce
 * info hash `hash` as a seeder on peer_port (event completed), then
 * scrape it. True when all three were answered in form (the right action
 * and transaction id); the scrape's seeders in *seeders. */
bool hu_bt_session(unsigned port, const uint8_t hash[20], uint16_t peer_port, uint32_t *seeders);
/* n2n: a REGISTER_SUPER for community from a fresh socket; true when a
 * REGISTER_SUPER_ACK with the same cookie came back. */
bool hu_n2n_register(unsigned port, const char *community, uint32_t cookie);

#endif
