/* Where an address is (ugpolicy.h): country and subdivision ISO codes from a
 * MaxMind DB, memory-mapped; one open DB shared by the policies that name
 * the same unchanged file. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <maxminddb.h>

#include "policy/addr.h"
#include "policy/ugpolicy.h"

struct ug_geo {
    MMDB_s db;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    unsigned refs;
    ug_geo *next;
};

/* The DBs open now. A reload that names the same file, unchanged, shares
 * its DB: no second mapping, and no need to open it by its path again
 * (libmaxminddb opens nothing else), which a host that dropped
 * privileges or chroot()ed may no longer be able to do. */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static ug_geo *open_dbs;

static bool same_file(const ug_geo *g, const struct stat *st)
{
    return g->dev == st->st_dev && g->ino == st->st_ino && g->size == st->st_size &&
           g->mtime.tv_sec == st->st_mtim.tv_sec && g->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* MMDB_open by path, else through fd's /proc/self/fd link (the path is
 * gone from view: a chroot, a folder the user cannot search). */
static int mmdb_open(const char *path, int fd, MMDB_s *db, char *why, size_t whycap)
{
    int rc = MMDB_open(path, MMDB_MODE_MMAP, db);
    if (rc == MMDB_FILE_OPEN_ERROR) {
        char alias[64];
        snprintf(alias, sizeof alias, "/proc/self/fd/%d", fd);
        rc = MMDB_open(alias, MMDB_MODE_MMAP, db);
        if (rc == MMDB_FILE_OPEN_ERROR) {
            snprintf(why, whycap, "changed since it was opened, and libmaxminddb opens files by path, which this "
                                  "process cannot any more (privileges dropped, or a chroot): restart to load it");
            return -1;
        }
    }
    if (rc != MMDB_SUCCESS) {
        snprintf(why, whycap, "not a MaxMind DB: %s", MMDB_strerror(rc));
        return -1;
    }
    return 0;
}

ug_geo *ug_geo_open(const char *path, char *why, size_t whycap)
{
    /* MMDB_open would block on a FIFO: the regular-file rule first */
    int fd = ug_file_open(path, UINT64_MAX, NULL, why, whycap);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(why, whycap, "%s", strerror(errno));
        close(fd);
        return NULL;
    }
    pthread_mutex_lock(&open_mu);
    ug_geo *g = open_dbs;
    while (g && !same_file(g, &st))
        g = g->next;
    if (g) {
        g->refs++;
    } else if ((g = calloc(1, sizeof *g)) == NULL) {
        snprintf(why, whycap, "out of memory");
    } else if (mmdb_open(path, fd, &g->db, why, whycap) != 0) {
        free(g);
        g = NULL;
    } else {
        g->dev = st.st_dev, g->ino = st.st_ino, g->size = st.st_size, g->mtime = st.st_mtim, g->refs = 1;
        g->next = open_dbs;
        open_dbs = g;
    }
    pthread_mutex_unlock(&open_mu);
    close(fd);
    return g;
}

void ug_geo_close(ug_geo *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&open_mu);
    bool last = --g->refs == 0;
    if (last)
        for (ug_geo **p = &open_dbs; *p; p = &(*p)->next)
            if (*p == g) {
                *p = g->next;
                break;
            }
    pthread_mutex_unlock(&open_mu);
    if (last) {
        MMDB_close(&g->db);
        free(g);
    }
}

/* A short ASCII ISO code at path into out[0..cap). */
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

bool ug_geo_lookup(const ug_geo *g, const struct sockaddr *sa, ug_place *out)
{
    memset(out, 0, sizeof *out);
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
    static const char *const country[] = {"country", "iso_code", NULL};
    bool known = iso_code(&r.entry, country, out->country, sizeof out->country);
    for (unsigned i = 0; i < UG_GEO_SUBS_MAX; i++) {
        char idx[4];
        snprintf(idx, sizeof idx, "%u", i);
        const char *const sub[] = {"subdivisions", idx, "iso_code", NULL};
        if (!iso_code(&r.entry, sub, out->sub[out->nsub], sizeof out->sub[0]))
            break;
        out->nsub++;
        known = true;
    }
    return known;
}
