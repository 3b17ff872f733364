//! `fr rm IMAGE`: removes an image, including the files a subuid-mode
//! session gave to subordinate ids, which the user cannot delete on the
//! host. fr enters a user namespace mapping the user's ranges, where it
//! holds every capability over those files, and removes the tree there
//! (rootless podman's `podman unshare rm -rf`, in one command).
//!
//! It removes only what it is sure of, one of:
//!
//! - an fr image: the top directory holds fr's store, `.fr`, a real
//!   directory (not a symlink);
//! - a tree whose top directory belongs to one of the user's subordinate
//!   ids (uid or gid), which only a subuid-mode session can have made;
//! - what a failed `rm -rf` of a subuid-mode image leaves: directories of
//!   the user's that hold nothing but such directories, down to files of
//!   the subordinate ids (`rm -rf` removed everything else, `.fr`
//!   included). One file of the user's in them, or an empty directory,
//!   and the tree is not that.
//!
//! Anything else is refused and left untouched: `/`, the user's home
//! directory, a path that is not a directory (a symlink to one included),
//! a directory that merely holds an image somewhere below.
//!
//! Hazards, and how they are met. The whole tree is walked before the
//! first file goes (the check pass): a mount point anywhere in it (a
//! directory or file whose mount id differs from the top's, or that is a
//! mount's root: `statx(2)` `STATX_MNT_ID`, `STATX_ATTR_MOUNT_ROOT`), the
//! user's home directory, a directory fr cannot read or empty, all stop it
//! with nothing removed. Both passes go through directory descriptors:
//! each directory is opened relative to its parent with
//! `O_NOFOLLOW | O_DIRECTORY` and checked to be the inode the parent's
//! entry showed and on the top's mount, and entries are removed with
//! `unlinkat` in it. A symlink is removed as a link; a tree changed during
//! the removal cannot lead it outside. The image's lock is taken when it
//! exists (a running session makes fr rm refuse); nothing is created.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use fr_emulator::ids::Range;
use fr_emulator::IdMap;
use rustix::fs::{
    self, Access, AtFlags, FileType, Mode, OFlags, Statx, StatxAttributes, StatxFlags,
};
use rustix::io::Errno;

use crate::error::Error;
use crate::mode;
use crate::store::DIR;

/// What every `statx` of the walk asks for.
const WANT: StatxFlags = StatxFlags::TYPE
    .union(StatxFlags::MODE)
    .union(StatxFlags::UID)
    .union(StatxFlags::GID)
    .union(StatxFlags::INO)
    .union(StatxFlags::MNT_ID);

