//! Lesson 16 solution: drop to Docker's capabilities.
//!
//! Usage: lesson16-solution CMD [ARGS...]

use anyhow::{Context, Result};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (program, program_args) = args
        .split_first()
        .context("usage: lesson16 CMD [ARGS...]")?;
    let keep = docker_mask();

    // The bounding set caps what execve can ever grant, to root too: drop everything else
    // from it, one capability at a time. It needs CAP_SETPCAP, which Docker's set keeps.
    for cap in 0..=last_cap() {
        if keep & 1 << cap == 0 {
            // SAFETY: prctl with integer arguments only.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("dropping capability {cap} from the bounding set"));
            }
        }
    }
    // Ambient capabilities survive execve for a non-root user: none.
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("clearing the ambient set");
    }
    // Effective and permitted: Docker's set. Inheritable: empty, as Docker has it since
    // CVE-2022-24769.
    capset(keep, keep, 0).context("capset")?;

    let err = Command::new(program).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}

#[path = "given.rs"]
mod given;
use given::*;
