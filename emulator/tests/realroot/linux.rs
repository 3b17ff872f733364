//! A model of the Linux rules real root meets: credentials, ownership,
//! modes, new files, POSIX ACLs, file capabilities and links, on an ext4
//! file system mounted with ACLs (the default), in the initial user
//! namespace, with no LSM but capabilities.
//!
//! Written from the kernel sources cited on each rule (Linux 6.x), not from
//! `fr_emulator`. Where the sources left a doubt the rule was checked as
//! root on a Linux 6.18 ext4 file system (`python3` with `os.setxattr`,
//! `capsh --drop`, `setpriv`); those rules say so.
//!
//! Every operation either fails and changes nothing, or succeeds.

use std::collections::BTreeMap;

use super::ops::{Kind, Name};

pub type Id = u32;

/// Why a call fails, as its errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum E {
    Perm,
    Access,
    Inval,
    Exist,
    NoData,
    NotSup,
    NotEmpty,
}

pub const S_ISUID: u32 = 0o4000;
pub const S_ISGID: u32 = 0o2000;
pub const S_ISVTX: u32 = 0o1000;
const S_IXGRP: u32 = 0o010;

pub const CAP_CHOWN: u32 = 0;
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_FOWNER: u32 = 3;
pub const CAP_FSETID: u32 = 4;
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;
pub const CAP_SETPCAP: u32 = 8;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_MKNOD: u32 = 27;
pub const CAP_SETFCAP: u32 = 31;
/// Capabilities 0 to `CAP_CHECKPOINT_RESTORE` (40).
pub const ALL_CAPS: u64 = (1 << 41) - 1;
/// `include/linux/capability.h: CAP_FS_SET`.
const FS_CAPS: u64 = 1 << CAP_CHOWN
    | 1 << CAP_DAC_OVERRIDE
    | 1 << CAP_DAC_READ_SEARCH
    | 1 << CAP_FOWNER
    | 1 << CAP_FSETID
    | 1 << 9 // CAP_LINUX_IMMUTABLE
    | 1 << CAP_MKNOD
    | 1 << 32; // CAP_MAC_OVERRIDE
const MINUS_ONE: u32 = u32::MAX;

/// One thread's credentials (`struct cred`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cred {
    pub uid: [u32; 4],
    pub gid: [u32; 4],
    pub groups: Vec<u32>,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub bounding: u64,
    pub keep_caps: bool,
}

/// Index into `Cred::uid` and `Cred::gid`: real, effective, saved, fs.
const R: usize = 0;
const EF: usize = 1;
const S: usize = 2;
const FS: usize = 3;

impl Cred {
    /// A root login: every id 0, group 0, every capability.
    pub fn root() -> Self {
        Cred {
            uid: [0; 4],
            gid: [0; 4],
            groups: vec![0],
            effective: ALL_CAPS,
            permitted: ALL_CAPS,
            inheritable: 0,
            bounding: ALL_CAPS,
            keep_caps: false,
        }
    }

    /// `ns_capable()` in the initial namespace: the effective set.
    pub fn capable(&self, cap: u32) -> bool {
        self.effective >> cap & 1 == 1
    }

    pub fn fsuid(&self) -> u32 {
        self.uid[FS]
    }

