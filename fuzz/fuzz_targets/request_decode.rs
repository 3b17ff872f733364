//! Notifications with arbitrary ABIs, numbers, arguments and target memory
//! (pages that read, fail with `EFAULT` or end a read short; targets that
//! die, cannot be read, or no longer wait): `Arch::from_seccomp`,
//! `Dispatch::find` and the decoders of the call found, each compared with
//! a model of the kernel's reading of the same registers and memory. The
//! input format, the model and the checks are shared with the test
//! `supervisor/tests/decode.rs`. Nothing touches the host: the decoders
//! are called, never the handlers. Run: `cargo fuzz run request_decode`.
#![no_main]

#[path = "../../supervisor/tests/decoding/mod.rs"]
mod decoding;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    decoding::check::run(&decoding::input::decode(data));
});
