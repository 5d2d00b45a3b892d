//! The local image store: an OCI image layout with a tag index.
//!
//! Everything lives under `<root>/images/`, in the on-disk format of the OCI image-layout spec,
//! so skopeo (`oci:<root>/images:busybox`), umoci and containerd can read it as is:
//!
//! ```text
//! <root>/images/
//!   oci-layout                 {"imageLayoutVersion":"1.0.0"}
//!   index.json                 the tag index: one manifest descriptor per name
//!   blobs/sha256/<hex>         every manifest, config and layer, named by its own digest
//!   ingest/                    blobs being written and `load` scratch dirs (same filesystem)
//!   index.lock, gc.lock        flock(2) lock files
//! <root>/layers/<chain-id>/    layers unpacked once, shared by containers as overlay lowers
//! ```
//!
//! **Content addressing.** A blob's name is the sha256 of its bytes. A blob is streamed to a
//! temp file in `ingest/` while its digest is computed, compared with the digest (and size) it
//! was expected to have, and only then renamed into `blobs/sha256/`. A blob under its name is
//! therefore always complete and correct; a pull that is killed half way leaves only a temp
//! file, which the next store command removes once no writer is at work ([`Store::reclaim`]).
//!
//! **The tag index** is `index.json` itself. Each name is one descriptor whose
//! `org.opencontainers.image.ref.name` annotation holds the normalised reference
//! (`docker.io/library/busybox:latest`). An image that lost its last name to a newer one (a
//! re-import under the same tag) keeps one descriptor without the annotation: Docker's
//! "dangling" `<none>:<none>` image. An image becomes visible only when its descriptor is
//! written, after all its blobs, so `images` never lists half an image.
//!
//! **Locks.** Readers take no lock: `index.json` is only ever replaced by rename(2). Writers
//! hold two flock(2) locks, always in this order:
//! - `gc.lock`, *shared*, for the whole operation ([`Store::lease`]): imports, pulls, tags and
//!   layer unpacking run side by side, but garbage collection, which takes it *exclusive*,
//!   waits until none of them is between "blob written" and "index updated" (otherwise it would
//!   delete their fresh, not yet referenced, blobs);
//! - `index.lock`, exclusive, around each read-modify-write of `index.json`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::image::{
    Arch, Descriptor, Digest, ImageConfiguration, ImageIndex, ImageIndexBuilder, ImageManifest,
    MediaType, Os,
};
use sha2::{Digest as _, Sha256};

use super::layer::{ApplyOptions, Compression, unpack_to_new_dir};
use super::reference::{Reference, is_sha256_hex};
use crate::cli::Exit;
use crate::explain::{self, Chapter};
use crate::state::{self, Lock};

/// The annotation that names a manifest in `index.json` (OCI image-layout spec).
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// The annotation of a named `index.json` entry that records the digest a registry served the
/// image under when it differs from the manifest's own: an image index's, for a pull of a
/// multi-platform image. It is the name's "repo digest", as Docker's reference store keeps it.
pub const REPO_DIGEST_ANNOTATION: &str = "io.minidock.repo.digest";
/// The image-layout version this store writes.
const LAYOUT_VERSION: &str = "1.0.0";
/// Manifests and configs are small JSON documents; refuse to load anything bigger, so a hostile
/// blob cannot make us allocate without bound.
const MAX_JSON_BLOB: u64 = 8 << 20;
/// The exit status Docker's CLI gives for "no such image" and conflicts.
const USER_ERROR: u8 = 1;

// ------------------------------------------------------------------------------------------
// Digests
// ------------------------------------------------------------------------------------------

/// Lowercase hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 15)] as char);
    }
    out
}

/// `sha256:<hex>` of a finished hasher.
pub fn finish_digest(hasher: Sha256) -> Digest {
    let text = format!("sha256:{}", hex(hasher.finalize().as_slice()));
    Digest::try_from(text).expect("a sha256 digest is always well formed")
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(bytes);
    finish_digest(hasher)
}

/// Parses `sha256:<hex>`, with a one-line error.
pub fn parse_digest(text: &str) -> Result<Digest> {
    let digest = Digest::try_from(text)
        .map_err(|err| anyhow!("invalid digest {}: {err}", crate::cli::quote(text)))?;
    sha256_hex(&digest)?;
    Ok(digest)
}

/// The hex part of a sha256 digest; the store only speaks sha256.
fn sha256_hex(digest: &Digest) -> Result<&str> {
    match digest.as_ref().strip_prefix("sha256:") {
        Some(hex) if is_sha256_hex(hex) => Ok(hex),
        _ => bail!("unsupported digest {digest} (the store only holds sha256 blobs)"),
    }
}

/// The 12-hex-digit short form Docker shows for IDs.
pub fn short_id(digest: &Digest) -> &str {
    let hex = digest.digest();
    &hex[..hex.len().min(12)]
}

// ANCHOR: chain_ids
/// The ChainID of each layer, from the layers' DiffIDs (OCI image spec, config.md "Layer
/// ChainID"). A layer's content is only meaningful on top of its parents, so an unpacked layer
/// is keyed by the identity of the whole stack below and including it:
///
/// ```text
/// ChainID(L0)       = DiffID(L0)
/// ChainID(L0..Ln)   = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))
/// ```
pub fn chain_ids(diff_ids: &[String]) -> Result<Vec<Digest>> {
    let mut chain: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let diff_id =
            parse_digest(diff_id).context("reading the image config's rootfs.diff_ids")?;
        let next = match chain.last() {
            None => diff_id,
            Some(parent) => sha256_digest(format!("{parent} {diff_id}").as_bytes()),
        };
        chain.push(next);
    }
    Ok(chain)
}
// ANCHOR_END: chain_ids

// ------------------------------------------------------------------------------------------
// The store
// ------------------------------------------------------------------------------------------

/// A blob's identity: its digest and its size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
}

impl Blob {
    /// What a descriptor promises about the blob it points to.
    pub fn of(descriptor: &Descriptor) -> Blob {
        Blob {
            digest: descriptor.digest().clone(),
            size: descriptor.size(),
        }
    }

    pub fn descriptor(&self, media_type: MediaType) -> Descriptor {
        Descriptor::new(media_type, self.size, self.digest.clone())
    }
}

/// The image store under `<root>/images/` (see the module docs).
#[derive(Debug, Clone)]
pub struct Store {
    state_root: PathBuf,
    dir: PathBuf,
}

