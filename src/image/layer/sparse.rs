//! Sparse files in tar archives: the maps that say where a file's data lies and where its
//! holes are, in the three forms GNU tar writes and Go's archive/tar (so Docker) reads.
//!
//! A sparse entry stores only the file's data chunks, one after another; its *map* lists each
//! chunk's (offset, length) in the real file, and the real size comes separately. Everything
//! the map does not cover is a hole.
//!
//! * **Old GNU** (`--format=gnu`, type `S`): four map entries in the header itself, then
//!   extension blocks of 21 entries each, before the data, while a flag says more follow.
//! * **PAX 0.0 / 0.1** (`--format=pax --sparse-version=0.x`): pax records.
//!   0.0 repeats `GNU.sparse.offset` and `GNU.sparse.numbytes`; 0.1 gives them all in
//!   `GNU.sparse.map` as `off,len,off,len,...`. `GNU.sparse.size` is the real size.
//! * **PAX 1.0** (GNU tar's default with `--format=pax`): the records only name the format
//!   (`GNU.sparse.major=1`, `GNU.sparse.minor=0`), the real name (`GNU.sparse.name`) and
//!   size (`GNU.sparse.realsize`); the map is at the start of the data, as decimal numbers
//!   each ending in a newline (a count, then offset and length pairs), padded to 512 bytes.
//!   The ustar name is a placeholder like `./GNUSparseFile.1234/name`.

use std::io::Read;

use super::tarstream::BLOCK;

/// Where a sparse file's data lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparseMap {
    /// (offset, length) of each data chunk in the real file, in archive order.
    pub chunks: Vec<(u64, u64)>,
    /// The real size of the file, holes included.
    pub size: u64,
}

/// Largest number of chunks a map may list: far more than any real file, few enough that a
/// hostile map cannot exhaust memory.
pub const MAX_CHUNKS: usize = 1 << 20;

impl SparseMap {
    /// Checks the map as Go's archive/tar does: chunks in increasing order, not overlapping,
    /// inside the real size, and their lengths adding up to `data` (the stored bytes).
    pub fn validate(&self, data: u64) -> Result<(), String> {
        let mut end = 0u64;
        let mut total = 0u64;
        for &(offset, length) in &self.chunks {
            let chunk_end = offset
                .checked_add(length)
                .ok_or("a sparse chunk ends past the largest file size")?;
            if offset < end {
                return Err("the sparse map's chunks overlap or are out of order".into());
            }
            if chunk_end > self.size {
                return Err("a sparse chunk lies past the file's size".into());
            }
            end = chunk_end;
            total += length;
        }
        if total != data {
            return Err(format!(
                "the sparse map lists {total} bytes of data but the entry holds {data}"
            ));
        }
        Ok(())
    }
}

/// The map of an old GNU sparse entry (type `S`): the header's entries, then those of each
/// extension block `next_block` returns while the previous one says more follow.
pub fn old_gnu(
    header: &tar::Header,
    mut next_block: impl FnMut() -> std::io::Result<[u8; BLOCK]>,
) -> Result<SparseMap, String> {
    let gnu = header
        .as_gnu()
        .ok_or("a sparse entry (type S) without a GNU header")?;
    let mut chunks = Vec::new();
    let mut add = |entry: &tar::GnuSparseHeader| -> Result<(), String> {
        if entry.is_empty() {
            return Ok(());
        }
        let offset = entry
            .offset()
            .map_err(|e| format!("bad sparse offset: {e}"))?;
        let length = entry
            .length()
            .map_err(|e| format!("bad sparse length: {e}"))?;
        if chunks.len() >= MAX_CHUNKS {
            return Err(format!("the sparse map lists over {MAX_CHUNKS} chunks"));
        }
        chunks.push((offset, length));
        Ok(())
    };
    for entry in &gnu.sparse {
        add(entry)?;
    }
    let mut more = gnu.is_extended();
    while more {
        let block = next_block().map_err(|e| format!("reading a sparse header: {e}"))?;
        let mut ext = tar::GnuExtSparseHeader::new();
        ext.as_mut_bytes().copy_from_slice(&block);
        for entry in ext.sparse() {
            add(entry)?;
        }
        more = ext.is_extended();
    }
    let size = gnu
        .real_size()
        .map_err(|e| format!("bad sparse real size: {e}"))?;
    Ok(SparseMap { chunks, size })
}

