//! `fr exec`: chooses the mode, forks the container (or, without a user
//! namespace, the workload), writes its id maps, receives the seccomp
//! listener, starts the supervisor, forwards signals and returns the
//! command's exit status.
//!
//! Hazard: the forks happen before any thread exists (the supervisor's
//! workers start only after the listener arrives), so the children's
//! copies of memory hold no lock.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use fr_emulator::IdMap;
use fr_supervisor::{Config, Namespace, Supervisor};
use rustix::io::Errno;
use rustix::process::{Pid, WaitOptions};

use crate::channel::{self, Message};
use crate::error::Error;
use crate::init::{self, Plan};
use crate::mode::{self, Mode};
use crate::options::{ExecOptions, Root, Userns};
use crate::store::{ImageStore, StateFile};
use crate::sys::{self, Forked};
use crate::{idmap, job, net, outer, workload};

/// The PATH a workload in an image starts with, as container runtimes set it.
const IMAGE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub(crate) fn check_image(image: &Path) -> Result<PathBuf, Error> {
    let shown = image.display().to_string();
    let path = image.canonicalize().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => crate::error::no_image(image),
        _ => Error::Image { path: shown.clone(), why: e.to_string() },
    })?;
    if !path.is_dir() {
        return Err(crate::error::not_a_directory(image));
    }
    Ok(path)
}

/// The command, or a shell when none was given ([`workload::shell`]).
pub(crate) fn command(opts: &ExecOptions) -> Result<workload::Command, Error> {
    let image = opts.image.is_some();
    let (shell, fallback) = workload::shell(image);
    let argv = opts
        .command
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Error::Setup("an argument of the command contains a NUL byte".into()))?;
    let direct = opts
        .fallback
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Error::Setup("an argument of the command contains a NUL byte".into()))?;
    let direct = (!direct.is_empty()).then_some(direct);
    let fallback_is_shell = argv.is_empty();
    let (argv, fallback) = if argv.is_empty() { (shell, fallback) } else { (argv, direct) };
    let cwd = opts.cwd.clone();
    let strict_cwd = opts.strict_cwd;
    if let Some(env) = &opts.env {
        let mut env = env.clone();
        if fallback_is_shell && fallback.is_some() {
            // The shell that runs is named in $SHELL, as Apptainer does.
            env.retain(|(k, _)| k != "SHELL");
            env.push(("SHELL".into(), argv[0].to_string_lossy().into_owned()));
        }
        return Ok(workload::Command {
            argv,
            env,
            fallback,
            fallback_is_shell,
            image,
            cwd,
            strict_cwd,
        });
    }
    let mut env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    if opts.image.is_some() {
        let mut set = |key: &str, value: &str| {
            env.retain(|(k, _)| k != key);
            env.push((key.into(), value.into()));
        };
        set("PATH", IMAGE_PATH);
        if opts.fakeroot {
            set("HOME", "/root");
            set("USER", "root");
            set("LOGNAME", "root");
        }
        if fallback_is_shell && fallback.is_some() {
            set("SHELL", &argv[0].to_string_lossy());
        }
    }
    Ok(workload::Command { argv, env, fallback, fallback_is_shell, image, cwd, strict_cwd })
}

/// Whether `clone(CLONE_NEWUSER)` failed because the host does not allow it
/// (rather than for lack of memory or a bad argument of ours).
fn userns_refused(e: Errno) -> bool {
    matches!(e, Errno::PERM | Errno::ACCESS | Errno::NOSPC | Errno::USERS | Errno::INVAL)
}

fn supervisor(opts: &ExecOptions, ids: IdMap, mode: &Mode) -> Result<Option<Supervisor>, Error> {
    if !opts.fakeroot {
        return Ok(None);
    }
    let config = Config {
        ids,
        workers: opts.workers.max(1),
        sync_wakeup: opts.sync_wakeup,
        continue_all: opts.continue_all,
        passed_in: passed_in(),
        namespace: match mode {
            Mode::Subuid(_) => Namespace::Subuid,
            Mode::RootMapped => Namespace::RootMapped,
            Mode::None => Namespace::None,
        },
    };
    Ok(Some(Supervisor::new(config)?))
}

