#!/usr/bin/env python3
"""Every relative link of the given Markdown files resolves: the file or folder
exists in the tree and a #anchor names a heading of its target (GitHub's slugs).
Prints one line per broken link and exits 1; URLs with a scheme are not fetched."""
import os
import re
import sys

LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)')
FENCE = re.compile(r'^\s*(```|~~~)')


def prose(path):
    """(line number, text) of the lines outside code fences and indented code."""
    inside = False
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            if FENCE.match(line):
                inside = not inside
                continue
            if not inside and not line.startswith('    '):
                yield n, line


def slug(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to '-'."""
    s = re.sub(r'[`*_]|\[|\]\([^)]*\)', '', heading.strip().lower())
    s = re.sub(r'[^\w\- ]', '', s)
    return s.replace(' ', '-')


def anchors(path):
    seen = {}
    out = set()
    for _, line in prose(path):
        m = re.match(r'#{1,6}\s+(.*?)\s*#*\s*$', line)
        if m:
            s = slug(m.group(1))
            k = seen.get(s, 0)
            seen[s] = k + 1
            out.add(s if k == 0 else '%s-%d' % (s, k))
    return out


def broken(md):
    for n, line in prose(md):
        for target in LINK.findall(line):
            if re.match(r'[a-z][a-z0-9+.-]*:', target):
                continue
            path, _, frag = target.partition('#')
            dest = os.path.normpath(os.path.join(os.path.dirname(md), path)) if path else md
            if not os.path.exists(dest):
                yield '%s:%d: %s: no such file' % (md, n, target)
            elif frag and dest.endswith('.md') and frag not in anchors(dest):
                yield '%s:%d: %s: no heading with that anchor in %s' % (md, n, target, dest)


def main():
    bad = [b for md in sys.argv[1:] for b in broken(md)]
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
