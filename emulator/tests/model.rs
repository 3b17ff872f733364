//! Property tests: random sequences of chown, chmod, file creation,
//! xattrs, links, renames, removals, journal reloads and set*id calls,
//! driven through the emulator as the supervisor drives it, look after
//! every step as a model of real root says they would (`realroot`).
//!
//! The fuzz target `emulator_ops` runs the same driver on fuzzer bytes.

mod realroot;

use proptest::collection::vec;
use proptest::prelude::*;

use realroot::drive::World;
use realroot::ops::{self, Kind, Name, Op};

/// Ids that collide: root, small ones, the host user's, the overflow id,
/// and -1.
fn id() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(5),
        Just(7),
        Just(1000),
        Just(65534),
        Just(u32::MAX),
        any::<u32>()
    ]
}

fn maybe_id() -> impl Strategy<Value = Option<u32>> {
    id().prop_map(|i| (i != u32::MAX).then_some(i))
}

fn kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(Kind::ALL.to_vec())
}

fn name() -> impl Strategy<Value = Name> {
    prop_oneof![
        Just(Name::Capability),
        Just(Name::AclAccess),
        Just(Name::AclDefault),
        any::<u8>().prop_map(Name::Trusted),
        any::<u8>().prop_map(Name::Security),
    ]
}

fn caps() -> impl Strategy<Value = u64> {
    const FULL: u64 = (1 << 41) - 1;
    prop_oneof![
        Just(FULL),
        Just(0u64),
        (0..41u32).prop_map(|c| 1 << c),
        (0..41u32).prop_map(|c| FULL & !(1 << c)),
        any::<u64>(),
    ]
}

/// An xattr value: what the fuzz decoder makes of some bytes, which is
/// mostly a well formed capability or ACL.
fn value(name: Name) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..48).prop_map(move |b| {
        let mut bytes = ops::Bytes::new(&b);
        // The decoder's SetXattr reads a file and a name byte first.
        let tag = match name {
            Name::Capability => 0,
            Name::AclAccess => 1,
            Name::AclDefault => 2,
            Name::Trusted(_) => 3,
            Name::Security(_) => 4,
        };
        let mut framed = vec![7, 0, tag, 0];
        framed.extend(std::iter::from_fn(|| (!bytes.is_empty()).then(|| bytes.u8())));
        match ops::decode(&framed, 1).pop() {
            Some(Op::SetXattr { value, .. }) => value,
            _ => Vec::new(),
        }
    })
}

