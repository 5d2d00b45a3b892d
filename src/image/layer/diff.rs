//! Upper dir -> OCI layer: what `docker commit` and every `RUN` of `docker build` do.
//!
//! An overlayfs upper directory already *is* the change set of a container: everything it
//! holds was added or modified, and deletions are recorded in the kernel's format. Turning it
//! into an image-spec layer means writing it as a tar and translating that format:
//!
//! | in the upper dir (kernel)                 | in the layer (image-spec)    |
//! |-------------------------------------------|------------------------------|
//! | character device 0/0 named `NAME`         | empty file `.wh.NAME`        |
//! | directory with `trusted.overlay.opaque=y` | the directory, and inside it an empty `.wh..wh..opq` |
//!
//! The output is deterministic: entries are sorted by name (whiteouts first in each
//! directory, as image-spec recommends), headers carry no user or group names and the gzip
//! header no timestamp. The same upper dir always gives the same digest, which is what lets
//! a build cache recognise a layer it already has.

use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use tar::{EntryType, Header};

use super::apply::{OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX};
use super::beneath;
use super::codec::{Compression, LayerDigests, LayerWriter};
use super::pax;
use crate::explain::{self, Chapter};

/// Writes the layer for the upper directory `upper` to `out`, compressed as asked, and
/// returns its digest (of the bytes written) and diff_id (of the tar).
// ANCHOR: diff
pub fn diff(upper: &Path, out: impl Write, compression: Compression) -> Result<LayerDigests> {
    diff_skipping(upper, out, compression, &[])
}
// ANCHOR_END: diff

/// [`diff`], leaving out the entries at the layer paths `skip` (relative, like `etc/hosts`).
pub fn diff_skipping(
    upper: &Path,
    out: impl Write,
    compression: Compression,
    skip: &[PathBuf],
) -> Result<LayerDigests> {
    explain::step(
        "turn the upper dir into a layer",
        || format!("walk {upper:?}: lstat, readlink, llistxattr -> tar"),
        Chapter::Overlay,
    );
    let meta =
        std::fs::symlink_metadata(upper).with_context(|| format!("reading {}", upper.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", upper.display());
    }
    let writer = LayerWriter::new(out, compression).context("starting the compressor")?;
    let mut differ = Differ {
        tar: tar::Builder::new(writer),
        hardlinks: HashMap::new(),
        skip,
    };
    differ.directory(upper, Path::new(""))?;
    let writer = differ.tar.into_inner().context("ending the tar stream")?;
    let (_, digests) = writer.finish().context("ending the compressed stream")?;
    Ok(digests)
}

/// Extended attributes as (name, value), sorted by name.
type Xattrs = Vec<(String, Vec<u8>)>;

struct Differ<'a, W: Write> {
    tar: tar::Builder<LayerWriter<W>>,
    /// Layer paths to leave out (see [`diff_skipping`]).
    skip: &'a [PathBuf],
    /// (device, inode) of files with more than one link, to the first path written: later
    /// names become hardlink entries pointing at it.
    hardlinks: HashMap<(u64, u64), PathBuf>,
}

/// Whether a file is an overlayfs whiteout: a character device with device number 0/0.
pub fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

