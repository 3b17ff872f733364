//! subuid mode and the automatic choice of mode: the test user has
//! subordinate ranges (`.ci/run` gives them), a second user has none. The
//! same commands give the same answers in both; what differs is where the
//! owners live (the kernel, or fr's inode table) and the INFO line.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{cannot_run, harness, run, subid_range, subuid_range, subuid_ready, Harness};

const SCRIPT: &str = "touch /f /g && chown 1000:1000 /f && stat -c %u:%g /f && \
    mknod /var/null c 1 3 && stat -c '%u:%g %F %t:%T' /var/null && \
    chown 70000 /g && stat -c %u:%g /g && id -u";
const ANSWERS: &str = "1000:1000\n0:0 character special file 1:3\n70000:0\n0\n";

fn ready(h: &Harness) -> Option<(u32, u32)> {
    if !subuid_ready(h) {
        return cannot_run(
            "the test user needs ranges in /etc/subuid and /etc/subgid and a setuid \
             newuidmap/newgidmap (.ci/run sets them up)",
        );
    }
    subuid_range(h).or_else(|| cannot_run("the test user's range in /etc/subuid cannot be read"))
}

/// The harness and a fresh rootfs, where subuid mode can run.
fn subuid_rootfs() -> Option<(&'static Harness, std::path::PathBuf)> {
    let h = harness()?;
    ready(h)?;
    Some((h, h.rootfs()?))
}

#[test]
fn subuid_mode_keeps_owners_in_the_kernel_and_lays_the_rest_over() {
    let Some(h) = harness() else { return };
    let Some((start, _)) = ready(h) else { return };
    let Some(rootfs) = h.rootfs() else { return };
    let out = h.exec(Some(&rootfs), &["-v", "--fakeroot"], &["sh", "-c", SCRIPT]);
    assert!(out.stderr.contains("fr: info: subuid mode: "), "{}", out.stderr);
    assert_eq!(out.ok(), ANSWERS);
    // On the host, the owner is the subordinate id that 1000 maps to (0 is
    // the user, 1 the first subordinate id); ids beyond the ranges and the
    // device are fr's records, over a file the user owns.
    let f = std::fs::metadata(rootfs.join("f")).unwrap();
    assert_eq!(
        (f.uid(), f.gid()),
        (start + 999, subid_range(h, "/etc/subgid").expect("the test user's subgid range").0 + 999)
    );
    let g = std::fs::metadata(rootfs.join("g")).unwrap();
    assert_eq!(g.uid(), h.uid);
    let null = std::fs::symlink_metadata(rootfs.join("var/null")).unwrap();
    assert!(null.is_file(), "the device is a placeholder on the host");
    // A second session sees the same, and -q silences the INFO line.
    let again = h.exec(
        Some(&rootfs),
        &["-q", "--fakeroot"],
        &["stat", "-c", "%u:%g %t:%T", "/f", "/g", "/var/null"],
    );
    assert_eq!(again.stderr, "");
    assert_eq!(again.ok(), "1000:1000 0:0\n70000:0 0:0\n0:0 1:3\n");
}

/// Files a subuid-mode session gave to subordinate ids: the user's `rm -rf`
/// fails on them, `fr rm` removes the whole tree.
#[test]
fn fr_rm_removes_what_the_user_cannot() {
    let Some((h, rootfs)) = subuid_rootfs() else { return };
    h.exec(
        Some(&rootfs),
        &["-q", "--fakeroot"],
        &["sh", "-c", "mkdir -p /d/e && touch /d/e/x && chown -R 1000:1000 /d && chmod 500 /d"],
    )
    .ok();
    let rm = run(h.command("rm").arg("-rf").arg(&rootfs));
    assert_ne!(rm.code, Some(0), "rm -rf by the user should fail on subordinate-owned files");
    // (As the user, the test cannot look inside /d, only at it.)
    assert!(rootfs.join("d").symlink_metadata().is_ok(), "rm -rf removed /d");
    assert_eq!(h.fr(["rm".as_ref(), rootfs.as_os_str()]).ok(), "");
    assert!(!rootfs.exists(), "fr rm left {}", rootfs.display());
    // A directory fr never worked on is refused and left alone.
    let plain = h.scratch("plain");
    std::fs::write(plain.join("keep"), "").unwrap();
    let refused = h.fr(["rm".as_ref(), plain.as_os_str()]);
    assert_eq!(refused.code, Some(1));
    assert!(refused.stderr.contains("neither an fr image"), "{}", refused.stderr);
    assert!(plain.join("keep").exists());
    // A missing image is an error that names it.
    let gone = h.fr(["rm".as_ref(), rootfs.as_os_str()]);
    assert_eq!(gone.code, Some(1));
    assert!(gone.stderr.contains(&rootfs.display().to_string()), "{}", gone.stderr);
}

