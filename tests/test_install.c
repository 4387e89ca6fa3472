/* make install and uninstall, pkg-config, man pages and systemd units, checked from the installed files only. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "installutil.h"
#include "testutil.h"


/* What a test started, stopped by PID in teardown even when it failed. */
static struct {
    pid_t node;   /* the node, or strace wrapping it */
    pid_t traced; /* the node under strace (0: not traced) */
    pid_t httpd;  /* the release's mirror, or 0 */
    int out;      /* read end of its stdout */
    int notify;   /* our NOTIFY_SOCKET end, or -1 */
} R = {0, 0, 0, -1, -1};

static void teardown(void)
{
    if (R.traced)
        kill(R.traced, SIGKILL);
    if (R.node) {
        kill(R.node, SIGKILL);
        waitpid(R.node, NULL, 0);
    }
    if (R.out >= 0)
        close(R.out);
    if (R.notify >= 0)
        close(R.notify);
    if (R.httpd) {
        kill(R.httpd, SIGKILL);
        waitpid(R.httpd, NULL, 0);
    }
}

TestSuite(install, .fini = teardown, .timeout = 180);

/* A line on stderr about a check left out (cr_log_warn would fail the run). */
#define note(...) (fprintf(stderr, "  note: " __VA_ARGS__), fputc('\n', stderr))

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "open %s: %s", path, strerror(errno));
    char *buf = malloc(OUT_MAX);
    cr_assert(buf);
    size_t n = fread(buf, 1, OUT_MAX - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static bool have_client_lib(void)
{
    char p[1024];
    iu_pathf(p, sizeof p, "%s/include/upgate/client.h", iu_root_dir());
    return exists(p);
}

static bool built(const char *prog)
{
    char p[1024];
    iu_pathf(p, sizeof p, "%s/%s", tu_build_dir(), prog);
    return access(p, X_OK) == 0;
}

/* ---- the staged tree ------------------------------------------------ */

/* Every file install puts under DESTDIR; NULL-terminated. */
static const char *const always[] = {
    "usr/local/sbin/upgate-node",
    "usr/local/bin/upgate-keys",
    "usr/local/bin/upgate-peer",
    "usr/local/lib/upgate/upgate.so",
    "usr/local/include/upgate/upgate_plugin.h",
    "usr/local/include/upgate/host.h",
    "usr/local/lib/libupgate-host.a",
    "usr/local/lib/libupgate-host.so.1",
    "usr/local/lib/libupgate-host.so",
    "usr/local/lib/pkgconfig/upgate-plugin.pc",
    "usr/local/share/man/man1/upgate-keys.1",
    "usr/local/share/man/man1/upgate-peer.1",
    "usr/local/share/man/man1/upgate-sim.1",
    "usr/local/share/man/man3/libupgate.3",
    "usr/local/share/man/man3/libupgate-host.3",
    "usr/local/share/man/man3/upgate-plugin.3",
    "usr/local/share/man/man5/upgate.policy.5",
    "usr/local/share/man/man8/upgate-ctl.8",
    "usr/local/share/man/man8/upgate-node.8",
    "usr/local/lib/systemd/system/upgate-node.service",
    "usr/local/lib/systemd/system/upgate-node@.service",
    "usr/local/lib/sysusers.d/upgate.conf",
    "etc/upgate/policy.yaml.example",
    NULL,
};
static const char *const client_files[] = {
    "usr/local/include/upgate/client.h", "usr/local/lib/libupgate.a", "usr/local/lib/libupgate.so.1",
    "usr/local/lib/libupgate.so", "usr/local/lib/pkgconfig/upgate.pc", NULL,
};

static bool expected(const char *rel)
{
    for (int i = 0; always[i]; i++)
        if (!strcmp(rel, always[i]))
            return true;
    if (have_client_lib()) {
        for (int i = 0; client_files[i]; i++)
            if (!strcmp(rel, client_files[i]))
                return true;
        if (!strncmp(rel, "usr/local/lib/libupgate.so.1.", 29)) /* the real file behind the SONAME link */
            return true;
    }
    if (!strncmp(rel, "usr/local/lib/libupgate-host.so.1.", 34)) /* libupgate-host's real file */
        return true;
    return (!strcmp(rel, "usr/local/sbin/upgate-ctl") && built("upgate-ctl")) ||
           (!strcmp(rel, "usr/local/bin/upgate-sim") && built("upgate-sim"));
}

Test(install, destdir_layout_modes_and_paths)
{
    const char *dir = tu_tmpdir();
    const char *d = iu_destdir_install(dir);
    char path[1024];
    for (int i = 0; always[i]; i++) {
        iu_pathf(path, sizeof path, "%s/%s", d, always[i]);
        cr_expect(exists(path), "not installed: %s", always[i]);
    }
    if (have_client_lib())
        for (int i = 0; client_files[i]; i++) {
            iu_pathf(path, sizeof path, "%s/%s", d, client_files[i]);
            cr_expect(exists(path), "not installed: %s", client_files[i]);
        }
    else
        note("include/upgate/client.h is not in this tree: libupgate's files are not checked");

    /* nothing else, and each file with the mode it needs */
    static char list[OUT_MAX];
    cr_assert_eq(iu_run(list, sizeof list, "cd '%s' && find . ! -type d | sed 's|^\\./||' | sort", d), 0);
    for (char *save = NULL, *rel = strtok_r(list, "\n", &save); rel; rel = strtok_r(NULL, "\n", &save)) {
        cr_expect(expected(rel), "installed but not expected: %s", rel);
        iu_pathf(path, sizeof path, "%s/%s", d, rel);
        struct stat st;
        cr_assert_eq(lstat(path, &st), 0);
        if (S_ISLNK(st.st_mode))
            continue;
        bool exe = strstr(rel, "/bin/") || strstr(rel, "/sbin/");
        cr_expect_eq(st.st_mode & 07777, exe ? 0755u : 0644u, "%s has mode %o", rel, st.st_mode & 07777);
    }

    /* text files: every @TOKEN@ substituted, no path into the build tree */
    char out[4096];
    int rc = iu_run(out, sizeof out, "cd '%s' && grep -rIlE '@[A-Z_]+@|%s' etc usr/local/lib/pkgconfig "
                 "usr/local/lib/systemd usr/local/share/man 2>&1", d, iu_root_dir());
    cr_expect_neq(rc, 0, "unsubstituted tokens or build paths in: %s", out);

    /* the plugin ABI in upgate-plugin.pc is the installed header's */
    rc = iu_run(out, sizeof out,
             "export PKG_CONFIG_PATH='%s/usr/local/lib/pkgconfig' PKG_CONFIG_SYSROOT_DIR='%s';"
             "M=$(pkg-config --variable=abi_major upgate-plugin) && N=$(pkg-config --variable=abi_minor upgate-plugin) &&"
             "grep -q \"^#define UG_PLUGIN_ABI_MAJOR ${M}u\" '%s/usr/local/include/upgate/upgate_plugin.h' &&"
             "grep -q \"^#define UG_PLUGIN_ABI_MINOR ${N}u\" '%s/usr/local/include/upgate/upgate_plugin.h' &&"
             "[ \"$(pkg-config --variable=plugin upgate-plugin)\" = '%s/usr/local/lib/upgate/upgate.so' ] 2>&1",
             d, d, d, d, d);
    cr_expect_eq(rc, 0, "upgate-plugin.pc disagrees with the installed header or plugin: %s", out);

    /* Type=notify exactly when the node can notify (libsystemd linked) */
    iu_pathf(path, sizeof path, "%s/usr/local/lib/systemd/system/upgate-node.service", d);
    char *unit = slurp(path);
    bool notify = iu_run(NULL, 0, "readelf -d '%s/usr/local/sbin/upgate-node' | grep -q 'NEEDED.*libsystemd'", d) == 0;
    cr_expect(strstr(unit, notify ? "\nType=notify\n" : "\nType=exec\n"), "unit type does not match the node");
    free(unit);
}

Test(install, uninstall_removes_ours_and_keeps_the_operators)
{
    const char *dir = tu_tmpdir();
    const char *d = iu_destdir_install(dir);
    char out[4096];
    cr_assert_eq(iu_run(NULL, 0, "cd '%s/etc/upgate' && mkdir keys && echo 'state: /x' > policy.yaml && "
                 "echo secret > keys/hint.key", d), 0);
    char vars[512];
    iu_pathf(vars, sizeof vars, "DESTDIR='%s'", d);
    iu_make_target("uninstall", dir, vars);
    cr_assert_eq(iu_run(out, sizeof out, "cd '%s' && find . ! -type d | sort", d), 0);
    cr_expect_str_eq(out, "./etc/upgate/keys/hint.key\n./etc/upgate/policy.yaml\n",
                     "uninstall left or removed the wrong files:\n%s", out);
    char path[512];
    iu_pathf(path, sizeof path, "%s/usr/local/lib/upgate", d);
    cr_expect(!exists(path), "the plugin folder stays");
    iu_pathf(path, sizeof path, "%s/usr/local/include/upgate", d);
    cr_expect(!exists(path), "the header folder stays");
    iu_make_target("uninstall", dir, vars); /* twice is harmless */
}

/* ---- pkg-config, out of tree ---------------------------------------- */

/* Compiler flags of this build flavour (a sanitized plugin needs a sanitized host). */
static const char *cc_flags(void)
{
    return iu_san_build() ? "-std=c11 -pedantic -Wall -Wextra -Werror -fsanitize=address,undefined"
                       : "-std=c11 -pedantic -Wall -Wextra -Werror";
}

Test(install, out_of_tree_host_loads_the_installed_plugin)
{
    const char *dir = tu_tmpdir();
    const char *d = iu_destdir_install(dir);
    char bin[512], etc[512], out[OUT_MAX];
    iu_pathf(bin, sizeof bin, "%s/usr/local/bin", d);
    iu_pathf(etc, sizeof etc, "%s/hostetc", dir);
    iu_first_run(dir, bin, etc, 9); /* no download: nothing serves the package */
    char policy[600];
    iu_pathf(policy, sizeof policy, "%s/policy.yaml", etc);
    char text[1024];
    int n = snprintf(text, sizeof text,
                     "keys: {hint: keys/hint.key, issuers: [keys/issuer.pub]}\nrelease: releases/current.manifest\n"
                     "targets: [\"<2.0\"]\nstate: %s/state\nstages:\n  - {name: all}\n", dir);
    tu_write_file(policy, text, (size_t)n);
    int rc = iu_run(out, sizeof out,
                 "set -e; export PKG_CONFIG_PATH='%s/usr/local/lib/pkgconfig' PKG_CONFIG_SYSROOT_DIR='%s';"
                 "cc %s $(pkg-config --cflags upgate-plugin) "
                 "-DUG_PLUGIN_PATH=\"\\\"$(pkg-config --variable=plugin upgate-plugin)\\\"\" "
                 "-o '%s/host' '%s/tests/install/host.c' $(pkg-config --libs upgate-plugin) 2>&1;"
                 "LD_LIBRARY_PATH='%s/usr/local/lib' '%s/host' '%s' 2>&1",
                 d, d, cc_flags(), dir, iu_root_dir(), d, dir, policy);
    cr_assert_eq(rc, 0, "the out-of-tree host failed:\n%s", out);
    cr_expect(strstr(out, "host ok"), "%s", out);
}

/* A tracker on libupgate-host, built from the installed header and library
 * alone: once against the shared object (NEEDED libupgate-host.so.1), once
 * against the archive with pkg-config's --static flags (Libs.private is
 * all it needs). Each loads the installed plugin, hands the adapter a
 * foreign and a malformed upgate datagram, asks its control, closes. */
Test(install, out_of_tree_tracker_links_libupgate_host)
{
    const char *dir = tu_tmpdir();
    const char *d = iu_destdir_install(dir);
    char bin[512], etc[512], out[OUT_MAX], policy[600], text[1024];
    iu_pathf(bin, sizeof bin, "%s/usr/local/bin", d);
    iu_pathf(etc, sizeof etc, "%s/hostetc", dir);
    iu_first_run(dir, bin, etc, 9);
    iu_pathf(policy, sizeof policy, "%s/policy.yaml", etc);
    int n = snprintf(text, sizeof text,
                     "keys: {hint: keys/hint.key, issuers: [keys/issuer.pub]}\nrelease: releases/current.manifest\n"
                     "targets: [\"<2.0\"]\nstate: %s/state\nstages:\n  - {name: all}\n", dir);
    tu_write_file(policy, text, (size_t)n);
    int rc = iu_run(out, sizeof out,
                 "set -e; export PKG_CONFIG_PATH='%s/usr/local/lib/pkgconfig' PKG_CONFIG_SYSROOT_DIR='%s';"
                 "P=\"-DUG_PLUGIN_PATH=\\\"$(pkg-config --variable=plugin upgate-plugin)\\\"\";"
                 "cc %s $(pkg-config --cflags upgate-plugin) \"$P\" -o '%s/adapter' '%s/tests/install/adapter.c' "
                 "$(pkg-config --libs upgate-plugin) 2>&1;"
                 "readelf -d '%s/adapter' | grep -q 'NEEDED.*\\[libupgate-host.so.1\\]';"
                 "LD_LIBRARY_PATH='%s/usr/local/lib' '%s/adapter' '%s' '%s/a.ctl' 2>&1;"
                 "cc %s $(pkg-config --cflags upgate-plugin) \"$P\" -o '%s/adapter-static' '%s/tests/install/adapter.c' "
                 "$(pkg-config --static --libs upgate-plugin | sed 's/-lupgate-host/-l:libupgate-host.a/') 2>&1;"
                 "! readelf -d '%s/adapter-static' | grep -q 'NEEDED.*libupgate-host';"
                 "'%s/adapter-static' '%s' '%s/b.ctl' 2>&1",
                 d, d, cc_flags(), dir, iu_root_dir(), dir, d, dir, policy, dir, cc_flags(), dir, iu_root_dir(), dir, dir,
                 policy, dir);
    cr_assert_eq(rc, 0, "the out-of-tree tracker failed:\n%s", out);
    const char *first = strstr(out, "adapter ok"), *second = first ? strstr(first + 1, "adapter ok") : NULL;
    cr_expect(first && second, "both builds ran: %s", out);
    cr_expect(strstr(out, "plugin upgate " UG_VERSION), "the installed plugin: %s", out);
}

/* upgate-node(8)'s FIRST RUN step 5 as written, and upgate-sim, from the
 * installed tree: no --plugin, the programs find the one installed. */
Test(install, installed_programs_find_the_plugin_without_flags)
{
    const char *dir = tu_tmpdir();
    iu_prefix_install(dir);
    char etc[512], bin[512], out[OUT_MAX];
    iu_pathf(etc, sizeof etc, "%s/etc/upgate", dir);
    iu_pathf(bin, sizeof bin, "%s/usr/bin", dir);
    iu_first_run(dir, bin, etc, 9);
    int rc = iu_run(out, sizeof out,
                 "set -e; cd '%s'; cp policy.yaml.example policy.yaml; '%s/usr/sbin/upgate-node' --check "
                 "--policy policy.yaml 2>&1",
                 etc, dir);
    cr_assert_eq(rc, 0, "upgate-node --check without --plugin:\n%s", out);
    rc = iu_run(out, sizeof out,
             "cd '%s' && '%s/upgate-sim' --policy policy.yaml --peers 100 --days 1 --versions 1.0.0=1 2>&1", etc,
             bin);
    cr_assert_eq(rc, 0, "upgate-sim without --plugin:\n%s", out);
}

Test(install, out_of_tree_client_links_libupgate)
{
    if (!have_client_lib()) {
        note("include/upgate/client.h is not in this tree: the out-of-tree client is skipped");
        cr_skip_test("include/upgate/client.h is not in this tree: libupgate is merged later");
    }
    const char *dir = tu_tmpdir();
    const char *d = iu_destdir_install(dir);
    char out[OUT_MAX];
    int rc = iu_run(out, sizeof out,
                 "set -e; export PKG_CONFIG_PATH='%s/usr/local/lib/pkgconfig' PKG_CONFIG_SYSROOT_DIR='%s';"
                 "for c in client/example.c tests/install/version.c; do"
                 "  cc %s $(pkg-config --cflags upgate) -o \"%s/$(basename $c .c)\" \"%s/$c\" $(pkg-config --libs upgate) 2>&1;"
                 "done;"
                 "readelf -d '%s/example' | grep -q 'NEEDED.*\\[libupgate.so.1\\]';"
                 "echo \"pc $(pkg-config --modversion upgate)\";"
                 "LD_LIBRARY_PATH='%s/usr/local/lib' '%s/version' 2>&1",
                 d, d, cc_flags(), dir, iu_root_dir(), dir, d, dir);
    cr_assert_eq(rc, 0, "the out-of-tree client failed:\n%s", out);
    char pc[64] = "", lib[64] = "";
    const char *a = strstr(out, "pc "), *b = strstr(out, "libupgate ");
    cr_assert(a && b, "%s", out);
    sscanf(a, "pc %63s", pc);
    sscanf(b, "libupgate %63s", lib);
    cr_expect_str_eq(pc, lib, "upgate.pc says %s, the library %s", pc, lib);
}

/* ---- man pages ------------------------------------------------------ */

/* The text of one section (.Sh NAME up to the next .Sh) of an mdoc page. */
static char *section(const char *page, const char *name)
{
    char head[64];
    iu_pathf(head, sizeof head, "\n.Sh %s\n", name);
    const char *s = strstr(page, head);
    if (!s)
        return NULL;
    s += strlen(head);
    const char *e = strstr(s, "\n.Sh ");
    size_t n = e ? (size_t)(e - s) : strlen(s);
    char *out = malloc(n + 1);
    cr_assert(out);
    memcpy(out, s, n);
    out[n] = 0;
    return out;
}

Test(install, man_pages_lint_clean_and_cover_every_flag)
{
    const char *dir = tu_tmpdir();
    const char *d = iu_destdir_install(dir);
    static const char *const pages[] = {"man1/upgate-keys.1", "man1/upgate-peer.1",   "man1/upgate-sim.1",
                                        "man3/libupgate.3",   "man3/upgate-plugin.3", "man5/upgate.policy.5",
                                        "man3/libupgate-host.3",
                                        "man8/upgate-ctl.8",  "man8/upgate-node.8",   NULL};
    char out[OUT_MAX], path[1024];
    for (int i = 0; pages[i]; i++) {
        iu_pathf(path, sizeof path, "%s/usr/local/share/man/%s", d, pages[i]);
        int rc = iu_run(out, sizeof out, "mandoc -T lint -W warning '%s' 2>&1", path);
        cr_expect(rc == 0 && !out[0], "mandoc -T lint: %s:\n%s", pages[i], out);
    }
    /* every flag a program's --help names is in its page's OPTIONS section */
    static const struct {
        const char *prog, *page;
    } progs[] = {{"upgate-node", "man8/upgate-node.8"}, {"upgate-ctl", "man8/upgate-ctl.8"},
                 {"upgate-keys", "man1/upgate-keys.1"}, {"upgate-peer", "man1/upgate-peer.1"},
                 {"upgate-sim", "man1/upgate-sim.1"}};
    for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
        if (!built(progs[i].prog)) {
            note("%s is not built in this tree: its page is not checked against --help", progs[i].prog);
            continue;
        }
        iu_pathf(path, sizeof path, "%s/usr/local/share/man/%s", d, progs[i].page);
        char *page = slurp(path), *opts = section(page, "OPTIONS");
        cr_assert(opts, "%s has no OPTIONS section", progs[i].page);
        cr_assert_eq(iu_run(out, sizeof out, "'%s/%s' --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u",
                         tu_build_dir(), progs[i].prog), 0);
        for (char *save = NULL, *flag = strtok_r(out, "\n", &save); flag; flag = strtok_r(NULL, "\n", &save)) {
            char mdoc[96];
            iu_pathf(mdoc, sizeof mdoc, "Fl \\-%s", flag + 2);
            const char *hit = strstr(opts, mdoc);
            size_t len = strlen(mdoc);
            while (hit && (hit[len] == '-' || (hit[len] >= 'a' && hit[len] <= 'z')))
                hit = strstr(hit + 1, mdoc); /* --no is not --no-foo */
            cr_expect(hit, "%s --help names %s, which its OPTIONS section does not", progs[i].prog, flag);
        }
        free(opts);
        free(page);
    }
}

