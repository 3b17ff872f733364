//! Fake credentials: the ids, supplementary groups and capabilities a
//! thread would have as real root, and the kernel's rules for changing them.
//!
//! The rules follow `kernel/sys.c` (`__sys_setuid`, `__sys_setreuid`,
//! `__sys_setresuid`, `__sys_setfsuid` and their gid twins, `set_groups`)
//! and `security/commoncap.c` (`cap_emulate_setxuid`,
//! `cap_task_fix_setuid`, `cap_capset`). "Capable" means the capability is
//! in the effective set, as `ns_capable()` checks.

/// `CAP_LAST_CAP` of Linux 5.9+ (`CAP_CHECKPOINT_RESTORE` = 40): the full set.
pub const CAP_FULL: u64 = (1 << 41) - 1;
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;
pub const CAP_SETPCAP: u32 = 8;
/// `CAP_FS_MASK` (`include/linux/capability.h`): the capabilities an fsuid
/// change from or to 0 drops or raises: `CHOWN`, `DAC_OVERRIDE`,
/// `DAC_READ_SEARCH`, `FOWNER`, `FSETID`, `LINUX_IMMUTABLE`, `MKNOD`,
/// `MAC_OVERRIDE`.
pub const CAP_FS_MASK: u64 = 0b1_1111 | (1 << 9) | (1 << 27) | (1 << 32);
/// `NGROUPS_MAX`.
pub const NGROUPS_MAX: usize = 65536;
/// `-1`: "leave unchanged" in the set*id calls.
pub const UNCHANGED: u32 = u32::MAX;

/// Why a change is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `EPERM`.
    Perm,
    /// `EINVAL`.
    Inval,
    /// `EACCES`: file permissions, not privilege.
    Access,
    /// The journal could not keep the change: its errno (`ENOSPC`, ...).
    Unkept(i32),
}

impl From<crate::table::Unkept> for Refused {
    fn from(e: crate::table::Unkept) -> Self {
        Refused::Unkept(e.0)
    }
}

/// One thread's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Creds {
    pub ruid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub rgid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    /// Sorted, as the kernel keeps them (`groups_sort()`).
    pub groups: Vec<u32>,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    /// The capability bounding set: what root's exec may have.
    pub bounding: u64,
    /// `securebits` (`prctl(PR_SET_SECUREBITS)`, `PR_SET_KEEPCAPS`).
    pub securebits: u32,
}

/// `SECBIT_KEEP_CAPS`: permitted capabilities survive leaving uid 0.
pub const SECBIT_KEEP_CAPS: u32 = 1 << 4;
/// `SECBIT_NO_SETUID_FIXUP`: uid changes leave capabilities alone.
pub const SECBIT_NO_SETUID_FIXUP: u32 = 1 << 2;
/// `SECBIT_KEEP_CAPS_LOCKED`: `SECBIT_KEEP_CAPS` can no longer change.
pub const SECBIT_KEEP_CAPS_LOCKED: u32 = 1 << 5;
/// `SECURE_ALL_BITS` of Linux 6.14 and later (`include/uapi/linux/securebits.h`):
/// `NOROOT`, `NO_SETUID_FIXUP`, `KEEP_CAPS`, `NO_CAP_AMBIENT_RAISE`,
/// `EXEC_RESTRICT_FILE`, `EXEC_DENY_INTERACTIVE`; each one's lock is the
/// bit above it (`SECURE_ALL_LOCKS`).
const SECURE_ALL_BITS: u32 = 0x555;
const SECURE_ALL_LOCKS: u32 = SECURE_ALL_BITS << 1;

impl Default for Creds {
    fn default() -> Self {
        Self::root()
    }
}

fn has(set: u64, cap: u32) -> bool {
    set & (1 << cap) != 0
}

impl Creds {
    /// Real root as a login shell has it: all ids and the one group 0,
    /// every capability permitted and effective.
    pub fn root() -> Self {
        Self::root_bounded(CAP_FULL)
    }

    /// Real root under the capability bounding set `bounding` (what a
    /// root shell started in that environment would have).
    pub fn root_bounded(bounding: u64) -> Self {
        Self {
            ruid: 0,
            euid: 0,
            suid: 0,
            fsuid: 0,
            rgid: 0,
            egid: 0,
            sgid: 0,
            fsgid: 0,
            groups: vec![0],
            effective: bounding & CAP_FULL,
            permitted: bounding & CAP_FULL,
            inheritable: 0,
            bounding: bounding & CAP_FULL,
            securebits: 0,
        }
    }

