//! The inode table alone: lookups and updates at several sizes and thread
//! counts, no system calls.
//!
//!     cargo bench --bench inode_table

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use fr_emulator::attrs::S_IFREG;
use fr_emulator::{Attrs, Creds, IdMap, InodeKey, InodeTable};

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
    for n in [1_000u64, 100_000, 1_000_000] {
        let t = filled(n);
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

criterion_group!(benches, table);
criterion_main!(benches);
