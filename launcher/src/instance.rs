//! Instances: a container in the background, one small monitor process
//! each, its state under `$XDG_RUNTIME_DIR/fr/instances/NAME/`, and the
//! sessions that join it (`instance://NAME`). `docs/instances.md` has the
//! design; in short:
//!
//! - [`start`] claims the name (the state directory's `lock`), forks the
//!   monitor and returns once the monitor says the instance is up;
//! - the monitor ([`monitor`]) runs the session as `fr exec` does, keeps
//!   the container's namespaces and root, serves its socket (stop, join)
//!   and ends the instance at a stop, saving the image's store;
//! - [`join`] enters the instance's namespaces and hands its workload's
//!   listener to the monitor's supervisor;
//! - [`list`] and [`stop`] read the state; a monitor counts as alive only
//!   while its pid has the start time recorded, and a dead one's state is
//!   removed.

use std::io::{IoSlice, IoSliceMut, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fr_supervisor::{Config, Namespace, Supervisor};
use rustix::fs::FlockOperation;
use rustix::net::{
    self, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};
use rustix::process::{Pid, WaitOptions};
use serde_json::json;

use crate::channel::{self, Message, Shared};
use crate::error::Error;
use crate::mode::Mode as UsernsMode;
use crate::options::ExecOptions;
use crate::run::{self, Session};
use crate::sys::{self, Forked};
use crate::{init, job, workload};

/// How long a stop waits for the instance's processes before it kills
/// them, unless `--timeout` says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What `fr instance list` shows of one instance, as `instance.json`
/// keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub name: String,
    /// The monitor's pid, and its start time in clock ticks since boot.
    pub pid: i32,
    pub start_time: u64,
    pub image: PathBuf,
    pub ports: Vec<String>,
    /// pasta, slirp4netns, none, or "" without `--net`.
    pub network: String,
    /// The network helper's pid, 0 without one.
    pub helper_pid: u32,
    pub fakeroot: bool,
    pub mode: String,
    /// Seconds since the epoch.
    pub started: u64,
    pub dir: PathBuf,
}

impl Info {
    pub fn out_log(&self) -> PathBuf {
        self.dir.join("out.log")
    }

    pub fn err_log(&self) -> PathBuf {
        self.dir.join("err.log")
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "instance": self.name,
            "pid": self.pid,
            "start_time": self.start_time,
            "img": self.image.display().to_string(),
            "ports": self.ports,
            "network": self.network,
            "helper_pid": self.helper_pid,
            "fakeroot": self.fakeroot,
            "mode": self.mode,
            "started": self.started,
            "logOutPath": self.out_log().display().to_string(),
            "logErrPath": self.err_log().display().to_string(),
        })
    }

    fn from_json(dir: &Path, v: &serde_json::Value) -> Option<Info> {
        Some(Info {
            name: v.get("instance")?.as_str()?.to_string(),
            pid: i32::try_from(v.get("pid")?.as_i64()?).ok()?,
            start_time: v.get("start_time")?.as_u64()?,
            image: PathBuf::from(v.get("img")?.as_str()?),
            ports: v
                .get("ports")?
                .as_array()?
                .iter()
                .filter_map(|p| p.as_str().map(String::from))
                .collect(),
            network: v.get("network")?.as_str()?.to_string(),
            helper_pid: v.get("helper_pid").and_then(|p| p.as_u64()).unwrap_or(0) as u32,
            fakeroot: v.get("fakeroot")?.as_bool()?,
            mode: v.get("mode")?.as_str()?.to_string(),
            started: v.get("started")?.as_u64()?,
            dir: dir.to_path_buf(),
        })
    }

    /// The JSON `fr instance list --json` prints for each instance
    /// (Apptainer's keys, and fr's).
    pub fn to_json(&self) -> serde_json::Value {
        self.json()
    }
}

/// Whether `name` can name an instance: 1 to 64 letters, digits, `_`,
/// `.` and `-`, starting with a letter or digit (one directory, always).
pub fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        return Ok(());
    }
    Err(Error::Instance {
        why: format!("{name:?} cannot name an instance"),
        hint: "a name is 1 to 64 letters, digits, _, . and -, starting with a letter or digit"
            .into(),
    })
}

/// `$XDG_RUNTIME_DIR/fr/instances`, made 0700.
pub fn instances_dir() -> Result<PathBuf, Error> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = run::runtime_dir()?.join("instances");
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|e| {
        Error::Instance {
            why: format!("{}: {e}", dir.display()),
            hint: "set XDG_RUNTIME_DIR to a directory of yours".into(),
        }
    })?;
    Ok(dir)
}

