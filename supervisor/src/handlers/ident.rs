//! The identity family: `get/set{,e,re,res,fs}{uid,gid}`, `getgroups`,
//! `setgroups`, `capget`, `capset`, and `execve`/`execveat` for the
//! credential changes an exec makes. Answered from each thread's fake
//! credentials ([`crate::creds`]) by the kernel's rules
//! ([`fr_emulator::creds`]), in every mode: in a root-mapped namespace the
//! kernel could answer `getuid` but not the `100` that `setuid(100)` must
//! leave behind.
//!
//! i386 has 16-bit variants of most of these beside the `*32` ones: ids
//! above 65535 read as the overflow id there, and `(u16)-1` means -1.

use std::os::fd::AsFd;

use fr_emulator::attrs::{S_ISGID, S_ISUID, S_IXGRP};
use fr_emulator::creds::{Refused, CAP_SETGID, NGROUPS_MAX};
use fr_emulator::Creds;
use rustix::fs::{AtFlags, StatxFlags};
use rustix::io::Errno;

use super::Width::{self, W16, W32};
use super::{at_file, read_plain_path, real_stat, refused, Context, Outcome, Reply};
use crate::request::Request;
use crate::resolve::{LookupFlags, AT_FDCWD};

/// The ids of a `set*id` call of `width`, from its first `N` arguments;
/// `-1` (16-bit `(old_uid_t)-1` too) is [`fr_emulator::creds::UNCHANGED`].
pub fn ids<const N: usize>(req: &Request<'_>, width: Width) -> [u32; N] {
    std::array::from_fn(|i| width.id(req.uint(i)))
}

/// A change of the calling thread's credentials (ids, groups,
/// capabilities, keepcaps and securebits): made to its fake ones by the
/// kernel's rules (`change`, whose success `value` turns into the call's
/// return value), and, in subuid mode, by the kernel too when it can make
/// the very same change: the thread's kernel credentials were the fake
/// ones before (read from its status: such calls are rare) and every id
/// after is one the namespace maps. Then the kernel's own
/// permission checks (open, access, exec, ...) see the ids the workload
/// dropped to, as real root's child that drops to `nobody` is refused
/// what `nobody` may not do. Otherwise (an id beyond the ranges,
/// root-mapped mode, no namespace) the change is fr's alone.
fn change<T>(
    ctx: &Context,
    req: &Request<'_>,
    change: impl FnOnce(&mut Creds) -> Result<T, Refused>,
    value: impl FnOnce(T) -> i64,
) -> Outcome {
    let (before, result, after) = ctx.creds.update(req, |c| {
        let before = c.clone();
        let result = change(c);
        (before, result, c.clone())
    })?;
    let v = value(result.map_err(refused)?);
    if ctx.namespace == crate::Namespace::Subuid
        && mappable(ctx, &after)
        && mirrored(req.tid, &before)
    {
        return Ok(Reply::Continue("the kernel makes the same change and then enforces it"));
    }
    Ok(Reply::Value(v))
}

/// Whether the namespace maps every id of `c`.
fn mappable(ctx: &Context, c: &Creds) -> bool {
    let ids = ctx.inodes.ids();
    [c.ruid, c.euid, c.suid, c.fsuid].into_iter().all(|u| ids.uid_outside(u).is_some())
        && [c.rgid, c.egid, c.sgid, c.fsgid]
            .into_iter()
            .chain(c.groups.iter().copied())
            .all(|g| ids.gid_outside(g).is_some())
}

/// Whether the kernel holds `c` for thread `tid`: its ids, groups and
/// effective and permitted capabilities. A new user namespace gives its
/// first process every capability, those the bounding set outside lacks
/// too (`kernel/cred.c: set_cred_user_ns()`), which real root started here
/// would not have: the kernel may hold those beside `c`'s. They count in
/// that namespace only, and a change of ids clears them with the rest.
fn mirrored(tid: i32, c: &Creds) -> bool {
    crate::procfs::kernel_creds(tid).is_some_and(|k| {
        k.uids == [c.ruid, c.euid, c.suid, c.fsuid]
            && k.gids == [c.rgid, c.egid, c.sgid, c.fsgid]
            && k.groups == c.groups
            && k.effective & c.bounding == c.effective
            && k.permitted & c.bounding == c.permitted
    })
}

fn creds(ctx: &Context, req: &Request<'_>) -> Creds {
    ctx.creds.get(req.tid)
}

