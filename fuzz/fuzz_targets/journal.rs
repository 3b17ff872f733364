//! The journal's reader against damage. The first byte picks the mode:
//!
//! - even: the rest as a journal file, as it is. `decode_journal` answers
//!   `Ok` or `Err` and never panics; every damaged region and the torn
//!   tail lie inside the file, in order, after the entries before them.
//! - odd: a journal of random changes is encoded (version 2, or 1 when the
//!   second byte is odd), then damaged by up to four random edits (bytes
//!   flipped, the file cut, bytes of its own spliced elsewhere). Every
//!   entry that ends before the first changed byte comes back intact and
//!   in order; every entry that starts after the last changed byte comes
//!   back intact (version 2, whose entries a reader finds by their marker;
//!   version 1 has none, and an xattr value holding a whole entry can pass
//!   for one); and a journal called clean is exactly the encoding of the
//!   entries returned (so changed bytes that cost an entry are reported,
//!   unless they made other whole, valid entries of it). The marker is a hash of the input, as a writer's is
//!   random: an input cannot hold its own marker on purpose.
//!
//! Run: `cargo fuzz run journal`.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use fr_emulator::store::{decode_journal, journal_header, Change, RootId, SyncMarker};
use fr_emulator::table::Xattrs;
use fr_emulator::{Attrs, InodeKey};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Set { ino: u8, mode: u16, uid: u32, xattr: Option<(u8, Vec<u8>)> },
    Forget { ino: u8 },
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Flip { at: u16, len: u8, xor: u8 },
    Cut { at: u16 },
    Splice { from: u16, to: u16, len: u8 },
}

fn change(op: &Op) -> Change {
    match op {
        Op::Set { ino, mode, uid, xattr } => {
            let mut xattrs = Xattrs::new();
            if let Some((n, v)) = xattr {
                xattrs.insert(format!("trusted.{n}").into_bytes(), v.clone());
            }
            let attrs = Attrs {
                mode: 0o100_000 | u32::from(*mode & 0o7777),
                uid: *uid,
                gid: 0,
                rdev_major: 0,
                rdev_minor: 0,
            };
            Change::Set { key: InodeKey { dev: 1, ino: u64::from(*ino) }, attrs, xattrs }
        }
        Op::Forget { ino } => Change::Forget { key: InodeKey { dev: 1, ino: u64::from(*ino) } },
    }
}

fn any_bytes(data: &[u8]) {
    let Ok(scan) = decode_journal(data) else { return };
    assert_eq!(scan.offsets.len(), scan.changes.len());
    assert!(scan.offsets.windows(2).all(|w| w[0] < w[1]));
    assert!(scan.offsets.iter().all(|&o| (o as usize) < data.len()));
    for d in &scan.damage {
        assert!(d.len > 0 && (d.offset + d.len) as usize <= data.len(), "{d:?}");
    }
    if let Some(t) = scan.torn {
        assert!((t as usize) < data.len());
    }
}

/// FNV-1a of the input: the journal's marker.
fn marker(data: &[u8]) -> SyncMarker {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    SyncMarker(h.to_le_bytes())
}

fn damaged(u: &mut Unstructured<'_>, sync: SyncMarker) -> arbitrary::Result<()> {
    let v1 = u.arbitrary::<u8>()? % 2 == 1;
    let ops: Vec<Op> = u.arbitrary()?;
    let edits: Vec<Edit> = u.arbitrary_iter()?.take(4).collect::<Result<_, _>>()?;
    let changes: Vec<Change> = ops.iter().map(change).collect();
    let root = RootId { dev: 7, ino: 2 };
    let mut j = if v1 {
        let mut h = b"FRJRNL\0\0".to_vec();
        h.extend_from_slice(&1u32.to_le_bytes());
        h.extend_from_slice(&root.dev.to_le_bytes());
        h.extend_from_slice(&root.ino.to_le_bytes());
        h
    } else {
        journal_header(root, sync)
    };
    let body = j.len();
    let mut spans = Vec::new();
    for c in &changes {
        let start = j.len();
        j.extend(if v1 { c.encode_v1() } else { c.encode(sync) });
        spans.push((start, j.len()));
    }
    let clean = decode_journal(&j).expect("an encoded journal decodes");
    assert_eq!(clean.changes, changes);
    assert!(clean.is_clean());
    if j.len() == body {
        return Ok(());
    }
    // The changed bytes: [first, last) of the body; a cut ends the file.
    let mut bad = j.clone();
    let (mut first, mut last) = (usize::MAX, 0usize);
    let mut cut = false;
    for e in &edits {
        let span = bad.len() - body;
        if span == 0 {
            break;
        }
        match *e {
            Edit::Flip { at, len, xor } => {
                let at = body + usize::from(at) % span;
                let end = (at + usize::from(len).max(1)).min(bad.len());
                for b in &mut bad[at..end] {
                    *b ^= xor | 1;
                }
                (first, last) = (first.min(at), last.max(end));
            }
            Edit::Cut { at } => {
                let at = body + usize::from(at) % span;
                bad.truncate(at);
                first = first.min(at);
                cut = true;
            }
            Edit::Splice { from, to, len } => {
                let from = body + usize::from(from) % span;
                let to = body + usize::from(to) % span;
                let piece: Vec<u8> = j[from..(from + usize::from(len)).min(j.len())].to_vec();
                let end = (to + piece.len()).min(bad.len());
                bad[to..end].copy_from_slice(&piece[..end - to]);
                if bad[to..end] != j[to..end.min(j.len())] {
                    (first, last) = (first.min(to), last.max(end));
                }
            }
        }
    }
    let scan = decode_journal(&bad).expect("the header was not touched");
    let got: Vec<&Change> = scan.changes.iter().collect();
    let before: Vec<&Change> =
        changes.iter().zip(&spans).filter(|(_, s)| s.1 <= first).map(|(c, _)| c).collect();
    assert!(
        got.len() >= before.len(),
        "{} of {} entries before the damage",
        got.len(),
        before.len()
    );
    assert_eq!(got[..before.len()], before[..], "the entries before the damage, in order");
    if !cut && !v1 {
        let after: Vec<&Change> =
            changes.iter().zip(&spans).filter(|(_, s)| s.0 >= last).map(|(c, _)| c).collect();
        assert!(got.ends_with(&after), "the entries after the damage, intact and in order");
    }
    // Clean means every byte is accounted for: the file is exactly the
    // encoding of what was returned. Damage that turned entries into
    // other valid entries (a splice of a whole entry) is not detectable,
    // and is clean by that measure; anything else is reported.
    if scan.is_clean() {
        let mut again = j[..body].to_vec();
        for c in &scan.changes {
            again.extend(if v1 { c.encode_v1() } else { c.encode(sync) });
        }
        assert_eq!(again, bad, "a damaged journal is called clean");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        any_bytes(rest);
    } else {
        let _ = damaged(&mut Unstructured::new(rest), marker(rest));
    }
});
