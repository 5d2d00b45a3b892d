//! The check for lesson 12 (fetch a manifest and a blob by hand, verify the digests).
//!
//! The checker starts a real registry (Debian's `docker-registry`) on a free port of
//! 127.0.0.1 with a throwaway storage dir, pushes a small image to it with minidock's own
//! client, runs the learner's program, and compares the files it wrote with what the registry
//! serves, digest for digest. Then it runs the program against a lying registry (a thread
//! here, on 127.0.0.1) that sends a config blob whose bytes do not hash to its digest, and
//! against one that sends a manifest whose bytes do not hash to the digest it announces: the
//! program must refuse both and write no config.

use super::{describe_failure, run_captured};
use crate::image::import::{ImportOptions, import};
use crate::image::reference::Reference;
use crate::image::store::{Store, sha256_digest};
use crate::registry::{PushOptions, media_type, progress::Progress, push};
use crate::workshop::Observation;
use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);
const REPOSITORY: &str = "lesson12/hello";
const TAG: &str = "v1";

/// A `docker-registry serve` on 127.0.0.1; killed on drop.
struct LocalRegistry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl LocalRegistry {
    fn start() -> Result<LocalRegistry> {
        let dir = tempfile::Builder::new()
            .prefix("minidock-lesson12-")
            .tempdir()
            .context("creating a scratch directory")?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("storage").display()
            ),
        )?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting docker-registry (apt-get install docker-registry)")?;
        let mut registry = LocalRegistry {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&registry.addr).is_err() {
            if registry.child.try_wait()?.is_some() || Instant::now() > deadline {
                bail!("docker-registry did not start on {}", registry.addr);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(registry)
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A registry that lies: it serves `manifest` under the Docker-Content-Digest `announced`
/// and `config` for the config's digest; either may be other bytes than their digests say.
/// Stops on drop.
struct LyingRegistry {
    addr: String,
    stop: Arc<AtomicBool>,
}

impl LyingRegistry {
    fn start(
        manifest: Vec<u8>,
        manifest_digest: String,
        config_digest: String,
        bad_config: Vec<u8>,
    ) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let path = read_request_path(&mut stream).unwrap_or_default();
                let (status, kind, body) = if path.ends_with(&format!("/manifests/{TAG}")) {
                    ("200 OK", media_type::OCI_MANIFEST, manifest.as_slice())
                } else if path.ends_with(&format!("/blobs/{config_digest}")) {
                    ("200 OK", "application/octet-stream", bad_config.as_slice())
                } else {
                    ("404 Not Found", "text/plain", &b"not found"[..])
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nDocker-Content-Digest: {manifest_digest}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(body);
            }
        });
        Ok(LyingRegistry { addr, stop })
    }
}

impl Drop for LyingRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn read_request_path(stream: &mut TcpStream) -> Result<String> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 << 10 {
        if stream.read(&mut byte)? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    Ok(text.split_whitespace().nth(1).unwrap_or("").to_owned())
}

/// A one-file image pushed to the registry; returns (manifest bytes, config bytes).
fn push_image(registry: &LocalRegistry) -> Result<(Vec<u8>, Vec<u8>)> {
    let root = tempfile::Builder::new()
        .prefix("minidock-lesson12-store-")
        .tempdir()?;
    let store = Store::open(root.path())?;
    let mut tar = tar::Builder::new(Vec::new());
    let text = b"fetched by hand\n";
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    header.set_size(text.len() as u64);
    tar.append_data(&mut header, "hello.txt", &text[..])?;
    let reference = Reference::parse(&format!("{}/{REPOSITORY}:{TAG}", registry.addr))?;
    let options = ImportOptions {
        source: "lesson12".into(),
        changes: vec![r#"CMD ["cat", "/hello.txt"]"#.into()],
        ..ImportOptions::default()
    };
    let image = import(
        &store,
        &tar.into_inner()?[..],
        std::slice::from_ref(&reference),
        &options,
    )?;
    push(
        &store,
        &reference.to_string(),
        &reference,
        &PushOptions::default(),
        &Progress::new(true),
    )
    .context("pushing the lesson's image")?;
    let manifest = store.read_blob(image.manifest_descriptor.digest())?;
    let config = store.read_blob(&image.id)?;
    Ok((manifest, config))
}

fn digest_of_file(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => sha256_digest(&bytes).to_string(),
        Err(_) => "(absent)".into(),
    }
}

