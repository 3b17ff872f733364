//! `--net`: the container's own network namespace, and the helper that
//! connects it to the host's network: pasta (Debian's `passt`), else
//! slirp4netns, as rootless podman runs them; or none (loopback only).
//!
//! The namespace is made by the container's init, in the same clone as its
//! user namespace, which so owns it; the init brings up loopback and opens
//! ports below 1024 and `ping` to the namespace's ids. fr starts the helper
//! once the init has handed it the namespaces' descriptors
//! ([`crate::channel::Shared`]): the helper is given them as
//! `/proc/self/fd/N`, joins the user namespace (the user owns it) and the
//! network namespace, makes its tap interface there, copies the host's
//! addresses and routes onto it, and binds the host ports of the port maps
//! in the host's namespace, as the user. The workload starts only once the
//! helper says it is ready.
//!
//! Lifetime: the helper is fr's child (the session's, or the instance
//! monitor's), kept in the foreground, with `SIGKILL` as its parent-death
//! signal; slirp4netns also ends when fr's end of its exit pipe closes.
//! The session's end stops it ([`Helper`]'s `Drop`), before the table is
//! saved; a killed fr takes it along. `docs/network.md` has the design.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::channel::Shared;
use crate::error::Error;
use crate::options::{NetHelper, Network, PortMap};

/// The address pasta answers DNS on inside (`--dns-forward`), podman's.
const PASTA_DNS: &str = "169.254.1.1";
/// slirp4netns's built-in DNS forwarder.
const SLIRP_DNS: &str = "10.0.2.3";

/// The helper picked for a session, before anything starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chosen {
    Pasta(PathBuf),
    Slirp4netns(PathBuf),
    None,
}

impl Chosen {
    pub fn name(&self) -> &'static str {
        match self {
            Chosen::Pasta(_) => "pasta",
            Chosen::Slirp4netns(_) => "slirp4netns",
            Chosen::None => "none",
        }
    }
}

/// The first of `PATH`'s directories (and the usual system ones) with an
/// executable `name`. `FR_NET_HELPER_DIRS` (hidden, for the tests of the
/// fallback and of the missing-helper error) replaces them all.
fn find(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let forced = std::env::var("FR_NET_HELPER_DIRS").ok();
    let path = forced.clone().unwrap_or_else(|| std::env::var("PATH").unwrap_or_default());
    let system: &[&str] = if forced.is_some() {
        &[]
    } else {
        &["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"]
    };
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .chain(system.iter().copied())
        .map(|d| Path::new(d).join(name))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0));
    found
}

/// Picks the helper `--network` asks for: pasta by default, slirp4netns
/// when pasta is missing; a missing helper is an error naming its package.
pub fn choose(asked: NetHelper) -> Result<Chosen, Error> {
    let pasta = || find("pasta");
    let slirp = || find("slirp4netns");
    let chosen = match asked {
        NetHelper::None => return Ok(Chosen::None),
        NetHelper::Pasta => pasta().map(Chosen::Pasta).ok_or_else(|| missing("pasta", "passt"))?,
        NetHelper::Slirp4netns => {
            slirp().map(Chosen::Slirp4netns).ok_or_else(|| missing("slirp4netns", "slirp4netns"))?
        }
        NetHelper::Auto => match (pasta(), slirp()) {
            (Some(p), _) => Chosen::Pasta(p),
            (None, Some(s)) => {
                log::debug!("pasta is not installed: slirp4netns connects the container");
                Chosen::Slirp4netns(s)
            }
            (None, None) => {
                return Err(Error::Network {
                    why: "--net needs pasta or slirp4netns to reach outside the container, and \
                          neither is installed"
                        .into(),
                    hint: "install Debian's passt package (apt-get install passt), or \
                           slirp4netns; --network none gives the container loopback alone"
                        .into(),
                })
            }
        },
    };
    tun_usable()?;
    Ok(chosen)
}

fn missing(program: &str, package: &str) -> Error {
    Error::Network {
        why: format!("--network {program}: {program} is not installed"),
        hint: format!(
            "install Debian's {package} package (apt-get install {package}), or pick another \
             helper: --network pasta|slirp4netns|none"
        ),
    }
}

/// Both helpers make a tap device in the namespace from `/dev/net/tun`,
/// which the user must be able to open (udev's rule makes it 0666).
fn tun_usable() -> Result<(), Error> {
    let tun = Path::new("/dev/net/tun");
    match std::fs::OpenOptions::new().read(true).write(true).open(tun) {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::Network {
            why: format!("{}: {e}: the network helper makes its tap device there", tun.display()),
            hint: "as root: chmod 0666 /dev/net/tun (the mode udev gives it), or modprobe tun \
                   if it is missing; --network none needs neither"
                .into(),
        }),
    }
}

