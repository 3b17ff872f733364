//! The `fr` command line end to end: what it takes (Apptainer's `exec
//! IMAGE CMD`, no command for a shell), what it says when a request cannot
//! be met (the way out, the exit status), and what it prints.

mod common;

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use common::{harness, run, Harness, Run};

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
