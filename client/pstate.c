/* libupgate: the version 2 state file's text (what a peer learned, protocol-v2.md 5.0), parsed strictly
 * and written back. Lines, each ending with "\n", in this order:
 *   upgate-peer-state 2
 *   keyring BASE64          at most once: the newest keyring document verified
 *   seq APP CHAN N          up to 16, one per (app, chan): the highest seq verified (1..2^63-1)
 *   min_serial N
 *   floor N                 the highest signed time verified
 *   fresh_at N              the signed time of the newest valid token or HINT
 * N decimal without sign or leading zero, at most 2^64-1; APP and CHAN labels. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"

#define HEADER "upgate-peer-state 2"

typedef struct {
    const char *p, *end;
} cursor;

/* The next line without its "\n"; -1 when there is none or no "\n". */
static int next_line(cursor *c, const char **line, size_t *len)
{
    if (c->p >= c->end)
        return -1;
    const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
    if (!nl)
        return -1;
    *line = c->p;
    *len = (size_t)(nl - c->p);
    c->p = nl + 1;
    return 0;
}

/* A word of the line at *pos, up to a space or the end. */
static bool word(const char *line, size_t len, size_t *pos, const char **w, size_t *wlen)
{
    size_t i = *pos;
    while (i < len && line[i] != ' ')
        i++;
    *w = line + *pos;
    *wlen = i - *pos;
    *pos = i < len ? i + 1 : i;
    return *wlen > 0;
}

static bool number(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* "KEY N" with N at most max. */
static bool keyed(const char *line, size_t len, const char *key, uint64_t max, uint64_t *out)
{
    size_t k = strlen(key);
    return len > k + 1 && memcmp(line, key, k) == 0 && line[k] == ' ' && number(line + k + 1, len - k - 1, max, out);
}

static bool starts(const char *line, size_t len, const char *key)
{
    size_t k = strlen(key);
    return len > k && memcmp(line, key, k) == 0 && line[k] == ' ';
}

/* Standard base64 bytes only: libsodium's decoder reads a byte above 0x7f
 * as one of its alphabet, so a text it accepts is not always canonical. */
static bool b64_bytes(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '+' || s[i] == '/' || s[i] == '='))
            return false;
    return true;
}

static bool keyring_line(const char *line, size_t len, ug_client_pstate *st)
{
    const char *b64 = line + 8, *end = NULL;
    size_t n = len - 8;
    return n > 0 && b64_bytes(b64, n) && n <= sodium_base64_ENCODED_LEN(UG2_KEYRING_MAX, sodium_base64_VARIANT_ORIGINAL) &&
           sodium_base642bin(st->keyring, sizeof st->keyring, b64, n, NULL, &st->keyring_len, &end,
                             sodium_base64_VARIANT_ORIGINAL) == 0 &&
           end == b64 + n && st->keyring_len > 0;
}

static bool seq_line(const char *line, size_t len, ug_client_pstate *st)
{
    size_t pos = 4;
    const char *app, *chan, *n;
    size_t alen, clen, nlen;
    if (st->nseqs == UG_CLIENT_SEQS_MAX || !word(line, len, &pos, &app, &alen) ||
        !word(line, len, &pos, &chan, &clen) || !word(line, len, &pos, &n, &nlen) || pos != len ||
        line[len - 1] == ' ' || !ug2_label_valid(app, alen, UG2_LABEL_MAX) || !ug2_label_valid(chan, clen, UG2_CHAN_MAX))
        return false;
    ug_client_seq *q = &st->seqs[st->nseqs];
    if (!number(n, nlen, UG2_SEQ_MAX, &q->seq) || q->seq == 0)
        return false;
    memcpy(q->app, app, alen);
    q->app[alen] = 0;
    memcpy(q->chan, chan, clen);
    q->chan[clen] = 0;
    for (unsigned i = 0; i < st->nseqs; i++)
        if (!strcmp(st->seqs[i].app, q->app) && !strcmp(st->seqs[i].chan, q->chan))
            return false;
    st->nseqs++;
    return true;
}

int ug_client_pstate_parse_(const uint8_t *text, size_t len, ug_client_pstate *st)
{
    memset(st, 0, sizeof *st);
    if (len > UG_CLIENT_PSTATE_MAX)
        return -1;
    cursor c = {(const char *)text, (const char *)text + len};
    const char *l;
    size_t n;
    if (next_line(&c, &l, &n) != 0 || n != strlen(HEADER) || memcmp(l, HEADER, n) != 0 || next_line(&c, &l, &n) != 0)
        return -1;
    if (starts(l, n, "keyring")) {
        if (!keyring_line(l, n, st) || next_line(&c, &l, &n) != 0)
            return -1;
    }
    while (starts(l, n, "seq")) {
        if (!seq_line(l, n, st) || next_line(&c, &l, &n) != 0)
            return -1;
    }
    if (!keyed(l, n, "min_serial", UINT64_MAX, &st->min_serial) || next_line(&c, &l, &n) != 0 ||
        !keyed(l, n, "floor", UINT64_MAX, &st->floor) || next_line(&c, &l, &n) != 0 ||
        !keyed(l, n, "fresh_at", UINT64_MAX, &st->fresh_at))
        return -1;
    return c.p == c.end ? 0 : -1;
}

int ug_client_pstate_format_(const ug_client_pstate *st, char *out, size_t cap, size_t *len)
{
    size_t used = 0;
    int n = snprintf(out, cap, HEADER "\n");
    if (n < 0 || (size_t)n >= cap)
        return -1;
    used = (size_t)n;
    if (st->keyring_len) {
        size_t need = sodium_base64_ENCODED_LEN(st->keyring_len, sodium_base64_VARIANT_ORIGINAL);
        if (st->keyring_len > UG2_KEYRING_MAX || used + 8 + need + 1 > cap)
            return -1;
        memcpy(out + used, "keyring ", 8);
        sodium_bin2base64(out + used + 8, need, st->keyring, st->keyring_len, sodium_base64_VARIANT_ORIGINAL);
        used += 8 + need - 1; /* without the NUL */
        out[used++] = '\n';
    }
    for (unsigned i = 0; i < st->nseqs && i < UG_CLIENT_SEQS_MAX; i++) {
        n = snprintf(out + used, cap - used, "seq %s %s %llu\n", st->seqs[i].app, st->seqs[i].chan,
                     (unsigned long long)st->seqs[i].seq);
        if (n < 0 || (size_t)n >= cap - used)
            return -1;
        used += (size_t)n;
    }
    n = snprintf(out + used, cap - used, "min_serial %llu\nfloor %llu\nfresh_at %llu\n",
                 (unsigned long long)st->min_serial, (unsigned long long)st->floor, (unsigned long long)st->fresh_at);
    if (n < 0 || (size_t)n >= cap - used)
        return -1;
    *len = used + (size_t)n;
    return 0;
}
