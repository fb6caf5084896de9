#!/usr/bin/env python3
"""tests/layout/test_docs.py - every relative link of the project's
Markdown files resolves: the file (or folder) exists, and a #anchor names
a heading of that file (GitHub's rule: lower case, punctuation dropped,
spaces to hyphens, -1, -2... for repeats).  Also: README.md opens short
(what backupbot is, the two commands, the quick start, the links) before
the reference, which lives in docs/.

  python3 tests/layout/test_docs.py [ROOT]     ends "N passed, N failed"
"""
import os
import re
import sys

from checks import Checks

# README.md: the lines before "## Documentation" (the first screen)
README_OPENING_MAX = 45
SKIP_DIRS = {'.git', 'build', 'build-asan', 'node_modules'}
LINK = re.compile(r'(?<!!)\[[^\]]*\]\(([^)\s]+)\)')


def markdown_files(root):
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in SKIP_DIRS
                   and not os.path.relpath(os.path.join(d, x), root)
                   .startswith('tests/fuzz')]
        out += [os.path.relpath(os.path.join(d, f), root)
                for f in files if f.endswith('.md')]
    return sorted(out)


def prose(text):
    """The lines that are not code: fenced and indented blocks dropped,
    inline code removed."""
    fenced = False
    for n, line in enumerate(text.split('\n'), 1):
        if line.lstrip().startswith('```'):
            fenced = not fenced
            continue
        if fenced or line.startswith('    ') or line.startswith('\t'):
            continue
        yield n, re.sub(r'`[^`]*`', '', line)


def anchors(text):
    seen, out = {}, set()
    for _, line in prose(text):
        m = re.match(r'^#{1,6}\s+(.*?)\s*#*\s*$', line)
        if not m:
            continue
        a = re.sub(r'[^\w\- ]', '', m.group(1).strip().lower())
        a = a.replace(' ', '-')
        k = seen.get(a, 0)
        seen[a] = k + 1
        out.add(a if k == 0 else '%s-%d' % (a, k))
    return out


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(
                               os.path.abspath(__file__)), '..', '..'))
    checks = Checks()
    check = checks.check

    files = markdown_files(root)
    cache = {}

    def anchors_of(path):
        if path not in cache:
            with open(path, encoding='utf-8') as fh:
                cache[path] = anchors(fh.read())
        return cache[path]

    for f in files:
        with open(os.path.join(root, f), encoding='utf-8') as fh:
            text = fh.read()
        bad, nlinks = [], 0
        for n, line in prose(text):
            for target in LINK.findall(line):
                if re.match(r'^[a-z][a-z0-9+.-]*:', target):
                    continue		# http:, https:, mailto:
                nlinks += 1
                path, _, anchor = target.partition('#')
                dest = os.path.normpath(os.path.join(
                    root, os.path.dirname(f), path)) if path else \
                    os.path.join(root, f)
                if not os.path.exists(dest):
                    bad.append('%s:%d: %s: no such file' % (f, n, target))
                elif anchor and (not dest.endswith('.md') or
                                 anchor not in anchors_of(dest)):
                    bad.append('%s:%d: %s: no such heading' % (f, n, target))
        if nlinks:
            check(not bad, '%s: %d relative links resolve' % (f, nlinks),
                  bad)

    readme = os.path.join(root, 'README.md')
    with open(readme, encoding='utf-8') as fh:
        lines = fh.read().split('\n')
    first = next((i for i, l in enumerate(lines)
                  if l.startswith('## Documentation')), len(lines))
    check(first <= README_OPENING_MAX,
          'README.md opens in %d lines before "## Documentation" (at most '
          '%d)' % (first, README_OPENING_MAX))
    docs = os.path.join(root, 'docs')
    missing = [d for d in sorted(os.listdir(docs)) if d.endswith('.md') and
               '](docs/%s' % d not in '\n'.join(lines)]
    check(not missing, 'README.md links every file of docs/', missing)

    return checks.done('docs: ')


if __name__ == '__main__':
    sys.exit(main())