    /// Whether `cap` is in the effective set (`ns_capable()`).
    pub fn capable(&self, cap: u32) -> bool {
        has(self.effective, cap)
    }

    /// `cap_emulate_setxuid()`: leaving root drops capabilities, becoming
    /// root again raises the effective ones.
    fn fix_setxuid(&mut self, old: &Creds) {
        if self.securebits & SECBIT_NO_SETUID_FIXUP != 0 {
            return;
        }
        let was_root = old.ruid == 0 || old.euid == 0 || old.suid == 0;
        let is_root = self.ruid == 0 || self.euid == 0 || self.suid == 0;
        if was_root && !is_root && self.securebits & SECBIT_KEEP_CAPS == 0 {
            self.permitted = 0;
            self.effective = 0;
        }
        if old.euid == 0 && self.euid != 0 {
            self.effective = 0;
        }
        if old.euid != 0 && self.euid == 0 {
            self.effective = self.permitted;
        }
    }

    /// `cap_task_fix_setuid(LSM_SETID_FS)`.
    fn fix_setfsuid(&mut self, old_fsuid: u32) {
        if self.securebits & SECBIT_NO_SETUID_FIXUP != 0 {
            return;
        }
        if old_fsuid == 0 && self.fsuid != 0 {
            self.effective &= !CAP_FS_MASK;
        }
        if old_fsuid != 0 && self.fsuid == 0 {
            self.effective |= self.permitted & CAP_FS_MASK;
        }
    }

    /// `setuid(2)`.
    pub fn setuid(&mut self, uid: u32) -> Result<(), Refused> {
        if uid == UNCHANGED {
            return Err(Refused::Inval);
        }
        let old = self.clone();
        if old.capable(CAP_SETUID) {
            self.ruid = uid;
            self.suid = uid;
        } else if uid != old.ruid && uid != old.suid {
            return Err(Refused::Perm);
        }
        self.euid = uid;
        self.fsuid = uid;
        self.fix_setxuid(&old);
        Ok(())
    }

    /// `setreuid(2)`.
    pub fn setreuid(&mut self, ruid: u32, euid: u32) -> Result<(), Refused> {
        let old = self.clone();
        let capable = old.capable(CAP_SETUID);
        if ruid != UNCHANGED {
            if ruid != old.ruid && ruid != old.euid && !capable {
                return Err(Refused::Perm);
            }
            self.ruid = ruid;
        }
        if euid != UNCHANGED {
            if euid != old.ruid && euid != old.euid && euid != old.suid && !capable {
                *self = old;
                return Err(Refused::Perm);
            }
            self.euid = euid;
        }
        if ruid != UNCHANGED || (euid != UNCHANGED && euid != old.ruid) {
            self.suid = self.euid;
        }
        self.fsuid = self.euid;
        self.fix_setxuid(&old);
        Ok(())
    }

    /// `setresuid(2)`.
    pub fn setresuid(&mut self, ruid: u32, euid: u32, suid: u32) -> Result<(), Refused> {
        let old = self.clone();
        let noop = (ruid == UNCHANGED || ruid == old.ruid)
            && (euid == UNCHANGED || (euid == old.euid && euid == old.fsuid))
            && (suid == UNCHANGED || suid == old.suid);
        if noop {
            return Ok(());
        }
        let new = |id: u32| id != UNCHANGED && id != old.ruid && id != old.euid && id != old.suid;
        if (new(ruid) || new(euid) || new(suid)) && !old.capable(CAP_SETUID) {
            return Err(Refused::Perm);
        }
        if ruid != UNCHANGED {
            self.ruid = ruid;
        }
        if euid != UNCHANGED {
            self.euid = euid;
        }
        if suid != UNCHANGED {
            self.suid = suid;
        }
        self.fsuid = self.euid;
        self.fix_setxuid(&old);
        Ok(())
    }

    /// `setfsuid(2)`: returns the previous fsuid, whether or not it changed.
    pub fn setfsuid(&mut self, uid: u32) -> u32 {
        let old_fsuid = self.fsuid;
        if uid == UNCHANGED {
            return old_fsuid;
        }
        let allowed = [self.ruid, self.euid, self.suid, self.fsuid].contains(&uid)
            || self.capable(CAP_SETUID);
        if allowed && uid != old_fsuid {
            self.fsuid = uid;
            self.fix_setfsuid(old_fsuid);
        }
        old_fsuid
    }

    /// `setgid(2)`.
    pub fn setgid(&mut self, gid: u32) -> Result<(), Refused> {
        if gid == UNCHANGED {
            return Err(Refused::Inval);
        }
        if self.capable(CAP_SETGID) {
            self.rgid = gid;
            self.sgid = gid;
        } else if gid != self.rgid && gid != self.sgid {
            return Err(Refused::Perm);
        }
        self.egid = gid;
        self.fsgid = gid;
        Ok(())
    }