/// A shared hold on the store: garbage collection waits while any lease is alive. Hold one
/// from the moment you rely on an image's blobs until they are referenced (by `index.json`, or
/// by a container's `config.json` naming the image).
#[derive(Debug)]
pub struct Lease {
    _lock: Lock,
}

impl Store {
    /// Opens the store under the state root, creating an empty layout on first use.
    pub fn open(state_root: &Path) -> Result<Store> {
        let store = Store {
            state_root: state_root.to_path_buf(),
            dir: state_root.join("images"),
        };
        for dir in [store.blobs_dir(), store.ingest_dir()] {
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        if !store.index_path().exists() || !store.dir.join("oci-layout").exists() {
            // Two first-time CLI calls may race here; only one may write the empty index, and
            // neither may overwrite an index the other has already filled.
            let _lock = state::lock_file(&store.dir.join("index.lock"))?;
            let layout = store.dir.join("oci-layout");
            if !layout.exists() {
                let text = format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}");
                state::write_atomic(&layout, text.as_bytes())?;
            }
            if !store.index_path().exists() {
                store.write_index(Vec::new())?;
            }
        }
        // What a killed pull, load, import or unpack left behind goes now, if no writer is at
        // work. It is someone else's mess: failing to clean it must not fail this command, and
        // `system prune` reports the same errors.
        let _ = store.reclaim();
        Ok(store)
    }

    // ANCHOR: reclaim
    /// Reclaims what killed writers left behind: temp files and `load-*` scratch dirs in
    /// `ingest/`, half-unpacked (`.*.unpacking-*`) and half-deleted layers, and temp files of
    /// `index.json`, when no writer is active. Every writer holds a [`Lease`] (a shared
    /// `gc.lock`) for as long as its leftovers-to-be exist, so `gc.lock` taken exclusively
    /// *without waiting* proves that their owners are gone (the kernel drops a killed process's
    /// flock). `None` when a writer is at work: its files are not leftovers.
    ///
    /// Blobs a killed pull had completed and verified stay, as containerd's content store keeps
    /// them: the next pull of the image reuses them. [`Store::gc`] (`system prune`, `rmi`)
    /// removes them when no image references them.
    pub fn reclaim(&self) -> Result<Option<GcReport>> {
        let Some(_exclusive) = state::try_lock_file(&self.dir.join("gc.lock"))? else {
            return Ok(None);
        };
        let mut report = GcReport::default();
        self.remove_leftovers(&mut report)?;
        report.bytes_freed += self.remove_index_temp_files()?;
        Ok(Some(report))
    }

    /// Deletes everything in `ingest/` and the layer directories whose name starts with `.`
    /// (never a complete layer). The caller holds `gc.lock` exclusively.
    fn remove_leftovers(&self, report: &mut GcReport) -> Result<()> {
        for entry in read_dir_names(&self.ingest_dir())? {
            let path = self.ingest_dir().join(entry);
            report.bytes_freed += disk_usage(&path);
            remove_any(&path)?;
        }
        for entry in read_dir_names(&self.layers_dir())? {
            if entry.starts_with('.') {
                let path = self.layers_dir().join(&entry);
                report.bytes_freed += disk_usage(&path);
                remove_any(&path)?;
            }
        }
        Ok(())
    }

    /// Removes the temp files of `index.json` writers killed before their rename, when nobody
    /// holds `index.lock` (every writer of the index holds it). Returns the bytes freed.
    fn remove_index_temp_files(&self) -> Result<u64> {
        let Some(_index) = state::try_lock_file(&self.dir.join("index.lock"))? else {
            return Ok(0);
        };
        let mut freed = 0;
        for entry in read_dir_names(&self.dir)? {
            if entry.starts_with(".tmp-") {
                let path = self.dir.join(&entry);
                freed += disk_usage(&path);
                remove_file_if_exists(&path)?;
            }
        }
        Ok(freed)
    }
    // ANCHOR_END: reclaim

    /// The state root this store belongs to (`--root`).
    pub fn state_root(&self) -> &Path {
        &self.state_root
    }

