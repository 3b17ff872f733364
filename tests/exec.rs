//! `fr exec --fakeroot` end to end: the real binary, real namespaces, a
//! real seccomp filter, run as an unprivileged user on a busybox-static
//! rootfs and on the host tree.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::harness;

const F: &[&str] = &["--fakeroot"];

#[test]
fn chown_then_stat_in_a_busybox_image() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    let out =
        h.exec(Some(&rootfs), F, &["sh", "-c", "touch /f; chown 123:456 /f; stat -c %u:%g /f"]);
    assert_eq!(out.ok(), "123:456\n");
}

/// A file the user owns, on the host tree, in each mode without an image.
fn host_chown(mode: &[&str]) {
    let Some(h) = harness() else { return };
    let dir = h.scratch("host");
    let mut opts = F.to_vec();
    opts.extend_from_slice(mode);
    let out = h.exec_in(
        &dir,
        None,
        &opts,
        &["sh", "-c", "touch f; chown 123:456 f; stat -c %u:%g f; id -u"],
    );
    assert_eq!(out.ok(), "123:456\n0\n");
    // Nothing changed for real: the user still owns the file on the host.
    let real = h.command("stat").args(["-c", "%u:%g"]).arg(dir.join("f")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&real.stdout), format!("{}:{}\n", h.uid, h.gid));
}

#[test]
fn chown_then_stat_on_the_host_tree() {
    host_chown(&[]);
}

#[test]
fn chown_then_stat_on_the_host_tree_without_a_user_namespace() {
    host_chown(&["--userns=none"]);
}

#[test]
fn ids_read_as_root() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    assert_eq!(h.exec(Some(&rootfs), F, &["sh", "-c", "id -u; id -g"]).ok(), "0\n0\n");
    assert_eq!(
        h.exec(None, &["-f", "--userns=none"], &["sh", "-c", "id -u; id -g"]).ok(),
        "0\n0\n"
    );
    // Without --fakeroot the command runs as the user.
    assert_eq!(h.exec(Some(&rootfs), &[], &["id", "-u"]).ok(), format!("{}\n", h.uid));
}

#[test]
fn exit_status_passes_through() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    assert_eq!(h.exec(Some(&rootfs), F, &["sh", "-c", "exit 7"]).code, Some(7));
    assert_eq!(h.exec(Some(&rootfs), F, &["sh", "-c", "kill -TERM $$"]).code, Some(128 + 15));
    assert_eq!(h.exec(None, &["-f", "--userns=none"], &["sh", "-c", "exit 9"]).code, Some(9));
    let missing = h.exec(Some(&rootfs), F, &["no-such-command"]);
    assert_eq!(missing.code, Some(127));
    assert!(missing.stderr.contains("no-such-command: command not found"), "{}", missing.stderr);
}

#[test]
fn stdin_and_stdout_pass_through() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    let mut child = h
        .exec_command(Some(&rootfs), &["-q", "-f"], &["sh", "-c", "cat; echo err >&2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"through the container\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through the container\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
}

/// Starts `fr exec` whose command prints "ready" once it can take a signal.
fn start_ready(
    cmd: &mut std::process::Command,
) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let start = Instant::now();
    while !line.contains("ready") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the command ended before it was ready");
        assert!(start.elapsed() < Duration::from_secs(60));
    }
    (child, out)
}

#[test]
fn ctrl_c_on_the_terminal_stops_the_command_and_fr_returns_130() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    // script(1) gives fr a real pseudo-terminal; ^C on its stdin becomes
    // SIGINT from the terminal to the foreground process group.
    let inner = format!(
        "{} exec -f {} -- sh -c 'tty; echo ready; exec sleep 60'",
        h.fr.display(),
        rootfs.display()
    );
    let mut cmd = h.command("script");
    cmd.args(["-q", "-e", "-c", &inner, "/dev/null"]);
    let (mut child, mut out) = start_ready(&mut cmd);
    std::thread::sleep(Duration::from_millis(200));
    child.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
}

