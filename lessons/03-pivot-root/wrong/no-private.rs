//! Lesson 03, a known-wrong answer: the pivot_root sequence without making / private.
//!
//! Where / is a shared mount (as on most systemd hosts), the new namespace's mounts are peers
//! of the host's, so the bind mount and /proc propagate back to the host, and pivot_root(2)
//! refuses a shared parent mount. `workshop verify` proves the check fails it.

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
    // The shortcut: / keeps the host's propagation.
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
