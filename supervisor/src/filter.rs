//! The seccomp filter: `SECCOMP_RET_USER_NOTIF` for every bound table entry
//! on its ABI, `ALLOW` for everything else, built with libseccomp for the
//! native ABI and the compat ones an x86_64 kernel runs (i386, x32).
//!
//! The program is built in the supervisor before the workload is forked and
//! installed by the workload itself just before `execve`, so installing it
//! allocates nothing.

use std::io::Read;
use std::os::fd::OwnedFd;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use rustix::io::Errno;

use crate::arch::Arch;
use crate::sys::{self, SockFilter};
use crate::table::{Bound, When, OPENING, REFUSED, SIGNALLING, WRITING};

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("building the seccomp filter for {arch} with libseccomp: {source}")]
    Build { arch: &'static str, source: libseccomp::error::SeccompError },
    #[error("exporting the seccomp filter from libseccomp: {0}")]
    Export(String),
}

fn build_error(arch: Arch) -> impl Fn(libseccomp::error::SeccompError) -> FilterError {
    move |source| FilterError::Build { arch: arch.name(), source }
}

/// One context per ABI, each with only that ABI's rules, merged into one.
fn context(bound: &[Bound], options: &Options) -> Result<ScmpFilterContext, FilterError> {
    let mut merged: Option<ScmpFilterContext> = None;
    for arch in Arch::ALL {
        let err = build_error(arch);
        let mut ctx = ScmpFilterContext::new(ScmpAction::Allow).map_err(&err)?;
        // The launcher decides about no_new_privs, not libseccomp.
        ctx.set_ctl_nnp(false).map_err(&err)?;
        // A binary tree of the call numbers, not one comparison after
        // another: a call the filter only looks at (an open without
        // O_CREAT) runs a handful of instructions instead of a hundred.
        ctx.set_ctl_optimize(2).map_err(&err)?;
        if arch.scmp() != ScmpArch::native() {
            ctx.add_arch(arch.scmp()).map_err(&err)?;
            ctx.remove_arch(ScmpArch::native()).map_err(&err)?;
        }
        for b in bound.iter().filter(|b| b.arch == arch && !b.prologue) {
            // Rules take the native number (or libseccomp's pseudo-number
            // for a call the native ABI lacks) and are mapped by name.
            let syscall = ScmpSyscall::from_name(b.syscall.name).map_err(&err)?;
            match b.syscall.when {
                When::Always => {
                    ctx.add_rule(ScmpAction::Notify, syscall).map_err(&err)?;
                }
                When::AnyBit { arg, bits } => {
                    for &bit in bits {
                        let has_bit =
                            ScmpArgCompare::new(arg, ScmpCompareOp::MaskedEqual(bit), bit);
                        ctx.add_rule_conditional(ScmpAction::Notify, syscall, &[has_bit])
                            .map_err(&err)?;
                    }
                }
                When::OneOf { arg, values } => {
                    for &value in values {
                        let is = ScmpArgCompare::new(arg, ScmpCompareOp::Equal, value);
                        ctx.add_rule_conditional(ScmpAction::Notify, syscall, &[is])
                            .map_err(&err)?;
                    }
                }
                When::Opening { arg } => {
                    let extra = if options.writes { WRITING } else { &[] };
                    for &bit in OPENING.iter().chain(extra) {
                        let has_bit =
                            ScmpArgCompare::new(arg, ScmpCompareOp::MaskedEqual(bit), bit);
                        ctx.add_rule_conditional(ScmpAction::Notify, syscall, &[has_bit])
                            .map_err(&err)?;
                    }
                }
            }
        }
        for refused in REFUSED {
            let syscall = ScmpSyscall::from_name(refused.name).map_err(&err)?;
            ctx.add_rule(ScmpAction::Errno(refused.errno), syscall).map_err(&err)?;
        }
        if let Some(pid) = options.shield {
            for name in SIGNALLING {
                let syscall = ScmpSyscall::from_name(name).map_err(&err)?;
                let at_fr = ScmpArgCompare::new(0, ScmpCompareOp::Equal, u64::from(pid));
                ctx.add_rule_conditional(ScmpAction::Errno(libc::ESRCH), syscall, &[at_fr])
                    .map_err(&err)?;
            }
        }
        merged = Some(match merged {
            None => ctx,
            Some(mut all) => {
                all.merge(ctx).map_err(&err)?;
                all
            }
        });
    }
    Ok(merged.expect("Arch::ALL is not empty"))
}

