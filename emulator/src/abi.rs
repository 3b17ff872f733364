//! The structs the stat family fills in, byte for byte, for each system
//! call ABI of an x86_64 kernel, and the overflow errors the kernel gives
//! when a value does not fit.
//!
//! Each encoder follows the kernel function that copies a `struct kstat`
//! out to the caller, cited on it. They are pure so that the supervisor,
//! the tests and the fuzzers share one definition.

use crate::kstat::{Kstat, Timestamp};

/// The errors the copy-out functions can return besides `EFAULT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbiError {
    /// `EOVERFLOW`: a value does not fit the caller's struct.
    Overflow,
}

/// Default `/proc/sys/kernel/overflowuid` and `overflowgid`.
pub const OVERFLOW_ID: u16 = 65534;

/// `include/linux/kdev_t.h: new_encode_dev()`: the 32-bit device number of
/// `st_dev` and `st_rdev` (12-bit major, 20-bit minor, split around it).
pub fn new_encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// `include/linux/kdev_t.h: new_decode_dev()`: the (major, minor) of the
/// 32-bit device number `mknod(2)` takes.
pub fn new_decode_dev(dev: u32) -> (u32, u32) {
    ((dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00))
}

/// `include/linux/highuid.h: high2lowuid()`: ids above 65535 become the
/// overflow id in 16-bit fields.
pub fn high2low(id: u32) -> u16 {
    if id & !0xffff != 0 {
        OVERFLOW_ID
    } else {
        id as u16
    }
}

/// `MAX_NON_LFS`: the largest size a non-LFS struct can carry.
const MAX_NON_LFS: u64 = 0x7fff_ffff;

struct Writer<const N: usize>([u8; N]);

impl<const N: usize> Writer<N> {
    fn new() -> Self {
        Self([0; N])
    }
    fn put(&mut self, off: usize, bytes: &[u8]) {
        self.0[off..off + bytes.len()].copy_from_slice(bytes);
    }
    fn u16(&mut self, off: usize, v: u16) {
        self.put(off, &v.to_le_bytes());
    }
    fn u32(&mut self, off: usize, v: u32) {
        self.put(off, &v.to_le_bytes());
    }
    fn u64(&mut self, off: usize, v: u64) {
        self.put(off, &v.to_le_bytes());
    }
    fn ts(&mut self, off: usize, t: Timestamp) {
        self.u64(off, t.sec as u64);
        self.u32(off + 8, t.nsec);
    }
}

/// `struct statx` (256 bytes, the same on every ABI), as
/// `fs/stat.c: cp_statx()` fills it: every byte written, spares zeroed.
pub fn statx(st: &Kstat) -> [u8; 256] {
    let mut w = Writer::<256>::new();
    w.u32(0, st.mask);
    w.u32(4, st.blksize);
    w.u64(8, st.attributes);
    w.u32(16, st.nlink);
    w.u32(20, st.uid);
    w.u32(24, st.gid);
    w.u16(28, st.mode as u16);
    w.u64(32, st.ino);
    w.u64(40, st.size);
    w.u64(48, st.blocks);
    w.u64(56, st.attributes_mask);
    w.ts(64, st.atime);
    w.ts(80, st.btime);
    w.ts(96, st.ctime);
    w.ts(112, st.mtime);
    w.u32(128, st.rdev_major);
    w.u32(132, st.rdev_minor);
    w.u32(136, st.dev_major);
    w.u32(140, st.dev_minor);
    w.u64(144, st.mnt_id);
    w.u32(152, st.dio_mem_align);
    w.u32(156, st.dio_offset_align);
    w.u64(160, st.subvol);
    w.u32(168, st.atomic_write_unit_min);
    w.u32(172, st.atomic_write_unit_max);
    w.u32(176, st.atomic_write_segments_max);
    w.u32(180, st.dio_read_offset_align);
    w.u32(184, st.atomic_write_unit_max_opt);
    w.0
}

