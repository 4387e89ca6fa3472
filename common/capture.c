/* The HELLO capture file: record encoder and strict, bounded reader (format in capture.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "upgate_plugin.h"

uint32_t ug_crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
    static const uint32_t nib[16] = {
        0x00000000, 0x105ec76f, 0x20bd8ede, 0x30e349b1, 0x417b1dbc, 0x5125dad3, 0x61c69362, 0x7198540d,
        0x82f63b78, 0x92a8fc17, 0xa24bb5a6, 0xb21572c9, 0xc38d26c4, 0xd3d3e1ab, 0xe330a81a, 0xf36e6f75,
    };
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ nib[crc & 15];
        crc = (crc >> 4) ^ nib[crc & 15];
    }
    return ~crc;
}

void ug_capture_header(uint8_t out[UG_CAP_HEADER_LEN])
{
    memcpy(out, UG_CAP_MAGIC, 7);
    out[7] = UG_CAP_VERSION;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* A length-prefixed string field of at most max bytes, no NUL. */
static size_t put_str(uint8_t *p, const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return 0;
    p[0] = (uint8_t)n;
    memcpy(p + 1, s, n);
    return 1 + n;
}

size_t ug_capture_encode(uint8_t *out, size_t cap, const ug_capture_rec *rec)
{
    uint8_t pay[UG_CAP_PAYLOAD_MAX];
    size_t n = 0, alen = rec->family == 4 ? 4 : rec->family == 6 ? 16 : 0, k;
    if (!alen)
        return 0;
    put_le(pay, rec->time_ms, 8), put_le(pay + 8, rec->uid, 8);
    pay[16] = rec->verdict, pay[17] = rec->reply, pay[18] = rec->family;
    n = 19;
    memcpy(pay + n, rec->addr, alen), n += alen;
    put_le(pay + n, rec->port, 2), n += 2;
    if (!rec->ver[0] || !(k = put_str(pay + n, rec->ver, UG_VER_MAX)))
        return 0;
    n += k;
    if (!(k = put_str(pay + n, rec->plat, UG_PLAT_MAX)))
        return 0;
    n += k;
    if (!(k = put_str(pay + n, rec->chan, UG_CHAN_MAX)))
        return 0;
    n += k;
    if (cap < 2 + n + 4)
        return 0;
    put_le(out, n, 2);
    memcpy(out + 2, pay, n);
    put_le(out + 2 + n, ug_crc32c(0, out, 2 + n), 4);
    return 2 + n + 4;
}

int ug_capture_set_src(ug_capture_rec *rec, const struct sockaddr *sa, socklen_t len)
{
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        rec->family = 4;
        memset(rec->addr, 0, sizeof rec->addr);
        memcpy(rec->addr, &s4->sin_addr, 4);
        rec->port = ntohs(s4->sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        rec->family = 6;
        memcpy(rec->addr, &s6->sin6_addr, 16);
        rec->port = ntohs(s6->sin6_port);
        return 0;
    }
    return -1;
}

void ug_capture_src(const ug_capture_rec *rec, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    if (rec->family == 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, rec->addr, 4);
        s4->sin_port = htons(rec->port);
        *len = sizeof *s4;
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, rec->addr, 16);
        s6->sin6_port = htons(rec->port);
        *len = sizeof *s6;
    }
}

/* ---- reader --------------------------------------------------------- */

struct ug_capture_reader {
    FILE *f;
    char name[256];
    uint64_t off; /* end of the last whole record */
    bool failed;
};

static int fail(ug_capture_reader *r, char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(ug_capture_reader *r, char *err, size_t cap, const char *fmt, ...)
{
    r->failed = true;
    int n = snprintf(err, cap, "%s: at byte %llu: ", r->name, (unsigned long long)r->off);
    if (n >= 0 && (size_t)n < cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, cap - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

ug_capture_reader *ug_capture_open_stream(FILE *f, const char *name, char *err, size_t errcap)
{
    ug_capture_reader *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errcap, "%s: out of memory", name);
        fclose(f);
        return NULL;
    }
    r->f = f;
    snprintf(r->name, sizeof r->name, "%s", name);
    uint8_t hdr[UG_CAP_HEADER_LEN];
    size_t got = fread(hdr, 1, sizeof hdr, f);
    if (got < sizeof hdr || memcmp(hdr, UG_CAP_MAGIC, 7) != 0) {
        if (ferror(f))
            fail(r, err, errcap, "read error: %s", strerror(errno));
        else
            fail(r, err, errcap, "not an upgate capture file (no \"UGCAP1\" header)");
        ug_capture_close(r);
        return NULL;
    }
    if (hdr[7] != UG_CAP_VERSION) {
        fail(r, err, errcap, "capture format version %u, this reader knows %u", hdr[7], UG_CAP_VERSION);
        ug_capture_close(r);
        return NULL;
    }
    r->off = UG_CAP_HEADER_LEN;
    return r;
}

ug_capture_reader *ug_capture_open(const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "rbe");
    if (!f) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return NULL;
    }
    return ug_capture_open_stream(f, path, err, errcap);
}

