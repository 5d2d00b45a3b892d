//! An OCI distribution client: `pull` and `push` against any registry that speaks the OCI
//! distribution spec (the CNCF distribution registry, Docker Hub, GHCR, Harbor, ...).
//!
//! A pull is a short conversation over HTTP:
//!
//! ```text
//! GET  /v2/                                    200, or 401 + WWW-Authenticate (auth.rs)
//! GET  /v2/<name>/manifests/<tag>              the manifest, or an index of manifests
//! GET  /v2/<name>/manifests/<digest>           the manifest for our platform (from the index)
//! GET  /v2/<name>/blobs/<config digest>        the image config
//! GET  /v2/<name>/blobs/<layer digest>  x N    the layers, in parallel
//! ```
//!
//! Nothing the registry sends is trusted: every blob is named by its sha256 in the document
//! that points to it, and the store keeps a blob only after its bytes hashed to that digest
//! and had that size ([`crate::image::store::BlobWriter::commit`]). The image appears in the
//! store's index last, after all its blobs, so a pull that dies half way leaves only complete,
//! verified blobs (which the next pull reuses) and never half an image.
//!
//! A push is the same conversation the other way: `HEAD` each blob (skip what the registry
//! has), upload the others (`POST` to start, `PUT ?digest=` with the bytes), then `PUT` the
//! manifest under its tag.

pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod progress;
pub mod search;

use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::image::{Arch, Descriptor, Digest, ImageConfiguration, ImageIndex, ImageManifest};

use crate::cli::Exit;
use crate::explain::{self, Chapter};
use crate::image::layer::Compression;
use crate::image::reference::Reference;
use crate::image::store::{Blob, Image, Store, chain_ids, parse_digest, sha256_digest, short_id};
use client::{Access, Client, ClientOptions, Payload};
use progress::{Progress, ProgressReader};

/// The largest manifest or index accepted: real ones are a few KiB; a registry that sends
/// more is broken or hostile, and must not make us allocate without bound.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// The largest image config accepted (they hold the build history, so allow more).
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;
/// Layers downloaded at once (Docker's `max-concurrent-downloads` default is 3).
pub const DEFAULT_JOBS: usize = 3;
/// Docker's CLI exits 1 when a request fails.
const REQUEST_FAILED: u8 = 1;

// ANCHOR: media_types
/// The manifest formats minidock reads: OCI's and Docker's "v2 schema 2", each as a single
/// image manifest or as an index (Docker: "manifest list") of per-platform manifests.
pub mod media_type {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// What a pull asks for, in `Accept`: any of the four manifest kinds.
    pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
}
// ANCHOR_END: media_types

/// What kind of document a manifest blob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    Image,
    Index,
}

/// Classifies a manifest's media type, refusing what minidock cannot read.
pub fn manifest_kind(media_type: &str) -> Result<ManifestKind> {
    use media_type::*;
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Ok(ManifestKind::Image),
        OCI_INDEX | DOCKER_MANIFEST_LIST => Ok(ManifestKind::Index),
        "application/vnd.docker.distribution.manifest.v1+json"
        | "application/vnd.docker.distribution.manifest.v1+prettyjws" => bail!(
            "the registry sent a Docker schema 1 manifest ({media_type}), which is deprecated and unsupported: push the image again with a current tool"
        ),
        other => bail!(
            "unsupported manifest media type {}",
            crate::cli::quote(other)
        ),
    }
}

/// The media type a manifest document declares (its `mediaType` field), else what the
/// registry said in `Content-Type`.
fn declared_media_type(bytes: &[u8], content_type: Option<&str>) -> Result<String> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u32>,
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    let head: Head = serde_json::from_slice(bytes)
        .map_err(|err| crate::cli::untrusted_error("the manifest is not valid JSON", err))?;
    if head.schema_version != Some(2) {
        bail!(
            "unsupported manifest schemaVersion {:?} (only 2 is supported)",
            head.schema_version
        );
    }
    head.media_type
        .or_else(|| content_type.map(|ct| ct.split(';').next().unwrap_or(ct).trim().to_owned()))
        .filter(|mt| !mt.is_empty())
        .context("the manifest names no mediaType, and the registry sent no Content-Type")
}

// ------------------------------------------------------------------------------------------
// Platforms
// ------------------------------------------------------------------------------------------

