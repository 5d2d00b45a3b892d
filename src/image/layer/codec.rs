//! Compression and digests of layer blobs.
//!
//! A layer travels as a (usually compressed) tar stream. Two digests name it (image-spec
//! `config.md`, "rootfs"): the *digest* of the blob as stored and sent (compressed), which the
//! manifest lists, and the *diff_id*, the sha256 of the uncompressed tar, which the image
//! config lists. Both are computed here while the bytes stream past, so a layer is never read
//! twice.

use anyhow::{Result, bail};
use sha2::{Digest, Sha256};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression named by a layer descriptor's media type (image-spec `media-types.md`,
    /// plus Docker's schema 2 names, which are still what most registries serve).
    pub fn from_media_type(media_type: &str) -> Result<Self> {
        Ok(match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Compression::Zstd,
            other => bail!("unsupported layer media type {}", crate::cli::quote(other)),
        })
    }

    /// The OCI media type of a layer compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// Guesses the compression from the first bytes of a blob: the gzip magic (RFC 1952,
    /// `1f 8b`) or the zstd frame magic (RFC 8878, `28 b5 2f fd`); anything else is taken as a
    /// plain tar, whose own parser then judges it.
    pub fn sniff(prefix: &[u8]) -> Self {
        if prefix.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The compression a file name asks for: `.gz`/`.tgz`, `.zst`, else none.
    pub fn from_file_name(name: &str) -> Self {
        if name.ends_with(".gz") || name.ends_with(".tgz") {
            Compression::Gzip
        } else if name.ends_with(".zst") || name.ends_with(".zstd") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// The two names of a layer, as `sha256:<hex>` strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDigests {
    /// sha256 of the blob as stored (compressed): what a manifest's layer descriptor lists.
    pub digest: String,
    /// Size of the blob in bytes (the descriptor's `size`).
    pub size: u64,
    /// sha256 of the uncompressed tar: what the image config's `rootfs.diff_ids` lists.
    pub diff_id: String,
    /// Size of the uncompressed tar in bytes.
    pub diff_size: u64,
}

pub(crate) fn sha256_string(hasher: Sha256) -> String {
    let bytes = hasher.finalize();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in bytes.iter() {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    out
}

/// A writer that hashes and counts what passes through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub(crate) fn finish(self) -> (W, String, u64) {
        (self.inner, sha256_string(self.hasher), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// The compressing writer under a tar builder: it hashes the uncompressed stream (the
/// diff_id) above the encoder and the compressed stream (the digest) below it.
pub(crate) struct LayerWriter<W: Write> {
    encoder: Encoder<W>,
    uncompressed: Sha256,
    uncompressed_count: u64,
}

enum Encoder<W: Write> {
    None(HashingWriter<W>),
    Gzip(flate2::write::GzEncoder<HashingWriter<W>>),
    Zstd(zstd::stream::write::Encoder<'static, HashingWriter<W>>),
}

impl<W: Write> LayerWriter<W> {
    pub(crate) fn new(out: W, compression: Compression) -> io::Result<Self> {
        let out = HashingWriter::new(out);
        let encoder = match compression {
            Compression::None => Encoder::None(out),
            // A fixed header (mtime 0, OS "unknown") so that the same tar always gives the
            // same blob: RFC 1952 lets the header carry a timestamp, which would break that.
            Compression::Gzip => Encoder::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .operating_system(255)
                    .write(out, flate2::Compression::default()),
            ),
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(out, 3)?),
        };
        Ok(LayerWriter {
            encoder,
            uncompressed: Sha256::new(),
            uncompressed_count: 0,
        })
    }

    /// Ends the compressed stream and returns the digests.
    pub(crate) fn finish(self) -> io::Result<(W, LayerDigests)> {
        let out = match self.encoder {
            Encoder::None(w) => w,
            Encoder::Gzip(w) => w.finish()?,
            Encoder::Zstd(w) => w.finish()?,
        };
        let (mut inner, digest, size) = out.finish();
        inner.flush()?;
        Ok((
            inner,
            LayerDigests {
                digest,
                size,
                diff_id: sha256_string(self.uncompressed),
                diff_size: self.uncompressed_count,
            },
        ))
    }
}

impl<W: Write> Write for LayerWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.encoder {
            Encoder::None(w) => w.write(buf)?,
            Encoder::Gzip(w) => w.write(buf)?,
            Encoder::Zstd(w) => w.write(buf)?,
        };
        self.uncompressed.update(&buf[..n]);
        self.uncompressed_count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(w) => w.flush(),
            Encoder::Zstd(w) => w.flush(),
        }
    }
}

