/* Rule 4 in one call, for tests and fuzzers (the plugin calls its three checks apart). */
#include "oracle.h"

int or_hello_verify(const ug_hello *h, const ug_dgram *d, const ug_pubkey *issuers, size_t nissuers, uint64_t now,
                    ug_err *err)
{
    /* cheap checks first: a flood of bad credentials costs no Ed25519 work */
    const ug_pubkey *issuer;
    if (ug_cred_check(h, issuers, nissuers, now, &issuer, err) != 0 || ug_cred_sig_verify(h, issuer, err) != 0 ||
        ug_hello_sig_verify(h, d, err) != 0)
        return -1;
    return 0;
}
