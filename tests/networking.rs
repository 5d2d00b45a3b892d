//! `minidock run` on the default bridge: published ports reached from the host's 127.0.0.1,
//! from an "outside" network namespace and from another container, the per-container
//! `/etc` files, the port clash, `port`, `ps`'s PORTS, `inspect`'s network shape, and exact
//! teardown after many `run --rm -p`.
//!
//! Safety: every test runs inside a private outer network namespace (and mount namespace)
//! made by `net::netns::isolated`; the minidock processes it spawns inherit it, so the
//! bridge, the NAT rules and `ip_forward` are that namespace's, never the host's. The test
//! suite turns the default bridge off (`MINIDOCK_BRIDGE=none`, set by tests/common); these
//! tests remove the variable for the commands they run.

mod common;

use common::minidock_root::Root;
use common::require_busybox_overlay;
use minidock::net::netlink::Netlink;
use minidock::net::{self, Netns, netns, probe};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

/// Runs `f` in a private network and mount namespace with a root that has busybox and the
/// default bridge on.
fn in_private_network(f: impl FnOnce(&Root) + Send) {
    if !require_busybox_overlay() {
        return;
    }
    netns::isolated(|| {
        let root = Root::new(&[("MINIDOCK_BRIDGE", None)]);
        f(&root);
        root.remove_all();
        assert_no_container_left(root.path());
        Ok(())
    })
    .unwrap();
}

/// No veth, no container address on the bridge, no per-container rule, no IPAM entry, no
/// attachment record and no mount under the root.
fn assert_no_container_left(root: &Path) {
    let links = common::net::links_left("veth");
    assert!(links.is_empty(), "veths left: {links:?}");
    let state = net::StateDir::new(root.join("network"));
    assert!(net::attachments(&state).unwrap().is_empty());
    if let Some(pool) = net::ipam::pool(&state, "minidock0").unwrap() {
        assert!(pool.allocations.is_empty(), "{:?}", pool.allocations);
    }
    let backend = net::nat::Backend::choose(None).unwrap();
    let rules = net::nat::list_rules(backend).unwrap();
    assert!(
        rules.iter().all(|r| r.contains("minidock:bridge:")),
        "per-container rules left: {rules:?}"
    );
    let mounts = common::mounts_containing(&root.display().to_string());
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
}

