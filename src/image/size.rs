//! Image and layer sizes as Docker shows them (`images` SIZE, `image inspect` `Size`,
//! `history` SIZE): the size of each layer's files once unpacked, whatever way the image
//! arrived (a compressed blob from `import` or `pull`, a plain tar from `load`).
//!
//! Docker's layer store records, for each layer, the size of the directory it unpacked to
//! (`directory.Size`: every entry but directories, a hard-linked file once, a symlink as the
//! length of its target). minidock computes the same from the unpacked layer under
//! `layers/<chain-id>/` when there is one, and otherwise from the layer's tar stream, where
//! the same rule reads: regular files by size, symlinks by target length, hard links not
//! again.

use std::collections::HashSet;
use std::fs;
use std::io::{BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};
use oci_spec::image::Descriptor;

use super::layer::Compression;
use super::store::{Image, Store};

// ANCHOR: image_size
/// The sizes of an image's layers, base first, as Docker counts them.
pub fn layer_sizes(store: &Store, image: &Image) -> Result<Vec<u64>> {
    let chain = image.chain_ids()?;
    image
        .manifest
        .layers()
        .iter()
        .zip(&chain)
        .map(|(layer, chain_id)| {
            let dir = store.layer_dir(chain_id);
            if dir.is_dir() {
                directory_size(&dir)
            } else {
                tar_size(store, layer)
            }
        })
        .collect()
}

/// An image's size as `docker images` shows it: the sum of its layers' sizes.
pub fn image_size(store: &Store, image: &Image) -> Result<u64> {
    Ok(layer_sizes(store, image)?.iter().sum())
}
// ANCHOR_END: image_size

/// Docker's `directory.Size`: the sizes of everything under `dir` but directories, each
/// inode once.
pub fn directory_size(dir: &Path) -> Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries =
            fs::read_dir(&current).with_context(|| format!("reading {}", current.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", current.display()))?;
            let meta = entry
                .metadata()
                .with_context(|| format!("lstat {}", entry.path().display()))?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.nlink() == 1 || seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

/// The same count over a layer blob's tar stream.
fn tar_size(store: &Store, layer: &Descriptor) -> Result<u64> {
    let compression = Compression::from_media_type(layer.media_type().as_ref())?;
    let blob = BufReader::new(store.open_blob(layer.digest())?);
    let plain: Box<dyn Read> = match compression {
        Compression::None => Box::new(blob),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(blob)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(blob)?),
    };
    let what = || format!("reading layer {}", layer.digest());
    let mut archive = tar::Archive::new(plain);
    let mut total = 0;
    for entry in archive.entries().with_context(what)? {
        let entry = entry.with_context(what)?;
        let header = entry.header();
        total += match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                entry.size()
            }
            tar::EntryType::Symlink => entry
                .link_name_bytes()
                .map_or(0, |target| target.len() as u64),
            _ => 0,
        };
    }
    Ok(total)
}