/// The native `struct stat` of x86_64 and x32 (144 bytes), as
/// `fs/stat.c: cp_new_stat()` fills it: zeroed padding, whole struct copied.
pub fn stat_x86_64(st: &Kstat) -> [u8; 144] {
    let mut w = Writer::<144>::new();
    w.u64(0, u64::from(new_encode_dev(st.dev_major, st.dev_minor)));
    w.u64(8, st.ino);
    w.u64(16, u64::from(st.nlink));
    w.u32(24, st.mode);
    w.u32(28, st.uid);
    w.u32(32, st.gid);
    w.u64(40, u64::from(new_encode_dev(st.rdev_major, st.rdev_minor)));
    w.u64(48, st.size);
    w.u64(56, u64::from(st.blksize));
    w.u64(64, st.blocks);
    w.u64(72, st.atime.sec as u64);
    w.u64(80, u64::from(st.atime.nsec));
    w.u64(88, st.mtime.sec as u64);
    w.u64(96, u64::from(st.mtime.nsec));
    w.u64(104, st.ctime.sec as u64);
    w.u64(112, u64::from(st.ctime.nsec));
    w.0
}

/// i386's `struct stat` (`struct compat_stat`, 64 bytes) for `stat`,
/// `lstat` and `fstat`, as `fs/stat.c: cp_compat_stat()` fills it: 16-bit
/// ids through `high2lowuid`, and `EOVERFLOW` when the inode number, link
/// count or size does not fit.
pub fn stat_i386(st: &Kstat) -> Result<[u8; 64], AbiError> {
    let ino = u32::try_from(st.ino).map_err(|_| AbiError::Overflow)?;
    let nlink = u16::try_from(st.nlink).map_err(|_| AbiError::Overflow)?;
    if st.size > MAX_NON_LFS {
        return Err(AbiError::Overflow);
    }
    let mut w = Writer::<64>::new();
    w.u32(0, new_encode_dev(st.dev_major, st.dev_minor));
    w.u32(4, ino);
    w.u16(8, st.mode as u16);
    w.u16(10, nlink);
    w.u16(12, high2low(st.uid));
    w.u16(14, high2low(st.gid));
    w.u32(16, new_encode_dev(st.rdev_major, st.rdev_minor));
    w.u32(20, st.size as u32);
    w.u32(24, st.blksize);
    w.u32(28, st.blocks as u32);
    w.u32(32, st.atime.sec as u32);
    w.u32(36, st.atime.nsec);
    w.u32(40, st.mtime.sec as u32);
    w.u32(44, st.mtime.nsec);
    w.u32(48, st.ctime.sec as u32);
    w.u32(52, st.ctime.nsec);
    Ok(w.0)
}

/// One field of a struct that the kernel writes alone.
pub type Field = (usize, Vec<u8>);

