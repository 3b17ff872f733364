//! What the kernel makes of a call's arguments and memory, written from the
//! kernel sources each function cites and not from fr's code, so that the
//! decoders and this are two readings of the kernel. It reads the fake's
//! pages directly: no fate, no `still_waiting`.

use fr_supervisor::arch::Arch;
use rustix::io::Errno;

use super::fake::{byte, Pages};

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_SYSCALL_BIT: i32 = 0x4000_0000;

/// The ABI of `seccomp_data` (`arch/x86/entry/syscall_64.c`, `do_syscall_x32()`):
/// x32 enters with the x86_64 audit arch and `__X32_SYSCALL_BIT`.
pub fn abi(audit: u32, nr: i32) -> Option<(Arch, i32)> {
    match audit {
        AUDIT_ARCH_X86_64 if nr & X32_SYSCALL_BIT != 0 => Some((Arch::X32, nr & !X32_SYSCALL_BIT)),
        AUDIT_ARCH_X86_64 => Some((Arch::X86_64, nr)),
        AUDIT_ARCH_I386 => Some((Arch::I386, nr)),
        _ => None,
    }
}

pub fn audit(arch: Arch) -> u32 {
    match arch {
        Arch::I386 => AUDIT_ARCH_I386,
        Arch::X86_64 | Arch::X32 => AUDIT_ARCH_X86_64,
    }
}

/// One call's registers as the kernel's entry code hands them on.
#[derive(Clone, Copy, Debug)]
pub struct Regs {
    pub arch: Arch,
    pub args: [u64; 6],
}

impl Regs {
    /// A pointer: i386's `int 0x80` and x32 pass 32-bit ones
    /// (`compat_ptr()`; x32's are zero-extended by the ABI).
    pub fn ptr(&self, i: usize) -> u64 {
        match self.arch {
            Arch::X86_64 => self.args[i],
            Arch::I386 | Arch::X32 => self.args[i] & 0xffff_ffff,
        }
    }

    /// An `unsigned long`/`size_t`: 32 bits on i386 (`SC_IA32_REGS_TO_ARGS`
    /// takes the low half of each register); x32 calls the 64-bit entry.
    pub fn ulong(&self, i: usize) -> u64 {
        match self.arch {
            Arch::I386 => self.args[i] & 0xffff_ffff,
            Arch::X86_64 | Arch::X32 => self.args[i],
        }
    }

    /// An `int` or `unsigned int`: the low 32 bits on every ABI.
    pub fn int(&self, i: usize) -> i32 {
        self.args[i] as u32 as i32
    }

    pub fn uint(&self, i: usize) -> u32 {
        self.args[i] as u32
    }
}

/// `copy_from_user()`: all `len` bytes, or `EFAULT`.
pub fn copy(pages: &Pages, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
    (0..len as u64)
        .map(|i| addr.checked_add(i).and_then(|a| byte(pages, a)).ok_or(Errno::FAULT))
        .collect()
}

/// What `strncpy_from_user(dst, addr, max)` finds.
#[derive(Debug, PartialEq, Eq)]
pub enum Str {
    /// The bytes before the NUL.
    Nul(Vec<u8>),
    /// `max` bytes and no NUL among them (it returns `max`).
    Full,
    /// A byte that cannot be read before the NUL (`-EFAULT`).
    Fault,
}

/// `lib/strncpy_from_user.c`: byte by byte (in effect) until a NUL, a fault
/// or `max` bytes.
pub fn strncpy(pages: &Pages, addr: u64, max: usize) -> Str {
    let mut s = Vec::new();
    for i in 0..max as u64 {
        match addr.checked_add(i).and_then(|a| byte(pages, a)) {
            None => return Str::Fault,
            Some(0) => return Str::Nul(s),
            Some(b) => s.push(b),
        }
    }
    Str::Full
}

pub const PATH_MAX: usize = 4096;
pub const AT_SYMLINK_NOFOLLOW: i32 = 0x100;
pub const AT_EMPTY_PATH: i32 = 0x1000;

