//! The `oci` fuzz target's seed corpus (and any input added to it, such as
//! a finding) run as the target runs it: none may panic, and the layout
//! seed, a whole image, resolves with and without its tag.

#[test]
fn the_oci_fuzz_seeds_keep_their_promises() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/oci");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let resolved = fr_image::oci::check::one(&data);
        if path.file_name().is_some_and(|n| n == "layout") {
            assert_eq!(resolved, 2, "the layout seed resolves, tagged and not");
        }
        seen += 1;
    }
    assert!(seen >= 6, "no seed corpus at {}", dir.display());
}
