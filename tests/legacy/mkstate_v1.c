/* Makes a state folder of layout 1 with the code that wrote it: mkstate-v1 DIR STAGE:UID,UID,... ... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quota_v1.h"

int main(int argc, char **argv)
{
    char err[512];
    if (argc < 2) {
        fprintf(stderr, "usage: mkstate-v1 DIR STAGE:UID,... ...\n");
        return 2;
    }
    ug_quota *q = ug_quota_open(argv[1], 1, err, sizeof err);
    if (!q) {
        fprintf(stderr, "mkstate-v1: %s\n", err);
        return 1;
    }
    for (int i = 2; i < argc; i++) {
        char spec[4096];
        snprintf(spec, sizeof spec, "%s", argv[i]);
        char *colon = strchr(spec, ':');
        if (!colon)
            return 2;
        *colon = 0;
        ug_qstage *s = ug_quota_stage(q, spec, err, sizeof err);
        if (!s) {
            fprintf(stderr, "mkstate-v1: %s\n", err);
            return 1;
        }
        ug_qstage_set_limit(s, UG_QUOTA_UNLIMITED);
        for (char *tok = colon + 1; *tok;) {
            char *end;
            unsigned long long uid = strtoull(tok, &end, 10);
            if (end == tok)
                return 2;
            if (ug_qstage_grant(s, 0, uid) != UG_GRANT_NEW)
                return 1;
            tok = *end == ',' ? end + 1 : end;
        }
    }
    if (ug_quota_commit(q, 0) != 0)
        return 1;
    ug_quota_close(q);
    return 0;
}
