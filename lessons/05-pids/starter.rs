//! Lesson 05: contain a fork bomb with pids.max.
//!
//! Usage: lesson05 CGROUP_DIR
//!
//! Create the cgroup CGROUP_DIR, allow it at most 20 tasks (processes and threads), and run the
//! fork bomb below inside it. Without a limit the bomb forks 200 children (it is a polite bomb:
//! it stops there and cleans up). Inside the cgroup, fork(2) fails with EAGAIN once 20 tasks
//! exist, while the rest of the machine forks as usual.
//!
//! CGROUP_DIR is in the pids controller's hierarchy: under /sys/fs/cgroup/pids/ on a cgroup v1
//! host, under /sys/fs/cgroup/ on a v2 host. Here both versions use the same files:
//! `pids.max` for the limit and `cgroup.procs` to join.
//!
//! Leave the cgroup in place when you are done: the checker reads the kernel's counters in it
//! (the limit, and `pids.events`, which counts refused forks), then removes it.
//! Read: book chapter "cgroups", and Documentation/admin-guide/cgroup-v2.rst, "PID".
//!
//! Check your work: `workshop check 5` (as root).

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, pause};
use std::path::PathBuf;

/// The most tasks the group may hold.
const MAX_TASKS: u32 = 20;

fn main() -> Result<()> {
    let dir: PathBuf = std::env::args()
        .nth(1)
        .context("usage: lesson05 CGROUP_DIR")?
        .into();

    // TODO 1: create the cgroup CGROUP_DIR.

    // TODO 2: allow it at most MAX_TASKS tasks. (README.md; stuck: `workshop hint 5`.)
    let _ = (&dir, MAX_TASKS);

    // SAFETY: this program is single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            // TODO 3: make the limit hold the bomb and every process it makes, and nothing
            //         else on the machine.
            bomb();
            std::process::exit(0);
        }
        ForkResult::Parent { child } => {
            waitpid(child, None).context("waitpid")?;
        }
    }
    Ok(())
}

/// Given: forks children that just wait, until fork fails or 200 exist; says which, then
/// kills and reaps them all.
fn bomb() {
    let mut children: Vec<Pid> = Vec::new();
    while children.len() < 200 {
        // SAFETY: single-threaded; the child only waits for its signal.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => loop {
                pause();
            },
            Ok(ForkResult::Parent { child }) => children.push(child),
            Err(errno) => {
                println!(
                    "bomb: fork failed with {errno:?} after {} children",
                    children.len()
                );
                break;
            }
        }
    }
    if children.len() == 200 {
        println!("bomb: forked 200 children, nothing stopped me");
    }
    for child in &children {
        let _ = kill(*child, Signal::SIGKILL);
    }
    for child in children {
        let _ = waitpid(child, None);
    }
}
