//! An OCI image layout written: blobs by digest, a config and a manifest
//! as the image spec gives them, `index.json` with the manifest tagged,
//! and the layout as an archive (`oci-archive:`). What goes into a layer
//! is the caller's; this writes the JSON around it.
//!
//! Every file is written under a temporary name and renamed into place,
//! `index.json` last, so that a layout is never seen with a manifest
//! whose blobs are missing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use super::digest::{Digest, Hasher};
use super::host_platform;
use super::image::REF_NAME;

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// A blob's descriptor, as the manifest and index give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

impl Blob {
    fn json(&self) -> serde_json::Value {
        json!({"mediaType": self.media_type, "digest": self.digest.as_str(), "size": self.size})
    }
}

/// A writer that hashes what passes through it.
#[derive(Debug)]
pub struct Hashing<W> {
    pub inner: W,
    pub hash: Hasher,
}

impl<W: Write> Hashing<W> {
    pub fn new(inner: W) -> Hashing<W> {
        Hashing { inner, hash: Hasher::default() }
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// An OCI image layout directory being written.
#[derive(Debug)]
pub struct Layout {
    dir: PathBuf,
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl Layout {
    /// Opens `dir` as a layout, making it (and `oci-layout`,
    /// `blobs/sha256`) if it is not one yet. A directory that holds
    /// something else is refused.
    pub fn create(dir: &Path) -> io::Result<Layout> {
        let marker = dir.join("oci-layout");
        if dir.exists() && !marker.exists() {
            let empty = std::fs::read_dir(dir).map_err(|e| with_path(dir, e))?.next().is_none();
            if !empty {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is no OCI image layout", dir.display()),
                ));
            }
        }
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(|e| with_path(&blobs, e))?;
        let layout = Layout { dir: dir.to_path_buf() };
        if !marker.exists() {
            layout.replace("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        Ok(layout)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `name` under a temporary name and renames it into place.
    fn replace(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp-{}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(|e| with_path(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| with_path(&path, e))
    }

    /// A new temporary file for a blob being written, and its path.
    pub fn blob_file(&self) -> io::Result<(File, PathBuf)> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = self.dir.join(format!(
            "blobs/sha256/.tmp-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::create(&path).map_err(|e| with_path(&path, e))?;
        Ok((file, path))
    }

    /// Renames a blob written to `tmp` to its digest's name.
    pub fn commit(&self, tmp: &Path, digest: &Digest) -> io::Result<()> {
        let path = self.dir.join(digest.blob_path());
        std::fs::rename(tmp, &path).map_err(|e| with_path(&path, e))
    }

    /// Writes `bytes` as a blob.
    pub fn put(&self, media_type: &str, bytes: &[u8]) -> io::Result<Blob> {
        let digest = Digest::of(bytes);
        let (mut f, tmp) = self.blob_file()?;
        f.write_all(bytes).map_err(|e| with_path(&tmp, e))?;
        drop(f);
        self.commit(&tmp, &digest)?;
        Ok(Blob { media_type: media_type.into(), digest, size: bytes.len() as u64 })
    }

    /// Tags `manifest` in `index.json`: a manifest the tag named before
    /// is untagged (its entry goes); other entries stay.
    pub fn tag(&self, manifest: &Blob, tag: &str) -> io::Result<()> {
        let path = self.dir.join("index.json");
        let mut manifests: Vec<serde_json::Value> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["manifests"].as_array().cloned())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} is damaged", path.display()),
                    )
                })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(with_path(&path, e)),
        };
        manifests.retain(|m| m["annotations"][REF_NAME].as_str() != Some(tag));
        let mut entry = manifest.json();
        entry["annotations"] = json!({ REF_NAME: tag });
        manifests.push(entry);
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        self.replace("index.json", &serde_json::to_vec(&index).unwrap_or_default())
    }
}

