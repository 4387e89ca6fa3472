/* make bench, memory rows: a restarted 2-worker upgate-node holding 1M and 10M grants, its peak RSS and load time.
 *
 * The state folders are made once with the store's own API (build/bench-state/N,
 * reused while their store.id is there) and hold N grants of rollout
 * "default", release 2.0.0, stage "r". The node is started on them with
 * --workers 2; the load time is from exec to its ready line (the store is
 * loaded before the node says it is ready); the peak is VmHWM once it is
 * ready, the most the node held over its whole start, and VmRSS then what it
 * holds. The 1M row then sends a HELLO of each of 300k granted uids (1..300000,
 * granted first by fill) through upgate-load --warm: 300k sticky re-offers,
 * whose credentials fill the node's caches; the RSS after them is the steady
 * state. UG_BENCH_ONLY=1m or 10m runs that row alone (the 1M row's re-offers
 * take minutes on a busy machine); the first argument names the build folder
 * (its upgate-node, upgate.so, upgate-load and bench-state), so a folder
 * holding an older upgate.so beside links to the rest compares two builds on
 * the same states. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "util/mix.h"
#include "store/store.h"
#include "bench_stamp.h"

static double mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench-mem: %s: %s\n", what, errno ? strerror(errno) : "failed");
    exit(1);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        die(path);
}

/* Keys, a manifest for 2.0.0 and a policy naming the state folder. */
static void write_tracker(const char *dir)
{
    uint8_t seed[UG_SEED_LEN], sk[UG_SK_LEN], pk[UG_PK_LEN], rsk[UG_SK_LEN], rpk[UG_PK_LEN];
    char path[1100], why[128];
    const char *names[] = {"hint", "issuer", "client"};
    for (int i = 0; i < 3; i++) {
        randombytes_buf(seed, sizeof seed);
        crypto_sign_seed_keypair(pk, sk, seed);
        snprintf(path, sizeof path, "%s/%s.key", dir, names[i]);
        if (ug_key_write(path, true, seed, pk, why, sizeof why) != 0)
            die(why);
        snprintf(path, sizeof path, "%s/%s.pub", dir, names[i]);
        if (ug_key_write(path, false, pk, pk, why, sizeof why) != 0)
            die(why);
    }
    crypto_sign_keypair(rpk, rsk);
    ug_manifest m = {.size = 1000, .exp = (uint64_t)time(NULL) + 365 * 86400, .nurls = 1};
    if (ug_version_parse(&m.to, "2.0.0", 5) != 0)
        die("version");
    snprintf(m.urls[0], sizeof m.urls[0], "http://127.0.0.1:1/a.bin");
    ug_kid(m.kid, rpk);
    uint8_t body[UG_OBJ_MAX], obj[UG_OBJ_MAX];
    size_t blen, olen;
    if (ug_manifest_encode_body(body, sizeof body, &blen, &m) != 0 ||
        ug_signed_encode(obj, sizeof obj, &olen, UG_CTX_RELEASE, body, blen, rsk) != 0)
        die("manifest");
    snprintf(path, sizeof path, "%s/release.manifest", dir);
    write_file(path, obj, olen);
    static const char policy[] = "keys: {hint: hint.key, issuers: [issuer.pub]}\nrelease: release.manifest\n"
                                 "state: state\ntargets: [\"1.4.0\"]\nstages:\n  - {name: r}\n";
    snprintf(path, sizeof path, "%s/policy.yaml", dir);
    write_file(path, policy, sizeof policy - 1);
}

#define REOFFERS 300000u

/* n grants committed as a tracker would (in batches): uids 1..REOFFERS
 * (the re-offers' peers), then scattered ones. */
static void fill(const char *dir, uint64_t n)
{
    char state[1100], err[512];
    snprintf(state, sizeof state, "%s/state", dir);
    ug_store_opts o = {.dir = state, .nworkers = 1, .now = (uint64_t)time(NULL)};
    ug_store *s = ug_store_open(&o, err, sizeof err);
    ug_scope *sc = s ? ug_store_scope(s, "default", "2.0.0", err, sizeof err) : NULL;
    ug_stage_quota *q = sc ? ug_scope_quota(sc, "r", err, sizeof err) : NULL;
    if (!q) {
        fprintf(stderr, "bench-mem: %s\n", err);
        exit(1);
    }
    ug_stage_quota_set_limit(q, UG_QUOTA_UNLIMITED);
    for (uint64_t i = 1; i <= n; i++) {
        uint64_t uid = i <= REOFFERS ? i : (ug_mix64(i) & (uint64_t)UG_UID_MAX) | 1;
        (void)ug_stage_quota_grant(q, 0, uid, (uint32_t)o.now, NULL);
        if (i % 65536 == 0 && ug_store_commit(s, 0) != 0)
            die("commit");
    }
    if (ug_store_close(s, err, sizeof err) != 0) {
        fprintf(stderr, "bench-mem: %s\n", err);
        exit(1);
    }
}

