//! The image's fake metadata on disk, in `IMAGE/.fr/`: `lock` (one
//! session at a time), `store` (the snapshot, by path) and `journal` (every
//! change, by inode, written before the call that made it is answered).
//! The format and the reasons for it are in `fr_emulator::store` and
//! `docs/persistence.md`.
//!
//! Loading re-resolves each path of the snapshot in the image as it is now:
//! a path that is gone, or that names a file of another type, is dropped
//! (the image was changed outside fr); a copy of the image (`cp -a`,
//! `rsync -a`) keeps its paths and so its metadata. The journal of a session
//! that was killed is replayed when it was written for this very image root,
//! and the result written back as a snapshot at once.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use fr_emulator::store::{
    decode_journal, journal_header, Change, JournalScan, RootId, Snapshot, Stored, SyncMarker,
};
use fr_emulator::table::{Journal, Unkept};
use fr_emulator::{Attrs, InodeKey, InodeTable};
use rustix::fs::{self, AtFlags, FlockOperation, Mode, OFlags, ResolveFlags, StatxFlags, CWD};

use crate::error::Error;

/// The directory, inside the image, that holds fr's files.
pub const DIR: &str = ".fr";

fn store_error(path: &Path, why: impl Into<crate::error::Cause>) -> Error {
    Error::Store { path: path.display().to_string(), source: why.into() }
}

fn damaged(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::Damaged { path: path.display().to_string(), why: why.to_string() }
}

/// A new journal's sync marker: eight bytes no one can guess, so that
/// nothing a workload writes into a record (an xattr value) can pass for
/// the start of an entry when a reader looks for the next one after
/// damage. The standard library's `RandomState` is seeded by the kernel's
/// random bytes.
pub fn new_sync() -> SyncMarker {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    SyncMarker(h.finish().to_le_bytes())
}

/// What a journal's damage means, for an error or `fr fsck`: where each
/// damaged region starts and how many intact entries follow it.
pub fn describe_damage(scan: &JournalScan) -> String {
    let regions: Vec<String> = scan
        .damage
        .iter()
        .map(|d| {
            format!(
                "{} bad bytes at byte {} (entry {}), {} intact entries after them",
                d.len, d.offset, d.entry, d.intact_after
            )
        })
        .collect();
    regions.join("; ")
}

/// The errno of an I/O error, for the table: `EIO` when it has none (a
/// refusal of fr's own, such as a journal that is not a regular file).
fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(fr_emulator::table::EIO)
}

/// An image's metadata store, locked for this session.
///
/// Everything in `.fr` is reached through a descriptor of that directory
/// and opened with `O_NOFOLLOW`, and a file fr empties or replaces must be
/// a regular file with one link: the image, or a workload that unmounts
/// the cover over `/.fr` inside its own namespaces, may plant symlinks,
/// hard links or fifos there, and fr must never write through them to a
/// file outside the image.
#[derive(Debug)]
pub struct ImageStore {
    image: PathBuf,
    dir: PathBuf,
    dir_fd: Arc<OwnedFd>,
    root: RootId,
    lock: File,
    /// Snapshot records whose path this process may not resolve (a
    /// directory on the way that a subordinate id alone may search, seen
    /// from outside the namespace of a subuid-mode session): the file is
    /// not known to be gone, so the record is written back as it was.
    unreachable: Mutex<Vec<Stored>>,
}

fn root_id(image: &Path) -> Result<RootId, Error> {
    let meta = std::fs::metadata(image).map_err(|e| store_error(image, e))?;
    Ok(RootId { dev: meta.dev(), ino: meta.ino() })
}

/// The key the supervisor uses for a file: `statx`'s device numbers.
/// A file's attributes as the kernel has them (a `statx` result), with ids
/// as a session sees them: what import, export and the diff of an image
/// read before a record is asked for.
pub(crate) fn real_attrs(st: &fs::Statx, ids: &fr_emulator::IdMap) -> Attrs {
    Attrs {
        mode: u32::from(st.stx_mode),
        uid: ids.uid_inside(st.stx_uid),
        gid: ids.gid_inside(st.stx_gid),
        rdev_major: st.stx_rdev_major,
        rdev_minor: st.stx_rdev_minor,
    }
}

pub(crate) fn key_of(st: &fs::Statx) -> InodeKey {
    InodeKey {
        dev: (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor),
        ino: st.stx_ino,
    }
}

