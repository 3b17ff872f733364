//! One module per system call family. Each entry point is a thin decoder
//! that reads its arguments and calls the family's one shared operation;
//! every handler has the signature [`Handler`] and returns an [`Outcome`],
//! which [`crate::notify`] turns into the one reply.
//!
//! What a call's arguments mean is decided by pure functions of the
//! [`Request`] (the path readers here, and each family's own: `xattr`'s
//! names, values and `xattr_args`, `ident`'s ids, groups and capability
//! structs, `create`'s open flags and `open_how`, ...), in the kernel's
//! order of checks and before the host is touched. They read the target
//! only through the request, so a fake [`crate::request::Target`] drives
//! them in tests and in the fuzz target `request_decode`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use fr_emulator::{InodeKey, InodeTable, Kstat};
use rustix::fs::{self, AtFlags, StatxFlags};
use rustix::io::Errno;

use crate::bounds::Reach;
use crate::request::Request;
use crate::resolve::{self, LookupFlags};

// The readers of a call's arguments: names, flags, ids by width.
pub mod args;
// What handlers do on the host: file status, checks, real changes.
pub mod host;

pub mod access;
pub mod create;
pub mod ident;
pub mod mode;
pub mod mount;
pub mod nested;
pub mod node;
pub mod owner;
pub mod remove;
pub mod stat;
pub mod xattr;

pub use crate::resolve::{AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW};
pub use args::{at_file, at_name, read_name, read_name_maybe_null, read_plain_path, Width};
use host::{changeable_dup, is_o_path, kstat, lone_name, lone_open};
pub use host::{
    changeable_fd, chmod_real, fd_status, may_change, real_stat, touch_ctime, usable_perms, Touched,
};

/// `AT_NO_AUTOMOUNT` and `AT_STATX_SYNC_TYPE` from `<linux/fcntl.h>`.
pub use crate::linux::{AT_NO_AUTOMOUNT, AT_STATX_SYNC_TYPE};

/// What every handler can reach.
#[derive(Debug)]
pub struct Context {
    pub inodes: Arc<InodeTable>,
    pub creds: crate::creds::CredsTable,
    pub namespace: crate::Namespace,
    pub bounds: crate::bounds::Bounds,
    /// The `O_TMPFILE` files fr made and recorded, held open (`O_PATH`) for
    /// the session: the kernel frees an unnamed file when its last
    /// descriptor closes, which fr does not see, and a file made later
    /// with the same inode number would show the record. Held, the number
    /// is never reused; see [`create::pin`].
    pub pinned: std::sync::Mutex<Vec<OwnedFd>>,
}

impl Context {
    /// [`resolve::lookup`] with the search permission of the calling
    /// thread's fake credentials.
    pub fn lookup(
        &self,
        req: &Request<'_>,
        dirfd: i32,
        path: &[u8],
        how: LookupFlags,
    ) -> Result<OwnedFd, Errno> {
        self.lookup_with(req, dirfd, path, how, true)
    }

    /// [`Context::lookup`], trying the lone-name open ([`lone_open`]) first
    /// or not (when the caller has just tried the name itself).
    fn lookup_with(
        &self,
        req: &Request<'_>,
        dirfd: i32,
        path: &[u8],
        how: LookupFlags,
        lone_first: bool,
    ) -> Result<OwnedFd, Errno> {
        self.lookup_as(req, dirfd, path, how, lone_first, &self.creds.get(req.tid))
    }

    /// [`Context::lookup`] with the search permission of `creds` (`access`
    /// looks up with the real ids, `fs/open.c: access_override_creds()`).
    pub fn lookup_as(
        &self,
        req: &Request<'_>,
        dirfd: i32,
        path: &[u8],
        how: LookupFlags,
        lone_first: bool,
        creds: &fr_emulator::Creds,
    ) -> Result<OwnedFd, Errno> {
        let creds = creds.clone();
        let check = |dir: BorrowedFd<'_>| self.may_search(dir, &creds);
        let search = searcher(&creds, &check);
        if lone_first && search.is_none() {
            if let Some(file) = lone_open(req, dirfd, path, how)? {
                return Ok(file);
            }
        }
        resolve::lookup(req, dirfd, path, how, search)
    }

