//! The ownership other rootless tools leave in `user.*` xattrs, so that a
//! tree they unpacked shows the owners they meant:
//!
//! - `user.rootlesscontainers` (umoci `--rootless`, the rootless-containers
//!   proto): a protobuf `Resource { uint32 uid = 1; uint32 gid = 2; }`,
//!   where a missing field is 0 and `0xFFFFFFFF` (`NoopID`) leaves the
//!   file's own id;
//! - `user.containers.override_stat` (containers/storage, fuse-overlayfs):
//!   `UID:GID:MODE[:TYPE]`, MODE in octal, TYPE one of `file`, `dir`,
//!   `symlink`, `pipe`, `socket`, `block-MAJOR-MINOR`, `char-MAJOR-MINOR`.

pub const ROOTLESSCONTAINERS: &[u8] = b"user.rootlesscontainers";
pub const OVERRIDE_STAT: &[u8] = b"user.containers.override_stat";

/// `NoopID`: this id is not mapped by the xattr.
const NOOP: u32 = u32::MAX;

/// The owner a `user.rootlesscontainers` value gives; `None` keeps the
/// file's own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Reads a protobuf varint at `*at`.
fn varint(bytes: &[u8], at: &mut usize) -> Result<u64, &'static str> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let b = *bytes.get(*at).ok_or("a varint runs past the end")?;
        *at += 1;
        if shift == 63 && b > 1 {
            return Err("a varint is longer than 64 bits");
        }
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("a varint is longer than 10 bytes")
}

/// Decodes a `user.rootlesscontainers` value. Unknown fields are skipped,
/// as protobuf readers do; a uint32 keeps the low 32 bits of its varint.
pub fn rootlesscontainers(value: &[u8]) -> Result<Owner, &'static str> {
    let (mut uid, mut gid) = (0u32, 0u32);
    let mut at = 0;
    while at < value.len() {
        let key = varint(value, &mut at)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let v = varint(value, &mut at)? as u32;
                match field {
                    1 => uid = v,
                    2 => gid = v,
                    _ => {}
                }
            }
            1 => {
                at = at
                    .checked_add(8)
                    .filter(|&a| a <= value.len())
                    .ok_or("a field runs past the end")?
            }
            5 => {
                at = at
                    .checked_add(4)
                    .filter(|&a| a <= value.len())
                    .ok_or("a field runs past the end")?
            }
            2 => {
                let len = varint(value, &mut at)?;
                at = usize::try_from(len)
                    .ok()
                    .and_then(|l| at.checked_add(l))
                    .filter(|&a| a <= value.len())
                    .ok_or("a field runs past the end")?;
            }
            _ => return Err("a field of a wire type protobuf does not have"),
        }
    }
    let id = |v: u32| (v != NOOP).then_some(v);
    Ok(Owner { uid: id(uid), gid: id(gid) })
}

/// The type an `override_stat` value gives a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    File,
    Dir,
    Symlink,
    Pipe,
    Socket,
    Block(u32, u32),
    Char(u32, u32),
}

/// A `user.containers.override_stat` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverrideStat {
    pub uid: u32,
    pub gid: u32,
    /// Permission, set-id and sticky bits.
    pub perms: u32,
    /// The type, when the value says one (or MODE carries type bits).
    pub kind: Option<Type>,
}

