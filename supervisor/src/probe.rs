//! What the kernel's seccomp user notification offers, found by trying it:
//! a filter that allows everything is installed with a listener on a
//! short-lived thread (filters and `no_new_privs` belong to the thread that
//! sets them, and go with it), and each request fr uses is made with a
//! notification id that cannot exist. `ENOENT` ("no such notification")
//! means the kernel understood the request; `EINVAL` or `ENOTTY` mean it
//! does not know it.

use std::os::fd::AsFd;

use rustix::io::Errno;

use crate::sys::{self, SockFilter};

/// Each feature fr uses, and the kernel that brought it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// `SECCOMP_RET_USER_NOTIF` with `SECCOMP_FILTER_FLAG_NEW_LISTENER` (5.0);
    /// `Err` says why installing the probe filter failed.
    pub user_notif: Result<(), Errno>,
    /// `SECCOMP_USER_NOTIF_FLAG_CONTINUE` (5.5).
    pub continue_flag: bool,
    /// `SECCOMP_IOCTL_NOTIF_ADDFD` (5.9).
    pub addfd: bool,
    /// `SECCOMP_ADDFD_FLAG_SEND` (5.14).
    pub addfd_send: bool,
    /// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (5.19).
    pub wait_killable_recv: bool,
    /// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (6.6).
    pub sync_wake_up: bool,
}

impl Features {
    fn none(why: Errno) -> Features {
        Features {
            user_notif: Err(why),
            continue_flag: false,
            addfd: false,
            addfd_send: false,
            wait_killable_recv: false,
            sync_wake_up: false,
        }
    }
}

/// `BPF_RET | BPF_K` with `SECCOMP_RET_ALLOW`: the filter that changes nothing.
const ALLOW: [SockFilter; 1] = [SockFilter { code: 0x06, jt: 0, jf: 0, k: 0x7fff_0000 }];

/// Probes the running kernel. Safe to call from any thread of fr: the
/// probe runs on its own.
pub fn features() -> Features {
    std::thread::spawn(probe).join().unwrap_or(Features::none(Errno::NOSYS))
}

fn probe() -> Features {
    let mut f = Features::none(Errno::NOSYS);
    if let Err(e) = rustix::thread::set_no_new_privs(true) {
        return Features::none(e);
    }
    let listener = match sys::install_filter(&ALLOW, sys::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) {
        Ok(l) => {
            f.wait_killable_recv = true;
            l
        }
        Err(Errno::INVAL) => match sys::install_filter(&ALLOW, 0) {
            Ok(l) => l,
            Err(e) => {
                f.user_notif = Err(e);
                return f;
            }
        },
        Err(e) => {
            f.user_notif = Err(e);
            return f;
        }
    };
    f.user_notif = Ok(());
    const NO_SUCH_ID: u64 = u64::MAX;
    let fd = listener.as_fd();
    f.continue_flag = sys::notif_send(fd, NO_SUCH_ID, 0, 0, sys::SECCOMP_USER_NOTIF_FLAG_CONTINUE)
        == Err(Errno::NOENT);
    match sys::notif_addfd_send(fd, NO_SUCH_ID, fd, false) {
        Err(Errno::NOENT) => (f.addfd, f.addfd_send) = (true, true),
        // The request is known, its SEND flag is not.
        Err(Errno::INVAL) => f.addfd = true,
        _ => {}
    }
    f.sync_wake_up = sys::notif_set_flags(fd, sys::SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP).is_ok();
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fr's tests need a kernel with every feature (6.6+); the probe finds
    /// them there, and leaves the calling thread without a filter.
    #[test]
    fn this_kernel_has_what_fr_uses() {
        let f = features();
        assert_eq!(f.user_notif, Ok(()));
        assert!(
            f.continue_flag && f.addfd && f.addfd_send && f.wait_killable_recv && f.sync_wake_up,
            "{f:?}"
        );
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        assert!(status.lines().any(|l| l == "Seccomp:\t0"), "{status}");
    }
}
