//! The notification loop: a pool of workers, each receiving from the one
//! listener, dispatching through the table and sending exactly one reply.
//!
//! One worker serves by default. A notification costs a context switch to
//! the worker and one back (`seccomp_unotify(2)`); with one worker, the
//! same thread wakes every time, on the CPU the target just left when the
//! listener asks for synchronous wake-ups. Several workers take turns in
//! the kernel's queue, and a turn often wakes a thread whose CPU is asleep:
//! on a two-CPU guest the bare round trip measured 8.5 µs with one worker
//! and 17 µs with two (`docs/benchmarks.md`).
//!
//! A worker can be held up by the workload itself: a handler's file system
//! call on a FUSE mount whose server runs under fr waits for that server's
//! own notified calls. So a watcher looks every [`STUCK`]; when every
//! worker has been on one notification that long, it starts another, up to
//! [`MAX_WORKERS`]. Workers never stop before the listener does.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::io::Errno;

use crate::arch::Arch;
use crate::handlers::{Context, Outcome, Reply};
use crate::request::Request;
use crate::sys;
use crate::table::Dispatch;

/// What the workers share.
#[derive(Debug)]
pub struct Shared {
    pub dispatch: Dispatch,
    pub ctx: Context,
    /// The workload threads' pidfds, for duplicating their descriptors.
    pub descriptors: crate::descriptors::Descriptors,
    /// Benchmarks only: every call continues untouched.
    pub continue_all: bool,
}

/// How long every worker must have been on one notification before the
/// watcher starts another.
pub const STUCK: Duration = Duration::from_millis(50);

/// The most workers the watcher lets there be.
pub const MAX_WORKERS: usize = 16;

/// The workers, as the watcher sees them.
struct Pool {
    shared: Arc<Shared>,
    listener: OwnedFd,
    workers: Mutex<Vec<Arc<Progress>>>,
    /// Set by the first worker that stops: the listener is gone.
    stopped: AtomicBool,
}

/// How far one worker is: notifications received and answered.
#[derive(Default)]
struct Progress {
    received: AtomicU64,
    answered: AtomicU64,
}

impl Progress {
    /// The count of the notification the worker is on, if it is on one.
    fn on(&self) -> Option<u64> {
        let received = self.received.load(Ordering::Relaxed);
        (received != self.answered.load(Ordering::Relaxed)).then_some(received)
    }
}

/// Starts `workers` threads serving `listener` (at least one), and the
/// watcher that adds more when all are held up. They end when the
/// listener reports an error other than a vanished target, or with the
/// process. Fails only if not one worker could be started.
pub fn serve(shared: Arc<Shared>, listener: OwnedFd, workers: usize) -> std::io::Result<()> {
    let pool = Arc::new(Pool {
        shared,
        listener,
        workers: Mutex::new(Vec::new()),
        stopped: AtomicBool::new(false),
    });
    for n in 0..workers.clamp(1, MAX_WORKERS) {
        match start(&pool) {
            Ok(()) => {}
            Err(e) if n > 0 => {
                log::warn!("starting supervisor worker {n}: {e}; going on with {n}");
                break;
            }
            Err(e) => return Err(e),
        }
    }
    let watched = pool.clone();
    let watcher =
        std::thread::Builder::new().name("fr-watcher".into()).spawn(move || watch(&watched));
    if let Err(e) = watcher {
        log::warn!("starting the supervisor's watcher: {e}; the workers are not added to");
    }
    Ok(())
}

/// Starts one more worker.
fn start(pool: &Arc<Pool>) -> std::io::Result<()> {
    let progress = Arc::new(Progress::default());
    let mut workers = pool.workers.lock().unwrap_or_else(|e| e.into_inner());
    let (pool, mine) = (pool.clone(), progress.clone());
    std::thread::Builder::new()
        .name(format!("fr-worker-{}", workers.len()))
        .spawn(move || worker(&pool, &mine))?;
    workers.push(progress);
    Ok(())
}

/// Every [`STUCK`], starts a worker if every worker is still on the
/// notification it was on at the last look.
fn watch(pool: &Arc<Pool>) {
    let mut seen: Vec<Option<u64>> = Vec::new();
    while !pool.stopped.load(Ordering::Relaxed) {
        std::thread::sleep(STUCK);
        let now: Vec<Option<u64>> = {
            let workers = pool.workers.lock().unwrap_or_else(|e| e.into_inner());
            workers.iter().map(|w| w.on()).collect()
        };
        if held_up(&seen, &now) && now.len() < MAX_WORKERS {
            log::debug!(
                "all {} supervisor workers have been on one call for {STUCK:?}: one more",
                now.len()
            );
            if let Err(e) = start(pool) {
                log::warn!("starting one more supervisor worker: {e}");
            }
        }
        seen = now;
    }
}

/// Whether every worker is on the notification it was on at the last look
/// (`then`), and on one at all.
fn held_up(then: &[Option<u64>], now: &[Option<u64>]) -> bool {
    now.len() == then.len() && now.iter().zip(then).all(|(now, then)| now.is_some() && now == then)
}

