//! The system calls the supervisor makes that no safe crate wraps: the
//! seccomp notification ioctls, installing a filter, and reading and
//! writing another process's memory. All of the crate's `unsafe` is here.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::io::Errno;

/// `struct seccomp_data` from `<linux/seccomp.h>`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

/// `struct seccomp_notif`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SeccompNotif {
    pub id: u64,
    pub pid: u32,
    pub flags: u32,
    pub data: SeccompData,
}

/// `struct seccomp_notif_resp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct SeccompNotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// `struct seccomp_notif_addfd`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct SeccompNotifAddfd {
    id: u64,
    flags: u32,
    srcfd: u32,
    newfd: u32,
    newfd_flags: u32,
}

/// `struct sock_filter`, one classic BPF instruction.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

// `_IOC(dir, '!', nr, size)` from `<linux/seccomp.h>`.
const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | (0x21 << 8) | nr
}
const IOC_WRITE: u32 = 1;
const IOC_READ_WRITE: u32 = 3;
const NOTIF_RECV: u32 = ioc(IOC_READ_WRITE, 0, size_of::<SeccompNotif>());
const NOTIF_SEND: u32 = ioc(IOC_READ_WRITE, 1, size_of::<SeccompNotifResp>());
const NOTIF_ID_VALID: u32 = ioc(IOC_WRITE, 2, size_of::<u64>());
const NOTIF_ADDFD: u32 = ioc(IOC_WRITE, 3, size_of::<SeccompNotifAddfd>());
const NOTIF_SET_FLAGS: u32 = ioc(IOC_WRITE, 4, size_of::<u64>());
/// `SECCOMP_ADDFD_FLAG_SEND` (5.14): add the fd and answer with its number.
const SECCOMP_ADDFD_FLAG_SEND: u32 = 1 << 1;

pub const SECCOMP_SET_MODE_FILTER: u32 = 1;
pub use crate::linux::{SECCOMP_FILTER_FLAG_NEW_LISTENER, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV};
pub const SECCOMP_USER_NOTIF_FLAG_CONTINUE: u32 = 1;
pub const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;

