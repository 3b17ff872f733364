//! Which user namespace the workload gets, in Apptainer's order of
//! preference: subordinate ids (the kernel stores owners itself), the user
//! alone mapped to root, emulation alone.

use std::path::Path;

use fr_emulator::ids::Range;
use fr_emulator::IdMap;

use crate::check::{self, Helper, SubIds};
use crate::error::Error;
use crate::options::Userns;

/// The mode one `fr exec` runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 0 is the user, 1.. the user's subordinate ranges, by `newuidmap`.
    Subuid(Subordinates),
    /// 0 is the user; no other id is mapped.
    RootMapped,
    /// No user namespace: emulation alone.
    None,
}

/// The user's subordinate ranges, in the order `/etc/subuid` and
/// `/etc/subgid` list them, and the helpers that map them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subordinates {
    pub uids: Vec<Range>,
    pub gids: Vec<Range>,
    pub newuidmap: std::path::PathBuf,
    pub newgidmap: std::path::PathBuf,
}

impl Subordinates {
    fn count(ranges: &[Range]) -> u64 {
        ranges.iter().map(|r| u64::from(r.count)).sum()
    }

    /// How many ids beyond 0 the namespace maps, uids and gids.
    pub fn counts(&self) -> (u64, u64) {
        (Self::count(&self.uids), Self::count(&self.gids))
    }
}

/// The ranges of `ids` as the kernel can map them: in u32, below the
/// invalid id, at most 339 after the user's own line (the kernel's 340).
fn usable(ids: &SubIds) -> Vec<Range> {
    let mut out = Vec::new();
    let mut next = 1u64;
    for r in &ids.ranges {
        let fits = r.count > 0
            && r.start + r.count <= u64::from(u32::MAX)
            && next + r.count <= u64::from(u32::MAX);
        if fits && out.len() < 339 {
            out.push(Range { start: r.start as u32, count: r.count as u32 });
            next += r.count;
        }
    }
    out
}

/// The invoking user's name, as `/etc/passwd` under `root` gives it.
fn user(root: &Path, uid: u32) -> Option<String> {
    check::user_name(root, uid)
}

