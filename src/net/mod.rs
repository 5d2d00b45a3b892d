//! Networking: a bridge, a veth pair per container, addresses from a pool, NAT and published
//! ports; the same design as Docker's default `bridge` network.
//!
//! ```text
//!  container netns           host netns
//!  ┌───────────────┐         ┌──────────────────────────────────────────────┐
//!  │ eth0 10.88.0.2├─veth────┤vethXXXX ─┐                                    │
//!  └───────────────┘  pair   │          ├─ minidock0 10.88.0.1 ── NAT ── eth0 │
//!  ┌───────────────┐         │vethYYYY ─┘   (bridge)      (netfilter)        │
//!  │ eth0 10.88.0.3├─veth────┤                                              │
//!  └───────────────┘         └──────────────────────────────────────────────┘
//! ```
//!
//! The API is what `minidock run` calls: [`setup_bridge`] once per network,
//! [`setup_container_network`] for each container (veth, address, routes, `lo`: netlink only,
//! no NAT, so it is fast), [`publish`] for `-p`, and [`teardown_container_network`] /
//! [`teardown_bridge`] to undo exactly what was done. A container on several networks gets one
//! [`setup_endpoint`] per network (`eth0`, `eth1`, ...), and [`teardown_endpoint`] takes one
//! away. State lives under a [`StateDir`].

pub mod cli;
pub mod dns;
pub mod ipam;
pub mod isolation;
pub mod nat;
pub mod netlink;
pub mod netns;
pub mod network;
pub mod nftables;
pub mod pasta;
pub mod probe;
pub mod resolver;
pub mod slirp;
pub mod state;
pub mod tour;
pub mod usermode;

pub use ipam::{Owner, Subnet};
pub use nat::{AppliedRule, Backend, PortMapping, Protocol};
pub use netns::Netns;
pub use state::{DEFAULT_ROOT, StateDir};

use anyhow::{Context, Result, bail};
use netlink::{LOOPBACK_INDEX, Netlink};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The name of the container's end of its veth pair, inside its namespace.
pub const CONTAINER_INTERFACE: &str = "eth0";

/// A bridge network: the bridge's name, its subnet, and the gateway (the bridge's own address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    pub name: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
}

impl Default for BridgeConfig {
    /// `minidock0`, `10.88.0.0/16`, gateway `10.88.0.1` (podman's default subnet; Docker's
    /// docker0 uses 172.17.0.0/16).
    fn default() -> Self {
        let subnet: Subnet = "10.88.0.0/16".parse().expect("valid default subnet");
        BridgeConfig {
            name: "minidock0".into(),
            gateway: subnet.first_host(),
            subnet,
        }
    }
}

impl BridgeConfig {
    /// A bridge named `name` on `subnet`, with the gateway at the subnet's first address.
    pub fn new(name: &str, subnet: Subnet) -> Result<Self> {
        let cfg = BridgeConfig {
            name: name.to_owned(),
            subnet,
            gateway: subnet.first_host(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        validate_ifname(&self.name)?;
        let s = self.subnet;
        if !s.contains(self.gateway) || self.gateway == s.network || self.gateway == s.broadcast() {
            bail!(
                "gateway {} is not a host address of subnet {s}",
                self.gateway
            );
        }
        Ok(())
    }
}

/// Interface names are at most 15 bytes (IFNAMSIZ 16, with the NUL) and may not contain '/',
/// ':' or whitespace (dev_valid_name in net/core/dev.c).
pub fn validate_ifname(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        bail!("invalid interface name {name:?}: 1 to 15 characters, no '/', ':' or spaces");
    }
    Ok(())
}

/// Container ids are used in file names and rule comments: keep them plain.
fn validate_container_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > 64
        || id.starts_with('.')
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        bail!("invalid container name {id:?}: 1 to 64 of [A-Za-z0-9_.-], not starting with '.'");
    }
    Ok(())
}

/// The host end of a container's veth pair: `veth` + 8 hex digits of a hash of the container
/// id, so it fits in 15 bytes and teardown can find it even without a record.
pub fn host_veth_name(container: &str) -> String {
    // FNV-1a, 32 bits: tiny, stable across versions and platforms.
    let hash = container.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    });
    format!("veth{hash:08x}")
}

/// What we did for a bridge, so teardown can undo exactly that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeRecord {
    pub name: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// The NAT backend, when the bridge was set up with NAT.
    pub backend: Option<Backend>,
    pub rules: Vec<AppliedRule>,
}

/// One container's connection to a bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub container: String,
    pub bridge: String,
    pub host_veth: String,
    pub interface: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub ports: Vec<PortMapping>,
    pub rules: Vec<AppliedRule>,
}

/// What we changed on the host outside our own links: `net.ipv4.ip_forward`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct HostRecord {
    /// The value before we enabled forwarding, when we changed it.
    ip_forward_before: Option<String>,
    /// The bridges that need forwarding; the old value comes back when the last one goes.
    users: BTreeSet<String>,
}

/// Where a container's network namespace is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerNetns {
    /// The namespace of a running process (the container's init).
    Pid(i32),
    /// A namespace pinned at a path (`ip netns add`-style, as net-demo's containers are).
    Pinned(PathBuf),
}