/// Size of the chunks the decoder thread hands to the unpacker. Large enough that the channel
/// costs nothing per byte, small enough to stay in the CPU caches.
const CHUNK: usize = 256 * 1024;

/// Runs `consume` on the uncompressed tar stream of `blob`, while a second thread reads,
/// hashes and decompresses the blob.
///
/// Why a thread: `tar -xzf` runs gzip as a separate process, so on two cores inflating and
/// creating files overlap. Doing both on one thread would make us slower than GNU tar on the
/// very workload images are made of (many small files). The decoder sends filled buffers
/// over a bounded channel and gets them back to refill, so memory stays at a few chunks.
///
/// The digests cover the whole blob, including any bytes after the tar's end-of-archive
/// blocks, exactly as `sha256sum` of the blob would.
pub(crate) fn with_decoded<R, T>(
    blob: R,
    compression: Compression,
    consume: impl FnOnce(&mut ChunkReader) -> Result<T>,
) -> Result<(T, LayerDigests)>
where
    R: Read + Send,
{
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = sync_channel::<io::Result<Vec<u8>>>(4);
        let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(8);
        let decoder = scope.spawn(move || decode(blob, compression, full_tx, empty_rx));
        let mut reader = ChunkReader {
            full: full_rx,
            empty: empty_tx,
            chunk: Vec::new(),
            pos: 0,
            failed: None,
        };
        let consumed = consume(&mut reader);
        let consumed = match consumed {
            // Read to the very end, so the decoder hashes every byte of the blob (and reports
            // a truncated or corrupt stream even after the last tar entry).
            Ok(value) => io::copy(&mut reader, &mut io::sink())
                .map(|_| value)
                .map_err(|e| crate::cli::untrusted_error("after the last entry", e)),
            Err(e) => Err(e),
        };
        // Dropping the reader closes the channel: on an early error the decoder stops at its
        // next send instead of inflating the rest of a hostile blob.
        drop(reader);
        let digests = decoder
            .join()
            .map_err(|_| anyhow::anyhow!("the decompression thread panicked"))?;
        let value = consumed?;
        Ok((value, digests?))
    })
}

fn decode(
    blob: impl Read,
    compression: Compression,
    full: SyncSender<io::Result<Vec<u8>>>,
    empty: Receiver<Vec<u8>>,
) -> Result<LayerDigests> {
    let mut compressed = HashingReader {
        inner: blob,
        hasher: Sha256::new(),
        count: 0,
    };
    let mut uncompressed = Sha256::new();
    let mut uncompressed_count = 0u64;
    {
        let buffered = BufReader::with_capacity(CHUNK, &mut compressed);
        let mut stream: Box<dyn Read + '_> = match compression {
            Compression::None => Box::new(buffered),
            // Multi-member, as Go's gzip reader (and so Docker) accepts concatenated members.
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        };
        loop {
            let mut chunk = match empty.try_recv() {
                Ok(chunk) => chunk,
                Err(TryRecvError::Empty) => Vec::with_capacity(CHUNK),
                Err(TryRecvError::Disconnected) => return Ok(aborted()),
            };
            chunk.resize(CHUNK, 0);
            let mut filled = 0;
            let result = loop {
                match stream.read(&mut chunk[filled..]) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        filled += n;
                        if filled == chunk.len() {
                            break Ok(());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(describe_decode_error(compression, e)),
                }
            };
            chunk.truncate(filled);
            uncompressed.update(&chunk);
            uncompressed_count += filled as u64;
            let done = filled == 0;
            match result {
                Ok(()) => {
                    if full.send(Ok(chunk)).is_err() {
                        return Ok(aborted());
                    }
                }
                Err(e) => {
                    // Hand over what was decoded before the failure, so the error is reported
                    // at the entry where the stream actually broke.
                    if filled > 0 {
                        let _ = full.send(Ok(chunk));
                    }
                    let _ = full.send(Err(e));
                    return Ok(aborted());
                }
            }
            if done {
                break;
            }
        }
    }
    // Hash whatever follows the compressed stream too (normally nothing).
    io::copy(&mut compressed, &mut io::sink())?;
    Ok(LayerDigests {
        digest: sha256_string(compressed.hasher),
        size: compressed.count,
        diff_id: sha256_string(uncompressed),
        diff_size: uncompressed_count,
    })
}