/// GETs `path` from `addr` (from namespace `ns`, else here) until the server answers: the
/// container's httpd binds its port a moment after `run -d` returns.
fn get_when_up(ns: Option<&Netns>, addr: SocketAddrV4, path: &str) -> String {
    let mut last = String::new();
    for _ in 0..200 {
        match http_get(ns, addr, path) {
            Ok(body) => return body,
            Err(e) => last = format!("{e:#}"),
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("http://{addr}{path} never answered: {last}");
}

fn http_get(ns: Option<&Netns>, addr: SocketAddrV4, path: &str) -> anyhow::Result<String> {
    let request = move || -> anyhow::Result<String> {
        use std::io::{Read, Write};
        let mut s =
            std::net::TcpStream::connect_timeout(&addr.into(), std::time::Duration::from_secs(2))?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
        let mut reply = String::new();
        s.read_to_string(&mut reply)?;
        let (head, body) = reply
            .split_once("\r\n\r\n")
            .ok_or_else(|| anyhow::anyhow!("no HTTP reply: {reply:?}"))?;
        anyhow::ensure!(
            head.starts_with("HTTP/1.") && head.contains(" 200 "),
            "{head}"
        );
        Ok(body.to_owned())
    };
    match ns {
        Some(ns) => ns.run(request)?,
        None => request(),
    }
}

/// An "outside host": a namespace joined to this one by a veth pair, 10.99.0.2/24 there and
/// 10.99.0.1/24 here. It has no route to the containers' subnet: it only ever sees this
/// namespace's address, as a host on the LAN sees Docker's host.
fn outside_host(dir: &Path) -> Netns {
    let pin = dir.join("outside");
    let ns = netns::pin_new(&pin).unwrap();
    let mut nl = Netlink::open().unwrap();
    nl.create_veth("vout0", "eth0", ns.fd(), None, None)
        .unwrap();
    let index = nl.link_index("vout0").unwrap().unwrap();
    nl.add_address(index, Ipv4Addr::new(10, 99, 0, 1), 24)
        .unwrap();
    let mut inside = ns.netlink().unwrap();
    let eth0 = inside.link_index("eth0").unwrap().unwrap();
    inside.set_up(eth0, "eth0", None).unwrap();
    inside
        .add_address(eth0, Ipv4Addr::new(10, 99, 0, 2), 24)
        .unwrap();
    inside.set_up(1, "lo", None).unwrap();
    ns
}

#[test]
fn a_published_port_answers_from_loopback_outside_and_another_container() {
    in_private_network(|root| {
        let id = root
            .ok(&[
                "run", "-d", "--name", "web", "-p", "8080:80", "busybox", "httpd", "-f", "-p",
                "80", "-h", "/etc",
            ])
            .trim()
            .to_owned();
        let short = &id[..12];
        let ip: Ipv4Addr = root
            .inspect("web", "{{.NetworkSettings.IPAddress}}")
            .parse()
            .unwrap();
        assert!(
            "172.17.0.0/16".parse::<net::Subnet>().unwrap().contains(ip),
            "{ip}"
        );
        // The host, on 127.0.0.1 (DNAT in OUTPUT, route_localnet).
        let body = get_when_up(
            None,
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080),
            "/hostname",
        );
        assert_eq!(body, format!("{short}\n"));
        // An outside host, through PREROUTING and forwarding.
        let tmp = tempfile::tempdir().unwrap();
        let outside = outside_host(tmp.path());
        let addr = SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 1), 8080);
        assert_eq!(
            get_when_up(Some(&outside), addr, "/hostname"),
            format!("{short}\n")
        );
        // Outbound: a container reaches the outside host only through MASQUERADE (the outside
        // host has no route back to the bridge's subnet).
        let server = probe::HttpServer::start(Some(&outside), 80, "outside\n".into()).unwrap();
        let got = root.ok(&[
            "run",
            "--rm",
            "busybox",
            "wget",
            "-qO-",
            "http://10.99.0.2/",
        ]);
        assert_eq!(got, "outside\n");
        server.stop();
        drop(outside);
        netns::unpin(&tmp.path().join("outside")).unwrap();
        // Another container, by address, over the bridge.
        let url = format!("http://{ip}/hostname");
        let got = root.ok(&["run", "--rm", "busybox", "wget", "-qO-", &url]);
        assert_eq!(got, format!("{short}\n"));
        // The container itself, through its own published port on the host's address. With
        // br_netfilter's bridge calls on (as on Docker's hosts), the DNAT happens as the frame
        // crosses the bridge, which sends it back out of the port it came in on: only the
        // port's hairpin mode lets it (Docker sets it when its userland proxy is off).
        let bridge_nf = Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables");
        if bridge_nf.exists() {
            std::fs::write(bridge_nf, "1").unwrap();
        }
        let got = root.ok(&[
            "exec",
            "web",
            "wget",
            "-qO-",
            "http://172.17.0.1:8080/hostname",
        ]);
        assert_eq!(got, format!("{short}\n"));
        // Another container, through the published port on the host's address (hairpin). With
        // br_netfilter's bridge calls off in this namespace, the reply crosses the bridge
        // without netfilter, as on a host without br_netfilter: only the hairpin MASQUERADE
        // brings it back through conntrack.
        let bridge_nf = Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables");
        if bridge_nf.exists() {
            std::fs::write(bridge_nf, "0").unwrap();
        }
        let got = root.ok(&[
            "run",
            "--rm",
            "busybox",
            "wget",
            "-qO-",
            "http://172.17.0.1:8080/hostname",
        ]);
        assert_eq!(got, format!("{short}\n"));
        // The kernel's own view of the container's eth0 matches inspect.
        let mac = root.inspect("web", "{{.NetworkSettings.MacAddress}}");
        let seen = root.ok(&["exec", "web", "cat", "/sys/class/net/eth0/address"]);
        assert_eq!(seen.trim(), mac);
        let [a, b, c, d] = ip.octets();
        assert_eq!(mac, format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}"));
    });
}