/// Opens `name` in `dir` without following a symlink or blocking on a
/// fifo, and checks it is a regular file with one link.
fn open_in(dir: &OwnedFd, name: &str, flags: OFlags) -> std::io::Result<File> {
    let fd = fs::openat(
        dir,
        name,
        flags | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let st = fs::fstat(&fd)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_nlink != 1 {
        return Err(std::io::Error::other(
            "not a regular file with one link: fr does not write through it",
        ));
    }
    Ok(File::from(fd))
}

/// Reads `name` in `dir`; `None` if it does not exist.
fn read_in(dir: &OwnedFd, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    match open_in(dir, name, OFlags::RDONLY) {
        Ok(mut f) => {
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes)?;
            Ok(Some(bytes))
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `tmp` in `dir`, syncs it and renames it over `name`;
/// on failure `tmp` is removed, so that a full disk is not left fuller.
fn replace_atomically(dir: &OwnedFd, tmp: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let written = replace_in(dir, tmp, bytes)
        .and_then(|f| f.sync_data())
        .and_then(|()| Ok(fs::renameat(dir, tmp, dir, name)?));
    if written.is_err() {
        let _ = fs::unlinkat(dir, tmp, AtFlags::empty());
    }
    written
}

/// Creates `name` in `dir` anew (removing what was there) and writes `bytes`.
fn replace_in(dir: &OwnedFd, name: &str, bytes: &[u8]) -> std::io::Result<File> {
    match fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    let mut f = open_in(dir, name, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL)?;
    f.write_all(bytes)?;
    Ok(f)
}

impl ImageStore {
    /// Opens (making if needed) `IMAGE/.fr` and takes its lock; another
    /// session holding it is a clear refusal that names it.
    pub fn open(image: &Path) -> Result<ImageStore, Error> {
        ImageStore::open_as(image, false)
    }

    /// Opens the store of an image that sessions only read (a cached OCI
    /// image, mounted read-only): its lock is shared with the other
    /// readers, and refuses a writer (`fr cache clean`) while they run.
    /// Such a session keeps no journal and saves nothing.
    pub fn open_shared(image: &Path) -> Result<ImageStore, Error> {
        ImageStore::open_as(image, true)
    }

    fn open_as(image: &Path, shared: bool) -> Result<ImageStore, Error> {
        let dir = image.join(DIR);
        let image_fd = fs::openat(
            CWD,
            image,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| store_error(image, e))?;
        match fs::mkdirat(&image_fd, DIR, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(store_error(&dir, e)),
        }
        let dir_fd = fs::openat(
            &image_fd,
            DIR,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| store_error(&dir, format!("{e} (it must be a directory fr made)")))?;
        let lock_path = dir.join("lock");
        let mut lock = match open_in(&dir_fd, "lock", OFlags::RDWR | OFlags::CREATE) {
            Ok(lock) => lock,
            Err(e) => return Err(store_error(&lock_path, e)),
        };
        let operation = if shared {
            FlockOperation::NonBlockingLockShared
        } else {
            FlockOperation::NonBlockingLockExclusive
        };
        if fs::flock(lock.as_fd(), operation).is_err() {
            let mut holder = String::new();
            let _ = lock.read_to_string(&mut holder);
            return Err(Error::InUse {
                image: image.display().to_string(),
                holder: match holder.trim() {
                    // Sessions in a read-only image share the lock and
                    // leave no pid (there may be several).
                    "" => "sessions reading it".to_string(),
                    pid => pid.to_string(),
                },
            });
        }
        if !shared {
            lock.set_len(0).map_err(|e| store_error(&lock_path, e))?;
            let _ = write!(lock, "fr pid {}", std::process::id());
        }
        Ok(ImageStore {
            image: image.to_path_buf(),
            dir,
            dir_fd: Arc::new(dir_fd),
            root: root_id(image)?,
            lock,
            unreachable: Mutex::new(Vec::new()),
        })
    }

    /// The descriptor holding the image's lock: processes fr forks close
    /// their copy, so that the lock ends when fr does (a `flock` lasts as
    /// long as any copy of its descriptor).
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.lock.as_raw_fd()
    }

    fn store_path(&self) -> PathBuf {
        self.dir.join("store")
    }

    fn journal_path(&self) -> PathBuf {
        self.dir.join("journal")
    }

    /// The snapshot's bytes, if there is one.
    pub fn snapshot_bytes(&self) -> Result<Option<Vec<u8>>, Error> {
        read_in(&self.dir_fd, "store").map_err(|e| store_error(&self.store_path(), e))
    }

    /// The journal's bytes, if there is one and it is not empty.
    pub fn journal_bytes(&self) -> Result<Option<Vec<u8>>, Error> {
        match read_in(&self.dir_fd, "journal") {
            Ok(Some(bytes)) if bytes.is_empty() => Ok(None),
            Ok(bytes) => Ok(bytes),
            Err(e) => Err(store_error(&self.journal_path(), e)),
        }
    }

    /// Puts the snapshot's records into `table`, each on the file its path
    /// names now; returns how many were dropped, their path gone or naming
    /// a file of another type. A record whose path fr may not search is
    /// neither: it is kept aside and saved again as it was.
    pub fn restore(&self, table: &InodeTable, snapshot: Snapshot) -> Result<usize, Error> {
        let image = fs::openat(
            CWD,
            &self.image,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| store_error(&self.image, e))?;
        self.restore_in(table, snapshot, image.as_fd())
    }

    /// Puts the snapshot's records into `table` on the files their paths
    /// name under `root`, a view of the image (the overlay a
    /// `--writable-tmpfs` session sees, whose files have other numbers):
    /// the store on disk is read, never written.
    pub fn restore_at(
        &self,
        table: &InodeTable,
        root: std::os::fd::BorrowedFd<'_>,
    ) -> Result<(), Error> {
        let store_path = self.store_path();
        let Some(bytes) = self.snapshot_bytes()? else { return Ok(()) };
        let snapshot = Snapshot::decode(&bytes).map_err(|e| store_error(&store_path, e))?;
        self.restore_in(table, snapshot, root)?;
        Ok(())
    }

    fn restore_in(
        &self,
        table: &InodeTable,
        snapshot: Snapshot,
        image: std::os::fd::BorrowedFd<'_>,
    ) -> Result<usize, Error> {
        let mut dropped = 0usize;
        let mut unreachable = Vec::new();
        let mut dirs = Dirs::default();
        for rec in snapshot.records {
            let found = dirs.status(image, &rec.path);
            match place(&rec.attrs, found.as_ref().map(|st| u32::from(st.stx_mode)).map_err(|e| *e))
            {
                Place::Apply => {
                    if let Ok(st) = &found {
                        table.restore(key_of(st), rec.attrs, rec.xattrs);
                    }
                }
                Place::Aside => unreachable.push(rec),
                Place::Drop => dropped += 1,
            }
        }
        if !unreachable.is_empty() {
            log::warn!(
                "{} records of {} name files behind directories fr may not search here (a \
                 subuid-mode session's, whose owners only that mode maps): kept as they are, \
                 not shown in this session",
                unreachable.len(),
                self.store_path().display()
            );
        }
        *self.unreachable.lock().unwrap_or_else(|e| e.into_inner()) = unreachable;
        Ok(dropped)
    }

    /// The image root this store belongs to.
    pub fn root(&self) -> RootId {
        self.root
    }

    /// Fills `table` from the snapshot and, if it belongs to this image
    /// root, the journal; writes the result back as a snapshot when the
    /// journal had anything or a record was dropped. A damaged snapshot
    /// or journal is refused, and nothing is written: `fr fsck` says what
    /// is damaged, and its `--repair` what can be kept.
    pub fn load(&self, table: &InodeTable) -> Result<(), Error> {
        let store_path = self.store_path();
        let mut dropped = 0usize;
        if let Some(bytes) = self.snapshot_bytes()? {
            let snapshot = Snapshot::decode(&bytes).map_err(|e| match e {
                fr_emulator::store::StoreError::Corrupt(_) => damaged(
                    &store_path,
                    format!("{e}; run fr fsck {} to see what can be kept", self.image.display()),
                ),
                e => store_error(&store_path, e),
            })?;
            dropped = self.restore(table, snapshot)?;
        }
        let journal_path = self.journal_path();
        let mut replayed = 0usize;
        if let Some(bytes) = self.journal_bytes()? {
            let scan = decode_journal(&bytes).map_err(|e| store_error(&journal_path, e))?;
            if !scan.damage.is_empty() {
                return Err(damaged(
                    &journal_path,
                    format!(
                        "it is damaged: {}; {} entries before the damage are intact; fr fsck \
                         --repair {} keeps every intact entry",
                        describe_damage(&scan),
                        scan.damage[0].entry - 1,
                        self.image.display()
                    ),
                ));
            }
            if let Some(at) = scan.torn {
                log::debug!(
                    "{}: the last entry (at byte {at}) was torn by a killed session; its call was never answered",
                    journal_path.display()
                );
            }
            if scan.root == self.root {
                replayed = scan.changes.len();
                replay(table, scan.changes);
            } else if !scan.changes.is_empty() {
                log::warn!(
                    "{}: {} changes of an interrupted session were written for another copy of this image \
                     and cannot be applied here (run fr once on the original to keep them)",
                    journal_path.display(),
                    scan.changes.len()
                );
            }
        }
        if dropped > 0 {
            log::info!(
                "{dropped} records of files changed or removed outside fr were dropped from {}",
                store_path.display()
            );
        }
        if replayed > 0 || dropped > 0 {
            self.save(table)?;
        }
        Ok(())
    }

    /// The journal of this session's changes, made at the first change (a
    /// session that changes nothing writes nothing).
    pub fn journal(&self) -> Result<Box<dyn Journal>, Error> {
        Ok(Box::new(FileJournal {
            path: self.journal_path(),
            dir_fd: self.dir_fd.clone(),
            name: "journal".into(),
            append: false,
            root: self.root,
            sync: new_sync(),
            file: Mutex::new(Tail::Unopened),
            failed: AtomicBool::new(false),
        }))
    }

    /// Writes the table as the snapshot (paths found by walking the image)
    /// to a temporary file renamed over the old one, then empties the
    /// journal. A kill at any point leaves the old or the new snapshot,
    /// and a journal whose replay onto either gives the same table.
    pub fn save(&self, table: &InodeTable) -> Result<(), Error> {
        self.save_snapshot(&self.snapshot(table).0)
    }

    /// The table as a snapshot: a record for every path of the image
    /// whose file has one (found by walking the image), and the records
    /// kept aside as out of reach; with the keys found, and how many
    /// paths each has.
    pub fn snapshot(&self, table: &InodeTable) -> (Snapshot, HashMap<InodeKey, usize>) {
        let entries = table.entries();
        let mut by_key: HashMap<InodeKey, (Attrs, fr_emulator::table::Xattrs)> =
            entries.into_iter().map(|(k, a, x)| (k, (a, x))).collect();
        let mut records = Vec::new();
        let mut found = HashMap::new();
        self.walk(&self.image, &mut Vec::new(), &mut by_key, &mut records, &mut found);
        let unreachable = self.unreachable.lock().unwrap_or_else(|e| e.into_inner());
        if !unreachable.is_empty() {
            let seen: HashSet<Vec<u8>> = records.iter().map(|r| r.path.clone()).collect();
            records.extend(unreachable.iter().filter(|r| !seen.contains(&r.path)).cloned());
        }
        drop(unreachable);
        (Snapshot { root: self.root, records }, found)
    }

    /// Writes `snapshot` as the store (see [`Self::save`]).
    pub fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), Error> {
        let store_path = self.store_path();
        replace_atomically(&self.dir_fd, "store.tmp", "store", &snapshot.encode())
            .map_err(|e| store_error(&store_path, e))?;
        if read_in(&self.dir_fd, "journal")
            .map_err(|e| store_error(&self.journal_path(), e))?
            .is_some()
        {
            self.empty_journal()?;
        }
        Ok(())
    }

    /// Starts an empty journal (its header alone).
    pub fn empty_journal(&self) -> Result<(), Error> {
        replace_in(&self.dir_fd, "journal", &journal_header(self.root, new_sync()))
            .map(drop)
            .map_err(|e| store_error(&self.journal_path(), e))
    }

    /// Moves `name` in `.fr` aside as `name.damaged` (or `.damaged.N` if
    /// that is taken: a damaged file is never overwritten); returns the
    /// new path.
    pub fn set_aside(&self, name: &str) -> Result<PathBuf, Error> {
        let path = self.dir.join(name);
        for n in 0..1000 {
            let aside =
                if n == 0 { format!("{name}.damaged") } else { format!("{name}.damaged.{n}") };
            match fs::renameat_with(
                &*self.dir_fd,
                name,
                &*self.dir_fd,
                aside.as_str(),
                fs::RenameFlags::NOREPLACE,
            ) {
                Ok(()) => return Ok(self.dir.join(aside)),
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => return Err(store_error(&path, e)),
            }
        }
        Err(store_error(&path, "1000 damaged copies are already kept beside it"))
    }

    /// Whether a failed save left `store.tmp` (fr before 0.2 did), and
    /// removes it if `remove`.
    pub fn leftover_tmp(&self, remove: bool) -> bool {
        let there =
            fs::statx(&*self.dir_fd, "store.tmp", AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE)
                .is_ok();
        if there && remove {
            let _ = fs::unlinkat(&*self.dir_fd, "store.tmp", AtFlags::empty());
        }
        there
    }

    /// The path of the snapshot, for messages.
    pub fn snapshot_path(&self) -> PathBuf {
        self.store_path()
    }

    /// The path of the journal, for messages.
    pub fn journal_file(&self) -> PathBuf {
        self.journal_path()
    }

    /// Collects a record for every path under `dir` whose inode has one
    /// that fits its file (a record of another type belongs to a file
    /// that was there before: no view uses it, and the next load would
    /// drop it), and counts the paths of each key found.
    fn walk(
        &self,
        dir: &Path,
        rel: &mut Vec<u8>,
        by_key: &mut HashMap<InodeKey, (Attrs, fr_emulator::table::Xattrs)>,
        out: &mut Vec<Stored>,
        found: &mut HashMap<InodeKey, usize>,
    ) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            log::debug!("cannot read {} to save its records", dir.display());
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if rel.is_empty() && name == DIR {
                continue;
            }
            let path = entry.path();
            let Ok(st) = fs::statx(CWD, &path, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS)
            else {
                continue;
            };
            let len = rel.len();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(name.as_bytes());
            let key = key_of(&st);
            if let Some((attrs, xattrs)) = by_key.get(&key) {
                if belongs(attrs, u32::from(st.stx_mode)) {
                    out.push(Stored { path: rel.clone(), attrs: *attrs, xattrs: xattrs.clone() });
                    *found.entry(key).or_default() += 1;
                }
            }
            if u32::from(st.stx_mode) & fr_emulator::attrs::S_IFMT == fr_emulator::attrs::S_IFDIR {
                self.walk(&path, rel, by_key, out, found);
            }
            rel.truncate(len);
        }
        if rel.is_empty() {
            // The image root itself.
            if let Ok(st) = fs::statx(CWD, dir, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS)
            {
                let key = key_of(&st);
                match by_key.remove(&key) {
                    Some((attrs, xattrs)) if belongs(&attrs, u32::from(st.stx_mode)) => {
                        out.push(Stored { path: b".".to_vec(), attrs, xattrs });
                        *found.entry(key).or_default() += 1;
                    }
                    _ => {}
                }
            }
        }
    }
}

