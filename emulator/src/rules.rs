//! The kernel's rules for a change, applied to a fake view by fake
//! credentials. Each function takes the attributes the workload currently
//! sees and the caller's credentials, and returns what the inode would hold
//! after the call, or why the call is refused. They encode Linux behaviour
//! and cite where it lives.

use crate::acl::Acl;
use crate::attrs::{Attrs, S_ISGID, S_ISUID, S_IXGRP};
use crate::creds::{Creds, Refused};

/// `CAP_CHOWN`, `CAP_FOWNER`, `CAP_FSETID`, `CAP_MKNOD`.
pub const CAP_CHOWN: u32 = 0;
pub const CAP_FOWNER: u32 = 3;
pub const CAP_FSETID: u32 = 4;
pub const CAP_MKNOD: u32 = 27;

/// `kernel/groups.c: in_group_p()`.
fn in_group(c: &Creds, gid: u32) -> bool {
    c.fsgid == gid || c.groups.binary_search(&gid).is_ok()
}

/// `fs/inode.c: in_group_or_capable()`.
pub fn in_group_or_capable(c: &Creds, gid: u32) -> bool {
    in_group(c, gid) || c.capable(CAP_FSETID)
}

/// `fs/attr.c: chown_ok()`: the owner may "change" the owner to itself;
/// otherwise `CAP_CHOWN` is needed.
fn chown_ok(cur: &Attrs, uid: u32, c: &Creds) -> bool {
    (cur.uid == c.fsuid && uid == cur.uid) || c.capable(CAP_CHOWN)
}

/// `fs/attr.c: chgrp_ok()`: the owner may pick its own groups.
fn chgrp_ok(cur: &Attrs, gid: u32, c: &Creds) -> bool {
    (cur.uid == c.fsuid && (gid == cur.gid || in_group(c, gid))) || c.capable(CAP_CHOWN)
}

/// `fs/namei.c: inode_owner_or_capable()`.
fn owner_or_capable(cur: &Attrs, c: &Creds) -> bool {
    cur.uid == c.fsuid || c.capable(CAP_FOWNER)
}

/// `chown(2)`: new owner and group (`None` for the `-1` that leaves one
/// unchanged) and the set-id bits the kernel drops.
///
/// `fs/open.c: chown_common()` asks to kill the set-user-id bit of every
/// non-directory, whether or not an id changes, and set-group-id when
/// group-execute is set too, or when the caller is neither in the file's
/// group nor has `CAP_FSETID` (`fs/attr.c: setattr_should_drop_sgid()`).
/// Killing a bit is a mode change, which only the owner or `CAP_FOWNER`
/// may make (`setattr_prepare()`), and which also drops set-group-id when
/// the caller is outside the *new* group without `CAP_FSETID`.
/// Directories keep both bits.
pub fn chown(cur: Attrs, uid: Option<u32>, gid: Option<u32>, c: &Creds) -> Result<Attrs, Refused> {
    if uid.is_some_and(|u| !chown_ok(&cur, u, c)) || gid.is_some_and(|g| !chgrp_ok(&cur, g, c)) {
        return Err(Refused::Perm);
    }
    let mut mode = cur.mode;
    if !cur.is_dir() {
        mode &= !S_ISUID;
        if mode & S_ISGID != 0 && (mode & S_IXGRP != 0 || !in_group_or_capable(c, cur.gid)) {
            mode &= !S_ISGID;
        }
    }
    if mode != cur.mode && !owner_or_capable(&cur, c) {
        return Err(Refused::Perm);
    }
    if mode != cur.mode && !in_group_or_capable(c, gid.unwrap_or(cur.gid)) {
        mode &= !S_ISGID;
    }
    Ok(Attrs { mode, uid: uid.unwrap_or(cur.uid), gid: gid.unwrap_or(cur.gid), ..cur })
}

/// `chmod(2)` (`fs/open.c: chmod_common()`): the owner or `CAP_FOWNER`
/// sets the twelve permission bits; set-group-id is dropped for a caller
/// outside the file's group without `CAP_FSETID` (`setattr_prepare()`).
pub fn chmod(cur: Attrs, perms: u32, c: &Creds) -> Result<Attrs, Refused> {
    if !owner_or_capable(&cur, c) {
        return Err(Refused::Perm);
    }
    let mut perms = perms & 0o7777;
    if !in_group_or_capable(c, cur.gid) {
        perms &= !S_ISGID;
    }
    Ok(cur.with_perms(perms))
}

