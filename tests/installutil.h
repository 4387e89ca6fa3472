/* Tests of the installed tree: make install into a temp prefix, and the operator's first run with the installed programs. */
#ifndef UG_INSTALLUTIL_H
#define UG_INSTALLUTIL_H

#include <stdbool.h>
#include <stddef.h>

#define OUT_MAX 65536

/* The source tree, absolute (UG_ROOT, else the current folder). */
const char *iu_root_dir(void);
/* The build folder as the Makefile names it (relative to the root when inside it). */
const char *iu_build_arg(void);
/* snprintf that refuses to truncate. */
void iu_pathf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Is this the sanitizer build (build/san)? */
bool iu_san_build(void);
/* Runs a shell command, formatted: its output in out (may be NULL), its exit code. */
int iu_run(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* `make TARGET` from the tree with these variables; generated files in dir/pkg. */
void iu_make_target(const char *target, const char *dir, const char *vars);
/* Installs under dir/root as a package would be staged (DESTDIR); returns dir/root. */
const char *iu_destdir_install(const char *dir);
/* Installs for real under dir/usr, dir/etc, dir/var (no DESTDIR). */
void iu_prefix_install(const char *dir);
/* The operator's first run (upgate-node(8), FIRST RUN) with the installed
 * upgate-keys in bindir: hint and issuer keys in etc/keys, a release 2.0.0
 * of dir/pub/app.tgz at 127.0.0.1:mirror/app.tgz signed with dir/pub's
 * release key into etc/releases/current.manifest, and a client of uid 1001
 * in dir/pub (client.key, client.cred). */
void iu_first_run(const char *dir, const char *bindir, const char *etc, unsigned mirror);

#endif