/// `os/arch[/variant]`, as `--platform` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn parse(text: &str) -> Result<Platform> {
        let parts: Vec<&str> = text.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            bail!("invalid platform {text:?}: expected os/arch[/variant], e.g. linux/amd64");
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: parts[1].to_ascii_lowercase(),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
        })
    }

    /// The platform of this machine: linux and its CPU architecture in Go's names.
    pub fn host() -> Platform {
        Platform {
            os: "linux".to_owned(),
            architecture: Arch::default().to_string(),
            variant: None,
        }
    }

    fn matches(&self, descriptor: &Descriptor) -> bool {
        let Some(platform) = descriptor.platform() else {
            return false;
        };
        platform.os().to_string() == self.os
            && platform.architecture().to_string() == self.architecture
            && self
                .variant
                .as_ref()
                .is_none_or(|v| platform.variant().as_deref() == Some(v.as_str()))
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

// ANCHOR: choose_platform
/// Picks the manifest for `platform` from an index. Attestations and other non-image entries
/// (`unknown/unknown` platforms, which BuildKit adds) are never chosen.
pub fn choose_platform<'a>(index: &'a ImageIndex, platform: &Platform) -> Result<&'a Descriptor> {
    index
        .manifests()
        .iter()
        .find(|m| platform.matches(m))
        .ok_or_else(|| no_matching_manifest(index, platform))
}
// ANCHOR_END: choose_platform

/// The error of [`choose_platform`]: no manifest for `platform`, with the platforms the index
/// has.
fn no_matching_manifest(index: &ImageIndex, platform: &Platform) -> anyhow::Error {
    let available: Vec<String> = index
        .manifests()
        .iter()
        .filter_map(|m| m.platform().as_ref())
        .map(|p| format!("{}/{}", p.os(), p.architecture()))
        .collect();
    let available = if available.is_empty() {
        "no platforms".to_owned()
    } else {
        available.join(", ")
    };
    anyhow!("no matching manifest for {platform} in the manifest list (it has: {available})")
}

// ------------------------------------------------------------------------------------------
// Pull
// ------------------------------------------------------------------------------------------

/// How to pull.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// The platform to pick from an index; the host's by default.
    pub platform: Option<Platform>,
    pub client: ClientOptions,
    /// Layers downloaded at once (0: [`DEFAULT_JOBS`]).
    pub jobs: usize,
    /// Unpack the layers into `<root>/layers/` after the download, as `docker pull` does, so
    /// the first `run` starts at once.
    pub unpack: bool,
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub image: Image,
    /// The manifest digest the registry serves the image under (`Digest: sha256:...`).
    pub digest: Digest,
    /// Layers downloaded (the others were in the store already).
    pub downloaded: usize,
    /// False when the store already had this image under this name.
    pub changed: bool,
    /// The name the image was stored under: the reference asked for (`:latest` added).
    pub name: Reference,
}

/// A manifest as fetched: its exact bytes (the digest is over them), media type and digest.
struct Fetched {
    bytes: Vec<u8>,
    media_type: String,
    digest: Digest,
}

// ANCHOR: pull
/// `docker pull`: fetches the image's manifest (through an index, for our platform), then its
/// config and the layers the store lacks, verifying each against its digest, and names the
/// image last. A Docker Hub name goes to the mirrors first ([`pull_via_mirrors`]).
pub fn pull(
    store: &Store,
    reference: &Reference,
    options: &PullOptions,
    progress: &Progress,
) -> Result<Pulled> {
    let tag_or_digest = reference
        .digest()
        .or(reference.tag())
        .unwrap_or("latest")
        .to_owned();
    progress.line(&format!(
        "{}: Pulling from {}",
        reference.tag().unwrap_or(&tag_or_digest),
        reference.path()
    ));
    if let Some(pulled) = pull_via_mirrors(store, reference, options, progress) {
        return Ok(pulled);
    }
    let client = Client::connect(reference.domain(), &options.client)?;
    pull_from(&client, store, reference, options, progress)
}
// ANCHOR_END: pull

// ANCHOR: pull_from
/// The pull itself, from one endpoint (a registry, or a mirror of Docker Hub): the manifest,
/// the config, the layers, and last the name, each a step below.
fn pull_from(
    client: &Client,
    store: &Store,
    reference: &Reference,
    options: &PullOptions,
    progress: &Progress,
) -> Result<Pulled> {
    let repository = reference.path();
    // 1-2. The manifest, through an index for our platform when the tag names one.
    let (fetched, top_digest, manifest) = pull_manifest(client, reference, options)?;

    // From here on, blobs land in the store: hold a lease so gc does not sweep them before
    // the image names them.
    let _lease = store.lease()?;

    // 3. The config: small, fetched first, since it says how many layers to expect.
    let config = pull_config(client, repository, &manifest, store)?;

    // 4. The layers, in parallel, each unpacked as soon as it is stored; those the store
    //    has are never downloaded again.
    let downloaded = download_layers(
        client,
        repository,
        manifest.layers(),
        config.rootfs().diff_ids(),
        store,
        options,
        progress,
    )?;

    // 5-6. The manifest itself, then the name: the moment the image appears.
    name_image(store, reference, &fetched, top_digest, downloaded)
}
// ANCHOR_END: pull_from

