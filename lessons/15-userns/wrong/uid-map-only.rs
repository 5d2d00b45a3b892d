//! Lesson 15, a known-wrong answer: only the uid map written.
//!
//! The process is uid 0 inside, but no gid is mapped: its gid reads as 65534 (the overflow
//! gid), and files it creates get the overflow gid too. `workshop verify` proves the check
//! fails it.

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, unshare};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (program, program_args) = args
        .split_first()
        .context("usage: lesson15 CMD [ARGS...]")?;
    let uid = nix::unistd::getuid();

    unshare(CloneFlags::CLONE_NEWUSER).context("unshare(CLONE_NEWUSER)")?;
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1\n")).context("writing uid_map")?;

    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}
