//! Lesson 03, a known-wrong answer: busybox's unshare does the work, not your program.
//!
//! Every call the lesson is about is made, but by busybox: the checker traces which program
//! makes each system call (strace -f) and counts only those your program makes itself.
//! `workshop verify` proves the check fails it.

use anyhow::{Context, Result};
use std::process::Command;

/// What the lesson's program does, as busybox commands: the rootfs (`$0`) bound onto itself,
/// pivoted into and the old root detached, /proc mounted, then the command.
const PIVOT: &str = "busybox mount -o rbind \"$0\" \"$0\" && cd \"$0\" && busybox pivot_root . . \
    && busybox umount -l . && cd / && busybox mount -t proc proc /proc && exec \"$@\"";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = Command::new("busybox")
        .arg("unshare")
        .args(["-m", "sh", "-c", PIVOT])
        .args(&args)
        .status()
        .context("running busybox unshare")?;
    std::process::exit(status.code().unwrap_or(1));
}
