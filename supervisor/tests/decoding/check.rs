//! One notification through `Arch::from_seccomp`, `Dispatch::find` and the
//! decoders of the call it names, each result compared with the kernel's
//! reading ([`super::kernel`]) of the same registers and memory.
//!
//! What must hold, whatever the input:
//! - the ABI and the table entry are the kernel's and the table's;
//! - while the target waits and can be read, each decoder gives exactly the
//!   kernel's values or errno (paths are the bytes before the NUL, `EFAULT`
//!   when a byte before it cannot be read, `ENAMETOOLONG` without a NUL in
//!   4096 bytes; xattr names, values, `xattr_args`, capability headers and
//!   data, group lists, `open_how`, 16-bit ids, flags);
//! - a target that is gone makes a decoder that reads it fail with
//!   `ENOENT`, one that may not be read noted as `Unreachable`, and a decoder
//!   that asks whether the call still waits fails with `ENOENT` when it
//!   does not; nothing is written after that ([`super::fake`] checks);
//! - what is decoded stays within the kernel's limits (`XATTR_NAME_MAX`,
//!   `XATTR_SIZE_MAX`, `NGROUPS_MAX`);
//! - i386 sees only the low half of each register: other high halves
//!   decode the same.
//!
//! Nothing here touches the host: the decoders are called, never the
//! handlers.

use std::fmt::Debug;

use fr_supervisor::arch::Arch;
use fr_supervisor::handlers::{
    self, access, create, ident, node, owner, remove, stat, xattr, Decoded, Width,
};
use fr_supervisor::request::{Request, Unreachable};
use fr_supervisor::resolve::LookupFlags;
use fr_supervisor::table::Dispatch;
use rustix::io::Errno;

use super::fake::{Fake, Pages};
use super::input::{bound, Call, Case};
use super::kernel::{self as k, Regs};

fn dispatch() -> &'static Dispatch {
    static DISPATCH: std::sync::OnceLock<Dispatch> = std::sync::OnceLock::new();
    DISPATCH.get_or_init(|| Dispatch::new(bound()))
}

/// Runs `case`; panics with what differs. Returns what was decoded, in
/// words.
pub fn run(case: &Case) -> Vec<String> {
    let (audit, nr) = case.seccomp();
    let abi = Arch::from_seccomp(audit, nr);
    assert_eq!(abi, k::abi(audit, nr), "the ABI of audit arch {audit:#x}, number {nr:#x}");
    let Some((arch, nr)) = abi else { return vec!["no ABI of fr's".into()] };
    let found = dispatch().find(arch, nr);
    if let Call::Table(i) = case.call {
        let b = &bound()[i];
        assert!(
            found.is_some_and(|s| std::ptr::eq(s, b.syscall)),
            "{} on {} (number {nr}) finds {:?}",
            b.syscall.name,
            arch.name(),
            found.map(|s| s.name)
        );
    }
    let Some(syscall) = found else { return vec!["not in fr's table".into()] };
    let transcript = decode(syscall.name, arch, nr, case.args, case);
    if arch == Arch::I386 {
        let mut high = case.args;
        for (i, a) in high.iter_mut().enumerate() {
            *a ^= 0x5a5a_0000_0000_u64.wrapping_mul(i as u64 + 1) | 1 << 63;
        }
        let other = decode(syscall.name, arch, nr, high, case);
        assert_eq!(transcript, other, "{}: i386 decoded the registers' high halves", syscall.name);
    }
    transcript
}

/// Decodes one call as its handler would, checking each step; returns
/// what was decoded, and written, in words.
fn decode(name: &'static str, arch: Arch, nr: i32, args: [u64; 6], case: &Case) -> Vec<String> {
    let fake = Fake::new(case.pages(arch), case.fate);
    let req = Request::over(&fake, arch, nr, args);
    let r = Regs { arch, args };
    let mut c = Check { name, fake: &fake, req: &req, r, memory: Pages::new(), said: Vec::new() };
    c.call();
    c.said.push(format!("writes {:?}", fake.writes.borrow()));
    c.said
}

struct Check<'a> {
    name: &'static str,
    fake: &'a Fake,
    req: &'a Request<'a>,
    r: Regs,
    /// The memory before the last decoder ran.
    memory: Pages,
    said: Vec<String>,
}

/// A decoded value as the model has it: the arguments, or `None` when the
/// call is left to the kernel.
fn args<T>(d: Decoded<T>) -> Option<T> {
    match d {
        Decoded::Args(a) => Some(a),
        Decoded::Kernel(_) => None,
    }
}

