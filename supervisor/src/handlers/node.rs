//! `mknod mknodat`: real root makes character and block devices; fr makes
//! an empty regular file in their place, which the workload can open, read
//! and write (debootstrap writes to its test node), and records the node's
//! type and device number, which every stat then shows. Fifos, sockets and
//! regular files the kernel makes itself.

use std::os::fd::AsFd;

use fr_emulator::abi::new_decode_dev;
use fr_emulator::attrs::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFMT, S_IFREG, S_IFSOCK};
use fr_emulator::{rules, Attrs};
use rustix::fs::{self, AtFlags, FileType, Mode, OFlags, StatxFlags};
use rustix::io::Errno;

use super::{read_plain_path, real_stat, refused, umask, Context, Outcome, Reply};
use crate::request::Request;
use crate::resolve::{self, AT_FDCWD};

/// `mknod(path, mode, dev)`.
pub fn mknod(ctx: &Context, req: &Request<'_>) -> Outcome {
    make_node(ctx, req, AT_FDCWD, req.ptr(0), req.uint(1), req.uint(2))
}

/// `mknodat(dirfd, path, mode, dev)`.
pub fn mknodat(ctx: &Context, req: &Request<'_>) -> Outcome {
    make_node(ctx, req, req.int(0), req.ptr(1), req.uint(2), req.uint(3))
}

/// `fs/namei.c: do_mknodat()`: the type is checked first (`may_mknod()`),
/// then the name, then the file is made with the caller's umask applied.
fn make_node(
    ctx: &Context,
    req: &Request<'_>,
    dirfd: i32,
    path_addr: u64,
    mode: u32,
    dev: u32,
) -> Outcome {
    let kind = mode & S_IFMT;
    match kind {
        S_IFCHR | S_IFBLK => {}
        0 | S_IFREG | S_IFIFO | S_IFSOCK => {
            return Ok(Reply::Continue("the kernel makes these itself"))
        }
        S_IFDIR => return Err(Errno::PERM),
        _ => return Err(Errno::INVAL),
    }
    let path = read_plain_path(req, path_addr)?;
    let (dir, name) = resolve::parent(req, dirfd, &path, false)?;
    let creds = ctx.creds.get(req.tid);
    let (dir_key, dir_real) = real_stat(dir.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS)?;
    let dir_view = ctx.inodes.view(dir_key, dir_real.attrs());
    // In the kernel's order: an existing name (filename_create()), the
    // directory's permissions (may_create()), then the capability.
    if let Err(why) =
        rules::may_create(&dir_view, &creds).and_then(|()| rules::may_mknod_device(&creds))
    {
        let exists =
            fs::statx(&dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE).is_ok();
        return Err(if exists { Errno::EXIST } else { refused(why) });
    }
    let perms = mode & 0o7777 & !umask(req)?;
    // The placeholder stays readable and writable by the user, as real
    // root can use a node whatever its mode.
    fs::mknodat(
        &dir,
        name.as_slice(),
        FileType::RegularFile,
        Mode::from_raw_mode(perms | 0o600),
        0,
    )?;
    let file = fs::openat(
        &dir,
        name.as_slice(),
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let (key, _) = real_stat(file.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS)?;
    let (rdev_major, rdev_minor) = new_decode_dev(dev);
    let (uid, gid) = creation_owner(&creds, &dir_view);
    ctx.inodes.create(key, Attrs { mode: kind | perms, uid, gid, rdev_major, rdev_minor });
    Ok(Reply::Value(0))
}

/// The owner and group a new file gets in directory `dir`: the caller's
/// fsuid and fsgid, or the directory's group if the directory is
/// set-group-id (`fs/inode.c: inode_init_owner()`).
fn creation_owner(creds: &fr_emulator::Creds, dir: &Attrs) -> (u32, u32) {
    let gid =
        if dir.mode & 0o2000 != 0 && dir.mode & S_IFMT == S_IFDIR { dir.gid } else { creds.fsgid };
    (creds.fsuid, gid)
}
