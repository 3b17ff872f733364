//! One notification, decoded: who asked, through which ABI, with which
//! arguments, and access to the asker's memory.
//!
//! Hazard (`seccomp_unotify(2)`): the target's pid may be reused once it
//! dies. Every read of target memory and every open of `/proc/<tid>/...`
//! is followed by [`Request::check_valid`] before the result is trusted.

use std::os::fd::BorrowedFd;

use rustix::io::Errno;

use crate::arch::Arch;
use crate::sys;

/// `PATH_MAX`: a path argument, with its NUL, fits in this many bytes.
const PATH_MAX: usize = 4096;
const PAGE: u64 = 4096;

/// What a handler returns when the target's memory cannot be reached at
/// all: a process that made itself undumpable (`PR_SET_DUMPABLE` 0)
/// refuses `process_vm_readv` to anyone without `CAP_SYS_PTRACE`, which
/// is the case under `--userns=none`. The notification loop lets the
/// kernel run such a call as it is, and says so once; no error made up
/// here reaches the workload. `ENOTRECOVERABLE` is otherwise never
/// produced by a handler.
pub const UNREACHABLE: Errno = Errno::NOTRECOVERABLE;

/// Maps an error of `process_vm_readv`/`writev` to what the handler
/// answers: the target is gone (`ENOENT`, as for an invalid id),
/// unreachable, or the address is bad (`EFAULT`).
fn memory_error(e: Errno) -> Errno {
    match e {
        Errno::SRCH => Errno::NOENT,
        Errno::PERM => UNREACHABLE,
        _ => Errno::FAULT,
    }
}

#[derive(Debug)]
pub struct Request<'a> {
    listener: BorrowedFd<'a>,
    pub id: u64,
    /// The calling thread, in the supervisor's pid namespace.
    pub tid: i32,
    pub arch: Arch,
    /// The system call number without the x32 bit.
    pub nr: i32,
    pub args: [u64; 6],
}

impl<'a> Request<'a> {
    pub fn new(listener: BorrowedFd<'a>, notif: &sys::SeccompNotif, arch: Arch, nr: i32) -> Self {
        Self { listener, id: notif.id, tid: notif.pid as i32, arch, nr, args: notif.data.args }
    }

    /// Argument `i` as a C `int` (file descriptors, flags): the low 32 bits,
    /// as the kernel reads it on every ABI.
    pub fn int(&self, i: usize) -> i32 {
        self.args[i] as u32 as i32
    }

    /// Argument `i` as an unsigned 32-bit value (`uid_t`, `mode_t`).
    pub fn uint(&self, i: usize) -> u32 {
        self.args[i] as u32
    }

    /// Argument `i` as a C `unsigned long` or `size_t`: 32 bits wide on the
    /// 32-bit ABIs, where the registers may hold more.
    pub fn ulong(&self, i: usize) -> u64 {
        if self.arch == Arch::I386 {
            self.args[i] & 0xffff_ffff
        } else {
            self.args[i]
        }
    }

    /// Argument `i` as a pointer in the target's address space.
    pub fn ptr(&self, i: usize) -> u64 {
        if self.arch.is_32bit() {
            self.args[i] & 0xffff_ffff
        } else {
            self.args[i]
        }
    }

    /// Fails with `ENOENT` unless the target still waits for this answer.
    pub fn check_valid(&self) -> Result<(), Errno> {
        sys::notif_id_valid(self.listener, self.id).map_err(|_| Errno::NOENT)
    }

    /// Reads the NUL-terminated path at `addr`, without its NUL, as
    /// `fs/namei.c: getname()` does: `EFAULT` if unreadable, `ENAMETOOLONG`
    /// if no NUL within `PATH_MAX` bytes. Reads page by page so that a
    /// string ending just before unmapped memory is still read.
    ///
    /// The bytes are not trusted until [`Request::check_valid`] has passed;
    /// path lookups do that once, after opening the target's directories.
    pub fn read_path(&self, addr: u64) -> Result<Vec<u8>, Errno> {
        let mut path = Vec::with_capacity(256);
        let mut at = addr;
        while path.len() < PATH_MAX {
            let chunk = ((PAGE - at % PAGE) as usize).min(PATH_MAX - path.len());
            let start = path.len();
            path.resize(start + chunk, 0);
            let n = sys::read_memory(self.tid, at, &mut path[start..]).map_err(memory_error)?;
            if n == 0 {
                return Err(Errno::FAULT);
            }
            path.truncate(start + n);
            if let Some(nul) = path[start..].iter().position(|&b| b == 0) {
                path.truncate(start + nul);
                return Ok(path);
            }
            at += n as u64;
        }
        Err(Errno::NAMETOOLONG)
    }

    /// Reads exactly `len` bytes at `addr`, as `copy_from_user` does:
    /// `EFAULT` if any of them is unreadable.
    pub fn read_exact(&self, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let mut bytes = vec![0u8; len];
        if len > 0 && sys::read_memory(self.tid, addr, &mut bytes).map_err(memory_error)? != len {
            return Err(Errno::FAULT);
        }
        Ok(bytes)
    }

    /// Writes `bytes` at `addr` in the target; `EFAULT` if it cannot.
    pub fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.write_pieces(&[(addr, bytes)])
    }

    /// Writes several pieces with one system call, as `(addr, bytes)`.
    pub fn write_pieces(&self, pieces: &[(u64, &[u8])]) -> Result<(), Errno> {
        sys::write_memory(self.tid, pieces).map_err(memory_error)
    }
}