#[test]
fn the_controlling_terminal_is_the_callers() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    let inner = format!(
        "{} exec -f {} -- sh -c 'tty && test -t 0 && echo tty-ok'",
        h.fr.display(),
        rootfs.display()
    );
    let out = h.command("script").args(["-q", "-e", "-c", &inner, "/dev/null"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/") && text.contains("tty-ok"), "{text}");
}

/// Each signal fr forwards (README: INT, TERM, HUP, QUIT, USR1, USR2)
/// reaches the command. The command traps the signal and says so, and
/// TERM ends it: a signal fr kept would leave only "got TERM" (the
/// command's shell runs its traps in signal order, and every signal
/// tried is below TERM's 15, so one that came first is said first).
#[test]
fn terminating_signals_sent_to_fr_reach_the_command() {
    use rustix::process::{kill_process, Pid, Signal};
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    let signals = [
        (Signal::TERM, "TERM"),
        (Signal::HUP, "HUP"),
        (Signal::INT, "INT"),
        (Signal::QUIT, "QUIT"),
        (Signal::USR1, "USR1"),
        (Signal::USR2, "USR2"),
    ];
    for (signal, name) in signals {
        let script = format!(
            "trap 'echo got {name}' {name}; trap 'echo got TERM; exit 3' TERM; echo ready; \
             while :; do sleep 0.1; done"
        );
        let mut cmd = h.exec_command(Some(&rootfs), &["-q", "--fakeroot"], &["sh", "-c", &script]);
        let (mut child, mut out) = start_ready(&mut cmd);
        let pid = Pid::from_child(&child);
        kill_process(pid, signal).unwrap();
        if signal != Signal::TERM {
            kill_process(pid, Signal::TERM).unwrap();
        }
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        let want = if signal == Signal::TERM {
            "got TERM\n".to_string()
        } else {
            format!("got {name}\ngot TERM\n")
        };
        assert_eq!(rest, want, "SIG{name} sent to fr");
        assert_eq!(child.wait().unwrap().code(), Some(3));
    }
}

/// Owners by name, as `uid:gid`, from a tool's output lines, each split
/// into fields and given to `parse`.
fn owners(
    text: &str,
    parse: impl Fn(&[&str]) -> Option<(String, String)>,
) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| parse(&l.split_whitespace().collect::<Vec<_>>()))
        .map(|(name, owner)| {
            (name.trim_start_matches("./").trim_end_matches('/').to_string(), owner)
        })
        .collect()
}

fn expected() -> BTreeMap<String, String> {
    [("a", "1:2"), ("b", "0:3"), ("l", "4:5"), ("d", "6:7"), ("d/x", "8:9")]
        .iter()
        .map(|(n, o)| (n.to_string(), o.to_string()))
        .collect()
}

const SETUP: &str = "mkdir d && touch a b d/x && ln -s a l && chown 1:2 a && chgrp 3 b && chown -h 4:5 l && chown 6:7 d && chown 8:9 d/x";

fn ls_owners(text: &str) -> BTreeMap<String, String> {
    // ls -ln: mode links uid gid size date... name [-> target]
    owners(text, |f| {
        let name = if f.contains(&"->") { f[f.len() - 3] } else { f[f.len() - 1] };
        (f.len() >= 7 && f[0].len() == 10).then(|| (name.to_string(), format!("{}:{}", f[2], f[3])))
    })
}

fn tar_owners(text: &str) -> BTreeMap<String, String> {
    // tar -tv: mode uid/gid size date time name [-> target]
    owners(text, |f| {
        let name = if f.contains(&"->") { f[f.len() - 3] } else { f[f.len() - 1] };
        let (u, g) = f.get(1)?.split_once('/')?;
        // busybox tar names ids that the image's passwd and group know.
        let numeric = |id: &str| {
            if id == "root" {
                "0".to_string()
            } else {
                id.to_string()
            }
        };
        Some((name.to_string(), format!("{}:{}", numeric(u), numeric(g))))
    })
}

fn pairs(text: &str) -> BTreeMap<String, String> {
    owners(text, |f| (f.len() == 2).then(|| (f[1].to_string(), f[0].to_string())))
}

#[test]
fn busybox_tools_agree_on_fake_owners() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    let script = format!(
        "mkdir /w && cd /w && {SETUP} && echo '## ls' && ls -ln a b l d/x && echo '## stat' && stat -c '%u:%g %n' a b l d d/x \
         && echo '## tar' && tar -cf /t.tar a b l d && tar -tvf /t.tar"
    );
    let out = h.exec(Some(&rootfs), F, &["sh", "-c", &script]).ok();
    let part = |name: &str| {
        out.split(&format!("## {name}\n")).nth(1).unwrap().split("## ").next().unwrap().to_string()
    };
    let ls = ls_owners(&part("ls"));
    let want = expected();
    let mut want_ls = want.clone();
    want_ls.remove("d");
    assert_eq!(ls, want_ls, "ls -ln:\n{out}");
    assert_eq!(pairs(&part("stat")), want, "stat:\n{out}");
    assert_eq!(tar_owners(&part("tar")), want, "tar -tv:\n{out}");
}

