//! Lesson 02, a known-wrong answer: unshare(CLONE_NEWPID) and exec, without a fork.
//!
//! unshare(CLONE_NEWPID) never moves the caller: only its next child is PID 1. The exec'd
//! command keeps its host pid, and the /proc it mounted shows the host's processes.
//! `workshop verify` proves the check fails it.

use anyhow::{Context, Result};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let cmd: Vec<String> = std::env::args().skip(1).collect();
    let (program, program_args) = cmd.split_first().context("usage: lesson02 CMD [ARGS...]")?;

    // The caller stays where it is; its next child becomes PID 1 of the new PID namespace.
    unshare(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS)
        .context("unshare(CLONE_NEWPID|CLONE_NEWNS)")?;

    // The shortcut: no fork, the command replaces this very process.
    {
        {
            // The new mount namespace copied the host's propagation: undo it first.
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
                .context("making / private")?;
            // procfs shows the PID namespace of whoever mounts it: ours.
            mount(Some("proc"), "/proc", Some("proc"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, None::<&str>)
                .context("mounting /proc")?;
            let err = Command::new(program).args(program_args).exec();
            Err(err).with_context(|| format!("exec {program}"))
        }
    }
}
