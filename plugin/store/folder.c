/* The state folder: create it, lock it, mark it, check it, open LMDB in it, and close it all. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_impl.h"

#define MAP_SIZE ((size_t)8 << 30) /* sparse: only used pages take disk; ~200M grants */
#define MAX_DBS 1100u               /* ours, plus every layout-1 stage db to upgrade */
#define LOCKFILE_RESERVE (256u << 10) /* lock.mdb blocks reserved before LMDB maps it */

const char *ug_store_dir(const ug_store *s)
{
    return s->dir;
}

/* ---- the folder: mkdir, lock, marker ----------------------------------- */

/* Like mkdir -p; directories it creates get mode 0700. */
static int mkdir_p(const char *dir, char *err, size_t errcap)
{
    char buf[UG_STORE_PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof buf)
        return ug_store_fail(err, errcap, "state folder '%s': empty or too long", dir);
    memcpy(buf, dir, len + 1);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return ug_store_fail(err, errcap, "state folder %s: cannot create %s: %s", dir, buf, strerror(errno));
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ug_store_fail(err, errcap, "state folder %s: not a directory", dir);
    return 0;
}

static void join(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* Holds the folder for this instance until close: flock on upgate.lock,
 * which then names our pid for whoever is refused. flock locks belong to
 * the open file, so a second instance in the same process is refused too. */
static int lock_folder(ug_store *s, char *err, size_t errcap)
{
    char path[UG_STORE_PATH_MAX + 16];
    join(path, sizeof path, s->dir, "upgate.lock");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return ug_store_fail(err, errcap, "state folder %s: cannot open %s: %s", s->dir, path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            return ug_store_fail(err, errcap,
                                 "state folder %s is in use by pid %s (lock file %s): one tracker per state folder",
                                 s->dir, pid[0] ? pid : "?", path);
        return ug_store_fail(err, errcap, "state folder %s: cannot lock %s: %s", s->dir, path, strerror(e));
    }
    char text[32];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len) {
        /* the lock holds without the pid; only the message loses it */
    }
    s->lock_fd = fd;
    return 0;
}

static bool file_exists(const char *path, off_t *size)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return false;
    *size = st.st_size;
    return true;
}

/* A store that existed must not come back empty: that would offer every
 * quota again. store.id says it existed; data.mdb must then hold it. */
static int check_not_vanished(ug_store *s, char *err, size_t errcap)
{
    char id[UG_STORE_PATH_MAX + 16], data[UG_STORE_PATH_MAX + 16];
    off_t isz = 0, dsz = 0;
    join(id, sizeof id, s->dir, "store.id");
    join(data, sizeof data, s->dir, "data.mdb");
    if (!file_exists(id, &isz))
        return 0;
    bool have = file_exists(data, &dsz);
    if (have && dsz > 0)
        return 0;
    return ug_store_fail(err, errcap,
                         "state folder %s: data.mdb is %s, but store.id says grants were stored here; refusing to "
                         "start without them (restore data.mdb, or remove %s to start from nothing)",
                         s->dir, have ? "empty" : "missing", id);
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int write_marker(ug_store *s, uint64_t now, char *err, size_t errcap)
{
    char path[UG_STORE_PATH_MAX + 16], tmp[UG_STORE_PATH_MAX + 32];
    off_t sz;
    join(path, sizeof path, s->dir, "store.id");
    if (file_exists(path, &sz))
        return 0;
    join(tmp, sizeof tmp, s->dir, "store.id.tmp");
    char text[128];
    int len = snprintf(text, sizeof text, "upgate state folder\nlayout %u\ncreated %llu\n", UG_STORE_LAYOUT,
                       (unsigned long long)now);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ug_write_all(fd, text, (size_t)len) != 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        return ug_store_fail(err, errcap, "state folder %s: cannot write %s: %s", s->dir, tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) != 0 || sync_dir(s->dir) != 0)
        return ug_store_fail(err, errcap, "state folder %s: cannot write %s: %s", s->dir, path, strerror(errno));
    return 0;
}

/* LMDB maps lock.mdb after growing it with ftruncate, which on a full
 * tmpfs succeeds and then kills the process with SIGBUS at the first
 * touch. Reserving real blocks first turns that into ENOSPC here. */
static int reserve_lockfile(ug_store *s, char *err, size_t errcap)
{
    char path[UG_STORE_PATH_MAX + 16];
    join(path, sizeof path, s->dir, "lock.mdb");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return ug_store_fail(err, errcap, "state folder %s: cannot open %s: %s", s->dir, path, strerror(errno));
    int rc = posix_fallocate(fd, 0, LOCKFILE_RESERVE);
    close(fd);
    if (rc != 0)
        return ug_store_fail(err, errcap, "state folder %s: cannot reserve %u KiB for %s: %s", s->dir,
                             LOCKFILE_RESERVE >> 10, path, strerror(rc));
    return 0;
}

/* A data file shorter than LMDB's own idea of its last page would raise
 * SIGBUS at the first read past its end: refuse it before any read. */
