/* upgate-ctl --policy: the control socket of the node serving that policy, from the record it keeps in a runtime folder. */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "ctlfind.h"
#include "runrec.h"

/* The record in folder i for the policy whose real path is real: 0 with the
 * socket in out, 1 when there is no usable one (a note said why, when
 * there was one). */
static int look(const ug_rundirs *d, unsigned i, const char *name, const char *real, char *out, size_t cap)
{
    char path[PATH_MAX + UG_RUNREC_NAME_MAX + 1], why[256];
    ug_runrec r;
    if (!ug_rundir_trusted(d, i))
        return 1;
    snprintf(path, sizeof path, "%s/%s", d->path[i], name);
    int rc = ug_runrec_read(path, &r, why, sizeof why);
    if (rc == 1)
        return 1;
    if (rc != 0)
        fprintf(stderr, "%s: note: ignoring the record %s: %s\n", ug_prog, path, why);
    else if (strcmp(r.policy, real) != 0)
        fprintf(stderr, "%s: note: ignoring the record %s: it is for %s\n", ug_prog, path, r.policy);
    else if (!ug_runrec_alive(r.pid))
        fprintf(stderr, "%s: note: ignoring a stale record %s: pid %d is not running (its node did not stop "
                        "cleanly)\n", ug_prog, path, (int)r.pid);
    else if (strlen(r.socket) >= cap)
        fprintf(stderr, "%s: note: ignoring the record %s: its socket path is too long\n", ug_prog, path);
    else
        return snprintf(out, cap, "%s", r.socket), 0;
    return 1;
}

int ug_ctlf_socket(const char *policy, char *out, size_t cap, char *err, size_t errcap)
{
    char real[PATH_MAX], name[UG_RUNREC_NAME_MAX], why[PATH_MAX + 128];
    if (ug_runrec_name(policy, real, name, why, sizeof why) != 0)
        return snprintf(err, errcap, "--policy %s", why), -1;
    ug_rundirs d;
    ug_rundirs_list(&d);
    for (unsigned i = 0; i < d.n; i++)
        if (look(&d, i, name, real, out, cap) == 0)
            return 0;
    size_t used = (size_t)snprintf(err, errcap, "--policy %s: no running upgate-node has recorded its control socket "
                                                "for %s (looked in ", policy, real);
    for (unsigned i = 0; i < d.n && used < errcap; i++)
        used += (size_t)snprintf(err + used, errcap - used, "%s%s", i ? ", " : "", d.path[i]);
    if (used < errcap)
        snprintf(err + used, errcap - used, "); is it running? else give --socket PATH (by default upgate.ctl in "
                                            "its policy's state folder)");
    return -1;
}