/* ---- systemd units -------------------------------------------------- */

Test(install, units_verify_and_score_ok_offline)
{
    const char *dir = tu_tmpdir();
    iu_prefix_install(dir);
    char out[OUT_MAX];
    static const char *const units[] = {"upgate-node.service", "upgate-node@.service"};
    for (int i = 0; i < 2; i++) {
        /* verify also runs man(1) on every Documentation= page: the installed ones */
        int rc = iu_run(out, sizeof out, "MANPATH='%s/usr/share/man' systemd-analyze verify '%s/usr/lib/systemd/system/%s' 2>&1",
                     dir, dir, units[i]);
        cr_expect(rc == 0 && !out[0], "systemd-analyze verify %s:\n%s", units[i], out);
        rc = iu_run(out, sizeof out,
                 "systemd-analyze security --offline=true --threshold=20 '%s/usr/lib/systemd/system/%s' 2>&1",
                 dir, units[i]);
        const char *lvl = strstr(out, "Overall exposure level");
        cr_assert(lvl, "no exposure level in:\n%s", out);
        const char *colon = strchr(lvl, ':');
        double exposure = colon ? strtod(colon + 1, NULL) : 99;
        cr_expect(rc == 0 && exposure <= 2.0, "%s: exposure %.1f, want at most 2.0:\n%s", units[i], exposure, out);
    }
}

