//! The notification loop: a pool of workers, each receiving from the one
//! listener, dispatching through the table and sending exactly one reply.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::thread::JoinHandle;

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
    /// Benchmarks only: every call continues untouched.
    pub continue_all: bool,
}

/// Starts `workers` threads serving `listener`. They end when the listener
/// reports an error other than a vanished target, or with the process.
/// Fails only if not one worker could be started.
pub fn serve(
    shared: Arc<Shared>,
    listener: OwnedFd,
    workers: usize,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let listener = Arc::new(listener);
    let mut started = Vec::new();
    for n in 0..workers.max(1) {
        let (shared, listener) = (shared.clone(), listener.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("fr-worker-{n}"))
            .spawn(move || worker(&shared, listener.as_fd()));
        match spawned {
            Ok(handle) => started.push(handle),
            Err(e) if !started.is_empty() => {
                log::warn!("starting supervisor worker {n}: {e}; going on with {}", started.len());
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(started)
}

fn worker(shared: &Shared, listener: BorrowedFd<'_>) {
    loop {
        let notif = match sys::notif_recv(listener) {
            Ok(notif) => notif,
            // The target died or was interrupted before we received it.
            Err(Errno::NOENT) | Err(Errno::INTR) => continue,
            Err(e) => {
                log::debug!("worker stops: SECCOMP_IOCTL_NOTIF_RECV: {e}");
                return;
            }
        };
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
        reply(listener, notif.id, outcome);
    }
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
    let req = Request::new(listener, notif, arch, nr);
    let outcome = (syscall.handler)(&shared.ctx, &req);
    log::trace!("{}[{}] {}({:x?}) = {:?}", req.tid, arch.name(), syscall.name, req.args, outcome);
    if matches!(outcome, Err(e) if e == crate::request::UNREACHABLE) {
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
fn reply(listener: BorrowedFd<'_>, id: u64, outcome: Outcome) {
    let (val, error, flags) = match outcome {
        Ok(Reply::Value(v)) => (v, 0, 0),
        Ok(Reply::Continue(_)) => (0, 0, sys::SECCOMP_USER_NOTIF_FLAG_CONTINUE),
        Ok(Reply::Fd { file, cloexec }) => {
            match sys::notif_addfd_send(listener, id, file.as_fd(), cloexec) {
                Ok(_) | Err(Errno::NOENT) => return,
                // No descriptor could be added (EMFILE, ...): the call fails so.
                Err(e) => (0, -e.raw_os_error(), 0),
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
