//! Where fr's real changes stop: which files the supervisor may change for
//! real on the workload's behalf, and which only in its table.
//!
//! The workload is fake root over its image. Three kinds of files are not
//! the image's, and fr must not change them with more effect than the user
//! who started it intends:
//!
//! - the files behind the descriptors fr's caller passed on (a terminal,
//!   a log file stdout is redirected to): a `fchmod` or `fchown` of them
//!   is recorded, never made, so that a caller's pty is not left
//!   `crw-rw-rw-` or handed to another id;
//! - with an image, every file on another mount than the image's own (the
//!   `-B` binds, `/dev`, `/sys`, a tmpfs the workload mounted): real
//!   root's changes there are fr's only as the user could make them. In
//!   subuid mode fr holds the namespace's capabilities, so it gives such a
//!   file to another owner only in its table, and changes its mode only
//!   when the user owns it.
//!
//! Without an image (`fr exec -f -- CMD`, fakeroot's use) the host tree is
//! the workload's to change as the user, as under `fakeroot`.

use std::collections::HashSet;
use std::sync::{OnceLock, RwLock};

use fr_emulator::{InodeKey, Kstat};

/// How far fr's real changes to a file may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// The image's own file (or the host tree's, without an image): fake
    /// root's changes are made where the kernel can hold them.
    Own,
    /// A file on another mount than the image's: changed only as the user
    /// could change it.
    Foreign,
    /// A file fr's caller passed on: changed only in the table.
    PassedIn,
}

/// What the supervisor knows of the session's boundaries.
#[derive(Debug, Default)]
pub struct Bounds {
    /// Grows when a session joins an instance with descriptors of its own.
    passed_in: RwLock<HashSet<InodeKey>>,
    /// The mount id (`stx_mnt_id`) of the image, the workload's root; set
    /// once the container is up, and only for a session with an image.
    image_mount: OnceLock<Option<u64>>,
}

impl Bounds {
    pub fn new(passed_in: impl IntoIterator<Item = InodeKey>) -> Self {
        Self {
            passed_in: RwLock::new(passed_in.into_iter().collect()),
            image_mount: OnceLock::new(),
        }
    }

    /// Adds the files behind the descriptors of a caller that joined.
    pub fn pass_in(&self, keys: impl IntoIterator<Item = InodeKey>) {
        self.passed_in.write().unwrap_or_else(|e| e.into_inner()).extend(keys);
    }

    /// The image's mount, when the session has one (once).
    pub fn set_image_mount(&self, mount: Option<u64>) {
        let _ = self.image_mount.set(mount);
    }

    /// How far fr's changes to the file `key`, whose real status is `real`
    /// (read with its mount id), may go.
    pub fn reach(&self, key: InodeKey, real: &Kstat) -> Reach {
        if self.passed_in.read().unwrap_or_else(|e| e.into_inner()).contains(&key) {
            return Reach::PassedIn;
        }
        match self.image_mount.get().copied().flatten() {
            Some(mount) if real.mnt_id != mount => Reach::Foreign,
            _ => Reach::Own,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(mnt_id: u64) -> Kstat {
        Kstat { mnt_id, ..Kstat::default() }
    }

    #[test]
    fn passed_in_files_come_first_then_the_image_mount() {
        let tty = InodeKey { dev: 0x18, ino: 3 };
        let file = InodeKey { dev: 0x801, ino: 42 };
        let b = Bounds::new([tty]);
        assert_eq!(b.reach(file, &on(7)), Reach::Own, "no image: the host tree is the workload's");
        assert_eq!(b.reach(tty, &on(7)), Reach::PassedIn);
        b.set_image_mount(Some(7));
        assert_eq!(b.reach(file, &on(7)), Reach::Own);
        assert_eq!(b.reach(file, &on(9)), Reach::Foreign);
        assert_eq!(b.reach(tty, &on(7)), Reach::PassedIn, "even inside the image");
    }
}
