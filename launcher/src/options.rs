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

/// How the image is mounted as the root.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Root {
    /// Changes go to the image (fake root's default: a build step, a
    /// maintenance session).
    #[default]
    Writable,
    /// The image cannot be changed (`EROFS`), as Apptainer's sandboxes
    /// without `--writable`.
    ReadOnly,
    /// Changes go to a tmpfs laid over the image (overlayfs) and are gone
    /// when the session ends (`--writable-tmpfs`); the image and its store
    /// are left as they were.
    Tmpfs,
    /// An image others run at the same time, read-only (a cached OCI image,
    /// whose files are its layers'): the tmpfs layer of `Tmpfs` holds the
    /// session's mount points, then all is made read-only; the store is
    /// read under a shared lock and never written.
    Shared,
}

/// How a `--net` session reaches outside its network namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetHelper {
    /// pasta (Debian's `passt`), else slirp4netns.
    Auto,
    Pasta,
    Slirp4netns,
    /// Loopback only.
    None,
}

/// A `--network-args portmap=H:C/P` or `-p H:C/P`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortMap {
    pub host: u16,
    pub container: u16,
    pub udp: bool,
}

impl std::fmt::Display for PortMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}/{}", self.host, self.container, if self.udp { "udp" } else { "tcp" })
    }
}

impl std::str::FromStr for PortMap {
    type Err = String;

    /// `HOST:CONTAINER[/tcp|udp]`, podman's `-p` and Apptainer's portmap
    /// (`HOST` alone maps the same port).
    fn from_str(spec: &str) -> Result<Self, String> {
        let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
        let udp = match proto {
            "tcp" => false,
            "udp" => true,
            other => {
                return Err(format!("port map {spec:?}: unknown protocol {other:?} (tcp or udp)"))
            }
        };
        let (host, container) = ports.split_once(':').unwrap_or((ports, ports));
        let port = |s: &str, which: &str| -> Result<u16, String> {
            match s.parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(format!(
                    "port map {spec:?}: the {which} port {s:?} is no port number (1 to 65535); \
                     the form is HOST:CONTAINER[/tcp|udp]"
                )),
            }
        };
        Ok(PortMap { host: port(host, "host")?, container: port(container, "container")?, udp })
    }
}

/// `--net`: a network namespace of the container's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    pub helper: NetHelper,
    pub ports: Vec<PortMap>,
}

/// One `fr exec`.
#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// A directory holding a root file system; `None` keeps the host tree.
    pub image: Option<PathBuf>,
    pub command: Vec<OsString>,
    /// What runs instead of `command` when its program is not in the
    /// image (the action script's `/bin/sh`): the command itself.
    pub fallback: Vec<OsString>,
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
    /// The command's whole environment; `None`: fr's own, with the image's
    /// `PATH` (and root's `HOME`, `USER` and `LOGNAME` for fake root).
    pub env: Option<Vec<(String, String)>>,
    /// Where the command starts, inside: the first of these it can enter
    /// (`/` when none is given or none can be entered, unless `strict_cwd`).
    pub cwd: Vec<PathBuf>,
    /// The first of `cwd` must be entered, or the session fails (`--pwd`).
    pub strict_cwd: bool,
    /// Empty directories of the container's own (tmpfs), as `--contain`
    /// gives the home directory.
    pub tmpfs: Vec<PathBuf>,
    /// The container's host name (a UTS namespace is always its own).
    pub hostname: Option<String>,
    /// How the image is mounted.
    pub root: Root,
    /// A network namespace of the container's own, and how it reaches out.
    pub net: Option<Network>,
}

impl Default for ExecOptions {
    /// A session as `fr build`'s steps want it: the image writable, no
    /// bind of the caller's home or working directory, fr's environment.
    fn default() -> Self {
        ExecOptions {
            image: None,
            command: Vec::new(),
            fallback: Vec::new(),
            fakeroot: false,
            userns: Userns::Auto,
            binds: Vec::new(),
            workers: 1,
            sync_wakeup: true,
            continue_all: false,
            load_state: None,
            save_state: None,
            env: None,
            cwd: Vec::new(),
            strict_cwd: false,
            tmpfs: Vec::new(),
            hostname: None,
            root: Root::Writable,
            net: None,
        }
    }
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

    #[test]
    fn port_maps_parse_like_podman_and_apptainer() {
        let p: PortMap = "18080:80/tcp".parse().unwrap();
        assert_eq!(p, PortMap { host: 18080, container: 80, udp: false });
        let p: PortMap = "53:5353/udp".parse().unwrap();
        assert_eq!(p, PortMap { host: 53, container: 5353, udp: true });
        assert_eq!(
            "8080".parse::<PortMap>().unwrap(),
            PortMap { host: 8080, container: 8080, udp: false }
        );
        assert_eq!(p.to_string(), "53:5353/udp");
        for bad in ["0:80", "70000:80", "a:80", "80:80/sctp", ":80", ""] {
            let e = bad.parse::<PortMap>().unwrap_err();
            assert!(e.contains("port map"), "{bad}: {e}");
        }
    }
}
