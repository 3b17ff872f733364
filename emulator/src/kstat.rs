//! A file's full status as the kernel holds it before copying it out
//! (`struct kstat`, which `statx(2)` exposes field for field), and the
//! overlay of fake ownership onto it.

use crate::attrs::Attrs;

/// A `statx` timestamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timestamp {
    pub sec: i64,
    pub nsec: u32,
}

/// Everything `statx(2)` reports about a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Kstat {
    pub mask: u32,
    pub blksize: u32,
    pub attributes: u64,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub ino: u64,
    pub size: u64,
    pub blocks: u64,
    pub attributes_mask: u64,
    pub atime: Timestamp,
    pub btime: Timestamp,
    pub ctime: Timestamp,
    pub mtime: Timestamp,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub mnt_id: u64,
    pub dio_mem_align: u32,
    pub dio_offset_align: u32,
    pub subvol: u64,
    pub atomic_write_unit_min: u32,
    pub atomic_write_unit_max: u32,
    pub atomic_write_segments_max: u32,
    pub dio_read_offset_align: u32,
    pub atomic_write_unit_max_opt: u32,
}

impl Kstat {
    /// The ownership-related fields.
    pub fn attrs(&self) -> Attrs {
        Attrs {
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            rdev_major: self.rdev_major,
            rdev_minor: self.rdev_minor,
        }
    }

    /// The same status with the ownership fields of `view` laid over it.
    /// The file type comes from `view` too: a faked device node is a
    /// regular file on disk, and like a real node it has no size or blocks
    /// whatever was written to the placeholder.
    pub fn overlay(self, view: Attrs) -> Self {
        let device = view.file_type().is_device() && !self.attrs().file_type().is_device();
        Self {
            mode: view.mode,
            uid: view.uid,
            gid: view.gid,
            rdev_major: view.rdev_major,
            rdev_minor: view.rdev_minor,
            size: if device { 0 } else { self.size },
            blocks: if device { 0 } else { self.blocks },
            ..self
        }
    }
}
