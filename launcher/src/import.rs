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

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fr_emulator::acl::Acl;
use fr_emulator::attrs::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG};
use fr_emulator::table::Xattrs;
use fr_emulator::tar::{Entry, Kind, Member, Reader};
use fr_emulator::xattr::{
    check_set, namespace, normalize_capability, Namespace, XattrError, ACL_ACCESS, ACL_DEFAULT,
    CAPABILITY,
};
use fr_emulator::{rules, Attrs, Creds, IdMap, InodeKey, InodeTable};
use rustix::fs::{self, AtFlags, FileType, Mode, OFlags, StatxFlags, Timespec, Timestamps};
use rustix::io::Errno;

use crate::error::Error;
use crate::export::{Progress, Summary};
use crate::run::check_image;
use crate::sniff;
use crate::store::{key_of, replay, ImageStore, StateFile, DIR};
use fr_image::oci::layer::LayerReader;
use fr_image::oci::whiteout::{self, Name};
use fr_image::oci::OciError;

#[derive(Debug)]
pub struct ImportOptions {
    /// The archive; `-` is standard input.
    pub archive: PathBuf,
    /// The image directory, made if it does not exist.
    pub image: PathBuf,
    pub progress: bool,
}

fn archive_error(archive: &Path, why: impl Into<crate::error::Cause>) -> Error {
    Error::Import { archive: archive.display().to_string(), source: why.into() }
}

/// Unpacks `opts.archive` into `opts.image`. An IMAGE fr made is removed
/// again if the import fails before any member is in it.
pub fn import(opts: &ImportOptions) -> Result<Summary, Error> {
    let made = match std::fs::create_dir(&opts.image) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => {
            return Err(Error::Image { path: opts.image.display().to_string(), why: e.to_string() })
        }
    };
    let had_store = opts.image.join(DIR).exists();
    let mut landed = false;
    let result = unpack(opts, &mut landed);
    if result.is_err() && !landed {
        if made {
            remove_if_unused(&opts.image);
        } else if !had_store {
            // The store this import began in a directory of the user's.
            let _ = std::fs::remove_dir_all(opts.image.join(DIR));
        }
    }
    result
}

/// Removes `image`, which this import made, if nothing but fr's store is
/// in it.
fn remove_if_unused(image: &Path) {
    let Ok(entries) = std::fs::read_dir(image) else { return };
    let names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
    if names.iter().all(|n| n == DIR) {
        let _ = std::fs::remove_dir_all(image.join(DIR));
        let _ = std::fs::remove_dir(image);
    }
}

/// What `archive` is when it is no tar archive fr can read, and what to
/// do with it; an error before anything is unpacked.
fn unimportable(archive: &Path, why: impl std::fmt::Display, hint: impl Into<String>) -> Error {
    Error::NotAnArchive {
        archive: archive.display().to_string(),
        why: why.to_string(),
        hint: hint.into(),
    }
}

/// The hint for an archive of a container image, which fr cannot import.
const CONTAINER_IMAGE: &str = "fr does not read container images yet; export a container's \
    root file system as a tar archive and import that: podman create --name tmp IMAGE && \
    podman export tmp > rootfs.tar && podman rm tmp (docker create and docker export alike), \
    then fr import rootfs.tar DIR";

