//! `minidock pull`, `push`, `login` and `logout` against real components: the CNCF
//! distribution registry (Debian's `docker-registry`) on a free port of 127.0.0.1 with a temp
//! storage dir, skopeo and umoci as interop peers, runc to run what came through. Failure
//! cases that a real registry cannot be made to produce on demand (a tampered blob, a
//! connection cut mid-layer, a huge manifest) come from a tiny fake registry thread in this
//! file, also on 127.0.0.1.

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use minidock::image::store::sha256_digest;

// ------------------------------------------------------------------------------------------
// The real registry
// ------------------------------------------------------------------------------------------

use common::registry::Registry;

fn have(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// A registry in `auth: token` mode: it trusts tokens signed by the certificate `cert` and
/// sends clients to the token server at `realm`.
fn start_token(realm: &str, cert: &Path) -> Option<Registry> {
    Registry::start_with(
        "127.0.0.1",
        &format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
            cert.display()
        ),
    )
}

// ------------------------------------------------------------------------------------------
// minidock and images
// ------------------------------------------------------------------------------------------

/// A test's private world: a state root and a config dir for credentials.
struct World {
    root: tempfile::TempDir,
    config: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        World {
            root: tempfile::Builder::new()
                .prefix("minidock-registry-root")
                .tempdir()
                .unwrap(),
            config: tempfile::Builder::new()
                .prefix("minidock-registry-config")
                .tempdir()
                .unwrap(),
        }
    }

    fn minidock(&self, args: &[&str]) -> Output {
        self.minidock_stdin(args, "")
    }

    fn minidock_stdin(&self, args: &[&str], stdin: &str) -> Output {
        common::output_with_stdin(
            Command::new(env!("CARGO_BIN_EXE_minidock"))
                .arg("--root")
                .arg(self.root.path())
                .args(args)
                .env("MINIDOCK_CONFIG", self.config.path()),
            stdin.as_bytes(),
        )
    }

    /// Runs minidock and insists on success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.minidock(args);
        assert!(
            out.status.success(),
            "minidock {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs minidock and insists on failure; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.minidock(args);
        assert!(
            !out.status.success(),
            "minidock {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    fn images_dir(&self) -> PathBuf {
        self.root.path().join("images")
    }

    fn blobs(&self) -> Vec<String> {
        names_in(&self.images_dir().join("blobs/sha256"))
    }

    fn inspect(&self, image: &str) -> serde_json::Value {
        let out = self.ok(&["image", "inspect", image]);
        let all: serde_json::Value = serde_json::from_str(&out).unwrap();
        all[0].clone()
    }

    /// Imports a tar (from bytes) as an image with some config changes.
    fn import(&self, tar: &[u8], name: &str, extra: &[&str]) -> String {
        let file = self.root.path().join("import.tar");
        fs::write(&file, tar).unwrap();
        let mut args = vec!["import"];
        args.extend_from_slice(extra);
        let file_arg = file.to_string_lossy().into_owned();
        args.push(&file_arg);
        args.push(name);
        let id = self.ok(&args).trim().to_owned();
        fs::remove_file(&file).unwrap();
        id
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A tar with the given (path, content) files, fixed owners and times.
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_size(data.len() as u64);
        builder.append_data(&mut header, path, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A busybox root filesystem as a tar (scripts/busybox-rootfs), for images that must run.
fn busybox_tar() -> Vec<u8> {
    let rootfs = common::busybox_rootfs();
    let out = Command::new("tar")
        .arg("-C")
        .arg(rootfs.path())
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

fn skopeo_available() -> bool {
    common::prerequisite(
        have("skopeo", "--version"),
        "skopeo is not installed (apt-get install skopeo)",
    )
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The raw manifest the registry serves for `name`, with skopeo.
fn registry_manifest(name: &str) -> serde_json::Value {
    let raw = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{name}"),
    ]);
    serde_json::from_str(&raw).unwrap()
}

// ------------------------------------------------------------------------------------------
// Round trips against the real registry
// ------------------------------------------------------------------------------------------

#[test]
fn push_then_pull_into_an_empty_store_gives_the_same_image_unpacked() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let name = registry.name("roundtrip/busybox:1");
    let source = World::new();
    let id = source.import(&busybox_tar(), &name, &["-c", r#"CMD ["sh"]"#]);

    let pushed = source.ok(&["push", &name]);
    assert!(pushed.contains("Pushed"), "{pushed}");
    let digest = source.inspect(&name)["Descriptor"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        pushed.contains(&format!("1: digest: {digest} size: ")),
        "{pushed}"
    );
    // The registry really has it, under that digest.
    let manifest = registry_manifest(&name);
    assert_eq!(
        manifest["config"]["digest"].as_str(),
        Some(id.as_str()),
        "the registry's manifest names our config"
    );

    // A second push finds every blob there already.
    let again = source.ok(&["push", &name]);
    assert!(!again.contains("Pushed"), "{again}");
    assert!(again.contains("Layer already exists"), "{again}");

    let target = World::new();
    let pulled = target.ok(&["pull", &name]);
    assert!(pulled.contains("Pull complete"), "{pulled}");
    assert!(pulled.contains(&format!("Digest: {digest}")), "{pulled}");
    assert!(
        pulled.trim_end().ends_with(&name),
        "the last line is the full name: {pulled}"
    );
    let inspect = target.inspect(&name);
    assert_eq!(inspect["Id"], id.as_str());
    assert_eq!(inspect["Descriptor"]["digest"], digest.as_str());
    assert_eq!(inspect["Config"]["Cmd"], serde_json::json!(["sh"]));
    // The layer was unpacked by the pull, at its ChainID (one layer: its DiffID).
    let diff_id = inspect["RootFS"]["Layers"][0].as_str().unwrap();
    let layer = target
        .root
        .path()
        .join("layers")
        .join(diff_id.trim_start_matches("sha256:"));
    assert!(
        layer.join("bin/busybox").is_file(),
        "{} has no bin/busybox",
        layer.display()
    );

    // Pulling again downloads nothing.
    let again = target.ok(&["pull", &name]);
    assert!(!again.contains("Pull complete"), "{again}");
    assert!(again.contains("Already exists"), "{again}");
    assert!(again.contains("Image is up to date"), "{again}");

    // By digest too, into a third store: the image gets the digest reference as its name.
    let by_digest = World::new();
    let pinned = format!("{}@{digest}", registry.name("roundtrip/busybox"));
    by_digest.ok(&["pull", &pinned]);
    assert_eq!(by_digest.inspect(&pinned)["Id"], id.as_str());
}

#[test]
fn skopeo_pushes_oci_and_v2s2_and_minidock_pulls_both() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    if !skopeo_available() {
        return;
    }
    let source = World::new();
    let id = source.import(
        &tar_of(&[("etc/hello", b"hello from skopeo\n")]),
        "interop:1",
        &["-c", r#"CMD ["cat", "/etc/hello"]"#],
    );
    let layout = format!(
        "oci:{}:docker.io/library/interop:1",
        source.images_dir().display()
    );
    for (format, media_type) in [
        ("oci", "application/vnd.oci.image.manifest.v1+json"),
        (
            "v2s2",
            "application/vnd.docker.distribution.manifest.v2+json",
        ),
    ] {
        let name = registry.name(&format!("from-skopeo/{format}:latest"));
        skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            "--format",
            format,
            &layout,
            &format!("docker://{name}"),
        ]);
        assert_eq!(registry_manifest(&name)["mediaType"], media_type);

        let target = World::new();
        target.ok(&["pull", &name]);
        let inspect = target.inspect(&name);
        assert_eq!(inspect["Descriptor"]["mediaType"], media_type, "{format}");
        assert_eq!(inspect["Id"], id.as_str(), "{format}: the same config");
        assert_eq!(
            inspect["Config"]["Cmd"],
            serde_json::json!(["cat", "/etc/hello"])
        );
        let diff_id = inspect["RootFS"]["Layers"][0].as_str().unwrap();
        let unpacked = target
            .root
            .path()
            .join("layers")
            .join(diff_id.trim_start_matches("sha256:"))
            .join("etc/hello");
        assert_eq!(fs::read_to_string(unpacked).unwrap(), "hello from skopeo\n");
    }
}

#[test]
fn minidock_pushes_skopeo_copies_umoci_unpacks_and_runc_runs_it() {
    if !common::require_root() {
        return;
    }
    let Some(registry) = Registry::start(None) else {
        return;
    };
    if !skopeo_available()
        || !common::prerequisite(have("umoci", "--version"), "umoci is not installed")
        || !common::prerequisite(have("runc", "--version"), "runc is not installed")
    {
        return;
    }
    let name = registry.name("to-runc/busybox:v1");
    let source = World::new();
    source.import(&busybox_tar(), &name, &["-c", r#"CMD ["sh"]"#]);
    source.ok(&["push", &name]);

    let work = tempfile::Builder::new()
        .prefix("minidock-runc")
        .tempdir()
        .unwrap();
    let layout = work.path().join("oci");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{name}"),
        &format!("oci:{}:v1", layout.display()),
    ]);
    let bundle = work.path().join("bundle");
    let out = Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:v1", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "umoci: {out:?}");

    // The image's CMD is `sh`; run something that answers instead, without a terminal.
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    config["process"]["args"] = serde_json::json!(["/bin/echo", "pushed by minidock"]);
    config["process"]["terminal"] = serde_json::json!(false);
    fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    let id = format!("minidock-registry-{}", std::process::id());
    let out = Command::new("runc")
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = Command::new("runc").args(["delete", "-f", &id]).output();
    assert!(
        out.status.success(),
        "runc run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pushed by minidock\n");
}

/// Puts a manifest (or index) into the real registry by hand.
fn put_manifest(
    registry: &Registry,
    repository: &str,
    reference: &str,
    media_type: &str,
    body: &[u8],
) {
    let url = format!(
        "http://{}/v2/{repository}/manifests/{reference}",
        registry.addr
    );
    let response = ureq::put(&url)
        .header("Content-Type", media_type)
        .send(body)
        .unwrap();
    assert_eq!(response.status().as_u16(), 201, "PUT {url}");
}

#[test]
fn a_manifest_list_pulls_the_host_platform_and_platform_picks_the_other() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let source = World::new();
    let mut entries = Vec::new();
    let mut ids = HashMap::new();
    for arch in ["amd64", "arm64"] {
        let name = registry.name(&format!("multi:{arch}"));
        let id = source.import(
            &tar_of(&[("arch", arch.as_bytes())]),
            &name,
            &["--platform", &format!("linux/{arch}")],
        );
        source.ok(&["push", &name]);
        let descriptor = source.inspect(&name)["Descriptor"].clone();
        entries.push(serde_json::json!({
            "mediaType": descriptor["mediaType"],
            "digest": descriptor["digest"],
            "size": descriptor["size"],
            "platform": {"os": "linux", "architecture": arch},
        }));
        ids.insert(arch, id);
    }
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": entries,
    }))
    .unwrap();
    put_manifest(
        &registry,
        "multi",
        "latest",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        &list,
    );
    let name = registry.name("multi:latest");
    let list_digest = sha256_digest(&list).to_string();

    let host_arch = oci_spec::image::Arch::default().to_string();
    let other = if host_arch == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    let host = World::new();
    let out = host.ok(&["pull", &name]);
    assert!(out.contains(&format!("Digest: {list_digest}")), "{out}");
    assert_eq!(host.inspect(&name)["Id"], ids[host_arch.as_str()].as_str());
    assert_eq!(host.inspect(&name)["Architecture"], host_arch.as_str());

    let chosen = World::new();
    chosen.ok(&["pull", "--platform", &format!("linux/{other}"), &name]);
    assert_eq!(chosen.inspect(&name)["Id"], ids[other].as_str());
    assert_eq!(chosen.inspect(&name)["Architecture"], other);

    let missing = World::new();
    let err = missing.fails(&["pull", "--platform", "linux/s390x", &name]);
    assert!(
        err.contains("no matching manifest for linux/s390x"),
        "{err}"
    );
    assert!(missing.ok(&["images", "-q"]).is_empty());
}

