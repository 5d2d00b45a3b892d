//! Lesson 16, a known-wrong answer: setpriv(1) drops the capabilities, not your program.
//!
//! The kernel ends up with the same sets, but the prctl(2) and capset(2) calls are setpriv's:
//! the checker traces which program makes each system call (strace -f) and counts only those
//! the learner's own program makes. `workshop verify` proves the check fails it.

use anyhow::{Context, Result};
use std::process::Command;

/// Docker's default capabilities, in setpriv's spelling: everything else leaves the bounding set.
const DOCKER: &str = "-all,+chown,+dac_override,+fowner,+fsetid,+kill,+setgid,+setuid,+setpcap,\
                      +net_bind_service,+net_raw,+sys_chroot,+mknod,+audit_write,+setfcap";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = Command::new("setpriv")
        .args(["--bounding-set", DOCKER, "--inh-caps", "-all", "--ambient-caps", "-all", "--"])
        .args(&args)
        .status()
        .context("running setpriv")?;
    std::process::exit(status.code().unwrap_or(1));
}
