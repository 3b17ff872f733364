//! The container's file system view, set up in two steps.
//!
//! The outer process ([`crate::outer`]), in the outer user and mount
//! namespaces, makes every mount that must hold against the workload: the
//! cover over `IMAGE/.fr`, `/dev`, `/sys`, `/tmp` and the `-B` binds
//! (read-only ones included). The container's init ([`crate::init`]) then
//! runs in new user, mount and pid namespaces nested in those, where the
//! kernel has locked every mount it copied (`mount_namespaces(7)`,
//! `fs/namespace.c: lock_mnt_tree()`): fake root, which owns only the inner
//! namespaces, cannot unmount them, move them, remount them writable or
//! bind the tree beneath them elsewhere (`EINVAL`). The init mounts its
//! pid namespace's `/proc` and makes the image its root with `pivot_root`.
//!
//! Mount points inside the image are resolved with `RESOLVE_IN_ROOT` and
//! mounted through `/proc/self/fd/N`, so a symlink in the image (say
//! `dev -> /home/user`) can never redirect a mount to a host path.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{self, Mode, OFlags, ResolveFlags, StatVfsMountFlags, CWD};
use rustix::io::Errno;
use rustix::mount::{self, MountFlags, MountPropagationFlags, UnmountFlags};

use crate::init::Plan;
use crate::options::{Bind, Root};

type Result<T> = std::result::Result<T, MountError>;

/// Why the container's file system view could not be set up; it travels to
/// fr as text over the container's channel, which prints it.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// A step of the setup, and the kernel's refusal.
    #[error("{what}: {source}")]
    Step { what: String, source: Errno },
    #[error("bind source {path}: {source}")]
    BindSource { path: std::path::PathBuf, source: std::io::Error },
    #[error("bind destination {0} must not contain ..")]
    DotDot(std::path::PathBuf),
    #[error("cannot create /{0}: it has no parent")]
    NoParent(std::path::PathBuf),
}

/// Host devices the container's `/dev` gets, bound one by one.
const DEVICES: [&str; 7] = ["null", "zero", "full", "random", "urandom", "tty", "ptmx"];

fn fail(what: impl std::fmt::Display, e: Errno) -> MountError {
    MountError::Step { what: what.to_string(), source: e }
}

fn fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// The path of `p` relative to the image root.
fn relative(p: &Path) -> &Path {
    p.strip_prefix("/").unwrap_or(p)
}

/// The mount points the outer process made in the image (or on the host
/// tree), in the order made: they are removed again when the container
/// has ended ([`remove_made`]), so that a session leaves no trace of its
/// binds in the image.
///
/// In a writable image each one is also added, as it is made, to a list
/// in fr's store ([`LIST`]): a session killed before [`remove_made`]
/// (`SIGKILL` of fr takes the outer process along) leaves the list, and
/// the next session of the image removes what it names ([`sweep`]). fr
/// holds a writable image's lock alone, so a list there at a session's
/// start is a dead session's.
#[derive(Debug, Default)]
pub struct Made {
    made: Vec<(std::path::PathBuf, bool)>,
    /// The image whose store keeps the list, once [`Made::keep_list`].
    list: Option<std::path::PathBuf>,
    /// The store, opened before fr's cover hides it, until
    /// [`Made::close_list`].
    store: Option<OwnedFd>,
    /// The image's mount (`stx_mnt_id`).
    image_mount: Option<u64>,
}

/// The mount `fd` is on.
fn mount_id(fd: BorrowedFd<'_>) -> Option<u64> {
    let st = fs::statx(fd, "", fs::AtFlags::EMPTY_PATH, fs::StatxFlags::MNT_ID).ok()?;
    (st.stx_mask & fs::StatxFlags::MNT_ID.bits() != 0).then_some(st.stx_mnt_id)
}

/// The list of a writable image's mount points, in its store: for each,
/// `d` (a directory) or `f` (a file), the path from the image's root, and
/// a NUL.
const LIST: &str = "mount-points";

