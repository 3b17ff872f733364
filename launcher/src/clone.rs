//! An image copied as hard links: every directory made anew (with its
//! mode, `user.*` xattrs and times), every other file a second link to
//! the same inode, and the metadata store's snapshot copied, whose paths
//! give each record to the copy's files when it is loaded. A copy costs a
//! few system calls a file and no data; the files it shares must never be
//! changed in place, which is why the cache's images run read-only and
//! why an unpacked layer only ever replaces a file, never writes into it.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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
    copy_image(from, to, false)
}

/// Copies the image `from` to `to`, which must not exist, with its data:
/// a copy that may be changed (a build's, from a cached image). Regular
/// files are copied (`copy_file_range`, which shares extents where the
/// file system can), with their mode, `user.*` xattrs and times; hard
/// links within the tree stay links; symbolic links and fifos are made
/// anew; sockets are left out.
pub fn duplicate_image(from: &Path, to: &Path) -> Result<(), Error> {
    copy_image(from, to, true)
}

fn copy_image(from: &Path, to: &Path, data: bool) -> Result<(), Error> {
    let src =
        fs::openat(CWD, from, DIR_FLAGS, Mode::empty()).map_err(|e| failed(from, "opening", e))?;
    let st = fs::statx(&src, "", AtFlags::EMPTY_PATH, StatxFlags::BASIC_STATS)
        .map_err(|e| failed(from, "reading", e))?;
    fs::mkdirat(CWD, to, Mode::from_raw_mode(0o700)).map_err(|e| failed(to, "making", e))?;
    let dst =
        fs::openat(CWD, to, DIR_FLAGS, Mode::empty()).map_err(|e| failed(to, "opening", e))?;
    let mut copier = Copier { data, links: HashMap::new() };
    copier.copy_dir(&src, &dst, to, true)?;
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

/// A copy under way: whether data is copied, and the first copy of each
/// file with several links.
struct Copier {
    data: bool,
    links: HashMap<(u32, u32, u64), PathBuf>,
}

impl Copier {
    /// The entries of `src` into `dst` (at `shown`), recursively.
    fn copy_dir(
        &mut self,
        src: &OwnedFd,
        dst: &OwnedFd,
        shown: &Path,
        top: bool,
    ) -> Result<(), Error> {
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
                self.copy_dir(&s, &d, &path, false)?;
                finish_dir(&s, &d, &st, &path)?;
            } else if !self.data {
                fs::linkat(src, name.as_slice(), dst, name.as_slice(), AtFlags::empty())
                    .map_err(|e| failed(&path, "linking", e))?;
            } else {
                self.copy_file(src, dst, &name, &st, &path)?;
            }
        }
        Ok(())
    }

    /// A file other than a directory, copied with its data.
    fn copy_file(
        &mut self,
        src: &OwnedFd,
        dst: &OwnedFd,
        name: &[u8],
        st: &fs::Statx,
        path: &Path,
    ) -> Result<(), Error> {
        let key = (st.stx_dev_major, st.stx_dev_minor, st.stx_ino);
        if st.stx_nlink > 1 {
            if let Some(first) = self.links.get(&key) {
                return fs::linkat(CWD, first, dst, name, AtFlags::empty())
                    .map_err(|e| failed(path, "linking", e));
            }
        }
        let perms = perms_of(st);
        let times = times_of(st);
        match FileType::from_raw_mode(st.stx_mode.into()) {
            FileType::RegularFile => {
                let from = fs::openat(
                    src,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| failed(path, "opening", e))?;
                let to = fs::openat(
                    dst,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| failed(path, "making", e))?;
                let (mut from, mut to) = (std::fs::File::from(from), std::fs::File::from(to));
                std::io::copy(&mut from, &mut to).map_err(|e| failed(path, "copying", e))?;
                copy_user_xattrs(&from, &to, path)?;
                fs::fchmod(&to, perms).map_err(|e| failed(path, "setting the mode", e))?;
                fs::futimens(&to, &times).map_err(|e| failed(path, "setting times", e))?;
            }
            FileType::Symlink => {
                let target = fs::readlinkat(src, name, Vec::new())
                    .map_err(|e| failed(path, "reading", e))?;
                fs::symlinkat(target.as_c_str(), dst, name)
                    .map_err(|e| failed(path, "making", e))?;
                let _ = fs::utimensat(dst, name, &times, AtFlags::SYMLINK_NOFOLLOW);
            }
            FileType::Fifo => {
                fs::mknodat(dst, name, FileType::Fifo, perms, 0)
                    .map_err(|e| failed(path, "making", e))?;
                let _ = fs::utimensat(dst, name, &times, AtFlags::SYMLINK_NOFOLLOW);
            }
            _ => {
                log::warn!("{}: a socket or device is not copied", path.display());
                return Ok(());
            }
        }
        if st.stx_nlink > 1 {
            self.links.insert(key, path.to_path_buf());
        }
        Ok(())
    }
}

