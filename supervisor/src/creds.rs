//! Every workload thread's fake credentials, keyed by its tid in the
//! supervisor's pid namespace (the raw set*id calls are per thread; glibc
//! makes them process-wide by repeating them in every thread), and bound
//! to the task itself, so that a record is never applied to another task
//! that reuses the number.
//!
//! A thread fr has not seen yet gets the credentials of its thread-group
//! leader, or of its nearest ancestor process fr has seen, or real root's,
//! read from `/proc/<tid>/status` once.
//!
//! # Tid reuse
//!
//! A record lives as long as its task, as the kernel's credentials do. At
//! first sight fr opens a pidfd for the task (`pidfd_open(2)`: a process
//! pidfd for a thread-group leader, a thread pidfd, `PIDFD_THREAD` (6.9),
//! for any other thread) and adds it to an epoll set. A pidfd is readable
//! once its thread has exited (a leader's: once its whole group has,
//! `kernel/pid.c`, `fs/pidfs.c: pidfd_poll()`). The kernel wakes the
//! pidfd's waiters in `exit_notify()` before it releases the task, and only
//! the release frees the number (`release_task()` -> `free_pid()`), which
//! a new task needs first. So when a notification arrives from tid N, a
//! task that held N before has already reported, and draining the epoll
//! set (timeout 0) before each lookup and forgetting what it reports is
//! exact. A thread that executes takes its leader's tid
//! (`fs/exec.c: de_thread()`): its thread pidfd reports, the leader's
//! process pidfd does not, and the pending exec of the leader's tid carries
//! the credentials over.
//!
//! Cost: one `epoll_wait` per lookup, as cheap as any system call
//! whatever the set's size (`docs/design.md`); at first sight
//! `pidfd_open`, `epoll_ctl` and one `poll`. Each tracked
//! thread holds a descriptor; at the descriptor limit fr raises its soft
//! limit to the hard one.
//!
//! Fallbacks, both exact: without `PIDFD_THREAD` (before 6.9) a thread
//! that is not a leader is watched through its `/proc/<tid>` directory,
//! opened at first sight; the directory pins the task's `struct pid`, so a
//! lookup in it fails once that task is gone, whoever has the number now
//! (`fs/proc/base.c: proc_pident_lookup()`). That costs one `faccessat`
//! per lookup of such a thread. With no descriptor to spare, the thread's
//! start time (field 22 of `/proc/<tid>/stat`) is kept and read back at
//! each lookup: a `/proc` read per call, and a number reused within one
//! clock tick would go unseen, so fr warns when it comes to that.
//!
//! Hazards: a child that first shows itself after its parent changed ids
//! inherits the parent's new ids, not those it forked with; a process
//! whose parent died is inherited from its new parent. An ancestor's
//! record is taken only while its watch says the ancestor lives, but the
//! ancestor is named by `/proc/<tid>/status` just before: had it died and
//! its number gone round to a recorded task in between (pid_max tasks in
//! those microseconds), the child would start from that task's ids.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use fr_emulator::Creds;
use rustix::event::epoll;
use rustix::fs::{Access, AtFlags, Mode, OFlags};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags};

use crate::request::Request;

/// How many ancestors are searched for a record.
const MAX_DEPTH: usize = 64;

/// `PIDFD_THREAD` from `<linux/pidfd.h>` (6.9): a pidfd for one thread,
/// readable when that thread exits.
const PIDFD_THREAD: u32 = libc::O_EXCL as u32;

#[derive(Debug)]
pub struct CredsTable {
    by_tid: DashMap<i32, Record>,
    /// The epoll set of the records' pidfds, made at first use (after the
    /// launcher's forks); `None` without one.
    watcher: OnceLock<Option<Watcher>>,
    /// Which watches the kernel offers; tests force the fallbacks.
    backend: Backend,
    /// What a task fr has no ancestor record for starts as.
    root: Creds,
    /// The supervisor's own pid: the search for an ancestor stops there.
    supervisor: i32,
    /// Tells a record apart from an earlier one of the same tid in the
    /// epoll set's reports.
    generation: AtomicU32,
    warned: AtomicBool,
    /// No task's credentials have changed yet: every task has `root`'s,
    /// so a lookup needs neither the epoll set nor a record. Cleared for
    /// good by the first change (or exec that would make one).
    untouched: AtomicBool,
}