fn bridge_file(name: &str) -> String {
    format!("bridges/{name}.json")
}

fn container_file(id: &str) -> String {
    format!("containers/{id}.json")
}

/// The record key of a container's endpoint: the container itself for `eth0` (its first
/// network, the only one net-demo's containers have), `CONTAINER.ethN` for the others.
fn endpoint_key(container: &str, interface: &str) -> String {
    if interface == CONTAINER_INTERFACE {
        container.to_owned()
    } else {
        format!("{container}.{interface}")
    }
}

/// Undo steps run in reverse order on drop, unless committed: whatever fails half-way leaves
/// nothing half-configured behind.
#[derive(Default)]
struct Undo {
    steps: Vec<Box<dyn FnOnce()>>,
}

impl Undo {
    fn push(&mut self, step: impl FnOnce() + 'static) {
        self.steps.push(Box::new(step));
    }

    fn commit(mut self) {
        self.steps.clear();
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        while let Some(step) = self.steps.pop() {
            step();
        }
    }
}

fn delete_link_if_present(nl: &mut Netlink, name: &str) -> Result<()> {
    match nl.delete_link(name) {
        Ok(()) => Ok(()),
        Err(e) if e.errno == nix::errno::Errno::ENODEV => Ok(()),
        Err(e) => Err(e).with_context(|| format!("deleting link {name}")),
    }
}

// ANCHOR: setup_bridge
/// Creates the bridge with the gateway address, turns on `route_localnet` for it, and with a
/// NAT backend adds the bridge's NAT rules and enables `ip_forward`. Idempotent: an existing
/// bridge with the same configuration is returned as it is.
pub fn setup_bridge(
    state: &StateDir,
    cfg: &BridgeConfig,
    nat: Option<Backend>,
) -> Result<BridgeRecord> {
    cfg.validate()?;
    let _lock = state.lock()?;
    let mut nl = Netlink::open().context("opening a netlink socket")?;
    if let Some(existing) = existing_bridge(state, &mut nl, cfg)? {
        return Ok(existing);
    }
    check_subnet_is_free(state, &mut nl, cfg)?;
    if nl.link_index(&cfg.name)?.is_some() {
        bail!(
            "a link named {} already exists and minidock did not create it (state: {})",
            cfg.name,
            state.root().display()
        );
    }
    let mut undo = Undo::default();
    create_bridge_link(&mut nl, cfg, &mut undo)?;
    let mut record = BridgeRecord {
        name: cfg.name.clone(),
        subnet: cfg.subnet,
        gateway: cfg.gateway,
        backend: nat,
        rules: Vec::new(),
    };
    if let Some(backend) = nat {
        record.rules = add_bridge_nat(state, cfg, backend, &mut undo)?;
    }
    state.write(&bridge_file(&cfg.name), &record)?;
    undo.commit();
    Ok(record)
}
// ANCHOR_END: setup_bridge

// ANCHOR: existing_bridge
/// The record of the bridge `cfg` names when it is set up already, with the same subnet and
/// gateway. A record whose bridge is gone (a reboot) is cleared first, and `None` returned.
fn existing_bridge(
    state: &StateDir,
    nl: &mut Netlink,
    cfg: &BridgeConfig,
) -> Result<Option<BridgeRecord>> {
    let Some(existing) = state.read::<BridgeRecord>(&bridge_file(&cfg.name))? else {
        return Ok(None);
    };
    if existing.subnet != cfg.subnet || existing.gateway != cfg.gateway {
        bail!(
            "bridge {} already exists with subnet {} and gateway {}",
            cfg.name,
            existing.subnet,
            existing.gateway
        );
    }
    if nl.link_index(&cfg.name)?.is_some() {
        return Ok(Some(existing));
    }
    // The record outlived its bridge (a reboot): clear what is left, then start afresh.
    remove_bridge_locked(state, nl, &existing)?;
    Ok(None)
}
// ANCHOR_END: existing_bridge

// ANCHOR: create_bridge_link
/// Creates the bridge link, gives it the gateway address, brings it up and turns on its
/// `route_localnet`; pushes the link's deletion to `undo`.
fn create_bridge_link(nl: &mut Netlink, cfg: &BridgeConfig, undo: &mut Undo) -> Result<()> {
    nl.create_bridge(&cfg.name)
        .with_context(|| format!("creating bridge {}", cfg.name))?;
    let name = cfg.name.clone();
    undo.push(move || {
        if let Ok(mut nl) = Netlink::open() {
            let _ = delete_link_if_present(&mut nl, &name);
        }
    });
    let index = nl
        .link_index(&cfg.name)?
        .with_context(|| format!("bridge {} vanished after creation", cfg.name))?;
    let (gateway, prefix) = (cfg.gateway, cfg.subnet.prefix);
    nl.add_address(index, gateway, prefix)
        .with_context(|| format!("adding {gateway}/{prefix} to {}", cfg.name))?;
    nl.set_up(index, &cfg.name, None)
        .with_context(|| format!("bringing {} up", cfg.name))?;
    // Let packets with a 127.0.0.0/8 source leave through this bridge, which DNAT of
    // 127.0.0.1:PORT produces (ip-sysctl.rst, route_localnet). It goes with the bridge.
    nat::write_sysctl(&format!("net/ipv4/conf/{}/route_localnet", cfg.name), "1")
}
// ANCHOR_END: create_bridge_link