#[test]
fn basic_auth_login_push_pull_and_a_wrong_password_fails_clearly() {
    let Some(registry) = Registry::start(Some(("alice", "s3cret"))) else {
        return;
    };
    let world = World::new();
    let name = registry.name("private/app:1");
    world.import(&tar_of(&[("secret", b"data")]), &name, &[]);

    // Without credentials, the registry refuses, and says how to fix it.
    let err = world.fails(&["push", &name]);
    assert!(err.contains("unauthorized"), "{err}");
    assert!(err.contains("minidock login"), "{err}");

    // A wrong password: a clear error, nothing stored.
    let out = world.minidock_stdin(
        &["login", "-u", "alice", "--password-stdin", &registry.addr],
        "wrong\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "login to {} failed: unauthorized: wrong username or password",
            registry.addr
        )),
        "{err}"
    );
    let config = world.config.path().join("config.json");
    assert!(!config.exists(), "a failed login stores nothing");

    // The right one: stored, 0600, in Docker's format.
    let out = world.minidock_stdin(
        &["login", "-u", "alice", "--password-stdin", &registry.addr],
        "s3cret\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Login Succeeded\n");
    assert_eq!(
        fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let stored: serde_json::Value = serde_json::from_slice(&fs::read(&config).unwrap()).unwrap();
    assert_eq!(
        stored["auths"][&registry.addr]["auth"], "YWxpY2U6czNjcmV0",
        "base64(alice:s3cret)"
    );

    world.ok(&["push", &name]);
    let other = World::new();
    fs::copy(&config, other.config.path().join("config.json")).unwrap();
    other.ok(&["pull", &name]);

    let out = world.ok(&["logout", &registry.addr]);
    assert_eq!(
        out,
        format!("Removing login credentials for {}\n", registry.addr)
    );
    let stored: serde_json::Value = serde_json::from_slice(&fs::read(&config).unwrap()).unwrap();
    assert!(stored.get("auths").is_none(), "{stored}");
    assert!(world.fails(&["pull", &name]).contains("unauthorized"));
}

