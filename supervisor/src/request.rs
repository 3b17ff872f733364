//! One notification, decoded: who asked, through which ABI, with which
//! arguments, and access to the asker's memory.
//!
//! Hazard (`seccomp_unotify(2)`): the target's pid may be reused once it
//! dies. Every read of target memory and every open of `/proc/<tid>/...`
//! is followed by [`Request::check_valid`] before the result is trusted.
//!
//! The memory and that check are the [`Target`]'s: in the supervisor the
//! [`Live`] thread behind the listener, in tests and fuzzing a fake one
//! ([`Request::over`]), so that decoding can be driven without a process.

use std::fmt;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::io::Errno;

use crate::arch::Arch;
use crate::descriptors::Descriptors;
use crate::sys;

/// `PATH_MAX`: a path argument, with its NUL, fits in this many bytes.
const PATH_MAX: usize = 4096;
const PAGE: u64 = 4096;

/// That the target's memory cannot be reached at all: a process that made
/// itself undumpable (`PR_SET_DUMPABLE` 0) refuses `process_vm_readv` to
/// anyone without `CAP_SYS_PTRACE`, which is the case under
/// `--userns=none`. The request notes it ([`Request::unreachable`]), apart
/// from the errno the read fails with, so that no handler's mapping of
/// errors can lose it; the notification loop then lets the kernel run the
/// call as it is, and says so once: no error made up here reaches the
/// workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unreachable {
    /// The thread whose memory could not be reached.
    pub tid: i32,
}

/// The target's side of a notification: the memory of the thread that
/// made the call, and whether the call still waits for fr's answer.
/// Errors are the system calls' own; [`Request`] maps them to answers.
pub trait Target: fmt::Debug {
    /// `process_vm_readv(2)` of `buf.len()` bytes at `addr`: how many were
    /// read (fewer when the range runs into memory that cannot be read),
    /// or why none were (`EFAULT`; `ESRCH` once the target is gone;
    /// `EPERM` when it may not be read).
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<usize, Errno>;
    /// `process_vm_writev(2)` of each `(addr, bytes)` piece with one call:
    /// `EFAULT` unless every byte was written.
    fn write(&self, pieces: &[(u64, &[u8])]) -> Result<(), Errno>;
    /// `SECCOMP_IOCTL_NOTIF_ID_VALID`: the call still waits, so the thread
    /// is the one that made it and what was read from it is its own.
    fn still_waiting(&self) -> Result<(), Errno>;
    /// The thread's descriptor `fd`, duplicated (see
    /// [`crate::descriptors`]): `EBADF` if it has none by that number,
    /// `ENOSYS` where `/proc/<tid>/fd/N` must serve instead.
    fn dup(&self, _fd: i32) -> Result<OwnedFd, Errno> {
        Err(Errno::NOSYS)
    }
}

/// The real target: thread `tid`, read and written with
/// `process_vm_readv`/`writev`, and notification `id` on `listener`.
#[derive(Clone, Copy, Debug)]
pub struct Live<'a> {
    listener: BorrowedFd<'a>,
    id: u64,
    tid: i32,
    descriptors: &'a Descriptors,
}

impl Target for Live<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        sys::read_memory(self.tid, addr, buf)
    }

    fn write(&self, pieces: &[(u64, &[u8])]) -> Result<(), Errno> {
        sys::write_memory(self.tid, pieces)
    }

    fn still_waiting(&self) -> Result<(), Errno> {
        sys::notif_id_valid(self.listener, self.id)
    }

    fn dup(&self, fd: i32) -> Result<OwnedFd, Errno> {
        self.descriptors.dup(self.tid, fd)
    }
}

/// How a [`Request`] reaches its target: the live one directly (no
/// indirection on the supervisor's path), any other through a reference.
#[derive(Clone, Copy, Debug)]
enum Reach<'a> {
    Live(Live<'a>),
    Other(&'a dyn Target),
}

#[derive(Debug)]
pub struct Request<'a> {
    target: Reach<'a>,
    /// The calling thread, in the supervisor's pid namespace.
    pub tid: i32,
    pub arch: Arch,
    /// The system call number without the x32 bit.
    pub nr: i32,
    pub args: [u64; 6],
    /// Set when a read or write of the target's memory was refused.
    unreachable: std::cell::Cell<Option<Unreachable>>,
}

