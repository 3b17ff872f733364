//! The process-level calls the builder needs and no safe crate wraps:
//! `fork`, the signal mask, `sigtimedwait`, `_exit`. All of the builder's
//! `unsafe` is here.
//!
//! Why forks: every step of a build is an fr session, an import or an
//! export through the launcher's API, and those change the process that
//! runs them for good (they enter user namespaces, make it non-dumpable,
//! block signals, start the supervisor's threads). Each runs in a child of
//! the builder, which stays single-threaded and outside every namespace,
//! so that the next step starts as the first did.
#![allow(unsafe_code)]

use std::process::Command;

use rustix::io::Errno;

fn errno() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// The signals that stop a build: the builder blocks them and takes them
/// from the queue between steps ([`pending`]) and while it waits for one
/// ([`wait_child`]), which passes them on to the step.
pub const STOPPING: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset and sigaddset only change an initialised set.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

fn set_mask(how: libc::c_int, signals: &[libc::c_int]) {
    let set = sigset(signals);
    // SAFETY: `set` is an initialised signal set; the old mask is not wanted.
    unsafe { libc::pthread_sigmask(how, &set, std::ptr::null_mut()) };
}

/// Blocks [`STOPPING`] and `SIGCHLD` in the builder: they wait in the queue
/// until the builder looks, so that a ^C between two steps ends the build
/// where it can clean up, never half-way through its own writes.
pub fn block_stopping() {
    let mut all = STOPPING.to_vec();
    all.push(libc::SIGCHLD);
    set_mask(libc::SIG_BLOCK, &all);
}

/// Unblocks every signal: a step's child starts as a fresh process would
/// (the launcher blocks what it needs itself).
pub fn unblock_all() {
    set_mask(libc::SIG_SETMASK, &[]);
}

/// A stopping signal already queued for the builder, taken from the queue.
pub fn pending() -> Option<libc::c_int> {
    let set = sigset(&STOPPING);
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `info` is a writable siginfo_t, `set` and `zero` are
    // initialised; a zero timeout only polls.
    let ret = unsafe {
        let mut info = std::mem::zeroed::<libc::siginfo_t>();
        libc::sigtimedwait(&set, &mut info, &zero)
    };
    (ret > 0).then_some(ret)
}

/// The two sides of a fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Child,
    Parent(i32),
}

/// `fork(2)`. The builder is single-threaded (it starts no thread, and
/// the steps that do run in children), so the child's copy of memory
/// holds no lock another thread took.
pub fn fork() -> Result<Forked, Errno> {
    // SAFETY: fork has no preconditions; the caller is single-threaded
    // (see above), so the child may go on running Rust code.
    match unsafe { libc::fork() } {
        -1 => Err(errno()),
        0 => {
            STEPS.with(|s| s.borrow_mut().clear());
            Ok(Forked::Child)
        }
        pid => {
            STEPS.with(|s| s.borrow_mut().push(pid));
            Ok(Forked::Parent(pid))
        }
    }
}

/// `_exit(2)`: ends a forked child without running the parent's exit
/// handlers; what it printed is flushed first.
pub fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// How a child ended, and the stopping signal the builder was sent while
/// it ran (passed on to it), if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// The exit status, or 128 + N for a child signal N ended.
    pub code: i32,
    pub signal: Option<libc::c_int>,
}

/// How long a step may take to end after the builder passed on a
/// stopping signal, before it is killed: a step's workload may ignore the
/// signal (a shell waiting for its command does), and a build that was
/// told to stop must not wait for it. A second signal kills at once.
pub const GRACE: std::time::Duration = std::time::Duration::from_secs(5);

