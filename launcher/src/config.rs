//! `fr config fakeroot --add|--remove|--enable|--disable USER`, for root:
//! the user's subordinate id ranges in `/etc/subuid` and `/etc/subgid`, as
//! `apptainer config fakeroot` keeps them. A new range is the lowest free
//! block of 65,536 ids from 100,000 up (shadow's `SUB_UID_MIN` and
//! `SUB_UID_COUNT` defaults) that overlaps no entry, disabled ones
//! included; a disabled entry is kept with a leading `!`. Every other
//! line, comments included, stays byte for byte. Each file is edited under
//! shadow's lock (`FILE.lock`, made by `link(2)`) and replaced atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

/// What to do to a user's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Add,
    Remove,
    Enable,
    Disable,
}

pub const FIRST: u64 = 100_000;
pub const COUNT: u64 = 65_536;
/// shadow's `SUB_UID_MAX` default.
pub const LAST: u64 = 600_100_000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("fr config fakeroot changes /etc/subuid and /etc/subgid: run it as root")]
    NotRoot,
    #[error(
        "{file}: {user} already has a range (line {line}); --remove it first to get a new one"
    )]
    Exists { file: String, user: String, line: usize },
    #[error("{file}: {user} has no entry")]
    Missing { file: String, user: String },
    #[error("{file}: no free range of {COUNT} ids between {FIRST} and {LAST}")]
    Full { file: String },
    #[error("there is no user {0} in /etc/passwd")]
    NoUser(String),
    #[error("{file}: {why}")]
    Io { file: String, why: String },
    #[error("{file} is locked by another program ({lock} exists); try again, or remove it if no tool is running")]
    Locked { file: String, lock: String },
}

/// The owner and range of an entry line, `!` (disabled) or not.
fn entry(line: &str) -> Option<(bool, &str, u64, u64)> {
    match crate::subid::line(line) {
        crate::subid::Line::Entry(e) => Some((e.disabled, e.owner, e.start, e.count)),
        _ => None,
    }
}

/// `text` (a whole subuid or subgid file) with `action` done for `user`
/// (its name; `uid` matches numeric entries too).
pub fn edit(
    text: &str,
    file: &str,
    action: Action,
    user: &str,
    uid: u32,
) -> Result<String, ConfigError> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let uid = uid.to_string();
    let mine =
        |line: &str| entry(line).is_some_and(|(_, owner, _, _)| owner == user || owner == uid);
    let missing = || ConfigError::Missing { file: file.into(), user: user.into() };
    match action {
        Action::Add => {
            if let Some(n) = lines.iter().position(|l| mine(l)) {
                return Err(ConfigError::Exists {
                    file: file.into(),
                    user: user.into(),
                    line: n + 1,
                });
            }
            let mut taken: Vec<(u64, u64)> =
                lines.iter().filter_map(|l| entry(l)).map(|(_, _, s, c)| (s, c)).collect();
            taken.sort();
            let mut start = FIRST;
            for (s, c) in taken {
                if start + COUNT <= s {
                    break;
                }
                start = start.max(s.saturating_add(c));
            }
            if start + COUNT > LAST {
                return Err(ConfigError::Full { file: file.into() });
            }
            let mut out = text.to_string();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!("{user}:{start}:{COUNT}\n"));
            Ok(out)
        }
        Action::Remove => {
            if !lines.iter().any(|l| mine(l)) {
                return Err(missing());
            }
            Ok(lines.into_iter().filter(|l| !mine(l)).collect())
        }
        Action::Enable | Action::Disable => {
            if !lines.iter().any(|l| mine(l)) {
                return Err(missing());
            }
            Ok(lines
                .into_iter()
                .map(|l| match (mine(l), action, l.strip_prefix('!')) {
                    (true, Action::Enable, Some(rest)) => rest.to_string(),
                    (true, Action::Disable, None) => format!("!{l}"),
                    _ => l.to_string(),
                })
                .collect())
        }
    }
}

fn io(file: &Path, e: impl std::fmt::Display) -> ConfigError {
    ConfigError::Io { file: file.display().to_string(), why: e.to_string() }
}

/// shadow's lock of `file`: `FILE.PID` linked to `FILE.lock`.
struct Lock(PathBuf);

