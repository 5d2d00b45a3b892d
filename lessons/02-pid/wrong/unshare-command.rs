//! Lesson 02, a known-wrong answer: `unshare --pid --fork --mount-proc` does the work.
//!
//! The lesson is the system calls: the checker traces which program makes each (strace -f)
//! and counts only those the learner's own program makes. `workshop verify` proves the check
//! fails it.

use anyhow::{Context, Result};
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .args(&args)
        .status()
        .context("running unshare")?;
    std::process::exit(status.code().unwrap_or(1));
}