#[test]
fn port_ps_and_inspect_show_the_published_ports_as_docker_does() {
    in_private_network(|root| {
        root.ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            "8080:80",
            "-p",
            "127.0.0.1:5353:53/udp",
            "-p",
            "9000-9001:90-91",
            "busybox",
            "sleep",
            "1000",
        ]);
        assert_eq!(
            root.ok(&["port", "web"]),
            "53/udp -> 127.0.0.1:5353\n80/tcp -> 0.0.0.0:8080\n90/tcp -> 0.0.0.0:9000\n\
             91/tcp -> 0.0.0.0:9001\n"
        );
        assert_eq!(root.ok(&["port", "web", "80"]), "0.0.0.0:8080\n");
        assert_eq!(root.ok(&["port", "web", "53/udp"]), "127.0.0.1:5353\n");
        let err = root.fails(&["port", "web", "81"], 1);
        assert!(
            err.contains("No public port '81' published for web"),
            "{err}"
        );
        assert_eq!(
            root.ok(&["ps", "--format", "{{.Ports}}"]).trim(),
            "127.0.0.1:5353->53/udp, 0.0.0.0:8080->80/tcp, 0.0.0.0:9000->90/tcp, \
             0.0.0.0:9001->91/tcp"
        );
        let v: serde_json::Value = serde_json::from_str(&root.ok(&["inspect", "web"])).unwrap();
        let c = &v[0];
        assert_eq!(
            c["HostConfig"]["PortBindings"]["80/tcp"],
            serde_json::json!([{"HostIp": "", "HostPort": "8080"}])
        );
        assert_eq!(c["HostConfig"]["NetworkMode"], "default");
        let ns = &c["NetworkSettings"];
        assert_eq!(
            ns["Ports"]["53/udp"],
            serde_json::json!([{"HostIp": "127.0.0.1", "HostPort": "5353"}])
        );
        assert_eq!(ns["Gateway"], "172.17.0.1");
        assert_eq!(ns["IPPrefixLen"], 16);
        let bridge = &ns["Networks"]["bridge"];
        assert_eq!(bridge["IPAddress"], ns["IPAddress"]);
        assert_eq!(bridge["NetworkID"].as_str().unwrap().len(), 64);
        // The rules in the kernel are the ones for these ports.
        let backend = net::nat::Backend::choose(None).unwrap();
        let rules = net::nat::list_rules(backend).unwrap().join("\n");
        for port in ["8080", "5353", "9000", "9001"] {
            assert!(
                rules.contains(&format!("dport {port}"))
                    || rules.contains(&format!("--dport {port}")),
                "{rules}"
            );
        }
        // An ephemeral port: the first free one of ip_local_port_range.
        root.ok(&[
            "run", "-d", "--name", "eph", "-p", "80", "busybox", "sleep", "1000",
        ]);
        let low: u16 = net::nat::read_sysctl("net/ipv4/ip_local_port_range")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(root.ok(&["port", "eph", "80"]), format!("0.0.0.0:{low}\n"));
    });
}

#[test]
fn a_taken_host_port_is_refused_as_docker_refuses_it() {
    in_private_network(|root| {
        root.ok(&[
            "run", "-d", "--name", "first", "-p", "8080:80", "busybox", "sleep", "1000",
        ]);
        let err = root.fails(
            &[
                "run", "--rm", "--name", "second", "-p", "8080:80", "busybox", "true",
            ],
            125,
        );
        assert!(
            err.contains("Bind for 0.0.0.0:8080 failed: port is already allocated"),
            "{err}"
        );
        // Once the first container is gone, the port is free again.
        root.ok(&["rm", "-f", "first"]);
        root.ok(&["run", "--rm", "-p", "8080:80", "busybox", "true"]);
    });
}