    /// Whether fr may change the real mode of the file `key` (see
    /// [`crate::bounds`]): the image's own file, or another mount's that
    /// the user owns; never a file fr's caller passed on.
    pub fn may_chmod_for_real(&self, key: InodeKey, real: &Kstat) -> bool {
        match self.bounds.reach(key, real) {
            Reach::Own => true,
            Reach::Foreign => real.uid == self.inodes.ids().host_uid,
            Reach::PassedIn => false,
        }
    }

    /// [`resolve::parent`] with the calling thread's search permission.
    pub fn parent(
        &self,
        req: &Request<'_>,
        dirfd: i32,
        path: &[u8],
        dir_ok: bool,
    ) -> Result<(OwnedFd, Vec<u8>), Errno> {
        let creds = self.creds.get(req.tid);
        let check = |dir: BorrowedFd<'_>| self.may_search(dir, &creds);
        resolve::parent(req, dirfd, path, dir_ok, searcher(&creds, &check))
    }

    /// Whether the kernel's own status of a file fr has no record of is
    /// what the workload must see, so that a stat can run as it is: in
    /// subuid mode always (fr reads the namespace's ids, as the workload
    /// does); in root-mapped mode for a file of the user's own uid and gid
    /// (both read 0 there, while other host ids read 65534 to the kernel
    /// but as they are to fr); never without a namespace.
    pub fn kernel_agrees(&self, real: &Kstat) -> bool {
        let ids = self.inodes.ids();
        match self.namespace {
            crate::Namespace::Subuid => true,
            crate::Namespace::RootMapped => real.uid == ids.host_uid && real.gid == ids.host_gid,
            crate::Namespace::None => false,
        }
    }

    /// The real status of the file `path` names for the target, as
    /// [`Context::lookup`] then [`real_stat`] give it. A lone name (no
    /// slash, not `.` or `..`: what `find` and `ls` pass to `fstatat`, a
    /// relative `stat("f")`) of a caller that may search everywhere is
    /// stat'ed with one `statx` of `/proc/<tid>/cwd/NAME` (or
    /// `fd/<dirfd>/NAME`): the kernel jumps through the magic link to the
    /// target's directory and looks up the one component there, crossing
    /// no symlink but the last. A last symlink to follow, and any error
    /// (whose errno the full lookup gets right: `EBADF` for a closed
    /// dirfd, say), take the full lookup.
    ///
    /// Not yet checked with `ID_VALID`: the status is only a guess until
    /// [`Request::check_valid`] passes, which the caller asks before it
    /// writes anything to the target (a CONTINUE needs no check).
    pub fn stat_path(
        &self,
        req: &Request<'_>,
        dirfd: i32,
        path: &[u8],
        how: LookupFlags,
        sync: AtFlags,
        mask: StatxFlags,
    ) -> Result<(InodeKey, Kstat), Errno> {
        let may_search_all = || searcher(&self.creds.get(req.tid), &|_| true).is_none();
        if let Some(lone) = lone_name(req, dirfd, path).filter(|_| may_search_all()) {
            let at = sync | AtFlags::SYMLINK_NOFOLLOW;
            if let Ok(st) = fs::statx(lone.dir(), &lone.name, at, mask) {
                let link = u32::from(st.stx_mode) & fr_emulator::attrs::S_IFMT
                    == fr_emulator::attrs::S_IFLNK;
                if !(link && how.follow) {
                    return Ok(kstat(&st));
                }
            }
        }
        // The lone name, if it was one, was just tried.
        let file = self.lookup_with(req, dirfd, path, how, false)?;
        real_stat(file.as_fd(), sync, mask)
    }

