//! `fr rm IMAGE`: removes an image, including the files a subuid-mode
//! session gave to subordinate ids, which the user cannot delete on the
//! host. fr enters a user namespace mapping the user's ranges, where it
//! holds every capability over those files, and removes the tree there
//! (rootless podman's `podman unshare rm -rf`, in one command).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::Error;
use crate::mode;
use crate::store::ImageStore;

/// Removes `image`, which no fr session may be using.
pub fn remove(image: &Path) -> Result<(), Error> {
    let path = crate::run::check_image(image)?;
    let shown = path.display().to_string();
    // Only a tree fr has worked on (it holds fr's store) or one with files
    // of the user's subordinate ids, what fr rm is for: `fr rm ~` by a slip
    // of the hand must not be `rm -rf ~`.
    let is_image =
        std::fs::symlink_metadata(path.join(crate::store::DIR)).is_ok_and(|m| m.is_dir());
    let ids = mode::id_map(Path::new("/"));
    if path.parent().is_none() || !(is_image || holds_subordinate_files(&path, &ids)) {
        return Err(Error::Remove {
            path: shown,
            why: format!(
                "neither an fr image (no {}) nor a tree with files of your subordinate ids: \
                 fr rm removes only those; rm -rf removes the rest",
                crate::store::DIR
            ),
        });
    }
    // Holding the store's lock keeps other sessions out while the tree goes.
    let store = ImageStore::open(&path)?;
    match mode::subordinates(Path::new("/")) {
        Ok(subs) => crate::idmap::enter(&subs)?,
        Err(why) => log::debug!("removing as the user alone: {why}"),
    }
    let removed = remove_tree(&path, &path);
    drop(store);
    removed.map_err(|why| Error::Remove { path: shown, why })
}

/// Whether some file under `dir` (as far as the user can read) belongs to
/// one of the user's subordinate ids: what is left after a `rm -rf` that
/// failed on a subuid-mode session's files.
fn holds_subordinate_files(dir: &Path, ids: &fr_emulator::IdMap) -> bool {
    use std::os::unix::fs::MetadataExt;
    let within =
        |id: u32, ranges: &[fr_emulator::ids::Range]| ranges.iter().any(|r| r.contains(id));
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.flatten().any(|entry| {
        entry.metadata().is_ok_and(|m| {
            within(m.uid(), ids.sub_uids())
                || within(m.gid(), ids.sub_gids())
                || (m.is_dir() && holds_subordinate_files(&entry.path(), ids))
        })
    })
}

/// Removes the tree at `path`, making each directory the user owns
/// writable and searchable first (real root's `rm -rf` needs no such step;
/// a directory the workload chmod'ed to 0555 would otherwise stop it).
fn remove_tree(path: &Path, top: &Path) -> Result<(), String> {
    let at = |e: io::Error| match path.strip_prefix(top) {
        Ok(rel) if !rel.as_os_str().is_empty() => format!("{}: {e}", rel.display()),
        _ => e.to_string(),
    };
    let meta = std::fs::symlink_metadata(path).map_err(at)?;
    if !meta.is_dir() {
        return std::fs::remove_file(path).map_err(at);
    }
    if meta.permissions().mode() & 0o700 != 0o700 {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
    }
    for entry in std::fs::read_dir(path).map_err(at)? {
        remove_tree(&entry.map_err(at)?.path(), top)?;
    }
    std::fs::remove_dir(path).map_err(at)
}
