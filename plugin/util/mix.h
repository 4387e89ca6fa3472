/* The splitmix64 finalizer, the plugin's one integer hash. */
#ifndef UG_MIX_H
#define UG_MIX_H

#include <stdint.h>

/* A bijection on 64 bits whose every output bit depends on every input bit:
 * sequential uids spread over hash tables, stripes and buckets, and distinct
 * inputs never collide in full. */
static inline uint64_t ug_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

#endif