/// Checks the host ports of `ports` before anything starts: a port below
/// the host's `net.ipv4.ip_unprivileged_port_start` needs root, and a port
/// something already listens on cannot be taken. Each refusal names the
/// port and the way out.
pub fn check_ports(ports: &[PortMap], proc_root: &Path) -> Result<(), Error> {
    check_ports_as(ports, proc_root, rustix::process::geteuid().is_root())
}

/// [`check_ports`] for a caller who is real root (`root`) or not.
fn check_ports_as(ports: &[PortMap], proc_root: &Path, root: bool) -> Result<(), Error> {
    let start: u16 =
        std::fs::read_to_string(proc_root.join("sys/net/ipv4/ip_unprivileged_port_start"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1024);
    for (n, p) in ports.iter().enumerate() {
        if ports[..n].iter().any(|q| q.host == p.host && q.udp == p.udp) {
            return Err(Error::Network {
                why: format!("host port {} is mapped twice", p.host),
                hint: "map each host port once".into(),
            });
        }
        if p.host < start && !root {
            return Err(Error::Network {
                why: format!(
                    "host port {} ({p}) is below {start}, the first port an unprivileged user may \
                     bind on this host (net.ipv4.ip_unprivileged_port_start)",
                    p.host
                ),
                hint: format!(
                    "map a host port of {start} or above (-p {}:{}), or let users bind it, as \
                     root: sysctl net.ipv4.ip_unprivileged_port_start={}",
                    8000 + p.host % 1000,
                    p.container,
                    p.host
                ),
            });
        }
        in_use(p)?;
    }
    Ok(())
}

/// Whether the host port of `p` can be bound now (on every address, as the
/// helper binds it).
fn in_use(p: &PortMap) -> Result<(), Error> {
    let (kind, proto) = if p.udp {
        (rustix::net::SocketType::DGRAM, "udp")
    } else {
        (rustix::net::SocketType::STREAM, "tcp")
    };
    let addrs: [std::net::SocketAddr; 2] = [
        (std::net::Ipv4Addr::UNSPECIFIED, p.host).into(),
        (std::net::Ipv6Addr::UNSPECIFIED, p.host).into(),
    ];
    for addr in addrs {
        let family = if addr.is_ipv4() {
            rustix::net::AddressFamily::INET
        } else {
            rustix::net::AddressFamily::INET6
        };
        let Ok(sock) =
            rustix::net::socket_with(family, kind, rustix::net::SocketFlags::CLOEXEC, None)
        else {
            // No IPv6 on this host: nothing to take there.
            continue;
        };
        if addr.is_ipv6() {
            let _ = rustix::net::sockopt::set_ipv6_v6only(&sock, true);
        }
        let _ = rustix::net::sockopt::set_socket_reuseaddr(&sock, true);
        match rustix::net::bind(&sock, &addr) {
            Ok(()) => {}
            Err(rustix::io::Errno::ADDRINUSE) => {
                return Err(Error::Network {
                    why: format!(
                        "host port {}/{proto} is in use ({addr} is bound already)",
                        p.host
                    ),
                    hint: format!(
                        "stop what listens there (ss -lnp 'sport = :{}' shows it), or map \
                         another host port: -p OTHER:{}/{proto}",
                        p.host, p.container
                    ),
                })
            }
            Err(rustix::io::Errno::ADDRNOTAVAIL | rustix::io::Errno::AFNOSUPPORT) => {}
            Err(e) => {
                return Err(Error::Network {
                    why: format!("host port {}/{proto}: {e}", p.host),
                    hint: "map another host port".into(),
                })
            }
        }
    }
    Ok(())
}

/// The `/etc/resolv.conf` the container gets with `chosen`: the host's
/// search domains and options, and the helper's DNS forwarder as the one
/// name server (it passes queries on to the host's first resolver, which
/// may be on the host's loopback, out of the container's reach, or
/// reachable from the host alone); `None` for no helper, where the image
/// keeps its own.
pub fn resolv_conf(chosen: &Chosen, host: &str) -> Option<String> {
    let forwarder = match chosen {
        Chosen::Pasta(_) => PASTA_DNS,
        Chosen::Slirp4netns(_) => SLIRP_DNS,
        Chosen::None => return None,
    };
    let mut out = format!("# written by fr for this --net session\nnameserver {forwarder}\n");
    for line in host.lines() {
        let first = line.split_whitespace().next();
        if matches!(first, Some("search" | "domain" | "options")) {
            out.push_str(line.trim());
            out.push('\n');
        }
    }
    Some(out)
}

/// A running network helper; stopped (and waited for) when dropped.
#[derive(Debug)]
pub struct Helper {
    name: &'static str,
    child: Child,
    /// slirp4netns ends when this, the write end of its exit pipe, closes.
    _exit: Option<OwnedFd>,
}

impl Helper {
    /// The helper's pid, for the instance's state.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        log::debug!("{} stopped", self.name);
    }
}