/// `fr exec -f -i FILE -s FILE` on the host tree, as `fakeroot -i/-s`: the
/// table as a state file keyed by inode (the host tree is too big to walk
/// for paths), in the journal's checked format. `-s` writes the loaded
/// table at the start and appends every change as it is made, so that a
/// killed session loses nothing; the end compacts it. A record whose file
/// has meanwhile another type is ignored, as the table ignores any stale
/// record.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    dir_fd: Arc<OwnedFd>,
    name: String,
    root: RootId,
    /// The marker of the entries this session writes.
    sync: SyncMarker,
}

impl StateFile {
    pub fn new(path: &Path) -> Result<StateFile, Error> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| store_error(path, "a state file needs a UTF-8 file name"))?;
        let dir_fd =
            fs::open(parent, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| store_error(path, format!("opening its directory: {e}")))?;
        Ok(StateFile {
            path: path.to_path_buf(),
            dir_fd: Arc::new(dir_fd),
            name: name.to_string(),
            root: root_id(Path::new("/"))?,
            sync: new_sync(),
        })
    }

    /// The state file's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state file's bytes.
    pub fn bytes(&self) -> Result<Vec<u8>, Error> {
        read_in(&self.dir_fd, &self.name)
            .map_err(|e| store_error(&self.path, e))?
            .ok_or_else(|| store_error(&self.path, "no such file (fr exec -f -s FILE writes one)"))
    }

    /// Whether the state file was written on this root file system.
    pub fn root(&self) -> RootId {
        self.root
    }

    /// Moves the state file aside as `FILE.damaged` (or `.damaged.N`);
    /// returns the new path.
    pub fn set_aside(&self) -> Result<PathBuf, Error> {
        for n in 0..1000 {
            let aside = if n == 0 {
                format!("{}.damaged", self.name)
            } else {
                format!("{}.damaged.{n}", self.name)
            };
            match fs::renameat_with(
                &*self.dir_fd,
                self.name.as_str(),
                &*self.dir_fd,
                aside.as_str(),
                fs::RenameFlags::NOREPLACE,
            ) {
                Ok(()) => return Ok(self.path.with_file_name(aside)),
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => return Err(store_error(&self.path, e)),
            }
        }
        Err(store_error(&self.path, "1000 damaged copies are already kept beside it"))
    }

    /// Fills `table` from the state file, which must exist.
    /// A damaged one is refused whole: loading what is intact would look
    /// like success while records are missing. One written on another
    /// root file system is not applied (its inode numbers name other files
    /// here), with a warning.
    pub fn load(&self, table: &InodeTable) -> Result<(), Error> {
        let (root, changes) = self.changes()?;
        if root != self.root {
            log::warn!(
                "{} was written on another root file system; its {} records are not applied",
                self.path.display(),
                changes.len()
            );
            return Ok(());
        }
        replay(table, changes);
        Ok(())
    }

    /// The state file's records, in order, for this root file system: one
    /// written on another is refused by name (`fr import --state`, where
    /// applying nothing would leave an image without its owners and say
    /// nothing).
    pub fn changes_here(&self) -> Result<Vec<Change>, Error> {
        let (root, changes) = self.changes()?;
        if root != self.root {
            return Err(Error::ForeignState {
                path: self.path.display().to_string(),
                why: format!(
                    "it was written on another root file system (device {}, inode {}; this one \
                     is device {}, inode {}): its inode numbers name other files here",
                    root.dev, root.ino, self.root.dev, self.root.ino
                ),
            });
        }
        Ok(changes)
    }

    /// The root file system the state file was written on, and its
    /// entries; a damaged one is refused.
    fn changes(&self) -> Result<(RootId, Vec<Change>), Error> {
        let bytes = self.bytes()?;
        let scan = decode_journal(&bytes).map_err(|e| match e {
            fr_emulator::store::StoreError::NotAStore => store_error(
                &self.path,
                "it is not an fr state file (fr exec -f -s FILE writes one)",
            ),
            e => store_error(&self.path, e),
        })?;
        if !scan.damage.is_empty() {
            return Err(Error::DamagedState {
                path: self.path.display().to_string(),
                why: format!(
                    "it is damaged: {}; fr fsck --repair {} keeps every intact entry",
                    describe_damage(&scan),
                    self.path.display()
                ),
            });
        }
        if let Some(at) = scan.torn {
            log::debug!(
                "{}: the last entry (at byte {at}) was torn by a killed session",
                self.path.display()
            );
        }
        Ok((scan.root, scan.changes))
    }

    /// Writes the whole table to the state file, through a temporary file
    /// renamed over it.
    pub fn save(&self, table: &InodeTable) -> Result<(), Error> {
        self.write(table, self.root)
    }

    /// Writes `table` as a state file for the root file system `root`.
    pub fn write(&self, table: &InodeTable, root: RootId) -> Result<(), Error> {
        let mut bytes = journal_header(root, self.sync);
        for (key, attrs, xattrs) in table.entries() {
            bytes.extend(Change::Set { key, attrs, xattrs }.encode(self.sync));
        }
        let tmp = format!(".{}.fr-tmp", self.name);
        replace_atomically(&self.dir_fd, &tmp, &self.name, &bytes)
            .map_err(|e| store_error(&self.path, e))
    }

    /// Every change of the session, appended to the state file.
    pub fn journal(&self) -> Box<dyn Journal> {
        Box::new(FileJournal {
            path: self.path.clone(),
            dir_fd: self.dir_fd.clone(),
            name: self.name.clone(),
            append: true,
            root: self.root,
            sync: self.sync,
            file: Mutex::new(Tail::Unopened),
            failed: AtomicBool::new(false),
        })
    }
}

