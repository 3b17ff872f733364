//! `fr rm` removes only what it is sure of: an fr image, a tree of the
//! user's subordinate ids, or what a failed `rm -rf` of an image left.
//! Anything else, a mount inside included, is refused before the first
//! file goes; symlinks are removed as links, never followed.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{cannot_run, harness, run, subuid_ready, Harness};

fn subuid(h: &Harness) -> Option<()> {
    if subuid_ready(h) {
        Some(())
    } else {
        cannot_run(
            "the test user needs ranges in /etc/subuid and /etc/subgid and a setuid \
             newuidmap/newgidmap (.ci/run sets them up)",
        )
    }
}

/// A fresh image a subuid-mode session has worked on: files of
/// subordinate ids (one directory only they may read), a device, and its
/// store.
fn session_image(h: &Harness) -> Option<PathBuf> {
    subuid(h)?;
    let rootfs = h.rootfs()?;
    h.exec(
        Some(&rootfs),
        &["-q", "--fakeroot"],
        &[
            "sh",
            "-c",
            "mkdir -p /d/e && echo x > /d/e/x && chown -R 1000:1000 /d && chmod 700 /d && \
             mknod /var/null c 1 3 && chown 70000 /var/null",
        ],
    )
    .ok();
    assert!(rootfs.join(".fr").is_dir());
    Some(rootfs)
}

/// Every name under `dir` with its type, owner and mode, as far as the
/// test can read by path (all of it when the suite runs as root, up to
/// `PATH_MAX`).
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            // Deeper than PATH_MAX: the name alone is listed.
            let Ok(m) = e.path().symlink_metadata() else {
                out.push(rel);
                continue;
            };
            out.push(format!("{rel} {:o} {}:{}", m.mode(), m.uid(), m.gid()));
            if m.is_dir() {
                todo.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// `script` run by `sh` as the test user in `dir`, with `$1`... `args`.
fn sh(h: &Harness, dir: &Path, script: &str, args: &[&Path]) {
    run(h.command("sh").args(["-c", script, "sh"]).args(args).current_dir(dir)).ok();
}

fn fr_rm(h: &Harness, path: &Path) -> common::Run {
    h.fr(["rm".as_ref(), path.as_os_str()])
}

/// A directory that holds an image below it, beside the user's own files,
/// is not an image: fr rm refuses it and removes nothing (the image's
/// subordinate-owned files included).
#[test]
fn a_directory_holding_an_image_is_refused_and_kept_whole() {
    let Some(h) = harness() else { return };
    let Some(image) = session_image(h) else { return };
    let holder = h.scratch("holder");
    std::fs::rename(&image, holder.join("image")).unwrap();
    sh(h, &holder, "echo mine > notes && mkdir work && echo mine too > work/draft", &[]);
    let before = listing(&holder);
    assert!(before.iter().any(|l| l.starts_with("image/d/e/x ")) || !common::is_root());
    let out = fr_rm(h, &holder);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("refusing to remove {}", holder.display())),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("neither an fr image"), "{}", out.stderr);
    assert!(out.stderr.contains("rm -rf"), "{}", out.stderr);
    assert_eq!(listing(&holder), before, "fr rm changed the tree it refused");
    // The image itself goes.
    assert_eq!(fr_rm(h, &holder.join("image")).ok(), "");
    assert!(!holder.join("image").exists());
    assert!(holder.join("work/draft").exists());
}

/// Plain directories of the user's are refused, also when a session on the
/// host tree gave one of their files to a subordinate id; so are `/`, the
/// home directory, `.` and a file.
#[test]
fn the_users_own_trees_are_refused() {
    let Some(h) = harness() else { return };
    let plain = h.scratch("plain");
    sh(h, &plain, "mkdir sub && touch sub/keep keep", &[]);
    let before = listing(&plain);
    let refused = fr_rm(h, &plain);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert_eq!(listing(&plain), before);
    // One file of a subordinate id among the user's: still the user's tree.
    if subuid(h).is_some() {
        let given = plain.join("sub/given");
        let chown = format!("touch {0} && chown 1000:1000 {0}", given.display());
        h.exec(None, &["-q", "--fakeroot", "--userns=subuid"], &["sh", "-c", &chown]).ok();
        assert_ne!(std::fs::metadata(&given).unwrap().uid(), h.uid);
        let before = listing(&plain);
        let refused = fr_rm(h, &plain);
        assert_eq!(refused.code, Some(1), "{}", refused.stderr);
        assert_eq!(listing(&plain), before);
        assert!(refused.stderr.contains("keep is yours and not a directory"), "{}", refused.stderr);
    }
    assert!(refused.stderr.contains("neither an fr image"), "{}", refused.stderr);
    assert!(refused.stderr.contains("fr: hint: nothing was removed"), "{}", refused.stderr);
    let home = h
        .user
        .as_ref()
        .map_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()), |u| u.home.clone());
    for (path, why) in [
        (Path::new("/"), "the root directory"),
        (home.as_path(), "your home directory"),
        (&plain.join("keep"), "not a directory"),
        (&plain.join("sub/.."), "`..`"),
    ] {
        let out = fr_rm(h, path);
        assert_eq!(out.code, Some(1), "{}: {}", path.display(), out.stderr);
        assert!(out.stderr.contains(why), "{}: {}", path.display(), out.stderr);
    }
    assert!(plain.join("keep").exists() && home.exists());
}