    /// `<root>/images`, the OCI image layout.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn blobs_dir(&self) -> PathBuf {
        self.dir.join("blobs").join("sha256")
    }

    fn ingest_dir(&self) -> PathBuf {
        self.dir.join("ingest")
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    /// `<root>/layers`, where layers are unpacked.
    pub fn layers_dir(&self) -> PathBuf {
        self.state_root.join("layers")
    }

    /// Where the layer with this ChainID is (or will be) unpacked. The directory is named by
    /// the hex alone: a `:` would split overlayfs's `lowerdir=a:b:c` option.
    pub fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.layers_dir().join(chain_id.digest())
    }

    /// Takes a shared lease (see [`Lease`]).
    pub fn lease(&self) -> Result<Lease> {
        Ok(Lease {
            _lock: state::lock_file_shared(&self.dir.join("gc.lock"))?,
        })
    }

    // --------------------------------------------------------------------------------------
    // Blobs
    // --------------------------------------------------------------------------------------

    /// The path of a blob (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> Result<PathBuf> {
        Ok(self.blobs_dir().join(sha256_hex(digest)?))
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_ok_and(|path| path.is_file())
    }

    /// Opens a stored blob for reading. Large blobs (layers) are not re-verified here: they
    /// were verified before being named, and the unpacker verifies the DiffID as it reads.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest)?;
        File::open(&path).with_context(|| format!("opening blob {}", path.display()))
    }

    /// Reads a small blob (a manifest or config) and checks that its bytes still hash to its
    /// name, so a corrupted store is reported rather than trusted.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest)?;
        let file = File::open(&path).with_context(|| format!("opening blob {}", path.display()))?;
        // Sized from the file, so the read takes one read(2) instead of a doubling series.
        let size = file
            .metadata()
            .map_or(0, |m| m.len())
            .min(MAX_JSON_BLOB + 1);
        let mut bytes = Vec::with_capacity(size as usize + 1);
        file.take(MAX_JSON_BLOB + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading blob {}", path.display()))?;
        if bytes.len() as u64 > MAX_JSON_BLOB {
            bail!(
                "blob {digest} is larger than {MAX_JSON_BLOB} bytes, too large for a manifest or config"
            );
        }
        let actual = sha256_digest(&bytes);
        if &actual != digest {
            bail!(
                "blob {} is corrupt: its content hashes to {actual}",
                path.display()
            );
        }
        Ok(bytes)
    }

    /// Starts writing a new blob (see [`BlobWriter`]).
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let temp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(self.ingest_dir())
            .with_context(|| format!("creating a temp file in {}", self.ingest_dir().display()))?;
        Ok(BlobWriter {
            blobs_dir: self.blobs_dir(),
            temp,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Stores a blob held in memory. With `expected`, it is stored only if it matches.
    pub fn put_blob(&self, bytes: &[u8], expected: Option<&Blob>) -> Result<Blob> {
        let mut writer = self.blob_writer()?;
        writer
            .write_all(bytes)
            .context("writing a blob to the ingest dir")?;
        writer.commit(expected)
    }

    /// Stores a blob read from a stream (a registry download, a layer being compressed). With
    /// `expected`, it is stored only if it matches.
    pub fn put_blob_from(&self, mut reader: impl Read, expected: Option<&Blob>) -> Result<Blob> {
        let mut writer = self.blob_writer()?;
        io::copy(&mut reader, &mut writer).context("streaming a blob to the ingest dir")?;
        writer.commit(expected)
    }

    // --------------------------------------------------------------------------------------
    // The tag index
    // --------------------------------------------------------------------------------------

    /// The descriptors in `index.json`. No lock: the file is only ever replaced whole.
    pub fn entries(&self) -> Result<Vec<Descriptor>> {
        let path = self.index_path();
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let index: ImageIndex = serde_json::from_slice(&bytes)
            .with_context(|| format!("parsing {}", path.display()))?;
        Ok(index.manifests().clone())
    }

    fn write_index(&self, manifests: Vec<Descriptor>) -> Result<()> {
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(manifests)
            .build()
            .context("building index.json")?;
        let mut bytes = serde_json::to_vec_pretty(&index).context("serialising index.json")?;
        bytes.push(b'\n');
        state::write_atomic(&self.index_path(), &bytes)
    }

    // ANCHOR: update_index
    /// A read-modify-write of `index.json` under `index.lock`, so parallel writers never lose
    /// each other's changes; the new index replaces the old one by rename(2).
    fn update_index<T>(&self, change: impl FnOnce(&mut Vec<Descriptor>) -> Result<T>) -> Result<T> {
        let _lock = state::lock_file(&self.dir.join("index.lock"))?;
        let mut entries = self.entries()?;
        let result = change(&mut entries)?;
        self.write_index(entries)?;
        Ok(result)
    }
    // ANCHOR_END: update_index

    // ANCHOR: add_image
    /// Makes a stored manifest visible under `names` (or as an untagged image when `names` is
    /// empty). Each name moves from whatever image it named before; an image left without any
    /// name stays in the store as untagged (`<none>`), as Docker keeps a dangling image.
    ///
    /// Call it last, after every blob of the image is stored: this is the moment the image
    /// appears. The caller holds a [`Lease`].
    pub fn add_image(&self, manifest: &Descriptor, names: &[Reference]) -> Result<()> {
        self.add_image_as(manifest, names, None)
    }
    // ANCHOR_END: add_image

    /// [`Store::add_image`] for a pull: `repo_digest` is the digest the registry served the
    /// image under (an image index's), recorded with each name.
    pub fn add_image_as(
        &self,
        manifest: &Descriptor,
        names: &[Reference],
        repo_digest: Option<&Digest>,
    ) -> Result<()> {
        self.check_complete(manifest)?;
        self.update_index(|entries| {
            let digest = manifest.digest();
            let wanted: BTreeSet<String> = names.iter().map(Reference::to_string).collect();
            let before: HashSet<Digest> = entries.iter().map(|e| e.digest().clone()).collect();
            entries.retain(|entry| ref_name(entry).is_none_or(|name| !wanted.contains(name)));
            if !names.is_empty() {
                // Named now: drop this manifest's untagged entry, if it had one.
                entries.retain(|entry| entry.digest() != digest || ref_name(entry).is_some());
            }
            // Keep an untagged entry for every image that just lost its last name.
            for lost in before {
                if &lost != digest && !entries.iter().any(|e| e.digest() == &lost) {
                    entries.push(untagged_entry(&lost, manifest.media_type(), self)?);
                }
            }
            for name in names {
                entries.push(named_entry(manifest, &name.to_string(), repo_digest));
            }
            if names.is_empty() && !entries.iter().any(|e| e.digest() == digest) {
                entries.push(Descriptor::new(
                    manifest.media_type().clone(),
                    manifest.size(),
                    digest.clone(),
                ));
            }
            Ok(())
        })
    }

    /// Refuses to index a manifest whose blobs are not all stored.
    fn check_complete(&self, manifest: &Descriptor) -> Result<()> {
        let bytes = self
            .read_blob(manifest.digest())
            .with_context(|| format!("manifest {} is not in the store", manifest.digest()))?;
        for blob in referenced_blobs(manifest.media_type(), &bytes)? {
            if !self.has_blob(&blob) {
                bail!(
                    "image {} is incomplete: blob {blob} is missing",
                    manifest.digest()
                );
            }
        }
        Ok(())
    }

    /// `docker tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        let _lease = self.lease()?;
        let image = self.resolve(source)?;
        self.add_image(&image.manifest_descriptor, std::slice::from_ref(target))?;
        let id = image.id.to_string();
        crate::events::image(&self.state_root, &id, &target.familiar(), "tag");
        Ok(())
    }

    // --------------------------------------------------------------------------------------
    // Images
    // --------------------------------------------------------------------------------------

    /// The image of an indexed manifest, with its names: only its own blobs are read, unlike
    /// a lookup by ID, which reads every image.
    pub fn image_of(&self, manifest: &Descriptor) -> Result<Image> {
        let same: Vec<Descriptor> = self
            .entries()?
            .into_iter()
            .filter(|e| e.digest() == manifest.digest())
            .collect();
        let first = same.first().cloned().unwrap_or_else(|| manifest.clone());
        self.load_image(first, &same)
    }

    /// The image indexed under the manifest `digest` in `entries` (a snapshot of
    /// [`Store::entries`]), with its names: only its own blobs are read. `None` when no entry
    /// names that manifest (the image is not in the store).
    pub fn image_by_manifest(
        &self,
        entries: &[Descriptor],
        digest: &Digest,
    ) -> Result<Option<Image>> {
        let same: Vec<Descriptor> = entries
            .iter()
            .filter(|e| e.digest() == digest)
            .cloned()
            .collect();
        match same.first() {
            Some(first) => self.load_image(first.clone(), &same).map(Some),
            None => Ok(None),
        }
    }

    /// Every image in the store, one per manifest, with its names.
    pub fn images(&self) -> Result<Vec<Image>> {
        let mut by_manifest: BTreeMap<String, (Descriptor, Vec<Descriptor>)> = BTreeMap::new();
        for entry in self.entries()? {
            let slot = by_manifest
                .entry(entry.digest().to_string())
                .or_insert_with(|| (entry.clone(), Vec::new()));
            slot.1.push(entry);
        }
        by_manifest
            .into_values()
            .map(|(descriptor, entries)| self.load_image(descriptor, &entries))
            .collect()
    }

    /// Loads the image of `descriptor`, named by the `entries` of `index.json` that point to
    /// it. Another tool may have written a name we cannot parse; it is left out rather than
    /// failing the whole listing.
    fn load_image(&self, descriptor: Descriptor, entries: &[Descriptor]) -> Result<Image> {
        let mut names = Vec::new();
        let mut repo_digests = Vec::new();
        for entry in entries {
            let Some(name) = ref_name(entry).and_then(|n| Reference::parse(n).ok()) else {
                continue;
            };
            if let Some(digest) = repo_digest(entry) {
                repo_digests.push((name.clone(), digest));
            }
            names.push(name);
        }
        let manifest_bytes = self.read_blob(descriptor.digest())?;
        let manifest = match descriptor.media_type() {
            media if is_index_media_type(media) => {
                // A multi-platform image: use the manifest for this host.
                let index: ImageIndex = serde_json::from_slice(&manifest_bytes)
                    .with_context(|| format!("parsing image index {}", descriptor.digest()))?;
                let chosen = pick_platform(&index)?;
                let bytes = self.read_blob(chosen.digest())?;
                parse_manifest(chosen.digest(), &bytes)?
            }
            _ => parse_manifest(descriptor.digest(), &manifest_bytes)?,
        };
        let config_digest = manifest.config().digest().clone();
        let config_bytes = self.read_blob(&config_digest)?;
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
            .with_context(|| format!("parsing image config {config_digest}"))?;
        let config_extra = docker_config_fields(&config_bytes);
        names.sort();
        repo_digests.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Image {
            id: config_digest,
            manifest_descriptor: descriptor,
            manifest,
            config,
            config_extra,
            names,
            repo_digests,
        })
    }

    // ANCHOR: resolve
    /// Finds an image by name (`busybox`, normalised as Docker does), by `name@sha256:...`, or
    /// by ID (`sha256:<hex>`, or a unique prefix of the hex), in that order, as Docker does.
    pub fn resolve(&self, name_or_id: &str) -> Result<Image> {
        explain::step(
            "look the image up in the store",
            || format!("read(\"{}\")", self.index_path().display()),
            Chapter::Images,
        );
        self.find(name_or_id)?
            .ok_or_else(|| no_such_image(name_or_id))
    }

    fn find(&self, name_or_id: &str) -> Result<Option<Image>> {
        let id_prefix = name_or_id.strip_prefix("sha256:");
        if id_prefix.is_none()
            && let Ok(reference) = Reference::parse(name_or_id)
        {
            // By name: only this image's blobs are read, which keeps `run` fast.
            let entries = self.entries()?;
            let wanted = reference.to_string();
            let hit = entries
                .iter()
                .find(|entry| ref_name(entry) == Some(wanted.as_str()))
                .or_else(|| {
                    // name@sha256:...: that manifest (or the index it was pulled
                    // through), if it is in this repository.
                    let digest = reference.digest()?;
                    entries.iter().find(|entry| {
                        (entry.digest().as_ref() == digest
                            || repo_digest(entry).is_some_and(|d| d.as_ref() == digest))
                            && ref_name(entry)
                                .and_then(|name| Reference::parse(name).ok())
                                .is_some_and(|name| name.repository() == reference.repository())
                    })
                });
            if let Some(entry) = hit {
                let same: Vec<Descriptor> = entries
                    .iter()
                    .filter(|other| other.digest() == entry.digest())
                    .cloned()
                    .collect();
                return self.load_image(entry.clone(), &same).map(Some);
            }
        }
        let images = self.images()?;
        let prefix = id_prefix.unwrap_or(name_or_id);
        if prefix.is_empty()
            || !prefix
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Ok(None);
        }
        let matching: Vec<&Image> = images
            .iter()
            .filter(|image| image.id.digest().starts_with(prefix))
            .collect();
        let ids: HashSet<&Digest> = matching.iter().map(|image| &image.id).collect();
        match ids.len() {
            0 => Ok(None),
            1 => Ok(Some(matching[0].clone())),
            _ => Err(anyhow::Error::new(Exit::new(
                USER_ERROR,
                format!(
                    "image ID prefix {prefix:?} is ambiguous: it matches {} images",
                    ids.len()
                ),
            ))),
        }
    }
    // ANCHOR_END: resolve

    // --------------------------------------------------------------------------------------
    // Removing images, and garbage collection
    // --------------------------------------------------------------------------------------

    // ANCHOR: remove
    /// `docker rmi`: removes one name, or the whole image when that was its last name or when
    /// it is named by ID, then collects the blobs and unpacked layers nothing references.
    ///
    /// `in_use` lists which containers use which images; it is called under the store's
    /// exclusive lock, so no container can start using an image while we decide. Without
    /// `force`, removing an image a container uses is refused; by ID, so is removing one a
    /// running container uses, even with `force` (dockerd's `cannot be forced`, 409). With
    /// `force`, its names are removed but its content stays, untagged, until no container uses
    /// it: its unpacked layers are that container's overlay lowers. (Docker does the same with
    /// its layer reference counts.)
    pub fn remove(
        &self,
        name_or_id: &str,
        force: bool,
        in_use: impl FnOnce(&Store) -> Result<Vec<ContainerUse>>,
    ) -> Result<Vec<Removed>> {
        let _exclusive = state::lock_file(&self.dir.join("gc.lock"))?;
        let image = self.resolve(name_or_id)?;
        let all_users = in_use(self)?;
        let users: Vec<&ContainerUse> = all_users
            .iter()
            .filter(|usage| usage.uses(&image))
            .collect();
        let short = short_id(&image.id).to_owned();

        // By name, and the image has other names: just untag.
        let by_name = Reference::parse(name_or_id)
            .ok()
            .filter(|reference| image.names.contains(reference));
        if let Some(reference) = &by_name
            && image.names.len() > 1
        {
            self.untag(&image, std::slice::from_ref(reference))?;
            let removed = vec![Removed::Untagged(reference.clone())];
            crate::events::images_removed(&self.state_root, &image.id, &removed);
            return Ok(removed);
        }
        // By ID, a running container's image is a conflict force does not override (moby's
        // `conflictRunningContainer`, a hard one).
        if let Some(user) = users.iter().find(|user| user.running && by_name.is_none()) {
            return Err(Exit::new(
                USER_ERROR,
                format!(
                    "conflict: unable to delete {short} (cannot be forced) - image is being used by running container {}",
                    short_container(&user.container)
                ),
            )
            .into());
        }
        if let Some(user) = users.first().filter(|_| !force) {
            // dockerd quotes the reference as it was given.
            let message = match &by_name {
                Some(_) => format!(
                    "conflict: unable to remove repository reference {name_or_id:?} (must force) - container {} is using its referenced image {short}",
                    short_container(&user.container)
                ),
                None => format!(
                    "conflict: unable to delete {short} (must be forced) - image is being used by container {}",
                    short_container(&user.container)
                ),
            };
            return Err(Exit::new(USER_ERROR, message).into());
        }
        let repositories: BTreeSet<String> =
            image.names.iter().map(Reference::repository).collect();
        if by_name.is_none() && repositories.len() > 1 && !force {
            return Err(Exit::new(
                USER_ERROR,
                format!(
                    "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                ),
            )
            .into());
        }

        let mut removed: Vec<Removed> =
            image.names.iter().cloned().map(Removed::Untagged).collect();
        // An image another one was built from stays, untagged, while that child exists.
        let has_child = self
            .parents()?
            .iter()
            .any(|(child, parent)| *parent == image.id.to_string() && self.resolve(child).is_ok());
        if has_child && image.names.is_empty() {
            return Err(Exit::new(
                USER_ERROR,
                format!(
                    "conflict: unable to delete {short} (cannot be forced) - image has dependent child images"
                ),
            )
            .into());
        }
        if has_child {
            self.untag(&image, &image.names)?;
        } else if users.is_empty() {
            let manifest = image.manifest_descriptor.digest().clone();
            self.update_index(|entries| {
                entries.retain(|entry| entry.digest() != &manifest);
                Ok(())
            })?;
            removed.push(Removed::Deleted(image.id.clone()));
            self.prune_parents(&image, &all_users, &mut removed)?;
            self.collect_garbage()?;
        } else if image.names.is_empty() {
            return Err(Exit::new(
                USER_ERROR,
                format!(
                    "unable to delete {short}: it is being used by container {} (remove the container first)",
                    short_container(&users[0].container)
                ),
            )
            .into());
        } else {
            // Forced while in use: untag, keep the content for the containers.
            self.untag(&image, &image.names)?;
        }
        crate::events::images_removed(&self.state_root, &image.id, &removed);
        Ok(removed)
    }
    // ANCHOR_END: remove

    // ANCHOR: set_parent
    /// Records `parent` as the image `child` was made from (the classic builder's step images,
    /// as moby's image store keeps a parent per image): `<store>/parents/<child hex>`.
    pub fn set_parent(&self, child: &Digest, parent: &str) -> Result<()> {
        let dir = self.dir.join("parents");
        fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        state::write_atomic_unsynced(&dir.join(sha256_hex(child)?), parent.as_bytes())
    }
    // ANCHOR_END: set_parent

    // ANCHOR: parents
    /// Every recorded parent link: child image ID to parent image ID (`sha256:<hex>`).
    pub fn parents(&self) -> Result<HashMap<String, String>> {
        let dir = self.dir.join("parents");
        let mut links = HashMap::new();
        for name in read_dir_names(&dir)? {
            if let Ok(parent) = fs::read_to_string(dir.join(&name)) {
                links.insert(format!("sha256:{name}"), parent.trim().to_owned());
            }
        }
        Ok(links)
    }
    // ANCHOR_END: parents

    // ANCHOR: prune_parents
    /// After `image` was deleted: its parent, and the parent's parent and so on, are deleted
    /// too while each is untagged, has no other child and no container uses it, as moby's
    /// `imageDeleteHelper` prunes the classic builder's intermediate images.
    fn prune_parents(
        &self,
        image: &Image,
        users: &[ContainerUse],
        removed: &mut Vec<Removed>,
    ) -> Result<()> {
        let mut links = self.parents()?;
        let mut child = image.id.to_string();
        while let Some(parent) = links.remove(&child) {
            let _ = fs::remove_file(
                self.dir
                    .join("parents")
                    .join(child.trim_start_matches("sha256:")),
            );
            let Ok(image) = self.resolve(&parent) else {
                break;
            };
            if !image.names.is_empty()
                || links
                    .iter()
                    .any(|(c, p)| *p == parent && self.resolve(c).is_ok())
                || users.iter().any(|u| u.uses(&image))
            {
                break;
            }
            let manifest = image.manifest_descriptor.digest().clone();
            self.update_index(|entries| {
                entries.retain(|entry| entry.digest() != &manifest);
                Ok(())
            })?;
            removed.push(Removed::Deleted(image.id.clone()));
            child = parent;
        }
        Ok(())
    }
    // ANCHOR_END: prune_parents

    /// Removes names from an image, keeping it as untagged if it loses its last one.
    fn untag(&self, image: &Image, names: &[Reference]) -> Result<()> {
        let names: BTreeSet<String> = names.iter().map(Reference::to_string).collect();
        let manifest = image.manifest_descriptor.clone();
        self.update_index(|entries| {
            entries.retain(|entry| ref_name(entry).is_none_or(|name| !names.contains(name)));
            if !entries.iter().any(|e| e.digest() == manifest.digest()) {
                entries.push(Descriptor::new(
                    manifest.media_type().clone(),
                    manifest.size(),
                    manifest.digest().clone(),
                ));
            }
            Ok(())
        })
    }

    /// Garbage collection under the exclusive lock: waits for every import, pull, tag and
    /// unpack in flight to finish first.
    pub fn gc(&self) -> Result<GcReport> {
        let _exclusive = state::lock_file(&self.dir.join("gc.lock"))?;
        let mut report = self.collect_garbage()?;
        report.bytes_freed += self.remove_index_temp_files()?;
        Ok(report)
    }

    // ANCHOR: gc
    /// Mark and sweep. The roots are the manifests in `index.json`; a manifest marks its config
    /// and layers (an image index, its manifests). Unmarked blobs, every temp file left in
    /// `ingest/` by a killed writer, and unpacked layers whose ChainID no image has any more are
    /// deleted. The caller holds `gc.lock` exclusively, so no writer is half way.
    fn collect_garbage(&self) -> Result<GcReport> {
        let mut marked: HashSet<Digest> = HashSet::new();
        let mut live_layers: BTreeSet<String> = BTreeSet::new();
        let mut pending: Vec<(MediaType, Digest)> = self
            .entries()?
            .iter()
            .map(|e| (e.media_type().clone(), e.digest().clone()))
            .collect();
        while let Some((media_type, digest)) = pending.pop() {
            if !marked.insert(digest.clone()) {
                continue;
            }
            let bytes = self.read_blob(&digest)?;
            if is_index_media_type(&media_type) {
                let index: ImageIndex = serde_json::from_slice(&bytes)
                    .with_context(|| format!("parsing image index {digest}"))?;
                for child in index.manifests() {
                    pending.push((child.media_type().clone(), child.digest().clone()));
                }
                continue;
            }
            let manifest = parse_manifest(&digest, &bytes)?;
            marked.insert(manifest.config().digest().clone());
            marked.extend(manifest.layers().iter().map(|l| l.digest().clone()));
            let config: ImageConfiguration = serde_json::from_slice(
                &self.read_blob(manifest.config().digest())?,
            )
            .with_context(|| format!("parsing image config {}", manifest.config().digest()))?;
            for chain_id in chain_ids(config.rootfs().diff_ids())? {
                live_layers.insert(chain_id.digest().to_owned());
            }
        }

        let mut report = GcReport::default();
        for entry in read_dir_names(&self.blobs_dir())? {
            let keep = Digest::try_from(format!("sha256:{entry}"))
                .is_ok_and(|digest| marked.contains(&digest));
            if !keep {
                let path = self.blobs_dir().join(&entry);
                report.bytes_freed += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                remove_file_if_exists(&path)?;
                report.blobs_removed.push(entry);
            }
        }
        self.remove_leftovers(&mut report)?;
        for entry in read_dir_names(&self.layers_dir())? {
            let chain = entry.strip_suffix(".lock").unwrap_or(&entry);
            if live_layers.contains(chain) {
                continue;
            }
            let path = self.layers_dir().join(&entry);
            if entry.ends_with(".lock") {
                remove_file_if_exists(&path)?;
                continue;
            }
            report.bytes_freed += disk_usage(&path);
            // Rename first, so a layer is never visible under its name half deleted.
            let doomed = self.layers_dir().join(format!(".deleting-{entry}"));
            let target = if entry.starts_with('.') {
                path
            } else {
                fs::rename(&path, &doomed)
                    .with_context(|| format!("renaming {}", path.display()))?;
                doomed
            };
            fs::remove_dir_all(&target)
                .with_context(|| format!("removing unpacked layer {}", target.display()))?;
            if !entry.starts_with('.') {
                report.layers_removed.push(entry);
            }
        }
        Ok(report)
    }
    // ANCHOR_END: gc

    // --------------------------------------------------------------------------------------
    // Unpacked layers
    // --------------------------------------------------------------------------------------

    // ANCHOR: unpacked_layers
    /// The image's layers unpacked under `<root>/layers/<chain-id>/`, base layer first (overlayfs
    /// wants `lowerdir=` top first, so reverse it there). Each layer is unpacked once, by the
    /// first container that needs it, and shared by all containers afterwards.
    pub fn unpacked_layers(&self, image: &Image) -> Result<Vec<PathBuf>> {
        let _lease = self.lease()?;
        let diff_ids = image.config.rootfs().diff_ids();
        if diff_ids.len() != image.manifest.layers().len() {
            bail!(
                "image {}: its config lists {} layers but its manifest {}",
                short_id(&image.id),
                diff_ids.len(),
                image.manifest.layers().len()
            );
        }
        let chain = chain_ids(diff_ids)?;
        let mut dirs = Vec::with_capacity(chain.len());
        for (i, chain_id) in chain.iter().enumerate() {
            dirs.push(self.unpack_layer(&image.manifest.layers()[i], &diff_ids[i], chain_id)?);
        }
        Ok(dirs)
    }
    // ANCHOR_END: unpacked_layers

    /// One layer of [`Store::unpacked_layers`], unpacked under its ChainID unless it already
    /// is. Each layer lands in its own directory, so layers can be unpacked in any order and
    /// in parallel (a pull unpacks each as soon as it is downloaded). The caller holds a lease.
    pub fn unpack_layer(
        &self,
        layer: &Descriptor,
        diff_id: &str,
        chain_id: &Digest,
    ) -> Result<PathBuf> {
        let dir = self.layer_dir(chain_id);
        if !dir.is_dir() {
            let layers_dir = self.layers_dir();
            fs::create_dir_all(&layers_dir)
                .with_context(|| format!("creating {}", layers_dir.display()))?;
            // Parallel `run`s of a new image: one unpacks, the others wait, then reuse it.
            let lock_path = layers_dir.join(format!("{}.lock", chain_id.digest()));
            let _lock = state::lock_file(&lock_path)?;
            if !dir.is_dir() {
                self.unpack_into(layer, diff_id, &dir)?;
            }
        }
        Ok(dir)
    }
}

