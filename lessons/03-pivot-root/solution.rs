//! Lesson 03 solution: a root filesystem of your own, with pivot_root.
//!
//! Usage: lesson03-solution ROOTFS CMD [ARGS...]

use anyhow::{Context, Result};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{chdir, pivot_root};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (rootfs, cmd) = args
        .split_first()
        .context("usage: lesson03 ROOTFS CMD [ARGS...]")?;
    let (program, program_args) = cmd.split_first().context("no command given")?;

    unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS)")?;
    // Without this, the mounts below would propagate back to the host (shared subtrees).
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .context("making / private")?;
    // pivot_root(2) requires new_root to be a mount point.
    mount(Some(rootfs.as_str()), rootfs.as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .context("bind-mounting the rootfs onto itself")?;
    chdir(rootfs.as_str()).context("chdir rootfs")?;
    // The documented trick: the old root is stacked on top of the new one at "/"...
    pivot_root(".", ".").context("pivot_root")?;
    // ...and a lazy unmount of "." removes it, with every host mount below it.
    umount2(".", MntFlags::MNT_DETACH).context("detaching the old root")?;
    chdir("/").context("chdir /")?;
    mount(Some("proc"), "/proc", Some("proc"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, None::<&str>)
        .context("mounting /proc")?;

    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}