/// The start time of process `pid` (`/proc/PID/stat` field 22), which
/// tells it apart from a later process given the same pid; `None` when
/// there is no such process, or only its zombie (a killed monitor whose
/// new parent has not reaped it yet).
fn start_time(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the
    // last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Whether the monitor `info` names is still the process that wrote it.
fn alive(info: &Info) -> bool {
    start_time(&info.pid.to_string()) == Some(info.start_time)
}

/// The state of instance `name` as `instance.json` has it; `None` when
/// there is no such file (no instance, or one still starting).
fn read_info(dir: &Path) -> Option<Info> {
    let text = std::fs::read_to_string(dir.join("instance.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Info::from_json(dir, &v)
}

/// Opens the state directory's lock file.
fn lock_file(dir: &Path) -> Result<std::fs::File, Error> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir.join("lock"))
        .map_err(|e| Error::Instance {
            why: format!("{}: {e}", dir.join("lock").display()),
            hint: "remove the instance's directory if nothing runs there".into(),
        })
}

/// Whether a monitor (or a start) holds the lock of `dir`.
fn locked(dir: &Path) -> bool {
    let Ok(f) = lock_file(dir) else { return false };
    match rustix::fs::flock(&f, FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            let _ = rustix::fs::flock(&f, FlockOperation::Unlock);
            false
        }
        Err(_) => true,
    }
}

/// Every instance of the user's whose monitor lives, by name; the state
/// of those whose monitor is gone is removed (and said).
pub fn list() -> Result<Vec<Info>, Error> {
    let dir = instances_dir()?;
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir).map_err(|e| Error::Instance {
        why: format!("{}: {e}", dir.display()),
        hint: "set XDG_RUNTIME_DIR to a directory of yours".into(),
    })?;
    for e in entries.flatten() {
        let path = e.path();
        match read_info(&path) {
            Some(info) if alive(&info) => out.push(info),
            Some(info) => {
                log::info!(
                    "instance {}: its monitor (pid {}) is gone; its state is removed",
                    info.name,
                    info.pid
                );
                remove_state(&path);
            }
            // Starting: the start holds the lock until its monitor writes
            // the state. Without the lock, what is left of a failed start.
            None if locked(&path) => {}
            None => remove_state(&path),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The live instance `name`, or an error naming it and the way out.
pub fn find(name: &str) -> Result<Info, Error> {
    check_name(name)?;
    let dir = instances_dir()?.join(name);
    match read_info(&dir) {
        Some(info) if alive(&info) => Ok(info),
        Some(info) => {
            remove_state(&dir);
            Err(Error::Instance {
                why: format!(
                    "instance {name} is not running: its monitor (pid {}) is gone",
                    info.pid
                ),
                hint: format!(
                    "its state was removed; fr instance start IMAGE {name} starts it again"
                ),
            })
        }
        None => {
            let known: Vec<String> =
                list().unwrap_or_default().into_iter().map(|i| i.name).collect();
            let hint = if known.is_empty() {
                "no instance is running; fr instance start IMAGE NAME starts one".to_string()
            } else {
                format!("running instances: {} (fr instance list)", known.join(", "))
            };
            Err(Error::Instance { why: format!("no instance named {name} is running"), hint })
        }
    }
}

/// Removes an instance's state directory (its files are fr's alone).
fn remove_state(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            log::warn!("removing {}: {e}", dir.display());
        }
    }
}

/// What `fr instance start` printed once the instance was up.
#[derive(Debug)]
pub struct Started {
    pub info: Info,
}