#[test]
fn a_blob_corrupted_in_the_registrys_storage_is_rejected_and_nothing_is_stored() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let source = World::new();
    let name = registry.name("tampered:1");
    let layer_tar = tar_of(&[("file", &[7u8; 4096])]);
    source.import(&layer_tar, &name, &[]);
    source.ok(&["push", &name]);
    let layer_digest = source.inspect(&name)["Descriptor"]["digest"].clone();
    let manifest = registry_manifest_raw(&registry, "tampered", "1");
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let _ = layer_digest;
    // The registry keeps each blob at blobs/sha256/<2 hex>/<hex>/data: flip its bytes (same
    // size), as a bad disk or a malicious mirror would.
    let hex = layer.trim_start_matches("sha256:");
    let data = registry
        .storage()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut bytes = fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&data, &bytes).unwrap();

    let target = World::new();
    let err = target.fails(&["pull", &name]);
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(err.contains(&layer), "the error names the layer: {err}");
    assert!(
        !target.blobs().contains(&hex.to_owned()),
        "the tampered layer was not stored"
    );
    assert!(target.ok(&["images", "-q"]).is_empty(), "no image appeared");
    assert!(
        names_in(&target.images_dir().join("ingest")).is_empty(),
        "no temp file is left behind"
    );
}

fn registry_manifest_raw(
    registry: &Registry,
    repository: &str,
    reference: &str,
) -> serde_json::Value {
    let url = format!(
        "http://{}/v2/{repository}/manifests/{reference}",
        registry.addr
    );
    let mut response = ureq::get(&url)
        .header(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        )
        .call()
        .unwrap();
    serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap()
}

// ------------------------------------------------------------------------------------------
// A fake registry, for failures on demand
// ------------------------------------------------------------------------------------------

