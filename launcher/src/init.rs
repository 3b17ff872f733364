//! The container's init: pid 1 of the new pid namespace. It waits for fr
//! to write its id maps, sets up the mounts, forks the workload, forwards
//! the signals fr sends it, reaps every orphan, and exits with the
//! workload's status (`128 + signal` when a signal killed it).
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
    /// fr's descriptors the container must not keep open: the image
    /// store's lock, which would otherwise outlive a killed fr for as long
    /// as the container takes to die, and refuse the next session.
    pub close: Vec<std::os::fd::RawFd>,
}

/// The shell's convention for an exit status.
pub fn exit_code(status: WaitStatus) -> i32 {
    match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 125,
    }
}

/// Runs as the container's init; never returns.
pub fn run(plan: &Plan, chan: OwnedFd, go: OwnedFd, program: Option<&[SockFilter]>) -> ! {
    // Without fr the supervisor is gone: the container must not go on.
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    for fd in &plan.close {
        sys::close_inherited(*fd);
    }
    let mut byte = [0u8];
    if !matches!(rustix::io::read(&go, &mut byte), Ok(1)) {
        // fr died before writing the id maps.
        sys::exit_now(125);
    }
    drop(go);
    let setup = match &plan.image {
        Some(image) => mounts::enter_image(image, &plan.binds),
        None => mounts::host_tree(&plan.binds),
    };
    if let Err(why) = setup {
        channel::send_failure(chan.as_fd(), &why);
        sys::exit_now(125);
    }
    let workload = match sys::fork_with(0) {
        Ok(Forked::Child) => workload::run(&plan.command, chan, program, false),
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => {
            channel::send_failure(chan.as_fd(), &format!("forking the command: {e}"));
            sys::exit_now(125);
        }
    };
    drop(chan);
    sys::exit_now(supervise(workload))
}

/// Forwards signals sent by processes (fr, or `kill 1` inside) to the
/// workload and reaps children until the workload has ended. Signals the
/// kernel sent (a tty's ^C) reached the workload's process group already.
fn supervise(workload: i32) -> i32 {
    loop {
        match sys::wait_signal() {
            Ok(c) if c.signal == libc::SIGCHLD => {
                while let Ok(Some((pid, status))) =
                    rustix::process::waitpid(None, WaitOptions::NOHANG)
                {
                    if pid.as_raw_nonzero().get() == workload {
                        return exit_code(status);
                    }
                }
            }
            Ok(c) if c.sent_by_process => forward(workload, c.signal),
            Ok(_) => {}
            Err(_) => return 125,
        }
    }
}

/// Sends `signal` to `pid`, if both are valid.
pub fn forward(pid: i32, signal: i32) {
    if let (Some(pid), Some(signal)) = (Pid::from_raw(pid), Signal::from_named_raw(signal)) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}
