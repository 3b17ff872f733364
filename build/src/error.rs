//! What stops a build, each with the way out.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SPEC cannot be read, or is none of the things fr builds from.
    #[error("{path}: {why}")]
    Spec { path: String, why: String, hint: String },
    /// The definition file is wrong at a line (the parser's error).
    #[error("{path}: {source}")]
    Definition { path: String, source: fr_image::def::DefError },
    /// The definition asks for what fr cannot do, found before anything
    /// was written.
    #[error("{what}")]
    Unsupported { what: String, hint: String },
    /// DEST cannot be built: it exists, or is of a kind fr does not write.
    #[error("{path}: {why}")]
    Dest { path: String, why: String, hint: String },
    /// A step's fr session, import or export failed (the launcher's error).
    #[error("{step}: {why}")]
    Step { step: String, why: String, hint: Option<String> },
    /// `%files` cannot copy what a line names.
    #[error("{step}: {why}")]
    Files { step: String, why: String, hint: String },
    /// A step's command failed.
    #[error("{step} failed (exit status {code})")]
    Failed { step: String, code: i32, hint: Option<String> },
    /// `%test` failed: the image is whole and kept for inspection.
    #[error("%test failed (exit status {code}): the image is not written to {dest}")]
    TestFailed { code: i32, dest: String, kept: PathBuf },
    /// The build was sent a signal that stops it (^C, kill).
    #[error("interrupted by {signal} during {step}")]
    Interrupted { step: String, signal: &'static str },
    /// The builder's own work on a file failed.
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

impl Error {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Spec { hint, .. }
            | Error::Unsupported { hint, .. }
            | Error::Dest { hint, .. }
            | Error::Files { hint, .. } => Some(hint.clone()),
            Error::Definition { .. } => {
                Some("nothing was built; fix the definition file at that line".into())
            }
            Error::Step { hint, .. } | Error::Failed { hint, .. } => hint.clone(),
            Error::TestFailed { kept, .. } => Some(format!(
                "the image that failed its test is kept at {k}: look into it with fr exec -f \
                 {k}, and remove it with fr rm {k}; fr build --notest skips the test",
                k = kept.display()
            )),
            Error::Interrupted { .. } => None,
            Error::Io { .. } => None,
        }
    }

    /// fr build's exit status for it: 128 + N for signal N, else 1.
    pub fn code(&self) -> u8 {
        match self {
            Error::Interrupted { signal, .. } => match *signal {
                "SIGHUP" => 129,
                "SIGINT" => 130,
                "SIGQUIT" => 131,
                _ => 143,
            },
            _ => 1,
        }
    }
}

/// A stopping signal's name.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGQUIT => "SIGQUIT",
        _ => "SIGTERM",
    }
}
