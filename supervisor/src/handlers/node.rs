//! `mknod mknodat`: real root makes character and block devices; fr makes
//! an empty regular file in their place, which the workload can open, read
//! and write (debootstrap writes to its test node), and records the node's
//! type and device number, which every stat then shows. Fifos, sockets and
//! regular files are real, made as [`super::create`] makes files.

use fr_emulator::abi::new_decode_dev;
use fr_emulator::attrs::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFMT, S_IFREG, S_IFSOCK};
use fr_emulator::rules;
use rustix::fs::{self, AtFlags, FileType, Mode, StatxFlags};
use rustix::io::Errno;

use super::{create, read_plain_path, refused, umask, Context, Outcome, Reply};
use crate::request::Request;
use crate::resolve::AT_FDCWD;

/// `mknod(path, mode, dev)`.
pub fn mknod(ctx: &Context, req: &Request<'_>) -> Outcome {
    make_node(ctx, req, AT_FDCWD, req.ptr(0), req.uint(1), req.uint(2))
}

/// `mknodat(dirfd, path, mode, dev)`.
pub fn mknodat(ctx: &Context, req: &Request<'_>) -> Outcome {
    make_node(ctx, req, req.int(0), req.ptr(1), req.uint(2), req.uint(3))
}

/// The type of file `mknod`'s `mode` asks for, as `fs/namei.c:
/// may_mknod()` checks it: none is a regular file, a directory is `EPERM`,
/// anything but a device, fifo or socket `EINVAL`.
pub fn node_kind(mode: u32) -> Result<u32, Errno> {
    match mode & S_IFMT {
        0 => Ok(S_IFREG),
        S_IFDIR => Err(Errno::PERM),
        k @ (S_IFCHR | S_IFBLK | S_IFREG | S_IFIFO | S_IFSOCK) => Ok(k),
        _ => Err(Errno::INVAL),
    }
}

/// `fs/namei.c: do_mknodat()`: the type is checked first (`may_mknod()`),
/// then the name, the directory's permissions and, for devices,
/// `CAP_MKNOD`; the file is made with the caller's umask applied.
fn make_node(
    ctx: &Context,
    req: &Request<'_>,
    dirfd: i32,
    path_addr: u64,
    mode: u32,
    dev: u32,
) -> Outcome {
    let kind = node_kind(mode)?;
    let device = kind == S_IFCHR || kind == S_IFBLK;
    let creds = ctx.creds.get(req.tid);
    if !device && create::kernel_owner_is_right(ctx, &creds) && mode & 0o600 == 0o600 {
        return Ok(Reply::Continue("the kernel makes this fifo, socket or file right"));
    }
    let path = read_plain_path(req, path_addr)?;
    let (dir, name) = ctx.parent(req, dirfd, &path, false)?;
    let parent = create::directory(ctx, &dir, &name, &creds)?;
    if !device && create::kernel_makes_in(ctx, &parent, &creds) && mode & 0o600 == 0o600 {
        return Ok(Reply::Continue("the kernel makes this node right in this directory"));
    }
    if device {
        if let Err(why) = rules::may_mknod_device(&creds) {
            let exists =
                fs::statx(&dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE)
                    .is_ok();
            return Err(if exists { Errno::EXIST } else { refused(why) });
        }
    }
    let (mut attrs, xattrs) = parent.new_file(ctx, kind, mode & 0o7777, umask(req)?, &creds);
    (attrs.rdev_major, attrs.rdev_minor) = if device { new_decode_dev(dev) } else { (0, 0) };
    // A device becomes a regular placeholder the user can read and write,
    // as real root can use a node whatever its mode.
    let real_kind = if device { FileType::RegularFile } else { FileType::from_raw_mode(kind) };
    fs::mknodat(
        &dir,
        name.as_slice(),
        real_kind,
        Mode::from_raw_mode((attrs.perms() & 0o777) | 0o600),
        0,
    )?;
    create::record(ctx, &dir, &name, (attrs, xattrs))?;
    Ok(Reply::Value(0))
}
