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

use super::{
    changeable_fd, may_change, read_name_maybe_null, read_plain_path, real_stat, Context, Decoded,
    Outcome, Reply,
};
use super::{chmod_real, touch_ctime, usable_perms, Touched};
use super::{AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW};
use crate::request::Request;
use crate::resolve::{LookupFlags, AT_FDCWD};

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
        XattrError::Unkept(e) => Errno::from_raw_os_error(e),
    }
}

/// Which file a call names: a path (following a last symlink or not) or a
/// descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum File {
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

/// The path at argument 0 of the calls without `f` or `at`.
pub fn path(req: &Request<'_>, follow: bool) -> File {
    File::Path { addr: req.ptr(0), follow }
}

/// The descriptor at argument 0 of the `f*xattr` calls.
pub fn fd(req: &Request<'_>) -> File {
    File::Fd(req.int(0))
}

/// The `*xattrat` calls' file: `dirfd` and path at arguments 0 and 1, and
/// `at_flags` at 2, which may only be these two (`EINVAL`).
pub fn at_file(req: &Request<'_>) -> Result<File, Errno> {
    let flags = req.int(2);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::INVAL);
    }
    Ok(File::At { dirfd: req.int(0), addr: req.ptr(1), flags })
}

/// The attribute name at `addr`, as `fs/xattr.c: import_xattr_name()`
/// copies it: at most `XATTR_NAME_MAX` bytes and the NUL are read, and
/// `ERANGE` when empty or longer (whatever follows, unreadable or not).
/// Namespaces fr does not know are `EOPNOTSUPP`.
pub fn name(req: &Request<'_>, addr: u64) -> Result<(Vec<u8>, Namespace), Errno> {
    let name = match req.read_string(addr, rules::NAME_MAX + 1) {
        Err(Errno::NAMETOOLONG) => return Err(Errno::RANGE),
        other => other?,
    };
    let ns = match rules::namespace(&name) {
        // The kernel's EOPNOTSUPP, after its own earlier checks; or a file
        // system's own system.* name (a socket's system.sockprotoname).
        Err(XattrError::NotSupported) => Namespace::User,
        other => other.map_err(errno)?,
    };
    Ok((name, ns))
}

/// Why a `user.*` name, or one of no namespace fr keeps, is the kernel's.
const USER_REAL: &str = "user.* attributes and namespaces fr does not keep are the kernel's";

/// A kept attribute to set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Set {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
    pub flags: u32,
}

/// The name at `name_addr` and the `size` bytes of value at `value_addr`
/// with `flags`, in the order of `fs/xattr.c: setxattr_copy()` (which
/// `path_setxattrat()` calls before it looks the file up): the flags, the
/// name, the size (`E2BIG` above `XATTR_SIZE_MAX`), the value.
pub fn set_args(
    req: &Request<'_>,
    [name_addr, value_addr, size]: [u64; 3],
    flags: u32,
) -> Result<Decoded<Set>, Errno> {
    let size = size as usize;
    rules::check_set(flags, 0).map_err(errno)?;
    let (name, ns) = name(req, name_addr)?;
    if ns == Namespace::User {
        return Ok(Decoded::Kernel(USER_REAL));
    }
    rules::check_set(flags, size).map_err(errno)?;
    let value = req.read_exact(value_addr, size)?;
    Ok(Decoded::Args(Set { name, value, flags }))
}

/// `{,l,f}setxattr(file, name, value, size, flags)`.
pub fn setxattr_args(req: &Request<'_>) -> Result<Decoded<Set>, Errno> {
    set_args(req, [req.ptr(1), req.ptr(2), req.ulong(3)], req.uint(4))
}

/// `setxattrat(dirfd, path, at_flags, name, args, size)` (6.13), in the
/// order of `fs/xattr.c: setxattrat()`: the `xattr_args`, the `at_flags`,
/// then [`set_args`].
pub fn setxattrat_args(req: &Request<'_>) -> Result<(File, Decoded<Set>), Errno> {
    let XattrArgs { value, size, flags } = xattr_args(req)?;
    let file = at_file(req)?;
    Ok((file, set_args(req, [req.ptr(3), value, size], flags)?))
}