/// Starts instance `name` of the session `opts` (its command the start
/// script or the runscript through the action script, or none) in the
/// background, and returns once it is up.
pub fn start(name: &str, opts: &ExecOptions) -> Result<Started, Error> {
    check_name(name)?;
    // ^C (or a TERM, a HUP) while the instance comes up stops it again:
    // taken below, once the monitor runs, and left pending for the
    // monitor, which stops at it as soon as it is up.
    sys::block_signals().map_err(Error::sys("blocking signals"))?;
    let image = opts.image.clone().ok_or_else(|| Error::Instance {
        why: "an instance needs IMAGE".into(),
        hint: "fr instance start [OPTIONS] IMAGE NAME".into(),
    })?;
    let dir = instances_dir()?.join(name);
    if let Some(info) = read_info(&dir) {
        if alive(&info) {
            return Err(Error::Instance {
                why: format!(
                    "instance {name} is already running (monitor pid {}, image {})",
                    info.pid,
                    info.image.display()
                ),
                hint: format!("fr instance stop {name} first, or pick another name"),
            });
        }
        log::info!(
            "instance {name}: the state of a monitor that is gone (pid {}) is removed",
            info.pid
        );
        remove_state(&dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::Instance {
        why: format!("{}: {e}", dir.display()),
        hint: "set XDG_RUNTIME_DIR to a directory of yours".into(),
    })?;
    let lock = lock_file(&dir)?;
    if rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
        return Err(Error::Instance {
            why: format!(
                "instance {name} is starting or running: another fr holds {}",
                dir.join("lock").display()
            ),
            hint: format!("fr instance list shows it; fr instance stop {name} stops it"),
        });
    }
    for stale in ["instance.json", "monitor.sock"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    let log = |file: &str| {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dir.join(file))
            .map_err(|e| Error::Instance {
                why: format!("{}: {e}", dir.join(file).display()),
                hint: "the instance's state directory must be fr's".into(),
            })
    };
    let (out, err) = (log("out.log")?, log("err.log")?);
    let listener = listen(&dir.join("monitor.sock"))?;
    let (report_r, report_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(Error::sys("creating a pipe"))?;
    let monitor = match sys::fork_with(0).map_err(Error::sys("forking the instance's monitor"))? {
        Forked::Child => {
            drop(report_r);
            let _ = rustix::process::setsid();
            if let Ok(null) = std::fs::File::open("/dev/null") {
                let _ = rustix::stdio::dup2_stdin(&null);
            }
            let _ = rustix::stdio::dup2_stdout(&out);
            let _ = rustix::stdio::dup2_stderr(&err);
            drop((out, err));
            let monitor = Monitor {
                name: name.to_string(),
                image,
                dir,
                _lock: lock,
                listener,
                report: Some(report_w),
            };
            monitor.run(opts)
        }
        Forked::Parent(pid) => pid,
    };
    drop((report_w, lock, out, err, listener));
    let me = std::process::id() as i32;
    let reader = std::thread::Builder::new().name("fr-start".into()).spawn(move || {
        let mut said = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match rustix::io::read(&report_r, &mut buf) {
                Ok(0) => break,
                Ok(n) => said.extend_from_slice(&buf[..n]),
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            }
        }
        sys::send_signal(me, libc::SIGUSR1);
        said
    });
    let reader = reader.map_err(|e| Error::Instance {
        why: format!("waiting for instance {name}: {e}"),
        hint: format!("fr instance list shows whether it is up; fr instance stop {name}"),
    })?;
    let signals = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGUSR1];
    let interrupted = loop {
        match sys::wait_signal_of(&signals) {
            Ok(c) if c.signal == libc::SIGUSR1 && c.sender == me => break None,
            Ok(c) if c.signal != libc::SIGUSR1 => break Some(c.signal),
            Ok(_) => {}
            Err(_) => break None,
        }
    };
    if let Some(signal) = interrupted {
        sys::send_signal(monitor, libc::SIGTERM);
        let _ = reader.join();
        // The monitor stops the instance as soon as it is up, or ends
        // where its setup was: it is this process's child until then.
        let _ = rustix::process::waitpid(Pid::from_raw(monitor), WaitOptions::empty());
        return Err(Error::Instance {
            why: format!("interrupted (signal {signal}): instance {name} was stopped again"),
            hint: format!("fr instance start ... {name} starts it"),
        });
    }
    let said = reader.join().unwrap_or_default();
    let said = String::from_utf8_lossy(&said).into_owned();
    match said.split_at_checked(1) {
        Some(("U", _)) => match read_info(&dir) {
            Some(info) => Ok(Started { info }),
            None => Err(Error::Instance {
                why: format!("instance {name} said it was up but left no state"),
                hint: format!("see {}", dir.join("err.log").display()),
            }),
        },
        Some(("E", text)) => {
            let (why, hint) = text.split_once('\n').unwrap_or((text, ""));
            Err(Error::Instance { why: why.to_string(), hint: hint.to_string() })
        }
        _ => Err(Error::Instance {
            why: format!("the monitor of instance {name} ended before the instance was up"),
            hint: format!("see {}", dir.join("err.log").display()),
        }),
    }
}

/// A listening `SOCK_SEQPACKET` socket at `path`.
fn listen(path: &Path) -> Result<OwnedFd, Error> {
    let fail = |e: rustix::io::Errno| Error::Instance {
        why: format!("{}: {e}", path.display()),
        hint: "the instance's state directory must be fr's".into(),
    };
    let sock =
        net::socket_with(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)
            .map_err(fail)?;
    let addr = SocketAddrUnix::new(path).map_err(fail)?;
    net::bind(&sock, &addr).map_err(fail)?;
    net::listen(&sock, 16).map_err(fail)?;
    Ok(sock)
}

