//! The image's metadata store at 100,000 records: a snapshot written
//! (`ImageStore::save`: the image walked for paths, encoded, written and
//! synced), read back (`ImageStore::load`: decoded and every path
//! re-resolved), and the pure encoding alone; the host tree's inode-keyed
//! state file for comparison. The native baseline is walking the same
//! tree with `statx` and nothing else, what any save must at least do.
//!
//!     cargo bench --bench persistence
//!
//! The image (100,000 empty files in 100 directories) is made once under
//! `target/bench-persistence`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use fr_emulator::attrs::S_IFREG;
use fr_emulator::store::{Snapshot, Stored};
use fr_emulator::{Attrs, IdMap, InodeKey, InodeTable};
use fr_launcher::store::{ImageStore, StateFile};
use rustix::fs::{statx, AtFlags, StatxFlags, CWD};

const FILES: usize = 100_000;
const DIRS: usize = 100;

fn image() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-persistence");
    let done = root.join(".made");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&root);
        for d in 0..DIRS {
            let dir = root.join(format!("d{d:03}"));
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..FILES / DIRS {
                std::fs::File::create(dir.join(format!("f{f:04}"))).unwrap();
            }
        }
        std::fs::write(&done, "").unwrap();
    }
    root
}

fn key(path: &Path) -> InodeKey {
    let st = statx(CWD, path, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS).unwrap();
    InodeKey {
        dev: (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor),
        ino: st.stx_ino,
    }
}

/// A table with a record (a chown) for every file of the image.
fn table(root: &Path) -> InodeTable {
    let ids = IdMap::new(rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
    let t = InodeTable::new(ids);
    for d in 0..DIRS {
        for f in 0..FILES / DIRS {
            let path = root.join(format!("d{d:03}/f{f:04}"));
            let attrs = Attrs {
                mode: S_IFREG | 0o644,
                uid: 1000 + f as u32,
                gid: 100,
                rdev_major: 0,
                rdev_minor: 0,
            };
            t.restore(key(&path), attrs, Default::default());
        }
    }
    t
}

fn walk(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let st = statx(CWD, e.path(), AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS).unwrap();
        n += 1;
        if u32::from(st.stx_mode) & 0o170000 == 0o040000 {
            n += walk(&e.path());
        }
    }
    n
}

fn persistence(c: &mut Criterion) {
    let root = image();
    let t = table(&root);
    assert_eq!(t.len(), FILES);
    let mut group = c.benchmark_group("persistence-100k");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(1));

    group.bench_function("native: walk the image with statx", |b| {
        b.iter(|| assert!(walk(&root) >= FILES))
    });
    let store = ImageStore::open(&root).unwrap();
    group.bench_function("fr: save the snapshot (walk, encode, write, fsync)", |b| {
        b.iter(|| store.save(&t).unwrap())
    });
    group.bench_function("fr: load the snapshot (decode, re-resolve every path)", |b| {
        b.iter(|| {
            let fresh = InodeTable::new(t.ids().clone());
            store.load(&fresh).unwrap();
            assert_eq!(fresh.len(), FILES);
        })
    });
    drop(store);
    let records: Vec<Stored> = t
        .entries()
        .into_iter()
        .enumerate()
        .map(|(i, (_, attrs, xattrs))| Stored {
            path: format!("d{:03}/f{:04}", i / 1000, i % 1000).into_bytes(),
            attrs,
            xattrs,
        })
        .collect();
    let snapshot = Snapshot { root: fr_emulator::store::RootId { dev: 1, ino: 2 }, records };
    group.bench_function("fr: encode the snapshot alone", |b| b.iter(|| snapshot.encode().len()));
    let encoded = snapshot.encode();
    group.bench_function("fr: decode the snapshot alone", |b| {
        b.iter(|| Snapshot::decode(&encoded).unwrap().records.len())
    });
    let state_path = root.with_file_name("bench-persistence.state");
    let state = StateFile::new(&state_path).unwrap();
    group.bench_function("fr: save the host tree's state file (-s)", |b| {
        b.iter(|| state.save(&t).unwrap())
    });
    group.finish();
}

criterion_group!(benches, persistence);
criterion_main!(benches);
