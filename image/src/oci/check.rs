//! One input for the `oci` fuzz target (and its seeds' test): the first
//! byte picks a parser of this module's hand-written formats, the rest is
//! its input; each must return, never panic, and what it returns must
//! keep the parser's promises:
//!
//! - 0: `user.rootlesscontainers`: an id it gives is never `NoopID`;
//! - 1: `user.containers.override_stat`: permissions within `0o7777`;
//! - 2: a whiteout name: never empty, `.`, `..` or with `/`;
//! - 3: a transport reference: what it prints parses back to itself;
//! - 4: environment scripts: values written by [`env_script`] read back;
//! - 5: a layout whose files are the input cut at NUL bytes (the first is
//!   `index.json`; `@N` in a file is replaced by the digest of file N, and
//!   `#N` by its size, so that the fuzzer can reach past the digests):
//!   resolving it returns, and a resolved image's blobs are the ones named;
//! - 6: a `WWW-Authenticate` challenge: what it gives, written back in
//!   its quoted form, parses back to itself.
//!
//! [`env_script`]: super::apptainer::env_script

use std::collections::HashMap;
use std::io::{self, Read};

use super::apptainer::{env_script, parse_env};
use super::blobs::Blobs;
use super::digest::Digest;
use super::image::Image;
use super::rootless::{override_stat, rootlesscontainers};
use super::transport::Source;
use super::whiteout::{classify, Name};

#[derive(Debug)]
struct Memory(HashMap<String, Vec<u8>>);

impl Blobs for Memory {
    fn open(&self, path: &str) -> io::Result<(Box<dyn Read + Send>, u64)> {
        let bytes = self.0.get(path).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok((Box::new(io::Cursor::new(bytes.clone())), bytes.len() as u64))
    }
}

/// Runs one input (see the module doc); panics when a promise is broken.
/// Returns how many images a layout input resolved to (0 for the rest).
pub fn one(data: &[u8]) -> usize {
    let Some((&mode, rest)) = data.split_first() else { return 0 };
    let text = String::from_utf8_lossy(rest);
    match mode % 7 {
        0 => {
            if let Ok(owner) = rootlesscontainers(rest) {
                assert!(owner.uid != Some(u32::MAX) && owner.gid != Some(u32::MAX));
            }
        }
        1 => {
            if let Ok(o) = override_stat(rest) {
                assert!(o.perms <= 0o7777);
            }
        }
        2 => {
            if let Ok(Name::Whiteout(name)) = classify(rest) {
                assert!(!name.is_empty() && name != b"." && name != b"..");
                assert!(!name.contains(&b'/'));
            }
        }
        3 => {
            if let Ok(source) = Source::parse(&text) {
                let again = Source::parse(&source.to_string());
                assert_eq!(again.as_ref(), Ok(&source), "{text:?} printed as {source}");
            }
        }
        4 => {
            let env: Vec<String> = text.split('\n').map(str::to_string).collect();
            let (script, skipped) = env_script(&env);
            let (back, unread) = parse_env(&script);
            assert!(unread.is_empty(), "{unread:?}");
            let written: Vec<&String> = env
                .iter()
                .filter(|e| !skipped.contains(&e.split('=').next().unwrap_or(e).to_string()))
                .collect();
            // A name given twice keeps its last value.
            let mut want: Vec<String> = Vec::new();
            for e in written {
                let (name, value) = e.split_once('=').unwrap_or((e, ""));
                want.retain(|w| w.split('=').next() != Some(name));
                want.push(format!("{name}={value}"));
            }
            assert_eq!(back, want);
            let _ = parse_env(&text);
        }
        6 => {
            if let Some(c) = super::registry::parse_challenge(&text) {
                assert!(!c.scheme.is_empty());
                let quoted: Vec<String> = c
                    .params
                    .iter()
                    .map(|(k, v)| {
                        format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
                    })
                    .collect();
                let again = format!("{} {}", c.scheme, quoted.join(", "));
                if !c.scheme.contains(char::is_whitespace)
                    && c.params.iter().all(|(k, _)| {
                        !k.contains(['=', ',', '"']) && !k.contains(char::is_whitespace)
                    })
                {
                    assert_eq!(super::registry::parse_challenge(&again), Some(c), "{again:?}");
                }
            }
        }
        _ => return layout(rest),
    }
    0
}

fn layout(rest: &[u8]) -> usize {
    let raw: Vec<&[u8]> = rest.split(|&b| b == 0).take(8).collect();
    // Each file's placeholders name files after it, so that its digest is
    // known when it is filled: filled from the last.
    let mut filled: Vec<Option<Vec<u8>>> = vec![None; raw.len()];
    for i in (0..raw.len()).rev() {
        let mut bytes = raw[i].to_vec();
        for (j, later) in filled.iter().enumerate().skip(i + 1) {
            let Some(later) = later else { continue };
            bytes =
                replace(&bytes, format!("@{j}").as_bytes(), Digest::of(later).as_str().as_bytes());
            bytes = replace(&bytes, format!("#{j}").as_bytes(), later.len().to_string().as_bytes());
        }
        filled[i] = Some(bytes);
    }
    let files: Vec<Vec<u8>> = filled.into_iter().flatten().collect();
    let mut map = HashMap::new();
    map.insert("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
    if let Some((index, blobs)) = files.split_first() {
        map.insert("index.json".to_string(), index.clone());
        for b in blobs {
            map.insert(Digest::of(b).blob_path(), b.clone());
        }
    }
    let blobs = Memory(map);
    let mut resolved = 0;
    for tag in [None, Some("latest")] {
        if let Ok(image) = Image::from_layout(&blobs, tag, "fuzz") {
            resolved += 1;
            assert!(blobs.0.contains_key(&image.key.blob_path()));
            assert_eq!(Digest::of(&image.config_bytes), image.config_digest);
            for (i, l) in image.layers.iter().enumerate() {
                // A layer that is there reads as far as it goes.
                if let Ok(mut r) = image.layer(&blobs, i) {
                    let _ = io::copy(&mut r.by_ref().take(1 << 20), &mut io::sink());
                }
                assert!(l.blob.is_some());
            }
        }
    }
    resolved
}

fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}
