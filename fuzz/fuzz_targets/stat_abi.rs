//! The stat struct encoders on arbitrary status values: they never panic,
//! and every ABI carries the same values where the value fits its field.
//! Run: `cargo fuzz run stat_abi`.
#![no_main]

use arbitrary::Arbitrary;
use fr_emulator::abi::{self, AbiError};
use fr_emulator::{Kstat, Timestamp};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct In {
    nlink: u32,
    uid: u32,
    gid: u32,
    mode: u16,
    ino: u64,
    size: u64,
    rdev: (u32, u32),
    dev: (u32, u32),
    mtime: (i64, u32),
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fuzz_target!(|i: In| {
    let st = Kstat {
        nlink: i.nlink,
        uid: i.uid,
        gid: i.gid,
        mode: u32::from(i.mode),
        ino: i.ino,
        size: i.size,
        rdev_major: i.rdev.0 & 0xfff,
        rdev_minor: i.rdev.1 & 0xf_ffff,
        dev_major: i.dev.0 & 0xfff,
        dev_minor: i.dev.1 & 0xf_ffff,
        mtime: Timestamp { sec: i.mtime.0, nsec: i.mtime.1 },
        ..Kstat::default()
    };
    let native = abi::stat_x86_64(&st);
    assert_eq!((u32_at(&native, 28), u32_at(&native, 32)), (i.uid, i.gid));
    let sx = abi::statx(&st);
    assert_eq!((u32_at(&sx, 20), u32_at(&sx, 24)), (i.uid, i.gid));
    match abi::stat_i386(&st) {
        Ok(b) => {
            assert!(st.ino <= u64::from(u32::MAX) && st.nlink <= 0xffff && st.size <= 0x7fff_ffff);
            assert_eq!(u16::from_le_bytes([b[12], b[13]]), abi::high2low(i.uid));
            assert_eq!(u32_at(&b, 16), u32_at(&native, 40));
        }
        Err(AbiError::Overflow) => {
            assert!(st.ino > u64::from(u32::MAX) || st.nlink > 0xffff || st.size > 0x7fff_ffff)
        }
    }
    let fields = abi::stat64_i386(&st);
    assert!(fields.iter().all(|(off, b)| off + b.len() <= 96));
});