    /// `kernel/groups.c: in_group_p()`: the fs gid or a supplementary group.
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid[FS] == gid || self.groups.contains(&gid)
    }

    /// `fs/inode.c: in_group_or_capable()`.
    fn in_group_or_fsetid(&self, gid: u32) -> bool {
        self.in_group(gid) || self.capable(CAP_FSETID)
    }

    /// `fs/inode.c: inode_owner_or_capable()`.
    fn owner_or_fowner(&self, f: &Inode) -> bool {
        self.fsuid() == f.uid || self.capable(CAP_FOWNER)
    }

    /// `security/commoncap.c: cap_emulate_setxuid()`, from
    /// `cap_task_fix_setuid()` for the `LSM_SETID_ID`, `_RE`, `_RES` cases.
    fn fix_setxuid(&mut self, old: &Cred) {
        let any_root = |c: &Cred| c.uid[R] == 0 || c.uid[EF] == 0 || c.uid[S] == 0;
        if any_root(old) && !any_root(self) && !old.keep_caps {
            self.permitted = 0;
            self.effective = 0;
        }
        if old.uid[EF] == 0 && self.uid[EF] != 0 {
            self.effective = 0;
        }
        if old.uid[EF] != 0 && self.uid[EF] == 0 {
            self.effective = self.permitted;
        }
    }

    /// `kernel/sys.c: __sys_setuid()`.
    pub fn setuid(&mut self, uid: u32) -> Result<(), E> {
        if uid == MINUS_ONE {
            return Err(E::Inval);
        }
        let old = self.clone();
        if old.capable(CAP_SETUID) {
            self.uid[R] = uid;
            self.uid[S] = uid;
        } else if uid != old.uid[R] && uid != old.uid[S] {
            return Err(E::Perm);
        }
        self.uid[EF] = uid;
        self.uid[FS] = uid;
        self.fix_setxuid(&old);
        Ok(())
    }

    /// `kernel/sys.c: __sys_setreuid()`.
    pub fn setreuid(&mut self, ruid: u32, euid: u32) -> Result<(), E> {
        let old = self.clone();
        let can = old.capable(CAP_SETUID);
        if ruid != MINUS_ONE && ruid != old.uid[R] && ruid != old.uid[EF] && !can {
            return Err(E::Perm);
        }
        if euid != MINUS_ONE && ![old.uid[R], old.uid[EF], old.uid[S]].contains(&euid) && !can {
            return Err(E::Perm);
        }
        if ruid != MINUS_ONE {
            self.uid[R] = ruid;
        }
        if euid != MINUS_ONE {
            self.uid[EF] = euid;
        }
        if ruid != MINUS_ONE || (euid != MINUS_ONE && euid != old.uid[R]) {
            self.uid[S] = self.uid[EF];
        }
        self.uid[FS] = self.uid[EF];
        self.fix_setxuid(&old);
        Ok(())
    }

    /// `kernel/sys.c: __sys_setresuid()`, with its early return when
    /// nothing would change (Linux 6.4).
    pub fn setresuid(&mut self, r: u32, e: u32, s: u32) -> Result<(), E> {
        let old = self.clone();
        let same = |v: u32, cur: u32| v == MINUS_ONE || v == cur;
        if same(r, old.uid[R])
            && (e == MINUS_ONE || (e == old.uid[EF] && e == old.uid[FS]))
            && same(s, old.uid[S])
        {
            return Ok(());
        }
        let new = |v: u32| v != MINUS_ONE && !old.uid[..3].contains(&v);
        if (new(r) || new(e) || new(s)) && !old.capable(CAP_SETUID) {
            return Err(E::Perm);
        }
        for (i, v) in [(R, r), (EF, e), (S, s)] {
            if v != MINUS_ONE {
                self.uid[i] = v;
            }
        }
        self.uid[FS] = self.uid[EF];
        self.fix_setxuid(&old);
        Ok(())
    }

    /// `kernel/sys.c: __sys_setfsuid()`: returns the old fs uid; the
    /// `LSM_SETID_FS` fixup moves the fs capabilities with fs uid 0.
    pub fn setfsuid(&mut self, uid: u32) -> u32 {
        let old = self.uid[FS];
        if uid == MINUS_ONE {
            return old;
        }
        if (self.uid.contains(&uid) || self.capable(CAP_SETUID)) && uid != old {
            self.uid[FS] = uid;
            if old == 0 && uid != 0 {
                self.effective &= !FS_CAPS;
            }
            if old != 0 && uid == 0 {
                self.effective |= self.permitted & FS_CAPS;
            }
        }
        old
    }

    /// `kernel/sys.c: __sys_setgid()`.
    pub fn setgid(&mut self, gid: u32) -> Result<(), E> {
        if gid == MINUS_ONE {
            return Err(E::Inval);
        }
        if self.capable(CAP_SETGID) {
            self.gid = [gid; 4];
        } else if gid == self.gid[R] || gid == self.gid[S] {
            self.gid[EF] = gid;
            self.gid[FS] = gid;
        } else {
            return Err(E::Perm);
        }
        Ok(())
    }

    /// `kernel/sys.c: __sys_setregid()`.
    pub fn setregid(&mut self, rgid: u32, egid: u32) -> Result<(), E> {
        let old = self.clone();
        let can = old.capable(CAP_SETGID);
        if rgid != MINUS_ONE && rgid != old.gid[R] && rgid != old.gid[EF] && !can {
            return Err(E::Perm);
        }
        if egid != MINUS_ONE && ![old.gid[R], old.gid[EF], old.gid[S]].contains(&egid) && !can {
            return Err(E::Perm);
        }
        if rgid != MINUS_ONE {
            self.gid[R] = rgid;
        }
        if egid != MINUS_ONE {
            self.gid[EF] = egid;
        }
        if rgid != MINUS_ONE || (egid != MINUS_ONE && egid != old.gid[R]) {
            self.gid[S] = self.gid[EF];
        }
        self.gid[FS] = self.gid[EF];
        Ok(())
    }

    /// `kernel/sys.c: __sys_setresgid()`.
    pub fn setresgid(&mut self, r: u32, e: u32, s: u32) -> Result<(), E> {
        let old = self.clone();
        let same = |v: u32, cur: u32| v == MINUS_ONE || v == cur;
        if same(r, old.gid[R])
            && (e == MINUS_ONE || (e == old.gid[EF] && e == old.gid[FS]))
            && same(s, old.gid[S])
        {
            return Ok(());
        }
        let new = |v: u32| v != MINUS_ONE && !old.gid[..3].contains(&v);
        if (new(r) || new(e) || new(s)) && !old.capable(CAP_SETGID) {
            return Err(E::Perm);
        }
        for (i, v) in [(R, r), (EF, e), (S, s)] {
            if v != MINUS_ONE {
                self.gid[i] = v;
            }
        }
        self.gid[FS] = self.gid[EF];
        Ok(())
    }

    /// `kernel/sys.c: __sys_setfsgid()`.
    pub fn setfsgid(&mut self, gid: u32) -> u32 {
        let old = self.gid[FS];
        if gid != MINUS_ONE && (self.gid.contains(&gid) || self.capable(CAP_SETGID)) {
            self.gid[FS] = gid;
        }
        old
    }

    /// `kernel/groups.c: setgroups()`: `EPERM` without `CAP_SETGID`; the
    /// kernel keeps the list sorted (`groups_sort()`).
    pub fn setgroups(&mut self, mut groups: Vec<u32>) -> Result<(), E> {
        if !self.capable(CAP_SETGID) {
            return Err(E::Perm);
        }
        groups.sort_unstable();
        self.groups = groups;
        Ok(())
    }

    /// `security/commoncap.c: cap_capset()`.
    pub fn capset(&mut self, e: u64, p: u64, i: u64) -> Result<(), E> {
        let within = |a: u64, b: u64| a & !b == 0;
        if !self.capable(CAP_SETPCAP) && !within(i, self.inheritable | self.permitted) {
            return Err(E::Perm);
        }
        if !within(i, self.inheritable | self.bounding)
            || !within(p, self.permitted)
            || !within(e, p)
        {
            return Err(E::Perm);
        }
        (self.effective, self.permitted, self.inheritable) = (e, p, i);
        Ok(())
    }
}

