#!/usr/bin/env python3
"""The layers check (issue 19): includes and calls point down, never up.

Reads the `#include "..."` lines of proto/, plugin/ and the programs, and the
calls between their .c files from the built objects (`nm`: what each object
leaves undefined, and which object defines it). Every .c, .h and .def is a
node of the graph; its edges are its includes and its calls. Fails on
  (a) a cycle holding files of two plugin folders;
  (b) an include or a call from a lower layer to a higher one: proto, then
      the plugin, then the programs; inside the plugin, a folder uses only
      the folders USES gives it;
  (c) a program (any folder but proto/ and plugin/) that includes a plugin
      header other than PROGRAM_HEADERS, or calls into a plugin object that
      is not in libugpolicy.a;
  (d) a function of plugin/ or of a program over MAX_LINES lines (from its
      opening brace to its closing one, by a scan that skips comments,
      strings and preprocessor lines).
Prints the graph's numbers beside those measured on f9742f5 (BEFORE), in two
views: this one (every file a node) and the issue's (see issue_view).

  python3 tests/layers.py [--root DIR] [--obj BUILD/obj] [--lib BUILD/libugpolicy.a] [--quiet]
"""
import argparse
import os
import re
import subprocess
import sys
from collections import defaultdict

MAX_LINES = 80

# The plugin's folders, bottom to top, and what each may include or call.
# "abi" is plugin/upgate_plugin.h, the contract with hosts: everyone's.
# "entry" is plugin/abi.c, the ABI table that wires the rest together.
# census (the version census sketch) and calendar (off-peak windows from
# tzdata) are leaves at the bottom: proto/ and util/ only, usable by all above.
ORDER = ["abi", "util", "census", "calendar", "policy", "store", "guard", "base", "core", "fleet", "entry"]
LEAVES = {"abi", "util", "census", "calendar"}
USES = {
    "abi": set(),
    "util": {"abi"},
    "census": {"abi", "util"},
    "calendar": {"abi", "util"},
    "policy": LEAVES,
    "store": LEAVES,
    "guard": LEAVES | {"policy"},
    "base": LEAVES | {"policy", "store", "guard"},
    "core": LEAVES | {"policy", "store", "guard", "base"},
    "fleet": LEAVES | {"policy", "store", "guard", "base", "core"},
    "entry": LEAVES | {"policy", "store", "guard", "base", "core", "fleet"},
}

# The plugin headers a program may include: the ABI and libugpolicy's.
PROGRAM_HEADERS = {"plugin/upgate_plugin.h", "plugin/policy/ugpolicy.h"}

# How the flat plugin/ of f9742f5 maps onto the folders, so that an old
# checkout can be measured by the same rules (BEFORE).
FLAT = {
    "upgate_plugin": "abi", "mix": "util", "abi": "entry",
    "yaml_doc": "policy", "yaml_tree": "policy", "yaml_access": "policy", "policy": "policy",
    "policy_values": "policy", "policy_path": "policy", "policy_eval": "policy", "policy_lint": "policy",
    "policy_json": "policy", "conds": "policy", "nets": "policy", "geo": "policy", "addr": "policy",
    "store": "store", "store_impl": "store", "grants": "store",
    "guard": "guard", "cookiejar": "guard",
    "runtime": "base",
    "rules": "core", "live": "core", "outcomes": "core", "control": "core",
    "fleet": "fleet", "fleet_impl": "fleet", "fleet_codec": "fleet", "fleet_redis": "fleet",
    "fleet_sync": "fleet", "fleet_lease": "fleet", "fleet_flags": "fleet", "fleet_ctl": "fleet",
}

BEFORE = ("f9742f5: plugin 45 files on 6 floors; cycles across folders: 10 (abi.c, control.c, fleet.c, "
          "fleet_ctl.c, fleet_flags.c, fleet_lease.c, fleet_sync.c, live.c, outcomes.c, rules.c); cycles in a "
          "folder: 2 (grants.c, store.c); upward: 3 includes, 10 calls; functions over 80 lines: 2 (in the "
          "programs: node/sim.c parse_args 149, node/loadgen.c lg_run 109; none in the plugin)")