macro_rules! getter {
    ($name:ident, $name16:ident, $field:ident) => {
        #[doc = concat!("`", stringify!($name), "()`.")]
        pub fn $name(ctx: &Context, req: &Request<'_>) -> Outcome {
            Ok(Reply::Value(W32.value(creds(ctx, req).$field)))
        }
        #[doc = concat!("i386's 16-bit `", stringify!($name), "()`.")]
        pub fn $name16(ctx: &Context, req: &Request<'_>) -> Outcome {
            Ok(Reply::Value(W16.value(creds(ctx, req).$field)))
        }
    };
}

getter!(getuid, getuid16, ruid);
getter!(geteuid, geteuid16, euid);
getter!(getgid, getgid16, rgid);
getter!(getegid, getegid16, egid);

/// Writes three ids at the three pointer arguments, in order, as
/// `kernel/sys.c: getresuid()` does with `put_user`, once the target is
/// known to be still waiting (its pid may have been reused).
fn write_three(req: &Request<'_>, ids: [u32; 3], width: Width) -> Outcome {
    req.check_valid()?;
    for (arg, id) in ids.into_iter().enumerate() {
        req.write(req.ptr(arg), &width.out(id))?;
    }
    Ok(Reply::Value(0))
}

pub fn getresuid(ctx: &Context, req: &Request<'_>) -> Outcome {
    let c = creds(ctx, req);
    write_three(req, [c.ruid, c.euid, c.suid], W32)
}

pub fn getresuid16(ctx: &Context, req: &Request<'_>) -> Outcome {
    let c = creds(ctx, req);
    write_three(req, [c.ruid, c.euid, c.suid], W16)
}

pub fn getresgid(ctx: &Context, req: &Request<'_>) -> Outcome {
    let c = creds(ctx, req);
    write_three(req, [c.rgid, c.egid, c.sgid], W32)
}

pub fn getresgid16(ctx: &Context, req: &Request<'_>) -> Outcome {
    let c = creds(ctx, req);
    write_three(req, [c.rgid, c.egid, c.sgid], W16)
}

macro_rules! setter1 {
    ($name:ident, $name16:ident, $method:ident) => {
        #[doc = concat!("`", stringify!($name), "(id)`.")]
        pub fn $name(ctx: &Context, req: &Request<'_>) -> Outcome {
            let [id] = ids(req, W32);
            change(ctx, req, |c| c.$method(id), |()| 0)
        }
        #[doc = concat!("i386's 16-bit `", stringify!($name), "(id)`.")]
        pub fn $name16(ctx: &Context, req: &Request<'_>) -> Outcome {
            let [id] = ids(req, W16);
            change(ctx, req, |c| c.$method(id), |()| 0)
        }
    };
}

setter1!(setuid, setuid16, setuid);
setter1!(setgid, setgid16, setgid);

macro_rules! setter2 {
    ($name:ident, $name16:ident, $method:ident) => {
        #[doc = concat!("`", stringify!($name), "(real, effective)`.")]
        pub fn $name(ctx: &Context, req: &Request<'_>) -> Outcome {
            let [r, e] = ids(req, W32);
            change(ctx, req, |c| c.$method(r, e), |()| 0)
        }
        #[doc = concat!("i386's 16-bit `", stringify!($name), "(real, effective)`.")]
        pub fn $name16(ctx: &Context, req: &Request<'_>) -> Outcome {
            let [r, e] = ids(req, W16);
            change(ctx, req, |c| c.$method(r, e), |()| 0)
        }
    };
}

setter2!(setreuid, setreuid16, setreuid);
setter2!(setregid, setregid16, setregid);

macro_rules! setter3 {
    ($name:ident, $name16:ident, $method:ident) => {
        #[doc = concat!("`", stringify!($name), "(real, effective, saved)`.")]
        pub fn $name(ctx: &Context, req: &Request<'_>) -> Outcome {
            let [r, e, s] = ids(req, W32);
            change(ctx, req, |c| c.$method(r, e, s), |()| 0)
        }
        #[doc = concat!("i386's 16-bit `", stringify!($name), "(real, effective, saved)`.")]
        pub fn $name16(ctx: &Context, req: &Request<'_>) -> Outcome {
            let [r, e, s] = ids(req, W16);
            change(ctx, req, |c| c.$method(r, e, s), |()| 0)
        }
    };
}

setter3!(setresuid, setresuid16, setresuid);
setter3!(setresgid, setresgid16, setresgid);