/// The image's store, `IMAGE/.fr`, never through a symbolic link.
fn store_dir(image: &Path) -> std::result::Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    fs::openat(CWD, image.join(crate::store::DIR), flags, Mode::empty())
}

impl Made {
    /// Keeps the list of the mount points made from now on in `image`'s
    /// store.
    fn keep_list(&mut self, image: &Path, root: BorrowedFd<'_>) {
        self.list = Some(image.to_path_buf());
        self.store = store_dir(image).ok();
        self.image_mount = mount_id(root);
    }

    /// Closes the store, before the container's init is forked: the
    /// mount points are all made.
    pub fn close_list(&mut self) {
        self.store = None;
    }

    /// Notes `rel`, just made; `at` is on the same mount (its directory,
    /// or the file). Only what is made in the image itself is listed: a
    /// mount point made on a tmpfs of the session's goes with it, and the
    /// image may have a file of its own at that path.
    fn push(&mut self, rel: &Path, dir: bool, at: BorrowedFd<'_>) {
        use std::os::unix::ffi::OsStrExt;
        self.made.push((rel.to_path_buf(), dir));
        let Some(store) = &self.store else { return };
        if self.image_mount.is_none() || mount_id(at) != self.image_mount {
            return;
        }
        let mut entry = vec![if dir { b'd' } else { b'f' }];
        entry.extend_from_slice(rel.as_os_str().as_bytes());
        entry.push(0);
        let flags = OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::NOFOLLOW;
        let written = fs::openat(store, LIST, flags | OFlags::CLOEXEC, Mode::from_raw_mode(0o600))
            .and_then(|list| rustix::io::write(&list, &entry).map(drop));
        if let Err(e) = written {
            log::debug!("noting the mount point /{} in the store: {e}", rel.display());
        }
    }
}

/// Removes what a dead session's list names (see [`Made`]), deepest
/// first, and the list: a directory only if empty, a file only if it is
/// an empty regular file, each looked up from the image's root without
/// following a symbolic link. What the user put there since stays.
fn sweep(root: BorrowedFd<'_>, image: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(store) = store_dir(image) else { return };
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let Ok(list) = fs::openat(&store, LIST, flags, Mode::empty()) else { return };
    let mut bytes = Vec::new();
    if std::io::Read::read_to_end(&mut std::fs::File::from(list), &mut bytes).is_err() {
        return;
    }
    let entries = bytes.split(|&b| b == 0).filter_map(|entry| {
        let (&kind, path) = entry.split_first()?;
        let rel = Path::new(std::ffi::OsStr::from_bytes(path));
        let plain = rel.is_relative()
            && rel.components().all(|c| matches!(c, Component::Normal(_)))
            && rel.file_name().is_some();
        (plain && (kind == b'd' || kind == b'f')).then_some((rel, kind == b'd'))
    });
    let entries: Vec<(&Path, bool)> = entries.collect();
    for (rel, dir) in entries.into_iter().rev() {
        let Some(parent) = made_parent(root, rel) else { continue };
        let name = rel.file_name().expect("checked above");
        if !dir {
            let empty_file = fs::statx(
                &parent,
                name,
                fs::AtFlags::SYMLINK_NOFOLLOW,
                fs::StatxFlags::BASIC_STATS,
            )
            .is_ok_and(|st| {
                u32::from(st.stx_mode) & libc::S_IFMT == libc::S_IFREG && st.stx_size == 0
            });
            if !empty_file {
                continue;
            }
        }
        let flags = if dir { fs::AtFlags::REMOVEDIR } else { fs::AtFlags::empty() };
        match fs::unlinkat(&parent, name, flags) {
            Ok(()) => log::debug!("removed /{}, a killed session's mount point", rel.display()),
            Err(e) => {
                log::debug!("leaving /{}, a killed session's mount point: {e}", rel.display())
            }
        }
    }
    if let Err(e) = fs::unlinkat(&store, LIST, fs::AtFlags::empty()) {
        log::warn!("removing {}: {e}", image.join(crate::store::DIR).join(LIST).display());
    }
}

