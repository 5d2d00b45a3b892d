//! Lesson 06, a known-wrong answer: the mount(8) command mounts the overlay, not mount(2).
//!
//! The kernel ends up with the same overlay, but the mount(2) call is the command's: the checker
//! traces which program makes each system call (strace -f) and counts only those the learner's
//! own program makes. `workshop verify` proves the check fails it.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;

const NEW_TEXT: &str = "edited in the container\n";

fn main() -> Result<()> {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let [lower, upper, work, merged] = args.as_slice() else {
        bail!("usage: lesson06 LOWER UPPER WORK MERGED");
    };
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    let status = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &data])
        .arg(merged)
        .status()
        .context("running mount")?;
    if !status.success() {
        bail!("mount failed: {status}");
    }
    std::fs::write(merged.join("hello.txt"), NEW_TEXT)
        .with_context(|| format!("writing {}", merged.join("hello.txt").display()))?;
    for layer in [upper, lower] {
        let path = layer.join("hello.txt");
        let content = std::fs::read_to_string(&path).unwrap_or_else(|_| "(absent)".into());
        println!("{}: {content:?}", path.display());
    }
    Ok(())
}
