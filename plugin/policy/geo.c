/* Where an address is (ugpolicy.h): country and subdivision ISO codes from a
 * MaxMind DB (and the time zone of `tz: peer` windows), copied whole into sealed private memory when first opened;
 * one copy shared by the policies that name the same unchanged file.
 *
 * libmaxminddb maps the file it opens (MMDB_MODE_MMAP is its only mode, and
 * it cannot open from memory). Mapping the operator's file meant a
 * truncation or an in-place write (cp, curl -o) under the running node gave
 * SIGBUS or lookups on garbage (issue 21 §5). So each load copies the file
 * into a memfd, seals it against every change, and lets libmaxminddb open
 * that through /proc/self/fd: the node's copy changes only on reload. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

#define GEO_MAX (1ull << 30) /* the largest DB a load copies: GeoIP2 City is about 70 MB */

/* Copies the n bytes of fd to m: 0, or -1 with why. A file that changes
 * size while it is read is refused: the next reload copies it whole. */
static int copy_all(int fd, int m, uint64_t n, char *why, size_t whycap)
{
    static _Thread_local char chunk[1 << 16];
    uint64_t at = 0;
    for (;;) {
        ssize_t k = read(fd, chunk, sizeof chunk);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return snprintf(why, whycap, "cannot read it: %s", strerror(errno)), -1;
        if (k == 0 || at + (uint64_t)k > n)
            break;
        if (ug_write_all(m, chunk, (size_t)k) != 0)
            return snprintf(why, whycap, "cannot copy it: %s", strerror(errno)), -1;
        at += (uint64_t)k;
    }
    if (at != n || lseek(fd, 0, SEEK_CUR) != (off_t)n)
        return snprintf(why, whycap, "changed while it was read: update it by a rename, never in place"), -1;
    return 0;
}

/* A memfd holding fd's n bytes, sealed against any change; -1 with why. */
static int geo_copy(int fd, uint64_t n, char *why, size_t whycap)
{
    int m = memfd_create("upgate-geoip", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (m < 0)
        return snprintf(why, whycap, "memfd_create: %s", strerror(errno)), -1;
    if (copy_all(fd, m, n, why, whycap) != 0) {
        close(m);
        return -1;
    }
    if (fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
        snprintf(why, whycap, "cannot seal its copy: %s", strerror(errno));
        close(m);
        return -1;
    }
    return m;
}

/* libmaxminddb opens a sealed copy of fd's n bytes (through /proc/self/fd,
 * the only way it takes a file): 0, or -1 with why. */
static int mmdb_open_copy(int fd, uint64_t n, MMDB_s *db, char *why, size_t whycap)
{
    int m = geo_copy(fd, n, why, whycap);
    if (m < 0)
        return -1;
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", m);
    int rc = MMDB_open(self, MMDB_MODE_MMAP, db);
    close(m); /* the mapping keeps the sealed copy */
    if (rc == MMDB_SUCCESS)
        return 0;
    if (rc == MMDB_FILE_OPEN_ERROR)
        snprintf(why, whycap, "cannot open its copy through /proc/self/fd (is /proc mounted here?)");
    else
        snprintf(why, whycap, "not a MaxMind DB: %s", MMDB_strerror(rc));
    return -1;
}

ug_geo *ug_geo_open(const char *path, char *why, size_t whycap)
{
    /* MMDB_open would block on a FIFO: the regular-file rule first */
    uint64_t n = 0;
    int fd = ug_file_open(path, GEO_MAX, &n, why, whycap);
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
    } else if (mmdb_open_copy(fd, n, &g->db, why, whycap) != 0) {
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
