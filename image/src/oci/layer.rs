//! A layer as the tar stream it holds: the blob checked against its
//! descriptor (digest and size), decompressed (gzip, zstd, or none, as
//! its media type says and its first bytes agree), and the tar checked
//! against the config's `diff_id`. [`LayerReader::finish`] reads both to
//! their ends, so that a blob is never taken without its whole digest
//! checked, however early its tar ends.

use std::io::{self, BufRead, BufReader, Read};

use super::digest::{Expect, Verify};
use super::OciError;

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    /// As its first bytes say (a docker archive's layer has no media type).
    Sniff,
}

const GZIP: &[u8] = &[0x1f, 0x8b];
const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

impl Compression {
    /// The compression a layer media type names, OCI's and Docker's; a
    /// media type that is no tar layer is `None` in the option.
    pub fn of_media_type(media: &str) -> Option<Compression> {
        Some(match media {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Compression::Zstd,
            _ => return None,
        })
    }

    fn of_magic(head: &[u8]) -> Compression {
        if head.starts_with(GZIP) {
            Compression::Gzip
        } else if head.starts_with(ZSTD) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::None | Compression::Sniff => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

type Blob = Box<dyn Read + Send>;

enum Decompress {
    Plain(BufReader<Blob>),
    Gzip(flate2::read::MultiGzDecoder<BufReader<Blob>>),
    Zstd(zstd::Decoder<'static, BufReader<Blob>>),
}

impl Decompress {
    fn blob(&mut self) -> &mut BufReader<Blob> {
        match self {
            Decompress::Plain(r) => r,
            Decompress::Gzip(r) => r.get_mut(),
            Decompress::Zstd(r) => r.get_mut(),
        }
    }
}

impl Read for Decompress {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decompress::Plain(r) => r.read(buf),
            Decompress::Gzip(r) => r.read(buf),
            Decompress::Zstd(r) => r.read(buf),
        }
    }
}

/// A layer's tar stream, checked as it is read.
pub struct LayerReader {
    inner: Verify<Decompress>,
}

impl std::fmt::Debug for LayerReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LayerReader")
    }
}

impl LayerReader {
    /// `blob` (already checked against its descriptor by the caller's
    /// [`Verify`], when it has one) decompressed as `compression` says,
    /// the result checked against `diff_id`. `what` names the layer in
    /// errors.
    pub fn new(
        blob: Blob,
        compression: Compression,
        diff_id: Expect,
        what: &str,
    ) -> Result<LayerReader, OciError> {
        let mut buffered = BufReader::with_capacity(1 << 17, blob);
        let head = buffered.fill_buf().map_err(|e| OciError::new(what, e))?;
        let found = Compression::of_magic(head);
        let compression = match compression {
            Compression::Sniff => found,
            declared if declared != found => {
                return Err(OciError::new(
                    what,
                    format!(
                        "its media type says {} but its data is {}",
                        declared.name(),
                        found.name()
                    ),
                ))
            }
            declared => declared,
        };
        let decompress = match compression {
            Compression::Gzip => Decompress::Gzip(flate2::read::MultiGzDecoder::new(buffered)),
            Compression::Zstd => Decompress::Zstd(
                zstd::Decoder::with_buffer(buffered).map_err(|e| OciError::new(what, e))?,
            ),
            Compression::None | Compression::Sniff => Decompress::Plain(buffered),
        };
        Ok(LayerReader { inner: Verify::new(decompress, diff_id) })
    }

    /// Reads the tar and the blob to their ends, checking both digests.
    pub fn finish(mut self) -> io::Result<()> {
        io::copy(&mut self.inner, &mut io::sink())?;
        io::copy(self.inner.get_mut().blob(), &mut io::sink())?;
        Ok(())
    }
}

impl Read for LayerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::super::digest::Digest;
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn expect(data: &[u8]) -> Expect {
        Expect { what: "layer 1 (diff_id)".into(), digest: Digest::of(data), size: None }
    }

    #[test]
    fn layers_decompress_as_declared_and_are_checked() {
        let tar = vec![7u8; 10_000];
        for (blob, c) in [
            (tar.clone(), Compression::None),
            (gzip(&tar), Compression::Gzip),
            (zstd::encode_all(&tar[..], 1).unwrap(), Compression::Zstd),
            (zstd::encode_all(&tar[..], 1).unwrap(), Compression::Sniff),
        ] {
            let mut r =
                LayerReader::new(Box::new(io::Cursor::new(blob)), c, expect(&tar), "l").unwrap();
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, tar);
            r.finish().unwrap();
        }
        // Declared gzip, but plain.
        let e = LayerReader::new(
            Box::new(io::Cursor::new(tar.clone())),
            Compression::Gzip,
            expect(&tar),
            "layer 2",
        )
        .unwrap_err();
        assert!(e.to_string().contains("says gzip but its data is uncompressed"), "{e}");
        // A tar that is not the diff_id's.
        let r = LayerReader::new(
            Box::new(io::Cursor::new(gzip(b"other"))),
            Compression::Gzip,
            expect(&tar),
            "l",
        )
        .unwrap();
        assert!(r.finish().unwrap_err().to_string().contains("diff_id"));
        // Data after the gzip stream is still read (and so checked).
        let mut blob = gzip(&tar);
        blob.extend([0u8; 100]);
        let r =
            LayerReader::new(Box::new(io::Cursor::new(blob)), Compression::Gzip, expect(&tar), "l")
                .unwrap();
        assert!(r.finish().is_err(), "trailing garbage is no gzip member");
    }
}