// ANCHOR: pull_manifest
/// Steps 1 and 2: the manifest the reference names (a digest in the reference pins its
/// content) and, when that is an index, our platform's manifest, fetched by its digest.
/// Returns the manifest as fetched, the digest of the top document (the index's, if any, as
/// Docker records it) and the parsed, checked manifest.
fn pull_manifest(
    client: &Client,
    reference: &Reference,
    options: &PullOptions,
) -> Result<(Fetched, Digest, ImageManifest)> {
    let repository = reference.path();
    let tag_or_digest = reference
        .digest()
        .or(reference.tag())
        .unwrap_or("latest")
        .to_owned();
    let pinned = reference.digest().map(parse_digest).transpose()?;
    let mut fetched = fetch_manifest(client, repository, &tag_or_digest, pinned.as_ref(), None)?;
    let top_digest = fetched.digest.clone();
    if manifest_kind(&fetched.media_type)? == ManifestKind::Index {
        let index: ImageIndex = serde_json::from_slice(&fetched.bytes)
            .map_err(|err| crate::cli::untrusted_error("parsing the image index", err))?;
        let platform = options.platform.clone().unwrap_or_else(Platform::host);
        let chosen = choose_platform(&index, &platform)?;
        let expected = Blob::of(chosen);
        fetched = fetch_manifest(
            client,
            repository,
            chosen.digest().as_ref(),
            Some(&expected.digest),
            Some(expected.size),
        )?;
        if manifest_kind(&fetched.media_type)? != ManifestKind::Image {
            bail!(
                "the index entry for {platform} is itself an index: nested indexes are not supported"
            );
        }
    }
    let manifest: ImageManifest = serde_json::from_slice(&fetched.bytes)
        .map_err(|err| crate::cli::untrusted_error("parsing the image manifest", err))?;
    check_manifest(&manifest)?;
    Ok((fetched, top_digest, manifest))
}
// ANCHOR_END: pull_manifest

// ANCHOR: pull_config
/// Step 3: the image config, downloaded unless the store has it (capped at
/// [`MAX_CONFIG_BYTES`]), and checked to list as many layers as the manifest does: the two
/// documents come from the same untrusted source and must agree before any layer is fetched.
fn pull_config(
    client: &Client,
    repository: &str,
    manifest: &ImageManifest,
    store: &Store,
) -> Result<ImageConfiguration> {
    let config_descriptor = manifest.config();
    if !store.has_blob(config_descriptor.digest()) {
        if config_descriptor.size() > MAX_CONFIG_BYTES {
            bail!(
                "the image config is {} bytes, more than the {MAX_CONFIG_BYTES} accepted",
                config_descriptor.size()
            );
        }
        download_blob(client, repository, config_descriptor, store, None)
            .context("downloading the image config")?;
    }
    let config: ImageConfiguration =
        serde_json::from_slice(&store.read_blob(config_descriptor.digest())?)
            .map_err(|err| crate::cli::untrusted_error("parsing the image config", err))?;
    if config.rootfs().diff_ids().len() != manifest.layers().len() {
        bail!(
            "the image is inconsistent: its config lists {} layers, its manifest {}",
            config.rootfs().diff_ids().len(),
            manifest.layers().len()
        );
    }
    Ok(config)
}
// ANCHOR_END: pull_config

