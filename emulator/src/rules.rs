//! The kernel's rules for real root, applied to a fake view.
//!
//! Each function takes the attributes the workload currently sees and
//! returns what real root would see after the call. They encode Linux
//! behaviour and cite where it lives.

use crate::attrs::{Attrs, S_ISGID, S_ISUID, S_IXGRP};

/// `chown(2)` by real root: new owner and group (`None` for the `-1` that
/// leaves one unchanged) and the set-id bits the kernel drops.
///
/// `fs/open.c: chown_common()` asks to kill the set-user-id bit of every
/// non-directory, whether or not an id changes, and
/// `fs/attr.c: setattr_should_drop_sgid()` drops set-group-id only when
/// group-execute is set too (without it the bit marks mandatory locking,
/// and a caller with `CAP_FSETID` keeps it). Directories keep both.
pub fn chown(cur: Attrs, uid: Option<u32>, gid: Option<u32>) -> Attrs {
    let mut mode = cur.mode;
    if !cur.is_dir() {
        mode &= !S_ISUID;
        if mode & S_ISGID != 0 && mode & S_IXGRP != 0 {
            mode &= !S_ISGID;
        }
    }
    Attrs { mode, uid: uid.unwrap_or(cur.uid), gid: gid.unwrap_or(cur.gid), ..cur }
}

/// `chmod(2)` by real root: the permission bits become `perms & 07777`.
///
/// `fs/attr.c: notify_change()` would clear set-group-id for a caller
/// outside the file's group without `CAP_FSETID`; real root has it.
pub fn chmod(cur: Attrs, perms: u32) -> Attrs {
    cur.with_perms(perms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::{S_IFDIR, S_IFLNK, S_IFREG};

    fn file(mode: u32) -> Attrs {
        Attrs { mode, uid: 0, gid: 0, rdev_major: 0, rdev_minor: 0 }
    }

    #[test]
    fn chown_sets_ids_and_minus_one_keeps_them() {
        let a = chown(file(S_IFREG | 0o644), Some(123), Some(456));
        assert_eq!((a.uid, a.gid), (123, 456));
        let b = chown(a, None, Some(7));
        assert_eq!((b.uid, b.gid), (123, 7));
        let c = chown(b, None, None);
        assert_eq!((c.uid, c.gid), (123, 7));
    }

    #[test]
    fn chown_drops_setuid_of_files_even_without_a_change() {
        assert_eq!(chown(file(S_IFREG | 0o4755), None, None).perms(), 0o755);
        assert_eq!(chown(file(S_IFREG | 0o4755), Some(0), Some(0)).perms(), 0o755);
    }

    #[test]
    fn chown_drops_setgid_only_with_group_execute() {
        assert_eq!(chown(file(S_IFREG | 0o2755), Some(1), None).perms(), 0o755);
        assert_eq!(chown(file(S_IFREG | 0o2745), Some(1), None).perms(), 0o2745);
        assert_eq!(chown(file(S_IFREG | 0o6755), Some(1), None).perms(), 0o755);
    }

    #[test]
    fn chown_keeps_set_id_bits_of_directories() {
        assert_eq!(chown(file(S_IFDIR | 0o6775), Some(1), Some(2)).perms(), 0o6775);
        assert_eq!(chown(file(S_IFDIR | 0o1777), Some(1), Some(2)).perms(), 0o1777);
    }

    #[test]
    fn chown_keeps_sticky_and_symlink_modes() {
        assert_eq!(chown(file(S_IFREG | 0o1755), Some(1), None).perms(), 0o1755);
        assert_eq!(chown(file(S_IFLNK | 0o777), Some(1), None).perms(), 0o777);
    }

    #[test]
    fn chmod_keeps_the_type_and_sets_all_twelve_bits() {
        let a = chmod(file(S_IFDIR | 0o755), 0o7000 | 0o777 | 0o170_000);
        assert!(a.is_dir());
        assert_eq!(a.perms(), 0o7777);
    }
}
