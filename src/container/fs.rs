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
use crate::image::layer::{ApplyOptions, Compression, Whiteouts, apply};
use anyhow::{Context, Result};
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

/// The root of a container's filesystem on the host, mounted for the time of the call if the
/// container is stopped.
struct ContainerRoot {
    fd: OwnedFd,
    /// Unmount when done: we mounted it.
    unmount: Option<(Paths, String)>,
    /// The container's binds and volumes, which `cp` reads and writes at their sources.
    mounts: Vec<super::state::MountPoint>,
    /// The container's directory, holding the `/etc/resolv.conf`, `/etc/hostname` and
    /// `/etc/hosts` bound into it, once it has been started (before, the image's are seen).
    etc_dir: Option<OwnedFd>,
    /// `--read-only`: nothing is copied into the root, only into read-write mounts.
    read_only: bool,
}

/// The files Docker generates and binds into every container it starts.
const ETC_FILES: [&str; 3] = ["/etc/resolv.conf", "/etc/hostname", "/etc/hosts"];

/// A container path that lies in a bind or a volume: the mount's source directory, the path
/// inside it, and the mount point's own name when the path is the mount point itself.
struct InMount {
    dir: OwnedFd,
    path: String,
    name: String,
}

impl ContainerRoot {
    // ANCHOR: locate
    /// Where `cp` finds a container path that lies under one of the container's binds or
    /// volumes (the deepest one): in the mount's source on the host, as Docker mounts the
    /// volumes for a copy, since the container's own root does not hold them. The mount
    /// point is matched on the path's text; a symlink leading into a volume is resolved in
    /// the container's root instead, and a bind of a single file is not redirected.
    fn locate(&self, path: &str, follow_last: bool) -> Result<Option<InMount>> {
        let clean = self.resolve_to_mount(path, follow_last)?;
        let best = self
            .mounts
            .iter()
            .filter(|m| m.kind != "tmpfs")
            .filter(|m| clean == m.destination || clean.starts_with(&format!("{}/", m.destination)))
            .max_by_key(|m| m.destination.len());
        let Some(mount) = best else {
            return Ok(None);
        };
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let Ok(dir) = nix::fcntl::open(mount.source.as_str(), flags, Mode::empty()) else {
            return Ok(None);
        };
        let rest = &clean[mount.destination.len()..];
        let suffix = if path.ends_with("/.") {
            "/."
        } else if path.ends_with('/') {
            "/"
        } else {
            ""
        };
        let (path, name) = match rest {
            "" if suffix == "/." => ("/.".to_owned(), String::new()),
            "" => (
                "/".to_owned(),
                mount
                    .destination
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            ),
            _ => (format!("{rest}{suffix}"), String::new()),
        };
        Ok(Some(InMount { dir, path, name }))
    }
    // ANCHOR_END: locate

    // ANCHOR: resolve_to_mount
    /// The container path `path` (cleaned) with its symlinks resolved inside the container's
    /// root, as moby's `FollowSymlinkInScope` resolves it with the container's volumes
    /// mounted, up to the first bind or volume it enters: a link that leads into a volume
    /// takes the copy into the volume's source. The rest, inside the mount, is left to the
    /// open in the mount's source. `follow_last`: the last component is followed too (moby's
    /// `GetResourcePath` for a copy in; a copy out follows only the directories, as its
    /// `ResolvePath`, unless the path ends with `/` or `/.`).
    fn resolve_to_mount(&self, path: &str, follow_last: bool) -> Result<String> {
        let clean = super::spec::clean_container_path("the path", path)?;
        let follow_last = follow_last || path.ends_with('/') || path.ends_with("/.");
        let mut todo: std::collections::VecDeque<String> = clean
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        let mut current = String::new();
        let mut links = 0;
        while let Some(part) = todo.pop_front() {
            if part == ".." {
                current.truncate(current.rfind('/').unwrap_or(0));
                continue;
            }
            let candidate = format!("{current}/{part}");
            let in_mount = self.mounts.iter().any(|m| {
                m.kind != "tmpfs"
                    && (candidate == m.destination
                        || candidate.starts_with(&format!("{}/", m.destination)))
            });
            if in_mount || (todo.is_empty() && !follow_last) {
                current = candidate;
                break;
            }
            let Some(target) = self.read_link(&current, &part) else {
                current = candidate;
                continue;
            };
            links += 1;
            if links > 255 {
                return Err(refused(format!("too many links in {path:?}")));
            }
            if target.starts_with('/') {
                current.clear();
            }
            for part in target
                .split('/')
                .rev()
                .filter(|c| !c.is_empty() && *c != ".")
            {
                todo.push_front(part.to_owned());
            }
        }
        for part in todo {
            current.push('/');
            current.push_str(&part);
        }
        Ok(if current.is_empty() {
            "/".into()
        } else {
            current
        })
    }
    // ANCHOR_END: resolve_to_mount

    /// The target of the symlink `name` in the container directory `dir` (resolved, no
    /// symlinks), or `None` when it is not a symlink.
    fn read_link(&self, dir: &str, name: &str) -> Option<String> {
        let dir = if dir.is_empty() { "/" } else { dir };
        let parent = open_in_root(self.fd.as_fd(), dir, OFlag::O_PATH | OFlag::O_DIRECTORY).ok()?;
        let target = nix::fcntl::readlinkat(parent.as_fd(), name).ok()?;
        Some(target.to_string_lossy().into_owned())
    }

