/* upgate-node --capture: workers queue HELLO records, one thread writes and rotates the file. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "capwrite.h"
#include "common.h"
#include "log.h"

#define SLOT_BYTES (256u << 10) /* per worker: about 3,000 records between two writes */
#define WRITE_EVERY_MS 100

/* A worker's queue: the worker appends to `fill` under mu (a memcpy); the
 * writer swaps it with its spare under mu and writes outside it. */
typedef struct {
    pthread_mutex_t mu;
    uint8_t *fill;
    size_t len;
    uint8_t *spare;
} slot;

static struct {
    bool on;
    char path[4096], old[4100];
    uint64_t max, size;
    int fd;
    unsigned nslots;
    slot *slots;
    pthread_t thread;
    pthread_mutex_t mu; /* guards stop; with cv, wakes the writer */
    pthread_cond_t cv;
    bool stop;
    _Atomic bool broken; /* a write or rotation failed: records are dropped from then on */
} C = {.fd = -1, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

bool ug_capw_on(void)
{
    return C.on;
}

/* A new, empty file with its header: made here (O_EXCL), never a link
 * someone left at the path (issue 21 §5). An empty file at the path is
 * replaced. */
static int open_fresh(char *err, size_t errcap)
{
    struct stat st;
    if (lstat(C.path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
        (void)unlink(C.path);
    C.fd = open(C.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_APPEND | O_CLOEXEC, 0600);
    uint8_t hdr[UG_CAP_HEADER_LEN];
    ug_capture_header(hdr);
    if (C.fd < 0 || ug_write_all(C.fd, hdr, sizeof hdr) != 0) {
        snprintf(err, errcap, "%s: %s", C.path, strerror(errno));
        return -1;
    }
    C.size = sizeof hdr;
    return 0;
}

/* FILE -> FILE.1 (one old file kept), then a fresh FILE. */
static int rotate(char *err, size_t errcap)
{
    if (C.fd >= 0)
        close(C.fd);
    C.fd = -1;
    if (rename(C.path, C.old) != 0) {
        snprintf(err, errcap, "%s: cannot rotate to %s: %s", C.path, C.old, strerror(errno));
        return -1;
    }
    return open_fresh(err, errcap);
}

/* Continues an existing capture file: every record is read back; a torn
 * tail (less than one record after the last whole one) is cut off, other
 * damage refuses the start, so no good record is ever lost. */
static int open_existing(struct stat *st, char *err, size_t errcap)
{
    char why[512];
    C.fd = open(C.path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (C.fd < 0 || fstat(C.fd, st) != 0 || !S_ISREG(st->st_mode)) {
        snprintf(err, errcap, "%s: %s", C.path, C.fd < 0 ? strerror(errno) : "not a regular file");
        return -1;
    }
    ug_capture_reader *r = ug_capture_open(C.path, why, sizeof why);
    if (!r) {
        snprintf(err, errcap, "%s is not an upgate capture file, refusing to append to it (%s)", C.path, why);
        return -1;
    }
    ug_capture_rec rec;
    int rc;
    while ((rc = ug_capture_next(r, &rec, why, sizeof why)) == 1)
        ;
    uint64_t good = ug_capture_offset(r);
    ug_capture_close(r);
    if (rc < 0) {
        if ((uint64_t)st->st_size - good >= UG_CAP_RECORD_MAX) {
            snprintf(err, errcap, "%s is damaged before its end (%s); move it away", C.path, why);
            return -1;
        }
        if (ftruncate(C.fd, (off_t)good) != 0) {
            snprintf(err, errcap, "%s: cannot cut the torn tail: %s", C.path, strerror(errno));
            return -1;
        }
        ug_log(UG_LOG_WARN, "%s: cut a torn last record (%s)", C.path, why);
    }
    C.size = good;
    return C.size >= C.max ? rotate(err, errcap) : 0;
}

/* Writes n bytes of whole records, rotating before a record that would
 * take the file past the limit. */
static void write_records(const uint8_t *p, size_t n)
{
    size_t start = 0, at = 0;
    char err[512];
    while (at < n && !C.broken) {
        size_t rec = 2 + (size_t)(p[at] | p[at + 1] << 8) + 4;
        if (C.size + (at - start) + rec > C.max && C.size + (at - start) > UG_CAP_HEADER_LEN) {
            if (at > start && ug_write_all(C.fd, p + start, at - start) != 0)
                goto broken;
            C.size += at - start, start = at;
            if (rotate(err, sizeof err) != 0) {
                ug_log(UG_LOG_ERROR, "capture stops: %s", err);
                C.broken = true;
                return;
            }
        }
        at += rec;
    }
    if (at > start && ug_write_all(C.fd, p + start, at - start) != 0)
        goto broken;
    C.size += at - start;
    return;
broken:
    ug_log(UG_LOG_ERROR, "capture stops: %s: %s", C.path, strerror(errno));
    C.broken = true;
}

static void drain(void)
{
    for (unsigned i = 0; i < C.nslots; i++) {
        slot *s = &C.slots[i];
        pthread_mutex_lock(&s->mu);
        uint8_t *full = s->fill;
        size_t n = s->len;
        s->fill = s->spare, s->len = 0;
        pthread_mutex_unlock(&s->mu);
        s->spare = full;
        if (n && !C.broken)
            write_records(full, n);
    }
}

static void *writer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&C.mu);
    while (!C.stop) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += WRITE_EVERY_MS * 1000000L;
        if (t.tv_nsec >= 1000000000L)
            t.tv_sec++, t.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&C.cv, &C.mu, &t);
        pthread_mutex_unlock(&C.mu);
        drain();
        pthread_mutex_lock(&C.mu);
    }
    pthread_mutex_unlock(&C.mu);
    drain();
    return NULL;
}

