//! Where an OCI image comes from, in the transport names skopeo and podman
//! use (`containers-transports(5)`): `oci:DIR[:TAG]`,
//! `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:REF]` and
//! `docker://REF`. As containers/image splits them, the path ends at the
//! first `:` after the transport (`SplitPathAndImage()`): a path with a
//! colon in it cannot be named this way.

use std::fmt;
use std::path::PathBuf;

/// An image reference given where an image, or a definition file's
/// `From:`, belongs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `oci:DIR[:TAG]`: an OCI image layout directory.
    Layout { dir: PathBuf, tag: Option<String> },
    /// `oci-archive:FILE[:TAG]`: an OCI image layout in a tar archive.
    Archive { file: PathBuf, tag: Option<String> },
    /// `docker-archive:FILE[:REF]`: what `docker save` and `podman save`
    /// write; REF picks one of several images by a repository tag.
    DockerArchive { file: PathBuf, reference: Option<String> },
    /// `docker://REF`: a registry.
    Registry(Reference),
}

/// The transports, as written before the reference.
pub const TRANSPORTS: [&str; 4] = ["oci:", "oci-archive:", "docker-archive:", "docker://"];

/// Why a reference is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not an image reference: {why}")]
pub struct BadReference {
    pub given: String,
    pub why: String,
}

fn bad(given: &str, why: impl Into<String>) -> BadReference {
    BadReference { given: given.to_string(), why: why.into() }
}

impl Source {
    /// Whether `text` names a transport fr reads, so that it is parsed as
    /// a reference and not taken for a path.
    pub fn is_reference(text: &str) -> bool {
        TRANSPORTS.iter().any(|t| text.starts_with(t))
    }

    /// Parses `TRANSPORT:REST`.
    pub fn parse(text: &str) -> Result<Source, BadReference> {
        let split = |rest: &str| -> Result<(PathBuf, Option<String>), BadReference> {
            let (path, tag) = match rest.split_once(':') {
                Some((p, t)) => (p, Some(t.to_string())),
                None => (rest, None),
            };
            if path.is_empty() {
                return Err(bad(text, "the path is empty"));
            }
            if tag.as_deref() == Some("") {
                return Err(bad(text, "the tag after `:` is empty"));
            }
            Ok((PathBuf::from(path), tag))
        };
        if let Some(rest) = text.strip_prefix("docker://") {
            return Reference::parse(rest).map(Source::Registry).map_err(|why| bad(text, why));
        }
        if let Some(rest) = text.strip_prefix("oci-archive:") {
            let (file, tag) = split(rest)?;
            return Ok(Source::Archive { file, tag });
        }
        if let Some(rest) = text.strip_prefix("docker-archive:") {
            let (file, reference) = split(rest)?;
            return Ok(Source::DockerArchive { file, reference });
        }
        if let Some(rest) = text.strip_prefix("oci:") {
            let (dir, tag) = split(rest)?;
            return Ok(Source::Layout { dir, tag });
        }
        Err(bad(text, format!("it names no transport fr reads ({})", TRANSPORTS.join(", "))))
    }

    /// A definition file's `Bootstrap: AGENT` with `From: VALUE`, as
    /// Apptainer reads them: `docker` takes a registry reference without
    /// the `docker://`, `oci` a layout (`DIR[:TAG]`), `oci-archive` and
    /// `docker-archive` an archive.
    pub fn from_agent(agent: &str, from: &str) -> Result<Source, BadReference> {
        let full = match agent {
            "docker" => format!("docker://{}", from.trim_start_matches("docker://")),
            "oci" => format!("oci:{}", from.trim_start_matches("oci:")),
            "oci-archive" => format!("oci-archive:{}", from.trim_start_matches("oci-archive:")),
            "docker-archive" => {
                format!("docker-archive:{}", from.trim_start_matches("docker-archive:"))
            }
            other => return Err(bad(from, format!("`Bootstrap: {other}` is no OCI agent"))),
        };
        Source::parse(&full)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tagged = |f: &mut fmt::Formatter<'_>, t: &str, p: &PathBuf, tag: &Option<String>| {
            write!(f, "{t}{}", p.display())?;
            match tag {
                Some(tag) => write!(f, ":{tag}"),
                None => Ok(()),
            }
        };
        match self {
            Source::Layout { dir, tag } => tagged(f, "oci:", dir, tag),
            Source::Archive { file, tag } => tagged(f, "oci-archive:", file, tag),
            Source::DockerArchive { file, reference } => {
                tagged(f, "docker-archive:", file, reference)
            }
            Source::Registry(r) => write!(f, "docker://{r}"),
        }
    }
}