impl Store {
    // ANCHOR: unpack_into
    /// Unpacks one layer blob into `dir` with the safe unpacker from the overlay work: applied
    /// into a temp dir beside `dir`, with overlayfs whiteouts, checked against the blob's
    /// digest and the config's DiffID, and renamed to `dir` only when all of it succeeded, so
    /// a layer directory under its ChainID is always complete. The caller holds the layer's
    /// lock and a lease.
    fn unpack_into(&self, layer: &Descriptor, diff_id: &str, dir: &Path) -> Result<()> {
        let compression = Compression::from_media_type(layer.media_type().as_ref())?;
        let blob = io::BufReader::with_capacity(256 << 10, self.open_blob(layer.digest())?);
        let options = ApplyOptions {
            expect_digest: Some(layer.digest().to_string()),
            expect_diff_id: Some(parse_digest(diff_id)?.to_string()),
            // No syncfs(2): it flushes the whole filesystem, which would dominate a pull of a
            // large image and the first `run`. Docker and containerd do not sync unpacked
            // layers either; the price is that a power cut right after an unpack can leave a
            // layer with empty files, which `rmi` and a new pull repair.
            sync: false,
            ..ApplyOptions::overlay_lower()
        };
        explain::step(
            "unpack a layer once, for all containers",
            || format!("apply({}, \"{}\")", layer.digest(), dir.display()),
            Chapter::Images,
        );
        unpack_to_new_dir(blob, compression, dir, &options)
            .with_context(|| format!("unpacking layer {}", layer.digest()))?;
        Ok(())
    }
    // ANCHOR_END: unpack_into
}

