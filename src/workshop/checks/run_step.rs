//! The check for lesson 14 (one RUN step by hand).
//!
//! The checker makes a busybox rootfs (the base image's layer, unpacked: `LOWER`) with an
//! `/etc/motd` in it, and an OCI image layout holding that base image (one gzipped layer, its
//! config and manifest, `index.json`). It runs the learner's program with a shell command
//! that writes `/built.txt` and deletes `/etc/motd`, and then reads the image the program left:
//! every blob must hash to its digest, the config's last diff_id must be the digest of the new
//! layer's uncompressed tar, and that tar must hold the new file, a `.wh.` whiteout for the
//! deleted one, and nothing else of the base.

use super::unmount_leftovers;
use super::{failed_run, host_mounts_unchanged, require_root, rootfs_with_marker, run_captured};
use crate::image::store::sha256_digest;
use crate::workshop::Observation;
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const MOTD: &str = "welcome to the base image\n";
const SCRIPT: &str = "echo built > /built.txt && rm /etc/motd";
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// What the new layer may hold: the command's file, the whiteout, and their directory.
const EXPECTED_ENTRIES: [&str; 3] = ["built.txt", "etc", "etc/.wh.motd"];

/// `upper/ work/ merged/ layout/` in a temp dir; on drop, whatever is still mounted under it
/// is detached before the directory is removed.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        unmount_leftovers(self.dir.path());
    }
}

pub fn lesson14_run_step(bin: &Path) -> Result<Vec<Observation>> {
    require_root()?;
    let lower = rootfs_with_marker("lesson14")?;
    std::fs::write(lower.path().join("etc/motd"), MOTD).context("writing etc/motd")?;
    let scratch = Scratch {
        dir: tempfile::Builder::new()
            .prefix("minidock-lesson14-")
            .tempdir()
            .context("creating a scratch directory")?,
    };
    for sub in ["upper", "work", "merged", "layout"] {
        std::fs::create_dir(scratch.path(sub))?;
    }
    let layout = scratch.path("layout");
    let base_diff_id = write_base_image(&layout, lower.path())?;
    let output = run_captured(
        Command::new(bin)
            .arg(lower.path())
            .args(["upper", "work", "merged", "layout"].map(|d| scratch.path(d)))
            .args(["/bin/sh", "-c", SCRIPT]),
        LIMIT,
    )?;
    let leaked = unmount_leftovers(scratch.dir.path());
    let mut observations = vec![host_mounts_unchanged(&leaked)];
    if let Some(failed) = failed_run(&format!("run `sh -c '{SCRIPT}'` and commit"), &output) {
        observations.push(failed);
        return Ok(observations);
    }
    observations.push(Observation::equal(
        "LOWER/etc/motd (the base image never changes)",
        format!("{MOTD:?}"),
        std::fs::read_to_string(lower.path().join("etc/motd"))
            .map_or_else(|e| format!("unreadable: {e}"), |t| format!("{t:?}")),
    ));
    match inspect(&layout, &base_diff_id, &mut observations) {
        Ok(()) => {}
        Err(err) => observations.push(Observation::judged(
            "the image in LAYOUT can be read (index.json, manifest, config, layer)",
            "every blob present and valid",
            format!("{err:#}"),
            false,
        )
        .likely("the image in LAYOUT is incomplete: a commit writes the layer, a new config and a new manifest as blobs, and points index.json at the new manifest")),
    }
    Ok(observations)
}

/// Writes the base image into the empty OCI layout `layout`: `rootfs` as one gzipped layer,
/// a config, a manifest and `index.json`. Returns the layer's diff_id.
fn write_base_image(layout: &Path, rootfs: &Path) -> Result<String> {
    std::fs::create_dir_all(layout.join("blobs/sha256"))?;
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    tar.append_dir_all(".", rootfs)
        .context("taring the base rootfs")?;
    let tar = tar.into_inner()?;
    let diff_id = sha256_digest(&tar).to_string();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar)?;
    let blob = gz.finish()?;
    let layer = write_blob(layout, &blob)?;
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Cmd": ["/bin/sh"] },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created_by": "busybox rootfs" }],
    }))?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": write_blob(layout, &config)?,
            "size": config.len(),
        },
        "layers": [{ "mediaType": LAYER_MEDIA_TYPE, "digest": layer, "size": blob.len() }],
    }))?;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": write_blob(layout, &manifest)?,
            "size": manifest.len(),
        }],
    }))?;
    std::fs::write(layout.join("index.json"), index)?;
    Ok(diff_id)
}

fn write_blob(layout: &Path, bytes: &[u8]) -> Result<String> {
    let digest = sha256_digest(bytes).to_string();
    let hex = digest.trim_start_matches("sha256:");
    std::fs::write(layout.join("blobs/sha256").join(hex), bytes)?;
    Ok(digest)
}

/// Reads the blob `digest` names (a JSON string) and compares its bytes' digest with it.
fn blob(layout: &Path, digest: &Value, obs: &mut Vec<Observation>, what: &str) -> Result<Vec<u8>> {
    let digest = digest
        .as_str()
        .with_context(|| format!("{what}: no digest"))?;
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .with_context(|| format!("{what}: not a sha256 digest: {digest:?}"))?;
    let path = layout.join("blobs/sha256").join(hex);
    let bytes =
        std::fs::read(&path).with_context(|| format!("{what}: reading {}", path.display()))?;
    obs.push(Observation::equal(
        &format!("{what}: the sha256 of the blob's bytes"),
        digest,
        sha256_digest(&bytes).to_string(),
    ));
    Ok(bytes)
}

