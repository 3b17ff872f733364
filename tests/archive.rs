//! `fr export`: the image as the tar archive real root would have made of
//! it, readable by GNU tar, bsdtar and Python's tarfile, compressed or not.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{cannot_run, harness, install, is_root, Harness};

/// The image with the static `xattr` helper as `/bin/xattr`.
fn image(h: &Harness) -> Option<PathBuf> {
    let rootfs = h.rootfs()?;
    let tool = h.compile("xattr.c", "xattr-static", &["-static"])?;
    install(h, &tool, &rootfs.join("bin"), "xattr");
    Some(rootfs)
}

/// Owners above 65535, set-id and sticky bits, devices with large numbers,
/// a fifo, hard and symbolic links, a file capability, a trusted.* and a
/// user.* attribute, a named owner and an unreadable file.
const MAKE: &str = "mkdir /p && cd /p && touch f && chown 123:70000 f && chmod 4751 f && \
    ln f hard && ln -s f sl && chown -h 9:10 sl && \
    mknod dev c 250 300000 && chown 7:8 dev && mknod blk b 8 1 && mkfifo fifo && \
    mkdir sticky && chmod 1777 sticky && chown 65534:65534 sticky && \
    echo secret > zero && chmod 000 zero && \
    echo data > cap && chmod 755 cap && \
    xattr set cap security.capability 0100000200200000000000000000000000000000 && \
    xattr set cap trusted.t 01 && xattr set cap user.note 6869";

use common::tar_members as members;

