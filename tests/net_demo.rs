//! net-demo and the `net` module, end to end.
//!
//! Safety: every scenario runs on a thread inside a private network namespace (and mount
//! namespace) created for it by `net::netns::isolated`. net-demo processes spawned from that
//! thread inherit it, so the host's links, netfilter rules and `ip_forward` are never touched,
//! and traffic goes only to loopback and to namespaces the test made. Bridge names carry a
//! random suffix anyway, and everything is torn down and then checked to be gone.
//!
//! NAT backends: each backend has its own tests (`..._iptables_nft`, `..._iptables_legacy`,
//! `..._nft`), and each prints which backend it ran with.

mod common;

use assert_cmd::Command;
use common::{prerequisite, require_root};
use minidock::net::netlink::Netlink;
use minidock::net::{self, Backend, Netns, netns, probe};
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::Path;
use std::time::Duration;

/// Runs `f` inside a fresh private network namespace on its own thread.
fn private_netns<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    netns::isolated(|| Ok(f())).expect("creating a private network namespace")
}

fn suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{:05x}", (nanos ^ std::process::id()) & 0xfffff)
}

fn net_demo(root: &Path) -> Command {
    let mut cmd = Command::cargo_bin("net-demo").unwrap();
    cmd.arg("--root").arg(root).arg("--quiet");
    cmd
}

fn with_backend(root: &Path, backend: Backend) -> Command {
    let mut cmd = net_demo(root);
    cmd.args(["--nat-backend", backend.name()]);
    cmd
}

