//! Tar headers as POSIX.1-2001 (pax) writes them: a ustar header per member,
//! preceded by an extended header (`x`) when a field does not fit ustar or
//! the member has extended attributes (`SCHILY.xattr.NAME`, the records
//! GNU tar, bsdtar and Python's tarfile all read).
//!
//! Encoding and decoding live here; which members an image has, their
//! fake metadata and where they go on disk are the launcher's business.

use std::io::Read;

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
    /// Seconds since the epoch (negative before it), and nanoseconds.
    pub mtime: i64,
    pub mtime_nsec: u32,
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

/// A pax time, `SECONDS[.FRACTION]`: the exact value, so a time before
/// the epoch with a fraction is `-(|sec| - 1).(1e9 - nsec)`, as GNU tar
/// writes it (`code_timespec()`).
fn pax_time(sec: i64, nsec: u32) -> Vec<u8> {
    let (neg, whole, frac) = match (sec < 0, nsec) {
        (false, n) => (false, sec.unsigned_abs(), n),
        (true, 0) => (true, sec.unsigned_abs(), 0),
        (true, n) => (true, sec.unsigned_abs() - 1, 1_000_000_000 - n),
    };
    let mut text = format!("{}{whole}", if neg { "-" } else { "" });
    if frac != 0 {
        let digits = format!("{frac:09}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    text.into_bytes()
}

/// Reads a pax time (see [`pax_time`]); digits past nanoseconds are cut.
fn parse_pax_time(value: &[u8]) -> Option<(i64, u32)> {
    let (neg, rest) = match value.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (whole, frac) = match rest.iter().position(|&b| b == b'.') {
        Some(dot) => (&rest[..dot], &rest[dot + 1..]),
        None => (rest, &b""[..]),
    };
    let digits = |d: &[u8]| !d.is_empty() && d.iter().all(u8::is_ascii_digit);
    if !digits(whole) || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let whole: i64 = std::str::from_utf8(whole).ok()?.parse().ok()?;
    let mut nsec = 0u32;
    for i in 0..9 {
        nsec = nsec * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    match (neg, nsec) {
        (false, n) => Some((whole, n)),
        (true, 0) => Some((-whole, 0)),
        (true, n) => Some((whole.checked_neg()?.checked_sub(1)?, 1_000_000_000 - n)),
    }
}

/// The pax key of an xattr name: GNU tar writes `%` and `=` (which would
/// end the key) as `%25` and `%3D` (`xattr_encode_keyword()`).
fn xattr_key(name: &[u8]) -> Vec<u8> {
    let mut key = b"SCHILY.xattr.".to_vec();
    for &b in name {
        match b {
            b'%' => key.extend_from_slice(b"%25"),
            b'=' => key.extend_from_slice(b"%3D"),
            b => key.push(b),
        }
    }
    key
}

/// The xattr name of a `SCHILY.xattr.` key, as GNU tar's
/// `xattr_decode_keyword()` decodes it: only `%25` and `%3D`.
fn xattr_name(encoded: &[u8]) -> Vec<u8> {
    let mut name = Vec::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' && tail.starts_with(b"3D") {
            name.push(b'=');
            rest = &tail[2..];
        } else if b == b'%' && tail.starts_with(b"25") {
            name.push(b'%');
            rest = &tail[2..];
        } else {
            name.push(b);
            rest = tail;
        }
    }
    name
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
    if m.mtime < 0 || m.mtime as u64 > octal_max(12) || m.mtime_nsec != 0 {
        pax.extend(pax_record(b"mtime", &pax_time(m.mtime, m.mtime_nsec)));
    }
    if u64::from(m.dev_major) > octal_max(8) || u64::from(m.dev_minor) > octal_max(8) {
        // No pax keyword carries device numbers; GNU tar and bsdtar agree
        // on these.
        pax.extend(pax_record(b"SCHILY.devmajor", m.dev_major.to_string().as_bytes()));
        pax.extend(pax_record(b"SCHILY.devminor", m.dev_minor.to_string().as_bytes()));
    }
    for (name, value) in &m.xattrs {
        pax.extend(pax_record(&xattr_key(name), value));
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

/// Why an archive cannot be read; `offset` is where its header starts.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The archive ends inside a member or its header.
    Truncated { offset: u64 },
    /// A header's checksum does not match: not a tar archive, or damaged.
    Checksum { offset: u64 },
    /// A numeric field that is neither octal nor base-256, or whose
    /// value does not fit (an id over 32 bits, a size past the end of any
    /// archive); `field` names the header field or pax record.
    Number { offset: u64, member: Vec<u8>, field: &'static str },
    /// A pax record that does not parse.
    Pax { offset: u64 },
    /// A member fr does not unpack (GNU sparse files, volume labels).
    Unsupported { offset: u64, member: Vec<u8>, what: String },
    /// Reading the archive, or writing a member's data, failed.
    Io(IoError),
}

/// An I/O error inside a [`ReadError`], equal to another of the same kind
/// (so that tests can compare errors).
#[derive(Debug)]
pub struct IoError(pub std::io::Error);

impl PartialEq for IoError {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind() == other.0.kind()
    }
}

impl Eq for IoError {}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io(e) => Some(&e.0),
            _ => None,
        }
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Truncated { offset } => {
                write!(f, "the archive ends in the middle of the member at byte {offset}")
            }
            ReadError::Checksum { offset } => {
                write!(f, "the header at byte {offset} is damaged (bad checksum), or this is not a tar archive")
            }
            ReadError::Number { offset, member, field } => write!(
                f,
                "member `{}` (header at byte {offset}): its {field} field is not a number that fits",
                member.escape_ascii()
            ),
            ReadError::Pax { offset } => {
                write!(f, "the extended header at byte {offset} is damaged")
            }
            ReadError::Unsupported { offset, member, what } => write!(
                f,
                "member `{}` (header at byte {offset}) is {what}, which fr does not unpack",
                member.escape_ascii()
            ),
            ReadError::Io(e) => write!(f, "{}", e.0),
        }
    }
}

