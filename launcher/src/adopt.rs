//! A tree another rootless tool unpacked, made an fr image the first
//! time fr runs it: the owners and modes those tools keep in `user.*`
//! xattrs become records of the image's store, so that the workload sees
//! what they meant, as real root's unpack would have left it.
//!
//! - umoci `--rootless` keeps an owner it could not give in
//!   `user.rootlesscontainers` (a device node it turned into an empty
//!   file, or a capability it could not set, it does not keep at all:
//!   those are lost before fr sees the tree);
//! - containers/storage and fuse-overlayfs keep owner, mode and type
//!   (device numbers too) in `user.containers.override_stat`.
//!
//! The xattr is removed once its record is in the store, which holds it
//! from then on (`fr export` writes it into an archive's headers).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use fr_emulator::attrs::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK};
use fr_emulator::{Attrs, InodeTable};
use fr_image::oci::rootless::{self, Type, OVERRIDE_STAT, ROOTLESSCONTAINERS};
use rustix::fs::{self, AtFlags, StatxFlags, CWD};

use crate::store::{key_of, DIR};

/// Walks `image` and records what the xattrs say; returns how many files
/// got a record.
pub fn adopt(image: &Path, table: &InodeTable) -> usize {
    let mut adopted = 0;
    walk(image, image, table, &mut adopted);
    if adopted > 0 {
        log::info!(
            "{}: the owners other rootless tools left in user.* xattrs of {adopted} files are now \
             kept in {}/{DIR}",
            image.display(),
            image.display()
        );
    }
    adopted
}

fn walk(image: &Path, dir: &Path, table: &InodeTable, adopted: &mut usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if dir == image && entry.file_name() == DIR {
            continue;
        }
        if adopt_one(&path, table) {
            *adopted += 1;
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(image, &path, table, adopted);
        }
    }
}

fn get(path: &Path, name: &[u8]) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let n = fs::lgetxattr(path, OsStr::from_bytes(name), &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// The record for `path` from its xattrs, if it has either.
fn adopt_one(path: &Path, table: &InodeTable) -> bool {
    let rlc = get(path, ROOTLESSCONTAINERS);
    let ovs = get(path, OVERRIDE_STAT);
    if rlc.is_none() && ovs.is_none() {
        return false;
    }
    let Ok(st) = fs::statx(CWD, path, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS) else {
        return false;
    };
    let key = key_of(&st);
    let real = Attrs {
        mode: u32::from(st.stx_mode),
        uid: st.stx_uid,
        gid: st.stx_gid,
        rdev_major: st.stx_rdev_major,
        rdev_minor: st.stx_rdev_minor,
    };
    let mut want = table.view(key, real);
    let real_type = want.mode & S_IFMT;
    let mut used = false;
    if let Some(v) = &ovs {
        match rootless::override_stat(v) {
            Ok(o) => {
                want.uid = o.uid;
                want.gid = o.gid;
                let (kind, rdev) = match o.kind {
                    None => (real_type, (want.rdev_major, want.rdev_minor)),
                    Some(Type::File) => (S_IFREG, (0, 0)),
                    Some(Type::Dir) => (S_IFDIR, (0, 0)),
                    Some(Type::Symlink) => (S_IFLNK, (0, 0)),
                    Some(Type::Pipe) => (S_IFIFO, (0, 0)),
                    Some(Type::Socket) => (S_IFSOCK, (0, 0)),
                    Some(Type::Block(a, b)) => (S_IFBLK, (a, b)),
                    Some(Type::Char(a, b)) => (S_IFCHR, (a, b)),
                };
                // A device may stand on a regular placeholder, as fr's own
                // do; any other change of type is not taken.
                let placeholder = real_type == S_IFREG && matches!(kind, S_IFBLK | S_IFCHR);
                if kind == real_type || placeholder {
                    want.mode = kind | o.perms;
                    (want.rdev_major, want.rdev_minor) = rdev;
                } else {
                    log::warn!(
                        "{}: {} says another type than the file's; its type is kept",
                        path.display(),
                        String::from_utf8_lossy(OVERRIDE_STAT)
                    );
                    want.mode = real_type | o.perms;
                }
                used = true;
            }
            Err(why) => log::warn!(
                "{}: {} is not understood ({why}); left as it is",
                path.display(),
                String::from_utf8_lossy(OVERRIDE_STAT)
            ),
        }
    } else if let Some(v) = &rlc {
        match rootless::rootlesscontainers(v) {
            Ok(owner) => {
                want.uid = owner.uid.unwrap_or(want.uid);
                want.gid = owner.gid.unwrap_or(want.gid);
                used = true;
            }
            Err(why) => log::warn!(
                "{}: {} is not understood ({why}); left as it is",
                path.display(),
                String::from_utf8_lossy(ROOTLESSCONTAINERS)
            ),
        }
    }
    if !used {
        return false;
    }
    let xattrs = table.xattrs(key, real);
    let _ = table.create_with(key, want, xattrs);
    // Both go: the store holds what the one taken said.
    for name in [ROOTLESSCONTAINERS, OVERRIDE_STAT] {
        let _ = fs::lremovexattr(path, OsStr::from_bytes(name));
    }
    true
}
