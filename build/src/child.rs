//! Each step of a build that goes through the launcher (an fr session, an
//! import, an export, a removal) runs in a child of the builder
//! ([`crate::sys`] says why). The child reports the launcher's error, with
//! its hint, through a pipe; the builder names the step.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use fr_launcher::{Bind, ExecOptions, Userns};

use crate::error::{signal_name, Error};
use crate::sys::{self, Forked};

/// What a step in a child came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The step ran; its status (a session's: its command's).
    Exited(i32),
    /// The launcher failed before or around the command: its message and hint.
    Failed { why: String, hint: Option<String> },
}

/// A step running in a child.
#[derive(Debug)]
pub struct Running {
    name: String,
    pid: i32,
    report: OwnedFd,
}

/// Starts `step` in a child, with `stdin` and `stdout` as its standard
/// input and output if given (the ends of pipes between steps). The
/// child holds no other descriptor of the builder's
/// ([`sys::child_descriptors`]).
pub fn start(
    name: &str,
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    step: impl FnOnce() -> Result<i32, fr_launcher::Error>,
) -> Result<Running, Error> {
    let parent = std::process::id() as i32;
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::Io { what: format!("{name}: a pipe"), source: e.into() })?;
    match sys::fork().map_err(|e| Error::Io { what: format!("{name}: fork"), source: e.into() })? {
        Forked::Child => {
            let report = sys::child_descriptors(
                stdin.as_ref().map(AsRawFd::as_raw_fd),
                stdout.as_ref().map(AsRawFd::as_raw_fd),
                write.as_raw_fd(),
            );
            // Closed above, or in place as 0, 1 and 3.
            std::mem::forget((read, write, stdin, stdout));
            sys::die_with_parent(parent);
            sys::unblock_all();
            // The launcher says which mode runs at every session on a
            // terminal; the builder said it once already.
            if log::max_level() == log::LevelFilter::Info {
                log::set_max_level(log::LevelFilter::Warn);
            }
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(step));
            let (code, said) = match result {
                Ok(Ok(code)) => (code, None),
                Ok(Err(e)) => (125, Some(format!("{e}\0{}", e.hint().unwrap_or_default()))),
                Err(_) => (125, Some("fr panicked (a bug: please report it)\0".to_string())),
            };
            if let Some(said) = said {
                sys::write_fd(report, said.as_bytes());
            }
            sys::exit_now(code)
        }
        Forked::Parent(pid) => Ok(Running { name: name.into(), pid, report: read }),
    }
}

impl Running {
    /// Waits for the step, passing on the stopping signals the builder
    /// gets meanwhile; a signal sent to the builder makes this an
    /// [`Error::Interrupted`], whatever the child made of it.
    pub fn wait(self) -> Result<Outcome, Error> {
        let ended = sys::wait_child(self.pid);
        let mut said = Vec::new();
        let _ = std::fs::File::from(self.report).read_to_end(&mut said);
        if let Some(signal) = ended.signal.or_else(sys::pending) {
            return Err(Error::Interrupted { step: self.name, signal: signal_name(signal) });
        }
        if said.is_empty() {
            return Ok(Outcome::Exited(ended.code));
        }
        let said = String::from_utf8_lossy(&said);
        let (why, hint) = said.split_once('\0').unwrap_or((&said, ""));
        Ok(Outcome::Failed {
            why: why.to_string(),
            hint: (!hint.is_empty()).then(|| hint.to_string()),
        })
    }

    /// [`Running::wait`] for a step whose only success is status 0.
    pub fn must(self) -> Result<(), Error> {
        let name = self.name.clone();
        outcome(&name, self.wait()?, None)
    }
}

fn outcome(name: &str, outcome: Outcome, hint: Option<String>) -> Result<(), Error> {
    match outcome {
        Outcome::Exited(0) => Ok(()),
        Outcome::Exited(code) => Err(Error::Failed { step: name.into(), code, hint }),
        Outcome::Failed { why, hint } => Err(Error::Step { step: name.into(), why, hint }),
    }
}

/// Runs `step` in a child and waits for it ([`Running::wait`]).
pub fn run(
    name: &str,
    step: impl FnOnce() -> Result<i32, fr_launcher::Error>,
) -> Result<Outcome, Error> {
    start(name, None, None, step)?.wait()
}

/// [`run`] for a step whose only success is status 0.
pub fn must(
    name: &str,
    step: impl FnOnce() -> Result<i32, fr_launcher::Error>,
) -> Result<(), Error> {
    start(name, None, None, step)?.must()
}

