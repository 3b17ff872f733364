//! The persisted form of the inode table: a snapshot keyed by path, and a
//! journal of changes keyed by inode. Pure encoding and decoding: the
//! supervisor and launcher do the files.
//!
//! Snapshot: `FRSTORE\0`, a little-endian `u32` format version (1), the
//! image root's device and inode, a `u64` record count, the records, and a
//! CRC-32 of everything before it. A record: its path relative to the image
//! root (length-prefixed bytes), the attributes (mode, uid, gid, rdev major
//! and minor) and the emulated xattrs.
//!
//! Journal: `FRJRNL\0\0`, the version, the image root and (version 2) the
//! journal's sync marker, eight bytes the writer chose at random; then
//! entries. A version 2 entry is the marker, a `u32` payload length, the
//! payload, and a CRC-32 of the length and the payload; a version 1 entry
//! (still read) is the length, the payload and a CRC-32 of the payload. A
//! payload is a kind byte (1: the record of an inode is now this; 2: forget
//! the inode), the device and inode numbers, and for kind 1 the attributes
//! and xattrs. Entries are whole states, so replaying one twice changes
//! nothing.
//!
//! Damage against a torn tail: a writer killed mid-`write(2)` leaves one
//! bad entry at the end, whose call was never answered. A bad entry with
//! intact ones after it is something else (a flipped bit, a bad block, a
//! tool that wrote into the file), and the entries after it are answered
//! changes: the reader finds them again by the marker (version 1: at any
//! byte) with a good CRC and a payload that decodes, and reports the bad
//! bytes between as [`Damage`], which the launcher refuses to load
//! silently. A random marker keeps an xattr value that happens to hold a
//! whole entry from passing for one.

use crate::attrs::Attrs;
use crate::table::{InodeKey, Xattrs};

/// The snapshot's format version.
pub const VERSION: u32 = 1;
/// The journal's format version (1 is still read).
pub const JOURNAL_VERSION: u32 = 2;
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

impl std::error::Error for StoreError {}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NotAStore => write!(f, "it is not an fr metadata store"),
            StoreError::FutureVersion(v) => {
                write!(f, "it has format version {v}, newer than this fr reads: use a newer fr")
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

/// A journal's sync marker: the eight bytes that open each of its
/// version 2 entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncMarker(pub [u8; 8]);

/// The journal's header, written once when it is created: a journal is
/// only replayed onto the image root it was written for.
pub fn journal_header(root: RootId, sync: SyncMarker) -> Vec<u8> {
    let mut h = JOURNAL_MAGIC.to_vec();
    h.extend_from_slice(&JOURNAL_VERSION.to_le_bytes());
    h.extend_from_slice(&root.dev.to_le_bytes());
    h.extend_from_slice(&root.ino.to_le_bytes());
    h.extend_from_slice(&sync.0);
    h
}

impl Change {
    fn payload(&self) -> Vec<u8> {
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
        p.0
    }

    /// One framed journal entry (version 2) for the journal whose marker
    /// is `sync`.
    pub fn encode(&self, sync: SyncMarker) -> Vec<u8> {
        let payload = self.payload();
        let mut o = Out(Vec::with_capacity(payload.len() + 16));
        o.0.extend_from_slice(&sync.0);
        o.u32(payload.len() as u32);
        o.0.extend_from_slice(&payload);
        let crc = crc32fast::hash(&o.0[8..]);
        o.u32(crc);
        o.0
    }

    /// One entry as version 1 framed it (length, payload, CRC-32 of the
    /// payload): what older journals and state files hold.
    pub fn encode_v1(&self) -> Vec<u8> {
        let payload = self.payload();
        let mut o = Out(Vec::with_capacity(payload.len() + 8));
        o.u32(payload.len() as u32);
        o.0.extend_from_slice(&payload);
        o.u32(crc32fast::hash(&payload));
        o.0
    }

    fn decode_payload(payload: &[u8]) -> Option<Change> {
        let mut p = In { data: payload, at: 0 };
        let kind = p.u8().ok()?;
        let key = InodeKey { dev: p.u64().ok()?, ino: p.u64().ok()? };
        let change = match kind {
            1 => Change::Set { key, attrs: p.attrs().ok()?, xattrs: p.xattrs().ok()? },
            2 => Change::Forget { key },
            _ => return None,
        };
        // A writer fills the payload exactly: anything else is not an entry.
        (p.at == payload.len()).then_some(change)
    }
}

/// Bad bytes of a journal with intact entries after them: not the torn
/// tail a killed writer leaves, and answered changes may be in them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Where the bad bytes start, from the start of the file.
    pub offset: u64,
    /// How many there are, up to the next intact entry.
    pub len: u64,
    /// The place (from 1) of the first bad entry among the journal's
    /// entries, each earlier damaged region counted as one.
    pub entry: usize,
    /// Intact entries after it, to the end of the journal.
    pub intact_after: usize,
}

