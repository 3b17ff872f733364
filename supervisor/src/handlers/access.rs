//! Permission checks the kernel makes by the real credentials, made by the
//! fake ones for a thread that is no longer root: `access`, `faccessat`,
//! `faccessat2`, and the opens of existing files that reach fr
//! (`O_CREAT` on a name that exists, `O_NOATIME`, and, where the kernel
//! cannot enforce dropped ids itself, write access).
//!
//! In subuid mode the kernel holds a thread's dropped ids itself
//! ([`super::ident`] has it make the same change) and enforces them; in
//! root-mapped mode and without a namespace the kernel still sees the user
//! (root in the namespace), so fr checks what it is notified of. An open
//! for reading without `O_CREAT` or `O_NOATIME` never leaves the kernel:
//! there a thread that dropped root still reads what the user may
//! (README, the mode table).

use std::os::fd::AsFd;

use fr_emulator::rules::{self, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER};
use fr_emulator::Creds;
use rustix::fs::{AtFlags, StatVfsMountFlags, StatxFlags};
use rustix::io::Errno;

use super::{read_name, read_plain_path, real_stat, Context, Outcome, Reply};
use crate::linux::{
    AT_EACCESS, AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, O_NOATIME, O_NOFOLLOW, O_TRUNC,
};
use crate::request::Request;
use crate::resolve::LookupFlags;

/// `access(path, mode)`.
pub fn access(ctx: &Context, req: &Request<'_>) -> Outcome {
    check_access(ctx, req, AT_FDCWD, req.ptr(0), req.int(1), None)
}

/// `faccessat(dirfd, path, mode)`: no flags argument.
pub fn faccessat(ctx: &Context, req: &Request<'_>) -> Outcome {
    check_access(ctx, req, req.int(0), req.ptr(1), req.int(2), None)
}

/// `faccessat2(dirfd, path, mode, flags)` (5.8).
pub fn faccessat2(ctx: &Context, req: &Request<'_>) -> Outcome {
    check_access(ctx, req, req.int(0), req.ptr(1), req.int(2), Some(req.int(3)))
}

/// An access call's mode and flags, checked as `fs/open.c:
/// do_faccessat()` checks them before the name: a mode beyond `rwx`, then
/// a flag other than `AT_EACCESS`, `AT_SYMLINK_NOFOLLOW` and
/// `AT_EMPTY_PATH` (`faccessat2` alone takes flags), are `EINVAL`.
pub fn access_flags(mode: i32, flags: Option<i32>) -> Result<(u32, i32), Errno> {
    let flags = flags.unwrap_or(0);
    if mode & !0o7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::INVAL);
    }
    Ok((mode as u32, flags))
}

/// The credentials `fs/open.c: access_override_creds()` checks with: the
/// real ids (the effective ones with `AT_EACCESS`) as the file system ids,
/// and, unless `SECBIT_NO_SETUID_FIXUP`, root's permitted capabilities
/// for a real uid 0, none for another.
fn checking_creds(c: &Creds, effective: bool) -> Creds {
    let mut k = c.clone();
    if !effective {
        k.fsuid = c.ruid;
        k.fsgid = c.rgid;
        if c.securebits & fr_emulator::creds::SECBIT_NO_SETUID_FIXUP == 0 {
            k.effective = if c.ruid == 0 { c.permitted } else { 0 };
        }
    }
    k
}

/// Whether `c` passes every permission check the kernel makes by the
/// real credentials fr's workload has (those of root in its namespace):
/// then the kernel's answer is real root's.
fn as_root(c: &Creds) -> bool {
    c.fsuid == 0
        && c.capable(CAP_DAC_OVERRIDE)
        && c.capable(CAP_DAC_READ_SEARCH)
        && c.capable(CAP_FOWNER)
}

