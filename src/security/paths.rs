//! Masked and read-only paths: the parts of /proc and /sys a container can see but must not
//! read or write.
//!
//! procfs and sysfs are not namespaced file by file. A fresh /proc in a new PID namespace shows
//! only the container's processes, but `/proc/kcore` is still the host's physical memory,
//! `/proc/sysrq-trigger` still reboots the host, and `/proc/sys` still tunes the host's kernel.
//! So the runtime hides some of these files (masks them) and makes others read-only, in the
//! container's own mount namespace, right after pivot_root. The OCI spec carries the two
//! lists as `linux.maskedPaths` and `linux.readonlyPaths`.

use crate::explain::Chapter;
use crate::syscall::Mount;
use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag, fstat, major, minor};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

// ANCHOR: lists
/// Docker's masked paths (moby `oci/defaults.go`, Docker 28). Each is an information leak
/// about the host or a handle on it: `kcore` is physical memory, `keys` lists the kernel's
/// keyrings, `timer_list` and `sched_debug` show host tasks and addresses, `interrupts` and
/// `powercap` leak enough for timing and power side channels (the "Platypus" attack),
/// `/sys/firmware` exposes ACPI tables and EFI variables.
pub const DOCKER_MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// Docker's read-only paths: the kernel's knobs. `/proc/sys` is sysctl (most of it global to
/// the host), `/proc/sysrq-trigger` can crash or reboot the machine, `/proc/irq` steers
/// interrupts, `/proc/bus` reaches PCI devices, `/proc/fs` tunes filesystems.
pub const DOCKER_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
// ANCHOR_END: lists

/// The per-CPU thermal throttle counters, which Docker also masks (one directory per CPU, so
/// the list depends on the host, as Docker computes it when it creates the container).
pub fn thermal_throttle_paths(cpu_root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(cpu_root) else {
        return Vec::new();
    };
    let mut paths: Vec<String> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix("cpu")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|e| e.path().join("thermal_throttle"))
        .filter(|p| p.exists())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    paths.sort();
    paths
}

/// `linux.maskedPaths` for a new container, as Docker fills it.
pub fn default_masked_paths() -> Vec<String> {
    let mut paths: Vec<String> = DOCKER_MASKED_PATHS.iter().map(|p| p.to_string()).collect();
    paths.extend(thermal_throttle_paths(Path::new("/sys/devices/system/cpu")));
    paths
}

/// `linux.readonlyPaths` for a new container, as Docker fills it.
pub fn default_readonly_paths() -> Vec<String> {
    DOCKER_READONLY_PATHS
        .iter()
        .map(|p| p.to_string())
        .collect()
}

/// Opens `path` without following a final symlink, for use as a mount target. None when it
/// does not exist: the lists name files that some kernels lack (`/proc/timer_stats` is gone
/// since 4.11), and the runtime spec says to skip those.
fn open_target(path: &Path) -> Result<Option<OwnedFd>> {
    match open(
        path,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("open({}, O_PATH|O_NOFOLLOW)", path.display())),
    }
}

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

// ANCHOR: procfd
/// The path through which to mount on an open file: `/proc/self/fd/N` when /proc is a real
/// procfs, else the path itself.
///
/// Mounting on the descriptor's magic link rather than on the name closes a race: a name can
/// be swapped for a symlink between the check and the mount (the CVE-2019-19921 and
/// CVE-2025-31133 family in runc), a descriptor cannot. /proc is checked to be procfs first,
/// because an image could ship a fake `/proc/self/fd/N` symlink of its own.
fn mount_path_of(fd: &OwnedFd, path: &Path) -> PathBuf {
    let magic = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    match nix::sys::statfs::statfs("/proc/self/fd") {
        Ok(fs) if fs.filesystem_type().0 == PROC_SUPER_MAGIC => magic,
        _ => path.to_path_buf(),
    }
}
// ANCHOR_END: procfd

