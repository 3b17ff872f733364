//! The container's init: pid 1 of the container's pid namespace, in the
//! inner user and mount namespaces (see [`crate::outer`]). It waits for its
//! id maps, mounts `/proc` and makes the image its root, forks the
//! workload, forwards the signals it is sent, reaps every process that
//! ends in the container, and exits with the workload's status
//! (`128 + signal` when a signal killed it).
//!
//! Hazard (`pid_namespaces(7)`): init only receives the signals it has a
//! handler for, even from fr; blocking them and taking them with
//! `sigwaitinfo` counts, because blocked signals are never discarded.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use fr_supervisor::SockFilter;
use rustix::process::{Pid, Signal, WaitOptions, WaitStatus};

use crate::options::{Bind, Root};
use crate::sys::{self, Forked};
use crate::workload::{self, Command};
use crate::{channel, mounts};

/// What the container is made of.
#[derive(Debug, Clone)]
pub struct Plan {
    pub image: Option<PathBuf>,
    pub binds: Vec<Bind>,
    pub command: Command,
    /// How the image is mounted as the root.
    pub root: Root,
    /// Empty directories of the container's own (tmpfs).
    pub tmpfs: Vec<PathBuf>,
    /// Host directories never to be seen through a bind (the image's
    /// store, the instances' state), canonical.
    pub hide: Vec<PathBuf>,
    pub hostname: Option<String>,
    /// A network namespace of the container's own.
    pub net: bool,
    /// The `/etc/resolv.conf` the network gives the container.
    pub resolv: Option<String>,
    /// The init hands fr its namespaces and root and waits for fr's word
    /// before the workload starts (a network helper, an instance).
    pub share: bool,
    /// The container stays up when its command ends, until it is
    /// signalled (an instance); with no command at all it only waits.
    pub idle: bool,
}

impl Plan {
    /// A plan with nothing but the image, binds and command.
    pub fn new(image: Option<PathBuf>, binds: Vec<Bind>, command: Command) -> Plan {
        Plan {
            image,
            binds,
            command,
            root: Root::Writable,
            tmpfs: Vec::new(),
            hide: Vec::new(),
            hostname: None,
            net: false,
            resolv: None,
            share: false,
            idle: false,
        }
    }
}

/// The shell's convention for an exit status.
pub fn exit_code(status: WaitStatus) -> i32 {
    match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 125,
    }
}

