//! Instances, daemonless: `fr instance start|list|stop`, `instance://NAME`,
//! a web server behind a port map with each network helper, a killed
//! monitor, stale state, wrong names, and a workload that reaches for the
//! monitor's socket. Each test has a runtime directory of its own
//! (`XDG_RUNTIME_DIR`), and stops every instance it started, whatever
//! happens.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{cannot_run, harness, run, Harness, Run};

/// A runtime directory of the test's own; every instance in it is
/// stopped when dropped.
struct Runtime<'h> {
    h: &'h Harness,
    dir: PathBuf,
}

impl<'h> Runtime<'h> {
    fn new(h: &'h Harness) -> Runtime<'h> {
        let dir = h.scratch("rt");
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        Runtime { h, dir }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.h.fr_command(args);
        cmd.env("XDG_RUNTIME_DIR", &self.dir);
        cmd
    }

    fn fr(&self, args: &[&str]) -> Run {
        run(&mut self.command(args))
    }

    /// `instance.json` of `name`, as text.
    fn state(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join("fr/instances").join(name).join("instance.json"))
            .unwrap_or_default()
    }

    /// A number field of `instance.json`.
    fn field(&self, name: &str, key: &str) -> u64 {
        let state = self.state(name);
        let at = state.find(&format!("\"{key}\": ")).unwrap_or_else(|| panic!("{key} in {state}"));
        state[at + key.len() + 4..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .unwrap()
    }
}

impl Drop for Runtime<'_> {
    fn drop(&mut self) {
        let _ = self.command(&["instance", "stop", "--all", "--timeout", "2"]).output();
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A host TCP port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0").unwrap().local_addr().unwrap().port()
}

/// Whether a process with `needle` in its command line runs.
fn running(needle: &str) -> Vec<String> {
    let out = Command::new("ps").args(["-e", "-o", "pid=,args="]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(needle) && !l.contains("ps -e"))
        .map(String::from)
        .collect()
}

/// Whether process `pid` is the one a helper named `name` was.
fn is(pid: u64, name: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(name))
}

/// A busybox image serving `/www` with busybox httpd on port 80 from its
/// start script, and a sleeping process whose command line holds `marker`.
fn web_image(h: &Harness, marker: &str) -> Option<PathBuf> {
    let img = h.rootfs()?;
    let script = format!(
        "mkdir -p {i}/www {i}/.singularity.d && echo hello-from-the-instance > {i}/www/index.html && \
         printf '#!/bin/sh\\nsleep {marker} &\\nexec busybox httpd -f -p 80 -h /www\\n' > {i}/.singularity.d/startscript && \
         chmod 755 {i}/.singularity.d/startscript",
        i = img.display()
    );
    assert!(h.command("sh").args(["-c", &script]).status().unwrap().success());
    Some(img)
}

/// `curl` of the instance's page. The instance is up when `fr instance
/// start` returns, its server a moment later, as with any service: curl
/// tries again while the connection is refused or reset.
fn curl(h: &Harness, port: u16) -> Run {
    let url = format!("http://127.0.0.1:{port}/");
    run(h.command("curl").args([
        "-s",
        "--max-time",
        "30",
        "--retry",
        "30",
        "--retry-delay",
        "1",
        "--retry-all-errors",
        &url,
    ]))
}