/// Digests of a stream that was not read to its end; never compared with anything because
/// the consumer already has the error that stopped it.
fn aborted() -> LayerDigests {
    LayerDigests {
        digest: String::new(),
        size: 0,
        diff_id: String::new(),
        diff_size: 0,
    }
}

fn describe_decode_error(compression: Compression, e: io::Error) -> io::Error {
    let what = match compression {
        Compression::None => "reading the layer",
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
    };
    let why = if e.kind() == io::ErrorKind::UnexpectedEof {
        "the stream ends early (truncated layer)".to_string()
    } else {
        e.to_string()
    };
    io::Error::new(e.kind(), format!("{what}: {why}"))
}

/// The unpacker's side of the decoder channel.
pub(crate) struct ChunkReader {
    full: Receiver<io::Result<Vec<u8>>>,
    empty: SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    failed: Option<(io::ErrorKind, String)>,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChunkReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if let Some((kind, message)) = &self.failed {
            return Err(io::Error::new(*kind, message.clone()));
        }
        while self.pos == self.chunk.len() {
            match self.full.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => return Ok(&[]),
                Ok(Ok(chunk)) => {
                    let used = std::mem::replace(&mut self.chunk, chunk);
                    self.pos = 0;
                    if used.capacity() > 0 {
                        // Hand the buffer back for refilling; if the decoder has enough, drop it.
                        let _ = self.empty.try_send(used);
                    }
                }
                Ok(Err(e)) => {
                    // Remember the error: the tar parser may read again after a failure.
                    self.failed = Some((e.kind(), e.to_string()));
                    return Err(e);
                }
                // The decoder finished and hung up.
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.chunk[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.chunk.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_map_to_compression() {
        assert_eq!(
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+gzip").unwrap(),
            Compression::Gzip
        );
        assert_eq!(
            Compression::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip")
                .unwrap(),
            Compression::Gzip
        );
        assert_eq!(
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd").unwrap(),
            Compression::Zstd
        );
        assert_eq!(
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar").unwrap(),
            Compression::None
        );
        let err = Compression::from_media_type("text/plain").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported layer media type \"text/plain\""
        );
    }

    #[test]
    fn sniffing_reads_magic_numbers() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"etc/\0\0"), Compression::None);
    }

    fn roundtrip(compression: Compression) {
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let mut writer = LayerWriter::new(Vec::new(), compression).unwrap();
        writer.write_all(&data).unwrap();
        let (blob, written) = writer.finish().unwrap();
        let (read_back, read) = with_decoded(&blob[..], compression, |r| {
            let mut out = Vec::new();
            r.read_to_end(&mut out)?;
            Ok(out)
        })
        .unwrap();
        assert_eq!(read_back, data);
        assert_eq!(written, read);
        assert_eq!(read.size, blob.len() as u64);
        assert_eq!(read.diff_size, data.len() as u64);
        let mut plain = Sha256::new();
        plain.update(&data);
        assert_eq!(read.diff_id, sha256_string(plain));
    }

    #[test]
    fn every_compression_round_trips_with_matching_digests() {
        roundtrip(Compression::None);
        roundtrip(Compression::Gzip);
        roundtrip(Compression::Zstd);
    }

    #[test]
    fn a_truncated_gzip_stream_is_an_error() {
        let mut writer = LayerWriter::new(Vec::new(), Compression::Gzip).unwrap();
        writer.write_all(&[7u8; 100_000]).unwrap();
        let (blob, _) = writer.finish().unwrap();
        let cut = &blob[..blob.len() - 10];
        let err = with_decoded(cut, Compression::Gzip, |r| {
            let mut out = Vec::new();
            r.read_to_end(&mut out)?;
            Ok(out.len())
        })
        .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "gzip: the stream ends early (truncated layer)"
        );
    }
}