/// i386's packed `struct stat64` (96 bytes) for `stat64`, `lstat64`,
/// `fstat64` and `fstatat64`, as `arch/x86/kernel/sys_ia32.c: cp_stat64()`
/// fills it: field by field with `unsafe_put_user`, so the padding bytes
/// keep whatever the caller had there. Returned as (offset, bytes) pieces.
pub fn stat64_i386(st: &Kstat) -> Vec<Field> {
    let dev = u64::from(new_encode_dev(st.dev_major, st.dev_minor));
    let rdev = u64::from(new_encode_dev(st.rdev_major, st.rdev_minor));
    vec![
        (0, dev.to_le_bytes().to_vec()),
        (12, (st.ino as u32).to_le_bytes().to_vec()),
        (16, st.mode.to_le_bytes().to_vec()),
        (20, st.nlink.to_le_bytes().to_vec()),
        (24, st.uid.to_le_bytes().to_vec()),
        (28, st.gid.to_le_bytes().to_vec()),
        (32, rdev.to_le_bytes().to_vec()),
        (44, st.size.to_le_bytes().to_vec()),
        (52, st.blksize.to_le_bytes().to_vec()),
        (56, st.blocks.to_le_bytes().to_vec()),
        (64, (st.atime.sec as u32).to_le_bytes().to_vec()),
        (68, st.atime.nsec.to_le_bytes().to_vec()),
        (72, (st.mtime.sec as u32).to_le_bytes().to_vec()),
        (76, st.mtime.nsec.to_le_bytes().to_vec()),
        (80, (st.ctime.sec as u32).to_le_bytes().to_vec()),
        (84, st.ctime.nsec.to_le_bytes().to_vec()),
        (88, st.ino.to_le_bytes().to_vec()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Kstat {
        Kstat {
            mask: 0x7ff,
            blksize: 4096,
            nlink: 3,
            uid: 123,
            gid: 70000,
            mode: 0o104_755,
            ino: 0x1_0000_0005,
            size: 1234,
            blocks: 8,
            atime: Timestamp { sec: 1_700_000_000, nsec: 5 },
            mtime: Timestamp { sec: 1_700_000_001, nsec: 6 },
            ctime: Timestamp { sec: 1_700_000_002, nsec: 7 },
            rdev_major: 250,
            rdev_minor: 300_000,
            dev_major: 8,
            dev_minor: 1,
            ..Kstat::default()
        }
    }

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
    }

    #[test]
    fn device_numbers_use_the_split_minor_encoding() {
        // glibc's major()/minor() must give the numbers back.
        let dev = u64::from(new_encode_dev(250, 300_000));
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
        let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
        assert_eq!((major, minor), (250, 300_000));
        assert_eq!(new_encode_dev(1, 3), 0x103);
        assert_eq!(new_decode_dev(new_encode_dev(250, 300_000)), (250, 300_000));
        assert_eq!(new_decode_dev(0x103), (1, 3));
    }

    #[test]
    fn high_ids_become_the_overflow_id_in_16_bits() {
        assert_eq!(high2low(65535), 65535);
        assert_eq!(high2low(65536), OVERFLOW_ID);
        assert_eq!(high2low(0), 0);
    }

    #[test]
    fn x86_64_stat_places_each_field() {
        let b = stat_x86_64(&sample());
        assert_eq!(u64_at(&b, 8), 0x1_0000_0005);
        assert_eq!(u64_at(&b, 16), 3);
        assert_eq!(u32_at(&b, 24), 0o104_755);
        assert_eq!((u32_at(&b, 28), u32_at(&b, 32)), (123, 70000));
        assert_eq!(u64_at(&b, 40), u64::from(new_encode_dev(250, 300_000)));
        assert_eq!(u64_at(&b, 48), 1234);
        assert_eq!(u64_at(&b, 88), 1_700_000_001);
        assert_eq!(&b[120..], &[0u8; 24]);
    }

    #[test]
    fn i386_stat_overflows_like_the_kernel() {
        assert_eq!(stat_i386(&sample()), Err(AbiError::Overflow));
        let st = Kstat { ino: 5, ..sample() };
        let b = stat_i386(&st).unwrap();
        assert_eq!(u32_at(&b, 4), 5);
        assert_eq!(u16::from_le_bytes([b[12], b[13]]), 123);
        assert_eq!(u16::from_le_bytes([b[14], b[15]]), OVERFLOW_ID);
        assert_eq!(stat_i386(&Kstat { nlink: 70000, ..st }), Err(AbiError::Overflow));
        assert_eq!(stat_i386(&Kstat { size: 1 << 31, ..st }), Err(AbiError::Overflow));
    }

    #[test]
    fn i386_stat64_keeps_32_bit_ids_and_leaves_padding_alone() {
        let fields = stat64_i386(&sample());
        let mut b = [0xaau8; 96];
        for (off, bytes) in &fields {
            b[*off..off + bytes.len()].copy_from_slice(bytes);
        }
        assert_eq!(&b[8..12], &[0xaa; 4]);
        assert_eq!(&b[40..44], &[0xaa; 4]);
        assert_eq!(u32_at(&b, 24), 123);
        assert_eq!(u32_at(&b, 28), 70000);
        assert_eq!(u64_at(&b, 88), 0x1_0000_0005);
        assert_eq!(u32_at(&b, 12), 5);
    }

    #[test]
    fn statx_layout_matches_the_uapi_struct() {
        let b = statx(&sample());
        assert_eq!(u32_at(&b, 0), 0x7ff);
        assert_eq!(u16::from_le_bytes([b[28], b[29]]), 0o104_755);
        assert_eq!(u32_at(&b, 128), 250);
        assert_eq!(u32_at(&b, 132), 300_000);
        assert_eq!(u64_at(&b, 112), 1_700_000_001);
        assert_eq!(&b[192..], &[0u8; 64]);
    }
}
