/* check() with a user to drop to: which of the policy's files a reload as that user could not read, in JSON. */
#include <jansson.h>

#include "core/privileges.h"

json_t *ug_privileges_json(ug_opener *lister, const ug_policy *p, const char *user)
{
    ug_opener_fail fails[32];
    int n = ug_opener_audit(lister, fails, 32);
    json_t *o = json_pack("{s:s, s:[], s:[]}", "user", user, "folders", "fails");
    if (!o)
        return NULL;
    const char *const *dirs;
    unsigned nd = ug_opener_folders(lister, &dirs);
    for (unsigned i = 0; i < nd; i++)
        json_array_append_new(json_object_get(o, "folders"), json_string(dirs[i]));
    json_t *f = json_object_get(o, "fails");
    for (int i = 0; i < n && i < 32; i++)
        json_array_append_new(f, json_pack("{s:s, s:s}", "file", fails[i].file, "why", fails[i].why));
    char why[300];
    if (p->geo && !ug_user_can_read(user, p->geoip_path, why, sizeof why)) {
        char msg[400];
        snprintf(msg, sizeof msg, "a changed database cannot be loaded (libmaxminddb opens it by path): %s", why);
        json_array_append_new(f, json_pack("{s:s, s:s}", "file", p->geoip_path, "why", msg));
    }
    return o;
}
