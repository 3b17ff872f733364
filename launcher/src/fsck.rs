//! `fr fsck [--repair] PATH`: what an image's metadata store (`IMAGE/.fr`)
//! or a host-tree state file (`fr exec -f -s FILE`) holds, and whether any
//! of it is damaged; with `--repair`, the store rebuilt from every intact
//! part, the damaged files kept beside it.
//!
//! A session refuses a damaged store rather than load what is intact and
//! go on: the next save would make the loss permanent, and nothing would
//! say what was lost. `fsck` is where the user decides. Its repair never
//! deletes a byte: the damaged journal becomes `journal.damaged` (a
//! damaged snapshot `store.damaged`, a state file `FILE.damaged`), the
//! intact entries are replayed in order onto the snapshot, a new snapshot
//! is written and the journal starts empty. It takes the image's lock, so
//! it never runs during a session.
//!
//! Exit status, as `e2fsck(8)`'s: 0 clean, 1 damage found and repaired, 4
//! damage found and left as it is; fr's own failure is 8.

use std::path::Path;

use fr_emulator::store::{decode_journal, JournalScan, Snapshot, StoreError};
use fr_emulator::InodeTable;

use crate::error::Error;
use crate::store::{describe_damage, replay, ImageStore, StateFile, DIR};

/// What `fsck` found, and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing damaged.
    Clean,
    /// Damage found and repaired.
    Repaired,
    /// Damage found and left (no `--repair`).
    Damaged,
}

impl Outcome {
    /// The exit status (`e2fsck(8)`'s).
    pub fn code(self) -> u8 {
        match self {
            Outcome::Clean => 0,
            Outcome::Repaired => 1,
            Outcome::Damaged => 4,
        }
    }
}

/// Checks (and with `repair` repairs) the store of the image `path`, or
/// the state file `path`.
pub fn fsck(path: &Path, repair: bool) -> Result<Outcome, Error> {
    if path.is_file() {
        return state_file(path, repair);
    }
    let image = crate::run::check_image(path)?;
    let shown = image.display();
    if !image.join(DIR).is_dir() {
        println!("{shown}: no fr metadata store ({DIR}): nothing to check");
        return Ok(Outcome::Clean);
    }
    let store = ImageStore::open(&image)?;
    let mut damaged = false;

    let snapshot_path = store.snapshot_path();
    let snapshot = match store.snapshot_bytes()? {
        None => {
            println!("snapshot {}: none yet", snapshot_path.display());
            Ok(None)
        }
        Some(bytes) => match Snapshot::decode(&bytes) {
            Ok(s) => {
                println!(
                    "snapshot {}: {} records, checksum ok",
                    snapshot_path.display(),
                    s.records.len()
                );
                Ok(Some(s))
            }
            Err(e @ StoreError::FutureVersion(_)) => {
                return Err(Error::Store {
                    path: snapshot_path.display().to_string(),
                    source: e.into(),
                })
            }
            Err(e) => {
                damaged = true;
                println!("snapshot {}: {e}{}", snapshot_path.display(), claimed(&bytes));
                Err(())
            }
        },
    };

    let journal_path = store.journal_file();
    let journal = match store.journal_bytes()? {
        None => {
            println!("journal {}: none (no change since the last save)", journal_path.display());
            None
        }
        Some(bytes) => match decode_journal(&bytes) {
            Ok(scan) => {
                println!("journal {}: {}", journal_path.display(), summary(&scan));
                if scan.root != store.root() {
                    println!(
                        "  written for another image root (device {}, inode {}; this one is \
                         device {}, inode {}): a copy made after a killed session; its entries \
                         are not applied here",
                        scan.root.dev,
                        scan.root.ino,
                        store.root().dev,
                        store.root().ino
                    );
                } else {
                    println!("  written for this image root");
                }
                details(&scan);
                damaged |= !scan.damage.is_empty();
                Some(Ok(scan))
            }
            Err(e @ StoreError::FutureVersion(_)) => {
                return Err(Error::Store {
                    path: journal_path.display().to_string(),
                    source: e.into(),
                })
            }
            Err(e) => {
                damaged = true;
                println!("journal {}: {e} ({} bytes)", journal_path.display(), bytes.len());
                Some(Err(()))
            }
        },
    };
    if store.leftover_tmp(false) {
        println!(
            "{}/store.tmp: left by a save that failed (not damage{})",
            image.join(DIR).display(),
            if repair { "; removed" } else { "; --repair removes it" }
        );
        store.leftover_tmp(repair);
    }

    if !damaged {
        println!("{shown}: clean");
        return Ok(Outcome::Clean);
    }
    if !repair {
        println!(
            "{shown}: damaged; fr fsck --repair {shown} keeps every intact entry and sets the \
             damaged files aside"
        );
        return Ok(Outcome::Damaged);
    }

    // The repair: the snapshot's records, then every intact entry of the
    // journal in order, saved as a new snapshot.
    // Its paths resolved, and its tree walked, as a session would.
    let table = InodeTable::new(crate::idmap::enter_for_image()?);
    match snapshot {
        Ok(Some(s)) => {
            let dropped = store.restore(&table, s)?;
            if dropped > 0 {
                println!(
                    "{dropped} records of the snapshot name files removed or changed outside \
                     fr: dropped, as a session drops them"
                );
            }
        }
        Ok(None) => {}
        Err(()) => {
            let aside = store.set_aside("store")?;
            println!(
                "lost: the records of the damaged snapshot, which cannot be read (its bytes are \
                 kept as {}); files recorded before the journal began show as fr finds them \
                 (the user's own as root)",
                aside.display()
            );
        }
    }
    let mut set_aside = false;
    match journal {
        Some(Ok(scan)) => {
            let intact = scan.changes.len();
            if scan.root == store.root() {
                replay(&table, scan.changes);
                println!("replayed {intact} intact journal entries");
            }
            if !scan.damage.is_empty() || scan.root != store.root() {
                let aside = store.set_aside("journal")?;
                println!("the journal is kept as {}", aside.display());
                set_aside = true;
            }
        }
        Some(Err(())) => {
            let aside = store.set_aside("journal")?;
            println!(
                "lost: the entries of the journal, whose header is damaged (its bytes are kept \
                 as {})",
                aside.display()
            );
            set_aside = true;
        }
        None => {}
    }
    store.save(&table)?;
    if set_aside {
        store.empty_journal()?;
    }
    println!(
        "{shown}: repaired: a new snapshot with {} records, and an empty journal",
        table.len()
    );
    Ok(Outcome::Repaired)
}

