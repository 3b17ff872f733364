//! What a build starts from (SPEC): a definition file, or an image to
//! convert, which becomes a one-stage definition with `Bootstrap:
//! localimage` (as Apptainer makes `localimage://SPEC` of it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fr_image::def::{Agent, Definition, Header, Stage};
use fr_image::oci::transport::Source;
use fr_launcher::sniff;

use crate::error::Error;

/// SPEC, read and parsed.
#[derive(Clone, Debug)]
pub struct Spec {
    pub path: PathBuf,
    /// The definition file's text, as `/.singularity.d/Singularity` keeps it.
    pub text: Vec<u8>,
    pub def: Definition,
}

/// Sources Apptainer takes by URI that need a registry or OCI support.
const URI_SOURCES: [&str; 9] = [
    "docker",
    "docker-archive",
    "docker-daemon",
    "oci",
    "oci-archive",
    "library",
    "shub",
    "oras",
    "http",
];

/// What an image given as a localimage source (or as SPEC) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageKind {
    /// A directory with fr's store: its fake metadata goes along.
    FrImage,
    /// Any other directory: copied as fake root sees it.
    Tree,
    /// A tar archive, plain or compressed (gzip, zstd).
    Archive,
}

/// What the image at `path` is, or why fr cannot start from it.
pub fn image_kind(path: &Path) -> Result<ImageKind, Error> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| Error::Spec {
        path: shown.clone(),
        why: e.to_string(),
        hint: "give the path of an image: a directory, or a tar archive".into(),
    })?;
    if meta.is_dir() {
        let fr = path.join(".fr").symlink_metadata().is_ok_and(|m| m.is_dir());
        return Ok(if fr { ImageKind::FrImage } else { ImageKind::Tree });
    }
    match sniff::Kind::of_file(path) {
        sniff::Kind::Tar | sniff::Kind::Gzip | sniff::Kind::Zstd => Ok(ImageKind::Archive),
        kind @ (sniff::Kind::Xz | sniff::Kind::Bzip2) => Err(Error::Spec {
            path: shown.clone(),
            why: format!("it is {}; fr reads plain, gzip and zstd tar archives", kind.describe()),
            hint: format!(
                "decompress it first ({} -dc {shown} > image.tar)",
                if kind == sniff::Kind::Xz { "xz" } else { "bzip2" }
            ),
        }),
        sniff::Kind::Sif => Err(Error::Spec {
            path: shown.clone(),
            why: "it is an Apptainer SIF image, which fr does not read".into(),
            hint: format!(
                "apptainer build --sandbox DIR {shown} unpacks it into a directory fr builds from"
            ),
        }),
        sniff::Kind::Other => Err(Error::Spec {
            path: shown,
            why: "it is neither a directory nor a tar archive".into(),
            hint: "an image to start from is a directory holding a root file system, or a tar \
                   archive of one"
                .into(),
        }),
    }
}

/// Reads SPEC: a definition file (parsed with the build arguments), or an
/// image. Nothing is written.
pub fn read(spec: &Path, args: &BTreeMap<String, String>) -> Result<Spec, Error> {
    let shown = spec.display().to_string();
    if Source::is_reference(&shown) && !spec.exists() {
        return oci_spec(&shown);
    }
    if let Some((scheme, _)) = shown.split_once("://").or_else(|| shown.split_once(':')) {
        if URI_SOURCES.contains(&scheme) && !spec.exists() {
            return Err(Error::Unsupported {
                what: format!("{shown}: fr does not read {scheme}: sources"),
                hint: "fr builds from definition files, local images and OCI images \
                       (oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE, docker://REF); \
                       skopeo copy brings others into an OCI archive"
                    .into(),
            });
        }
    }
    let meta = std::fs::metadata(spec).map_err(|e| Error::Spec {
        path: shown.clone(),
        why: e.to_string(),
        hint: "SPEC is a definition file, or an image to convert (a directory, a tar archive)"
            .into(),
    })?;
    let is_image = meta.is_dir() || sniff::Kind::of_file(spec) != sniff::Kind::Other;
    if is_image {
        image_kind(spec)?;
        let path = spec.canonicalize().map_err(Error::io(format!("finding {shown}")))?;
        let text = format!("bootstrap: localimage\nfrom: {}\n\n", path.display()).into_bytes();
        let stage = Stage {
            name: None,
            header: Header {
                bootstrap: Agent::LocalImage,
                from: Some(path.display().to_string()),
                ..Header::default()
            },
            sections: Default::default(),
        };
        return Ok(Spec { path, text, def: Definition { stages: vec![stage] } });
    }
    let text = std::fs::read(spec).map_err(|e| Error::Spec {
        path: shown.clone(),
        why: e.to_string(),
        hint: "SPEC is a definition file you can read".into(),
    })?;
    let utf8 = std::str::from_utf8(&text).map_err(|e| Error::Spec {
        path: shown.clone(),
        why: format!("it is not a text file ({e})"),
        hint: "SPEC is a definition file, or an image to convert (a directory, a tar archive)"
            .into(),
    })?;
    let def =
        parse(utf8, args).map_err(|source| Error::Definition { path: shown.clone(), source })?;
    if def.stages.is_empty() {
        return Err(Error::Spec {
            path: shown,
            why: "it has no stage (no Bootstrap: line)".into(),
            hint: "a definition file starts with a header: Bootstrap: debootstrap, localimage, \
                   busybox or scratch"
                .into(),
        });
    }
    Ok(Spec { path: spec.to_path_buf(), text, def })
}