/// A blob being written: bytes go to a temp file in `ingest/` while their sha256 and size are
/// computed. [`BlobWriter::commit`] names the blob only if it matches what was expected; if the
/// writer is dropped instead (an error, a panic), the temp file is deleted.
pub struct BlobWriter {
    blobs_dir: PathBuf,
    temp: tempfile::NamedTempFile,
    hasher: Sha256,
    size: u64,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.temp.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.size += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temp.flush()
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    // ANCHOR: commit
    /// Verifies the blob against `expected` (digest and size) and only then renames it to
    /// `blobs/sha256/<hex>`. A mismatch deletes the temp file and names nothing.
    pub fn commit(self, expected: Option<&Blob>) -> Result<Blob> {
        let BlobWriter {
            blobs_dir,
            temp,
            hasher,
            size,
        } = self;
        let actual = Blob {
            digest: finish_digest(hasher),
            size,
        };
        if let Some(expected) = expected {
            verify_blob(expected, &actual)?;
        }
        let path = blobs_dir.join(actual.digest.digest());
        if path.is_file() {
            // Content-addressed: the blob we have is byte for byte the one we wrote.
            return Ok(actual);
        }
        let file = temp.as_file();
        file.set_permissions(fs::Permissions::from_mode(0o644))
            .with_context(|| format!("chmod {}", temp.path().display()))?;
        file.sync_all()
            .with_context(|| format!("fsync {}", temp.path().display()))?;
        explain::trace!(Images: "name the verified blob by its digest"
            => "rename(\"{}\", \"{}\")", temp.path().display(), path.display());
        let renaming = || format!("renaming a verified blob to {}", path.display());
        temp.persist(&path)
            .map_err(|err| err.error)
            .with_context(renaming)?;
        Ok(actual)
    }
    // ANCHOR_END: commit
}

