//! `cp` and `export`: the container's filesystem, from the host side.
//!
//! A container's root is an ordinary directory on the host (its overlay's `merged`), so the
//! host can read and write it. The danger is the paths: they are the *container's* paths, and
//! the container controls every symlink in them. `docker cp` fell for this more than once: a
//! symlink `/data -> /` inside the container, followed by the host, made `cp c:/data/etc/shadow`
//! read the host's file, and a container swapping a directory for a symlink while `cp` ran
//! redirected a write (CVE-2018-15664).
//!
//! So nothing here resolves a container path with the host's view of `/`:
//!
//! - the container path is resolved with openat2(2) and `RESOLVE_IN_ROOT` from a descriptor of
//!   the container's root: the kernel itself treats that directory as `/`, so `..` and absolute
//!   symlinks stay inside, and the check is atomic with the open;
//! - below that, the tree is walked with `*at` calls and `O_NOFOLLOW`, never by path;
//! - writing into the container goes through the safe layer unpacker (`image::layer::apply`),
//!   which never follows a symlink either, into the directory we opened (named by
//!   `/proc/self/fd/N`, which is that very directory, whatever happens to its path meanwhile).

use super::{Paths, Status};
use crate::cli::Exit;
use crate::explain::{self, Chapter};
use crate::image::layer::beneath::{kind, list_dir, lstat_at};
use crate::image::layer::{ApplyOptions, Compression, apply};
use anyhow::{Context, Result, bail};
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{Mode, SFlag};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{Seek, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

fn refused(message: String) -> anyhow::Error {
    Exit::new(super::REQUEST_FAILED, message).into()
}

// ANCHOR: open_in_root
/// Opens `path` (a container path) with the container's root directory `root` as `/`: the
/// kernel resolves `..` and symlinks as if chrooted there (openat2(2), `RESOLVE_IN_ROOT`).
fn open_in_root(root: BorrowedFd, path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() { "." } else { relative };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root, relative, how)
}
// ANCHOR_END: open_in_root

/// Splits a container path into its directory and its last component (empty for `/`).
fn split_last(path: &str) -> (String, String) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((dir, name)) => (
            if dir.is_empty() {
                "/".into()
            } else {
                dir.into()
            },
            name.into(),
        ),
        None if trimmed.is_empty() => ("/".into(), String::new()),
        None => ("/".into(), trimmed.into()),
    }
}

/// The root of a container's filesystem on the host, mounted for the time of the call if the
/// container is stopped.
struct ContainerRoot {
    fd: OwnedFd,
    /// Unmount when done: we mounted it.
    unmount: Option<(Paths, String)>,
}

impl Drop for ContainerRoot {
    fn drop(&mut self) {
        if let Some((paths, id)) = self.unmount.take() {
            let _ = super::unmount_rootfs(&paths, &id);
        }
    }
}

