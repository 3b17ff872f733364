//! A fake target: a few pages of memory and a fate, read and written as
//! `process_vm_readv`/`writev` would, and asked whether it still waits as
//! `SECCOMP_IOCTL_NOTIF_ID_VALID` would. It records what happens to it so
//! that the checks can say what the decoders should have answered.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use fr_supervisor::request::Target;
use rustix::io::Errno;

pub const PAGE: u64 = 4096;

/// The end of the user address space on x86_64 (47 bits): nothing is
/// mapped above it.
pub const USER_TOP: u64 = 1 << 47;

/// One page of the target's memory.
#[derive(Clone, Debug)]
pub struct Page {
    pub bytes: Vec<u8>,
    pub writable: bool,
}

/// The target's memory: pages by their base address; anything else is
/// unmapped.
pub type Pages = BTreeMap<u64, Page>;

/// What becomes of the target while its call is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It waits throughout.
    Alive,
    /// It made itself undumpable: every read and write is `EPERM`.
    Undumpable,
    /// Its pid names another process: memory reads, but the call no
    /// longer waits.
    Replaced,
    /// It dies after this many reads and writes: then `ESRCH`, and the
    /// call no longer waits.
    GoneAfter(u8),
}

/// What the fake has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Reads and writes that failed because the target was gone (`ESRCH`)
    /// or undumpable (`EPERM`).
    pub gone: u32,
    pub refused: u32,
    /// `still_waiting` calls that failed.
    pub not_waiting: u32,
    /// Reads and writes.
    pub ops: u32,
}

#[derive(Debug)]
pub struct Fake {
    pub pages: RefCell<Pages>,
    pub fate: Fate,
    seen: Cell<Seen>,
    /// Every read, as `(addr, len)`.
    pub reads: RefCell<Vec<(u64, usize)>>,
    /// Every write piece, as `(addr, bytes)`.
    pub writes: RefCell<Vec<(u64, Vec<u8>)>>,
}

impl Fake {
    pub fn new(pages: Pages, fate: Fate) -> Self {
        Fake {
            pages: RefCell::new(pages),
            fate,
            seen: Cell::new(Seen::default()),
            reads: RefCell::default(),
            writes: RefCell::default(),
        }
    }

    pub fn seen(&self) -> Seen {
        self.seen.get()
    }

    fn note(&self, f: impl FnOnce(&mut Seen)) {
        let mut s = self.seen.get();
        f(&mut s);
        self.seen.set(s);
    }

    fn gone(&self) -> bool {
        matches!(self.fate, Fate::GoneAfter(n) if self.seen.get().ops > u32::from(n))
    }

    /// Counts one read or write, and says why it fails if the target is
    /// gone or undumpable.
    fn reach(&self) -> Result<(), Errno> {
        self.note(|s| s.ops += 1);
        if self.gone() {
            self.note(|s| s.gone += 1);
            return Err(Errno::SRCH);
        }
        if self.fate == Fate::Undumpable {
            self.note(|s| s.refused += 1);
            return Err(Errno::PERM);
        }
        Ok(())
    }
}

/// The byte at `addr`, if it can be read.
pub fn byte(pages: &Pages, addr: u64) -> Option<u8> {
    let page = pages.get(&(addr & !(PAGE - 1)))?;
    Some(page.bytes[(addr % PAGE) as usize])
}

impl Target for Fake {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.reach()?;
        self.reads.borrow_mut().push((addr, buf.len()));
        let pages = self.pages.borrow();
        let mut n = 0;
        for (i, b) in buf.iter_mut().enumerate() {
            match addr.checked_add(i as u64).and_then(|a| byte(&pages, a)) {
                Some(v) => *b = v,
                None => break,
            }
            n += 1;
        }
        // process_vm_readv(2): the bytes up to the first page that cannot
        // be read; EFAULT when that is the first.
        if n == 0 && !buf.is_empty() {
            return Err(Errno::FAULT);
        }
        Ok(n)
    }

    fn write(&self, pieces: &[(u64, &[u8])]) -> Result<(), Errno> {
        assert_eq!(
            self.seen.get().not_waiting,
            0,
            "a write into a target whose call no longer waits (its pid may be another process's)"
        );
        // A writer that asked ID_VALID first stopped at its NOENT.
        assert_ne!(self.fate, Fate::Replaced, "a write without ID_VALID just before it");
        self.reach()?;
        let mut pages = self.pages.borrow_mut();
        for &(addr, bytes) in pieces {
            self.writes.borrow_mut().push((addr, bytes.to_vec()));
            for (i, &b) in bytes.iter().enumerate() {
                let at = addr.checked_add(i as u64).ok_or(Errno::FAULT)?;
                match pages.get_mut(&(at & !(PAGE - 1))) {
                    Some(page) if page.writable => page.bytes[(at % PAGE) as usize] = b,
                    _ => return Err(Errno::FAULT),
                }
            }
        }
        Ok(())
    }

    fn still_waiting(&self) -> Result<(), Errno> {
        if self.gone() || self.fate == Fate::Replaced {
            self.note(|s| s.not_waiting += 1);
            return Err(Errno::NOENT);
        }
        Ok(())
    }
}