/// Instructions that notify the calls libseccomp cannot name, before its
/// program runs: they are numbered alike on every ABI (x32 with its bit,
/// which is masked off), so one comparison per number serves all.
fn prologue(bound: &[Bound]) -> Vec<SockFilter> {
    const LD_W_ABS: u16 = 0x20;
    const ALU_AND_K: u16 = 0x54;
    const JMP_JEQ_K: u16 = 0x15;
    const JMP_JA: u16 = 0x05;
    const RET_K: u16 = 0x06;
    const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
    let mut numbers: Vec<u32> = bound.iter().filter(|b| b.prologue).map(|b| b.nr as u32).collect();
    numbers.sort_unstable();
    numbers.dedup();
    if numbers.is_empty() {
        return Vec::new();
    }
    let ins = |code, jt, jf, k| SockFilter { code, jt, jf, k };
    // seccomp_data.nr is at offset 0.
    let mut p =
        vec![ins(LD_W_ABS, 0, 0, 0), ins(ALU_AND_K, 0, 0, !(crate::arch::X32_SYSCALL_BIT as u32))];
    let m = numbers.len();
    for (i, &nr) in numbers.iter().enumerate() {
        // Jump over the remaining comparisons and the `ja` to the return.
        p.push(ins(JMP_JEQ_K, (m - i) as u8, 0, nr));
    }
    p.push(ins(JMP_JA, 0, 0, 1));
    p.push(ins(RET_K, 0, 0, SECCOMP_RET_USER_NOTIF));
    p
}

/// What a session's filter depends on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// fr's own pid, when the workload shares fr's pid namespace.
    pub shield: Option<u32>,
    /// Whether opens for writing are notified too ([`When::Opening`]):
    /// where the kernel cannot enforce ids a thread dropped to.
    pub writes: bool,
}

/// The classic BPF program of the filter: the prologue, then libseccomp's.
/// `options.shield` is fr's own pid when the workload shares fr's pid namespace
/// (`--userns=none`): the calls that signal or open a process by its pid
/// ([`SIGNALLING`]) fail with `ESRCH` for it, as they do in a container,
/// where fr has no pid at all. (A signal to a whole process group or to
/// every process, `kill(0)` or `kill(-1)`, still reaches fr there, as it
/// reaches every process of the user's; fr forwards the ones it can catch.)
pub fn build(bound: &[Bound], options: &Options) -> Result<Vec<SockFilter>, FilterError> {
    let ctx = context(bound, options)?;
    let (reader, writer) = rustix::pipe::pipe().map_err(|e| FilterError::Export(e.to_string()))?;
    // A filter this size is far below a pipe's capacity, so the export
    // cannot block before the pipe is read.
    ctx.export_bpf(&writer).map_err(|e| FilterError::Export(e.to_string()))?;
    drop(writer);
    let mut bytes = Vec::new();
    std::fs::File::from(reader)
        .read_to_end(&mut bytes)
        .map_err(|e| FilterError::Export(e.to_string()))?;
    let mut program = prologue(bound);
    program.extend(bytes.chunks_exact(8).map(|c| SockFilter {
        code: u16::from_ne_bytes([c[0], c[1]]),
        jt: c[2],
        jf: c[3],
        k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
    }));
    Ok(program)
}

