//! `fr export IMAGE OUT`: the image as a tar archive that carries what
//! real root would have written: the fake owners (with names from the
//! image's own `/etc/passwd` and `/etc/group`), modes, device nodes, hard
//! links and extended attributes, as `tar -C IMAGE -cpf OUT --xattrs .`
//! run by real root would.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fr_emulator::attrs::S_IFMT;
use fr_emulator::tar::{self, Kind, Member};
use fr_emulator::{FileType, InodeKey, InodeTable};
use rustix::fs::{self, AtFlags, StatxFlags, CWD};

use crate::error::Error;
use crate::run::check_image;
use crate::store::{key_of, ImageStore, DIR};

/// How the archive is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression a file name asks for: `.gz`/`.tgz` gzip,
    /// `.zst`/`.tzst` zstd, anything else none.
    pub fn for_path(path: &Path) -> Compression {
        let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        if name.ends_with(".gz") || name.ends_with(".tgz") {
            Compression::Gzip
        } else if name.ends_with(".zst") || name.ends_with(".tzst") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

#[derive(Debug)]
pub struct ExportOptions {
    pub image: PathBuf,
    /// The archive; `-` is standard output.
    pub out: PathBuf,
    /// `None`: as the name of `out` says.
    pub compression: Option<Compression>,
    /// Show a progress line on standard error.
    pub progress: bool,
}

/// What an export wrote or an import unpacked.
#[derive(Debug, Default)]
pub struct Summary {
    pub members: u64,
    pub bytes: u64,
}

fn archive_error(path: &Path, why: impl Into<crate::error::Cause>) -> Error {
    Error::Archive { path: path.display().to_string(), source: why.into() }
}

/// Writes the archive of `opts.image` to `opts.out`.
pub fn export(opts: &ExportOptions) -> Result<Summary, Error> {
    let image = check_image(&opts.image)?;
    let store = ImageStore::open(&image)?;
    let table = InodeTable::new(crate::idmap::enter_for_image()?);
    store.load(&table)?;
    let to_stdout = opts.out.as_os_str() == "-";
    let (sink, skip): (Box<dyn Write>, Option<InodeKey>) = if to_stdout {
        (Box::new(std::io::stdout().lock()), None)
    } else {
        let file = File::create(&opts.out).map_err(|e| archive_error(&opts.out, e))?;
        let st = fs::statx(&file, "", AtFlags::EMPTY_PATH, StatxFlags::BASIC_STATS)
            .map_err(|e| archive_error(&opts.out, e))?;
        (Box::new(file), Some(key_of(&st)))
    };
    let sink = BufWriter::with_capacity(1 << 20, sink);
    let compression = opts.compression.unwrap_or(Compression::for_path(&opts.out));
    let out: Box<dyn Write> = match compression {
        Compression::None => Box::new(sink),
        Compression::Gzip => {
            Box::new(flate2::write::GzEncoder::new(sink, flate2::Compression::default()))
        }
        Compression::Zstd => Box::new(
            zstd::Encoder::new(sink, 3).map_err(|e| archive_error(&opts.out, e))?.auto_finish(),
        ),
    };
    let progress = opts.progress.then(|| Progress::new(count_members(&image, true) + 1));
    write_tar(&image, &table, out, &opts.out, skip, progress)
}

/// Writes the tar archive of `image`, whose records are in `table`, to
/// `out` (`shown` names it in errors), leaving out the file `skip`.
pub(crate) fn write_tar<'a>(
    image: &Path,
    table: &'a InodeTable,
    out: Box<dyn Write + 'a>,
    shown: &Path,
    skip: Option<InodeKey>,
    progress: Option<Progress>,
) -> Result<Summary, Error> {
    let mut writer = Writer::new(image, table, out, shown, skip, progress);
    writer.member(image, b".")?;
    writer.directory(image, b".")?;
    writer.end()
}

/// The records of `images`, keyed by inode, written as a state file that
/// a session on the host tree loads with `-i FILE`: the inverse of
/// [`crate::import::import_state`]. A host-tree session that works on an
/// image's files (a build's `%setup`, a copy out of another image) then
/// sees their owners, modes and devices as a session in the image would,
/// and keeps what it changes in its own `-s FILE`. Each image's lock is
/// held while its store is read. As [`export`], it reads the images from
/// a namespace that maps the user's subordinate ids, which the calling
/// process enters for good. Returns how many records were written.
pub fn export_state(images: &[&Path], state: &Path) -> Result<usize, Error> {
    let images = images.iter().map(|i| check_image(i)).collect::<Result<Vec<_>, _>>()?;
    let stores = images.iter().map(|i| ImageStore::open(i)).collect::<Result<Vec<_>, _>>()?;
    let table = InodeTable::new(crate::idmap::enter_for_image()?);
    for store in &stores {
        store.load(&table)?;
    }
    crate::store::StateFile::new(state)?.save(&table)?;
    Ok(table.len())
}

