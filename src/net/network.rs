//! Network records: what `docker network inspect` shows, one JSON file per network in
//! `networks/<id>.json` under the network state dir, read and changed under its `flock(2)`
//! and replaced atomically.
//!
//! The records are Docker's (Engine API 1.41 `Network`): `Name`, a 64-hex `Id`, `Driver`
//! (`bridge`, or `host`/`null` for the two predefined networks of those names), `Scope`
//! `local`, `IPAM.Config` with the `Subnet` and `Gateway`, `Labels`, `Internal`, `Created`
//! and `Options`. [`ensure_default`] makes the predefined `bridge`, `host` and `none`
//! networks, as dockerd does when it starts; the `bridge` one is the bridge `minidock0`, on
//! the first subnet of Docker's default address pools that no other network and no host
//! route uses. A record is only a description: the bridge itself is made by
//! [`super::setup_bridge`] when the first container joins (see [`Network::bridge_config`]).

use super::ipam::Subnet;
use super::netlink::Netlink;
use super::state::StateDir;
use super::{BridgeConfig, validate_ifname};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The name of the default network, as Docker's.
pub const DEFAULT_NETWORK: &str = "bridge";
/// The bridge interface of the default network (Docker's is `docker0`).
pub const DEFAULT_BRIDGE: &str = "minidock0";
/// The `Options` key naming a bridge network's interface.
pub const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";
/// The names Docker reserves for its predefined networks.
pub const PREDEFINED: [&str; 3] = [DEFAULT_NETWORK, "host", "none"];

/// One network, serialized in the field order and with the names of Docker's
/// `NetworkResource` (`docker network inspect`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    pub name: String,
    /// 64 lowercase hex digits.
    pub id: String,
    /// RFC 3339 with nanoseconds, UTC.
    pub created: String,
    /// Always `local`.
    pub scope: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_from: ConfigFrom,
    pub config_only: bool,
    /// Always empty in the stored record; `inspect` fills it from the live attachments.
    pub containers: BTreeMap<String, serde_json::Value>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// `IPAM`: the address management of a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    /// Always `default`.
    pub driver: String,
    pub options: Option<BTreeMap<String, String>>,
    pub config: Vec<IpamConfig>,
}

/// One entry of `IPAM.Config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
}

/// `ConfigFrom`: always `{"Network": ""}` here (no config-only networks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigFrom {
    pub network: String,
}

/// What `network create` asks for; `None` subnet means the next free default pool.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub subnet: Option<Subnet>,
    /// Needs `subnet`; defaults to the subnet's first host address.
    pub gateway: Option<Ipv4Addr>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    /// Driver options (`-o`); `com.docker.network.bridge.name` names the bridge.
    pub options: BTreeMap<String, String>,
}

impl Network {
    /// The subnet and gateway of a bridge network (`None` for `host` and `none`).
    pub fn ipv4(&self) -> Option<&IpamConfig> {
        self.ipam.config.first()
    }

    /// The bridge interface: the `com.docker.network.bridge.name` option, else Docker's
    /// `br-` and the first 12 digits of the ID.
    pub fn bridge_name(&self) -> String {
        match self.options.get(BRIDGE_NAME_OPTION) {
            Some(name) => name.clone(),
            None => format!("br-{}", &self.id[..12]),
        }
    }