/* ---- the unit's ExecStart line, run by hand ------------------------- */

static void sleep_ms(long ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000}, NULL);
}

/* The unit's ExecStart with its --listen ports moved to loopback port 0, as argv. */
static char **exec_start(const char *unit_path, char *buf, size_t cap)
{
    char *unit = slurp(unit_path);
    const char *s = strstr(unit, "\nExecStart=");
    cr_assert(s, "no ExecStart in %s", unit_path);
    s += strlen("\nExecStart=");
    size_t n = strcspn(s, "\n");
    cr_assert_lt(n, cap);
    memcpy(buf, s, n);
    buf[n] = 0;
    free(unit);
    static char *argv[64];
    int argc = 0;
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        cr_assert_lt(argc, 62);
        if (argc > 0 && !strcmp(argv[argc - 1], "--listen"))
            w = w[0] == '[' ? "[::1]:0" : "127.0.0.1:0";
        argv[argc++] = w;
    }
    /* the sandbox must also hold with the optional metrics endpoint on */
    if (iu_run(NULL, 0, "'%s' --help 2>&1 | grep -q -- --metrics", argv[0]) == 0) {
        argv[argc++] = "--metrics";
        argv[argc++] = "127.0.0.1:0";
    }
    argv[argc] = NULL;
    return argv;
}