macro_rules! setter_fs {
    ($name:ident, $name16:ident, $method:ident) => {
        #[doc = concat!("`", stringify!($name), "(id)`: returns the previous one.")]
        pub fn $name(ctx: &Context, req: &Request<'_>) -> Outcome {
            let [id] = ids(req, W32);
            change(ctx, req, |c| Ok(c.$method(id)), i64::from)
        }
        #[doc = concat!("i386's 16-bit `", stringify!($name), "(id)`.")]
        pub fn $name16(ctx: &Context, req: &Request<'_>) -> Outcome {
            let [id] = ids(req, W16);
            change(ctx, req, |c| Ok(c.$method(id)), i64::from)
        }
    };
}

setter_fs!(setfsuid, setfsuid16, setfsuid);
setter_fs!(setfsgid, setfsgid16, setfsgid);

/// `getgroups(size, list)`: how many groups the list has room for, and
/// where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetGroups {
    /// 0 asks for the count only.
    pub size: usize,
    pub list: u64,
}

/// `kernel/groups.c: getgroups()`: a negative size is `EINVAL`.
pub fn getgroups_args(req: &Request<'_>) -> Result<GetGroups, Errno> {
    let size = usize::try_from(req.int(0)).map_err(|_| Errno::INVAL)?;
    Ok(GetGroups { size, list: req.ptr(1) })
}

/// `kernel/groups.c: getgroups()`: the count for size 0, `EINVAL` if the
/// list does not fit.
fn get_groups(ctx: &Context, req: &Request<'_>, width: Width) -> Outcome {
    let GetGroups { size, list } = getgroups_args(req)?;
    let groups = creds(ctx, req).groups;
    if size == 0 {
        return Ok(Reply::Value(groups.len() as i64));
    }
    if size < groups.len() {
        return Err(Errno::INVAL);
    }
    let bytes: Vec<u8> = groups.iter().flat_map(|&g| width.out(g)).collect();
    if !bytes.is_empty() {
        req.check_valid()?;
        req.write(list, &bytes)?;
    }
    Ok(Reply::Value(groups.len() as i64))
}

pub fn getgroups(ctx: &Context, req: &Request<'_>) -> Outcome {
    get_groups(ctx, req, W32)
}

pub fn getgroups16(ctx: &Context, req: &Request<'_>) -> Outcome {
    get_groups(ctx, req, W16)
}

/// The list of `setgroups(size, list)` of `width`, as `kernel/groups.c:
/// setgroups()` takes it once `CAP_SETGID` is checked (`EPERM` first, the
/// caller's): `EINVAL` above `NGROUPS_MAX`, then `groups_from_user()` (or
/// `groups16_from_user()`) takes each id in turn, `EFAULT` if it cannot be
/// read and `EINVAL` if it is -1 (`make_kgid()` gives no valid id; a
/// 16-bit `(old_gid_t)-1` widens to it).
pub fn setgroups_list(req: &Request<'_>, width: Width) -> Result<Vec<u32>, Errno> {
    let size = req.int(0);
    if size < 0 || size as usize > NGROUPS_MAX {
        return Err(Errno::INVAL);
    }
    let (size, each) = (size as usize, if width == W16 { 2 } else { 4 });
    let bytes = req.read_prefix(req.ptr(1), size * each)?;
    let mut groups = Vec::with_capacity(size);
    for b in bytes.chunks_exact(each) {
        let gid = match width {
            W16 => W16.id(u32::from(u16::from_le_bytes([b[0], b[1]]))),
            W32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        };
        if gid == fr_emulator::creds::UNCHANGED {
            return Err(Errno::INVAL);
        }
        groups.push(gid);
    }
    if groups.len() < size {
        return Err(Errno::FAULT);
    }
    req.check_valid()?;
    Ok(groups)
}

fn set_groups(ctx: &Context, req: &Request<'_>, width: Width) -> Outcome {
    if !creds(ctx, req).capable(CAP_SETGID) {
        return Err(Errno::PERM);
    }
    let groups = setgroups_list(req, width)?;
    change(ctx, req, |c| c.setgroups(groups), |()| 0)
}

pub fn setgroups(ctx: &Context, req: &Request<'_>) -> Outcome {
    set_groups(ctx, req, W32)
}

pub fn setgroups16(ctx: &Context, req: &Request<'_>) -> Outcome {
    set_groups(ctx, req, W16)
}

/// `_LINUX_CAPABILITY_VERSION_1`, `_2` and `_3`, and how many 32-bit data
/// structs each moves.
use crate::linux::{CAP_V1, CAP_V2, CAP_V3};

