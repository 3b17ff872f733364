//! Every workload thread's fake credentials, keyed by its tid in the
//! supervisor's pid namespace (the raw set*id calls are per thread; glibc
//! makes them process-wide by repeating them in every thread).
//!
//! A thread fr has not seen yet gets the credentials of its thread-group
//! leader, or of its nearest ancestor process fr has seen, or real root's,
//! read from `/proc/<tid>/status` once.
//!
//! Hazards: a child that first shows itself after its parent changed ids
//! inherits the parent's new ids, not those it forked with; a process
//! whose parent died is inherited from its new parent. A tid is only
//! reused after `pid_max` more tasks, so records are not checked for reuse;
//! records of tasks that ended are swept when the table grows.

use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use fr_emulator::Creds;

/// How many ancestors are searched for a record.
const MAX_DEPTH: usize = 64;

#[derive(Debug)]
pub struct CredsTable {
    by_tid: DashMap<i32, Creds>,
    /// Credentials an `execve` will leave if it succeeds, with the marker
    /// of the program image it replaces (see [`exec_marker`]).
    pending: DashMap<i32, (Creds, Option<ExecMarker>)>,
    /// What a task fr has no ancestor record for starts as.
    root: Creds,
    /// The supervisor's own pid: the search for an ancestor stops there.
    supervisor: i32,
    sweep_at: AtomicUsize,
}

/// What changes when a thread's program image is replaced: the executable
/// (`/proc/<tid>/exe`) and the start of its stack (field 28 of
/// `/proc/<tid>/stat`, new at every exec while address space layout
/// randomisation is on, which tells a busybox applet executing busybox
/// again apart).
type ExecMarker = (u64, u64, u64);

fn exec_marker(tid: i32) -> Option<ExecMarker> {
    let exe = rustix::fs::statx(
        rustix::fs::CWD,
        format!("/proc/{tid}/exe"),
        rustix::fs::AtFlags::empty(),
        rustix::fs::StatxFlags::INO,
    )
    .ok()?;
    let stat = std::fs::read(format!("/proc/{tid}/stat")).ok()?;
    // The fields after the command name, which may hold any byte.
    let after_comm = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    let start_stack =
        std::str::from_utf8(after_comm).ok()?.split_whitespace().nth(25)?.parse().ok()?;
    let dev = (u64::from(exe.stx_dev_major) << 32) | u64::from(exe.stx_dev_minor);
    Some((dev, exe.stx_ino, start_stack))
}

/// `Tgid` and `PPid` of a task, from `/proc/<tid>/status`.
fn family(tid: i32) -> Option<(i32, i32)> {
    let status = crate::procfs::Status::read(tid)?;
    Some((status.last("Tgid:")?, status.last("PPid:")?))
}

impl CredsTable {
    /// `bounding` is the capability bounding set the workload inherits:
    /// real root started in the same place would have those capabilities.
    pub fn new(supervisor: i32, bounding: u64) -> Self {
        Self {
            by_tid: DashMap::new(),
            pending: DashMap::new(),
            root: Creds::root_bounded(bounding),
            supervisor,
            sweep_at: AtomicUsize::new(4096),
        }
    }

    /// The capability bounding set of the calling process (`CapBnd` in
    /// `/proc/self/status`); every capability if it cannot be read.
    pub fn own_bounding_set() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapBnd:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
            .unwrap_or(fr_emulator::creds::CAP_FULL)
    }

    /// The credentials of thread `tid`.
    pub fn get(&self, tid: i32) -> Creds {
        self.settle(tid);
        if let Some(c) = self.by_tid.get(&tid) {
            return c.clone();
        }
        let creds = self.inherited(tid);
        self.by_tid.insert(tid, creds.clone());
        self.sweep();
        creds
    }

    /// Changes `tid`'s credentials with `change` and returns what it returns.
    pub fn update<T>(&self, tid: i32, change: impl FnOnce(&mut Creds) -> T) -> T {
        self.settle(tid);
        if !self.by_tid.contains_key(&tid) {
            self.get(tid);
        }
        let mut entry = self.by_tid.entry(tid).or_insert_with(|| self.root.clone());
        change(&mut entry)
    }

    /// Notes what `tid`'s credentials become if the `execve` it is about
    /// to make succeeds; `leader` is its thread-group leader when that is
    /// another thread (after an exec the leader's tid carries on). The
    /// kernel then runs the exec, and the thread's next notification tells
    /// whether its program image changed (`settle`).
    pub fn exec_pending(&self, tid: i32, leader: Option<i32>, after: Creds) {
        let marker = exec_marker(tid);
        for t in std::iter::once(tid).chain(leader) {
            self.pending.insert(t, (after.clone(), marker));
        }
    }

    /// Commits or drops a pending exec of `tid`.
    fn settle(&self, tid: i32) {
        if self.pending.is_empty() {
            return;
        }
        if let Some((_, (after, before))) = self.pending.remove(&tid) {
            if exec_marker(tid) != before {
                self.by_tid.insert(tid, after);
            }
        }
    }

    fn inherited(&self, tid: i32) -> Creds {
        let mut task = tid;
        for _ in 0..MAX_DEPTH {
            let Some((tgid, ppid)) = family(task) else { break };
            let parent = if tgid != task { tgid } else { ppid };
            if parent <= 1 || parent == self.supervisor {
                break;
            }
            if let Some(c) = self.by_tid.get(&parent) {
                return c.clone();
            }
            task = parent;
        }
        self.root.clone()
    }

    /// Drops the records of tasks that have ended, when the table has grown.
    fn sweep(&self) {
        let at = self.sweep_at.load(Ordering::Relaxed);
        if self.by_tid.len() < at {
            return;
        }
        self.by_tid.retain(|tid, _| std::path::Path::new(&format!("/proc/{tid}")).exists());
        self.pending.retain(|tid, _| std::path::Path::new(&format!("/proc/{tid}")).exists());
        self.sweep_at.store((self.by_tid.len() * 2).max(4096), Ordering::Relaxed);
    }
}
