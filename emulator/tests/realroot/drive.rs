//! Runs operations on the model and, as the supervisor does, on fr's
//! emulator over a simulated host file system; after every step, every
//! live file must look the same through `InodeTable::view` and
//! `InodeTable::xattrs` as in the model, and the credentials must match.
//!
//! The host side is what the kernel does for the unprivileged user: every
//! real file belongs to the user (uid and gid 1000), files fr makes are
//! made usable by the user, device nodes are regular placeholder files,
//! and a freed inode number goes to the next new file. Where the
//! supervisor answers `CONTINUE`, this driver does what the kernel would
//! do for the user.
//!
//! Known divergences are skipped, not compared, each under a tag that
//! `docs/fuzzing.md` explains: `K*` are the emulator's and were reported
//! to its owner, `S*` the supervisor's. A skipped operation changes
//! nothing on either side.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use fr_emulator::creds::{Refused, SECBIT_KEEP_CAPS};
use fr_emulator::store::{decode_journal, journal_header, Change, RootId, SyncMarker};
use fr_emulator::table::{Journal, Unkept};
use fr_emulator::xattr::{self, XattrError};
use fr_emulator::{rules, Attrs, Creds, IdMap, InodeKey, InodeTable};

use super::linux::{self, Cred, Id, Linux, E, ROOT};
use super::ops::{Kind, Name, Op};

/// The user's host uid and gid.
const USER: u32 = 1000;
const DEV: u64 = 1;
const ROOT_INO: u64 = 2;
const S_IFMT: u32 = 0o170_000;

/// A file as the host has it: real mode and owner, and its link count.
#[derive(Clone, Copy, Debug)]
struct Real {
    attrs: Attrs,
    nlink: u32,
}

/// The journal, as bytes, as the store keeps it.
#[derive(Debug, Default, Clone)]
struct Log(Arc<Mutex<Vec<u8>>>);

/// The journal's marker.
const SYNC: SyncMarker = SyncMarker(*b"model\x01\x02\x03");

impl Journal for Log {
    fn record(&self, change: &Change) -> Result<(), Unkept> {
        self.0.lock().unwrap().extend(change.encode(SYNC));
        Ok(())
    }
}

/// How many operations ran and how many were skipped, by reason.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub compared: u64,
    pub skipped: BTreeMap<&'static str, u64>,
}

pub struct World {
    pub linux: Linux,
    table: InodeTable,
    creds: Creds,
    log: Log,
    host: BTreeMap<u64, Real>,
    /// The host inode number of each model inode.
    ino: BTreeMap<Id, u64>,
    pub stats: Stats,
    done: Vec<Op>,
}

fn key(ino: u64) -> InodeKey {
    InodeKey { dev: DEV, ino }
}

fn refused(r: Refused) -> E {
    match r {
        Refused::Perm => E::Perm,
        Refused::Inval => E::Inval,
        Refused::Access => E::Access,
        Refused::Unkept(e) => panic!("the model's journal never refuses (errno {e})"),
    }
}

fn xerr(e: XattrError) -> E {
    match e {
        XattrError::NotSupported => E::NotSup,
        XattrError::Invalid => E::Inval,
        XattrError::Perm => E::Perm,
        XattrError::Exists => E::Exist,
        XattrError::NoData => E::NoData,
        XattrError::Access => E::Access,
        other => panic!("setxattr of a name and size that are fine: {other:?}"),
    }
}

/// What the supervisor keeps of a file it makes: usable by the user.
fn usable(kind: Kind, perms: u32) -> u32 {
    match kind {
        Kind::Dir => (perms & 0o777) | 0o700,
        Kind::Lnk => 0o777,
        _ => (perms & 0o777) | 0o600,
    }
}

/// The skip reason of an operation not compared.
type Skip = &'static str;

impl World {
    pub fn new() -> Self {
        let table = InodeTable::new(IdMap::new(USER, USER));
        let log = Log::default();
        *log.0.lock().unwrap() = journal_header(RootId { dev: DEV, ino: ROOT_INO }, SYNC);
        table.set_journal(Box::new(log.clone()));
        let root = Attrs {
            mode: Kind::Dir.bits() | 0o755,
            uid: USER,
            gid: USER,
            rdev_major: 0,
            rdev_minor: 0,
        };
        World {
            linux: Linux::new(),
            table,
            creds: Creds::root(),
            log,
            host: BTreeMap::from([(ROOT_INO, Real { attrs: root, nlink: 1 })]),
            ino: BTreeMap::from([(ROOT, ROOT_INO)]),
            stats: Stats::default(),
            done: Vec::new(),
        }
    }

