//! Programs whatever their runtime or system call ABI, as the README
//! promises: no libc wrapper is needed for fr to see their calls. Each
//! runs once as real root in a chroot of a root-owned copy of the rootfs
//! (the oracle) and once under `fr exec -f` as the test user, in each
//! mode an image can run in here; the outputs must be identical, and real
//! root's must hold the values known for those calls.
//!
//! - Debian's i386 busybox-static (i386 system call numbers, `stat64`,
//!   `chown32`).

mod common;

use std::path::Path;
use std::process::Command;

use common::{cannot_run, harness, install, is_root, subuid_ready, Harness};

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

/// Runs `cmd` as real root in a chroot of a root-owned copy of `rootfs`,
/// then under fr in each mode; returns real root's output once every
/// mode's equals it.
fn same_as_real_root(h: &Harness, rootfs: &Path, cmd: &[&str]) -> String {
    let oracle = h.oracle_copy(rootfs);
    let root = Command::new("chroot").arg(&oracle).args(cmd).output().unwrap();
    let want = String::from_utf8_lossy(&root.stdout).into_owned();
    assert!(
        root.status.success(),
        "{cmd:?} failed as real root:\n{want}{}",
        String::from_utf8_lossy(&root.stderr)
    );
    for mode in modes(h) {
        let fr = h.exec(Some(rootfs), &["-q", "--fakeroot", mode], cmd);
        assert_eq!(fr.code, Some(0), "{cmd:?} failed under fr {mode}:\n{}", fr.stderr);
        assert_eq!(fr.stdout, want, "{cmd:?} under fr {mode} (left) and as real root (right)");
    }
    want
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
    let Some(rootfs) = h.rootfs() else { return };
    install(h, &bb32, &rootfs.join("bin"), "busybox32");
    let script = "B=/bin/busybox32; mkdir /w && cd /w && $B touch f && $B mkdir d && \
        $B ln -s f l && $B chown 123:456 f && $B chgrp 70000 d && $B chown -h 7:8 l && \
        $B chmod 4755 f && $B chown 9 f && $B mknod c c 1 3 && $B chown 5:6 c && \
        $B stat -c '%u:%g %a %F %t:%T %n' f d l c && \
        $B ls -lnd f d l c | $B awk '{print $1, $3, $4, $NF}' && $B find . -user 9 && \
        cd / && $B rm -r /w";
    let root = same_as_real_root(h, &rootfs, &["/bin/sh", "-c", script]);
    assert_eq!(
        root,
        "9:456 755 regular empty file 0:0 f\n0:70000 755 directory 0:0 d\n\
         7:8 777 symbolic link 0:0 l\n5:6 644 character special file 1:3 c\n\
         crw-r--r-- 5 6 c\ndrwxr-xr-x 0 70000 d\n-rwxr-xr-x 9 456 f\n\
         lrwxrwxrwx 7 8 f\n./f\n"
    );
}
