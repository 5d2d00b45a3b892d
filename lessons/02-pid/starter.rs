//! Lesson 02: PID 1, and a /proc that shows only your processes.
//!
//! Usage: lesson02 CMD [ARGS...]
//!
//! Run CMD as PID 1 of a new PID namespace, with a fresh /proc so that `ps` shows only CMD's
//! own process tree. Read: book chapter "Namespaces", pid_namespaces(7), mount_namespaces(7).
//!
//! Check your work: `workshop check 2` (as root).

use anyhow::{Context, Result};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let cmd: Vec<String> = std::env::args().skip(1).collect();
    let (program, program_args) = cmd.split_first().context("usage: lesson02 CMD [ARGS...]")?;

    // TODO 1: arrange that the child forked below is PID 1 of a process tree of its own, and
    //         that its mounts can differ from the host's. Which process does that move: this
    //         one, or the one forked next? (README.md; stuck: `workshop hint 2`.)

    // SAFETY: this program is single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            // TODO 2: make sure no mount made from here on reaches the host.
            // TODO 3: give the command a /proc that lists its own process tree, not the host's.
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
