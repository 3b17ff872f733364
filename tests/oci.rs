//! OCI images: fr unpacks them, as the unprivileged user, into the tree
//! real root's `umoci unpack` makes, and refuses hostile ones by name,
//! leaving nothing behind.
//!
//! The images are made with real tools as root (the oracle): `umoci`
//! (init, new, unpack, repack, config, raw add-layer) over a busybox tree
//! with device nodes, set-id files, a file owned by 1234:50, a file
//! capability and its hard link, an ACL; a second layer (GNU tar and
//! Python's tarfile) that deletes a file, makes a directory opaque and
//! hard-links a file of the first layer; `skopeo copy` into an OCI
//! archive and a docker archive. Built once into the test cache.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use common::{as_root, cannot_run, harness, is_root, Harness, Run};

/// Bumped whenever the recipe changes, so that a stale fixture is rebuilt.
const FIXTURE: &str = "oci-fixture-v1";

/// The images: `img` (an OCI layout, tag v1), `img.tar` (oci-archive),
/// `img-docker.tar` (docker-archive), `oracle/rootfs` (umoci unpack as
/// real root) and the layer tars that went into them.
const MAKE: &str = r#"
umoci init --layout img
umoci new --image img:base
umoci unpack --image img:base bundle
R=bundle/rootfs
mkdir -p $R/bin $R/etc $R/dev $R/srv $R/usr/bin $R/opaque/sub $R/tmp $R/proc $R/sys
chmod 1777 $R/tmp
cp /bin/busybox $R/bin/busybox
for a in sh ls cat stat find echo id true env pwd; do ln -s busybox $R/bin/$a; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > $R/etc/passwd
printf 'root:x:0:\n' > $R/etc/group
mknod $R/dev/null c 1 3
mknod $R/dev/loop0 b 7 0
cp /bin/busybox $R/usr/bin/suid && chmod 4755 $R/usr/bin/suid
cp /bin/busybox $R/usr/bin/sgid && chown 0:50 $R/usr/bin/sgid && chmod 2711 $R/usr/bin/sgid
echo owned > $R/srv/owned && chown 1234:50 $R/srv/owned
echo ping > $R/usr/bin/ping && setcap cap_net_raw+ep $R/usr/bin/ping
ln $R/usr/bin/ping $R/usr/bin/ping-link
echo a > $R/opaque/a && echo b > $R/opaque/sub/b
echo gone > $R/gone
mkdir $R/acl && setfacl -m u:1234:rwx $R/acl
umoci repack --image img:base bundle
mkdir -p l2/opaque && touch l2/.wh.gone l2/opaque/.wh..wh..opq && echo c > l2/opaque/c
tar --format=pax --no-recursion -C l2 -cf layer2.tar ./.wh.gone ./opaque ./opaque/.wh..wh..opq ./opaque/c
python3 - <<'PY'
import tarfile
t = tarfile.open("layer2.tar", "a")
i = tarfile.TarInfo("usr/bin/suid-link"); i.type = tarfile.LNKTYPE; i.linkname = "usr/bin/suid"
t.addfile(i); t.close()
PY
umoci config --image img:base --tag v1 --config.env 'GREETING=hello there' \
    --config.cmd /bin/echo --config.cmd 'from cmd' --config.workingdir /srv \
    --config.label org.example=yes
umoci raw add-layer --image img:v1 layer2.tar
skopeo copy -q oci:img:v1 oci-archive:img.tar:v1
skopeo copy -q oci:img:v1 docker-archive:img-docker.tar:example/img:v1
umoci unpack --image img:v1 oracle
rm -rf bundle
chmod -R a+rX img img.tar img-docker.tar layer2.tar
"#;

/// The tools the fixture needs, or why the test cannot run.
fn tools_missing() -> Option<String> {
    for tool in ["umoci", "skopeo", "setcap", "setfacl", "python3", "busybox"] {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!(
                "{tool} is missing (apt-get install umoci skopeo libcap2-bin acl python3 \
                 busybox-static; .ci/run does)"
            ));
        }
    }
    None
}

/// The fixture, built once as real root.
fn fixture(h: &Harness) -> Option<PathBuf> {
    static BUILDING: Mutex<()> = Mutex::new(());
    if !is_root() {
        return cannot_run("the OCI tests make their images and the oracle as root: run as root");
    }
    if let Some(why) = tools_missing() {
        return cannot_run(why);
    }
    let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let done = h.cache.join(FIXTURE);
    if done.join("oracle/rootfs").is_dir() {
        return Some(done);
    }
    let build = h.cache.join(format!("{FIXTURE}.build.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&build);
    std::fs::create_dir_all(&build).unwrap();
    as_root(&build, MAKE);
    if std::fs::rename(&build, &done).is_err() {
        let _ = std::fs::remove_dir_all(&build);
    }
    Some(done)
}

/// The static manifest tool.
fn manifest_tool(h: &Harness) -> Option<PathBuf> {
    h.compile("oci_manifest.c", "oci-manifest-static", &["-static"])
}

/// What is not the image's own in a running container, nor umoci's.
const SKIP: [&str; 8] =
    ["/proc", "/sys", "/dev", "/tmp", "/.fr", "/.singularity.d", "/manifest", "/x"];

/// The manifest real root's `umoci unpack` gives.
fn oracle_manifest(h: &Harness, fixture: &Path) -> Option<String> {
    let tool = manifest_tool(h)?;
    let rootfs = fixture.join("oracle/rootfs");
    let out = Command::new(&tool).arg(&rootfs).args(SKIP).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).unwrap())
}

/// A cache directory of the test's own.
fn cache_home(h: &Harness) -> PathBuf {
    h.scratch("xdg-cache")
}

/// `fr ARGS` as the test user with `XDG_CACHE_HOME` set.
fn fr(h: &Harness, cache: &Path, args: &[&str]) -> Run {
    // A session sees the image alone: run from /, without the home bound
    // (fr exec binds the caller's home and working directory by default,
    // as Apptainer).
    let mut args = args.to_vec();
    if args.first() == Some(&"exec") {
        args.insert(1, "--no-home");
    }
    let mut cmd = h.fr_command(&args);
    cmd.env("XDG_CACHE_HOME", cache).current_dir("/");
    common::run(&mut cmd)
}

/// The manifest of `source` as `fr exec -f` shows it.
fn fr_manifest(h: &Harness, cache: &Path, source: &str) -> Option<String> {
    let tool = manifest_tool(h)?;
    // Bound on the container's /tmp, so that no mount point is made in
    // the image.
    let bind = format!("{}:/tmp/manifest", tool.display());
    let mut args = vec!["exec", "-f", "-B", &bind, source, "--", "/tmp/manifest", "/"];
    args.extend(SKIP);
    let run = fr(h, cache, &args);
    Some(run.ok())
}

