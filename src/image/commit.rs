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
//! config.config     {...}       container's config + -c changes
//! ```
//!
//! The new config starts from the container's own (the image's merged with the run flags:
//! `-e`, `-w`, `-u`, the command), as Docker's daemon does (`daemon/commit.go`): the changes
//! are applied over it as Dockerfile instructions, then [`merge`] fills what they left empty
//! from the container's config. A running container is paused (cgroup freezer) while its
//! upper dir is read, so the layer is one instant's snapshot.
//!
//! Nothing of the base image is rewritten: its layer blobs are shared by both manifests, which
//! is why a commit costs only the size of what the container changed.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use oci_spec::image::{HistoryBuilder, ImageManifestBuilder, MediaType};

use super::import::apply_change;
use super::layer::{self, Compression};
use super::reference::Reference;
use super::store::{Blob, Image, Store, parse_digest};
use crate::cgroup::freezer::{self, FreezerState};
use crate::container::state::{ContainerState, RunConfig};
use crate::container::{Paths, Status};
use crate::state;
use oci_spec::image::{Config, ImageConfiguration};

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
    /// `-p`/`--pause`: freeze a running container while its layer is written (Docker's
    /// default is true).
    pub pause: bool,
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

    // ANCHOR: commit_config
    // The changes first: a bad -c must fail before anything is written.
    let mut image_config = base.config.clone();
    let from = container_config(&container.config, image_config.config().as_ref());
    let mut config = from.clone();
    apply_changes(&mut config, &options.changes)?;
    merge(&mut config, &from);
    image_config.set_config(Some(config));
    // ANCHOR_END: commit_config

    // The layer is written while the container's processes are frozen (thawed again when
    // `_paused` drops, error or not).
    let _paused = if options.pause {
        Paused::freeze(&container)?
    } else {
        None
    };
    let upper = paths.dir(&container.id).join("upper");
    image_config.set_author(options.author.clone());
    let step = LayerStep {
        upper: Some(&upper),
        history: history_entry(&container, options),
        created: options.created.unwrap_or_else(SystemTime::now),
    };
    let extra = &base.config_extra;
    let layers = base.manifest.layers();
    let image = commit_layer_with(&store, layers, image_config, extra, step, names)?;
    crate::events::committed(paths, &container, &image, names, options.message.as_deref());
    Ok(image)
}
// ANCHOR_END: commit

// ANCHOR: history_entry
/// The history entry of a commit, as Docker writes it: the container's Cmd as what created
/// the layer, `-a` as its author and `-m` as its comment.
fn history_entry(container: &ContainerState, options: &CommitOptions) -> HistoryBuilder {
    let mut entry = HistoryBuilder::default().created_by(container.config.cmd.join(" "));
    if let Some(author) = &options.author {
        entry = entry.author(author.clone());
    }
    if let Some(message) = &options.message {
        entry = entry.comment(message.clone());
    }
    entry
}
// ANCHOR_END: history_entry

// ANCHOR: layer_step
/// One layer's worth of [`commit_layer`]: the upper dir holding the changes (`None`: none),
/// the history entry (its `created` and `empty_layer` are filled in) and the creation time.
pub struct LayerStep<'a> {
    pub upper: Option<&'a Path>,
    pub history: HistoryBuilder,
    pub created: SystemTime,
}
// ANCHOR_END: layer_step

// ANCHOR: commit_layer
/// Writes an image made of `base_layers` (the base manifest's layer descriptors), plus the
/// upper dir of `step` as one more gzip layer when it holds any change, with `image_config`
/// as its config (one more diff_id and history entry added). No change adds no layer, only a
/// history entry marked `empty_layer`, as Docker's `image.NewChildImage`. Names it `names`
/// and returns it. Errors: the upper dir unreadable, the store unwritable.
pub fn commit_layer(
    store: &Store,
    base_layers: &[oci_spec::image::Descriptor],
    image_config: ImageConfiguration,
    step: LayerStep,
    names: &[Reference],
) -> Result<Image> {
    let none = serde_json::Map::new();
    commit_layer_with(store, base_layers, image_config, &none, step, names)
}
// ANCHOR_END: commit_layer