/// The GNU sparse records of one pax header, gathered while the header is parsed.
#[derive(Default)]
pub struct PaxSparse {
    major: Option<Vec<u8>>,
    minor: Option<Vec<u8>>,
    /// `GNU.sparse.name`: the real name, which replaces the ustar and `path` names.
    pub name: Option<Vec<u8>>,
    size: Option<Vec<u8>>,
    numblocks: Option<Vec<u8>>,
    /// `GNU.sparse.map` (0.1), or the 0.0 offset and numbytes records joined the same way.
    map: Vec<Vec<u8>>,
}

/// What a pax header says about sparseness.
pub enum PaxSparseKind {
    /// Not a sparse entry.
    No,
    /// 0.0 or 0.1: the map is known now.
    Map(SparseMap),
    /// 1.0: the map is at the start of the data; the real size is known now.
    InData(u64),
}

impl PaxSparse {
    /// Takes one record if it is a GNU sparse one; returns whether it was.
    pub fn take(&mut self, key: &[u8], value: &[u8]) -> bool {
        let value = value.to_vec();
        match key {
            b"GNU.sparse.major" => self.major = Some(value),
            b"GNU.sparse.minor" => self.minor = Some(value),
            b"GNU.sparse.name" => self.name = Some(value),
            b"GNU.sparse.size" | b"GNU.sparse.realsize" => {
                // Go prefers `size` when both are present.
                if key == b"GNU.sparse.size" || self.size.is_none() {
                    self.size = Some(value)
                }
            }
            b"GNU.sparse.numblocks" => self.numblocks = Some(value),
            b"GNU.sparse.map" => self.map = vec![value],
            b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => self.map.push(value),
            _ => return false,
        }
        true
    }

    /// Decides the format as Go's `readGNUSparsePAXHeaders` does: explicit versions 0.0, 0.1
    /// and 1.0; no version but a map means 0.x; an unknown version is not sparse.
    pub fn kind(&self) -> Result<PaxSparseKind, String> {
        let version = (self.major.as_deref(), self.minor.as_deref());
        let is_1_0 = match version {
            (Some(b"0"), Some(b"0" | b"1")) => false,
            (Some(b"1"), Some(b"0")) => true,
            (Some(_), _) | (_, Some(_)) => return Ok(PaxSparseKind::No),
            (None, None) if !self.map.is_empty() => false,
            (None, None) => return Ok(PaxSparseKind::No),
        };
        let size = self
            .size
            .as_deref()
            .map(|s| number(s, "GNU.sparse size"))
            .transpose()?
            .ok_or("a sparse entry without GNU.sparse.size or GNU.sparse.realsize")?;
        if is_1_0 {
            return Ok(PaxSparseKind::InData(size));
        }
        let blocks = self
            .numblocks
            .as_deref()
            .map(|s| number(s, "GNU.sparse.numblocks"))
            .transpose()?
            .ok_or("a sparse entry without GNU.sparse.numblocks")?;
        let joined = self.map.join(&b","[..]);
        let numbers: Vec<u64> = if joined.is_empty() {
            Vec::new()
        } else {
            joined
                .split(|&b| b == b',')
                .map(|n| number(n, "GNU.sparse.map entry"))
                .collect::<Result<_, _>>()?
        };
        if numbers.len() as u64 != blocks.saturating_mul(2) {
            return Err("GNU.sparse.map does not hold GNU.sparse.numblocks pairs".into());
        }
        let chunks = numbers.chunks(2).map(|p| (p[0], p[1])).collect();
        Ok(PaxSparseKind::Map(SparseMap { chunks, size }))
    }
}

