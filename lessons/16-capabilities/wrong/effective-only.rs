//! Lesson 16, a known-wrong answer: Docker's set made effective, nothing else dropped.
//!
//! The bounding and permitted sets stay full. When root executes a program, the kernel gives
//! it every capability of the bounding set again (capabilities(7), "Transformation of
//! capabilities during execve()"): CMD runs with all of them. `workshop verify` proves the
//! check fails it.

use anyhow::{Context, Result};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (program, program_args) = args
        .split_first()
        .context("usage: lesson16 CMD [ARGS...]")?;
    // Permitted as it is (every capability this root holds), effective cut down to Docker's.
    let status = std::fs::read_to_string("/proc/self/status").context("reading status")?;
    let permitted = status
        .lines()
        .find_map(|l| l.strip_prefix("CapPrm:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .context("no CapPrm in /proc/self/status")?;
    capset(docker_mask() & permitted, permitted, 0).context("capset")?;

    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}

#[path = "../given.rs"]
mod given;
use given::*;
