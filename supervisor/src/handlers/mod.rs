//! One module per system call family. Each entry point is a thin decoder
//! that reads its arguments and calls the family's one shared operation;
//! every handler has the signature [`Handler`] and returns an [`Outcome`],
//! which [`crate::notify`] turns into the one reply.
//!
//! What a call's arguments mean is decided by pure functions of the
//! [`Request`] (the path readers here, and each family's own: `xattr`'s
//! names, values and `xattr_args`, `ident`'s ids, groups and capability
//! structs, `create`'s open flags and `open_how`, ...), in the kernel's
//! order of checks and before the host is touched. They read the target
//! only through the request, so a fake [`crate::request::Target`] drives
//! them in tests and in the fuzz target `request_decode`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use fr_emulator::{InodeKey, InodeTable, Kstat, Timestamp};
use rustix::fs::{self, AtFlags, StatxFlags, StatxTimestamp};
use rustix::io::Errno;

use crate::bounds::Reach;
use crate::request::Request;
use crate::resolve::{self, LookupFlags};

pub mod create;
pub mod ident;
pub mod mode;
pub mod mount;
pub mod nested;
pub mod node;
pub mod owner;
pub mod remove;
pub mod stat;
pub mod xattr;

pub use crate::resolve::{AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW};

/// `AT_NO_AUTOMOUNT` and `AT_STATX_SYNC_TYPE` from `<linux/fcntl.h>`.
pub const AT_NO_AUTOMOUNT: i32 = 0x800;
pub const AT_STATX_SYNC_TYPE: i32 = 0x6000;

/// What every handler can reach.
#[derive(Debug)]
pub struct Context {
    pub inodes: Arc<InodeTable>,
    pub creds: crate::creds::CredsTable,
    pub namespace: crate::Namespace,
    pub bounds: crate::bounds::Bounds,
    /// The `O_TMPFILE` files fr made and recorded, held open (`O_PATH`) for
    /// the session: the kernel frees an unnamed file when its last
    /// descriptor closes, which fr does not see, and a file made later
    /// with the same inode number would show the record. Held, the number
    /// is never reused; see [`create::pin`].
    pub pinned: std::sync::Mutex<Vec<OwnedFd>>,
}

impl Context {
    /// [`resolve::lookup`] with the search permission of the calling
    /// thread's fake credentials.
    pub fn lookup(
        &self,
        req: &Request<'_>,
        dirfd: i32,
        path: &[u8],
        how: LookupFlags,
    ) -> Result<OwnedFd, Errno> {
        self.lookup_with(req, dirfd, path, how, true)
    }

    /// [`Context::lookup`], trying the lone-name open ([`lone_open`]) first
    /// or not (when the caller has just tried the name itself).
    fn lookup_with(
        &self,
        req: &Request<'_>,
        dirfd: i32,
        path: &[u8],
        how: LookupFlags,
        lone_first: bool,
    ) -> Result<OwnedFd, Errno> {
        let creds = self.creds.get(req.tid);
        let check = |dir: BorrowedFd<'_>| self.may_search(dir, &creds);
        let search = searcher(&creds, &check);
        if lone_first && search.is_none() {
            if let Some(file) = lone_open(req, dirfd, path, how)? {
                return Ok(file);
            }
        }
        resolve::lookup(req, dirfd, path, how, search)
    }

    /// Whether fr may change the real mode of the file `key` (see
    /// [`crate::bounds`]): the image's own file, or another mount's that
    /// the user owns; never a file fr's caller passed on.
    pub fn may_chmod_for_real(&self, key: InodeKey, real: &Kstat) -> bool {
        match self.bounds.reach(key, real) {
            Reach::Own => true,
            Reach::Foreign => real.uid == self.inodes.ids().host_uid,
            Reach::PassedIn => false,
        }
    }

    /// [`resolve::parent`] with the calling thread's search permission.
    pub fn parent(
        &self,
        req: &Request<'_>,
        dirfd: i32,
        path: &[u8],
        dir_ok: bool,
    ) -> Result<(OwnedFd, Vec<u8>), Errno> {
        let creds = self.creds.get(req.tid);
        let check = |dir: BorrowedFd<'_>| self.may_search(dir, &creds);
        resolve::parent(req, dirfd, path, dir_ok, searcher(&creds, &check))
    }

