//! A container's network, as Docker's engine makes it for `run`: the mode (`--network
//! none|host|bridge|container:NAME|NETWORK`, `bridge` by default), published ports (`-p`,
//! `-P`), the files `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, and the wiring done
//! before the process starts and undone after it exits.
//!
//! The wiring is `src/net`'s, the same functions net-demo calls: [`connect`] pins the
//! container's network namespace, makes the network's bridge on first use
//! ([`net::setup_bridge`], with outbound NAT and `ip_forward`), connects a veth pair with an
//! address from the flock'd IPAM ([`net::setup_container_network_at`]) and publishes the
//! ports ([`net::publish`]: DNAT in PREROUTING and OUTPUT, with `route_localnet`, as Docker
//! without its userland proxy). [`release`] undoes exactly that, whatever ended the container.
//! [`connect_network`] and [`disconnect_network`] (`network connect|disconnect`) add and take
//! away one network of a container, at once while it runs, else for its next start.

use super::Paths;
use super::state::{ContainerState, PortBinding, RunConfig};
use crate::cli::{Exit, code};
use crate::net::{self, PortMapping, Protocol, StateDir, network};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

pub use crate::net::network::DEFAULT_NETWORK as DEFAULT_NETWORK_NAME;
use crate::net::usermode::Kind as UserKind;

/// `--network`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Its own network namespace with only `lo`.
    None,
    /// The host's network namespace.
    Host,
    /// A bridge network, by name or ID (`bridge` is the default one).
    Bridge(String),
    /// Another container's network namespace (`container:NAME`).
    Container(String),
    /// User-mode networking (`slirp4netns` or `pasta`, as podman's modes of those names).
    UserMode(net::usermode::Kind),
}

/// The variable that turns the default bridge off, as dockerd's `--bridge none`: containers
/// then get `none` by default and the `bridge` network does not exist. The test suite sets it
/// (in `tests/common`, before each test binary starts) so that only the networking tests,
/// inside network namespaces of their own, ever make a bridge.
pub const BRIDGE_ENV: &str = "MINIDOCK_BRIDGE";

/// True when [`BRIDGE_ENV`] is `none`.
pub fn default_bridge_disabled() -> bool {
    std::env::var(BRIDGE_ENV).is_ok_and(|v| v == "none")
}

impl Mode {
    /// Parses `--network` (`None`: Docker's `default`, the `bridge` network, or `none` when
    /// the default bridge is off).
    pub fn parse(text: Option<&str>) -> Result<Mode> {
        if text.is_none() && default_bridge_disabled() {
            return Ok(Mode::None);
        }
        Ok(match text.unwrap_or("default") {
            "none" => Mode::None,
            "host" => Mode::Host,
            "default" | "bridge" => Mode::Bridge(network::DEFAULT_NETWORK.into()),
            "" => return Err(bad_flag("invalid network name: an empty string".into())),
            other => match other.strip_prefix("container:") {
                Some("") => return Err(bad_flag("--network container: needs a container".into())),
                Some(name) => Mode::Container(name.to_owned()),
                None => match net::usermode::Kind::parse(other) {
                    Some(kind) => Mode::UserMode(kind),
                    None => Mode::Bridge(other.to_owned()),
                },
            },
        })
    }

    /// The mode a stored `HostConfig.NetworkMode` stands for.
    pub fn of(config: &RunConfig) -> Mode {
        Mode::parse(Some(config.network_mode.as_str()))
            .unwrap_or(Mode::Bridge(network::DEFAULT_NETWORK.into()))
    }

    /// The network's name in `NetworkSettings.Networks` and `ps`'s NETWORKS.
    pub fn network_name(&self) -> String {
        match self {
            Mode::None => "none".into(),
            Mode::Host => "host".into(),
            Mode::Bridge(name) => name.clone(),
            Mode::Container(_) => String::new(),
            Mode::UserMode(kind) => kind.name().into(),
        }
    }

    /// True when the container has a network namespace of its own (none or a bridge).
    pub fn own_netns(&self) -> bool {
        matches!(self, Mode::None | Mode::Bridge(_) | Mode::UserMode(_))
    }
}

fn bad_flag(message: String) -> anyhow::Error {
    Exit::new(code::FAILED, message).into()
}

/// The network state dir of a minidock state root: `<root>/network`.
pub fn state_dir(paths: &Paths) -> StateDir {
    StateDir::new(paths.root.join("network"))
}

// ANCHOR: parse_publish
/// Parses one `-p` as docker/go-connections' `ParsePortSpec`: `[IP:][HOST:]CONTAINER[/PROTO]`
/// with `HOST` and `CONTAINER` single ports or equal-sized ranges (`8000-8001:80-81`), `IP::80`
/// for an ephemeral port on one address. Returns `("80/tcp", binding)` pairs for
/// `HostConfig.PortBindings`; an empty `HostPort` means an ephemeral port.
pub fn parse_publish(text: &str) -> Result<Vec<(String, PortBinding)>> {
    let (rest, proto) = match text.rsplit_once('/') {
        Some((rest, p)) if p == "tcp" || p == "udp" => (rest, p),
        Some((_, p)) => return Err(bad_flag(format!("invalid proto: {p}"))),
        None => (text, "tcp"),
    };
    // go-connections' `splitParts`: the last two parts are the ports, the rest the address.
    let parts: Vec<&str> = rest.split(':').collect();
    let n = parts.len();
    let (ip, host, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let ip = match ip.strip_prefix('[') {
        Some(inner) => match inner.strip_suffix(']') {
            Some(inner) if !inner.contains(['[', ']']) => inner.to_owned(),
            _ => return Err(bad_flag(format!("Invalid ip address {ip}: missing ']'"))),
        },
        None => ip,
    };
    if !ip.is_empty() && ip.parse::<Ipv4Addr>().is_err() {
        if ip.parse::<std::net::Ipv6Addr>().is_ok() {
            return Err(bad_flag(format!(
                "IPv6 host address {ip} in -p {text:?} is not supported: minidock's networks \
                 are IPv4 only (publish on an IPv4 address, or on all of them without one)"
            )));
        }
        return Err(bad_flag(format!("Invalid ip address: {ip}")));
    }
    let ip = ip.as_str();
    let (c_low, c_high) = port_range(container)
        .map_err(|_| bad_flag(format!("Invalid containerPort: {container}")))?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(port_range(host).map_err(|_| bad_flag(format!("Invalid hostPort: {host}")))?)
    };
    if let Some((h_low, h_high)) = host_range
        && h_high - h_low != c_high - c_low
    {
        return Err(bad_flag(format!(
            "Invalid ranges specified for container and host Ports: {container} and {host}"
        )));
    }
    Ok((0..=c_high - c_low)
        .map(|i| {
            let host_port = host_range.map_or(String::new(), |(low, _)| (low + i).to_string());
            (
                format!("{}/{proto}", c_low + i),
                PortBinding {
                    host_ip: ip.to_owned(),
                    host_port,
                },
            )
        })
        .collect())
}
// ANCHOR_END: parse_publish

