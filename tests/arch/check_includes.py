#!/usr/bin/env python3
"""The folder-level #include graph of src/ and tools/ against the table of
allowed edges in docs/architecture.md.

  check_includes.py REPO [--cmake-links FILE]   check the tree (exit 1 on any violation)
  check_includes.py --self-test                 the checker on synthetic trees

Every folder is a layer: src/<name> is `<name>`, tools/<name> is
`tools/<name>`. A quoted include resolves as the compiler resolves it:
beside the including file first, then under src/ (the one include
directory). Fails, naming file:line, on an include whose layer the
including layer may not include, on one that resolves nowhere, on a
folder the table does not list, and on a cycle (in the table or in the
graph). With --cmake-links (written by CMake at generate time: one
`layer: lib;lib;...` line per layer target) it also fails when a target's
links to other layers differ from the table, so the build's arrows and the
documented ones cannot drift apart.
"""
import os
import re
import shutil
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
SOURCE_EXT = ('.hpp', '.cpp', '.h', '.c')
TABLE_HEADING = '## Allowed edges'
# CMake target name -> layer, for the targets that are not weft_<layer>.
TARGET_LAYER = {'weft_cli': 'tools/weft', 'weft_packetdrill': 'tools/packetdrill'}


def parse_table(doc_path):
    """{layer: set(allowed)} from the table under TABLE_HEADING."""
    with open(doc_path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    try:
        start = lines.index(TABLE_HEADING)
    except ValueError:
        raise SystemExit(f'{doc_path}: no "{TABLE_HEADING}" section')
    table = {}
    for line in lines[start + 1:]:
        if line.startswith('## '):
            break
        if not line.startswith('|'):
            continue
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) != 2 or cells[0] in ('layer', '') or set(cells[0]) <= set('-: '):
            continue
        layer = cells[0].strip('`')
        allowed = {a.strip().strip('`') for a in cells[1].split(',') if a.strip()}
        table[layer] = allowed
    if not table:
        raise SystemExit(f'{doc_path}: the "{TABLE_HEADING}" table is empty')
    return table


def find_cycle(graph):
    """One cycle of {node: set(nodes)} as a list [a, b, ..., a], or None."""
    state = {}  # node -> 1 on the DFS path, 2 done
    path = []

    def visit(n):
        state[n] = 1
        path.append(n)
        for m in sorted(graph.get(n, ())):
            if m == n:
                continue
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        path.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def layer_of(rel):
    """The layer of a repo-relative path, or None outside src/ and tools/."""
    parts = rel.split('/')
    if len(parts) < 3 or parts[0] not in ('src', 'tools'):
        return None
    return parts[1] if parts[0] == 'src' else 'tools/' + parts[1]


def scan(root):
    """[(file, line, include, from_layer, to_layer or None)] for src/ and tools/."""
    edges = []
    for top in ('src', 'tools'):
        for dirpath, _, files in sorted(os.walk(os.path.join(root, top))):
            for name in sorted(files):
                if not name.endswith(SOURCE_EXT):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                src_layer = layer_of(rel)
                if src_layer is None:
                    continue
                with open(path, encoding='utf-8', errors='replace') as f:
                    for n, text in enumerate(f, 1):
                        m = INCLUDE.match(text)
                        if not m:
                            continue
                        inc = m.group(1)
                        target = None
                        for base in (dirpath, os.path.join(root, 'src')):
                            cand = os.path.normpath(os.path.join(base, inc))
                            if os.path.isfile(cand):
                                target = layer_of(os.path.relpath(cand, root)) or '(outside src/ and tools/)'
                                break
                        edges.append((rel, n, inc, src_layer, target))
    return edges


def parse_cmake_links(path):
    """{layer: set(layers it links)} from CMake's generated links file."""
    links = {}
    with open(path, encoding='utf-8') as f:
        for line in f:
            if ':' not in line:
                continue
            target, libs = line.split(':', 1)
            target = target.strip()
            layer = TARGET_LAYER.get(target, target[len('weft_'):] if target.startswith('weft_') else target)
            deps = set()
            for lib in libs.strip().split(';'):
                lib = lib.strip()
                if lib.startswith('weft::'):
                    deps.add(lib[len('weft::'):])
                elif lib.startswith('weft_'):
                    deps.add(TARGET_LAYER.get(lib, lib[len('weft_'):]))
            links[layer] = deps
    return links


