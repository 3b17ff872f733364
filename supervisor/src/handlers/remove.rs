//! Calls that take a link away: `unlink unlinkat rmdir`, and `rename
//! renameat renameat2` when they replace an existing name.
//!
//! When the file losing a link has no record the kernel does the call
//! (`CONTINUE`). When it has one, fr does the call itself, so that it knows
//! the link went, and forgets the record once the last link is gone: a file
//! that later gets the same inode number must not inherit it. Hard links
//! share one record, and a rename keeps the inode, so nothing else changes.
//! A record of another type than the file (whose file was replaced outside
//! fr) is forgotten on any removal of the file that has its number.

use std::os::fd::{AsFd, OwnedFd};

use fr_emulator::{rules, Attrs, InodeKey};
use rustix::fs::{self, AtFlags, Mode, OFlags, RenameFlags, StatxFlags};
use rustix::io::Errno;

use super::{passes_dac, read_plain_path, real_stat, refused, Context, Decoded, Outcome, Reply};
use crate::request::Request;
use crate::resolve::AT_FDCWD;

use crate::linux::{AT_REMOVEDIR, RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT};

/// A name about to lose its link, and what fr knows of its file.
struct Victim {
    dir: OwnedFd,
    name: Vec<u8>,
    key: InodeKey,
    /// The real attributes, with host ids.
    real: Attrs,
    view: Attrs,
    recorded: bool,
    last_link: bool,
}

/// The file `path` names, not following a last symlink. `None` whenever
/// the kernel should decide alone: a name that does not resolve, a
/// trailing slash, `.` or `..`.
fn victim(
    ctx: &Context,
    req: &Request<'_>,
    dirfd: i32,
    path: &[u8],
) -> Result<Option<Victim>, Errno> {
    if path.ends_with(b"/") {
        return Ok(None);
    }
    // A directory the caller may not search is its answer (EACCES), not
    // the kernel's: the kernel searches with the user's real credentials.
    let (dir, name) = match ctx.parent(req, dirfd, path, false) {
        Ok(found) => found,
        Err(Errno::ACCESS) => return Err(Errno::ACCESS),
        Err(_) => return Ok(None),
    };
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let Ok(file) = fs::openat(&dir, name.as_slice(), flags, Mode::empty()) else { return Ok(None) };
    let (key, real) = real_stat(file.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS)?;
    let record = ctx.inodes.record(key, real.attrs());
    if record.is_none() {
        // Whatever becomes of this call, a stale record is no file's any more.
        ctx.inodes.forget_stale(key, real.attrs());
    }
    let view = record.unwrap_or_else(|| ctx.inodes.unrecorded(real.attrs()));
    let last_link = real.nlink <= 1 || view.is_dir();
    let recorded = record.is_some();
    Ok(Some(Victim { dir, name, key, real: real.attrs(), view, recorded, last_link }))
}

/// The caller's permission to remove `v`, by its fake credentials and the
/// directory's access ACL (`generic_permission()`). Root
/// (`CAP_DAC_OVERRIDE` and `CAP_FOWNER`) passes without a look.
fn may_delete(ctx: &Context, req: &Request<'_>, v: &Victim) -> Result<(), Errno> {
    let creds = ctx.creds.get(req.tid);
    if passes_dac(&creds) {
        return Ok(());
    }
    let (dir_key, dir_real) = real_stat(v.dir.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS)?;
    let dir = ctx.inodes.view(dir_key, dir_real.attrs());
    let acl = ctx.inodes.access_acl(dir_key, dir_real.attrs());
    rules::may_delete_with_acl(&dir, acl.as_ref(), &v.view, &creds).map_err(refused)
}

/// `unlink(path)`.
pub fn unlink(ctx: &Context, req: &Request<'_>) -> Outcome {
    remove(ctx, req, AT_FDCWD, req.ptr(0), 0)
}

/// `rmdir(path)`.
pub fn rmdir(ctx: &Context, req: &Request<'_>) -> Outcome {
    remove(ctx, req, AT_FDCWD, req.ptr(0), AT_REMOVEDIR)
}

