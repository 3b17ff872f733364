//! The inode table: the fake attributes of every file fr has changed.
//!
//! Keyed by device and inode number, as the kernel identifies a file; hard
//! links therefore share one record. A record holds the whole fake view of
//! the ownership fields (type, mode, owner, group, device number), so that
//! what fr shows never mixes a recorded owner with a mode the kernel changed
//! behind its back (for instance the set-user-id bit a non-root `write(2)`
//! clears, which real root's write keeps).
//!
//! Hazard: an inode number freed outside fr's sight can be reused by a new
//! file. A record whose file type differs from the real file's is therefore
//! never applied; it is replaced at the next change.
//!
//! Every change is journal-first ([`InodeTable::transact`]): the new state
//! of the inode is worked out under its lock, handed to the [`Journal`],
//! and only once the journal has kept it does the table take it. A change
//! the journal refuses (a full disk, a quota, a file size limit, an I/O
//! error) leaves the table as it was and fails with that errno, so the
//! call is answered as real root's would be on a disk that cannot store
//! it, and no answered change exists only in memory. The one exception is
//! a forget after the file is already gone ([`InodeTable::forget`]): it
//! is queued and written before the next entry, so that the journal never
//! keeps a record for an inode number a new file can take.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use crate::acl::Acl;
use crate::attrs::{Attrs, FileType};
use crate::creds::{Creds, Refused};
use crate::ids::IdMap;
use crate::rules;
use crate::store::Change;
use crate::xattr::{self, XattrError};

/// A file's identity: the device and inode numbers `stat` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InodeKey {
    pub dev: u64,
    pub ino: u64,
}

/// The concurrent table of fake attributes, shared by all supervisor workers.
/// A file's emulated extended attributes, by name.
pub type Xattrs = std::collections::BTreeMap<Vec<u8>, Vec<u8>>;

/// A change the journal could not keep, with the errno of the write that
/// failed (`ENOSPC`, `EDQUOT`, `EFBIG`, `EIO`, ...): the table did not
/// take it, and the call that asked for it fails with that errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unkept(pub i32);

/// `EIO`, for a journal that failed without an errno of its own.
pub const EIO: i32 = 5;

/// Where the table's changes go to be kept (the store's journal), before
/// the table takes them. The table calls `record` with the inode's lock
/// held, so the entries of one inode come in the order of its changes.
pub trait Journal: Send + Sync + std::fmt::Debug {
    /// Keeps `change` for good (one entry, written in full or not at
    /// all), or says why not.
    fn record(&self, change: &Change) -> Result<(), Unkept>;
}

/// What a change makes of an inode's record.
enum Next {
    /// Nothing changes.
    Keep,
    /// The record and emulated xattrs are now these.
    Set(Attrs, Xattrs),
    /// No record.
    Forget,
}

/// Whether a change may go into the table though the journal refused it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// No: the change fails with the journal's errno.
    Fails,
    /// Yes, a forget of a file already gone: queued for the journal.
    Queued,
}

#[derive(Debug)]
pub struct InodeTable {
    records: DashMap<InodeKey, Attrs>,
    /// Emulated xattrs; a file that has some always has a record too, so
    /// that the record's type check and removal cover them.
    xattrs: DashMap<InodeKey, Xattrs>,
    ids: IdMap,
    /// Whether a directory was ever recorded set-group-id: until then a new
    /// file's group never comes from its directory's record.
    setgid_dirs: AtomicBool,
    /// Whether a default ACL was ever recorded: until then no new file
    /// takes one from its directory.
    default_acls: AtomicBool,
    /// Whether a device node was ever recorded: until then no file is one
    /// of fr's device placeholders.
    devices: AtomicBool,
    /// Whether anything changed since the table was made or restored.
    changed: AtomicBool,
    journal: OnceLock<Box<dyn Journal>>,
    /// Forgets the journal refused after their files were gone, written
    /// before any later entry; the lock also orders every journal write.
    queued: Mutex<VecDeque<InodeKey>>,
    /// Changes the journal refused (their calls failed), and the last errno.
    refused: AtomicU64,
    refused_errno: AtomicI32,
}

impl InodeTable {
    pub fn new(ids: IdMap) -> Self {
        Self {
            records: DashMap::new(),
            xattrs: DashMap::new(),
            ids,
            setgid_dirs: AtomicBool::new(false),
            default_acls: AtomicBool::new(false),
            devices: AtomicBool::new(false),
            changed: AtomicBool::new(false),
            journal: OnceLock::new(),
            queued: Mutex::new(VecDeque::new()),
            refused: AtomicU64::new(0),
            refused_errno: AtomicI32::new(0),
        }
    }

    /// How many changes the journal refused (each call failed with the
    /// errno), and the last errno.
    pub fn refused(&self) -> (u64, i32) {
        (self.refused.load(Ordering::Relaxed), self.refused_errno.load(Ordering::Relaxed))
    }

