//! Lesson 09: a bridge and a published port, the way `docker run -p 8080:80` does it.
//!
//! Usage: lesson09 PID
//!
//! Process PID sits alone in a fresh network namespace: the "container". This program runs
//! in the "host" namespace. Build Docker's network for it:
//!
//! 1. a bridge `br0` on the host, address 10.0.0.1/24 (the containers' gateway), up;
//! 2. a veth pair: `veth0` on the host, attached to br0 and up; `eth0` made directly in the
//!    container's namespace;
//! 3. inside the container: eth0 10.0.0.2/24 and up, `lo` up, default route via 10.0.0.1;
//! 4. publish host port 8080 to the container's port 80, for connections the host itself
//!    makes to 127.0.0.1:8080. README.md explains which path such a packet takes through the
//!    nat table, and what else it needs once it is rewritten.
//!
//! The checker then starts an HTTP server on port 80 in the container and fetches
//! http://127.0.0.1:8080/ from the host.
//! Read: book chapter "Networking", and the man pages ip-link(8), iptables-extensions(8)
//! (DNAT, MASQUERADE, addrtype), and Documentation/networking/ip-sysctl.rst (route_localnet).
//!
//! Check your work: `workshop check 9` (as root).

use anyhow::{Context, Result, bail};
use std::fs::File;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [pid] = args.as_slice() else {
        bail!("usage: lesson09 PID");
    };

    // TODO 1: point 1 above: the containers' switch and gateway.

    // TODO 2: point 2 above: the container's cable, one end on the switch.
    let _ = pid;

    // TODO 3: point 3 above, configured from inside the container's namespace as in lesson 08
    //         (come back through `home`).
    let home = File::open("/proc/self/ns/net").context("opening our own netns")?;
    let _ = &home;

    // TODO 4: point 4 above: 127.0.0.1:8080 on the host reaches port 80 in the container.
    //         Which path does a packet the host sends to itself take through the nat table?
    //         (README.md; stuck: `workshop hint 9`.)

    println!("lesson09: no network built yet (see the TODOs)");
    Ok(())
}

/// Given: runs a command (`ip` or `iptables`) and fails with its message if it fails.
#[allow(dead_code)]
fn run(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Given: writes a sysctl, e.g. "net/ipv4/conf/br0/route_localnet". /proc/sys/net shows the
/// network namespace of the process that opens it.
#[allow(dead_code)]
fn write_sysctl(name: &str, value: &str) -> Result<()> {
    std::fs::write(format!("/proc/sys/{name}"), value).with_context(|| format!("writing {name}"))
}
