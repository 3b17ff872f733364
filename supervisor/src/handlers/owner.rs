//! The chown family: `chown lchown fchown fchownat`, and i386's 16-bit
//! `chown lchown fchown` beside its `*32` calls. All end in [`set_owner`].

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self, AtFlags, Gid, StatxFlags, Uid};
use rustix::io::Errno;

use fr_emulator::creds::UNCHANGED;

use super::Width::{self, W16, W32};
use super::{
    at_file, changeable_dup, is_o_path, may_change, read_plain_path, real_stat, refused,
    touch_ctime, Context, Outcome, Reply, Touched,
};
use crate::request::Request;
use crate::resolve::{LookupFlags, AT_FDCWD};

/// The owner and group of a chown, at arguments `first` and `first + 1`:
/// `-1` (16-bit `(old_uid_t)-1` too) leaves that id unchanged (`None`).
pub fn new_owner(req: &Request<'_>, first: usize, width: Width) -> (Option<u32>, Option<u32>) {
    let id = |i: usize| Some(width.id(req.uint(i))).filter(|&id| id != UNCHANGED);
    (id(first), id(first + 1))
}

fn at_path(ctx: &Context, req: &Request<'_>, path: &[u8], follow: bool) -> Result<OwnedFd, Errno> {
    ctx.lookup(req, AT_FDCWD, path, LookupFlags { follow, empty_path: false })
}

/// `chown(path, uid, gid)`.
pub fn chown(ctx: &Context, req: &Request<'_>) -> Outcome {
    let path = read_plain_path(req, req.ptr(0))?;
    set_owner(ctx, req, at_path(ctx, req, &path, true)?, new_owner(req, 1, W32))
}

/// i386 `chown(path, uid16, gid16)`.
pub fn chown16(ctx: &Context, req: &Request<'_>) -> Outcome {
    let path = read_plain_path(req, req.ptr(0))?;
    set_owner(ctx, req, at_path(ctx, req, &path, true)?, new_owner(req, 1, W16))
}

/// `lchown(path, uid, gid)`.
pub fn lchown(ctx: &Context, req: &Request<'_>) -> Outcome {
    let path = read_plain_path(req, req.ptr(0))?;
    set_owner(ctx, req, at_path(ctx, req, &path, false)?, new_owner(req, 1, W32))
}

/// i386 `lchown(path, uid16, gid16)`.
pub fn lchown16(ctx: &Context, req: &Request<'_>) -> Outcome {
    let path = read_plain_path(req, req.ptr(0))?;
    set_owner(ctx, req, at_path(ctx, req, &path, false)?, new_owner(req, 1, W16))
}

/// `fchown(fd, uid, gid)`.
pub fn fchown(ctx: &Context, req: &Request<'_>) -> Outcome {
    fd_owner(ctx, req, new_owner(req, 1, W32))
}

/// i386 `fchown(fd, uid16, gid16)`.
pub fn fchown16(ctx: &Context, req: &Request<'_>) -> Outcome {
    fd_owner(ctx, req, new_owner(req, 1, W16))
}

fn fd_owner(ctx: &Context, req: &Request<'_>, ids: (Option<u32>, Option<u32>)) -> Outcome {
    let fd = req.int(0);
    if let Some(file) = changeable_dup(req, fd)? {
        if let Some(done) = same_owner(ctx, req, Behind::Dup(file.as_fd()), ids) {
            return done;
        }
        req.check_valid()?;
        return set_owner(ctx, req, file, ids);
    }
    // As changeable_fd: an O_PATH descriptor is EBADF to a change.
    if is_o_path(req, fd)? {
        return Err(Errno::BADF);
    }
    let link = format!("/proc/{}/fd/{fd}", req.tid);
    if fd >= 0 {
        if let Some(done) = same_owner(ctx, req, Behind::Link(&link), ids) {
            return done;
        }
    }
    set_owner(ctx, req, crate::resolve::fd(req, fd)?, ids)
}