    /// Whether the kernel's own status of a file fr has no record of is
    /// what the workload must see, so that a stat can run as it is: in
    /// subuid mode always (fr reads the namespace's ids, as the workload
    /// does); in root-mapped mode for a file of the user's own uid and gid
    /// (both read 0 there, while other host ids read 65534 to the kernel
    /// but as they are to fr); never without a namespace.
    pub fn kernel_agrees(&self, real: &Kstat) -> bool {
        let ids = self.inodes.ids();
        match self.namespace {
            crate::Namespace::Subuid => true,
            crate::Namespace::RootMapped => real.uid == ids.host_uid && real.gid == ids.host_gid,
            crate::Namespace::None => false,
        }
    }

    /// The real status of the file `path` names for the target, as
    /// [`Context::lookup`] then [`real_stat`] give it. A lone name (no
    /// slash, not `.` or `..`: what `find` and `ls` pass to `fstatat`, a
    /// relative `stat("f")`) of a caller that may search everywhere is
    /// stat'ed with one `statx` of `/proc/<tid>/cwd/NAME` (or
    /// `fd/<dirfd>/NAME`): the kernel jumps through the magic link to the
    /// target's directory and looks up the one component there, crossing
    /// no symlink but the last. A last symlink to follow, and any error
    /// (whose errno the full lookup gets right: `EBADF` for a closed
    /// dirfd, say), take the full lookup.
    ///
    /// Not yet checked with `ID_VALID`: the status is only a guess until
    /// [`Request::check_valid`] passes, which the caller asks before it
    /// writes anything to the target (a CONTINUE needs no check).
    pub fn stat_path(
        &self,
        req: &Request<'_>,
        dirfd: i32,
        path: &[u8],
        how: LookupFlags,
        sync: AtFlags,
        mask: StatxFlags,
    ) -> Result<(InodeKey, Kstat), Errno> {
        let may_search_all = || searcher(&self.creds.get(req.tid), &|_| true).is_none();
        if let Some(name) = lone_name(req, dirfd, path).filter(|_| may_search_all()) {
            if let Ok(st) = fs::statx(fs::CWD, &name, sync | AtFlags::SYMLINK_NOFOLLOW, mask) {
                let link = u32::from(st.stx_mode) & fr_emulator::attrs::S_IFMT
                    == fr_emulator::attrs::S_IFLNK;
                if !(link && how.follow) {
                    return Ok(kstat(&st));
                }
            }
        }
        // The lone name, if it was one, was just tried.
        let file = self.lookup_with(req, dirfd, path, how, false)?;
        real_stat(file.as_fd(), sync, mask)
    }

    /// Whether `creds` may search the directory `dir`: its fake view and
    /// access ACL (`fs/namei.c: may_lookup()`, `generic_permission()`).
    fn may_search(&self, dir: BorrowedFd<'_>, creds: &fr_emulator::Creds) -> bool {
        real_stat(dir, AtFlags::empty(), StatxFlags::BASIC_STATS).is_ok_and(|(key, real)| {
            fr_emulator::rules::permitted_with_acl(
                &self.inodes.view(key, real.attrs()),
                self.inodes.access_acl(key, real.attrs()).as_ref(),
                fr_emulator::rules::MAY_EXEC,
                creds,
            )
        })
    }
}

/// `/proc/<tid>/cwd/NAME` or `/proc/<tid>/fd/<dirfd>/NAME` for a lone name
/// (no slash, not `.`, `..` or a name that may lead into procfs's `self`):
/// the kernel jumps through the magic link to the target's directory and
/// looks up that one component there, crossing no symlink. `None` for any
/// other path.
fn lone_name(req: &Request<'_>, dirfd: i32, path: &[u8]) -> Option<std::ffi::OsString> {
    use std::os::unix::ffi::OsStringExt;
    let lone = !path.is_empty()
        && !path.contains(&b'/')
        && path != b"."
        && path != b".."
        && !resolve::names_proc_self(path);
    let dir = match dirfd {
        resolve::AT_FDCWD => "cwd".to_string(),
        fd if fd >= 0 => format!("fd/{fd}"),
        _ => return None,
    };
    lone.then(|| {
        let mut name = format!("/proc/{}/{dir}/", req.tid).into_bytes();
        name.extend_from_slice(path);
        std::ffi::OsString::from_vec(name)
    })
}

