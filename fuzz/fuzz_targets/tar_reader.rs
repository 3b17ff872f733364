//! The tar reader on arbitrary bytes: every member header and its data are
//! read until the end or an error; it never panics, and what it returns
//! stays within what the input can describe. Run: `cargo fuzz run tar_reader`
//! (with `-rss_limit_mb` to bound memory: the reader may hold one pax
//! header of up to 64 MiB).
#![no_main]

use fr_emulator::tar::{Reader, BLOCK};
use libfuzzer_sys::fuzz_target;

/// Counts what it is given, keeps nothing.
struct Count(u64);

impl std::io::Write for Count {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let mut out = Count(0);
    let mut members = 0usize;
    // Each member takes at least one header block of the input.
    while let Ok(Some(entry)) = r.next_entry() {
        members += 1;
        assert!(members * BLOCK <= data.len(), "more members than header blocks");
        // Read the data of every other member, skip the rest.
        if members % 2 == 1 {
            let before = out.0;
            match r.data(&mut out) {
                Ok(()) => assert_eq!(out.0 - before, entry.data),
                Err(_) => break,
            }
        }
    }
    assert!(out.0 <= data.len() as u64);
});
