//! Lesson 05, a known-wrong answer: every cgroup file is written by a shell the program starts.
//!
//! The kernel sees the same limit and the same move into the cgroup, but the lesson is what your
//! program does with the cgroup filesystem: here sh(1) did the writes. The checker traces which
//! program made each write, so `workshop verify` proves the check fails it.

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, pause};
use std::path::{Path, PathBuf};

const MAX_TASKS: u32 = 20;

/// The shortcut: a shell writes each value, as `echo VALUE > FILE` at a prompt would.
fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    let status = std::process::Command::new("sh")
        .args(["-c", "echo \"$1\" > \"$2\"", "sh", value])
        .arg(&path)
        .status()
        .context("running sh")?;
    anyhow::ensure!(status.success(), "sh could not write {}", path.display());
    Ok(())
}

fn main() -> Result<()> {
    let dir: PathBuf = std::env::args()
        .nth(1)
        .context("usage: lesson05 CGROUP_DIR")?
        .into();

    std::fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    // The pids controller arrived late in v1 (Linux 4.3) and already used the v2 names, so this
    // line is the same on both versions.
    write(&dir, "pids.max", &MAX_TASKS.to_string())?;

    // SAFETY: this program is single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            // In the cgroup first: every process the bomb forks is born in its parent's cgroup,
            // so the whole bomb stays inside.
            if let Err(err) = write(&dir, "cgroup.procs", &std::process::id().to_string()) {
                eprintln!("lesson05: {err:#}");
                std::process::exit(1);
            }
            bomb();
            std::process::exit(0);
        }
        ForkResult::Parent { child } => {
            waitpid(child, None).context("waitpid")?;
        }
    }
    Ok(())
}

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
