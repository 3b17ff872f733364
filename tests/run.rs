//! `fr run`, `fr shell`, `fr test` and the options every action shares
//! with Apptainer: the image's scripts, the environment as Apptainer
//! passes it, where a session starts and what it binds, the host name,
//! and how the image is mounted. Each runs the real binary as the
//! unprivileged test user on a busybox image.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::pty::{at_the_terminal, Steps};
use common::{cannot_run, harness, run, Harness, Run};

/// Writes `text` at `rel` in `dir` (made as the test user), mode `mode`.
fn put(h: &Harness, dir: &Path, rel: &str, text: &str, mode: u32) {
    let path = dir.join(rel);
    let script = format!(
        "mkdir -p \"$(dirname '{p}')\" && cat > '{p}' && chmod {mode:o} '{p}'",
        p = path.display()
    );
    let mut cmd = h.command("sh");
    cmd.args(["-c", &script]).stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "writing {}", path.display());
}

/// A busybox image with Apptainer's metadata: a runscript that shows its
/// arguments, an environment script, a test script.
fn image(h: &Harness) -> Option<PathBuf> {
    let img = h.rootfs()?;
    put(h, &img, ".singularity.d/runscript", "#!/bin/sh\necho \"args $#: $*\"\n", 0o755);
    put(
        h,
        &img,
        ".singularity.d/env/90-environment.sh",
        "export FROM_IMAGE=image\nexport MAIL=image-mail\nexport DEF=${DEF:-image-default}\n",
        0o644,
    );
    put(h, &img, ".singularity.d/test", "#!/bin/sh\necho testing-$((2+2))\nexit 3\n", 0o755);
    Some(img)
}

fn fr_in(h: &Harness, dir: &Path, args: &[&str]) -> Run {
    h.fr_in(dir, args)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn run_gives_the_runscript_its_arguments() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    assert_eq!(h.fr(["run", s(&img), "a", "b c"]).ok(), "args 2: a b c\n");
    // Options after IMAGE are the runscript's.
    assert_eq!(h.fr(["run", s(&img), "-x", "--y"]).ok(), "args 2: -x --y\n");
}

#[test]
fn run_without_a_runscript_runs_sh_with_the_arguments() {
    let Some(h) = harness() else { return };
    let Some(img) = h.rootfs() else { return };
    let out = h.fr(["run", s(&img), "-c", "echo fallback-$((1+1))"]);
    assert_eq!(out.ok(), "fallback-2\n");
}

#[test]
fn shell_reads_commands_from_stdin_as_fake_root() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    let input = h.scratch("stdin").join("in");
    std::fs::write(&input, "id -u; echo $FROM_IMAGE $SHELL\n").unwrap();
    let mut cmd = h.fr_command(["shell", "-f", s(&img)]);
    cmd.stdin(std::fs::File::open(&input).unwrap());
    assert_eq!(run(&mut cmd).ok(), "0\nimage /bin/sh\n");
}

#[test]
fn test_runs_the_test_script_and_returns_its_status() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    let out = h.fr(["test", s(&img)]);
    assert_eq!((out.code, out.stdout.as_str()), (Some(3), "testing-4\n"), "{}", out.stderr);
    // No test script: nothing to run, status 0.
    let Some(bare) = h.rootfs() else { return };
    let out = h.fr(["test", s(&bare)]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("no test script"), "{}", out.stderr);
}

#[test]
fn exec_sources_the_images_environment_and_env_options_win_over_it() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    let show = "echo $FROM_IMAGE $DEF $MAIL $A $B $C";
    let dir = h.scratch("envfile");
    std::fs::write(dir.join("vars"), "# comment\nB=from-file\nexport C=\"file $USER\"\n").unwrap();
    let file = dir.join("vars");
    let mut cmd = h.fr_command([
        "exec",
        "--env",
        "A=from-env,DEF=forced",
        "--env-file",
        s(&file),
        s(&img),
        "sh",
        "-c",
        show,
    ]);
    cmd.env("APPTAINERENV_A", "from-apptainerenv").env("APPTAINERENV_C", "overridden");
    // --env beats APPTAINERENV_; --env-file beats APPTAINERENV_; both beat
    // the image's scripts; the image's scripts beat the caller's MAIL.
    let user = h.user.as_ref().map_or_else(|| std::env::var("USER").unwrap(), |u| u.name.clone());
    assert_eq!(
        run(&mut cmd).ok(),
        format!("image forced image-mail from-env from-file file {user}\n")
    );
    // A bad --env-file names the file and the line.
    std::fs::write(&file, "A=1\nno equals\n").unwrap();
    let out = h.fr(["exec", "--env-file", s(&file), s(&img), "true"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("line 2"), "{}", out.stderr);
}

