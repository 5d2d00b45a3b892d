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
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
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
    nix::mount::umount(merged.as_path()).context("umount")?;
    let status = status.context("running chroot")?;
    if !status.success() {
        bail!("the command failed: {status}");
    }

    // The diff: UPPER, nothing else, with the kernel's whiteouts in the image-spec's spelling.
    let mut tar = Vec::new();
    write_dir(&mut tar, &upper, "")?;
    finish(&mut tar);

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
            bail!("{entry}: devices, fifos and sockets are not supported here");
        }
    }
    Ok(())
}

// ---- Given: mounting (lesson 06), xattrs, digests, blobs, and a minimal ustar writer. ----

fn mount_overlay(lower: &Path, upper: &Path, work: &Path, merged: &Path) -> Result<()> {
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        merged,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(data.as_str()),
    )
    .with_context(|| format!("mount overlay ({data})"))
}

/// `sha256:` and the hex of the SHA-256 of `bytes`: a digest as the image-spec writes it.
fn sha256(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

/// The path of a blob in an OCI layout: `blobs/sha256/HEX`.
fn blob_path(layout: &Path, digest: &str) -> Result<PathBuf> {
    let hex = digest
        .strip_prefix("sha256:")
        .with_context(|| format!("not a sha256 digest: {digest:?}"))?;
    Ok(layout.join("blobs/sha256").join(hex))
}

fn read_blob(layout: &Path, digest: &str) -> Result<Vec<u8>> {
    let path = blob_path(layout, digest)?;
    fs::read(&path).with_context(|| format!("reading {}", path.display()))
}

/// Stores `bytes` under their digest and returns it.
fn write_blob(layout: &Path, bytes: &[u8]) -> Result<String> {
    let digest = sha256(bytes);
    write_atomic(&blob_path(layout, &digest)?, bytes)?;
    Ok(digest)
}

/// Writes a temp file and renames it over `path`: nothing half-written.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// The value of one extended attribute of `path` (not following symlinks), if set.
fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let name = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: NUL-terminated strings; buf is valid for its length.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

const REGULAR: u8 = b'0';
const SYMLINK: u8 = b'2';
const DIR: u8 = b'5';

/// One ustar entry: a 512-byte header, then the data padded to 512 bytes (POSIX pax(1),
/// "ustar Interchange Format"). Names and link targets must fit in 100 bytes here.
fn append(
    out: &mut Vec<u8>,
    name: &str,
    kind: u8,
    mode: u32,
    data: &[u8],
    link: &str,
) -> Result<()> {
    anyhow::ensure!(
        name.len() <= 100 && link.len() <= 100,
        "{name} is too long for this small tar writer"
    );
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut header[100..108], u64::from(mode));
    octal(&mut header[108..116], 0); // uid
    octal(&mut header[116..124], 0); // gid
    octal(&mut header[124..136], data.len() as u64);
    octal(&mut header[136..148], 0); // mtime
    header[156] = kind;
    header[157..157 + link.len()].copy_from_slice(link.as_bytes());
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    write_checksum(&mut header);
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out.resize(out.len() + (512 - data.len() % 512) % 512, 0);
    Ok(())
}

/// The end of a tar: two zero blocks.
fn finish(out: &mut Vec<u8>) {
    out.resize(out.len() + 1024, 0);
}

/// A numeric field: octal digits, zero-padded, NUL-terminated.
fn octal(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(text.as_bytes());
}

/// The checksum is the sum of all header bytes, counting its own field as eight spaces.
fn write_checksum(header: &mut [u8; 512]) {
    header[148..156].fill(b' ');
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(text.as_bytes());
}