/* A length-prefixed string of at most max bytes, no NUL, into out. */
static bool get_str(const uint8_t *p, size_t len, size_t *at, size_t max, char *out)
{
    if (*at >= len)
        return false;
    size_t n = p[*at];
    if (n > max || n > len - *at - 1 || memchr(p + *at + 1, 0, n))
        return false;
    memcpy(out, p + *at + 1, n);
    out[n] = 0;
    *at += 1 + n;
    return true;
}

/* The payload's fields, exactly: every length within the payload, nothing left over. */
static const char *decode_payload(const uint8_t *p, size_t len, ug_capture_rec *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->time_ms = get_le(p, 8);
    rec->uid = get_le(p + 8, 8);
    rec->verdict = p[16], rec->reply = p[17], rec->family = p[18];
    if (rec->verdict > UG_VERDICT_DROP)
        return "unknown verdict";
    if (rec->reply != 0 && (rec->reply < UG_TYPE_HINT || rec->reply > UG_TYPE_COOKIE))
        return "unknown reply type";
    size_t alen = rec->family == 4 ? 4 : rec->family == 6 ? 16 : 0, at = 19;
    if (!alen)
        return "address family is neither 4 nor 6";
    if (len < at + alen + 2)
        return "payload too short for its address";
    memcpy(rec->addr, p + at, alen), at += alen;
    rec->port = (uint16_t)get_le(p + at, 2), at += 2;
    ug_version v;
    if (!get_str(p, len, &at, UG_VER_MAX, rec->ver) || ug_version_parse(&v, rec->ver, strlen(rec->ver)) != 0)
        return "bad version field";
    if (!get_str(p, len, &at, UG_PLAT_MAX, rec->plat))
        return "bad platform field";
    if (!get_str(p, len, &at, UG_CHAN_MAX, rec->chan))
        return "bad channel field";
    if (at != len)
        return "bytes left over in the payload";
    return NULL;
}

int ug_capture_next(ug_capture_reader *r, ug_capture_rec *rec, char *err, size_t errcap)
{
    if (r->failed)
        return fail(r, err, errcap, "reading already failed");
    uint8_t buf[UG_CAP_RECORD_MAX];
    size_t got = fread(buf, 1, 2, r->f);
    if (got == 0 && feof(r->f))
        return 0;
    if (got < 2)
        return ferror(r->f) ? fail(r, err, errcap, "read error: %s", strerror(errno))
                            : fail(r, err, errcap, "record cut short (a torn tail: 1 byte)");
    size_t len = (size_t)get_le(buf, 2);
    if (len < UG_CAP_PAYLOAD_MIN || len > UG_CAP_PAYLOAD_MAX)
        return fail(r, err, errcap, "record length %zu outside %u..%u", len, UG_CAP_PAYLOAD_MIN,
                    UG_CAP_PAYLOAD_MAX);
    got = fread(buf + 2, 1, len + 4, r->f);
    if (got < len + 4)
        return ferror(r->f) ? fail(r, err, errcap, "read error: %s", strerror(errno))
                            : fail(r, err, errcap, "record cut short (a torn tail: %zu of %zu bytes)", got + 2,
                                   len + 6);
    if (ug_crc32c(0, buf, 2 + len) != (uint32_t)get_le(buf + 2 + len, 4))
        return fail(r, err, errcap, "record checksum mismatch (a torn or damaged record)");
    const char *why = decode_payload(buf + 2, len, rec);
    if (why)
        return fail(r, err, errcap, "%s", why);
    r->off += 2 + len + 4;
    return 1;
}

uint64_t ug_capture_offset(const ug_capture_reader *r)
{
    return r->off;
}

void ug_capture_close(ug_capture_reader *r)
{
    if (!r)
        return;
    if (r->f)
        fclose(r->f);
    free(r);
}
