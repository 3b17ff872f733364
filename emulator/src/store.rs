//! The persisted form of the inode table: a snapshot keyed by path, and a
//! journal of changes keyed by inode. Pure encoding and decoding: the
//! supervisor and launcher do the files.
//!
//! Snapshot: `FRSTORE\0`, a little-endian `u32` format version, the image
//! root's device and inode, a `u64` record count, the records, and a CRC-32
//! of everything before it. A record: its path relative to the image root
//! (length-prefixed bytes), the attributes (mode, uid, gid, rdev major and
//! minor) and the emulated xattrs.
//!
//! Journal: `FRJRNL\0\0`, the version and the image root, then entries, each a `u32`
//! length, the payload and its CRC-32. A payload is a kind byte (1: the
//! record of an inode is now this; 2: forget the inode), the device and
//! inode numbers, and for kind 1 the attributes and xattrs. Entries are
//! whole states, so replaying one twice changes nothing.

use crate::attrs::Attrs;
use crate::table::{InodeKey, Xattrs};

pub const VERSION: u32 = 1;
const SNAPSHOT_MAGIC: &[u8; 8] = b"FRSTORE\0";
const JOURNAL_MAGIC: &[u8; 8] = b"FRJRNL\0\0";
/// Longest path or xattr value accepted when decoding, against garbage.
const MAX_FIELD: usize = 1 << 20;

/// Why a store cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// Not a store of fr's (wrong magic).
    NotAStore,
    /// Written by a newer fr, in a format this one does not know.
    FutureVersion(u32),
    /// Damaged: the checksum does not match, or a field runs past the end.
    Corrupt(&'static str),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NotAStore => write!(f, "it is not an fr metadata store"),
            StoreError::FutureVersion(v) => {
                write!(f, "it has format version {v}, newer than this fr reads ({VERSION}): use a newer fr")
            }
            StoreError::Corrupt(why) => write!(f, "it is damaged ({why})"),
        }
    }
}

/// The image root a store was written for: a copy of the image has
/// another one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootId {
    pub dev: u64,
    pub ino: u64,
}

/// One recorded file in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Relative to the image root, without a leading slash.
    pub path: Vec<u8>,
    pub attrs: Attrs,
    pub xattrs: Xattrs,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub root: RootId,
    pub records: Vec<Stored>,
}

/// One journal entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Set { key: InodeKey, attrs: Attrs, xattrs: Xattrs },
    Forget { key: InodeKey },
}

struct Out(Vec<u8>);

impl Out {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn attrs(&mut self, a: &Attrs) {
        for v in [a.mode, a.uid, a.gid, a.rdev_major, a.rdev_minor] {
            self.u32(v);
        }
    }
    fn xattrs(&mut self, x: &Xattrs) {
        self.u32(x.len() as u32);
        for (name, value) in x {
            self.bytes(name);
            self.bytes(value);
        }
    }
}

struct In<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> In<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(StoreError::Corrupt("truncated"))?;
        let s = &self.data[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, StoreError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, StoreError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, StoreError> {
        let n = self.u32()? as usize;
        if n > MAX_FIELD {
            return Err(StoreError::Corrupt("a field is too long"));
        }
        Ok(self.take(n)?.to_vec())
    }
    fn attrs(&mut self) -> Result<Attrs, StoreError> {
        Ok(Attrs {
            mode: self.u32()?,
            uid: self.u32()?,
            gid: self.u32()?,
            rdev_major: self.u32()?,
            rdev_minor: self.u32()?,
        })
    }
    fn xattrs(&mut self) -> Result<Xattrs, StoreError> {
        let n = self.u32()? as usize;
        let mut x = Xattrs::new();
        for _ in 0..n {
            let name = self.bytes()?;
            x.insert(name, self.bytes()?);
        }
        Ok(x)
    }
}

fn header(data: &[u8], magic: &[u8; 8]) -> Result<(), StoreError> {
    if data.len() < 12 || &data[..8] != magic {
        return Err(StoreError::NotAStore);
    }
    match u32::from_le_bytes([data[8], data[9], data[10], data[11]]) {
        VERSION => Ok(()),
        v => Err(StoreError::FutureVersion(v)),
    }
}

impl Snapshot {
    pub fn encode(&self) -> Vec<u8> {
        let mut o = Out(Vec::with_capacity(64 + self.records.len() * 64));
        o.0.extend_from_slice(SNAPSHOT_MAGIC);
        o.u32(VERSION);
        o.u64(self.root.dev);
        o.u64(self.root.ino);
        o.u64(self.records.len() as u64);
        for r in &self.records {
            o.bytes(&r.path);
            o.attrs(&r.attrs);
            o.xattrs(&r.xattrs);
        }
        let crc = crc32fast::hash(&o.0);
        o.u32(crc);
        o.0
    }

    pub fn decode(data: &[u8]) -> Result<Snapshot, StoreError> {
        header(data, SNAPSHOT_MAGIC)?;
        if data.len() < 16 {
            return Err(StoreError::Corrupt("truncated"));
        }
        let (body, crc) = data.split_at(data.len() - 4);
        if crc32fast::hash(body).to_le_bytes() != crc {
            return Err(StoreError::Corrupt("checksum mismatch"));
        }
        let mut i = In { data: body, at: 12 };
        let root = RootId { dev: i.u64()?, ino: i.u64()? };
        let count = i.u64()?;
        let mut records = Vec::new();
        for _ in 0..count {
            let path = i.bytes()?;
            records.push(Stored { path, attrs: i.attrs()?, xattrs: i.xattrs()? });
        }
        if i.at != body.len() {
            return Err(StoreError::Corrupt("trailing bytes"));
        }
        Ok(Snapshot { root, records })
    }
}