/// Removes `image`, which no fr session may be using.
pub fn remove(image: &Path) -> Result<(), Error> {
    let shown = image.display().to_string();
    let refuse = |why: String| Error::RemoveRefused { path: shown.clone(), why };
    let (parent_path, name) = split(image).map_err(refuse)?;
    let parent =
        fs::open(&parent_path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| refuse(format!("opening {}: {e}", parent_path.display())))?;
    let st = stat_at(&parent, &name).map_err(|e| refuse(e.to_string()))?;
    match kind(&st) {
        FileType::Directory => {}
        FileType::Symlink => {
            return Err(refuse(
                "a symbolic link: fr rm does not follow links (rm removes the link itself)".into(),
            ))
        }
        _ => return Err(refuse("not a directory (rm removes a file)".into())),
    }
    let top = fs::openat(
        &parent,
        &*name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| refuse(e.to_string()))?;
    let top_st = stat_fd(&top).map_err(|e| refuse(e.to_string()))?;
    if !same(&st, &top_st) {
        return Err(refuse("it was replaced while fr looked at it".into()));
    }
    let root = fs::statx(fs::CWD, "/", AtFlags::empty(), WANT).ok();
    if root.is_some_and(|r| same(&r, &top_st)) {
        return Err(refuse("the root directory".into()));
    }
    let homes = homes();
    if homes.iter().any(|h| same(h, &top_st)) {
        return Err(refuse("your home directory (rm -rf removes it, if you mean it)".into()));
    }
    if mount_root(&top_st) {
        return Err(refuse(
            "a mount point: fr rm does not remove what a mount holds (umount it first)".into(),
        ));
    }

    // Which of the trees fr rm removes this is, seen with the host's ids.
    let ids = mode::id_map(Path::new("/"));
    let is_image = stat_at(&top, DIR).is_ok_and(|s| kind(&s) == FileType::Directory);
    if !is_image && !subordinate(&top_st, &ids) {
        let uid = rustix::process::getuid().as_raw();
        if let Err(detail) = left_by_rm(&parent, &name, &top_st, &ids, uid) {
            return Err(refuse(format!(
                "neither an fr image (no {DIR} in it) nor what a failed rm -rf of one leaves \
                 ({detail}): fr rm removes only those; rm -rf removes the rest"
            )));
        }
    }

    raise_descriptor_limit();
    match mode::subordinates(Path::new("/")) {
        Ok(subs) => crate::idmap::enter(&subs)?,
        Err(why) => log::debug!("removing as the user alone: {why}"),
    }
    // Holding the store's lock keeps sessions out while the tree goes.
    let _lock = if is_image { lock(&top, &shown)? } else { None };

    // The owners as fr sees them where it removes (the namespace's ids).
    let top_st = match stat_fd(&top) {
        Ok(now) if same(&now, &top_st) => now,
        Ok(_) => return Err(refuse("it was replaced while fr looked at it".into())),
        Err(e) => return Err(refuse(e.to_string())),
    };
    let walk = Walk {
        top: image.to_path_buf(),
        mount: Mount::of(&top_st),
        homes,
        euid: rustix::process::geteuid().as_raw(),
    };
    walk.pass(&parent, &name, &top_st, Pass::Check).map_err(refuse)?;
    walk.pass(&parent, &name, &top_st, Pass::Remove)
        .map_err(|why| Error::Remove { path: shown.clone(), why })?;
    match stat_at(&parent, &name) {
        Ok(now) if same(&now, &top_st) => {}
        _ => {
            return Err(Error::Remove {
                path: shown,
                why: "it was replaced during the removal; what is there now is left".into(),
            })
        }
    }
    fs::unlinkat(&parent, &*name, AtFlags::REMOVEDIR)
        .map_err(|e| Error::Remove { path: shown, why: e.to_string() })
}

/// `path` as the directory it is in and its name there. `/`, `.` and `..`
/// have no name to remove.
fn split(path: &Path) -> Result<(PathBuf, CString), String> {
    let bytes = path.as_os_str().as_bytes();
    let end = bytes.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    let trimmed = &bytes[..end];
    if trimmed.is_empty() {
        return Err(if bytes.is_empty() { "an empty path" } else { "the root directory" }.into());
    }
    let (dir, name) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(0) => (&b"/"[..], &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (&b"."[..], trimmed),
    };
    if name == b"." || name == b".." {
        return Err("fr rm does not remove `.` or `..`: name the directory itself".into());
    }
    let name = CString::new(name).map_err(|_| "a NUL byte in the path".to_string())?;
    Ok((PathBuf::from(OsStr::from_bytes(dir)), name))
}

fn kind(st: &Statx) -> FileType {
    FileType::from_raw_mode(st.stx_mode.into())
}

fn dev(st: &Statx) -> (u32, u32) {
    (st.stx_dev_major, st.stx_dev_minor)
}

/// Whether two statuses are of the same inode.
fn same(a: &Statx, b: &Statx) -> bool {
    dev(a) == dev(b) && a.stx_ino == b.stx_ino
}

fn mount_root(st: &Statx) -> bool {
    st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT)
        && st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT)
}

/// `name` in `dir`, not following a last symlink (a mount on it is
/// crossed: its status is the mount's root's).
fn stat_at(dir: impl AsFd, name: impl rustix::path::Arg) -> Result<Statx, Errno> {
    fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, WANT)
}

fn stat_fd(fd: impl AsFd) -> Result<Statx, Errno> {
    fs::statx(fd, c"", AtFlags::EMPTY_PATH, WANT)
}

/// The user's home directory, as `$HOME` and `/etc/passwd` name it.
fn homes() -> Vec<Statx> {
    let uid = rustix::process::getuid().as_raw().to_string();
    let from_passwd = std::fs::read_to_string("/etc/passwd").ok().and_then(|text| {
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 5 && f[2] == uid).then(|| PathBuf::from(f[5]))
        })
    });
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .into_iter()
        .chain(from_passwd)
        .filter(|p| !p.as_os_str().is_empty())
        .filter_map(|p| fs::statx(fs::CWD, &p, AtFlags::empty(), WANT).ok())
        .collect()
}