/// The file behind a target's descriptor: its duplicate, or the magic link
/// `/proc/<tid>/fd/N` where no duplicate can be had.
#[derive(Clone, Copy)]
enum Behind<'a> {
    Dup(BorrowedFd<'a>),
    Link(&'a str),
}

impl Behind<'_> {
    fn statx(self) -> Result<fs::Statx, Errno> {
        match self {
            Behind::Dup(file) => fs::statx(file, "", AtFlags::EMPTY_PATH, StatxFlags::BASIC_STATS),
            Behind::Link(link) => {
                fs::statx(fs::CWD, link, AtFlags::empty(), StatxFlags::BASIC_STATS)
            }
        }
    }

    /// `chown(-1, -1)`: nothing but the ctime changes.
    fn touch_owner(self) -> Result<(), Errno> {
        match self {
            Behind::Dup(file) => fs::chownat(file, "", None, None, AtFlags::EMPTY_PATH),
            Behind::Link(link) => fs::chownat(fs::CWD, link, None, None, AtFlags::empty()),
        }
    }
}

/// The common `fchown` of an archiver (`tar` gives each file it made the
/// owner it already has, root's): root gives an image's file without a
/// record the owner and group it shows already, and it has no set-id bit
/// to lose. Real root's call changes nothing but the ctime, and so does
/// this one: a `chown(-1, -1)` of the file behind the descriptor, which
/// also gives the kernel's `EROFS` and `EPERM` (immutable). No record is
/// made and none is needed; the file stated is the file changed (the
/// descriptor's duplicate; through the magic link, a descriptor replaced
/// meanwhile could at most have its ctime moved). `None` when the call
/// takes the whole way.
fn same_owner(
    ctx: &Context,
    req: &Request<'_>,
    file: Behind<'_>,
    (uid, gid): (Option<u32>, Option<u32>),
) -> Option<Outcome> {
    let st = file.statx().ok()?;
    let (key, real) = super::kstat(&st);
    let creds = ctx.creds.get(req.tid);
    let unchanged = real.mode & 0o6000 == 0
        && ctx.bounds.reach(key, &real) == crate::bounds::Reach::Own
        && ctx.inodes.record(key, real.attrs()).is_none()
        && {
            let view = ctx.inodes.view(key, real.attrs());
            fr_emulator::rules::chown(view, uid, gid, &creds).is_ok_and(|new| new == view)
        };
    if !unchanged {
        return None;
    }
    Some(match file.touch_owner() {
        Ok(()) => Ok(Reply::Value(0)),
        Err(e @ (Errno::ROFS | Errno::PERM)) => Err(e),
        Err(_) => return None,
    })
}

/// `fchownat(dirfd, path, uid, gid, flags)`.
pub fn fchownat(ctx: &Context, req: &Request<'_>) -> Outcome {
    let file = at_file(ctx, req, req.int(0), req.ptr(1), req.int(4))?;
    set_owner(ctx, req, file, new_owner(req, 2, W32))
}

