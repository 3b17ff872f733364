//! The Linux ABI numbers that fr's syscall table, its filter conditions and
//! its handlers share, defined once (`include/uapi/asm-generic/fcntl.h`,
//! `include/uapi/linux/fcntl.h`, `include/uapi/linux/prctl.h`,
//! `include/uapi/linux/seccomp.h`, `include/uapi/linux/stat.h`,
//! `include/uapi/linux/capability.h`). The same on every ABI fr filters
//! (x86_64, i386, x32).

// open(2) flags.
pub const O_WRONLY: u32 = 0o1;
pub const O_RDWR: u32 = 0o2;
pub const O_CREAT: u32 = 0o100;
pub const O_EXCL: u32 = 0o200;
pub const O_TRUNC: u32 = 0o1000;
pub const O_APPEND: u32 = 0o2000;
pub const O_NOATIME: u32 = 0o1_000_000;
pub const O_DIRECTORY: u32 = 0o200_000;
pub const O_NOFOLLOW: u32 = 0o400_000;
pub const O_CLOEXEC: u32 = 0o2_000_000;
pub const O_PATH: u32 = 0o10_000_000;
/// `__O_TMPFILE`, the bit that with `O_DIRECTORY` makes `O_TMPFILE`.
pub const O_TMPFILE_BIT: u32 = 0o20_000_000;
/// `O_TMPFILE` is `__O_TMPFILE | O_DIRECTORY`.
pub const O_TMPFILE: u32 = O_TMPFILE_BIT | O_DIRECTORY;

// The *at() calls' flags.
pub const AT_FDCWD: i32 = -100;
pub const AT_SYMLINK_NOFOLLOW: i32 = 0x100;
pub const AT_REMOVEDIR: i32 = 0x200;
/// `faccessat2(2)`: check with the effective ids (the same number as
/// `AT_REMOVEDIR`, for another call).
pub const AT_EACCESS: i32 = 0x200;
pub const AT_SYMLINK_FOLLOW: i32 = 0x400;
pub const AT_NO_AUTOMOUNT: i32 = 0x800;
pub const AT_EMPTY_PATH: i32 = 0x1000;
pub const AT_STATX_SYNC_TYPE: i32 = 0x6000;

// renameat2(2) flags.
pub const RENAME_NOREPLACE: u32 = 1;
pub const RENAME_EXCHANGE: u32 = 1 << 1;
pub const RENAME_WHITEOUT: u32 = 1 << 2;

// The prctl(2) options that read or change capability state.
pub const PR_GET_KEEPCAPS: i32 = 7;
pub const PR_SET_KEEPCAPS: i32 = 8;
pub const PR_CAPBSET_READ: i32 = 23;
pub const PR_CAPBSET_DROP: i32 = 24;
pub const PR_GET_SECUREBITS: i32 = 27;
pub const PR_SET_SECUREBITS: i32 = 28;

// seccomp(2).
pub const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 1 << 3;
pub const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

// statx(2) attributes.
pub const STATX_ATTR_IMMUTABLE: u64 = 0x10;
pub const STATX_ATTR_APPEND: u64 = 0x20;

// capget(2)/capset(2) header versions.
pub const CAP_V1: u32 = 0x1998_0330;
pub const CAP_V2: u32 = 0x2007_1026;
pub const CAP_V3: u32 = 0x2008_0522;
