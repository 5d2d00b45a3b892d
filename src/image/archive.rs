//! `minidock save` and `minidock load`: images as one tar file, in the two formats other tools
//! read.
//!
//! **The legacy `docker save` format** (`--format docker-legacy`, "docker-archive" in
//! skopeo's words; what Docker wrote up to version 24), which `docker load`,
//! `skopeo docker-archive:` and `podman load` read:
//!
//! ```text
//! manifest.json            [{"Config":"<hex>.json","RepoTags":["busybox:latest"],
//!                            "Layers":["<diff-id hex>/layer.tar", ...]}]
//! repositories             {"busybox":{"latest":"<top layer dir>"}}   (the legacy index)
//! <hex>.json               the image config, named by its digest
//! <diff-id hex>/layer.tar  each layer, *uncompressed*, named by its DiffID
//! ```
//!
//! There is no manifest in the registry's sense: the layers are plain tars, so their digests
//! are the config's DiffIDs, and a loader rebuilds a manifest from them.
//!
//! **The OCI format** (`--format oci`, skopeo's "oci-archive"): the image layout itself, the
//! same one the store keeps on disk (`oci-layout`, `index.json`, `blobs/sha256/...`), as a
//! tar. Blobs go in as they are, still compressed, so manifest digests survive the trip.
//! `index.json` names each image with containerd's `io.containerd.image.name` (the full
//! name) and OCI's `org.opencontainers.image.ref.name` (the tag).
//!
//! **Both at once** (the default, what `docker save` writes since Docker 25): the OCI layout
//! plus a `manifest.json` and `repositories` whose paths name the same blobs
//! (`"Config":"blobs/sha256/<hex>"`, `"Layers":["blobs/sha256/<hex>", ...]`), so Docker 20.10
//! loads it as its own format and every OCI tool as an oci-archive.
//!
//! `load` accepts all three, plain or compressed (gzip, bzip2, xz, zstd): an archive with
//! `index.json` and `oci-layout` is read as OCI, one with only `manifest.json` as Docker's.
//! Every blob is verified against its digest on the way in, and every layer against its
//! DiffID.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use flate2::read::MultiGzDecoder;
use oci_spec::image::{
    Descriptor, Digest, ImageConfiguration, ImageIndex, ImageManifest, ImageManifestBuilder,
    MediaType,
};
use serde::{Deserialize, Serialize};

use super::layer::Compression;
use super::reference::Reference;
use super::store::{Blob, HashingReader, Image, REF_NAME_ANNOTATION, Store, parse_digest};
use crate::cli::{quote, untrusted_error};
use crate::explain::{self, Chapter};

/// containerd's (and Docker's) annotation for an image's full name in an OCI archive; the OCI
/// `ref.name` annotation holds only the tag there.
pub const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";
/// The most entries `load` reads from an archive: a bound for hostile input.
const MAX_ENTRIES: usize = 100_000;
/// The largest config or manifest `load` reads into memory.
const MAX_JSON: u64 = 8 << 20;

/// Which archive format `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ArchiveFormat {
    /// What `docker save` writes since Docker 25: an OCI image layout that also has
    /// `manifest.json` and `repositories`, so it is both an oci-archive and a docker-archive
    #[default]
    Docker,
    /// An OCI image layout in a tar (oci-archive), without `manifest.json`
    Oci,
    /// What `docker save` wrote up to Docker 24: `<diff-id>/layer.tar`, uncompressed
    DockerLegacy,
}

/// One entry of a docker-archive `manifest.json`. Other fields (`Parent`, which Docker writes
/// for a committed image, and any later addition) are ignored, as Go's decoder in `docker
/// load` ignores them.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
    /// Written by newer Docker versions; not needed to load.
    #[serde(rename = "LayerSources", default, skip_serializing)]
    _layer_sources: Option<serde_json::Value>,
}

/// An image chosen for `save`, with the names it is saved under.
struct Selected {
    image: Image,
    names: Vec<Reference>,
}

