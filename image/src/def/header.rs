//! A stage's header: the `Key: value` lines before its first section, read
//! as Apptainer's `doHeader()` (`pkg/build/types/parser/deffile.go`) reads
//! them:
//!
//! - each line is trimmed; a blank line or one whose first character is `#`
//!   is skipped; on any other line everything from the first `#` on is cut
//!   away, even inside a value (`MirrorURL: http://h/#x` is `http://h/`);
//! - a line without `:` is an error; the key is what comes before the first
//!   `:`, trimmed and in lower case, the value what follows, trimmed;
//! - a value that ends with `\` goes on with the next line, trimmed and
//!   joined without a space (`a \` then `b` is `a b`); a `\n` just before
//!   that `\` becomes a newline;
//! - a key outside Apptainer's list is an error; a key given twice keeps its
//!   last value.
//!
//! Where Apptainer misbehaves fr does the plain thing: a continuation that a
//! blank line or a comment ends, or the header's end, keeps what it has
//! (Apptainer panics on the first, drops the key on the last).

use super::{Agent, DefError, Header, Line};

/// The keywords Apptainer's parser accepts (its `validHeaders`), besides
/// `otherurl` with a number (`OtherURL0`, `OtherURL1`, ...).
pub(super) const KEYWORDS: &[&str] = &[
    "bootstrap",
    "from",
    "includecmd",
    "mirrorurl",
    "updateurl",
    "osversion",
    "include",
    "library",
    "registry",
    "namespace",
    "stage",
    "product",
    "user",
    "regcode",
    "productpgp",
    "registerurl",
    "modules",
    "fingerprints",
    "confurl",
    "setopt",
];

/// The agents Apptainer runs that fr's own variants do not name
/// (`conveyorPacker()` in `internal/pkg/build/conveyorPacker.go`).
pub(super) const OTHER_AGENTS: &[&str] = &[
    "docker",
    "docker-archive",
    "docker-daemon",
    "oci",
    "oci-archive",
    "library",
    "shub",
    "oras",
    "arch",
    "yum",
    "zypper",
];

/// Agents that start from an image named by `From:`.
const NEEDS_FROM: &[&str] =
    &["docker", "docker-archive", "docker-daemon", "oci", "oci-archive", "library", "shub", "oras"];

/// What a stage's header holds.
#[derive(Debug, Default)]
pub(super) struct Parsed {
    pub header: Header,
    /// `Stage:`.
    pub name: Option<String>,
    /// The line of `Bootstrap:`, if there is one.
    pub bootstrap: Option<usize>,
    /// The first key and its line.
    pub first: Option<(String, usize)>,
}

/// Whether Apptainer accepts `key` (lower case): one of its keywords, or
/// `otherurl` and digits (it replaces a key's trailing digits by `&n` and
/// looks for `otherurl&n`).
fn keyword(key: &str) -> bool {
    KEYWORDS.contains(&key)
        || key
            .strip_prefix("otherurl")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

/// The agent `Bootstrap:` names, in any case (Apptainer itself takes only
/// lower case).
fn agent(value: &str, line: usize) -> Result<Agent, DefError> {
    let name = value.to_ascii_lowercase();
    Ok(match name.as_str() {
        "" => return Err(DefError { line, why: "the Bootstrap: line names no agent".into() }),
        "scratch" => Agent::Scratch,
        "debootstrap" => Agent::Debootstrap,
        "localimage" => Agent::LocalImage,
        "busybox" => Agent::Busybox,
        n if OTHER_AGENTS.contains(&n) => Agent::Other(name),
        _ => return Err(DefError { line, why: format!("unknown bootstrap agent {value:?}") }),
    })
}

fn nonempty(v: String) -> Option<String> {
    (!v.is_empty()).then_some(v)
}

/// Takes one key and its whole value.
fn commit(p: &mut Parsed, key: String, value: String, line: usize) -> Result<(), DefError> {
    if !keyword(&key) {
        return Err(DefError { line, why: format!("unknown header keyword {key:?}") });
    }
    if p.first.is_none() {
        p.first = Some((key.clone(), line));
    }
    let h = &mut p.header;
    match key.as_str() {
        "bootstrap" => {
            h.bootstrap = agent(&value, line)?;
            p.bootstrap = Some(line);
        }
        "from" => h.from = nonempty(value),
        "osversion" => h.os_version = nonempty(value),
        "mirrorurl" => h.mirror_url = nonempty(value),
        "include" => {
            h.include = value
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect();
        }
        "stage" => p.name = nonempty(value),
        _ => match h.other.iter_mut().find(|(k, _, _)| *k == key) {
            Some(o) => *o = (key, value, line),
            None => h.other.push((key, value, line)),
        },
    }
    Ok(())
}

/// Reads the header lines of one stage.
pub(super) fn parse(lines: &[Line]) -> Result<Parsed, DefError> {
    let mut p = Parsed::default();
    // A value going on with the next line: key, value so far, its line.
    let mut pending: Option<(String, String, usize)> = None;
    for l in lines {
        let t = l.text.trim();
        if t.is_empty() || t.starts_with('#') {
            if let Some((k, v, n)) = pending.take() {
                commit(&mut p, k, v.trim().to_string(), n)?;
            }
            continue;
        }
        let t = t.split('#').next().unwrap_or_default();
        let (key, value, n) = match pending.take() {
            Some((k, v, n)) => (k, v + t.trim(), n),
            None => {
                let Some((k, v)) = t.split_once(':') else {
                    return Err(DefError {
                        line: l.no,
                        why: format!(
                            "{:?} is not a header line (Key: value) and no %section has begun",
                            t.trim()
                        ),
                    });
                };
                (k.trim().to_lowercase(), v.trim().to_string(), l.no)
            }
        };
        if let Some(v) = value.strip_suffix('\\') {
            let v = match v.strip_suffix("\\n") {
                Some(w) => format!("{w}\n"),
                None => v.to_string(),
            };
            pending = Some((key, v, n));
            continue;
        }
        commit(&mut p, key, value, n)?;
    }
    if let Some((k, v, n)) = pending {
        commit(&mut p, k, v.trim().to_string(), n)?;
    }
    Ok(p)
}

/// The keys the stage's agent cannot do without, as Apptainer's agents
/// check them when they start (fr checks them before anything runs).
pub(super) fn require(h: &Header, line: usize) -> Result<(), DefError> {
    let missing = |key: &str, what: &str| {
        Err(DefError { line, why: format!("bootstrap {} needs {key}: ({what})", agent_name(h)) })
    };
    match &h.bootstrap {
        Agent::Debootstrap if h.os_version.is_none() => {
            missing("OSVersion", "the release to install, e.g. bookworm")
        }
        // Apptainer's debootstrap agent requires it too; fr does not guess
        // one, since the release may be Ubuntu's as well as Debian's.
        Agent::Debootstrap if h.mirror_url.is_none() => {
            missing("MirrorURL", "the archive, e.g. http://deb.debian.org/debian")
        }
        Agent::LocalImage if h.from.is_none() => missing("From", "the image to start from"),
        Agent::Other(n) if NEEDS_FROM.contains(&n.as_str()) && h.from.is_none() => {
            missing("From", "the image to start from")
        }
        _ => Ok(()),
    }
}

fn agent_name(h: &Header) -> &str {
    match &h.bootstrap {
        Agent::Scratch => "scratch",
        Agent::Debootstrap => "debootstrap",
        Agent::LocalImage => "localimage",
        Agent::Busybox => "busybox",
        Agent::Other(n) => n,
    }
}