/// Puts journal entries into `table`, in order.
pub fn replay(table: &InodeTable, changes: Vec<Change>) {
    for change in changes {
        match change {
            Change::Set { key, attrs, xattrs } => table.restore(key, attrs, xattrs),
            Change::Forget { key } => table.forget_quietly(key),
        }
    }
}

/// The status of the file a record's path names in the image, found as
/// `openat2` with `RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV`
/// of the whole path finds it (the same file, the same errno), but with
/// the directory looked up once for all its records: a snapshot lists
/// paths in walk order, so a directory's records follow each other, and a
/// `statx` of a name in an open directory costs a fraction of a lookup
/// from the root (an image session's start loads every record).
#[derive(Default)]
struct Dirs {
    /// The last directory looked up, by its path.
    last: Option<(Vec<u8>, Looked)>,
}

/// A directory looked up: it and its mount, or the errno of its lookup.
type Looked = Result<(OwnedFd, u64), rustix::io::Errno>;

impl Dirs {
    fn status(
        &mut self,
        image: std::os::fd::BorrowedFd<'_>,
        path: &[u8],
    ) -> Result<fs::Statx, rustix::io::Errno> {
        let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV;
        let (dir, name) = match path.iter().rposition(|&b| b == b'/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => (&b"."[..], path),
        };
        if name.is_empty() || name == b"." || name == b".." || dir.is_empty() {
            let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            return fs::openat2(image, path, flags, Mode::empty(), resolve)
                .and_then(|f| fs::statx(&f, "", AtFlags::EMPTY_PATH, StatxFlags::BASIC_STATS));
        }
        if self.last.as_ref().is_none_or(|(last, _)| last.as_slice() != dir) {
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
            let opened = fs::openat2(image, dir, flags, Mode::empty(), resolve).and_then(|d| {
                let st = fs::statx(&d, "", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID)?;
                Ok((d, st.stx_mnt_id))
            });
            self.last = Some((dir.to_vec(), opened));
        }
        let Some((_, opened)) = &self.last else { unreachable!("just set") };
        let (dir, mount) = opened.as_ref().map_err(|e| *e)?;
        let mask = StatxFlags::BASIC_STATS | StatxFlags::MNT_ID;
        let st = fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, mask)?;
        // A mount on the name itself: RESOLVE_NO_XDEV's EXDEV.
        if st.stx_mnt_id != *mount {
            return Err(rustix::io::Errno::XDEV);
        }
        Ok(st)
    }
}

