//! overlayfs: stacking read-only image layers under one writable layer.
//!
//! An overlay mount merges directories (Documentation/filesystems/overlayfs.rst):
//!
//! * `lowerdir=A:B:C`: read-only layers, **leftmost on top**; the image layers.
//! * `upperdir=U`: where every change lands; the container's writable layer.
//! * `workdir=W`: scratch space on U's filesystem, which overlayfs needs to prepare a file
//!   before renaming it into U atomically (hence "same filesystem").
//!
//! Reading a file finds the topmost layer that has it. Writing a file from a lower layer first
//! copies it up into U ("copy-up"), so the lower layer never changes and many containers can
//! share it. Deleting a lower file puts a *whiteout* in U (a character device 0/0), and
//! replacing a lower directory marks the new one *opaque* (`trusted.overlay.opaque="y"`). U
//! is therefore exactly the container's change set, which `image::layer::diff` turns into an
//! image layer.

mod tour;

pub use tour::tour;

use anyhow::{Context, Result, bail};
use nix::mount::{MntFlags, MsFlags};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::explain::{self, Chapter};
use crate::syscall::Mount;

pub use crate::image::layer::{OVERLAY_OPAQUE_XATTR, is_whiteout};

/// overlayfs's limit on stacked lower layers (OVL_MAX_STACK in fs/overlayfs/params.h).
pub const MAX_LOWERS: usize = 500;
/// `statfs(2)` f_type of overlayfs (OVERLAYFS_SUPER_MAGIC in linux/magic.h).
const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// A mounted overlay. Unmounted when dropped, unless [`OverlayMount::leak`] was called.
#[derive(Debug)]
pub struct OverlayMount {
    merged: PathBuf,
    mounted: bool,
}

impl OverlayMount {
    /// The merged directory: what the container sees as `/`.
    pub fn merged(&self) -> &Path {
        &self.merged
    }

    /// Unmounts now, reporting errors. Calling it again (or dropping afterwards) does nothing.
    pub fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            unmount(&self.merged)?;
            self.mounted = false;
        }
        Ok(())
    }

    /// Keeps the overlay mounted after this value is gone: a container outlives the command
    /// that started it. Returns the merged path; [`unmount`] removes it later.
    pub fn leak(mut self) -> PathBuf {
        self.mounted = false;
        std::mem::take(&mut self.merged)
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        if self.mounted {
            // Nobody can handle an error here; a busy mount is detached instead of leaked.
            if unmount(&self.merged).is_err() {
                let _ = nix::mount::umount2(&self.merged, MntFlags::MNT_DETACH);
            }
        }
    }
}

/// The `data` argument of mount(2) for overlayfs. Paths are escaped: overlayfs splits the
/// option string on `,` and the lower list on `:`, and honours a backslash before either.
///
/// Features whose upper dirs a tar layer cannot express are switched off when this kernel
/// has them: `redirect_dir` (renaming a lower directory would store a pointer to its old name
/// instead of copying it), `metacopy` (copy-up of metadata only, the data staying below),
/// and `index` (which ties an upper dir to the exact lower layers it was made with). These
/// are the same choices Docker's overlay2 driver makes.
// ANCHOR: mount_options
pub fn mount_options(lowers: &[PathBuf], upper: &Path, work: &Path) -> String {
    let lowerdir: Vec<String> = lowers.iter().map(|l| escape(l)).collect();
    let mut options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowerdir.join(":"),
        escape(upper),
        escape(work)
    );
    for feature in ["index", "redirect_dir", "metacopy"] {
        // With userxattr the kernel never writes redirects (it defaults to `nofollow`) and
        // refuses `redirect_dir=off`, which it reads as `follow`.
        if feature == "redirect_dir" && crate::rootless::active() {
            continue;
        }
        if Path::new("/sys/module/overlay/parameters")
            .join(feature)
            .exists()
        {
            options.push_str(&format!(",{feature}=off"));
        }
    }
    if crate::rootless::active() {
        // In a user namespace overlayfs keeps its xattrs as `user.overlay.*` (Linux 5.11):
        // `trusted.*` needs CAP_SYS_ADMIN on the host.
        options.push_str(",userxattr");
    }
    options
}
// ANCHOR_END: mount_options

