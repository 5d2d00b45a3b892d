//! Network namespaces for the networking tests: a private outer namespace that stands for the
//! host, pinned inner ones that stand for containers or outside machines, and processes run
//! inside them. Nothing here touches the real host's links, rules or sysctls.

use minidock::net::netlink::{LOOPBACK_INDEX, Netlink};
use minidock::net::{Netns, netns};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `f` inside a fresh private network (and mount) namespace on its own thread; every
/// process `f` spawns starts there too.
pub fn private_netns<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    netns::isolated(|| Ok(f())).expect("creating a private network namespace")
}

/// A new namespace pinned at `path`, with `lo` up (as a container's is).
pub fn pin_with_lo(path: &Path) -> Netns {
    let ns = netns::pin_new(path).expect("pinning a network namespace");
    let mut nl = ns.netlink().expect("netlink inside the namespace");
    nl.set_up(LOOPBACK_INDEX, "lo", None).expect("lo up");
    ns
}

/// Links the current namespace to `ns` with a veth pair: `host_if` here with `host_addr`/24,
/// `eth0` in `ns` with `peer_addr`/24; both up.
pub fn veth_to(ns: &Netns, host_if: &str, host_addr: Ipv4Addr, peer_addr: Ipv4Addr) {
    let mut host = Netlink::open().unwrap();
    host.create_veth(host_if, "eth0", ns.fd(), None, None)
        .unwrap();
    let index = host.link_index(host_if).unwrap().unwrap();
    host.add_address(index, host_addr, 24).unwrap();
    let mut inside = ns.netlink().unwrap();
    let eth0 = inside.link_index("eth0").unwrap().unwrap();
    inside.set_up(eth0, "eth0", None).unwrap();
    inside.add_address(eth0, peer_addr, 24).unwrap();
}

/// Runs `args` inside the namespace pinned at `ns_path` (nsenter(1)).
pub fn run_in(ns_path: &Path, args: &[&str]) -> Output {
    Command::new("nsenter")
        .arg(format!("--net={}", ns_path.display()))
        .args(args)
        .output()
        .expect("running nsenter")
}

/// The PIDs of live processes whose command line contains every one of `needles`.
pub fn pids_with_args(needles: &[&str]) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let zombie = state.rsplit(')').next()?.trim_start().starts_with('Z');
        (!zombie && needles.iter().all(|n| cmdline.contains(n))).then_some(pid)
    })
    .collect()
}

/// The links of the current namespace whose names start with `prefix`, once they are gone or
/// after a few seconds. A container's veth pair is deleted by the kernel when it frees the
/// container's network namespace, a moment after the teardown that unpinned it returns.
pub fn links_left(prefix: &str) -> Vec<String> {
    let mut nl = Netlink::open().expect("a netlink socket");
    let mut left = Vec::new();
    for _ in 0..250 {
        left = nl
            .links()
            .expect("listing links")
            .into_iter()
            .map(|l| l.name)
            .filter(|n| n.starts_with(prefix))
            .collect();
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    left
}

/// True once the link `name` is gone, polling for a few seconds (see [`links_left`]).
pub fn link_gone(name: &str) -> bool {
    links_left(name).iter().all(|n| n != name)
}