/// `fr export` of an image a subuid-mode session left with a directory
/// only a subordinate id may read: the archive carries the owners the
/// workload saw, the kernel's and fr's alike.
#[test]
fn export_reads_what_subordinate_ids_own() {
    let Some((h, rootfs)) = subuid_rootfs() else { return };
    h.exec(
        Some(&rootfs),
        &["-q", "--fakeroot"],
        &[
            "sh",
            "-c",
            "mkdir /d && echo hi > /d/x && chown -R 1000:1001 /d && chown 70000 /d/x && \
             chmod 600 /d/x && chmod 700 /d",
        ],
    )
    .ok();
    let ls = run(h.command("ls").arg(rootfs.join("d")));
    assert_ne!(ls.code, Some(0), "the user should not read /d");
    let out = h.scratch("export").join("img.tar");
    h.fr(["export".as_ref(), rootfs.as_os_str(), out.as_os_str()]).ok();
    let listing = run(h.command("tar").args(["--numeric-owner", "-tvf"]).arg(&out)).ok();
    let line = |name: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(name))
            .unwrap_or_else(|| panic!("no {name} in\n{listing}"))
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(line("./d/"), "drwx------ 1000/1001 0");
    assert_eq!(line("./d/x"), "-rw------- 70000/1001 3");
}

/// The user without ranges gets the same answers in root-mapped mode, with
/// the reason on the INFO line; forcing subuid mode is a clear error.
#[test]
fn a_user_without_ranges_gets_root_mapped_mode_and_the_same_answers() {
    let Some(h) = harness() else { return };
    let Some(user) = common::second_user() else { return };
    let Some(rootfs) = h.rootfs_for(&user) else { return };
    let exec = |opts: &[&str], cmd: &[&str]| {
        let mut c = h.command_as(&user, &h.fr);
        c.arg("exec").args(opts).arg(&rootfs).arg("--").args(cmd);
        run(&mut c)
    };
    let out = exec(&["--fakeroot"], &["sh", "-c", SCRIPT]);
    let reason = format!(
        "root-mapped mode, not subuid mode because /etc/subuid gives {} no range",
        user.name
    );
    assert!(out.stderr.contains(&reason), "{}", out.stderr);
    assert_eq!(out.ok(), ANSWERS);
    // Nothing was chowned for real: the user still owns every file.
    for f in ["f", "g", "var/null"] {
        assert_eq!(std::fs::symlink_metadata(rootfs.join(f)).unwrap().uid(), user.uid, "{f}");
    }
    let forced = exec(&["--fakeroot", "--userns=subuid"], &["true"]);
    assert_eq!(forced.code, Some(125));
    assert!(
        forced
            .stderr
            .contains(&format!("--userns=subuid: /etc/subuid gives {} no range", user.name)),
        "{}",
        forced.stderr
    );
    assert!(forced.stderr.contains("fr: hint: fr check"), "{}", forced.stderr);
    // fr rm works for this user too.
    let mut rm = h.command_as(&user, &h.fr);
    assert_eq!(run(rm.arg("rm").arg(&rootfs)).ok(), "");
    assert!(!Path::new(&rootfs).exists());
}

/// Each forced mode is the one that runs, and says so with -v.
#[test]
fn forced_modes_are_named() {
    let Some(h) = harness() else { return };
    if ready(h).is_none() {
        return;
    }
    let Some(rootfs) = h.rootfs() else { return };
    for (mode, line) in [
        ("subuid", "fr: info: subuid mode (--userns=subuid)"),
        ("root-mapped", "fr: info: root-mapped user namespace (--userns=root-mapped)"),
    ] {
        let flag = format!("--userns={mode}");
        let out =
            h.exec(Some(&rootfs), &["-v", "--fakeroot", &flag], &["cat", "/proc/self/uid_map"]);
        assert!(out.stderr.contains(line), "{mode}: {}", out.stderr);
        let lines = out.ok().lines().count();
        assert_eq!(lines, if mode == "subuid" { 2 } else { 1 }, "{mode}");
    }
    let none = h.exec(None, &["-v", "--fakeroot", "--userns=none"], &["true"]);
    assert!(none.stderr.contains("fr: info: emulation alone"), "{}", none.stderr);
}