/* Reads one line from the node's stdout (at most 10 s). */
static void read_line(char *line, size_t cap)
{
    size_t got = 0;
    struct pollfd p = {.fd = R.out, .events = POLLIN};
    while (got + 1 < cap && poll(&p, 1, 10000) > 0) {
        ssize_t n = read(R.out, line + got, 1);
        cr_assert_gt(n, 0, "node exited before its ready line");
        if (line[got++] == '\n')
            break;
    }
    line[got] = 0;
}

/* Waits (at most 10 s) for a datagram on the notify socket holding want. */
static bool notified(const char *want)
{
    for (int i = 0; i < 50; i++) {
        struct pollfd p = {.fd = R.notify, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        char msg[4096];
        ssize_t n = recv(R.notify, msg, sizeof msg - 1, 0);
        if (n <= 0)
            continue;
        msg[n] = 0;
        if (strstr(msg, want))
            return true;
    }
    return false;
}

/* uid 1001's credential is first_run's client.cred; another uid's is
 * made here, client<uid>.cred. */
static int peer(const char *dir, unsigned port, const char *uid, const char *ver, char *out, size_t cap)
{
    bool first = strcmp(uid, "1001") == 0;
    return iu_run(out, cap,
               "cd '%s/pub' && { [ %d = 1 ] || [ -f client%s.cred ] || '%s/usr/bin/upgate-keys' cred --issuer "
               "'%s/etc/upgate/keys/issuer.key' --uid %s --pub client.pub --ttl 86400 --out client%s.cred; } && "
               "'%s/usr/bin/upgate-peer' --tracker 127.0.0.1:%u --uid %s --version %s "
               "--key client.key --cred client%s.cred --hint-pub '%s/etc/upgate/keys/hint.pub' "
               "--release-pub release.pub --no --timeout 10 </dev/null 2>&1",
               dir, first, uid, dir, dir, uid, uid, dir, port, uid, ver, first ? "" : uid, dir);
}

Test(install, exec_start_serves_the_example_policy)
{
    const char *dir = tu_tmpdir();
    iu_prefix_install(dir);
    char etc[512], bin[512], unit[512], path[600], out[OUT_MAX];
    iu_pathf(etc, sizeof etc, "%s/etc/upgate", dir);
    iu_pathf(bin, sizeof bin, "%s/usr/bin", dir);
    iu_pathf(unit, sizeof unit, "%s/usr/lib/systemd/system/upgate-node.service", dir);
    unsigned mirror;
    iu_pathf(path, sizeof path, "%s/pub", dir);
    cr_assert_eq(mkdir(path, 0700), 0);
    R.httpd = tu_httpd(path, &mirror);
    iu_first_run(dir, bin, etc, mirror);
    /* as systemd would: the policy from the example, the StateDirectory and RuntimeDirectory made */
    cr_assert_eq(iu_run(NULL, 0, "cp '%s/policy.yaml.example' '%s/policy.yaml' && install -d -m 0750 '%s/var/lib/upgate'",
                     etc, etc, dir), 0);
    char rundir[600];
    iu_pathf(rundir, sizeof rundir, "%s/run/upgate", dir);
    cr_assert_eq(iu_run(NULL, 0, "install -d -m 0755 '%s'", rundir), 0);

    char line[2048];
    char **argv = exec_start(unit, line, sizeof line);
    bool notify = iu_run(NULL, 0, "grep -q '^Type=notify$' '%s'", unit) == 0;
    bool trace = !iu_san_build(); /* ASan's runtime makes system calls of its own */
    if (!trace)
        note("sanitizer build: the node's sandbox trace is checked in the plain build only");
    char notify_path[600], trace_path[600], err_path[600];
    iu_pathf(err_path, sizeof err_path, "%s/node.err", dir);
    iu_pathf(notify_path, sizeof notify_path, "%s/notify", dir);
    iu_pathf(trace_path, sizeof trace_path, "%s/node.trace", dir);
    if (notify) {
        R.notify = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        iu_pathf(a.sun_path, sizeof a.sun_path, "%s", notify_path);
        cr_assert_eq(bind(R.notify, (struct sockaddr *)&a, sizeof a), 0, "bind %s", notify_path);
    } else {
        note("upgate-node does not link libsystemd: the unit is Type=exec and sd_notify is not checked");
    }
    int p[2];
    cr_assert_eq(pipe(p), 0);
    R.node = fork();
    cr_assert_neq(R.node, -1);
    if (R.node == 0) {
        dup2(p[1], 1);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (err >= 0)
            dup2(err, 2);
        if (notify)
            setenv("NOTIFY_SOCKET", notify_path, 1);
        setenv("RUNTIME_DIRECTORY", rundir, 1);
        if (trace) {
            char *sargv[80] = {"/usr/bin/strace", "-f", "-qq", "-o", trace_path};
            int k = 5;
            for (int i = 0; argv[i] && k < 78; i++)
                sargv[k++] = argv[i];
            sargv[k] = NULL;
            execv(sargv[0], sargv);
        } else {
            execv(argv[0], argv);
        }
        _exit(127);
    }
    close(p[1]);
    R.out = p[0];
    char ready[1024];
    read_line(ready, sizeof ready);
    const char *at = strstr(ready, "127.0.0.1:");
    cr_assert(strstr(ready, "ready") && at, "no ready line: %s", ready);
    unsigned port = (unsigned)strtoul(at + 10, NULL, 10);
    pid_t node = R.node;
    if (trace) { /* signals go to the node, not to strace */
        char children[128], kids[64] = "";
        iu_pathf(children, sizeof children, "/proc/%d/task/%d/children", (int)R.node, (int)R.node);
        FILE *f = fopen(children, "r");
        cr_assert(f && fgets(kids, sizeof kids, f), "cannot find the traced node");
        fclose(f);
        node = R.traced = (pid_t)strtol(kids, NULL, 10);
        cr_assert_gt(node, 0);
    }
    if (notify)
        cr_expect(notified("READY=1"), "no READY=1 on NOTIFY_SOCKET");
    int rc;

    const char *metrics = strstr(ready, "metrics on 127.0.0.1:");
    if (metrics) {
        rc = iu_run(out, sizeof out, "python3 -c 'import urllib.request as u; "
                 "print(u.urlopen(\"http://127.0.0.1:%u/metrics\", timeout=10).read().decode())' 2>&1",
                 (unsigned)strtoul(metrics + 21, NULL, 10));
        cr_expect(rc == 0 && strstr(out, "# TYPE"), "GET /metrics: %s", out);
    }

    /* the canary stage offers the release; other versions are not targeted */
    rc = peer(dir, port, "1001", "1.4.0", out, sizeof out);
    cr_expect(rc == 0 && strstr(out, "upgrade offered: version 1.4.0 -> 2.0.0"), "peer 1001: %s", out);
    rc = peer(dir, port, "1003", "2.1.0", out, sizeof out);
    cr_expect(rc == 0 && strstr(out, "no upgrade now"), "peer at 2.1.0: %s", out);

    if (have_client_lib()) { /* libupgate(3)'s example, on the installed library: an offer, the package verified */
        rc = iu_run(out, sizeof out,
                 "set -e; export PKG_CONFIG_PATH='%s/usr/lib/pkgconfig'; cd '%s/pub';"
                 "cc %s $(pkg-config --cflags upgate) -o example '%s/client/example.c' "
                 "$(pkg-config --libs upgate) -Wl,-rpath,'%s/usr/lib' 2>&1;"
                 "./example 127.0.0.1 %u 1001 1.4.0 client.key client.cred '%s/keys/hint.pub' release.pub got.tgz 2>&1;"
                 "cmp app.tgz got.tgz",
                 dir, dir, cc_flags(), iu_root_dir(), dir, port, etc);
        cr_expect(rc == 0 && strstr(out, "offered 2.0.0: 4000 bytes") && strstr(out, "verified and saved to got.tgz"),
                  "libupgate example: %s", out);
    }
    if (built("upgate-ctl")) { /* the control socket is where the man page says */
        rc = iu_run(out, sizeof out, "RUNTIME_DIRECTORY='%s' '%s/usr/sbin/upgate-ctl' --policy '%s/policy.yaml' status 2>&1",
                 rundir, dir, etc);
        cr_expect_eq(rc, 0, "upgate-ctl --policy status: %s", out);
        iu_pathf(path, sizeof path, "%s/var/lib/upgate/upgate.ctl", dir);
        cr_expect(exists(path), "no control socket at %s", path);
    }

    /* systemctl reload: SIGHUP */
    kill(node, SIGHUP);
    if (notify)
        cr_expect(notified("RELOADING=1"), "no RELOADING=1 after SIGHUP");
    sleep_ms(300);
    /* 1001 upgraded above (the libupgate example) and is back at 1.4.0:
     * a rollback, not offered 2.0.0 again (protocol rule 11); 1002 is */
    rc = peer(dir, port, "1002", "1.4.0", out, sizeof out);
    cr_expect(rc == 0 && strstr(out, "upgrade offered"), "after reload: %s", out);

    kill(node, SIGTERM);
    if (notify)
        cr_expect(notified("STOPPING=1"), "no STOPPING=1 after SIGTERM");
    int st;
    cr_assert_eq(waitpid(R.node, &st, 0), R.node);
    R.node = R.traced = 0;
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the node did not stop cleanly (status %d)", st);
    iu_pathf(path, sizeof path, "%s/var/lib/upgate/data.mdb", dir);
    cr_expect(exists(path), "no grants in the StateDirectory");

    if (trace) { /* everything it did fits the unit's sandbox */
        rc = iu_run(out, sizeof out,
                 "systemd-analyze syscall-filter > '%s/groups' 2>/dev/null;"
                 "python3 '%s/tests/install/trace_check.py' '%s' '%s' '%s/var/lib/upgate' '%s/groups' '%s' 2>&1",
                 dir, iu_root_dir(), trace_path, unit, dir, dir, rundir);
        cr_expect_eq(rc, 0, "upgate-node does what its unit forbids:\n%s", out);
    }
}

/* ---- make check-deps ---------------------------------------------------- */

/* `make` names a library that is missing, with its Debian package, instead
 * of failing at the link: here libsodium, made missing by a libsodium.pc
 * earlier on PKG_CONFIG_PATH that requires a module nobody has. */
Test(install, check_deps_names_a_missing_library_and_its_package)
{
    static char out[OUT_MAX];
    const char *dir = tu_tmpdir();
    int rc = iu_run(out, sizeof out, "cd '%s' && env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make --no-print-directory -s "
                 "check-deps 2>&1", iu_root_dir());
    cr_assert_eq(rc, 0, "make check-deps on this machine: %s", out);
    cr_expect_str_empty(out, "check-deps is quiet when nothing is missing");
    char pc[600];
    iu_pathf(pc, sizeof pc, "%s/libsodium.pc", dir);
    static const char fake[] = "Name: libsodium\nDescription: stand-in\nVersion: 1.0.18\n"
                               "Requires: ug-no-such-module\n";
    tu_write_file(pc, fake, sizeof fake - 1);
    rc = iu_run(out, sizeof out, "cd '%s' && PKG_CONFIG_PATH='%s' env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS "
             "make --no-print-directory -s check-deps 2>&1", iu_root_dir(), dir);
    cr_assert_neq(rc, 0, "check-deps passed with libsodium missing: %s", out);
    cr_expect(strstr(out, "ug-no-such-module"), "pkg-config's own words: %s", out);
    cr_expect(strstr(out, "make: missing libraries: libsodium (Debian: libsodium-dev); make deps installs them"),
              "names the library and its package: %s", out);
    cr_expect(!strstr(out, "jansson"), "names only what is missing: %s", out);
}

/* ---- debian/ -------------------------------------------------------- */

/* `make deb` on a fresh machine installs DEB_PKGS and DEB_PKGS_DEB, then
 * dpkg-buildpackage checks Build-Depends: every one must be in those lists. */
Test(install, make_deb_installs_every_build_dependency)
{
    char pkgs[8192], deps[8192];
    int rc = iu_run(pkgs, sizeof pkgs,
                 "cd '%s' && env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make --no-print-directory -s "
                 "--eval 'ug-print-pkgs: ; @echo $(DEB_PKGS) $(DEB_PKGS_DEB)' ug-print-pkgs 2>&1",
                 iu_root_dir());
    cr_assert_eq(rc, 0, "%s", pkgs);
    /* Build-Depends, one name a line; debhelper-compat is debhelper's */
    rc = iu_run(deps, sizeof deps,
             "sed -n '/^Build-Depends:/,/^[A-Z]/p' '%s/debian/control' | sed '$d; s/^Build-Depends://' | "
             "tr ',' '\\n' | sed 's/[[:space:]]*([^)]*)//; s/^[[:space:]]*//; s/[[:space:]]*$//' | "
             "sed 's/^debhelper-compat$/debhelper/' | grep -v '^$'",
             iu_root_dir());
    cr_assert_eq(rc, 0, "cannot read Build-Depends");
    char padded[8200];
    iu_pathf(padded, sizeof padded, " %s ", pkgs);
    for (char *c = padded; *c; c++)
        if (*c == '\n')
            *c = ' ';
    int n = 0;
    for (char *save = NULL, *dep = strtok_r(deps, "\n", &save); dep; dep = strtok_r(NULL, "\n", &save), n++) {
        char word[128];
        iu_pathf(word, sizeof word, " %s ", dep);
        cr_expect(strstr(padded, word), "Build-Depends names %s, which make deb does not install", dep);
    }
    cr_expect_gt(n, 5, "too few Build-Depends read: %d", n);
}

/* The packages carry the version the programs print. */
Test(install, debian_version_is_the_programs_version)
{
    char ver[64] = "", out[4096];
    cr_assert_eq(iu_run(ver, sizeof ver, "dpkg-parsechangelog -l '%s/debian/changelog' -S Version 2>/dev/null || "
                     "sed -n '1s/^[^(]*(\\([^)]*\\).*/\\1/p' '%s/debian/changelog'", iu_root_dir(), iu_root_dir()), 0);
    ver[strcspn(ver, "-\n")] = 0; /* upstream part */
    cr_assert(ver[0], "no version in debian/changelog");
    static const char *const progs[] = {"upgate-node", "upgate-ctl", "upgate-keys", "upgate-peer", "upgate-sim"};
    int checked = 0;
    for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
        if (!built(progs[i]) || iu_run(out, sizeof out, "'%s/%s' --version 2>&1", tu_build_dir(), progs[i]) != 0)
            continue;
        checked++;
        cr_expect(strstr(out, ver), "%s --version says %s; debian/changelog says %s", progs[i], out, ver);
    }
    if (!checked)
        note("no program has --version in this tree: the package version is not checked against them");
}

