//! The files of an image source, by their path in it: an OCI layout
//! directory (`oci:`), or the members of a tar archive (`oci-archive:`,
//! `docker-archive:`), indexed once so that each blob is read from its
//! offset without unpacking the archive.
//!
//! Paths come from the source's own JSON (a docker archive's
//! `manifest.json` names its layers): one that is absolute or has a `..`
//! component is refused, so nothing outside the source is ever opened.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// At most this many members in an archive's index (a docker archive of
/// a hundred layers has a few hundred).
const MAX_MEMBERS: usize = 1 << 20;

/// An image source's files.
pub trait Blobs: std::fmt::Debug {
    /// Opens the file at `path` (relative): its reader and its size.
    fn open(&self, path: &str) -> io::Result<(Box<dyn Read + Send>, u64)>;
}

/// `path` made relative and plain: `./` and empty parts dropped, an
/// absolute path or a `..` component refused.
pub fn clean(path: &str) -> io::Result<String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if path.starts_with('/') || parts.contains(&"..") || parts.is_empty() || path.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("`{path}` is not a path inside the image (absolute, empty or with `..`)"),
        ));
    }
    Ok(parts.join("/"))
}

/// An OCI image layout directory.
#[derive(Debug)]
pub struct DirBlobs {
    root: PathBuf,
}

impl DirBlobs {
    pub fn new(root: &Path) -> DirBlobs {
        DirBlobs { root: root.to_path_buf() }
    }
}

impl Blobs for DirBlobs {
    fn open(&self, path: &str) -> io::Result<(Box<dyn Read + Send>, u64)> {
        let file = File::open(self.root.join(clean(path)?))?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "it is not a regular file"));
        }
        Ok((Box::new(file), meta.len()))
    }
}

/// A tar archive's regular members, by name.
#[derive(Debug)]
pub struct TarBlobs {
    file: PathBuf,
    /// Name → (offset of the data, size).
    members: HashMap<String, (u64, u64)>,
    /// Name → the name a symbolic or hard link member points at (docker
    /// save links a layer another image has already written).
    links: HashMap<String, String>,
}

impl TarBlobs {
    /// Reads the archive's headers (data skipped) into an index.
    pub fn index(file: &Path) -> io::Result<TarBlobs> {
        let f = File::open(file)?;
        let mut archive = tar::Archive::new(f);
        let mut members = HashMap::new();
        let mut links = HashMap::new();
        for entry in archive.entries_with_seek()? {
            let entry = entry?;
            if members.len() + links.len() >= MAX_MEMBERS {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("it has more than {MAX_MEMBERS} members"),
                ));
            }
            let raw = entry.path_bytes();
            let Ok(name) = std::str::from_utf8(&raw) else { continue };
            // A member fr could not name is never asked for.
            let Ok(name) = clean(name) else { continue };
            let kind = entry.header().entry_type();
            if kind.is_file() || kind == tar::EntryType::Continuous {
                members.insert(name, (entry.raw_file_position(), entry.size()));
            } else if kind.is_symlink() || kind.is_hard_link() {
                let Some(target) = entry.link_name_bytes() else { continue };
                let Ok(target) = std::str::from_utf8(&target) else { continue };
                // A symbolic link is relative to its directory; a hard
                // link names a member from the top.
                let target = if kind.is_symlink() && !target.starts_with('/') {
                    match name.rsplit_once('/') {
                        Some((dir, _)) => format!("{dir}/{target}"),
                        None => target.to_string(),
                    }
                } else {
                    target.to_string()
                };
                links.insert(name, target);
            }
        }
        Ok(TarBlobs { file: file.to_path_buf(), members, links })
    }

    /// The member `path` names, following links (a bounded number).
    fn find(&self, path: &str) -> io::Result<(u64, u64)> {
        let mut name = clean(path)?;
        for _ in 0..16 {
            if let Some(&at) = self.members.get(&name) {
                return Ok(at);
            }
            match self.links.get(&name) {
                Some(target) => name = normalize(target)?,
                None => break,
            }
        }
        Err(io::Error::new(io::ErrorKind::NotFound, format!("the archive has no member `{path}`")))
    }
}

/// A link target with `..` resolved inside the archive.
fn normalize(target: &str) -> io::Result<String> {
    let mut parts: Vec<&str> = Vec::new();
    for p in target.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the link `{target}` leads out of the archive"),
                    ));
                }
            }
            p => parts.push(p),
        }
    }
    clean(&parts.join("/"))
}

impl Blobs for TarBlobs {
    fn open(&self, path: &str) -> io::Result<(Box<dyn Read + Send>, u64)> {
        let (offset, size) = self.find(path)?;
        let mut f = File::open(&self.file)?;
        f.seek(SeekFrom::Start(offset))?;
        Ok((Box::new(f.take(size)), size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_source() {
        assert_eq!(clean("./blobs//sha256/ab").unwrap(), "blobs/sha256/ab");
        for bad in ["/etc/passwd", "../x", "a/../../b", "", ".", "a\0b"] {
            assert!(clean(bad).is_err(), "{bad:?}");
        }
        assert_eq!(normalize("a/../b/c").unwrap(), "b/c");
        assert!(normalize("a/../../c").is_err());
    }

    #[test]
    fn an_archive_is_indexed_and_its_links_followed() {
        let dir = std::env::temp_dir().join(format!("fr-blobs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.tar");
        let mut b = tar::Builder::new(File::create(&path).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h.clone(), "x/layer.tar", &b"hello"[..]).unwrap();
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        b.append_link(&mut l, "y/layer.tar", "../x/layer.tar").unwrap();
        let mut out = tar::Header::new_gnu();
        out.set_entry_type(tar::EntryType::Symlink);
        out.set_size(0);
        b.append_link(&mut out, "z/layer.tar", "../../etc/passwd").unwrap();
        b.into_inner().unwrap();
        let blobs = TarBlobs::index(&path).unwrap();
        let mut s = String::new();
        let (mut r, size) = blobs.open("./y/layer.tar").unwrap();
        r.read_to_string(&mut s).unwrap();
        assert_eq!((s.as_str(), size), ("hello", 5));
        assert!(blobs.open("z/layer.tar").is_err());
        assert_eq!(blobs.open("nope").err().map(|e| e.kind()), Some(io::ErrorKind::NotFound));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
