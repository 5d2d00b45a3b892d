//! Lesson 07: whiteouts, opaque directories, and an upper dir turned into a layer.
//!
//! Usage: lesson07 LOWER UPPER WORK MERGED LAYER_TAR
//!
//! Through the overlay on MERGED: delete old.txt, and replace the directory cache with a new
//! one holding fresh.txt. Then unmount and write UPPER as an image layer (a tar) to LAYER_TAR,
//! translating the kernel's whiteouts and opaque directories into the image-spec's `.wh.`
//! files.
//!
//! Read: book chapter "Union filesystems and layers"; image-spec layer.md, "Whiteouts".
//! Check your work: `workshop check 7` (as root).

use anyhow::{Context, Result};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

fn main() -> Result<()> {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let [lower, upper, work, merged, layer] = args.as_slice() else {
        anyhow::bail!("usage: lesson07 LOWER UPPER WORK MERGED LAYER_TAR");
    };
    mount_overlay(lower, upper, work, merged)?;

    // TODO 1: delete old.txt, as a program in the container would. It is in the lower layer,
    //         which never changes: look at what appears in UPPER (`ls -l UPPER`).

    // TODO 2: replace the directory `cache`, as a program in the container would: remove it
    //         with everything in it, make it again, and write fresh.txt in it. Then look at
    //         UPPER/cache's extended attributes: `getfattr -d -m - UPPER/cache`.
    //         (README.md; stuck: `workshop hint 7`.)

    nix::mount::umount(merged.as_path()).context("umount")?;

    let mut out = File::create(layer).with_context(|| format!("creating {}", layer.display()))?;
    write_dir(&mut out, upper, "")?;
    finish(&mut out)?;
    Ok(())
}

/// Writes the children of `dir` (whose path in the layer is `prefix`) as tar entries.
fn write_dir(out: &mut File, dir: &Path, prefix: &str) -> Result<()> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let meta = fs::symlink_metadata(&path)?;
        let entry = format!("{prefix}{name}");
        let mode = meta.mode() & 0o7777;
        // TODO 3: the kernel's record of a deletion (what TODO 1 left in UPPER) must reach the
        //         layer in the image-spec's spelling (layer.md, "Whiteouts"), not as is.
        if meta.is_dir() {
            append(out, &format!("{entry}/"), DIR, mode, &[])?;
            // TODO 4: a directory the kernel marked opaque (what TODO 2 left on UPPER/cache)
            //         must be opaque in the layer too, in the image-spec's spelling.
            write_dir(out, &path, &format!("{entry}/"))?;
        } else if meta.is_file() {
            append(out, &entry, REGULAR, mode, &fs::read(&path)?)?;
        } else {
            // Anything else is written as a character device with its numbers, as is.
            append_device(out, &entry, mode, meta.rdev())?;
        }
    }
    let _ = xattr;
    Ok(())
}

// ---- Given: mounting (lesson 06), xattrs, and a minimal ustar writer. ----

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
const CHAR_DEVICE: u8 = b'3';
const DIR: u8 = b'5';

/// One ustar entry: a 512-byte header, then the data padded to 512 bytes (POSIX pax(1),
/// "ustar Interchange Format"). Names must fit in 100 bytes here.
fn append(out: &mut File, name: &str, kind: u8, mode: u32, data: &[u8]) -> Result<()> {
    let mut header = [0u8; 512];
    anyhow::ensure!(
        name.len() <= 100,
        "{name} is too long for this small tar writer"
    );
    header[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut header[100..108], u64::from(mode));
    octal(&mut header[108..116], 0); // uid
    octal(&mut header[116..124], 0); // gid
    octal(&mut header[124..136], data.len() as u64);
    octal(&mut header[136..148], 0); // mtime
    header[156] = kind;
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    write_checksum(&mut header);
    out.write_all(&header)?;
    out.write_all(data)?;
    out.write_all(&vec![0u8; (512 - data.len() % 512) % 512])?;
    Ok(())
}

fn append_device(out: &mut File, name: &str, mode: u32, rdev: u64) -> Result<()> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut header[100..108], u64::from(mode));
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], 0);
    octal(&mut header[136..148], 0);
    header[156] = CHAR_DEVICE;
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    octal(&mut header[329..337], u64::from(libc::major(rdev)));
    octal(&mut header[337..345], u64::from(libc::minor(rdev)));
    write_checksum(&mut header);
    out.write_all(&header)?;
    Ok(())
}

/// The end of a tar: two zero blocks.
fn finish(out: &mut File) -> Result<()> {
    out.write_all(&[0u8; 1024])?;
    Ok(())
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
