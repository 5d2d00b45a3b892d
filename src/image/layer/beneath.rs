//! Resolving paths *beneath* a directory without ever following a symlink.
//!
//! Checking a path's text is not enough. If an earlier entry (or an earlier layer) planted
//! `etc -> /etc`, then an innocent-looking `etc/passwd` written with `open("DIR/etc/passwd")`
//! lands on the host's `/etc/passwd`: the kernel follows the symlink while resolving the path.
//! That is CVE-2014-9356 (Docker, absolute symlinks in an image), CVE-2021-38511 (the Rust `tar`
//! crate creating directories through a symlink), and, as a race against string checks,
//! CVE-2018-15664 (`docker cp`). Checking with `lstat` first and then opening by path is still
//! a race: the path can change between the check and the use.
//!
//! So every operation here works on directory *file descriptors*: a directory is opened once,
//! and everything below it is named relative to that fd with the `*at` system calls. Opening
//! one component at a time with `O_NOFOLLOW` refuses a symlink at that step; `openat2(2)` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` (Linux 5.6) does the whole walk in one call with the
//! same guarantee enforced by the kernel. We try `openat2` first and fall back to the walk
//! (older kernels, seccomp filters that hide the syscall), which is also what creates missing
//! parent directories.

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{FileStat, Mode, SFlag, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};

use super::path::show;

/// Why a directory could not be reached. Each names the path prefix where the walk stopped.
#[derive(Debug)]
pub enum WalkError {
    Symlink(Vec<u8>),
    NotDir(Vec<u8>),
    Missing(Vec<u8>),
    Io(Vec<u8>, Errno),
}

impl WalkError {
    pub fn describe(&self) -> String {
        match self {
            WalkError::Symlink(p) => format!(
                "{} is a symlink, and layer paths may not pass through symlinks",
                show(p)
            ),
            WalkError::NotDir(p) => format!("{} is not a directory", show(p)),
            WalkError::Missing(p) => format!("{} does not exist", show(p)),
            WalkError::Io(p, e) => format!("opening {}: {}", show(p), e.desc()),
        }
    }
}

/// Called with each directory the walk had to create.
pub type OnCreate<'a> = &'a mut dyn FnMut(&[u8]);

/// Whether `openat2` works here: 0 unknown, 1 yes, 2 no.
static OPENAT2: AtomicU8 = AtomicU8::new(0);

