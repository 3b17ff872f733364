//! OCI images, as pure formats: where an image comes from (transports),
//! its index, manifest and config (parsed with the `oci-spec` crate), the
//! digests every blob is checked against, its layers as tar streams, the
//! whiteouts in them, the ownership other rootless tools leave in xattrs,
//! what Apptainer makes of an image config, and an OCI layout written
//! out. Nothing here unpacks a layer onto disk: that is the launcher's
//! walk, which takes the tar streams from here.
//!
//! Data flows top to bottom:

// `oci:DIR[:TAG]`, `oci-archive:`, `docker-archive:`, `docker://`.
pub mod transport;
// sha256 digests and the reader that checks a blob as it is read.
pub mod digest;
// A source's files: a layout directory or an archive's members.
pub mod blobs;
// Index → manifest (for this host's platform) → config and layers.
pub mod image;
// A layer blob as its checked, decompressed tar stream.
pub mod layer;
// `.wh.NAME` and `.wh..wh..opq` in a layer's member names.
pub mod whiteout;
// `user.rootlesscontainers` and `user.containers.override_stat`.
pub mod rootless;
// The image config as Apptainer keeps it: environment, runscript, labels.
pub mod apptainer;
// An OCI layout or archive written: blobs, config, manifest, index.
pub mod write;
// A registry: pull into a layout, push from one (distribution API).
pub mod registry;
// One input of the `oci` fuzz target, and the promises it checks.
#[doc(hidden)]
pub mod check;

use std::fmt;

/// The `oci-spec` crate, whose types the image's JSON is parsed into.
pub use oci_spec;

/// An error reading an image: what was being read (the source, a blob by
/// its role and digest) and why, with the way out when there is one.
#[derive(Debug)]
pub struct OciError {
    pub what: String,
    pub why: String,
    /// The registry could not be reached at all (no answer, after the
    /// tries): a copy pulled before may stand in.
    pub unreachable: bool,
}

impl OciError {
    pub fn new(what: impl fmt::Display, why: impl fmt::Display) -> OciError {
        OciError { what: what.to_string(), why: why.to_string(), unreachable: false }
    }
}

impl fmt::Display for OciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.why)
    }
}

impl std::error::Error for OciError {}

/// The platform this host runs images of, in the image spec's (Go's)
/// names: `(os, architecture)`.
pub fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        "mips" if cfg!(target_endian = "little") => "mipsle",
        "loongarch64" => "loong64",
        other => other,
    };
    ("linux", arch)
}
