//! `fr build`, end to end, as the unprivileged test users.
//!
//! The acceptance tests build `tests/fixtures/build/acceptance.def` (a
//! minbase Debian from `debootstrap`, with `%setup`, `%files`, `%post`
//! adding a user, a set-group-id directory, devices, owners, `apt-get
//! install` of a package that sets a file capability and one with a setuid
//! binary, and `setcap`) as the user with subordinate ids and as the user
//! without, and compare the image, seen with `fr exec -f`, path by path
//! with what real root leaves taking the same steps
//! (`tests/fixtures/build/oracle.sh`: debootstrap with the same arguments,
//! then the same sections in a chroot). Both manifests come from one
//! static program (`tests/probe/manifest.c`): owner, group, mode, type,
//! device numbers, xattrs and link targets. Downloads go through a caching
//! proxy (`tests/tools/apt_proxy.py`), so each package is fetched once for
//! all the builds.
//!
//! The other tests use the host's static busybox and take seconds: the
//! layout Apptainer needs, DEST's rules, `--section`, conversions, `%files
//! from`, failures, ^C and `kill -9`.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use common::{cannot_run, harness, is_root, run, second_user, Harness, Run, User};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/build").join(name)
}

/// `path`, for an argument.
fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

// ---------------------------------------------------------------------
// The Debian mirror, through a caching proxy.

/// The proxy's URL, once per test process; `None` (after saying why) when
/// Debian's mirror cannot be reached.
fn proxy(h: &Harness) -> Option<&'static str> {
    static PROXY: OnceLock<Result<String, String>> = OnceLock::new();
    let got = PROXY.get_or_init(|| {
        let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/apt_proxy.py");
        let cache = h.cache.join("apt-proxy");
        let mut child = Command::new("python3")
            .arg(tool)
            .arg(&cache)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting tests/tools/apt_proxy.py (python3): {e}"))?;
        let mut port = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut port)
            .map_err(|e| format!("reading the proxy's port: {e}"))?;
        // The proxy ends when this process does, and its stdin with it.
        std::mem::forget(child.stdin.take());
        std::mem::forget(child);
        let url = format!("http://127.0.0.1:{}", port.trim());
        let check = run(Command::new("python3").args([
            "-c",
            "import sys, urllib.request as u; \
             o = u.build_opener(u.ProxyHandler({'http': sys.argv[1]})); \
             o.open(sys.argv[2], timeout=120).read()",
            &url,
            "http://deb.debian.org/debian/dists/bookworm/InRelease",
        ]));
        if check.code != Some(0) {
            return Err(format!(
                "Debian's mirror http://deb.debian.org/debian cannot be reached (the debootstrap \
                 build tests download from it, through a caching proxy): {}",
                check.stderr.trim()
            ));
        }
        Ok(url)
    });
    match got {
        Ok(url) => Some(url),
        Err(why) => cannot_run(why.clone()),
    }
}

// ---------------------------------------------------------------------
// The acceptance definition, its inputs and the oracle.

struct Inputs {
    def: PathBuf,
    data: PathBuf,
    setup: PathBuf,
    post: PathBuf,
}

