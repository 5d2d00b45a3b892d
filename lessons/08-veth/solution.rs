//! Lesson 08, solution: connect two network namespaces with a veth pair.
//!
//! Usage: lesson08-solution PID_A PID_B

use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, setns};
use std::fs::File;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [pid_a, pid_b] = args.as_slice() else {
        bail!("usage: lesson08 PID_A PID_B");
    };

    // One message to the kernel makes both ends, each already in its namespace: no moving
    // an interface afterwards.
    ip(&[
        "link", "add", "veth-a", "netns", pid_a, "type", "veth", "peer", "name", "veth-b", "netns",
        pid_b,
    ])?;

    let home = File::open("/proc/self/ns/net").context("opening our own netns")?;
    for (pid, end, address) in [
        (pid_a, "veth-a", "10.0.0.1/24"),
        (pid_b, "veth-b", "10.0.0.2/24"),
    ] {
        let netns = File::open(format!("/proc/{pid}/ns/net"))
            .with_context(|| format!("opening the netns of {pid}"))?;
        // From here on, this process (and the `ip` it starts) sees only that namespace.
        setns(&netns, CloneFlags::CLONE_NEWNET).context("setns into the peer's netns")?;
        ip(&["addr", "add", address, "dev", end])?;
        ip(&["link", "set", end, "up"])?;
        setns(&home, CloneFlags::CLONE_NEWNET).context("setns back home")?;
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
