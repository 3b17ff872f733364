//! Extended attributes real root can set but the kernel refuses the user:
//! `security.*`, `trusted.*` and the POSIX ACLs (`system.posix_acl_*`).
//! `user.*` attributes are real and never pass through here.
//!
//! The rules follow `fs/xattr.c` (names, sizes, `XATTR_CREATE` and
//! `XATTR_REPLACE`, `xattr_permission()`) and `security/commoncap.c`
//! (`cap_inode_setxattr()`, `cap_convert_nscap()`,
//! `cap_inode_getsecurity()`).

use crate::creds::{Creds, Refused};

/// `XATTR_NAME_MAX` and `XATTR_SIZE_MAX`.
pub const NAME_MAX: usize = 255;
pub const SIZE_MAX: usize = 65536;
/// `XATTR_CREATE`, `XATTR_REPLACE`.
pub const CREATE: u32 = 1;
pub const REPLACE: u32 = 2;

pub const CAPABILITY: &[u8] = b"security.capability";
pub const ACL_ACCESS: &[u8] = b"system.posix_acl_access";
pub const ACL_DEFAULT: &[u8] = b"system.posix_acl_default";

const CAP_SYS_ADMIN: u32 = 21;
const CAP_SETFCAP: u32 = 31;
use crate::rules::CAP_FOWNER;

/// Where an attribute name lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Namespace {
    /// `user.*`: real, on the file.
    User,
    /// `trusted.*`, `security.*`, `system.posix_acl_*`: kept by fr.
    Emulated,
}

/// Why an xattr call fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XattrError {
    /// `ERANGE`: the name is empty or too long, or the buffer too small.
    Range,
    /// `EOPNOTSUPP`: no namespace fr or the kernel knows.
    NotSupported,
    /// `E2BIG`: the value is larger than `XATTR_SIZE_MAX`.
    TooBig,
    /// `EINVAL`: bad flags or a malformed capability.
    Invalid,
    /// `EPERM`.
    Perm,
    /// `EEXIST` with `XATTR_CREATE`.
    Exists,
    /// `ENODATA`: no such attribute.
    NoData,
    /// `EACCES`: a default ACL on a file that is not a directory.
    Access,
    /// The journal could not keep the change: its errno (`ENOSPC`, ...).
    Unkept(i32),
}

impl From<Refused> for XattrError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Unkept(e) => XattrError::Unkept(e),
            _ => XattrError::Perm,
        }
    }
}

impl From<crate::table::Unkept> for XattrError {
    fn from(e: crate::table::Unkept) -> Self {
        XattrError::Unkept(e.0)
    }
}

/// The namespace of `name`, as `fs/xattr.c: xattr_resolve_name()` finds
/// handlers for it; `ERANGE` for an empty or over-long name.
pub fn namespace(name: &[u8]) -> Result<Namespace, XattrError> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(XattrError::Range);
    }
    if name.starts_with(b"user.") {
        Ok(Namespace::User)
    } else if name.starts_with(b"trusted.")
        || name.starts_with(b"security.")
        || name == ACL_ACCESS
        || name == ACL_DEFAULT
    {
        Ok(Namespace::Emulated)
    } else {
        Err(XattrError::NotSupported)
    }
}

/// Whether a caller may see `name` at all (`trusted.*` needs
/// `CAP_SYS_ADMIN`; the others are visible to anyone who can look).
pub fn visible(name: &[u8], c: &Creds) -> bool {
    !name.starts_with(b"trusted.") || c.capable(CAP_SYS_ADMIN)
}

/// May `c` set or remove `name` on a file owned by `owner`?
/// (`xattr_permission()`, `cap_inode_setxattr()`, `posix_acl_xattr_set()`.)
pub fn may_change(name: &[u8], owner: u32, c: &Creds) -> Result<(), XattrError> {
    let ok = if name.starts_with(b"trusted.") {
        c.capable(CAP_SYS_ADMIN)
    } else if name == CAPABILITY {
        c.capable(CAP_SETFCAP)
    } else if name.starts_with(b"security.") {
        c.capable(CAP_SYS_ADMIN)
    } else {
        // The ACLs: the owner or CAP_FOWNER.
        owner == c.fsuid || c.capable(CAP_FOWNER)
    };
    if ok {
        Ok(())
    } else {
        Err(XattrError::Perm)
    }
}

/// `VFS_CAP_REVISION_*`, `VFS_CAP_FLAGS_EFFECTIVE`, and the sizes of the
/// v2 and v3 formats (`XATTR_CAPS_SZ_2`, `XATTR_CAPS_SZ_3`).
const CAP_V2: u32 = 0x0200_0000;
const CAP_V3: u32 = 0x0300_0000;
const CAP_EFFECTIVE: u32 = 0x0000_0001;
const CAP_SIZE_V2: usize = 20;
const CAP_SIZE_V3: usize = 24;

/// `security/commoncap.c: validheader()`, the first check of
/// `cap_convert_nscap()`, before `CAP_SETFCAP`: a v2 value of 20 bytes or
/// a v3 value of 24 bytes, whose magic is the revision, alone or with
/// `VFS_CAP_FLAGS_EFFECTIVE` (`EINVAL` else: a v1 value, another size or
/// other flag bits). Returns the magic.
pub fn capability_header(value: &[u8]) -> Result<u32, XattrError> {
    let magic = value
        .get(..4)
        .map(|m| u32::from_le_bytes([m[0], m[1], m[2], m[3]]))
        .ok_or(XattrError::Invalid)?;
    match (magic & !CAP_EFFECTIVE, value.len()) {
        (CAP_V2, CAP_SIZE_V2) | (CAP_V3, CAP_SIZE_V3) => Ok(magic),
        _ => Err(XattrError::Invalid),
    }
}