/// A capability header: how many 32-bit data structs its version moves
/// (1 for `_LINUX_CAPABILITY_VERSION_1`, 2 for `_2` and `_3`), and the pid
/// it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapHeader {
    pub structs: usize,
    pub pid: i32,
}

/// The header at argument 0 as `kernel/capability.c` reads it:
/// `cap_validate_magic()` `get_user()`s the version alone (`EFAULT`) and
/// answers an unknown one with `EINVAL` after it writes the preferred
/// version into the header; the pid is `get_user()`'d after it. So the
/// number of data structs, and the pid if it could be read (`EFAULT` once
/// it is needed). Both come from one read.
fn header_parts(req: &Request<'_>) -> Result<(usize, Option<i32>), Errno> {
    let hdr = req.read_prefix(req.ptr(0), 8)?;
    if hdr.len() < 4 {
        return Err(Errno::FAULT);
    }
    req.check_valid()?;
    let structs = match u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) {
        CAP_V1 => 1,
        CAP_V2 | CAP_V3 => 2,
        _ => {
            req.write(req.ptr(0), &CAP_V3.to_le_bytes())?;
            return Err(Errno::INVAL);
        }
    };
    let pid = hdr.get(4..8).map(|p| i32::from_le_bytes([p[0], p[1], p[2], p[3]]));
    Ok((structs, pid))
}

/// `capset(header, data)`'s header.
pub fn cap_header(req: &Request<'_>) -> Result<CapHeader, Errno> {
    let (structs, pid) = header_parts(req)?;
    Ok(CapHeader { structs, pid: pid.ok_or(Errno::FAULT)? })
}

/// `capget(header, data)`'s header (`kernel/capability.c: capget()`):
/// `None` when there is no data pointer, which only asks for the header
/// (0, even for an unknown version, and the pid is not read); a negative
/// pid is `EINVAL`.
pub fn capget_header(req: &Request<'_>) -> Result<Option<CapHeader>, Errno> {
    let (structs, pid) = match header_parts(req) {
        Err(Errno::INVAL) if req.ptr(1) == 0 => return Ok(None),
        other => other?,
    };
    if req.ptr(1) == 0 {
        return Ok(None);
    }
    match pid.ok_or(Errno::FAULT)? {
        pid if pid < 0 => Err(Errno::INVAL),
        pid => Ok(Some(CapHeader { structs, pid })),
    }
}

/// The effective, permitted and inheritable sets of `capset(header,
/// data)`: `structs` data structs of three 32-bit words each, the low half
/// first, masked to the capabilities the kernel knows (`mk_kernel_cap()`).
pub fn capset_sets(req: &Request<'_>, structs: usize) -> Result<[u64; 3], Errno> {
    let data = req.read_exact(req.ptr(1), 12 * structs)?;
    req.check_valid()?;
    let word = |i: usize| {
        u64::from(u32::from_le_bytes(data[i * 4..i * 4 + 4].try_into().unwrap_or([0; 4])))
    };
    let set =
        |k: usize| (0..structs).fold(0u64, |acc, half| acc | (word(half * 3 + k) << (32 * half)));
    let mask = fr_emulator::creds::CAP_FULL;
    Ok([set(0) & mask, set(1) & mask, set(2) & mask])
}

/// Whether `pid` (in the target's pid namespace) names the caller: 0 or its
/// own thread id there.
fn is_self(req: &Request<'_>, pid: i32) -> bool {
    pid == 0 || crate::procfs::Status::read(req.tid).and_then(|s| s.last("NSpid:")) == Some(pid)
}

/// `capget(header, data)`.
pub fn capget(ctx: &Context, req: &Request<'_>) -> Outcome {
    let Some(CapHeader { structs, pid }) = capget_header(req)? else {
        return Ok(Reply::Value(0));
    };
    if !is_self(req, pid) {
        return Ok(Reply::Continue("capget of another process: the kernel's answer"));
    }
    let c = creds(ctx, req);
    let mut data = Vec::with_capacity(24);
    for half in 0..structs {
        for set in [c.effective, c.permitted, c.inheritable] {
            data.extend_from_slice(&((set >> (32 * half)) as u32).to_le_bytes());
        }
    }
    req.check_valid()?;
    req.write(req.ptr(1), &data)?;
    Ok(Reply::Value(0))
}

/// `capset(header, data)`: only the caller's own sets can change.
pub fn capset(ctx: &Context, req: &Request<'_>) -> Outcome {
    let CapHeader { structs, pid } = cap_header(req)?;
    if !is_self(req, pid) {
        return Err(Errno::PERM);
    }
    let [e, p, i] = capset_sets(req, structs)?;
    change(ctx, req, |c| c.capset(e, p, i), |()| 0)
}

