//! `fr check` on this host, as the test user: what it says is what the
//! host has (the suite needs user namespaces and every seccomp feature,
//! `.ci/run` gives the user a subuid range).

mod common;

use common::harness;

#[test]
fn check_reports_this_host() {
    let Some(h) = harness() else { return };
    let run = h.fr(["check"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let text = run.stdout;
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let value = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .map(|l| l[key.len()..].trim().to_string())
            .unwrap_or_else(|| panic!("no {key} in\n{text}"))
    };
    assert_eq!(value("kernel"), release.trim());
    assert_eq!(value("unprivileged user namespaces"), "work");
    for feature in
        ["seccomp user notification (5.0)", "  CONTINUE", "  ADDFD (5.9)", "  SYNC_WAKE_UP"]
    {
        assert!(value(feature).ends_with("yes"), "{feature}: {text}");
    }
    // .ci/run gives the test user ranges and installs uidmap: subuid mode.
    let mode = if common::subuid_ready(h) { "subuid" } else { "root-mapped" };
    assert!(
        value("mode with IMAGE").starts_with(&format!("{mode}: user namespaces work")),
        "{text}"
    );
    // The ranges /etc/subuid gives the test user, as the file says them.
    if let Some(user) = &h.user {
        let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
        for line in subuid.lines().filter(|l| l.starts_with(&format!("{}:", user.name))) {
            let f: Vec<u64> = line.split(':').skip(1).map(|x| x.parse().unwrap()).collect();
            let shown = format!("{}-{} ({} ids)", f[0], f[0] + f[1] - 1, f[1]);
            assert!(value("subuid ranges").contains(&shown), "{shown}: {text}");
        }
    }
    let json = h.fr(["check", "--json"]);
    assert_eq!(json.code, Some(0));
    let parsed = h
        .command("python3")
        .args(["-c", "import json,sys; d=json.load(sys.stdin); print(d['mode'], d['seccomp']['addfd_send'], d['userns']['works'])"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(json.stdout.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&parsed.stdout), format!("{mode} True True\n"));
}

/// `fr config fakeroot` as root on copies of the id files: a new range that
/// overlaps nothing, every other byte kept; as the user, a refusal.
#[test]
fn config_fakeroot_adds_a_free_range_and_keeps_the_rest() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("config");
    let before = "# site ranges\nfrtest:100000:65536\n!gone:165536:65536\n\nlp:300000:1000\n";
    let (su, sg) = (dir.join("subuid"), dir.join("subgid"));
    for f in [&su, &sg] {
        std::fs::write(f, before).unwrap();
    }
    let args = |action: &str| {
        vec![
            "config".to_string(),
            "fakeroot".into(),
            action.into(),
            "daemon".into(),
            format!("--subuid-file={}", su.display()),
            format!("--subgid-file={}", sg.display()),
        ]
    };
    let refused = h.fr(args("--add"));
    assert_eq!(refused.code, Some(1));
    assert!(refused.stderr.contains("run it as root"), "{}", refused.stderr);
    if !common::is_root() {
        common::cannot_run::<()>(
            "fr config fakeroot edits the id files as root: run the suite as root",
        );
        return;
    }
    let run = std::process::Command::new(&h.fr).args(args("--add")).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    for f in [&su, &sg] {
        assert_eq!(std::fs::read_to_string(f).unwrap(), format!("{before}daemon:231072:65536\n"));
    }
    let run = std::process::Command::new(&h.fr).args(args("--disable")).output().unwrap();
    assert!(run.status.success());
    assert!(std::fs::read_to_string(&su).unwrap().ends_with("\n!daemon:231072:65536\n"));
    let run = std::process::Command::new(&h.fr).args(args("--remove")).output().unwrap();
    assert!(run.status.success());
    assert_eq!(std::fs::read_to_string(&sg).unwrap(), before);
    assert!(!dir.join("subuid.lock").exists());
}