/// How fr translates host ids for this user, in every mode and command:
/// the user's subordinate ranges are included when the files give them, so
/// that a tree a subuid-mode session chowned shows the same owners in
/// every mode and in `fr export`.
pub fn id_map(root: &Path) -> IdMap {
    let (uid, gid) = (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
    let name = user(root, uid);
    let uids = usable(&check::subids(root, "etc/subuid", name.as_deref(), uid));
    let gids = usable(&check::subids(root, "etc/subgid", name.as_deref(), uid));
    IdMap::with_subordinates(uid, gid, &uids, &gids)
}

/// How ids show to a supervisor that has joined the subuid namespace:
/// the kernel already translates them, so the map is the identity over
/// 0..=N (and an id the namespace cannot map reads as the overflow id).
pub fn namespace_view(subs: &Subordinates) -> IdMap {
    let (u, g) = subs.counts();
    let all = |n: u64| [Range { start: 1, count: n.min(u64::from(u32::MAX - 1)) as u32 }];
    IdMap::with_subordinates(0, 0, &all(u), &all(g))
}

/// Whether subuid mode can run here; the ranges and helpers if so, or why
/// not.
pub fn subordinates(root: &Path) -> Result<Subordinates, String> {
    let uid = rustix::process::getuid().as_raw();
    let name = user(root, uid);
    let who = name.clone().unwrap_or_else(|| format!("uid {uid}"));
    let mut found = Vec::new();
    for rel in ["etc/subuid", "etc/subgid"] {
        let ids = check::subids(root, rel, name.as_deref(), uid);
        let ranges = usable(&ids);
        if !ids.exists {
            return Err(format!("/{rel} does not exist"));
        }
        if ranges.is_empty() {
            return Err(format!("/{rel} gives {who} no range"));
        }
        found.push(ranges);
    }
    let helper = |name: &str| -> Result<Helper, String> {
        let h = check::helper(root, name)
            .ok_or_else(|| format!("{name} is not installed (it is in Debian's uidmap package)"))?;
        if !h.privileged() {
            return Err(format!(
                "{} is neither setuid root nor has file capabilities",
                h.path.display()
            ));
        }
        Ok(h)
    };
    let newuidmap = helper("newuidmap")?.path;
    let newgidmap = helper("newgidmap")?.path;
    let gids = found.pop().unwrap_or_default();
    let uids = found.pop().unwrap_or_default();
    Ok(Subordinates { uids, gids, newuidmap, newgidmap })
}

/// The mode `asked` resolves to before any namespace is tried, and the
/// INFO line that names it. Falling back from a root-mapped namespace the
/// kernel refuses to emulation alone happens later, when the clone fails.
pub fn choose(
    asked: Userns,
    fakeroot: bool,
    image: bool,
    root: &Path,
) -> Result<(Mode, String), Error> {
    match asked {
        Userns::None => {
            Ok((Mode::None, "emulation alone, no user namespace (--userns=none)".into()))
        }
        Userns::RootMapped => {
            Ok((Mode::RootMapped, "root-mapped user namespace (--userns=root-mapped)".into()))
        }
        Userns::Subuid if !fakeroot => Err(Error::Mode(
            "--userns=subuid maps subordinate ids for fake root: it needs --fakeroot".into(),
        )),
        Userns::Subuid => match subordinates(root) {
            Ok(subs) => {
                let why = format!("subuid mode (--userns=subuid): {}", describe(&subs));
                Ok((Mode::Subuid(subs), why))
            }
            Err(why) => Err(Error::Mode(format!("--userns=subuid: {why}"))),
        },
        Userns::Auto if !fakeroot => {
            Ok((Mode::RootMapped, "user namespace mapping the user to itself".into()))
        }
        Userns::Auto if !image => Ok((
            Mode::RootMapped,
            "root-mapped mode: without IMAGE the host tree's files stay yours, as with \
             fakeroot (--userns=subuid would give chowned files to subordinate ids)"
                .into(),
        )),
        Userns::Auto => match subordinates(root) {
            Ok(_) if check::probe_userns().is_err() => {
                Ok((Mode::RootMapped, "user namespaces are refused".into()))
            }
            Ok(subs) => {
                let why = format!("subuid mode: {}", describe(&subs));
                Ok((Mode::Subuid(subs), why))
            }
            Err(why) => {
                Ok((Mode::RootMapped, format!("root-mapped mode, not subuid mode because {why}")))
            }
        },
    }
}

fn describe(subs: &Subordinates) -> String {
    let (u, g) = subs.counts();
    format!(
        "{u} subordinate uids and {g} gids from /etc/subuid and /etc/subgid, mapped by {}",
        subs.newuidmap.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::check::tests::tree;

    #[test]
    fn subuid_mode_names_what_is_missing() {
        let uid = rustix::process::getuid().as_raw();
        let passwd = format!("me:x:{uid}:{uid}::/:/bin/sh\n");
        let none =
            tree("mode-none", &[("etc/passwd", &passwd), ("etc/subuid", "me:100000:65536\n")]);
        let err = subordinates(&none).unwrap_err();
        assert!(err.contains("/etc/subgid does not exist"), "{err}");
        let no_range = tree(
            "mode-norange",
            &[
                ("etc/passwd", &passwd),
                ("etc/subuid", "other:100000:65536\n"),
                ("etc/subgid", "me:100000:65536\n"),
            ],
        );
        assert_eq!(subordinates(&no_range).unwrap_err(), "/etc/subuid gives me no range");
        let no_helper = tree(
            "mode-nohelper",
            &[
                ("etc/passwd", &passwd),
                ("etc/subuid", "me:100000:65536\nme:300000:10\n"),
                ("etc/subgid", &format!("{uid}:100000:65536\n")),
            ],
        );
        let err = subordinates(&no_helper).unwrap_err();
        assert!(err.starts_with("newuidmap is not installed"), "{err}");
        // Auto falls back to root-mapped and says why.
        let (mode, why) = choose(Userns::Auto, true, true, &no_helper).unwrap();
        assert_eq!(mode, Mode::RootMapped);
        assert!(why.contains("not subuid mode because newuidmap is not installed"), "{why}");
        // A forced subuid mode fails instead.
        let err = choose(Userns::Subuid, true, true, &no_helper).unwrap_err().to_string();
        assert!(err.contains("--userns=subuid: newuidmap is not installed"), "{err}");
        // Both lines of the user count, by name or by uid.
        let map = id_map(&no_helper);
        assert_eq!(map.uid_inside(300_000), 65537);
        assert_eq!(map.gid_inside(100_000), 1);
        for root in [none, no_range, no_helper] {
            std::fs::remove_dir_all(root).unwrap();
        }
    }

    #[test]
    fn ranges_the_kernel_cannot_map_are_left_out() {
        let ids = SubIds {
            ranges: vec![
                check::Range { start: 100_000, count: 65536 },
                check::Range { start: u64::from(u32::MAX) - 5, count: 10 },
                check::Range { start: 1_000_000, count: 0 },
            ],
            ..SubIds::default()
        };
        assert_eq!(usable(&ids), vec![Range { start: 100_000, count: 65536 }]);
    }
}
