//! Random sequences of emulated operations (chown, chmod, file creation,
//! mknod, xattrs with file capabilities and POSIX ACLs, links, renames,
//! removals, files changed outside fr, journal reloads, set*id calls)
//! driven through the inode table, the rules and the credentials as the
//! supervisor drives them, and compared after every step with a model of
//! what real root would see. The model and the driver are shared with the
//! property test `emulator/tests/model.rs`. Run: `cargo fuzz run emulator_ops`.
#![no_main]

#[path = "../../emulator/tests/realroot/mod.rs"]
mod realroot;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    realroot::drive::World::run(&realroot::ops::decode(data, 64));
});
