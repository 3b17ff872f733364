//! The id maps of the workload's user namespace, written by fr from
//! outside it (`user_namespaces(7)`): one id each, `setgroups` denied
//! first as an unprivileged writer of `gid_map` must, or the subordinate
//! ranges through `newuidmap`/`newgidmap`. And fr's own moves into such a
//! namespace.

use std::os::fd::AsFd;

use rustix::process::{Pid, WaitOptions};

use crate::error::Error;
use crate::sys::{self, Forked};

fn write(pid: i32, file: &str, text: &str) -> Result<(), Error> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, text).map_err(|source| Error::IdMap { path, source })
}

/// Maps `inside_uid`/`inside_gid` in `pid`'s namespace to the invoking
/// user's `uid`/`gid`, one id each.
pub fn map_single(
    pid: i32,
    inside_uid: u32,
    uid: u32,
    inside_gid: u32,
    gid: u32,
) -> Result<(), Error> {
    write(pid, "setgroups", "deny")?;
    write(pid, "uid_map", &format!("{inside_uid} {uid} 1\n"))?;
    write(pid, "gid_map", &format!("{inside_gid} {gid} 1\n"))
}

/// The `newuidmap`/`newgidmap` arguments after the pid: 0 is `own`, then
/// each range in turn from 1.
fn triples(own: u32, ranges: &[fr_emulator::ids::Range]) -> Vec<String> {
    let mut args = vec!["0".to_string(), own.to_string(), "1".to_string()];
    for (first, r) in fr_emulator::ids::placed(ranges) {
        args.extend([first.to_string(), r.start.to_string(), r.count.to_string()]);
    }
    args
}

fn run_helper(program: &std::path::Path, pid: i32, args: &[String]) -> Result<(), Error> {
    let shown = program.display().to_string();
    let out = std::process::Command::new(program)
        .arg(pid.to_string())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::MapHelper { program: shown.clone(), why: e.to_string() })?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let why = if said.is_empty() { out.status.to_string() } else { said };
    Err(Error::MapHelper { program: format!("{shown} {pid} {}", args.join(" ")), why })
}

/// Maps 0 in `pid`'s namespace to the invoking user and 1.. to the
/// user's subordinate ranges, with the setuid helpers, as rootless podman
/// does. `setgroups` stays allowed: the helpers checked the ranges.
pub fn map_subordinates(
    pid: i32,
    uid: u32,
    gid: u32,
    subs: &crate::mode::Subordinates,
) -> Result<(), Error> {
    run_helper(&subs.newuidmap, pid, &triples(uid, &subs.uids))?;
    run_helper(&subs.newgidmap, pid, &triples(gid, &subs.gids))
}

/// Moves fr itself into `pid`'s user namespace, where it holds every
/// capability over the files the mapped ids own: the supervisor acts for
/// the workload on files owned by subordinate ids (looking up, creating,
/// chowning) as root in the namespace would. Only user and credentials
/// change; fr keeps its mounts and its view of the host. Must run before
/// fr starts a thread (`setns(2)` refuses a multithreaded process).
pub(crate) fn join(pid: i32) -> Result<(), Error> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/user"))
        .map_err(|e| Error::Setup(format!("opening the container's user namespace: {e}")))?;
    rustix::thread::move_into_link_name_space(
        ns.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::User),
    )
    .map_err(Error::sys("joining the container's user namespace"))
}

/// Moves fr into a new user namespace mapping the user's subordinate ids:
/// a child makes it and waits while fr writes its maps and joins it.
pub(crate) fn enter(subs: &crate::mode::Subordinates) -> Result<(), Error> {
    let (uid, gid) = (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
    let (hold_read, hold_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(Error::sys("creating a pipe"))?;
    let pid = match sys::fork_with(libc::CLONE_NEWUSER).map_err(Error::Userns)? {
        Forked::Child => {
            drop(hold_write);
            // Holds the namespace until fr has joined it (end of file).
            let _ = rustix::io::read(&hold_read, &mut [0u8; 1]);
            sys::exit_now(0)
        }
        Forked::Parent(pid) => pid,
    };
    drop(hold_read);
    let joined = map_subordinates(pid, uid, gid, subs).and_then(|()| join(pid));
    drop(hold_write);
    let _ = rustix::process::waitpid(Pid::from_raw(pid), WaitOptions::empty());
    joined
}

/// How a command that works on an image outside a session (`fr export`,
/// `fr import`, `fr fsck --repair`) sees it: with subordinate ranges, from
/// a namespace that maps them, as a subuid-mode session left it. Files
/// given to subordinate ids may be readable, and directories searchable,
/// by those ids alone: the user outside would not find the snapshot's
/// paths below them, and the store's records would be dropped. Returns
/// the ids as they then show.
pub(crate) fn enter_for_image() -> Result<fr_emulator::IdMap, Error> {
    let host = std::path::Path::new("/");
    match crate::mode::subordinates(host) {
        Ok(subs) => {
            enter(&subs)?;
            Ok(crate::mode::namespace_view(&subs))
        }
        Err(why) => {
            log::debug!("reading the image as the user alone: {why}");
            Ok(crate::mode::id_map(host))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fr_emulator::ids::Range;

    #[test]
    fn ranges_follow_root_in_order() {
        let ranges = [Range { start: 200_000, count: 65536 }, Range { start: 400_000, count: 10 }];
        assert_eq!(triples(1001, &ranges).join(" "), "0 1001 1 1 200000 65536 65537 400000 10");
    }
}
