//! The end-to-end test harness.
//!
//! fr exists for users without root, so the tests run the real `fr` binary
//! as an unprivileged user: the current user, or, when the suite runs as
//! root (CI does), the user named by `FR_TEST_USER` (default `frtest`,
//! which `.ci/run` creates). Root is used only as the oracle of the
//! differential tests.
//!
//! Fixtures (a busybox-static rootfs, the probes of `tests/probe` built
//! with `cc`, `musl-gcc` or Go, Debian's i386 busybox) are built once
//! into a cache outside git (`target/tmp`) and copied per test.
//!
//! A test that cannot run here (no test user, no subuid range, no
//! network, a missing package) fails, saying why and what to install or
//! set. With `FR_TEST_SKIP=1` it skips instead: it passes and prints
//! `SKIPPED` and the reason on the real standard error, which the run's
//! output shows (a test's own `eprintln!` is captured and hidden when it
//! passes). Under `CI` or `FR_TEST_MUST_RUN`, `FR_TEST_SKIP` is ignored.
//! The one exception is a test of something the running kernel truly
//! lacks, shown by the test itself (the x32 ABI): it passes as `NOT
//! APPLICABLE` with the evidence, even under CI.
//!
//! Stale scratch directories of dead runs are removed at setup, quietly,
//! with the tool each entry needs; what cannot be removed is one warning
//! line.
#![allow(dead_code)]

pub mod pty;

use std::ffi::OsStr;
use std::os::unix::fs::{chown, lchown, symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Bumped whenever the rootfs recipe changes, so stale caches are rebuilt.
const ROOTFS_VERSION: &str = "busybox-rootfs-v1";

/// The unprivileged user the tests run fr as.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

#[derive(Debug)]
pub struct Harness {
    /// `None`: the tests already run unprivileged, as this user.
    pub user: Option<User>,
    pub uid: u32,
    pub gid: u32,
    pub cache: PathBuf,
    pub fr: PathBuf,
    scratch: PathBuf,
}

/// Whether the environment variable `name` is set to something other than
/// empty, `0` or `false`.
fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|s| !s.is_empty() && s != "0" && s != "false")
}

/// Whether a test that cannot run here may skip (pass, saying so on the
/// real standard error) instead of failing: only when `FR_TEST_SKIP` asks
/// for it, and never under `CI` or `FR_TEST_MUST_RUN`.
pub fn skips_allowed() -> bool {
    flag("FR_TEST_SKIP") && !flag("CI") && !flag("FR_TEST_MUST_RUN")
}

/// The name of the running test (libtest names each test's thread).
fn test_name() -> String {
    std::thread::current().name().unwrap_or("this test").to_string()
}

/// A test that cannot run here: it fails with `why`, unless skips are
/// allowed ([`skips_allowed`]), when it prints `SKIPPED` and `why` where
/// the run's output shows it and returns `None`. libtest cannot mark a
/// test ignored once it runs, and a skip that passes quietly makes a run
/// that tested nothing look green.
#[track_caller]
pub fn cannot_run<T>(why: impl AsRef<str>) -> Option<T> {
    let why = why.as_ref();
    let test = test_name();
    if !skips_allowed() {
        let rule = if flag("CI") || flag("FR_TEST_MUST_RUN") {
            "under CI (or FR_TEST_MUST_RUN) every test must run"
        } else {
            "set FR_TEST_SKIP=1 to let the tests that cannot run here skip instead"
        };
        panic!("{test} cannot run here: {why}\n({rule})");
    }
    loud(&format!("SKIPPED {test} (FR_TEST_SKIP is set): {why}"));
    None
}

