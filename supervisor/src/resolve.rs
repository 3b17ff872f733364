//! Finding the file a target's path or fd names, the way the target's
//! kernel lookup would: from its root, its cwd or one of its fds, never from
//! the supervisor's own root.
//!
//! The fast path is one `openat2(2)`: an absolute path from the target's
//! root with `RESOLVE_IN_ROOT` (so `..` stops at the root and absolute
//! symlinks stay inside it), a relative one from the base directory with
//! `RESOLVE_BENEATH`. When the relative path leaves its base (`..` above it,
//! an absolute symlink), `openat2` says `EXDEV` and [`walk`] resolves it one
//! component at a time with the target's root as the limit. Paths through
//! `/proc/self` or `/proc/thread-self` take the walk too: those links name
//! the reader, and the reader must be the target, not the supervisor.
//!
//! Everything returned is a descriptor of the file itself: an `O_PATH` one,
//! or for a target's descriptor its duplicate, which shares the target's
//! open file, so that nothing here or in the handlers reads, seeks or
//! changes the flags of what it is given.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self, AtFlags, Mode, OFlags, ResolveFlags, StatxFlags, CWD};
use rustix::io::Errno;

use crate::request::Request;

/// `AT_FDCWD`, `AT_SYMLINK_NOFOLLOW` and `AT_EMPTY_PATH` from `<linux/fcntl.h>`.
pub use crate::linux::{AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW};
/// `fs/namei.c: MAXSYMLINKS`.
const MAX_SYMLINKS: u32 = 40;
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

const PATH_FLAGS: OFlags = OFlags::PATH.union(OFlags::CLOEXEC);

/// Opens `/proc/<tid>/<what>` as `O_PATH`, following its magic link.
fn proc_open(req: &Request<'_>, what: &str) -> Result<OwnedFd, Errno> {
    fs::openat(CWD, format!("/proc/{}/{what}", req.tid), PATH_FLAGS, Mode::empty())
}

/// The target's root directory.
pub fn root(req: &Request<'_>) -> Result<OwnedFd, Errno> {
    proc_open(req, "root")
}

/// The target's file descriptor `fd`, or `EBADF` as the kernel would say:
/// its duplicate ([`Request::dup`]), or where none can be had an `O_PATH`
/// open of `/proc/<tid>/fd/N`.
pub fn fd(req: &Request<'_>, fd: i32) -> Result<OwnedFd, Errno> {
    if fd < 0 {
        return Err(Errno::BADF);
    }
    let file = match req.dup(fd) {
        Err(Errno::NOSYS) => proc_open(req, &format!("fd/{fd}")).map_err(|e| match e {
            Errno::NOENT => Errno::BADF,
            e => e,
        }),
        done => done,
    };
    req.check_valid()?;
    file
}

/// The directory a relative path starts from: the cwd for `AT_FDCWD`,
/// otherwise the target's descriptor `dirfd`.
fn base(req: &Request<'_>, dirfd: i32) -> Result<OwnedFd, Errno> {
    if dirfd == AT_FDCWD {
        let cwd = proc_open(req, "cwd");
        req.check_valid()?;
        cwd
    } else {
        fd(req, dirfd)
    }
}

/// How a lookup treats its last component and an empty path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookupFlags {
    /// Follow a symlink in the last component (`!AT_SYMLINK_NOFOLLOW`).
    pub follow: bool,
    /// An empty path names `dirfd` itself (`AT_EMPTY_PATH`).
    pub empty_path: bool,
}

impl LookupFlags {
    /// The lookup an `*at()` call's `AT_SYMLINK_NOFOLLOW` and
    /// `AT_EMPTY_PATH` flags ask for.
    pub fn from_at(flags: i32) -> Self {
        Self { follow: flags & AT_SYMLINK_NOFOLLOW == 0, empty_path: flags & AT_EMPTY_PATH != 0 }
    }
}

