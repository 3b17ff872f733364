//! `%files` sources with wildcards, expanded as Apptainer expands them (a
//! shell's pathname expansion, `mvdan.cc/sh` with `globstar`): `*`, `?`
//! and `[...]` within one part of the path, `**` across directories; a
//! name starting with `.` only by a pattern that starts with one; matches
//! in name order.

use std::path::{Path, PathBuf};

/// Whether `s` has a wildcard a shell would expand.
pub fn has_wildcard(s: &str) -> bool {
    let mut escaped = false;
    for c in s.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// `fnmatch(3)` without flags but `FNM_PERIOD`: whether `name` (one part
/// of a path) matches `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') && !pattern.starts_with("\\.") {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|i| match_from(&p[1..], &n[i..])),
        Some('?') => !n.is_empty() && match_from(&p[1..], &n[1..]),
        Some('[') => match (class(&p[1..]), n.first()) {
            (Some((set, rest)), Some(&c)) => set(c) && match_from(rest, &n[1..]),
            // An unclosed `[` is itself.
            (None, Some('[')) => match_from(&p[1..], &n[1..]),
            _ => false,
        },
        Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && match_from(&p[2..], &n[1..]),
        Some(c) => n.first() == Some(c) && match_from(&p[1..], &n[1..]),
    }
}

/// A bracket expression after its `[`: whether a char is in it, and the
/// pattern after its `]`.
#[allow(clippy::type_complexity)]
fn class(p: &[char]) -> Option<(Box<dyn Fn(char) -> bool>, &[char])> {
    let (negate, mut i) = match p.first() {
        Some('!' | '^') => (true, 1),
        _ => (false, 0),
    };
    let mut ranges: Vec<(char, char)> = Vec::new();
    let start = i;
    loop {
        let c = *p.get(i)?;
        if c == ']' && i > start {
            break;
        }
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&e| e != ']') {
            ranges.push((c, p[i + 2]));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
    let set = move |ch: char| ranges.iter().any(|&(a, b)| a <= ch && ch <= b) != negate;
    Some((Box::new(set), &p[i + 1..]))
}

/// The paths `pattern` names on the host, in name order; a pattern
/// without wildcards names itself, whether or not it exists. Relative
/// patterns are relative to the current directory and stay relative.
pub fn expand(pattern: &str) -> Vec<PathBuf> {
    if !has_wildcard(pattern) {
        return vec![PathBuf::from(unescape(pattern))];
    }
    let absolute = pattern.starts_with('/');
    let start = if absolute { PathBuf::from("/") } else { PathBuf::new() };
    let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
    let mut found = Vec::new();
    walk(&start, &parts, &mut found);
    if pattern.ends_with('/') {
        found.retain(|p| p.is_dir());
    }
    found.sort();
    found.dedup();
    found
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

fn entries(dir: &Path) -> Vec<String> {
    let at = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let mut names: Vec<String> = std::fs::read_dir(at)
        .map(|d| d.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn walk(at: &Path, parts: &[&str], found: &mut Vec<PathBuf>) {
    let Some((first, rest)) = parts.split_first() else {
        found.push(at.to_path_buf());
        return;
    };
    if *first == "**" {
        // Zero directories, then each directory below, links not followed.
        walk(at, rest, found);
        for name in entries(at).into_iter().filter(|n| !n.starts_with('.')) {
            let next = at.join(&name);
            if next.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                walk(&next, parts, found);
            }
        }
    } else if has_wildcard(first) {
        for name in entries(at).into_iter().filter(|n| matches(first, n)) {
            let next = at.join(&name);
            if rest.is_empty() || next.is_dir() {
                walk(&next, rest, found);
            }
        }
    } else {
        let next = at.join(unescape(first));
        if rest.is_empty() || next.is_dir() {
            if rest.is_empty() && next.symlink_metadata().is_err() {
                return;
            }
            walk(&next, rest, found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_a_shell_matches_them() {
        assert!(matches("*.txt", "a.txt"));
        assert!(!matches("*.txt", ".a.txt"));
        assert!(matches(".*", ".hidden"));
        assert!(matches("a?c", "abc") && !matches("a?c", "ac"));
        assert!(matches("[a-c]x", "bx") && !matches("[!a-c]x", "bx") && matches("[^a]x", "zx"));
        assert!(matches("[]]", "]"));
        assert!(matches("a\\*", "a*") && !matches("a\\*", "ab"));
        assert!(matches("[x", "[x"));
        assert!(has_wildcard("a/*.c") && !has_wildcard("a\\*") && !has_wildcard("plain/path"));
    }

    #[test]
    fn expansion_walks_the_host_tree_in_name_order() {
        let root = std::env::temp_dir().join(format!("fr-build-glob-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for p in ["a/x.c", "a/y.c", "a/.z.c", "b/deep/w.c", "b/v.h"] {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let r = root.display();
        let names = |pattern: String| -> Vec<String> {
            expand(&pattern)
                .into_iter()
                .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(names(format!("{r}/a/*.c")), ["a/x.c", "a/y.c"]);
        assert_eq!(names(format!("{r}/*/*.[ch]")), ["a/x.c", "a/y.c", "b/v.h"]);
        assert_eq!(names(format!("{r}/**/*.c")), ["a/x.c", "a/y.c", "b/deep/w.c"]);
        assert_eq!(names(format!("{r}/?/")), ["a", "b"]);
        assert!(names(format!("{r}/none*")).is_empty());
        assert_eq!(expand("no/such/file"), [PathBuf::from("no/such/file")]);
        std::fs::remove_dir_all(root).unwrap();
    }
}
