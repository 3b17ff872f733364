//! System call decoding against the kernel's reading of the same
//! registers and memory, over a fake target.
//!
//! Shared by the test `supervisor/tests/decode.rs` and the fuzz target
//! `fuzz/fuzz_targets/request_decode.rs` (which includes it by `#[path]`):
//!
//! - [`fake`]: the target, pages of memory and a fate.
//! - [`kernel`]: the model. Written from the kernel sources it cites; it
//!   never calls fr's decoders.
//! - [`input`]: how bytes become a notification and its target, and back.
//! - [`check`]: runs one through fr's ABI, table and decoders and compares.

#![allow(dead_code)]

pub mod check;
pub mod fake;
pub mod input;
pub mod kernel;
