/* Running the real upgate-node in tests: keys and policy in a temp dir, start, stop, counters, HELLOs, control. */
#ifndef UG_NODEUTIL_H
#define UG_NODEUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "upgate_plugin.h"

typedef struct {
    char dir[64];
    pid_t pid;
    int out;             /* read end of the node's stdout */
    char err_path[128];  /* the node's stderr goes to this file */
    unsigned port;       /* the first --listen port */
    char ready[2048];    /* the ready line */
} nu_node;

/* A temp dir with hint, issuer, release and client keys, a manifest for
 * 2.0.0 (one loopback URL), and policy.yaml targeting 1.4.0 with stages. */
void nu_init(nu_node *n, const char *stages);
/* Rewrites policy.yaml with these stages. */
void nu_policy(nu_node *n, const char *stages);
/* dir/NAME */
const char *nu_path(nu_node *n, const char *name);
/* Starts build/upgate-node --listen 127.0.0.1:0 --workers 1 --policy
 * dir/policy.yaml [--plugin build/upgate.so unless extra has one] plus
 * extra (NULL-ended), with env (NULL-ended "K=V", may be NULL) added to
 * ours; waits for the ready line. */
void nu_start(nu_node *n, const char *const *extra, const char *const *env);
/* As nu_start but expects the node to exit before it is ready: returns
 * the exit code, its stderr in err. */
int nu_start_fails(nu_node *n, const char *const *extra, const char *const *env, char *err, size_t cap);
/* Sends sig and waits; returns the exit code (128 + signal when killed). */
int nu_stop(nu_node *n, int sig);
/* The node's stderr so far. */
void nu_stderr(nu_node *n, char *out, size_t cap);
/* SIGSTOP, and waits until the node is stopped (datagrams sent now queue
 * up for one batch after SIGCONT). */
void nu_pause(nu_node *n);
/* SIGUSR1, then the stats line. */
void nu_stats(nu_node *n, char *line, size_t cap);
/* The value of name=V in a stats line (0 when absent). */
uint64_t nu_stat(const char *line, const char *name);
/* Builds the stand-in plugin (tests/hostplug) into dir/NAME.so with extra
 * cc flags; returns its path. */
const char *nu_hostplug(nu_node *n, const char *name, const char *cflags);
/* The real plugin's table (dlopen build/upgate.so), for skipping tests of
 * entries it does not have yet. */
const ug_plugin *nu_real_plugin(void);
/* Does the real plugin have entry m (ABI minor 1), not NULL? */
#define NU_REAL_HAS(m) (UG_HAS_FIELD(ug_plugin, nu_real_plugin()->size, m) && nu_real_plugin()->m)
/* policy.yaml for the stand-in plugin: "state=DIR" (the node's dir) and lines. */
void nu_plug_policy(nu_node *n, const char *lines);
/* Writes text to path (replacing it). */
void nu_write(const char *path, const char *text);
/* Connects to the Unix socket at path, writes req (len bytes), shuts down
 * writing if half_close, reads until the server closes: the reply in out
 * (NUL-ended, cut at cap-1); returns the bytes read, or -1. */
long nu_ctl(const char *path, const void *req, size_t len, bool half_close, char *out, size_t cap);
/* A signed HELLO from a fresh key with a credential that does not verify:
 * every tracker check up to the signatures passes. */
size_t nu_hello(uint8_t *out, size_t cap, uint64_t uid, const char *ver, const char *plat, const char *chan);
/* A HELLO that passes every check of n's node: a fresh client key with a
 * credential from n's issuer.key. */
size_t nu_hello_issued(nu_node *n, uint8_t *out, size_t cap, uint64_t uid, const char *ver, const char *plat,
                       const char *chan);
/* Sends dgram to n's node from a fresh 127.0.0.1 socket and waits up to
 * 3 s for the reply: its type (UG_TYPE_HINT, _WAIT, _COOKIE) and, for a
 * WAIT, its why; -1 when no reply came. */
int nu_ask(nu_node *n, const void *dgram, size_t len, uint64_t *why);
/* Runs build/upgate-ctl ARGS (formatted; sh syntax) in folder dir:
 * stdout in out, stderr in err (each cut at its cap); its exit code. */
int nu_upgate_ctl(nu_node *n, const char *dir, char *out, size_t outcap, char *err, size_t errcap, const char *fmt,
                  ...) __attribute__((format(printf, 7, 8)));
/* Runs a shell command, formatted; its exit code. */
int nu_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void nu_sleep_ms(long ms);

#endif