/// A registry reference, `[HOST[:PORT]/]NAME[:TAG][@DIGEST]`, completed
/// as docker and podman complete a short name: no host is Docker Hub
/// (`docker.io`), where a name without a slash is in `library/`; no tag
/// and no digest is `latest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The registry as named (`docker.io`, `localhost:5000`).
    pub registry: String,
    /// The repository (`library/busybox`).
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:...`, when the reference pins one.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses a reference as the docker/distribution grammar does
    /// (`reference.ParseNormalizedNamed()`): the first component is a
    /// host when it has a `.` or a `:` or is `localhost`.
    pub fn parse(text: &str) -> Result<Reference, String> {
        if text.is_empty() {
            return Err("the reference is empty".into());
        }
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) => {
                let (alg, hex) = d.split_once(':').ok_or("the digest has no algorithm")?;
                if alg != "sha256"
                    || hex.len() != 64
                    || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Err(format!("`{d}` is not a sha256 digest"));
                }
                (r, Some(d.to_string()))
            }
            None => (text, None),
        };
        // The tag is after the last `:` that follows the last `/`.
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_string())),
            None => (rest, None),
        };
        if let Some(tag) = &tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
                && !tag.starts_with(['.', '-']);
            if !ok {
                return Err(format!("`{tag}` is not a valid tag"));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ if name.contains('/') => ("docker.io".to_string(), name.to_string()),
            _ => ("docker.io".to_string(), format!("library/{name}")),
        };
        if repository.is_empty()
            || repository.split('/').any(|c| {
                c.is_empty()
                    || !c.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
            })
        {
            return Err(format!(
                "`{repository}` is not a repository name (lower-case letters, digits, `._-`, \
                 components separated by `/`)"
            ));
        }
        let tag = if tag.is_none() && digest.is_none() { Some("latest".into()) } else { tag };
        Ok(Reference { registry, repository, tag, digest })
    }

    /// What the registry is asked for: the digest if pinned, else the tag.
    pub fn wanted(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_split_at_the_first_colon_as_skopeo_does() {
        assert_eq!(
            Source::parse("oci:/tmp/x:v1").unwrap(),
            Source::Layout { dir: "/tmp/x".into(), tag: Some("v1".into()) }
        );
        assert_eq!(
            Source::parse("oci-archive:a.tar").unwrap(),
            Source::Archive { file: "a.tar".into(), tag: None }
        );
        assert_eq!(
            Source::parse("docker-archive:s.tar:busybox:1").unwrap(),
            Source::DockerArchive { file: "s.tar".into(), reference: Some("busybox:1".into()) }
        );
        assert!(Source::parse("oci:").is_err());
        assert!(Source::parse("oci:dir:").is_err());
        assert!(Source::parse("sif:x").is_err());
        assert!(Source::is_reference("docker://busybox") && !Source::is_reference("./oci"));
        for s in ["oci:/x:t", "oci-archive:/a.tar", "docker-archive:/s.tar", "docker://a.b/c:d"] {
            assert_eq!(Source::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn references_are_completed_as_docker_completes_them() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        let r = Reference::parse("localhost:5000/a/b:v2").unwrap();
        assert_eq!((r.registry.as_str(), r.repository.as_str()), ("localhost:5000", "a/b"));
        assert_eq!(r.wanted(), "v2");
        let r = Reference::parse("127.0.0.1:5000/x").unwrap();
        assert_eq!((r.registry.as_str(), r.tag.as_deref()), ("127.0.0.1:5000", Some("latest")));
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("quay.io/x/y@{d}")).unwrap();
        assert_eq!((r.tag.as_deref(), r.wanted()), (None, d.as_str()));
        assert!(Reference::parse("UPPER").is_err());
        assert!(Reference::parse("x@sha256:12").is_err());
        assert!(Reference::parse("x:bad tag").is_err());
        assert!(Reference::parse("").is_err());
        assert_eq!(
            Source::from_agent("docker", "alpine:3").unwrap().to_string(),
            "docker://docker.io/library/alpine:3"
        );
        assert!(Source::from_agent("oci", "d:t").is_ok());
        assert!(Source::from_agent("library", "x").is_err());
    }
}
