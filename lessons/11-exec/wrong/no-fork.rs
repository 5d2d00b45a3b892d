//! Lesson 11, a known-wrong answer: setns into every namespace, then exec without a fork.
//!
//! setns(CLONE_NEWPID) never moves the caller: the command keeps the host's PID namespace, and
//! the container's /proc has no entry for it. `workshop verify` proves the check fails it.

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, setns};
use nix::unistd::chdir;
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (pid, cmd) = args.split_first().context("usage: lesson11 PID CMD [ARGS...]")?;
    let (program, program_args) = cmd.split_first().context("no command given")?;

    // Open every namespace file before joining any: once in the container's mount namespace,
    // /proc is the container's own and the host pid would not be found there.
    let namespaces = [
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ];
    let mut files = Vec::new();
    for (name, flag) in namespaces {
        let path = format!("/proc/{pid}/ns/{name}");
        files.push((std::fs::File::open(&path).with_context(|| format!("opening {path}"))?, flag, name));
    }
    for (file, flag, name) in &files {
        setns(file, *flag).with_context(|| format!("setns into the {name} namespace"))?;
    }

    // The shortcut: exec right here, without the fork.
    chdir("/").context("chdir /")?;
    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}