/// The files behind the descriptors fr's caller passed on to the command:
/// those fr holds without close-on-exec (fr opens all of its own with it;
/// one it inherited across `execve` has not the flag). They are the
/// caller's, a terminal or a log file on the host, which the supervisor
/// changes only in its table.
pub(crate) fn passed_in() -> Vec<fr_emulator::InodeKey> {
    const O_CLOEXEC: u32 = 0o2_000_000;
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    let fds: Vec<String> = dir.flatten().filter_map(|e| e.file_name().into_string().ok()).collect();
    fds.iter()
        .filter(|fd| {
            std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).is_ok_and(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("flags:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
                    .is_some_and(|flags| flags & O_CLOEXEC == 0)
            })
        })
        .filter_map(|fd| {
            let path = format!("/proc/self/fd/{fd}");
            rustix::fs::statx(
                rustix::fs::CWD,
                path,
                rustix::fs::AtFlags::empty(),
                rustix::fs::StatxFlags::INO,
            )
            .ok()
            .map(|st| crate::store::key_of(&st))
        })
        .collect()
}

/// `-i FILE` loaded into the table and `-s FILE` started, for the host
/// tree; an image keeps its own store.
fn host_state(
    opts: &ExecOptions,
    image: bool,
    sup: Option<&Supervisor>,
) -> Result<Option<StateFile>, Error> {
    if opts.load_state.is_none() && opts.save_state.is_none() {
        return Ok(None);
    }
    let Some(sup) = sup else {
        return Err(Error::Setup("-i and -s keep fake metadata: they need --fakeroot".into()));
    };
    if image {
        return Err(Error::Setup(
            "-i and -s are for the host tree: an image keeps its fake metadata in IMAGE/.fr".into(),
        ));
    }
    if let Some(path) = &opts.load_state {
        StateFile::new(path)?.load(sup.inodes())?;
        log::debug!("state file {}: {} records loaded", path.display(), sup.inodes().len());
    }
    let Some(path) = &opts.save_state else { return Ok(None) };
    let state = StateFile::new(path)?;
    state.save(sup.inodes())?;
    sup.inodes().set_journal(state.journal());
    Ok(Some(state))
}

/// Says which mode runs, and why, when that informs: on a terminal, or when
/// auto fell back from the mode it prefers with an image (subuid); else
/// only with `-v`, so that a build log does not repeat it at every step.
fn say_mode(opts: &ExecOptions, mode: &Mode, why: &str) {
    use std::io::IsTerminal;
    let fell_back =
        opts.userns == Userns::Auto && opts.image.is_some() && *mode == Mode::RootMapped;
    if !fell_back && !std::io::stderr().is_terminal() && !log::log_enabled!(log::Level::Debug) {
        return;
    }
    log::info!("{why}");
}

/// How many changes the image's journal holds for the load to replay
/// (for `-v`; read once more only then).
fn journal_entries(store: &ImageStore) -> usize {
    store
        .journal_bytes()
        .ok()
        .flatten()
        .and_then(|bytes| fr_emulator::store::decode_journal(&bytes).ok())
        .map_or(0, |scan| scan.changes.len())
}

/// Where fr keeps what a session or an instance needs beside it (the
/// instances' state, slirp4netns's API socket): `$XDG_RUNTIME_DIR/fr`, else
/// `/tmp/fr-UID` (not made: see [`runtime_dir`]).
pub fn runtime_path() -> PathBuf {
    let uid = rustix::process::getuid().as_raw();
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty() && Path::new(d).is_absolute())
        .map(|d| PathBuf::from(d).join("fr"))
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/fr-{uid}")))
}

/// [`runtime_path`], made 0700, and checked to be the user's alone.
pub fn runtime_dir() -> Result<PathBuf, Error> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = rustix::process::getuid().as_raw();
    let base = runtime_path();
    let made = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&base);
    let meta =
        made.and_then(|()| std::fs::symlink_metadata(&base)).map_err(|e| Error::Instance {
            why: format!("{}: {e}", base.display()),
            hint: "set XDG_RUNTIME_DIR to a directory of yours (systemd's /run/user/UID)".into(),
        })?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(Error::Instance {
            why: format!(
                "{} is not a directory of yours that only you can reach (mode {:o}, owner {})",
                base.display(),
                meta.mode() & 0o7777,
                meta.uid()
            ),
            hint: "remove it, or set XDG_RUNTIME_DIR to a directory of yours".into(),
        });
    }
    Ok(base)
}

