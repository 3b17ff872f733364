//! `fr import ARCHIVE IMAGE`: unpacks a tar archive (plain, gzip or zstd)
//! as the unprivileged user, and records in IMAGE's metadata store every
//! owner, mode, device and extended attribute the user cannot set for
//! real, so that a session in IMAGE, and `fr export`, see what real root's
//! `tar --same-owner -xpf` would have left.
//!
//! No member is written outside IMAGE: a name that is absolute or has a
//! `..` component, a hard link to such a name, and a path through a
//! symbolic link are refused with an error naming the member. Every
//! directory on the way is opened without following symlinks, relative
//! to the one before.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fr_emulator::acl::Acl;
use fr_emulator::attrs::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG};
use fr_emulator::table::Xattrs;
use fr_emulator::tar::{Entry, Kind, Reader};
use fr_emulator::xattr::{namespace, Namespace};
use fr_emulator::{Attrs, IdMap, InodeTable};
use rustix::fs::{self, AtFlags, FileType, Mode, OFlags, StatxFlags, Timespec, Timestamps};
use rustix::io::Errno;

use crate::error::Error;
use crate::export::{Progress, Summary};
use crate::run::check_image;
use crate::store::{key_of, ImageStore, DIR};

#[derive(Debug)]
pub struct ImportOptions {
    /// The archive; `-` is standard input.
    pub archive: PathBuf,
    /// The image directory, made if it does not exist.
    pub image: PathBuf,
    pub progress: bool,
}

fn archive_error(archive: &Path, why: impl std::fmt::Display) -> Error {
    Error::Import { archive: archive.display().to_string(), why: why.to_string() }
}

/// Unpacks `opts.archive` into `opts.image`.
pub fn import(opts: &ImportOptions) -> Result<Summary, Error> {
    match std::fs::create_dir(&opts.image) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Error::Image { path: opts.image.display().to_string(), why: e.to_string() })
        }
    }
    let image = check_image(&opts.image)?;
    let store = ImageStore::open(&image)?;
    let (uid, gid) = (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
    let table = InodeTable::new(IdMap::new(uid, gid));
    store.load(&table)?;
    let root =
        fs::open(&image, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::Image { path: image.display().to_string(), why: e.to_string() })?;

    let read = Arc::new(AtomicU64::new(0));
    let (input, total): (Box<dyn Read>, u64) = if opts.archive.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), 0)
    } else {
        let file = File::open(&opts.archive).map_err(|e| archive_error(&opts.archive, e))?;
        let size = file.metadata().map_or(0, |m| m.len());
        (Box::new(file), size)
    };
    let input = Counting { inner: input, read: read.clone() };
    let mut input = BufReader::with_capacity(1 << 20, input);
    let magic = input.fill_buf().map_err(|e| archive_error(&opts.archive, e))?.to_vec();
    let input: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(input))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::Decoder::with_buffer(input).map_err(|e| archive_error(&opts.archive, e))?)
    } else {
        Box::new(input)
    };

    let mut unpacker = Unpacker {
        archive: &opts.archive,
        root,
        table: &table,
        ids: IdMap::new(uid, gid),
        dir_times: Vec::new(),
        warned: Vec::new(),
        summary: Summary::default(),
        progress: opts.progress.then(|| Progress::new(total)),
        read,
    };
    let mut reader = Reader::new(input);
    let result = loop {
        match reader.next_entry() {
            Ok(Some(entry)) => {
                if let Err(e) = unpacker.entry(&mut reader, entry) {
                    break Err(e);
                }
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(archive_error(&opts.archive, e)),
        }
    };
    unpacker.finish_dirs();
    // What was unpacked before an error is in IMAGE: its records are kept
    // too, so that the image and its store agree.
    if table.changed() {
        store.save(&table)?;
    }
    result?;
    if let Some(p) = &mut unpacker.progress {
        p.done(&unpacker.summary);
    }
    Ok(std::mem::take(&mut unpacker.summary))
}

