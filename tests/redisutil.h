/* Real redis-server and redis-sentinel for tests: started in a temp dir on a Unix socket or a loopback port, stopped by PID. */
#ifndef UG_REDISUTIL_H
#define UG_REDISUTIL_H

#include <stdbool.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

typedef struct {
    char dir[64];       /* its working folder: AOF, log, config */
    char sock[128];     /* the Unix socket, when port is 0 */
    unsigned port;      /* a loopback TCP port, or 0 */
    char url[200];      /* what a policy's fleet.redis names */
    char replicaof[64]; /* "127.0.0.1 PORT": a replica */
    char aclfile[128];  /* --aclfile: the users it knows; "" none */
    char user[32];      /* who ru_connect authenticates as ("" : the default user) */
    char pass[64];      /* its password; without an ACL file also requirepass (and masterauth); "" none */
    pid_t pid;
} ru_redis;

/* Is redis-server installed? (Tests skip without it.) */
bool ru_available(void);
/* Starts redis-server in a fresh temp dir (AOF, appendfsync always): on a
 * Unix socket when port is 0, else on 127.0.0.1:port; waits for PING. */
void ru_start(ru_redis *r, unsigned port, const char *replicaof);
/* ru_start with authentication: the ACL file's users when aclfile is not
 * NULL, else the default user with requirepass pass (and masterauth, for
 * a replica); ru_connect and ru_int authenticate as user (NULL: default)
 * with pass. */
void ru_start_auth(ru_redis *r, unsigned port, const char *replicaof, const char *aclfile, const char *user,
                   const char *pass);
/* Starts it again on the same dir, socket or port (the AOF is replayed). */
void ru_restart(ru_redis *r);
/* Sends sig and reaps it (SIGKILL: a crash). */
void ru_stop(ru_redis *r, int sig);
/* A connection to it; the caller frees it. */
redisContext *ru_connect(const ru_redis *r);
/* One command's integer reply (or a bulk string read as one), -1 on error. */
long long ru_int(const ru_redis *r, const char *fmt, ...);

typedef struct {
    char dir[64];
    unsigned port;
    pid_t pid;
} ru_sentinel;

/* A sentinel watching master "mymaster" at 127.0.0.1:master_port (quorum 1,
 * down after 1 s, failover timeout 3 s), with the data nodes' password
 * pass (NULL: none); waits for PING. */
void ru_sentinel_start(ru_sentinel *s, unsigned master_port, const char *pass);
void ru_sentinel_stop(ru_sentinel *s);
/* The master's port as the sentinel names it now, or 0. */
unsigned ru_sentinel_master(const ru_sentinel *s);

#endif
