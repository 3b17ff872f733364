//! Apptainer definition files (`fr_image::def::parse`). The first byte
//! chooses:
//!
//! - even: the bytes up to the first NUL are the file (UTF-8, lossy), the
//!   rest the build arguments (`arbitrary`, names mostly from a few that the
//!   corpus uses). `parse` never panics; an error names a line of the file;
//!   a definition has a stage, every `%files from` names an earlier stage,
//!   no script or text section is empty, every line it records is a line
//!   of the file, and the unused arguments are the caller's;
//! - odd: a definition built from the rest (`arbitrary`: stages, agents,
//!   header keys in any case, every section, labels, `%files` blocks with
//!   quoted paths), written out as a file, parses back to itself, lines
//!   included.
//!
//! Run: `scripts/fuzz.sh 120 definition`.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::{Result, Unstructured};
use fr_image::def::{parse, Agent, Definition, Files, Header, Script, Sections, Stage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 0 {
        raw(rest);
    } else {
        let _ = structured(&mut Unstructured::new(rest));
    }
});

/// Names the seeds' templates use, so that arguments meet them.
const NAMES: &[&str] = &["A", "B", "V", "VERSION", "TAG", "RELEASE", "X_1"];

fn raw(data: &[u8]) {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let text = String::from_utf8_lossy(&data[..split]);
    let mut u = Unstructured::new(data.get(split + 1..).unwrap_or_default());
    let mut args = BTreeMap::new();
    for _ in 0..u.int_in_range(0..=4u8).unwrap_or(0) {
        let name = if u.ratio(3, 4).unwrap_or(true) {
            (*u.choose(NAMES).unwrap_or(&"A")).to_string()
        } else {
            u.arbitrary().unwrap_or_default()
        };
        args.insert(name, u.arbitrary::<String>().unwrap_or_default());
    }
    let lines = text.split('\n').count();
    match parse(&text, &args) {
        Err(e) => {
            assert!((1..=lines).contains(&e.line), "{e} of {lines} lines");
            assert!(!e.why.starts_with(char::is_uppercase), "{e}");
        }
        Ok(d) => check(&d, lines, &args),
    }
}