/// `80` or `8000-8010`: ports 1 to 65535, the second not below the first.
fn port_range(text: &str) -> std::result::Result<(u16, u16), ()> {
    let port = |s: &str| s.parse::<u16>().ok().filter(|p| *p > 0).ok_or(());
    match text.split_once('-') {
        None => port(text).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if b < a { Err(()) } else { Ok((a, b)) }
        }
    }
}

/// `80/tcp` into its port and protocol.
fn split_port(key: &str) -> Option<(u16, Protocol)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    Some((port.parse().ok()?, proto))
}

/// What `-p` and `-P` ask to publish: every `PortBindings` entry, and with `-P` every exposed
/// port without one, on an ephemeral host port.
pub fn requested_mappings(config: &RunConfig) -> Result<Vec<PortMapping>> {
    let mut out = Vec::new();
    let mut add = |key: &str, b: &PortBinding| -> Result<()> {
        let (container_port, protocol) =
            split_port(key).with_context(|| format!("invalid port {key:?}"))?;
        let host_ip = match b.host_ip.as_str() {
            "" | "0.0.0.0" => None,
            ip => Some(
                ip.parse()
                    .with_context(|| format!("invalid host IP {ip:?}"))?,
            ),
        };
        let host_port = match b.host_port.as_str() {
            "" => 0,
            p => p
                .parse()
                .with_context(|| format!("invalid host port {p:?}"))?,
        };
        out.push(PortMapping {
            host_ip,
            host_port,
            container_port,
            protocol,
        });
        Ok(())
    };
    for (key, bindings) in &config.port_bindings {
        for b in bindings {
            add(key, b)?;
        }
    }
    if config.publish_all_ports {
        for key in &config.exposed_ports {
            if !config.port_bindings.contains_key(key) {
                add(key, &PortBinding::default())?;
            }
        }
    }
    Ok(out)
}

// ANCHOR: connect
/// Wires the container's network before its process starts. `none`: a pinned namespace with
/// `lo` up. Bridge networks: the same namespace and, for each network the container is on
/// (`--network`, then those `network connect` added), the network's bridge (made on first
/// use), a veth pair (`eth0`, `eth1`, ...) with an address (`--ip`) and a MAC derived from it
/// as Docker's (`02:42` and the four bytes of the address); then the published ports on
/// `eth0`, the default route, the DNS resolvers and `/etc/hosts` ([`refresh`]). On error
/// everything done here is undone.
pub fn connect(paths: &Paths, state: &ContainerState) -> Result<()> {
    let mode = Mode::of(&state.config);
    if !mode.own_netns() {
        return Ok(());
    }
    super::pin_network(paths, &state.id)?;
    let list = connections(paths, state);
    let wired = match mode {
        Mode::UserMode(kind) => connect_user_mode(paths, state, kind),
        _ if list.is_empty() => return Ok(()),
        _ if crate::rootless::active() => refuse_bridges(&list).and_then(|()| {
            connect_user_mode(paths, state, net::usermode::Kind::rootless_default())
        }),
        _ => connect_all(paths, state, &list),
    };
    if wired.is_err() {
        let _ = release(paths, &state.id);
    }
    wired
}

fn connect_all(paths: &Paths, state: &ContainerState, list: &[Connection]) -> Result<()> {
    for (i, conn) in list.iter().enumerate() {
        attach(paths, state, conn, &format!("eth{i}"))?;
    }
    save_next_interface(paths, &state.id, list.len())?;
    let mappings = requested_mappings(&state.config)?;
    if !mappings.is_empty() {
        net::publish(&state_dir(paths), &state.id, &mappings).map_err(|e| port_error(e, state))?;
    }
    refresh(paths, state, false)
}
// ANCHOR_END: connect

/// The API socket of a container's slirp4netns: under the runtime dir (the rootless one, or
/// the runtime's state root), not in the container's directory, because a unix socket's path
/// is limited to 107 bytes.
fn slirp_socket(paths: &Paths, id: &str) -> std::path::PathBuf {
    let name = format!("slirp-{}.sock", super::short_id(id));
    if crate::rootless::active() {
        crate::rootless::runtime_dir().join(name)
    } else {
        paths.runtime_root.join(name)
    }
}

/// Rootless, every network but the default one is a bridge, which needs root on the host's
/// network.
fn refuse_bridges(list: &[Connection]) -> Result<()> {
    if let Some(conn) = list.iter().find(|c| c.network != network::DEFAULT_NETWORK) {
        bail!(
            "rootless: network {:?} is a bridge, which needs root on the host's network (a \
             bridge, veth pairs and NAT rules); use the default network (user-mode, \
             slirp4netns or pasta), --network none or --network host",
            conn.network
        );
    }
    Ok(())
}

// ANCHOR: connect_user_mode
/// User-mode networking (`net::slirp` or `net::pasta`), the rootless default as podman's and
/// `--network slirp4netns|pasta` explicitly: the process of `kind` plays the network of the
/// container's pinned namespace, `-p` goes through its port forwarding, and its pid is kept
/// in the container's directory for [`release`]. What `inspect` shows is recorded.
fn connect_user_mode(paths: &Paths, state: &ContainerState, kind: UserKind) -> Result<()> {
    let dir = paths.dir(&state.id);
    let pin = dir.join(super::spec::NETNS_PIN);
    let log = dir.join(format!("{}.log", kind.name()));
    let pid_file = dir.join(kind.pid_file());
    let requested = requested_mappings(&state.config)?;
    let record = match kind {
        UserKind::Slirp4netns => {
            let socket = slirp_socket(paths, &state.id);
            if let Some(parent) = socket.parent() {
                crate::state::private_dir(parent)?;
            }
            let pid = net::slirp::start(&pin, &socket, &log)?;
            let text = format!("{pid}\n");
            crate::state::write_atomic_unsynced(&pid_file, text.as_bytes())?;
            for mapping in &requested {
                net::slirp::add_hostfwd(&socket, mapping).map_err(|e| port_error(e, state))?;
            }
            net::slirp::UserModeNet::read(&state.id, &pin, requested)?
        }
        UserKind::Pasta => {
            let mappings = net::pasta::choose_host_ports(&requested)?;
            net::pasta::start(&pin, &mappings, &pid_file, &log)?;
            net::slirp::UserModeNet::unaddressed(&state.id, mappings)
        }
    };
    crate::state::write_atomic_unsynced(
        &dir.join(USER_MODE_FILE),
        &serde_json::to_vec_pretty(&record)?,
    )
}
// ANCHOR_END: connect_user_mode

/// The file in a rootless container's directory holding its [`net::slirp::UserModeNet`]
/// while its user-mode network is up.
const USER_MODE_FILE: &str = "user-mode-network.json";

