/* A fleet for tests: upgate-node processes on one Redis, peers asking over UDP, HINTs verified as a peer does. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "fleetutil.h"
#include "testutil.h"

#define BATCH_MAX 64

long long fu_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fu_init(fu_fleet *f, unsigned n, const char *url, const char *fleet_extra, const char *stages)
{
    cr_assert_leq(n, FU_MAX);
    memset(f, 0, sizeof *f);
    f->sock = -1;
    fx_init(&f->fx, 1);
    f->n = n;
    if (url) {
        snprintf(f->url, sizeof f->url, "%s", url);
    } else {
        ru_start(&f->redis, 0, NULL);
        snprintf(f->url, sizeof f->url, "%s", f->redis.url);
    }
    snprintf(f->fleet_extra, sizeof f->fleet_extra, "%s", fleet_extra ? fleet_extra : "");
    snprintf(f->stages, sizeof f->stages, "%s", stages);
    for (unsigned i = 0; i < n; i++) {
        nu_node *nd = &f->node[i];
        nd->out = -1;
        snprintf(nd->dir, sizeof nd->dir, "%s", tu_tmpdir());
        snprintf(nd->err_path, sizeof nd->err_path, "%s/node.err", nd->dir);
        snprintf(f->name[i], sizeof f->name[i], "%c", 'a' + i);
        f->workers[i] = 1 + i % 2; /* one or two workers: shards and steals in play */
    }
    f->sock = socket(AF_INET, SOCK_DGRAM, 0);
    cr_assert_geq(f->sock, 0);
    int big = 4 << 20;
    setsockopt(f->sock, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(f->sock, (struct sockaddr *)&a, sizeof a), 0);
}

/* Version 1 (stages: one rollout "default") unless the stages text is a
 * version 2 "rollouts:" list, where @FX@ names the keys' folder. */
static void write_policy(fu_fleet *f, unsigned i)
{
    char text[4096], body[2048];
    const char *d = f->fx.dir, *url = f->url_of[i][0] ? f->url_of[i] : f->url;
    bool v2 = strncmp(f->stages, "rollouts:", 9) == 0;
    size_t b = 0;
    for (const char *p = f->stages; *p && b < sizeof body - 64; p++)
        if (strncmp(p, "@FX@", 4) == 0)
            b += (size_t)snprintf(body + b, sizeof body - b, "%s", d), p += 3;
        else
            body[b++] = *p;
    body[b] = 0;
    int k = v2 ? snprintf(text, sizeof text,
                          "keys: {hint: %s/hint.key, issuers: [%s/issuer.pub]}\nstate: state\nretry: 60\n"
                          "cookie: never\nfleet: {redis: \"%s\", tracker: %s%s}\n%s",
                          d, d, url, f->name[i], f->fleet_extra, body)
               : snprintf(text, sizeof text,
                          "keys: {hint: %s/hint.key, issuers: [%s/issuer.pub]}\nrelease: %s/release.manifest\n"
                          "targets: [\"1.4.0\"]\nstate: state\nretry: 60\ncookie: never\n"
                          "fleet: {redis: \"%s\", tracker: %s%s}\nstages:\n%s",
                          d, d, d, url, f->name[i], f->fleet_extra, body);
    cr_assert(k > 0 && (size_t)k < sizeof text);
    nu_write(nu_path(&f->node[i], "policy.yaml"), text);
}

void fu_start(fu_fleet *f, unsigned i)
{
    write_policy(f, i);
    char workers[8];
    snprintf(workers, sizeof workers, "%u", f->workers[i]);
    const char *extra[] = {"--control", nu_path(&f->node[i], "ctl.sock"), "--workers", workers, NULL};
    nu_start(&f->node[i], extra, NULL);
}

void fu_reload(fu_fleet *f, unsigned i)
{
    write_policy(f, i);
    json_t *j = fu_ctl(f, i, "{\"cmd\":\"reload\"}");
    cr_assert(json_is_true(json_object_get(j, "ok")), "tracker %s reloads: %s", f->name[i],
              json_string_value(json_object_get(j, "error")));
    json_decref(j);
}

