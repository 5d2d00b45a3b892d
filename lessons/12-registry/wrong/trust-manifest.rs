//! Lesson 12, a known-wrong answer: the config blob is verified, the manifest is trusted.
//!
//! The Docker-Content-Digest header is printed as if it had been checked: a registry (or
//! anything between) that serves other manifest bytes under that digest goes unnoticed, and
//! with them any config and layers it names. `workshop verify` proves the check fails it.
//!
//! Usage: lesson12 HOST:PORT REPOSITORY TAG OUTDIR

use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// An HTTP response: status, headers (names lowercased) and body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

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

    // 1. The manifest, by tag.
    let manifest = http_get(
        addr,
        &format!("/v2/{repository}/manifests/{tag}"),
        OCI_MANIFEST,
    )?;
    if manifest.status != 200 {
        bail!("GET manifest: HTTP {}", manifest.status);
    }

    // The shortcut: the registry's word is taken for the manifest's digest.
    let manifest_digest = manifest
        .header("docker-content-digest")
        .context("the registry sent no Docker-Content-Digest")?
        .to_owned();

    // 3. The config blob it names, verified before anything is written.
    let text = String::from_utf8_lossy(&manifest.body);
    let wanted = config_digest(&text).context("the manifest names no config digest")?;
    let config = http_get(addr, &format!("/v2/{repository}/blobs/{wanted}"), "*/*")?;
    if config.status != 200 {
        bail!("GET blob {wanted}: HTTP {}", config.status);
    }
    let actual = sha256_digest(&config.body)?;
    if actual != wanted {
        bail!("config digest mismatch: asked for {wanted}, got bytes hashing to {actual}");
    }

    // 4. Only verified bytes reach the disk.
    std::fs::write(outdir.join("manifest.json"), &manifest.body)?;
    std::fs::write(outdir.join("config.json"), &config.body)?;
    println!("verified {manifest_digest}");
    Ok(())
}
