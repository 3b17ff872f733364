//! Bootstrap agents: what a stage's root file system starts as, each as
//! Apptainer's conveyor-packer makes it (`internal/pkg/build/sources`),
//! then Apptainer's base environment (`fr_image::layout`).
//!
//! - `debootstrap`: Debian's `debootstrap` with the arguments Apptainer
//!   passes, run as fake root on the host tree (`fr exec -f -s STATE`),
//!   then the tree made an image in place with the state (`fr import
//!   --state`). Its `mknod`s and `chown`s are emulated as real root's are,
//!   so nothing is bound over `mknod` and `mount` as Apptainer's fakeroot
//!   build must.
//! - `localimage`: an fr image (exported and imported, its fake metadata
//!   along), any other directory (copied by `cp -a` as fake root), or a tar
//!   archive (imported).
//! - `busybox`: the host's static busybox (or the one `MirrorURL` names)
//!   with a link for each applet in `/bin`, and Apptainer's `/etc` files.
//! - `scratch`: nothing but the base environment.
//! - `docker`, `oci`, `oci-archive`, `docker-archive`: the OCI image
//!   `From:` names (a registry reference, a layout `DIR[:TAG]`, an
//!   archive), unpacked as real root's unpack would into the per-user
//!   cache (`fr_launcher::cache`, in a child), then copied into the stage
//!   with its fake metadata, the config's Env, Entrypoint/Cmd and Labels
//!   in `/.singularity.d` as Apptainer's OCI conversion writes them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use fr_image::def::{Agent, Stage};
use fr_image::layout::{self, Content, Entry};
use fr_image::oci::transport::Source;

use crate::build::StageRun;
use crate::child::{self, Env, Session};
use crate::error::Error;
use crate::spec::{self, ImageKind};
use crate::sys;
use crate::tarball::Tarball;
use crate::tree::Tree;

/// The agents that start from an OCI image, as Apptainer names them.
pub const OCI_AGENTS: [&str; 4] = ["docker", "oci", "oci-archive", "docker-archive"];

/// The OCI image a stage's `Bootstrap: AGENT` and `From:` name.
pub fn oci_source(agent: &str, from: &str) -> Result<Source, Error> {
    Source::from_agent(agent, from).map_err(|e| Error::Unsupported {
        what: format!("Bootstrap: {agent}, From: {from}: {e}"),
        hint: "From: names a registry reference (docker), an OCI layout DIR[:TAG] (oci), or \
               an archive FILE (oci-archive, docker-archive)"
            .into(),
    })
}

/// A stage from an OCI image: unpacked into the per-user cache in a child
/// (every blob checked, each layer once), then copied into the stage with
/// its fake metadata and the config's `/.singularity.d`, and Apptainer's
/// base environment around them.
fn oci(run: &StageRun<'_>, agent: &str) -> Result<(), Error> {
    let from = run.stage.header.from.clone().unwrap_or_default();
    let source = oci_source(agent, &from)?;
    run.step(&format!("bootstrap {agent} from {from}"))?;
    let opts = fr_image::oci::registry::Options {
        plain_http: run.ctx.opts.nohttps,
        progress: run.ctx.opts.progress,
    };
    let name = run.name(&format!("unpacking {source}"));
    let (s, o) = (source.clone(), opts.clone());
    child::must(&name, move || fr_launcher::cache::Cache::open()?.image(&s, &o).map(|_| 0))?;
    // Cached now: found again without unpacking (a registry's manifest is
    // asked for once more).
    let cached =
        fr_launcher::cache::Cache::open().and_then(|c| c.image(&source, &opts)).map_err(|e| {
            Error::Step {
                step: name.clone(),
                why: e.to_string(),
                hint: e.hint().map(|h| h.to_string()),
            }
        })?;
    copy_image(run, &cached)?;
    base(run, false, false, &[])
}