// ANCHOR: name_image
/// Steps 5 and 6, once every layer is stored (and unpacked, as `docker pull` does, so a layer
/// the safe unpacker refuses failed the pull before the image had a name): the manifest blob,
/// then the name in the store's index, the moment the image appears. Pulled through an index,
/// the name's repo digest is the index's, as Docker records it: the digest printed,
/// `RepoDigests` and `repo@digest` all agree.
fn name_image(
    store: &Store,
    reference: &Reference,
    fetched: &Fetched,
    top_digest: Digest,
    downloaded: usize,
) -> Result<Pulled> {
    let manifest_blob = Blob {
        digest: fetched.digest.clone(),
        size: fetched.bytes.len() as u64,
    };
    let descriptor = manifest_blob.descriptor(fetched.media_type.as_str().into());
    let name = match reference.tag() {
        Some(tag) => reference.with_tag(tag)?,
        None => reference.clone(),
    };
    store.put_blob(&fetched.bytes, Some(&manifest_blob))?;
    let before = store
        .resolve(&name.to_string())
        .ok()
        .map(|image| image.manifest_descriptor.digest().clone());
    explain::step(
        "name the image, now that all its blobs are stored",
        || format!("rename(index.json) naming {name} -> {}", fetched.digest),
        Chapter::Images,
    );
    store.add_image_as(&descriptor, std::slice::from_ref(&name), Some(&top_digest))?;
    let image = store.resolve(&name.to_string())?;
    let familiar = name.familiar();
    crate::events::image(store.state_root(), &familiar, &familiar, "pull");
    Ok(Pulled {
        image,
        digest: top_digest,
        downloaded,
        changed: before.as_ref() != Some(descriptor.digest()),
        name,
    })
}
// ANCHOR_END: name_image

// ANCHOR: pull_via_mirrors
/// dockerd's endpoint order for a Docker Hub name (`docker.io/...`): each of the
/// `registry-mirrors` in turn, with the same repository path (`library/busybox`). Any error
/// from a mirror (unreachable, 404, a bad blob) moves on to the next one; None when every
/// mirror failed, or the name is not Docker Hub's, and the pull goes to Docker Hub itself.
/// Blobs a failed mirror delivered were verified, and stay for the next endpoint to reuse.
pub fn pull_via_mirrors(
    store: &Store,
    reference: &Reference,
    options: &PullOptions,
    progress: &Progress,
) -> Option<Pulled> {
    if reference.domain() != crate::image::reference::DEFAULT_DOMAIN {
        return None;
    }
    for mirror in &options.client.registries.mirrors {
        let attempt = Client::connect_mirror(mirror, &options.client)
            .and_then(|client| pull_from(&client, store, reference, options, progress));
        match attempt {
            Ok(pulled) => return Some(pulled),
            Err(err) => explain::note(&format!(
                "mirror {mirror} failed, trying the next endpoint: {}",
                crate::cli::one_line(&format!("{err:#}"))
            )),
        }
    }
    None
}
// ANCHOR_END: pull_via_mirrors

// ANCHOR: fetch_manifest
/// `GET /v2/<name>/manifests/<reference>`, capped at [`MAX_MANIFEST_BYTES`], checked against
/// the digest (and size) that pointed to it, if any.
fn fetch_manifest(
    client: &Client,
    repository: &str,
    reference: &str,
    expected: Option<&Digest>,
    expected_size: Option<u64>,
) -> Result<Fetched> {
    let url = client.url(&format!("/v2/{repository}/manifests/{reference}"));
    explain::step(
        "fetch the manifest",
        || format!("GET {url}"),
        Chapter::Images,
    );
    let what = format!("fetching manifest {repository}:{reference}");
    let mut response = client.send(
        "GET",
        &url,
        repository,
        Access::Pull,
        &[("Accept", media_type::ACCEPT)],
        Payload::Empty,
    )?;
    if response.status().as_u16() != 200 {
        return Err(client.error_of(&what, response));
    }
    let header = |name: &str| {
        let value = response.headers().get(name)?;
        value.to_str().ok().map(str::to_owned)
    };
    let content_type = header("content-type");
    let announced = header("docker-content-digest");
    let bytes = read_manifest(&mut response, &what)?;
    let digest = verify_manifest(&bytes, expected, expected_size, announced, &what)?;
    let media_type =
        declared_media_type(&bytes, content_type.as_deref()).with_context(|| what.clone())?;
    manifest_kind(&media_type).with_context(|| what.clone())?;
    Ok(Fetched {
        bytes,
        media_type,
        digest,
    })
}
// ANCHOR_END: fetch_manifest