/// A kept attribute to read, and the caller's buffer for its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Get {
    pub name: Vec<u8>,
    pub value: u64,
    pub size: usize,
}

/// The name at `name_addr` and the buffer of `size` bytes at `value_addr`.
pub fn get_args(
    req: &Request<'_>,
    [name_addr, value_addr, size]: [u64; 3],
) -> Result<Decoded<Get>, Errno> {
    let (name, ns) = name(req, name_addr)?;
    if ns == Namespace::User {
        return Ok(Decoded::Kernel(USER_REAL));
    }
    Ok(Decoded::Args(Get { name, value: value_addr, size: size as usize }))
}

/// `{,l,f}getxattr(file, name, value, size)`.
pub fn getxattr_args(req: &Request<'_>) -> Result<Decoded<Get>, Errno> {
    get_args(req, [req.ptr(1), req.ptr(2), req.ulong(3)])
}

/// `getxattrat(dirfd, path, at_flags, name, args, size)` (6.13): the
/// `xattr_args`, whose flags must be 0 (`EINVAL`), the `at_flags`, then
/// [`get_args`].
pub fn getxattrat_args(req: &Request<'_>) -> Result<(File, Decoded<Get>), Errno> {
    let XattrArgs { value, size, flags } = xattr_args(req)?;
    if flags != 0 {
        return Err(Errno::INVAL);
    }
    let file = at_file(req)?;
    Ok((file, get_args(req, [req.ptr(3), value, size])?))
}

/// The caller's buffer for a list of names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct List {
    pub addr: u64,
    pub size: usize,
}

/// `{,l,f}listxattr(file, list, size)`.
pub fn listxattr_args(req: &Request<'_>) -> List {
    List { addr: req.ptr(1), size: req.ulong(2) as usize }
}

/// `listxattrat(dirfd, path, at_flags, list, size)` (6.13).
pub fn listxattrat_args(req: &Request<'_>) -> Result<(File, List), Errno> {
    let file = at_file(req)?;
    Ok((file, List { addr: req.ptr(3), size: req.ulong(4) as usize }))
}

/// The name of a kept attribute to remove, at `name_addr`.
pub fn remove_args(req: &Request<'_>, name_addr: u64) -> Result<Decoded<Vec<u8>>, Errno> {
    let (name, ns) = name(req, name_addr)?;
    if ns == Namespace::User {
        return Ok(Decoded::Kernel(USER_REAL));
    }
    Ok(Decoded::Args(name))
}

/// `{,l,f}removexattr(file, name)`.
pub fn removexattr_args(req: &Request<'_>) -> Result<Decoded<Vec<u8>>, Errno> {
    remove_args(req, req.ptr(1))
}

/// `removexattrat(dirfd, path, at_flags, name)` (6.13).
pub fn removexattrat_args(req: &Request<'_>) -> Result<(File, Decoded<Vec<u8>>), Errno> {
    let file = at_file(req)?;
    Ok((file, remove_args(req, req.ptr(3))?))
}

/// `struct xattr_args { u64 value; u32 size; u32 flags; }`, the `*xattrat`
/// calls' value, size and flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XattrArgs {
    pub value: u64,
    pub size: u64,
    pub flags: u32,
}

/// `XATTR_ARGS_SIZE_VER0` and the page size `copy_struct_from_user()` stops at.
const ARGS_SIZE_VER0: usize = 16;
const PAGE_SIZE: usize = 4096;

/// The `xattr_args` at argument 4, of the size at argument 5, as
/// `fs/xattr.c: setxattrat()` takes it: too small is `EINVAL`, larger than
/// a page `E2BIG`, then [`Request::read_struct`]. The value pointer is
/// taken whole (`u64_to_user_ptr()`), on the 32-bit ABIs too: one beyond
/// their 4 GiB is where they have no memory.
pub fn xattr_args(req: &Request<'_>) -> Result<XattrArgs, Errno> {
    let usize = req.ulong(5) as usize;
    if usize < ARGS_SIZE_VER0 {
        return Err(Errno::INVAL);
    }
    if usize > PAGE_SIZE {
        return Err(Errno::TOOBIG);
    }
    let raw = req.read_struct(req.ptr(4), ARGS_SIZE_VER0, usize)?;
    let value = u64::from_le_bytes(raw[0..8].try_into().unwrap_or_default());
    let size = u64::from(u32::from_le_bytes(raw[8..12].try_into().unwrap_or_default()));
    let flags = u32::from_le_bytes(raw[12..16].try_into().unwrap_or_default());
    Ok(XattrArgs { value, size, flags })
}