/// A rootless container's user-mode network (address, gateway, ports and MAC), while it is
/// up.
pub fn user_mode(paths: &Paths, id: &str) -> Option<net::slirp::UserModeNet> {
    let bytes = std::fs::read(paths.dir(id).join(USER_MODE_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Joins the container to the bridge network of `conn` as `interface`: the bridge (made on
/// first use, with its NAT and isolation rules), the veth pair and address, the MAC.
fn attach(
    paths: &Paths,
    state: &ContainerState,
    conn: &Connection,
    interface: &str,
) -> Result<net::Attachment> {
    if crate::rootless::active() {
        refuse_bridges(std::slice::from_ref(conn))?;
    }
    let net_state = state_dir(paths);
    let net = find_network(&net_state, &conn.network)?;
    let cfg = net.bridge_config()?;
    // The backend is chosen once, when the bridge is made (choosing runs `iptables --version`).
    let backend = match net::bridge(&net_state, &cfg.name)? {
        Some(record) => record.backend,
        None => Some(net::nat::Backend::choose(None)?),
    };
    net::setup_bridge(&net_state, &cfg, backend)
        .with_context(|| format!("setting up network {}", net.name))?;
    net::isolation::isolate(&net_state, &cfg.name)
        .with_context(|| format!("isolating network {}", net.name))?;
    let requested = match conn.ip_address.as_str() {
        "" => None,
        ip => Some(ip.parse().with_context(|| format!("invalid --ip {ip:?}"))?),
    };
    let pin = paths.dir(&state.id).join(super::spec::NETNS_PIN);
    let endpoint = net::Endpoint {
        interface,
        address: requested,
        default_route: false,
        derived_mac: true,
    };
    let netns = net::ContainerNetns::Pinned(pin);
    net::setup_endpoint(&net_state, &cfg, &state.id, &netns, &endpoint)
        .map_err(|e| Exit::new(code::FAILED, format!("{e:#}")).into())
}

/// One network a container is on, as Docker's `EndpointSettings` keeps what was asked for:
/// the network (as named), its `--alias`es and `--ip`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Connection {
    pub network: String,
    pub aliases: Vec<String>,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
}

/// The file in a container's directory that lists its networks once `network connect` or
/// `disconnect` changed them.
const CONNECTIONS_FILE: &str = "networks.json";

/// The bridge networks of a container, in the order it joins them at its start: the list
/// `network connect`/`disconnect` keep, else the one `--network` names (none for `none`,
/// `host` and `container:`).
pub fn connections(paths: &Paths, state: &ContainerState) -> Vec<Connection> {
    let path = paths.dir(&state.id).join(CONNECTIONS_FILE);
    if let Some(list) = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<Connection>>(&b).ok())
    {
        return list;
    }
    match Mode::of(&state.config) {
        Mode::Bridge(name) => vec![Connection {
            network: name,
            aliases: state.config.aliases.clone(),
            ip_address: state.config.ip_address.clone(),
        }],
        _ => Vec::new(),
    }
}

fn save_connections(paths: &Paths, id: &str, list: &[Connection]) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(list)?;
    crate::state::write_atomic_unsynced_with_mode(
        &paths.dir(id).join(CONNECTIONS_FILE),
        &bytes,
        0o600,
    )
}

/// The file in a container's directory with the number of its next interface: as in
/// libnetwork, `ethN` numbers only grow while the container runs, so a network connected after
/// a disconnect gets a new one.
const NEXT_INTERFACE_FILE: &str = "next-interface";

fn next_interface(paths: &Paths, id: &str) -> usize {
    std::fs::read_to_string(paths.dir(id).join(NEXT_INTERFACE_FILE))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

fn save_next_interface(paths: &Paths, id: &str, next: usize) -> Result<()> {
    crate::state::write_atomic_unsynced_with_mode(
        &paths.dir(id).join(NEXT_INTERFACE_FILE),
        next.to_string().as_bytes(),
        0o600,
    )
}

/// True when `conn` names network `net` (by name or ID).
fn names_network(net_state: &StateDir, conn: &Connection, net: &network::Network) -> bool {
    conn.network == net.name
        || conn.network == net.id
        || network::find(net_state, &conn.network)
            .ok()
            .flatten()
            .is_some_and(|n| n.id == net.id)
}

/// The container's live endpoints, by interface: each with its network and what was asked.
fn live_endpoints(
    paths: &Paths,
    state: &ContainerState,
) -> Result<Vec<(network::Network, Connection, net::Attachment)>> {
    let net_state = state_dir(paths);
    let networks = network::list(&net_state)?;
    let list = connections(paths, state);
    let mut out = Vec::new();
    for att in net::container_attachments(&net_state, &state.id)? {
        let Some(net) = networks
            .iter()
            .find(|n| n.driver == "bridge" && n.bridge_name() == att.bridge)
        else {
            continue;
        };
        let conn = list
            .iter()
            .find(|c| names_network(&net_state, c, net))
            .cloned()
            .unwrap_or_else(|| Connection {
                network: net.name.clone(),
                ..Connection::default()
            });
        out.push((net.clone(), conn, att));
    }
    Ok(out)
}

/// The networks `inspect` shows in `NetworkSettings.Networks`: name, ID and the live endpoint
/// (`None` while the container is not running). `none` and `host` are networks too.
pub fn inspect_networks(
    paths: &Paths,
    state: &ContainerState,
) -> Vec<(String, String, Option<net::Attachment>)> {
    let net_state = state_dir(paths);
    let id_of = |name: &str| {
        network::find(&net_state, name)
            .ok()
            .flatten()
            .map(|n| n.id)
            .unwrap_or_default()
    };
    match Mode::of(&state.config) {
        Mode::Container(_) | Mode::UserMode(UserKind::Pasta) => return Vec::new(),
        Mode::UserMode(UserKind::Slirp4netns) => {
            let att = user_mode(paths, &state.id).map(|u| u.attachment);
            return vec![(UserKind::Slirp4netns.name().into(), String::new(), att)];
        }
        Mode::None | Mode::Host => {
            let name = Mode::of(&state.config).network_name();
            return vec![(name.clone(), id_of(&name), None)];
        }
        Mode::Bridge(_) => {}
    }
    let atts = if net_state.root().exists() {
        net::container_attachments(&net_state, &state.id).unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    let user_mode = user_mode(paths, &state.id).map(|u| u.attachment);
    for conn in connections(paths, state) {
        if conn.network == network::DEFAULT_NETWORK && crate::rootless::active() {
            // User-mode networking stands in for the default bridge.
            out.push((
                conn.network.clone(),
                id_of(&conn.network),
                user_mode.clone(),
            ));
            continue;
        }
        let Ok(Some(net)) = network::find(&net_state, &conn.network) else {
            out.push((conn.network.clone(), String::new(), None));
            continue;
        };
        let att = (net.driver == "bridge")
            .then(|| atts.iter().find(|a| a.bridge == net.bridge_name()).cloned())
            .flatten();
        out.push((net.name.clone(), net.id.clone(), att));
    }
    out
}

/// The names of the networks a container is on, for `ps`'s NETWORKS (sorted, as Docker's).
pub fn network_names(paths: &Paths, state: &ContainerState) -> Vec<String> {
    let mut names: Vec<String> = inspect_networks(paths, state)
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    names.sort();
    names
}

// ANCHOR: refresh
/// Brings what depends on the whole set of a container's networks up to date: the default
/// route goes through the network whose name sorts first (as Docker chooses the gateway
/// endpoint), the embedded DNS resolvers of its user networks know it, `/etc/hosts` has a line
/// per address, and `/etc/resolv.conf` names `127.0.0.11` once it is on a user network.
/// `running`: the files are bound into a live container, so they are rewritten in place.
fn refresh(paths: &Paths, state: &ContainerState, running: bool) -> Result<()> {
    let endpoints = live_endpoints(paths, state)?;
    let pin = paths.dir(&state.id).join(super::spec::NETNS_PIN);
    if let Some((_, _, att)) = endpoints.iter().min_by(|a, b| a.0.name.cmp(&b.0.name)) {
        let ns = net::Netns::open(&pin)?;
        net::set_default_route(&ns, &att.interface, att.gateway)?;
    }
    sync_resolvers(paths, state, &endpoints, &pin)?;
    let gateway = host_gateway(paths, &state.config)?;
    let addresses: Vec<Ipv4Addr> = endpoints.iter().map(|(_, _, a)| a.address).collect();
    let dir = paths.dir(&state.id);
    let write = |file: &str, text: String| -> Result<()> {
        let path = dir.join(file);
        if running {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
        } else {
            crate::state::write_atomic_unsynced_with_mode(&path, text.as_bytes(), 0o644)
        }
    };
    write("hosts", hosts_file_with(&state.config, &addresses, gateway))?;
    if endpoints
        .iter()
        .any(|(n, _, _)| n.name != network::DEFAULT_NETWORK)
    {
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        write(
            "resolv.conf",
            internal_resolv_conf(&host, &state.config.dns_search, &state.config.dns_options),
        )?;
    }
    Ok(())
}
// ANCHOR_END: refresh

/// Makes the container a member of the embedded DNS resolver of each of its user networks
/// (started on first need, see `net::resolver`), answering to its name, short ID and aliases
/// on that network, and takes it out of the others. Its `127.0.0.11:53` sockets belong to its
/// first user network's resolver, which also answers for the names of its other networks.
fn sync_resolvers(
    paths: &Paths,
    state: &ContainerState,
    endpoints: &[(network::Network, Connection, net::Attachment)],
    pin: &Path,
) -> Result<()> {
    let net_state = state_dir(paths);
    let user: Vec<_> = endpoints
        .iter()
        .filter(|(n, _, _)| n.name != network::DEFAULT_NETWORK)
        .collect();
    let dirs: Vec<_> = user
        .iter()
        .map(|(n, _, _)| net::cli::resolver_dir(&net_state, &n.id))
        .collect();
    // First out of the networks it left, so that a resolver taking over its sockets can bind.
    if let Ok(entries) = std::fs::read_dir(net_state.path("dns")) {
        for entry in entries {
            let path = entry?.path();
            if dirs.iter().all(|d| d.path() != path) {
                let dir = net::resolver::ResolverDir::new(path);
                if dir
                    .path()
                    .join(format!("members/{}.json", state.id))
                    .exists()
                {
                    dir.remove_member(&state.id)?;
                }
            }
        }
    }
    let exe = std::env::current_exe().context("finding the minidock binary")?;
    for (k, ((net, conn, att), dir)) in user.iter().zip(&dirs).enumerate().rev() {
        if !dir.path().join("config.json").exists() {
            net::cli::write_resolver_config(&net_state, net)?;
        }
        let mut names = vec![state.name.clone(), state.id[..12].to_owned()];
        names.extend(conn.aliases.iter().cloned());
        let mut member =
            net::resolver::Member::new(&state.id, names, att.address, pin.to_path_buf());
        member.serve = k == 0;
        member.also = dirs
            .iter()
            .filter(|d| d.path() != dir.path())
            .map(|d| d.path().to_path_buf())
            .collect();
        dir.add_member(&member, &exe)
            .with_context(|| format!("starting the DNS resolver of network {}", net.name))?;
    }
    Ok(())
}

/// `/etc/resolv.conf` on a user network, as libnetwork's `rebuildDNS` writes it: the host's
/// (or `--dns-search`) search domains, the embedded resolver as the only nameserver, and the
/// host's (or `--dns-option`) options followed by `ndots:0` unless they set `ndots`.
pub fn internal_resolv_conf(host: &str, dns_search: &[String], dns_options: &[String]) -> String {
    let search: Vec<String> = if dns_search.is_empty() {
        host_words(host, "search")
    } else {
        dns_search.to_vec()
    };
    let mut options = if dns_options.is_empty() {
        host_words(host, "options")
    } else {
        dns_options.to_vec()
    };
    let ndots_set = options.iter().any(|o| {
        o.strip_prefix("ndots:")
            .is_some_and(|n| n.parse::<i64>().is_ok_and(|n| n >= 0))
    });
    if !ndots_set {
        options.push("ndots:0".into());
    }
    let servers = [net::dns::RESOLVER_ADDR.to_string()];
    build_resolv_conf(&search, &servers, &options)
}

/// The words after `key` on the host's `resolv.conf` lines that start with it.
fn host_words(host: &str, key: &str) -> Vec<String> {
    host.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(key)).then(|| words.map(str::to_owned).collect::<Vec<_>>())
        })
        .flatten()
        .collect()
}

