/* Runs tests/httpserv.py for a test: started with a pipe for its "port N" line, stopped by PID. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpserv.h"

void hs_start(hs_server *s, const char *root, const char *name, const char *flags)
{
    const char *top = getenv("UG_ROOT");
    char cmd[2048];
    memset(s, 0, sizeof *s);
    cr_assert_lt((size_t)snprintf(s->log, sizeof s->log, "%s/../%s.log", root, name), sizeof s->log);
    cr_assert_lt((size_t)snprintf(cmd, sizeof cmd, "exec python3 %s/tests/httpserv.py --root '%s' --log '%s' %s",
                                  top && *top ? top : ".", root, s->log, flags ? flags : ""),
                 sizeof cmd);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        close(p[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    s->pid = pid;
    char line[64] = "";
    size_t got = 0;
    while (got < sizeof line - 1 && !strchr(line, '\n')) {
        struct pollfd q = {.fd = p[0], .events = POLLIN};
        if (poll(&q, 1, 10000) <= 0)
            break;
        ssize_t n = read(p[0], line + got, sizeof line - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        line[got] = 0;
    }
    close(p[0]);
    if (sscanf(line, "port %d", &s->port) != 1 || s->port <= 0) {
        hs_stop(s);
        cr_assert_fail("tests/httpserv.py did not start (said \"%s\")", line);
    }
}

void hs_stop(hs_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = 0;
}

void hs_log(const hs_server *s, char *buf, size_t cap)
{
    buf[0] = 0;
    FILE *f = fopen(s->log, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
}