fn first_difference(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let only_a: Vec<&&str> = a.iter().filter(|l| !b.contains(l)).take(8).collect();
    let only_b: Vec<&&str> = b.iter().filter(|l| !a.contains(l)).take(8).collect();
    format!("real root only:\n{only_a:#?}\nfr only:\n{only_b:#?}")
}

/// The images the cache holds, and its layers: (images, layers, tmp entries).
fn cache_contents(cache: &Path) -> (usize, usize, usize) {
    let count = |d: &str| {
        std::fs::read_dir(cache.join("fr/oci").join(d))
            .map_or(0, |r| r.flatten().filter(|e| e.path().is_dir()).count())
    };
    (count("images"), count("layers"), count("tmp"))
}

fn same_as_umoci(source: impl Fn(&Path) -> String) {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let Some(oracle) = oracle_manifest(h, &fixture) else { return };
    for want in [
        "/srv/owned reg 0644 1234:50",
        "/usr/bin/suid reg 4755 0:0",
        "/usr/bin/suid-link reg 4755 0:0 - 1982256 link=/usr/bin/suid",
        "/usr/bin/sgid reg 2711 0:50",
        "/usr/bin/ping reg 0644 0:0 - 5 security.capability=",
        "link=/usr/bin/ping",
        "/acl dir 0775 0:0 - - system.posix_acl_access=",
        "/opaque/c reg",
    ] {
        assert!(oracle.contains(want), "the oracle lacks {want:?}: the fixture changed?\n{oracle}");
    }
    for gone in ["/gone ", "/opaque/a ", "/opaque/sub "] {
        assert!(!oracle.contains(gone), "the oracle has {gone:?}: whiteouts not applied?");
    }
    let cache = cache_home(h);
    let Some(got) = fr_manifest(h, &cache, &source(&fixture)) else { return };
    assert!(oracle == got, "manifests differ:\n{}", first_difference(&oracle, &got));
    // Again, from the cache: the same.
    let Some(again) = fr_manifest(h, &cache, &source(&fixture)) else { return };
    assert_eq!(got, again);
    let (images, layers, tmp) = cache_contents(&cache);
    assert_eq!((images, layers, tmp), (1, 2, 0), "one image, its two layers, nothing left in tmp");
    // The devices under /dev, which the container's own /dev hides, are
    // checked in the archive `fr export` makes of the cached image, against
    // real root's GNU tar of umoci's tree.
    let image = std::fs::read_dir(cache.join("fr/oci/images"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .unwrap();
    let out = h.scratch("export").join("fr.tar");
    fr(h, &cache, &["export", &image.to_string_lossy(), &out.to_string_lossy()]).ok();
    let oracle_tar = h.scratch("export-oracle").join("root.tar");
    as_root(
        &fixture,
        &format!(
            "tar --xattrs --xattrs-include='*' --acls -C oracle/rootfs -cf {} ./dev",
            oracle_tar.display()
        ),
    );
    let devs = |listing: String| -> Vec<String> {
        listing.lines().filter(|l| l.starts_with("dev/")).map(str::to_string).collect()
    };
    let (want, got) = (devs(common::tar_members(&oracle_tar)), devs(common::tar_members(&out)));
    assert_eq!(want.len(), 2, "{want:?}");
    assert_eq!(want, got);
}

#[test]
fn an_oci_layout_unpacks_as_umoci_unpacks_it_as_real_root() {
    same_as_umoci(|f| format!("oci:{}:v1", f.join("img").display()));
}

#[test]
fn an_oci_archive_unpacks_as_umoci_unpacks_it_as_real_root() {
    same_as_umoci(|f| format!("oci-archive:{}:v1", f.join("img.tar").display()));
}

#[test]
fn a_docker_archive_unpacks_as_umoci_unpacks_it_as_real_root() {
    same_as_umoci(|f| format!("docker-archive:{}", f.join("img-docker.tar").display()));
}

/// A docker archive of the same image has another key (it has no
/// manifest), but the same layers: they are unpacked once, and the two
/// images share their files.
#[test]
fn each_layer_is_unpacked_once_however_many_images_share_it() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let cache = cache_home(h);
    let oci = format!("oci:{}:v1", fixture.join("img").display());
    let docker = format!("docker-archive:{}", fixture.join("img-docker.tar").display());
    fr(h, &cache, &["exec", "-f", &oci, "--", "true"]).ok();
    fr(h, &cache, &["exec", "-f", &docker, "--", "true"]).ok();
    assert_eq!(cache_contents(&cache), (2, 2, 0));
    let inodes: Vec<u64> = std::fs::read_dir(cache.join("fr/oci/images"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(e.path().join("srv/owned")).unwrap().ino()
        })
        .collect();
    assert_eq!(inodes.len(), 2);
    assert_eq!(inodes[0], inodes[1], "one file for both images");
    let list = fr(h, &cache, &["cache", "list"]).ok();
    assert!(list.contains(&oci) && list.contains(&docker), "{list}");
    assert!(list.contains("2 images, 2 layers"), "{list}");
    // The image runs read-only: its files are the layers' too.
    let run = fr(h, &cache, &["exec", "-f", &oci, "--", "sh", "-c", "echo x >> /srv/owned"]);
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("Read-only"), "{run:?}");
    assert_eq!(
        std::fs::read_to_string(fixture.join("oracle/rootfs/srv/owned")).unwrap(),
        "owned\n"
    );
    // Two sessions at once in one cached image (its lock is shared), and
    // `fr cache clean` refused while one runs.
    let mut first =
        h.fr_command(["exec", "-f", &oci, "--", "sh", "-c", "echo ready; read x || true"]);
    first.env("XDG_CACHE_HOME", &cache);
    let mut first = first
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(first.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let second = fr(h, &cache, &["exec", "-f", &oci, "--", "cat", "/srv/owned"]);
    let clean = fr(h, &cache, &["cache", "clean"]);
    drop(first.stdin.take());
    assert!(first.wait().unwrap().success());
    assert_eq!(second.ok(), "owned\n");
    assert_ne!(clean.code, Some(0), "{clean:?}");
    assert!(clean.stderr.contains("in use"), "{clean:?}");
    assert_eq!(cache_contents(&cache), (2, 2, 0), "nothing removed while in use");
    fr(h, &cache, &["cache", "clean"]).ok();
    assert_eq!(cache_contents(&cache), (0, 0, 0));
    let list = fr(h, &cache, &["cache", "list"]).ok();
    assert!(list.contains("0 images, 0 layers"), "{list}");
}

/// Env, Entrypoint/Cmd, WorkingDir and Labels of the config, as Apptainer
/// keeps them in /.singularity.d.
#[test]
fn the_image_config_is_carried_over() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let cache = cache_home(h);
    let oci = format!("oci:{}:v1", fixture.join("img").display());
    let run = |script: &str| fr(h, &cache, &["exec", "-f", &oci, "--", "sh", "-c", script]).ok();
    assert_eq!(run("/.singularity.d/runscript"), "from cmd\n");
    assert_eq!(run("/.singularity.d/runscript pwd"), "/srv\n");
    assert_eq!(
        run(". /.singularity.d/env/10-docker2singularity.sh; echo $GREETING"),
        "hello there\n"
    );
    assert!(run("cat /.singularity.d/labels.json").contains("\"org.example\": \"yes\""));
}

