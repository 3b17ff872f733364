//! fr's boundaries, attacked from inside: a workload that tries to reach
//! past its image, to take over or stop fr's own processes, to uncover or
//! bypass the image's store, and to change the caller's files through
//! descriptors or binds. Each attack runs as fake root in both user
//! namespace modes (and without a namespace where it applies); host
//! sentinels are checked unchanged afterwards. `docs/security.md` lists
//! the attacks and the tests that try them.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::pty::{at_the_terminal, Steps};
use common::{cannot_run, harness, subuid_ready, Harness};

/// The user namespace modes an image session can run in here.
fn modes(h: &Harness) -> Vec<&'static str> {
    let mut modes = vec!["--userns=root-mapped"];
    if subuid_ready(h) {
        modes.push("--userns=subuid");
    } else {
        cannot_run::<()>("subuid mode needs the test user's ranges and setuid newuidmap");
    }
    modes
}

/// A busybox image with the attack probe at `/bin/boundary`.
fn image(h: &Harness) -> Option<PathBuf> {
    let rootfs = h.rootfs()?;
    let probe = h.compile("boundary.c", "boundary-static", &["-static"])?;
    common::install(h, &probe, &rootfs.join("bin"), "boundary");
    Some(rootfs)
}

/// A file outside the image, owned by the test user, mode 0644.
fn sentinel(h: &Harness) -> PathBuf {
    let dir = h.scratch("host");
    let file = dir.join("sentinel");
    let mut made = h.command("sh");
    made.args(["-c", "echo host > sentinel && chmod 644 sentinel"]).current_dir(&dir);
    assert!(made.status().unwrap().success());
    file
}

/// Asserts the sentinel is as [`sentinel`] made it.
fn assert_untouched(h: &Harness, file: &Path) {
    let meta = std::fs::metadata(file).unwrap();
    assert_eq!(std::fs::read_to_string(file).unwrap(), "host\n", "{} was written", file.display());
    assert_eq!(meta.mode() & 0o7777, 0o644, "{} was chmod'ed", file.display());
    assert_eq!((meta.uid(), meta.gid()), (h.uid, h.gid), "{} was chowned", file.display());
}

