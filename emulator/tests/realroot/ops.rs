//! The operations a run is made of, and how a fuzzer's bytes become them.
//!
//! Files are named by position, never by number: `file` picks among the
//! live inodes (the image root included), `dir` among the directories,
//! `link` among the names, each modulo how many there are, so that every
//! input means something.

/// A file type, as `S_IFMT` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Reg,
    Dir,
    Lnk,
    Chr,
    Blk,
    Fifo,
    Sock,
}

impl Kind {
    pub const ALL: [Kind; 7] =
        [Kind::Reg, Kind::Dir, Kind::Lnk, Kind::Chr, Kind::Blk, Kind::Fifo, Kind::Sock];

    /// The `S_IFMT` bits (`include/uapi/linux/stat.h`).
    pub fn bits(self) -> u32 {
        match self {
            Kind::Reg => 0o100_000,
            Kind::Dir => 0o040_000,
            Kind::Lnk => 0o120_000,
            Kind::Chr => 0o020_000,
            Kind::Blk => 0o060_000,
            Kind::Fifo => 0o010_000,
            Kind::Sock => 0o140_000,
        }
    }

    pub fn is_device(self) -> bool {
        matches!(self, Kind::Chr | Kind::Blk)
    }
}

/// An xattr name of the kinds fr keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    Capability,
    AclAccess,
    AclDefault,
    Trusted(u8),
    Security(u8),
}

impl Name {
    pub fn bytes(self) -> Vec<u8> {
        match self {
            Name::Capability => b"security.capability".to_vec(),
            Name::AclAccess => b"system.posix_acl_access".to_vec(),
            Name::AclDefault => b"system.posix_acl_default".to_vec(),
            Name::Trusted(n) => format!("trusted.t{}", n % 3).into_bytes(),
            Name::Security(n) => format!("security.s{}", n % 3).into_bytes(),
        }
    }

