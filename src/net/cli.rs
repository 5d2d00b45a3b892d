//! `minidock network create|ls|inspect|rm|prune`: Docker's `docker network` commands over the
//! network records of [`super::network`], with Docker's output shapes and exit codes (a failed
//! request exits 1). The records live in the network state dir `ROOT/network`.

use super::network::{self, CreateRequest, Network};
use super::resolver::{Config, ResolverDir};
use super::{Attachment, StateDir, Subnet};
use crate::cli::Exit;
use crate::cli::code::REQUEST_FAILED;
use crate::container::Paths;
use crate::container::filter::Filters;
use crate::format::{self, Format, Json, Shape};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

/// `minidock network ...`
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks.
    Inspect(InspectArgs),
    /// Remove one or more networks.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks.
    Prune(PruneArgs),
    /// Connect a container to a network.
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(DisconnectArgs),
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container.
    #[arg(long = "alias")]
    pub aliases: Vec<String>,
    /// IPv4 address.
    #[arg(long)]
    pub ip: Option<String>,
    pub network: String,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network.
    #[arg(short, long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Driver to manage the Network (only `bridge`).
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment.
    #[arg(long)]
    pub subnet: Option<String>,
    /// IPv4 Gateway for the master subnet.
    #[arg(long)]
    pub gateway: Option<String>,
    /// Restrict external access to the network.
    #[arg(long)]
    pub internal: bool,
    /// Set metadata on a network (KEY=VALUE).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Set driver specific options (KEY=VALUE).
    #[arg(short = 'o', long = "opt")]
    pub opts: Vec<String>,
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only display network IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate the output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Provide filter values (e.g. "driver=bridge").
    #[arg(short, long = "filter")]
    pub filters: Vec<String>,
    /// Format output using a Go template.
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a Go template.
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Do not error if the network does not exist.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// The network state dir under a minidock root.
pub fn state_dir(root: &Path) -> StateDir {
    StateDir::new(root.join("network"))
}

/// The resolver directory of network `id` (see [`super::resolver`]).
pub fn resolver_dir(state: &StateDir, id: &str) -> ResolverDir {
    ResolverDir::new(state.path(&format!("dns/{id}")))
}

/// Runs one `network` command; returns the exit status.
pub fn run(paths: &Paths, command: &NetworkCommand) -> Result<u8> {
    let state = state_dir(&paths.root);
    network::ensure_default(&state).map_err(failed)?;
    match command {
        NetworkCommand::Create(args) => create(&state, args),
        NetworkCommand::Ls(args) => ls(&state, args),
        NetworkCommand::Inspect(args) => inspect(paths, &state, args),
        NetworkCommand::Rm(args) => rm(&state, args),
        NetworkCommand::Prune(args) => prune(&state, args),
        NetworkCommand::Connect(args) => {
            crate::container::network::connect_network(
                paths,
                &args.network,
                &args.container,
                &args.aliases,
                args.ip.as_deref(),
            )?;
            Ok(0)
        }
        NetworkCommand::Disconnect(args) => {
            crate::container::network::disconnect_network(
                paths,
                &args.network,
                &args.container,
                args.force,
            )?;
            Ok(0)
        }
    }
}

fn failed(err: anyhow::Error) -> anyhow::Error {
    crate::image::cli::request_failed(err)
}

fn key_values(args: &[String]) -> BTreeMap<String, String> {
    args.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (kv.clone(), String::new()),
        })
        .collect()
}

fn create(state: &StateDir, args: &CreateArgs) -> Result<u8> {
    let subnet = args
        .subnet
        .as_deref()
        .map(|s| s.parse::<Subnet>())
        .transpose()
        .map_err(failed)?;
    let gateway = match args.gateway.as_deref() {
        Some(g) => Some(
            g.parse::<Ipv4Addr>()
                .map_err(|_| Exit::new(REQUEST_FAILED, format!("invalid gateway address {g:?}")))?,
        ),
        None => None,
    };
    let req = CreateRequest {
        name: args.name.clone(),
        subnet,
        gateway,
        internal: args.internal,
        labels: key_values(&args.labels),
        options: key_values(&args.opts),
    };
    let net = create_network(state, &args.driver, &req).map_err(failed)?;
    println!("{}", net.id);
    Ok(0)
}

