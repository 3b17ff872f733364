//! The fake metadata outlives the session: kept in `IMAGE/.fr`, reloaded
//! by the next session, robust to kills, copies and changes made outside
//! fr, and guarded against two sessions at once.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{harness, install, Harness};

/// The store is what these tests check: in root-mapped mode it holds every
/// owner. (In subuid mode the kernel holds the owners the namespace maps;
/// tests/subuid.rs covers that mode.)
const F: &[&str] = &["--fakeroot", "--userns=root-mapped"];
/// [`F`] for a session whose standard error the test does not read.
const QUIET: &[&str] = &["-q", "--fakeroot", "--userns=root-mapped"];
/// VFS_CAP_REVISION_2 | effective, cap_net_raw: `setcap cap_net_raw+ep`.
const CAP: &str = "0100000200200000000000000000000000000000";

fn image(h: &Harness) -> Option<PathBuf> {
    let rootfs = h.rootfs()?;
    let tool = h.compile("xattr.c", "xattr-static", &["-static"])?;
    install(h, &tool, &rootfs.join("bin"), "xattr");
    Some(rootfs)
}

fn sh(h: &Harness, image: &Path, script: &str) -> String {
    h.exec(Some(image), F, &["sh", "-c", script]).ok()
}

const MAKE: &str = "mkdir /p && touch /p/f && chown 123:456 /p/f && chmod 4751 /p/f && \
    mknod /p/dev c 250 300000 && chown 7:8 /p/dev && ln /p/f /p/hard && ln -s f /p/sl && chown -h 9:10 /p/sl && \
    touch /p/cap && xattr set /p/cap security.capability 0100000200200000000000000000000000000000 && \
    xattr set /p/cap trusted.t 01";
const SHOW: &str = "stat -c '%u:%g %a %F %t:%T %n' /p/f /p/hard /p/dev /p/sl && \
    xattr get /p/cap security.capability && xattr get /p/cap trusted.t";

fn expected() -> String {
    format!(
        "123:456 4751 regular empty file 0:0 /p/f\n123:456 4751 regular empty file 0:0 /p/hard\n\
         7:8 644 character special file fa:493e0 /p/dev\n9:10 777 symbolic link 0:0 /p/sl\n{CAP}\n01\n"
    )
}

#[test]
fn a_second_session_sees_what_the_first_left() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    sh(h, &img, MAKE);
    assert_eq!(sh(h, &img, SHOW), expected());
    // The store is fr's: the workload sees an empty directory in its place,
    // and none of the files the store holds.
    let store: Vec<String> = std::fs::read_dir(img.join(".fr"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!store.is_empty(), "the session left no store");
    assert_eq!(sh(h, &img, "ls -A /.fr; echo status $?"), "status 0\n");
    let seen =
        format!("for f in {}; do test -e /.fr/$f && echo $f; done; echo done", store.join(" "));
    assert_eq!(sh(h, &img, &seen), "done\n");
}

#[test]
fn copies_of_the_image_keep_its_metadata() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    sh(h, &img, MAKE);
    for (tool, args) in [("cp", vec!["-a"]), ("rsync", vec!["-a"])] {
        let copy = h.scratch(&format!("copy-{tool}"));
        std::fs::remove_dir(&copy).unwrap();
        let mut cmd = h.command(tool);
        cmd.args(&args).arg(format!("{}/", img.display())).arg(&copy);
        if tool == "cp" {
            cmd = h.command("cp");
            cmd.arg("-a").arg(&img).arg(&copy);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{tool}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(sh(h, &copy, SHOW), expected(), "after {tool} -a");
    }
}

#[test]
fn files_changed_outside_fr_lose_their_records_and_the_session_goes_on() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    sh(
        h,
        &img,
        "mkdir /o && cd /o && for i in $(seq 1000); do touch f$i; done && chown -R 77:77 /o",
    );
    // Outside fr: delete them all and make 1000 new files, which reuse the
    // inode numbers.
    let outside =
        format!("cd {}/o && rm f* && for i in $(seq 1000); do touch g$i; done", img.display());
    assert!(h.command("sh").arg("-c").arg(&outside).status().unwrap().success());
    let out = h.exec(
        Some(&img),
        F,
        &["sh", "-c", "stat -c '%u:%g %F' /o/g* | sort | uniq -c; stat -c %u:%g /o"],
    );
    let text = out.ok();
    let lines: Vec<String> =
        text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(lines, ["1000 0:0 regular empty file", "77:77"], "{text}");
}