fn escape(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Mounts an overlay of `lowers` (top layer first, as in the kernel's `lowerdir`) with the
/// writable `upper` and its `work` dir on `merged`. Checks first what the kernel would only
/// answer with EINVAL, so the error says what is wrong.
// ANCHOR: mount
pub fn mount(lowers: &[PathBuf], upper: &Path, work: &Path, merged: &Path) -> Result<OverlayMount> {
    mount_with(lowers, upper, work, merged, false)
}

/// [`mount`], and with `volatile` overlayfs's `volatile` option (Linux 5.10, overlayfs.rst
/// "Volatile mount"): the overlay never flushes its upper dir, so fsync(2) in it returns at
/// once and the unmount skips the syncfs(2) of the upper dir's whole filesystem, which on a
/// busy disk takes from milliseconds to seconds. For an upper dir that is thrown away with
/// the container (`run --rm`). The kernel leaves `WORK/work/incompat/volatile` behind and
/// refuses to mount that work dir again until it is removed. A kernel without the option
/// (EINVAL) gets the plain mount.
pub fn mount_with(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    merged: &Path,
    volatile: bool,
) -> Result<OverlayMount> {
    check(lowers, upper, work, merged)?;
    if copy_forced() {
        return copy_mount(lowers, work, merged);
    }
    let plain = mount_options(lowers, upper, work);
    if volatile {
        match mount_data(merged, &format!("{plain},volatile")) {
            Err(err) if errno_of(&err) == Some(nix::errno::Errno::EINVAL) => {}
            result => return copy_if_refused(result, lowers, work, merged),
        }
    }
    copy_if_refused(mount_data(merged, &plain), lowers, work, merged)
}
// ANCHOR_END: mount

// ANCHOR: copy_fallback
/// Rootless, where the kernel refuses overlay in a user namespace (before Linux 5.11, or a
/// filesystem under the upper dir that overlay refuses there: EPERM or EINVAL), the layers
/// are copied instead ([`copy_mount`]), as rootless podman's `vfs` driver does, and that is
/// said once. Any other failure, or any failure as root, stays an error.
fn copy_if_refused(
    mounted: Result<OverlayMount>,
    lowers: &[PathBuf],
    work: &Path,
    merged: &Path,
) -> Result<OverlayMount> {
    match mounted {
        Err(err)
            if crate::rootless::joined()
                && matches!(
                    errno_of(&err),
                    Some(nix::errno::Errno::EPERM | nix::errno::Errno::EINVAL)
                ) =>
        {
            copy_mount(lowers, work, merged)
        }
        result => result,
    }
}

/// `MINIDOCK_ROOTLESS_OVERLAY=0`, rootless: copy the layers without trying overlay.
fn copy_forced() -> bool {
    crate::rootless::joined()
        && std::env::var_os("MINIDOCK_ROOTLESS_OVERLAY").is_some_and(|v| v == "0")
}

// ANCHOR_END: copy_fallback

// ANCHOR: copy_mount
/// The container's root filesystem as a copy of its layers, in `WORK/rootfs` (made once,
/// kept for the container's life), bind-mounted on `merged`. The image's layers are never
/// written; the container's changes stay in the copy, so the upper dir stays empty and
/// `commit` refuses such a container ([`is_copied`]).
pub fn copy_mount(lowers: &[PathBuf], work: &Path, merged: &Path) -> Result<OverlayMount> {
    say_copy_once();
    let rootfs = work.join(COPY_DIR);
    if !rootfs.exists() {
        let temp = work.join(format!("{COPY_DIR}.tmp"));
        let _ = std::fs::remove_dir_all(&temp);
        std::fs::create_dir_all(&temp).with_context(|| format!("creating {}", temp.display()))?;
        // The lowest layer first: `lowers` is overlay's order, topmost first.
        for layer in lowers.iter().rev() {
            copy_layer(layer, &temp)?;
        }
        std::fs::rename(&temp, &rootfs)
            .with_context(|| format!("renaming {} to {}", temp.display(), rootfs.display()))?;
    }
    explain::step(
        "bind the copied layers",
        || format!("mount({rootfs:?}, {merged:?}, NULL, MS_BIND, NULL)"),
        Chapter::Overlay,
    );
    nix::mount::mount(
        Some(&rootfs),
        merged,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind-mounting {} on {}", rootfs.display(), merged.display()))?;
    Ok(OverlayMount {
        merged: merged.to_path_buf(),
        mounted: true,
    })
}
// ANCHOR_END: copy_mount

/// The directory under the work dir that holds a container's copied layers.
const COPY_DIR: &str = "rootfs";

/// True when the container whose work dir is `work` runs on copied layers
/// ([`copy_mount`]): its changes are not in its upper dir.
pub fn is_copied(work: &Path) -> bool {
    work.join(COPY_DIR).is_dir()
}

/// Says, once for this user (a marker under the rootless runtime dir), that layers are
/// copied.
fn say_copy_once() {
    let marker = crate::rootless::runtime_dir().join("overlay-copy-said");
    if std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
        .is_ok()
    {
        eprintln!(
            "minidock: overlay is refused in this user namespace (or MINIDOCK_ROOTLESS_OVERLAY=0): \
             each container gets a copy of its image's layers instead (slower to start, more \
             disk; commit and build of such a container are not supported)"
        );
    }
}

/// Applies one layer onto `dest`: its opaque directories empty the ones below, `cp -a`
/// copies it, and its whiteouts (character devices 0/0) remove what they name, themselves
/// included.
fn copy_layer(layer: &Path, dest: &Path) -> Result<()> {
    let mut whiteouts = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = layer.join(&rel);
        if !rel.as_os_str().is_empty() && is_opaque(&dir)? {
            let below = dest.join(&rel);
            if below.is_dir() {
                std::fs::remove_dir_all(&below)
                    .with_context(|| format!("removing {}", below.display()))?;
            }
        }
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let entry = entry?;
            let meta = entry.metadata()?;
            if is_whiteout(&meta) {
                whiteouts.push(rel.join(entry.file_name()));
            } else if meta.is_dir() {
                stack.push(rel.join(entry.file_name()));
            }
        }
    }
    for rel in &whiteouts {
        let _ = remove_any(&dest.join(rel));
    }
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(layer.join("."))
        .arg(dest)
        .output()
        .context("running cp -a")?;
    if !out.status.success() {
        bail!(
            "copying layer {}: {}",
            layer.display(),
            crate::cli::quote(String::from_utf8_lossy(&out.stderr).trim_end())
        );
    }
    for rel in &whiteouts {
        remove_any(&dest.join(rel))?;
    }
    Ok(())
}

/// Removes a file or a directory tree.
fn remove_any(path: &Path) -> Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => return Ok(()),
    };
    result.with_context(|| format!("removing {}", path.display()))
}

