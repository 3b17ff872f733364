//! The stat family: `stat lstat fstat newfstatat statx`, and i386's
//! `stat lstat fstat` (16-bit ids) and `stat64 lstat64 fstat64 fstatat64`.
//!
//! The supervisor stats the file itself, lays the fake view over the real
//! status and writes the struct the caller's ABI expects. glibc 2.33+
//! issues `stat`, `lstat` and `fstat` as `newfstatat` and coreutils uses
//! `statx`: every entry point matters.

use fr_emulator::abi::{self, AbiError};
use fr_emulator::{InodeKey, Kstat};
use rustix::fs::{AtFlags, StatxFlags};
use rustix::io::Errno;

use super::{fd_status, read_name_maybe_null, read_plain_path, Context, Outcome, Reply};
use super::{AT_EMPTY_PATH, AT_NO_AUTOMOUNT, AT_STATX_SYNC_TYPE, AT_SYMLINK_NOFOLLOW};
use crate::arch::Arch;
use crate::request::Request;
use crate::resolve::{LookupFlags, AT_FDCWD};

/// `STATX__RESERVED` and `STATX_CHANGE_COOKIE` from `<linux/stat.h>`.
const STATX_RESERVED: u32 = 0x8000_0000;
const STATX_CHANGE_COOKIE: u32 = 0x4000_0000;

/// Which struct the caller gets.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// x86_64 and x32 `struct stat`.
    Native,
    /// i386 `struct stat` (16-bit ids).
    I386,
    /// i386 `struct stat64`.
    I386Stat64,
}

/// The struct of the plain `stat`, `lstat` and `fstat` calls of an ABI.
fn plain_layout(arch: Arch) -> Layout {
    match arch {
        Arch::I386 => Layout::I386,
        Arch::X86_64 | Arch::X32 => Layout::Native,
    }
}

/// The status the workload must see of the file `key`, or `None` when the
/// kernel's own answer is it (no record, and [`Context::kernel_agrees`]):
/// the call then runs as it is. Before a status is written into the target,
/// the notification is checked to be still waiting (`ID_VALID`).
fn faked(
    ctx: &Context,
    req: &Request<'_>,
    key: InodeKey,
    real: &Kstat,
) -> Result<Option<Kstat>, Errno> {
    let view = match ctx.inodes.record(key, real.attrs()) {
        Some(rec) => rec,
        None if ctx.kernel_agrees(real) => return Ok(None),
        None => ctx.inodes.unrecorded(real.attrs()),
    };
    req.check_valid()?;
    Ok(Some(real.overlay(view)))
}

/// Lays the fake view over the real status of a file and writes `layout`
/// at `buf`.
fn fill(
    ctx: &Context,
    req: &Request<'_>,
    (key, real): (InodeKey, Kstat),
    buf: u64,
    layout: Layout,
) -> Outcome {
    let Some(st) = faked(ctx, req, key, &real)? else {
        return Ok(Reply::Continue("no record, and the kernel shows what fr would"));
    };
    match layout {
        Layout::Native => req.write(buf, &abi::stat_x86_64(&st))?,
        Layout::I386 => match abi::stat_i386(&st) {
            Ok(bytes) => req.write(buf, &bytes)?,
            Err(AbiError::Overflow) => return Err(Errno::OVERFLOW),
        },
        Layout::I386Stat64 => {
            let fields = abi::stat64_i386(&st);
            let pieces: Vec<(u64, &[u8])> =
                fields.iter().map(|(off, bytes)| (buf + *off as u64, bytes.as_slice())).collect();
            req.write_pieces(&pieces)?;
        }
    }
    Ok(Reply::Value(0))
}

fn path_call(ctx: &Context, req: &Request<'_>, follow: bool, layout: Layout) -> Outcome {
    let path = read_plain_path(req, req.ptr(0))?;
    let how = LookupFlags { follow, empty_path: false };
    let found =
        ctx.stat_path(req, AT_FDCWD, &path, how, AtFlags::empty(), StatxFlags::BASIC_STATS)?;
    fill(ctx, req, found, req.ptr(1), layout)
}

fn fd_call(ctx: &Context, req: &Request<'_>, layout: Layout) -> Outcome {
    let found = fd_status(req, req.int(0), AtFlags::empty(), StatxFlags::BASIC_STATS)?;
    fill(ctx, req, found, req.ptr(1), layout)
}

