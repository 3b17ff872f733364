//! The process-level system calls no safe crate wraps the way the launcher
//! needs them: fork-like `clone` with namespace flags, `execve`, the signal
//! mask and `sigwaitinfo`. All of the launcher's `unsafe` is here.
#![allow(unsafe_code)]

use std::ffi::CString;

use rustix::io::Errno;

fn errno() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// The two sides of a fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Child,
    Parent(i32),
}

/// `clone(flags | SIGCHLD)` with no new stack: a `fork(2)` that can also
/// create namespaces (`CLONE_NEWUSER` and friends).
///
/// Callers must be single-threaded: the child gets a copy of memory in which
/// a lock held by another thread would stay locked forever.
pub fn fork_with(flags: libc::c_int) -> Result<Forked, Errno> {
    // SAFETY: a clone with a zero stack pointer behaves like fork(2): the child
    // continues on a copy-on-write copy of the caller's stack. Callers are
    // single-threaded (documented above), so no lock is held in the copy.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match ret {
        -1 => Err(errno()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// Closes every descriptor from `first` up (`close_range(2)`, 5.9), or one
/// at a time on older kernels, as far as `/proc/self/fd` lists them.
///
/// Called by fr's processes that never `execve` (the container's outer
/// process and init): their copies of fr's descriptors would otherwise
/// stay open for the whole session, reachable by anyone who may open
/// their `/proc/PID/fd`.
pub fn close_from(first: std::os::fd::RawFd) {
    // SAFETY: close_range only closes descriptors; the callers hold no
    // Rust object owning one of them that is used or dropped afterwards
    // (they are forked children that end in `exit_now`, see `outer::run`
    // and `init::run`).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, !0u32, 0u32) };
    if ret == 0 {
        return;
    }
    for fd in open_descriptors().into_iter().filter(|&fd| fd >= first) {
        // SAFETY: as above.
        unsafe { libc::close(fd) };
    }
}

/// Closes every descriptor marked close-on-exec except `keep`: fr opens
/// all of its own so (the standard library, rustix and fr's own calls
/// ask for `O_CLOEXEC`), while one the caller passed fr survived an
/// `execve` and so has not the flag. The caller's stay, to be passed on.
pub fn close_own_except(keep: &[std::os::fd::RawFd]) {
    for fd in open_descriptors() {
        // SAFETY: F_GETFD reads a descriptor's flags and changes nothing.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags >= 0 && flags & libc::FD_CLOEXEC != 0 && !keep.contains(&fd) {
            // SAFETY: as in `close_from`: called in a forked child that
            // ends in `exit_now`, whose objects owning these descriptors
            // are never used or dropped.
            unsafe { libc::close(fd) };
        }
    }
}

/// The descriptors open in this process, from `/proc/self/fd` (read in
/// full before any is closed).
fn open_descriptors() -> Vec<std::os::fd::RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    let fds: Vec<_> =
        dir.flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok())).collect();
    fds
}

/// Makes the calling process non-dumpable (`PR_SET_DUMPABLE`, 0): its
/// `/proc/PID` files then belong to real root and `ptrace`, `/proc/PID/mem`,
/// `/proc/PID/fd` and `pidfd_getfd` need `CAP_SYS_PTRACE` in the user
/// namespace of its memory, the initial one for fr's processes, which
/// never `execve` (`kernel/ptrace.c: __ptrace_may_access()`). Nothing in
/// a container, fake root included, has it.
pub fn make_undumpable() -> Result<(), Errno> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
}

/// `execve(path, argv, envp)`; returns only on failure.
pub fn execve(path: &CString, argv: &[CString], envp: &[CString]) -> Errno {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: every pointer points into a CString that outlives the call, and
    // both arrays end with a null pointer as execve(2) requires.
    unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
    errno()
}

/// The signals fr forwards to the workload, and `SIGCHLD`, which tells it
/// the workload ended.
pub const FORWARDED: [libc::c_int; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGCHLD,
];

fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set it is given; sigaddset only
    // sets bits in an initialised set.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Signals fr's processes leave to the kernel's default action: job control
/// (fr stops itself with its caller's job; see `job`), and the faults a
/// process raises on itself. `SIGTTOU` stays blocked, as fr hands its
/// terminal on from the background, and so does `SIGCONT`, which
/// continues a process all the same (`kernel/signal.c: prepare_signal()`
/// acts on it as it is sent) and then waits for `job::wait`, which so
/// learns fr was continued: in every thread, or a worker thread would take
/// it first.
const DEFAULT_ACTION: [libc::c_int; 8] = [
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGSYS,
];

