//! User-defined networks and the embedded DNS resolver. Every test runs inside a private
//! outer network namespace (the "host"), with pinned namespaces standing for containers and
//! for an outside DNS server; nothing touches the real host's network.

mod common;

use common::net::{pids_with_args, pin_with_lo, private_netns, run_in, veth_to};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use minidock::net::dns;
use minidock::net::netns;
use minidock::net::resolver::{Config, Member, ResolverDir};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const EXE: &str = env!("CARGO_BIN_EXE_minidock");

fn require_tools() -> bool {
    common::require_root()
        && common::prerequisite(common::have("nsenter", "--version"), "nsenter (util-linux)")
        && common::prerequisite(common::have("busybox", "--help"), "busybox on PATH")
}

/// A DNS server "outside", in its own namespace behind a veth at 192.0.2.53: it knows
/// `outside.example.` (198.51.100.7) and answers NXDOMAIN for anything else.
struct OutsideDns {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pin: PathBuf,
}

const OUTSIDE_DNS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
const OUTSIDE_NAME_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

impl OutsideDns {
    fn start(pin: &Path) -> Self {
        let ns = pin_with_lo(pin);
        veth_to(&ns, "dnsup0", Ipv4Addr::new(192, 0, 2, 1), OUTSIDE_DNS);
        let socket = ns
            .run(|| UdpSocket::bind((OUTSIDE_DNS, 53)))
            .unwrap()
            .unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !flag.load(Ordering::SeqCst) {
                if let Ok((n, peer)) = socket.recv_from(&mut buf) {
                    let reply = Self::reply(&buf[..n]);
                    socket.send_to(&reply, peer).unwrap();
                }
            }
        });
        OutsideDns {
            stop,
            thread: Some(thread),
            pin: pin.to_path_buf(),
        }
    }

    fn reply(query: &[u8]) -> Vec<u8> {
        let q = Message::from_vec(query).unwrap();
        let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        m.metadata.recursion_desired = q.metadata.recursion_desired;
        m.queries = q.queries.clone();
        let question = &q.queries[0];
        if question
            .name()
            .to_ascii()
            .eq_ignore_ascii_case("outside.example.")
        {
            if question.query_type() == RecordType::A {
                let a = RData::A(A(OUTSIDE_NAME_ADDR));
                m.answers
                    .push(Record::from_rdata(question.name().clone(), 60, a));
            }
        } else {
            m.metadata.response_code = ResponseCode::NXDomain;
        }
        m.to_vec().unwrap()
    }
}

impl Drop for OutsideDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = netns::unpin(&self.pin);
    }
}

fn member(root: &Path, id: &str, names: &[&str], last_octet: u8) -> Member {
    Member::new(
        id,
        names.iter().map(|n| n.to_string()).collect(),
        Ipv4Addr::new(10, 89, 0, last_octet),
        root.join("ns").join(id),
    )
}

/// `busybox nslookup NAME 127.0.0.11` inside the namespace of `from`: (success, stdout).
fn nslookup(from: &Member, name: &str) -> (bool, String) {
    let out = run_in(&from.netns, &["busybox", "nslookup", name, "127.0.0.11"]);
    let text = format!("{}{}", common::text(&out.stdout), common::text(&out.stderr));
    (out.status.success(), text)
}

fn assert_resolves(from: &Member, name: &str, addr: Ipv4Addr) {
    let (ok, text) = nslookup(from, name);
    assert!(ok, "nslookup {name}: {text}");
    assert!(
        text.contains(&format!("Address: {addr}")),
        "nslookup {name} should give {addr}: {text}"
    );
}

/// One A question over TCP to 127.0.0.11 from inside `from`'s namespace.
fn ask_over_tcp(from: &Member, name: &str) -> Message {
    let ns = minidock::net::Netns::open(&from.netns).unwrap();
    let mut stream = ns
        .run(|| TcpStream::connect((dns::RESOLVER_ADDR, 53)))
        .unwrap()
        .expect("connecting to 127.0.0.11:53/tcp");
    let mut q = Message::new(77, MessageType::Query, OpCode::Query);
    q.metadata.recursion_desired = true;
    q.queries
        .push(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    dns::write_tcp_message(&mut stream, &q.to_vec().unwrap()).unwrap();
    Message::from_vec(&dns::read_tcp_message(&mut stream).unwrap()).unwrap()
}

/// Whether 127.0.0.11:53/udp is free in the namespace pinned at `path` (no resolver there).
fn port_53_free(path: &Path) -> bool {
    let ns = minidock::net::Netns::open(path).unwrap();
    ns.run(|| UdpSocket::bind((dns::RESOLVER_ADDR, 53)).is_ok())
        .unwrap()
}

/// Stops the resolver and removes its directory, also when a test fails half-way.
struct RemoveOnDrop(ResolverDir);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = self.0.remove();
    }
}

