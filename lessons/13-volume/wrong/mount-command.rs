//! Lesson 13, a known-wrong answer: the mount(8) command makes the volume's bind mount.
//!
//! The kernel ends up with the same mount, but the mount(2) call is the command's: the checker
//! traces which program makes each system call (strace -f) and counts only those the learner's
//! own program makes. `workshop verify` proves the check fails it.

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

    // The volume: a bind mount in this mount namespace, made while the host path still
    // resolves. It sits under the new root, so pivot_root carries it along.
    std::fs::create_dir_all(&inside).with_context(|| format!("creating {}", inside.display()))?;
    // The shortcut: mount(8) makes the bind mount, in this mount namespace, for the program.
    let status = Command::new("mount").args(["--rbind", volume.as_str()]).arg(&inside).status()
        .context("running mount")?;
    anyhow::ensure!(status.success(), "mount failed: {status}");

    chdir(rootfs.as_str()).context("chdir rootfs")?;
    pivot_root(".", ".").context("pivot_root")?;
    umount2(".", MntFlags::MNT_DETACH).context("detaching the old root")?;
    chdir("/").context("chdir /")?;

    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}
