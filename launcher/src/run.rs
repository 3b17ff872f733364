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
use crate::options::{ExecOptions, Userns};
use crate::store::{ImageStore, StateFile};
use crate::sys::{self, Forked};
use crate::{idmap, job, outer, workload};

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
fn command(opts: &ExecOptions) -> Result<workload::Command, Error> {
    let image = opts.image.is_some();
    let (shell, fallback) = workload::shell(image);
    let argv = opts
        .command
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Error::Setup("an argument of the command contains a NUL byte".into()))?;
    let (argv, fallback) = if argv.is_empty() { (shell, fallback) } else { (argv, None) };
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
        if fallback.is_some() {
            set("SHELL", &argv[0].to_string_lossy());
        }
    }
    Ok(workload::Command { argv, env, fallback, image })
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
fn passed_in() -> Vec<fr_emulator::InodeKey> {
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

/// Runs the command as `opts` says and returns its exit status.
pub fn exec(opts: &ExecOptions) -> Result<i32, Error> {
    let host = Path::new("/");
    let (mut mode, why) = mode::choose(opts.userns, opts.fakeroot, opts.image.is_some(), host)?;
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
    let plan = Plan {
        image,
        binds: opts.binds.clone(),
        command: command(opts)?,
        read_only: opts.read_only,
    };
    let (ours, theirs) = channel::pair().map_err(Error::sys("creating the container channel"))?;
    sys::block_signals().map_err(Error::sys("blocking signals"))?;
    let sup = supervisor(opts, ids, &mode)?;
    // The image's fake metadata: locked now, loaded before the command
    // runs, every change journaled while it runs, saved when it ends.
    // A tree fr has never run (no store yet) may be another rootless
    // tool's, whose owners are taken in (see adopt) when it is loaded.
    let fresh = plan.image.as_ref().is_some_and(|i| !i.join(crate::store::DIR).exists());
    let store = match (&plan.image, &sup) {
        (Some(image), Some(_)) if opts.read_only => Some(ImageStore::open_shared(image)?),
        (Some(image), Some(_)) => Some(ImageStore::open(image)?),
        _ => None,
    };
    // Loading resolves the snapshot's paths in the image, and in subuid
    // mode may do so only once fr has joined the container's namespace:
    // a directory a subordinate id owns may be searchable by that id
    // alone, and the user outside would find none of the records below
    // it (they were dropped, and the next save lost them for good).
    let load = || -> Result<(), Error> {
        if let (Some(store), Some(sup), Some(image)) = (&store, &sup, &plan.image) {
            let pending = log::log_enabled!(log::Level::Debug).then(|| journal_entries(store));
            store.load(sup.inodes())?;
            if fresh && crate::adopt::adopt(image, sup.inodes()) > 0 {
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
            if !opts.read_only {
                sup.inodes().set_journal(store.journal()?);
            }
        }
        Ok(())
    };
    let state = host_state(opts, plan.image.is_some(), sup.as_ref())?;
    // The container runs as a job of its own, in the foreground of fr's
    // terminal if fr had it (see job).
    let terminal = job::Terminal::foreground();
    let finish = |pid: i32, ours: OwnedFd, sup: Option<Supervisor>| -> Result<i32, Error> {
        let code = finish(pid, ours, &sup, store.is_some(), terminal)?;
        let Some(sup) = &sup else { return Ok(code) };
        let kept = match (&store, &state) {
            // A read-only image's sessions change nothing of it, and save
            // nothing (others may be running in it).
            (Some(_), _) if opts.read_only => true,
            (Some(store), _) => keep_image(store, sup.inodes()),
            (None, Some(state)) => keep_state(state, sup.inodes()),
            (None, None) => true,
        };
        // fr's own failure status when the command's would hide it.
        Ok(if !kept && code == 0 { 125 } else { code })
    };

    if mode != Mode::None {
        let started = start_container(
            &plan,
            theirs.as_fd(),
            sup.as_ref(),
            opts.fakeroot,
            &mode,
            terminal,
            &load,
        );
        match started {
            Ok(pid) => {
                if opts.fakeroot {
                    say_mode(opts, &mode, &why);
                }
                return finish(pid, ours, sup);
            }
            Err(Error::Userns(e))
                if opts.userns == Userns::Auto && plan.image.is_none() && userns_refused(e) =>
            {
                log::info!("user namespaces are not available ({e}): emulation alone, as with --userns=none");
                mode = Mode::None;
            }
            Err(e) => return Err(e),
        }
    } else if opts.fakeroot {
        say_mode(opts, &mode, &why);
    }
    debug_assert_eq!(mode, Mode::None);
    if let Some(image) = &plan.image {
        return Err(Error::ImageWithoutUserns(image.display().to_string()));
    }
    load()?;
    sys::make_undumpable().map_err(Error::sys("making fr undumpable"))?;
    job::adopt_leftovers();
    let pid = match sys::fork_with(0).map_err(Error::sys("forking the command"))? {
        Forked::Child => {
            drop(ours);
            job::lead(terminal);
            workload::run(
                &plan.command,
                theirs,
                sup.as_ref().map(Supervisor::program),
                opts.fakeroot,
            )
        }
        Forked::Parent(pid) => pid,
    };
    job::started(pid, terminal);
    drop(theirs);
    finish(pid, ours, sup)
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
/// maps of a non-dumpable child cannot be written). `load` runs once fr
/// has joined the namespace (subuid mode) and before the container goes
/// on; its error stops the container.
fn start_container(
    plan: &Plan,
    theirs: std::os::fd::BorrowedFd<'_>,
    sup: Option<&Supervisor>,
    fakeroot: bool,
    mode: &Mode,
    terminal: Option<job::Terminal>,
    load: &dyn Fn() -> Result<(), Error>,
) -> Result<i32, Error> {
    let (uid, gid) = (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
    let (go_read, go_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(Error::sys("creating a pipe"))?;
    let flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS;
    let pid = match sys::fork_with(flags).map_err(Error::Userns)? {
        Forked::Child => {
            drop(go_write);
            job::lead(terminal);
            // A panic must not unwind into fr's frames in this copy of the
            // process (they own descriptors init has closed): it ends here.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                let chan = theirs.try_clone_to_owned().unwrap_or_else(|_| sys::exit_now(125));
                outer::run(plan, chan, go_read, sup.map(Supervisor::program))
            }));
            sys::exit_now(125)
        }
        Forked::Parent(pid) => pid,
    };
    job::started(pid, terminal);
    drop(go_read);
    let (inside_uid, inside_gid) = if fakeroot { (0, 0) } else { (uid, gid) };
    let mapped = match mode {
        Mode::Subuid(subs) => {
            idmap::map_subordinates(pid, uid, gid, subs).and_then(|()| idmap::join(pid))
        }
        _ => idmap::map_single(pid, inside_uid, uid, inside_gid, gid),
    }
    .and_then(|()| sys::make_undumpable().map_err(Error::sys("making fr undumpable")))
    .and_then(|()| load());
    if let Err(e) = mapped {
        init::forward(pid, libc::SIGKILL);
        let _ = rustix::process::waitpid(Pid::from_raw(pid), WaitOptions::empty());
        return Err(e);
    }
    rustix::io::write(&go_write, b"g").map_err(Error::sys("starting the container"))?;
    Ok(pid)
}

/// Waits for the container's first word, starts the supervisor, then
/// forwards signals until `pid` ends and follows its stops ([`job::wait`]);
/// returns its exit status.
fn finish(
    pid: i32,
    ours: OwnedFd,
    sup: &Option<Supervisor>,
    image: bool,
    terminal: Option<job::Terminal>,
) -> Result<i32, Error> {
    match channel::recv(&ours).map_err(Error::sys("reading from the container"))? {
        Message::Listener { fd, root_mount } => {
            match sup.as_ref().map(|sup| sup.serve(fd, if image { root_mount } else { None })) {
                Some(Ok(())) | None => {}
                Some(Err(e)) => {
                    // Nothing would answer the workload's calls: stop it.
                    init::forward(pid, libc::SIGKILL);
                    job::wait(pid, terminal);
                    return Err(Error::Workers(e));
                }
            }
        }
        Message::Ready => {}
        Message::Failed(why) => {
            job::wait(pid, terminal);
            return Err(Error::Setup(why));
        }
        Message::Closed => {
            job::wait(pid, terminal);
            return Err(Error::Vanished);
        }
    };
    drop(ours);
    let code = job::wait(pid, terminal);
    job::end();
    Ok(code)
}