    // ANCHOR: read_only_mount
    /// Docker's `checkIfPathIsInAVolume`: a copy into a container directory `dir` (cleaned)
    /// that lies in a read-only bind or volume (the deepest mount holding it) is refused.
    /// (`--read-only`: a directory outside any mount is refused, as Docker's
    /// `ErrRootFSReadOnly`.)
    fn check_writable(&self, dir: &str) -> Result<()> {
        let holds = |m: &&super::state::MountPoint| {
            dir == m.destination || dir.starts_with(&format!("{}/", m.destination))
        };
        let deepest = self
            .mounts
            .iter()
            .filter(holds)
            .max_by_key(|m| m.destination.len());
        match deepest {
            Some(m) if !m.rw => Err(refused("mounted volume is marked read-only".into())),
            None if self.read_only => Err(refused("container rootfs is marked read-only".into())),
            _ => Ok(()),
        }
    }
    // ANCHOR_END: read_only_mount

    // ANCHOR: mount_point_busy
    /// Whether the container path `target` (cleaned) is a mount point that an entry copied
    /// onto it would unlink: a bind of one file, or one of the `/etc` files of a container
    /// that has been started. The kernel refuses with EBUSY inside the container, and
    /// Docker's extraction fails with its message; replacing the file under the bind on the
    /// host side instead would detach the bind.
    fn is_busy(&self, target: &str) -> bool {
        self.mounts.iter().any(|m| m.destination == target) || self.etc_file(target).is_some()
    }
    // ANCHOR_END: mount_point_busy

    /// The name in the container's directory of the generated file bound at the container
    /// path `target` (cleaned), if the container has been started and no volume replaces it.
    fn etc_file(&self, target: &str) -> Option<&'static str> {
        self.etc_dir.as_ref()?;
        let file = ETC_FILES.iter().find(|f| **f == target)?;
        if self.mounts.iter().any(|m| m.destination == target) {
            return None;
        }
        file.rsplit('/').next()
    }

    /// The generated `/etc` files as [`append_entry`] substitutes them in a walk of the
    /// container's `/etc` (the directory's device and inode, its names, and where they are).
    fn etc_substitutes(&self) -> Option<Substitutes<'_>> {
        let etc_dir = self.etc_dir.as_ref()?;
        let etc = open_in_root(self.fd.as_fd(), "/etc", OFlag::O_PATH | OFlag::O_DIRECTORY).ok()?;
        let st = nix::sys::stat::fstat(etc.as_fd()).ok()?;
        let names = ETC_FILES
            .iter()
            .filter_map(|f| self.etc_file(f))
            .map(|n| n.as_bytes().to_vec())
            .collect();
        Some(Substitutes {
            dir: (st.st_dev, st.st_ino),
            names,
            from: etc_dir.as_fd(),
        })
    }

    /// A copy out of `path` that names one of the generated `/etc` files: that file, from the
    /// container's directory, named as `path`'s last component.
    fn etc_source(&self, path: &str, follow_last: bool) -> Result<Option<Source>> {
        if asserts_directory(path) {
            return Ok(None);
        }
        let clean = self.resolve_to_mount(path, follow_last)?;
        let (Some(name), Some(dir)) = (self.etc_file(&clean), self.etc_dir.as_ref()) else {
            return Ok(None);
        };
        Ok(Some(Source {
            parent: dir.try_clone().context("duplicating a descriptor")?,
            name: name.as_bytes().to_vec(),
            is_dir: false,
            base: split_dir_entry(path).1,
        }))
    }
}

impl Drop for ContainerRoot {
    fn drop(&mut self) {
        if let Some((paths, id)) = self.unmount.take() {
            let _ = super::release_rootfs(&paths, &id);
        }
    }
}

fn container_root(paths: &Paths, name_or_id: &str) -> Result<ContainerRoot> {
    let state = paths.resolve(name_or_id)?;
    let merged = paths.dir(&state.id).join("merged");
    // An overlay, or the bind of copied layers where overlay was refused (rootless).
    let was_mounted = crate::overlay::mount_type(&merged)?.is_some();
    if !was_mounted {
        super::mount_rootfs(paths, &state)?;
    }
    let running = state.observe() == Status::Running;
    let etc_dir = if state.started_at == super::state::ZERO_TIME {
        None
    } else {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        nix::fcntl::open(&paths.dir(&state.id), flags, Mode::empty()).ok()
    };
    let unmount = (!was_mounted && !running).then(|| (paths.clone(), state.id.clone()));
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
                let _ = super::release_rootfs(&paths, &id);
            }
            return Err(err);
        }
    };
    Ok(ContainerRoot {
        fd,
        unmount,
        mounts: state.config.mounts.clone(),
        etc_dir,
        read_only: state.config.readonly_rootfs,
    })
}

/// Files a walk takes from elsewhere: in the directory of device and inode `dir`, the entries
/// `names` are read from the directory `from` instead (the container's generated `/etc`
/// files, which Docker's copy sees through their bind mounts).
struct Substitutes<'a> {
    dir: (u64, u64),
    names: Vec<Vec<u8>>,
    from: BorrowedFd<'a>,
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
    subs: Option<&Substitutes>,
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
            let here = (st.st_dev, st.st_ino);
            let substituted = subs.filter(|s| s.dir == here);
            for entry in names {
                let child_name = archive_name.join(OsStr::from_bytes(&entry));
                let from = match substituted {
                    Some(s) if s.names.contains(&entry) => s.from,
                    _ => child.as_fd(),
                };
                append_entry(builder, from, &entry, &child_name, links, subs)?;
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
    let reader = std::io::BufReader::new(archive);
    extract_stream(reader, Compression::None, dir, preserve_owners)
}

/// Extracts a tar stream into the directory open as `dir`, with the safe unpacker.
fn extract_stream<R: std::io::Read + Send>(
    reader: R,
    compression: Compression,
    dir: BorrowedFd,
    preserve_owners: bool,
) -> Result<()> {
    let options = ApplyOptions {
        preserve_owners,
        whiteouts: Whiteouts::Literal,
        ..ApplyOptions::default()
    };
    // /proc/self/fd/N names the directory we opened, not whatever its path means now.
    let path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    apply(reader, compression, &path, &options)?;
    Ok(())
}