struct Writer<'a> {
    table: &'a InodeTable,
    names: Names,
    out: Box<dyn Write + 'a>,
    archive: PathBuf,
    /// The first member name of each file with more than one link.
    links: HashMap<InodeKey, Vec<u8>>,
    /// The archive itself, when it is written inside the image.
    skip: Option<InodeKey>,
    summary: Summary,
    progress: Option<Progress>,
}

impl<'a> Writer<'a> {
    /// A writer of the members of `image`, whose records are in `table`,
    /// to `out` (`shown` names it in errors), leaving out the file `skip`.
    fn new(
        image: &Path,
        table: &'a InodeTable,
        out: Box<dyn Write + 'a>,
        shown: &Path,
        skip: Option<InodeKey>,
        progress: Option<Progress>,
    ) -> Self {
        Writer {
            table,
            names: Names::of(image),
            out,
            archive: shown.to_path_buf(),
            links: HashMap::new(),
            skip,
            summary: Summary::default(),
            progress,
        }
    }

    /// Writes the end-of-archive blocks and flushes the archive; what was
    /// written.
    fn end(mut self) -> Result<Summary, Error> {
        self.out.write_all(&tar::END).map_err(|e| archive_error(&self.archive, e))?;
        self.out.flush().map_err(|e| archive_error(&self.archive, e))?;
        if let Some(p) = &mut self.progress {
            p.done(&self.summary);
        }
        Ok(std::mem::take(&mut self.summary))
    }
    /// The members under the directory `dir`, named `rel/...`, in name order.
    fn directory(&mut self, dir: &Path, rel: &[u8]) -> Result<(), Error> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .and_then(|entries| entries.map(|e| e.map(|e| e.file_name())).collect())
            .map_err(|e| archive_error(dir, format!("reading the directory: {e}")))?;
        names.sort();
        for name in names {
            if rel == b"." && name == DIR {
                continue;
            }
            let path = dir.join(&name);
            let mut member = rel.to_vec();
            member.push(b'/');
            member.extend_from_slice(name.as_bytes());
            if self.member(&path, &member)? {
                self.directory(&path, &member)?;
            }
        }
        Ok(())
    }

    /// Writes the member for `path`; true if it is a directory.
    fn member(&mut self, path: &Path, name: &[u8]) -> Result<bool, Error> {
        let st = fs::statx(CWD, path, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS)
            .map_err(|e| archive_error(path, e))?;
        let key = key_of(&st);
        if Some(key) == self.skip {
            return Ok(false);
        }
        let real = crate::store::real_attrs(&st, self.table.ids());
        let view = self.table.view(key, real);
        let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> =
            self.table.xattrs(key, real).into_iter().collect();
        xattrs.extend(user_xattrs(path));
        xattrs.sort();
        let kind = match view.file_type() {
            FileType::Regular => Kind::Regular,
            FileType::Directory => Kind::Directory,
            FileType::Symlink => Kind::Symlink,
            FileType::CharDevice => Kind::CharDevice,
            FileType::BlockDevice => Kind::BlockDevice,
            FileType::Fifo => Kind::Fifo,
            FileType::Socket | FileType::Unknown(_) => {
                log::warn!("{}: a socket is not archived (as tar does)", path.display());
                return Ok(false);
            }
        };
        let mut member = Member {
            path: name.to_vec(),
            kind: Some(kind),
            mode: view.mode & !S_IFMT,
            uid: view.uid,
            gid: view.gid,
            uname: self.names.user(view.uid),
            gname: self.names.group(view.gid),
            mtime: st.stx_mtime.tv_sec,
            mtime_nsec: st.stx_mtime.tv_nsec,
            xattrs,
            ..Member::default()
        };
        match kind {
            Kind::Symlink => {
                member.link = std::fs::read_link(path)
                    .map_err(|e| archive_error(path, e))?
                    .into_os_string()
                    .into_encoded_bytes();
            }
            Kind::CharDevice | Kind::BlockDevice => {
                (member.dev_major, member.dev_minor) = (view.rdev_major, view.rdev_minor);
            }
            _ => {}
        }
        if archived_as_links(kind) && st.stx_nlink > 1 {
            if let Some(first) = self.links.get(&key) {
                member.kind = Some(Kind::HardLink);
                member.link = first.clone();
                member.xattrs.clear();
                self.write(&tar::header(&member))?;
                self.count(0);
                return Ok(false);
            }
            self.links.insert(key, name.to_vec());
        }
        // A device placeholder's (empty) contents are not the device's.
        let from_disk =
            kind == Kind::Regular && FileType::from_mode(real.mode) == FileType::Regular;
        member.size = if from_disk { st.stx_size } else { 0 };
        self.write(&tar::header(&member))?;
        if from_disk {
            self.contents(path, member.size)?;
        }
        self.count(member.size);
        Ok(kind == Kind::Directory)
    }

    /// Copies exactly `size` bytes of the file at `path`, zeros if it
    /// shrank meanwhile, and the padding.
    fn contents(&mut self, path: &Path, size: u64) -> Result<(), Error> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| archive_error(path, format!("reading it: {e}")))?;
        let copied = std::io::copy(&mut file.take(size), &mut self.out)
            .map_err(|e| archive_error(path, format!("reading it: {e}")))?;
        if copied < size {
            log::warn!("{}: it shrank while being archived; the rest is zeros", path.display());
            std::io::copy(&mut std::io::repeat(0).take(size - copied), &mut self.out)
                .map_err(|e| archive_error(&self.archive, e))?;
        }
        self.write(&vec![0u8; tar::padding(size)])
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.out.write_all(bytes).map_err(|e| archive_error(&self.archive, e))
    }

    fn count(&mut self, bytes: u64) {
        self.summary.members += 1;
        self.summary.bytes += bytes;
        if let Some(p) = &mut self.progress {
            p.tick(&self.summary, self.summary.members);
        }
    }
}

