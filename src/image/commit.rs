//! `minidock commit`: a container's changes become a new image, as `docker commit` makes one.
//!
//! A container's overlay upper dir holds exactly what it changed on top of its image (see
//! [`super::layer::diff`]), so a commit is that upper dir as one more layer on the image's
//! stack:
//!
//! ```text
//! base image                    committed image
//! manifest.layers   [L1]        [L1, L2]          L2 = tar(upper/), gzip
//! rootfs.diff_ids   [D1]        [D1, D2]          D2 = sha256(tar)
//! history           [h1]        [h1, h2]          h2 = {created, created_by, author, comment}
//! config.config     {...}       {...} + -c changes
//! ```
//!
//! Nothing of the base image is rewritten: its layer blobs are shared by both manifests, which
//! is why a commit costs only the size of what the container changed.

use std::time::SystemTime;

use anyhow::{Context, Result};
use oci_spec::image::{HistoryBuilder, ImageManifestBuilder, MediaType};

use super::import::apply_change;
use super::layer::{self, Compression};
use super::reference::Reference;
use super::store::{Blob, Image, Store, parse_digest};
use crate::container::Paths;
use crate::state;

/// What `docker commit` takes besides the container and the name.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `-m`: the history comment.
    pub message: Option<String>,
    /// `-a`: the image's author (`"Ada <ada@example.com>"`).
    pub author: Option<String>,
    /// `-c`: Dockerfile instructions applied to the config (see [`apply_change`]).
    pub changes: Vec<String>,
    /// The creation time; now by default.
    pub created: Option<SystemTime>,
}

// ANCHOR: commit
/// Commits container `name_or_id` as a new image named `names` (none: untagged). Returns it.
pub fn commit(
    paths: &Paths,
    name_or_id: &str,
    names: &[Reference],
    options: &CommitOptions,
) -> Result<Image> {
    let container = paths.resolve(name_or_id)?;
    let store = Store::open(&paths.root)?;
    // Hold off garbage collection until the new image is in the index.
    let _lease = store.lease()?;
    let base = store
        .resolve(&container.image_id)
        .with_context(|| format!("the image of container {}", container.name))?;

    // The changes first: a bad -c must fail before anything is written.
    let mut image_config = base.config.clone();
    let mut config = image_config.config().clone().unwrap_or_default();
    for change in &options.changes {
        apply_change(&mut config, change)?;
    }
    image_config.set_config(Some(config));

    // 1. The layer: the upper dir as a gzip tar, streamed into the store. Docker pauses a
    //    running container (cgroup freezer) so the tar is one instant's snapshot; minidock
    //    reads the live upper dir, so a file being written meanwhile may be caught half-way.
    let upper = paths.dir(&container.id).join("upper");
    let mut writer = store.blob_writer()?;
    let digests = layer::diff(&upper, &mut writer, Compression::Gzip)
        .with_context(|| format!("making a layer of {}", upper.display()))?;
    // No change at all: Docker adds no layer, only a history entry marked `empty_layer`
    // (moby `image.NewChildImage`). The blob is dropped unwritten.
    let empty = digests.diff_id == layer::EMPTY_LAYER_DIFF_ID;
    let layer = if empty {
        None
    } else {
        Some(writer.commit(Some(&Blob {
            digest: parse_digest(&digests.digest)?,
            size: digests.size,
        }))?)
    };

    // 2. The config: one more diff_id, one more history entry, the author.
    let created = state::rfc3339(options.created.unwrap_or_else(SystemTime::now));
    let mut rootfs = image_config.rootfs().clone();
    let mut diff_ids = rootfs.diff_ids().clone();
    if !empty {
        diff_ids.push(digests.diff_id.clone());
    }
    rootfs.set_diff_ids(diff_ids);
    image_config.set_rootfs(rootfs);
    // Docker records the container's command as what created the layer.
    let mut entry = HistoryBuilder::default()
        .created(created.clone())
        .created_by(container.command());
    if empty {
        entry = entry.empty_layer(true);
    }
    if let Some(author) = &options.author {
        entry = entry.author(author.clone());
    }
    if let Some(message) = &options.message {
        entry = entry.comment(message.clone());
    }
    let mut history = image_config.history().clone().unwrap_or_default();
    history.push(entry.build().context("building the history entry")?);
    image_config.set_history(Some(history));
    image_config.set_created(Some(created));
    image_config.set_author(options.author.clone());
    let config_bytes = serde_json::to_vec(&image_config).context("serialising the image config")?;
    let config_blob = store.put_blob(&config_bytes, None)?;

    // 3. The manifest: the base's layers (the same blobs), then the new one.
    let mut layers: Vec<_> = base.manifest.layers().iter().map(oci_layer).collect();
    layers.extend(layer.map(|l| l.descriptor(MediaType::ImageLayerGzip)));
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_blob.descriptor(MediaType::ImageConfig))
        .layers(layers)
        .build()
        .context("building the image manifest")?;
    let manifest_bytes = serde_json::to_vec(&manifest).context("serialising the manifest")?;
    let manifest_blob = store.put_blob(&manifest_bytes, None)?;
    store.add_image(&manifest_blob.descriptor(MediaType::ImageManifest), names)?;
    store.resolve(config_blob.digest.as_ref())
}
// ANCHOR_END: commit

/// A base layer's descriptor for an OCI manifest. A pulled image may name its layers with
/// Docker's schema-2 media types; the bytes are the same tar (or gzip tar), so only the name
/// changes, and the new manifest does not mix the two vocabularies.
fn oci_layer(descriptor: &oci_spec::image::Descriptor) -> oci_spec::image::Descriptor {
    let media_type = match descriptor.media_type().to_string().as_str() {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => MediaType::ImageLayerGzip,
        "application/vnd.docker.image.rootfs.diff.tar" => MediaType::ImageLayer,
        _ => descriptor.media_type().clone(),
    };
    let mut descriptor = descriptor.clone();
    descriptor.set_media_type(media_type);
    descriptor
}
