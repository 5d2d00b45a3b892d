//! Lesson 10, a known-wrong answer: join the cgroup and burn cpu, print what the checker's
//! command would print, run nothing in a container.
//!
//! The cgroup's cpu time is real, the rest is only text on stdout; the checker looks at the
//! command's namespaces from the host, and a command that never gets there fails.
//! `workshop verify` proves the check fails it.

use anyhow::{Context, Result};

fn main() -> Result<()> {
    let cgroup = std::env::args().nth(2).context("usage: lesson10 ROOTFS CGROUP_DIR CMD")?;
    std::fs::write(format!("{cgroup}/cgroup.procs"), "0").context("joining the cgroup")?;
    let mut x = 0u64;
    for i in 0..50_000_000u64 {
        x = std::hint::black_box(x.wrapping_add(i));
    }
    println!("lesson10\n1\ninside the rootfs\nhost-hidden\nlo ");
    Ok(())
}
