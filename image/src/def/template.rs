//! `{{ VAR }}` build arguments, replaced in a stage's text before it is
//! parsed, as Apptainer's `internal/pkg/build/args` does:
//!
//! - a template is `{{`, optional white space, a name of ASCII letters,
//!   digits and `_`, optional white space, `}}` (its `{{\s*(\w+)\s*}}`,
//!   white space including newlines);
//! - its value is the caller's (`--build-arg`, `--build-arg-file`), else the
//!   stage's `%arguments` default; neither is an error naming the variable;
//! - a template on a line that holds, before it, a `#` followed by any
//!   character but `!` is left as it is (Apptainer's comment rule: it looks
//!   from the line's start, or from the end of the last template it
//!   replaced on that line, for `#[^!]`; a `#!` shebang is not a comment);
//! - a value's own templates are replaced once, from the same two sources,
//!   and left as they are when neither has them.
//!
//! fr adds one check Apptainer lacks: a `{{ NAME` that the line ends
//! without closing (or closes with a single `}`) is an error, where
//! Apptainer would leave the text, braces and all, in the script or path.
//! Any other `{{` (a Go template `{{ .Id }}`, Jinja's `{{ a | b }}`) is
//! text, as in Apptainer.

use std::collections::BTreeMap;

use super::DefError;

/// A stage's text grows to at most this many bytes with its values: a
/// value used many times, or holding many others, cannot make the parser
/// build gigabytes from a small file.
pub(super) const MAX_STAGE: usize = 16 << 20;

/// A stage's text with its templates replaced.
#[derive(Debug)]
pub(super) struct Templated {
    pub text: String,
    /// The original line of each line of `text`: a value with newlines
    /// makes several lines of one.
    pub lines: Vec<usize>,
    /// Each variable replaced, with the value it got.
    pub applied: BTreeMap<String, String>,
}

/// The `%arguments` defaults of one stage, read from its text before any
/// template is replaced: `KEY=VALUE` lines, both sides trimmed, the value
/// possibly empty; blank lines, `#` comments and lines without `=` or
/// without a key are skipped (Apptainer warns and skips them).
pub(super) fn defaults(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inside = false;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(name) = super::section_word(line) {
            inside = super::section_name(name) == "arguments";
            continue;
        }
        if !inside {
            continue;
        }
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = t.split_once('=') {
            let k = k.trim();
            if !k.is_empty() {
                out.insert(k.to_string(), v.trim().to_string());
            }
        }
    }
    out
}

/// Go's `\s` (RE2, ASCII): tab, newline, form feed, carriage return, space.
fn space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' ')
}

/// Go's `\w` (RE2, ASCII).
fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The template starting at `p`, if one does: its end and its name's range.
fn template_at(b: &[u8], p: usize) -> Option<(usize, usize, usize)> {
    if b.get(p..p + 2) != Some(b"{{") {
        return None;
    }
    let mut q = p + 2;
    while q < b.len() && space(b[q]) {
        q += 1;
    }
    let start = q;
    while q < b.len() && word(b[q]) {
        q += 1;
    }
    let end = q;
    if end == start {
        return None;
    }
    while q < b.len() && space(b[q]) {
        q += 1;
    }
    (b.get(q..q + 2) == Some(b"}}")).then_some((q + 2, start, end))
}

/// Whether the `{{` at `p` (no template) opens a name the line then ends
/// without closing: `{{ NAME` then the end of the line, or a single `}`.
fn unclosed_at(b: &[u8], p: usize) -> Option<(usize, usize)> {
    let mut q = p + 2;
    while q < b.len() && matches!(b[q], b' ' | b'\t') {
        q += 1;
    }
    let start = q;
    while q < b.len() && word(b[q]) {
        q += 1;
    }
    let end = q;
    if end == start {
        return None;
    }
    while q < b.len() && matches!(b[q], b' ' | b'\t') {
        q += 1;
    }
    (q == b.len() || matches!(b[q], b'\n' | b'\r' | b'}')).then_some((start, end))
}

/// Apptainer's comment rule for a template at `s`: the text from the last
/// newline at or after `floor` (the end of the last replaced template, or
/// the start) up to `s` holds `#` and then a character other than `!`.
fn commented(b: &[u8], floor: usize, s: usize) -> bool {
    let from = (floor..s).rev().find(|&k| b[k] == b'\n').unwrap_or(floor);
    let region = &b[from..s];
    region.windows(2).any(|w| w[0] == b'#' && w[1] != b'!')
}