/// A section's body as the definition file has it.
fn section(text: &str, name: &str) -> String {
    let mut out = String::new();
    let mut on = false;
    for line in text.lines() {
        if line.starts_with('%') {
            on = line.split_whitespace().next() == Some(name);
            continue;
        }
        if on {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The definition and what its `%files` copy, readable by both users
/// (owned by the first, as a user's own files are).
fn inputs(h: &'static Harness) -> &'static Inputs {
    static INPUTS: OnceLock<Inputs> = OnceLock::new();
    INPUTS.get_or_init(|| {
        let dir = h.scratch("build-inputs");
        let data = dir.join("data");
        for d in ["tree/sub", "glob"] {
            std::fs::create_dir_all(data.join(d)).unwrap();
        }
        let write = |rel: &str, text: &str, mode: u32| {
            let path = data.join(rel);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("tree/file", "hi\n", 0o644);
        write("tree/sub/deep", "x\n", 0o744);
        write("glob/a.sh", "echo a\n", 0o755);
        write("glob/b.sh", "echo b\n", 0o755);
        write("single.txt", "single\n", 0o644);
        symlink("file", data.join("tree/link")).unwrap();
        std::fs::hard_link(data.join("tree/file"), data.join("tree/hardlink")).unwrap();
        let text = std::fs::read_to_string(fixture("acceptance.def")).unwrap();
        let def = dir.join("acceptance.def");
        std::fs::write(&def, &text).unwrap();
        let setup = dir.join("setup.sh");
        std::fs::write(&setup, section(&text, "%setup")).unwrap();
        let post = dir.join("post.sh");
        std::fs::write(&post, section(&text, "%post")).unwrap();
        if let Some(u) = &h.user {
            let owner = format!("{}:{}", u.uid, u.gid);
            assert!(
                run(Command::new("chown").args(["-R", "-h", &owner]).arg(&dir)).code == Some(0)
            );
        }
        Inputs { def, data, setup, post }
    })
}

/// What real root's build leaves for `release`: the manifest of its tree
/// and the listing of its tar archive, made once per test process.
struct Oracle {
    manifest: String,
    listing: String,
}

/// The directories the manifests leave out: in a session they are the
/// container's own mounts (`/proc`, `/sys`, a `/dev` and a `/tmp` of its
/// own, the cover over `/.fr`), not the image's. The tar listings compare
/// what is in the image's `/dev` and `/tmp`.
const NOT_THE_IMAGES: [&str; 5] = ["/proc", "/sys", "/dev", "/tmp", "/.fr"];

fn oracle(h: &'static Harness, release: &str) -> Option<&'static Oracle> {
    static ORACLES: Mutex<Vec<(String, &'static Result<Oracle, String>)>> = Mutex::new(Vec::new());
    if !is_root() {
        return cannot_run("the build tests compare with real root: run the suite as root");
    }
    let url = proxy(h)?;
    let tool = manifest_tool(h)?;
    // One build of each release at a time; the two releases may overlap.
    static BUILDING: OnceLock<Mutex<HashMap<String, &'static Mutex<()>>>> = OnceLock::new();
    let lock = {
        let mut locks = BUILDING.get_or_init(Default::default).lock().unwrap();
        *locks.entry(release.to_string()).or_insert_with(|| Box::leak(Box::new(Mutex::new(()))))
    };
    let _one = lock.lock().unwrap_or_else(|e| e.into_inner());
    let done = ORACLES.lock().unwrap().iter().find(|(r, _)| r == release).map(|(_, o)| *o);
    let result: &'static Result<Oracle, String> = match done {
        Some(o) => o,
        None => {
            let made = Box::leak(Box::new(cached_oracle(h, release, url, &tool)));
            ORACLES.lock().unwrap().push((release.to_string(), made));
            made
        }
    };
    match result {
        Ok(o) => Some(o),
        Err(why) => cannot_run(why.clone()),
    }
}

/// Real root's build for `release` as a run before made it, or made now
/// and kept: under the test cache, by a key of everything it depends on
/// (this file, which makes its inputs, the definition, the oracle's
/// script, the manifest program, the host's debootstrap, and the
/// release's index as the proxy serves it to this run's builds, so that
/// a new point release makes a new oracle).
fn cached_oracle(
    h: &'static Harness,
    release: &str,
    url: &str,
    tool: &Path,
) -> Result<Oracle, String> {
    use std::hash::{Hash, Hasher};
    let index = run(Command::new("python3").args([
        "-c",
        "import sys, hashlib, urllib.request as u; \
         o = u.build_opener(u.ProxyHandler({'http': sys.argv[1]})); \
         print(hashlib.sha256(o.open(sys.argv[2], timeout=120).read()).hexdigest())",
        url,
        &format!("http://deb.debian.org/debian/dists/{release}/InRelease"),
    ]));
    if index.code != Some(0) {
        return Err(format!("the {release} index from Debian's mirror: {}", index.stderr.trim()));
    }
    let debootstrap =
        run(Command::new("dpkg-query").args(["-W", "-f", "${Version}", "debootstrap"]));
    let mut key = std::collections::hash_map::DefaultHasher::new();
    for part in [
        include_str!("build.rs"),
        include_str!("fixtures/build/acceptance.def"),
        include_str!("fixtures/build/oracle.sh"),
        include_str!("probe/manifest.c"),
        &debootstrap.stdout,
        &index.stdout,
        release,
    ] {
        part.hash(&mut key);
    }
    let dir = h.cache.join("build-oracle").join(format!("{release}-{:016x}", key.finish()));
    let (manifest, listing) = (dir.join("manifest"), dir.join("listing"));
    if let (Ok(manifest), Ok(listing)) =
        (std::fs::read_to_string(&manifest), std::fs::read_to_string(&listing))
    {
        eprintln!("real root's {release} build: kept from an earlier run in {}", p(&dir));
        return Ok(Oracle { manifest, listing });
    }
    let made = build_oracle(h, release, url, tool)?;
    let part = dir.with_extension("part");
    let _ = std::fs::remove_dir_all(&part);
    std::fs::create_dir_all(&part).unwrap();
    std::fs::write(part.join("manifest"), &made.manifest).unwrap();
    std::fs::write(part.join("listing"), &made.listing).unwrap();
    // Those kept for other keys are stale: this run made the one it uses.
    for old in std::fs::read_dir(h.cache.join("build-oracle")).unwrap().flatten() {
        let name = old.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{release}-")) && old.path() != part {
            let _ = std::fs::remove_dir_all(old.path());
        }
    }
    std::fs::rename(&part, &dir).unwrap();
    Ok(made)
}

fn build_oracle(
    h: &'static Harness,
    release: &str,
    url: &str,
    tool: &Path,
) -> Result<Oracle, String> {
    let i = inputs(h);
    let out = h.scratch(&format!("oracle-{release}"));
    let started = std::time::Instant::now();
    let built = run(Command::new("sh")
        .arg(fixture("oracle.sh"))
        .args([release, p(&out), p(&i.data), p(&i.setup), p(&i.post)])
        .env("http_proxy", url));
    if built.code != Some(0) {
        return Err(format!(
            "real root's build of {release} (tests/fixtures/build/oracle.sh; debootstrap, which \
             .ci/run installs) failed: {}{}",
            built.stderr,
            std::fs::read_to_string(out.join("debootstrap.log")).unwrap_or_default()
        ));
    }
    eprintln!("real root's {release} build: {:?}", started.elapsed());
    let root = out.join("R");
    let manifest = run(Command::new(tool).arg(&root).args(NOT_THE_IMAGES));
    assert_eq!(manifest.code, Some(0), "{}", manifest.stderr);
    let listing = run(Command::new("sh").arg("-c").arg(format!(
        "tar --numeric-owner --xattrs --xattrs-include='*' --sort=name -C {} -cf - . | \
         tar --numeric-owner --xattrs --xattrs-include='*' -tvvf -",
        p(&root)
    )));
    assert_eq!(listing.code, Some(0), "{}", listing.stderr);
    Ok(Oracle { manifest: manifest.stdout, listing: normal_listing(&listing.stdout) })
}

/// The static manifest program, built once.
fn manifest_tool(h: &Harness) -> Option<PathBuf> {
    h.compile("manifest.c", "manifest-static", &["-static"])
}

/// `tar -tvv` without what two builds of the same steps may differ in:
/// times, and the sizes of regular files (logs hold dates).
fn normal_listing(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.starts_with("  ") {
                return line.to_string();
            }
            // PERMS OWNER SIZE DATE TIME NAME...
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                [perms, owner, size, _date, _time, name @ ..] if !name.is_empty() => {
                    let size = if perms.starts_with('-') { "-" } else { size };
                    format!("{perms} {owner} {size} {}", name.join(" "))
                }
                _ => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn first_differences(want: &str, got: &str) -> String {
    let w: std::collections::BTreeSet<&str> = want.lines().collect();
    let g: std::collections::BTreeSet<&str> = got.lines().collect();
    let mut out: Vec<String> =
        w.difference(&g).take(15).map(|l| format!("real root only: {l}")).collect();
    out.extend(g.difference(&w).take(15).map(|l| format!("fr only:        {l}")));
    out.join("\n")
}

/// What the oracle must show, or it did not take the steps (a broken
/// oracle would let a broken fr pass).
const ORACLE_SHOWS: [&str; 13] = [
    "/usr/bin/passwd reg 4755 0:0 -",
    "/usr/bin/sudo reg 4755 0:0 -",
    "/usr/bin/ping reg 0755 0:0 - security.capability=",
    "/usr/local/bin/capped reg 0664 0:0 - security.capability=",
    "/srv/shared dir 2775 1000:1000 -",
    "/srv/shared/made-in-setgid reg 0664 0:1000 -",
    "/opt/devices/null chr 0664 0:0 1:3",
    "/opt/devices/loop blk 0600 0:0 7:0",
    "/opt/setup/file reg 0640 1:2 -",
    "/opt/data/file reg 0644 1000:0 -",
    "/opt/data/sub/deep reg 0744 0:0 -",
    "/opt/deep/er dir 0755 0:0 -",
    "/etc/shadow reg 0640 0:42 -",
];

/// `fr build` of the acceptance definition for `release` into `dir/NAME`,
/// as `user` (the first test user if `None`).
fn fr_build(
    h: &'static Harness,
    user: Option<&User>,
    dir: &Path,
    name: &str,
    release: &str,
    url: &str,
) -> (Run, PathBuf) {
    let i = inputs(h);
    let dest = dir.join(name);
    let args = [
        "build".to_string(),
        "--build-arg".into(),
        format!("DATA={}", p(&i.data)),
        "--build-arg".into(),
        format!("RELEASE={release}"),
        p(&dest).into(),
        p(&i.def).into(),
    ];
    let mut cmd = match user {
        Some(u) => h.command_as(u, &h.fr),
        None => h.command(&h.fr),
    };
    cmd.args(&args).current_dir(dir).env("http_proxy", url);
    let started = std::time::Instant::now();
    let out = run(&mut cmd);
    eprintln!("fr build {name} ({release}): {:?}", started.elapsed());
    (out, dest)
}

/// The image's manifest, seen in a session on it (`fr exec -f`) as `user`.
fn fr_manifest(h: &Harness, user: Option<&User>, image: &Path, tool: &Path) -> String {
    let bind = format!("{}:/tmp/manifest:ro", p(tool));
    let mut cmd = match user {
        Some(u) => h.command_as(u, &h.fr),
        None => h.command(&h.fr),
    };
    // From /, without the home bound: the image alone (fr exec binds the
    // caller's home and working directory by default, as Apptainer).
    cmd.args(["exec", "-f", "--no-home", "-B", &bind])
        .current_dir("/")
        .arg(image)
        .arg("/tmp/manifest")
        .arg("/")
        .args(NOT_THE_IMAGES);
    let out = run(&mut cmd);
    assert_eq!(out.code, Some(0), "the manifest under fr exec -f: {}", out.stderr);
    out.stdout
}

/// Builds the acceptance definition as `user` and compares the image with
/// real root's.
fn acceptance(release: &str, user: Option<User>) {
    let Some(h) = harness() else { return };
    let Some(url) = proxy(h) else { return };
    let Some(oracle) = oracle(h, release) else { return };
    let Some(tool) = manifest_tool(h) else { return };
    for want in ORACLE_SHOWS {
        assert!(oracle.manifest.lines().any(|l| l.starts_with(want)), "the oracle lacks {want:?}");
    }
    let dir = h.scratch(&format!("build-{release}"));
    if let Some(u) = &user {
        chown(&dir, Some(u.uid), Some(u.gid)).unwrap();
    }
    let (built, image) = fr_build(h, user.as_ref(), &dir, "img", release, url);
    assert_eq!(built.code, Some(0), "fr build failed:\n{}", built.stderr);
    for step in ["%setup", "%files", "%post", "%test", "done: sandbox"] {
        assert!(built.stderr.contains(&format!("fr: info: build: {step}")), "{}", built.stderr);
    }
    let fr = fr_manifest(h, user.as_ref(), &image, &tool);
    assert!(
        oracle.manifest == fr,
        "{} lines as real root, {} under fr; the differences:\n{}",
        oracle.manifest.lines().count(),
        fr.lines().count(),
        first_differences(&oracle.manifest, &fr)
    );
    // Nothing of the build is left beside DEST.
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from("img")], "{left:?}");
    // Apptainer's actions run what the definition says, with its environment.
    let mut cmd = match &user {
        Some(u) => h.command_as(u, &h.fr),
        None => h.command(&h.fr),
    };
    cmd.args(["exec", "-f"]).arg(&image).arg("/.singularity.d/actions/run");
    let ran = run(&mut cmd);
    assert_eq!(
        (ran.code, ran.stdout.as_str()),
        (Some(0), "hello from the runscript\n"),
        "{}",
        ran.stderr
    );
    let labels = std::fs::read_to_string(image.join(".singularity.d/labels.json")).unwrap();
    for want in [
        "\"Author\": \"fr-tests\"",
        "\"built.by\": \"fr-tests\"",
        "deffile.bootstrap\": \"debootstrap",
    ] {
        assert!(labels.contains(want), "{labels}");
    }
}

#[test]
fn a_debootstrap_build_with_subordinate_ids_is_what_real_root_builds() {
    let Some(h) = harness() else { return };
    if !common::subuid_ready(h) {
        cannot_run::<()>("the first test user needs subordinate ids (.ci/run gives frtest some)");
        return;
    }
    acceptance("bookworm", None);
}

#[test]
fn a_debootstrap_build_without_subordinate_ids_is_what_real_root_builds() {
    let Some(user) = second_user() else { return };
    acceptance("bookworm", Some(user));
}

#[test]
fn a_bullseye_build_is_what_real_root_builds() {
    acceptance("bullseye", None);
}

#[test]
fn a_build_to_a_tar_archive_lists_as_real_roots() {
    let Some(h) = harness() else { return };
    let Some(url) = proxy(h) else { return };
    let Some(oracle) = oracle(h, "bookworm") else { return };
    let dir = h.scratch("build-tar");
    let (built, archive) = fr_build(h, None, &dir, "img.tar.zst", "bookworm", url);
    assert_eq!(built.code, Some(0), "fr build failed:\n{}", built.stderr);
    assert!(built.stderr.contains("fr: info: build: done: tar archive"), "{}", built.stderr);
    let listing = run(Command::new("tar")
        .args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "-tvvf"])
        .arg(&archive));
    assert_eq!(listing.code, Some(0), "{}", listing.stderr);
    let fr = normal_listing(&listing.stdout);
    for want in [
        "crw-rw-r-- 0/0 1,3 ./opt/devices/null",
        "drwxrwsr-x 1000/1000 0 ./srv/shared/",
        "-rwxr-xr-x* 0/0 - ./usr/bin/ping",
        "  x: 20 security.capability",
        "-rwsr-xr-x 0/0 - ./usr/bin/sudo",
        "crw-rw-rw- 0/0 1,3 ./dev/null",
    ] {
        assert!(oracle.listing.lines().any(|l| l == want), "the oracle lacks {want:?}");
    }
    assert!(
        oracle.listing == fr,
        "{} members as real root's tar, {} in fr's; the differences:\n{}",
        oracle.listing.lines().count(),
        fr.lines().count(),
        first_differences(&oracle.listing, &fr)
    );
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from("img.tar.zst")], "{left:?}");
}

