//! The process that becomes the command: it installs the seccomp filter on
//! itself, hands the listener to fr, and executes the command. Runs in a
//! freshly forked child, single-threaded.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};

use fr_supervisor::{filter, SockFilter};
use rustix::io::Errno;

use crate::channel;
use crate::sys;

/// The command line and environment the workload executes.
#[derive(Debug, Clone)]
pub struct Command {
    pub argv: Vec<CString>,
    pub env: Vec<(String, String)>,
}

impl Command {
    fn envp(&self) -> Vec<CString> {
        self.env.iter().filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok()).collect()
    }

    fn path_var(&self) -> &str {
        self.env.iter().find(|(k, _)| k == "PATH").map_or("/usr/bin:/bin", |(_, v)| v)
    }
}

/// Becomes the workload. `program` is the filter to install (none without
/// `--fakeroot`); `no_new_privs` is needed to install it outside a user
/// namespace. Reports setup failures on `chan`; never returns.
pub fn run(cmd: &Command, chan: OwnedFd, program: Option<&[SockFilter]>, no_new_privs: bool) -> ! {
    sys::unblock_all();
    sys::default_sigpipe();
    // Without its supervisor every intercepted call would fail: end too.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if no_new_privs {
        if let Err(e) = rustix::thread::set_no_new_privs(true) {
            channel::send_failure(chan.as_fd(), &format!("setting no_new_privs: {e}"));
            sys::exit_now(125);
        }
    }
    // Read before the filter is installed: statx is one of its calls, and
    // nothing would answer it before fr has the listener.
    let root = root_mount();
    let sent = match program {
        Some(program) => match filter::install(program) {
            Ok(listener) => channel::send_listener(chan.as_fd(), listener.as_fd(), root),
            Err(e) => {
                let why = match e {
                    Errno::BUSY => format!(
                        "installing the seccomp filter: {e}: this process already has a \
                         seccomp notifier (is fr running under fr or another supervisor?)"
                    ),
                    _ => format!("installing the seccomp filter (seccomp user notification, Linux 5.0+): {e}"),
                };
                channel::send_failure(chan.as_fd(), &why);
                sys::exit_now(125);
            }
        },
        None => channel::send_ready(chan.as_fd()),
    };
    if sent.is_err() {
        sys::exit_now(125);
    }
    drop(chan);
    exec(cmd)
}

/// The id of the mount that is this process's root: in an image, the
/// image itself, the one mount whose files fr changes as fake root would.
fn root_mount() -> Option<u64> {
    use rustix::fs::{statx, AtFlags, StatxFlags, CWD};
    let st = statx(CWD, "/", AtFlags::empty(), StatxFlags::MNT_ID).ok()?;
    (st.stx_mask & StatxFlags::MNT_ID.bits() != 0).then_some(st.stx_mnt_id)
}

/// `execvp`: searches `PATH` unless the name has a slash. Exits 127 when
/// the command is not found and 126 when it cannot be run, as shells do.
fn exec(cmd: &Command) -> ! {
    let name = cmd.argv[0].as_bytes();
    let envp = cmd.envp();
    let shown = String::from_utf8_lossy(name);
    if name.contains(&b'/') {
        let e = sys::execve(&cmd.argv[0], &cmd.argv, &envp);
        fail(&shown, e);
    }
    let mut denied = None;
    for dir in cmd.path_var().split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let mut full = dir.as_bytes().to_vec();
        full.push(b'/');
        full.extend_from_slice(name);
        let Ok(full) = CString::new(full) else {
            continue;
        };
        match sys::execve(&full, &cmd.argv, &envp) {
            Errno::NOENT | Errno::NOTDIR => {}
            Errno::ACCESS => denied = Some(Errno::ACCESS),
            e => fail(&shown, e),
        }
    }
    match denied {
        Some(e) => fail(&shown, e),
        None => {
            eprintln!("fr: {shown}: command not found");
            sys::exit_now(127)
        }
    }
}

fn fail(name: &str, e: Errno) -> ! {
    eprintln!("fr: {name}: {e}");
    sys::exit_now(if e == Errno::NOENT { 127 } else { 126 })
}