/// What loading does with a snapshot's record, by what its path leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// The file there is the record's: it takes it.
    Apply,
    /// The file is gone or is another (changed outside fr): the record
    /// goes, and is never applied to another file.
    Drop,
    /// The path cannot be searched from here (`EACCES`): the file is not
    /// known to be gone, and the record is kept as it is.
    Aside,
}

/// Where the record `rec` goes when its path resolves to a file of mode
/// `found`, or fails with that errno (`openat2` with `RESOLVE_IN_ROOT |
/// RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV`: `ENOENT`, `ENOTDIR`, `ELOOP` at a
/// symlink, `EXDEV` across a mount, `EACCES` at a directory fr may not
/// search).
fn place(rec: &Attrs, found: Result<u32, rustix::io::Errno>) -> Place {
    match found {
        Ok(mode) if belongs(rec, mode) => Place::Apply,
        Err(rustix::io::Errno::ACCESS) => Place::Aside,
        _ => Place::Drop,
    }
}

/// Whether a stored record still fits the file at its path: same type, or
/// a device record on its regular placeholder.
fn belongs(rec: &Attrs, real_mode: u32) -> bool {
    let real = fr_emulator::FileType::from_mode(real_mode);
    rec.file_type() == real
        || (rec.file_type().is_device() && real == fr_emulator::FileType::Regular)
}

