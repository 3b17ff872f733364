//! Calls that make a file: `open openat creat openat2` with `O_CREAT` or
//! `O_TMPFILE`, `mkdir mkdirat`, `symlink symlinkat` (and, from
//! [`super::node`], `mknod` of fifos, sockets and regular files), and
//! those that make a name for one: `link linkat`, checked here with the
//! fake credentials and then done by the kernel.
//!
//! A new file belongs to the caller's fsuid and fsgid, or to its
//! directory's group when that is set-group-id ([`rules::new_inode`]). When
//! the file the kernel would make already shows that way (fake fs ids 0, no
//! recorded set-group-id directory), the caller may write anywhere
//! (`CAP_DAC_OVERRIDE`) and the mode leaves the user able to use the file,
//! the kernel makes it (`CONTINUE`). Otherwise fr makes it in the
//! target's directory, records it, and for an open hands the descriptor to
//! the target with `SECCOMP_IOCTL_NOTIF_ADDFD`.
//!
//! Not emulated (left to the kernel): `openat2` with `RESOLVE_*` flags, and
//! an `O_CREAT` open of a name that exists (nothing is made, or a dangling
//! symlink is followed).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use fr_emulator::attrs::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, S_ISGID, S_ISUID, S_IXGRP};
use fr_emulator::table::Xattrs;
use fr_emulator::{rules, Attrs, Creds, InodeKey, Kstat};
use rustix::fs::{self, AtFlags, Mode, OFlags, StatVfsMountFlags, StatxFlags};
use rustix::io::Errno;

use super::{
    passes_dac, read_name, read_plain_path, real_stat, refused, umask, unkept, Context, Decoded,
    Outcome, Reply, AT_EMPTY_PATH,
};
use crate::request::Request;
use crate::resolve::{LookupFlags, AT_FDCWD};

use crate::linux::{
    AT_SYMLINK_FOLLOW, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_PATH, O_TMPFILE,
    O_TMPFILE_BIT, STATX_ATTR_IMMUTABLE,
};
/// `VALID_OPEN_FLAGS` (`include/linux/fcntl.h`): the access modes and every
/// flag from `O_CREAT` to `__O_TMPFILE`.
const VALID_OPEN_FLAGS: u32 = 0o3 | 0o37_777_700;
/// `O_PATH_FLAGS`: what `O_PATH` may come with.
const O_PATH_FLAGS: u32 = O_DIRECTORY | O_NOFOLLOW | O_PATH | O_CLOEXEC;

/// Whether the kernel may make the file, before its directory is known:
/// the caller makes files as the kernel does ([`kernel_makes_as`]) and no
/// directory was ever recorded in a way that could shape a new file.
pub fn kernel_owner_is_right(ctx: &Context, creds: &Creds) -> bool {
    kernel_makes_as(creds) && !ctx.inodes.may_shape_new_files()
}

/// Whether the kernel may make the file in `parent`: [`kernel_makes_as`]
/// the caller, and the directory's record cannot shape the new file
/// (`InodeTable::shapes_new_files`).
pub fn kernel_makes_in(ctx: &Context, parent: &Parent, creds: &Creds) -> bool {
    kernel_makes_as(creds) && !ctx.inodes.shapes_new_files(parent.key, parent.real)
}

/// Whether the kernel's own new file, owned by the user, shows as the
/// caller's would (fake fs ids 0), and the caller may write to every
/// directory (`CAP_DAC_OVERRIDE`), as the kernel, which checks the user's
/// real credentials, lets it. A caller that dropped it meets the
/// directory's fake mode (`fs/namei.c: may_create()`).
fn kernel_makes_as(creds: &Creds) -> bool {
    creds.fsuid == 0 && creds.fsgid == 0 && creds.capable(rules::CAP_DAC_OVERRIDE)
}

/// The directory a file is made in, its fake view, and whether the caller
/// may write there; an existing name is `EEXIST` first, as in the kernel.
pub fn directory(
    ctx: &Context,
    dir: &OwnedFd,
    name: &[u8],
    creds: &Creds,
) -> Result<Parent, Errno> {
    let (key, real) = real_stat(dir.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS)?;
    let parent = Parent { key, real: real.attrs() };
    if let Err(why) = parent.may_create(ctx, creds) {
        let exists = fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE).is_ok();
        return Err(if exists { Errno::EXIST } else { why });
    }
    Ok(parent)
}

/// The directory a file is made in, as the inode table knows it.
#[derive(Debug, Clone, Copy)]
pub struct Parent {
    pub key: fr_emulator::InodeKey,
    pub real: Attrs,
}