#[test]
fn gnu_tools_agree_on_fake_owners_on_the_host_tree() {
    let Some(h) = harness() else { return };
    for mode in [&["-f"][..], &["-f", "--userns=none"][..]] {
        let dir = h.scratch("gnu");
        let script = format!(
            "{SETUP} && echo '## ls' && ls -ln a b l d/x && echo '## stat' && stat -c '%u:%g %n' a b l d d/x \
             && echo '## find' && find a b l d -printf '%U:%G %p\\n' \
             && echo '## tar' && tar --numeric-owner -cvf t.tar a b l d >/dev/null && tar --numeric-owner -tvf t.tar"
        );
        let out = h.exec_in(&dir, None, mode, &["sh", "-c", &script]).ok();
        let part = |name: &str| {
            out.split(&format!("## {name}\n"))
                .nth(1)
                .unwrap()
                .split("## ")
                .next()
                .unwrap()
                .to_string()
        };
        let want = expected();
        let mut want_ls = want.clone();
        want_ls.remove("d");
        assert_eq!(ls_owners(&part("ls")), want_ls, "{mode:?} ls -ln:\n{out}");
        assert_eq!(pairs(&part("stat")), want, "{mode:?} stat:\n{out}");
        assert_eq!(pairs(&part("find")), want, "{mode:?} find -printf:\n{out}");
        assert_eq!(tar_owners(&part("tar")), want, "{mode:?} tar -tv:\n{out}");
    }
}

#[test]
fn the_image_is_the_root_with_proc_dev_and_tmp() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    let script =
        "echo $$; test -c /dev/null && echo null-ok; echo x > /dev/null && echo write-ok; \
                  test -c /dev/urandom && echo urandom-ok; touch /tmp/t && echo tmp-ok; \
                  test -e /proc/self/status && echo proc-ok; test -d /sys/kernel && echo sys-ok; \
                  ls /proc | grep -c '^[0-9]'";
    let out = h.exec(Some(&rootfs), F, &["sh", "-c", script]).ok();
    let lines: Vec<&str> = out.lines().collect();
    // The command's shell is pid 2: init is 1, and no host process shows.
    assert_eq!(lines[0], "2", "{out}");
    for want in ["null-ok", "write-ok", "urandom-ok", "tmp-ok", "proc-ok", "sys-ok"] {
        assert!(lines.contains(&want), "{want} missing in:\n{out}");
    }
    // init, sh, ls and grep.
    assert!(lines.last().unwrap().parse::<u32>().unwrap() <= 4, "{out}");
    // The host's tmp is not the container's.
    assert!(!rootfs.join("tmp/t").exists());
}

#[test]
fn binds_bring_host_paths_in_and_ro_keeps_them_read_only() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    let data = h.scratch("data");
    std::fs::write(data.join("hello"), "hi\n").unwrap();
    let rw = format!("{}:/mnt/rw", data.display());
    let ro = format!("{}:/mnt/ro:ro", data.display());
    let out = h.exec(
        Some(&rootfs),
        &["-f", "-B", &rw, "--bind", &ro],
        &["sh", "-c", "cat /mnt/rw/hello; touch /mnt/rw/new && echo rw-ok; touch /mnt/ro/x 2>/dev/null || echo ro-ok; chown 1:1 /mnt/ro/hello 2>&1"],
    );
    // The last command fails, as it would for real root.
    assert_eq!(out.code, Some(1), "{out:?}");
    let text = out.stdout;
    assert!(text.starts_with("hi\nrw-ok\nro-ok\n"), "{text}");
    assert!(
        text.contains("Read-only file system"),
        "chown on a read-only bind must fail as for root: {text}"
    );
    assert!(data.join("new").exists());
}

