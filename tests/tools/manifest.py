#!/usr/bin/env python3
"""Prints a manifest of the tree under ROOT, one line per path, sorted: path,
type, mode, owner, group, device numbers and extended attributes (names
sorted, values in hex). Run as real root on the oracle's tree and under
`fr exec --fakeroot` on fr's, the two manifests must be equal. Paths under
the arguments after ROOT (relative to it) are left out."""
import os
import stat
import sys

root = sys.argv[1]
skip = tuple(os.path.join(root, p.strip("/")) for p in sys.argv[2:])
KINDS = {
    stat.S_IFREG: "reg", stat.S_IFDIR: "dir", stat.S_IFLNK: "lnk", stat.S_IFCHR: "chr",
    stat.S_IFBLK: "blk", stat.S_IFIFO: "fifo", stat.S_IFSOCK: "sock",
}


def xattrs(path):
    try:
        names = sorted(os.listxattr(path, follow_symlinks=False))
    except OSError as e:
        return [f"<{e.strerror}>"]
    out = []
    for name in names:
        try:
            out.append(f"{name}={os.getxattr(path, name, follow_symlinks=False).hex()}")
        except OSError as e:
            out.append(f"{name}=<{e.strerror}>")
    return out


lines = []
for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = [d for d in dirnames if not os.path.join(dirpath, d).startswith(skip)]
    for name in [""] + dirnames + filenames:
        path = os.path.join(dirpath, name) if name else dirpath
        if name == "" and dirpath != root:
            continue
        if path.startswith(skip):
            continue
        st = os.lstat(path)
        kind = KINDS.get(stat.S_IFMT(st.st_mode), "?")
        rdev = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}" if kind in ("chr", "blk") else "-"
        rel = "/" + os.path.relpath(path, root) if path != root else "/"
        lines.append(f"{rel} {kind} {stat.S_IMODE(st.st_mode):04o} {st.st_uid}:{st.st_gid} {rdev} {' '.join(xattrs(path))}".rstrip())
print("\n".join(sorted(lines)))
