//! Apptainer definition files, parsed as Apptainer parses them
//! (`docs/build.md` lists every header key and section and what fr does
//! with it).
//!
//! A file is one or more stages, each starting at a `Bootstrap:` line: a
//! header of `Key: value` lines (keys case-insensitive, `#` comments, `\`
//! continuations), then sections `%name [args]`, whose bodies run until
//! the next section. `{{ VAR }}` is replaced before parsing, from the
//! `%arguments` defaults overridden by the caller's build arguments.

use std::collections::BTreeMap;

/// A whole definition file: its stages in order; the last is the image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Definition {
    pub stages: Vec<Stage>,
}

/// One stage: what it starts from, and what is done to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stage {
    /// The header's `Stage:` name, which `%files from NAME` refers to.
    pub name: Option<String>,
    pub header: Header,
    pub sections: Sections,
}

/// The header keys fr acts on, and the others as given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub bootstrap: Agent,
    /// `From:` (localimage, docker, oci, ...).
    pub from: Option<String>,
    /// `OSVersion:` (debootstrap's release, e.g. bookworm).
    pub os_version: Option<String>,
    /// `MirrorURL:`.
    pub mirror_url: Option<String>,
    /// `Include:`, split on spaces and commas.
    pub include: Vec<String>,
    /// Every other key, lower case, with its value and line, in file order:
    /// accepted and, where fr has no use for it, warned about.
    pub other: Vec<(String, String, usize)>,
}

/// A bootstrap agent (`Bootstrap:`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Agent {
    #[default]
    Scratch,
    Debootstrap,
    LocalImage,
    Busybox,
    /// An agent Apptainer knows that fr does not run (docker, oci,
    /// library, yum, zypper, ...), by its name as written.
    Other(String),
}

/// The sections of a stage. A section given twice is concatenated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sections {
    /// `%arguments`: defaults of `{{ VAR }}` (already applied).
    pub arguments: BTreeMap<String, String>,
    pub setup: Option<Script>,
    /// `%files` blocks, each copying into this stage from the host or, with
    /// `from STAGE`, from an earlier stage.
    pub files: Vec<Files>,
    pub post: Option<Script>,
    pub environment: Option<String>,
    pub runscript: Option<Script>,
    pub startscript: Option<Script>,
    pub test: Option<Script>,
    /// `%labels`: `KEY VALUE` lines, in order.
    pub labels: Vec<(String, String)>,
    pub help: Option<String>,
}

/// A script section's body, and the interpreter its `-c` names, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    pub shell: Option<String>,
    pub body: String,
    /// The line the section starts on, for messages.
    pub line: usize,
}

/// One `%files` block: `SRC [DST]` pairs (DST defaults to SRC).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Files {
    /// `%files from STAGE`.
    pub from: Option<String>,
    pub pairs: Vec<(String, String)>,
    pub line: usize,
}

/// Why a definition file cannot be used: the line and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct DefError {
    pub line: usize,
    pub why: String,
}