// ANCHOR: add_bridge_nat
/// Adds the bridge's NAT rules with `backend` and enables `ip_forward`; pushes their undo to
/// `undo`. Returns the rules added.
fn add_bridge_nat(
    state: &StateDir,
    cfg: &BridgeConfig,
    backend: Backend,
    undo: &mut Undo,
) -> Result<Vec<AppliedRule>> {
    let rules = nat::add_rules(backend, &nat::bridge_rules(&cfg.name, cfg.subnet))?;
    let reversed: Vec<AppliedRule> = rules.iter().rev().cloned().collect();
    undo.push(move || {
        let _ = nat::delete_rules(&reversed);
    });
    // Outbound NAT needs the host to route between the bridge and its uplink.
    acquire_forwarding(state, &cfg.name)?;
    let (state2, name) = (state.clone(), cfg.name.clone());
    undo.push(move || {
        let _ = release_forwarding(&state2, &name);
    });
    Ok(rules)
}
// ANCHOR_END: add_bridge_nat

/// Refuses a subnet that overlaps another minidock network or an address already on the host
/// (routing to it would become ambiguous).
fn check_subnet_is_free(state: &StateDir, nl: &mut Netlink, cfg: &BridgeConfig) -> Result<()> {
    for other in state.list("bridges")? {
        if other == cfg.name {
            continue;
        }
        if let Some(rec) = state.read::<BridgeRecord>(&bridge_file(&other))?
            && rec.subnet.overlaps(&cfg.subnet)
        {
            bail!(
                "subnet {} overlaps network {} ({})",
                cfg.subnet,
                rec.name,
                rec.subnet
            );
        }
    }
    let links = nl.links()?;
    for addr in nl.addresses()? {
        if Subnet::of(addr.address, addr.prefix).overlaps(&cfg.subnet) {
            let link = links
                .iter()
                .find(|l| l.index == addr.index)
                .map_or(addr.index.to_string(), |l| l.name.clone());
            bail!(
                "subnet {} overlaps {}/{} on {link}",
                cfg.subnet,
                addr.address,
                addr.prefix
            );
        }
    }
    Ok(())
}

// ANCHOR: ip_forward
/// Enables `net.ipv4.ip_forward` for `bridge`, remembering the old value; only the first user
/// changes it.
fn acquire_forwarding(state: &StateDir, bridge: &str) -> Result<()> {
    let mut host: HostRecord = state.read("host.json")?.unwrap_or_default();
    if host.users.is_empty() {
        let before = nat::read_sysctl("net/ipv4/ip_forward")?;
        if before != "1" {
            nat::write_sysctl("net/ipv4/ip_forward", "1")?;
            host.ip_forward_before = Some(before);
        } else {
            host.ip_forward_before = None;
        }
    }
    host.users.insert(bridge.to_owned());
    state.write("host.json", &host)
}

/// Drops `bridge`'s need for forwarding; the last one out restores the old value.
fn release_forwarding(state: &StateDir, bridge: &str) -> Result<()> {
    let Some(mut host) = state.read::<HostRecord>("host.json")? else {
        return Ok(());
    };
    host.users.remove(bridge);
    if !host.users.is_empty() {
        return state.write("host.json", &host);
    }
    if let Some(before) = host.ip_forward_before.take() {
        nat::write_sysctl("net/ipv4/ip_forward", &before)?;
    }
    state.remove("host.json")
}
// ANCHOR_END: ip_forward

// ANCHOR: setup_container_network
/// Connects a container to a bridge set up by [`setup_bridge`]: allocates its address, creates
/// the veth pair with the peer made directly inside the container's namespace, then inside it
/// sets the address, brings `lo` up and adds the default route. Netlink only: no NAT, no
/// processes spawned. On error nothing is left behind.
pub fn setup_container_network(
    state: &StateDir,
    bridge: &BridgeConfig,
    container: &str,
    netns: &ContainerNetns,
) -> Result<Attachment> {
    setup_container_network_at(state, bridge, container, netns, None)
}
// ANCHOR_END: setup_container_network

// ANCHOR: setup_container_network_at
/// [`setup_container_network`] with the container's address chosen (`--ip`) when `address`
/// is given.
pub fn setup_container_network_at(
    state: &StateDir,
    bridge: &BridgeConfig,
    container: &str,
    netns: &ContainerNetns,
    address: Option<Ipv4Addr>,
) -> Result<Attachment> {
    let endpoint = Endpoint {
        interface: CONTAINER_INTERFACE,
        address,
        default_route: true,
        derived_mac: false,
    };
    setup_endpoint(state, bridge, container, netns, &endpoint)
}
// ANCHOR_END: setup_container_network_at

// ANCHOR: endpoint
/// Where and how a container joins one more bridge: the interface inside its namespace
/// (`eth0`, `eth1`, ...), the address (`--ip`, else the next free one) and whether the
/// default route goes through this bridge's gateway.
#[derive(Debug, Clone)]
pub struct Endpoint<'a> {
    pub interface: &'a str,
    pub address: Option<Ipv4Addr>,
    pub default_route: bool,
    /// The inside end's MAC derived from its address, as Docker's ([`mac_of`]), else random.
    pub derived_mac: bool,
}