BEFORE_ISSUE = ("f9742f5: plugin 32 files on 11 floors; 22 edges run back up (14 calls, 10 includes); "
                "cycles: 11, 7, 3 (across folders: 11)")

NOT_PROGRAMS = {"plugin", "proto", "tests", "fuzz", "build", "debian", "docs", "man", "etc", "systemd"}
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources(root):
    """Every .c and .h of proto/, plugin/ and the programs, as paths relative to root."""
    out = []
    for top in sorted(os.listdir(root)):
        if top.startswith(".") or top.startswith("build") or top in NOT_PROGRAMS - {"plugin", "proto"}:
            continue
        base = os.path.join(root, top)
        if not os.path.isdir(base):
            continue
        for d, dirs, files in os.walk(base):
            dirs[:] = sorted(x for x in dirs if not x.startswith("."))
            out += [os.path.relpath(os.path.join(d, f), root) for f in sorted(files) if f.endswith((".c", ".h", ".def"))]
    return out


def layer(path):
    top = path.split("/")[0]
    return 0 if top == "proto" else 1 if top == "plugin" else 2


def folder(path):
    """The plugin folder of a plugin file (None elsewhere)."""
    parts = os.path.splitext(path)[0].split("/")
    if parts[0] != "plugin":
        return None
    if len(parts) > 2:
        return parts[1]
    return FLAT.get(parts[1], "?")


def resolve(root, path, inc, by_name):
    here = os.path.normpath(os.path.join(os.path.dirname(path), inc))
    if os.path.isfile(os.path.join(root, here)):
        return here
    for d in ("proto", "plugin", "include"):
        p = os.path.normpath(os.path.join(d, inc))
        if os.path.isfile(os.path.join(root, p)):
            return p
    cands = by_name.get(inc, [])
    same = [c for c in cands if c.split("/")[0] == path.split("/")[0]]
    return (same or cands or [None])[0]


def include_edges(root, files):
    by_name = defaultdict(list)
    for f in files:
        if f.endswith((".h", ".def")):
            by_name[os.path.basename(f)].append(f)
            by_name[f.split("/", 1)[1] if "/" in f else f].append(f)
    edges = set()
    for f in files:
        with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for inc in INCLUDE_RE.findall(text):
            to = resolve(root, f, inc, by_name)
            if to and to != f:
                edges.add((f, to))
    return edges


def nm(obj, *flags):
    r = subprocess.run(["nm", *flags, obj], capture_output=True, text=True, check=True)
    return [line.split()[-1] for line in r.stdout.splitlines() if line.strip()]


def call_edges(files, objdir):
    """(caller, callee) .c files from the objects; the .c files with no object."""
    defs, undef, missing = defaultdict(set), {}, []
    for f in files:
        if not f.endswith(".c"):
            continue
        obj = os.path.join(objdir, f[:-2] + ".o")
        if not os.path.isfile(obj):
            missing.append(f)
            continue
        for s in nm(obj, "--defined-only", "-g"):
            defs[s].add(f)
        undef[f] = nm(obj, "-u")
    edges = set()
    for m, syms in undef.items():
        for s in syms:
            for d in defs.get(s, ()):
                if d != m and (len(defs[s]) == 1 or d.split("/")[0] == m.split("/")[0]):
                    edges.add((m, d))
    return edges, missing


def sccs(nodes, edges):
    """Tarjan's strongly connected components."""
    succ = defaultdict(list)
    for a, b in edges:
        succ[a].append(b)
    index, low, on, stack, out, n = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def floors(nodes, edges, comps):
    """The longest chain of the graph once each cycle is one node."""
    comp_of = {v: i for i, c in enumerate(comps) for v in c}
    succ = defaultdict(set)
    for a, b in edges:
        if comp_of[a] != comp_of[b]:
            succ[comp_of[a]].add(comp_of[b])
    depth = {}

    def d(c):
        if c not in depth:
            depth[c] = 1 + max((d(x) for x in succ[c]), default=0)
        return depth[c]

    return max((d(comp_of[v]) for v in nodes), default=0)