/// One side of `cp`: a host path, `CONTAINER:PATH`, or `-` (a tar stream).
enum Location {
    Host(String),
    Container(String, String),
    Stream,
}

fn parse_location(text: &str) -> Location {
    // As Docker's CLI (`splitCpArg`): an absolute path or one starting with `.` is the host's,
    // whatever colons it holds; otherwise a colon makes it CONTAINER:PATH.
    if text == "-" {
        return Location::Stream;
    }
    if text.starts_with('/') || text.starts_with('.') {
        return Location::Host(text.to_owned());
    }
    match text.split_once(':') {
        Some((container, path)) => {
            let path = if path.starts_with('/') {
                path.to_owned()
            } else {
                format!("/{path}")
            };
            Location::Container(container.to_owned(), path)
        }
        None => Location::Host(text.to_owned()),
    }
}

/// `cp`'s flags besides the paths.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpOptions {
    /// `-L`: copy what a symlink source points to, under the link's name.
    pub follow_link: bool,
    /// `-a`: files copied into the container keep the source's uid and gid (else they belong
    /// to the container's root).
    pub archive: bool,
}

// ANCHOR: cp
/// `cp SRC CONTAINER:DST`, `cp CONTAINER:SRC DST`, `cp - CONTAINER:DIR` (a tar on stdin is
/// extracted into DIR) or `cp CONTAINER:SRC -` (a tar of SRC on stdout), with Docker's rules
/// (`docker container cp`, moby `pkg/archive/copy.go`):
///
/// ```text
/// source    destination                  result
/// file      missing                      written as the destination
/// file      missing, ends in / or /.     error "no such directory"
/// file      existing file                overwritten
/// any       existing directory           copied into it under its own name
/// dir       missing                      created with the source's contents
/// dir       existing file                error "cannot copy directory"
/// dir/.     existing directory           its contents copied into it
/// ```
///
/// A symlink source is copied as a link, unless `-L`. Container paths are resolved inside
/// the container's root. Every error exits 1, as Docker's CLI does.
pub fn cp(paths: &Paths, source: &str, destination: &str, options: &CpOptions) -> Result<()> {
    let result = match (parse_location(source), parse_location(destination)) {
        (Location::Container(container, from), Location::Host(to)) => {
            copy_out(paths, &container, &from, Some(&to), options)
        }
        (Location::Container(container, from), Location::Stream) => {
            copy_out(paths, &container, &from, None, options)
        }
        (Location::Host(from), Location::Container(container, to)) => {
            copy_in(paths, Some(&from), &container, &to, options)
        }
        (Location::Stream, Location::Container(container, to)) => {
            copy_in(paths, None, &container, &to, options)
        }
        (Location::Container(..), Location::Container(..)) => Err(refused(
            "copying between containers is not supported".into(),
        )),
        _ => Err(refused("must specify at least one container source".into())),
    };
    result.map_err(|err| {
        if err.chain().any(|cause| cause.is::<Exit>()) {
            err
        } else {
            refused(format!("{err:#}"))
        }
    })
}
// ANCHOR_END: cp

/// An errno as Go's `syscall.Errno` prints it (strerror, first letter lowercase), which is
/// how Docker's messages end.
pub(crate) fn go_error(errno: nix::errno::Errno) -> String {
    let desc = errno.desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => desc.to_owned(),
    }
}

/// Whether a path names a directory by its form: it ends in `/` or `/.`.
fn asserts_directory(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.") || path == "."
}

/// Docker's `SplitPathDirEntry`: the directory and the last entry of a path, after dropping
/// trailing `/` and `/.` (the parent of `a` is `.`, of `/a` is `/`).
fn split_dir_entry(path: &str) -> (String, String) {
    let mut trimmed = path;
    loop {
        let shorter = trimmed
            .strip_suffix("/.")
            .or_else(|| trimmed.strip_suffix('/'))
            .filter(|rest| !rest.is_empty());
        match shorter {
            Some(rest) => trimmed = rest,
            None => break,
        }
    }
    match trimmed.rsplit_once('/') {
        Some(("", name)) => ("/".into(), name.into()),
        Some((dir, name)) => (dir.into(), name.into()),
        None if trimmed == "/" => ("/".into(), String::new()),
        None => (".".into(), trimmed.into()),
    }
}

/// What `cp` copies: the entry `name` of the directory `parent` (`.`: `parent` itself), its
/// kind, and the name it takes in the archive (`base`; empty for a directory's contents).
struct Source {
    parent: OwnedFd,
    name: Vec<u8>,
    is_dir: bool,
    base: String,
}

/// Resolves a container source path inside the container's root. A path ending in `/` or
/// `/.` (or `/`) follows a last symlink and must be a directory; `/.` copies the contents.
fn container_source(
    root: BorrowedFd,
    container: &str,
    path: &str,
    follow_link: bool,
) -> Result<Source> {
    let not_found = || refused(format!("no such container:path: {container}:{path}"));
    let (dir, name) = split_dir_entry(path);
    if asserts_directory(path) || name.is_empty() {
        let fd = open_in_root(root, path, OFlag::O_PATH | OFlag::O_DIRECTORY).map_err(|errno| {
            match errno {
                nix::errno::Errno::ENOTDIR => {
                    refused(format!("{container}:{path}: {}", go_error(errno)))
                }
                _ => not_found(),
            }
        })?;
        let contents = path.ends_with("/.") || name.is_empty();
        return Ok(Source {
            parent: fd,
            name: b".".to_vec(),
            is_dir: true,
            base: if contents { String::new() } else { name },
        });
    }
    explain::step(
        "open the source inside the container's root",
        || format!("openat2(root, {dir:?}, RESOLVE_IN_ROOT)"),
        Chapter::PuttingTogether,
    );
    let parent =
        open_in_root(root, &dir, OFlag::O_PATH | OFlag::O_DIRECTORY).map_err(|_| not_found())?;
    let st = lstat_at(parent.as_fd(), name.as_bytes()).map_err(|_| not_found())?;
    if follow_link && kind(&st) == SFlag::S_IFLNK {
        // -L, as Docker's CLI: the link's target (relative to the link's directory) is what
        // is copied, under the link's name.
        let target = nix::fcntl::readlinkat(parent.as_fd(), name.as_str())?;
        let target = target.to_string_lossy();
        let target = if target.starts_with('/') {
            target.into_owned()
        } else {
            format!("{}/{target}", dir.trim_end_matches('/'))
        };
        let mut source = container_source(root, container, &target, false)?;
        if !source.base.is_empty() {
            source.base = name;
        }
        return Ok(source);
    }
    Ok(Source {
        parent,
        name: name.clone().into_bytes(),
        is_dir: kind(&st) == SFlag::S_IFDIR,
        base: name,
    })
}