/// Resolves the `save` arguments: each name adds itself to its image's names; an ID saves the
/// image without names (as `docker save <id>` does).
fn select(store: &Store, requested: &[String]) -> Result<Vec<Selected>> {
    let mut selected: Vec<Selected> = Vec::new();
    for name in requested {
        let image = store.resolve(name)?;
        let reference = Reference::parse(name)
            .ok()
            .filter(|reference| image.names.contains(reference));
        let slot = match selected.iter_mut().position(|s| s.image.id == image.id) {
            Some(i) => &mut selected[i],
            None => {
                selected.push(Selected {
                    image,
                    names: Vec::new(),
                });
                selected.last_mut().expect("just pushed")
            }
        };
        if let Some(reference) = reference
            && !slot.names.contains(&reference)
        {
            slot.names.push(reference);
        }
    }
    Ok(selected)
}

// ANCHOR: save
/// Writes the images named by `requested` to `out` as one tar, in `format`.
pub fn save(
    store: &Store,
    requested: &[String],
    format: ArchiveFormat,
    out: impl Write,
) -> Result<()> {
    let _lease = store.lease()?;
    let selected = select(store, requested)?;
    let mut tar = tar::Builder::new(out);
    match format {
        ArchiveFormat::Docker => {
            save_oci(store, &selected, &mut tar)?;
            save_docker_index(&selected, &mut tar)?;
        }
        ArchiveFormat::Oci => save_oci(store, &selected, &mut tar)?,
        ArchiveFormat::DockerLegacy => save_docker(store, &selected, &mut tar)?,
    }
    tar.into_inner()
        .context("finishing the archive")?
        .flush()
        .context("writing the archive")?;
    for s in &selected {
        crate::events::image_by_id(store.state_root(), &s.image.id, "save");
    }
    Ok(())
}
// ANCHOR_END: save

fn save_docker<W: Write>(
    store: &Store,
    selected: &[Selected],
    tar: &mut tar::Builder<W>,
) -> Result<()> {
    let mut written: BTreeSet<String> = BTreeSet::new();
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for Selected { image, names } in selected {
        let diff_ids = image.config.rootfs().diff_ids();
        if diff_ids.len() != image.manifest.layers().len() {
            bail!(
                "image {}: its config lists {} layers but its manifest {}",
                image.short_id(),
                diff_ids.len(),
                image.manifest.layers().len()
            );
        }
        let mut layer_paths = Vec::new();
        for (layer, diff_id) in image.manifest.layers().iter().zip(diff_ids) {
            let diff_id = parse_digest(diff_id)?;
            let dir = diff_id.digest().to_owned();
            let path = format!("{dir}/layer.tar");
            if written.insert(dir.clone()) {
                append_dir(tar, &format!("{dir}/"))?;
                append_uncompressed_layer(store, layer, &diff_id, &path, tar)?;
            }
            layer_paths.push(path);
        }
        let config_path = format!("{}.json", image.id.digest());
        if written.insert(config_path.clone()) {
            let config = store.read_blob(&image.id)?;
            append_file(
                tar,
                &config_path,
                &mut config.as_slice(),
                config.len() as u64,
            )?;
        }
        let top = layer_paths
            .last()
            .map(|p| p.trim_end_matches("/layer.tar").to_owned())
            .unwrap_or_default();
        for name in names {
            if let Some(tag) = name.tag() {
                repositories
                    .entry(name.familiar_repository())
                    .or_default()
                    .insert(tag.to_owned(), top.clone());
            }
        }
        manifest.push(DockerManifestEntry {
            config: config_path,
            repo_tags: Some(
                names
                    .iter()
                    .filter(|n| n.tag().is_some())
                    .map(Reference::familiar)
                    .collect(),
            ),
            layers: layer_paths,
            _layer_sources: None,
        });
    }
    let manifest_json = serde_json::to_vec(&manifest).context("serialising manifest.json")?;
    append_file(
        tar,
        "manifest.json",
        &mut manifest_json.as_slice(),
        manifest_json.len() as u64,
    )?;
    if !repositories.is_empty() {
        let json = serde_json::to_vec(&repositories).context("serialising repositories")?;
        append_file(tar, "repositories", &mut json.as_slice(), json.len() as u64)?;
    }
    Ok(())
}

