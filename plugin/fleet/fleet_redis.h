/* Fleet mode's Redis connection: plain, Unix or through Sentinel, the password, the scripts. Fleet thread only. */
#ifndef UG_FLEET_REDIS_H
#define UG_FLEET_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "policy/policy_values.h"

/* The server-side scripts (docs/fleet.md, "Scripts"), by number. */
enum { FR_LEASE, FR_PUBLISH, FR_OUTCOME, FR_SETTLE, FR_UNPARK, FR_FORGET, FR_BEAT, FR_FLAGS, FR_RATE, FR_NSCRIPTS };

typedef struct {
    ug_redis_url url;
    char url_text[UG_URL_TEXT_MAX];
    char password_file[UG_PATH_MAX]; /* "" when none */
    char user[UG_TRACKER_MAX + 1];   /* the ACL user (AUTH user password); "" : the default user */
    int timeout_ms;                  /* connect and each command */
    redisContext *c;                 /* NULL while disconnected */
    char addr[300];                  /* the server in use: host:port or a socket path */
    char run_id[48];                 /* the server's, from INFO: a new one may have lost writes */
    char sha[FR_NSCRIPTS][41];
    char err[300];                   /* why the last connect or command failed */
} fr_conn;

/* Arguments of one command, grown as needed (a publish carries hundreds). */
typedef struct {
    char *buf;
    size_t len, cap;
    size_t *off, *alen;
    size_t n, ncap;
    bool oom;
} fr_args;

void fr_args_reset(fr_args *a);
void fr_args_free(fr_args *a);
void fr_arg(fr_args *a, const char *s);
void fr_argn(fr_args *a, const char *s, size_t n);
void fr_argu(fr_args *a, uint64_t v);
void fr_argf(fr_args *a, double v);

/* Connects (asking the sentinels for the master first), authenticates,
 * selects the database, checks the server is a master, loads the scripts.
 * 0, or -1 with r->err set. */
int fr_connect(fr_conn *r);
void fr_close(fr_conn *r);

/* One command; NULL when the connection failed (it is closed then, err
 * says why). An error reply is returned as such. */
redisReply *fr_command(fr_conn *r, const fr_args *a);
/* A script: EVALSHA, and EVAL when the server forgot it (NOSCRIPT). keys
 * and args are one list, the first nkeys of it keys. */
redisReply *fr_script(fr_conn *r, int script, int nkeys, const fr_args *a);
/* With Sentinel, a write counts once a replica holds it (WAIT 1), when
 * the master has one. 0 when it does (or without Sentinel, or without a
 * replica), -1 when not. */
int fr_replicated(fr_conn *r);

/* Makes reader refuse an array reply of more elements than any the fleet
 * asks for, before hiredis allocates them (every connection's reader,
 * and the fuzzer's). 0, or -1 out of memory. */
int fr_reader_cap(redisReader *r);

/* Whether only this user can enter the folder of a Unix socket (owned by
 * the effective uid, no search permission for group or others): 1 yes,
 * 0 no (why says so), -1 the folder cannot be looked at (why). */
int fr_socket_private(const char *path, char *why, size_t cap);

/* A LEASE reply {given, n, leased}, believed only when it can be the
 * script's: given within 0..want, n and leased within 0..quota, leased at
 * least given and n + leased at most the quota. 0 with out set, or -1 (a
 * Redis fault, or something between rewriting replies). */
typedef struct {
    uint64_t given, n, leased;
} fr_lease;
int fr_lease_reply(const redisReply *rep, uint64_t want, uint64_t quota, fr_lease *out) UG_WUR;
/* An UNPARK reply: the slots given, within 0..k; 0 or -1. */
int fr_unpark_reply(const redisReply *rep, uint64_t k, uint64_t *given) UG_WUR;

/* Reply helpers: the integer at index i of an array reply, or the reply's own. */
bool fr_int_at(const redisReply *rep, size_t i, long long *out);
bool fr_is_error(const redisReply *rep, char *err, size_t cap);

/* Replies read by shape (fleet_reply.c): each checks every level before
 * it reads it, so a reply of any shape yields NULL, 0 or false. */
/* Element i of an array reply when it is a string, else NULL. */
const redisReply *fr_str_at(const redisReply *rep, size_t i);
/* A field/value list (HGETALL, HSCAN's page): its number of pairs, and
 * pair i when both are strings. */
size_t fr_npairs(const redisReply *rep);
bool fr_pair(const redisReply *rep, size_t i, const redisReply **k, const redisReply **v);
/* The integer value of field in a field/value list (its last one). */
bool fr_hash_int(const redisReply *rep, const char *field, long long *out);
/* An array of at most cap strings into f/len: their number, or -1. */
long fr_strings(const redisReply *rep, const char **f, size_t *len, size_t cap);
/* A stream entry [id, fields]: its id (MS-SEQ) with *fields set, or NULL. */
const char *fr_stream_entry(const redisReply *e, const redisReply **fields);
/* The id of the one entry of an X(REV)RANGE ... COUNT 1 reply, into id
 * (cap bytes with its NUL): its length, or 0 (none, or too long). */
size_t fr_entry_id(const redisReply *rep, char *id, size_t cap);
/* The entries of the one stream of an XREAD reply, or NULL (none new). */
const redisReply *fr_xread_entries(const redisReply *rep);
/* An HSCAN reply: the next cursor (digits, cap bytes with its NUL) and
 * the page's field/value list, or NULL. */
const redisReply *fr_scan_reply(const redisReply *rep, char *cursor, size_t cap);
/* SENTINEL get-master-addr-by-name's {host, port}: true with them set. */
bool fr_master_addr(const redisReply *rep, char *host, size_t cap, unsigned *port);
/* A ROLE reply of a master. */
bool fr_is_master(const redisReply *rep);
/* The value of an INFO reply's line "name:value" into out (cap bytes
 * with its NUL): its length, 0 when absent or too long. */
size_t fr_info_field(const redisReply *rep, const char *name, char *out, size_t cap);
/* A SCRIPT LOAD reply: the script's SHA-1, 40 lowercase hex digits. */
bool fr_sha_reply(const redisReply *rep, char out[41]);
/* A RATE reply {share, active, sum}: the share (a number in 0..most) and
 * the trackers asking; false when it cannot be the script's. */
bool fr_rate_reply(const redisReply *rep, double most, double *share, long long *active);

#endif