/// Resolves a host source path as Docker's CLI does (`ResolveHostSourcePath`): symlinks in
/// the directory part are followed, the last one only with `-L`.
fn host_source(path: &str, follow_link: bool) -> Result<Source> {
    let lstat_failed =
        |errno: nix::errno::Errno| refused(format!("lstat {path}: {}", go_error(errno)));
    let open_dir = |dir: &str| {
        nix::fcntl::open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    };
    let (dir, name) = split_dir_entry(path);
    if asserts_directory(path) || name.is_empty() || name == ".." {
        let fd = open_dir(path).map_err(lstat_failed)?;
        let base = if path.ends_with("/.") || path == "." || name.is_empty() {
            String::new()
        } else if name == ".." {
            let real = std::fs::canonicalize(path).with_context(|| format!("resolving {path}"))?;
            real.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            name
        };
        return Ok(Source {
            parent: fd,
            name: b".".to_vec(),
            is_dir: true,
            base,
        });
    }
    let parent = open_dir(&dir).map_err(lstat_failed)?;
    let st = lstat_at(parent.as_fd(), name.as_bytes()).map_err(lstat_failed)?;
    if follow_link && kind(&st) == SFlag::S_IFLNK {
        let real = std::fs::canonicalize(path)
            .map_err(|e| refused(format!("lstat {path}: {}", go_error(errno_of(&e)))))?;
        let mut source = host_source(&real.to_string_lossy(), false)?;
        source.base = name;
        return Ok(source);
    }
    Ok(Source {
        parent,
        name: name.clone().into_bytes(),
        is_dir: kind(&st) == SFlag::S_IFDIR,
        base: name,
    })
}

fn errno_of(err: &std::io::Error) -> nix::errno::Errno {
    nix::errno::Errno::from_raw(err.raw_os_error().unwrap_or(nix::errno::Errno::EIO as i32))
}

/// The destination as found (Docker's `CopyInfo`): its path after following a symlink at its
/// end, whether it exists and is a directory.
struct Destination {
    path: String,
    exists: bool,
    is_dir: bool,
}

/// A container destination: a symlink at its end is followed once (as Docker's CLI does),
/// inside the container's root. A path ending in `/` or `/.` keeps its form (the daemon's
/// stat follows the link there), so a link to nothing is "no such directory", as in Docker.
fn container_destination(root: BorrowedFd, path: &str) -> Destination {
    let mut path = path.to_owned();
    let (dir, name) = split_dir_entry(&path);
    let link = open_in_root(root, &dir, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .ok()
        .filter(|_| !name.is_empty() && !asserts_directory(path.as_str()))
        .and_then(|parent| {
            let st = lstat_at(parent.as_fd(), name.as_bytes()).ok()?;
            (kind(&st) == SFlag::S_IFLNK)
                .then(|| nix::fcntl::readlinkat(parent.as_fd(), name.as_str()).ok())
                .flatten()
        });
    if let Some(target) = link {
        let target = target.to_string_lossy();
        path = if target.starts_with('/') {
            target.into_owned()
        } else {
            format!("{}/{target}", dir.trim_end_matches('/'))
        };
    }
    match open_in_root(root, &path, OFlag::O_PATH) {
        Ok(fd) => {
            let is_dir =
                nix::sys::stat::fstat(fd.as_fd()).is_ok_and(|st| kind(&st) == SFlag::S_IFDIR);
            Destination {
                path,
                exists: true,
                is_dir,
            }
        }
        Err(_) => Destination {
            path,
            exists: false,
            is_dir: false,
        },
    }
}

/// A host destination, as Docker's `CopyInfoDestinationPath`: symlinks at its end are
/// followed (at most 10); a missing path needs an existing parent directory.
fn host_destination(path: &str) -> Result<Destination> {
    let mut path = path.to_owned();
    for _ in 0..=10 {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&path)
                    .with_context(|| format!("readlink {path}"))?
                    .to_string_lossy()
                    .into_owned();
                path = if target.starts_with('/') {
                    target
                } else {
                    format!("{}/{target}", split_dir_entry(&path).0)
                };
            }
            Ok(meta) => {
                return Ok(Destination {
                    path,
                    exists: true,
                    is_dir: meta.is_dir(),
                });
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let (parent, _) = split_dir_entry(&path);
                let meta = std::fs::metadata(&parent)
                    .map_err(|e| refused(format!("stat {parent}: {}", go_error(errno_of(&e)))))?;
                if !meta.is_dir() {
                    return Err(refused("not a directory".into()));
                }
                return Ok(Destination {
                    path,
                    exists: false,
                    is_dir: false,
                });
            }
            Err(err) => {
                return Err(refused(format!(
                    "lstat {path}: {}",
                    go_error(errno_of(&err))
                )));
            }
        }
    }
    Err(refused(format!("too many symlinks in {path}")))
}

