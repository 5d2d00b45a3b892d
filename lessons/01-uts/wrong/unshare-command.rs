//! Lesson 01, a known-wrong answer: the unshare(1) command does the work, not unshare(2).
//!
//! The lesson is the system calls: the checker traces which program makes each (strace -f)
//! and counts only those the learner's own program makes. `workshop verify` proves the check
//! fails it.

use anyhow::{Context, Result};
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = Command::new("unshare")
        .args(["--uts", "sh", "-c", "hostname \"$0\" && exec \"$@\""])
        .args(&args)
        .status()
        .context("running unshare")?;
    std::process::exit(status.code().unwrap_or(1));
}