// ANCHOR: verify_blob
/// Holds a blob's bytes, as hashed and counted while they were written, to the descriptor
/// that promised them: the digest first (what the bytes are), then the size (a blob of the
/// right hash but a wrong size means the descriptor lied).
fn verify_blob(expected: &Blob, actual: &Blob) -> Result<()> {
    if expected.digest != actual.digest {
        bail!(
            "digest mismatch: expected {}, got {} ({} bytes); the blob was not stored",
            expected.digest,
            actual.digest,
            actual.size
        );
    }
    if expected.size != actual.size {
        bail!(
            "size mismatch for {}: expected {} bytes, got {}; the blob was not stored",
            expected.digest,
            expected.size,
            actual.size
        );
    }
    Ok(())
}
// ANCHOR_END: verify_blob

/// Reads through to `inner` while hashing what passes: the unpacker and the importer use it to
/// compute a layer's DiffID (the sha256 of the uncompressed tar) on the fly.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The digest and size of everything read so far.
    pub fn finish(self) -> Blob {
        Blob {
            digest: finish_digest(self.hasher),
            size: self.size,
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// The keys of the config's `config` object that the OCI image spec defines (config.md
/// "Properties"), which [`ImageConfiguration`] reads.
const OCI_CONFIG_FIELDS: [&str; 10] = [
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "ArgsEscaped",
];

/// The fields of an image config's `config` object beyond the OCI ones (empty when the
/// bytes are not a JSON object or have none).
fn docker_config_fields(config_bytes: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    let Ok(serde_json::Value::Object(mut top)) = serde_json::from_slice(config_bytes) else {
        return serde_json::Map::new();
    };
    let Some(serde_json::Value::Object(mut config)) = top.remove("config") else {
        return serde_json::Map::new();
    };
    config.retain(|key, value| !OCI_CONFIG_FIELDS.contains(&key.as_str()) && !value.is_null());
    config
}

/// One image: a manifest, its config, and the names pointing at it.
#[derive(Debug, Clone)]
pub struct Image {
    /// The image ID, as Docker shows it: the digest of the config.
    pub id: Digest,
    /// The descriptor of the manifest in `index.json` (its digest is the "repo digest").
    pub manifest_descriptor: Descriptor,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    /// The fields of the config's `config` object that the OCI image spec does not define and
    /// Docker writes (`Healthcheck`, `OnBuild`, `Shell`, …), kept as read so a commit on top
    /// of the image writes them again.
    pub config_extra: serde_json::Map<String, serde_json::Value>,
    /// The normalised names, sorted; empty for an untagged image.
    pub names: Vec<Reference>,
    /// The names pulled through an image index, with the index's digest: their repo digest
    /// (the others' is the manifest's digest).
    pub repo_digests: Vec<(Reference, Digest)>,
}

impl Image {
    /// The 12-hex-digit ID.
    pub fn short_id(&self) -> &str {
        short_id(&self.id)
    }

    /// When the image was created, from its config.
    pub fn created(&self) -> Option<SystemTime> {
        self.config
            .created()
            .as_deref()
            .and_then(state::parse_rfc3339)
    }

    /// The content size: the config and the (compressed) layers, which is what the store holds
    /// for this image.
    pub fn size(&self) -> u64 {
        self.manifest.config().size() + self.manifest.layers().iter().map(|l| l.size()).sum::<u64>()
    }

    /// The ChainIDs of the image's layers, base first.
    pub fn chain_ids(&self) -> Result<Vec<Digest>> {
        chain_ids(self.config.rootfs().diff_ids())
    }

    /// The digest a name's registry serves this image under: the index's for a name pulled
    /// through one, else the manifest's (`RepoDigests`, `images --digests`).
    pub fn repo_digest(&self, name: Option<&Reference>) -> &Digest {
        name.and_then(|name| {
            self.repo_digests
                .iter()
                .find(|(pulled, _)| pulled == name)
                .map(|(_, digest)| digest)
        })
        .unwrap_or_else(|| self.manifest_descriptor.digest())
    }
}

/// What [`Store::remove`] did, in order, for `rmi` to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(Reference),
    Deleted(Digest),
}

/// What a garbage collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Hex digests of the blobs removed.
    pub blobs_removed: Vec<String>,
    /// ChainIDs (hex) of the unpacked layers removed.
    pub layers_removed: Vec<String>,
    pub bytes_freed: u64,
}

