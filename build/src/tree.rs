//! An image's tree as the builder reads it, as the user and without ever
//! leaving it: every path is resolved in the image's root
//! (`openat2(RESOLVE_IN_ROOT)`), so that an absolute symbolic link in the
//! image leads to the image's file, as it would inside, and never to the
//! host's.

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use fr_image::layout::{Existing, Image};
use rustix::fs::{self, AtFlags, FileType, Mode, OFlags, ResolveFlags, StatxFlags};

use crate::error::Error;

/// The most a file the builder reads back from an image may hold (a label
/// file, an environment script): anything bigger is not one.
const READ_LIMIT: u64 = 16 << 20;

/// How many symbolic links one path may go through, as the kernel's
/// `MAXSYMLINKS`.
const MAX_LINKS: usize = 40;

#[derive(Debug)]
pub struct Tree {
    path: PathBuf,
    root: OwnedFd,
}

/// A relative path's parts, without empty ones and `.`.
fn parts(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|p| !p.is_empty() && *p != ".")
}

impl Tree {
    pub fn open(path: &Path) -> Result<Tree, Error> {
        let root =
            fs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::Io {
                    what: format!("opening {}", path.display()),
                    source: e.into(),
                })?;
        Ok(Tree { path: path.to_path_buf(), root })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory that holds `rel`, and `rel`'s last part; `None` for
    /// the root itself or a parent that is not there.
    fn parent_of<'a>(&self, rel: &'a str) -> Option<(OwnedFd, &'a str)> {
        let rel = rel.trim_matches('/');
        let (dir, name) = match rel.rsplit_once('/') {
            Some((dir, name)) => (dir, name),
            None => (".", rel),
        };
        if name.is_empty() || name == "." || name == ".." {
            return None;
        }
        let dir = if dir.is_empty() { "." } else { dir };
        let fd = fs::openat2(
            &self.root,
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
        .ok()?;
        Some((fd, name))
    }

    /// The contents of the regular file `rel` (its links followed in the
    /// image), if the user may read it.
    pub fn read(&self, rel: &str) -> Option<Vec<u8>> {
        let fd = fs::openat2(
            &self.root,
            rel.trim_start_matches('/'),
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
        .ok()?;
        let st = fs::fstat(&fd).ok()?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return None;
        }
        let mut bytes = Vec::new();
        std::fs::File::from(fd).take(READ_LIMIT).read_to_end(&mut bytes).ok()?;
        Some(bytes)
    }

    /// Where `rel` leads in the image, as a path from its root without
    /// links: each link on the way replaced by its target (an absolute one
    /// from the image's root), `..` never above the root, and what does not
    /// exist kept as written (Apptainer's `securejoin.SecureJoin`). A
    /// trailing `/` is kept.
    pub fn resolve(&self, rel: &str) -> String {
        let mut done: Vec<String> = Vec::new();
        let mut todo: VecDeque<String> = parts(rel).map(String::from).collect();
        let mut links = 0;
        while let Some(part) = todo.pop_front() {
            if part == ".." {
                done.pop();
                continue;
            }
            let at =
                if done.is_empty() { part.clone() } else { format!("{}/{part}", done.join("/")) };
            match self.lookup(&at) {
                Existing::Symlink(target) if links < MAX_LINKS => {
                    links += 1;
                    if target.starts_with('/') {
                        done.clear();
                    }
                    for p in parts(&target).rev() {
                        todo.push_front(p.to_string());
                    }
                }
                _ => done.push(part),
            }
        }
        let mut out = done.join("/");
        if rel.ends_with('/') && !out.is_empty() {
            out.push('/');
        }
        out
    }
}

impl Tree {
    /// The type of what is at `rel` (its last part not followed), without
    /// reading it; `None` if nothing is there.
    pub fn file_type(&self, rel: &str) -> Option<FileType> {
        let Some((dir, name)) = self.parent_of(rel) else {
            return parts(rel).next().is_none().then_some(FileType::Directory);
        };
        let st = fs::statx(&dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE).ok()?;
        Some(FileType::from_raw_mode(st.stx_mode.into()))
    }
}

impl Image for Tree {
    fn lookup(&self, rel: &str) -> Existing {
        let Some((dir, name)) = self.parent_of(rel) else {
            return if parts(rel).next().is_none() { Existing::Dir } else { Existing::Missing };
        };
        let Ok(st) = fs::statx(&dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE) else {
            return Existing::Missing;
        };
        match FileType::from_raw_mode(st.stx_mode.into()) {
            FileType::Directory => Existing::Dir,
            FileType::RegularFile => {
                let fd = fs::openat(
                    &dir,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                    Mode::empty(),
                );
                let mut bytes = Vec::new();
                let read = fd.ok().and_then(|fd| {
                    std::fs::File::from(fd).take(READ_LIMIT).read_to_end(&mut bytes).ok()
                });
                Existing::File(read.map(|_| bytes))
            }
            FileType::Symlink => match fs::readlinkat(&dir, name, Vec::new()) {
                Ok(target) => Existing::Symlink(target.to_string_lossy().into_owned()),
                Err(_) => Existing::Other,
            },
            _ => Existing::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn paths_resolve_inside_the_image_as_apptainers_securejoin() {
        let root = std::env::temp_dir().join(format!("fr-build-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        symlink("/usr", root.join("abs")).unwrap();
        symlink("../../../../etc", root.join("usr/escape")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        std::fs::write(root.join("usr/lib/f"), "hello").unwrap();
        let t = Tree::open(&root).unwrap();
        assert_eq!(t.resolve("/lib/x"), "usr/lib/x");
        assert_eq!(t.resolve("abs/lib/"), "usr/lib/");
        assert_eq!(t.resolve("usr/escape/passwd"), "etc/passwd");
        assert_eq!(t.resolve("/a/../../b/./c"), "b/c");
        assert_eq!(t.resolve("loop/x"), "loop/x");
        assert_eq!(t.resolve("/"), "");
        assert_eq!(t.lookup("lib"), Existing::Symlink("usr/lib".into()));
        assert_eq!(t.lookup("lib/f"), Existing::File(Some(b"hello".to_vec())));
        assert_eq!(t.lookup("usr"), Existing::Dir);
        assert_eq!(t.lookup(""), Existing::Dir);
        assert_eq!(t.lookup("nothing/here"), Existing::Missing);
        assert_eq!(t.read("/abs/lib/f").as_deref(), Some(&b"hello"[..]));
        assert_eq!(t.read("usr/escape/hostname"), None);
        std::fs::remove_dir_all(root).unwrap();
    }
}
