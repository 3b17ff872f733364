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
    /// What runs instead when `argv[0]` does not exist: the image's
    /// `/bin/sh` for a shell asked for without a command, when the image
    /// has no `/bin/bash` (see [`shell`]); or the command itself, run
    /// directly, when the image has no `/bin/sh` to run its action script.
    pub fallback: Option<Vec<CString>>,
    /// The fallback is the other shell (named in `$SHELL`), not the
    /// command run directly.
    pub fallback_is_shell: bool,
    /// Whether the command runs in an image (its messages say where the
    /// search was).
    pub image: bool,
    /// Where it starts: the first of these it can enter; where it is when
    /// none can (`/` in an image), unless `strict_cwd`.
    pub cwd: Vec<std::path::PathBuf>,
    /// The first of `cwd` must be entered (`--pwd`).
    pub strict_cwd: bool,
}

impl Command {
    fn envp(&self) -> Vec<CString> {
        self.env.iter().filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok()).collect()
    }

    fn path_var(&self) -> &str {
        self.env.iter().find(|(k, _)| k == "PATH").map_or("/usr/bin:/bin", |(_, v)| v)
    }
}

/// The shell `fr exec` runs when it is given no command, and the one to
/// fall back to: on the host tree `$SHELL`, else `/bin/sh`, as `fakeroot`
/// does; in an image `/bin/bash --norc`, else `/bin/sh`, as Apptainer's
/// `shell` does (the caller's `$SHELL` names a program of the host, which
/// the image may not have, and `--norc` keeps a bash from reading start-up
/// files meant for another system). The shell reads commands from stdin
/// when it is not a terminal, so `echo 'id -u' | fr exec -f IMAGE` works.
pub fn shell(image: bool) -> (Vec<CString>, Option<Vec<CString>>) {
    let c = |s: &str| CString::new(s).unwrap_or_default();
    if image {
        return (vec![c("/bin/bash"), c("--norc")], Some(vec![c("/bin/sh")]));
    }
    let shell = std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .and_then(|s| CString::new(s.into_encoded_bytes()).ok())
        .unwrap_or_else(|| c("/bin/sh"));
    (vec![shell], None)
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
    enter_cwd(cmd);
    exec(cmd)
}

/// Enters the first directory of `cmd.cwd` that can be entered; fails as
/// a command that cannot run when `strict_cwd` and the first cannot.
fn enter_cwd(cmd: &Command) {
    for (n, dir) in cmd.cwd.iter().enumerate() {
        match rustix::process::chdir(dir) {
            Ok(()) => {
                if n > 0 {
                    log::debug!(
                        "starting in {}: {} cannot be entered",
                        dir.display(),
                        cmd.cwd[0].display()
                    );
                }
                return;
            }
            Err(e) if n == 0 && cmd.strict_cwd => failed(
                &format!("--pwd {}: {e} in the container", dir.display()),
                "give a directory that exists in the image or in a bind",
                126,
            ),
            Err(_) => {}
        }
    }
}

/// Makes the kernel's supplementary groups real root's, `[0]` (what a
/// root login's `initgroups` leaves), where the namespace lets the
/// process set them (subuid mode; a root-mapped namespace denies
/// `setgroups`, and fr's record answers alone there). The kernel then
/// holds the workload's fake credentials from the start, which lets fr
/// hand it the workload's later `set*id` calls to make as well
/// (`fr_supervisor::handlers::ident`).
pub fn join_root_group() {
    let _ = rustix::thread::set_thread_groups(&[rustix::process::Gid::ROOT]);
}

/// The id of the mount that is this process's root: in an image, the
/// image itself, the one mount whose files fr changes as fake root would.
fn root_mount() -> Option<u64> {
    use rustix::fs::{statx, AtFlags, StatxFlags, CWD};
    let st = statx(CWD, "/", AtFlags::empty(), StatxFlags::MNT_ID).ok()?;
    (st.stx_mask & StatxFlags::MNT_ID.bits() != 0).then_some(st.stx_mnt_id)
}

