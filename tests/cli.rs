//! The `fr` command line end to end: what it takes (Apptainer's `exec
//! IMAGE CMD`, no command for a shell), what it says when a request cannot
//! be met (the way out, the exit status), and what it prints.

mod common;

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use common::{cannot_run, harness, run, Harness, Run};

/// `fr ARGS` as the test user, with `input` (a file written first) as stdin.
fn fr_with_stdin(h: &Harness, args: &[&str], input: &str) -> Run {
    let dir = h.scratch("stdin");
    let file = dir.join("input");
    std::fs::write(&file, input).unwrap();
    run(h.fr_command(args).stdin(Stdio::from(File::open(&file).unwrap())))
}

/// A script at `path`, executable by the test user.
fn script(h: &Harness, path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    if let Some(u) = &h.user {
        std::os::unix::fs::chown(path, Some(u.uid), Some(u.gid)).unwrap();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn without_a_command_a_shell_reads_stdin_in_an_image() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    let image = path(&rootfs);
    // The busybox image has no bash: its /bin/sh, named in $SHELL.
    let out = fr_with_stdin(h, &["exec", "-f", image], "id -u; echo $SHELL\n");
    assert_eq!(out.ok(), "0\n/bin/sh\n");
    let out = fr_with_stdin(h, &["exec", "-f", image, "--"], "id -u\n");
    assert_eq!(out.ok(), "0\n");
    // An image with /bin/bash gets it, without start-up files.
    script(h, &rootfs.join("bin/bash"), "#!/bin/sh\necho \"bash $*\"\nexec /bin/sh\n");
    let out = fr_with_stdin(h, &["exec", "-f", image], "echo $SHELL\n");
    assert_eq!(out.ok(), "bash --norc\n/bin/bash\n");
}

#[test]
fn without_a_command_or_image_the_shell_is_shell() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("shell");
    let shell = dir.join("my-shell");
    script(h, &shell, "#!/bin/sh\necho my shell\nexec /bin/sh \"$@\"\n");
    let file = dir.join("input");
    std::fs::write(&file, "id -u\n").unwrap();
    let mut cmd = h.fr_command(["exec", "-f"]);
    cmd.env("SHELL", &shell).stdin(File::open(&file).unwrap());
    assert_eq!(run(&mut cmd).ok(), "my shell\n0\n");
    // No $SHELL: /bin/sh, as fakeroot.
    let out = fr_with_stdin(h, &["exec", "-f", "--"], "id -u\n");
    assert_eq!(out.ok(), "0\n");
}

#[test]
fn the_command_follows_the_image_without_double_dash() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    let image = path(&rootfs);
    assert_eq!(h.fr(["exec", "-f", image, "id", "-u"]).ok(), "0\n");
    // Options and a `--` after the command's name are the command's.
    let out = h.fr(["exec", "-f", image, "sh", "-c", "echo \"$*\"", "sh", "-f", "--", "-q"]);
    assert_eq!(out.ok(), "-f -- -q\n");
    // With `--` after IMAGE, as before.
    assert_eq!(h.fr(["exec", "-f", image, "--", "id", "-u"]).ok(), "0\n");
}