// ANCHOR: commit_layer_with
/// [`commit_layer`] with `extra` (Docker's fields beyond the OCI ones, as
/// [`Image::config_extra`] holds them) written into the config's `config` object too.
pub fn commit_layer_with(
    store: &Store,
    base_layers: &[oci_spec::image::Descriptor],
    mut image_config: ImageConfiguration,
    extra: &serde_json::Map<String, serde_json::Value>,
    step: LayerStep,
    names: &[Reference],
) -> Result<Image> {
    // 1. The layer: the upper dir as a gzip tar, streamed into the store.
    let layer = match step.upper {
        Some(upper) => diff_layer(store, upper)?,
        None => None,
    };
    // 2. The config: one more diff_id, one more history entry.
    let diff_id = layer.as_ref().map(|(_, diff_id)| diff_id.clone());
    record_layer(&mut image_config, diff_id, step.history, step.created)?;
    let config_bytes = config_json(&image_config, extra)?;
    let config_blob = store.put_blob(&config_bytes, None)?;
    // 3. The manifest: the base's layers (the same blobs), then the new one.
    let layer = layer.map(|(blob, _)| blob);
    let manifest = write_manifest(store, base_layers, &config_blob, layer)?;
    store.add_image(&manifest, names)?;
    store.image_of(&manifest)
}
// ANCHOR_END: commit_layer_with

// ANCHOR: diff_layer
/// Step 1: the upper dir as a gzip tar, streamed into the store and named by its digest.
/// Returns the blob and its DiffID, or None when the upper dir holds no change at all: then
/// the blob is dropped unwritten, and the image gets no layer.
fn diff_layer(store: &Store, upper: &Path) -> Result<Option<(Blob, String)>> {
    if upper
        .parent()
        .is_some_and(|dir| crate::overlay::is_copied(&dir.join("work")))
    {
        bail!(
            "the container runs on a copy of its layers (overlay was refused in this user \
             namespace), so its changes are not in a layer: commit is not supported"
        );
    }
    let mut writer = store.blob_writer()?;
    let digests = layer::diff(upper, &mut writer, Compression::Gzip)
        .with_context(|| format!("making a layer of {}", upper.display()))?;
    // No change at all: the blob is dropped unwritten.
    if digests.diff_id == layer::EMPTY_LAYER_DIFF_ID {
        return Ok(None);
    }
    let blob = writer.commit(Some(&Blob {
        digest: parse_digest(&digests.digest)?,
        size: digests.size,
    }))?;
    Ok(Some((blob, digests.diff_id)))
}
// ANCHOR_END: diff_layer

// ANCHOR: record_layer
/// Step 2: the config records the layer. Its DiffID goes at the end of `rootfs.diff_ids`
/// and a history entry at the end of `history`, both stamped `created`; without a layer,
/// the entry is marked `empty_layer`, so the n-th non-empty entry still goes with the n-th
/// layer.
fn record_layer(
    image_config: &mut ImageConfiguration,
    diff_id: Option<String>,
    history: HistoryBuilder,
    created: SystemTime,
) -> Result<()> {
    let created = state::rfc3339(created);
    let mut rootfs = image_config.rootfs().clone();
    let mut diff_ids = rootfs.diff_ids().clone();
    let mut entry = history.created(created.clone());
    match diff_id {
        Some(diff_id) => diff_ids.push(diff_id),
        None => entry = entry.empty_layer(true),
    }
    rootfs.set_diff_ids(diff_ids);
    image_config.set_rootfs(rootfs);
    let mut entries = image_config.history().clone().unwrap_or_default();
    entries.push(entry.build().context("building the history entry")?);
    image_config.set_history(Some(entries));
    image_config.set_created(Some(created));
    Ok(())
}
// ANCHOR_END: record_layer

// ANCHOR: write_manifest
/// Step 3: the manifest, stored as a blob: the new config, the base's layers (the same
/// blobs, not copies, so a commit costs only what the container changed), then the new
/// layer if there is one. Returns its descriptor.
fn write_manifest(
    store: &Store,
    base_layers: &[oci_spec::image::Descriptor],
    config_blob: &Blob,
    layer: Option<Blob>,
) -> Result<oci_spec::image::Descriptor> {
    let mut layers: Vec<_> = base_layers.iter().map(oci_layer).collect();
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
    Ok(manifest_blob.descriptor(MediaType::ImageManifest))
}
// ANCHOR_END: write_manifest