fn lookup(flags: i32) -> LookupFlags {
    LookupFlags {
        follow: flags & k::AT_SYMLINK_NOFOLLOW == 0,
        empty_path: flags & k::AT_EMPTY_PATH != 0,
    }
}

impl Check<'_> {
    /// Runs the decoder `fr` and compares its answer with the kernel's,
    /// `model`, of the memory as it was before, unless the target failed
    /// it on the way: then the answer must be the one for that failure.
    /// Returns fr's value.
    fn expect<T: PartialEq + Debug>(
        &mut self,
        what: &str,
        fr: impl FnOnce(&Request<'_>) -> Result<T, Errno>,
        model: impl FnOnce(&Pages, &Regs) -> Result<T, Errno>,
    ) -> Option<T> {
        let before = self.fake.seen();
        self.memory = self.fake.pages.borrow().clone();
        let got = fr(self.req);
        let after = self.fake.seen();
        let ctx =
            || format!("{} on {}: {what} ({:x?})", self.name, self.r.arch.name(), self.r.args);
        if after.gone > before.gone || after.not_waiting > before.not_waiting {
            assert_eq!(got, Err(Errno::NOENT), "{}: the target went away", ctx());
        } else if after.refused > before.refused {
            assert!(got.is_err(), "{}: a refused read must fail the decoder", ctx());
            assert_eq!(self.req.unreachable(), Some(Unreachable { tid: 0 }), "{}", ctx());
        } else {
            assert_eq!(got, model(&self.memory, &self.r), "{}", ctx());
        }
        self.said.push(format!("{what}: {got:?}"));
        got.ok()
    }

    fn path(&mut self, i: usize) -> Option<Vec<u8>> {
        self.expect(
            "path",
            |req| handlers::read_plain_path(req, req.ptr(i)),
            |p, r| k::plain_path(p, r.ptr(i)),
        )
    }

    fn name(&mut self, i: usize, flags: i32) -> Option<Option<Vec<u8>>> {
        self.expect(
            "name",
            |req| handlers::read_name(req, req.ptr(i), flags),
            |p, r| k::getname(p, r.ptr(i), flags),
        )
    }

    fn name_maybe_null(&mut self, i: usize, flags: i32) -> Option<Option<Vec<u8>>> {
        self.expect(
            "name or NULL",
            |req| handlers::read_name_maybe_null(req, req.ptr(i), flags),
            |p, r| k::getname_maybe_null(p, r.ptr(i), flags),
        )
    }

    /// `fchownat`, `fchmodat2`, `execveat`: flags, then the name.
    fn at_name(&mut self, i: usize, flags: usize) {
        self.expect(
            "at name",
            |req| handlers::at_name(req, req.ptr(i), req.int(flags)),
            |p, r| {
                let f = r.int(flags);
                if f & !(k::AT_SYMLINK_NOFOLLOW | k::AT_EMPTY_PATH) != 0 {
                    return Err(Errno::INVAL);
                }
                Ok((k::getname(p, r.ptr(i), f)?.unwrap_or_default(), lookup(f)))
            },
        );
    }

    fn width(&self) -> Width {
        if self.r.arch == Arch::I386 && !self.name.ends_with("32") {
            Width::W16
        } else {
            Width::W32
        }
    }

    /// The ids of a set*id call or a chown as the kernel widens them.
    fn kernel_id(&self, i: usize) -> u32 {
        match self.width() {
            Width::W16 => k::id16(self.r.uint(i)),
            Width::W32 => self.r.uint(i),
        }
    }

    fn owner(&mut self, first: usize) {
        let width = self.width();
        let got = owner::new_owner(self.req, first, width);
        let id = |i| Some(self.kernel_id(i)).filter(|&v| v != u32::MAX);
        assert_eq!(got, (id(first), id(first + 1)), "{}: owner", self.name);
        self.said.push(format!("owner: {got:?}"));
    }

    fn ids<const N: usize>(&mut self) {
        let got: [u32; N] = ident::ids(self.req, self.width());
        let want: [u32; N] = std::array::from_fn(|i| self.kernel_id(i));
        assert_eq!(got, want, "{}: ids", self.name);
        if self.width() == Width::W16 {
            assert!(
                got.iter().all(|&id| id <= 0xfffe || id == u32::MAX),
                "{}: 16-bit ids",
                self.name
            );
        }
        self.said.push(format!("ids: {got:?}"));
    }

    fn xattr_name_limits(&self, name: &[u8]) {
        assert!(
            (1..=k::XATTR_NAME_MAX).contains(&name.len()),
            "{}: name of {} bytes",
            self.name,
            name.len()
        );
    }

    fn setxattr(&mut self, at: bool) {
        let set = |req: &Request<'_>| -> Result<_, Errno> {
            let (file, set) = if at {
                let (file, set) = xattr::setxattrat_args(req)?;
                (Some(file), set)
            } else {
                (None, xattr::setxattr_args(req)?)
            };
            Ok((file, args(set).map(|s| (s.name, s.value, s.flags))))
        };
        let model = |p: &Pages, r: &Regs| {
            if at {
                let (value, size, flags) = k::xattr_args(p, r)?;
                let file = k::xattrat_flags(r)?;
                let file = xattr::File::At { dirfd: r.int(0), addr: r.ptr(1), flags: file };
                Ok((Some(file), k::setxattr_copy(p, r.ptr(3), value, size, flags)?))
            } else {
                Ok((None, k::setxattr_copy(p, r.ptr(1), r.ptr(2), r.ulong(3), r.uint(4))?))
            }
        };
        if let Some((file, Some((name, value, _)))) = self.expect("setxattr args", set, model) {
            self.xattr_name_limits(&name);
            assert!(
                value.len() <= k::XATTR_SIZE_MAX,
                "{}: value of {} bytes",
                self.name,
                value.len()
            );
            self.file(file);
        }
    }

    fn getxattr(&mut self, at: bool) {
        let get = |req: &Request<'_>| -> Result<_, Errno> {
            let (file, get) = if at {
                let (file, get) = xattr::getxattrat_args(req)?;
                (Some(file), get)
            } else {
                (None, xattr::getxattr_args(req)?)
            };
            Ok((file, args(get).map(|g| (g.name, g.value, g.size as u64))))
        };
        let model = |p: &Pages, r: &Regs| {
            let (file, name, value, size) = if at {
                let (value, size, flags) = k::xattr_args(p, r)?;
                if flags != 0 {
                    return Err(Errno::INVAL);
                }
                let f = k::xattrat_flags(r)?;
                (
                    Some(xattr::File::At { dirfd: r.int(0), addr: r.ptr(1), flags: f }),
                    r.ptr(3),
                    value,
                    size,
                )
            } else {
                (None, r.ptr(1), r.ptr(2), r.ulong(3))
            };
            let name = k::xattr_name(p, name)?;
            Ok((file, k::xattr_kept(&name).then_some((name, value, size))))
        };
        if let Some((file, Some((name, _, _)))) = self.expect("getxattr args", get, model) {
            self.xattr_name_limits(&name);
            self.file(file);
        }
    }

    fn removexattr(&mut self, at: bool) {
        let remove = |req: &Request<'_>| -> Result<_, Errno> {
            let (file, name) = if at {
                let (file, name) = xattr::removexattrat_args(req)?;
                (Some(file), name)
            } else {
                (None, xattr::removexattr_args(req)?)
            };
            Ok((file, args(name)))
        };
        let model = |p: &Pages, r: &Regs| {
            let (file, name) = if at {
                let f = k::xattrat_flags(r)?;
                (Some(xattr::File::At { dirfd: r.int(0), addr: r.ptr(1), flags: f }), r.ptr(3))
            } else {
                (None, r.ptr(1))
            };
            let name = k::xattr_name(p, name)?;
            Ok((file, k::xattr_kept(&name).then_some(name)))
        };
        if let Some((file, Some(name))) = self.expect("removexattr args", remove, model) {
            self.xattr_name_limits(&name);
            self.file(file);
        }
    }

    fn listxattr(&mut self, at: bool) {
        if at {
            let got = xattr::listxattrat_args(self.req);
            let want = k::xattrat_flags(&self.r).map(|f| {
                let file = xattr::File::At { dirfd: self.r.int(0), addr: self.r.ptr(1), flags: f };
                (file, xattr::List { addr: self.r.ptr(3), size: self.r.ulong(4) as usize })
            });
            assert_eq!(got, want, "{}: listxattrat args", self.name);
            if let Ok((file, _)) = got {
                self.file(Some(file));
            }
        } else {
            let got = xattr::listxattr_args(self.req);
            assert_eq!(got, xattr::List { addr: self.r.ptr(1), size: self.r.ulong(2) as usize });
            self.said.push(format!("list: {got:?}"));
        }
    }

    /// The `*xattrat` calls' path, read after the attribute's arguments
    /// when fr keeps the attribute.
    fn file(&mut self, file: Option<xattr::File>) {
        if let Some(xattr::File::At { addr, flags, .. }) = file {
            assert_eq!(addr, self.r.ptr(1), "{}: the path is argument 1", self.name);
            self.name_maybe_null(1, flags);
        }
    }

    fn opening(&mut self, flags: usize, mode: usize) {
        let got = args(create::opening(self.r.uint(flags), self.r.uint(mode)));
        let want =
            k::open_makes(u64::from(self.r.uint(flags)), u64::from(self.r.uint(mode)), false);
        assert_eq!(got.map(made), want, "{}: what the open makes", self.name);
        self.said.push(format!("opening: {got:?}"));
    }

    fn open_how(&mut self) {
        self.expect(
            "open_how",
            |req| {
                Ok(args(create::open_how(req)?)
                    .and_then(|how| args(create::opening(how.flags, how.mode)))
                    .map(made))
            },
            |p, r| Ok(k::open_how(p, r)),
        );
    }

    fn capget(&mut self) {
        self.expect(
            "capget header",
            |req| ident::capget_header(req).map(|h| h.map(|h| (h.structs, h.pid))),
            |p, r| k::capget(p, r, &mut |addr, bytes| writable(p, addr, bytes.len())),
        );
        self.only_the_version_written();
    }

    fn capset(&mut self) {
        let got = self.expect(
            "capset header",
            |req| ident::cap_header(req).map(|h| (h.structs, h.pid)),
            |p, r| {
                let tocopy =
                    k::cap_validate_magic(p, r.ptr(0), &mut |a, b| writable(p, a, b.len()))?;
                Ok((tocopy, k::cap_pid(p, r.ptr(0))?))
            },
        );
        self.only_the_version_written();
        // Another pid is the host's to look up (/proc); only the caller's own
        // data is read here.
        if let Some((structs, 0)) = got {
            let sets = self.expect(
                "capset data",
                |req| ident::capset_sets(req, structs),
                |p, r| k::capset_data(p, r.ptr(1), structs),
            );
            if let Some(sets) = sets {
                assert!(
                    sets.iter().all(|s| s & !k::CAP_VALID_MASK == 0),
                    "{}: invalid capabilities",
                    self.name
                );
            }
        }
    }

    /// Decoding a capability header writes the preferred version into it
    /// when the version it holds is unknown, while the target waits, and
    /// nothing else.
    fn only_the_version_written(&self) {
        let writes = self.fake.writes.borrow();
        let header = self.r.ptr(0);
        let unknown = k::copy(&self.memory, header, 4).is_ok_and(|v| {
            ![k::CAP_V1, k::CAP_V2, k::CAP_V3].contains(&u32::from_le_bytes(v.try_into().unwrap()))
        });
        let seen = self.fake.seen();
        let answered = writes
            .iter()
            .any(|(a, b)| (*a, b.as_slice()) == (header, &k::CAP_V3.to_le_bytes()[..]));
        assert!(writes.len() <= 1, "{}: writes {writes:?}", self.name);
        if seen.gone + seen.refused + seen.not_waiting == 0 {
            assert_eq!(answered, unknown, "{}: the preferred version written", self.name);
        }
        assert!(writes.is_empty() || answered, "{}: writes {writes:?}", self.name);
    }

    fn setgroups(&mut self) {
        let width = self.width();
        let got = self.expect(
            "setgroups list",
            |req| ident::setgroups_list(req, width),
            |p, r| k::setgroups(p, r, width == Width::W32),
        );
        if let Some(groups) = got {
            assert!(groups.len() <= k::NGROUPS_MAX, "{}: {} groups", self.name, groups.len());
        }
    }

    fn getgroups(&mut self) {
        let got = ident::getgroups_args(self.req);
        let size = self.r.int(0);
        let want = if size < 0 {
            Err(Errno::INVAL)
        } else {
            Ok(ident::GetGroups { size: size as usize, list: self.r.ptr(1) })
        };
        assert_eq!(got, want, "{}: getgroups args", self.name);
    }

    fn prctl(&mut self) {
        let got = ident::prctl_args(self.req);
        let arg = self.r.ulong(1);
        // security/commoncap.c: cap_task_prctl().
        let want = match self.r.int(0) {
            7 => Ok(ident::Prctl::GetKeepcaps),
            8 if arg > 1 => Err(Errno::INVAL),
            8 => Ok(ident::Prctl::SetKeepcaps(arg == 1)),
            23 if arg > 40 => Err(Errno::INVAL),
            23 => Ok(ident::Prctl::CapbsetRead(arg as u32)),
            24 => Ok(ident::Prctl::CapbsetDrop(arg.min(64) as u32)),
            27 => Ok(ident::Prctl::GetSecurebits),
            // Bits beyond the known ones, the high half included, are EPERM.
            28 if arg > u64::from(u32::MAX) => Err(Errno::PERM),
            28 => Ok(ident::Prctl::SetSecurebits(arg as u32)),
            _ => Ok(ident::Prctl::Other),
        };
        assert_eq!(got, want, "{}: prctl({}, {arg:#x})", self.name, self.r.int(0));
        self.said.push(format!("prctl: {got:?}"));
    }

    /// `newfstatat`, `fstatat64` and `statx`: the file, named at argument
    /// 1 from the descriptor at 0 with the flags at `flags`.
    fn stat_at(&mut self, flags: usize) {
        self.expect(
            "stat file",
            |req| stat::stat_at_file(req, req.int(0), req.ptr(1), req.int(flags)),
            |p, r| {
                let f = r.int(flags);
                Ok(match k::stat_at(p, r.int(0), r.ptr(1), f)? {
                    Err(fd) => stat::StatFile::Fd(fd),
                    Ok(path) => stat::StatFile::Path { dirfd: r.int(0), path, how: lookup(f) },
                })
            },
        );
    }

    /// `statx`: the mask and sync type first (`do_statx()`), then the file.
    fn statx(&mut self) {
        let (f, mask) = (self.r.int(2), self.r.uint(3));
        let got = stat::statx_how(f, mask).map(|h| (h.sync.bits(), h.mask.bits(), h.how));
        let want = if mask & 0x8000_0000 != 0 || f & 0x6000 == 0x6000 || f & !k::STAT_FLAGS != 0 {
            Err(Errno::INVAL)
        } else {
            Ok(((f & 0x6000) as u32, mask & !0x4000_0000, lookup(f)))
        };
        assert_eq!(got, want, "{}: statx flags and mask", self.name);
        if got.is_ok() {
            self.stat_at(2);
        }
    }

    fn mknod(&mut self, mode: usize, path: usize) {
        let m = self.r.uint(mode);
        let got = node::node_kind(m);
        // fs/namei.c: may_mknod().
        let want = match m & 0o170_000 {
            0 => Ok(0o100_000),
            0o040_000 => Err(Errno::PERM),
            t @ (0o020_000 | 0o060_000 | 0o100_000 | 0o010_000 | 0o140_000) => Ok(t),
            _ => Err(Errno::INVAL),
        };
        assert_eq!(got, want, "{}: mknod type", self.name);
        if got.is_ok() {
            self.path(path);
        }
    }

    fn linkat(&mut self) {
        let f = self.r.int(4);
        let got = args(create::link_how(f));
        let how = LookupFlags { follow: f & 0x400 != 0, empty_path: f & k::AT_EMPTY_PATH != 0 };
        let want = (f & !(0x400 | k::AT_EMPTY_PATH) == 0).then_some(how);
        assert_eq!(got, want, "{}: linkat flags", self.name);
        if got.is_some() {
            self.name(1, f);
            self.path(3);
        }
    }

    fn renameat2(&mut self) {
        let f = self.r.uint(4);
        let got = args(remove::rename_flags(f));
        let valid = f & !7 == 0 && !(f & 2 != 0 && f & 5 != 0);
        assert_eq!(got, valid.then_some(f), "{}: renameat2 flags", self.name);
        if valid {
            self.path(1);
            self.path(3);
        }
    }

    fn unlinkat(&mut self) {
        let f = self.r.int(2);
        let got = remove::unlink_flags(f);
        assert_eq!(got, if f & !0x200 != 0 { Err(Errno::INVAL) } else { Ok(f) }, "{}", self.name);
        if got.is_ok() {
            self.path(1);
        }
    }

    /// The decoding of each call fr intercepts, in its handler's order.
    fn call(&mut self) {
        match self.name {
            "chown" | "lchown" | "chown32" | "lchown32" => {
                self.path(0);
                self.owner(1);
            }
            "fchown" | "fchown32" => self.owner(1),
            "fchownat" => {
                self.at_name(1, 4);
                self.owner(2);
            }
            "stat" | "lstat" | "stat64" | "lstat64" | "chmod" | "mkdir" | "unlink" | "rmdir"
            | "execve" => {
                self.path(0);
            }
            "fstat" | "fstat64" | "fchmod" => {}
            "newfstatat" | "fstatat64" => self.stat_at(3),
            "statx" => self.statx(),
            "fchmodat" | "mkdirat" => {
                self.path(1);
            }
            "fchmodat2" => self.at_name(1, 3),
            "execveat" => self.at_name(1, 4),
            "open" => {
                self.opening(1, 2);
                self.path(0);
            }
            "openat" => {
                self.opening(2, 3);
                self.path(1);
            }
            "creat" => {
                self.path(0);
            }
            "openat2" => {
                self.open_how();
                self.path(1);
            }
            "symlink" | "rename" | "link" => {
                self.path(0);
                self.path(1);
            }
            "symlinkat" => {
                self.path(0);
                self.path(2);
            }
            "renameat" => {
                self.path(1);
                self.path(3);
            }
            "renameat2" => self.renameat2(),
            "linkat" => self.linkat(),
            "unlinkat" => self.unlinkat(),
            "mknod" => self.mknod(1, 0),
            "mknodat" => self.mknod(2, 1),
            "setxattr" | "lsetxattr" => {
                self.setxattr(false);
                self.path(0);
            }
            "fsetxattr" => self.setxattr(false),
            "getxattr" | "lgetxattr" => {
                self.getxattr(false);
                self.path(0);
            }
            "fgetxattr" => self.getxattr(false),
            "listxattr" | "llistxattr" => {
                self.listxattr(false);
                self.path(0);
            }
            "flistxattr" => self.listxattr(false),
            "removexattr" | "lremovexattr" => {
                self.removexattr(false);
                self.path(0);
            }
            "fremovexattr" => self.removexattr(false),
            "setxattrat" => self.setxattr(true),
            "getxattrat" => self.getxattr(true),
            "listxattrat" => self.listxattr(true),
            "removexattrat" => self.removexattr(true),
            "seccomp" => {}
            // The handler never answers for the kernel: it may take a
            // devpts's unmappable ids out of the options, then continues.
            "mount" => {}
            "access" | "faccessat" | "faccessat2" => {
                let (mode, path) = if self.name == "access" { (1, 0) } else { (2, 1) };
                let flags = (self.name == "faccessat2").then_some(3);
                let got = self.expect(
                    "access mode and flags",
                    |req| access::access_flags(req.int(mode), flags.map(|f| req.int(f))),
                    |_, r| {
                        let f = flags.map_or(0, |f| r.int(f));
                        let known = 0x200 | k::AT_SYMLINK_NOFOLLOW | k::AT_EMPTY_PATH;
                        if r.int(mode) & !0o7 != 0 || f & !known != 0 {
                            return Err(Errno::INVAL);
                        }
                        Ok((r.int(mode) as u32, f))
                    },
                );
                if let Some((_, f)) = got {
                    self.expect(
                        "access name",
                        |req| handlers::read_name(req, req.ptr(path), f),
                        |p, r| k::getname(p, r.ptr(path), f),
                    );
                }
            }
            "getuid" | "geteuid" | "getgid" | "getegid" | "getuid32" | "geteuid32" | "getgid32"
            | "getegid32" | "getresuid" | "getresgid" | "getresuid32" | "getresgid32" => {}
            "setuid" | "setgid" | "setfsuid" | "setfsgid" | "setuid32" | "setgid32"
            | "setfsuid32" | "setfsgid32" => self.ids::<1>(),
            "setreuid" | "setregid" | "setreuid32" | "setregid32" => self.ids::<2>(),
            "setresuid" | "setresgid" | "setresuid32" | "setresgid32" => self.ids::<3>(),
            "getgroups" | "getgroups32" => self.getgroups(),
            "setgroups" | "setgroups32" => self.setgroups(),
            "capget" => self.capget(),
            "capset" => self.capset(),
            "prctl" => self.prctl(),
            other => panic!("no decoding check for {other}: add it to decoding/check.rs"),
        }
    }
}

/// The kernel model's name for what an open makes.
fn made(o: create::Opening) -> k::Made {
    k::Made { tmpfile: o.tmpfile, excl: o.excl, cloexec: o.cloexec, perms: o.perms, flags: o.flags }
}

/// Whether `len` bytes at `addr` can be written.
fn writable(p: &Pages, addr: u64, len: usize) -> bool {
    (0..len as u64).all(|i| {
        addr.checked_add(i)
            .and_then(|a| p.get(&(a & !(super::fake::PAGE - 1))))
            .is_some_and(|page| page.writable)
    })
}