/// One session: what runs, and what fr holds while it runs.
pub(crate) struct Session<'a> {
    pub opts: &'a ExecOptions,
    pub mode: Mode,
    why: String,
    pub plan: Plan,
    pub sup: Option<Supervisor>,
    pub store: Option<ImageStore>,
    state: Option<StateFile>,
    /// The network helper picked before anything started.
    chosen: Option<net::Chosen>,
    pub terminal: Option<job::Terminal>,
    /// The container's namespaces and root, once its init shared them.
    pub shared: Option<channel::Shared>,
    pub helper: Option<net::Helper>,
    /// The image had no store: another rootless tool's owners are adopted.
    fresh: bool,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("mode", &self.mode).field("plan", &self.plan).finish()
    }
}

impl<'a> Session<'a> {
    /// Everything before the first fork: the mode, the image, the network's
    /// checks, the plan, the supervisor, the store's lock. `background`
    /// (an instance's monitor) leaves any terminal alone; `share` makes the
    /// init hand fr its namespaces, `idle` keeps the container up after
    /// its command (both for instances).
    pub fn prepare(
        opts: &'a ExecOptions,
        background: bool,
        share: bool,
        idle: bool,
    ) -> Result<Session<'a>, Error> {
        let host = Path::new("/");
        let (mode, why) = mode::choose(opts.userns, opts.fakeroot, opts.image.is_some(), host)?;
        if opts.net.is_some() && mode == Mode::None {
            return Err(Error::Network {
                why: "--net needs a user namespace to own the container's network namespace".into(),
                hint: "drop --userns=none".into(),
            });
        }
        let ids = match &mode {
            Mode::Subuid(subs) => mode::namespace_view(subs),
            _ => mode::id_map(host),
        };
        let image = opts.image.as_deref().map(check_image).transpose()?;
        match &image {
            Some(image) => log::debug!("image {}", image.display()),
            None => log::debug!("no image: the host tree is the root"),
        }
        for b in &opts.binds {
            let ro = if b.read_only { ", read-only" } else { "" };
            log::debug!("bind {} on {}{ro}", b.src.display(), b.dst.display());
        }
        if matches!(opts.root, Root::Tmpfs | Root::Shared) && image.is_none() {
            return Err(Error::Setup(
                "--writable-tmpfs lays a tmpfs over an image: it needs IMAGE".into(),
            ));
        }
        let chosen = match &opts.net {
            Some(net) => {
                let chosen = net::choose(net.helper)?;
                if chosen == net::Chosen::None && !net.ports.is_empty() {
                    return Err(Error::Network {
                        why: "--network none has no way in from the host: port maps need a helper"
                            .into(),
                        hint: "drop --network none (pasta is the default), or the port maps".into(),
                    });
                }
                net::check_ports(&net.ports, Path::new("/proc"))?;
                log::debug!("network: {}", chosen.name());
                Some(chosen)
            }
            None => None,
        };
        let mut plan = Plan::new(image, opts.binds.clone(), command(opts)?);
        plan.root = opts.root;
        plan.tmpfs = opts.tmpfs.clone();
        plan.hostname = opts.hostname.clone();
        plan.net = opts.net.is_some();
        plan.resolv = chosen.as_ref().and_then(|c| {
            net::resolv_conf(c, &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
        });
        plan.idle = idle;
        plan.share = share
            || chosen.as_ref().is_some_and(|c| *c != net::Chosen::None)
            || (matches!(opts.root, Root::Tmpfs | Root::Shared) && opts.fakeroot);
        if let Some(image) = &plan.image {
            plan.hide.push(image.join(crate::store::DIR));
        }
        let runtime = runtime_path();
        plan.hide.push(runtime.canonicalize().unwrap_or(runtime));
        sys::block_signals().map_err(Error::sys("blocking signals"))?;
        let sup = supervisor(opts, ids, &mode)?;
        // The image's fake metadata: locked now, loaded before the command
        // runs, every change journaled while it runs, saved when it ends.
        // A tree fr has never run (no store yet) may be another rootless
        // tool's, whose owners are taken in (see adopt) when it is loaded.
        let fresh = plan.image.as_ref().is_some_and(|i| !i.join(crate::store::DIR).exists());
        let store = match (&plan.image, &sup) {
            (Some(image), Some(_)) if opts.root == Root::Shared => {
                Some(ImageStore::open_shared(image)?)
            }
            (Some(image), Some(_)) => Some(ImageStore::open(image)?),
            _ => None,
        };
        let state = host_state(opts, plan.image.is_some(), sup.as_ref())?;
        // The container runs as a job of its own, in the foreground of fr's
        // terminal if fr had it (see job).
        let terminal = if background { None } else { job::Terminal::foreground() };
        Ok(Session {
            opts,
            mode,
            why,
            plan,
            sup,
            store,
            state,
            chosen,
            terminal,
            shared: None,
            helper: None,
            fresh,
        })
    }