fn within(id: u32, ranges: &[Range]) -> bool {
    ranges.iter().any(|r| r.contains(id))
}

/// Whether a file (host ids) belongs to one of the user's subordinate ids.
fn subordinate(st: &Statx, ids: &IdMap) -> bool {
    within(st.stx_uid, ids.sub_uids()) || within(st.stx_gid, ids.sub_gids())
}

/// The names in the directory `fd`, `.` and `..` left out.
fn names(fd: &OwnedFd) -> Result<Vec<CString>, Errno> {
    let mut out = Vec::new();
    for entry in fs::Dir::read_from(fd)? {
        let name = entry?.file_name().to_owned();
        if name.as_bytes() != b"." && name.as_bytes() != b".." {
            out.push(name);
        }
    }
    Ok(out)
}

/// Opens the directory `name` in `dir` for reading, without following a
/// symlink, and checks it is the inode `st` showed.
fn open_dir(dir: &OwnedFd, name: &CStr, st: &Statx) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = fs::openat(dir, name, flags, Mode::empty())?;
    if !same(&stat_fd(&fd)?, st) {
        // Replaced since it was looked at: ESTALE says so in the message.
        return Err(Errno::STALE);
    }
    Ok(fd)
}

fn rel_of(rel: &Path, name: &CStr) -> PathBuf {
    rel.join(OsStr::from_bytes(name.to_bytes()))
}

/// Whether the tree at `name` in `parent` is what a failed `rm -rf` of a
/// subuid-mode image leaves: directories of `uid`'s, none empty, holding
/// only such directories and files of subordinate ids. Read with the
/// host's ids, as the user, changing nothing; `Err` says what does not fit.
fn left_by_rm(
    parent: &OwnedFd,
    name: &CStr,
    st: &Statx,
    ids: &IdMap,
    uid: u32,
) -> Result<(), String> {
    if st.stx_uid != uid {
        return Err(format!("it belongs to uid {}", st.stx_uid));
    }
    let open = |dir: &OwnedFd, name: &CStr, st: &Statx, rel: &Path| {
        let shown = if rel.as_os_str().is_empty() { Path::new("it") } else { rel };
        let fd = open_dir(dir, name, st).map_err(|e| format!("{}: {}", shown.display(), why(e)))?;
        let list = names(&fd).map_err(|e| format!("{}: {}", shown.display(), why(e)))?;
        if list.is_empty() {
            return Err(format!("{} is empty", shown.display()));
        }
        Ok((fd, list))
    };
    let (fd, list) = open(parent, name, st, Path::new(""))?;
    let mut stack = vec![(fd, list, PathBuf::new())];
    while let Some((fd, mut list, rel)) = stack.pop() {
        let Some(name) = list.pop() else { continue };
        let entry = rel_of(&rel, &name);
        let st = stat_at(&fd, &*name).map_err(|e| format!("{}: {}", entry.display(), why(e)))?;
        let descend = !subordinate(&st, ids);
        if descend && st.stx_uid != uid {
            return Err(format!("{} belongs to uid {}", entry.display(), st.stx_uid));
        }
        if descend && kind(&st) != FileType::Directory {
            return Err(format!("{} is yours and not a directory", entry.display()));
        }
        let below = if descend { Some(open(&fd, &name, &st, &entry)?) } else { None };
        stack.push((fd, list, rel));
        if let Some((fd, list)) = below {
            stack.push((fd, list, entry));
        }
    }
    Ok(())
}

/// Takes the lock of the image whose top directory is `top`, if it has
/// one; refuses while a session holds it. Creates nothing.
fn lock(top: &OwnedFd, shown: &str) -> Result<Option<OwnedFd>, Error> {
    let store = |why: String| Error::Store { path: format!("{shown}/{DIR}"), source: why.into() };
    let dir = fs::openat(
        top,
        DIR,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| store(e.to_string()))?;
    let lock = match fs::openat(
        &dir,
        "lock",
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(lock) => lock,
        // No session ever ran here: there is nothing to wait for.
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(store(format!("lock: {e}"))),
    };
    // A session locks a regular file only (`store::ImageStore::open`).
    if fs::fstat(&lock).map_err(|e| store(format!("lock: {e}")))?.st_mode & libc::S_IFMT
        != libc::S_IFREG
    {
        return Ok(None);
    }
    match fs::flock(&lock, fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(lock)),
        Err(Errno::WOULDBLOCK) => {
            let mut holder = String::new();
            let _ = std::io::Read::read_to_string(&mut std::fs::File::from(lock), &mut holder);
            Err(Error::InUse { image: shown.to_string(), holder: holder.trim().to_string() })
        }
        Err(e) => Err(store(format!("lock: {e}"))),
    }
}