/// Reads the 1.0 map from the start of the entry's data. Returns the map's chunks and how
/// many bytes (whole blocks) it took.
pub fn read_map_1_0(data: &mut impl Read) -> Result<(Vec<(u64, u64)>, u64), String> {
    let mut text = Vec::new();
    let mut pos = 0usize;
    let mut consumed = 0u64;
    // Reads the next newline-terminated number, fetching blocks as needed.
    let mut next = |text: &mut Vec<u8>, pos: &mut usize| -> Result<u64, String> {
        loop {
            if let Some(nl) = text[*pos..].iter().position(|&b| b == b'\n') {
                let n = number(&text[*pos..*pos + nl], "number in the sparse map")?;
                *pos += nl + 1;
                return Ok(n);
            }
            if text.len() - *pos > 20 {
                return Err("malformed sparse map (a number is too long)".into());
            }
            // Keep only the unread part: a long map never sits in memory whole.
            text.drain(..*pos);
            *pos = 0;
            let mut block = [0u8; BLOCK];
            data.read_exact(&mut block)
                .map_err(|e| format!("reading the sparse map: {e}"))?;
            consumed += BLOCK as u64;
            text.extend_from_slice(&block);
        }
    };
    let count = next(&mut text, &mut pos)?;
    if count > MAX_CHUNKS as u64 {
        return Err(format!("the sparse map lists over {MAX_CHUNKS} chunks"));
    }
    let mut chunks = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let offset = next(&mut text, &mut pos)?;
        let length = next(&mut text, &mut pos)?;
        chunks.push((offset, length));
    }
    Ok((chunks, consumed))
}

fn number(text: &[u8], what: &str) -> Result<u64, String> {
    std::str::from_utf8(text)
        .ok()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| format!("bad {what} {:?}", String::from_utf8_lossy(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_must_be_ordered_inside_the_file_and_match_the_data() {
        let map = SparseMap {
            chunks: vec![(0, 10), (100, 5), (200, 0)],
            size: 200,
        };
        assert_eq!(map.validate(15), Ok(()));
        assert!(map.validate(14).is_err());
        let overlapping = SparseMap {
            chunks: vec![(0, 10), (5, 5)],
            size: 20,
        };
        assert!(overlapping.validate(15).is_err());
        let outside = SparseMap {
            chunks: vec![(0, 10)],
            size: 5,
        };
        assert!(outside.validate(10).is_err());
    }

    #[test]
    fn pax_0_0_and_0_1_maps() {
        let mut zero = PaxSparse::default();
        for (k, v) in [
            ("GNU.sparse.size", "100"),
            ("GNU.sparse.numblocks", "2"),
            ("GNU.sparse.offset", "0"),
            ("GNU.sparse.numbytes", "10"),
            ("GNU.sparse.offset", "50"),
            ("GNU.sparse.numbytes", "5"),
        ] {
            assert!(zero.take(k.as_bytes(), v.as_bytes()));
        }
        let PaxSparseKind::Map(map) = zero.kind().unwrap() else {
            panic!("not a map")
        };
        assert_eq!(map.chunks, vec![(0, 10), (50, 5)]);
        let mut one = PaxSparse::default();
        one.take(b"GNU.sparse.major", b"0");
        one.take(b"GNU.sparse.minor", b"1");
        one.take(b"GNU.sparse.size", b"100");
        one.take(b"GNU.sparse.numblocks", b"3");
        one.take(b"GNU.sparse.map", b"0,10,50,5");
        assert!(one.kind().is_err());
        assert!(!one.take(b"path", b"x"));
    }

    #[test]
    fn pax_1_0_map_in_the_data() {
        let mut data = b"2\n0\n10\n8388598\n10\n".to_vec();
        data.resize(BLOCK, 0);
        data.extend_from_slice(b"payload");
        let mut reader = &data[..];
        let (chunks, consumed) = read_map_1_0(&mut reader).unwrap();
        assert_eq!(chunks, vec![(0, 10), (8388598, 10)]);
        assert_eq!(consumed, BLOCK as u64);
        assert_eq!(reader, b"payload");
        assert!(read_map_1_0(&mut &b"x\n"[..]).is_err());
    }
}