/// The errno of a failed mount(2), if that is what `err` is.
fn errno_of(err: &anyhow::Error) -> Option<nix::errno::Errno> {
    err.downcast_ref::<nix::errno::Errno>().copied()
}

// ANCHOR: mount_data

/// mount(2) of an overlay on `merged` with the option string `options`.
fn mount_data(merged: &Path, options: &str) -> Result<OverlayMount> {
    // The data page of mount(2) is one page; longer option strings are cut by the kernel.
    if options.len() >= 4096 {
        bail!(
            "the overlay options are {} bytes, over mount(2)'s 4095 (too many or too long \
             lower paths)",
            options.len()
        );
    }
    let overlay = Mount::fs("overlay", merged, "overlay", MsFlags::empty()).data(options);
    let mounted = overlay.run(Chapter::Overlay, "mount the overlay");
    mounted.context("mounting the overlay (`dmesg | tail` has the kernel's reason)")?;
    Ok(OverlayMount {
        merged: merged.to_path_buf(),
        mounted: true,
    })
}
// ANCHOR_END: mount_data

fn check(lowers: &[PathBuf], upper: &Path, work: &Path, merged: &Path) -> Result<()> {
    if !overlay_supported() {
        bail!(
            "this kernel has no overlay filesystem (not in /proc/filesystems; try `modprobe overlay`)"
        );
    }
    if lowers.is_empty() {
        bail!("an overlay needs at least one lower dir");
    }
    if lowers.len() > MAX_LOWERS {
        bail!(
            "{} lower dirs, over overlayfs's limit of {MAX_LOWERS}",
            lowers.len()
        );
    }
    for lower in lowers {
        require_dir("lower", lower)?;
    }
    require_dir("upper", upper)?;
    require_dir("work", work)?;
    require_dir("merged", merged)?;
    let upper_dev = std::fs::metadata(upper)?.dev();
    let work_dev = std::fs::metadata(work)?.dev();
    if upper_dev != work_dev {
        bail!(
            "upper dir {} and work dir {} are on different filesystems; overlayfs renames from \
             one to the other, so they must share one",
            upper.display(),
            work.display()
        );
    }
    let stat =
        nix::sys::statfs::statfs(upper).with_context(|| format!("statfs {}", upper.display()))?;
    if stat.filesystem_type().0 as i64 == OVERLAYFS_SUPER_MAGIC {
        bail!(
            "upper dir {} is itself on overlayfs, which cannot hold an upper dir (use a \
             directory on ext4, xfs, btrfs or tmpfs)",
            upper.display()
        );
    }
    let upper_real = upper.canonicalize()?;
    let work_real = work.canonicalize()?;
    if upper_real.starts_with(&work_real) || work_real.starts_with(&upper_real) {
        bail!("upper dir and work dir must not contain one another");
    }
    Ok(())
}