/// `fs/open.c: do_faccessat()`, in its order: the mode (`EINVAL` beyond
/// `rwx`), the flags, the name, the lookup with the checking credentials,
/// `inode_permission()` (`EACCES`; executing a regular file needs an
/// execute bit even for root), and a read-only mount for writing
/// (`EROFS`).
fn check_access(
    ctx: &Context,
    req: &Request<'_>,
    dirfd: i32,
    path_addr: u64,
    mode: i32,
    flags: Option<i32>,
) -> Outcome {
    let (mode, flags) = access_flags(mode, flags)?;
    let creds = checking_creds(&ctx.creds.get(req.tid), flags & AT_EACCESS != 0);
    if as_root(&creds) {
        return Ok(Reply::Continue("root's check: the kernel's answer is real root's"));
    }
    let path = read_name(req, path_addr, flags)?.unwrap_or_default();
    let how = LookupFlags::from_at(flags);
    let file = ctx.lookup_as(req, dirfd, &path, how, false, &creds)?;
    let (key, real) = real_stat(file.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS)?;
    req.check_valid()?;
    let want = mode & 0o7;
    if want == 0 {
        return Ok(Reply::Value(0));
    }
    let view = ctx.inodes.view(key, real.attrs());
    let acl = ctx.inodes.access_acl(key, real.attrs());
    if !rules::permitted_with_acl(&view, acl.as_ref(), want, &creds) {
        return Err(Errno::ACCESS);
    }
    let kind = view.mode & fr_emulator::attrs::S_IFMT;
    let writable_kind =
        [fr_emulator::attrs::S_IFREG, fr_emulator::attrs::S_IFDIR, fr_emulator::attrs::S_IFLNK]
            .contains(&kind);
    if want & rules::MAY_WRITE != 0
        && writable_kind
        && rustix::fs::fstatvfs(&file)?.f_flag.contains(StatVfsMountFlags::RDONLY)
    {
        return Err(Errno::ROFS);
    }
    Ok(Reply::Value(0))
}

/// An open of a file that may exist, by a thread that is no longer root,
/// checked as `fs/namei.c: may_open()` does before the kernel opens it:
/// the access the flags ask for (`O_TRUNC` is writing), then `O_NOATIME`
/// by the owner or `CAP_FOWNER` (`EPERM`). A name that does not exist is
/// the kernel's to answer (or to make, with `O_CREAT`). `why` is the
/// reason the call is otherwise the kernel's.
pub fn existing(
    ctx: &Context,
    req: &Request<'_>,
    dirfd: i32,
    path_addr: u64,
    flags: u32,
    why: &'static str,
) -> Outcome {
    let creds = ctx.creds.get(req.tid);
    if as_root(&creds) {
        return Ok(Reply::Continue(why));
    }
    let path = read_plain_path(req, path_addr)?;
    let how = LookupFlags { follow: flags & O_NOFOLLOW == 0, empty_path: false };
    let Ok(file) = ctx.lookup(req, dirfd, &path, how) else {
        return Ok(Reply::Continue(why));
    };
    let (key, real) = real_stat(file.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS)?;
    let view = ctx.inodes.view(key, real.attrs());
    let want = match flags & 0o3 {
        0 => rules::MAY_READ,
        1 => rules::MAY_WRITE,
        _ => rules::MAY_READ | rules::MAY_WRITE,
    } | if flags & O_TRUNC != 0 { rules::MAY_WRITE } else { 0 };
    let kind = view.mode & fr_emulator::attrs::S_IFMT;
    // A symlink not followed, a fifo or a socket: the kernel's own rules.
    if kind != fr_emulator::attrs::S_IFREG && kind != fr_emulator::attrs::S_IFDIR {
        return Ok(Reply::Continue(why));
    }
    let acl = ctx.inodes.access_acl(key, real.attrs());
    req.check_valid()?;
    if !rules::permitted_with_acl(&view, acl.as_ref(), want, &creds) {
        return Err(Errno::ACCESS);
    }
    if flags & O_NOATIME != 0 && view.uid != creds.fsuid && !creds.capable(CAP_FOWNER) {
        return Err(Errno::PERM);
    }
    Ok(Reply::Continue(why))
}
