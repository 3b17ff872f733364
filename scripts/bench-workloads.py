#!/usr/bin/env python3
"""Whole-workload benchmarks: fr against the same commands run natively and
under the host's fakeroot (and pseudo, proot -0 when installed).

    scripts/bench-workloads.py [--runs N] [--files N]

Workloads, on a tree unpacked from a generated tar of about N entries
(directories, small files of varied sizes, symbolic and hard links, owners
and modes that only root could set):

    tar      tar --same-owner -xpf tree.tar      (natively: tar -xpf, no chown)
    find     find TREE -ls
    chown    chown -R 1234:1234 TREE             (natively: to the user's own ids)
    cp       cp -a TREE TREE2
    dpkg-deb dpkg-deb -Znone --build PKG OUT     (PKG: DEBIAN/control and N/7 files)

Every fake-root tool sees its own copy of the tree, unpacked by that tool
with --same-owner and its state saved (fr -s, fakeroot -s); each timed
session loads that state (-i) and saves nothing, so the workloads see the
fake owners and runs do not change each other's input.

fr is also measured with an image ("fr root-mapped image", "fr subuid
image"): a small root under images/ whose bin, sbin, lib and lib64 point
into /usr, the host's /usr bound read-only (-B /usr:/usr:ro) and nothing
else (--contain), the tree unpacked inside it by a session of it. The image
keeps its own records (IMAGE/.fr), so its runs clean up inside a session
and the tree is unpacked again after each chown -R.

Timing is taken inside the session: the command is wrapped in
`s=$(date +%s%N); CMD; e=$(date +%s%N)` so a session's start (fr's
launcher, fakeroot's faked, loading the state) is not counted; the start
and exit of a session running `true` is reported on its own row.

Started as root, the script builds `target/release/fr`, makes the fixture
under target/bench-workloads/, then drops to the user `frtest` (--user) with
setpriv for every measurement, in /dev/shm/fr-bench-workloads-UID. Results
replace the part of docs/benchmarks.md between `<!-- workloads:begin -->`
and `<!-- workloads:end -->` (not with --no-doc); the raw numbers are kept
in target/bench-workloads/results.json.
"""

import argparse
import ctypes
import io
import json
import os
import platform
import pwd
import random
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from pathlib import Path

FIXTURE_VERSION = 1
SEED = 20261123
SESSION_TIMEOUT = 900  # seconds; a hung session is killed and reported

BEGIN = "<!-- workloads:begin -->"
END = "<!-- workloads:end -->"

# (key, label, command under fake root, command natively or None when the same)
WORKLOADS = [
    ("tar", "tar extraction", 'tar --same-owner -xpf "$FIX" -C "$X"', 'tar -xpf "$FIX" -C "$X"'),
    ("find", "find -ls", 'find "$T" -ls >/dev/null', None),
    ("chown", "chown -R", 'chown -R 1234:1234 "$T"', 'chown -R "$(id -u):$(id -g)" "$T"'),
    ("cp", "cp -a", 'cp -a "$T" "$T2"', None),
    ("dpkg-deb", "dpkg-deb --build", 'dpkg-deb -Znone --build "$PKG" "$DEB" >/dev/null', None),
]
EMPTY = ("true", "session with `true`", "true", None)

# The targets, in multiples of native (reported, not asserted).
NATIVE_TARGETS = {"find": 3.0, "tar": 1.5}

TIMED = 's=$(date +%s%N); {cmd}; rc=$?; e=$(date +%s%N); echo "$s $e $rc" >"$TIMEFILE"; exit $rc'