#[test]
fn a_killed_session_loses_no_change_that_was_answered() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    sh(h, &img, "mkdir /k && cd /k && seq 20000 | xargs touch");
    // chown -v prints each file after its chown returned.
    let mut child = h
        .exec_command(Some(&img), F, &["sh", "-c", "chown -v -R 4242:4242 /k"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = child.id() as i32;
    let mut done = Vec::new();
    let start = Instant::now();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while done.len() < 3000 && start.elapsed() < Duration::from_secs(120) {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(path) = line.split('\'').nth(1) {
            done.push(path.to_string());
        }
    }
    // The whole fr process tree, at once.
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_raw(pgid).unwrap(),
        rustix::process::Signal::KILL,
    );
    child.wait().unwrap();
    assert!(done.len() >= 1000, "chown reported only {} files", done.len());
    let listing = sh(h, &img, "cd /k && stat -c '%u:%g %n' *");
    let owners: std::collections::HashMap<String, String> = listing
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(o, n)| (format!("/k/{n}"), o.to_string())))
        .collect();
    for path in &done {
        if path == "/k" {
            continue;
        }
        assert_eq!(
            owners.get(path).map(String::as_str),
            Some("4242:4242"),
            "{path} was reported done"
        );
    }
    let untouched = owners.values().filter(|o| o.as_str() == "0:0").count();
    let changed = owners.values().filter(|o| o.as_str() == "4242:4242").count();
    assert_eq!(untouched + changed, 20000, "every file shows 0:0 or 4242:4242");
    assert!(
        untouched > 0 && changed >= done.len() - 1,
        "the kill came mid-run: {changed} changed, {untouched} not"
    );
}

#[test]
fn a_damaged_or_newer_store_is_refused_and_left_alone() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    sh(h, &img, MAKE);
    let store = img.join(".fr/store");
    let good = std::fs::read(&store).unwrap();
    for (what, bytes) in [
        ("damaged", {
            let mut b = good.clone();
            let n = b.len() / 2;
            b[n] ^= 0xff;
            b
        }),
        ("newer", {
            let mut b = good.clone();
            b[8] = 99;
            b
        }),
    ] {
        std::fs::write(&store, &bytes).unwrap();
        let out = h.exec(Some(&img), F, &["true"]);
        assert_eq!(out.code, Some(125), "{what}: {out:?}");
        assert!(
            out.stderr.contains(&store.display().to_string()) && out.stderr.contains("hint:"),
            "{what}: {}",
            out.stderr
        );
        assert_eq!(std::fs::read(&store).unwrap(), bytes, "{what}: the store was touched");
    }
    assert!(h.exec(Some(&img), F, &["true"]).stderr.contains("newer than this fr"));
}

