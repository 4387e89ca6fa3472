#!/usr/bin/env python3
"""Holds an strace of upgate-node to the sandbox its systemd unit sets up.

usage: trace_check.py TRACE UNIT STATEDIR GROUPS [RUNTIMEDIR]

TRACE is `strace -f -qq -o TRACE` of the node serving, reloading and stopping;
UNIT the installed upgate-node.service; STATEDIR the policy's state folder;
GROUPS the output of `systemd-analyze syscall-filter` (the syscall sets of the
systemd on this machine); RUNTIMEDIR the folder the run had as its
RuntimeDirectory= (writable only when the unit names one). Prints one line per
thing the unit would forbid (a system call outside SystemCallFilter=, a socket
family outside RestrictAddressFamilies=, a file created or opened for writing
outside the StateDirectory and RuntimeDirectory under ProtectSystem=strict, a
device PrivateDevices= hides, a /proc file ProcSubset=pid hides) and exits 1 if
there was any, else 0.
"""
import re
import sys

PRIVATE_DEVICES = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}


def syscall_groups(path):
    groups, cur = {}, None
    for line in open(path, encoding="utf-8"):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if not line[0].isspace() and s.startswith("@"):
            cur = groups.setdefault(s, [])
        elif cur is not None:
            cur.append(s)
    return groups


def expand(groups, name, depth=0):
    if depth > 16:
        raise SystemExit("syscall groups nest too deep at " + name)
    if not name.startswith("@"):
        return {name}
    out = set()
    for item in groups.get(name, ()):
        out |= expand(groups, item, depth + 1)
    return out


def unit_settings(path):
    """The [Service] settings, each key's lines in order (systemd semantics:
    repeated SystemCallFilter= lines accumulate)."""
    out, section = {}, None
    for line in open(path, encoding="utf-8"):
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        if s.startswith("["):
            section = s
        elif section == "[Service]" and "=" in s:
            k, v = s.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def allowed_syscalls(groups, filters):
    allow = None
    for f in filters:
        deny = f.startswith("~")
        names = set()
        for word in f.lstrip("~").split():
            names |= expand(groups, word)
        if deny:
            allow = (allow if allow is not None else expand(groups, "@known")) - names
        else:
            allow = names if allow is None else allow | names
    return allow


def calls(trace):
    """The trace's lines, a call interrupted by another thread's
    ("<unfinished ...>" then "<... NAME resumed>") joined into one line."""
    pending = {}
    for line in open(trace, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        pid = line.split(" ", 1)[0]
        if line.endswith("<unfinished ...>"):
            pending[pid] = line[: -len("<unfinished ...>")]
            continue
        m = re.match(r"^(\d+)\s+<\.\.\. [a-z0-9_]+ resumed>(.*)$", line)
        if m and m.group(1) in pending:
            yield pending.pop(m.group(1)) + m.group(2)
        else:
            yield line


CALL = re.compile(r"^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]")
STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def main():
    if len(sys.argv) not in (5, 6):
        raise SystemExit(__doc__)
    trace, unit, statedir, groups_path = sys.argv[1:5]
    statedir = statedir.rstrip("/")
    groups = syscall_groups(groups_path)
    settings = unit_settings(unit)
    runtimedir = sys.argv[5].rstrip("/") if len(sys.argv) == 6 and settings.get("RuntimeDirectory") else None
    allow = allowed_syscalls(groups, settings.get("SystemCallFilter", []))
    families = set()
    for f in settings.get("RestrictAddressFamilies", []):
        families |= set(f.split())
    problems = []

    def inside_state(path):
        for d in (statedir, runtimedir):
            if d and (path == d or path.startswith(d + "/")):
                return True
        return False

    for line in calls(trace):
        m = CALL.match(line)
        if not m:
            continue
        name = m.group(1)
        failed = re.search(r"= -1 E[A-Z]+", line) is not None
        if allow is not None and name not in allow:
            problems.append("system call %s is outside SystemCallFilter=" % name)
        if name == "socket":
            fam = line.split("(", 1)[1].split(",", 1)[0]
            if families and fam not in families:
                problems.append("socket family %s is outside RestrictAddressFamilies=" % fam)
        if failed:
            continue
        paths = STRING.findall(line)
        if name in ("openat", "open", "creat") and paths:
            path = paths[0]
            writes = re.search(r"O_(WRONLY|RDWR|CREAT|TRUNC)", line) is not None or name == "creat"
            if path.startswith("/dev/") and path not in PRIVATE_DEVICES:
                problems.append("device %s is hidden by PrivateDevices=" % path)
            elif path.startswith("/proc/") and not re.match(r"/proc/(self|thread-self|\d+)(/|$)", path):
                problems.append("%s is hidden by ProcSubset=pid" % path)
            elif writes and path.startswith("/") and not inside_state(path) and path not in PRIVATE_DEVICES:
                problems.append("%s is opened for writing outside the StateDirectory" % path)
        elif name in ("mkdir", "mkdirat", "unlink", "unlinkat", "rename", "renameat", "renameat2") and paths:
            for path in paths:
                if path.startswith("/") and not inside_state(path):
                    problems.append("%s %s is outside the StateDirectory" % (name, path))
        elif name == "bind" and "AF_UNIX" in line and paths:
            if paths[0].startswith("/") and not inside_state(paths[0]):
                problems.append("Unix socket %s is outside the StateDirectory" % paths[0])
    for p in sorted(set(problems)):
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