/// Docker's MAC for an address: `02:42:` and the address's four bytes.
pub fn mac_of(address: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = address.octets();
    [0x02, 0x42, a, b, c, d]
}
// ANCHOR_END: endpoint

// ANCHOR: setup_endpoint
/// [`setup_container_network`] for one of several networks of a container (Docker's
/// `network connect`): the veth's inside end is `endpoint.interface`, its host end and the
/// record are named after the container and that interface. The address is allocated under
/// the container's ID: at most one address per network. On error nothing is left behind.
pub fn setup_endpoint(
    state: &StateDir,
    bridge: &BridgeConfig,
    container: &str,
    netns: &ContainerNetns,
    endpoint: &Endpoint<'_>,
) -> Result<Attachment> {
    validate_container_id(container)?;
    validate_ifname(endpoint.interface)?;
    let key = endpoint_key(container, endpoint.interface);
    check_bridge_record(state, bridge)?;
    let (ns, owner) = open_container_netns(netns)?;

    // ANCHOR: endpoint_core
    let mut undo = Undo::default();
    let address = ipam::allocate_requested(
        state,
        &bridge.name,
        bridge.subnet,
        bridge.gateway,
        container,
        owner,
        endpoint.address,
    )?;
    let (state2, net, id) = (state.clone(), bridge.name.clone(), container.to_owned());
    undo.push(move || {
        let _ = ipam::release(&state2, &net, &id);
    });
    let host_veth = host_veth_name(&key);
    let link = VethLink {
        bridge: &bridge.name,
        host_veth: &host_veth,
        address,
        prefix: bridge.subnet.prefix,
        gateway: bridge.gateway,
        mac: endpoint.derived_mac.then(|| mac_of(address)),
    };
    connect_veth_as(&ns, &link, endpoint.interface, endpoint.default_route)
        .with_context(|| format!("connecting container {container} to {}", bridge.name))?;
    // ANCHOR_END: endpoint_core
    hold_host_end(&mut undo, &host_veth)?;
    let attachment = new_attachment(bridge, container, endpoint.interface, host_veth, address);
    state.write_unsynced(&container_file(&key), &attachment)?;
    undo.commit();
    Ok(attachment)
}
// ANCHOR_END: setup_endpoint

// ANCHOR: check_bridge_record
/// Checks that the bridge's record exists and has the subnet the caller expects: a container
/// joins only a network whose bridge is set up, and never one recreated with another subnet.
fn check_bridge_record(state: &StateDir, bridge: &BridgeConfig) -> Result<()> {
    let record: BridgeRecord = state.read(&bridge_file(&bridge.name))?.with_context(|| {
        format!(
            "network {} is not set up (create its bridge first)",
            bridge.name
        )
    })?;
    if record.subnet != bridge.subnet {
        bail!(
            "bridge {} uses subnet {}, not {}",
            bridge.name,
            record.subnet,
            bridge.subnet
        );
    }
    Ok(())
}
// ANCHOR_END: check_bridge_record

// ANCHOR: open_container_netns
/// Opens the container's network namespace and names the owner of its address: the init
/// process (by pid and start time) or the pinned namespace file (by path and inode), so the
/// address pool can tell a live owner from a stale one.
fn open_container_netns(netns: &ContainerNetns) -> Result<(Netns, Owner)> {
    Ok(match netns {
        ContainerNetns::Pid(pid) => (Netns::of_pid(*pid)?, Owner::process(*pid)?),
        ContainerNetns::Pinned(path) => {
            let ns = Netns::open(path)?;
            let inode = ns.id()?.1;
            (
                ns,
                Owner::PinnedNetns {
                    path: path.clone(),
                    inode,
                },
            )
        }
    })
}
// ANCHOR_END: open_container_netns

// ANCHOR: hold_host_end
/// Pushes the undo that deletes the host end (deleting it deletes the pair), then turns
/// hairpin mode on for it, as Docker's bridge ports without its userland proxy: a container
/// reaches its own published port on the host's address.
fn hold_host_end(undo: &mut Undo, host_veth: &str) -> Result<()> {
    let veth = host_veth.to_owned();
    undo.push(move || {
        if let Ok(mut nl) = Netlink::open() {
            let _ = delete_link_if_present(&mut nl, &veth);
        }
    });
    let mut nl = Netlink::open().context("opening a netlink socket")?;
    let port = nl
        .link_index(host_veth)?
        .with_context(|| format!("{host_veth} vanished after creation"))?;
    nl.set_hairpin(port)
        .with_context(|| format!("turning hairpin mode on for {host_veth}"))
}
// ANCHOR_END: hold_host_end

/// The record of a new endpoint: no published ports and no NAT rules yet.
fn new_attachment(
    bridge: &BridgeConfig,
    container: &str,
    interface: &str,
    host_veth: String,
    address: Ipv4Addr,
) -> Attachment {
    Attachment {
        container: container.to_owned(),
        bridge: bridge.name.clone(),
        host_veth,
        interface: interface.to_owned(),
        address,
        prefix: bridge.subnet.prefix,
        gateway: bridge.gateway,
        ports: Vec::new(),
        rules: Vec::new(),
    }
}

