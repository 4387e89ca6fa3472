/* Address cookies: a keyed MAC of source address, port and time slot; and the sources that showed one lately. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "policy/addr.h"
#include "guard/cookiejar.h"

int ug_cookiejar_init(ug_cookiejar *j)
{
    j->master = sodium_malloc(crypto_generichash_KEYBYTES);
    j->proven = calloc(UG_PROVEN_SLOTS, sizeof *j->proven);
    if (!j->master || !j->proven) {
        ug_cookiejar_free(j);
        return -1;
    }
    randombytes_buf(j->master, crypto_generichash_KEYBYTES);
    sodium_mprotect_readonly(j->master);
    return 0;
}

void ug_cookiejar_free(ug_cookiejar *j)
{
    if (j->master)
        sodium_free(j->master);
    free((void *)j->proven);
    j->master = NULL;
    j->proven = NULL;
}

static void cookie_for_slot(const ug_cookiejar *j, const struct sockaddr *src, uint64_t slot,
                            uint8_t cookie[UG_COOKIE_LEN])
{
    uint8_t secret[crypto_generichash_KEYBYTES], slot_le[8];
    for (unsigned i = 0; i < 8; i++)
        slot_le[i] = (uint8_t)(slot >> (8 * i));
    crypto_generichash(secret, sizeof secret, slot_le, sizeof slot_le, j->master, crypto_generichash_KEYBYTES);

    /* family, port and address: the parts of the source a spoofer must own */
    uint8_t msg[UG_ADDR_KEY_MAX];
    size_t len = ug_addr_key(src, msg);
    crypto_generichash(cookie, UG_COOKIE_LEN, msg, len, secret, sizeof secret);
    sodium_memzero(secret, sizeof secret);
}

void ug_cookiejar_make(const ug_cookiejar *j, const struct sockaddr *src, uint64_t now,
                       uint8_t cookie[UG_COOKIE_LEN])
{
    cookie_for_slot(j, src, now / UG_COOKIE_SLOT, cookie);
}

bool ug_cookiejar_check(const ug_cookiejar *j, const struct sockaddr *src, uint64_t now,
                        const uint8_t cookie[UG_COOKIE_LEN])
{
    uint64_t slot = now / UG_COOKIE_SLOT;
    uint8_t want[UG_COOKIE_LEN];
    cookie_for_slot(j, src, slot, want);
    bool ok = crypto_verify_16(want, cookie) == 0;
    if (!ok && slot > 0) {
        cookie_for_slot(j, src, slot - 1, want);
        ok = crypto_verify_16(want, cookie) == 0;
    }
    return ok;
}

/* The table's word for src in slot: the cookie's first 8 bytes, never 0. */
static uint64_t proof_of(const ug_cookiejar *j, const struct sockaddr *src, uint64_t slot)
{
    uint8_t c[UG_COOKIE_LEN];
    cookie_for_slot(j, src, slot, c);
    uint64_t v;
    memcpy(&v, c, sizeof v);
    return v ? v : 1;
}

void ug_cookiejar_proved(const ug_cookiejar *j, const struct sockaddr *src, uint64_t now)
{
    uint64_t v = proof_of(j, src, now / UG_COOKIE_SLOT);
    atomic_store_explicit(&j->proven[v % UG_PROVEN_SLOTS], v, memory_order_relaxed);
}

bool ug_cookiejar_was_proved(const ug_cookiejar *j, const struct sockaddr *src, uint64_t now)
{
    uint64_t slot = now / UG_COOKIE_SLOT;
    for (uint64_t back = 0; back <= 1 && back <= slot; back++) {
        uint64_t v = proof_of(j, src, slot - back);
        if (atomic_load_explicit(&j->proven[v % UG_PROVEN_SLOTS], memory_order_relaxed) == v)
            return true;
    }
    return false;
}
