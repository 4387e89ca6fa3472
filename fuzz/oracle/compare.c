/* Holds every new decoder to the oracle's verdict, reason and fields. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "oracle.h"

static const char *say(or_msg *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *say(or_msg *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->text, sizeof m->text, fmt, ap);
    va_end(ap);
    return m->text;
}

/* Same verdict and reason? (err is compared only on failure: on success
 * neither decoder promises to touch it.) */
static const char *verdicts(or_msg *m, const char *what, int rn, ug_err en, int ro, ug_err eo)
{
    if ((rn == 0) != (ro == 0))
        return say(m, "%s: new %s (%s), oracle %s (%s)", what, rn == 0 ? "accepts" : "refuses", ug_err_name(en),
                   ro == 0 ? "accepts" : "refuses", ug_err_name(eo));
    if (rn != 0 && en != eo)
        return say(m, "%s: both refuse, new for %s, oracle for %s", what, ug_err_name(en), ug_err_name(eo));
    return NULL;
}

#define DIFF(cond, ...)                                                                                      \
    do {                                                                                                     \
        if (cond)                                                                                            \
            return say(msg, __VA_ARGS__);                                                                    \
    } while (0)

/* Same bytes [a, a+alen) and [b, b+blen)? An empty span has no address
 * worth comparing: msgpack-c points an empty bin at its length byte. */
static bool same_span(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && (alen == 0 || a == b);
}

static bool same_signed(const ug_signed *a, const ug_signed *b)
{
    return a->raw == b->raw && a->raw_len == b->raw_len && same_span(a->body, a->body_len, b->body, b->body_len) &&
           a->sig == b->sig;
}

static bool same_cred(const ug_cred *a, const ug_cred *b)
{
    return a->uid == b->uid && a->exp == b->exp && memcmp(a->pk, b->pk, UG_PK_LEN) == 0 &&
           memcmp(a->kid, b->kid, UG_KID_LEN) == 0;
}

static bool same_version(const ug_version *a, const ug_version *b)
{
    return a->nparts == b->nparts && memcmp(a->part, b->part, sizeof a->part) == 0;
}

const char *or_cmp_dgram(const uint8_t *buf, size_t len, or_msg *msg)
{
    ug_dgram n, o;
    ug_err en = UG_OK, eo = UG_OK;
    int rn = ug_dgram_decode(&n, buf, len, &en), ro = or_dgram_decode(&o, buf, len, &eo);
    const char *d = verdicts(msg, "datagram", rn, en, ro, eo);
    if (d || rn != 0)
        return d;
    DIFF(n.type != o.type || !same_span(n.body, n.body_len, o.body, o.body_len) || n.sig != o.sig,
         "datagram: fields differ (type %d/%d, body %zu/%zu bytes)", (int)n.type, (int)o.type, n.body_len,
         o.body_len);
    return NULL;
}

const char *or_cmp_signed(const uint8_t *buf, size_t len, or_msg *msg)
{
    ug_signed n, o;
    ug_err en = UG_OK, eo = UG_OK;
    int rn = ug_signed_decode(&n, buf, len, &en), ro = or_signed_decode(&o, buf, len, &eo);
    const char *d = verdicts(msg, "signed object", rn, en, ro, eo);
    if (d || rn != 0)
        return d;
    DIFF(!same_signed(&n, &o), "signed object: spans differ");
    return NULL;
}

const char *or_cmp_cred(const uint8_t *buf, size_t len, or_msg *msg)
{
    ug_cred n, o;
    ug_err en = UG_OK, eo = UG_OK;
    int rn = ug_cred_decode(&n, buf, len, &en), ro = or_cred_decode(&o, buf, len, &eo);
    const char *d = verdicts(msg, "credential", rn, en, ro, eo);
    if (d || rn != 0)
        return d;
    DIFF(!same_cred(&n, &o), "credential: fields differ");
    return NULL;
}

/* Every field of two decoded HELLOs; the credential only when decoded. */
static const char *same_hello(or_msg *msg, const ug_hello *n, const ug_hello *o, bool cred)
{
    DIFF(n->uid != o->uid || n->ts != o->ts, "HELLO: uid/ts differ");
    DIFF(!same_version(&n->ver, &o->ver), "HELLO: ver differs");
    DIFF(memcmp(n->nonce, o->nonce, UG_NONCE_LEN) != 0 || memcmp(n->pk, o->pk, UG_PK_LEN) != 0,
         "HELLO: nonce/pk differ");
    DIFF(!same_signed(&n->cred_obj, &o->cred_obj), "HELLO: credential spans differ");
    DIFF(n->cred_decoded != cred, "HELLO: cred_decoded is %d, want %d", n->cred_decoded, cred);
    DIFF(cred && !same_cred(&n->cred, &o->cred), "HELLO: credentials differ");
    DIFF(strcmp(n->plat, o->plat) != 0 || strcmp(n->chan, o->chan) != 0, "HELLO: plat/chan differ");
    DIFF(n->has_cookie != o->has_cookie || (n->has_cookie && memcmp(n->cookie, o->cookie, UG_COOKIE_LEN) != 0),
         "HELLO: cookie differs");
    DIFF(n->pad_len != o->pad_len, "HELLO: pad %zu/%zu", n->pad_len, o->pad_len);
    return NULL;
}