/// The copy docs/modes.md gives for an image whose owners the kernel
/// holds: `cp -a` as fake root in subuid mode on the host tree, which
/// copies the store along and gives the copies to the same ids.
#[test]
fn a_copy_made_in_subuid_mode_keeps_kernel_and_recorded_owners() {
    let Some((h, rootfs)) = subuid_rootfs() else { return };
    let make = "mkdir /d && echo x > /d/f && chown -R 1000:1001 /d && chmod 700 /d && \
                mknod /var/null c 1 3 && touch /g && chown 70000 /g";
    h.exec(Some(&rootfs), &["-q", "--fakeroot"], &["sh", "-c", make]).ok();
    let copy = rootfs.with_file_name("copy");
    let (from, to) = (rootfs.to_str().unwrap(), copy.to_str().unwrap());
    h.exec(None, &["-q", "--fakeroot", "--userns=subuid"], &["cp", "-a", from, to]).ok();
    let show = ["stat", "-c", "%u:%g %a %F %t:%T %n", "/d", "/d/f", "/var/null", "/g"];
    let original = h.exec(Some(&rootfs), &["-q", "--fakeroot"], &show).ok();
    assert_eq!(h.exec(Some(&copy), &["-q", "--fakeroot"], &show).ok(), original);
    assert!(original.starts_with("1000:1001 700 directory"), "{original}");
    assert!(original.contains("70000:0 644 regular empty file 0:0 /g"), "{original}");
}

/// Too low a descriptor limit stops fr wherever it runs out (starting
/// newuidmap, opening the store, making a pipe): the hint names the limit,
/// not the step's usual suspects (newuidmap's setup, a damaged store).
#[test]
fn a_low_descriptor_limit_is_named_as_the_cause() {
    let Some((h, rootfs)) = subuid_rootfs() else { return };
    for limit in [10, 7, 8, 4] {
        let mut c = h.command("prlimit");
        c.arg(format!("--nofile={limit}")).arg(&h.fr).args(["exec", "-q", "--fakeroot"]);
        let out = run(c.arg(&rootfs).args(["--", "true"]));
        assert_eq!(out.code, Some(125), "limit {limit}: {}", out.stderr);
        let hint = out.stderr.lines().find(|l| l.starts_with("fr: hint: ")).unwrap_or_default();
        assert!(hint.contains("ulimit -n"), "limit {limit}: {}", out.stderr);
        assert!(
            !hint.contains("newuidmap") && !hint.contains(".fr"),
            "limit {limit}: {}",
            out.stderr
        );
    }
}

/// Outside a session, `fr fsck --repair` and `fr import` read and save an
/// image a subuid-mode session left as that session would, from a
/// namespace that maps the user's ranges: the records of files behind a
/// directory only a subordinate id may search are kept (the user alone
/// could not resolve their paths: the records were dropped and saved
/// away). A session in root-mapped mode, which cannot reach them either,
/// keeps them as they are.
#[test]
fn fsck_and_import_keep_the_records_only_subordinate_ids_can_reach() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    let Some((h, rootfs)) = subuid_rootfs() else { return };
    let f = &["-q", "--fakeroot", "--userns=subuid"];
    let make = "mkdir /s && touch /s/f && mknod /s/null c 1 3 && chown -R 1000:1000 /s && \
                chmod 000 /s/f && chmod 700 /s";
    h.exec(Some(&rootfs), f, &["sh", "-c", make]).ok();
    let show = ["stat", "-c", "%u:%g %a %F %t:%T %n", "/s", "/s/f", "/s/null"];
    let want = "1000:1000 700 directory 0:0 /s\n1000:1000 0 regular empty file 0:0 /s/f\n\
                1000:1000 644 character special file 1:3 /s/null\n";
    assert_eq!(h.exec(Some(&rootfs), f, &show).ok(), want);

    // A killed session leaves a journal of five chmods (each takes the
    // owner's write away, which only a record keeps); one byte of the
    // second entry flipped makes it one fsck must repair.
    let script = "for i in 1 2 3 4 5; do touch /t$i && chmod 40$i /t$i; done; echo done; sleep 600";
    let mut child = h
        .exec_command(Some(&rootfs), f, &["sh", "-c", script])
        .stdout(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::KILL,
    );
    child.wait().unwrap();
    assert_eq!(line, "done\n");
    let journal = rootfs.join(".fr/journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    // A version 2 header is 36 bytes, an entry without xattrs 57.
    assert_eq!(bytes.len(), 36 + 5 * 57, "five entries");
    bytes[36 + 57 + 20] ^= 0x40;
    std::fs::write(&journal, &bytes).unwrap();
    let repair = h.fr(["fsck".as_ref(), "--repair".as_ref(), rootfs.as_os_str()]);
    assert_eq!(repair.code, Some(1), "{repair:?}");
    assert_eq!(h.exec(Some(&rootfs), f, &show).ok(), want, "after fr fsck --repair");
    let t = h.exec(Some(&rootfs), f, &["stat", "-c", "%a", "/t1", "/t3"]).ok();
    assert_eq!(t, "401\n403\n");

    let dir = h.scratch("import-into");
    std::fs::write(dir.join("new"), "x").unwrap();
    let archive = dir.join("new.tar");
    run(h.command("tar").arg("-cf").arg(&archive).arg("-C").arg(&dir).arg("new")).ok();
    h.fr(["import".as_ref(), archive.as_os_str(), rootfs.as_os_str()]).ok();
    assert_eq!(h.exec(Some(&rootfs), f, &show).ok(), want, "after fr import");

    // A root-mapped session cannot reach them (nor can its workload): it
    // says so, and keeps their records as they are.
    let other = h.exec(Some(&rootfs), &["-f", "--userns=root-mapped"], &["chown", "5", "/t1"]);
    assert!(other.stderr.contains("kept as they are"), "{}", other.stderr);
    other.ok();
    assert_eq!(h.exec(Some(&rootfs), f, &show).ok(), want, "after a root-mapped session");
}

