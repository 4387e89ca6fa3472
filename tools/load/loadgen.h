/* The load generator's machinery, shared by upgate-load and make bench:
 * datagrams built before the clock starts, sent windowed from many loopback
 * sockets, replies counted by type, and the server's CPU read from /proc. */
#ifndef UG_LOADGEN_H
#define UG_LOADGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "ug_proto.h"

#define LG_SOCKETS_MAX 256u
#define LG_WINDOW_MAX 256u
#define LG_BATCH 64u            /* datagrams per sendmmsg / recvmmsg */
#define LG_PEERS_MAX 1000000u   /* credentials issued ahead: 144 bytes each */
#define LG_POOL_MAX 262144u     /* pre-built datagrams: UG_DGRAM_MAX bytes each */
#define LG_CRED_MAX 192u        /* a credential's signed object */
#define LG_LOST_AFTER 0.5       /* default seconds without a reply before a window is written off */

/* The keys a load generator signs with: an issuer (it issues the
 * credentials, as a login service would) and one client key all peers
 * share (a credential binds it to each uid). Secrets in sodium_malloc. */
typedef struct {
    uint8_t *issuer_sk, *client_sk;
    uint8_t issuer_pk[UG_PK_LEN], client_pk[UG_PK_LEN];
} lg_keys;

/* Loads DIR/issuer.key and DIR/client.key (cli.md key files). */
int lg_keys_load(lg_keys *k, const char *dir, char *why, size_t whycap) UG_WUR;
void lg_keys_free(lg_keys *k);

/* Credentials for uids base .. base+n-1, valid until exp. */
typedef struct {
    uint64_t base;
    size_t n;
    uint8_t *obj; /* n * LG_CRED_MAX */
    uint8_t *len;
} lg_creds;

int lg_creds_issue(lg_creds *c, const lg_keys *k, uint64_t base, size_t n, uint64_t exp) UG_WUR;
/* The credential of uid, or NULL when uid is not base .. base+n-1. */
const uint8_t *lg_cred(const lg_creds *c, uint64_t uid, size_t *len);
void lg_creds_free(lg_creds *c);

/* Datagrams ready to send, each in a slot of UG_DGRAM_MAX bytes. A view of
 * part of a pool is a copy of the struct with buf/len/uid advanced. */
typedef struct {
    uint8_t *buf;
    uint16_t *len;
    uint64_t *uid; /* the uid each one speaks for (0: none) */
    size_t n, cap;
} lg_pool;

int lg_pool_init(lg_pool *p, size_t cap) UG_WUR;
void lg_pool_free(lg_pool *p);
lg_pool lg_pool_view(const lg_pool *p, size_t first, size_t n);
/* Appends a signed HELLO of exactly `size` bytes (512..1232) for uid at
 * version ver, with a fresh nonce and ts = now. 0, or -1 when full. */
int lg_pool_add_hello(lg_pool *p, const lg_keys *k, uint64_t uid, const uint8_t *cred, size_t cred_len,
                      const char *ver, size_t size, uint64_t now) UG_WUR;
/* Appends a datagram that starts like an upgate datagram but that the
 * decoder refuses: a HELLO made malformed (a damaged header, key, length
 * or type), or random bytes after the 5-byte prefix. Same size as src. */
int lg_pool_add_garbage(lg_pool *p, const uint8_t *hello, size_t len, uint32_t seed) UG_WUR;

/* The i-th uid of a walk over base .. base+peers-1 that visits each once per
 * `peers` steps, in a scrambled order (salt picks the order). */
uint64_t lg_walk(uint64_t base, uint64_t peers, uint64_t salt, uint64_t i);
/* Would a percent stage salted `salt` at `bp` hundredths of a percent
 * select uid? (policy.md's bucket) */
bool lg_percent_selects(const char *salt, uint64_t uid, uint32_t bp);

/* A loopback target and K sockets connected to it. */
typedef struct {
    struct sockaddr_storage to;
    socklen_t tolen;
    int fd[LG_SOCKETS_MAX];
    unsigned n;
} lg_conn;

/* Parses a numeric HOST:PORT or [HOST]:PORT and refuses anything but
 * 127.0.0.0/8 and ::1: a load generator sends nowhere else (and a name is
 * never resolved, which would ask a resolver elsewhere). */
int lg_parse_target(const char *s, struct sockaddr_storage *ss, socklen_t *len, char *why, size_t whycap) UG_WUR;
int lg_conn_open(lg_conn *c, const struct sockaddr_storage *to, socklen_t tolen, unsigned sockets, char *why,
                 size_t whycap) UG_WUR;
void lg_conn_close(lg_conn *c);

typedef struct {
    unsigned window; /* datagrams in flight per socket; 0: open loop, await no reply */
    double seconds;  /* stop sending after this long; 0: no limit */
    uint64_t count;  /* datagrams to send; more than the pool: cycle through it; 0: the pool once */
    pid_t pid;       /* the server, for its CPU; 0: not measured */
    double lost_after; /* seconds without a reply before a window counts as lost; 0: LG_LOST_AFTER */
} lg_opts;

/* Reply types by the datagram's type byte; LG_OTHER: not an upgate datagram. */
enum { LG_OTHER = 0, LG_TYPES = 6 };

typedef struct {
    uint64_t sent, replies, by_type[LG_TYPES];
    uint64_t lost;         /* windowed: sent and never answered */
    uint64_t kernel_drops; /* the target's sockets' receive-queue drops meanwhile */
    uint64_t refused;      /* ICMP port unreachable seen: nobody listens */
    double seconds;        /* first send to last reply (open loop: to an empty queue) */
    bool cpu_ok;
    uint64_t cpu_ns;       /* the server's CPU over the same span */
} lg_result;

/* The socket a datagram leaves from, of k: fixed per uid, as a real
 * peer's source port is (so SO_REUSEPORT sends all of a peer's HELLOs to
 * one worker); i-th of the pool when uid is 0. */
unsigned lg_socket_of(uint64_t uid, uint64_t i, unsigned k);

/* One measured run: sends the pool (windowed or open loop), counts replies,
 * waits until the target has drained its queue, then reads the server's
 * CPU. 0, or -1 with why set (no datagram could be sent). */
int lg_run(lg_conn *c, const lg_pool *p, const lg_opts *o, lg_result *r, char *why, size_t whycap) UG_WUR;

/* Nanoseconds on CPU of every thread of pid: field 1 of
 * /proc/PID/task/TID/schedstat, summed. */
int lg_cpu_ns(pid_t pid, uint64_t *ns) UG_WUR;
/* Receive-queue bytes and drops of the UDP sockets bound to the target's
 * port (and its address or the wildcard), from /proc/net/udp{,6}. */
int lg_udp_queue(const struct sockaddr_storage *to, uint64_t *rx_bytes, uint64_t *drops) UG_WUR;
/* Monotonic seconds. */
double lg_now(void);

#endif
