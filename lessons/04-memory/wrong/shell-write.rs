//! Lesson 04, a known-wrong answer: every cgroup file is written by a shell the program starts.
//!
//! The kernel sees the same limit and the same move into the cgroup, but the lesson is what your
//! program does with the cgroup filesystem: here sh(1) did the writes. The checker traces which
//! program made each write, so `workshop verify` proves the check fails it.

use anyhow::{Context, Result};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use std::path::{Path, PathBuf};

const LIMIT: u64 = 32 * 1024 * 1024;

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
        .context("usage: lesson04 CGROUP_DIR")?
        .into();

    // A cgroup is a directory; the kernel creates its files.
    std::fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;

    // The limit, and no swap beyond it: otherwise the hog would be swapped out, not stopped.
    if is_cgroup2(&dir) {
        write(&dir, "memory.max", &LIMIT.to_string())?;
        if dir.join("memory.swap.max").exists() {
            write(&dir, "memory.swap.max", "0")?;
        }
    } else {
        write(&dir, "memory.limit_in_bytes", &LIMIT.to_string())?;
        // v1 limits memory+swap together, so "no swap" is the same number again. It must be
        // written after limit_in_bytes: the kernel keeps memsw >= memory at every moment.
        if dir.join("memory.memsw.limit_in_bytes").exists() {
            write(&dir, "memory.memsw.limit_in_bytes", &LIMIT.to_string())?;
        }
    }

    // SAFETY: this program is single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            // Join first, allocate after: memory is charged to the cgroup the process is in
            // when it touches the page.
            if let Err(err) = write(&dir, "cgroup.procs", &std::process::id().to_string()) {
                eprintln!("lesson04: {err:#}");
                std::process::exit(1);
            }
            hog();
            std::process::exit(0);
        }
        ForkResult::Parent { child } => report(waitpid(child, None).context("waitpid")?),
    }
    Ok(())
}

fn is_cgroup2(dir: &Path) -> bool {
    dir.join("memory.max").exists()
}

fn hog() {
    let mut kept = Vec::new();
    for mib in 1..=128 {
        kept.push(vec![0xA5u8; 1 << 20]);
        if mib % 16 == 0 {
            println!("hog: {mib} MiB");
        }
    }
    println!("hog: all 128 MiB, nothing stopped me");
}

fn report(status: WaitStatus) {
    match status {
        WaitStatus::Signaled(_, signal, _) => println!("the hog was killed by {signal:?}"),
        WaitStatus::Exited(_, code) => println!("the hog exited with status {code}"),
        other => println!("the hog ended: {other:?}"),
    }
}