/// One inode as real root's `stat` and `getxattr` show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inode {
    pub kind: Kind,
    /// The twelve permission bits.
    pub perms: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: (u32, u32),
    /// `security.*`, `trusted.*` and the ACLs, as `getxattr` reads them.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    pub nlink: u32,
}

impl Inode {
    pub fn mode(&self) -> u32 {
        self.kind.bits() | self.perms
    }

    fn acl(&self, name: Name) -> Option<Acl> {
        self.xattrs
            .get(&name.bytes())
            .and_then(|v| Acl::from_xattr(v).expect("a stored ACL parses"))
    }
}

/// A name: the directory it is in, and its inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub dir: Id,
    pub ino: Id,
}

pub const ACL_USER_OBJ: u16 = 0x01;
pub const ACL_USER: u16 = 0x02;
pub const ACL_GROUP_OBJ: u16 = 0x04;
pub const ACL_GROUP: u16 = 0x08;
pub const ACL_MASK: u16 = 0x10;
pub const ACL_OTHER: u16 = 0x20;

/// A POSIX ACL: (tag, perm, id) in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acl(pub Vec<(u16, u16, u32)>);

impl Acl {
    /// `fs/posix_acl.c: posix_acl_from_xattr()`: a short or ragged value
    /// is `EINVAL`, a version other than 2 `EOPNOTSUPP`, a header alone
    /// no ACL at all (`None`: checked on 6.18, it removes the ACL), an
    /// unknown tag or a named entry with id -1 `EINVAL`.
    pub fn from_xattr(v: &[u8]) -> Result<Option<Acl>, E> {
        if v.len() < 4 {
            return Err(E::Inval);
        }
        if u32::from_le_bytes([v[0], v[1], v[2], v[3]]) != 2 {
            return Err(E::NotSup);
        }
        if (v.len() - 4) % 8 != 0 {
            return Err(E::Inval);
        }
        if v.len() == 4 {
            return Ok(None);
        }
        let mut entries = Vec::new();
        for e in v[4..].chunks(8) {
            let tag = u16::from_le_bytes([e[0], e[1]]);
            let perm = u16::from_le_bytes([e[2], e[3]]);
            let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
            let id = match tag {
                ACL_USER_OBJ | ACL_GROUP_OBJ | ACL_MASK | ACL_OTHER => MINUS_ONE,
                ACL_USER | ACL_GROUP if id != MINUS_ONE => id,
                _ => return Err(E::Inval),
            };
            entries.push((tag, perm, id));
        }
        Ok(Some(Acl(entries)))
    }