    /// Forgets of removed files the journal has not kept yet: until it
    /// does, a replay of the journal alone would give their records back.
    pub fn queued_forgets(&self) -> usize {
        self.queued.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Writes the queued forgets now; the errno if the journal still
    /// refuses.
    pub fn flush_queued(&self) -> Result<(), Unkept> {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        self.write_queued(&mut queued)
    }

    fn write_queued(&self, queued: &mut VecDeque<InodeKey>) -> Result<(), Unkept> {
        let Some(journal) = self.journal.get() else {
            queued.clear();
            return Ok(());
        };
        while let Some(&key) = queued.front() {
            journal.record(&Change::Forget { key })?;
            queued.pop_front();
        }
        Ok(())
    }

    /// Hands `change` to the journal, after the queued forgets; with
    /// [`Refusal::Queued`] a refused forget joins the queue instead.
    fn keep(&self, change: impl FnOnce() -> Change, refusal: Refusal) -> Result<(), Unkept> {
        let Some(journal) = self.journal.get() else { return Ok(()) };
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        let change = change();
        let kept = self.write_queued(&mut queued).and_then(|()| journal.record(&change));
        match (kept, &change) {
            (Err(_), Change::Forget { key }) if refusal == Refusal::Queued => {
                queued.push_back(*key);
                Ok(())
            }
            (kept, _) => kept,
        }
    }

    /// The one way a change reaches the table. `change` is given the
    /// inode's record and emulated xattrs as they are (under the record's
    /// shard lock, so that concurrent changes to one file are serialised
    /// as the kernel serialises them on the inode lock) and says what they
    /// become, or why not; the new state goes to the journal, and only
    /// when the journal has kept it into the table. A change that changes
    /// nothing writes nothing.
    fn transact<T, E: From<Unkept>>(
        &self,
        key: InodeKey,
        refusal: Refusal,
        change: impl FnOnce(Option<Attrs>, &Xattrs) -> Result<(Next, T), E>,
    ) -> Result<T, E> {
        // Always the record before the xattrs, as every reader takes them.
        let rec = self.records.entry(key);
        let xs = self.xattrs.entry(key);
        let cur = match &rec {
            Entry::Occupied(r) => Some(*r.get()),
            Entry::Vacant(_) => None,
        };
        let none = Xattrs::new();
        let cur_x = match &xs {
            Entry::Occupied(x) => x.get(),
            Entry::Vacant(_) => &none,
        };
        let (next, out) = change(cur, cur_x)?;
        let new = match next {
            Next::Keep => return Ok(out),
            Next::Set(attrs, xattrs) => Some((attrs, xattrs)),
            Next::Forget => None,
        };
        let same = match (&new, cur) {
            (None, None) => true,
            (Some((a, x)), Some(c)) => *a == c && x == cur_x,
            _ => false,
        };
        if same {
            return Ok(out);
        }
        let entry = || match &new {
            Some((attrs, xattrs)) => Change::Set { key, attrs: *attrs, xattrs: xattrs.clone() },
            None => Change::Forget { key },
        };
        if let Err(e) = self.keep(entry, refusal) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            self.refused_errno.store(e.0, Ordering::Relaxed);
            return Err(e.into());
        }
        match new {
            Some((attrs, xattrs)) => {
                self.note(&attrs);
                if attrs.is_dir() && xattrs.contains_key(xattr::ACL_DEFAULT) {
                    self.default_acls.store(true, Ordering::Relaxed);
                }
                rec.insert(attrs);
                match xs {
                    Entry::Occupied(x) if xattrs.is_empty() => drop(x.remove()),
                    Entry::Occupied(mut x) => drop(x.insert(xattrs)),
                    Entry::Vacant(x) if !xattrs.is_empty() => drop(x.insert(xattrs)),
                    Entry::Vacant(_) => {}
                }
            }
            None => {
                if let Entry::Occupied(r) = rec {
                    r.remove();
                }
                if let Entry::Occupied(x) = xs {
                    x.remove();
                }
            }
        }
        self.changed.store(true, Ordering::Relaxed);
        Ok(out)
    }

    /// [`Self::transact`] on the file as the workload sees it: its record
    /// and xattrs if the record is this file's, else the view of a file
    /// without one (a stale record's xattrs belong to another file).
    fn transact_view<T, E: From<Unkept>>(
        &self,
        key: InodeKey,
        real: Attrs,
        change: impl FnOnce(Attrs, &Xattrs) -> Result<(Next, T), E>,
    ) -> Result<T, E> {
        let unrecorded = self.unrecorded(real);
        self.transact(key, Refusal::Fails, |cur, x| match cur {
            Some(rec) if applies(&rec, &real) => change(rec, x),
            _ => change(unrecorded, &Xattrs::new()),
        })
    }

    /// Sends every later change to `journal` (once; a second is ignored).
    pub fn set_journal(&self, journal: Box<dyn Journal>) {
        let _ = self.journal.set(journal);
    }

    /// Whether anything changed since the table was made or restored.
    pub fn changed(&self) -> bool {
        self.changed.load(Ordering::Relaxed)
    }

    /// Puts back a record read from the store (not journaled).
    pub fn restore(&self, key: InodeKey, attrs: Attrs, xattrs: Xattrs) {
        self.note(&attrs);
        if attrs.is_dir() && xattrs.contains_key(xattr::ACL_DEFAULT) {
            self.default_acls.store(true, Ordering::Relaxed);
        }
        self.records.insert(key, attrs);
        if xattrs.is_empty() {
            self.xattrs.remove(&key);
        } else {
            self.xattrs.insert(key, xattrs);
        }
    }

    /// Every record, with its xattrs.
    pub fn entries(&self) -> Vec<(InodeKey, Attrs, Xattrs)> {
        self.records
            .iter()
            .map(|r| {
                (
                    *r.key(),
                    *r.value(),
                    self.xattrs.get(r.key()).map(|x| x.clone()).unwrap_or_default(),
                )
            })
            .collect()
    }

    pub fn ids(&self) -> &IdMap {
        &self.ids
    }

    /// Number of files with a record.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// What the workload sees of the file `key` whose real attributes, with
    /// host ids, are `real`.
    pub fn view(&self, key: InodeKey, real: Attrs) -> Attrs {
        match self.records.get(&key) {
            Some(rec) if applies(&rec, &real) => *rec,
            _ => self.unrecorded(real),
        }
    }

    /// The record of `key`, if one applies to the real file.
    pub fn record(&self, key: InodeKey, real: Attrs) -> Option<Attrs> {
        self.records.get(&key).filter(|rec| applies(rec, &real)).map(|rec| *rec)
    }

    /// Records a file fr has just created with the attributes real root's
    /// call would have given it; any record left by a file that had the same
    /// inode number before is dropped.
    pub fn create(&self, key: InodeKey, attrs: Attrs) -> Result<(), Unkept> {
        self.create_with(key, attrs, Xattrs::new())
    }

    /// Whether fr keeps an emulated xattr of any file: until it does, every
    /// xattr read is the file's own.
    pub fn keeps_xattrs(&self) -> bool {
        !self.xattrs.is_empty()
    }

    /// The emulated xattrs of `key`, if its record applies to the real file.
    pub fn xattrs(&self, key: InodeKey, real: Attrs) -> Xattrs {
        match self.record(key, real) {
            Some(_) => self.xattrs.get(&key).map(|x| x.clone()).unwrap_or_default(),
            None => Xattrs::new(),
        }
    }

    /// The access ACL of `key`, if fr keeps one for it: what
    /// [`rules::permitted_with_acl`] and the other permission checks need
    /// besides the view.
    pub fn access_acl(&self, key: InodeKey, real: Attrs) -> Option<Acl> {
        self.record(key, real)?;
        self.xattrs.get(&key)?.get(xattr::ACL_ACCESS).and_then(|v| Acl::parse(v).ok())
    }

