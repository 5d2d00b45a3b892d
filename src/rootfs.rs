//! The container's root filesystem: stop mount propagation, mount /proc, a minimal /dev and
//! /sys into the rootfs, then `pivot_root` into it and detach the old root.
//!
//! Every function here runs inside the new mount namespace (in the child, after clone).

use crate::explain::{self, Chapter};
use crate::ns::{Namespace, Sandbox};
use crate::syscall::{self, Mount};
use anyhow::{Context, Result};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use std::path::Path;

/// What the rootfs setup needs to know about the namespaces around it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RootfsOptions {
    /// A new network namespace: a fresh sysfs may be mounted (it shows that namespace's
    /// devices).
    pub new_net: bool,
}

impl RootfsOptions {
    pub fn for_sandbox(sandbox: &Sandbox) -> Self {
        RootfsOptions {
            new_net: sandbox.has(Namespace::Net),
        }
    }
}

// ANCHOR: private
/// Makes every mount in this (new) mount namespace private. A new mount namespace starts as
/// a copy of its parent's, with the same propagation: on systemd hosts `/` is `shared`, so a
/// mount made here would appear on the host too (mount_namespaces(7), "Shared subtrees").
pub fn make_mounts_private() -> Result<()> {
    Mount::change(Path::new("/"), MsFlags::MS_REC | MsFlags::MS_PRIVATE)
        .run(Chapter::Namespaces, "stop mount propagation to the host")
}
// ANCHOR_END: private

// ANCHOR: proc
/// Mounts a fresh procfs. procfs shows the PID namespace of the process that mounts it, so
/// inside a new PID namespace `ps` sees only the container's processes (proc(5)).
pub fn mount_proc(target: &Path) -> Result<()> {
    std::fs::create_dir_all(target).with_context(|| format!("mkdir {}", target.display()))?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    Mount::fs("proc", target, "proc", flags).run(Chapter::Namespaces, "mount a fresh /proc")
}
// ANCHOR_END: proc

/// Bind-mounts `source` onto `target` (recursively).
pub fn bind(source: &Path, target: &Path) -> Result<()> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("bind mount {} on {}", source.display(), target.display()))
}

/// The device nodes every container gets (the OCI runtime spec's "Default Devices"), with
/// their major and minor numbers (Documentation/admin-guide/devices.txt).
pub const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// True in the initial user namespace, where uid 0 is the real root: `uid_map` maps the
/// whole id range onto itself (user_namespaces(7)).
pub fn in_initial_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|map| map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
}

/// The flags and options of the tmpfs on `/dev`, as runc's default spec has them.
const DEV_FLAGS: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_STRICTATIME);
const DEV_DATA: &str = "mode=755,size=65536k";

// ANCHOR: dev
/// Mounts a minimal /dev: a tmpfs with the default device nodes, a private devpts instance
/// for terminals, and /dev/shm. The nodes are made with mknod(2) as root of the host's user
/// namespace; inside a user namespace, where mknod(2) is not allowed, they are bind mounts of
/// the host's (runc does the same when rootless).
pub fn mount_minimal_dev(rootfs: &Path) -> Result<()> {
    let dev = rootfs.join("dev");
    std::fs::create_dir_all(&dev).with_context(|| format!("mkdir {}", dev.display()))?;
    let tmpfs = Mount::fs("tmpfs", &dev, "tmpfs", DEV_FLAGS).data(DEV_DATA);
    tmpfs.run(Chapter::Namespaces, "mount a minimal /dev (tmpfs)")?;
    populate_dev(&dev)?;
    mount_devpts(&dev)?;
    mount_shm(&dev)
}
// ANCHOR_END: dev

// ANCHOR: mount_devpts
/// Mounts a devpts of the container's own on `dev/pts`: `newinstance` gives it its own set
/// of ptys, so a terminal inside is never one of the host's (the kernel's devpts docs).
fn mount_devpts(dev: &Path) -> Result<()> {
    let pts = dev.join("pts");
    std::fs::create_dir_all(&pts).with_context(|| format!("mkdir {}", pts.display()))?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    let devpts = Mount::fs("devpts", &pts, "devpts", flags);
    let devpts = devpts.data("newinstance,ptmxmode=0666,mode=0620");
    devpts.run(Chapter::Namespaces, "mount a private devpts for terminals")
}
// ANCHOR_END: mount_devpts

// ANCHOR: mount_shm
/// Mounts `dev/shm`, the tmpfs POSIX shared memory lives in (shm_open(3)): writable by all
/// with the sticky bit, as `/tmp`, no devices or programs on it, 64 MiB as Docker's default
/// `--shm-size`.
fn mount_shm(dev: &Path) -> Result<()> {
    let shm = dev.join("shm");
    std::fs::create_dir_all(&shm).with_context(|| format!("mkdir {}", shm.display()))?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let tmpfs = Mount::fs("shm", &shm, "tmpfs", flags).data("mode=1777,size=65536k");
    tmpfs.run(Chapter::Namespaces, "mount /dev/shm (tmpfs)")
}
// ANCHOR_END: mount_shm

