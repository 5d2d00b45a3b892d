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

    // TODO 1: give this process a hostname of its own, one the host never sees: where does
    //         the kernel keep a hostname, and how does a process get a copy of its own?
    //         (README.md, "The idea"; stuck: `workshop hint 1`.)

    // TODO 2: name it `hostname`. Careful: without TODO 1, this renames the host itself.
    let _ = hostname;

    // exec replaces this process with CMD; it returns only on failure.
    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}