/// Blocks every signal but [`DEFAULT_ACTION`] (and `SIGKILL` and `SIGSTOP`,
/// which cannot be) in the calling thread, and in the threads and
/// children it creates later: [`FORWARDED`] queue for [`wait_signal`], and
/// the rest stay pending for ever. So a signal the workload sends its
/// whole process group (`kill(0, SIGALRM)`), which reaches fr's processes
/// too, cannot end them; and a write of fr's past `RLIMIT_FSIZE` fails
/// with `EFBIG` instead of killing fr with `SIGXFSZ`
/// (`mm/filemap.c: generic_write_check_limits()`). The workload unblocks
/// every signal ([`unblock_all`]), and a fork starts with none pending.
pub fn block_signals() -> Result<(), Errno> {
    // SAFETY: sigfillset and sigdelset only change an initialised set.
    let set = unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigfillset(&mut set);
        for s in DEFAULT_ACTION {
            libc::sigdelset(&mut set, s);
        }
        set
    };
    // SAFETY: `set` is an initialised signal set; the old mask is not wanted.
    match unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } {
        0 => Ok(()),
        e => Err(Errno::from_raw_os_error(e)),
    }
}

/// Restores `SIGPIPE` to its default: Rust's runtime ignores it in fr, and
/// an ignored signal stays ignored across `execve` (`yes | head -1` would
/// print "Broken pipe").
pub fn default_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL installs no handler.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// Unblocks every signal: the workload starts with a clean mask.
pub fn unblock_all() {
    let set = sigset(&[]);
    // SAFETY: `set` is an initialised (empty) signal set.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) };
}

/// A signal taken from the queue, whether a process sent it with
/// `kill(2)` or `sigqueue(3)` (rather than the kernel, as for a tty's ^C),
/// and which: its pid in this process's pid namespace, 0 if it is not in
/// it (or the kernel sent the signal).
#[derive(Debug, Clone, Copy)]
pub struct Caught {
    pub signal: libc::c_int,
    pub sent_by_process: bool,
    pub sender: i32,
}

/// `sigwaitinfo` on [`FORWARDED`], which must be blocked.
pub fn wait_signal() -> Result<Caught, Errno> {
    wait_signal_of(&FORWARDED)
}

/// Whether a `SIGCONT` is pending (it is blocked, see [`block_signals`]).
pub fn continue_pending() -> bool {
    // SAFETY: sigpending fills the set it is given; sigismember reads it.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigpending(&mut set) == 0 && libc::sigismember(&set, libc::SIGCONT) == 1
    }
}

/// `sigwaitinfo` on `signals`, which must be blocked.
pub fn wait_signal_of(signals: &[libc::c_int]) -> Result<Caught, Errno> {
    let set = sigset(signals);
    loop {
        // SAFETY: `info` is a writable siginfo_t; `set` is initialised.
        let (ret, info) = unsafe {
            let mut info = std::mem::zeroed::<libc::siginfo_t>();
            let ret = libc::sigwaitinfo(&set, &mut info);
            (ret, info)
        };
        if ret > 0 {
            // SI_USER (0), SI_QUEUE (-1), SI_TKILL (-6): sent by a process.
            let sent_by_process = info.si_code <= 0;
            // SAFETY: for a signal a process sent, si_pid is the member the
            // kernel filled in (kernel/signal.c: prepare_kill_siginfo()).
            let sender = if sent_by_process { unsafe { info.si_pid() } } else { 0 };
            return Ok(Caught { signal: ret, sent_by_process, sender });
        }
        let e = errno();
        if e != Errno::INTR {
            return Err(e);
        }
    }
}

/// The calling process's process group, `None` when its leader is outside
/// this pid namespace (`getpgrp(2)` then says 0; rustix's wrapper assumes
/// it never does).
pub fn process_group() -> Option<rustix::process::Pid> {
    // SAFETY: getpgrp has no arguments and cannot fail.
    rustix::process::Pid::from_raw(unsafe { libc::getpgrp() })
}

/// The host's name for user `uid`, through NSS (`getpwuid_r(3)`).
pub fn user_name(uid: u32) -> Option<String> {
    passwd(|pwd, buf, result| {
        // SAFETY: every pointer is to a live, writable object of the right
        // type and `buf` holds `buf.len()` bytes (getpwuid_r(3)).
        unsafe { libc::getpwuid_r(uid, pwd, buf.as_mut_ptr(), buf.len(), result) }
    })
    .map(|(name, _)| name)
}

/// The host uid of user `name`, through NSS (`getpwnam_r(3)`).
pub fn uid_of(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    passwd(|pwd, buf, result| {
        // SAFETY: as in `user_name`; `name` is a NUL-terminated string that
        // outlives the call.
        unsafe { libc::getpwnam_r(name.as_ptr(), pwd, buf.as_mut_ptr(), buf.len(), result) }
    })
    .map(|(_, uid)| uid)
}