#[test]
fn syscalls_lists_the_table() {
    let Some(h) = harness() else { return };
    let out = h.fr(["syscalls"]).ok();
    for name in ["chown32", "fchownat", "newfstatat", "statx", "fstatat64", "fchmodat2"] {
        assert!(out.lines().any(|l| l.starts_with(name)), "{name} missing:\n{out}");
    }
}

#[test]
fn a_missing_image_is_a_clear_error() {
    let Some(h) = harness() else { return };
    let out = h.exec(Some(Path::new("/no/such/image")), F, &["true"]);
    assert_eq!(out.code, Some(125));
    assert!(
        out.stderr.contains("/no/such/image") && out.stderr.contains("hint:"),
        "{}",
        out.stderr
    );
    let Some(rootfs) = h.rootfs() else { return };
    // A usage error, as clap's own.
    let out = h.exec(Some(&rootfs), &["-f", "--userns=none"], &["true"]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("drop --userns=none"), "{}", out.stderr);
}

#[test]
fn help_explains_every_option() {
    let Some(h) = harness() else { return };
    let out = h.fr(["exec", "--help"]).ok();
    for opt in ["--fakeroot", "--userns", "--bind", "--quiet", "--verbose", "IMAGE", "CMD"] {
        assert!(out.contains(opt), "{opt} missing from fr exec --help:\n{out}");
    }
}

#[test]
fn device_nodes_are_placeholders_that_can_be_written_like_debootstraps_check() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    // debootstrap's check_sane_mount: mknod, then write to the node.
    let script = "cd /tmp && mknod test-dev-null c 1 3 && echo test > test-dev-null && \
                  mknod big b 250 300000 && stat -c '%F %t:%T %s %u:%g' test-dev-null big && ls -ln big";
    let out = h.exec(Some(&rootfs), F, &["sh", "-c", script]).ok();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("character special file 1:3 0 0:0"), "{out}");
    // busybox prints major and minor in hex: 250 = 0xfa, 300000 = 0x493e0.
    assert_eq!(lines.next(), Some("block special file fa:493e0 0 0:0"), "{out}");
    assert!(
        lines.next().is_some_and(|l| l.starts_with("brw-") && l.contains("250, 300000")),
        "{out}"
    );
}

#[test]
fn new_files_never_inherit_the_record_of_a_removed_one() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    // The issue's case: 100 chowned files and 50 device nodes removed, then
    // 200 new files and directories, which will reuse their inode numbers.
    let script = "mkdir /s && cd /s && \
        for i in $(seq 100); do touch f$i; chown $i:$i f$i; done && \
        for i in $(seq 50); do mknod n$i c 1 $i; done && \
        rm f* n* && \
        for i in $(seq 100); do touch g$i; mkdir d$i; done && \
        stat -c '%u:%g %F %a' g* d* | sort | uniq -c";
    let out = h.exec(Some(&rootfs), F, &["sh", "-c", script]).ok();
    let lines: Vec<String> =
        out.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(lines, ["100 0:0 directory 755", "100 0:0 regular empty file 644"], "{out}");
}