/// The environment a step's command gets: the caller's as it is, or a
/// clean one (as `apptainer exec --cleanenv`), with these set.
#[derive(Clone, Debug, Default)]
pub struct Env {
    pub clean: bool,
    pub set: Vec<(String, String)>,
}

impl Env {
    /// Makes this the child's own environment, which the launcher hands
    /// on to the command (it sets `PATH`, `HOME`, `USER` in an image).
    /// Apptainer's own variables of the caller's never reach a step.
    fn apply(&self) {
        let vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        for (key, _) in &vars {
            let k = key.to_string_lossy();
            let keep = !self.clean || fr_image::action::ALWAYS_PASS.contains(&k.as_ref());
            if !keep || k.starts_with("APPTAINER_") || k.starts_with("SINGULARITY_") {
                std::env::remove_var(key);
            }
        }
        for (key, value) in &self.set {
            std::env::set_var(key, value);
        }
    }
}

/// One fr session.
#[derive(Clone, Debug)]
pub struct Session {
    /// `None`: the host tree.
    pub image: Option<PathBuf>,
    pub command: Vec<OsString>,
    pub userns: Userns,
    pub binds: Vec<Bind>,
    pub env: Env,
    /// Host tree: fake metadata to start from (`-i`) and to keep (`-s`).
    pub load_state: Option<PathBuf>,
    pub save_state: Option<PathBuf>,
}

impl Session {
    /// Runs the session in a child: its command's status, or the
    /// launcher's error.
    pub fn run(&self, name: &str) -> Result<Outcome, Error> {
        run(name, || {
            self.env.apply();
            let opts = ExecOptions {
                image: self.image.clone(),
                command: self.command.clone(),
                fakeroot: true,
                userns: self.userns,
                binds: self.binds.clone(),
                workers: 1,
                sync_wakeup: true,
                continue_all: false,
                load_state: self.load_state.clone(),
                save_state: self.save_state.clone(),
                // A build step: the image writable, fr's environment, no
                // bind of the caller's home or working directory.
                ..ExecOptions::default()
            };
            fr_launcher::exec(&opts)
        })
    }

    /// [`Session::run`] for a command that must succeed.
    pub fn must(&self, name: &str, hint: Option<String>) -> Result<(), Error> {
        outcome(name, self.run(name)?, hint)
    }
}

/// `fr import ARCHIVE IMAGE`.
pub fn import(name: &str, archive: &Path, image: &Path, progress: bool) -> Result<(), Error> {
    must(name, || {
        let opts = fr_launcher::import::ImportOptions {
            archive: archive.to_path_buf(),
            image: image.to_path_buf(),
            progress,
        };
        fr_launcher::import::import(&opts).map(|_| 0)
    })
}

/// `fr import --state FILE DIR`.
pub fn import_state(name: &str, state: &Path, dir: &Path) -> Result<(), Error> {
    must(name, || {
        let summary = fr_launcher::import::import_state(state, dir)?;
        log::debug!(
            "{}: {} of the {} records of {} name its files ({} paths)",
            dir.display(),
            summary.kept,
            summary.records,
            state.display(),
            summary.paths
        );
        Ok(0)
    })
}

/// The records of `images` by inode, as a state file a host-tree session
/// loads (`-i`), so that it sees their files as a session in them would.
pub fn export_state(name: &str, images: &[PathBuf], state: &Path) -> Result<(), Error> {
    must(name, || {
        let images: Vec<&Path> = images.iter().map(PathBuf::as_path).collect();
        let records = fr_launcher::export::export_state(&images, state)?;
        log::debug!("{}: {records} records", state.display());
        Ok(0)
    })
}

/// `fr export IMAGE OUT`, started (`-`: to `stdout`, the end of a pipe).
pub fn export(
    name: &str,
    image: &Path,
    out: &Path,
    stdout: Option<OwnedFd>,
    progress: bool,
    compression: Option<fr_launcher::export::Compression>,
) -> Result<Running, Error> {
    start(name, None, stdout, move || {
        let opts = fr_launcher::export::ExportOptions {
            image: image.to_path_buf(),
            out: out.to_path_buf(),
            compression,
            progress,
        };
        fr_launcher::export::export(&opts).map(|_| 0)
    })
}

/// `fr rm IMAGE`.
pub fn remove(image: &Path) -> Result<(), Error> {
    must(&format!("removing {}", image.display()), || {
        fr_launcher::remove::remove(image).map(|()| 0)
    })
}
