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

/// The `newuidmap`/`newgidmap` arguments after the pid: 0 is `own`, then
/// each range in turn from 1.
fn triples(own: u32, ranges: &[fr_emulator::ids::Range]) -> Vec<String> {
    let mut args = vec!["0".to_string(), own.to_string(), "1".to_string()];
    let mut next = 1u64;
    for r in ranges {
        args.extend([next.to_string(), r.start.to_string(), r.count.to_string()]);
        next += u64::from(r.count);
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