    /// `posix_acl_to_xattr()`: entries without an id read back with -1.
    pub fn to_xattr(&self) -> Vec<u8> {
        let mut v = 2u32.to_le_bytes().to_vec();
        for &(tag, perm, id) in &self.0 {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&perm.to_le_bytes());
            v.extend_from_slice(&id.to_le_bytes());
        }
        v
    }

    /// `posix_acl_valid()`: a state machine over the tags. Named entries
    /// need not be sorted nor unique (checked on 6.18: both are stored as
    /// given).
    pub fn valid(&self) -> bool {
        #[derive(PartialEq)]
        enum St {
            UserObj,
            User,
            Group,
            Other,
            Done,
        }
        let mut st = St::UserObj;
        let mut needs_mask = false;
        for &(tag, perm, _) in &self.0 {
            if perm & !7 != 0 {
                return false;
            }
            st = match (tag, st) {
                (ACL_USER_OBJ, St::UserObj) => St::User,
                (ACL_USER, St::User) => {
                    needs_mask = true;
                    St::User
                }
                (ACL_GROUP_OBJ, St::User) => St::Group,
                (ACL_GROUP, St::Group) => {
                    needs_mask = true;
                    St::Group
                }
                (ACL_MASK, St::Group) => St::Other,
                (ACL_OTHER, St::Other) => St::Done,
                (ACL_OTHER, St::Group) if !needs_mask => St::Done,
                _ => return false,
            };
        }
        st == St::Done
    }

    /// `posix_acl_equiv_mode()`: the permission bits, and whether the ACL
    /// says no more than they do (no named entry and no mask).
    pub fn equiv_mode(&self) -> (u32, bool) {
        let mut mode = 0;
        let mut equiv = true;
        for &(tag, perm, _) in &self.0 {
            let p = u32::from(perm) & 7;
            match tag {
                ACL_USER_OBJ => mode |= p << 6,
                ACL_GROUP_OBJ => mode |= p << 3,
                ACL_OTHER => mode |= p,
                ACL_MASK => {
                    mode = (mode & !0o070) | p << 3;
                    equiv = false;
                }
                _ => equiv = false,
            }
        }
        (mode, equiv)
    }

    /// `__posix_acl_chmod()`.
    fn chmod(&mut self, perms: u32) {
        let has_mask = self.0.iter().any(|e| e.0 == ACL_MASK);
        for e in &mut self.0 {
            match e.0 {
                ACL_USER_OBJ => e.1 = (perms >> 6 & 7) as u16,
                ACL_OTHER => e.1 = (perms & 7) as u16,
                ACL_MASK => e.1 = (perms >> 3 & 7) as u16,
                ACL_GROUP_OBJ if !has_mask => e.1 = (perms >> 3 & 7) as u16,
                _ => {}
            }
        }
    }

    /// `posix_acl_create_masq()`: limits the ACL by the create mode and
    /// the mode by the ACL; returns whether the ACL says more than the mode.
    fn create_masq(&mut self, mode: &mut u32) -> bool {
        let mut m = *mode;
        let mut not_equiv = false;
        let has_mask = self.0.iter().any(|e| e.0 == ACL_MASK);
        for e in &mut self.0 {
            let p = u32::from(e.1);
            match e.0 {
                ACL_USER_OBJ => {
                    e.1 = (p & (m >> 6 | !7)) as u16;
                    m &= u32::from(e.1) << 6 | !0o700;
                }
                ACL_USER | ACL_GROUP => not_equiv = true,
                ACL_OTHER => {
                    e.1 = (p & (m | !7)) as u16;
                    m &= u32::from(e.1) | !0o007;
                }
                ACL_MASK => not_equiv = true,
                _ => {}
            }
        }
        for e in &mut self.0 {
            if e.0 == ACL_MASK || (e.0 == ACL_GROUP_OBJ && !has_mask) {
                e.1 = (u32::from(e.1) & (m >> 3 | !7)) as u16;
                m &= u32::from(e.1) << 3 | !0o070;
            }
        }
        *mode &= (m & 0o777) | !0o777;
        not_equiv
    }

    /// `posix_acl_permission()` for `want` (`MAY_*`) by `c` on `f`.
    fn permits(&self, f: &Inode, want: u32, c: &Cred) -> bool {
        let mask = self.0.iter().find(|e| e.0 == ACL_MASK).map(|e| u32::from(e.1));
        let masked = |perm: u16| u32::from(perm) & mask.unwrap_or(7) & want == want;
        let mut found = false;
        for &(tag, perm, id) in &self.0 {
            match tag {
                ACL_USER_OBJ if f.uid == c.fsuid() => return u32::from(perm) & want == want,
                ACL_USER if id == c.fsuid() => return masked(perm),
                ACL_GROUP_OBJ | ACL_GROUP => {
                    let gid = if tag == ACL_GROUP { id } else { f.gid };
                    if c.in_group(gid) {
                        found = true;
                        if u32::from(perm) & want == want {
                            return masked(perm);
                        }
                    }
                }
                ACL_OTHER => return !found && u32::from(perm) & want == want,
                _ => {}
            }
        }
        false
    }
}

