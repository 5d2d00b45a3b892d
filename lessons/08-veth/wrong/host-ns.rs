//! Lesson 08, a known-wrong answer: the veth pair made and configured in the host's namespace.
//!
//! Both ends exist and are up, with their addresses, but in the namespace the program runs in:
//! the two "containers" see no new interface. `workshop verify` proves the check fails it.

use anyhow::{Context, Result, bail};
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [pid_a, pid_b] = args.as_slice() else {
        bail!("usage: lesson08 PID_A PID_B");
    };

    // One message to the kernel makes both ends, each already in its namespace: no moving
    // an interface afterwards.
    // The shortcut: no `netns PID`, both ends stay where this program runs.
    ip(&["link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b"])?;

    for (pid, end, address) in [
        (pid_a, "veth-a", "10.0.0.1/24"),
        (pid_b, "veth-b", "10.0.0.2/24"),
    ] {
        // ...and no setns: configured where they are.
        ip(&["addr", "add", address, "dev", end])?;
        ip(&["link", "set", end, "up"])?;
        println!("lesson08: {end} {address} up in the netns of {pid}");
    }
    Ok(())
}

/// Runs `ip ARGS...` and fails with its message if it fails.
fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
