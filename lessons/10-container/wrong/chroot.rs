//! Lesson 10, a known-wrong answer: chroot(".") in place of pivot_root and umount2.
//!
//! Inside, / is the rootfs, but the host's mount tree is still in the container's mount
//! namespace, hidden only from the container's own view (and a chroot can be escaped).
//! `workshop verify` proves the check fails it.

use anyhow::{Context, Result};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, chdir, chroot, fork, sethostname};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

fn enter(rootfs: &str, cgroup_dir: &str) -> Result<()> {
    // Writing 0 to cgroup.procs moves the writing process itself (cgroups(7)); every child it
    // forks from now on starts in this cgroup too.
    std::fs::write(Path::new(cgroup_dir).join("cgroup.procs"), "0").context("joining the cgroup")?;
    sethostname("lesson10").context("sethostname")?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .context("making / private")?;
    mount(Some(rootfs), rootfs, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .context("bind-mounting the rootfs")?;
    chdir(rootfs).context("chdir rootfs")?;
    // The shortcut: change this process's root directory; the old root stays mounted.
    chroot(".").context("chroot")?;
    chdir("/").context("chdir /")?;
    mount(Some("proc"), "/proc", Some("proc"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, None::<&str>)
        .context("mounting /proc")?;
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [rootfs, cgroup_dir, cmd @ ..] = args.as_slice() else {
        anyhow::bail!("usage: lesson10 ROOTFS CGROUP_DIR CMD [ARGS...]");
    };
    let (program, program_args) = cmd.split_first().context("no command given")?;

    // All at once. The PID namespace applies to the child forked next, which becomes PID 1.
    unshare(
        CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWNET,
    )
    .context("unshare")?;

    // SAFETY: this program is single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            if let Err(err) = enter(rootfs, cgroup_dir) {
                eprintln!("lesson10: {err:#}");
                std::process::exit(125);
            }
            let err = Command::new(program).args(program_args).exec();
            eprintln!("exec {program}: {err}");
            std::process::exit(127);
        }
        ForkResult::Parent { child } => match waitpid(child, None).context("waitpid")? {
            WaitStatus::Exited(_, code) => std::process::exit(code),
            _ => std::process::exit(1),
        },
    }
}