/// How the fake answers one path.
#[derive(Clone)]
enum Route {
    /// 200 with this body and content type.
    Serve(&'static str, Vec<u8>),
    /// Announces the whole body, sends `after` bytes, then closes the connection: a registry
    /// that died mid-layer.
    CutAfter(Vec<u8>, usize),
    /// Sends `after` bytes, then waits (until the fake is dropped): a stalled download.
    StallAfter(Vec<u8>, usize),
}

struct Fake {
    addr: String,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    /// Every path requested, in order.
    log: Arc<Mutex<Vec<String>>>,
    stalled: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Fake {
    fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let fake = Fake {
            addr,
            routes: Arc::default(),
            log: Arc::default(),
            stalled: Arc::default(),
            stop: Arc::default(),
        };
        let (routes, log, stalled, stop) = (
            fake.routes.clone(),
            fake.log.clone(),
            fake.stalled.clone(),
            fake.stop.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (routes, log, stalled, stop) =
                    (routes.clone(), log.clone(), stalled.clone(), stop.clone());
                std::thread::spawn(move || serve(stream, &routes, &log, &stalled, &stop));
            }
        });
        fake
    }

    fn route(&self, path: &str, route: Route) {
        self.routes.lock().unwrap().insert(path.to_owned(), route);
    }

    fn requests(&self, path: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }

    /// Serves an image under `<repository>:latest`; returns the layer paths.
    fn image(&self, repository: &str, layers: &[Vec<u8>], manifest_type: &str) -> Vec<String> {
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|tar| sha256_digest(tar).to_string())
            .collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": oci_spec::image::Arch::default().to_string(),
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let config_digest = sha256_digest(&config).to_string();
        self.route(
            &format!("/v2/{repository}/blobs/{config_digest}"),
            Route::Serve("application/octet-stream", config.clone()),
        );
        let mut descriptors = Vec::new();
        let mut paths = Vec::new();
        for tar in layers {
            let blob = gzip(tar);
            let digest = sha256_digest(&blob).to_string();
            let path = format!("/v2/{repository}/blobs/{digest}");
            descriptors.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest,
                "size": blob.len(),
            }));
            self.route(&path, Route::Serve("application/octet-stream", blob));
            paths.push(path);
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": descriptors,
        }))
        .unwrap();
        self.route(
            &format!("/v2/{repository}/manifests/latest"),
            Route::Serve("application/vnd.oci.image.manifest.v1+json", manifest),
        );
        paths
    }

    /// The body a route serves.
    fn body(&self, path: &str) -> Vec<u8> {
        match &self.routes.lock().unwrap()[path] {
            Route::Serve(_, body) | Route::CutAfter(body, _) | Route::StallAfter(body, _) => {
                body.clone()
            }
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

fn serve(
    mut stream: TcpStream,
    routes: &Mutex<HashMap<String, Route>>,
    log: &Mutex<Vec<String>>,
    stalled: &AtomicBool,
    stop: &AtomicBool,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
        if !head[0].is_ascii_uppercase() {
            // A TLS ClientHello, say: answer as Go's HTTP server does, and hang up.
            let _ = stream.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
            return;
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or("").to_owned();
    let path = words.next().unwrap_or("").to_owned();
    log.lock().unwrap().push(path.clone());
    let route = if path == "/v2/" {
        Some(Route::Serve("application/json", b"{}".to_vec()))
    } else {
        routes.lock().unwrap().get(&path).cloned()
    };
    let (content_type, body, limit, stall) = match route {
        None => {
            let body = br#"{"errors":[{"code":"NOT_FOUND","message":"not found"}]}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
            return;
        }
        Some(Route::Serve(content_type, body)) => (content_type, body, usize::MAX, false),
        Some(Route::CutAfter(body, after)) => ("application/octet-stream", body, after, false),
        Some(Route::StallAfter(body, after)) => ("application/octet-stream", body, after, true),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method == "HEAD" {
        return;
    }
    let _ = stream.write_all(&body[..body.len().min(limit)]);
    let _ = stream.flush();
    if stall {
        stalled.store(true, Ordering::SeqCst);
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[test]
fn a_tampered_blob_from_the_registry_is_rejected_and_nothing_is_stored() {
    let fake = Fake::start();
    let paths = fake.image("evil", &[tar_of(&[("a", b"good bytes")])], OCI_MANIFEST);
    // The registry sends other bytes of the same length than the digest promises.
    let mut body = fake.body(&paths[0]);
    let last = body.len() - 1;
    body[last] ^= 0x55;
    fake.route(&paths[0], Route::Serve("application/octet-stream", body));

    let world = World::new();
    let err = world.fails(&["pull", &format!("{}/evil", fake.addr)]);
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(err.contains("the blob was not stored"), "{err}");
    let layer_hex = paths[0].rsplit(':').next().unwrap().to_owned();
    assert!(!world.blobs().contains(&layer_hex));
    assert!(world.ok(&["images", "-q"]).is_empty());
    assert!(names_in(&world.images_dir().join("ingest")).is_empty());
}

#[test]
fn an_unknown_manifest_media_type_and_a_huge_manifest_are_refused() {
    let fake = Fake::start();
    let unknown = br#"{"schemaVersion":2,"mediaType":"application/vnd.example.thing+json","config":{},"layers":[]}"#;
    fake.route(
        "/v2/odd/manifests/latest",
        Route::Serve("application/vnd.example.thing+json", unknown.to_vec()),
    );
    // 5 MiB of valid-looking JSON: over the 4 MiB cap.
    let mut huge = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 5 << 20));
    huge.extend(br#""}}"#);
    fake.route(
        "/v2/huge/manifests/latest",
        Route::Serve("application/vnd.oci.image.manifest.v1+json", huge),
    );

    let world = World::new();
    let err = world.fails(&["pull", &format!("{}/odd", fake.addr)]);
    assert!(
        err.contains("unsupported manifest media type \"application/vnd.example.thing+json\""),
        "{err}"
    );
    let err = world.fails(&["pull", &format!("{}/huge", fake.addr)]);
    assert!(err.contains("4194304"), "the cap is named: {err}");
    assert!(world.ok(&["images", "-q"]).is_empty());
    assert!(world.blobs().is_empty(), "{:?}", world.blobs());
}

#[test]
fn a_registry_that_dies_mid_layer_gives_a_clear_error_and_the_next_pull_completes() {
    let fake = Fake::start();
    let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let paths = fake.image(
        "flaky",
        &[
            tar_of(&[("small", b"first layer")]),
            tar_of(&[("big", &big)]),
        ],
        OCI_MANIFEST,
    );
    let second = fake.body(&paths[1]);
    fake.route(&paths[1], Route::CutAfter(second.clone(), second.len() / 3));

    let world = World::new();
    let name = format!("{}/flaky", fake.addr);
    let err = world.fails(&["pull", &name]);
    assert!(err.contains("pulling layer"), "{err}");
    assert!(err.contains("connection broke after"), "{err}");
    assert!(world.ok(&["images", "-q"]).is_empty(), "no half image");

    // The registry is back: the pull completes, and the first layer is not fetched again.
    fake.route(&paths[1], Route::Serve("application/octet-stream", second));
    let out = world.ok(&["pull", &name]);
    assert!(out.contains("Already exists"), "{out}");
    assert_eq!(fake.requests(&paths[0]), 1, "layer 1 was downloaded once");
    assert_eq!(world.ok(&["images", "-q"]).lines().count(), 1);
}

#[test]
fn a_pull_killed_mid_layer_shows_no_image_and_the_next_pull_reuses_what_was_complete() {
    let fake = Fake::start();
    let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let paths = fake.image(
        "killed",
        &[
            tar_of(&[("small", b"first layer")]),
            tar_of(&[("big", &big)]),
        ],
        OCI_MANIFEST,
    );
    let second = fake.body(&paths[1]);
    fake.route(
        &paths[1],
        Route::StallAfter(second.clone(), second.len() / 2),
    );

    let world = World::new();
    let name = format!("{}/killed", fake.addr);
    // One layer at a time, so the first is complete before the second stalls.
    let mut child = Command::new(env!("CARGO_BIN_EXE_minidock"))
        .arg("--root")
        .arg(world.root.path())
        .args(["pull", &name])
        .env("MINIDOCK_CONFIG", world.config.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let first_hex = paths[0].rsplit(':').next().unwrap().to_owned();
    while !(fake.stalled.load(Ordering::SeqCst) && world.blobs().contains(&first_hex)) {
        assert!(
            Instant::now() < deadline,
            "the pull never reached the stall"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();

    assert!(
        world.ok(&["images", "-q"]).is_empty(),
        "no partial image is listed"
    );
    let second_hex = paths[1].rsplit(':').next().unwrap().to_owned();
    assert!(
        !world.blobs().contains(&second_hex),
        "the half layer has no name"
    );

    fake.route(&paths[1], Route::Serve("application/octet-stream", second));
    let out = world.ok(&["pull", &name]);
    assert!(out.contains("Already exists"), "{out}");
    assert_eq!(fake.requests(&paths[0]), 1, "the complete layer was reused");
    assert_eq!(world.ok(&["images", "-q"]).lines().count(), 1);
}

/// A tar whose only entry climbs out of the layer: `../escaped`.
fn traversal_tar() -> Vec<u8> {
    let data = b"written outside the layer\n";
    let mut header = tar::Header::new_old();
    let name = b"../escaped";
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    header.set_size(data.len() as u64);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &data[..]).unwrap();
    builder.into_inner().unwrap()
}

#[test]
fn a_layer_with_a_traversal_entry_is_refused_by_the_unpacker_and_no_image_appears() {
    let fake = Fake::start();
    fake.image("traversal", &[traversal_tar()], OCI_MANIFEST);
    let world = World::new();
    let err = world.fails(&["pull", &format!("{}/traversal", fake.addr)]);
    assert!(err.contains("unpacking layer"), "{err}");
    assert!(err.contains(".."), "the error names the bad path: {err}");
    assert!(world.ok(&["images", "-q"]).is_empty());
    assert!(!world.root.path().join("escaped").exists());
    for dir in names_in(&world.root.path().join("layers")) {
        assert!(dir.ends_with(".lock"), "no unpacked layer is left: {dir}");
    }
}

#[test]
fn plain_http_is_used_only_for_localhost_and_registries_named_insecure() {
    let fake = Fake::start();
    fake.image("app", &[tar_of(&[("a", b"over plain http")])], OCI_MANIFEST);
    // 0.0.0.0:PORT reaches the fake on this machine, but it is not one of the names minidock
    // treats as local (localhost, 127.0.0.0/8, ::1): plain HTTP must be refused, loudly.
    let port = fake.addr.rsplit(':').next().unwrap();
    let remote = format!("0.0.0.0:{port}");
    let world = World::new();
    let err = world.fails(&["pull", &format!("{remote}/app")]);
    assert!(err.contains("over HTTPS"), "{err}");
    assert!(err.contains("--insecure-registry"), "{err}");
    assert!(world.ok(&["images", "-q"]).is_empty());

    // Named insecure on the command line, it is allowed...
    world.ok(&[
        "pull",
        "--insecure-registry",
        &remote,
        &format!("{remote}/app"),
    ]);
    // ...and named in config.json, too.
    fs::write(
        world.config.path().join("config.json"),
        format!(r#"{{"insecure-registries":["{remote}"]}}"#),
    )
    .unwrap();
    let again = world.ok(&["pull", &format!("{remote}/app")]);
    assert!(again.contains("Image is up to date"), "{again}");
}

// ------------------------------------------------------------------------------------------
// The Bearer token flow, with a real registry in `auth: token` mode
// ------------------------------------------------------------------------------------------

const TOKEN_SERVICE: &str = "minidock-test-registry";
const TOKEN_ISSUER: &str = "minidock-test-issuer";

/// A small token server (the role Docker Hub's auth.docker.io plays): it checks Basic
/// credentials and answers with a JWT, signed RS256 with a throwaway key (openssl), that
/// grants exactly the scope asked for. The registry verifies it with the certificate alone.
struct TokenServer {
    addr: String,
    /// The `scope` of every token request, in order ("" when none was asked).
    scopes: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    dir: tempfile::TempDir,
}

impl TokenServer {
    fn start(user: &'static str, password: &'static str) -> TokenServer {
        let dir = tempfile::Builder::new()
            .prefix("minidock-token")
            .tempdir()
            .unwrap();
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=minidock-token-test", "-keyout"])
            .arg(dir.path().join("key.pem"))
            .arg("-out")
            .arg(dir.path().join("cert.pem"))
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl req: {out:?}");
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(dir.path().join("cert.pem"))
            .output()
            .unwrap();
        assert!(der.status.success());
        use base64::Engine as _;
        let x5c = base64::engine::general_purpose::STANDARD.encode(&der.stdout);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let scopes: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop: Arc<AtomicBool> = Arc::default();
        let (log, stopped, key) = (scopes.clone(), stop.clone(), dir.path().join("key.pem"));
        let expected_auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let head = read_head(&mut stream);
                let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                let query = target.split_once('?').map_or("", |(_, q)| q).to_owned();
                let param = |name: &str| {
                    query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                        .map(percent_decode)
                        .unwrap_or_default()
                };
                let scope = param("scope");
                log.lock().unwrap().push(scope.clone());
                let authorized = head.lines().any(|l| {
                    l.to_ascii_lowercase().starts_with("authorization:")
                        && l[14..].trim() == expected_auth
                });
                if !authorized || param("service") != TOKEN_SERVICE {
                    let _ = stream.write_all(
                        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                }
                let token = sign_token(&key, &x5c, user, &scope);
                let body = format!(r#"{{"token":"{token}","expires_in":300}}"#);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenServer {
            addr,
            scopes,
            stop,
            dir,
        }
    }

    fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// A JWT (RFC 7519) in the distribution token format, signed RS256 by `openssl dgst`.
fn sign_token(key: &Path, x5c: &str, subject: &str, scope: &str) -> String {
    use base64::Engine as _;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // scope = "repository:NAME:pull,push" grants those actions on NAME.
    let access: Vec<serde_json::Value> = scope
        .split(' ')
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({
                "type": kind, "name": name,
                "actions": actions.split(',').collect::<Vec<_>>(),
            }))
        })
        .collect();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER, "sub": subject, "aud": TOKEN_SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", scope.len()), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        url.encode(header.to_string()),
        url.encode(claims.to_string())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(signing_input.as_bytes())
        .unwrap();
    let signature = child.wait_with_output().unwrap();
    assert!(signature.status.success());
    format!("{signing_input}.{}", url.encode(&signature.stdout))
}

#[test]
fn the_bearer_token_flow_against_a_registry_in_token_mode() {
    if !common::prerequisite(have("openssl", "version"), "openssl is not installed") {
        return;
    }
    let tokens = TokenServer::start("bob", "t0ken-pass");
    let Some(registry) = start_token(&tokens.realm(), &tokens.cert()) else {
        return;
    };
    let world = World::new();
    let name = registry.name("token/app:1");
    world.import(&tar_of(&[("f", b"behind a token")]), &name, &[]);

    // Anonymous: the token server refuses, and minidock says so.
    let err = world.fails(&["push", &name]);
    assert!(err.contains("refused the credentials"), "{err}");

    // A wrong password: login fails clearly, nothing stored.
    let out = world.minidock_stdin(
        &["login", "-u", "bob", "--password-stdin", &registry.addr],
        "nope\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong username or password"),
        "{out:?}"
    );
    assert!(!world.config.path().join("config.json").exists());

    let out = world.minidock_stdin(
        &["login", "-u", "bob", "--password-stdin", &registry.addr],
        "t0ken-pass\n",
    );
    assert!(out.status.success(), "{out:?}");
    world.ok(&["push", &name]);
    let other = World::new();
    fs::copy(
        world.config.path().join("config.json"),
        other.config.path().join("config.json"),
    )
    .unwrap();
    other.ok(&["pull", &name]);
    assert_eq!(
        other.inspect(&name)["RootFS"],
        world.inspect(&name)["RootFS"]
    );

    // search lists the catalog with a catalog-scoped token.
    assert_eq!(
        other.ok(&["search", "--format", "{{.Name}}", &registry.name("app")]),
        format!("{}\n", registry.name("token/app"))
    );

    // The dance, as the token server saw it: a scopeless token for `login`, a pull+push token
    // for the push, a pull token for the pull, a catalog token for the search.
    let scopes = tokens.scopes.lock().unwrap().clone();
    assert!(
        scopes.contains(&"registry:catalog:*".to_owned()),
        "{scopes:?}"
    );
    assert!(scopes.contains(&String::new()), "{scopes:?}");
    assert!(
        scopes.contains(&"repository:token/app:pull,push".to_owned()),
        "{scopes:?}"
    );
    assert!(
        scopes.contains(&"repository:token/app:pull".to_owned()),
        "{scopes:?}"
    );
}

// ------------------------------------------------------------------------------------------
// Image sizes
// ------------------------------------------------------------------------------------------

/// Docker's count of a layer's size: every entry but directories, a hard-linked file once,
/// a symlink as its target's length (lstat sizes).
fn unpacked_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current).unwrap() {
            let entry = entry.unwrap();
            let meta = fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            } else if seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    total
}

#[test]
fn an_images_size_is_its_unpacked_content_whether_imported_pulled_or_loaded() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let rootfs = common::busybox_rootfs();
    let expected = unpacked_size(rootfs.path());
    let tar = Command::new("tar")
        .arg("-C")
        .arg(rootfs.path())
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(tar.status.success());
    let name = registry.name("size/bb:1");
    let imported = World::new();
    imported.import(&tar.stdout, &name, &[]);
    imported.ok(&["push", &name]);
    let pulled = World::new();
    pulled.ok(&["pull", &name]);
    let archive = imported.root.path().join("bb.tar");
    imported.ok(&["save", "-o", archive.to_str().unwrap(), &name]);
    let loaded = World::new();
    loaded.ok(&["load", "-i", archive.to_str().unwrap()]);

    // Docker's units: three significant digits, decimal prefixes.
    let human = minidock::image::cli::human_size(expected);
    for world in [&imported, &pulled, &loaded] {
        assert_eq!(world.inspect(&name)["Size"], expected);
        let table = world.ok(&["images", &name]);
        let row = table.lines().nth(1).unwrap();
        assert_eq!(
            row.split_whitespace().last(),
            Some(human.as_str()),
            "{table}"
        );
    }
    // The blob sizes differ (gzip for import and push, plain tar in the archive): the size
    // shown is none of them.
    let compressed = imported.inspect(&name)["Descriptor"]["size"]
        .as_u64()
        .unwrap();
    assert_ne!(compressed, expected);
}

// ------------------------------------------------------------------------------------------
// References and digests
// ------------------------------------------------------------------------------------------

#[test]
fn pull_prints_the_name_asked_for_even_when_the_content_is_stored_under_another() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let source = World::new();
    let name = registry.name("ns/img:v1");
    source.import(&tar_of(&[("f", b"same content")]), &name, &[]);
    source.ok(&["push", &name]);
    let other = name.replacen("127.0.0.1", "localhost", 1);
    let world = World::new();
    world.ok(&["pull", &name]);
    let out = world.ok(&["pull", &other]);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {other}\n")),
        "{out}"
    );
    assert!(out.ends_with(&format!("\n{other}\n")), "{out}");
    let again = world.ok(&["pull", &name]);
    assert!(
        again.contains(&format!("Status: Image is up to date for {name}\n")),
        "{again}"
    );
    assert!(again.ends_with(&format!("\n{name}\n")), "{again}");
}

#[test]
fn an_index_pull_records_the_index_digest_as_docker_does() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let host_arch = oci_spec::image::Arch::default().to_string();
    let source = World::new();
    let mut entries = Vec::new();
    let mut host_id = String::new();
    for arch in [host_arch.as_str(), "s390x"] {
        let name = registry.name(&format!("multi:{arch}"));
        let id = source.import(
            &tar_of(&[("arch", arch.as_bytes())]),
            &name,
            &[
                "--platform",
                &format!("linux/{arch}"),
                "-c",
                "CMD [\"/arch\"]",
            ],
        );
        if arch == host_arch {
            host_id = id;
        }
        source.ok(&["push", &name]);
        let descriptor = source.inspect(&name)["Descriptor"].clone();
        entries.push(serde_json::json!({
            "mediaType": descriptor["mediaType"],
            "digest": descriptor["digest"],
            "size": descriptor["size"],
            "platform": {"os": "linux", "architecture": arch},
        }));
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    }))
    .unwrap();
    put_manifest(
        &registry,
        "multi",
        "v1",
        "application/vnd.oci.image.index.v1+json",
        &index,
    );
    let index_digest = sha256_digest(&index).to_string();
    let repository = registry.name("multi");
    let name = format!("{repository}:v1");

    let world = World::new();
    let out = world.ok(&["pull", &name]);
    assert!(out.contains(&format!("Digest: {index_digest}\n")), "{out}");
    // The printed digest is the one RepoDigests and images --digests show...
    assert_eq!(
        world.inspect(&name)["RepoDigests"],
        serde_json::json!([format!("{repository}@{index_digest}")])
    );
    let digests = world.ok(&["images", "--digests", "--format", "{{.Digest}}", &name]);
    assert_eq!(digests, format!("{index_digest}\n"));
    let table = world.ok(&["images", "--digests", &name]);
    assert!(table.contains(&index_digest), "{table}");
    // ...and the one the image is found by.
    let by_digest = format!("{repository}@{index_digest}");
    assert_eq!(world.inspect(&by_digest)["Id"], host_id.as_str());
    assert_eq!(
        world.ok(&["image", "inspect", "-f", "{{.Id}}", &by_digest]),
        format!("{host_id}\n")
    );
    if common::is_root() && minidock::overlay::overlay_supported() {
        let id = world.ok(&["create", &by_digest]).trim().to_owned();
        assert_eq!(
            world.ok(&["inspect", "-f", "{{.Image}} {{.Config.Image}}", &id]),
            format!("{host_id} {by_digest}\n")
        );
        world.ok(&["rm", &id]);
    }
    // A pull by that digest finds the same image.
    let pinned = World::new();
    let out = pinned.ok(&["pull", &by_digest]);
    assert!(out.contains(&format!("Digest: {index_digest}\n")), "{out}");
    assert_eq!(pinned.inspect(&by_digest)["Id"], host_id.as_str());
}

