//! Lesson 10: a complete container, by hand.
//!
//! Usage: lesson10 ROOTFS CGROUP_DIR CMD [ARGS...]
//!
//! Run CMD the way a container runtime does: in new UTS, PID, mount, IPC and network
//! namespaces, inside the cgroup directory CGROUP_DIR (the checker creates it for you), with
//! the hostname `lesson10` and ROOTFS as `/` (pivot_root), and a fresh /proc.
//! Read: book chapters "Namespaces", "cgroups" and "Putting it together".
//!
//! Check your work: `workshop check 10` (as root).

use anyhow::{Context, Result};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [rootfs, cgroup_dir, cmd @ ..] = args.as_slice() else {
        anyhow::bail!("usage: lesson10 ROOTFS CGROUP_DIR CMD [ARGS...]");
    };
    let (program, program_args) = cmd.split_first().context("no command given")?;
    let _ = (rootfs, cgroup_dir);

    // TODO 1: arrange that the child forked below starts as PID 1 in new UTS, PID, mount, IPC
    //         and network namespaces. (README.md; stuck: `workshop hint 10`.)

    // SAFETY: this program is single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            // TODO 2: put this child into the cgroup CGROUP_DIR, before all else it does.
            // TODO 3: give it the hostname "lesson10".
            // TODO 4: make ROOTFS its root as in lesson 03: no mount reaching the host, and
            //         the old root gone from its mount table.
            // TODO 5: give it a /proc of its own.
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
