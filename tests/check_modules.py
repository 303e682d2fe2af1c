#!/usr/bin/env python3
"""Module checks for src/ (issue 15): usage: check_modules.py SOURCE_DIR [BUILD_DIR]

a. Include rule: no file in src/ or include/ includes a header from node/,
   simulations/, examples/ or tests/; an installed header (include/vixsync/)
   includes only installed headers (and system headers).
b. No module cycle, in two graphs. A module is a src/ file's basename up to
   its first '_' or '.' (node_push.c, node_int.h, node.c: `node`).
   (i)  the `#include` graph between src/ files; internal.h is the base
        module `internal` and includes no src/ header of another module;
   (ii) with BUILD_DIR, the symbol graph of the libvixsync and
        libvixsync-http objects: module A -> B when A's object uses a `vs_`
        symbol B's defines (`nm`).
Prints every violation and, per cycle, its path with what makes each edge.
Exits 1 on any violation."""
import collections, os, re, subprocess, sys

SRC = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else '.')
BUILD = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
FORBIDDEN = [os.path.join(SRC, d) + os.sep for d in ('node', 'simulations', 'examples', 'tests')]
PUBLIC = [os.path.join(SRC, 'include', 'vixsync') + os.sep]
if BUILD:  # vixsync/version.h is generated into the build tree
    PUBLIC.append(os.path.join(BUILD, 'include', 'vixsync') + os.sep)
# What the library targets put on the include path (CMakeLists.txt); the
# forbidden trees are searched last so that a header reached through a
# stray include path is still named.
PATHS = [os.path.join(SRC, 'src'), os.path.join(SRC, 'include')] + \
        ([os.path.join(BUILD, 'include')] if BUILD else []) + [d.rstrip(os.sep) for d in FORBIDDEN]
INC = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]', re.M)
problems = []


def module(path):
    return re.split(r'[_.]', os.path.basename(path), maxsplit=1)[0]


def includes(path):
    """(header as written, resolved path or None) for each #include."""
    with open(path, encoding='utf-8', errors='replace') as f:
        text = f.read()
    for kind, name in INC.findall(text):
        dirs = ([os.path.dirname(path)] if kind == '"' else []) + PATHS
        found = next((os.path.normpath(os.path.join(d, name)) for d in dirs
                      if os.path.isfile(os.path.join(d, name))), None)
        yield name, found


def files(top, exts=('.c', '.h')):
    for root, _, names in os.walk(top):
        for n in sorted(names):
            if n.endswith(exts):
                yield os.path.join(root, n)


def rel(p):
    return os.path.relpath(p, SRC)


# a. the include rule; (i) the include graph
inc_edges = collections.defaultdict(set)  # (A, B) -> {"file -> header"}
for path in list(files(os.path.join(SRC, 'src'))) + list(files(os.path.join(SRC, 'include'))):
    public = any(path.startswith(p) for p in PUBLIC)
    for name, found in includes(path):
        if found is None:
            continue  # a system header
        if any(found.startswith(d) for d in FORBIDDEN):
            problems.append('include rule: %s includes %s' % (rel(path), rel(found)))
        elif public and not any(found.startswith(p) for p in PUBLIC):
            problems.append('include rule: installed %s includes %s, which is not installed' % (rel(path), rel(found)))
        elif path.startswith(os.path.join(SRC, 'src') + os.sep) and found.startswith(os.path.join(SRC, 'src') + os.sep):
            a, b = module(path), module(found)
            if a == 'internal' and b != 'internal':
                problems.append('base rule: src/internal.h includes %s (module %s)' % (rel(found), b))
            if a != b:
                inc_edges[a, b].add('%s -> %s' % (os.path.basename(path), os.path.basename(found)))


# (ii) the symbol graph
def symbol_edges():
    objs = []
    for lib in ('vixsync_obj.dir', 'vixsync_http_obj.dir'):
        objs += [o for o in files(os.path.join(BUILD, 'CMakeFiles', lib), ('.o',))]
    if not objs:
        problems.append('no objects under %s/CMakeFiles/vixsync_obj.dir: build first' % BUILD)
    defs, uses = {}, collections.defaultdict(set)
    for o in objs:
        m = module(o)
        out = subprocess.run(['nm', o], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 2 or not parts[-1].startswith('vs_'):
                continue
            kind, sym = parts[-2], parts[-1]
            if kind == 'U':
                uses[m].add(sym)
            elif kind.isupper():  # a global definition
                defs[sym] = m
    edges = collections.defaultdict(set)
    for m, syms in uses.items():
        for s in syms:
            if s in defs and defs[s] != m:
                edges[m, defs[s]].add(s)
    return edges


def cycles(edges, what):
    """One cycle through each edge that lies on a cycle, deduplicated; a
    cycle is found as the edge plus the shortest path back."""
    succ = collections.defaultdict(set)
    for a, b in edges:
        succ[a].add(b)
    seen = set()
    for a, b in sorted(edges):
        prev, todo = {b: None}, collections.deque([b])
        while todo and a not in prev:
            n = todo.popleft()
            for s in sorted(succ[n]):
                if s not in prev:
                    prev[s] = n
                    todo.append(s)
        if a not in prev:
            continue
        path, n = [], a
        while n is not None:
            path.append(n)
            n = prev[n]
        cyc = [a] + path[::-1]  # a -> b -> ... -> a
        i = cyc.index(min(cyc[:-1]))
        key = tuple(cyc[i:-1] + cyc[:i])
        if key in seen:
            continue
        seen.add(key)
        lines = ['%s cycle: %s' % (what, ' -> '.join(key + key[:1]))]
        for x, y in zip(key, key[1:] + key[:1]):
            why = sorted(edges[x, y])
            lines.append('    %s -> %s: %s%s' % (x, y, ', '.join(why[:6]), ' (+%d)' % (len(why) - 6) if len(why) > 6 else ''))
        problems.append('\n'.join(lines))


cycles(inc_edges, 'include')
if BUILD:
    cycles(symbol_edges(), 'symbol')
for p in problems:
    print(p)
print('check_modules: %d problem(s)' % len(problems))
sys.exit(1 if problems else 0)
