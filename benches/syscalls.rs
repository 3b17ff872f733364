//! Per-system-call cost natively, under fr in each mode, and under the
//! host's `fakeroot` when it is installed.
//!
//! Each operation runs in a dynamic (glibc) and a static build of the
//! program (`-static` rows): `fakeroot` cannot reach the static one.
//!
//! `benches/sysbench.c` makes N calls of one operation and prints the time
//! of its timed loop alone, so process start-up (fr's included) is not
//! measured; criterion drives N through `iter_custom`. Runs as the user in
//! `FR_BENCH_USER` (default `frtest`) when started as root, on tmpfs.
//!
//!     cargo bench --bench syscalls

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

const OPS: &[&str] = &[
    "getpid",
    "stat",
    "lstat",
    "fstat",
    "newfstatat",
    "statx",
    "chown",
    "fchown",
    "lchown",
    "mknod-fifo",
    "setxattr-user",
    "getuid",
    "open-close",
    "open-write-close",
];

struct Setup {
    /// The benchmark program, dynamic (glibc) and static builds.
    helpers: [(&'static str, PathBuf); 2],
    dir: PathBuf,
    user: Option<(u32, u32)>,
}

fn bench_user() -> Option<(u32, u32)> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let name = std::env::var("FR_BENCH_USER").unwrap_or_else(|_| "frtest".into());
    let out = Command::new("id").args(["-u", &name]).output().ok()?;
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let out = Command::new("id").args(["-g", &name]).output().ok()?;
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((uid, gid))
}

fn setup() -> Setup {
    let user = bench_user();
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench");
    std::fs::create_dir_all(&work).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/sysbench.c");
    let build = |name: &str, extra: &[&str]| {
        let out = work.join(name);
        let ok = Command::new("cc")
            .args(["-O2"])
            .args(extra)
            .arg("-o")
            .arg(&out)
            .arg(&src)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cc could not build {} {extra:?}", src.display());
        out
    };
    let dynamic = build("sysbench", &[]);
    let stat1c = build("sysbench-static", &["-static"]);
    // Readable by the bench user even if target/ is not: copy next to the data.
    let uid = user.map_or_else(|| rustix::process::getuid().as_raw(), |u| u.0);
    let dir = PathBuf::from(format!("/dev/shm/fr-bench-{uid}"));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (from, name) in [
        (dynamic.as_path(), "sysbench"),
        (stat1c.as_path(), "sysbench-static"),
        (Path::new(env!("CARGO_BIN_EXE_fr")), "fr"),
    ] {
        let to = bin.join(name);
        std::fs::copy(from, &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    if let Some((u, g)) = user {
        for p in [&dir, &bin, &data] {
            std::os::unix::fs::chown(p, Some(u), Some(g)).unwrap();
        }
    }
    let helpers = [("", bin.join("sysbench")), ("static", bin.join("sysbench-static"))];
    Setup { helpers, dir, user }
}

/// The ways one operation is run.
fn runners(s: &Setup) -> Vec<(&'static str, Vec<String>)> {
    let fr = s.dir.join("bin/fr").display().to_string();
    let exec = |extra: &[&str]| {
        let mut v = vec![fr.clone(), "exec".to_string(), "-f".to_string()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v.push("--".into());
        v
    };
    let mut r = vec![
        ("native", vec![]),
        ("fr-root-mapped", exec(&["--userns=root-mapped"])),
        ("fr-none", exec(&["--userns=none"])),
        // The floor of the design: every notified call answered with
        // CONTINUE, nothing emulated.
        ("fr-floor-continue", exec(&["--userns=root-mapped", "--bench-continue"])),
    ];
    // subuid mode, when the bench user has ranges (as `.ci/run` gives them).
    let subuid = exec(&["--userns=subuid"]);
    let mut probe = Command::new(&subuid[0]);
    probe.args(&subuid[1..]).arg("true");
    if let Some((u, g)) = s.user {
        probe.uid(u).gid(g);
    }
    if probe.output().is_ok_and(|o| o.status.success()) {
        r.insert(2, ("fr-subuid", subuid));
    }
    if Command::new("fakeroot").arg("true").status().is_ok_and(|s| s.success()) {
        r.push(("fakeroot", vec!["fakeroot".into(), "--".into()]));
    }
    r
}

fn run(s: &Setup, helper: &Path, prefix: &[String], op: &str, n: u64) -> Duration {
    let data = s.dir.join("data").display().to_string();
    let helper = helper.display().to_string();
    let mut argv: Vec<String> = prefix.to_vec();
    argv.extend([helper, op.into(), n.to_string(), data]);
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    if let Some((u, g)) = s.user {
        cmd.uid(u).gid(g);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{argv:?}: {}", String::from_utf8_lossy(&out.stderr));
    let ns: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    Duration::from_nanos(ns)
}

fn syscalls(c: &mut Criterion) {
    let s = setup();
    let runners = runners(&s);
    for op in OPS {
        let mut group = c.benchmark_group(*op);
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_millis(500));
        for (build, helper) in &s.helpers {
            for (name, prefix) in &runners {
                let id = match *build {
                    "" => name.to_string(),
                    build => format!("{name}-{build}"),
                };
                group.bench_function(BenchmarkId::from_parameter(id), |b| {
                    b.iter_custom(|iters| run(&s, helper, prefix, op, iters))
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, syscalls);
criterion_main!(benches);
