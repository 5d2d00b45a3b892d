// Given code for lesson 19, shared by the starter, the solution and the wrong answers: the
// body of an HTTP/1.1 response, taken from the bytes the daemon sent (RFC 9112).
#![allow(dead_code)]

use anyhow::{Context, Result, bail};

/// The body of `response` (status line, headers, an empty line, the body) when the status is
/// 200; with `Transfer-Encoding: chunked` the chunks are joined. Other statuses fail with the
/// status line and the body (the daemon's `{"message": ...}`).
pub fn body_of(response: &[u8]) -> Result<Vec<u8>> {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the response has no end of headers (an empty line)")?;
    let head = String::from_utf8_lossy(&response[..end]);
    let body = &response[end + 4..];
    let status = head.lines().next().unwrap_or("");
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        unchunk(body)?
    } else {
        body.to_vec()
    };
    if status.split(' ').nth(1) != Some("200") {
        bail!(
            "the daemon answered {status:?}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(body)
}

/// The chunks of a chunked body joined: each is its size in hex, CRLF, the bytes, CRLF; a
/// chunk of size 0 ends the body.
fn unchunk(mut rest: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk size without its CRLF")?;
        let size = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("a chunk size that is not hex: {size:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).context("a chunk cut short")?;
        body.extend_from_slice(chunk);
        rest = rest.get(size + 2..).context("a chunk without its CRLF")?;
    }
}