#[test]
fn the_callers_environment_passes_as_apptainer_passes_it_and_cleanenv_keeps_term_only() {
    let Some(h) = harness() else { return };
    let Some(img) = h.rootfs() else { return };
    let show = "echo \"mail=$MAIL old=$OLDPWD ld=$LD_LIBRARY_PATH app=$APPTAINER_BIND home=$HOME term=$TERM path=$PATH\"";
    let env = |cmd: &mut std::process::Command| {
        cmd.env("MAIL", "/var/mail/me")
            .env("OLDPWD", "/host/old")
            .env("LD_LIBRARY_PATH", "/host/lib")
            .env("APPTAINER_BIND", "/x")
            .env("TERM", "vt100");
    };
    let mut cmd = h.fr_command(["exec", "-f", s(&img), "sh", "-c", show]);
    env(&mut cmd);
    assert_eq!(
        run(&mut cmd).ok(),
        "mail=/var/mail/me old= ld= app= home=/root term=vt100 \
         path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    let mut cmd = h.fr_command(["exec", "-f", "--cleanenv", s(&img), "sh", "-c", show]);
    env(&mut cmd);
    let out = run(&mut cmd).ok();
    assert!(out.starts_with("mail= old= ld= app= home=/root term=vt100 "), "{out}");
}

#[test]
fn a_session_starts_in_the_callers_working_directory_bound_in() {
    let Some(h) = harness() else { return };
    let Some(img) = h.rootfs() else { return };
    let cwd = h.scratch("cwd");
    put(h, &cwd, "mine", "my file\n", 0o644);
    let out = fr_in(h, &cwd, &["exec", s(&img), "sh", "-c", "pwd; cat mine"]).ok();
    assert_eq!(out, format!("{}\nmy file\n", cwd.display()));
    // A working directory inside the image: the same directory, from the
    // image's root, and nothing bound.
    let inside = img.join("etc");
    assert_eq!(fr_in(h, &inside, &["exec", s(&img), "pwd"]).ok(), "/etc\n");
}

#[test]
fn pwd_sets_the_starting_directory_and_a_missing_one_is_an_error() {
    let Some(h) = harness() else { return };
    let Some(img) = h.rootfs() else { return };
    assert_eq!(h.fr(["exec", "--pwd", "/etc", s(&img), "pwd"]).ok(), "/etc\n");
    let out = h.fr(["exec", "--pwd", "/no/such", s(&img), "pwd"]);
    assert_eq!(out.code, Some(126), "{out:?}");
    assert!(out.stderr.contains("--pwd /no/such"), "{}", out.stderr);
}

#[test]
fn containall_hides_the_host_home_which_is_bound_otherwise() {
    let Some(h) = harness() else { return };
    let Some(img) = h.rootfs() else { return };
    let home = h.scratch("home");
    put(h, &home, "marker", "host home\n", 0o644);
    let cwd = h.scratch("cwd");
    let look = "echo $HOME; cat $HOME/marker 2>/dev/null || echo no-marker; ls -A $HOME | wc -l";
    let with = |opts: &[&str]| {
        let mut args = vec!["exec"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&[s(&img), "sh", "-c", look]);
        let mut cmd = h.fr_command(&args);
        run(cmd.env("HOME", &home).current_dir(&cwd)).ok()
    };
    // Fake root's home is /root, your home bound there.
    assert_eq!(with(&["-f"]), "/root\nhost home\n1\n");
    assert_eq!(with(&[]), format!("{}\nhost home\n1\n", home.display()));
    // --containall and --contain: an empty home of the container's own.
    assert_eq!(with(&["-f", "--containall"]), "/root\nno-marker\n0\n");
    assert_eq!(with(&["--contain"]), format!("{}\nno-marker\n0\n", home.display()));
    // --no-home: not bound; the image's /root.
    assert_eq!(with(&["-f", "--no-home"]), "/root\nno-marker\n0\n");
}

#[test]
fn hostname_names_the_container() {
    let Some(h) = harness() else { return };
    let Some(img) = h.rootfs() else { return };
    assert_eq!(h.fr(["exec", "--hostname", "box-1", s(&img), "hostname"]).ok(), "box-1\n");
}

#[test]
fn a_read_only_bind_refuses_writes_and_binds_take_comma_lists() {
    let Some(h) = harness() else { return };
    let Some(img) = h.rootfs() else { return };
    let data = h.scratch("data");
    put(h, &data, "f", "data\n", 0o644);
    let binds = format!("{d}:/ro:ro,{d}:/rw", d = data.display());
    let script = "cat /ro/f; echo x > /ro/g && echo wrote-ro; echo y > /rw/h && echo wrote-rw";
    let out = h.fr(["exec", "-f", "-B", &binds, s(&img), "sh", "-c", script]);
    assert_eq!(out.stdout, "data\nwrote-rw\n", "{}", out.stderr);
    assert!(out.stderr.contains("Read-only file system"), "{}", out.stderr);
    assert!(!data.join("g").exists());
    assert_eq!(std::fs::read_to_string(data.join("h")).unwrap(), "y\n");
}

/// The files of the image's store and their bytes (the lock's holder
/// aside).
fn store_files(img: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(img.join(".fr"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "lock")
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn writable_tmpfs_changes_are_gone_after_the_session() {
    let Some(h) = harness() else { return };
    let mut modes = vec!["--userns=root-mapped"];
    if common::subuid_ready(h) {
        modes.push("--userns=subuid");
    } else {
        cannot_run::<()>("subuid mode needs the test user's ranges and setuid newuidmap");
    }
    for mode in modes {
        let Some(img) = h.rootfs() else { return };
        h.fr(["exec", "-f", mode, s(&img), "chown", "7:8", "/etc/group"]).ok();
        let store = store_files(&img);
        let change = "touch /new && chown 5:6 /etc/passwd /new && echo changed >> /etc/group && \
                      stat -c %u:%g /etc/passwd /new /etc/group";
        let out = h.fr(["exec", "-f", mode, "--writable-tmpfs", s(&img), "sh", "-c", change]).ok();
        // The session sees its changes, over the store's records.
        assert_eq!(out, "5:6\n5:6\n7:8\n", "{mode}");
        let after = "ls /new 2>&1; stat -c %u:%g /etc/passwd /etc/group; tail -c 8 /etc/group";
        let out = h.fr(["exec", "-f", mode, s(&img), "sh", "-c", after]);
        assert!(
            out.stdout.starts_with("ls: /new: No such file or directory\n0:0\n7:8\n"),
            "{mode}: {out:?}"
        );
        assert!(!out.stdout.contains("changed"), "{mode}: {out:?}");
        assert_eq!(store_files(&img), store, "{mode}: the store was changed");
        // Without fake root too.
        h.fr(["exec", "--writable-tmpfs", s(&img), "touch", "/other"]).ok();
        assert!(!img.join("other").exists(), "{mode}");
    }
}

#[test]
fn without_fakeroot_the_image_is_read_only_unless_writable() {
    let Some(h) = harness() else { return };
    let Some(img) = h.rootfs() else { return };
    let out = h.fr(["exec", s(&img), "touch", "/x"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("Read-only file system"), "{}", out.stderr);
    h.fr(["exec", "-w", s(&img), "touch", "/x"]).ok();
    assert!(img.join("x").exists());
    // Fake root writes: fr's build and maintenance sessions.
    h.fr(["exec", "-f", s(&img), "touch", "/y"]).ok();
    assert!(img.join("y").exists());
}

/// Lists every path under `dir` but its store.
fn tree(dir: &Path) -> Vec<String> {
    let out = std::process::Command::new("find")
        .arg(dir)
        .arg("-path")
        .arg(dir.join(".fr"))
        .args(["-prune", "-o", "-print"])
        .output()
        .unwrap();
    let mut v: Vec<String> =
        String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn a_session_leaves_no_mount_point_in_the_image() {
    let Some(h) = harness() else { return };
    let Some(img) = h.rootfs() else { return };
    h.fr(["exec", "-f", s(&img), "true"]).ok();
    let before = tree(&img);
    let cwd = h.scratch("deep").join("a/b");
    std::fs::create_dir_all(&cwd).unwrap();
    for d in [cwd.parent().unwrap(), &cwd] {
        let _ =
            std::process::Command::new("chown").arg(format!("{}:{}", h.uid, h.gid)).arg(d).status();
    }
    let data = h.scratch("data");
    let bind = format!("{}:/new/mount/point", data.display());
    for opts in [
        &["-f"][..],
        &[],
        &["-f", "--contain"],
        &["--writable-tmpfs"],
        &["-f", "--net", "--network", "none"],
    ] {
        let mut args = vec!["exec", "-B", &bind];
        args.extend_from_slice(opts);
        args.extend_from_slice(&[s(&img), "sh", "-c", "pwd; ls -d /new/mount/point"]);
        let out = fr_in(h, &cwd, &args);
        assert_eq!(out.code, Some(0), "{opts:?}: {out:?}");
        assert_eq!(tree(&img), before, "{opts:?}: the image kept a mount point");
    }
}

#[test]
fn an_interactive_shell_has_job_control_and_ctrl_c_reaches_the_job() {
    let Some(h) = harness() else { return };
    if std::process::Command::new("python3").arg("-c").arg("import pty").status().is_err() {
        cannot_run::<()>("python3 drives the pseudo-terminal");
        return;
    }
    let Some(img) = h.rootfs() else { return };
    // busybox ash asks the terminal where its cursor is after a prompt.
    let prompt = r"fr> (\x1b\[6n)?$";
    let steps = Steps::default()
        .expect(r"\$ $", 10)
        .send(&format!("{} shell -q -f {}\n", h.fr.display(), img.display()))
        .expect(prompt, 20)
        .send("sleep 30 &\n")
        .expect(prompt, 10)
        .send("jobs; echo jobs-$((1+1))\n")
        .expect(r"Running\s+sleep 30", 10)
        .expect("jobs-2", 10)
        .expect(prompt, 10)
        // The job comes back to the foreground ...
        .send("fg\n")
        .expect("sleep 30\r?\n", 10)
        .pause(0.5)
        // ... and ^C reaches it, not fr: the shell goes on.
        .send("\u{3}")
        .expect(prompt, 10)
        .send("echo alive-$((2+3)) status-$?\n")
        .expect("alive-5 status-130", 10)
        .expect(prompt, 10)
        .send("exit 4\n")
        .expect(r"\$ $", 20)
        .send("echo fr-status=$((0+$?))\n")
        .expect("fr-status=4", 10)
        .send("exit\n");
    let out = at_the_terminal(h, &steps);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
}

/// An image `fr build` made from a definition file: `run` gives its
/// `%runscript` the arguments with `%environment` set, `test` runs its
/// `%test`, `--env` wins over `%environment`, and an instance runs its
/// `%startscript`.
#[test]
fn an_image_fr_build_made_runs_its_sections() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("built");
    let def = "Bootstrap: busybox\n\n\
               %environment\n    export GREETING=hello\n\n\
               %runscript\n    echo \"$GREETING from the runscript: $*\"\n\n\
               %startscript\n    echo started-$GREETING > /tmp/started; exec sleep 100000\n\n\
               %test\n    echo \"test sees $GREETING\"\n";
    std::fs::write(dir.join("app.def"), def).unwrap();
    if let Some(u) = &h.user {
        std::os::unix::fs::chown(dir.join("app.def"), Some(u.uid), Some(u.gid)).unwrap();
    }
    let built = h.fr_in(&dir, ["build", "img", "app.def"]);
    assert_eq!(built.code, Some(0), "{built:?}");
    let img = dir.join("img");
    assert_eq!(fr_in(h, &dir, &["run", s(&img), "a", "b"]).ok(), "hello from the runscript: a b\n");
    assert_eq!(
        fr_in(h, &dir, &["run", "--env", "GREETING=hi", s(&img)]).ok(),
        "hi from the runscript: \n"
    );
    assert_eq!(fr_in(h, &dir, &["test", s(&img)]).ok(), "test sees hello\n");
    let rt = h.scratch("rt");
    std::fs::set_permissions(&rt, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let with_rt = |args: &[&str]| {
        let mut cmd = h.fr_command(args);
        run(cmd.env("XDG_RUNTIME_DIR", &rt).current_dir(&dir))
    };
    with_rt(&["instance", "start", "-f", s(&img), "app"]).ok();
    let seen = with_rt(&["exec", "instance://app", "--", "sh", "-c", "i=0; until [ -e /tmp/started ] || [ $i -gt 600 ]; do i=$((i+1)); sleep 0.05; done; cat /tmp/started"]);
    let stopped = with_rt(&["instance", "stop", "app"]);
    assert_eq!(seen.ok(), "started-hello\n");
    stopped.ok();
}

#[test]
fn an_image_with_environment_scripts_and_no_sh_still_runs_its_commands() {
    let Some(h) = harness() else { return };
    let Some(img) = image(h) else { return };
    std::fs::remove_file(img.join("bin/sh")).unwrap();
    assert_eq!(h.fr(["exec", "-f", s(&img), "/bin/busybox", "echo", "direct"]).ok(), "direct\n");
    // The runscript too, whose #! names /bin/sh: it says so.
    let out = h.fr(["run", s(&img)]);
    assert_eq!(out.code, Some(127), "{out:?}");
    assert!(out.stderr.contains("/.singularity.d/runscript"), "{}", out.stderr);
}

/// A session killed with `SIGKILL` (fr's outer process goes with it)
/// cannot remove the mount points it made in the image; it leaves their
/// list in the store, and the next session removes them: the directories
/// and the empty file it made, not the image's own files nor what the
/// user put in them since.
#[test]
fn a_killed_sessions_mount_points_go_with_the_next_session() {
    let Some(h) = harness() else { return };
    let Some(img) = h.rootfs() else { return };
    h.fr(["exec", "-f", s(&img), "true"]).ok();
    let before = tree(&img);
    let data = h.scratch("killed-data");
    std::fs::write(data.join("file"), "data").unwrap();
    let mut child = h
        .fr_command([
            "exec",
            "-q",
            "-f",
            "--contain",
            "-B",
            &format!("{}:/new/mount/point", data.display()),
            "-B",
            &format!("{}:/etc/newfile", data.join("file").display()),
            "-B",
            &format!("{}:/kept/by/user", data.display()),
            s(&img),
            "sh",
            "-c",
            "touch /new/mount/point/ready && exec sleep 60",
        ])
        .spawn()
        .expect("starting fr");
    // The workload runs: every mount is made.
    let start = std::time::Instant::now();
    while !data.join("ready").exists() {
        assert!(start.elapsed().as_secs() < 30, "the session's workload never ran");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let made = [img.join("new/mount/point"), img.join("etc/newfile"), img.join("kept/by/user")];
    child.kill().expect("SIGKILL to fr");
    child.wait().unwrap();
    assert!(made.iter().all(|p| p.exists()), "the killed session left no mount point to clean");
    // What the user put in one since stays, with the directories above it.
    std::fs::write(img.join("kept/by/user/note"), "mine").unwrap();
    h.fr(["exec", "-f", s(&img), "true"]).ok();
    let mut want = before.clone();
    for p in ["kept", "kept/by", "kept/by/user", "kept/by/user/note"] {
        want.push(img.join(p).display().to_string());
    }
    want.sort();
    assert_eq!(tree(&img), want, "the next session left the killed one's mount points");
    assert!(!img.join(".fr/mount-points").exists(), "the list outlived its sweep");
}

/// The container's `/proc` is mounted on the image's own directory; an
/// image without one (a home directory given as IMAGE by mistake) gets it
/// for the session only.
#[test]
fn an_image_without_proc_is_left_without_it() {
    let Some(h) = harness() else { return };
    let Some(img) = h.rootfs() else { return };
    std::fs::remove_dir(img.join("proc")).unwrap();
    h.fr(["exec", "-f", s(&img), "true"]).ok();
    let before = tree(&img);
    for opts in [&["-f"][..], &[], &["-f", "--contain"]] {
        let mut args = vec!["exec"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&[s(&img), "sh", "-c", "test -r /proc/self/status"]);
        let out = h.fr(args);
        assert_eq!(out.code, Some(0), "{opts:?}: {out:?}");
        assert_eq!(tree(&img), before, "{opts:?}: the image kept /proc");
        assert!(!img.join("proc").exists(), "{opts:?}");
    }
}
