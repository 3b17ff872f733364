//! The inode table alone: lookups and updates at several sizes and thread
//! counts, no system calls; the memory a record takes (counted by a
//! wrapping global allocator, printed once); and the time to persist a
//! table to an inode-keyed state file (`fr exec -s`: encode, write,
//! `fsync`, rename) and to load it back, at 10^5 and 10^6 records.
//!
//!     cargo bench --bench inode_table

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use fr_emulator::attrs::S_IFREG;
use fr_emulator::{Attrs, Creds, IdMap, InodeKey, InodeTable};

/// The system allocator, counting the bytes live at any moment.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; the
// counter is only arithmetic on the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's layout contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    // Passed on too, so that a growing buffer (the state file's) can grow
    // in place as it does without this wrapper, instead of being copied.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract (`ptr` from this allocator with
        // `layout`, `new_size` valid for its alignment) is passed on.
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        if !moved.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        moved
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

static ROOT: std::sync::LazyLock<Creds> = std::sync::LazyLock::new(Creds::root);

const REAL: Attrs =
    Attrs { mode: S_IFREG | 0o644, uid: 1000, gid: 1000, rdev_major: 0, rdev_minor: 0 };

fn key(i: u64) -> InodeKey {
    InodeKey { dev: 0xfe00, ino: i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20 }
}

fn filled(n: u64) -> Arc<InodeTable> {
    let t = InodeTable::new(IdMap::new(1000, 1000));
    for i in 0..n {
        t.chown(key(i), REAL, Some(i as u32), None, &ROOT).unwrap();
    }
    Arc::new(t)
}

fn table(c: &mut Criterion) {
    let mut group = c.benchmark_group("inode_table");
    group.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(300));
    for n in [1_000u64, 10_000, 100_000, 1_000_000] {
        let before = LIVE.load(Ordering::Relaxed);
        let t = filled(n);
        let bytes = LIVE.load(Ordering::Relaxed).saturating_sub(before);
        eprintln!("inode_table: {n} records take {bytes} bytes, {} per record", bytes as u64 / n);
        for threads in [1u64, 2, 4, 8] {
            group.bench_function(BenchmarkId::new(format!("view/{threads}-threads"), n), |b| {
                b.iter_custom(|iters| {
                    parallel(&t, threads, iters, |t, i| {
                        std::hint::black_box(t.view(key(i % n), REAL));
                    })
                })
            });
            group.bench_function(BenchmarkId::new(format!("chown/{threads}-threads"), n), |b| {
                b.iter_custom(|iters| {
                    parallel(&t, threads, iters, |t, i| {
                        std::hint::black_box(
                            t.chown(key(i % n), REAL, Some(i as u32), None, &ROOT).unwrap(),
                        );
                    })
                })
            });
        }
    }
    group.finish();
}

/// Persisting a table to a state file and loading it back.
fn persist(c: &mut Criterion) {
    use fr_launcher::store::StateFile;
    let mut group = c.benchmark_group("inode_table_persist");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-inode-table");
    std::fs::create_dir_all(&dir).unwrap();
    for n in [100_000u64, 1_000_000] {
        let t = filled(n);
        let path = dir.join(format!("state-{n}"));
        let state = StateFile::new(&path).unwrap();
        group.bench_function(BenchmarkId::new("save", n), |b| b.iter(|| state.save(&t).unwrap()));
        eprintln!(
            "inode_table: the state file of {n} records is {} bytes",
            std::fs::metadata(&path).unwrap().len()
        );
        // The loaded table is dropped outside the timed part.
        group.bench_function(BenchmarkId::new("load", n), |b| {
            b.iter_with_large_drop(|| {
                let fresh = InodeTable::new(IdMap::new(1000, 1000));
                state.load(&fresh).unwrap();
                assert_eq!(fresh.len(), t.len());
                fresh
            })
        });
    }
    group.finish();
}

/// Runs `iters` operations split over `threads` threads; the time per
/// operation criterion reports is then the throughput cost.
fn parallel(
    t: &Arc<InodeTable>,
    threads: u64,
    iters: u64,
    op: impl Fn(&InodeTable, u64) + Sync,
) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for th in 0..threads {
            let (t, op) = (t.clone(), &op);
            s.spawn(move || {
                let mut i = th;
                while i < iters {
                    op(&t, i);
                    i += threads;
                }
            });
        }
    });
    start.elapsed()
}

criterion_group!(benches, table, persist);
criterion_main!(benches);