/// A `prctl` option that reads or changes capability state, with its
/// argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prctl {
    GetKeepcaps,
    SetKeepcaps(bool),
    CapbsetRead(u32),
    /// The capability to drop; 64 stands for any beyond the last.
    CapbsetDrop(u32),
    GetSecurebits,
    SetSecurebits(u32),
    /// Another option: the filter notifies none, the kernel answers.
    Other,
}

/// `prctl(option, arg2, ...)` as `security/commoncap.c: cap_task_prctl()`
/// reads the options it handles: `PR_SET_KEEPCAPS` takes 0 or 1 and
/// `PR_CAPBSET_READ` a valid capability (`cap_valid()`), else `EINVAL`;
/// `PR_SET_SECUREBITS` refuses bits it does not know, of the whole
/// `unsigned long` (`EPERM`).
pub fn prctl_args(req: &Request<'_>) -> Result<Prctl, Errno> {
    use crate::linux::{
        PR_CAPBSET_DROP, PR_CAPBSET_READ, PR_GET_KEEPCAPS, PR_GET_SECUREBITS, PR_SET_KEEPCAPS,
        PR_SET_SECUREBITS,
    };
    const CAP_LAST_CAP: u64 = 40;
    let arg = req.ulong(1);
    Ok(match req.int(0) {
        PR_GET_KEEPCAPS => Prctl::GetKeepcaps,
        PR_SET_KEEPCAPS if arg > 1 => return Err(Errno::INVAL),
        PR_SET_KEEPCAPS => Prctl::SetKeepcaps(arg == 1),
        PR_CAPBSET_READ if arg > CAP_LAST_CAP => return Err(Errno::INVAL),
        PR_CAPBSET_READ => Prctl::CapbsetRead(arg as u32),
        PR_CAPBSET_DROP => Prctl::CapbsetDrop(arg.min(64) as u32),
        PR_GET_SECUREBITS => Prctl::GetSecurebits,
        PR_SET_SECUREBITS if arg > u64::from(u32::MAX) => return Err(Errno::PERM),
        PR_SET_SECUREBITS => Prctl::SetSecurebits(arg as u32),
        _ => Prctl::Other,
    })
}

/// `prctl(option, ...)` for the options that read or change capability
/// state; the filter notifies no other option.
pub fn prctl(ctx: &Context, req: &Request<'_>) -> Outcome {
    match prctl_args(req)? {
        Prctl::GetKeepcaps => Ok(Reply::Value(i64::from(
            creds(ctx, req).securebits & fr_emulator::creds::SECBIT_KEEP_CAPS != 0,
        ))),
        Prctl::SetKeepcaps(on) => change(ctx, req, |c| c.set_keepcaps(on), |()| 0),
        Prctl::CapbsetRead(cap) => {
            Ok(Reply::Value(i64::from(creds(ctx, req).bounding & (1 << cap) != 0)))
        }
        Prctl::CapbsetDrop(cap) => change(ctx, req, |c| c.drop_bounding(cap), |()| 0),
        Prctl::GetSecurebits => Ok(Reply::Value(i64::from(creds(ctx, req).securebits))),
        Prctl::SetSecurebits(bits) => change(ctx, req, |c| c.set_securebits(bits), |()| 0),
        Prctl::Other => Ok(Reply::Continue("a prctl option without capability state")),
    }
}

/// The credential changes of executing the file `file` (a set-user-id or
/// set-group-id program, root's capabilities); the kernel then runs the
/// exec itself. A thread other than the leader that executes becomes the
/// leader (`fs/exec.c: de_thread()`), so the leader's tid gets the result.
fn exec_file(ctx: &Context, req: &Request<'_>, file: Option<std::os::fd::OwnedFd>) -> Outcome {
    let view = file.and_then(|f| {
        let (key, real) = real_stat(f.as_fd(), AtFlags::empty(), StatxFlags::BASIC_STATS).ok()?;
        let view = ctx.inodes.view(key, real.attrs());
        kernel_setid(ctx, f.as_fd(), key, &real, &view);
        Some(view)
    });
    let setuid = view.filter(|v| v.mode & S_ISUID != 0).map(|v| v.uid);
    let setgid = view.filter(|v| v.mode & S_ISGID != 0 && v.mode & S_IXGRP != 0).map(|v| v.gid);
    let mut after = ctx.creds.get(req.tid);
    after.exec(setuid, setgid);
    ctx.creds.exec_pending(req, leader(req), after)?;
    Ok(Reply::Continue("the kernel runs the exec; its credentials count once it has happened"))
}