impl Parent {
    /// `fs/namei.c: may_create()` in this directory by `creds`, its access
    /// ACL included (`generic_permission()`).
    pub fn may_create(&self, ctx: &Context, creds: &Creds) -> Result<(), Errno> {
        let view = ctx.inodes.view(self.key, self.real);
        let acl = ctx.inodes.access_acl(self.key, self.real);
        rules::may_create_with_acl(&view, acl.as_ref(), creds).map_err(refused)
    }

    /// The new file's attributes and xattrs ([`fr_emulator::InodeTable::new_file`]).
    pub fn new_file(
        &self,
        ctx: &Context,
        kind: u32,
        perms: u32,
        umask: u32,
        creds: &Creds,
    ) -> (Attrs, Xattrs) {
        ctx.inodes.new_file(self.key, self.real, kind, perms, umask, creds)
    }
}

/// Records `attrs` for the file `name` fr just made in `dir`; returns its
/// key. If the journal cannot keep the record, the file goes again and the
/// call fails with the journal's errno (`ENOSPC`, `EDQUOT`, ...): real
/// root's call on a file system without room makes no file.
pub fn record(
    ctx: &Context,
    dir: &OwnedFd,
    name: &[u8],
    (attrs, xattrs): (Attrs, Xattrs),
) -> Result<InodeKey, Errno> {
    let file =
        fs::openat(dir, name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
    let (key, real) = real_stat(file.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS)?;
    if let Err(e) = ctx.inodes.create_with(key, attrs, xattrs) {
        unmake(dir, name, key, attrs.is_dir());
        return Err(unkept(e));
    }
    hand_over(ctx, file.as_fd(), &real, &attrs);
    Ok(key)
}

/// Subuid mode: gives the file fr just made for the caller the owner it
/// recorded, for real, where the namespace maps it. A thread that dropped
/// root holds its ids in the kernel too ([`super::ident`]), and the
/// kernel's own checks of its later calls (opening the file, renaming a
/// directory it made, ...) must see it own what it made. Otherwise the
/// record alone holds the owner, as in every other mode.
fn hand_over(ctx: &Context, file: BorrowedFd<'_>, real: &Kstat, attrs: &Attrs) {
    if ctx.namespace != crate::Namespace::Subuid {
        return;
    }
    let ids = ctx.inodes.ids();
    if ids.uid_inside(real.uid) != attrs.uid || ids.gid_inside(real.gid) != attrs.gid {
        super::owner::kernel_chown(ctx, file, real, Some(attrs.uid), Some(attrs.gid));
    }
}

/// Removes the file `name` in `dir` that fr made, if the name still
/// holds the file `key` (another thread of the target may have renamed
/// it meanwhile); whether it did.
fn unmake(dir: &OwnedFd, name: &[u8], key: InodeKey, is_dir: bool) -> bool {
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let now = fs::openat(dir, name, flags, Mode::empty())
        .and_then(|f| real_stat(f.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS));
    if !now.is_ok_and(|(now, _)| now == key) {
        return false;
    }
    let flags = if is_dir { AtFlags::REMOVEDIR } else { AtFlags::empty() };
    match fs::unlinkat(dir, name, flags) {
        Ok(()) => true,
        Err(e) => {
            log::warn!("removing a file fr made for a call that failed: {e}; it stays");
            false
        }
    }
}

/// Holds an `O_PATH` descriptor of the unnamed file `file` for the rest of
/// the session (see [`Context::pinned`]): a new open file description, so
/// that no lock or offset of the workload's is shared. Once many are held
/// (a quarter of fr's descriptor limit), those since linked into a
/// directory are let go: a named file's last unlink is one fr sees. If
/// that leaves too many and the limit cannot grow, the oldest quarter go
/// with their records (a file made later with one's inode number must not
/// show it; a workload still holding one sees its real attributes), so
/// that fr never runs out of descriptors for the workload's other calls.
fn pin(ctx: &Context, file: &OwnedFd) {
    use std::os::fd::AsRawFd;
    let link = format!("/proc/self/fd/{}", file.as_raw_fd());
    let held = match fs::openat(fs::CWD, link, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()) {
        Ok(held) => held,
        Err(e) => {
            log::debug!("holding an O_TMPFILE file open: {e}; its inode number may be reused");
            return;
        }
    };
    let mut pinned = ctx.pinned.lock().unwrap_or_else(|e| e.into_inner());
    let room = || crate::descriptors::quarter_of_limit().max(16);
    if pinned.len() >= room() {
        pinned.retain(|f| fs::fstat(f).is_ok_and(|st| st.st_nlink == 0));
    }
    if pinned.len() >= room() && !crate::descriptors::raise_limit() {
        let oldest = pinned.len() / 4 + 1;
        for gone in pinned.drain(..oldest) {
            if let Ok((key, real)) =
                real_stat(gone.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS)
            {
                if real.nlink == 0 {
                    ctx.inodes.forget(key);
                }
            }
        }
        log::debug!(
            "let {oldest} unnamed files fr made go, with their records: no descriptors left"
        );
    }
    pinned.push(held);
}

/// A file fr made and recorded for an open, undone if the target cannot
/// take the descriptor (`SECCOMP_IOCTL_NOTIF_ADDFD` fails with `EMFILE`
/// when its descriptor table is full): real root's open takes the
/// descriptor before it makes the file (`fs/open.c: do_sys_openat2()`
/// calls `get_unused_fd_flags()` first), so its failed open leaves none.
#[derive(Debug)]
pub struct Made {
    key: InodeKey,
    /// The directory and name; `None` for an `O_TMPFILE` file, which goes
    /// with its last descriptor.
    at: Option<(OwnedFd, Vec<u8>)>,
}

impl Made {
    /// Removes the file and forgets its record.
    pub fn undo(self, ctx: &Context) {
        let gone = match &self.at {
            Some((dir, name)) => unmake(dir, name, self.key, false),
            None => true,
        };
        if gone {
            ctx.inodes.forget(self.key);
        }
    }
}

/// The real mode of a file fr makes: the fake one, kept usable by the user.
fn usable(attrs: &Attrs) -> Mode {
    Mode::from_raw_mode(super::usable_perms(attrs.mode & S_IFMT, attrs.perms() & 0o777))
}

/// `mkdir(path, mode)`.
pub fn mkdir(ctx: &Context, req: &Request<'_>) -> Outcome {
    make_dir(ctx, req, AT_FDCWD, req.ptr(0), req.uint(1))
}

/// `mkdirat(dirfd, path, mode)`.
pub fn mkdirat(ctx: &Context, req: &Request<'_>) -> Outcome {
    make_dir(ctx, req, req.int(0), req.ptr(1), req.uint(2))
}

/// `fs/namei.c: do_mkdirat()`: the mode keeps only the permission and
/// sticky bits; a trailing slash is allowed.
fn make_dir(ctx: &Context, req: &Request<'_>, dirfd: i32, path_addr: u64, mode: u32) -> Outcome {
    let creds = ctx.creds.get(req.tid);
    let perms = mode & 0o1777;
    if kernel_owner_is_right(ctx, &creds) && perms & 0o700 == 0o700 {
        return Ok(Reply::Continue("the kernel's directory is already right"));
    }
    let path = read_plain_path(req, path_addr)?;
    let (dir, name) = ctx.parent(req, dirfd, &path, true)?;
    let parent = directory(ctx, &dir, &name, &creds)?;
    if kernel_makes_in(ctx, &parent, &creds) && perms & 0o700 == 0o700 {
        return Ok(Reply::Continue("the kernel's directory is right in this one"));
    }
    let made = parent.new_file(ctx, S_IFDIR, perms, umask(req)?, &creds);
    fs::mkdirat(&dir, name.as_slice(), usable(&made.0))?;
    record(ctx, &dir, &name, made)?;
    Ok(Reply::Value(0))
}

/// `symlink(target, path)`.
pub fn symlink(ctx: &Context, req: &Request<'_>) -> Outcome {
    make_symlink(ctx, req, req.ptr(0), AT_FDCWD, req.ptr(1))
}

/// `symlinkat(target, dirfd, path)`.
pub fn symlinkat(ctx: &Context, req: &Request<'_>) -> Outcome {
    make_symlink(ctx, req, req.ptr(0), req.int(1), req.ptr(2))
}

fn make_symlink(
    ctx: &Context,
    req: &Request<'_>,
    target_addr: u64,
    dirfd: i32,
    path_addr: u64,
) -> Outcome {
    let creds = ctx.creds.get(req.tid);
    if kernel_owner_is_right(ctx, &creds) {
        return Ok(Reply::Continue("the kernel's symlink is already right"));
    }
    let target = read_plain_path(req, target_addr)?;
    let path = read_plain_path(req, path_addr)?;
    let (dir, name) = ctx.parent(req, dirfd, &path, false)?;
    let parent = directory(ctx, &dir, &name, &creds)?;
    if kernel_makes_in(ctx, &parent, &creds) {
        return Ok(Reply::Continue("the kernel's symlink is right in this directory"));
    }
    let (attrs, _) = parent.new_file(ctx, S_IFLNK, 0o777, 0, &creds);
    fs::symlinkat(target.as_slice(), &dir, name.as_slice())?;
    record(ctx, &dir, &name, (attrs, Xattrs::new()))?;
    Ok(Reply::Value(0))
}

/// `open(path, flags, mode)`.
pub fn open(ctx: &Context, req: &Request<'_>) -> Outcome {
    open_at(ctx, req, AT_FDCWD, req.ptr(0), req.uint(1), req.uint(2))
}

/// `openat(dirfd, path, flags, mode)`.
pub fn openat(ctx: &Context, req: &Request<'_>) -> Outcome {
    open_at(ctx, req, req.int(0), req.ptr(1), req.uint(2), req.uint(3))
}

/// `creat(path, mode)`: `open(path, O_CREAT | O_WRONLY | O_TRUNC, mode)`.
pub fn creat(ctx: &Context, req: &Request<'_>) -> Outcome {
    open_at(ctx, req, AT_FDCWD, req.ptr(0), O_CREAT | 0o1 | 0o1000, req.uint(1))
}

/// `openat2(dirfd, path, how, size)`: emulated like `openat` when `how`
/// asks for no `RESOLVE_*` restriction.
pub fn openat2(ctx: &Context, req: &Request<'_>) -> Outcome {
    open_how(req)?.and_then(|how| open_at(ctx, req, req.int(0), req.ptr(1), how.flags, how.mode))
}

/// `struct open_how`'s flags and mode, when fr may take them as an
/// `openat`'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenHow {
    pub flags: u32,
    pub mode: u32,
}