#[test]
fn a_second_session_on_the_same_image_is_refused_with_the_holder_named() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    let mut first = h
        .exec_command(Some(&img), QUIET, &["sh", "-c", "echo ready; sleep 30"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(first.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let second = h.exec(Some(&img), F, &["true"]);
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(second.code, Some(125));
    assert!(second.stderr.contains("in use by another fr session (fr pid"), "{}", second.stderr);
}

#[test]
fn a_session_that_changes_nothing_writes_nothing() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    sh(h, &img, MAKE);
    let files = [img.join(".fr/store"), img.join(".fr/journal")];
    let before: Vec<_> = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| (m.len(), m.modified().unwrap())).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    sh(h, &img, SHOW);
    let after: Vec<_> = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| (m.len(), m.modified().unwrap())).ok())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn links_planted_in_the_store_never_lead_fr_to_write_outside_the_image() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    let outside = h.scratch("victims");
    let victim = |name: &str| {
        let p = outside.join(name);
        std::fs::write(&p, format!("{name} must stay\n")).unwrap();
        if let Some(u) = &h.user {
            std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid)).unwrap();
        }
        p
    };
    let (v1, v2, v3) = (victim("lock"), victim("journal"), victim("tmp"));
    // An image that ships .fr/lock as a symlink to a host file.
    let fr_dir = img.join(".fr");
    std::fs::create_dir(&fr_dir).unwrap();
    std::os::unix::fs::symlink(&v1, fr_dir.join("lock")).unwrap();
    if let Some(u) = &h.user {
        for p in [&fr_dir, &fr_dir.join("lock")] {
            std::os::unix::fs::lchown(p, Some(u.uid), Some(u.gid)).unwrap();
        }
    }
    let out = h.exec(Some(&img), F, &["true"]);
    assert_eq!(out.code, Some(125), "{out:?}");
    assert!(out.stderr.contains("lock"), "{}", out.stderr);
    std::fs::remove_file(fr_dir.join("lock")).unwrap();
    // A journal hard-linked to a host file: refused, with the way out.
    sh(h, &img, MAKE);
    let plant =
        |script: String| assert!(h.command("sh").arg("-c").arg(script).status().unwrap().success());
    plant(format!(
        "rm -f {d}/journal && ln {v2} {d}/journal",
        d = fr_dir.display(),
        v2 = v2.display()
    ));
    let out = h.exec(Some(&img), F, &["true"]);
    assert_eq!(out.code, Some(125), "{out:?}");
    assert!(out.stderr.contains("journal") && out.stderr.contains("one link"), "{}", out.stderr);
    // A store.tmp that is a symlink to a host file: fr replaces the link.
    plant(format!(
        "rm {d}/journal && ln -s {v3} {d}/store.tmp",
        d = fr_dir.display(),
        v3 = v3.display()
    ));
    sh(h, &img, "chown 5:5 /p/f");
    assert_eq!(sh(h, &img, "stat -c %u:%g /p/f"), "5:5\n");
    for (v, name) in [(&v1, "lock"), (&v2, "journal"), (&v3, "tmp")] {
        assert_eq!(
            std::fs::read_to_string(v).unwrap(),
            format!("{name} must stay\n"),
            "{} was written",
            v.display()
        );
    }
}

/// Without an image, `-s FILE` keeps what a session faked on the host tree
/// and `-i FILE` brings it back, as `fakeroot -s/-i` do, in both modes;
/// the state file is written as changes happen, so a killed session
/// loses none that was answered.
#[test]
fn state_files_carry_the_host_trees_fake_metadata_between_sessions() {
    let Some(h) = harness() else { return };
    for mode in ["--userns=auto", "--userns=none"] {
        let dir = h.scratch("state");
        let make = "touch f && chown 123:456 f && chmod 4755 f && mknod dev c 4 5 && \
                    xattr set f security.capability 0100000200200000000000000000000000000000";
        let Some(tool) = h.compile("xattr.c", "xattr-static", &["-static"]) else { return };
        install(h, &tool, &dir, "xattr");
        let make = make.replace("xattr ", "./xattr ");
        h.exec_in(&dir, None, &["-f", mode, "-s", "state"], &["sh", "-c", &make]).ok();
        let show =
            &["sh", "-c", "stat -c '%u:%g %a %F %t:%T' f dev; ./xattr get f security.capability"];
        let fresh = h.exec_in(&dir, None, &["-f", mode], show).ok();
        // Without -i only what the user could set for real shows.
        assert!(
            fresh.starts_with("0:0 4755 regular empty file 0:0\n0:0 644 regular"),
            "{mode}: {fresh}"
        );
        let kept = h.exec_in(&dir, None, &["-f", mode, "-i", "state"], show).ok();
        assert_eq!(
            kept,
            format!(
                "123:456 4755 regular empty file 0:0\n0:0 644 character special file 4:5\n{CAP}\n"
            ),
            "{mode}"
        );

        // Killed mid-session: the chown that was answered is in the file.
        let mut child = h
            .exec_command(
                None,
                &["-f", mode, "-i", "state", "-s", "state"],
                &["sh", "-c", "chown 7:7 f && echo done && sleep 600"],
            )
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line, "done\n");
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
            rustix::process::Signal::KILL,
        );
        child.wait().unwrap();
        let after = h.exec_in(
            &dir,
            None,
            &["-f", mode, "-i", "state"],
            &["stat", "-c", "%u:%g %a", "f", "dev"],
        );
        assert_eq!(
            after.ok(),
            "7:7 755\n0:0 644\n",
            "{mode}: chown clears set-user-id, as for root"
        );
    }
}

