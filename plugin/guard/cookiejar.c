/* Address cookies: a keyed MAC of source address, port and time slot. */
#include <string.h>

#include <sodium.h>

#include "policy/addr.h"
#include "guard/cookiejar.h"

int ug_cookiejar_init(ug_cookiejar *j)
{
    j->master = sodium_malloc(crypto_generichash_KEYBYTES);
    if (!j->master)
        return -1;
    randombytes_buf(j->master, crypto_generichash_KEYBYTES);
    sodium_mprotect_readonly(j->master);
    return 0;
}

void ug_cookiejar_free(ug_cookiejar *j)
{
    if (j->master)
        sodium_free(j->master);
    j->master = NULL;
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
