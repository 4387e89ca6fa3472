/* upgate-node's record of its control socket: a file keyed by the policy in a runtime folder, and control.sock in the state folder. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctlrec.h"
#include "log.h"
#include "runrec.h"

/* What this process wrote, for ug_ctlrec_withdraw; "" for nothing. */
static struct {
    char record[PATH_MAX + UG_RUNREC_NAME_MAX + 1];
    char link[PATH_MAX + 16];
    char socket[PATH_MAX];
} R;

/* Folder i of d, made when missing and this process may make it (mode 0755
 * for the system's /run/upgate, else 0700); whether it can hold the record. */
static bool usable(const ug_rundirs *d, unsigned i)
{
    const char *p = d->path[i];
    if (mkdir(p, strcmp(p, "/run/upgate") == 0 ? 0755 : 0700) != 0 && errno != EEXIST)
        return false;
    return ug_rundir_trusted(d, i) && access(p, W_OK | X_OK) == 0;
}

/* Removes the records of nodes that are gone (killed, say) from dir. */
static void sweep(const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return;
    for (struct dirent *e; (e = readdir(dp));) {
        char path[PATH_MAX + UG_RUNREC_NAME_MAX + 1], why[128];
        ug_runrec r;
        if (strncmp(e->d_name, UG_RUNREC_PREFIX, strlen(UG_RUNREC_PREFIX)) != 0 ||
            strlen(e->d_name) != UG_RUNREC_NAME_MAX - 1)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (ug_runrec_read(path, &r, why, sizeof why) == 0 && !ug_runrec_alive(r.pid))
            unlinkat(dirfd(dp), e->d_name, 0);
    }
    closedir(dp);
}

/* Writes rec as dir/name through a temporary file, so a reader sees the
 * old record or the new one. 0, or -1 with why. */
static int write_record(const char *dir, const char *name, const ug_runrec *rec, char *why, size_t whycap)
{
    char text[UG_RUNREC_MAX], tmp[sizeof R.record + 16];
    int n = ug_runrec_format(rec, text, sizeof text);
    snprintf(tmp, sizeof tmp, "%s/.%s.%d", dir, name, (int)getpid());
    snprintf(R.record, sizeof R.record, "%s/%s", dir, name);
    int fd = n < 0 ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    bool ok = fd >= 0 && write(fd, text, (size_t)n) == n;
    ok = fd >= 0 && close(fd) == 0 && ok && rename(tmp, R.record) == 0;
    if (!ok) {
        snprintf(why, whycap, "%s: %s", R.record, n < 0 ? "a path too long" : strerror(errno));
        (void)unlink(tmp);
        R.record[0] = 0;
        return -1;
    }
    return 0;
}

/* state/control.sock -> socket, replacing an older link in one step. */
static void link_state(const char *state, const char *socket)
{
    char tmp[sizeof R.link + 16];
    snprintf(R.link, sizeof R.link, "%s/control.sock", state);
    snprintf(tmp, sizeof tmp, "%s/.control.sock.%d", state, (int)getpid());
    (void)unlink(tmp);
    if (symlink(socket, tmp) != 0 || rename(tmp, R.link) != 0) {
        ug_log(UG_LOG_WARN, "cannot link %s to the control socket: %s", R.link, strerror(errno));
        (void)unlink(tmp);
        R.link[0] = 0;
    }
}

/* The first usable runtime folder, its dead records swept: 0 with its
 * index, or -1 with the folders tried in why. */
static int pick_folder(const ug_rundirs *d, char *why, size_t whycap)
{
    size_t used = (size_t)snprintf(why, whycap, "no usable runtime folder (");
    for (unsigned i = 0; i < d->n; i++) {
        if (usable(d, i)) {
            sweep(d->path[i]);
            return (int)i;
        }
        if (used < whycap)
            used += (size_t)snprintf(why + used, whycap - used, "%s%s", i ? ", " : "", d->path[i]);
    }
    if (used < whycap)
        snprintf(why + used, whycap - used, ")");
    return -1;
}

void ug_ctlrec_publish(const char *policy, const char *socket, const char *state)
{
    ug_runrec rec = {.pid = getpid()};
    char name[UG_RUNREC_NAME_MAX], why[4 * PATH_MAX + 256], cwd[PATH_MAX];
    int n = socket[0] == '/' ? snprintf(rec.socket, sizeof rec.socket, "%s", socket)
            : getcwd(cwd, sizeof cwd) ? snprintf(rec.socket, sizeof rec.socket, "%s/%s", cwd, socket)
                                      : -1;
    if (n < 0 || (size_t)n >= sizeof rec.socket) {
        ug_log(UG_LOG_WARN, "cannot record the control socket %s: no absolute path for it", socket);
        return;
    }
    memcpy(R.socket, rec.socket, sizeof R.socket);
    if (state)
        link_state(state, rec.socket);
    ug_rundirs d;
    ug_rundirs_list(&d);
    int i = ug_runrec_name(policy, rec.policy, name, why, sizeof why) == 0 ? pick_folder(&d, why, sizeof why) : -1;
    if (i < 0 || write_record(d.path[i], name, &rec, why, sizeof why) != 0)
        ug_log(UG_LOG_WARN, "cannot record the control socket for upgate-ctl --policy: %s; it needs --socket %s", why,
               rec.socket);
}

void ug_ctlrec_withdraw(void)
{
    ug_runrec r;
    char why[128], target[PATH_MAX];
    if (R.record[0] && ug_runrec_read(R.record, &r, why, sizeof why) == 0 && r.pid == getpid())
        (void)unlink(R.record);
    ssize_t n = R.link[0] ? readlink(R.link, target, sizeof target - 1) : -1;
    if (n > 0 && (target[n] = 0, strcmp(target, R.socket) == 0))
        (void)unlink(R.link);
    R.record[0] = R.link[0] = 0;
}
