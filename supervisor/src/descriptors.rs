//! A target's file descriptors, duplicated into the supervisor with
//! `pidfd_getfd(2)` through a pidfd kept per thread.
//!
//! Opening `/proc/<tid>/fd/N` walks procfs (the pid's directory, the fd
//! directory, the magic link, its ptrace check) on every call, about 2.5 µs
//! on the project machine; `pidfd_getfd` on a pidfd already open costs
//! under 1 µs, and opening that pidfd (`pidfd_open`) about 4.5 µs, so the
//! pidfd is kept for the thread's later calls.
//!
//! A kept pidfd cannot come to name another thread: it refers to the
//! thread's `struct pid`, not to its number, and once that thread is gone
//! `pidfd_getfd` fails with `ESRCH` (a thread given the number later has a
//! `struct pid` of its own). `ESRCH` drops the entry and the number is
//! opened again; as with `/proc`, a fresh open is vouched for by the
//! caller's `ID_VALID` check. A thread that `execve`s from a non-leader
//! thread takes the leader's number and its `struct pid` (`exchange_tids()`
//! in `fs/exec.c: de_thread()`), so the kept pidfd of that number names it.
//!
//! The duplicate shares the target's open file description: the callers
//! look at it (`statx`, `fcntl(F_GETFL)`) and change the file's inode
//! through it (owner, mode, attributes), never its offset or flags.
//!
//! Where this cannot be had ([`Descriptors::dup`] says `ENOSYS`): a kernel
//! without thread pidfds (`PIDFD_THREAD`, 6.9) or `pidfd_getfd` (5.6), and
//! a thread fr may not attach to (`PTRACE_MODE_ATTACH`, stricter than the
//! read access `/proc/<tid>/fd` asks: a `--userns=none` workload that is
//! not fr's descendant under Yama). The caller then takes `/proc`.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags};

/// `PIDFD_THREAD` from `<linux/pidfd.h>` (6.9): a pidfd for one thread.
const PIDFD_THREAD: u32 = libc::O_EXCL as u32;

/// The kept pidfds, by thread id in the supervisor's pid namespace.
///
/// A thread's pidfd stays until its number comes back or the table is
/// full. At most a quarter of fr's soft descriptor limit is kept (a build
/// starts thousands of processes, and the limit is often 1024); when full,
/// the pidfds of threads that ended go (`poll` reports them), and if the
/// table is still full, all go (the live ones are opened again at their
/// next call).
#[derive(Debug)]
pub struct Descriptors {
    pidfds: DashMap<i32, Arc<OwnedFd>>,
    most: usize,
    /// Set once the kernel said it has no thread pidfds or no
    /// `pidfd_getfd`.
    missing: AtomicBool,
}

impl Default for Descriptors {
    fn default() -> Self {
        Self::keeping(quarter_of_limit().clamp(16, 1024))
    }
}

/// A quarter of fr's soft descriptor limit: how many descriptors one of
/// fr's tables may keep open (its kept pidfds, the unnamed files it made).
pub fn quarter_of_limit() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    limit.map_or(1024, |l| usize::try_from(l / 4).unwrap_or(1024))
}

/// Raises fr's soft descriptor limit to the hard one; whether it grew.
/// Only the supervisor's: the workload, forked before, keeps the limits it
/// was given.
pub fn raise_limit() -> bool {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    limit.current < limit.maximum
        && setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, ..limit }).is_ok()
}

impl Descriptors {
    /// A table that keeps at most `most` pidfds.
    fn keeping(most: usize) -> Self {
        Self { pidfds: DashMap::new(), most, missing: AtomicBool::new(false) }
    }

    /// Room for one more pidfd: those of ended threads go, or all do.
    fn make_room(&self) {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        if self.pidfds.len() < self.most {
            return;
        }
        let kept: Vec<(i32, Arc<OwnedFd>)> =
            self.pidfds.iter().map(|e| (*e.key(), Arc::clone(e.value()))).collect();
        let mut fds: Vec<PollFd<'_>> =
            kept.iter().map(|(_, p)| PollFd::new(&**p, PollFlags::IN)).collect();
        let now = Timespec { tv_sec: 0, tv_nsec: 0 };
        if poll(&mut fds, Some(&now)).is_ok() {
            for (fd, (tid, pidfd)) in fds.iter().zip(&kept) {
                // A thread pidfd is readable once its thread has exited.
                if !fd.revents().is_empty() {
                    self.pidfds.remove_if(tid, |_, p| Arc::ptr_eq(p, pidfd));
                }
            }
        }
        if self.pidfds.len() >= self.most {
            self.pidfds.clear();
        }
    }