/// The acceptance test of issue 14, with `helper`.
fn serve_and_stop(helper: &str, package: &str) {
    let Some(h) = harness() else { return };
    if !Path::new("/usr/bin").join(helper).exists() {
        cannot_run::<()>(format!(
            "{helper} is not installed (apt-get install {package}; .ci/run does)"
        ));
        return;
    }
    if Command::new("curl").arg("--version").output().is_err() {
        cannot_run::<()>("curl is not installed (apt-get install curl; .ci/run does)");
        return;
    }
    let marker = format!("77{}{}", std::process::id(), helper.len());
    let Some(img) = web_image(h, &marker) else { return };
    let rt = Runtime::new(h);
    let port = free_port();
    let map = format!("portmap={port}:80/tcp");
    let out = rt.fr(&[
        "instance",
        "start",
        "-f",
        "--net",
        "--network",
        helper,
        "--network-args",
        &map,
        s(&img),
        "web",
    ]);
    assert_eq!(out.code, Some(0), "{helper}: start: {out:?}");
    // A plain curl on the host fetches the file through the port map.
    assert_eq!(curl(h, port).ok(), "hello-from-the-instance\n", "{helper}");
    // list shows it, its monitor and its port map.
    let list = rt.fr(&["instance", "list"]).ok();
    let line = list.lines().find(|l| l.starts_with("web ")).unwrap_or_else(|| panic!("{list}"));
    assert!(line.contains(&format!("{port}:80/tcp")) && line.contains(s(&img)), "{list}");
    let monitor = rt.field("web", "pid");
    let helper_pid = rt.field("web", "helper_pid");
    assert!(is(helper_pid, helper), "{helper}: helper pid {helper_pid}");
    // An owner set through the instance shows through it later (an id
    // beyond the subordinate range: a record of the store's, in every mode).
    rt.fr(&["exec", "instance://web", "--", "chown", "70000:456", "/www/index.html"]).ok();
    let out = rt.fr(&["exec", "instance://web", "--", "stat", "-c", "%u:%g", "/www/index.html"]);
    assert_eq!(out.ok(), "70000:456\n", "{helper}");
    // Its network namespace has an interface besides lo.
    let dev = rt.fr(&["exec", "instance://web", "--", "cat", "/proc/net/dev"]).ok();
    let ifaces: Vec<&str> =
        dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    assert!(ifaces.contains(&"lo") && ifaces.iter().any(|i| *i != "lo"), "{helper}: {dev}");
    assert!(!running(&format!("sleep {marker}")).is_empty(), "{helper}: the start script's sleep");
    // stop ends the monitor, the helper and every process of the instance,
    // and frees the port.
    rt.fr(&["instance", "stop", "web"]).ok();
    assert!(
        !Path::new(&format!("/proc/{monitor}")).exists() || !is(monitor, "instance start"),
        "{helper}: the monitor lives"
    );
    assert!(!is(helper_pid, helper), "{helper}: the helper lives");
    assert_eq!(running(&format!("sleep {marker}")), Vec::<String>::new(), "{helper}");
    TcpListener::bind(("0.0.0.0", port)).unwrap_or_else(|e| panic!("{helper}: port {port}: {e}"));
    assert_eq!(rt.fr(&["instance", "list"]).ok(), "NAME  PID  IMAGE  PORTS\n");
    assert!(!rt.dir.join("fr/instances/web").exists(), "{helper}: state left");
    // The store was saved: a session on the image sees the owner.
    let out = h.fr(["exec", "-f", s(&img), "stat", "-c", "%u:%g", "/www/index.html"]);
    assert_eq!(out.ok(), "70000:456\n", "{helper}");
}

#[test]
fn an_instance_behind_pasta_serves_its_port_map_shares_its_state_and_stops_cleanly() {
    serve_and_stop("pasta", "passt");
}

#[test]
fn an_instance_behind_slirp4netns_serves_its_port_map_shares_its_state_and_stops_cleanly() {
    serve_and_stop("slirp4netns", "slirp4netns");
}

