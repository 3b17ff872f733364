//! The differential test: the probe (tests/probe/probe.c) makes one system
//! call per step and prints return value, errno and stat fields. It runs
//! once as real root in a chroot of a root-owned copy of the rootfs and once
//! under `fr exec --fakeroot` as the unprivileged user; the outputs must be
//! identical. Real root is the oracle, so this needs the suite to run as
//! root (CI does).

mod common;

use std::process::Command;

use common::{cannot_run, harness, install, is_root};

fn differential(name: &str, cc_flags: &[&str]) {
    differential_with(name, cc_flags, false, "--userns=auto")
}

fn differential_with(name: &str, cc_flags: &[&str], dynamic: bool, mode: &str) {
    let Some(h) = harness() else { return };
    if !is_root() {
        cannot_run::<()>(
            "the differential test needs real root as its oracle: run the suite as root",
        );
        return;
    }
    let Some(probe) = h.probe(name, cc_flags) else {
        return;
    };
    let Some(rootfs) = h.rootfs() else { return };
    if dynamic {
        common::install_dynamic(h, &probe, &rootfs, "probe");
    } else {
        install(h, &probe, &rootfs, "probe");
    }
    let oracle = h.oracle_copy(&rootfs);

    let root =
        Command::new("chroot").arg(&oracle).args(["/probe", "/probe-work"]).output().unwrap();
    let root_out = String::from_utf8_lossy(&root.stdout).into_owned();
    assert!(
        root.status.success(),
        "the probe failed as real root: {}",
        String::from_utf8_lossy(&root.stderr)
    );
    assert!(root_out.ends_with("== end\n"), "the probe stopped early as real root:\n{root_out}");

    let fr = h.exec(Some(&rootfs), &["--fakeroot", mode], &["/probe", "/probe-work"]);
    assert_eq!(fr.code, Some(0), "the probe failed under fr: {}", fr.stderr);
    same_as_root(name, &within_limits(&root_out, kernel_holds_ids(h, mode)), &fr.stdout);
}