// ANCHOR: read_manifest
/// Reads a manifest's body, refusing one over [`MAX_MANIFEST_BYTES`]: at once when the
/// `Content-Length` says so, else as soon as the bytes read pass the cap. A registry decides
/// what a tag points to, but not how much memory the client spends on it.
fn read_manifest(response: &mut ureq::http::Response<ureq::Body>, what: &str) -> Result<Vec<u8>> {
    if let Some(length) = response.body().content_length()
        && length > MAX_MANIFEST_BYTES
    {
        bail!(
            "{what}: the manifest is {length} bytes, more than the {MAX_MANIFEST_BYTES} accepted"
        );
    }
    match response
        .body_mut()
        .with_config()
        .limit(MAX_MANIFEST_BYTES)
        .read_to_vec()
    {
        Ok(bytes) => Ok(bytes),
        Err(ureq::Error::BodyExceedsLimit(_)) => {
            bail!("{what}: the manifest is more than the {MAX_MANIFEST_BYTES} bytes accepted")
        }
        Err(err) => Err(err).with_context(|| what.to_owned()),
    }
}
// ANCHOR_END: read_manifest

// ANCHOR: verify_manifest
/// Hashes a manifest's bytes and holds them to every claim made about them: the digest and
/// size of the descriptor that pointed here (when fetched by digest), and the
/// `Docker-Content-Digest` the registry announced. Returns the digest.
fn verify_manifest(
    bytes: &[u8],
    expected: Option<&Digest>,
    expected_size: Option<u64>,
    announced: Option<String>,
    what: &str,
) -> Result<Digest> {
    let digest = sha256_digest(bytes);
    if let Some(expected) = expected
        && &digest != expected
    {
        bail!("{what}: digest mismatch: expected {expected}, got {digest}");
    }
    if let Some(size) = expected_size
        && bytes.len() as u64 != size
    {
        bail!(
            "{what}: size mismatch: expected {size} bytes, got {}",
            bytes.len()
        );
    }
    if let Some(announced) = announced.filter(|a| a.starts_with("sha256:"))
        && announced != digest.as_ref()
    {
        bail!(
            "{what}: the registry announced digest {announced}, but the manifest hashes to {digest}"
        );
    }
    Ok(digest)
}
// ANCHOR_END: verify_manifest

/// Refuses configs and layers minidock cannot use, before downloading anything big.
fn check_manifest(manifest: &ImageManifest) -> Result<()> {
    let config_type = manifest.config().media_type().to_string();
    if config_type != media_type::OCI_CONFIG && config_type != media_type::DOCKER_CONFIG {
        bail!(
            "unsupported config media type {}: this is not a container image",
            crate::cli::quote(config_type)
        );
    }
    for layer in manifest.layers() {
        Compression::from_media_type(layer.media_type().as_ref())?;
        if layer.urls().as_ref().is_some_and(|urls| !urls.is_empty()) {
            bail!(
                "layer {} is a foreign layer served from other URLs, which minidock does not fetch",
                layer.digest()
            );
        }
    }
    Ok(())
}

// ANCHOR: download_layers
/// Downloads the layers the store lacks, `options.jobs` at a time, on plain threads, and
/// (with `options.unpack`) unpacks each one as soon as it is stored: every layer has its own
/// directory, keyed by its ChainID, so unpacking layer 1 need not wait for layer 3 to arrive.
/// The first failure stops the others from starting new layers; blobs already verified and
/// stored stay, and the next pull skips them.
fn download_layers(
    client: &Client,
    repository: &str,
    layers: &[Descriptor],
    diff_ids: &[String],
    store: &Store,
    options: &PullOptions,
    progress: &Progress,
) -> Result<usize> {
    let chain = chain_ids(diff_ids)?;
    let work = layers_to_download(layers, store, progress);
    let count = work.iter().filter(|(_, missing)| *missing).count();
    let queue = Mutex::new(work.into_iter());
    let failed = AtomicBool::new(false);
    let errors = Mutex::new(Vec::new());
    let jobs = Some(options.jobs)
        .filter(|&j| j > 0)
        .unwrap_or(DEFAULT_JOBS);
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(layers.len()) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let Some((i, missing)) = queue.lock().expect("layer queue").next() else {
                        break;
                    };
                    let layer = &layers[i];
                    let unpack = options.unpack.then(|| (diff_ids[i].as_str(), &chain[i]));
                    let result =
                        pull_layer(client, repository, layer, store, missing, unpack, progress);
                    if let Err(err) = result {
                        failed.store(true, Ordering::Relaxed);
                        errors
                            .lock()
                            .expect("errors")
                            .push(err.context(format!("pulling layer {}", layer.digest())));
                    }
                }
            });
        }
    });
    match errors.into_inner().expect("errors").into_iter().next() {
        Some(err) => Err(err),
        None => Ok(count),
    }
}
// ANCHOR_END: download_layers