/// The session's journal: one `write(2)` per change, under a lock that
/// orders the entries; a change is kept once its entry is written whole.
#[derive(Debug)]
struct FileJournal {
    path: PathBuf,
    dir_fd: Arc<OwnedFd>,
    name: String,
    /// Whether entries go after what the file holds (a state file, which
    /// starts as a full snapshot written with the same marker), rather
    /// than into a new journal.
    append: bool,
    root: RootId,
    sync: SyncMarker,
    file: Mutex<Tail>,
    failed: AtomicBool,
}

/// Where the journal's next entry goes.
#[derive(Debug)]
enum Tail {
    /// No change yet: the file is made (or opened) at the first.
    Unopened,
    /// The file, and its length up to the end of its last whole entry:
    /// a failed or partial write is cut back to it, so that the next
    /// entry never follows a torn one (which a reader would take for
    /// damage).
    Open { file: File, good: u64 },
    /// A torn entry could not be cut off: every later change is refused
    /// with this errno, so that the torn entry stays the journal's tail.
    Stopped(i32),
}

impl FileJournal {
    /// The file the first change goes to: a new, empty journal (a previous
    /// one was replayed and saved), or the state file to append to.
    fn create(&self) -> std::io::Result<File> {
        if self.append {
            match open_in(&self.dir_fd, &self.name, OFlags::WRONLY | OFlags::APPEND) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                other => return other,
            }
        }
        replace_in(&self.dir_fd, &self.name, &journal_header(self.root, self.sync))
    }

    fn failed(&self, e: &std::io::Error) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            log::warn!(
                "writing {}: {e}; the changes it cannot keep fail with that error (free some space)",
                self.path.display()
            );
        }
    }
}

