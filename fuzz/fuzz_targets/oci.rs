//! fr-image's OCI parsers on arbitrary input: `user.rootlesscontainers`,
//! `user.containers.override_stat`, whiteout names, transport references,
//! environment scripts, and whole layouts (index, manifest, config and
//! layers, their digests filled in from the input's own pieces). None may
//! panic, and each keeps its promises (`fr_image::oci::check`). Run:
//! `cargo fuzz run oci`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fr_image::oci::check::one(data);
});