/// `unlinkat(dirfd, path, flags)`.
pub fn unlinkat(ctx: &Context, req: &Request<'_>) -> Outcome {
    remove(ctx, req, req.int(0), req.ptr(1), unlink_flags(req.int(2))?)
}

/// `unlinkat`'s `flags`: only `AT_REMOVEDIR` (`EINVAL`, before the name).
pub fn unlink_flags(flags: i32) -> Result<i32, Errno> {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::INVAL);
    }
    Ok(flags)
}

fn remove(ctx: &Context, req: &Request<'_>, dirfd: i32, path_addr: u64, flags: i32) -> Outcome {
    let path = read_plain_path(req, path_addr)?;
    let Some(v) = victim(ctx, req, dirfd, &path)? else {
        return Ok(Reply::Continue("the kernel finds no file to remove"));
    };
    may_delete(ctx, req, &v)?;
    if !v.recorded {
        return Ok(Reply::Continue("no record to forget"));
    }
    let at = if flags & AT_REMOVEDIR != 0 { AtFlags::REMOVEDIR } else { AtFlags::empty() };
    fs::unlinkat(&v.dir, v.name.as_slice(), at)?;
    if v.last_link {
        ctx.inodes.forget(v.key);
    }
    Ok(Reply::Value(0))
}

/// `rename(old, new)`.
pub fn rename(ctx: &Context, req: &Request<'_>) -> Outcome {
    rename_at(ctx, req, (AT_FDCWD, req.ptr(0)), (AT_FDCWD, req.ptr(1)), 0)
}

/// `renameat(olddirfd, old, newdirfd, new)`.
pub fn renameat(ctx: &Context, req: &Request<'_>) -> Outcome {
    rename_at(ctx, req, (req.int(0), req.ptr(1)), (req.int(2), req.ptr(3)), 0)
}

/// `renameat2(olddirfd, old, newdirfd, new, flags)`.
pub fn renameat2(ctx: &Context, req: &Request<'_>) -> Outcome {
    rename_at(ctx, req, (req.int(0), req.ptr(1)), (req.int(2), req.ptr(3)), req.uint(4))
}

/// `renameat2`'s `flags`: `RENAME_NOREPLACE`, `RENAME_EXCHANGE` or
/// `RENAME_WHITEOUT`, an exchange with neither other; anything else is the
/// kernel's `EINVAL`.
pub fn rename_flags(flags: u32) -> Decoded<u32> {
    let known = RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT;
    let exchange = flags & RENAME_EXCHANGE != 0;
    if flags & !known != 0 || (exchange && flags & (RENAME_NOREPLACE | RENAME_WHITEOUT) != 0) {
        return Decoded::Kernel("flags the kernel refuses (EINVAL)");
    }
    Decoded::Args(flags)
}

