/* Tests of the installed tree: make install into a temp prefix, and the operator's first run with the installed programs (tests/test_install.c, tests/test_journey.c). */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installutil.h"
#include "testutil.h"

/* The source tree, absolute (UG_ROOT, else the current folder). */
const char *iu_root_dir(void)
{
    static char abs[4096];
    if (!abs[0]) {
        const char *r = getenv("UG_ROOT");
        cr_assert(realpath(r && *r ? r : ".", abs), "no source tree");
    }
    return abs;
}

/* The build folder as the Makefile names it (relative to the root when inside it). */
const char *iu_build_arg(void)
{
    const char *b = tu_build_dir(), *r = iu_root_dir();
    size_t n = strlen(r);
    if (!strncmp(b, r, n) && b[n] == '/')
        return b + n + 1;
    return b;
}

/* snprintf that refuses to truncate. */
void iu_pathf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < cap, "path too long: %s", buf);
}

bool iu_san_build(void)
{
    const char *b = tu_build_dir();
    size_t n = strlen(b);
    return n >= 4 && !strcmp(b + n - 4, "/san");
}

int iu_run(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    cr_assert(n > 0 && (size_t)n < sizeof cmd, "command too long");
    return tu_run(cmd, out, cap);
}

/* `make install` (or uninstall) from the tree with these variables; the
 * generated files go to dir/pkg so that parallel tests do not share them. */
void iu_make_target(const char *target, const char *dir, const char *vars)
{
    static char out[OUT_MAX];
    int rc = iu_run(out, sizeof out,
                 "cd '%s' && env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make --no-print-directory %s "
                 "BUILD='%s' %s PKG_OUT='%s/pkg' %s 2>&1",
                 iu_root_dir(), target, iu_build_arg(), iu_san_build() ? "SAN=1" : "", dir, vars);
    cr_assert_eq(rc, 0, "make %s %s failed:\n%s", target, vars, out);
}

/* Installs under dir/root as a package would be staged: DESTDIR, default PREFIX. */
const char *iu_destdir_install(const char *dir)
{
    static char d[256];
    iu_pathf(d, sizeof d, "%s/root", dir);
    char vars[512];
    iu_pathf(vars, sizeof vars, "DESTDIR='%s'", d);
    iu_make_target("install", dir, vars);
    return d;
}

/* Installs for real under dir/usr, dir/etc, dir/var (no DESTDIR): the unit's
 * paths then exist, so its ExecStart line can be run as it stands. */
void iu_prefix_install(const char *dir)
{
    char vars[1024];
    iu_pathf(vars, sizeof vars, "PREFIX='%s/usr' SYSCONFDIR='%s/etc' LOCALSTATEDIR='%s/var'", dir, dir, dir);
    iu_make_target("install", dir, vars);
}

/* The operator's first run (upgate-node(8), FIRST RUN) with the installed
 * upgate-keys: a hint key and an issuer key in etc/keys, a release signed
 * with a key kept in dir/pub, and a client of uid 1001 in dir/pub. The
 * release's package is dir/pub/app.tgz, at 127.0.0.1:mirror/app.tgz. */
void iu_first_run(const char *dir, const char *bindir, const char *etc, unsigned mirror)
{
    char out[4096];
    int rc = iu_run(out, sizeof out,
                 "set -e; K='%s/upgate-keys'; mkdir -p '%s/keys' '%s/releases' '%s/pub'; cd '%s/keys';"
                 "$K gen hint; $K gen issuer; cd '%s/pub'; $K gen release; $K gen client;"
                 "head -c 4000 /dev/urandom > app.tgz;"
                 "$K release --key release.key --version 2.0.0 --file app.tgz --url http://127.0.0.1:%u/app.tgz "
                 "--ttl 86400 --out '%s/releases/current.manifest';"
                 "$K cred --issuer '%s/keys/issuer.key' --uid 1001 --pub client.pub --ttl 86400 --out client.cred"
                 " 2>&1",
                 bindir, etc, etc, dir, etc, dir, mirror, etc, etc);
    cr_assert_eq(rc, 0, "first run failed:\n%s", out);
}

