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
