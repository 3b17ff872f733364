//! A fuzzer's bytes as a notification and a target, and back.
//!
//! ```text
//! byte 0       bits 0-1: the ABI (x86_64, i386, x32, another audit arch);
//!              bit 2: bytes 1-2 pick an entry of fr's table (else they are
//!              the raw number)
//! bytes 1-2    u16, little-endian: table entry or system call number
//! bytes 3-50   the six arguments, u64 little-endian
//! byte 51      the target's fate: 0-4 alive, 5 undumpable, 6 replaced,
//!              7 gone after byte 52 % 8 reads and writes
//! then pages   up to 8 of: [where] [fill] [at, u16] [n] [n bytes of data]
//!              where: bits 0-2 the argument (% 6) whose pointer the page
//!              holds, bits 3-4 the page before it, its own, the next or
//!              the one after, bit 5 read-only; the page is `fill` with
//!              `data` at `at % 4096` (cut at the page's end)
//! ```
//! Missing bytes are zeros. A later page at the same address replaces an
//! earlier one.

use fr_supervisor::arch::Arch;
use fr_supervisor::table::{self, Bound};

use super::fake::{Fate, Page, Pages, PAGE, USER_TOP};
use super::kernel::{self, Regs};

/// One page as the input describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageSpec {
    /// The argument whose pointer the page holds.
    pub arg: u8,
    /// -1, 0, 1 or 2 pages from it.
    pub delta: i8,
    pub read_only: bool,
    pub fill: u8,
    pub at: u16,
    pub data: Vec<u8>,
}

/// Where the notification's ABI comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Entry `i` of `table::bind()`, numbered as its ABI numbers it.
    Table(usize),
    /// A raw number on one of the three ABIs.
    Raw(Arch, u16),
    /// A raw number with an audit arch of no x86 ABI (aarch64's).
    Foreign(u16),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub call: Call,
    pub args: [u64; 6],
    pub fate: Fate,
    pub pages: Vec<PageSpec>,
}

const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const ARCHES: [Arch; 3] = [Arch::X86_64, Arch::I386, Arch::X32];

/// `table::bind()`, once.
pub fn bound() -> &'static [Bound] {
    static BOUND: std::sync::OnceLock<Vec<Bound>> = std::sync::OnceLock::new();
    BOUND.get_or_init(table::bind)
}

impl Case {
    /// `seccomp_data.arch` and `seccomp_data.nr`.
    pub fn seccomp(&self) -> (u32, i32) {
        match self.call {
            Call::Table(i) => {
                let b = &bound()[i % bound().len()];
                (kernel::audit(b.arch), b.arch.filter_nr(b.nr))
            }
            Call::Raw(arch, nr) => (kernel::audit(arch), arch.filter_nr(i32::from(nr))),
            Call::Foreign(nr) => (AUDIT_ARCH_AARCH64, i32::from(nr)),
        }
    }

    /// The memory the pages describe, placed at the pointers the kernel
    /// would see on `arch`.
    pub fn pages(&self, arch: Arch) -> Pages {
        let regs = Regs { arch, args: self.args };
        let mut pages = Pages::new();
        for p in &self.pages {
            let base = (regs.ptr(usize::from(p.arg) % 6) & !(PAGE - 1))
                .checked_add_signed(i64::from(p.delta) * PAGE as i64);
            let Some(base) = base.filter(|&b| b < USER_TOP) else { continue };
            let mut bytes = vec![p.fill; PAGE as usize];
            let at = usize::from(p.at) % PAGE as usize;
            let n = p.data.len().min(PAGE as usize - at);
            bytes[at..at + n].copy_from_slice(&p.data[..n]);
            pages.insert(base, Page { bytes, writable: !p.read_only });
        }
        pages
    }
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(std::array::from_fn(|_| self.u8()))
    }
    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (data, rest) = self.0.split_at(n);
        self.0 = rest;
        data.to_vec()
    }
}

pub fn decode(data: &[u8]) -> Case {
    let mut b = Bytes(data);
    let sel = b.u8();
    let n = b.u16();
    let call = match (sel & 3, sel & 4 != 0) {
        (3, _) => Call::Foreign(n),
        (_, true) => Call::Table(usize::from(n) % bound().len()),
        (a, false) => Call::Raw(ARCHES[usize::from(a)], n),
    };
    let args = std::array::from_fn(|_| b.u64());
    let fate = match b.u8() % 8 {
        5 => Fate::Undumpable,
        6 => Fate::Replaced,
        7 => Fate::GoneAfter(b.u8() % 8),
        _ => Fate::Alive,
    };
    let mut pages = Vec::new();
    while !b.0.is_empty() && pages.len() < 8 {
        let w = b.u8();
        let fill = b.u8();
        let at = b.u16();
        let n = usize::from(b.u8());
        let data = b.take(n);
        let delta = [0, 1, -1, 2][usize::from(w >> 3) & 3];
        pages.push(PageSpec { arg: w & 7, delta, read_only: w & 0x20 != 0, fill, at, data });
    }
    Case { call, args, fate, pages }
}

/// The bytes [`decode`] makes `case` of.
pub fn encode(case: &Case) -> Vec<u8> {
    let mut out = Vec::new();
    let (sel, n) = match case.call {
        Call::Table(i) => (4, i as u16),
        Call::Raw(arch, nr) => (ARCHES.iter().position(|&a| a == arch).unwrap() as u8, nr),
        Call::Foreign(nr) => (3, nr),
    };
    out.push(sel);
    out.extend_from_slice(&n.to_le_bytes());
    for a in case.args {
        out.extend_from_slice(&a.to_le_bytes());
    }
    match case.fate {
        Fate::Alive => out.push(0),
        Fate::Undumpable => out.push(5),
        Fate::Replaced => out.push(6),
        Fate::GoneAfter(k) => out.extend_from_slice(&[7, k]),
    }
    for p in &case.pages {
        let delta = [0, 1, -1, 2].iter().position(|&d| d == p.delta).unwrap() as u8;
        out.push(p.arg | delta << 3 | u8::from(p.read_only) << 5);
        out.push(p.fill);
        out.extend_from_slice(&p.at.to_le_bytes());
        out.push(p.data.len() as u8);
        out.extend_from_slice(&p.data);
    }
    out
}

/// The table entry of `name` on `arch`.
pub fn entry(name: &str, arch: Arch) -> Call {
    let i = bound().iter().position(|b| b.syscall.name == name && b.arch == arch);
    Call::Table(i.unwrap_or_else(|| panic!("{name} is not in fr's table on {}", arch.name())))
}
