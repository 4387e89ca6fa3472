/* libFuzzer harness: delta/'s patch input (ug_delta_apply_buf), a zstd frame from a hostile mirror over a fixed old file, against its contract. */
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "delta/old.h"
#include "fuzz_common.h"
#include "ug_delta.h"

static uint8_t old[FZD_OLD_LEN];
static int delta_fd = -1, out_fd = -1; /* memfds, emptied for each input */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    FZ_CHECK(sodium_init() >= 0, "sodium_init");
    fzd_old(old);
    delta_fd = memfd_create("fuzz-delta", MFD_CLOEXEC);
    out_fd = memfd_create("fuzz-delta-out", MFD_CLOEXEC);
    FZ_CHECK(delta_fd >= 0 && out_fd >= 0, "memfd_create");
    return 0;
}

static void reset(int fd)
{
    FZ_CHECK(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0, "reset memfd");
}

static off_t size_of(int fd)
{
    struct stat st;
    FZ_CHECK(fstat(fd, &st) == 0, "fstat");
    return st.st_size;
}

/* The result file holds exactly res->size bytes hashing to res->hash. */
static void check_result(const ug_delta_result *res)
{
    FZ_CHECK(res->size <= FZD_OUT_MAX, "result of %llu bytes passes the cap", (unsigned long long)res->size);
    FZ_CHECK((uint64_t)size_of(out_fd) == res->size, "file %lld bytes, result %llu", (long long)size_of(out_fd),
             (unsigned long long)res->size);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, UG_DELTA_HASH_LEN);
    uint8_t buf[16384], h[UG_DELTA_HASH_LEN];
    for (uint64_t off = 0; off < res->size;) {
        ssize_t r = pread(out_fd, buf, sizeof buf, (off_t)off);
        FZ_CHECK(r > 0, "read back");
        crypto_generichash_update(&st, buf, (size_t)r);
        off += (uint64_t)r;
    }
    crypto_generichash_final(&st, h, sizeof h);
    FZ_CHECK(memcmp(h, res->hash, sizeof h) == 0, "the result's hash is not its bytes'");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reset(delta_fd);
    reset(out_fd);
    FZ_CHECK(size == 0 || pwrite(delta_fd, data, size, 0) == (ssize_t)size, "write input");
    ug_delta_result res;
    ug_delta_err e = {.msg = ""};
    ug_delta_rc rc = ug_delta_apply_buf(old, sizeof old, delta_fd, out_fd, FZD_OUT_MAX, &res, &e);
    FZ_CHECK(rc >= UG_DELTA_OK && rc < UG_DELTA_E_COUNT_, "code %d", (int)rc);
    FZ_CHECK(res.mem <= ug_delta_mem_bound(sizeof old, FZD_OUT_MAX), "held %llu bytes", (unsigned long long)res.mem);
    if (rc == UG_DELTA_OK) {
        check_result(&res);
        return 0;
    }
    /* a refusal: said in one line, nothing of the result kept */
    FZ_CHECK(e.msg[0] != 0 && memchr(e.msg, '\n', sizeof e.msg) == NULL && memchr(e.msg, 0, sizeof e.msg),
             "%s without a one-line message", ug_delta_rc_name(rc));
    FZ_CHECK(rc == UG_DELTA_E_FORMAT || rc == UG_DELTA_E_WINDOW || rc == UG_DELTA_E_CORRUPT ||
                 rc == UG_DELTA_E_OVERSIZE,
             "%s: %s", ug_delta_rc_name(rc), e.msg);
    FZ_CHECK(res.size == 0 && size_of(out_fd) == 0, "%s left %lld bytes", ug_delta_rc_name(rc),
             (long long)size_of(out_fd));
    return 0;
}
