/* The HELLO capture file of upgate-node --capture: its format, one record's
 * encoder, and a strict reader for other programs (upgate-sim --replay). */
#ifndef UG_CAPTURE_H
#define UG_CAPTURE_H

#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "ug_proto.h"

/*
 * Format (all integers little-endian):
 *   file    = header record*
 *   header  = "UGCAP1\n" version:u8            (8 bytes; version 1)
 *   record  = len:u16 payload[len] crc:u32     crc: CRC-32C of len and payload
 *   payload = time_ms:u64 uid:u64 verdict:u8 reply:u8 family:u8 addr[4|16]
 *             port:u16 ver_len:u8 ver plat_len:u8 plat chan_len:u8 chan
 * family is 4 or 6; ver is the HELLO's version in canonical text (1..32
 * bytes), plat (0..32) and chan (0..16) are empty when absent; verdict is
 * the plugin's (0 reply, 2 drop), reply the type of the reply sent (0 none,
 * 2 HINT, 3 WAIT, 4 COOKIE). Nothing secret: no signature, key, nonce,
 * cookie or credential. A crash may leave a torn last record; the CRC and
 * the length tell it from a whole one.
 */
#define UG_CAP_MAGIC "UGCAP1\n"
#define UG_CAP_VERSION 1u
#define UG_CAP_HEADER_LEN 8u
#define UG_CAP_PAYLOAD_MIN (8u + 8u + 3u + 4u + 2u + 1u + 1u + 1u + 1u)
#define UG_CAP_PAYLOAD_MAX (8u + 8u + 3u + 16u + 2u + 1u + UG_VER_MAX + 1u + UG_PLAT_MAX + 1u + UG_CHAN_MAX)
#define UG_CAP_RECORD_MAX (2u + UG_CAP_PAYLOAD_MAX + 4u)

typedef struct {
    uint64_t time_ms; /* Unix time in milliseconds, when the node received it */
    uint64_t uid;
    uint8_t verdict;  /* ug_verdict */
    uint8_t reply;    /* ug_type of the reply sent, 0 when none */
    uint8_t family;   /* 4 or 6 */
    uint8_t addr[16]; /* the first 4 bytes for IPv4 */
    uint16_t port;
    char ver[UG_VER_MAX + 1];
    char plat[UG_PLAT_MAX + 1]; /* "" when absent */
    char chan[UG_CHAN_MAX + 1]; /* "" when absent */
} ug_capture_rec;

/* CRC-32C (Castagnoli) of p[0..n), continuing from crc (0 to start). */
uint32_t ug_crc32c(uint32_t crc, const uint8_t *p, size_t n);

/* The 8 header bytes. */
void ug_capture_header(uint8_t out[UG_CAP_HEADER_LEN]);
/* Encodes one whole record (length, payload, CRC) into out; returns its
 * size, or 0 when a field is out of range or cap is short. */
size_t ug_capture_encode(uint8_t *out, size_t cap, const ug_capture_rec *rec) UG_WUR;
/* Sets family, addr and port from an AF_INET or AF_INET6 address; -1 otherwise. */
int ug_capture_set_src(ug_capture_rec *rec, const struct sockaddr *sa, socklen_t len) UG_WUR;
/* The record's source as a socket address. */
void ug_capture_src(const ug_capture_rec *rec, struct sockaddr_storage *ss, socklen_t *len);

/* Reading: ug_capture_next gives every record in order, checking each
 * length, CRC and field; the first fault ends the reading with an error
 * naming the file and the byte offset of the record at fault. */
typedef struct ug_capture_reader ug_capture_reader;

/* NULL on failure, with "PATH: why" in err. */
ug_capture_reader *ug_capture_open(const char *path, char *err, size_t errcap);
/* The same over an open stream, which the reader then owns (fclose at
 * close, also on failure); name is used in messages. */
ug_capture_reader *ug_capture_open_stream(FILE *f, const char *name, char *err, size_t errcap);
/* 1 with *rec filled, 0 at a clean end of file, -1 with "NAME: at byte N:
 * why" in err (and every later call returns -1 again). */
int ug_capture_next(ug_capture_reader *r, ug_capture_rec *rec, char *err, size_t errcap) UG_WUR;
/* Byte offset just past the last whole record read (the header at first). */
uint64_t ug_capture_offset(const ug_capture_reader *r);
void ug_capture_close(ug_capture_reader *r);

#endif
