//! `fr check`: what this host offers fr, and the mode fr picks.
//!
//! The files read (`/proc/sys`, `/etc/subuid`, `/etc/subgid`, the id
//! mapping helpers) are read under a root directory, so that the tests can
//! hand in a fake tree; the kernel itself (user namespaces, seccomp) is
//! probed live.

use std::path::{Path, PathBuf};

use serde_json::json;

/// One `sysctl` that can keep unprivileged user namespaces off.
#[derive(Debug, Clone)]
pub struct Sysctl {
    pub name: &'static str,
    /// Its value, or `None` when this kernel does not have it.
    pub value: Option<String>,
    /// The value that blocks user namespaces.
    blocks: fn(&str) -> bool,
}

impl Sysctl {
    pub fn blocks(&self) -> bool {
        self.value.as_deref().is_some_and(self.blocks)
    }
}

/// The sysctls that decide whether an unprivileged user may create a user
/// namespace, read under `root`.
pub fn userns_sysctls(root: &Path) -> Vec<Sysctl> {
    let read =
        |rel: &str| std::fs::read_to_string(root.join(rel)).ok().map(|s| s.trim().to_string());
    vec![
        Sysctl {
            name: "user.max_user_namespaces",
            value: read("proc/sys/user/max_user_namespaces"),
            blocks: |v| v == "0",
        },
        Sysctl {
            name: "kernel.unprivileged_userns_clone",
            value: read("proc/sys/kernel/unprivileged_userns_clone"),
            blocks: |v| v == "0",
        },
        Sysctl {
            name: "kernel.apparmor_restrict_unprivileged_userns",
            value: read("proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
            blocks: |v| v != "0",
        },
    ]
}

/// A subordinate id range from `/etc/subuid` or `/etc/subgid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub count: u64,
}

/// What one of the subordinate id files says: the user's ranges (by name
/// or by uid, every line), and the pairs of entries whose ranges overlap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubIds {
    pub file: PathBuf,
    pub exists: bool,
    pub ranges: Vec<Range>,
    pub overlaps: Vec<String>,
    pub bad_lines: Vec<usize>,
}

pub fn subids(root: &Path, rel: &str, user: Option<&str>, uid: u32) -> SubIds {
    let file = root.join(rel);
    let Ok(text) = std::fs::read_to_string(&file) else {
        return SubIds { file, ..SubIds::default() };
    };
    let mut all: Vec<(String, Range)> = Vec::new();
    let mut out = SubIds { file, exists: true, ..SubIds::default() };
    for (n, text) in text.lines().enumerate() {
        let entry = match crate::subid::line(text) {
            crate::subid::Line::Blank => continue,
            crate::subid::Line::Entry(e) => e,
            crate::subid::Line::Bad => {
                out.bad_lines.push(n + 1);
                continue;
            }
        };
        let range = Range { start: entry.start, count: entry.count };
        if entry.gives(user, uid) {
            out.ranges.push(range);
        }
        let shown = if entry.disabled { format!("!{}", entry.owner) } else { entry.owner.into() };
        all.push((shown, range));
    }
    for (i, (a, ra)) in all.iter().enumerate() {
        for (b, rb) in &all[i + 1..] {
            if ra.start < rb.start + rb.count && rb.start < ra.start + ra.count {
                out.overlaps.push(format!(
                    "{a} {}-{} and {b} {}-{}",
                    ra.start,
                    ra.start + ra.count - 1,
                    rb.start,
                    rb.start + rb.count - 1
                ));
            }
        }
    }
    out
}

/// An id mapping helper (`newuidmap`, `newgidmap`) and how it gets the
/// privilege to write maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helper {
    pub path: PathBuf,
    pub setuid_root: bool,
    pub file_caps: bool,
}

impl Helper {
    pub fn privileged(&self) -> bool {
        self.setuid_root || self.file_caps
    }
}

pub fn helper(root: &Path, name: &str) -> Option<Helper> {
    use std::os::unix::fs::MetadataExt;
    ["usr/bin", "bin", "usr/sbin", "sbin", "usr/local/bin"].iter().find_map(|dir| {
        let path = root.join(dir).join(name);
        let meta = std::fs::metadata(&path).ok()?;
        let mut cap = [0u8; 64];
        Some(Helper {
            setuid_root: meta.mode() & 0o4000 != 0 && meta.uid() == 0,
            file_caps: rustix::fs::getxattr(&path, "security.capability", &mut cap).is_ok(),
            path,
        })
    })
}