    /// `setregid(2)`.
    pub fn setregid(&mut self, rgid: u32, egid: u32) -> Result<(), Refused> {
        let old = self.clone();
        let capable = old.capable(CAP_SETGID);
        if rgid != UNCHANGED && rgid != old.rgid && rgid != old.egid && !capable {
            return Err(Refused::Perm);
        }
        if egid != UNCHANGED && egid != old.rgid && egid != old.egid && egid != old.sgid && !capable
        {
            return Err(Refused::Perm);
        }
        if rgid != UNCHANGED {
            self.rgid = rgid;
        }
        if egid != UNCHANGED {
            self.egid = egid;
        }
        if rgid != UNCHANGED || (egid != UNCHANGED && egid != old.rgid) {
            self.sgid = self.egid;
        }
        self.fsgid = self.egid;
        Ok(())
    }

    /// `setresgid(2)`.
    pub fn setresgid(&mut self, rgid: u32, egid: u32, sgid: u32) -> Result<(), Refused> {
        let old = self.clone();
        let noop = (rgid == UNCHANGED || rgid == old.rgid)
            && (egid == UNCHANGED || (egid == old.egid && egid == old.fsgid))
            && (sgid == UNCHANGED || sgid == old.sgid);
        if noop {
            return Ok(());
        }
        let new = |id: u32| id != UNCHANGED && id != old.rgid && id != old.egid && id != old.sgid;
        if (new(rgid) || new(egid) || new(sgid)) && !old.capable(CAP_SETGID) {
            return Err(Refused::Perm);
        }
        if rgid != UNCHANGED {
            self.rgid = rgid;
        }
        if egid != UNCHANGED {
            self.egid = egid;
        }
        if sgid != UNCHANGED {
            self.sgid = sgid;
        }
        self.fsgid = self.egid;
        Ok(())
    }

    /// `setfsgid(2)`: returns the previous fsgid.
    pub fn setfsgid(&mut self, gid: u32) -> u32 {
        let old = self.fsgid;
        if gid != UNCHANGED
            && ([self.rgid, self.egid, self.sgid, self.fsgid].contains(&gid)
                || self.capable(CAP_SETGID))
        {
            self.fsgid = gid;
        }
        old
    }

    /// `setgroups(2)`: needs `CAP_SETGID`; the kernel keeps them sorted.
    pub fn setgroups(&mut self, mut groups: Vec<u32>) -> Result<(), Refused> {
        // kernel/groups.c: may_setgroups() comes before the size.
        if !self.capable(CAP_SETGID) {
            return Err(Refused::Perm);
        }
        if groups.len() > NGROUPS_MAX {
            return Err(Refused::Inval);
        }
        groups.sort_unstable();
        self.groups = groups;
        Ok(())
    }

    /// `capset(2)` of the calling thread (`cap_capset()`).
    pub fn capset(
        &mut self,
        effective: u64,
        permitted: u64,
        inheritable: u64,
    ) -> Result<(), Refused> {
        let subset = |a: u64, b: u64| a & !b == 0;
        let capped = !self.capable(CAP_SETPCAP);
        if capped && !subset(inheritable, self.inheritable | self.permitted) {
            return Err(Refused::Perm);
        }
        if !subset(inheritable, self.inheritable | self.bounding)
            || !subset(permitted, self.permitted)
            || !subset(effective, permitted)
        {
            return Err(Refused::Perm);
        }
        self.effective = effective;
        self.permitted = permitted;
        self.inheritable = inheritable;
        Ok(())
    }

    /// `prctl(PR_SET_KEEPCAPS, on)` (`security/commoncap.c: cap_task_prctl()`).
    pub fn set_keepcaps(&mut self, on: bool) -> Result<(), Refused> {
        if self.securebits & SECBIT_KEEP_CAPS_LOCKED != 0 {
            return Err(Refused::Perm);
        }
        if on {
            self.securebits |= SECBIT_KEEP_CAPS;
        } else {
            self.securebits &= !SECBIT_KEEP_CAPS;
        }
        Ok(())
    }