/// What is known of one task.
#[derive(Debug)]
struct Record {
    creds: Creds,
    /// Credentials an `execve` will leave if it succeeds, with the marker
    /// of the program image it replaces (see [`exec_marker`]).
    pending: Option<(Creds, Option<ExecMarker>)>,
    watch: Watch,
    generation: u32,
}

/// How fr learns that a record's task has ended.
#[derive(Debug)]
enum Watch {
    /// A pidfd in the epoll set: drained before each lookup.
    Pidfd(OwnedFd),
    /// The task's `/proc/<tid>` directory: a lookup in it fails once the
    /// task is gone. Checked at each lookup.
    Proc(OwnedFd),
    /// The task's start time, compared at each lookup.
    Start(u64),
}

/// Which watches a [`CredsTable`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Pidfds, with `/proc` directories for threads when the kernel has no
    /// thread pidfds: what the kernel offers, probed at first use.
    Probe,
    /// `/proc/<tid>` directories for every thread.
    Proc,
    /// Start times for every thread.
    Start,
}

#[derive(Debug)]
struct Watcher {
    epoll: OwnedFd,
    thread_pidfds: bool,
}

/// What changes when a thread's program image is replaced: the executable
/// (`/proc/<tid>/exe`) and the start of its stack (field 28 of
/// `/proc/<tid>/stat`, new at every exec while address space layout
/// randomisation is on, which tells a busybox applet executing busybox
/// again apart).
type ExecMarker = (u64, u64, u64);

use crate::procfs::stat_field;

fn exec_marker(tid: i32) -> Option<ExecMarker> {
    let exe = rustix::fs::statx(
        rustix::fs::CWD,
        format!("/proc/{tid}/exe"),
        rustix::fs::AtFlags::empty(),
        rustix::fs::StatxFlags::INO,
    )
    .ok()?;
    let start_stack = stat_field(tid, 28)?;
    let dev = (u64::from(exe.stx_dev_major) << 32) | u64::from(exe.stx_dev_minor);
    Some((dev, exe.stx_ino, start_stack))
}

/// `Tgid` and `PPid` of a task, from `/proc/<tid>/status`.
fn family(tid: i32) -> Option<(i32, i32)> {
    let status = crate::procfs::Status::read(tid)?;
    Some((status.last("Tgid:")?, status.last("PPid:")?))
}

/// The epoll key of a record: its tid and generation.
fn key(tid: i32, generation: u32) -> u64 {
    (u64::from(tid as u32) << 32) | u64::from(generation)
}

fn pidfd_open(tid: i32, flags: u32) -> Result<OwnedFd, Errno> {
    let pid = Pid::from_raw(tid).ok_or(Errno::SRCH)?;
    rustix::process::pidfd_open(pid, PidfdFlags::from_bits_retain(flags))
}

impl Watch {
    /// Whether the task is still there, for the watches the epoll set does
    /// not cover.
    fn alive(&self, tid: i32) -> bool {
        match self {
            Watch::Pidfd(fd) => {
                let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
                let zero = rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 };
                rustix::event::poll(&mut fds, Some(&zero)).is_ok_and(|n| n == 0)
            }
            Watch::Proc(dir) => {
                rustix::fs::accessat(dir, "stat", Access::EXISTS, AtFlags::empty()).is_ok()
            }
            Watch::Start(start) => stat_field(tid, 22) == Some(*start),
        }
    }

    /// Whether [`Watch::alive`] must be asked at each lookup (the epoll
    /// set answers for pidfds).
    fn polled(&self) -> bool {
        !matches!(self, Watch::Pidfd(_))
    }
}

impl CredsTable {
    /// `bounding` is the capability bounding set the workload inherits:
    /// real root started in the same place would have those capabilities.
    pub fn new(supervisor: i32, bounding: u64) -> Self {
        Self::with_backend(supervisor, bounding, Backend::Probe)
    }

    /// A table that watches tasks with `backend` (tests force each fallback).
    pub fn with_backend(supervisor: i32, bounding: u64, backend: Backend) -> Self {
        Self {
            by_tid: DashMap::new(),
            watcher: OnceLock::new(),
            backend,
            root: Creds::root_bounded(bounding),
            supervisor,
            generation: AtomicU32::new(0),
            warned: AtomicBool::new(false),
            untouched: AtomicBool::new(true),
        }
    }