/// A test whose subject this host does not have at all (the kernel
/// truly lacks what it tests, as the caller has shown): it passes, even
/// under CI, and says so where the run's output shows it. Not for what a
/// package or a setting would give: that is [`cannot_run`].
pub fn not_applicable(why: impl AsRef<str>) {
    loud(&format!("NOT APPLICABLE {}: {}", test_name(), why.as_ref()));
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn lookup_user(name: &str) -> Result<User, String> {
    let out = Command::new("getent")
        .args(["passwd", name])
        .output()
        .map_err(|e| format!("getent: {e}"))?;
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let f: Vec<&str> = line.split(':').collect();
    if !out.status.success() || f.len() < 7 {
        return Err(format!(
            "the suite runs as root and needs an unprivileged user {name:?} to run fr as \
             (useradd -m {name}, or set FR_TEST_USER); .ci/run creates it"
        ));
    }
    let uid = f[2].parse().map_err(|_| format!("bad uid in {line:?}"))?;
    let gid = f[3].parse().map_err(|_| format!("bad gid in {line:?}"))?;
    if uid == 0 {
        return Err(format!(
            "FR_TEST_USER {name:?} is root; the end-to-end tests need an unprivileged user"
        ));
    }
    Ok(User { name: name.into(), uid, gid, home: PathBuf::from(f[5]) })
}

/// Runs `program` as the test user (or as ourselves when unprivileged).
fn user_command(user: &Option<User>, program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("LC_ALL", "C")
        .env("TERM", "dumb");
    if let Some(u) = user {
        cmd.uid(u.uid).gid(u.gid).env("HOME", &u.home).env("USER", &u.name).env("LOGNAME", &u.name);
    } else if let Ok(home) = std::env::var("HOME") {
        cmd.env("HOME", home);
    }
    cmd
}

fn chown_to(user: &Option<User>, path: &Path) {
    if let Some(u) = user {
        chown(path, Some(u.uid), Some(u.gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

/// Makes (or reuses) a cache directory the test user can write.
fn cache_dir(user: &Option<User>) -> Result<PathBuf, String> {
    let uid = user.as_ref().map_or_else(|| rustix::process::getuid().as_raw(), |u| u.uid);
    let candidates = [
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fr-e2e-{uid}")),
        PathBuf::from(format!("/var/tmp/fr-e2e-{uid}")),
    ];
    for dir in candidates {
        if std::fs::create_dir_all(&dir).is_err() {
            continue;
        }
        chown_to(user, &dir);
        let ok =
            user_command(user, "test").arg("-w").arg(&dir).arg("-a").arg("-x").arg(&dir).status();
        if ok.is_ok_and(|s| s.success()) {
            return Ok(dir);
        }
    }
    Err("no cache directory the test user can write (tried target/tmp and /var/tmp)".into())
}

fn setup() -> Result<Harness, String> {
    let user = if is_root() {
        Some(lookup_user(&std::env::var("FR_TEST_USER").unwrap_or_else(|_| "frtest".into()))?)
    } else {
        None
    };
    let (uid, gid) = match &user {
        Some(u) => (u.uid, u.gid),
        None => (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw()),
    };
    let cache = cache_dir(&user)?;
    // A copy of fr the test user can reach even if the checkout cannot be.
    let bin = cache.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    chown_to(&user, &bin);
    let fr = bin.join("fr");
    let tmp = bin.join(format!("fr.{}", std::process::id()));
    std::fs::copy(env!("CARGO_BIN_EXE_fr"), &tmp).map_err(|e| format!("copying fr: {e}"))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &fr).map_err(|e| e.to_string())?;
    // Per-process scratch space; stale ones from dead runs are removed.
    let scratch_root = cache.join("scratch");
    std::fs::create_dir_all(&scratch_root).map_err(|e| e.to_string())?;
    chown_to(&user, &scratch_root);
    remove_stale_scratch(&user, &fr, &scratch_root);
    let scratch = scratch_root.join(std::process::id().to_string());
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    chown_to(&user, &scratch);
    Ok(Harness { user, uid, gid, cache, fr, scratch })
}

/// Removes the scratch directories of runs that are gone (no process has
/// their pid). What cannot be removed is said on the real standard error
/// (not the test's captured output), one line per directory: a leftover
/// is a real failure, and must stand out.
fn remove_stale_scratch(user: &Option<User>, fr: &Path, scratch_root: &Path) {
    let Ok(entries) = std::fs::read_dir(scratch_root) else { return };
    for e in entries.flatten() {
        let pid = e.file_name().to_string_lossy().parse::<u32>().ok();
        if pid.is_none_or(|p| Path::new(&format!("/proc/{p}")).exists()) {
            continue;
        }
        let removed = if is_root() {
            // Root removes anything a run leaves: the images of subuid
            // sessions (files of subordinate ids), real root's oracle
            // copies, the second user's homes.
            std::fs::remove_dir_all(e.path()).map_err(|err| err.to_string())
        } else {
            remove_as_user(user, fr, &e.path())
        };
        if let Err(why) = removed {
            loud(&format!(
                "warning: the stale scratch directory {} is not all gone: {why}",
                e.path().display()
            ));
        }
    }
}

/// Removes `path` as the unprivileged user the tests run as, with the tool
/// each entry needs: `fr rm` for an image (a subuid-mode session leaves
/// files of subordinate ids in it, which the user cannot delete) and for a
/// tree that belongs to a subordinate id; plain removal for the user's own
/// files, directories made writable first (a session may have left them
/// read-only).
fn remove_as_user(user: &Option<User>, fr: &Path, path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = path.symlink_metadata().map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_dir() {
        return std::fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()));
    }
    let me = rustix::process::getuid().as_raw();
    if path.join(".fr").symlink_metadata().is_ok_and(|m| m.is_dir()) || meta.uid() != me {
        let out = user_command(user, fr)
            .arg("-q")
            .arg("rm")
            .arg(path)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running fr rm: {e}"))?;
        return if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        };
    }
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
    let mut first_error = Ok(());
    let entries = std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for e in entries.flatten() {
        let removed = remove_as_user(user, fr, &e.path());
        if first_error.is_ok() {
            first_error = removed;
        }
    }
    first_error?;
    std::fs::remove_dir(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes `line` to the real standard error, which libtest does not
/// capture (`eprintln!` in a test is shown only if the test fails).
pub fn loud(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The harness, or `None` (after printing why) when the end-to-end tests
/// cannot run here.
#[track_caller]
pub fn harness() -> Option<&'static Harness> {
    static H: OnceLock<Result<Harness, String>> = OnceLock::new();
    match H.get_or_init(setup) {
        Ok(h) => Some(h),
        Err(why) => cannot_run(why),
    }
}

/// A finished command, with its output as text.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts a zero exit and returns stdout.
    pub fn ok(self) -> String {
        assert_eq!(
            self.code,
            Some(0),
            "command failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self.stdout
    }
}

impl Harness {
    /// A command run as the test user, in `cwd`.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = user_command(&self.user, program);
        cmd.current_dir(&self.scratch).stdin(Stdio::null());
        cmd
    }

    /// `fr ARGS` as the test user.
    pub fn fr_command<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Command {
        let mut cmd = self.command(&self.fr);
        cmd.args(args);
        cmd
    }

    pub fn fr<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Run {
        Run::from(self.fr_command(args).output().expect("running fr"))
    }

    /// `fr exec OPTS [IMAGE] -- CMD...` as the test user, in `dir` (or the
    /// scratch directory).
    pub fn exec(&self, image: Option<&Path>, opts: &[&str], cmd: &[&str]) -> Run {
        self.exec_in(&self.scratch, image, opts, cmd)
    }

    pub fn exec_in(&self, dir: &Path, image: Option<&Path>, opts: &[&str], cmd: &[&str]) -> Run {
        let mut c = self.exec_command(image, opts, cmd);
        Run::from(c.current_dir(dir).output().expect("running fr"))
    }

    pub fn exec_command(&self, image: Option<&Path>, opts: &[&str], cmd: &[&str]) -> Command {
        let mut c = self.fr_command(["exec"]);
        c.args(opts);
        if let Some(image) = image {
            c.arg(image);
        }
        c.arg("--").args(cmd);
        c
    }

    /// `fr ARGS` run in `dir`.
    pub fn fr_in<S: AsRef<OsStr>>(&self, dir: &Path, args: impl IntoIterator<Item = S>) -> Run {
        Run::from(self.fr_command(args).current_dir(dir).output().expect("running fr"))
    }

    /// A new empty directory owned by the test user.
    pub fn scratch(&self, name: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = self.scratch.join(format!("{name}-{}", N.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        chown_to(&self.user, &dir);
        dir
    }

    /// A fresh copy of the busybox rootfs, owned by the test user.
    pub fn rootfs(&self) -> Option<PathBuf> {
        let golden = self.golden_rootfs()?;
        let dest = self.scratch("rootfs");
        std::fs::remove_dir(&dest).unwrap();
        let out = self.command("cp").arg("-a").arg(golden).arg(&dest).output().unwrap();
        assert!(
            out.status.success(),
            "copying the rootfs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(dest)
    }

    /// A root-owned copy of `tree` (ownership 0:0, as fr shows the user's own
    /// files), for real root to run the same probe in a chroot.
    pub fn oracle_copy(&self, tree: &Path) -> PathBuf {
        assert!(is_root());
        let dest =
            self.scratch.join(format!("oracle-{}", tree.file_name().unwrap().to_string_lossy()));
        let _ = std::fs::remove_dir_all(&dest);
        let ok = Command::new("cp").arg("-a").arg(tree).arg(&dest).status().unwrap().success()
            && Command::new("chown")
                .args(["-R", "-h", "0:0"])
                .arg(&dest)
                .status()
                .unwrap()
                .success();
        assert!(ok, "making the oracle copy of {}", tree.display());
        dest
    }

    /// The busybox-static rootfs, built once into the cache.
    fn golden_rootfs(&self) -> Option<PathBuf> {
        static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
        let golden = self.cache.join(ROOTFS_VERSION);
        if golden.join("bin/busybox").exists() {
            return Some(golden);
        }
        let busybox = Path::new("/bin/busybox");
        if !busybox.exists() {
            return cannot_run("no /bin/busybox: install Debian's busybox-static (.ci/run does)");
        }
        let build = self.cache.join(format!("{ROOTFS_VERSION}.build.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&build);
        for d in [
            "bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp", "proc", "sys", "dev",
            "var/tmp",
        ] {
            std::fs::create_dir_all(build.join(d)).unwrap();
        }
        std::fs::set_permissions(build.join("tmp"), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        std::fs::set_permissions(build.join("root"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        std::fs::copy(busybox, build.join("bin/busybox")).unwrap();
        let list = Command::new(busybox).arg("--list-full").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            let link = build.join(applet);
            if applet != "bin/busybox" && !link.exists() {
                symlink("/bin/busybox", &link).unwrap();
            }
        }
        std::fs::write(
            build.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(build.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
        if let Some(u) = &self.user {
            let out = Command::new("chown")
                .args(["-R", "-h", &format!("{}:{}", u.uid, u.gid)])
                .arg(&build)
                .status()
                .unwrap();
            assert!(out.success());
        }
        // Another process may have won the race; either copy is good.
        if std::fs::rename(&build, &golden).is_err() {
            let _ = std::fs::remove_dir_all(&build);
        }
        let _ =
            lchown(&golden, self.user.as_ref().map(|u| u.uid), self.user.as_ref().map(|u| u.gid));
        Some(golden)
    }

    /// The differential probe compiled with `cc FLAGS`, cached by name.
    pub fn probe(&self, name: &str, flags: &[&str]) -> Option<PathBuf> {
        self.compile("probe.c", name, flags)
    }

    /// `tests/probe/SOURCE` compiled with `cc FLAGS` into the cache as `name`.
    pub fn compile(&self, source: &str, name: &str, flags: &[&str]) -> Option<PathBuf> {
        self.compile_with("cc", source, name, flags)
    }

    /// `tests/probe/SOURCE` compiled with `compiler FLAGS` (`cc`,
    /// `musl-gcc`) into the cache as `name`, once for each version of the
    /// source, compiler and flags.
    pub fn compile_with(
        &self,
        compiler: &str,
        source: &str,
        name: &str,
        flags: &[&str],
    ) -> Option<PathBuf> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probe").join(source);
        let mut cmd = Command::new(compiler);
        cmd.args(flags).arg("-O1").arg("-o");
        self.build_once(name, &src, &[compiler], &mut cmd, |c, out| {
            c.arg(out).arg(&src);
        })
        .map_err(|why| {
            let hint = match compiler {
                "musl-gcc" => "apt-get install musl-tools",
                _ if flags.contains(&"-m32") => "apt-get install gcc-multilib libc6-dev-i386",
                _ if flags.contains(&"-mx32") => "apt-get install gcc-multilib libc6-dev-x32",
                _ => "apt-get install gcc libc6-dev",
            };
            format!(
                "{compiler} {} could not build {source} ({hint}; .ci/run does): {why}",
                flags.join(" ")
            )
        })
        .map_or_else(cannot_run, Some)
    }

    /// `tests/probe/SOURCE`, a Go program, built by Debian's Go with
    /// `CGO_ENABLED=0` (a static binary, no libc) into the cache as `name`,
    /// once for each version of the source.
    pub fn go_build(&self, source: &str, name: &str) -> Option<PathBuf> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probe").join(source);
        let go_cache = self.cache.join("go");
        let mut cmd = Command::new("go");
        cmd.env("CGO_ENABLED", "0")
            .env("GO111MODULE", "off")
            .env("GOCACHE", go_cache.join("build"))
            .env("GOPATH", go_cache.join("path"))
            .env("HOME", &go_cache)
            .args(["build", "-o"]);
        self.build_once(name, &src, &["go", "CGO_ENABLED=0"], &mut cmd, |c, out| {
            c.arg(out).arg(&src);
        })
        .map_err(|why| {
            format!("go could not build {source} (apt-get install golang-go; .ci/run does): {why}")
        })
        .map_or_else(cannot_run, Some)
    }

    /// Runs `cmd` (completed by `finish` with the output path and the
    /// source) into `probe/NAME` in the cache, unless the one there was
    /// built from the same source with the same command.
    fn build_once(
        &self,
        name: &str,
        src: &Path,
        how: &[&str],
        cmd: &mut Command,
        finish: impl FnOnce(&mut Command, &Path),
    ) -> Result<PathBuf, String> {
        use std::hash::{Hash, Hasher};
        static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
        let dir = self.cache.join("probe");
        std::fs::create_dir_all(&dir).unwrap();
        let out_path = dir.join(name);
        let key_path = dir.join(format!("{name}.key"));
        let text = std::fs::read(src).map_err(|e| format!("reading {}: {e}", src.display()))?;
        // The headers beside it (tests/probe/*.h) are part of what is built.
        let mut headers: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(src.parent().unwrap())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "h"))
            .map(|p| (p.clone(), std::fs::read(&p).unwrap_or_default()))
            .collect();
        headers.sort();
        let mut hasher = std::hash::DefaultHasher::new();
        (text, headers, how, format!("{:?}", cmd.get_args().collect::<Vec<_>>())).hash(&mut hasher);
        let key = format!("{:016x}\n", hasher.finish());
        if out_path.exists() && std::fs::read_to_string(&key_path).is_ok_and(|k| k == key) {
            return Ok(out_path);
        }
        let tmp = dir.join(format!("{name}.{}", std::process::id()));
        finish(cmd, &tmp);
        let out = cmd.output().map_err(|e| format!("running {cmd:?}: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&tmp, &out_path).unwrap();
        std::fs::write(&key_path, key).unwrap();
        Ok(out_path)
    }

    /// Debian's i386 busybox-static, unpacked from its .deb into the cache.
    pub fn busybox_i386(&self) -> Option<PathBuf> {
        let root = self.cache.join("busybox-i386");
        let bin = root.join("bin/busybox");
        if bin.exists() {
            return Some(bin);
        }
        let debs = self.cache.join("debs");
        std::fs::create_dir_all(&debs).unwrap();
        let got = Command::new("apt-get")
            .args(["download", "busybox-static:i386"])
            .current_dir(&debs)
            .output();
        let deb = std::fs::read_dir(&debs).ok().and_then(|d| {
            d.flatten().map(|e| e.path()).find(|p| {
                p.to_string_lossy().contains("busybox-static")
                    && p.to_string_lossy().ends_with("_i386.deb")
            })
        });
        let Some(deb) = deb else {
            let why = got
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_else(|e| e.to_string());
            return cannot_run(format!(
                "Debian's busybox-static:i386 could not be downloaded (dpkg --add-architecture i386 && apt-get update; .ci/run does): {why}"
            ));
        };
        let tmp = self.cache.join(format!("busybox-i386.{}", std::process::id()));
        let ok = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&tmp)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return cannot_run(format!("dpkg-deb -x {} failed", deb.display()));
        }
        let _ = std::fs::rename(&tmp, &root);
        Some(bin)
    }
}

/// The first range `/etc/subuid` gives the test user (start, count), by
/// name or by uid.
pub fn subuid_range(h: &Harness) -> Option<(u32, u32)> {
    subid_range(h, "/etc/subuid")
}

/// The first range `file` (`/etc/subuid` or `/etc/subgid`, both keyed by
/// the user's name or uid) gives the test user: (start, count).
pub fn subid_range(h: &Harness, file: &str) -> Option<(u32, u32)> {
    let name = h
        .user
        .as_ref()
        .map_or_else(|| std::env::var("USER").unwrap_or_default(), |u| u.name.clone());
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.trim().split(':').collect();
        match f.as_slice() {
            [owner, start, count] if *owner == name || *owner == h.uid.to_string() => {
                Some((start.parse().ok()?, count.parse().ok()?))
            }
            _ => None,
        }
    })
}

/// Whether fr can use subuid mode for the test user here: ranges in both
/// files and a setuid `newuidmap`/`newgidmap` (`.ci/run` sees to it).
pub fn subuid_ready(h: &Harness) -> bool {
    use std::os::unix::fs::MetadataExt;
    let name = h
        .user
        .as_ref()
        .map_or_else(|| std::env::var("USER").unwrap_or_default(), |u| u.name.clone());
    let listed = |file: &str| {
        std::fs::read_to_string(file).is_ok_and(|t| {
            t.lines().any(|l| {
                l.starts_with(&format!("{name}:")) || l.starts_with(&format!("{}:", h.uid))
            })
        })
    };
    let setuid =
        |p: &str| std::fs::metadata(p).is_ok_and(|m| m.mode() & 0o4000 != 0 && m.uid() == 0);
    listed("/etc/subuid")
        && listed("/etc/subgid")
        && setuid("/usr/bin/newuidmap")
        && setuid("/usr/bin/newgidmap")
}

/// A second unprivileged user, without subordinate ranges (`FR_TEST_USER2`,
/// default `frtest2`, which `.ci/run` creates). Needs the suite to run as
/// root, to act as two users.
pub fn second_user() -> Option<User> {
    if !is_root() {
        return cannot_run("a second test user needs the suite to run as root");
    }
    let name = std::env::var("FR_TEST_USER2").unwrap_or_else(|_| "frtest2".into());
    let user = match lookup_user(&name) {
        Ok(u) => u,
        Err(why) => return cannot_run(why),
    };
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text
            .lines()
            .any(|l| l.starts_with(&format!("{name}:")) || l.starts_with(&format!("{}:", user.uid)))
        {
            return cannot_run(format!("{name} must have no range in {file}"));
        }
    }
    Some(user)
}

impl Harness {
    /// `program` run as `user` (another test user), in the scratch directory.
    pub fn command_as(&self, user: &User, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = user_command(&Some(user.clone()), program);
        cmd.current_dir(&self.scratch).stdin(Stdio::null());
        cmd
    }

    /// A copy of the busybox rootfs owned by `user` (made as root).
    pub fn rootfs_for(&self, user: &User) -> Option<PathBuf> {
        let golden = self.golden_rootfs()?;
        let home = self.scratch(&format!("home-{}", user.name));
        std::os::unix::fs::chown(&home, Some(user.uid), Some(user.gid)).unwrap();
        let dest = home.join("rootfs");
        let ok = Command::new("cp").arg("-a").arg(golden).arg(&dest).status().unwrap().success()
            && Command::new("chown")
                .args(["-R", "-h", &format!("{}:{}", user.uid, user.gid)])
                .arg(&dest)
                .status()
                .unwrap()
                .success();
        assert!(ok, "copying the rootfs for {}", user.name);
        Some(dest)
    }
}

/// Runs `cmd` and returns what it did.
/// Runs `script` with `sh -e` in `dir` as real root, the oracle (the
/// harness runs as root where a test asks for one); its stdout.
pub fn as_root(dir: &Path, script: &str) -> String {
    let out = Command::new("sh").arg("-ec").arg(script).current_dir(dir).output().unwrap();
    assert!(
        out.status.success(),
        "as real root: {script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn run(cmd: &mut Command) -> Run {
    Run::from(cmd.output().expect("running a command"))
}

/// `tests/tools/tar_members.py ARCHIVE`: one line per member, to compare
/// two archives member by member.
pub fn tar_members(archive: &Path) -> String {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/tar_members.py");
    let out = Command::new("python3").arg(tool).arg(archive).output().expect("running python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Copies `file` into `dir` (owned by the test user, mode 0755).
pub fn install(h: &Harness, file: &Path, dir: &Path, name: &str) -> PathBuf {
    let dest = dir.join(name);
    // Copied by cp, not by this process: a descriptor open for writing
    // here would be inherited by whatever another test thread forks
    // meanwhile, and running the program would fail with ETXTBSY.
    let ok = Command::new("cp").arg(file).arg(&dest).status().unwrap().success();
    assert!(ok, "copying {} to {}", file.display(), dest.display());
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).unwrap();
    if let Some(u) = &h.user {
        chown(&dest, Some(u.uid), Some(u.gid)).unwrap();
    }
    dest
}

/// Copies a dynamically linked `file` into `root` at `/name` with every
/// library `ldd` names, at the same paths, so it runs with `root` as `/`.
pub fn install_dynamic(h: &Harness, file: &Path, root: &Path, name: &str) -> PathBuf {
    let out = Command::new("ldd").arg(file).output().expect("running ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    let libs = text.split_whitespace().filter(|w| w.starts_with('/')).map(PathBuf::from);
    for lib in libs {
        let dest = root.join(lib.strip_prefix("/").unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        // Resolve symlinks: the loader opens the names ldd prints.
        std::fs::copy(&lib, &dest).unwrap_or_else(|e| panic!("copying {}: {e}", lib.display()));
    }
    if let Some(u) = &h.user {
        let owner = format!("{}:{}", u.uid, u.gid);
        assert!(Command::new("chown")
            .args(["-R", "-h", &owner])
            .arg(root)
            .status()
            .unwrap()
            .success());
    }
    install(h, file, root, name)
}

/// The Debian fixtures (`tests/fixtures/debian-rootfs.sh`): a minbase
/// bookworm rootfs as real root made it (`base.tar`) and the packages the
/// tests install (`debs/`), built once by root into the cache.
pub fn debian(h: &Harness) -> Option<PathBuf> {
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = h.cache.join("debian-bookworm-v1");
    if dir.join("base.tar").exists() && dir.join("debs").exists() {
        return Some(dir);
    }
    if !is_root() {
        return cannot_run(
            "building the Debian fixture needs root (mmdebstrap); run the suite as root once",
        );
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/debian-rootfs.sh");
    let out = Command::new("sh").arg(&script).arg(&dir).output();
    match out {
        Ok(o) if o.status.success() => Some(dir),
        Ok(o) => cannot_run(format!(
            "{} failed (mmdebstrap and Debian's mirror needed; .ci/run installs mmdebstrap): {}",
            script.display(),
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => cannot_run(format!("running {}: {e}", script.display())),
    }
}

/// A fresh ext4 file system mounted (by root, from a loop file) on a
/// scratch directory owned by the test user; unmounted when dropped. On
/// it the inode number a new file gets depends on this test's own calls
/// alone: ext4 gives a new file the lowest free number of its parent's
/// (flex) group (`fs/ext4/ialloc.c: find_group_other()`,
/// `find_inode_bit()`), and on the shared disk any other process's new
/// file in that group takes a freed number first. Kept with its journal:
/// without one ext4 passes over a number freed in the last seconds
/// (`recently_deleted()`).
#[derive(Debug)]
pub struct Ext4 {
    pub dir: PathBuf,
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        // Lazily: a workload that outlived a failed test may still be in it.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

impl Harness {
    /// An [`Ext4`] of 32 MiB for the test user, or why not.
    pub fn private_ext4(&self, name: &str) -> Option<Ext4> {
        if !is_root() {
            return cannot_run(
                "mounting a file system of the test's own needs root: run the suite as root",
            );
        }
        let base = self.scratch(name);
        let file = base.join("fs.img");
        std::fs::File::create(&file).and_then(|f| f.set_len(32 << 20)).unwrap();
        let mkfs = run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&file));
        if mkfs.code != Some(0) {
            return cannot_run(format!("mkfs.ext4 (e2fsprogs; .ci/run installs it): {mkfs:?}"));
        }
        let dir = base.join("mnt");
        std::fs::create_dir(&dir).unwrap();
        let mount = run(Command::new("mount").args(["-o", "loop"]).arg(&file).arg(&dir));
        if mount.code != Some(0) {
            return cannot_run(format!("mount -o loop (a loop device): {}", mount.stderr));
        }
        let fs = Ext4 { dir };
        chown_to(&self.user, &fs.dir);
        Some(fs)
    }
}
