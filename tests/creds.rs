//! Fake credentials belong to a task, not to its number: a task that is
//! given a dead task's pid or tid starts with real root's credentials, not
//! with what the dead one had set.
//!
//! The workload runs in a pid namespace of its own in an image, while the
//! supervisor sees host pids: a workload cannot choose a host pid. So the
//! test makes fr and the workload share one pid namespace, as root of the
//! user namespace that owns it (`unshare -Urpf --mount-proc`, as the test
//! user), runs the workload on the host tree without a further namespace
//! (`--userns=none`), and lets the probe pick the next pid with
//! `/proc/sys/kernel/ns_last_pid`.

mod common;

use common::{cannot_run, harness, run, Harness, Run};

/// Runs `tests/probe/SOURCE` (built with `-pthread`) under fr without a
/// namespace of its own, fr and the probe in one new pid namespace whose
/// user namespace the test user owns; `None` if the test user cannot make
/// one.
fn in_shared_pid_namespace(h: &Harness, source: &str, name: &str) -> Option<Run> {
    let probe = h.compile(source, name, &["-pthread"])?;
    let ns = run(h.command("unshare").args(["-Urpf", "--mount-proc", "true"]));
    if ns.code != Some(0) {
        return cannot_run(format!(
            "the test user cannot make user and pid namespaces with unshare: {}",
            ns.stderr
        ));
    }
    Some(run(h
        .command("unshare")
        .current_dir(h.scratch(name))
        .args(["-Urpf", "--mount-proc"])
        .arg(&h.fr)
        .args(["exec", "-q", "--fakeroot", "--userns=none", "--"])
        .arg(&probe)))
}

#[test]
fn a_reused_pid_or_tid_does_not_inherit_the_dead_tasks_credentials() {
    let Some(h) = harness() else { return };
    let Some(out) = in_shared_pid_namespace(h, "tid_reuse.c", "tid-reuse") else { return };
    assert_eq!(out.stdout, "process: uid 0\nthread: uid 0\n", "{}", out.stderr);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

/// fr reaches a target's descriptors through a pidfd kept per thread: a
/// task given a dead task's number sees its own descriptor's file, not the
/// one the dead task gave to 7:7.
#[test]
fn a_reused_pid_or_tid_is_answered_for_its_own_descriptors() {
    let Some(h) = harness() else { return };
    let Some(out) = in_shared_pid_namespace(h, "fd_reuse.c", "fd-reuse") else { return };
    assert_eq!(out.stdout, "process: uid 0\nthread: uid 0\n", "{}", out.stderr);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

/// fr keeps a pidfd per thread it reached descriptors of: thousands of
/// short-lived processes (a build's) must not run fr, at the usual soft
/// limit of 1024 descriptors, out of them, which failed the workload's
/// next exec with "Too many open files".
#[test]
fn thousands_of_processes_do_not_run_fr_out_of_descriptors() {
    let Some(h) = harness() else { return };
    let Some(probe) = h.compile("many_processes.c", "many-processes", &[]) else { return };
    let probe = probe.to_str().expect("a UTF-8 path");
    let workload = format!("{probe} 3000 && cat /dev/null && echo ok");
    for mode in ["--userns=root-mapped", "--userns=none"] {
        let out = run(h
            .command("sh")
            .current_dir(h.scratch("many-processes"))
            .args(["-c", r#"ulimit -S -n 1024 && exec "$0" exec -q -f "$1" -- sh -c "$2""#])
            .arg(&h.fr)
            .args([mode, &workload]));
        assert_eq!(out.stdout, "0 of 3000 failed\nok\n", "{mode}: {}", out.stderr);
        assert_eq!(out.code, Some(0), "{mode}: {}", out.stderr);
    }
}

/// fr holds the unnamed files it made (`O_TMPFILE`) open while their
/// records stand: thousands of them, at a hard limit of 1024 descriptors
/// it cannot raise, must leave fr room for the workload's other calls
/// (here 300 processes' `fstat`, then an exec).
#[test]
fn thousands_of_unnamed_files_do_not_run_fr_out_of_descriptors() {
    let Some(h) = harness() else { return };
    let Some(tmp) = h.compile("tmpfiles.c", "tmpfiles", &[]) else { return };
    let Some(many) = h.compile("many_processes.c", "many-processes", &[]) else { return };
    let (tmp, many) = (tmp.to_str().expect("UTF-8"), many.to_str().expect("UTF-8"));
    let workload = format!("{tmp} . 3000 && {many} 300 && cat /dev/null && echo ok");
    let out = run(h
        .command("sh")
        .current_dir(h.scratch("tmpfiles"))
        .args([
            "-c",
            r#"ulimit -n 1024 && exec "$0" exec -q -f --userns=root-mapped -- sh -c "$1""#,
        ])
        .arg(&h.fr)
        .arg(&workload));
    assert_eq!(out.stdout, "0 of 3000 failed\n0 of 300 failed\nok\n", "{}", out.stderr);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}