    /// `prctl(PR_SET_SECUREBITS, bits)` (`security/commoncap.c:
    /// cap_task_prctl()`): `EPERM` for a change to a locked bit, the
    /// clearing of a lock, a bit Linux does not know, or a caller without
    /// `CAP_SETPCAP`.
    pub fn set_securebits(&mut self, bits: u32) -> Result<(), Refused> {
        let old = self.securebits;
        let locked = (old & SECURE_ALL_LOCKS) >> 1;
        if locked & (old ^ bits) != 0
            || old & SECURE_ALL_LOCKS & !bits != 0
            || bits & !(SECURE_ALL_LOCKS | SECURE_ALL_BITS) != 0
            || !self.capable(CAP_SETPCAP)
        {
            return Err(Refused::Perm);
        }
        self.securebits = bits;
        Ok(())
    }

    /// `prctl(PR_CAPBSET_DROP, cap)` (`cap_prctl_drop()`): `CAP_SETPCAP`
    /// first, then a capability Linux knows.
    pub fn drop_bounding(&mut self, cap: u32) -> Result<(), Refused> {
        if !self.capable(CAP_SETPCAP) {
            return Err(Refused::Perm);
        }
        if cap > 40 {
            return Err(Refused::Inval);
        }
        self.bounding &= !(1 << cap);
        Ok(())
    }