    /// Runs `ops`, checking after each; panics at the first difference.
    pub fn run(ops: &[Op]) -> Stats {
        let mut w = World::new();
        for op in ops {
            w.step(op);
        }
        w.stats
    }

    fn real(&self, id: Id) -> (InodeKey, Attrs) {
        let ino = self.ino[&id];
        (key(ino), self.host[&ino].attrs)
    }

    fn view(&self, id: Id) -> Attrs {
        let (k, r) = self.real(id);
        self.table.view(k, r)
    }

    /// A new host inode: the lowest free number.
    fn host_add(&mut self, id: Id, kind: Kind, perms: u32) {
        let ino = (ROOT_INO + 1..).find(|i| !self.host.contains_key(i)).unwrap();
        let attrs =
            Attrs { mode: kind.bits() | perms, uid: USER, gid: USER, rdev_major: 0, rdev_minor: 0 };
        self.host.insert(ino, Real { attrs, nlink: 1 });
        self.ino.insert(id, ino);
    }

    /// One link of `id` is gone on the host; the inode with the last.
    fn host_unlink(&mut self, id: Id) {
        let ino = self.ino[&id];
        let real = self.host.get_mut(&ino).unwrap();
        real.nlink -= 1;
        if real.nlink == 0 {
            self.host.remove(&ino);
            self.ino.remove(&id);
        }
    }

    /// Whether the table holds a record for `id`'s inode number that does
    /// not apply to the file there now.
    fn stale(&self, id: Id) -> bool {
        let (k, r) = self.real(id);
        self.table.record(k, r).is_none() && self.table.entries().iter().any(|e| e.0 == k)
    }

    /// `remove.rs victim()`: a name about to lose its link whose file's
    /// inode number has a stale record forgets it, whatever becomes of the
    /// call (no view uses it, but a later file of the old type would).
    fn forget_stale(&self, id: Id) {
        if self.stale(id) {
            self.table.forget(self.real(id).0);
        }
    }

    /// Whether the caller passes every permission check of a link or a
    /// rename, which fr leaves to the kernel (that checks the user).
    fn root_like(&self) -> bool {
        self.creds.capable(linux::CAP_DAC_OVERRIDE) && self.creds.capable(linux::CAP_FOWNER)
    }

    pub fn step(&mut self, op: &Op) {
        self.done.push(op.clone());
        let mut model = self.linux.clone();
        match self.apply(op, &mut model) {
            Err(skip) => *self.stats.skipped.entry(skip).or_default() += 1,
            Ok(()) => {
                self.linux = model;
                self.stats.compared += 1;
                self.check();
            }
        }
    }

    fn fail(&self, what: String) -> ! {
        let ops: Vec<String> = self.done.iter().map(|o| format!("  {o:?}")).collect();
        panic!("{what}\nafter the operations:\n{}", ops.join("\n"));
    }

    /// Compares one result, then leaves the state to [`World::check`].
    fn same<T: std::fmt::Debug + PartialEq>(&self, model: T, fr: T) {
        if model != fr {
            self.fail(format!("real root: {model:?}, fr: {fr:?}"));
        }
    }

