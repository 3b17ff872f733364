//! POSIX ACLs in their xattr form, and what they do to a file's mode, as
//! `fs/posix_acl.c` has it: `posix_acl_valid()`, `posix_acl_equiv_mode()`,
//! `posix_acl_update_mode()`, `__posix_acl_chmod()` and
//! `posix_acl_create()`.
//!
//! The value is a little-endian `u32` version (2), then entries of
//! `u16 tag, u16 perm, u32 id`.

use crate::xattr::XattrError;

/// `ACL_USER_OBJ ACL_USER ACL_GROUP_OBJ ACL_GROUP ACL_MASK ACL_OTHER`.
pub const USER_OBJ: u16 = 0x01;
pub const USER: u16 = 0x02;
pub const GROUP_OBJ: u16 = 0x04;
pub const GROUP: u16 = 0x08;
pub const MASK: u16 = 0x10;
pub const OTHER: u16 = 0x20;
const VERSION: u32 = 2;
/// `ACL_UNDEFINED_ID`, what the entries without an id carry.
const NO_ID: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub tag: u16,
    pub perm: u16,
    pub id: u32,
}

/// An ACL with its entries in the order they were given: the kernel keeps
/// that order, and `posix_acl_valid()` asks only that the tags come in
/// their order (named entries need not be sorted by id nor unique).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acl(pub Vec<Entry>);

impl Acl {
    /// Reads an xattr value as `posix_acl_from_xattr()` does, in its
    /// order: a value shorter than the header is `EINVAL`, then another
    /// version `EOPNOTSUPP` (whatever the length), then a ragged length
    /// `EINVAL`; a header alone is no ACL (`None`: setting it removes the
    /// ACL, checked on 6.18); an unknown tag, or a named entry whose id
    /// is -1 (`make_kuid()` gives no valid id), is `EINVAL`. The ACL is
    /// not checked whole: `set_posix_acl()` calls [`Acl::valid`] only
    /// after the owner check.
    pub fn from_xattr(value: &[u8]) -> Result<Option<Acl>, XattrError> {
        if value.len() < 4 {
            return Err(XattrError::Invalid);
        }
        if u32::from_le_bytes([value[0], value[1], value[2], value[3]]) != VERSION {
            return Err(XattrError::NotSupported);
        }
        if (value.len() - 4) % 8 != 0 {
            return Err(XattrError::Invalid);
        }
        if value.len() == 4 {
            return Ok(None);
        }
        let entries = value[4..]
            .chunks_exact(8)
            .map(|e| {
                let tag = u16::from_le_bytes([e[0], e[1]]);
                let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
                // Only named entries keep an id; the others read back as
                // ACL_UNDEFINED_ID (posix_acl_to_xattr()).
                let id = match tag {
                    USER_OBJ | GROUP_OBJ | MASK | OTHER => NO_ID,
                    USER | GROUP if id != NO_ID => id,
                    _ => return Err(XattrError::Invalid),
                };
                Ok(Entry { tag, perm: u16::from_le_bytes([e[2], e[3]]), id })
            })
            .collect::<Result<Vec<Entry>, XattrError>>()?;
        Ok(Some(Acl(entries)))
    }

    /// Parses a value that must hold an ACL (one fr stored, or one an
    /// archive member carries) and checks it whole: what
    /// [`Acl::from_xattr`] refuses, a header alone and an ACL that is not
    /// [`Acl::valid`] are errors (`EINVAL` but for another version).
    pub fn parse(value: &[u8]) -> Result<Acl, XattrError> {
        match Acl::from_xattr(value)? {
            Some(acl) if acl.valid() => Ok(acl),
            _ => Err(XattrError::Invalid),
        }
    }

    /// `posix_acl_valid()`: permissions within `rwx`, and the tags in
    /// their order: the owner, named users, the owning group, named
    /// groups, a mask (required when there are named entries, else
    /// optional), other. Each base entry once; named entries in any order,
    /// repeats allowed (checked on 6.18: both are stored as given).
    pub fn valid(&self) -> bool {
        #[derive(PartialEq)]
        enum State {
            UserObj,
            User,
            Group,
            Other,
            Done,
        }
        let mut state = State::UserObj;
        let mut needs_mask = false;
        for e in &self.0 {
            if e.perm & !7 != 0 {
                return false;
            }
            state = match (e.tag, state) {
                (USER_OBJ, State::UserObj) => State::User,
                (USER, State::User) => {
                    needs_mask = true;
                    State::User
                }
                (GROUP_OBJ, State::User) => State::Group,
                (GROUP, State::Group) => {
                    needs_mask = true;
                    State::Group
                }
                (MASK, State::Group) => State::Other,
                (OTHER, State::Other) => State::Done,
                (OTHER, State::Group) if !needs_mask => State::Done,
                _ => return false,
            };
        }
        state == State::Done
    }

