//! The xattr family: `{,l,f}{set,get,list,remove}xattr`. `user.*` names are
//! real: the kernel does those calls (`CONTINUE`). `security.*`,
//! `trusted.*` and the POSIX ACL names real root can set are kept by fr
//! ([`fr_emulator::xattr`]), merged into `getxattr` and `listxattr` answers.
//!
//! The 6.13 `*xattrat` calls take the same paths. The rules, POSIX ACLs
//! and their mode bits included, are the inode table's
//! ([`fr_emulator::InodeTable::setxattr`]).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use fr_emulator::xattr::{self as rules, Namespace, XattrError};
use fr_emulator::{Creds, InodeKey, Kstat};
use rustix::fs::{AtFlags, StatxFlags};
use rustix::io::Errno;

use super::{chmod_real, usable_perms};
use super::{
    is_o_path, may_change, read_name_maybe_null, read_plain_path, real_stat, Context, Outcome,
    Reply,
};
use super::{AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW};
use crate::request::Request;
use crate::resolve::{self, LookupFlags, AT_FDCWD};

/// `XATTR_LIST_MAX`.
const LIST_MAX: usize = 65536;

fn errno(e: XattrError) -> Errno {
    match e {
        XattrError::Range => Errno::RANGE,
        XattrError::NotSupported => Errno::OPNOTSUPP,
        XattrError::TooBig => Errno::TOOBIG,
        XattrError::Invalid => Errno::INVAL,
        XattrError::Perm => Errno::PERM,
        XattrError::Exists => Errno::EXIST,
        XattrError::NoData => Errno::NODATA,
        XattrError::Access => Errno::ACCESS,
    }
}

/// Which file a call names: a path (following a last symlink or not) or a
/// descriptor.
#[derive(Clone, Copy)]
enum Target {
    Path {
        addr: u64,
        follow: bool,
    },
    Fd(i32),
    /// The `*xattrat` calls: a path from `dirfd` with `AT_SYMLINK_NOFOLLOW`
    /// and `AT_EMPTY_PATH`, whose name may be NULL (`getname_maybe_null()`).
    At {
        dirfd: i32,
        addr: u64,
        flags: i32,
    },
}

fn path(req: &Request<'_>, follow: bool) -> Target {
    Target::Path { addr: req.ptr(0), follow }
}

fn open(ctx: &Context, req: &Request<'_>, target: Target) -> Result<OwnedFd, Errno> {
    match target {
        Target::Path { addr, follow } => {
            let p = read_plain_path(req, addr)?;
            ctx.lookup(req, AT_FDCWD, &p, LookupFlags { follow, empty_path: false })
        }
        Target::Fd(fd) => {
            let file = resolve::fd(req, fd)?;
            if is_o_path(req, fd)? {
                return Err(Errno::BADF);
            }
            Ok(file)
        }
        Target::At { dirfd, addr, flags } => match read_name_maybe_null(req, addr, flags)? {
            None if dirfd >= 0 => open(ctx, req, Target::Fd(dirfd)),
            name => ctx.lookup(req, dirfd, &name.unwrap_or_default(), LookupFlags::from_at(flags)),
        },
    }
}

/// The attribute name at `addr`, as `fs/xattr.c` copies it: `ERANGE` when
/// empty or longer than `XATTR_NAME_MAX`.
fn read_name(req: &Request<'_>, addr: u64) -> Result<(Vec<u8>, Namespace), Errno> {
    let name = match req.read_path(addr) {
        Err(Errno::NAMETOOLONG) => return Err(Errno::RANGE),
        other => other?,
    };
    let ns = rules::namespace(&name).map_err(errno)?;
    Ok((name, ns))
}

fn stat(file: &OwnedFd) -> Result<(InodeKey, Kstat), Errno> {
    real_stat(file.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS)
}

/// `setxattr(path, name, value, size, flags)`.
pub fn setxattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    set(ctx, req, path(req, true), [req.ptr(1), req.ptr(2), req.ulong(3)], req.uint(4))
}