fn worker(pool: &Pool, progress: &Progress) {
    let (shared, listener) = (&*pool.shared, pool.listener.as_fd());
    loop {
        let notif = match sys::notif_recv(listener) {
            Ok(notif) => notif,
            // The target died or was interrupted before we received it, or
            // every task of the filter is gone: then the listener has hung
            // up and RECV answers ENOENT at once for ever
            // (`kernel/seccomp.c: recv_wait_event()` does not wait when the
            // filter has no users), which must end the worker, not spin it.
            Err(Errno::NOENT) if hung_up(listener) => {
                log::debug!("worker stops: every task of the filter is gone");
                pool.stopped.store(true, Ordering::Relaxed);
                return;
            }
            Err(Errno::NOENT) | Err(Errno::INTR) => continue,
            Err(e) => {
                log::debug!("worker stops: SECCOMP_IOCTL_NOTIF_RECV: {e}");
                pool.stopped.store(true, Ordering::Relaxed);
                return;
            }
        };
        progress.received.fetch_add(1, Ordering::Relaxed);
        // A panic would leave the call unanswered and the workload hung:
        // answer it, and say it is fr's bug.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handle(shared, listener, &notif)
        }))
        .unwrap_or_else(|_| {
            log::error!(
                "a handler of fr failed on system call {} (a bug in fr); it returns ENOSYS",
                notif.data.nr
            );
            Err(Errno::NOSYS)
        });
        reply(&shared.ctx, listener, notif.id, outcome);
        progress.answered.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether the listener reports `POLLHUP`: no task is left that the filter
/// could notify of (`kernel/seccomp.c: seccomp_notify_poll()`).
fn hung_up(listener: BorrowedFd<'_>) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(&listener, PollFlags::IN)];
    let now = Timespec { tv_sec: 0, tv_nsec: 0 };
    poll(&mut fds, Some(&now)).is_ok() && fds[0].revents().contains(PollFlags::HUP)
}

fn handle(shared: &Shared, listener: BorrowedFd<'_>, notif: &sys::SeccompNotif) -> Outcome {
    if shared.continue_all {
        return Ok(Reply::Continue("measuring the bare round trip"));
    }
    let Some((arch, nr)) = Arch::from_seccomp(notif.data.arch, notif.data.nr) else {
        return Ok(Reply::Continue("an ABI fr does not know"));
    };
    let Some(syscall) = shared.dispatch.find(arch, nr) else {
        return Ok(Reply::Continue("not in fr's table for this ABI"));
    };
    let req = Request::new(listener, notif, arch, nr, &shared.descriptors);
    let outcome = (syscall.handler)(&shared.ctx, &req);
    if log::log_enabled!(log::Level::Trace) {
        log::trace!(
            "{}[{}] {}",
            req.tid,
            arch.name(),
            crate::trace::line(syscall.name, &req, &outcome)
        );
    }
    // A handler that met the unreachable memory and still answered (the
    // first execve's, before the image that made the workload undumpable
    // is replaced) keeps its answer; one that failed for it lets the call
    // run.
    if req.unreachable().is_some() && outcome.is_err() {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            log::warn!(
                "process {} is not dumpable, so fr cannot read its memory; its {} and later \
                 such calls run unemulated, with the real ids (run with a user namespace, \
                 --userns=auto, to emulate them)",
                req.tid,
                syscall.name
            );
        });
        return Ok(Reply::Continue("the target's memory is out of reach"));
    }
    outcome
}

/// The one place a notification is answered.
fn reply(ctx: &Context, listener: BorrowedFd<'_>, id: u64, outcome: Outcome) {
    let (val, error, flags) = match outcome {
        Ok(Reply::Value(v)) => (v, 0, 0),
        Ok(Reply::Continue(_)) => (0, 0, sys::SECCOMP_USER_NOTIF_FLAG_CONTINUE),
        Ok(Reply::Fd { file, cloexec, made }) => {
            match sys::notif_addfd_send(listener, id, file.as_fd(), cloexec) {
                Ok(_) | Err(Errno::NOENT) => return,
                // No descriptor could be added (EMFILE, ...): the call fails
                // so, and leaves no file, as real root's would.
                Err(e) => {
                    drop(file);
                    if let Some(made) = made {
                        made.undo(ctx);
                    }
                    (0, -e.raw_os_error(), 0)
                }
            }
        }
        Err(e) => (0, -e.raw_os_error(), 0),
    };
    match sys::notif_send(listener, id, val, error, flags) {
        // The target was killed, or a signal interrupted the call (it will
        // be restarted and notified again).
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => log::warn!("answering a seccomp notification: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_workers_all_on_the_same_notification_as_before_are_held_up() {
        assert!(held_up(&[Some(3)], &[Some(3)]));
        assert!(held_up(&[Some(3), Some(9)], &[Some(3), Some(9)]));
        // Waiting for a notification is not being held up.
        assert!(!held_up(&[None], &[None]));
        // Moved on, even to a call it is still on.
        assert!(!held_up(&[Some(3)], &[Some(4)]));
        // One worker free is enough.
        assert!(!held_up(&[Some(3), Some(9)], &[Some(3), None]));
        // A worker started since the last look has not been seen stuck.
        assert!(!held_up(&[Some(3)], &[Some(3), Some(1)]));
    }

    #[test]
    fn progress_is_on_a_notification_between_receiving_and_answering() {
        let p = Progress::default();
        assert_eq!(p.on(), None);
        p.received.fetch_add(1, Ordering::Relaxed);
        assert_eq!(p.on(), Some(1));
        p.answered.fetch_add(1, Ordering::Relaxed);
        assert_eq!(p.on(), None);
    }
}