#[test]
fn a_killed_monitor_loses_no_answered_change_and_list_removes_its_state() {
    let Some(h) = harness() else { return };
    let marker = format!("78{}", std::process::id());
    let Some(img) = web_image(h, &marker) else { return };
    let rt = Runtime::new(h);
    rt.fr(&["instance", "start", "-f", s(&img), "db"]).ok();
    rt.fr(&["exec", "instance://db", "--", "sh", "-c", "touch /kept && chown 70001:654 /kept"])
        .ok();
    let monitor = rt.field("db", "pid") as i32;
    let pid = rustix::process::Pid::from_raw(monitor).unwrap();
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    // The kill is done once the monitor has exited (its pidfd readable).
    let mut fds = [rustix::event::PollFd::new(&pidfd, rustix::event::PollFlags::IN)];
    rustix::event::poll(&mut fds, None).unwrap();
    // The kill takes the container along (parent-death signals): wait
    // for the marker's process to go, as the kernel ends it.
    for _ in 0..200 {
        if running(&format!("sleep {marker}")).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(running(&format!("sleep {marker}")), Vec::<String>::new());
    let out = rt.fr(&["instance", "list"]);
    assert_eq!(out.stdout, "NAME  PID  IMAGE  PORTS\n", "{out:?}");
    assert!(
        out.stderr.contains("instance db: its monitor") && out.stderr.contains("is gone"),
        "{}",
        out.stderr
    );
    assert!(!rt.dir.join("fr/instances/db").exists());
    // The image is free again, and the change the monitor answered is kept.
    assert_eq!(h.fr(["exec", "-f", s(&img), "stat", "-c", "%u:%g", "/kept"]).ok(), "70001:654\n");
    // instance:// of the dead instance says so.
    let out = rt.fr(&["exec", "instance://db", "--", "true"]);
    assert_eq!(out.code, Some(125));
    assert!(out.stderr.contains("no instance named db"), "{}", out.stderr);
}

#[test]
fn wrong_names_stale_state_and_a_second_start_are_clear_errors() {
    let Some(h) = harness() else { return };
    let Some(img) = web_image(h, "1") else { return };
    let rt = Runtime::new(h);
    let out = rt.fr(&["exec", "instance://nosuch", "--", "true"]);
    assert_eq!(out.code, Some(125));
    assert!(out.stderr.contains("no instance named nosuch is running"), "{}", out.stderr);
    assert!(out.stderr.contains("fr: hint:"), "{}", out.stderr);
    let out = rt.fr(&["instance", "start", "-f", s(&img), "a/b"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("\"a/b\" cannot name an instance"), "{}", out.stderr);
    let out = rt.fr(&["instance", "stop", "nosuch"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("no instance named nosuch"), "{}", out.stderr);
    // A stale state directory (a pid that is not the monitor's any more)
    // is removed by list, and does not stop a start of its name.
    let stale = rt.dir.join("fr/instances/old");
    std::fs::create_dir_all(&stale).unwrap();
    let json = format!(
        "{{\"instance\": \"old\", \"pid\": {}, \"start_time\": 1, \"img\": \"/x\", \"ports\": [], \
         \"network\": \"\", \"helper_pid\": 0, \"fakeroot\": true, \"mode\": \"subuid\", \"started\": 1}}",
        std::process::id()
    );
    std::fs::write(stale.join("instance.json"), json).unwrap();
    if let Some(u) = &h.user {
        let owner = format!("{}:{}", u.uid, u.gid);
        assert!(Command::new("chown")
            .args(["-R", &owner])
            .arg(&rt.dir)
            .status()
            .unwrap()
            .success());
    }
    let out = rt.fr(&["instance", "list"]);
    assert_eq!(out.stdout, "NAME  PID  IMAGE  PORTS\n");
    assert!(out.stderr.contains("instance old: its monitor"), "{}", out.stderr);
    assert!(!stale.exists());
    // A second start of a running name, and a session on its image.
    rt.fr(&["instance", "start", "-f", s(&img), "one"]).ok();
    let out = rt.fr(&["instance", "start", "-f", s(&img), "one"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("instance one is already running"), "{}", out.stderr);
    let out = h.fr(["exec", "-f", s(&img), "true"]);
    assert_eq!(out.code, Some(125));
    assert!(out.stderr.contains("in use by another fr session"), "{}", out.stderr);
    // A closed pipe ends list quietly.
    let mut cmd = rt.command(&["instance", "list", "--json"]);
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    rt.fr(&["instance", "stop", "one"]).ok();
}

#[test]
fn a_workload_cannot_reach_or_use_the_monitors_socket() {
    let Some(h) = harness() else { return };
    let Some(img) = web_image(h, "2") else { return };
    let Some(poke) = h.compile("sockpoke.c", "sockpoke-static", &["-static"]) else { return };
    common::install(h, &poke, &img.join("bin"), "sockpoke");
    let Some(other) = h.rootfs() else { return };
    common::install(h, &poke, &other.join("bin"), "sockpoke");
    let rt = Runtime::new(h);
    rt.fr(&["instance", "start", "-f", s(&img), "web"]).ok();
    let state = rt.dir.join("fr/instances/web");
    // Bound in on purpose: the monitor refuses a process of a container.
    let bind = format!("{}:/st", state.display());
    for request in ["S 9 0", "J"] {
        let out =
            rt.fr(&["exec", "-f", "-B", &bind, s(&other), "sockpoke", "/st/monitor.sock", request]);
        assert!(
            out.stdout.starts_with("reply: E") && out.stdout.contains("may not ask"),
            "{request}: {out:?}"
        );
    }
    // The runtime directory under the working directory bound by default
    // is covered.
    let mut cmd =
        rt.command(&["exec", "-f", s(&other), "sh", "-c", "ls -A fr/instances 2>&1; pwd"]);
    let out = run(cmd.current_dir(&rt.dir));
    let want = format!("ls: fr/instances: No such file or directory\n{}\n", rt.dir.display());
    assert_eq!(out.stdout, want, "{out:?}");
    let socket = rt.dir.join("fr/instances/web/monitor.sock");
    let look = format!(
        "ls -A {} 2>/dev/null | wc -l; sockpoke {} 'S 9 0'",
        state.display(),
        socket.display()
    );
    let mut cmd = rt.command(&["exec", "-f", s(&other), "sh", "-c", &look]);
    let out = run(cmd.current_dir(rt.dir.parent().unwrap()));
    assert_eq!(out.stdout, "0\nconnect ENOENT\n", "{out:?}");
    // Nor can the instance's own workload, which runs where the runtime
    // directory is under its bound working directory.
    let out = rt.fr(&["exec", "instance://web", "--", "sockpoke", s(&socket), "S 9 0"]);
    assert_eq!(out.stdout, "connect ENOENT\n", "{out:?}");
    // The instance is still up and answers.
    assert_eq!(rt.fr(&["exec", "instance://web", "--", "echo", "still-up"]).ok(), "still-up\n");
    rt.fr(&["instance", "stop", "web"]).ok();
}

#[test]
fn stop_kills_what_ignores_its_signal_once_the_timeout_passes() {
    let Some(h) = harness() else { return };
    let marker = format!("79{}", std::process::id());
    let Some(img) = h.rootfs() else { return };
    let script = format!(
        "mkdir -p {i}/.singularity.d && printf '#!/bin/sh\\ntrap \"\" TERM\\nexec sleep {marker}\\n' > {i}/.singularity.d/startscript && chmod 755 {i}/.singularity.d/startscript",
        i = img.display()
    );
    assert!(h.command("sh").args(["-c", &script]).status().unwrap().success());
    let rt = Runtime::new(h);
    rt.fr(&["instance", "start", s(&img), "stubborn"]).ok();
    assert!(!running(&format!("sleep {marker}")).is_empty());
    rt.fr(&["instance", "stop", "--timeout", "1", "stubborn"]).ok();
    assert_eq!(running(&format!("sleep {marker}")), Vec::<String>::new());
    assert!(!rt.dir.join("fr/instances/stubborn").exists());
}

#[test]
fn ctrl_c_ends_a_joined_command_and_not_the_instance() {
    let Some(h) = harness() else { return };
    let Some(img) = web_image(h, "3") else { return };
    let rt = Runtime::new(h);
    rt.fr(&["instance", "start", "-f", s(&img), "web"]).ok();
    let inner = format!(
        "XDG_RUNTIME_DIR={} {} exec instance://web -- sh -c 'echo ready; exec sleep 60'",
        rt.dir.display(),
        h.fr.display()
    );
    let mut cmd = h.command("script");
    cmd.args(["-q", "-e", "-c", &inner, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("ready") {
        let n = std::io::Read::read(&mut out, &mut buf).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    child.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(rt.fr(&["exec", "instance://web", "--", "echo", "alive"]).ok(), "alive\n");
    rt.fr(&["instance", "stop", "web"]).ok();
}

#[test]
fn an_interrupted_start_stops_the_instance_again() {
    let Some(h) = harness() else { return };
    let marker = format!("80{}", std::process::id());
    let Some(img) = web_image(h, &marker) else { return };
    let rt = Runtime::new(h);
    let mut cmd = rt.command(&["instance", "start", "-f", s(&img), "web"]);
    cmd.stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    // ^C once the start has claimed the name (fr takes it from then on).
    let lock = rt.dir.join("fr/instances/web/lock");
    while !lock.exists() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted (signal 2): instance web was stopped again"), "{stderr}");
    assert_eq!(rt.fr(&["instance", "list"]).ok(), "NAME  PID  IMAGE  PORTS\n");
    assert_eq!(running(&format!("sleep {marker}")), Vec::<String>::new());
    assert!(!rt.dir.join("fr/instances/web").exists());
    // The image is free again.
    h.fr(["exec", "-f", s(&img), "true"]).ok();
}
