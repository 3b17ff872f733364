//! The per-user cache of OCI images unpacked to run, in
//! `$XDG_CACHE_HOME/fr` (else `~/.cache/fr`):
//!
//! ```text
//! oci/layers/CHAIN/       the tree after the layers up to one, an fr image
//! oci/images/MANIFEST/    an image: the tree of its top layer, /.singularity.d
//! oci/images/MANIFEST.json  where it came from, when, its layers
//! oci/tmp/PID.N/          what is being unpacked; renamed into place when done
//! oci/pulled/             an OCI layout of what was pulled from registries,
//!                         each manifest tagged with its reference
//! ```
//!
//! A layer is keyed by its chain id (image-spec `config.md`: the digest of
//! the layers below and its own `diff_id`), so that each layer is unpacked
//! once, on a copy of the tree below it, however many images share it;
//! an image by its manifest's digest. The copies are hard links
//! ([`crate::clone`]): the files they share are never changed in place, so
//! an image of the cache runs read-only. Everything is made in `tmp/` and
//! renamed into place whole, so a killed fr leaves no half image, only a
//! directory in `tmp/` that the next fr removes; two fr unpacking the
//! same layer at once each make it and the first rename wins.
//!
//! Every blob is checked against its digest before anything is unpacked,
//! and again as it is unpacked.

use std::io::IsTerminal;

use rustix::io::Errno;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use fr_image::oci::apptainer;
use fr_image::oci::blobs::DirBlobs;
use fr_image::oci::digest::Digest;
use fr_image::oci::image::Image;
use fr_image::oci::registry::{Client, Options};
use fr_image::oci::transport::{Reference, Source};
use fr_image::oci::write::Layout;

use crate::error::Error;
use crate::import::unpack_layers;

/// An image source's files.
pub type Sourced = Box<dyn fr_image::oci::blobs::Blobs>;

/// A base for a layer of changes: the tree of its layers (none for an
/// image of no layers), its source's files, the image.
pub type Base = (Option<PathBuf>, Sourced, Image);

/// The per-user cache.
#[derive(Debug)]
pub struct Cache {
    root: PathBuf,
}

/// An image of the cache, for `fr cache list`.
#[derive(Debug)]
pub struct Listed {
    pub digest: String,
    pub source: String,
    pub created: u64,
    pub layers: usize,
    pub path: PathBuf,
}

fn cache_error(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::Image { path: path.display().to_string(), why: why.to_string() }
}

