//! Lesson 04, a known-wrong answer: the limit is written, but the hog never joins the cgroup.
//!
//! A limit applies to the processes in the cgroup, and a process is in the cgroup only once its
//! pid is written to cgroup.procs: this hog runs outside, and nothing stops it.
//! `workshop verify` proves the check fails it.

use anyhow::{Context, Result};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use std::path::{Path, PathBuf};

const LIMIT: u64 = 32 * 1024 * 1024;

/// Writes one value into one of the cgroup's files, saying which on failure.
fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value).with_context(|| format!("writing {value} to {}", path.display()))
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
            // The shortcut: no write to cgroup.procs.
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
