//! From a source to an image: the index (`index.json`), the manifest it
//! names (by tag, and for this host's platform when it is a list), the
//! config, and the layers in order, each with the digests it must have.
//! Every JSON blob is read whole, with a limit, and checked against its
//! descriptor before it is parsed; a layer is checked as it is read
//! ([`Image::layer`]).
//!
//! A docker archive (`docker save`) has no manifest of OCI's: its
//! `manifest.json` names a config file and uncompressed layer files,
//! which are checked against the config's `diff_ids`, and the config's
//! digest (docker's image id) stands for the manifest's.

use std::io::Read;
use std::path::Path;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use serde::Deserialize;

use super::blobs::{clean, Blobs, DirBlobs, TarBlobs};
use super::digest::{Digest, Expect, Verify};
use super::layer::{Compression, LayerReader};
use super::transport::Source;
use super::{host_platform, OciError};

/// The largest index, manifest or config fr reads (a config with a long
/// history is a few hundred KiB).
pub const JSON_LIMIT: u64 = 8 << 20;

/// The annotation that tags a manifest in a layout's index.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub(crate) const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
pub(crate) const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// One layer of an image, bottom first.
#[derive(Clone, Debug)]
pub struct Layer {
    /// Its file in the source.
    pub path: String,
    /// The blob's digest and size, from the manifest (a docker archive
    /// has none: its layer files are checked by `diff_id` alone).
    pub blob: Option<(Digest, u64)>,
    pub media_type: String,
    pub compression: Compression,
    /// The digest of the uncompressed tar, from the config.
    pub diff_id: Digest,
}

/// An image resolved in its source, every JSON blob checked.
#[derive(Debug)]
pub struct Image {
    /// The source, for messages.
    pub source: String,
    /// The manifest's digest: what the cache keys the unpacked image by
    /// (a docker archive's config digest, its image id).
    pub key: Digest,
    /// The manifest's bytes, as they were (none for a docker archive).
    pub manifest: Option<Vec<u8>>,
    pub config: ImageConfiguration,
    pub config_bytes: Vec<u8>,
    pub config_digest: Digest,
    pub layers: Vec<Layer>,
}

/// Reads all of `r`, at most `limit` bytes.
pub(crate) fn read_limited(mut r: impl Read, limit: u64, what: &str) -> Result<Vec<u8>, OciError> {
    let mut bytes = Vec::new();
    r.by_ref().take(limit + 1).read_to_end(&mut bytes).map_err(|e| OciError::new(what, e))?;
    if bytes.len() as u64 > limit {
        return Err(OciError::new(what, format!("it is larger than fr's limit of {limit} bytes")));
    }
    Ok(bytes)
}

/// The blob a descriptor names, read whole and checked.
fn read_blob(blobs: &dyn Blobs, d: &Descriptor, what: &str) -> Result<Vec<u8>, OciError> {
    let digest = Digest::parse(d.digest().as_ref()).map_err(|e| OciError::new(what, e))?;
    let what = format!("{what} {digest}");
    if d.size() > JSON_LIMIT {
        return Err(OciError::new(
            &what,
            format!("its descriptor says {} bytes, more than fr's limit of {JSON_LIMIT}", d.size()),
        ));
    }
    let (r, _) = blobs.open(&digest.blob_path()).map_err(|e| OciError::new(&what, e))?;
    let expect = Expect { what: what.clone(), digest, size: Some(d.size()) };
    read_limited(Verify::new(r, expect), JSON_LIMIT, &what)
}

fn platform_of(d: &Descriptor) -> Option<(String, String)> {
    d.platform().as_ref().map(|p| (p.os().to_string(), p.architecture().to_string()))
}