fn open(ctx: &Context, req: &Request<'_>, file: File) -> Result<OwnedFd, Errno> {
    match file {
        File::Path { addr, follow } => {
            let p = read_plain_path(req, addr)?;
            ctx.lookup(req, AT_FDCWD, &p, LookupFlags { follow, empty_path: false })
        }
        File::Fd(fd) => changeable_fd(req, fd),
        File::At { dirfd, addr, flags } => match read_name_maybe_null(req, addr, flags)? {
            None if dirfd >= 0 => open(ctx, req, File::Fd(dirfd)),
            name => ctx.lookup(req, dirfd, &name.unwrap_or_default(), LookupFlags::from_at(flags)),
        },
    }
}

fn stat(file: &OwnedFd) -> Result<(InodeKey, Kstat), Errno> {
    real_stat(file.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS)
}

/// `setxattr(path, name, value, size, flags)`.
pub fn setxattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    on_devices(ctx, req, path(req, true), req.ptr(1), setxattr_args(req)?, Errno::PERM)?
        .and_then(|args| set(ctx, req, path(req, true), args))
}

/// `lsetxattr(path, name, value, size, flags)`.
pub fn lsetxattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    on_devices(ctx, req, path(req, false), req.ptr(1), setxattr_args(req)?, Errno::PERM)?
        .and_then(|args| set(ctx, req, path(req, false), args))
}

/// `fsetxattr(fd, name, value, size, flags)`.
pub fn fsetxattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    on_devices(ctx, req, fd(req), req.ptr(1), setxattr_args(req)?, Errno::PERM)?
        .and_then(|args| set(ctx, req, fd(req), args))
}

/// `setxattrat(dirfd, path, at_flags, name, args, size)` (6.13).
pub fn setxattrat(ctx: &Context, req: &Request<'_>) -> Outcome {
    let (file, args) = setxattrat_args(req)?;
    on_devices(ctx, req, file, req.ptr(3), args, Errno::PERM)?
        .and_then(|args| set(ctx, req, file, args))
}

/// A `user.*` call (or one of a namespace fr does not keep) is the
/// kernel's, but not on a device node fr emulates, whose placeholder is a
/// regular file: the kernel refuses `user.*` on anything but a regular
/// file or a directory (`fs/xattr.c: xattr_permission()`: `EPERM` to
/// change, `ENODATA` to read), and real root's device is one. Looked up
/// only once a device was ever recorded.
fn on_devices<T>(
    ctx: &Context,
    req: &Request<'_>,
    file: File,
    name_addr: u64,
    decoded: Decoded<T>,
    refusal: Errno,
) -> Result<Decoded<T>, Errno> {
    let Decoded::Kernel(why) = decoded else { return Ok(decoded) };
    if !ctx.inodes.may_have_devices() || !req.read_prefix(name_addr, 5).is_ok_and(|n| n == b"user.")
    {
        return Ok(Decoded::Kernel(why));
    }
    let Ok(found) = open(ctx, req, file) else { return Ok(Decoded::Kernel(why)) };
    let (key, real) = stat(&found)?;
    let device = ctx.inodes.view(key, real.attrs()).file_type().is_device()
        && real.mode & fr_emulator::attrs::S_IFMT == fr_emulator::attrs::S_IFREG;
    if device {
        req.check_valid()?;
        return Err(refusal);
    }
    Ok(Decoded::Kernel(why))
}

