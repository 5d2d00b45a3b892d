//! Lesson 09, a known-wrong answer: the port published in nat PREROUTING only.
//!
//! PREROUTING sees packets that arrive from other hosts. A connection the host makes to its own
//! 127.0.0.1:8080 never passes PREROUTING (it goes through nat OUTPUT), so it is refused.
//! `workshop verify` proves the check fails it.

use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, setns};
use std::fs::File;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [pid] = args.as_slice() else {
        bail!("usage: lesson09 PID");
    };

    // 1. The bridge: a virtual switch, with the gateway address on the host's side.
    run("ip", &["link", "add", "br0", "type", "bridge"])?;
    run("ip", &["addr", "add", "10.0.0.1/24", "dev", "br0"])?;
    run("ip", &["link", "set", "br0", "up"])?;

    // 2. The cable: one end plugged into the bridge, the other made inside the container.
    run(
        "ip",
        &[
            "link", "add", "veth0", "type", "veth", "peer", "name", "eth0", "netns", pid,
        ],
    )?;
    run("ip", &["link", "set", "veth0", "master", "br0", "up"])?;

    // 3. The container's side, configured from inside its namespace.
    let home = File::open("/proc/self/ns/net").context("opening our own netns")?;
    let container =
        File::open(format!("/proc/{pid}/ns/net")).context("opening the container's netns")?;
    setns(&container, CloneFlags::CLONE_NEWNET).context("setns into the container")?;
    run("ip", &["addr", "add", "10.0.0.2/24", "dev", "eth0"])?;
    run("ip", &["link", "set", "eth0", "up"])?;
    run("ip", &["link", "set", "lo", "up"])?;
    run("ip", &["route", "add", "default", "via", "10.0.0.1"])?;
    setns(&home, CloneFlags::CLONE_NEWNET).context("setns back home")?;

    // 4. Publishing 8080 -> 10.0.0.2:80 for the host itself.
    write_sysctl("net/ipv4/conf/br0/route_localnet", "1")?;
    run(
        "iptables",
        &[
            "-t",
            "nat",
            "-A",
            "PREROUTING",
            "-p",
            "tcp",
            "--dport",
            "8080",
            "-m",
            "addrtype",
            "--dst-type",
            "LOCAL",
            "-j",
            "DNAT",
            "--to-destination",
            "10.0.0.2:80",
        ],
    )?;
    run(
        "iptables",
        &[
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-s",
            "127.0.0.0/8",
            "-o",
            "br0",
            "-j",
            "MASQUERADE",
        ],
    )?;
    println!("lesson09: br0 10.0.0.1/24, container 10.0.0.2/24, 127.0.0.1:8080 -> 10.0.0.2:80");
    Ok(())
}

/// Runs a command (`ip` or `iptables`) and fails with its message if it fails.
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

/// Writes a sysctl, e.g. "net/ipv4/conf/br0/route_localnet".
fn write_sysctl(name: &str, value: &str) -> Result<()> {
    std::fs::write(format!("/proc/sys/{name}"), value).with_context(|| format!("writing {name}"))
}