/// A process that drops root (`su` to a user) holds its ids in the kernel
/// too in subuid mode, fr having the kernel make the same change, and so
/// meets the kernel's own checks where fr never looks: a plain read of
/// root's 0600 file, a listing of a directory only root may read. Real
/// root's child, the oracle, is refused the same.
#[test]
fn a_process_that_dropped_root_is_refused_what_real_roots_child_is() {
    let Some((h, rootfs)) = subuid_rootfs() else { return };
    if !common::is_root() {
        cannot_run::<()>("the oracle is real root: run the suite as root");
        return;
    }
    let script = "echo secret > /s && chmod 600 /s && mkdir -m 700 /shut && mkdir -m 777 /pub && \
        echo 'u:x:1000:1000::/:/bin/sh' >> /etc/passwd && \
        su -s /bin/sh u -c 'id -u; id -G; cat /s; echo cat=$?; ls /shut; echo ls=$?; \
        echo x >> /s; echo append=$?; touch /pub/mine; chmod 600 /pub/mine; cat /pub/mine; \
        echo own=$?' 2>&1; stat -c '%u:%g %a' /s /pub/mine";
    let oracle = h.oracle_copy(&rootfs);
    let root = std::process::Command::new("chroot")
        .arg(&oracle)
        .args(["/bin/sh", "-c", script])
        .output()
        .unwrap();
    let root = String::from_utf8_lossy(&root.stdout).into_owned();
    assert!(root.contains("cat=1") && root.contains("ls=1"), "the oracle: {root}");
    let fr = h.exec(Some(&rootfs), &["-q", "--fakeroot", "--userns=subuid"], &["sh", "-c", script]);
    assert_eq!(fr.ok(), root);
}

/// A set-user-id-root program of an imported image (the import records
/// the bit and the owner; the user's real file has neither) run by a
/// process that dropped root: fr gives the real file the bit it records
/// before the kernel runs it, so that the kernel's exec makes the same
/// change as fr's, and the program reads what only root may, as under
/// real root (the oracle, in a chroot of the same tree).
#[test]
fn an_imported_set_user_id_program_raises_the_kernels_ids_too() {
    let Some((h, rootfs)) = subuid_rootfs() else { return };
    if !common::is_root() {
        cannot_run::<()>("the oracle is real root: run the suite as root");
        return;
    }
    let Some(prog) = h.compile("exec_creds.c", "exec-creds", &["-static"]) else { return };
    let tree = h.oracle_copy(&rootfs);
    std::fs::create_dir(tree.join("w")).unwrap();
    common::install(h, &prog, &tree.join("w"), "suid-ok");
    std::fs::write(tree.join("w/secret"), "s").unwrap();
    let sh = |script: &str| {
        let ok = std::process::Command::new("sh").arg("-ec").arg(script).status().unwrap();
        assert!(ok.success(), "{script}");
    };
    let t = tree.display();
    sh(&format!(
        "chown 0:0 {t}/w/suid-ok {t}/w/secret && chmod 4755 {t}/w/suid-ok && \
         chmod 600 {t}/w/secret && echo 'u:x:1000:1000::/:/bin/sh' >> {t}/etc/passwd"
    ));
    let dir = h.scratch("suid-import");
    let archive = dir.join("image.tar");
    sh(&format!("tar -C {t} --numeric-owner -cf {} .", archive.display()));
    std::os::unix::fs::chown(&dir, Some(h.uid), Some(h.gid)).unwrap();
    std::os::unix::fs::chown(&archive, Some(h.uid), Some(h.gid)).unwrap();
    let image = dir.join("image");
    h.fr_in(&dir, ["import", "image.tar", image.to_str().unwrap()]).ok();
    let script = "cd /w && su -s /bin/sh u -c '/w/suid-ok child'";
    let root = std::process::Command::new("chroot")
        .arg(&tree)
        .args(["/bin/sh", "-c", script])
        .output()
        .unwrap();
    let root = String::from_utf8_lossy(&root.stdout).into_owned();
    assert!(root.contains("open(secret) as euid 0: ok"), "the oracle: {root}");
    let fr = h.exec(Some(&image), &["-q", "--fakeroot", "--userns=subuid"], &["sh", "-c", script]);
    assert_eq!(fr.ok(), root);
}
