//! Image layers: turning an upper dir into a layer ([`diff`]) and a layer back into a
//! directory, safely ([`apply`], [`unpack_to_new_dir`]).
//!
//! A layer is a tar archive of the files one build step (or one `docker commit`) added or
//! changed, plus *whiteouts* for what it deleted (image-spec `layer.md`). On disk, minidock
//! keeps each layer unpacked in its own directory and stacks those directories as overlayfs
//! lower layers, so whiteouts are recreated in the kernel's own format there
//! ([`Whiteouts::Overlay`]).
//!
//! The unpacker is the part that faces the network, so most of this module is about doing it
//! safely; `apply.rs` lists the rules and the CVEs behind each.

mod apply;
pub(crate) mod beneath;
mod codec;
mod diff;
pub mod path;
mod pax;
mod sparse;
mod tarstream;
mod tree;

pub use apply::{
    Applied, ApplyOptions, DEFAULT_MAX_ENTRIES, MAX_PAX_BYTES, OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR,
    USER_OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX, Whiteouts, apply, opaque_xattr,
};
pub use codec::{Compression, LayerDigests};
pub use diff::{diff, diff_skipping, is_whiteout};
pub use tree::write_tree;

use anyhow::{Context, Result, bail};
use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;

use crate::explain;

/// The DiffID of a layer with no entries (a tar of only its two end-of-archive blocks), which
/// Docker treats as no layer at all (moby `layer.EmptyLayer`).
pub const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// Unpacks a layer into `final_dir`, which must not exist yet. The layer is applied into a
/// temporary directory next to it and renamed into place only when the whole layer applied
/// cleanly (and its digests matched, if given): a crash or a hostile entry halfway leaves no
/// directory that looks like a complete layer. On error the temporary directory is removed.
// ANCHOR: unpack_to_new_dir
pub fn unpack_to_new_dir<R: Read + Send>(
    blob: R,
    compression: Compression,
    final_dir: &Path,
    opts: &ApplyOptions,
) -> Result<Applied> {
    let (temp, parent) = temp_dir_beside(final_dir)?;
    let applied = apply(blob, compression, temp.path(), opts)?;
    publish(temp, final_dir, parent, opts.sync)?;
    Ok(applied)
}
// ANCHOR_END: unpack_to_new_dir

// ANCHOR: temp_dir_beside
/// The directory a layer is applied into: a fresh `.NAME.unpacking-XXXXXX` next to
/// `final_dir` (which must not exist yet), in the same directory so the final rename(2)
/// stays on one filesystem and is atomic. Mode 0755, a layer root's unless the layer says
/// otherwise. Returns it with `final_dir`'s parent; dropped, it removes itself.
fn temp_dir_beside(final_dir: &Path) -> Result<(tempfile::TempDir, &Path)> {
    let parent = final_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = final_dir
        .file_name()
        .with_context(|| format!("{} has no file name", final_dir.display()))?;
    if final_dir.symlink_metadata().is_ok() {
        bail!("{} already exists", final_dir.display());
    }
    let (dir, name) = (parent.display(), name.to_string_lossy());
    explain::trace!(Overlay: "unpack into a temporary directory"
        => "mkdtemp(\"{dir}/.{name}.unpacking-XXXXXX\")");
    // Same directory as the destination, so the final rename(2) stays on one filesystem and
    // is atomic. TempDir removes it (without following symlinks) if we return early.
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}.unpacking-"))
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    // mkdtemp makes it 0700; a layer root is 0755 unless the layer says otherwise ("./").
    std::fs::set_permissions(
        temp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .with_context(|| format!("chmod {}", temp.path().display()))?;
    Ok((temp, parent))
}
// ANCHOR_END: temp_dir_beside

// ANCHOR: publish
/// Renames the applied layer to `final_dir` in one step, refusing to replace anything there,
/// and (with `sync`) makes the rename durable by syncing the parent directory. Until this
/// rename, nothing named like a complete layer exists.
fn publish(temp: tempfile::TempDir, final_dir: &Path, parent: &Path, sync: bool) -> Result<()> {
    explain::trace!(Overlay: "publish the layer in one step"
        => "renameat2({:?}, {final_dir:?}, RENAME_NOREPLACE)", temp.path());
    rename_noreplace(temp.path(), final_dir)?;
    // Renamed away: nothing left for TempDir to delete.
    let _ = temp.keep();
    if sync {
        // Make the rename itself durable.
        File::open(parent)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("fsync {}", parent.display()))?;
    }
    Ok(())
}
// ANCHOR_END: publish

/// rename(2) would silently replace an existing *empty* directory; RENAME_NOREPLACE makes
/// "someone else already put a layer here" an error instead.
fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EEXIST) => bail!("{} already exists", to.display()),
        // A filesystem without RENAME_NOREPLACE support: fall back to rename(2), which at
        // least refuses a non-empty destination.
        Err(nix::errno::Errno::EINVAL) => std::fs::rename(from, to)
            .with_context(|| format!("renaming {} to {}", from.display(), to.display())),
        Err(e) => {
            Err(e).with_context(|| format!("renaming {} to {}", from.display(), to.display()))
        }
    }
}

/// Opens a layer file and tells its compression from its first bytes.
pub fn open_blob(path: &Path) -> Result<(File, Compression)> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        match file.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
    file.rewind()
        .with_context(|| format!("reading {}", path.display()))?;
    Ok((file, Compression::sniff(&magic[..got])))
}

/// Writes the layer of `upper` to the file `out` (temp file + rename, so a failed diff
/// leaves nothing behind), compressed as its name says (`.gz`, `.zst`, else plain tar).
pub fn diff_to_file(upper: &Path, out: &Path) -> Result<(LayerDigests, Compression)> {
    let compression = Compression::from_file_name(&out.to_string_lossy());
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = tempfile::Builder::new()
        .prefix(".layer-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let digests = diff(upper, std::io::BufWriter::new(temp.as_file()), compression)?;
    // tempfile makes 0600 files; a layer is not a secret.
    temp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .with_context(|| format!("chmod {}", temp.path().display()))?;
    temp.as_file()
        .sync_all()
        .with_context(|| format!("writing {}", out.display()))?;
    temp.persist(out)
        .with_context(|| format!("renaming the layer to {}", out.display()))?;
    Ok((digests, compression))
}
