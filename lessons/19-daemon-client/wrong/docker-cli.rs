//! Lesson 19, a known-wrong answer: the docker CLI asks the daemon, not your program.
//!
//! It runs `docker ps -a --no-trunc --format '{{.ID}} {{.Names}}'` against the socket and
//! passes its lines on: the lines are right, but the request, its query and the names' '/'
//! are the CLI's work. The checker traces which program connects to the socket (strace -f).
//! `workshop verify` proves the check fails it.

use anyhow::{Context, Result, bail};
use std::process::Command;

fn main() -> Result<()> {
    let socket = std::env::args().nth(1).context("usage: lesson19 SOCKET")?;
    let out = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{socket}"))
        .args(["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"])
        .output()
        .context("running docker")?;
    if !out.status.success() {
        bail!("docker ps: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    print!("{}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}
