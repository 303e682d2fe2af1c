#!/usr/bin/env python3
"""Check that every README snippet marked as coming from a file is that file's text.

A marker line `<!-- snippet: PATH ... -->` must be followed by a fenced code
block; its lines must equal, byte for byte, the lines of PATH (relative to the
repository root) between a line `/* README: begin */` and a line
`/* README: end */`. A marker `<!-- snippet: PATH excerpt ... -->` instead
shows an excerpt of the whole file: every line of the block must be a line of
PATH, byte for byte and in the file's order, except elision lines, comments
that begin with `/* ...` (what they leave out, in words). So the README shows
code that the test suite compiles and runs (examples/10_embed_node.c, test
example_10_embed_node), and cannot drift from it. Fails if the README has no
marker at all.

usage: check_readme_snippet.py README.md REPO_ROOT
"""
import difflib
import os
import re
import sys

BEGIN = "/* README: begin */"
END = "/* README: end */"
MARKER = re.compile(r"^<!-- snippet: (\S+)( excerpt\b)?")
ELISION = re.compile(r"^\s*/\* \.\.\..*\*/$")


def region(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    starts = [i for i, l in enumerate(lines) if l.strip() == BEGIN]
    ends = [i for i, l in enumerate(lines) if l.strip() == END]
    if len(starts) != 1 or len(ends) != 1 or ends[0] <= starts[0]:
        sys.exit(f"FAIL: {path}: needs exactly one '{BEGIN}' line before one '{END}' line")
    return lines[starts[0] + 1:ends[0]]


def excerpt_mismatch(path, body):
    """Index of the first excerpt line not found in PATH after the previous one, or None."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    at = 0
    for i, line in enumerate(body):
        if ELISION.match(line):
            continue
        while at < len(lines) and lines[at] != line:
            at += 1
        if at == len(lines):
            return i
        at += 1
    return None


def snippets(readme):
    with open(readme, encoding="utf-8") as f:
        lines = f.read().split("\n")
    found = []
    for i, line in enumerate(lines):
        m = MARKER.match(line)
        if not m:
            continue
        if i + 1 >= len(lines) or not lines[i + 1].startswith("```"):
            sys.exit(f"FAIL: {readme}:{i + 1}: a snippet marker must be followed by a ``` fence")
        body = []
        for j in range(i + 2, len(lines)):
            if lines[j].startswith("```"):
                break
            body.append(lines[j])
        else:
            sys.exit(f"FAIL: {readme}:{i + 2}: the snippet's fence is not closed")
        found.append((i + 1, m.group(1), bool(m.group(2)), body))
    return found


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    readme, root = sys.argv[1], sys.argv[2]
    found = snippets(readme)
    if not found:
        sys.exit(f"FAIL: {readme}: no '<!-- snippet: PATH -->' marker")
    failed = False
    for line_no, rel, excerpt, body in found:
        if excerpt:
            bad = excerpt_mismatch(os.path.join(root, rel), body)
            if bad is not None:
                failed = True
                print(f"FAIL: {readme}:{line_no + 1 + bad}: not a line of {rel} (in order after the lines above it):")
                print("  " + body[bad])
            else:
                shown = sum(1 for l in body if not ELISION.match(l))
                print(f"PASS: {readme}:{line_no}: {shown} lines of {rel}, in its order ({len(body) - shown} elisions)")
            continue
        want = region(os.path.join(root, rel))
        if body != want:
            failed = True
            print(f"FAIL: {readme}:{line_no}: the snippet differs from {rel} (README: begin .. end):")
            sys.stdout.writelines(
                d + "\n" for d in difflib.unified_diff(want, body, rel, "README.md", lineterm=""))
        else:
            print(f"PASS: {readme}:{line_no}: {len(body)} lines equal to {rel}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
