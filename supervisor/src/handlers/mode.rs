//! The chmod family: `chmod fchmod fchmodat fchmodat2` (6.6). All end in
//! [`set_mode`].
//!
//! The mode the rules give (`fs/attr.c: setattr_prepare()` drops
//! set-group-id for a caller outside the group without `CAP_FSETID`) is
//! recorded and shown; the real file gets it too, with the owner's read and
//! write bits (and search, for directories) kept, so that the unprivileged
//! user, and the supervisor acting for the workload, can still use a file
//! that real root could use in any mode.

use std::os::fd::{AsFd, OwnedFd};

use fr_emulator::attrs::{S_IFLNK, S_IFMT};
use rustix::fs::{AtFlags, StatxFlags};
use rustix::io::Errno;

use super::{
    at_file, changeable_fd, may_change, read_plain_path, real_stat, refused, Context, Outcome,
    Reply,
};
use super::{chmod_real, usable_perms};
use crate::request::Request;
use crate::resolve::{LookupFlags, AT_FDCWD};

/// `chmod(path, mode)`.
pub fn chmod(ctx: &Context, req: &Request<'_>) -> Outcome {
    let path = read_plain_path(req, req.ptr(0))?;
    let how = LookupFlags { follow: true, empty_path: false };
    set_mode(ctx, req, ctx.lookup(req, AT_FDCWD, &path, how)?, req.uint(1))
}

/// `fchmod(fd, mode)`.
pub fn fchmod(ctx: &Context, req: &Request<'_>) -> Outcome {
    set_mode(ctx, req, changeable_fd(req, req.int(0))?, req.uint(1))
}

/// `fchmodat(dirfd, path, mode)`: no flags argument, always follows.
pub fn fchmodat(ctx: &Context, req: &Request<'_>) -> Outcome {
    let path = read_plain_path(req, req.ptr(1))?;
    let how = LookupFlags { follow: true, empty_path: false };
    set_mode(ctx, req, ctx.lookup(req, req.int(0), &path, how)?, req.uint(2))
}

/// `fchmodat2(dirfd, path, mode, flags)`.
pub fn fchmodat2(ctx: &Context, req: &Request<'_>) -> Outcome {
    set_mode(ctx, req, at_file(ctx, req, req.int(0), req.ptr(1), req.int(3))?, req.uint(2))
}

/// The chmod of `file` by the calling thread (`fs/open.c: chmod_common()`):
/// checked by the kernel's rules, recorded, and applied to the real file
/// with the owner's bits kept usable.
fn set_mode(ctx: &Context, req: &Request<'_>, file: OwnedFd, mode: u32) -> Outcome {
    let (key, real) = real_stat(file.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS)?;
    let kind = real.mode & S_IFMT;
    if kind == S_IFLNK {
        // Only reachable with AT_SYMLINK_NOFOLLOW; Linux 6.6+ refuses it.
        return Err(Errno::OPNOTSUPP);
    }
    may_change(file.as_fd(), &real)?;
    let creds = ctx.creds.get(req.tid);
    let view = ctx.inodes.view(key, real.attrs());
    // The rule's bits, not the request's: a set-group-id bit it dropped
    // must not reach the real file either, where the kernel would act on
    // it (a real set-group-id directory hands it to the subdirectories
    // the kernel makes).
    let perms = fr_emulator::rules::chmod(view, mode, &creds).map_err(refused)?.perms();
    let mut changed = false;
    if ctx.may_chmod_for_real(key, &real) {
        match chmod_real(file.as_fd(), usable_perms(kind, perms)) {
            Ok(()) => changed = true,
            // Another user's file: real root could, fr records it.
            Err(Errno::PERM) => {}
            Err(e) => return Err(e),
        }
    }
    // A file without a record whose real mode is now the one real root's
    // chmod leaves needs none: its view is the real file (no set-id bit,
    // which a later write would clear for real, and no owner bit fr had
    // to add).
    let plain = perms & 0o6000 == 0 && usable_perms(kind, perms) == perms;
    if changed && plain && ctx.inodes.record(key, real.attrs()).is_none() {
        return Ok(Reply::Value(0));
    }
    if let Err(e) = ctx.inodes.chmod(key, real.attrs(), perms, &creds) {
        // The journal could not keep it: the file keeps its mode, as real
        // root's failed call leaves it.
        if changed {
            let _ = chmod_real(file.as_fd(), real.mode & 0o7777);
        }
        return Err(refused(e));
    }
    Ok(Reply::Value(0))
}