/// A member as read, with how many bytes of data follow its header.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    pub member: Member,
    /// Bytes of data in the archive (the member's contents, if regular).
    pub data: u64,
    /// Pax records fr read but does not apply (`SCHILY.acl.access`, ...).
    pub ignored: Vec<String>,
}

/// Reads members one by one: [`Reader::next`] gives a header, then the
/// caller reads exactly its data with [`Reader::data`] (or leaves it, and
/// the next call skips it).
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    offset: u64,
    /// Data bytes of the last member, not read yet (its padding follows).
    pending: u64,
    /// Global pax records (`g`), which apply to every later member.
    global: Vec<(Vec<u8>, Vec<u8>)>,
}

fn parse_number(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        // Base-256, big-endian, first byte's top bit the marker.
        if field[0] & 0x40 != 0 {
            return None; // negative
        }
        let mut v: u64 = u64::from(field[0] & 0x3f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let text: Vec<u8> =
        field.iter().copied().take_while(|&b| b != 0).filter(|&b| b != b' ').collect();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(std::str::from_utf8(&text).ok()?, 8).ok()
}

/// A numeric field that may be negative (times): GNU tar writes a
/// negative value in base-256 as the two's complement of the whole field.
fn parse_signed(field: &[u8]) -> Option<i64> {
    if field.first().is_some_and(|b| b & 0xc0 == 0xc0) && field.len() <= 15 {
        let mut v: i128 = 0;
        for &b in field {
            v = (v << 8) | i128::from(b);
        }
        return i64::try_from(v - (1i128 << (8 * field.len()))).ok();
    }
    i64::try_from(parse_number(field)?).ok()
}

fn cstr(field: &[u8]) -> Vec<u8> {
    field.iter().copied().take_while(|&b| b != 0).collect()
}

/// Parses the records of a pax extended header.
fn parse_pax(mut data: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut records = Vec::new();
    while !data.is_empty() {
        if data.iter().all(|&b| b == 0) {
            break;
        }
        let space = data.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&data[..space]).ok()?.parse().ok()?;
        if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
            return None;
        }
        let record = &data[space + 1..len - 1];
        let eq = record.iter().position(|&b| b == b'=')?;
        records.push((record[..eq].to_vec(), record[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Some(records)
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader { inner, offset: 0, pending: 0, global: Vec::new() }
    }

    /// The reader underneath, positioned after what was read (the end of
    /// archive blocks, or wherever reading stopped).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Fills `buf`; false at a clean end of input before its first byte.
    fn fill(&mut self, buf: &mut [u8]) -> Result<bool, ReadError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => return Err(ReadError::Truncated { offset: self.offset }),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(IoError(e))),
            }
        }
        self.offset += buf.len() as u64;
        Ok(true)
    }

    fn skip(&mut self, mut n: u64) -> Result<(), ReadError> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let chunk = n.min(buf.len() as u64) as usize;
            if !self.fill(&mut buf[..chunk])? {
                return Err(ReadError::Truncated { offset: self.offset });
            }
            n -= chunk as u64;
        }
        Ok(())
    }

    /// A member's data of `size` bytes, read whole (extended headers).
    fn read_blob(&mut self, size: u64, at: u64) -> Result<Vec<u8>, ReadError> {
        if size > 64 << 20 {
            return Err(ReadError::Pax { offset: at });
        }
        let mut data = vec![0u8; size as usize];
        if !self.fill(&mut data)? && size > 0 {
            return Err(ReadError::Truncated { offset: at });
        }
        self.skip(padding(size) as u64)?;
        Ok(data)
    }

    /// Copies the current member's data (`Entry::data` bytes) to `out`.
    pub fn data(&mut self, out: &mut dyn std::io::Write) -> Result<(), ReadError> {
        let data = std::mem::take(&mut self.pending);
        let mut left = data;
        let mut buf = vec![0u8; 64 << 10];
        while left > 0 {
            let chunk = left.min(buf.len() as u64) as usize;
            if !self.fill(&mut buf[..chunk])? {
                return Err(ReadError::Truncated { offset: self.offset });
            }
            out.write_all(&buf[..chunk]).map_err(|e| ReadError::Io(IoError(e)))?;
            left -= chunk as u64;
        }
        self.skip(padding(data) as u64)
    }

    /// Skips the current member's data and padding (what [`Self::data`]
    /// would have copied).
    pub fn skip_data(&mut self) -> Result<(), ReadError> {
        let pending = std::mem::take(&mut self.pending);
        // A size is checked when its header is read; an archive cannot
        // hold more than u64::MAX bytes either way.
        let whole = pending
            .checked_add(padding(pending) as u64)
            .ok_or(ReadError::Truncated { offset: self.offset })?;
        self.skip(whole)
    }

    /// The next member, or `None` at the end of the archive.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, ReadError> {
        self.skip_data()?;
        let mut local: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut long_name = None;
        let mut long_link = None;
        loop {
            let at = self.offset;
            let mut h = [0u8; BLOCK];
            if !self.fill(&mut h)? {
                return Ok(None); // no end blocks: as GNU tar, accept it
            }
            if h.iter().all(|&b| b == 0) {
                return Ok(None);
            }
            let stored = parse_number(&h[148..156]).ok_or(ReadError::Checksum { offset: at })?;
            let mut blank = h;
            blank[148..156].fill(b' ');
            let unsigned: u64 = blank.iter().map(|&b| u64::from(b)).sum();
            let signed: i64 = blank.iter().map(|&b| i64::from(b as i8)).sum();
            if stored != unsigned && stored as i64 != signed {
                return Err(ReadError::Checksum { offset: at });
            }
            let flag = h[156];
            if matches!(flag, b'x' | b'g' | b'L' | b'K') {
                let size = parse_number(&h[124..136]).ok_or(ReadError::Number {
                    offset: at,
                    member: cstr(&h[0..100]),
                    field: "size",
                })?;
                let mut blob = self.read_blob(size, at)?;
                match flag {
                    b'x' | b'g' => {
                        let records = parse_pax(&blob).ok_or(ReadError::Pax { offset: at })?;
                        if flag == b'g' {
                            self.global.extend(records);
                        } else {
                            local.extend(records);
                        }
                    }
                    _ => {
                        blob.truncate(blob.iter().position(|&b| b == 0).unwrap_or(blob.len()));
                        if flag == b'L' {
                            long_name = Some(blob);
                        } else {
                            long_link = Some(blob);
                        }
                    }
                }
                continue;
            }
            // The name first: every later error names the member.
            let mut path = cstr(&h[0..100]);
            // Only POSIX ustar has a prefix; old GNU headers (`ustar  \0`)
            // keep times and a sparse map in those bytes.
            if h[257..263] == *b"ustar\0" && h[345] != 0 && long_name.is_none() {
                let mut full = cstr(&h[345..500]);
                full.push(b'/');
                full.extend_from_slice(&path);
                path = full;
            }
            let mut path = long_name.take().unwrap_or(path);
            let mut sparse_name = None;
            for (key, value) in self.global.iter().chain(&local) {
                match key.as_slice() {
                    b"path" => path = value.clone(),
                    b"GNU.sparse.name" => sparse_name = Some(value.clone()),
                    _ => {}
                }
            }
            let sparse =
                self.global.iter().chain(&local).any(|(k, _)| k.starts_with(b"GNU.sparse."));
            let unsupported = |what: &str| ReadError::Unsupported {
                offset: at,
                member: sparse_name.clone().unwrap_or_else(|| path.clone()),
                what: what.to_string(),
            };
            let mut kind = match flag {
                b'0' | 0 | b'7' => Kind::Regular,
                b'1' => Kind::HardLink,
                b'2' => Kind::Symlink,
                b'3' => Kind::CharDevice,
                b'4' => Kind::BlockDevice,
                b'5' => Kind::Directory,
                b'6' => Kind::Fifo,
                b'S' => return Err(unsupported("a GNU sparse file (type 'S')")),
                b'V' => return Err(unsupported("a volume label (type 'V')")),
                b'M' => {
                    return Err(unsupported("the rest of a file from another volume (type 'M')"))
                }
                _ => return Err(unsupported(&format!("of type '{}'", flag.escape_ascii()))),
            };
            // pax 1.0 sparse files: a sparse map, then the data, under a
            // made-up name; unpacked as they are they would be wrong.
            if sparse {
                return Err(unsupported("a GNU sparse file (GNU.sparse.* records)"));
            }
            let bad =
                |field: &'static str| ReadError::Number { offset: at, member: path.clone(), field };
            let number = |range: std::ops::Range<usize>, field| {
                parse_number(&h[range]).ok_or_else(|| bad(field))
            };
            let id = |range: std::ops::Range<usize>, field| {
                number(range, field).and_then(|v| u32::try_from(v).map_err(|_| bad(field)))
            };
            let mut m = Member {
                path: path.clone(),
                kind: Some(kind),
                mode: number(100..108, "mode")? as u32 & 0o7777,
                uid: id(108..116, "uid")?,
                gid: id(116..124, "gid")?,
                uname: cstr(&h[265..297]),
                gname: cstr(&h[297..329]),
                size: number(124..136, "size")?,
                mtime: parse_signed(&h[136..148]).ok_or_else(|| bad("mtime"))?,
                mtime_nsec: 0,
                link: long_link.take().unwrap_or_else(|| cstr(&h[157..257])),
                dev_major: id(329..337, "devmajor")?,
                dev_minor: id(337..345, "devminor")?,
                xattrs: Vec::new(),
            };
            let mut ignored = Vec::new();
            let num = |v: &[u8], field| -> Result<u64, ReadError> {
                std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).ok_or_else(|| bad(field))
            };
            let id = |v: &[u8], field| {
                num(v, field).and_then(|v| u32::try_from(v).map_err(|_| bad(field)))
            };
            for (key, value) in self.global.iter().chain(&local) {
                match key.as_slice() {
                    b"path" => m.path = value.clone(),
                    b"linkpath" => m.link = value.clone(),
                    b"uid" => m.uid = id(value, "pax uid")?,
                    b"gid" => m.gid = id(value, "pax gid")?,
                    b"size" => m.size = num(value, "pax size")?,
                    b"uname" => m.uname = value.clone(),
                    b"gname" => m.gname = value.clone(),
                    b"mtime" => {
                        (m.mtime, m.mtime_nsec) =
                            parse_pax_time(value).ok_or_else(|| bad("pax mtime"))?;
                    }
                    b"SCHILY.devmajor" => m.dev_major = id(value, "SCHILY.devmajor")?,
                    b"SCHILY.devminor" => m.dev_minor = id(value, "SCHILY.devminor")?,
                    k if k.starts_with(b"SCHILY.xattr.") => {
                        let name = xattr_name(&k[b"SCHILY.xattr.".len()..]);
                        m.xattrs.retain(|(n, _)| *n != name);
                        m.xattrs.push((name, value.clone()));
                    }
                    // bsdtar repeats each xattr here; the SCHILY copy is used.
                    k if k.starts_with(b"LIBARCHIVE.xattr.") => {}
                    b"atime" | b"ctime" | b"comment" | b"charset" | b"hdrcharset" => {}
                    k => ignored.push(String::from_utf8_lossy(k).into_owned()),
                }
            }
            // Old tars had no directory type: a regular member whose name
            // ends in `/` is a directory (GNU tar's `extract_archive()`,
            // "BSD tar uses the convention that a slash suffix means a
            // directory").
            if kind == Kind::Regular && m.path.ends_with(b"/") {
                kind = Kind::Directory;
                m.kind = Some(kind);
            }
            // Data is skipped as size plus padding; no archive is that long.
            if kind == Kind::Regular && m.size > u64::MAX - BLOCK as u64 {
                return Err(bad("size"));
            }
            // Only regular members have data blocks (pax: none for links
            // and directories; devices and fifos have none either, as
            // GNU tar and Python's tarfile read them).
            if kind != Kind::Regular {
                m.size = 0;
            }
            let data = m.size;
            self.pending = data;
            return Ok(Some(Entry { member: m, data, ignored }));
        }
    }
}

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

    fn archive(members: &[(Member, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (m, data) in members {
            out.extend(header(m));
            out.extend_from_slice(data);
            out.extend(std::iter::repeat_n(0, padding(data.len() as u64)));
        }
        out.extend_from_slice(&END);
        out
    }

    #[test]
    fn what_is_written_reads_back() {
        let long = [b'd'; 180].to_vec();
        let file = Member {
            path: b"./a/file".to_vec(),
            kind: Some(Kind::Regular),
            mode: 0o4755,
            uid: 70_000,
            gid: 5,
            size: 3,
            xattrs: vec![(b"security.capability".to_vec(), vec![0, 1, 0xff])],
            ..Member::default()
        };
        let dev = Member {
            path: long.clone(),
            kind: Some(Kind::CharDevice),
            mode: 0o600,
            dev_major: 250,
            dev_minor: 300_000,
            uid: 3_000_000_000,
            ..Member::default()
        };
        let bytes = archive(&[(file.clone(), b"abc"), (dev, b"")]);
        let mut r = Reader::new(bytes.as_slice());
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.member.path, b"./a/file");
        assert_eq!((e.member.mode, e.member.uid, e.member.gid, e.data), (0o4755, 70_000, 5, 3));
        assert_eq!(e.member.xattrs, file.xattrs);
        let mut data = Vec::new();
        r.data(&mut data).unwrap();
        assert_eq!(data, b"abc");
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.member.path, long);
        assert_eq!(e.member.kind, Some(Kind::CharDevice));
        assert_eq!((e.member.dev_major, e.member.dev_minor), (250, 300_000));
        assert_eq!(e.member.uid, 3_000_000_000);
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn damaged_archives_are_errors_not_panics() {
        let m = Member { path: b"f".to_vec(), size: 600, ..Member::default() };
        let bytes = archive(&[(m, &[7u8; 600])]);
        let mut bad = bytes.clone();
        bad[10] ^= 1;
        assert_eq!(
            Reader::new(bad.as_slice()).next_entry().unwrap_err(),
            ReadError::Checksum { offset: 0 }
        );
        let cut = &bytes[..BLOCK + 100];
        let mut r = Reader::new(cut);
        r.next_entry().unwrap().unwrap();
        assert!(matches!(r.data(&mut Vec::new()), Err(ReadError::Truncated { .. })));
        assert!(Reader::new(&b"not a tar archive at all"[..]).next_entry().is_err());
        // Every prefix and every single-byte change fails cleanly or reads.
        for cut in (0..bytes.len()).step_by(97) {
            let mut r = Reader::new(&bytes[..cut]);
            while let Ok(Some(_)) = r.next_entry() {
                if r.data(&mut Vec::new()).is_err() {
                    break;
                }
            }
        }
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
    /// Sets a header's checksum after a test changed its bytes.
    fn seal(h: &mut [u8]) {
        h[148..156].fill(b' ');
        let sum: u64 = h[..BLOCK].iter().map(|&b| u64::from(b)).sum();
        put_octal(&mut h[148..155], sum);
        h[155] = b' ';
    }

    /// An extended header (`x`) holding `records`.
    fn pax(records: &[(&[u8], &[u8])]) -> Vec<u8> {
        let body: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        let mut out = ustar(&Member::default(), b"PaxHeaders/x", b'x', body.len() as u64).to_vec();
        out.extend(padded(body));
        out
    }

    fn regular(name: &[u8]) -> Vec<u8> {
        header(&Member { path: name.to_vec(), mode: 0o644, ..Member::default() })
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Entry>, ReadError> {
        let mut r = Reader::new(bytes);
        let mut out = Vec::new();
        while let Some(e) = r.next_entry()? {
            out.push(e);
        }
        Ok(out)
    }

    #[test]
    fn a_size_no_archive_can_hold_is_an_error_not_an_overflow() {
        // The data of "." is never read: the next header skips it.
        let mut bytes = pax(&[(b"size", b"18446744073709551615")]);
        bytes.extend(regular(b"."));
        bytes.extend(regular(b"after"));
        bytes.extend_from_slice(&END);
        assert_eq!(
            read_all(&bytes).unwrap_err(),
            ReadError::Number { offset: BLOCK as u64 * 2, member: b".".to_vec(), field: "size" }
        );
        // Large but possible: the archive is too short for it.
        let mut bytes = pax(&[(b"size", b"18446744073709551000")]);
        bytes.extend(regular(b"."));
        bytes.extend_from_slice(&END);
        assert!(matches!(read_all(&bytes), Err(ReadError::Truncated { .. })));
    }

    #[test]
    fn an_old_gnu_header_has_no_name_prefix() {
        let mut h = regular(b"name");
        h[257..265].copy_from_slice(b"ustar  \0");
        // Old GNU keeps the access time here, where ustar has its prefix.
        h[345..357].copy_from_slice(b"14567012345\0");
        seal(&mut h);
        let mut bytes = h.clone();
        bytes.extend_from_slice(&END);
        assert_eq!(read_all(&bytes).unwrap()[0].member.path, b"name");
        // A POSIX header's prefix is part of the name.
        h[257..265].copy_from_slice(b"ustar\x0000");
        h[345..357].copy_from_slice(b"dir\0\0\0\0\0\0\0\0\0");
        seal(&mut h);
        let mut bytes = h;
        bytes.extend_from_slice(&END);
        assert_eq!(read_all(&bytes).unwrap()[0].member.path, b"dir/name");
    }

    #[test]
    fn gnu_sparse_members_are_refused_by_name() {
        let mut bytes = pax(&[
            (b"GNU.sparse.major", b"1"),
            (b"GNU.sparse.minor", b"0"),
            (b"GNU.sparse.name", b"var/big"),
            (b"GNU.sparse.realsize", b"1048576"),
        ]);
        bytes.extend(regular(b"GNUSparseFile.0/big"));
        bytes.extend_from_slice(&END);
        match read_all(&bytes) {
            Err(e @ ReadError::Unsupported { .. }) => {
                assert!(e.to_string().contains("`var/big`"), "{e}");
                assert!(e.to_string().contains("sparse"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        let mut h = regular(b"old-sparse");
        h[156] = b'S';
        seal(&mut h);
        h.extend_from_slice(&END);
        match read_all(&h) {
            Err(ReadError::Unsupported { member, what, .. }) => {
                assert_eq!(member, b"old-sparse");
                assert!(what.contains("sparse"), "{what}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn xattr_names_with_percent_and_equals_are_encoded_as_gnu_tar_does() {
        let m = Member {
            path: b"f".to_vec(),
            xattrs: vec![(b"user.a=b%c".to_vec(), b"v=1".to_vec())],
            ..Member::default()
        };
        let h = header(&m);
        let has = |needle: &[u8]| h.windows(needle.len()).any(|w| w == needle);
        assert!(has(b" SCHILY.xattr.user.a%3Db%25c=v=1\n"));
        let mut bytes = h.clone();
        bytes.extend_from_slice(&END);
        assert_eq!(read_all(&bytes).unwrap()[0].member.xattrs, m.xattrs);
        // Only %25 and %3D are escapes.
        let mut bytes = pax(&[(b"SCHILY.xattr.user.x%41%3d%3D", b"1")]);
        bytes.extend(regular(b"g"));
        bytes.extend_from_slice(&END);
        assert_eq!(
            read_all(&bytes).unwrap()[0].member.xattrs,
            [(b"user.x%41%3d=".to_vec(), b"1".to_vec())]
        );
    }

    #[test]
    fn a_regular_member_named_with_a_slash_is_an_old_directory() {
        let mut bytes = Vec::new();
        for (name, flag) in [(&b"old/"[..], b'0'), (b"older/", 0)] {
            let mut h = regular(name);
            h[156] = flag;
            put_octal(&mut h[124..136], 0);
            seal(&mut h);
            bytes.extend(h);
        }
        bytes.extend(regular(b"old/f"));
        bytes.extend_from_slice(&END);
        let kinds: Vec<_> =
            read_all(&bytes).unwrap().into_iter().map(|e| (e.member.kind, e.data)).collect();
        assert_eq!(
            kinds,
            [(Some(Kind::Directory), 0), (Some(Kind::Directory), 0), (Some(Kind::Regular), 0)]
        );
    }

    #[test]
    fn ids_and_device_numbers_over_32_bits_are_errors_naming_the_member() {
        let mut h = regular(b"big-uid");
        // Base-256: 2^32 + 5, which `as u32` would read as 5.
        h[108..116].copy_from_slice(&[0x80, 0, 0, 1, 0, 0, 0, 5]);
        seal(&mut h);
        h.extend_from_slice(&END);
        assert_eq!(
            read_all(&h).unwrap_err(),
            ReadError::Number { offset: 0, member: b"big-uid".to_vec(), field: "uid" }
        );
        for (key, field) in [
            (&b"SCHILY.devmajor"[..], "SCHILY.devmajor"),
            (b"SCHILY.devminor", "SCHILY.devminor"),
            (b"uid", "pax uid"),
            (b"gid", "pax gid"),
        ] {
            let mut bytes = pax(&[(key, b"4294967296")]);
            bytes.extend(regular(b"dev"));
            bytes.extend_from_slice(&END);
            let e = read_all(&bytes).unwrap_err();
            assert_eq!(
                e,
                ReadError::Number { offset: 2 * BLOCK as u64, member: b"dev".to_vec(), field }
            );
            assert!(e.to_string().contains("`dev`"), "{e}");
        }
    }

    #[test]
    fn mtimes_keep_their_nanoseconds_and_their_sign() {
        for (mtime, nsec, record) in [
            (1_234_567_890, 123_456_789, Some(&b"mtime=1234567890.123456789"[..])),
            (1_234_567_890, 500_000_000, Some(b"mtime=1234567890.5")),
            (-2, 500_000_000, Some(b"mtime=-1.5")),
            (-1, 0, Some(b"mtime=-1")),
            (0o77_777_777_777 + 1, 0, Some(b"mtime=8589934592")),
            (1_234_567_890, 0, None),
        ] {
            let m = Member { path: b"t".to_vec(), mtime, mtime_nsec: nsec, ..Member::default() };
            let h = header(&m);
            let has = |needle: &[u8]| h.windows(needle.len()).any(|w| w == needle);
            match record {
                Some(r) => assert!(has(&[b" ", r, b"\n"].concat()), "{mtime}.{nsec}"),
                None => assert_eq!(h.len(), BLOCK),
            }
            let mut bytes = h.clone();
            bytes.extend_from_slice(&END);
            let e = &read_all(&bytes).unwrap()[0];
            assert_eq!((e.member.mtime, e.member.mtime_nsec), (mtime, nsec));
        }
        assert_eq!(parse_pax_time(b"-0.25"), Some((-1, 750_000_000)));
        assert_eq!(parse_pax_time(b"7.1234567891"), Some((7, 123_456_789)));
        assert_eq!(parse_pax_time(b"1."), Some((1, 0)));
        for bad in [&b""[..], b"-", b".5", b"1.x", b"+1", b"99999999999999999999"] {
            assert_eq!(parse_pax_time(bad), None, "{}", bad.escape_ascii());
        }
        // GNU tar's base-256 for a time before the epoch.
        let mut h = regular(b"old");
        h[136..148].fill(0xff);
        seal(&mut h);
        h.extend_from_slice(&END);
        assert_eq!(read_all(&h).unwrap()[0].member.mtime, -1);
    }
}