// ANCHOR: container_use
/// A container that uses an image, so the image cannot simply be removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerUse {
    pub container: String,
    /// The image as the container recorded it: its ID (`sha256:<hex>`, what it should record,
    /// since a name can later move to another image) or a reference.
    pub image: String,
    /// Whether the container runs (paused included, as moby's `IsRunning`): removing its
    /// image by ID is then refused even when forced.
    pub running: bool,
}

impl ContainerUse {
    fn uses(&self, image: &Image) -> bool {
        if self.image == image.id.as_ref() {
            return true;
        }
        Reference::parse(&self.image).is_ok_and(|reference| image.names.contains(&reference))
    }
}

/// The containers recorded under `<root>/containers/<id>/config.json`, with the `Image` field
/// each one names. This is the default `in_use` for [`Store::remove`]; the container layer can
/// pass its own.
pub fn containers_from_state(state_root: &Path) -> Result<Vec<ContainerUse>> {
    let paths = crate::container::Paths::new(Some(state_root));
    let dir = paths.containers();
    let mut uses = Vec::new();
    for id in read_dir_names(&dir)? {
        // A directory without state.json is a crash leftover (a failed `create`, an `rm`
        // killed half way), not a container: it uses no image.
        if !dir.join(&id).join("state.json").exists() {
            continue;
        }
        let path = dir.join(&id).join("config.json");
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        };
        // A config being written is replaced atomically, so a parse error is real damage; a
        // damaged container must not block `rmi` forever, so it is skipped.
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        if let Some(image) = value.get("Image").and_then(|v| v.as_str()) {
            let running = crate::container::state::ContainerState::load(&paths, &id)
                .ok()
                .flatten()
                .is_some_and(|state| state.observe() == crate::container::Status::Running);
            uses.push(ContainerUse {
                container: id,
                image: image.to_owned(),
                running,
            });
        }
    }
    Ok(uses)
}
// ANCHOR_END: container_use

