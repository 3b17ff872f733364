//! The metadata store's decoders on arbitrary bytes: `Snapshot::decode`
//! and `decode_journal` answer `Ok` or `Err` and never panic; what they
//! accept encodes and decodes back to itself, and a journal replayed into
//! an inode table gives the same table as its re-encoding does.
//!
//! The first byte picks how the rest is used, so that the fuzzer also gets
//! past the checksums: 0, the bytes as they are; 1, a snapshot body given
//! its header and CRC-32; 2, journal entries given the header and framed
//! with their lengths and CRC-32s. Run: `cargo fuzz run store_load`.
#![no_main]

use fr_emulator::store::{self, decode_journal, journal_header, Change, Snapshot, SyncMarker};
use fr_emulator::table::Xattrs;
use fr_emulator::{Attrs, IdMap, InodeKey, InodeTable};
use libfuzzer_sys::fuzz_target;

/// The records of a table built from journal entries, in key order.
fn replay(changes: &[Change]) -> Vec<(InodeKey, Attrs, Xattrs)> {
    let t = InodeTable::new(IdMap::new(1000, 1000));
    for c in changes {
        match c.clone() {
            Change::Set { key, attrs, xattrs } => t.restore(key, attrs, xattrs),
            Change::Forget { key } => t.forget_quietly(key),
        }
    }
    let mut e = t.entries();
    e.sort_by_key(|r| r.0);
    e
}

fn shaped(data: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = data.split_first() else { return Vec::new() };
    match mode % 3 {
        0 => rest.to_vec(),
        1 => {
            let mut s = b"FRSTORE\0".to_vec();
            s.extend_from_slice(&store::VERSION.to_le_bytes());
            s.extend_from_slice(rest);
            let crc = crc32fast::hash(&s);
            s.extend_from_slice(&crc.to_le_bytes());
            s
        }
        _ => {
            // Version 1 framing: what older journals and state files hold.
            let mut j = b"FRJRNL\0\0".to_vec();
            j.extend_from_slice(&1u32.to_le_bytes());
            j.extend_from_slice(&1u64.to_le_bytes());
            j.extend_from_slice(&2u64.to_le_bytes());
            let mut rest = rest;
            // Each entry: a length byte, then that many payload bytes.
            while let Some((&n, tail)) = rest.split_first() {
                let n = (n as usize).min(tail.len());
                let (payload, tail) = tail.split_at(n);
                j.extend_from_slice(&(payload.len() as u32).to_le_bytes());
                j.extend_from_slice(payload);
                j.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
                rest = tail;
            }
            j
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let bytes = shaped(data);
    if let Ok(s) = Snapshot::decode(&bytes) {
        assert_eq!(Snapshot::decode(&s.encode()).as_ref(), Ok(&s));
    }
    if let Ok(scan) = decode_journal(&bytes) {
        let sync = scan.sync.unwrap_or(SyncMarker(*b"fuzzsync"));
        let mut again = journal_header(scan.root, sync);
        for c in &scan.changes {
            again.extend(c.encode(sync));
        }
        let scan2 = decode_journal(&again).expect("a re-encoded journal decodes");
        assert_eq!((scan2.root, &scan2.changes), (scan.root, &scan.changes));
        assert!(scan2.is_clean());
        assert_eq!(replay(&scan.changes), replay(&scan2.changes));
    }
});