/// Opens the container's `/dev/null` and checks that it is the real device (character device
/// 1:3), so a mask can never bind something else over a host-sensitive file.
fn open_dev_null() -> Result<OwnedFd> {
    let fd = open(
        "/dev/null",
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("open(/dev/null, O_PATH|O_NOFOLLOW)")?;
    let st = fstat(&fd).context("fstat(/dev/null)")?;
    let is_char = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_char || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3 {
        bail!("/dev/null is not the null device (char 1:3); refusing to mask with it");
    }
    Ok(fd)
}

/// The flags of the empty tmpfs that masks a directory.
const MASK_DIR: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

// ANCHOR: mask
/// Masks `path` inside the container: a file gets `/dev/null` bind-mounted over it (reads are
/// empty, writes vanish), a directory gets an empty read-only tmpfs. A path that does not
/// exist is skipped.
pub fn mask_path(path: &Path) -> Result<()> {
    let Some(target_fd) = open_target(path)? else {
        return Ok(());
    };
    let st = fstat(&target_fd).with_context(|| format!("fstat({})", path.display()))?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let target = mount_path_of(&target_fd, path);
    if kind == SFlag::S_IFDIR {
        mask_dir(&target, path)
    } else if kind == SFlag::S_IFLNK {
        // O_NOFOLLOW on an O_PATH open yields the link itself: never mount through it.
        bail!("refusing to mask {}: it is a symlink", path.display())
    } else {
        mask_file(&target, path)
    }
}
// ANCHOR_END: mask

// ANCHOR: mask_dir
/// Masks a directory: an empty tmpfs mounted read-only over it hides every entry, and nothing
/// can be written there. `target` is the `/proc/self/fd/N` path of `path`.
fn mask_dir(target: &Path, path: &Path) -> Result<()> {
    let over = format!("over {}", path.display());
    let tmpfs = Mount::fs("tmpfs", target, "tmpfs", MASK_DIR).about(&over);
    tmpfs.run(Chapter::Security, "mask a directory with an empty tmpfs")
}
// ANCHOR_END: mask_dir

// ANCHOR: mask_file
/// Masks a file: the container's `/dev/null`, bound over it, reads empty and swallows writes.
/// It is bound through a descriptor checked to be the null device (char 1:3), so nothing else
/// can be bound over the file in its place.
fn mask_file(target: &Path, path: &Path) -> Result<()> {
    let null = open_dev_null()?;
    let source = mount_path_of(&null, Path::new("/dev/null"));
    let over = format!("(/dev/null over {})", path.display());
    let bind = Mount::bind(&source, target, MsFlags::empty()).about(&over);
    bind.run(Chapter::Security, "mask a file with /dev/null")
}
// ANCHOR_END: mask_file

/// The mount flags a read-only remount must keep. A bind remount replaces the per-mount flags
/// wholesale, and inside a user namespace the kernel refuses to clear a `nosuid`, `nodev` or
/// `noexec` the mount was locked with (mount(2), EPERM), so they are read back with statfs
/// and passed again.
fn kept_flags(fd: &OwnedFd, path: &Path) -> Result<MsFlags> {
    let st =
        nix::sys::statvfs::fstatvfs(fd).with_context(|| format!("fstatvfs({})", path.display()))?;
    use nix::sys::statvfs::FsFlags;
    let pairs = [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    Ok(pairs
        .iter()
        .filter(|(st_flag, _)| st.flags().contains(*st_flag))
        .fold(MsFlags::empty(), |acc, (_, ms)| acc | *ms))
}

// ANCHOR: readonly
/// Makes `path` read-only inside the container: bind it onto itself, which makes it a mount
/// point of its own, then remount that bind mount read-only, keeping its other flags. A path
/// that does not exist is skipped.
pub fn readonly_path(path: &Path) -> Result<()> {
    let Some(target_fd) = open_target(path)? else {
        return Ok(());
    };
    if SFlag::from_bits_truncate(fstat(&target_fd)?.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
        bail!(
            "refusing to make {} read-only: it is a symlink",
            path.display()
        );
    }
    bind_onto_itself(&mount_path_of(&target_fd, path), path)?;
    // The first descriptor still points below the new mount; reopen to get the bind mount.
    let Some(bound_fd) = open_target(path)? else {
        bail!("{} vanished after the bind mount", path.display());
    };
    let flags = kept_flags(&bound_fd, path)?;
    remount_readonly(&mount_path_of(&bound_fd, path), path, flags)
}
// ANCHOR_END: readonly

// ANCHOR: bind_onto_itself
/// Step 1 of [`readonly_path`]: bind the path onto itself. Read-only is a property of a mount,
/// so the path must first be a mount point of its own before it can be made read-only alone.
fn bind_onto_itself(target: &Path, path: &Path) -> Result<()> {
    let about = format!("({})", path.display());
    let bind = Mount::bind(target, target, MsFlags::MS_REC).about(&about);
    bind.run(Chapter::Security, "bind a path onto itself")
}
// ANCHOR_END: bind_onto_itself

// ANCHOR: remount_readonly
/// Step 2 of [`readonly_path`]: remount the new bind mount read-only. A remount replaces the
/// per-mount flags, so `flags` (read back by [`kept_flags`]) are passed again with `MS_RDONLY`.
fn remount_readonly(target: &Path, path: &Path, flags: MsFlags) -> Result<()> {
    let about = format!("({})", path.display());
    let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags;
    let remount = Mount::change(target, remount).about(&about);
    remount.run(Chapter::Security, "remount it read-only")
}
// ANCHOR_END: remount_readonly

/// Masks every path of `linux.maskedPaths`, in order.
pub fn apply_masked_paths(paths: &[String]) -> Result<()> {
    for path in paths {
        check_absolute(path, "maskedPaths")?;
        mask_path(Path::new(path))?;
    }
    Ok(())
}

/// Makes every path of `linux.readonlyPaths` read-only, in order.
pub fn apply_readonly_paths(paths: &[String]) -> Result<()> {
    for path in paths {
        check_absolute(path, "readonlyPaths")?;
        readonly_path(Path::new(path))?;
    }
    Ok(())
}

fn check_absolute(path: &str, field: &str) -> Result<()> {
    if !path.starts_with('/') {
        bail!("linux.{field}: {path:?} is not an absolute path");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_are_dockers() {
        assert!(DOCKER_MASKED_PATHS.contains(&"/proc/kcore"));
        assert!(DOCKER_MASKED_PATHS.contains(&"/sys/firmware"));
        assert!(DOCKER_READONLY_PATHS.contains(&"/proc/sys"));
        assert!(DOCKER_READONLY_PATHS.contains(&"/proc/sysrq-trigger"));
        let masked = default_masked_paths();
        assert_eq!(&masked[..DOCKER_MASKED_PATHS.len()], &DOCKER_MASKED_PATHS);
        assert!(
            masked[DOCKER_MASKED_PATHS.len()..]
                .iter()
                .all(|p| p.starts_with("/sys/devices/system/cpu/cpu")
                    && p.ends_with("/thermal_throttle"))
        );
    }

    #[test]
    fn thermal_paths_are_per_cpu_directories_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["cpu0", "cpu12", "cpufreq", "cpuidle", "cpu1"] {
            std::fs::create_dir_all(dir.path().join(name).join("thermal_throttle")).unwrap();
        }
        std::fs::create_dir(dir.path().join("cpu2")).unwrap(); // no thermal_throttle
        let found: Vec<String> = thermal_throttle_paths(dir.path())
            .iter()
            .map(|p| {
                p.trim_start_matches(&*dir.path().to_string_lossy())
                    .to_string()
            })
            .collect();
        assert_eq!(
            found,
            vec![
                "/cpu0/thermal_throttle",
                "/cpu1/thermal_throttle",
                "/cpu12/thermal_throttle"
            ]
        );
    }

    #[test]
    fn relative_paths_are_refused_before_any_mount() {
        let err = apply_masked_paths(&["proc/kcore".to_string()]).unwrap_err();
        assert!(err.to_string().contains("not an absolute path"), "{err}");
    }
}
