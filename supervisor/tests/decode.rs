//! fr's system call decoders against a model of the kernel, over fake
//! targets: the fuzz target's seeds, and random notifications.

mod decoding;

use decoding::{check, input};

/// The fuzz target's seed corpus (and any input added to it, such as a
/// minimised finding) decodes as the kernel would.
#[test]
fn the_fuzz_seeds_decode() {
    let dir = corpus();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        panic!("no seed corpus at {}", dir.display());
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let case = input::decode(&std::fs::read(&path).unwrap());
        let said = check::run(&case);
        if std::env::var_os("FR_SHOW_SEEDS").is_some() {
            println!("{}: {case:?}\n  {said:?}", path.display());
        }
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

fn corpus() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/request_decode")
}

/// Writes the seed corpus `fuzz/corpus/request_decode/` from [`seeds`]. Run:
/// `cargo test -p fr-supervisor --test decode -- --ignored write_the_seeds`.
#[test]
#[ignore = "writes the seed corpus, not a check"]
fn write_the_seeds() {
    let dir = corpus();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, case) in seeds() {
        let bytes = input::encode(&case);
        assert_eq!(input::decode(&bytes), case, "{name} does not decode to itself");
        check::run(&case);
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// The committed seeds are still the notifications described in [`seeds`]:
/// a seed names its call by its place in fr's table, so a call added to
/// the table would quietly turn it into another call.
#[test]
fn the_committed_seeds_are_the_described_ones() {
    for (name, case) in seeds() {
        let path = corpus().join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            input::decode(&bytes),
            case,
            "{name} has gone stale: write the seeds again (see write_the_seeds)"
        );
    }
}

/// One notification per family of decoders.
fn seeds() -> Vec<(&'static str, input::Case)> {
    use fr_supervisor::arch::Arch::{I386, X32, X86_64};
    use input::{entry, Call, Case, PageSpec};

    use decoding::fake::Fate;

    /// `data` at `addr`, in the page of argument `arg`'s pointer (or the
    /// one `delta` pages from it), the rest of the page `fill`.
    fn page(arg: u8, delta: i8, fill: u8, addr: u64, data: &[u8]) -> PageSpec {
        let at = (addr % 4096) as u16;
        PageSpec { arg, delta, read_only: false, fill, at, data: data.to_vec() }
    }
    let le = |words: &[u64], each: usize| -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()[..each].to_vec()).collect()
    };
    let alive = Fate::Alive;
    vec![
        (
            "stat_path",
            Case {
                call: entry("newfstatat", X86_64),
                args: [(-100i64) as u64, 0x7000_0ff7, 0x7000_2000, 0x100, 0, 0],
                fate: alive,
                // "/etc/pass" ends the page; "wd" and the NUL begin the next.
                pages: vec![
                    page(1, 0, 0, 0x7000_0ff0, b"xxxxxxx/etc/pass"),
                    page(1, 1, 0, 0, b"wd\0"),
                ],
            },
        ),
        (
            "path_too_long",
            Case {
                call: entry("lstat", X86_64),
                args: [0x5000_0000, 0x5000_4000, 0, 0, 0, 0],
                fate: alive,
                pages: vec![page(0, 0, b'a', 0, b""), page(0, 1, b'b', 0, b"")],
            },
        ),
        (
            "chown16_i386",
            Case {
                call: entry("chown", I386),
                args: [0xdead_0000_0804_a000, 0xffff, 0x1_0005, 0, 0, 0],
                fate: alive,
                pages: vec![page(0, 0, 0, 0x0804_a000, b"/bin/su\0")],
            },
        ),
        (
            "setxattr_capability",
            Case {
                call: entry("setxattr", X86_64),
                args: [0x4000_0000, 0x4000_1000, 0x4000_2000, 20, 0, 0],
                fate: alive,
                pages: vec![
                    page(0, 0, 0, 0x4000_0000, b"/bin/ping\0"),
                    page(1, 0, 0, 0x4000_1000, b"security.capability\0"),
                    page(2, 0, 0, 0x4000_2000, &le(&[0x0200_0002, 0x2000, 0, 0, 0], 4)),
                ],
            },
        ),
        (
            "setxattrat_args",
            Case {
                call: entry("setxattrat", X32),
                args: [3, 0, 0x1000, 0x6000_1100, 0x6000_0000, 32],
                fate: alive,
                // xattr_args { value 0x6000_0020, size 3, flags XATTR_CREATE }
                // and eight zero bytes beyond it, then the value; the name.
                pages: vec![
                    page(
                        4,
                        0,
                        0,
                        0x6000_0000,
                        &[le(&[0x6000_0020], 8), le(&[3, 1], 4), vec![0; 16], b"abc".to_vec()]
                            .concat(),
                    ),
                    page(3, 0, 0, 0x6000_1100, b"trusted.x\0"),
                ],
            },
        ),
        (
            "capset_unknown_version",
            Case {
                call: entry("capset", X86_64),
                args: [0x3000_0ffc, 0x3000_2000, 0, 0, 0, 0],
                fate: alive,
                // The version ends its page: the pid cannot be read.
                pages: vec![page(0, 0, 0, 0x3000_0ffc, &0x1234_5678u32.to_le_bytes())],
            },
        ),
        (
            "capget_v1",
            Case {
                call: entry("capget", I386),
                args: [0x0900_0000, 0x0900_0010, 0, 0, 0, 0],
                fate: Fate::Replaced,
                pages: vec![page(0, 0, 0, 0x0900_0000, &le(&[0x1998_0330, 0], 4))],
            },
        ),
        (
            "setgroups16",
            Case {
                call: entry("setgroups", I386),
                args: [3, 0x0a00_0000, 0, 0, 0, 0],
                fate: alive,
                pages: vec![page(1, 0, 0, 0x0a00_0000, &le(&[0, 4, 0xffff], 2))],
            },
        ),
        (
            "openat2_how",
            Case {
                call: entry("openat2", X86_64),
                args: [(-100i64) as u64, 0x2000_0000, 0x2000_1000, 32, 0, 0],
                fate: alive,
                // open_how { O_CREAT | O_WRONLY, 0644, 0 } and eight zero bytes.
                pages: vec![
                    page(1, 0, 0, 0x2000_0000, b"new\0"),
                    page(2, 0, 0, 0x2000_1000, &le(&[0o101, 0o644, 0, 0], 8)),
                ],
            },
        ),
        (
            "gone_while_read",
            Case {
                call: entry("getxattr", X86_64),
                args: [0x1000_0000, 0x1000_0100, 0, 0, 0, 0],
                fate: Fate::GoneAfter(0),
                pages: vec![page(0, 0, 0, 0x1000_0000, b"f\0")],
            },
        ),
        (
            "undumpable_open",
            Case {
                call: Call::Raw(X86_64, 2),
                args: [0x1000_0000, 0o1101, 0o600, 0, 0, 0],
                fate: Fate::Undumpable,
                pages: vec![page(0, 0, 0, 0x1000_0000, b"f\0")],
            },
        ),
        ("foreign_abi", Case { call: Call::Foreign(92), args: [0; 6], fate: alive, pages: vec![] }),
    ]
}