/// Unpacks as [`import`] says; `landed` tells whether a member other
/// than the image root got into IMAGE.
fn unpack(opts: &ImportOptions, landed: &mut bool) -> Result<Summary, Error> {
    if opts.archive.is_dir() {
        return Err(if sniff::oci_layout(&opts.archive) {
            unimportable(
                &opts.archive,
                "it is an OCI image layout, not a tar archive",
                CONTAINER_IMAGE,
            )
        } else {
            unimportable(
                &opts.archive,
                "it is a directory, not a tar archive",
                format!(
                    "a directory holding a root file system is an image as it is: fr exec -f {} \
                     (cp -a copies it)",
                    opts.archive.display()
                ),
            )
        });
    }
    let image = check_image(&opts.image)?;
    let store = ImageStore::open(&image)?;
    // An image a subuid-mode session left is read and written as that
    // session would: files the import makes belong to the user all the same
    // (root in the namespace).
    let table = InodeTable::new(crate::idmap::enter_for_image()?);
    store.load(&table)?;
    let root =
        fs::open(&image, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::Image { path: image.display().to_string(), why: e.to_string() })?;

    let read = Arc::new(AtomicU64::new(0));
    let (input, total): (Box<dyn Read>, u64) = if opts.archive.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), 0)
    } else {
        let file = File::open(&opts.archive).map_err(|e| {
            unimportable(&opts.archive, e, "nothing was unpacked; check the archive's path")
        })?;
        let size = file.metadata().map_or(0, |m| m.len());
        (Box::new(file), size)
    };
    let input = Counting { inner: input, read: read.clone() };
    let mut input = BufReader::with_capacity(1 << 20, input);
    let magic = input.fill_buf().map_err(|e| archive_error(&opts.archive, e))?.to_vec();
    match sniff::Kind::of(&magic) {
        kind @ (sniff::Kind::Xz | sniff::Kind::Bzip2) => {
            let tool = if kind == sniff::Kind::Xz { "xz" } else { "bzip2" };
            return Err(unimportable(
                &opts.archive,
                format!("it is {}; fr reads plain, gzip and zstd tar archives", kind.describe()),
                format!("{tool} -dc {} | fr import - IMAGE", opts.archive.display()),
            ));
        }
        sniff::Kind::Sif => {
            return Err(unimportable(
                &opts.archive,
                "it is an Apptainer SIF image, not a tar archive",
                format!(
                    "apptainer build --sandbox DIR {} unpacks it into a directory fr runs as IMAGE",
                    opts.archive.display()
                ),
            ))
        }
        _ => {}
    }
    let input: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(input))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::Decoder::with_buffer(input).map_err(|e| archive_error(&opts.archive, e))?)
    } else {
        Box::new(input)
    };

    let progress = opts.progress.then(|| Progress::new(total));
    let mut unpacker = Unpacker::new(opts.archive.clone(), false, root, &table, progress, read);
    let mut reader = Reader::new(input);
    // Until a member other than the image root: whether the archive is a
    // container image's rather than a root file system's.
    let mut first = true;
    let result = loop {
        match reader.next_entry() {
            Ok(Some(entry)) => {
                let name = &entry.member.path;
                if first && sniff::container_member(name) {
                    break Err(unimportable(
                        &opts.archive,
                        format!(
                            "it is a container image archive (docker save, podman save or an OCI \
                             layout: member `{}`), not a root file system",
                            name.escape_ascii()
                        ),
                        CONTAINER_IMAGE,
                    ));
                }
                let root = components(name).is_ok_and(|p| p.is_empty());
                first &= root;
                if let Err(e) = unpacker.entry(&mut reader, entry) {
                    break Err(e);
                }
                *landed |= !root;
            }
            Ok(None) => break Ok(()),
            Err(e) if unpacker.summary.members == 0 => {
                break Err(unimportable(
                    &opts.archive,
                    format!("it is not a tar archive ({e})"),
                    "fr import reads tar archives, plain or compressed with gzip or zstd; \
                     nothing was unpacked",
                ))
            }
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

/// Unpacks the layers of an OCI image, bottom first, into `image`, a
/// directory this makes (it must not exist; with `base`, a copy of that
/// image as hard links, [`crate::clone`]), as real root's unpack
/// (`umoci unpack`) would leave them: whiteouts and opaque directories
/// delete what the layers below left, and every owner, mode, device and
/// xattr the user cannot set is recorded in the image's store. `open`
/// gives layer `i`'s checked tar stream; `names[i]` names it in errors.
/// Each layer is read to its end, so that its digests are checked. On
/// any error `image` is removed, with all it holds, and nothing was
/// written outside it.
pub fn unpack_layers(
    image: &Path,
    base: Option<&Path>,
    names: &[String],
    open: &mut dyn FnMut(usize) -> Result<LayerReader, OciError>,
) -> Result<Summary, Error> {
    if image.symlink_metadata().is_ok() {
        return Err(Error::Image {
            path: image.display().to_string(),
            why: "it exists already; layers are unpacked into a new directory".into(),
        });
    }
    let made = match base {
        Some(base) => crate::clone::clone_image(base, image),
        None => std::fs::create_dir(image)
            .map_err(|e| Error::Image { path: image.display().to_string(), why: e.to_string() }),
    };
    let result = made.and_then(|()| unpack_layers_into(image, names, open));
    if result.is_err() {
        if let Err(e) = std::fs::remove_dir_all(image) {
            log::warn!("removing the unfinished image {}: {e}", image.display());
        }
    }
    result
}

fn unpack_layers_into(
    image: &Path,
    names: &[String],
    open: &mut dyn FnMut(usize) -> Result<LayerReader, OciError>,
) -> Result<Summary, Error> {
    let image = check_image(image)?;
    let store = ImageStore::open(&image)?;
    // A new image, which nothing of a subordinate id's is in yet: read as
    // the user alone.
    let table = InodeTable::new(crate::mode::id_map(Path::new("/")));
    store.load(&table)?;
    let root =
        fs::open(&image, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::Image { path: image.display().to_string(), why: e.to_string() })?;
    let read = Arc::new(AtomicU64::new(0));
    let mut unpacker = Unpacker::new(PathBuf::new(), true, root, &table, None, read);
    for (i, name) in names.iter().enumerate() {
        log::debug!("unpacking {name}");
        unpacker.archive = PathBuf::from(name);
        unpacker.upper.clear();
        let stream = open(i)?;
        let mut reader = Reader::new(stream);
        loop {
            match reader.next_entry() {
                Ok(Some(entry)) => unpacker.entry(&mut reader, entry)?,
                Ok(None) => break,
                Err(e) => return Err(unpacker.fail(e)),
            }
        }
        // The rest of the stream (zero blocks, padding) is read and both
        // digests checked before the layer counts as unpacked.
        reader
            .into_inner()
            .finish()
            .map_err(|e| Error::Layer { what: name.clone(), source: e.into() })?;
        unpacker.finish_dirs();
    }
    store.save(&table)?;
    Ok(std::mem::take(&mut unpacker.summary))
}

/// What `fr import --state` kept.
#[derive(Debug, Default)]
pub struct StateSummary {
    /// The state file's records.
    pub records: usize,
    /// Those whose file is in the tree.
    pub kept: usize,
    /// The paths that name them (a file with hard links has several).
    pub paths: usize,
}

/// `fr import --state FILE DIR`: makes the tree `dir` an fr image in
/// place. `fr exec -f -s FILE` on the host tree keeps its records by
/// inode (the host tree is too big to walk for paths); an image keeps
/// them by path. So the tree is walked, and every file whose inode the
/// state file has a record for gets it in `DIR/.fr`, at each of its paths:
/// owners, modes, devices on their placeholders, emulated xattrs. Records
/// of files outside the tree are left out. A state file that is damaged
/// or was written on another root file system is refused by name before
/// anything is written. A tree that already is an image keeps its
/// records, and the state file's go over them.
pub fn import_state(state: &Path, dir: &Path) -> Result<StateSummary, Error> {
    import_state_as(state, dir, crate::idmap::enter_for_image)
}

/// [`import_state`], with `enter` giving the ids the tree is read with
/// (and entering the namespace they are seen from) once the state file
/// passed its checks and the image is locked.
fn import_state_as(
    state: &Path,
    dir: &Path,
    enter: impl FnOnce() -> Result<IdMap, Error>,
) -> Result<StateSummary, Error> {
    let image = check_image(dir)?;
    let state = StateFile::new(state)?;
    let changes = state.changes_here()?;
    let store = ImageStore::open(&image)?;
    let ids = enter()?;
    let table = InodeTable::new(ids.clone());
    store.load(&table)?;
    let from_state = InodeTable::new(ids);
    replay(&from_state, changes);
    let records = from_state.entries();
    let keys: HashSet<InodeKey> = records.iter().map(|(k, _, _)| *k).collect();
    for (key, attrs, xattrs) in records {
        table.restore(key, attrs, xattrs);
    }
    let (snapshot, found) = store.snapshot(&table);
    store.save_snapshot(&snapshot)?;
    let mut summary = StateSummary { records: keys.len(), ..StateSummary::default() };
    for paths in keys.iter().filter_map(|k| found.get(k)) {
        summary.kept += 1;
        summary.paths += paths;
    }
    Ok(summary)
}

/// The process's umask, read by setting it and back.
fn umask() -> u32 {
    let old = rustix::process::umask(Mode::empty());
    rustix::process::umask(old);
    old.as_raw_mode()
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
    /// The archive, or the layer, that members come from (for messages).
    archive: PathBuf,
    /// Layers of an OCI image: whiteouts delete what the layers below
    /// left, a directory is replaced with all it holds, and the names
    /// this layer wrote are kept in `upper`.
    oci: bool,
    /// The paths the current layer has written (OCI only).
    upper: HashSet<Vec<u8>>,
    root: OwnedFd,
    table: &'a InodeTable,
    ids: IdMap,
    /// Directories made from a member: tar sets their attributes last.
    delayed: HashSet<InodeKey>,
    /// The umask fr was started with, which the directories tar makes
    /// without a member get.
    umask: u32,
    /// Directories whose times are set last (unpacking into them changes
    /// them), as (path components, mtime).
    dir_times: Vec<(Vec<Vec<u8>>, i64, u32)>,
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

/// What a member's extended attributes leave once real root's
/// `setxattr(2)` has taken them, checked as `InodeTable::setxattr` checks a
/// session's call.
#[derive(Debug, Default)]
struct Checked {
    /// `trusted.*`, `security.*` and ACLs, for the table.
    emulated: Xattrs,
    /// `user.*`, set on the file for real.
    user: Vec<(Vec<u8>, Vec<u8>)>,
    /// The permission bits with set-id and sticky bits: the member's, or
    /// those its access ACL sets (`posix_acl_update_mode()`).
    perms: u32,
}

impl<'a> Unpacker<'a> {
    /// An unpacker into the image whose root is `root` and whose records
    /// are in `table`, of members from `archive` (an OCI layer's, with
    /// `oci`).
    fn new(
        archive: PathBuf,
        oci: bool,
        root: OwnedFd,
        table: &'a InodeTable,
        progress: Option<Progress>,
        read: Arc<AtomicU64>,
    ) -> Self {
        Unpacker {
            archive,
            oci,
            upper: HashSet::new(),
            root,
            table,
            ids: table.ids().clone(),
            umask: umask(),
            delayed: HashSet::new(),
            dir_times: Vec::new(),
            warned: Vec::new(),
            summary: Summary::default(),
            progress,
            read,
        }
    }

    fn refuse(&self, name: &[u8], why: impl std::fmt::Display) -> Error {
        self.fail(format!("member `{}`: {why}", name.escape_ascii()))
    }

    /// An error of the archive, or of the OCI layer, being unpacked.
    fn fail(&self, why: impl Into<crate::error::Cause>) -> Error {
        if self.oci {
            Error::Layer { what: self.archive.display().to_string(), source: why.into() }
        } else {
            archive_error(&self.archive, why)
        }
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
                    self.make_parent(&dir, part, name)?;
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

    /// Makes the directory `part` in `dir` that the archive has no member
    /// for, as real root's tar does (`make_directories()`): mode 0777 less
    /// the umask tar started with, and what the kernel's `mkdir` by root
    /// gives in `dir`. A directory member's own owner, mode and ACLs are
    /// set only once its contents are out (`delay_set_stat()`), so in a
    /// directory this import made from a member that is root:root with no
    /// set-group-id bit and no default ACL; in one that was there, what it
    /// is (`InodeTable::new_file`).
    fn make_parent(&self, dir: &OwnedFd, part: &[u8], name: &[u8]) -> Result<(), Error> {
        let made =
            |e| self.refuse(name, format!("making its directory `{}`: {e}", part.escape_ascii()));
        let parent =
            fs::statx(dir, "", AtFlags::EMPTY_PATH, StatxFlags::BASIC_STATS).map_err(made)?;
        fs::mkdirat(dir, part, Mode::from_raw_mode(0o777)).map_err(made)?;
        let st = fs::statx(dir, part, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS)
            .map_err(made)?;
        if u32::from(st.stx_mode) & 0o700 != 0o700 {
            // The user must get into it to unpack what goes there.
            let perms = (u32::from(st.stx_mode) & 0o7777) | 0o700;
            fs::chmodat(dir, part, Mode::from_raw_mode(perms), AtFlags::empty()).map_err(made)?;
        }
        let st = fs::statx(dir, part, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS)
            .map_err(made)?;
        let root = Creds::root();
        let (want, xattrs) = if self.delayed.contains(&key_of(&parent)) {
            let plain =
                Attrs { mode: S_IFDIR | 0o755, uid: 0, gid: 0, rdev_major: 0, rdev_minor: 0 };
            (rules::new_inode(&plain, S_IFDIR, 0o777 & !self.umask, &root), Xattrs::new())
        } else {
            let real = self.real(&parent);
            self.table.new_file(key_of(&parent), real, S_IFDIR, 0o777, self.umask, &root)
        };
        self.keep(&st, want, xattrs);
        Ok(())
    }

    /// A file's attributes as the kernel has them, with ids as a session
    /// sees them.
    fn real(&self, st: &fs::Statx) -> Attrs {
        crate::store::real_attrs(st, &self.ids)
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
        let checked = check_xattrs(&self.archive, m, kind).map_err(|e| match e {
            Error::Import { source, .. } if self.oci => self.fail(source),
            e => e,
        })?;
        let Some((last, parents)) = parts.split_last() else {
            // The image root itself: only its attributes, never data.
            reader.skip_data().map_err(|e| self.fail(e))?;
            if kind == Kind::Directory {
                let st = fs::statx(&self.root, "", AtFlags::EMPTY_PATH, StatxFlags::BASIC_STATS)
                    .map_err(|e| self.refuse(&m.path, e))?;
                self.record(&entry, &checked, &st);
                self.dir_times.push((Vec::new(), m.mtime, m.mtime_nsec));
            }
            self.count(0);
            return Ok(());
        };
        if self.oci {
            match whiteout::classify(last).map_err(|why| self.refuse(&m.path, why))? {
                Name::Plain => {
                    // The member and the directories above it are this
                    // layer's: an opaque marker keeps them.
                    for n in 1..=parts.len() {
                        self.upper.insert(parts[..n].join(&b'/'));
                    }
                }
                name => {
                    reader.skip_data().map_err(|e| self.fail(e))?;
                    self.whiteout(parents, name, &m.path)?;
                    self.count(0);
                    return Ok(());
                }
            }
        }
        let dir = self.dir(parents, &m.path, true)?;
        let existing = fs::statx(&dir, *last, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS);
        if kind == Kind::HardLink {
            return self.hard_link(&dir, last, m, existing.ok());
        }
        // What is there goes, as tar replaces it; a directory stays a
        // directory.
        let mut dir_stays = false;
        if let Ok(st) = &existing {
            let is_dir = FileType::from_raw_mode(st.stx_mode.into()) == FileType::Directory;
            dir_stays = is_dir && kind == Kind::Directory;
            if !dir_stays {
                self.remove(&dir, last, st, &m.path)?;
            }
        }
        let perms = checked.perms & 0o777;
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
                let written = reader
                    .data(&mut file)
                    .map_err(|e| self.fail(e))
                    .and_then(|()| file.flush().map_err(|e| self.refuse(&m.path, e)))
                    .and_then(|()| {
                        fs::fchmod(file.as_fd(), Mode::from_raw_mode(perms | 0o600))
                            .map_err(|e| self.refuse(&m.path, e))
                    });
                if let Err(e) = written {
                    // The error says the members before this one are in
                    // IMAGE: this one, cut short, goes (it has no record
                    // yet, so the store stays as it is).
                    self.discard(&dir, last, &file);
                    return Err(e);
                }
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
            Kind::HardLink => unreachable!("hard links are made above"),
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
        self.real_xattrs(&dir, last, m, &checked);
        self.record(&entry, &checked, &st);
        if kind == Kind::Directory {
            if !dir_stays {
                self.delayed.insert(key_of(&st));
            }
            let path = parts.iter().map(|p| p.to_vec()).collect();
            self.dir_times.push((path, m.mtime, m.mtime_nsec));
        } else {
            let _ = fs::utimensat(
                &dir,
                *last,
                &times(m.mtime, m.mtime_nsec),
                AtFlags::SYMLINK_NOFOLLOW,
            );
        }
        self.count(entry.data);
        Ok(())
    }

    /// A whiteout member of an OCI layer (in the directory `parents`):
    /// `.wh.NAME` deletes NAME, `.wh..wh..opq` everything the layers
    /// below left in the directory; what this layer wrote stays
    /// (image-spec `layer.md`). A directory that is not there has nothing
    /// to delete; one reached through a symbolic link is refused.
    fn whiteout(&mut self, parents: &[&[u8]], name: Name, member: &[u8]) -> Result<(), Error> {
        if name == Name::Opaque {
            // The marker says the directory is this layer's: it is made
            // (as tar makes a member's directories) if the layers below
            // have none, and kept.
            self.dir(parents, member, true)?;
            for n in 1..=parents.len() {
                self.upper.insert(parents[..n].join(&b'/'));
            }
        }
        let Some(dir) = self.existing_dir(parents, member)? else { return Ok(()) };
        let prefix = parents.join(&b'/');
        match name {
            Name::Opaque => self.clear_lower(&dir, &prefix, member),
            Name::Whiteout(target) => {
                if parents.is_empty() && target == DIR.as_bytes() {
                    return Err(self.refuse(member, "a whiteout of IMAGE/.fr, fr's metadata store"));
                }
                let path = if prefix.is_empty() {
                    target.to_vec()
                } else {
                    [prefix.as_slice(), b"/", target].concat()
                };
                if self.upper.contains(&path) {
                    return Ok(());
                }
                self.remove_tree(&dir, target, member)
            }
            Name::Plain | Name::Meta => Ok(()),
        }
    }

    /// The directory `parents`, if it is there, opened without following
    /// symbolic links.
    fn existing_dir(&self, parents: &[&[u8]], member: &[u8]) -> Result<Option<OwnedFd>, Error> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut dir = fs::openat(&self.root, ".", flags, Mode::empty())
            .map_err(|e| self.refuse(member, e))?;
        for part in parents {
            dir = match fs::openat(&dir, *part, flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => return Ok(None),
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    return Err(self.refuse(
                        member,
                        format!(
                            "`{}` on its path is not a directory (a symbolic link is not followed out of the image)",
                            part.escape_ascii()
                        ),
                    ))
                }
                Err(e) => return Err(self.refuse(member, e)),
            };
        }
        Ok(Some(dir))
    }

    /// The names in the directory `dir`.
    fn names(&self, dir: &OwnedFd, member: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
        let mut names = Vec::new();
        let entries = fs::Dir::read_from(dir).map_err(|e| self.refuse(member, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| self.refuse(member, e))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        Ok(names)
    }

    /// Removes from `dir` (at `prefix`) what the current layer did not
    /// write, keeping what it did, and below it what it wrote.
    fn clear_lower(&self, dir: &OwnedFd, prefix: &[u8], member: &[u8]) -> Result<(), Error> {
        for name in self.names(dir, member)? {
            if prefix.is_empty() && name == DIR.as_bytes() {
                continue;
            }
            let path =
                if prefix.is_empty() { name.clone() } else { [prefix, b"/", &name].concat() };
            if !self.upper.contains(&path) {
                self.remove_tree(dir, &name, member)?;
                continue;
            }
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            if let Ok(sub) = fs::openat(dir, name.as_slice(), flags, Mode::empty()) {
                self.clear_lower(&sub, &path, member)?;
            }
        }
        Ok(())
    }

    /// Removes `name` in `dir` and, for a directory, all it holds; the
    /// records go with their files' last links.
    fn remove_tree(&self, dir: &OwnedFd, name: &[u8], member: &[u8]) -> Result<(), Error> {
        let st = match fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(self.refuse(member, e)),
        };
        let removing = |e| self.refuse(member, format!("removing `{}`: {e}", name.escape_ascii()));
        if FileType::from_raw_mode(st.stx_mode.into()) == FileType::Directory {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let sub = fs::openat(dir, name, flags, Mode::empty()).map_err(removing)?;
            for child in self.names(&sub, member)? {
                self.remove_tree(&sub, &child, member)?;
            }
            fs::unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(removing)?;
        } else {
            fs::unlinkat(dir, name, AtFlags::empty()).map_err(removing)?;
        }
        if FileType::from_raw_mode(st.stx_mode.into()) == FileType::Directory || st.stx_nlink <= 1 {
            self.table.forget(key_of(&st));
        }
        Ok(())
    }

    /// Removes what is at `last` in `dir` for a member that replaces it;
    /// its record goes with its last link, so that a file that takes its
    /// inode number does not inherit it. In an OCI layer a directory goes
    /// with all it holds.
    fn remove(&self, dir: &OwnedFd, last: &[u8], st: &fs::Statx, name: &[u8]) -> Result<(), Error> {
        let is_dir = FileType::from_raw_mode(st.stx_mode.into()) == FileType::Directory;
        if is_dir && self.oci {
            return self.remove_tree(dir, last, name);
        }
        let flags = if is_dir { AtFlags::REMOVEDIR } else { AtFlags::empty() };
        fs::unlinkat(dir, last, flags)
            .map_err(|e| self.refuse(name, format!("replacing what is there: {e}")))?;
        if is_dir || st.stx_nlink <= 1 {
            self.table.forget(key_of(st));
        }
        Ok(())
    }

    /// Removes `last` in `dir` if it still is `file`, a member fr was
    /// writing when the import stopped.
    fn discard(&self, dir: &OwnedFd, last: &[u8], file: &File) {
        let ours = fs::fstat(file).ok();
        let there = fs::statx(dir, last, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::INO).ok();
        if ours.zip(there).is_some_and(|(o, t)| o.st_ino == t.stx_ino) {
            if let Err(e) = fs::unlinkat(dir, last, AtFlags::empty()) {
                log::warn!("removing the unfinished member `{}`: {e}", last.escape_ascii());
            }
        }
    }

    /// A hard link member: `last` in `dir` becomes another name of the
    /// file `m.link` names. A name that already is that file (the member
    /// links a name to itself, or the archive repeats a link) is left as
    /// it is, as GNU tar's `extract_link()` does: unlinking it first would
    /// destroy the file.
    fn hard_link(
        &mut self,
        dir: &OwnedFd,
        last: &[u8],
        m: &Member,
        existing: Option<fs::Statx>,
    ) -> Result<(), Error> {
        let target = components(&m.link).map_err(|why| {
            self.refuse(&m.path, format!("its link target `{}`: {why}", m.link.escape_ascii()))
        })?;
        let Some((tlast, tparents)) = target.split_last() else {
            return Err(self.refuse(&m.path, "a hard link to the image root"));
        };
        let tdir = self.dir(tparents, &m.path, false)?;
        if let Some(st) = &existing {
            let same = fs::statx(&tdir, *tlast, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS)
                .is_ok_and(|t| key_of(&t) == key_of(st));
            if same {
                self.count(0);
                return Ok(());
            }
            self.remove(dir, last, st, &m.path)?;
        }
        fs::linkat(&tdir, *tlast, dir, last, AtFlags::empty()).map_err(|e| {
            self.refuse(&m.path, format!("linking to `{}`: {e}", m.link.escape_ascii()))
        })?;
        self.count(0);
        Ok(())
    }

    /// Sets the member's `user.*` attributes on the file for real.
    fn real_xattrs(&self, dir: &OwnedFd, last: &[u8], m: &Member, checked: &Checked) {
        if checked.user.is_empty() || m.kind == Some(Kind::Symlink) {
            return;
        }
        let file = fs::openat(
            dir,
            last,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        );
        for (name, value) in &checked.user {
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
    fn record(&self, entry: &Entry, checked: &Checked, st: &fs::Statx) {
        self.keep(st, wanted(&entry.member, checked), checked.emulated.clone());
    }

    /// Records `want` for the file `st` when the kernel's view differs or
    /// it has emulated xattrs; otherwise forgets whatever an old file of
    /// the same inode number left, as a change (so that the store is
    /// saved without it).
    fn keep(&self, st: &fs::Statx, want: Attrs, xattrs: Xattrs) {
        let key = key_of(st);
        if want != self.real(st) || !xattrs.is_empty() {
            // The import's table has no journal (the store is saved at the
            // end): nothing can refuse the record.
            let _ = self.table.create_with(key, want, xattrs);
        } else {
            self.table.forget(key);
        }
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
        dirs.sort_by_key(|(parts, _, _)| std::cmp::Reverse(parts.len()));
        for (parts, sec, nsec) in dirs {
            let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
            let times = times(sec, nsec);
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

/// What real root's tar leaves in the inode of member `m` whose xattrs
/// left `checked`: its type, the permission bits (a symbolic link's are
/// always 0777), its owner and group, a device's numbers.
fn wanted(m: &Member, checked: &Checked) -> Attrs {
    let (kind_bits, rdev) = match m.kind.unwrap_or(Kind::Regular) {
        Kind::Regular | Kind::HardLink => (S_IFREG, (0, 0)),
        Kind::Directory => (S_IFDIR, (0, 0)),
        Kind::Symlink => (S_IFLNK, (0, 0)),
        Kind::CharDevice => (S_IFCHR, (m.dev_major, m.dev_minor)),
        Kind::BlockDevice => (S_IFBLK, (m.dev_major, m.dev_minor)),
        Kind::Fifo => (S_IFIFO, (0, 0)),
    };
    let perms = if kind_bits == S_IFLNK { 0o777 } else { checked.perms };
    Attrs {
        mode: kind_bits | perms,
        uid: m.uid,
        gid: m.gid,
        rdev_major: rdev.0,
        rdev_minor: rdev.1,
    }
}

/// Checks a member's extended attributes as `setxattr(2)` by real root
/// would, and what they leave: a capability as the initial namespace's
/// root stores it, an access ACL that says no more than the mode becomes
/// the mode, a default ACL only on a directory, an empty ACL value or a
/// header alone removes the ACL. One the kernel would refuse stops the
/// import, naming it; one in no namespace Linux knows is left out with a
/// warning, as tar does.
fn check_xattrs(archive: &Path, m: &Member, kind: Kind) -> Result<Checked, Error> {
    let mut out = Checked { perms: m.mode & 0o7777, ..Checked::default() };
    if kind == Kind::HardLink {
        // A second name: tar sets nothing on it (`extract_link()`).
        return Ok(out);
    }
    for (name, value) in &m.xattrs {
        let refuse = |why: &str| {
            archive_error(
                archive,
                format!(
                    "member `{}`: extended attribute {}: {why}",
                    m.path.escape_ascii(),
                    name.escape_ascii()
                ),
            )
        };
        let ns = match namespace(name) {
            Ok(ns) => ns,
            Err(XattrError::NotSupported) => {
                log::warn!(
                    "member `{}`: extended attribute {} is in no namespace Linux knows; left out",
                    m.path.escape_ascii(),
                    name.escape_ascii()
                );
                continue;
            }
            Err(_) => return Err(refuse("its name is empty or longer than 255 bytes")),
        };
        if check_set(0, value.len()).is_err() {
            return Err(refuse("its value is larger than 64 KiB (XATTR_SIZE_MAX)"));
        }
        if ns == Namespace::User {
            out.user.retain(|(n, _)| n != name);
            out.user.push((name.clone(), value.clone()));
            continue;
        }
        let is_acl = name == ACL_ACCESS || name == ACL_DEFAULT;
        if is_acl {
            // As InodeTable::setxattr takes an ACL (do_set_acl(),
            // set_posix_acl()): the value's form first, an empty value
            // or a header alone being no ACL; none on a symlink; a
            // default ACL only on a directory (no ACL: nothing to do);
            // then posix_acl_valid(). No ACL removes the ACL and leaves
            // the mode.
            let acl = if value.is_empty() {
                None
            } else {
                Acl::from_xattr(value).map_err(|_| refuse("it is not a valid ACL"))?
            };
            if kind == Kind::Symlink {
                return Err(refuse("a symbolic link has no ACLs"));
            }
            if name == ACL_DEFAULT && kind != Kind::Directory {
                if acl.is_some() {
                    return Err(refuse("a default ACL fits only a directory"));
                }
                continue;
            }
            let Some(acl) = acl else {
                out.emulated.remove(name);
                continue;
            };
            if !acl.valid() {
                return Err(refuse("it is not a valid ACL"));
            }
            if name == ACL_DEFAULT {
                out.emulated.insert(name.clone(), acl.to_xattr());
                continue;
            }
            let (bits, equivalent) = acl.mode();
            out.perms = (out.perms & !0o777) | bits;
            if equivalent {
                out.emulated.remove(name);
            } else {
                out.emulated.insert(name.clone(), acl.to_xattr());
            }
        } else if name == CAPABILITY {
            let cap = normalize_capability(value)
                .map_err(|_| refuse("it is not a valid file capability"))?;
            out.emulated.insert(name.clone(), cap);
        } else {
            out.emulated.insert(name.clone(), value.clone());
        }
    }
    Ok(out)
}

/// Access and modification time both the member's mtime, to the
/// nanosecond a pax `mtime` record carries.
fn times(sec: i64, nsec: u32) -> Timestamps {
    let t = Timespec { tv_sec: sec, tv_nsec: nsec.into() };
    Timestamps { last_access: t, last_modification: t }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fr_emulator::store::Change;

    fn member(path: &str, kind: Kind, mode: u32) -> Member {
        Member { path: path.into(), kind: Some(kind), mode, uid: 7, gid: 8, ..Member::default() }
    }

    /// An ACL in its xattr form: version 2, then (tag, perm, id) entries.
    fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut v = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in entries {
            v.extend(tag.to_le_bytes());
            v.extend(perm.to_le_bytes());
            v.extend(id.to_le_bytes());
        }
        v
    }

    const UNDEF: u32 = u32::MAX;

    /// The tree read as the user alone (no namespace: a test runs threads).
    fn plain() -> Result<IdMap, Error> {
        Ok(IdMap::new(0, 0))
    }

    #[test]
    fn member_names_stay_inside_the_image() {
        let parts = |n: &str| components(n.as_bytes()).map(|p| p.len());
        assert_eq!(parts("./a//b/./c/"), Ok(3));
        assert_eq!(parts("."), Ok(0), "the image root itself");
        assert_eq!(parts("a/.frx"), Ok(2));
        assert_eq!(parts("sub/.fr/x"), Ok(3), "only the top's .fr is fr's");
        assert_eq!(parts("/etc/passwd"), Err("it is an absolute path"));
        assert_eq!(parts("a/../../b"), Err("it has a `..` component"));
        assert_eq!(parts(".fr/store"), Err("IMAGE/.fr is fr's metadata store"));
        assert_eq!(parts("./.fr"), Err("IMAGE/.fr is fr's metadata store"));
        assert_eq!(components(b"a\0b"), Err("it contains a NUL byte"));
    }

    #[test]
    fn a_members_record_is_what_real_roots_tar_leaves() {
        let plain = Checked { perms: 0o4755, ..Checked::default() };
        let file = wanted(&member("f", Kind::Regular, 0o4755), &plain);
        assert_eq!((file.mode, file.uid, file.gid), (S_IFREG | 0o4755, 7, 8));
        let mut dev = member("d", Kind::CharDevice, 0o620);
        (dev.dev_major, dev.dev_minor) = (250, 300_000);
        let dev = wanted(&dev, &Checked { perms: 0o620, ..Checked::default() });
        assert_eq!((dev.mode, dev.rdev_major, dev.rdev_minor), (S_IFCHR | 0o620, 250, 300_000));
        // A symbolic link's bits are 0777 whatever the header says.
        let link = wanted(&member("l", Kind::Symlink, 0o700), &plain);
        assert_eq!(link.mode, S_IFLNK | 0o777);
        // A hard link is a second name of a regular file.
        assert_eq!(wanted(&member("h", Kind::HardLink, 0), &plain).mode, S_IFREG | 0o4755);
        assert_eq!(wanted(&member("p", Kind::Fifo, 0o600), &plain).mode & S_IFIFO, S_IFIFO);
    }

    #[test]
    fn xattrs_are_taken_as_real_roots_setxattr_takes_them() {
        let archive = Path::new("a.tar");
        let mut m = member("f", Kind::Regular, 0o640);
        let mut v3 = vec![0u8; 24];
        v3[..4].copy_from_slice(&0x0300_0001u32.to_le_bytes());
        v3[4..8].copy_from_slice(&(1u32 << 13).to_le_bytes());
        m.xattrs = vec![
            (b"user.note".to_vec(), b"hi".to_vec()),
            (b"trusted.t".to_vec(), b"1".to_vec()),
            (b"security.capability".to_vec(), v3),
            // u::rw, g::r, o::- : no more than the mode says.
            (
                b"system.posix_acl_access".to_vec(),
                acl(&[(1, 6, UNDEF), (4, 4, UNDEF), (0x20, 0, UNDEF)]),
            ),
            (b"bogus.x".to_vec(), b"left out".to_vec()),
        ];
        let c = check_xattrs(archive, &m, Kind::Regular).unwrap();
        assert_eq!(c.user, vec![(b"user.note".to_vec(), b"hi".to_vec())]);
        assert_eq!(c.perms, 0o640);
        let names: Vec<&[u8]> = c.emulated.keys().map(|k| k.as_slice()).collect();
        assert_eq!(names, [&b"security.capability"[..], b"trusted.t"]);
        let cap = &c.emulated[b"security.capability".as_slice()];
        assert_eq!(cap.len(), 20, "a v3 capability for root is kept as v2");
        // An access ACL that says more is kept, and sets the group bits
        // from its mask.
        m.xattrs = vec![(
            b"system.posix_acl_access".to_vec(),
            acl(&[(1, 6, UNDEF), (2, 7, 1000), (4, 4, UNDEF), (0x10, 5, UNDEF), (0x20, 0, UNDEF)]),
        )];
        let c = check_xattrs(archive, &m, Kind::Regular).unwrap();
        assert_eq!(c.perms, 0o650);
        assert!(c.emulated.contains_key(b"system.posix_acl_access".as_slice()));
        // A default ACL fits only a directory; an ACL fits no symlink.
        let default = acl(&[(1, 7, UNDEF), (4, 5, UNDEF), (0x20, 5, UNDEF)]);
        m.xattrs = vec![(b"system.posix_acl_default".to_vec(), default)];
        let e = check_xattrs(archive, &m, Kind::Regular).unwrap_err().to_string();
        assert!(e.contains("member `f`") && e.contains("fits only a directory"), "{e}");
        assert!(check_xattrs(archive, &m, Kind::Directory).is_ok());
        assert!(check_xattrs(archive, &m, Kind::Symlink).is_err());
        // A hard link member takes nothing.
        let c = check_xattrs(archive, &m, Kind::HardLink).unwrap();
        assert!(c.emulated.is_empty() && c.user.is_empty());
        m.xattrs = vec![(b"trusted.big".to_vec(), vec![0; 65537])];
        assert!(check_xattrs(archive, &m, Kind::Regular).is_err(), "over XATTR_SIZE_MAX");
    }

    #[test]
    fn member_times_keep_their_nanoseconds() {
        let t = times(-2, 500);
        assert_eq!((t.last_modification.tv_sec, t.last_modification.tv_nsec), (-2, 500));
        assert_eq!(t.last_access.tv_sec, t.last_modification.tv_sec);
    }

    /// `fr import --state`: a record at each path of each file of the tree
    /// the state file names; the rest counted, not kept; a damaged state
    /// file or one of another root file system refused before `.fr` is made.
    #[test]
    fn a_state_file_makes_a_tree_an_image_in_place() {
        let base = std::env::temp_dir().join(format!("fr-import-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let tree = base.join("tree");
        std::fs::create_dir_all(tree.join("bin")).unwrap();
        std::fs::write(tree.join("bin/su"), "").unwrap();
        std::fs::hard_link(tree.join("bin/su"), tree.join("bin/su2")).unwrap();
        std::fs::write(tree.join("null"), "").unwrap();
        std::fs::write(base.join("elsewhere"), "").unwrap();
        let key = |p: &Path| {
            crate::store::key_of(
                &fs::statx(fs::CWD, p, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS).unwrap(),
            )
        };
        let state_path = base.join("deb.state");
        let state = StateFile::new(&state_path).unwrap();
        let table = InodeTable::new(IdMap::new(0, 0));
        let set = |p: &Path, mode: u32, uid: u32| {
            let attrs = Attrs { mode, uid, gid: uid, rdev_major: 1, rdev_minor: 3 };
            table.restore(key(p), attrs, Xattrs::new());
        };
        set(&tree.join("bin/su"), S_IFREG | 0o4755, 0);
        set(&tree.join("null"), S_IFCHR | 0o666, 0);
        set(&tree.join("bin"), S_IFDIR | 0o755, 3);
        set(&base.join("elsewhere"), S_IFREG | 0o644, 5);
        // A record of a file since gone, whose number a file may reuse.
        let gone = InodeKey { dev: key(&tree).dev, ino: u64::MAX - 1 };
        table.restore(
            gone,
            Attrs { mode: S_IFREG, uid: 9, gid: 9, rdev_major: 0, rdev_minor: 0 },
            Xattrs::new(),
        );
        state.write(&table, state.root()).unwrap();

        // Another root file system's, and a damaged one: refused by name.
        let other = base.join("other.state");
        StateFile::new(&other)
            .unwrap()
            .write(&table, fr_emulator::store::RootId { dev: 1, ino: 2 })
            .unwrap();
        let e = import_state_as(&other, &tree, plain).unwrap_err();
        assert!(matches!(e, Error::ForeignState { .. }), "{e}");
        assert!(e.to_string().contains("other.state") && e.to_string().contains("another root"));
        let mut bytes = std::fs::read(&state_path).unwrap();
        let mid = 36 + (bytes.len() - 36) / 3;
        bytes[mid] ^= 0x40;
        let damaged = base.join("damaged.state");
        std::fs::write(&damaged, &bytes).unwrap();
        let e = import_state_as(&damaged, &tree, plain).unwrap_err();
        assert!(matches!(e, Error::DamagedState { .. }), "{e}");
        assert!(!tree.join(DIR).exists(), "nothing written for a refused state file");

        let summary = import_state_as(&state_path, &tree, plain).unwrap();
        assert_eq!((summary.records, summary.kept, summary.paths), (5, 3, 4));
        let store = ImageStore::open(&tree).unwrap();
        let snapshot =
            fr_emulator::store::Snapshot::decode(&store.snapshot_bytes().unwrap().unwrap())
                .unwrap();
        let mut paths: Vec<(String, u32)> = snapshot
            .records
            .iter()
            .map(|r| (String::from_utf8(r.path.clone()).unwrap(), r.attrs.mode))
            .collect();
        paths.sort();
        assert_eq!(
            paths,
            [
                ("bin".to_string(), S_IFDIR | 0o755),
                ("bin/su".to_string(), S_IFREG | 0o4755),
                ("bin/su2".to_string(), S_IFREG | 0o4755),
                ("null".to_string(), S_IFCHR | 0o666),
            ]
        );
        drop(store);
        // The forget of a state file is replayed, as a session's load does.
        let forget = base.join("forget.state");
        let f = StateFile::new(&forget).unwrap();
        f.write(&table, f.root()).unwrap();
        let mut bytes = std::fs::read(&forget).unwrap();
        bytes.extend(
            Change::Forget { key: key(&tree.join("null")) }
                .encode(fr_emulator::store::SyncMarker(bytes[28..36].try_into().unwrap())),
        );
        std::fs::write(&forget, bytes).unwrap();
        std::fs::remove_dir_all(tree.join(DIR)).unwrap();
        assert_eq!(import_state_as(&forget, &tree, plain).unwrap().paths, 3);
        let _ = std::fs::remove_dir_all(&base);
    }
}