impl<'a> Request<'a> {
    pub fn new(
        listener: BorrowedFd<'a>,
        notif: &sys::SeccompNotif,
        arch: Arch,
        nr: i32,
        descriptors: &'a Descriptors,
    ) -> Self {
        let (id, tid) = (notif.id, notif.pid as i32);
        let target = Reach::Live(Live { listener, id, tid, descriptors });
        Self { target, tid, arch, nr, args: notif.data.args, unreachable: Default::default() }
    }

    /// A request whose memory and validity are `target`'s, for tests and
    /// fuzzing. Its tid is 0: no `/proc/0` exists, so whatever
    /// would reach the target through `/proc` fails instead.
    pub fn over(target: &'a dyn Target, arch: Arch, nr: i32, args: [u64; 6]) -> Self {
        Self {
            target: Reach::Other(target),
            tid: 0,
            arch,
            nr,
            args,
            unreachable: Default::default(),
        }
    }

    fn read_memory(&self, addr: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match self.target {
            Reach::Live(t) => t.read(addr, buf),
            Reach::Other(t) => t.read(addr, buf),
        }
    }

    fn write_memory(&self, pieces: &[(u64, &[u8])]) -> Result<(), Errno> {
        match self.target {
            Reach::Live(t) => t.write(pieces),
            Reach::Other(t) => t.write(pieces),
        }
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
    /// Whether a read or write of the target's memory was refused (see
    /// [`Unreachable`]).
    pub fn unreachable(&self) -> Option<Unreachable> {
        self.unreachable.get()
    }

    /// Maps an error of `process_vm_readv`/`writev` to what the handler
    /// answers: the target is gone (`ENOENT`, as for an invalid id), or
    /// the address is bad (`EFAULT`). A refusal stays `EPERM`, which no
    /// reader takes for a short read, and is noted as [`Unreachable`]: the
    /// notification loop then answers the call whatever the handler made
    /// of the error.
    fn memory_error(&self, e: Errno) -> Errno {
        match e {
            Errno::SRCH => Errno::NOENT,
            Errno::PERM => {
                self.unreachable.set(Some(Unreachable { tid: self.tid }));
                Errno::PERM
            }
            _ => Errno::FAULT,
        }
    }

    /// The target's descriptor `fd`, duplicated into the supervisor:
    /// `EBADF` if it has none by that number, `ENOSYS` where only
    /// `/proc/<tid>/fd/N` reaches it. Not yet checked with `ID_VALID`.
    pub fn dup(&self, fd: i32) -> Result<OwnedFd, Errno> {
        match self.target {
            Reach::Live(t) => t.dup(fd),
            Reach::Other(t) => t.dup(fd),
        }
    }

    pub fn check_valid(&self) -> Result<(), Errno> {
        let waiting = match self.target {
            Reach::Live(t) => t.still_waiting(),
            Reach::Other(t) => t.still_waiting(),
        };
        waiting.map_err(|_| Errno::NOENT)
    }

    /// Reads the NUL-terminated path at `addr`, without its NUL, as
    /// `fs/namei.c: getname()` does: `EFAULT` if unreadable, `ENAMETOOLONG`
    /// if no NUL within `PATH_MAX` bytes.
    ///
    /// The bytes are not trusted until [`Request::check_valid`] has passed;
    /// path lookups do that once, after opening the target's directories.
    pub fn read_path(&self, addr: u64) -> Result<Vec<u8>, Errno> {
        self.read_string(addr, PATH_MAX)
    }

    /// Reads the NUL-terminated string at `addr`, without its NUL, as
    /// `strncpy_from_user(dst, addr, max)` does: byte by byte until the
    /// NUL, `EFAULT` at a byte that cannot be read first, `ENAMETOOLONG`
    /// when `max` bytes hold no NUL (no byte beyond them is read). Reads
    /// page by page so that a string ending just before unmapped memory is
    /// still read.
    pub fn read_string(&self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        // Most names are short: the first read asks for a little, so that
        // the kernel copies (and fr zeroes) a few hundred bytes, not the
        // rest of a page.
        const FIRST: u64 = 256;
        let mut s = Vec::with_capacity(max.min(FIRST as usize));
        let mut at = addr;
        while s.len() < max {
            let page_rest = PAGE - at % PAGE;
            let want = if s.is_empty() { page_rest.min(FIRST) } else { page_rest };
            let chunk = (want as usize).min(max - s.len());
            let start = s.len();
            s.resize(start + chunk, 0);
            let n = self.read_memory(at, &mut s[start..]).map_err(|e| self.memory_error(e))?;
            if n == 0 {
                return Err(Errno::FAULT);
            }
            s.truncate(start + n);
            if let Some(nul) = s[start..].iter().position(|&b| b == 0) {
                s.truncate(start + nul);
                return Ok(s);
            }
            // The end of the address space: nothing more can be read.
            at = at.checked_add(n as u64).ok_or(Errno::FAULT)?;
        }
        Err(Errno::NAMETOOLONG)
    }

    /// Reads exactly `len` bytes at `addr`, as `copy_from_user` does:
    /// `EFAULT` if any of them is unreadable.
    pub fn read_exact(&self, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let mut bytes = vec![0u8; len];
        if len > 0 && self.read_memory(addr, &mut bytes).map_err(|e| self.memory_error(e))? != len {
            return Err(Errno::FAULT);
        }
        Ok(bytes)
    }

    /// Reads up to `len` bytes at `addr`: all of them, or as many as can be
    /// read before the first that cannot (possibly none), for the readers
    /// of the kernel that act on each part before they fault on the next
    /// (`get_user()` in a loop, `check_zeroed_user()`). Only a target that
    /// is gone or unreachable is an error.
    pub fn read_prefix(&self, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let mut bytes = vec![0u8; len];
        let mut done = 0;
        while done < len {
            let Some(at) = addr.checked_add(done as u64) else { break };
            match self.read_memory(at, &mut bytes[done..]).map_err(|e| self.memory_error(e)) {
                Ok(0) | Err(Errno::FAULT) => break,
                Ok(n) => done += n,
                Err(e) => return Err(e),
            }
        }
        bytes.truncate(done);
        Ok(bytes)
    }

    /// Reads a struct of `ksize` bytes the caller passed with its own size
    /// `usize`, as `include/linux/uaccess.h: copy_struct_from_user()` does:
    /// the caller's bytes beyond `ksize` first, which must be zero
    /// (`check_zeroed_user()`: `EFAULT` at a fault before a nonzero byte,
    /// `E2BIG` at a nonzero byte), then the struct itself (`EFAULT`); a
    /// shorter struct is zero-extended.
    pub fn read_struct(&self, addr: u64, ksize: usize, usize: usize) -> Result<Vec<u8>, Errno> {
        if usize > ksize {
            let rest = addr.checked_add(ksize as u64).ok_or(Errno::FAULT)?;
            let tail = self.read_prefix(rest, usize - ksize)?;
            if tail.iter().any(|&b| b != 0) {
                return Err(Errno::TOOBIG);
            }
            if tail.len() < usize - ksize {
                return Err(Errno::FAULT);
            }
        }
        let mut s = self.read_exact(addr, ksize.min(usize))?;
        s.resize(ksize, 0);
        Ok(s)
    }

    /// Writes `bytes` at `addr` in the target; `EFAULT` if it cannot.
    pub fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.write_pieces(&[(addr, bytes)])
    }

