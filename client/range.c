/* libupgate: reads an HTTP Content-Range value, which says where a resumed (206) response starts. */
#include <strings.h>

#include "download.h"

int ug_client_content_range_(const char *v, size_t n, uint64_t *start, uint64_t *total)
{
    uint64_t first = 0, whole = 0;
    size_t i = 0, digits = 0;
    while (i < n && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (n - i < 6 || strncasecmp(v + i, "bytes ", 6) != 0)
        return -1;
    for (i += 6; i < n && v[i] >= '0' && v[i] <= '9' && digits < 19; i++, digits++)
        first = first * 10 + (uint64_t)(v[i] - '0');
    if (digits == 0 || i >= n || v[i] != '-')
        return -1;
    while (i < n && v[i] != '/')
        i++;
    if (i < n) { /* "/T", or a star for an unknown size */
        for (i++, digits = 0; i < n && v[i] >= '0' && v[i] <= '9' && digits < 19; i++, digits++)
            whole = whole * 10 + (uint64_t)(v[i] - '0');
        if (digits == 0 && (i >= n || v[i] != '*'))
            return -1;
    }
    *start = first;
    *total = whole;
    return 0;
}