/// The `user.*` xattrs of `from` set on `to`.
fn copy_user_xattrs(from: &impl AsFd, to: &impl AsFd, shown: &Path) -> Result<(), Error> {
    let mut names = vec![0u8; 65536];
    let n = match fs::flistxattr(from, &mut names) {
        Ok(n) => n,
        Err(Errno::NOTSUP) => 0,
        Err(e) => return Err(failed(shown, "listing xattrs", e)),
    };
    for name in names[..n].split(|&b| b == 0).filter(|n| n.starts_with(b"user.")) {
        let mut value = vec![0u8; 65536];
        let len = fs::fgetxattr(from, name, &mut value)
            .map_err(|e| failed(shown, "reading xattrs", e))?;
        fs::fsetxattr(to, name, &value[..len], fs::XattrFlags::empty())
            .map_err(|e| failed(shown, "setting xattrs", e))?;
    }
    Ok(())
}

/// A copied directory's `user.*` xattrs, mode and times, once its
/// entries are in it.
fn finish_dir(src: &OwnedFd, dst: &OwnedFd, st: &fs::Statx, shown: &Path) -> Result<(), Error> {
    copy_user_xattrs(src, dst, shown)?;
    fs::fchmod(dst, perms_of(st)).map_err(|e| failed(shown, "setting the mode", e))?;
    fs::futimens(dst, &times_of(st)).map_err(|e| failed(shown, "setting times", e))
}

/// The permission bits of the file `st` describes.
fn perms_of(st: &fs::Statx) -> Mode {
    Mode::from_raw_mode(u32::from(st.stx_mode) & 0o7777)
}

/// The access and modification times of the file `st` describes.
fn times_of(st: &fs::Statx) -> Timestamps {
    let t = |ts: fs::StatxTimestamp| Timespec { tv_sec: ts.tv_sec, tv_nsec: ts.tv_nsec.into() };
    Timestamps { last_access: t(st.stx_atime), last_modification: t(st.stx_mtime) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    #[test]
    fn copies_keep_modes_links_and_data() {
        let base = std::env::temp_dir().join(format!("fr-clone-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let src = base.join("src");
        std::fs::create_dir_all(src.join("d/sub")).unwrap();
        std::fs::write(src.join("d/f"), "data").unwrap();
        std::fs::hard_link(src.join("d/f"), src.join("d/sub/g")).unwrap();
        std::os::unix::fs::symlink("f", src.join("d/l")).unwrap();
        fs::mknodat(CWD, src.join("fifo").as_path(), FileType::Fifo, Mode::from_raw_mode(0o640), 0)
            .unwrap();
        std::fs::set_permissions(src.join("d/f"), std::fs::Permissions::from_mode(0o4751)).unwrap();
        std::fs::set_permissions(src.join("d"), std::fs::Permissions::from_mode(0o750)).unwrap();
        std::fs::create_dir(src.join(DIR)).unwrap();
        std::fs::write(src.join(DIR).join("store"), "snapshot").unwrap();
        std::fs::write(src.join(DIR).join("journal"), "not copied").unwrap();
        let (linked, copied) = (base.join("linked"), base.join("copied"));
        clone_image(&src, &linked).unwrap();
        duplicate_image(&src, &copied).unwrap();
        let m = |p: &Path| std::fs::symlink_metadata(p).unwrap();
        for copy in [&linked, &copied] {
            assert_eq!(m(&copy.join("d")).mode() & 0o7777, 0o750);
            assert_eq!(m(&copy.join("d/f")).mode() & 0o7777, 0o4751);
            assert_eq!(std::fs::read_to_string(copy.join("d/sub/g")).unwrap(), "data");
            assert_eq!(m(&copy.join("d/f")).ino(), m(&copy.join("d/sub/g")).ino());
            assert_eq!(std::fs::read_link(copy.join("d/l")).unwrap(), Path::new("f"));
            assert!(m(&copy.join("fifo")).file_type().is_fifo());
            assert_eq!(std::fs::read_to_string(copy.join(DIR).join("store")).unwrap(), "snapshot");
            assert!(!copy.join(DIR).join("journal").exists());
        }
        assert_eq!(m(&linked.join("d/f")).ino(), m(&src.join("d/f")).ino(), "a hard link");
        assert_ne!(m(&copied.join("d/f")).ino(), m(&src.join("d/f")).ino(), "a copy");
        assert!(clone_image(&src, &linked).is_err(), "the destination exists");
        let _ = std::fs::remove_dir_all(&base);
    }
}