fn require_backend(backend: Backend) -> bool {
    let ok = prerequisite(
        backend.is_available(),
        &format!("the {backend} NAT backend ({backend} in PATH)"),
    );
    if ok {
        eprintln!("NAT backend under test: {backend}");
    }
    ok
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The kernel shows nothing of ours: only `lo` with 127.0.0.1, no minidock rule with any
/// backend, no nft table, `ip_forward` back to 0, no record and no pinned namespace.
fn assert_nothing_left(root: &Path) {
    let mut nl = Netlink::open().unwrap();
    let links: Vec<String> = nl.links().unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(links, vec!["lo".to_string()], "links left over");
    let addrs: Vec<Ipv4Addr> = nl
        .addresses()
        .unwrap()
        .into_iter()
        .map(|a| a.address)
        .collect();
    assert_eq!(addrs, vec![Ipv4Addr::LOCALHOST], "addresses left over");
    for backend in Backend::ALL.into_iter().filter(|b| b.is_available()) {
        let left = net::nat::list_rules(backend).unwrap();
        assert!(left.is_empty(), "{backend} rules left over: {left:?}");
    }
    assert_eq!(net::nat::read_sysctl("net/ipv4/ip_forward").unwrap(), "0");
    let state = net::StateDir::new(root);
    for dir in ["bridges", "containers", "ipam"] {
        assert!(state.list(dir).unwrap().is_empty(), "records left in {dir}");
    }
    assert!(!state.path("host.json").exists(), "host.json left over");
    let pins: Vec<_> = std::fs::read_dir(state.path("netns"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(pins.is_empty(), "pinned namespaces left over: {pins:?}");
}

// ---------------------------------------------------------------------------------------------
// The tour, once per NAT backend.

fn tour(backend: Backend) {
    if !require_root() || !require_backend(backend) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let bridge = format!("mdt{}", suffix());
    let out = private_netns(|| {
        assert_eq!(net::nat::read_sysctl("net/ipv4/ip_forward").unwrap(), "0");
        let output = with_backend(root.path(), backend)
            .args(["tour", "--bridge", &bridge, "--port", "18080"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "tour failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_nothing_left(root.path());
        stdout(&output)
    });
    assert!(
        out.contains("hello from tour-b (10.89.0.3) through NAT"),
        "{out}"
    );
    assert!(out.contains("minidock rules left: 0"), "{out}");
    insta::with_settings!({
        snapshot_suffix => backend.name(),
        filters => vec![
            (r"\d+\.\d+ ms", "[RTT] ms"),
            (bridge.as_str(), "[BRIDGE]"),
        ],
    }, {
        insta::assert_snapshot!(out);
    });
}

#[test]
fn tour_with_iptables_nft() {
    tour(Backend::IptablesNft);
}

#[test]
fn tour_with_iptables_legacy() {
    tour(Backend::IptablesLegacy);
}

#[test]
fn tour_with_nft() {
    tour(Backend::Nft);
}

// ---------------------------------------------------------------------------------------------
// Subcommands, checked against what the kernel shows.

fn address_of(root: &Path, name: &str) -> Ipv4Addr {
    net::attachment(&net::StateDir::new(root), name)
        .unwrap()
        .unwrap_or_else(|| panic!("no record for {name}"))
        .address
}

#[test]
fn two_containers_on_a_bridge_ping_each_other() {
    if !require_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let bridge = format!("mdp{}", suffix());
    private_netns(|| {
        let r = root.path();
        net_demo(r)
            .args([
                "bridge",
                "--no-nat",
                "--name",
                &bridge,
                "--subnet",
                "10.66.0.0/24",
            ])
            .assert()
            .success();
        for name in ["c1", "c2"] {
            net_demo(r)
                .args(["veth", name, "--bridge", &bridge])
                .assert()
                .success();
        }
        let (a1, a2) = (address_of(r, "c1"), address_of(r, "c2"));
        assert_eq!(
            (a1, a2),
            (Ipv4Addr::new(10, 66, 0, 2), Ipv4Addr::new(10, 66, 0, 3))
        );

        // The kernel's view inside c1: eth0 up with its address, lo up, default route.
        let c1 = Netns::open(&r.join("netns/c1")).unwrap();
        let mut nl = c1.netlink().unwrap();
        let eth0 = nl
            .links()
            .unwrap()
            .into_iter()
            .find(|l| l.name == "eth0")
            .unwrap();
        assert!(eth0.up);
        assert!(nl.links().unwrap().iter().any(|l| l.name == "lo" && l.up));
        let addrs = nl.addresses().unwrap();
        assert!(
            addrs
                .iter()
                .any(|a| a.index == eth0.index && a.address == a1 && a.prefix == 24)
        );
        let default = nl
            .routes()
            .unwrap()
            .into_iter()
            .find(|r| r.prefix == 0)
            .unwrap();
        assert_eq!(default.gateway, Some(Ipv4Addr::new(10, 66, 0, 1)));
        // And on the host: the veth's host end is enslaved to the bridge.
        let mut host = Netlink::open().unwrap();
        let links = host.links().unwrap();
        let br = links.iter().find(|l| l.name == bridge).unwrap();
        let ports = links.iter().filter(|l| l.master == Some(br.index)).count();
        assert_eq!(ports, 2);

        let c2 = Netns::open(&r.join("netns/c2")).unwrap();
        probe::ping(Some(&c1), a2, Duration::from_secs(3)).expect("c1 pings c2");
        probe::ping(Some(&c2), a1, Duration::from_secs(3)).expect("c2 pings c1");
        // Through `exec`, with a real ping program inside the namespace.
        if common::prerequisite(Path::new("/bin/busybox").exists(), "busybox for exec ping") {
            net_demo(r)
                .args([
                    "exec",
                    "c1",
                    "--",
                    "/bin/busybox",
                    "ping",
                    "-c",
                    "1",
                    "-W",
                    "3",
                ])
                .arg(a2.to_string())
                .assert()
                .success();
        }
        // Without NAT ip_forward was never touched.
        assert_eq!(net::nat::read_sysctl("net/ipv4/ip_forward").unwrap(), "0");

        net_demo(r).args(["teardown", "c1"]).assert().success();
        assert!(!r.join("netns/c1").exists());
        assert!(probe::ping(Some(&c2), a1, Duration::from_millis(500)).is_err());
        drop((c1, c2));
        net_demo(r).arg("teardown").assert().success();
        assert_nothing_left(r);
    });
}

/// A namespace playing "another machine" on an uplink, 192.0.2.0/24 (TEST-NET-1), that has
/// no route to the container subnet: it can only talk to containers through NAT.
fn make_uplink(root: &Path) -> (Netns, Ipv4Addr, Ipv4Addr) {
    let (host_addr, remote_addr) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
    let remote = netns::pin_new(&root.join("uplink-ns")).unwrap();
    let mut host = Netlink::open().unwrap();
    host.create_veth("uplink0", "eth0", remote.fd(), None, None)
        .unwrap();
    let index = host.link_index("uplink0").unwrap().unwrap();
    host.add_address(index, host_addr, 24).unwrap();
    let mut inside = remote.netlink().unwrap();
    let eth0 = inside.link_index("eth0").unwrap().unwrap();
    inside.set_up(eth0, "eth0", None).unwrap();
    inside.add_address(eth0, remote_addr, 24).unwrap();
    (remote, host_addr, remote_addr)
}

fn remove_uplink(root: &Path, remote: Netns) {
    drop(remote);
    let mut host = Netlink::open().unwrap();
    host.delete_link("uplink0").unwrap();
    netns::unpin(&root.join("uplink-ns")).unwrap();
}

fn published_ports(backend: Backend) {
    if !require_root() || !require_backend(backend) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let bridge = format!("mdb{}", suffix());
    private_netns(|| {
        let r = root.path();
        with_backend(r, backend)
            .args(["bridge", "--name", &bridge, "--subnet", "10.67.0.0/24"])
            .assert()
            .success();
        assert_eq!(net::nat::read_sysctl("net/ipv4/ip_forward").unwrap(), "1");
        net_demo(r)
            .args(["veth", "web", "--bridge", &bridge])
            .assert()
            .success();
        let addr = address_of(r, "web");
        let output = net_demo(r)
            .args(["publish", "web", "18081:80", "15353:53/udp"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Four rules: PREROUTING and OUTPUT for each port, printed as added.
        assert_eq!(stdout(&output).lines().count(), 4, "{}", stdout(&output));

        let web = Netns::open(&r.join("netns/web")).unwrap();
        let _server = probe::HttpServer::start(Some(&web), 80, "it works\n".into()).unwrap();
        let _echo = probe::UdpEcho::start(Some(&web), 53).unwrap();

        // From the host itself, through 127.0.0.1 (OUTPUT DNAT + route_localnet + MASQUERADE).
        let (status, body) =
            probe::http_get(None, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 18081)).unwrap();
        assert_eq!(
            (status.as_str(), body.as_str()),
            ("HTTP/1.0 200 OK", "it works\n")
        );
        let echo = probe::udp_request(
            None,
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, 15353),
            b"ping?",
        )
        .unwrap();
        assert_eq!(echo, b"ping?");
        // The container's own address works from the host too, without NAT: plain routing
        // to the bridge's subnet.
        let (_, body) = probe::http_get(None, SocketAddrV4::new(addr, 80)).unwrap();
        assert_eq!(body, "it works\n");

        // From another "machine" (PREROUTING DNAT), and outbound from the container to it,
        // which only works masqueraded because that machine has no route back to 10.67.0.0/24.
        let (remote, host_addr, remote_addr) = make_uplink(r);
        let (_, body) =
            probe::http_get(Some(&remote), SocketAddrV4::new(host_addr, 18081)).unwrap();
        assert_eq!(body, "it works\n");
        let echo =
            probe::udp_request(Some(&remote), SocketAddrV4::new(host_addr, 15353), b"x").unwrap();
        assert_eq!(echo, b"x");
        probe::ping(Some(&web), remote_addr, Duration::from_secs(3))
            .expect("the container reaches the uplink through MASQUERADE");
        drop(web);
        remove_uplink(r, remote);

        // The rules minidock lists are exactly the ones it recorded.
        let listed = net::nat::list_rules(backend).unwrap();
        assert_eq!(listed.len(), 6 + 4, "{listed:#?}");

        net_demo(r).arg("teardown").assert().success();
        assert_nothing_left(r);
        // Teardown is idempotent.
        net_demo(r).arg("teardown").assert().success();
    });
}

#[test]
fn published_tcp_and_udp_ports_iptables_nft() {
    published_ports(Backend::IptablesNft);
}

#[test]
fn published_tcp_and_udp_ports_iptables_legacy() {
    published_ports(Backend::IptablesLegacy);
}

#[test]
fn published_tcp_and_udp_ports_nft() {
    published_ports(Backend::Nft);
}

/// The rules `add_rules` adds in one transaction per table, as `iptables -S` lists them.
fn batched_rules(backend: Backend) -> Vec<String> {
    let subnet: net::ipam::Subnet = "10.68.0.0/24".parse().unwrap();
    let bridge = format!("mdb{}", suffix());
    let mut specs = net::nat::bridge_rules(&bridge, subnet);
    let mapping: net::PortMapping = "18082:80".parse().unwrap();
    specs.extend(net::nat::publish_rules(
        "batched",
        mapping,
        Ipv4Addr::new(10, 68, 0, 2),
    ));
    let added = net::nat::add_rules(backend, &specs).unwrap();
    assert_eq!(added.len(), specs.len());
    let listed = net::nat::list_rules(backend).unwrap();
    // Gone already (as after a crash half-way through a teardown): the batch that deletes
    // it fails, and the others of its table are still deleted one by one.
    net::nat::delete_rule(&added[1]).unwrap();
    let reversed: Vec<_> = added.iter().rev().cloned().collect();
    let (kept, err) = net::nat::delete_rules(&reversed);
    assert!(err.is_none(), "{err:?}");
    assert!(kept.is_empty(), "{kept:#?}");
    assert_eq!(net::nat::list_rules(backend).unwrap(), Vec::<String>::new());
    // Deleting again is not an error either.
    assert!(net::nat::delete_rules(&reversed).1.is_none());
    listed
}

/// Rules added in one `iptables-restore` transaction per table are the rules added one by
/// one, in the same order (`-I` rules first in their chain, in reverse), and a batch delete
/// where one rule is already gone still deletes the rest.
fn rules_in_one_transaction(backend: Backend) {
    if !require_root() || !require_backend(backend) {
        return;
    }
    private_netns(|| {
        let batched = batched_rules(backend);
        let subnet: net::ipam::Subnet = "10.68.0.0/24".parse().unwrap();
        let bridge = format!("mdb{}", suffix());
        let mut specs = net::nat::bridge_rules(&bridge, subnet);
        let mapping: net::PortMapping = "18082:80".parse().unwrap();
        specs.extend(net::nat::publish_rules(
            "batched",
            mapping,
            Ipv4Addr::new(10, 68, 0, 2),
        ));
        let mut one_by_one = Vec::new();
        for spec in &specs {
            one_by_one.push(net::nat::add_rule(backend, spec).unwrap());
        }
        let listed = net::nat::list_rules(backend).unwrap();
        for rule in one_by_one.iter().rev() {
            net::nat::delete_rule(rule).unwrap();
        }
        let strip = |lines: Vec<String>, name: &str| -> Vec<String> {
            lines
                .into_iter()
                .map(|l| l.replace(name, "BRIDGE"))
                .collect()
        };
        let batched_bridge = batched
            .iter()
            .find_map(|l| l.split("minidock:bridge:").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .map(|name| name.trim_end_matches('"').to_owned())
            .expect("a bridge rule");
        assert_eq!(strip(batched, &batched_bridge), strip(listed, &bridge));
    });
}

#[test]
fn rules_in_one_transaction_iptables_nft() {
    rules_in_one_transaction(Backend::IptablesNft);
}

#[test]
fn rules_in_one_transaction_iptables_legacy() {
    rules_in_one_transaction(Backend::IptablesLegacy);
}

/// The DNAT rules `run -p` adds over netlink with iptables-nft
/// (`net::nftables::add_dnat_rules`) are the rules `iptables-nft -A` adds: `iptables -S`
/// prints them alike, and `iptables -D`, which matches a rule byte for byte, deletes each.
/// With and without a host address, tcp and udp.
#[test]
fn dnat_rules_added_over_netlink_are_the_rules_iptables_adds() {
    let backend = Backend::IptablesNft;
    if !require_root() || !require_backend(backend) {
        return;
    }
    private_netns(|| {
        let to = Ipv4Addr::new(10, 68, 0, 3);
        let mut specs = net::nat::publish_rules("nl-a", "18090:80".parse().unwrap(), to);
        let udp = net::PortMapping {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: 18053,
            container_port: 53,
            protocol: net::nat::Protocol::Udp,
        };
        specs.extend(net::nat::publish_rules("nl-b", udp, to));
        let applied: Vec<_> = specs
            .iter()
            .map(|s| net::nat::add_rule(backend, s).unwrap())
            .collect();
        let by_iptables = net::nat::list_rules(backend).unwrap();
        for rule in &applied {
            net::nat::delete_rule(rule).unwrap();
        }
        let dnat: Vec<net::nftables::DnatRule> = [
            ("PREROUTING", 6, None, 18090, 80),
            ("OUTPUT", 6, None, 18090, 80),
            ("PREROUTING", 17, Some(Ipv4Addr::LOCALHOST), 18053, 53),
            ("OUTPUT", 17, Some(Ipv4Addr::LOCALHOST), 18053, 53),
        ]
        .into_iter()
        .zip(&specs)
        .map(
            |((chain, protocol, host_ip, host_port, port), spec)| net::nftables::DnatRule {
                chain,
                protocol,
                host_ip,
                host_port,
                to: SocketAddrV4::new(to, port),
                comment: &spec.comment,
            },
        )
        .collect();
        net::nftables::add_dnat_rules(&dnat).unwrap();
        assert_eq!(net::nat::list_rules(backend).unwrap(), by_iptables);
        for rule in &applied {
            net::nat::delete_rule(rule).unwrap();
        }
        assert_eq!(net::nat::list_rules(backend).unwrap(), Vec::<String>::new());
    });
}

/// Deleting iptables-nft rules over netlink takes exactly the rules with our comments, in
/// one transaction; it declines (deleting nothing) when the kernel has a different number
/// of rules with a comment than asked for, so a same-comment rule of someone else's is
/// never taken.
#[test]
fn rules_deleted_over_netlink_are_exactly_the_commented_ones() {
    let backend = Backend::IptablesNft;
    if !require_root() || !require_backend(backend) {
        return;
    }
    private_netns(|| {
        let subnet: net::ipam::Subnet = "10.68.1.0/24".parse().unwrap();
        let specs = net::nat::bridge_rules("mdnl0", subnet);
        for spec in &specs {
            net::nat::add_rule(backend, spec).unwrap();
        }
        let nat: Vec<(String, String)> = specs
            .iter()
            .filter(|s| net::nat::render_iptables(s).table == "nat")
            .map(|s| ("POSTROUTING".to_owned(), s.comment.clone()))
            .collect();
        assert_eq!(nat.len(), 3);
        // Two of three: the kernel has three with that comment, so nothing is deleted.
        assert!(!net::nftables::delete_commented("nat", &nat[..2]).unwrap());
        assert_eq!(net::nat::list_rules(backend).unwrap().len(), specs.len());
        assert!(net::nftables::delete_commented("nat", &nat).unwrap());
        let left = net::nat::list_rules(backend).unwrap();
        assert_eq!(left.len(), specs.len() - 3, "{left:?}");
        assert!(left.iter().all(|l| l.starts_with("-t filter")), "{left:?}");
        let filter: Vec<(String, String)> = specs
            .iter()
            .map(net::nat::render_iptables)
            .filter(|r| r.table == "filter")
            .map(|r| (r.chain.to_owned(), specs[0].comment.clone()))
            .collect();
        assert!(net::nftables::delete_commented("filter", &filter).unwrap());
        assert_eq!(net::nat::list_rules(backend).unwrap(), Vec::<String>::new());
    });
}

// ---------------------------------------------------------------------------------------------
// IPAM across processes.

#[test]
fn fifty_parallel_allocations_from_fifty_processes_are_distinct() {
    if !require_root() {
        return;
    }
    // Files only: no network is touched, so no private namespace is needed.
    let root = tempfile::tempdir().unwrap();
    let me = std::process::id().to_string();
    let children: Vec<_> = (0..50)
        .map(|i| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("net-demo"))
                .arg("--root")
                .arg(root.path())
                .args(["-q", "__ipam-allocate", &format!("c{i}")])
                .args(["--network", "n", "--subnet", "10.77.0.0/24", "--owner", &me])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut addrs: Vec<Ipv4Addr> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            stdout(&out).trim().parse().unwrap()
        })
        .collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 50);
    let pool = net::ipam::pool(&net::StateDir::new(root.path()), "n")
        .unwrap()
        .unwrap();
    assert_eq!(pool.allocations.len(), 50);
}

// ---------------------------------------------------------------------------------------------
// Bad input: one-line errors, exit 125, nothing half-configured.

fn assert_one_line_error(output: &std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(125), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr}");
    assert!(stderr.starts_with("net-demo: "), "{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
}

#[test]
fn bad_subnets_are_refused() {
    if !require_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (format!("mda{}", suffix()), format!("mdc{}", suffix()));
    private_netns(|| {
        let r = root.path();
        let out = net_demo(r)
            .args([
                "bridge",
                "--no-nat",
                "--name",
                &a,
                "--subnet",
                "10.66.0.1/24",
            ])
            .output()
            .unwrap();
        assert_one_line_error(&out, "did you mean 10.66.0.0/24");
        let out = net_demo(r)
            .args([
                "bridge",
                "--no-nat",
                "--name",
                &a,
                "--subnet",
                "10.66.0.0/33",
            ])
            .output()
            .unwrap();
        assert_one_line_error(&out, "prefix must be 8 to 30");

        net_demo(r)
            .args([
                "bridge",
                "--no-nat",
                "--name",
                &a,
                "--subnet",
                "10.66.0.0/16",
            ])
            .assert()
            .success();
        let out = net_demo(r)
            .args([
                "bridge",
                "--no-nat",
                "--name",
                &b,
                "--subnet",
                "10.66.7.0/24",
            ])
            .output()
            .unwrap();
        assert_one_line_error(&out, &format!("overlaps network {a} (10.66.0.0/16)"));
        // Overlap with an address minidock did not add (a host link's).
        let mut nl = Netlink::open().unwrap();
        nl.create_bridge("other0").unwrap();
        let index = nl.link_index("other0").unwrap().unwrap();
        nl.add_address(index, Ipv4Addr::new(10, 70, 0, 5), 24)
            .unwrap();
        let out = net_demo(r)
            .args([
                "bridge",
                "--no-nat",
                "--name",
                &b,
                "--subnet",
                "10.70.0.0/16",
            ])
            .output()
            .unwrap();
        assert_one_line_error(&out, "overlaps 10.70.0.5/24 on other0");
        nl.delete_link("other0").unwrap();
        assert_eq!(nl.link_index(&b).unwrap(), None, "no half-made bridge");
        net_demo(r).arg("teardown").assert().success();
        assert_nothing_left(r);
    });
}

#[test]
fn bad_ports_and_busy_ports_are_refused_without_leaving_rules() {
    if !require_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let bridge = format!("mdq{}", suffix());
    private_netns(|| {
        let r = root.path();
        net_demo(r)
            .args(["bridge", "--name", &bridge, "--subnet", "10.68.0.0/24"])
            .assert()
            .success();
        net_demo(r)
            .args(["veth", "c1", "--bridge", &bridge])
            .assert()
            .success();
        net_demo(r)
            .args(["veth", "c2", "--bridge", &bridge])
            .assert()
            .success();
        let rules_before = net::nat::list_rules(Backend::choose(None).unwrap()).unwrap();

        let out = net_demo(r)
            .args(["publish", "c1", "70000:80"])
            .output()
            .unwrap();
        assert_one_line_error(&out, "port 70000 is out of range (1-65535)");
        let out = net_demo(r)
            .args(["publish", "c1", "8080:80/sctp"])
            .output()
            .unwrap();
        assert_one_line_error(&out, "unknown protocol");
        // A host program already listens on the port: DNAT would steal its traffic.
        let busy = TcpListener::bind(("0.0.0.0", 18090)).unwrap();
        let out = net_demo(r)
            .args(["publish", "c1", "18091:80", "18090:80"])
            .output()
            .unwrap();
        assert_one_line_error(&out, "host port 18090/tcp is already in use on this host");
        drop(busy);
        // Another container already has it.
        net_demo(r)
            .args(["publish", "c1", "18092:80"])
            .assert()
            .success();
        let out = net_demo(r)
            .args(["publish", "c2", "18092:80"])
            .output()
            .unwrap();
        assert_one_line_error(
            &out,
            "host port 18092/tcp is already published by container c1",
        );
        let out = net_demo(r)
            .args(["publish", "nobody", "18093:80"])
            .output()
            .unwrap();
        assert_one_line_error(&out, "container nobody has no network");

        // Only the one successful publish added rules (2: PREROUTING and OUTPUT).
        let rules_after = net::nat::list_rules(Backend::choose(None).unwrap()).unwrap();
        assert_eq!(
            rules_after.len(),
            rules_before.len() + 2,
            "{rules_after:#?}"
        );
        net_demo(r).arg("teardown").assert().success();
        assert_nothing_left(r);
    });
}

#[test]
fn an_exhausted_pool_is_refused_and_the_new_container_is_not_left_half_made() {
    if !require_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let bridge = format!("mde{}", suffix());
    private_netns(|| {
        let r = root.path();
        // A /30 has two host addresses: the gateway and one container.
        net_demo(r)
            .args([
                "bridge",
                "--no-nat",
                "--name",
                &bridge,
                "--subnet",
                "10.69.0.0/30",
            ])
            .assert()
            .success();
        net_demo(r)
            .args(["veth", "only", "--bridge", &bridge])
            .assert()
            .success();
        let out = net_demo(r)
            .args(["veth", "extra", "--bridge", &bridge])
            .output()
            .unwrap();
        assert_one_line_error(&out, "the address pool 10.69.0.0/30 of network");
        assert!(
            !r.join("netns/extra").exists(),
            "the namespace of the failed container"
        );
        let links = Netlink::open().unwrap().links().unwrap();
        assert_eq!(links.len(), 3, "lo, the bridge and one veth: {links:?}");
        net_demo(r).arg("teardown").assert().success();
        assert_nothing_left(r);
    });
}

#[test]
fn a_missing_nat_backend_is_a_one_line_error() {
    if !require_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let bridge = format!("mdn{}", suffix());
    private_netns(|| {
        let r = root.path();
        let out = net_demo(r)
            .env("PATH", empty.path())
            .args(["bridge", "--name", &bridge])
            .output()
            .unwrap();
        assert_one_line_error(&out, "no NAT backend found");
        let out = net_demo(r)
            .env("PATH", empty.path())
            .args([
                "--nat-backend",
                "iptables-legacy",
                "bridge",
                "--name",
                &bridge,
            ])
            .output()
            .unwrap();
        assert_one_line_error(&out, "NAT backend iptables-legacy is not available");
        let out = net_demo(r)
            .args(["--nat-backend", "pf", "bridge", "--name", &bridge])
            .output()
            .unwrap();
        assert_one_line_error(&out, "unknown NAT backend \"pf\"");
        assert_nothing_left(r);
    });
}

// ---------------------------------------------------------------------------------------------
// Errors and Ctrl-C still tear down.

#[test]
fn an_error_half_way_through_the_tour_tears_everything_down() {
    if !require_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    private_netns(|| {
        // The tour's host port is taken, so publishing fails after the bridge, both
        // containers and the HTTP server are up.
        let busy = TcpListener::bind(("0.0.0.0", 18085)).unwrap();
        let out = net_demo(root.path())
            .args(["tour", "--port", "18085"])
            .output()
            .unwrap();
        drop(busy);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{stderr}");
        assert!(stderr.contains("tearing down after an error"), "{stderr}");
        assert!(
            stderr.contains("host port 18085/tcp is already in use"),
            "{stderr}"
        );
        assert_nothing_left(root.path());
    });
}

#[test]
fn ctrl_c_during_the_tour_tears_everything_down() {
    if !require_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    private_netns(|| {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("net-demo"))
            .arg("--root")
            .arg(root.path())
            .args(["-q", "tour", "--pause", "--port", "18086"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            seen.push_str(&line);
            seen.push('\n');
            if line.starts_with("paused") {
                break;
            }
        }
        assert!(seen.contains("paused"), "the tour never paused:\n{seen}");
        // Everything is up at this point.
        assert!(
            Netlink::open()
                .unwrap()
                .link_index("mdtour0")
                .unwrap()
                .is_some()
        );
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        assert_nothing_left(root.path());
    });
}