/// The netlink part of connecting a container: what the bench times against `ip`.
#[derive(Debug, Clone)]
pub struct VethLink<'a> {
    pub bridge: &'a str,
    pub host_veth: &'a str,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// The inside end's MAC address, given at creation (`None`: the kernel's random one).
    pub mac: Option<[u8; 6]>,
}

// ANCHOR: connect_veth
/// Seven netlink requests: the bridge's index, the veth pair (host end up and on the bridge,
/// peer `eth0` already inside `ns`), then inside `ns` the index of `eth0`, `eth0` up, its
/// address, `lo` up and the default route. On error the pair is deleted again.
pub fn connect_veth(ns: &Netns, link: &VethLink<'_>) -> Result<()> {
    connect_veth_as(ns, link, CONTAINER_INTERFACE, true)
}

/// [`connect_veth`] with the inside end named `interface`, and the default route only when
/// `default_route` (a container's further networks only get their subnet's route).
pub fn connect_veth_as(
    ns: &Netns,
    link: &VethLink<'_>,
    interface: &str,
    default_route: bool,
) -> Result<()> {
    let mut host = Netlink::open().context("opening a netlink socket")?;
    let bridge_index = host
        .link_index(link.bridge)?
        .with_context(|| format!("bridge {} does not exist", link.bridge))?;
    let master = Some(bridge_index);
    match link.mac {
        Some(mac) => host.create_veth_with_mac(link.host_veth, interface, ns.fd(), master, mac),
        None => host.create_veth(link.host_veth, interface, ns.fd(), master, None),
    }
    .with_context(|| format!("creating veth pair {}/{interface}", link.host_veth))?;
    let inside = || -> Result<()> {
        let mut nl = ns.netlink()?;
        let eth0 = nl
            .link_index(interface)?
            .with_context(|| format!("{interface} is missing in {}", ns.origin.display()))?;
        nl.set_up(eth0, interface, None)
            .with_context(|| format!("bringing {interface} up"))?;
        nl.add_address(eth0, link.address, link.prefix)
            .with_context(|| format!("adding {}/{} to {interface}", link.address, link.prefix))?;
        nl.set_up(LOOPBACK_INDEX, "lo", None)
            .context("bringing lo up")?;
        if default_route {
            nl.add_default_route(link.gateway, eth0)
                .with_context(|| format!("adding the default route via {}", link.gateway))?;
        }
        Ok(())
    };
    if let Err(err) = inside() {
        let _ = delete_link_if_present(&mut host, link.host_veth);
        return Err(err);
    }
    Ok(())
}
// ANCHOR_END: connect_veth

/// The attachment of `container`, if it has one.
pub fn attachment(state: &StateDir, container: &str) -> Result<Option<Attachment>> {
    validate_container_id(container)?;
    state.read(&container_file(container))
}

/// Every container attached to any bridge in this state root.
pub fn attachments(state: &StateDir) -> Result<Vec<Attachment>> {
    let mut out = Vec::new();
    for id in state.list("containers")? {
        if let Some(att) = state.read::<Attachment>(&container_file(&id))? {
            out.push(att);
        }
    }
    Ok(out)
}

/// The record of bridge `name`, if minidock set it up.
pub fn bridge(state: &StateDir, name: &str) -> Result<Option<BridgeRecord>> {
    validate_ifname(name)?;
    state.read(&bridge_file(name))
}

/// Every bridge set up in this state root.
pub fn bridges(state: &StateDir) -> Result<Vec<BridgeRecord>> {
    let mut out = Vec::new();
    for name in state.list("bridges")? {
        if let Some(rec) = state.read::<BridgeRecord>(&bridge_file(&name))? {
            out.push(rec);
        }
    }
    Ok(out)
}

// ANCHOR: publish
/// Publishes container ports on the host (`-p [IP:]HOST:CTR[/proto]`): two DNAT rules per
/// port, with the bridge's NAT backend. A `host_port` of 0 gets the first free port of the
/// host's ephemeral range (`net.ipv4.ip_local_port_range`), as Docker's port allocator does;
/// the ports actually used are in the container's [`Attachment::ports`]. Refuses a host port
/// that another container publishes or that a host program listens on (DNAT would silently
/// steal its traffic), with a [`PortAllocated`] error.
pub fn publish(
    state: &StateDir,
    container: &str,
    ports: &[PortMapping],
) -> Result<Vec<AppliedRule>> {
    validate_container_id(container)?;
    let _lock = state.lock()?;
    let mut att: Attachment = state
        .read(&container_file(container))?
        .with_context(|| format!("container {container} has no network (set it up first)"))?;
    let bridge: BridgeRecord = state
        .read(&bridge_file(&att.bridge))?
        .with_context(|| format!("network {} is not set up", att.bridge))?;
    let backend = bridge.backend.with_context(|| {
        format!(
            "network {} was set up without NAT, so it cannot publish ports",
            att.bridge
        )
    })?;
    let chosen = choose_ports(state, ports)?;
    let specs: Vec<_> = chosen
        .iter()
        .flat_map(|p| nat::publish_rules(container, *p, att.address))
        .collect();
    let added = nat::add_rules(backend, &specs)?;
    att.rules.extend(added.iter().cloned());
    att.ports.extend_from_slice(&chosen);
    if let Err(err) = state.write_unsynced(&container_file(container), &att) {
        let reversed: Vec<AppliedRule> = added.iter().rev().cloned().collect();
        let _ = nat::delete_rules(&reversed);
        return Err(err);
    }
    Ok(added)
}
// ANCHOR_END: publish

