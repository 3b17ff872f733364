//! The system call table: one entry per intercepted call and ABI, with its
//! handler and a note on how it is handled. The same table builds the
//! seccomp filter, dispatches notifications and prints `fr syscalls`.

use libseccomp::ScmpSyscall;

use crate::arch::Arch;
use crate::handlers::{
    access, create, ident, mode, mount, nested, node, owner, remove, stat, xattr, Handler,
};
use crate::linux;

/// When the filter notifies a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// Only when argument `arg` has one of these bits set (each bit is one
    /// libseccomp rule, `SCMP_CMP_MASKED_EQ`).
    AnyBit {
        arg: u32,
        bits: &'static [u64],
    },
    /// Only when argument `arg` is one of these values (`SCMP_CMP_EQ`).
    OneOf {
        arg: u32,
        values: &'static [u64],
    },
    /// An open's flags, at argument `arg`: the opens that make a file or
    /// ask for `O_NOATIME` ([`OPENING`]), and, where the kernel cannot
    /// enforce ids a thread dropped to (root-mapped mode, no namespace),
    /// the opens for writing too ([`WRITING`]), so that fr checks them
    /// with the fake credentials (`handlers::access`).
    Opening {
        arg: u32,
    },
}

/// The open flags fr is always told of: `O_CREAT`, `__O_TMPFILE`,
/// `O_NOATIME`.
pub const OPENING: &[u64] =
    &[linux::O_CREAT as u64, linux::O_TMPFILE_BIT as u64, linux::O_NOATIME as u64];

/// The open flags fr is also told of where the kernel cannot enforce
/// dropped ids: `O_WRONLY`, `O_RDWR`, `O_TRUNC`.
pub const WRITING: &[u64] = &[linux::O_WRONLY as u64, linux::O_RDWR as u64, linux::O_TRUNC as u64];

#[derive(Debug)]
pub struct Syscall {
    pub name: &'static str,
    pub abis: &'static [Arch],
    pub handler: Handler,
    pub note: &'static str,
    pub when: When,
    /// The number of a call added since Linux 5.1, which every ABI numbers
    /// alike (x32 with its bit): used when libseccomp does not know the name.
    pub unified: Option<i32>,
}

const NATIVE: &[Arch] = &[Arch::X86_64, Arch::X32];
const I386: &[Arch] = &[Arch::I386];
const EVERY: &[Arch] = &[Arch::X86_64, Arch::X32, Arch::I386];

macro_rules! entry {
    ($name:literal, $abis:expr, $handler:path, $note:expr) => {
        entry!($name, $abis, $handler, $note, When::Always)
    };
    ($name:literal, $abis:expr, $handler:path, $note:expr, $when:expr) => {
        Syscall {
            name: $name,
            abis: $abis,
            handler: $handler,
            note: $note,
            when: $when,
            unified: None,
        }
    };
}

/// An entry for a call newer than Debian 12's libseccomp, by its number.
macro_rules! unified {
    ($name:literal, $nr:literal, $handler:path, $note:expr) => {
        Syscall {
            name: $name,
            abis: EVERY,
            handler: $handler,
            note: $note,
            when: When::Always,
            unified: Some($nr),
        }
    };
}

/// The `prctl` options that read or change capability state: `GET_KEEPCAPS`,
/// `SET_KEEPCAPS`, `CAPBSET_READ`, `CAPBSET_DROP`, `GET_SECUREBITS`,
/// `SET_SECUREBITS`.
const CAP_PRCTLS: &[u64] = &[
    linux::PR_GET_KEEPCAPS as u64,
    linux::PR_SET_KEEPCAPS as u64,
    linux::PR_CAPBSET_READ as u64,
    linux::PR_CAPBSET_DROP as u64,
    linux::PR_GET_SECUREBITS as u64,
    linux::PR_SET_SECUREBITS as u64,
];