    /// Thread `tid`'s descriptor `fd`, duplicated: `EBADF` if it has none
    /// by that number, `ENOSYS` where a duplicate cannot be had (the
    /// caller then opens `/proc/<tid>/fd/N`).
    pub fn dup(&self, tid: i32, fd: i32) -> Result<OwnedFd, Errno> {
        if fd < 0 {
            return Err(Errno::BADF);
        }
        if self.missing.load(Ordering::Relaxed) {
            return Err(Errno::NOSYS);
        }
        let kept = self.pidfds.get(&tid).map(|p| Arc::clone(&p));
        if let Some(pidfd) = kept {
            match getfd(&pidfd, fd) {
                Err(Errno::SRCH) => {
                    self.pidfds.remove_if(&tid, |_, p| Arc::ptr_eq(p, &pidfd));
                }
                done => return done,
            }
        }
        let pid = Pid::from_raw(tid).ok_or(Errno::NOSYS)?;
        let pidfd =
            match rustix::process::pidfd_open(pid, PidfdFlags::from_bits_retain(PIDFD_THREAD)) {
                Ok(p) => Arc::new(p),
                Err(e) => return Err(self.unavailable(e)),
            };
        let done = getfd(&pidfd, fd);
        // A closed descriptor is the thread's answer too: the pidfd works.
        if matches!(done, Ok(_) | Err(Errno::BADF)) {
            self.make_room();
            self.pidfds.insert(tid, pidfd);
        }
        done.map_err(|e| self.unavailable(e))
    }

    /// The answer for an error of `pidfd_open` or a first `pidfd_getfd`:
    /// `EBADF` stands, anything else sends the caller to `/proc` (which
    /// gives the kernel's own error for a thread that is gone), and a
    /// kernel without the calls is remembered.
    fn unavailable(&self, e: Errno) -> Errno {
        match e {
            Errno::BADF => Errno::BADF,
            Errno::INVAL | Errno::NOSYS => {
                self.missing.store(true, Ordering::Relaxed);
                Errno::NOSYS
            }
            _ => Errno::NOSYS,
        }
    }
}

fn getfd(pidfd: &OwnedFd, fd: i32) -> Result<OwnedFd, Errno> {
    rustix::process::pidfd_getfd(pidfd, fd, PidfdGetfdFlags::empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn key(fd: impl AsFd) -> (u64, u64) {
        let st = rustix::fs::fstat(fd).unwrap();
        (st.st_dev, st.st_ino)
    }

    #[test]
    fn a_descriptor_of_the_thread_itself_is_the_same_file() {
        let d = Descriptors::default();
        let file = std::fs::File::open("/proc/self/exe").unwrap();
        let tid = rustix::thread::gettid().as_raw_nonzero().get();
        use std::os::fd::AsRawFd;
        let Ok(dup) = d.dup(tid, file.as_raw_fd()) else {
            // No thread pidfds on this kernel: /proc is used instead.
            assert!(d.missing.load(Ordering::Relaxed));
            return;
        };
        assert_eq!(key(&dup), key(&file));
        // Kept: a second call reuses the pidfd.
        assert_eq!(d.pidfds.len(), 1);
        assert_eq!(key(d.dup(tid, file.as_raw_fd()).unwrap()), key(&file));
        assert_eq!(d.pidfds.len(), 1);
        assert_eq!(d.dup(tid, 1_000_000).unwrap_err(), Errno::BADF);
        assert_eq!(d.dup(tid, -1).unwrap_err(), Errno::BADF);
    }

    #[test]
    fn a_full_table_lets_the_ended_threads_go_first() {
        let d = Descriptors::keeping(2);
        let me = rustix::thread::gettid().as_raw_nonzero().get();
        let file = std::fs::File::open("/proc/self/exe").unwrap();
        use std::os::fd::AsRawFd;
        if d.dup(me, file.as_raw_fd()).is_err_and(|e| e == Errno::NOSYS) {
            return;
        }
        // Two threads that end after their call.
        for _ in 0..2 {
            let (tx, rx) = std::sync::mpsc::channel();
            let t = std::thread::spawn(move || {
                tx.send(rustix::thread::gettid().as_raw_nonzero().get()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(50));
            });
            let tid = rx.recv().unwrap();
            d.dup(tid, 0).unwrap();
            t.join().unwrap();
            // join() returns before the kernel has let the thread go.
            while std::path::Path::new(&format!("/proc/self/task/{tid}")).exists() {
                std::thread::yield_now();
            }
            assert!(d.pidfds.len() <= 2);
        }
        // The live thread's pidfd was kept, the ended one's went.
        assert!(d.pidfds.contains_key(&me));
        assert_eq!(d.pidfds.len(), 2);
    }

    #[test]
    fn a_thread_that_ended_is_never_answered_for() {
        let d = Descriptors::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            tx.send(rustix::thread::gettid().as_raw_nonzero().get()).unwrap();
            done_rx.recv().unwrap();
        });
        let tid = rx.recv().unwrap();
        if d.dup(tid, 0).is_err_and(|e| e == Errno::NOSYS) {
            return;
        }
        assert_eq!(d.pidfds.len(), 1);
        done_tx.send(()).unwrap();
        t.join().unwrap();
        while std::path::Path::new(&format!("/proc/self/task/{tid}")).exists() {
            std::thread::yield_now();
        }
        // The kept pidfd fails, is dropped, and the number cannot be opened.
        assert_eq!(d.dup(tid, 0).unwrap_err(), Errno::NOSYS);
        assert_eq!(d.pidfds.len(), 0);
    }
}
