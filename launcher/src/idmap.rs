//! The id maps of the workload's user namespace, written by fr from
//! outside it (`user_namespaces(7)`): `setgroups` is denied first, as an
//! unprivileged writer of `gid_map` must.

use crate::error::Error;

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