/// Panics with the first lines that differ, unless fr's output is real
/// root's.
fn same_as_root(name: &str, root_out: &str, fr_out: &str) {
    if fr_out != root_out {
        let diff: Vec<String> = root_out
            .lines()
            .zip(fr_out.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(20)
            .map(|(n, (a, b))| format!("line {}:\n  root: {a}\n  fr:   {b}", n + 1))
            .collect();
        panic!(
            "{name}: fr differs from real root ({} vs {} lines):\n{}",
            root_out.lines().count(),
            fr_out.lines().count(),
            diff.join("\n")
        );
    }
}

/// Real root's output as fr's stated limits make it (README, "Limits"):
/// the probe marks those steps.
///
/// - "(limit)": immutable and append-only inode flags want
///   `CAP_LINUX_IMMUTABLE` in the initial namespace, which fr does not
///   emulate: where real root sets one, fr's call fails with the kernel's
///   EPERM and no flag is shown.
/// - "(dropped-id limit)": a call fr never sees, by a process that
///   dropped root, which only the kernel can refuse: it does when it holds
///   the dropped ids (`kernel_holds_ids`, subuid mode); where it sees the
///   user (root-mapped, none) the call succeeds.
///
/// The oracle must have done or refused the thing, or the step checks
/// nothing.
fn within_limits(root_out: &str, kernel_holds_ids: bool) -> String {
    let mut out = String::with_capacity(root_out.len());
    for line in root_out.lines() {
        let limited = if line.contains("(dropped-id limit)") {
            assert!(line.contains("ret=-1 errno=EACCES") || line.contains("ret=-1 errno=EPERM"));
            match kernel_holds_ids {
                true => line.to_string(),
                false => line
                    .replace("ret=-1 errno=EACCES", "ret=0 errno=0")
                    .replace("ret=-1 errno=EPERM", "ret=0 errno=0"),
            }
        } else if !line.contains("(limit)") {
            line.to_string()
        } else if line.starts_with("chattr") {
            assert!(line.ends_with("ret=0 errno=0"), "real root set no flag: {line}");
            line.replace("ret=0 errno=0", "ret=-1 errno=EPERM")
        } else {
            assert!(line.contains("immutable=1") || line.contains("append=1"), "{line}");
            line.replace("immutable=1", "immutable=0").replace("append=1", "append=0")
        };
        out.push_str(&limited);
        out.push('\n');
    }
    out
}

/// Whether fr runs `mode` (an image's) in subuid mode, where the kernel
/// holds the ids a process dropped to.
fn kernel_holds_ids(h: &common::Harness, mode: &str) -> bool {
    mode == "--userns=subuid" || (mode == "--userns=auto" && common::subuid_ready(h))
}

/// What a session left, as the next session and `fr export` see it: the
/// probe runs in one session and `probe --walk` in a second one prints
/// every file it left (stat fields, extended attributes), as real root
/// did the same in a chroot; the image's archive has the members real
/// root's `tar --xattrs` makes of its tree. This is where the records of
/// files whose owners the kernel holds (subuid mode) must outlive the
/// session: a mode the disk cannot hold, set-id bits, a device on its
/// placeholder, xattrs and ACLs, behind directories only a subordinate
/// id may search.
fn across_sessions(mode: &str) {
    let Some(h) = harness() else { return };
    if !is_root() {
        cannot_run::<()>("the differential test needs real root as its oracle");
        return;
    }
    let Some(probe) = h.probe("probe-x86_64-static", &["-static"]) else { return };
    let Some(rootfs) = h.rootfs() else { return };
    install(h, &probe, &rootfs, "probe");
    let oracle = h.oracle_copy(&rootfs);
    let chroot = |args: &[&str]| {
        let out = Command::new("chroot").arg(&oracle).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?} as real root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let root_first = chroot(&["/probe", "/probe-work"]);
    let root_next = chroot(&["/probe", "--walk", "/probe-work"]);
    assert!(root_next.contains("kept/shut/deep/f trusted.d: 31"), "{root_next}");

    let first = h.exec(Some(&rootfs), &["-q", "-f", mode], &["/probe", "/probe-work"]);
    assert_eq!(first.code, Some(0), "the probe failed under fr: {}", first.stderr);
    let root_first = within_limits(&root_first, kernel_holds_ids(h, mode));
    same_as_root("the first session", &root_first, &first.stdout);
    let next = h.exec(Some(&rootfs), &["-q", "-f", mode], &["/probe", "--walk", "/probe-work"]);
    assert_eq!(next.code, Some(0), "{}", next.stderr);
    same_as_root(&format!("the second session ({mode})"), &root_next, &next.stdout);

    let dir = h.scratch("across");
    let (root_tar, fr_tar) = (dir.join("root.tar"), dir.join("fr.tar"));
    let tar = Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "-cpf"])
        .arg(&root_tar)
        .arg("-C")
        .arg(&oracle)
        .arg(".")
        .output()
        .unwrap();
    assert!(tar.status.success(), "{}", String::from_utf8_lossy(&tar.stderr));
    h.fr(["export".as_ref(), rootfs.as_os_str(), fr_tar.as_os_str()]).ok();
    let (want, got) = (common::tar_members(&root_tar), common::tar_members(&fr_tar));
    assert!(want.contains("probe-work/kept/shut/zero"), "{want}");
    same_as_root(&format!("fr export ({mode})"), &want, &got);
}

#[test]
fn a_second_session_and_export_see_what_real_root_left_in_subuid_mode() {
    let Some(h) = harness() else { return };
    if !common::subuid_ready(h) {
        cannot_run::<()>("subuid mode needs ranges for the test user and newuidmap (.ci/run)");
        return;
    }
    across_sessions("--userns=subuid");
}

#[test]
fn a_second_session_and_export_see_what_real_root_left_in_root_mapped_mode() {
    across_sessions("--userns=root-mapped");
}

#[test]
fn static_x86_64_probe_sees_what_real_root_sees() {
    differential("probe-x86_64-static", &["-static"]);
}

#[test]
fn dynamic_x86_64_probe_sees_what_real_root_sees() {
    differential_with("probe-x86_64-dynamic", &[], true, "--userns=auto");
}

/// The probe in subuid mode (owners the namespace maps go to the kernel).
#[test]
fn static_probe_in_subuid_mode_sees_what_real_root_sees() {
    let Some(h) = harness() else { return };
    if !common::subuid_ready(h) {
        cannot_run::<()>("subuid mode needs ranges for the test user and newuidmap (.ci/run)");
        return;
    }
    differential_with("probe-x86_64-static", &["-static"], false, "--userns=subuid");
}

/// The probe in root-mapped mode (every owner recorded by fr).
#[test]
fn static_probe_in_root_mapped_mode_sees_what_real_root_sees() {
    differential_with("probe-x86_64-static", &["-static"], false, "--userns=root-mapped");
}

#[test]
fn static_i386_probe_sees_what_real_root_sees() {
    differential("probe-i386-static", &["-m32", "-static"]);
}

