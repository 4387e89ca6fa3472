/* The plugin's one millisecond clock for short deadlines: monotonic and coarse (a few ms), so a stopped process sees the time it lost. */
#ifndef UG_CLOCK_H
#define UG_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC_COARSE in ms: cheap enough for a datagram's slow path,
 * and it keeps running while the process is stopped (SIGSTOP), so a lease
 * fence measured on it holds a tracker that resumes late. */
static inline int64_t ug_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