/// The line of byte `at`, counting from `first`.
fn line_of(b: &[u8], first: usize, at: usize) -> usize {
    first + b[..at].iter().filter(|&&c| c == b'\n').count()
}

/// Every template of `text`, in order, without overlaps: (start, end, name).
fn templates(text: &str) -> Vec<(usize, usize, &str)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut p = 0;
    while let Some(off) = b[p..].windows(2).position(|w| w == b"{{") {
        let s = p + off;
        match template_at(b, s) {
            Some((e, ns, ne)) => {
                out.push((s, e, &text[ns..ne]));
                p = e;
            }
            None => p = s + 1,
        }
    }
    out
}

/// Replaces the templates of one stage's `text`, whose first line is
/// `first`, from `args` over `defaults`.
pub(super) fn apply(
    text: &str,
    first: usize,
    args: &BTreeMap<String, String>,
    defaults: &BTreeMap<String, String>,
) -> Result<Templated, DefError> {
    let b = text.as_bytes();
    let lookup = |name: &str| args.get(name).or_else(|| defaults.get(name));
    let mut out = Templated { text: String::new(), lines: vec![first], applied: BTreeMap::new() };
    // A value with its own templates replaced, once per name.
    let mut expanded: BTreeMap<&str, String> = BTreeMap::new();
    let mut line = first;
    let mut copied = 0;
    let mut p = 0;
    while let Some(off) = b[p..].windows(2).position(|w| w == b"{{") {
        let s = p + off;
        let Some((e, ns, ne)) = template_at(b, s) else {
            if let Some((ns, ne)) = unclosed_at(b, s) {
                if !commented(b, copied, s) {
                    let name = &text[ns..ne];
                    return Err(DefError {
                        line: line_of(b, first, s),
                        why: format!("unclosed {{{{ {name} (a template is {{{{ {name} }}}})"),
                    });
                }
            }
            p = s + 1;
            continue;
        };
        p = e;
        if commented(b, copied, s) {
            continue;
        }
        let name = &text[ns..ne];
        if !expanded.contains_key(name) {
            let Some(raw) = lookup(name) else {
                return Err(DefError {
                    line: line_of(b, first, s),
                    why: format!(
                        "build argument {name} is not defined (give --build-arg \
                         {name}=VALUE or a default in %arguments)"
                    ),
                });
            };
            let v = expand(raw, &lookup)
                .ok_or_else(|| DefError { line: line_of(b, first, s), why: too_big(name) })?;
            expanded.insert(name, v);
        }
        let value = &expanded[name];
        copy(&mut out, &mut line, &text[copied..s]);
        let at = line;
        for c in value.chars() {
            out.text.push(c);
            if c == '\n' {
                out.lines.push(at);
            }
        }
        line += b[s..e].iter().filter(|&&c| c == b'\n').count();
        copied = e;
        if out.text.len() > MAX_STAGE {
            return Err(DefError { line: at, why: too_big(name) });
        }
        if !out.applied.contains_key(name) {
            out.applied.insert(name.to_string(), value.clone());
        }
    }
    copy(&mut out, &mut line, &text[copied..]);
    Ok(out)
}

fn too_big(name: &str) -> String {
    format!("build argument {name}: the stage grows past {} MiB with its values", MAX_STAGE >> 20)
}

/// A value with its own templates replaced as Apptainer replaces them:
/// each template of the value in order, every occurrence of its text in
/// what the earlier ones left, when either source has its name (so a value
/// that holds its own template can grow with each repeat). `None` when it
/// grows past [`MAX_STAGE`].
fn expand<'a>(raw: &str, lookup: &impl Fn(&str) -> Option<&'a String>) -> Option<String> {
    let mut v = raw.to_string();
    let mut done: Vec<&str> = Vec::new();
    for (vs, ve, inner) in templates(raw) {
        let Some(x) = lookup(inner) else { continue };
        let pattern = &raw[vs..ve];
        // Replacing the same text again changes nothing unless its value
        // brought the text back.
        if done.contains(&pattern) && !x.contains(pattern) {
            continue;
        }
        let count = v.matches(pattern).count();
        if v.len() - count * pattern.len() + count * x.len() > MAX_STAGE {
            return None;
        }
        v = v.replace(pattern, x);
        done.push(pattern);
    }
    Some(v)
}

/// Appends text of the stage as it is, counting its lines.
fn copy(out: &mut Templated, line: &mut usize, part: &str) {
    for c in part.chars() {
        out.text.push(c);
        if c == '\n' {
            *line += 1;
            out.lines.push(*line);
        }
    }
}