    /// Writes several pieces with one system call, as `(addr, bytes)`.
    pub fn write_pieces(&self, pieces: &[(u64, &[u8])]) -> Result<(), Errno> {
        self.write_memory(pieces).map_err(|e| self.memory_error(e))
    }
}

/// A target for unit tests: bytes placed at addresses, every other byte
/// unmapped; reads stop at the first unmapped byte, as
/// `process_vm_readv` stops at the first unmapped page.
#[cfg(test)]
pub(crate) mod fake {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use rustix::io::Errno;

    /// A byte and whether it may be written.
    type Cell = (u8, bool);

    #[derive(Debug, Default)]
    pub struct Memory {
        bytes: RefCell<BTreeMap<u64, Cell>>,
        /// The call no longer waits (its pid may be another process's).
        pub replaced: bool,
        /// The target is not dumpable: every read and write is `EPERM`.
        pub unreadable: bool,
    }

    impl Memory {
        pub fn new() -> Self {
            Self::default()
        }

        /// The call no longer waits.
        pub fn replaced(mut self) -> Self {
            self.replaced = true;
            self
        }

        /// The target is not dumpable.
        pub fn unreadable(mut self) -> Self {
            self.unreadable = true;
            self
        }

        /// Writable `bytes` at `addr`.
        pub fn put(self, addr: u64, bytes: &[u8]) -> Self {
            self.place(addr, bytes, true)
        }