fn container_root(paths: &Paths, name_or_id: &str) -> Result<ContainerRoot> {
    let state = paths.resolve(name_or_id)?;
    let merged = paths.dir(&state.id).join("merged");
    let was_mounted = crate::overlay::mount_type(&merged)?.as_deref() == Some("overlay");
    if !was_mounted {
        super::mount_rootfs(paths, &state)?;
    }
    let unmount = (!was_mounted && state.observe() != Status::Running)
        .then(|| (paths.clone(), state.id.clone()));
    let fd = nix::fcntl::open(
        &merged,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", merged.display()));
    let fd = match fd {
        Ok(fd) => fd,
        Err(err) => {
            if let Some((paths, id)) = unmount {
                let _ = super::unmount_rootfs(&paths, &id);
            }
            return Err(err);
        }
    };
    Ok(ContainerRoot { fd, unmount })
}

// ANCHOR: tar_tree
/// Writes the entry `name` of the directory `dir` (and everything below it) to `builder` as
/// `archive_name`, walking with `*at` calls only: no symlink is ever followed.
fn append_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: BorrowedFd,
    name: &[u8],
    archive_name: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    let st = lstat_at(dir, name).with_context(|| format!("lstat {}", archive_name.display()))?;
    let mut header = tar::Header::new_gnu();
    header.set_mode(st.st_mode & 0o7777);
    header.set_uid(u64::from(st.st_uid));
    header.set_gid(u64::from(st.st_gid));
    header.set_mtime(st.st_mtime.max(0) as u64);
    header.set_size(0);
    let file_kind = kind(&st);
    // A second name of a file already written is stored as a hard link to the first.
    if file_kind == SFlag::S_IFREG && st.st_nlink > 1 {
        let key = (st.st_dev, st.st_ino);
        if let Some(first) = links.get(&key) {
            header.set_entry_type(tar::EntryType::Link);
            builder.append_link(&mut header, archive_name, first)?;
            return Ok(());
        }
        links.insert(key, archive_name.to_owned());
    }
    let open = |flags: OFlag| {
        openat(
            dir,
            name,
            flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening {}", archive_name.display()))
    };
    match file_kind {
        SFlag::S_IFDIR => {
            header.set_entry_type(tar::EntryType::Directory);
            if !archive_name.as_os_str().is_empty() {
                builder.append_data(&mut header, archive_name, std::io::empty())?;
            }
            let child = open(OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
            let mut names = list_dir(child.as_fd())?;
            names.sort();
            for entry in names {
                let child_name = archive_name.join(OsStr::from_bytes(&entry));
                append_entry(builder, child.as_fd(), &entry, &child_name, links)?;
            }
        }
        SFlag::S_IFREG => {
            let file = std::fs::File::from(open(OFlag::O_RDONLY)?);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(st.st_size as u64);
            builder.append_data(&mut header, archive_name, file)?;
        }
        SFlag::S_IFLNK => {
            let target = nix::fcntl::readlinkat(dir, name)?;
            header.set_entry_type(tar::EntryType::Symlink);
            let bytes = target.as_bytes();
            if bytes.len() < 100 {
                // Byte for byte: the tar crate's path cleaning turns a target of `/` into `//`.
                header.set_link_name_literal(bytes)?;
                builder.append_data(&mut header, archive_name, std::io::empty())?;
            } else {
                builder.append_link(&mut header, archive_name, Path::new(&target))?;
            }
        }
        SFlag::S_IFCHR | SFlag::S_IFBLK => {
            header.set_entry_type(if file_kind == SFlag::S_IFCHR {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            header.set_device_major(nix::sys::stat::major(st.st_rdev) as u32)?;
            header.set_device_minor(nix::sys::stat::minor(st.st_rdev) as u32)?;
            builder.append_data(&mut header, archive_name, std::io::empty())?;
        }
        SFlag::S_IFIFO => {
            header.set_entry_type(tar::EntryType::Fifo);
            builder.append_data(&mut header, archive_name, std::io::empty())?;
        }
        // Sockets cannot be archived (tar has no type for them); Docker skips them too.
        _ => {}
    }
    Ok(())
}
// ANCHOR_END: tar_tree

/// Extracts a tar (in a temp file) into the directory open as `dir`, with the safe unpacker.
fn extract_into(archive: std::fs::File, dir: BorrowedFd, preserve_owners: bool) -> Result<()> {
    let options = ApplyOptions {
        preserve_owners,
        ..ApplyOptions::default()
    };
    // /proc/self/fd/N names the directory we opened, not whatever its path means now.
    let path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    apply(
        std::io::BufReader::new(archive),
        Compression::None,
        &path,
        &options,
    )?;
    Ok(())
}

/// One side of `cp`: a host path, or `CONTAINER:PATH`.
enum Location {
    Host(PathBuf),
    Container(String, String),
}

fn parse_location(text: &str) -> Location {
    // As Docker: a colon makes it a container path, unless what precedes it looks like a path.
    match text.split_once(':') {
        Some((container, path)) if !container.is_empty() && !container.contains('/') => {
            let path = if path.starts_with('/') {
                path.to_owned()
            } else {
                format!("/{path}")
            };
            Location::Container(container.to_owned(), path)
        }
        _ => Location::Host(PathBuf::from(text)),
    }
}

// ANCHOR: cp
/// `cp SRC CONTAINER:DST` or `cp CONTAINER:SRC DST`. A directory is copied whole; when the
/// destination exists and is a directory, the source goes inside it, otherwise it takes the
/// destination's name (as `cp -a` does).
pub fn cp(paths: &Paths, source: &str, destination: &str) -> Result<()> {
    match (parse_location(source), parse_location(destination)) {
        (Location::Container(container, from), Location::Host(to)) => {
            copy_out(paths, &container, &from, &to)
        }
        (Location::Host(from), Location::Container(container, to)) => {
            copy_in(paths, &from, &container, &to)
        }
        (Location::Container(..), Location::Container(..)) => Err(refused(
            "copying between containers is not supported".into(),
        )),
        (Location::Host(..), Location::Host(..)) => {
            Err(refused("one of the paths must be CONTAINER:PATH".into()))
        }
    }
}
// ANCHOR_END: cp

fn copy_out(paths: &Paths, container: &str, from: &str, to: &Path) -> Result<()> {
    let root = container_root(paths, container)?;
    let (dir, name) = split_last(from);
    explain::step(
        "open the source inside the container's root",
        || format!("openat2(root, {dir:?}, RESOLVE_IN_ROOT)"),
        Chapter::PuttingTogether,
    );
    let parent = open_in_root(root.fd.as_fd(), &dir, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|e| refused(format!("{container}:{from}: {}", e.desc())))?;
    let (parent, name) = if name.is_empty() {
        // The container's `/` itself.
        (root.fd.try_clone()?, ".".to_owned())
    } else {
        (parent, name)
    };
    if lstat_at(parent.as_fd(), name.as_bytes()).is_err() {
        return Err(refused(format!(
            "could not find the file {from} in container {container}"
        )));
    }
    // Into an existing directory, under the source's name; else as the destination itself.
    let (target_dir, archive_name) = if to.is_dir() {
        let base = if name == "." {
            String::new()
        } else {
            name.clone()
        };
        (to.to_owned(), PathBuf::from(base))
    } else {
        let parent_dir = match to.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let Some(file_name) = to.file_name() else {
            bail!("invalid destination {}", to.display());
        };
        (parent_dir, PathBuf::from(file_name))
    };
    let mut archive = tempfile::tempfile().context("creating a temp file")?;
    {
        let mut builder = tar::Builder::new(&mut archive);
        append_entry(
            &mut builder,
            parent.as_fd(),
            name.as_bytes(),
            &archive_name,
            &mut HashMap::new(),
        )?;
        builder.finish()?;
    }
    archive.rewind()?;
    let dir = nix::fcntl::open(
        &target_dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        refused(format!(
            "destination directory {}: {}",
            target_dir.display(),
            e.desc()
        ))
    })?;
    // Files copied out belong to the caller, as with Docker.
    extract_into(archive, dir.as_fd(), false)
}

fn copy_in(paths: &Paths, from: &Path, container: &str, to: &str) -> Result<()> {
    let source_meta =
        std::fs::symlink_metadata(from).map_err(|e| refused(format!("{}: {e}", from.display())))?;
    let from_parent = match from.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let from_name = match from.file_name() {
        Some(name) => name.as_bytes().to_vec(),
        // `.` or `/`: the directory itself.
        None => b".".to_vec(),
    };
    let root = container_root(paths, container)?;
    explain::step(
        "open the destination inside the container's root",
        || format!("openat2(root, {to:?}, RESOLVE_IN_ROOT)"),
        Chapter::PuttingTogether,
    );
    let existing_dir = open_in_root(root.fd.as_fd(), to, OFlag::O_PATH | OFlag::O_DIRECTORY);
    let (target, archive_name) = match existing_dir {
        Ok(dir) => {
            let name = if from_name == b"." {
                PathBuf::new()
            } else {
                PathBuf::from(OsStr::from_bytes(&from_name))
            };
            (dir, name)
        }
        Err(_) => {
            let (dir, name) = split_last(to);
            if name.is_empty() {
                return Err(refused(format!("invalid destination {to}")));
            }
            let parent = open_in_root(root.fd.as_fd(), &dir, OFlag::O_PATH | OFlag::O_DIRECTORY)
                .map_err(|e| {
                    refused(format!(
                        "destination directory {dir} in container {container}: {}",
                        e.desc()
                    ))
                })?;
            if source_meta.is_dir() && lstat_at(parent.as_fd(), name.as_bytes()).is_ok() {
                return Err(refused(format!(
                    "cannot copy a directory onto the file {to} in container {container}"
                )));
            }
            (parent, PathBuf::from(name))
        }
    };
    let parent_fd = nix::fcntl::open(
        &from_parent,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", from_parent.display()))?;
    let mut archive = tempfile::tempfile().context("creating a temp file")?;
    {
        let mut builder = tar::Builder::new(&mut archive);
        append_entry(
            &mut builder,
            parent_fd.as_fd(),
            &from_name,
            &archive_name,
            &mut HashMap::new(),
        )?;
        builder.finish()?;
    }
    archive.rewind()?;
    // Files copied in belong to root in the container, as with Docker (without -a).
    extract_into(archive, target.as_fd(), false)
}

// ANCHOR: export
/// `export`: the container's whole filesystem as a tar, to `output` or stdout.
pub fn export(paths: &Paths, container: &str, output: Option<&Path>) -> Result<()> {
    let root = container_root(paths, container)?;
    let write = |sink: &mut dyn Write| -> Result<()> {
        let dir = openat(
            root.fd.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        // With the xattrs (file capabilities, `user.*`), as `docker export` keeps them.
        crate::image::layer::write_tree(dir.as_fd(), sink)?.flush()?;
        Ok(())
    };
    match output {
        Some(path) => {
            // A temp file renamed into place: an interrupted export leaves no half archive.
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let mut temp = tempfile::NamedTempFile::new_in(parent)
                .with_context(|| format!("creating a temp file in {}", parent.display()))?;
            write(temp.as_file_mut())?;
            temp.persist(path)
                .map_err(|e| e.error)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            write(&mut lock)?;
        }
    }
    Ok(())
}
// ANCHOR_END: export

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_split_and_parse() {
        assert_eq!(split_last("/a/b"), ("/a".into(), "b".into()));
        assert_eq!(split_last("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(split_last("/b"), ("/".into(), "b".into()));
        assert_eq!(split_last("/"), ("/".into(), String::new()));
        assert!(
            matches!(parse_location("web:/etc"), Location::Container(c, p) if c == "web" && p == "/etc")
        );
        assert!(matches!(parse_location("web:etc"), Location::Container(_, p) if p == "/etc"));
        assert!(matches!(parse_location("./a:b"), Location::Host(_)));
        assert!(matches!(parse_location("/tmp/x"), Location::Host(_)));
    }

    #[test]
    fn resolve_in_root_keeps_symlinks_inside() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/passwd"), "inside").unwrap();
        std::os::unix::fs::symlink("/", root.path().join("up")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.path().join("rel")).unwrap();
        let fd = nix::fcntl::open(
            root.path(),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        for path in ["/up/etc/passwd", "/rel/passwd", "/../../etc/passwd"] {
            let file = open_in_root(fd.as_fd(), path, OFlag::O_RDONLY).unwrap();
            let text = std::io::read_to_string(std::fs::File::from(file)).unwrap();
            assert_eq!(text, "inside", "{path}");
        }
    }
}