/// The config's bytes, with `extra` merged into its `config` object.
fn config_json(
    image_config: &ImageConfiguration,
    extra: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<u8>> {
    if extra.is_empty() {
        return serde_json::to_vec(image_config).context("serialising the image config");
    }
    let mut value = serde_json::to_value(image_config).context("serialising the image config")?;
    let top = value
        .as_object_mut()
        .context("the image config is not a JSON object")?;
    let config = top
        .entry("config")
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    if let serde_json::Value::Object(config) = config {
        for (key, field) in extra {
            config.insert(key.clone(), field.clone());
        }
    }
    serde_json::to_vec(&value).context("serialising the image config")
}

// ANCHOR: container_config
/// The container's config in the image config's shape: what it was created with (the image's
/// config merged with the run flags). `image` is the base image's config: where the container
/// only has minidock's default (WorkingDir `/`, StopSignal `SIGTERM`) and the image had none,
/// the field stays unset, as Docker's container config leaves it.
fn container_config(run: &RunConfig, image: Option<&Config>) -> Config {
    let image = image.cloned().unwrap_or_default();
    let some = |list: &[String]| (!list.is_empty()).then(|| list.to_vec());
    let mut config = Config::default();
    config.set_user(Some(run.user.clone()).filter(|u| !u.is_empty()));
    config.set_env(some(&run.env));
    config.set_entrypoint(some(&run.entrypoint));
    config.set_cmd(some(&run.cmd));
    let defaulted = |value: &str, default: &str, image: &Option<String>| {
        (!value.is_empty() && (value != default || image.is_some())).then(|| value.to_owned())
    };
    config.set_working_dir(defaulted(&run.working_dir, "/", image.working_dir()));
    config.set_stop_signal(defaulted(&run.stop_signal, "SIGTERM", image.stop_signal()));
    config.set_exposed_ports(some(&run.exposed_ports));
    config.set_volumes(some(&run.volumes));
    config.set_labels((!run.labels.is_empty()).then(|| run.labels.clone().into_iter().collect()));
    config
}
// ANCHOR_END: container_config

/// Applies `--change` instructions in order, as a Dockerfile would: an `ENTRYPOINT` drops the
/// `Cmd` unless a `CMD` came before it among the changes.
fn apply_changes(config: &mut Config, changes: &[String]) -> Result<()> {
    let mut cmd_set = false;
    for change in changes {
        apply_change(config, change)?;
        let instruction = change.split_whitespace().next().unwrap_or_default();
        match instruction.to_ascii_uppercase().as_str() {
            "CMD" => cmd_set = true,
            "ENTRYPOINT" if !cmd_set => {
                config.set_cmd(None);
            }
            _ => {}
        }
    }
    Ok(())
}

// ANCHOR: merge
/// Docker's `merge` (moby `daemon/commit.go`): fills what `user` (the config after the
/// changes) leaves empty from `from` (the container's config). Env keys, labels, exposed
/// ports and volumes missing from `user` are added; Cmd comes back only when there is no
/// Entrypoint and no Cmd, the Entrypoint only when none was set at all.
fn merge(user: &mut Config, from: &Config) {
    if user.user().as_deref().unwrap_or_default().is_empty() {
        user.set_user(from.user().clone());
    }
    let add_missing = |mine: &Option<Vec<String>>, theirs: &Option<Vec<String>>| {
        let mut list = mine.clone().unwrap_or_default();
        for item in theirs.iter().flatten() {
            if !list.contains(item) {
                list.push(item.clone());
            }
        }
        (!list.is_empty()).then_some(list)
    };
    user.set_exposed_ports(add_missing(user.exposed_ports(), from.exposed_ports()));
    user.set_volumes(add_missing(user.volumes(), from.volumes()));
    let mut env = user.env().clone().unwrap_or_default();
    for entry in from.env().iter().flatten() {
        let key = entry.split('=').next().unwrap_or_default();
        if !env.iter().any(|e| e.split('=').next() == Some(key)) {
            env.push(entry.clone());
        }
    }
    user.set_env((!env.is_empty()).then_some(env));
    let mut labels = user.labels().clone().unwrap_or_default();
    for (key, value) in from.labels().iter().flatten() {
        labels.entry(key.clone()).or_insert_with(|| value.clone());
    }
    user.set_labels((!labels.is_empty()).then_some(labels));
    if user.entrypoint().as_ref().is_none_or(Vec::is_empty) {
        if user.cmd().as_ref().is_none_or(Vec::is_empty) {
            user.set_cmd(from.cmd().clone());
        }
        if user.entrypoint().is_none() {
            user.set_entrypoint(from.entrypoint().clone());
        }
    }
    if user.working_dir().as_deref().unwrap_or_default().is_empty() {
        user.set_working_dir(from.working_dir().clone());
    }
    if user.stop_signal().as_deref().unwrap_or_default().is_empty() {
        user.set_stop_signal(from.stop_signal().clone());
    }
}
// ANCHOR_END: merge

// ANCHOR: paused
/// A running container frozen for the time of a commit; dropping it thaws it, on every path
/// out of [`commit`]. A container frozen before (by `pause`) is left as it was.
struct Paused {
    dir: PathBuf,
}

impl Paused {
    /// Freezes `container` if it runs (its directory in the v1 `freezer` hierarchy, or its v2
    /// directory). `None` when it does not run or was frozen already. Errors: no freezer, or
    /// processes that do not stop.
    fn freeze(container: &ContainerState) -> Result<Option<Paused>> {
        if container.observe() != Status::Running {
            return Ok(None);
        }
        let paths = &container.cgroup_paths;
        let dir = paths
            .iter()
            .find(|dir| dir.join("freezer.state").exists())
            .or_else(|| paths.iter().find(|dir| dir.join("cgroup.freeze").exists()))
            .with_context(|| {
                format!(
                    "container {} has no cgroup freezer: commit it with --pause=false",
                    container.name
                )
            })?;
        if freezer::state(dir)? == Some(FreezerState::Frozen) {
            return Ok(None);
        }
        let paused = Paused { dir: dir.clone() };
        freezer::set_state(dir, FreezerState::Frozen)
            .with_context(|| format!("pausing container {}", container.name))?;
        Ok(Some(paused))
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = freezer::set_state(&self.dir, FreezerState::Thawed);
    }
}
// ANCHOR_END: paused

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_containers_config_keeps_only_what_was_set_and_merge_fills_the_gaps() {
        let run = RunConfig {
            env: vec!["PATH=/bin".into(), "A=1".into()],
            cmd: vec!["sleep".into(), "30".into()],
            working_dir: "/".into(),
            stop_signal: "SIGTERM".into(),
            ..RunConfig::default()
        };
        // minidock's defaults, with nothing in the image: unset, as in Docker's config.
        let from = container_config(&run, None);
        assert_eq!(from.working_dir(), &None);
        assert_eq!(from.stop_signal(), &None);
        let mut image = Config::default();
        image.set_working_dir(Some("/".into()));
        assert_eq!(
            container_config(&run, Some(&image))
                .working_dir()
                .as_deref(),
            Some("/")
        );

        let mut config = from.clone();
        let changes = ["ENV B=2".to_owned(), r#"ENTRYPOINT ["echo"]"#.to_owned()];
        apply_changes(&mut config, &changes).unwrap();
        merge(&mut config, &from);
        assert_eq!(
            config.env().as_deref().unwrap(),
            ["PATH=/bin", "A=1", "B=2"]
        );
        assert_eq!(config.cmd(), &None);
        assert_eq!(config.entrypoint().as_deref().unwrap(), ["echo"]);

        // An empty ENTRYPOINT brings the container's Cmd back.
        let mut config = from.clone();
        apply_changes(&mut config, &["ENTRYPOINT []".to_owned()]).unwrap();
        merge(&mut config, &from);
        assert_eq!(config.cmd().as_deref().unwrap(), ["sleep", "30"]);
    }
}
