//! Lesson 01, a known-wrong answer: sethostname without a UTS namespace.
//!
//! It prints the right hostname inside, but it renamed the machine: every process shares the
//! host's UTS namespace. `workshop verify` proves the check fails it.

use anyhow::{Context, Result};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (hostname, cmd) = args
        .split_first()
        .context("usage: lesson01 HOSTNAME CMD [ARGS...]")?;
    let (program, program_args) = cmd.split_first().context("no command given")?;

    // The shortcut: no unshare(CLONE_NEWUTS), so this renames the host.
    nix::unistd::sethostname(hostname).context("sethostname")?;

    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}