    /// Changes the emulated xattrs of `key` with `change`, recording the
    /// file's current view first if it has no record (or a stale one,
    /// whose xattrs are dropped).
    pub fn change_xattrs<T>(
        &self,
        key: InodeKey,
        real: Attrs,
        change: impl FnOnce(&mut Xattrs) -> T,
    ) -> Result<T, Unkept> {
        self.transact_view(key, real, |view, x| {
            let mut x = x.clone();
            let done = change(&mut x);
            Ok::<_, Unkept>((Next::Set(view, x), done))
        })
    }

    /// Forgets `key` while replaying a journal (not journaled again).
    pub fn forget_quietly(&self, key: InodeKey) {
        self.records.remove(&key);
        self.xattrs.remove(&key);
    }

    /// Forgets the record of `key` if it belongs to another file than
    /// `real` (one of another type, replaced outside fr by a file that took
    /// its inode number): no view uses it, but a later file of the old type
    /// with that number would show it. Returns whether it did. Like
    /// [`Self::forget`], it never fails: a forget the journal refuses is
    /// queued.
    pub fn forget_stale(&self, key: InodeKey, real: Attrs) -> bool {
        self.transact(key, Refusal::Queued, |cur, _| {
            Ok::<_, Unkept>(match cur {
                Some(rec) if !applies(&rec, &real) => (Next::Forget, true),
                _ => (Next::Keep, false),
            })
        })
        .unwrap_or(false)
    }

    /// Forgets `key`: its last link is gone, and a file that reuses the
    /// number must not inherit what this one had. The file is already
    /// gone, so this cannot fail: if the journal refuses the entry, the
    /// table forgets all the same and the entry is queued, to be written
    /// before any later one ([`Self::queued_forgets`]).
    pub fn forget(&self, key: InodeKey) {
        let _ = self.transact(key, Refusal::Queued, |_, _| Ok::<_, Unkept>((Next::Forget, ())));
    }

    /// Whether some directory's record may make a new file's owner, group
    /// or mode differ from what the kernel gives it: a set-group-id
    /// directory or a default ACL.
    pub fn may_shape_new_files(&self) -> bool {
        self.setgid_dirs.load(Ordering::Relaxed) || self.default_acls.load(Ordering::Relaxed)
    }

    /// Whether directory `key`'s record may make a new file in it differ
    /// from what the kernel gives it: set-group-id (the record's bit or
    /// the real one, which then hands on the real group, not the recorded
    /// one) or a default ACL. A directory without a record is the kernel's
    /// own, and the kernel's new file is then as the table would make it.
    pub fn shapes_new_files(&self, key: InodeKey, real: Attrs) -> bool {
        let Some(rec) = self.record(key, real) else { return false };
        (rec.mode | real.mode) & crate::attrs::S_ISGID != 0
            || self.xattrs.get(&key).is_some_and(|x| x.contains_key(xattr::ACL_DEFAULT))
    }

    /// The attributes (and xattrs) of a new file of type `kind` that `c`
    /// makes in directory `dir` with the requested permission bits `perms`
    /// and the caller's `umask`: set-group-id stripped from the request
    /// ([`rules::strip_sgid`]), owner and group by [`rules::new_inode`]; with a default ACL on the directory the umask
    /// is not applied, the file takes the ACL limited by its mode, and a
    /// directory takes the default ACL too (`fs/posix_acl.c:
    /// posix_acl_create()`).
    pub fn new_file(
        &self,
        dir_key: InodeKey,
        dir_real: Attrs,
        kind: u32,
        perms: u32,
        umask: u32,
        c: &Creds,
    ) -> (Attrs, Xattrs) {
        let dir = self.view(dir_key, dir_real);
        // vfs_prepare_mode(): before the umask or the default ACL.
        let perms = rules::strip_sgid(&dir, kind, perms, c);
        // Symlinks take no ACL and keep 0777 (posix_acl_create()).
        let default = self
            .xattrs(dir_key, dir_real)
            .get(crate::xattr::ACL_DEFAULT)
            .filter(|_| kind != crate::attrs::S_IFLNK)
            .and_then(|v| Acl::parse(v).ok());
        let mut xattrs = Xattrs::new();
        let attrs = match default {
            None => rules::new_inode(&dir, kind, perms & !umask, c),
            Some(default) => {
                let (access, masked) = default.create_masq(perms);
                if kind == crate::attrs::S_IFDIR {
                    xattrs.insert(crate::xattr::ACL_DEFAULT.to_vec(), default.to_xattr());
                }
                if !access.mode().1 {
                    xattrs.insert(crate::xattr::ACL_ACCESS.to_vec(), access.to_xattr());
                }
                rules::new_inode(&dir, kind, masked, c)
            }
        };
        (attrs, xattrs)
    }

    /// Records a file fr has just made, with its xattrs (see [`Self::create`]).
    /// If the journal refuses the record, the caller removes the file: real
    /// root's call on a full disk leaves none.
    pub fn create_with(&self, key: InodeKey, attrs: Attrs, xattrs: Xattrs) -> Result<(), Unkept> {
        self.transact(key, Refusal::Fails, |_, _| Ok::<_, Unkept>((Next::Set(attrs, xattrs), ())))
    }

    /// `setxattr(2)` of an emulated attribute by `c`, with the kernel's
    /// checks in its order and what the attribute does: a capability is
    /// stored as real root in the initial namespace would; the ACLs take
    /// their own path ([`Self::set_acl`]). The flags are the file
    /// system's, checked last.
    pub fn setxattr(
        &self,
        key: InodeKey,
        real: Attrs,
        name: &[u8],
        value: &[u8],
        flags: u32,
        c: &Creds,
    ) -> Result<(), XattrError> {
        if name == xattr::ACL_ACCESS || name == xattr::ACL_DEFAULT {
            return self.set_acl(key, real, name, value, c);
        }
        if name == xattr::CAPABILITY {
            // cap_convert_nscap(): the header comes before CAP_SETFCAP.
            xattr::capability_header(value)?;
        }
        self.transact_view(key, real, |view, x| {
            xattr::may_change(name, view.uid, c)?;
            let stored = if name == xattr::CAPABILITY {
                xattr::normalize_capability(value)?
            } else {
                value.to_vec()
            };
            let exists = x.contains_key(name);
            if exists && flags & xattr::CREATE != 0 {
                return Err(XattrError::Exists);
            }
            if !exists && flags & xattr::REPLACE != 0 {
                return Err(XattrError::NoData);
            }
            let mut x = x.clone();
            x.insert(name.to_vec(), stored);
            Ok((Next::Set(view, x), ()))
        })
    }