/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`: a nested filter that asks for a
/// listener of its own.
const NEW_LISTENER: &[u64] = &[linux::SECCOMP_FILTER_FLAG_NEW_LISTENER as u64];

const OWNER: &str = "emulated: owner recorded, set-id bits dropped as for root";
const OWNER16: &str = "emulated: 16-bit ids, owner recorded, set-id bits dropped as for root";
const STAT: &str = "emulated: real stat with the recorded owner, mode and device laid over";
const STAT16: &str = "emulated: as stat, 16-bit ids (EOVERFLOW like the kernel)";
const MODE: &str = "emulated: mode recorded; real mode kept usable by the user";
const NODE: &str = "devices emulated: a regular placeholder with the type and number recorded; fifos and sockets real";
const CREATE: &str = "owner from the fake fs ids or a set-group-id directory; made by fr (open: ADDFD) when the kernel's owner would be wrong";
const REMOVE: &str = "the kernel's unless the file losing a link has a record: then done by fr, which forgets the record with the last link";
const ACCESS: &str =
    "root's continues; a thread that dropped root is checked with its fake credentials (the real ids)";
const LINK: &str =
    "checked with the fake credentials (search, may_linkat(), may_create()), then the kernel's";
const XATTR: &str =
    "user.* real; security.*, trusted.* and POSIX ACLs kept by fr and merged into get and list";
const NESTED: &str = "only with SECCOMP_FILTER_FLAG_NEW_LISTENER: EBUSY, with a warning (one listener per process tree)";
const MOUNT: &str = "the kernel's; a devpts's uid=/gid= options naming ids the namespace does not map are taken out first";
const ID: &str = "emulated: the thread's fake credentials";
const ID16: &str = "emulated: the thread's fake credentials, 16-bit ids";
const EXEC: &str = "the kernel runs it; fr applies set-id programs and root's capabilities to the fake credentials";

pub static TABLE: &[Syscall] = &[
    entry!("chown", NATIVE, owner::chown, OWNER),
    entry!("chown", I386, owner::chown16, OWNER16),
    entry!("chown32", I386, owner::chown, OWNER),
    entry!("lchown", NATIVE, owner::lchown, OWNER),
    entry!("lchown", I386, owner::lchown16, OWNER16),
    entry!("lchown32", I386, owner::lchown, OWNER),
    entry!("fchown", NATIVE, owner::fchown, OWNER),
    entry!("fchown", I386, owner::fchown16, OWNER16),
    entry!("fchown32", I386, owner::fchown, OWNER),
    entry!("fchownat", EVERY, owner::fchownat, OWNER),
    entry!("stat", NATIVE, stat::stat, STAT),
    entry!("stat", I386, stat::stat, STAT16),
    entry!("lstat", NATIVE, stat::lstat, STAT),
    entry!("lstat", I386, stat::lstat, STAT16),
    entry!("fstat", NATIVE, stat::fstat, STAT),
    entry!("fstat", I386, stat::fstat, STAT16),
    entry!("newfstatat", NATIVE, stat::newfstatat, STAT),
    entry!("stat64", I386, stat::stat64, STAT),
    entry!("lstat64", I386, stat::lstat64, STAT),
    entry!("fstat64", I386, stat::fstat64, STAT),
    entry!("fstatat64", I386, stat::fstatat64, STAT),
    entry!("statx", EVERY, stat::statx, STAT),
    entry!("chmod", EVERY, mode::chmod, MODE),
    entry!("fchmod", EVERY, mode::fchmod, MODE),
    entry!("fchmodat", EVERY, mode::fchmodat, MODE),
    entry!("fchmodat2", EVERY, mode::fchmodat2, MODE),
    entry!("open", EVERY, create::open, CREATE, When::Opening { arg: 1 }),
    entry!("openat", EVERY, create::openat, CREATE, When::Opening { arg: 2 }),
    entry!("creat", EVERY, create::creat, CREATE),
    entry!("openat2", EVERY, create::openat2, CREATE),
    entry!("mkdir", EVERY, create::mkdir, CREATE),
    entry!("mkdirat", EVERY, create::mkdirat, CREATE),
    entry!("symlink", EVERY, create::symlink, CREATE),
    entry!("symlinkat", EVERY, create::symlinkat, CREATE),
    entry!("link", EVERY, create::link, LINK),
    entry!("linkat", EVERY, create::linkat, LINK),
    entry!("unlink", EVERY, remove::unlink, REMOVE),
    entry!("unlinkat", EVERY, remove::unlinkat, REMOVE),
    entry!("rmdir", EVERY, remove::rmdir, REMOVE),
    entry!("rename", EVERY, remove::rename, REMOVE),
    entry!("renameat", EVERY, remove::renameat, REMOVE),
    entry!("renameat2", EVERY, remove::renameat2, REMOVE),
    entry!("setxattr", EVERY, xattr::setxattr, XATTR),
    entry!("lsetxattr", EVERY, xattr::lsetxattr, XATTR),
    entry!("fsetxattr", EVERY, xattr::fsetxattr, XATTR),
    entry!("getxattr", EVERY, xattr::getxattr, XATTR),
    entry!("lgetxattr", EVERY, xattr::lgetxattr, XATTR),
    entry!("fgetxattr", EVERY, xattr::fgetxattr, XATTR),
    entry!("listxattr", EVERY, xattr::listxattr, XATTR),
    entry!("llistxattr", EVERY, xattr::llistxattr, XATTR),
    entry!("flistxattr", EVERY, xattr::flistxattr, XATTR),
    entry!("removexattr", EVERY, xattr::removexattr, XATTR),
    entry!("lremovexattr", EVERY, xattr::lremovexattr, XATTR),
    entry!("fremovexattr", EVERY, xattr::fremovexattr, XATTR),
    entry!("seccomp", EVERY, nested::seccomp, NESTED, When::AnyBit { arg: 1, bits: NEW_LISTENER }),
    unified!("setxattrat", 463, xattr::setxattrat, XATTR),
    unified!("getxattrat", 464, xattr::getxattrat, XATTR),
    unified!("listxattrat", 465, xattr::listxattrat, XATTR),
    unified!("removexattrat", 466, xattr::removexattrat, XATTR),
    entry!("mknod", EVERY, node::mknod, NODE),
    entry!("mknodat", EVERY, node::mknodat, NODE),
    entry!("getuid", NATIVE, ident::getuid, ID),
    entry!("getuid", I386, ident::getuid16, ID16),
    entry!("getuid32", I386, ident::getuid, ID),
    entry!("geteuid", NATIVE, ident::geteuid, ID),
    entry!("geteuid", I386, ident::geteuid16, ID16),
    entry!("geteuid32", I386, ident::geteuid, ID),
    entry!("getgid", NATIVE, ident::getgid, ID),
    entry!("getgid", I386, ident::getgid16, ID16),
    entry!("getgid32", I386, ident::getgid, ID),
    entry!("getegid", NATIVE, ident::getegid, ID),
    entry!("getegid", I386, ident::getegid16, ID16),
    entry!("getegid32", I386, ident::getegid, ID),
    entry!("setuid", NATIVE, ident::setuid, ID),
    entry!("setuid", I386, ident::setuid16, ID16),
    entry!("setuid32", I386, ident::setuid, ID),
    entry!("setgid", NATIVE, ident::setgid, ID),
    entry!("setgid", I386, ident::setgid16, ID16),
    entry!("setgid32", I386, ident::setgid, ID),
    entry!("setreuid", NATIVE, ident::setreuid, ID),
    entry!("setreuid", I386, ident::setreuid16, ID16),
    entry!("setreuid32", I386, ident::setreuid, ID),
    entry!("setregid", NATIVE, ident::setregid, ID),
    entry!("setregid", I386, ident::setregid16, ID16),
    entry!("setregid32", I386, ident::setregid, ID),
    entry!("setresuid", NATIVE, ident::setresuid, ID),
    entry!("setresuid", I386, ident::setresuid16, ID16),
    entry!("setresuid32", I386, ident::setresuid, ID),
    entry!("setresgid", NATIVE, ident::setresgid, ID),
    entry!("setresgid", I386, ident::setresgid16, ID16),
    entry!("setresgid32", I386, ident::setresgid, ID),
    entry!("getresuid", NATIVE, ident::getresuid, ID),
    entry!("getresuid", I386, ident::getresuid16, ID16),
    entry!("getresuid32", I386, ident::getresuid, ID),
    entry!("getresgid", NATIVE, ident::getresgid, ID),
    entry!("getresgid", I386, ident::getresgid16, ID16),
    entry!("getresgid32", I386, ident::getresgid, ID),
    entry!("setfsuid", NATIVE, ident::setfsuid, ID),
    entry!("setfsuid", I386, ident::setfsuid16, ID16),
    entry!("setfsuid32", I386, ident::setfsuid, ID),
    entry!("setfsgid", NATIVE, ident::setfsgid, ID),
    entry!("setfsgid", I386, ident::setfsgid16, ID16),
    entry!("setfsgid32", I386, ident::setfsgid, ID),
    entry!("getgroups", NATIVE, ident::getgroups, ID),
    entry!("getgroups", I386, ident::getgroups16, ID16),
    entry!("getgroups32", I386, ident::getgroups, ID),
    entry!("setgroups", NATIVE, ident::setgroups, ID),
    entry!("setgroups", I386, ident::setgroups16, ID16),
    entry!("setgroups32", I386, ident::setgroups, ID),
    entry!("capget", EVERY, ident::capget, ID),
    entry!("prctl", EVERY, ident::prctl, ID, When::OneOf { arg: 0, values: CAP_PRCTLS }),
    entry!("capset", EVERY, ident::capset, ID),
    entry!("execve", EVERY, ident::execve, EXEC),
    entry!("execveat", EVERY, ident::execveat, EXEC),
    // Last: the fuzz seeds name calls by their place in the table.
    entry!("mount", EVERY, mount::mount, MOUNT),
    // Added since the fuzz seeds were written, which name calls by their
    // place here: new entries go last.
    entry!("access", EVERY, access::access, ACCESS),
    entry!("faccessat", EVERY, access::faccessat, ACCESS),
    entry!("faccessat2", EVERY, access::faccessat2, ACCESS),
];

/// A call the filter refuses itself, without a round trip to fr.
#[derive(Debug)]
pub struct Refused {
    pub name: &'static str,
    /// The errno the call fails with.
    pub errno: i32,
    pub note: &'static str,
}

/// Calls the filter fails on every ABI. io_uring's operations (openat,
/// statx, ...) run in the kernel without passing through seccomp, so a
/// ring would show the workload the real metadata and make changes fr
/// never sees: without `io_uring_setup` programs fall back to plain
/// system calls, as under container runtimes' default profiles.
pub static REFUSED: &[Refused] = &[Refused {
    name: "io_uring_setup",
    errno: libc::ENOSYS,
    note:
        "refused (ENOSYS): io_uring's operations bypass seccomp; programs fall back to plain calls",
}];

/// The calls that send a signal to, or open, a process named by its first
/// argument: without a pid namespace of its own the workload sees fr's pid,
/// and these fail for it with `ESRCH`, as if fr were not there (see
/// [`crate::filter::build`]).
pub const SIGNALLING: &[&str] =
    &["kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open"];

/// One table entry bound to its number on one ABI.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    pub arch: Arch,
    /// The plain number (no x32 bit).
    pub nr: i32,
    pub syscall: &'static Syscall,
    /// libseccomp does not know the call: the filter's prologue notifies it.
    pub prologue: bool,
}

/// Every entry with its number on each of its ABIs as libseccomp knows
/// them, or by its unified number. A call neither way numbers on an ABI is
/// left out there.
pub fn bind() -> Vec<Bound> {
    let mut bound = Vec::new();
    for syscall in TABLE {
        for &arch in syscall.abis {
            match ScmpSyscall::from_name_by_arch(syscall.name, arch.scmp()).map(i32::from) {
                Ok(nr) if nr >= 0 => bound.push(Bound {
                    arch,
                    nr: nr & !crate::arch::X32_SYSCALL_BIT,
                    syscall,
                    prologue: false,
                }),
                _ => {
                    if let Some(nr) = syscall.unified {
                        bound.push(Bound { arch, nr, syscall, prologue: true });
                    }
                }
            }
        }
    }
    bound
}

/// Finds the handler of a notification.
#[derive(Debug)]
pub struct Dispatch {
    by_arch: [Vec<Option<&'static Syscall>>; 3],
}

fn arch_index(arch: Arch) -> usize {
    match arch {
        Arch::X86_64 => 0,
        Arch::I386 => 1,
        Arch::X32 => 2,
    }
}

impl Dispatch {
    pub fn new(bound: &[Bound]) -> Self {
        let mut by_arch: [Vec<Option<&'static Syscall>>; 3] = Default::default();
        for b in bound {
            let slots = &mut by_arch[arch_index(b.arch)];
            let nr = b.nr as usize;
            if slots.len() <= nr {
                slots.resize(nr + 1, None);
            }
            slots[nr] = Some(b.syscall);
        }
        Self { by_arch }
    }

    pub fn find(&self, arch: Arch, nr: i32) -> Option<&'static Syscall> {
        let slots = &self.by_arch[arch_index(arch)];
        usize::try_from(nr).ok().and_then(|nr| slots.get(nr).copied().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_binds_on_each_of_its_abis() {
        let bound = bind();
        for syscall in TABLE {
            for &arch in syscall.abis {
                assert!(
                    bound.iter().any(|b| b.arch == arch && std::ptr::eq(b.syscall, syscall)),
                    "{} has no number on {}",
                    syscall.name,
                    arch.name()
                );
            }
        }
    }

    #[test]
    fn abis_get_their_own_handlers() {
        let dispatch = Dispatch::new(&bind());
        // x86_64 chown is 92, i386's 16-bit chown is 182, chown32 212.
        assert_eq!(dispatch.find(Arch::X86_64, 92).unwrap().note, OWNER);
        assert_eq!(dispatch.find(Arch::I386, 182).unwrap().note, OWNER16);
        assert_eq!(dispatch.find(Arch::I386, 212).unwrap().note, OWNER);
        assert_eq!(dispatch.find(Arch::X32, 92).unwrap().note, OWNER);
        assert!(dispatch.find(Arch::X86_64, 39).is_none()); // getpid
        assert_eq!(dispatch.find(Arch::X32, 463).unwrap().name, "setxattrat");
        assert_eq!(dispatch.find(Arch::I386, 466).unwrap().name, "removexattrat");
    }

    #[test]
    fn i386_identity_calls_get_their_width() {
        let dispatch = Dispatch::new(&bind());
        // i386 getuid (24) is 16-bit, getuid32 (199) is not.
        assert_eq!(dispatch.find(Arch::I386, 24).unwrap().note, ID16);
        assert_eq!(dispatch.find(Arch::I386, 199).unwrap().note, ID);
        assert_eq!(dispatch.find(Arch::X86_64, 102).unwrap().note, ID);
    }
}