        /// Read-only `bytes` at `addr`.
        pub fn put_ro(self, addr: u64, bytes: &[u8]) -> Self {
            self.place(addr, bytes, false)
        }

        fn place(self, addr: u64, bytes: &[u8], writable: bool) -> Self {
            let mut map = self.bytes.borrow_mut();
            for (i, &b) in bytes.iter().enumerate() {
                map.insert(addr + i as u64, (b, writable));
            }
            drop(map);
            self
        }

        /// The `len` bytes at `addr`, `None` where unmapped.
        pub fn get(&self, addr: u64, len: usize) -> Vec<Option<u8>> {
            let map = self.bytes.borrow();
            (0..len as u64).map(|i| map.get(&(addr + i)).map(|c| c.0)).collect()
        }
    }

    impl super::Target for Memory {
        fn read(&self, addr: u64, buf: &mut [u8]) -> Result<usize, Errno> {
            if self.unreadable {
                return Err(Errno::PERM);
            }
            let map = self.bytes.borrow();
            let mut n = 0;
            while n < buf.len() {
                let Some(&(b, _)) = addr.checked_add(n as u64).and_then(|a| map.get(&a)) else {
                    break;
                };
                buf[n] = b;
                n += 1;
            }
            if n == 0 && !buf.is_empty() {
                return Err(Errno::FAULT);
            }
            Ok(n)
        }

        fn write(&self, pieces: &[(u64, &[u8])]) -> Result<(), Errno> {
            assert!(!self.replaced, "a write into a target that no longer waits");
            if self.unreadable {
                return Err(Errno::PERM);
            }
            let mut map = self.bytes.borrow_mut();
            for &(addr, bytes) in pieces {
                for (i, &b) in bytes.iter().enumerate() {
                    match map.get_mut(&(addr + i as u64)) {
                        Some(c) if c.1 => c.0 = b,
                        _ => return Err(Errno::FAULT),
                    }
                }
            }
            Ok(())
        }