/// Real root's tools make an image, the test spoils it in one way, and fr
/// refuses it with `want` in its message, leaving no image, layer or
/// scratch directory in the cache.
fn refused(h: &Harness, source: &str, want: &[&str]) {
    let cache = cache_home(h);
    let run = fr(h, &cache, &["exec", "-f", source, "--", "true"]);
    assert_eq!(run.code, Some(125), "{run:?}");
    for w in want {
        assert!(run.stderr.contains(w), "{w:?} not in:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let (images, _, tmp) = cache_contents(&cache);
    assert_eq!((images, tmp), (0, 0), "an image or a scratch directory was left: {run:?}");
}

/// A copy of the fixture's layout, writable by real root, in `dir`.
fn layout_copy(h: &Harness, fixture: &Path, name: &str) -> PathBuf {
    let dir = h.scratch(name);
    as_root(&dir, &format!("cp -a {}/img img && chmod -R a+rX img", fixture.display()));
    dir.join("img")
}

/// The blob of layer `n` (1-based) of tag v1 in `layout`.
fn layer_blob(layout: &Path, n: usize) -> PathBuf {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "v1")
        .unwrap();
    let hex = |d: &serde_json::Value| d.as_str().unwrap().trim_start_matches("sha256:").to_string();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(hex(&m["digest"]))).unwrap(),
    )
    .unwrap();
    layout.join("blobs/sha256").join(hex(&manifest["layers"][n - 1]["digest"]))
}

#[test]
fn a_layer_whose_digest_does_not_match_is_refused_by_name() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let layout = layout_copy(h, &fixture, "oci-digest");
    let blob = layer_blob(&layout, 1);
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&blob, &bytes).unwrap();
    let name = blob.file_name().unwrap().to_string_lossy().to_string();
    refused(
        h,
        &format!("oci:{}:v1", layout.display()),
        &["layer 1 of 2", &name, "its content's digest is sha256:"],
    );
}

/// A cache home the user cannot write is named, with the way out, and
/// nothing runs.
#[test]
fn an_unwritable_cache_home_is_named_with_the_way_out() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    // A directory of root's, 0755: the test user may not make fr/ in it.
    let cache = h.scratch("xdg-cache-root");
    std::fs::set_permissions(&cache, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = common::run(std::process::Command::new("chown").arg("0:0").arg(&cache));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let layout = layout_copy(h, &fixture, "oci-cache-home");
    let source = format!("oci:{}:v1", layout.display());
    let out = fr(h, &cache, &["exec", "-f", &source, "--", "echo", "ran"]);
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(!out.stdout.contains("ran"), "{out:?}");
    assert!(
        out.stderr.contains(&format!("the cache of OCI images at {}/fr", cache.display()))
            && out.stderr.contains("Permission denied")
            && out.stderr.contains("set XDG_CACHE_HOME"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_truncated_layer_is_refused_by_name() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let layout = layout_copy(h, &fixture, "oci-truncated");
    let blob = layer_blob(&layout, 1);
    let bytes = std::fs::read(&blob).unwrap();
    std::fs::write(&blob, &bytes[..bytes.len() / 3]).unwrap();
    refused(h, &format!("oci:{}:v1", layout.display()), &["layer 1 of 2", "truncated or replaced"]);
    // A truncated archive, cut inside the blob of layer 1.
    let dir = h.scratch("oci-archive-cut");
    let archive = dir.join("cut.tar");
    let full = std::fs::read(fixture.join("img.tar")).unwrap();
    std::fs::write(&archive, &full[..full.len() / 2]).unwrap();
    let run = fr(
        h,
        &cache_home(h),
        &["exec", "-f", &format!("oci-archive:{}", archive.display()), "--", "true"],
    );
    assert_eq!(run.code, Some(125), "{run:?}");
    assert!(run.stderr.contains("cut.tar"), "{}", run.stderr);
}

/// A hostile layer, added to the fixture's image by `umoci raw add-layer`
/// as real root, from a tar Python's tarfile writes with `members`
/// (name, type, link target).
fn hostile(h: &Harness, fixture: &Path, name: &str, members: &[(&str, char, &str)]) -> String {
    let layout = layout_copy(h, fixture, name);
    let dir = layout.parent().unwrap();
    let mut py = String::from(
        "import tarfile, io\nt = tarfile.open('evil.tar', 'w', format=tarfile.PAX_FORMAT)\n",
    );
    for (member, kind, link) in members {
        py += &format!(
            "i = tarfile.TarInfo({member:?}); i.type = {}; i.linkname = {link:?}\n\
             data = b'evil' if i.type == tarfile.REGTYPE else b''; i.size = len(data)\n\
             t.addfile(i, io.BytesIO(data))\n",
            match kind {
                'f' => "tarfile.REGTYPE",
                'd' => "tarfile.DIRTYPE",
                'l' => "tarfile.SYMTYPE",
                'h' => "tarfile.LNKTYPE",
                _ => unreachable!(),
            }
        );
    }
    py += "t.close()\n";
    std::fs::write(dir.join("evil.py"), py).unwrap();
    as_root(dir, "python3 evil.py && umoci raw add-layer --image img:v1 --tag evil evil.tar && chmod -R a+rX img");
    format!("oci:{}:evil", layout.display())
}

#[test]
fn members_that_would_land_outside_the_image_are_refused() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let escape = h.scratch("escape-target");
    let dotdot = hostile(h, &fixture, "oci-dotdot", &[("../../../escaped", 'f', "")]);
    refused(h, &dotdot, &["layer 3 of 3", "member `../../../escaped`", "`..` component"]);
    let through = hostile(
        h,
        &fixture,
        "oci-symlink",
        &[("esc", 'l', &escape.to_string_lossy()), ("esc/escaped", 'f', "")],
    );
    refused(h, &through, &["member `esc/escaped`", "symbolic link is not followed"]);
    assert!(!escape.join("escaped").exists(), "a file was written through the symbolic link");
    let whiteout = hostile(h, &fixture, "oci-whiteout", &[("srv/.wh...", 'f', "")]);
    refused(h, &whiteout, &["member `srv/.wh...`", "whiteout of `.` or `..`"]);
    let hardlink = hostile(h, &fixture, "oci-hardlink", &[("pw", 'h', "../../../etc/passwd")]);
    refused(h, &hardlink, &["member `pw`", "`..` component"]);
    let store = hostile(h, &fixture, "oci-store", &[(".wh..fr", 'f', "")]);
    refused(h, &store, &["fr's metadata store"]);
}

/// fr writes the config's runscript and environment into the unpacked
/// image from the host side; a layer that made `/.singularity.d` a link to
/// a host directory is refused by name, and nothing lands behind the link.
#[test]
fn metadata_is_never_written_through_a_layers_symbolic_link() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let escape = h.scratch("metadata-escape");
    let linked = hostile(
        h,
        &fixture,
        "oci-metadata-link",
        &[(".singularity.d", 'l', &escape.to_string_lossy())],
    );
    refused(h, &linked, &[".singularity.d", "symbolic link"]);
    let left: Vec<_> = std::fs::read_dir(&escape).unwrap().collect();
    assert!(left.is_empty(), "fr wrote behind the link: {left:?}");
}

