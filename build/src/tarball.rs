//! What the builder writes into an image itself (the `/.singularity.d`
//! metadata, busybox and its links) goes in as a tar archive that `fr
//! import` unpacks: every member owned by root, as real root's build
//! leaves it, and what the user cannot set recorded in the image's store,
//! beside the records already there. The import refuses a member whose
//! path leads through a symbolic link, so a link the image holds cannot
//! send a write outside it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use fr_emulator::tar::{self, Kind, Member};
use fr_image::layout::{Content, Entry};

use crate::error::Error;

/// A tar archive being written to a file.
#[derive(Debug)]
pub struct Tarball {
    path: PathBuf,
    out: BufWriter<File>,
    mtime: i64,
    members: usize,
}

impl Tarball {
    /// Starts the archive `path`; members get `mtime` (seconds since the
    /// epoch).
    pub fn create(path: &Path, mtime: i64) -> Result<Tarball, Error> {
        let file = File::create(path).map_err(Error::io(format!("writing {}", path.display())))?;
        Ok(Tarball { path: path.to_path_buf(), out: BufWriter::new(file), mtime, members: 0 })
    }

    fn member(&mut self, name: &str, kind: Kind, mode: u32) -> Member {
        Member {
            path: format!("./{}", name.trim_start_matches('/')).into_bytes(),
            kind: Some(kind),
            mode,
            uname: b"root".to_vec(),
            gname: b"root".to_vec(),
            mtime: self.mtime,
            ..Member::default()
        }
    }

    fn put(&mut self, m: &Member, data: &[u8]) -> Result<(), Error> {
        let what = format!("writing {}", self.path.display());
        self.out.write_all(&tar::header(m)).map_err(Error::io(&what))?;
        if !data.is_empty() {
            self.out.write_all(data).map_err(Error::io(&what))?;
            self.out
                .write_all(&vec![0u8; tar::padding(data.len() as u64)])
                .map_err(Error::io(what))?;
        }
        self.members += 1;
        Ok(())
    }

    /// The image's root directory itself, with `mode`.
    pub fn root(&mut self, mode: u32) -> Result<(), Error> {
        let m = Member { path: b".".to_vec(), ..self.member("", Kind::Directory, mode) };
        self.put(&m, &[])
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> Result<(), Error> {
        let m = self.member(name, Kind::Directory, mode);
        self.put(&m, &[])
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> Result<(), Error> {
        let mut m = self.member(name, Kind::Regular, mode);
        m.size = data.len() as u64;
        self.put(&m, data)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> Result<(), Error> {
        let mut m = self.member(name, Kind::Symlink, 0o777);
        m.link = target.as_bytes().to_vec();
        self.put(&m, &[])
    }

    /// Another name of the file `target` (a member written before).
    pub fn hard_link(&mut self, name: &str, target: &str) -> Result<(), Error> {
        let mut m = self.member(name, Kind::HardLink, 0o644);
        m.link = format!("./{}", target.trim_start_matches('/')).into_bytes();
        self.put(&m, &[])
    }

    /// The layout's entries, in order.
    pub fn entries(&mut self, entries: &[Entry]) -> Result<(), Error> {
        for e in entries {
            match &e.content {
                Content::Dir => self.dir(&e.path, e.mode)?,
                Content::File(data) => self.file(&e.path, e.mode, data)?,
                Content::Symlink(target) => self.symlink(&e.path, target)?,
            }
        }
        Ok(())
    }

    /// How many members so far.
    pub fn len(&self) -> usize {
        self.members
    }

    pub fn is_empty(&self) -> bool {
        self.members == 0
    }

    /// Ends the archive and writes it out.
    pub fn finish(mut self) -> Result<PathBuf, Error> {
        let what = format!("writing {}", self.path.display());
        self.out.write_all(&tar::END).map_err(Error::io(&what))?;
        self.out.flush().map_err(Error::io(what))?;
        Ok(self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_read_back_as_written_owned_by_root() {
        let dir = std::env::temp_dir().join(format!("fr-build-tarball-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.tar");
        let mut t = Tarball::create(&path, 1_700_000_000).unwrap();
        t.root(0o755).unwrap();
        t.entries(&[
            Entry { path: ".singularity.d".into(), mode: 0o755, content: Content::Dir },
            Entry {
                path: "environment".into(),
                mode: 0o777,
                content: Content::Symlink("x".into()),
            },
            Entry {
                path: "bin/busybox".into(),
                mode: 0o755,
                content: Content::File(b"elf".to_vec()),
            },
        ])
        .unwrap();
        t.hard_link("bin/sh", "bin/busybox").unwrap();
        assert_eq!(t.len(), 5);
        t.finish().unwrap();
        let mut r = tar::Reader::new(File::open(&path).unwrap());
        let mut seen = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            let m = &e.member;
            let mut data = Vec::new();
            r.data(&mut data).unwrap();
            seen.push(format!(
                "{} {:?} {:o} {}:{} {} {}",
                String::from_utf8_lossy(&m.path),
                m.kind,
                m.mode,
                m.uid,
                m.gid,
                String::from_utf8_lossy(&m.link),
                String::from_utf8_lossy(&data)
            ));
        }
        assert_eq!(
            seen,
            [
                "./ Some(Directory) 755 0:0  ",
                "./.singularity.d/ Some(Directory) 755 0:0  ",
                "./environment Some(Symlink) 777 0:0 x ",
                "./bin/busybox Some(Regular) 755 0:0  elf",
                "./bin/sh Some(HardLink) 644 0:0 ./bin/busybox ",
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