// ANCHOR: choose_ports
/// The host ports of `ports`: each one given, checked to be free ([`check_port`]), and each
/// 0 replaced by a free ephemeral port.
fn choose_ports(state: &StateDir, ports: &[PortMapping]) -> Result<Vec<PortMapping>> {
    let others = attachments(state)?;
    let mut taken: Vec<PortMapping> = others.iter().flat_map(|a| a.ports.clone()).collect();
    let mut chosen = Vec::with_capacity(ports.len());
    for p in ports {
        let p = if p.host_port == 0 {
            ephemeral_port(*p, &taken)?
        } else {
            check_port(*p, &taken, &chosen, &others)?;
            *p
        };
        taken.push(p);
        chosen.push(p);
    }
    Ok(chosen)
}
// ANCHOR_END: choose_ports

/// A host port that cannot be published: given twice, published by another container
/// (`by`), or in use by a program of the host (`by` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortAllocated {
    pub mapping: PortMapping,
    pub by: Option<String>,
    pub twice: bool,
}

impl std::fmt::Display for PortAllocated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (port, proto) = (self.mapping.host_port, self.mapping.protocol.name());
        match (&self.by, self.twice) {
            (_, true) => write!(f, "host port {port}/{proto} is given twice"),
            (Some(other), _) => write!(
                f,
                "host port {port}/{proto} is already published by container {other}"
            ),
            (None, _) => write!(f, "host port {port}/{proto} is already in use on this host"),
        }
    }
}

impl std::error::Error for PortAllocated {}

/// Two mappings need the same host port: same port and protocol, and the same host address
/// or either one on every address.
fn same_host_port(a: &PortMapping, b: &PortMapping) -> bool {
    a.host_port == b.host_port
        && a.protocol == b.protocol
        && (a.host_ip.is_none() || b.host_ip.is_none() || a.host_ip == b.host_ip)
}

fn check_port(
    p: PortMapping,
    taken: &[PortMapping],
    chosen: &[PortMapping],
    others: &[Attachment],
) -> Result<()> {
    let refuse = |by: Option<String>, twice: bool| {
        Err(PortAllocated {
            mapping: p,
            by,
            twice,
        }
        .into())
    };
    if chosen.iter().any(|q| same_host_port(q, &p)) {
        return refuse(None, true);
    }
    if taken.iter().any(|q| same_host_port(q, &p)) {
        let by = others
            .iter()
            .find(|a| a.ports.iter().any(|q| same_host_port(q, &p)))
            .map(|a| a.container.clone());
        return refuse(by, false);
    }
    if !host_port_is_free(p) {
        return refuse(None, false);
    }
    Ok(())
}

/// The first port of `net.ipv4.ip_local_port_range` that no container publishes and no host
/// program holds, for `p`'s protocol and address.
fn ephemeral_port(p: PortMapping, taken: &[PortMapping]) -> Result<PortMapping> {
    let range = nat::read_sysctl("net/ipv4/ip_local_port_range")?;
    let mut bounds = range.split_whitespace().map(|n| n.parse::<u16>());
    let (Some(Ok(low)), Some(Ok(high))) = (bounds.next(), bounds.next()) else {
        bail!("cannot parse net.ipv4.ip_local_port_range {range:?}");
    };
    (low..=high)
        .map(|port| PortMapping {
            host_port: port,
            ..p
        })
        .find(|q| !taken.iter().any(|t| same_host_port(t, q)) && host_port_is_free(*q))
        .with_context(|| format!("no free host port in {low}-{high}"))
}

/// True when nothing on the host is bound to the port (we can bind it ourselves).
fn host_port_is_free(p: PortMapping) -> bool {
    let ip = p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    match p.protocol {
        Protocol::Tcp => std::net::TcpListener::bind((ip, p.host_port)).is_ok(),
        Protocol::Udp => std::net::UdpSocket::bind((ip, p.host_port)).is_ok(),
    }
}

// ANCHOR: teardown_container_network
/// Undoes [`setup_container_network`] and [`publish`] for every network of the container:
/// deletes its rules and its veth pairs (both ends go together) and releases its addresses.
/// Idempotent; a rule that cannot be deleted stays in the record so a second teardown can
/// retry.
pub fn teardown_container_network(state: &StateDir, container: &str) -> Result<()> {
    validate_container_id(container)?;
    let mut nl = Netlink::open().context("opening a netlink socket")?;
    let endpoints = container_attachments(state, container)?;
    if endpoints.is_empty() {
        // No record (a crash before it was written): remove what can be found by name.
        delete_link_if_present(&mut nl, &host_veth_name(container))?;
        for network in state.list("ipam")? {
            ipam::release(state, &network, container)?;
        }
        return Ok(());
    }
    let mut first_error = None;
    for att in endpoints {
        if let Err(err) = teardown_attachment(state, &mut nl, att) {
            first_error.get_or_insert(err);
        }
    }
    match first_error {
        None => Ok(()),
        Some(err) => Err(err),
    }
}
// ANCHOR_END: teardown_container_network

