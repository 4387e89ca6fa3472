/* Where an address is (ugpolicy.h): country and subdivision ISO codes, and
 * the time zone, from a MaxMind DB, memory-mapped, opened anew by each policy load. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <maxminddb.h>

#include "policy/addr.h"
#include "policy/ugpolicy.h"

struct ug_geo {
    MMDB_s db;
};

ug_geo *ug_geo_open(const char *path, char *why, size_t whycap)
{
    /* MMDB_open would block on a FIFO: the regular-file rule first */
    int fd = ug_file_open(path, UINT64_MAX, NULL, why, whycap);
    if (fd < 0)
        return NULL;
    close(fd);
    ug_geo *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(why, whycap, "out of memory");
        return NULL;
    }
    int rc = MMDB_open(path, MMDB_MODE_MMAP, &g->db);
    if (rc != MMDB_SUCCESS) {
        snprintf(why, whycap, "not a MaxMind DB: %s", MMDB_strerror(rc));
        free(g);
        return NULL;
    }
    return g;
}

void ug_geo_close(ug_geo *g)
{
    if (!g)
        return;
    MMDB_close(&g->db);
    free(g);
}

/* A short string (an ISO code, a zone name) at path into out[0..cap). */
static bool iso_code(MMDB_entry_s *e, const char *const *path, char *out, size_t cap)
{
    MMDB_entry_data_s d;
    if (MMDB_aget_value(e, &d, path) != MMDB_SUCCESS || !d.has_data || d.type != MMDB_DATA_TYPE_UTF8_STRING ||
        d.data_size == 0 || d.data_size >= cap)
        return false;
    memcpy(out, d.utf8_string, d.data_size);
    out[d.data_size] = '\0';
    return true;
}

/* The DB's entry for sa's address; false when it has none. */
static bool entry_of(const ug_geo *g, const struct sockaddr *sa, MMDB_entry_s *out)
{
    uint8_t ip[16];
    size_t len = ug_addr_ip(sa, ip);
    if (!g || !len)
        return false;
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    const struct sockaddr *q = (const struct sockaddr *)&s4;
    if (len == 4) {
        memcpy(&s4.sin_addr, ip, 4);
    } else {
        memcpy(&s6.sin6_addr, ip, 16);
        q = (const struct sockaddr *)&s6;
    }
    int err = MMDB_SUCCESS;
    /* a lookup writes nothing into the DB: MMDB_s is const in all but the prototype */
    MMDB_lookup_result_s r = MMDB_lookup_sockaddr((MMDB_s *)&g->db, q, &err);
    if (err != MMDB_SUCCESS || !r.found_entry)
        return false;
    *out = r.entry;
    return true;
}

bool ug_geo_lookup(const ug_geo *g, const struct sockaddr *sa, ug_place *out)
{
    memset(out, 0, sizeof *out);
    MMDB_entry_s e;
    if (!entry_of(g, sa, &e))
        return false;
    static const char *const country[] = {"country", "iso_code", NULL};
    bool known = iso_code(&e, country, out->country, sizeof out->country);
    for (unsigned i = 0; i < UG_GEO_SUBS_MAX; i++) {
        char idx[4];
        snprintf(idx, sizeof idx, "%u", i);
        const char *const sub[] = {"subdivisions", idx, "iso_code", NULL};
        if (!iso_code(&e, sub, out->sub[out->nsub], sizeof out->sub[0]))
            break;
        out->nsub++;
        known = true;
    }
    return known;
}

bool ug_geo_zone(const ug_geo *g, const struct sockaddr *sa, char *out, size_t cap)
{
    MMDB_entry_s e;
    static const char *const zone[] = {"location", "time_zone", NULL};
    if (cap)
        out[0] = '\0';
    return entry_of(g, sa, &e) && iso_code(&e, zone, out, cap);
}
