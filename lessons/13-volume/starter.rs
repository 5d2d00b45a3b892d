//! Lesson 13: mount a volume before pivot_root.
//!
//! Usage: lesson13 ROOTFS VOLUME TARGET CMD [ARGS...]
//!
//! Run CMD inside ROOTFS (a busybox root filesystem), as lesson 03 does, with the host
//! directory VOLUME mounted at TARGET (an absolute path inside the container): what CMD writes
//! under TARGET lands in VOLUME on the host. Read: book chapter "Volumes", mount(2),
//! pivot_root(2), mount_namespaces(7).
//!
//! Check your work: `workshop check 13` (as root).

use anyhow::{Context, Result};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{chdir, pivot_root};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [rootfs, volume, target, cmd @ ..] = args.as_slice() else {
        anyhow::bail!("usage: lesson13 ROOTFS VOLUME TARGET CMD [ARGS...]");
    };
    let (program, program_args) = cmd.split_first().context("no command given")?;
    // Where TARGET is, seen from the host while ROOTFS is not yet `/`.
    let inside = Path::new(rootfs).join(target.trim_start_matches('/'));

    unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS)")?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .context("making / private")?;
    mount(Some(rootfs.as_str()), rootfs.as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .context("bind-mounting the rootfs onto itself")?;

    // TODO 1: make sure TARGET exists inside the rootfs (`inside`): a mount needs a directory
    //         to cover.
    // TODO 2: make VOLUME appear at `inside`, with the volume's own files (not a copy), while
    //         the host path VOLUME can still be reached.
    let _ = (volume, &inside);

    chdir(rootfs.as_str()).context("chdir rootfs")?;
    pivot_root(".", ".").context("pivot_root")?;
    umount2(".", MntFlags::MNT_DETACH).context("detaching the old root")?;
    chdir("/").context("chdir /")?;

    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}