// ---------------------------------------------------------------------
// Quick builds from the host's static busybox.

/// Writes the definition `text` as `NAME.def` in `dir` (owned by the test
/// user) and returns its path.
fn def(h: &Harness, dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(format!("{name}.def"));
    std::fs::write(&path, text).unwrap();
    if let Some(u) = &h.user {
        chown(&path, Some(u.uid), Some(u.gid)).unwrap();
    }
    path
}

/// `fr ARGS` in `dir` as the test user.
fn fr_in(h: &Harness, dir: &Path, args: &[&str]) -> Run {
    h.fr_in(dir, args)
}

/// What `fr exec -f IMAGE sh -c SCRIPT` prints, as the test user.
fn inside(h: &Harness, image: &Path, script: &str) -> String {
    // From /, without the home bound: the image alone.
    let out =
        h.exec_in(Path::new("/"), Some(image), &["-f", "--no-home"], &["/bin/sh", "-c", script]);
    assert_eq!(out.code, Some(0), "in {}: {script}\n{}", image.display(), out.stderr);
    out.stdout
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    n.sort();
    n
}

const BUSYBOX: &str = r#"Bootstrap: busybox

%setup
    echo "$APPTAINER_ROOTFS" > "$APPTAINER_ROOTFS/rootfs-was"
    mkdir -p "$APPTAINER_ROOTFS/opt"
    touch "$APPTAINER_ROOTFS/opt/from-setup"
    chown 12:34 "$APPTAINER_ROOTFS/opt/from-setup"

