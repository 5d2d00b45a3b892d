//! Lesson 11 solution: `docker exec`, by hand.
//!
//! Usage: lesson11-solution PID CMD [ARGS...]

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, setns};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, chdir, fork};
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

    // We are not in the container's PID namespace ourselves; our next child is.
    // SAFETY: this program is single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            if let Err(err) = chdir("/") {
                eprintln!("chdir /: {err}");
                std::process::exit(125);
            }
            let err = Command::new(program).args(program_args).exec();
            eprintln!("exec {program}: {err}");
            std::process::exit(127);
        }
        ForkResult::Parent { child } => match waitpid(child, None).context("waitpid")? {
            WaitStatus::Exited(_, code) => std::process::exit(code),
            _ => std::process::exit(1),
        },
    }
}