#[test]
fn an_option_after_the_image_or_a_host_command_without_double_dash_is_a_usage_error() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    let out = h.fr(["exec", path(&rootfs), "-f", "id"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("fr exec's options go before IMAGE"), "{}", out.stderr);
    // `fr exec -f ls -l` meant the host tree: the error says how.
    let out = h.fr(["exec", "-f", "ls", "-l"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("fr exec [OPTIONS] -- ls -l"), "{}", out.stderr);
}

#[test]
fn usage_errors_exit_2() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    let image = path(&rootfs);
    for args in [
        &["exec", "-f", "--userns=none", image, "true"][..],
        &["exec", "--userns=subuid", "--", "true"],
        &["exec", "-s", "state", "--", "true"],
        &["exec", "-f", "-s", "state", image, "true"],
        &["exec", "--no-such-option", image, "true"],
    ] {
        let out = h.fr(args);
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("error: "), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn a_command_that_cannot_run_says_why_and_exits_126_or_127() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    let image = path(&rootfs);
    let out = h.fr(["exec", "-f", image, "--", "/etc"]);
    assert_eq!(out.code, Some(126), "{out:?}");
    assert!(out.stderr.contains("fr: error: cannot run /etc: it is a directory"), "{}", out.stderr);
    // Not found: where fr looked, inside the image.
    let out = h.fr(["exec", "-f", image, "--", "nosuch"]);
    assert_eq!(out.code, Some(127), "{out:?}");
    assert!(
        out.stderr.contains(
            "nosuch: command not found in the image (PATH inside it: \
             /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)"
        ),
        "{}",
        out.stderr
    );
    let out = h.fr(["exec", "-f", image, "/no/such"]);
    assert_eq!(out.code, Some(127), "{out:?}");
    assert!(out.stderr.contains("/no/such: no such file in the image"), "{}", out.stderr);
    // A script whose interpreter is missing is there: its #! line is not.
    script(h, &rootfs.join("s"), "#!/no/shell\n");
    let out = h.fr(["exec", "-f", image, "/s"]);
    assert_eq!(out.code, Some(127), "{out:?}");
    assert!(out.stderr.contains("the program that would run it is missing"), "{}", out.stderr);
    // Not executable.
    let out = h.fr(["exec", "-f", image, "/etc/passwd"]);
    assert_eq!(out.code, Some(126), "{out:?}");
    assert!(out.stderr.contains("permission denied"), "{}", out.stderr);
}

#[test]
fn a_tarball_or_a_missing_directory_given_as_image_says_what_to_do() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    let dir = h.scratch("tarball");
    let tarball = dir.join("rootfs.tar.gz");
    run(h.command("tar").arg("-C").arg(&rootfs).arg("-czf").arg(&tarball).arg(".")).ok();
    let out = h.fr(["exec", "-f", path(&tarball), "--", "true"]);
    assert_eq!(out.code, Some(125), "{out:?}");
    assert!(out.stderr.contains("it is a gzip-compressed file, not a directory"), "{}", out.stderr);
    let way_out = format!("fr: hint: {}", "fr runs a directory holding a root file system");
    assert!(out.stderr.contains(&way_out), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("fr import {} IMAGE", path(&tarball))), "{}", out.stderr);
    // No such directory: perhaps a host command meant without `--`.
    let out = h.fr(["exec", "-f", "no-such-image", "true"]);
    assert_eq!(out.code, Some(125), "{out:?}");
    assert!(out.stderr.contains("image no-such-image: no such directory"), "{}", out.stderr);
    assert!(out.stderr.contains("put it after --: fr exec -f -- CMD"), "{}", out.stderr);
}

/// `dir` as a tar archive made by the test user, at `out`.
fn tar(h: &Harness, dir: &Path, out: &Path) {
    run(h.command("tar").arg("-C").arg(dir).arg("-cf").arg(out).arg(".")).ok();
}

#[test]
fn a_container_image_archive_is_recognised_by_fr_import() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("container");
    let digest = "0123456789abcdef".repeat(4);
    // docker save / podman save: manifest.json and a layer per digest.
    let save = dir.join("save");
    std::fs::create_dir_all(save.join(&digest)).unwrap();
    let layer_dir = h.scratch("layer");
    std::fs::create_dir(layer_dir.join("etc")).unwrap();
    std::fs::write(layer_dir.join("etc/hostname"), "x\n").unwrap();
    run(std::process::Command::new("tar")
        .arg("-C")
        .arg(&layer_dir)
        .arg("-cf")
        .arg(save.join(&digest).join("layer.tar"))
        .arg("."))
    .ok();
    std::fs::write(save.join(format!("{digest}.json")), "{}").unwrap();
    std::fs::write(
        save.join("manifest.json"),
        format!("[{{\"Config\":\"{digest}.json\",\"Layers\":[\"{digest}/layer.tar\"]}}]"),
    )
    .unwrap();
    // An OCI layout, as a directory and as an archive.
    let oci = dir.join("oci");
    std::fs::create_dir_all(oci.join("blobs/sha256")).unwrap();
    std::fs::write(oci.join("oci-layout"), "{\"imageLayoutVersion\": \"1.0.0\"}").unwrap();
    std::fs::write(oci.join("index.json"), "{}").unwrap();
    if let Some(u) = &h.user {
        run(std::process::Command::new("chown")
            .args(["-R", &format!("{}:{}", u.uid, u.gid)])
            .arg(&dir))
        .ok();
    }
    tar(h, &save, &dir.join("save.tar"));
    tar(h, &oci, &dir.join("oci.tar"));
    for (archive, what) in [
        ("save.tar", "it is a container image archive"),
        ("oci.tar", "it is a container image archive"),
        ("oci", "it is an OCI image layout"),
    ] {
        let image = dir.join(format!("image-{archive}"));
        let out = h.fr(["import", path(&dir.join(archive)), path(&image)]);
        assert_eq!(out.code, Some(1), "{archive}: {out:?}");
        assert!(out.stderr.contains(what), "{archive}: {}", out.stderr);
        assert!(out.stderr.contains("fr does not read container images yet"), "{}", out.stderr);
        assert!(out.stderr.contains("podman export"), "{archive}: {}", out.stderr);
        assert!(!image.exists(), "{archive}: {} was left behind", image.display());
    }
}