#[test]
fn bad_json_and_other_platforms_are_refused_by_name() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    // index.json that is no JSON.
    let layout = layout_copy(h, &fixture, "oci-badjson");
    std::fs::write(layout.join("index.json"), "{\"schemaVersion\": 2, \"manifests\": [").unwrap();
    refused(h, &format!("oci:{}:v1", layout.display()), &["index.json"]);
    // A manifest that is no manifest, its digest and size right.
    let layout = layout_copy(h, &fixture, "oci-badmanifest");
    let garbage = b"{\"schemaVersion\": 2, \"layers\": 7}";
    let hex = as_root(
        &layout,
        "printf '%s' '{\"schemaVersion\": 2, \"layers\": 7}' | sha256sum | cut -c1-64",
    );
    let hex = hex.trim();
    std::fs::write(layout.join("blobs/sha256").join(hex), garbage).unwrap();
    let text = std::fs::read_to_string(layout.join("index.json")).unwrap();
    let mut index: serde_json::Value = serde_json::from_str(&text).unwrap();
    for m in index["manifests"].as_array_mut().unwrap() {
        m["digest"] = serde_json::json!(format!("sha256:{hex}"));
        m["size"] = serde_json::json!(garbage.len());
    }
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    refused(
        h,
        &format!("oci:{}:v1", layout.display()),
        &["manifest sha256:", "it is not a valid image manifest", "line 1 column"],
    );
    // A manifest whose descriptor claims 1 TB.
    let layout = layout_copy(h, &fixture, "oci-huge");
    let text = std::fs::read_to_string(layout.join("index.json")).unwrap();
    let mut index: serde_json::Value = serde_json::from_str(&text).unwrap();
    for m in index["manifests"].as_array_mut().unwrap() {
        m["size"] = serde_json::json!(1u64 << 40);
    }
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    refused(h, &format!("oci:{}:v1", layout.display()), &["manifest", "more than fr's limit"]);
    // An image for another architecture only.
    let layout = layout_copy(h, &fixture, "oci-arch");
    as_root(
        layout.parent().unwrap(),
        "umoci config --image img:v1 --tag arm --architecture arm64 && chmod -R a+rX img",
    );
    refused(h, &format!("oci:{}:arm", layout.display()), &["linux/arm64", "this host runs"]);
    // A tag the layout does not have.
    refused(
        h,
        &format!("oci:{}:nope", fixture.join("img").display()),
        &["no image tagged `nope`", "v1"],
    );
    // Not a layout at all.
    let empty = h.scratch("oci-empty");
    refused(h, &format!("oci:{}", empty.display()), &["not an OCI image layout"]);
}

/// A bundle `umoci unpack --rootless` made as the user shows, under fr,
/// the owners umoci meant (its `user.rootlesscontainers` xattrs), and a
/// file with containers/storage's `user.containers.override_stat` the
/// owner, mode and device that says.
#[test]
fn a_umoci_rootless_bundle_shows_the_owners_umoci_meant() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let Some(oracle) = oracle_manifest(h, &fixture) else { return };
    let Some(tool) = manifest_tool(h) else { return };
    let dir = h.scratch("rootless");
    let image = format!("{}:v1", fixture.join("img").display());
    common::run(
        h.command("umoci")
            .args(["unpack", "--rootless", "--image", &image, "bundle"])
            .current_dir(&dir),
    )
    .ok();
    let rootfs = dir.join("bundle/rootfs");
    common::run(h.command("touch").arg(rootfs.join("srv/node"))).ok();
    common::run(
        h.command("setfattr")
            .args(["-n", "user.containers.override_stat", "-v", "7:8:0640:char-4-5"])
            .arg(rootfs.join("srv/node")),
    )
    .ok();
    let bind = format!("{}:/manifest", tool.display());
    let mut args = vec![
        "exec".to_string(),
        "-f".into(),
        "--no-home".into(),
        "-B".into(),
        bind,
        rootfs.to_string_lossy().into(),
        "--".into(),
        "/manifest".into(),
        "/".into(),
    ];
    args.extend(SKIP.iter().map(|s| s.to_string()));
    let got = h.fr_in(Path::new("/"), &args).ok();
    // umoci lost the capability (it could not set it) before fr saw the
    // tree; the ACL it set for real names host uid 1234, which the user
    // namespace does not map (the kernel shows it as -1 inside).
    let lost = |l: &&str| !l.starts_with("/usr/bin/ping") && !l.starts_with("/acl ");
    let want: Vec<&str> = oracle.lines().filter(lost).collect();
    let mut got_lines: Vec<&str> = got.lines().filter(lost).collect();
    assert!(got_lines.contains(&"/srv/node chr 0640 7:8 4:5 - link=-"), "{got}");
    got_lines.retain(|l| !l.starts_with("/srv/node "));
    assert!(want == got_lines, "{}", first_difference(&want.join("\n"), &got_lines.join("\n")));
    // The xattrs are gone, their records kept in the store: a second
    // session shows the same.
    let again = h.fr_in(Path::new("/"), &args).ok();
    assert_eq!(got, again);
}

