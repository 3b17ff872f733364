//! The ownership-related part of a stat: the fields fr may fake.

/// File type bits of `st_mode` (`S_IFMT`).
pub const S_IFMT: u32 = 0o170_000;
pub const S_IFSOCK: u32 = 0o140_000;
pub const S_IFLNK: u32 = 0o120_000;
pub const S_IFREG: u32 = 0o100_000;
pub const S_IFBLK: u32 = 0o060_000;
pub const S_IFDIR: u32 = 0o040_000;
pub const S_IFCHR: u32 = 0o020_000;
pub const S_IFIFO: u32 = 0o010_000;

pub const S_ISUID: u32 = 0o4000;
pub const S_ISGID: u32 = 0o2000;
pub const S_ISVTX: u32 = 0o1000;
pub const S_IXGRP: u32 = 0o0010;

/// The permission bits chmod can set: `07777`.
pub const PERM_MASK: u32 = 0o7777;

/// The type of a file, from the `S_IFMT` bits of its mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
    /// A type bit pattern Linux does not define; kept so nothing is lost.
    Unknown(u32),
}

impl FileType {
    pub fn from_mode(mode: u32) -> Self {
        match mode & S_IFMT {
            S_IFREG => Self::Regular,
            S_IFDIR => Self::Directory,
            S_IFLNK => Self::Symlink,
            S_IFCHR => Self::CharDevice,
            S_IFBLK => Self::BlockDevice,
            S_IFIFO => Self::Fifo,
            S_IFSOCK => Self::Socket,
            other => Self::Unknown(other),
        }
    }

    /// A character or block device.
    pub fn is_device(self) -> bool {
        matches!(self, Self::CharDevice | Self::BlockDevice)
    }

    pub fn mode_bits(self) -> u32 {
        match self {
            Self::Regular => S_IFREG,
            Self::Directory => S_IFDIR,
            Self::Symlink => S_IFLNK,
            Self::CharDevice => S_IFCHR,
            Self::BlockDevice => S_IFBLK,
            Self::Fifo => S_IFIFO,
            Self::Socket => S_IFSOCK,
            Self::Unknown(bits) => bits,
        }
    }
}

/// The fields of a stat that ownership emulation can change.
///
/// `mode` holds the type bits and the permission bits, as `st_mode` does;
/// `uid` and `gid` are ids as the workload sees them; the device number is
/// kept as major and minor, as `statx` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attrs {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev_major: u32,
    pub rdev_minor: u32,
}

impl Attrs {
    pub fn file_type(&self) -> FileType {
        FileType::from_mode(self.mode)
    }

    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    pub fn perms(&self) -> u32 {
        self.mode & PERM_MASK
    }

    /// The same attributes with the permission bits replaced.
    pub fn with_perms(self, perms: u32) -> Self {
        Self { mode: (self.mode & !PERM_MASK) | (perms & PERM_MASK), ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_type_round_trips_through_mode_bits() {
        for bits in [S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK, 0o030_000] {
            assert_eq!(FileType::from_mode(bits | 0o755).mode_bits(), bits);
        }
        assert_eq!(FileType::from_mode(0o030_000), FileType::Unknown(0o030_000));
    }

    #[test]
    fn with_perms_keeps_the_type() {
        let a = Attrs { mode: S_IFDIR | 0o755, uid: 0, gid: 0, rdev_major: 0, rdev_minor: 0 };
        let b = a.with_perms(0o1777);
        assert!(b.is_dir());
        assert_eq!(b.perms(), 0o1777);
    }
}