fn op() -> impl Strategy<Value = Op> {
    let file = any::<u8>();
    prop_oneof![
        3 => (file, maybe_id(), maybe_id()).prop_map(|(file, uid, gid)| Op::Chown { file, uid, gid }),
        3 => (file, 0..0o10000u32).prop_map(|(file, mode)| Op::Chmod { file, mode }),
        4 => (file, kind(), 0..0o10000u32, prop::sample::select(vec![0o022u32, 0o002, 0o077, 0, 0o032]), any::<u32>())
            .prop_map(|(dir, kind, mode, umask, dev)| Op::Make { dir, kind, mode, umask, dev }),
        4 => (file, name(), prop::sample::select(vec![0u32, 0, 1, 2, 3, 4]))
            .prop_flat_map(|(file, name, flags)| value(name).prop_map(move |value| Op::SetXattr { file, name, value, flags })),
        1 => (file, name()).prop_map(|(file, name)| Op::RemoveXattr { file, name }),
        1 => (file, file).prop_map(|(link, dir)| Op::Link { link, dir }),
        1 => (file, file, any::<bool>()).prop_map(|(link, to, onto)| Op::Rename { link, to, onto }),
        2 => file.prop_map(|link| Op::Unlink { link }),
        2 => (file, kind(), 0..0o10000u32).prop_map(|(dir, kind, perms)| Op::Host { dir, kind, perms }),
        1 => (file, kind(), 0..0o10000u32).prop_map(|(link, kind, perms)| Op::Outside { link, kind, perms }),
        1 => Just(Op::Reload),
        1 => id().prop_map(Op::Setuid),
        1 => id().prop_map(Op::Setgid),
        1 => (id(), id()).prop_map(|(a, b)| Op::Setreuid(a, b)),
        1 => (id(), id()).prop_map(|(a, b)| Op::Setregid(a, b)),
        1 => (id(), id(), id()).prop_map(|(a, b, c)| Op::Setresuid(a, b, c)),
        1 => (id(), id(), id()).prop_map(|(a, b, c)| Op::Setresgid(a, b, c)),
        1 => id().prop_map(Op::Setfsuid),
        1 => id().prop_map(Op::Setfsgid),
        1 => vec(id(), 0..4).prop_map(Op::Setgroups),
        1 => (caps(), caps(), caps()).prop_map(|(effective, permitted, inheritable)| Op::Capset { effective, permitted, inheritable }),
        1 => any::<bool>().prop_map(Op::Keepcaps),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    /// The whole vocabulary, mixed.
    #[test]
    fn every_step_looks_as_real_root_would_see_it(ops in vec(op(), 1..48)) {
        World::run(&ops);
    }

    /// As root throughout (no identity calls): the emulator's common case,
    /// where every change must succeed as it would for real root.
    #[test]
    fn roots_changes_all_show(ops in vec(op(), 1..48)) {
        let ops: Vec<Op> = ops.into_iter().filter(|o| matches!(o,
            Op::Chown { .. } | Op::Chmod { .. } | Op::Make { .. } | Op::SetXattr { .. }
            | Op::RemoveXattr { .. } | Op::Link { .. } | Op::Rename { .. } | Op::Unlink { .. }
            | Op::Host { .. } | Op::Outside { .. } | Op::Reload)).collect();
        World::run(&ops);
    }

    /// The fuzz target's input format: any bytes are a valid run.
    #[test]
    fn fuzz_bytes_are_a_valid_run(bytes in vec(any::<u8>(), 0..600)) {
        World::run(&ops::decode(&bytes, 64));
    }
}

/// A run that touches every kind of operation once, so that a change to
/// the driver that skips everything shows.
#[test]
fn a_plain_run_compares_every_step() {
    let ops = vec![
        Op::Make { dir: 0, kind: Kind::Reg, mode: 0o4755, umask: 0o022, dev: 0 },
        Op::Chown { file: 1, uid: Some(5), gid: Some(7) },
        Op::Make { dir: 0, kind: Kind::Chr, mode: 0o620, umask: 0o022, dev: 0x0501 },
        Op::SetXattr {
            file: 1,
            name: Name::Capability,
            value: [&0x0200_0001u32.to_le_bytes()[..], &[0x20, 0, 0, 0], &[0; 12]].concat(),
            flags: 0,
        },
        Op::Link { link: 0, dir: 0 },
        Op::Chmod { file: 1, mode: 0o2755 },
        Op::Reload,
        Op::Rename { link: 2, to: 1, onto: true },
        Op::Unlink { link: 0 },
        Op::Setresuid(5, 5, 5),
        Op::Chmod { file: 1, mode: 0o700 },
    ];
    let stats = World::run(&ops);
    assert_eq!(stats.compared, ops.len() as u64, "skipped: {:?}", stats.skipped);
}

/// How often each kind of skip happens on fuzz-like input: a driver that
/// skips most operations would pass while checking nothing. Run with
/// `cargo test -p fr-emulator --test model -- --ignored --nocapture`.
#[test]
#[ignore = "a report, not a check"]
fn skip_rates() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut total = realroot::drive::Stats::default();
    for _ in 0..3000 {
        let bytes: Vec<u8> = (0..400)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let s = World::run(&ops::decode(&bytes, 64));
        total.compared += s.compared;
        for (k, v) in s.skipped {
            *total.skipped.entry(k).or_default() += v;
        }
    }
    println!("compared {}, skipped {:?}", total.compared, total.skipped);
}

/// The fuzz target's seed corpus (and any input added to it, such as a
/// minimised crash) runs here too, every step compared.
#[test]
fn the_fuzz_seeds_compare() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/emulator_ops");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        panic!("no seed corpus at {}", dir.display());
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let ops = ops::decode(&std::fs::read(&path).unwrap(), 64);
        let stats = World::run(&ops);
        if std::env::var_os("FR_SHOW_SEEDS").is_some() {
            println!("{}: {ops:?}\n  {stats:?}", path.display());
        }
        assert!(stats.compared * 2 >= ops.len() as u64, "{}: {stats:?}", path.display());
    }
}