    /// `fs/posix_acl.c: posix_acl_permission()`: whether the caller
    /// (fs uid `fsuid`, in the groups `in_group` says) gets `want`
    /// (`MAY_READ | MAY_WRITE | MAY_EXEC`) from this ACL of a file owned
    /// by `uid` and `gid`. The first entry that names the caller decides:
    /// the owner's entry as it is, a named user's limited by the mask;
    /// among the groups the caller is in, any entry that grants `want`
    /// (limited by the mask), and if there were such groups but none
    /// grants it, nothing; else the other entry.
    pub fn permits(
        &self,
        uid: u32,
        gid: u32,
        want: u32,
        fsuid: u32,
        in_group: impl Fn(u32) -> bool,
    ) -> bool {
        let want = want & 7;
        let grants = |perm: u16| u32::from(perm) & want == want;
        let masked = |i: usize| match self.0[i + 1..].iter().find(|e| e.tag == MASK) {
            Some(mask) => grants(self.0[i].perm & mask.perm),
            None => grants(self.0[i].perm),
        };
        let mut found = false;
        for (i, e) in self.0.iter().enumerate() {
            match e.tag {
                USER_OBJ if uid == fsuid => return grants(e.perm),
                USER if e.id == fsuid => return masked(i),
                GROUP_OBJ | GROUP if in_group(if e.tag == GROUP { e.id } else { gid }) => {
                    found = true;
                    if grants(e.perm) {
                        return masked(i);
                    }
                }
                OTHER => return !found && grants(e.perm),
                _ => {}
            }
        }
        // No other entry: the kernel's -EIO, no access.
        false
    }

    pub fn to_xattr(&self) -> Vec<u8> {
        let mut v = VERSION.to_le_bytes().to_vec();
        for e in &self.0 {
            v.extend_from_slice(&e.tag.to_le_bytes());
            v.extend_from_slice(&e.perm.to_le_bytes());
            v.extend_from_slice(&e.id.to_le_bytes());
        }
        v
    }

    fn perm(&self, tag: u16) -> Option<u16> {
        self.0.iter().find(|e| e.tag == tag).map(|e| e.perm)
    }

    /// `posix_acl_equiv_mode()`: the permission bits the ACL amounts to,
    /// and whether it says nothing more than they do.
    pub fn mode(&self) -> (u32, bool) {
        let owner = self.perm(USER_OBJ).unwrap_or(0);
        let group = self.perm(MASK).or(self.perm(GROUP_OBJ)).unwrap_or(0);
        let other = self.perm(OTHER).unwrap_or(0);
        let equiv = self.0.iter().all(|e| matches!(e.tag, USER_OBJ | GROUP_OBJ | OTHER));
        (u32::from(owner) << 6 | u32::from(group) << 3 | u32::from(other), equiv)
    }

    /// `__posix_acl_chmod()`: a chmod rewrites the owner, the mask (or the
    /// owning group when there is no mask) and other entries.
    pub fn chmod(&mut self, perms: u32) {
        let has_mask = self.perm(MASK).is_some();
        for e in &mut self.0 {
            match e.tag {
                USER_OBJ => e.perm = (perms >> 6 & 7) as u16,
                MASK => e.perm = (perms >> 3 & 7) as u16,
                GROUP_OBJ if !has_mask => e.perm = (perms >> 3 & 7) as u16,
                OTHER => e.perm = (perms & 7) as u16,
                _ => {}
            }
        }
    }

