/* The protocol version 2 world of the program tests (v2world.h): keys, keyrings, certificates and manifests
 * made by the real upgate-keys, served by busybox httpd, and a scripted tracker for hostile answers. */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "testutil.h"
#include "v2world.h"

const char *vw_path(vw_world *w, const char *name)
{
    static _Thread_local char p[4][256];
    static _Thread_local int k;
    char *s = p[k++ % 4];
    snprintf(s, 256, "%s/%s", w->dir, name);
    return s;
}

int vw_keys(vw_world *w, char *out, size_t cap, const char *fmt, ...)
{
    char args[6144], cmd[7000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd %s && %s/upgate-keys %s", w->dir, tu_build_dir(), args);
    return tu_run(strcat(cmd, " 2>&1"), out, cap);
}

void vw_keys_ok(vw_world *w, const char *fmt, ...)
{
    char args[6144], out[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int rc = vw_keys(w, out, sizeof out, "%s", args);
    cr_assert_eq(rc, 0, "upgate-keys %s: exit %d: %s", args, rc, out);
}

void vw_init(vw_world *w)
{
    cr_assert(sodium_init() >= 0);
    memset(w, 0, sizeof *w);
    snprintf(w->dir, sizeof w->dir, "%s", tu_tmpdir());
    snprintf(w->www, sizeof w->www, "%s/www", w->dir);
    cr_assert_eq(nu_sh("mkdir -p %s/keys && head -c 100000 /dev/urandom > %s/app.bin", w->www, w->www), 0);
    vw_keys_ok(w, "gen r1 && for k in r2 r3 r4 r5 rel1 rel2 c1 c2 hint hint2 issuer client; do %s/upgate-keys gen $k "
                  "|| exit 1; done", tu_build_dir());
    vw_keys_ok(w, "keyring --kv 1 --ttl 864000 --root r1.pub --root r2.pub --root r3.pub --root-threshold 2 "
                  "--release rel1.pub --release rel2.pub --release-threshold 2 --cert c1.pub --key r1.key --key r2.key "
                  "--out www/keys/1.keyring");
    w->httpd = tu_httpd(w->www, &w->http_port);
}

void vw_fini(vw_world *w)
{
    if (w->httpd) {
        kill(w->httpd, SIGTERM);
        waitpid(w->httpd, NULL, 0);
        w->httpd = 0;
    }
}

void vw_manifest_of(vw_world *w, const char *out, const char *ver, unsigned seq, const char *extra)
{
    vw_keys_ok(w, "release --app " VW_APP " --plat " VW_PLAT " --chan " VW_CHAN " --seq %u --version %s "
                  "--file www/app.bin --url http://127.0.0.1:%u/app.bin --ttl 86400 --key rel1.key --key rel2.key "
                  "--out %s %s",
               seq, ver, w->http_port, out, extra ? extra : "");
}

void vw_manifest(vw_world *w, const char *out, const char *extra)
{
    vw_manifest_of(w, out, "2.0.0", 10, extra);
}

void vw_cert(vw_world *w, const char *out, unsigned kv, unsigned serial, bool second)
{
    vw_keys_ok(w, "cert --hint %s --serial %u --kv %u --ttl 864000 --key c1.key --out %s", second ? "hint2.pub" : "hint.pub",
               serial, kv, out);
}

void vw_cred(vw_world *w, uint64_t uid)
{
    vw_keys_ok(w, "cred --issuer issuer.key --uid %llu --pub client.pub --ttl 86400 --out c%llu.cred",
               (unsigned long long)uid, (unsigned long long)uid);
}

void vw_policy_text(char *out, size_t cap, const char *keyring, const char *cert, const char *manifest,
                    const char *extra_rollout)
{
    int n = snprintf(out, cap,
                     "keys: {hint: ../hint.key, issuers: [../issuer.pub], keyring: ../%s, hint_cert: ../%s}\n"
                     "state: state\nretry: 120\nrollouts:\n"
                     "  - name: r\n    release_v2: ../%s\n    targets: [\"1.4.0\"]\n%s"
                     "    stages:\n      - name: all\n",
                     keyring, cert, manifest, extra_rollout ? extra_rollout : "");
    cr_assert(n > 0 && (size_t)n < cap);
}

static void node_dir(vw_world *w, nu_node *n, const char *name, const char *policy)
{
    memset(n, 0, sizeof *n);
    n->out = -1;
    int len = snprintf(n->dir, sizeof n->dir, "%.40s/%.20s", w->dir, name);
    cr_assert(len > 0 && (size_t)len < sizeof n->dir && strlen(w->dir) <= 40, "node folder too long");
    snprintf(n->err_path, sizeof n->err_path, "%s/node.err", n->dir);
    cr_assert_eq(nu_sh("mkdir -p %s", n->dir), 0);
    nu_write(nu_path(n, "policy.yaml"), policy);
}

void vw_node(vw_world *w, nu_node *n, const char *name, const char *policy)
{
    node_dir(w, n, name, policy);
    nu_start(n, NULL, NULL);
}

int vw_node_fails(vw_world *w, nu_node *n, const char *name, const char *policy, char *err, size_t cap)
{
    node_dir(w, n, name, policy);
    return nu_start_fails(n, NULL, NULL, err, cap);
}

void vw_reload(nu_node *n, const char *policy)
{
    char before[2048], after[2048];
    nu_stderr(n, before, sizeof before);
    nu_write(nu_path(n, "policy.yaml"), policy);
    kill(n->pid, SIGHUP);
    for (int i = 0; i < 300; i++) { /* the node logs the reload's outcome */
        nu_sleep_ms(10);
        nu_stderr(n, after, sizeof after);
        if (strlen(after) > strlen(before) && strstr(after + strlen(before), "reload"))
            return;
    }
    cr_assert_fail("no reload logged: %s", after);
}

void vw_peer(vw_world *w, vw_run *r, const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int n = snprintf(cmd, sizeof cmd,
                     "cd %s && %s/upgate-peer --key client.key --root r1.pub --root r2.pub --root r3.pub --threshold 2 "
                     "--anchor-kv 1 --app " VW_APP " --keyring-url http://127.0.0.1:%u/keys/ --tries 3 --timeout 10 "
                     "--yes %s </dev/null 2>&1",
                     w->dir, tu_build_dir(), w->http_port, args);
    cr_assert(n > 0 && (size_t)n < sizeof cmd);
    r->out[0] = 0;
    r->rc = tu_run(cmd, r->out, sizeof r->out);
}

/* ---- the scripted tracker ------------------------------------------------ */

static void *fake_main(void *arg)
{
    vw_fake *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd p = {.fd = f->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        uint8_t in[UG_DGRAM_MAX + 1], out[UG_DGRAM_MAX];
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(f->fd, in, sizeof in, 0, (struct sockaddr *)&from, &fl);
        ug2_hello h;
        ug_dgram d;
        if (n <= 0 || ug2_hello_parse(&h, &d, in, (size_t)n, NULL) != 0)
            continue; /* REPORTs and the rest: not answered */
        atomic_fetch_add(&f->hellos, 1);
        size_t len = f->answer(f->ctx, &h, out, sizeof out < (size_t)n ? sizeof out : (size_t)n);
        if (len)
            (void)sendto(f->fd, out, len, 0, (struct sockaddr *)&from, fl);
    }
    return NULL;
}

void vw_fake_start(vw_fake *f, vw_answer_fn answer, void *ctx)
{
    memset(f, 0, sizeof *f);
    f->answer = answer;
    f->ctx = ctx;
    f->fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    cr_assert(f->fd >= 0 && bind(f->fd, (struct sockaddr *)&a, sizeof a) == 0 &&
              getsockname(f->fd, (struct sockaddr *)&a, &al) == 0);
    f->port = ntohs(a.sin_port);
    atomic_store(&f->stop, false);
    cr_assert_eq(pthread_create(&f->th, NULL, fake_main, f), 0);
}

void vw_fake_stop(vw_fake *f)
{
    if (f->fd <= 0)
        return;
    atomic_store(&f->stop, true);
    pthread_join(f->th, NULL);
    close(f->fd);
    f->fd = -1;
}

void vw_hint_load(vw_world *w, vw_hint *h, const char *key, const char *cert, const char *rel, uint32_t kv)
{
    char why[256] = "";
    memset(h, 0, sizeof *h);
    h->hint_sk = ug_seckey_load(vw_path(w, key), why, sizeof why);
    cr_assert_not_null(h->hint_sk, "%s", why);
    cr_assert_eq(ug_file_read(vw_path(w, cert), h->cert, sizeof h->cert, &h->cert_len, why, sizeof why), 0, "%s", why);
    cr_assert_eq(ug_file_read(vw_path(w, rel), h->rel, sizeof h->rel, &h->rel_len, why, sizeof why), 0, "%s", why);
    h->kv = kv;
}

void vw_hint_free(vw_hint *h)
{
    ug_secret_free(h->hint_sk);
    h->hint_sk = NULL;
}

size_t vw_hint_make(const vw_hint *h, const ug2_hello *hello, uint8_t *out, size_t cap)
{
    uint64_t ts = h->ts ? h->ts : (uint64_t)time(NULL);
    ug2_hint_fields f = {.uid = hello->base.uid, .ts = ts, .exp = ts + 600, .mirror = 0, .kv = h->kv,
                         .cert = h->cert, .cert_len = h->cert_len, .rel = h->rel, .rel_len = h->rel_len};
    memcpy(f.nonce, hello->base.nonce, UG_NONCE_LEN);
    uint8_t body[UG_DGRAM_MAX];
    size_t blen, len = 0;
    if (ug2_hint_encode_body(body, sizeof body, &blen, &f) != 0 ||
        ug2_dgram_encode(out, cap, &len, UG_TYPE_HINT, body, blen, h->hint_sk) != 0)
        return 0;
    return len;
}

size_t vw_wait_make(const vw_hint *h, const ug2_hello *hello, bool tok, uint8_t *out, size_t cap)
{
    uint64_t ts = h->ts ? h->ts : (uint64_t)time(NULL);
    ug2_token t = {.ts = ts, .exp = ts + 3600, .kv = h->kv, .nseqs = 1,
                   .seqs = {{.app = VW_APP, .chan = VW_CHAN, .seq = 10}}};
    snprintf(t.trk, sizeof t.trk, "upgate");
    uint8_t tokbuf[UG_DGRAM_MAX], body[UG_DGRAM_MAX];
    size_t tlen = 0, blen, len = 0;
    ug2_wait_fields f = {.base = {.ts = ts, .retry = 120, .why = UG_WHY_NOT_SELECTED}};
    memcpy(f.base.nonce, hello->base.nonce, UG_NONCE_LEN);
    if (tok) {
        cr_assert_eq(ug2_token_sign(tokbuf, sizeof tokbuf, &tlen, &t, h->hint_sk), 0);
        f.tok = tokbuf, f.tok_len = tlen, f.cert = h->cert, f.cert_len = h->cert_len;
    }
    if (ug2_wait_encode_body(body, sizeof body, &blen, &f) != 0 ||
        ug2_dgram_encode(out, cap, &len, UG_TYPE_WAIT, body, blen, NULL) != 0)
        return 0;
    return len;
}
