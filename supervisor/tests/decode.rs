//! fr's system call decoders against a model of the kernel, over fake
//! targets: the fuzz target's seeds, and random notifications.

mod decoding;

use decoding::{check, input};

/// The fuzz target's seed corpus (and any input added to it, such as a
/// minimised finding) decodes as the kernel would.
#[test]
fn the_fuzz_seeds_decode() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/request_decode");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        panic!("no seed corpus at {}", dir.display());
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let case = input::decode(&std::fs::read(&path).unwrap());
        if std::env::var_os("FR_SHOW_SEEDS").is_some() {
            println!("{}: {case:?}", path.display());
        }
        check::run(&case);
    }
}

/// Random notifications, most of them to a table entry with pages at its
/// pointer arguments.
#[test]
fn random_notifications_decode() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20_000 {
        let len = 51 + (next() % 400) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        bytes[0] |= 4;
        // Small arguments, as flags and sizes are, for a third of them.
        for i in 0..6 {
            if next() % 3 == 0 {
                let at = 3 + 8 * i;
                bytes[at + 2..at + 8].fill(0);
            }
        }
        check::run(&input::decode(&bytes));
    }
}
