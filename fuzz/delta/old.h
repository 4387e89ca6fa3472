/* The fixed old file fuzz_delta patches over, shared with the corpus generator so real deltas in the corpus are made from the same bytes. */
#ifndef UG_FUZZ_DELTA_OLD_H
#define UG_FUZZ_DELTA_OLD_H

#include <stddef.h>
#include <stdint.h>

#define FZD_OLD_LEN 16384u
/* What the harness expects as the result's size: W = 18, a 256 KiB window. */
#define FZD_OUT_MAX (256u * 1024u)

/* 8 KiB of words, then 8 KiB shaped like code (small constants, zero runs):
 * both kinds of match a real delta refers to. */
static inline void fzd_old(uint8_t out[FZD_OLD_LEN])
{
    static const char *const words[] = {"upgate ", "tracker ", "rollout ", "manifest ", "peer ", "delta ",
                                        "window ", "frame ", "\n", "mirror ", "hash ", "stage "};
    uint64_t s = 0x243f6a8885a308d3u;
    size_t i = 0;
    while (i < FZD_OLD_LEN / 2) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        const char *w = words[s % (sizeof words / sizeof words[0])];
        while (*w && i < FZD_OLD_LEN / 2)
            out[i++] = (uint8_t)*w++;
    }
    for (; i < FZD_OLD_LEN; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        out[i] = (s & 3) == 0 ? 0 : (uint8_t)(s >> 56) & 0x8f;
    }
}

#endif