    /// Runs `op` on `model` (a copy) and on fr; `Err` skips it.
    fn apply(&mut self, op: &Op, model: &mut Linux) -> Result<(), Skip> {
        let files = self.linux.ids();
        let dirs = self.linux.dirs();
        let links = self.linux.links.clone();
        let file = |i: u8| files[i as usize % files.len()];
        let dir = |i: u8| dirs[i as usize % dirs.len()];
        let link = |i: u8| (!links.is_empty()).then(|| i as usize % links.len()).ok_or("no name");
        match *op {
            Op::Chown { file: f, uid, gid } => {
                let id = file(f);
                let m = model.chown(id, uid, gid);
                let (k, r) = self.real(id);
                let fr = self.table.chown(k, r, uid, gid, &self.creds).map(|_| ()).map_err(refused);
                self.same(m, fr);
            }
            Op::Chmod { file: f, mode } => {
                let id = file(f);
                if self.linux.inode(id).kind == Kind::Lnk {
                    return Err("chmod of a symlink");
                }
                let m = model.chmod(id, mode);
                let (k, r) = self.real(id);
                // mode.rs set_mode(): the rule, then the real chmod of the
                // rule's bits (not the request's: a set-group-id bit it
                // dropped never reaches the real file) with the owner's
                // bits kept, then the record.
                let fr = rules::chmod(self.table.view(k, r), mode, &self.creds).map_err(refused);
                self.same(m, fr.map(|_| ()));
                if let Ok(new) = fr {
                    let perms = new.perms();
                    let real = &mut self.host.get_mut(&self.ino[&id]).unwrap().attrs;
                    let kind =
                        if real.mode & S_IFMT == Kind::Dir.bits() { Kind::Dir } else { Kind::Reg };
                    real.mode = (real.mode & S_IFMT) | perms | usable(kind, 0);
                    self.table.chmod(k, r, perms, &self.creds).unwrap();
                }
            }
            Op::Make { dir: d, kind, mode, umask, dev } => {
                self.make(model, dir(d), kind, mode, umask, dev)?
            }
            Op::SetXattr { file: f, name, ref value, flags } => {
                let id = file(f);
                self.known_setxattr(name, value)?;
                let m = model.setxattr(id, name, value, flags);
                let (k, r) = self.real(id);
                let fr = xattr::check_set(flags, value.len())
                    .and_then(|()| {
                        self.table.setxattr(k, r, &name.bytes(), value, flags, &self.creds)
                    })
                    .map_err(xerr);
                self.same(m, fr);
            }
            Op::RemoveXattr { file: f, name } => {
                let id = file(f);
                let m = model.removexattr(id, name);
                let (k, r) = self.real(id);
                let fr = match self.table.removexattr(k, r, &name.bytes(), &self.creds) {
                    // xattr.rs absent(): trusted.* is ENODATA; an ACL is the
                    // kernel's, which removes a missing one of the user's file.
                    Err(XattrError::NoData) if name.is_acl() => Ok(()),
                    // xattr.rs absent_security(): a security.* name fr does
                    // not keep, which no real file here has either, is real
                    // root's ENODATA.
                    other => other.map_err(xerr),
                };
                self.same(m, fr);
            }
            Op::Link { link: l, dir: d } => {
                let l = link(l)?;
                let id = links[l].ino;
                if self.linux.inode(id).kind == Kind::Dir {
                    return Err("link of a directory");
                }
                let m = model.link(l, dir(d));
                let fr = if self.root_like() { Ok(()) } else { self.link(id, dir(d)) };
                self.same(m, fr);
                if fr.is_ok() {
                    self.host.get_mut(&self.ino[&id]).unwrap().nlink += 1;
                }
            }
            Op::Rename { link: l, to, onto } => {
                let l = link(l)?;
                let src = links[l].ino;
                let target = if onto { Some(link(to)?) } else { None };
                let victim = target.map(|t| links[t].ino);
                if [Some(src), victim]
                    .iter()
                    .flatten()
                    .any(|&i| self.linux.inode(i).kind == Kind::Dir)
                {
                    return Err("rename of a directory");
                }
                // remove.rs victim() of each name, before any check.
                self.forget_stale(src);
                if let Some(v) = victim {
                    self.forget_stale(v);
                }
                let m = model.rename(l, target, dir(to));
                // remove.rs rename_at(): two names of one file are the
                // kernel's, which does nothing; root passes without a look.
                let fr = if self.root_like() || victim == Some(src) {
                    Ok(())
                } else {
                    self.may_rename(links[l], target.map(|t| links[t]), dir(to))
                };
                match victim {
                    Some(v) if v != src && fr.is_ok() => {
                        self.same(m, fr);
                        self.remove_recorded(v);
                        self.host_unlink(v);
                    }
                    _ => self.same(m, fr),
                }
            }
            Op::Unlink { link: l } => {
                let l = link(l)?;
                let lk = links[l];
                self.unlink(model, l, lk.dir, lk.ino)?;
            }
            Op::Host { dir: d, kind, perms } => {
                let id = model.host(dir(d), kind, perms);
                self.host_add(id, kind, perms);
            }
            Op::Outside { link: l, kind, perms } => {
                let l = link(l)?;
                let old = links[l].ino;
                let f = self.linux.inode(old);
                if f.nlink > 1 || self.linux.has_entries(old) {
                    return Err("outside: not the only name, or not empty");
                }
                let ino = self.ino[&old];
                if self.host[&ino].attrs.mode & S_IFMT == kind.bits() {
                    return Err("outside: same type");
                }
                // The documented hazard (table.rs): a record left by a file
                // removed outside fr applies to a new file of its type.
                let revives = self.table.entries().iter().any(|(k, rec, _)| {
                    let t = rec.mode & S_IFMT;
                    k.ino == ino
                        && (t == kind.bits()
                            || (kind == Kind::Reg
                                && (t == Kind::Chr.bits() || t == Kind::Blk.bits())))
                });
                if revives {
                    return Err("outside: a record of that type");
                }
                let id = model.replace(l, kind, perms);
                self.ino.remove(&old);
                self.ino.insert(id, ino);
                let attrs = Attrs {
                    mode: kind.bits() | perms,
                    uid: USER,
                    gid: USER,
                    rdev_major: 0,
                    rdev_minor: 0,
                };
                self.host.insert(ino, Real { attrs, nlink: 1 });
            }
            Op::Reload => self.reload(),
            _ => self.creds_op(op, &mut model.cred),
        }
        Ok(())
    }

