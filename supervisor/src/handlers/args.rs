//! The readers of a call's arguments, as the kernel reads them: names
//! (`fs/namei.c: getname_flags()`), the `*at()` calls' flags, and ids in
//! the widths each ABI passes them in. They read the target only through
//! [`Request`], so the decoding tests' fake targets drive them too.

use std::os::fd::OwnedFd;

use rustix::io::Errno;

use super::{Context, AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW};
use crate::request::Request;
use crate::resolve::LookupFlags;

/// The width of the ids a call takes and returns: i386 has 16-bit
/// `chown`, `setuid`, `getgroups`, ... beside its `*32` calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    W16,
    W32,
}

impl Width {
    /// An id argument, as the kernel takes it: a `uid_t`, or an
    /// `old_uid_t` of the low 16 bits widened by
    /// `include/linux/highuid.h: low2highuid()` (`(old_uid_t)-1` is -1).
    pub fn id(self, arg: u32) -> u32 {
        match self {
            Width::W32 => arg,
            Width::W16 if arg as u16 == u16::MAX => fr_emulator::creds::UNCHANGED,
            Width::W16 => u32::from(arg as u16),
        }
    }

    /// An id as the call writes it into the target (`high2lowuid()`: ids
    /// above 65535 are the overflow id in 16 bits).
    pub fn out(self, id: u32) -> Vec<u8> {
        match self {
            Width::W32 => id.to_le_bytes().to_vec(),
            Width::W16 => fr_emulator::abi::high2low(id).to_le_bytes().to_vec(),
        }
    }

    /// An id as the call returns it.
    pub fn value(self, id: u32) -> i64 {
        match self {
            Width::W32 => i64::from(id),
            Width::W16 => i64::from(fr_emulator::abi::high2low(id)),
        }
    }
}

/// Reads the path argument at `addr` of a call that takes `AT_*` flags, as
/// `fs/namei.c: getname_flags()` does: without `AT_EMPTY_PATH` an empty
/// string is `ENOENT`; with it, an empty string is "no name" (`None`).
pub fn read_name(req: &Request<'_>, addr: u64, flags: i32) -> Result<Option<Vec<u8>>, Errno> {
    let path = req.read_path(addr)?;
    match (path.is_empty(), flags & AT_EMPTY_PATH != 0) {
        (false, _) => Ok(Some(path)),
        (true, true) => Ok(None),
        (true, false) => Err(Errno::NOENT),
    }
}

/// As [`read_name`], but a NULL pointer with `AT_EMPTY_PATH` is "no name"
/// too, as `fs/namei.c: getname_maybe_null()` allows for the stat family
/// (Linux 6.11). Elsewhere NULL is `EFAULT`.
pub fn read_name_maybe_null(
    req: &Request<'_>,
    addr: u64,
    flags: i32,
) -> Result<Option<Vec<u8>>, Errno> {
    if addr == 0 && flags & AT_EMPTY_PATH != 0 {
        return Ok(None);
    }
    read_name(req, addr, flags)
}

/// Reads a path argument of a call without flags (`chown`, `stat`, ...):
/// empty is `ENOENT`.
pub fn read_plain_path(req: &Request<'_>, addr: u64) -> Result<Vec<u8>, Errno> {
    read_name(req, addr, 0).map(Option::unwrap_or_default)
}

/// The name of the file a change-making `*at()` call names (`fchownat`,
/// `fchmodat2`, `execveat`), and how to look it up: its flags may only be
/// `AT_SYMLINK_NOFOLLOW` and `AT_EMPTY_PATH` (`EINVAL` before anything
/// else), then its name is read.
pub fn at_name(
    req: &Request<'_>,
    path_addr: u64,
    flags: i32,
) -> Result<(Vec<u8>, LookupFlags), Errno> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::INVAL);
    }
    let path = read_name(req, path_addr, flags)?.unwrap_or_default();
    Ok((path, LookupFlags::from_at(flags)))
}

/// The file [`at_name`] names, looked up from the target's `dirfd`.
pub fn at_file(
    ctx: &Context,
    req: &Request<'_>,
    dirfd: i32,
    path_addr: u64,
    flags: i32,
) -> Result<OwnedFd, Errno> {
    let (path, how) = at_name(req, path_addr, flags)?;
    ctx.lookup(req, dirfd, &path, how)
}