/// `execvp`: searches `PATH` unless the name has a slash. Exits 127 when
/// the command is not found and 126 when it cannot be run, as shells do,
/// saying why and where it looked.
fn exec(cmd: &Command) -> ! {
    let name = cmd.argv[0].as_bytes();
    let mut envp = cmd.envp();
    let shown = String::from_utf8_lossy(name).into_owned();
    if name.contains(&b'/') {
        let e = sys::execve(&cmd.argv[0], &cmd.argv, &envp);
        if let (Errno::NOENT, Some(fallback), false) = (e, &cmd.fallback, exists(&cmd.argv[0])) {
            if !cmd.fallback_is_shell {
                // No /bin/sh for the action script: the command alone,
                // without the image's environment scripts.
                log::debug!(
                    "{shown} is not in the image: {} runs without the image's environment scripts",
                    fallback[0].to_string_lossy()
                );
                let direct = Command { argv: fallback.clone(), fallback: None, ..cmd.clone() };
                exec(&direct)
            }
            // The shell asked for is not there: the other one, named in
            // $SHELL as the shell that runs.
            envp.retain(|v| !v.as_bytes().starts_with(b"SHELL="));
            envp.extend(CString::new([b"SHELL=", fallback[0].as_bytes()].concat()).ok());
            let again = sys::execve(&fallback[0], fallback, &envp);
            if again == Errno::NOENT && !exists(&fallback[0]) {
                failed(
                    &format!(
                        "no shell to run: the image has neither {shown} nor {}",
                        fallback[0].to_string_lossy()
                    ),
                    "give the command to run after IMAGE: fr exec IMAGE CMD [ARG...]",
                    127,
                );
            }
            cannot_run(&fallback[0], again, cmd.image);
        }
        cannot_run(&cmd.argv[0], e, cmd.image);
    }
    // The first file found that could not be run, and why (as shells say
    // "permission denied" only when no later directory has the command).
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
            Errno::NOENT | Errno::NOTDIR if !exists(&full) => {}
            // A directory of PATH that cannot be searched, or a
            // directory of that name, is no command, as for bash.
            Errno::ACCESS if exists(&full) && !is_dir(&full) => {
                denied.get_or_insert((full, Errno::ACCESS));
            }
            Errno::ACCESS => {}
            e => cannot_run(&full, e, cmd.image),
        }
    }
    if let Some((full, e)) = denied {
        cannot_run(&full, e, cmd.image);
    }
    let (error, hint) = if cmd.image {
        (
            format!("{shown}: command not found in the image (PATH inside it: {})", cmd.path_var()),
            "install it in the image, or give its path inside the image",
        )
    } else {
        (
            format!("{shown}: command not found (PATH: {})", cmd.path_var()),
            "give its path, or set PATH for fr",
        )
    };
    failed(&error, hint, 127)
}

/// Whether `path` names a file, following symbolic links: an `ENOENT`
/// from `execve` for a file that exists is its interpreter's. (`access`,
/// which fr does not intercept.)
fn exists(path: &CString) -> bool {
    rustix::fs::access(path.as_c_str(), rustix::fs::Access::EXISTS).is_ok()
}

/// Whether `path` is a directory. Not by `stat`: the workload is not
/// dumpable until its `execve`, so the supervisor could not read the call
/// (an open without `O_CREAT` is none of its business).
fn is_dir(path: &CString) -> bool {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rustix::fs::open(path.as_c_str(), flags, Mode::empty()).is_ok()
}

/// Says why `path` could not be run and exits as a shell would: 127 when
/// it, or the program that would run it, is missing, else 126.
fn cannot_run(path: &CString, e: Errno, image: bool) -> ! {
    let shown = path.to_string_lossy();
    let is_dir = is_dir(path);
    let inside = if image { " in the image" } else { "" };
    match e {
        Errno::NOENT if exists(path) => failed(
            &format!(
                "cannot run {shown}: the program that would run it is missing{inside} (the \
                 interpreter its #! line names, or its ELF loader)"
            ),
            "a dynamically linked program needs its loader and libraries where it runs; \
             a script needs its interpreter",
            127,
        ),
        Errno::NOENT | Errno::NOTDIR => failed(
            &format!("{shown}: no such file{inside}"),
            "check the path; without a slash the command is searched in PATH",
            127,
        ),
        _ if is_dir => failed(
            &format!("cannot run {shown}: it is a directory"),
            "give the program to run, e.g. sh -c 'cd DIR && CMD'",
            126,
        ),
        Errno::ACCESS => failed(
            &format!("cannot run {shown}: permission denied (is it executable?)"),
            "chmod +x it, or run it with its interpreter (sh FILE)",
            126,
        ),
        Errno::NOEXEC => failed(
            &format!(
                "cannot run {shown}: {e} (not a program for this machine, or a script without #!)"
            ),
            "run a script with its interpreter (sh FILE)",
            126,
        ),
        e => failed(&format!("cannot run {shown}: {e}"), "", 126),
    }
}

/// Prints `error` and `hint` as fr's messages and exits with `code`.
fn failed(error: &str, hint: &str, code: i32) -> ! {
    log::error!("{error}");
    if !hint.is_empty() {
        crate::log::hint(hint);
    }
    sys::exit_now(code)
}