/// The image the program left in `layout`, read from index.json down to the new layer's tar.
fn inspect(layout: &Path, base_diff_id: &str, obs: &mut Vec<Observation>) -> Result<()> {
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)
        .context("parsing index.json")?;
    let manifest = blob(
        layout,
        &index["manifests"][0]["digest"],
        obs,
        "the manifest index.json names",
    )?;
    let manifest: Value = serde_json::from_slice(&manifest).context("parsing the manifest")?;
    let config = blob(
        layout,
        &manifest["config"]["digest"],
        obs,
        "the config the manifest names",
    )?;
    let config: Value = serde_json::from_slice(&config).context("parsing the config")?;
    let layers = manifest["layers"]
        .as_array()
        .context("the manifest has no layers")?;
    obs.push(Observation::equal(
        "the number of the manifest's layers (the base's, then the new one)",
        "2",
        format!("{}", layers.len()),
    ).likely("the manifest index.json names does not list the new layer on top of the base's: was the image committed, and does index.json name the new manifest?"));
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .context("the config has no rootfs.diff_ids")?;
    obs.push(Observation::equal(
        "the config's rootfs.diff_ids",
        format!("[{base_diff_id:?}, the new layer's]"),
        match diff_ids.as_slice() {
            [base, _] if base == base_diff_id => format!("[{base_diff_id:?}, the new layer's]"),
            other => serde_json::to_string(other).unwrap_or_default(),
        },
    ).likely("the config does not list the new layer's diff_id after the base's: the config names the layers by diff_id, in order"));
    let history = config["history"].as_array().map_or(0, Vec::len);
    obs.push(Observation::equal(
        "the number of the config's history entries (the base's, then the RUN's)",
        "2",
        format!("{history}"),
    ).likely("the config's history has no entry for the RUN step: each step adds one, saying what made the layer"));
    let (Some(layer), Some(diff_id)) = (layers.get(1), diff_ids.get(1)) else {
        anyhow::bail!("no second layer and diff_id: nothing was committed");
    };
    obs.push(Observation::equal(
        "the new layer's media type",
        LAYER_MEDIA_TYPE,
        layer["mediaType"].as_str().unwrap_or("(none)"),
    ));
    let gz = blob(layout, &layer["digest"], obs, "the new layer")?;
    obs.push(Observation::equal(
        "the new layer's size in the manifest",
        gz.len().to_string(),
        layer["size"].to_string(),
    ));
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut tar)
        .context("gunzipping the new layer")?;
    obs.push(Observation::equal(
        "the config's last diff_id: the sha256 of the new layer's uncompressed tar",
        sha256_digest(&tar).to_string(),
        diff_id.as_str().unwrap_or("(not a string)"),
    ).likely("the diff_id is not the digest of the uncompressed tar: the config names layers by diff_id (the tar), the manifest by digest (the stored, gzipped blob)"));
    layer_entries(&tar, obs)
}

/// The entries of the new layer: the new file, the whiteout, nothing from the base.
fn layer_entries(tar: &[u8], obs: &mut Vec<Observation>) -> Result<()> {
    let mut names = Vec::new();
    let mut built = None;
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().context("reading the new layer's tar")? {
        let mut entry = entry.context("reading the new layer's tar")?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let name = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_owned();
        if name == "built.txt" {
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .context("reading built.txt")?;
            built = Some(text);
        }
        if !name.is_empty() && name != "." {
            names.push(name);
        }
    }
    obs.push(Observation::equal(
        "built.txt in the new layer",
        "\"built\\n\"",
        built.map_or("(absent)".into(), |t| format!("{t:?}")),
    ));
    obs.push(Observation::judged(
        "the deletion of /etc/motd in the new layer",
        "an entry etc/.wh.motd (image-spec whiteout)",
        if names.iter().any(|n| n == "etc/.wh.motd") {
            "an entry etc/.wh.motd (image-spec whiteout)".into()
        } else {
            "no etc/.wh.motd: applied on the base, the layer leaves /etc/motd in place".to_owned()
        },
        names.iter().any(|n| n == "etc/.wh.motd"),
    ).likely("the deletion is lost: the kernel records it in UPPER as a character device 0/0, which the layer must carry as an empty regular file .wh.NAME in the same directory"));
    let extra: Vec<&String> = names
        .iter()
        .filter(|n| !EXPECTED_ENTRIES.contains(&n.as_str()))
        .collect();
    obs.push(Observation::judged(
        "entries of the new layer beyond built.txt, etc/ and etc/.wh.motd",
        "none: the layer is the diff (the upper dir), not the whole rootfs",
        if extra.is_empty() {
            "none: the layer is the diff (the upper dir), not the whole rootfs".to_owned()
        } else {
            format!(
                "{} more, e.g. {:?}",
                extra.len(),
                &extra[..extra.len().min(5)]
            )
        },
        extra.is_empty(),
    ).likely("the layer holds files the RUN step never touched: a layer is only the diff, what UPPER recorded. Did you tar MERGED (or LOWER) instead of UPPER?"));
    Ok(())
}
