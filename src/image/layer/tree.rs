//! A whole directory tree as a tar stream, as `docker export` writes a container's filesystem.
//!
//! Unlike [`super::diff`], nothing is translated (a merged overlay view has no whiteouts) and
//! the walk is done with `*at` calls from one directory fd: a container that swaps a directory
//! for a symlink while we read cannot send the walk outside its root. Names are relative
//! and each directory's entries are in byte order, as Go's `filepath.Walk` under Docker's
//! archiver gives them. A file's second name is a hard link to
//! the first. Extended attributes travel as pax `SCHILY.xattr.NAME` records, except overlayfs's
//! own bookkeeping (`trusted.overlay.*`, `user.overlay.*`), which is not content.

use anyhow::{Context, Result};
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, SFlag};
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use tar::{EntryType, Header};

use super::beneath::{self, kind, list_dir, lstat_at, proc_path};
use super::pax;

/// Writes every entry below the directory `root` (not `root` itself) to `out` as a tar, ends
/// the archive and returns `out`.
pub fn write_tree<W: Write>(root: BorrowedFd<'_>, out: W) -> Result<W> {
    let mut walker = Walker {
        tar: tar::Builder::new(out),
        links: HashMap::new(),
    };
    walker.children(root, b"")?;
    walker.tar.into_inner().context("ending the archive")
}

struct Walker<W: Write> {
    tar: tar::Builder<W>,
    /// (device, inode) of files with more than one link, to the first name written.
    links: HashMap<(u64, u64), Vec<u8>>,
}

/// Whether an xattr is overlayfs's own (`trusted.overlay.*`, `user.overlay.*` with userxattr).
fn is_overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

impl<W: Write> Walker<W> {
    /// Writes the entries of the directory `dir`, whose archive name is `prefix` (empty for
    /// the root).
    fn children(&mut self, dir: BorrowedFd<'_>, prefix: &[u8]) -> Result<()> {
        let mut names = list_dir(dir).with_context(|| format!("listing {}", show(prefix)))?;
        names.sort();
        for name in names {
            let mut path = prefix.to_vec();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&name);
            self.entry(dir, &name, path)?;
        }
        Ok(())
    }

    fn entry(&mut self, dir: BorrowedFd<'_>, name: &[u8], path: Vec<u8>) -> Result<()> {
        let st = lstat_at(dir, name).with_context(|| format!("lstat {}", show(&path)))?;
        let file_kind = kind(&st);
        let mut header = Header::new_gnu();
        header.set_mode(st.st_mode & 0o7777);
        header.set_uid(u64::from(st.st_uid));
        header.set_gid(u64::from(st.st_gid));
        header.set_mtime(st.st_mtime.max(0) as u64);
        header.set_size(0);
        if file_kind == SFlag::S_IFREG && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                header.set_entry_type(EntryType::Link);
                let first = first.clone();
                return self.append(&mut header, &path, Some(&first), &[], std::io::empty());
            }
            self.links.insert(key, path.clone());
        }
        let xattrs = self.xattrs(dir, name, &path)?;
        let open = |flags: OFlag| {
            openat(
                dir,
                name,
                flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .with_context(|| format!("opening {}", show(&path)))
        };
        match file_kind {
            SFlag::S_IFDIR => {
                let child = open(OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
                header.set_entry_type(EntryType::Directory);
                self.append(&mut header, &path, None, &xattrs, std::io::empty())?;
                self.children(child.as_fd(), &path)?;
            }
            SFlag::S_IFREG => {
                let file = std::fs::File::from(open(OFlag::O_RDONLY)?);
                header.set_entry_type(EntryType::Regular);
                header.set_size(st.st_size as u64);
                let exact = super::diff::Exact {
                    inner: file,
                    left: st.st_size as u64,
                };
                self.append(&mut header, &path, None, &xattrs, exact)?;
            }
            SFlag::S_IFLNK => {
                let target = nix::fcntl::readlinkat(dir, name)
                    .with_context(|| format!("readlink {}", show(&path)))?;
                header.set_entry_type(EntryType::Symlink);
                let bytes = target.as_bytes();
                if bytes.len() < 100 {
                    // Byte for byte: the tar crate's path cleaning turns a target of `/` into
                    // `//`.
                    header.set_link_name_literal(bytes)?;
                    self.append(&mut header, &path, None, &xattrs, std::io::empty())?;
                } else {
                    self.append(&mut header, &path, Some(bytes), &xattrs, std::io::empty())?;
                }
            }
            SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => {
                header.set_entry_type(match file_kind {
                    SFlag::S_IFCHR => EntryType::Char,
                    SFlag::S_IFBLK => EntryType::Block,
                    _ => EntryType::Fifo,
                });
                header.set_device_major(nix::sys::stat::major(st.st_rdev) as u32)?;
                header.set_device_minor(nix::sys::stat::minor(st.st_rdev) as u32)?;
                self.append(&mut header, &path, None, &xattrs, std::io::empty())?;
            }
            // Sockets cannot be archived (tar has no type for them); Docker skips them too.
            _ => {}
        }
        Ok(())
    }

    /// The xattrs of `dir/name` to record, sorted by name.
    fn xattrs(
        &self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let context = || format!("reading the xattrs of {}", show(path));
        let at = proc_path(dir, name);
        let mut names = beneath::llistxattr(&at).with_context(context)?;
        names.sort();
        let mut kept = Vec::new();
        for xattr in names.into_iter().filter(|n| !is_overlay_xattr(n)) {
            if let Some(value) = beneath::lgetxattr(&at, &xattr).with_context(context)? {
                kept.push((xattr, value));
            }
        }
        Ok(kept)
    }

    /// Appends one entry: a pax header with its xattrs first, if it has any, then the entry
    /// (long names and link targets through GNU extension headers).
    fn append(
        &mut self,
        header: &mut Header,
        path: &[u8],
        link: Option<&[u8]>,
        xattrs: &[(String, Vec<u8>)],
        data: impl std::io::Read,
    ) -> Result<()> {
        let context = || format!("adding {} to the archive", show(path));
        if !xattrs.is_empty() {
            let mut records = Vec::new();
            for (name, value) in xattrs {
                records.extend(pax::record(&format!("SCHILY.xattr.{name}"), value));
            }
            let mut pax_header = Header::new_ustar();
            pax_header.set_entry_type(EntryType::XHeader);
            pax_header
                .set_path("././@PaxHeader")
                .with_context(context)?;
            pax_header.set_mode(0o644);
            pax_header.set_size(records.len() as u64);
            pax_header.set_mtime(0);
            pax_header.set_cksum();
            self.tar
                .append(&pax_header, &records[..])
                .with_context(context)?;
        }
        let os_path = std::ffi::OsStr::from_bytes(path);
        match link {
            Some(target) => self
                .tar
                .append_link(header, os_path, std::ffi::OsStr::from_bytes(target))
                .with_context(context),
            None => self
                .tar
                .append_data(header, os_path, data)
                .with_context(context),
        }
    }
}

fn show(path: &[u8]) -> String {
    super::path::show(path)
}
