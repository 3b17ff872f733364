//! Content digests (`sha256:` and 64 lower-case hex digits, the only
//! algorithm registries and tools write) and a reader that checks a blob
//! against its descriptor as it is read: never more bytes than the
//! descriptor's size, and at the end exactly that many, hashing to the
//! digest. A blob that fails either is an error naming it.

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

/// A `sha256:HEX` digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:HEX`; another algorithm, or hex of another length or
    /// case, is refused (the image spec wants lower case).
    pub fn parse(text: &str) -> Result<Digest, String> {
        let Some((alg, hex)) = text.split_once(':') else {
            return Err(format!("`{text}` is not a digest (ALGORITHM:HEX)"));
        };
        if alg != "sha256" {
            return Err(format!("`{text}`: digest algorithm `{alg}` is not supported (sha256 is)"));
        }
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!("`{text}` is not a sha256 digest (64 lower-case hex digits)"));
        }
        Ok(Digest(text.to_string()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hash(Sha256::digest(bytes).as_slice())
    }

    fn from_hash(hash: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(hash)))
    }

    /// `sha256:HEX`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex digits alone (a blob's file name in a layout).
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The blob's path in an OCI layout.
    pub fn blob_path(&self) -> String {
        format!("blobs/sha256/{}", self.hex())
    }

    /// The hex digits shortened for a message or a progress line.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

/// A running sha256 with a byte count.
#[derive(Clone, Default)]
pub struct Hasher {
    hash: Sha256,
    pub len: u64,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hasher({} bytes)", self.len)
    }
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.hash.update(bytes);
        self.len += bytes.len() as u64;
    }

    pub fn finish(self) -> Digest {
        Digest::from_hash(self.hash.finalize().as_slice())
    }
}

/// What a checked blob was expected to be, for the check and its message.
#[derive(Clone, Debug)]
pub struct Expect {
    /// What the blob is (`layer 2 of 3`, `config`), for the message.
    pub what: String,
    pub digest: Digest,
    /// The descriptor's size, when there is one (a docker archive's
    /// uncompressed layer has only its digest).
    pub size: Option<u64>,
}

impl Expect {
    /// The error for a blob whose content is not what was expected.
    pub fn mismatch(&self, why: impl fmt::Display) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, format!("{} {}: {why}", self.what, self.digest))
    }

    /// Checks what was read, `got`, against the expectation.
    pub fn check(&self, got: Hasher) -> io::Result<()> {
        if let Some(size) = self.size {
            if got.len != size {
                return Err(self.mismatch(format!(
                    "it is {} bytes, its descriptor says {size} (truncated or replaced)",
                    got.len
                )));
            }
        }
        let digest = got.finish();
        if digest != self.digest {
            return Err(self.mismatch(format!("its content's digest is {digest}")));
        }
        Ok(())
    }
}

/// Reads a blob through, checking it: more bytes than `expect.size` is
/// an error at once; at the end of the input, the size and digest.
#[derive(Debug)]
pub struct Verify<R> {
    inner: R,
    hash: Option<Hasher>,
    expect: Expect,
}

impl<R: Read> Verify<R> {
    pub fn new(inner: R, expect: Expect) -> Verify<R> {
        Verify { inner, hash: Some(Hasher::default()), expect }
    }

    /// Reads what is left and checks it all.
    pub fn finish(mut self) -> io::Result<()> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(())
    }

    /// The checked reader's inner reader.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

impl<R: Read> Read for Verify<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(hash) = &mut self.hash else { return Ok(0) };
        let n = self.inner.read(buf)?;
        hash.update(&buf[..n]);
        if let Some(size) = self.expect.size {
            if hash.len > size {
                return Err(self
                    .expect
                    .mismatch(format!("it is larger than the {size} bytes its descriptor says")));
            }
        }
        if n == 0 {
            let hash = self.hash.take().unwrap_or_default();
            self.expect.check(hash)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digests_parse_strictly() {
        assert_eq!(Digest::of(b"").as_str(), EMPTY);
        assert_eq!(Digest::parse(EMPTY).unwrap().hex().len(), 64);
        assert!(Digest::parse(&EMPTY.to_uppercase().replace("SHA256", "sha256")).is_err());
        assert!(Digest::parse("sha512:00").unwrap_err().contains("not supported"));
        assert!(Digest::parse("sha256:../../etc").is_err());
        assert!(Digest::parse("nothing").is_err());
        assert_eq!(Digest::of(b"").blob_path(), format!("blobs/sha256/{}", &EMPTY[7..]));
    }

    fn expect(bytes: &[u8], size: Option<u64>) -> Expect {
        Expect { what: "layer 1".into(), digest: Digest::of(bytes), size }
    }

    #[test]
    fn a_blob_is_checked_as_it_is_read() {
        let data = b"hello world".to_vec();
        let mut out = Vec::new();
        Verify::new(&data[..], expect(&data, Some(11))).read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        // Truncated: fewer bytes than the descriptor says.
        let e = Verify::new(&data[..5], expect(&data, Some(11))).finish().unwrap_err();
        assert!(e.to_string().contains("is 5 bytes, its descriptor says 11"), "{e}");
        assert!(e.to_string().starts_with("layer 1 sha256:"), "{e}");
        // Larger: stopped as soon as it passes the size.
        let big = vec![0u8; 1 << 20];
        let e = Verify::new(&big[..], expect(&data, Some(11))).finish().unwrap_err();
        assert!(e.to_string().contains("larger than the 11 bytes"), "{e}");
        // Same size, other content.
        let e = Verify::new(&b"hello_world"[..], expect(&data, Some(11))).finish().unwrap_err();
        assert!(e.to_string().contains("its content's digest is sha256:"), "{e}");
        // Without a size, the digest alone.
        assert!(Verify::new(&data[..], expect(&data, None)).finish().is_ok());
    }
}
