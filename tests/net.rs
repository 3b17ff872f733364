//! `--net`: the container's own network namespace, its helpers (pasta,
//! slirp4netns, none), the checks of port maps, and apt-get through the
//! network. Traffic stays on loopback and in the namespaces the tests
//! make, but for apt-get's, which reaches the Debian mirror.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{cannot_run, harness, is_root, run, Harness};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The interfaces `/proc/net/dev` shows.
fn interfaces(dev: &str) -> Vec<String> {
    dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(|i| i.trim().to_string()).collect()
}

/// The test user's processes whose command line contains `needle`.
fn helpers(h: &Harness, needle: &str) -> Vec<String> {
    let out =
        Command::new("ps").args(["-u", &h.uid.to_string(), "-o", "pid=,args="]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(needle) && l.contains("/proc/self/fd/"))
        .map(String::from)
        .collect()
}

fn installed(helper: &str, package: &str) -> bool {
    if Path::new("/usr/bin").join(helper).exists() {
        return true;
    }
    cannot_run::<()>(format!(
        "{helper} is not installed (apt-get install {package}; .ci/run does)"
    ));
    false
}

/// Listens on `port` with busybox nc in the background and prints how many
/// listeners `netstat` shows on it once there is one (0 if nc could not
/// bind it: it ends, and the wait gives up).
fn listen(port: u16) -> String {
    format!(
        "nc -l -p {port} -w 2 </dev/null & i=0; \
         until netstat -ltn | grep -q ':{port} '; do i=$((i+1)); [ $i -gt 100 ] && break; sleep 0.05; done; \
         netstat -ltn | grep -c ':{port} '"
    )
}

#[test]
fn network_none_has_loopback_only_and_opens_low_ports_and_ping_inside() {
    let Some(h) = harness() else { return };
    let Some(img) = h.rootfs() else { return };
    let script = "cat /proc/net/dev; echo; cat /proc/sys/net/ipv4/ip_unprivileged_port_start \
                  /proc/sys/net/ipv4/ping_group_range";
    let mut modes = vec![("--userns=root-mapped", 0)];
    match common::subid_range(h, "/etc/subgid") {
        Some((_, count)) if common::subuid_ready(h) => modes.push(("--userns=subuid", count)),
        _ => {
            cannot_run::<()>("subuid mode needs the test user's ranges and setuid newuidmap");
        }
    }
    for (mode, groups) in modes {
        let out = h
            .fr(["exec", "-f", mode, "--net", "--network", "none", s(&img), "sh", "-c", script])
            .ok();
        let (dev, sysctls) = out.split_once("\n\n").unwrap();
        assert_eq!(interfaces(dev), vec!["lo"], "{mode}: {out}");
        assert_eq!(sysctls, format!("0\n0\t{groups}\n"), "{mode}: {out}");
        // Fake root binds port 80, and so does a process that dropped
        // root (the sysctl), here nobody.
        let bind = format!("{}; su -s /bin/sh nobody -c \"{}\"", listen(80), listen(81));
        let out = h
            .fr(["exec", "-f", mode, "--net", "--network", "none", s(&img), "sh", "-c", &bind])
            .ok();
        assert_eq!(out, "1\n1\n", "{mode}");
    }
    // Without --net the host's interfaces show.
    let out = h.fr(["exec", s(&img), "cat", "/proc/net/dev"]).ok();
    assert!(interfaces(&out).len() > 1, "{out}");
}

