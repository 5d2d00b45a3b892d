//! Lesson 01 solution: a hostname of your own.
//!
//! Usage: lesson01-solution HOSTNAME CMD [ARGS...]

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, unshare};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (hostname, cmd) = args
        .split_first()
        .context("usage: lesson01 HOSTNAME CMD [ARGS...]")?;
    let (program, program_args) = cmd.split_first().context("no command given")?;

    // A UTS namespace needs no child process: unshare(2) moves the caller itself into a new
    // one, holding a copy of the old hostname.
    unshare(CloneFlags::CLONE_NEWUTS).context("unshare(CLONE_NEWUTS)")?;
    // Only the new namespace's copy changes; the host keeps its hostname.
    nix::unistd::sethostname(hostname).context("sethostname")?;

    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}