/// A state file that is damaged, missing or given with an image is a
/// clear error, and the damaged file is left as it was.
#[test]
fn bad_state_files_are_clear_errors() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("badstate");
    std::fs::write(dir.join("state"), b"definitely not fr's state").unwrap();
    if let Some(u) = &h.user {
        std::os::unix::fs::chown(dir.join("state"), Some(u.uid), Some(u.gid)).unwrap();
    }
    let run = h.exec_in(&dir, None, &["-f", "-i", "state", "-s", "state"], &["true"]);
    assert_eq!(run.code, Some(125));
    assert!(run.stderr.contains("state") && run.stderr.contains("hint:"), "{}", run.stderr);
    assert_eq!(std::fs::read(dir.join("state")).unwrap(), b"definitely not fr's state");
    let run = h.exec_in(&dir, None, &["-f", "-i", "missing"], &["true"]);
    assert_eq!(run.code, Some(125));
    assert!(run.stderr.contains("missing") && run.stderr.contains("-s FILE"), "{}", run.stderr);
    let Some(img) = image(h) else { return };
    // A usage error, as clap's own.
    let run = h.exec(Some(&img), &["-f", "-s", "state"], &["true"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("IMAGE/.fr"), "{}", run.stderr);
}

/// A state file write that fails part-way (here the file size limit)
/// leaves a torn entry; fr cuts it off, so that a later change that fits
/// is appended after a whole entry and read back by the next session
/// (the loader stops at a torn entry, and would drop it).
#[test]
fn a_journal_entry_that_fails_part_way_is_cut_off_and_later_changes_are_kept() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("torn");
    let Some(tool) = h.compile("xattr.c", "xattr-static", &["-static"]) else { return };
    install(h, &tool, &dir, "xattr");
    h.exec_in(&dir, None, &["-f", "-s", "state"], &["sh", "-c", "touch f g && chown 1:1 f"]).ok();
    let size = std::fs::metadata(dir.join("state")).unwrap().len();
    // Room for a small entry, not for one that holds a 4 KiB attribute.
    let limit = size + 1024;
    let script = format!(
        "./xattr set f trusted.big {}; chown 7:7 g && echo done && sleep 600",
        "ab".repeat(4096)
    );
    let fr = h.fr.display().to_string();
    let mut child = h
        .command("sh")
        .arg("-c")
        // An ignored SIGXFSZ stays ignored in fr: the write fails with EFBIG.
        .arg(format!("trap '' XFSZ; exec prlimit --fsize={limit} \"$@\""))
        .args(["sh", &fr, "exec", "-f", "-i", "state", "-s", "state", "--", "sh", "-c", &script])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::KILL,
    );
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(line, "done\n", "{stderr}");
    assert!(stderr.contains("writing") && stderr.contains("state"), "{stderr}");
    let after = h.exec_in(&dir, None, &["-f", "-i", "state"], &["stat", "-c", "%u:%g", "f", "g"]);
    assert_eq!(after.ok(), "1:1\n7:7\n");
}

/// Only fr holds the image's lock: the container's processes, forked from
/// fr, close their copy, so a killed fr frees the image at once (a copy in
/// the dying container's init used to refuse the next session for a moment).
#[test]
fn only_fr_holds_the_image_lock() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    if !common::is_root() {
        common::cannot_run::<()>(
            "reading the container's descriptors needs the suite to run as root",
        );
        return;
    }
    let mut child = h
        .exec_command(Some(&img), QUIET, &["sh", "-c", "echo ready; exec sleep 60"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let lock = std::fs::canonicalize(img.join(".fr/lock")).unwrap();
    // Every process of the session: fr and its descendants.
    let mut tree = vec![child.id() as i32];
    let mut i = 0;
    while i < tree.len() {
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", tree[i]))
            .unwrap_or_default();
        tree.extend(children.split_whitespace().map(|p| p.parse::<i32>().unwrap()));
        i += 1;
    }
    assert!(tree.len() >= 3, "fr, the container's init and the command: {tree:?}");
    let holders: Vec<i32> = tree
        .iter()
        .copied()
        .filter(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == lock))
        })
        .collect();
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    );
    child.wait().unwrap();
    assert_eq!(holders, vec![child.id() as i32], "processes holding {}", lock.display());
}