impl Image {
    /// Opens a local source (`oci:`, `oci-archive:`, `docker-archive:`)
    /// and resolves its image; returns the source's files too, from which
    /// [`Image::layer`] reads.
    pub fn open(source: &Source) -> Result<(Box<dyn Blobs>, Image), OciError> {
        let name = source.to_string();
        match source {
            Source::Layout { dir, tag } => {
                if !dir.join("oci-layout").is_file() {
                    return Err(OciError::new(
                        &name,
                        format!(
                            "{} is not an OCI image layout (no oci-layout file); skopeo copy \
                             docker-archive:x.tar oci:{} makes one",
                            dir.display(),
                            dir.display()
                        ),
                    ));
                }
                let blobs = DirBlobs::new(dir);
                let image = Image::from_layout(&blobs, tag.as_deref(), &name)?;
                Ok((Box::new(blobs), image))
            }
            Source::Archive { file, tag } => {
                let blobs = index_archive(file, &name)?;
                let image = Image::from_layout(&blobs, tag.as_deref(), &name)?;
                Ok((Box::new(blobs), image))
            }
            Source::DockerArchive { file, reference } => {
                let blobs = index_archive(file, &name)?;
                let image = Image::from_docker_archive(&blobs, reference.as_deref(), &name)?;
                Ok((Box::new(blobs), image))
            }
            Source::Registry(_) => Err(OciError::new(
                &name,
                "a registry is pulled into a layout first (oci::registry), not opened",
            )),
        }
    }

