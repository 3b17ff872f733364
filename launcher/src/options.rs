//! What `fr exec` was asked to do.

use std::ffi::OsString;
use std::path::PathBuf;

/// How the workload gets its root identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Userns {
    /// The best mode the host offers.
    Auto,
    /// 0 mapped to the invoking user, 1.. to the user's subordinate ids.
    Subuid,
    /// A user namespace mapping 0 to the invoking user only.
    RootMapped,
    /// No namespace at all: emulation alone, like `fakeroot`.
    None,
}

/// A `--bind src[:dst[:ro|rw]]` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    pub src: PathBuf,
    pub dst: PathBuf,
    pub read_only: bool,
}

impl std::str::FromStr for Bind {
    type Err = String;

    /// Apptainer's form: `src[:dst[:opts]]`, `opts` being `ro` or `rw`.
    fn from_str(spec: &str) -> Result<Self, String> {
        let mut parts = spec.splitn(3, ':');
        let src = parts.next().filter(|s| !s.is_empty()).ok_or("a bind needs a source path")?;
        let dst = parts.next().filter(|d| !d.is_empty()).unwrap_or(src);
        let read_only = match parts.next() {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(other) => return Err(format!("unknown bind option {other:?}: use ro or rw")),
        };
        if !dst.starts_with('/') {
            return Err(format!("bind destination {dst:?} must be an absolute path"));
        }
        Ok(Bind { src: PathBuf::from(src), dst: PathBuf::from(dst), read_only })
    }
}

/// One `fr exec`.
#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// A directory holding a root file system; `None` keeps the host tree.
    pub image: Option<PathBuf>,
    pub command: Vec<OsString>,
    pub fakeroot: bool,
    pub userns: Userns,
    pub binds: Vec<Bind>,
    /// Supervisor worker threads at the start (one is fastest; more are
    /// added when all are held up).
    pub workers: usize,
    /// Ask for synchronous wake-ups of the workers (on by default).
    pub sync_wakeup: bool,
    /// Benchmarks only: the supervisor lets every call continue.
    pub continue_all: bool,
    /// Without an image: fake metadata to start from (`fakeroot -i`).
    pub load_state: Option<PathBuf>,
    /// Without an image: where the fake metadata is kept (`fakeroot -s`).
    pub save_state: Option<PathBuf>,
    /// Mount the image read-only (a cached OCI image).
    pub read_only: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_parse_like_apptainer() {
        let b: Bind = "/data".parse().unwrap();
        assert_eq!(
            (b.src.to_str(), b.dst.to_str(), b.read_only),
            (Some("/data"), Some("/data"), false)
        );
        let b: Bind = "/srv/x:/mnt:ro".parse().unwrap();
        assert_eq!(
            (b.src.to_str(), b.dst.to_str(), b.read_only),
            (Some("/srv/x"), Some("/mnt"), true)
        );
        assert!("/a:rel".parse::<Bind>().is_err());
        assert!("/a:/b:xx".parse::<Bind>().is_err());
        assert!("".parse::<Bind>().is_err());
    }
}
