//! Lesson 15, a known-wrong answer: the gid map written before setgroups is denied.
//!
//! An unprivileged process may not write gid_map while setgroups(2) is still allowed in the
//! namespace: the write fails with EPERM (user_namespaces(7)). `workshop verify` proves the
//! check fails it.

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

    unshare(CloneFlags::CLONE_NEWUSER).context("unshare(CLONE_NEWUSER)")?;
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1\n")).context("writing uid_map")?;
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1\n")).context("writing gid_map")?;
    std::fs::write("/proc/self/setgroups", "deny").context("writing setgroups")?;

    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}
