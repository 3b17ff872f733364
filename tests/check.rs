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
    assert!(value("mode fr picks").starts_with("root-mapped: user namespaces work"), "{text}");
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
    assert_eq!(String::from_utf8_lossy(&parsed.stdout), "root-mapped True True\n");
}