/// `fs/xattr.c: path_setxattrat()`: flags, name and value are taken first
/// ([`set_args`]), then the file is looked up.
fn set(ctx: &Context, req: &Request<'_>, file: File, Set { name, value, flags }: Set) -> Outcome {
    let file = open(ctx, req, file)?;
    let (key, real) = stat(&file)?;
    may_change(file.as_fd(), &real)?;
    let creds = ctx.creds.get(req.tid);
    ctx.inodes.setxattr(key, real.attrs(), &name, &value, flags, &creds).map_err(errno)?;
    let real = match kernel_acl(ctx, &file, key, &real, &name, Some(&value)) {
        true => stat(&file)?.1,
        false => real,
    };
    // An access ACL's bits go to the real file (which moves its ctime),
    // unless they are its bits already.
    let moved = name == fr_emulator::xattr::ACL_ACCESS && real_mode_follows(ctx, &file, key, &real);
    if !moved && changes_the_inode(name.as_slice(), &real) {
        touch_ctime(ctx, file.as_fd(), key, &real, Touched::Xattr);
    }
    Ok(Reply::Value(0))
}

/// Subuid mode: gives an ACL the workload set (`value`) or removed
/// (`None`) to the real file too, where the namespace maps the ids it
/// names and the file is the image's own. The record answers the
/// workload's reads; the kernel's copy is for the kernel's own checks of a
/// thread that dropped root, whose ids it holds ([`super::ident`]): a
/// path walk through a directory that lets a user in by a named entry,
/// an open for reading that fr never sees. Whether the real file changed
/// (an access ACL sets its mode).
fn kernel_acl(
    ctx: &Context,
    file: &OwnedFd,
    key: InodeKey,
    real: &Kstat,
    name: &[u8],
    value: Option<&[u8]>,
) -> bool {
    use fr_emulator::xattr::{ACL_ACCESS, ACL_DEFAULT};
    if ctx.namespace != crate::Namespace::Subuid
        || (name != ACL_ACCESS && name != ACL_DEFAULT)
        || ctx.bounds.reach(key, real) != crate::bounds::Reach::Own
    {
        return false;
    }
    // The magic link leads to the file itself, symlink or not.
    let link = format!("/proc/self/fd/{}", file.as_raw_fd());
    let done = match value {
        Some(value) => {
            rustix::fs::setxattr(link.as_str(), name, value, rustix::fs::XattrFlags::empty())
        }
        None => match rustix::fs::removexattr(link.as_str(), name) {
            Err(Errno::NODATA) => return false,
            other => other,
        },
    };
    done.inspect_err(|e| log::debug!("the ACL stays fr's record alone: {e}")).is_ok()
}

/// Whether an emulated xattr set or removed by real root changes the
/// inode, and so its ctime: every one does but a default ACL on a file
/// that is not a directory, which `set_posix_acl()` answers 0 for without
/// a change when there is no ACL to set (`fs/posix_acl.c`; with one it
/// refuses).
fn changes_the_inode(name: &[u8], real: &fr_emulator::Kstat) -> bool {
    name != fr_emulator::xattr::ACL_DEFAULT
        || real.mode & fr_emulator::attrs::S_IFMT == fr_emulator::attrs::S_IFDIR
}

/// An access ACL sets the file's permission bits (`posix_acl_update_mode()`:
/// the ACL's owner, group or mask and other entries, and set-group-id
/// dropped for a caller outside the group without `CAP_FSETID`). fr records
/// that mode, and gives it to the real file too, as after a chmod (with the
/// owner's bits kept usable): on the host tree, where nothing keeps the
/// record after the session, the file then keeps real root's mode, and the
/// kernel's own new files in a directory inherit no set-group-id bit real
/// root's would not have. Whether it changed the real mode.
fn real_mode_follows(ctx: &Context, file: &OwnedFd, key: InodeKey, real: &Kstat) -> bool {
    use fr_emulator::attrs::{S_IFLNK, S_IFMT};
    let kind = real.mode & S_IFMT;
    if kind == S_IFLNK || !ctx.may_chmod_for_real(key, real) {
        return false;
    }
    let want = usable_perms(kind, ctx.inodes.view(key, real.attrs()).perms());
    if want == real.mode & 0o7777 {
        return false;
    }
    match chmod_real(file.as_fd(), want) {
        Ok(()) => true,
        Err(e) => {
            log::debug!("giving the real file the ACL's mode: {e}");
            false
        }
    }
}

/// `getxattr(path, name, value, size)`.
pub fn getxattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    on_devices(ctx, req, path(req, true), req.ptr(1), getxattr_args(req)?, Errno::NODATA)?
        .and_then(|args| get(ctx, req, path(req, true), args))
}

