//! Lesson 17, a known-wrong answer: strace(1) makes mkdir fail, not a filter of your program.
//!
//! `strace --seccomp-bpf -e inject=mkdir,mkdirat:error=EPERM` runs the command with a filter
//! of strace's own (no_new_privs set, Seccomp 2) that stops at each mkdir, and strace answers
//! EPERM from outside: the command sees what the lesson asks, but no seccomp(2) call of your
//! program made it. `workshop verify` proves the check fails it.

use anyhow::{Context, Result};
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = Command::new("strace")
        .args(["-f", "-qq", "--seccomp-bpf", "-o", "/dev/null"])
        .args(["-e", "trace=mkdir,mkdirat"])
        .args(["-e", "inject=mkdir,mkdirat:error=EPERM", "--"])
        .args(&args)
        .status()
        .context("running strace")?;
    std::process::exit(status.code().unwrap_or(1));
}