/// libnetwork's `resolvconf.Build`: `search` (unless only "."), the nameservers, `options`.
fn build_resolv_conf(search: &[String], servers: &[String], options: &[String]) -> String {
    let mut out = String::new();
    if !search.is_empty() && search.join(" ").trim() != "." {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !options.is_empty() && !options.join(" ").trim().is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// Takes container `id` out of every network resolver it is a member of. Idempotent.
fn leave_resolvers(net_state: &StateDir, id: &str) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(net_state.path("dns")) else {
        return Ok(());
    };
    for entry in entries {
        let dir = net::resolver::ResolverDir::new(entry?.path());
        if dir.path().join(format!("members/{id}.json")).exists() {
            dir.remove_member(id)?;
        }
    }
    Ok(())
}

/// The network named `name`, with the predefined ones made on first use.
pub fn find_network(net_state: &StateDir, name: &str) -> Result<network::Network> {
    let disabled = default_bridge_disabled();
    if !disabled {
        let default = network::ensure_default(net_state)?;
        if name == network::DEFAULT_NETWORK {
            return Ok(default);
        }
    }
    network::find(net_state, name)?
        .filter(|n| !(disabled && n.name == network::DEFAULT_NETWORK))
        .with_context(|| format!("network {name} not found"))
        .map_err(|e| Exit::new(code::FAILED, format!("{e:#}")).into())
}

/// Docker's errors for a container whose network cannot change (`runconfig` errors).
const SHARED_NETWORK: &str = "container sharing network namespace with another container or \
                              host cannot be connected to any other network";
const HOST_NETWORK: &str =
    "container cannot be disconnected from host network or connected to host network";
/// minidock's own refusal for a container on user-mode networking (no Docker mode).
const USER_MODE_NETWORK: &str = "container on user-mode networking (slirp4netns or pasta) \
                                 cannot be connected to any other network";
const NONE_NETWORK: &str = "container cannot be connected to multiple networks with one of the \
                            networks in private (none) mode";

fn request_failed(message: String) -> anyhow::Error {
    Exit::new(code::REQUEST_FAILED, message).into()
}

/// True while the container's process runs in its pinned network namespace.
fn is_running(paths: &Paths, state: &ContainerState) -> bool {
    state.observe() == super::state::Status::Running
        && state.process_alive()
        && net::netns::is_pinned(&paths.dir(&state.id).join(super::spec::NETNS_PIN))
}

/// Docker's checks before `network connect` (moby `updateNetworkConfig`,
/// `updateNetworkSettings`), with its messages.
fn check_connect(
    mode: &Mode,
    net: &network::Network,
    aliases: &[String],
    ip: Option<&str>,
) -> Result<()> {
    let refuse = |m: &str| Err(request_failed(m.to_owned()));
    match mode {
        Mode::Container(_) => return refuse(SHARED_NETWORK),
        Mode::UserMode(_) => return refuse(USER_MODE_NETWORK),
        _ if net.driver == "host" => return refuse(HOST_NETWORK),
        Mode::Host => return refuse(SHARED_NETWORK),
        Mode::None => return refuse(NONE_NETWORK),
        Mode::Bridge(_) if net.driver == "null" => return refuse(NONE_NETWORK),
        Mode::Bridge(_) => {}
    }
    if net.is_predefined() && ip.is_some() {
        return refuse("user specified IP address is supported on user defined networks only");
    }
    if net.is_predefined() && !aliases.is_empty() {
        return refuse(
            "network-scoped alias is supported only for containers in user defined networks",
        );
    }
    if let Some(ip) = ip
        && ip.parse::<Ipv4Addr>().is_err()
    {
        return refuse(format!("invalid IPv4 address: {ip}").as_str());
    }
    Ok(())
}

// ANCHOR: connect_network
/// `network connect [--alias A] [--ip IP] NETWORK CONTAINER`, as dockerd's
/// `ConnectToNetwork`: a running container gets one more veth (`ethN`), an address, a line in
/// `/etc/hosts` and its names in the network's resolver at once; a stopped one keeps the
/// network for its next start. Errors (exit 1) in Docker's words: an unknown network or
/// container, `host`/`none`/`container:` modes, `--ip`/`--alias` on the default bridge, and
/// `endpoint with name NAME already exists in network NET` for a running container already
/// on it (a stopped one is left as it is, as Docker does).
pub fn connect_network(
    paths: &Paths,
    network_name: &str,
    container: &str,
    aliases: &[String],
    ip: Option<&str>,
) -> Result<()> {
    let net_state = state_dir(paths);
    let net =
        find_network(&net_state, network_name).map_err(|e| request_failed(format!("{e:#}")))?;
    let _lock = paths.lock()?;
    let state = paths.resolve(container)?;
    let mode = Mode::of(&state.config);
    check_connect(&mode, &net, aliases, ip)?;
    let mut list = connections(paths, &state);
    let running = is_running(paths, &state);
    if list.iter().any(|c| names_network(&net_state, c, &net)) {
        if running {
            return Err(request_failed(format!(
                "endpoint with name {} already exists in network {}",
                state.name, net.name
            )));
        }
        return Ok(());
    }
    let conn = Connection {
        network: net.name.clone(),
        aliases: aliases.to_vec(),
        ip_address: ip.unwrap_or_default().to_owned(),
    };
    if running {
        attach_next(paths, &state, &conn)?;
    }
    list.push(conn);
    save_connections(paths, &state.id, &list)?;
    if running {
        refresh(paths, &state, true)?;
    }
    connect_event(paths, &net, &state.id);
    Ok(())
}
// ANCHOR_END: connect_network

// ANCHOR: attach_next
/// Attaches a running container to one more network as its next interface (`eth1`, `eth2`,
/// ...), then records the number after it: a start numbers the interfaces from `eth0` and
/// each connect takes the next, so a number is not handed out twice while the container runs.
fn attach_next(paths: &Paths, state: &ContainerState, conn: &Connection) -> Result<()> {
    let next = next_interface(paths, &state.id);
    attach(paths, state, conn, &format!("eth{next}"))
        .map_err(|e| request_failed(format!("{e:#}")))?;
    save_next_interface(paths, &state.id, next + 1)
}
// ANCHOR_END: attach_next

/// The `connect` event of the network, naming the container, as `docker events` shows it.
fn connect_event(paths: &Paths, net: &network::Network, id: &str) {
    crate::events::network(
        &paths.root,
        &net.id,
        &net.name,
        &net.driver,
        "connect",
        &[("container", id.to_owned())],
    );
}

/// `network disconnect [-f] NETWORK CONTAINER`, as dockerd's `DisconnectFromNetwork`: a
/// running container loses that network's veth, address, `/etc/hosts` line and resolver
/// records at once (the default route moves to another network); a stopped one forgets the
/// network. `-f` forgets a network that no longer exists. Errors (exit 1) in Docker's words.
pub fn disconnect_network(
    paths: &Paths,
    network_name: &str,
    container: &str,
    force: bool,
) -> Result<()> {
    let net_state = state_dir(paths);
    let _lock = paths.lock()?;
    let state = paths.resolve(container)?;
    let found =
        network::find(&net_state, network_name).map_err(|e| request_failed(format!("{e:#}")))?;
    let mut list = connections(paths, &state);
    let running = is_running(paths, &state);
    if !running || (found.is_none() && force) {
        let position = list.iter().position(|c| {
            c.network == network_name
                || found
                    .as_ref()
                    .is_some_and(|n| names_network(&net_state, c, n))
        });
        let Some(i) = position else {
            return Err(request_failed(format!(
                "container {} is not connected to the network {network_name}",
                state.id
            )));
        };
        list.remove(i);
        return save_connections(paths, &state.id, &list);
    }
    let Some(net) = found else {
        return Err(request_failed(format!("network {network_name} not found")));
    };
    if net.driver == "host" && Mode::of(&state.config) == Mode::Host {
        return Err(request_failed(HOST_NETWORK.to_owned()));
    }
    let att = net::container_attachments(&net_state, &state.id)?
        .into_iter()
        .find(|a| net.driver == "bridge" && a.bridge == net.bridge_name());
    let Some(att) = att else {
        return Err(request_failed(format!(
            "container {} is not connected to network {}",
            state.id, net.name
        )));
    };
    net::teardown_endpoint(&net_state, &state.id, &att.interface)?;
    list.retain(|c| !names_network(&net_state, c, &net));
    save_connections(paths, &state.id, &list)?;
    refresh(paths, &state, true)?;
    crate::events::network(
        &paths.root,
        &net.id,
        &net.name,
        &net.driver,
        "disconnect",
        &[("container", state.id.clone())],
    );
    Ok(())
}

/// Docker's words for a host port that is taken (exit 125).
fn port_error(err: anyhow::Error, state: &ContainerState) -> anyhow::Error {
    match err.downcast_ref::<net::PortAllocated>() {
        Some(p) => {
            let ip = p.mapping.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
            Exit::new(
                code::FAILED,
                format!(
                    "driver failed programming external connectivity on endpoint {} ({}): \
                     Bind for {ip}:{} failed: port is already allocated",
                    state.name, state.id, p.mapping.host_port
                ),
            )
            .into()
        }
        None => err,
    }
}

/// Docker's MAC for an address: `02:42:` and the address's four bytes ([`net::mac_of`]).
pub fn mac_of(address: Ipv4Addr) -> [u8; 6] {
    net::mac_of(address)
}

// ANCHOR: release
/// Undoes [`connect`] once the container's processes are gone: the rules, the namespace's
/// pin, the veth pair (the kernel's to delete when the namespace goes with the pin, see
/// [`net::release_container_network`]) and the address. Idempotent.
pub fn release(paths: &Paths, id: &str) -> Result<()> {
    for kind in [UserKind::Slirp4netns, UserKind::Pasta] {
        net::usermode::stop(kind, &paths.dir(id).join(kind.pid_file()))?;
    }
    let _ = std::fs::remove_file(slirp_socket(paths, id));
    let _ = std::fs::remove_file(paths.dir(id).join(USER_MODE_FILE));
    let net_state = state_dir(paths);
    // Rootless, no bridge, veth or rule was made (and deleting by name would be refused).
    let torn = if net_state.root().exists() && !crate::rootless::active() {
        let left = leave_resolvers(&net_state, id);
        let pin = paths.dir(id).join(super::spec::NETNS_PIN);
        net::release_container_network(&net_state, id, &pin).and(left)
    } else {
        Ok(())
    };
    let unpinned = super::unpin_network(paths, id);
    torn.and(unpinned)
}
// ANCHOR_END: release

/// The container's attachment to its bridge, while it has one.
pub fn attachment(paths: &Paths, id: &str) -> Option<net::Attachment> {
    if let Some(user_mode) = user_mode(paths, id) {
        return Some(user_mode.attachment);
    }
    let net_state = state_dir(paths);
    if !net_state.root().exists() {
        return None;
    }
    net::attachment(&net_state, id).ok().flatten()
}

/// `--add-host NAME:host-gateway`: the default bridge's gateway, as dockerd's default
/// `--host-gateway-ip`.
pub const HOST_GATEWAY: &str = "host-gateway";

/// The address `host-gateway` stands for, when `config` asks for it: the default bridge's
/// gateway. Docker's error (exit 125) when the default bridge is off.
pub fn host_gateway(paths: &Paths, config: &RunConfig) -> Result<Option<Ipv4Addr>> {
    if !config
        .extra_hosts
        .iter()
        .any(|e| e.split_once(':').is_some_and(|(_, ip)| ip == HOST_GATEWAY))
    {
        return Ok(None);
    }
    let gateway = if default_bridge_disabled() {
        None
    } else {
        network::ensure_default(&state_dir(paths))?
            .ipv4()
            .map(|c| c.gateway)
    };
    match gateway {
        Some(g) => Ok(Some(g)),
        None => Err(bad_flag(
            "unable to derive the IP value for host-gateway".into(),
        )),
    }
}

const HOSTS_DEFAULTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
                              fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\n\
                              ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

// ANCHOR: hosts_file
/// `/etc/hosts` as libnetwork's `etchosts.Build` writes it: the defaults, one `IP\tNAME` line
/// per `--add-host` (`host-gateway` as `gateway`), then the container's own address and
/// hostname (the FQDN and the short name when the hostname has a dot).
pub fn hosts_file(
    config: &RunConfig,
    address: Option<Ipv4Addr>,
    gateway: Option<Ipv4Addr>,
) -> String {
    hosts_file_with(config, address.as_slice(), gateway)
}

/// [`hosts_file`] for a container on several networks: one line for each of its addresses,
/// in the order it joined the networks (libnetwork adds one per endpoint).
pub fn hosts_file_with(
    config: &RunConfig,
    addresses: &[Ipv4Addr],
    gateway: Option<Ipv4Addr>,
) -> String {
    let mut out = HOSTS_DEFAULTS.to_owned();
    for entry in &config.extra_hosts {
        match entry.split_once(':') {
            Some((name, HOST_GATEWAY)) => {
                if let Some(g) = gateway {
                    out.push_str(&format!("{g}\t{name}\n"));
                }
            }
            Some((name, ip)) => out.push_str(&format!("{ip}\t{name}\n")),
            None => {}
        }
    }
    for ip in addresses {
        let host = &config.hostname;
        match host.split_once('.') {
            Some((short, _)) => out.push_str(&format!("{ip}\t{host} {short}\n")),
            None => out.push_str(&format!("{ip}\t{host}\n")),
        }
    }
    out
}
// ANCHOR_END: hosts_file

// ANCHOR: resolv_conf
/// `/etc/resolv.conf` as libnetwork writes it for a container that does not share the host's
/// network: with `--dns`/`--dns-search`/`--dns-option`, `search`, `nameserver` and `options`
/// lines built from those (the host's for what is not given); otherwise the host's file
/// without loopback nameservers (unreachable from another namespace) and IPv6 ones (the
/// bridge has no IPv6), and Google's resolvers when none is left (`resolvconf.FilterResolvDNS`).
pub fn resolv_conf(
    host: &str,
    dns: &[String],
    dns_search: &[String],
    dns_options: &[String],
) -> String {
    if !dns.is_empty() || !dns_search.is_empty() || !dns_options.is_empty() {
        let pick = |given: &[String], key: &str| {
            if given.is_empty() {
                host_words(host, key)
            } else {
                given.to_vec()
            }
        };
        let servers: Vec<String> = if dns.is_empty() {
            host.lines()
                .filter_map(|l| {
                    let mut words = l.split_whitespace();
                    (words.next() == Some("nameserver"))
                        .then(|| words.next().map(str::to_owned))
                        .flatten()
                })
                .collect()
        } else {
            dns.to_vec()
        };
        return build_resolv_conf(
            &pick(dns_search, "search"),
            &servers,
            &pick(dns_options, "options"),
        );
    }
    let dropped = |l: &str| {
        let mut words = l.split_whitespace();
        words.next() == Some("nameserver")
            && words.next().is_some_and(|ip| {
                ip.parse::<std::net::IpAddr>()
                    .is_ok_and(|a| a.is_loopback() || a.is_ipv6())
                    || ip.contains(':')
            })
    };
    let mut out: String = host.split_inclusive('\n').filter(|l| !dropped(l)).collect();
    let left = out
        .lines()
        .any(|l| l.split_whitespace().next() == Some("nameserver"));
    if !left {
        out.push_str("\nnameserver 8.8.8.8\nnameserver 8.8.4.4");
    }
    out
}
// ANCHOR_END: resolv_conf

/// Writes the container's `hostname`, `hosts` and `resolv.conf` into its directory, which the
/// spec binds over the image's. `host` mode copies the host's `/etc/hosts` and
/// `/etc/resolv.conf`; a bridge container's own address is added to `hosts` by [`connect`].
pub fn write_etc_files(
    dir: &Path,
    config: &RunConfig,
    mode: &Mode,
    gateway: Option<Ipv4Addr>,
) -> Result<()> {
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let (hosts, resolv) = match mode {
        Mode::Host => (
            std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
            if config.dns.is_empty()
                && config.dns_search.is_empty()
                && config.dns_options.is_empty()
            {
                host_resolv
            } else {
                resolv_conf(
                    &host_resolv,
                    &config.dns,
                    &config.dns_search,
                    &config.dns_options,
                )
            },
        ),
        _ => (
            hosts_file(config, None, gateway),
            resolv_conf(
                &host_resolv,
                &config.dns,
                &config.dns_search,
                &config.dns_options,
            ),
        ),
    };
    for (file, content) in [
        ("hostname", format!("{}\n", config.hostname)),
        ("hosts", hosts),
        ("resolv.conf", resolv),
    ] {
        // 0644: every user of the container reads them through the bind mounts.
        crate::state::write_atomic_unsynced_with_mode(&dir.join(file), content.as_bytes(), 0o644)?;
    }
    Ok(())
}

/// `NetworkSettings.Ports`: every exposed or published port, with the host ports in use while
/// the container runs (`null` for one not published).
pub fn settings_ports(
    config: &RunConfig,
    att: Option<&net::Attachment>,
) -> BTreeMap<String, Option<Vec<PortBinding>>> {
    let mut out: BTreeMap<String, Option<Vec<PortBinding>>> = BTreeMap::new();
    let Some(att) = att else {
        return out;
    };
    for key in config
        .exposed_ports
        .iter()
        .chain(config.port_bindings.keys())
    {
        out.entry(key.clone()).or_insert(None);
    }
    for p in &att.ports {
        let key = format!("{}/{}", p.container_port, p.protocol.name());
        out.entry(key)
            .or_insert(None)
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string(),
                host_port: p.host_port.to_string(),
            });
    }
    out
}

