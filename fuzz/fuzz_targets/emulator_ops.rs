//! Random sequences of chown and chmod on a few files, through the inode
//! table, compared after every step with a model of what real root's inode
//! would hold. Run: `cargo fuzz run emulator_ops`.
#![no_main]

use std::collections::HashMap;

use arbitrary::Arbitrary;
use fr_emulator::attrs::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK};
use fr_emulator::{Attrs, Creds, IdMap, InodeKey, InodeTable};
use libfuzzer_sys::fuzz_target;

const USER: IdMap = IdMap { host_uid: 1000, host_gid: 1000 };
const TYPES: [u32; 7] = [S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK];

#[derive(Arbitrary, Debug)]
enum Op {
    Chown { file: u8, uid: Option<u32>, gid: Option<u32> },
    Chmod { file: u8, mode: u32 },
    /// The inode number is reused by a file of another type (made outside fr).
    Replace { file: u8, kind: u8, mode: u16, uid: u32, gid: u32 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// The real (type, mode, uid, gid) of each of the files at the start.
    files: Vec<(u8, u16, u32, u32)>,
    ops: Vec<Op>,
}

/// Real root's inode: what chown and chmod leave in it.
fn model_chown(m: &mut Attrs, uid: Option<u32>, gid: Option<u32>) {
    if let Some(u) = uid {
        m.uid = u;
    }
    if let Some(g) = gid {
        m.gid = g;
    }
    if m.mode & 0o170000 != S_IFDIR {
        m.mode &= !0o4000;
        if m.mode & 0o2010 == 0o2010 {
            m.mode &= !0o2000;
        }
    }
}

fn shown(real: Attrs) -> Attrs {
    Attrs {
        uid: if real.uid == USER.host_uid { 0 } else { real.uid },
        gid: if real.gid == USER.host_gid { 0 } else { real.gid },
        ..real
    }
}

fuzz_target!(|input: Input| {
    if input.files.is_empty() {
        return;
    }
    let table = InodeTable::new(USER);
    let make = |(kind, mode, uid, gid): (u8, u16, u32, u32)| Attrs {
        mode: TYPES[kind as usize % TYPES.len()] | (u32::from(mode) & 0o7777),
        uid,
        gid,
        rdev_major: 0,
        rdev_minor: 0,
    };
    let mut real: Vec<Attrs> = input.files.iter().copied().map(make).collect();
    // What real root would see: starts as the unrecorded view.
    let mut model: HashMap<usize, Attrs> = real.iter().enumerate().map(|(i, r)| (i, shown(*r))).collect();
    for op in input.ops {
        match op {
            Op::Chown { file, uid, gid } => {
                let i = file as usize % real.len();
                let key = InodeKey { dev: 1, ino: i as u64 };
                let got = table.chown(key, real[i], uid, gid, &Creds::root()).unwrap();
                let m = model.get_mut(&i).unwrap();
                model_chown(m, uid, gid);
                assert_eq!(got, *m);
            }
            Op::Chmod { file, mode } => {
                let i = file as usize % real.len();
                let key = InodeKey { dev: 1, ino: i as u64 };
                let got = table.chmod(key, real[i], mode, &Creds::root()).unwrap();
                let m = model.get_mut(&i).unwrap();
                m.mode = (m.mode & 0o170000) | (mode & 0o7777);
                assert_eq!(got, *m);
            }
            Op::Replace { file, kind, mode, uid, gid } => {
                let i = file as usize % real.len();
                let new = make((kind, mode, uid, gid));
                if new.mode & 0o170000 != real[i].mode & 0o170000 {
                    // A different file: nothing recorded may apply to it.
                    real[i] = new;
                    model.insert(i, shown(new));
                }
            }
        }
        for (i, r) in real.iter().enumerate() {
            assert_eq!(table.view(InodeKey { dev: 1, ino: i as u64 }, *r), model[&i], "file {i}");
        }
    }
});