/// The only image in `cache`.
fn cached_image(cache: &Path) -> PathBuf {
    let images: Vec<PathBuf> = std::fs::read_dir(cache.join("fr/oci/images"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(images.len(), 1, "{images:?}");
    images[0].clone()
}

/// `fr export --format oci-archive` and `oci:` of an image: skopeo
/// accepts both, and umoci unpacks the archive's layer as real root into
/// the tree it unpacked from the original image; fr reads it back to the
/// same; its config carries Env and Labels, and the runscript.
#[test]
fn an_exported_oci_image_is_what_real_root_would_have_made() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let Some(oracle) = oracle_manifest(h, &fixture) else { return };
    let Some(tool) = manifest_tool(h) else { return };
    let cache = cache_home(h);
    let source = format!("oci:{}:v1", fixture.join("img").display());
    fr(h, &cache, &["exec", "-f", &source, "--", "true"]).ok();
    let image = cached_image(&cache);
    let out = h.scratch("oci-export");
    let archive = out.join("out.tar");
    let img = image.to_string_lossy();
    fr(
        h,
        &cache,
        &["export", "--format", "oci-archive", &img, &format!("{}:v2", archive.display())],
    )
    .ok();
    fr(h, &cache, &["export", &img, &format!("oci:{}:v3", out.join("layout").display())]).ok();
    let inspect = as_root(&out, "skopeo inspect oci-archive:out.tar:v2");
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Labels"]["org.example"], "yes", "{inspect}");
    let env: Vec<&str> =
        inspect["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(env.contains(&"GREETING=hello there"), "{env:?}");
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1);
    let config = as_root(&out, "skopeo inspect --config oci:layout:v3");
    assert!(config.contains("/.singularity.d/runscript"), "{config}");
    as_root(
        &out,
        "skopeo copy -q oci-archive:out.tar:v2 oci:copy:v2 && umoci unpack --image copy:v2 bundle",
    );
    let got = Command::new(&tool).arg(out.join("bundle/rootfs")).args(SKIP).output().unwrap();
    let got = String::from_utf8(got.stdout).unwrap();
    assert!(
        oracle == got,
        "umoci's unpack of fr's export differs:\n{}",
        first_difference(&oracle, &got)
    );
    // And fr reads its own export back to the same tree.
    let again = cache_home(h);
    let Some(back) = fr_manifest(h, &again, &format!("oci-archive:{}:v2", archive.display()))
    else {
        return;
    };
    assert!(oracle == back, "{}", first_difference(&oracle, &back));
    let run = fr(
        h,
        &again,
        &[
            "exec",
            "-f",
            &format!("oci-archive:{}:v2", archive.display()),
            "--",
            "/.singularity.d/runscript",
        ],
    );
    assert_eq!(run.ok(), "from cmd\n");
}

/// A server the test starts on 127.0.0.1 and stops when dropped.
struct Server {
    child: std::process::Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `cmd` (which listens on `port`), and waits for the port to
    /// take connections (at most 20 s).
    fn start(mut cmd: Command, port: u16, what: &str) -> Server {
        let child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}"));
        let mut server = Server { child, port };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{what} exited before it listened: {status}");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("{what} did not listen on 127.0.0.1:{port} within 20 s");
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A port no one listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// How a test registry wants clients to authenticate.
enum Login<'a> {
    Anyone,
    /// htpasswd: Basic with this user and password.
    Password(&'a str, &'a str),
    /// Distribution's token auth, with a token server of the test's
    /// (`tests/tools/token_server.py`), which must outlive the registry.
    Token(&'a Server, &'a Path),
}

/// The token server for [`Login::Token`], with its key and certificate
/// made by openssl in `dir`.
fn token_server(h: &Harness) -> (Server, PathBuf) {
    let dir = h.scratch("tokens");
    as_root(
        &dir,
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 \
         -subj /CN=fr-test-token 2>/dev/null",
    );
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/token_server.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg(port.to_string()).arg(dir.join("key.pem")).arg(dir.join("cert.pem"));
    (Server::start(cmd, port, "the token server"), dir.join("cert.pem"))
}

/// Debian's `docker-registry` (Distribution) on 127.0.0.1, storing into a
/// scratch directory, wanting `login`.
fn registry(h: &Harness, login: Login<'_>) -> Option<Server> {
    if Command::new("sh")
        .arg("-c")
        .arg("command -v docker-registry")
        .output()
        .map_or(true, |o| !o.status.success())
    {
        return cannot_run(
            "docker-registry is missing (apt-get install docker-registry; .ci/run does)",
        );
    }
    let dir = h.scratch("registry");
    let port = free_port();
    let mut config = format!(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  \
         filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
        dir.join("data").display()
    );
    if let Login::Token(server, cert) = login {
        config += &format!(
            "auth:\n  token:\n    realm: http://{}/token\n    service: fr-test-registry\n    \
             issuer: fr-test-issuer\n    rootcertbundle: {}\n",
            server.addr(),
            cert.display()
        );
    }
    if let Login::Password(user, password) = login {
        // bcrypt, the one form Distribution's htpasswd takes (Python's
        // crypt, through libxcrypt).
        as_root(
            &dir,
            &format!(
                "python3 -W ignore -c 'import crypt; print(\"{user}:\" + crypt.crypt(\"{password}\", \
                 crypt.mksalt(crypt.METHOD_BLOWFISH)))' > htpasswd"
            ),
        );
        config += &format!(
            "auth:\n  htpasswd:\n    realm: fr-test\n    path: {}\n",
            dir.join("htpasswd").display()
        );
    }
    std::fs::write(dir.join("config.yml"), config).unwrap();
    let mut cmd = Command::new("docker-registry");
    cmd.arg("serve").arg(dir.join("config.yml"));
    Some(Server::start(cmd, port, "docker-registry"))
}

/// Copies the fixture's image `tag` into the registry at `addr` as
/// `test/img:TAG`, as real root, with skopeo.
fn skopeo_push(fixture: &Path, layout: &Path, tag: &str, addr: &str, creds: Option<&str>) {
    let creds = creds.map(|c| format!("--dest-creds {c}")).unwrap_or_default();
    as_root(
        fixture,
        &format!(
            "skopeo copy -q --dest-tls-verify=false {creds} oci:{}:{tag} docker://{addr}/test/img:{tag}",
            layout.display()
        ),
    );
}

/// An image skopeo pushed to a registry on 127.0.0.1 unpacks as umoci
/// unpacks the original as real root; a second run takes it from the
/// cache, a tag the registry lacks is a 404 naming the reference, and
/// plain HTTP without --nohttps says what to add.
#[test]
fn a_registry_image_unpacks_as_umoci_unpacks_it_as_real_root() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let Some(oracle) = oracle_manifest(h, &fixture) else { return };
    let Some(reg) = registry(h, Login::Anyone) else { return };
    skopeo_push(&fixture, &fixture.join("img"), "v1", &reg.addr(), None);
    let cache = cache_home(h);
    let source = format!("docker://{}/test/img:v1", reg.addr());
    let Some(tool) = manifest_tool(h) else { return };
    let bind = format!("{}:/tmp/manifest", tool.display());
    let mut args =
        vec!["exec", "-f", "--nohttps", "-B", &bind, &source, "--", "/tmp/manifest", "/"];
    args.extend(SKIP);
    let got = fr(h, &cache, &args).ok();
    assert!(oracle == got, "manifests differ:\n{}", first_difference(&oracle, &got));
    assert_eq!(cache_contents(&cache), (1, 2, 0));
    let run =
        fr(h, &cache, &["exec", "-f", "--nohttps", &source.replace(":v1", ":nope"), "--", "true"]);
    assert_eq!(run.code, Some(125));
    assert!(
        run.stderr.contains(&format!("docker://{}/test/img:nope", reg.addr())),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("not found (404"), "{}", run.stderr);
    let run = fr(h, &cache, &["exec", "-f", &source, "--", "true"]);
    assert_eq!(run.code, Some(125));
    assert!(run.stderr.contains("needs --nohttps"), "{}", run.stderr);
    assert_eq!(cache_contents(&cache), (1, 2, 0), "nothing more in the cache");
    // The registry gone: the copy pulled before, with a warning.
    drop(reg);
    let run = fr(h, &cache, &["exec", "-f", "--nohttps", &source, "--", "cat", "/srv/owned"]);
    assert!(run.stderr.contains("using the copy pulled before"), "{run:?}");
    assert_eq!(run.ok(), "owned\n");
}

