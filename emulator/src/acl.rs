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

/// An ACL with its entries in the kernel's order (by tag, then id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acl(pub Vec<Entry>);

impl Acl {
    /// Parses and checks an xattr value as `posix_acl_from_xattr()` and
    /// `posix_acl_valid()` do: a short or ragged value is `EINVAL`, another
    /// version `EOPNOTSUPP`, a malformed ACL `EINVAL`.
    pub fn parse(value: &[u8]) -> Result<Acl, XattrError> {
        if value.len() < 4 || (value.len() - 4) % 8 != 0 {
            return Err(XattrError::Invalid);
        }
        if u32::from_le_bytes([value[0], value[1], value[2], value[3]]) != VERSION {
            return Err(XattrError::NotSupported);
        }
        let entries: Vec<Entry> = value[4..]
            .chunks_exact(8)
            .map(|e| {
                let tag = u16::from_le_bytes([e[0], e[1]]);
                // Only named entries keep an id; the others read back as
                // ACL_UNDEFINED_ID (posix_acl_to_xattr()).
                let id = if matches!(tag, USER | GROUP) {
                    u32::from_le_bytes([e[4], e[5], e[6], e[7]])
                } else {
                    NO_ID
                };
                Entry { tag, perm: u16::from_le_bytes([e[2], e[3]]), id }
            })
            .collect();
        let acl = Acl(entries);
        if acl.valid() {
            Ok(acl)
        } else {
            Err(XattrError::Invalid)
        }
    }

    /// `posix_acl_valid()`: each base entry once, in tag order, named
    /// entries sorted by id without repeats, a mask whenever there are
    /// named entries, permissions within `rwx`.
    fn valid(&self) -> bool {
        let mut last_tag = 0u16;
        let mut last_id: Option<u32> = None;
        let (mut named, mut mask, mut base) = (false, false, 0);
        for e in &self.0 {
            if e.perm & !7 != 0
                || e.tag < last_tag
                || !matches!(e.tag, USER_OBJ | USER | GROUP_OBJ | GROUP | MASK | OTHER)
            {
                return false;
            }
            if e.tag != last_tag {
                last_id = None;
            }
            match e.tag {
                USER | GROUP => {
                    if last_id.is_some_and(|l| e.id <= l) {
                        return false;
                    }
                    last_id = Some(e.id);
                    named = true;
                }
                t => {
                    if t == last_tag {
                        return false;
                    }
                    if t == MASK {
                        mask = true;
                    } else {
                        base += 1;
                    }
                }
            }
            last_tag = e.tag;
        }
        base == 3 && (mask || !named)
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
