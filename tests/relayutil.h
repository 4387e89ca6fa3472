/* A relay between a tracker and Redis for tests: a child process on a Unix socket that passes the bytes on, stalls (SIGSTOP) or rewrites Redis's replies. */
#ifndef UG_RELAYUTIL_H
#define UG_RELAYUTIL_H

#include <stdbool.h>
#include <sys/types.h>

typedef enum {
    RL_PASS,       /* every byte as it came */
    RL_LEASE_NTH,  /* the nth LEASE reply ({given, n, leased}) says 1,000,000 slots */
    RL_RANDOM,     /* each reply, with probability percent/100, gets its integers rewritten at random */
} rl_mode;

typedef struct {
    char path[128];     /* its socket: what a policy's fleet.redis names (unix://path) */
    char url[160];      /* "unix://" path */
    pid_t pid;
} rl_relay;

/* Starts a relay to the Redis socket upstream, in a temp dir; n is the
 * LEASE reply to rewrite (RL_LEASE_NTH, from 1) or the percent of replies
 * to corrupt (RL_RANDOM). Returns once it listens. */
void rl_start(rl_relay *r, const char *upstream, rl_mode mode, unsigned n);
/* A partition: the relay stops (SIGSTOP); connections stay open and
 * nothing passes, new ones are accepted by the kernel and hang. */
void rl_stall(rl_relay *r);
/* The partition heals (SIGCONT). */
void rl_heal(rl_relay *r);
/* Kills and reaps it (idempotent). */
void rl_stop(rl_relay *r);

#endif