%files
    {{ HOSTFILE }} /opt/copied

%environment
    export GREETING=hello

%post
    mkdir -p /opt/dev
    mknod /opt/dev/zero c 1 5
    chown 5:6 /opt/copied
    cat /mnt/host/secret > /opt/secret-copy
    echo 'export FROMPOST=yes' >> $APPTAINER_ENVIRONMENT
    echo 'from.post yes' >> $APPTAINER_LABELS

%runscript
    echo "run: $GREETING $FROMPOST $*"

%startscript
    echo started

%test
    test "$GREETING $FROMPOST" = "hello yes"

%labels
    Author fr-tests

%help
    A busybox image.
"#;

/// Apptainer's files in an image, with the modes Apptainer writes.
const LAYOUT: [&str; 24] = [
    "/.singularity.d dir 0755",
    "/.singularity.d/Singularity reg 0644",
    "/.singularity.d/actions dir 0755",
    "/.singularity.d/actions/exec reg 0755",
    "/.singularity.d/actions/run reg 0755",
    "/.singularity.d/actions/shell reg 0755",
    "/.singularity.d/actions/start reg 0755",
    "/.singularity.d/actions/test reg 0755",
    "/.singularity.d/env dir 0755",
    "/.singularity.d/env/01-base.sh reg 0755",
    "/.singularity.d/env/90-environment.sh reg 0755",
    "/.singularity.d/env/91-environment.sh reg 0664",
    "/.singularity.d/env/95-apps.sh reg 0755",
    "/.singularity.d/env/99-base.sh reg 0755",
    "/.singularity.d/env/99-runtimevars.sh reg 0755",
    "/.singularity.d/labels.json reg 0644",
    "/.singularity.d/libs dir 0755",
    "/.singularity.d/runscript reg 0755",
    "/.singularity.d/runscript.help reg 0644",
    "/.singularity.d/startscript reg 0755",
    "/.singularity.d/test reg 0755",
    "/environment lnk 0777",
    "/singularity lnk 0777",
    "/etc/passwd reg 0664",
];

/// A directory for a busybox build, with the host files it copies.
fn busybox_dir(h: &Harness, name: &str) -> (PathBuf, PathBuf) {
    let dir = h.scratch(name);
    let host = dir.join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("secret"), "from the bind\n").unwrap();
    std::fs::write(host.join("file"), "copied\n").unwrap();
    std::fs::set_permissions(host.join("file"), std::fs::Permissions::from_mode(0o640)).unwrap();
    if let Some(u) = &h.user {
        let owner = format!("{}:{}", u.uid, u.gid);
        assert_eq!(run(Command::new("chown").args(["-R", &owner]).arg(&host)).code, Some(0));
    }
    def(h, &dir, "busybox", BUSYBOX);
    (dir, host)
}

fn busybox_build(h: &Harness, dir: &Path, host: &Path, extra: &[&str]) -> Run {
    let bind = format!("{}:/mnt/host:ro", p(host));
    let file = format!("HOSTFILE={}", p(&host.join("file")));
    let mut args = vec!["build", "-B", &bind, "--build-arg", &file];
    args.extend_from_slice(extra);
    args.extend(["img", "busybox.def"]);
    fr_in(h, dir, &args)
}

