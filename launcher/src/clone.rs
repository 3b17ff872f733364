//! An image copied as hard links: every directory made anew (with its
//! mode, `user.*` xattrs and times), every other file a second link to
//! the same inode, and the metadata store's snapshot copied, whose paths
//! give each record to the copy's files when it is loaded. A copy costs a
//! few system calls a file and no data; the files it shares must never be
//! changed in place, which is why the cache's images run read-only and
//! why an unpacked layer only ever replaces a file, never writes into it.

use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self, AtFlags, FileType, Mode, OFlags, StatxFlags, Timespec, Timestamps, CWD};

use rustix::io::Errno;

use crate::error::Error;
use crate::store::DIR;

fn failed(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Image { path: path.display().to_string(), why: format!("{what}: {e}") }
}

const DIR_FLAGS: OFlags =
    OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::NOFOLLOW).union(OFlags::CLOEXEC);

/// Copies the image `from` to `to`, which must not exist, as hard links.
pub fn clone_image(from: &Path, to: &Path) -> Result<(), Error> {
    let src =
        fs::openat(CWD, from, DIR_FLAGS, Mode::empty()).map_err(|e| failed(from, "opening", e))?;
    let st = fs::statx(&src, "", AtFlags::EMPTY_PATH, StatxFlags::BASIC_STATS)
        .map_err(|e| failed(from, "reading", e))?;
    fs::mkdirat(CWD, to, Mode::from_raw_mode(0o700)).map_err(|e| failed(to, "making", e))?;
    let dst =
        fs::openat(CWD, to, DIR_FLAGS, Mode::empty()).map_err(|e| failed(to, "opening", e))?;
    copy_dir(&src, &dst, to, true)?;
    finish_dir(&src, &dst, &st, to)?;
    // The snapshot alone: the copy has its own lock, and no journal (a
    // journal is of the original's inodes, and replayed there only).
    let store = from.join(DIR).join("store");
    if store.exists() {
        std::fs::create_dir_all(to.join(DIR)).map_err(|e| failed(to, "making .fr", e))?;
        std::fs::copy(&store, to.join(DIR).join("store"))
            .map_err(|e| failed(&store, "copying", e))?;
    }
    Ok(())
}

/// The entries of `src` into `dst`, recursively.
fn copy_dir(src: &OwnedFd, dst: &OwnedFd, shown: &Path, top: bool) -> Result<(), Error> {
    let mut names = Vec::new();
    let entries = fs::Dir::read_from(src).map_err(|e| failed(shown, "reading", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| failed(shown, "reading", e))?;
        let name = entry.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." && !(top && name == DIR.as_bytes()) {
            names.push(name);
        }
    }
    for name in names {
        let path = shown.join(std::ffi::OsStr::from_bytes(&name));
        let st =
            fs::statx(src, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS)
                .map_err(|e| failed(&path, "reading", e))?;
        if FileType::from_raw_mode(st.stx_mode.into()) == FileType::Directory {
            fs::mkdirat(dst, name.as_slice(), Mode::from_raw_mode(0o700))
                .map_err(|e| failed(&path, "making", e))?;
            let s = fs::openat(src, name.as_slice(), DIR_FLAGS, Mode::empty())
                .map_err(|e| failed(&path, "opening", e))?;
            let d = fs::openat(dst, name.as_slice(), DIR_FLAGS, Mode::empty())
                .map_err(|e| failed(&path, "opening", e))?;
            copy_dir(&s, &d, &path, false)?;
            finish_dir(&s, &d, &st, &path)?;
        } else {
            fs::linkat(src, name.as_slice(), dst, name.as_slice(), AtFlags::empty())
                .map_err(|e| failed(&path, "linking", e))?;
        }
    }
    Ok(())
}

/// A copied directory's `user.*` xattrs, mode and times, once its
/// entries are in it.
fn finish_dir(src: &OwnedFd, dst: &OwnedFd, st: &fs::Statx, shown: &Path) -> Result<(), Error> {
    let mut names = vec![0u8; 65536];
    let n = match fs::flistxattr(src, &mut names) {
        Ok(n) => n,
        Err(Errno::NOTSUP) => 0,
        Err(e) => return Err(failed(shown, "listing xattrs", e)),
    };
    for name in names[..n].split(|&b| b == 0).filter(|n| n.starts_with(b"user.")) {
        let mut value = vec![0u8; 65536];
        let len =
            fs::fgetxattr(src, name, &mut value).map_err(|e| failed(shown, "reading xattrs", e))?;
        fs::fsetxattr(dst, name, &value[..len], fs::XattrFlags::empty())
            .map_err(|e| failed(shown, "setting xattrs", e))?;
    }
    fs::fchmod(dst, Mode::from_raw_mode(u32::from(st.stx_mode) & 0o7777))
        .map_err(|e| failed(shown, "setting the mode", e))?;
    let t = |ts: fs::StatxTimestamp| Timespec { tv_sec: ts.tv_sec, tv_nsec: ts.tv_nsec.into() };
    let times = Timestamps { last_access: t(st.stx_atime), last_modification: t(st.stx_mtime) };
    fs::futimens(dst, &times).map_err(|e| failed(shown, "setting times", e))
}
