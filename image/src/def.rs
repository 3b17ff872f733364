//! Apptainer definition files, parsed as Apptainer parses them
//! (`docs/build.md` lists every header key and section and what fr does
//! with it).
//!
//! A file is one or more stages, each starting at a `Bootstrap:` line: a
//! header of `Key: value` lines (keys case-insensitive, `#` comments, `\`
//! continuations), then sections `%name [args]`, whose bodies run until
//! the next section. `{{ VAR }}` is replaced before parsing, from the
//! `%arguments` defaults overridden by the caller's build arguments.
//!
//! The steps, in the order Apptainer takes them (`parser.All()`,
//! `build.MakeAllDefs()`, `args.NewReader()`, `parser.ParseDefinitionFile()`):
//!
//! 1. the text is cut before every line that starts with `bootstrap:` (in
//!    any case, at the line's very start), wherever it is, a script
//!    included; what comes before the first such line is a stage too, which
//!    must then be only blank lines and comments (or begin with an indented
//!    `Bootstrap:`);
//! 2. each stage's `%arguments` defaults are read from its text as written,
//!    and its templates replaced (`def/template.rs`); a stage's defaults
//!    are its own;
//! 3. the stage is read: its header (`def/header.rs`) up to the first line
//!    whose first word starts with `%`, then its sections
//!    (`def/sections.rs`);
//! 4. the agent's required keys are checked, and every `%files from STAGE`
//!    must name an earlier stage.
//!
//! Errors name the line (of the file as written) and the offending word.
//! Nothing here reads a file or the environment: the caller gives the text
//! and the build arguments.

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
    /// library, yum, zypper, ...), by its name in lower case.
    Other(String),
}

/// The sections of a stage. A section given twice is concatenated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sections {
    /// The build arguments this stage's templates used, each with the value
    /// it was given (from the caller, else from the stage's `%arguments`,
    /// with the value's own templates replaced); the templates are already
    /// replaced everywhere in the stage. [`Definition::unused_args`] says
    /// which of the caller's arguments no stage used.
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

/// One `%files` block: `SRC [DST]` pairs (DST defaults to SRC). Blocks
/// with the same `from` are joined into the first, as Apptainer joins them.
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

mod header;
mod sections;
mod template;
#[cfg(test)]
mod tests;

/// One line of a stage, after its templates were replaced, and the line of
/// the file it came from.
#[derive(Clone, Copy, Debug)]
struct Line<'a> {
    no: usize,
    text: &'a str,
}

/// The word that starts a section, if `line` is a section line: its first
/// word starts with `%` (Apptainer's `scanDefinitionFile()` looks at the
/// first word, so white space before it does not matter there).
fn section_word(line: &str) -> Option<&str> {
    line.split_whitespace().next().filter(|w| w.starts_with('%'))
}

/// A section's name: its word without the leading `%`s, in lower case.
fn section_name(word: &str) -> String {
    word.trim_start_matches('%').to_lowercase()
}

/// Whether `line` starts a stage: `bootstrap:` in any case at its very
/// start (Apptainer's `(?mi)^bootstrap:`).
fn starts_stage(line: &str) -> bool {
    line.as_bytes().get(..10).is_some_and(|b| b.eq_ignore_ascii_case(b"bootstrap:"))
}

/// The text of each stage and its first line: the file cut before every
/// line that starts a stage. The first piece, before any such line, may be
/// empty.
fn split_stages(text: &str) -> Vec<(&str, usize)> {
    let mut out = Vec::new();
    let (mut start, mut first) = (0, 1);
    let mut at = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i > 0 && starts_stage(line) {
            out.push((&text[start..at], first));
            (start, first) = (at, i + 1);
        }
        at += line.len();
    }
    out.push((&text[start..], first));
    out
}

/// The lines of a stage's replaced text, numbered by `map`: cut at `\n`, a
/// `\r` before it dropped (Go's `bufio.ScanLines`), no empty line after a
/// final newline.
fn lines_of<'a>(text: &'a str, map: &[usize]) -> Vec<Line<'a>> {
    let mut pieces: Vec<&str> = text.split('\n').collect();
    if pieces.last() == Some(&"") {
        pieces.pop();
    }
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, t)| Line {
            no: map.get(i).copied().unwrap_or_else(|| map.last().copied().unwrap_or(1)),
            text: t.strip_suffix('\r').unwrap_or(t),
        })
        .collect()
}

/// Reads one stage, or nothing for a piece of blank lines and comments.
fn stage(lines: &[Line]) -> Result<Option<Stage>, DefError> {
    let split = lines.iter().position(|l| section_word(l.text).is_some()).unwrap_or(lines.len());
    let h = header::parse(&lines[..split])?;
    let first_section = lines.get(split);
    let Some(bootstrap) = h.bootstrap else {
        if let Some((key, line)) = &h.first {
            return Err(DefError {
                line: *line,
                why: format!(
                    "header key {key:?} comes before any Bootstrap: line (a stage starts with it)"
                ),
            });
        }
        if let Some(l) = first_section {
            let word = section_word(l.text).unwrap_or_default();
            return Err(DefError {
                line: l.no,
                why: format!("{word} comes before any Bootstrap: line (a stage starts with it)"),
            });
        }
        return Ok(None);
    };
    if let Some((key, line)) = &h.first {
        if key != "bootstrap" {
            return Err(DefError {
                line: *line,
                why: format!("header key {key:?} comes before Bootstrap: (a stage starts with it)"),
            });
        }
    }
    header::require(&h.header, bootstrap)?;
    let sections = sections::parse(&lines[split..])?;
    Ok(Some(Stage { name: h.name, header: h.header, sections }))
}

/// Parses a definition file's `text` with the caller's build arguments
/// (`--build-arg KEY=VALUE`, `--build-arg-file`), which override each
/// stage's `%arguments` defaults.
pub fn parse(text: &str, args: &BTreeMap<String, String>) -> Result<Definition, DefError> {
    let mut stages: Vec<Stage> = Vec::new();
    for (piece, first) in split_stages(text) {
        let defaults = template::defaults(piece);
        let t = template::apply(piece, first, args, &defaults)?;
        let lines = lines_of(&t.text, &t.lines);
        if let Some(mut s) = stage(&lines)? {
            s.sections.arguments = t.applied;
            stages.push(s);
        }
    }
    if stages.is_empty() {
        return Err(DefError { line: 1, why: "no stage: the file has no Bootstrap: line".into() });
    }
    for (i, s) in stages.iter().enumerate() {
        for f in &s.sections.files {
            if let Some(from) = &f.from {
                if !stages[..i].iter().any(|e| e.name.as_ref() == Some(from)) {
                    return Err(DefError {
                        line: f.line,
                        why: format!("%files from {from}: no earlier stage is named {from}"),
                    });
                }
            }
        }
    }
    Ok(Definition { stages })
}

impl Definition {
    /// The caller's build arguments that no stage used, in order: Apptainer
    /// stops the build for them unless told `--warn-unused-build-args`.
    pub fn unused_args<'a>(&self, args: &'a BTreeMap<String, String>) -> Vec<&'a str> {
        args.keys()
            .filter(|k| !self.stages.iter().any(|s| s.sections.arguments.contains_key(*k)))
            .map(String::as_str)
            .collect()
    }
}
