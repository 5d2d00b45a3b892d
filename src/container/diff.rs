//! `diff CONTAINER`: what the container changed in its filesystem, read from the overlay's
//! upper directory, as Docker's overlay2 driver reads it (moby `pkg/archive/changes.go`,
//! `OverlayChanges`).
//!
//! The upper dir is walked in lexical order (parents before children). An entry is:
//! - `D` (deleted) when it is a whiteout, a character device 0:0, or an opaque directory
//!   (`trusted.overlay.opaque` = `y`) that hides a directory of the image;
//! - `C` (changed) when the image has the same path; a directory only when its mode, size or
//!   modification time differ from the image's;
//! - `A` (added) otherwise.
//!
//! The parent directory of an added or deleted entry is listed as changed, once, before it.
//! What Docker keeps in a container's init layer never shows: the mount points of
//! `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`, `/dev`, `/proc`, `/sys` and the rest,
//! and a directory whose only change is such a mount point being made in it.

use super::Paths;
use anyhow::{Context, Result};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The paths of Docker's init layer (moby `daemon/initlayer`): made for the runtime's mounts,
/// never the container's own change.
pub const INIT_PATHS: &[&str] = &[
    "/.dockerenv",
    "/dev",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/mtab",
    "/etc/resolv.conf",
    "/proc",
    "/sys",
];

/// One line of `diff`: its kind (`A`, `C` or `D`) and the path inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: char,
    pub path: String,
}

/// The container's changes, in Docker's order. `upper` is the container's upper dir,
/// `lowers` the image's layers (any order: only whether a path exists matters).
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let mut walk = Walk {
        lowers,
        out: Vec::new(),
        listed_dirs: Vec::new(),
    };
    walk.dir(upper, "")?;
    Ok(walk.out)
}

struct Walk<'a> {
    lowers: &'a [PathBuf],
    out: Vec<Change>,
    /// Directories listed or walked, so a parent is added as `C` only once.
    listed_dirs: Vec<String>,
}

impl Walk<'_> {
    fn dir(&mut self, dir: &Path, prefix: &str) -> Result<()> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("reading {}", dir.display()))?;
        // Go's filepath.Walk sorts by the names' bytes.
        names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
        for name in names {
            let path = format!("{prefix}/{}", name.to_string_lossy());
            if INIT_PATHS.contains(&path.as_str()) {
                continue;
            }
            let host = dir.join(&name);
            let meta = std::fs::symlink_metadata(&host)
                .with_context(|| format!("reading {}", host.display()))?;
            self.entry(&path, &host, &meta)?;
            if meta.is_dir() {
                self.dir(&host, &path)?;
            }
        }
        Ok(())
    }

    fn lower_meta(&self, path: &str) -> Option<std::fs::Metadata> {
        let relative = path.trim_start_matches('/');
        self.lowers
            .iter()
            .find_map(|l| std::fs::metadata(l.join(relative)).ok())
    }

    fn entry(&mut self, path: &str, host: &Path, meta: &std::fs::Metadata) -> Result<()> {
        let kind = if is_whiteout(meta) || self.hides_image_dir(path, host, meta)? {
            'D'
        } else {
            match self.lower_meta(path) {
                None => 'A',
                Some(lower) if lower.is_dir() && meta.is_dir() => {
                    let same = lower.mode() == meta.mode()
                        && lower.size() == meta.size()
                        && lower.mtime() == meta.mtime()
                        && lower.mtime_nsec() == meta.mtime_nsec();
                    if same || self.only_init_inside(path, host, lower.mode() == meta.mode())? {
                        return Ok(());
                    }
                    'C'
                }
                Some(_) => 'C',
            }
        };
        if meta.is_dir() {
            self.listed_dirs.push(path.to_owned());
        }
        if kind != 'C' {
            let parent = match path.rfind('/') {
                Some(0) | None => "/",
                Some(i) => &path[..i],
            };
            if parent != "/" && !self.listed_dirs.iter().any(|d| d == parent) {
                self.listed_dirs.push(parent.to_owned());
                self.out.push(Change {
                    kind: 'C',
                    path: parent.to_owned(),
                });
            }
        }
        self.out.push(Change {
            kind,
            path: path.to_owned(),
        });
        Ok(())
    }

    /// An opaque directory that replaces a directory of the image: it was deleted (and made
    /// again).
    fn hides_image_dir(&self, path: &str, host: &Path, meta: &std::fs::Metadata) -> Result<bool> {
        if !meta.is_dir() {
            return Ok(false);
        }
        let opaque = xattr(host, "trusted.overlay.opaque")?;
        Ok(opaque.as_deref() == Some(b"y".as_slice())
            && self.lower_meta(path).is_some_and(|m| m.is_dir()))
    }

    /// A directory of the image, its mode unchanged, in which the runtime made an init-layer
    /// mount point: its time and size changed by that, not by the container, which Docker's
    /// init layer hides.
    fn only_init_inside(&self, path: &str, host: &Path, same_mode: bool) -> Result<bool> {
        if !same_mode {
            return Ok(false);
        }
        for entry in
            std::fs::read_dir(host).with_context(|| format!("reading {}", host.display()))?
        {
            let entry = entry.with_context(|| format!("reading {}", host.display()))?;
            let child = format!("{path}/{}", entry.file_name().to_string_lossy());
            if INIT_PATHS.contains(&child.as_str()) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// overlayfs's whiteout: a character device with number 0:0.
fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// An extended attribute's value, `None` when the file has none of that name.
fn xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .with_context(|| format!("{} has a NUL byte", path.display()))?;
    let c_name = std::ffi::CString::new(name).context("xattr name")?;
    let mut buf = vec![0u8; 256];
    // SAFETY: both strings are NUL-terminated; the buffer's length is passed.
    let n = unsafe {
        libc::lgetxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        let err = std::io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => Ok(None),
            _ => Err(err).with_context(|| format!("lgetxattr {} {name}", path.display())),
        };
    }
    buf.truncate(n as usize);
    Ok(Some(buf))
}