impl<W: Write> Differ<'_, W> {
    /// Writes the children of `abs` (whose path in the layer is `rel`).
    fn directory(&mut self, abs: &Path, rel: &Path) -> Result<()> {
        let mut children = Vec::new();
        for entry in std::fs::read_dir(abs).with_context(|| format!("reading {}", abs.display()))? {
            let entry = entry.with_context(|| format!("reading {}", abs.display()))?;
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            children.push((entry.file_name(), meta));
        }
        // Byte order, not locale order: the same names always sort the same way.
        children.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        // ANCHOR: translate
        let (whiteouts, others): (Vec<_>, Vec<_>) = children
            .into_iter()
            .partition(|(_, meta)| is_whiteout(meta));
        for (name, meta) in whiteouts {
            let mut marker = WHITEOUT_PREFIX.as_bytes().to_vec();
            marker.extend_from_slice(name.as_bytes());
            self.empty_file(&rel.join(OsStr::from_bytes(&marker)), &meta)?;
        }
        for (name, meta) in others {
            if self.skip.iter().any(|skipped| *skipped == rel.join(&name)) {
                continue;
            }
            self.entry(&abs.join(&name), &rel.join(&name), &meta)?;
        }
        // ANCHOR_END: translate
        Ok(())
    }

    fn entry(&mut self, abs: &Path, rel: &Path, meta: &Metadata) -> Result<()> {
        let context = || format!("adding {} to the layer", abs.display());
        let file_type = meta.file_type();
        let (xattrs, opaque) = self.xattrs(abs)?;
        let mut header = Header::new_gnu();
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(u64::from(meta.uid()));
        header.set_gid(u64::from(meta.gid()));
        header.set_mtime(meta.mtime().max(0) as u64);
        header.set_size(0);
        if file_type.is_dir() {
            header.set_entry_type(EntryType::Directory);
            self.pax(&xattrs)?;
            self.tar
                .append_data(&mut header, rel, io::empty())
                .with_context(context)?;
            if opaque {
                self.empty_file(&rel.join(OPAQUE_MARKER), meta)?;
            }
            return self.directory(abs, rel);
        }
        if file_type.is_symlink() {
            let target = std::fs::read_link(abs).with_context(context)?;
            header.set_entry_type(EntryType::Symlink);
            self.pax(&xattrs)?;
            return self
                .tar
                .append_link(&mut header, rel, &target)
                .with_context(context);
        }
        if file_type.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.hardlinks.get(&key) {
                    header.set_entry_type(EntryType::Link);
                    let first = first.clone();
                    return self
                        .tar
                        .append_link(&mut header, rel, &first)
                        .with_context(context);
                }
                self.hardlinks.insert(key, rel.to_path_buf());
            }
            // O_NOFOLLOW: the upper dir belongs to a container that may still be running and
            // could swap this file for a symlink to a host file between lstat and open.
            let file = File::options()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(abs)
                .with_context(context)?;
            header.set_entry_type(EntryType::Regular);
            header.set_size(meta.len());
            self.pax(&xattrs)?;
            let data = Exact {
                inner: file.take(meta.len()),
                left: meta.len(),
            };
            return self
                .tar
                .append_data(&mut header, rel, data)
                .with_context(context);
        }
        let kind = if file_type.is_char_device() {
            EntryType::Char
        } else if file_type.is_block_device() {
            EntryType::Block
        } else if file_type.is_fifo() {
            EntryType::Fifo
        } else {
            // A socket: tar cannot carry one, and it means nothing once its process is gone.
            // Docker skips them too.
            return Ok(());
        };
        header.set_entry_type(kind);
        let rdev = meta.rdev();
        header.set_device_major(libc::major(rdev))?;
        header.set_device_minor(libc::minor(rdev))?;
        self.pax(&xattrs)?;
        self.tar
            .append_data(&mut header, rel, io::empty())
            .with_context(context)
    }

    /// The xattrs to record (sorted by name), and whether the directory is opaque.
    fn xattrs(&self, abs: &Path) -> Result<(Xattrs, bool)> {
        let context = || format!("reading the xattrs of {}", abs.display());
        let mut names = beneath::llistxattr(abs).with_context(context)?;
        names.sort();
        let mut kept = Vec::new();
        let mut opaque = false;
        for name in names {
            let Some(value) = beneath::lgetxattr(abs, &name).with_context(context)? else {
                continue;
            };
            let overlay_attr = name
                .strip_prefix("trusted.overlay.")
                .or_else(|| name.strip_prefix("user.overlay."));
            match overlay_attr {
                // Only "y" means opaque; newer kernels also write "x" on a directory that
                // merely contains whiteouts of their own kind.
                Some("opaque") => opaque = value == b"y",
                Some(what @ ("redirect" | "metacopy")) => bail!(
                    "{} has the overlayfs {what} xattr: this upper dir was made with \
                     redirect_dir or metacopy, which a tar layer cannot express",
                    abs.display()
                ),
                // origin, impure, nlink, ...: overlayfs's own bookkeeping, not content.
                Some(_) => {}
                None => kept.push((name, value)),
            }
        }
        debug_assert!(OVERLAY_OPAQUE_XATTR.starts_with("trusted.overlay."));
        Ok((kept, opaque))
    }

    /// A pax extended header carrying the xattrs of the next entry, if it has any.
    fn pax(&mut self, xattrs: &Xattrs) -> Result<()> {
        if xattrs.is_empty() {
            return Ok(());
        }
        let mut data = Vec::new();
        for (name, value) in xattrs {
            data.extend(pax::record(&format!("SCHILY.xattr.{name}"), value));
        }
        let mut header = Header::new_ustar();
        header.set_entry_type(EntryType::XHeader);
        header.set_path("././@PaxHeader")?;
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_mtime(0);
        header.set_cksum();
        self.tar
            .append(&header, &data[..])
            .context("writing a pax header")
    }

    /// An empty regular file: how whiteouts and opaque markers travel in a layer.
    fn empty_file(&mut self, rel: &Path, meta: &Metadata) -> Result<()> {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o600);
        header.set_uid(u64::from(meta.uid()));
        header.set_gid(u64::from(meta.gid()));
        header.set_mtime(meta.mtime().max(0) as u64);
        header.set_size(0);
        self.tar
            .append_data(&mut header, rel, io::empty())
            .with_context(|| format!("adding {} to the layer", rel.display()))
    }
}

/// Reads exactly `left` bytes or fails: a file that shrank while we read it (the container is
/// still running) must not produce a tar whose header lies about the size.
pub(super) struct Exact<R> {
    pub(super) inner: R,
    pub(super) left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being read",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