/// Whether the caller may search a directory (`MAY_EXEC` by its fake
/// credentials); `None` when it may search every one (root).
pub type Search<'a> = Option<&'a dyn Fn(BorrowedFd<'_>) -> bool>;

/// Resolves `path` relative to the target's `dirfd` as `*at()` calls do.
/// With a `search` check every directory passed through must allow it
/// (`EACCES`), as `fs/namei.c: may_lookup()` asks.
pub fn lookup(
    req: &Request<'_>,
    dirfd: i32,
    path: &[u8],
    how: LookupFlags,
    search: Search<'_>,
) -> Result<OwnedFd, Errno> {
    if path.is_empty() {
        return if how.empty_path { base(req, dirfd) } else { Err(Errno::NOENT) };
    }
    let oflags = if how.follow { PATH_FLAGS } else { PATH_FLAGS | OFlags::NOFOLLOW };
    let fast = !names_proc_self(path) && search.is_none();
    if path[0] == b'/' {
        let root = root(req);
        req.check_valid()?;
        let root = root?;
        if fast {
            match fs::openat2(&root, path, oflags, Mode::empty(), ResolveFlags::IN_ROOT) {
                Err(Errno::XDEV) | Err(Errno::AGAIN) => {}
                done => {
                    if let Some(done) = outside_procfs(done) {
                        return done;
                    }
                }
            }
        }
        return walk(req, root.as_fd(), None, path, how.follow, search);
    }
    let dir = base(req, dirfd)?;
    if fast {
        match fs::openat2(&dir, path, oflags, Mode::empty(), ResolveFlags::BENEATH) {
            Err(Errno::XDEV) | Err(Errno::AGAIN) => {}
            done => {
                if let Some(done) = outside_procfs(done) {
                    return done;
                }
            }
        }
    }
    let root = root(req);
    req.check_valid()?;
    walk(req, root?.as_fd(), Some(dir), path, how.follow, search)
}

/// The directory and the name a creating call (`mknodat`, `mkdirat`, ...)
/// makes its file in, as `fs/namei.c: filename_create()` finds them: the
/// parent is looked up following symlinks; a last component of `.` or `..`
/// is `EEXIST`; a trailing slash is `EEXIST` if the name exists and
/// `ENOENT` if not (only `mkdir` accepts one: see `dir_ok`).
pub fn parent(
    req: &Request<'_>,
    dirfd: i32,
    path: &[u8],
    dir_ok: bool,
    search: Search<'_>,
) -> Result<(OwnedFd, Vec<u8>), Errno> {
    let trimmed = {
        let end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
        &path[..end]
    };
    if trimmed.is_empty() {
        // "" is ENOENT; "/" (or "///") names the root, which exists.
        return Err(if path.is_empty() { Errno::NOENT } else { Errno::EXIST });
    }
    let (dir, name) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (if i == 0 { &b"/"[..] } else { &trimmed[..i] }, &trimmed[i + 1..]),
        None => (&b"."[..], trimmed),
    };
    let dir = lookup(req, dirfd, dir, LookupFlags { follow: true, empty_path: false }, search)?;
    // A file that is no directory is ENOTDIR before any permission
    // (`fs/namei.c: link_path_walk()` checks `d_can_lookup()` first).
    if file_type(dir.as_fd())? != fr_emulator::attrs::S_IFDIR {
        return Err(Errno::NOTDIR);
    }
    if search.is_some_and(|may| !may(dir.as_fd())) {
        return Err(Errno::ACCESS);
    }
    if name == b"." || name == b".." {
        return Err(Errno::EXIST);
    }
    if trimmed.len() != path.len() && !dir_ok {
        let exists = fs::statx(&dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE).is_ok();
        return Err(if exists { Errno::EXIST } else { Errno::NOENT });
    }
    Ok((dir, name.to_vec()))
}

/// Whether `path` may lead into procfs, where `self` names the reader:
/// through `/proc` itself or the usual links into it (`/dev/fd`,
/// `/dev/stdin`, `/etc/mtab`). Such paths take the walk, which names the
/// target instead of the supervisor.
pub(crate) fn names_proc_self(path: &[u8]) -> bool {
    path.split(|&b| b == b'/').any(|c| {
        matches!(
            c,
            b"self" | b"thread-self" | b"proc" | b"fd" | b"stdin" | b"stdout" | b"stderr" | b"mtab"
        )
    })
}

/// A fast-path result, unless it landed in procfs, where a `self` link on
/// the way may have named the supervisor: then `None`, for the walk.
fn outside_procfs(done: Result<OwnedFd, Errno>) -> Option<Result<OwnedFd, Errno>> {
    match &done {
        Ok(fd) if on_procfs(fd.as_fd()) => None,
        _ => Some(done),
    }
}

/// Pushes the components of `path` to the front of `todo`. A trailing slash
/// becomes a final `.`, which makes the kernel's two rules for it hold: the
/// name before it is followed if it is a symlink, and must be a directory.
fn push_front(todo: &mut VecDeque<Vec<u8>>, path: &[u8]) {
    let mut comps: Vec<Vec<u8>> =
        path.split(|&b| b == b'/').filter(|c| !c.is_empty()).map(<[u8]>::to_vec).collect();
    if path.ends_with(b"/") && !comps.is_empty() {
        comps.push(b".".to_vec());
    }
    for c in comps.into_iter().rev() {
        todo.push_front(c);
    }
}

fn identity(fd: BorrowedFd<'_>) -> Result<(u32, u32, u64, u64), Errno> {
    let st = fs::statx(fd, "", AtFlags::EMPTY_PATH, StatxFlags::INO | StatxFlags::MNT_ID)?;
    Ok((st.stx_dev_major, st.stx_dev_minor, st.stx_ino, st.stx_mnt_id))
}

fn file_type(fd: BorrowedFd<'_>) -> Result<u32, Errno> {
    let st = fs::statx(fd, "", AtFlags::EMPTY_PATH, StatxFlags::TYPE)?;
    Ok(u32::from(st.stx_mode) & fr_emulator::attrs::S_IFMT)
}

