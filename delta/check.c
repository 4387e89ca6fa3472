/* Checking a downloaded delta against its manifest entry (size, BLAKE2b-256) before it is patched. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "delta_impl.h"

#define CHUNK 65536u

ug_delta_rc ug_delta_check(int delta_fd, uint64_t size, const uint8_t hash[UG_DELTA_HASH_LEN], ug_delta_err *err)
{
    struct stat st;
    if (hash == NULL)
        return ug_delta_say_(err, UG_DELTA_E_ARG, "check: no hash");
    if (fstat(delta_fd, &st) != 0)
        return ug_delta_say_(err, UG_DELTA_E_IO, "delta: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return ug_delta_say_(err, UG_DELTA_E_IO, "delta: not a regular file");
    if ((uint64_t)st.st_size != size)
        return ug_delta_say_(err, UG_DELTA_E_MISMATCH, "delta: %llu bytes, the manifest says %llu",
                             (unsigned long long)st.st_size, (unsigned long long)size);
    crypto_generichash_state s;
    crypto_generichash_init(&s, NULL, 0, UG_DELTA_HASH_LEN);
    uint8_t buf[CHUNK];
    uint64_t off = 0;
    while (off < size) {
        size_t want = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
        ssize_t r = pread(delta_fd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ug_delta_say_(err, UG_DELTA_E_IO, "delta: %s", strerror(errno));
        if (r == 0)
            return ug_delta_say_(err, UG_DELTA_E_IO, "delta: changed while read");
        crypto_generichash_update(&s, buf, (size_t)r);
        off += (uint64_t)r;
    }
    uint8_t got[UG_DELTA_HASH_LEN];
    crypto_generichash_final(&s, got, sizeof got);
    if (sodium_memcmp(got, hash, sizeof got) != 0)
        return ug_delta_say_(err, UG_DELTA_E_MISMATCH, "delta: its BLAKE2b-256 is not the manifest's");
    return UG_DELTA_OK;
}