/// Everything `fr check` found.
#[derive(Debug)]
pub struct Report {
    pub kernel: String,
    pub userns: Result<(), String>,
    pub sysctls: Vec<Sysctl>,
    pub subuid: SubIds,
    pub subgid: SubIds,
    pub newuidmap: Option<Helper>,
    pub newgidmap: Option<Helper>,
    pub seccomp: fr_supervisor::probe::Features,
    /// The mode `fr exec -f IMAGE` runs in, and why.
    pub mode: &'static str,
    pub why: String,
    /// The mode `fr exec -f -- CMD` (the host tree) runs in, and why.
    pub host_mode: &'static str,
    pub host_why: String,
}

/// Whether this user can create a user namespace: a child tries.
pub(crate) fn probe_userns() -> Result<(), String> {
    use crate::sys::{fork_with, Forked};
    match fork_with(libc::CLONE_NEWUSER) {
        Ok(Forked::Child) => crate::sys::exit_now(0),
        Ok(Forked::Parent(pid)) => {
            let pid = rustix::process::Pid::from_raw(pid).ok_or("no child")?;
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Checks the host (`root` is `/` but for tests). Call before fr starts
/// any thread: the user namespace probe forks.
pub fn check(root: &Path) -> Report {
    let uid = rustix::process::getuid().as_raw();
    let user = user_name(root, uid);
    let kernel = rustix::system::uname().release().to_string_lossy().into_owned();
    let userns = probe_userns();
    let seccomp = fr_supervisor::probe::features();
    let sysctls = userns_sysctls(root);
    let subuid = subids(root, "etc/subuid", user.as_deref(), uid);
    let subgid = subids(root, "etc/subgid", user.as_deref(), uid);
    let (newuidmap, newgidmap) = (helper(root, "newuidmap"), helper(root, "newgidmap"));
    let subuid_mode = crate::mode::subordinates(root);
    let (mode, why) = pick(&userns, &seccomp, &subuid_mode);
    let (host_mode, host_why) = pick_host(&userns, &seccomp);
    Report {
        kernel,
        userns,
        sysctls,
        subuid,
        subgid,
        newuidmap,
        newgidmap,
        seccomp,
        mode,
        why,
        host_mode,
        host_why,
    }
}

/// The mode `fr exec --fakeroot --userns=auto` uses without an image, and
/// why (`mode::choose`, and the fallback when the namespace is refused).
fn pick_host(
    userns: &Result<(), String>,
    seccomp: &fr_supervisor::probe::Features,
) -> (&'static str, String) {
    if let Err(e) = seccomp.user_notif {
        return (
            "none available",
            format!("seccomp user notification is missing ({e}): fr cannot run"),
        );
    }
    match userns {
        Ok(()) => (
            "root-mapped",
            "the host tree's files stay yours, as with fakeroot (--userns=subuid would give \
             chowned files to subordinate ids)"
                .into(),
        ),
        Err(e) => ("none", format!("user namespaces are refused ({e}): emulation alone")),
    }
}

/// The mode `fr exec --fakeroot --userns=auto IMAGE` uses, and why.
fn pick(
    userns: &Result<(), String>,
    seccomp: &fr_supervisor::probe::Features,
    subuid_mode: &Result<crate::mode::Subordinates, String>,
) -> (&'static str, String) {
    if let Err(e) = seccomp.user_notif {
        return (
            "none available",
            format!("seccomp user notification is missing ({e}): fr cannot run"),
        );
    }
    match (userns, subuid_mode) {
        (Ok(()), Ok(_)) => {
            ("subuid", "user namespaces work, with subordinate ranges and newuidmap".into())
        }
        (Ok(()), Err(why)) => ("root-mapped", format!("user namespaces work; not subuid: {why}")),
        (Err(e), _) => {
            ("none", format!("user namespaces are refused ({e}): emulation alone, no IMAGE"))
        }
    }
}

/// The name of user `uid`: the host's through NSS (`getpwuid_r(3)`, as
/// `newuidmap` resolves it: LDAP and systemd users included), or, for
/// another root (a test's), its `etc/passwd`.
pub(crate) fn user_name(root: &Path, uid: u32) -> Option<String> {
    if root == Path::new("/") {
        return crate::sys::user_name(uid);
    }
    let text = std::fs::read_to_string(root.join("etc/passwd")).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
    })
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn helper_text(h: &Option<Helper>) -> String {
    match h {
        None => "not installed (apt-get install uidmap)".into(),
        Some(h) => format!(
            "{} ({})",
            h.path.display(),
            match (h.setuid_root, h.file_caps) {
                (true, _) => "setuid root",
                (false, true) => "file capabilities",
                (false, false) => "no privilege: it cannot write id maps",
            }
        ),
    }
}

fn ranges_text(s: &SubIds) -> String {
    if !s.exists {
        return format!("{} does not exist", s.file.display());
    }
    let mut parts: Vec<String> = s
        .ranges
        .iter()
        .map(|r| format!("{}-{} ({} ids)", r.start, r.start + r.count.max(1) - 1, r.count))
        .collect();
    if parts.is_empty() {
        parts.push(format!("none for this user in {}", s.file.display()));
    }
    for o in &s.overlaps {
        parts.push(format!("overlap: {o}"));
    }
    for n in &s.bad_lines {
        parts.push(format!("line {n} does not parse"));
    }
    parts.join("; ")
}

impl Report {
    pub fn text(&self) -> String {
        let f = &self.seccomp;
        let mut out = String::new();
        let mut line = |k: &str, v: String| out.push_str(&format!("{k:<34} {v}\n"));
        line("kernel", self.kernel.clone());
        let blockers: Vec<String> = self
            .sysctls
            .iter()
            .filter(|s| s.blocks())
            .map(|s| format!("{} = {}", s.name, s.value.as_deref().unwrap_or("")))
            .collect();
        line(
            "unprivileged user namespaces",
            match (&self.userns, blockers.is_empty()) {
                (Ok(()), _) => "work".into(),
                (Err(e), true) => format!("refused ({e})"),
                (Err(e), false) => format!("refused ({e}): {}", blockers.join(", ")),
            },
        );
        for s in &self.sysctls {
            line(
                &format!("  {}", s.name),
                s.value.clone().unwrap_or_else(|| "(not in this kernel)".into()),
            );
        }
        line("subuid ranges", ranges_text(&self.subuid));
        line("subgid ranges", ranges_text(&self.subgid));
        line("newuidmap", helper_text(&self.newuidmap));
        line("newgidmap", helper_text(&self.newgidmap));
        line(
            "seccomp user notification (5.0)",
            match f.user_notif {
                Ok(()) => "yes".into(),
                Err(e) => format!("no ({e})"),
            },
        );
        line("  CONTINUE (5.5)", yes(f.continue_flag).into());
        line("  ADDFD (5.9)", yes(f.addfd).into());
        line("  ADDFD_FLAG_SEND (5.14)", yes(f.addfd_send).into());
        line("  WAIT_KILLABLE_RECV (5.19)", yes(f.wait_killable_recv).into());
        line("  SYNC_WAKE_UP (6.6)", yes(f.sync_wake_up).into());
        line("mode with IMAGE", format!("{}: {}", self.mode, self.why));
        line("mode without IMAGE (host tree)", format!("{}: {}", self.host_mode, self.host_why));
        out
    }

    pub fn json(&self) -> String {
        let f = &self.seccomp;
        let ids = |s: &SubIds| {
            json!({
                "file": s.file.display().to_string(),
                "exists": s.exists,
                "ranges": s.ranges.iter().map(|r| json!({"start": r.start, "count": r.count})).collect::<Vec<_>>(),
                "overlaps": s.overlaps,
                "bad_lines": s.bad_lines,
            })
        };
        let helper = |h: &Option<Helper>| {
            h.as_ref().map(|h| {
                json!({"path": h.path.display().to_string(), "setuid_root": h.setuid_root, "file_caps": h.file_caps})
            })
        };
        let v = json!({
            "kernel": self.kernel,
            "userns": {
                "works": self.userns.is_ok(),
                "error": self.userns.as_ref().err(),
                "sysctls": self.sysctls.iter().map(|s| json!({"name": s.name, "value": s.value, "blocks": s.blocks()})).collect::<Vec<_>>(),
            },
            "subuid": ids(&self.subuid),
            "subgid": ids(&self.subgid),
            "newuidmap": helper(&self.newuidmap),
            "newgidmap": helper(&self.newgidmap),
            "seccomp": {
                "user_notif": f.user_notif.is_ok(),
                "continue": f.continue_flag,
                "addfd": f.addfd,
                "addfd_send": f.addfd_send,
                "wait_killable_recv": f.wait_killable_recv,
                "sync_wake_up": f.sync_wake_up,
            },
            "mode": self.mode,
            "why": self.why,
            "host_mode": self.host_mode,
            "host_why": self.host_why,
        });
        format!("{v:#}\n")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fake host tree under the temporary directory.
    pub(crate) fn tree(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let root = std::env::temp_dir().join(format!("fr-check-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (rel, text) in files {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        root
    }

    #[test]
    fn disabled_user_namespaces_are_named() {
        let root = tree(
            "disabled",
            &[
                ("proc/sys/user/max_user_namespaces", "0\n"),
                ("proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1\n"),
            ],
        );
        let s = userns_sysctls(&root);
        let blocking: Vec<_> = s.iter().filter(|s| s.blocks()).map(|s| s.name).collect();
        assert_eq!(
            blocking,
            ["user.max_user_namespaces", "kernel.apparmor_restrict_unprivileged_userns"]
        );
        assert_eq!(s[1].value, None, "a sysctl this kernel lacks is not a blocker");
        let open = tree("open", &[("proc/sys/user/max_user_namespaces", "63000\n")]);
        assert!(userns_sysctls(&open).iter().all(|s| !s.blocks()));
        let _ = (std::fs::remove_dir_all(root), std::fs::remove_dir_all(open));
    }

    #[test]
    fn ranges_by_name_and_uid_and_overlaps() {
        let root = tree(
            "ranges",
            &[(
                "etc/subuid",
                "# comment\nalice:100000:65536\n1001:300000:1000\nbob:150000:65536\nbroken line\ncarol:400000:10\n",
            )],
        );
        let s = subids(&root, "etc/subuid", Some("alice"), 1001);
        assert_eq!(
            s.ranges,
            [Range { start: 100000, count: 65536 }, Range { start: 300000, count: 1000 }]
        );
        assert_eq!(s.overlaps, ["alice 100000-165535 and bob 150000-215535"]);
        assert_eq!(s.bad_lines, [5]);
        let none = subids(&root, "etc/subuid", Some("dave"), 2000);
        assert!(none.exists && none.ranges.is_empty());
        assert!(!subids(&root, "etc/subgid", None, 0).exists);
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn a_missing_or_unprivileged_helper_is_told_apart() {
        let root = tree("helpers", &[("usr/bin/newgidmap", "")]);
        assert_eq!(helper(&root, "newuidmap"), None);
        let gid = helper(&root, "newgidmap").unwrap();
        assert!(!gid.privileged(), "{gid:?}");
        let _ = std::fs::remove_dir_all(&root);
        let features = fr_supervisor::probe::Features {
            user_notif: Ok(()),
            continue_flag: true,
            addfd: true,
            addfd_send: true,
            wait_killable_recv: true,
            sync_wake_up: true,
        };
        let missing = Err("newuidmap is not installed".to_string());
        let (mode, why) = pick(&Ok(()), &features, &missing);
        assert_eq!(mode, "root-mapped");
        assert_eq!(why, "user namespaces work; not subuid: newuidmap is not installed");
        let (mode, why) = pick(&Err("EPERM".into()), &features, &missing);
        assert_eq!(mode, "none");
        assert!(why.contains("EPERM"), "{why}");
        // Without an image: root-mapped, or emulation alone.
        assert_eq!(pick_host(&Ok(()), &features).0, "root-mapped");
        assert_eq!(pick_host(&Err("EPERM".into()), &features).0, "none");
    }
}