/// `MAY_EXEC`, `MAY_WRITE`, `MAY_READ`.
const MAY_EXEC: u32 = 1;
const MAY_WRITE: u32 = 2;
const MAY_READ: u32 = 4;

/// The file system and the calling thread.
#[derive(Clone, Debug)]
pub struct Linux {
    pub inodes: BTreeMap<Id, Inode>,
    pub links: Vec<Link>,
    pub cred: Cred,
    next: Id,
}

/// The image root's inode.
pub const ROOT: Id = 0;

impl Linux {
    /// An empty image root, `0755` and owned by root, and a root thread.
    pub fn new() -> Self {
        let root = Inode {
            kind: Kind::Dir,
            perms: 0o755,
            uid: 0,
            gid: 0,
            rdev: (0, 0),
            xattrs: BTreeMap::new(),
            nlink: 1,
        };
        Linux {
            inodes: BTreeMap::from([(ROOT, root)]),
            links: Vec::new(),
            cred: Cred::root(),
            next: 1,
        }
    }

    pub fn inode(&self, id: Id) -> &Inode {
        &self.inodes[&id]
    }

    /// The live inodes, in order.
    pub fn ids(&self) -> Vec<Id> {
        self.inodes.keys().copied().collect()
    }

    pub fn dirs(&self) -> Vec<Id> {
        self.inodes.iter().filter(|(_, f)| f.kind == Kind::Dir).map(|(&i, _)| i).collect()
    }

    /// Whether the directory `dir` has entries.
    pub fn has_entries(&self, dir: Id) -> bool {
        self.links.iter().any(|l| l.dir == dir)
    }

    /// `fs/namei.c: generic_permission()` for a directory: the mode bits
    /// (`acl_permission_check()`, the access ACL when there is one and the
    /// caller does not own it), then `CAP_DAC_READ_SEARCH` for anything but
    /// writing, then `CAP_DAC_OVERRIDE`.
    fn dir_permits(&self, d: &Inode, want: u32) -> bool {
        let c = &self.cred;
        let mode = d.perms;
        let ok = if c.fsuid() == d.uid {
            mode >> 6 & want == want
        } else if let Some(acl) = d.acl(Name::AclAccess).filter(|_| mode & 0o070 != 0) {
            acl.permits(d, want, c)
        } else if c.in_group(d.gid) {
            mode >> 3 & want == want
        } else {
            mode & want == want
        };
        ok || (want & MAY_WRITE == 0 && c.capable(CAP_DAC_READ_SEARCH))
            || c.capable(CAP_DAC_OVERRIDE)
    }

    /// `fs/namei.c: may_create()`.
    pub fn may_create(&self, dir: Id) -> Result<(), E> {
        if self.dir_permits(self.inode(dir), MAY_WRITE | MAY_EXEC) {
            Ok(())
        } else {
            Err(E::Access)
        }
    }

    /// `fs/namei.c: may_delete()`: write and search on the directory
    /// (`EACCES`), then the sticky bit (`check_sticky()`, `EPERM`).
    pub fn may_delete(&self, link: Link) -> Result<(), E> {
        let (d, f) = (self.inode(link.dir), self.inode(link.ino));
        if !self.dir_permits(d, MAY_WRITE | MAY_EXEC) {
            return Err(E::Access);
        }
        let c = &self.cred;
        if d.perms & S_ISVTX != 0
            && f.uid != c.fsuid()
            && d.uid != c.fsuid()
            && !c.capable(CAP_FOWNER)
        {
            return Err(E::Perm);
        }
        Ok(())
    }

    /// `fs/open.c: chown_common()` through `notify_change()` and
    /// `setattr_prepare()` (`fs/attr.c`). `chown_ok()`: the owner may
    /// "change" the owner to itself, else `CAP_CHOWN`; `chgrp_ok()`: the
    /// owner may pick its own groups. A non-directory always asks for
    /// `ATTR_KILL_SUID` and `ATTR_KILL_PRIV`, and for `ATTR_KILL_SGID` when
    /// `setattr_should_drop_sgid()` says (group-executable, or caller
    /// outside the file's group without `CAP_FSETID`). A bit killed makes
    /// it an `ATTR_MODE` change: owner or `CAP_FOWNER`, and set-group-id
    /// goes too when the caller is outside the *new* group without
    /// `CAP_FSETID` (checked on 6.18). `security.capability` goes with
    /// `ATTR_KILL_PRIV` once the change is allowed (`cap_inode_killpriv()`).
    pub fn chown(&mut self, id: Id, uid: Option<u32>, gid: Option<u32>) -> Result<(), E> {
        let c = self.cred.clone();
        let f = self.inode(id).clone();
        let mine = c.fsuid() == f.uid;
        let chown_ok = |u: u32| (mine && u == f.uid) || c.capable(CAP_CHOWN);
        let chgrp_ok = |g: u32| (mine && (g == f.gid || c.in_group(g))) || c.capable(CAP_CHOWN);
        if uid.is_some_and(|u| !chown_ok(u)) || gid.is_some_and(|g| !chgrp_ok(g)) {
            return Err(E::Perm);
        }
        let new_gid = gid.unwrap_or(f.gid);
        let mut perms = f.perms;
        if f.kind != Kind::Dir {
            perms &= !S_ISUID;
            if f.perms & S_ISGID != 0 && (f.perms & S_IXGRP != 0 || !c.in_group_or_fsetid(f.gid)) {
                perms &= !S_ISGID;
            }
            if perms != f.perms {
                if !c.owner_or_fowner(&f) {
                    return Err(E::Perm);
                }
                if !c.in_group_or_fsetid(new_gid) {
                    perms &= !S_ISGID;
                }
            }
        }
        let f = self.inodes.get_mut(&id).unwrap();
        f.perms = perms;
        f.uid = uid.unwrap_or(f.uid);
        f.gid = new_gid;
        if f.kind != Kind::Dir {
            f.xattrs.remove(&Name::Capability.bytes());
        }
        Ok(())
    }