/* CPU seconds (user + system) pid has used, or -1. */
static double cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    /* after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* field ("VmRSS:", "VmHWM:") of pid's status in KiB, or -1. */
static long status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, strlen(field)) == 0)
            v = strtol(line + strlen(field), NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* 300k sticky re-offers to the node on port (upgate-load --warm); its RSS
 * in KiB after them, or -1. */
static long reoffer(const char *build, const char *dir, pid_t node, unsigned port)
{
    char load[1100], target[64], peers[32];
    snprintf(load, sizeof load, "%s/upgate-load", build);
    snprintf(target, sizeof target, "127.0.0.1:%u", port);
    fflush(NULL);
    snprintf(peers, sizeof peers, "%u", REOFFERS);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(127);
        execl(load, load, "--target", target, "--mix", "sticky", "--keys", dir, "--peers", peers, "--warm",
              "--count", "1", "--seconds", "1", (char *)NULL);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return status_kib(node, "VmRSS:");
}

/* Starts the node on dir's policy; returns seconds to its ready line, or
 * -1, and its peak and current RSS in KiB after it; with steady, its RSS
 * after the re-offers (else -1). */
static double run_node(const char *build, const char *dir, long *peak, long *rss, long *steady, double *cpu)
{
    char node[1100], so[1100], policy[1100];
    snprintf(node, sizeof node, "%s/upgate-node", build);
    snprintf(so, sizeof so, "%s/upgate.so", build);
    snprintf(policy, sizeof policy, "%s/policy.yaml", dir);
    int p[2];
    if (pipe(p) != 0)
        die("pipe");
    fflush(NULL); /* a child that reopens stdout would write what is buffered */
    double t0 = mono();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        if (!freopen("/dev/null", "w", stderr))
            _exit(127);
        execl(node, node, "--listen", "127.0.0.1:0", "--workers", "2", "--plugin", so, "--policy", policy,
              (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char line[512];
    size_t len = 0;
    ssize_t got;
    while ((got = read(p[0], &line[len], 1)) == 1 && line[len] != '\n' && len + 1 < sizeof line)
        len++;
    line[len] = '\0';
    double t = mono() - t0;
    *cpu = got == 1 ? cpu_s(pid) : -1;
    struct timespec settle = {0, 200 * 1000000L};
    nanosleep(&settle, NULL);
    *peak = got == 1 ? status_kib(pid, "VmHWM:") : -1;
    *rss = got == 1 ? status_kib(pid, "VmRSS:") : -1;
    const char *at = strstr(line, "127.0.0.1:");
    unsigned port = at ? (unsigned)strtoul(at + 10, NULL, 10) : 0;
    if (*steady == 0)
        *steady = got == 1 && port ? reoffer(build, dir, pid, port) : -1;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    close(p[0]);
    return got == 1 ? t : -1;
}

static void row(const char *build, const char *root, uint64_t n, const char *label, double mib_goal, double steady_goal)
{
    char dir[600], id[700];
    snprintf(dir, sizeof dir, "%s/%llu", root, (unsigned long long)n);
    snprintf(id, sizeof id, "%s/state/store.id", dir);
    struct stat st;
    if (stat(id, &st) != 0) {
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            die(dir);
        double t0 = mono();
        write_tracker(dir);
        fill(dir, n);
        fprintf(stderr, "  (made %s with %llu grants in %.1f s)\n", dir, (unsigned long long)n, mono() - t0);
    }
    long peak = -1, rss = -1, steady = steady_goal > 0 ? 0 : -1;
    double cpu = -1;
    double t = run_node(build, dir, &peak, &rss, &steady, &cpu);
    if (t < 0 || peak < 0 || rss < 0) {
        printf("  %-44s |            |           |          |                    | %-17s | node did not start\n", label,
               "");
        return;
    }
    double mib = (double)peak / 1024;
    bool ok = mib <= mib_goal && t < 1.0;
    char goal[32], now[48];
    snprintf(goal, sizeof goal, "<= %.0f MiB, < 1 s", mib_goal);
    snprintf(now, sizeof now, "%.1f MiB after, %.2f s CPU", (double)rss / 1024, cpu);
    printf("  %-44s | %6.1f MiB | %7.2f s | %-26s | %-17s | %s\n", label, mib, t, now, goal, ok ? "ok" : "MISS");
    if (steady_goal <= 0)
        return;
    snprintf(goal, sizeof goal, "<= %.0f MiB", steady_goal);
    if (steady < 0)
        printf("  %-44s |            |           | %-26s | %-17s | upgate-load failed\n", "  RSS after 300k re-offers", "",
               goal);
    else
        printf("  %-44s | %6.1f MiB |           | %-26s | %-17s | %s\n", "  RSS after 300k re-offers",
               (double)steady / 1024, "", goal, (double)steady / 1024 <= steady_goal ? "ok" : "MISS");
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        die("libsodium");
    const char *build = argc > 1 ? argv[1] : "build";
    char root[512];
    snprintf(root, sizeof root, "%s/bench-state", build);
    if (mkdir(root, 0700) != 0 && errno != EEXIST)
        die(root);
    errno = 0;
    printf("\n");
    bench_stamp("bench-mem");
    printf("memory: a restarted 2-worker upgate-node on its state; peak RSS (VmHWM) over exec to ready, load = exec "
           "to ready, RSS once ready and the node's CPU until then\n");
    /* UG_BENCH_ONLY=1m or 10m: that row alone, while working on it */
    const char *only = getenv("UG_BENCH_ONLY");
    if (!only || strcmp(only, "1m") == 0)
        row(build, root, 1000000, "peak RSS, 1M grants, restarted 2-worker node", 64, 56);
    if (!only || strcmp(only, "10m") == 0)
        row(build, root, 10000000, "peak RSS, 10M grants, restarted 2-worker node", 512, 0);
    return 0;
}