pub fn lesson12_fetch_and_verify(bin: &Path) -> Result<Vec<Observation>> {
    let registry = LocalRegistry::start()?;
    let (manifest, config) = push_image(&registry)?;
    let manifest_digest = sha256_digest(&manifest).to_string();
    let config_digest = sha256_digest(&config).to_string();
    // What the registry itself serves, fetched by the checker: the learner must match it.
    let served = ureq::get(format!(
        "http://{}/v2/{REPOSITORY}/manifests/{TAG}",
        registry.addr
    ))
    .header("Accept", media_type::OCI_MANIFEST)
    .call()
    .context("fetching the manifest from the registry")?;
    let served_digest = served
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();

    let out = tempfile::Builder::new()
        .prefix("minidock-lesson12-out-")
        .tempdir()?;
    let output = run_captured(
        Command::new(bin)
            .arg(&registry.addr)
            .arg(REPOSITORY)
            .arg(TAG)
            .arg(out.path()),
        LIMIT,
    )?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut observations = vec![
        Observation::equal(
            "OUTDIR/manifest.json is the manifest the registry serves (its sha256)",
            served_digest.clone(),
            digest_of_file(&out.path().join("manifest.json")),
        )
        .likely("OUTDIR/manifest.json is not the bytes the registry served: a digest is over bytes, so store the body exactly as received, never re-serialised"),
        Observation::equal(
            "OUTDIR/config.json is the config blob the manifest names (its sha256)",
            config_digest.clone(),
            digest_of_file(&out.path().join("config.json")),
        )
        .likely("OUTDIR/config.json is not the blob the manifest names: fetch the config by the digest in the manifest"),
        Observation::judged(
            "the program printed the manifest digest",
            format!("verified {manifest_digest}"),
            if output.status.success() {
                stdout.lines().last().unwrap_or("").to_owned()
            } else {
                describe_failure(&output)
            },
            stdout
                .lines()
                .any(|l| l.trim() == format!("verified {manifest_digest}")),
        ),
    ];

    // The liars: the manifest with a config blob one byte off, then a manifest one byte off
    // (a space inside its JSON, so it still names the true config) under the true digest.
    let mut bad_config = config.clone();
    bad_config[0] ^= 0x20;
    let liar = LyingRegistry::start(
        manifest.clone(),
        manifest_digest.clone(),
        config_digest.clone(),
        bad_config,
    )?;
    observations.push(refused(
        bin,
        &liar,
        "a config blob whose bytes do not match its digest is refused",
        "the config blob was trusted although its bytes do not hash to the digest the manifest names: a blob is known by its digest, so hash every blob you fetch and refuse it before writing anything",
    )?);
    let mut bad_manifest = manifest;
    bad_manifest.insert(1, b' ');
    let liar = LyingRegistry::start(bad_manifest, manifest_digest, config_digest, config)?;
    observations.push(refused(
        bin,
        &liar,
        "a manifest whose bytes do not match the Docker-Content-Digest is refused",
        "the manifest was trusted although its bytes do not hash to the Docker-Content-Digest: checking the blobs proves nothing if the manifest that names them is not checked first",
    )?);
    Ok(observations)
}

/// Runs the learner's program against a lying registry: it must exit non-zero and write no
/// config.json.
/// `trusted` names the misunderstanding when the program wrote the config all the same.
fn refused(bin: &Path, liar: &LyingRegistry, what: &str, trusted: &str) -> Result<Observation> {
    let out = tempfile::Builder::new()
        .prefix("minidock-lesson12-liar-")
        .tempdir()?;
    let output = run_captured(
        Command::new(bin)
            .arg(&liar.addr)
            .arg(REPOSITORY)
            .arg(TAG)
            .arg(out.path()),
        LIMIT,
    )?;
    let wrote_config = out.path().join("config.json").exists();
    let likely = if wrote_config {
        trusted
    } else {
        "the program exited 0 without writing anything: a refusal is an error, a non-zero exit"
    };
    Ok(Observation::judged(
        what,
        "a non-zero exit, and no OUTDIR/config.json",
        format!(
            "exit {}, config.json {}",
            output
                .status
                .code()
                .map_or("by a signal".into(), |c| c.to_string()),
            if wrote_config {
                "written"
            } else {
                "not written"
            }
        ),
        !output.status.success() && !wrote_config,
    )
    .likely(likely))
}