static int check_size(ug_store *s, char *err, size_t errcap)
{
    MDB_envinfo info;
    MDB_stat st;
    int fd;
    struct stat sb;
    if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0 || mdb_env_get_fd(s->env, &fd) != 0 ||
        fstat(fd, &sb) != 0)
        return ug_store_fail(err, errcap, "state folder %s: cannot read data.mdb's size", s->dir);
    uint64_t need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    if ((uint64_t)sb.st_size < need)
        return ug_store_fail(err, errcap,
                             "state folder %s: data.mdb is damaged: %lld bytes, but its last page ends at byte %llu "
                             "(truncated?); restore it from a backup",
                             s->dir, (long long)sb.st_size, (unsigned long long)need);
    return 0;
}

static int open_env(ug_store *s, char *err, size_t errcap)
{
    const char *what = "mdb_env_create";
    int rc = mdb_env_create(&s->env);
    if (rc == 0 && (what = "mdb_env_set_mapsize", rc = mdb_env_set_mapsize(s->env, MAP_SIZE)) == 0 &&
        (what = "mdb_env_set_maxdbs", rc = mdb_env_set_maxdbs(s->env, MAX_DBS)) == 0)
        /* NOTLS: txns are not tied to threads (loads run on any thread) */
        what = "mdb_env_open", rc = mdb_env_open(s->env, s->dir, MDB_NOTLS, 0600);
    if (rc != 0) {
        if (s->env)
            mdb_env_close(s->env);
        s->env = NULL;
        return ug_store_fail(err, errcap, "state folder %s: %s: %s", s->dir, what, mdb_strerror(rc));
    }
    return 0;
}

static void store_free(ug_store *s)
{
    for (size_t i = 0; i < s->nscopes; i++)
        ug_scope_free(s->scopes[i]);
    free(s->scopes);
    for (size_t i = 0; i < s->nstage_names; i++)
        free(s->stage_names[i]);
    free(s->stage_names);
    ug_wal_close(s); /* the log drains into data.mdb first */
    ug_image_close(s);
    for (unsigned w = 0; s->queues && w < s->nworkers; w++)
        free(s->queues[w].v);
    free(s->queues);
    ug_group_destroy(s);
    if (s->env)
        mdb_env_close(s->env);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&s->reg_mu);
    free(s);
}

ug_store *ug_store_open(const ug_store_opts *o, char *err, size_t errcap)
{
    if (!o || !o->dir || strlen(o->dir) >= UG_STORE_PATH_MAX) {
        ug_store_fail(err, errcap, "state folder: none given, or longer than %u bytes", UG_STORE_PATH_MAX - 1);
        return NULL;
    }
    if (o->nworkers < 1 || o->nworkers > UG_WORKERS_MAX) {
        ug_store_fail(err, errcap, "state folder %s: %u workers (want 1..%u)", o->dir, o->nworkers, UG_WORKERS_MAX);
        return NULL;
    }
    if (mkdir_p(o->dir, err, errcap) != 0)
        return NULL;
    ug_store *s = calloc(1, sizeof *s);
    if (!s) {
        ug_store_fail(err, errcap, "state folder %s: out of memory", o->dir);
        return NULL;
    }
    snprintf(s->dir, sizeof s->dir, "%s", o->dir);
    s->lock_fd = -1;
    s->img.fd = -1;
    s->nworkers = o->nworkers;
    s->log = o->log;
    s->log_ctx = o->log_ctx;
    (void)pthread_mutex_init(&s->reg_mu, NULL);
    ug_group_init(s);
    ug_wal_init(s);
    s->queues = aligned_alloc(UG_CACHELINE, o->nworkers * sizeof(wqueue));
    if (!s->queues) {
        ug_store_fail(err, errcap, "state folder %s: out of memory", o->dir);
        goto fail;
    }
    memset(s->queues, 0, o->nworkers * sizeof(wqueue));
    if (lock_folder(s, err, errcap) != 0 || check_not_vanished(s, err, errcap) != 0 ||
        reserve_lockfile(s, err, errcap) != 0 || open_env(s, err, errcap) != 0 || check_size(s, err, errcap) != 0 ||
        ug_store_open_dbs(s, o, err, errcap) != 0 || ug_wal_open(s, err, errcap) != 0 ||
        ug_store_load_names(s, err, errcap) != 0 || write_marker(s, o->now, err, errcap) != 0)
        goto fail;
    ug_image_open(s);
    return s;
fail:
    store_free(s);
    return NULL;
}

int ug_store_close(ug_store *s, char *err, size_t errcap)
{
    if (!s)
        return 0;
    int rc = 0;
    size_t lost = 0;
    for (unsigned w = 0; w < s->nworkers; w++)
        if (ug_store_commit(s, w) != 0) {
            rc = -1;
            lost += s->queues[w].n;
        }
    if (rc != 0)
        ug_store_fail(err, errcap,
                      "state folder %s: %zu grant records could not be stored (see the log for the cause); no HINT "
                      "was sent for a grant among them",
                      s->dir, lost);
    else if (s->env && s->wal.tail && ug_wal_drain(s) == 0)
        ug_image_write(s); /* data.mdb holds every grant now: the next start reads them packed */
    store_free(s);
    return rc;
}