/// The directory `rel` is in, looked up from `root` without following a
/// symbolic link (the workload may have renamed a parent and left a link).
fn made_parent(root: BorrowedFd<'_>, rel: &Path) -> Option<OwnedFd> {
    let parent = rel.parent()?;
    let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    fs::openat2(root, parent, flags, Mode::empty(), resolve).ok()
}

/// Opens `rel` inside `root` as `O_PATH`, creating missing directories
/// (mode 0755, owned by the user) on the way, as container runtimes do for
/// mount points; each one made is noted in `made`.
fn ensure_dir(root: BorrowedFd<'_>, rel: &Path, made: &mut Made) -> Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    match fs::openat2(root, rel, flags, Mode::empty(), ResolveFlags::IN_ROOT) {
        Err(Errno::NOENT) => {}
        done => return done.map_err(|e| fail(format!("opening /{}", rel.display()), e)),
    }
    let (parent, name) = match (rel.parent(), rel.file_name()) {
        (Some(parent), Some(name)) => (ensure_dir(root, parent, made)?, name),
        _ => return Err(MountError::NoParent(rel.to_path_buf())),
    };
    match fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755)) {
        Ok(()) => made.push(rel, true, parent.as_fd()),
        Err(Errno::EXIST) => {}
        Err(e) => return Err(fail(format!("creating mount point /{}", rel.display()), e)),
    }
    fs::openat2(root, rel, flags, Mode::empty(), ResolveFlags::IN_ROOT)
        .map_err(|e| fail(format!("opening /{}", rel.display()), e))
}