// ANCHOR: layers_to_download
/// Which layers must be downloaded, in the manifest's order, as `(index, missing)`: a layer
/// the store has (or that an earlier entry of the same manifest will bring) is announced as
/// "Already exists" and only unpacked, since a blob is named by its digest and one copy is
/// enough.
fn layers_to_download(
    layers: &[Descriptor],
    store: &Store,
    progress: &Progress,
) -> Vec<(usize, bool)> {
    let mut work: Vec<(usize, bool)> = Vec::new();
    let mut seen: Vec<&Digest> = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let missing = !store.has_blob(layer.digest()) && !seen.contains(&layer.digest());
        if !missing {
            progress.line(&format!("{}: Already exists", short_id(layer.digest())));
        }
        seen.push(layer.digest());
        work.push((i, missing));
    }
    work
}
// ANCHOR_END: layers_to_download

// ANCHOR: pull_layer
/// One layer, on its worker thread. A missing one is downloaded under its own progress bar
/// and, given its DiffID and ChainID, unpacked at once, so "Pull complete" means a usable
/// layer; one the store has is only unpacked (a no-op when its directory exists).
fn pull_layer(
    client: &Client,
    repository: &str,
    layer: &Descriptor,
    store: &Store,
    missing: bool,
    unpack: Option<(&str, &Digest)>,
    progress: &Progress,
) -> Result<()> {
    if !missing {
        return match unpack {
            Some((diff_id, chain_id)) => store.unpack_layer(layer, diff_id, chain_id).map(|_| ()),
            None => Ok(()),
        };
    }
    let bar = progress.layer(short_id(layer.digest()), "Downloading", layer.size());
    let result = download_blob(client, repository, layer, store, Some(&bar)).and_then(|()| {
        if let Some((diff_id, chain_id)) = unpack {
            bar.status("Extracting");
            store.unpack_layer(layer, diff_id, chain_id)?;
        }
        Ok(())
    });
    match &result {
        Ok(()) => bar.finish("Pull complete"),
        Err(_) => bar.fail(),
    }
    result
}
// ANCHOR_END: pull_layer

// ANCHOR: download_blob
/// `GET /v2/<name>/blobs/<digest>`, streamed into the store's blob writer, which names the
/// blob only if its bytes hash to the digest and add up to the size the manifest promised.
fn download_blob(
    client: &Client,
    repository: &str,
    descriptor: &Descriptor,
    store: &Store,
    bar: Option<&progress::LayerProgress<'_>>,
) -> Result<()> {
    let expected = Blob::of(descriptor);
    let url = client.url(&format!("/v2/{repository}/blobs/{}", expected.digest));
    explain::step(
        "download a blob into the store's ingest dir",
        || format!("GET {url}"),
        Chapter::Images,
    );
    let response = client.send("GET", &url, repository, Access::Pull, &[], Payload::Empty)?;
    if response.status().as_u16() != 200 {
        return Err(client.error_of("fetching the blob", response));
    }
    if let Some(length) = response.body().content_length()
        && length != expected.size
    {
        bail!(
            "the registry sends {length} bytes for {}, but the manifest says {}",
            expected.digest,
            expected.size
        );
    }
    // One byte more than promised is enough to know the registry sends too much.
    let body = response.into_body().into_reader().take(expected.size + 1);
    stream_blob(body, &expected, store, bar)
}
// ANCHOR_END: download_blob

// ANCHOR: stream_blob
/// Copies a blob's body into the store's ingest dir (through the progress bar, if any) and
/// commits it: only then does it get its name, and only if digest and size match. A full
/// disk is reported as such; any other failure is the connection's.
fn stream_blob(
    body: impl Read,
    expected: &Blob,
    store: &Store,
    bar: Option<&progress::LayerProgress<'_>>,
) -> Result<()> {
    let mut writer = store.blob_writer()?;
    let copied = match bar {
        Some(bar) => io::copy(
            &mut ProgressReader {
                inner: body,
                progress: bar,
            },
            &mut writer,
        ),
        None => io::copy(&mut { body }, &mut writer),
    };
    copied.map_err(|err| {
        if crate::state::is_disk_full_io(&err) {
            return anyhow::Error::new(err).context(format!("writing blob {}", expected.digest));
        }
        anyhow!(
            "the connection broke after {} of {} bytes: {err}",
            writer.size(),
            expected.size
        )
    })?;
    writer.commit(Some(expected))?;
    Ok(())
}
// ANCHOR_END: stream_blob

// ------------------------------------------------------------------------------------------
// Push
// ------------------------------------------------------------------------------------------

