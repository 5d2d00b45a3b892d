//! Lesson 03, a known-wrong answer: chroot(".") in place of pivot_root and umount2.
//!
//! From inside it looks the same: / is the rootfs and /proc/self/mountinfo lists only / and
//! /proc, because mountinfo leaves out mounts outside the reader's root. But the host's whole
//! mount tree is still in the process's mount namespace, and a chroot can be escaped (chroot(2)).
//! `workshop verify` proves the check fails it.

use anyhow::{Context, Result};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{chdir, chroot};
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
    // The shortcut: change this process's root directory; the old root stays mounted.
    chroot(".").context("chroot")?;
    chdir("/").context("chdir /")?;
    mount(Some("proc"), "/proc", Some("proc"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, None::<&str>)
        .context("mounting /proc")?;

    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}