/// Every way a process inside might name a host path: through each
/// descriptor of every process it can see, and their root and working
/// directories. Prints "reached P" for each that leads to `target`, then
/// writes, chmods and chowns it.
fn walk_script(target: &Path) -> String {
    let up = "../".repeat(24);
    format!(
        r#"t={t}
try() {{
    if [ -e "$1" ]; then
        echo "reached $1"; echo pwned > "$1"; chmod 666 "$1"; chown 1234:1234 "$1"
    fi
}}
for p in /proc/[0-9]*/fd/* /proc/[0-9]*/task/*/fd/*; do try "$p/{up}$t"; done
for p in /proc/[0-9]*/root /proc/[0-9]*/cwd /proc/[0-9]*/task/*/root /proc/[0-9]*/task/*/cwd; do
    try "$p$t"; try "$p/{up}$t"
done
try "$t"; try "/{up}$t"
echo walked"#,
        t = target.display()
    )
}

#[test]
fn no_descriptor_root_or_working_directory_leads_out_of_the_image() {
    let Some(h) = harness() else { return };
    // The caller's home and working directory are bound by default (as
    // Apptainer binds them): the sentinel is in neither. Each of the
    // options that change the container's mounts is tried too.
    let variants: [&[&str]; 4] =
        [&[], &["--writable-tmpfs"], &["--net", "--network", "none"], &["--containall"]];
    for mode in modes(h) {
        for extra in variants {
            let Some(img) = image(h) else { return };
            let target = sentinel(h);
            let cwd = h.scratch("cwd");
            let mut opts = vec!["-f", mode];
            opts.extend_from_slice(extra);
            let run = h.exec_in(&cwd, Some(&img), &opts, &["sh", "-c", &walk_script(&target)]);
            let out = run.ok();
            assert!(out.ends_with("walked\n"), "{mode} {extra:?}: {out}");
            assert!(!out.contains("reached"), "{mode} {extra:?}: a way out:\n{out}");
            assert_untouched(h, &target);
        }
    }
}

#[test]
fn the_image_has_no_host_mount_but_the_documented_ones() {
    let Some(h) = harness() else { return };
    let data = h.scratch("data");
    let cwd = h.scratch("cwd");
    for mode in modes(h) {
        let Some(img) = image(h) else { return };
        let bind = format!("{}:/data:ro", data.display());
        let out = h
            .exec_in(&cwd, Some(&img), &["-f", mode, "-B", &bind], &["cat", "/proc/self/mountinfo"])
            .ok();
        for line in out.lines() {
            let point = line.split(' ').nth(4).unwrap();
            // The home directory (at /root for fake root) and the working
            // directory are bound by default, as Apptainer binds them.
            let documented = ["/", "/proc", "/tmp", "/.fr", "/data", "/root"].contains(&point)
                || point == cwd.to_str().unwrap()
                || point.starts_with("/sys")
                || point == "/dev"
                || point.starts_with("/dev/");
            assert!(documented, "{mode}: an undocumented mount at {point}:\n{out}");
        }
        // --contain binds neither.
        let out =
            h.exec_in(&cwd, Some(&img), &["-f", mode, "-c"], &["cat", "/proc/self/mountinfo"]).ok();
        assert!(!out.contains(cwd.to_str().unwrap()), "{mode}: --contain bound the cwd:\n{out}");
    }
}

#[test]
fn the_init_cannot_be_traced_read_or_killed() {
    let Some(h) = harness() else { return };
    let script = "boundary ptrace 1; boundary mem 1; boundary getfd 1 0; boundary vmread 1; \
                  boundary kill 1 9; boundary kill 1 19; ls /proc/1/fd >/dev/null 2>&1 || echo fd denied; \
                  boundary ptrace 1";
    for mode in modes(h) {
        let Some(img) = image(h) else { return };
        let out = h.exec(Some(&img), &["-f", mode], &["sh", "-c", script]).ok();
        assert_eq!(
            out,
            "ptrace EPERM\nmem EACCES\ngetfd EPERM\nvmread EPERM\nkill ok\nkill ok\nfd denied\n\
             ptrace EPERM\n",
            "{mode}"
        );
    }
}

#[test]
fn without_a_namespace_fr_cannot_be_traced_read_or_signalled() {
    let Some(h) = harness() else { return };
    let Some(probe) = h.compile("boundary.c", "boundary-static", &["-static"]) else { return };
    let dir = h.scratch("none");
    let bin = common::install(h, &probe, &dir, "boundary");
    let b = bin.display();
    // The workload's parent is fr itself.
    let script = format!(
        "{b} ptrace $PPID; {b} mem $PPID; {b} getfd $PPID 0; {b} vmread $PPID; \
         {b} kill $PPID 19; {b} kill $PPID 9; echo alive"
    );
    // A stopped fr would leave the workload waiting for ever: a time limit
    // turns that into a failure.
    let mut cmd = h.command("timeout");
    cmd.arg("60").arg(&h.fr).args(["exec", "-f", "--userns=none", "--", "sh", "-c", &script]);
    let run = common::run(cmd.current_dir(&dir));
    assert_eq!(
        run.ok(),
        "ptrace EPERM\nmem EACCES\ngetfd ESRCH\nvmread EPERM\nkill ESRCH\nkill ESRCH\nalive\n"
    );
}

#[test]
fn io_uring_is_refused_in_every_mode() {
    let Some(h) = harness() else { return };
    for mode in modes(h) {
        let Some(img) = image(h) else { return };
        assert_eq!(
            h.exec(Some(&img), &["-f", mode], &["boundary", "iouring"]).ok(),
            "iouring ENOSYS\n",
            "{mode}"
        );
    }
    let Some(probe) = h.compile("boundary.c", "boundary-static", &["-static"]) else { return };
    let dir = h.scratch("uring");
    let bin = common::install(h, &probe, &dir, "boundary");
    let bin = bin.to_str().unwrap();
    for mode in ["--userns=none", "--userns=root-mapped"] {
        let out = h.exec_in(&dir, None, &["-f", mode], &[bin, "iouring"]).ok();
        assert_eq!(out, "iouring ENOSYS\n", "host tree, {mode}");
    }
}

/// `fr exec OPTS [IMAGE] -- CMD` with descriptor 3 appended to `file`, as
/// a shell redirection passes it.
fn with_fd3(h: &Harness, file: &Path, opts: &[&str], image: Option<&Path>, cmd: &str) -> String {
    let mut line = format!("exec {} exec", h.fr.display());
    for o in opts {
        line.push_str(&format!(" {o}"));
    }
    if let Some(img) = image {
        line.push_str(&format!(" {}", img.display()));
    }
    line.push_str(&format!(" -- sh -c '{cmd}' 3>>{}", file.display()));
    common::run(h.command("sh").arg("-c").arg(&line)).ok()
}

#[test]
fn a_descriptor_the_caller_passed_in_is_changed_only_in_the_table() {
    let Some(h) = harness() else { return };
    let cmd = "boundary fchmod 3 4777; boundary fchown 3 1234 1234; chmod 600 /proc/self/fd/3; \
               chown 99:99 /proc/self/fd/3; stat -L -c %a:%u:%g /proc/self/fd/3";
    let want = "fchmod ok\nfchown ok\n600:99:99\n";
    for mode in modes(h) {
        let Some(img) = image(h) else { return };
        let log = sentinel(h);
        assert_eq!(with_fd3(h, &log, &["-f", mode], Some(&img), cmd), want, "{mode}");
        assert_untouched(h, &log);
    }
    // On the host tree too: what the caller passed on is the caller's.
    let Some(probe) = h.compile("boundary.c", "boundary-static", &["-static"]) else { return };
    let dir = h.scratch("passed");
    common::install(h, &probe, &dir, "boundary");
    let cmd = cmd.replace("boundary", &format!("{}/boundary", dir.display()));
    for mode in ["--userns=none", "--userns=root-mapped"] {
        let log = sentinel(h);
        assert_eq!(with_fd3(h, &log, &["-f", mode], None, &cmd), want, "host tree, {mode}");
        assert_untouched(h, &log);
    }
}

#[test]
fn the_callers_terminal_keeps_its_mode() {
    let Some(h) = harness() else { return };
    if !Path::new("/usr/bin/script").exists() {
        cannot_run::<()>("script(1) (bsdutils) runs fr on a pseudo-terminal");
        return;
    }
    for mode in modes(h) {
        let Some(img) = image(h) else { return };
        let inner = format!(
            "stat -L -c %a /proc/self/fd/0; {} exec -q -f {mode} {} -- boundary fchmod 0 666; \
             stat -L -c %a /proc/self/fd/0",
            h.fr.display(),
            img.display()
        );
        let out = common::run(h.command("script").args(["-qec", &inner, "/dev/null"])).ok();
        let lines: Vec<&str> = out.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 3, "{mode}: {out:?}");
        assert_eq!(lines[1], "fchmod ok", "{mode}");
        assert_eq!(lines[0], lines[2], "{mode}: the terminal's real mode changed");
    }
}

#[test]
fn a_bind_is_changed_only_as_the_user_could() {
    let Some(h) = harness() else { return };
    for mode in modes(h) {
        let Some(img) = image(h) else { return };
        let data = sentinel(h);
        let dir = data.parent().unwrap();
        let rw = format!("{}:/data", dir.display());
        let ro = format!("{}:/ro:ro", dir.display());
        let script = "chown 1000:1000 /data/sentinel; stat -c %u:%g /data/sentinel; \
                      mount -o remount,rw /ro 2>/dev/null && echo remounted; \
                      mount -o remount,bind,rw /ro 2>/dev/null && echo remounted; \
                      umount /ro 2>/dev/null && echo unmounted; \
                      touch /ro/new 2>/dev/null && echo wrote; echo end";
        let run = h.exec(Some(&img), &["-f", mode, "-B", &rw, "-B", &ro], &["sh", "-c", script]);
        assert_eq!(run.ok(), "1000:1000\nend\n", "{mode}");
        assert_untouched(h, &data);
        assert!(!dir.join("new").exists(), "{mode}: wrote through a read-only bind");
    }
}

/// Reads `child`'s stdout until a line equal to `line`; kills it after
/// `limit` so that a hang fails the test instead of stopping the suite.
fn read_until(child: &mut std::process::Child, line: &str, limit: Duration) -> Vec<String> {
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(limit).is_err() {
            let _ = std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    });
    let mut seen = Vec::new();
    let reader = BufReader::new(child.stdout.as_mut().unwrap());
    for l in reader.lines() {
        let l = l.unwrap();
        let last = l == line;
        seen.push(l);
        if last {
            break;
        }
    }
    // The child is not reaped yet, so its pid was not reused meanwhile.
    let _ = done.send(());
    watchdog.join().unwrap();
    seen
}

#[test]
fn the_store_cannot_be_uncovered_and_its_lock_holds() {
    let Some(h) = harness() else { return };
    for mode in modes(h) {
        let Some(img) = image(h) else { return };
        h.exec(Some(&img), &["-f", mode], &["sh", "-c", "touch /f && chown 70000:6 /f"]).ok();
        let store = std::fs::read(img.join(".fr/store")).unwrap();
        let attack = "umount /.fr 2>/dev/null && echo unmounted; \
                      umount -l /.fr 2>/dev/null && echo detached; \
                      mount -o remount,rw /.fr 2>/dev/null && echo writable; \
                      mkdir -p /tmp/r && mount --bind / /tmp/r 2>/dev/null && echo bound; \
                      ls -A /tmp/r/.fr 2>/dev/null; \
                      rm -f /.fr/lock /.fr/store 2>/dev/null; echo x > /.fr/store 2>/dev/null; \
                      echo attempted; sleep 3; stat -c %u:%g /f";
        let mut first = h
            .exec_command(Some(&img), &["-f", mode], &["sh", "-c", attack])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let said = read_until(&mut first, "attempted", Duration::from_secs(60));
        assert_eq!(said, ["attempted"], "{mode}");
        // While the first session runs, a second one is refused.
        let second = h.exec(Some(&img), &["-f", mode], &["true"]);
        assert_eq!(second.code, Some(125), "{mode}: a second session ran: {}", second.stderr);
        assert!(second.stderr.contains("in use"), "{mode}: {}", second.stderr);
        let rest = first.wait_with_output().unwrap();
        assert!(rest.status.success(), "{mode}: {}", String::from_utf8_lossy(&rest.stderr));
        assert_eq!(String::from_utf8_lossy(&rest.stdout), "70000:6\n", "{mode}");
        assert_eq!(std::fs::read(img.join(".fr/store")).unwrap(), store, "{mode}");
        assert!(img.join(".fr/lock").exists(), "{mode}: the lock was removed");
    }
}

/// The caller's working directory (and home) are bound by default: when
/// the image is below one, the workload sees it there too, and fr's store
/// beside it must stay covered as it is at `/.fr`.
#[test]
fn the_store_stays_covered_where_the_working_directory_bind_reaches_it() {
    let Some(h) = harness() else { return };
    for mode in modes(h) {
        let Some(img) = image(h) else { return };
        h.exec(Some(&img), &["-f", mode], &["sh", "-c", "touch /f && chown 70000:6 /f"]).ok();
        let store = std::fs::read(img.join(".fr/store")).unwrap();
        let parent = img.parent().unwrap();
        let name = img.file_name().unwrap().to_str().unwrap();
        let attack = format!(
            "cd {name} || exit 9; ls -A .fr; rm -f .fr/lock .fr/store 2>/dev/null; \
             echo x > .fr/store 2>/dev/null && echo wrote; umount .fr 2>/dev/null && echo unmounted; \
             echo attempted"
        );
        let out = h.exec_in(parent, Some(&img), &["-f", mode], &["sh", "-c", &attack]).ok();
        assert_eq!(out, "attempted\n", "{mode}");
        assert_eq!(std::fs::read(img.join(".fr/store")).unwrap(), store, "{mode}");
        assert!(img.join(".fr/lock").exists(), "{mode}: the lock was removed");
        // Through the home directory bound at /root for fake root alike.
        let mut cmd = h.exec_command(
            Some(&img),
            &["-f", mode],
            &["sh", "-c", &attack.replace(&format!("cd {name}"), &format!("cd /root/{name}"))],
        );
        let out = common::run(cmd.env("HOME", parent)).ok();
        assert_eq!(out, "attempted\n", "{mode}");
        assert_eq!(std::fs::read(img.join(".fr/store")).unwrap(), store, "{mode}");
    }
}

#[test]
fn a_signal_to_the_whole_process_group_reaches_the_workload_once_and_spares_fr() {
    let Some(h) = harness() else { return };
    // kill(0) reaches every process of the job, fr's own included: the
    // workload must get it once (fr must not forward it again), and a
    // signal fr has no use for must not end the session. Each session is
    // a job of its own (setsid), as a shell would start it, so that its
    // kill(0) reaches no other test's processes.
    let script = "trap 'echo got TERM' TERM; trap '' ALRM; kill -TERM 0; kill -ALRM 0; \
                  sleep 1; echo end";
    let job = |opts: &[&str], image: Option<&Path>| {
        let mut cmd = h.command("setsid");
        cmd.arg("-w").arg(&h.fr).arg("exec").args(opts);
        if let Some(img) = image {
            cmd.arg(img);
        }
        common::run(cmd.args(["--", "sh", "-c", script]))
    };
    for mode in modes(h) {
        let Some(img) = image(h) else { return };
        assert_eq!(job(&["-f", mode], Some(&img)).ok(), "got TERM\nend\n", "{mode}");
    }
    assert_eq!(job(&["-f", "--userns=none"], None).ok(), "got TERM\nend\n", "--userns=none");
}

#[test]
fn the_workload_has_the_terminal_and_job_control_still_works() {
    let Some(h) = harness() else { return };
    if std::process::Command::new("python3").arg("-c").arg("import pty").status().is_err() {
        cannot_run::<()>("python3 drives the pseudo-terminal");
        return;
    }
    let mut sessions = Vec::new();
    for mode in modes(h) {
        let Some(img) = image(h) else { return };
        sessions.push((mode, format!("{} exec -q -f {mode} {}", h.fr.display(), img.display())));
    }
    sessions.push(("--userns=none", format!("{} exec -q -f --userns=none", h.fr.display())));
    for (mode, fr) in sessions {
        // Each command's output is computed ($((...))), so that the echo
        // of the line typed is never taken for it; each waits for the
        // prompt, as a user would.
        let prompt = r"\n\$ $";
        let steps = Steps::default()
            .expect(r"\$ $", 10)
            // The workload reads the terminal: it is in the foreground.
            .send(&format!("{fr} -- sh -c 'read x; echo got-$((1+1)) $x'\n"))
            .send("hello\n")
            .expect("got-2 hello", 20)
            .expect(prompt, 20)
            // ^Z stops the job; fg continues it where it was. (The
            // workload waits in read(2) when ^Z comes, not between a
            // vfork and its execve: see job's module doc.)
            .send(&format!("{fr} -- sh -c 'echo ready-$((1+2)); read x; echo after-$((1+3)) $x'\n"))
            .expect("ready-3", 20)
            .pause(0.3)
            .send("\u{1a}")
            .expect("Stopped", 10)
            .expect(prompt, 10)
            .send("fg\n")
            .send("more\n")
            .expect("after-4 more", 20)
            .expect(prompt, 20)
            .send("echo status=$((0+$?))\n")
            .expect("status=0", 10)
            .expect(prompt, 10)
            // ^C ends the command, and only it.
            .send(&format!("{fr} -- sh -c 'echo ready-$((2+3)); sleep 30'\n"))
            .expect("ready-5", 20)
            // A ^C between a shell's fork and its child's execve is taken
            // by the shell's own handler in the child (dash catches SIGINT
            // with -c), natively as under fr: let the command start.
            .pause(0.3)
            .send("\u{3}")
            // The terminal echoes ^C, and the prompt follows on its line.
            .expect(r"\^C.*\$ $", 20)
            .send("echo status=$((0+$?))\n")
            .expect("status=130", 10)
            .expect(prompt, 10)
            // A stop signal the workload sends its own group stops the
            // job as the terminal's would, and fr with it.
            .send(&format!("{fr} -- sh -c 'kill -STOP 0; echo resumed-$((3+3))'\n"))
            .expect("Stopped", 20)
            .expect(prompt, 10)
            .send("fg\n")
            .expect("resumed-6", 20)
            .expect(prompt, 20)
            // An interactive fake root shell and its exit status.
            .send(&format!("{fr} -- sh\n"))
            .send("echo uid-$(id -u)-$((1+6))\n")
            .expect("uid-0-7", 20)
            .send("exit 3\n")
            .expect(prompt, 20)
            .send("echo status=$((0+$?))\n")
            .expect("status=3", 10)
            .send("exit\n");
        let run = at_the_terminal(h, &steps);
        assert_eq!(run.code, Some(0), "{mode}:\n{}", run.stdout);
    }
}