/// A connection to the monitor of `info`.
fn connect(info: &Info) -> Result<OwnedFd, Error> {
    let path = info.dir.join("monitor.sock");
    let fail = |e: rustix::io::Errno| Error::Instance {
        why: format!(
            "instance {}: its monitor does not answer at {}: {e}",
            info.name,
            path.display()
        ),
        hint: format!("fr instance stop {} ends it", info.name),
    };
    let sock =
        net::socket_with(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)
            .map_err(fail)?;
    net::connect(&sock, &SocketAddrUnix::new(&path).map_err(fail)?).map_err(fail)?;
    Ok(sock)
}

fn send_msg(
    sock: BorrowedFd<'_>,
    text: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<(), rustix::io::Errno> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(8))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        control.push(SendAncillaryMessage::ScmRights(fds));
    }
    net::sendmsg(sock, &[IoSlice::new(text)], &mut control, SendFlags::empty())?;
    Ok(())
}

/// One message and the descriptors that came with it; empty at end of
/// file.
fn recv_msg(sock: BorrowedFd<'_>) -> Result<(Vec<u8>, Vec<OwnedFd>), rustix::io::Errno> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(8))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = loop {
        match net::recvmsg(
            sock,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other?,
        }
    };
    let mut fds = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(got) = msg {
            fds.extend(got);
        }
    }
    buf.truncate(got.bytes);
    Ok((buf, fds))
}

/// How deep process `pid` is in nested pid namespaces, seen from fr's
/// `/proc` (the `NSpid` line of its status: one pid per level). Status
/// files are readable without ptrace access, which the monitor, in the
/// container's user namespace in subuid mode, does not have to the
/// user's processes outside it.
fn pid_depth(pid: &str) -> Option<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    Some(line.split_whitespace().count())
}

/// The monitor's side, from its fork on.
struct Monitor {
    name: String,
    image: PathBuf,
    dir: PathBuf,
    /// Held for the monitor's whole life (never read: its `flock` is).
    _lock: std::fs::File,
    listener: OwnedFd,
    /// Where `start` waits for the word that the instance is up (closed
    /// once said).
    report: Option<OwnedFd>,
}

/// What the socket thread shares with the monitor's main thread.
struct Serving<'s> {
    sup: Option<&'s Supervisor>,
    shared: &'s Shared,
    namespace: &'static str,
    fakeroot: bool,
    /// The monitor's depth in nested pid namespaces: only processes of its
    /// own pid namespace may ask, not the instance's (a level deeper).
    depth: Option<usize>,
    /// A stop asked through the socket: its signal and timeout.
    stop: std::sync::Mutex<Option<(i32, Duration)>>,
}

impl Monitor {
    /// Runs the instance; never returns.
    fn run(mut self, opts: &ExecOptions) -> ! {
        let depth = pid_depth("self");
        let outcome = self.up(opts, depth);
        if let Err(e) = outcome {
            let hint = e.hint().map(|h| h.to_string()).unwrap_or_default();
            if let Some(report) = &self.report {
                let _ = rustix::io::write(report, format!("E{e}\n{hint}").as_bytes());
            }
            log::error!("{e}");
            remove_state(&self.dir);
            sys::exit_now(1);
        }
        sys::exit_now(0)
    }

    fn up(&mut self, opts: &ExecOptions, depth: Option<usize>) -> Result<(), Error> {
        let mut session = Session::prepare(opts, true, true, true)?;
        let (ours, theirs) =
            channel::pair().map_err(Error::sys("creating the container channel"))?;
        let pid = session.start(theirs.as_fd())?;
        drop(theirs);
        session.handshake(pid, &ours)?;
        drop(ours);
        let Some(shared) = session.shared.take() else {
            init::forward(pid, libc::SIGKILL);
            job::wait(pid, None);
            return Err(Error::Setup("the container's init did not share its namespaces".into()));
        };
        let namespace = match session.mode {
            UsernsMode::Subuid(_) => "subuid",
            UsernsMode::RootMapped => "root-mapped",
            UsernsMode::None => "none",
        };
        let info = Info {
            name: self.name.clone(),
            pid: std::process::id() as i32,
            start_time: start_time("self").unwrap_or(0),
            image: self.image.canonicalize().unwrap_or_else(|_| self.image.clone()),
            ports: opts.net.iter().flat_map(|n| n.ports.iter().map(|p| p.to_string())).collect(),
            network: match (&opts.net, &session.helper) {
                (None, _) => String::new(),
                (Some(_), Some(h)) => h.name().to_string(),
                (Some(_), None) => "none".into(),
            },
            helper_pid: session.helper.as_ref().map_or(0, |h| h.pid()),
            fakeroot: opts.fakeroot,
            mode: namespace.into(),
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            dir: self.dir.clone(),
        };
        let tmp = self.dir.join("instance.json.tmp");
        std::fs::write(&tmp, format!("{:#}\n", info.json()))
            .and_then(|()| std::fs::rename(&tmp, self.dir.join("instance.json")))
            .map_err(|e| Error::Instance {
                why: format!("writing {}: {e}", self.dir.join("instance.json").display()),
                hint: "the instance's state directory must be fr's".into(),
            })?;
        if let Some(report) = self.report.take() {
            // `start` returns once the pipe closes.
            let _ = rustix::io::write(&report, b"U");
        }
        log::info!("instance {} is up (monitor pid {})", self.name, info.pid);
        let serving = Serving {
            sup: session.sup.as_ref(),
            shared: &shared,
            namespace,
            fakeroot: opts.fakeroot,
            depth,
            stop: std::sync::Mutex::new(None),
        };
        let listener = self.listener.as_fd();
        let code = std::thread::scope(|scope| {
            let served = std::thread::Builder::new()
                .name("fr-monitor".into())
                .spawn_scoped(scope, || serve(listener, &serving));
            if let Err(e) = &served {
                log::error!(
                    "starting the monitor's socket thread: {e}; joining and stop by socket are off"
                );
            }
            let code = wait(pid, &serving);
            // Wakes the socket thread's accept (EINVAL) so that it ends.
            let _ = net::shutdown(&self.listener, net::Shutdown::Both);
            code
        });
        drop(shared);
        let code = session.finish(code);
        log::info!("instance {} stopped (status {code})", self.name);
        remove_state(&self.dir);
        Ok(())
    }
}