/// `network create`: the record, then its resolver's settings. Only the `bridge` driver is
/// supported (Docker's "plugin not found", exit 1, for any other).
pub fn create_network(state: &StateDir, driver: &str, req: &CreateRequest) -> Result<Network> {
    if driver != "bridge" {
        let msg = format!("plugin \"{driver}\" not found");
        return Err(Exit::new(REQUEST_FAILED, msg).into());
    }
    let net = network::create(state, req)?;
    write_resolver_config(state, &net)?;
    Ok(net)
}

/// The resolver settings of a user network: its name, and the host's resolvers unless it is
/// `--internal`.
pub fn write_resolver_config(state: &StateDir, net: &Network) -> Result<()> {
    let upstream = if net.internal {
        Vec::new()
    } else {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        super::dns::upstream_servers(&text)
    };
    let config = Config {
        network: net.name.clone(),
        upstream,
    };
    resolver_dir(state, &net.id).write_config(&config)
}

/// The containers attached to `net` (by their bridge).
fn attached<'a>(net: &Network, all: &'a [Attachment]) -> Vec<&'a Attachment> {
    if net.driver != "bridge" {
        return Vec::new();
    }
    let bridge = net.bridge_name();
    all.iter().filter(|a| a.bridge == bridge).collect()
}

/// The `--filter` keys of `network ls` (moby `daemon/network/filter.go`).
const LS_KEYS: &[&str] = &["dangling", "driver", "id", "label", "name", "scope", "type"];

fn ls_matches(f: &Filters, net: &Network, in_use: bool) -> bool {
    let custom = !net.is_predefined();
    let label_ok = f.get("label").iter().all(|l| match l.split_once('=') {
        Some((k, v)) => net.labels.get(k).is_some_and(|x| x == v),
        None => net.labels.contains_key(l.as_str()),
    });
    let type_ok = f.get("type").iter().all(|t| match t.as_str() {
        "custom" => custom,
        "builtin" => !custom,
        _ => false,
    });
    let dangling_ok = f.get("dangling").iter().all(|d| match d.as_str() {
        "true" | "1" => custom && !in_use,
        _ => !custom || in_use,
    });
    f.matches("name", &net.name)
        && f.matches("id", &net.id)
        && f.matches("driver", &net.driver)
        && f.matches("scope", &net.scope)
        && label_ok
        && type_ok
        && dangling_ok
}

fn ls_row(net: &Network, no_trunc: bool) -> gotmpl::Value {
    let id = if no_trunc { &net.id } else { &net.id[..12] };
    let labels: Vec<String> = net.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let row = json!({
        "ID": id,
        "Name": net.name,
        "Driver": net.driver,
        "Scope": net.scope,
        "IPv6": net.enable_ipv6.to_string(),
        "Internal": net.internal.to_string(),
        "Labels": labels.join(","),
        "CreatedAt": net.created,
    });
    let shape = Shape {
        maps: &[],
        pointers: &[],
        omitted: &[],
    };
    format::to_value(&Json::of(&row).expect("JSON of JSON"), &shape)
}

const LS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

/// The networks `network ls` shows for `filters` (`KEY=VALUE`; Docker's keys `dangling`,
/// `driver`, `id`, `label`, `name`, `scope`, `type`).
pub fn list(state: &StateDir, filters: &[String]) -> Result<Vec<Network>> {
    let filters = Filters::parse(filters, LS_KEYS)?;
    let attachments = super::attachments(state)?;
    let mut shown = Vec::new();
    for net in network::list(state)? {
        let in_use = !attached(&net, &attachments).is_empty();
        if ls_matches(&filters, &net, in_use) {
            shown.push(net);
        }
    }
    Ok(shown)
}

fn ls(state: &StateDir, args: &LsArgs) -> Result<u8> {
    let rows: Vec<_> = list(state, &args.filters)?
        .iter()
        .map(|net| ls_row(net, args.no_trunc))
        .collect();
    let template = match format::chosen(args.format.as_deref(), args.quiet) {
        Some(t) => t.to_owned(),
        None if args.quiet => "{{.ID}}".to_owned(),
        None => LS_TABLE.to_owned(),
    };
    let fmt = Format::list(&template, &LS_TABLE["table ".len()..])
        .map_err(|e| Exit::new(format::BAD_TEMPLATE, format!("{e:#}")))?;
    let header = format::header(&[
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED AT"),
    ]);
    let text = fmt.render_list(&rows, &header).map_err(failed)?;
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("writing to stdout")?;
    Ok(0)
}

