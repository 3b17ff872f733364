//! What the handlers do on the host for a target: the status of the file
//! a path or descriptor names (`statx` through `/proc/<tid>/...` magic
//! links), the checks before a change (`mnt_want_write()`, immutable
//! files), and the real changes fr makes (a usable mode, a ctime moved as
//! real root's change would move it).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use fr_emulator::{InodeKey, Kstat, Timestamp};
use rustix::fs::{self, AtFlags, StatxFlags, StatxTimestamp};
use rustix::io::Errno;

use super::Context;
use crate::bounds::Reach;
use crate::request::Request;
use crate::resolve::{self, LookupFlags};

/// Where a lone name (no slash, not `.`, `..` or a name that may lead into
/// procfs's `self`) is looked up: `/proc/<tid>/cwd/NAME` from fr's cwd, or
/// NAME in the duplicate of the target's `dirfd` (`/proc/<tid>/fd/<dirfd>/NAME`
/// where none can be had). The kernel looks up that one component in the
/// target's directory, crossing no symlink.
pub(super) struct Lone {
    dir: Option<OwnedFd>,
    pub name: std::ffi::OsString,
}

impl Lone {
    /// The directory [`Lone::name`] is relative to.
    pub fn dir(&self) -> BorrowedFd<'_> {
        self.dir.as_ref().map_or(fs::CWD, |d| d.as_fd())
    }
}

/// The [`Lone`] lookup of `path` from the target's `dirfd`; `None` for any
/// other path, and for a `dirfd` the target does not have (the full lookup
/// then gives the kernel's errno).
pub(super) fn lone_name(req: &Request<'_>, dirfd: i32, path: &[u8]) -> Option<Lone> {
    use std::os::unix::ffi::OsStringExt;
    let lone = !path.is_empty()
        && !path.contains(&b'/')
        && path != b"."
        && path != b".."
        && !resolve::names_proc_self(path);
    if !lone {
        return None;
    }
    let via_proc = |dir: String| {
        let mut name = format!("/proc/{}/{dir}/", req.tid).into_bytes();
        name.extend_from_slice(path);
        Some(Lone { dir: None, name: std::ffi::OsString::from_vec(name) })
    };
    match dirfd {
        resolve::AT_FDCWD => via_proc("cwd".to_string()),
        fd if fd >= 0 => match req.dup(fd) {
            Ok(dir) => {
                Some(Lone { dir: Some(dir), name: std::ffi::OsString::from_vec(path.to_vec()) })
            }
            Err(Errno::NOSYS) => via_proc(format!("fd/{fd}")),
            Err(_) => None,
        },
        _ => None,
    }
}

/// The lookup of a lone name (see [`lone_name`]) with one `openat`, for a
/// caller that may search everywhere. `None` when it does not apply, when
/// the open fails (the full lookup then gives the kernel's errno: `EBADF`
/// for a closed dirfd, say) or when the name is a symlink to follow.
pub(super) fn lone_open(
    req: &Request<'_>,
    dirfd: i32,
    path: &[u8],
    how: LookupFlags,
) -> Result<Option<OwnedFd>, Errno> {
    let Some(lone) = lone_name(req, dirfd, path) else { return Ok(None) };
    let flags = fs::OFlags::PATH | fs::OFlags::NOFOLLOW | fs::OFlags::CLOEXEC;
    let Ok(file) = fs::openat(lone.dir(), &lone.name, flags, fs::Mode::empty()) else {
        return Ok(None);
    };
    req.check_valid()?;
    if how.follow {
        let st = fs::statx(&file, "", AtFlags::EMPTY_PATH, StatxFlags::TYPE)?;
        if u32::from(st.stx_mode) & fr_emulator::attrs::S_IFMT == fr_emulator::attrs::S_IFLNK {
            return Ok(None);
        }
    }
    Ok(Some(file))
}

fn timestamp(t: StatxTimestamp) -> Timestamp {
    Timestamp { sec: t.tv_sec, nsec: t.tv_nsec }
}

/// The real status of the file `file` refers to, with host ids, and its key
/// in the inode table. `flags` may carry the caller's `AT_STATX_*` sync bits.
pub fn real_stat(
    file: BorrowedFd<'_>,
    flags: AtFlags,
    mask: StatxFlags,
) -> Result<(InodeKey, Kstat), Errno> {
    let st = fs::statx(file, "", flags | AtFlags::EMPTY_PATH, mask)?;
    Ok(kstat(&st))
}

