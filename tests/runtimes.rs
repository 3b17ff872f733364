//! Programs whatever their runtime or system call ABI, as the README
//! promises: no libc wrapper is needed for fr to see their calls. Each
//! runs once as real root in a chroot of a root-owned copy of the rootfs
//! (the oracle) and once under `fr exec -f` as the test user, in each
//! mode an image can run in here; the outputs must be identical, and real
//! root's must hold the values known for those calls.
//!
//! - Debian's i386 busybox-static (i386 system call numbers, `chown32`,
//!   i386's `statx`);
//! - `tests/probe/runtime.c` built with musl (`musl-gcc -static`: musl's
//!   own wrappers, `chown` and `lchown` as such, `newfstatat`);
//! - `tests/probe/runtime.go`, the same calls by Go's `syscall` package
//!   (`CGO_ENABLED=0`: no libc, `fchownat`, `mknodat`, a threaded
//!   runtime);
//! - `runtime.c` built for x32 (`gcc -mx32 -static`), where the kernel
//!   has that ABI. A kernel built without `CONFIG_X86_X32_ABI` has none:
//!   the test then shows that the kernel refuses x32 system calls
//!   (`ENOSYS`) and x32 programs (`ENOEXEC`), and that its configuration
//!   says so where `/proc/config.gz` shows it, and passes as not
//!   applicable, even under CI. A kernel built with x32 but booted with
//!   it off (Debian's: `syscall.x32=y` turns it on) fails the test.

mod common;

use std::path::Path;
use std::process::Command;

use common::{cannot_run, harness, install, is_root, not_applicable, subuid_ready, Harness};

/// The modes an image session can run in here.
fn modes(h: &Harness) -> Vec<&'static str> {
    let mut modes = vec!["--userns=root-mapped"];
    if subuid_ready(h) {
        modes.push("--userns=subuid");
    } else {
        cannot_run::<()>("subuid mode needs the test user's ranges and setuid newuidmap");
    }
    modes
}

/// Runs `cmd` as real root in a chroot of a root-owned copy of a fresh
/// rootfs, then under fr on another fresh rootfs in each mode (`prepare`
/// puts the program in each); returns real root's output once every
/// mode's equals it.
fn same_as_real_root(h: &Harness, prepare: impl Fn(&Path), cmd: &[&str]) -> Option<String> {
    let rootfs = h.rootfs()?;
    prepare(&rootfs);
    let oracle = h.oracle_copy(&rootfs);
    let root = Command::new("chroot").arg(&oracle).args(cmd).output().unwrap();
    let want = String::from_utf8_lossy(&root.stdout).into_owned();
    assert!(
        root.status.success(),
        "{cmd:?} failed as real root:\n{want}{}",
        String::from_utf8_lossy(&root.stderr)
    );
    for mode in modes(h) {
        let rootfs = h.rootfs()?;
        prepare(&rootfs);
        let fr = h.exec(Some(&rootfs), &["-q", "--fakeroot", mode], cmd);
        assert_eq!(fr.code, Some(0), "{cmd:?} failed under fr {mode}:\n{}", fr.stderr);
        assert_eq!(fr.stdout, want, "{cmd:?} under fr {mode} (left) and as real root (right)");
    }
    Some(want)
}

/// Debian's i386 busybox-static, a real 32-bit static program: its chown,
/// chgrp, mknod, stat, ls and find see what they see as real root.
#[test]
fn i386_busybox_sees_what_real_root_sees() {
    let Some(h) = harness() else { return };
    if !is_root() {
        cannot_run::<()>("real root is this test's oracle: run the suite as root");
        return;
    }
    let Some(bb32) = h.busybox_i386() else { return };
    let file = Command::new("file").arg("-L").arg(&bb32).output().unwrap();
    let text = String::from_utf8_lossy(&file.stdout);
    assert!(text.contains("ELF 32-bit") && text.contains("Intel 80386"), "{text}");
    let script = "B=/bin/busybox32; mkdir /w && cd /w && $B touch f && $B mkdir d && \
        $B ln -s f l && $B chown 123:456 f && $B chgrp 70000 d && $B chown -h 7:8 l && \
        $B chmod 4755 f && $B chown 9 f && $B mknod c c 1 3 && $B chown 5:6 c && \
        $B stat -c '%u:%g %a %F %t:%T %n' f d l c && \
        $B ls -lnd f d l c | $B awk '{print $1, $3, $4, $NF}' && $B find . -user 9 && \
        cd / && $B rm -r /w";
    let put = |rootfs: &Path| drop(install(h, &bb32, &rootfs.join("bin"), "busybox32"));
    let Some(root) = same_as_real_root(h, put, &["/bin/sh", "-c", script]) else { return };
    assert_eq!(
        root,
        "9:456 755 regular empty file 0:0 f\n0:70000 755 directory 0:0 d\n\
         7:8 777 symbolic link 0:0 l\n5:6 644 character special file 1:3 c\n\
         crw-r--r-- 5 6 c\ndrwxr-xr-x 0 70000 d\n-rwxr-xr-x 9 456 f\n\
         lrwxrwxrwx 7 8 f\n./f\n"
    );
}