/// `lgetxattr(path, name, value, size)`.
pub fn lgetxattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    on_devices(ctx, req, path(req, false), req.ptr(1), getxattr_args(req)?, Errno::NODATA)?
        .and_then(|args| get(ctx, req, path(req, false), args))
}

/// `fgetxattr(fd, name, value, size)`.
pub fn fgetxattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    on_devices(ctx, req, fd(req), req.ptr(1), getxattr_args(req)?, Errno::NODATA)?
        .and_then(|args| get(ctx, req, fd(req), args))
}

/// `getxattrat(dirfd, path, at_flags, name, args, size)` (6.13).
pub fn getxattrat(ctx: &Context, req: &Request<'_>) -> Outcome {
    let (file, args) = getxattrat_args(req)?;
    on_devices(ctx, req, file, req.ptr(3), args, Errno::NODATA)?
        .and_then(|args| get(ctx, req, file, args))
}

/// Whether a read of `file`'s xattrs is the kernel's without a look at the
/// file: fr keeps no xattr of any file, and nothing of the lookup is fr's
/// (a descriptor, which the kernel refuses as fr would when it is
/// `O_PATH` or closed, or a path by a caller that may search every
/// directory). The kernel then answers as fr would: the file's own
/// attributes, and `ENODATA` for `trusted.*`, which it hides without
/// `CAP_SYS_ADMIN` in the initial namespace.
fn none_kept(ctx: &Context, req: &Request<'_>, file: &File) -> bool {
    use fr_emulator::rules::{CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH};
    if ctx.inodes.keeps_xattrs() {
        return false;
    }
    match file {
        File::Fd(_) => true,
        File::Path { .. } | File::At { .. } => {
            let creds = ctx.creds.get(req.tid);
            creds.capable(CAP_DAC_OVERRIDE) || creds.capable(CAP_DAC_READ_SEARCH)
        }
    }
}

fn get(ctx: &Context, req: &Request<'_>, file: File, Get { name, value, size }: Get) -> Outcome {
    if none_kept(ctx, req, &file) {
        return Ok(Reply::Continue("fr keeps no xattr of any file"));
    }
    let file = open(ctx, req, file)?;
    let (key, real) = stat(&file)?;
    let creds = ctx.creds.get(req.tid);
    if !rules::visible(&name, &creds) {
        return Err(Errno::NODATA);
    }
    let Some(kept) = ctx.inodes.xattrs(key, real.attrs()).remove(&name) else {
        return absent(&name);
    };
    answer(req, value, size, &kept)
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
    list(ctx, req, path(req, true), listxattr_args(req))
}

/// `llistxattr(path, list, size)`.
pub fn llistxattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    list(ctx, req, path(req, false), listxattr_args(req))
}

/// `flistxattr(fd, list, size)`.
pub fn flistxattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    list(ctx, req, fd(req), listxattr_args(req))
}

/// `listxattrat(dirfd, path, at_flags, list, size)` (6.13).
pub fn listxattrat(ctx: &Context, req: &Request<'_>) -> Outcome {
    let (file, args) = listxattrat_args(req)?;
    list(ctx, req, file, args)
}

/// The file's real names (as the supervisor can read them) followed by the
/// ones fr keeps, each NUL-terminated.
fn list(ctx: &Context, req: &Request<'_>, file: File, List { addr, size }: List) -> Outcome {
    if none_kept(ctx, req, &file) {
        return Ok(Reply::Continue("fr keeps no xattr of any file"));
    }
    let file = open(ctx, req, file)?;
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
    answer(req, addr, size, &names)
}

/// `removexattr(path, name)`.
pub fn removexattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    on_devices(ctx, req, path(req, true), req.ptr(1), removexattr_args(req)?, Errno::PERM)?
        .and_then(|name| remove(ctx, req, path(req, true), &name))
}

/// `lremovexattr(path, name)`.
pub fn lremovexattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    on_devices(ctx, req, path(req, false), req.ptr(1), removexattr_args(req)?, Errno::PERM)?
        .and_then(|name| remove(ctx, req, path(req, false), &name))
}

