//! Lesson 14, a known-wrong answer: the command runs in the overlay, but the layer is the
//! whole merged tree, base image and all, not the upper dir.
//!
//! Such a layer copies the base into every step, where the layer of a RUN is the diff: what
//! the command changed. And a file the command deleted is simply absent from it, with no
//! whiteout, so applied on the base it stays there. `workshop verify` proves the
//! check fails it.
//!
//! Usage: lesson14 LOWER UPPER WORK MERGED LAYOUT COMMAND...

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 6 {
        bail!("usage: lesson14 LOWER UPPER WORK MERGED LAYOUT COMMAND...");
    }
    let path = |i: usize| PathBuf::from(&args[i]);
    let (lower, upper, work, merged, layout) = (path(0), path(1), path(2), path(3), path(4));
    let command = &args[5..];
    mount_overlay(&lower, &upper, &work, &merged)?;

    // The RUN: the command sees the merged tree as its whole filesystem; what it changes lands
    // in UPPER, and LOWER stays as it was.
    let status = Command::new("chroot").arg(&merged).args(command).status();
    // The shortcut: the layer is the whole merged tree, read before the unmount.
    let mut tar = Vec::new();
    let written = write_dir(&mut tar, &merged, "");
    nix::mount::umount(merged.as_path()).context("umount")?;
    written?;
    finish(&mut tar);
    let status = status.context("running chroot")?;
    if !status.success() {
        bail!("the command failed: {status}");
    }

    // The commit: the diff_id names the tar, the digest names the blob (the gzipped tar).
    let diff_id = sha256(&tar);
    let blob = gzip(&tar)?;
    let digest = write_blob(&layout, &blob)?;
    add_layer(&layout, &digest, blob.len(), &diff_id, &command.join(" "))?;
    println!("{digest}");
    Ok(())
}

/// Adds the layer to the image of LAYOUT's index.json: a new config (diff_ids, history), a new
/// manifest (layers, config), and index.json pointing at the new manifest.
fn add_layer(
    layout: &Path,
    digest: &str,
    size: usize,
    diff_id: &str,
    created_by: &str,
) -> Result<()> {
    let mut index: Value = serde_json::from_slice(&fs::read(layout.join("index.json"))?)?;
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .context("no manifest in index.json")?;
    let mut manifest: Value = serde_json::from_slice(&read_blob(layout, manifest_digest)?)?;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .context("no config in the manifest")?;
    let mut config: Value = serde_json::from_slice(&read_blob(layout, config_digest)?)?;

    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .context("no rootfs.diff_ids")?
        .push(json!(diff_id));
    config["history"]
        .as_array_mut()
        .context("no history")?
        .push(json!({ "created_by": created_by }));
    let config_bytes = serde_json::to_vec(&config)?;
    manifest["config"]["digest"] = json!(write_blob(layout, &config_bytes)?);
    manifest["config"]["size"] = json!(config_bytes.len());
    manifest["layers"]
        .as_array_mut()
        .context("no layers")?
        .push(json!({
            "mediaType": LAYER_MEDIA_TYPE, "digest": digest, "size": size,
        }));
    let manifest_bytes = serde_json::to_vec(&manifest)?;
    index["manifests"][0]["digest"] = json!(write_blob(layout, &manifest_bytes)?);
    index["manifests"][0]["size"] = json!(manifest_bytes.len());
    write_atomic(&layout.join("index.json"), &serde_json::to_vec(&index)?)
}

/// Appends the children of `dir` (whose path in the layer is `prefix`) as tar entries.
fn write_dir(out: &mut Vec<u8>, dir: &Path, prefix: &str) -> Result<()> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let meta = fs::symlink_metadata(&path)?;
        let entry = format!("{prefix}{name}");
        let mode = meta.mode() & 0o7777;
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            // The kernel's whiteout: an empty file `.wh.NAME` in the layer.
            append(out, &format!("{prefix}.wh.{name}"), REGULAR, 0o600, &[], "")?;
        } else if meta.is_dir() {
            append(out, &format!("{entry}/"), DIR, mode, &[], "")?;
            if xattr(&path, "trusted.overlay.opaque").as_deref() == Some(b"y") {
                append(
                    out,
                    &format!("{entry}/.wh..wh..opq"),
                    REGULAR,
                    0o600,
                    &[],
                    "",
                )?;
            }
            write_dir(out, &path, &format!("{entry}/"))?;
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&path)?;
            append(out, &entry, SYMLINK, mode, &[], &target.to_string_lossy())?;
        } else if meta.is_file() {
            append(out, &entry, REGULAR, mode, &fs::read(&path)?, "")?;
        } else {
            // Device nodes of the base are left out.
            continue;
        }
    }
    Ok(())
}

// ---- Given (in given.rs, shared by the starter, the solution and the wrong answers): mounting
// (lesson 06), xattrs, digests, blobs, and a minimal ustar writer. ----
#[path = "../given.rs"]
mod given;
use given::*;