void fu_start_all(fu_fleet *f)
{
    for (unsigned i = 0; i < f->n; i++)
        fu_start(f, i);
}

int fu_stop(fu_fleet *f, unsigned i, int sig)
{
    return nu_stop(&f->node[i], sig);
}

void fu_teardown(fu_fleet *f)
{
    for (unsigned i = 0; i < f->n; i++)
        if (f->node[i].pid)
            nu_stop(&f->node[i], SIGKILL);
    bool sanitizer = false;
    for (unsigned i = 0; i < f->n; i++) {
        static char log[1 << 16];
        if (!f->node[i].dir[0])
            continue;
        nu_stderr(&f->node[i], log, sizeof log);
        if (getenv("UG_FLEET_LOGS")) /* what each tracker logged, to debug */
            fprintf(stderr, "---- tracker %s (%s)\n%s", f->name[i], f->node[i].dir, log);
        if (strstr(log, "runtime error:") || strstr(log, "Sanitizer")) {
            fprintf(stderr, "---- tracker %s: a sanitizer spoke\n%s", f->name[i], log);
            sanitizer = true;
        }
    }
    ru_stop(&f->redis, SIGKILL);
    if (f->sock >= 0)
        close(f->sock);
    f->sock = -1;
    cr_assert(!sanitizer, "a tracker's sanitizer found something (above)");
}

/* ---- peers ------------------------------------------------------------------- */

typedef struct {
    uint8_t dgram[UG_DGRAM_MAX];
    size_t len;
    uint8_t nonce[UG_NONCE_LEN];
    bool done;
} pending;

static void decode(fu_fleet *f, const uint8_t *b, size_t len, uint64_t uid, const uint8_t *nonce, fu_answer *out)
{
    ug_dgram d;
    cr_assert_eq(ug_dgram_decode(&d, b, len, NULL), 0, "a tracker sent a malformed reply");
    out->type = d.type;
    if (d.type == UG_TYPE_WAIT) {
        ug_wait w;
        cr_assert_eq(ug_wait_decode(&w, d.body, d.body_len, NULL), 0);
        out->why = w.why;
        out->retry = w.retry;
    } else if (d.type == UG_TYPE_HINT) {
        ug_pubkey hk, rk;
        ug_pubkey_set(&hk, f->fx.hint_pk);
        ug_pubkey_set(&rk, f->fx.rel_pk);
        ug_peer_expect w = {.hint_keys = &hk, .nhint_keys = 1, .release_keys = &rk, .nrelease_keys = 1, .uid = uid,
                            .now = (uint64_t)time(NULL)};
        memcpy(w.nonce, nonce, UG_NONCE_LEN);
        cr_assert_eq(ug_version_parse(&w.current, "1.4.0", 5), 0);
        ug_hint h;
        ug_err e;
        cr_assert_eq(ug_hint_verify(&h, b, len, &w, &e), 0, "uid %llu: a HINT that does not verify: %s",
                     (unsigned long long)uid, ug_err_name(e));
    }
}

/* The nonce of a reply (every reply echoes the HELLO's). */
static bool reply_nonce(const uint8_t *b, size_t len, uint8_t *nonce)
{
    ug_dgram d;
    if (ug_dgram_decode(&d, b, len, NULL) != 0)
        return false;
    if (d.type == UG_TYPE_WAIT) {
        ug_wait w;
        if (ug_wait_decode(&w, d.body, d.body_len, NULL) != 0)
            return false;
        memcpy(nonce, w.nonce, UG_NONCE_LEN);
    } else if (d.type == UG_TYPE_HINT) {
        ug_hint h;
        if (ug_hint_decode(&h, d.body, d.body_len, NULL) != 0)
            return false;
        memcpy(nonce, h.nonce, UG_NONCE_LEN);
    } else if (d.type == UG_TYPE_COOKIE) {
        ug_cookie c;
        if (ug_cookie_decode(&c, d.body, d.body_len, NULL) != 0)
            return false;
        memcpy(nonce, c.nonce, UG_NONCE_LEN);
    } else {
        return false;
    }
    return true;
}