/// The lookup of a lone name (see [`lone_name`]) with one `openat`, for a
/// caller that may search everywhere. `None` when it does not apply, when
/// the open fails (the full lookup then gives the kernel's errno: `EBADF`
/// for a closed dirfd, say) or when the name is a symlink to follow.
fn lone_open(
    req: &Request<'_>,
    dirfd: i32,
    path: &[u8],
    how: LookupFlags,
) -> Result<Option<OwnedFd>, Errno> {
    let Some(name) = lone_name(req, dirfd, path) else { return Ok(None) };
    let flags = fs::OFlags::PATH | fs::OFlags::NOFOLLOW | fs::OFlags::CLOEXEC;
    let Ok(file) = fs::openat(fs::CWD, &name, flags, fs::Mode::empty()) else {
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

/// The search check for `creds`: none for a caller that may search every
/// directory (`CAP_DAC_READ_SEARCH` or `CAP_DAC_OVERRIDE`), so that root's
/// lookups keep their one-`openat2` fast path.
fn searcher<'a>(
    creds: &fr_emulator::Creds,
    check: &'a dyn Fn(BorrowedFd<'_>) -> bool,
) -> resolve::Search<'a> {
    use fr_emulator::rules::{CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH};
    if creds.capable(CAP_DAC_OVERRIDE) || creds.capable(CAP_DAC_READ_SEARCH) {
        None
    } else {
        Some(check)
    }
}

/// Whether `creds` pass every permission check on a name, its directory
/// and its file (`CAP_DAC_OVERRIDE` and `CAP_FOWNER`, as root has them),
/// so that the kernel's own checks, by the user's real credentials, can
/// stand for fr's.
pub fn passes_dac(creds: &fr_emulator::Creds) -> bool {
    use fr_emulator::rules::{CAP_DAC_OVERRIDE, CAP_FOWNER};
    creds.capable(CAP_DAC_OVERRIDE) && creds.capable(CAP_FOWNER)
}

/// How a notification is answered when the handler succeeds.
#[derive(Debug)]
pub enum Reply {
    /// The system call returns this value; the kernel does nothing more.
    Value(i64),
    /// The kernel runs the system call itself, for the reason given.
    Continue(&'static str),
    /// The system call returns a new descriptor of the target's for the
    /// file fr opened (`SECCOMP_IOCTL_NOTIF_ADDFD`); `made` is the file fr
    /// made for it, undone if the descriptor cannot be added.
    Fd { file: OwnedFd, cloexec: bool, made: Option<create::Made> },
}

/// A handler's answer: a reply, or the errno the system call fails with.
pub type Outcome = Result<Reply, Errno>;

/// The one signature of every system call handler.
pub type Handler = fn(&Context, &Request<'_>) -> Outcome;

/// What a decoder makes of a call's arguments: the values the handler acts
/// on, or the reason the call is the kernel's to run as it is.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<T> {
    Args(T),
    Kernel(&'static str),
}

impl<T> Decoded<T> {
    /// `act` on the arguments, or `CONTINUE` for the decoder's reason.
    pub fn and_then(self, act: impl FnOnce(T) -> Outcome) -> Outcome {
        match self {
            Decoded::Args(args) => act(args),
            Decoded::Kernel(why) => Ok(Reply::Continue(why)),
        }
    }
}

/// The width of the ids a call takes and returns: i386 has 16-bit
/// `chown`, `setuid`, `getgroups`, ... beside its `*32` calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    W16,
    W32,
}

impl Width {
    /// An id argument, as the kernel takes it: a `uid_t`, or an
    /// `old_uid_t` of the low 16 bits widened by
    /// `include/linux/highuid.h: low2highuid()` (`(old_uid_t)-1` is -1).
    pub fn id(self, arg: u32) -> u32 {
        match self {
            Width::W32 => arg,
            Width::W16 if arg as u16 == u16::MAX => fr_emulator::creds::UNCHANGED,
            Width::W16 => u32::from(arg as u16),
        }
    }