/// The value real root in the initial namespace stores for a
/// `security.capability` write, as `cap_convert_nscap()` makes it after
/// the caller's `CAP_SETFCAP` was checked: the header
/// ([`capability_header`]), then a v3 root id that maps to a user
/// (`EINVAL` for -1); a v3 value whose root id is 0 reads back as the v2
/// value (`cap_inode_getsecurity()`), so it is kept as that.
pub fn normalize_capability(value: &[u8]) -> Result<Vec<u8>, XattrError> {
    let magic = capability_header(value)?;
    if value.len() == CAP_SIZE_V2 {
        return Ok(value.to_vec());
    }
    match u32::from_le_bytes([value[20], value[21], value[22], value[23]]) {
        u32::MAX => Err(XattrError::Invalid),
        0 => {
            let mut v2 = value[..CAP_SIZE_V2].to_vec();
            v2[..4].copy_from_slice(&((magic & CAP_EFFECTIVE) | CAP_V2).to_le_bytes());
            Ok(v2)
        }
        _ => Ok(value.to_vec()),
    }
}

/// Checks a `setxattr` request's flags and size.
pub fn check_set(flags: u32, size: usize) -> Result<(), XattrError> {
    if flags & !(CREATE | REPLACE) != 0 {
        return Err(XattrError::Invalid);
    }
    if size > SIZE_MAX {
        return Err(XattrError::TooBig);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_to_their_namespace() {
        assert_eq!(namespace(b"user.x"), Ok(Namespace::User));
        assert_eq!(namespace(b"security.capability"), Ok(Namespace::Emulated));
        assert_eq!(namespace(b"trusted.overlay.opaque"), Ok(Namespace::Emulated));
        assert_eq!(namespace(ACL_DEFAULT), Ok(Namespace::Emulated));
        assert_eq!(namespace(b"system.nfs4_acl"), Err(XattrError::NotSupported));
        assert_eq!(namespace(b"nonamespace"), Err(XattrError::NotSupported));
        assert_eq!(namespace(b""), Err(XattrError::Range));
        assert_eq!(namespace(&[b'u'; 256]), Err(XattrError::Range));
    }

    #[test]
    fn root_may_change_everything_and_users_only_their_acls() {
        let root = Creds::root();
        let mut user = Creds::root();
        user.setresuid(5, 5, 5).unwrap();
        for name in [&b"trusted.a"[..], CAPABILITY, b"security.x", ACL_ACCESS] {
            assert_eq!(may_change(name, 0, &root), Ok(()));
        }
        assert_eq!(may_change(CAPABILITY, 5, &user), Err(XattrError::Perm));
        assert_eq!(may_change(ACL_ACCESS, 5, &user), Ok(()));
        assert_eq!(may_change(ACL_ACCESS, 6, &user), Err(XattrError::Perm));
        assert!(!visible(b"trusted.a", &user));
        assert!(visible(b"security.x", &user));
    }

    fn cap(magic: u32, len: usize, rootid: u32) -> Vec<u8> {
        let mut v = vec![0u8; len];
        v[..4].copy_from_slice(&magic.to_le_bytes());
        v[4] = 0x20; // cap_net_raw
        if len == CAP_SIZE_V3 {
            v[20..].copy_from_slice(&rootid.to_le_bytes());
        }
        v
    }

    #[test]
    fn only_v2_and_v3_headers_with_the_effective_flag_alone_are_valid() {
        // K6, each checked on Linux 6.18 with os.setxattr as root.
        assert_eq!(capability_header(&cap(0x0100_0000, 12, 0)), Err(XattrError::Invalid), "v1");
        assert_eq!(capability_header(&cap(0x0200_0002, 20, 0)), Err(XattrError::Invalid));
        assert_eq!(capability_header(&cap(0x0280_0000, 20, 0)), Err(XattrError::Invalid));
        assert_eq!(capability_header(&cap(0x0300_0100, 24, 5)), Err(XattrError::Invalid));
        assert_eq!(capability_header(&cap(CAP_V2 | 1, 20, 0)), Ok(CAP_V2 | 1));
        assert_eq!(capability_header(&cap(CAP_V3, 24, 5)), Ok(CAP_V3));
        assert_eq!(normalize_capability(&cap(0x0100_0000, 12, 0)), Err(XattrError::Invalid));
        // A v3 root id of -1 maps to no user.
        assert_eq!(normalize_capability(&cap(CAP_V3, 24, u32::MAX)), Err(XattrError::Invalid));
        assert_eq!(normalize_capability(&cap(CAP_V3 | 1, 24, 5)), Ok(cap(CAP_V3 | 1, 24, 5)));
    }

    #[test]
    fn capabilities_are_stored_as_root_in_the_initial_namespace_would() {
        let mut v3 = vec![0u8; 24];
        v3[..4].copy_from_slice(&(CAP_V3 | 1).to_le_bytes());
        v3[4] = 0x20; // cap_net_raw
        let v2 = normalize_capability(&v3).unwrap();
        assert_eq!(v2.len(), 20);
        assert_eq!(u32::from_le_bytes([v2[0], v2[1], v2[2], v2[3]]), CAP_V2 | 1);
        v3[20] = 7; // rootid 7 stays v3
        assert_eq!(normalize_capability(&v3).unwrap().len(), 24);
        assert_eq!(normalize_capability(&v3[..20]), Err(XattrError::Invalid));
        assert_eq!(normalize_capability(b"ab"), Err(XattrError::Invalid));
    }
}
