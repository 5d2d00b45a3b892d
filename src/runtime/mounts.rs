//! The spec's `mounts`, done inside the container's mount namespace before pivot_root.
//!
//! Every destination is resolved *inside* the rootfs, following symlinks as if the rootfs
//! were `/`, so an image cannot redirect a mount onto the host with a symlink (the class of
//! CVE-2019-16884 and CVE-2019-19921). procfs and sysfs are refused on a symlink altogether.

use crate::explain::{self, Chapter};
use crate::syscall;
use anyhow::{Context, Result, bail};
use nix::mount::{MsFlags, mount};
use oci_spec::runtime::Mount;
use std::path::{Component, Path, PathBuf};

/// Resolves `path` (absolute, as seen inside the container) under `rootfs`, following
/// symlinks within the rootfs: an absolute link target restarts at `rootfs`, and `..` never
/// climbs above it. Missing components are kept as they are, so the result can be created.
pub fn secure_join(rootfs: &Path, path: &Path) -> Result<PathBuf> {
    let mut resolved = PathBuf::new();
    let mut pending: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut links_followed = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&name);
        let full = rootfs.join(&candidate);
        match std::fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links_followed += 1;
                if links_followed > 40 {
                    bail!(
                        "too many levels of symbolic links resolving {}",
                        path.display()
                    );
                }
                let target = std::fs::read_link(&full)
                    .with_context(|| format!("readlink {}", full.display()))?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_owned()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => resolved = candidate,
        }
    }
    Ok(rootfs.join(resolved))
}

/// Mount options from the spec: flags for mount(2), and what is left over for the filesystem
/// (the `data` argument), as mount(8) splits them.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub flags: MsFlags,
    pub clear: MsFlags,
    pub propagation: MsFlags,
    pub bind: bool,
    pub recursive: bool,
    pub data: Vec<String>,
}

pub fn parse_options(options: &[String]) -> Options {
    let mut out = Options {
        flags: MsFlags::empty(),
        clear: MsFlags::empty(),
        propagation: MsFlags::empty(),
        bind: false,
        recursive: false,
        data: Vec::new(),
    };
    for option in options {
        let (set, clear) = match option.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "bind" => {
                out.bind = true;
                continue;
            }
            "rbind" => {
                out.bind = true;
                out.recursive = true;
                continue;
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                let recursive = option.starts_with('r') && option != "rw";
                let kind = match option.trim_start_matches('r') {
                    "private" => MsFlags::MS_PRIVATE,
                    "shared" => MsFlags::MS_SHARED,
                    "slave" => MsFlags::MS_SLAVE,
                    _ => MsFlags::MS_UNBINDABLE,
                };
                out.propagation = kind
                    | if recursive {
                        MsFlags::MS_REC
                    } else {
                        MsFlags::empty()
                    };
                continue;
            }
            other => {
                out.data.push(other.to_owned());
                continue;
            }
        };
        out.flags.insert(set);
        out.flags.remove(clear);
        out.clear.insert(clear);
    }
    out
}

/// The mount point under which `path` lies (the longest mount point that is a prefix of it,
/// from /proc/self/mountinfo), and whether that mount is shared (a `shared:N` tag).
pub fn parent_mount(path: &Path) -> Result<(PathBuf, bool)> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
    let mut best: Option<(PathBuf, bool)> = None;
    for line in mountinfo.lines() {
        let Some((before, _)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = before.split(' ').collect();
        let Some(point) = fields.get(4).map(PathBuf::from) else {
            continue;
        };
        let longer = best
            .as_ref()
            .is_none_or(|(b, _)| point.as_os_str().len() >= b.as_os_str().len());
        if path.starts_with(&point) && longer {
            let shared = fields.iter().skip(6).any(|f| f.starts_with("shared:"));
            best = Some((point, shared));
        }
    }
    best.with_context(|| format!("no mount holds {}", path.display()))
}

fn create_target(target: &Path, is_file: bool) -> Result<()> {
    if target.exists() {
        return Ok(());
    }
    if is_file {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("mkdir {}", parent.display()))?;
        }
        std::fs::File::create(target).with_context(|| format!("creating {}", target.display()))?;
    } else {
        std::fs::create_dir_all(target).with_context(|| format!("mkdir {}", target.display()))?;
    }
    Ok(())
}

// ANCHOR: mount_one
/// Performs one entry of the spec's `mounts` under `rootfs`. Relative bind sources are
/// relative to the bundle.
pub fn mount_one(rootfs: &Path, bundle: &Path, m: &Mount) -> Result<()> {
    let options = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m
        .typ()
        .as_deref()
        .unwrap_or(if options.bind { "bind" } else { "none" });
    // ANCHOR: mount_one_resolve
    let destination = m.destination();
    let unresolved = rootfs.join(destination.strip_prefix("/").unwrap_or(destination));
    if matches!(typ, "proc" | "sysfs")
        && std::fs::symlink_metadata(&unresolved).is_ok_and(|md| md.file_type().is_symlink())
    {
        bail!(
            "refusing to mount {typ} on {}: it is a symlink in the image",
            destination.display()
        );
    }
    let target = secure_join(rootfs, destination)?;
    // ANCHOR_END: mount_one_resolve
    if options.bind || typ == "bind" {
        bind_into(bundle, m, &target, &options)?;
    } else {
        mount_filesystem(m, typ, &target, &options)?;
    }
    if !options.propagation.is_empty() {
        syscall::Mount::change(&target, options.propagation)
            .run(Chapter::RuntimeSpec, "set the mount's propagation")?;
    }
    Ok(())
}
// ANCHOR_END: mount_one