/* ---- docs ----------------------------------------------------------- */

/* upgate.policy(5) and the other pages point to docs/ (every .md): debian/upgate-tracker.docs
 * (dh_installdocs, globs allowed) puts every one under /usr/share/doc/upgate-tracker/. */
Test(install, tracker_package_ships_every_doc)
{
    char path[1024], shipped[OUT_MAX] = "\n";
    iu_pathf(path, sizeof path, "%s/debian/upgate-tracker.docs", iu_root_dir());
    char *list = slurp(path);
    for (char *save = NULL, *line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        glob_t g;
        iu_pathf(path, sizeof path, "%s/%s", iu_root_dir(), line);
        cr_assert_eq(glob(path, 0, NULL, &g), 0, "upgate-tracker.docs: %s matches no file", line);
        for (size_t i = 0; i < g.gl_pathc; i++) {
            const char *base = strrchr(g.gl_pathv[i], '/');
            size_t used = strlen(shipped);
            snprintf(shipped + used, sizeof shipped - used, "%s\n", base ? base + 1 : g.gl_pathv[i]);
        }
        globfree(&g);
    }
    free(list);
    glob_t docs;
    iu_pathf(path, sizeof path, "%s/docs/*.md", iu_root_dir());
    cr_assert_eq(glob(path, 0, NULL, &docs), 0, "no docs/*.md");
    for (size_t i = 0; i < docs.gl_pathc; i++) {
        char want[300];
        iu_pathf(want, sizeof want, "\n%s\n", strrchr(docs.gl_pathv[i], '/') + 1);
        cr_expect(strstr(shipped, want), "upgate-tracker does not ship docs/%s", want + 1);
    }
    cr_expect_gt(docs.gl_pathc, 5, "too few docs read");
    globfree(&docs);
    /* a package `make deb` built from this tree has them where the pages say */
    char out[OUT_MAX];
    if (iu_run(out, sizeof out, "dpkg-deb -c \"$(ls -t '%s'/deb/upgate-tracker_*.deb 2>/dev/null | head -n 1)\" 2>/dev/null",
            tu_build_dir()) != 0) {
        note("no build/deb/upgate-tracker_*.deb (make deb): its contents are not checked");
        return;
    }
    /* dh_compress gzips those over 4 kB, as upgate.policy(5) names fleet.md.gz */
    cr_expect(strstr(out, "./usr/share/doc/upgate-tracker/fleet.md.gz\n"), "the .deb lacks fleet.md.gz:\n%s", out);
    cr_expect(strstr(out, "./usr/share/doc/upgate-tracker/control.md"), "the .deb lacks control.md:\n%s", out);
}

