//! A stage's sections, read as Apptainer's `scanDefinitionFile()` and
//! `parseTokenSection()` read them:
//!
//! - a line whose first word starts with `%` starts a section, anywhere in
//!   the stage (inside a script too); its name is that word without its
//!   leading `%`s, in lower case; the rest of the line is its arguments;
//! - its body is every following line up to the next section, each with its
//!   newline, as written (indentation, comments and blank lines kept);
//! - a section given twice is one section whose body is the two bodies one
//!   after the other; `%files` blocks join the earlier block with the same
//!   `from` (as Apptainer joins blocks with the same arguments);
//! - a section whose whole body is empty is as good as absent, as it is
//!   for Apptainer (which acts on a body only when it is not "").
//!
//! Apptainer cannot name an indented `%word` (it keeps the indentation in
//! the name) and stops with "invalid section"; fr says why.

use super::{DefError, Files, Line, Script, Sections};

/// The SCIF app sections, which fr does not run yet.
pub(super) const APP_SECTIONS: &[&str] =
    &["appinstall", "applabels", "appfiles", "appenv", "apptest", "apphelp", "apprun", "appstart"];

/// One `%name args` line and the lines up to the next.
struct Raw<'a> {
    word: &'a str,
    name: String,
    args: &'a str,
    line: usize,
    body: Vec<Line<'a>>,
}

impl Raw<'_> {
    fn body(&self) -> String {
        let mut s = String::new();
        for l in &self.body {
            s.push_str(l.text);
            s.push('\n');
        }
        s
    }
}

/// Reads the sections of one stage: `lines` starts at its first section.
pub(super) fn parse(lines: &[Line]) -> Result<Sections, DefError> {
    let mut raws: Vec<Raw> = Vec::new();
    for l in lines {
        if let Some(word) = super::section_word(l.text) {
            if !l.text.starts_with(word) {
                return Err(DefError {
                    line: l.no,
                    why: format!(
                        "{word} is indented: a section starts at the beginning of its line \
                         (apptainer cannot name it either)"
                    ),
                });
            }
            raws.push(Raw {
                word,
                name: super::section_name(word),
                args: l.text[word.len()..].trim(),
                line: l.no,
                body: Vec::new(),
            });
        } else if let Some(r) = raws.last_mut() {
            r.body.push(*l);
        }
    }
    let mut s = Sections::default();
    for r in &raws {
        match r.name.as_str() {
            // Read before the templates were replaced (`template::defaults`).
            "arguments" => {}
            "setup" => script(&mut s.setup, r)?,
            "post" => script(&mut s.post, r)?,
            "runscript" => script(&mut s.runscript, r)?,
            "startscript" => script(&mut s.startscript, r)?,
            "test" => script(&mut s.test, r)?,
            "environment" => s.environment.get_or_insert_with(String::new).push_str(&r.body()),
            "help" => s.help.get_or_insert_with(String::new).push_str(&r.body()),
            "labels" => labels(&mut s.labels, &r.body),
            "files" => files(&mut s.files, r)?,
            "pre" => {
                return Err(DefError {
                    line: r.line,
                    why: "%pre is not supported (apptainer runs it on the host before the \
                          bootstrap; %setup runs on the host after it)"
                        .into(),
                })
            }
            n if APP_SECTIONS.contains(&n) => {
                return Err(DefError {
                    line: r.line,
                    why: format!(
                        "{}: scif app sections (%{}) are not supported yet",
                        r.word,
                        APP_SECTIONS.join(", %")
                    ),
                })
            }
            "" => {
                return Err(DefError {
                    line: r.line,
                    why: format!("section {:?} has no name", r.word),
                })
            }
            _ => return Err(DefError { line: r.line, why: format!("unknown section {}", r.word) }),
        }
    }
    for slot in [&mut s.setup, &mut s.post, &mut s.runscript, &mut s.startscript, &mut s.test] {
        if slot.as_ref().is_some_and(|sc| sc.body.is_empty()) {
            *slot = None;
        }
    }
    for slot in [&mut s.environment, &mut s.help] {
        if slot.as_ref().is_some_and(|b| b.is_empty()) {
            *slot = None;
        }
    }
    Ok(s)
}