    /// An ACL written with `setxattr(2)`, as `do_set_acl()` and
    /// `set_posix_acl()` (`fs/posix_acl.c`) take it, in their order
    /// (checked on 6.18): the value's form ([`Acl::from_xattr`]); no ACLs
    /// on a symlink (`EOPNOTSUPP`: ext4 gives symlinks no `set_acl`); a
    /// default ACL fits only a directory (`EACCES`, or nothing to do for
    /// no ACL); the owner or `CAP_FOWNER` (`EPERM`); then
    /// `posix_acl_valid()` (`EINVAL`). An access ACL sets the mode bits it
    /// implies and is not kept if it says no more than they do
    /// (`posix_acl_update_mode()`); an empty value or a header alone
    /// removes the ACL. `XATTR_CREATE` and `XATTR_REPLACE` are not passed
    /// on to ACLs, so they mean nothing here.
    fn set_acl(
        &self,
        key: InodeKey,
        real: Attrs,
        name: &[u8],
        value: &[u8],
        c: &Creds,
    ) -> Result<(), XattrError> {
        let acl = if value.is_empty() { None } else { Acl::from_xattr(value)? };
        // One transaction: the mode an access ACL implies and the ACL
        // itself are kept together or not at all.
        self.transact_view(key, real, |view, x| {
            if view.file_type() == FileType::Symlink {
                return Err(XattrError::NotSupported);
            }
            if name == xattr::ACL_DEFAULT && !view.is_dir() {
                return if acl.is_some() { Err(XattrError::Access) } else { Ok((Next::Keep, ())) };
            }
            xattr::may_change(name, view.uid, c)?;
            if acl.as_ref().is_some_and(|a| !a.valid()) {
                return Err(XattrError::Invalid);
            }
            let mut attrs = view;
            let mut keep = acl;
            if let Some(acl) = keep.as_ref().filter(|_| name == xattr::ACL_ACCESS) {
                let (bits, equiv) = acl.mode();
                let mut perms = (view.perms() & !0o777) | bits;
                if !rules::in_group_or_capable(c, view.gid) {
                    perms &= !crate::attrs::S_ISGID;
                }
                attrs = view.with_perms(perms);
                if equiv {
                    keep = None;
                }
            }
            let mut x = x.clone();
            match keep {
                Some(acl) => x.insert(name.to_vec(), acl.to_xattr()),
                None => x.remove(name),
            };
            Ok((Next::Set(attrs, x), ()))
        })
    }

    /// `removexattr(2)` of an emulated attribute by `c`. An ACL goes as
    /// `vfs_remove_acl()` removes it: none on a symlink (`EOPNOTSUPP`),
    /// nothing to do for the default ACL of a non-directory, whoever
    /// asks, then the owner or `CAP_FOWNER`. A name fr does not keep is
    /// `ENODATA` (for an ACL the caller's own file may have one).
    pub fn removexattr(
        &self,
        key: InodeKey,
        real: Attrs,
        name: &[u8],
        c: &Creds,
    ) -> Result<(), XattrError> {
        self.transact_view(key, real, |view, x| {
            if name == xattr::ACL_ACCESS || name == xattr::ACL_DEFAULT {
                if view.file_type() == FileType::Symlink {
                    return Err(XattrError::NotSupported);
                }
                if name == xattr::ACL_DEFAULT && !view.is_dir() {
                    return Ok((Next::Keep, ()));
                }
            }
            xattr::may_change(name, view.uid, c)?;
            if !x.contains_key(name) {
                return Err(XattrError::NoData);
            }
            let mut x = x.clone();
            x.remove(name);
            Ok((Next::Set(view, x), ()))
        })
    }

    fn note(&self, attrs: &Attrs) {
        if attrs.is_dir() && attrs.mode & crate::attrs::S_ISGID != 0 {
            self.setgid_dirs.store(true, Ordering::Relaxed);
        }
        if attrs.file_type().is_device() {
            self.devices.store(true, Ordering::Relaxed);
        }
    }

    /// Whether some file may be one of fr's device placeholders (a device
    /// was recorded at some point): until then no lookup is needed to
    /// tell.
    pub fn may_have_devices(&self) -> bool {
        self.devices.load(Ordering::Relaxed)
    }

    /// `chown(2)` on `key` by a caller with credentials `creds`; returns
    /// the new view, or why the kernel would refuse. A non-directory loses
    /// its `security.capability`, as `notify_change()` kills it with the
    /// set-user-id bit (`ATTR_KILL_PRIV`).
    pub fn chown(
        &self,
        key: InodeKey,
        real: Attrs,
        uid: Option<u32>,
        gid: Option<u32>,
        creds: &Creds,
    ) -> Result<Attrs, Refused> {
        self.transact_view(key, real, |cur, x| {
            let new = rules::chown(cur, uid, gid, creds)?;
            let mut x = x.clone();
            if !new.is_dir() {
                x.remove(crate::xattr::CAPABILITY);
            }
            Ok((Next::Set(new, x), new))
        })
    }

    /// `chmod(2)` on `key` by a caller with credentials `creds`; an access
    /// ACL follows the new mode (`posix_acl_chmod()`).
    pub fn chmod(
        &self,
        key: InodeKey,
        real: Attrs,
        perms: u32,
        creds: &Creds,
    ) -> Result<Attrs, Refused> {
        self.transact_view(key, real, |cur, x| {
            let new = rules::chmod(cur, perms, creds)?;
            let mut x = x.clone();
            if let Some(mut acl) = x.get(xattr::ACL_ACCESS).and_then(|v| Acl::parse(v).ok()) {
                acl.chmod(new.perms());
                x.insert(xattr::ACL_ACCESS.to_vec(), acl.to_xattr());
            }
            Ok((Next::Set(new, x), new))
        })
    }