/// What real root sees running `tests/probe/runtime.c` or `runtime.go`
/// (each line: a call and its result, or a stat of what it left).
const RUNTIME: &str = "\
ids 0 0 0 0
open f = 0
chown f 123 456 = 0
stat f 123:456 100644 nlink 1 rdev 0:0
symlink f l = 0
lchown l 7 8 = 0
lstat l 7:8 120777 nlink 1 rdev 0:0
stat l 123:456 100644 nlink 1 rdev 0:0
fchown f 9 -1 = 0
fstat f 9:456 100644 nlink 1 rdev 0:0
chmod f 4755 = 0
chown f 10 -1 = 0
stat f 10:456 100755 nlink 1 rdev 0:0
chown f 70000 70000 = 0
stat f 70000:70000 100755 nlink 1 rdev 0:0
fchownat f \"\" 11 12 AT_EMPTY_PATH = 0
fstat f 11:12 100755 nlink 1 rdev 0:0
link f h = 0
stat h 11:12 100755 nlink 2 rdev 0:0
mknod c char 1:3 = 0
stat c 0:0 20640 nlink 1 rdev 1:3
chown c 5 6 = 0
statx c 5:6 20640 rdev 1:3
mknod b block 8:1 = 0
stat b 0:0 60600 nlink 1 rdev 8:1
mknod p fifo = 0
stat p 0:0 10644 nlink 1 rdev 0:0
mknod s socket = 0
stat s 0:0 140644 nlink 1 rdev 0:0
mknod c again = -1 errno 17
chown missing 1 1 = -1 errno 2
mkdir d 0700 = 0
chown d 1000 1000 = 0
stat d 1000:1000 40700 nlink 2 rdev 0:0
statx d 1000:1000 40700 rdev 0:0
== end
";

/// `program`, installed as `/runtime` in a fresh rootfs, sees under fr
/// what it sees as real root, and real root sees [`RUNTIME`].
fn runtime_sees_what_real_root_sees(h: &Harness, program: &Path) {
    let put = |rootfs: &Path| drop(install(h, program, rootfs, "runtime"));
    let Some(root) = same_as_real_root(h, put, &["/runtime", "/w"]) else { return };
    assert_eq!(root, RUNTIME, "real root's answers (left) are not the known ones");
}

/// `file`'s description of `program`.
fn file_type(program: &Path) -> String {
    let out = Command::new("file").arg(program).output().expect("running file");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn musl_static_program_sees_what_real_root_sees() {
    let Some(h) = harness() else { return };
    if !is_root() {
        cannot_run::<()>("real root is this test's oracle: run the suite as root");
        return;
    }
    let Some(program) = h.compile_with("musl-gcc", "runtime.c", "runtime-musl", &["-static"])
    else {
        return;
    };
    let kind = file_type(&program);
    assert!(kind.contains("x86-64") && kind.contains("statically linked"), "{kind}");
    runtime_sees_what_real_root_sees(h, &program);
}

#[test]
fn go_program_sees_what_real_root_sees() {
    let Some(h) = harness() else { return };
    if !is_root() {
        cannot_run::<()>("real root is this test's oracle: run the suite as root");
        return;
    }
    let Some(program) = h.go_build("runtime.go", "runtime-go") else { return };
    let kind = file_type(&program);
    assert!(kind.contains("statically linked") && kind.contains("Go BuildID"), "{kind}");
    runtime_sees_what_real_root_sees(h, &program);
}

#[test]
fn x32_program_sees_what_real_root_sees() {
    let Some(h) = harness() else { return };
    if !is_root() {
        cannot_run::<()>("real root is this test's oracle: run the suite as root");
        return;
    }
    let Some(program) = h.compile("runtime.c", "runtime-x32", &["-mx32", "-static"]) else {
        return;
    };
    let kind = file_type(&program);
    assert!(kind.contains("ELF 32-bit") && kind.contains("x86-64"), "not x32: {kind}");
    let Some(abi) = h.compile("x32_abi.c", "x32-abi", &[]) else { return };
    let kernel = common::run(&mut Command::new(&abi));
    assert_eq!(kernel.code, Some(0), "{kernel:?}");
    if kernel.stdout != "x32 yes\n" {
        // The evidence that the kernel has no x32 ABI, not that this
        // host could not run the test: x32 system calls fail with ENOSYS,
        // real root cannot exec the program (ENOEXEC), and the kernel's
        // configuration, where it shows it, agrees.
        assert_eq!(kernel.stdout, "x32 no (Function not implemented)\n");
        let dir = h.scratch("x32");
        let exec = Command::new(&program).arg(dir.join("w")).output();
        let refused = exec.as_ref().err().and_then(|e| e.raw_os_error());
        assert_eq!(refused, Some(8), "real root's exec of the x32 program: {exec:?}");
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let config = Command::new("zcat")
            .arg("/proc/config.gz")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .or_else(|| std::fs::read_to_string(format!("/boot/config-{}", release.trim())).ok())
            .unwrap_or_default();
        // CONFIG_X86_X32 before Linux 5.18.
        let said: Vec<&str> = config
            .lines()
            .filter(|l| l.contains("CONFIG_X86_X32") && !l.contains("DISABLED"))
            .collect();
        assert!(
            !said.iter().any(|l| l.ends_with("=y")),
            "the kernel is built with x32 but refuses it ({said:?}): boot it with syscall.x32=y"
        );
        not_applicable(format!(
            "the running kernel has no x32 ABI: x32 system calls fail with ENOSYS, execve of an \
             x32 program with ENOEXEC; its configuration: {}",
            if said.is_empty() { "not shown".to_string() } else { said.join(", ") }
        ));
        return;
    }
    runtime_sees_what_real_root_sees(h, &program);
}