        fn still_waiting(&self) -> Result<(), Errno> {
            if self.replaced {
                Err(Errno::NOENT)
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::Memory;
    use super::*;

    fn req(mem: &Memory) -> Request<'_> {
        Request::over(mem, Arch::X86_64, 0, [0; 6])
    }

    #[test]
    fn a_string_is_the_bytes_before_its_nul() {
        let mem = Memory::new().put(0x1ffe, b"ab").put(0x2000, b"cd\0ef");
        assert_eq!(req(&mem).read_path(0x1ffe), Ok(b"abcd".to_vec()));
        assert_eq!(req(&mem).read_path(0x2002), Ok(Vec::new()));
        assert_eq!(req(&mem).read_path(0x2003), Err(Errno::FAULT));
        // A byte that cannot be read before the NUL, first or later.
        assert_eq!(req(&mem).read_path(0x1000), Err(Errno::FAULT));
        let mem = Memory::new().put(0x1000, b"abc");
        assert_eq!(req(&mem).read_path(0x1000), Err(Errno::FAULT));
    }

    #[test]
    fn a_string_without_nul_within_its_maximum_is_too_long_whatever_follows() {
        let mem = Memory::new().put(0x1000, &[b'a'; 4096]);
        assert_eq!(req(&mem).read_path(0x1000), Err(Errno::NAMETOOLONG));
        assert_eq!(req(&mem).read_string(0x1000, 256), Err(Errno::NAMETOOLONG));
        assert_eq!(req(&mem).read_string(0x1f01, 255), Err(Errno::NAMETOOLONG));
        let mem = Memory::new().put(0x1000, &[b'a'; 4095]).put(0x1fff, b"\0");
        assert_eq!(req(&mem).read_path(0x1000), Ok(vec![b'a'; 4095]));
    }

    #[test]
    fn the_end_of_the_address_space_is_a_fault() {
        let mem = Memory::new().put(u64::MAX - 1, b"ab");
        assert_eq!(req(&mem).read_path(u64::MAX - 1), Err(Errno::FAULT));
        assert_eq!(req(&mem).read_prefix(u64::MAX - 1, 4), Ok(b"ab".to_vec()));
    }

    #[test]
    fn exact_reads_fault_on_any_missing_byte_and_prefixes_stop_there() {
        let mem = Memory::new().put(0x1000, b"abcd");
        assert_eq!(req(&mem).read_exact(0x1000, 4), Ok(b"abcd".to_vec()));
        assert_eq!(req(&mem).read_exact(0x1000, 5), Err(Errno::FAULT));
        assert_eq!(req(&mem).read_exact(0x0, 0), Ok(Vec::new()));
        assert_eq!(req(&mem).read_prefix(0x1002, 8), Ok(b"cd".to_vec()));
        assert_eq!(req(&mem).read_prefix(0x0fff, 8), Ok(Vec::new()));
    }

    #[test]
    fn a_struct_is_read_after_its_tail_is_checked() {
        let mem = Memory::new().put(0x1000, &[1, 2, 3, 4, 0, 0, 0, 0]).put(0x2000, &[1, 2]);
        assert_eq!(req(&mem).read_struct(0x1000, 4, 8), Ok(vec![1, 2, 3, 4]));
        assert_eq!(req(&mem).read_struct(0x1000, 4, 2), Ok(vec![1, 2, 0, 0]));
        assert_eq!(req(&mem).read_struct(0x1000, 2, 4), Err(Errno::TOOBIG));
        assert_eq!(req(&mem).read_struct(0x1000, 4, 9), Err(Errno::FAULT));
        // A nonzero byte before the fault is E2BIG; the struct is read last.
        assert_eq!(req(&mem).read_struct(0x1ffe, 2, 8), Err(Errno::TOOBIG));
        assert_eq!(req(&mem).read_struct(0x1ffe, 4, 8), Err(Errno::FAULT));
    }

    #[test]
    fn a_target_that_cannot_be_read_is_unreachable() {
        let mem = Memory::new().put(0x1000, b"a\0").unreadable();
        type Call = dyn Fn(&Request<'_>) -> Result<(), Errno>;
        let each: [&Call; 3] =
            [&|r| r.read_path(0x1000).map(drop), &|r| r.read_prefix(0x1000, 2).map(drop), &|r| {
                r.write(0x1000, b"b")
            }];
        for call in each {
            let r = req(&mem);
            assert_eq!(r.unreachable(), None);
            assert!(call(&r).is_err());
            assert_eq!(r.unreachable(), Some(Unreachable { tid: 0 }));
        }
    }

    #[test]
    fn a_call_that_no_longer_waits_is_enoent() {
        let mem = Memory::new().replaced();
        assert_eq!(req(&mem).check_valid(), Err(Errno::NOENT));
        assert_eq!(req(&Memory::new()).check_valid(), Ok(()));
    }
}