/// The real status of the file the target's descriptor `fd` refers to:
/// one `statx` of its duplicate ([`Request::dup`]), or where none can be
/// had, through the magic link `/proc/<tid>/fd/<fd>`, which lands on the
/// open file itself (a symlink opened `O_PATH | O_NOFOLLOW` included)
/// without following it further; an error there takes [`resolve::fd`],
/// which answers `EBADF` as the kernel would. Not yet checked with
/// `ID_VALID` (see [`Context::stat_path`]).
pub fn fd_status(
    req: &Request<'_>,
    fd: i32,
    sync: AtFlags,
    mask: StatxFlags,
) -> Result<(InodeKey, Kstat), Errno> {
    match req.dup(fd) {
        Ok(file) => return real_stat(file.as_fd(), sync, mask),
        Err(Errno::NOSYS) => {}
        Err(e) => return Err(e),
    }
    if fd >= 0 {
        if let Ok(st) = fs::statx(fs::CWD, format!("/proc/{}/fd/{fd}", req.tid), sync, mask) {
            return Ok(kstat(&st));
        }
    }
    real_stat(resolve::fd(req, fd)?.as_fd(), sync, mask)
}

/// A `statx` result as the inode table's key and fr's status struct.
pub(super) fn kstat(st: &fs::Statx) -> (InodeKey, Kstat) {
    let key = InodeKey {
        dev: (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor),
        ino: st.stx_ino,
    };
    let kstat = Kstat {
        mask: st.stx_mask,
        blksize: st.stx_blksize,
        attributes: st.stx_attributes.bits(),
        nlink: st.stx_nlink,
        uid: st.stx_uid,
        gid: st.stx_gid,
        mode: u32::from(st.stx_mode),
        ino: st.stx_ino,
        size: st.stx_size,
        blocks: st.stx_blocks,
        attributes_mask: st.stx_attributes_mask.bits(),
        atime: timestamp(st.stx_atime),
        btime: timestamp(st.stx_btime),
        ctime: timestamp(st.stx_ctime),
        mtime: timestamp(st.stx_mtime),
        rdev_major: st.stx_rdev_major,
        rdev_minor: st.stx_rdev_minor,
        dev_major: st.stx_dev_major,
        dev_minor: st.stx_dev_minor,
        mnt_id: st.stx_mnt_id,
        dio_mem_align: st.stx_dio_mem_align,
        dio_offset_align: st.stx_dio_offset_align,
        subvol: st.stx_subvol,
        atomic_write_unit_min: st.stx_atomic_write_unit_min,
        atomic_write_unit_max: st.stx_atomic_write_unit_max,
        atomic_write_segments_max: st.stx_atomic_write_segments_max,
        dio_read_offset_align: st.stx_dio_read_offset_align,
        atomic_write_unit_max_opt: st.stx_atomic_write_unit_max_opt,
    };
    (key, kstat)
}

/// The refusals a change to an inode meets before any permission check, in
/// the kernel's order: a read-only mount (`mnt_want_write()`: `EROFS`),
/// then an immutable or append-only file (`notify_change()`: `EPERM`).
pub fn may_change(file: BorrowedFd<'_>, real: &Kstat) -> Result<(), Errno> {
    use crate::linux::{STATX_ATTR_APPEND, STATX_ATTR_IMMUTABLE};
    if fs::fstatvfs(file)?.f_flag.contains(fs::StatVfsMountFlags::RDONLY) {
        return Err(Errno::ROFS);
    }
    if real.attributes & (STATX_ATTR_IMMUTABLE | STATX_ATTR_APPEND) != 0 {
        return Err(Errno::PERM);
    }
    Ok(())
}

/// The real permission bits of a file whose fake ones are `perms`: the
/// owner's read and write (and search, for a directory) kept, so that the
/// user, and fr acting for the workload, can still use a file real root
/// could use in any mode.
pub fn usable_perms(kind: u32, perms: u32) -> u32 {
    perms | if kind == fr_emulator::attrs::S_IFDIR { 0o700 } else { 0o600 }
}

/// Changes the real mode of the file `file` refers to. An `O_PATH`
/// descriptor cannot be chmod'ed directly before `fchmodat2`'s
/// `AT_EMPTY_PATH` (6.6); its `/proc/self/fd` link can, on every kernel.
pub fn chmod_real(file: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    // A target's descriptor, duplicated, takes fchmod; an O_PATH one
    // (EBADF) its magic link.
    match fs::fchmod(file, fs::Mode::from_raw_mode(mode)) {
        Err(Errno::BADF) => {}
        done => return done,
    }
    let link = format!("/proc/self/fd/{}", file.as_raw_fd());
    fs::chmodat(fs::CWD, link, fs::Mode::from_raw_mode(mode), AtFlags::empty())
}

/// What real root's change was, for [`touch_ctime`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touched {
    /// A chown (of a file whose owner fr records).
    Owner,
    /// An extended attribute set or removed.
    Xattr,
}