/// The journal's header, written once when it is created: a journal is
/// only replayed onto the image root it was written for.
pub fn journal_header(root: RootId) -> Vec<u8> {
    let mut h = JOURNAL_MAGIC.to_vec();
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(&root.dev.to_le_bytes());
    h.extend_from_slice(&root.ino.to_le_bytes());
    h
}

impl Change {
    /// One framed journal entry.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Out(Vec::with_capacity(64));
        match self {
            Change::Set { key, attrs, xattrs } => {
                p.u8(1);
                p.u64(key.dev);
                p.u64(key.ino);
                p.attrs(attrs);
                p.xattrs(xattrs);
            }
            Change::Forget { key } => {
                p.u8(2);
                p.u64(key.dev);
                p.u64(key.ino);
            }
        }
        let mut o = Out(Vec::with_capacity(p.0.len() + 8));
        o.u32(p.0.len() as u32);
        let crc = crc32fast::hash(&p.0);
        o.0.extend_from_slice(&p.0);
        o.u32(crc);
        o.0
    }
}

/// A journal's image root, its entries, and whether it ended in a torn or
/// damaged entry (the tail a killed writer leaves: that change was never
/// answered).
pub fn decode_journal(data: &[u8]) -> Result<(RootId, Vec<Change>, bool), StoreError> {
    header(data, JOURNAL_MAGIC)?;
    let mut i = In { data, at: 12 };
    let root = RootId { dev: i.u64()?, ino: i.u64()? };
    let mut changes = Vec::new();
    while i.at < data.len() {
        let Ok(entry) = i.u32().and_then(|n| i.take(n as usize)).and_then(|p| Ok((p, i.take(4)?)))
        else {
            return Ok((root, changes, true));
        };
        let (payload, crc) = entry;
        if crc32fast::hash(payload).to_le_bytes() != crc {
            return Ok((root, changes, true));
        }
        let mut p = In { data: payload, at: 0 };
        let decoded = (|| {
            let kind = p.u8()?;
            let key = InodeKey { dev: p.u64()?, ino: p.u64()? };
            match kind {
                1 => Ok(Change::Set { key, attrs: p.attrs()?, xattrs: p.xattrs()? }),
                2 => Ok(Change::Forget { key }),
                _ => Err(StoreError::Corrupt("unknown journal entry")),
            }
        })();
        match decoded {
            Ok(c) => changes.push(c),
            Err(_) => return Ok((root, changes, true)),
        }
    }
    Ok((root, changes, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::{S_IFCHR, S_IFREG};

    fn sample() -> Snapshot {
        let mut x = Xattrs::new();
        x.insert(b"security.capability".to_vec(), vec![1, 0, 0, 2]);
        Snapshot {
            root: RootId { dev: 8, ino: 2 },
            records: vec![
                Stored {
                    path: b"etc/shadow".to_vec(),
                    attrs: Attrs {
                        mode: S_IFREG | 0o640,
                        uid: 0,
                        gid: 42,
                        rdev_major: 0,
                        rdev_minor: 0,
                    },
                    xattrs: Xattrs::new(),
                },
                Stored {
                    path: b"dev/\xffodd".to_vec(),
                    attrs: Attrs {
                        mode: S_IFCHR | 0o600,
                        uid: 70000,
                        gid: 5,
                        rdev_major: 250,
                        rdev_minor: 300_000,
                    },
                    xattrs: x,
                },
            ],
        }
    }

    #[test]
    fn snapshots_round_trip() {
        let s = sample();
        assert_eq!(Snapshot::decode(&s.encode()), Ok(s));
    }

    #[test]
    fn damage_and_newer_versions_are_refused_with_a_reason() {
        let mut bytes = sample().encode();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        assert_eq!(Snapshot::decode(&bytes), Err(StoreError::Corrupt("checksum mismatch")));
        let mut future = sample().encode();
        future[8] = 9;
        assert_eq!(Snapshot::decode(&future), Err(StoreError::FutureVersion(9)));
        assert_eq!(Snapshot::decode(b"hello"), Err(StoreError::NotAStore));
        let good = sample().encode();
        assert!(Snapshot::decode(&good[..good.len() - 1]).is_err());
    }

    #[test]
    fn a_torn_journal_tail_is_dropped_and_the_rest_kept() {
        let key = InodeKey { dev: 1, ino: 7 };
        let set = Change::Set { key, attrs: sample().records[0].attrs, xattrs: Xattrs::new() };
        let root = RootId { dev: 3, ino: 4 };
        let mut j = journal_header(root);
        j.extend(set.encode());
        j.extend(Change::Forget { key }.encode());
        assert_eq!(
            decode_journal(&j),
            Ok((root, vec![set.clone(), Change::Forget { key }], false))
        );
        let torn = &j[..j.len() - 3];
        assert_eq!(decode_journal(torn), Ok((root, vec![set], true)));
    }
}