/// A rename replaces the new name's file, which loses that link; an
/// exchange loses none. The kernel would check the permissions with the
/// user's real credentials, so fr checks them first with the fake ones.
fn rename_at(
    ctx: &Context,
    req: &Request<'_>,
    old: (i32, u64),
    new: (i32, u64),
    flags: u32,
) -> Outcome {
    if let Decoded::Kernel(why) = rename_flags(flags) {
        return Ok(Reply::Continue(why));
    }
    let exchange = flags & RENAME_EXCHANGE != 0;
    let old_path = read_plain_path(req, old.1)?;
    let new_path = match read_plain_path(req, new.1) {
        Ok(path) => path,
        // do_renameat2() looks up the old name's directory before it
        // looks at the new name, so that lookup's error comes first.
        Err(e) => {
            return match ctx.parent(req, old.0, &old_path, true) {
                Err(Errno::EXIST) | Ok(_) => Err(e),
                Err(lookup) => Err(lookup),
            }
        }
    };
    let source = victim(ctx, req, old.0, &old_path)?;
    let target = victim(ctx, req, new.0, &new_path)?;
    if let (Some(s), Some(t)) = (&source, &target) {
        if s.key == t.key {
            // Two names of one file: the kernel does nothing (rename(2)).
            return Ok(Reply::Continue("both names are one file"));
        }
    }
    if flags & RENAME_NOREPLACE != 0 && target.is_some() {
        return Ok(Reply::Continue("the new name exists: the kernel's EEXIST"));
    }
    if let Some(source) = &source {
        may_rename(ctx, req, source, target.as_ref(), new, &new_path, exchange)?;
    }
    if exchange {
        return Ok(Reply::Continue("an exchange takes no link away"));
    }
    let Some(v) = target.filter(|v| v.recorded) else {
        return Ok(Reply::Continue("no record to forget"));
    };
    if old_path.ends_with(b"/") {
        return Ok(Reply::Continue("a trailing slash: the kernel's checks"));
    }
    let (old_dir, old_name) = match source {
        Some(s) => (s.dir, s.name),
        None => ctx.parent(req, old.0, &old_path, false)?,
    };
    let how = RenameFlags::from_bits_retain(flags);
    fs::renameat_with(&old_dir, old_name.as_slice(), &v.dir, v.name.as_slice(), how)?;
    if v.last_link {
        ctx.inodes.forget(v.key);
    }
    Ok(Reply::Value(0))
}

/// The caller's permission to move `source` to the new name, by its fake
/// credentials, as `fs/namei.c: vfs_rename()` checks it: the old name goes
/// (`may_delete()`); the new name's file is replaced (`may_delete()`), or
/// the name is made (`may_create()`); an exchange replaces both ways; a
/// directory that changes parent needs write permission on itself (its
/// `..` changes). Root (`CAP_DAC_OVERRIDE` and `CAP_FOWNER`) passes
/// without a look. A new name that does not resolve is the kernel's.
fn may_rename(
    ctx: &Context,
    req: &Request<'_>,
    source: &Victim,
    target: Option<&Victim>,
    new: (i32, u64),
    new_path: &[u8],
    exchange: bool,
) -> Result<(), Errno> {
    let creds = ctx.creds.get(req.tid);
    if passes_dac(&creds) {
        return Ok(());
    }
    // The new name's directory is looked up before any permission is
    // checked (`do_renameat2()`): one that does not resolve is the kernel's.
    let new_parent = match target {
        Some(_) => None,
        None if exchange => return Ok(()),
        None => {
            let dir = match ctx.parent(req, new.0, new_path, true) {
                // `.` and `..` are the kernel's EBUSY.
                Ok((_, name)) if name.is_empty() || name == b"." || name == b".." => return Ok(()),
                Ok((dir, _)) => dir,
                Err(Errno::ACCESS) => return Err(Errno::ACCESS),
                Err(_) => return Ok(()),
            };
            let (key, real) = real_stat(dir.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS)?;
            Some(super::create::Parent { key, real: real.attrs() })
        }
    };
    may_delete(ctx, req, source)?;
    let new_dir = match (target, new_parent) {
        (Some(t), _) => {
            may_delete(ctx, req, t)?;
            dir_key(&t.dir)?
        }
        (None, Some(parent)) => {
            parent.may_create(ctx, &creds)?;
            parent.key
        }
        (None, None) => return Ok(()),
    };
    let old_dir = dir_key(&source.dir)?;
    if old_dir != new_dir {
        let moved = std::iter::once(source).chain(target.filter(|_| exchange));
        for dir in moved.filter(|v| v.view.is_dir()) {
            let acl = ctx.inodes.access_acl(dir.key, dir.real);
            if !rules::permitted_with_acl(&dir.view, acl.as_ref(), rules::MAY_WRITE, &creds) {
                return Err(Errno::ACCESS);
            }
        }
    }
    Ok(())
}

fn dir_key(dir: &OwnedFd) -> Result<InodeKey, Errno> {
    Ok(real_stat(dir.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS)?.0)
}
