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

    // TODO 1: give this process a mount table of its own, from which nothing propagates back
    //         to the host.
    // TODO 2: make `rootfs` the root of that mount table: not only where paths start (a
    //         chroot does that much), but the mount at `/`. The kernel's way of swapping
    //         roots wants the new root to be a mount point of its own.
    // TODO 3: the host's old root must not stay mounted anywhere in this mount table: the
    //         checker reads the table from the host, where nothing is hidden.
    // TODO 4: give the command a /proc of its own inside the new root.
    // (README.md; stuck: `workshop hint 3`.)
    let _ = rootfs;

    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}