#[test]
fn a_failed_import_leaves_no_image_behind() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("failed");
    std::fs::write(dir.join("notes.txt"), "not an archive\n").unwrap();
    let xz = dir.join("rootfs.tar.xz");
    std::fs::write(&xz, b"\xfd7zXZ\0\0\x04\xe6\xd6\xb4\x46").unwrap();
    if let Some(u) = &h.user {
        for f in [dir.join("notes.txt"), xz.clone()] {
            std::os::unix::fs::chown(f, Some(u.uid), Some(u.gid)).unwrap();
        }
    }
    let made = dir.join("made");
    let out = h.fr(["import", path(&dir.join("notes.txt")), path(&made)]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("it is not a tar archive"), "{}", out.stderr);
    assert!(!made.exists(), "the image fr made was left behind");
    let out = h.fr(["import", path(&dir.join("no-such.tar")), path(&made)]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(!made.exists(), "the image fr made was left behind");
    // Compressions fr does not read: the way round.
    let out = h.fr(["import", path(&xz), path(&made)]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains(&format!("xz -dc {} | fr import - IMAGE", path(&xz))), "{out:?}");
    assert!(!made.exists(), "the image fr made was left behind");
    // A directory of the user's stays, as it was.
    let mine = h.scratch("mine");
    let out = h.fr(["import", path(&dir.join("notes.txt")), path(&mine)]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let left: Vec<_> = std::fs::read_dir(&mine).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `fr ARGS` with its stdout a pipe nobody reads any more.
fn fr_into_closed_pipe(h: &Harness, args: &[&str]) -> std::process::Output {
    let (reader, writer) = rustix::pipe::pipe().unwrap();
    drop(reader);
    let mut cmd = h.fr_command(args);
    cmd.stdout(Stdio::from(writer)).stderr(Stdio::piped());
    cmd.output().unwrap()
}

#[test]
fn a_closed_pipe_ends_fr_quietly_by_sigpipe() {
    use std::os::unix::process::ExitStatusExt;
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    for args in [&["syscalls"][..], &["export", path(&rootfs), "-"], &["check"]] {
        let out = fr_into_closed_pipe(h, args);
        // As `yes | head -1` ends yes: killed by SIGPIPE, 141 in a shell.
        assert_eq!(
            out.status.signal(),
            Some(rustix::process::Signal::PIPE.as_raw()),
            "{args:?}: {out:?}"
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
    // In a shell pipeline, with head.
    let script = format!("{} export {} - | head -c 100 | wc -c", h.fr.display(), path(&rootfs));
    let out = run(h.command("sh").args(["-c", &script]));
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("100\n", ""), "{out:?}");
}

#[test]
fn the_mode_is_said_on_a_terminal_or_with_v_and_not_in_a_log() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    let image = path(&rootfs);
    // stderr a pipe, as in a build log: auto's usual choice goes unsaid
    // (a fallback from subuid mode, where the host has none, is said).
    let out = h.fr(["exec", "-f", "--", "true"]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""));
    let out = h.fr(["exec", "-f", image, "true"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    match common::subuid_ready(h) {
        true => assert_eq!(out.stderr, ""),
        false => assert!(out.stderr.contains("not subuid mode because"), "{}", out.stderr),
    }
    // -v says it, with the image and its store.
    let out = h.fr(["-v", "exec", "-f", "-B", "/etc/hostname:/mnt/h:ro", image, "true"]);
    let mode = if common::subuid_ready(h) { "subuid mode" } else { "root-mapped mode" };
    for said in [
        format!("fr: info: {mode}"),
        format!("fr: debug: image {}", rootfs.canonicalize().unwrap().display()),
        "fr: debug: bind /etc/hostname on /mnt/h, read-only".into(),
        format!(
            "fr: debug: metadata store {}/.fr: 0 records",
            rootfs.canonicalize().unwrap().display()
        ),
    ] {
        assert!(out.stderr.contains(&said), "{said}: {}", out.stderr);
    }
    let out = h.fr(["-v", "exec", "-f", "--", "true"]);
    assert!(out.stderr.contains("fr: info: root-mapped mode: without IMAGE"), "{}", out.stderr);
    // On a terminal, without -v.
    let inner = format!("{} exec -f {image} true", h.fr.display());
    let out = run(h.command("script").args(["-q", "-e", "-c", &inner, "/dev/null"]));
    assert!(out.stdout.contains(&format!("fr: info: {mode}")), "{out:?}");
}

#[test]
fn vv_shows_each_call_with_its_paths_decoded() {
    let Some(h) = harness() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    let out = h.fr(["-vv", "exec", "-f", path(&rootfs), "--", "chown", "5:6", "/etc/passwd"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    // busybox's chown is chown(2) or fchownat(2), as its build chose.
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("chown(") || l.contains("chownat("))
        .unwrap_or_else(|| panic!("no chown in {}", out.stderr));
    assert!(line.starts_with("fr: trace: "), "{line}");
    assert!(line.contains("\"/etc/passwd\", 5, 6") && line.ends_with(" = 0"), "{line}");
}

#[test]
fn check_says_the_mode_with_and_without_an_image() {
    let Some(h) = harness() else { return };
    let text = h.fr(["check"]).ok();
    let mode = if common::subuid_ready(h) { "subuid" } else { "root-mapped" };
    let line = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {key} in\n{text}"))
    };
    assert!(line("mode with IMAGE").starts_with(&format!("{mode}: ")), "{text}");
    assert!(line("mode without IMAGE (host tree)").starts_with("root-mapped: "), "{text}");
}

#[test]
fn completions_are_scripts_the_shells_accept() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("completions");
    for (shell, check) in [("bash", "bash"), ("zsh", "zsh"), ("fish", "fish")] {
        let script = h.fr(["completions", shell]).ok();
        assert!(script.contains("exec") && script.contains("fakeroot"), "{shell}: {script}");
        let file = dir.join(format!("fr.{shell}"));
        std::fs::write(&file, &script).unwrap();
        // Parsed, not run, by the shell when it is installed (bash always is).
        let parse = match check {
            "fish" => vec!["--no-execute"],
            _ => vec!["-n"],
        };
        match h.command(check).args(&parse).arg(&file).output() {
            Ok(out) => assert!(
                out.status.success(),
                "{shell} -n: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(_) if shell != "bash" => {}
            Err(e) => panic!("running bash: {e}"),
        }
    }
    // Sourced into bash, it completes fr's commands.
    let file = dir.join("fr.bash");
    let complete = format!(
        ". {}; COMP_WORDS=(fr ex); COMP_CWORD=1; COMP_LINE='fr ex'; COMP_POINT=5; _fr fr ex fr; \
         echo \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = run(h.command("bash").args(["-c", &complete]));
    assert!(out.stdout.split_whitespace().any(|w| w == "exec"), "{out:?}");
    assert!(out.stdout.split_whitespace().any(|w| w == "export"), "{out:?}");
}

#[test]
fn the_manual_page_renders() {
    let Some(h) = harness() else { return };
    let page = h.fr(["man"]).ok();
    assert!(page.contains(".TH fr 1"), "{page}");
    for section in
        [".SH NAME", ".SH SYNOPSIS", ".SH COMMANDS", ".SS \"fr exec\"", ".SH \"EXIT STATUS\""]
    {
        assert!(page.contains(section), "{section}: {page}");
    }
    let dir = h.scratch("man");
    let file = dir.join("fr.1");
    std::fs::write(&file, &page).unwrap();
    // groff warns of what it cannot typeset (-ww: every warning).
    let Ok(out) = h.command("groff").args(["-man", "-Tutf8", "-ww", "-z"]).arg(&file).output()
    else {
        cannot_run::<()>("groff typesets the page (apt-get install groff-base; .ci/run does)");
        return;
    };
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "groff's warnings");
    let Ok(out) = h.command("man").arg("-l").arg(&file).env("MANWIDTH", "80").output() else {
        cannot_run::<()>("man shows the page (apt-get install man-db; .ci/run does)");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("fr exec") && text.contains("EXIT STATUS"), "{text}");
}