/// How the stat calls' `flags` look a name up (`fs/stat.c: vfs_statx()`):
/// `AT_SYMLINK_NOFOLLOW`, `AT_NO_AUTOMOUNT`, `AT_EMPTY_PATH` and the
/// `AT_STATX_*` sync types, nothing else (`EINVAL`).
pub fn stat_how(flags: i32) -> Result<LookupFlags, Errno> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE) != 0 {
        return Err(Errno::INVAL);
    }
    Ok(LookupFlags::from_at(flags))
}

/// What `statx`'s `flags` and `mask` ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatxHow {
    /// The `AT_STATX_*` sync type.
    pub sync: AtFlags,
    /// The fields asked for, without `STATX_CHANGE_COOKIE` (kernel-only).
    pub mask: StatxFlags,
    pub how: LookupFlags,
}

/// `statx`'s `flags` and `mask`, in the order of `fs/stat.c: do_statx()`:
/// `STATX__RESERVED` or both sync types are `EINVAL`, then [`stat_how`].
pub fn statx_how(flags: i32, mask: u32) -> Result<StatxHow, Errno> {
    if mask & STATX_RESERVED != 0 || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE {
        return Err(Errno::INVAL);
    }
    Ok(StatxHow {
        how: stat_how(flags)?,
        sync: AtFlags::from_bits_retain((flags & AT_STATX_SYNC_TYPE) as u32),
        mask: StatxFlags::from_bits_retain(mask & !STATX_CHANGE_COOKIE),
    })
}

/// The file an `*at` stat call names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatFile {
    /// No name, and a real descriptor: the descriptor's file.
    Fd(i32),
    /// A name to look up from `dirfd`.
    Path { dirfd: i32, path: Vec<u8>, how: LookupFlags },
}

/// The file `newfstatat`, `fstatat64` and `statx` name at `name_addr`
/// from `dirfd` with `flags`, as `fs/stat.c: vfs_fstatat()` finds it: the
/// name is read first (`getname_maybe_null()`); no name with a real
/// descriptor is that descriptor (`vfs_fstat()`); otherwise the flags are
/// checked (`vfs_statx()`: `EINVAL`) before the name's own error, if it
/// has one, surfaces in its lookup (`filename_lookup()`). A target that
/// cannot be read, or is gone, has no name to order so: that is the
/// answer at once.
pub fn stat_at_file(
    req: &Request<'_>,
    dirfd: i32,
    name_addr: u64,
    flags: i32,
) -> Result<StatFile, Errno> {
    let name = read_name_maybe_null(req, name_addr, flags);
    match name {
        Ok(None) if dirfd >= 0 => return Ok(StatFile::Fd(dirfd)),
        Err(e) if req.unreachable().is_some() => return Err(e),
        // An empty name, or a target that is gone.
        Err(Errno::NOENT) => req.check_valid()?,
        _ => {}
    }
    let how = stat_how(flags)?;
    Ok(StatFile::Path { dirfd, path: name?.unwrap_or_default(), how })
}

/// The status of what [`stat_at_file`] names.
fn at_status(
    ctx: &Context,
    req: &Request<'_>,
    file: StatFile,
    sync: AtFlags,
    mask: StatxFlags,
) -> Result<(InodeKey, Kstat), Errno> {
    match file {
        StatFile::Fd(fd) => fd_status(req, fd, sync, mask),
        StatFile::Path { dirfd, path, how } => ctx.stat_path(req, dirfd, &path, how, sync, mask),
    }
}

fn at_call(ctx: &Context, req: &Request<'_>, layout: Layout) -> Outcome {
    let file = stat_at_file(req, req.int(0), req.ptr(1), req.int(3))?;
    let found = at_status(ctx, req, file, AtFlags::empty(), StatxFlags::BASIC_STATS)?;
    fill(ctx, req, found, req.ptr(2), layout)
}

/// `stat(path, buf)`.
pub fn stat(ctx: &Context, req: &Request<'_>) -> Outcome {
    path_call(ctx, req, true, plain_layout(req.arch))
}

/// `lstat(path, buf)`.
pub fn lstat(ctx: &Context, req: &Request<'_>) -> Outcome {
    path_call(ctx, req, false, plain_layout(req.arch))
}

/// `fstat(fd, buf)`.
pub fn fstat(ctx: &Context, req: &Request<'_>) -> Outcome {
    fd_call(ctx, req, plain_layout(req.arch))
}

/// `newfstatat(dirfd, path, buf, flags)`.
pub fn newfstatat(ctx: &Context, req: &Request<'_>) -> Outcome {
    at_call(ctx, req, Layout::Native)
}

/// i386 `stat64(path, buf)`.
pub fn stat64(ctx: &Context, req: &Request<'_>) -> Outcome {
    path_call(ctx, req, true, Layout::I386Stat64)
}