/// `fremovexattr(fd, name)`.
pub fn fremovexattr(ctx: &Context, req: &Request<'_>) -> Outcome {
    on_devices(ctx, req, fd(req), req.ptr(1), removexattr_args(req)?, Errno::PERM)?
        .and_then(|name| remove(ctx, req, fd(req), &name))
}

/// `removexattrat(dirfd, path, at_flags, name)` (6.13).
pub fn removexattrat(ctx: &Context, req: &Request<'_>) -> Outcome {
    let (file, name) = removexattrat_args(req)?;
    on_devices(ctx, req, file, req.ptr(3), name, Errno::PERM)?
        .and_then(|name| remove(ctx, req, file, &name))
}

fn remove(ctx: &Context, req: &Request<'_>, file: File, name: &[u8]) -> Outcome {
    let file = open(ctx, req, file)?;
    let (key, real) = stat(&file)?;
    may_change(file.as_fd(), &real)?;
    match ctx.inodes.removexattr(key, real.attrs(), name, &ctx.creds.get(req.tid)) {
        Err(XattrError::NoData) if name.starts_with(b"security.") => absent_security(&file, name),
        Err(XattrError::NoData) => absent(name),
        Ok(()) => {
            kernel_acl(ctx, &file, key, &real, name, None);
            if changes_the_inode(name, &real) {
                touch_ctime(ctx, file.as_fd(), key, &real, Touched::Xattr);
            }
            Ok(Reply::Value(0))
        }
        Err(e) => Err(errno(e)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::request::fake::Memory;

    fn req(mem: &Memory, arch: Arch, args: [u64; 6]) -> Request<'_> {
        Request::over(mem, arch, 0, args)
    }

    fn name_at(mem: &Memory, addr: u64) -> Result<(Vec<u8>, Namespace), Errno> {
        name(&req(mem, Arch::X86_64, [0; 6]), addr)
    }

    #[test]
    fn names_are_empty_short_enough_or_out_of_range() {
        let mem = Memory::new().put(0x1000, b"security.x\0user.y\0\0other.z\0");
        assert_eq!(name_at(&mem, 0x1000), Ok((b"security.x".to_vec(), Namespace::Emulated)));
        assert_eq!(name_at(&mem, 0x100b), Ok((b"user.y".to_vec(), Namespace::User)));
        assert_eq!(name_at(&mem, 0x1011), Err(Errno::RANGE));
        assert_eq!(name_at(&mem, 0x1012), Err(Errno::RANGE));
        // A namespace fr does not keep is the kernel's, like user.*.
        assert_eq!(name_at(&mem, 0x1013), Ok((b"other.z".to_vec(), Namespace::User)));
        assert_eq!(name_at(&mem, 0x2000), Err(Errno::FAULT));
        let mut long = b"trusted.".to_vec();
        long.resize(255, b'x');
        long.push(0);
        let mem = Memory::new().put(0x1000, &long);
        assert_eq!(name_at(&mem, 0x1000).map(|(n, _)| n.len()), Ok(255));
    }

    #[test]
    fn a_name_is_read_no_further_than_xattr_name_max_and_its_nul() {
        // fs/xattr.c: import_xattr_name() copies at most 256 bytes: a name
        // that fills them is ERANGE, whatever follows (here nothing).
        let mut long = b"trusted.".to_vec();
        long.resize(256, b'x');
        let mem = Memory::new().put(0x1000, &long);
        assert_eq!(name_at(&mem, 0x1000), Err(Errno::RANGE));
    }

    #[test]
    fn set_checks_flags_name_size_then_value() {
        let mem = Memory::new().put(0x1000, b"security.x\0user.y\0").put(0x2000, b"vv");
        let set = |args: [u64; 6]| setxattr_args(&req(&mem, Arch::X86_64, args));
        assert_eq!(
            set([0, 0x1000, 0x2000, 2, 1, 0]),
            Ok(Decoded::Args(Set {
                name: b"security.x".to_vec(),
                value: b"vv".to_vec(),
                flags: 1
            }))
        );
        // Bad flags come before a bad name; a bad name before a bad size.
        assert_eq!(set([0, 0x9000, 0x2000, 2, 4, 0]), Err(Errno::INVAL));
        assert_eq!(set([0, 0x9000, 0x2000, 1 << 20, 0, 0]), Err(Errno::FAULT));
        assert_eq!(set([0, 0x1000, 0x9000, 65537, 0, 0]), Err(Errno::TOOBIG));
        assert_eq!(set([0, 0x1000, 0x2000, 3, 0, 0]), Err(Errno::FAULT));
        // A user.* name is the kernel's, value and all.
        assert!(matches!(set([0, 0x100b, 0x9000, 1 << 20, 0, 0]), Ok(Decoded::Kernel(_))));
        // A NULL value of size 0 is an empty value.
        assert!(
            matches!(set([0, 0x1000, 0, 0, 0, 0]), Ok(Decoded::Args(Set { value, .. })) if value.is_empty())
        );
    }

    /// `struct xattr_args` of `value`, `size`, `flags`.
    fn xargs(value: u64, size: u32, flags: u32) -> Vec<u8> {
        [&value.to_le_bytes()[..], &size.to_le_bytes(), &flags.to_le_bytes()].concat()
    }

    #[test]
    fn xattr_args_are_a_struct_of_its_own_size() {
        let mut big = xargs(0x2000, 2, 0);
        big.extend_from_slice(&[0; 8]);
        big.push(1);
        let mem = Memory::new().put(0x1000, &big);
        let args = |a4: u64, a5: u64| xattr_args(&req(&mem, Arch::X86_64, [0, 0, 0, 0, a4, a5]));
        let want = XattrArgs { value: 0x2000, size: 2, flags: 0 };
        assert_eq!(args(0x1000, 16), Ok(want));
        assert_eq!(args(0x1000, 24), Ok(want));
        assert_eq!(args(0x1000, 25), Err(Errno::TOOBIG));
        assert_eq!(args(0x1000, 26), Err(Errno::TOOBIG));
        assert_eq!(args(0x1000, 15), Err(Errno::INVAL));
        assert_eq!(args(0x1000, 4097), Err(Errno::TOOBIG));
        assert_eq!(args(0x9000, 16), Err(Errno::FAULT));
    }

    #[test]
    fn xattr_args_tail_is_checked_before_the_struct_is_read() {
        // copy_struct_from_user(): a nonzero byte beyond the struct is
        // E2BIG even when the struct itself cannot be read.
        let mem = Memory::new().put(0x2000, &[0, 0, 0, 0, 7]);
        let args = xattr_args(&req(&mem, Arch::X86_64, [0, 0, 0, 0, 0x1ff4, 32]));
        assert_eq!(args, Err(Errno::TOOBIG));
    }

    #[test]
    fn xattr_args_value_is_a_whole_u64_on_every_abi() {
        // u64_to_user_ptr(args.value): a compat task's value with high bits
        // set points where it has no memory (EFAULT), not into its low 4 GiB.
        let mem = Memory::new().put(0x1000, &xargs(0x1_0000_2000, 2, 0));
        for arch in [Arch::I386, Arch::X32, Arch::X86_64] {
            let args = xattr_args(&req(&mem, arch, [0, 0, 0, 0, 0x1000, 16]));
            assert_eq!(args.map(|a| a.value), Ok(0x1_0000_2000), "{}", arch.name());
        }
    }

    #[test]
    fn xattrat_calls_check_their_args_then_at_flags_then_the_name() {
        let mem = Memory::new().put(0x1000, &xargs(0, 0, 0)).put(0x2000, b"security.x\0");
        let call = |at_flags: u64, name: u64| {
            getxattrat_args(&req(&mem, Arch::X86_64, [3, 0, at_flags, name, 0x1000, 16]))
        };
        assert_eq!(call(1, 0x9000), Err(Errno::INVAL));
        assert_eq!(call(0x100, 0x9000), Err(Errno::FAULT));
        let (file, get) = call(0x1000, 0x2000).unwrap();
        assert_eq!(file, File::At { dirfd: 3, addr: 0, flags: 0x1000 });
        assert_eq!(get, Decoded::Args(Get { name: b"security.x".to_vec(), value: 0, size: 0 }));
        let mem = Memory::new().put(0x1000, &xargs(0, 0, 1));
        let flags = getxattrat_args(&req(&mem, Arch::X86_64, [3, 0, 0x1000, 0, 0x1000, 16]));
        assert_eq!(flags, Err(Errno::INVAL));
    }
}
