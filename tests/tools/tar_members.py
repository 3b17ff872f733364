#!/usr/bin/env python3
"""Prints the members of a tar archive, one line each, sorted by name:
name, type, mode, owner, group, device numbers, link target and extended
attributes (PAX SCHILY.xattr.*, values in hex). Hard links are shown as the
group of names that share a file, under the first of them in name order, so
that which member came first in the archive does not matter. Used to compare the archive real root made with the one made again
under fr."""
import sys
import tarfile

members = {}
links = []
with tarfile.open(sys.argv[1]) as tar:
    for m in tar.getmembers():
        name = m.name.lstrip("./") or "."
        if m.islnk():
            links.append((name, m.linkname.lstrip("./")))
            continue
        xattrs = sorted(
            (k[len("SCHILY.xattr."):], v.encode("utf-8", "surrogateescape").hex())
            for k, v in m.pax_headers.items()
            if k.startswith("SCHILY.xattr.")
        )
        members[name] = {
            "type": m.type.decode() if isinstance(m.type, bytes) else m.type,
            "mode": oct(m.mode),
            "owner": f"{m.uid}:{m.gid}",
            "dev": f"{m.devmajor}:{m.devminor}" if m.ischr() or m.isblk() else "",
            "target": m.linkname if m.issym() else "",
            "xattrs": xattrs,
            "links": [name],
        }
for name, target in links:
    members[target]["links"].append(name)
# A file with several names is shown once, under its first name in order.
shown = []
for m in members.values():
    m = dict(m, links=sorted(m["links"]))
    shown.append((m["links"][0], m))
for name, m in sorted(shown, key=lambda s: s[0]):
    print(name, m)