fn an_interface_besides_lo(helper: &str, package: &str, tap: &str) {
    let Some(h) = harness() else { return };
    if !installed(helper, package) {
        return;
    }
    let Some(img) = h.rootfs() else { return };
    let out = h
        .fr([
            "exec",
            "-f",
            "--network",
            helper,
            s(&img),
            "cat",
            "/proc/net/dev",
            "/etc/resolv.conf",
        ])
        .ok();
    let ifaces =
        interfaces(&out.lines().take_while(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n"));
    assert!(
        ifaces.contains(&"lo".to_string()) && ifaces.iter().any(|i| i.starts_with(tap)),
        "{helper}: {out}"
    );
    // Its DNS forwarder is the container's name server.
    let server = if helper == "pasta" { "169.254.1.1" } else { "10.0.2.3" };
    assert!(out.contains(&format!("nameserver {server}\n")), "{helper}: {out}");
    // The helper ended with the session.
    assert_eq!(helpers(h, helper), Vec::<String>::new(), "{helper}");
}

#[test]
fn pasta_gives_an_interface_besides_lo_and_ends_with_the_session() {
    an_interface_besides_lo("pasta", "passt", "eth");
}

#[test]
fn slirp4netns_gives_an_interface_besides_lo_and_ends_with_the_session() {
    an_interface_besides_lo("slirp4netns", "slirp4netns", "tap0");
}

#[test]
fn a_host_port_in_use_is_refused_by_name_and_nothing_is_left() {
    let Some(h) = harness() else { return };
    let Some(img) = h.rootfs() else { return };
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    for helper in ["pasta", "slirp4netns"] {
        let map = format!("{port}:80");
        let out = h.fr(["exec", "-f", "--network", helper, "-p", &map, s(&img), "true"]);
        assert_eq!(out.code, Some(125), "{helper}: {out:?}");
        assert!(
            out.stderr.contains(&format!("host port {port}/tcp is in use")),
            "{helper}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("fr: hint:"), "{helper}: {}", out.stderr);
        assert_eq!(helpers(h, helper), Vec::<String>::new(), "{helper}");
    }
    drop(taken);
}

#[test]
fn a_host_port_below_the_unprivileged_start_is_refused_with_the_sysctl() {
    let Some(h) = harness() else { return };
    let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if start <= 80 {
        cannot_run::<()>(format!(
            "net.ipv4.ip_unprivileged_port_start is {start}: port 80 is every user's here"
        ));
        return;
    }
    let Some(img) = h.rootfs() else { return };
    let out = h.fr(["exec", "-f", "--net", "-p", "80:80", s(&img), "true"]);
    assert_eq!(out.code, Some(125), "{out:?}");
    assert!(out.stderr.contains("host port 80 (80:80/tcp) is below"), "{}", out.stderr);
    assert!(out.stderr.contains("sysctl net.ipv4.ip_unprivileged_port_start=80"), "{}", out.stderr);
    // A bad map is a usage error that names it.
    let out = h.fr(["exec", "-f", "--network-args", "portmap=x:80", s(&img), "true"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("port map \"x:80\""), "{}", out.stderr);
}

#[test]
fn without_pasta_slirp4netns_connects_and_without_either_the_package_is_named() {
    let Some(h) = harness() else { return };
    if !installed("slirp4netns", "slirp4netns") {
        return;
    }
    let Some(img) = h.rootfs() else { return };
    let only_slirp = h.scratch("helpers");
    std::os::unix::fs::symlink("/usr/bin/slirp4netns", only_slirp.join("slirp4netns")).unwrap();
    let mut cmd = h.fr_command(["exec", "-f", "--net", s(&img), "cat", "/proc/net/dev"]);
    let out = run(cmd.env("FR_NET_HELPER_DIRS", &only_slirp)).ok();
    assert!(interfaces(&out).contains(&"tap0".to_string()), "{out}");
    let none = h.scratch("nohelpers");
    let mut cmd = h.fr_command(["exec", "-f", "--net", s(&img), "true"]);
    let out = run(cmd.env("FR_NET_HELPER_DIRS", &none));
    assert_eq!(out.code, Some(125), "{out:?}");
    assert!(out.stderr.contains("neither is installed"), "{}", out.stderr);
    assert!(out.stderr.contains("apt-get install passt"), "{}", out.stderr);
    let mut cmd = h.fr_command(["exec", "-f", "--network", "pasta", s(&img), "true"]);
    let out = run(cmd.env("FR_NET_HELPER_DIRS", &none));
    assert!(
        out.stderr.contains("pasta is not installed") && out.stderr.contains("passt"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_killed_session_takes_its_network_helper_along() {
    let Some(h) = harness() else { return };
    let Some(img) = h.rootfs() else { return };
    for helper in ["pasta", "slirp4netns"] {
        if !installed(helper, if helper == "pasta" { "passt" } else { helper }) {
            return;
        }
        let mut cmd = h.fr_command([
            "exec",
            "-f",
            "--network",
            helper,
            s(&img),
            "sh",
            "-c",
            "echo up; exec sleep 600",
        ]);
        cmd.stdout(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line, "up\n");
        assert_eq!(helpers(h, helper).len(), 1, "{helper}");
        child.kill().unwrap();
        child.wait().unwrap();
        // The kernel ends the helper (its parent-death signal): wait for
        // the end of each one that was there.
        for _ in 0..200 {
            if helpers(h, helper).is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(helpers(h, helper), Vec::<String>::new(), "{helper}");
    }
}

/// A Debian image made from the fixture's rootfs by `fr import`.
fn debian_image(h: &Harness) -> Option<PathBuf> {
    let fixture = common::debian(h)?;
    let img = h.scratch("debian").join("img");
    h.fr(["import", s(&fixture.join("base.tar")), s(&img)]).ok();
    Some(img)
}

#[test]
fn apt_get_update_reaches_the_debian_mirror_under_net() {
    let Some(h) = harness() else { return };
    if !is_root() {
        cannot_run::<()>("the Debian fixture is built by root (mmdebstrap)");
        return;
    }
    if !installed("pasta", "passt") {
        return;
    }
    let Some(img) = debian_image(h) else { return };
    let script =
        "echo 'deb http://deb.debian.org/debian bookworm main' > /etc/apt/sources.list && \
                  apt-get -q update && ls /var/lib/apt/lists | grep -c _Packages";
    let out = h.fr(["exec", "-f", "--net", s(&img), "sh", "-c", script]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.trim_end().ends_with('1') || out.stdout.trim_end().ends_with('2'),
        "{}",
        out.stdout
    );
}