def log(msg):
    print(f"bench-workloads: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- fixtures


def tree_spec(n, seed=SEED):
    """A deterministic list of tar members for about n entries, parents first
    and every hard link after its target: (path, kind, uid, gid, mode, size,
    linkname, data offset)."""
    rng = random.Random(seed)
    owners = [((0, 0), 55), ((0, 42), 2), ((1, 1), 5), ((33, 33), 10), ((100, 101), 5),
              ((1000, 1000), 15), ((65534, 65534), 5), ((12345, 54321), 3)]
    file_modes = [(0o644, 60), (0o755, 15), (0o600, 8), (0o640, 6), (0o444, 5),
                  (0o700, 3), (0o4755, 1), (0o2755, 1), (0o664, 1)]
    # Directories stay writable and searchable by their owner, so the user can
    # remove every copy afterwards without chmod.
    dir_modes = [(0o755, 80), (0o750, 6), (0o700, 6), (0o775, 5), (0o1777, 1), (0o2775, 2)]

    def pick(choices):
        return rng.choices([c for c, _ in choices], [w for _, w in choices])[0]

    def size():
        r = rng.random()
        if r < 0.10:
            return 0
        if r < 0.60:
            return rng.randint(1, 512)
        if r < 0.90:
            return rng.randint(513, 4096)
        return rng.randint(4097, 32768)

    ndirs = max(1, n * 5 // 100)
    nlinks = n * 6 // 100
    nhard = n * 3 // 100
    nfiles = max(1, n - 1 - ndirs - nlinks - nhard)
    # Directory tree: each new directory under a random one at most 4 deep.
    children = {"tree": []}
    depth = {"tree": 0}
    dirs = ["tree"]
    for i in range(ndirs):
        parent = rng.choice([d for d in dirs[-200:] if depth[d] < 4] or ["tree"])
        d = f"{parent}/d{i:04d}"
        dirs.append(d)
        depth[d] = depth[parent] + 1
        children[d] = []
        children[parent].append(("dir", d))
    slots = ["file"] * nfiles + ["sym"] * nlinks + ["hard"] * nhard
    rng.shuffle(slots)
    for i, kind in enumerate(slots):
        parent = rng.choice(dirs)
        prefix = {"file": "f", "sym": "l", "hard": "h"}[kind]
        children[parent].append((kind, f"{parent}/{prefix}{i:05d}"))
    members = []
    regular = []

    def emit(d):
        (u, g) = pick(owners)
        members.append((d, "dir", u, g, pick(dir_modes), 0, "", 0))
        files = [c for c in children[d] if c[0] != "dir"]
        subdirs = [c for c in children[d] if c[0] == "dir"]
        for kind, path in files:
            (u, g) = pick(owners)
            if kind == "hard" and regular:
                members.append((path, "hard", u, g, 0o644, 0, rng.choice(regular), 0))
                continue
            if kind == "sym":
                r = rng.random()
                if r < 0.5 and regular:
                    target = os.path.relpath(rng.choice(regular), d)
                elif r < 0.8:
                    target = "/usr/share/doc"
                else:
                    target = f"missing-{len(members)}"
                members.append((path, "sym", u, g, 0o777, 0, target, 0))
                continue
            s = size()
            members.append((path, "file", u, g, pick(file_modes), s, "", rng.randrange(0, 65536 - s + 1)))
            regular.append(path)
        for _, sub in subdirs:
            emit(sub)

    emit("tree")
    return members


def make_fixture(path, n):
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    log(f"making {path} ({n} entries)")
    block = random.Random(SEED + 1).randbytes(1 << 16)
    tmp = path.with_suffix(".tmp")
    mtime = 1_700_000_000
    with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tf:
        for i, (name, kind, uid, gid, mode, size, link, off) in enumerate(tree_spec(n)):
            ti = tarfile.TarInfo(name)
            ti.uid, ti.gid, ti.uname, ti.gname = uid, gid, "", ""
            ti.mode = mode
            ti.mtime = mtime + i
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, link
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, link
            else:
                ti.size = size
                tf.addfile(ti, io.BytesIO(block[off:off + size]))
                continue
            tf.addfile(ti)
    tmp.rename(path)


def expected_listing(fixture, fake, uid, gid):
    """What `find tree -printf '%P %y %U %G %m'` must show after extraction:
    the headers' owners under fake root, the user's natively. A hard link
    shares its target's inode, whose metadata tar set from the target's
    header."""
    rows = {}
    with tarfile.open(fixture) as tf:
        for m in tf:
            name = m.name.rstrip("/")
            rel = name[len("tree/"):] if name.startswith("tree/") else ""
            if m.islnk():
                rows[rel] = rows[m.linkname[len("tree/"):]]
                continue
            kind = "d" if m.isdir() else "l" if m.issym() else "f"
            mode = 0o777 if m.issym() else m.mode & 0o7777
            owner = (m.uid, m.gid) if fake else (uid, gid)
            rows[rel] = (kind, owner[0], owner[1], mode)
    return sorted(f"{p}\t{k}\t{u}\t{g}\t{m:o}" for p, (k, u, g, m) in rows.items())


def make_package(root, n, seed=SEED + 2):
    """A package tree of n files under usr/, owned by whoever runs this."""
    if root.exists():
        rmtree(root)
    rng = random.Random(seed)
    block = rng.randbytes(1 << 16)
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: fr-bench\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: fr benchmarks <fr@example.invalid>\n"
        "Description: a tree of small files for scripts/bench-workloads.py\n")
    os.chmod(root / "DEBIAN", 0o755)
    base = root / "usr" / "share" / "fr-bench"
    bindir = root / "usr" / "bin"
    bindir.mkdir(parents=True)
    for i in range(n):
        if i % 50 == 0:
            d = base / f"d{i // 50:03d}"
            d.mkdir(parents=True)
        s = rng.choice([0, rng.randint(1, 512), rng.randint(1, 4096), rng.randint(1, 16384)])
        off = rng.randrange(0, 65536 - s + 1)
        if i % 100 == 99:
            p = bindir / f"tool{i:05d}"
            p.write_bytes(block[off:off + s])
            os.chmod(p, 0o755)
        elif i % 40 == 39:
            os.symlink(f"f{i - 1:05d}", d / f"l{i:05d}")
        else:
            (d / f"f{i:05d}").write_bytes(block[off:off + s])


# fr, once known: subuid mode leaves trees its subordinate ids own, which
# only `fr rm` removes.
FR_BIN = None


def rmtree(p):
    if not os.path.lexists(p):
        return
    if not os.path.isdir(p) or os.path.islink(p):
        os.unlink(p)
        return
    try:
        shutil.rmtree(p)
    except PermissionError:
        # The user's own files go first (fr rm refuses a tree that holds
        # them); what subordinate ids own is left to fr rm.
        subprocess.run(["chmod", "-R", "u+rwx", str(p)], stderr=subprocess.DEVNULL)
        shutil.rmtree(p, ignore_errors=FR_BIN is not None)
        if os.path.lexists(p):
            output([FR_BIN, "rm", str(p)])


# ---------------------------------------------------------------- configurations


class Config:
    def __init__(self, key, label, load, save, fake, note="", tracks_paths=False, image=None):
        self.key, self.label, self.fake, self.note = key, label, fake, note
        self._load, self._save = load, save  # state file -> argv prefix
        # A tool whose database follows paths (pseudo) aborts when files
        # it knows are removed behind its back: its runs clean up inside it.
        # So do an image's, whose store keeps records by path and whose
        # files subordinate ids may own.
        self.tracks_paths = tracks_paths
        # An image's sessions have it as their root: the paths of env_for
        # are inside it, and IMAGE/PATH on the host.
        self.image = image

    def state(self):
        return f"state/{self.key}"

    def prefix(self, save=False):
        return (self._save if save else self._load)(self.state())


def host_path(cfg, path):
    """Where a path of cfg's sessions is on the host."""
    if cfg is None or cfg.image is None:
        return path
    return os.path.join(cfg.image, path.lstrip("/"))


# The image configurations: each image under IMAGES, the workloads' files
# under INSIDE in it.
IMAGES = "images"
INSIDE = "/bench"


def configs(fr):
    out = [
        Config("native", "native", lambda s: [], lambda s: [], False),
        Config("fr-rm", "fr root-mapped",
               lambda s: [fr, "exec", "-q", "-f", "--userns=root-mapped", "-i", s, "--"],
               lambda s: [fr, "exec", "-q", "-f", "--userns=root-mapped", "-s", s, "--"], True),
        Config("fr-none", "fr none",
               lambda s: [fr, "exec", "-q", "-f", "--userns=none", "-i", s, "--"],
               lambda s: [fr, "exec", "-q", "-f", "--userns=none", "-s", s, "--"], True),
        Config("fakeroot", "fakeroot",
               lambda s: ["fakeroot", "-i", s, "--"],
               lambda s: ["fakeroot", "-s", s, "--"], True),
    ]
    missing = []
    # subuid mode where the user has ranges: the kernel holds the owners
    # the namespace maps (the fixture's are all in range), on the host tree.
    probe = subprocess.run([fr, "exec", "-q", "-f", "--userns=subuid", "--", "true"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    subuid = probe.returncode == 0
    if subuid:
        out.insert(2, Config("fr-sub", "fr subuid",
                             lambda s: [fr, "exec", "-q", "-f", "--userns=subuid", "-i", s, "--"],
                             lambda s: [fr, "exec", "-q", "-f", "--userns=subuid", "-s", s, "--"],
                             True))
    else:
        missing.append("fr subuid (no subordinate ids for the user)")
    # fr with an image, the tree the image's own: root-mapped, and subuid
    # where the user has ranges. The image borrows the host's /usr alone,
    # so its tools are the host's only where /bin and /lib are in /usr.
    merged = all(os.path.realpath(f"/{d}") == f"/usr/{d}" for d in ("bin", "sbin", "lib"))
    if not merged:
        missing.append("fr images (the host's /bin, /sbin and /lib are not in /usr)")
    else:
        at = len([c for c in out if c.key.startswith("fr-")]) + 1
        out.insert(at, image_config(fr, "fr-rm-img", "fr root-mapped image", "root-mapped"))
        if subuid:
            out.insert(at + 1, image_config(fr, "fr-sub-img", "fr subuid image", "subuid"))
        else:
            missing.append("fr subuid image (no subordinate ids for the user)")
    if shutil.which("pseudo"):
        # The server leaves the work directory: its state takes a whole path.
        env = lambda s: ["env", f"PSEUDO_LOCALSTATEDIR={os.path.abspath(s)}", "PSEUDO_PREFIX=/usr",
                         "pseudo"]
        out.append(Config("pseudo", "pseudo", env, env, True, tracks_paths=True))
    else:
        missing.append("pseudo")
    if shutil.which("proot"):
        # proot -0 keeps no owners: a chown succeeds and is forgotten.
        out.append(Config("proot", "proot -0", lambda s: ["proot", "-0"], lambda s: ["proot", "-0"],
                          True, "keeps no owners"))
    else:
        missing.append("proot")
    return out, missing


def image_config(fr, key, label, mode):
    """fr running the workloads in an image session, on the image's own
    tree: nothing of the host is bound but /usr, read-only (--contain
    leaves out the home and the working directory). The image keeps its
    records in IMAGE/.fr, so there is no state file to load or save."""
    image = f"{IMAGES}/{key}"
    argv = [fr, "exec", "-q", "-f", f"--userns={mode}", "--contain", "-B", "/usr:/usr:ro", image, "--"]
    return Config(key, label, lambda s: argv, lambda s: argv, True, tracks_paths=True, image=image)


def make_image(cfg, user, uid, gid):
    """The root of cfg's image: bin, sbin, lib and lib64 point into /usr,
    which each session binds from the host; etc names root and the user.
    tree.tar and the package tree are copied under INSIDE before the first
    session makes IMAGE/.fr: the user's files, so root's inside, as the
    host tree's are to the other tools."""
    root = Path(cfg.image)
    for d in ("usr", "etc", "tmp", "root", "dev", "proc", "sys", INSIDE.lstrip("/")):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    os.chmod(root / "root", 0o700)
    for d in ("bin", "sbin", "lib", "lib64"):
        os.symlink(f"usr/{d}", root / d)
    (root / "etc" / "passwd").write_text(f"root:x:0:0:root:/root:/bin/sh\n"
                                         f"{user}:x:{uid}:{gid}::/home/{user}:/bin/sh\n")
    (root / "etc" / "group").write_text(f"root:x:0:\n{user}:x:{gid}:\n")
    inside = Path(host_path(cfg, INSIDE))
    shutil.copyfile("tree.tar", inside / "tree.tar")
    shutil.copytree("pkg", inside / "pkg", symlinks=True)


def remove_images():
    """fr rm each image (subordinate ids own its files in subuid mode)."""
    if not os.path.isdir(IMAGES):
        return
    for name in sorted(os.listdir(IMAGES)):
        output([FR_BIN, "rm", "-q", f"{IMAGES}/{name}"])
    rmtree(IMAGES)


def env_for(cfg, run_tag):
    base, fix, pkg = f"trees/{cfg.key}", "tree.tar", "pkg"
    if cfg.image:
        base, fix, pkg = INSIDE, f"{INSIDE}/tree.tar", f"{INSIDE}/pkg"
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
        "HOME": os.getcwd(),
        "LC_ALL": "C",
        "FIX": fix,
        "D": base,
        "T": f"{base}/tree",
        "T2": f"{base}/copy",
        "X": f"{base}/x",
        "PKG": pkg,
        "DEB": f"{base}/out.deb",
        "TIMEFILE": f"{base}/time-{run_tag}",
    }


def session(argv, env, logfile, timeout=SESSION_TIMEOUT):
    """Run one session in its own process group; (rc, wall seconds, stderr tail)."""
    t0 = time.monotonic()
    with open(logfile, "wb") as err:
        p = spawn(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                  stderr=err, start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            rc = "timeout"
        SESSIONS.discard(p.pid)
    wall = time.monotonic() - t0
    tail = Path(logfile).read_text(errors="replace")[-2000:]
    return rc, wall, tail


def cmd_for(cfg, wl):
    return wl[3] if (not cfg.fake and wl[3]) else wl[2]


def before(env, wl, cfg=None):
    after(env, cfg)
    if wl[0] == "tar":
        os.mkdir(host_path(cfg, env["X"]))


def after(env, cfg=None):
    paths = [env[k] for k in ("X", "T2", "DEB", "TIMEFILE")]
    if cfg is not None and cfg.tracks_paths:
        session(cfg.prefix() + ["rm", "-rf", "--"] + paths, env, os.devnull)
    for p in paths:
        rmtree(host_path(cfg, p))


UNPACK = 'tar --same-owner -xpf "$FIX" -C "$D"'


def restore_tree(cfg, env, logfile):
    """After chown -R: an image keeps what its sessions did, so its tree is
    unpacked again (untimed) and every workload and run sees the headers'
    owners and set-id bits, as the other tools' sessions do with -i. A
    second chown -R of a tree already 1234's would not do the same work:
    it would find no set-id bit to clear and give every file the owner it
    has. Returns rc."""
    if cfg.image is None:
        return 0
    rc, _, _ = session(cfg.prefix() + ["sh", "-c", f'rm -rf "$T" && {UNPACK}'], env, logfile)
    return rc


def timed_run(cfg, wl, tag, logdir):
    env = env_for(cfg, tag)
    before(env, wl, cfg)
    argv = cfg.prefix() + ["sh", "-c", TIMED.format(cmd=cmd_for(cfg, wl))]
    rc, wall, tail = session(argv, env, f"{logdir}/{cfg.key}-{wl[0]}-{tag}.log")
    inside = None
    try:
        s, e, _ = Path(host_path(cfg, env["TIMEFILE"])).read_text().split()
        inside = (int(e) - int(s)) / 1e9
    except (OSError, ValueError):
        pass
    after(env, cfg)
    if wl[0] == "chown":
        restored = restore_tree(cfg, env, f"{logdir}/{cfg.key}-restore-{tag}.log")
        if restored != 0:
            # The later runs would see another tree: this one counts as failed.
            rc = f"tree not unpacked again (rc {restored})"
    return {"rc": rc, "wall": wall, "inside": inside, "stderr": tail if rc != 0 else ""}


# ---------------------------------------------------------------- checks


def listing(var, links=False):
    """Shell: the entries under $var, one `path type uid gid mode [links]` a line."""
    fields = "%P\\t%y\\t%U\\t%G\\t%m" + ("\\t%n" if links else "")
    return f"find \"${var}\" -printf '{fields}\\n' | LC_ALL=C sort"


def run_in(cfg, script, logdir, name, extra_env=None):
    env = env_for(cfg, "check")
    env.update(extra_env or {})
    out = f"{logdir}/{cfg.key}-{name}.out"
    # An image's session writes inside it; the text is copied to the logs.
    inner = f"{env['D']}/check-{name}.out" if cfg.image else out
    argv = cfg.prefix() + ["sh", "-c", f"({script}) >{shlex.quote(inner)}"]
    rc, _, tail = session(argv, env, f"{logdir}/{cfg.key}-{name}.log")
    src = host_path(cfg, inner)
    text = Path(src).read_text(errors="replace") if os.path.exists(src) else ""
    if src != out:
        Path(out).write_text(text)
    return rc, text, tail


def diff_summary(got, want):
    g, w = set(got), set(want)
    missing, extra = sorted(w - g), sorted(g - w)
    return {"ok": not missing and not extra, "missing": len(missing), "extra": len(extra),
            "examples": [f"want {x}" for x in missing[:3]] + [f"got  {x}" for x in extra[:3]]}


def check_config(cfg, uid, gid, logdir):
    """Correctness of each workload once (untimed; doubles as a warm-up)."""
    res = {}
    want = expected_listing("tree.tar", cfg.fake, uid, gid)
    env = env_for(cfg, "check")
    rc, text, tail = run_in(cfg, listing("T"), logdir, "listing")
    res["state"] = diff_summary(text.splitlines(), want) if rc == 0 else {"ok": False, "rc": rc, "stderr": tail}
    # tar: a fresh extraction, listed in the same session.
    before(env, WORKLOADS[0], cfg)
    script = f'{cmd_for(cfg, WORKLOADS[0])} && {listing("XT")}'
    rc, text, tail = run_in(cfg, script, logdir, "tar", {"XT": env["X"] + "/tree"})
    res["tar"] = diff_summary(text.splitlines(), want) if rc == 0 else {"ok": False, "rc": rc, "stderr": tail}
    after(env, cfg)
    # find -ls: one line per entry.
    rc, text, tail = run_in(cfg, 'find "$T" -ls | wc -l', logdir, "find")
    n = len(want)
    res["find"] = {"ok": rc == 0 and text.strip() == str(n), "lines": text.strip(), "want": n,
                   "stderr": tail if rc != 0 else ""}
    # chown -R: nothing left with another owner (the user's own ids natively).
    if cfg.fake:
        script = f'{cmd_for(cfg, WORKLOADS[2])} && find "$T" \\( ! -user 1234 -o ! -group 1234 \\) -print | wc -l'
    else:
        script = f'{cmd_for(cfg, WORKLOADS[2])} && find "$T" \\( ! -user "$(id -u)" -o ! -group "$(id -g)" \\) -print | wc -l'
    rc, text, tail = run_in(cfg, script, logdir, "chown")
    res["chown"] = {"ok": rc == 0 and text.strip() == "0", "left": text.strip(), "stderr": tail if rc != 0 else ""}
    if cfg.image:
        # The tree unpacked again lists as the first did.
        restore_tree(cfg, env, f"{logdir}/{cfg.key}-restore-check.log")
        rc, text, tail = run_in(cfg, listing("T"), logdir, "restored")
        res["restored"] = diff_summary(text.splitlines(), want) if rc == 0 else {"ok": False, "rc": rc, "stderr": tail}
    # cp -a: the copy lists as the original, link counts included.
    before(env, WORKLOADS[3], cfg)
    script = (f'{cmd_for(cfg, WORKLOADS[3])} && '
              f'{listing("T", True)} > "$T2.a" && {listing("T2", True)} > "$T2.b" && '
              f'if cmp -s "$T2.a" "$T2.b"; then echo same; else diff "$T2.a" "$T2.b" | head -6; fi; rm -f "$T2.a" "$T2.b"')
    rc, text, tail = run_in(cfg, script, logdir, "cp")
    res["cp"] = {"ok": rc == 0 and text.strip() == "same", "diff": text.strip()[:600],
                 "stderr": tail if rc != 0 else ""}
    after(env, cfg)
    # dpkg-deb: every member root/root under fake root.
    rc, text, tail = run_in(cfg, f'{cmd_for(cfg, WORKLOADS[4])} && dpkg-deb -c "$DEB" | wc -l', logdir, "dpkg")
    owners = {}
    deb = host_path(cfg, env["DEB"])
    if rc == 0 and os.path.exists(deb):
        for line in output(["dpkg-deb", "-c", deb]).splitlines():
            f = line.split()
            if len(f) > 1:
                owners[f[1]] = owners.get(f[1], 0) + 1
    ok = rc == 0 and (not cfg.fake or set(owners) == {"root/root"})
    res["dpkg-deb"] = {"ok": ok, "owners": owners, "stderr": tail if rc != 0 else ""}
    after(env, cfg)
    return res


# ---------------------------------------------------------------- where the time goes


# One -vv line: `fr: trace: TID[ABI] call(args) = ANSWER`, the answer a
# value, `-1 ERRNO`, or `?` and why for a call the kernel runs itself.
TRACE = re.compile(r"fr: trace: \d+\[\w+\] (\w+)\(.*\) = (\?|-?\d+|0x[0-9a-f]+)")


def profile(fr, cfgs, logdir):
    """Per workload: system calls natively (strace -c -f) and the calls fr was
    notified of (-vv trace lines), in root-mapped mode."""
    out = {}
    rm = next(c for c in cfgs if c.key == "fr-rm")
    nat = cfgs[0]
    for wl in WORKLOADS:
        entry = {}
        if shutil.which("strace"):
            env = env_for(nat, "strace")
            before(env, wl)
            sfile = f"{logdir}/strace-{wl[0]}.txt"
            argv = ["strace", "-f", "-c", "-o", sfile, "sh", "-c", cmd_for(nat, wl)]
            rc, _, _ = session(argv, env, f"{logdir}/strace-{wl[0]}.log")
            after(env)
            try:
                total = [ln for ln in Path(sfile).read_text().splitlines() if ln.rstrip().endswith("total")]
                entry["native_syscalls"] = int(total[-1].split()[3])
            except (OSError, IndexError, ValueError):
                entry["native_syscalls"] = None
        env = env_for(rm, "trace")
        before(env, wl)
        tfile = f"{logdir}/trace-{wl[0]}.log"
        argv = [fr, "-vv", "exec", "-f", "--userns=root-mapped", "-i", rm.state(), "--",
                "sh", "-c", cmd_for(rm, wl)]
        rc, _, _ = session(argv, env, tfile)
        after(env)
        counts, kinds = {}, {"continue": 0, "answered": 0}
        with open(tfile, errors="replace") as f:
            for line in f:
                m = TRACE.match(line)
                if not m:
                    continue
                counts[m.group(1)] = counts.get(m.group(1), 0) + 1
                kinds["continue" if m.group(2) == "?" else "answered"] += 1
        entry.update(rc=rc, notified=sum(counts.values()), by_call=counts, **kinds)
        out[wl[0]] = entry
    return out


# ---------------------------------------------------------------- worker (as the user)


def loadavg():
    return Path("/proc/loadavg").read_text().split()[:3]


def cpu_busy():
    """Seconds of CPU time the whole machine has spent busy (/proc/stat)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return (sum(f[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def our_cpu():
    """CPU seconds of this process and every descendant reaped so far."""
    with SPAWN:
        reap_orphans()
    r, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


SESSIONS = set()  # pids of the children the worker waits for itself
SPAWN = threading.Lock()  # held from fork to SESSIONS.add, and by each reaper pass


def spawn(argv, **kw):
    with SPAWN:
        p = subprocess.Popen(argv, **kw)
        SESSIONS.add(p.pid)
    return p


def output(argv):
    """stdout of a short command run by the worker."""
    p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = p.communicate()[0]
    SESSIONS.discard(p.pid)
    return out


def reap_orphans():
    """Reap the zombies the worker inherits as a child subreaper (fakeroot's
    faked daemon), never a session's own process: fakeroot -s waits with
    `kill -0` until faked is gone, so this must run while sessions do."""
    me = str(os.getpid())
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in SESSIONS:
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z" and fields[1] == me:
            try:
                os.waitpid(int(d), os.WNOHANG)
            except ChildProcessError:
                pass


def reaper():
    while True:
        with SPAWN:
            reap_orphans()
        time.sleep(0.05)


def become_subreaper():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except OSError:
        return
    threading.Thread(target=reaper, daemon=True).start()


def worker(args):
    os.umask(0o022)
    become_subreaper()
    work = Path.cwd()
    fr = str(work / "bin" / "fr")
    global FR_BIN
    FR_BIN = fr
    uid, gid = os.getuid(), os.getgid()
    cfgs, missing = configs(fr)
    remove_images()
    for d in ("trees", "state", "logs", IMAGES):
        rmtree(work / d)
        (work / d).mkdir()
    logdir = "logs"
    log(f"package tree of {max(100, args.files // 7)} files")
    make_package(work / "pkg", max(100, args.files // 7))
    user = pwd.getpwuid(uid).pw_name
    # Each tool unpacks its own tree with --same-owner and saves its state
    # (an image keeps its own).
    prep = {}
    for cfg in cfgs:
        if cfg.image:
            make_image(cfg, user, uid, gid)
        else:
            os.makedirs(f"trees/{cfg.key}")
        env = env_for(cfg, "prep")
        cmd = 'tar -xpf "$FIX" -C "$D"' if not cfg.fake else UNPACK
        rc, wall, tail = session(cfg.prefix(save=True) + ["sh", "-c", cmd], env, f"{logdir}/{cfg.key}-prep.log")
        prep[cfg.key] = {"rc": rc, "wall": wall, "stderr": tail if rc != 0 else ""}
        log(f"prepared {cfg.label}: rc {rc}, {wall:.2f} s")
    checks = {}
    for cfg in cfgs:
        checks[cfg.key] = check_config(cfg, uid, gid, logdir)
        bad = [k for k, v in checks[cfg.key].items() if not v.get("ok")]
        log(f"checked {cfg.label}: {'ok' if not bad else 'FAILED ' + ', '.join(bad)}")
    times = {wl[0]: {c.key: [] for c in cfgs} for wl in WORKLOADS + [EMPTY]}
    loads = [loadavg()]
    others = []
    for r in range(args.runs):
        t0, busy0, ours0 = time.monotonic(), cpu_busy(), our_cpu()
        order = cfgs[r % len(cfgs):] + cfgs[:r % len(cfgs)]
        for wl in WORKLOADS + [EMPTY]:
            for cfg in order:
                res = timed_run(cfg, wl, f"r{r}", logdir)
                times[wl[0]][cfg.key].append(res)
                if res["rc"] != 0:
                    log(f"run {r} {wl[0]} {cfg.label}: rc {res['rc']}: {res['stderr'][-300:]}")
        loads.append(loadavg())
        wall = time.monotonic() - t0
        # CPUs' worth of work done by processes outside this benchmark.
        others.append(max(0.0, (cpu_busy() - busy0) - (our_cpu() - ours0)) / wall)
        log(f"run {r + 1}/{args.runs} done, load {' '.join(loads[-1])}, "
            f"other processes {others[-1]:.2f} CPUs")
    prof = profile(fr, cfgs, logdir) if args.profile else None
    # The images hold a copy of everything: gone once measured.
    remove_images()
    result = {
        "files": args.files, "runs": args.runs, "uid": uid, "gid": gid,
        "user": user,
        "configs": [{"key": c.key, "label": c.label, "fake": c.fake, "note": c.note,
                     "image": c.image, "load": c.prefix(), "save": c.prefix(save=True)} for c in cfgs],
        "missing": missing, "prep": prep, "checks": checks, "times": times, "loads": loads, "others": others,
        "profile": prof, "fixture": fixture_stats("tree.tar"),
        "package_files": max(100, args.files // 7),
    }
    Path(args.worker).write_text(json.dumps(result, indent=1))


def fixture_stats(path):
    s = {"dirs": 0, "files": 0, "symlinks": 0, "hardlinks": 0, "bytes": 0}
    with tarfile.open(path) as tf:
        for m in tf:
            k = "dirs" if m.isdir() else "symlinks" if m.issym() else "hardlinks" if m.islnk() else "files"
            s[k] += 1
            s["bytes"] += m.size if m.isfile() else 0
    s["size"] = os.path.getsize(path)
    return s


# ---------------------------------------------------------------- report


def fmt_ratio(x):
    return f"{x:.2f}×" if x is not None else "–"


def median_of(runs):
    xs = [r["inside"] for r in runs if r["rc"] == 0 and r["inside"] is not None]
    return (statistics.median(xs), min(xs), max(xs), len(xs)) if xs else None


def render(res, meta):
    cfgs = res["configs"]
    label = {c["key"]: c["label"] for c in cfgs}
    fx = res["fixture"]
    L = []
    L.append(f"Measured {meta['date']} with fr {meta['commit']} (release build), "
             f"{res['runs']} run{'s' if res['runs'] != 1 else ''} per cell, as the unprivileged user `{res['user']}`, "
             f"work directory on {meta['fs']} (`{meta['workdir']}`).")
    L.append("")
    L.append(f"Machine: {meta['nproc']} CPUs ({meta['cpu']}), Linux {meta['kernel']}. "
             f"Load average at the start {' '.join(meta['load_start'])}, "
             f"after each round {', '.join(l[0] for l in res['loads'][1:])} (1 min, the "
             f"benchmark's own processes included). {meta['other_load']} During each round, "
             f"processes outside the benchmark used "
             f"{', '.join(f'{x:.2f}' for x in res.get('others', []))} CPUs on average "
             f"(busy time in /proc/stat less the CPU time of the benchmark's processes).")
    L.append("")
    L.append(f"Fixture: `tree.tar`, {sum(fx[k] for k in ('dirs', 'files', 'symlinks', 'hardlinks')):,} "
             f"entries ({fx['dirs']:,} directories, {fx['files']:,} regular files, {fx['symlinks']:,} "
             f"symbolic links, {fx['hardlinks']:,} hard links; {fx['bytes'] / 1e6:.1f} MB of data, "
             f"0–32 KiB a file), owners 0, 1, 33, 100, 1000, 65534, 12345 and groups to match, "
             f"modes with setuid, setgid and sticky bits, generated by the script (seed {SEED}). "
             f"Package: `pkg/`, `DEBIAN/control` and {res['package_files']:,} files.")
    L.append("")
    L.append("Each tool's tree was unpacked by that tool (`tar --same-owner`, natively plain "
             "`tar -xpf`) with its state saved; each timed session loads it and saves nothing:")
    L.append("")
    width = max(len(c["label"]) for c in cfgs) + 2
    for c in cfgs:
        pre = " ".join(shlex.quote(a) for a in c["load"]).replace(meta["frpath"], "fr")
        L.append(f"    {c['label'] + ':':{width}} {pre + ' ' if pre else ''}sh -c '{TIMED.format(cmd='CMD')}'")
    L.append("")
    images = [c for c in cfgs if c.get("image")]
    if images:
        L.append(f"The *image* rows ({', '.join(c['label'] for c in images)}) run fr with an image, "
                 f"the tree inside it: a small root under the work directory whose `bin`, `sbin`, "
                 f"`lib` and `lib64` point into `/usr`, with an `/etc/passwd` and `/etc/group` "
                 f"of root and the user; each session binds the host's `/usr` read-only "
                 f"(`-B /usr:/usr:ro`) and nothing else (`--contain`: no home, no working "
                 f"directory). `tree.tar` and `pkg/` were copied to `{INSIDE}` in the image, and "
                 f"`$T`, `$T2`, `$X` are under it, so the workloads' files are the image's own. "
                 f"The image keeps its records in `IMAGE/.fr`: no state file is loaded or saved; "
                 f"each run's output is removed inside a session of the image, and the tree is "
                 f"unpacked again (untimed) after each `chown -R`.")
        L.append("")
    L.append("CMD, with `$T` the tool's tree, `$T2`, `$X` fresh directories, `$FIX` the tar, "
             "`$PKG` the package tree:")
    L.append("")
    for wl in WORKLOADS:
        L.append(f"    {wl[0] + ':':9} {wl[2]}" + (f"\n    {'  native:':9} {wl[3]}" if wl[3] else ""))
    L.append("")
    L.append("The time is the command's alone, from inside the session (`date +%s%N` before and "
             "after); the start and exit of the session itself is the last table, which runs "
             "`true` and is timed from outside. Natively `tar` cannot give files away, so it "
             "extracts without `--same-owner` (no `chown` calls), and `chown -R` gives the "
             "files to the user's own ids (one `fchownat` per file, as under fake root).")
    L.append("")
    if res["missing"]:
        L.append(f"Not installed here, so not measured: {', '.join('`' + m + '`' for m in res['missing'])}.")
        L.append("")
    meds = {}
    for wl in WORKLOADS:
        meds[wl[0]] = {c["key"]: median_of(res["times"][wl[0]][c["key"]]) for c in cfgs}
    for wl in WORKLOADS:
        L.append(f"**{wl[0]}** ({wl[1]}), median seconds (min–max):")
        L.append("")
        L.append("| tool | median s | min–max | × native | × fakeroot |")
        L.append("|---|---|---|---|---|")
        m = meds[wl[0]]
        nat = m.get("native")
        fk = m.get("fakeroot")
        for c in cfgs:
            v = m[c["key"]]
            runs = res["times"][wl[0]][c["key"]]
            if v is None:
                L.append(f"| {c['label']} | failed ({len(runs)}/{len(runs)}) | | | |")
                continue
            failed = len(runs) - v[3]
            rn = v[0] / nat[0] if nat else None
            rf = v[0] / fk[0] if fk else None
            L.append(f"| {c['label']} | {v[0]:.3f}{f' ({failed} failed)' if failed else ''} | "
                     f"{v[1]:.3f}–{v[2]:.3f} | {fmt_ratio(rn)} | {fmt_ratio(rf)} |")
        L.append("")
    L.append("**session** (`true`, whole session timed from outside, state loaded), median seconds:")
    L.append("")
    L.append("| tool | median s | min–max |")
    L.append("|---|---|---|")
    for c in cfgs:
        xs = [r["wall"] for r in res["times"]["true"][c["key"]] if r["rc"] == 0]
        if xs:
            L.append(f"| {c['label']} | {statistics.median(xs):.3f} | {min(xs):.3f}–{max(xs):.3f} |")
        else:
            L.append(f"| {c['label']} | failed | |")
    L.append("")
    # Targets.
    L.append("Against the issue's targets:")
    L.append("")
    for wl in WORKLOADS:
        m = meds[wl[0]]
        fk = m.get("fakeroot")
        for key in ("fr-rm", "fr-sub", "fr-none", "fr-rm-img", "fr-sub-img"):
            if key not in label:
                continue
            v = m.get(key)
            if v is None:
                L.append(f"- {wl[0]}, {label[key]}: failed, no time")
                continue
            parts = []
            if fk:
                r = v[0] / fk[0]
                parts.append(f"faster than fakeroot: {'met' if r < 1 else 'missed'} ({fmt_ratio(r)} fakeroot)")
            if wl[0] in NATIVE_TARGETS and m.get("native"):
                t = NATIVE_TARGETS[wl[0]]
                r = v[0] / m["native"][0]
                parts.append(f"within {t:g}× native: {'met' if r <= t else f'missed by {r / t:.1f}×'} "
                             f"({fmt_ratio(r)} native)")
            L.append(f"- {wl[0]}, {label[key]}: " + "; ".join(parts))
    L.append("")
    # Checks.
    bad = []
    for key, cks in res["checks"].items():
        for name, v in cks.items():
            if not v.get("ok"):
                detail = v.get("examples") or v.get("diff") or v.get("stderr") or v
                bad.append(f"- {label[key]}, {name}: {json.dumps(detail)[:300]}")
    for key, p in res["prep"].items():
        if p["rc"] != 0:
            bad.append(f"- {label[key]}, unpacking the tree: rc {p['rc']}: {p['stderr'][-200:]}")
    if bad:
        L.append("Checks (one untimed pass per tool before the runs) that failed:")
        L.append("")
        L.extend(bad)
    else:
        L.append("Checks (one untimed pass per tool before the runs): every tool's tree lists with "
                 "the headers' owners and modes (natively the user's), `find -ls` prints every "
                 "entry, `chown -R` leaves no other owner, the `cp -a` copy lists as the original "
                 "(link counts included), and the fake-root packages hold only root/root members"
                 + ("; an image's tree, unpacked again after `chown -R`, lists as the first." if images
                    else "."))
    L.append("")
    prof = res.get("profile")
    if prof:
        L.append("Where the time goes: system calls of one native run (`strace -f -c`) and the "
                 "calls fr root-mapped was notified of in one run (`fr -vv` trace lines; "
                 "*continued* ones were let through to the kernel after the round trip), and "
                 "the time fr adds per notified call (median fr root-mapped − native, ÷ notified):")
        L.append("")
        L.append("| workload | syscalls natively | notified | of which continued | top notified calls | µs added per notified call |")
        L.append("|---|---|---|---|---|---|")
        for wl in WORKLOADS:
            p = prof[wl[0]]
            top = sorted(p["by_call"].items(), key=lambda kv: -kv[1])[:4]
            m = meds[wl[0]]
            per = "–"
            if m.get("fr-rm") and m.get("native") and p["notified"]:
                per = f"{(m['fr-rm'][0] - m['native'][0]) / p['notified'] * 1e6:.1f}"
            nat_calls = p.get("native_syscalls")
            L.append(f"| {wl[0]} | {f'{nat_calls:,}' if nat_calls is not None else '–'} | "
                     f"{p['notified']:,} | {p['continue']:,} | "
                     f"{', '.join(f'{k} {v:,}' for k, v in top)} | {per} |")
        L.append("")
    return wrap_md("\n".join(L))


def wrap_md(text, width=76):
    """Fill prose and list items as the rest of the file is; leave code
    blocks, tables and headings alone."""
    out = []
    for line in text.split("\n"):
        if len(line) <= width or line.startswith(("    ", "|", "#")):
            out.append(line)
        elif line.startswith("- "):
            out.append(textwrap.fill(line, width, subsequent_indent="  ", break_on_hyphens=False,
                                     break_long_words=False))
        else:
            out.append(textwrap.fill(line, width, break_on_hyphens=False, break_long_words=False))
    return "\n".join(out)


def write_doc(doc, text):
    s = doc.read_text()
    if BEGIN not in s or END not in s:
        raise SystemExit(f"{doc}: markers {BEGIN} and {END} not found; not written")
    head, rest = s.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(head + BEGIN + "\n" + text + "\n" + END + tail)


# ---------------------------------------------------------------- driver (root or user)


def user_ids(name):
    out = subprocess.run(["id", "-u", name], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"no user {name!r}: create it or pass --user")
    uid = int(out.stdout)
    gid = int(subprocess.run(["id", "-g", name], capture_output=True, text=True, check=True).stdout)
    return uid, gid


def machine_meta(workdir):
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    fs = subprocess.run(["stat", "-f", "-c", "%T", str(workdir)], capture_output=True, text=True).stdout.strip()
    ps = subprocess.run(["ps", "-eo", "pcpu=,comm=", "--sort=-pcpu"], capture_output=True, text=True).stdout
    busy = [f"{c} ({p}%)" for p, c in (ln.split(None, 1) for ln in ps.splitlines()[:8] if ln.strip())
            if float(p) >= 10 and c not in ("ps", "python3")]
    fuzz = subprocess.run(["pgrep", "-f", "fuzz"], capture_output=True, text=True).stdout.split()
    other = ("Other processes using a CPU at the start: " + ", ".join(busy) + "." if busy
             else "No other process used 10 % of a CPU at the start.")
    if fuzz:
        other += f" A fuzzer was running ({len(fuzz)} processes matching `fuzz`)."
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(), "fs": fs,
            "load_start": loadavg(), "other_load": other}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="timed runs per workload and tool (5)")
    ap.add_argument("--files", type=int, default=20000, help="entries in the tar (20000)")
    ap.add_argument("--user", default=os.environ.get("FR_BENCH_USER", "frtest"),
                    help="user to measure as when started as root (frtest)")
    ap.add_argument("--fr", help="use this fr binary instead of building target/release/fr")
    ap.add_argument("--workdir", help="work directory (/dev/shm/fr-bench-workloads-UID)")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    ap.add_argument("--no-profile", dest="profile", action="store_false",
                    help="skip the strace and fr -vv counts")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    repo = Path(__file__).resolve().parent.parent
    if args.fr:
        fr = Path(args.fr).resolve()
    else:
        log("cargo build --release --bin fr")
        subprocess.run(["cargo", "build", "--release", "--bin", "fr"], cwd=repo, check=True)
        fr = repo / "target" / "release" / "fr"
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True,
                          text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "emulator/src", "supervisor/src",
                            "launcher/src", "Cargo.toml", "Cargo.lock"],
                           cwd=repo, capture_output=True, text=True).stdout.split("\n")
    dirty = [ln[3:] for ln in dirty if ln.strip()]
    commit = f"`{head}`" + (f" with uncommitted changes to {', '.join(dirty)}" if dirty and not args.fr else "")
    if args.fr:
        commit = f"`{fr}` (given with --fr; checkout at `{head}`)"

    cache = repo / "target" / "bench-workloads"
    fixture = cache / f"tree-{args.files}-v{FIXTURE_VERSION}.tar"
    make_fixture(fixture, args.files)

    as_root = os.geteuid() == 0
    uid, gid = user_ids(args.user) if as_root else (os.getuid(), os.getgid())
    work = Path(args.workdir or f"/dev/shm/fr-bench-workloads-{uid}")
    work.mkdir(parents=True, exist_ok=True)
    (work / "bin").mkdir(exist_ok=True)
    # Copies the user can read, whatever the modes of the checkout.
    for src, dst in ((fr, work / "bin" / "fr"), (Path(__file__), work / "bin" / "bench-workloads.py")):
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o755)
    shutil.copyfile(fixture, work / "tree.tar")
    os.chmod(work / "tree.tar", 0o644)
    if as_root:
        for p in (work, work / "bin", work / "bin" / "fr", work / "bin" / "bench-workloads.py", work / "tree.tar"):
            os.chown(p, uid, gid)

    meta = machine_meta(work)
    meta.update(date=time.strftime("%Y-%m-%d"), commit=commit, workdir=str(work),
                frpath=str(work / "bin" / "fr"))
    log(f"load average {' '.join(meta['load_start'])}; {meta['other_load']}")
    out = work / "results.json"
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    argv = [python, str(work / "bin" / "bench-workloads.py"), "--worker", str(out),
            "--runs", str(args.runs), "--files", str(args.files)] + ([] if args.profile else ["--no-profile"])
    if as_root:
        argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups"] + argv
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin", "HOME": str(work),
           "LC_ALL": "C"}
    subprocess.run(argv, cwd=work, env=env, check=True)
    res = json.loads(out.read_text())
    res["meta"] = meta
    (cache / "results.json").write_text(json.dumps(res, indent=1))
    text = render(res, meta)
    (cache / "section.md").write_text(text + "\n")
    print(text)
    if not args.no_doc:
        write_doc(repo / "docs" / "benchmarks.md", text)
        log("docs/benchmarks.md rewritten between the markers")


if __name__ == "__main__":
    main()
