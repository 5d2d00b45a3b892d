//! Lesson 16: drop to Docker's capabilities.
//!
//! Usage: lesson16 CMD [ARGS...]
//!
//! Run CMD as root with only the capabilities Docker gives a container (DOCKER_DEFAULT in
//! given.rs), in every one of the five sets of capabilities(7), so that nothing CMD executes
//! can get the others back.
//! Read: book chapter "Security defaults", capabilities(7), prctl(2), capset(2).
//!
//! Check your work: `workshop check 16` (as root).

use anyhow::{Context, Result};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (program, program_args) = args
        .split_first()
        .context("usage: lesson16 CMD [ARGS...]")?;

    // TODO 1: make sure no program CMD executes can ever gain a capability outside Docker's
    //         set, not even as root (think of what execve(2) gives root).
    // TODO 2: leave no capability that survives execve for a non-root user either.
    // TODO 3: make this process's own capabilities Docker's set, and nothing to pass on.
    let _ = (docker_mask(), last_cap(), capset as fn(u64, u64, u64) -> std::io::Result<()>);

    // exec replaces this process with CMD; it returns only on failure.
    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}

// ---- Given (in given.rs, shared by the starter, the solution and the wrong answers): Docker's
// capability list, the kernel's last capability, and a capset(2) wrapper.
#[path = "given.rs"]
mod given;
use given::*;