/// `fs/namei.c: getname_flags()`: `EFAULT`, `ENAMETOOLONG` without a NUL in
/// `PATH_MAX` bytes, and an empty name is `ENOENT` unless `LOOKUP_EMPTY`
/// (`AT_EMPTY_PATH`), when it is "no name" (`None`).
pub fn getname(pages: &Pages, addr: u64, flags: i32) -> Result<Option<Vec<u8>>, Errno> {
    match strncpy(pages, addr, PATH_MAX) {
        Str::Fault => Err(Errno::FAULT),
        Str::Full => Err(Errno::NAMETOOLONG),
        Str::Nul(s) if s.is_empty() && flags & AT_EMPTY_PATH != 0 => Ok(None),
        Str::Nul(s) if s.is_empty() => Err(Errno::NOENT),
        Str::Nul(s) => Ok(Some(s)),
    }
}

/// `include/linux/fs.h: getname_maybe_null()` (6.11): with `AT_EMPTY_PATH`
/// a NULL pointer is no name too.
pub fn getname_maybe_null(pages: &Pages, addr: u64, flags: i32) -> Result<Option<Vec<u8>>, Errno> {
    if flags & AT_EMPTY_PATH != 0 && addr == 0 {
        return Ok(None);
    }
    getname(pages, addr, flags)
}

/// `getname()` of a call without flags.
pub fn plain_path(pages: &Pages, addr: u64) -> Result<Vec<u8>, Errno> {
    getname(pages, addr, 0).map(Option::unwrap_or_default)
}

/// `include/linux/uaccess.h: copy_struct_from_user()`: the bytes beyond the
/// kernel's struct first (`check_zeroed_user()`: a fault before a nonzero
/// byte is `EFAULT`, a nonzero byte `E2BIG`), then the struct itself
/// (`EFAULT`); a shorter user struct is zero-extended.
pub fn copy_struct(
    pages: &Pages,
    addr: u64,
    ksize: usize,
    usize_: usize,
) -> Result<Vec<u8>, Errno> {
    for i in ksize..usize_ {
        match addr.checked_add(i as u64).and_then(|a| byte(pages, a)) {
            None => return Err(Errno::FAULT),
            Some(0) => {}
            Some(_) => return Err(Errno::TOOBIG),
        }
    }
    let mut s = copy(pages, addr, ksize.min(usize_))?;
    s.resize(ksize, 0);
    Ok(s)
}

/// The flags `fs/stat.c: vfs_statx()` takes: `AT_SYMLINK_NOFOLLOW`,
/// `AT_NO_AUTOMOUNT`, `AT_EMPTY_PATH`, `AT_STATX_SYNC_TYPE`.
pub const STAT_FLAGS: i32 = AT_SYMLINK_NOFOLLOW | 0x800 | AT_EMPTY_PATH | 0x6000;

/// What `fs/stat.c: vfs_fstatat()` (and `statx()`) stat: the name is read
/// first; no name with a descriptor is the descriptor (`Ok(Err(fd))`);
/// otherwise `vfs_statx()` checks the flags (`EINVAL`) before
/// `filename_lookup()` meets the name's own error.
pub fn stat_at(
    pages: &Pages,
    dirfd: i32,
    name: u64,
    flags: i32,
) -> Result<Result<Vec<u8>, i32>, Errno> {
    let name = getname_maybe_null(pages, name, flags);
    if name == Ok(None) && dirfd >= 0 {
        return Ok(Err(dirfd));
    }
    if flags & !STAT_FLAGS != 0 {
        return Err(Errno::INVAL);
    }
    Ok(Ok(name?.unwrap_or_default()))
}

pub const XATTR_NAME_MAX: usize = 255;
pub const XATTR_SIZE_MAX: usize = 65536;

/// Whether fr keeps an attribute of this name (`trusted.*`, `security.*`,
/// the POSIX ACLs) or leaves it to the file (`user.*`, and any other
/// namespace: the kernel says `EOPNOTSUPP` when it finds no handler,
/// `xattr_resolve_name()`, after its own earlier checks, and a file
/// system may have `system.*` names of its own).
pub fn xattr_kept(name: &[u8]) -> bool {
    name.starts_with(b"trusted.")
        || name.starts_with(b"security.")
        || name == b"system.posix_acl_access"
        || name == b"system.posix_acl_default"
}