/// What a journal holds, as [`decode_journal`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalScan {
    /// The format version (1 or 2).
    pub version: u32,
    /// The image root it was written for.
    pub root: RootId,
    /// The marker of its entries (version 2).
    pub sync: Option<SyncMarker>,
    /// Every intact entry, in the order written.
    pub changes: Vec<Change>,
    /// Where each of `changes` starts in the file.
    pub offsets: Vec<u64>,
    /// Bad bytes at the end with no intact entry after them, the torn
    /// tail of a killed writer: where they start.
    pub torn: Option<u64>,
    /// Each damaged region, in order.
    pub damage: Vec<Damage>,
}

impl JournalScan {
    /// Whether every byte after the header belongs to an intact entry.
    pub fn is_clean(&self) -> bool {
        self.torn.is_none() && self.damage.is_empty()
    }
}

/// Version 1 and 2 headers: magic, version, root, and the marker.
fn journal_start(data: &[u8]) -> Result<(u32, RootId, Option<SyncMarker>, usize), StoreError> {
    if data.len() < 12 || &data[..8] != JOURNAL_MAGIC {
        return Err(StoreError::NotAStore);
    }
    let version = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
    if !(1..=JOURNAL_VERSION).contains(&version) {
        return Err(StoreError::FutureVersion(version));
    }
    let mut i = In { data, at: 12 };
    let root = RootId { dev: i.u64()?, ino: i.u64()? };
    let sync = match version {
        1 => None,
        _ => {
            let mut m = [0u8; 8];
            m.copy_from_slice(i.take(8)?);
            Some(SyncMarker(m))
        }
    };
    Ok((version, root, sync, i.at))
}

/// The intact entry at `at`, and where it ends; `None` if the bytes there
/// are not one (marker, length, CRC-32, payload).
fn entry_at(data: &[u8], at: usize, sync: Option<SyncMarker>) -> Option<(Change, usize)> {
    let mut i = In { data, at };
    if let Some(sync) = sync {
        if i.take(8).ok()? != sync.0 {
            return None;
        }
    }
    let framed = i.at;
    let len = i.u32().ok()? as usize;
    let payload = i.take(len).ok()?;
    let crc = i.take(4).ok()?;
    let covered = if sync.is_some() { &data[framed..framed + 4 + len] } else { payload };
    if crc32fast::hash(covered).to_le_bytes() != crc {
        return None;
    }
    Some((Change::decode_payload(payload)?, i.at))
}

/// The next place after `from` where an intact entry starts: at a marker
/// (version 2), or at any byte (version 1, which has none).
fn resync(data: &[u8], from: usize, sync: Option<SyncMarker>) -> Option<usize> {
    match sync {
        Some(sync) => {
            let mut at = from;
            while at + 8 <= data.len() {
                let found = data[at..].windows(8).position(|w| w == sync.0)?;
                at += found;
                if entry_at(data, at, Some(sync)).is_some() {
                    return Some(at);
                }
                at += 1;
            }
            None
        }
        None => (from..data.len()).find(|&at| entry_at(data, at, None).is_some()),
    }
}