/// Decodes a `user.containers.override_stat` value.
pub fn override_stat(value: &[u8]) -> Result<OverrideStat, &'static str> {
    let text = std::str::from_utf8(value).map_err(|_| "it is not text")?;
    let text = text.trim_end_matches(['\0', '\n']);
    let mut fields = text.split(':');
    let mut num = |radix: u32, what: &'static str| -> Result<u32, &'static str> {
        let f = fields.next().ok_or(what)?;
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(what);
        }
        u32::from_str_radix(f, radix).map_err(|_| what)
    };
    let uid = num(10, "its uid is not a number")?;
    let gid = num(10, "its gid is not a number")?;
    let mode = num(8, "its mode is not an octal number")?;
    let dev = |s: &str| -> Result<(u32, u32), &'static str> {
        let (ma, mi) = s.split_once('-').ok_or("a device type without MAJOR-MINOR")?;
        let n = |x: &str| x.parse::<u32>().map_err(|_| "a device number is not a number");
        Ok((n(ma)?, n(mi)?))
    };
    let kind = match fields.next() {
        None => match mode & 0o170000 {
            0 => None,
            0o100000 => Some(Type::File),
            0o040000 => Some(Type::Dir),
            0o120000 => Some(Type::Symlink),
            0o010000 => Some(Type::Pipe),
            0o140000 => Some(Type::Socket),
            _ => return Err("its mode has type bits of a device, without its numbers"),
        },
        Some("file") => Some(Type::File),
        Some("dir") => Some(Type::Dir),
        Some("symlink") => Some(Type::Symlink),
        Some("pipe") => Some(Type::Pipe),
        Some("socket") => Some(Type::Socket),
        Some(t) => match (t.strip_prefix("block-"), t.strip_prefix("char-")) {
            (Some(d), _) => Some(dev(d).map(|(a, b)| Type::Block(a, b))?),
            (_, Some(d)) => Some(dev(d).map(|(a, b)| Type::Char(a, b))?),
            _ => {
                return Err(
                    "its type is none of file, dir, symlink, pipe, socket, block-M-m, char-M-m",
                )
            }
        },
    };
    if fields.next().is_some() {
        return Err("it has more than four fields");
    }
    Ok(OverrideStat { uid, gid, perms: mode & 0o7777, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootlesscontainers_values_decode_as_the_proto_says() {
        // uid 1234, gid 50 (umoci writes both fields when either is set).
        assert_eq!(
            rootlesscontainers(&[0x08, 0xd2, 0x09, 0x10, 0x32]),
            Ok(Owner { uid: Some(1234), gid: Some(50) })
        );
        // A missing field is 0; NoopID keeps the file's id.
        assert_eq!(rootlesscontainers(&[0x10, 5]), Ok(Owner { uid: Some(0), gid: Some(5) }));
        assert_eq!(
            rootlesscontainers(&[0x08, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Ok(Owner { uid: None, gid: Some(0) })
        );
        assert_eq!(rootlesscontainers(&[]), Ok(Owner { uid: Some(0), gid: Some(0) }));
        // Unknown fields of every wire type are skipped.
        assert_eq!(
            rootlesscontainers(&[
                0x1a, 2, 9, 9, 0x21, 0, 0, 0, 0, 0, 0, 0, 0, 0x2d, 1, 2, 3, 4, 0x08, 7
            ]),
            Ok(Owner { uid: Some(7), gid: Some(0) })
        );
        assert!(rootlesscontainers(&[0x08]).is_err());
        assert!(rootlesscontainers(&[0x1a, 5, 1]).is_err());
        assert!(rootlesscontainers(&[0x0b]).is_err());
        assert!(rootlesscontainers(&[
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
        ])
        .is_err());
    }

    #[test]
    fn override_stat_values_decode_as_containers_storage_writes_them() {
        assert_eq!(
            override_stat(b"0:0:0755:dir"),
            Ok(OverrideStat { uid: 0, gid: 0, perms: 0o755, kind: Some(Type::Dir) })
        );
        assert_eq!(
            override_stat(b"1234:50:4755"),
            Ok(OverrideStat { uid: 1234, gid: 50, perms: 0o4755, kind: None })
        );
        assert_eq!(override_stat(b"0:5:0620:char-4-1").unwrap().kind, Some(Type::Char(4, 1)));
        assert_eq!(override_stat(b"0:0:100644").unwrap().kind, Some(Type::File));
        for bad in [
            &b"x:0:0755"[..],
            b"0:0",
            b"0:0:0899",
            b"0:0:0644:door",
            b"0:0:0644:file:x",
            b"0:0:060644",
        ] {
            assert!(override_stat(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