/// `manifest.json` and `repositories` naming the blobs of an OCI layout, as Docker 25 and
/// later write them next to `index.json`: the layers stay as stored (compressed), which
/// `docker load` accepts since it decompresses each layer it reads.
fn save_docker_index<W: Write>(selected: &[Selected], tar: &mut tar::Builder<W>) -> Result<()> {
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for Selected { image, names } in selected {
        let layers = image.manifest.layers();
        if image.config.rootfs().diff_ids().len() != layers.len() {
            bail!(
                "image {}: its config lists {} layers but its manifest {}",
                image.short_id(),
                image.config.rootfs().diff_ids().len(),
                layers.len()
            );
        }
        let blob = |digest: &Digest| format!("blobs/sha256/{}", digest.digest());
        let top = layers.last().map(|l| l.digest().digest().to_owned());
        for name in names {
            if let (Some(tag), Some(top)) = (name.tag(), &top) {
                repositories
                    .entry(name.familiar_repository())
                    .or_default()
                    .insert(tag.to_owned(), top.clone());
            }
        }
        manifest.push(DockerManifestEntry {
            config: blob(&image.id),
            repo_tags: Some(
                names
                    .iter()
                    .filter(|n| n.tag().is_some())
                    .map(Reference::familiar)
                    .collect(),
            ),
            layers: layers.iter().map(|l| blob(l.digest())).collect(),
            _layer_sources: None,
        });
    }
    let manifest_json = serde_json::to_vec(&manifest).context("serialising manifest.json")?;
    append_file(
        tar,
        "manifest.json",
        &mut manifest_json.as_slice(),
        manifest_json.len() as u64,
    )?;
    if !repositories.is_empty() {
        let json = serde_json::to_vec(&repositories).context("serialising repositories")?;
        append_file(tar, "repositories", &mut json.as_slice(), json.len() as u64)?;
    }
    Ok(())
}

/// A layer blob, decompressed into a temp file (a tar header needs the size before the data)
/// while its DiffID is checked, then appended to the archive.
fn append_uncompressed_layer<W: Write>(
    store: &Store,
    layer: &Descriptor,
    diff_id: &Digest,
    path: &str,
    tar: &mut tar::Builder<W>,
) -> Result<()> {
    let compression = Compression::from_media_type(layer.media_type().as_ref())?;
    let blob = BufReader::with_capacity(256 << 10, store.open_blob(layer.digest())?);
    let mut plain = HashingReader::new(decompressor(blob, compression));
    let scratch = std::env::temp_dir();
    let mut temp = tempfile::tempfile_in(&scratch)
        .context("creating a temp file for a layer")
        .map_err(|err| crate::state::disk_full_at(err, &scratch))?;
    let size = io::copy(&mut plain, &mut temp)
        .with_context(|| format!("decompressing layer {}", layer.digest()))
        .map_err(|err| crate::state::disk_full_at(err, &scratch))?;
    let actual = plain.finish();
    if &actual.digest != diff_id {
        bail!(
            "layer {} does not match its DiffID: expected {diff_id}, got {}",
            layer.digest(),
            actual.digest
        );
    }
    temp.rewind().context("rewinding a temp file")?;
    append_file(tar, path, &mut BufReader::new(temp), size)
}

fn save_oci<W: Write>(
    store: &Store,
    selected: &[Selected],
    tar: &mut tar::Builder<W>,
) -> Result<()> {
    let mut written: BTreeSet<String> = BTreeSet::new();
    let mut entries: Vec<Descriptor> = Vec::new();
    append_dir(tar, "blobs/")?;
    append_dir(tar, "blobs/sha256/")?;
    for Selected { image, names } in selected {
        let manifest_digest = image.manifest_descriptor.digest();
        let mut blobs = vec![manifest_digest.clone(), image.id.clone()];
        blobs.extend(image.manifest.layers().iter().map(|l| l.digest().clone()));
        if is_index(image.manifest_descriptor.media_type()) {
            bail!("saving a multi-platform image as OCI is not supported");
        }
        for digest in blobs {
            if written.insert(digest.to_string()) {
                let mut file = store.open_blob(&digest)?;
                let size = file.metadata().context("reading a blob's size")?.len();
                append_file(
                    tar,
                    &format!("blobs/sha256/{}", digest.digest()),
                    &mut file,
                    size,
                )?;
            }
        }
        let plain = Descriptor::new(
            image.manifest_descriptor.media_type().clone(),
            image.manifest_descriptor.size(),
            manifest_digest.clone(),
        );
        if names.is_empty() {
            entries.push(plain.clone());
        }
        for name in names {
            let mut entry = plain.clone();
            let mut annotations =
                HashMap::from([(CONTAINERD_NAME_ANNOTATION.to_owned(), name.to_string())]);
            if let Some(tag) = name.tag() {
                annotations.insert(REF_NAME_ANNOTATION.to_owned(), tag.to_owned());
            }
            entry.set_annotations(Some(annotations));
            entries.push(entry);
        }
    }
    let index = oci_spec::image::ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(entries)
        .build()
        .context("building index.json")?;
    let index_json = serde_json::to_vec(&index).context("serialising index.json")?;
    append_file(
        tar,
        "index.json",
        &mut index_json.as_slice(),
        index_json.len() as u64,
    )?;
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    append_file(
        tar,
        "oci-layout",
        &mut layout.as_slice(),
        layout.len() as u64,
    )?;
    Ok(())
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    header.set_mtime(0);
    tar.append_data(&mut header, path, io::empty())
        .with_context(|| format!("writing {path} to the archive"))
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    data: &mut impl Read,
    size: u64,
) -> Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(size);
    header.set_mtime(0);
    tar.append_data(&mut header, path, data)
        .with_context(|| format!("writing {path} to the archive"))
}