#[test]
fn a_busybox_build_runs_its_sections_and_leaves_what_apptainer_runs() {
    let Some(h) = harness() else { return };
    let Some(tool) = manifest_tool(h) else { return };
    let (dir, host) = busybox_dir(h, "build-busybox");
    let built = busybox_build(h, &dir, &host, &[]);
    assert_eq!(built.code, Some(0), "{}", built.stderr);
    // One line per section, in Apptainer's order.
    let steps: Vec<&str> =
        built.stderr.lines().filter_map(|l| l.strip_prefix("fr: info: build: ")).collect();
    assert_eq!(
        steps,
        [
            "bootstrap busybox from the host's /bin/busybox",
            "%setup",
            "%files",
            "%post",
            "metadata (/.singularity.d)",
            "%test",
            &format!("the sandbox to {}", p(&dir.join("img"))),
            &format!("done: sandbox {}", p(&dir.join("img"))),
        ],
        "{}",
        built.stderr
    );
    let image = dir.join("img");
    assert_eq!(names(&dir), ["busybox.def", "host", "img"]);
    let manifest = fr_manifest(h, None, &image, &tool);
    for want in LAYOUT.iter().map(|l| format!("{l} 0:0")).chain([
        "/opt/from-setup reg 0664 12:34 -".to_string(),
        "/opt/copied reg 0640 5:6 -".into(),
        "/opt/dev/zero chr 0664 0:0 1:5".into(),
        "/bin/sh reg 0755 0:0 -".into(),
    ]) {
        assert!(manifest.lines().any(|l| l.starts_with(&want)), "no {want:?} in\n{manifest}");
    }
    // %setup saw the image's path; %post the -B bind.
    let rootfs_was = std::fs::read_to_string(image.join("rootfs-was")).unwrap();
    assert!(rootfs_was.trim().starts_with(p(&dir.join(".img.fr-build-"))), "{rootfs_was}");
    assert_eq!(std::fs::read_to_string(image.join("opt/secret-copy")).unwrap(), "from the bind\n");
    // The actions run the scripts with the image's environment.
    assert_eq!(inside(h, &image, "/.singularity.d/actions/run a b"), "run: hello yes a b\n");
    assert_eq!(inside(h, &image, "/.singularity.d/actions/test && echo ok"), "ok\n");
    assert_eq!(inside(h, &image, "/.singularity.d/actions/start"), "started\n");
    // As Apptainer keeps it: the section's text, its indentation too.
    assert_eq!(inside(h, &image, "cat /.singularity.d/runscript.help"), "    A busybox image.\n");
    let labels = std::fs::read_to_string(image.join(".singularity.d/labels.json")).unwrap();
    for want in
        ["\"Author\": \"fr-tests\"", "\"from.post\": \"yes\"", "\"org.label-schema.usage\":"]
    {
        assert!(labels.contains(want), "{labels}");
    }
    assert!(!image.join(".build.labels").exists() && !image.join(".post.script").exists());
    let kept = std::fs::read_to_string(image.join(".singularity.d/Singularity")).unwrap();
    // The definition as given, its templates as written.
    assert_eq!(kept, BUSYBOX);
}

