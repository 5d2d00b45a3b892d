//! Lesson 13, a known-wrong answer: the volume bind-mounted after pivot_root, from the host
//! path.
//!
//! Once the old root is detached, the host's directory tree is gone from the mount namespace:
//! the path VOLUME names nothing (or something of the rootfs), and the mount fails with ENOENT.
//! `workshop verify` proves the check fails it.

use anyhow::{Context, Result};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{chdir, pivot_root};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [rootfs, volume, target, cmd @ ..] = args.as_slice() else {
        anyhow::bail!("usage: lesson13 ROOTFS VOLUME TARGET CMD [ARGS...]");
    };
    let (program, program_args) = cmd.split_first().context("no command given")?;

    unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS)")?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .context("making / private")?;
    mount(Some(rootfs.as_str()), rootfs.as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .context("bind-mounting the rootfs onto itself")?;
    chdir(rootfs.as_str()).context("chdir rootfs")?;
    pivot_root(".", ".").context("pivot_root")?;
    umount2(".", MntFlags::MNT_DETACH).context("detaching the old root")?;
    chdir("/").context("chdir /")?;

    // Too late: `volume` is a host path, and the host is no longer reachable.
    std::fs::create_dir_all(target).with_context(|| format!("creating {target}"))?;
    mount(Some(volume.as_str()), target.as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .with_context(|| format!("bind-mounting the volume {volume:?}"))?;

    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}