fn decompressor<'a, R: Read + 'a>(reader: R, compression: Compression) -> Box<dyn Read + 'a> {
    match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(MultiGzDecoder::new(reader)),
        Compression::Zstd => match zstd::stream::read::Decoder::new(reader) {
            Ok(decoder) => Box::new(decoder),
            Err(err) => Box::new(FailingReader(Some(err))),
        },
    }
}

struct FailingReader(Option<io::Error>);

impl Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| io::Error::other("decompressor failed")))
    }
}

// ------------------------------------------------------------------------------------------
// load
// ------------------------------------------------------------------------------------------

/// One image `load` added: its ID and the names it got.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub id: Digest,
    pub names: Vec<Reference>,
}

/// An archive unpacked into a scratch directory: regular files and directories only. Symlinks
/// (old `docker save` links shared layers) are kept as a table, resolved inside the archive,
/// and never created on disk.
struct Extracted {
    dir: tempfile::TempDir,
    symlinks: HashMap<PathBuf, PathBuf>,
}

impl Extracted {
    /// The file an archive path names, following the archive's own symlinks.
    fn path(&self, name: &str) -> Result<PathBuf> {
        let mut rel = clean_path(name).with_context(|| format!("invalid path {}", quote(name)))?;
        for _ in 0..16 {
            match self.symlinks.get(&rel) {
                Some(target) => {
                    let base = rel.parent().unwrap_or(Path::new(""));
                    let joined = base.join(target);
                    rel = clean_path(&joined.to_string_lossy()).with_context(|| {
                        format!(
                            "the archive's symlink {} points outside the archive",
                            quote(name)
                        )
                    })?;
                }
                None => return Ok(self.dir.path().join(rel)),
            }
        }
        bail!(
            "too many levels of symlinks for {} in the archive",
            quote(name)
        )
    }

    fn open(&self, name: &str) -> Result<File> {
        let path = self.path(name)?;
        File::open(&path).with_context(|| format!("the archive has no file {}", quote(name)))
    }

    fn read_json_file(&self, name: &str) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open(name)?
            .take(MAX_JSON + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {} from the archive", quote(name)))?;
        if bytes.len() as u64 > MAX_JSON {
            bail!(
                "{} in the archive is larger than {MAX_JSON} bytes",
                quote(name)
            );
        }
        Ok(bytes)
    }

    fn exists(&self, name: &str) -> bool {
        self.path(name).is_ok_and(|p| p.is_file())
    }
}

