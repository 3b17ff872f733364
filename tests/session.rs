//! A session ends when its command ends, and never hangs: a workload that
//! leaves its process group (`setsid`), daemonizes, or leaves fr alone with
//! a signal. Each case runs in every mode fr offers here, under a time
//! limit so that a hang fails the test instead of stopping the suite.

mod common;

use std::path::Path;
use std::process::Command;

use common::pty::{at_the_terminal, Steps};
use common::{cannot_run, harness, subuid_ready, Harness, Run};

/// Every way to run a session here: each user namespace mode on the image
/// (a busybox rootfs), and the host tree with and without a namespace.
fn sessions(h: &Harness) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut modes = vec!["--userns=root-mapped"];
    if subuid_ready(h) {
        modes.push("--userns=subuid");
    } else {
        cannot_run::<()>("subuid mode needs the test user's ranges and setuid newuidmap");
    }
    for mode in modes {
        if let Some(img) = h.rootfs() {
            let img = img.display().to_string();
            out.push((format!("image {mode}"), vec!["-f".into(), mode.into(), img]));
        }
        out.push((format!("host {mode}"), vec!["-f".into(), mode.into()]));
    }
    out.push(("host --userns=none".into(), vec!["-f".into(), "--userns=none".into()]));
    out
}

/// `fr exec OPTS -- sh -c SCRIPT` as the test user, killed after 30 s.
fn fr_sh(h: &Harness, opts: &[String], script: &str) -> Run {
    let mut cmd = h.command("timeout");
    cmd.args(["-s", "KILL", "30"]).arg(&h.fr).arg("exec").args(opts).args(["--", "sh", "-c"]);
    common::run(cmd.arg(script))
}

/// The test user's processes whose command line contains `marker`.
fn left_running(h: &Harness, marker: &str) -> Vec<String> {
    let out = Command::new("ps").args(["-u", &h.uid.to_string(), "-o", "pid=,args="]).output();
    let text = String::from_utf8_lossy(&out.unwrap().stdout).into_owned();
    text.lines().filter(|l| l.contains(marker) && !l.contains("ps -u")).map(String::from).collect()
}

#[test]
fn a_command_that_leaves_its_process_group_ends_the_session() {
    let Some(h) = harness() else { return };
    for (what, opts) in sessions(h) {
        let run = fr_sh(h, &opts, "setsid true; echo done");
        assert_eq!(run.code, Some(0), "{what}: {}", run.stderr);
        assert_eq!(run.stdout, "done\n", "{what}");
        // setsid itself as the command: it forks when it leads its group.
        let mut cmd = h.command("timeout");
        cmd.args(["-s", "KILL", "30"]).arg(&h.fr).arg("exec").args(&opts);
        let run = common::run(cmd.args(["--", "setsid", "true"]));
        assert_eq!(run.code, Some(0), "{what}: setsid as the command: {}", run.stderr);
    }
}

#[test]
fn a_daemon_outliving_its_command_ends_with_the_session() {
    let Some(h) = harness() else { return };
    for (n, (what, opts)) in sessions(h).into_iter().enumerate() {
        // A double fork into a session of its own, as daemons do; the
        // marker tells its sleep from any other.
        let marker = format!("{}.{n}", 3600 + std::process::id() % 1000);
        // It runs its sleep before the command ends, so that it needs no
        // notified call afterwards.
        let script = format!(
            "rm -f up.{n}; (setsid sh -c 'touch up.{n}; exec sleep {marker}' &); \
             while [ ! -e up.{n} ]; do sleep 0.05; done; rm up.{n}; echo started"
        );
        let run = fr_sh(h, &opts, &script);
        assert_eq!(run.code, Some(0), "{what}: {}", run.stderr);
        assert_eq!(run.stdout, "started\n", "{what}");
        assert_eq!(left_running(h, &format!("sleep {marker}")), Vec::<String>::new(), "{what}");
    }
}

#[test]
fn sigterm_ends_a_session_whose_command_left_daemons_behind() {
    let Some(h) = harness() else { return };
    for (n, (what, opts)) in sessions(h).into_iter().enumerate() {
        let marker = format!("{}.{n}", 7200 + std::process::id() % 1000);
        let script = format!("(setsid sh -c 'sleep {marker}' &); echo ready; exec sleep 600");
        let mut cmd = h.command("timeout");
        cmd.args(["-s", "KILL", "30"]).arg(&h.fr).arg("exec").args(&opts);
        cmd.args(["--", "sh", "-c", &script]).stdout(std::process::Stdio::piped());
        cmd.stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line, "ready\n", "{what}");
        // timeout's child is fr; TERM to timeout would be passed on to it,
        // but fr's own pid is the one a user's `kill` names.
        let fr = common::run(Command::new("pgrep").args(["-P", &child.id().to_string()]));
        let fr_pid: i32 = fr.stdout.trim().parse().unwrap_or_else(|_| panic!("{what}: {fr:?}"));
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(fr_pid).unwrap(),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(128 + 15), "{what}: the command's status");
        assert_eq!(left_running(h, &format!("sleep {marker}")), Vec::<String>::new(), "{what}");
    }
}

#[test]
fn an_interactive_fake_root_shell_returns_its_exit_status() {
    let Some(h) = harness() else { return };
    if !Path::new("/bin/bash").exists() {
        cannot_run::<()>("bash is the interactive shell here");
        return;
    }
    for (what, opts) in sessions(h).into_iter().filter(|(w, _)| w.starts_with("host")) {
        // bash as the command, interactive: it makes its own process group
        // for its jobs, which used to leave fr spinning after `exit 3`.
        let fr =
            format!("{} exec -q {} -- bash --norc --noprofile -i", h.fr.display(), opts.join(" "));
        let steps = Steps::default()
            .expect(r"\$ $", 10)
            .send(&format!("{fr}\n"))
            .expect(r"\$ $", 20)
            .send("echo uid-$(id -u)-$((2+5))\n")
            .expect("uid-0-7", 20)
            .send("sleep 0.1 & wait; exit 3\n")
            .expect(r"\$ $", 20)
            .send("echo status=$((0+$?))\n")
            .expect("status=3", 20)
            .send("exit\n");
        let run = at_the_terminal(h, &steps);
        assert_eq!(run.code, Some(0), "{what}:\n{}", run.stdout);
    }
}