    /// An id as the call writes it into the target (`high2lowuid()`: ids
    /// above 65535 are the overflow id in 16 bits).
    pub fn out(self, id: u32) -> Vec<u8> {
        match self {
            Width::W32 => id.to_le_bytes().to_vec(),
            Width::W16 => fr_emulator::abi::high2low(id).to_le_bytes().to_vec(),
        }
    }

    /// An id as the call returns it.
    pub fn value(self, id: u32) -> i64 {
        match self {
            Width::W32 => i64::from(id),
            Width::W16 => i64::from(fr_emulator::abi::high2low(id)),
        }
    }
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
/// one `statx` through the magic link `/proc/<tid>/fd/<fd>`, which lands on
/// the open file itself (a symlink opened `O_PATH | O_NOFOLLOW` included)
/// without following it further; an error takes [`resolve::fd`], which
/// answers `EBADF` as the kernel would. Not yet checked with `ID_VALID`
/// (see [`Context::stat_path`]).
pub fn fd_status(
    req: &Request<'_>,
    fd: i32,
    sync: AtFlags,
    mask: StatxFlags,
) -> Result<(InodeKey, Kstat), Errno> {
    if fd >= 0 {
        if let Ok(st) = fs::statx(fs::CWD, format!("/proc/{}/fd/{fd}", req.tid), sync, mask) {
            return Ok(kstat(&st));
        }
    }
    real_stat(resolve::fd(req, fd)?.as_fd(), sync, mask)
}

/// A `statx` result as the inode table's key and fr's status struct.
fn kstat(st: &fs::Statx) -> (InodeKey, Kstat) {
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

/// Reads the path argument at `addr` of a call that takes `AT_*` flags, as
/// `fs/namei.c: getname_flags()` does: without `AT_EMPTY_PATH` an empty
/// string is `ENOENT`; with it, an empty string is "no name" (`None`).
pub fn read_name(req: &Request<'_>, addr: u64, flags: i32) -> Result<Option<Vec<u8>>, Errno> {
    let path = req.read_path(addr)?;
    match (path.is_empty(), flags & AT_EMPTY_PATH != 0) {
        (false, _) => Ok(Some(path)),
        (true, true) => Ok(None),
        (true, false) => Err(Errno::NOENT),
    }
}

/// As [`read_name`], but a NULL pointer with `AT_EMPTY_PATH` is "no name"
/// too, as `fs/namei.c: getname_maybe_null()` allows for the stat family
/// (Linux 6.11). Elsewhere NULL is `EFAULT`.
pub fn read_name_maybe_null(
    req: &Request<'_>,
    addr: u64,
    flags: i32,
) -> Result<Option<Vec<u8>>, Errno> {
    if addr == 0 && flags & AT_EMPTY_PATH != 0 {
        return Ok(None);
    }
    read_name(req, addr, flags)
}

/// Reads a path argument of a call without flags (`chown`, `stat`, ...):
/// empty is `ENOENT`.
pub fn read_plain_path(req: &Request<'_>, addr: u64) -> Result<Vec<u8>, Errno> {
    read_name(req, addr, 0).map(Option::unwrap_or_default)
}

/// The name of the file a change-making `*at()` call names (`fchownat`,
/// `fchmodat2`, `execveat`), and how to look it up: its flags may only be
/// `AT_SYMLINK_NOFOLLOW` and `AT_EMPTY_PATH` (`EINVAL` before anything
/// else), then its name is read.
pub fn at_name(
    req: &Request<'_>,
    path_addr: u64,
    flags: i32,
) -> Result<(Vec<u8>, LookupFlags), Errno> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::INVAL);
    }
    let path = read_name(req, path_addr, flags)?.unwrap_or_default();
    Ok((path, LookupFlags::from_at(flags)))
}