/// A relative archive path made of normal components (`./a/b` -> `a/b`); `..`, absolute paths
/// and empty paths are refused.
fn clean_path(name: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                // Resolve `a/../b` inside the archive, but never above its root.
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

// ANCHOR: extract
/// Unpacks the archive's files into a scratch dir inside the store (same filesystem), refusing
/// entries that would land outside it.
fn extract(store: &Store, input: impl Read) -> Result<Extracted> {
    let dir = tempfile::Builder::new()
        .prefix("load-")
        .tempdir_in(store.dir().join("ingest"))
        .context("creating a scratch directory for the archive")?;
    let mut symlinks = HashMap::new();
    let mut archive = tar::Archive::new(input);
    for (count, entry) in archive
        .entries()
        .map_err(|err| untrusted_error("reading the archive", err))?
        .enumerate()
    {
        if count >= MAX_ENTRIES {
            bail!("the archive has more than {MAX_ENTRIES} entries");
        }
        let mut entry =
            entry.map_err(|err| untrusted_error("the input is not a valid tar archive", err))?;
        let Some((rel, name)) = entry_path(&entry)? else {
            continue; // "./" itself
        };
        extract_entry(&mut entry, dir.path(), rel, &name, &mut symlinks)?;
    }
    Ok(Extracted { dir, symlinks })
}
// ANCHOR_END: extract

// ANCHOR: entry_path
/// Where an archive entry goes, as a clean relative path, with its name as written (for
/// errors): None for the archive's root (`./`). An entry that climbs out of the archive, or
/// names `..` at all, is refused, even when `a/../b` would stay inside.
fn entry_path<R: Read>(entry: &tar::Entry<'_, R>) -> Result<Option<(PathBuf, String)>> {
    let raw = entry
        .path()
        .map_err(|err| untrusted_error("reading an archive path", err))?
        .into_owned();
    let name = raw.to_string_lossy().into_owned();
    let Some(rel) = clean_path(&name).filter(|p| !p.starts_with("..")) else {
        if name.trim_matches('/').trim_matches('.').is_empty() {
            return Ok(None); // "./" itself
        }
        bail!("the archive entry {} escapes the archive", quote(&name));
    };
    if raw.components().any(|c| c == Component::ParentDir) {
        bail!("the archive entry {} contains '..'", quote(&name));
    }
    Ok(Some((rel, name)))
}
// ANCHOR_END: entry_path

// ANCHOR: extract_entry
/// Writes one entry under `root`: a directory or a regular file. A symlink is not created on
/// disk but remembered in `symlinks`, to be resolved inside the archive when a path is
/// looked up; hard links, devices and fifos are refused, as an image archive has no use for
/// them.
fn extract_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    root: &Path,
    rel: PathBuf,
    name: &str,
    symlinks: &mut HashMap<PathBuf, PathBuf>,
) -> Result<()> {
    let dest = root.join(&rel);
    match entry.header().entry_type() {
        tar::EntryType::Directory => {
            fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let mut file =
                File::create(&dest).with_context(|| format!("creating {}", dest.display()))?;
            io::copy(entry, &mut file)
                .with_context(|| format!("extracting {} from the archive", quote(name)))?;
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(|err| untrusted_error("reading a symlink target", err))?
                .context("a symlink without a target")?
                .into_owned();
            symlinks.insert(rel, target);
        }
        // Hard links, devices, fifos: an image archive has no use for them.
        other => bail!(
            "the archive entry {} has an unsupported type {other:?}",
            quote(name)
        ),
    }
    Ok(())
}
// ANCHOR_END: extract_entry

/// A compression `docker load` and `docker import` recognise by an archive's first bytes
/// (moby `pkg/archive.DetectCompression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamCompression {
    Plain,
    /// RFC 1952: `1f 8b 08`.
    Gzip,
    /// `BZh`.
    Bzip2,
    /// `fd 37 7a 58 5a 00`.
    Xz,
    /// RFC 8878 frame magic `28 b5 2f fd`.
    Zstd,
}

impl StreamCompression {
    /// The compression whose magic bytes `head` starts with; anything else is a plain tar.
    pub fn sniff(head: &[u8]) -> Self {
        match head {
            [0x1f, 0x8b, 0x08, ..] => StreamCompression::Gzip,
            [b'B', b'Z', b'h', ..] => StreamCompression::Bzip2,
            [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => StreamCompression::Xz,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => StreamCompression::Zstd,
            _ => StreamCompression::Plain,
        }
    }
}

/// `input` decompressed as its first bytes say (see [`StreamCompression`]): what `docker load`
/// and `docker import` do with their input. Errors only when the input cannot be read.
pub fn decompressed<'a>(input: impl Read + 'a) -> Result<(Box<dyn Read + 'a>, StreamCompression)> {
    let mut input = io::BufReader::with_capacity(256 << 10, input);
    let head = io::BufRead::fill_buf(&mut input).context("reading the archive")?;
    let kind = StreamCompression::sniff(head);
    let (stream, name): (Box<dyn Read + 'a>, &str) = match kind {
        StreamCompression::Plain => return Ok((Box::new(input), kind)),
        StreamCompression::Gzip => (Box::new(MultiGzDecoder::new(input)), "gzip"),
        StreamCompression::Bzip2 => (
            Box::new(bzip2::bufread::MultiBzDecoder::new(input)),
            "bzip2",
        ),
        StreamCompression::Xz => (
            Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(input)),
            "xz",
        ),
        StreamCompression::Zstd => (
            Box::new(
                zstd::stream::read::Decoder::with_buffer(input)
                    .context("starting the zstd decoder")?,
            ),
            "zstd",
        ),
    };
    Ok((Box::new(NamedDecoder { stream, name }), kind))
}