// ANCHOR: release_container_network
/// [`teardown_container_network`] for a container whose processes are gone, with the pin of
/// its namespace at `pin` (unpinned here). A veth pair dies with either namespace it joins:
/// once unpinned, a namespace that nothing else holds is freed and the kernel deletes its
/// pairs itself, in the background (`cleanup_net`), so the pairs are deleted here only when a
/// process still lives inside it ([`netns::has_processes`]) or no pin tells (a crash). That
/// saves the RCU grace period each `RTM_DELLINK` waits for. Rules first, records last, so a
/// crash half-way leaves records for the next teardown. Idempotent.
pub fn release_container_network(state: &StateDir, container: &str, pin: &Path) -> Result<()> {
    validate_container_id(container)?;
    let endpoints = container_attachments(state, container)?;
    let pinned = netns::pinned_id(pin);
    let kernel_deletes = pinned.is_some_and(|id| !netns::has_processes(id));
    let mut kept = Vec::with_capacity(endpoints.len());
    for mut att in endpoints {
        let rules = delete_attachment_rules(state, &mut att);
        kept.push((att, rules));
    }
    netns::unpin(pin)?;
    if kept.is_empty() {
        // No record: released already, or a crash before the record was written, which
        // leaves the pin (it is made first) and perhaps a pair found by its name.
        if pinned.is_some() && !kernel_deletes {
            let mut nl = Netlink::open().context("opening a netlink socket")?;
            delete_link_if_present(&mut nl, &host_veth_name(container))?;
        }
        for network in state.list("ipam")? {
            ipam::release(state, &network, container)?;
        }
        return Ok(());
    }
    let mut nl = Netlink::open().context("opening a netlink socket")?;
    let mut first_error = None;
    for (att, rules) in kept {
        let link = match kernel_deletes {
            true => Ok(()),
            false => delete_link_if_present(&mut nl, &att.host_veth),
        };
        if let Err(err) = rules
            .and(link)
            .and_then(|()| forget_attachment(state, &att))
        {
            first_error.get_or_insert(err);
        }
    }
    first_error.map_or(Ok(()), Err)
}
// ANCHOR_END: release_container_network

/// Deletes the NAT rules of `att`; those that could not be deleted stay in it (and its
/// record), for the next teardown to retry.
fn delete_attachment_rules(state: &StateDir, att: &mut Attachment) -> Result<()> {
    let reversed: Vec<AppliedRule> = att.rules.iter().rev().cloned().collect();
    let (mut kept, first_error) = nat::delete_rules(&reversed);
    let Some(err) = first_error else {
        att.rules.clear();
        return Ok(());
    };
    kept.reverse();
    att.rules = kept;
    let key = endpoint_key(&att.container, &att.interface);
    state.write_unsynced(&container_file(&key), att)?;
    Err(err.context(format!(
        "tearing down the network of container {}",
        att.container
    )))
}

/// Releases the address of `att` and removes its record.
fn forget_attachment(state: &StateDir, att: &Attachment) -> Result<()> {
    ipam::release(state, &att.bridge, &att.container)?;
    state.remove(&container_file(&endpoint_key(
        &att.container,
        &att.interface,
    )))
}

/// Undoes [`setup_endpoint`] for the container's `interface` only (`network disconnect`):
/// its rules, its veth pair and its address on that network. Idempotent.
pub fn teardown_endpoint(state: &StateDir, container: &str, interface: &str) -> Result<()> {
    validate_container_id(container)?;
    validate_ifname(interface)?;
    let key = endpoint_key(container, interface);
    let Some(att) = state.read::<Attachment>(&container_file(&key))? else {
        return Ok(());
    };
    let mut nl = Netlink::open().context("opening a netlink socket")?;
    teardown_attachment(state, &mut nl, att)
}

fn teardown_attachment(state: &StateDir, nl: &mut Netlink, mut att: Attachment) -> Result<()> {
    let key = endpoint_key(&att.container, &att.interface);
    let reversed: Vec<AppliedRule> = att.rules.iter().rev().cloned().collect();
    let (mut kept, mut first_error) = nat::delete_rules(&reversed);
    if let Err(err) = delete_link_if_present(nl, &att.host_veth) {
        first_error.get_or_insert(err);
    }
    ipam::release(state, &att.bridge, &att.container)?;
    match first_error {
        None => state.remove(&container_file(&key)),
        Some(err) => {
            kept.reverse();
            att.rules = kept;
            state.write_unsynced(&container_file(&key), &att)?;
            let container = att.container.clone();
            Err(err.context(format!("tearing down the network of container {container}")))
        }
    }
}

/// Every endpoint of `container`, by interface (`eth0` first).
pub fn container_attachments(state: &StateDir, container: &str) -> Result<Vec<Attachment>> {
    validate_container_id(container)?;
    let prefix = format!("{container}.");
    let mut out = Vec::new();
    for key in state.list("containers")? {
        if key != container && !key.starts_with(&prefix) {
            continue;
        }
        if let Some(att) = state.read::<Attachment>(&container_file(&key))?
            && att.container == container
        {
            out.push(att);
        }
    }
    out.sort_by_key(|a| interface_number(&a.interface));
    Ok(out)
}

