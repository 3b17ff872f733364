//! What a file given in the wrong place is, from its first bytes or its
//! member names, so that the error can say what to do with it: a tarball
//! given as IMAGE goes to `fr import`, an Apptainer SIF image or a
//! container image archive (`docker save`, `podman save`, an OCI layout)
//! is not a root file system fr can take yet.

use std::io::Read;
use std::path::Path;

/// A file's kind, as far as fr's messages care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A tar archive (`ustar` at offset 257, POSIX and GNU alike).
    Tar,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
    /// Apptainer's Singularity Image Format.
    Sif,
    Other,
}

impl Kind {
    /// The kind of the file that begins with `head` (its first 512 bytes,
    /// or fewer if it is shorter).
    pub fn of(head: &[u8]) -> Kind {
        if head.starts_with(&[0x1f, 0x8b]) {
            Kind::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Kind::Zstd
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Kind::Xz
        } else if head.starts_with(b"BZh") {
            Kind::Bzip2
        } else if head.get(32..41) == Some(b"SIF_MAGIC") {
            // After the 32-byte launch line (`#!/usr/bin/env run-singularity`).
            Kind::Sif
        } else if head.get(257..262) == Some(b"ustar") {
            Kind::Tar
        } else {
            Kind::Other
        }
    }

    /// The kind of the file at `path`; `Other` if it cannot be read.
    pub fn of_file(path: &Path) -> Kind {
        let mut head = Vec::with_capacity(512);
        match std::fs::File::open(path).and_then(|f| f.take(512).read_to_end(&mut head)) {
            Ok(_) => Kind::of(&head),
            Err(_) => Kind::Other,
        }
    }

    /// An archive `fr import` may unpack (once decompressed).
    pub fn is_archive(self) -> bool {
        !matches!(self, Kind::Sif | Kind::Other)
    }

    /// What the file is, for a message: "a gzip-compressed file".
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Tar => "a tar archive",
            Kind::Gzip => "a gzip-compressed file",
            Kind::Zstd => "a zstd-compressed file",
            Kind::Xz => "an xz-compressed file",
            Kind::Bzip2 => "a bzip2-compressed file",
            Kind::Sif => "an Apptainer SIF image",
            Kind::Other => "a file",
        }
    }
}

/// Whether a member named `name` belongs to a container image archive
/// rather than to a root file system: the top-level files of an OCI
/// layout (`oci-layout`, `index.json`, `blobs/`) and of `docker save` /
/// `podman save` (`manifest.json`, `repositories`, and layers and configs
/// named by their sha256 digest: 64 hex digits, alone or with `.json` or
/// `.tar`).
pub fn container_member(name: &[u8]) -> bool {
    let top = name.split(|&b| b == b'/').find(|p| !p.is_empty() && *p != b".").unwrap_or_default();
    let digest = |s: &[u8]| s.len() == 64 && s.iter().all(u8::is_ascii_hexdigit);
    let stem = top.strip_suffix(b".json").or_else(|| top.strip_suffix(b".tar")).unwrap_or(top);
    matches!(top, b"oci-layout" | b"index.json" | b"manifest.json" | b"repositories" | b"blobs")
        || digest(stem)
}

/// Whether the directory `dir` is an OCI image layout.
pub fn oci_layout(dir: &Path) -> bool {
    dir.join("oci-layout").is_file() || dir.join("index.json").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_their_first_bytes() {
        let mut tar = vec![0u8; 512];
        tar[257..263].copy_from_slice(b"ustar\0");
        assert_eq!(Kind::of(&tar), Kind::Tar);
        assert_eq!(Kind::of(&[0x1f, 0x8b, 8, 0]), Kind::Gzip);
        assert_eq!(Kind::of(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Kind::Zstd);
        assert_eq!(Kind::of(b"\xfd7zXZ\0\0"), Kind::Xz);
        assert_eq!(Kind::of(b"BZh91AY"), Kind::Bzip2);
        let mut sif = b"#!/usr/bin/env run-singularity\n\0".to_vec();
        sif.extend_from_slice(b"SIF_MAGIC\0");
        assert_eq!(Kind::of(&sif), Kind::Sif);
        assert_eq!(Kind::of(b"hello"), Kind::Other);
        assert!(Kind::Xz.is_archive() && !Kind::Sif.is_archive());
    }

    #[test]
    fn container_archives_by_their_member_names() {
        let digest = "a".repeat(64);
        for name in [
            "oci-layout".to_string(),
            "./index.json".into(),
            "manifest.json".into(),
            "blobs/".into(),
            "blobs/sha256/".into(),
            format!("{digest}/"),
            format!("{digest}/layer.tar"),
            format!("{digest}.json"),
            format!("./{digest}.tar"),
        ] {
            assert!(container_member(name.as_bytes()), "{name}");
        }
        for name in ["./", "etc/passwd", "bin", "usr/share/manifest.json", "abc.json"] {
            assert!(!container_member(name.as_bytes()), "{name}");
        }
    }
}