/// `fr push` of an image to the registry, then a pull with skopeo as real
/// root (another user than fr's) and umoci's unpack: the same tree.
#[test]
fn fr_push_round_trips_through_a_registry() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let Some(oracle) = oracle_manifest(h, &fixture) else { return };
    let Some(tool) = manifest_tool(h) else { return };
    let Some(reg) = registry(h, Login::Anyone) else { return };
    let cache = cache_home(h);
    let source = format!("oci:{}:v1", fixture.join("img").display());
    fr(h, &cache, &["exec", "-f", &source, "--", "true"]).ok();
    let image = cached_image(&cache);
    let target = format!("docker://{}/test/pushed:v2", reg.addr());
    fr(h, &cache, &["push", "--nohttps", &image.to_string_lossy(), &target]).ok();
    let out = h.scratch("pulled");
    as_root(
        &out,
        &format!(
            "skopeo copy -q --src-tls-verify=false {target} oci:copy:v2 && umoci unpack --image copy:v2 bundle"
        ),
    );
    let got = Command::new(&tool).arg(out.join("bundle/rootfs")).args(SKIP).output().unwrap();
    let got = String::from_utf8(got.stdout).unwrap();
    assert!(oracle == got, "{}", first_difference(&oracle, &got));
    // Pushed again: the registry has every blob, only the manifest goes.
    fr(h, &cache, &["push", "--nohttps", &image.to_string_lossy(), &target]).ok();
}

/// A registry that wants a login: refused (401) without credentials,
/// naming the reference and `podman login`; pulled with the credentials of
/// `$XDG_RUNTIME_DIR/containers/auth.json`, as podman keeps them.
#[test]
fn a_registry_that_wants_a_login_takes_podmans_credentials() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let Some(reg) = registry(h, Login::Password("frtest", "s3cret")) else { return };
    skopeo_push(&fixture, &fixture.join("img"), "v1", &reg.addr(), Some("frtest:s3cret"));
    let cache = cache_home(h);
    let source = format!("docker://{}/test/img:v1", reg.addr());
    let run = fr(h, &cache, &["exec", "-f", "--nohttps", &source, "--", "true"]);
    assert_eq!(run.code, Some(125), "{run:?}");
    assert!(run.stderr.contains(&source) && run.stderr.contains("401"), "{}", run.stderr);
    assert!(run.stderr.contains("podman login"), "{}", run.stderr);
    assert_eq!(cache_contents(&cache).0, 0);
    let runtime = h.scratch("runtime");
    let auth = runtime.join("containers");
    std::fs::create_dir(&auth).unwrap();
    use base64_like::encode;
    std::fs::write(
        auth.join("auth.json"),
        format!(
            "{{\"auths\":{{\"{}\":{{\"auth\":\"{}\"}}}}}}",
            reg.addr(),
            encode(b"frtest:s3cret")
        ),
    )
    .unwrap();
    let mut cmd = h.fr_command(["exec", "-f", "--nohttps", &source, "--", "cat", "/srv/owned"]);
    cmd.env("XDG_CACHE_HOME", &cache).env("XDG_RUNTIME_DIR", &runtime);
    assert_eq!(common::run(&mut cmd).ok(), "owned\n");
}

/// A server that answers 500 to everything, and an image for another
/// architecture only: refused by name, nothing in the cache.
#[test]
fn a_failing_registry_and_a_foreign_image_are_refused_by_name() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let port = free_port();
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(format!(
        "import http.server\n\
         class H(http.server.BaseHTTPRequestHandler):\n    \
             def do_GET(self):\n        self.send_response(500); self.send_header('Content-Length', '0'); self.end_headers()\n    \
             do_HEAD = do_GET\n    \
             def log_message(self, *a): pass\n\
         http.server.HTTPServer(('127.0.0.1', {port}), H).serve_forever()\n"
    ));
    let broken = Server::start(cmd, port, "a server that answers 500");
    let source = format!("docker://{}/test/img:v1", broken.addr());
    let cache = cache_home(h);
    let run = fr(h, &cache, &["exec", "-f", "--nohttps", &source, "--", "true"]);
    assert_eq!(run.code, Some(125), "{run:?}");
    assert!(run.stderr.contains(&source) && run.stderr.contains("500"), "{}", run.stderr);
    assert!(run.stderr.contains("after 3 tries"), "{}", run.stderr);
    assert_eq!(cache_contents(&cache), (0, 0, 0));
    drop(broken);
    let Some(reg) = registry(h, Login::Anyone) else { return };
    let layout = layout_copy(h, &fixture, "oci-arm");
    as_root(
        layout.parent().unwrap(),
        "umoci config --image img:v1 --tag arm --architecture arm64 && chmod -R a+rX img",
    );
    skopeo_push(&fixture, &layout, "arm", &reg.addr(), None);
    let arm = format!("docker://{}/test/img:arm", reg.addr());
    let run = fr(h, &cache, &["exec", "-f", "--nohttps", &arm, "--", "true"]);
    assert_eq!(run.code, Some(125), "{run:?}");
    assert!(run.stderr.contains(&arm) && run.stderr.contains("linux/arm64"), "{}", run.stderr);
    assert_eq!(cache_contents(&cache).0, 0);
}