def check(root, cmake_links=None, out=sys.stdout):
    """Prints every violation; returns the number found."""
    doc = os.path.join(root, 'docs', 'architecture.md')
    table = parse_table(doc)
    errors = []
    for layer, allowed in sorted(table.items()):
        for a in sorted(allowed - set(table)):
            errors.append(f'docs/architecture.md: layer `{layer}` may include `{a}`, which the table does not list')
    cycle = find_cycle(table)
    if cycle:
        errors.append('docs/architecture.md: the allowed edges have a cycle: ' + ' -> '.join(cycle))
    graph = {}
    for rel, n, inc, src, dst in scan(root):
        if src not in table:
            errors.append(f'{rel}:{n}: folder `{src}` is not a layer in docs/architecture.md')
            continue
        if dst is None:
            errors.append(f'{rel}:{n}: "{inc}" resolves neither beside the file nor under src/')
            continue
        if dst == src:
            continue
        graph.setdefault(src, set()).add(dst)
        if dst not in table[src]:
            errors.append(f'{rel}:{n}: "{inc}" is layer `{src}` -> `{dst}`, not an allowed edge in docs/architecture.md')
    cycle = find_cycle(graph)
    if cycle:
        errors.append('the #include graph has a cycle between folders: ' + ' -> '.join(cycle))
    if cmake_links:
        links = parse_cmake_links(cmake_links)
        for layer, allowed in sorted(table.items()):
            if layer not in links:
                if not layer.startswith('tools/'):  # the adapter is not built under sanitizers
                    errors.append(f'CMake: no target for layer `{layer}` in {cmake_links}')
                continue
            if links[layer] != allowed:
                extra = ', '.join(sorted(links[layer] - allowed)) or '-'
                missing = ', '.join(sorted(allowed - links[layer])) or '-'
                errors.append(f'CMake: the target of layer `{layer}` links other layers than '
                              f'docs/architecture.md allows (extra: {extra}; missing: {missing})')
    for e in errors:
        print(e, file=out)
    return len(errors)


def self_test():
    """The checker must fail on what it exists to catch: a positive control."""
    import io

    def tree(files, table_rows):
        d = tempfile.mkdtemp(prefix='weft-arch-')
        os.makedirs(os.path.join(d, 'docs'))
        with open(os.path.join(d, 'docs', 'architecture.md'), 'w') as f:
            f.write('# x\n\n' + TABLE_HEADING + '\n\n| layer | may include |\n| --- | --- |\n')
            for layer, allowed in table_rows:
                f.write(f'| `{layer}` | ' + ', '.join(f'`{a}`' for a in allowed) + ' |\n')
            f.write('\n## After\n\n| `later` | `x` |\n')
        for rel, text in files.items():
            p = os.path.join(d, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, 'w') as f:
                f.write(text)
        return d

    rows = [('base', []), ('tcp', ['base']), ('tools/t', ['tcp'])]
    good = {
        'src/base/a.hpp': '#pragma once\n',
        'src/tcp/t.hpp': '#include "base/a.hpp"\n#include "tcp/u.hpp"\n#include <vector>\n',
        'src/tcp/u.hpp': '// #include "host/x.hpp" is only a comment\n',
        'tools/t/m.cpp': '#include "local.hpp"\n#include "tcp/t.hpp"\n',
        'tools/t/local.hpp': '\n',
    }
    cases = [
        ('a clean tree passes', good, rows, None, 0, []),
        ('an include pointing up fails, naming file:line',
         {**good, 'src/base/b.hpp': '\n\n#include "tcp/t.hpp"\n'}, rows, None, 2,
         ['src/base/b.hpp:3: "tcp/t.hpp" is layer `base` -> `tcp`', 'cycle between folders: base -> tcp -> base']),
        ('a direct edge that the table lacks fails (no transitive arrows)',
         {**good, 'tools/t/n.cpp': '#include "base/a.hpp"\n'}, rows, None, 1,
         ['tools/t/n.cpp:1: "base/a.hpp" is layer `tools/t` -> `base`']),
        ('an include that resolves nowhere fails',
         {**good, 'src/tcp/v.cpp': '#include "nowhere.hpp"\n'}, rows, None, 1,
         ['src/tcp/v.cpp:1: "nowhere.hpp" resolves neither']),
        ('a folder the table does not list fails',
         {**good, 'src/udp/u.cpp': '#include "base/a.hpp"\n'}, rows, None, 1,
         ['folder `udp` is not a layer']),
        ('a cycle in the table fails', good, [('base', ['tcp']), ('tcp', ['base']), ('tools/t', ['tcp'])], None, 1,
         ['allowed edges have a cycle']),
        ('CMake links that differ from the table fail', good, rows,
         'weft_base: fmt::fmt\nweft_tcp: weft::base;weft::tools\nweft_cli: weft_tcp\n', 1,
         ['layer `tcp` links other layers', 'extra: tools; missing: -']),
        ('CMake links that match the table pass', good, rows,
         'weft_base: fmt::fmt\nweft_tcp: weft::base;PkgConfig::PCAP\n', 0, []),
    ]
    failed = 0
    for what, files, table_rows, links_text, want_errors, want_text in cases:
        d = tree(files, table_rows)
        links = None
        if links_text is not None:
            links = os.path.join(d, 'links.txt')
            with open(links, 'w') as f:
                f.write(links_text)
        buf = io.StringIO()
        n = check(d, links, out=buf)
        text = buf.getvalue()
        ok = n == want_errors and all(w in text for w in want_text)
        shutil.rmtree(d)
        print(('ok   ' if ok else 'FAIL ') + what)
        if not ok:
            failed += 1
            print(f'     {n} errors (wanted {want_errors}), output:\n' + text)
    print(f'{len(cases) - failed} passed, {failed} failed')
    return 1 if failed else 0


def main(argv):
    if argv[1:] == ['--self-test']:
        return self_test()
    if len(argv) == 2:
        root, links = argv[1], None
    elif len(argv) == 4 and argv[2] == '--cmake-links':
        root, links = argv[1], argv[3]
    else:
        print(__doc__, file=sys.stderr)
        return 2
    n = check(root, links)
    if n:
        print(f'{n} layer violations (docs/architecture.md has the allowed edges)')
        return 1
    print('include graph: every edge allowed by docs/architecture.md, no cycle')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