/// A deep tree needs one descriptor per level: the soft limit is raised
/// to the hard one, as far as it goes.
fn raise_descriptor_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let _ = setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, ..limit });
    }
}

/// The mount the top directory is on.
#[derive(Clone, Copy, Debug)]
struct Mount {
    /// `STATX_MNT_ID`, when the kernel gives it (5.8).
    id: Option<u64>,
    dev: (u32, u32),
}

impl Mount {
    fn of(st: &Statx) -> Mount {
        let id = (st.stx_mask & StatxFlags::MNT_ID.bits() != 0).then_some(st.stx_mnt_id);
        Mount { id, dev: dev(st) }
    }

    /// Whether `st` is on another mount than this one. Without mount ids,
    /// the device of a directory tells (a file's may be the layer's on
    /// overlayfs).
    fn crossed_by(&self, st: &Statx) -> bool {
        let other = match (self.id, Mount::of(st).id) {
            (Some(a), Some(b)) => a != b,
            _ => kind(st) == FileType::Directory && dev(st) != self.dev,
        };
        other || mount_root(st)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    /// Everything is looked at, nothing removed; modes fr must change to
    /// read a directory of the user's are put back.
    Check,
    Remove,
}

#[derive(Debug)]
struct Walk {
    top: PathBuf,
    mount: Mount,
    homes: Vec<Statx>,
    /// fr's effective uid where it walks (0 in the namespace).
    euid: u32,
}

/// One open directory of a pass.
#[derive(Debug)]
struct Level {
    fd: OwnedFd,
    /// Its name in its parent, and its path below the top.
    name: CString,
    rel: PathBuf,
    names: Vec<CString>,
    next: usize,
    /// The mode to put back when the check pass leaves it.
    restore: Option<u32>,
}

impl Drop for Level {
    fn drop(&mut self) {
        if let Some(mode) = self.restore {
            let _ = fs::fchmod(&self.fd, Mode::from_raw_mode(mode));
        }
    }
}

impl Walk {
    fn path(&self, rel: &Path) -> String {
        self.top.join(rel).display().to_string()
    }

    /// One pass over the tree at `name` in `parent`; `Err` says where and
    /// why it stopped.
    fn pass(&self, parent: &OwnedFd, name: &CStr, st: &Statx, pass: Pass) -> Result<(), String> {
        let mut stack = vec![self.enter(parent, name, st, PathBuf::new(), pass)?];
        while let Some(level) = stack.last_mut() {
            let Some(name) = level.names.get(level.next).cloned() else {
                let done = stack.pop().expect("the level just looked at");
                if let (Pass::Remove, Some(parent)) = (pass, stack.last()) {
                    fs::unlinkat(&parent.fd, &*done.name, AtFlags::REMOVEDIR)
                        .map_err(|e| format!("{}: {e}", self.path(&done.rel)))?;
                }
                continue;
            };
            level.next += 1;
            let rel = rel_of(&level.rel, &name);
            let st = stat_at(&level.fd, &*name).map_err(|e| format!("{}: {e}", self.path(&rel)))?;
            if self.mount.crossed_by(&st) {
                return Err(format!(
                    "{} is a mount point: fr rm does not cross into mounts (umount it first)",
                    self.path(&rel)
                ));
            }
            if kind(&st) != FileType::Directory {
                if pass == Pass::Remove {
                    fs::unlinkat(&level.fd, &*name, AtFlags::empty())
                        .map_err(|e| format!("{}: {e}", self.path(&rel)))?;
                }
                continue;
            }
            let child = self.enter(&level.fd, &name, &st, rel, pass)?;
            stack.push(child);
        }
        Ok(())
    }