/// `lsetxattr(path, name, value, size, flags)`.
pub fn lsetxattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    set(ctx, req, path(req, false), [req.ptr(1), req.ptr(2), req.ulong(3)], req.uint(4))
}

/// `fsetxattr(fd, name, value, size, flags)`.
pub fn fsetxattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    set(ctx, req, Target::Fd(req.int(0)), [req.ptr(1), req.ptr(2), req.ulong(3)], req.uint(4))
}

/// `fs/xattr.c: path_setxattr()`: flags, name and value are taken first,
/// then the file is looked up.
fn set(
    ctx: &Context,
    req: &Request<'_>,
    target: Target,
    [name_addr, value_addr, size]: [u64; 3],
    flags: u32,
) -> Outcome {
    let size = size as usize;
    rules::check_set(flags, 0).map_err(errno)?;
    let (name, ns) = read_name(req, name_addr)?;
    if ns == Namespace::User {
        return Ok(Reply::Continue("user.* attributes are real"));
    }
    rules::check_set(flags, size).map_err(errno)?;
    let value = req.read_exact(value_addr, size)?;
    let file = open(ctx, req, target)?;
    let (key, real) = stat(&file)?;
    may_change(file.as_fd(), &real)?;
    let creds = ctx.creds.get(req.tid);
    ctx.inodes.setxattr(key, real.attrs(), &name, &value, flags, &creds).map_err(errno)?;
    if name == fr_emulator::xattr::ACL_ACCESS {
        real_mode_follows(ctx, &file, key, &real);
    }
    Ok(Reply::Value(0))
}

/// An access ACL sets the file's permission bits (`posix_acl_update_mode()`:
/// the ACL's owner, group or mask and other entries, and set-group-id
/// dropped for a caller outside the group without `CAP_FSETID`). fr records
/// that mode, and gives it to the real file too, as after a chmod (with the
/// owner's bits kept usable): on the host tree, where nothing keeps the
/// record after the session, the file then keeps real root's mode, and the
/// kernel's own new files in a directory inherit no set-group-id bit real
/// root's would not have.
fn real_mode_follows(ctx: &Context, file: &OwnedFd, key: InodeKey, real: &Kstat) {
    use fr_emulator::attrs::{S_IFLNK, S_IFMT};
    let kind = real.mode & S_IFMT;
    if kind == S_IFLNK {
        return;
    }
    let want = usable_perms(kind, ctx.inodes.view(key, real.attrs()).perms());
    if want != real.mode & 0o7777 {
        if let Err(e) = chmod_real(file.as_fd(), want) {
            log::debug!("giving the real file the ACL's mode: {e}");
        }
    }
}

/// `getxattr(path, name, value, size)`.
pub fn getxattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    get(ctx, req, path(req, true), [req.ptr(1), req.ptr(2), req.ulong(3)])
}

/// `lgetxattr(path, name, value, size)`.
pub fn lgetxattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    get(ctx, req, path(req, false), [req.ptr(1), req.ptr(2), req.ulong(3)])
}

/// `fgetxattr(fd, name, value, size)`.
pub fn fgetxattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    get(ctx, req, Target::Fd(req.int(0)), [req.ptr(1), req.ptr(2), req.ulong(3)])
}

fn get(
    ctx: &Context,
    req: &Request<'_>,
    target: Target,
    [name_addr, value_addr, size]: [u64; 3],
) -> Outcome {
    let (name, ns) = read_name(req, name_addr)?;
    if ns == Namespace::User {
        return Ok(Reply::Continue("user.* attributes are real"));
    }
    let file = open(ctx, req, target)?;
    let (key, real) = stat(&file)?;
    let creds = ctx.creds.get(req.tid);
    if !rules::visible(&name, &creds) {
        return Err(Errno::NODATA);
    }
    let Some(value) = ctx.inodes.xattrs(key, real.attrs()).remove(&name) else {
        return absent(&name);
    };
    answer(req, value_addr, size as usize, &value)
}