/// Subuid mode: a program whose record has set-user-id or set-group-id
/// bits the real file lacks (a chown clears them for real, the record
/// keeps real root's mode) gets them back for real before the kernel
/// runs it, where the kernel holds the owner the record has: the kernel's
/// exec then changes the thread's ids as fr's does, and the two stay
/// alike ([`change`]). Otherwise (an owner beyond the ranges) only fr's
/// credentials change, and the kernel goes on checking the ids before.
fn kernel_setid(
    ctx: &Context,
    file: std::os::fd::BorrowedFd<'_>,
    key: fr_emulator::InodeKey,
    real: &fr_emulator::Kstat,
    view: &fr_emulator::Attrs,
) {
    let want = view.mode & (S_ISUID | S_ISGID);
    let ids = ctx.inodes.ids();
    if ctx.namespace != crate::Namespace::Subuid
        || want & !real.mode == 0
        || ids.uid_inside(real.uid) != view.uid
        || ids.gid_inside(real.gid) != view.gid
        || !ctx.may_chmod_for_real(key, real)
    {
        return;
    }
    if let Err(e) = super::host::chmod_real(file, (real.mode & 0o7777) | want) {
        log::debug!("the kernel runs the program without its set-id bits: {e}");
    }
}

fn leader(req: &Request<'_>) -> Option<i32> {
    let tgid = crate::procfs::Status::read(req.tid)?.last("Tgid:")?;
    (tgid != req.tid).then_some(tgid)
}

/// `execve(path, argv, envp)`.
pub fn execve(ctx: &Context, req: &Request<'_>) -> Outcome {
    let file = read_plain_path(req, req.ptr(0)).ok().and_then(|p| {
        ctx.lookup(req, AT_FDCWD, &p, LookupFlags { follow: true, empty_path: false }).ok()
    });
    exec_file(ctx, req, file)
}