static void ask_batch(fu_fleet *f, unsigned i, const uint64_t *uids, size_t n, fu_answer *out)
{
    static _Thread_local pending p[BATCH_MAX];
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->node[i].port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    f->fx.now = (uint64_t)time(NULL);
    for (size_t k = 0; k < n; k++) {
        randombytes_buf(p[k].nonce, UG_NONCE_LEN);
        fx_opts o = {.nonce = p[k].nonce};
        p[k].len = fx_hello(&f->fx, p[k].dgram, uids[k], "1.4.0", &o);
        p[k].done = false;
        out[k] = (fu_answer){0};
    }
    for (int attempt = 0; attempt < 4; attempt++) {
        size_t left = 0;
        for (size_t k = 0; k < n; k++)
            if (!p[k].done) {
                left++;
                sendto(f->sock, p[k].dgram, p[k].len, 0, (struct sockaddr *)&to, sizeof to);
            }
        if (!left)
            return;
        long long deadline = fu_mono_ms() + (500 << attempt);
        while (left && fu_mono_ms() < deadline) {
            struct pollfd pf = {.fd = f->sock, .events = POLLIN};
            if (poll(&pf, 1, 100) != 1)
                continue;
            uint8_t b[UG_DGRAM_MAX], nonce[UG_NONCE_LEN];
            ssize_t len = recv(f->sock, b, sizeof b, 0);
            if (len <= 0 || !reply_nonce(b, (size_t)len, nonce))
                continue;
            for (size_t k = 0; k < n; k++)
                if (!p[k].done && memcmp(p[k].nonce, nonce, UG_NONCE_LEN) == 0) {
                    decode(f, b, (size_t)len, uids[k], p[k].nonce, &out[k]);
                    p[k].done = true;
                    left--;
                    break;
                }
        }
    }
}

void fu_ask(fu_fleet *f, unsigned i, const uint64_t *uids, size_t n, fu_answer *out)
{
    for (size_t k = 0; k < n; k += BATCH_MAX)
        ask_batch(f, i, uids + k, n - k < BATCH_MAX ? n - k : BATCH_MAX, out + k);
}

fu_answer fu_ask1(fu_fleet *f, unsigned i, uint64_t uid)
{
    fu_answer a;
    fu_ask(f, i, &uid, 1, &a);
    return a;
}

void fu_build(fu_fleet *f, fu_req *r, size_t n)
{
    f->fx.now = (uint64_t)time(NULL);
    for (size_t k = 0; k < n; k++) {
        randombytes_buf(r[k].nonce, UG_NONCE_LEN);
        fx_opts o = {.nonce = r[k].nonce};
        r[k].len = fx_hello(&f->fx, r[k].dgram, r[k].uid, "1.4.0", &o);
        r[k].done = false;
        r[k].a = (fu_answer){0};
    }
}

void fu_fire(fu_fleet *f, fu_req *r, size_t n)
{
    fu_build(f, r, n);
    fu_resend(f, r, n);
}

void fu_collect(fu_fleet *f, fu_req *r, size_t n, long ms)
{
    size_t left = 0;
    for (size_t k = 0; k < n; k++)
        left += !r[k].done;
    long long deadline = fu_mono_ms() + ms;
    while (left && fu_mono_ms() < deadline) {
        struct pollfd pf = {.fd = f->sock, .events = POLLIN};
        if (poll(&pf, 1, 50) != 1)
            continue;
        uint8_t b[UG_DGRAM_MAX], nonce[UG_NONCE_LEN];
        ssize_t len = recv(f->sock, b, sizeof b, 0);
        if (len <= 0 || !reply_nonce(b, (size_t)len, nonce))
            continue;
        for (size_t k = 0; k < n; k++)
            if (!r[k].done && memcmp(r[k].nonce, nonce, UG_NONCE_LEN) == 0) {
                decode(f, b, (size_t)len, r[k].uid, r[k].nonce, &r[k].a);
                r[k].done = true;
                left--;
                break;
            }
    }
}

void fu_resend(fu_fleet *f, fu_req *r, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (r[k].done)
            continue;
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->node[r[k].tracker].port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        sendto(f->sock, r[k].dgram, r[k].len, 0, (struct sockaddr *)&to, sizeof to);
    }
}

