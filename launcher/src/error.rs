//! What can stop `fr exec` before the command runs, each with the way out.

use std::borrow::Cow;

use rustix::io::Errno;

/// What went wrong underneath an error that names the file it happened to
/// (an `io::Error`, an `Errno`, a store's or an archive's own error, or a
/// sentence), kept as its source.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create a user namespace: {0}")]
    Userns(Errno),
    #[error("{0}")]
    Mode(String),
    #[error("running {program}: {why}")]
    MapHelper { program: String, why: String },
    #[error("--userns=none cannot make {0} the root: entering an image needs a user namespace")]
    ImageWithoutUserns(String),
    #[error("image {path}: {why}")]
    Image { path: String, why: String },
    /// IMAGE is missing, or a file: what it is, and what to do with it.
    #[error("image {path}: {why}")]
    NotAnImage { path: String, why: String, hint: String },
    #[error("writing {path}: {source}")]
    IdMap { path: String, source: std::io::Error },
    #[error("setting up the container: {0}")]
    Setup(String),
    /// The cache of OCI images cannot be made where the environment says.
    #[error("the cache of OCI images at {path}: {why}")]
    CacheDir { path: String, why: String },
    #[error("metadata store {path}: {source}")]
    Store { path: String, source: Cause },
    #[error("metadata store {path}: {why}")]
    Damaged { path: String, why: String },
    #[error("state file {path}: {why}")]
    DamagedState { path: String, why: String },
    #[error("state file {path}: {why}")]
    ForeignState { path: String, why: String },
    #[error("image {image} is in use by another fr session ({holder})")]
    InUse { image: String, holder: String },
    #[error("archive {path}: {source}")]
    Archive { path: String, source: Cause },
    #[error("importing {archive}: {source}")]
    Import { archive: String, source: Cause },
    /// An OCI image's layer could not be unpacked: `what` names the
    /// layer (or the image).
    #[error("unpacking {what}: {source}")]
    Layer { what: String, source: Cause },
    /// An OCI image cannot be read: what, and why.
    #[error(transparent)]
    Oci(#[from] fr_image::oci::OciError),
    /// What `fr import` was given is no tar archive it can read, and
    /// nothing was unpacked: what it is, and what to do with it.
    #[error("importing {archive}: {why}")]
    NotAnArchive { archive: String, why: String, hint: String },
    #[error("removing {path}: {why}")]
    Remove { path: String, why: String },
    #[error("refusing to remove {path}: {why}")]
    RemoveRefused { path: String, why: String },
    #[error("the container's init died before the command started")]
    Vanished,
    /// `--net` cannot be given: what is missing or refused, and the way out.
    #[error("{why}")]
    Network { why: String, hint: String },
    /// An instance command that cannot be done: why, and the way out.
    #[error("{why}")]
    Instance { why: String, hint: String },
    #[error(transparent)]
    Filter(#[from] fr_supervisor::FilterError),
    #[error("starting the supervisor's worker threads: {0}")]
    Workers(std::io::Error),
    #[error("{what}: {source}")]
    Sys { what: &'static str, source: Errno },
}

impl Error {
    pub fn sys(what: &'static str) -> impl FnOnce(Errno) -> Error {
        move |source| Error::Sys { what, source }
    }

    /// Whether the error is the process's descriptor limit (`EMFILE`, or
    /// the system's, `ENFILE`): any step can meet it, and what that step's
    /// own hint suggests (newuidmap's setup, a damaged store) is beside
    /// the point then.
    fn out_of_descriptors(&self) -> bool {
        let errno = |n: Option<i32>| matches!(n, Some(libc::EMFILE | libc::ENFILE));
        match self {
            Error::Userns(e) | Error::Sys { source: e, .. } => errno(Some(e.raw_os_error())),
            Error::IdMap { source, .. } | Error::Workers(source) => errno(source.raw_os_error()),
            // The rest carry the cause as text, which for a system call's
            // error ends in `(os error N)` (std's and rustix's Display).
            _ => {
                let text = self.to_string();
                [libc::EMFILE, libc::ENFILE]
                    .iter()
                    .any(|n| text.contains(&format!("(os error {n})")))
            }
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<Cow<'static, str>> {
        if self.out_of_descriptors() {
            return Some(Cow::Borrowed(
                "fr ran out of file descriptors: the limit on open files (ulimit -n) is too \
                 low for it; raise it (ulimit -n 1024) and run again",
            ));
        }
        match self {
            Error::NotAnImage { hint, .. }
            | Error::NotAnArchive { hint, .. }
            | Error::Network { hint, .. }
            | Error::Instance { hint, .. } => return Some(Cow::Owned(hint.clone())),
            _ => {}
        }
        let hint = match self {
            Error::Userns(_) => Some(
                "unprivileged user namespaces are off on this host (see sysctl \
                 user.max_user_namespaces, kernel.unprivileged_userns_clone, \
                 kernel.apparmor_restrict_unprivileged_userns); run without IMAGE \
                 with --userns=none for emulation alone",
            ),
            Error::Mode(_) => Some(
                "fr check shows what this host offers; root gives a user subordinate ranges \
                 with fr config fakeroot --add USER; --userns=root-mapped needs none",
            ),
            Error::MapHelper { .. } => Some(
                "newuidmap and newgidmap must be setuid root (Debian's uidmap package) and \
                 /etc/subuid and /etc/subgid must give you the ranges; --userns=root-mapped \
                 needs neither",
            ),
            Error::ImageWithoutUserns(_) => {
                Some("drop --userns=none, or run without IMAGE to work on the host tree")
            }
            Error::Image { .. } => Some(
                "IMAGE must be a directory holding a root file system you can read; a tree \
                 that a subuid-mode session left owned by subordinate ids is removed with \
                 fr rm IMAGE",
            ),
            Error::Remove { .. } => Some(
                "what was removed is gone and the rest is left as it was; files owned by \
                 ids outside your subordinate ranges (fr check lists them) need real root",
            ),
            Error::RemoveRefused { .. } => Some("nothing was removed"),
            Error::CacheDir { .. } => Some(
                "fr keeps OCI images it runs in $XDG_CACHE_HOME/fr (else ~/.cache/fr); set \
                 XDG_CACHE_HOME to a directory you can write",
            ),
            Error::IdMap { .. } => {
                Some("the kernel refused the id map; is /proc mounted read-write?")
            }
            Error::Store { .. } => Some(
                "nothing was changed; move IMAGE/.fr away to start without the fake metadata, \
                 or restore it from a copy of the image",
            ),
            Error::Damaged { .. } => Some(
                "nothing was changed or rewritten; fr fsck IMAGE shows the damage, and \
                 fr fsck --repair IMAGE keeps every intact entry and sets the damaged file \
                 aside",
            ),
            Error::DamagedState { .. } => Some(
                "the state file was not changed; fr fsck FILE shows the damage, and fr fsck \
                 --repair FILE keeps every intact entry and sets the damaged file aside",
            ),
            Error::ForeignState { .. } => Some(
                "a state file keeps its records by inode, for the tree it was written on: \
                 run fr import --state on the machine and file system of that session, then \
                 move the image with fr export and fr import",
            ),
            Error::InUse { .. } => {
                Some("wait for the other session to end, or work on a copy of the image")
            }
            Error::Archive { .. } => Some(
                "the image and its metadata store are unchanged; check the path named, \
                 or the space left where the archive goes",
            ),
            Error::Layer { .. } => Some(
                "nothing was kept: the image being unpacked was removed, and nothing was \
                 written outside it",
            ),
            Error::Import { .. } => Some(
                "nothing was written outside IMAGE; the members before this one are in IMAGE \
                 with their metadata: remove IMAGE to start over, or import a repaired archive",
            ),
            _ => None,
        };
        hint.map(Cow::Borrowed)
    }
}

/// IMAGE does not exist.
pub(crate) fn no_image(image: &std::path::Path) -> Error {
    Error::NotAnImage {
        path: image.display().to_string(),
        why: "no such directory".into(),
        hint: "IMAGE is a directory holding a root file system (fr import ARCHIVE IMAGE makes \
               one from a tar archive); to run a command on the host tree, put it after --: \
               fr exec -f -- CMD"
            .into(),
    }
}

/// IMAGE is a file: a tarball to import first, a SIF image to unpack
/// with Apptainer, or something else.
pub(crate) fn not_a_directory(image: &std::path::Path) -> Error {
    use crate::sniff::Kind;
    let kind = Kind::of_file(image);
    let shown = image.display();
    let hint = match kind {
        Kind::Sif => format!(
            "fr runs a directory holding a root file system; apptainer build --sandbox DIR \
             {shown} unpacks the SIF image into one"
        ),
        k if k.is_archive() => format!(
            "fr runs a directory holding a root file system; unpack the archive into one \
             first: fr import {shown} IMAGE, then fr exec -f IMAGE"
        ),
        _ => "IMAGE must be a directory holding a root file system".into(),
    };
    Error::NotAnImage {
        path: shown.to_string(),
        why: format!("it is {}, not a directory", kind.describe()),
        hint,
    }
}