/// The monitor's main thread: waits until the container ends by itself
/// or a stop comes (its socket, or a signal sent to the monitor); returns
/// the container's status.
fn wait(outer: i32, serving: &Serving<'_>) -> i32 {
    let child = Pid::from_raw(outer);
    let ended = || {
        rustix::process::waitpid(child, WaitOptions::NOHANG)
            .ok()
            .flatten()
            .map(|(_, status)| init::exit_code(status))
    };
    loop {
        match sys::wait_signal() {
            Ok(c) if c.signal == libc::SIGCHLD => {
                if let Some(code) = ended() {
                    log::info!("the container ended by itself");
                    return code;
                }
            }
            Ok(c)
                if matches!(
                    c.signal,
                    libc::SIGTERM | libc::SIGINT | libc::SIGHUP | libc::SIGQUIT
                ) =>
            {
                let asked = serving.stop.lock().unwrap_or_else(|e| e.into_inner()).take();
                let (signal, timeout) = asked.unwrap_or((libc::SIGTERM, DEFAULT_TIMEOUT));
                return stop_container(outer, signal, timeout);
            }
            Ok(_) => {}
            Err(_) => return stop_container(outer, libc::SIGKILL, Duration::ZERO),
        }
    }
}

/// Sends `signal` to the container (its init passes it to every process of
/// the instance) and waits up to `timeout` for it to end, then kills it.
fn stop_container(outer: i32, signal: i32, timeout: Duration) -> i32 {
    let child = Pid::from_raw(outer);
    log::info!("stopping the instance (signal {signal}, {}s before SIGKILL)", timeout.as_secs());
    init::forward(outer, signal);
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Ok(Some((_, status))) = rustix::process::waitpid(child, WaitOptions::NOHANG) {
            return init::exit_code(status);
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let _ = sys::wait_signal_for(&[libc::SIGCHLD], left);
    }
    log::info!("the instance's processes did not end in time: killing them");
    // The outer process kills the init and waits until the kernel has
    // ended every process of its pid namespace.
    sys::send_signal(outer, sys::kill_child_signal());
    rustix::process::waitpid(child, WaitOptions::empty())
        .ok()
        .flatten()
        .map_or(137, |(_, status)| init::exit_code(status))
}

/// The monitor's socket thread: one request per connection.
fn serve(listener: BorrowedFd<'_>, serving: &Serving<'_>) {
    let mut kept = Vec::new();
    loop {
        let conn = match net::accept_with(listener, SocketFlags::CLOEXEC) {
            Ok(conn) => conn,
            Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNABORTED) => continue,
            Err(_) => return,
        };
        let _ = net::sockopt::set_socket_timeout(
            &conn,
            net::sockopt::Timeout::Recv,
            Some(Duration::from_secs(30)),
        );
        if let Err(why) = allowed(&conn, serving) {
            log::warn!("refused a request on the monitor's socket: {why}");
            refuse(&conn, &why);
            continue;
        }
        let Ok((msg, _)) = recv_msg(conn.as_fd()) else { continue };
        match msg.first() {
            Some(b'S') => {
                let text = String::from_utf8_lossy(&msg[1..]).into_owned();
                let mut words = text.split_whitespace();
                let signal = words.next().and_then(|s| s.parse().ok()).unwrap_or(libc::SIGTERM);
                let timeout = words
                    .next()
                    .and_then(|s| s.parse().ok())
                    .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
                *serving.stop.lock().unwrap_or_else(|e| e.into_inner()) = Some((signal, timeout));
                // Kept open: the caller waits for it to close, at the
                // monitor's exit.
                kept.push(conn);
                let _ = rustix::process::kill_process(
                    rustix::process::getpid(),
                    rustix::process::Signal::TERM,
                );
            }
            Some(b'J') => {
                if let Err(why) = welcome(conn.as_fd(), serving) {
                    log::warn!("a session could not join: {why}");
                    refuse(&conn, &why);
                }
            }
            _ => {}
        }
    }
}