/// `diff CONTAINER`'s text: `KIND PATH` lines.
pub fn diff(paths: &Paths, name: &str) -> Result<String> {
    let state = paths.resolve(name)?;
    let upper = paths.dir(&state.id).join("upper");
    let found = changes(&upper, &state.lower_dirs)
        .with_context(|| format!("reading the changes of container {}", state.id))?;
    Ok(found
        .iter()
        .map(|c| format!("{} {}\n", c.kind, c.path))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mknod_whiteout(path: &Path) {
        nix::sys::stat::mknod(
            path,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o000),
            0,
        )
        .unwrap();
    }

    #[test]
    fn adds_changes_and_whiteouts_in_dockers_order() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: mknod of a whiteout needs root");
            return;
        }
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        for dir in ["etc", "bin", "a"] {
            std::fs::create_dir(lower.path().join(dir)).unwrap();
        }
        std::fs::write(lower.path().join("etc/passwd"), "root").unwrap();
        std::fs::write(lower.path().join("bin/ls"), "ls").unwrap();
        std::fs::create_dir(upper.path().join("etc")).unwrap();
        std::fs::write(upper.path().join("etc/passwd"), "root2").unwrap();
        std::fs::write(upper.path().join("etc/hosts"), "").unwrap();
        std::fs::create_dir(upper.path().join("bin")).unwrap();
        mknod_whiteout(&upper.path().join("bin/ls"));
        std::fs::create_dir_all(upper.path().join("new/sub")).unwrap();
        std::fs::write(upper.path().join("a-b"), "").unwrap();
        std::fs::create_dir(upper.path().join("a")).unwrap();
        std::fs::write(upper.path().join("a/x"), "").unwrap();
        let found = changes(upper.path(), &[lower.path().to_owned()]).unwrap();
        let text: Vec<String> = found
            .iter()
            .map(|c| format!("{} {}", c.kind, c.path))
            .collect();
        assert_eq!(
            text,
            [
                "C /a",
                "A /a/x",
                "A /a-b",
                "C /bin",
                "D /bin/ls",
                // /etc changed only by the mount point of /etc/hosts: hidden, as Docker's
                // init layer hides it.
                "C /etc/passwd",
                "A /new",
                "A /new/sub"
            ]
        );
    }
}
