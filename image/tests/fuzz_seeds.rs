//! The `definition` fuzz target's seed corpus (and any input added to it,
//! such as a finding) parsed as the target's text mode parses it: the
//! bytes after the mode byte up to the first NUL, as UTF-8 (lossy). No seed
//! may panic, and the seeds that are whole files must parse.

use std::collections::BTreeMap;

use fr_image::def::parse;

#[test]
fn the_fuzz_seeds_parse_without_panicking() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/definition");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let Some((&mode, rest)) = data.split_first() else { continue };
        if mode & 1 != 0 {
            continue;
        }
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let text = String::from_utf8_lossy(&rest[..end]);
        let result = parse(&text, &BTreeMap::new());
        let name = path.file_name().unwrap().to_string_lossy();
        // Whole files whose templates all have defaults.
        if name == "demo" || name == "multistage" {
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        seen += 1;
    }
    assert!(seen >= 4, "no seed corpus at {}", dir.display());
}