    pub fn is_acl(self) -> bool {
        matches!(self, Name::AclAccess | Name::AclDefault)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `fchownat(.., AT_EMPTY_PATH)`; `None` is `-1`.
    Chown {
        file: u8,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    /// `fchmodat(.., AT_EMPTY_PATH)`.
    Chmod {
        file: u8,
        mode: u32,
    },
    /// `openat(O_CREAT)`, `mkdirat`, `symlinkat` or `mknodat` of a new name
    /// in a directory, with the caller's umask; `dev` is `mknod`'s.
    Make {
        dir: u8,
        kind: Kind,
        mode: u32,
        umask: u32,
        dev: u32,
    },
    SetXattr {
        file: u8,
        name: Name,
        value: Vec<u8>,
        flags: u32,
    },
    RemoveXattr {
        file: u8,
        name: Name,
    },
    /// `linkat` of a name's file to a new name in a directory.
    Link {
        link: u8,
        dir: u8,
    },
    /// `renameat` of a name onto another name (`onto`), or to a new name
    /// in the directory `to`.
    Rename {
        link: u8,
        to: u8,
        onto: bool,
    },
    /// `unlinkat`, or `rmdir` for a directory.
    Unlink {
        link: u8,
    },
    /// The user makes a file outside fr (as the host sees it, owned by the
    /// user) with exactly the permission bits `perms`.
    Host {
        dir: u8,
        kind: Kind,
        perms: u32,
    },
    /// Outside fr, a name's only link is removed and a file of another
    /// type takes its place and its inode number.
    Outside {
        link: u8,
        kind: Kind,
        perms: u32,
    },
    /// The table is written to its journal and read back into a new one.
    Reload,
    Setuid(u32),
    Setgid(u32),
    Setreuid(u32, u32),
    Setregid(u32, u32),
    Setresuid(u32, u32, u32),
    Setresgid(u32, u32, u32),
    Setfsuid(u32),
    Setfsgid(u32),
    Setgroups(Vec<u32>),
    Capset {
        effective: u64,
        permitted: u64,
        inheritable: u64,
    },
    Keepcaps(bool),
}

/// A reader of fuzzer bytes that gives zeros once they run out.
pub struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes(data)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// An id, mostly from a few that collide: root, the host user's own
    /// number, the overflow id, and `-1`.
    pub fn id(&mut self) -> u32 {
        match self.u8() % 9 {
            0 => 0,
            1 => 1,
            2 => 5,
            3 => 7,
            4 => 1000,
            5 => 65534,
            6 => u32::MAX,
            7 => u32::from(self.u8()),
            _ => self.u32(),
        }
    }

    /// An id for a call where `-1` means "unchanged".
    fn maybe_id(&mut self) -> Option<u32> {
        Some(self.id()).filter(|&i| i != u32::MAX)
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.u8() as usize % (max + 1);
        (0..n).map(|_| self.u8()).collect()
    }

    /// A set of capabilities: all, none, one, all but one, or any bits.
    fn caps(&mut self) -> u64 {
        const FULL: u64 = (1 << 41) - 1;
        match self.u8() % 5 {
            0 => FULL,
            1 => 0,
            2 => 1 << (self.u8() % 41),
            3 => FULL & !(1 << (self.u8() % 41)),
            _ => u64::from(self.u32()) | (u64::from(self.u8()) << 32),
        }
    }

    fn kind(&mut self) -> Kind {
        Kind::ALL[self.u8() as usize % Kind::ALL.len()]
    }

    fn name(&mut self) -> Name {
        match self.u8() % 5 {
            0 => Name::Capability,
            1 => Name::AclAccess,
            2 => Name::AclDefault,
            3 => Name::Trusted(self.u8()),
            _ => Name::Security(self.u8()),
        }
    }

    /// Permission bits, often with the set-id and sticky bits.
    fn mode(&mut self) -> u32 {
        u32::from(self.u16()) & 0o7777
    }

    /// A value for `name`: mostly well formed, sometimes not.
    fn value(&mut self, name: Name) -> Vec<u8> {
        match name {
            Name::Capability => self.capability(),
            Name::AclAccess | Name::AclDefault => self.acl(),
            _ => self.bytes(8),
        }
    }

    /// `struct vfs_cap_data` (v2) or `vfs_ns_cap_data` (v3), or bytes.
    fn capability(&mut self) -> Vec<u8> {
        let pick = self.u8();
        let magic = match pick % 4 {
            0 | 1 => 0x0200_0000,
            2 => 0x0300_0000,
            _ => self.u32(),
        } | u32::from(self.u8() & 1);
        let mut v = magic.to_le_bytes().to_vec();
        for _ in 0..4 {
            v.extend_from_slice(&self.u32().to_le_bytes());
        }
        if pick % 4 == 2 || (pick % 4 == 3 && pick & 0x10 != 0) {
            let rootid = if pick & 0x20 != 0 { 0 } else { self.id() };
            v.extend_from_slice(&rootid.to_le_bytes());
        }
        if pick & 0x40 != 0 {
            v.truncate(self.u8() as usize % 28);
        }
        v
    }

    /// A POSIX ACL in its xattr form: a well formed one with or without
    /// named entries and a mask, or entries of any tag, or bytes.
    fn acl(&mut self) -> Vec<u8> {
        const NO_ID: u32 = u32::MAX;
        let pick = self.u8();
        let mut entries: Vec<(u16, u16, u32)> = Vec::new();
        let perm = |b: &mut Self| u16::from(b.u8() % 8);
        match pick % 8 {
            0..=3 => {
                entries.push((0x01, perm(self), NO_ID));
                let users = pick >> 3 & 3;
                let mut id = 0;
                for _ in 0..users {
                    id += u32::from(self.u8() % 8) + 1;
                    entries.push((0x02, perm(self), id));
                }
                entries.push((0x04, perm(self), NO_ID));
                let groups = pick >> 5 & 1;
                for _ in 0..groups {
                    let g = self.id();
                    entries.push((0x08, perm(self), g));
                }
                if users + groups > 0 || pick & 0x80 != 0 {
                    entries.push((0x10, perm(self), NO_ID));
                }
                entries.push((0x20, perm(self), NO_ID));
            }
            4 | 5 => {
                const TAGS: [u16; 7] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40];
                for _ in 0..self.u8() % 7 {
                    let tag = TAGS[self.u8() as usize % TAGS.len()];
                    let p = u16::from(self.u8() % 9);
                    let id = self.id();
                    entries.push((tag, p, id));
                }
            }
            6 => return Vec::new(),
            _ => return self.bytes(24),
        }
        let version: u32 = if pick & 0x40 != 0 && pick % 8 > 3 { 1 } else { 2 };
        let mut v = version.to_le_bytes().to_vec();
        for (tag, perm, id) in entries {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&perm.to_le_bytes());
            v.extend_from_slice(&id.to_le_bytes());
        }
        v
    }

    pub fn op(&mut self) -> Op {
        match self.u8() % 24 {
            0 | 1 => Op::Chown { file: self.u8(), uid: self.maybe_id(), gid: self.maybe_id() },
            2 | 3 => Op::Chmod { file: self.u8(), mode: self.mode() },
            4..=6 => Op::Make {
                dir: self.u8(),
                kind: self.kind(),
                mode: self.mode(),
                umask: [0o022, 0o002, 0o077, 0][self.u8() as usize % 4]
                    ^ u32::from(self.u8() & 0o10),
                dev: self.u32(),
            },
            7..=9 => {
                let (file, name) = (self.u8(), self.name());
                let value = self.value(name);
                let flags = [0, 0, 1, 2, 3, 4][self.u8() as usize % 6];
                Op::SetXattr { file, name, value, flags }
            }
            10 => Op::RemoveXattr { file: self.u8(), name: self.name() },
            11 => Op::Link { link: self.u8(), dir: self.u8() },
            12 => Op::Rename { link: self.u8(), to: self.u8(), onto: self.u8() & 1 == 0 },
            13 => Op::Unlink { link: self.u8() },
            14 => Op::Host { dir: self.u8(), kind: self.kind(), perms: self.mode() },
            15 => Op::Outside { link: self.u8(), kind: self.kind(), perms: self.mode() },
            16 => Op::Reload,
            17 => match self.u8() % 3 {
                0 => Op::Setuid(self.id()),
                1 => Op::Setreuid(self.id(), self.id()),
                _ => Op::Setresuid(self.id(), self.id(), self.id()),
            },
            18 => match self.u8() % 3 {
                0 => Op::Setgid(self.id()),
                1 => Op::Setregid(self.id(), self.id()),
                _ => Op::Setresgid(self.id(), self.id(), self.id()),
            },
            19 => Op::Setfsuid(self.id()),
            20 => Op::Setfsgid(self.id()),
            21 => {
                let n = self.u8() % 4;
                Op::Setgroups((0..n).map(|_| self.id()).collect())
            }
            22 => Op::Capset {
                effective: self.caps(),
                permitted: self.caps(),
                inheritable: self.caps(),
            },
            _ => Op::Keepcaps(self.u8() & 1 == 1),
        }
    }
}

/// The operations `data` describes, at most `max` of them.
pub fn decode(data: &[u8], max: usize) -> Vec<Op> {
    let mut b = Bytes::new(data);
    let mut ops = Vec::new();
    while !b.is_empty() && ops.len() < max {
        ops.push(b.op());
    }
    ops
}