#[test]
fn a_workloads_own_seccomp_filter_works_and_its_own_listener_is_refused_with_a_reason() {
    let Some(h) = harness() else { return };
    let Some(prog) = h.compile("own_seccomp.c", "own-seccomp", &["-static"]) else { return };
    let Some(rootfs) = h.rootfs() else { return };
    common::install(h, &prog, &rootfs, "own-seccomp");
    let out = h.exec(Some(&rootfs), F, &["/own-seccomp"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "plain filter: 0 0\nlistener: -1 EBUSY\ngetuid after: 0\n");
    assert!(out.stderr.contains("seccomp notification listener of its own"), "{}", out.stderr);
}

#[test]
fn paths_through_proc_self_name_the_workload_not_fr() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    // /dev/stdin -> /proc/self/fd/0 and /proc/mounts -> self/mounts: "self"
    // must be the workload, which fr's supervisor is not.
    let script =
        "stat -L -c %F /dev/stdin; test -e /dev/fd/0 && echo fd0; stat -L -c %F /proc/mounts; \
                  exec 7</etc/passwd; stat -L -c %s /dev/fd/7; stat -c %s /etc/passwd";
    let mut cmd = h.exec_command(Some(&rootfs), F, &["sh", "-c", script]);
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let size = std::fs::metadata(rootfs.join("etc/passwd")).unwrap().len();
    assert_eq!(
        text,
        format!("character special file\nfd0\nregular empty file\n{size}\n{size}\n"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without a namespace /dev/fd/7 is the workload's fd 7 too.
    let dir = h.scratch("fd7");
    std::fs::write(dir.join("seven"), "1234567").unwrap();
    let out = h.exec_in(
        &dir,
        None,
        &["-f", "--userns=none"],
        &["sh", "-c", "exec 7<seven; stat -L -c %s /dev/fd/7"],
    );
    assert_eq!(out.ok(), "7\n");
}

/// A process that made itself undumpable keeps fake root in a user
/// namespace (fr can still read its memory there). Without one fr cannot
/// read it: the calls then run as the kernel runs them, with the real ids,
/// and fr says so once, instead of failing them with an error of its own.
#[test]
fn an_undumpable_process_is_emulated_in_a_namespace_and_left_to_the_kernel_without() {
    let Some(h) = harness() else { return };
    let Some(prog) = h.compile("undumpable.c", "undumpable", &["-static"]) else { return };
    let dir = h.scratch("undumpable");
    let bin = common::install(h, &prog, &dir, "undumpable");
    let bin = bin.to_str().unwrap();
    std::fs::write(dir.join("f"), "").unwrap();
    if let Some(u) = &h.user {
        std::os::unix::fs::chown(dir.join("f"), Some(u.uid), Some(u.gid)).unwrap();
    }

    let out = h.exec_in(&dir, None, F, &[bin, "f"]);
    assert_eq!(out.ok(), "chown 0 -\nstat 0 - 123:456\n");

    let out = h.exec_in(&dir, None, &["-f", "--userns=none"], &[bin, "f"]);
    assert!(out.stderr.contains("not dumpable"), "{}", out.stderr);
    assert_eq!(
        out.ok(),
        format!("chown -1 Operation not permitted\nstat 0 - {}:{}\n", h.uid, h.gid)
    );
}

/// fr is daemonless: the workload stays in the user's process tree, so it
/// keeps the caller's audit login uid (a container a daemon starts gets
/// the daemon's). As root the test logs its thread in as the test user
/// first, so that the uid is a real one and not "unset".
#[test]
fn the_audit_login_uid_inside_is_the_callers() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    if common::is_root() {
        // Only this thread, and the processes it starts, are affected.
        std::fs::write("/proc/thread-self/loginuid", h.uid.to_string())
            .expect("setting the login uid as root");
    }
    let outside = h.command("cat").arg("/proc/self/loginuid").output().unwrap();
    let outside = String::from_utf8(outside.stdout).unwrap();
    if common::is_root() {
        assert_eq!(outside, h.uid.to_string());
    }
    let host = h.exec(None, &["-f", "--userns=none"], &["cat", "/proc/self/loginuid"]).ok();
    assert_eq!(host, outside);
    // In the user namespace the same uid reads as the namespace maps it:
    // the caller's uid is root there.
    let inside = h.exec(Some(&rootfs), F, &["cat", "/proc/self/loginuid"]).ok();
    let mapped = if outside == h.uid.to_string() { "0".to_string() } else { outside };
    assert_eq!(inside, mapped);
}

/// A removal of a file whose inode number still has the record of a file
/// of another type (replaced outside fr while the session ran) forgets
/// that record: a later file of the old type that takes the number shows
/// as new, not as the old one. On a file system of the test's own, so
/// that the numbers the files free are the ones the fifos, then the new
/// files, take (on the shared disk other processes took them now and
/// then, and the test failed 2 runs in 12).
#[test]
fn removing_a_file_forgets_a_stale_record_of_its_inode_number() {
    use std::collections::BTreeSet;
    use std::os::unix::fs::MetadataExt;
    let Some(h) = harness() else { return };
    let Some(fs) = h.private_ext4("stale") else { return };
    // Recorded files; then, once fifos made outside took their numbers,
    // the fifos are removed and new files are made.
    let script = "mkdir s && cd s && for i in $(seq 20); do touch d$i && chown $i:$i d$i; done && \
        echo ready && read go && rm f* && for i in $(seq 20); do touch e$i; done && \
        stat -c '%i %u:%g' e*";
    let mut child = h
        .exec_command(None, &["--fakeroot", "--userns=root-mapped"], &["sh", "-c", script])
        .current_dir(&fs.dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n", "the workload ended before it was ready");
    let s = fs.dir.join("s");
    let inodes = |prefix: &str| -> BTreeSet<u64> {
        (1..=20).map(|i| std::fs::metadata(s.join(format!("{prefix}{i}"))).unwrap().ino()).collect()
    };
    let recorded = inodes("d");
    // Outside fr: the files go, and fifos take their inode numbers.
    let outside = "cd s && rm d* && for i in $(seq 20); do mkfifo f$i; done";
    let done = h.command("sh").arg("-c").arg(outside).current_dir(&fs.dir).status().unwrap();
    assert!(done.success());
    assert_eq!(inodes("f"), recorded, "the fifos did not take the numbers the files freed");
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut out, &mut text).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{text}{err}");
    let new: BTreeSet<u64> =
        text.lines().filter_map(|l| l.split_once(' ')?.0.parse().ok()).collect();
    assert_eq!(new, recorded, "the new files did not take the numbers the fifos freed:\n{text}");
    let wrong: Vec<&str> = text.lines().filter(|l| !l.ends_with(" 0:0")).collect();
    assert!(wrong.is_empty(), "new files show removed records: {wrong:?}\n{text}");
}

/// An ACL value that is a header alone is no ACL: `setxattr(2)` by real
/// root removes the ACL with it (`posix_acl_from_xattr()` gives NULL), so
/// `fr import` takes it as a removal, for an access ACL, a directory's
/// default ACL and a file's default ACL (nothing to do), and exports no
/// ACL for those members.
#[test]
fn import_takes_an_acl_header_alone_as_no_acl() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("acl-header");
    let script = r#"
import io, struct, tarfile
header = struct.pack("<I", 2).decode("utf-8", "surrogateescape")
def add(t, name, kind, mode, pax):
    m = tarfile.TarInfo(name)
    m.type, m.mode, m.mtime = kind, mode, 1000000000
    m.pax_headers = {"SCHILY.xattr." + k: header for k in pax}
    t.addfile(m)
with tarfile.open("h.tar", "w", format=tarfile.PAX_FORMAT, encoding="utf-8",
                  errors="surrogateescape") as t:
    add(t, "d", tarfile.DIRTYPE, 0o750, ["system.posix_acl_access", "system.posix_acl_default"])
    add(t, "f", tarfile.REGTYPE, 0o640, ["system.posix_acl_access", "system.posix_acl_default"])
"#;
    let made = h.command("python3").arg("-c").arg(script).current_dir(&dir).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let img = dir.join("img");
    let run = h.fr_in(&dir, ["import", "h.tar", img.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let copy = dir.join("out.tar");
    let run = h.fr(["export".as_ref(), img.as_os_str(), copy.as_os_str()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let list = r#"
import sys, tarfile
for m in tarfile.open(sys.argv[1]):
    if m.name.strip("./") in ("d", "f"):
        acls = sorted(k for k in m.pax_headers if "posix_acl" in k)
        print(m.name.strip("./"), oct(m.mode), acls)
"#;
    let out = h.command("python3").arg("-c").arg(list).arg(&copy).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "d 0o750 []\nf 0o640 []\n");
}

/// fr's log on a pipe that closes (`2>&1 | head -1`): the messages that
/// cannot be written are dropped and the session ends as usual. A logger
/// that panicked on EPIPE killed the supervisor worker that was logging,
/// with the workload's call unanswered forever.
#[test]
fn a_closed_log_pipe_does_not_stop_the_session() {
    let Some(h) = harness() else { return };
    // The stats start once the pipe is surely closed, so their trace lines
    // meet EPIPE instead of fitting in the pipe's buffer.
    let script = "sleep 1; for i in 1 2 3 4 5 6 7 8; do stat / >/dev/null; done; echo done";
    let mut child = h
        .fr_command(["-vv", "exec", "-f", "--", "sh", "-c", script])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    log.read_line(&mut first).unwrap();
    assert!(first.starts_with("fr: "), "{first}");
    drop(log);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the session hung after its log pipe closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!((status.code(), out.as_str()), (Some(0), "done\n"));
}

/// A set-group-id directory made outside fr loses the bit to an access ACL
/// set by a caller outside its group without `CAP_FSETID`; a directory root
/// then makes in it must not inherit the bit. Real root, in a directory of
/// its own, is the oracle.
#[test]
fn an_acl_that_drops_set_group_id_drops_it_from_the_real_directory() {
    use std::os::unix::fs::PermissionsExt;
    let Some(h) = harness() else { return };
    if !common::is_root() {
        common::cannot_run::<()>("real root is this test's oracle: run the suite as root");
        return;
    }
    let Some(prog) = h.compile("acl_sgid.c", "acl_sgid", &["-static"]) else { return };
    let oracle_dir = h.scratch("acl-sgid-root").join("d");
    std::fs::create_dir(&oracle_dir).unwrap();
    std::os::unix::fs::chown(&oracle_dir, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&oracle_dir, std::fs::Permissions::from_mode(0o2775)).unwrap();
    let oracle = std::process::Command::new(&prog).arg(&oracle_dir).output().unwrap();
    let oracle = String::from_utf8(oracle.stdout).unwrap();
    assert_eq!(oracle, "setxattr 0 -\ndir 775\nsub 755\n");

    let dir = h.scratch("acl-sgid");
    let bin = common::install(h, &prog, &dir, "acl_sgid");
    let d = dir.join("d");
    h.command("mkdir").arg(&d).output().unwrap();
    h.command("chmod").arg("2775").arg(&d).output().unwrap();
    let out = h.exec_in(&dir, None, &["-f", "--userns=root-mapped"], &[bin.to_str().unwrap(), "d"]);
    assert_eq!(out.ok(), oracle);
}

#[test]
fn a_single_file_can_be_bound() {
    // -B FILE:DST failed with "opening /DST: Invalid argument" (openat2
    // refuses a mode without O_CREAT).
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    let data = h.scratch("file-bind");
    std::fs::write(data.join("motd"), "from the host\n").unwrap();
    let rw = format!("{}:/etc/motd", data.join("motd").display());
    let ro = format!("{}:/etc/new/ro-motd:ro", data.join("motd").display());
    let out = h.exec(
        Some(&rootfs),
        &["-f", "-B", &rw, "-B", &ro],
        &[
            "sh",
            "-c",
            "cat /etc/motd /etc/new/ro-motd; echo more >> /etc/new/ro-motd || echo ro-ok",
        ],
    );
    assert_eq!(out.ok(), "from the host\nfrom the host\nro-ok\n");
    assert_eq!(std::fs::read_to_string(data.join("motd")).unwrap(), "from the host\n");
}

/// A devpts of its own, mounted as real root's bootstrap tools mount one
/// (`mmdebstrap --mode=root`: `-o noexec,nosuid,uid=5,mode=620,ptmxmode=666`),
/// on the host tree: in root-mapped mode the namespace maps no uid 5 and
/// the kernel refused the mount (EINVAL), so mmdebstrap failed; fr now
/// takes the ids out and the mount works, and says so. In subuid mode
/// uid 5 is mapped and the options go to the kernel as they are. Without
/// a namespace no mount can work, and fr says what to do.
#[test]
fn a_devpts_is_mountable_as_fake_root_on_the_host_tree() {
    let Some(h) = harness() else { return };
    let mount = "mkdir pts && mount -t devpts -o noexec,nosuid,uid=5,gid=5,mode=620,ptmxmode=666 \
                 none pts && test -c pts/ptmx && grep -c ' devpts ' /proc/self/mounts && umount pts && \
                 echo mounted";
    let mut modes = vec!["--userns=root-mapped"];
    if common::subuid_ready(h) {
        modes.push("--userns=subuid");
    } else {
        common::cannot_run::<()>("subuid mode needs the test user's ranges (.ci/run)");
    }
    for mode in modes {
        let dir = h.scratch("devpts");
        let run = h.exec_in(&dir, None, &["-f", mode], &["sh", "-c", mount]);
        assert_eq!(run.code, Some(0), "{mode}: {run:?}");
        assert!(run.stdout.ends_with("mounted\n"), "{mode}: {run:?}");
        let said = run.stderr.contains("mount -t devpts -o uid=5,gid=5,mode=620,ptmxmode=666");
        assert_eq!(said, mode == "--userns=root-mapped", "{mode}: {}", run.stderr);
    }
    let dir = h.scratch("devpts");
    let run = h.exec_in(&dir, None, &["-f", "--userns=none"], &["sh", "-c", mount]);
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("run without --userns=none"), "{}", run.stderr);
}