/// Real root makes the same tree in a copy of the image (its files owned
/// by root, as fr shows the user's own) and archives it with GNU tar; the
/// archive `fr export` makes of fr's image has the same members.
#[test]
fn export_writes_what_real_root_would_have_archived() {
    let Some(h) = harness() else { return };
    if !is_root() {
        cannot_run::<()>("the export test compares with real root: run the suite as root");
        return;
    }
    let Some(img) = image(h) else { return };
    let Some(oracle) = image(h) else { return };
    /// Real root's copy is root's: real root removes it, whatever happens.
    struct Remove(PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _remove = Remove(oracle.clone());
    h.exec(Some(&img), &["--fakeroot"], &["sh", "-c", MAKE]).ok();
    let out = h.scratch("export").join("fr.tar");
    let run = h.fr(["export".as_ref(), img.as_os_str(), out.as_os_str()]);
    assert_eq!(run.code, Some(0), "{run:?}");

    let root = |script: &str| {
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let o = oracle.display();
    root(&format!("chown -R 0:0 {o} && chroot {o} /bin/sh -c '{MAKE}'"));
    let orig = out.with_file_name("root.tar");
    root(&format!("tar --xattrs --xattrs-include='*' -cpf {} -C {o} .", orig.display()));

    let (want, got) = (members(&orig), members(&out));
    assert!(want.contains("'dev': '250:300000'") && want.contains("security.capability"), "{want}");
    assert_eq!(got, want, "\nreal root:\n{want}\nfr export:\n{got}");
}

/// The archive lists with the fake owners, names and attributes in GNU
/// tar, compressed by its name (gzip, zstd) or to standard output, and
/// bsdtar reads it too.
#[test]
fn exported_archives_list_in_tar_and_bsdtar_with_any_compression() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    h.exec(Some(&img), &["--fakeroot"], &["sh", "-c", MAKE]).ok();
    let dir = h.scratch("listing");
    let list = |archive: &Path, flag: &str| {
        let out = h
            .command("tar")
            .args([flag, "-tvv", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-f"])
            .arg(archive)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // Columns are padded to the widest entry: one space between fields.
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") + "\n")
            .collect::<String>()
    };
    let mut listings = Vec::new();
    for (name, flag) in
        [("a.tar", "--no-auto-compress"), ("a.tar.gz", "-z"), ("a.tar.zst", "--zstd")]
    {
        let archive = dir.join(name);
        let run = h.fr(["export".as_ref(), img.as_os_str(), archive.as_os_str()]);
        assert_eq!(run.code, Some(0), "{run:?}");
        listings.push(list(&archive, flag));
    }
    let streamed =
        h.fr_command(["export".as_ref(), img.as_os_str(), "-".as_ref()]).output().unwrap();
    assert!(streamed.status.success(), "{}", String::from_utf8_lossy(&streamed.stderr));
    std::fs::write(dir.join("stdout.tar"), &streamed.stdout).unwrap();
    listings.push(list(&dir.join("stdout.tar"), "--no-auto-compress"));
    assert!(listings.iter().all(|l| *l == listings[0]), "{listings:#?}");

    let text = &listings[0];
    let line = |name: &str| {
        text.lines()
            .find(|l| l.ends_with(name) || l.contains(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
            .to_string()
    };
    assert!(line("./p/f").starts_with("-rwsr-x--x 123/70000 "), "{text}");
    assert!(
        line("./p/dev").starts_with("crw-r--r-- 7/8 ") && line("./p/dev").contains("250,300000")
    );
    assert!(line("./p/sticky/").starts_with("drwxrwxrwt 65534/65534 "), "{text}");
    assert!(line("./p/sl").contains("./p/sl -> f"), "{text}");
    assert!(line("./p/hard").contains("link to ./p/f"), "{text}");
    assert!(text.contains("x: 20 security.capability") && text.contains("user.note"), "{text}");
    assert!(!text.contains("./.fr"), "fr's own store is not part of the image:\n{text}");
    // Names come from the image's /etc/passwd and /etc/group.
    let named = h.command("tar").arg("-tvf").arg(dir.join("a.tar")).output().unwrap();
    let named = String::from_utf8_lossy(&named.stdout);
    assert!(named.lines().any(|l| l.contains(" root/root ") && l.ends_with(" ./etc/")), "{named}");
    // The group of 65534 is the image's /etc/group's nogroup, not the
    // user of that id in /etc/passwd (nobody).
    assert!(
        named.lines().any(|l| l.contains(" nobody/nogroup ") && l.ends_with(" ./p/sticky/")),
        "{named}"
    );

    match Command::new("bsdtar").arg("--version").output() {
        Ok(_) => {
            let out = h.command("bsdtar").arg("-tvf").arg(dir.join("a.tar.zst")).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert!(text.lines().any(|l| l.contains("123") && l.ends_with("./p/f")), "{text}");
        }
        Err(_) => {
            cannot_run::<()>("bsdtar is missing: apt-get install libarchive-tools (.ci/run does)");
        }
    }
}

/// An export while a session holds the image is refused with the reason;
/// an output that cannot be written names itself and changes nothing.
#[test]
fn export_errors_name_the_cause() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    h.exec(Some(&img), &["--fakeroot"], &["sh", "-c", MAKE]).ok();
    let store = std::fs::read(img.join(".fr/store")).unwrap();
    let run = h.fr(["export".as_ref(), img.as_os_str(), "/nonexistent/dir/a.tar".as_ref()]);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("/nonexistent/dir/a.tar") && run.stderr.contains("hint:"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(img.join(".fr/store")).unwrap(), store);
    let missing = h.fr(["export", "/nonexistent-image", "-"]);
    assert_eq!(missing.code, Some(1));
    assert!(missing.stderr.contains("/nonexistent-image"), "{}", missing.stderr);
}

/// Real root's tree of everything an image can hold: owners above 65535,
/// devices, a fifo, hard and symbolic links, set-id and sticky bits, ACLs,
/// a file capability and user.*/trusted.* attributes.
fn real_root_archive(h: &Harness, dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    let script = format!(
        "mkdir {t} && cd {t} && mkdir -p etc dev usr/bin && \
         mknod dev/null c 1 3 && mknod dev/sda b 8 0 && mknod dev/big c 250 300000 && mkfifo dev/fifo && \
         mknod blk b 259 70000 && \
         echo data > a && ln a usr/bin/a-link && chown 1000:1000 a && \
         ln -s ../a usr/sl && chown -h 7:8 usr/sl && \
         echo x > suid && chown 10:20 suid && chmod 4755 suid && \
         echo x > sgid && chown 0:70000 sgid && chmod 2755 sgid && \
         echo x > big-ids && chown 100000:4000000 big-ids && \
         mkdir sticky && chmod 1777 sticky && \
         echo x > zero && chmod 000 zero && \
         echo x > acl && setfacl -m u:1000:rwx,g:27:r acl && \
         mkdir defacl && setfacl -d -m u:5:rx defacl && \
         echo x > capped && chmod 755 capped && setcap cap_net_raw+ep capped && \
         setfattr -n user.note -v hello a && setfattr -n trusted.t -v 0x01 a && \
         tar --xattrs --xattrs-include='*' -cpf {o} -C {t} .",
        t = tree.display(),
        o = dir.join("orig.tar").display()
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&tree).unwrap();
    let orig = dir.join("orig.tar");
    if let Some(u) = &h.user {
        std::os::unix::fs::chown(&orig, Some(u.uid), Some(u.gid)).unwrap();
    }
    orig
}

fn root_tools_missing() -> Option<&'static str> {
    ["setfacl", "setcap", "setfattr"].into_iter().find(|tool| {
        !Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// `fr import` of real root's archive, then `fr export`: the same members,
/// and a session in the image sees the owners, modes, devices and
/// attributes real root made.
#[test]
fn import_then_export_gives_back_real_roots_archive() {
    let Some(h) = harness() else { return };
    if !is_root() {
        cannot_run::<()>(
            "the import test needs real root to make its archive: run the suite as root",
        );
        return;
    }
    if let Some(tool) = root_tools_missing() {
        cannot_run::<()>(format!(
            "{tool} is missing: apt-get install acl libcap2-bin attr (.ci/run does)"
        ));
        return;
    }
    let dir = h.scratch("import");
    let orig = real_root_archive(h, &dir);
    let gz = dir.join("orig.tar.gz");
    let zipped = h
        .command("sh")
        .arg("-c")
        .arg(format!("gzip -c {} > {}", orig.display(), gz.display()))
        .status()
        .unwrap();
    assert!(zipped.success());
    let want = members(&orig);
    assert!(
        want.contains("'dev': '250:300000'") && want.contains("system.posix_acl_default"),
        "{want}"
    );
    for (archive, image) in [(&orig, dir.join("img")), (&gz, dir.join("img-gz"))] {
        let run = h.fr(["import".as_ref(), archive.as_os_str(), image.as_os_str()]);
        assert_eq!(run.code, Some(0), "{run:?}");
        let copy = dir.join("copy.tar");
        let run = h.fr(["export".as_ref(), image.as_os_str(), copy.as_os_str()]);
        assert_eq!(run.code, Some(0), "{run:?}");
        let got = members(&copy);
        assert_eq!(got, want, "\nreal root:\n{want}\nimport then export:\n{got}");
    }
    let Some(busybox) = h.rootfs() else { return };
    let bb = busybox.join("bin/busybox");
    std::fs::create_dir_all(dir.join("img/bin")).unwrap();
    std::fs::copy(&bb, dir.join("img/bin/busybox")).unwrap();
    let img = dir.join("img");
    // (The session's /dev is fr's own; a device elsewhere shows.)
    let out = h.exec(
        Some(&img),
        &["--fakeroot"],
        &[
            "/bin/busybox",
            "stat",
            "-c",
            "%u:%g %a %F %t:%T %n",
            "/blk",
            "/suid",
            "/big-ids",
            "/sticky",
            "/usr/sl",
        ],
    );
    assert_eq!(
        out.ok(),
        "0:0 644 block special file 103:11170 /blk\n10:20 4755 regular file 0:0 /suid\n\
         100000:4000000 644 regular file 0:0 /big-ids\n0:0 1777 directory 0:0 /sticky\n\
         7:8 777 symbolic link 0:0 /usr/sl\n"
    );
}

/// Members that would land outside the image are refused by name, and
/// nothing appears outside it.
#[test]
fn import_refuses_members_that_escape_the_image() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("escape");
    let outside = dir.join("outside");
    std::fs::create_dir(&outside).unwrap();
    // The user may write there: only fr's checks keep the members out.
    if let Some(u) = &h.user {
        std::os::unix::fs::chown(&outside, Some(u.uid), Some(u.gid)).unwrap();
    }
    let make = format!(
        r#"
import io, sys, tarfile
def archive(path, members):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, target in members:
            m = tarfile.TarInfo(name)
            if kind == "file":
                data = b"evil\n"; m.size = len(data); t.addfile(m, io.BytesIO(data))
            else:
                m.type = {{"sym": tarfile.SYMTYPE, "link": tarfile.LNKTYPE, "dir": tarfile.DIRTYPE}}[kind]; m.linkname = target; t.addfile(m)
archive("dotdot.tar", [("ok", "file", ""), ("../outside/evil", "file", "")])
archive("abs.tar", [("{o}/abs", "file", "")])
archive("symdir.tar", [("d", "sym", "{o}"), ("d/x", "file", "")])
archive("hardlink.tar", [("h", "link", "../outside/victim")])
archive("replaced.tar", [("d", "sym", "{o}"), ("d", "dir", ""), ("d/x", "file", "")])
"#,
        o = outside.display()
    );
    let out = h.command("python3").arg("-c").arg(&make).current_dir(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(outside.join("victim"), "keep").unwrap();
    if let Some(u) = &h.user {
        std::os::unix::fs::chown(outside.join("victim"), Some(u.uid), Some(u.gid)).unwrap();
    }
    for (archive, member) in [
        ("dotdot.tar", "../outside/evil"),
        ("abs.tar", "/abs"),
        ("symdir.tar", "d/x"),
        ("hardlink.tar", "`h`"),
    ] {
        let image = dir.join(format!("img-{archive}"));
        let run = h.fr_in(&dir, ["import", archive, image.to_str().unwrap()]);
        assert_eq!(run.code, Some(1), "{archive}: {run:?}");
        assert!(
            run.stderr.contains(member) && run.stderr.contains("hint:"),
            "{archive}: {}",
            run.stderr
        );
    }
    let mut left: Vec<_> =
        std::fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name()).collect();
    left.sort();
    assert_eq!(left, ["victim"]);
    assert_eq!(std::fs::read_to_string(outside.join("victim")).unwrap(), "keep");
    // A symlink replaced by a directory of the same name: what goes into
    // the directory lands in the image.
    let image = dir.join("img-replaced");
    let run = h.fr_in(&dir, ["import", "replaced.tar", image.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(std::fs::read_to_string(image.join("d/x")).unwrap(), "evil\n");
    // What came before the bad member is in the image.
    assert_eq!(std::fs::read_to_string(dir.join("img-dotdot.tar/ok")).unwrap(), "evil\n");
}

/// A damaged or truncated archive stops the import with an error that
/// names it; the store of what was unpacked stays readable.
#[test]
fn a_damaged_archive_is_a_clear_error() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    h.exec(Some(&img), &["--fakeroot"], &["sh", "-c", MAKE]).ok();
    let dir = h.scratch("damaged");
    let good = dir.join("good.tar");
    let run = h.fr(["export".as_ref(), img.as_os_str(), good.as_os_str()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let bytes = std::fs::read(&good).unwrap();
    let mut flipped = bytes.clone();
    flipped[100] ^= 0x55; // a mode digit of the first header
    std::fs::write(dir.join("flipped.tar"), &flipped).unwrap();
    std::fs::write(dir.join("cut.tar"), &bytes[..bytes.len() / 2 + 7]).unwrap();
    std::fs::write(dir.join("garbage.tar.gz"), b"\x1f\x8b not really gzip").unwrap();
    for (name, says, unpacked) in [
        ("flipped.tar", "checksum", false),
        ("cut.tar", "ends in the middle", true),
        ("garbage.tar.gz", "gzip", false),
    ] {
        let target = dir.join(format!("img-{name}"));
        let run = h.fr_in(&dir, ["import", name, target.to_str().unwrap()]);
        assert_eq!(run.code, Some(1), "{name}: {run:?}");
        assert!(run.stderr.contains(name) && run.stderr.contains(says), "{name}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        // What was unpacked, with its store, reads back; an IMAGE fr
        // made and put nothing into is gone.
        assert_eq!(target.exists(), unpacked, "{name}");
        if unpacked {
            let again = h.fr_in(&dir, ["export", target.to_str().unwrap(), "-"]);
            assert_eq!(again.code, Some(0), "{name}: {}", again.stderr);
        }
    }
}

/// On a terminal export and import say how far they are; with `-q`, or
/// when standard error is not a terminal, they say nothing.
#[test]
fn progress_shows_on_a_terminal_only() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    let dir = h.scratch("progress");
    let fr = h.fr.display().to_string();
    let on_tty = |args: &str| {
        // script(1) gives the command a terminal and copies what it prints.
        let out = h
            .command("script")
            .args(["-qec", &format!("{fr} {args}"), "/dev/null"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{args}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (i, a, b) = (img.display(), dir.join("a.tar"), dir.join("img"));
    let text = on_tty(&format!("export {i} {}", a.display()));
    assert!(
        text.contains("] 100% ") && text.contains(" files, ") && text.contains("done"),
        "{text}"
    );
    let text = on_tty(&format!("import {} {}", a.display(), b.display()));
    assert!(
        text.contains("] 100% ") && text.contains(" files, ") && text.contains("done"),
        "{text}"
    );
    assert_eq!(on_tty(&format!("-q export {i} {}", a.display())), "");
    let piped = h.fr(["export".as_ref(), img.as_os_str(), a.as_os_str()]);
    assert_eq!((piped.code, piped.stderr.as_str()), (Some(0), ""));
}

/// Python that writes hostile and odd archives: `add(tar, name, kind,
/// data, mode, uid, gid, link, pax)` with raw pax records, and `acl()`
/// for an ACL's xattr value.
const MAKE_TAR: &str = r#"
import io, struct, tarfile
def acl(entries):
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in entries)
U = 0xffffffff
def add(t, name, kind="file", data=b"", mode=0o644, uid=0, gid=0, link="", pax=None, mtime=1000000000):
    m = tarfile.TarInfo(name)
    m.mode, m.uid, m.gid, m.mtime = mode, uid, gid, mtime
    m.type = {"file": tarfile.REGTYPE, "old": tarfile.AREGTYPE, "dir": tarfile.DIRTYPE,
              "link": tarfile.LNKTYPE}[kind]
    m.linkname = link
    if pax:
        m.pax_headers = {k: v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v
                         for k, v in pax.items()}
    m.size = len(data)
    t.addfile(m, io.BytesIO(data) if data else None)
def archive(path):
    return tarfile.open(path, "w", format=tarfile.PAX_FORMAT, encoding="utf-8",
                        errors="surrogateescape")
"#;

/// Runs `script` after [`MAKE_TAR`] in `dir`, as the test user.
fn make_tars(h: &Harness, dir: &Path, script: &str) {
    let out = h
        .command("python3")
        .arg("-c")
        .arg(format!("{MAKE_TAR}\n{script}"))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Archives real root's tar and fr import differently unless fr does as
/// tar: an old-style directory (a regular member named `old/`), a hard
/// link to itself and one repeated, a v3 file capability for root, an
/// access ACL that says no more than a mode, xattr names with `=` and `%`
/// (pax keys `%3D`, `%25`), directories made for a member without one
/// (in a directory of the archive, whose owner and mode tar sets last,
/// and in a set-group-id directory already there), and a second import
/// over the first that gives a file back to root.
#[test]
fn import_unpacks_odd_members_as_real_roots_tar_does() {
    let Some(h) = harness() else { return };
    if !is_root() {
        cannot_run::<()>("the import test compares with real root: run the suite as root");
        return;
    }
    let dir = h.scratch("odd");
    make_tars(
        h,
        &dir,
        r#"
capv3 = bytes.fromhex("01000003" "00200000" "00000000" "00000000" "00000000" "00000000")
with archive("odd.tar") as t:
    add(t, "d", "dir", mode=0o2775, gid=50)
    add(t, "d/x/y/f", data=b"deep\n")
    add(t, "old/", "old", mode=0o750, uid=5)
    add(t, "old/f", data=b"in old\n")
    add(t, "h", data=b"keep\n")
    add(t, "h", "link", link="h")
    add(t, "h2", "link", link="h")
    add(t, "h2", "link", link="h")
    add(t, "cap", data=b"x", mode=0o755, pax={"SCHILY.xattr.security.capability": capv3})
    add(t, "acl", data=b"x", mode=0o600,
        pax={"SCHILY.xattr.system.posix_acl_access": acl([(1, 6, U), (4, 4, U), (0x20, 0, U)])})
    add(t, "eq", data=b"x", pax={"SCHILY.xattr.user.a%3Db": "1", "SCHILY.xattr.trusted.c%25d": "2"})
    add(t, "p", "dir", mode=0o2775, gid=50)
    add(t, "s", data=b"x", uid=5, gid=5)
with archive("more.tar") as t:
    add(t, "p/x/f", data=b"in p\n")
    add(t, "s", data=b"y")
"#,
    );
    /// Real root's tree is root's: real root removes it.
    struct Remove(PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let tree = dir.join("tree");
    let _remove = Remove(tree.clone());
    let (d, t) = (dir.display(), tree.display());
    let script = format!(
        "umask 022 && mkdir {t} && cd {t} && \
         for a in odd more; do tar --xattrs --xattrs-include='*' --same-owner -xpf {d}/$a.tar || exit 1; done && \
         tar --xattrs --xattrs-include='*' -cpf {d}/root.tar -C {t} ."
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let img = dir.join("img");
    for archive in ["odd.tar", "more.tar"] {
        let run = h
            .command("sh")
            .arg("-c")
            .arg(format!("umask 022 && exec {} import {archive} {}", h.fr.display(), img.display()))
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(run.status.success(), "{archive}: {}", String::from_utf8_lossy(&run.stderr));
    }
    let copy = dir.join("fr.tar");
    let run = h.fr(["export".as_ref(), img.as_os_str(), copy.as_os_str()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let (want, got) = (members(&dir.join("root.tar")), members(&copy));
    assert!(want.contains("'links': ['h', 'h2']") && want.contains("user.a%3Db"), "{want}");
    assert_eq!(got, want, "\nreal root:\n{want}\nfr import, export:\n{got}");
    // The user.* attribute is on the file for real, by its decoded name.
    let names = h
        .command("python3")
        .arg("-c")
        .arg("import os, sys; print(os.listxattr(sys.argv[1]))")
        .arg(img.join("eq"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&names.stdout), "['user.a=b']\n");
}

/// An extended attribute real root's `setxattr(2)` would refuse stops the
/// import with an error naming the member and the attribute.
#[test]
fn import_refuses_xattrs_the_kernel_would_refuse() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("badxattr");
    make_tars(
        h,
        &dir,
        r#"
cases = {
    "default-acl": ("f", "file", "system.posix_acl_default", acl([(1, 7, U), (4, 5, U), (0x20, 5, U)])),
    "bad-acl": ("f", "file", "system.posix_acl_access", acl([(1, 7, U), (0x20, 5, U)])),
    "bad-cap": ("f", "file", "security.capability", b"\x01\x00\x00\x02\x00"),
    "big": ("f", "file", "trusted.big", b"x" * 65537),
}
for name, (member, kind, key, value) in cases.items():
    with archive(name + ".tar") as t:
        add(t, "before", data=b"ok\n")
        add(t, member, kind, data=b"x", pax={"SCHILY.xattr." + key: value})
"#,
    );
    for (archive, xattr) in [
        ("default-acl", "system.posix_acl_default"),
        ("bad-acl", "system.posix_acl_access"),
        ("bad-cap", "security.capability"),
        ("big", "trusted.big"),
    ] {
        let img = dir.join(format!("img-{archive}"));
        let run = h.fr_in(&dir, ["import", &format!("{archive}.tar"), img.to_str().unwrap()]);
        assert_eq!(run.code, Some(1), "{archive}: {run:?}");
        assert!(
            run.stderr.contains("member `f`") && run.stderr.contains(xattr),
            "{archive}: {}",
            run.stderr
        );
        assert!(!img.join("f").exists(), "{archive}: the refused member was unpacked");
        assert_eq!(std::fs::read_to_string(img.join("before")).unwrap(), "ok\n");
    }
}

/// A size no archive can hold, on a member whose data is never unpacked
/// (the image root as a regular member), is an error, not a crash; data
/// of such a member is skipped.
#[test]
fn import_skips_the_data_of_members_it_does_not_unpack() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("skipped");
    make_tars(
        h,
        &dir,
        r#"
with archive("huge.tar") as t:
    add(t, ".", pax={"size": str(2**64 - 1)})
    add(t, "f", data=b"after\n")
with archive("root-data.tar") as t:
    add(t, ".", data=b"r" * 700)
    add(t, "f", data=b"after\n")
"#,
    );
    let img = dir.join("img-huge");
    let run = h.fr_in(&dir, ["import", "huge.tar", img.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("member `.`") && run.stderr.contains("size"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let img = dir.join("img-root-data");
    let run = h.fr_in(&dir, ["import", "root-data.tar", img.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(std::fs::read_to_string(img.join("f")).unwrap(), "after\n");
}

/// Modification times keep their nanoseconds, and times before 1970 their
/// sign, through import and export (pax `mtime` records).
#[test]
fn mtimes_keep_their_nanoseconds_through_import_and_export() {
    use std::os::unix::fs::MetadataExt;
    let Some(h) = harness() else { return };
    let dir = h.scratch("mtime");
    make_tars(
        h,
        &dir,
        r#"
with archive("t.tar") as t:
    add(t, "f", data=b"x", pax={"mtime": "1234567890.123456789"})
    add(t, "d", "dir", pax={"mtime": "1234567890.5"})
    add(t, "old", data=b"x", pax={"mtime": "-1.25"})
    add(t, "whole", data=b"x", mtime=1234567890)
"#,
    );
    let img = dir.join("img");
    let run = h.fr_in(&dir, ["import", "t.tar", img.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let times: Vec<(i64, i64)> = ["f", "d", "old", "whole"]
        .iter()
        .map(|n| {
            let m = std::fs::symlink_metadata(img.join(n)).unwrap();
            (m.mtime(), m.mtime_nsec())
        })
        .collect();
    assert_eq!(
        times,
        [
            (1_234_567_890, 123_456_789),
            (1_234_567_890, 500_000_000),
            (-2, 750_000_000),
            (1_234_567_890, 0)
        ]
    );
    let out = dir.join("out.tar");
    let run = h.fr(["export".as_ref(), img.as_os_str(), out.as_os_str()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let read = h
        .command("python3")
        .arg("-c")
        .arg(
            "import math, sys, tarfile\n\
             for m in tarfile.open(sys.argv[1]):\n\
             \x20   print(m.name, m.pax_headers.get('mtime'), math.floor(m.mtime))",
        )
        .arg(&out)
        .output()
        .unwrap();
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    let text = String::from_utf8(read.stdout).unwrap();
    for line in [
        "./f 1234567890.123456789 1234567890",
        "./d 1234567890.5 1234567890",
        "./old -1.25 -2",
        "./whole None 1234567890",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
}

/// A second import over an image replaces a file: what the first recorded
/// for it (an owner) goes with it, though nothing else changed.
#[test]
fn a_second_import_leaves_no_stale_record() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("reimport");
    make_tars(
        h,
        &dir,
        r#"
with archive("first.tar") as t:
    add(t, "s", data=b"x", uid=5, gid=5)
    add(t, "t", data=b"x", uid=6, gid=6)
with archive("second.tar") as t:
    add(t, "s", data=b"y")
"#,
    );
    let img = dir.join("img");
    for archive in ["first.tar", "second.tar"] {
        let run = h.fr_in(&dir, ["import", archive, img.to_str().unwrap()]);
        assert_eq!(run.code, Some(0), "{archive}: {run:?}");
    }
    let out = dir.join("out.tar");
    let run = h.fr(["export".as_ref(), img.as_os_str(), out.as_os_str()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let text = members(&out);
    assert!(text.contains("s {'type': '0', 'mode': '0o644', 'owner': '0:0'"), "{text}");
    assert!(text.contains("t {'type': '0', 'mode': '0o644', 'owner': '6:6'"), "{text}");
}

/// An archive that ends in the middle of a member's data: the members
/// before it are in IMAGE with their records, as the error's hint says,
/// and the member cut short is not left there half written.
#[test]
fn an_archive_cut_in_a_member_leaves_no_half_written_member() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("cut-member");
    make_tars(
        h,
        &dir,
        r#"
with archive("whole.tar") as t:
    add(t, "first", data=b"x", uid=5, gid=6)
    add(t, "big", data=b"y" * 300000, uid=7, gid=7)
"#,
    );
    let whole = std::fs::read(dir.join("whole.tar")).unwrap();
    // Past both headers, well inside big's data.
    std::fs::write(dir.join("cut.tar"), &whole[..150_000]).unwrap();
    let img = dir.join("img");
    let run = h.fr_in(&dir, ["import", "cut.tar", img.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("ends in the middle"), "{}", run.stderr);
    assert!(run.stderr.contains("the members before this one are in IMAGE"), "{}", run.stderr);
    assert_eq!(std::fs::read(img.join("first")).unwrap(), b"x");
    assert!(img.join("big").symlink_metadata().is_err(), "the member cut short was left");
    // The store reads back, with the first member's owner.
    let out = dir.join("out.tar");
    let run = h.fr(["export".as_ref(), img.as_os_str(), out.as_os_str()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let text = members(&out);
    assert!(text.contains("first {'type': '0', 'mode': '0o644', 'owner': '5:6'"), "{text}");
    assert!(!text.contains("big"), "{text}");
}