// ANCHOR: placement
/// Docker's `PrepareArchiveCopy`: the directory to extract into and the name the source's top
/// entry takes there.
fn placement(source: &Source, destination: &Destination) -> Result<(String, String)> {
    let (dir, base) = split_dir_entry(&destination.path);
    if destination.exists && destination.is_dir {
        Ok((destination.path.clone(), source.base.clone()))
    } else if destination.exists && source.is_dir {
        Err(refused("cannot copy directory".into()))
    } else if destination.exists || source.is_dir {
        Ok((dir, base))
    } else if asserts_directory(&destination.path) {
        Err(refused("no such directory".into()))
    } else {
        Ok((dir, base))
    }
}
// ANCHOR_END: placement

// ANCHOR: check_overwrites
/// Docker extracts a copy with `NoOverwriteDirNonDir`: no entry replaces a directory with a
/// non-directory or the reverse (an image layer's unpacking would). Checked before anything is
/// written, walking the source against what is at the destination (`dir`, shown as
/// `dir_path`), with `*at` calls that follow no symlink. `name` is the top entry's name there
/// (empty: the source's contents go into `dir` itself).
fn check_overwrites(source: &Source, dir: BorrowedFd, dir_path: &str, name: &str) -> Result<()> {
    let target = if name.is_empty() { "." } else { name };
    walk_overwrites(
        source.parent.as_fd(),
        &source.name,
        dir,
        target.as_bytes(),
        &format!("{}/{name}", dir_path.trim_end_matches('/')),
        dir_path,
    )
}

fn walk_overwrites(
    src_dir: BorrowedFd,
    src_name: &[u8],
    dst_dir: BorrowedFd,
    dst_name: &[u8],
    shown: &str,
    extract_dir: &str,
) -> Result<()> {
    let src_is_dir = kind(&lstat_at(src_dir, src_name)?) == SFlag::S_IFDIR;
    let Ok(existing) = lstat_at(dst_dir, dst_name) else {
        return Ok(());
    };
    let shown = shown.trim_end_matches('/');
    match (src_is_dir, kind(&existing) == SFlag::S_IFDIR) {
        (false, true) => Err(refused(format!(
            "cannot overwrite directory \"{shown}\" with non-directory \"{extract_dir}\""
        ))),
        (true, false) => Err(refused(format!(
            "cannot overwrite non-directory \"{shown}\" with directory \"{extract_dir}\""
        ))),
        (false, false) => Ok(()),
        (true, true) => {
            let open = |dir: BorrowedFd, name: &[u8]| {
                openat(
                    dir,
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
            };
            let src = open(src_dir, src_name)?;
            let dst = open(dst_dir, dst_name)?;
            for child in list_dir(src.as_fd())? {
                let child_shown = format!("{shown}/{}", String::from_utf8_lossy(&child));
                walk_overwrites(
                    src.as_fd(),
                    &child,
                    dst.as_fd(),
                    &child,
                    &child_shown,
                    extract_dir,
                )?;
            }
            Ok(())
        }
    }
}
// ANCHOR_END: check_overwrites

/// Writes `source` as a tar to `sink`, its top entry named `name` (empty: its contents), with
/// the files `subs` names taken from elsewhere.
fn tar_source<W: Write>(
    source: &Source,
    name: &str,
    sink: W,
    subs: Option<&Substitutes>,
) -> Result<W> {
    let mut builder = tar::Builder::new(sink);
    append_entry(
        &mut builder,
        source.parent.as_fd(),
        &source.name,
        Path::new(name),
        &mut HashMap::new(),
        subs,
    )?;
    builder.into_inner().context("writing the archive")
}

fn copy_out(
    paths: &Paths,
    container: &str,
    from: &str,
    to: Option<&str>,
    options: &CpOptions,
) -> Result<()> {
    let root = container_root(paths, container)?;
    let source = api_source(&root, container, from, options.follow_link)?;
    let subs = root.etc_substitutes();
    let Some(to) = to else {
        // `-`: the tar as is, on stdout.
        let stdout = std::io::stdout();
        let mut sink = tar_source(
            &source,
            &source.base,
            std::io::BufWriter::new(stdout.lock()),
            subs.as_ref(),
        )?;
        return sink.flush().context("writing to stdout");
    };
    let (dir, name) = placement(&source, &host_destination(to)?)?;
    let mut archive = tar_source(
        &source,
        &name,
        tempfile::tempfile().context("creating a temp file")?,
        subs.as_ref(),
    )?;
    archive.rewind()?;
    let dir_fd = nix::fcntl::open(
        dir.as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| refused(format!("open {dir}: {}", go_error(errno))))?;
    check_overwrites(&source, dir_fd.as_fd(), &dir, &name)?;
    // Files copied out belong to the caller, as with Docker.
    extract_into(archive, dir_fd.as_fd(), false)
}

fn copy_in(
    paths: &Paths,
    from: Option<&str>,
    container: &str,
    to: &str,
    options: &CpOptions,
) -> Result<()> {
    // The host side first: a missing source fails before the container is touched.
    let source = from
        .map(|from| host_source(from, options.follow_link))
        .transpose()?;
    let root = container_root(paths, container)?;
    explain::step(
        "open the destination inside the container's root",
        || format!("openat2(root, {to:?}, RESOLVE_IN_ROOT)"),
        Chapter::PuttingTogether,
    );
    let Some(source) = source else {
        // `-`: a tar on stdin, into an existing directory.
        return upload(&root, container, to, std::io::stdin(), options.archive);
    };
    let clean_to = root.resolve_to_mount(to, true)?;
    let located = root.locate(to, true)?;
    let (base, to) = match &located {
        Some(at) => (at.dir.as_fd(), at.path.as_str()),
        None => (root.fd.as_fd(), to),
    };
    let destination = container_destination(base, to);
    let (dir_path, name) = placement(&source, &destination)?;
    let extract_dir = if destination.exists && destination.is_dir {
        clean_to.clone()
    } else {
        split_dir_entry(&clean_to).0
    };
    root.check_writable(&extract_dir)?;
    let dir =
        open_in_root(base, &dir_path, OFlag::O_PATH | OFlag::O_DIRECTORY).map_err(|errno| {
            match errno {
                nix::errno::Errno::ENOTDIR => refused("extraction point is not a directory".into()),
                _ => refused(format!("no such container:path: {container}:{dir_path}")),
            }
        })?;
    check_overwrites(&source, dir.as_fd(), &dir_path, &name)?;
    let archive = tar_source(
        &source,
        &name,
        tempfile::tempfile().context("creating a temp file")?,
        None,
    )?;
    let archive = check_upload(&root, archive, &extract_dir, dir.as_fd())?;
    // Files copied in belong to root in the container, unless -a.
    extract_into(archive, dir.as_fd(), options.archive)
}

/// A path in a container as the Engine API's archive endpoints describe it (moby's
/// `container.PathStat`, sent base64 JSON in `X-Docker-Container-Path-Stat`).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode`: the permission bits and Go's type bits (directory `1<<31`,
    /// symlink `1<<27`, ...).
    pub mode: u32,
    /// RFC 3339, UTC.
    pub mtime: String,
    /// A symlink's target, as stored.
    pub link_target: String,
}

