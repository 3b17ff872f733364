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

/// `tests/tools/tar_members.py ARCHIVE`: one line per member.
fn members(archive: &Path) -> String {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/tar_members.py");
    let out = Command::new("python3").arg(tool).arg(archive).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

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
