//! PAX extended headers (POSIX.1-2001, `pax(1)` "ustar Interchange Format" / "pax Extended
//! Header"): the records that carry what a 512-byte ustar header cannot, such as long paths,
//! big uids and, for layers, extended attributes (`SCHILY.xattr.NAME`, the names GNU tar and
//! Go's archive/tar use).
//!
//! A record is `"<len> <key>=<value>\n"` where `<len>` counts the whole record, itself
//! included. Values are raw bytes and may contain newlines (a binary `security.capability`
//! often does), so records must be cut by their length, never by splitting on `\n`.

/// One record: key and value.
pub type Record<'a> = (&'a [u8], &'a [u8]);

/// Parses the records of one extended header. Errors describe the first malformed record.
pub fn parse(mut data: &[u8]) -> Result<Vec<Record<'_>>, String> {
    let mut records = Vec::new();
    while !data.is_empty() {
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or("malformed pax record (no length)")?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("malformed pax record (bad length)")?;
        if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err("malformed pax record (length does not match)".into());
        }
        let record = &data[space + 1..len - 1];
        let equals = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or("malformed pax record (no '=')")?;
        records.push((&record[..equals], &record[equals + 1..]));
        data = &data[len..];
    }
    Ok(records)
}

/// Encodes one record. The length prefix counts its own digits, so it is found by trying the
/// digit count that fits.
pub fn record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_even_with_newlines_in_values() {
        let mut data = record("path", b"a/very/long/name");
        data.extend(record(
            "SCHILY.xattr.security.capability",
            b"\x01\n\x00\xff",
        ));
        let parsed = parse(&data).unwrap();
        assert_eq!(parsed[0], (&b"path"[..], &b"a/very/long/name"[..]));
        assert_eq!(
            parsed[1],
            (
                &b"SCHILY.xattr.security.capability"[..],
                &b"\x01\n\x00\xff"[..]
            )
        );
    }

    #[test]
    fn the_length_counts_its_own_digits() {
        assert_eq!(record("a", b"bcd"), b"8 a=bcd\n");
        // A body of 98 bytes does not fit a 2-digit length (98 + 2 = 100): it takes 101.
        let r = record("k", &[b'x'; 94]);
        assert_eq!(r.len(), 101);
        assert!(r.starts_with(b"101 k="));
    }

    #[test]
    fn malformed_records_are_errors() {
        assert!(parse(b"garbage").is_err());
        assert!(parse(b"99 path=x\n").is_err());
        assert!(parse(b"9 pathx\n").is_err());
    }
}