    /// Loads the image's store into the table. Resolves the snapshot's
    /// paths in the image, and in subuid mode may do so only once fr has
    /// joined the container's namespace: a directory a subordinate id owns
    /// may be searchable by that id alone, and the user outside would find
    /// none of the records below it (they were dropped, and the next save
    /// lost them for good). Under `--writable-tmpfs` the store is only
    /// brought up to date here (an earlier session's journal replayed);
    /// the table is filled through the overlay once the container's root
    /// is there ([`Self::restore_through`]), and nothing is journaled.
    fn load(&self) -> Result<(), Error> {
        let (Some(store), Some(sup), Some(image)) = (&self.store, &self.sup, &self.plan.image)
        else {
            return Ok(());
        };
        if matches!(self.plan.root, Root::Tmpfs | Root::Shared) {
            let scratch = fr_emulator::InodeTable::new(sup.inodes().ids().clone());
            store.load(&scratch)?;
            if self.fresh && crate::adopt::adopt(image, &scratch) > 0 {
                store.save(&scratch)?;
            }
            return Ok(());
        }
        let pending = log::log_enabled!(log::Level::Debug).then(|| journal_entries(store));
        store.load(sup.inodes())?;
        if self.fresh && crate::adopt::adopt(image, sup.inodes()) > 0 {
            store.save(sup.inodes())?;
        }
        if let Some(pending) = pending {
            log::debug!(
                "metadata store {}: {} records, {pending} changes of an earlier session in \
                 its journal",
                image.join(crate::store::DIR).display(),
                sup.inodes().len()
            );
        }
        sup.inodes().set_journal(store.journal()?);
        Ok(())
    }

    /// `--writable-tmpfs`: the snapshot's records put on the files the
    /// container sees through its overlay (other inode numbers and device
    /// than the image's own).
    fn restore_through(&self, root: std::os::fd::BorrowedFd<'_>) -> Result<(), Error> {
        let (Some(store), Some(sup)) = (&self.store, &self.sup) else { return Ok(()) };
        if !matches!(self.plan.root, Root::Tmpfs | Root::Shared) {
            return Ok(());
        }
        store.restore_at(sup.inodes(), root)?;
        log::debug!("{} records laid over the writable layer", sup.inodes().len());
        Ok(())
    }

    /// Forks the container (or, without a user namespace, the workload)
    /// and returns its pid; falls back to emulation alone when the kernel
    /// refuses user namespaces for a host-tree session.
    pub fn start(&mut self, theirs: std::os::fd::BorrowedFd<'_>) -> Result<i32, Error> {
        if self.mode != Mode::None {
            let started = start_container(self, theirs);
            match started {
                Ok(pid) => {
                    if self.opts.fakeroot {
                        say_mode(self.opts, &self.mode, &self.why);
                    }
                    return Ok(pid);
                }
                Err(Error::Userns(e))
                    if self.opts.userns == Userns::Auto
                        && self.plan.image.is_none()
                        && self.opts.net.is_none()
                        && userns_refused(e) =>
                {
                    log::info!("user namespaces are not available ({e}): emulation alone, as with --userns=none");
                    self.mode = Mode::None;
                }
                Err(e) => return Err(e),
            }
        } else if self.opts.fakeroot {
            say_mode(self.opts, &self.mode, &self.why);
        }
        if let Some(image) = &self.plan.image {
            return Err(Error::ImageWithoutUserns(image.display().to_string()));
        }
        self.load()?;
        sys::make_undumpable().map_err(Error::sys("making fr undumpable"))?;
        job::adopt_leftovers();
        let pid = match sys::fork_with(0).map_err(Error::sys("forking the command"))? {
            Forked::Child => {
                job::lead(self.terminal);
                let chan = theirs.try_clone_to_owned().unwrap_or_else(|_| sys::exit_now(125));
                workload::run(
                    &self.plan.command,
                    chan,
                    self.sup.as_ref().map(Supervisor::program),
                    self.opts.fakeroot,
                )
            }
            Forked::Parent(pid) => pid,
        };
        job::started(pid, self.terminal);
        Ok(pid)
    }

