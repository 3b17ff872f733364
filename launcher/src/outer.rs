//! The container's outer process: fr's child in the outer user and mount
//! namespaces (the ones fr maps, and joins in subuid mode). It makes the
//! mounts that must hold against the workload ([`mounts::outer_image`]),
//! then starts the container's init in new user, mount, pid, ipc and uts
//! namespaces nested in its own, writes the init's id maps (the same ids,
//! one to one), relays fr's signals to it and exits with its status.
//!
//! Why two levels: the workload is root of the inner user namespace only,
//! which owns none of the mounts made here, so the kernel keeps them as
//! they are (see [`crate::mounts`]); it can still mount `proc` and make
//! its own namespaces, as real root can, because its pid namespace is the
//! inner one. Neither this process nor the init ever runs `execve`, so
//! they stay non-dumpable with the initial namespace as the owner of
//! their memory: the workload can neither see this process (another pid
//! namespace) nor trace, signal or read the init (see [`sys::make_undumpable`]).
//!
//! Hazard: the id map files of a process are writable only while it is
//! dumpable; each process gives that up once its maps are written.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use fr_supervisor::SockFilter;
use rustix::process::{Pid, Signal, WaitOptions};

use crate::error::Error;
use crate::init::{self, Plan};
use crate::sys::{self, Forked};
use crate::{channel, mounts};

/// Runs as the outer process; never returns. `go` ends (a byte, or end
/// of file if fr died) when fr has written this process's id maps.
pub fn run(plan: &Plan, chan: OwnedFd, go: OwnedFd, program: Option<&[SockFilter]>) -> ! {
    // Without fr the supervisor is gone: the container must not go on.
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    sys::close_own_except(&[chan.as_raw_fd(), go.as_raw_fd()]);
    if !matches!(rustix::io::read(&go, &mut [0u8]), Ok(1)) {
        // fr died before writing the id maps.
        sys::exit_now(125);
    }
    drop(go);
    let mut made = mounts::Made::default();
    let setup = match &plan.image {
        Some(image) => mounts::outer_image(image, plan, &mut made),
        None => mounts::outer_host(plan, &mut made),
    };
    if let Err(why) = setup {
        fail(chan.as_fd(), &why.to_string());
    }
    made.close_list();
    let (go_read, go_write) = match rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
        Ok(pair) => pair,
        Err(e) => fail(chan.as_fd(), &format!("creating a pipe: {e}")),
    };
    // The network namespace, when the container has one, belongs to the
    // init's user namespace, made in the same clone.
    let net = if plan.net { libc::CLONE_NEWNET } else { 0 };
    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | net;
    let pid = match sys::fork_with(flags) {
        Ok(Forked::Child) => {
            drop(go_write);
            init::run(plan, chan, go_read, program)
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => fail(chan.as_fd(), &format!("creating the container's namespaces: {e}")),
    };
    drop(go_read);
    if let Err(why) = map_inner(pid) {
        init::forward(pid, libc::SIGKILL);
        let _ = rustix::process::waitpid(Pid::from_raw(pid), WaitOptions::empty());
        fail(chan.as_fd(), &why.to_string());
    }
    // Only now: the init, forked while this process was dumpable, is too,
    // and its map files were writable.
    if let Err(e) = sys::make_undumpable() {
        init::forward(pid, libc::SIGKILL);
        fail(chan.as_fd(), &format!("making the container's outer process undumpable: {e}"));
    }
    if rustix::io::write(&go_write, b"g").is_err() {
        sys::exit_now(125);
    }
    drop((chan, go_write));
    // Nothing of fr's is needed any more; the caller's descriptors are the
    // init's and the command's to keep.
    sys::close_from(3);
    // Only fr's signals are relayed: one a process of the container sent to
    // its whole process group (this one's too) has reached it already.
    let fr = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
    let code = init::relay(pid, |c| c.sender == fr);
    let root = plan.image.as_deref().unwrap_or(std::path::Path::new("/"));
    mounts::remove_made(root, plan, &made);
    sys::exit_now(code)
}

fn fail(chan: BorrowedFd<'_>, why: &str) -> ! {
    channel::send_failure(chan, why);
    sys::exit_now(125)
}

/// Maps the init's user namespace one to one onto this one: every id this
/// namespace has, the same id inside. Written from here, the parent
/// namespace, with `CAP_SETUID` and `CAP_SETGID` in it
/// (`kernel/user_namespace.c: new_idmap_permitted()`); `setgroups` is
/// inherited from this namespace.
fn map_inner(pid: i32) -> Result<(), Error> {
    for file in ["uid_map", "gid_map"] {
        let own_path = format!("/proc/self/{file}");
        let own = std::fs::read_to_string(&own_path)
            .map_err(|e| Error::Setup(format!("reading {own_path}: {e}")))?;
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, identity(&own)).map_err(|source| Error::IdMap { path, source })?;
    }
    Ok(())
}

/// The lines of an identity map over the ids a map (as `/proc/PID/uid_map`
/// shows it: inside, outside, count) gives its namespace.
fn identity(map: &str) -> String {
    map.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let inside = fields.next()?;
            let count = fields.nth(1)?;
            Some(format!("{inside} {inside} {count}\n"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inner_map_is_the_identity_over_the_outer_ids() {
        assert_eq!(identity("         0       1001          1\n"), "0 0 1\n");
        assert_eq!(
            identity("         0       1001          1\n         1     200000      65536\n"),
            "0 0 1\n1 1 65536\n"
        );
        assert_eq!(identity(""), "");
    }
}
