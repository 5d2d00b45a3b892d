//! Lesson 01: a hostname of your own.
//!
//! Usage: lesson01 HOSTNAME CMD [ARGS...]
//!
//! Run CMD with its own hostname, without changing the host's. The kernel keeps the hostname
//! in the UTS namespace; a process in a new one can change it freely.
//! Read: book chapter "Namespaces", and the man pages unshare(2), uts_namespaces(7).
//!
//! Check your work: `workshop check 1` (as root).

use anyhow::{Context, Result};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (hostname, cmd) = args
        .split_first()
        .context("usage: lesson01 HOSTNAME CMD [ARGS...]")?;
    let (program, program_args) = cmd.split_first().context("no command given")?;

    // TODO 1: move this process into a new UTS namespace.
    //         Hint: nix::sched::unshare with CloneFlags::CLONE_NEWUTS.
    //         Careful: without TODO 1, TODO 2 renames the host itself!

    // TODO 2: set the hostname to `hostname` (nix::unistd::sethostname).
    let _ = hostname;

    // exec replaces this process with CMD; it returns only on failure.
    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}
