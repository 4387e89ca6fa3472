/* Fleet mode's Redis replies read by shape (the scripts' LEASE, UNPARK and RATE, stream entries, scans, hashes, the connection's own), each level checked before it is read: fuzz/fuzz_fleet.c feeds them any reply. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/fleet_redis.h"

bool fr_int_at(const redisReply *rep, size_t i, long long *out)
{
    if (!rep)
        return false;
    if (rep->type == REDIS_REPLY_ARRAY) {
        if (i >= rep->elements)
            return false;
        rep = rep->element[i];
    }
    if (rep->type == REDIS_REPLY_INTEGER) {
        *out = rep->integer;
        return true;
    }
    if (rep->type == REDIS_REPLY_STRING) {
        char *end;
        errno = 0;
        long long v = strtoll(rep->str, &end, 10);
        if (errno || end == rep->str || *end)
            return false;
        *out = v;
        return true;
    }
    return false;
}

int fr_lease_reply(const redisReply *rep, uint64_t want, uint64_t quota, fr_lease *out)
{
    long long g, n, l;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 || !fr_int_at(rep, 0, &g) ||
        !fr_int_at(rep, 1, &n) || !fr_int_at(rep, 2, &l))
        return -1;
    if (g < 0 || n < 0 || l < 0 || (uint64_t)g > want || (uint64_t)n > quota || (uint64_t)l > quota ||
        (uint64_t)g > (uint64_t)l || (uint64_t)n + (uint64_t)l > quota)
        return -1;
    *out = (fr_lease){.given = (uint64_t)g, .n = (uint64_t)n, .leased = (uint64_t)l};
    return 0;
}

int fr_unpark_reply(const redisReply *rep, uint64_t k, uint64_t *given)
{
    long long g;
    if (!rep || rep->type != REDIS_REPLY_INTEGER || !fr_int_at(rep, 0, &g) || g < 0 || (uint64_t)g > k)
        return -1;
    *given = (uint64_t)g;
    return 0;
}

bool fr_is_error(const redisReply *rep, char *err, size_t cap)
{
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        snprintf(err, cap, "%s", rep->str);
        return true;
    }
    return false;
}

const redisReply *fr_str_at(const redisReply *rep, size_t i)
{
    if (!rep || rep->type != REDIS_REPLY_ARRAY || i >= rep->elements)
        return NULL;
    const redisReply *e = rep->element[i];
    return e && e->type == REDIS_REPLY_STRING ? e : NULL;
}

size_t fr_npairs(const redisReply *rep)
{
    return rep && rep->type == REDIS_REPLY_ARRAY ? rep->elements / 2 : 0;
}

bool fr_pair(const redisReply *rep, size_t i, const redisReply **k, const redisReply **v)
{
    if (i >= fr_npairs(rep))
        return false;
    *k = fr_str_at(rep, 2 * i);
    *v = fr_str_at(rep, 2 * i + 1);
    return *k && *v;
}

bool fr_hash_int(const redisReply *rep, const char *field, long long *out)
{
    const redisReply *k, *v;
    bool found = false;
    for (size_t i = 0; i < fr_npairs(rep); i++)
        if (fr_pair(rep, i, &k, &v) && strcmp(k->str, field) == 0 && k->len == strlen(field))
            found = fr_int_at(v, 0, out) || found;
    return found;
}

long fr_strings(const redisReply *rep, const char **f, size_t *len, size_t cap)
{
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements > cap)
        return -1;
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *e = fr_str_at(rep, i);
        if (!e)
            return -1;
        f[i] = e->str;
        len[i] = e->len;
    }
    return (long)rep->elements;
}

/* A stream id: MS-SEQ, both decimal (what XREAD and XRANGE take back). */
static bool stream_id(const redisReply *s)
{
    size_t ms = strspn(s->str, "0123456789");
    return ms && ms < 21 && s->str[ms] == '-' && s->len - ms - 1 >= 1 && s->len - ms - 1 < 21 &&
           strspn(s->str + ms + 1, "0123456789") == s->len - ms - 1;
}

const char *fr_stream_entry(const redisReply *e, const redisReply **fields)
{
    const redisReply *id = fr_str_at(e, 0);
    if (!id || e->elements != 2 || !stream_id(id))
        return NULL;
    *fields = e->element[1];
    return e->element[0]->str;
}

size_t fr_entry_id(const redisReply *rep, char *id, size_t cap)
{
    const redisReply *fields;
    const char *s = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1
                        ? fr_stream_entry(rep->element[0], &fields)
                        : NULL;
    size_t n = s ? rep->element[0]->element[0]->len : 0;
    if (!n || n >= cap || memchr(s, '\0', n))
        return 0;
    memcpy(id, s, n);
    id[n] = '\0';
    return n;
}

const redisReply *fr_xread_entries(const redisReply *rep)
{
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 1)
        return NULL;
    const redisReply *st = rep->element[0];
    if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 || st->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    return st->element[1];
}

const redisReply *fr_scan_reply(const redisReply *rep, char *cursor, size_t cap)
{
    const redisReply *c = fr_str_at(rep, 0);
    if (!c || rep->elements != 2 || rep->element[1]->type != REDIS_REPLY_ARRAY || !c->len || c->len >= cap ||
        strspn(c->str, "0123456789") != c->len)
        return NULL;
    memcpy(cursor, c->str, c->len + 1);
    return rep->element[1];
}

bool fr_rate_reply(const redisReply *rep, double most, double *share, long long *active)
{
    const redisReply *s = fr_str_at(rep, 0);
    long long a;
    if (!s || rep->elements != 3 || !s->len || !fr_int_at(rep, 1, &a) || a < 0)
        return false;
    char *end;
    double v = strtod(s->str, &end);
    if (end != s->str + s->len || !(v >= 0) || !(v <= most))
        return false;
    *share = v;
    *active = a;
    return true;
}

bool fr_master_addr(const redisReply *rep, char *host, size_t cap, unsigned *port)
{
    const redisReply *h = fr_str_at(rep, 0), *p = fr_str_at(rep, 1);
    if (!h || !p || rep->elements != 2 || !h->len || h->len >= cap || memchr(h->str, '\0', h->len) || !p->len ||
        strspn(p->str, "0123456789") != p->len || p->len > 5)
        return false;
    unsigned long v = strtoul(p->str, NULL, 10);
    if (v < 1 || v > 65535)
        return false;
    memcpy(host, h->str, h->len + 1);
    *port = (unsigned)v;
    return true;
}

bool fr_is_master(const redisReply *rep)
{
    const redisReply *r = fr_str_at(rep, 0);
    return r && r->len == 6 && memcmp(r->str, "master", 6) == 0;
}

size_t fr_info_field(const redisReply *rep, const char *name, char *out, size_t cap)
{
    if (!rep || rep->type != REDIS_REPLY_STRING || !cap)
        return 0;
    size_t nl = strlen(name);
    /* a line of its own: at the start, or after a newline */
    for (const char *p = rep->str; (p = strstr(p, name)) != NULL; p += nl)
        if ((p == rep->str || p[-1] == '\n') && p[nl] == ':') {
            size_t n = strcspn(p + nl + 1, "\r\n");
            if (n >= cap)
                return 0;
            memcpy(out, p + nl + 1, n);
            out[n] = '\0';
            return n;
        }
    return 0;
}

bool fr_sha_reply(const redisReply *rep, char out[41])
{
    if (!rep || rep->type != REDIS_REPLY_STRING || rep->len != 40 || strspn(rep->str, "0123456789abcdef") != 40)
        return false;
    memcpy(out, rep->str, 41);
    return true;
}