    /// Waits for the container's words: its namespaces (then the network
    /// helper starts and the init is told to go on), then the listener,
    /// which the supervisor serves from now on. On failure the container
    /// is stopped and waited for.
    pub fn handshake(&mut self, pid: i32, ours: &OwnedFd) -> Result<(), Error> {
        loop {
            match channel::recv(ours).map_err(Error::sys("reading from the container"))? {
                Message::Shared(shared) => {
                    let ready = self.connect(&shared);
                    self.shared = Some(shared);
                    if let Err(e) = ready {
                        init::forward(pid, libc::SIGKILL);
                        job::wait(pid, self.terminal);
                        return Err(e);
                    }
                    channel::send_go(ours.as_fd()).map_err(Error::sys("starting the container"))?;
                }
                Message::Listener { fd, root_mount } => {
                    let image = self.plan.image.is_some();
                    let served = self
                        .sup
                        .as_ref()
                        .map(|sup| sup.serve(fd, if image { root_mount } else { None }));
                    if let Some(Err(e)) = served {
                        // Nothing would answer the workload's calls: stop it.
                        init::forward(pid, libc::SIGKILL);
                        job::wait(pid, self.terminal);
                        return Err(Error::Workers(e));
                    }
                    return Ok(());
                }
                Message::Ready => return Ok(()),
                Message::Failed(why) => {
                    job::wait(pid, self.terminal);
                    return Err(Error::Setup(why));
                }
                Message::Closed => {
                    job::wait(pid, self.terminal);
                    return Err(Error::Vanished);
                }
            }
        }
    }

    /// What needs the container's namespaces before its command runs.
    fn connect(&mut self, shared: &channel::Shared) -> Result<(), Error> {
        self.restore_through(shared.root.as_fd())?;
        if let (Some(chosen), Some(net)) = (&self.chosen, &self.opts.net) {
            let runtime = runtime_dir().unwrap_or_else(|_| std::env::temp_dir());
            self.helper = net::start(chosen, net, shared, &runtime)?;
            if let Some(h) = &self.helper {
                log::debug!("{} connects the container (pid {})", h.name(), h.pid());
            }
        }
        Ok(())
    }

    /// The end of the session: the network helper stopped, every process
    /// left behind ended, the table saved; the status to return (fr's own
    /// failure when the command's would hide a change that was not kept).
    pub fn finish(&mut self, code: i32) -> i32 {
        self.helper = None;
        job::end();
        let Some(sup) = &self.sup else { return code };
        let kept = match (&self.store, &self.state) {
            // A layer's changes, or a shared image's session: nothing of
            // the image changed, nothing to save (others may be running).
            (Some(_), _) if matches!(self.plan.root, Root::Tmpfs | Root::Shared) => true,
            (Some(store), _) => keep_image(store, sup.inodes()),
            (None, Some(state)) => keep_state(state, sup.inodes()),
            (None, None) => true,
        };
        if !kept && code == 0 {
            125
        } else {
            code
        }
    }
}

/// Runs the command as `opts` says and returns its exit status.
pub fn exec(opts: &ExecOptions) -> Result<i32, Error> {
    let mut session = Session::prepare(opts, false, false, false)?;
    let (ours, theirs) = channel::pair().map_err(Error::sys("creating the container channel"))?;
    let pid = session.start(theirs.as_fd())?;
    drop(theirs);
    session.handshake(pid, &ours)?;
    drop(ours);
    let code = job::wait(pid, session.terminal);
    Ok(session.finish(code))
}