/// A name fr does not keep: the file's own `security.*` or ACL, if it has
/// one, is the kernel's to read or remove; `trusted.*` names the kernel
/// would not even show the user, so there are none.
fn absent(name: &[u8]) -> Outcome {
    if name.starts_with(b"trusted.") {
        Err(Errno::NODATA)
    } else {
        Ok(Reply::Continue("not kept by fr: the file's own, if any"))
    }
}

/// Writes `data` into the caller's buffer of `size` bytes as the get and
/// list calls do: size 0 asks for the length, a short buffer is `ERANGE`.
fn answer(req: &Request<'_>, addr: u64, size: usize, data: &[u8]) -> Outcome {
    if size > 0 {
        if size.min(rules::SIZE_MAX.max(LIST_MAX)) < data.len() {
            return Err(Errno::RANGE);
        }
        if !data.is_empty() {
            req.write(addr, data)?;
        }
    }
    Ok(Reply::Value(data.len() as i64))
}

/// `listxattr(path, list, size)`.
pub fn listxattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    list(ctx, req, path(req, true), req.ptr(1), req.ulong(2))
}

/// `llistxattr(path, list, size)`.
pub fn llistxattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    list(ctx, req, path(req, false), req.ptr(1), req.ulong(2))
}

/// `flistxattr(fd, list, size)`.
pub fn flistxattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    list(ctx, req, Target::Fd(req.int(0)), req.ptr(1), req.ulong(2))
}

/// The file's real names (as the supervisor can read them) followed by the
/// ones fr keeps, each NUL-terminated.
fn list(ctx: &Context, req: &Request<'_>, target: Target, list_addr: u64, size: u64) -> Outcome {
    let file = open(ctx, req, target)?;
    let (key, real) = stat(&file)?;
    let kept = ctx.inodes.xattrs(key, real.attrs());
    if kept.is_empty() {
        return Ok(Reply::Continue("fr keeps no attribute of this file"));
    }
    let creds: Creds = ctx.creds.get(req.tid);
    // The magic link leads to the file itself, symlink or not.
    let link = format!("/proc/self/fd/{}", file.as_raw_fd());
    let mut names = vec![0u8; LIST_MAX];
    let n = rustix::fs::listxattr(link.as_str(), &mut names[..]).unwrap_or(0);
    names.truncate(n);
    for name in kept.keys().filter(|n| rules::visible(n, &creds)) {
        let present = names.split(|&b| b == 0).any(|existing| existing == name.as_slice());
        if !present {
            names.extend_from_slice(name);
            names.push(0);
        }
    }
    answer(req, list_addr, size as usize, &names)
}

/// `removexattr(path, name)`.
pub fn removexattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    remove(ctx, req, path(req, true), req.ptr(1))
}

/// `lremovexattr(path, name)`.
pub fn lremovexattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    remove(ctx, req, path(req, false), req.ptr(1))
}

/// `fremovexattr(fd, name)`.
pub fn fremovexattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    remove(ctx, req, Target::Fd(req.int(0)), req.ptr(1))
}

fn remove(ctx: &Context, req: &Request<'_>, target: Target, name_addr: u64) -> Outcome {
    let (name, ns) = read_name(req, name_addr)?;
    if ns == Namespace::User {
        return Ok(Reply::Continue("user.* attributes are real"));
    }
    let file = open(ctx, req, target)?;
    let (key, real) = stat(&file)?;
    may_change(file.as_fd(), &real)?;
    match ctx.inodes.removexattr(key, real.attrs(), &name, &ctx.creds.get(req.tid)) {
        Err(XattrError::NoData) if name.starts_with(b"security.") => absent_security(&file, &name),
        Err(XattrError::NoData) => absent(&name),
        done => done.map(|()| Reply::Value(0)).map_err(errno),
    }
}

