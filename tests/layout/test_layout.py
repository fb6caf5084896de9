#!/usr/bin/env python3
"""tests/layout/test_layout.py - the walls between bot/'s folders, read
from the code itself.

Every quoted #include line of bot/ and handlers/ is resolved to the one
header of that name (includes are bare names, the Makefile gives one -I
per folder).  Checks, one line each, then "N passed, N failed":

  - header names are unique across folders (a bare include is unambiguous);
  - no include crosses a wall of the table WALLS below (README "Code map"),
    and an X_parts.h is included from its own folder only;
  - no include cycle joins modules of different folders (a module is x.c
    with its x.h);
  - the folders themselves form no cycle;
  - no .c file is over MAX_LINES lines;
  - every folder opens with a README.md that says what lives there.

  python3 tests/layout/test_layout.py [ROOT]
"""
import os
import re
import sys

from checks import Checks

MAX_LINES = 1500

# layer -> the layers it may not include from.  "front" is bot/main.c and
# bot/cli.c, the two front doors; targets/redis/ is part of targets.
ALL = {'front', 'daemon', 'handlers', 'matrix', 'job', 'targets', 'store',
       'base'}
WALLS = {
    # a Matrix client that knows nothing of backups
    'matrix': ALL - {'matrix', 'base'},
    # backends and storage never reach up to chat, the daemon or a job
    'targets': {'front', 'daemon', 'handlers', 'matrix', 'job'},
    'store': {'front', 'daemon', 'handlers', 'matrix', 'job', 'targets'},
    # base is the floor: it includes nothing above it
    'base': ALL - {'base'},
    # a job child: no daemon, no chat, no command line
    'job': {'front', 'daemon', 'handlers', 'matrix'},
    # the daemon reaches commands through the table in cmd.h only, and a
    # job through its process (`backupbot job ...`)
    'daemon': {'front', 'handlers', 'job'},
    'handlers': {'front', 'job'},
    # only daemon/ and handlers/ talk to the Matrix client
    'front': {'matrix', 'handlers'},
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer(path):
    parts = path.split('/')
    if parts[0] == 'handlers':
        return 'handlers'
    if len(parts) == 2:
        return 'front'
    return parts[1]


def folder(path):
    return os.path.dirname(path)


def sources(root):
    out = []
    for top in ('bot', 'handlers'):
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in files:
                if f.endswith(('.c', '.h')):
                    out.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(out)


def module(path):
    return os.path.splitext(path)[0]


def sccs(graph):
    """Tarjan's strongly connected components, iteratively."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), '..', '..')
    root = os.path.abspath(root)
    files = sources(root)
    checks = Checks()
    check = checks.check

    headers = {}
    for f in files:
        if f.endswith('.h'):
            headers.setdefault(os.path.basename(f), []).append(f)
    dup = ['%s: %s' % (n, ', '.join(p)) for n, p in sorted(headers.items())
           if len(p) > 1]
    check(not dup, 'header names are unique across folders (%d headers)'
          % len(headers), dup)

    breaches, unknown = [], []
    mod_graph, dir_graph = {}, {}
    nincl = 0
    for f in files:
        with open(os.path.join(root, f), encoding='utf-8') as fh:
            for n, line in enumerate(fh, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                nincl += 1
                name = m.group(1)
                if name not in headers:
                    unknown.append('%s:%d: "%s" is no header of bot/ or '
                                   'handlers/' % (f, n, name))
                    continue
                h = headers[name][0]
                a, b = layer(f), layer(h)
                if b in WALLS[a]:
                    breaches.append('%s:%d: %s/ includes %s (%s/)'
                                    % (f, n, a, h, b))
                if name.endswith('_parts.h') and folder(f) != folder(h):
                    breaches.append('%s:%d: %s is private to %s/'
                                    % (f, n, name, folder(h)))
                if module(f) != module(h):
                    mod_graph.setdefault(module(f), set()).add(module(h))
                if folder(f) != folder(h):
                    dir_graph.setdefault(folder(f), set()).add(folder(h))
    check(not unknown, 'every quoted include names a header of the tree',
          unknown)
    check(not breaches, 'no include crosses a wall (%d include lines read)'
          % nincl, breaches)

    cross = []
    for comp in sccs(mod_graph):
        if len({folder(m) for m in comp}) > 1:
            cross.append('cycle: ' + ' <-> '.join(comp))
    check(not cross, 'no include cycle between modules of different '
          'folders', cross)
    dcyc = ['cycle: ' + ' <-> '.join(c) for c in sccs(dir_graph)]
    check(not dcyc, 'the folders include each other without a cycle', dcyc)

    big = []
    longest = ('', 0)
    for f in files:
        if not f.endswith('.c'):
            continue
        with open(os.path.join(root, f), encoding='utf-8') as fh:
            n = sum(1 for _ in fh)
        if n > longest[1]:
            longest = (f, n)
        if n > MAX_LINES:
            big.append('%s: %d lines' % (f, n))
    check(not big, 'no .c file over %d lines (longest: %s, %d)'
          % (MAX_LINES, longest[0], longest[1]), big)

    dirs = sorted({folder(f) for f in files})
    bare = [d + '/' for d in dirs
            if not os.path.isfile(os.path.join(root, d, 'README.md'))]
    check(not bare, 'every folder opens with a README.md (%d folders)'
          % len(dirs), bare)

    return checks.done('layout: ')


if __name__ == '__main__':
    sys.exit(main())