fn on_procfs(fd: BorrowedFd<'_>) -> bool {
    fs::fstatfs(fd).is_ok_and(|s| s.f_type == PROC_SUPER_MAGIC)
}

/// What `self` or `thread-self` in a procfs directory names for the target:
/// its ids in its innermost pid namespace, from `/proc/<tid>/status`.
fn proc_self_name(req: &Request<'_>, comp: &[u8]) -> Result<Vec<u8>, Errno> {
    let status = crate::procfs::Status::read(req.tid).ok_or(Errno::NOENT)?;
    req.check_valid()?;
    let tgid = status.last("NStgid:").ok_or(Errno::NOENT)?;
    if comp == b"self" {
        Ok(tgid.to_string().into_bytes())
    } else {
        Ok(format!("{tgid}/task/{}", status.last("NSpid:").ok_or(Errno::NOENT)?).into_bytes())
    }
}

/// The kernel's path walk, done in the supervisor with `root` as the limit.
fn walk(
    req: &Request<'_>,
    root: BorrowedFd<'_>,
    start: Option<OwnedFd>,
    path: &[u8],
    follow: bool,
    search: Search<'_>,
) -> Result<OwnedFd, Errno> {
    let root_id = identity(root)?;
    let mut cur = match start {
        Some(dir) if !path.starts_with(b"/") => dir,
        _ => fs::openat(root, ".", PATH_FLAGS, Mode::empty())?,
    };
    let mut todo = VecDeque::new();
    push_front(&mut todo, path);
    let mut links = 0;
    while let Some(comp) = todo.pop_front() {
        let last = todo.is_empty();
        if let Some(may) = search {
            // `path_init()` and `link_path_walk()` refuse a file that is no
            // directory (ENOTDIR) before `may_lookup()` asks for search
            // permission; without a check, the next open says ENOTDIR.
            if file_type(cur.as_fd())? != fr_emulator::attrs::S_IFDIR {
                return Err(Errno::NOTDIR);
            }
            if !may(cur.as_fd()) {
                return Err(Errno::ACCESS);
            }
        }
        match comp.as_slice() {
            b"." => {
                cur = fs::openat(&cur, ".", PATH_FLAGS | OFlags::DIRECTORY, Mode::empty())?;
            }
            b".." => {
                if identity(cur.as_fd())? != root_id {
                    cur = fs::openat(&cur, "..", PATH_FLAGS | OFlags::DIRECTORY, Mode::empty())?;
                }
            }
            name => {
                let procfs = on_procfs(cur.as_fd());
                if procfs && (name == b"self" || name == b"thread-self") {
                    let real = proc_self_name(req, name)?;
                    push_front(&mut todo, &real);
                    continue;
                }
                let next = fs::openat(&cur, name, PATH_FLAGS | OFlags::NOFOLLOW, Mode::empty())?;
                let kind = file_type(next.as_fd())?;
                if kind == fr_emulator::attrs::S_IFLNK && (!last || follow) {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(Errno::LOOP);
                    }
                    let target = fs::readlinkat(&next, "", Vec::new())?;
                    let target = target.as_bytes();
                    // A magic link (fd/N, cwd, exe, ns/*) reads as an
                    // absolute path or an anonymous `type:[inode]`; the
                    // kernel jumps to the file it names, and so does this
                    // open. Other procfs links (`mounts -> self/mounts`)
                    // are ordinary ones, resolved below for the target.
                    let anonymous = target.windows(2).any(|w| w == b":[");
                    if procfs && (target.starts_with(b"/") || anonymous) {
                        cur = fs::openat(&cur, name, PATH_FLAGS, Mode::empty())?;
                        continue;
                    }
                    if target.starts_with(b"/") {
                        cur = fs::openat(root, ".", PATH_FLAGS, Mode::empty())?;
                    }
                    push_front(&mut todo, target);
                    continue;
                }
                if !last && kind != fr_emulator::attrs::S_IFDIR {
                    return Err(Errno::NOTDIR);
                }
                cur = next;
            }
        }
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailing_slash_becomes_a_final_dot() {
        let mut todo = VecDeque::new();
        push_front(&mut todo, b"a//b/");
        assert_eq!(todo, [b"a".to_vec(), b"b".to_vec(), b".".to_vec()]);
        let mut todo = VecDeque::from([b"z".to_vec()]);
        push_front(&mut todo, b"/x/./y");
        assert_eq!(todo, [b"x".to_vec(), b".".to_vec(), b"y".to_vec(), b"z".to_vec()]);
    }

    #[test]
    fn proc_self_is_spotted_in_any_component() {
        assert!(names_proc_self(b"/proc/self/fd/3"));
        assert!(names_proc_self(b"thread-self/comm"));
        assert!(!names_proc_self(b"/usr/lib/myself"));
    }
}