impl Journal for FileJournal {
    fn record(&self, change: &Change) -> Result<(), Unkept> {
        let mut tail = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Tail::Stopped(errno) = *tail {
            return Err(Unkept(errno));
        }
        let entry = change.encode(self.sync);
        if matches!(*tail, Tail::Unopened) {
            let opened = self.create().and_then(|f| Ok((f.metadata()?.len(), f)));
            match opened {
                Ok((good, file)) => *tail = Tail::Open { file, good },
                Err(e) => {
                    self.failed(&e);
                    // A header written in part is no journal: it goes, and
                    // the next change tries again.
                    if !self.append {
                        let _ = fs::unlinkat(&*self.dir_fd, self.name.as_str(), AtFlags::empty());
                    }
                    return Err(Unkept(errno_of(&e)));
                }
            }
        }
        let Tail::Open { file, good } = &mut *tail else { return Err(Unkept(libc::EIO)) };
        match file.write_all(&entry) {
            Ok(()) => {
                *good += entry.len() as u64;
                Ok(())
            }
            Err(e) => {
                self.failed(&e);
                let errno = errno_of(&e);
                let cut = file.set_len(*good).and_then(|()| file.seek(SeekFrom::Start(*good)));
                if let Err(e) = cut {
                    log::error!(
                        "cutting a torn entry off {}: {e}; every later change of this session fails",
                        self.path.display()
                    );
                    *tail = Tail::Stopped(errno);
                }
                Err(Unkept(errno))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fr_emulator::attrs::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG};
    use fr_emulator::IdMap;
    use rustix::io::Errno;

    fn attrs(mode: u32, uid: u32) -> Attrs {
        Attrs { mode, uid, gid: uid, rdev_major: 0, rdev_minor: 0 }
    }

    const KEY: InodeKey = InodeKey { dev: 8, ino: 42 };

    /// A directory of its own under the system's temporary directory,
    /// removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("fr-store-{name}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn key(path: &Path) -> InodeKey {
        key_of(&fs::statx(CWD, path, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS).unwrap())
    }

    #[test]
    fn a_record_fits_a_file_of_its_type_or_a_devices_placeholder() {
        assert!(belongs(&attrs(S_IFREG | 0o4755, 5), S_IFREG | 0o644));
        assert!(belongs(&attrs(S_IFDIR, 5), S_IFDIR | 0o700));
        assert!(belongs(&attrs(S_IFCHR | 0o600, 0), S_IFREG | 0o600));
        assert!(belongs(&attrs(S_IFBLK | 0o600, 0), S_IFREG | 0o600));
        assert!(!belongs(&attrs(S_IFCHR | 0o600, 0), S_IFDIR | 0o700));
        assert!(!belongs(&attrs(S_IFREG, 0), S_IFDIR | 0o755));
        assert!(!belongs(&attrs(S_IFDIR, 0), S_IFREG | 0o644));
        assert!(!belongs(&attrs(S_IFLNK | 0o777, 0), S_IFREG | 0o644));
        assert!(!belongs(&attrs(S_IFIFO | 0o644, 0), S_IFREG | 0o644));
    }

    /// Looking a record's path up through its directory, kept from one
    /// record to the next, finds what `openat2` of the whole path finds:
    /// the same file, or the same errno.
    #[test]
    fn a_kept_directory_finds_what_the_whole_path_finds() {
        use std::os::unix::fs::symlink;
        let root = std::env::temp_dir().join(format!("fr-store-dirs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), "").unwrap();
        std::fs::write(root.join("a/g"), "").unwrap();
        std::fs::write(root.join("top"), "").unwrap();
        symlink("b", root.join("a/link")).unwrap();
        symlink("/etc", root.join("a/b/abs")).unwrap();
        let image =
            fs::openat(CWD, &root, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let whole = |path: &[u8]| {
            let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV;
            fs::openat2(&image, path, OFlags::PATH | OFlags::NOFOLLOW, Mode::empty(), resolve)
                .and_then(|f| fs::statx(&f, "", AtFlags::EMPTY_PATH, StatxFlags::BASIC_STATS))
        };
        let mut dirs = Dirs::default();
        let paths: [&[u8]; 14] = [
            b"a/b/f",
            b"a/b/abs",
            b"a/b/none",
            b"a/b",
            b"a/g",
            b"a/g/x",
            b"a/link",
            b"a/link/f",
            b"top",
            b"none/x",
            b"none/y",
            b"a/b/f",
            b"a/b/../g",
            b"",
        ];
        for path in paths {
            let got = dirs.status(image.as_fd(), path).map(|st| (st.stx_ino, st.stx_mode));
            let want = whole(path).map(|st| (st.stx_ino, st.stx_mode));
            assert_eq!(got, want, "{}", String::from_utf8_lossy(path));
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn loading_applies_drops_or_keeps_aside_by_what_the_path_leads_to() {
        let file = attrs(S_IFREG | 0o4755, 5);
        assert_eq!(place(&file, Ok(S_IFREG | 0o644)), Place::Apply);
        assert_eq!(place(&attrs(S_IFCHR, 0), Ok(S_IFREG | 0o600)), Place::Apply);
        assert_eq!(place(&file, Ok(S_IFDIR | 0o755)), Place::Drop, "another file took the path");
        for gone in [Errno::NOENT, Errno::NOTDIR, Errno::LOOP, Errno::XDEV, Errno::IO] {
            assert_eq!(place(&file, Err(gone)), Place::Drop, "{gone:?}");
        }
        assert_eq!(place(&file, Err(Errno::ACCESS)), Place::Aside, "out of reach, not gone");
    }

    #[test]
    fn a_journal_is_replayed_in_order_forgets_included() {
        let table = InodeTable::new(IdMap::new(1000, 1000));
        let set = |uid| Change::Set {
            key: KEY,
            attrs: attrs(S_IFREG | 0o644, uid),
            xattrs: Default::default(),
        };
        // A file recorded, removed (its forget), and a new one that took
        // its number: the new one has no record.
        replay(&table, vec![set(5), Change::Forget { key: KEY }]);
        assert!(table.is_empty(), "the forget was not replayed");
        replay(&table, vec![set(5), Change::Forget { key: KEY }, set(7)]);
        assert_eq!(table.entries()[0].1.uid, 7);
        let mut x = fr_emulator::table::Xattrs::new();
        x.insert(b"trusted.t".to_vec(), b"1".to_vec());
        replay(&table, vec![Change::Set { key: KEY, attrs: attrs(S_IFREG, 1), xattrs: x }]);
        replay(&table, vec![Change::Forget { key: KEY }]);
        assert!(table.entries().is_empty(), "its xattrs went with it");
    }

    /// The snapshot's walk: a record at every path of a recorded file (hard
    /// links too), the image root as `.`, fr's own `.fr` at the top left
    /// out (one deeper is the image's), symbolic links recorded but not
    /// followed, a record of another type than its file left out.
    #[test]
    fn the_snapshot_names_every_path_of_every_recorded_file() {
        let img = Scratch::new("walk");
        let root = &img.0;
        let store = ImageStore::open(root).unwrap();
        for d in ["d", "sub/.fr", "target"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in ["a", "sub/.fr/x", "target/inside", "stale", ".fr/mine"] {
            std::fs::write(root.join(f), "").unwrap();
        }
        std::fs::hard_link(root.join("a"), root.join("d/h")).unwrap();
        std::os::unix::fs::symlink("target", root.join("l")).unwrap();
        let table = InodeTable::new(IdMap::new(1000, 1000));
        let rec = |path: &str, mode: u32, uid: u32| {
            table.restore(key(&root.join(path)), attrs(mode, uid), Default::default())
        };
        rec("a", S_IFREG | 0o4755, 1);
        rec("sub/.fr/x", S_IFREG | 0o644, 2);
        rec("target/inside", S_IFCHR | 0o600, 3);
        rec("l", S_IFLNK | 0o777, 4);
        rec("stale", S_IFDIR | 0o755, 5);
        rec(".fr/mine", S_IFREG | 0o644, 6);
        rec(".", S_IFDIR | 0o755, 7);
        let (snapshot, found) = store.snapshot(&table);
        let mut got: Vec<(String, u32)> = snapshot
            .records
            .iter()
            .map(|r| (String::from_utf8(r.path.clone()).unwrap(), r.attrs.uid))
            .collect();
        got.sort();
        let want =
            [(".", 7), ("a", 1), ("d/h", 1), ("l", 4), ("sub/.fr/x", 2), ("target/inside", 3)];
        let want: Vec<(String, u32)> = want.iter().map(|(p, u)| (p.to_string(), *u)).collect();
        assert_eq!(got, want);
        assert_eq!(found.get(&key(&root.join("a"))), Some(&2), "two paths of one file");
        assert_eq!(found.len(), 5);
        assert_eq!(snapshot.root, store.root());
        // Saved and loaded again, the records land on the same files.
        store.save(&table).unwrap();
        let again = InodeTable::new(IdMap::new(1000, 1000));
        store.load(&again).unwrap();
        let mut keys: Vec<InodeKey> = again.entries().into_iter().map(|(k, _, _)| k).collect();
        keys.sort();
        let mut want: Vec<InodeKey> = [".", "a", "l", "sub/.fr/x", "target/inside"]
            .iter()
            .map(|p| key(&root.join(p)))
            .collect();
        want.sort();
        assert_eq!(keys, want);
    }

    /// A snapshot's records whose path is gone or names a file of another
    /// type are dropped on load (and the store saved without them); the
    /// others land on the files their paths name now.
    #[test]
    fn loading_drops_the_records_of_files_changed_outside_fr() {
        let img = Scratch::new("load");
        let root = &img.0;
        for f in ["kept", "gone", "retyped"] {
            std::fs::write(root.join(f), "").unwrap();
        }
        let store = ImageStore::open(root).unwrap();
        let table = InodeTable::new(IdMap::new(1000, 1000));
        for f in ["kept", "gone", "retyped"] {
            table.restore(key(&root.join(f)), attrs(S_IFREG | 0o600, 9), Default::default());
        }
        store.save(&table).unwrap();
        std::fs::remove_file(root.join("gone")).unwrap();
        std::fs::remove_file(root.join("retyped")).unwrap();
        std::fs::create_dir(root.join("retyped")).unwrap();
        let snapshot = Snapshot::decode(&store.snapshot_bytes().unwrap().unwrap()).unwrap();
        assert_eq!(snapshot.records.len(), 3);
        let again = InodeTable::new(IdMap::new(1000, 1000));
        assert_eq!(store.restore(&again, snapshot).unwrap(), 2);
        let entries = again.entries();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].0, key(&root.join("kept")));
    }
}