/// Debian's mirror when the header names none.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// What Apptainer's debootstrap agent leaves out of minbase.
const EXCLUDE: &str = "--exclude=openssl,udev,debconf-i18n,e2fsprogs";

/// Apptainer's busybox agent's `/etc` files, byte for byte (the leading
/// space of `group` included).
const BUSYBOX_PASSWD: &str = "root:!:0:0:root:/root:/bin/sh";
const BUSYBOX_GROUP: &str = " root:x:0:";
const BUSYBOX_HOSTS: &str =
    "127.0.0.1   localhost localhost.localdomain localhost4 localhost4.localdomain4";

/// The host's Debian architecture (Apptainer's `debootstrapArchs`).
pub fn debian_arch() -> Option<&'static str> {
    let little = cfg!(target_endian = "little");
    Some(match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        "aarch64" => "arm64",
        "arm" => "armhf",
        "powerpc64" if little => "ppc64el",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        "mips64" if little => "mips64el",
        "mips" if little => "mipsel",
        _ => return None,
    })
}

/// The host's architecture in the OCI spelling the labels use.
pub fn oci_arch() -> &'static str {
    fr_image::oci::host_platform().1
}

/// `program` as root's `PATH` finds it (`debootstrap` is in `/usr/sbin`,
/// which a user's `PATH` may lack).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        });
    found
}

/// The host's `PATH` with root's `sbin` directories, for the commands the
/// agents run as fake root (debootstrap calls `chroot` and `mknod`).
pub fn host_path() -> String {
    let mut path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    for dir in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        if !path.split(':').any(|d| d == dir) {
            path.push(':');
            path.push_str(dir);
        }
    }
    path
}

/// Whether the ELF file `path` asks for a program interpreter (is
/// dynamically linked): a static busybox runs in any image, a dynamic one
/// only beside its libraries.
fn dynamic_elf(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else { return false };
    let u16_at = |o: usize| bytes.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u64_at = |o: usize| {
        bytes.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
    };
    // 64-bit little-endian ELF only; anything else is taken as it is.
    if bytes.get(..6) != Some(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum).any(|i| {
        let at = phoff + i * phentsize;
        bytes.get(at..at + 4) == Some(&3u32.to_le_bytes()[..]) // PT_INTERP
    })
}