fn dir_flags(for_path_only: bool) -> OFlag {
    // O_PATH is enough to be the `dirfd` of *at calls and needs no read permission on the
    // directory; fchmod/futimens/fsetxattr need a real open.
    let access = if for_path_only {
        OFlag::O_PATH
    } else {
        OFlag::O_RDONLY
    };
    access | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

// ANCHOR: open_dir
/// Opens the directory `rel` (a cleaned relative path; empty means `root` itself) beneath
/// `root`. No component may be a symlink. With `create`, missing directories are made (mode
/// 0755, as GNU tar does for parents an archive does not list) and reported to `created`.
pub fn open_dir(
    root: BorrowedFd<'_>,
    rel: &[u8],
    for_path_only: bool,
    create: Option<OnCreate<'_>>,
) -> Result<OwnedFd, WalkError> {
    let flags = dir_flags(for_path_only);
    if rel.is_empty() {
        return openat(root, ".", flags, Mode::empty()).map_err(|e| WalkError::Io(Vec::new(), e));
    }
    if OPENAT2.load(Ordering::Relaxed) != 2 {
        let how = OpenHow::new().flags(flags).resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
        match openat2(root, rel, how) {
            Ok(fd) => {
                OPENAT2.store(1, Ordering::Relaxed);
                return Ok(fd);
            }
            // Not available (old kernel, or a seccomp profile that answers ENOSYS/EPERM):
            // remember, and use the component walk from now on.
            Err(Errno::ENOSYS | Errno::EPERM | Errno::E2BIG | Errno::EINVAL)
                if OPENAT2.load(Ordering::Relaxed) == 0 =>
            {
                OPENAT2.store(2, Ordering::Relaxed);
            }
            // ELOOP (a symlink), ENOENT, ENOTDIR, EAGAIN...: the walk below finds out exactly
            // which component is at fault, and creates what is missing.
            Err(_) => {}
        }
    }
    walk(root, rel, flags, create)
}
// ANCHOR_END: open_dir

// ANCHOR: walk
fn walk(
    root: BorrowedFd<'_>,
    rel: &[u8],
    flags: OFlag,
    mut create: Option<OnCreate<'_>>,
) -> Result<OwnedFd, WalkError> {
    let mut current: Option<OwnedFd> = None;
    let mut end = 0;
    let components: Vec<&[u8]> = rel.split(|&b| b == b'/').collect();
    for (i, name) in components.iter().enumerate() {
        end += if i == 0 { name.len() } else { name.len() + 1 };
        let prefix = &rel[..end];
        let last = i + 1 == components.len();
        // Intermediate directories only serve as dirfds: O_PATH.
        let step_flags = if last { flags } else { dir_flags(true) };
        let parent = current.as_ref().map(|fd| fd.as_fd()).unwrap_or(root);
        let opened = match openat(parent, *name, step_flags, Mode::empty()) {
            Err(Errno::ENOENT) if create.is_some() => {
                match mkdirat(parent, *name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) => {
                        if let Some(created) = create.as_mut() {
                            created(prefix);
                        }
                    }
                    Err(Errno::EEXIST) => {}
                    Err(e) => return Err(WalkError::Io(prefix.to_vec(), e)),
                }
                openat(parent, *name, step_flags, Mode::empty())
            }
            other => other,
        };
        match opened {
            Ok(fd) => current = Some(fd),
            Err(Errno::ENOENT) => return Err(WalkError::Missing(prefix.to_vec())),
            // O_NOFOLLOW on a symlink gives ELOOP; O_DIRECTORY on a non-directory ENOTDIR.
            // Ask the filesystem which one it is, without following anything.
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                return Err(match lstat_at(parent, name) {
                    Ok(st) if kind(&st) == SFlag::S_IFLNK => WalkError::Symlink(prefix.to_vec()),
                    _ => WalkError::NotDir(prefix.to_vec()),
                });
            }
            Err(e) => return Err(WalkError::Io(prefix.to_vec(), e)),
        }
    }
    current.ok_or(WalkError::Missing(rel.to_vec()))
}
// ANCHOR_END: walk

pub fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> nix::Result<FileStat> {
    fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
}

pub fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// Removes `name` in `dir`, and everything below it if it is a directory, without following
/// symlinks: a symlink is unlinked, never entered. This is what `rm -rf` should be inside a
/// tree an attacker shaped (std's `remove_dir_all` does the same since CVE-2022-21658).
pub fn remove_all_at(dir: BorrowedFd<'_>, name: &[u8]) -> nix::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        // unlink(2) on a directory: EISDIR on Linux (POSIX also allows EPERM).
        Err(Errno::EISDIR | Errno::EPERM) => {}
        Err(e) => return Err(e),
    }
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    empty_dir(fd.as_fd())?;
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)
}

/// Removes every child of the open directory `fd` for which `keep` says no.
pub fn remove_children(fd: BorrowedFd<'_>, keep: &mut dyn FnMut(&[u8]) -> bool) -> nix::Result<()> {
    for name in list_dir(fd)? {
        if !keep(&name) {
            remove_all_at(fd, &name)?;
        }
    }
    Ok(())
}

fn empty_dir(fd: BorrowedFd<'_>) -> nix::Result<()> {
    remove_children(fd, &mut |_| false)
}