/// Starts `chosen` for the container whose namespaces `shared` holds and
/// waits until it is ready; `Ok(None)` for `--network none`. A helper that
/// fails says why, with its own words.
pub fn start(
    chosen: &Chosen,
    net: &Network,
    shared: &Shared,
    runtime: &Path,
) -> Result<Option<Helper>, Error> {
    match chosen {
        Chosen::None => Ok(None),
        Chosen::Pasta(program) => pasta(program, net, shared).map(Some),
        Chosen::Slirp4netns(program) => slirp4netns(program, net, shared, runtime).map(Some),
    }
}

fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(Error::sys("creating a pipe for the network helper"))
}

fn spawn(name: &'static str, mut cmd: Command, keep: &[&OwnedFd]) -> Result<Child, Error> {
    log::debug!("starting {cmd:?}");
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    crate::sys::helper_command(&mut cmd, keep.iter().map(|f| f.as_raw_fd()).collect());
    cmd.spawn().map_err(|e| Error::Network {
        why: format!("starting {name}: {e}"),
        hint: "--network none gives the container loopback alone".into(),
    })
}

/// Waits for the helper's first word on `ready`; if it ends first, its
/// stderr says why.
fn wait_ready(name: &'static str, child: &mut Child, ready: OwnedFd) -> Result<(), Error> {
    let mut buf = [0u8; 64];
    let got = loop {
        match rustix::io::read(&ready, &mut buf) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other,
        }
    };
    if matches!(got, Ok(n) if n > 0) {
        return Ok(());
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut said = String::new();
    if let Some(err) = child.stderr.as_mut() {
        let _ = err.read_to_string(&mut said);
    }
    let said: Vec<&str> = said.lines().filter(|l| !l.contains("syslog")).collect();
    let said = said.join("; ");
    let hint = if said.contains("bind") || said.contains("in use") {
        "map another host port, or free this one"
    } else {
        "--network none gives the container loopback alone; fr -v shows the helper's command"
    };
    Err(Error::Network {
        why: format!(
            "{name} could not connect the container: {}",
            if said.is_empty() { "it ended without a word".into() } else { said }
        ),
        hint: hint.into(),
    })
}

/// pasta in the foreground, its pid written to a pipe once it has set up
/// the namespace (`--pid`, "once initialisation is done"); only the ports
/// asked for are forwarded, and nothing from the container to the host's
/// own ports (`-T none -U none`), as podman runs it.
fn pasta(program: &Path, net: &Network, shared: &Shared) -> Result<Helper, Error> {
    let (ready_r, ready_w) = pipe()?;
    let mut cmd = Command::new(program);
    cmd.args(["--config-net", "--foreground", "--quiet", "--no-map-gw"])
        .args(["--dns-forward", PASTA_DNS])
        .args(["--netns", &fd_path(&shared.net), "--userns", &fd_path(&shared.user)])
        .args(["--pid", &fd_path(&ready_w)]);
    for (flag, udp) in [("-t", false), ("-u", true)] {
        let spec: Vec<String> = net
            .ports
            .iter()
            .filter(|p| p.udp == udp)
            .map(|p| format!("{}:{}", p.host, p.container))
            .collect();
        cmd.args([flag, &if spec.is_empty() { "none".into() } else { spec.join(",") }]);
    }
    cmd.args(["-T", "none", "-U", "none"]);
    let mut child = spawn("pasta", cmd, &[&shared.net, &shared.user, &ready_w])?;
    drop(ready_w);
    wait_ready("pasta", &mut child, ready_r)?;
    Ok(Helper { name: "pasta", child, _exit: None })
}