    /// Opens the directory `name` in `parent`, checks it, makes it
    /// readable (check) or writable (remove) if it is fr's own, and lists it.
    fn enter(
        &self,
        parent: &OwnedFd,
        name: &CStr,
        st: &Statx,
        rel: PathBuf,
        pass: Pass,
    ) -> Result<Level, String> {
        let at = |e: Errno| format!("{}: {}", self.path(&rel), why(e));
        if self.homes.iter().any(|h| same(h, st)) {
            return Err(format!("{} is your home directory", self.path(&rel)));
        }
        // The check pass must read and search the directory; the removal
        // must also write it. fr changes the mode of its own directories
        // (the workload's chmod 0555 or 0); another's needs fr's rights
        // over it (in the namespace: the capabilities over the ids it maps).
        let need = if pass == Pass::Check { 0o500 } else { 0o700 };
        let ours = st.stx_uid == self.euid;
        let mode = u32::from(st.stx_mode) & 0o7777;
        let mut restore = None;
        let fd = match open_dir(parent, name, st) {
            Ok(fd) => fd,
            Err(Errno::ACCESS) if ours => {
                // chmod(2) through the descriptor's /proc link reaches
                // exactly the inode opened, wherever the name leads now.
                let path = fs::openat(
                    parent,
                    name,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(at)?;
                if !same(&stat_fd(&path).map_err(at)?, st) {
                    return Err(at(Errno::STALE));
                }
                let link = format!("/proc/self/fd/{}", path.as_raw_fd());
                fs::chmodat(fs::CWD, link, Mode::from_raw_mode(mode | need), AtFlags::empty())
                    .map_err(at)?;
                restore = (pass == Pass::Check).then_some(mode);
                match open_dir(parent, name, st) {
                    Ok(fd) => fd,
                    Err(e) => {
                        if let Some(mode) = restore {
                            let _ = fs::fchmod(&path, Mode::from_raw_mode(mode));
                        }
                        return Err(at(e));
                    }
                }
            }
            Err(e) => return Err(at(e)),
        };
        let mut level =
            Level { fd, name: name.to_owned(), rel, names: Vec::new(), next: 0, restore };
        let at = |e: Errno| format!("{}: {}", self.path(&level.rel), why(e));
        let opened = stat_fd(&level.fd).map_err(at)?;
        if !level.rel.as_os_str().is_empty() && self.mount.crossed_by(&opened) {
            return Err(format!(
                "{} is a mount point: fr rm does not cross into mounts (umount it first)",
                self.path(&level.rel)
            ));
        }
        let now = u32::from(opened.stx_mode) & 0o7777;
        if ours && now & need != need {
            fs::fchmod(&level.fd, Mode::from_raw_mode(now | need)).map_err(at)?;
            if pass == Pass::Check && level.restore.is_none() {
                level.restore = Some(now);
            }
        } else if !ours {
            let all = Access::READ_OK | Access::WRITE_OK | Access::EXEC_OK;
            if fs::accessat(&level.fd, ".", all, AtFlags::EACCESS).is_err() {
                return Err(format!(
                    "{}: fr may not remove its entries: it belongs to uid {} as fr sees it, \
                     an id fr has no rights over here (real root has)",
                    self.path(&level.rel),
                    opened.stx_uid
                ));
            }
        }
        level.names = names(&level.fd).map_err(at)?;
        Ok(level)
    }
}

/// An error of the walk in words; `ESTALE` is fr's own: a directory was
/// replaced between its parent's entry and its open.
fn why(e: Errno) -> String {
    match e {
        Errno::STALE => "it was replaced while fr walked the tree".into(),
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_a_directory_and_a_name() {
        let s = |p: &str| split(Path::new(p)).map(|(d, n)| (d, n.into_string().unwrap()));
        assert_eq!(s("img").unwrap(), (PathBuf::from("."), "img".into()));
        assert_eq!(s("a/b/img//").unwrap(), (PathBuf::from("a/b"), "img".into()));
        assert_eq!(s("/img").unwrap(), (PathBuf::from("/"), "img".into()));
        assert_eq!(s("/").unwrap_err(), "the root directory");
        assert_eq!(s("///").unwrap_err(), "the root directory");
        assert_eq!(s("").unwrap_err(), "an empty path");
        assert!(s("a/..").unwrap_err().contains("`..`"));
        assert!(s(".").unwrap_err().contains("`.`"));
        assert!(s("a/./").unwrap_err().contains("`.`"));
    }
}