fn check(ret: libc::c_long) -> Result<libc::c_long, Errno> {
    if ret < 0 {
        Err(Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)))
    } else {
        Ok(ret)
    }
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`: installs `filter` on the
/// calling thread and returns the notification listener.
///
/// Called in the forked workload before `execve`, so it allocates nothing.
pub fn install_filter(filter: &[SockFilter], flags: u32) -> Result<OwnedFd, Errno> {
    let len = u16::try_from(filter.len()).map_err(|_| Errno::INVAL)?;
    let prog = SockFprog { len, filter: filter.as_ptr() };
    // SAFETY: `prog` points to `len` valid instructions that outlive the call;
    // the kernel copies them before returning.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags | SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &prog as *const SockFprog,
        )
    })?;
    // SAFETY: with NEW_LISTENER a successful seccomp(2) returns a new fd that
    // nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `SECCOMP_IOCTL_NOTIF_RECV`: blocks until a notification arrives.
pub fn notif_recv(listener: BorrowedFd<'_>) -> Result<SeccompNotif, Errno> {
    // The kernel insists on a zeroed struct (EINVAL since 5.5).
    let mut notif = SeccompNotif::default();
    // SAFETY: `notif` is a writable struct of the size encoded in the request.
    check(unsafe {
        libc::ioctl(listener.as_raw_fd(), NOTIF_RECV as _, &mut notif as *mut SeccompNotif)
            as libc::c_long
    })?;
    Ok(notif)
}

/// `SECCOMP_IOCTL_NOTIF_SEND`: answers notification `id` with a return value,
/// `-error`, or (with `SECCOMP_USER_NOTIF_FLAG_CONTINUE`) lets it run.
pub fn notif_send(
    listener: BorrowedFd<'_>,
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
) -> Result<(), Errno> {
    let mut resp = SeccompNotifResp { id, val, error, flags };
    // SAFETY: `resp` is a valid struct of the size encoded in the request.
    check(unsafe {
        libc::ioctl(listener.as_raw_fd(), NOTIF_SEND as _, &mut resp as *mut SeccompNotifResp)
            as libc::c_long
    })?;
    Ok(())
}

/// `SECCOMP_IOCTL_NOTIF_ID_VALID`: whether the target of `id` is still
/// waiting for our answer (so its pid was not reused).
pub fn notif_id_valid(listener: BorrowedFd<'_>, id: u64) -> Result<(), Errno> {
    let mut id = id;
    // SAFETY: the request reads one u64 from a valid pointer.
    check(unsafe {
        libc::ioctl(listener.as_raw_fd(), NOTIF_ID_VALID as _, &mut id as *mut u64) as libc::c_long
    })?;
    Ok(())
}

/// `SECCOMP_IOCTL_NOTIF_ADDFD` with `SECCOMP_ADDFD_FLAG_SEND`: installs a
/// duplicate of `fd` in the target (close-on-exec if `cloexec`) and, in the
/// same step, answers notification `id` with its number there. Returns that
/// number.
pub fn notif_addfd_send(
    listener: BorrowedFd<'_>,
    id: u64,
    fd: BorrowedFd<'_>,
    cloexec: bool,
) -> Result<i64, Errno> {
    let mut addfd = SeccompNotifAddfd {
        id,
        flags: SECCOMP_ADDFD_FLAG_SEND,
        srcfd: fd.as_raw_fd() as u32,
        newfd: 0,
        newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
    };
    // SAFETY: `addfd` is a valid struct of the size encoded in the request;
    // `srcfd` is a descriptor the caller keeps open for the call.
    let n = check(unsafe {
        libc::ioctl(listener.as_raw_fd(), NOTIF_ADDFD as _, &mut addfd as *mut SeccompNotifAddfd)
            as libc::c_long
    })?;
    Ok(i64::from(n as i32))
}

/// `SECCOMP_IOCTL_NOTIF_SET_FLAGS`, for `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`
/// (6.6). Unlike the other requests it takes the flags by value
/// (`kernel/seccomp.c: seccomp_notify_set_flags()`).
pub fn notif_set_flags(listener: BorrowedFd<'_>, flags: u64) -> Result<(), Errno> {
    // SAFETY: the request reads no memory: its argument is the flags value.
    check(unsafe {
        libc::ioctl(listener.as_raw_fd(), NOTIF_SET_FLAGS as _, flags as libc::c_ulong)
            as libc::c_long
    })?;
    Ok(())
}

/// `process_vm_readv`: reads `buf.len()` bytes at `addr` in process `pid`.
/// Returns how many bytes were read; a short read means the range crossed
/// into unmapped memory.
pub fn read_memory(pid: i32, addr: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as usize as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: `local` covers exactly `buf`, which is writable; the remote
    // range is only read by the kernel, with the access checks of ptrace.
    let n =
        check(unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) } as libc::c_long)?;
    Ok(n as usize)
}

/// `process_vm_writev`: writes each `(addr, bytes)` piece into process
/// `pid` with one call. Fails with `EFAULT` unless every byte was written.
pub fn write_memory(pid: i32, pieces: &[(u64, &[u8])]) -> Result<(), Errno> {
    const MAX_PIECES: usize = 24;
    if pieces.len() > MAX_PIECES {
        return Err(Errno::INVAL);
    }
    let empty = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
    let mut local = [empty; MAX_PIECES];
    let mut remote = [empty; MAX_PIECES];
    let mut total = 0usize;
    for (i, (addr, bytes)) in pieces.iter().enumerate() {
        local[i] =
            libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() };
        remote[i] =
            libc::iovec { iov_base: *addr as usize as *mut libc::c_void, iov_len: bytes.len() };
        total += bytes.len();
    }
    let n = pieces.len() as libc::c_ulong;
    // SAFETY: the local iovecs point into `pieces`, which outlive the call and
    // are only read; the remote ones are checked by the kernel.
    let written =
        check(unsafe { libc::process_vm_writev(pid, local.as_ptr(), n, remote.as_ptr(), n, 0) }
            as libc::c_long)?;
    if written as usize == total {
        Ok(())
    } else {
        Err(Errno::FAULT)
    }
}
