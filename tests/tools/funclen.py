#!/usr/bin/env python3
"""funclen.py - list C functions longer than a limit.

    tests/tools/funclen.py [--max N] FILE...

A function is a definition whose opening brace sits alone at column 0 and
whose closing brace is the next `}` at column 0 (the house style, which
.clang-format keeps). Its length counts the lines from the line holding the
name to the closing brace. A function may run longer when the comment just
above it has a line starting with `Long:` that says why.

Prints `FILE:LINE: NAME is N lines (max M)` for each one over the limit
without a reason, and exits 1 when there is any.
"""
import re
import sys


def functions(path):
    lines = open(path, encoding="utf-8", errors="replace").read().split("\n")
    i = 0
    while i < len(lines):
        if lines[i] == "{" and i > 0:
            # the signature: walk back to the line that starts it
            s = i - 1
            while s > 0 and not re.match(r"^[A-Za-z_]", lines[s]):
                s -= 1
            m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", " ".join(lines[s:i]))
            name = m.group(1) if m else "?"
            e = i + 1
            while e < len(lines) and lines[e] != "}" and not lines[e].startswith("};"):
                e += 1
            # the comment above the signature
            c = s - 1
            comment = []
            if c >= 0 and lines[c].rstrip().endswith("*/"):
                while c >= 0:
                    comment.append(lines[c])
                    if lines[c].lstrip().startswith("/*"):
                        break
                    c -= 1
            reason = any(re.match(r"^\s*(/\*|\*)?\s*Long:", l) for l in comment)
            if lines[i - 1].rstrip().endswith("=") or lines[s].startswith(("struct ", "static const", "const ")) and "(" not in lines[s]:
                i = e + 1
                continue
            yield name, s + 1, e - s + 1, reason
            i = e + 1
        else:
            i += 1


def main():
    args = sys.argv[1:]
    limit = 80
    if args[:1] == ["--max"]:
        limit = int(args[1])
        args = args[2:]
    bad = 0
    for path in args:
        for name, line, n, reason in functions(path):
            if n > limit and not reason:
                print(f"{path}:{line}: {name} is {n} lines (max {limit})")
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