/// Says why a request is refused, then waits (a few seconds at most) for
/// the caller to close its end: closing first could reset the caller's
/// end before it has read the answer.
fn refuse(conn: &OwnedFd, why: &str) {
    if send_msg(conn.as_fd(), format!("E{why}").as_bytes(), &[]).is_err() {
        return;
    }
    let _ = net::sockopt::set_socket_timeout(
        conn,
        net::sockopt::Timeout::Recv,
        Some(Duration::from_secs(5)),
    );
    while matches!(recv_msg(conn.as_fd()), Ok((m, _)) if !m.is_empty()) {}
}

/// Who may ask: the user, from the monitor's own pid namespace (not a
/// process of the instance, nor of another container).
fn allowed(conn: &OwnedFd, serving: &Serving<'_>) -> Result<(), String> {
    let cred = net::sockopt::socket_peercred(conn).map_err(|e| format!("SO_PEERCRED: {e}"))?;
    if cred.uid != rustix::process::getuid() {
        return Err(format!("uid {} is not the instance's user", cred.uid.as_raw()));
    }
    let pid = cred.pid.as_raw_nonzero().get().to_string();
    match (pid_depth(&pid), serving.depth) {
        (Some(theirs), Some(ours)) if theirs == ours => Ok(()),
        _ => Err(format!(
            "pid {pid} is not in the pid namespace the instance was started from (a process of \
             the instance, or of another container, may not ask)"
        )),
    }
}

