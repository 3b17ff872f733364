//! A real Debian rootfs (minbase bookworm from mmdebstrap), packages
//! installed by dpkg and apt under `fr exec --fakeroot`, compared with what
//! real root leaves in a chroot of the same rootfs. The packages add system
//! users and chown to them (dbus), ship set-id programs (sudo, passwd),
//! use dpkg-statoverride (dbus) and set file capabilities (iputils-ping with
//! libcap2-bin's setcap).

mod common;

use std::path::{Path, PathBuf};

use common::{as_root, cannot_run, harness, is_root, Harness};

const ENV: &str =
    "/usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive";

/// Shell that unpacks the fixture into `R` with owners, installs a
/// `policy-rc.d` (no services start in a chroot) and copies the packages.
fn unpack(fixture: &Path) -> String {
    format!(
        "mkdir R && tar -C R --same-owner --xattrs --xattrs-include='*' -xpf {f}/base.tar && \
         cp -r {f}/debs R/debs && printf '#!/bin/sh\\nexit 101\\n' > R/usr/sbin/policy-rc.d && \
         chmod 755 R/usr/sbin/policy-rc.d",
        f = fixture.display()
    )
}

fn manifest_tool() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/manifest.py")
}

/// Runs `script` in `dir` under `fr exec --fakeroot` and returns its stdout.
fn under_fr(h: &Harness, dir: &Path, script: &str) -> String {
    let run = h.exec_in(dir, None, &["--fakeroot"], &["sh", "-ec", script]);
    assert_eq!(run.code, Some(0), "under fr: {script}\n{}", run.stderr);
    run.stdout
}

fn setup() -> Option<(&'static Harness, PathBuf)> {
    let h = harness()?;
    if !is_root() {
        return cannot_run("the Debian tests compare with real root: run the suite as root");
    }
    let fixture = common::debian(h)?;
    Some((h, fixture))
}

fn first_difference(a: &str, b: &str) -> String {
    a.lines()
        .zip(b.lines())
        .filter(|(x, y)| x != y)
        .take(10)
        .map(|(x, y)| format!("real root: {x}\nfr:        {y}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn dpkg_leaves_the_tree_real_root_leaves() {
    let Some((h, fixture)) = setup() else { return };
    let install = format!(
        "{unpack} && chroot R {ENV} dpkg -i $(cd R && ls debs/*.deb | sed s,^,/,) >dpkg.log 2>&1 && \
         rm -r R/debs && python3 {tool} R /proc /sys",
        unpack = unpack(&fixture),
        tool = manifest_tool().display()
    );
    let root_dir = h.scratch("debian-oracle");
    let oracle = as_root(&root_dir, &install);
    let fr_dir = h.scratch("debian-fr");
    let fr = under_fr(h, &fr_dir, &install);
    for want in [
        "/usr/bin/sudo reg 4755 0:0",
        "/usr/bin/ping reg 0755 0:0 - security.capability=",
        "/etc/shadow reg 0640 0:42",
    ] {
        assert!(oracle.contains(want), "the oracle lacks {want:?}: the fixture changed?");
    }
    assert_eq!(oracle.lines().count(), fr.lines().count(), "{}", first_difference(&oracle, &fr));
    assert!(oracle == fr, "manifests differ:\n{}", first_difference(&oracle, &fr));
}

#[test]
fn apt_installs_local_packages_with_its_own_sandbox_user() {
    let Some((h, fixture)) = setup() else { return };
    let dir = h.scratch("debian-apt");
    let script = format!(
        "{unpack} && chroot R {ENV} apt-get install -y $(cd R && ls debs/*.deb | sed s,^,/,) >apt.log 2>&1; \
         echo apt=$?; grep -c 'unsandboxed\\|Sandbox' apt.log || true; chroot R dpkg-query -W -f '${{Status}}\\n' sudo dbus",
        unpack = unpack(&fixture)
    );
    let out = under_fr(h, &dir, &script);
    assert_eq!(out, "apt=0\n0\ninstall ok installed\ninstall ok installed\n", "{out}");
}

#[test]
fn users_made_by_useradd_and_setpriv_own_what_they_make_as_for_real_root() {
    let Some((h, fixture)) = setup() else { return };
    let script = format!(
        "{unpack} && chroot R {ENV} dpkg -i $(cd R && ls debs/*.deb | sed s,^,/,) >dpkg.log 2>&1 && chroot R {ENV} sh -c '\
           setpriv --reuid=man --regid=man --init-groups touch /var/cache/man/x; stat -c %U:%G /var/cache/man/x; \
           setpriv --reuid=man --regid=man --init-groups touch /var/cache/x 2>/dev/null || echo refused; \
           useradd -m bob; stat -c %U:%G /home/bob /home/bob/.bashrc; \
           setpriv --reuid=bob --regid=bob --init-groups sh -c \"mkdir /home/bob/d && id -un\"; stat -c %U:%G /home/bob/d; \
           su -s /bin/sh -c \"id; touch /tmp/su; stat -c %U:%G /tmp/su\" man; \
           runuser -u bob -- sh -c \"id; touch /home/bob/r; stat -c %U:%G /home/bob/r\"'",
        unpack = unpack(&fixture)
    );
    let oracle = as_root(&h.scratch("users-oracle"), &script);
    let fr = under_fr(h, &h.scratch("users-fr"), &script);
    assert!(
        oracle.starts_with("man:man\nrefused\nbob:bob\nbob:bob\nbob\nbob:bob\nuid=6(man)"),
        "the oracle changed? {oracle}"
    );
    assert!(
        oracle.ends_with("man:man\nuid=1000(bob) gid=1000(bob) groups=1000(bob)\nbob:bob\n"),
        "{oracle}"
    );
    assert_eq!(fr, oracle);
}
