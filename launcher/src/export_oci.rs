//! `fr export --format oci|oci-archive IMAGE DEST`: the image as an OCI
//! image of one layer, the tar `fr export` writes (fake owners, modes,
//! devices, hard links, xattrs as pax `SCHILY.xattr.*` records: what real
//! root's tar would write of it) gzip-compressed, and a config that
//! carries what the image's `/.singularity.d` says about running it
//! (`fr_image::oci::apptainer::run_config`): Env, the runscript as the
//! entrypoint, Labels.
//!
//! DEST is `DIR[:TAG]`, a layout (made, or added to: the tag names the new
//! manifest), or `FILE[:TAG]` for an archive, written as a layout next to
//! it and archived; the tag is `latest` if none is given. Nothing is left
//! of a failed export.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use fr_emulator::InodeTable;
use fr_image::oci::apptainer::run_config;
use fr_image::oci::digest::Digest;
use fr_image::oci::write::{
    archive, config_json, manifest_json, rfc3339, Blob, Hashing, Layout, CONFIG_TYPE, LAYER_GZIP,
    LAYER_TAR, MANIFEST_TYPE,
};

use crate::error::Error;
use crate::export::{write_tar, Progress, Summary};
use crate::run::check_image;
use crate::store::ImageStore;

/// Which OCI form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OciFormat {
    /// An image layout directory (`oci:DIR`).
    Layout,
    /// A layout in a tar archive (`oci-archive:FILE`).
    Archive,
}

#[derive(Debug)]
pub struct OciExportOptions {
    pub image: PathBuf,
    pub dest: PathBuf,
    pub tag: Option<String>,
    pub format: OciFormat,
    pub progress: bool,
    /// An OCI image IMAGE was made from: its layers are kept as they are,
    /// and only what IMAGE changed over them is the new layer.
    pub base: Option<fr_image::oci::transport::Source>,
    /// How to reach the base's registry.
    pub pull: fr_image::oci::registry::Options,
}

/// A base's parts: the tree of its layers, its files, the image.
type BaseParts =
    (Option<PathBuf>, Box<dyn fr_image::oci::blobs::Blobs>, fr_image::oci::image::Image);

fn oci_error(dest: &Path, why: impl Into<crate::error::Cause>) -> Error {
    Error::Archive { path: dest.display().to_string(), source: why.into() }
}

/// What an OCI export wrote: the members of its layer, and its manifest.
#[derive(Debug)]
pub struct OciSummary {
    pub layer: Summary,
    pub manifest: Blob,
    pub tag: String,
}