/* Every relative link of the README (and of docs/) names a file of the tree
 * and, with #anchor, a heading of it (tests/doc_links.py); the README's
 * pointer to its "Operating a rollout" section is one of them. */
Test(install, readme_and_docs_links_resolve)
{
    char out[OUT_MAX];
    int rc = iu_run(out, sizeof out, "cd '%s' && /usr/bin/python3 tests/doc_links.py README.md docs/*.md 2>&1", iu_root_dir());
    cr_expect_eq(rc, 0, "broken links:\n%s", out);
    iu_pathf(out, sizeof out, "%s/README.md", iu_root_dir());
    char *readme = slurp(out);
    cr_expect(strstr(readme, "](#operating-a-rollout)"), "the README does not link its Operating a rollout section");
    cr_expect(strstr(readme, "\n## Operating a rollout\n"), "the README has no Operating a rollout section");
    free(readme);
}

/* libupgate(3)'s SYNOPSIS has every function libupgate.so exports (nm -D),
 * and exports every function it lists. */
Test(install, libupgate_synopsis_lists_every_export)
{
    char lib[1024], out[OUT_MAX];
    iu_pathf(lib, sizeof lib, "%s/libupgate.so", tu_build_dir());
    if (!have_client_lib() || !exists(lib)) {
        note("no libupgate.so in this tree: libupgate(3) is not checked");
        return;
    }
    cr_assert_eq(iu_run(out, sizeof out, "nm -D --defined-only '%s' | awk '$2 == \"T\" { sub(/@.*/, \"\", $3); print $3 }' "
                     "| sort -u", lib), 0, "nm -D %s: %s", lib, out);
    iu_pathf(lib, sizeof lib, "%s/man/libupgate.3.in", iu_root_dir());
    char *page = slurp(lib), *syn = section(page, "SYNOPSIS");
    cr_assert(syn, "libupgate(3) has no SYNOPSIS");
    int n = 0;
    for (char *save = NULL, *sym = strtok_r(out, "\n", &save); sym; sym = strtok_r(NULL, "\n", &save), n++) {
        char fn[200], fnv[200];
        iu_pathf(fn, sizeof fn, "\n.Fn %s ", sym);
        iu_pathf(fnv, sizeof fnv, "\n.Fn %s\n", sym);
        cr_expect(strstr(syn, fn) || strstr(syn, fnv), "libupgate.so exports %s; libupgate(3)'s SYNOPSIS lacks it", sym);
    }
    cr_expect_gt(n, 20, "too few exports read: %d", n);
    /* and the other way: no function listed that a program cannot link */
    for (const char *p = strstr(syn, "\n.Fn "); p; p = strstr(p + 1, "\n.Fn ")) {
        char name[128], cmd[300];
        if (sscanf(p, "\n.Fn %127s", name) != 1)
            continue;
        iu_pathf(cmd, sizeof cmd, "nm -D --defined-only '%s/libupgate.so' | grep -q ' T %s@'", tu_build_dir(), name);
        char ignored[64];
        cr_expect_eq(tu_run(cmd, ignored, sizeof ignored), 0, "libupgate(3) lists %s; libupgate.so does not export it",
                     name);
    }
    free(syn);
    free(page);
}