    /// Whether `creds` may search the directory `dir`: its fake view and
    /// access ACL (`fs/namei.c: may_lookup()`, `generic_permission()`).
    fn may_search(&self, dir: BorrowedFd<'_>, creds: &fr_emulator::Creds) -> bool {
        real_stat(dir, AtFlags::empty(), StatxFlags::BASIC_STATS).is_ok_and(|(key, real)| {
            fr_emulator::rules::permitted_with_acl(
                &self.inodes.view(key, real.attrs()),
                self.inodes.access_acl(key, real.attrs()).as_ref(),
                fr_emulator::rules::MAY_EXEC,
                creds,
            )
        })
    }
}

/// The search check for `creds`: none for a caller that may search every
/// directory (`CAP_DAC_READ_SEARCH` or `CAP_DAC_OVERRIDE`), so that root's
/// lookups keep their one-`openat2` fast path.
fn searcher<'a>(
    creds: &fr_emulator::Creds,
    check: &'a dyn Fn(BorrowedFd<'_>) -> bool,
) -> resolve::Search<'a> {
    use fr_emulator::rules::{CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH};
    if creds.capable(CAP_DAC_OVERRIDE) || creds.capable(CAP_DAC_READ_SEARCH) {
        None
    } else {
        Some(check)
    }
}

/// Whether `creds` pass every permission check on a name, its directory
/// and its file (`CAP_DAC_OVERRIDE` and `CAP_FOWNER`, as root has them),
/// so that the kernel's own checks, by the user's real credentials, can
/// stand for fr's.
pub fn passes_dac(creds: &fr_emulator::Creds) -> bool {
    use fr_emulator::rules::{CAP_DAC_OVERRIDE, CAP_FOWNER};
    creds.capable(CAP_DAC_OVERRIDE) && creds.capable(CAP_FOWNER)
}

/// How a notification is answered when the handler succeeds.
#[derive(Debug)]
pub enum Reply {
    /// The system call returns this value; the kernel does nothing more.
    Value(i64),
    /// The kernel runs the system call itself, for the reason given.
    Continue(&'static str),
    /// The system call returns a new descriptor of the target's for the
    /// file fr opened (`SECCOMP_IOCTL_NOTIF_ADDFD`); `made` is the file fr
    /// made for it, undone if the descriptor cannot be added.
    Fd { file: OwnedFd, cloexec: bool, made: Option<create::Made> },
}

/// A handler's answer: a reply, or the errno the system call fails with.
pub type Outcome = Result<Reply, Errno>;

/// The one signature of every system call handler.
pub type Handler = fn(&Context, &Request<'_>) -> Outcome;

/// What a decoder makes of a call's arguments: the values the handler acts
/// on, or the reason the call is the kernel's to run as it is.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<T> {
    Args(T),
    Kernel(&'static str),
}

impl<T> Decoded<T> {
    /// `act` on the arguments, or `CONTINUE` for the decoder's reason.
    pub fn and_then(self, act: impl FnOnce(T) -> Outcome) -> Outcome {
        match self {
            Decoded::Args(args) => act(args),
            Decoded::Kernel(why) => Ok(Reply::Continue(why)),
        }
    }
}

/// What the workload's kernel call would be refused with for a
/// [`fr_emulator::creds::Refused`]: a change the journal could not keep
/// fails with the journal's errno, as real root's call fails on a file
/// system that cannot store it.
pub fn refused(r: fr_emulator::creds::Refused) -> Errno {
    match r {
        fr_emulator::creds::Refused::Perm => Errno::PERM,
        fr_emulator::creds::Refused::Inval => Errno::INVAL,
        fr_emulator::creds::Refused::Access => Errno::ACCESS,
        fr_emulator::creds::Refused::Unkept(e) => Errno::from_raw_os_error(e),
    }
}

/// The errno of a change the journal could not keep.
pub fn unkept(e: fr_emulator::table::Unkept) -> Errno {
    Errno::from_raw_os_error(e.0)
}

/// The target's umask ([`crate::procfs::umask`]), once the target is
/// known to still wait, so that the number is its own.
pub fn umask(req: &Request<'_>) -> Result<u32, Errno> {
    let umask = crate::procfs::umask(req.tid);
    req.check_valid()?;
    umask.ok_or(Errno::NOENT)
}
