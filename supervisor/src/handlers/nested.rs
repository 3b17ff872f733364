//! Workloads with seccomp filters of their own. A plain filter stacks on
//! fr's and is the kernel's business (the filter never notifies it). A
//! filter that asks for a notification listener cannot be had: the kernel
//! allows one listener in a filter chain (`kernel/seccomp.c:
//! has_duplicate_listener()`), and fr's holds it. The call fails with
//! `EBUSY`, as it would, and fr says why on its standard error.

use std::sync::atomic::{AtomicBool, Ordering};

use rustix::io::Errno;

use super::{Context, Outcome};
use crate::request::Request;

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags | SECCOMP_FILTER_FLAG_NEW_LISTENER, prog)`.
pub fn seccomp(_: &Context, req: &Request<'_>) -> Outcome {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        log::warn!(
            "process {} asked for a seccomp notification listener of its own; the kernel allows one \
             per process tree and fr's supervisor holds it, so the call fails with EBUSY \
             (run that program outside fr, or without its own supervisor)",
            req.tid
        );
    }
    Err(Errno::BUSY)
}
