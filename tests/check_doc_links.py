#!/usr/bin/env python3
"""Check that every relative link in README.md and docs/*.md resolves.

A link `[text](path)` or `![alt](path)` outside code must name a file or
directory that exists (relative to the file that holds the link), and a
`#fragment` must name a heading of the target (or of the same file), as
GitHub makes anchors: lower case, punctuation dropped, spaces as hyphens,
`-1`, `-2` for repeats. Links with a scheme (https:, mailto:) are not
fetched.

usage: check_doc_links.py REPO_ROOT
"""
import glob
import os
import re
import sys

LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def strip_code(text):
    """The text with fenced blocks and inline code spans blanked (line numbers kept)."""
    out, fenced = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            out.append("")
            continue
        out.append("" if fenced else re.sub(r"`[^`]*`", "``", line))
    return out


def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)  # GitHub keeps letters, digits, _, -, spaces
    return s.replace(" ", "-")


def anchors(path):
    found, seen, fenced = set(), {}, False
    with open(path, encoding="utf-8") as f:
        for line in f.read().split("\n"):
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            m = None if fenced else HEADING.match(line)
            if not m:
                continue
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    files = [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md")))
    bad = checked = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            lines = strip_code(f.read())
        for no, line in enumerate(lines, 1):
            for m in LINK.finditer(line):
                target = m.group(1)
                if re.match(r"^[a-zA-Z][a-zA-Z+.-]*:", target):
                    continue
                checked += 1
                rel, _, frag = target.partition("#")
                dest = os.path.normpath(os.path.join(os.path.dirname(path), rel)) if rel else path
                where = f"{os.path.relpath(path, root)}:{no}: {target}"
                if not os.path.exists(dest):
                    print(f"FAIL: {where}: no such file")
                    bad += 1
                elif frag and dest.endswith(".md") and frag not in anchors(dest):
                    print(f"FAIL: {where}: no heading with anchor #{frag} in {os.path.relpath(dest, root)}")
                    bad += 1
    print(f"{'FAIL' if bad else 'PASS'}: {checked} relative links in {len(files)} files, {bad} broken")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
