/* The explain argument "uid=N,ver=V,src=ADDR[,plat=P][,chan=C]" of upgate-node --check and upgate-ctl explain. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "explain_arg.h"

/* Checks one value; 0, or -1 with err set. */
static int check_value(unsigned k, const char *val, size_t vlen, uint64_t *uid, char *err, size_t errcap)
{
    ug_version ver;
    uint8_t addr[16];
    if (k == 0 && ug_parse_u64(val, 0, UG_UID_MAX, uid) != 0)
        return snprintf(err, errcap, "uid is not a number: %s", val), -1;
    if (k == 1 && ug_version_parse(&ver, val, vlen) != 0)
        return snprintf(err, errcap, "ver is not a version: %s", val), -1;
    if (k == 2 && inet_pton(AF_INET, val, addr) != 1 && inet_pton(AF_INET6, val, addr) != 1)
        return snprintf(err, errcap, "src is not an IPv4 or IPv6 address: %s", val), -1;
    return 0;
}

int ug_explain_arg(const char *s, json_t **out, char *err, size_t errcap)
{
    static const char *const keys[] = {"uid", "ver", "src", "plat", "chan"};
    bool seen[5] = {false};
    json_t *o = json_object();
    if (!o)
        return snprintf(err, errcap, "out of memory"), -1;
    for (const char *p = s;;) {
        const char *end = p + strcspn(p, ","), *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq || eq == p || eq + 1 == end)
            return json_decref(o), snprintf(err, errcap, "not KEY=VALUE: %.*s", (int)(end - p), p), -1;
        size_t klen = (size_t)(eq - p), vlen = (size_t)(end - eq - 1);
        unsigned k = 0;
        while (k < 5 && (strlen(keys[k]) != klen || memcmp(keys[k], p, klen) != 0))
            k++;
        if (k == 5)
            return json_decref(o), snprintf(err, errcap, "unknown key %.*s (uid, ver, src, plat, chan)", (int)klen, p),
                   -1;
        if (seen[k])
            return json_decref(o), snprintf(err, errcap, "%s given twice", keys[k]), -1;
        seen[k] = true;
        char val[128];
        if (vlen >= sizeof val)
            return json_decref(o), snprintf(err, errcap, "%s too long", keys[k]), -1;
        memcpy(val, eq + 1, vlen), val[vlen] = 0;
        uint64_t uid = 0;
        if (check_value(k, val, vlen, &uid, err, errcap) != 0)
            return json_decref(o), -1;
        json_t *v = k == 0 ? json_integer((json_int_t)uid) : json_string(val);
        if (json_object_set_new(o, keys[k], v) != 0) /* a NUL or invalid UTF-8 */
            return json_decref(o), snprintf(err, errcap, "%s is not UTF-8 text", keys[k]), -1;
        if (!*end)
            break;
        p = end + 1;
    }
    if (!seen[0] || !seen[1] || !seen[2])
        return json_decref(o), snprintf(err, errcap, "needs uid, ver and src"), -1;
    if (out)
        *out = o;
    else
        json_decref(o);
    return 0;
}