/// Go's `os.FileMode` of a `st_mode`.
fn go_file_mode(mode: u32) -> u32 {
    let mut go = mode & 0o777;
    go |= match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFDIR => 1 << 31,
        SFlag::S_IFLNK => 1 << 27,
        SFlag::S_IFIFO => 1 << 25,
        SFlag::S_IFSOCK => 1 << 24,
        SFlag::S_IFBLK => 1 << 26,
        SFlag::S_IFCHR => (1 << 26) | (1 << 21),
        _ => 0,
    };
    if mode & 0o4000 != 0 {
        go |= 1 << 23;
    }
    if mode & 0o2000 != 0 {
        go |= 1 << 22;
    }
    if mode & 0o1000 != 0 {
        go |= 1 << 20;
    }
    go
}

/// Resolves `path` in the container (its volumes and generated `/etc` files included) as `cp`
/// does; `follow_link`: a symlink at its end is followed (`-L`).
fn api_source(
    root: &ContainerRoot,
    container: &str,
    path: &str,
    follow_link: bool,
) -> Result<Source> {
    if let Some(source) = root.etc_source(path, follow_link)? {
        return Ok(source);
    }
    let source = match root.locate(path, false)? {
        Some(at) => {
            let mut source = container_source(at.dir.as_fd(), container, &at.path, follow_link)?;
            if !at.name.is_empty() && source.base.is_empty() {
                source.base = at.name.clone();
            }
            source
        }
        None => container_source(root.fd.as_fd(), container, path, follow_link)?,
    };
    Ok(source)
}

/// `HEAD /containers/{id}/archive?path=`: what `path` is in container `container`. Errors:
/// "no such container:path" when it does not exist.
pub fn stat_path(paths: &Paths, container: &str, path: &str) -> Result<PathStat> {
    let root = container_root(paths, container)?;
    let source = api_source(&root, container, path, false)?;
    let st = lstat_at(source.parent.as_fd(), &source.name)?;
    let link_target = if kind(&st) == SFlag::S_IFLNK {
        let name = String::from_utf8_lossy(&source.name).into_owned();
        nix::fcntl::readlinkat(source.parent.as_fd(), name.as_str())?
            .to_string_lossy()
            .into_owned()
    } else {
        String::new()
    };
    let (_, base) = split_dir_entry(path);
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(st.st_mtime.max(0) as u64);
    Ok(PathStat {
        name: if base.is_empty() { "/".into() } else { base },
        size: st.st_size,
        mode: go_file_mode(st.st_mode),
        mtime: crate::state::rfc3339(mtime),
        link_target,
    })
}

/// `GET /containers/{id}/archive?path=`: `path` as a tar written to `sink` (what
/// `cp CONTAINER:PATH -` writes), with its stat.
pub fn archive_out(paths: &Paths, container: &str, path: &str, sink: &mut dyn Write) -> Result<()> {
    let root = container_root(paths, container)?;
    let source = api_source(&root, container, path, false)?;
    let subs = root.etc_substitutes();
    tar_source(&source, &source.base, sink, subs.as_ref())?
        .flush()
        .context("writing the archive")
}

/// `PUT /containers/{id}/archive?path=`: unpacks the tar `input` (plain or compressed) into
/// the existing directory `path` (what `cp - CONTAINER:PATH` does); files belong to root
/// unless `preserve_owners`.
pub fn archive_in(
    paths: &Paths,
    container: &str,
    path: &str,
    input: std::fs::File,
    preserve_owners: bool,
) -> Result<()> {
    let root = container_root(paths, container)?;
    upload(&root, container, path, input, preserve_owners)
}

/// Unpacks the tar `input` (plain, gzip, bzip2, xz or zstd, by the magic bytes, as Docker's
/// `DecompressStream`) into the existing container directory `path`, after
/// [`check_upload`] has read all of it: a refused archive writes nothing.
fn upload<R: std::io::Read>(
    root: &ContainerRoot,
    container: &str,
    path: &str,
    input: R,
    preserve_owners: bool,
) -> Result<()> {
    let clean = root.resolve_to_mount(path, true)?;
    let located = root.locate(path, true)?;
    let (base, to) = match &located {
        Some(at) => (at.dir.as_fd(), at.path.as_str()),
        None => (root.fd.as_fd(), path),
    };
    let destination = container_destination(base, to);
    if !(destination.exists && destination.is_dir) {
        return Err(refused(format!(
            "destination \"{container}:{path}\" must be a directory"
        )));
    }
    root.check_writable(&clean)?;
    let dir = open_in_root(base, &destination.path, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|_| refused(format!("no such container:path: {container}:{path}")))?;
    let (mut input, _) = crate::image::archive::decompressed(input)?;
    let mut spool = tempfile::tempfile().context("creating a temp file")?;
    std::io::copy(&mut input, &mut spool).context("reading the tar stream")?;
    spool.rewind()?;
    let archive = check_upload(root, spool, &clean, dir.as_fd())?;
    extract_into(archive, dir.as_fd(), preserve_owners)
}