const char *or_cmp_hello(const uint8_t *buf, size_t len, or_msg *msg)
{
    ug_hello n, o;
    ug_err en = UG_OK, eo = UG_OK;
    int rn = ug_hello_decode(&n, buf, len, &en), ro = or_hello_decode(&o, buf, len, &eo);
    const char *d = verdicts(msg, "HELLO body", rn, en, ro, eo);
    return d || rn != 0 ? d : same_hello(msg, &n, &o, true);
}

/* The oracle's way to a whole HELLO: datagram, type, body. */
static int old_hello_parse(ug_hello *h, ug_dgram *d, const uint8_t *buf, size_t len, bool cred, ug_err *err)
{
    if (or_dgram_decode(d, buf, len, err) != 0)
        return -1;
    if (d->type != UG_TYPE_HELLO) {
        *err = UG_E_HEADER;
        return -1;
    }
    return or_hello_decode_cred(h, d->body, d->body_len, cred, err);
}

const char *or_cmp_hello_parse(const uint8_t *buf, size_t len, or_msg *msg)
{
    ug_hello n, o;
    ug_dgram dn, dd;
    ug_err en = UG_OK, eo = UG_OK;
    /* the parse alone, credential body untouched */
    int rn = ug_hello_parse(&n, &dn, buf, len, &en), ro = old_hello_parse(&o, &dd, buf, len, false, &eo);
    const char *d = verdicts(msg, "HELLO parse", rn, en, ro, eo);
    if (d)
        return d;
    DIFF((dn.body != NULL) != (or_dgram_decode(&dd, buf, len, NULL) == 0), "HELLO parse: d->body %s",
         dn.body ? "set for garbage" : "NULL for a datagram");
    if (rn != 0)
        return NULL;
    DIFF(dn.type != dd.type || !same_span(dn.body, dn.body_len, dd.body, dd.body_len) || dn.sig != dd.sig,
         "HELLO parse: datagram differs");
    if ((d = same_hello(msg, &n, &o, false)) != NULL)
        return d;
    ug_cred zero = {0};
    DIFF(!same_cred(&n.cred, &zero), "HELLO parse: undecoded credential not zeros");
    /* ug_cred_check fails closed before the credential is decoded */
    ug_pubkey any = {{0}, {0}};
    const ug_pubkey *iss = NULL;
    ug_err ec = UG_OK;
    DIFF(ug_cred_check(&n, &any, 1, 0, &iss, &ec) == 0 || ec != UG_E_SCHEMA,
         "HELLO parse: ug_cred_check ran on an undecoded credential (%s)", ug_err_name(ec));
    /* then the credential, against the whole old path */
    rn = ug_hello_cred_decode(&n, &en);
    ro = old_hello_parse(&o, &dd, buf, len, true, &eo);
    if ((d = verdicts(msg, "HELLO parse + credential", rn, en, ro, eo)) != NULL || rn != 0)
        return d;
    if ((d = same_hello(msg, &n, &o, true)) != NULL)
        return d;
    DIFF(ug_hello_cred_decode(&n, &en) != 0 || !n.cred_decoded, "HELLO: a second credential decode failed");
    return NULL;
}

static const char *same_report(or_msg *msg, const ug_report *n, const ug_report *o)
{
    DIFF(n->uid != o->uid || n->ts != o->ts || n->res != o->res, "REPORT: uid/ts/res differ");
    DIFF(!same_version(&n->ver, &o->ver) || !same_version(&n->to, &o->to), "REPORT: ver/to differ");
    DIFF(memcmp(n->nonce, o->nonce, UG_NONCE_LEN) != 0 || memcmp(n->pk, o->pk, UG_PK_LEN) != 0,
         "REPORT: nonce/pk differ");
    DIFF(!same_signed(&n->cred_obj, &o->cred_obj) || !same_cred(&n->cred, &o->cred), "REPORT: credential differs");
    DIFF(n->pad_len != o->pad_len, "REPORT: pad differs");
    return NULL;
}

const char *or_cmp_report(const uint8_t *buf, size_t len, or_msg *msg)
{
    ug_report n, o;
    ug_err en = UG_OK, eo = UG_OK;
    int rn = ug_report_decode(&n, buf, len, &en), ro = or_report_decode(&o, buf, len, &eo);
    const char *d = verdicts(msg, "REPORT body", rn, en, ro, eo);
    return d || rn != 0 ? d : same_report(msg, &n, &o);
}

const char *or_cmp_report_parse(const uint8_t *buf, size_t len, or_msg *msg)
{
    ug_report n, o;
    ug_dgram dn, dd;
    ug_err en = UG_OK, eo = UG_OK;
    int rn = ug_report_parse(&n, &dn, buf, len, &en), ro;
    if (or_dgram_decode(&dd, buf, len, &eo) != 0)
        ro = -1;
    else if (dd.type != UG_TYPE_REPORT)
        ro = -1, eo = UG_E_HEADER;
    else
        ro = or_report_decode(&o, dd.body, dd.body_len, &eo);
    const char *d = verdicts(msg, "REPORT parse", rn, en, ro, eo);
    if (d || rn != 0)
        return d;
    DIFF(dn.type != dd.type || !same_span(dn.body, dn.body_len, dd.body, dd.body_len) || dn.sig != dd.sig,
         "REPORT parse: datagram differs");
    return same_report(msg, &n, &o);
}