    /// The view of a file without a record: its real attributes, the
    /// ids as the map shows them.
    pub fn unrecorded(&self, real: Attrs) -> Attrs {
        Attrs { uid: self.ids.uid_inside(real.uid), gid: self.ids.gid_inside(real.gid), ..real }
    }
}

/// Whether a record belongs to the real file: same type, or a device node
/// fr made as a regular placeholder file.
fn applies(rec: &Attrs, real: &Attrs) -> bool {
    let (rec, real) = (rec.file_type(), real.file_type());
    rec == real || (rec.is_device() && real == FileType::Regular)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::{S_IFCHR, S_IFDIR, S_IFREG};

    const USER: (u32, u32) = (1001, 1001);
    const KEY: InodeKey = InodeKey { dev: 8, ino: 42 };
    static ROOT: std::sync::LazyLock<Creds> = std::sync::LazyLock::new(Creds::root);

    #[test]
    fn a_refused_change_records_nothing() {
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        let mut user = Creds::root();
        user.setresuid(5, 5, 5).unwrap();
        let r = real(S_IFREG | 0o644, 1001, 1001);
        assert_eq!(t.chown(KEY, r, Some(5), None, &user), Err(Refused::Perm));
        assert!(t.is_empty());
    }

    fn real(mode: u32, uid: u32, gid: u32) -> Attrs {
        Attrs { mode, uid, gid, rdev_major: 0, rdev_minor: 0 }
    }

    #[test]
    fn only_a_recorded_set_group_id_or_default_acl_directory_shapes_new_files() {
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        let dir = real(S_IFDIR | 0o755, 1001, 1001);
        assert!(!t.shapes_new_files(KEY, dir), "no record: the kernel's own");
        let sgid = real(S_IFDIR | 0o2755, 1001, 1001);
        assert!(!t.shapes_new_files(KEY, sgid), "no record: the kernel hands on the real group");
        t.chown(KEY, dir, None, Some(33), &ROOT).unwrap();
        assert!(!t.shapes_new_files(KEY, dir), "a recorded group alone is not handed on");
        assert!(t.shapes_new_files(KEY, sgid), "the real bit hands on the real group");
        t.chmod(KEY, dir, 0o2755, &ROOT).unwrap();
        assert!(t.shapes_new_files(KEY, dir), "the recorded bit hands on group 33");
        let other = InodeKey { dev: 8, ino: 43 };
        let default = [2, 0, 0, 0, 1, 0, 7, 0, 255, 255, 255, 255, 4, 0, 5, 0, 255, 255, 255, 255]
            .into_iter()
            .chain([32, 0, 5, 0, 255, 255, 255, 255])
            .collect::<Vec<u8>>();
        t.setxattr(other, dir, crate::xattr::ACL_DEFAULT, &default, 0, &ROOT).unwrap();
        assert!(t.shapes_new_files(other, dir), "a default ACL");
    }

    #[test]
    fn only_a_record_of_another_file_type_is_stale() {
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        let file = real(S_IFREG | 0o644, 1001, 1001);
        t.chown(KEY, file, Some(5), None, &ROOT).unwrap();
        assert!(!t.forget_stale(KEY, file), "the record is this file's");
        assert_eq!(t.len(), 1);
        assert!(t.forget_stale(KEY, real(S_IFDIR | 0o755, 1001, 1001)));
        assert!(t.is_empty());
        assert!(!t.forget_stale(KEY, file), "nothing left to forget");
    }

    #[test]
    fn unknown_files_show_own_ids_as_root() {
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        let v = t.view(KEY, real(S_IFREG | 0o644, 1001, 1001));
        assert_eq!((v.uid, v.gid, v.mode), (0, 0, S_IFREG | 0o644));
        let w = t.view(KEY, real(S_IFREG | 0o644, 0, 100));
        assert_eq!((w.uid, w.gid), (0, 100));
        assert!(t.is_empty());
    }

    #[test]
    fn chown_is_recorded_and_laid_over_the_real_stat() {
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        let r = real(S_IFREG | 0o4755, 1001, 1001);
        let v = t.chown(KEY, r, Some(123), Some(456), &ROOT).unwrap();
        assert_eq!((v.uid, v.gid, v.perms()), (123, 456, 0o755));
        assert_eq!(t.view(KEY, r), v);
        assert_eq!(t.len(), 1);
        // A later -1 leaves the recorded owner.
        let w = t.chown(KEY, r, None, Some(7), &ROOT).unwrap();
        assert_eq!((w.uid, w.gid), (123, 7));
    }

    #[test]
    fn chmod_after_chown_keeps_the_owner() {
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        let r = real(S_IFDIR | 0o755, 1001, 1001);
        t.chown(KEY, r, Some(5), Some(6), &ROOT).unwrap();
        let v = t.chmod(KEY, r, 0o2775, &ROOT).unwrap();
        assert_eq!((v.uid, v.gid, v.mode), (5, 6, S_IFDIR | 0o2775));
    }

    #[test]
    fn a_record_for_another_file_type_is_not_applied() {
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        t.chown(KEY, real(S_IFDIR | 0o755, 1001, 1001), Some(5), Some(6), &ROOT).unwrap();
        // The inode number now belongs to a regular file made outside fr.
        let reused = real(S_IFREG | 0o600, 1001, 1001);
        assert_eq!(t.view(KEY, reused), real(S_IFREG | 0o600, 0, 0));
        assert_eq!(t.record(KEY, reused), None);
        let v = t.chown(KEY, reused, Some(9), None, &ROOT).unwrap();
        assert_eq!((v.uid, v.gid, v.mode), (9, 0, S_IFREG | 0o600));
    }

    #[test]
    fn a_device_record_applies_to_its_placeholder_file() {
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        let node =
            Attrs { mode: S_IFCHR | 0o620, uid: 0, gid: 5, rdev_major: 250, rdev_minor: 300_000 };
        t.create(KEY, node).unwrap();
        let placeholder = real(S_IFREG | 0o600, 1001, 1001);
        assert_eq!(t.view(KEY, placeholder), node);
        // chown keeps it a device, as real root's chown of a node would.
        let v = t.chown(KEY, placeholder, Some(7), None, &ROOT).unwrap();
        assert_eq!((v.mode, v.uid, v.rdev_major), (S_IFCHR | 0o620, 7, 250));
        // A directory that took the inode number is not a placeholder.
        assert_eq!(t.view(KEY, real(S_IFDIR | 0o755, 1001, 1001)).mode, S_IFDIR | 0o755);
    }

    #[test]
    fn creating_a_file_drops_a_stale_record_of_its_inode_number() {
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        let r = real(S_IFREG | 0o644, 1001, 1001);
        t.chown(KEY, r, Some(5), Some(6), &ROOT).unwrap();
        t.create(KEY, real(S_IFREG | 0o600, 0, 0)).unwrap();
        assert_eq!(t.view(KEY, r), real(S_IFREG | 0o600, 0, 0));
    }

    #[test]
    fn xattrs_follow_the_record_and_chown_drops_file_capabilities() {
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        let r = real(S_IFREG | 0o755, 1001, 1001);
        t.change_xattrs(KEY, r, |x| {
            x.insert(b"security.capability".to_vec(), vec![1, 2]);
            x.insert(b"trusted.t".to_vec(), vec![3]);
        })
        .unwrap();
        assert!(t.record(KEY, r).is_some(), "an xattr makes a record");
        assert_eq!(t.xattrs(KEY, r).len(), 2);
        t.chown(KEY, r, None, None, &ROOT).unwrap();
        assert_eq!(t.xattrs(KEY, r).keys().collect::<Vec<_>>(), [&b"trusted.t".to_vec()]);
        // Another file that takes the inode number sees none of them.
        assert!(t.xattrs(KEY, real(S_IFDIR | 0o755, 1001, 1001)).is_empty());
        t.forget(KEY);
        assert!(t.xattrs(KEY, r).is_empty());
    }

    #[test]
    fn a_change_over_a_stale_record_drops_the_old_files_xattrs() {
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        let file = real(S_IFREG | 0o755, 1001, 1001);
        t.change_xattrs(KEY, file, |x| x.insert(b"security.capability".to_vec(), vec![1])).unwrap();
        // A directory outside fr's sight took the inode number.
        let dir = real(S_IFDIR | 0o755, 1001, 1001);
        t.chown(KEY, dir, Some(5), None, &ROOT).unwrap();
        assert!(t.xattrs(KEY, dir).is_empty());
        t.chmod(KEY, file, 0o700, &ROOT).unwrap();
        assert!(t.xattrs(KEY, file).is_empty(), "nor do they come back with the old type");
    }

    #[test]
    fn a_symlink_takes_no_default_acl_and_keeps_0777() {
        use crate::attrs::S_IFLNK;
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        let dir = real(S_IFDIR | 0o755, 1001, 1001);
        let acl = crate::acl::Acl(vec![
            crate::acl::Entry { tag: crate::acl::USER_OBJ, perm: 7, id: u32::MAX },
            crate::acl::Entry { tag: crate::acl::USER, perm: 7, id: 5 },
            crate::acl::Entry { tag: crate::acl::GROUP_OBJ, perm: 5, id: u32::MAX },
            crate::acl::Entry { tag: crate::acl::MASK, perm: 5, id: u32::MAX },
            crate::acl::Entry { tag: crate::acl::OTHER, perm: 0, id: u32::MAX },
        ]);
        t.setxattr(KEY, dir, xattr::ACL_DEFAULT, &acl.to_xattr(), 0, &ROOT).unwrap();
        let (link, x) = t.new_file(KEY, dir, S_IFLNK, 0o777, 0, &ROOT);
        assert_eq!((link.mode, x.len()), (S_IFLNK | 0o777, 0));
        let (file, x) = t.new_file(KEY, dir, S_IFREG, 0o666, 0o022, &ROOT);
        assert_eq!((file.perms(), x.len()), (0o640, 1), "a file still takes it");
    }

    fn sample_acl() -> Acl {
        use crate::acl::{Entry, GROUP_OBJ, MASK, OTHER, USER, USER_OBJ};
        Acl(vec![
            Entry { tag: USER_OBJ, perm: 7, id: u32::MAX },
            Entry { tag: USER, perm: 7, id: 5 },
            Entry { tag: GROUP_OBJ, perm: 5, id: u32::MAX },
            Entry { tag: MASK, perm: 5, id: u32::MAX },
            Entry { tag: OTHER, perm: 0, id: u32::MAX },
        ])
    }

    fn user(uid: u32) -> Creds {
        let mut c = Creds::root();
        c.setresuid(uid, uid, uid).unwrap();
        c
    }

    #[test]
    fn a_header_alone_removes_the_acl() {
        // K1 (Linux 6.18: the ACL goes, the mode stays).
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        let r = real(S_IFREG | 0o644, 1001, 1001);
        t.setxattr(KEY, r, xattr::ACL_ACCESS, &sample_acl().to_xattr(), 0, &ROOT).unwrap();
        assert_eq!(t.view(KEY, r).perms(), 0o750);
        assert_eq!(t.setxattr(KEY, r, xattr::ACL_ACCESS, b"\x02\0\0\0", 0, &ROOT), Ok(()));
        assert!(t.xattrs(KEY, r).is_empty());
        assert_eq!(t.view(KEY, r).perms(), 0o750);
    }

    #[test]
    fn acl_flags_mean_nothing() {
        // K4: set_posix_acl() is not given XATTR_CREATE or XATTR_REPLACE.
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        let r = real(S_IFDIR | 0o755, 1001, 1001);
        let v = sample_acl().to_xattr();
        for name in [xattr::ACL_ACCESS, xattr::ACL_DEFAULT] {
            assert_eq!(t.setxattr(KEY, r, name, &v, xattr::REPLACE, &ROOT), Ok(()));
            assert_eq!(t.setxattr(KEY, r, name, &v, xattr::CREATE, &ROOT), Ok(()));
        }
        assert_eq!(t.xattrs(KEY, r).len(), 2);
        // Other names keep them.
        t.setxattr(KEY, r, b"trusted.a", b"1", xattr::CREATE, &ROOT).unwrap();
        assert_eq!(
            t.setxattr(KEY, r, b"trusted.a", b"1", xattr::CREATE, &ROOT),
            Err(XattrError::Exists)
        );
        assert_eq!(
            t.setxattr(KEY, r, b"trusted.b", b"1", xattr::REPLACE, &ROOT),
            Err(XattrError::NoData)
        );
    }

    #[test]
    fn acl_checks_come_in_the_kernels_order() {
        // K5, as checked on Linux 6.18 by uid 1001 on root's file: the
        // value's form, a default ACL on a non-directory, the owner, and
        // posix_acl_valid() last.
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        let r = real(S_IFREG | 0o644, 1001, 1001);
        let other = user(5);
        let set = |name, value: &[u8], c| t.setxattr(KEY, r, name, value, 0, c);
        let bad_perm = b"\x02\0\0\0\x01\0\x08\0\0\0\0\0\x04\0\x05\0\0\0\0\0\x20\0\0\0\0\0\0\0";
        assert_eq!(set(xattr::ACL_ACCESS, b"\x02\0\0\0\x01", &other), Err(XattrError::Invalid));
        assert_eq!(set(xattr::ACL_ACCESS, b"\x03\0\0\0", &other), Err(XattrError::NotSupported));
        assert_eq!(
            set(xattr::ACL_DEFAULT, &sample_acl().to_xattr(), &other),
            Err(XattrError::Access)
        );
        assert_eq!(set(xattr::ACL_DEFAULT, b"", &other), Ok(()));
        assert_eq!(set(xattr::ACL_DEFAULT, b"\x02\0\0\0", &other), Ok(()));
        assert_eq!(set(xattr::ACL_ACCESS, bad_perm, &other), Err(XattrError::Perm));
        assert_eq!(set(xattr::ACL_ACCESS, bad_perm, &ROOT), Err(XattrError::Invalid));
        assert_eq!(set(xattr::ACL_DEFAULT, bad_perm, &ROOT), Err(XattrError::Access));
        assert_eq!(t.removexattr(KEY, r, xattr::ACL_DEFAULT, &other), Ok(()));
        assert_eq!(t.removexattr(KEY, r, xattr::ACL_ACCESS, &other), Err(XattrError::Perm));
        assert!(t.is_empty(), "nothing was changed");
    }

    #[test]
    fn symlinks_take_no_acls() {
        // K11: ext4 symlinks have no set_acl (EOPNOTSUPP), after the
        // value's form is checked.
        use crate::attrs::S_IFLNK;
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        let r = real(S_IFLNK | 0o777, 1001, 1001);
        let v = sample_acl().to_xattr();
        for name in [xattr::ACL_ACCESS, xattr::ACL_DEFAULT] {
            assert_eq!(t.setxattr(KEY, r, name, &v, 0, &ROOT), Err(XattrError::NotSupported));
            assert_eq!(t.setxattr(KEY, r, name, b"", 0, &ROOT), Err(XattrError::NotSupported));
            assert_eq!(
                t.setxattr(KEY, r, name, b"\x02\0\0\0\x01", 0, &ROOT),
                Err(XattrError::Invalid)
            );
            assert_eq!(t.removexattr(KEY, r, name, &ROOT), Err(XattrError::NotSupported));
        }
        assert_eq!(t.view(KEY, r).mode, S_IFLNK | 0o777);
        assert!(t.is_empty());
    }

    #[test]
    fn a_capabilitys_header_is_checked_before_cap_setfcap() {
        // K5: cap_convert_nscap() checks validheader() first (EINVAL for
        // uid 1001 on Linux 6.18), then CAP_SETFCAP, then the root id.
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        let r = real(S_IFREG | 0o755, 1001, 1001);
        let other = user(5);
        let mut v3 = vec![0u8; 24];
        v3[..4].copy_from_slice(&0x0300_0000u32.to_le_bytes());
        v3[20..].copy_from_slice(&u32::MAX.to_le_bytes());
        let set = |value: &[u8], c| t.setxattr(KEY, r, xattr::CAPABILITY, value, 0, c);
        assert_eq!(set(b"abcd", &other), Err(XattrError::Invalid));
        assert_eq!(set(&v3, &other), Err(XattrError::Perm), "a good header, then the capability");
        assert_eq!(set(&v3, &ROOT), Err(XattrError::Invalid), "then the root id");
        assert!(t.is_empty());
    }

    #[test]
    fn set_group_id_goes_before_the_umask_or_the_default_acl() {
        // K8 (Linux 6.18: 0760 for the umask, and for the default ACL).
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        let dir = real(S_IFDIR | 0o2777, 1001, 1001);
        t.chown(KEY, dir, None, Some(7), &ROOT).unwrap();
        let outside = user(5);
        let (f, _) = t.new_file(KEY, dir, S_IFREG, 0o2770, 0o010, &outside);
        assert_eq!((f.gid, f.perms()), (7, 0o760));
        let (f, _) = t.new_file(KEY, dir, S_IFREG, 0o2760, 0o010, &outside);
        assert_eq!(f.perms(), 0o2760, "no group-execute asked: kept");
        let mut acl = sample_acl();
        acl.0[3].perm = 6; // mask rw-
        t.setxattr(KEY, dir, xattr::ACL_DEFAULT, &acl.to_xattr(), 0, &ROOT).unwrap();
        let (f, _) = t.new_file(KEY, dir, S_IFREG, 0o2770, 0o022, &outside);
        assert_eq!(f.perms(), 0o760);
    }

    /// A journal in memory that refuses with `ENOSPC` while `full`.
    #[derive(Debug, Default)]
    struct Log(std::sync::Mutex<Vec<Change>>, AtomicBool);

    const ENOSPC: i32 = 28;

    impl Journal for std::sync::Arc<Log> {
        fn record(&self, change: &Change) -> Result<(), Unkept> {
            if self.1.load(Ordering::Relaxed) {
                return Err(Unkept(ENOSPC));
            }
            self.0.lock().unwrap().push(change.clone());
            Ok(())
        }
    }

    fn journaled() -> (InodeTable, std::sync::Arc<Log>) {
        let t = InodeTable::new(IdMap::new(USER.0, USER.1));
        let log = std::sync::Arc::new(Log::default());
        t.set_journal(Box::new(log.clone()));
        (t, log)
    }

    #[test]
    fn a_change_the_journal_refuses_leaves_the_table_as_it_was() {
        let (t, log) = journaled();
        let file = real(S_IFREG | 0o644, 1001, 1001);
        let dir = real(S_IFDIR | 0o755, 1001, 1001);
        t.chown(KEY, file, Some(5), Some(6), &ROOT).unwrap();
        t.setxattr(KEY, file, b"trusted.a", b"1", 0, &ROOT).unwrap();
        let before = (t.entries(), log.0.lock().unwrap().len());
        log.1.store(true, Ordering::Relaxed);
        assert_eq!(t.chown(KEY, file, Some(7), None, &ROOT), Err(Refused::Unkept(ENOSPC)));
        assert_eq!(t.chmod(KEY, file, 0o600, &ROOT), Err(Refused::Unkept(ENOSPC)));
        assert_eq!(
            t.setxattr(KEY, file, b"trusted.b", b"2", 0, &ROOT),
            Err(XattrError::Unkept(ENOSPC))
        );
        assert_eq!(
            t.setxattr(KEY, file, xattr::ACL_ACCESS, &sample_acl().to_xattr(), 0, &ROOT),
            Err(XattrError::Unkept(ENOSPC))
        );
        assert_eq!(t.removexattr(KEY, file, b"trusted.a", &ROOT), Err(XattrError::Unkept(ENOSPC)));
        assert_eq!(t.change_xattrs(KEY, file, |x| x.clear()), Err(Unkept(ENOSPC)));
        let other = InodeKey { dev: 8, ino: 43 };
        assert_eq!(t.create(other, real(S_IFREG | 0o600, 0, 0)), Err(Unkept(ENOSPC)));
        assert_eq!(
            t.setxattr(other, dir, xattr::ACL_DEFAULT, &sample_acl().to_xattr(), 0, &ROOT),
            Err(XattrError::Unkept(ENOSPC))
        );
        assert!(!t.may_shape_new_files(), "a refused default ACL shapes nothing");
        assert_eq!(t.refused(), (8, ENOSPC));
        assert_eq!((t.entries(), log.0.lock().unwrap().len()), before);
        // A refusal that comes first is the call's, not the journal's.
        assert_eq!(t.removexattr(KEY, file, b"trusted.zz", &ROOT), Err(XattrError::NoData));
        // A change that changes nothing writes nothing, full or not.
        t.chown(KEY, file, Some(5), None, &ROOT).unwrap();
        assert_eq!(t.refused().0, 8);
    }

    #[test]
    fn an_access_acl_and_the_mode_it_implies_are_one_entry() {
        let (t, log) = journaled();
        let r = real(S_IFREG | 0o644, 1001, 1001);
        t.setxattr(KEY, r, xattr::ACL_ACCESS, &sample_acl().to_xattr(), 0, &ROOT).unwrap();
        let log = log.0.lock().unwrap();
        assert_eq!(log.len(), 1);
        assert!(matches!(&log[0], Change::Set { attrs, xattrs, .. }
            if attrs.perms() == 0o750 && xattrs.contains_key(xattr::ACL_ACCESS)));
    }

    #[test]
    fn a_forget_the_journal_refuses_is_queued_and_written_before_the_next_entry() {
        let (t, log) = journaled();
        let file = real(S_IFREG | 0o644, 1001, 1001);
        t.chown(KEY, file, Some(5), None, &ROOT).unwrap();
        log.1.store(true, Ordering::Relaxed);
        // The file is gone: the table forgets it whatever the journal says.
        t.forget(KEY);
        assert!(t.is_empty());
        assert_eq!((t.queued_forgets(), t.refused().0), (1, 0));
        assert_eq!(t.flush_queued(), Err(Unkept(ENOSPC)));
        log.1.store(false, Ordering::Relaxed);
        // A new file takes the inode number: the forget goes first.
        t.create(KEY, real(S_IFREG | 0o600, 0, 0)).unwrap();
        assert_eq!(t.queued_forgets(), 0);
        let log = log.0.lock().unwrap();
        assert_eq!(log[1], Change::Forget { key: KEY });
        assert!(matches!(log[2], Change::Set { key: KEY, .. }));
    }

    #[test]
    fn a_stale_record_is_forgotten_once() {
        let (t, log) = journaled();
        t.chown(KEY, real(S_IFDIR | 0o755, 1001, 1001), Some(5), None, &ROOT).unwrap();
        let file = real(S_IFREG | 0o644, 1001, 1001);
        assert!(t.forget_stale(KEY, file));
        assert!(!t.forget_stale(KEY, file));
        t.forget(KEY);
        assert_eq!(log.0.lock().unwrap().len(), 2, "forgetting nothing writes nothing");
    }

    #[test]
    fn every_change_reaches_the_journal_as_the_new_state() {
        let (t, log) = journaled();
        let r = real(S_IFREG | 0o644, 1001, 1001);
        assert!(!t.changed());
        t.view(KEY, r);
        assert!(!t.changed(), "looking is not changing");
        t.chown(KEY, r, Some(5), None, &ROOT).unwrap();
        t.chmod(KEY, r, 0o600, &ROOT).unwrap();
        t.change_xattrs(KEY, r, |x| x.insert(b"trusted.a".to_vec(), vec![1])).unwrap();
        t.forget(KEY);
        let log = log.0.lock().unwrap();
        assert_eq!(log.len(), 4);
        assert!(
            matches!(&log[1], Change::Set { attrs, .. } if attrs.mode == S_IFREG | 0o600 && attrs.uid == 5)
        );
        assert!(matches!(&log[2], Change::Set { xattrs, .. } if xattrs.len() == 1));
        assert_eq!(log[3], Change::Forget { key: KEY });
        assert!(t.changed());
    }

    #[test]
    fn concurrent_chowns_of_one_file_lose_no_update() {
        let t = std::sync::Arc::new(InodeTable::new(IdMap::new(USER.0, USER.1)));
        let r = real(S_IFREG | 0o644, 1001, 1001);
        let threads: Vec<_> = (0..4u32)
            .map(|i| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for n in 0..1000u32 {
                        let key = InodeKey { dev: 1, ino: u64::from(n) };
                        if i % 2 == 0 {
                            t.chown(key, r, Some(n), None, &Creds::root()).unwrap();
                        } else {
                            t.chown(key, r, None, Some(n + 1), &Creds::root()).unwrap();
                        }
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        for n in 0..1000u32 {
            let v = t.view(InodeKey { dev: 1, ino: u64::from(n) }, r);
            assert_eq!((v.uid, v.gid), (n, n + 1));
        }
    }
}
