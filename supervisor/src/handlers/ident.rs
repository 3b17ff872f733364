//! The get*id family, for a workload with no user namespace: real root's
//! ids are all 0. (In a root-mapped namespace the kernel already answers 0.)

use rustix::io::Errno;

use super::{Context, Outcome, Reply};
use crate::request::Request;

/// `getuid geteuid getgid getegid` and their 16- and 32-bit variants.
pub fn zero(_: &Context, _: &Request<'_>) -> Outcome {
    Ok(Reply::Value(0))
}

/// Writes `width` zero bytes at each of the three pointer arguments, in
/// order, as `kernel/sys.c: getresuid()` does with `put_user`.
fn three_zeros(req: &Request<'_>, width: usize) -> Outcome {
    let zero = [0u8; 4];
    for arg in 0..3 {
        req.write(req.ptr(arg), &zero[..width]).map_err(|_| Errno::FAULT)?;
    }
    Ok(Reply::Value(0))
}

/// `getresuid getresgid` (and i386's `*32`): three 32-bit zeros.
pub fn getres(_: &Context, req: &Request<'_>) -> Outcome {
    three_zeros(req, 4)
}

/// i386's 16-bit `getresuid getresgid`: three 16-bit zeros.
pub fn getres16(_: &Context, req: &Request<'_>) -> Outcome {
    three_zeros(req, 2)
}