impl Cache {
    /// The cache's directory: `$XDG_CACHE_HOME/fr`, else `$HOME/.cache/fr`.
    pub fn dir() -> Result<PathBuf, Error> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| Path::new(d).is_absolute())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|h| !h.is_empty())
                    .map(|h| Path::new(&h).join(".cache"))
            })
            .ok_or_else(|| {
                Error::Setup(
                    "neither XDG_CACHE_HOME nor HOME is set: fr has nowhere to cache OCI images"
                        .into(),
                )
            })?;
        Ok(base.join("fr"))
    }

    /// Opens the cache, making its directories (mode 0700: the images'
    /// set-id files are the user's own), and removes what killed runs
    /// left in `tmp/`.
    pub fn open() -> Result<Cache, Error> {
        let cache = Cache { root: Cache::dir()? };
        for d in [cache.layers(), cache.images(), cache.tmp()] {
            std::fs::create_dir_all(&d).map_err(|e| Error::CacheDir {
                path: cache.root.display().to_string(),
                why: format!("cannot make {}: {e}", d.display()),
            })?;
        }
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&cache.root, std::fs::Permissions::from_mode(0o700));
        cache.remove_leftovers();
        Ok(cache)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn layers(&self) -> PathBuf {
        self.root.join("oci/layers")
    }

    fn images(&self) -> PathBuf {
        self.root.join("oci/images")
    }

    fn tmp(&self) -> PathBuf {
        self.root.join("oci/tmp")
    }

    /// A new directory name in `tmp/`, removed by the next fr once this
    /// process is gone.
    pub fn scratch(&self) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        self.tmp().join(format!("{}.{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)))
    }

    /// Removes the directories in `tmp/` of fr processes that are gone.
    fn remove_leftovers(&self) {
        let Ok(entries) = std::fs::read_dir(self.tmp()) else { return };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.split('.').next().and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// The layout that images pulled from registries are kept in.
    fn pulled(&self) -> PathBuf {
        self.root.join("oci/pulled")
    }

    /// Whether `oci/pulled` has a manifest tagged `reference`.
    fn has_pulled(&self, reference: &Reference) -> bool {
        let blobs = DirBlobs::new(&self.pulled());
        Image::from_layout(&blobs, Some(&reference.to_string()), "pulled").is_ok()
    }

    /// Pulls `reference` into `oci/pulled`; the tag its manifest has there.
    fn pull(&self, reference: &Reference, opts: &Options) -> Result<String, Error> {
        let dir = self.pulled();
        let layout = Layout::create(&dir).map_err(|e| cache_error(&dir, e))?;
        let tag = reference.to_string();
        Client::new(reference, opts, false).pull(&layout, &tag)?;
        Ok(tag)
    }

    /// The image `source` names, unpacked into the cache if it is not
    /// there yet (a registry's pulled first); its directory.
    pub fn image(&self, source: &Source, opts: &Options) -> Result<PathBuf, Error> {
        self.ensure(source, opts).map(|(dest, _, _)| dest)
    }

    /// A base for a layer of changes ([`crate::diff`]): the tree of the
    /// image's layers alone (its top layer's, without the metadata the
    /// cache adds; `None` for an image of no layers), its files and the
    /// image itself, whose blobs are reused as they are.
    pub fn base(&self, source: &Source, opts: &Options) -> Result<Base, Error> {
        let (_, blobs, image) = self.ensure(source, opts)?;
        let top = chain_ids(&image).last().map(|c| self.layers().join(c.hex()));
        Ok((top, blobs, image))
    }

    fn ensure(&self, source: &Source, opts: &Options) -> Result<(PathBuf, Sourced, Image), Error> {
        let (blobs, image): (Box<dyn fr_image::oci::blobs::Blobs>, Image) = match source {
            Source::Registry(reference) => {
                let tag = match self.pull(reference, opts) {
                    Ok(tag) => tag,
                    // Offline: the copy pulled before, if there is one.
                    Err(Error::Oci(e)) if e.unreachable && self.has_pulled(reference) => {
                        log::warn!("{e}; using the copy pulled before");
                        reference.to_string()
                    }
                    Err(e) => return Err(e),
                };
                let blobs = DirBlobs::new(&self.pulled());
                let image = Image::from_layout(&blobs, Some(&tag), &source.to_string())?;
                (Box::new(blobs), image)
            }
            _ => Image::open(source)?,
        };
        let dest = self.images().join(image.key.hex());
        if dest.is_dir() {
            log::debug!("{source}: cached as {}", dest.display());
            return Ok((dest, blobs, image));
        }
        let chains = chain_ids(&image);
        let have = chains.iter().take_while(|c| self.layers().join(c.hex()).is_dir()).count();
        // Every blob still to unpack is checked before anything is.
        if have < chains.len() {
            log::debug!("{source}: checking {} layer blobs", chains.len() - have);
            image.verify(&*blobs)?;
        }
        let terminal = std::io::stderr().is_terminal();
        for i in have..chains.len() {
            let layer = &image.layers[i];
            let size =
                layer.blob.as_ref().map(|(_, s)| format!(", {}", human(*s))).unwrap_or_default();
            let line = format!(
                "unpacking layer {} of {} ({}{size})",
                i + 1,
                chains.len(),
                layer.diff_id.short()
            );
            if terminal {
                log::info!("{line}");
            } else {
                log::debug!("{line}");
            }
            let base = (i > 0).then(|| self.layers().join(chains[i - 1].hex()));
            let tmp = self.scratch();
            let names = [image.layer_name(i)];
            unpack_layers(&tmp, base.as_deref(), &names, &mut |_| image.layer(&*blobs, i))?;
            self.settle(&tmp, &self.layers().join(chains[i].hex()))?;
        }
        let tmp = self.scratch();
        let made = self.assemble(&image, chains.last(), &tmp);
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        self.settle(&tmp, &dest)?;
        self.write_info(&image, &chains, &dest);
        Ok((dest, blobs, image))
    }

    /// Renames `tmp` to `dest`; if another fr got there first, its copy
    /// stays and `tmp` goes.
    fn settle(&self, tmp: &Path, dest: &Path) -> Result<(), Error> {
        match std::fs::rename(tmp, dest) {
            Ok(()) => Ok(()),
            Err(_) if dest.is_dir() => {
                let _ = std::fs::remove_dir_all(tmp);
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(tmp);
                Err(cache_error(dest, e))
            }
        }
    }

    /// The image's directory in `tmp`: a copy of the top layer's tree
    /// (or an empty one), with the config's metadata in /.singularity.d.
    fn assemble(&self, image: &Image, top: Option<&Digest>, tmp: &Path) -> Result<(), Error> {
        match top {
            Some(top) => crate::clone::clone_image(&self.layers().join(top.hex()), tmp)?,
            None => std::fs::create_dir(tmp).map_err(|e| cache_error(tmp, e))?,
        }
        write_metadata(tmp, &image.runtime(), &image.source)
    }

    fn write_info(&self, image: &Image, chains: &[Digest], dest: &Path) {
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let info = serde_json::json!({
            "source": image.source,
            "manifest": image.key.as_str(),
            "config": image.config_digest.as_str(),
            "layers": chains.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "created": created,
        });
        let path = dest.with_extension("json");
        if let Err(e) = std::fs::write(&path, info.to_string() + "\n") {
            log::warn!("writing {}: {e}", path.display());
        }
    }

    /// The images in the cache, newest first.
    pub fn list(&self) -> Result<Vec<Listed>, Error> {
        let mut out = Vec::new();
        let dir = self.images();
        for e in std::fs::read_dir(&dir).map_err(|e| cache_error(&dir, e))?.flatten() {
            let path = e.path();
            if !path.is_dir() {
                continue;
            }
            let info: serde_json::Value = std::fs::read(path.with_extension("json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            out.push(Listed {
                digest: format!("sha256:{}", e.file_name().to_string_lossy()),
                source: info["source"].as_str().unwrap_or("?").to_string(),
                created: info["created"].as_u64().unwrap_or(0),
                layers: info["layers"].as_array().map_or(0, |a| a.len()),
                path,
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.digest.cmp(&b.digest)));
        Ok(out)
    }

    /// How many layer trees the cache holds.
    pub fn layer_count(&self) -> usize {
        std::fs::read_dir(self.layers()).map_or(0, |d| d.flatten().count())
    }

    /// Removes every image and layer of the cache; an image a session is
    /// running in is refused, by name, and nothing is removed.
    pub fn clean(&self) -> Result<usize, Error> {
        let listed = self.list()?;
        // Holding each image's lock while the cache goes: a session that
        // starts meanwhile waits for none and finds no image.
        let mut held = Vec::new();
        for l in &listed {
            held.push(crate::store::ImageStore::open(&l.path)?);
        }
        let oci = self.root.join("oci");
        let removed = listed.len();
        std::fs::remove_dir_all(&oci).map_err(|e| cache_error(&oci, e))?;
        drop(held);
        Ok(removed)
    }
}

/// The chain id of each layer (image-spec `config.md`): the first's is
/// its diff_id, each next the digest of `PARENT DIFF_ID`.
pub fn chain_ids(image: &Image) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::new();
    for l in &image.layers {
        let next = match out.last() {
            None => l.diff_id.clone(),
            Some(parent) => Digest::of(format!("{parent} {}", l.diff_id).as_bytes()),
        };
        out.push(next);
    }
    out
}

/// Writes the config's metadata into the image at `root`, as new files
/// (a file of the same name, which the image may share with a layer's
/// tree, is replaced, never written into). Each directory on the way is
/// looked up in the image without following a symbolic link: a layer that
/// made `/.singularity.d` a link to a host directory is refused by name,
/// never written through.
pub fn write_metadata(
    root: &Path,
    config: &fr_image::oci::oci_spec::image::Config,
    source: &str,
) -> Result<(), Error> {
    let (files, skipped) = apptainer::metadata(config);
    if !skipped.is_empty() {
        log::warn!(
            "{source}: the config's Env names {} are no shell variables; left out of the environment",
            skipped.join(", ")
        );
    }
    for f in files {
        write_in_image(root, Path::new(f.path), &f.content, f.mode).map_err(|e| {
            let why = match e {
                Errno::LOOP => {
                    "a symbolic link on the way (the image's own; fr does not follow it)"
                        .to_string()
                }
                e => e.to_string(),
            };
            cache_error(&root.join(f.path), why)
        })?;
    }
    Ok(())
}

/// Writes `content` as the new file `rel` (mode `mode`) in the image at
/// `root`, making the directories on the way; none of them may be a
/// symbolic link (`ELOOP`), and a file already there is replaced.
fn write_in_image(root: &Path, rel: &Path, content: &[u8], mode: u32) -> Result<(), Errno> {
    use rustix::fs::{self, AtFlags, Mode, OFlags, ResolveFlags, CWD};
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS;
    let mut dir = fs::openat(CWD, root, dir_flags, Mode::empty())?;
    let name = rel.file_name().ok_or(Errno::INVAL)?;
    for part in rel.parent().map(Path::components).into_iter().flatten() {
        let next = match fs::openat2(&dir, part.as_os_str(), dir_flags, Mode::empty(), resolve) {
            Err(Errno::NOENT) => {
                fs::mkdirat(&dir, part.as_os_str(), Mode::from_raw_mode(0o755))?;
                fs::openat2(&dir, part.as_os_str(), dir_flags, Mode::empty(), resolve)?
            }
            other => other?,
        };
        dir = next;
    }
    match fs::unlinkat(&dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(e),
    }
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let file = fs::openat(&dir, name, flags, Mode::from_raw_mode(mode))?;
    let mut left = content;
    while !left.is_empty() {
        let n = rustix::io::write(&file, left)?;
        left = &left[n..];
    }
    fs::fchmod(&file, Mode::from_raw_mode(mode))
}

/// A size for people.
pub fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}