// ANCHOR: mount_one_bind
/// A bind mount: the source (relative to the bundle when not absolute) must exist, and the
/// target is made as a file or a directory to match it, since a bind needs one of the same
/// kind to cover.
fn bind_into(bundle: &Path, m: &Mount, target: &Path, options: &Options) -> Result<()> {
    let source = m.source().as_ref().context("a bind mount needs a source")?;
    let source = if source.is_absolute() {
        source.clone()
    } else {
        bundle.join(source)
    };
    let missing = || format!("bind source {} does not exist", source.display());
    let is_file = !std::fs::metadata(&source).with_context(missing)?.is_dir();
    create_target(target, is_file)?;
    let recursive = options.recursive.then_some(MsFlags::MS_REC);
    let bind = syscall::Mount::bind(&source, target, recursive.unwrap_or(MsFlags::empty()));
    bind.run(Chapter::RuntimeSpec, "bind mount into the container")?;
    remount_bind(target, options.flags)
}
// ANCHOR_END: mount_one_bind

// ANCHOR: mount_one_remount
/// Flags such as `ro` are ignored by the first bind mount(2) call: they need a second call,
/// a remount of the bind with `MS_BIND|MS_REMOUNT` and the flags. None asked, none made.
fn remount_bind(target: &Path, flags: MsFlags) -> Result<()> {
    if flags.is_empty() {
        return Ok(());
    }
    let remount = syscall::Mount::change(target, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags);
    remount.run(Chapter::RuntimeSpec, "remount it with the mount's flags")
}
// ANCHOR_END: mount_one_remount

// ANCHOR: mount_one_filesystem
/// Any other mount: a filesystem of type `typ` (proc, tmpfs, mqueue...), its source a label
/// in the mount table (the type when the spec gives none), its options split into flags and
/// the filesystem's own data.
fn mount_filesystem(m: &Mount, typ: &str, target: &Path, options: &Options) -> Result<()> {
    let data = options.data.join(",");
    let data = (!data.is_empty()).then_some(data);
    create_target(target, false)?;
    let source = m
        .source()
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| typ.to_owned());
    explain::step(
        "mount a filesystem into the container",
        || {
            let source = Some(Path::new(&source));
            explain::mount_call(source, target, Some(typ), options.flags, data.as_deref())
        },
        Chapter::RuntimeSpec,
    );
    let result = mount(
        Some(source.as_str()),
        target,
        Some(typ),
        options.flags,
        data.as_deref(),
    );
    match (result, typ) {
        (Ok(()), _) => Ok(()),
        // A fresh sysfs needs a network namespace of our own when in a user namespace;
        // without one, bind the host's read-only, as runc does.
        (Err(nix::errno::Errno::EPERM), "sysfs") => bind_host_sys(target),
        (Err(errno), _) => {
            Err(errno).with_context(|| format!("mount {typ} on {}", m.destination().display()))
        }
    }
}
// ANCHOR_END: mount_one_filesystem

// ANCHOR: mount_one_host_sys
/// The host's `/sys`, bound read-only on `target`: the sysfs of a container that shares the
/// host's network namespace from inside a user namespace.
fn bind_host_sys(target: &Path) -> Result<()> {
    mount(
        Some("/sys"),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("bind mount /sys")?;
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .context("remount /sys read-only")
}
// ANCHOR_END: mount_one_host_sys

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_join_keeps_symlinks_inside_the_rootfs() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("real/dir")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", r.join("up")).unwrap();
        std::os::unix::fs::symlink("real", r.join("rel")).unwrap();
        assert_eq!(
            secure_join(r, Path::new("/abs/passwd")).unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(secure_join(r, Path::new("/up/etc")).unwrap(), r.join("etc"));
        assert_eq!(
            secure_join(r, Path::new("/rel/dir")).unwrap(),
            r.join("real/dir")
        );
        assert_eq!(secure_join(r, Path::new("/../../x")).unwrap(), r.join("x"));
    }

    #[test]
    fn symlink_loops_are_an_error() {
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/b", root.path().join("a")).unwrap();
        std::os::unix::fs::symlink("/a", root.path().join("b")).unwrap();
        assert!(secure_join(root.path(), Path::new("/a/x")).is_err());
    }

    #[test]
    fn options_split_into_flags_and_data() {
        let o = parse_options(&[
            "nosuid".into(),
            "ro".into(),
            "mode=755".into(),
            "rbind".into(),
            "rprivate".into(),
        ]);
        assert!(o.flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_RDONLY));
        assert!(o.bind && o.recursive);
        assert_eq!(o.data, vec!["mode=755"]);
        assert_eq!(o.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        let rw = parse_options(&["ro".into(), "rw".into()]);
        assert!(!rw.flags.contains(MsFlags::MS_RDONLY));
    }
}