def upward(a, b):
    """Why the edge a -> b points up, or None."""
    la, lb = layer(a), layer(b)
    if la != lb:
        return "%s -> %s" % (["proto", "plugin", "programs"][la], ["proto", "plugin", "programs"][lb]) if la < lb else None
    if la != 1:
        return None
    fa, fb = folder(a), folder(b)
    if fa == fb:
        return None
    if fa not in USES or fb not in USES:
        return "not in a known folder"
    return None if fb in USES[fa] else "%s may not use %s" % (fa, fb)


def strip_code(text):
    """Comments, strings and preprocessor lines blanked; line breaks kept."""
    out, i, n = [], 0, len(text)
    at_line_start = True
    while i < n:
        c = text[i]
        if at_line_start and text[i:].lstrip(" \t").startswith("#"):
            while i < n:  # the directive and its continuation lines
                j = text.find("\n", i)
                j = n if j < 0 else j
                cont = text[i:j].rstrip().endswith("\\")
                out.append("\n" if j < n else "")
                i = j + 1
                if not cont:
                    break
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j]) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
        at_line_start = out[-1].endswith("\n") if out else True
    return "".join(out)


NOT_NAMES = {"if", "for", "while", "switch", "return", "sizeof", "void", "int", "char", "bool", "double", "long",
             "unsigned", "static", "const", "inline", "struct", "_Atomic", "_Alignas", "alignas"}


def functions(text):
    """(name, first line, lines) of every function body in C text."""
    code = strip_code(text)
    out, depth, start, head_from = [], 0, None, 0
    for i, c in enumerate(code):
        if c == "{":
            if depth == 0:
                prev = code[:i].rstrip()[-1:]
                start = (i, code.count("\n", 0, i) + 1) if prev in (")", "]") else None
                if start:
                    head = re.sub(r"__attribute__\s*\(\(.*?\)\)", " ", code[head_from:i], flags=re.S)
                    names = [m for m in re.findall(r"([A-Za-z_]\w*)\s*\(", head)
                             if m not in NOT_NAMES and not m.endswith("_t")]
                    start = start + (names[0] if names else "?",)
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                if start:
                    end = code.count("\n", 0, i) + 1
                    out.append((start[2], start[1], end - start[1] + 1))
                start = None
                head_from = i + 1
        elif c == ";" and depth == 0:
            head_from = i + 1
    return out


def program_faults(files, inc, calls, lib):
    """Program files that include a plugin header but PROGRAM_HEADERS, or
    call a plugin object that is not a member of libugpolicy.a (lib)."""
    members = set()
    if os.path.isfile(lib):
        r = subprocess.run(["ar", "t", lib], capture_output=True, text=True, check=True)
        members = {"plugin/policy/" + m[:-2] + ".c" for m in r.stdout.split()}
    out = []
    for a, b in sorted(inc):
        if layer(a) == 2 and layer(b) == 1 and b not in PROGRAM_HEADERS:
            out.append("%s includes %s: a program sees only %s" % (a, b, " and ".join(sorted(PROGRAM_HEADERS))))
    for a, b in sorted(calls):
        if layer(a) == 2 and layer(b) == 1 and b not in members:
            out.append("%s calls into %s, which is not in libugpolicy.a" % (a, b))
    return out


def long_functions(root, files):
    """Functions over MAX_LINES lines in the plugin and the programs (proto/ is not held to it)."""
    out = []
    for f in files:
        if layer(f) == 0 or not f.endswith((".c", ".h")):
            continue
        with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
            for name, line, n in functions(fh.read()):
                if n > MAX_LINES:
                    out.append("%s:%d: %s is %d lines (at most %d)" % (f, line, name, n, MAX_LINES))
    return out


