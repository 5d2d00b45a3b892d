//! Lesson 12: fetch a manifest and a blob from a registry by hand, and verify their digests.
//!
//! Usage: lesson12 HOST:PORT REPOSITORY TAG OUTDIR
//!
//! Speak HTTP/1.1 over a TcpStream to the registry: GET the manifest, check its sha256 against
//! the Docker-Content-Digest header, GET the config blob the manifest names, check its sha256
//! against that digest, and only then write OUTDIR/manifest.json and OUTDIR/config.json.
//!
//! Read: book chapter "Images and registries"; the OCI distribution spec.
//! Check your work: `workshop check 12`.

use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// An HTTP response: status, headers (names lowercased) and body.
#[allow(dead_code)] // used once the TODOs are done
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

#[allow(dead_code)]
impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Given: one HTTP/1.1 GET over a fresh connection (`Connection: close`, so the body ends
/// where the connection does).
fn http_get(addr: &str, path: &str, accept: &str) -> Result<Response> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .context("reading the response")?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers in the response")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .context("no status line")?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

/// Given: `sha256:<hex>` of some bytes, with coreutils' sha256sum.
fn sha256_digest(bytes: &[u8]) -> Result<String> {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("running sha256sum")?;
    child.stdin.take().context("stdin")?.write_all(bytes)?;
    let out = child.wait_with_output()?;
    let hex = String::from_utf8_lossy(&out.stdout);
    Ok(format!(
        "sha256:{}",
        hex.split_whitespace().next().unwrap_or("")
    ))
}

/// Given: the config's digest in a manifest, without a JSON library: the first "digest" value
/// after the "config" key.
fn config_digest(manifest: &str) -> Option<String> {
    let after = &manifest[manifest.find("\"config\"")?..];
    let after = &after[after.find("\"digest\"")? + "\"digest\"".len()..];
    let start = after.find('"')? + 1;
    let end = start + after[start..].find('"')?;
    Some(after[start..end].to_owned())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, repository, tag, outdir] = args.as_slice() else {
        bail!("usage: lesson12 HOST:PORT REPOSITORY TAG OUTDIR");
    };
    let outdir = PathBuf::from(outdir);
    let _ = (addr, repository, tag, &outdir, OCI_MANIFEST);
    let _ = (http_get, sha256_digest, config_digest);

    // TODO 1: fetch the manifest of REPOSITORY:TAG as an OCI image manifest (OCI_MANIFEST);
    //         anything but success is an error.
    // TODO 2: prove that its bytes are the ones the registry vouches for (the
    //         Docker-Content-Digest header); stop if they are not.
    // TODO 3: fetch the config blob the manifest names, and prove that its bytes are what
    //         that name says; stop before writing anything if they are not.
    // TODO 4: write OUTDIR/manifest.json and OUTDIR/config.json, and print
    //         "verified {manifest digest}". (README.md; stuck: `workshop hint 12`.)
    println!("TODO: fetch the manifest and the config, and verify them");
    Ok(())
}