/// A journal's header and every intact entry, with its torn tail and
/// damaged regions (see the module's documentation). Only a header that
/// is not a journal's, or of a newer version, is an error.
pub fn decode_journal(data: &[u8]) -> Result<JournalScan, StoreError> {
    let (version, root, sync, start) = journal_start(data)?;
    let mut scan = JournalScan {
        version,
        root,
        sync,
        changes: Vec::new(),
        offsets: Vec::new(),
        torn: None,
        damage: Vec::new(),
    };
    let mut at = start;
    while at < data.len() {
        if let Some((change, end)) = entry_at(data, at, sync) {
            scan.changes.push(change);
            scan.offsets.push(at as u64);
            at = end;
            continue;
        }
        match resync(data, at + 1, sync) {
            Some(next) => {
                scan.damage.push(Damage {
                    offset: at as u64,
                    len: (next - at) as u64,
                    entry: scan.changes.len() + scan.damage.len() + 1,
                    intact_after: 0,
                });
                at = next;
            }
            None => {
                scan.torn = Some(at as u64);
                break;
            }
        }
    }
    for d in &mut scan.damage {
        d.intact_after = scan.offsets.iter().filter(|&&o| o > d.offset).count();
    }
    Ok(scan)
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

    const ROOT: RootId = RootId { dev: 3, ino: 4 };
    const SYNC: SyncMarker = SyncMarker(*b"\x8e\x01sync\x7f\xa5");

    fn set(ino: u64, uid: u32) -> Change {
        let mut attrs = sample().records[0].attrs;
        attrs.uid = uid;
        let mut xattrs = Xattrs::new();
        if ino % 3 == 0 {
            xattrs.insert(b"trusted.t".to_vec(), vec![ino as u8; (ino % 7) as usize]);
        }
        Change::Set { key: InodeKey { dev: 1, ino }, attrs, xattrs }
    }

    fn journal(changes: &[Change]) -> (Vec<u8>, Vec<usize>) {
        let mut j = journal_header(ROOT, SYNC);
        let mut starts = Vec::new();
        for c in changes {
            starts.push(j.len());
            j.extend(c.encode(SYNC));
        }
        (j, starts)
    }

    #[test]
    fn a_torn_journal_tail_is_dropped_and_the_rest_kept() {
        let key = InodeKey { dev: 1, ino: 7 };
        let changes = [set(7, 0), Change::Forget { key }];
        let (j, _) = journal(&changes);
        let scan = decode_journal(&j).unwrap();
        assert_eq!((scan.version, scan.root, scan.sync), (2, ROOT, Some(SYNC)));
        assert_eq!(scan.changes, changes);
        assert!(scan.is_clean());
        let torn = decode_journal(&j[..j.len() - 3]).unwrap();
        assert_eq!(torn.changes, changes[..1]);
        assert!(torn.damage.is_empty());
        assert_eq!(torn.torn, Some(torn.offsets[0] + changes[0].encode(SYNC).len() as u64));
    }

    #[test]
    fn a_flipped_byte_mid_journal_is_damage_and_the_entries_after_it_are_kept() {
        let changes: Vec<Change> = (0..20).map(|n| set(n, n as u32)).collect();
        let (j, starts) = journal(&changes);
        for (n, &start) in starts.iter().enumerate().take(19) {
            // The marker, the length, the payload, the CRC.
            for at in [start, start + 9, start + 14, starts[n + 1] - 1] {
                let mut bad = j.clone();
                bad[at] ^= 0x10;
                let scan = decode_journal(&bad).unwrap();
                let mut kept = changes.clone();
                kept.remove(n);
                assert_eq!(scan.changes, kept, "byte {at} of entry {n}");
                assert_eq!(scan.torn, None);
                let d = &scan.damage[..];
                assert_eq!(d.len(), 1, "byte {at} of entry {n}");
                assert_eq!(
                    (d[0].offset, d[0].entry, d[0].intact_after),
                    (start as u64, n + 1, 19 - n)
                );
                assert_eq!(d[0].len, (starts[n + 1] - start) as u64);
            }
        }
        // In the last entry, nothing intact follows: a torn tail.
        let mut bad = j.clone();
        bad[starts[19] + 20] ^= 1;
        let scan = decode_journal(&bad).unwrap();
        assert_eq!(
            (scan.changes.len(), scan.torn, scan.damage.len()),
            (19, Some(starts[19] as u64), 0)
        );
    }

    #[test]
    fn an_entry_inside_an_xattr_value_is_not_taken_for_one() {
        // The value holds a whole entry framed with another marker.
        let inner = set(99, 5).encode(SyncMarker(*b"otherone"));
        let mut x = Xattrs::new();
        x.insert(b"trusted.x".to_vec(), inner);
        let big = Change::Set {
            key: InodeKey { dev: 1, ino: 1 },
            attrs: sample().records[0].attrs,
            xattrs: x,
        };
        let (mut j, starts) = journal(&[big, set(2, 2)]);
        j[starts[0] + 9] ^= 0xff;
        let scan = decode_journal(&j).unwrap();
        assert_eq!(scan.changes, [set(2, 2)]);
    }

    #[test]
    fn version_1_journals_are_read_and_their_damage_found() {
        let changes: Vec<Change> = (0..6).map(|n| set(n, n as u32 + 10)).collect();
        let mut j = JOURNAL_MAGIC.to_vec();
        j.extend_from_slice(&1u32.to_le_bytes());
        j.extend_from_slice(&ROOT.dev.to_le_bytes());
        j.extend_from_slice(&ROOT.ino.to_le_bytes());
        let mut starts = Vec::new();
        for c in &changes {
            starts.push(j.len());
            j.extend(c.encode_v1());
        }
        let scan = decode_journal(&j).unwrap();
        assert_eq!((scan.version, scan.sync, &scan.changes), (1, None, &changes));
        assert!(scan.is_clean());
        let mut bad = j.clone();
        bad[starts[2] + 30] ^= 4;
        let scan = decode_journal(&bad).unwrap();
        assert_eq!(scan.changes.len(), 5);
        assert_eq!(scan.damage.len(), 1);
        assert_eq!((scan.damage[0].offset, scan.damage[0].intact_after), (starts[2] as u64, 3));
        // A length that runs past the end, then intact entries: damage.
        let mut bad = j.clone();
        bad[starts[1] + 3] = 0x7f;
        let scan = decode_journal(&bad).unwrap();
        assert_eq!((scan.changes.len(), scan.damage.len(), scan.torn), (5, 1, None));
        let torn = decode_journal(&j[..j.len() - 1]).unwrap();
        assert_eq!((torn.changes.len(), torn.torn), (5, Some(starts[5] as u64)));
    }

    #[test]
    fn a_journal_header_of_a_newer_version_is_refused() {
        let (mut j, _) = journal(&[set(1, 1)]);
        j[8] = 3;
        assert_eq!(decode_journal(&j), Err(StoreError::FutureVersion(3)));
        assert_eq!(decode_journal(b"FRSTORE\0\x01\0\0\0"), Err(StoreError::NotAStore));
        assert!(decode_journal(&journal(&[]).0[..30]).is_err(), "a torn header");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Damage anywhere: every entry before the first changed byte comes
        /// back intact and in order, every entry wholly after the changed
        /// bytes too, and a dropped entry is never called a clean journal.
        #[test]
        fn damage_never_hides_or_invents_entries(
            n in 1usize..24,
            at in 0usize..10_000,
            len in 1usize..40,
            how in 0u8..3,
            xor in 1u8..=255,
        ) {
            let changes: Vec<Change> = (0..n as u64).map(|i| set(i, i as u32)).collect();
            let (j, starts) = journal(&changes);
            let body = starts[0];
            let at = body + at % (j.len() - body);
            let mut bad = j.clone();
            let end = match how {
                // Flip bytes.
                0 => {
                    let end = (at + len).min(bad.len());
                    for b in &mut bad[at..end] {
                        *b ^= xor;
                    }
                    end
                }
                // Cut the file.
                1 => {
                    bad.truncate(at);
                    at
                }
                // Splice bytes of the journal's own over the place.
                _ => {
                    let from = body + (at * 7 + len) % (j.len() - body);
                    let piece: Vec<u8> = j[from..(from + len).min(j.len())].to_vec();
                    let end = (at + piece.len()).min(bad.len());
                    bad[at..end].copy_from_slice(&piece[..end - at]);
                    end
                }
            };
            let scan = decode_journal(&bad).unwrap();
            let ends: Vec<usize> = starts.iter().skip(1).copied().chain([j.len()]).collect();
            let before: Vec<&Change> =
                changes.iter().zip(&ends).filter(|(_, &e)| e <= at).map(|(c, _)| c).collect();
            proptest::prop_assert!(scan.changes.len() >= before.len());
            proptest::prop_assert_eq!(&scan.changes.iter().collect::<Vec<_>>()[..before.len()], &before[..]);
            if how != 1 {
                let after: Vec<&Change> =
                    changes.iter().zip(&starts).filter(|(_, &s)| s >= end).map(|(c, _)| c).collect();
                let got: Vec<&Change> = scan.changes.iter().collect();
                proptest::prop_assert!(got.ends_with(&after), "entries after the damage kept");
                let dropped = changes.len() > scan.changes.len()
                    || scan.changes.iter().zip(&changes).any(|(a, b)| a != b);
                if bad != j && dropped {
                    proptest::prop_assert!(!scan.is_clean(), "a dropped entry is reported");
                }
            }
        }
    }
}