    /// What [`super::setup_bridge`] needs to make this network's bridge.
    pub fn bridge_config(&self) -> Result<BridgeConfig> {
        if self.driver != "bridge" {
            bail!(
                "network {} uses the {} driver, which has no bridge",
                self.name,
                self.driver
            );
        }
        let ipv4 = self
            .ipv4()
            .with_context(|| format!("network {} has no IPv4 subnet", self.name))?;
        let cfg = BridgeConfig {
            name: self.bridge_name(),
            subnet: ipv4.subnet,
            gateway: ipv4.gateway,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// True for `bridge`, `host` and `none`, which cannot be created or removed.
    pub fn is_predefined(&self) -> bool {
        PREDEFINED.contains(&self.name.as_str())
    }
}

fn network_file(id: &str) -> String {
    format!("networks/{id}.json")
}

// ANCHOR: default_pools
/// Docker's default local address pools (libnetwork `ipamutils`): 172.17.0.0/16 to
/// 172.31.0.0/16, then 192.168.0.0/16 cut into /20s, in that order.
pub fn default_pools() -> impl Iterator<Item = Subnet> {
    let sixteens = (17..=31u8).map(|b| Subnet::of(Ipv4Addr::new(172, b, 0, 0), 16));
    let twenties = (0..16u8).map(|i| Subnet::of(Ipv4Addr::new(192, 168, i * 16, 0), 20));
    sixteens.chain(twenties)
}

/// The first default pool that overlaps neither a subnet in `taken` (other networks) nor a
/// route of the host (`routes`; the default route, prefix 0, does not count, as in Docker's
/// `CheckRouteOverlaps`).
pub fn choose_subnet(taken: &[Subnet], routes: &[Subnet]) -> Option<Subnet> {
    default_pools().find(|pool| {
        !taken.iter().any(|t| t.overlaps(pool))
            && !routes.iter().any(|r| r.prefix > 0 && r.overlaps(pool))
    })
}
// ANCHOR_END: default_pools

/// The destinations of the host's IPv4 routes (main table) and of its addresses' subnets.
fn host_subnets() -> Result<Vec<Subnet>> {
    let mut nl = Netlink::open().context("opening a netlink socket")?;
    let mut out: Vec<Subnet> = nl
        .routes()
        .context("listing the host's routes")?
        .iter()
        .map(|r| Subnet::of(r.destination, r.prefix))
        .collect();
    for addr in nl.addresses().context("listing the host's addresses")? {
        if !addr.address.is_loopback() {
            out.push(Subnet::of(addr.address, addr.prefix));
        }
    }
    Ok(out)
}

/// A new network ID: 32 random bytes as 64 hex digits.
fn new_id() -> Result<String> {
    crate::container::new_id()
}

/// Docker's rule for network names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, here at most 128 bytes.
pub fn validate_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        bail!("invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
    }
    Ok(())
}

fn record(
    name: &str,
    driver: &str,
    config: Vec<IpamConfig>,
    options: BTreeMap<String, String>,
) -> Result<Network> {
    Ok(Network {
        name: name.to_owned(),
        id: new_id()?,
        created: crate::state::rfc3339(std::time::SystemTime::now()),
        scope: "local".into(),
        driver: driver.into(),
        enable_ipv6: false,
        ipam: Ipam {
            driver: "default".into(),
            options: None,
            config,
        },
        internal: false,
        attachable: false,
        ingress: false,
        config_from: ConfigFrom::default(),
        config_only: false,
        containers: BTreeMap::new(),
        options,
        labels: BTreeMap::new(),
    })
}

/// The options Docker gives its default bridge, with our interface name.
fn default_bridge_options() -> BTreeMap<String, String> {
    [
        ("com.docker.network.bridge.default_bridge", "true"),
        ("com.docker.network.bridge.enable_icc", "true"),
        ("com.docker.network.bridge.enable_ip_masquerade", "true"),
        ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
        (BRIDGE_NAME_OPTION, DEFAULT_BRIDGE),
        ("com.docker.network.driver.mtu", "1500"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn read_all(state: &StateDir) -> Result<Vec<Network>> {
    let mut out = Vec::new();
    for id in state.list("networks")? {
        if let Some(net) = state.read::<Network>(&network_file(&id))? {
            out.push(net);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn taken_subnets(networks: &[Network]) -> Vec<Subnet> {
    networks
        .iter()
        .filter_map(|n| n.ipv4().map(|c| c.subnet))
        .collect()
}

// ANCHOR: ensure_default
/// Makes the predefined networks when they are missing (`bridge` on `minidock0`, `host`,
/// `none`) and returns the `bridge` one. Records only: no link is made here.
pub fn ensure_default(state: &StateDir) -> Result<Network> {
    let _lock = state.lock()?;
    let mut all = read_all(state)?;
    for (name, driver) in [("host", "host"), ("none", "null")] {
        if !all.iter().any(|n| n.name == name) {
            let net = record(name, driver, Vec::new(), BTreeMap::new())?;
            state.write(&network_file(&net.id), &net)?;
            all.push(net);
        }
    }
    if let Some(net) = all.iter().find(|n| n.name == DEFAULT_NETWORK) {
        return Ok(net.clone());
    }
    let subnet = choose_subnet(&taken_subnets(&all), &host_subnets()?).context(
        "no free subnet for the default bridge: every default pool overlaps a host route",
    )?;
    let config = vec![IpamConfig {
        subnet,
        gateway: subnet.first_host(),
    }];
    let net = record(DEFAULT_NETWORK, "bridge", config, default_bridge_options())?;
    state.write(&network_file(&net.id), &net)?;
    Ok(net)
}
// ANCHOR_END: ensure_default

/// Makes a user-defined bridge network. Errors as Docker's: a name in use (`network with
/// name NAME already exists`), a predefined name, a subnet overlapping another network's
/// (`Pool overlaps with other one on this address space`), a gateway outside the subnet.
pub fn create(state: &StateDir, req: &CreateRequest) -> Result<Network> {
    validate_name(&req.name)?;
    if PREDEFINED.contains(&req.name.as_str()) {
        bail!(
            "operation is not permitted on predefined {} network",
            req.name
        );
    }
    if let Some(ifname) = req.options.get(BRIDGE_NAME_OPTION) {
        validate_ifname(ifname)?;
    }
    let _lock = state.lock()?;
    let all = read_all(state)?;
    if all.iter().any(|n| n.name == req.name) {
        bail!("network with name {} already exists", req.name);
    }
    let taken = taken_subnets(&all);
    let subnet = match req.subnet {
        Some(subnet) => {
            if taken.iter().any(|t| t.overlaps(&subnet)) {
                bail!("Pool overlaps with other one on this address space");
            }
            subnet
        }
        None if req.gateway.is_some() => bail!("a gateway needs a subnet (--subnet)"),
        None => choose_subnet(&taken, &host_subnets()?)
            .context("could not find an available, non-overlapping IPv4 address pool")?,
    };
    let gateway = req.gateway.unwrap_or_else(|| subnet.first_host());
    if !subnet.contains(gateway) || gateway == subnet.network || gateway == subnet.broadcast() {
        bail!("no matching subnet for gateway {gateway}");
    }
    let mut net = record(
        &req.name,
        "bridge",
        vec![IpamConfig { subnet, gateway }],
        req.options.clone(),
    )?;
    net.ipam.options = Some(BTreeMap::new());
    net.internal = req.internal;
    net.labels = req.labels.clone();
    if let Some(other) = all.iter().find(|n| n.bridge_name() == net.bridge_name()) {
        bail!(
            "bridge {} is already used by network {}",
            net.bridge_name(),
            other.name
        );
    }
    state.write(&network_file(&net.id), &net)?;
    crate::events::network_in(state, &net.id, &net.name, &net.driver, "create", &[]);
    Ok(net)
}

/// Every network, sorted by name.
pub fn list(state: &StateDir) -> Result<Vec<Network>> {
    read_all(state)
}

// ANCHOR: find_network
/// Looks a network up as dockerd does: by full ID, then by name, then by a unique ID prefix.
/// `Ok(None)` when nothing matches; an error when a prefix matches several.
pub fn find(state: &StateDir, term: &str) -> Result<Option<Network>> {
    let all = read_all(state)?;
    if let Some(net) = all.iter().find(|n| n.id == term) {
        return Ok(Some(net.clone()));
    }
    if let Some(net) = all.iter().find(|n| n.name == term) {
        return Ok(Some(net.clone()));
    }
    if term.is_empty() {
        return Ok(None);
    }
    let matches: Vec<&Network> = all.iter().filter(|n| n.id.starts_with(term)).collect();
    match matches.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((*one).clone())),
        many => bail!(
            "network {term} is ambiguous ({} matches found based on ID prefix)",
            many.len()
        ),
    }
}
// ANCHOR_END: find_network

/// [`find`], with dockerd's error when nothing matches: `network NAME not found`.
pub fn get(state: &StateDir, term: &str) -> Result<Network> {
    find(state, term)?.with_context(|| format!("network {term} not found"))
}

/// Removes network `term`'s record, after tearing its bridge down. Refused for the
/// predefined networks and while a container is attached (Docker's words for both).
pub fn remove(state: &StateDir, term: &str) -> Result<Network> {
    let net = get(state, term)?;
    if net.is_predefined() {
        bail!(
            "{} is a pre-defined network and cannot be removed",
            net.name
        );
    }
    if net.driver == "bridge" {
        let bridge = net.bridge_name();
        if super::attachments(state)?
            .iter()
            .any(|a| a.bridge == bridge)
        {
            bail!(
                "error while removing network: network {} id {} has active endpoints",
                net.name,
                net.id
            );
        }
        super::teardown_bridge(state, &bridge)?;
    }
    let _lock = state.lock()?;
    state.remove(&network_file(&net.id))?;
    crate::events::network_in(state, &net.id, &net.name, &net.driver, "destroy", &[]);
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    #[test]
    fn the_first_pool_is_dockers_172_17() {
        assert_eq!(choose_subnet(&[], &[]), Some(subnet("172.17.0.0/16")));
        let default_route = Subnet::of(Ipv4Addr::UNSPECIFIED, 0);
        assert_eq!(
            choose_subnet(&[], &[default_route]),
            Some(subnet("172.17.0.0/16"))
        );
    }

    #[test]
    fn pools_overlapping_routes_or_networks_are_skipped() {
        let routes = [subnet("172.17.5.0/24"), subnet("172.16.0.0/12")];
        assert_eq!(choose_subnet(&[], &routes), Some(subnet("192.168.0.0/20")));
        let taken = [subnet("172.17.0.0/16"), subnet("172.18.0.0/16")];
        assert_eq!(choose_subnet(&taken, &[]), Some(subnet("172.19.0.0/16")));
        let all: Vec<Subnet> = default_pools().collect();
        assert_eq!(all.len(), 31);
        assert_eq!(choose_subnet(&all, &[]), None);
    }

    #[test]
    fn records_are_created_found_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let req = CreateRequest {
            name: "web".into(),
            subnet: Some(subnet("10.201.0.0/24")),
            labels: [("a".to_owned(), "b".to_owned())].into(),
            ..CreateRequest::default()
        };
        let net = create(&state, &req).unwrap();
        assert_eq!(net.id.len(), 64);
        assert!(net.id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(net.ipv4().unwrap().gateway, Ipv4Addr::new(10, 201, 0, 1));
        assert_eq!(net.bridge_name(), format!("br-{}", &net.id[..12]));
        let err = create(&state, &req).unwrap_err().to_string();
        assert_eq!(err, "network with name web already exists");
        let clash = CreateRequest {
            name: "other".into(),
            subnet: Some(subnet("10.201.0.0/16")),
            ..CreateRequest::default()
        };
        let err = create(&state, &clash).unwrap_err().to_string();
        assert_eq!(err, "Pool overlaps with other one on this address space");
        assert_eq!(get(&state, "web").unwrap(), net);
        assert_eq!(get(&state, &net.id[..5]).unwrap(), net);
        assert_eq!(get(&state, &net.id).unwrap(), net);
        let err = get(&state, "nope").unwrap_err().to_string();
        assert_eq!(err, "network nope not found");
        assert_eq!(list(&state).unwrap(), vec![net.clone()]);
        let json = serde_json::to_value(&net).unwrap();
        assert_eq!(json["IPAM"]["Config"][0]["Subnet"], "10.201.0.0/24");
        assert_eq!(json["Labels"]["a"], "b");
        assert_eq!(json["Scope"], "local");
        assert_eq!(remove(&state, "web").unwrap().id, net.id);
        assert!(find(&state, "web").unwrap().is_none());
        assert!(
            create(
                &state,
                &CreateRequest {
                    name: "host".into(),
                    ..req.clone()
                }
            )
            .is_err()
        );
        assert!(
            create(
                &state,
                &CreateRequest {
                    name: "-x".into(),
                    ..req
                }
            )
            .is_err()
        );
    }

    #[test]
    fn the_default_networks_are_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let bridge = ensure_default(&state).unwrap();
        assert_eq!(bridge.name, "bridge");
        assert_eq!(bridge.bridge_name(), DEFAULT_BRIDGE);
        assert_eq!(bridge.bridge_config().unwrap().name, DEFAULT_BRIDGE);
        assert_eq!(ensure_default(&state).unwrap(), bridge);
        let names: Vec<String> = list(&state).unwrap().into_iter().map(|n| n.name).collect();
        assert_eq!(names, ["bridge", "host", "none"]);
        let err = remove(&state, "bridge").unwrap_err().to_string();
        assert_eq!(err, "bridge is a pre-defined network and cannot be removed");
    }
}