/// A script section's `-c SHELL [ARGS]`. Apptainer cuts its arguments at
/// `#`, runs build scripts as `/bin/sh -ex -c "SHELL ARGS script"` and
/// writes `#!/bin/sh ARGS` above runtime scripts; fr keeps the interpreter
/// and refuses other `/bin/sh` options, which it has no place for.
fn shell(r: &Raw) -> Result<Option<String>, DefError> {
    let clean = r.args.split('#').next().unwrap_or_default();
    let words: Vec<&str> = clean.split_whitespace().collect();
    match words.as_slice() {
        [] => Ok(None),
        ["-c"] => Err(DefError {
            line: r.line,
            why: format!("{} -c names no shell (e.g. -c /bin/bash)", r.word),
        }),
        ["-c", rest @ ..] => Ok(Some(rest.join(" "))),
        [w, ..] => Err(DefError {
            line: r.line,
            why: format!("{} option {w:?} is not supported (fr takes -c SHELL only)", r.word),
        }),
    }
}

fn script(slot: &mut Option<Script>, r: &Raw) -> Result<(), DefError> {
    let shell = shell(r)?;
    let sc = slot.get_or_insert_with(|| Script { shell: None, body: String::new(), line: r.line });
    sc.body.push_str(&r.body());
    // As Apptainer keeps the arguments of the last section that has some.
    if shell.is_some() {
        sc.shell = shell;
    }
    Ok(())
}

/// `%labels`: `KEY VALUE` lines (the value is the rest of the line,
/// trimmed, possibly empty); blank lines and `#` comments skipped; a key
/// given twice keeps its first place and its last value (Apptainer keeps
/// them in a map). Apptainer splits at the first space only; fr at the
/// first space or tab.
fn labels(out: &mut Vec<(String, String)>, body: &[Line]) {
    for l in body {
        let t = l.text.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let (k, v) = match t.find(char::is_whitespace) {
            Some(i) => (&t[..i], t[i..].trim()),
            None => (t, ""),
        };
        match out.iter_mut().find(|(key, _)| key == k) {
            Some(e) => e.1 = v.to_string(),
            None => out.push((k.to_string(), v.to_string())),
        }
    }
}

/// The words of a `%files` line: runs of characters between white space, a
/// `"..."` or `'...'` being one word without its quotes, as Apptainer's
/// `fileSplitter` splits them (a quote also ends a word: `a"b c"` is `a`,
/// `b c`). A word that starts with `#` begins a comment, so that
/// `SRC DST # why` is a pair; Apptainer ignores every word after the
/// second, and takes `SRC # why` as a copy to `#`.
fn file_words(t: &str, line: usize) -> Result<Vec<String>, DefError> {
    let mut out = Vec::new();
    let mut rest = t;
    loop {
        rest = rest.trim_start();
        let Some(c) = rest.chars().next() else { break };
        match c {
            '#' => break,
            '"' | '\'' => {
                let Some(end) = rest[1..].find(c) else {
                    return Err(DefError {
                        line,
                        why: format!("%files line has an unclosed {c} quote"),
                    });
                };
                out.push(rest[1..1 + end].to_string());
                rest = &rest[end + 2..];
            }
            _ => {
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                    .unwrap_or(rest.len());
                out.push(rest[..end].to_string());
                rest = &rest[end..];
            }
        }
    }
    Ok(out)
}

/// `%files [from STAGE]`: `SRC [DST]` lines, blank lines and `#` comments
/// skipped. Apptainer takes any two words as `from STAGE` and silently
/// skips a block with one or three; fr wants `from` and says so.
fn files(out: &mut Vec<Files>, r: &Raw) -> Result<(), DefError> {
    let clean = r.args.split('#').next().unwrap_or_default();
    let from = match clean.split_whitespace().collect::<Vec<_>>().as_slice() {
        [] => None,
        [f, name] if f.eq_ignore_ascii_case("from") => Some(name.to_string()),
        _ => {
            return Err(DefError {
                line: r.line,
                why: format!("{} takes nothing or from STAGE, not {:?}", r.word, clean.trim()),
            })
        }
    };
    let mut pairs = Vec::new();
    for l in &r.body {
        let t = l.text.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let words = file_words(t, l.no)?;
        let (src, dst) = match words.as_slice() {
            [src] => (src, src),
            [src, dst] if dst.is_empty() => (src, src),
            [src, dst] => (src, dst),
            [_, _, extra, ..] => {
                return Err(DefError {
                    line: l.no,
                    why: format!("%files line has a third word {extra:?} (a line is SRC [DST])"),
                })
            }
            [] => continue,
        };
        if src.is_empty() {
            return Err(DefError { line: l.no, why: "%files line has an empty source".into() });
        }
        pairs.push((src.clone(), dst.clone()));
    }
    match out.iter_mut().find(|f| f.from == from) {
        Some(f) => f.pairs.extend(pairs),
        None => out.push(Files { from, pairs, line: r.line }),
    }
    Ok(())
}