/// How to push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub client: ClientOptions,
    /// Blobs uploaded at once (0: [`DEFAULT_JOBS`]).
    pub jobs: usize,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: Digest,
    pub size: u64,
    /// Blobs uploaded (the others the registry had).
    pub uploaded: usize,
}

// ANCHOR: push
/// `docker push`: uploads the blobs the registry lacks, then the manifest under the tag.
pub fn push(
    store: &Store,
    source: &str,
    reference: &Reference,
    options: &PushOptions,
    progress: &Progress,
) -> Result<Pushed> {
    let _lease = store.lease()?;
    let image = store.resolve(source)?;
    let manifest_digest = image.manifest_descriptor.digest().clone();
    let manifest_bytes = store.read_blob(&manifest_digest)?;
    let media_type = declared_media_type(
        &manifest_bytes,
        Some(image.manifest_descriptor.media_type().to_string().as_str()),
    )?;
    if manifest_kind(&media_type)? != ManifestKind::Image {
        bail!("pushing an image index is not supported: push one platform's image");
    }
    let repository = reference.path();
    progress.line(&format!(
        "The push refers to repository [{}]",
        reference.familiar_repository()
    ));
    let client = Client::connect(reference.domain(), &options.client)?;

    // Layers first, config last, as Docker does: the config is what makes the blobs an image.
    let mut blobs: Vec<&Descriptor> = image.manifest.layers().iter().collect();
    blobs.push(image.manifest.config());
    let mut unique: Vec<&Descriptor> = Vec::new();
    for blob in blobs {
        if !unique.iter().any(|b| b.digest() == blob.digest()) {
            unique.push(blob);
        }
    }
    let queue = Mutex::new(unique.into_iter());
    let failed = AtomicBool::new(false);
    let errors = Mutex::new(Vec::new());
    let uploaded = Mutex::new(0usize);
    let jobs = if options.jobs == 0 {
        DEFAULT_JOBS
    } else {
        options.jobs
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let Some(blob) = queue.lock().expect("blob queue").next() else {
                        break;
                    };
                    let bar = progress.layer(short_id(blob.digest()), "Pushing", blob.size());
                    match upload_blob(&client, repository, blob, store, &bar) {
                        Ok(true) => {
                            *uploaded.lock().expect("count") += 1;
                            bar.finish("Pushed");
                        }
                        Ok(false) => bar.finish("Layer already exists"),
                        Err(err) => {
                            bar.fail();
                            failed.store(true, Ordering::Relaxed);
                            errors
                                .lock()
                                .expect("errors")
                                .push(err.context(format!("pushing blob {}", blob.digest())));
                        }
                    }
                }
            });
        }
    });
    if let Some(err) = errors.into_inner().expect("errors").into_iter().next() {
        return Err(err);
    }

    // The manifest, under the tag (or its digest): this is what creates the tag.
    let target = reference
        .tag()
        .map(str::to_owned)
        .or_else(|| reference.digest().map(str::to_owned))
        .unwrap_or_else(|| "latest".to_owned());
    let url = client.url(&format!("/v2/{repository}/manifests/{target}"));
    explain::step(
        "put the manifest under its tag",
        || format!("PUT {url}"),
        Chapter::Images,
    );
    let response = client.send(
        "PUT",
        &url,
        repository,
        Access::Push,
        &[("Content-Type", media_type.as_str())],
        Payload::Bytes(&manifest_bytes),
    )?;
    if response.status().as_u16() != 201 {
        return Err(client.error_of("putting the manifest", response));
    }
    let size = manifest_bytes.len() as u64;
    progress.line(&format!("{target}: digest: {manifest_digest} size: {size}"));
    crate::events::image(
        store.state_root(),
        &reference.familiar(),
        &reference.familiar(),
        "push",
    );
    Ok(Pushed {
        digest: manifest_digest,
        size,
        uploaded: uploaded.into_inner().expect("count"),
    })
}
// ANCHOR_END: push

