//! Lesson 08: connect two network namespaces with a veth pair.
//!
//! Usage: lesson08 PID_A PID_B
//!
//! Processes PID_A and PID_B each sit alone in a fresh network namespace: no links but a
//! `lo` that is down, so they cannot reach anything. Connect them with a veth pair, a virtual
//! cable whose two ends are network interfaces:
//!
//! - end `veth-a` inside PID_A's namespace, address 10.0.0.1/24, up;
//! - end `veth-b` inside PID_B's namespace, address 10.0.0.2/24, up.
//!
//! Then each side can ping the other. The given `ip` helper does the talking to the kernel (it
//! sends netlink messages; minidock sends the same ones itself, see src/net/netlink.rs), in the
//! network namespace of the process that runs it.
//! Read: book chapter "Networking", and the man pages veth(4), setns(2), network_namespaces(7).
//!
//! Check your work: `workshop check 8` (as root).

use anyhow::{Context, Result, bail};
use std::fs::File;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [pid_a, pid_b] = args.as_slice() else {
        bail!("usage: lesson08 PID_A PID_B");
    };

    // TODO 1: make the cable: end veth-a in PID_A's network namespace, end veth-b in PID_B's.
    //         (README.md; stuck: `workshop hint 8`.)
    let _ = (pid_a, pid_b);

    // A way back: this process's own network namespace, opened before leaving it.
    let home = File::open("/proc/self/ns/net").context("opening our own netns")?;

    // TODO 2: configure each end where it lives: 10.0.0.1/24 on veth-a, 10.0.0.2/24 on
    //         veth-b, both up. `ip` acts on the namespace of the process that runs it; come
    //         back through `home` when done.
    let _ = &home;

    println!("lesson08: nothing connected yet (see the TODOs)");
    Ok(())
}

/// Given: runs `ip ARGS...` and fails with its message if it fails.
#[allow(dead_code)]
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