/// Runs a `getpw*_r` call with a buffer grown until it fits; the entry's
/// name and uid, or `None` if there is none.
fn passwd(
    call: impl Fn(&mut libc::passwd, &mut [libc::c_char], &mut *mut libc::passwd) -> libc::c_int,
) -> Option<(String, u32)> {
    let mut size = 1024;
    loop {
        // SAFETY: an all-zero passwd is a valid value of the plain C struct.
        let mut pwd = unsafe { std::mem::zeroed::<libc::passwd>() };
        let mut buf = vec![0 as libc::c_char; size];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        match call(&mut pwd, &mut buf, &mut result) {
            libc::ERANGE if size < 1 << 20 => size *= 4,
            0 if !result.is_null() => {
                // SAFETY: on success pw_name points to a NUL-terminated
                // string inside `buf`, which is still alive.
                let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
                return Some((name.to_string_lossy().into_owned(), pwd.pw_uid));
            }
            _ => return None,
        }
    }
}

/// `_exit(2)`: ends a forked child without running the parent's exit
/// handlers or flushing buffers it copied.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Brings up the loopback interface of the calling process's network
/// namespace (`SIOCSIFFLAGS` with `IFF_UP`, as `ip link set lo up`).
pub fn loopback_up() -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    let sock = rustix::net::socket_with(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )?;
    // SAFETY: an all-zero ifreq is a valid value of the plain C struct.
    let mut req = unsafe { std::mem::zeroed::<libc::ifreq>() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the flags of the interface `req` names
    // into `req`, which is a valid, writable ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(errno());
    }
    // SAFETY: after SIOCGIFFLAGS the flags member is the one filled in.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads `req`, a valid ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(errno());
    }
    Ok(())
}

/// The signal fr sends the container's outer process to have it kill the
/// init, and with it the whole pid namespace, before the outer process
/// itself ends (`SIGRTMIN+1`, which nothing else sends it): an instance's
/// stop that ran out of time, which must not return while a process of
/// the instance is still being torn down.
pub fn kill_child_signal() -> libc::c_int {
    libc::SIGRTMIN() + 1
}

/// `kill(pid, signal)` for any signal number (real-time ones too).
pub fn send_signal(pid: i32, signal: libc::c_int) {
    if pid > 0 {
        // SAFETY: kill has no memory arguments.
        unsafe { libc::kill(pid, signal) };
    }
}

/// `kill(-1, signal)`: every process the caller may signal; from a pid
/// namespace's init, every other process of the namespace.
pub fn kill_all(signal: libc::c_int) {
    // SAFETY: kill has no memory arguments.
    unsafe { libc::kill(-1, signal) };
}

/// `sigtimedwait` on `signals`, which must be blocked: `None` when
/// `timeout` passes first.
pub fn wait_signal_for(
    signals: &[libc::c_int],
    timeout: std::time::Duration,
) -> Result<Option<Caught>, Errno> {
    let set = sigset(signals);
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ts = libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(left.subsec_nanos() as i32),
        };
        // SAFETY: `info` is a writable siginfo_t; `set` and `ts` are
        // initialised.
        let (ret, info) = unsafe {
            let mut info = std::mem::zeroed::<libc::siginfo_t>();
            let ret = libc::sigtimedwait(&set, &mut info, &ts);
            (ret, info)
        };
        if ret > 0 {
            let sent_by_process = info.si_code <= 0;
            // SAFETY: as in `wait_signal_of`.
            let sender = if sent_by_process { unsafe { info.si_pid() } } else { 0 };
            return Ok(Some(Caught { signal: ret, sent_by_process, sender }));
        }
        match errno() {
            Errno::AGAIN => return Ok(None),
            Errno::INTR => continue,
            e => return Err(e),
        }
    }
}

/// Prepares `cmd`, a helper fr runs (the network's), to end with the
/// thread that starts it: the kernel sends it `SIGKILL` then
/// (`PR_SET_PDEATHSIG`, which `execve` keeps), so that a helper never
/// outlives its session, even a killed one. Every signal is unblocked
/// for it (fr's are blocked), and the descriptors `keep` are passed on
/// (close-on-exec cleared in the child).
pub fn helper_command(cmd: &mut std::process::Command, keep: Vec<std::os::fd::RawFd>) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the child between fork and execve and
    // makes only async-signal-safe calls (prctl, fcntl, pthread_sigmask on
    // an empty set, getppid); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            for &fd in &keep {
                libc::fcntl(fd, libc::F_SETFD, 0);
            }
            let mut set = std::mem::zeroed::<libc::sigset_t>();
            libc::sigemptyset(&mut set);
            libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            // The parent died before the prctl: no signal will come.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        })
    };
}

/// `setns(fd, 0)`: joins the namespace `fd` names.
pub fn setns(fd: std::os::fd::BorrowedFd<'_>) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    // SAFETY: setns takes a descriptor and a flag word, no memory.
    match unsafe { libc::setns(fd.as_raw_fd(), 0) } {
        0 => Ok(()),
        _ => Err(errno()),
    }
}
