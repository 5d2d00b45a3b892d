//! Lesson 04: a memory limit the kernel enforces.
//!
//! Usage: lesson04 CGROUP_DIR
//!
//! Create the cgroup CGROUP_DIR, give it a memory limit of 32 MiB and no swap, and run the
//! memory hog below inside it. The hog wants 128 MiB; inside the cgroup, the kernel's OOM killer
//! stops it at 32 MiB, and the rest of the machine never notices.
//!
//! CGROUP_DIR is in the memory controller's hierarchy: under /sys/fs/cgroup/memory/ on a
//! cgroup v1 host, under /sys/fs/cgroup/ on a v2 host. The file names differ:
//!
//! | what               | cgroup v2          | cgroup v1                      |
//! |--------------------|--------------------|--------------------------------|
//! | memory limit       | `memory.max`       | `memory.limit_in_bytes`        |
//! | no swap beyond it  | `memory.swap.max` = 0 | `memory.memsw.limit_in_bytes` = the same limit |
//! | join the group     | `cgroup.procs`     | `cgroup.procs`                 |
//!
//! Leave the cgroup in place when you are done: the checker reads the kernel's counters in it
//! (the limit, the peak, the OOM kills), then removes it.
//! Read: book chapter "cgroups", and Documentation/admin-guide/cgroup-v2.rst, "Memory".
//!
//! Check your work: `workshop check 4` (as root).

use anyhow::{Context, Result};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use std::path::{Path, PathBuf};

/// 32 MiB in bytes: the kernel's files take plain numbers.
const LIMIT: u64 = 32 * 1024 * 1024;

fn main() -> Result<()> {
    let dir: PathBuf = std::env::args()
        .nth(1)
        .context("usage: lesson04 CGROUP_DIR")?
        .into();

    // TODO 1: create the cgroup CGROUP_DIR. (A cgroup is a directory: what does the kernel
    //         put in a new one?)

    // TODO 2: limit its memory to LIMIT bytes, and forbid swap beyond it where the host
    //         accounts swap (the table above; `is_cgroup2` tells the version).
    //         (README.md; stuck: `workshop hint 4`.)
    let _ = (LIMIT, is_cgroup2(&dir));

    // SAFETY: this program is single-threaded.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            // TODO 3: make the hog's memory count against the limit. Which processes does a
            //         limit hold, and when is memory charged?
            hog();
            std::process::exit(0);
        }
        ForkResult::Parent { child } => report(waitpid(child, None).context("waitpid")?),
    }
    Ok(())
}

/// Given: is this directory a cgroup v2 one? (Only v2 has memory.max.)
fn is_cgroup2(dir: &Path) -> bool {
    dir.join("memory.max").exists()
}

/// Given: wants 128 MiB, and writes to every byte of it (memory is charged to a cgroup when a
/// page is first written, not when it is allocated).
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

/// Given: says how the hog ended.
fn report(status: WaitStatus) {
    match status {
        WaitStatus::Signaled(_, signal, _) => println!("the hog was killed by {signal:?}"),
        WaitStatus::Exited(_, code) => println!("the hog exited with status {code}"),
        other => println!("the hog ended: {other:?}"),
    }
}