/// moby's untar refusals, as its CLI shows them.
fn untar_refused(message: String) -> anyhow::Error {
    refused(format!(
        "Error processing tar file(exit status 1): {message}"
    ))
}

// ANCHOR: check_upload
/// Reads the whole tar `archive` (to be unpacked into the container directory `dest`, open as
/// `dir`) before anything of it is written, and refuses it (exit 1) with the words of moby's
/// `pkg/archive` untar when an entry would land outside `dest` (`"../x" is outside of "/tmp"`),
/// a link would point out of it (`invalid symlink "/x" -> "../../x"`, `invalid hardlink ...`),
/// or a non-directory would replace a mount point (a file bind, the generated `/etc` files:
/// `unlinkat /etc/hosts: device or resource busy`). Paths are resolved lexically, as there: an
/// absolute name, or one climbing up and back (`../tmp/x` into `/tmp`), lands where Go's
/// `filepath.Join` puts it. An entry below a symlink (of the archive or already there) is
/// refused too: the unpacker follows no symlink. Returns the archive to unpack, its names
/// rewritten relative to `dest` when some were not.
fn check_upload(
    root: &ContainerRoot,
    archive: std::fs::File,
    dest: &str,
    dir: BorrowedFd,
) -> Result<std::fs::File> {
    let mut archive = archive;
    archive.rewind()?;
    let mut tar = tar::Archive::new(std::io::BufReader::new(&archive));
    let entries = tar.entries().context("reading the tar stream")?;
    // What earlier entries made: relative path, and whether it is a symlink.
    let mut made: HashMap<String, bool> = HashMap::new();
    let mut rename = false;
    for entry in entries {
        let entry = entry.map_err(|e| crate::cli::untrusted_error("reading the tar stream", e))?;
        let name = entry.path_bytes().into_owned();
        let path = join_inside(dest, &name).ok_or_else(|| {
            untar_refused(format!(
                "{} is outside of {}",
                crate::cli::quote(go_clean(&name)),
                crate::cli::quote(dest)
            ))
        })?;
        rename |= !plain(&name);
        let entry_type = entry.header().entry_type();
        if let Some(link) = entry.link_name_bytes() {
            check_link(dest, &path, entry_type, &link)?;
            rename |= entry_type == tar::EntryType::Link && !plain(&link);
        }
        if !entry_type.is_dir() && root.is_busy(&path) {
            return Err(untar_refused(format!(
                "unlinkat {path}: device or resource busy"
            )));
        }
        let rel = relative(dest, &path);
        check_not_through_link(&made, dir, &rel, &name)?;
        made.insert(rel, entry_type == tar::EntryType::Symlink);
    }
    drop(tar);
    archive.rewind()?;
    if !rename {
        return Ok(archive);
    }
    let mut renamed = rewrite_names(archive, dest)?;
    renamed.rewind()?;
    Ok(renamed)
}
// ANCHOR_END: check_upload

/// `name` joined onto `dest` and cleaned (Go's `filepath.Join`), if it stays inside `dest`.
fn join_inside(dest: &str, name: &[u8]) -> Option<String> {
    let name = String::from_utf8_lossy(name);
    let path = super::spec::clean_container_path("the path", &format!("{dest}/{name}")).ok()?;
    is_inside(dest, &path).then_some(path)
}

/// Whether the cleaned container path `path` is `dest` or below it.
fn is_inside(dest: &str, path: &str) -> bool {
    dest == "/" || path == dest || path.strip_prefix(dest).is_some_and(|r| r.starts_with('/'))
}

/// `path` (inside `dest`) relative to `dest`: empty for `dest` itself.
fn relative(dest: &str, path: &str) -> String {
    path.strip_prefix(dest)
        .unwrap_or(path)
        .trim_start_matches('/')
        .to_owned()
}

/// Whether an entry name is already relative and never climbs (`a/b`, `./a`), so the
/// unpacker takes it as it is.
fn plain(name: &[u8]) -> bool {
    !name.starts_with(b"/") && !name.split(|b| *b == b'/').any(|part| part == b"..")
}

/// moby's link checks: a symlink's target, from the link's directory, and a hard link's, from
/// `dest`, must stay inside `dest` (absolute targets read under it, as `filepath.Join` does).
/// The refusal names the symlink's own path, or the hard link's target, as moby's does.
fn check_link(dest: &str, path: &str, entry_type: tar::EntryType, link: &[u8]) -> Result<()> {
    let (kind, from) = match entry_type {
        tar::EntryType::Symlink => ("symlink", split_dir_entry(path).0),
        tar::EntryType::Link => ("hardlink", dest.to_owned()),
        _ => return Ok(()),
    };
    let target = super::spec::clean_container_path(
        "the path",
        &format!("{from}/{}", String::from_utf8_lossy(link)),
    )
    .unwrap_or_default();
    if is_inside(dest, &target) {
        return Ok(());
    }
    let shown = if kind == "symlink" { path } else { &target };
    Err(untar_refused(format!(
        "invalid {kind} {} -> {}",
        crate::cli::quote(shown),
        crate::cli::quote(link)
    )))
}