    /// `execve(2)` of a program, for real root's capability rules
    /// (`security/commoncap.c: cap_bprm_creds_from_file()`, no file
    /// capabilities): a set-user-id or set-group-id program sets the
    /// effective and saved id to its owner or group; root (real or
    /// effective) then gets the bounding set permitted, effective only if
    /// its effective uid is 0; others keep none.
    pub fn exec(&mut self, setuid_owner: Option<u32>, setgid_group: Option<u32>) {
        // SECBIT_KEEP_CAPS is cleared by every exec.
        self.securebits &= !SECBIT_KEEP_CAPS;
        if let Some(uid) = setuid_owner {
            self.euid = uid;
        }
        if let Some(gid) = setgid_group {
            self.egid = gid;
        }
        self.suid = self.euid;
        self.fsuid = self.euid;
        self.sgid = self.egid;
        self.fsgid = self.egid;
        if self.euid == 0 || self.ruid == 0 {
            self.permitted = self.bounding | self.inheritable;
            self.effective = if self.euid == 0 { self.permitted } else { 0 };
        } else {
            // No file capabilities and no ambient set: nothing survives.
            self.permitted = 0;
            self.effective = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_drops_to_a_user_for_good() {
        let mut c = Creds::root();
        c.setgroups(vec![65534]).unwrap();
        c.setresgid(65534, 65534, 65534).unwrap();
        c.setresuid(100, 100, 100).unwrap();
        assert_eq!((c.ruid, c.euid, c.suid, c.fsuid), (100, 100, 100, 100));
        assert_eq!((c.effective, c.permitted), (0, 0));
        // apt checks that the drop cannot be undone.
        assert_eq!(c.setuid(0), Err(Refused::Perm));
        assert_eq!(c.setresuid(0, 0, 0), Err(Refused::Perm));
        assert_eq!(c.setgroups(vec![0]), Err(Refused::Perm));
        assert_eq!(c.setgid(0), Err(Refused::Perm));
    }

    #[test]
    fn securebits_refuse_locked_bits_unlocking_and_unknown_bits() {
        let mut c = Creds::root();
        assert_eq!(c.set_securebits(1 << 20), Err(Refused::Perm), "a bit Linux does not know");
        // KEEP_CAPS set and locked.
        c.set_securebits(SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED).unwrap();
        assert_eq!(c.set_securebits(SECBIT_KEEP_CAPS_LOCKED), Err(Refused::Perm), "a locked bit");
        assert_eq!(c.set_securebits(SECBIT_KEEP_CAPS), Err(Refused::Perm), "unlocking");
        assert_eq!(c.set_keepcaps(false), Err(Refused::Perm), "PR_SET_KEEPCAPS under the lock");
        assert_eq!(c.securebits, SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED);
        // Other bits still change.
        c.set_securebits(SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_SETUID_FIXUP)
            .unwrap();
        let mut user = Creds::root();
        user.setresuid(5, 5, 5).unwrap();
        assert_eq!(user.set_securebits(0), Err(Refused::Perm), "no CAP_SETPCAP");
        assert_eq!(user.set_keepcaps(true), Ok(()), "PR_SET_KEEPCAPS needs no capability");
    }

    #[test]
    fn dropping_from_the_bounding_set_asks_for_the_capability_before_the_number() {
        let mut user = Creds::root();
        user.setresuid(5, 5, 5).unwrap();
        assert_eq!(user.drop_bounding(99), Err(Refused::Perm));
        assert_eq!(Creds::root().drop_bounding(99), Err(Refused::Inval));
    }

    #[test]
    fn seteuid_away_and_back_keeps_root_reachable() {
        // glibc's seteuid() is setresuid(-1, e, -1).
        let mut c = Creds::root();
        c.setresuid(UNCHANGED, 1000, UNCHANGED).unwrap();
        assert_eq!((c.ruid, c.euid, c.suid, c.fsuid), (0, 1000, 0, 1000));
        assert_eq!(c.effective, 0);
        assert_eq!(c.permitted, CAP_FULL);
        c.setresuid(UNCHANGED, 0, UNCHANGED).unwrap();
        assert_eq!(c.euid, 0);
        assert_eq!(c.effective, CAP_FULL);
    }

    #[test]
    fn setreuid_moves_the_saved_id_when_the_effective_one_leaves_the_real_one() {
        let mut c = Creds::root();
        c.setreuid(UNCHANGED, 1000).unwrap();
        assert_eq!((c.ruid, c.euid, c.suid), (0, 1000, 1000));
        c.setreuid(UNCHANGED, 0).unwrap();
        assert_eq!((c.ruid, c.euid, c.suid), (0, 0, 1000));
    }

    #[test]
    fn keepcaps_keeps_the_permitted_set_across_leaving_root() {
        let mut c = Creds::root();
        c.set_keepcaps(true).unwrap();
        c.setresuid(1000, 1000, 1000).unwrap();
        assert_eq!((c.effective, c.permitted), (0, CAP_FULL));
        c.capset(CAP_FULL, CAP_FULL, 0).unwrap();
        c.exec(None, None);
        assert_eq!((c.effective, c.permitted, c.securebits), (0, 0, 0));
    }

    #[test]
    fn setuid_as_root_sets_all_three() {
        let mut c = Creds::root();
        c.setuid(5).unwrap();
        assert_eq!((c.ruid, c.euid, c.suid, c.fsuid), (5, 5, 5, 5));
        assert_eq!(c.setuid(UNCHANGED), Err(Refused::Inval));
        // A user may set its effective id to its real one.
        c.setuid(5).unwrap();
        assert_eq!(c.setuid(6), Err(Refused::Perm));
    }

    #[test]
    fn setfsuid_returns_the_old_value_and_drops_fs_capabilities() {
        let mut c = Creds::root();
        assert_eq!(c.setfsuid(1000), 0);
        assert_eq!(c.fsuid, 1000);
        assert_eq!(c.effective & CAP_FS_MASK, 0);
        assert_eq!(c.effective & (1 << CAP_SETUID), 1 << CAP_SETUID);
        assert_eq!(c.setfsuid(0), 1000);
        assert_eq!(c.effective, CAP_FULL);
        assert_eq!(c.setfsuid(UNCHANGED), 0);
    }

    #[test]
    fn groups_are_kept_sorted_and_capped() {
        let mut c = Creds::root();
        c.setgroups(vec![30, 4, 27]).unwrap();
        assert_eq!(c.groups, [4, 27, 30]);
        assert_eq!(c.setgroups(vec![0; NGROUPS_MAX + 1]), Err(Refused::Inval));
        // Without CAP_SETGID the size is not looked at (kernel/groups.c).
        c.setresuid(5, 5, 5).unwrap();
        assert_eq!(c.setgroups(vec![0; NGROUPS_MAX + 1]), Err(Refused::Perm));
    }

    #[test]
    fn capset_cannot_grow_the_permitted_set() {
        let mut c = Creds::root();
        c.capset(0, 1 << CAP_SETUID, 0).unwrap();
        assert_eq!(c.capset(1 << CAP_SETGID, 1 << CAP_SETGID, 0), Err(Refused::Perm));
        assert_eq!(c.capset(1 << CAP_SETUID, 0, 0), Err(Refused::Perm));
        c.capset(1 << CAP_SETUID, 1 << CAP_SETUID, 0).unwrap();
    }

    #[test]
    fn exec_of_a_setuid_program_and_roots_capabilities() {
        let mut c = Creds::root();
        c.setresuid(100, 100, 100).unwrap();
        c.exec(Some(0), None);
        assert_eq!((c.ruid, c.euid, c.suid), (100, 0, 0));
        assert_eq!(c.effective, CAP_FULL);
        let mut d = Creds::root();
        d.capset(0, 0, 0).unwrap();
        d.exec(None, None);
        assert_eq!(d.effective, CAP_FULL, "root's exec restores its capabilities");
        let mut b = Creds::root_bounded(CAP_FULL & !(1 << 24));
        b.capset(0, 0, 0).unwrap();
        b.exec(None, None);
        assert_eq!(b.effective, CAP_FULL & !(1 << 24), "but never beyond the bounding set");
    }
}