// ------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------

fn no_such_image(name: &str) -> anyhow::Error {
    Exit::new(USER_ERROR, format!("no such image: {name}")).into()
}

fn short_container(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// The name a descriptor in `index.json` carries, if any.
pub fn ref_name(entry: &Descriptor) -> Option<&str> {
    entry
        .annotations()
        .as_ref()
        .and_then(|a| a.get(REF_NAME_ANNOTATION))
        .map(String::as_str)
}

fn named_entry(manifest: &Descriptor, name: &str, repo_digest: Option<&Digest>) -> Descriptor {
    let mut entry = Descriptor::new(
        manifest.media_type().clone(),
        manifest.size(),
        manifest.digest().clone(),
    );
    let mut annotations = HashMap::from([(REF_NAME_ANNOTATION.to_owned(), name.to_owned())]);
    if let Some(digest) = repo_digest.filter(|d| *d != manifest.digest()) {
        annotations.insert(REPO_DIGEST_ANNOTATION.to_owned(), digest.to_string());
    }
    entry.set_annotations(Some(annotations));
    entry
}

/// The repo digest recorded with a named entry ([`REPO_DIGEST_ANNOTATION`]).
fn repo_digest(entry: &Descriptor) -> Option<Digest> {
    let text = entry.annotations().as_ref()?.get(REPO_DIGEST_ANNOTATION)?;
    Digest::try_from(text.as_str()).ok()
}

/// An untagged entry for a manifest already in the store (size and media type from the blob).
fn untagged_entry(digest: &Digest, fallback: &MediaType, store: &Store) -> Result<Descriptor> {
    let bytes = store.read_blob(digest)?;
    let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(MediaType::from)
        })
        .unwrap_or_else(|| fallback.clone());
    Ok(Descriptor::new(
        media_type,
        bytes.len() as u64,
        digest.clone(),
    ))
}

fn is_index_media_type(media_type: &MediaType) -> bool {
    match media_type {
        MediaType::ImageIndex => true,
        MediaType::Other(other) => {
            other == "application/vnd.docker.distribution.manifest.list.v2+json"
        }
        _ => false,
    }
}

fn parse_manifest(digest: &Digest, bytes: &[u8]) -> Result<ImageManifest> {
    serde_json::from_slice(bytes).with_context(|| format!("parsing image manifest {digest}"))
}

/// The blobs a manifest (or image index) points to directly.
fn referenced_blobs(media_type: &MediaType, bytes: &[u8]) -> Result<Vec<Digest>> {
    if is_index_media_type(media_type) {
        let index: ImageIndex = serde_json::from_slice(bytes).context("parsing an image index")?;
        return Ok(index
            .manifests()
            .iter()
            .map(|m| m.digest().clone())
            .collect());
    }
    let manifest: ImageManifest = serde_json::from_slice(bytes).context("parsing a manifest")?;
    let mut blobs = vec![manifest.config().digest().clone()];
    blobs.extend(manifest.layers().iter().map(|l| l.digest().clone()));
    Ok(blobs)
}

/// The manifest of an index that fits this host: linux and the host's architecture.
fn pick_platform(index: &ImageIndex) -> Result<&Descriptor> {
    let arch = Arch::default();
    index
        .manifests()
        .iter()
        .find(|m| {
            m.platform()
                .as_ref()
                .is_some_and(|p| p.os() == &Os::Linux && p.architecture() == &arch)
        })
        .ok_or_else(|| anyhow!("the image index has no manifest for linux/{arch}"))
}

/// The names in a directory (empty if it does not exist).
fn read_dir_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("listing {}", dir.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// The bytes of the files under `path` (a file or a directory tree; symlinks not followed),
/// as `du --apparent-size -s` counts them; 0 for what cannot be read.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| disk_usage(&entry.path()))
                .sum()
        })
        .unwrap_or(0)
}

/// Removes a file or a directory tree; a missing one is fine.
fn remove_any(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path)
            .or_else(|err| match err.kind() {
                io::ErrorKind::NotFound => Ok(()),
                _ => Err(err),
            })
            .with_context(|| format!("removing {}", path.display())),
        Ok(_) => remove_file_if_exists(path),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

fn remove_file_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("removing {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_spec() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let chain = chain_ids(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(chain[0].as_ref(), a);
        assert_eq!(chain[1], sha256_digest(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(
            sha256_digest(b"").as_ref(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