#[test]
fn etc_files_carry_the_address_the_name_and_the_resolvers() {
    in_private_network(|root| {
        let out = root.ok(&[
            "run",
            "--rm",
            "--hostname",
            "box",
            "--add-host",
            "db:10.1.2.3",
            "--dns",
            "10.0.0.9",
            "--dns-search",
            "example.com",
            "--dns-opt",
            "ndots:3",
            "--dns-option",
            "timeout:2",
            "busybox",
            "sh",
            "-c",
            "cat /etc/hostname; echo ---; cat /etc/hosts; echo ---; cat /etc/resolv.conf; \
             echo ---; ip -4 -o addr show eth0",
        ]);
        let parts: Vec<&str> = out.split("---\n").collect();
        assert_eq!(parts[0], "box\n");
        let ip = parts[3]
            .split_whitespace()
            .nth(3)
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        assert!(
            parts[1].ends_with(&format!("\n10.1.2.3\tdb\n{ip}\tbox\n")),
            "{}",
            parts[1]
        );
        assert!(
            parts[1].starts_with("127.0.0.1\tlocalhost\n"),
            "{}",
            parts[1]
        );
        assert_eq!(
            parts[2],
            "search example.com\nnameserver 10.0.0.9\noptions ndots:3 timeout:2\n"
        );
        // host-gateway is the default bridge's gateway, as dockerd's default.
        let hosts = root.ok(&[
            "run",
            "--rm",
            "--add-host",
            "host.docker.internal:host-gateway",
            "busybox",
            "cat",
            "/etc/hosts",
        ]);
        assert!(
            hosts.contains("\n172.17.0.1\thost.docker.internal\n"),
            "{hosts}"
        );
        // Without --dns: the host's resolvers minus loopback ones.
        let resolv = root.ok(&["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]);
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let expected = minidock::container::network::resolv_conf(&host, &[], &[], &[]);
        assert_eq!(resolv, expected);
        assert!(!resolv.contains("nameserver 127."), "{resolv}");
        assert!(resolv.contains("nameserver "), "{resolv}");
        // Read-only under --read-only.
        let err = root.fails(
            &[
                "run",
                "--rm",
                "--read-only",
                "busybox",
                "sh",
                "-c",
                "echo x >> /etc/hosts",
            ],
            1,
        );
        assert!(err.contains("Read-only file system"), "{err}");
    });
}

#[test]
fn many_run_rm_with_a_published_port_leave_nothing_behind() {
    in_private_network(|root| {
        // 200 by default; the emulated VM lane sets fewer, to keep its time down.
        let runs: usize = std::env::var("MINIDOCK_TEST_SEQUENTIAL_RUNS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(200);
        for _ in 0..runs {
            root.ok(&["run", "--rm", "-p", "8081:80", "busybox", "true"]);
        }
        assert_eq!(root.ok(&["ps", "-aq"]), "");
        assert_no_container_left(root.path());
        // The bridge stays, as docker0 does, with only its gateway address.
        let mut nl = Netlink::open().unwrap();
        let bridge = nl.link_index("minidock0").unwrap().unwrap();
        let addrs: Vec<Ipv4Addr> = nl
            .addresses()
            .unwrap()
            .into_iter()
            .filter(|a| a.index == bridge)
            .map(|a| a.address)
            .collect();
        assert_eq!(addrs, vec![Ipv4Addr::new(172, 17, 0, 1)]);
    });
}

#[test]
fn network_modes_none_host_and_container() {
    in_private_network(|root| {
        assert_eq!(
            root.ok(&[
                "run",
                "--rm",
                "--network",
                "none",
                "busybox",
                "ls",
                "/sys/class/net"
            ]),
            "lo\n"
        );
        root.ok(&["run", "-d", "--name", "aa", "busybox", "sleep", "1000"]);
        let ip = root.inspect("aa", "{{.NetworkSettings.IPAddress}}");
        let seen = root.ok(&[
            "run",
            "--rm",
            "--network",
            "container:aa",
            "busybox",
            "ip",
            "-4",
            "-o",
            "addr",
            "show",
            "eth0",
        ]);
        assert!(seen.contains(&format!(" {ip}/16 ")), "{seen}");
        // It shares the other container's name and files too, as Docker's.
        let short = &root.inspect("aa", "{{.Id}}")[..12];
        let names = root.ok(&[
            "run",
            "--rm",
            "--network",
            "container:aa",
            "busybox",
            "sh",
            "-c",
            "hostname; echo $HOSTNAME; tail -1 /etc/hosts",
        ]);
        assert_eq!(names, format!("{short}\n{short}\n{ip}\t{short}\n"));
        // Host mode drops published ports with Docker's warning.
        let out = root.output(&[
            "run",
            "--rm",
            "--network",
            "host",
            "-p",
            "80:80",
            "busybox",
            "true",
        ]);
        assert!(out.status.success());
        assert!(
            common::text(&out.stderr)
                .contains("WARNING: Published ports are discarded when using host network mode"),
            "{}",
            common::text(&out.stderr)
        );
        // A stopped container has no address, as Docker shows it.
        root.ok(&["stop", "-t", "0", "aa"]);
        assert_eq!(root.inspect("aa", "{{.NetworkSettings.IPAddress}}"), "");
        assert_eq!(root.inspect("aa", "{{json .NetworkSettings.Ports}}"), "{}");
        let err = root.fails(
            &["run", "--rm", "--network", "nosuch", "busybox", "true"],
            125,
        );
        assert!(err.contains("network nosuch not found"), "{err}");
        let err = root.fails(
            &["run", "--rm", "--ip", "172.17.0.50", "busybox", "true"],
            125,
        );
        assert!(
            err.contains("user specified IP address is supported on user defined networks only"),
            "{err}"
        );
    });
}

#[test]
fn recovery_after_a_killed_shim_reclaims_the_network() {
    in_private_network(|root| {
        let id = root
            .ok(&[
                "run", "-d", "--name", "web", "-p", "8080:80", "busybox", "sleep", "1000",
            ])
            .trim()
            .to_owned();
        // A second network, connected while it runs: its veth, address and resolver record go
        // too.
        let net_id = root.ok(&["network", "create", "--subnet", "10.74.0.0/24", "extra"]);
        root.ok(&["network", "connect", "extra", "web"]);
        let veth = net::host_veth_name(&id);
        let extra_veth = net::host_veth_name(&format!("{id}.eth1"));
        let mut nl = Netlink::open().unwrap();
        assert!(nl.link_index(&veth).unwrap().is_some());
        assert!(nl.link_index(&extra_veth).unwrap().is_some());
        let shim = common::minidock_root::shim_of(&id).expect("the container's shim");
        let shim = nix::unistd::Pid::from_raw(shim);
        nix::sys::signal::kill(shim, nix::sys::signal::Signal::SIGKILL).unwrap();
        for _ in 0..400 {
            if nix::sys::signal::kill(shim, None).is_err() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        // The next command recovers: the container is recorded as killed and its network goes.
        assert_eq!(root.inspect("web", "{{.State.ExitCode}}"), "137");
        assert!(common::net::link_gone(&veth), "{veth} is left");
        let state = net::StateDir::new(root.path().join("network"));
        assert!(net::attachment(&state, &id).unwrap().is_none());
        let pool = net::ipam::pool(&state, "minidock0").unwrap().unwrap();
        assert!(pool.allocations.is_empty(), "{:?}", pool.allocations);
        assert!(common::net::link_gone(&extra_veth), "{extra_veth} is left");
        assert!(net::container_attachments(&state, &id).unwrap().is_empty());
        let extra_bridge = format!("br-{}", &net_id.trim()[..12]);
        let pool = net::ipam::pool(&state, &extra_bridge).unwrap().unwrap();
        assert!(pool.allocations.is_empty(), "{:?}", pool.allocations);
        let members = root
            .path()
            .join("network/dns")
            .join(net_id.trim())
            .join("members");
        let left = std::fs::read_dir(&members).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "resolver records left in {}", members.display());
        // The host port is free again.
        root.ok(&["run", "--rm", "-p", "8080:80", "busybox", "true"]);
        root.ok(&["rm", "web"]);
        root.ok(&["network", "rm", "extra"]);
    });
}

#[test]
fn publish_all_gives_every_exposed_port_a_host_port() {
    in_private_network(|root| {
        root.import(
            "exposing",
            &["EXPOSE 80 443/udp", "CMD [\"sleep\", \"1000\"]"],
        );
        root.ok(&["run", "-d", "--name", "all", "-P", "exposing"]);
        let low: u16 = net::nat::read_sysctl("net/ipv4/ip_local_port_range")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let lines = root.ok(&["port", "all"]);
        assert_eq!(
            lines,
            format!("443/udp -> 0.0.0.0:{low}\n80/tcp -> 0.0.0.0:{low}\n"),
        );
        // Exposed but not published: `80/tcp` alone in PORTS, `null` in inspect.
        root.ok(&["run", "-d", "--name", "some", "exposing"]);
        assert_eq!(
            root.ok(&["ps", "--filter", "name=some", "--format", "{{.Ports}}"]),
            "80/tcp, 443/udp\n"
        );
        let v: serde_json::Value = serde_json::from_str(&root.ok(&["inspect", "some"])).unwrap();
        assert_eq!(
            v[0]["NetworkSettings"]["Ports"],
            serde_json::json!({"443/udp": null, "80/tcp": null})
        );
    });
}

/// IPv6 bindings (`:::8080`, `[::]:8080`) dropped: minidock publishes IPv4 only.
fn ipv4_only(text: &str, separator: &str) -> String {
    text.split(separator)
        .filter(|s| !s.contains("::"))
        .collect::<Vec<_>>()
        .join(separator)
}

#[test]
fn published_ports_look_as_dockers() {
    if !common::dockerd::require_docker() {
        return;
    }
    let docker = common::dockerd::Dockerd::start_with_bridge();
    docker.load_busybox();
    let run = [
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1:5353:53/udp",
        "-p",
        "9000-9001:90-91",
        "-p",
        "7070:7070",
        "busybox",
        "sleep",
        "1000",
    ];
    docker.ok(&run);
    let d_port = docker.ok(&["port", "web"]);
    let d_port80 = docker.ok(&["port", "web", "80"]);
    let d_ps = docker.ok(&["ps", "--format", "{{.Ports}}"]);
    let d_inspect: serde_json::Value =
        serde_json::from_str(&docker.ok(&["inspect", "web"])).unwrap();
    let d_err = docker.docker(&["port", "web", "81"]);
    let files = [
        "run",
        "--rm",
        "--hostname",
        "box",
        "--add-host",
        "db:10.1.2.3",
        "--add-host",
        "gw:host-gateway",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts /etc/hostname /etc/resolv.conf",
    ];
    let d_files = docker.ok(&files);
    let dns = [
        "run",
        "--rm",
        "--dns",
        "10.0.0.9",
        "--dns-search",
        "example.com",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ];
    let d_dns = docker.ok(&dns);
    let d_network: serde_json::Value =
        serde_json::from_str(&docker.ok(&["network", "inspect", "bridge"])).unwrap();
    in_private_network(|root| {
        root.ok(&run);
        let mut lines: Vec<&str> = d_port.lines().filter(|l| !l.contains("::")).collect();
        lines.sort();
        assert_eq!(root.ok(&["port", "web"]), lines.join("\n") + "\n");
        assert_eq!(root.ok(&["port", "web", "80"]), ipv4_only(&d_port80, "\n"));
        assert_eq!(
            root.ok(&["ps", "--format", "{{.Ports}}"]).trim(),
            ipv4_only(d_ps.trim(), ", ")
        );
        let err = root.fails(&["port", "web", "81"], d_err.status.code().unwrap());
        // docker CLI 28 names the port as typed; the 20.10 CLI adds `/tcp`.
        let d_err = String::from_utf8_lossy(&d_err.stderr).replace("'81/tcp'", "'81'");
        assert_eq!(
            err.trim().trim_start_matches("minidock: "),
            d_err.trim().trim_start_matches("Error: ")
        );
        // The default network's record has the shape and values of Docker's, docker0 aside.
        let state = net::StateDir::new(root.path().join("network"));
        let ours = net::network::get(&state, "bridge").unwrap();
        let mut m = serde_json::to_value(&ours).unwrap();
        let mut d = d_network[0].clone();
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        assert_eq!(keys(&m), keys(&d));
        d["Options"]["com.docker.network.bridge.name"] = "minidock0".into();
        // dockerd lists the default bridge's gateway only once docker0 existed before it
        // started (a restart); minidock always lists it.
        if d["IPAM"]["Config"][0].get("Gateway").is_none() {
            m["IPAM"]["Config"][0]
                .as_object_mut()
                .unwrap()
                .remove("Gateway");
        }
        for key in ["Id", "Created", "Containers"] {
            m[key] = serde_json::Value::Null;
            d[key] = serde_json::Value::Null;
        }
        assert_eq!(m, d);
        // The second container gets the next address in both: the files match byte for byte.
        assert_eq!(root.ok(&files), d_files);
        assert_eq!(root.ok(&dns), d_dns);
        let m: serde_json::Value = serde_json::from_str(&root.ok(&["inspect", "web"])).unwrap();
        let (d, m) = (&d_inspect[0], &m[0]);
        assert_eq!(
            m["HostConfig"]["PortBindings"],
            d["HostConfig"]["PortBindings"]
        );
        assert_eq!(
            m["HostConfig"]["NetworkMode"],
            d["HostConfig"]["NetworkMode"]
        );
        let mut d_ports = d["NetworkSettings"]["Ports"].clone();
        for list in d_ports.as_object_mut().unwrap().values_mut() {
            if let Some(list) = list.as_array_mut() {
                list.retain(|b| !b["HostIp"].as_str().unwrap().contains(':'));
            }
        }
        assert_eq!(m["NetworkSettings"]["Ports"], d_ports);
        for key in ["IPAddress", "Gateway", "IPPrefixLen", "MacAddress"] {
            assert_eq!(
                m["NetworkSettings"][key], d["NetworkSettings"][key],
                "{key}"
            );
            assert_eq!(
                m["NetworkSettings"]["Networks"]["bridge"][key],
                d["NetworkSettings"]["Networks"]["bridge"][key],
                "Networks.bridge.{key}"
            );
        }
    });
}

#[test]
fn a_user_network_gets_its_own_bridge_and_the_address_asked_for() {
    in_private_network(|root| {
        let state = net::StateDir::new(root.path().join("network"));
        let req = net::network::CreateRequest {
            name: "mynet".into(),
            subnet: Some("10.201.0.0/24".parse().unwrap()),
            ..Default::default()
        };
        let created = net::network::create(&state, &req).unwrap();
        let out = root.ok(&[
            "run",
            "--rm",
            "--network",
            "mynet",
            "--ip",
            "10.201.0.50",
            "busybox",
            "ip",
            "-4",
            "-o",
            "addr",
            "show",
            "eth0",
        ]);
        assert!(out.contains(" 10.201.0.50/24 "), "{out}");
        let mut nl = Netlink::open().unwrap();
        assert!(nl.link_index(&created.bridge_name()).unwrap().is_some());
        // Taken addresses and addresses outside the subnet are refused, with Docker's words.
        root.ok(&[
            "run",
            "-d",
            "--name",
            "holder",
            "--network",
            "mynet",
            "--ip",
            "10.201.0.60",
            "busybox",
            "sleep",
            "1000",
        ]);
        let err = root.fails(
            &[
                "run",
                "--rm",
                "--network",
                "mynet",
                "--ip",
                "10.201.0.60",
                "busybox",
                "true",
            ],
            125,
        );
        assert!(err.contains("Address already in use"), "{err}");
        let err = root.fails(
            &[
                "run",
                "--rm",
                "--network",
                "mynet",
                "--ip",
                "10.9.9.9",
                "busybox",
                "true",
            ],
            125,
        );
        assert!(
            err.contains("no configured subnet contains IP 10.9.9.9"),
            "{err}"
        );
    });
}

#[test]
fn parallel_runs_get_distinct_addresses_and_ephemeral_ports() {
    in_private_network(|root| {
        let ids: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..10)
                .map(|_| {
                    scope.spawn(|| {
                        root.ok(&["run", "-d", "-p", "80", "busybox", "sleep", "1000"])
                            .trim()
                            .to_owned()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut ports = Vec::new();
        let mut addresses = Vec::new();
        for id in &ids {
            ports.push(root.ok(&["port", id, "80"]));
            addresses.push(root.inspect(id, "{{.NetworkSettings.IPAddress}}"));
        }
        for list in [&mut ports, &mut addresses] {
            list.sort();
            list.dedup();
            assert_eq!(list.len(), 10, "{list:?}");
        }
    });
}

#[test]
fn an_ipv6_host_address_in_publish_is_refused_as_not_supported() {
    in_private_network(|root| {
        for spec in ["[::1]:8080:80", "[::]:8080:80"] {
            let err = root.fails(&["run", "--rm", "-p", spec, "busybox", "true"], 125);
            assert!(
                err.contains("IPv6 host address ::") && err.contains("IPv4 only"),
                "{spec}: {err}"
            );
        }
        let out = root.ok(&[
            "run",
            "--rm",
            "-p",
            "[127.0.0.1]:8080:80",
            "busybox",
            "true",
        ]);
        assert_eq!(out, "");
    });
}

/// `run --rm` on the bridge leaves the veth pair to the kernel: unpinning the container's
/// namespace, which nothing else holds, frees it, and the kernel deletes the pairs in it in the
/// background. So the teardown sends no `RTM_DELLINK` (each waits for an RCU grace period),
/// and still no veth, address or record is left.
#[test]
fn run_rm_on_the_bridge_leaves_the_veth_to_the_kernel() {
    in_private_network(|root| {
        let out = root.output(&["--explain", "run", "--rm", "busybox", "true"]);
        assert!(out.status.success(), "{out:?}");
        let trace = common::text(&out.stderr);
        assert!(trace.contains("create veth pair, peer in netns"), "{trace}");
        assert!(trace.contains("unpin the network namespace"), "{trace}");
        assert!(!trace.contains("RTM_DELLINK"), "{trace}");
        let links = common::net::links_left("veth");
        assert!(links.is_empty(), "veths left: {links:?}");
    });
}

/// A container whose network namespace lives on after it ends (a process entered it) has its
/// veth pair deleted by its teardown, at once: the kernel would keep the pair for as long as
/// the namespace lives, on the bridge, with an address the pool gives out again.
#[test]
fn a_veth_whose_namespace_lives_on_is_deleted_at_once() {
    in_private_network(|root| {
        let id = root
            .ok(&["run", "-d", "--name", "held", "busybox", "sleep", "1000"])
            .trim()
            .to_owned();
        let pin = root.path().join("containers").join(&id).join("netns");
        let pinned = Netns::open(&pin).unwrap().id().unwrap();
        let mut holder = std::process::Command::new("nsenter")
            .arg(format!("--net={}", pin.display()))
            .args(["sleep", "1000"])
            .spawn()
            .unwrap();
        let inside = |pid: u32| {
            let ns = Netns::of_pid(pid as i32).and_then(|ns| ns.id());
            ns.is_ok_and(|id| id == pinned)
        };
        let mut entered = false;
        for _ in 0..400 {
            entered = inside(holder.id());
            if entered {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(entered, "nsenter never entered the container's namespace");
        root.ok(&["rm", "-f", "held"]);
        let veth = net::host_veth_name(&id);
        let mut nl = Netlink::open().unwrap();
        let left = nl.link_index(&veth).unwrap();
        holder.kill().unwrap();
        holder.wait().unwrap();
        assert!(
            left.is_none(),
            "{veth} is left while its namespace lives on"
        );
    });
}

/// With `iptables-nft`, `run --rm -p` adds its two DNAT rules over netlink in one nf_tables
/// batch, and its teardown finds them by their comment and deletes them by handle in one
/// more: no `iptables-nft-restore` at all, once the first published port has made the nat
/// chains (that one run adds through `iptables-nft-restore`, which makes them). No rule is
/// left. The restore program is counted through a logging wrapper first in `PATH`.
#[test]
fn a_published_port_is_unpublished_over_netlink_without_iptables() {
    let real = net::nat::which("iptables-nft-restore");
    if !common::prerequisite(real.is_some(), "iptables-nft-restore is not installed") {
        return;
    }
    let shim = tempfile::tempdir().unwrap();
    let log = shim.path().join("calls");
    let wrapper = shim.path().join("iptables-nft-restore");
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> {}\nexec {} \"$@\"\n",
        log.display(),
        real.unwrap().display()
    );
    std::fs::write(&wrapper, script).unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        shim.path().display(),
        std::env::var("PATH").unwrap()
    );
    if !require_busybox_overlay() {
        return;
    }
    netns::isolated(|| {
        let env = [
            ("MINIDOCK_BRIDGE", None),
            ("MINIDOCK_NAT_BACKEND", Some("iptables-nft")),
            ("PATH", Some(path.as_str())),
        ];
        let root = Root::new(&env);
        // The first run makes the bridge and its rules (one restore per table).
        root.ok(&["run", "--rm", "busybox", "true"]);
        let _ = std::fs::remove_file(&log);
        let calls = || std::fs::read_to_string(&log).unwrap_or_default();
        root.ok(&["run", "--rm", "-p", "8083:80", "busybox", "true"]);
        assert_eq!(calls().lines().count(), 1, "restore calls: {:?}", calls());
        let _ = std::fs::remove_file(&log);
        root.ok(&["run", "--rm", "-p", "8083:80", "busybox", "true"]);
        assert_eq!(calls(), "", "restore calls once the chains exist");
        root.remove_all();
        assert_no_container_left(root.path());
        Ok(())
    })
    .unwrap();
}
