/* Where a policy's relative paths resolve: its file's folder, for the loader and for upgate-ctl --policy alike. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

void ug_policy_dir(const char *path, char out[UG_PATH_MAX])
{
    char d[UG_PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(d, sizeof d, ".");
    else if (slash == path)
        snprintf(d, sizeof d, "/");
    else
        snprintf(d, sizeof d, "%.*s", (int)(slash - path), path);
    char *real = realpath(d, NULL);
    snprintf(out, UG_PATH_MAX, "%s", real && strlen(real) < UG_PATH_MAX ? real : d);
    free(real);
    if (strcmp(out, "/") == 0)
        out[0] = '\0';
}