// ANCHOR: display_ports
/// `ps`'s PORTS as docker/cli's `DisplayablePorts`: the ports sorted by container port, then
/// host address, host port and protocol; a port published on the same number
/// (`0.0.0.0:80->80/tcp`) or only exposed (`80/tcp`) is folded with its consecutive
/// neighbours into a range; the other mappings follow one by one (`0.0.0.0:8080->80/tcp`).
pub fn display_ports(ports: &BTreeMap<String, Option<Vec<PortBinding>>>) -> String {
    // (container port, host ip, host port, proto), as the daemon's `types.Port` list.
    let mut items: Vec<(u16, String, u16, &'static str)> = Vec::new();
    for (key, bindings) in ports {
        let Some((port, proto)) = split_port(key) else {
            continue;
        };
        match bindings {
            Some(list) if !list.is_empty() => {
                for b in list {
                    let public = b.host_port.parse().unwrap_or(0);
                    items.push((port, b.host_ip.clone(), public, proto.name()));
                }
            }
            _ => items.push((port, String::new(), 0, proto.name())),
        }
    }
    items.sort();
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut mappings = Vec::new();
    for (port, ip, public, proto) in items {
        let key = if ip.is_empty() {
            proto.to_owned()
        } else if public != port {
            mappings.push(format!("{ip}:{public}->{port}/{proto}"));
            continue;
        } else {
            format!("{ip}/{proto}")
        };
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, port, port)),
            Some(g) if g.2 + 1 == port => g.2 = port,
            Some(g) => {
                result.push(form_group(&g.0, g.1, g.2));
                (g.1, g.2) = (port, port);
            }
        }
    }
    result.extend(groups.iter().map(|g| form_group(&g.0, g.1, g.2)));
    result.extend(mappings);
    result.join(", ")
}

