//! A tar stream read header by header (POSIX `pax(1)` "ustar Interchange Format").
//!
//! An archive is a sequence of 512-byte headers, each followed by its data padded to a
//! multiple of 512 bytes, and ends with a block of zeros. The unpacker reads the extension
//! headers (pax, GNU long names, GNU sparse maps) itself, with size limits, so this reader
//! knows nothing of them: it hands out headers and the data after each. Two things decide
//! where the next header starts and so live here: a pax `size` record replaces the header's
//! size ([`TarStream::set_size`]), and an old GNU sparse header is followed by extension
//! blocks that come before the data and are not counted in it ([`TarStream::read_block`]).

use std::io::{self, Read};

/// Size of a tar block.
pub const BLOCK: usize = 512;

/// Reads headers and entry data from a tar stream.
pub struct TarStream<R> {
    inner: R,
    /// Data bytes of the current entry not read yet.
    left: u64,
    /// Padding after the current entry's data.
    pad: u64,
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

impl<R: Read> TarStream<R> {
    pub fn new(inner: R) -> Self {
        TarStream {
            inner,
            left: 0,
            pad: 0,
        }
    }

    /// Skips what is left of the current entry and reads the next header: `None` at the
    /// end-of-archive zero block or at the end of the stream. A header whose checksum is wrong
    /// is an error, as in GNU tar and Go's archive/tar.
    pub fn next_header(&mut self) -> io::Result<Option<tar::Header>> {
        let rest = self.left + self.pad;
        let skipped = io::copy(&mut (&mut self.inner).take(rest), &mut io::sink())?;
        if skipped != rest {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside an entry",
            ));
        }
        self.left = 0;
        self.pad = 0;
        let mut header = tar::Header::new_old();
        let got = read_full(&mut self.inner, header.as_mut_bytes())?;
        if got == 0 {
            return Ok(None);
        }
        if got < BLOCK {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside a header",
            ));
        }
        if header.as_bytes().iter().all(|&b| b == 0) {
            return Ok(None);
        }
        check_sum(header.as_bytes())?;
        self.set_size(header.entry_size()?);
        Ok(Some(header))
    }

    /// Sets the size of the current entry's data, which no read has touched yet: a pax `size`
    /// record overrides the header's field.
    pub fn set_size(&mut self, size: u64) {
        self.left = size;
        self.pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
    }

    /// Reads one block that sits between the current header and its data (an old GNU sparse
    /// extension header).
    pub fn read_block(&mut self) -> io::Result<[u8; BLOCK]> {
        let mut block = [0u8; BLOCK];
        if read_full(&mut self.inner, &mut block)? != BLOCK {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside a sparse header",
            ));
        }
        Ok(block)
    }
}

impl<R: Read> Read for TarStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if max == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside an entry",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads until `buf` is full or the stream ends; returns how much was read.
fn read_full(inner: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match inner.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The header checksum: the sum of its bytes with the checksum field taken as spaces. Old
/// tars summed signed bytes; Go's archive/tar accepts either sum, and so do we.
fn check_sum(block: &[u8]) -> io::Result<()> {
    let field = &block[148..156];
    let text = std::str::from_utf8(field).map_err(|_| invalid("bad header checksum field"))?;
    let text = text.trim_matches(|c: char| c == ' ' || c == '\0');
    let want = u32::from_str_radix(text, 8).map_err(|_| invalid("bad header checksum field"))?;
    let spaces = 8 * u32::from(b' ');
    let outside = || block[..148].iter().chain(&block[156..]);
    let unsigned: u32 = outside().map(|&b| u32::from(b)).sum::<u32>() + spaces;
    let signed: i64 = outside().map(|&b| i64::from(b as i8)).sum::<i64>() + i64::from(spaces);
    if want != unsigned && i64::from(want) != signed {
        return Err(invalid("archive header checksum mismatch"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn headers_and_data_in_order_skipping_what_is_unread() {
        let bytes = archive(&[("a", b"hello"), ("b", &[7u8; 600]), ("c", b"")]);
        let mut stream = TarStream::new(&bytes[..]);
        let a = stream.next_header().unwrap().unwrap();
        assert_eq!(&*a.path_bytes(), b"a");
        let mut data = Vec::new();
        stream.read_to_end(&mut data).unwrap();
        assert_eq!(data, b"hello");
        let b = stream.next_header().unwrap().unwrap();
        assert_eq!(&*b.path_bytes(), b"b");
        // Not read: skipped with its padding.
        let c = stream.next_header().unwrap().unwrap();
        assert_eq!(&*c.path_bytes(), b"c");
        assert!(stream.next_header().unwrap().is_none());
    }

    #[test]
    fn a_corrupt_header_or_a_truncated_entry_is_an_error() {
        let mut bytes = archive(&[("a", &[1u8; 1000])]);
        bytes[0] = b'z';
        assert!(TarStream::new(&bytes[..]).next_header().is_err());
        let bytes = archive(&[("a", &[1u8; 1000])]);
        let mut stream = TarStream::new(&bytes[..700]);
        stream.next_header().unwrap().unwrap();
        assert!(stream.next_header().is_err());
    }
}