/// What the config says about running the image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunConfig {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// An image config for this host's platform with `layers`' diff_ids.
/// `created` is RFC 3339.
pub fn config_json(run: &RunConfig, diff_ids: &[Digest], created: &str, comment: &str) -> Vec<u8> {
    let (os, arch) = host_platform();
    let mut config = serde_json::Map::new();
    if !run.env.is_empty() {
        config.insert("Env".into(), json!(run.env));
    }
    if !run.entrypoint.is_empty() {
        config.insert("Entrypoint".into(), json!(run.entrypoint));
    }
    if !run.cmd.is_empty() {
        config.insert("Cmd".into(), json!(run.cmd));
    }
    if let Some(dir) = &run.working_dir {
        config.insert("WorkingDir".into(), json!(dir));
    }
    if !run.labels.is_empty() {
        config.insert("Labels".into(), json!(run.labels));
    }
    let history: Vec<serde_json::Value> =
        diff_ids.iter().map(|_| json!({"created": created, "created_by": comment})).collect();
    let value = json!({
        "created": created,
        "architecture": arch,
        "os": os,
        "config": config,
        "rootfs": {
            "type": "layers",
            "diff_ids": diff_ids.iter().map(Digest::as_str).collect::<Vec<_>>(),
        },
        "history": history,
    });
    serde_json::to_vec(&value).unwrap_or_default()
}

/// A manifest of `config` and `layers`.
pub fn manifest_json(config: &Blob, layers: &[Blob]) -> Vec<u8> {
    let value = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": config.json(),
        "layers": layers.iter().map(Blob::json).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&value).unwrap_or_default()
}

/// `secs` since the epoch as RFC 3339 (UTC).
pub fn rfc3339(secs: u64) -> String {
    let c = crate::civil::Civil::from_unix(secs as i64);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Writes the layout directory `dir` as the tar archive `file` (what
/// `skopeo copy ... oci-archive:FILE` writes: the layout's files at the
/// top), under a temporary name renamed into place.
pub fn archive(dir: &Path, file: &Path) -> io::Result<()> {
    let tmp = file.with_file_name(format!(
        ".{}.tmp-{}",
        file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    let out = File::create(&tmp).map_err(|e| with_path(&tmp, e))?;
    let mut b = tar::Builder::new(io::BufWriter::new(out));
    b.mode(tar::HeaderMode::Deterministic);
    b.follow_symlinks(false);
    let add = |b: &mut tar::Builder<_>, name: &str| -> io::Result<()> {
        let path = dir.join(name);
        if path.is_dir() {
            b.append_dir(name, &path)
        } else {
            b.append_path_with_name(&path, name)
        }
    };
    let written = (|| {
        for name in ["oci-layout", "index.json", "blobs", "blobs/sha256"] {
            add(&mut b, name)?;
        }
        let mut blobs: Vec<String> = std::fs::read_dir(dir.join("blobs/sha256"))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        blobs.sort();
        for name in blobs {
            add(&mut b, &format!("blobs/sha256/{name}"))?;
        }
        b.into_inner()?.flush()
    })();
    match written {
        Ok(()) => std::fs::rename(&tmp, file).map_err(|e| with_path(file, e)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(with_path(file, e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::blobs::DirBlobs;
    use super::super::image::Image;
    use super::*;

    #[test]
    fn a_written_layout_reads_back() {
        let dir = std::env::temp_dir().join(format!("fr-write-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let layout = Layout::create(&dir).unwrap();
        // An empty tar: two zero blocks, gzipped.
        let tar = vec![0u8; 1024];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let layer = layout.put(LAYER_GZIP, &gz.finish().unwrap()).unwrap();
        let run = RunConfig {
            env: vec!["PATH=/bin".into()],
            cmd: vec!["/bin/sh".into()],
            labels: [("a".to_string(), "b".to_string())].into(),
            ..RunConfig::default()
        };
        let config = config_json(&run, &[Digest::of(&tar)], &rfc3339(0), "fr test");
        let config = layout.put(CONFIG_TYPE, &config).unwrap();
        let manifest = layout.put(MANIFEST_TYPE, &manifest_json(&config, &[layer])).unwrap();
        layout.tag(&manifest, "t").unwrap();
        layout.tag(&manifest, "t").unwrap();
        let image = Image::from_layout(&DirBlobs::new(&dir), Some("t"), "test").unwrap();
        assert_eq!(image.key, manifest.digest);
        assert_eq!(image.runtime().cmd().as_deref(), Some(&["/bin/sh".to_string()][..]));
        let index = std::fs::read_to_string(dir.join("index.json")).unwrap();
        assert_eq!(index.matches(REF_NAME).count(), 1, "a tag names one manifest");
        let file = dir.with_extension("tar");
        archive(&dir, &file).unwrap();
        let blobs = super::super::blobs::TarBlobs::index(&file).unwrap();
        let again = Image::from_layout(&blobs, Some("t"), "test").unwrap();
        assert_eq!(again.key, manifest.digest);
        assert_eq!(rfc3339(86400 * 365 + 3661), "1971-01-01T01:01:01Z");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&file);
    }
}