/// Updates the ctime of `file` as real root's change of one of its
/// attributes would, for a change fr only records (a chown the kernel
/// does not hold, an emulated xattr): `fs/attr.c: notify_change()` sets
/// ctime for every attribute change, even one that changes nothing, and a
/// file system's `setxattr` and `removexattr` set it too. For a chown fr
/// makes `chown(file, -1, -1)` (one call on its descriptor, `symlink` or
/// not; it clears the set-user-id bit of the real file, as real root's
/// chown clears it, `chown_common()`). For an xattr, which must clear
/// nothing, and on a bind's file, which fr changes only as little as the
/// user would, a chmod to the mode the file has (`real`'s, read just
/// before), or for a symbolic link (whose mode cannot be set, and which
/// has no set-id bits) the chown. Only where fr may change the file for
/// real ([`Context::may_chmod_for_real`]): never a file fr's caller passed
/// in, nor another user's, whose ctime then stays as it was.
pub fn touch_ctime(ctx: &Context, file: BorrowedFd<'_>, key: InodeKey, real: &Kstat, how: Touched) {
    if !ctx.may_chmod_for_real(key, real) {
        return;
    }
    let link = real.mode & fr_emulator::attrs::S_IFMT == fr_emulator::attrs::S_IFLNK;
    let own = ctx.bounds.reach(key, real) == Reach::Own;
    let done = if (how == Touched::Owner && own) || link {
        fs::chownat(file, "", None, None, AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW)
    } else {
        chmod_real(file, real.mode & 0o7777)
    };
    if let Err(e) = done {
        log::debug!("updating the ctime of a file fr recorded a change of: {e}");
    }
}

/// The file the target's descriptor `fd` refers to, for a call that
/// changes it through the descriptor (`fchown`, `fchmod`, `fsetxattr`,
/// ...): `EBADF` for a closed descriptor and for an `O_PATH` one, which
/// `fdget()` skips. Its duplicate's flags tell; where none can be had the
/// mode of `/proc/<tid>/fd/N` is read first, so that [`resolve::fd`]'s
/// `ID_VALID` vouches for both.
pub fn changeable_fd(req: &Request<'_>, fd: i32) -> Result<OwnedFd, Errno> {
    if let Some(file) = changeable_dup(req, fd)? {
        req.check_valid()?;
        return Ok(file);
    }
    let o_path = is_o_path(req, fd)?;
    let file = resolve::fd(req, fd)?;
    if o_path {
        return Err(Errno::BADF);
    }
    Ok(file)
}

/// The duplicate of the target's descriptor `fd` for a change through it
/// (`EBADF` for an `O_PATH` one, as `fdget()` skips it); `None` where no
/// duplicate can be had. Not yet checked with `ID_VALID`.
pub(super) fn changeable_dup(req: &Request<'_>, fd: i32) -> Result<Option<OwnedFd>, Errno> {
    match req.dup(fd) {
        Ok(file) if fs::fcntl_getfl(&file).is_ok_and(|f| f.contains(fs::OFlags::PATH)) => {
            Err(Errno::BADF)
        }
        Ok(file) => Ok(Some(file)),
        Err(Errno::NOSYS) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the target's descriptor `fd` was opened with `O_PATH`, read
/// through `/proc` (for where [`Request::dup`] cannot serve); not yet
/// checked with `ID_VALID` (see [`changeable_fd`]).
///
/// The link `/proc/<tid>/fd/N` carries the descriptor's access in its
/// mode (`fs/proc/fd.c: tid_fd_update_inode()`: read gives `r-x`, write
/// `-wx`), so one `statx` of the link answers for every descriptor opened
/// to read or write. Mode 0 is `O_PATH` or the rare access mode 3 (for
/// `ioctl` only); the descriptor's flags in `fdinfo` tell those apart. A
/// descriptor that is not there is not `O_PATH`: the lookup says `EBADF`.
pub(super) fn is_o_path(req: &Request<'_>, fd: i32) -> Result<bool, Errno> {
    use crate::linux::O_PATH;
    if fd < 0 {
        return Ok(false);
    }
    let link = format!("/proc/{}/fd/{fd}", req.tid);
    match fs::statx(fs::CWD, &link, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::MODE) {
        Ok(st) if st.stx_mode & 0o777 != 0 => return Ok(false),
        Ok(_) => {}
        Err(_) => return Ok(false),
    }
    match crate::procfs::fd_flags(req.tid, fd) {
        None => Ok(false),
        Some(None) => Err(Errno::BADF),
        Some(Some(flags)) => Ok(flags & O_PATH != 0),
    }
}