/// `MAY_EXEC`, `MAY_WRITE`, `MAY_READ`.
pub const MAY_EXEC: u32 = 1;
pub const MAY_WRITE: u32 = 2;
pub const MAY_READ: u32 = 4;
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_DAC_READ_SEARCH: u32 = 2;

/// `fs/namei.c: generic_permission()` for a caller with credentials `c`
/// on a file whose access ACL, if it has one, is `acl` (the supervisor
/// passes it: `InodeTable::access_acl`):
/// `acl_permission_check()` gives the owner the owner's bits; anyone else
/// gets what the ACL grants when there is one and the group bits are not
/// all clear (`check_acl()`, [`Acl::permits`]), else the group or other
/// bits. Then `CAP_DAC_READ_SEARCH` (reading, and searching directories)
/// and `CAP_DAC_OVERRIDE` (everything but executing a file with no
/// execute bit).
pub fn permitted_with_acl(view: &Attrs, acl: Option<&Acl>, mask: u32, c: &Creds) -> bool {
    let mode = view.mode;
    let want = mask & 0o7;
    let granted = if c.fsuid == view.uid {
        want & !(mode >> 6) == 0
    } else if let Some(acl) = acl.filter(|_| mode & 0o070 != 0) {
        acl.permits(view.uid, view.gid, want, c.fsuid, |gid| in_group(c, gid))
    } else {
        let bits = if in_group(c, view.gid) { mode >> 3 } else { mode };
        want & !bits == 0
    };
    if granted {
        return true;
    }
    if view.is_dir() {
        return (mask & MAY_WRITE == 0 && c.capable(CAP_DAC_READ_SEARCH))
            || c.capable(CAP_DAC_OVERRIDE);
    }
    if mask == MAY_READ && c.capable(CAP_DAC_READ_SEARCH) {
        return true;
    }
    (mask & MAY_EXEC == 0 || mode & 0o111 != 0) && c.capable(CAP_DAC_OVERRIDE)
}

/// `fs/namei.c: may_create()`: writing a new name into `dir`, whose access
/// ACL is `acl`, needs write and search permission there (`EACCES`).
pub fn may_create_with_acl(dir: &Attrs, acl: Option<&Acl>, c: &Creds) -> Result<(), Refused> {
    if permitted_with_acl(dir, acl, MAY_WRITE | MAY_EXEC, c) {
        Ok(())
    } else {
        Err(Refused::Access)
    }
}

/// `fs/inode.c: mode_strip_sgid()`, the first step of
/// `vfs_prepare_mode()`: a set-group-id request for a group-executable
/// non-directory in a set-group-id directory is dropped for a caller
/// outside the directory's group without `CAP_FSETID`. It looks at the
/// requested bits, before the umask or a default ACL take group-execute
/// away (checked on 6.18: `open(02770)` with umask `010` gives `0760`).
pub fn strip_sgid(dir: &Attrs, kind: u32, perms: u32, c: &Creds) -> u32 {
    if kind != crate::attrs::S_IFDIR
        && dir.mode & S_ISGID != 0
        && perms & (S_ISGID | S_IXGRP) == S_ISGID | S_IXGRP
        && !in_group_or_capable(c, dir.gid)
    {
        perms & !S_ISGID
    } else {
        perms
    }
}

/// The attributes of a new file of type `kind` made by `c` in `dir` with
/// the permission bits `perms` (set-group-id already stripped by
/// [`strip_sgid`], umask or default ACL already applied), as
/// `fs/inode.c: inode_init_owner()` sets them: the caller's fsuid, and the
/// caller's fsgid, or the directory's group when the directory is
/// set-group-id (new directories then inherit the bit).
pub fn new_inode(dir: &Attrs, kind: u32, perms: u32, c: &Creds) -> Attrs {
    let mut mode = kind | (perms & 0o7777);
    let gid = if dir.mode & S_ISGID != 0 {
        if kind == crate::attrs::S_IFDIR {
            mode |= S_ISGID;
        }
        dir.gid
    } else {
        c.fsgid
    };
    Attrs { mode, uid: c.fsuid, gid, rdev_major: 0, rdev_minor: 0 }
}

