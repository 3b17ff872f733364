//! `mount(2)` of a `devpts`: the one mount fake root commonly makes that
//! names ids (`mount -t devpts -o uid=5,gid=5,mode=620 none /dev/pts`, as
//! `mmdebstrap --mode=root`, `schroot` and `debootstrap`'s helpers do).
//!
//! A devpts of its own is mountable in a user namespace (each mount is a
//! new instance since Linux 4.7), but its `uid=` and `gid=` options must
//! name ids the caller's namespace maps (`fs/devpts/inode.c:
//! devpts_parse_param()`: `make_kuid(current_user_ns(), ...)`, else
//! `EINVAL`, "Invalid uid"). A root-mapped namespace maps 0 alone, so the
//! mount real root makes fails there. fr takes those options out of the
//! caller's option string (in its memory, which the kernel then reads)
//! and lets the kernel mount the rest: the mount works, and its
//! pseudo-terminals belong to the creating process's owner (fake root)
//! instead of the id named. Everything else, and every other file
//! system, is the kernel's as it is.

use std::sync::atomic::{AtomicBool, Ordering};

use super::{Context, Outcome, Reply};
use crate::request::Request;
use crate::Namespace;

/// The kernel copies a mount's type name and option data from at most
/// one page (`fs/namespace.c: copy_mount_string()`, `copy_mount_options()`).
const PAGE: usize = 4096;

/// `mount(source, target, fstype, flags, data)`.
pub fn mount(ctx: &Context, req: &Request<'_>) -> Outcome {
    let (fstype, data) = (req.ptr(2), req.ptr(4));
    let mapped = |id: u32| match ctx.namespace {
        Namespace::RootMapped => id == 0,
        Namespace::Subuid => ctx.inodes.ids().uid_outside(id).is_some(),
        Namespace::None => true,
    };
    if ctx.namespace == Namespace::None {
        static SAID: AtomicBool = AtomicBool::new(false);
        if !SAID.swap(true, Ordering::Relaxed) {
            log::warn!(
                "process {} mounts a file system, which needs a user namespace: without one \
                 (--userns=none) the kernel refuses it (EPERM); run without --userns=none",
                req.tid
            );
        }
        return Ok(Reply::Continue("no user namespace: the kernel refuses it"));
    }
    if fstype == 0 || data == 0 {
        return Ok(Reply::Continue("not a devpts with options"));
    }
    // Unreadable or odd arguments are the kernel's to refuse.
    match req.read_string(fstype, PAGE) {
        Ok(name) if name == b"devpts" => {}
        _ => return Ok(Reply::Continue("not a devpts")),
    }
    let Ok(bytes) = req.read_prefix(data, PAGE) else {
        return Ok(Reply::Continue("the options cannot be read"));
    };
    let Some(nul) = bytes.iter().position(|&b| b == 0) else {
        return Ok(Reply::Continue("the options are not a string"));
    };
    let Some(kept) = without_unmapped_ids(&bytes[..nul], mapped) else {
        return Ok(Reply::Continue("a devpts whose ids the namespace maps"));
    };
    req.check_valid()?;
    let mut new = kept.clone();
    new.push(0);
    // Shorter than the old string: it fits where that was.
    if let Err(e) = req.write(data, &new) {
        log::debug!("mount -t devpts: the options cannot be rewritten ({e}); the kernel decides");
        return Ok(Reply::Continue("the options cannot be rewritten"));
    }
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        log::info!(
            "mount -t devpts -o {}: the user namespace maps no such id, so fr mounts it with -o {} \
             (its pseudo-terminals belong to root); --userns=subuid maps them",
            String::from_utf8_lossy(&bytes[..nul]),
            String::from_utf8_lossy(&kept)
        );
    }
    Ok(Reply::Continue("a devpts with the ids the namespace cannot map taken out"))
}

/// The option string `opts` without its `uid=N` and `gid=N` options whose
/// id `mapped` says the namespace does not map; `None` when nothing goes.
/// Options are split as `vfs_parse_monolithic_sep()` splits them (at each
/// comma, key and value at the first `=`); an id is read as `kstrtouint(s,
/// 0)` reads it, and one it would refuse is left for the kernel to refuse.
pub fn without_unmapped_ids(opts: &[u8], mapped: impl Fn(u32) -> bool) -> Option<Vec<u8>> {
    let mut dropped = false;
    let kept: Vec<&[u8]> = opts
        .split(|&b| b == b',')
        .filter(|opt| {
            let unmapped = match opt.iter().position(|&b| b == b'=') {
                Some(eq) if matches!(&opt[..eq], b"uid" | b"gid") => {
                    kstrtouint(&opt[eq + 1..]).is_some_and(|id| !mapped(id))
                }
                _ => false,
            };
            dropped |= unmapped;
            !unmapped
        })
        .collect();
    dropped.then(|| kept.join(&b","[..]))
}

/// `lib/kstrtox.c: kstrtouint(s, 0)`: an optional `+`, then `0x` for hex,
/// `0` for octal or decimal digits, and an optional trailing newline.
fn kstrtouint(s: &[u8]) -> Option<u32> {
    let s = s.strip_prefix(b"+").unwrap_or(s);
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    let (digits, radix) = match s {
        [b'0', b'x' | b'X', rest @ ..] => (rest, 16),
        [b'0', rest @ ..] if !rest.is_empty() => (rest, 8),
        _ => (s, 10),
    };
    if digits.is_empty() || digits.iter().any(|b| !(*b as char).is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(digits).ok()?, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_only(id: u32) -> bool {
        id == 0
    }

    #[test]
    fn unmapped_ids_are_taken_out_and_the_rest_kept_in_order() {
        let mmdebstrap = b"noexec,nosuid,uid=5,mode=620,ptmxmode=666";
        assert_eq!(
            without_unmapped_ids(mmdebstrap, root_only).as_deref(),
            Some(&b"noexec,nosuid,mode=620,ptmxmode=666"[..])
        );
        assert_eq!(
            without_unmapped_ids(b"gid=5,mode=620,uid=0x5", root_only).as_deref(),
            Some(&b"mode=620"[..])
        );
        // Mapped ids, no ids, ids the kernel would refuse anyway: unchanged.
        assert_eq!(without_unmapped_ids(b"uid=0,gid=00", root_only), None);
        assert_eq!(without_unmapped_ids(b"newinstance,ptmxmode=666", root_only), None);
        assert_eq!(without_unmapped_ids(b"uid=five,gid=-1,uid=", root_only), None);
        assert_eq!(without_unmapped_ids(b"", root_only), None);
        // Another option that merely contains the name.
        assert_eq!(without_unmapped_ids(b"xuid=5,uidx=5", root_only), None);
        // In subuid mode, 5 is mapped and 70000 beyond the ranges is not.
        let subuid = |id: u32| id <= 65536;
        assert_eq!(
            without_unmapped_ids(b"uid=5,gid=70000", subuid).as_deref(),
            Some(&b"uid=5"[..])
        );
    }

    #[test]
    fn ids_are_read_as_kstrtouint_reads_them() {
        assert_eq!(kstrtouint(b"5"), Some(5));
        assert_eq!(kstrtouint(b"+5\n"), Some(5));
        assert_eq!(kstrtouint(b"010"), Some(8));
        assert_eq!(kstrtouint(b"0x1F"), Some(31));
        assert_eq!(kstrtouint(b"0"), Some(0));
        assert_eq!(kstrtouint(b"08"), None);
        assert_eq!(kstrtouint(b"4294967296"), None);
        assert_eq!(kstrtouint(b"-1"), None);
        assert_eq!(kstrtouint(b"0x"), None);
    }
}
