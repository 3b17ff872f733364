//! What real root would see, as a small model of Linux, and a driver that
//! runs the same operations through fr's emulator and compares the two.
//!
//! Shared by the property test `emulator/tests/model.rs` and the fuzz target
//! `fuzz/fuzz_targets/emulator_ops.rs` (which includes it by `#[path]`):
//!
//! - [`linux`]: the model. Written from the kernel sources it cites, and
//!   checked against a real kernel as root where the sources left a doubt;
//!   it never calls `fr_emulator`.
//! - [`ops`]: the operations, and how a fuzzer's bytes become them.
//! - [`drive`]: plays the supervisor and the host file system around an
//!   `InodeTable`, `Creds` and the rules, and asserts after every step that
//!   every file, its xattrs and the credentials look as the model says.

#![allow(dead_code)]

pub mod drive;
pub mod linux;
pub mod ops;