/// Writes the members `changes` lists (an OCI layer over a base,
/// [`crate::diff`]) of `image`, whose records are in `table`, to `out`,
/// and the end-of-archive blocks.
pub(crate) fn write_changes<'a>(
    image: &Path,
    table: &'a InodeTable,
    out: Box<dyn Write + 'a>,
    shown: &Path,
    changes: &[crate::diff::Change],
) -> Result<Summary, Error> {
    use crate::diff::Change;
    let mut writer = Writer::new(image, table, out, shown, None, None);
    for change in changes {
        match change {
            Change::Write { path, name } => {
                writer.member(path, name)?;
            }
            Change::Whiteout { name } => {
                let member = Member {
                    path: name.clone(),
                    kind: Some(Kind::Regular),
                    mode: 0o644,
                    ..Member::default()
                };
                writer.write(&tar::header(&member))?;
                writer.count(0);
            }
        }
    }
    writer.end()
}

/// Whether a second name of a file of this kind is archived as a hard
/// link to the first: GNU tar does so for regular files and symbolic
/// links, and archives every name of a fifo or a device as a member of
/// its own (`src/create.c: dump_file0()` asks `dump_hard_link()` for
/// those two kinds alone); a directory has no second name.
fn archived_as_links(kind: Kind) -> bool {
    matches!(kind, Kind::Regular | Kind::Symlink)
}

/// The file's real `user.*` attributes: the user may set those for real,
/// so fr keeps them on disk rather than in its table.
pub(crate) fn user_xattrs(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut list = vec![0u8; 65536];
    let Ok(n) = fs::llistxattr(path, &mut list) else { return Vec::new() };
    list[..n]
        .split(|&b| b == 0)
        .filter(|name| name.starts_with(b"user."))
        .filter_map(|name| {
            let mut value = vec![0u8; 65536];
            let len = fs::lgetxattr(path, name, &mut value).ok()?;
            value.truncate(len);
            Some((name.to_vec(), value))
        })
        .collect()
}

/// User and group names from the image's `/etc/passwd` and `/etc/group`.
#[derive(Debug, Default)]
struct Names {
    users: HashMap<u32, Vec<u8>>,
    groups: HashMap<u32, Vec<u8>>,
}

impl Names {
    fn of(image: &Path) -> Names {
        Names { users: read_ids(image, "etc/passwd"), groups: read_ids(image, "etc/group") }
    }

    fn user(&self, uid: u32) -> Vec<u8> {
        self.users.get(&uid).cloned().unwrap_or_default()
    }

    fn group(&self, gid: u32) -> Vec<u8> {
        self.groups.get(&gid).cloned().unwrap_or_default()
    }
}

/// `name:x:id:...` lines of the image's file `rel`, read without leaving
/// the image (its symlinks resolve inside it).
fn read_ids(image: &Path, rel: &str) -> HashMap<u32, Vec<u8>> {
    let Ok(root) = fs::open(image, fs::OFlags::PATH | fs::OFlags::DIRECTORY, fs::Mode::empty())
    else {
        return HashMap::new();
    };
    let Ok(fd) = fs::openat2(
        &root,
        rel,
        fs::OFlags::RDONLY | fs::OFlags::NONBLOCK | fs::OFlags::CLOEXEC,
        fs::Mode::empty(),
        fs::ResolveFlags::IN_ROOT | fs::ResolveFlags::NO_MAGICLINKS,
    ) else {
        return HashMap::new();
    };
    let mut text = Vec::new();
    if File::from(fd).take(16 << 20).read_to_end(&mut text).is_err() {
        return HashMap::new();
    }
    let mut ids = HashMap::new();
    for line in text.split(|&b| b == b'\n') {
        let mut fields = line.split(|&b| b == b':');
        let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let id = std::str::from_utf8(id).ok().and_then(|s| s.parse::<u32>().ok());
        if let (Some(id), false) = (id, name.is_empty()) {
            ids.entry(id).or_insert_with(|| name.to_vec());
        }
    }
    ids
}

