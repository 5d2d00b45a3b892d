//! Lesson 15 solution: a user namespace, root inside and nobody outside.
//!
//! Usage: lesson15-solution CMD [ARGS...]

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, unshare};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (program, program_args) = args
        .split_first()
        .context("usage: lesson15 CMD [ARGS...]")?;
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());

    // A new user namespace: every capability in it, no id mapped yet.
    unshare(CloneFlags::CLONE_NEWUSER).context("unshare(CLONE_NEWUSER)")?;
    // One line each, "INSIDE OUTSIDE COUNT": uid 0 inside is our own uid outside.
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1\n")).context("writing uid_map")?;
    // Without CAP_SETGID outside, the gid map is refused until setgroups(2) is given up.
    std::fs::write("/proc/self/setgroups", "deny").context("writing setgroups")?;
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1\n")).context("writing gid_map")?;

    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}