/// A member name as components inside the image: `./` and empty parts
/// dropped; absolute names and `..` refused; `.fr` at the top is fr's.
fn components(name: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    if name.starts_with(b"/") {
        return Err("it is an absolute path");
    }
    if name.contains(&0) {
        return Err("it contains a NUL byte");
    }
    let parts: Vec<&[u8]> =
        name.split(|&b| b == b'/').filter(|p| !p.is_empty() && *p != b".").collect();
    if parts.iter().any(|p| *p == b"..") {
        return Err("it has a `..` component");
    }
    if parts.first().is_some_and(|p| *p == DIR.as_bytes()) {
        return Err("IMAGE/.fr is fr's metadata store");
    }
    Ok(parts)
}

struct Unpacker<'a> {
    archive: &'a Path,
    root: OwnedFd,
    table: &'a InodeTable,
    ids: IdMap,
    /// Directories whose times are set last (unpacking into them changes
    /// them), as (path components, mtime).
    dir_times: Vec<(Vec<Vec<u8>>, i64)>,
    /// Pax records already warned about.
    warned: Vec<String>,
    summary: Summary,
    progress: Option<Progress>,
    /// Bytes of the archive file read so far (the progress bar's measure).
    read: Arc<AtomicU64>,
}

/// A reader that counts the bytes read through it.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Unpacker<'_> {
    fn refuse(&self, name: &[u8], why: impl std::fmt::Display) -> Error {
        archive_error(self.archive, format!("member `{}`: {why}", name.escape_ascii()))
    }

    /// The directory `parts` inside the image, opened without following
    /// symlinks; missing directories are made (as tar does) when `make`.
    fn dir(&self, parts: &[&[u8]], name: &[u8], make: bool) -> Result<OwnedFd, Error> {
        let mut dir = fs::openat(
            &self.root,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.refuse(name, e))?;
        for part in parts {
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let next = match fs::openat(&dir, *part, flags, Mode::empty()) {
                Err(Errno::NOENT) if make => {
                    fs::mkdirat(&dir, *part, Mode::from_raw_mode(0o755))
                        .map_err(|e| self.refuse(name, format!("making its directory: {e}")))?;
                    fs::openat(&dir, *part, flags, Mode::empty())
                }
                other => other,
            };
            dir = match next {
                Ok(fd) => fd,
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    return Err(self.refuse(
                        name,
                        format!("`{}` on its path is not a directory (a symbolic link is not followed out of the image)", part.escape_ascii()),
                    ))
                }
                Err(e) => return Err(self.refuse(name, e)),
            };
        }
        Ok(dir)
    }

    fn entry<R: Read>(&mut self, reader: &mut Reader<R>, entry: Entry) -> Result<(), Error> {
        let m = &entry.member;
        let kind = m.kind.unwrap_or(Kind::Regular);
        let parts = components(&m.path).map_err(|why| self.refuse(&m.path, why))?;
        for key in &entry.ignored {
            // GNU tar's --acls writes the ACLs as text too; the binary
            // form beside it is the one applied.
            let xattr = key.strip_prefix("SCHILY.acl.").map(|k| format!("system.posix_acl_{k}"));
            if xattr.is_some_and(|x| m.xattrs.iter().any(|(n, _)| *n == x.as_bytes())) {
                continue;
            }
            if !self.warned.contains(key) {
                log::warn!("{}: pax records `{key}` are not applied", self.archive.display());
                self.warned.push(key.clone());
            }
        }
        let Some((last, parents)) = parts.split_last() else {
            // The image root itself: only its attributes.
            if kind == Kind::Directory {
                let st = fs::statx(&self.root, "", AtFlags::EMPTY_PATH, StatxFlags::BASIC_STATS)
                    .map_err(|e| self.refuse(&m.path, e))?;
                self.record(&entry, &st, &m.path)?;
                self.dir_times.push((Vec::new(), m.mtime));
            }
            self.count(0);
            return Ok(());
        };
        let dir = self.dir(parents, &m.path, true)?;
        // What is there goes, as tar replaces it; a directory stays a
        // directory.
        let existing = fs::statx(&dir, *last, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE);
        let mut dir_stays = false;
        if let Ok(st) = &existing {
            let is_dir = FileType::from_raw_mode(st.stx_mode.into()) == FileType::Directory;
            dir_stays = is_dir && kind == Kind::Directory;
            if !dir_stays {
                let flags = if is_dir { AtFlags::REMOVEDIR } else { AtFlags::empty() };
                fs::unlinkat(&dir, *last, flags)
                    .map_err(|e| self.refuse(&m.path, format!("replacing what is there: {e}")))?;
            }
        }
        let perms = m.mode & 0o777;
        match kind {
            Kind::Regular => {
                let fd = fs::openat(
                    &dir,
                    *last,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| self.refuse(&m.path, e))?;
                let mut file = File::from(fd);
                reader.data(&mut file).map_err(|e| archive_error(self.archive, e))?;
                file.flush().map_err(|e| self.refuse(&m.path, e))?;
                fs::fchmod(file.as_fd(), Mode::from_raw_mode(perms | 0o600))
                    .map_err(|e| self.refuse(&m.path, e))?;
            }
            Kind::Directory => {
                if !dir_stays {
                    fs::mkdirat(&dir, *last, Mode::from_raw_mode(0o700))
                        .map_err(|e| self.refuse(&m.path, e))?;
                }
                fs::chmodat(&dir, *last, Mode::from_raw_mode(perms | 0o700), AtFlags::empty())
                    .map_err(|e| self.refuse(&m.path, e))?;
            }
            Kind::Symlink => fs::symlinkat(m.link.as_slice(), &dir, *last)
                .map_err(|e| self.refuse(&m.path, e))?,
            Kind::HardLink => {
                let target = components(&m.link).map_err(|why| {
                    self.refuse(
                        &m.path,
                        format!("its link target `{}`: {why}", m.link.escape_ascii()),
                    )
                })?;
                let Some((tlast, tparents)) = target.split_last() else {
                    return Err(self.refuse(&m.path, "a hard link to the image root"));
                };
                let tdir = self.dir(tparents, &m.path, false)?;
                fs::linkat(&tdir, *tlast, &dir, *last, AtFlags::empty()).map_err(|e| {
                    self.refuse(&m.path, format!("linking to `{}`: {e}", m.link.escape_ascii()))
                })?;
                self.count(0);
                return Ok(());
            }
            Kind::CharDevice | Kind::BlockDevice => {
                // A regular placeholder the user can use, as a session's
                // mknod makes.
                fs::mknodat(
                    &dir,
                    *last,
                    FileType::RegularFile,
                    Mode::from_raw_mode(perms | 0o600),
                    0,
                )
                .map_err(|e| self.refuse(&m.path, e))?;
            }
            Kind::Fifo => {
                fs::mknodat(&dir, *last, FileType::Fifo, Mode::from_raw_mode(perms | 0o600), 0)
                    .map_err(|e| self.refuse(&m.path, e))?;
            }
        }
        let st = fs::statx(&dir, *last, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS)
            .map_err(|e| self.refuse(&m.path, e))?;
        self.real_xattrs(&dir, last, &entry);
        self.record(&entry, &st, &m.path)?;
        if kind == Kind::Directory {
            self.dir_times.push((parts.iter().map(|p| p.to_vec()).collect(), m.mtime));
        } else {
            let t = Timespec { tv_sec: m.mtime, tv_nsec: 0 };
            let _ = fs::utimensat(
                &dir,
                *last,
                &Timestamps { last_access: t, last_modification: t },
                AtFlags::SYMLINK_NOFOLLOW,
            );
        }
        self.count(entry.data);
        Ok(())
    }

    /// Sets the member's `user.*` attributes on the file for real.
    fn real_xattrs(&self, dir: &OwnedFd, last: &[u8], entry: &Entry) {
        let m = &entry.member;
        let user: Vec<_> =
            m.xattrs.iter().filter(|(n, _)| namespace(n) == Ok(Namespace::User)).collect();
        if user.is_empty() || m.kind == Some(Kind::Symlink) {
            return;
        }
        let file = fs::openat(
            dir,
            last,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        );
        for (name, value) in user {
            let set = file
                .as_ref()
                .map_err(|e| *e)
                .and_then(|f| fs::fsetxattr(f, name.as_slice(), value, fs::XattrFlags::empty()));
            if let Err(e) = set {
                log::warn!(
                    "member `{}`: setting {}: {e}",
                    m.path.escape_ascii(),
                    name.escape_ascii()
                );
            }
        }
    }

    /// Records what the user could not set for real: owner, set-id and
    /// sticky bits, device type and numbers, emulated xattrs.
    fn record(&self, entry: &Entry, st: &fs::Statx, name: &[u8]) -> Result<(), Error> {
        let m = &entry.member;
        let real = Attrs {
            mode: u32::from(st.stx_mode),
            uid: self.ids.uid_inside(st.stx_uid),
            gid: self.ids.gid_inside(st.stx_gid),
            rdev_major: st.stx_rdev_major,
            rdev_minor: st.stx_rdev_minor,
        };
        let (kind_bits, rdev) = match m.kind.unwrap_or(Kind::Regular) {
            Kind::Regular | Kind::HardLink => (S_IFREG, (0, 0)),
            Kind::Directory => (S_IFDIR, (0, 0)),
            Kind::Symlink => (S_IFLNK, (0, 0)),
            Kind::CharDevice => (S_IFCHR, (m.dev_major, m.dev_minor)),
            Kind::BlockDevice => (S_IFBLK, (m.dev_major, m.dev_minor)),
            Kind::Fifo => (S_IFIFO, (0, 0)),
        };
        let perms = if kind_bits == S_IFLNK { 0o777 } else { m.mode & 0o7777 };
        let want = Attrs {
            mode: kind_bits | perms,
            uid: m.uid,
            gid: m.gid,
            rdev_major: rdev.0,
            rdev_minor: rdev.1,
        };
        let mut xattrs = Xattrs::new();
        for (xname, value) in &m.xattrs {
            match namespace(xname) {
                Ok(Namespace::User) => {}
                Ok(Namespace::Emulated) => {
                    let is_acl = xname.starts_with(b"system.posix_acl_");
                    if is_acl && Acl::parse(value).is_err() {
                        log::warn!(
                            "member `{}`: its {} is not a valid ACL; left out",
                            name.escape_ascii(),
                            xname.escape_ascii()
                        );
                        continue;
                    }
                    xattrs.insert(xname.clone(), value.clone());
                }
                Err(_) => log::warn!(
                    "member `{}`: extended attribute {} is in no namespace Linux knows; left out",
                    name.escape_ascii(),
                    xname.escape_ascii()
                ),
            }
        }
        let key = key_of(st);
        if want != real || !xattrs.is_empty() {
            self.table.create_with(key, want, xattrs);
        } else {
            // The file is as real root would have it; an old record of a
            // file that had this inode must not apply.
            self.table.forget_quietly(key);
        }
        Ok(())
    }

    fn count(&mut self, bytes: u64) {
        self.summary.members += 1;
        self.summary.bytes += bytes;
        if let Some(p) = &mut self.progress {
            p.tick(&self.summary, self.read.load(Ordering::Relaxed));
        }
    }

    /// Directory times, deepest first, once nothing more goes into them.
    fn finish_dirs(&mut self) {
        let mut dirs = std::mem::take(&mut self.dir_times);
        dirs.sort_by_key(|(parts, _)| std::cmp::Reverse(parts.len()));
        for (parts, mtime) in dirs {
            let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
            let t = Timespec { tv_sec: mtime, tv_nsec: 0 };
            let times = Timestamps { last_access: t, last_modification: t };
            let set = match refs.split_last() {
                None => fs::utimensat(&self.root, ".", &times, AtFlags::empty()),
                Some((last, parents)) => match self.dir(parents, b"", false) {
                    Ok(dir) => fs::utimensat(&dir, *last, &times, AtFlags::SYMLINK_NOFOLLOW),
                    Err(_) => continue,
                },
            };
            let _ = set;
        }
    }
}