/// Docker's `Containers` entry of `network inspect`.
fn endpoint(paths: &Paths, a: &Attachment) -> serde_json::Value {
    let name = crate::container::state::ContainerState::load(paths, &a.container)
        .ok()
        .flatten()
        .map_or_else(|| a.container.clone(), |c| c.name.clone());
    json!({
        "Name": name,
        "EndpointID": "",
        "MacAddress": mac_text(a.address),
        "IPv4Address": format!("{}/{}", a.address, a.prefix),
        "IPv6Address": "",
    })
}

/// The MAC `run` gives a container's `eth0` (`02:42:` and the address's bytes, as Docker's).
fn mac_text(address: Ipv4Addr) -> String {
    let [a, b, c, d] = address.octets();
    format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// Which objects of a `network inspect` record are Go maps, for `-f`.
const INSPECT_SHAPE: Shape = Shape {
    maps: &["IPAM.Options", "Containers", "Options", "Labels"],
    pointers: &[],
    omitted: &[],
};

fn inspect(paths: &Paths, state: &StateDir, args: &InspectArgs) -> Result<u8> {
    let fmt = args
        .format
        .as_deref()
        .map(Format::inspect)
        .transpose()
        .map_err(|e| Exit::new(format::BAD_TEMPLATE, format!("{e:#}")))?;
    let mut found = Vec::new();
    let mut status = 0;
    for term in &args.networks {
        match inspect_one(paths, state, term) {
            Ok(net) => found.push(net),
            Err(e) => {
                eprintln!("minidock: {}", crate::cli::one_line(&format!("{e:#}")));
                status = REQUEST_FAILED;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    match fmt {
        Some(fmt) => {
            for net in &found {
                let value = format::to_value(&Json::of(net)?, &INSPECT_SHAPE);
                writeln!(out, "{}", fmt.execute(&value).map_err(failed)?)?;
            }
        }
        None => writeln!(out, "{}", crate::image::cli::to_docker_json(&found)?)?,
    }
    Ok(status)
}

/// Network `term` (name, ID or ID prefix) as `network inspect` shows it: `Containers` holds
/// the attached containers' endpoints.
pub fn inspect_one(paths: &Paths, state: &StateDir, term: &str) -> Result<Network> {
    let mut net = network::get(state, term)?;
    for a in attached(&net, &super::attachments(state)?) {
        net.containers
            .insert(a.container.clone(), endpoint(paths, a));
    }
    Ok(net)
}

/// Removes one network and its resolver directory.
pub fn remove_one(state: &StateDir, term: &str) -> Result<Network> {
    let net = network::remove(state, term)?;
    if net.driver == "bridge" {
        super::isolation::unisolate(state, &net.bridge_name())?;
    }
    resolver_dir(state, &net.id).remove()?;
    Ok(net)
}

fn rm(state: &StateDir, args: &RmArgs) -> Result<u8> {
    let mut status = 0;
    for term in &args.networks {
        if args.force && network::find(state, term)?.is_none() {
            continue;
        }
        match remove_one(state, term) {
            Ok(_) => println!("{term}"),
            Err(e) => {
                eprintln!("minidock: {}", crate::cli::one_line(&format!("{e:#}")));
                status = REQUEST_FAILED;
            }
        }
    }
    Ok(status)
}

/// `network prune`: removes every custom network no container is attached to, then records
/// `network prune` (`reclaimed=0`, as dockerd's); their names.
pub fn prune_unused(state: &StateDir) -> Result<Vec<String>> {
    let attachments = super::attachments(state)?;
    let mut deleted = Vec::new();
    for net in network::list(state)? {
        if net.is_predefined() || !attached(&net, &attachments).is_empty() {
            continue;
        }
        remove_one(state, &net.id)?;
        deleted.push(net.name);
    }
    crate::events::networks_pruned(state);
    Ok(deleted)
}

fn prune(state: &StateDir, args: &PruneArgs) -> Result<u8> {
    let warning = "WARNING! This will remove all custom networks not used by at least one \
                   container.\nAre you sure you want to continue? [y/N] ";
    if !args.force && !crate::container::prune::confirm(warning)? {
        return Ok(0);
    }
    let deleted = prune_unused(state).map_err(failed)?;
    if !deleted.is_empty() {
        println!("Deleted Networks:\n{}\n", deleted.join("\n"));
    }
    Ok(0)
}