/// An OCI image as SPEC: a one-stage definition of its agent
/// (`docker`, `oci`, `oci-archive`, `docker-archive`), as Apptainer makes
/// of `docker://REF`.
fn oci_spec(reference: &str) -> Result<Spec, Error> {
    let source = Source::parse(reference).map_err(|e| Error::Spec {
        path: reference.to_string(),
        why: e.why.clone(),
        hint: "an OCI image is oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF] \
               or docker://REF"
            .into(),
    })?;
    let (agent, from) = match &source {
        Source::Registry(r) => ("docker", r.to_string()),
        Source::Layout { .. } => ("oci", reference.trim_start_matches("oci:").to_string()),
        Source::Archive { .. } => {
            ("oci-archive", reference.trim_start_matches("oci-archive:").to_string())
        }
        Source::DockerArchive { .. } => {
            ("docker-archive", reference.trim_start_matches("docker-archive:").to_string())
        }
    };
    let text = format!("bootstrap: {agent}\nfrom: {from}\n\n").into_bytes();
    let stage = Stage {
        name: None,
        header: Header {
            bootstrap: Agent::Other(agent.into()),
            from: Some(from),
            ..Header::default()
        },
        sections: Default::default(),
    };
    Ok(Spec { path: reference.into(), text, def: Definition { stages: vec![stage] } })
}

fn parse(
    text: &str,
    args: &BTreeMap<String, String>,
) -> Result<Definition, fr_image::def::DefError> {
    fr_image::def::parse(text, args)
}

/// Build arguments: `--build-arg-file FILE`'s `KEY=VALUE` lines (others
/// skipped with a warning, as Apptainer does), then each `--build-arg`,
/// which wins.
pub fn build_args(args: &[String], file: Option<&Path>) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    if let Some(file) = file {
        let text = std::fs::read_to_string(file).map_err(|e| Error::Spec {
            path: file.display().to_string(),
            why: e.to_string(),
            hint: "--build-arg-file names a file of KEY=VALUE lines".into(),
        })?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match line.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    out.insert(k.trim().to_string(), v.to_string());
                }
                _ => log::warn!("{}: skipping {line:?}: not KEY=VALUE", file.display()),
            }
        }
    }
    for arg in args {
        match arg.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                out.insert(k.trim().to_string(), v.to_string());
            }
            _ => {
                return Err(Error::Spec {
                    path: arg.clone(),
                    why: "a build argument is KEY=VALUE".into(),
                    hint: "--build-arg NAME=VALUE, once per argument".into(),
                })
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_args_come_from_the_file_then_the_command_line() {
        let dir = std::env::temp_dir().join(format!("fr-build-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("args");
        std::fs::write(&file, "A=1\nB = two=2\nnot a pair\n\n").unwrap();
        let args = build_args(&["A=x".into(), "C=".into()], Some(&file)).unwrap();
        let got: Vec<_> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(got, ["A=x", "B= two=2", "C="]);
        assert!(build_args(&["novalue".into()], None).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn images_are_told_apart_and_uris_refused() {
        let dir = std::env::temp_dir().join(format!("fr-build-spec-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("img/.fr")).unwrap();
        std::fs::create_dir_all(dir.join("tree")).unwrap();
        std::fs::write(dir.join("x.xz"), b"\xfd7zXZ\0\0").unwrap();
        assert_eq!(image_kind(&dir.join("img")).unwrap(), ImageKind::FrImage);
        assert_eq!(image_kind(&dir.join("tree")).unwrap(), ImageKind::Tree);
        assert!(image_kind(&dir.join("x.xz")).unwrap_err().to_string().contains("xz"));
        let spec = read(&dir.join("tree"), &BTreeMap::new()).unwrap();
        assert_eq!(spec.def.stages[0].header.bootstrap, Agent::LocalImage);
        let docker = read(Path::new("docker://debian"), &BTreeMap::new()).unwrap();
        let h = &docker.def.stages[0].header;
        assert_eq!(h.bootstrap, Agent::Other("docker".into()));
        assert_eq!(h.from.as_deref(), Some("docker.io/library/debian:latest"));
        let oci = read(Path::new("oci-archive:x.tar:v1"), &BTreeMap::new()).unwrap();
        assert_eq!(oci.def.stages[0].header.from.as_deref(), Some("x.tar:v1"));
        let shub = read(Path::new("shub://a/b"), &BTreeMap::new()).unwrap_err();
        assert!(shub.hint().unwrap().contains("skopeo copy"), "{shub}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