#[test]
fn a_file_never_takes_the_record_of_a_freed_unnamed_file() {
    // An O_TMPFILE fr made with another owner is freed when its last
    // descriptor closes, unseen by fr; a file made later with the same
    // inode number must not show that owner.
    let Some(h) = harness() else { return };
    let Some(prog) = h.compile("tmpfile.c", "tmpfile-static", &["-static"]) else { return };
    for mode in ["--userns=root-mapped", "--userns=subuid"] {
        if mode == "--userns=subuid" && !common::subuid_ready(h) {
            common::cannot_run::<()>("subuid mode needs the test user's ranges");
            continue;
        }
        let Some(rootfs) = h.rootfs() else { return };
        common::install(h, &prog, &rootfs.join("bin"), "tmpfile");
        let run = h.exec(
            Some(&rootfs),
            &["-f", mode],
            &["sh", "-c", "mkdir -m 1777 /t && tmpfile /t 200"],
        );
        assert_eq!(run.ok(), "done\n", "{mode}");
    }
}

/// A tree made on the host tree with `-s FILE` (debootstrap's way: owners,
/// devices, set-id and unusable modes, a capability, hard links, a
/// directory only its owner may search) becomes an image in place with
/// `fr import --state FILE DIR`: a session in it, and `fr export`, show
/// what the host-tree session left, in both namespace modes of that
/// session. A state file that is damaged, or was written on another root
/// file system, is refused by name, and nothing is written.
#[test]
fn a_tree_and_its_state_file_become_an_image_in_place() {
    let Some(h) = harness() else { return };
    let Some(tool) = h.compile("xattr.c", "xattr-static", &["-static"]) else { return };
    let Some(busybox) = h.rootfs() else { return };
    let make = format!(
        "mkdir deb deb/bin deb/devs deb/home && cp {bb}/bin/busybox deb/bin/ && ln -s busybox deb/bin/sh && \
         ln -s busybox deb/bin/stat && echo x > deb/bin/su && chmod 4755 deb/bin/su && ln deb/bin/su deb/bin/su2 && \
         mknod deb/devs/null c 1 3 && chmod 666 deb/devs/null && mknod deb/devs/sda b 8 0 && \
         chown 0:6 deb/devs/sda && chmod 660 deb/devs/sda && mkdir deb/home/u && echo s > deb/home/u/secret && \
         chown -R 1000:1000 deb/home/u && chmod 000 deb/home/u/secret && chmod 700 deb/home/u && \
         echo c > deb/cap && ./xattr set deb/cap security.capability {CAP} && touch elsewhere && chown 5:5 elsewhere",
        bb = busybox.display()
    );
    let show = "stat -c '%u:%g %a %F %t:%T %h %n' /bin/su /bin/su2 /devs/null /devs/sda /home/u \
                /home/u/secret && xattr get /cap security.capability";
    let want = format!(
        "0:0 4755 regular file 0:0 2 /bin/su\n0:0 4755 regular file 0:0 2 /bin/su2\n\
         0:0 666 character special file 1:3 1 /devs/null\n0:6 660 block special file 8:0 1 /devs/sda\n\
         1000:1000 700 directory 0:0 2 /home/u\n1000:1000 0 regular file 0:0 1 /home/u/secret\n{CAP}\n"
    );
    let modes: &[&str] = if common::subuid_ready(h) {
        &["--userns=root-mapped", "--userns=subuid"]
    } else {
        common::cannot_run::<()>("subuid mode needs the test user's ranges (.ci/run)");
        &["--userns=root-mapped"]
    };
    for mode in modes {
        let dir = h.scratch("bootstrapped");
        install(h, &tool, &dir, "xattr");
        h.exec_in(&dir, None, &["-q", "-f", mode, "-s", "deb.state"], &["sh", "-c", &make]).ok();
        let deb = dir.join("deb");
        install(h, &tool, &deb.join("bin"), "xattr");

        // A damaged state file, and one from another root file system:
        // refused by name, no .fr made.
        let state = std::fs::read(dir.join("deb.state")).unwrap();
        let mut damaged = state.clone();
        let at = 36 + (state.len() - 36) / 3;
        damaged[at] ^= 0x40;
        let mut foreign = state.clone();
        foreign[20] ^= 0x01;
        for (name, bytes, why) in
            [("damaged.state", damaged, "damaged"), ("foreign.state", foreign, "another root")]
        {
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            let run = h.fr_in(&dir, ["import", "--state", name, "deb"]);
            assert_eq!(run.code, Some(1), "{mode} {name}: {run:?}");
            assert!(
                run.stderr.contains(&format!("state file {name}")) && run.stderr.contains(why),
                "{mode} {name}: {}",
                run.stderr
            );
            assert!(run.stderr.contains("hint:"), "{}", run.stderr);
            assert!(!deb.join(".fr").exists(), "{mode} {name}: .fr was made");
        }

        let run = h.fr_in(&dir, ["import", "--state", "deb.state", "deb"]);
        assert_eq!(run.code, Some(0), "{mode}: {run:?}");
        // In subuid mode the kernel holds /home/u's owner and mode: no
        // record names it.
        let paths = if *mode == "--userns=subuid" { 6 } else { 7 };
        assert!(
            run.stderr
                .contains(&format!("records of deb.state name its files ({paths} paths), kept in")),
            "{mode}: {}",
            run.stderr
        );
        let seen = h.exec(Some(&deb), &["-q", "-f"], &["sh", "-c", show]).ok();
        assert_eq!(seen, want, "{mode}");
        let tar = dir.join("deb.tar");
        h.fr(["export".as_ref(), deb.as_os_str(), tar.as_os_str()]).ok();
        let members = common::tar_members(&tar);
        for line in [
            "devs/null {'type': '3', 'mode': '0o666', 'owner': '0:0', 'dev': '1:3'",
            "devs/sda {'type': '4', 'mode': '0o660', 'owner': '0:6', 'dev': '8:0'",
            "home/u/secret {'type': '0', 'mode': '0o0', 'owner': '1000:1000'",
            "bin/su {'type': '0', 'mode': '0o4755', 'owner': '0:0', 'dev': '', 'target': '', \
             'xattrs': [], 'links': ['bin/su', 'bin/su2']}",
            &format!(
                "cap {{'type': '0', 'mode': '0o644', 'owner': '0:0', 'dev': '', 'target': '', \
             'xattrs': [('security.capability', '{CAP}')]"
            ),
        ] {
            assert!(members.contains(line), "{mode}: {line} in\n{members}");
        }
        // What the subuid-mode session gave to subordinate ids.
        h.fr(["rm".as_ref(), deb.as_os_str()]).ok();
    }
}