/// A decoder whose errors say which compression failed (`xz data: lzma data error`).
struct NamedDecoder<'a> {
    stream: Box<dyn Read + 'a>,
    name: &'static str,
}

impl Read for NamedDecoder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::Interrupted || crate::state::is_disk_full_io(&e) {
                e
            } else {
                io::Error::new(e.kind(), format!("{} data: {e}", self.name))
            }
        })
    }
}

// ANCHOR: load
/// `docker load`: reads a docker-archive or an OCI archive, plain or compressed with gzip,
/// bzip2, xz or zstd, and adds its images to the store.
pub fn load(store: &Store, input: impl Read) -> Result<Vec<Loaded>> {
    let _lease = store.lease()?;
    let (input, _) = decompressed(input)?;
    explain::step(
        "unpack the archive into the store's ingest dir",
        || format!("tar -x -C {}/ingest/load-*", store.dir().display()),
        Chapter::Images,
    );
    let archive = extract(store, input)?;
    let loaded = if archive.exists("index.json") && archive.exists("oci-layout") {
        load_oci(store, &archive)?
    } else if archive.exists("manifest.json") {
        load_docker(store, &archive)?
    } else {
        bail!(
            "the archive has neither manifest.json (docker save) nor index.json and oci-layout (OCI): not an image archive"
        )
    };
    for l in &loaded {
        crate::events::image_by_id(store.state_root(), &l.id, "load");
    }
    Ok(loaded)
}
// ANCHOR_END: load

fn load_docker(store: &Store, archive: &Extracted) -> Result<Vec<Loaded>> {
    let bytes = archive.read_json_file("manifest.json")?;
    let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&bytes)
        .map_err(|err| untrusted_error("invalid manifest.json in the archive", err))?;
    if entries.is_empty() {
        bail!("invalid manifest.json in the archive: it lists no image");
    }
    let mut loaded = Vec::new();
    for entry in entries {
        let names = entry
            .repo_tags
            .iter()
            .flatten()
            .map(|tag| Reference::parse(tag))
            .collect::<Result<Vec<_>>>()
            .context("invalid RepoTags in manifest.json")?;
        let config_bytes = archive.read_json_file(&entry.config)?;
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes).map_err(|err| {
            untrusted_error(
                format_args!("parsing the image config {}", quote(&entry.config)),
                err,
            )
        })?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != entry.layers.len() {
            bail!(
                "invalid manifest.json in the archive: {} lists {} layers, its config {}",
                quote(&entry.config),
                entry.layers.len(),
                diff_ids.len()
            );
        }
        let mut layers = Vec::new();
        for (path, diff_id) in entry.layers.iter().zip(diff_ids) {
            layers.push(
                store_archive_layer(store, archive, path, &parse_digest(diff_id)?)
                    .with_context(|| format!("loading layer {}", quote(path)))?,
            );
        }
        let config_blob = store.put_blob(&config_bytes, None)?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config_blob.descriptor(MediaType::ImageConfig))
            .layers(layers)
            .build()
            .context("building the image manifest")?;
        let manifest_bytes = serde_json::to_vec(&manifest).context("serialising the manifest")?;
        let manifest_blob = store.put_blob(&manifest_bytes, None)?;
        store.add_image(&manifest_blob.descriptor(MediaType::ImageManifest), &names)?;
        loaded.push(Loaded {
            id: config_blob.digest,
            names,
        });
    }
    Ok(loaded)
}

