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

use crate::options::Bind;
use crate::sys::{self, Forked};
use crate::workload::{self, Command};
use crate::{channel, mounts};

/// What the container is made of.
#[derive(Debug, Clone)]
pub struct Plan {
    pub image: Option<PathBuf>,
    pub binds: Vec<Bind>,
    pub command: Command,
    /// The image is mounted read-only (a cached OCI image, which other
    /// images share files with).
    pub read_only: bool,
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
    sys::exit_now(supervise(workload))
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
/// the outer process to the init.
pub(crate) fn relay(pid: i32, from_outside: impl Fn(&sys::Caught) -> bool) -> i32 {
    let child = Pid::from_raw(pid);
    loop {
        match sys::wait_signal() {
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