/// Opens the file `rel` inside `root`, creating it empty if missing (and
/// noting it in `made`).
fn ensure_file(root: BorrowedFd<'_>, rel: &Path, made: &mut Made) -> Result<OwnedFd> {
    // openat2(2): a mode without O_CREAT or O_TMPFILE is EINVAL.
    let open = |flags, mode| fs::openat2(root, rel, flags, mode, ResolveFlags::IN_ROOT);
    let path = OFlags::PATH | OFlags::CLOEXEC;
    if let Ok(fd) = open(path, Mode::empty()) {
        return Ok(fd);
    }
    if let Some(parent) = rel.parent() {
        ensure_dir(root, parent, made)?;
    }
    let file = open(
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .map_err(|e| fail(format!("creating /{}", rel.display()), e))?;
    made.push(rel, false, file.as_fd());
    drop(file);
    open(path, Mode::empty()).map_err(|e| fail(format!("opening /{}", rel.display()), e))
}

fn bind(src: &Path, target: BorrowedFd<'_>, what: &str) -> Result<()> {
    mount::mount_bind_recursive(src, fd_path(target))
        .map_err(|e| fail(format!("binding {} on {what}", src.display()), e))
}

/// Makes a bind mount read-only, keeping the flags of the mount it came
/// from: in a user namespace those are locked and clearing one is `EPERM`.
fn remount_read_only(target: &str) -> Result<()> {
    let vfs = fs::statvfs(target).map_err(|e| fail(format!("statvfs {target}"), e))?;
    let mut flags = MountFlags::BIND | MountFlags::RDONLY;
    for (st, ms) in [
        (StatVfsMountFlags::NOSUID, MountFlags::NOSUID),
        (StatVfsMountFlags::NODEV, MountFlags::NODEV),
        (StatVfsMountFlags::NOEXEC, MountFlags::NOEXEC),
        (StatVfsMountFlags::NOATIME, MountFlags::NOATIME),
        (StatVfsMountFlags::NODIRATIME, MountFlags::NODIRATIME),
        (StatVfsMountFlags::RELATIME, MountFlags::RELATIME),
    ] {
        if vfs.f_flag.contains(st) {
            flags |= ms;
        }
    }
    mount::mount_remount(target, flags, "")
        .map_err(|e| fail(format!("making {target} read-only"), e))
}

fn mount_fs(
    fstype: &str,
    target: BorrowedFd<'_>,
    flags: MountFlags,
    data: &str,
    what: &str,
) -> Result<()> {
    let data = CString::new(data).expect("mount options have no NUL");
    mount::mount(fstype, fd_path(target), fstype, flags, Some(data.as_c_str()))
        .map_err(|e| fail(format!("mounting {fstype} on {what}"), e))
}

/// Stops mount events from leaking between the container and the host.
fn make_private() -> Result<()> {
    mount::mount_change("/", MountPropagationFlags::REC | MountPropagationFlags::PRIVATE)
        .map_err(|e| fail("making / private", e))
}

fn check_bind_source(b: &Bind) -> Result<bool> {
    let meta = std::fs::metadata(&b.src)
        .map_err(|e| MountError::BindSource { path: b.src.clone(), source: e })?;
    Ok(meta.is_dir())
}

/// Applies `-B` binds under `root`.
fn apply_binds(root: BorrowedFd<'_>, binds: &[Bind], made: &mut Made) -> Result<()> {
    for b in binds {
        let rel = relative(&b.dst);
        if rel.components().any(|c| c == Component::ParentDir) {
            return Err(MountError::DotDot(b.dst.clone()));
        }
        let target = if check_bind_source(b)? {
            ensure_dir(root, rel, made)?
        } else {
            ensure_file(root, rel, made)?
        };
        bind(&b.src, target.as_fd(), &b.dst.display().to_string())?;
        if b.read_only {
            // The open fd still names the covered file; look the path up again.
            let mounted = fs::openat2(
                root,
                rel,
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT,
            )
            .map_err(|e| fail(format!("opening {}", b.dst.display()), e))?;
            remount_read_only(&fd_path(mounted.as_fd()))?;
        }
    }
    Ok(())
}

fn reopen(root: BorrowedFd<'_>, rel: &str) -> Result<OwnedFd> {
    fs::openat2(
        root,
        rel,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT,
    )
    .map_err(|e| fail(format!("opening /{rel}"), e))
}

/// A `/dev` of its own: a tmpfs with the host's harmless devices bound in,
/// the host's `/dev/pts` (so the controlling tty keeps its name), a
/// `/dev/shm` and the usual links into `/proc/self/fd`.
fn make_dev(root: BorrowedFd<'_>, made: &mut Made) -> Result<()> {
    let dev = ensure_dir(root, Path::new("dev"), made)?;
    mount_fs("tmpfs", dev.as_fd(), MountFlags::NOSUID, "mode=755", "/dev")?;
    let dev = reopen(root, "dev")?;
    for name in DEVICES {
        let host = Path::new("/dev").join(name);
        if !host.exists() {
            continue;
        }
        let node = fs::openat(
            &dev,
            name,
            OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        )
        .map_err(|e| fail(format!("creating /dev/{name}"), e))?;
        drop(node);
        let node = fs::openat(&dev, name, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| fail(format!("opening /dev/{name}"), e))?;
        bind(&host, node.as_fd(), &format!("/dev/{name}"))?;
    }
    for dir in ["pts", "shm"] {
        fs::mkdirat(&dev, dir, Mode::from_raw_mode(0o755))
            .map_err(|e| fail(format!("creating /dev/{dir}"), e))?;
    }
    if Path::new("/dev/pts/ptmx").exists() {
        bind(Path::new("/dev/pts"), reopen(root, "dev/pts")?.as_fd(), "/dev/pts")?;
    }
    mount_fs(
        "tmpfs",
        reopen(root, "dev/shm")?.as_fd(),
        MountFlags::NOSUID | MountFlags::NODEV,
        "mode=1777",
        "/dev/shm",
    )?;
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        fs::symlinkat(target, &dev, link).map_err(|e| fail(format!("linking /dev/{link}"), e))?;
    }
    Ok(())
}