#[test]
fn a_failed_test_keeps_the_image_and_says_where() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("build-failtest");
    def(h, &dir, "t", "Bootstrap: busybox\n\n%post\n    touch /made\n\n%test\n    exit 3\n");
    let out = fr_in(h, &dir, &["build", "img", "t.def"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("%test failed (exit status 3)"), "{}", out.stderr);
    let kept: Vec<String> =
        names(&dir).into_iter().filter(|n| n.starts_with(".img.fr-build-")).collect();
    assert_eq!(kept.len(), 1, "{:?}", names(&dir));
    let kept = dir.join(&kept[0]);
    assert!(out.stderr.contains(&format!("kept at {}", p(&kept))), "{}", out.stderr);
    assert!(!dir.join("img").exists());
    assert_eq!(inside(h, &kept, "ls /made"), "/made\n");
    // --notest builds it; fr rm removes what was kept.
    let out = fr_in(h, &dir, &["build", "--notest", "img", "t.def"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(fr_in(h, &dir, &["rm", p(&kept)]).code == Some(0));
    assert_eq!(names(&dir), ["img", "t.def"]);
}

#[test]
fn an_existing_dest_needs_force_and_is_replaced_whole() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("build-force");
    def(h, &dir, "a", "Bootstrap: busybox\n\n%post\n    touch /first\n");
    def(h, &dir, "b", "Bootstrap: busybox\n\n%post\n    touch /second\n");
    assert_eq!(fr_in(h, &dir, &["build", "img", "a.def"]).code, Some(0));
    let again = fr_in(h, &dir, &["build", "img", "b.def"]);
    assert_eq!(again.code, Some(1));
    assert!(
        again.stderr.contains("it exists") && again.stderr.contains("--force"),
        "{}",
        again.stderr
    );
    assert!(dir.join("img/first").exists());
    let forced = fr_in(h, &dir, &["build", "--force", "img", "b.def"]);
    assert_eq!(forced.code, Some(0), "{}", forced.stderr);
    assert!(dir.join("img/second").exists() && !dir.join("img/first").exists());
    assert_eq!(names(&dir), ["a.def", "b.def", "img"]);
    // A directory fr did not build is not removed, --force or not.
    let plain = dir.join("plain");
    std::fs::create_dir_all(plain.join("keep")).unwrap();
    let refused = fr_in(h, &dir, &["build", "--force", "plain", "a.def"]);
    assert_eq!(refused.code, Some(1));
    assert!(refused.stderr.contains("fr did not build"), "{}", refused.stderr);
    assert!(plain.join("keep").exists());
}

#[test]
fn section_runs_only_the_sections_named_on_the_existing_sandbox() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("build-section");
    let text = "Bootstrap: busybox\n\n%setup\n    echo x >> \"$APPTAINER_ROOTFS/setups\"\n\n\
                %post\n    echo x >> /posts\n\n%runscript\n    echo one\n";
    def(h, &dir, "s", text);
    assert_eq!(fr_in(h, &dir, &["build", "img", "s.def"]).code, Some(0));
    let image = dir.join("img");
    def(h, &dir, "s", &text.replace("echo one", "echo two"));
    let out = fr_in(h, &dir, &["build", "--section", "post", "img", "s.def"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(inside(h, &image, "cat /posts /setups"), "x\nx\nx\n");
    assert_eq!(inside(h, &image, "/.singularity.d/actions/run"), "one\n");
    let out = fr_in(h, &dir, &["build", "--section", "runscript", "img", "s.def"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(inside(h, &image, "/.singularity.d/actions/run; cat /posts"), "two\nx\nx\n");
    // On no sandbox, it says so.
    let none = fr_in(h, &dir, &["build", "--section", "post", "nothing", "s.def"]);
    assert_eq!(none.code, Some(1));
    assert!(none.stderr.contains("existing sandbox"), "{}", none.stderr);
}

#[test]
fn an_image_converts_with_its_fake_metadata() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    inside(
        h,
        &rootfs,
        "chown 123:456 /bin/busybox && mknod /etc/null c 1 3 && chmod 4711 /bin/busybox",
    );
    let dir = h.scratch("build-convert");
    // An fr image to a tar archive, that archive to a sandbox.
    let out = fr_in(h, &dir, &["build", "out.tar.gz", p(&rootfs)]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let listing =
        run(Command::new("tar").args(["--numeric-owner", "-tvzf"]).arg(dir.join("out.tar.gz")));
    assert!(
        listing.stdout.lines().any(|l| l.starts_with("-rws--x--x 123/456")),
        "{}",
        listing.stdout
    );
    assert!(listing
        .stdout
        .lines()
        .any(|l| l.starts_with("crw-r--r-- 0/0") && l.ends_with("./etc/null")));
    for (dest, spec) in [("from-image", p(&rootfs)), ("from-tar", "out.tar.gz")] {
        let out = fr_in(h, &dir, &["build", dest, spec]);
        assert_eq!(out.code, Some(0), "{dest}: {}", out.stderr);
        let image = dir.join(dest);
        assert_eq!(
            inside(h, &image, "stat -c '%a %u:%g %F %t:%T' /bin/busybox /etc/null"),
            "4711 123:456 regular file 0:0\n644 0:0 character special file 1:3\n",
            "{dest}"
        );
        let def = inside(h, &image, "cat /.singularity.d/Singularity");
        assert!(def.starts_with("bootstrap: localimage\nfrom: "), "{def}");
    }
}

#[test]
fn files_from_an_earlier_stage_keep_its_fake_metadata() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("build-stages");
    let text = "Bootstrap: busybox\nStage: one\n\n%post\n    mkdir -p /opt/x/sub\n    \
                echo data > /opt/x/sub/f\n    chown 7:8 /opt/x/sub/f\n    chmod 2750 /opt/x/sub\n    \
                mknod /opt/x/null c 1 3\n    ln /opt/x/sub/f /opt/x/hard\n\n\
                Bootstrap: scratch\nStage: two\n\n%files from one\n    /opt/x /copy/\n    \
                /bin/busybox /bin/\n";
    def(h, &dir, "m", text);
    let out = fr_in(h, &dir, &["build", "--notest", "img", "m.def"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("build: stage two: %files from one"), "{}", out.stderr);
    // The earlier stage's image is gone.
    assert_eq!(names(&dir), ["img", "m.def"]);
    let image = dir.join("img");
    // The second stage is scratch: no shell, the copied busybox alone.
    let out = h.exec(
        Some(&image),
        &["-f"],
        &[
            "/bin/busybox",
            "stat",
            "-c",
            "%n %a %u:%g %h %t:%T",
            "/copy",
            "/copy/x",
            "/copy/x/sub",
            "/copy/x/sub/f",
            "/copy/x/hard",
            "/copy/x/null",
            "/bin/busybox",
        ],
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (
            Some(0),
            // Stage one's %post ran with Apptainer's umask, 002.
            "/copy 755 0:0 3 0:0\n/copy/x 775 0:0 3 0:0\n/copy/x/sub 2750 0:0 2 0:0\n\
             /copy/x/sub/f 664 7:8 2 0:0\n/copy/x/hard 664 7:8 2 0:0\n/copy/x/null 664 0:0 1 1:3\n\
             /bin/busybox 755 0:0 1 0:0\n"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn a_bad_definition_says_the_line_and_builds_nothing() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("build-bad");
    // Each error names the file, the line and the word.
    for (name, text, says) in [
        (
            "unknown",
            "Bootstrap: scratch\n\n%nonsense\n    true\n",
            "unknown.def: line 3: unknown section %nonsense",
        ),
        (
            "nofrom",
            "Bootstrap: localimage\n\n%post\n    true\n",
            "nofrom.def: line 1: bootstrap localimage needs From:",
        ),
        (
            "unset",
            "Bootstrap: scratch\n\n%post\n    echo {{ NOTSET }}\n",
            "unset.def: line 4: build argument NOTSET",
        ),
        ("agent", "# an agent\nBootstrap: nonsense\n", "agent.def: line 2: "),
        ("header", "Bootstrap: scratch\nNoSuchKey: x\n", "header.def: line 2: "),
    ] {
        def(h, &dir, name, text);
        let out = fr_in(h, &dir, &["build", "img", &format!("{name}.def")]);
        assert_eq!(out.code, Some(1), "{name}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{name}: {}", out.stderr);
        let word = match name {
            "agent" => "nonsense",
            "header" => "nosuchkey",
            _ => "",
        };
        assert!(out.stderr.to_lowercase().contains(word), "{name}: {}", out.stderr);
        assert!(out.stderr.contains("fr: hint: "), "{name}: {}", out.stderr);
        assert!(names(&dir).iter().all(|n| n.ends_with(".def")), "{name}: {:?}", names(&dir));
    }
    // An agent fr does not run is refused before anything is written.
    def(h, &dir, "library", "Bootstrap: library\nFrom: alpine:3\n");
    let out = fr_in(h, &dir, &["build", "img", "library.def"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("Bootstrap: library is not supported"), "{}", out.stderr);
    // An OCI agent whose From: is no reference: the same, by name.
    def(h, &dir, "docker", "Bootstrap: docker\nFrom: UPPER/Case\n");
    let out = fr_in(h, &dir, &["build", "img", "docker.def"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("UPPER/Case"), "{}", out.stderr);
    assert!(names(&dir).iter().all(|n| n.ends_with(".def")));
}

/// A running `fr build`, killed and waited for if the test ends first.
struct Building(std::process::Child);

impl Drop for Building {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `fr build img DEF` in `dir` and waits until its stderr says
/// `%post` has started and its script runs; returns the process and the
/// rest of its stderr. A build that ends before fails the test with what
/// it said.
fn build_until_post(
    h: &Harness,
    dir: &Path,
    def: &str,
) -> (Building, BufReader<std::process::ChildStderr>) {
    let mut child = Building(
        h.fr_command(["build", "img", def])
            .current_dir(dir)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut err = BufReader::new(child.0.stderr.take().unwrap());
    let mut said = String::new();
    let mut in_post = false;
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            let status = child.0.wait();
            panic!("fr build ended before its %post ran ({status:?}):\n{said}");
        }
        said.push_str(&line);
        in_post |= line.contains("build: %post");
        // The script prints when it runs.
        if in_post && line.contains("sleeping") {
            return (child, err);
        }
    }
}

/// Waits until the process `args` runs (the `sleep` of [`sleeper`], which
/// the shell starts after it said so), while `build` does.
fn wait_for_process(build: &mut Building, args: &[&str]) {
    while processes(args).is_empty() {
        if let Ok(Some(status)) = build.0.try_wait() {
            panic!("fr build ended ({status}) before {args:?} ran");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A definition whose `%post` says it runs, then sleeps for `seconds`
/// (a number no other test sleeps, by which its process is found).
fn sleeper(seconds: u32) -> String {
    format!("Bootstrap: busybox\n\n%post\n    echo sleeping >&2\n    sleep {seconds}\n")
}

/// The processes on the host whose command line is `args`.
fn processes(args: &[&str]) -> Vec<String> {
    let want: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn an_interrupted_build_leaves_nothing() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("build-interrupt");
    // A shell waiting for its command does not end on SIGINT (as a
    // terminal's ^C would end its command too): fr build must stop it.
    def(h, &dir, "s", &sleeper(611));
    let (mut child, mut err) = build_until_post(h, &dir, "s.def");
    wait_for_process(&mut child, &["sleep", "611"]);
    let pid = rustix::process::Pid::from_child(&child.0);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let status = child.0.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("interrupted by SIGINT during %post"), "{rest}");
    // Nothing is left: no image, no directory of the build's, no process.
    assert_eq!(names(&dir), ["s.def"]);
    assert_eq!(processes(&["sleep", "611"]), Vec::<String>::new(), "{rest}");
}

#[test]
fn a_killed_build_is_named_by_the_next_and_fr_rm_removes_it() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("build-killed");
    def(h, &dir, "s", &sleeper(612));
    let (mut child, _err) = build_until_post(h, &dir, "s.def");
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let left = format!(".img.fr-build-{}", child.0.id());
    let tmp = format!("{left}.tmp");
    assert_eq!(names(&dir), [left.clone(), tmp.clone(), "s.def".into()]);
    def(h, &dir, "quick", "Bootstrap: busybox\n");
    let next = fr_in(h, &dir, &["build", "img", "quick.def"]);
    assert_eq!(next.code, Some(0), "{}", next.stderr);
    for (name, how) in [(&left, "fr rm"), (&tmp, "rm -r")] {
        let said = format!(
            "{} is what a build of {} that was killed left: {how} {} removes it",
            p(&dir.join(name)),
            p(&dir.join("img")),
            p(&dir.join(name))
        );
        assert!(next.stderr.contains(&said), "{}", next.stderr);
    }
    // The killed build's session went with it: the image's lock is free.
    let rm = fr_in(h, &dir, &["rm", &left]);
    assert_eq!(rm.code, Some(0), "{}", rm.stderr);
    let rm = run(h.command("rm").arg("-r").arg(&tmp).current_dir(&dir));
    assert_eq!(rm.code, Some(0), "{}", rm.stderr);
    assert_eq!(names(&dir), ["img", "quick.def", "s.def"]);
}

#[test]
fn a_dest_in_a_missing_directory_or_an_existing_one_without_force_is_refused() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("build-dest");
    def(h, &dir, "t", "Bootstrap: busybox\n");
    // DEST's directory is not made.
    let out = fr_in(h, &dir, &["build", "nodir/img", "t.def"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("fr: error: nodir/img: its directory nodir: "), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "fr: hint: fr build makes DEST, not the directories above it: mkdir -p nodir"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(names(&dir), ["t.def"]);
    // An archive that exists is kept without --force, and replaced with it.
    std::fs::write(dir.join("out.tar"), "mine\n").unwrap();
    let out = fr_in(h, &dir, &["build", "out.tar", "t.def"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("out.tar: it exists") && out.stderr.contains("--force"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(dir.join("out.tar")).unwrap(), "mine\n");
    assert_eq!(names(&dir), ["out.tar", "t.def"]);
    let out = fr_in(h, &dir, &["build", "--force", "out.tar", "t.def"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let members = common::tar_members(&dir.join("out.tar"));
    assert!(members.contains("bin/busybox"), "{members}");
    assert_eq!(names(&dir), ["out.tar", "t.def"]);
}

#[test]
fn a_failing_post_fails_the_build_and_leaves_dest_as_it_was() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("build-postfail");
    def(h, &dir, "good", "Bootstrap: busybox\n\n%post\n    echo old > /marker\n");
    def(
        h,
        &dir,
        "bad",
        "Bootstrap: busybox\n\n%post\n    echo new > /marker\n    false\n    touch /never\n",
    );
    // Without DEST: nothing is left.
    let out = fr_in(h, &dir, &["build", "img", "bad.def"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("fr: error: %post failed (exit status 1)"), "{}", out.stderr);
    // sh -e stopped at the failing command, and said which (-x).
    assert!(out.stderr.contains("+ false") && !out.stderr.contains("+ touch"), "{}", out.stderr);
    assert_eq!(names(&dir), ["bad.def", "good.def"]);
    // With DEST and --force: DEST stays the image it was.
    assert_eq!(fr_in(h, &dir, &["build", "img", "good.def"]).code, Some(0));
    let out = fr_in(h, &dir, &["build", "--force", "img", "bad.def"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(inside(h, &dir.join("img"), "cat /marker"), "old\n");
    assert_eq!(names(&dir), ["bad.def", "good.def", "img"]);
}

#[test]
fn a_files_source_that_is_not_there_names_the_line_and_builds_nothing() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("build-nosource");
    for (name, line, says) in [
        ("missing", "    /no/such/file /opt/x\n", "/no/such/file: No such file or directory"),
        ("pattern", "    /no/such/*.c /opt/\n", "/no/such/*.c matches no file on the host"),
    ] {
        let text = format!("Bootstrap: busybox\n\n%files\n    {}/t.def /opt/fine\n{line}", p(&dir));
        def(h, &dir, "t", &text);
        let out = fr_in(h, &dir, &["build", "img", "t.def"]);
        assert_eq!(out.code, Some(1), "{name}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!("fr: error: t.def: line 3: %files: {says}")),
            "{name}: {}",
            out.stderr
        );
        assert_eq!(names(&dir), ["t.def"], "{name}");
    }
    // From an earlier stage, the same.
    def(h, &dir, "t", "Bootstrap: busybox\nStage: one\n\nBootstrap: busybox\n\n%files from one\n    /no/such /opt/\n");
    let out = fr_in(h, &dir, &["build", "img", "t.def"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("t.def: line 6: stage 2: %files from one: /no/such is not in stage one"),
        "{}",
        out.stderr
    );
    assert_eq!(names(&dir), ["t.def"]);
}

/// A directory outside every image, with a file in it; what a build must
/// never change.
fn outside(h: &Harness, dir: &Path) -> PathBuf {
    let out = dir.join("outside");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("victim"), "untouched\n").unwrap();
    if let Some(u) = &h.user {
        let owner = format!("{}:{}", u.uid, u.gid);
        assert_eq!(run(Command::new("chown").args(["-R", &owner]).arg(&out)).code, Some(0));
    }
    out
}

/// The names and contents under `dir`.
fn listing(dir: &Path) -> String {
    run(Command::new("sh").arg("-c").arg(format!("cd {} && find . | sort && cat victim", p(dir))))
        .stdout
}

#[test]
fn files_copied_into_the_image_never_leave_it() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("build-escape");
    let out = outside(h, &dir);
    let before = listing(&out);
    let host = dir.join("host");
    std::fs::create_dir_all(host.join("app/sub")).unwrap();
    std::fs::write(host.join("file"), "copied\n").unwrap();
    std::fs::write(host.join("app/sub/evil"), "evil\n").unwrap();
    std::fs::create_dir_all(host.join("merged")).unwrap();
    std::fs::write(host.join("merged/victim"), "merged\n").unwrap();
    if let Some(u) = &h.user {
        let owner = format!("{}:{}", u.uid, u.gid);
        assert_eq!(run(Command::new("chown").args(["-R", &owner]).arg(&host)).code, Some(0));
    }
    // %setup leaves links in the image to the host directory, by absolute
    // and by relative paths, and to the file in it.
    let text = format!(
        "Bootstrap: busybox\n\n%setup\n    mkdir -p $APPTAINER_ROOTFS/opt\n    \
         ln -s {o} $APPTAINER_ROOTFS/opt/abs\n    \
         ln -s ../../../../../../../../../../../../{o} $APPTAINER_ROOTFS/opt/rel\n    \
         ln -s {o}/victim $APPTAINER_ROOTFS/opt/victim\n    \
         mkdir $APPTAINER_ROOTFS/opt/merged\n    \
         ln -s {o}/victim $APPTAINER_ROOTFS/opt/merged/victim\n\n\
         %files\n    {f} ../../../../../../up\n    {f} /opt/abs/through-abs\n    \
         {f} /opt/rel/through-rel\n    {f} /opt/victim\n    {m} /opt/\n",
        o = p(&out),
        f = p(&host.join("file")),
        m = p(&host.join("merged")),
    );
    def(h, &dir, "t", &text);
    let built = fr_in(h, &dir, &["build", "img", "t.def"]);
    assert_eq!(built.code, Some(0), "{}", built.stderr);
    assert_eq!(listing(&out), before, "the host directory changed");
    let image = dir.join("img");
    // Each landed inside: `..` stops at the image's root, and the links,
    // the last one of DST too, lead to the image's own path of the host
    // directory (Apptainer's securejoin, and what root in a chroot sees).
    // Read from the host side: a session mounts its own /tmp, which hides
    // the image's when the test runs under /tmp.
    let inner = image.join(p(&out).trim_start_matches('/'));
    for copy in [
        image.join("up"),
        inner.join("through-abs"),
        inner.join("through-rel"),
        inner.join("victim"),
    ] {
        assert_eq!(
            std::fs::read_to_string(&copy).ok().as_deref(),
            Some("copied\n"),
            "{}",
            copy.display()
        );
    }
    let link = std::fs::read_link(image.join("opt/victim")).unwrap();
    assert_eq!(link, out.join("victim"));
    // A directory merged into one the image has: a link there is replaced
    // by the file, never written through (Apptainer's cp -f writes
    // through it, onto the host file).
    assert_eq!(
        inside(h, &image, "test ! -L /opt/merged/victim && cat /opt/merged/victim"),
        "merged\n"
    );
    assert!(!dir.join("up").exists() && !Path::new("/up").exists());

    // A directory copied onto a link in the image: refused, as cp refuses
    // it, the link neither followed nor replaced.
    let text = format!(
        "Bootstrap: busybox\n\n%setup\n    mkdir -p $APPTAINER_ROOTFS/opt/app\n    \
         ln -s {o} $APPTAINER_ROOTFS/opt/app/sub\n\n%files\n    {a} /opt/\n",
        o = p(&out),
        a = p(&host.join("app")),
    );
    def(h, &dir, "d", &text);
    let built = fr_in(h, &dir, &["build", "dirs", "d.def"]);
    assert_eq!(built.code, Some(1), "{}", built.stderr);
    assert!(
        built.stderr.contains("d.def: line 7: %files: /opt/app/sub is not a directory in the image (a symbolic link is not followed)")
            || built.stderr.contains("%files: /opt/app/sub is not a directory in the image (a symbolic link is not followed)"),
        "{}",
        built.stderr
    );
    assert_eq!(listing(&out), before, "the host directory changed");
    assert_eq!(names(&dir), ["d.def", "host", "img", "outside", "t.def"]);
}
