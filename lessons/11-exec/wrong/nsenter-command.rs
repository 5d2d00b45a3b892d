//! Lesson 11, a known-wrong answer: the nsenter(1) command does the work, not setns(2).
//!
//! The lesson is the system calls: the checker traces which program makes each (strace -f)
//! and counts only those the learner's own program makes. `workshop verify` proves the check
//! fails it.

use anyhow::{Context, Result};
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (pid, cmd) = args.split_first().context("usage: lesson11 PID CMD [ARGS...]")?;
    let status = Command::new("nsenter")
        .args(["-t", pid, "-u", "-i", "-n", "-p", "-m"])
        .args(cmd)
        .status()
        .context("running nsenter")?;
    std::process::exit(status.code().unwrap_or(1));
}