    /// The known divergences of `setxattr` (see `docs/fuzzing.md`).
    fn known_setxattr(&self, name: Name, value: &[u8]) -> Result<(), Skip> {
        if name == Name::Capability && value.is_empty() {
            return Err("an empty security.capability");
        }
        Ok(())
    }

    /// The create family, as `create.rs` and `node.rs` do it, with the
    /// directory's access ACL in the permission check.
    fn make(
        &mut self,
        model: &mut Linux,
        dir: Id,
        kind: Kind,
        mode: u32,
        umask: u32,
        dev: u32,
    ) -> Result<(), Skip> {
        let umask = umask & 0o777;
        let perms = match kind {
            Kind::Dir => mode & 0o1777,
            Kind::Lnk => 0o777,
            _ => mode & 0o7777,
        };
        let m = model.make(dir, kind, mode, umask, dev);
        // create::kernel_owner_is_right(): the kernel makes it, for a
        // caller that may write to every directory as the user may to its
        // own (CAP_DAC_OVERRIDE); one that dropped it meets the fake mode.
        let kernel = self.creds.fsuid == 0
            && self.creds.fsgid == 0
            && self.creds.capable(linux::CAP_DAC_OVERRIDE)
            && !self.table.may_shape_new_files()
            && match kind {
                Kind::Dir => perms & 0o700 == 0o700,
                Kind::Lnk => true,
                Kind::Chr | Kind::Blk => false,
                _ => perms & 0o600 == 0o600,
            };
        let (dk, dr) = self.real(dir);
        let real_dir = self.host[&self.ino[&dir]].attrs;
        if kernel {
            if kind == Kind::Dir
                && real_dir.mode & linux::S_ISGID != 0
                && self.table.view(dk, dr).mode & linux::S_ISGID == 0
            {
                // The real directory kept a set-group-id bit its view lost
                // to an access ACL (xattr.rs set() leaves the real mode
                // alone), and the kernel's new directory inherits it.
                return Err("S8");
            }
            // The kernel checks the user, who may write to every real
            // directory here.
            self.same(m.map(|_| ()), Ok(()));
            // What the kernel makes for the user: its umask, and the
            // set-group-id bit of a real directory that has it.
            let real_perms = match kind {
                Kind::Lnk => 0o777,
                Kind::Dir => perms & !umask | (real_dir.mode & linux::S_ISGID),
                _ => perms & !umask,
            };
            self.host_add(m.unwrap(), kind, real_perms);
            return Ok(());
        }
        let view = self.table.view(dk, dr);
        let acl = self.table.access_acl(dk, dr);
        let fr = rules::may_create_with_acl(&view, acl.as_ref(), &self.creds)
            .and_then(
                |()| if kind.is_device() { rules::may_mknod_device(&self.creds) } else { Ok(()) },
            )
            .map_err(refused);
        self.same(m.map(|_| ()), fr);
        if fr.is_err() {
            return Ok(());
        }
        let umask = if kind == Kind::Lnk { 0 } else { umask };
        let (mut attrs, mut xattrs) =
            self.table.new_file(dk, dr, kind.bits(), perms, umask, &self.creds);
        if kind.is_device() {
            (attrs.rdev_major, attrs.rdev_minor) = fr_emulator::abi::new_decode_dev(dev);
        }
        if kind == Kind::Lnk {
            xattrs.clear();
        }
        let real_kind = if kind.is_device() { Kind::Reg } else { kind };
        let id = m.unwrap();
        // fr makes it as the user: a real set-group-id directory hands its
        // bit to a new directory.
        let mut real_perms = usable(kind, attrs.perms());
        if kind == Kind::Dir {
            real_perms |= real_dir.mode & linux::S_ISGID;
        }
        self.host_add(id, real_kind, real_perms);
        let (k, _) = self.real(id);
        self.table.create_with(k, attrs, xattrs).expect("the model's journal keeps every change");
        Ok(())
    }