fn check(d: &Definition, lines: usize, args: &BTreeMap<String, String>) {
    assert!(!d.stages.is_empty());
    let within = |n: usize| assert!((1..=lines).contains(&n), "line {n} of {lines}");
    for (i, s) in d.stages.iter().enumerate() {
        let x = &s.sections;
        for sc in [&x.setup, &x.post, &x.runscript, &x.startscript, &x.test].into_iter().flatten() {
            assert!(!sc.body.is_empty());
            within(sc.line);
        }
        for t in [&x.environment, &x.help].into_iter().flatten() {
            assert!(!t.is_empty());
        }
        for (n, f) in x.files.iter().enumerate() {
            within(f.line);
            assert!(!x.files[..n].iter().any(|e| e.from == f.from), "blocks not joined");
            if let Some(from) = &f.from {
                assert!(d.stages[..i].iter().any(|e| e.name.as_ref() == Some(from)));
            }
            assert!(f.pairs.iter().all(|(src, dst)| !src.is_empty() && !dst.is_empty()));
        }
        for (_, _, n) in &s.header.other {
            within(*n);
        }
        for k in x.arguments.keys() {
            assert!(!k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        }
    }
    for k in d.unused_args(args) {
        assert!(args.contains_key(k));
        assert!(!d.stages.iter().any(|s| s.sections.arguments.contains_key(k)));
    }
}

// The structured mode: a definition, the file that says it, and back.

/// Picks a string of 1..=max characters from `set`.
fn word(u: &mut Unstructured, set: &[char], max: usize) -> Result<String> {
    let n = u.int_in_range(1..=max)?;
    (0..n).map(|_| u.choose(set).copied()).collect()
}

const NAME: &[char] = &['a', 'b', 'z', '0', '9', '_', '-', '.'];
const VALUE: &[char] = &['a', 'Z', '0', ':', '/', '.', '_', '-', '@', '+', '=', 'é', ' '];
const PATH: &[char] = &['a', 'b', '/', '.', '-', '_', ' ', '#', '\'', 'é', '%', '0'];
/// Body text: anything but `{` (a template), `\r` and `\n`; lines that
/// would start a section or a stage are fixed below.
const TEXT: &[char] = &[
    'a', 'B', 'o', 't', 's', 'r', 'p', ':', ' ', '\t', '#', '!', '"', '\'', '$', '%', '}', '\\',
    'é', '-', '/', '*', '=', '0',
];

/// A header value: no `#`, no space at either end, no `\` at the end.
fn value(u: &mut Unstructured) -> Result<String> {
    let v = word(u, VALUE, 12)?;
    let v = v.trim().to_string();
    Ok(if v.is_empty() { "v".into() } else { v })
}

fn body(u: &mut Unstructured) -> Result<String> {
    let mut b = String::new();
    for _ in 0..u.int_in_range(1..=4)? {
        let mut line = if u.ratio(1, 4)? { String::new() } else { word(u, TEXT, 16)? };
        let first = line.split_whitespace().next().unwrap_or_default();
        if first.starts_with('%') || line.to_ascii_lowercase().starts_with("bootstrap:") {
            line.insert(0, 'x');
        }
        b.push_str(&line);
        b.push('\n');
    }
    Ok(b)
}

fn script(u: &mut Unstructured) -> Result<Option<Script>> {
    if !u.ratio(1, 2)? {
        return Ok(None);
    }
    let shell = if u.ratio(1, 3)? {
        let mut s = format!("/bin/{}", word(u, NAME, 6)?);
        if u.ratio(1, 3)? {
            s.push_str(" -l");
        }
        Some(s)
    } else {
        None
    };
    Ok(Some(Script { shell, body: body(u)?, line: 0 }))
}

/// Keys that go to `Header::other`.
const OTHER: &[&str] = &[
    "includecmd",
    "updateurl",
    "library",
    "registry",
    "namespace",
    "product",
    "user",
    "regcode",
    "productpgp",
    "registerurl",
    "modules",
    "fingerprints",
    "confurl",
    "setopt",
    "otherurl0",
    "otherurl17",
];

fn stage(u: &mut Unstructured, names: &[String], index: usize) -> Result<Stage> {
    let bootstrap = match u.int_in_range(0..=5)? {
        0 => Agent::Scratch,
        1 => Agent::Busybox,
        2 => Agent::Debootstrap,
        3 => Agent::LocalImage,
        4 => Agent::Other(u.choose(&["docker", "oci-archive", "library"])?.to_string()),
        _ => Agent::Other(u.choose(&["yum", "zypper", "arch"])?.to_string()),
    };
    let mut h = Header { bootstrap, ..Header::default() };
    let needs_from = matches!(&h.bootstrap, Agent::LocalImage)
        || matches!(&h.bootstrap, Agent::Other(n) if !["yum", "zypper", "arch"].contains(&n.as_str()));
    let deb = h.bootstrap == Agent::Debootstrap;
    h.from = if needs_from || u.ratio(1, 4)? { Some(value(u)?) } else { None };
    h.os_version = if deb || u.ratio(1, 4)? { Some(value(u)?) } else { None };
    h.mirror_url = if deb || u.ratio(1, 4)? { Some(value(u)?) } else { None };
    for _ in 0..u.int_in_range(0..=3)? {
        h.include.push(word(u, NAME, 8)?);
    }
    for _ in 0..u.int_in_range(0..=3)? {
        let k = u.choose(OTHER)?.to_string();
        if !h.other.iter().any(|(o, _, _)| *o == k) {
            h.other.push((k, value(u)?, 0));
        }
    }
    let name = if u.ratio(2, 3)? { Some(format!("s{index}{}", word(u, NAME, 4)?)) } else { None };
    let mut x = Sections {
        setup: script(u)?,
        post: script(u)?,
        runscript: script(u)?,
        startscript: script(u)?,
        test: script(u)?,
        environment: if u.ratio(1, 2)? { Some(body(u)?) } else { None },
        help: if u.ratio(1, 2)? { Some(body(u)?) } else { None },
        ..Sections::default()
    };
    for _ in 0..u.int_in_range(0..=3)? {
        let k = word(u, NAME, 10)?;
        let v = word(u, VALUE, 12)?.trim().to_string();
        if !x.labels.iter().any(|(o, _)| *o == k) {
            x.labels.push((k, v));
        }
    }
    for _ in 0..u.int_in_range(0..=3)? {
        let from =
            if !names.is_empty() && u.ratio(1, 2)? { Some(u.choose(names)?.clone()) } else { None };
        if x.files.iter().any(|f| f.from == from) {
            continue;
        }
        let mut pairs = Vec::new();
        for _ in 0..u.int_in_range(0..=3)? {
            let src = word(u, PATH, 10)?;
            let dst = if u.ratio(1, 2)? { src.clone() } else { word(u, PATH, 10)? };
            pairs.push((src, dst));
        }
        x.files.push(Files { from, pairs, line: 0 });
    }
    Ok(Stage { name, header: h, sections: x })
}

/// Writes `key` in a case chosen by `u`.
fn key(u: &mut Unstructured, k: &str) -> Result<String> {
    Ok(match u.int_in_range(0..=2)? {
        0 => k.to_string(),
        1 => k.to_ascii_uppercase(),
        _ => {
            let mut c = k.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        }
    })
}

/// A path as `%files` reads it back: quoted when it must be.
fn path(p: &str) -> String {
    if p.contains(|c: char| c.is_whitespace() || c == '\'') || p.starts_with(['#', '%']) {
        format!("\"{p}\"")
    } else {
        p.to_string()
    }
}

/// The file for `d`, with the line of each thing it records set in `d`.
fn render(u: &mut Unstructured, d: &mut Definition) -> Result<String> {
    let mut out = String::new();
    let mut n = 0;
    let mut put = |out: &mut String, line: &str| {
        out.push_str(line);
        out.push('\n');
        n += 1;
        n
    };
    if u.ratio(1, 3)? {
        put(&mut out, "# a definition");
    }
    for s in &mut d.stages {
        let h = &mut s.header;
        let agent = match &h.bootstrap {
            Agent::Scratch => "scratch",
            Agent::Debootstrap => "debootstrap",
            Agent::LocalImage => "localimage",
            Agent::Busybox => "busybox",
            Agent::Other(o) => o.as_str(),
        };
        let agent = if u.ratio(1, 3)? { agent.to_ascii_uppercase() } else { agent.to_string() };
        let b = if u.ratio(1, 2)? { "Bootstrap" } else { "bootstrap" };
        put(&mut out, &format!("{b}: {agent}"));
        let pairs = [("from", &h.from), ("osversion", &h.os_version), ("mirrorurl", &h.mirror_url)];
        for (k, v) in pairs {
            if let Some(v) = v {
                let k = key(u, k)?;
                put(&mut out, &format!("{k}: {v}"));
            }
        }
        if !h.include.is_empty() {
            let k = key(u, "include")?;
            put(&mut out, &format!("{k}: {}", h.include.join(", ")));
        }
        if let Some(name) = &s.name {
            let k = key(u, "stage")?;
            put(&mut out, &format!("{k}:{name}"));
        }
        for (k, v, line) in &mut h.other {
            let kk = key(u, k)?;
            let cut = v.chars().next().map_or(1, char::len_utf8);
            if u.ratio(1, 4)? && v[cut..].starts_with(|c: char| !c.is_whitespace()) {
                // A continuation: the value cut in two, joined without a space.
                let (a, b) = v.split_at(cut);
                *line = put(&mut out, &format!("{kk}: {a}\\"));
                put(&mut out, &format!("    {b}"));
            } else {
                *line = put(&mut out, &format!("{kk}: {v}  # why"));
            }
        }
        put(&mut out, "");
        let x = &mut s.sections;
        let scripts = [
            ("%setup", &mut x.setup),
            ("%post", &mut x.post),
            ("%runscript", &mut x.runscript),
            ("%startscript", &mut x.startscript),
            ("%test", &mut x.test),
        ];
        for (name, sc) in scripts {
            if let Some(sc) = sc {
                let head = match &sc.shell {
                    Some(sh) => format!("{name} -c {sh}"),
                    None => name.to_string(),
                };
                sc.line = put(&mut out, &head);
                for l in sc.body.lines() {
                    put(&mut out, l);
                }
            }
        }
        for (name, t) in [("%environment", &x.environment), ("%help", &x.help)] {
            if let Some(t) = t {
                put(&mut out, name);
                for l in t.lines() {
                    put(&mut out, l);
                }
            }
        }
        if !x.labels.is_empty() {
            put(&mut out, "%labels");
            for (k, v) in &x.labels {
                put(&mut out, &format!("    {k} {v}"));
            }
        }
        for f in &mut x.files {
            f.line = match &f.from {
                Some(from) => put(&mut out, &format!("%files from {from}")),
                None => put(&mut out, "%files"),
            };
            for (src, dst) in &f.pairs {
                if src == dst && u.ratio(1, 2)? {
                    put(&mut out, &format!("  {}", path(src)));
                } else {
                    put(&mut out, &format!("  {} {}", path(src), path(dst)));
                }
            }
        }
    }
    Ok(out)
}

fn structured(u: &mut Unstructured) -> Result<()> {
    let mut d = Definition::default();
    let mut names = Vec::new();
    for i in 0..u.int_in_range(1..=3)? {
        let s = stage(u, &names, i)?;
        if let Some(n) = &s.name {
            names.push(n.clone());
        }
        d.stages.push(s);
    }
    let text = render(u, &mut d)?;
    match parse(&text, &BTreeMap::new()) {
        Ok(back) => assert_eq!(back, d, "{text}"),
        Err(e) => panic!("{e}\n{text}"),
    }
    Ok(())
}