    /// `fs/open.c: chmod_common()`: owner or `CAP_FOWNER`; set-group-id
    /// is dropped for a caller outside the group without `CAP_FSETID`
    /// (`setattr_prepare()`); the access ACL follows (`posix_acl_chmod()`).
    pub fn chmod(&mut self, id: Id, mode: u32) -> Result<(), E> {
        let c = self.cred.clone();
        let f = self.inodes.get_mut(&id).unwrap();
        if !c.owner_or_fowner(f) {
            return Err(E::Perm);
        }
        let mut perms = mode & 0o7777;
        if !c.in_group_or_fsetid(f.gid) {
            perms &= !S_ISGID;
        }
        f.perms = perms;
        if let Some(mut acl) = f.acl(Name::AclAccess) {
            acl.chmod(perms);
            f.xattrs.insert(Name::AclAccess.bytes(), acl.to_xattr());
        }
        Ok(())
    }

    /// A new name in `dir` for a new file, as `vfs_create()`,
    /// `vfs_mkdir()`, `vfs_symlink()` and `vfs_mknod()` make it:
    /// `may_create()` (`EACCES`); devices need `CAP_MKNOD` (`EPERM`);
    /// `vfs_prepare_mode()` strips set-group-id from a group-executable
    /// request in a set-group-id directory for a caller outside its group
    /// without `CAP_FSETID` *before* the umask (checked on 6.18); mkdir
    /// keeps `01777`; `inode_init_owner()` gives the fs uid, and the fs gid
    /// or the directory's group when it is set-group-id (a directory then
    /// inherits the bit); `posix_acl_create()` applies the umask, or with a
    /// default ACL on the directory not the umask but the ACL (symlinks
    /// take neither: always `0777`).
    pub fn make(&mut self, dir: Id, kind: Kind, mode: u32, umask: u32, dev: u32) -> Result<Id, E> {
        self.may_create(dir)?;
        let c = self.cred.clone();
        if kind.is_device() && !c.capable(CAP_MKNOD) {
            return Err(E::Perm);
        }
        let d = self.inode(dir).clone();
        let mut perms = mode & 0o7777;
        if kind != Kind::Dir
            && perms & (S_ISGID | S_IXGRP) == S_ISGID | S_IXGRP
            && d.perms & S_ISGID != 0
            && !c.in_group_or_fsetid(d.gid)
        {
            perms &= !S_ISGID;
        }
        if kind == Kind::Dir {
            perms &= 0o1777;
        }
        let mut xattrs = BTreeMap::new();
        if kind == Kind::Lnk {
            perms = 0o777;
        } else if let Some(default) = d.acl(Name::AclDefault) {
            let mut access = default.clone();
            if access.create_masq(&mut perms) {
                xattrs.insert(Name::AclAccess.bytes(), access.to_xattr());
            }
            if kind == Kind::Dir {
                xattrs.insert(Name::AclDefault.bytes(), default.to_xattr());
            }
        } else {
            perms &= !(umask & 0o777);
        }
        let gid = if d.perms & S_ISGID != 0 {
            if kind == Kind::Dir {
                perms |= S_ISGID;
            }
            d.gid
        } else {
            c.gid[FS]
        };
        // include/linux/kdev_t.h: new_decode_dev()
        let rdev = if kind.is_device() {
            ((dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00))
        } else {
            (0, 0)
        };
        let f = Inode { kind, perms, uid: c.fsuid(), gid, rdev, xattrs, nlink: 1 };
        Ok(self.add(dir, f))
    }

