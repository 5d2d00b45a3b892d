//! Lesson 13, a known-wrong answer: no mount, the files copied into the host directory once
//! the command is done.
//!
//! VOLUME ends up holding the file, but the command wrote into the rootfs, and while it ran
//! its mount namespace had no volume in it: a second container, or the host writing to VOLUME
//! meanwhile, sees nothing shared. `workshop verify` proves the check fails it.

use anyhow::{Context, Result, bail};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, chdir, fork, pivot_root};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [rootfs, volume, target, cmd @ ..] = args.as_slice() else {
        bail!("usage: lesson13 ROOTFS VOLUME TARGET CMD [ARGS...]");
    };
    let inside = Path::new(rootfs).join(target.trim_start_matches('/'));
    std::fs::create_dir_all(&inside).with_context(|| format!("creating {}", inside.display()))?;
    // SAFETY: the program has one thread; the child only makes system calls and execs.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => run(rootfs, cmd),
        ForkResult::Parent { child } => {
            let status = waitpid(child, None).context("waitpid")?;
            for entry in std::fs::read_dir(&inside).context("reading the target")? {
                let entry = entry.context("reading the target")?;
                std::fs::copy(entry.path(), Path::new(volume).join(entry.file_name()))
                    .context("copying into the volume")?;
            }
            match status {
                WaitStatus::Exited(_, 0) => Ok(()),
                other => bail!("the command ended with {other:?}"),
            }
        }
    }
}

fn run(rootfs: &str, cmd: &[String]) -> Result<()> {
    let (program, program_args) = cmd.split_first().context("no command given")?;
    unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS)")?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .context("making / private")?;
    mount(Some(rootfs), rootfs, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .context("bind-mounting the rootfs onto itself")?;
    chdir(rootfs).context("chdir rootfs")?;
    pivot_root(".", ".").context("pivot_root")?;
    umount2(".", MntFlags::MNT_DETACH).context("detaching the old root")?;
    chdir("/").context("chdir /")?;
    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}