/// What a stage's agent needs, checked before anything is written: an
/// agent fr runs, its header keys, the programs it calls.
pub fn check(stage: &Stage) -> Result<(), Error> {
    let h = &stage.header;
    let unsupported = |what: String, hint: &str| Error::Unsupported { what, hint: hint.into() };
    match &h.bootstrap {
        Agent::Scratch => Ok(()),
        Agent::Other(name) if OCI_AGENTS.contains(&name.as_str()) => {
            let Some(from) = &h.from else {
                return Err(unsupported(
                    format!("Bootstrap: {name} needs From: (the image to start from)"),
                    "add From: to the header, e.g. From: debian:bookworm",
                ));
            };
            oci_source(name, from).map(|_| ())
        }
        Agent::Other(name) => {
            let oci = ["docker-daemon", "library", "shub", "oras"];
            if oci.contains(&name.as_str()) {
                Err(unsupported(
                    format!("Bootstrap: {name} is not supported: fr reads OCI images from registries, layouts and archives"),
                    "copy the image into an OCI archive first (skopeo copy ... \
                     oci-archive:img.tar) and start from it with Bootstrap: oci-archive, From: \
                     img.tar",
                ))
            } else {
                Err(unsupported(
                    format!("Bootstrap: {name} is not an agent fr runs"),
                    "fr builds from debootstrap, localimage, busybox and scratch",
                ))
            }
        }
        Agent::Debootstrap => {
            if h.os_version.is_none() {
                return Err(unsupported(
                    "Bootstrap: debootstrap needs OSVersion: (the release, e.g. bookworm)".into(),
                    "add OSVersion: to the header",
                ));
            }
            if debian_arch().is_none() {
                return Err(unsupported(
                    format!(
                        "debootstrap: no Debian architecture is known for {}",
                        std::env::consts::ARCH
                    ),
                    "build on a host Debian has a port for",
                ));
            }
            find_program("debootstrap").map(|_| ()).ok_or_else(|| {
                unsupported(
                    "Bootstrap: debootstrap needs Debian's debootstrap on the host".into(),
                    "install it (apt-get install debootstrap)",
                )
            })
        }
        Agent::LocalImage => {
            let Some(from) = &h.from else {
                return Err(unsupported(
                    "Bootstrap: localimage needs From: (an image: a directory or a tar archive)"
                        .into(),
                    "add From: to the header",
                ));
            };
            spec::image_kind(Path::new(from)).map(|_| ())
        }
        Agent::Busybox => match &h.mirror_url {
            Some(_) => {
                ["curl", "wget"].iter().find_map(|p| find_program(p)).map(|_| ()).ok_or_else(|| {
                    unsupported(
                        "Bootstrap: busybox with MirrorURL: downloads busybox, with curl or wget"
                            .into(),
                        "install curl, or drop MirrorURL: to use the host's static busybox",
                    )
                })
            }
            None => {
                let host = Path::new("/bin/busybox");
                if !host.is_file() {
                    return Err(unsupported(
                        "Bootstrap: busybox without MirrorURL: installs the host's /bin/busybox, and there is none".into(),
                        "install Debian's busybox-static, or give MirrorURL: (a busybox binary's URL)",
                    ));
                }
                if dynamic_elf(host) {
                    return Err(unsupported(
                        "Bootstrap: busybox: the host's /bin/busybox is dynamically linked, and would not run in the image".into(),
                        "install Debian's busybox-static (it replaces busybox), or give MirrorURL:",
                    ));
                }
                Ok(())
            }
        },
    }
}

/// The stage's root file system, as its agent makes it.
pub fn bootstrap(run: &StageRun<'_>) -> Result<(), Error> {
    let h = &run.stage.header;
    match &h.bootstrap {
        Agent::Scratch => {
            run.step("bootstrap scratch")?;
            base(run, true, false, &[])
        }
        Agent::Debootstrap => debootstrap(run),
        Agent::LocalImage => localimage(run),
        Agent::Busybox => busybox(run),
        Agent::Other(name) if OCI_AGENTS.contains(&name.as_str()) => oci(run, name),
        Agent::Other(name) => Err(Error::Unsupported {
            what: format!("Bootstrap: {name}"),
            hint: "fr builds from debootstrap, localimage, busybox and scratch".into(),
        }),
    }
}

/// Apptainer's base environment (`makeBaseEnv()`) written into the image,
/// with the agent's own files after it; `root` makes the image's root
/// directory 0755 first (the debootstrap agent's `Pack()`).
fn base(run: &StageRun<'_>, overwrite: bool, root: bool, extra: &[Entry]) -> Result<(), Error> {
    let tree = Tree::open(&run.rootfs)?;
    let mut entries = layout::base_environment(&tree, overwrite);
    entries.extend(extra.iter().cloned());
    let tar = run.ctx.tmp.join(format!("stage{}-base.tar", run.index));
    let mut t = Tarball::create(&tar, run.ctx.mtime)?;
    if root {
        t.root(0o755)?;
    }
    t.entries(&entries)?;
    t.finish()?;
    child::import(&run.name("base environment"), &tar, &run.rootfs, false)
}

fn runscript() -> Entry {
    Entry {
        path: ".singularity.d/runscript".into(),
        mode: 0o755,
        content: Content::File(layout::EMPTY_RUNSCRIPT.into()),
    }
}

