/* libFuzzer harness: libupgate's version 2 state file (ug_client_pstate_parse_, and the loader behind
 * ug_client_trust): an accepted text is canonical (written back byte for byte), within its bounds, and a
 * handle loads it or refuses it naming the file, never crashing. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "../client/internal.h"
#include "fuzz_common.h"

static fz_keys K;
static const char *dir;
static char path[512];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_keys_init(&K);
    dir = fz_tmpdir("pstate");
    snprintf(path, sizeof path, "%s/peer.state", dir);
    return 0;
}

static void check_fields(const ug_client_pstate *st)
{
    FZ_CHECK(st->keyring_len <= UG2_KEYRING_MAX && st->nseqs <= UG_CLIENT_SEQS_MAX, "bounds");
    for (unsigned i = 0; i < st->nseqs; i++) {
        const ug_client_seq *q = &st->seqs[i];
        FZ_CHECK(ug2_label_valid(q->app, strlen(q->app), UG2_LABEL_MAX), "app %u", i);
        FZ_CHECK(ug2_label_valid(q->chan, strlen(q->chan), UG2_CHAN_MAX), "chan %u", i);
        FZ_CHECK(q->seq >= 1 && q->seq <= UG2_SEQ_MAX, "seq %u", i);
        for (unsigned j = 0; j < i; j++)
            FZ_CHECK(strcmp(q->app, st->seqs[j].app) || strcmp(q->chan, st->seqs[j].chan), "pair twice");
    }
}

/* A handle pinning one root loads the file: OK or a refusal naming it. */
static void load(const uint8_t *data, size_t size)
{
    fz_write(dir, "peer.state", data, size);
    ug_client_config cfg;
    ug_client_config_init(&cfg);
    cfg.uid = 1;
    cfg.version = "1.0";
    cfg.app = "app";
    cfg.plat = "linux";
    cfg.chan = "stable";
    cfg.state_path = path;
    ug_client *c = NULL;
    FZ_CHECK(ug_client_new(&cfg, &c, NULL) == UG_CLIENT_OK, "client");
    FZ_CHECK(ug_client_add_root_key(c, K.hint.pub.pk) == UG_CLIENT_OK, "root");
    ug_client_trust_info info;
    ug_client_trust_info_init(&info);
    ug_client_err e = ug_client_trust(c, &info);
    FZ_CHECK(e == UG_CLIENT_OK || (e == UG_CLIENT_E_FORMAT && strstr(ug_client_errmsg(c), path)), "load: %d %s",
             (int)e, ug_client_errmsg(c));
    if (e == UG_CLIENT_OK)
        FZ_CHECK(info.protocol == 2 && info.signed_time <= UINT64_MAX, "info");
    ug_client_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ug_client_pstate st, again;
    static char text[UG_CLIENT_PSTATE_MAX];
    if (ug_client_pstate_parse_(data, size, &st) != 0) {
        if (size <= UG_CLIENT_PSTATE_MAX && size % 7 == 0) /* now and then, the loader's refusal too */
            load(data, size);
        return 0;
    }
    check_fields(&st);
    size_t len = 0;
    FZ_CHECK(ug_client_pstate_format_(&st, text, sizeof text, &len) == 0, "format");
    FZ_CHECK(len == size && memcmp(text, data, size) == 0, "not canonical: %zu bytes back, %zu in", len, size);
    FZ_CHECK(ug_client_pstate_parse_((const uint8_t *)text, len, &again) == 0, "re-parse");
    FZ_CHECK(again.keyring_len == st.keyring_len && again.nseqs == st.nseqs && again.fresh_at == st.fresh_at,
             "round trip");
    load(data, size);
    return 0;
}
