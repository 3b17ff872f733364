//! The README's first command, as a new user copies it: it must work on a
//! fresh clone with nothing but fr itself, as an unprivileged user and as
//! root.

mod common;

use std::path::Path;
use std::process::Command;

use common::{harness, is_root};

/// The first indented line of the README's "The two commands" section that
/// runs fr, with the build in front of it replaced by the fr under test.
fn first_command(fr: &Path) -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("reading README.md");
    let section =
        readme.split("## The two commands").nth(1).expect("a \"The two commands\" section");
    let line = section
        .lines()
        .find(|l| l.starts_with("    ") && l.contains("fr exec"))
        .expect("an indented fr exec command in \"The two commands\"");
    let built = "cargo build --release && ./target/release/fr ";
    let rest = line.trim().strip_prefix(built).unwrap_or_else(|| {
        panic!("the first command no longer starts with {built:?}: update this test\n{line}")
    });
    format!("{} {rest}", fr.display())
}

#[test]
fn the_readmes_first_command_works_as_a_user_and_as_root() {
    let Some(h) = harness() else { return };
    let command = first_command(&h.fr);
    let dir = h.scratch("readme");
    let run = common::run(h.command("sh").arg("-c").arg(&command).current_dir(&dir));
    assert_eq!(run.code, Some(0), "as the test user: {command}\n{}", run.stderr);
    assert_eq!(run.stdout, "123:456\n", "as the test user: {command}");
    assert!(!dir.join("f").exists(), "the file is removed again");
    if is_root() {
        // Root's own directory, as root's clone would be.
        let dir = dir.join("root");
        std::fs::create_dir(&dir).unwrap();
        let out = Command::new("sh").arg("-c").arg(&command).current_dir(&dir).output().unwrap();
        assert!(out.status.success(), "as root: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "123:456\n", "as root");
        // The test user's cleanup could not remove root's directory.
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