/// i386 `lstat64(path, buf)`.
pub fn lstat64(ctx: &Context, req: &Request<'_>) -> Outcome {
    path_call(ctx, req, false, Layout::I386Stat64)
}

/// i386 `fstat64(fd, buf)`.
pub fn fstat64(ctx: &Context, req: &Request<'_>) -> Outcome {
    fd_call(ctx, req, Layout::I386Stat64)
}

/// i386 `fstatat64(dirfd, path, buf, flags)`.
pub fn fstatat64(ctx: &Context, req: &Request<'_>) -> Outcome {
    at_call(ctx, req, Layout::I386Stat64)
}

/// `statx(dirfd, path, flags, mask, buf)`, in the order of `fs/stat.c:
/// do_statx()`: the mask and sync-type checks, then [`stat_at_file`]'s, then
/// the lookup with the caller's own mask and sync flags.
pub fn statx(ctx: &Context, req: &Request<'_>) -> Outcome {
    let (flags, mask) = (req.int(2), req.uint(3));
    let StatxHow { sync, mask, .. } = statx_how(flags, mask)?;
    let file = stat_at_file(req, req.int(0), req.ptr(1), flags)?;
    let (key, real) = at_status(ctx, req, file, sync, mask)?;
    let Some(st) = faked(ctx, req, key, &real)? else {
        return Ok(Reply::Continue("no record, and the kernel shows what fr would"));
    };
    req.write(req.ptr(4), &abi::statx(&st))?;
    Ok(Reply::Value(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::fake::Memory;

    fn at_file(mem: &Memory, dirfd: i32, name: u64, flags: i32) -> Result<StatFile, Errno> {
        stat_at_file(&Request::over(mem, Arch::X86_64, 262, [0; 6]), dirfd, name, flags)
    }

    #[test]
    fn a_bad_flag_comes_before_the_names_own_error() {
        // fs/stat.c: vfs_statx() checks the flags before filename_lookup()
        // meets the name's error (checked on 6.18: EINVAL, not EFAULT).
        let mem = Memory::new().put(0x1000, b"\0f\0");
        assert_eq!(at_file(&mem, AT_FDCWD, 0x8, 0x1), Err(Errno::INVAL));
        assert_eq!(at_file(&mem, AT_FDCWD, 0x8, 0), Err(Errno::FAULT));
        assert_eq!(at_file(&mem, AT_FDCWD, 0x1000, 0x1), Err(Errno::INVAL));
        assert_eq!(at_file(&mem, AT_FDCWD, 0x1000, 0), Err(Errno::NOENT));
        assert_eq!(at_file(&mem, 3, 0x8, 0x1), Err(Errno::INVAL));
        // A target fr cannot read may have had no name at all.
        // It is answered at once (its flags are not looked at), and noted.
        let mem = Memory::new().put(0x1000, b"\0").unreadable();
        let req = Request::over(&mem, Arch::X86_64, 262, [0; 6]);
        assert!(stat_at_file(&req, 3, 0x1000, AT_EMPTY_PATH | 0x1).is_err());
        assert!(req.unreachable().is_some());
        // An empty name is ENOENT after the flags; a gone target at once.
        let mem = Memory::new().put(0x1000, b"\0").replaced();
        assert_eq!(at_file(&mem, 3, 0x1000, 0x1), Err(Errno::NOENT));
    }

    #[test]
    fn no_name_with_a_descriptor_is_the_descriptor() {
        let mem = Memory::new().put(0x1000, b"\0f\0");
        let empty = LookupFlags { follow: true, empty_path: true };
        assert_eq!(at_file(&mem, 3, 0x1000, AT_EMPTY_PATH), Ok(StatFile::Fd(3)));
        assert_eq!(at_file(&mem, 3, 0, AT_EMPTY_PATH), Ok(StatFile::Fd(3)));
        // With no descriptor, the lookup of "" from the cwd.
        let cwd = StatFile::Path { dirfd: AT_FDCWD, path: Vec::new(), how: empty };
        assert_eq!(at_file(&mem, AT_FDCWD, 0, AT_EMPTY_PATH), Ok(cwd));
        let nofollow = LookupFlags { follow: false, empty_path: false };
        let f = StatFile::Path { dirfd: 3, path: b"f".to_vec(), how: nofollow };
        assert_eq!(at_file(&mem, 3, 0x1001, AT_SYMLINK_NOFOLLOW), Ok(f));
        assert_eq!(at_file(&mem, 3, 0, 0), Err(Errno::FAULT));
    }
}