    /// The image of an OCI layout: `index.json`, the manifest `tag`
    /// names (or its only one), resolved for this host's platform.
    pub fn from_layout(
        blobs: &dyn Blobs,
        tag: Option<&str>,
        source: &str,
    ) -> Result<Image, OciError> {
        let (r, _) = blobs.open("oci-layout").map_err(|e| {
            OciError::new(
                source,
                format!("no oci-layout file ({e}): it is not an OCI image layout"),
            )
        })?;
        let layout = read_limited(r, 4096, &format!("{source}: oci-layout"))?;
        let layout: serde_json::Value = serde_json::from_slice(&layout)
            .map_err(|e| OciError::new(format!("{source}: oci-layout"), e))?;
        if layout.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(OciError::new(
                format!("{source}: oci-layout"),
                "its imageLayoutVersion is not 1.0.0, the version fr reads",
            ));
        }
        let (r, _) = blobs
            .open("index.json")
            .map_err(|e| OciError::new(source, format!("no index.json ({e})")))?;
        let what = format!("{source}: index.json");
        let bytes = read_limited(r, JSON_LIMIT, &what)?;
        let index = ImageIndex::from_reader(&bytes[..])
            .map_err(|e| OciError::new(&what, invalid("image index", &e)))?;
        let mut chosen: Vec<&Descriptor> = match tag {
            Some(tag) => index
                .manifests()
                .iter()
                .filter(|d| {
                    d.annotations().as_ref().and_then(|a| a.get(REF_NAME)).map(String::as_str)
                        == Some(tag)
                })
                .collect(),
            None => index.manifests().iter().collect(),
        };
        let tags: Vec<String> = index
            .manifests()
            .iter()
            .filter_map(|d| d.annotations().as_ref().and_then(|a| a.get(REF_NAME)).cloned())
            .collect();
        if chosen.is_empty() {
            return Err(match tag {
                Some(tag) => OciError::new(
                    source,
                    format!("it has no image tagged `{tag}` (its tags: {})", list(&tags)),
                ),
                None => OciError::new(source, "its index.json lists no image"),
            });
        }
        if chosen.len() > 1 {
            // Several platforms of one tag, or several images untagged:
            // the platform decides if they are one image's.
            let platforms = chosen.iter().filter(|d| platform_of(d).is_some()).count();
            if platforms != chosen.len() {
                return Err(OciError::new(
                    source,
                    format!(
                        "it holds {} images; name one: oci:DIR:TAG (its tags: {})",
                        chosen.len(),
                        list(&tags)
                    ),
                ));
            }
            chosen = vec![pick_platform(&chosen, source)?];
        }
        Image::from_descriptor(blobs, chosen[0], source, 0)
    }

    /// The image a descriptor names: a manifest, or an index whose
    /// manifest for this host's platform is taken.
    fn from_descriptor(
        blobs: &dyn Blobs,
        d: &Descriptor,
        source: &str,
        depth: usize,
    ) -> Result<Image, OciError> {
        let media = d.media_type().to_string();
        if INDEX_TYPES.contains(&media.as_str()) {
            if depth > 4 {
                return Err(OciError::new(source, "its indexes nest more than 4 deep"));
            }
            let bytes = read_blob(blobs, d, &format!("{source}: index"))?;
            let what = format!("{source}: index {}", d.digest());
            let index = ImageIndex::from_reader(&bytes[..])
                .map_err(|e| OciError::new(&what, invalid("image index", &e)))?;
            let all: Vec<&Descriptor> = index.manifests().iter().collect();
            if all.is_empty() {
                return Err(OciError::new(what, "it lists no image"));
            }
            let one = pick_platform(&all, &what)?;
            return Image::from_descriptor(blobs, one, source, depth + 1);
        }
        if !MANIFEST_TYPES.contains(&media.as_str()) {
            return Err(OciError::new(
                source,
                format!("{} is a {media}, not an image manifest or index", d.digest()),
            ));
        }
        if let Some((os, arch)) = platform_of(d) {
            check_platform(&os, &arch, source)?;
        }
        let bytes = read_blob(blobs, d, &format!("{source}: manifest"))?;
        let key = Digest::of(&bytes);
        let what = format!("{source}: manifest {key}");
        let manifest = ImageManifest::from_reader(&bytes[..])
            .map_err(|e| OciError::new(&what, invalid("image manifest", &e)))?;
        let config_bytes = read_blob(blobs, manifest.config(), &format!("{source}: config"))?;
        let config_digest = Digest::of(&config_bytes);
        let config = parse_config(&config_bytes, &format!("{source}: config {config_digest}"))?;
        check_platform(&config.os().to_string(), &config.architecture().to_string(), source)?;
        let diff_ids = diff_ids(&config, manifest.layers().len(), source)?;
        let mut layers = Vec::new();
        for (i, (l, diff_id)) in manifest.layers().iter().zip(diff_ids).enumerate() {
            let lwhat = format!("{source}: layer {} of {}", i + 1, manifest.layers().len());
            let digest =
                Digest::parse(l.digest().as_ref()).map_err(|e| OciError::new(&lwhat, e))?;
            let media_type = l.media_type().to_string();
            let compression = Compression::of_media_type(&media_type).ok_or_else(|| {
                OciError::new(
                    &lwhat,
                    format!("its media type {media_type} is no tar layer fr knows (tar, tar+gzip, tar+zstd)"),
                )
            })?;
            layers.push(Layer {
                path: digest.blob_path(),
                blob: Some((digest, l.size())),
                media_type,
                compression,
                diff_id,
            });
        }
        Ok(Image {
            source: source.to_string(),
            key,
            manifest: Some(bytes),
            config,
            config_bytes,
            config_digest,
            layers,
        })
    }

    /// The image of a docker archive: `manifest.json`'s entry whose
    /// `RepoTags` has `reference` (or its only entry).
    pub fn from_docker_archive(
        blobs: &dyn Blobs,
        reference: Option<&str>,
        source: &str,
    ) -> Result<Image, OciError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
            layers: Vec<String>,
        }
        let what = format!("{source}: manifest.json");
        let (r, _) = blobs.open("manifest.json").map_err(|e| {
            OciError::new(
                source,
                format!("no manifest.json ({e}): it is not a docker save archive"),
            )
        })?;
        let bytes = read_limited(r, JSON_LIMIT, &what)?;
        let entries: Vec<Entry> =
            serde_json::from_slice(&bytes).map_err(|e| OciError::new(&what, e))?;
        let tags: Vec<String> =
            entries.iter().flat_map(|e| e.repo_tags.iter().flatten().cloned()).collect();
        let entry = match reference {
            Some(r) => entries
                .iter()
                .find(|e| {
                    e.repo_tags.iter().flatten().any(|t| {
                        t == r
                            || t.strip_prefix("localhost/") == Some(r)
                            || t == &format!("{r}:latest")
                    })
                })
                .ok_or_else(|| {
                    OciError::new(
                        source,
                        format!("no image is tagged `{r}` (its tags: {})", list(&tags)),
                    )
                })?,
            None => match entries.as_slice() {
                [one] => one,
                [] => return Err(OciError::new(&what, "it lists no image")),
                _ => {
                    return Err(OciError::new(
                        source,
                        format!(
                            "it holds {} images; name one: docker-archive:FILE:TAG (its tags: {})",
                            entries.len(),
                            list(&tags)
                        ),
                    ))
                }
            },
        };
        let config_path = clean(&entry.config).map_err(|e| OciError::new(&what, e))?;
        let (r, _) = blobs
            .open(&config_path)
            .map_err(|e| OciError::new(format!("{source}: config {config_path}"), e))?;
        let config_bytes = read_limited(r, JSON_LIMIT, &format!("{source}: config"))?;
        let config_digest = Digest::of(&config_bytes);
        // Its name is its digest (`HEX.json`, or `blobs/sha256/HEX`).
        let named = config_path
            .rsplit('/')
            .next()
            .map(|n| n.trim_end_matches(".json"))
            .filter(|n| n.len() == 64);
        if let Some(named) = named {
            if named != config_digest.hex() {
                return Err(OciError::new(
                    format!("{source}: config {config_path}"),
                    format!("its content's digest is {config_digest}, not the one its name says"),
                ));
            }
        }
        let cwhat = format!("{source}: config {config_digest}");
        let config = parse_config(&config_bytes, &cwhat)?;
        check_platform(&config.os().to_string(), &config.architecture().to_string(), source)?;
        let diff_ids = diff_ids(&config, entry.layers.len(), source)?;
        let mut layers = Vec::new();
        for (path, diff_id) in entry.layers.iter().zip(diff_ids) {
            let path = clean(path).map_err(|e| OciError::new(&what, e))?;
            // `blobs/sha256/HEX` (docker 25 and later) is checked by name
            // too, but may be compressed; `ID/layer.tar` by its diff_id.
            let blob = path
                .strip_prefix("blobs/sha256/")
                .and_then(|h| Digest::parse(&format!("sha256:{h}")).ok());
            let size = match &blob {
                Some(_) => Some(blobs.open(&path).map_err(|e| OciError::new(&what, e))?.1),
                None => None,
            };
            layers.push(Layer {
                path,
                blob: blob.zip(size),
                media_type: super::write::LAYER_TAR.into(),
                compression: Compression::Sniff,
                diff_id,
            });
        }
        Ok(Image {
            source: source.to_string(),
            key: config_digest.clone(),
            manifest: None,
            config,
            config_bytes,
            config_digest,
            layers,
        })
    }

    /// What layer `i` is called in messages.
    pub fn layer_name(&self, i: usize) -> String {
        format!("{}: layer {} of {}", self.source, i + 1, self.layers.len())
    }

    /// Layer `i`'s blob, checked as it is read against its descriptor.
    fn blob(&self, blobs: &dyn Blobs, i: usize) -> Result<Box<dyn Read + Send>, OciError> {
        let l = &self.layers[i];
        let what = self.layer_name(i);
        let (r, _) =
            blobs.open(&l.path).map_err(|e| OciError::new(format!("{what} ({})", l.path), e))?;
        Ok(match &l.blob {
            Some((digest, size)) => Box::new(Verify::new(
                r,
                Expect { what: what.clone(), digest: digest.clone(), size: Some(*size) },
            )),
            None => r,
        })
    }

    /// Checks every layer blob against its descriptor, reading it
    /// through, before anything is unpacked: a damaged source is refused
    /// whole, naming the blob.
    pub fn verify(&self, blobs: &dyn Blobs) -> Result<(), OciError> {
        for (i, l) in self.layers.iter().enumerate() {
            if l.blob.is_some() {
                let mut r = self.blob(blobs, i)?;
                std::io::copy(&mut r, &mut std::io::sink()).map_err(|e| {
                    OciError::new(self.layer_name(i), strip(&e, &self.layer_name(i)))
                })?;
            }
        }
        Ok(())
    }

    /// Layer `i` as its tar stream, checked (blob and diff_id) as read.
    pub fn layer(&self, blobs: &dyn Blobs, i: usize) -> Result<LayerReader, OciError> {
        let l = &self.layers[i];
        let what = self.layer_name(i);
        let diff =
            Expect { what: format!("{what} (diff_id)"), digest: l.diff_id.clone(), size: None };
        LayerReader::new(self.blob(blobs, i)?, l.compression, diff, &what)
    }

    /// The config's `Entrypoint`, `Cmd`, `Env`, ... (empty when it has none).
    pub fn runtime(&self) -> oci_spec::image::Config {
        self.config.config().clone().unwrap_or_default()
    }
}