    /// `create.rs link_at()` for a caller without `CAP_DAC_OVERRIDE` and
    /// `CAP_FOWNER` (root goes straight to the kernel): its `may_linkat()`
    /// with `fs.protected_hardlinks` set, on the file's view and access
    /// ACL, then `may_create()` with the directory's access ACL; the
    /// kernel then links for the user, who owns every real file.
    fn link(&self, id: Id, dir: Id) -> Result<(), E> {
        let (k, r) = self.real(id);
        let view = self.table.view(k, r);
        let c = &self.creds;
        let acl = self.table.access_acl(k, r);
        let setgid_exec = linux::S_ISGID | 0o010;
        let safe = view.mode & S_IFMT == Kind::Reg.bits()
            && view.mode & linux::S_ISUID == 0
            && view.mode & setgid_exec != setgid_exec
            && rules::permitted_with_acl(
                &view,
                acl.as_ref(),
                rules::MAY_READ | rules::MAY_WRITE,
                c,
            );
        if view.uid != c.fsuid && !c.capable(linux::CAP_FOWNER) && !safe {
            return Err(E::Perm);
        }
        let (dk, dr) = self.real(dir);
        let acl = self.table.access_acl(dk, dr);
        rules::may_create_with_acl(&self.table.view(dk, dr), acl.as_ref(), c).map_err(refused)
    }

    /// `remove.rs`: a recorded file losing its last link is forgotten.
    fn remove_recorded(&self, id: Id) {
        let (k, r) = self.real(id);
        if let Some(rec) = self.table.record(k, r) {
            if self.host[&k.ino].nlink <= 1 || rec.is_dir() {
                self.table.forget(k);
            }
        }
    }

    /// `remove.rs remove()`, with the directory's access ACL.
    fn unlink(&mut self, model: &mut Linux, l: usize, dir: Id, id: Id) -> Result<(), Skip> {
        self.forget_stale(id);
        let m = model.unlink(l);
        let mut fr = Ok(());
        if !self.root_like() {
            fr = self.may_delete(dir, id);
        }
        if fr.is_ok() && self.linux.has_entries(id) {
            fr = Err(E::NotEmpty);
        }
        self.same(m, fr);
        if fr.is_ok() {
            self.remove_recorded(id);
            self.host_unlink(id);
        }
        Ok(())
    }

    /// `remove.rs may_delete()`: the victim's record (or view) against the
    /// directory's view and access ACL.
    fn may_delete(&self, dir: Id, id: Id) -> Result<(), E> {
        let (dk, dr) = self.real(dir);
        let (k, r) = self.real(id);
        let view = self.table.record(k, r).unwrap_or_else(|| self.table.view(k, r));
        let acl = self.table.access_acl(dk, dr);
        rules::may_delete_with_acl(&self.table.view(dk, dr), acl.as_ref(), &view, &self.creds)
            .map_err(refused)
    }

    /// `remove.rs may_rename()` of a non-directory, for a caller without
    /// `CAP_DAC_OVERRIDE` and `CAP_FOWNER`: `may_delete()` of the old
    /// name, then of the replaced one or `may_create()` in the new
    /// directory, each with the directory's access ACL.
    fn may_rename(
        &self,
        from: linux::Link,
        onto: Option<linux::Link>,
        to_dir: Id,
    ) -> Result<(), E> {
        self.may_delete(from.dir, from.ino)?;
        match onto {
            Some(t) => self.may_delete(t.dir, t.ino),
            None => {
                let (dk, dr) = self.real(to_dir);
                let acl = self.table.access_acl(dk, dr);
                rules::may_create_with_acl(&self.table.view(dk, dr), acl.as_ref(), &self.creds)
                    .map_err(refused)
            }
        }
    }