impl Lock {
    fn take(file: &Path) -> Result<Lock, ConfigError> {
        let lock = PathBuf::from(format!("{}.lock", file.display()));
        let tmp = PathBuf::from(format!("{}.{}", file.display(), std::process::id()));
        std::fs::write(&tmp, format!("{}", std::process::id())).map_err(|e| io(&tmp, e))?;
        let linked = std::fs::hard_link(&tmp, &lock);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(Lock(lock)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(ConfigError::Locked {
                file: file.display().to_string(),
                lock: lock.display().to_string(),
            }),
            Err(e) => Err(io(&lock, e)),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Does `action` for `user` in `file`, under its lock, replacing it
/// atomically with the same mode and owner.
pub fn apply(file: &Path, action: Action, user: &str, uid: u32) -> Result<(), ConfigError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let _lock = Lock::take(file)?;
    let (text, meta) = match std::fs::read_to_string(file) {
        Ok(t) => (t, std::fs::metadata(file).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && action == Action::Add => {
            (String::new(), None)
        }
        Err(e) => return Err(io(file, e)),
    };
    let new = edit(&text, &file.display().to_string(), action, user, uid)?;
    let tmp = PathBuf::from(format!("{}.fr-new", file.display()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(new.as_bytes()).and_then(|()| f.sync_all()).map_err(|e| io(&tmp, e))?;
    let mode = meta.as_ref().map_or(0o644, |m| m.mode() & 0o7777);
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io(&tmp, e))?;
    if let Some(m) = &meta {
        std::os::unix::fs::chown(&tmp, Some(m.uid()), Some(m.gid())).map_err(|e| io(&tmp, e))?;
    }
    std::fs::rename(&tmp, file).map_err(|e| io(file, e))
}

/// `fr config fakeroot`: both files, as root only.
pub fn fakeroot(
    action: Action,
    user: &str,
    subuid: &Path,
    subgid: &Path,
) -> Result<(), ConfigError> {
    if !rustix::process::geteuid().is_root() {
        return Err(ConfigError::NotRoot);
    }
    let uid = match (passwd_uid(user), action) {
        (Some(uid), _) => uid,
        (None, Action::Add) => return Err(ConfigError::NoUser(user.into())),
        // An entry of a user since deleted can still be changed.
        (None, _) => u32::MAX,
    };
    apply(subuid, action, user, uid)?;
    apply(subgid, action, user, uid)
}

/// The host user `user`'s uid, through NSS (`getpwnam_r(3)`), as
/// `newuidmap` resolves it.
fn passwd_uid(user: &str) -> Option<u32> {
    crate::sys::uid_of(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str =
        "# ranges\nalice:100000:65536\n\n!bob:165536:65536\n1005:300000:1000\n# end, no newline";

    #[test]
    fn add_takes_the_lowest_free_range_and_keeps_every_other_byte() {
        let out = edit(FILE, "f", Action::Add, "carol", 1010).unwrap();
        assert_eq!(out, format!("{FILE}\ncarol:231072:65536\n"));
        // The gap before a range is used when it is wide enough.
        let gap = "x:300000:10\n";
        assert_eq!(edit(gap, "f", Action::Add, "y", 1).unwrap(), "x:300000:10\ny:100000:65536\n");
    }

    #[test]
    fn a_user_with_a_range_by_name_or_uid_is_not_added_twice() {
        assert!(matches!(
            edit(FILE, "f", Action::Add, "alice", 1),
            Err(ConfigError::Exists { line: 2, .. })
        ));
        assert!(matches!(
            edit(FILE, "f", Action::Add, "dave", 1005),
            Err(ConfigError::Exists { line: 5, .. })
        ));
        assert!(matches!(
            edit(FILE, "f", Action::Add, "bob", 1),
            Err(ConfigError::Exists { line: 4, .. })
        ));
    }

    #[test]
    fn disable_enable_and_remove_touch_only_the_users_lines() {
        let off = edit(FILE, "f", Action::Disable, "alice", 1).unwrap();
        assert_eq!(off, FILE.replace("alice:", "!alice:"));
        assert_eq!(edit(&off, "f", Action::Enable, "alice", 1).unwrap(), FILE);
        assert_eq!(edit(FILE, "f", Action::Enable, "bob", 1).unwrap(), FILE.replace("!bob", "bob"));
        assert_eq!(
            edit(FILE, "f", Action::Remove, "bob", 1).unwrap(),
            FILE.replace("!bob:165536:65536\n", "")
        );
        assert!(matches!(
            edit(FILE, "f", Action::Remove, "zed", 1),
            Err(ConfigError::Missing { .. })
        ));
    }

    #[test]
    fn a_full_id_space_is_an_error() {
        let full = format!("big:{FIRST}:{}\n", LAST - FIRST);
        assert!(matches!(edit(&full, "f", Action::Add, "u", 1), Err(ConfigError::Full { .. })));
    }
}