/// `fs/xattr.c: import_xattr_name()`: `strncpy_from_user()` of at most
/// `XATTR_NAME_MAX + 1` bytes; none or all of them is `ERANGE`.
pub fn xattr_name(pages: &Pages, addr: u64) -> Result<Vec<u8>, Errno> {
    match strncpy(pages, addr, XATTR_NAME_MAX + 1) {
        Str::Fault => Err(Errno::FAULT),
        Str::Full => Err(Errno::RANGE),
        Str::Nul(s) if s.is_empty() => Err(Errno::RANGE),
        Str::Nul(s) => Ok(s),
    }
}

/// An attribute fr keeps: name, value, flags.
pub type Kept = (Vec<u8>, Vec<u8>, u32);

/// `fs/xattr.c: setxattr_copy()`: flags (`EINVAL`), name, size (`E2BIG`),
/// value. `None` for a name fr leaves to the file.
pub fn setxattr_copy(
    pages: &Pages,
    name: u64,
    value: u64,
    size: u64,
    flags: u32,
) -> Result<Option<Kept>, Errno> {
    if flags & !3 != 0 {
        return Err(Errno::INVAL);
    }
    let name = xattr_name(pages, name)?;
    if !xattr_kept(&name) {
        return Ok(None);
    }
    if size > XATTR_SIZE_MAX as u64 {
        return Err(Errno::TOOBIG);
    }
    Ok(Some((name, copy(pages, value, size as usize)?, flags)))
}

/// `struct xattr_args` as `setxattrat()` and `getxattrat()` take it:
/// `usize` below `XATTR_ARGS_SIZE_VER0` is `EINVAL`, above a page `E2BIG`,
/// then `copy_struct_from_user()`. The value pointer is a `__u64` that
/// `u64_to_user_ptr()` takes whole, on every ABI.
pub fn xattr_args(pages: &Pages, r: &Regs) -> Result<(u64, u64, u32), Errno> {
    let usize_ = r.ulong(5);
    if usize_ < 16 {
        return Err(Errno::INVAL);
    }
    if usize_ > 4096 {
        return Err(Errno::TOOBIG);
    }
    let s = copy_struct(pages, r.ptr(4), 16, usize_ as usize)?;
    let value = u64::from_le_bytes(s[0..8].try_into().unwrap());
    let size = u32::from_le_bytes(s[8..12].try_into().unwrap());
    let flags = u32::from_le_bytes(s[12..16].try_into().unwrap());
    Ok((value, u64::from(size), flags))
}

/// The `*xattrat` calls' `at_flags` (`EINVAL` for any other).
pub fn xattrat_flags(r: &Regs) -> Result<i32, Errno> {
    let flags = r.int(2);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::INVAL);
    }
    Ok(flags)
}

pub const CAP_V1: u32 = 0x1998_0330;
pub const CAP_V2: u32 = 0x2007_1026;
pub const CAP_V3: u32 = 0x2008_0522;

/// `kernel/capability.c: cap_validate_magic()`: `get_user()` of the
/// version alone; an unknown one gets `_KERNEL_CAPABILITY_VERSION` written
/// back (`put_user()`: `EFAULT` if it cannot be) and is `EINVAL`. The
/// number of data structs of a known one. `write` is the `put_user()`.
pub fn cap_validate_magic(
    pages: &Pages,
    header: u64,
    write: &mut dyn FnMut(u64, &[u8]) -> bool,
) -> Result<usize, Errno> {
    let version = u32::from_le_bytes(copy(pages, header, 4)?.try_into().unwrap());
    match version {
        CAP_V1 => Ok(1),
        CAP_V2 | CAP_V3 => Ok(2),
        _ if write(header, &CAP_V3.to_le_bytes()) => Err(Errno::INVAL),
        _ => Err(Errno::FAULT),
    }
}

/// The header's pid, `get_user()`'d after the version.
pub fn cap_pid(pages: &Pages, header: u64) -> Result<i32, Errno> {
    let pid = copy(pages, header.checked_add(4).ok_or(Errno::FAULT)?, 4)?;
    Ok(i32::from_le_bytes(pid.try_into().unwrap()))
}