/// The file [`at_name`] names, looked up from the target's `dirfd`.
pub fn at_file(
    ctx: &Context,
    req: &Request<'_>,
    dirfd: i32,
    path_addr: u64,
    flags: i32,
) -> Result<OwnedFd, Errno> {
    let (path, how) = at_name(req, path_addr, flags)?;
    ctx.lookup(req, dirfd, &path, how)
}

/// What the workload's kernel call would be refused with for a
/// [`fr_emulator::creds::Refused`]: a change the journal could not keep
/// fails with the journal's errno, as real root's call fails on a file
/// system that cannot store it.
pub fn refused(r: fr_emulator::creds::Refused) -> Errno {
    match r {
        fr_emulator::creds::Refused::Perm => Errno::PERM,
        fr_emulator::creds::Refused::Inval => Errno::INVAL,
        fr_emulator::creds::Refused::Access => Errno::ACCESS,
        fr_emulator::creds::Refused::Unkept(e) => Errno::from_raw_os_error(e),
    }
}

/// The errno of a change the journal could not keep.
pub fn unkept(e: fr_emulator::table::Unkept) -> Errno {
    Errno::from_raw_os_error(e.0)
}

/// The refusals a change to an inode meets before any permission check, in
/// the kernel's order: a read-only mount (`mnt_want_write()`: `EROFS`),
/// then an immutable or append-only file (`notify_change()`: `EPERM`).
pub fn may_change(file: BorrowedFd<'_>, real: &Kstat) -> Result<(), Errno> {
    const STATX_ATTR_IMMUTABLE: u64 = 0x10;
    const STATX_ATTR_APPEND: u64 = 0x20;
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

/// The target's umask, from `/proc/<tid>/status` (Linux 4.7).
pub fn umask(req: &Request<'_>) -> Result<u32, Errno> {
    let status = crate::procfs::Status::read(req.tid).ok_or(Errno::NOENT)?;
    req.check_valid()?;
    status.field("Umask:").and_then(|v| u32::from_str_radix(v, 8).ok()).ok_or(Errno::NOENT)
}

/// The file the target's descriptor `fd` refers to, for a call that
/// changes it through the descriptor (`fchown`, `fchmod`, `fsetxattr`,
/// ...): `EBADF` for a closed descriptor and for an `O_PATH` one, which
/// `fdget()` skips. The mode of `/proc/<tid>/fd/N` is read first, so that
/// [`resolve::fd`]'s `ID_VALID` vouches for both.
pub fn changeable_fd(req: &Request<'_>, fd: i32) -> Result<OwnedFd, Errno> {
    let o_path = is_o_path(req, fd)?;
    let file = resolve::fd(req, fd)?;
    if o_path {
        return Err(Errno::BADF);
    }
    Ok(file)
}

/// Whether the target's descriptor `fd` was opened with `O_PATH`; not yet
/// checked with `ID_VALID` (see [`changeable_fd`]).
///
/// The link `/proc/<tid>/fd/N` carries the descriptor's access in its
/// mode (`fs/proc/fd.c: tid_fd_update_inode()`: read gives `r-x`, write
/// `-wx`), so one `statx` of the link answers for every descriptor opened
/// to read or write. Mode 0 is `O_PATH` or the rare access mode 3 (for
/// `ioctl` only); the descriptor's flags in `fdinfo` tell those apart. A
/// descriptor that is not there is not `O_PATH`: the lookup says `EBADF`.
fn is_o_path(req: &Request<'_>, fd: i32) -> Result<bool, Errno> {
    const O_PATH: u32 = 0o10_000_000;
    if fd < 0 {
        return Ok(false);
    }
    let link = format!("/proc/{}/fd/{fd}", req.tid);
    match fs::statx(fs::CWD, &link, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::MODE) {
        Ok(st) if st.stx_mode & 0o777 != 0 => return Ok(false),
        Ok(_) => {}
        Err(_) => return Ok(false),
    }
    let Ok(info) = std::fs::read_to_string(format!("/proc/{}/fdinfo/{fd}", req.tid)) else {
        return Ok(false);
    };
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        .ok_or(Errno::BADF)?;
    Ok(flags & O_PATH != 0)
}