/// `openat2`'s `struct open_how { u64 flags; u64 mode; u64 resolve; }` at
/// argument 2, of the size at argument 3, as `fs/open.c: openat2()` takes
/// it (`EINVAL` below `OPEN_HOW_SIZE_VER0`, `E2BIG` above a page, then
/// [`Request::read_struct`]) and `build_open_flags()` checks it: unknown
/// flags, `O_PATH` with flags beyond `O_PATH_FLAGS`, a mode beyond
/// `S_IALLUGO` or any mode without a file to make are `EINVAL`. Whatever
/// the kernel refuses, and the `RESOLVE_*` lookups fr does not emulate,
/// are the kernel's.
pub fn open_how(req: &Request<'_>) -> Result<Decoded<OpenHow>, Errno> {
    const OPEN_HOW_VER0: usize = 24;
    const PAGE_SIZE: usize = 4096;
    let size = req.ulong(3) as usize;
    if !(OPEN_HOW_VER0..=PAGE_SIZE).contains(&size) {
        return Ok(Decoded::Kernel("openat2: the kernel checks the size of open_how"));
    }
    let how = match req.read_struct(req.ptr(2), OPEN_HOW_VER0, size) {
        Err(Errno::FAULT) => return Ok(Decoded::Kernel("openat2: the kernel reports EFAULT")),
        Err(Errno::TOOBIG) => return Ok(Decoded::Kernel("openat2: the kernel reports E2BIG")),
        other => other?,
    };
    let word = |i: usize| u64::from_le_bytes(how[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    let (flags, mode, resolve) = (word(0), word(1), word(2));
    if resolve != 0 {
        return Ok(Decoded::Kernel("openat2 with RESOLVE_*: the kernel's"));
    }
    let creates = flags & u64::from(O_CREAT | O_TMPFILE_BIT) != 0;
    if flags & !u64::from(VALID_OPEN_FLAGS) != 0
        || flags & u64::from(O_PATH) != 0 && flags & !u64::from(O_PATH_FLAGS) != 0
        || (if creates { mode & !0o7777 != 0 } else { mode != 0 })
    {
        return Ok(Decoded::Kernel("openat2 flags or mode the kernel refuses (EINVAL)"));
    }
    Ok(Decoded::Args(OpenHow { flags: flags as u32, mode: mode as u32 }))
}

/// An open that makes a file, as fr does it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opening {
    /// `O_TMPFILE`: an unnamed file in the directory the path names.
    pub tmpfile: bool,
    /// `O_EXCL`.
    pub excl: bool,
    /// The new descriptor is close-on-exec.
    pub cloexec: bool,
    /// The permission bits asked for (before the umask).
    pub perms: u32,
    /// The caller's other flags, which the file is opened with (access
    /// mode, `O_APPEND`, ...): all but those fr decides, creation and
    /// close-on-exec.
    pub flags: u32,
}

/// What an open's `flags` and `mode` make: a file (`O_CREAT` or
/// `O_TMPFILE`), or nothing, which is the kernel's. As `fs/open.c:
/// build_open_how()` cleans the flags of the calls before `openat2`,
/// unknown flags go, and `O_PATH` keeps only `O_PATH_FLAGS` (no
/// `O_CREAT`); then `build_open_flags()` refuses (`EINVAL`, the kernel's
/// to say) `O_CREAT | O_DIRECTORY` (6.4) and an `O_TMPFILE` without
/// `O_DIRECTORY` or write access.
pub fn opening(flags: u32, mode: u32) -> Decoded<Opening> {
    let mut flags = flags & VALID_OPEN_FLAGS;
    if flags & O_PATH != 0 {
        flags &= O_PATH_FLAGS;
    }
    if flags & (O_CREAT | O_DIRECTORY) == O_CREAT | O_DIRECTORY
        || flags & O_TMPFILE_BIT != 0 && (flags & O_DIRECTORY == 0 || flags & 0o3 == 0)
    {
        return Decoded::Kernel("open flags the kernel refuses (EINVAL)");
    }
    let tmpfile = flags & O_TMPFILE == O_TMPFILE;
    if flags & O_CREAT == 0 && !tmpfile {
        return Decoded::Kernel(NO_FILE);
    }
    Decoded::Args(Opening {
        tmpfile,
        excl: flags & O_EXCL != 0,
        cloexec: flags & O_CLOEXEC != 0,
        perms: mode & 0o7777,
        flags: flags & !(O_CREAT | O_EXCL | O_CLOEXEC | O_TMPFILE),
    })
}

/// An open that may make a file (`fs/namei.c: open_last_lookups()`).
fn open_at(
    ctx: &Context,
    req: &Request<'_>,
    dirfd: i32,
    path_addr: u64,
    flags: u32,
    mode: u32,
) -> Outcome {
    match opening(flags, mode) {
        Decoded::Args(open) => make_file(ctx, req, dirfd, path_addr, open, flags),
        // An open of an existing file (O_NOATIME, or writing where the
        // filter sends those): checked with the fake credentials.
        Decoded::Kernel(NO_FILE) => {
            super::access::existing(ctx, req, dirfd, path_addr, flags, NO_FILE)
        }
        Decoded::Kernel(why) => Ok(Reply::Continue(why)),
    }
}

/// Why an open that makes no file is the kernel's.
const NO_FILE: &str = "no file is made";

fn make_file(
    ctx: &Context,
    req: &Request<'_>,
    dirfd: i32,
    path_addr: u64,
    Opening { tmpfile, excl, cloexec, perms, flags }: Opening,
    asked: u32,
) -> Outcome {
    let creds = ctx.creds.get(req.tid);
    if kernel_owner_is_right(ctx, &creds) && kernel_keeps(perms) {
        return Ok(Reply::Continue("the kernel's file is already right"));
    }
    let path = read_plain_path(req, path_addr)?;
    let base = OFlags::from_bits_retain(flags) | OFlags::CLOEXEC;
    if tmpfile {
        let dir = ctx.lookup(req, dirfd, &path, LookupFlags { follow: true, empty_path: false })?;
        let (key, real) = real_stat(dir.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS)?;
        let parent = Parent { key, real: real.attrs() };
        parent.may_create(ctx, &creds)?;
        let (attrs, xattrs) = parent.new_file(ctx, S_IFREG, perms, umask(req)?, &creds);
        // O_EXCL keeps the file from ever being linked into a directory.
        let excl = if excl { OFlags::EXCL } else { OFlags::empty() };
        let file = fs::openat(
            &dir,
            ".",
            base | excl | OFlags::from_bits_retain(O_TMPFILE),
            usable(&attrs),
        )?;
        let (key, real) = real_stat(file.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS)?;
        // Refused: the unnamed file goes with the descriptor.
        ctx.inodes.create_with(key, attrs, xattrs).map_err(unkept)?;
        hand_over(ctx, file.as_fd(), &real, &attrs);
        pin(ctx, &file);
        return Ok(Reply::Fd { file, cloexec, made: Some(Made { key, at: None }) });
    }
    if path.ends_with(b"/") {
        return Ok(Reply::Continue("a trailing slash: the kernel's EISDIR or ENOENT"));
    }
    let (dir, name) = ctx.parent(req, dirfd, &path, false)?;
    if fs::statx(&dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE).is_ok() {
        const EXISTS: &str = "the name exists: nothing new is made";
        // O_EXCL: the kernel's EEXIST comes before any permission check.
        if excl {
            return Ok(Reply::Continue(EXISTS));
        }
        return super::access::existing(ctx, req, dirfd, path_addr, asked, EXISTS);
    }
    let parent = directory(ctx, &dir, &name, &creds)?;
    if kernel_makes_in(ctx, &parent, &creds) && kernel_keeps(perms) {
        return Ok(Reply::Continue("the kernel's file is right in this directory"));
    }
    let (attrs, xattrs) = parent.new_file(ctx, S_IFREG, perms, umask(req)?, &creds);
    let made = fs::openat(
        &dir,
        name.as_slice(),
        base | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW,
        usable(&attrs),
    );
    let file = match made {
        Ok(file) => file,
        // Someone made the name meanwhile: open it as the kernel would.
        Err(Errno::EXIST) => return Ok(Reply::Continue("the name appeared meanwhile")),
        Err(e) => return Err(e),
    };
    let (key, real) = real_stat(file.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS)?;
    if let Err(e) = ctx.inodes.create_with(key, attrs, xattrs) {
        drop(file);
        unmake(&dir, &name, key, false);
        return Err(unkept(e));
    }
    hand_over(ctx, file.as_fd(), &real, &attrs);
    Ok(Reply::Fd { file, cloexec, made: Some(Made { key, at: Some((dir, name)) }) })
}

/// Whether the kernel's file in the mode `perms` asks for stays what real
/// root's would be: the user can use it (`rw` for its owner), and it has
/// no set-user-id or set-group-id bit, which the workload's first write or
/// truncate would clear for real, lacking `CAP_FSETID` in the initial
/// namespace (`fs/attr.c: setattr_should_drop_suidgid()` asks `capable()`),
/// where real root's keeps them. fr makes and records such a file itself,
/// so that the record keeps the bits.
fn kernel_keeps(perms: u32) -> bool {
    perms & 0o600 == 0o600 && perms & (S_ISUID | S_ISGID) == 0
}

/// `link(old, new)`.
pub fn link(ctx: &Context, req: &Request<'_>) -> Outcome {
    link_at(ctx, req, (AT_FDCWD, req.ptr(0)), (AT_FDCWD, req.ptr(1)), 0)
}

/// `linkat(olddirfd, old, newdirfd, new, flags)`.
pub fn linkat(ctx: &Context, req: &Request<'_>) -> Outcome {
    link_at(ctx, req, (req.int(0), req.ptr(1)), (req.int(2), req.ptr(3)), req.int(4))
}

/// A new name for a file, which the kernel would allow by the user's real
/// credentials; fr first checks it with the fake ones, in the order of
/// `fs/namei.c: do_linkat()`: the old name's lookup (`AT_SYMLINK_FOLLOW`,
/// `AT_EMPTY_PATH`), the new name's directory, an existing new name
/// (`EEXIST`, `filename_create()`), a read-only mount or two mounts (the
/// kernel's `EROFS` and `EXDEV`), [`may_linkat`] (`EPERM`), then
/// `may_create()` in the new directory (`EACCES`, `vfs_link()`); then the
/// kernel makes the link. The name shares the file's record, so nothing
/// is recorded. Root (`CAP_DAC_OVERRIDE` and `CAP_FOWNER`) passes every
/// check and goes straight to the kernel.
///
/// With `AT_EMPTY_PATH` and an empty name the kernel also wants the
/// descriptor opened by the caller's own credentials, or
/// `CAP_DAC_READ_SEARCH` (`LOOKUP_LINKAT_EMPTY`, Linux 6.10): real root
/// has it, the workload has it only in its namespace, so fr makes such a
/// link for a caller whose fake credentials have it ([`link_descriptor`]).
/// For others fr does not know who opened the descriptor: the kernel
/// decides.
fn link_at(
    ctx: &Context,
    req: &Request<'_>,
    old: (i32, u64),
    new: (i32, u64),
    flags: i32,
) -> Outcome {
    let how = match link_how(flags) {
        Decoded::Args(how) => how,
        Decoded::Kernel(why) => return Ok(Reply::Continue(why)),
    };
    let creds = ctx.creds.get(req.tid);
    let old_name = read_name(req, old.1, flags)?;
    if old_name.is_none() && creds.capable(rules::CAP_DAC_READ_SEARCH) {
        return link_descriptor(ctx, req, old.0, new);
    }
    if passes_dac(&creds) {
        return Ok(Reply::Continue("the caller may link any file anywhere"));
    }
    let old_path = old_name.unwrap_or_default();
    let file = ctx.lookup(req, old.0, &old_path, how)?;
    let new_path = read_plain_path(req, new.1)?;
    let (dir, name) = ctx.parent(req, new.0, &new_path, false)?;
    if fs::statx(&dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE).is_ok() {
        return Err(Errno::EXIST);
    }
    let mask = StatxFlags::BASIC_STATS | StatxFlags::MNT_ID;
    let (key, real) = real_stat(file.as_fd(), AtFlags::empty(), mask)?;
    let (dir_key, dir_real) = real_stat(dir.as_fd(), AtFlags::empty(), mask)?;
    if real.mnt_id != dir_real.mnt_id
        || fs::fstatvfs(&dir)?.f_flag.contains(StatVfsMountFlags::RDONLY)
    {
        return Ok(Reply::Continue("two mounts or a read-only one: the kernel's EXDEV or EROFS"));
    }
    may_linkat(ctx, key, &real, &creds)?;
    Parent { key: dir_key, real: dir_real.attrs() }.may_create(ctx, &creds)?;
    Ok(Reply::Continue("the caller may make the link"))
}

/// `linkat(fd, "", ..., AT_EMPTY_PATH)` by a caller with
/// `CAP_DAC_READ_SEARCH`, made by fr through the target's descriptor's
/// magic link (`/proc/<tid>/fd/N` with `AT_SYMLINK_FOLLOW`, which needs no
/// capability): the way an `O_TMPFILE` file is given a name.
fn link_descriptor(ctx: &Context, req: &Request<'_>, fd: i32, new: (i32, u64)) -> Outcome {
    let new_path = read_plain_path(req, new.1)?;
    let (dir, name) = ctx.parent(req, new.0, &new_path, false)?;
    let old = match fd {
        AT_FDCWD => format!("/proc/{}/cwd", req.tid),
        fd if fd >= 0 => format!("/proc/{}/fd/{fd}", req.tid),
        _ => return Err(Errno::BADF),
    };
    req.check_valid()?;
    fs::linkat(fs::CWD, old.as_str(), &dir, name.as_slice(), AtFlags::SYMLINK_FOLLOW)?;
    Ok(Reply::Value(0))
}

/// How `linkat`'s `flags` look the old name up: `AT_SYMLINK_FOLLOW` and
/// `AT_EMPTY_PATH`; any other flag is the kernel's `EINVAL`.
pub fn link_how(flags: i32) -> Decoded<LookupFlags> {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Decoded::Kernel("flags the kernel refuses (EINVAL)");
    }
    Decoded::Args(LookupFlags {
        follow: flags & AT_SYMLINK_FOLLOW != 0,
        empty_path: flags & AT_EMPTY_PATH != 0,
    })
}

