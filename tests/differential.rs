//! The differential test: the probe (tests/probe/probe.c) makes one system
//! call per step and prints return value, errno and stat fields. It runs
//! once as real root in a chroot of a root-owned copy of the rootfs and once
//! under `fr exec --fakeroot` as the unprivileged user; the outputs must be
//! identical. Real root is the oracle, so this needs the suite to run as
//! root (CI does).

mod common;

use std::process::Command;

use common::{cannot_run, harness, install, is_root};

fn differential(name: &str, cc_flags: &[&str]) {
    differential_with(name, cc_flags, false)
}

fn differential_with(name: &str, cc_flags: &[&str], dynamic: bool) {
    let Some(h) = harness() else { return };
    if !is_root() {
        cannot_run::<()>(
            "the differential test needs real root as its oracle: run the suite as root",
        );
        return;
    }
    let Some(probe) = h.probe(name, cc_flags) else {
        return;
    };
    let Some(rootfs) = h.rootfs() else { return };
    if dynamic {
        common::install_dynamic(h, &probe, &rootfs, "probe");
    } else {
        install(h, &probe, &rootfs, "probe");
    }
    let oracle = h.oracle_copy(&rootfs);

    let root =
        Command::new("chroot").arg(&oracle).args(["/probe", "/probe-work"]).output().unwrap();
    let root_out = String::from_utf8_lossy(&root.stdout).into_owned();
    assert!(
        root.status.success(),
        "the probe failed as real root: {}",
        String::from_utf8_lossy(&root.stderr)
    );
    assert!(root_out.ends_with("== end\n"), "the probe stopped early as real root:\n{root_out}");

    let fr = h.exec(Some(&rootfs), &["--fakeroot"], &["/probe", "/probe-work"]);
    assert_eq!(fr.code, Some(0), "the probe failed under fr: {}", fr.stderr);
    if fr.stdout != root_out {
        let diff: Vec<String> = root_out
            .lines()
            .zip(fr.stdout.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(20)
            .map(|(n, (a, b))| format!("line {}:\n  root: {a}\n  fr:   {b}", n + 1))
            .collect();
        panic!(
            "{name}: fr differs from real root ({} vs {} lines):\n{}",
            root_out.lines().count(),
            fr.stdout.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn static_x86_64_probe_sees_what_real_root_sees() {
    differential("probe-x86_64-static", &["-static"]);
}

#[test]
fn dynamic_x86_64_probe_sees_what_real_root_sees() {
    differential_with("probe-x86_64-dynamic", &[], true);
}

#[test]
fn static_i386_probe_sees_what_real_root_sees() {
    differential("probe-i386-static", &["-m32", "-static"]);
}

/// Debian's i386 busybox-static, a real 32-bit static program, gives the
/// same answers as the native one.
#[test]
fn i386_busybox_chowns_and_stats_like_the_native_one() {
    let Some(h) = harness() else { return };
    let Some(bb32) = h.busybox_i386() else { return };
    let Some(rootfs) = h.rootfs() else { return };
    install(h, &bb32, &rootfs.join("bin"), "busybox32");
    let script = |bb: &str| {
        format!(
            "mkdir /w && cd /w && {bb} touch f && {bb} mkdir d && {bb} ln -s f l && {bb} chown 123:456 f && \
             {bb} chgrp 70000 d && {bb} chown -h 7:8 l && {bb} chmod 4755 f && {bb} chown 9 f && \
             {bb} stat -c '%u:%g %a %F %n' f d l && {bb} ls -ln f d l && {bb} find . -user 9 && cd / && rm -r /w"
        )
    };
    let native = h.exec(Some(&rootfs), &["--fakeroot"], &["sh", "-c", &script("busybox")]).ok();
    let i386 =
        h.exec(Some(&rootfs), &["--fakeroot"], &["sh", "-c", &script("/bin/busybox32")]).ok();
    assert!(native.contains("9:456 755 regular empty file f"), "{native}");
    assert!(native.contains("0:70000 755 directory d"), "{native}");
    assert_eq!(i386, native);
    // The 32-bit binary really is one.
    let file = Command::new("file").arg(&bb32).output();
    if let Ok(file) = file {
        let text = String::from_utf8_lossy(&file.stdout);
        assert!(text.contains("32-bit") || text.is_empty(), "{text}");
    }
}
