#!/usr/bin/env python3
"""docs/metrics.md against a scrape: the families served, their types and HELP texts are exactly those documented.

  python3 tests/metrics_doc.py DOC EXPOSITION

DOC's families are the rows "| `name` | type | labels | HELP |" of its
section "## Families"; those under a heading that says "only when" may be
absent from a scrape (served only with some policy keys); EXPOSITION is a Prometheus text exposition (a node's
GET /metrics). Prints one line per difference and exits 1, else "ok N".
"""
import re
import sys

ROW = re.compile(r"^\| `([a-z_:][a-z0-9_:]*)` \| (counter|gauge|histogram|summary) \| .*\| (.+) \|$")


def documented(path):
    text = open(path, encoding="utf-8").read()
    start = text.index("\n## Families")
    end = text.find("\n## ", start + 1)
    fams, optional, maybe = {}, set(), False
    for line in text[start:end if end > 0 else len(text)].splitlines():
        if line.startswith("#"):
            maybe = "only when" in line
        m = ROW.match(line)
        if m:
            fams[m.group(1)] = (m.group(2), m.group(3))
            if maybe:
                optional.add(m.group(1))
    return fams, optional


def served(path):
    fams, helps = {}, {}
    for line in open(path, encoding="utf-8"):
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].rstrip("\n").partition(" ")
            helps[name] = help_
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].rstrip("\n").partition(" ")
            fams[name] = (kind, helps.get(name, ""))
    return fams


def main():
    (doc, optional), got = documented(sys.argv[1]), served(sys.argv[2])
    bad = []
    for name, (kind, help_) in sorted(got.items()):
        if name not in doc:
            bad.append("%s is served but not in docs/metrics.md: add | `%s` | %s | labels | %s |" % (name, name, kind,
                                                                                                    help_))
        elif doc[name] != (kind, help_):
            bad.append("%s: served as %s \"%s\", documented as %s \"%s\"" % ((name,) + (kind, help_) + doc[name]))
    bad += ["%s is in docs/metrics.md but not served" % n for n in sorted(set(doc) - set(got) - optional)]
    for b in bad:
        print("metrics_doc: " + b)
    if not bad:
        print("ok %d" % len(got))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