/// `fs/namei.c: may_linkat()`: while `fs.protected_hardlinks` is set, a
/// caller that neither owns the file nor has `CAP_FOWNER` may link only a
/// safe source (`safe_hardlink_source()`): a regular file, not set-user-id,
/// not set-group-id and group-executable, not immutable, that it may read
/// and write (`inode_permission()`, the file's access ACL included); else
/// `EPERM`.
fn may_linkat(ctx: &Context, key: InodeKey, real: &Kstat, creds: &Creds) -> Result<(), Errno> {
    let view = ctx.inodes.view(key, real.attrs());
    // The owner and CAP_FOWNER pass whatever the sysctl says: ask it last.
    if view.uid == creds.fsuid || creds.capable(rules::CAP_FOWNER) || !protected_hardlinks() {
        return Ok(());
    }
    let acl = ctx.inodes.access_acl(key, real.attrs());
    let safe = view.mode & S_IFMT == S_IFREG
        && view.mode & S_ISUID == 0
        && view.mode & (S_ISGID | S_IXGRP) != S_ISGID | S_IXGRP
        && real.attributes & STATX_ATTR_IMMUTABLE == 0
        && rules::permitted_with_acl(
            &view,
            acl.as_ref(),
            rules::MAY_READ | rules::MAY_WRITE,
            creds,
        );
    if safe {
        Ok(())
    } else {
        Err(Errno::PERM)
    }
}