/// `capget(header, data)` up to the target's sets: with no data pointer
/// only the header is asked for, and an unknown version is not an error
/// (`None`: the call returns 0); a negative pid is `EINVAL`.
pub fn capget(
    pages: &Pages,
    r: &Regs,
    write: &mut dyn FnMut(u64, &[u8]) -> bool,
) -> Result<Option<(usize, i32)>, Errno> {
    let tocopy = cap_validate_magic(pages, r.ptr(0), write);
    if r.ptr(1) == 0 {
        return match tocopy {
            Ok(_) | Err(Errno::INVAL) => Ok(None),
            Err(e) => Err(e),
        };
    }
    let tocopy = tocopy?;
    let pid = cap_pid(pages, r.ptr(0))?;
    if pid < 0 {
        return Err(Errno::INVAL);
    }
    Ok(Some((tocopy, pid)))
}

pub const CAP_VALID_MASK: u64 = (1 << 41) - 1;

/// `capset()`'s data: `tocopy` structs `{ effective, permitted, inheritable }`
/// (`copy_from_user()`), joined by `mk_kernel_cap()` (low word first) and
/// masked to the valid capabilities.
pub fn capset_data(pages: &Pages, data: u64, tocopy: usize) -> Result<[u64; 3], Errno> {
    let raw = copy(pages, data, 12 * tocopy)?;
    let word = |s: usize, k: usize| {
        u64::from(u32::from_le_bytes(raw[s * 12 + k * 4..][..4].try_into().unwrap()))
    };
    let set =
        |k: usize| (0..tocopy).fold(0, |acc, s| acc | word(s, k) << (32 * s)) & CAP_VALID_MASK;
    Ok([set(0), set(1), set(2)])
}

pub const NGROUPS_MAX: usize = 65536;

/// `kernel/groups.c: setgroups()` after `may_setgroups()`: more than
/// `NGROUPS_MAX` is `EINVAL`, then `groups_from_user()` (or
/// `groups16_from_user()`) takes each in turn: `EFAULT` if it cannot be
/// read, `EINVAL` if it is no valid id (`make_kgid()` of -1, which a
/// 16-bit `(old_gid_t)-1` becomes by `low2highgid()`).
pub fn setgroups(pages: &Pages, r: &Regs, wide: bool) -> Result<Vec<u32>, Errno> {
    let size = r.int(0) as u32 as usize;
    if size > NGROUPS_MAX {
        return Err(Errno::INVAL);
    }
    let each = if wide { 4 } else { 2 };
    let mut groups = Vec::new();
    for i in 0..size {
        let at = r.ptr(1).checked_add((i * each) as u64).ok_or(Errno::FAULT)?;
        let b = copy(pages, at, each)?;
        let gid = if wide {
            u32::from_le_bytes(b.try_into().unwrap())
        } else {
            id16(u32::from(u16::from_le_bytes(b.try_into().unwrap())))
        };
        if gid == u32::MAX {
            return Err(Errno::INVAL);
        }
        groups.push(gid);
    }
    Ok(groups)
}

/// `include/linux/highuid.h: low2highuid()` of the low 16 bits of a
/// register (`old_uid_t`).
pub fn id16(arg: u32) -> u32 {
    match arg as u16 {
        u16::MAX => u32::MAX,
        v => u32::from(v),
    }
}

// include/uapi/asm-generic/fcntl.h, as x86 has them.
pub const O_WRONLY: u32 = 0o1;
pub const O_RDWR: u32 = 0o2;
pub const O_CREAT: u32 = 0o100;
pub const O_EXCL: u32 = 0o200;
pub const O_TRUNC: u32 = 0o1000;
pub const O_DIRECTORY: u32 = 0o200_000;
pub const O_NOFOLLOW: u32 = 0o400_000;
pub const O_CLOEXEC: u32 = 0o2_000_000;
pub const O_PATH: u32 = 0o10_000_000;
pub const O_TMPFILE_BIT: u32 = 0o20_000_000;
pub const O_TMPFILE: u32 = O_TMPFILE_BIT | O_DIRECTORY;
/// `VALID_OPEN_FLAGS` (`include/linux/fcntl.h`): the access modes and every
/// flag from `O_CREAT` to `__O_TMPFILE`.
pub const VALID_OPEN_FLAGS: u32 = 0o3 | 0o37_777_700;
/// `O_PATH_FLAGS`.
pub const O_PATH_FLAGS: u32 = O_DIRECTORY | O_NOFOLLOW | O_PATH | O_CLOEXEC;