int ug_capw_start(const char *path, uint64_t max_bytes, unsigned nworkers, char *err, size_t errcap)
{
    if (strlen(path) >= sizeof C.path) {
        snprintf(err, errcap, "--capture: path too long");
        return -1;
    }
    snprintf(C.path, sizeof C.path, "%s", path);
    snprintf(C.old, sizeof C.old, "%s.1", path);
    C.max = max_bytes;
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) { /* O_NOFOLLOW's ELOOP, said plainly */
        snprintf(err, errcap, "--capture %s: a symbolic link, refused: name the file itself", path);
        return -1;
    }
    int rc = lstat(path, &st) == 0 && st.st_size > 0 ? open_existing(&st, err, errcap) : open_fresh(err, errcap);
    if (rc != 0)
        return -1;
    C.slots = calloc(nworkers, sizeof *C.slots);
    if (!C.slots) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    C.nslots = nworkers;
    for (unsigned i = 0; i < nworkers; i++) {
        pthread_mutex_init(&C.slots[i].mu, NULL);
        C.slots[i].fill = malloc(SLOT_BYTES);
        C.slots[i].spare = malloc(SLOT_BYTES);
        if (!C.slots[i].fill || !C.slots[i].spare) {
            snprintf(err, errcap, "out of memory");
            return -1;
        }
    }
    if (pthread_create(&C.thread, NULL, writer_main, NULL) != 0) {
        snprintf(err, errcap, "cannot start the capture writer");
        return -1;
    }
    C.on = true;
    return 0;
}

int ug_capw_hello(unsigned w, uint64_t time_ms, const struct sockaddr *src, socklen_t srclen, const uint8_t *in,
                  size_t len, ug_verdict v, const uint8_t *out, size_t out_len)
{
    if (v == UG_VERDICT_PASS || len < UG_HELLO_MIN)
        return 0;
    ug_hello h;
    ug_dgram d;
    ug_err e;
    if (ug_hello_parse(&h, &d, in, len, &e) != 0)
        return 0;
    ug_capture_rec rec = {.time_ms = time_ms, .uid = h.uid, .verdict = (uint8_t)v};
    if (ug_capture_set_src(&rec, src, srclen) != 0 || ug_version_format(&h.ver, rec.ver, sizeof rec.ver) != 0)
        return 0;
    memcpy(rec.plat, h.plat, sizeof rec.plat);
    memcpy(rec.chan, h.chan, sizeof rec.chan);
    ug_dgram rd;
    if (v == UG_VERDICT_REPLY && out_len && ug_dgram_decode(&rd, out, out_len, &e) == 0)
        rec.reply = (uint8_t)rd.type;
    uint8_t buf[UG_CAP_RECORD_MAX];
    size_t n = ug_capture_encode(buf, sizeof buf, &rec);
    if (!n)
        return 0;
    slot *s = &C.slots[w];
    pthread_mutex_lock(&s->mu);
    bool fits = !C.broken && s->len + n <= SLOT_BYTES;
    if (fits)
        memcpy(s->fill + s->len, buf, n), s->len += n;
    bool wake = s->len > SLOT_BYTES / 2;
    pthread_mutex_unlock(&s->mu);
    if (wake)
        pthread_cond_signal(&C.cv);
    return fits ? 1 : -1;
}

void ug_capw_stop(void)
{
    if (!C.on)
        return;
    pthread_mutex_lock(&C.mu);
    C.stop = true;
    pthread_cond_signal(&C.cv);
    pthread_mutex_unlock(&C.mu);
    pthread_join(C.thread, NULL);
    if (C.fd >= 0)
        close(C.fd);
    C.fd = -1;
    for (unsigned i = 0; i < C.nslots; i++) {
        free(C.slots[i].fill);
        free(C.slots[i].spare);
        pthread_mutex_destroy(&C.slots[i].mu);
    }
    free(C.slots);
    C.slots = NULL;
    C.on = false;
}