/// `/proc/sys/fs/protected_hardlinks`, read at each link (a global
/// sysctl that may change); unreadable counts as set, the usual setting.
fn protected_hardlinks() -> bool {
    crate::procfs::protected_hardlinks()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::request::fake::Memory;

    use crate::linux::{O_APPEND, O_RDWR, O_WRONLY};

    fn made(flags: u32, mode: u32) -> Option<Opening> {
        match opening(flags, mode) {
            Decoded::Args(o) => Some(o),
            Decoded::Kernel(_) => None,
        }
    }

    /// What `openat2` makes of the `open_how` at 0x1000 of `size` bytes.
    fn openat2(mem: &Memory, size: u64) -> Result<Option<Opening>, Errno> {
        let req = Request::over(mem, Arch::X86_64, 437, [0, 0, 0x1000, size, 0, 0]);
        Ok(match open_how(&req)? {
            Decoded::Args(how) => made(how.flags, how.mode),
            Decoded::Kernel(_) => None,
        })
    }

    fn how(flags: u64, mode: u64, resolve: u64) -> Vec<u8> {
        [flags.to_le_bytes(), mode.to_le_bytes(), resolve.to_le_bytes()].concat()
    }

    #[test]
    fn opens_make_files_with_o_creat_or_o_tmpfile() {
        let open = made(O_CREAT | O_EXCL | O_CLOEXEC | O_RDWR | O_APPEND, 0o104_755).unwrap();
        assert_eq!(
            open,
            Opening {
                tmpfile: false,
                excl: true,
                cloexec: true,
                perms: 0o4755,
                flags: O_RDWR | O_APPEND
            }
        );
        assert_eq!(
            made(O_TMPFILE | O_WRONLY, 0o600).map(|o| (o.tmpfile, o.flags)),
            Some((true, O_WRONLY))
        );
        assert_eq!(made(O_RDWR | O_APPEND, 0o644), None);
    }

    #[test]
    fn flags_the_kernel_refuses_or_ignores_make_nothing() {
        // fs/open.c: build_open_flags() refuses O_CREAT | O_DIRECTORY (6.4),
        // and an O_TMPFILE without O_DIRECTORY or without write access.
        assert_eq!(made(O_CREAT | O_DIRECTORY | O_RDWR, 0o644), None);
        assert_eq!(made(O_TMPFILE | O_CREAT | O_RDWR, 0o600), None);
        assert_eq!(made(0o20_000_000 | O_CREAT | O_RDWR, 0o600), None);
        assert_eq!(made(O_TMPFILE, 0o600), None);
        // build_open_how(): O_PATH keeps only O_PATH_FLAGS, so O_CREAT goes.
        assert_eq!(made(O_PATH | O_CREAT, 0o644), None);
        // ... and unknown flags go before anything looks at them.
        assert_eq!(made(O_CREAT | 0o30 | 0x4000_0000, 0o644).map(|o| o.flags), Some(0));
    }

    #[test]
    fn open_how_is_taken_as_openat2_checks_it() {
        let mem = Memory::new().put(0x1000, &how(u64::from(O_CREAT | O_WRONLY), 0o640, 0));
        let want =
            Opening { tmpfile: false, excl: false, cloexec: false, perms: 0o640, flags: O_WRONLY };
        assert_eq!(openat2(&mem, 24), Ok(Some(want)));
        assert_eq!(openat2(&mem, 23), Ok(None));
        assert_eq!(openat2(&mem, 25), Ok(None));
        let mem = Memory::new().put(0x1000, &how(u64::from(O_CREAT), 0o640, 1));
        assert_eq!(openat2(&mem, 24), Ok(None));
        let mem = Memory::new().put(0x1000, &how(u64::from(O_CREAT), 0o10_000, 0));
        assert_eq!(openat2(&mem, 24), Ok(None));
        assert_eq!(openat2(&Memory::new(), 24), Ok(None));
    }

    #[test]
    fn open_how_refusals_are_the_kernels() {
        // copy_struct_from_user(): a larger struct must end in zeros, and
        // be no larger than a page; E2BIG otherwise.
        let mut bigger = how(u64::from(O_CREAT | O_WRONLY), 0o640, 0);
        bigger.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        let mem = Memory::new().put(0x1000, &bigger);
        assert_eq!(openat2(&mem, 32), Ok(None));
        assert!(openat2(&mem, 31).is_ok_and(|o| o.is_some()));
        let mut page = how(u64::from(O_CREAT | O_WRONLY), 0o640, 0);
        page.resize(4097, 0);
        let mem = Memory::new().put(0x1000, &page);
        assert!(openat2(&mem, 4096).is_ok_and(|o| o.is_some()));
        assert_eq!(openat2(&mem, 4097), Ok(None));
        // build_open_flags(): openat2 refuses unknown flags, a mode without
        // a file to make, and O_PATH with any flag beyond O_PATH_FLAGS.
        for (flags, mode) in [(O_CREAT | 0o10, 0o640), (O_RDWR, 0o640), (O_PATH | O_CREAT, 0o640)] {
            let mem = Memory::new().put(0x1000, &how(u64::from(flags), mode, 0));
            assert_eq!(openat2(&mem, 24), Ok(None), "{flags:#o} {mode:#o}");
        }
    }
}