/// The chown of `file` by the calling thread. In subuid mode, when the
/// namespace maps the file's owners and the new ones and the file is the
/// image's own, the kernel stores them ([`kernel_chown`]); otherwise (ids
/// beyond the ranges, another user's file, a bind's or a file fr's caller
/// passed on, root-mapped mode) the inode table records them and the real
/// file is not touched.
fn set_owner(
    ctx: &Context,
    req: &Request<'_>,
    file: OwnedFd,
    (uid, gid): (Option<u32>, Option<u32>),
) -> Outcome {
    let (key, real) = real_stat(file.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS)?;
    may_change(file.as_fd(), &real)?;
    let creds = ctx.creds.get(req.tid);
    // Only the image's own files (or the host tree's) are given to
    // another owner for real (see crate::bounds).
    let own = ctx.bounds.reach(key, &real) == crate::bounds::Reach::Own;
    if ctx.namespace == crate::Namespace::Subuid && own {
        let view = ctx.inodes.view(key, real.attrs());
        fr_emulator::rules::chown(view, uid, gid, &creds).map_err(refused)?;
        // A record (a mode, a device, xattrs) follows the new owner. It is
        // changed first: a real chown cannot be taken back (it clears the
        // set-id bits), and a change the journal refuses must leave the
        // file as it was. If the kernel then refuses, the record holds the
        // owner, as it would have anyway.
        if ctx.inodes.record(key, real.attrs()).is_some() {
            ctx.inodes.chown(key, real.attrs(), uid, gid, &creds).map_err(refused)?;
            if !kernel_chown(ctx, file.as_fd(), &real, uid, gid) {
                touch_ctime(ctx, file.as_fd(), key, &real, Touched::Owner);
            }
            return Ok(Reply::Value(0));
        }
        if kernel_chown(ctx, file.as_fd(), &real, uid, gid) {
            return Ok(Reply::Value(0));
        }
    }
    ctx.inodes.chown(key, real.attrs(), uid, gid, &creds).map_err(refused)?;
    // Recorded: the file's ctime moves as real root's chown moves it.
    touch_ctime(ctx, file.as_fd(), key, &real, Touched::Owner);
    Ok(Reply::Value(0))
}

/// Subuid mode: chowns `file` for real when the namespace maps its
/// current owner and group (the kernel's `privileged_wrt_inode_uidgid()`)
/// and the requested ids; `false` when the chown is left to the inode
/// table.
pub(super) fn kernel_chown(
    ctx: &Context,
    file: std::os::fd::BorrowedFd<'_>,
    real: &fr_emulator::Kstat,
    uid: Option<u32>,
    gid: Option<u32>,
) -> bool {
    let ids = ctx.inodes.ids();
    let mapped_now = ids.uid_outside(ids.uid_inside(real.uid)) == Some(real.uid)
        && ids.gid_outside(ids.gid_inside(real.gid)) == Some(real.gid);
    let mapped_new = uid.is_none_or(|u| ids.uid_outside(u).is_some())
        && gid.is_none_or(|g| ids.gid_outside(g).is_some());
    if !(mapped_now && mapped_new) {
        return false;
    }
    // fr is in the workload's namespace: the ids are the namespace's.
    let (uid, gid) = (uid.map(Uid::from_raw), gid.map(Gid::from_raw));
    match fs::chownat(file, "", uid, gid, AtFlags::EMPTY_PATH) {
        Ok(()) => true,
        Err(e) => {
            log::debug!("chown in the namespace failed ({e}): recorded instead");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::request::Target;

    /// A target whose memory is never read.
    #[derive(Debug)]
    struct NoMemory;

    impl Target for NoMemory {
        fn read(&self, _: u64, _: &mut [u8]) -> Result<usize, Errno> {
            unreachable!("a chown's ids are registers")
        }
        fn write(&self, _: &[(u64, &[u8])]) -> Result<(), Errno> {
            unreachable!("a chown writes nothing")
        }
        fn still_waiting(&self) -> Result<(), Errno> {
            Ok(())
        }
    }

    fn owner(arch: Arch, uid: u64, gid: u64, width: Width) -> (Option<u32>, Option<u32>) {
        new_owner(&Request::over(&NoMemory, arch, 0, [0, uid, gid, 0, 0, 0]), 1, width)
    }

    #[test]
    fn minus_one_means_unchanged_in_both_widths() {
        assert_eq!(owner(Arch::X86_64, 0xffff_ffff, 70000, W32), (None, Some(70000)));
        // The registers' high half is not the id's.
        assert_eq!(owner(Arch::X86_64, 0x1_ffff_ffff, 0x2_0000_0005, W32), (None, Some(5)));
        assert_eq!(owner(Arch::I386, 0xffff, 0xffff_ffff, W16), (None, None));
        assert_eq!(owner(Arch::I386, 65534, 0xfffe, W16), (Some(65534), Some(65534)));
        // The kernel truncates a 16-bit argument before widening it.
        assert_eq!(owner(Arch::I386, 0x1_0005, 0x7_ffff, W16), (Some(5), None));
    }
}