/// Hands a joining session the instance's namespaces and root, then serves
/// its workload's listener with the instance's supervisor.
fn welcome(conn: BorrowedFd<'_>, serving: &Serving<'_>) -> Result<(), String> {
    let about = json!({"fakeroot": serving.fakeroot, "namespace": serving.namespace});
    let fds: Vec<BorrowedFd<'_>> = serving.shared.fds().into_iter().map(|f| f.as_fd()).collect();
    send_msg(conn, format!("J{about}").as_bytes(), &fds).map_err(|e| format!("sending: {e}"))?;
    if !serving.fakeroot {
        return Ok(());
    }
    let (msg, mut fds) = recv_msg(conn).map_err(|e| format!("receiving: {e}"))?;
    if msg.first() != Some(&b'L') || fds.is_empty() {
        return Err("the joining session sent no listener".into());
    }
    let v: serde_json::Value =
        serde_json::from_slice(&msg[1..]).map_err(|e| format!("its message: {e}"))?;
    let keys: Vec<fr_emulator::InodeKey> = v
        .get("passed_in")
        .and_then(|k| k.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|k| {
                    Some(fr_emulator::InodeKey {
                        dev: k.get(0)?.as_u64()?,
                        ino: k.get(1)?.as_u64()?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let root_mount = v.get("root_mount").and_then(|m| m.as_u64());
    let Some(sup) = serving.sup else { return Err("the instance has no supervisor".into()) };
    sup.pass_in(keys);
    sup.serve(fds.remove(0), root_mount).map_err(|e| format!("serving its listener: {e}"))?;
    send_msg(conn, b"K", &[]).map_err(|e| format!("answering: {e}"))?;
    Ok(())
}

/// Stops instance `info`: asks its monitor, and waits until the monitor
/// has ended (its store saved). A monitor that does not answer, or does
/// not end `timeout` plus a grace period after, is killed through a pidfd
/// (its journal keeps every change it answered).
pub fn stop(info: &Info, signal: i32, timeout: Duration) -> Result<(), Error> {
    // The pidfd is opened while the start time still matches: the process
    // it names cannot be another.
    let pidfd = Pid::from_raw(info.pid)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    if !alive(info) {
        remove_state(&info.dir);
        return Ok(());
    }
    let asked = connect(info).and_then(|sock| {
        send_msg(sock.as_fd(), format!("S {signal} {}", timeout.as_secs()).as_bytes(), &[])
            .map_err(|e| Error::Instance {
                why: format!("asking instance {} to stop: {e}", info.name),
                hint: String::new(),
            })?;
        Ok(sock)
    });
    let grace = timeout + Duration::from_secs(30);
    let ended = match (&asked, &pidfd) {
        (Ok(sock), _) => {
            let _ =
                net::sockopt::set_socket_timeout(sock, net::sockopt::Timeout::Recv, Some(grace));
            // End of file: the monitor has exited.
            matches!(recv_msg(sock.as_fd()), Ok((m, _)) if m.is_empty())
        }
        (Err(e), _) => {
            log::warn!("{e}; killing its monitor");
            false
        }
    };
    if !ended {
        if let Some(fd) = &pidfd {
            let _ = rustix::process::pidfd_send_signal(fd, rustix::process::Signal::KILL);
            let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
            let _ = rustix::event::poll(
                &mut fds,
                Some(&rustix::event::Timespec { tv_sec: 10, tv_nsec: 0 }),
            );
        }
        remove_state(&info.dir);
        return Ok(());
    }
    // The monitor is gone once its pidfd is readable.
    if let Some(fd) = &pidfd {
        let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
        let _ = rustix::event::poll(
            &mut fds,
            Some(&rustix::event::Timespec { tv_sec: 10, tv_nsec: 0 }),
        );
    }
    Ok(())
}

/// Runs `opts.command` in the running instance `info` (see the module doc)
/// and returns its status.
pub fn join(info: &Info, opts: &ExecOptions) -> Result<i32, Error> {
    let sock = connect(info)?;
    let fail = |what: &str, e: String| Error::Instance {
        why: format!("joining instance {}: {what}: {e}", info.name),
        hint: format!("fr instance list shows whether it runs; see {}", info.err_log().display()),
    };
    send_msg(sock.as_fd(), b"J", &[]).map_err(|e| fail("asking", e.to_string()))?;
    let (msg, fds) = recv_msg(sock.as_fd()).map_err(|e| fail("its answer", e.to_string()))?;
    if msg.first() == Some(&b'E') {
        return Err(fail("refused", String::from_utf8_lossy(&msg[1..]).into_owned()));
    }
    if msg.first() != Some(&b'J') {
        return Err(fail("its answer", "the monitor ended".into()));
    }
    let about: serde_json::Value =
        serde_json::from_slice(&msg[1..]).map_err(|e| fail("its answer", e.to_string()))?;
    let shared =
        Shared::from_fds(fds).ok_or_else(|| fail("its answer", "namespaces missing".into()))?;
    let fakeroot = about.get("fakeroot").and_then(|f| f.as_bool()).unwrap_or(false);
    let namespace = match about.get("namespace").and_then(|n| n.as_str()) {
        Some("subuid") => Namespace::Subuid,
        _ => Namespace::RootMapped,
    };
    let sup = if fakeroot {
        let config = Config {
            ids: fr_emulator::IdMap::with_subordinates(0, 0, &[], &[]),
            workers: 1,
            sync_wakeup: false,
            continue_all: false,
            passed_in: Vec::new(),
            namespace,
        };
        Some(Supervisor::new(config)?)
    } else {
        None
    };
    let passed_in = run::passed_in();
    let (ours, theirs) = channel::pair().map_err(Error::sys("creating the container channel"))?;
    sys::block_signals().map_err(Error::sys("blocking signals"))?;
    enter(&shared).map_err(|e| fail("entering its namespaces", e))?;
    sys::make_undumpable().map_err(Error::sys("making fr undumpable"))?;
    let terminal = job::Terminal::foreground();
    let command = run::command(opts)?;
    let pid = match sys::fork_with(0).map_err(Error::sys("forking the command"))? {
        Forked::Child => {
            drop(ours);
            job::lead(terminal);
            workload::run(&command, theirs, sup.as_ref().map(Supervisor::program), false)
        }
        Forked::Parent(pid) => pid,
    };
    job::started(pid, terminal);
    drop(theirs);
    drop(shared);
    let handed = match channel::recv(&ours).map_err(Error::sys("reading from the command"))? {
        Message::Listener { fd, root_mount } => {
            let keys: Vec<[u64; 2]> = passed_in.iter().map(|k| [k.dev, k.ino]).collect();
            let text = json!({"passed_in": keys, "root_mount": root_mount});
            send_msg(sock.as_fd(), format!("L{text}").as_bytes(), &[fd.as_fd()])
                .map_err(|e| fail("handing over the listener", e.to_string()))
                .and_then(|()| {
                    drop(fd);
                    match recv_msg(sock.as_fd()) {
                        Ok((m, _)) if m.first() == Some(&b'K') => Ok(()),
                        Ok((m, _)) if m.first() == Some(&b'E') => {
                            Err(fail("refused", String::from_utf8_lossy(&m[1..]).into_owned()))
                        }
                        _ => Err(fail("the monitor's answer", "it ended".into())),
                    }
                })
        }
        Message::Ready => Ok(()),
        Message::Failed(why) => Err(Error::Setup(why)),
        Message::Closed => Err(Error::Vanished),
        Message::Shared(_) => Err(fail("the command", "an unexpected message".into())),
    };
    if let Err(e) = handed {
        init::forward(pid, libc::SIGKILL);
        job::wait(pid, terminal);
        return Err(e);
    }
    drop(ours);
    drop(sock);
    Ok(job::wait(pid, terminal))
}

/// Enters the instance's namespaces (the user namespace first: it gives
/// the capabilities the others need) and makes its root this process's.
fn enter(shared: &Shared) -> Result<(), String> {
    // Compared before any is joined: /proc/self is the container's after
    // the mount namespace.
    let steps: [(&str, &OwnedFd); 6] = [
        ("user", &shared.user),
        ("mount", &shared.mnt),
        ("ipc", &shared.ipc),
        ("uts", &shared.uts),
        ("network", &shared.net),
        ("pid", &shared.pid),
    ];
    // A namespace the instance shares with the host (the network's,
    // without --net) is already this process's, and joining it again
    // would need the host's capabilities.
    let own: Vec<bool> = steps.iter().map(|(what, fd)| same_namespace(fd, what)).collect();
    for ((what, fd), own) in steps.into_iter().zip(own) {
        if own {
            continue;
        }
        sys::setns(fd.as_fd()).map_err(|e| format!("the {what} namespace: {e}"))?;
    }
    rustix::process::fchdir(&shared.root).map_err(|e| format!("its root: {e}"))?;
    rustix::process::chroot(".").map_err(|e| format!("chroot into its root: {e}"))?;
    rustix::process::chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    Ok(())
}

/// Whether `fd` is the namespace of kind `what` this process is in.
fn same_namespace(fd: &OwnedFd, what: &str) -> bool {
    let file = match what {
        "user" => "user",
        "mount" => "mnt",
        "network" => "net",
        other => other,
    };
    let (Ok(theirs), Ok(ours)) =
        (rustix::fs::fstat(fd), rustix::fs::stat(format!("/proc/self/ns/{file}")))
    else {
        return false;
    };
    (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino)
}

/// Writes the `fr instance list` table to `out`.
pub fn table(infos: &[Info], logs: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let mut rows = vec![vec!["NAME".to_string(), "PID".into(), "IMAGE".into(), "PORTS".into()]];
    if logs {
        rows[0].push("LOGS".into());
    }
    for i in infos {
        let mut row = vec![
            i.name.clone(),
            i.pid.to_string(),
            i.image.display().to_string(),
            if i.ports.is_empty() { "-".into() } else { i.ports.join(",") },
        ];
        if logs {
            row.push(format!("{} {}", i.out_log().display(), i.err_log().display()));
        }
        rows.push(row);
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(
                |(c, v)| {
                    if c + 1 == row.len() {
                        v.clone()
                    } else {
                        format!("{v:<w$}", w = widths[c])
                    }
                },
            )
            .collect();
        writeln!(out, "{}", line.join("  "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_directory() {
        for good in ["web", "a", "db-1.test_2", "X9"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "-x", "a/b", "a b", "é", &"x".repeat(65)] {
            let e = check_name(bad).unwrap_err();
            assert!(e.hint().unwrap().contains("1 to 64"), "{bad}");
        }
    }

    #[test]
    fn the_state_reads_back() {
        let dir = std::env::temp_dir().join(format!("fr-instance-{}", std::process::id()));
        let info = Info {
            name: "web".into(),
            pid: 42,
            start_time: 1234,
            image: "/img".into(),
            ports: vec!["18080:80/tcp".into()],
            network: "pasta".into(),
            helper_pid: 43,
            fakeroot: true,
            mode: "subuid".into(),
            started: 99,
            dir: dir.clone(),
        };
        assert_eq!(Info::from_json(&dir, &info.json()), Some(info.clone()));
        let mut out = Vec::new();
        table(&[info], true, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "NAME  PID  IMAGE  PORTS         LOGS\nweb   42   /img   18080:80/tcp  "
            ),
            "{text}"
        );
    }

    #[test]
    fn a_start_time_is_read_past_a_name_with_parentheses() {
        let me = start_time("self").unwrap();
        assert!(me > 0);
        assert_eq!(start_time(&std::process::id().to_string()), Some(me));
        assert_eq!(start_time("0"), None);
    }
}