    /// A file the user made outside fr: real root sees the user's own ids
    /// as its own (0), as fr shows them.
    pub fn host(&mut self, dir: Id, kind: Kind, perms: u32) -> Id {
        let f =
            Inode { kind, perms, uid: 0, gid: 0, rdev: (0, 0), xattrs: BTreeMap::new(), nlink: 1 };
        self.add(dir, f)
    }

    fn add(&mut self, dir: Id, f: Inode) -> Id {
        let id = self.next;
        self.next += 1;
        self.inodes.insert(id, f);
        self.links.push(Link { dir, ino: id });
        id
    }

    /// `fs/xattr.c: setxattr()`. Flags first (`EINVAL`). The ACLs go
    /// through `do_set_acl()` and `set_posix_acl()` (`fs/posix_acl.c`),
    /// checked on 6.18 in this order: the value's form (`EINVAL`,
    /// `EOPNOTSUPP`), no ACLs on symlinks (`EOPNOTSUPP`), a default ACL on
    /// a non-directory (`EACCES`, or nothing to remove), owner or
    /// `CAP_FOWNER` (`EPERM`), `posix_acl_valid()` (`EINVAL`); an access
    /// ACL sets the mode (`posix_acl_update_mode()`, set-group-id dropped
    /// outside the group) and is not kept when the mode says it all;
    /// `XATTR_CREATE` and `XATTR_REPLACE` mean nothing to them.
    /// `security.capability` goes through `cap_convert_nscap()`: only a v2
    /// or v3 header of the right size (`EINVAL`), then `CAP_SETFCAP`, then a
    /// v3 root id that maps (not -1); it reads back as v2 when the root id
    /// is 0 (`cap_inode_getsecurity()`). `trusted.*` needs `CAP_SYS_ADMIN`
    /// (`xattr_permission()`), other `security.*` too
    /// (`cap_inode_setxattr()`); the file system then checks the flags.
    pub fn setxattr(&mut self, id: Id, name: Name, value: &[u8], flags: u32) -> Result<(), E> {
        const CREATE: u32 = 1;
        const REPLACE: u32 = 2;
        if flags & !(CREATE | REPLACE) != 0 {
            return Err(E::Inval);
        }
        let c = self.cred.clone();
        let key = name.bytes();
        let f = self.inodes.get_mut(&id).unwrap();
        if name.is_acl() {
            let acl = if value.is_empty() { None } else { Acl::from_xattr(value)? };
            if f.kind == Kind::Lnk {
                return Err(E::NotSup);
            }
            if name == Name::AclDefault && f.kind != Kind::Dir {
                return if acl.is_some() { Err(E::Access) } else { Ok(()) };
            }
            if !c.owner_or_fowner(f) {
                return Err(E::Perm);
            }
            let mut acl = match acl {
                Some(a) if !a.valid() => return Err(E::Inval),
                other => other,
            };
            if name == Name::AclAccess {
                if let Some(a) = &acl {
                    let (bits, equiv) = a.equiv_mode();
                    f.perms = (f.perms & !0o777) | bits;
                    if !c.in_group_or_fsetid(f.gid) {
                        f.perms &= !S_ISGID;
                    }
                    if equiv {
                        acl = None;
                    }
                }
            }
            match acl {
                Some(a) => f.xattrs.insert(key, a.to_xattr()),
                None => f.xattrs.remove(&key),
            };
            return Ok(());
        }
        let stored = if name == Name::Capability {
            let magic = value.get(..4).map(|m| u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
            let revision = magic.map(|m| m & !1);
            let v3 = match (revision, value.len()) {
                (Some(0x0200_0000), 20) => false,
                (Some(0x0300_0000), 24) => true,
                _ => return Err(E::Inval),
            };
            if !c.capable(CAP_SETFCAP) {
                return Err(E::Perm);
            }
            let rootid =
                v3.then(|| u32::from_le_bytes([value[20], value[21], value[22], value[23]]));
            match rootid {
                Some(MINUS_ONE) => return Err(E::Inval),
                Some(0) => {
                    let mut v2 = value[..20].to_vec();
                    v2[..4].copy_from_slice(&(0x0200_0000 | (magic.unwrap() & 1)).to_le_bytes());
                    v2
                }
                _ => value.to_vec(),
            }
        } else {
            if !c.capable(CAP_SYS_ADMIN) {
                return Err(E::Perm);
            }
            value.to_vec()
        };
        let exists = f.xattrs.contains_key(&key);
        if exists && flags & CREATE != 0 {
            return Err(E::Exist);
        }
        if !exists && flags & REPLACE != 0 {
            return Err(E::NoData);
        }
        f.xattrs.insert(key, stored);
        Ok(())
    }

    /// `fs/xattr.c: removexattr()`. The ACLs (`vfs_remove_acl()`): none on
    /// symlinks (`EOPNOTSUPP`), nothing to do for a default ACL of a
    /// non-directory, owner or `CAP_FOWNER`, and removing a missing ACL
    /// succeeds (ext4; checked on 6.18). `security.capability` needs
    /// `CAP_SETFCAP` (`cap_inode_removexattr()`), other `security.*` and
    /// `trusted.*` `CAP_SYS_ADMIN`; a missing one is `ENODATA`.
    pub fn removexattr(&mut self, id: Id, name: Name) -> Result<(), E> {
        let c = self.cred.clone();
        let f = self.inodes.get_mut(&id).unwrap();
        let key = name.bytes();
        if name.is_acl() {
            if f.kind == Kind::Lnk {
                return Err(E::NotSup);
            }
            if name == Name::AclDefault && f.kind != Kind::Dir {
                return Ok(());
            }
            if !c.owner_or_fowner(f) {
                return Err(E::Perm);
            }
            f.xattrs.remove(&key);
            return Ok(());
        }
        let cap = if name == Name::Capability { CAP_SETFCAP } else { CAP_SYS_ADMIN };
        if !c.capable(cap) {
            return Err(E::Perm);
        }
        f.xattrs.remove(&key).map(|_| ()).ok_or(E::NoData)
    }

    /// `fs/namei.c: may_linkat()` with `fs.protected_hardlinks` set (the
    /// usual setting): the owner or `CAP_FOWNER` may link any file; anyone
    /// else only a safe source (`safe_hardlink_source()`): regular, not
    /// set-user-id, not set-group-id and group-executable, readable and
    /// writable by the caller (`inode_permission()`; for a mask with
    /// `MAY_WRITE`, `generic_permission()` of a file asks what it asks of a
    /// directory); else `EPERM`.
    fn may_linkat(&self, ino: Id) -> Result<(), E> {
        let (f, c) = (self.inode(ino), &self.cred);
        if f.uid == c.fsuid() || c.capable(CAP_FOWNER) {
            return Ok(());
        }
        let setgid_exec = S_ISGID | 0o010;
        if f.kind == Kind::Reg
            && f.perms & S_ISUID == 0
            && f.perms & setgid_exec != setgid_exec
            && self.dir_permits(f, MAY_READ | MAY_WRITE)
        {
            Ok(())
        } else {
            Err(E::Perm)
        }
    }

    /// `linkat(2)` (`fs/namei.c: do_linkat()`): a new name in `dir` for the
    /// file of `link`: `may_linkat()` (`EPERM`), then `vfs_link()`'s
    /// `may_create()` (`EACCES`).
    pub fn link(&mut self, link: usize, dir: Id) -> Result<(), E> {
        self.may_linkat(self.links[link].ino)?;
        self.may_create(dir)?;
        let ino = self.links[link].ino;
        self.inodes.get_mut(&ino).unwrap().nlink += 1;
        self.links.push(Link { dir, ino });
        Ok(())
    }

    /// `renameat(2)` of non-directories: onto another name (which then
    /// names the file; two names of one file: nothing happens), or to a
    /// new name in `to_dir`. `may_delete()` of the old name, then of the
    /// replaced one or `may_create()` in the new directory.
    pub fn rename(&mut self, from: usize, onto: Option<usize>, to_dir: Id) -> Result<(), E> {
        let src = self.links[from];
        if let Some(t) = onto {
            if self.links[t].ino == src.ino {
                return Ok(());
            }
        }
        self.may_delete(src)?;
        match onto {
            Some(t) => {
                self.may_delete(self.links[t])?;
                let victim = self.links[t].ino;
                self.links[t].ino = src.ino;
                self.links.remove(from);
                self.drop_link(victim);
            }
            None => {
                self.may_create(to_dir)?;
                self.links[from].dir = to_dir;
            }
        }
        Ok(())
    }

    /// `unlinkat(2)`, or `rmdir` for a directory (`ENOTEMPTY` after
    /// `may_delete()`).
    pub fn unlink(&mut self, link: usize) -> Result<(), E> {
        let l = self.links[link];
        self.may_delete(l)?;
        if self.has_entries(l.ino) {
            return Err(E::NotEmpty);
        }
        self.links.remove(link);
        self.drop_link(l.ino);
        Ok(())
    }

    fn drop_link(&mut self, ino: Id) {
        let f = self.inodes.get_mut(&ino).unwrap();
        f.nlink -= 1;
        if f.nlink == 0 {
            self.inodes.remove(&ino);
        }
    }

    /// Outside fr, the only name of a file now names a new file of `kind`
    /// the user made (see [`Linux::host`]).
    pub fn replace(&mut self, link: usize, kind: Kind, perms: u32) -> Id {
        let old = self.links[link];
        self.drop_link(old.ino);
        let id = self.host(old.dir, kind, perms);
        let new = self.links.pop().unwrap();
        self.links[link] = new;
        id
    }
}

impl Default for Linux {
    fn default() -> Self {
        Self::new()
    }
}