/// Installs `program` on the calling thread and returns its listener. Asks
/// for `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (5.19) so that a signal
/// cannot interrupt a call the supervisor is already handling, and does
/// without it on older kernels.
pub fn install(program: &[SockFilter]) -> Result<OwnedFd, Errno> {
    match sys::install_filter(program, sys::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) {
        Err(Errno::INVAL) => sys::install_filter(program, 0),
        done => done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::bind;

    #[test]
    fn the_program_is_built_for_every_abi() {
        let program = build(&bind(), &Options::default()).unwrap();
        assert!(program.len() > 20);
        // Every ABI's audit arch appears as a comparison constant.
        for arch in [0xc000_003e_u32, 0x4000_0003] {
            assert!(program.iter().any(|i| i.k == arch), "no check for arch {arch:#x}");
        }
        // SECCOMP_RET_USER_NOTIF is returned somewhere.
        assert!(program.iter().any(|i| i.k == 0x7fc0_0000));
    }

    const NOTIFY: u32 = 0x7fc0_0000;
    const ALLOW: u32 = 0x7fff_0000;
    const ERRNO: u32 = 0x0005_0000;

    /// Runs a classic BPF program over `struct seccomp_data` as the kernel
    /// would (`kernel/bpf/core.c` after `bpf_convert_filter()`): the
    /// instructions libseccomp and the prologue emit, nothing else.
    fn run(program: &[SockFilter], arch: u32, nr: i32, args: [u64; 6]) -> u32 {
        run_counted(program, arch, nr, args).0
    }

    /// [`run`], and how many instructions it took.
    fn run_counted(program: &[SockFilter], arch: u32, nr: i32, args: [u64; 6]) -> (u32, usize) {
        let word = |off: u32| -> u32 {
            match off {
                0 => nr as u32,
                4 => arch,
                8 | 12 => 0,
                16..=63 => {
                    let arg = args[(off as usize - 16) / 8];
                    if off % 8 == 0 {
                        arg as u32
                    } else {
                        (arg >> 32) as u32
                    }
                }
                _ => panic!("load of seccomp_data offset {off}"),
            }
        };
        let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
        let (mut pc, mut steps) = (0, 0);
        loop {
            let SockFilter { code, jt, jf, k } = program[pc];
            pc += 1;
            steps += 1;
            let jump = |taken: bool| if taken { jt as usize } else { jf as usize };
            match code {
                0x20 => a = word(k),
                0x00 => a = k,
                0x60 => a = mem[k as usize],
                0x61 => x = mem[k as usize],
                0x02 => mem[k as usize] = a,
                0x03 => mem[k as usize] = x,
                0x07 => x = a,
                0x87 => a = x,
                0x54 => a &= k,
                0x44 => a |= k,
                0x05 => pc += k as usize,
                0x15 => pc += jump(a == k),
                0x35 => pc += jump(a >= k),
                0x25 => pc += jump(a > k),
                0x45 => pc += jump(a & k != 0),
                0x06 => return (k, steps),
                0x16 => return (a, steps),
                _ => panic!("instruction {code:#x} at {}", pc - 1),
            }
        }
    }

    #[test]
    fn the_program_notifies_exactly_the_bound_calls_on_every_abi() {
        const AUDIT: [(Arch, u32); 3] =
            [(Arch::X86_64, 0xc000_003e), (Arch::I386, 0x4000_0003), (Arch::X32, 0xc000_003e)];
        let bound = bind();
        let program = build(&bound, &Options::default()).unwrap();
        for (arch, audit) in AUDIT {
            let refused: Vec<(i32, u32)> = REFUSED
                .iter()
                .filter_map(|r| {
                    let nr = ScmpSyscall::from_name_by_arch(r.name, arch.scmp()).ok()?;
                    Some((i32::from(nr) & !crate::arch::X32_SYSCALL_BIT, r.errno as u32))
                })
                .collect();
            assert_eq!(
                refused.len(),
                REFUSED.len(),
                "every refused call is numbered on {}",
                arch.name()
            );
            for nr in 0..1024 {
                let filter_nr = arch.filter_nr(nr);
                let entries: Vec<_> =
                    bound.iter().filter(|b| b.arch == arch && b.nr == nr).collect();
                let none = run(&program, audit, filter_nr, [0; 6]);
                let Some(b) = entries.first() else {
                    match refused.iter().find(|&&(r, _)| r == nr) {
                        Some(&(_, errno)) => {
                            assert_eq!(none, ERRNO | errno, "{} {nr}", arch.name())
                        }
                        None => assert_eq!(none, ALLOW, "{} {nr} is not fr's", arch.name()),
                    }
                    continue;
                };
                let with = |arg: u32, value: u64| {
                    let mut args = [0; 6];
                    args[arg as usize] = value;
                    run(&program, audit, filter_nr, args)
                };
                let any_bit = |arg: u32, bits: &[u64]| {
                    let name = b.syscall.name;
                    assert_eq!(none, ALLOW, "{} {name} without its bits", arch.name());
                    let others = !bits.iter().fold(0, |all, bit| all | bit) & 0xffff_ffff;
                    assert_eq!(with(arg, others), ALLOW, "{} {name} other bits", arch.name());
                    for &bit in bits {
                        assert_eq!(with(arg, bit | 1), NOTIFY, "{} {name}", arch.name());
                    }
                };
                match b.syscall.when {
                    When::Always => assert_eq!(none, NOTIFY, "{} {}", arch.name(), b.syscall.name),
                    When::AnyBit { arg, bits } => any_bit(arg, bits),
                    When::Opening { arg } => any_bit(arg, OPENING),
                    When::OneOf { arg, values } => {
                        assert_eq!(
                            none == NOTIFY,
                            values.contains(&0),
                            "{} {} with 0",
                            arch.name(),
                            b.syscall.name
                        );
                        for &value in values {
                            assert_eq!(
                                with(arg, value),
                                NOTIFY,
                                "{} {}",
                                arch.name(),
                                b.syscall.name
                            );
                        }
                        assert_eq!(
                            with(arg, 0xdead_0000),
                            ALLOW,
                            "{} {}",
                            arch.name(),
                            b.syscall.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_call_the_filter_lets_through_is_decided_in_a_few_instructions() {
        // A binary tree of the numbers (libseccomp's optimize level 2), not
        // one comparison after another: over a hundred for some calls.
        let program = build(&bind(), &Options::default()).unwrap();
        let longest = (0..512)
            .map(|nr| run_counted(&program, 0xc000_003e, nr, [0; 6]))
            .filter(|&(action, _)| action == ALLOW)
            .map(|(_, steps)| steps)
            .max()
            .unwrap();
        assert!(longest <= 40, "{longest} instructions for an allowed x86_64 call");
    }

    #[test]
    fn without_a_pid_namespace_fr_cannot_be_signalled_by_its_pid() {
        const FR: u32 = 4321;
        let program = build(&bind(), &Options { shield: Some(FR), writes: false }).unwrap();
        for (arch, audit) in [(Arch::X86_64, 0xc000_003e), (Arch::I386, 0x4000_0003)] {
            for name in SIGNALLING {
                let nr = i32::from(ScmpSyscall::from_name_by_arch(name, arch.scmp()).unwrap());
                let at = |pid: u64| run(&program, audit, nr, [pid, 9, 0, 0, 0, 0]);
                assert_eq!(at(u64::from(FR)), ERRNO | libc::ESRCH as u32, "{name} of fr");
                assert_eq!(at(u64::from(FR) + 1), ALLOW, "{name} of another process");
                assert_eq!(at(0), ALLOW, "{name} of 0");
            }
        }
        let unshielded = build(&bind(), &Options::default()).unwrap();
        let kill = i32::from(ScmpSyscall::from_name("kill").unwrap());
        assert_eq!(run(&unshielded, 0xc000_003e, kill, [u64::from(FR), 9, 0, 0, 0, 0]), ALLOW);
    }

    #[test]
    fn opens_for_writing_are_notified_only_where_asked() {
        let openat = i32::from(ScmpSyscall::from_name("openat").unwrap());
        let flags =
            |program: &[SockFilter], f: u64| run(program, 0xc000_003e, openat, [0, 0, f, 0, 0, 0]);
        let plain = build(&bind(), &Options::default()).unwrap();
        let writes = build(&bind(), &Options { shield: None, writes: true }).unwrap();
        for f in [0o1, 0o2, 0o1000, 0o1 | 0o1000] {
            assert_eq!(flags(&plain, f), ALLOW, "{f:o} without writes");
            assert_eq!(flags(&writes, f), NOTIFY, "{f:o} with writes");
        }
        for program in [&plain, &writes] {
            assert_eq!(flags(program, 0), ALLOW, "O_RDONLY");
            assert_eq!(flags(program, 0o200_000), ALLOW, "O_DIRECTORY");
            assert_eq!(flags(program, 0o1_000_000), NOTIFY, "O_NOATIME");
            assert_eq!(flags(program, 0o100), NOTIFY, "O_CREAT");
        }
    }
}