    /// `posix_acl_create_masq()`: the access ACL a new file gets from its
    /// directory's default ACL, each base permission limited by the create
    /// mode `perms`; returns it with the resulting permission bits.
    pub fn create_masq(&self, perms: u32) -> (Acl, u32) {
        let mut acl = self.clone();
        let has_mask = acl.perm(MASK).is_some();
        for e in &mut acl.0 {
            let limit = match e.tag {
                USER_OBJ => perms >> 6 & 7,
                MASK => perms >> 3 & 7,
                GROUP_OBJ if !has_mask => perms >> 3 & 7,
                OTHER => perms & 7,
                _ => 7,
            };
            e.perm &= limit as u16;
        }
        let (bits, _) = acl.mode();
        (acl, (perms & !0o777) | bits)
    }
}

/// The minimal ACL of `perms`, as the entries without ids carry `NO_ID`.
pub fn from_mode(perms: u32) -> Acl {
    Acl(vec![
        Entry { tag: USER_OBJ, perm: (perms >> 6 & 7) as u16, id: NO_ID },
        Entry { tag: GROUP_OBJ, perm: (perms >> 3 & 7) as u16, id: NO_ID },
        Entry { tag: OTHER, perm: (perms & 7) as u16, id: NO_ID },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(entries: &[(u16, u16, u32)]) -> Acl {
        Acl(entries.iter().map(|&(tag, perm, id)| Entry { tag, perm, id }).collect())
    }

    #[test]
    fn xattr_form_round_trips_and_is_checked() {
        let a = acl(&[
            (USER_OBJ, 7, NO_ID),
            (USER, 5, 1000),
            (GROUP_OBJ, 5, NO_ID),
            (MASK, 5, NO_ID),
            (OTHER, 0, NO_ID),
        ]);
        assert_eq!(Acl::parse(&a.to_xattr()), Ok(a));
        // Named entries without a mask, a missing base entry, bad perms.
        assert_eq!(
            Acl::parse(
                &acl(&[
                    (USER_OBJ, 7, NO_ID),
                    (USER, 5, 1),
                    (GROUP_OBJ, 5, NO_ID),
                    (OTHER, 0, NO_ID)
                ])
                .to_xattr()
            ),
            Err(XattrError::Invalid)
        );
        assert_eq!(
            Acl::parse(&acl(&[(USER_OBJ, 7, NO_ID), (OTHER, 0, NO_ID)]).to_xattr()),
            Err(XattrError::Invalid)
        );
        assert_eq!(
            Acl::parse(
                &acl(&[(USER_OBJ, 8, NO_ID), (GROUP_OBJ, 5, NO_ID), (OTHER, 0, NO_ID)]).to_xattr()
            ),
            Err(XattrError::Invalid)
        );
        assert_eq!(Acl::parse(b"\x01\0\0\0"), Err(XattrError::NotSupported));
        assert_eq!(Acl::parse(b"\x02\0\0"), Err(XattrError::Invalid));
    }

    #[test]
    fn a_header_alone_is_no_acl() {
        // K1: setxattr of `02 00 00 00` removes the ACL (Linux 6.18).
        assert_eq!(Acl::from_xattr(b"\x02\0\0\0"), Ok(None));
        assert_eq!(Acl::parse(b"\x02\0\0\0"), Err(XattrError::Invalid));
    }

    #[test]
    fn named_entries_may_come_in_any_order_and_repeat() {
        // K2: posix_acl_valid() checks the tags' order only; the entries
        // are stored as given (Linux 6.18).
        let a = acl(&[
            (USER_OBJ, 7, NO_ID),
            (USER, 5, 1002),
            (USER, 5, 1001),
            (USER, 4, 1001),
            (GROUP_OBJ, 5, NO_ID),
            (GROUP, 1, 9),
            (GROUP, 1, 3),
            (MASK, 5, NO_ID),
            (OTHER, 0, NO_ID),
        ]);
        assert_eq!(Acl::parse(&a.to_xattr()), Ok(a.clone()));
        assert_eq!(Acl::parse(&a.to_xattr()).unwrap().to_xattr(), a.to_xattr());
        // The tags themselves must still come in order, base entries once.
        let swapped = acl(&[(GROUP_OBJ, 5, NO_ID), (USER_OBJ, 7, NO_ID), (OTHER, 0, NO_ID)]);
        assert_eq!(Acl::parse(&swapped.to_xattr()), Err(XattrError::Invalid));
        let twice = acl(&[
            (USER_OBJ, 7, NO_ID),
            (USER_OBJ, 7, NO_ID),
            (GROUP_OBJ, 5, NO_ID),
            (OTHER, 0, NO_ID),
        ]);
        assert_eq!(Acl::parse(&twice.to_xattr()), Err(XattrError::Invalid));
    }

    #[test]
    fn a_named_entry_with_id_minus_one_is_invalid() {
        // K3: make_kuid() of -1 is no valid id: EINVAL before any other check.
        for tag in [USER, GROUP] {
            let v = acl(&[
                (USER_OBJ, 7, NO_ID),
                (tag, 5, NO_ID),
                (GROUP_OBJ, 5, NO_ID),
                (MASK, 5, NO_ID),
                (OTHER, 0, NO_ID),
            ])
            .to_xattr();
            assert_eq!(Acl::from_xattr(&v), Err(XattrError::Invalid));
        }
        // An unknown tag too; a base entry's id is ignored.
        assert_eq!(Acl::from_xattr(&acl(&[(0x40, 0, 0)]).to_xattr()), Err(XattrError::Invalid));
        let base = Acl::from_xattr(&acl(&[(USER_OBJ, 7, 5)]).to_xattr()).unwrap().unwrap();
        assert_eq!(base.0[0].id, NO_ID);
    }

    #[test]
    fn the_version_is_checked_before_the_length() {
        // K12: another version is EOPNOTSUPP even with a ragged length;
        // only a value shorter than the header is EINVAL first.
        assert_eq!(Acl::from_xattr(b"\x01\0\0\0\x01"), Err(XattrError::NotSupported));
        assert_eq!(Acl::from_xattr(b"\x02\0\0\0\x01"), Err(XattrError::Invalid));
        assert_eq!(Acl::from_xattr(b"\x01\0\0"), Err(XattrError::Invalid));
    }

    #[test]
    fn permission_comes_from_the_first_entry_that_names_the_caller() {
        let a = acl(&[
            (USER_OBJ, 7, NO_ID),
            (USER, 7, 5),
            (USER, 0, 6),
            (GROUP_OBJ, 1, NO_ID),
            (GROUP, 3, 50),
            (MASK, 5, NO_ID),
            (OTHER, 1, NO_ID),
        ]);
        let none = |_| false;
        assert!(a.permits(0, 9, 7, 0, none), "the owner's entry, unmasked");
        assert!(a.permits(0, 9, 5, 5, none));
        assert!(!a.permits(0, 9, 2, 5, none), "a named user is limited by the mask");
        assert!(!a.permits(0, 9, 1, 6, none), "a named user gets nothing more from other");
        assert!(a.permits(0, 9, 1, 7, |g| g == 50), "group 50: --x within the mask");
        assert!(!a.permits(0, 9, 2, 7, |g| g == 50), "-wx masked to --x");
        assert!(!a.permits(0, 9, 4, 7, |g| g == 9), "in a group: not other's entry");
        assert!(a.permits(0, 9, 1, 7, none), "other");
    }

    #[test]
    fn mode_comes_from_the_mask_when_there_is_one() {
        let a = acl(&[
            (USER_OBJ, 6, NO_ID),
            (USER, 7, 5),
            (GROUP_OBJ, 4, NO_ID),
            (MASK, 7, NO_ID),
            (OTHER, 4, NO_ID),
        ]);
        assert_eq!(a.mode(), (0o674, false));
        assert_eq!(from_mode(0o750).mode(), (0o750, true));
    }

    #[test]
    fn chmod_rewrites_the_mask_not_the_owning_group() {
        let mut a = acl(&[
            (USER_OBJ, 6, NO_ID),
            (USER, 7, 5),
            (GROUP_OBJ, 4, NO_ID),
            (MASK, 7, NO_ID),
            (OTHER, 4, NO_ID),
        ]);
        a.chmod(0o640);
        assert_eq!(a.perm(MASK), Some(4));
        assert_eq!(a.perm(GROUP_OBJ), Some(4));
        assert_eq!(a.perm(OTHER), Some(0));
    }

    #[test]
    fn new_files_take_the_default_acl_limited_by_their_mode() {
        let d = acl(&[
            (USER_OBJ, 7, NO_ID),
            (USER, 7, 5),
            (GROUP_OBJ, 5, NO_ID),
            (MASK, 7, NO_ID),
            (OTHER, 5, NO_ID),
        ]);
        let (a, mode) = d.create_masq(0o666);
        assert_eq!(mode, 0o664);
        assert_eq!(a.perm(USER), Some(7), "named entries are not limited");
    }
}