/// The outer half of an image's setup (in the outer mount namespace, see
/// the module doc): the root as the plan wants it (read-only, under a
/// tmpfs overlay, or both for a shared image), `/sys`, `/dev`, `/tmp`, the cover over fr's store, the
/// container's own empty directories, the binds (and the store covered
/// wherever a bind reaches it), and the network's `/etc/resolv.conf`,
/// mounted on the image's own directories. The image does not become the
/// root here; the init does that in its namespaces.
pub fn outer_image(image: &Path, plan: &Plan, made: &mut Made) -> Result<()> {
    make_private()?;
    match plan.root {
        Root::Writable => {}
        // A mount of its own, made read-only last (mount points are made
        // in the image until then).
        Root::ReadOnly => mount::mount_bind_recursive(image, image)
            .map_err(|e| fail(format!("binding {} on itself", image.display()), e))?,
        Root::Tmpfs | Root::Shared => overlay(image)?,
    }
    let root =
        fs::openat(CWD, image, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| fail(format!("opening {}", image.display()), e))?;
    let root = root.as_fd();
    if plan.root == Root::Writable {
        sweep(root, image);
        made.keep_list(image, root);
    }
    bind(Path::new("/sys"), ensure_dir(root, Path::new("sys"), made)?.as_fd(), "/sys")?;
    make_dev(root, made)?;
    mount_fs(
        "tmpfs",
        ensure_dir(root, Path::new("tmp"), made)?.as_fd(),
        MountFlags::NOSUID | MountFlags::NODEV,
        "mode=1777",
        "/tmp",
    )?;
    // fr's metadata store is not the workload's to see, change or remove:
    // an empty read-only cover, locked in the init's namespaces.
    if let Ok(store) = reopen(root, crate::store::DIR) {
        cover(store.as_fd(), "/.fr")?;
    }
    for dir in &plan.tmpfs {
        let rel = relative(dir);
        if rel.components().any(|c| c == Component::ParentDir) {
            return Err(MountError::DotDot(dir.clone()));
        }
        let target = ensure_dir(root, rel, made)?;
        mount_fs(
            "tmpfs",
            target.as_fd(),
            MountFlags::NOSUID | MountFlags::NODEV,
            "mode=0755",
            &dir.display().to_string(),
        )?;
    }
    apply_binds(root, &plan.binds, made)?;
    cover_hidden(root, &plan.binds, &plan.hide)?;
    if let Some(text) = &plan.resolv {
        resolv_conf(root, text, made)?;
    }
    // The init mounts /proc: its mount point is made here, noted with the
    // others, so that an image without one (a home directory given as
    // IMAGE) is left without one.
    ensure_dir(root, Path::new("proc"), made)?;
    if matches!(plan.root, Root::ReadOnly | Root::Shared) {
        remount_read_only(&fd_path(reopen(root, ".")?.as_fd()))?;
    }
    Ok(())
}

/// The empty read-only tmpfs laid over fr's own directories.
fn cover(target: BorrowedFd<'_>, what: &str) -> Result<()> {
    let flags = MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    mount_fs("tmpfs", target, flags, "mode=0700,size=4k", what)
}

/// Covers each of `hidden` (host directories: the image's store, the
/// instances' state) wherever a bind makes it visible: the caller's home
/// or working directory bound by default may hold the image itself.
fn cover_hidden(root: BorrowedFd<'_>, binds: &[Bind], hidden: &[std::path::PathBuf]) -> Result<()> {
    for b in binds {
        let Ok(src) = b.src.canonicalize() else { continue };
        for h in hidden {
            let Ok(rel) = h.strip_prefix(&src) else { continue };
            let inside = relative(&b.dst).join(rel);
            let at = fs::openat2(
                root,
                &inside,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT,
            );
            if let Ok(at) = at {
                log::debug!("covering {} at /{}", h.display(), inside.display());
                cover(at.as_fd(), &format!("/{}", inside.display()))?;
            }
        }
    }
    Ok(())
}

