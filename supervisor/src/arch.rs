//! The system call ABIs a filtered process can use, and how a notification
//! names them.
//!
//! On an x86_64 kernel a process can enter through three ABIs: the native
//! one, i386 (`int 0x80`, its own numbers and 32-bit structs) and x32 (the
//! native numbers with `__X32_SYSCALL_BIT` set, native structs, 32-bit
//! pointers). `seccomp_data.arch` tells i386 apart; x32 reports the x86_64
//! audit arch and is recognised by the bit.

use libseccomp::ScmpArch;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// `__X32_SYSCALL_BIT` from `arch/x86/include/uapi/asm/unistd.h`.
pub const X32_SYSCALL_BIT: i32 = 0x4000_0000;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("fr's supervisor knows the x86_64, i386 and x32 system call ABIs only");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    I386,
    X32,
}

impl Arch {
    /// Every ABI the filter covers, native first.
    pub const ALL: [Arch; 3] = [Arch::X86_64, Arch::I386, Arch::X32];

    /// The ABI and the plain system call number of a notification.
    pub fn from_seccomp(audit_arch: u32, nr: i32) -> Option<(Arch, i32)> {
        match audit_arch {
            AUDIT_ARCH_X86_64 if nr & X32_SYSCALL_BIT != 0 => {
                Some((Arch::X32, nr & !X32_SYSCALL_BIT))
            }
            AUDIT_ARCH_X86_64 => Some((Arch::X86_64, nr)),
            AUDIT_ARCH_I386 => Some((Arch::I386, nr)),
            _ => None,
        }
    }

    pub fn scmp(self) -> ScmpArch {
        match self {
            Arch::X86_64 => ScmpArch::X8664,
            Arch::I386 => ScmpArch::X86,
            Arch::X32 => ScmpArch::X32,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::I386 => "i386",
            Arch::X32 => "x32",
        }
    }

    /// Whether pointers and `long` are 32 bits wide.
    pub fn is_32bit(self) -> bool {
        !matches!(self, Arch::X86_64)
    }

    /// The number the filter must compare `seccomp_data.nr` with for the
    /// plain number `nr` of this ABI.
    pub fn filter_nr(self, nr: i32) -> i32 {
        match self {
            Arch::X32 => nr | X32_SYSCALL_BIT,
            _ => nr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_name_their_abi() {
        assert_eq!(Arch::from_seccomp(AUDIT_ARCH_X86_64, 4), Some((Arch::X86_64, 4)));
        assert_eq!(
            Arch::from_seccomp(AUDIT_ARCH_X86_64, 4 | X32_SYSCALL_BIT),
            Some((Arch::X32, 4))
        );
        assert_eq!(Arch::from_seccomp(AUDIT_ARCH_I386, 195), Some((Arch::I386, 195)));
        assert_eq!(Arch::from_seccomp(0xc000_00b7, 79), None);
    }
}
