//! Lesson 03: a root filesystem of your own, with pivot_root.
//!
//! Usage: lesson03 ROOTFS CMD [ARGS...]
//!
//! Run CMD inside ROOTFS (a busybox root filesystem): in a new mount namespace, ROOTFS
//! becomes `/` with pivot_root(2), the old root is detached so no host file is reachable, and
//! a fresh /proc is mounted. Read: book chapter "Namespaces", pivot_root(2).
//!
//! Check your work: `workshop check 3` (as root).

use anyhow::{Context, Result};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (rootfs, cmd) = args
        .split_first()
        .context("usage: lesson03 ROOTFS CMD [ARGS...]")?;
    let (program, program_args) = cmd.split_first().context("no command given")?;

    // TODO 1: unshare a new mount namespace, and make every mount in it private
    //         (mount "/" with MS_REC | MS_PRIVATE).
    // TODO 2: bind-mount `rootfs` onto itself: pivot_root needs the new root to be a mount.
    // TODO 3: chdir into the rootfs and call pivot_root(".", ".").
    // TODO 4: detach the old root, now stacked on "/": umount2(".", MNT_DETACH); chdir("/").
    // TODO 5: mount a fresh proc filesystem on /proc.
    let _ = rootfs;

    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}