/// Stores one docker-archive layer as it is (plain or compressed), after checking that its
/// uncompressed bytes hash to the DiffID the config names.
fn store_archive_layer(
    store: &Store,
    archive: &Extracted,
    path: &str,
    diff_id: &Digest,
) -> Result<Descriptor> {
    let (file, compression) = super::layer::open_blob(&archive.path(path)?)?;
    let mut plain = HashingReader::new(decompressor(BufReader::new(file), compression));
    io::copy(&mut plain, &mut io::sink()).context("reading the layer")?;
    let actual = plain.finish();
    if &actual.digest != diff_id {
        bail!(
            "the layer does not match its DiffID: expected {diff_id}, got {}",
            actual.digest
        );
    }
    let blob = store.put_blob_from(BufReader::new(archive.open(path)?), None)?;
    Ok(blob.descriptor(MediaType::from(compression.media_type())))
}

fn load_oci(store: &Store, archive: &Extracted) -> Result<Vec<Loaded>> {
    let bytes = archive.read_json_file("index.json")?;
    let index: ImageIndex = serde_json::from_slice(&bytes)
        .map_err(|err| untrusted_error("invalid index.json in the archive", err))?;
    if index.manifests().is_empty() {
        bail!("invalid index.json in the archive: it lists no image");
    }
    let mut loaded: Vec<Loaded> = Vec::new();
    for entry in index.manifests() {
        let mut manifest_descriptor = entry.clone();
        let mut manifest_bytes = copy_blob(store, archive, entry)?;
        if is_index(entry.media_type()) {
            let nested: ImageIndex = serde_json::from_slice(&manifest_bytes)
                .map_err(|err| crate::cli::untrusted_error("parsing a nested image index", err))?;
            let chosen =
                crate::registry::choose_platform(&nested, &crate::registry::Platform::host())?
                    .clone();
            manifest_bytes = copy_blob(store, archive, &chosen)?;
            manifest_descriptor = chosen;
        }
        let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|err| crate::cli::untrusted_error("parsing an image manifest", err))?;
        copy_blob(store, archive, manifest.config())?;
        for layer in manifest.layers() {
            copy_blob(store, archive, layer)?;
        }
        let names: Vec<Reference> = name_from_annotations(entry).into_iter().collect();
        let descriptor = Descriptor::new(
            manifest_descriptor.media_type().clone(),
            manifest_descriptor.size(),
            manifest_descriptor.digest().clone(),
        );
        store.add_image(&descriptor, &names)?;
        let id = manifest.config().digest().clone();
        match loaded.iter_mut().find(|l| l.id == id) {
            Some(existing) => existing.names.extend(names),
            None => loaded.push(Loaded { id, names }),
        }
    }
    Ok(loaded)
}

fn is_index(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageIndex)
        || media_type.to_string() == crate::registry::media_type::DOCKER_MANIFEST_LIST
}

/// An image's name from its index.json annotations: containerd's full name, else `ref.name`
/// when it is a full reference (a bare tag names no repository).
fn name_from_annotations(entry: &Descriptor) -> Option<Reference> {
    let annotations = entry.annotations().as_ref()?;
    if let Some(name) = annotations.get(CONTAINERD_NAME_ANNOTATION) {
        return Reference::parse(name).ok();
    }
    let name = annotations.get(REF_NAME_ANNOTATION)?;
    (name.contains('/') || name.contains(':'))
        .then(|| Reference::parse(name).ok())
        .flatten()
}

/// Copies one blob of an OCI archive into the store, verified against its descriptor; returns
/// its bytes if it is small (a manifest), else an empty vector.
fn copy_blob(store: &Store, archive: &Extracted, descriptor: &Descriptor) -> Result<Vec<u8>> {
    let digest = descriptor.digest();
    let hex = parse_digest(digest.as_ref())?.digest().to_owned();
    let path = format!("blobs/sha256/{hex}");
    let expected = Blob::of(descriptor);
    if !store.has_blob(digest) {
        store
            .put_blob_from(BufReader::new(archive.open(&path)?), Some(&expected))
            .with_context(|| format!("loading {path}"))?;
    }
    if descriptor.size() <= MAX_JSON {
        return store.read_blob(digest);
    }
    Ok(Vec::new())
}
