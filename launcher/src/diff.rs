//! What an image changed over a base tree, as the members of an OCI
//! layer (image-spec `layer.md`, "Change Types"): every path that is new,
//! or whose type, mode, owner, group, device, size, modification time,
//! link target or xattrs differ from the base's (each side as a session
//! sees it, its store's records laid over), and a whiteout `.wh.NAME` for
//! every path of the base that is gone (one for a directory gone with all
//! it holds). A file with several names that changed is written at each,
//! so that the layer keeps them one file.
//!
//! Contents are compared by size and modification time to the
//! nanosecond, as `umoci` compares them by default (mtree's `size` and
//! `time`); a copy of the base made by fr keeps both.

use std::collections::{BTreeSet, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use fr_emulator::{Attrs, InodeKey, InodeTable};
use rustix::fs::{self, AtFlags, FileType, StatxFlags, CWD};

use crate::error::Error;
use crate::store::{key_of, DIR};

/// One member of the layer: a path of the image, or a whiteout.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// The file at this path of the image, named so in the layer.
    Write { path: PathBuf, name: Vec<u8> },
    /// `.wh.NAME` in the layer: NAME of the base is gone.
    Whiteout { name: Vec<u8> },
}

/// What is compared of a file.
#[derive(Debug, PartialEq, Eq)]
struct Facts {
    view: Attrs,
    size: u64,
    mtime: (i64, u32),
    link: Vec<u8>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    key: InodeKey,
    nlink: u32,
}

impl Facts {
    fn same(&self, other: &Facts) -> bool {
        let dir = self.view.file_type() == fr_emulator::FileType::Directory;
        self.view == other.view
            && (dir || (self.size == other.size && self.mtime == other.mtime))
            && self.link == other.link
            && self.xattrs == other.xattrs
    }
}

fn facts(table: &InodeTable, path: &Path) -> Result<Option<Facts>, Error> {
    let st = match fs::statx(CWD, path, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => {
            return Err(Error::Image { path: path.display().to_string(), why: e.to_string() })
        }
    };
    let key = key_of(&st);
    // As `fr export` reads a file (export.rs, Writer::member).
    let real = crate::store::real_attrs(&st, table.ids());
    let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = table.xattrs(key, real).into_iter().collect();
    xattrs.extend(crate::export::user_xattrs(path));
    xattrs.sort();
    let link = if FileType::from_raw_mode(st.stx_mode.into()) == FileType::Symlink {
        std::fs::read_link(path)
            .map(|l| l.into_os_string().into_encoded_bytes())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(Some(Facts {
        view: table.view(key, real),
        size: st.stx_size,
        mtime: (st.stx_mtime.tv_sec, st.stx_mtime.tv_nsec),
        link,
        xattrs,
        key,
        nlink: st.stx_nlink,
    }))
}

/// The names in `dir` (without fr's store at the top). A directory read
/// that fails part way is an error, not a shorter list: a name missing on
/// the image's side would become a whiteout in the layer.
fn names(dir: &Path, top: bool) -> Result<BTreeSet<Vec<u8>>, Error> {
    let fail =
        |e: std::io::Error| Error::Image { path: dir.display().to_string(), why: e.to_string() };
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).map_err(fail)? {
        let name = entry.map_err(fail)?.file_name().as_bytes().to_vec();
        if !(top && name == DIR.as_bytes()) {
            out.insert(name);
        }
    }
    Ok(out)
}

/// A member found by the walk: written for sure, or only if another
/// name of its file changed (`maybe`).
struct Found {
    change: Change,
    maybe: Option<InodeKey>,
}

/// The layer's members, parents before children, in name order.
pub fn changes(
    base: &Path,
    base_table: &InodeTable,
    image: &Path,
    table: &InodeTable,
) -> Result<Vec<Change>, Error> {
    let mut found = Vec::new();
    // The root itself, when its owner, mode or xattrs changed.
    let (now, before) = (facts(table, image)?, facts(base_table, base)?);
    if let (Some(now), Some(before)) = (&now, &before) {
        if !now.same(before) {
            let change = Change::Write { path: image.to_path_buf(), name: b".".to_vec() };
            found.push(Found { change, maybe: None });
        }
    }
    let mut changed_links = HashSet::new();
    let walker = Walker { base_table, table };
    walker.walk(base, image, b".", true, &mut found, &mut changed_links)?;
    Ok(found
        .into_iter()
        .filter(|f| f.maybe.is_none_or(|k| changed_links.contains(&k)))
        .map(|f| f.change)
        .collect())
}

struct Walker<'a> {
    base_table: &'a InodeTable,
    table: &'a InodeTable,
}

impl Walker<'_> {
    fn walk(
        &self,
        base: &Path,
        dir: &Path,
        rel: &[u8],
        top: bool,
        out: &mut Vec<Found>,
        changed_links: &mut HashSet<InodeKey>,
    ) -> Result<(), Error> {
        let here = names(dir, top)?;
        let there = if base.is_dir() { names(base, top)? } else { BTreeSet::new() };
        let all: BTreeSet<&Vec<u8>> = here.iter().chain(there.iter()).collect();
        for name in all {
            let os = std::ffi::OsStr::from_bytes(name);
            let member = [rel, b"/", name].concat();
            let (path, base_path) = (dir.join(os), base.join(os));
            let now = if here.contains(name) { facts(self.table, &path)? } else { None };
            let before =
                if there.contains(name) { facts(self.base_table, &base_path)? } else { None };
            let Some(now) = now else {
                let name = [rel, b"/.wh.", name].concat();
                out.push(Found { change: Change::Whiteout { name }, maybe: None });
                continue;
            };
            let is_dir = now.view.file_type() == fr_emulator::FileType::Directory;
            let kept = before.as_ref().is_some_and(|b| b.same(&now));
            let linkable = !is_dir && now.nlink > 1;
            // Unchanged and of one name: not in the layer.
            if !kept || linkable {
                if linkable && !kept {
                    changed_links.insert(now.key);
                }
                out.push(Found {
                    change: Change::Write { path: path.clone(), name: member.clone() },
                    maybe: kept.then_some(now.key),
                });
            }
            if is_dir {
                // Below a directory that replaced a file of the base, the
                // base has nothing.
                let was_dir = before
                    .as_ref()
                    .is_some_and(|b| b.view.file_type() == fr_emulator::FileType::Directory);
                let below = if was_dir { base_path } else { PathBuf::new() };
                self.walk(&below, &path, &member, false, out, changed_links)?;
            }
        }
        Ok(())
    }
}