    /// The store's journal read back into a new table, as the launcher
    /// restores it; the new table keeps journaling.
    fn reload(&mut self) {
        let bytes = self.log.0.lock().unwrap().clone();
        let scan = decode_journal(&bytes).expect("the journal decodes");
        assert_eq!(scan.root, RootId { dev: DEV, ino: ROOT_INO });
        assert!(scan.is_clean(), "the journal is whole: {scan:?}");
        let table = InodeTable::new(IdMap::new(USER, USER));
        for change in scan.changes {
            match change {
                Change::Set { key, attrs, xattrs } => table.restore(key, attrs, xattrs),
                Change::Forget { key } => table.forget_quietly(key),
            }
        }
        table.set_journal(Box::new(self.log.clone()));
        self.table = table;
    }

    /// The identity calls, as `ident.rs` passes them to `Creds`.
    fn creds_op(&mut self, op: &Op, m: &mut Cred) {
        let c = &mut self.creds;
        let r = |x: Result<(), Refused>| x.map_err(refused);
        let (model, fr) = match *op {
            Op::Setuid(u) => (m.setuid(u), r(c.setuid(u))),
            Op::Setgid(g) => (m.setgid(g), r(c.setgid(g))),
            Op::Setreuid(a, b) => (m.setreuid(a, b), r(c.setreuid(a, b))),
            Op::Setregid(a, b) => (m.setregid(a, b), r(c.setregid(a, b))),
            Op::Setresuid(a, b, d) => (m.setresuid(a, b, d), r(c.setresuid(a, b, d))),
            Op::Setresgid(a, b, d) => (m.setresgid(a, b, d), r(c.setresgid(a, b, d))),
            Op::Setfsuid(u) => {
                let (a, b) = (m.setfsuid(u), c.setfsuid(u));
                self.same(a, b);
                (Ok(()), Ok(()))
            }
            Op::Setfsgid(g) => {
                let (a, b) = (m.setfsgid(g), c.setfsgid(g));
                self.same(a, b);
                (Ok(()), Ok(()))
            }
            Op::Setgroups(ref g) => {
                let fr = if c.capable(fr_emulator::creds::CAP_SETGID) {
                    r(c.setgroups(g.clone()))
                } else {
                    Err(E::Perm)
                };
                (m.setgroups(g.clone()), fr)
            }
            Op::Capset { effective, permitted, inheritable } => {
                let [e, p, i] = [effective, permitted, inheritable].map(|s| s & linux::ALL_CAPS);
                (m.capset(e, p, i), r(c.capset(e, p, i)))
            }
            Op::Keepcaps(on) => {
                m.keep_caps = on;
                (Ok(()), r(c.set_keepcaps(on)))
            }
            _ => unreachable!("not an identity call: {op:?}"),
        };
        self.same(model, fr);
    }

    /// Every file and the credentials, model against fr.
    fn check(&self) {
        for (&id, f) in &self.linux.inodes {
            let (k, r) = self.real(id);
            let want = Attrs {
                mode: f.mode(),
                uid: f.uid,
                gid: f.gid,
                rdev_major: f.rdev.0,
                rdev_minor: f.rdev.1,
            };
            let got = self.table.view(k, r);
            if got != want {
                self.fail(format!(
                    "file {id} (ino {}): real root sees {want:?}, fr shows {got:?}",
                    k.ino
                ));
            }
            let xattrs = self.table.xattrs(k, r);
            if xattrs != f.xattrs {
                self.fail(format!(
                    "file {id} (ino {}): real root's xattrs {:?}, fr's {:?}",
                    k.ino, f.xattrs, xattrs
                ));
            }
            if f.kind != Kind::Dir && self.host[&k.ino].nlink != f.nlink {
                self.fail(format!(
                    "file {id}: {} links, the host has {}",
                    f.nlink, self.host[&k.ino].nlink
                ));
            }
        }
        let c = &self.creds;
        let fr = Cred {
            uid: [c.ruid, c.euid, c.suid, c.fsuid],
            gid: [c.rgid, c.egid, c.sgid, c.fsgid],
            groups: c.groups.clone(),
            effective: c.effective,
            permitted: c.permitted,
            inheritable: c.inheritable,
            bounding: c.bounding,
            keep_caps: c.securebits & SECBIT_KEEP_CAPS != 0,
        };
        if fr != self.linux.cred {
            self.fail(format!("credentials: real root {:?}, fr {fr:?}", self.linux.cred));
        }
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}