    /// The capability bounding set of the calling process (`CapBnd` in
    /// `/proc/self/status`); every capability if it cannot be read.
    pub fn own_bounding_set() -> u64 {
        crate::procfs::own_bounding_set().unwrap_or(fr_emulator::creds::CAP_FULL)
    }

    /// The epoll set, made and the kernel probed at first use. `None` if
    /// no epoll instance can be had: every watch is then a fallback.
    fn watcher(&self) -> Option<&Watcher> {
        if self.backend != Backend::Probe {
            return None;
        }
        let w = self.watcher.get_or_init(|| {
            let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
                .inspect_err(|e| log::warn!("creating the epoll set of workload threads: {e}"))
                .ok()?;
            // Any thread may be named with PIDFD_THREAD, a leader too.
            let own = rustix::process::getpid().as_raw_nonzero().get();
            let thread_pidfds = pidfd_open(own, PIDFD_THREAD).is_ok();
            Some(Watcher { epoll, thread_pidfds })
        });
        w.as_ref()
    }

    /// Forgets every record whose pidfd reports its task ended.
    fn drain(&self) {
        const BATCH: usize = 64;
        let Some(w) = self.watcher() else { return };
        let zero = rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 };
        // A reported pidfd stays ready until its record is dropped; one a
        // first sight has not recorded yet keeps being reported, behind the
        // others (`fs/eventpoll.c: ep_send_events()` puts a level-triggered
        // item back at the tail). So the rounds are bounded.
        for round in 1.. {
            let mut events = [std::mem::MaybeUninit::<epoll::Event>::uninit(); BATCH];
            let Ok((ready, _)) = epoll::wait(&w.epoll, &mut events, Some(&zero)) else { return };
            for event in ready.iter() {
                let k = event.data.u64();
                self.forget((k >> 32) as u32 as i32, k as u32);
            }
            if ready.len() < BATCH || round > self.by_tid.len() / BATCH + 1 {
                return;
            }
        }
    }

    /// Drops the record of `tid` if it is still the one of `generation`
    /// (closing its pidfd takes it out of the epoll set).
    fn forget(&self, tid: i32, generation: u32) {
        self.by_tid.remove_if(&tid, |_, r| r.generation == generation);
    }

    /// A watch on task `tid`, opened before anything is read about it.
    fn watch(&self, tid: i32, generation: u32) -> Result<Watch, Errno> {
        let mut raised = false;
        loop {
            match self.try_watch(tid, generation) {
                Err(Errno::MFILE) if !raised && crate::descriptors::raise_limit() => raised = true,
                Err(Errno::MFILE | Errno::NFILE) => {
                    if !self.warned.swap(true, Ordering::Relaxed) {
                        log::warn!(
                            "out of descriptors to watch workload threads (ulimit -n): \
                             their start times are read at each call instead"
                        );
                    }
                    return stat_field(tid, 22).map(Watch::Start).ok_or(Errno::SRCH);
                }
                other => return other,
            }
        }
    }

    fn try_watch(&self, tid: i32, generation: u32) -> Result<Watch, Errno> {
        if self.backend == Backend::Start {
            return stat_field(tid, 22).map(Watch::Start).ok_or(Errno::SRCH);
        }
        if let Some(w) = self.watcher() {
            // A plain pidfd only for a leader: EINVAL for another thread.
            let pidfd = match pidfd_open(tid, 0) {
                Err(Errno::INVAL) if w.thread_pidfds => pidfd_open(tid, PIDFD_THREAD),
                other => other,
            };
            match pidfd {
                Ok(fd) => {
                    let event = epoll::EventData::new_u64(key(tid, generation));
                    match epoll::add(&w.epoll, &fd, event, epoll::EventFlags::IN) {
                        Ok(()) => return Ok(Watch::Pidfd(fd)),
                        Err(e) => log::debug!("adding a pidfd to the epoll set: {e}"),
                    }
                }
                Err(e @ (Errno::MFILE | Errno::NFILE)) => return Err(e),
                // Another thread without PIDFD_THREAD, or no pidfds (5.3).
                Err(_) => {}
            }
        }
        let dir = rustix::fs::open(
            format!("/proc/{tid}"),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Watch::Proc(dir))
    }

    /// Whether `tid` has a record of its own task, after the epoll set was
    /// drained: a record with a polled watch whose task is gone goes now.
    fn recorded(&self, tid: i32) -> bool {
        let Some(r) = self.by_tid.get(&tid) else { return false };
        if !r.watch.polled() || r.watch.alive(tid) {
            return true;
        }
        let generation = r.generation;
        drop(r);
        self.forget(tid, generation);
        false
    }

    /// Records `tid` (a thread seen for the first time) and returns its
    /// credentials. The watch is opened before `/proc` is read and checked
    /// again under the map's lock before the record goes in, so that a
    /// record holds what was read of its own task, and a drain that saw
    /// the task end cannot miss the record.
    fn first_seen(&self, tid: i32) -> Creds {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let watch = self.watch(tid, generation);
        let creds = self.inherited(tid);
        let Ok(watch) = watch else { return creds };
        match self.by_tid.entry(tid) {
            Entry::Occupied(e) => e.get().creds.clone(),
            Entry::Vacant(v) => {
                if watch.alive(tid) {
                    v.insert(Record { creds: creds.clone(), pending: None, watch, generation });
                }
                creds
            }
        }
    }

    /// The credentials of thread `tid`.
    pub fn get(&self, tid: i32) -> Creds {
        if self.untouched.load(Ordering::Acquire) {
            return self.root.clone();
        }
        self.drain();
        if !self.recorded(tid) {
            return self.first_seen(tid);
        }
        self.settle(tid);
        match self.by_tid.get(&tid) {
            Some(r) => r.creds.clone(),
            None => self.first_seen(tid),
        }
    }

    /// Changes the calling thread's credentials with `change` and returns
    /// what it returns; `ENOENT` if the call no longer waits (its thread is
    /// gone, and the record of its tid may already be another task's).
    pub fn update<T>(
        &self,
        req: &Request<'_>,
        change: impl FnOnce(&mut Creds) -> T,
    ) -> Result<T, Errno> {
        self.update_with(req.tid, || req.check_valid(), change)
    }

    fn update_with<T>(
        &self,
        tid: i32,
        valid: impl Fn() -> Result<(), Errno>,
        change: impl FnOnce(&mut Creds) -> T,
    ) -> Result<T, Errno> {
        if self.untouched.load(Ordering::Acquire) {
            // The caller is root, as every task is so far. A change that
            // leaves it root (setgroups([0]), setuid(0)) keeps it so.
            let mut creds = self.root.clone();
            let out = change(&mut creds);
            if creds == self.root {
                return Ok(out);
            }
            // From now on tasks are told apart. Those seen so far were
            // root, as a task without a record of its own or an
            // ancestor's is.
            self.untouched.store(false, Ordering::Release);
            self.get(tid);
            let mut r = self.by_tid.get_mut(&tid).ok_or(Errno::NOENT)?;
            valid()?;
            r.creds = creds;
            return Ok(out);
        }
        self.get(tid);
        let mut r = self.by_tid.get_mut(&tid).ok_or(Errno::NOENT)?;
        // Under the record's lock: while the call waits, its thread holds
        // the tid and the record (drained before) is its own.
        valid()?;
        Ok(change(&mut r.creds))
    }

    /// Notes what the calling thread's credentials become if the `execve`
    /// it is about to make succeeds; `leader` is its thread-group leader
    /// when that is another thread (after an exec the leader's tid carries
    /// on). The kernel then runs the exec, and the thread's next
    /// notification tells whether its program image changed (`settle`).
    pub fn exec_pending(
        &self,
        req: &Request<'_>,
        leader: Option<i32>,
        after: Creds,
    ) -> Result<(), Errno> {
        self.exec_pending_with(req.tid, || req.check_valid(), leader, after)
    }

    fn exec_pending_with(
        &self,
        tid: i32,
        valid: impl Fn() -> Result<(), Errno>,
        leader: Option<i32>,
        after: Creds,
    ) -> Result<(), Errno> {
        if after == self.root && self.untouched.load(Ordering::Acquire) {
            // Root stays root: nothing to note.
            return Ok(());
        }
        self.untouched.store(false, Ordering::Release);
        let marker = exec_marker(tid);
        for t in std::iter::once(tid).chain(leader) {
            self.get(t);
            let mut r = self.by_tid.get_mut(&t).ok_or(Errno::NOENT)?;
            // While the caller waits, its group and so its leader's tid
            // are the same.
            valid()?;
            r.pending = Some((after.clone(), marker));
        }
        Ok(())
    }

    /// Commits or drops a pending exec of `tid`.
    fn settle(&self, tid: i32) {
        if self.by_tid.get(&tid).is_none_or(|r| r.pending.is_none()) {
            return;
        }
        if let Some(mut r) = self.by_tid.get_mut(&tid) {
            if let Some((after, before)) = r.pending.take() {
                if exec_marker(tid) != before {
                    r.creds = after;
                }
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
            if let Some(c) = self.by_tid.get(&parent).filter(|r| r.watch.alive(parent)) {
                return c.creds.clone();
            }
            task = parent;
        }
        self.root.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gettid() -> i32 {
        rustix::thread::gettid().as_raw_nonzero().get()
    }

    fn table(backend: Backend) -> CredsTable {
        CredsTable::with_backend(rustix::process::getpid().as_raw_nonzero().get(), !0, backend)
    }

    /// A thread's changed credentials stay with it, and its record goes
    /// when it ends, with every watch: the next task given its tid starts
    /// afresh.
    #[test]
    fn a_record_lives_as_long_as_its_thread() {
        for backend in [Backend::Probe, Backend::Proc, Backend::Start] {
            let owned = table(backend);
            let t = &owned;
            let tid = std::thread::scope(|s| {
                let (tx, rx) = std::sync::mpsc::channel();
                let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
                s.spawn(move || {
                    let tid = gettid();
                    t.update_with(tid, || Ok(()), |c| c.setuid(1000)).unwrap().unwrap();
                    tx.send(tid).unwrap();
                    let _ = done_rx.recv();
                });
                let tid = rx.recv().unwrap();
                assert_eq!(t.get(tid).ruid, 1000, "{backend:?}");
                assert_eq!(t.by_tid.len(), 1);
                drop(done_tx);
                tid
            });
            // pthread_join returns when the thread has cleared its tid,
            // before the kernel is done with it (`kernel/exit.c: do_exit()`
            // calls exit_mm() before exit_notify()): wait until it is gone.
            let task = format!("/proc/self/task/{tid}");
            while std::path::Path::new(&task).exists() {
                std::thread::yield_now();
            }
            t.drain();
            assert!(!t.recorded(tid), "{backend:?}: the ended thread's record is left");
            assert_eq!(t.by_tid.len(), 0, "{backend:?}");
        }
    }

    /// Until a task's credentials differ from root's, lookups need no
    /// record (and no epoll set); the first real change makes one, and
    /// from then on tasks are told apart.
    #[test]
    fn lookups_are_records_only_once_a_task_is_no_longer_root() {
        let t = table(Backend::Probe);
        let tid = gettid();
        t.update_with(tid, || Ok(()), |c| c.setgroups(vec![0])).unwrap().unwrap();
        t.update_with(tid, || Ok(()), |c| c.setuid(0)).unwrap().unwrap();
        t.exec_pending_with(tid, || Ok(()), None, t.root.clone()).unwrap();
        assert!(t.untouched.load(Ordering::Acquire), "root's own changes keep the fast path");
        assert_eq!(t.get(tid), t.root);
        assert_eq!(t.by_tid.len(), 0);
        t.update_with(tid, || Ok(()), |c| c.setresuid(1000, 1000, 0)).unwrap().unwrap();
        assert!(!t.untouched.load(Ordering::Acquire));
        assert_eq!(t.get(tid).euid, 1000);
        assert_eq!(t.by_tid.len(), 1);
        // A refused change on the fast path changes nothing.
        let fresh = table(Backend::Probe);
        assert!(fresh.update_with(tid, || Ok(()), |c| c.setuid(u32::MAX)).unwrap().is_err());
        assert!(fresh.untouched.load(Ordering::Acquire));
    }

    /// A call that no longer waits changes nothing.
    #[test]
    fn a_call_that_no_longer_waits_changes_nothing() {
        let t = table(Backend::Probe);
        let tid = gettid();
        assert_eq!(t.update_with(tid, || Err(Errno::NOENT), |c| c.setuid(7)), Err(Errno::NOENT));
        assert_eq!(t.get(tid).ruid, 0);
    }
}