/// Makes `dev/ptmx` the symlink `pts/ptmx`, replacing whatever node is there.
pub fn link_ptmx(dev: &Path) -> Result<()> {
    let ptmx = dev.join("ptmx");
    if std::fs::read_link(&ptmx).is_ok_and(|t| t == Path::new("pts/ptmx")) {
        return Ok(());
    }
    match std::fs::remove_file(&ptmx) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", ptmx.display())),
    }
    std::os::unix::fs::symlink("pts/ptmx", &ptmx)
        .with_context(|| format!("symlink {} -> pts/ptmx", ptmx.display()))
}

/// Creates the default device nodes in a fresh /dev (the OCI runtime spec's "Default
/// Devices") and the usual symlinks. Nodes that are already there are left alone. Real root
/// makes them with mknod(2); inside a user namespace, where mknod of devices is not allowed,
/// they are bind mounts of the host's nodes (as runc does when rootless).
pub fn populate_dev(dev: &Path) -> Result<()> {
    let use_mknod = in_initial_user_namespace();
    explain::step(
        "create the default devices",
        || {
            if use_mknod {
                format!(
                    "mknod({:?}, S_IFCHR|0666, makedev(1, 3)) ...",
                    dev.join("null")
                )
            } else {
                format!(
                    "mount(\"/dev/null\", {:?}, NULL, MS_BIND) ...",
                    dev.join("null")
                )
            }
        },
        Chapter::Namespaces,
    );
    for (name, major, minor) in DEFAULT_DEVICES {
        let node = dev.join(name);
        if node.exists() {
            continue;
        }
        if use_mknod {
            use nix::sys::stat::{Mode, SFlag, makedev, mknod};
            mknod(
                &node,
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o666),
                makedev(major, minor),
            )
            .with_context(|| format!("mknod {}", node.display()))?;
            // The umask took bits away from the mode given to mknod.
            nix::sys::stat::fchmodat(
                nix::fcntl::AT_FDCWD,
                &node,
                Mode::from_bits_truncate(0o666),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .with_context(|| format!("chmod {}", node.display()))?;
        } else {
            std::fs::File::create(&node).with_context(|| format!("creating {}", node.display()))?;
            bind(&Path::new("/dev").join(name), &node)?;
        }
    }
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let path = dev.join(link);
        if std::fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        std::os::unix::fs::symlink(target, &path)
            .with_context(|| format!("symlink /dev/{link} -> {target}"))?;
    }
    Ok(())
}

/// Mounts sysfs read-only. A fresh sysfs is allowed only with a new network namespace when
/// inside a user namespace, because sysfs shows the mounting namespace's network devices;
/// without one, /sys stays empty rather than exposing the host's.
pub fn mount_sys(rootfs: &Path, options: &RootfsOptions) -> Result<()> {
    let sys = rootfs.join("sys");
    std::fs::create_dir_all(&sys).with_context(|| format!("mkdir {}", sys.display()))?;
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let result =
        Mount::fs("sysfs", &sys, "sysfs", flags).run(Chapter::Namespaces, "mount /sys read-only");
    match result {
        Err(err) if syscall::errno(&err) == Some(nix::errno::Errno::EPERM) && !options.new_net => {
            explain::note("(sysfs refused without a new network namespace: /sys left empty)");
            Ok(())
        }
        other => other,
    }
}

// ANCHOR: pivot_root
/// Makes `rootfs` the root of this mount namespace and detaches the old root, so nothing of
/// the host's filesystem stays reachable. Unlike chroot(2), which only changes one process's
/// idea of `/` and can be escaped, pivot_root(2) moves the whole mount namespace.
///
/// `pivot_root(".", ".")` is the trick documented in pivot_root(2): the old root ends up
/// stacked on top of the new one at `/`, and a lazy unmount of `.` removes it, with no need
/// for a spare directory inside the rootfs.
pub fn pivot_root_into(rootfs: &Path) -> Result<()> {
    let root = rootfs.display();
    nix::unistd::chdir(rootfs).with_context(|| format!("chdir {root}"))?;
    explain::trace!(Namespaces: "pivot_root into the rootfs" => "pivot_root(\".\", \".\") in {root}");
    nix::unistd::pivot_root(".", ".").with_context(|| format!("pivot_root into {root}"))?;
    explain::trace!(Namespaces: "detach the old root" => "umount2(\".\", MNT_DETACH)");
    umount2(".", MntFlags::MNT_DETACH).context("umount2(old root, MNT_DETACH)")?;
    nix::unistd::chdir("/").context("chdir /")
}
// ANCHOR_END: pivot_root

// ANCHOR: enter_rootfs
/// The whole sequence for a rootfs: bind it onto itself (pivot_root needs the new root to be
/// a mount point), mount /proc, /dev and /sys inside, then pivot_root.
pub fn enter_rootfs(rootfs: &Path, options: &RootfsOptions) -> Result<()> {
    let resolving = || format!("resolving rootfs {}", rootfs.display());
    let rootfs = rootfs.canonicalize().with_context(resolving)?;
    Mount::bind(&rootfs, &rootfs, MsFlags::MS_REC)
        .run(Chapter::Namespaces, "make the rootfs a mount point")?;
    mount_proc(&rootfs.join("proc"))?;
    mount_minimal_dev(&rootfs)?;
    mount_sys(&rootfs, options)?;
    pivot_root_into(&rootfs)
}
// ANCHOR_END: enter_rootfs
