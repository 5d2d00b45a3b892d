//! Lesson 15, a known-wrong answer: busybox's unshare does the work, not your program.
//!
//! Every call the lesson is about is made, but by busybox: the checker traces which program
//! makes each system call (strace -f) and counts only those your program makes itself.
//! `workshop verify` proves the check fails it.

use anyhow::{Context, Result};
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = Command::new("busybox")
        .arg("unshare")
        .args(["-U", "-r"])
        .args(&args)
        .status()
        .context("running busybox unshare")?;
    std::process::exit(status.code().unwrap_or(1));
}