/// Links are removed as links: what they lead to outside the image stays,
/// and a link named on the command line is refused, not followed.
#[test]
fn symlinks_are_never_followed() {
    let Some(h) = harness() else { return };
    let Some(image) = session_image(h) else { return };
    let outside = h.scratch("outside");
    sh(h, &outside, "touch keep && mkdir dir", &[]);
    // Absolute and relative links at the top, and one in a directory only
    // a subordinate id may enter, made by the session.
    let rel = Path::new("..").join(outside.file_name().unwrap());
    sh(
        h,
        &image,
        r#"ln -s "$1" abs && ln -s "$2" rel && ln -s "$1/dir" bin/dir"#,
        &[&outside, &rel],
    );
    let link = format!("ln -s {} /d/out && chown -h 1000:1000 /d/out", outside.display());
    h.exec(Some(&image), &["-q", "--fakeroot"], &["sh", "-c", &link]).ok();
    let before = listing(&outside);

    // A link to the image, named on the command line: refused.
    let named = h.scratch("named").join("link");
    sh(h, named.parent().unwrap(), r#"ln -s "$1" link"#, &[&image]);
    for path in [named.clone(), named.join("")] {
        let out = fr_rm(h, &path);
        assert_eq!(out.code, Some(1), "{}", out.stderr);
        assert!(out.stderr.contains("a symbolic link"), "{}", out.stderr);
    }
    assert!(named.symlink_metadata().is_ok() && image.join(".fr").is_dir());

    assert_eq!(fr_rm(h, &image).ok(), "");
    assert!(!image.exists());
    assert_eq!(listing(&outside), before);
    assert!(outside.join("keep").exists() && outside.join("dir").is_dir());
}

/// A real image goes whole, however deep (deeper than `PATH_MAX` from
/// the top: the removal goes by descriptors, not paths), once no session
/// holds it.
#[test]
fn a_real_image_is_removed_entirely_once_no_session_holds_it() {
    let Some(h) = harness() else { return };
    let Some(image) = session_image(h) else { return };
    // chdir(2) one level at a time: a shell's cd builds the whole path.
    let deep = r#"for (1..250) { mkdir "a_rather_long_name_19" or die "mkdir: $!";
        chdir "a_rather_long_name_19" or die "chdir: $!" } open(F, ">leaf") or die "$!""#;
    run(h.command("perl").args(["-e", deep]).current_dir(&image)).ok();

    // A session holds the lock: refused, nothing removed.
    let mut session = h
        .exec_command(Some(&image), &["-q", "--fakeroot"], &["sh", "-c", "touch /ready && cat"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while !image.join("ready").exists() {
        assert!(session.try_wait().unwrap().is_none(), "the session ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let before = listing(&image);
    let busy = fr_rm(h, &image);
    assert_eq!(busy.code, Some(1), "{}", busy.stderr);
    assert!(busy.stderr.contains("in use by another fr session"), "{}", busy.stderr);
    assert_eq!(listing(&image), before);
    drop(session.stdin.take());
    assert!(session.wait().unwrap().success());

    let out = fr_rm(h, &image);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stderr, "");
    assert!(image.symlink_metadata().is_err(), "fr rm left {}", image.display());
}

/// A mount inside the tree is refused before anything is removed, and
/// named. The test user can mount only in a mount namespace of its own
/// (`unshare -Urm`), where fr rm runs as that namespace's root, which is
/// the user: its own entry into a namespace of subordinate ids cannot
/// work there (the namespace maps only the user), so the image here has
/// no file of a subordinate id.
#[test]
fn a_mount_inside_is_refused_before_anything_goes() {
    let Some(h) = harness() else { return };
    let Some(image) = h.rootfs() else { return };
    h.exec(Some(&image), &["-q", "--fakeroot", "--userns=root-mapped"], &["true"]).ok();
    assert!(image.join(".fr").is_dir());
    sh(h, &image, "mkdir sub && touch sub/y", &[]);
    let before = listing(&image);
    let script = r#"mount -t tmpfs none "$1/sub" && echo x > "$1/sub/x" || exit 9
        "$2" rm "$1"; echo "rm=$?"; test -e "$1/sub/x" && echo kept"#;
    let out =
        run(h.command("unshare").args(["-Urm", "sh", "-c", script, "sh"]).arg(&image).arg(&h.fr));
    if out.code == Some(9) {
        cannot_run::<()>(format!(
            "the test user cannot mount a tmpfs in unshare -Urm: {}",
            out.stderr
        ));
        return;
    }
    assert_eq!(out.stdout, "rm=1\nkept\n", "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("{} is a mount point", image.join("sub").display())),
        "{}",
        out.stderr
    );
    assert_eq!(listing(&image), before, "fr rm removed files before it refused");
    assert_eq!(fr_rm(h, &image).ok(), "");
}
