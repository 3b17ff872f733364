#!/usr/bin/env python3
"""Prints the per-system-call tables of docs/benchmarks.md from the last
`cargo bench --bench syscalls` run: criterion's median estimate of each
row (target/criterion/OP/ROW/new/estimates.json), in ns per call, with the
cost each adds to native and its ratio to native, and the ratio of fr
root-mapped's added cost to the bare round trip's (the `fr-floor-continue`
row of the same run).

    scripts/bench-table.py [TARGET_DIR]

A row criterion has no estimate for (fakeroot not installed, say) is `–`.
"""
import json
import os
import sys

OPS = ["getpid", "stat", "lstat", "fstat", "newfstatat", "statx", "chown", "fchown",
       "lchown", "mknod-fifo", "setxattr-user", "getuid", "open-close"]
COLUMNS = [("fr-root-mapped", "fr root-mapped"), ("fr-subuid", "fr subuid"),
           ("fr-none", "fr none"), ("fr-floor-continue", "floor (CONTINUE)"),
           ("fakeroot", "fakeroot")]


def median(criterion, op, row):
    path = os.path.join(criterion, op, row, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None


def cell(value, native):
    if value is None:
        return "–"
    if native is None:
        return f"{value:,.0f}"
    return f"{value:,.0f} ({value - native:+,.0f}; {value / native:.1f}×)"


def table(criterion, suffix):
    head = ["op", "native"] + [name for _, name in COLUMNS] + ["root-mapped ÷ floor"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for op in OPS:
        native = median(criterion, op, "native" + suffix)
        values = [median(criterion, op, row + suffix) for row, _ in COLUMNS]
        fr, floor = values[0], values[3]
        ratio = "–"
        if None not in (fr, floor, native) and floor - native > 1000:
            ratio = f"{(fr - native) / (floor - native):.2f}"
        row = [op, cell(native, None)] + [cell(v, native) for v in values] + [ratio]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "target")
    criterion = os.path.join(target, "criterion")
    print("Dynamic (glibc) build, ns per call (added to native; × native):\n")
    print(table(criterion, ""))
    print("\nStatic build, ns per call (added to native; × native):\n")
    print(table(criterion, "-static"))


if __name__ == "__main__":
    main()