/// What the journal refused during the session: each such call failed
/// with the journal's errno, so the workload saw it fail.
fn refused_changes(table: &fr_emulator::InodeTable, journal: &Path) -> bool {
    let (refused, errno) = table.refused();
    if refused > 0 {
        log::error!(
            "{}: {refused} changes could not be written ({}), and the calls that asked for them \
             failed with that error; every call that succeeded is kept",
            journal.display(),
            std::io::Error::from_raw_os_error(errno)
        );
    }
    refused > 0
}

/// The end of a session on an image: the table saved as the snapshot,
/// and what could not be kept said; whether all went well.
fn keep_image(store: &ImageStore, table: &fr_emulator::InodeTable) -> bool {
    let journal = store.journal_file();
    let mut kept = !refused_changes(table, &journal);
    if !table.changed() && table.queued_forgets() == 0 {
        return kept;
    }
    if let Err(e) = store.save(table) {
        kept = false;
        // Space freed since may let the queued forgets in now.
        let _ = table.flush_queued();
        match table.queued_forgets() {
            0 => log::error!(
                "{e}; nothing this session answered is lost: the journal {} keeps it, and the \
                 next session on the image replays it",
                journal.display()
            ),
            n => log::error!(
                "{e}; the journal {} keeps every change this session answered, but not that \
                 {n} removed files lost their records: until a session saves the snapshot, \
                 files made outside fr that reuse their inode numbers may show their owners \
                 (free some space and run a session on the image)",
                journal.display()
            ),
        }
    }
    kept
}

/// The end of a host-tree session with `-s FILE`: the state file
/// compacted; whether all went well.
fn keep_state(state: &StateFile, table: &fr_emulator::InodeTable) -> bool {
    let mut kept = !refused_changes(table, state.path());
    if !table.changed() && table.queued_forgets() == 0 {
        return kept;
    }
    if let Err(e) = state.save(table) {
        kept = false;
        let _ = table.flush_queued();
        match table.queued_forgets() {
            0 => log::error!(
                "{e}; nothing this session answered is lost: the state file keeps every change \
                 as it was written during the session"
            ),
            n => log::error!(
                "{e}; the state file keeps every change this session answered, but not that {n} \
                 removed files lost their records: loading it may give their owners to files \
                 that reuse their inode numbers"
            ),
        }
    }
    kept
}

/// Forks the container's outer process ([`outer`]) in new user and mount
/// namespaces and writes its id maps; returns its pid. fr becomes
/// non-dumpable before the container goes on (not before the fork: the
/// maps of a non-dumpable child cannot be written). The store is loaded
/// once fr has joined the namespace (subuid mode) and before the
/// container goes on; its error stops the container.
fn start_container(s: &Session<'_>, theirs: std::os::fd::BorrowedFd<'_>) -> Result<i32, Error> {
    let (uid, gid) = (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
    let (go_read, go_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(Error::sys("creating a pipe"))?;
    let flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS;
    let pid = match sys::fork_with(flags).map_err(Error::Userns)? {
        Forked::Child => {
            drop(go_write);
            job::lead(s.terminal);
            // A panic must not unwind into fr's frames in this copy of the
            // process (they own descriptors init has closed): it ends here.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                let chan = theirs.try_clone_to_owned().unwrap_or_else(|_| sys::exit_now(125));
                outer::run(&s.plan, chan, go_read, s.sup.as_ref().map(Supervisor::program))
            }));
            sys::exit_now(125)
        }
        Forked::Parent(pid) => pid,
    };
    job::started(pid, s.terminal);
    drop(go_read);
    let (inside_uid, inside_gid) = if s.opts.fakeroot { (0, 0) } else { (uid, gid) };
    let mapped = match &s.mode {
        Mode::Subuid(subs) => {
            idmap::map_subordinates(pid, uid, gid, subs).and_then(|()| idmap::join(pid))
        }
        _ => idmap::map_single(pid, inside_uid, uid, inside_gid, gid),
    }
    .and_then(|()| sys::make_undumpable().map_err(Error::sys("making fr undumpable")))
    .and_then(|()| s.load());
    if let Err(e) = mapped {
        init::forward(pid, libc::SIGKILL);
        let _ = rustix::process::waitpid(Pid::from_raw(pid), WaitOptions::empty());
        return Err(e);
    }
    rustix::io::write(&go_write, b"g").map_err(Error::sys("starting the container"))?;
    Ok(pid)
}