/// Waits (bounded) until no process serves `dir`.
/// Waits (at most 5 s) until no resolver for `dir` is left and its `running.lock` is free;
/// the resolvers still found. A dying process's command line empties when its memory goes,
/// a moment before its descriptors (and so its flock) are closed: both are waited for.
fn wait_gone(dir: &Path) -> Vec<i32> {
    let needle = dir.to_str().unwrap();
    let lock_free = || !ResolverDir::new(dir.to_path_buf()).is_running().unwrap();
    for _ in 0..100 {
        let pids = pids_with_args(&["network-resolver", needle]);
        if pids.is_empty() && lock_free() {
            return pids;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    pids_with_args(&["network-resolver", needle])
}

#[test]
fn the_resolver_answers_names_and_aliases_forwards_the_rest_and_exits_with_its_last_member() {
    if !require_tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    private_netns(|| {
        let outside = OutsideDns::start(&root.join("ns/outside"));
        let web = member(root, "web", &["web", "frontend"], 2);
        let client = member(root, "client", &["client"], 3);
        for m in [&web, &client] {
            drop(pin_with_lo(&m.netns));
        }
        let guard = RemoveOnDrop(ResolverDir::new(root.join("dns/appnet")));
        let dir = &guard.0;
        let upstream = vec![SocketAddr::from((OUTSIDE_DNS, 53))];
        let config = Config {
            network: "appnet".into(),
            upstream,
        };
        dir.write_config(&config).unwrap();
        dir.add_member(&web, Path::new(EXE)).unwrap();
        assert!(dir.is_running().unwrap());
        dir.add_member(&client, Path::new(EXE)).unwrap();
        let needle = dir.path().to_str().unwrap().to_owned();
        assert_eq!(pids_with_args(&["network-resolver", &needle]).len(), 1);

        // Names, aliases, any case, NAME.NETWORK; over UDP (busybox) and TCP.
        let web_addr = web.addr;
        assert_resolves(&client, "web", web_addr);
        assert_resolves(&client, "FrontEnd", web_addr);
        assert_resolves(&client, "web.appnet", web_addr);
        assert_resolves(&web, "client", client.addr);
        let m = ask_over_tcp(&client, "frontend.");
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.answers.len(), 1, "{m:?}");
        assert_eq!(m.answers[0].data, RData::A(A(web_addr)));

        // Other names go to the upstream server, from the host's namespace.
        assert_resolves(&client, "outside.example", OUTSIDE_NAME_ADDR);
        let (ok, text) = nslookup(&client, "missing.example");
        assert!(!ok && text.contains("NXDOMAIN"), "{text}");

        // The sockets live in the members' namespaces, not the host's.
        let host_ns = Path::new("/proc/thread-self/ns/net");
        assert!(port_53_free(host_ns));
        assert!(!port_53_free(&web.netns));

        // A removed member is no longer answered and its socket is closed.
        dir.remove_member(&web.id).unwrap();
        let (ok, text) = nslookup(&client, "web");
        assert!(!ok, "web still resolves after its removal: {text}");
        assert!(port_53_free(&web.netns));

        // The last member's removal ends the process and leaves no socket or lock holder.
        dir.remove_member(&client.id).unwrap();
        assert!(!dir.is_running().unwrap());
        assert!(!dir.path().join("control.sock").exists());
        assert_eq!(wait_gone(dir.path()), Vec::<i32>::new());
        assert!(port_53_free(&client.netns));
        dir.remove().unwrap();
        assert!(!dir.path().exists());
        for m in [&web, &client] {
            netns::unpin(&m.netns).unwrap();
        }
        drop(outside);
    });
}

#[test]
fn a_killed_resolver_is_restarted_by_the_next_member_and_serves_every_live_one_again() {
    if !require_tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    private_netns(|| {
        let web = member(root, "web", &["web"], 2);
        let client = member(root, "client", &["client"], 3);
        let gone = member(root, "gone", &["gone"], 4);
        let db = member(root, "db", &["db"], 5);
        for m in [&web, &client, &gone, &db] {
            drop(pin_with_lo(&m.netns));
        }
        let guard = RemoveOnDrop(ResolverDir::new(root.join("dns/net2")));
        let dir = &guard.0;
        let config = Config {
            network: "net2".into(),
            upstream: Vec::new(),
        };
        dir.write_config(&config).unwrap();
        for m in [&web, &client, &gone] {
            dir.add_member(m, Path::new(EXE)).unwrap();
        }
        let needle = dir.path().to_str().unwrap().to_owned();
        let pids = pids_with_args(&["network-resolver", &needle]);
        assert_eq!(pids.len(), 1);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pids[0]),
            nix::sys::signal::SIGKILL,
        )
        .unwrap();
        assert_eq!(wait_gone(dir.path()), Vec::<i32>::new());
        assert!(!dir.is_running().unwrap());
        // One member died with the resolver: its namespace is gone.
        netns::unpin(&gone.netns).unwrap();

        dir.add_member(&db, Path::new(EXE)).unwrap();
        assert_eq!(pids_with_args(&["network-resolver", &needle]).len(), 1);
        assert_resolves(&client, "web", web.addr);
        assert_resolves(&web, "db", db.addr);
        // No upstream (an internal network): unknown names fail, as Docker's SERVFAIL.
        let (ok, text) = nslookup(&client, "gone");
        assert!(!ok, "a dead member still resolves: {text}");
        let m = ask_over_tcp(&client, "outside.example.");
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);

        dir.remove().unwrap();
        assert_eq!(wait_gone(dir.path()), Vec::<i32>::new());
        for m in [&web, &client, &db] {
            assert!(port_53_free(&m.netns));
            netns::unpin(&m.netns).unwrap();
        }
    });
}