/// An io::Error's text without the name the checking reader already
/// put at its start (the error's `what` says it again).
fn strip(e: &std::io::Error, what: &str) -> String {
    let text = e.to_string();
    text.strip_prefix(what).map(|t| t.trim_start_matches([' ', ':']).to_string()).unwrap_or(text)
}

fn index_archive(file: &Path, source: &str) -> Result<TarBlobs, OciError> {
    if !file.exists() {
        return Err(OciError::new(source, format!("{} does not exist", file.display())));
    }
    TarBlobs::index(file)
        .map_err(|e| OciError::new(source, format!("it is not a tar archive fr can read: {e}")))
}

/// What is wrong with a JSON document oci-spec would not take: its own
/// words ("serde failed") and the parser's beneath them, with the place.
pub(crate) fn invalid(what: &str, e: &oci_spec::OciSpecError) -> String {
    let mut why = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        why = s.to_string();
        source = s.source();
    }
    if why.is_empty() {
        why = e.to_string();
    }
    format!("it is not a valid {what}: {why}")
}

fn parse_config(bytes: &[u8], what: &str) -> Result<ImageConfiguration, OciError> {
    ImageConfiguration::from_reader(bytes)
        .map_err(|e| OciError::new(what, invalid("image config", &e)))
}

/// The config's `rootfs.diff_ids`, one for each of `layers` layers.
fn diff_ids(
    config: &ImageConfiguration,
    layers: usize,
    source: &str,
) -> Result<Vec<Digest>, OciError> {
    let ids = config.rootfs().diff_ids();
    if ids.len() != layers {
        return Err(OciError::new(
            format!("{source}: config"),
            format!("it lists {} diff_ids for {layers} layers", ids.len()),
        ));
    }
    ids.iter()
        .map(|d| Digest::parse(d).map_err(|e| OciError::new(format!("{source}: config"), e)))
        .collect()
}

fn list(tags: &[String]) -> String {
    if tags.is_empty() {
        "none".into()
    } else {
        tags.join(", ")
    }
}

/// Refuses an image for another platform than this host's.
fn check_platform(os: &str, arch: &str, source: &str) -> Result<(), OciError> {
    let (hos, harch) = host_platform();
    if os != hos || arch != harch {
        return Err(OciError::new(
            source,
            format!("the image is for {os}/{arch}, and this host runs {hos}/{harch} images"),
        ));
    }
    Ok(())
}

/// The descriptor for this host's platform among `all`.
pub(crate) fn pick_platform<'a>(
    all: &[&'a Descriptor],
    what: &str,
) -> Result<&'a Descriptor, OciError> {
    let (hos, harch) = host_platform();
    all.iter()
        .find(|d| platform_of(d).is_some_and(|(os, arch)| os == hos && arch == harch))
        .copied()
        .ok_or_else(|| {
            let offered: Vec<String> = all
                .iter()
                .filter_map(|d| platform_of(d))
                .map(|(os, arch)| format!("{os}/{arch}"))
                .collect();
            OciError::new(
                what,
                format!(
                    "it has no image for this host's platform {hos}/{harch}, only for {}",
                    list(&offered)
                ),
            )
        })
}
