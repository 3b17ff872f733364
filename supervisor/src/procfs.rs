//! Every `/proc` file the supervisor reads, in one place (the magic links it
//! looks up through, `/proc/<tid>/cwd|root|fd/N`, are the resolver's).
//!
//! `/proc/<tid>/status` is read as bytes: its `Name:` line holds whatever
//! bytes the process set with `prctl(PR_SET_NAME)`, unescaped, so the file
//! need not be UTF-8. The fields fr reads are ASCII numbers. A target's
//! files answer for a task that may since have ended and had its number
//! reused: callers check the notification is still valid (`ID_VALID`)
//! after reading, before they rely on what they read.

/// A target's status file.
#[derive(Debug)]
pub struct Status(Vec<u8>);

impl Status {
    pub fn read(tid: i32) -> Option<Status> {
        std::fs::read(format!("/proc/{tid}/status")).ok().map(Status)
    }

    /// The text after `key` (for example `"Tgid:"`) on its line, trimmed.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.0
            .split(|&b| b == b'\n')
            .find_map(|line| line.strip_prefix(key.as_bytes()))
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
    }

    /// The last number of a field like `NSpid:` (the innermost namespace's).
    pub fn last(&self, key: &str) -> Option<i32> {
        self.field(key)?.split_whitespace().last()?.parse().ok()
    }
}

/// A target's umask (`Umask:` in its status, Linux 4.7).
pub fn umask(tid: i32) -> Option<u32> {
    Status::read(tid)?.field("Umask:").and_then(|v| u32::from_str_radix(v, 8).ok())
}

/// The flags of the target's descriptor `fd` (`flags:` in
/// `/proc/<tid>/fdinfo/<fd>`, octal): `None` if the file is not there (no
/// such descriptor), `Some(None)` if it has no readable flags.
pub fn fd_flags(tid: i32, fd: i32) -> Option<Option<u32>> {
    let info = std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}")).ok()?;
    Some(
        info.lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok()),
    )
}

/// Field `n` (1-based, as `proc_pid_stat(5)` counts: 1 is the pid, 3 the
/// state) of `/proc/<tid>/stat`, counted after the command name (field
/// 2), which may hold any byte, spaces and `)` included.
pub fn stat_field(tid: i32, n: usize) -> Option<u64> {
    let stat = std::fs::read(format!("/proc/{tid}/stat")).ok()?;
    let after_comm = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    std::str::from_utf8(after_comm).ok()?.split_whitespace().nth(n.checked_sub(3)?)?.parse().ok()
}

/// The calling process's capability bounding set (`CapBnd:` in
/// `/proc/self/status`).
pub fn own_bounding_set() -> Option<u64> {
    let status = std::fs::read("/proc/self/status").ok()?;
    Status(status).field("CapBnd:").and_then(|v| u64::from_str_radix(v, 16).ok())
}

/// A task's credentials as the kernel holds them, from its status (ids as
/// the reader's user namespace maps them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelCreds {
    /// Real, effective, saved and file system uid.
    pub uids: [u32; 4],
    pub gids: [u32; 4],
    /// Sorted.
    pub groups: Vec<u32>,
    pub effective: u64,
    pub permitted: u64,
}

/// The kernel's credentials of task `tid` (`Uid:`, `Gid:`, `Groups:`,
/// `CapEff:`, `CapPrm:` of its status).
pub fn kernel_creds(tid: i32) -> Option<KernelCreds> {
    let status = Status::read(tid)?;
    let four = |key| -> Option<[u32; 4]> {
        let v: Vec<u32> =
            status.field(key)?.split_whitespace().filter_map(|n| n.parse().ok()).collect();
        v.try_into().ok()
    };
    let cap = |key| status.field(key).and_then(|v| u64::from_str_radix(v, 16).ok());
    let mut groups: Vec<u32> =
        status.field("Groups:")?.split_whitespace().filter_map(|n| n.parse().ok()).collect();
    groups.sort_unstable();
    Some(KernelCreds {
        uids: four("Uid:")?,
        gids: four("Gid:")?,
        groups,
        effective: cap("CapEff:")?,
        permitted: cap("CapPrm:")?,
    })
}

/// Whether the `fs.protected_hardlinks` sysctl is on (the kernel's default
/// when it cannot be read).
pub fn protected_hardlinks() -> bool {
    std::fs::read_to_string("/proc/sys/fs/protected_hardlinks").map_or(true, |v| v.trim() != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_whatever_bytes_the_name_holds() {
        let s = Status(b"Name:\t\xff\xfebad\nUmask:\t0022\nTgid:\t42\nNSpid:\t4242\t7\n".to_vec());
        assert_eq!(s.field("Umask:"), Some("0022"));
        assert_eq!(s.last("Tgid:"), Some(42));
        assert_eq!(s.last("NSpid:"), Some(7));
        assert_eq!(s.field("PPid:"), None);
    }
}