fn minidock(root: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(EXE)
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn minidock_ok(root: &Path, args: &[&str]) -> String {
    common::ok_stdout(args, &minidock(root, args))
}

/// `network inspect NAME` as JSON, without what differs by nature (ID, creation time) and
/// without the fields of Engine API versions after 1.41, whose shapes minidock follows.
fn inspect_json(text: &str) -> serde_json::Value {
    let mut all: Vec<serde_json::Value> = serde_json::from_str(text).unwrap();
    assert_eq!(all.len(), 1, "{text}");
    let mut one = all.remove(0);
    let obj = one.as_object_mut().unwrap();
    for key in ["Id", "Created", "EnableIPv4"] {
        obj.remove(key);
    }
    one
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[test]
fn network_create_ls_inspect_rm_and_prune_print_what_docker_prints() {
    if !common::dockerd::require_docker() {
        return;
    }
    let docker = common::dockerd::Dockerd::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    private_netns(|| {
        let create = [
            "network",
            "create",
            "--subnet",
            "10.77.0.0/24",
            "--gateway",
            "10.77.0.1",
            "--label",
            "team=a",
            "appnet",
        ];
        let ids = [docker.ok(&create), minidock_ok(root, &create)];
        for id in &ids {
            let id = id.trim();
            assert!(
                id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                "{id}"
            );
        }
        let internal = [
            "network",
            "create",
            "--internal",
            "--subnet",
            "10.78.0.0/24",
            "--gateway",
            "10.78.0.254",
            "inner",
        ];
        docker.ok(&internal);
        minidock_ok(root, &internal);

        let header = |out: String| out.lines().next().unwrap().to_owned();
        assert_eq!(
            header(minidock_ok(root, &["network", "ls"])),
            header(docker.ok(&["network", "ls"]))
        );
        let ls = [
            "network",
            "ls",
            "--filter",
            "type=custom",
            "--format",
            "{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}} {{.Internal}} {{.IPv6}}",
        ];
        assert_eq!(minidock_ok(root, &ls), docker.ok(&ls));
        let quiet = ["network", "ls", "-q", "--filter", "name=appnet"];
        assert_eq!(minidock_ok(root, &quiet).trim(), &ids[1].trim()[..12]);

        for name in ["appnet", "inner"] {
            let args = ["network", "inspect", name];
            assert_eq!(
                inspect_json(&minidock_ok(root, &args)),
                inspect_json(&docker.ok(&args)),
                "network inspect {name}"
            );
        }
        let tmpl = [
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{.Labels}} {{.Internal}} {{.Options}}",
            "appnet",
        ];
        assert_eq!(minidock_ok(root, &tmpl), docker.ok(&tmpl));

        // Errors: a name in use, an unknown network.
        for args in [&create[..], &["network", "rm", "nosuchnet"][..]] {
            let (m, d) = (minidock(root, args), docker.docker(args));
            assert_eq!(m.status.code(), d.status.code(), "{args:?}");
            let (m_err, d_err) = (common::text(&m.stderr), common::text(&d.stderr));
            let d_msg = d_err
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("Error response from daemon: ");
            assert!(m_err.contains(d_msg), "{args:?}: {m_err} vs {d_err}");
        }

        let rm = ["network", "rm", "inner"];
        assert_eq!(minidock_ok(root, &rm), docker.ok(&rm));
        let extra = ["network", "create", "extra"];
        docker.ok(&extra);
        minidock_ok(root, &extra);
        let prune = ["network", "prune", "-f"];
        assert_eq!(
            sorted_lines(&minidock_ok(root, &prune)),
            sorted_lines(&docker.ok(&prune))
        );
        let custom = ["network", "ls", "-q", "--filter", "type=custom"];
        assert_eq!(minidock_ok(root, &custom), "");
        assert_eq!(docker.ok(&custom), "");
        // Nothing of the removed networks is left: records, resolver directories.
        let dns = root.join("network/dns");
        assert_eq!(std::fs::read_dir(&dns).map(|d| d.count()).unwrap_or(0), 0);
    });
}

fn wait_resolvers_gone(root: &Path) {
    let needle = root.to_str().unwrap();
    for _ in 0..100 {
        if pids_with_args(&["network-resolver", needle]).is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "resolver processes left: {:?}",
        pids_with_args(&["network-resolver", needle])
    );
}

#[test]
fn containers_on_a_user_network_resolve_each_other_by_name_and_alias() {
    if !common::require_busybox_overlay() || !require_tools() {
        return;
    }
    private_netns(|| {
        let root = common::minidock_root::Root::new(&[]);
        let outside = OutsideDns::start(&root.path().join("outside-ns"));
        let id = root.ok(&["network", "create", "--subnet", "10.66.0.0/24", "appnet"]);
        let id = id.trim();
        // The network forwards to the test's outside server instead of the host's resolvers.
        let dir = ResolverDir::new(root.path().join("network/dns").join(id));
        let mut config = dir.config().unwrap();
        assert_eq!(config.network, "appnet");
        config.upstream = vec![SocketAddr::from((OUTSIDE_DNS, 53))];
        dir.write_config(&config).unwrap();

        // An attached first member starts the resolver from its supervisor: the run still
        // ends (the resolver holds none of its output pipes) and the resolver with it.
        let alone = root.ok(&[
            "run",
            "--rm",
            "--network",
            "appnet",
            "busybox",
            "sh",
            "-c",
            "nslookup $(hostname) >/dev/null && echo found",
        ]);
        assert_eq!(alone, "found\n");
        wait_resolvers_gone(root.path());
        let web = [
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "appnet",
            "--network-alias",
            "frontend",
            "busybox",
            "sleep",
            "1000",
        ];
        root.ok(&web);
        // The resolver is detached from the `minidock shim-step` that started it: its parent
        // is not a `minidock shim` supervisor (one that kept a thread or a child for it could
        // deadlock in its own later forks). The light shim, a child subreaper that only reaps,
        // may adopt it.
        let resolvers = pids_with_args(&["network-resolver", root.path().to_str().unwrap()]);
        assert_eq!(resolvers.len(), 1);
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", resolvers[0])).unwrap();
        let ppid = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap();
        let parent = std::fs::read(format!("/proc/{ppid}/cmdline")).unwrap_or_default();
        let parent: Vec<&[u8]> = parent.split(|&b| b == 0).collect();
        assert!(
            !parent.contains(&b"shim".as_slice()) && !parent.contains(&b"shim-step".as_slice()),
            "the resolver is a child of a supervisor: {parent:?}"
        );
        let web_ip = root.ok(&["exec", "web", "ip", "-4", "-o", "addr", "show", "eth0"]);
        let web_ip = web_ip
            .split_whitespace()
            .nth(3)
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        assert!(web_ip.starts_with("10.66.0."), "{web_ip}");
        let script = "cat /etc/resolv.conf; echo =====; nslookup web; echo =====; \
                      nslookup FRONTEND; echo =====; ping -c1 -W5 frontend; echo =====; \
                      nslookup outside.example";
        let out = root.ok(&[
            "run",
            "--rm",
            "--name",
            "client",
            "--network",
            "appnet",
            "busybox",
            "sh",
            "-c",
            script,
        ]);
        let parts: Vec<&str> = out.split("=====\n").collect();
        assert_eq!(
            parts[0], "nameserver 127.0.0.11\noptions ndots:0\n",
            "{out}"
        );
        for part in &parts[1..3] {
            assert!(part.contains(&format!("Address: {web_ip}")), "{out}");
        }
        assert!(parts[3].contains("1 packets received"), "{out}");
        assert!(
            parts[4].contains(&format!("Address: {OUTSIDE_NAME_ADDR}")),
            "{out}"
        );
        // inspect lists the member; rm is refused while it is attached, as Docker refuses it.
        let tmpl = "{{range $id, $c := .Containers}}{{$c.Name}} {{$c.IPv4Address}} {{$c.MacAddress}}{{end}}";
        let members = root.ok(&["network", "inspect", "-f", tmpl, "appnet"]);
        let mac = root.ok(&["exec", "web", "cat", "/sys/class/net/eth0/address"]);
        assert_eq!(members, format!("web {web_ip}/24 {mac}"));
        let err = root.fails(&["network", "rm", "appnet"], 1);
        assert!(err.contains("has active endpoints"), "{err}");
        // The resolver's socket is inside the container's namespace, not the host's.
        assert!(port_53_free(Path::new("/proc/thread-self/ns/net")));

        root.ok(&["rm", "-f", "web"]);
        wait_resolvers_gone(root.path());
        root.ok(&["network", "rm", "appnet"]);
        assert!(!dir.path().exists());
        let links = minidock::net::netlink::Netlink::open()
            .unwrap()
            .links()
            .unwrap();
        let bridge = format!("br-{}", &id[..12]);
        assert!(links.iter().all(|l| l.name != bridge), "{bridge} left");
        drop(outside);
    });
}

#[test]
fn a_network_alias_needs_a_user_network() {
    if !common::require_busybox_overlay() {
        return;
    }
    private_netns(|| {
        let root = common::minidock_root::Root::new(&[]);
        let err = root.fails(&["run", "--network-alias", "x", "busybox", "true"], 125);
        assert!(
            err.contains(
                "network-scoped alias is supported only for containers in user defined networks"
            ),
            "{err}"
        );
    });
}

fn container_ip(root: &common::minidock_root::Root, name: &str) -> String {
    let out = root.ok(&["exec", name, "ip", "-4", "-o", "addr", "show", "eth0"]);
    out.split_whitespace()
        .nth(3)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

fn isolation_rules_present() -> usize {
    let backend = minidock::net::nat::Backend::choose(None).unwrap();
    minidock::net::nat::list_rules(backend)
        .unwrap()
        .iter()
        .filter(|r| r.contains("minidock:isolate:"))
        .count()
}

#[test]
fn two_user_networks_cannot_reach_each_other() {
    if !common::require_busybox_overlay() {
        return;
    }
    private_netns(|| {
        let root = common::minidock_root::Root::new(&[]);
        root.ok(&["network", "create", "--subnet", "10.67.0.0/24", "neta"]);
        root.ok(&["network", "create", "--subnet", "10.68.0.0/24", "netb"]);
        root.ok(&[
            "run",
            "-d",
            "--name",
            "a1",
            "--network",
            "neta",
            "busybox",
            "sleep",
            "1000",
        ]);
        root.ok(&[
            "run",
            "-d",
            "--name",
            "b1",
            "--network",
            "netb",
            "busybox",
            "sleep",
            "1000",
        ]);
        let a_ip = container_ip(&root, "a1");
        let b_ip = container_ip(&root, "b1");
        // Same network: reachable. The other network: dropped in FORWARD, both ways.
        root.ok(&["exec", "a1", "ping", "-c1", "-W5", "10.67.0.1"]);
        let same = root.ok(&[
            "run",
            "--rm",
            "--network",
            "neta",
            "busybox",
            "ping",
            "-c1",
            "-W5",
            &a_ip,
        ]);
        assert!(same.contains("1 packets received"), "{same}");
        for (from, to) in [("b1", a_ip.as_str()), ("a1", b_ip.as_str())] {
            let out = root.output(&["exec", from, "ping", "-c1", "-W2", to]);
            let text = common::text(&out.stdout);
            assert!(
                !out.status.success() && text.contains("0 packets received"),
                "{from} -> {to}: {text}"
            );
        }
        assert_eq!(isolation_rules_present(), 2);

        root.ok(&["rm", "-f", "a1", "b1"]);
        root.ok(&["network", "rm", "neta", "netb"]);
        assert_eq!(isolation_rules_present(), 0);
        assert!(!root.path().join("network/isolation.json").exists());
        let links = minidock::net::netlink::Netlink::open()
            .unwrap()
            .links()
            .unwrap();
        assert!(
            links.iter().all(|l| !l.name.starts_with("br-")),
            "bridges left"
        );
        wait_resolvers_gone(root.path());
    });
}

/// `ping -c1` from container `from` to `to` (a name or an address): whether a reply came.
fn pings(root: &common::minidock_root::Root, from: &str, to: &str) -> bool {
    let out = root.output(&["exec", from, "ping", "-c1", "-W2", to]);
    out.status.success() && common::text(&out.stdout).contains("1 packets received")
}

/// The IPv4 address of `interface` in container `name`, if it has one.
fn address_of(root: &common::minidock_root::Root, name: &str, interface: &str) -> Option<String> {
    let out = root.output(&["exec", name, "ip", "-4", "-o", "addr", "show", interface]);
    let text = common::text(&out.stdout);
    let word = text.split_whitespace().nth(3)?;
    Some(word.split('/').next()?.to_owned())
}

/// The veths left once the kernel had a moment to free the namespaces of removed containers.
fn veths() -> Vec<String> {
    common::net::links_left("veth")
}

#[test]
fn network_connect_puts_a_container_on_two_networks_and_disconnect_takes_one_away() {
    if !common::require_busybox_overlay() || !require_tools() {
        return;
    }
    private_netns(|| {
        let root = common::minidock_root::Root::new(&[]);
        root.ok(&["network", "create", "--subnet", "10.71.0.0/24", "neta"]);
        root.ok(&["network", "create", "--subnet", "10.72.0.0/24", "netb"]);
        for (name, net) in [("a1", "neta"), ("b1", "netb"), ("mm", "neta")] {
            root.ok(&[
                "run",
                "-d",
                "--name",
                name,
                "--network",
                net,
                "busybox",
                "sleep",
                "1000",
            ]);
        }
        // On neta only: b1 is neither resolved nor reached.
        assert!(pings(&root, "mm", "a1"));
        assert!(!pings(&root, "mm", "b1"));

        root.ok(&["network", "connect", "--alias", "mb", "netb", "mm"]);
        let eth1 = address_of(&root, "mm", "eth1").expect("m has eth1 after connect");
        assert!(eth1.starts_with("10.72.0."), "{eth1}");
        let eth0 = address_of(&root, "mm", "eth0").unwrap();
        // By name on both networks, from m; and m by name and by alias from netb.
        assert!(pings(&root, "mm", "a1"));
        assert!(pings(&root, "mm", "b1"));
        assert!(pings(&root, "b1", "mm"));
        assert!(pings(&root, "b1", "mb"));
        let found = root.ok(&["exec", "b1", "nslookup", "mm"]);
        assert!(found.contains(&format!("Address: {eth1}")), "{found}");
        // The default route stays on neta (the first name), as Docker's gateway endpoint.
        let route = root.ok(&["exec", "mm", "ip", "route", "show", "default"]);
        assert!(route.contains("dev eth0"), "{route}");
        let hosts = root.ok(&["exec", "mm", "cat", "/etc/hosts"]);
        let id = root.inspect("mm", "{{.Id}}");
        let short = &id.trim()[..12];
        assert!(
            hosts.ends_with(&format!("{eth0}\t{short}\n{eth1}\t{short}\n")),
            "{hosts}"
        );
        let tmpl = "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}";
        assert_eq!(
            root.inspect("mm", tmpl).trim(),
            format!("neta={eth0} netb={eth1}")
        );
        let ps = root.ok(&["ps", "--format", "{{.Names}} {{.Networks}}"]);
        assert!(ps.lines().any(|l| l == "mm neta,netb"), "{ps}");
        let members = root.ok(&[
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}} {{end}}",
            "netb",
        ]);
        let mut members: Vec<&str> = members.split_whitespace().collect();
        members.sort();
        assert_eq!(members, ["b1", "mm"]);
        let err = root.fails(&["network", "connect", "netb", "mm"], 1);
        assert!(
            err.contains("endpoint with name mm already exists in network netb"),
            "{err}"
        );

        root.ok(&["network", "disconnect", "netb", "mm"]);
        assert_eq!(address_of(&root, "mm", "eth1"), None);
        assert!(!pings(&root, "mm", "b1"));
        assert!(!pings(&root, "b1", "mm"));
        assert!(pings(&root, "mm", "a1"));
        let err = root.fails(&["network", "disconnect", "netb", "mm"], 1);
        assert!(err.contains("is not connected to network netb"), "{err}");

        // Disconnecting the first network moves the default route to the one left.
        root.ok(&["network", "connect", "netb", "mm"]);
        root.ok(&["network", "disconnect", "neta", "mm"]);
        let route = root.ok(&["exec", "mm", "ip", "route", "show", "default"]);
        assert!(route.contains("via 10.72.0.1 dev eth2"), "{route}");
        assert!(pings(&root, "mm", "b1"));
        assert!(!pings(&root, "mm", "a1"));

        // A stopped container keeps a connect for its next start.
        root.ok(&[
            "create",
            "--name",
            "ss",
            "--network",
            "neta",
            "busybox",
            "sleep",
            "1000",
        ]);
        root.ok(&["network", "connect", "netb", "ss"]);
        root.ok(&["start", "ss"]);
        assert!(
            address_of(&root, "ss", "eth0")
                .unwrap()
                .starts_with("10.71.0.")
        );
        assert!(
            address_of(&root, "ss", "eth1")
                .unwrap()
                .starts_with("10.72.0.")
        );
        assert!(pings(&root, "ss", "a1"));
        assert!(pings(&root, "ss", "b1"));

        root.ok(&["rm", "-f", "a1", "b1", "mm", "ss"]);
        wait_resolvers_gone(root.path());
        assert_eq!(veths(), Vec::<String>::new());
        let records = std::fs::read_dir(root.path().join("network/containers"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(records, 0, "attachment records left");
        root.ok(&["network", "rm", "neta", "netb"]);
        assert_eq!(isolation_rules_present(), 0);
    });
}

/// `text` with every 64-digit ID replaced by `ID`.
fn hide_ids(text: &str) -> String {
    text.split(' ')
        .map(|w| {
            let id = w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit());
            if id { "ID" } else { w }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn network_connect_and_disconnect_refuse_what_docker_refuses_in_its_words() {
    if !common::require_busybox_overlay() || !common::dockerd::require_docker() {
        return;
    }
    let docker = common::dockerd::Dockerd::start();
    docker.load_busybox();
    private_netns(|| {
        let root = common::minidock_root::Root::new(&[]);
        let create = ["network", "create", "--subnet", "10.73.0.0/24", "netc"];
        docker.ok(&create);
        root.ok(&create);
        let run = |name: &str, net: &str| {
            let args = [
                "run",
                "-d",
                "--name",
                name,
                "--network",
                net,
                "busybox",
                "sleep",
                "1000",
            ];
            docker.ok(&args);
            root.ok(&args);
        };
        run("c1", "netc");
        run("n1", "none");
        let cases: [&[&str]; 6] = [
            &["network", "connect", "netc", "c1"],
            &["network", "connect", "host", "c1"],
            &["network", "connect", "netc", "n1"],
            &["network", "connect", "nosuch", "c1"],
            &["network", "disconnect", "nosuch", "c1"],
            &["network", "disconnect", "host", "c1"],
        ];
        for args in cases {
            let (m, d) = (root.output(args), docker.docker(args));
            assert_eq!(m.status.code(), d.status.code(), "{args:?}");
            let d_err = common::text(&d.stderr);
            let d_msg = d_err
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("Error response from daemon: ");
            // Docker names the container by its ID; minidock's has another.
            let d_msg = hide_ids(d_msg);
            let m_err = hide_ids(&common::text(&m.stderr));
            assert!(
                !d_msg.is_empty() && m_err.contains(&d_msg),
                "{args:?}: {m_err} vs {d_err}"
            );
        }
        root.ok(&["rm", "-f", "c1", "n1"]);
        root.ok(&["network", "rm", "netc"]);
        wait_resolvers_gone(root.path());
    });
}
