/* libFuzzer: the capture file reader (common/capture.c) on any bytes; every record it accepts re-encodes to the same bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "fuzz_common.h"

/* Mutations rarely keep a CRC right: when the first byte is odd, the
 * harness rewrites every record's CRC first, so the payload checks behind
 * it are fuzzed too. */
static void fix_crcs(uint8_t *p, size_t len)
{
    size_t at = UG_CAP_HEADER_LEN;
    while (at + 2 <= len) {
        size_t n = (size_t)(p[at] | p[at + 1] << 8);
        if (n > UG_CAP_PAYLOAD_MAX || at + 2 + n + 4 > len)
            return;
        uint32_t c = ug_crc32c(0, p + at, 2 + n);
        for (unsigned i = 0; i < 4; i++)
            p[at + 2 + n + i] = (uint8_t)(c >> (8 * i));
        at += 2 + n + 4;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool fix = data[0] & 1;
    size_t len = size - 1;
    uint8_t *buf = malloc(len);
    FZ_CHECK(buf, "out of memory");
    memcpy(buf, data + 1, len);
    if (fix)
        fix_crcs(buf, len);
    FILE *f = fmemopen(buf, len, "rb");
    FZ_CHECK(f, "fmemopen");
    char err[512];
    ug_capture_reader *r = ug_capture_open_stream(f, "fuzz.cap", err, sizeof err);
    if (r) {
        ug_capture_rec rec;
        int rc;
        unsigned n = 0;
        uint64_t off = ug_capture_offset(r);
        FZ_CHECK(off == UG_CAP_HEADER_LEN, "offset after the header: %llu", (unsigned long long)off);
        while ((rc = ug_capture_next(r, &rec, err, sizeof err)) == 1) {
            uint8_t again[UG_CAP_RECORD_MAX];
            size_t k = ug_capture_encode(again, sizeof again, &rec);
            uint64_t next = ug_capture_offset(r);
            FZ_CHECK(k > 0 && next - off == k && next <= len, "record %u re-encodes to %zu bytes", n, k);
            FZ_CHECK(memcmp(again, buf + off, k) == 0, "record %u re-encodes differently", n);
            off = next;
            n++;
        }
        FZ_CHECK(rc == 0 || strstr(err, "fuzz.cap: at byte "), "error names the file and offset: %s", err);
        FZ_CHECK(rc != 0 || off == len, "a clean end at the end of the input");
        FZ_CHECK(ug_capture_next(r, &rec, err, sizeof err) == (rc == 0 ? 0 : -1), "stays at its end");
        ug_capture_close(r);
    } else {
        FZ_CHECK(strstr(err, "fuzz.cap"), "error names the file: %s", err);
    }
    free(buf);
    return 0;
}