/// Writes `opts.image` as an OCI image at `opts.dest`.
pub fn export_oci(opts: &OciExportOptions) -> Result<OciSummary, Error> {
    let image = check_image(&opts.image)?;
    if let Some(parent) = opts.dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        if parent.canonicalize().is_ok_and(|p| p.starts_with(&image)) {
            return Err(oci_error(
                &opts.dest,
                "it is inside the image, which would then hold its own export",
            ));
        }
    }
    let store = ImageStore::open(&image)?;
    let table = InodeTable::new(crate::idmap::enter_for_image()?);
    store.load(&table)?;
    let tag = opts.tag.clone().unwrap_or_else(|| "latest".into());
    let (dir, scratch) = match opts.format {
        OciFormat::Layout => (opts.dest.clone(), false),
        OciFormat::Archive => {
            let name = opts.dest.file_name().map(|n| n.to_string_lossy().into_owned());
            let name = name.ok_or_else(|| oci_error(&opts.dest, "it names no file"))?;
            (opts.dest.with_file_name(format!(".{name}.fr-oci-{}", std::process::id())), true)
        }
    };
    let base = match &opts.base {
        Some(source) => Some(crate::cache::Cache::open()?.base(source, &opts.pull)?),
        None => None,
    };
    let made = !dir.exists();
    let result = write_layout(&image, &table, &dir, &tag, opts, base.as_ref()).and_then(|s| {
        if scratch {
            archive(&dir, &opts.dest).map_err(|e| oci_error(&opts.dest, e))?;
        }
        Ok(s)
    });
    if scratch || (made && result.is_err()) {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn write_layout(
    image: &Path,
    table: &InodeTable,
    dir: &Path,
    tag: &str,
    opts: &OciExportOptions,
    base: Option<&BaseParts>,
) -> Result<OciSummary, Error> {
    let layout = Layout::create(dir).map_err(|e| oci_error(dir, e))?;
    // The base's layers first, as they are.
    let (mut layers, mut diff_ids) = (Vec::new(), Vec::new());
    if let Some((_, blobs, bimage)) = base {
        for (i, l) in bimage.layers.iter().enumerate() {
            layers.push(copy_blob(&layout, &**blobs, l, &bimage.layer_name(i), dir)?);
            diff_ids.push(l.diff_id.clone());
        }
    }
    let (file, tmp) = layout.blob_file().map_err(|e| oci_error(dir, e))?;
    // tar → hash (diff_id) → gzip → hash (the blob's digest) → file.
    let mut tar = Hashing::new(flate2::write::GzEncoder::new(
        Hashing::new(BufWriter::with_capacity(1 << 20, file)),
        flate2::Compression::default(),
    ));
    let progress = opts.progress.then(|| Progress::new(0));
    let written = match base {
        None => write_tar(image, table, Box::new(&mut tar), &opts.dest, None, progress),
        Some((top, _, _)) => {
            // The base's tree with its records, read under a shared lock.
            let base_table = InodeTable::new(table.ids().clone());
            let store = match top {
                Some(top) => {
                    let store = ImageStore::open_shared(top)?;
                    store.load(&base_table)?;
                    Some(store)
                }
                None => None,
            };
            let tree = top.clone().unwrap_or_default();
            let changes = crate::diff::changes(&tree, &base_table, image, table)?;
            log::debug!("{} members changed over the base", changes.len());
            let written = crate::export::write_changes(
                image,
                table,
                Box::new(&mut tar),
                &opts.dest,
                &changes,
            );
            drop(store);
            written
        }
    };
    let layer = written.and_then(|summary| {
        let diff_id = std::mem::take(&mut tar.hash).finish();
        let mut blob = tar.inner.finish().map_err(|e| oci_error(&tmp, e))?;
        blob.flush().map_err(|e| oci_error(&tmp, e))?;
        let size = blob.hash.len;
        let digest = std::mem::take(&mut blob.hash).finish();
        drop(blob);
        layout.commit(&tmp, &digest).map_err(|e| oci_error(dir, e))?;
        Ok((summary, diff_id, Blob { media_type: LAYER_GZIP.into(), digest, size }))
    });
    let (summary, diff_id, layer) = match layer {
        Ok(l) => l,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let (run, warnings) = run_config(|path| std::fs::read_to_string(image.join(path)).ok());
    for w in warnings {
        log::warn!("{}: {w}", image.display());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let comment = format!("fr export {}", image.display());
    diff_ids.push(diff_id);
    layers.push(layer);
    let config = config_json(&run, &diff_ids, &rfc3339(now), &comment);
    let config = layout.put(CONFIG_TYPE, &config).map_err(|e| oci_error(dir, e))?;
    let manifest = manifest_json(&config, &layers);
    let manifest = layout.put(MANIFEST_TYPE, &manifest).map_err(|e| oci_error(dir, e))?;
    layout.tag(&manifest, tag).map_err(|e| oci_error(dir, e))?;
    Ok(OciSummary { layer: summary, manifest, tag: tag.to_string() })
}

/// `fr push IMAGE docker://REF`: the image written as an OCI image (as
/// [`export_oci`] writes it) into the cache's scratch space, then pushed:
/// every blob the registry does not have yet, then the manifest, tagged.
pub fn push(
    image: &Path,
    reference: &fr_image::oci::transport::Reference,
    opts: &fr_image::oci::registry::Options,
) -> Result<Digest, Error> {
    let cache = crate::cache::Cache::open()?;
    let dir = cache.scratch();
    let export = OciExportOptions {
        image: image.to_path_buf(),
        dest: dir.clone(),
        tag: Some("push".into()),
        format: OciFormat::Layout,
        progress: false,
        base: None,
        pull: opts.clone(),
    };
    let result = export_oci(&export).and_then(|_| {
        fr_image::oci::registry::Client::new(reference, opts, true)
            .push(&dir, "push")
            .map_err(Error::from)
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Copies a base layer's blob into `layout` as it is, checking it; a
/// Docker media type becomes its OCI twin (the same bytes).
fn copy_blob(
    layout: &Layout,
    blobs: &dyn fr_image::oci::blobs::Blobs,
    layer: &fr_image::oci::image::Layer,
    what: &str,
    dir: &Path,
) -> Result<Blob, Error> {
    let (mut from, _) =
        blobs.open(&layer.path).map_err(|e| Error::Oci(fr_image::oci::OciError::new(what, e)))?;
    let (file, tmp) = layout.blob_file().map_err(|e| oci_error(dir, e))?;
    let mut to = Hashing::new(BufWriter::new(file));
    let copied = std::io::copy(&mut from, &mut to).and_then(|_| to.flush());
    let size = to.hash.len;
    let digest = std::mem::take(&mut to.hash).finish();
    drop(to);
    let checked = match (&copied, &layer.blob) {
        (Err(e), _) => Err(format!("{e}")),
        (Ok(()), Some((want, _))) if *want != digest => {
            Err(format!("its content's digest is {digest}, not {want}"))
        }
        _ => Ok(()),
    };
    if let Err(why) = checked {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Oci(fr_image::oci::OciError::new(what, why)));
    }
    layout.commit(&tmp, &digest).map_err(|e| oci_error(dir, e))?;
    let media_type = match layer.media_type.as_str() {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => LAYER_GZIP.to_string(),
        "application/vnd.docker.image.rootfs.diff.tar" => LAYER_TAR.to_string(),
        _ if layer.blob.is_none() => {
            // A docker archive's layer file: as its first bytes say.
            let mut head = [0u8; 4];
            let gz = blobs
                .open(&layer.path)
                .ok()
                .and_then(|(mut r, _)| r.read_exact(&mut head).ok())
                .is_some_and(|()| head.starts_with(&[0x1f, 0x8b]));
            if gz { LAYER_GZIP } else { LAYER_TAR }.into()
        }
        other => other.to_string(),
    };
    Ok(Blob { media_type, digest, size })
}
