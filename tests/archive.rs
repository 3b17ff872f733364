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
    for (name, says) in
        [("flipped.tar", "checksum"), ("cut.tar", "ends in the middle"), ("garbage.tar.gz", "")]
    {
        let target = dir.join(format!("img-{name}"));
        let run = h.fr_in(&dir, ["import", name, target.to_str().unwrap()]);
        assert_eq!(run.code, Some(1), "{name}: {run:?}");
        assert!(run.stderr.contains(name) && run.stderr.contains(says), "{name}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        // What was unpacked, with its store, reads back.
        let again = h.fr_in(&dir, ["export", target.to_str().unwrap(), "-"]);
        assert_eq!(again.code, Some(0), "{name}: {}", again.stderr);
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