static const char *same_manifest(or_msg *msg, const ug_manifest *n, const ug_manifest *o)
{
    DIFF(!same_version(&n->to, &o->to) || n->size != o->size || n->exp != o->exp, "manifest: to/size/exp differ");
    DIFF(memcmp(n->hash, o->hash, UG_HASH_LEN) != 0 || memcmp(n->kid, o->kid, UG_KID_LEN) != 0,
         "manifest: hash/kid differ");
    DIFF(n->nurls != o->nurls, "manifest: %u/%u urls", n->nurls, o->nurls);
    for (unsigned i = 0; i < n->nurls; i++)
        DIFF(strcmp(n->urls[i], o->urls[i]) != 0, "manifest: url %u differs", i);
    return NULL;
}

const char *or_cmp_manifest(const uint8_t *buf, size_t len, or_msg *msg)
{
    ug_manifest n, o;
    ug_err en = UG_OK, eo = UG_OK;
    int rn = ug_manifest_decode(&n, buf, len, &en), ro = or_manifest_decode(&o, buf, len, &eo);
    const char *d = verdicts(msg, "manifest", rn, en, ro, eo);
    return d || rn != 0 ? d : same_manifest(msg, &n, &o);
}

const char *or_cmp_hint(const uint8_t *buf, size_t len, or_msg *msg)
{
    ug_hint n, o;
    ug_err en = UG_OK, eo = UG_OK;
    int rn = ug_hint_decode(&n, buf, len, &en), ro = or_hint_decode(&o, buf, len, &eo);
    const char *d = verdicts(msg, "HINT body", rn, en, ro, eo);
    if (d || rn != 0)
        return d;
    DIFF(n.uid != o.uid || n.ts != o.ts || n.exp != o.exp || n.mirror != o.mirror, "HINT: numbers differ");
    DIFF(memcmp(n.nonce, o.nonce, UG_NONCE_LEN) != 0 || memcmp(n.kid, o.kid, UG_KID_LEN) != 0,
         "HINT: nonce/kid differ");
    DIFF(!same_signed(&n.rel_obj, &o.rel_obj), "HINT: manifest spans differ");
    return same_manifest(msg, &n.rel, &o.rel);
}

const char *or_cmp_wait(const uint8_t *buf, size_t len, or_msg *msg)
{
    ug_wait n, o;
    ug_err en = UG_OK, eo = UG_OK;
    int rn = ug_wait_decode(&n, buf, len, &en), ro = or_wait_decode(&o, buf, len, &eo);
    const char *d = verdicts(msg, "WAIT body", rn, en, ro, eo);
    if (d || rn != 0)
        return d;
    DIFF(memcmp(n.nonce, o.nonce, UG_NONCE_LEN) != 0 || n.ts != o.ts || n.retry != o.retry || n.why != o.why,
         "WAIT: fields differ");
    return NULL;
}

const char *or_cmp_cookie(const uint8_t *buf, size_t len, or_msg *msg)
{
    ug_cookie n, o;
    ug_err en = UG_OK, eo = UG_OK;
    int rn = ug_cookie_decode(&n, buf, len, &en), ro = or_cookie_decode(&o, buf, len, &eo);
    const char *d = verdicts(msg, "COOKIE body", rn, en, ro, eo);
    if (d || rn != 0)
        return d;
    DIFF(memcmp(n.nonce, o.nonce, UG_NONCE_LEN) != 0 || memcmp(n.cookie, o.cookie, UG_COOKIE_LEN) != 0 ||
             n.ts != o.ts,
         "COOKIE: fields differ");
    return NULL;
}

typedef const char *(*cmp_fn)(const uint8_t *, size_t, or_msg *);

const char *or_cmp_all(const uint8_t *buf, size_t len, or_msg *msg)
{
    static const cmp_fn all[] = {or_cmp_dgram, or_cmp_signed,   or_cmp_cred, or_cmp_hello, or_cmp_hello_parse,
                                 or_cmp_report, or_cmp_report_parse, or_cmp_manifest, or_cmp_hint, or_cmp_wait,
                                 or_cmp_cookie};
    const char *d;
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if ((d = all[i](buf, len, msg)) != NULL)
            return d;
    /* a datagram's body (and a credential or manifest inside it) as what
     * its type names; every body decoder sees it */
    ug_dgram dg;
    if (ug_dgram_decode(&dg, buf, len, NULL) != 0)
        return NULL; /* and the oracle agrees: or_cmp_dgram said so */
    for (size_t i = 1; i < sizeof all / sizeof *all; i++)
        if (all[i] != or_cmp_hello_parse && all[i] != or_cmp_report_parse &&
            (d = all[i](dg.body, dg.body_len, msg)) != NULL)
            return d;
    return NULL;
}
