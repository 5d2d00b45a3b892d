//! Lesson 14: one RUN step by hand.
//!
//! Usage: lesson14 LOWER UPPER WORK MERGED LAYOUT COMMAND...
//!
//! LOWER is the base image's rootfs, UPPER and WORK are empty, LAYOUT is an OCI image layout
//! holding the base image. Run COMMAND in an overlay of LOWER, then commit: UPPER becomes a
//! gzipped layer in LAYOUT, added to the image's manifest and config, as `docker build` does
//! for a RUN line.
//!
//! Read: book chapter "Building images"; image-spec layer.md ("Whiteouts"), config.md
//! (`rootfs.diff_ids`, `history`), image-layout.md.
//! Check your work: `workshop check 14` (as root).

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

    // TODO 1: run COMMAND (a program of the image, with its arguments) so that it sees MERGED
    //         as its whole filesystem, its `/`. Wait for it; fail when it fails. Whatever it
    //         writes or deletes lands in UPPER, and LOWER never changes: look at UPPER after.
    let _ = Command::new("true");
    nix::mount::umount(merged.as_path()).context("umount")?;

    // The diff: UPPER, nothing else (write_dir, with TODO 2 in it).
    let mut tar = Vec::new();
    write_dir(&mut tar, &upper, "")?;
    finish(&mut tar);

    // TODO 3: commit. The layer's diff_id is the digest of the tar, its digest is that of the
    //         blob stored in LAYOUT (the gzipped tar). Store the blob, add the layer to the image
    //         (fill in add_layer), and print the layer's digest.
    let _ = (tar, layout, gzip, write_blob, add_layer, command);
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

    // TODO 4: the config gets the layer's diff_id (rootfs.diff_ids) and a history entry
    //         saying what made it; the manifest gets the layer's descriptor (media type,
    //         digest, size) and the new config's. Each changed JSON is a new blob, under a new
    //         digest: index.json must end up naming the new manifest.
    let _ = (
        &mut index,
        &mut manifest,
        &mut config,
        digest,
        size,
        diff_id,
        created_by,
    );
    let _ = (LAYER_MEDIA_TYPE, json!(null), write_atomic);
    Ok(())
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
            // TODO 2: this is how the kernel records a deletion in UPPER (a "whiteout"). The
            //         image-spec spells it differently in a layer: see layer.md, "Whiteouts".
            bail!("{entry}: a whiteout, not written yet");
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
            bail!("{entry}: devices, fifos and sockets are not supported here");
        }
    }
    Ok(())
}

// ---- Given (in given.rs, shared by the starter, the solution and the wrong answers): mounting
// (lesson 06), xattrs, digests, blobs, and a minimal ustar writer. ----
#[path = "given.rs"]
mod given;
use given::*;