/// What an open makes, as fr would make it: the file is a temporary one,
/// `O_EXCL`, close-on-exec, its permission bits, and the flags the file is
/// opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Made {
    pub tmpfile: bool,
    pub excl: bool,
    pub cloexec: bool,
    pub perms: u32,
    pub flags: u32,
}

/// The file an open makes, `None` when it makes none or the kernel refuses
/// the flags (`EINVAL`), which fr leaves to the kernel. `openat2` takes
/// `flags` and `mode` as they are (`fs/open.c: build_open_flags()` refuses
/// unknown flags, and a mode beyond `S_IALLUGO`, or any mode when nothing
/// is created); the other opens as `build_open_how()` cleans them (unknown
/// flags dropped, `O_PATH` keeping only `O_PATH_FLAGS`, the mode only when
/// creating). Then `build_open_flags()` refuses `O_CREAT | O_DIRECTORY`
/// (6.4), an `O_TMPFILE` without exactly `__O_TMPFILE | O_DIRECTORY` or
/// opened read-only, and `O_PATH` with other flags.
pub fn open_makes(flags: u64, mode: u64, openat2: bool) -> Option<Made> {
    let creates = |f: u64| f & u64::from(O_CREAT | O_TMPFILE_BIT) != 0;
    let (flags, mode) = if openat2 {
        if flags & !u64::from(VALID_OPEN_FLAGS) != 0 {
            return None;
        }
        if creates(flags) && mode & !0o7777 != 0 || !creates(flags) && mode != 0 {
            return None;
        }
        (flags as u32, mode as u32)
    } else {
        let mut f = flags as u32 & VALID_OPEN_FLAGS;
        if f & O_PATH != 0 {
            f &= O_PATH_FLAGS;
        }
        (f, if creates(u64::from(f)) { mode as u32 & 0o7777 } else { 0 })
    };
    if flags & (O_DIRECTORY | O_CREAT) == O_DIRECTORY | O_CREAT {
        return None;
    }
    if flags & O_TMPFILE_BIT != 0
        && (flags & (O_TMPFILE | O_CREAT) != O_TMPFILE || flags & (O_WRONLY | O_RDWR) == 0)
    {
        return None;
    }
    if flags & O_PATH != 0 && flags & !O_PATH_FLAGS != 0 {
        return None;
    }
    if !creates(u64::from(flags)) {
        return None;
    }
    Some(Made {
        tmpfile: flags & O_TMPFILE_BIT != 0,
        excl: flags & O_EXCL != 0,
        cloexec: flags & O_CLOEXEC != 0,
        perms: mode,
        flags: flags & !(O_CREAT | O_EXCL | O_CLOEXEC | O_TMPFILE),
    })
}

/// `openat2`'s `struct open_how { u64 flags; u64 mode; u64 resolve; }` of
/// `usize` bytes (`EINVAL` below `OPEN_HOW_SIZE_VER0`, `E2BIG` above a
/// page, then `copy_struct_from_user()`), as [`open_makes`] takes it when
/// no `RESOLVE_*` flag asks for a restricted lookup (which fr leaves to
/// the kernel too).
pub fn open_how(pages: &Pages, r: &Regs) -> Option<Made> {
    let usize_ = r.ulong(3);
    if !(24..=4096).contains(&usize_) {
        return None;
    }
    let how = copy_struct(pages, r.ptr(2), 24, usize_ as usize).ok()?;
    let word = |i: usize| u64::from_le_bytes(how[i * 8..i * 8 + 8].try_into().unwrap());
    if word(2) != 0 {
        return None;
    }
    open_makes(word(0), word(1), true)
}