fn require_dir(role: &str, path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bail!("{role} dir {} is not a directory", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{role} dir {} does not exist", path.display())
        }
        Err(e) => Err(e).with_context(|| format!("{role} dir {}", path.display())),
    }
}

/// Whether this kernel knows overlayfs.
pub fn overlay_supported() -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .map(|fs| {
            fs.lines()
                .any(|l| l.split_whitespace().last() == Some("overlay"))
        })
        .unwrap_or(false)
}

/// Unmounts the overlay on `merged`. Unmounting something that is not mounted is not an
/// error (teardown must be idempotent), but unmounting a mount that is not an overlay is: a
/// wrong path must not unmount someone's filesystem.
pub fn unmount(merged: &Path) -> Result<()> {
    let Some(fstype) = mount_type(merged)? else {
        return Ok(());
    };
    if fstype != "overlay" {
        bail!("{} is a {fstype} mount, not an overlay", merged.display());
    }
    explain::step(
        "unmount the overlay",
        || format!("umount2({merged:?}, 0)"),
        Chapter::Overlay,
    );
    match nix::mount::umount2(merged, MntFlags::empty()) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("umount {}", merged.display())),
    }
}

/// The filesystem type mounted exactly at `path`, from /proc/self/mountinfo (proc(5)), or
/// `None` if `path` is not a mount point.
pub fn mount_type(path: &Path) -> Result<Option<String>> {
    Ok(mount_info(path)?.map(|m| m.fstype))
}

/// What the mount table says about the mount on a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub fstype: String,
    /// The per-superblock options: for overlay, `lowerdir=...,upperdir=...,workdir=...`.
    pub options: String,
}

/// The visible mount exactly at `path`, from /proc/self/mountinfo (proc(5)), or `None` if
/// `path` is not a mount point.
pub fn mount_info(path: &Path) -> Result<Option<MountInfo>> {
    let Ok(real) = path.canonicalize() else {
        return Ok(None);
    };
    let info = std::fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
    let wanted = real.to_string_lossy();
    // The last mount on a path is the visible one.
    let mut found = None;
    for line in info.lines() {
        let Some(mount_point) = line.split(' ').nth(4) else {
            continue;
        };
        if unescape_mountinfo(mount_point) != wanted {
            continue;
        }
        // After the optional fields comes "-", then type, source and superblock options.
        let mut rest = line.split(' ').skip_while(|f| *f != "-").skip(1);
        let fstype = rest.next().unwrap_or_default().to_owned();
        let options = rest.nth(1).map(unescape_mountinfo).unwrap_or_default();
        found = Some(MountInfo { fstype, options });
    }
    Ok(found)
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
pub fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4].iter().all(u8::is_ascii_digit)
        {
            let code = u8::from_str_radix(&field[i + 1..i + 4], 8).unwrap_or(b'?');
            out.push(code);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `dir` is an opaque directory (`trusted.overlay.opaque`, rootless
/// `user.overlay.opaque`, is "y").
pub fn is_opaque(dir: &Path) -> Result<bool> {
    let value = crate::image::layer::beneath::lgetxattr(dir, crate::image::layer::opaque_xattr())
        .with_context(|| format!("reading the xattrs of {}", dir.display()))?;
    Ok(value.as_deref() == Some(b"y"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_escape_separators_and_keep_lower_order() {
        let lowers = vec![PathBuf::from("/l/top"), PathBuf::from("/l/a,b:c")];
        let options = mount_options(&lowers, Path::new("/u"), Path::new("/w"));
        assert!(
            options.starts_with("lowerdir=/l/top:/l/a\\,b\\:c,upperdir=/u,workdir=/w"),
            "{options}"
        );
    }

    #[test]
    fn mountinfo_fields_are_unescaped() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn missing_dirs_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let err = check(
            &[tmp.path().join("nope")],
            tmp.path(),
            tmp.path(),
            tmp.path(),
        )
        .unwrap_err();
        let expected = if overlay_supported() {
            format!(
                "lower dir {} does not exist",
                tmp.path().join("nope").display()
            )
        } else {
            "this kernel has no overlay filesystem (not in /proc/filesystems; try `modprobe overlay`)".into()
        };
        assert_eq!(err.to_string(), expected);
    }

    #[test]
    fn unmounting_a_path_that_is_not_mounted_is_a_no_op() {
        let tmp = tempfile::tempdir().unwrap();
        unmount(tmp.path()).unwrap();
    }
}