/// The number of records a damaged snapshot says it has, if its header
/// can be read.
fn claimed(bytes: &[u8]) -> String {
    match bytes.get(28..36) {
        Some(n) if bytes.starts_with(b"FRSTORE\0") => {
            let n = u64::from_le_bytes(n.try_into().unwrap_or_default());
            format!(" (it says it holds {n} records)")
        }
        _ => String::new(),
    }
}

fn summary(scan: &JournalScan) -> String {
    format!("format {}, {} intact entries", scan.version, scan.changes.len())
}

fn details(scan: &JournalScan) {
    for d in &scan.damage {
        println!(
            "  damaged: {} bytes at byte {} (entry {}), {} intact entries after them",
            d.len, d.offset, d.entry, d.intact_after
        );
    }
    if let Some(at) = scan.torn {
        println!(
            "  torn tail at byte {at}: the last entry of a session that was killed while writing \
             it (its call was never answered); dropped"
        );
    }
}

/// A host-tree state file: checked, and repaired into a file of its
/// intact entries (for the root file system it was written on).
fn state_file(path: &Path, repair: bool) -> Result<Outcome, Error> {
    let state = StateFile::new(path)?;
    let bytes = state.bytes()?;
    let shown = path.display();
    let scan = match decode_journal(&bytes) {
        Ok(scan) => scan,
        Err(StoreError::NotAStore) => {
            return Err(Error::Store {
                path: shown.to_string(),
                source: "it is not an fr state file or image (fr exec -f -s FILE writes one)"
                    .into(),
            })
        }
        Err(e) => return Err(Error::Store { path: shown.to_string(), source: e.into() }),
    };
    println!("state file {shown}: {}", summary(&scan));
    if scan.root != state.root() {
        println!("  written on another root file system: its records are not applied here");
    }
    details(&scan);
    if scan.damage.is_empty() {
        println!("{shown}: clean");
        return Ok(Outcome::Clean);
    }
    if !repair {
        println!(
            "{shown}: damaged ({}); fr fsck --repair {shown} keeps every intact entry and sets \
             the damaged file aside",
            describe_damage(&scan)
        );
        return Ok(Outcome::Damaged);
    }
    let table = InodeTable::new(crate::mode::id_map(Path::new("/")));
    let root = scan.root;
    replay(&table, scan.changes);
    let aside = state.set_aside()?;
    state.write(&table, root)?;
    println!(
        "{shown}: repaired: {} records kept; the damaged file is kept as {}",
        table.len(),
        aside.display()
    );
    Ok(Outcome::Repaired)
}