/// The removal of a `security.*` name fr does not keep, by a caller the
/// rules let remove it. The kernel would check the user's own credentials
/// first and refuse the name (`cap_inode_removexattr()` wants
/// `CAP_SYS_ADMIN`, or `CAP_SETFCAP` over the file for
/// `security.capability`: `EPERM`), so when the real file has no such
/// attribute fr gives real root's answer, the file system's `ENODATA` (or
/// `EOPNOTSUPP`). One the file has is the kernel's to remove.
fn absent_security(file: &OwnedFd, name: &[u8]) -> Outcome {
    // The magic link leads to the file itself, symlink or not.
    let link = format!("/proc/self/fd/{}", file.as_raw_fd());
    match rustix::fs::getxattr(link.as_str(), name, &mut [0u8; 0][..]) {
        Err(e @ (Errno::NODATA | Errno::OPNOTSUPP)) => Err(e),
        _ => Ok(Reply::Continue("the file's own security.* attribute: the kernel's to remove")),
    }
}

/// `XATTR_ARGS_SIZE_VER0` and the page size `copy_struct_from_user()` stops at.
const ARGS_SIZE_VER0: usize = 16;
const PAGE_SIZE: usize = 4096;

/// The `*xattrat` calls' `at_flags`: only these two (`EINVAL`).
fn at_target(req: &Request<'_>) -> Result<Target, Errno> {
    let flags = req.int(2);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::INVAL);
    }
    Ok(Target::At { dirfd: req.int(0), addr: req.ptr(1), flags })
}

/// `struct xattr_args { u64 value; u32 size; u32 flags; }` at argument 4,
/// of the size at argument 5, as `copy_struct_from_user()` takes it: too
/// small is `EINVAL`, larger than a page `E2BIG`, and bytes beyond the
/// known struct must be zero (`E2BIG`).
fn xattr_args(req: &Request<'_>) -> Result<(u64, u64, u32), Errno> {
    let usize = req.ulong(5) as usize;
    if usize < ARGS_SIZE_VER0 {
        return Err(Errno::INVAL);
    }
    if usize > PAGE_SIZE {
        return Err(Errno::TOOBIG);
    }
    let raw = req.read_exact(req.ptr(4), usize)?;
    if raw[ARGS_SIZE_VER0..].iter().any(|&b| b != 0) {
        return Err(Errno::TOOBIG);
    }
    let value = u64::from_le_bytes(raw[0..8].try_into().unwrap_or_default());
    let value = if req.arch.is_32bit() { value & 0xffff_ffff } else { value };
    let size = u64::from(u32::from_le_bytes(raw[8..12].try_into().unwrap_or_default()));
    let flags = u32::from_le_bytes(raw[12..16].try_into().unwrap_or_default());
    Ok((value, size, flags))
}

/// `setxattrat(dirfd, path, at_flags, name, args, size)` (6.13).
pub fn setxattrat(ctx: &Context, req: &Request<'_>) -> Outcome {
    let (value, size, flags) = xattr_args(req)?;
    let target = at_target(req)?;
    set(ctx, req, target, [req.ptr(3), value, size], flags)
}

/// `getxattrat(dirfd, path, at_flags, name, args, size)` (6.13): the
/// args' flags must be 0.
pub fn getxattrat(ctx: &Context, req: &Request<'_>) -> Outcome {
    let (value, size, flags) = xattr_args(req)?;
    if flags != 0 {
        return Err(Errno::INVAL);
    }
    let target = at_target(req)?;
    get(ctx, req, target, [req.ptr(3), value, size])
}

/// `listxattrat(dirfd, path, at_flags, list, size)` (6.13).
pub fn listxattrat(ctx: &Context, req: &Request<'_>) -> Outcome {
    let target = at_target(req)?;
    list(ctx, req, target, req.ptr(3), req.ulong(4))
}

/// `removexattrat(dirfd, path, at_flags, name)` (6.13).
pub fn removexattrat(ctx: &Context, req: &Request<'_>) -> Outcome {
    let target = at_target(req)?;
    remove(ctx, req, target, req.ptr(3))
}
