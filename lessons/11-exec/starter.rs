//! Lesson 11: `docker exec`, by hand: enter a running container with setns.
//!
//! Usage: lesson11 PID CMD [ARGS...]
//!
//! Run CMD inside the container whose main process is PID (a pid as the host sees it): in its
//! UTS, IPC, network, PID and mount namespaces. Each namespace of a process is a file in
//! /proc/PID/ns/, and joining one takes an open descriptor of that file.
//! Read: README.md, and book chapter "Namespaces" (how a namespace is identified).
//!
//! Check your work: `workshop check 11` (as root).

use anyhow::{Context, Result};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (pid, cmd) = args.split_first().context("usage: lesson11 PID CMD [ARGS...]")?;
    let (program, program_args) = cmd.split_first().context("no command given")?;
    let _ = pid;

    // TODO 1: get hold of the container's UTS, IPC, network, PID and mount namespaces while
    //         PID still names the container's process here (inside the container's mount
    //         namespace, /proc is the container's and PID means nothing there).
    // TODO 2: move into each of them, the mount namespace last. Only the processes created
    //         afterwards land in a PID namespace joined this way: that is why we fork below.
    //         (README.md; stuck: `workshop hint 11`.)

    // SAFETY: this program is single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            // TODO 3: start in the container's root directory: the old working directory
            //         belongs to the host's filesystem.
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