/// Base64 for the test's auth.json (the standard alphabet, padded).
mod base64_like {
    pub fn encode(data: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

/// A registry with Distribution's token auth: fr answers the Bearer
/// challenge with a token from its realm, to pull (every blob, into a new
/// cache) and to push (pull and push scope).
#[test]
fn a_registry_with_token_auth_is_pulled_from_and_pushed_to() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let (tokens, cert) = token_server(h);
    let Some(reg) = registry(h, Login::Token(&tokens, &cert)) else { return };
    skopeo_push(&fixture, &fixture.join("img"), "v1", &reg.addr(), None);
    let cache = cache_home(h);
    let source = format!("docker://{}/test/img:v1", reg.addr());
    let out = fr(h, &cache, &["exec", "-f", "--nohttps", &source, "--", "cat", "/srv/owned"]);
    assert_eq!(out.ok(), "owned\n");
    let image = cached_image(&cache);
    let target = format!("docker://{}/test/pushed:bearer", reg.addr());
    fr(h, &cache, &["push", "--nohttps", &image.to_string_lossy(), &target]).ok();
    let inspect = as_root(&fixture, &format!("skopeo inspect --tls-verify=false {target}"));
    assert!(inspect.contains("org.example"), "{inspect}");
    drop(reg);
    drop(tokens);
}

/// An opaque marker whose directory no layer had makes it (the marker
/// says the directory is the layer's), and a whiteout in a directory no
/// layer had deletes nothing and is no error.
#[test]
fn an_opaque_marker_alone_makes_its_directory() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let source = hostile(
        h,
        &fixture,
        "oci-opaque-alone",
        &[("newdir/.wh..wh..opq", 'f', ""), ("nodir/.wh.x", 'f', ""), ("srv/.wh.owned", 'f', "")],
    );
    let cache = cache_home(h);
    let out = fr(
        h,
        &cache,
        &[
            "exec",
            "-f",
            &source,
            "--",
            "sh",
            "-c",
            "ls -d /newdir; ls /srv; ls /nodir 2>&1 || true",
        ],
    );
    assert_eq!(out.ok(), "/newdir\nls: /nodir: No such file or directory\n");
}

/// The same image unpacked by a user without subordinate ids (root-mapped
/// mode) shows the same tree.
#[test]
fn a_user_without_subordinate_ids_sees_the_same_tree() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let Some(oracle) = oracle_manifest(h, &fixture) else { return };
    let Some(tool) = manifest_tool(h) else { return };
    let Some(user) = common::second_user() else { return };
    let cache = h.scratch("xdg-cache-2");
    std::os::unix::fs::chown(&cache, Some(user.uid), Some(user.gid)).unwrap();
    let source = format!("oci-archive:{}:v1", fixture.join("img.tar").display());
    let bind = format!("{}:/tmp/manifest", tool.display());
    let mut cmd = h.command_as(&user, &h.fr);
    cmd.args(["exec", "-f", "--no-home", "-B", &bind, &source, "--", "/tmp/manifest", "/"])
        .args(SKIP);
    cmd.env("XDG_CACHE_HOME", &cache).current_dir("/");
    let run = common::run(&mut cmd);
    let got = run.ok();
    assert!(oracle == got, "{}", first_difference(&oracle, &got));
    // Real root removes what the other user left.
    let _ = std::fs::remove_dir_all(&cache);
}

/// An image made from an OCI image (here a copy of the cached one, changed
/// under fr) exported with `--base`: the base's layers as they were, blob
/// for blob, and one layer of the changes (an owner, a new file and its
/// hard link, a device, a deleted file as a whiteout), which umoci unpacks
/// as real root into the tree fr shows.
#[test]
fn a_layer_of_changes_over_an_oci_base_keeps_its_layers() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let Some(tool) = manifest_tool(h) else { return };
    let cache = cache_home(h);
    let source = format!("oci:{}:v1", fixture.join("img").display());
    fr(h, &cache, &["exec", "-f", &source, "--", "true"]).ok();
    let dir = h.scratch("derived");
    let copy = dir.join("copy");
    common::run(h.command("cp").arg("-a").arg(cached_image(&cache)).arg(&copy)).ok();
    let change = "chown 77:88 /srv/owned && echo new > /srv/new && rm /usr/bin/sgid && \
                  mkdir /data && mknod /data/node c 5 5 && ln /srv/new /data/newlink";
    fr(h, &cache, &["exec", "-f", &copy.to_string_lossy(), "--", "sh", "-c", change]).ok();
    let out = format!("oci-archive:{}:d", dir.join("out.tar").display());
    fr(h, &cache, &["export", "--base", &source, &copy.to_string_lossy(), &out]).ok();
    let layers = |inspect: String| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
        v["Layers"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect()
    };
    let base = layers(as_root(&dir, &format!("skopeo inspect {source}")));
    let derived = layers(as_root(&dir, "skopeo inspect oci-archive:out.tar:d"));
    assert_eq!(derived.len(), 3, "{derived:?}");
    assert_eq!(derived[..2], base[..], "the base's layers as they were");
    let members = as_root(
        &dir,
        "skopeo copy -q oci-archive:out.tar:d oci:lay:d && umoci unpack --image lay:d bundle >/dev/null && \
         python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m[\"layers\"][2][\"digest\"][7:])' \
         lay/blobs/sha256/$(python3 -c 'import json; print(json.load(open(\"lay/index.json\"))[\"manifests\"][0][\"digest\"][7:])') \
         | xargs -I{} tar -tzf lay/blobs/sha256/{}",
    );
    for want in ["./srv/owned", "./srv/new", "./data/node", "./data/newlink", "./usr/bin/.wh.sgid"]
    {
        assert!(members.lines().any(|l| l == want), "{want} not in the new layer:\n{members}");
    }
    assert!(!members.contains("busybox"), "unchanged files are not in the new layer:\n{members}");
    let want = Command::new(&tool).arg(dir.join("bundle/rootfs")).args(SKIP).output().unwrap();
    let want = String::from_utf8(want.stdout).unwrap();
    let Some(got) = fr_manifest(h, &cache, &copy.to_string_lossy()) else { return };
    assert!(want == got, "{}", first_difference(&want, &got));
    // Over a docker archive of the same image: its uncompressed layer
    // files are the base's blobs.
    let docker = format!("docker-archive:{}", fixture.join("img-docker.tar").display());
    let out = format!("oci-archive:{}:e", dir.join("out2.tar").display());
    fr(h, &cache, &["export", "--base", &docker, &copy.to_string_lossy(), &out]).ok();
    let base = layers(as_root(&dir, &format!("skopeo inspect {docker}")));
    let derived = layers(as_root(&dir, "skopeo inspect oci-archive:out2.tar:e"));
    assert_eq!((derived.len(), &derived[..2]), (3, &base[..]));
    as_root(&dir, "skopeo copy -q oci-archive:out2.tar:e oci:lay2:e && umoci unpack --image lay2:e b2 >/dev/null");
    let again = Command::new(&tool).arg(dir.join("b2/rootfs")).args(SKIP).output().unwrap();
    assert_eq!(String::from_utf8(again.stdout).unwrap(), got);
}

/// What Apptainer's build adds to every image (its base environment,
/// `fr_image::layout`), which umoci's unpack of the source does not have.
const BASE_ENV: [&str; 13] = [
    "/.exec",
    "/.run",
    "/.shell",
    "/.test",
    "/singularity",
    "/environment",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/home",
    "/root",
    "/var",
    "/var/tmp",
    "/.singularity.d",
];