thread_local! {
    /// The steps running now (children [`fork`] made and nobody waited
    /// for yet): what is not one of them among the builder's children is
    /// an orphan of a step ([`make_subreaper`]).
    static STEPS: std::cell::RefCell<Vec<i32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Makes the builder the reaper of its steps' orphans
/// (`PR_SET_CHILD_SUBREAPER`, `prctl(2)`): when a step ends, or is killed,
/// the processes it leaves (the launcher's own, which follow it by their
/// parent-death signal, and a container's init, which takes every process
/// of its pid namespace with it) become the builder's children, and the
/// builder waits for them ([`wait_child`]). So no process of a step
/// outlives it, and nothing still writes into an image the builder goes
/// on with or removes.
pub fn make_subreaper() {
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
}

/// The builder's children now (`/proc/PID/task/TID/children`: the builder
/// is single-threaded, its only thread's id is its pid).
fn children() -> Vec<i32> {
    let me = std::process::id();
    std::fs::read_to_string(format!("/proc/{me}/task/{me}/children"))
        .map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

/// Reaps `pid` if it has ended; its status if so.
fn reap(pid: i32) -> Option<i32> {
    let mut status = 0;
    // SAFETY: `status` is a writable int; WNOHANG makes it a poll.
    let ret = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if ret == pid {
        if libc::WIFEXITED(status) {
            return Some(libc::WEXITSTATUS(status));
        }
        if libc::WIFSIGNALED(status) {
            return Some(128 + libc::WTERMSIG(status));
        }
        return None;
    }
    if ret == -1 && errno() == Errno::CHILD {
        // Not (or no longer) a child: nothing to wait for.
        return Some(125);
    }
    None
}

/// Sends `signal` to `pid`.
fn send(pid: i32, signal: libc::c_int) {
    // SAFETY: kill has no memory arguments.
    unsafe { libc::kill(pid, signal) };
}

/// Waits (up to a second) for a child to change or a stopping signal;
/// the stopping signal taken, if one came.
fn next_event() -> Option<libc::c_int> {
    let mut waited = STOPPING.to_vec();
    waited.push(libc::SIGCHLD);
    let set = sigset(&waited);
    // A second is the longest a SIGCHLD merged with another's could leave
    // an end unnoticed.
    let second = libc::timespec { tv_sec: 1, tv_nsec: 0 };
    // SAFETY: `info` is a writable siginfo_t, `set` and `second` are
    // initialised.
    let got = unsafe {
        let mut info = std::mem::zeroed::<libc::siginfo_t>();
        libc::sigtimedwait(&set, &mut info, &second)
    };
    (got > 0 && got != libc::SIGCHLD).then_some(got)
}

/// Waits for the child `pid`, a step, passing on to it each stopping
/// signal the builder is sent meanwhile ([`STOPPING`], which must be
/// blocked, as `SIGCHLD` must): the first as it is, and if the step has
/// not ended [`GRACE`] later, or at a second signal, `SIGKILL`. Then waits
/// for the orphans the step left ([`make_subreaper`]), killing them too
/// if the build was told to stop.
pub fn wait_child(pid: i32) -> Ended {
    let mut signal = None;
    let mut kill_at: Option<std::time::Instant> = None;
    let code = loop {
        if let Some(code) = reap(pid) {
            break code;
        }
        let now = std::time::Instant::now();
        match next_event() {
            Some(got) if signal.is_none() => {
                signal = Some(got);
                send(pid, got);
                kill_at = Some(now + GRACE);
            }
            Some(_) => kill_at = Some(now),
            None => {}
        }
        if kill_at.is_some_and(|at| std::time::Instant::now() >= at) {
            log::warn!("build: a step did not stop within {} s: killed", GRACE.as_secs());
            send(pid, libc::SIGKILL);
            kill_at = None;
        }
    };
    STEPS.with(|s| s.borrow_mut().retain(|&p| p != pid));
    reap_orphans(&mut signal);
    Ended { code, signal }
}

/// Waits until every child of the builder that is not a running step has
/// ended; `signal` is set if a stopping signal comes meanwhile, and they
/// are killed then.
fn reap_orphans(signal: &mut Option<libc::c_int>) {
    loop {
        let steps = STEPS.with(|s| s.borrow().clone());
        let orphans: Vec<i32> = children().into_iter().filter(|p| !steps.contains(p)).collect();
        let alive: Vec<i32> = orphans.into_iter().filter(|&p| reap(p).is_none()).collect();
        if alive.is_empty() {
            return;
        }
        if signal.is_some() {
            for &p in &alive {
                send(p, libc::SIGKILL);
            }
        }
        if let Some(got) = next_event() {
            signal.get_or_insert(got);
        }
    }
}

/// Makes `cmd`'s program start with no signal blocked: the builder's
/// blocked signals would otherwise reach it through `execve`, and a ^C
/// would not stop it.
pub fn unblocked(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: pthread_sigmask is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            let set = sigset(&[]);
            libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            Ok(())
        })
    }
}

/// In a step's child: `stdin` and `stdout` put in place, the pipe to
/// the builder moved to descriptor 3, and every other descriptor closed,
/// so that the step holds only what it needs. A pipe end the builder
/// meant for another step would otherwise stay open here, and the step
/// reading the pipe would never see its end. The descriptors given are
/// the child's to forget, not to close again. Returns the report's
/// descriptor.
pub fn child_descriptors(
    stdin: Option<std::os::fd::RawFd>,
    stdout: Option<std::os::fd::RawFd>,
    report: std::os::fd::RawFd,
) -> std::os::fd::RawFd {
    const REPORT: libc::c_int = 3;
    // SAFETY: dup2 and close_range only change the descriptor table; the
    // Rust objects that own the descriptors closed here are never dropped
    // in the child, which ends in `exit_now` (see `crate::child`).
    unsafe {
        // The report first: stdin or stdout may be descriptor 3 now.
        let report = libc::fcntl(report, libc::F_DUPFD_CLOEXEC, 10);
        if let Some(fd) = stdin {
            libc::dup2(fd, 0);
        }
        if let Some(fd) = stdout {
            libc::dup2(fd, 1);
        }
        libc::dup2(report, REPORT);
        libc::fcntl(REPORT, libc::F_SETFD, libc::FD_CLOEXEC);
        libc::syscall(libc::SYS_close_range, (REPORT + 1) as libc::c_uint, !0u32, 0u32);
    }
    REPORT
}

/// Writes `bytes` to the descriptor `fd`, which the caller owns and keeps.
pub fn write_fd(fd: std::os::fd::RawFd, bytes: &[u8]) {
    let mut left = bytes;
    while !left.is_empty() {
        // SAFETY: `left` is a live buffer of `left.len()` bytes.
        let n = unsafe { libc::write(fd, left.as_ptr().cast(), left.len()) };
        if n <= 0 {
            return;
        }
        left = &left[n as usize..];
    }
}

/// Ends the child with SIGKILL when the builder dies (`kill -9` of fr
/// build): a step must not go on writing into a build nobody finishes.
/// The launcher's own processes follow it the same way.
pub fn die_with_parent(parent: i32) {
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    // The parent may have died before the line above: then nobody waits.
    if rustix::process::getppid().map(|p| p.as_raw_nonzero().get()) != Some(parent) {
        exit_now(125);
    }
}
