//! Tar headers as POSIX.1-2001 (pax) writes them: a ustar header per member,
//! preceded by an extended header (`x`) when a field does not fit ustar or
//! the member has extended attributes (`SCHILY.xattr.NAME`, the records
//! GNU tar, bsdtar and Python's tarfile all read).
//!
//! Only encoding lives here; which members an image has, and their fake
//! metadata, is the exporter's business.

/// One tar block; headers and padded data come in these.
pub const BLOCK: usize = 512;

/// A member's type, as the ustar `typeflag` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Regular,
    /// A second name of a file already in the archive (`linkname`).
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Directory,
    Fifo,
}

impl Kind {
    fn flag(self) -> u8 {
        match self {
            Kind::Regular => b'0',
            Kind::HardLink => b'1',
            Kind::Symlink => b'2',
            Kind::CharDevice => b'3',
            Kind::BlockDevice => b'4',
            Kind::Directory => b'5',
            Kind::Fifo => b'6',
        }
    }
}

/// What the header of one member says. `path` is relative, without a
/// leading `./` or `/`; directories get their trailing `/` here.
#[derive(Clone, Debug, Default)]
pub struct Member {
    pub path: Vec<u8>,
    pub kind: Option<Kind>,
    /// Permission bits, set-id and sticky bits (no type bits).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub size: u64,
    pub mtime: i64,
    pub link: Vec<u8>,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// Extended attributes by full name (`security.capability`, ...).
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The largest value of an octal field `width` bytes wide (with its NUL).
fn octal_max(width: usize) -> u64 {
    (1u64 << (3 * (width - 1))) - 1
}

fn put_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

fn put_bytes(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// One pax record, `"LEN KEY=VALUE\n"`, where LEN counts the whole record
/// including its own digits.
pub fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

/// The ustar header block of `m` under `name`, with its checksum.
fn ustar(m: &Member, name: &[u8], flag: u8, size: u64) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let clamp = |v: u64, width: usize| v.min(octal_max(width));
    put_bytes(&mut h[0..100], name);
    put_octal(&mut h[100..108], u64::from(m.mode & 0o7777));
    put_octal(&mut h[108..116], clamp(u64::from(m.uid), 8));
    put_octal(&mut h[116..124], clamp(u64::from(m.gid), 8));
    put_octal(&mut h[124..136], clamp(size, 12));
    put_octal(&mut h[136..148], clamp(m.mtime.max(0) as u64, 12));
    h[156] = flag;
    put_bytes(&mut h[157..257], &m.link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    put_bytes(&mut h[265..297], &m.uname);
    put_bytes(&mut h[297..329], &m.gname);
    put_octal(&mut h[329..337], clamp(u64::from(m.dev_major), 8));
    put_octal(&mut h[337..345], clamp(u64::from(m.dev_minor), 8));
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    put_octal(&mut h[148..155], sum);
    h[155] = b' ';
    h
}

/// The bytes of `data` padded to whole blocks.
fn padded(mut data: Vec<u8>) -> Vec<u8> {
    data.resize(data.len().div_ceil(BLOCK) * BLOCK, 0);
    data
}

/// The header blocks of `m`: an extended header when needed, then the
/// ustar header. The member's data (for regular files, `m.size` bytes)
/// follows, padded with [`padding`].
pub fn header(m: &Member) -> Vec<u8> {
    let kind = m.kind.unwrap_or(Kind::Regular);
    let mut path = m.path.clone();
    if kind == Kind::Directory && !path.ends_with(b"/") {
        path.push(b'/');
    }
    let size = if kind == Kind::Regular { m.size } else { 0 };
    let mut pax = Vec::new();
    if path.len() > 100 || !path.is_ascii() {
        pax.extend(pax_record(b"path", &path));
    }
    if m.link.len() > 100 || !m.link.is_ascii() {
        pax.extend(pax_record(b"linkpath", &m.link));
    }
    for (key, v, width) in
        [(&b"uid"[..], u64::from(m.uid), 8), (b"gid", u64::from(m.gid), 8), (b"size", size, 12)]
    {
        if v > octal_max(width) {
            pax.extend(pax_record(key, v.to_string().as_bytes()));
        }
    }
    for (key, v) in [(&b"uname"[..], &m.uname), (b"gname", &m.gname)] {
        if v.len() > 32 || !v.is_ascii() {
            pax.extend(pax_record(key, v));
        }
    }
    if u64::from(m.dev_major) > octal_max(8) || u64::from(m.dev_minor) > octal_max(8) {
        // No pax keyword carries device numbers; GNU tar and bsdtar agree
        // on these.
        pax.extend(pax_record(b"SCHILY.devmajor", m.dev_major.to_string().as_bytes()));
        pax.extend(pax_record(b"SCHILY.devminor", m.dev_minor.to_string().as_bytes()));
    }
    for (name, value) in &m.xattrs {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(name);
        pax.extend(pax_record(&key, value));
    }
    let mut out = Vec::with_capacity(BLOCK * 2);
    if !pax.is_empty() {
        let ext = Member { mode: 0o644, ..Member::default() };
        let mut ext_name = b"PaxHeaders/".to_vec();
        let base = path.rsplit(|&b| b == b'/').find(|s| !s.is_empty()).unwrap_or(b"member");
        ext_name.extend(base.iter().copied().filter(u8::is_ascii).take(80));
        let size = pax.len() as u64;
        out.extend_from_slice(&ustar(&ext, &ext_name, b'x', size));
        out.extend(padded(pax));
    }
    // A path that did not fit is in the extended header; ustar keeps its
    // first 100 bytes for readers without pax.
    out.extend_from_slice(&ustar(m, &path, kind.flag(), size));
    out
}

/// The zero bytes that complete a member's data of `size` bytes to a block.
pub fn padding(size: u64) -> usize {
    (BLOCK - (size % BLOCK as u64) as usize) % BLOCK
}

/// The end of an archive: two zero blocks.
pub const END: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pax_record_counts_its_own_length() {
        assert_eq!(pax_record(b"uid", b"70000"), b"13 uid=70000\n");
        // 98 bytes besides the length: two digits would make 100, which
        // has three, so the record is 101 bytes long.
        assert_eq!(pax_record(b"k", &[b'v'; 93]).len(), 99);
        let r = pax_record(b"k", &[b'v'; 94]);
        assert_eq!(r.len(), 101);
        assert!(r.starts_with(b"101 k="));
    }

    #[test]
    fn a_plain_member_is_one_ustar_block_with_a_valid_checksum() {
        let m = Member {
            path: b"etc/passwd".to_vec(),
            kind: Some(Kind::Regular),
            mode: 0o644,
            size: 5,
            ..Member::default()
        };
        let h = header(&m);
        assert_eq!(h.len(), BLOCK);
        assert_eq!(&h[257..263], b"ustar\0");
        let stored = u64::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let mut blank = h.clone();
        blank[148..156].fill(b' ');
        assert_eq!(stored, blank.iter().map(|&b| u64::from(b)).sum::<u64>());
        assert_eq!(padding(5), BLOCK - 5);
        assert_eq!(padding(512), 0);
    }

    #[test]
    fn large_ids_long_paths_and_xattrs_go_to_an_extended_header() {
        let m = Member {
            path: [b'a'; 150].to_vec(),
            kind: Some(Kind::Directory),
            mode: 0o755,
            uid: 100_000_000,
            xattrs: vec![(b"security.capability".to_vec(), vec![1, 0, 0, 2])],
            ..Member::default()
        };
        let h = header(&m);
        assert_eq!(h[156], b'x');
        let text = &h[BLOCK..];
        let has = |needle: &[u8]| text.windows(needle.len()).any(|w| w == needle);
        assert!(has(b" uid=100000000\n"));
        assert!(has(b"SCHILY.xattr.security.capability=\x01\0\0\x02\n"));
        let mut path = [b'a'; 150].to_vec();
        path.push(b'/');
        assert!(has(&[b" path=".as_slice(), &path, b"\n"].concat()));
        assert_eq!(h[h.len() - BLOCK + 156], b'5');
    }
}
