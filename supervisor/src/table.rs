//! The system call table: one entry per intercepted call and ABI, with its
//! handler and a note on how it is handled. The same table builds the
//! seccomp filter, dispatches notifications and prints `fr syscalls`.

use libseccomp::ScmpSyscall;

use crate::arch::Arch;
use crate::handlers::{ident, mode, node, owner, stat, Handler};

/// When an entry is in the filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Always.
    Always,
    /// Only when the workload has no user namespace, where the kernel
    /// would answer with the user's real ids.
    WithoutUserns,
}

#[derive(Debug)]
pub struct Syscall {
    pub name: &'static str,
    pub abis: &'static [Arch],
    pub scope: Scope,
    pub handler: Handler,
    pub note: &'static str,
}

const NATIVE: &[Arch] = &[Arch::X86_64, Arch::X32];
const I386: &[Arch] = &[Arch::I386];
const EVERY: &[Arch] = &[Arch::X86_64, Arch::X32, Arch::I386];

macro_rules! entry {
    ($name:literal, $abis:expr, $scope:ident, $handler:path, $note:expr) => {
        Syscall { name: $name, abis: $abis, scope: Scope::$scope, handler: $handler, note: $note }
    };
}

const OWNER: &str = "emulated: owner recorded, set-id bits dropped as for root";
const OWNER16: &str = "emulated: 16-bit ids, owner recorded, set-id bits dropped as for root";
const STAT: &str = "emulated: real stat with the recorded owner, mode and device laid over";
const STAT16: &str = "emulated: as stat, 16-bit ids (EOVERFLOW like the kernel)";
const MODE: &str = "emulated: mode recorded; real mode kept usable by the user";
const NODE: &str = "devices emulated: a regular placeholder with the type and number recorded; fifos and sockets real";
const ID0: &str = "emulated without a user namespace: returns 0";
const IDS0: &str = "emulated without a user namespace: writes 0, 0, 0";

pub static TABLE: &[Syscall] = &[
    entry!("chown", NATIVE, Always, owner::chown, OWNER),
    entry!("chown", I386, Always, owner::chown16, OWNER16),
    entry!("chown32", I386, Always, owner::chown, OWNER),
    entry!("lchown", NATIVE, Always, owner::lchown, OWNER),
    entry!("lchown", I386, Always, owner::lchown16, OWNER16),
    entry!("lchown32", I386, Always, owner::lchown, OWNER),
    entry!("fchown", NATIVE, Always, owner::fchown, OWNER),
    entry!("fchown", I386, Always, owner::fchown16, OWNER16),
    entry!("fchown32", I386, Always, owner::fchown, OWNER),
    entry!("fchownat", EVERY, Always, owner::fchownat, OWNER),
    entry!("stat", NATIVE, Always, stat::stat, STAT),
    entry!("stat", I386, Always, stat::stat, STAT16),
    entry!("lstat", NATIVE, Always, stat::lstat, STAT),
    entry!("lstat", I386, Always, stat::lstat, STAT16),
    entry!("fstat", NATIVE, Always, stat::fstat, STAT),
    entry!("fstat", I386, Always, stat::fstat, STAT16),
    entry!("newfstatat", NATIVE, Always, stat::newfstatat, STAT),
    entry!("stat64", I386, Always, stat::stat64, STAT),
    entry!("lstat64", I386, Always, stat::lstat64, STAT),
    entry!("fstat64", I386, Always, stat::fstat64, STAT),
    entry!("fstatat64", I386, Always, stat::fstatat64, STAT),
    entry!("statx", EVERY, Always, stat::statx, STAT),
    entry!("chmod", EVERY, Always, mode::chmod, MODE),
    entry!("fchmod", EVERY, Always, mode::fchmod, MODE),
    entry!("fchmodat", EVERY, Always, mode::fchmodat, MODE),
    entry!("fchmodat2", EVERY, Always, mode::fchmodat2, MODE),
    entry!("mknod", EVERY, Always, node::mknod, NODE),
    entry!("mknodat", EVERY, Always, node::mknodat, NODE),
    entry!("getuid", NATIVE, WithoutUserns, ident::zero, ID0),
    entry!("geteuid", NATIVE, WithoutUserns, ident::zero, ID0),
    entry!("getgid", NATIVE, WithoutUserns, ident::zero, ID0),
    entry!("getegid", NATIVE, WithoutUserns, ident::zero, ID0),
    entry!("getresuid", NATIVE, WithoutUserns, ident::getres, IDS0),
    entry!("getresgid", NATIVE, WithoutUserns, ident::getres, IDS0),
    entry!("getuid", I386, WithoutUserns, ident::zero, ID0),
    entry!("geteuid", I386, WithoutUserns, ident::zero, ID0),
    entry!("getgid", I386, WithoutUserns, ident::zero, ID0),
    entry!("getegid", I386, WithoutUserns, ident::zero, ID0),
    entry!("getuid32", I386, WithoutUserns, ident::zero, ID0),
    entry!("geteuid32", I386, WithoutUserns, ident::zero, ID0),
    entry!("getgid32", I386, WithoutUserns, ident::zero, ID0),
    entry!("getegid32", I386, WithoutUserns, ident::zero, ID0),
    entry!("getresuid", I386, WithoutUserns, ident::getres16, IDS0),
    entry!("getresgid", I386, WithoutUserns, ident::getres16, IDS0),
    entry!("getresuid32", I386, WithoutUserns, ident::getres, IDS0),
    entry!("getresgid32", I386, WithoutUserns, ident::getres, IDS0),
];

/// One table entry bound to its number on one ABI.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    pub arch: Arch,
    /// The plain number (no x32 bit).
    pub nr: i32,
    pub syscall: &'static Syscall,
}

/// The entries in force for a workload with (or without) a user namespace,
/// each with its number on each of its ABIs as libseccomp knows them. A
/// call this libseccomp does not know on an ABI is left out there.
pub fn bind(userns: bool) -> Vec<Bound> {
    let mut bound = Vec::new();
    for syscall in TABLE {
        if syscall.scope == Scope::WithoutUserns && userns {
            continue;
        }
        for &arch in syscall.abis {
            if let Ok(nr) = ScmpSyscall::from_name_by_arch(syscall.name, arch.scmp()) {
                let nr = i32::from(nr);
                if nr >= 0 {
                    bound.push(Bound { arch, nr: nr & !crate::arch::X32_SYSCALL_BIT, syscall });
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
        let bound = bind(false);
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
        let dispatch = Dispatch::new(&bind(false));
        // x86_64 chown is 92, i386's 16-bit chown is 182, chown32 212.
        assert_eq!(dispatch.find(Arch::X86_64, 92).unwrap().note, OWNER);
        assert_eq!(dispatch.find(Arch::I386, 182).unwrap().note, OWNER16);
        assert_eq!(dispatch.find(Arch::I386, 212).unwrap().note, OWNER);
        assert_eq!(dispatch.find(Arch::X32, 92).unwrap().note, OWNER);
        assert!(dispatch.find(Arch::X86_64, 39).is_none()); // getpid
    }

    #[test]
    fn identity_calls_are_left_to_a_user_namespace() {
        let dispatch = Dispatch::new(&bind(true));
        assert!(dispatch.find(Arch::X86_64, 102).is_none()); // getuid
        let dispatch = Dispatch::new(&bind(false));
        assert!(dispatch.find(Arch::X86_64, 102).is_some());
    }
}