// ANCHOR: upload_blob
/// Uploads one blob unless the registry has it: `HEAD` (200: skip), then a monolithic upload,
/// `POST /v2/<name>/blobs/uploads/` (202 + `Location`) and `PUT <location>?digest=<digest>`
/// with the bytes (201). The registry checks the digest itself and refuses a mismatch.
fn upload_blob(
    client: &Client,
    repository: &str,
    blob: &Descriptor,
    store: &Store,
    bar: &progress::LayerProgress<'_>,
) -> Result<bool> {
    let digest = blob.digest();
    if registry_has_blob(client, repository, digest)? {
        return Ok(false);
    }
    let location = start_upload(client, repository)?;
    let separator = if location.contains('?') { '&' } else { '?' };
    let put_url = client.url(&format!("{location}{separator}digest={digest}"));
    explain::step(
        "upload the blob in one request",
        || format!("PUT {put_url}"),
        Chapter::Images,
    );
    let file = store.open_blob(digest)?;
    let reader = ProgressReader {
        inner: io::BufReader::with_capacity(256 << 10, file),
        progress: bar,
    };
    let done = client.send(
        "PUT",
        &put_url,
        repository,
        Access::Push,
        &[("Content-Type", "application/octet-stream")],
        Payload::Stream(Box::new(reader), blob.size()),
    )?;
    if done.status().as_u16() != 201 {
        return Err(client.error_of("uploading the blob", done));
    }
    Ok(true)
}
// ANCHOR_END: upload_blob

// ANCHOR: registry_has_blob
/// `HEAD /v2/<name>/blobs/<digest>`: 200 means the repository has the blob (an earlier push
/// brought it), so its bytes need not travel; 404 means upload it.
fn registry_has_blob(client: &Client, repository: &str, digest: &Digest) -> Result<bool> {
    let head_url = client.url(&format!("/v2/{repository}/blobs/{digest}"));
    let head = client.send(
        "HEAD",
        &head_url,
        repository,
        Access::Push,
        &[],
        Payload::Empty,
    )?;
    match head.status().as_u16() {
        200 => Ok(true),
        404 => Ok(false),
        _ => Err(client.error_of("checking whether the registry has the blob", head)),
    }
}
// ANCHOR_END: registry_has_blob

// ANCHOR: start_upload
/// `POST /v2/<name>/blobs/uploads/`: the registry opens an upload session and answers 202
/// with its `Location`, the URL the bytes go to. Returns that location.
fn start_upload(client: &Client, repository: &str) -> Result<String> {
    let start_url = client.url(&format!("/v2/{repository}/blobs/uploads/"));
    explain::step(
        "start a blob upload",
        || format!("POST {start_url}"),
        Chapter::Images,
    );
    let started = client.send(
        "POST",
        &start_url,
        repository,
        Access::Push,
        &[],
        Payload::Empty,
    )?;
    if started.status().as_u16() != 202 {
        return Err(client.error_of("starting the upload", started));
    }
    let location = started
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("the registry started an upload without a Location")?;
    Ok(location.to_owned())
}
// ANCHOR_END: start_upload

/// An error for bad user input (exit 1, as Docker's CLI).
pub(crate) fn request_failed(err: anyhow::Error) -> anyhow::Error {
    if err.chain().any(|cause| cause.is::<Exit>()) {
        return err;
    }
    Exit::new(REQUEST_FAILED, format!("{err:#}")).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()),
            ("linux", "arm64", Some("v8"))
        );
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//x").is_err());
    }

    #[test]
    fn manifest_kinds_are_classified() {
        assert_eq!(
            manifest_kind(media_type::DOCKER_MANIFEST).unwrap(),
            ManifestKind::Image
        );
        assert_eq!(
            manifest_kind(media_type::OCI_INDEX).unwrap(),
            ManifestKind::Index
        );
        let err =
            manifest_kind("application/vnd.docker.distribution.manifest.v1+prettyjws").unwrap_err();
        assert!(format!("{err}").contains("schema 1"));
        assert!(manifest_kind("text/html").is_err());
    }

    #[test]
    fn an_index_yields_the_requested_platform() {
        let index: ImageIndex = serde_json::from_str(&format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[
              {{"mediaType":"{m}","size":1,"digest":"sha256:{a}","platform":{{"os":"linux","architecture":"amd64"}}}},
              {{"mediaType":"{m}","size":2,"digest":"sha256:{b}","platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}]}}"#,
            media_type::OCI_INDEX,
            m = media_type::OCI_MANIFEST,
            a = "a".repeat(64),
            b = "b".repeat(64)
        ))
        .unwrap();
        let amd64 = Platform::parse("linux/amd64").unwrap();
        assert_eq!(choose_platform(&index, &amd64).unwrap().size(), 1);
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert_eq!(choose_platform(&index, &arm64).unwrap().size(), 2);
        let err = choose_platform(&index, &Platform::parse("linux/s390x").unwrap()).unwrap_err();
        assert!(
            format!("{err}").contains("linux/amd64, linux/arm64"),
            "{err}"
        );
    }
}