/// A session killed after it removed a recorded file and made new ones,
/// one of which took the dead file's inode number: the journal's forget
/// is replayed in order, and the new file shows no trace of the dead
/// one's owner, mode or device (without the forget, it showed them all).
#[test]
fn a_killed_sessions_forgets_are_replayed_and_a_reused_inode_shows_nothing_of_the_dead_file() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    // ext4 gives a freed inode number to a new file only within the
    // second it was freed (`recently_deleted()` in fs/ext4/ialloc.c skips
    // it for a minute after): a round that crosses a second tries again,
    // with another dead file.
    let script = "for r in 1 2 3 4 5 6 7 8; do \
          mkdir /r$r && mknod /r$r/dead c 4 5 && chown 5:6 /r$r/dead && chmod 4700 /r$r/dead && \
          ino=$(stat -c %i /r$r/dead) && rm /r$r/dead && i=0 && found= && \
          while [ $i -lt 500 ]; do i=$((i+1)); touch /r$r/n$i; \
            if [ \"$(stat -c %i /r$r/n$i)\" = \"$ino\" ]; then found=r$r/n$i; break; fi; done; \
          if [ -n \"$found\" ]; then echo $found; break; fi; \
        done; echo done; sleep 600";
    let mut child = h
        .exec_command(Some(&img), F, &["sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut out = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    while !out.ends_with("done\n") && reader.read_line(&mut out).unwrap() > 0 {}
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::KILL,
    );
    child.wait().unwrap();
    let reused = out.lines().next().filter(|l| l.starts_with('r')).unwrap_or_else(|| {
        panic!("no new file took a removed file's inode number in 8 rounds of 500: {out}")
    });
    assert!(img.join(".fr/journal").exists(), "the killed session left its journal");
    let seen = sh(h, &img, &format!("stat -c '%u:%g %a %F' /{reused}"));
    assert_eq!(seen, "0:0 644 regular empty file\n");
}
