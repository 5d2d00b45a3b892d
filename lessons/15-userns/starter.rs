//! Lesson 15: a user namespace, root inside and nobody outside.
//!
//! Usage: lesson15 CMD [ARGS...]
//!
//! This program runs as an ordinary user (the checker starts it as uid 41500, gid 41501). Run
//! CMD as uid 0 and gid 0 inside a new user namespace, where uid 0 and gid 0 are this user's
//! own uid and gid on the host.
//! Read: book chapter "Namespaces", user_namespaces(7), unshare(2).
//!
//! Check your work: `workshop check 15` (as root: the checker switches to the ordinary user).

use anyhow::{Context, Result};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (program, program_args) = args
        .split_first()
        .context("usage: lesson15 CMD [ARGS...]")?;
    // Who we are on the host, before anything changes.
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());

    // TODO 1: put this process into a user namespace of its own.
    // TODO 2: make uid 0 inside the namespace be `uid` outside.
    // TODO 3: make gid 0 inside be `gid` outside. As an unprivileged process, the kernel first
    //         wants a promise about supplementary groups (user_namespaces(7)).
    let _ = (uid, gid);

    // exec replaces this process with CMD; it returns only on failure. The maps must be in
    // place before it: a process whose uid is not mapped loses its capabilities at execve.
    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}