/// The names in an open directory, without `.` and `..`.
pub fn list_dir(fd: BorrowedFd<'_>) -> nix::Result<Vec<Vec<u8>>> {
    // Dir takes ownership of an fd and reads it with getdents; give it its own open of the
    // same directory so the caller's fd (and its offset) is untouched.
    let own = openat(
        fd,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut dir = nix::dir::Dir::from_fd(own)?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

/// The magic-link path of `name` inside the directory open as `dir`, for the few calls that
/// have no `*at` form (lsetxattr on a symlink or a device node). /proc/self/fd/N resolves to
/// the directory we already hold, so no user-controlled path is resolved, and l*xattr does not
/// follow the final component.
pub fn proc_path(dir: BorrowedFd<'_>, name: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let mut path = std::path::PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    path.push(std::ffi::OsStr::from_bytes(name));
    path
}

/// Sets an extended attribute on an open file.
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> nix::Result<()> {
    let name = std::ffi::CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: valid fd, NUL-terminated name, value pointer and length from one slice.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(rc).map(drop)
}

/// Sets an extended attribute on a path without following a final symlink.
pub fn lsetxattr(path: &std::path::Path, name: &str, value: &[u8]) -> nix::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let name = std::ffi::CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: NUL-terminated strings, value pointer and length from one slice.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(rc).map(drop)
}

/// Reads one extended attribute of a path without following a final symlink; `None` when it
/// is not set.
pub fn lgetxattr(path: &std::path::Path, name: &str) -> nix::Result<Option<Vec<u8>>> {
    use std::os::unix::ffi::OsStrExt;
    let cpath = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let cname = std::ffi::CString::new(name).map_err(|_| Errno::EINVAL)?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: NUL-terminated strings; buf is valid for buf.len() bytes.
        let rc = unsafe {
            libc::lgetxattr(
                cpath.as_ptr(),
                cname.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        match Errno::result(rc) {
            Ok(n) => {
                buf.truncate(n as usize);
                return Ok(Some(buf));
            }
            Err(Errno::ENODATA | Errno::ENOTSUP) => return Ok(None),
            Err(Errno::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 8, 0),
            Err(e) => return Err(e),
        }
    }
}

/// The names of a path's extended attributes, without following a final symlink.
pub fn llistxattr(path: &std::path::Path) -> nix::Result<Vec<String>> {
    use std::os::unix::ffi::OsStrExt;
    let cpath = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: NUL-terminated path; buf is valid for buf.len() bytes.
        let rc = unsafe { libc::llistxattr(cpath.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        match Errno::result(rc) {
            Ok(n) => {
                buf.truncate(n as usize);
                break;
            }
            Err(Errno::ENOTSUP) => return Ok(Vec::new()),
            Err(Errno::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 8, 0),
            Err(e) => return Err(e),
        }
    }
    Ok(buf
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect())
}

/// This process's umask, read from /proc/self/status (Linux 4.7+) because umask(2) can only
/// be read by setting it, which would race with other threads creating files. `None` if
/// unknown: callers then always chmod.
pub fn current_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Umask:"))?;
    u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root(dir: &std::path::Path) -> OwnedFd {
        nix::fcntl::open(dir, dir_flags(true), Mode::empty()).unwrap()
    }

    #[test]
    fn open_dir_refuses_a_symlink_anywhere_in_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a/b")).unwrap();
        symlink("/", tmp.path().join("a/up")).unwrap();
        let fd = root(tmp.path());
        assert!(open_dir(fd.as_fd(), b"a/b", true, None).is_ok());
        match open_dir(fd.as_fd(), b"a/up/etc", true, None) {
            Err(WalkError::Symlink(p)) => assert_eq!(p, b"a/up"),
            other => panic!("expected a symlink error, got {other:?}"),
        }
        match walk(fd.as_fd(), b"a/up", dir_flags(true), None) {
            Err(WalkError::Symlink(p)) => assert_eq!(p, b"a/up"),
            other => panic!("expected a symlink error, got {other:?}"),
        }
    }

    #[test]
    fn open_dir_creates_missing_parents_and_reports_them() {
        let tmp = tempfile::tempdir().unwrap();
        let fd = root(tmp.path());
        let mut made = Vec::new();
        let mut note = |p: &[u8]| made.push(String::from_utf8_lossy(p).into_owned());
        open_dir(fd.as_fd(), b"x/y/z", true, Some(&mut note)).unwrap();
        assert_eq!(made, ["x", "x/y", "x/y/z"]);
        assert!(tmp.path().join("x/y/z").is_dir());
    }

    #[test]
    fn remove_all_at_never_enters_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        let inside = tmp.path().join("inside");
        std::fs::create_dir_all(inside.join("d/e")).unwrap();
        symlink(&outside, inside.join("d/link")).unwrap();
        let fd = root(&inside);
        remove_all_at(fd.as_fd(), b"d").unwrap();
        assert!(!inside.join("d").exists());
        assert!(outside.join("keep").exists());
    }

    #[test]
    fn umask_is_readable() {
        assert!(current_umask().is_some());
    }
}