def issue_view(plugin_files, inc, calls):
    """The plugin's graph in issue 19's own terms, which its drawing of
    f9742f5 gave as "32 files on 11 floors with 14 includes running back
    up": a file is a module (a .c and its own .h are one; a header alone is
    one), the ABI header and util/ (everyone's leaves) left out; its edges
    are includes and calls; a depth-first walk in name order turns round
    each edge that closes a cycle, and those edges "run back up"; the floors
    are the longest chain of what is left. At f9742f5 that is 32 modules on
    11 floors, and 22 edges back up: 14 calls (the issue's 14) and 10
    includes (2 edges are both)."""
    def mod(f):
        return os.path.splitext(f)[0]
    keep = [f for f in plugin_files if folder(f) not in ("abi", "util")]
    mods = sorted({mod(f) for f in keep})
    ok = set(mods)

    def project(es):
        return {(mod(a), mod(b)) for a, b in es if mod(a) != mod(b) and mod(a) in ok and mod(b) in ok}
    mi, mc = project(inc), project(calls)
    succ = defaultdict(list)
    for a, b in sorted(mi | mc):
        succ[a].append(b)
    state, back = {}, set()

    def walk(v):
        state[v] = 1
        for w in succ[v]:
            if state.get(w) == 1:
                back.add((v, w))
            elif w not in state:
                walk(w)
        state[v] = 2
    for v in mods:
        if v not in state:
            walk(v)
    rest = (mi | mc) - back
    comps = sorted((c for c in sccs(mods, mi | mc) if len(c) > 1), key=len, reverse=True)
    across = [c for c in comps if len({folder(m + ".h") for m in c}) > 1]
    return ("%d files on %d floors; %d edges run back up (%d calls, %d includes); cycles: %s (across folders: %s)"
            % (len(mods), floors(mods, rest, [[m] for m in mods]), len(back), len(back & mc), len(back & mi),
               ", ".join(str(len(c)) for c in comps) or "none", ", ".join(str(len(c)) for c in across) or "none"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--obj", help="the build's object folder (default ROOT/build/obj)")
    ap.add_argument("--lib", help="libugpolicy.a (default: beside OBJ)")
    ap.add_argument("--quiet", action="store_true", help="print only the summary and what fails")
    args = ap.parse_args()
    root = args.root
    objdir = args.obj or os.path.join(root, "build", "obj")
    files = sources(root)
    inc = include_edges(root, files)
    calls, missing = call_edges(files, objdir)
    plugin_files = [f for f in files if layer(f) == 1]
    bad = []
    if [f for f in missing if layer(f) == 1]:
        bad.append("no object for %s (build first: make programs)" % ", ".join(f for f in missing if layer(f) == 1))

    edges = inc | calls
    comps = [c for c in sccs(files, edges) if len(c) > 1]
    across, within = [], []
    for c in comps:
        fs = {folder(m) for m in c if layer(m) == 1}
        if len(fs) > 1:
            across.append(c)
            bad.append("cycle across plugin folders %s: %s" % (", ".join(sorted(fs)), " ".join(c)))
        elif fs:
            within.append(c)
    up_inc = sorted((a, b, upward(a, b)) for a, b in inc if upward(a, b))
    up_call = sorted((a, b, upward(a, b)) for a, b in calls - inc if upward(a, b))
    bad += ["include %s -> %s (%s)" % u for u in up_inc] + ["call %s -> %s (%s)" % u for u in up_call]
    bad += ["%s: in no plugin folder (tests/layers.py, USES)" % m for m in plugin_files if folder(m) == "?"]
    bad += program_faults(files, inc, calls, args.lib or os.path.join(os.path.dirname(objdir), "libugpolicy.a"))
    long_fns = long_functions(root, files)
    bad += long_fns

    pedges = {(a, b) for a, b in edges if layer(a) == 1 and layer(b) == 1}
    pcomps = sccs(plugin_files, pedges)

    def show(cs):
        return ", ".join("%d (%s)" % (len(c), ", ".join(c)) for c in cs) or "none"

    summary = ("now: plugin %d files on %d floors; cycles across folders: %s; cycles in a folder: %s; "
               "upward: %d includes, %d calls; functions over %d lines: %d"
               % (len(plugin_files), floors(plugin_files, pedges, pcomps), show(across), show(within), len(up_inc),
                  len(up_call), MAX_LINES, len(long_fns)))
    if not args.quiet:
        folders = defaultdict(list)
        for m in plugin_files:
            folders[folder(m)].append(m.split("/")[-1])
        for fo in ORDER:
            if folders.get(fo):
                print("  %-8s %s" % (fo, " ".join(folders[fo])))
    print("layers: " + BEFORE)
    print("layers: " + summary)
    print("layers: in the issue's terms: " + BEFORE_ISSUE)
    print("layers: in the issue's terms: now: plugin " + issue_view(plugin_files, inc, calls))
    for b in bad:
        print("layers: FAIL " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