/// A bar on standard error that says how far an export or import is:
/// `total` units (members, archive bytes), or only counts when unknown.
#[derive(Debug)]
pub(crate) struct Progress {
    last: Instant,
    total: u64,
}

impl Progress {
    const WIDTH: u64 = 30;

    pub(crate) fn new(total: u64) -> Progress {
        Progress { last: Instant::now(), total }
    }

    /// Redraws, at most five times a second, with `done` units of the total.
    pub(crate) fn tick(&mut self, s: &Summary, done: u64) {
        if self.last.elapsed() >= Duration::from_millis(200) {
            self.last = Instant::now();
            self.draw(s, done);
        }
    }

    pub(crate) fn done(&mut self, s: &Summary) {
        self.draw(s, self.total);
        eprintln!(" done");
    }

    fn draw(&self, s: &Summary, done: u64) {
        let counts = format!("{} files, {} MiB", s.members, s.bytes >> 20);
        if self.total == 0 {
            eprint!("\rfr: {counts}");
            return;
        }
        let pct = done.min(self.total) * 100 / self.total;
        let filled = (pct * Self::WIDTH / 100) as usize;
        let bar = "#".repeat(filled) + &"-".repeat(Self::WIDTH as usize - filled);
        eprint!("\rfr: [{bar}] {pct:3}% {counts}");
    }
}

/// How many members the export of `dir` will have (for the progress bar).
fn count_members(dir: &Path, top: bool) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut n = 0;
    for e in entries.flatten() {
        if top && e.file_name() == DIR {
            continue;
        }
        n += 1;
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            n += count_members(&e.path(), false);
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_named_from_the_images_passwd_and_group() {
        let img = std::env::temp_dir().join(format!("fr-export-names-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&img);
        std::fs::create_dir_all(img.join("etc")).unwrap();
        std::fs::write(
            img.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n\
             broken line\n:x:5:5::/:\nroot2:x:0:0::/:\nbig:x:4000000000:1::/:\n",
        )
        .unwrap();
        // The group file through an absolute symlink: read inside the image.
        std::fs::write(img.join("etc/group.real"), "root:x:0:\nnogroup:x:65534:\nstaff:x:50:u\n")
            .unwrap();
        std::os::unix::fs::symlink("/etc/group.real", img.join("etc/group")).unwrap();
        let names = Names::of(&img);
        let _ = std::fs::remove_dir_all(&img);
        assert_eq!(names.user(0), b"root", "the first name of an id wins");
        assert_eq!(names.user(65534), b"nobody");
        assert_eq!(names.group(65534), b"nogroup", "groups come from /etc/group");
        assert_eq!(names.group(50), b"staff");
        assert_eq!(names.user(50), b"", "no user 50");
        assert_eq!(names.user(5), b"", "an empty name is no name");
        assert_eq!(names.user(4_000_000_000), b"big");
        assert_eq!(names.group(1), b"");
    }

    #[test]
    fn an_image_without_names_exports_numbers_alone() {
        let names = Names::of(Path::new("/nonexistent/image"));
        assert_eq!((names.user(0), names.group(0)), (Vec::new(), Vec::new()));
    }

    #[test]
    fn only_regular_files_and_symlinks_are_archived_as_hard_links() {
        assert!(archived_as_links(Kind::Regular));
        assert!(archived_as_links(Kind::Symlink));
        for kind in [Kind::Fifo, Kind::CharDevice, Kind::BlockDevice, Kind::Directory] {
            assert!(!archived_as_links(kind), "{kind:?}");
        }
    }

    #[test]
    fn the_archive_is_compressed_as_its_name_says() {
        let c = |name: &str| Compression::for_path(Path::new(name));
        assert_eq!(c("a.tar.gz"), Compression::Gzip);
        assert_eq!(c("a.tgz"), Compression::Gzip);
        assert_eq!(c("dir.zst/a.tar.zst"), Compression::Zstd);
        assert_eq!(c("a.tzst"), Compression::Zstd);
        assert_eq!(c("a.tar"), Compression::None);
        assert_eq!(c("a.gz/a.tar"), Compression::None, "the file's name, not its directory's");
        assert_eq!(c("-"), Compression::None);
    }
}
