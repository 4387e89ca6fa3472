/* Version strings: strict parsing, component-wise ordering, canonical text. */
#include <stdio.h>

#include "ug_proto.h"

int ug_version_parse(ug_version *v, const char *s, size_t len)
{
    if (len == 0 || len > UG_VER_MAX)
        return -1;
    v->nparts = 0;
    size_t i = 0;
    for (;;) {
        if (v->nparts == 4 || i == len || s[i] < '0' || s[i] > '9')
            return -1;
        size_t start = i;
        uint64_t part = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            part = part * 10 + (uint64_t)(s[i] - '0');
            if (part > UINT32_MAX)
                return -1;
            i++;
        }
        if (s[start] == '0' && i - start > 1)
            return -1; /* leading zero */
        v->part[v->nparts++] = (uint32_t)part;
        if (i == len)
            break;
        if (s[i] != '.')
            return -1;
        i++;
    }
    for (unsigned k = v->nparts; k < 4; k++)
        v->part[k] = 0;
    return 0;
}

int ug_version_cmp(const ug_version *a, const ug_version *b)
{
    /* unused parts are kept at 0, so all four compare directly */
    for (unsigned k = 0; k < 4; k++)
        if (a->part[k] != b->part[k])
            return a->part[k] < b->part[k] ? -1 : 1;
    return 0;
}

int ug_version_format(const ug_version *v, char *out, size_t cap)
{
    size_t used = 0;
    for (unsigned k = 0; k < v->nparts; k++) {
        int n = snprintf(out + used, cap - used, k ? ".%u" : "%u", (unsigned)v->part[k]);
        if (n < 0 || (size_t)n >= cap - used)
            return -1;
        used += (size_t)n;
    }
    return v->nparts ? 0 : -1;
}