/// Go's `filepath.Clean` of an entry name, as moby's messages show it (`a/../../x`: `../x`).
fn go_clean(name: &[u8]) -> Vec<u8> {
    let absolute = name.starts_with(b"/");
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in name.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." if parts.last().is_some_and(|p| *p != b"..") => {
                parts.pop();
            }
            b".." if absolute => {}
            _ => parts.push(part),
        }
    }
    let joined = parts.join(&b'/');
    match (absolute, joined.is_empty()) {
        (true, _) => [b"/".as_slice(), &joined].concat(),
        (false, true) => b".".to_vec(),
        (false, false) => joined,
    }
}

/// Refuses the entry at `rel` (relative to the extraction directory `dir`; `name` as the
/// archive gives it) when one of its parent directories is a symlink, made by an earlier entry
/// (`made`) or already on disk: Docker follows it, resolved in the container's root, where
/// the unpacker follows no symlink, so the archive is refused before anything is written.
fn check_not_through_link(
    made: &HashMap<String, bool>,
    dir: BorrowedFd,
    rel: &str,
    name: &[u8],
) -> Result<()> {
    let parts: Vec<&str> = rel.split('/').collect();
    for end in 1..parts.len() {
        let prefix = parts[..end].join("/");
        let is_link = match made.get(&prefix) {
            Some(is_link) => *is_link,
            None => {
                let how = OpenHow::new()
                    .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
                    .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
                openat2(dir, prefix.as_str(), how)
                    .and_then(|fd| nix::sys::stat::fstat(fd.as_fd()))
                    .is_ok_and(|st| kind(&st) == SFlag::S_IFLNK)
            }
        };
        if is_link {
            return Err(refused(format!(
                "extracting {}: {} is a symbolic link; extracting through a symbolic link is \
                 not supported",
                crate::cli::quote(name),
                crate::cli::quote(&prefix)
            )));
        }
    }
    Ok(())
}

/// The tar `archive` again, each entry named relative to `dest` (and each hard link's target),
/// as moby's untar places them.
fn rewrite_names(archive: std::fs::File, dest: &str) -> Result<std::fs::File> {
    let mut tar = tar::Archive::new(std::io::BufReader::new(archive));
    let mut builder = tar::Builder::new(tempfile::tempfile().context("creating a temp file")?);
    for entry in tar.entries().context("reading the tar stream")? {
        let entry = entry.map_err(|e| crate::cli::untrusted_error("reading the tar stream", e))?;
        let name = entry.path_bytes().into_owned();
        let rel = join_inside(dest, &name)
            .map(|path| relative(dest, &path))
            .unwrap_or_default();
        let rel = if rel.is_empty() { ".".to_owned() } else { rel };
        let mut header = entry.header().clone();
        let entry_type = header.entry_type();
        match entry.link_name_bytes().map(|l| l.into_owned()) {
            Some(link) if entry_type == tar::EntryType::Link => {
                let target = join_inside(dest, &link)
                    .map(|path| relative(dest, &path))
                    .unwrap_or_default();
                builder.append_link(&mut header, &rel, &target)?;
            }
            Some(link) if entry_type == tar::EntryType::Symlink => {
                builder.append_link(&mut header, &rel, OsStr::from_bytes(&link))?;
            }
            _ => builder.append_data(&mut header, &rel, entry)?,
        }
    }
    builder.into_inner().context("writing the archive")
}

/// The container's whole filesystem as a tar, written to `sink`.
pub fn export_to(paths: &Paths, container: &str, sink: &mut dyn Write) -> Result<()> {
    let root = container_root(paths, container)?;
    let dir = openat(
        root.fd.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // With the xattrs (file capabilities, `user.*`), as `docker export` keeps them.
    crate::image::layer::write_tree(dir.as_fd(), sink)?.flush()?;
    Ok(())
}

// ANCHOR: export
/// `export`: the container's whole filesystem as a tar, to `output` or stdout.
pub fn export(paths: &Paths, container: &str, output: Option<&Path>) -> Result<()> {
    let write = |sink: &mut dyn Write| export_to(paths, container, sink);
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
        assert_eq!(split_dir_entry("/a/b"), ("/a".into(), "b".into()));
        assert_eq!(split_dir_entry("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(split_dir_entry("/a/b/."), ("/a".into(), "b".into()));
        assert_eq!(split_dir_entry("/b"), ("/".into(), "b".into()));
        assert_eq!(split_dir_entry("/"), ("/".into(), String::new()));
        assert_eq!(split_dir_entry("b/"), (".".into(), "b".into()));
        assert!(asserts_directory("/a/") && asserts_directory("/a/.") && !asserts_directory("/a"));
        assert!(
            matches!(parse_location("web:/etc"), Location::Container(c, p) if c == "web" && p == "/etc")
        );
        assert!(matches!(parse_location("web:etc"), Location::Container(_, p) if p == "/etc"));
        assert!(matches!(parse_location("./a:b"), Location::Host(_)));
        assert!(matches!(parse_location("/tmp/x:y"), Location::Host(_)));
        assert!(matches!(parse_location("x"), Location::Host(_)));
        assert!(matches!(parse_location("-"), Location::Stream));
    }

    #[test]
    fn tar_names_are_placed_as_go_joins_them() {
        assert_eq!(go_clean(b"a/../../x"), b"../x");
        assert_eq!(go_clean(b"/../abs/./f"), b"/abs/f");
        assert_eq!(go_clean(b"./"), b".");
        assert_eq!(
            join_inside("/tmp", b"../../tmp/x").as_deref(),
            Some("/tmp/x")
        );
        assert_eq!(join_inside("/tmp", b"/abs").as_deref(), Some("/tmp/abs"));
        assert_eq!(join_inside("/tmp/dst", b"../x"), None);
        assert_eq!(join_inside("/", b"../x").as_deref(), Some("/x"));
        assert_eq!(relative("/tmp", "/tmp/a/b"), "a/b");
        assert_eq!(relative("/", "/x"), "x");
        assert!(plain(b"./a/b") && !plain(b"/a") && !plain(b"a/../b"));
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