/// The image under a tmpfs it is laid over (`--writable-tmpfs`): an
/// overlay on the image's own path, its upper and work directories on a
/// tmpfs mounted there first, all reached through descriptors. The overlay
/// keeps its own attributes in `user.*` xattrs (`userxattr`, as a user
/// namespace requires).
fn overlay(image: &Path) -> Result<()> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let lower = fs::openat(CWD, image, flags, Mode::empty())
        .map_err(|e| fail(format!("opening {}", image.display()), e))?;
    let layer = fs::openat(CWD, image, flags, Mode::empty())
        .map_err(|e| fail(format!("opening {}", image.display()), e))?;
    mount_fs("tmpfs", layer.as_fd(), MountFlags::NOSUID, "mode=0755", "the writable layer")?;
    let tmp =
        fs::openat(CWD, image, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| fail(format!("opening the layer on {}", image.display()), e))?;
    let mut dirs = Vec::new();
    for name in ["upper", "work"] {
        fs::mkdirat(&tmp, name, Mode::from_raw_mode(0o755))
            .map_err(|e| fail(format!("creating the layer's {name} directory"), e))?;
        dirs.push(
            fs::openat(&tmp, name, flags, Mode::empty())
                .map_err(|e| fail(format!("opening the layer's {name} directory"), e))?,
        );
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        fd_path(lower.as_fd()),
        fd_path(dirs[0].as_fd()),
        fd_path(dirs[1].as_fd())
    );
    let target = fs::openat(CWD, image, flags, Mode::empty())
        .map_err(|e| fail(format!("opening {}", image.display()), e))?;
    mount_fs("overlay", target.as_fd(), MountFlags::empty(), &data, "the image (--writable-tmpfs)")
        .map_err(|e| match e {
            MountError::Step { source, .. } => fail(
                format!(
                    "laying a tmpfs over {} (overlayfs in a user namespace, Linux 5.11+, with \
                     user.* xattrs on tmpfs, 6.6+)",
                    image.display()
                ),
                source,
            ),
            e => e,
        })
}