// ------------------------------------------------------------------------------------------
// Credentials stay with the registry's origin
// ------------------------------------------------------------------------------------------

/// One request as a loopback listener saw it: method, target, `Authorization` (if any).
type Seen = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

/// Blobs and manifests by digest or path, shared by the registry and its storage host.
type Stored = Arc<Mutex<HashMap<String, (String, Vec<u8>)>>>;

/// Method, target, lower-case headers and body of one request.
type Request = (String, String, HashMap<String, String>, Vec<u8>);

/// `base64("alice:secretpw")`: the only credentials the origin accepts.
const ALICE: &str = "Basic YWxpY2U6c2VjcmV0cHc=";

/// Reads one request: method, target, lower-case headers, and its `Content-Length` body.
fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let head = read_head(stream);
    let mut lines = head.split("\r\n");
    let mut words = lines.next()?.split_whitespace();
    let (method, target) = (words.next()?.to_owned(), words.next()?.to_owned());
    let headers: HashMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).ok()?;
    Some((method, target, headers, body))
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// Accepts connections on `listener` for the rest of the test, one request each, logging
/// every request in `seen` and answering it with `answer`.
fn listen(
    listener: TcpListener,
    seen: Seen,
    answer: impl Fn(&mut TcpStream, &str, &str, &HashMap<String, String>, Vec<u8>)
    + Send
    + Sync
    + 'static,
) {
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (seen, answer) = (seen.clone(), answer.clone());
            std::thread::spawn(move || {
                let Some((method, target, headers, body)) = read_request(&mut stream) else {
                    return;
                };
                let authorization = headers.get("authorization").cloned();
                seen.lock()
                    .unwrap()
                    .push((method.clone(), target.clone(), authorization));
                answer(&mut stream, &method, &target, &headers, body);
            });
        }
    });
}

