//! Lesson 02 solution: PID 1, and a /proc that shows only your processes.
//!
//! Usage: lesson02-solution CMD [ARGS...]

use anyhow::{Context, Result};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let cmd: Vec<String> = std::env::args().skip(1).collect();
    let (program, program_args) = cmd.split_first().context("usage: lesson02 CMD [ARGS...]")?;

    // The caller stays where it is; its next child becomes PID 1 of the new PID namespace.
    unshare(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS)
        .context("unshare(CLONE_NEWPID|CLONE_NEWNS)")?;

    // SAFETY: this program is single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            // The new mount namespace copied the host's propagation: undo it first.
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
                .context("making / private")?;
            // procfs shows the PID namespace of whoever mounts it: ours.
            mount(Some("proc"), "/proc", Some("proc"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, None::<&str>)
                .context("mounting /proc")?;
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
