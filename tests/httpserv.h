/* tests/httpserv.py, the misbehaving HTTP mirror of the download tests, started and stopped by PID. */
#ifndef UG_HTTPSERV_H
#define UG_HTTPSERV_H

#include <stddef.h>
#include <sys/types.h>

typedef struct {
    pid_t pid; /* 0 when not running */
    int port;
    char log[256]; /* its request log: one "GET /path range=..." line per request */
} hs_server;

/* Starts it on 127.0.0.1 serving the files in root, with extra flags
 * (--drop-first N, --rate BPS, --ignore-range, --wrong-range); its log goes to
 * root/../NAME.log. Aborts the test if it is not listening within 10 s. */
void hs_start(hs_server *s, const char *root, const char *name, const char *flags);
/* Kills it by PID and reaps it; harmless when not running. */
void hs_stop(hs_server *s);
/* Its request log so far, NUL-terminated (empty if none). */
void hs_log(const hs_server *s, char *buf, size_t cap);

#endif