/// `fs/namei.c: may_delete()`: removing `victim` from `dir`, whose access
/// ACL is `acl`, needs write and search permission on `dir` (`EACCES`),
/// and in a sticky directory the caller must own the file or the
/// directory, or have `CAP_FOWNER` (`EPERM`, `check_sticky()`).
pub fn may_delete_with_acl(
    dir: &Attrs,
    acl: Option<&Acl>,
    victim: &Attrs,
    c: &Creds,
) -> Result<(), Refused> {
    if !permitted_with_acl(dir, acl, MAY_WRITE | MAY_EXEC, c) {
        return Err(Refused::Access);
    }
    let sticky = dir.mode & crate::attrs::S_ISVTX != 0;
    if sticky && victim.uid != c.fsuid && dir.uid != c.fsuid && !c.capable(CAP_FOWNER) {
        return Err(Refused::Perm);
    }
    Ok(())
}

/// `fs/namei.c: vfs_mknod()`: character and block devices need `CAP_MKNOD`.
pub fn may_mknod_device(c: &Creds) -> Result<(), Refused> {
    if c.capable(CAP_MKNOD) {
        Ok(())
    } else {
        Err(Refused::Perm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::{S_IFDIR, S_IFLNK, S_IFREG};
    use crate::creds::CAP_FULL;

    fn file(mode: u32) -> Attrs {
        Attrs { mode, uid: 0, gid: 0, rdev_major: 0, rdev_minor: 0 }
    }

    fn root() -> Creds {
        Creds::root()
    }

    /// The rules for a file with no access ACL.
    fn permitted(view: &Attrs, mask: u32, c: &Creds) -> bool {
        permitted_with_acl(view, None, mask, c)
    }

    fn may_create(dir: &Attrs, c: &Creds) -> Result<(), Refused> {
        may_create_with_acl(dir, None, c)
    }

    fn may_delete(dir: &Attrs, victim: &Attrs, c: &Creds) -> Result<(), Refused> {
        may_delete_with_acl(dir, None, victim, c)
    }

    fn user(uid: u32, gid: u32) -> Creds {
        let mut c = Creds::root();
        c.setgroups(vec![gid]).unwrap();
        c.setresgid(gid, gid, gid).unwrap();
        c.setresuid(uid, uid, uid).unwrap();
        c
    }

    #[test]
    fn chown_sets_ids_and_minus_one_keeps_them() {
        let a = chown(file(S_IFREG | 0o644), Some(123), Some(456), &root()).unwrap();
        assert_eq!((a.uid, a.gid), (123, 456));
        let b = chown(a, None, Some(7), &root()).unwrap();
        assert_eq!((b.uid, b.gid), (123, 7));
        let c = chown(b, None, None, &root()).unwrap();
        assert_eq!((c.uid, c.gid), (123, 7));
    }

    #[test]
    fn chown_drops_setuid_of_files_even_without_a_change() {
        assert_eq!(chown(file(S_IFREG | 0o4755), None, None, &root()).unwrap().perms(), 0o755);
        assert_eq!(
            chown(file(S_IFREG | 0o4755), Some(0), Some(0), &root()).unwrap().perms(),
            0o755
        );
    }

    #[test]
    fn chown_drops_setgid_only_with_group_execute_for_root() {
        assert_eq!(chown(file(S_IFREG | 0o2755), Some(1), None, &root()).unwrap().perms(), 0o755);
        assert_eq!(chown(file(S_IFREG | 0o2745), Some(1), None, &root()).unwrap().perms(), 0o2745);
        assert_eq!(chown(file(S_IFREG | 0o6755), Some(1), None, &root()).unwrap().perms(), 0o755);
    }

    #[test]
    fn chown_that_kills_set_user_id_checks_set_group_id_against_the_new_group() {
        // Root without CAP_FSETID, in group 0 only (checked on Linux 6.18
        // with `capsh --drop=cap_fsetid`).
        let mut c = root();
        c.capset(CAP_FULL & !(1 << CAP_FSETID), CAP_FULL, 0).unwrap();
        let a = chown(file(S_IFREG | 0o6745), None, Some(500), &c).unwrap();
        assert_eq!((a.gid, a.perms()), (500, 0o745));
        // No bit killed, no mode change: set-group-id stays.
        assert_eq!(chown(file(S_IFREG | 0o2745), None, Some(500), &c).unwrap().perms(), 0o2745);
        assert_eq!(chown(file(S_IFREG | 0o6745), None, Some(0), &c).unwrap().perms(), 0o2745);
        assert_eq!(
            chown(file(S_IFREG | 0o6745), None, Some(500), &root()).unwrap().perms(),
            0o2745
        );
    }

    #[test]
    fn chown_keeps_set_id_bits_of_directories_and_symlink_modes() {
        assert_eq!(
            chown(file(S_IFDIR | 0o6775), Some(1), Some(2), &root()).unwrap().perms(),
            0o6775
        );
        assert_eq!(chown(file(S_IFREG | 0o1755), Some(1), None, &root()).unwrap().perms(), 0o1755);
        assert_eq!(chown(file(S_IFLNK | 0o777), Some(1), None, &root()).unwrap().perms(), 0o777);
    }

    #[test]
    fn a_user_may_only_give_its_file_to_itself_and_its_groups() {
        let u = user(100, 50);
        let mine = Attrs { uid: 100, gid: 50, ..file(S_IFREG | 0o644) };
        assert_eq!(chown(mine, Some(0), None, &u), Err(Refused::Perm));
        assert_eq!(chown(mine, Some(100), Some(50), &u).map(|a| a.uid), Ok(100));
        assert_eq!(chown(mine, None, Some(51), &u), Err(Refused::Perm));
        assert_eq!(chown(file(S_IFREG | 0o644), None, Some(50), &u), Err(Refused::Perm));
        // A set-group-id file of a group the owner left loses the bit.
        let sgid = Attrs { uid: 100, gid: 7, ..file(S_IFREG | 0o2745) };
        assert_eq!(chown(sgid, None, None, &u).unwrap().perms(), 0o745);
    }

    #[test]
    fn chmod_by_root_sets_all_twelve_bits_and_by_others_only_their_own() {
        let a = chmod(file(S_IFDIR | 0o755), 0o177_777, &root()).unwrap();
        assert!(a.is_dir());
        assert_eq!(a.perms(), 0o7777);
        let u = user(100, 50);
        assert_eq!(chmod(file(S_IFREG | 0o644), 0o600, &u), Err(Refused::Perm));
        let theirs = Attrs { uid: 100, gid: 9, ..file(S_IFREG | 0o644) };
        assert_eq!(chmod(theirs, 0o2755, &u).unwrap().perms(), 0o755);
    }

    #[test]
    fn directory_permissions_for_users_and_root() {
        let u = user(100, 50);
        let rootdir = file(S_IFDIR | 0o755);
        assert_eq!(may_create(&rootdir, &root()), Ok(()));
        assert_eq!(may_create(&rootdir, &u), Err(Refused::Access));
        let shared = Attrs { gid: 50, ..file(S_IFDIR | 0o775) };
        assert_eq!(may_create(&shared, &u), Ok(()));
        // Root may not execute a file with no execute bit at all.
        assert!(!permitted(&file(S_IFREG | 0o644), MAY_EXEC, &root()));
        assert!(permitted(&file(S_IFREG | 0o100), MAY_EXEC, &root()));
        assert!(permitted(&file(S_IFREG), MAY_READ | MAY_WRITE, &root()), "mode 000");
    }

    #[test]
    fn a_directorys_access_acl_decides_for_all_but_its_owner() {
        // K10: check_acl() (Linux 6.18: uid 1001, named rwx in the ACL of
        // root's 0750 directory with mask rwx, creates in it).
        use crate::acl::{Entry, GROUP_OBJ, MASK, OTHER, USER, USER_OBJ};
        let e = |tag, perm, id| Entry { tag, perm, id };
        let acl = Acl(vec![
            e(USER_OBJ, 7, u32::MAX),
            e(USER, 7, 100),
            e(USER, 0, 101),
            e(GROUP_OBJ, 5, u32::MAX),
            e(MASK, 7, u32::MAX),
            e(OTHER, 5, u32::MAX),
        ]);
        let dir = file(S_IFDIR | 0o775);
        assert_eq!(may_create_with_acl(&dir, Some(&acl), &user(100, 50)), Ok(()));
        assert_eq!(may_create(&dir, &user(100, 50)), Err(Refused::Access));
        // A named user with nothing gets nothing, not other's r-x.
        assert!(!permitted_with_acl(&dir, Some(&acl), MAY_EXEC, &user(101, 50)));
        // The owner has the owner's bits, whatever the ACL says.
        let mine = Attrs { uid: 101, ..dir };
        assert!(permitted_with_acl(&mine, Some(&acl), MAY_WRITE, &user(101, 50)));
        // With no group bits the ACL is not read.
        let closed = file(S_IFDIR | 0o705);
        assert_eq!(may_create_with_acl(&closed, Some(&acl), &user(100, 50)), Err(Refused::Access));
        let tmp = file(S_IFDIR | 0o1775);
        let theirs = Attrs { uid: 7, ..file(S_IFREG | 0o644) };
        assert_eq!(
            may_delete_with_acl(&tmp, Some(&acl), &theirs, &user(100, 50)),
            Err(Refused::Perm)
        );
        assert_eq!(may_delete_with_acl(&dir, Some(&acl), &theirs, &user(100, 50)), Ok(()));
        assert_eq!(may_delete(&dir, &theirs, &user(100, 50)), Err(Refused::Access));
    }

    #[test]
    fn new_files_belong_to_the_fs_ids_or_the_setgid_directory() {
        let u = user(100, 50);
        let plain = file(S_IFDIR | 0o755);
        assert_eq!(
            new_inode(&plain, S_IFREG, 0o644, &u),
            Attrs { uid: 100, gid: 50, ..file(S_IFREG | 0o644) }
        );
        let shared = Attrs { gid: 7, ..file(S_IFDIR | 0o2775) };
        let d = new_inode(&shared, S_IFDIR, 0o755, &u);
        assert_eq!((d.uid, d.gid, d.perms()), (100, 7, 0o2755));
        let f = new_inode(&shared, S_IFREG, strip_sgid(&shared, S_IFREG, 0o2755, &u), &u);
        assert_eq!((f.gid, f.perms()), (7, 0o755), "not in group 7: set-group-id dropped");
        let r = new_inode(&shared, S_IFREG, strip_sgid(&shared, S_IFREG, 0o2755, &root()), &root());
        assert_eq!((r.uid, r.gid, r.perms()), (0, 7, 0o2755));
    }

    #[test]
    fn set_group_id_is_stripped_from_the_request_not_the_masked_mode() {
        // K8: vfs_prepare_mode() strips before the umask (Linux 6.18:
        // open(02770) with umask 010 by a caller outside the group: 0760).
        let u = user(100, 50);
        let shared = Attrs { gid: 7, ..file(S_IFDIR | 0o2777) };
        assert_eq!(strip_sgid(&shared, S_IFREG, 0o2770, &u) & !0o010, 0o760);
        assert_eq!(strip_sgid(&shared, S_IFREG, 0o2760, &u), 0o2760, "no group-execute asked");
        assert_eq!(strip_sgid(&shared, S_IFDIR, 0o2770, &u), 0o2770, "directories keep it");
        assert_eq!(strip_sgid(&file(S_IFDIR | 0o777), S_IFREG, 0o2770, &u), 0o2770);
        assert_eq!(strip_sgid(&shared, S_IFREG, 0o2770, &root()), 0o2770);
    }

    #[test]
    fn removing_from_a_sticky_directory_needs_ownership() {
        let u = user(100, 50);
        let tmp = file(S_IFDIR | 0o1777);
        let theirs = Attrs { uid: 7, ..file(S_IFREG | 0o644) };
        let mine = Attrs { uid: 100, ..file(S_IFREG | 0o644) };
        assert_eq!(may_delete(&tmp, &theirs, &u), Err(Refused::Perm));
        assert_eq!(may_delete(&tmp, &mine, &u), Ok(()));
        assert_eq!(may_delete(&tmp, &theirs, &root()), Ok(()));
        assert_eq!(may_delete(&file(S_IFDIR | 0o755), &mine, &u), Err(Refused::Access));
    }

    #[test]
    fn only_capable_callers_make_devices() {
        assert_eq!(may_mknod_device(&root()), Ok(()));
        assert_eq!(may_mknod_device(&user(1, 1)), Err(Refused::Perm));
    }
}