/// `fr build --sandbox` from `source` gives umoci's tree, and Apptainer's
/// base environment beside it.
fn build_gives_umocis_tree(h: &Harness, fixture: &Path, source: &str, opts: &[&str]) {
    let Some(oracle) = oracle_manifest(h, fixture) else { return };
    let cache = cache_home(h);
    let dir = h.scratch("build-oci");
    let dest = dir.join("sandbox");
    let dest_s = dest.to_string_lossy().to_string();
    let mut args = vec!["build"];
    args.extend(opts);
    args.extend(["--sandbox", &dest_s, source]);
    let built = fr(h, &cache, &args);
    assert_eq!(built.code, Some(0), "{built:?}");
    let Some(got) = fr_manifest(h, &cache, &dest.to_string_lossy()) else { return };
    let path = |l: &str| l.split(' ').next().unwrap_or("").to_string();
    let base = |p: &str| BASE_ENV.iter().any(|b| p == *b || p.starts_with(&format!("{b}/")));
    let got: Vec<&str> = got.lines().filter(|l| !base(&path(l))).collect();
    let want: Vec<&str> = oracle.lines().filter(|l| !base(&path(l))).collect();
    assert!(want == got, "{source}:\n{}", first_difference(&want.join("\n"), &got.join("\n")));
}

#[test]
fn fr_build_from_each_oci_source_gives_umocis_tree() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    for source in [
        format!("oci:{}:v1", fixture.join("img").display()),
        format!("oci-archive:{}:v1", fixture.join("img.tar").display()),
        format!("docker-archive:{}", fixture.join("img-docker.tar").display()),
    ] {
        build_gives_umocis_tree(h, &fixture, &source, &[]);
    }
    let Some(reg) = registry(h, Login::Anyone) else { return };
    skopeo_push(&fixture, &fixture.join("img"), "v1", &reg.addr(), None);
    let source = format!("docker://{}/test/img:v1", reg.addr());
    build_gives_umocis_tree(h, &fixture, &source, &["--nohttps"]);
}

/// A definition file on an OCI image (`Bootstrap: docker` from the test's
/// registry) built to `oci-archive:` and `oci:`: skopeo accepts both; the
/// base's layers are kept blob for blob under one layer of the build's
/// changes; the config's Env is the image's and `%environment`'s, its
/// entrypoint runs `%runscript`, its labels are the image's and
/// `%labels`; umoci unpacks it as real root into the tree of the same
/// build as a sandbox.
#[test]
fn fr_build_writes_oci_images_that_skopeo_and_umoci_take() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let Some(tool) = manifest_tool(h) else { return };
    let Some(reg) = registry(h, Login::Anyone) else { return };
    skopeo_push(&fixture, &fixture.join("img"), "v1", &reg.addr(), None);
    let dir = h.scratch("build-oci-out");
    let def = dir.join("app.def");
    std::fs::write(
        &def,
        format!(
            "Bootstrap: docker\nFrom: {}/test/img:v1\n\n%post\n    echo hi > /srv/post\n    \
             chown 5:6 /srv/post\n    rm /usr/bin/sgid\n    mknod /srv/null c 1 3\n\n\
             %environment\n    export FOO=bar\n\n%runscript\n    echo run \"$@\"\n\n\
             %labels\n    Maintainer me\n",
            reg.addr()
        ),
    )
    .unwrap();
    let cache = cache_home(h);
    let def_s = def.to_string_lossy().to_string();
    let sandbox = dir.join("sandbox").to_string_lossy().to_string();
    let archive = format!("oci-archive:{}:t", dir.join("out.tar").display());
    let layout = format!("oci:{}", dir.join("layout").display());
    for dest in [&sandbox, &archive, &layout] {
        fr(h, &cache, &["build", "--nohttps", dest, &def_s]).ok();
    }
    let inspect = |what: &str| -> serde_json::Value {
        serde_json::from_str(&as_root(&dir, &format!("skopeo inspect {what}"))).unwrap()
    };
    let base = inspect(&format!("oci:{}:v1", fixture.join("img").display()));
    for out in ["oci-archive:out.tar:t", "oci:layout:latest"] {
        let v = inspect(out);
        let layers = v["Layers"].as_array().unwrap();
        assert_eq!(layers.len(), 3, "{v}");
        assert_eq!(layers[..2], base["Layers"].as_array().unwrap()[..], "the base's blobs");
        let env: Vec<&str> =
            v["Env"].as_array().unwrap().iter().filter_map(|e| e.as_str()).collect();
        assert!(env.contains(&"FOO=bar") && env.contains(&"GREETING=hello there"), "{env:?}");
        assert_eq!(v["Labels"]["Maintainer"], "me", "{v}");
        assert_eq!(v["Labels"]["org.example"], "yes", "{v}");
    }
    let config = as_root(&dir, "skopeo inspect --config oci:layout:latest");
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/.singularity.d/runscript"]));
    as_root(&dir, "skopeo copy -q oci-archive:out.tar:t oci:copy:t && umoci unpack --image copy:t bundle >/dev/null");
    let want = Command::new(&tool).arg(dir.join("bundle/rootfs")).args(SKIP).output().unwrap();
    let want = String::from_utf8(want.stdout).unwrap();
    assert!(
        want.lines().any(|l| l.starts_with("/srv/null chr ") && l.contains(" 0:0 1:3 "))
            && want.lines().any(|l| l.starts_with("/srv/post reg ") && l.contains(" 5:6 ")),
        "{want}"
    );
    assert!(!want.contains("/usr/bin/sgid "), "{want}");
    let Some(got) = fr_manifest(h, &cache, &sandbox) else { return };
    assert!(want == got, "{}", first_difference(&want, &got));
    // The entrypoint runs %runscript, as `podman run IMAGE x` would.
    let out = fr(h, &cache, &["exec", "-f", &archive, "--", "/.singularity.d/runscript", "x"]);
    assert_eq!(out.ok(), "run x\n");
}

/// The image with zstd layers (skopeo's `--dest-compress-format zstd`, as
/// real root): the same tree.
#[test]
fn zstd_layers_unpack_as_gzip_ones() {
    let Some(h) = harness() else { return };
    let Some(fixture) = fixture(h) else { return };
    let Some(oracle) = oracle_manifest(h, &fixture) else { return };
    let dir = h.scratch("oci-zstd");
    as_root(
        &dir,
        &format!(
            "skopeo copy -q --dest-compress-format zstd oci:{}:v1 oci:zimg:v1 && chmod -R a+rX zimg",
            fixture.join("img").display()
        ),
    );
    let raw = as_root(&dir, "skopeo inspect --raw oci:zimg:v1");
    assert_eq!(raw.matches("tar+zstd").count(), 2, "{raw}");
    let cache = cache_home(h);
    let source = format!("oci:{}:v1", dir.join("zimg").display());
    let Some(got) = fr_manifest(h, &cache, &source) else { return };
    assert!(oracle == got, "{}", first_difference(&oracle, &got));
}