/// A tree real root makes (devices, a fifo, hard links, symlinks with their
/// own owners, set-id, sticky and 000 modes, `user.*` and
/// `security.capability`), archived by real root, extracted under fr with
/// `tar --same-owner --xattrs` and archived again: the two archives have
/// the same members, owners, modes, devices, link targets and xattrs.
#[test]
fn a_tar_made_by_real_root_survives_extraction_and_archiving_under_fr() {
    let Some(h) = harness() else { return };
    if !is_root() {
        cannot_run::<()>("the tar round trip needs real root to make the original archive");
        return;
    }
    let work = h.scratch("tar");
    let tree = work.join("tree");
    let sh = |script: &str| {
        let out = Command::new("sh").arg("-ec").arg(script).current_dir(&work).output().unwrap();
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    };
    sh("mkdir tree && cd tree && \
        mknod null c 1 3 && mknod blk b 250 300000 && mkfifo fifo && \
        echo data > a && ln a a-link && chown 1000:1000 a && \
        ln -s a sl && chown -h 7:8 sl && \
        echo x > suid && chown 10:20 suid && chmod 4755 suid && \
        echo x > sgid && chown 0:70000 sgid && chmod 2755 sgid && \
        mkdir sticky && chmod 1777 sticky && \
        echo x > zero && chmod 000 zero && \
        mkdir closed && echo x > closed/inside && chown 5:5 closed/inside && chmod 000 closed && \
        echo x > capped && chmod 755 capped");
    let set = |file: &str, name: &str, value: &[u8]| {
        rustix::fs::setxattr(tree.join(file), name, value, rustix::fs::XattrFlags::empty())
            .unwrap_or_else(|e| panic!("setxattr {file} {name}: {e}"));
    };
    set("a", "user.note", b"hello");
    // VFS_CAP_REVISION_2 | effective, cap_net_raw permitted (setcap cap_net_raw+ep).
    let mut cap = vec![0u8; 20];
    cap[..4].copy_from_slice(&0x0200_0001u32.to_le_bytes());
    cap[4..8].copy_from_slice(&(1u32 << 13).to_le_bytes());
    set("capped", "security.capability", &cap);
    sh("tar --xattrs --xattrs-include='*' -cpf orig.tar -C tree .");
    std::os::unix::fs::chown(work.join("orig.tar"), Some(h.uid), Some(h.gid)).unwrap();
    std::fs::set_permissions(
        work.join("orig.tar"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();

    let script = "mkdir x && tar --xattrs --xattrs-include='*' --same-owner -xpf orig.tar -C x && \
                  tar --xattrs --xattrs-include='*' -cpf copy.tar -C x .";
    let fr = h.exec_in(&work, None, &["--fakeroot"], &["sh", "-c", script]);
    assert_eq!(fr.code, Some(0), "{fr:?}");

    let members = |archive: &str| common::tar_members(&work.join(archive));
    let (orig, copy) = (members("orig.tar"), members("copy.tar"));
    assert!(orig.contains("'dev': '250:300000'") && orig.contains("security.capability"), "{orig}");
    assert_eq!(copy, orig, "\noriginal:\n{orig}\nafter fr:\n{copy}");
}

/// The ACL and file capability tools, on the host tree: what `setfacl`,
/// `getfacl`, `setcap` and `getcap` print and leave is what they print and
/// leave for real root.
#[test]
fn acl_and_capability_tools_see_what_real_root_sees() {
    let Some(h) = harness() else { return };
    if !is_root() {
        cannot_run::<()>("the ACL tools test compares with real root");
        return;
    }
    for tool in ["setfacl", "getfacl", "setcap", "getcap"] {
        if Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .status()
            .map_or(true, |s| !s.success())
        {
            cannot_run::<()>(format!(
                "{tool} is missing: apt-get install acl libcap2-bin (.ci/run does)"
            ));
            return;
        }
    }
    let script = "mkdir -p t/d && cd t && echo x > f && chmod 640 f && \
        setfacl -m u:1000:rwx,g:27:r f && getfacl -n f && stat -c '%a %n' f && \
        chmod 600 f && getfacl -n --omit-header f && \
        setfacl -d -m u:5:rwx d && touch d/new && mkdir d/sub && getfacl -n d/new d/sub && stat -c '%a %n' d/new d/sub && \
        setfacl -b f && getfacl -n --omit-header f && stat -c '%a %n' f && \
        echo x > p && chmod 755 p && setcap cap_net_raw,cap_chown+ep p && getcap p && \
        chown 0:0 p && getcap p && echo after-chown";
    let root_dir = h.scratch("acl-root");
    let oracle = Command::new("sh").arg("-ec").arg(script).current_dir(&root_dir).output().unwrap();
    assert!(oracle.status.success(), "{}", String::from_utf8_lossy(&oracle.stderr));
    let oracle = String::from_utf8(oracle.stdout).unwrap();
    let fr = h.exec_in(&h.scratch("acl-fr"), None, &["--fakeroot"], &["sh", "-ec", script]);
    assert_eq!(fr.code, Some(0), "{}", fr.stderr);
    assert!(
        oracle.contains("user:1000:rwx") && oracle.contains("cap_chown,cap_net_raw=ep"),
        "{oracle}"
    );
    assert_eq!(fr.stdout, oracle);
}

/// The probe without any namespace (`--userns=none`, emulation alone), on
/// the host tree: real root runs it in a directory, then fr runs it at the
/// same path (so that absolute symlinks have the same length).
#[test]
fn static_probe_without_a_user_namespace_sees_what_real_root_sees() {
    let Some(h) = harness() else { return };
    if !is_root() {
        cannot_run::<()>(
            "the differential test needs real root as its oracle: run the suite as root",
        );
        return;
    }
    let Some(probe) = h.probe("probe-x86_64-static", &["-static"]) else { return };
    let dir = h.scratch("none");
    let work = dir.join("pw");
    let root = Command::new(&probe).arg(&work).current_dir(&dir).output().unwrap();
    assert!(root.status.success(), "{}", String::from_utf8_lossy(&root.stderr));
    let root_out = String::from_utf8(root.stdout).unwrap();
    std::fs::remove_dir_all(&work).unwrap();
    let bin = install(h, &probe, &dir, "probe");
    let fr = h.exec_in(
        &dir,
        None,
        &["--fakeroot", "--userns=none"],
        &[bin.to_str().unwrap(), work.to_str().unwrap()],
    );
    assert_eq!(fr.code, Some(0), "{}", fr.stderr);
    assert!(root_out.ends_with("== end\n"));
    let root_out = within_limits(&root_out, false);
    let diff: Vec<String> = root_out
        .lines()
        .zip(fr.stdout.lines())
        .filter(|(a, b)| a != b)
        .take(10)
        .map(|(a, b)| format!("root: {a}\nfr:   {b}"))
        .collect();
    assert!(
        fr.stdout == root_out,
        "fr without a user namespace differs from real root:\n{}",
        diff.join("\n")
    );
}

/// Executing set-user-id programs after a privilege drop: a failed exec
/// changes no credential, a successful one makes the effective uid the
/// file's owner, as for real root.
#[test]
fn exec_of_set_user_id_programs_changes_credentials_only_when_it_happens() {
    let Some(h) = harness() else { return };
    if !is_root() {
        cannot_run::<()>(
            "the differential test needs real root as its oracle: run the suite as root",
        );
        return;
    }
    let Some(prog) = h.compile("exec_creds.c", "exec-creds", &["-static"]) else { return };
    let dir = h.scratch("exec-creds");
    let work = dir.join("w");
    std::fs::create_dir(&work).unwrap();
    let bin = install(h, &prog, &dir, "exec-creds");
    let root = Command::new(&bin).arg(&work).output().unwrap();
    let root_out = String::from_utf8(root.stdout).unwrap();
    assert!(root_out.contains("after exec of set-user-id root: uid=1000/0/0"), "{root_out}");
    assert!(root_out.contains("open(secret) as euid 0: ok"), "{root_out}");
    assert!(root_out.contains("open(secret) as uid 1000: EACCES"), "{root_out}");
    let modes: &[&str] = if common::subuid_ready(h) {
        &["--userns=subuid", "--userns=root-mapped", "--userns=none"]
    } else {
        cannot_run::<()>("subuid mode needs ranges for the test user and newuidmap (.ci/run)");
        &["--userns=root-mapped", "--userns=none"]
    };
    for mode in modes {
        std::fs::remove_dir_all(&work).unwrap();
        std::fs::create_dir(&work).unwrap();
        std::os::unix::fs::chown(&work, Some(h.uid), Some(h.gid)).unwrap();
        let fr = h.exec_in(
            &dir,
            None,
            &["--fakeroot", mode],
            &[bin.to_str().unwrap(), work.to_str().unwrap()],
        );
        // The stated limit of root-mapped mode and of no namespace (README,
        // the mode table): the kernel, which sees the user, answers a read
        // that never reaches fr; subuid mode has the kernel hold the ids.
        let expected = match *mode {
            "--userns=subuid" => root_out.clone(),
            _ => {
                root_out.replace("open(secret) as uid 1000: EACCES", "open(secret) as uid 1000: ok")
            }
        };
        assert_eq!(fr.stdout, expected, "{mode}: {}", fr.stderr);
    }
}
