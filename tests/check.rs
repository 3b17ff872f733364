//! `fr check` on this host, as the test user: what it says is what the
//! host has. The kernel's features are found independently, by a probe
//! that uses each one (`tests/probe/seccomp_features.c`), and the subuid
//! ranges from the files themselves.

mod common;

use std::collections::BTreeMap;

use common::harness;

/// The features the probe found, by name: `true` for "yes".
fn probed(h: &common::Harness) -> Option<BTreeMap<String, bool>> {
    let probe = h.compile("seccomp_features.c", "seccomp-features", &["-static", "-pthread"])?;
    let out = common::run(&mut h.command(&probe));
    assert_eq!(out.code, Some(0), "{out:?}");
    let found: BTreeMap<String, bool> = out
        .stdout
        .lines()
        .map(|l| {
            let (name, answer) = l.split_once(' ').unwrap();
            (name.to_string(), answer == "yes")
        })
        .collect();
    assert_eq!(found.len(), 7, "{}", out.stdout);
    Some(found)
}

#[test]
fn check_reports_this_host() {
    let Some(h) = harness() else { return };
    let Some(has) = probed(h) else { return };
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
    let userns = value("unprivileged user namespaces");
    assert_eq!(userns == "work", has["userns"], "{text}");
    for (line, feature) in [
        ("seccomp user notification (5.0)", "user_notif"),
        ("  CONTINUE (5.5)", "continue"),
        ("  ADDFD (5.9)", "addfd"),
        ("  ADDFD_FLAG_SEND (5.14)", "addfd_send"),
        ("  WAIT_KILLABLE_RECV (5.19)", "wait_killable_recv"),
        ("  SYNC_WAKE_UP (6.6)", "sync_wake_up"),
    ] {
        let said = value(line);
        assert_eq!(said == "yes", has[feature], "{feature}: fr check says {said:?}\n{text}");
    }
    // The ranges and setuid helpers the harness sees give subuid mode.
    let mode = match (has["userns"], common::subuid_ready(h)) {
        (true, true) => "subuid",
        (true, false) => "root-mapped",
        (false, _) => "none",
    };
    assert!(value("mode with IMAGE").starts_with(&format!("{mode}: ")), "{text}");
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
    let fields = "d['mode'], d['userns']['works'], *(d['seccomp'][k] for k in \
        ('user_notif', 'continue', 'addfd', 'addfd_send', 'wait_killable_recv', 'sync_wake_up'))";
    let parsed = h
        .command("python3")
        .args(["-c", &format!("import json,sys; d=json.load(sys.stdin); print(*({fields}))")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(json.stdout.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let py = |b: bool| if b { "True" } else { "False" };
    let keys = [
        "userns",
        "user_notif",
        "continue",
        "addfd",
        "addfd_send",
        "wait_killable_recv",
        "sync_wake_up",
    ];
    let want: Vec<&str> = std::iter::once(mode).chain(keys.iter().map(|k| py(has[*k]))).collect();
    assert_eq!(String::from_utf8_lossy(&parsed.stdout), format!("{}\n", want.join(" ")));
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
