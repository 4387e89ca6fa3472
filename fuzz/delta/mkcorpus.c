/* Writes fuzz/corpus/delta/: real deltas over fuzz_delta's old file (delta/ and plain libzstd) and hostile frames. Run by `make -f fuzz/fuzz.mk fuzz-corpus-delta`; its output is committed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "old.h"
#include "ug_delta.h"

#define NEW_MAX (FZD_OUT_MAX * 2)

static const char *out_dir;
static uint8_t old[FZD_OLD_LEN];

static void put(const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* A real delta from the library; every one must be worth making. */
static size_t real(const char *name, const uint8_t *nw, size_t n, int level, uint8_t *keep)
{
    uint8_t *d;
    size_t len;
    ug_delta_err e;
    ug_delta_opts o = {.level = level, .max_percent = 100};
    if (ug_delta_make_buf(old, sizeof old, nw, n, &o, &d, &len, &e) != UG_DELTA_OK) {
        fprintf(stderr, "%s: %s\n", name, e.msg);
        exit(1);
    }
    put(name, d, len);
    if (keep)
        memcpy(keep, d, len);
    free(d);
    return len;
}

/* libzstd with settings a mirror could pick: a checksum, no prefix, no content size. */
static size_t plain(const char *name, const uint8_t *src, size_t n, int checksum, int prefix, int fcs, uint8_t *out)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, checksum);
    ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, fcs);
    ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 17); /* within fuzz_delta's 2^18 */
    if (prefix)
        ZSTD_CCtx_refPrefix(c, old, sizeof old);
    size_t r;
    if (fcs) {
        r = ZSTD_compress2(c, out, ZSTD_compressBound(n), src, n);
    } else { /* streamed: the frame says no size */
        ZSTD_inBuffer in = {src, n, 0};
        ZSTD_outBuffer o = {out, ZSTD_compressBound(n), 0};
        r = ZSTD_compressStream2(c, &o, &in, ZSTD_e_end);
        r = r == 0 ? o.pos : (size_t)-1;
    }
    ZSTD_freeCCtx(c);
    if (ZSTD_isError(r)) {
        fprintf(stderr, "%s: %s\n", name, ZSTD_getErrorName(r));
        exit(1);
    }
    put(name, out, r);
    return r;
}

static void hostile(uint8_t *buf, const uint8_t *good, size_t glen)
{
    static const uint8_t w30[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa0, 0x01, 0x00, 0x00};
    static const uint8_t w19[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x48, 0x01, 0x00, 0x00};
    static const uint8_t fcs[] = {0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0, 0x01, 0x00, 0x00};
    static const uint8_t skip[] = {0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'u', 'g', '!'};
    static const uint8_t dict[] = {0x37, 0xa4, 0x30, 0xec, 1, 0, 0, 0};
    static const uint8_t rle[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x40, 0x02, 0x00, 0x10, 0x00}; /* 128 KiB RLE, never a last block */
    put("hostile-window-2p30", w30, sizeof w30);
    put("hostile-window-2p19", w19, sizeof w19);
    put("hostile-content-size-2p40", fcs, sizeof fcs);
    put("hostile-skippable", skip, sizeof skip);
    put("hostile-dictionary-magic", dict, sizeof dict);
    put("hostile-rle-unended", rle, sizeof rle);
    memcpy(buf, good, glen);
    memcpy(buf + glen, good, glen);
    put("hostile-two-frames", buf, 2 * glen);
    put("hostile-truncated", good, glen / 2);
    buf[glen] = 0;
    put("hostile-trailing-byte", buf, glen + 1);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mkcorpus DIR\n");
        return 2;
    }
    out_dir = argv[1];
    fzd_old(old);
    uint8_t *nw = malloc(NEW_MAX), *buf = malloc(2 * ZSTD_compressBound(NEW_MAX)), good[FZD_OLD_LEN];
    /* an edited text half, a code half with a block moved in front */
    memcpy(nw, old, sizeof old);
    memcpy(nw + 100, "a new release ", 14);
    for (size_t i = FZD_OLD_LEN / 2; i < FZD_OLD_LEN; i += 97)
        nw[i] ^= 0x11;
    size_t glen = real("seed-edited-19", nw, sizeof old, 19, good);
    real("seed-edited-1", nw, sizeof old, 1, NULL);
    memcpy(nw, old + 12000, 3000);
    memcpy(nw + 3000, old, sizeof old);
    real("seed-moved-19", nw, sizeof old + 3000, 19, NULL);
    memcpy(nw, old, sizeof old); /* a copy: a prefix overlapping the input is no prefix */
    real("seed-identical", nw, sizeof old, 19, NULL);
    nw[5000] ^= 1;
    plain("seed-checksum", nw, sizeof old, 1, 1, 1, buf);
    plain("seed-no-prefix", nw, sizeof old, 0, 0, 1, buf);
    plain("seed-no-size", nw, sizeof old, 0, 1, 0, buf);
    memset(nw, 0, NEW_MAX);
    real("seed-zeros-cap", nw, FZD_OUT_MAX, 19, NULL);
    plain("hostile-over-cap-no-size", nw, FZD_OUT_MAX + 4096, 0, 1, 0, buf);
    hostile(buf, good, glen);
    free(nw);
    free(buf);
    return 0;
}