void fu_converse(fu_fleet *f, fu_req *r, size_t n)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        if (attempt)
            fu_resend(f, r, n);
        fu_collect(f, r, n, 500L << attempt);
    }
}

void fu_report(fu_fleet *f, unsigned i, uint64_t uid, ug_res res)
{
    uint8_t b[UG_DGRAM_MAX];
    f->fx.now = (uint64_t)time(NULL);
    size_t len = fx_report(&f->fx, b, uid, "1.4.0", "2.0.0", res);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->node[i].port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    sendto(f->sock, b, len, 0, (struct sockaddr *)&to, sizeof to);
}

/* ---- control ----------------------------------------------------------------- */

json_t *fu_ctl(fu_fleet *f, unsigned i, const char *req)
{
    static _Thread_local char out[1 << 20];
    char line[1024];
    int n = snprintf(line, sizeof line, "%s\n", req);
    long got = nu_ctl(nu_path(&f->node[i], "ctl.sock"), line, (size_t)n, false, out, sizeof out);
    cr_assert_gt(got, 0, "tracker %s: no control reply to %s", f->name[i], req);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    cr_assert(j, "tracker %s: not JSON: %s (%s)", f->name[i], out, e.text);
    return j;
}

long long fu_granted(fu_fleet *f, unsigned i)
{
    json_t *j = fu_ctl(f, i, "{\"cmd\":\"status\"}");
    json_t *st = json_array_get(json_object_get(json_array_get(json_object_get(j, "rollouts"), 0), "stages"), 0);
    long long v = (long long)json_integer_value(json_object_get(st, "granted"));
    json_decref(j);
    return v;
}

static json_t *first_stage(json_t *status)
{
    return json_array_get(json_object_get(json_array_get(json_object_get(status, "rollouts"), 0), "stages"), 0);
}

long long fu_stage_int(fu_fleet *f, unsigned i, const char *key)
{
    json_t *j = fu_ctl(f, i, "{\"cmd\":\"status\"}");
    long long v = (long long)json_integer_value(json_object_get(first_stage(j), key));
    json_decref(j);
    return v;
}

long long fu_gate_int(fu_fleet *f, unsigned i, const char *key)
{
    json_t *j = fu_ctl(f, i, "{\"cmd\":\"status\"}");
    json_t *v = json_object_get(json_object_get(first_stage(j), "gate"), key);
    long long n = json_is_integer(v) ? (long long)json_integer_value(v) : -1;
    json_decref(j);
    return n;
}

void fu_outlook(fu_fleet *f, unsigned i, char *out, size_t cap)
{
    json_t *j = fu_ctl(f, i, "{\"cmd\":\"status\"}");
    const char *v = json_string_value(json_object_get(first_stage(j), "lease_outlook"));
    snprintf(out, cap, "%s", v ? v : "");
    json_decref(j);
}

long long fu_fleet_int(fu_fleet *f, unsigned i, const char *key)
{
    json_t *j = fu_ctl(f, i, "{\"cmd\":\"status\"}");
    long long v = (long long)json_integer_value(json_object_get(json_object_get(json_object_get(j, "tracker"),
                                                                                "fleet"), key));
    json_decref(j);
    return v;
}

long long fu_wait_granted(fu_fleet *f, unsigned i, long long want, long ms)
{
    long long end = fu_mono_ms() + ms, v = -1;
    while ((v = fu_granted(f, i)) != want && fu_mono_ms() < end)
        nu_sleep_ms(100);
    return v;
}

void fu_wait_joined(fu_fleet *f)
{
    for (unsigned i = 0; i < f->n; i++) {
        long long end = fu_mono_ms() + 10000;
        bool up = false;
        if (!f->node[i].pid)
            continue; /* not started */
        while (!up && fu_mono_ms() < end) {
            json_t *j = fu_ctl(f, i, "{\"cmd\":\"status\"}");
            up = json_is_true(json_object_get(json_object_get(json_object_get(j, "tracker"), "fleet"), "connected"));
            json_decref(j);
            if (!up)
                nu_sleep_ms(50);
        }
        cr_assert(up, "tracker %s joined the fleet", f->name[i]);
    }
}