/// Runs as the container's init; never returns. `go` ends when the outer
/// process has written the init's id maps.
pub fn run(plan: &Plan, chan: OwnedFd, go: OwnedFd, program: Option<&[SockFilter]>) -> ! {
    // Without the outer process fr is gone too: stop.
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    if !matches!(rustix::io::read(&go, &mut [0u8]), Ok(1)) {
        sys::exit_now(125);
    }
    drop(go);
    if let Err(e) = sys::make_undumpable() {
        channel::send_failure(
            chan.as_fd(),
            &format!("making the container's init undumpable: {e}"),
        );
        sys::exit_now(125);
    }
    let setup = match &plan.image {
        Some(image) => mounts::inner_image(image),
        None => mounts::inner_host(),
    };
    if let Err(why) = setup {
        channel::send_failure(chan.as_fd(), &why.to_string());
        sys::exit_now(125);
    }
    if let Err(why) = namespaces(plan) {
        channel::send_failure(chan.as_fd(), &why);
        sys::exit_now(125);
    }
    if plan.share {
        // fr sets up what needs the namespaces (the network helper, an
        // instance's monitor), then says go; end of file means stop.
        if let Err(e) = share(chan.as_fd()) {
            channel::send_failure(chan.as_fd(), &format!("handing the namespaces to fr: {e}"));
            sys::exit_now(125);
        }
        match channel::wait_go(chan.as_fd()) {
            Ok(true) => {}
            _ => sys::exit_now(125),
        }
    }
    if plan.idle && plan.command.argv.is_empty() {
        // An instance without a start script: nothing to run.
        let _ = channel::send_ready(chan.as_fd());
        drop(chan);
        sys::close_from(3);
        sys::exit_now(idle(None));
    }
    let workload = match sys::fork_with(0) {
        Ok(Forked::Child) => {
            if program.is_some() {
                workload::join_root_group();
            }
            workload::run(&plan.command, chan, program, false)
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => {
            channel::send_failure(chan.as_fd(), &format!("forking the command: {e}"));
            sys::exit_now(125);
        }
    };
    drop(chan);
    // The workload has what it needs; the init keeps only its stdio.
    sys::close_from(3);
    if plan.idle {
        sys::exit_now(idle(Some(workload)))
    }
    sys::exit_now(supervise(workload))
}

/// The host name and the network namespace's own settings: loopback up,
/// ports below 1024 open to every id and `ping` to every group the
/// namespace maps (`ip_unprivileged_port_start`, `ping_group_range`, both
/// per network namespace and writable by its owner's root).
fn namespaces(plan: &Plan) -> Result<(), String> {
    if let Some(name) = &plan.hostname {
        rustix::system::sethostname(name.as_bytes())
            .map_err(|e| format!("setting the host name {name:?}: {e}"))?;
    }
    if !plan.net {
        return Ok(());
    }
    sys::loopback_up().map_err(|e| format!("bringing up the loopback interface: {e}"))?;
    let groups = std::fs::read_to_string("/proc/self/gid_map")
        .ok()
        .and_then(|map| {
            map.lines()
                .filter_map(|l| {
                    let f: Vec<u64> = l.split_whitespace().filter_map(|n| n.parse().ok()).collect();
                    (f.len() == 3).then(|| f[0] + f[2] - 1)
                })
                .max()
        })
        .unwrap_or(0)
        .min(i32::MAX as u64);
    for (file, value) in [
        ("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0".to_string()),
        ("/proc/sys/net/ipv4/ping_group_range", format!("0 {groups}")),
    ] {
        std::fs::write(file, &value).map_err(|e| format!("writing {value:?} to {file}: {e}"))?;
    }
    Ok(())
}

/// Sends fr the descriptors of the container's namespaces and root (see
/// [`channel::Shared`]).
fn share(chan: std::os::fd::BorrowedFd<'_>) -> Result<(), rustix::io::Errno> {
    use rustix::fs::{Mode, OFlags, CWD};
    let open =
        |path: &str, flags: OFlags| rustix::fs::open(path, flags | OFlags::CLOEXEC, Mode::empty());
    let mut fds = Vec::new();
    for ns in channel::NAMESPACES {
        fds.push(open(&format!("/proc/self/ns/{ns}"), OFlags::RDONLY)?);
    }
    fds.push(rustix::fs::openat(
        CWD,
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?);
    channel::send_shared(chan, &fds)
}

/// An instance's init: reaps every process of the container for as long
/// as it lives, the command (`workload`, its start script) included,
/// whose end it notes in the instance's log. A signal from outside (the
/// monitor's stop) goes to every process of the pid namespace (`kill(-1)`
/// from its init reaches all but the init); the init ends once none is
/// left after one, or at once on `SIGKILL`.
fn idle(workload: Option<i32>) -> i32 {
    let mut stopping = false;
    loop {
        match sys::wait_signal() {
            Ok(c) if c.signal == libc::SIGCHLD => loop {
                match rustix::process::wait(WaitOptions::NOHANG) {
                    Ok(Some((pid, status))) => {
                        if Some(pid.as_raw_nonzero().get()) == workload {
                            log::info!("the instance's start script ended ({})", describe(status));
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {
                        // No child left.
                        if stopping {
                            return 0;
                        }
                        break;
                    }
                }
            },
            Ok(c) if c.sent_by_process && c.sender == 0 => {
                stopping = true;
                sys::kill_all(c.signal);
                if rustix::process::wait(WaitOptions::NOHANG).is_err() {
                    return 0;
                }
            }
            Ok(_) => {}
            Err(_) => return 125,
        }
    }
}

fn describe(status: WaitStatus) -> String {
    match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "ended".into(),
    }
}

/// Forwards the signals the outer process sends to the workload and reaps
/// every child, the workload's orphans included, until the workload has
/// ended. Signals the kernel sent (a tty's ^C) reached the workload's
/// process group already, and so did one a process inside sent to its
/// whole process group (`kill(0)`), which reaches the init too: neither is
/// forwarded. A signal from outside this pid namespace shows its sender
/// as pid 0 (`kernel/signal.c: send_signal_locked()`).
fn supervise(workload: i32) -> i32 {
    loop {
        match sys::wait_signal() {
            Ok(c) if c.signal == libc::SIGCHLD => {
                // Any child: waitpid(0) would wait for this process group
                // only, and a child in a session of its own (setsid) would
                // stay a zombie.
                while let Ok(Some((pid, status))) = rustix::process::wait(WaitOptions::NOHANG) {
                    if pid.as_raw_nonzero().get() == workload {
                        return exit_code(status);
                    }
                }
            }
            Ok(c) if c.sent_by_process && c.sender == 0 => forward(workload, c.signal),
            Ok(_) => {}
            Err(_) => return 125,
        }
    }
}

/// Forwards the signals processes send this one, those `from_outside`
/// accepts, to its child `pid` until that ends, and returns its status:
/// the outer process to the init. [`sys::kill_child_signal`] from outside
/// kills the child, and the wait goes on until the kernel has ended its
/// pid namespace.
pub(crate) fn relay(pid: i32, from_outside: impl Fn(&sys::Caught) -> bool) -> i32 {
    let child = Pid::from_raw(pid);
    let mut signals = sys::FORWARDED.to_vec();
    signals.push(sys::kill_child_signal());
    loop {
        match sys::wait_signal_of(&signals) {
            Ok(c) if c.signal == sys::kill_child_signal() => {
                if c.sent_by_process && from_outside(&c) {
                    forward(pid, libc::SIGKILL);
                }
            }
            Ok(c) if c.signal == libc::SIGCHLD => {
                if let Ok(Some((_, status))) = rustix::process::waitpid(child, WaitOptions::NOHANG)
                {
                    return exit_code(status);
                }
            }
            Ok(c) if c.sent_by_process && from_outside(&c) => forward(pid, c.signal),
            Ok(_) => {}
            Err(_) => {
                return rustix::process::waitpid(child, WaitOptions::empty())
                    .ok()
                    .flatten()
                    .map_or(125, |(_, status)| exit_code(status));
            }
        }
    }
}

/// Sends `signal` to `pid`, if both are valid.
pub fn forward(pid: i32, signal: i32) {
    if let (Some(pid), Some(signal)) = (Pid::from_raw(pid), Signal::from_named_raw(signal)) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}