/// `execveat(dirfd, path, argv, envp, flags)`.
pub fn execveat(ctx: &Context, req: &Request<'_>) -> Outcome {
    let file = at_file(ctx, req, req.int(0), req.ptr(1), req.int(4)).ok();
    exec_file(ctx, req, file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::request::fake::Memory;

    fn req(mem: &Memory, arch: Arch, args: [u64; 6]) -> Request<'_> {
        Request::over(mem, arch, 0, args)
    }

    fn header(version: u32, pid: i32) -> Vec<u8> {
        [version.to_le_bytes(), pid.to_le_bytes()].concat()
    }

    #[test]
    fn ids_are_written_only_into_a_target_that_still_waits() {
        let args = [0x1000, 0x1004, 0x1008, 0, 0, 0];
        let alive = Memory::new().put(0x1000, &[0; 12]);
        let req = Request::over(&alive, Arch::X86_64, 118, args);
        assert!(matches!(write_three(&req, [1, 2, 3], W32), Ok(Reply::Value(0))));
        assert_eq!(alive.get(0x1004, 4), [2, 0, 0, 0].map(Some).to_vec());
        // S12: a pid that now names another process gets nothing (the fake
        // panics on a write into it).
        let replaced = Memory::new().put(0x1000, &[0; 12]).replaced();
        let req = Request::over(&replaced, Arch::X86_64, 118, args);
        assert!(matches!(write_three(&req, [1, 2, 3], W32), Err(Errno::NOENT)));
    }

    #[test]
    fn ids_are_the_low_halves_and_16_bit_minus_one_is_minus_one() {
        let mem = Memory::new();
        let args = [0x1_0000_0005, 0xffff, 0x1_ffff_ffff, 0, 0, 0];
        let r = req(&mem, Arch::I386, args);
        assert_eq!(ids::<3>(&r, W32), [5, 0xffff, u32::MAX]);
        assert_eq!(ids::<3>(&r, W16), [5, u32::MAX, u32::MAX]);
        assert_eq!(ids::<1>(&req(&mem, Arch::I386, [0x2_fffe, 0, 0, 0, 0, 0]), W16), [0xfffe]);
    }

    #[test]
    fn group_lists_are_read_in_their_width_up_to_ngroups_max() {
        let mem = Memory::new().put(0x1000, &[1, 0, 0, 0, 2, 0, 0, 0]);
        let list = |size: u64, width| {
            setgroups_list(&req(&mem, Arch::I386, [size, 0x1000, 0, 0, 0, 0]), width)
        };
        assert_eq!(list(2, W32), Ok(vec![1, 2]));
        assert_eq!(list(4, W16), Ok(vec![1, 0, 2, 0]));
        assert_eq!(list(3, W32), Err(Errno::FAULT));
        assert_eq!(list(0, W32), Ok(vec![]));
        assert_eq!(list(65537, W32), Err(Errno::INVAL));
        assert_eq!(list(0xffff_ffff, W32), Err(Errno::INVAL));
        let gone = Memory::new().put(0x1000, &[0; 8]).replaced();
        let r = req(&gone, Arch::X86_64, [2, 0x1000, 0, 0, 0, 0]);
        assert_eq!(setgroups_list(&r, W32), Err(Errno::NOENT));
    }

    #[test]
    fn a_group_of_minus_one_is_einval_unless_a_fault_comes_first() {
        // kernel/groups.c: groups_from_user() takes each id in turn:
        // get_user() (EFAULT), then make_kgid() (-1 is no id: EINVAL).
        let mem = Memory::new().put(0x1000, &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        let list = |size: u64, addr: u64, width| {
            setgroups_list(&req(&mem, Arch::X86_64, [size, addr, 0, 0, 0, 0]), width)
        };
        assert_eq!(list(2, 0x1000, W32), Err(Errno::INVAL));
        assert_eq!(list(3, 0x1000, W32), Err(Errno::INVAL));
        // In 16 bits (old_gid_t)-1 is -1 too.
        assert_eq!(list(4, 0x1000, W16), Err(Errno::INVAL));
        assert_eq!(list(2, 0x0ffc, W32), Err(Errno::FAULT));
    }

    #[test]
    fn getgroups_size_is_a_nonnegative_int() {
        let mem = Memory::new();
        let args = |size: u64| getgroups_args(&req(&mem, Arch::X86_64, [size, 0x1000, 0, 0, 0, 0]));
        assert_eq!(args(0x1_0000_0003), Ok(GetGroups { size: 3, list: 0x1000 }));
        assert_eq!(args(0xffff_ffff), Err(Errno::INVAL));
    }

    #[test]
    fn capability_headers_name_their_number_of_structs() {
        let mem = Memory::new()
            .put(0x1000, &header(CAP_V1, 0))
            .put(0x2000, &header(CAP_V3, 7))
            .put(0x3000, &header(CAP_V2, -1));
        let hdr = |addr: u64| cap_header(&req(&mem, Arch::X86_64, [addr, 0x8000, 0, 0, 0, 0]));
        assert_eq!(hdr(0x1000), Ok(CapHeader { structs: 1, pid: 0 }));
        assert_eq!(hdr(0x2000), Ok(CapHeader { structs: 2, pid: 7 }));
        assert_eq!(hdr(0x9000), Err(Errno::FAULT));
        let get = |addr: u64, data: u64| {
            capget_header(&req(&mem, Arch::X86_64, [addr, data, 0, 0, 0, 0]))
        };
        assert_eq!(get(0x3000, 0x8000), Err(Errno::INVAL));
        assert_eq!(get(0x3000, 0), Ok(None));
        assert_eq!(get(0x9000, 0), Err(Errno::FAULT));
    }

    #[test]
    fn an_unknown_version_is_answered_with_the_preferred_one() {
        let mem = Memory::new().put(0x1000, &header(1, 0)).put_ro(0x2000, &header(1, 0));
        assert_eq!(
            cap_header(&req(&mem, Arch::X86_64, [0x1000, 0, 0, 0, 0, 0])),
            Err(Errno::INVAL)
        );
        assert_eq!(mem.get(0x1000, 4), CAP_V3.to_le_bytes().map(Some).to_vec());
        // capget(hdr, NULL) only asks for it: 0.
        let mem = Memory::new().put(0x1000, &header(1, 0));
        assert_eq!(capget_header(&req(&mem, Arch::X86_64, [0x1000, 0, 0, 0, 0, 0])), Ok(None));
        assert_eq!(mem.get(0x1000, 4), CAP_V3.to_le_bytes().map(Some).to_vec());
        // A header that cannot take the answer is EFAULT, even for capget.
        let mem = Memory::new().put_ro(0x2000, &header(1, 0));
        assert_eq!(
            capget_header(&req(&mem, Arch::X86_64, [0x2000, 0, 0, 0, 0, 0])),
            Err(Errno::FAULT)
        );
        // Nothing is written to a target that no longer waits.
        let gone = Memory::new().put(0x1000, &header(1, 0)).replaced();
        assert_eq!(
            cap_header(&req(&gone, Arch::X86_64, [0x1000, 0, 0, 0, 0, 0])),
            Err(Errno::NOENT)
        );
    }

    #[test]
    fn the_version_is_read_alone_and_the_pid_only_when_needed() {
        // kernel/capability.c: cap_validate_magic() get_user()s the version;
        // the pid is get_user()'d after it, and capget without data never
        // reads it. Here the pid is beyond the readable memory.
        let mem = Memory::new().put(0x1ffc, &CAP_V3.to_le_bytes()).put(0x3ffc, &1u32.to_le_bytes());
        let call = |hdr: u64, data: u64| req(&mem, Arch::X86_64, [hdr, data, 0, 0, 0, 0]).args;
        assert_eq!(capget_header(&Request::over(&mem, Arch::X86_64, 0, call(0x1ffc, 0))), Ok(None));
        assert_eq!(
            capget_header(&Request::over(&mem, Arch::X86_64, 0, call(0x1ffc, 0x8000))),
            Err(Errno::FAULT)
        );
        assert_eq!(
            cap_header(&Request::over(&mem, Arch::X86_64, 0, call(0x1ffc, 0))),
            Err(Errno::FAULT)
        );
        // An unknown version is answered whatever follows it.
        assert_eq!(
            cap_header(&Request::over(&mem, Arch::X86_64, 0, call(0x3ffc, 0))),
            Err(Errno::INVAL)
        );
        assert_eq!(mem.get(0x3ffc, 4), CAP_V3.to_le_bytes().map(Some).to_vec());
    }

    #[test]
    fn capset_data_is_joined_low_word_first_and_masked() {
        let words: Vec<u8> =
            [1u32, 2, 3, 0xffff_ffff, 0, 0x100].iter().flat_map(|w| w.to_le_bytes()).collect();
        let mem = Memory::new().put(0x1000, &words);
        let sets =
            |structs| capset_sets(&req(&mem, Arch::X86_64, [0, 0x1000, 0, 0, 0, 0]), structs);
        assert_eq!(sets(1), Ok([1, 2, 3]));
        assert_eq!(sets(2), Ok([1 | 0x1ff << 32, 2, 3 | 0x100 << 32]));
        let short = Memory::new().put(0x1000, &words[..20]);
        assert_eq!(
            capset_sets(&req(&short, Arch::X86_64, [0, 0x1000, 0, 0, 0, 0]), 2),
            Err(Errno::FAULT)
        );
    }

    #[test]
    fn prctl_options_take_their_argument_as_the_kernel_does() {
        let mem = Memory::new();
        let p =
            |arch, option: u64, arg: u64| prctl_args(&req(&mem, arch, [option, arg, 0, 0, 0, 0]));
        assert_eq!(p(Arch::X86_64, 8, 1), Ok(Prctl::SetKeepcaps(true)));
        assert_eq!(p(Arch::X86_64, 8, 2), Err(Errno::INVAL));
        assert_eq!(p(Arch::X86_64, 8, 1 << 32), Err(Errno::INVAL));
        assert_eq!(p(Arch::I386, 8, 1 << 32), Ok(Prctl::SetKeepcaps(false)));
        assert_eq!(p(Arch::X86_64, 23, 40), Ok(Prctl::CapbsetRead(40)));
        assert_eq!(p(Arch::X86_64, 23, 41), Err(Errno::INVAL));
        assert_eq!(p(Arch::X86_64, 24, 1 << 40), Ok(Prctl::CapbsetDrop(64)));
        assert_eq!(p(Arch::X86_64, 28, 0x2f), Ok(Prctl::SetSecurebits(0x2f)));
        assert_eq!(p(Arch::X86_64, 0x1_0000_0007, 0), Ok(Prctl::GetKeepcaps));
        assert_eq!(p(Arch::X86_64, 4, 0), Ok(Prctl::Other));
    }

    #[test]
    fn securebits_beyond_32_bits_are_eperm() {
        // security/commoncap.c: cap_task_prctl() refuses bits beyond
        // SECURE_ALL_LOCKS | SECURE_ALL_BITS of the unsigned long (EPERM).
        let mem = Memory::new();
        let p = |arch, arg: u64| prctl_args(&req(&mem, arch, [28, arg, 0, 0, 0, 0]));
        assert_eq!(p(Arch::X86_64, 1 << 32 | 1), Err(Errno::PERM));
        assert_eq!(p(Arch::I386, 1 << 32 | 1), Ok(Prctl::SetSecurebits(1)));
    }
}