/// docker/cli's `formGroup`: `80-81/tcp`, or `IP:80-81->80-81/tcp` for a key `IP/tcp`.
fn form_group(key: &str, first: u16, last: u16) -> String {
    let range = if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    };
    match key.split_once('/') {
        Some((ip, proto)) => format!("{ip}:{range}->{range}/{proto}"),
        None => format!("{range}/{key}"),
    }
}
// ANCHOR_END: display_ports

/// `port CONTAINER [PORT[/PROTO]]` as the docker CLI prints it: `80/tcp -> 0.0.0.0:8080`
/// lines, or only `0.0.0.0:8080` for one port. An unknown or unpublished port fails with
/// `No public port '80' published for NAME` (the port as typed; exit 1).
pub fn port_lines(
    name: &str,
    ports: &BTreeMap<String, Option<Vec<PortBinding>>>,
    filter: Option<&str>,
) -> Result<String> {
    let mut out = String::new();
    match filter {
        Some(text) => {
            let key = if text.contains('/') {
                text.to_owned()
            } else {
                format!("{text}/tcp")
            };
            if split_port(&key).is_none() {
                bail!("Invalid containerPort: {text}");
            }
            match ports.get(&key) {
                Some(Some(list)) if !list.is_empty() => {
                    for b in list {
                        out.push_str(&format!("{}:{}\n", b.host_ip, b.host_port));
                    }
                }
                _ => bail!("No public port '{text}' published for {name}"),
            }
        }
        None => {
            let mut lines = Vec::new();
            for (key, list) in ports {
                for b in list.iter().flatten() {
                    lines.push(format!("{key} -> {}:{}", b.host_ip, b.host_port));
                }
            }
            lines.sort();
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(ip: &str, port: &str) -> PortBinding {
        PortBinding {
            host_ip: ip.into(),
            host_port: port.into(),
        }
    }

    #[test]
    fn publish_specs_parse_as_dockers() {
        assert_eq!(
            parse_publish("8080:80").unwrap(),
            vec![("80/tcp".into(), binding("", "8080"))]
        );
        assert_eq!(
            parse_publish("127.0.0.1:5353:53/udp").unwrap(),
            vec![("53/udp".into(), binding("127.0.0.1", "5353"))]
        );
        assert_eq!(
            parse_publish("80").unwrap(),
            vec![("80/tcp".into(), binding("", ""))]
        );
        assert_eq!(
            parse_publish("127.0.0.1::80").unwrap(),
            vec![("80/tcp".into(), binding("127.0.0.1", ""))]
        );
        assert_eq!(
            parse_publish("8000-8001:80-81").unwrap(),
            vec![
                ("80/tcp".into(), binding("", "8000")),
                ("81/tcp".into(), binding("", "8001"))
            ]
        );
        let err = |s: &str| parse_publish(s).unwrap_err().to_string();
        assert_eq!(err("8080:abc"), "Invalid containerPort: abc");
        assert_eq!(err("x:80"), "Invalid hostPort: x");
        assert_eq!(err("80/sctp"), "invalid proto: sctp");
        assert_eq!(err("1.2.3:80:80"), "Invalid ip address: 1.2.3");
        assert_eq!(
            parse_publish("[127.0.0.1]:8084:80").unwrap(),
            vec![("80/tcp".into(), binding("127.0.0.1", "8084"))]
        );
        for ipv6 in [
            "[::1]:8080:80",
            "[::]:8080:80",
            "::1:8080:80",
            "[::1]::80/udp",
        ] {
            let e = err(ipv6);
            assert!(
                e.starts_with("IPv6 host address ::") && e.contains("is not supported"),
                "{ipv6}: {e}"
            );
        }
        assert_eq!(err("[::1:80:80"), "Invalid ip address [::1: missing ']'");
        assert_eq!(
            err("8000-8002:80-81"),
            "Invalid ranges specified for container and host Ports: 80-81 and 8000-8002"
        );
    }

    #[test]
    fn ports_display_as_the_docker_cli_prints_them() {
        let mut ports = BTreeMap::new();
        ports.insert("80/tcp".to_owned(), Some(vec![binding("0.0.0.0", "8000")]));
        ports.insert("81/tcp".to_owned(), Some(vec![binding("0.0.0.0", "8001")]));
        ports.insert("443/tcp".to_owned(), None);
        ports.insert(
            "53/udp".to_owned(),
            Some(vec![binding("127.0.0.1", "5353")]),
        );
        assert_eq!(
            display_ports(&ports),
            "443/tcp, 127.0.0.1:5353->53/udp, 0.0.0.0:8000->80/tcp, 0.0.0.0:8001->81/tcp"
        );
        let mut same = BTreeMap::new();
        same.insert("80/tcp".to_owned(), Some(vec![binding("0.0.0.0", "80")]));
        same.insert("81/tcp".to_owned(), Some(vec![binding("0.0.0.0", "81")]));
        same.insert("90/udp".to_owned(), None);
        assert_eq!(display_ports(&same), "0.0.0.0:80-81->80-81/tcp, 90/udp");
        assert_eq!(
            port_lines("web", &ports, None).unwrap(),
            "53/udp -> 127.0.0.1:5353\n80/tcp -> 0.0.0.0:8000\n81/tcp -> 0.0.0.0:8001\n"
        );
        assert_eq!(
            port_lines("web", &ports, Some("80")).unwrap(),
            "0.0.0.0:8000\n"
        );
        assert_eq!(
            port_lines("web", &ports, Some("443"))
                .unwrap_err()
                .to_string(),
            "No public port '443' published for web"
        );
    }

    #[test]
    fn resolv_conf_drops_loopback_resolvers_as_docker_does() {
        let host = "# generated\nnameserver 127.0.0.53\nsearch lan\noptions edns0\n";
        assert_eq!(
            resolv_conf(host, &[], &[], &[]),
            "# generated\nsearch lan\noptions edns0\n\nnameserver 8.8.8.8\nnameserver 8.8.4.4"
        );
        let host = "nameserver 10.0.0.2\nnameserver ::1\nnameserver fe80::1\n";
        assert_eq!(resolv_conf(host, &[], &[], &[]), "nameserver 10.0.0.2\n");
        assert_eq!(
            resolv_conf(
                "search lan\nnameserver 10.0.0.2\n",
                &["1.1.1.1".into()],
                &[],
                &[]
            ),
            "search lan\nnameserver 1.1.1.1\n"
        );
        assert_eq!(
            resolv_conf("nameserver 10.0.0.2\n", &[], &["example.com".into()], &[]),
            "search example.com\nnameserver 10.0.0.2\n"
        );
    }

    #[test]
    fn dns_options_go_on_an_options_line_as_docker_writes_them() {
        let host = "search lan\nnameserver 10.0.0.2\noptions edns0\n";
        let opts = ["ndots:3".to_owned(), "timeout:2".to_owned()];
        assert_eq!(
            resolv_conf(host, &[], &[], &opts),
            "search lan\nnameserver 10.0.0.2\noptions ndots:3 timeout:2\n"
        );
        assert_eq!(
            resolv_conf(host, &["1.1.1.1".into()], &[], &[]),
            "search lan\nnameserver 1.1.1.1\noptions edns0\n"
        );
        assert_eq!(
            internal_resolv_conf("nameserver 10.0.0.2\n", &[], &["timeout:2".into()]),
            "nameserver 127.0.0.11\noptions timeout:2 ndots:0\n"
        );
        assert_eq!(
            internal_resolv_conf(host, &["x.org".into()], &["ndots:2".into()]),
            "search x.org\nnameserver 127.0.0.11\noptions ndots:2\n"
        );
        assert_eq!(
            internal_resolv_conf(host, &[], &[]),
            "search lan\nnameserver 127.0.0.11\noptions edns0 ndots:0\n"
        );
    }

    #[test]
    fn hosts_has_the_extra_hosts_then_the_container() {
        let config = RunConfig {
            hostname: "web".into(),
            extra_hosts: vec!["db:10.1.2.3".into()],
            ..RunConfig::default()
        };
        let hosts = hosts_file(&config, Some(Ipv4Addr::new(172, 17, 0, 2)), None);
        assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");
        assert!(
            hosts.ends_with("\n10.1.2.3\tdb\n172.17.0.2\tweb\n"),
            "{hosts}"
        );
    }

    #[test]
    fn network_modes_parse() {
        let default = Mode::Bridge("bridge".into());
        assert_eq!(Mode::parse(Some("default")).unwrap(), default);
        let unset = if default_bridge_disabled() {
            Mode::None
        } else {
            default
        };
        assert_eq!(Mode::parse(None).unwrap(), unset);
        assert_eq!(Mode::parse(Some("none")).unwrap(), Mode::None);
        assert_eq!(
            Mode::parse(Some("pasta")).unwrap(),
            Mode::UserMode(UserKind::Pasta)
        );
        assert_eq!(
            Mode::UserMode(UserKind::Slirp4netns).network_name(),
            "slirp4netns"
        );
        assert_eq!(
            Mode::parse(Some("container:web")).unwrap(),
            Mode::Container("web".into())
        );
        assert_eq!(
            Mode::parse(Some("mynet")).unwrap(),
            Mode::Bridge("mynet".into())
        );
        assert_eq!(
            mac_of(Ipv4Addr::new(172, 17, 0, 2)),
            [2, 0x42, 172, 17, 0, 2]
        );
    }
}