/// `ethN`'s N (`u32::MAX` for another name), to order a container's interfaces.
pub fn interface_number(name: &str) -> u32 {
    name.strip_prefix("eth")
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

/// Points the default route of the namespace `ns` at `gateway` through `interface` (the
/// network that gives the container its way out), replacing the one it had.
pub fn set_default_route(ns: &Netns, interface: &str, gateway: Ipv4Addr) -> Result<()> {
    let mut nl = ns.netlink()?;
    let index = nl
        .link_index(interface)?
        .with_context(|| format!("{interface} is missing in {}", ns.origin.display()))?;
    nl.replace_default_route(gateway, index)
        .with_context(|| format!("setting the default route via {gateway} dev {interface}"))
}

/// Undoes [`setup_bridge`], after tearing down every container still attached to it. Only
/// touches a bridge that this state root's records say minidock created.
pub fn teardown_bridge(state: &StateDir, name: &str) -> Result<()> {
    validate_ifname(name)?;
    for att in attachments(state)? {
        if att.bridge == name {
            teardown_container_network(state, &att.container)?;
        }
    }
    let _lock = state.lock()?;
    let Some(record) = state.read::<BridgeRecord>(&bridge_file(name))? else {
        return Ok(());
    };
    let mut nl = Netlink::open().context("opening a netlink socket")?;
    remove_bridge_locked(state, &mut nl, &record)
}

fn remove_bridge_locked(state: &StateDir, nl: &mut Netlink, record: &BridgeRecord) -> Result<()> {
    let reversed: Vec<AppliedRule> = record.rules.iter().rev().cloned().collect();
    if let (_, Some(err)) = nat::delete_rules(&reversed) {
        return Err(err);
    }
    if record.backend == Some(Backend::Nft) {
        nat::remove_nft_table_if_empty()?;
    }
    delete_link_if_present(nl, &record.name)?;
    if record.backend.is_some() {
        release_forwarding(state, &record.name)?;
    }
    ipam::remove_pool(state, &record.name)?;
    state.remove(&bridge_file(&record.name))
}

/// Links with their addresses, then routes, in the spirit of `ip -br addr; ip route` (read
/// over netlink from whatever namespace `nl` belongs to).
pub fn describe(nl: &mut Netlink) -> Result<String> {
    let links = nl.links()?;
    let addrs = nl.addresses()?;
    let routes = nl.routes()?;
    let name_of = |index: u32| {
        links
            .iter()
            .find(|l| l.index == index)
            .map_or(index.to_string(), |l| l.name.clone())
    };
    let mut out = String::new();
    for link in &links {
        let mine: Vec<String> = addrs
            .iter()
            .filter(|a| a.index == link.index)
            .map(|a| format!("{}/{}", a.address, a.prefix))
            .collect();
        let mut line = format!(
            "  {:<14} {:<5}",
            link.name,
            if link.up { "UP" } else { "DOWN" }
        );
        if !mine.is_empty() {
            line = format!("{line} {}", mine.join(" "));
        }
        if let Some(master) = link.master {
            line = format!("{line} master {}", name_of(master));
        }
        let _ = writeln!(out, "{line}");
    }
    for route in &routes {
        let dst = if route.prefix == 0 {
            "default".to_owned()
        } else {
            format!("{}/{}", route.destination, route.prefix)
        };
        let via = route
            .gateway
            .map(|g| format!(" via {g}"))
            .unwrap_or_default();
        let dev = route
            .oif
            .map(|i| format!(" dev {}", name_of(i)))
            .unwrap_or_default();
        let _ = writeln!(out, "  route {dst}{via}{dev}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_ifnamsiz_and_are_stable() {
        let a = host_veth_name("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
        assert_eq!(a.len(), 12);
        assert!(validate_ifname(&a).is_ok());
        assert_eq!(host_veth_name("web"), host_veth_name("web"));
        assert_ne!(host_veth_name("web"), host_veth_name("db"));
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(validate_ifname("a-very-long-bridge-name").is_err());
        assert!(validate_ifname("br/0").is_err());
        assert!(validate_ifname("").is_err());
        assert!(validate_ifname("minidock0").is_ok());
        assert!(validate_container_id("../etc").is_err());
        assert!(validate_container_id("web-1").is_ok());
    }

    #[test]
    fn a_gateway_outside_the_subnet_is_refused() {
        let mut cfg = BridgeConfig::default();
        assert!(cfg.validate().is_ok());
        cfg.gateway = Ipv4Addr::new(10, 89, 0, 1);
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("not a host address of subnet 10.88.0.0/16"),
            "{err}"
        );
    }

    #[test]
    fn undo_runs_in_reverse_unless_committed() {
        use std::cell::RefCell;
        use std::rc::Rc;
        let log = Rc::new(RefCell::new(Vec::new()));
        {
            let mut undo = Undo::default();
            for i in 0..3 {
                let log = log.clone();
                undo.push(move || log.borrow_mut().push(i));
            }
        }
        assert_eq!(*log.borrow(), vec![2, 1, 0]);
        let mut undo = Undo::default();
        let l = log.clone();
        undo.push(move || l.borrow_mut().push(9));
        undo.commit();
        assert_eq!(*log.borrow(), vec![2, 1, 0]);
    }
}