fn debootstrap(run: &StageRun<'_>) -> Result<(), Error> {
    let h = &run.stage.header;
    let release = h.os_version.clone().unwrap_or_default();
    let mirror = h.mirror_url.clone().unwrap_or_else(|| DEFAULT_MIRROR.into());
    // Apptainer adds $INCLUDE to the header's list, and apt always.
    let mut include = h.include.clone();
    if let Ok(more) = std::env::var("INCLUDE") {
        include.extend(more.split([' ', ',']).filter(|s| !s.is_empty()).map(String::from));
    }
    let program = find_program("debootstrap").ok_or_else(|| Error::Unsupported {
        what: "debootstrap is not installed".into(),
        hint: "apt-get install debootstrap".into(),
    })?;
    let arch = debian_arch().unwrap_or("amd64");
    run.step(&format!("bootstrap debootstrap {release} {arch} from {mirror}"))?;
    let state = run.ctx.tmp.join(format!("stage{}-debootstrap.state", run.index));
    let command: Vec<OsString> = vec![
        program.into(),
        "--variant=minbase".into(),
        EXCLUDE.into(),
        format!("--include=apt,{}", include.join(",")).into(),
        format!("--arch={arch}").into(),
        release.into(),
        run.rootfs.clone().into(),
        mirror.into(),
    ];
    let session = Session {
        image: None,
        command,
        userns: run.ctx.userns,
        binds: Vec::new(),
        env: Env { clean: false, set: vec![("PATH".into(), host_path())] },
        load_state: None,
        save_state: Some(state.clone()),
    };
    if let Err(e) = session.must(&run.name("debootstrap"), None) {
        show_log_tail(&run.rootfs.join("debootstrap/debootstrap.log"));
        return Err(e);
    }
    child::import_state(&run.name("debootstrap: the tree as an image"), &state, &run.rootfs)?;
    base(run, true, true, &[runscript()])
}

/// The end of debootstrap's log, which says why it failed (the tree that
/// holds it is removed with the failed build).
fn show_log_tail(log: &Path) {
    let Ok(text) = std::fs::read_to_string(log) else { return };
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(15)..];
    log::error!("the end of {}:\n{}", log.display(), tail.join("\n"));
}

fn localimage(run: &StageRun<'_>) -> Result<(), Error> {
    let from = PathBuf::from(run.stage.header.from.clone().unwrap_or_default());
    let kind = spec::image_kind(&from)?;
    run.step(&format!("bootstrap localimage from {}", from.display()))?;
    match kind {
        ImageKind::Archive => {
            child::import(&run.name("unpacking From:"), &from, &run.rootfs, run.ctx.opts.progress)?
        }
        ImageKind::FrImage => copy_image(run, &from)?,
        ImageKind::Tree => {
            // As fake root sees it: the user's files are root's, every
            // other owner is kept.
            let mut source = from.clone().into_os_string();
            source.push("/.");
            let mut dest = run.rootfs.clone().into_os_string();
            dest.push("/");
            let command = vec!["cp".into(), "-a".into(), "--".into(), source, dest];
            run.host_session("copying From:", command, Vec::new(), false)?;
        }
    }
    base(run, false, false, &[])
}

/// An fr image into the stage's, its fake metadata along: `fr export` and
/// `fr import` joined by a pipe.
fn copy_image(run: &StageRun<'_>, from: &Path) -> Result<(), Error> {
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::Io { what: "a pipe".into(), source: e.into() })?;
    let name = run.name("copying From:");
    let export = child::export(&name, from, Path::new("-"), Some(write), false, None)?;
    let rootfs = run.rootfs.clone();
    let progress = run.ctx.opts.progress;
    // Each end of the pipe is now one child's alone: the import sees the
    // end of the archive when the export is done.
    let import = child::start(&name, Some(read), None, move || {
        let opts =
            fr_launcher::import::ImportOptions { archive: "-".into(), image: rootfs, progress };
        fr_launcher::import::import(&opts).map(|_| 0)
    });
    let imported = import.and_then(child::Running::must);
    let exported = export.must();
    exported.and(imported)
}