/// The network's resolver file: written on the container's `/tmp`,
/// bound on the image's `/etc/resolv.conf` (made if missing), removed
/// from `/tmp` again. A symbolic link there that leads nowhere is left
/// alone: the image's own resolver is then what it has.
fn resolv_conf(root: BorrowedFd<'_>, text: &str, made: &mut Made) -> Result<()> {
    let name = ".fr-resolv.conf";
    let tmp = reopen(root, "tmp")?;
    let tmp =
        fs::openat(&tmp, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| fail("opening /tmp", e))?;
    let file = fs::openat(
        &tmp,
        name,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .map_err(|e| fail("writing the resolver file", e))?;
    rustix::io::write(&file, text.as_bytes()).map_err(|e| fail("writing the resolver file", e))?;
    drop(file);
    let source = fs::openat(&tmp, name, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| fail("opening the resolver file", e))?;
    let target = match ensure_file(root, Path::new("etc/resolv.conf"), made) {
        Ok(t) => Some(t),
        Err(e) => {
            log::warn!(
                "the network's /etc/resolv.conf cannot be put in the image ({e}): it keeps its own"
            );
            None
        }
    };
    if let Some(target) = target {
        mount::mount_bind(fd_path(source.as_fd()), fd_path(target.as_fd()))
            .map_err(|e| fail("binding the network's /etc/resolv.conf", e))?;
    }
    let _ = fs::unlinkat(&tmp, name, fs::AtFlags::empty());
    Ok(())
}

/// The inner half, in the init's own mount and pid namespaces: the image
/// bound on itself (the copy is the init's own mount, which `pivot_root`
/// needs: it refuses a locked one), this pid namespace's `/proc`, and the
/// image as the root with the host's tree detached.
pub fn inner_image(image: &Path) -> Result<()> {
    mount::mount_bind_recursive(image, image)
        .map_err(|e| fail(format!("binding {} on itself", image.display()), e))?;
    let root =
        fs::openat(CWD, image, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| fail(format!("opening {}", image.display()), e))?;
    let root = root.as_fd();
    // A new proc is allowed while the host's is still in the tree, fully
    // visible (fs/namespace.c: mount_too_revealing()).
    let nosuid_nodev_noexec = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    mount_fs(
        "proc",
        ensure_dir(root, Path::new("proc"), &mut Made::default())?.as_fd(),
        nosuid_nodev_noexec,
        "",
        "/proc",
    )?;
    // pivot_root(".", ".") stacks the old root on the new one; detaching it
    // leaves the image alone (pivot_root(2), "new_root and put_old may be
    // the same directory"). The old root is the namespace's own root
    // mount, never locked, so it may go, and the host's mounts with it.
    rustix::process::fchdir(root).map_err(|e| fail("entering the image", e))?;
    rustix::process::pivot_root(".", ".").map_err(|e| fail("pivot_root into the image", e))?;
    mount::unmount(".", UnmountFlags::DETACH).map_err(|e| fail("detaching the old root", e))?;
    rustix::process::chdir("/").map_err(|e| fail("chdir /", e))
}

/// The outer half on the host tree: the binds.
pub fn outer_host(plan: &Plan, made: &mut Made) -> Result<()> {
    make_private()?;
    let root =
        fs::openat(CWD, "/", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| fail("opening /", e))?;
    apply_binds(root.as_fd(), &plan.binds, made)
}

/// Removes the mount points `made` under `root` (the image, or `/` for the
/// host tree) once the container has ended, the last made first: each is
/// unmounted here (in the outer mount namespace; the inner one is gone
/// with the init, and `rmdir` would detach its copies anyway,
/// `fs/namei.c: vfs_rmdir()`), then removed if it is still empty. Paths are
/// resolved without following a symbolic link, so that a workload that
/// renamed a parent away and put a link in its place leads fr nowhere. The
/// image's own mount (read-only, or the overlay) is detached first, so
/// that the directories beneath it can be reached.
pub fn remove_made(root: &Path, plan: &Plan, made: &Made) {
    // A layer's mount points are the layer's, gone with it.
    if made.made.is_empty() || matches!(plan.root, Root::Tmpfs | Root::Shared) {
        return;
    }
    if plan.image.is_some() && plan.root != Root::Writable {
        let _ = mount::unmount(root, UnmountFlags::DETACH);
    }
    let Ok(root_fd) =
        fs::openat(CWD, root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
    else {
        return;
    };
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    for (rel, dir) in made.made.iter().rev() {
        let Some(name) = rel.file_name() else { continue };
        loop {
            let Ok(at) =
                fs::openat2(&root_fd, rel, OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), resolve)
            else {
                break;
            };
            if mount::unmount(fd_path(at.as_fd()), UnmountFlags::DETACH).is_err() {
                break;
            }
        }
        let Some(parent) = made_parent(root_fd.as_fd(), rel) else { continue };
        let flags = if *dir { fs::AtFlags::REMOVEDIR } else { fs::AtFlags::empty() };
        if let Err(e) = fs::unlinkat(&parent, name, flags) {
            log::debug!("leaving the mount point /{}: {e}", rel.display());
        }
    }
    // The list goes too; fr's cover over the store is this namespace's.
    if let Some(image) = &made.list {
        let _ = mount::unmount(image.join(crate::store::DIR), UnmountFlags::DETACH);
        if let Ok(store) = store_dir(image) {
            let _ = fs::unlinkat(&store, LIST, fs::AtFlags::empty());
        }
    }
}

/// The inner half on the host tree: a `/proc` for the new pid namespace
/// over the host's.
pub fn inner_host() -> Result<()> {
    let root =
        fs::openat(CWD, "/", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| fail("opening /", e))?;
    let proc_dir = reopen(root.as_fd(), "proc")?;
    let flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    if let Err(why) = mount_fs("proc", proc_dir.as_fd(), flags, "", "/proc") {
        // Without it /proc still works (pids are seen from the host's pid
        // namespace), only process listings show the host's processes.
        log::debug!("keeping the host's /proc: {why}");
    }
    Ok(())
}