/// slirp4netns with its tap interface configured (`--configure`), host
/// loopback out of the container's reach, ready and exit pipes; the port
/// maps are added through its API socket, which is removed afterwards.
fn slirp4netns(
    program: &Path,
    net: &Network,
    shared: &Shared,
    runtime: &Path,
) -> Result<Helper, Error> {
    let (ready_r, ready_w) = pipe()?;
    let (exit_r, exit_w) = pipe()?;
    let api = runtime.join(format!("slirp4netns-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&api);
    let mut cmd = Command::new(program);
    cmd.args(["--configure", "--mtu=65520", "--disable-host-loopback"])
        .arg(format!("--ready-fd={}", ready_w.as_raw_fd()))
        .arg(format!("--exit-fd={}", exit_r.as_raw_fd()))
        .arg("--api-socket")
        .arg(&api)
        .args(["--netns-type=path", &format!("--userns-path={}", fd_path(&shared.user))])
        .args([&fd_path(&shared.net), "tap0"]);
    let mut child = spawn("slirp4netns", cmd, &[&shared.net, &shared.user, &ready_w, &exit_r])?;
    drop((ready_w, exit_r));
    wait_ready("slirp4netns", &mut child, ready_r)?;
    let helper = Helper { name: "slirp4netns", child, _exit: Some(exit_w) };
    let added = net.ports.iter().try_for_each(|p| add_hostfwd(&api, p));
    let _ = std::fs::remove_file(&api);
    added?;
    Ok(helper)
}

/// Asks slirp4netns to forward `p` (its API: one JSON request, one answer).
fn add_hostfwd(api: &Path, p: &PortMap) -> Result<(), Error> {
    use std::io::Write;
    let proto = if p.udp { "udp" } else { "tcp" };
    let request = serde_json::json!({
        "execute": "add_hostfwd",
        "arguments": {"proto": proto, "host_addr": "0.0.0.0", "host_port": p.host, "guest_port": p.container}
    });
    let fail = |why: String| Error::Network {
        why: format!("slirp4netns could not forward host port {} ({p}): {why}", p.host),
        hint: "map another host port, or free this one".into(),
    };
    let mut sock = std::os::unix::net::UnixStream::connect(api).map_err(|e| fail(e.to_string()))?;
    sock.write_all(request.to_string().as_bytes()).map_err(|e| fail(e.to_string()))?;
    sock.shutdown(std::net::Shutdown::Write).map_err(|e| fail(e.to_string()))?;
    let mut answer = String::new();
    sock.read_to_string(&mut answer).map_err(|e| fail(e.to_string()))?;
    match serde_json::from_str::<serde_json::Value>(&answer) {
        Ok(v) if v.get("return").is_some() => Ok(()),
        Ok(v) => Err(fail(v.get("error").map_or(answer.clone(), |e| e.to_string()))),
        Err(_) => Err(fail(answer)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_helpers_forwarder_is_the_name_server() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 10.1.2.3\noptions edns0\nsearch example.org\n";
        let pasta = resolv_conf(&Chosen::Pasta("pasta".into()), host).unwrap();
        assert_eq!(pasta.matches("nameserver").count(), 1, "{pasta}");
        assert!(pasta.contains("nameserver 169.254.1.1\n"), "{pasta}");
        assert!(pasta.contains("options edns0\nsearch example.org\n"), "{pasta}");
        let slirp = resolv_conf(&Chosen::Slirp4netns("s".into()), host).unwrap();
        assert_eq!(slirp.matches("nameserver").count(), 1, "{slirp}");
        assert!(slirp.contains("nameserver 10.0.2.3\n"));
        assert!(resolv_conf(&Chosen::None, host).is_none());
        let empty = resolv_conf(&Chosen::Pasta("pasta".into()), "").unwrap();
        assert!(empty.contains("nameserver 169.254.1.1"));
    }

    #[test]
    fn a_port_below_the_unprivileged_start_is_refused_with_the_sysctl() {
        let dir = std::env::temp_dir().join(format!("fr-net-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sys/net/ipv4")).unwrap();
        std::fs::write(dir.join("sys/net/ipv4/ip_unprivileged_port_start"), "1024\n").unwrap();
        let map = [PortMap { host: 80, container: 80, udp: false }];
        let e = check_ports_as(&map, &dir, false).unwrap_err();
        let hint = e.hint().unwrap();
        assert!(e.to_string().contains("host port 80"), "{e}");
        assert!(hint.contains("sysctl net.ipv4.ip_unprivileged_port_start=80"), "{hint}");
        let free = std::net::TcpListener::bind("0.0.0.0:0").unwrap().local_addr().unwrap().port();
        let twice = [PortMap { host: free, ..map[0] }; 2];
        assert!(check_ports_as(&twice, &dir, true)
            .unwrap_err()
            .to_string()
            .contains("mapped twice"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