/// The registry: wants `alice:secretpw` on every request, points the catalog's `Link` and
/// uploads' `Location` at `storage`, and redirects blob downloads there (307), those of
/// `denied/*` to its `/denied/`.
fn origin_answer(
    storage: String,
    stored: Stored,
) -> impl Fn(&mut TcpStream, &str, &str, &HashMap<String, String>, Vec<u8>) + Send + Sync + 'static
{
    move |stream, method, target, headers, body| {
        if headers.get("authorization").map(String::as_str) != Some(ALICE) {
            let body =
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
            let challenge = ("WWW-Authenticate", r#"Basic realm="fake""#.to_owned());
            return respond(stream, "401 Unauthorized", &[challenge], body);
        }
        let json = ("Content-Type", "application/json".to_owned());
        if target == "/v2/" {
            respond(stream, "200 OK", &[json], b"{}");
        } else if target.starts_with("/v2/_catalog") {
            let link = format!(r#"<http://{storage}/v2/_catalog?n=100&last=a%2Fbox>; rel="next""#);
            let body = br#"{"repositories":["a/box"]}"#;
            respond(stream, "200 OK", &[json, ("Link", link)], body);
        } else if target.contains("/blobs/uploads/") && method == "POST" {
            let location = ("Location", format!("http://{storage}/up/1"));
            respond(stream, "202 Accepted", &[location], b"");
        } else if let Some((_, digest)) = target.split_once("/blobs/") {
            if method == "HEAD" {
                return respond(stream, "404 Not Found", &[], b"");
            }
            let under = if target.starts_with("/v2/denied/") {
                "denied"
            } else {
                "blobs"
            };
            let location = ("Location", format!("http://{storage}/{under}/{digest}"));
            respond(stream, "307 Temporary Redirect", &[location], b"");
        } else if target.contains("/manifests/") && method == "PUT" {
            let media_type = headers.get("content-type").cloned().unwrap_or_default();
            let digest = sha256_digest(&body).to_string();
            stored
                .lock()
                .unwrap()
                .insert(target.to_owned(), (media_type, body));
            respond(
                stream,
                "201 Created",
                &[("Docker-Content-Digest", digest)],
                b"",
            );
        } else if let Some((media_type, body)) = stored.lock().unwrap().get(target).cloned() {
            let digest = ("Docker-Content-Digest", sha256_digest(&body).to_string());
            respond(
                stream,
                "200 OK",
                &[("Content-Type", media_type), digest],
                &body,
            );
        } else {
            respond(stream, "404 Not Found", &[], b"");
        }
    }
}

/// The storage host at `me`: asks for no credentials, takes uploads and serves blobs, except
/// under `/denied/`, where it answers 401 with a Bearer challenge whose realm is its own
/// `/token`.
fn storage_answer(
    me: String,
    stored: Stored,
) -> impl Fn(&mut TcpStream, &str, &str, &HashMap<String, String>, Vec<u8>) + Send + Sync + 'static
{
    move |stream, method, target, _headers, body| {
        let json = ("Content-Type", "application/json".to_owned());
        if target.starts_with("/v2/_catalog") {
            respond(stream, "200 OK", &[json], br#"{"repositories":["z/box"]}"#);
        } else if target.starts_with("/denied/") {
            let realm = format!(r#"Bearer realm="http://{me}/token",service="storage""#);
            respond(
                stream,
                "401 Unauthorized",
                &[("WWW-Authenticate", realm)],
                b"",
            );
        } else if target.starts_with("/token") {
            respond(stream, "200 OK", &[json], br#"{"token":"stolen"}"#);
        } else if let Some(query) = target.strip_prefix("/up/1?")
            && method == "PUT"
        {
            let digest = percent_decode(query.split_once("digest=").map_or("", |(_, d)| d));
            let kind = "application/octet-stream".to_owned();
            stored.lock().unwrap().insert(digest, (kind, body));
            respond(stream, "201 Created", &[], b"");
        } else if let Some(digest) = target.strip_prefix("/blobs/")
            && let Some((kind, body)) = stored.lock().unwrap().get(digest).cloned()
        {
            respond(stream, "200 OK", &[("Content-Type", kind)], &body);
        } else {
            respond(stream, "404 Not Found", &[], b"");
        }
    }
}

/// The registry and its storage host on two loopback ports, and a client logged in to the
/// registry as alice.
struct TwoOrigins {
    world: World,
    addr: String,
    at_origin: Seen,
    at_storage: Seen,
}

impl TwoOrigins {
    fn start() -> TwoOrigins {
        let (origin, storage) = (
            TcpListener::bind("127.0.0.1:0").unwrap(),
            TcpListener::bind("127.0.0.1:0").unwrap(),
        );
        let addr = origin.local_addr().unwrap().to_string();
        let storage_addr = storage.local_addr().unwrap().to_string();
        let stored = Stored::default();
        let (at_origin, at_storage) = (Seen::default(), Seen::default());
        let answer = origin_answer(storage_addr.clone(), stored.clone());
        listen(origin, at_origin.clone(), answer);
        listen(
            storage,
            at_storage.clone(),
            storage_answer(storage_addr, stored),
        );
        let world = World::new();
        let out = world.minidock_stdin(
            &["login", "-u", "alice", "--password-stdin", &addr],
            "secretpw\n",
        );
        assert!(out.status.success(), "{out:?}");
        TwoOrigins {
            world,
            addr,
            at_origin,
            at_storage,
        }
    }

    /// Another client with the same login.
    fn other_world(&self) -> World {
        let other = World::new();
        fs::copy(
            self.world.config.path().join("config.json"),
            other.config.path().join("config.json"),
        )
        .unwrap();
        other
    }

    /// Asserts the storage host saw `method prefix...` and that no request it saw carried an
    /// `Authorization`.
    fn storage_saw_without_credentials(&self, method: &str, prefix: &str) {
        let seen = self.at_storage.lock().unwrap().clone();
        assert!(
            seen.iter()
                .any(|(m, target, _)| m == method && target.starts_with(prefix)),
            "no {method} {prefix} at the storage host: {seen:?}"
        );
        for (m, target, authorization) in &seen {
            assert_eq!(authorization, &None, "{m} {target} carried credentials");
        }
    }

    /// Asserts the registry itself got alice's credentials on a manifest request.
    fn origin_got_credentials(&self) {
        let seen = self.at_origin.lock().unwrap().clone();
        assert!(
            seen.iter()
                .any(|(_, target, authorization)| target.contains("/manifests/")
                    && authorization.as_deref() == Some(ALICE)),
            "{seen:?}"
        );
    }
}

#[test]
fn search_sends_no_credentials_to_a_catalog_link_on_another_origin() {
    let two = TwoOrigins::start();
    let addr = &two.addr;
    let out = two
        .world
        .ok(&["search", "--format", "{{.Name}}", &format!("{addr}/box")]);
    assert_eq!(out, format!("{addr}/a/box\n{addr}/z/box\n"));
    two.storage_saw_without_credentials("GET", "/v2/_catalog");
    let seen = two.at_origin.lock().unwrap().clone();
    assert!(
        seen.iter().any(
            |(_, target, authorization)| target.starts_with("/v2/_catalog")
                && authorization.as_deref() == Some(ALICE)
        ),
        "{seen:?}"
    );
}

#[test]
fn push_and_pull_send_no_credentials_to_an_upload_location_or_a_blob_redirect_elsewhere() {
    let two = TwoOrigins::start();
    let name = format!("{}/private/app:1", two.addr);
    let id = two
        .world
        .import(&tar_of(&[("secret", b"data")]), &name, &[]);
    two.world.ok(&["push", &name]);
    two.storage_saw_without_credentials("PUT", "/up/1?");
    two.origin_got_credentials();

    let other = two.other_world();
    other.ok(&["pull", &name]);
    assert_eq!(other.inspect(&name)["Id"], id.as_str());
    two.storage_saw_without_credentials("GET", "/blobs/sha256:");
}

#[test]
fn a_challenge_from_where_a_blob_redirect_led_is_not_answered_with_credentials() {
    let two = TwoOrigins::start();
    let name = format!("{}/denied/app:1", two.addr);
    two.world
        .import(&tar_of(&[("secret", b"data")]), &name, &[]);
    two.world.ok(&["push", &name]);
    two.at_storage.lock().unwrap().clear();
    // The storage host answers the redirected download with its own Bearer challenge: the
    // pull fails there rather than sending alice's password to its token realm.
    let err = two.other_world().fails(&["pull", &name]);
    assert!(err.contains("unauthorized"), "{err}");
    two.storage_saw_without_credentials("GET", "/denied/");
    let seen = two.at_storage.lock().unwrap().clone();
    assert!(
        !seen
            .iter()
            .any(|(_, target, _)| target.starts_with("/token")),
        "{seen:?}"
    );
}