fn busybox(run: &StageRun<'_>) -> Result<(), Error> {
    // Named busybox: it picks its applet by the name it is run as.
    let dir = run.ctx.tmp.join(format!("stage{}-busybox", run.index));
    std::fs::create_dir_all(&dir).map_err(Error::io(format!("making {}", dir.display())))?;
    let binary = dir.join("busybox");
    match &run.stage.header.mirror_url {
        Some(url) => {
            run.step(&format!("bootstrap busybox from {url}"))?;
            download(url, &binary)?;
        }
        None => {
            run.step("bootstrap busybox from the host's /bin/busybox")?;
            std::fs::copy("/bin/busybox", &binary)
                .map_err(Error::io("copying the host's /bin/busybox"))?;
        }
    }
    let data =
        std::fs::read(&binary).map_err(Error::io(format!("reading {}", binary.display())))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755))
            .map_err(Error::io(format!("chmod {}", binary.display())))?;
    }
    // `busybox --install DIR` makes a hard link in DIR for every applet
    // `--list` names.
    let mut list = std::process::Command::new(&binary);
    list.arg("--list");
    let out = sys::unblocked(&mut list).output().map_err(Error::io("running busybox --list"))?;
    if !out.status.success() {
        return Err(Error::Failed {
            step: "busybox --list".into(),
            code: out.status.code().unwrap_or(1),
            hint: Some(
                "the busybox must run on this host, as Apptainer runs it to install its links"
                    .into(),
            ),
        });
    }
    let applets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.contains('/') && *a != "busybox")
        .map(String::from)
        .collect();

    let tree = Tree::open(&run.rootfs)?;
    let mut entries = layout::base_environment(&tree, true);
    let file = |path: &str, mode: u32, text: &str| Entry {
        path: path.into(),
        mode,
        content: Content::File(text.as_bytes().to_vec()),
    };
    // WriteFile keeps the mode of the /etc/hosts the base environment made.
    entries.push(file("etc/passwd", 0o664, BUSYBOX_PASSWD));
    entries.push(file("etc/group", 0o664, BUSYBOX_GROUP));
    entries.push(file("etc/hosts", 0o644, BUSYBOX_HOSTS));
    entries.push(Entry { path: "bin".into(), mode: 0o755, content: Content::Dir });
    entries.push(Entry { path: "bin/busybox".into(), mode: 0o755, content: Content::File(data) });
    entries.push(runscript());
    let tar = run.ctx.tmp.join(format!("stage{}-busybox.tar", run.index));
    let mut t = Tarball::create(&tar, run.ctx.mtime)?;
    t.entries(&entries)?;
    for applet in &applets {
        t.hard_link(&format!("bin/{applet}"), "bin/busybox")?;
    }
    t.finish()?;
    child::import(&run.name("busybox"), &tar, &run.rootfs, false)
}

/// `url` to `to`, with the host's curl or wget.
fn download(url: &str, to: &Path) -> Result<(), Error> {
    let mut cmd = if let Some(curl) = find_program("curl") {
        let mut c = std::process::Command::new(curl);
        c.args(["-fsSL", "-o"]).arg(to).arg(url);
        c
    } else if let Some(wget) = find_program("wget") {
        let mut c = std::process::Command::new(wget);
        c.args(["-q", "-O"]).arg(to).arg(url);
        c
    } else {
        return Err(Error::Unsupported {
            what: "downloading busybox needs curl or wget".into(),
            hint: "install curl".into(),
        });
    };
    let status =
        sys::unblocked(&mut cmd).status().map_err(Error::io(format!("downloading {url}")))?;
    if !status.success() {
        return Err(Error::Failed {
            step: format!("downloading {url}"),
            code: status.code().unwrap_or(1),
            hint: Some("check MirrorURL: and the network".into()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_busybox_is_told_static_or_not() {
        // The test binary itself is dynamically linked.
        let me = std::env::current_exe().unwrap();
        assert!(dynamic_elf(&me));
        assert!(!dynamic_elf(Path::new("/nonexistent")));
        assert!(debian_arch().is_some());
        assert!(host_path().contains("/usr/sbin"));
    }
}
