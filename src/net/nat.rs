//! NAT and port publishing with netfilter, through iptables (nf_tables or legacy flavour) or
//! plain nft.
//!
//! Three jobs, the same as Docker's:
//! - **outbound**: containers have private addresses, so packets leaving the host get the
//!   host's address as their source (MASQUERADE in `nat/POSTROUTING`);
//! - **publishing** `-p 8080:80`: packets for the host's port 8080 get their destination
//!   rewritten to the container's address and port (DNAT), in `nat/PREROUTING` for packets
//!   arriving from outside and in `nat/OUTPUT` for packets the host sends itself;
//! - **`127.0.0.1:8080` from the host**: after DNAT such a packet still has source 127.0.0.1.
//!   The kernel refuses to route loopback addresses off the host unless the outgoing link has
//!   `route_localnet=1`, and the container could not answer 127.0.0.1 anyway, so a second
//!   MASQUERADE gives it the bridge's address.
//!
//! Every rule carries a `minidock:...` comment (iptables) or lives in the `ip minidock` table
//! (nft), and what we add is recorded, so removal deletes exactly those rules. The binaries are
//! spawned for the bridge's rules, made once per bridge; with `iptables-nft` a published
//! port's rules go straight to the kernel over netlink ([`super::nftables`]).

use super::ipam::Subnet;
use crate::explain::{self, Chapter};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::Command;
use std::str::FromStr;

/// The nft table that holds all of minidock's rules.
pub const NFT_TABLE: &str = "minidock";

/// Which tool installs the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// `iptables-nft`: iptables syntax, rules stored in nf_tables (Debian's default).
    IptablesNft,
    /// `iptables-legacy`: the old x_tables kernel interface.
    IptablesLegacy,
    /// `nft`: native nf_tables, in a table of our own.
    Nft,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::IptablesNft, Backend::IptablesLegacy, Backend::Nft];

    pub fn name(self) -> &'static str {
        match self {
            Backend::IptablesNft => "iptables-nft",
            Backend::IptablesLegacy => "iptables-legacy",
            Backend::Nft => "nft",
        }
    }

    pub fn is_available(self) -> bool {
        which(self.name()).is_some()
    }

    // ANCHOR: backend_choose
    /// Picks the backend: `requested` (a name, or "auto"), else `$MINIDOCK_NAT_BACKEND`, else
    /// detection. Detection follows what `iptables` is on this host (the variant Docker and the
    /// firewall also use, so all rules sit in one place), then falls back to `nft`.
    pub fn choose(requested: Option<&str>) -> Result<Backend> {
        let env = std::env::var("MINIDOCK_NAT_BACKEND").ok();
        let wanted = requested.or(env.as_deref()).unwrap_or("auto");
        if wanted != "auto" {
            let backend: Backend = wanted.parse()?;
            if !backend.is_available() {
                bail!(
                    "NAT backend {} is not available: {} not found in PATH",
                    backend.name(),
                    backend.name()
                );
            }
            return Ok(backend);
        }
        if which("iptables").is_some() {
            let version = Command::new("iptables").arg("--version").output();
            if let Ok(out) = version {
                let text = String::from_utf8_lossy(&out.stdout);
                if text.contains("nf_tables") && Backend::IptablesNft.is_available() {
                    return Ok(Backend::IptablesNft);
                }
                if text.contains("legacy") && Backend::IptablesLegacy.is_available() {
                    return Ok(Backend::IptablesLegacy);
                }
            }
        }
        for backend in Backend::ALL {
            if backend.is_available() {
                return Ok(backend);
            }
        }
        bail!(
            "no NAT backend found: install iptables or nftables (looked for iptables-nft, iptables-legacy and nft in PATH)"
        )
    }
    // ANCHOR_END: backend_choose
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .with_context(|| {
                format!("unknown NAT backend {s:?} (expected auto, iptables-nft, iptables-legacy or nft)")
            })
    }
}

/// Finds an executable in `$PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok() && p.is_file())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

// ANCHOR: port_mapping
/// `-p [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]`. A `host_port` of 0 asks [`super::publish`]
/// for a free port of the ephemeral range; `host_ip` `None` means every local address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl FromStr for PortMapping {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let (ports, protocol) = match s.split_once('/') {
            None => (s, Protocol::Tcp),
            Some((ports, "tcp")) => (ports, Protocol::Tcp),
            Some((ports, "udp")) => (ports, Protocol::Udp),
            Some((_, other)) => {
                bail!("invalid port mapping {s:?}: unknown protocol {other:?} (tcp or udp)")
            }
        };
        let (host, container) = ports.split_once(':').with_context(|| {
            format!("invalid port mapping {s:?}: expected HOST_PORT:CONTAINER_PORT[/tcp|udp]")
        })?;
        let port = |p: &str| -> Result<u16> {
            match p.parse::<u32>() {
                Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
                Ok(n) => bail!("invalid port mapping {s:?}: port {n} is out of range (1-65535)"),
                Err(_) => bail!("invalid port mapping {s:?}: {p:?} is not a port number"),
            }
        };
        Ok(PortMapping {
            host_ip: None,
            host_port: port(host)?,
            container_port: port(container)?,
            protocol,
        })
    }
}
// ANCHOR_END: port_mapping

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ip) = self.host_ip {
            write!(f, "{ip}:")?;
        }
        write!(
            f,
            "{}:{}/{}",
            self.host_port,
            self.container_port,
            self.protocol.name()
        )
    }
}

/// Which nat hook a DNAT rule sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Packets arriving from outside (another host, or a container).
    Prerouting,
    /// Packets the host itself sends, including to 127.0.0.1.
    Output,
}

/// What a rule does, independent of the tool that installs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// Containers' packets leaving through another link get the host's source address.
    MasqueradeOutbound {
        subnet: Subnet,
        bridge: String,
    },
    /// Host packets from 127.0.0.0/8 leaving into the bridge (after DNAT) get the bridge's
    /// address, which the container can answer.
    MasqueradeLoopback {
        bridge: String,
    },
    /// A container's connection to a published port of the host that DNAT sends back into
    /// the bridge (hairpin): it gets the bridge's address, so the reply comes back through
    /// the host, where conntrack undoes the DNAT, instead of going straight over the bridge.
    MasqueradeHairpin {
        subnet: Subnet,
        bridge: String,
    },
    /// Lets routed packets from and to the bridge through a FORWARD policy of DROP (the policy
    /// Docker sets on its hosts).
    AcceptForwardFrom {
        bridge: String,
    },
    AcceptForwardTo {
        bridge: String,
    },
    /// `route_localnet=1` would also let a container send packets to the host's 127.0.0.1
    /// services; drop those (the kube-proxy fix for CVE-2020-8558). Replies to our own
    /// masqueraded connections are ESTABLISHED and pass.
    BlockLocalnetFromBridge {
        bridge: String,
    },
    /// Drops routed packets from one bridge network to another (Docker's isolation between
    /// networks, its `DOCKER-ISOLATION` chains); put first, above the bridges' accepts.
    DropBetweenBridges {
        from: String,
        to: String,
    },
    /// Publishes a port: packets for a local address (or only `host_ip`) and `host_port` go
    /// to `to`.
    Dnat {
        hook: Hook,
        host_ip: Option<Ipv4Addr>,
        protocol: Protocol,
        host_port: u16,
        to: SocketAddrV4,
    },
}

/// A rule to add, with the comment that marks it as ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    pub kind: RuleKind,
    pub comment: String,
}

// ANCHOR: bridge_rules
/// The rules a bridge needs once, for all its containers.
pub fn bridge_rules(bridge: &str, subnet: Subnet) -> Vec<RuleSpec> {
    let comment = format!("minidock:bridge:{bridge}");
    let bridge = bridge.to_owned();
    [
        RuleKind::MasqueradeOutbound {
            subnet,
            bridge: bridge.clone(),
        },
        RuleKind::MasqueradeLoopback {
            bridge: bridge.clone(),
        },
        RuleKind::MasqueradeHairpin {
            subnet,
            bridge: bridge.clone(),
        },
        RuleKind::AcceptForwardFrom {
            bridge: bridge.clone(),
        },
        RuleKind::AcceptForwardTo {
            bridge: bridge.clone(),
        },
        RuleKind::BlockLocalnetFromBridge { bridge },
    ]
    .into_iter()
    .map(|kind| RuleSpec {
        kind,
        comment: comment.clone(),
    })
    .collect()
}

/// The two DNAT rules that publish one port of a container.
pub fn publish_rules(container: &str, mapping: PortMapping, address: Ipv4Addr) -> Vec<RuleSpec> {
    let comment = format!("minidock:{container}:{mapping}");
    [Hook::Prerouting, Hook::Output]
        .into_iter()
        .map(|hook| RuleSpec {
            kind: RuleKind::Dnat {
                hook,
                host_ip: mapping.host_ip,
                protocol: mapping.protocol,
                host_port: mapping.host_port,
                to: SocketAddrV4::new(address, mapping.container_port),
            },
            comment: comment.clone(),
        })
        .collect()
}
// ANCHOR_END: bridge_rules

/// An iptables rule: table, chain, whether it goes first (-I) or last (-A), and its match and
/// target arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IptablesRule {
    pub table: &'static str,
    pub chain: &'static str,
    pub insert: bool,
    pub spec: Vec<String>,
}

// ANCHOR: render_iptables
/// The iptables form of a rule: its table, its chain, whether it is inserted at the top
/// (`-I`) or appended (`-A`), and the arguments after the chain, with the rule's comment
/// (`-m comment --comment`) before the target, see iptables(8) and iptables-extensions(8).
pub fn render_iptables(rule: &RuleSpec) -> IptablesRule {
    let (table, chain, insert) = iptables_place(&rule.kind);
    let mut spec: Vec<String> = iptables_spec(&rule.kind)
        .split(' ')
        .map(str::to_owned)
        .collect();
    // The comment goes before the target, where iptables-save prints it, so the rule reads
    // the same in `iptables -S` as here.
    let target_at = spec.iter().position(|a| a == "-j").unwrap_or(spec.len());
    spec.splice(
        target_at..target_at,
        ["-m", "comment", "--comment", &rule.comment].map(str::to_owned),
    );
    IptablesRule {
        table,
        chain,
        insert,
        spec,
    }
}
// ANCHOR_END: render_iptables

// ANCHOR: iptables_place
/// Where a rule goes: masquerading and DNAT in the `nat` table, appended; forwarding and
/// input filters in `filter`, inserted at the top so they are seen before the rules already
/// in the chain.
fn iptables_place(kind: &RuleKind) -> (&'static str, &'static str, bool) {
    match kind {
        RuleKind::MasqueradeOutbound { .. }
        | RuleKind::MasqueradeLoopback { .. }
        | RuleKind::MasqueradeHairpin { .. } => ("nat", "POSTROUTING", false),
        RuleKind::AcceptForwardFrom { .. }
        | RuleKind::AcceptForwardTo { .. }
        | RuleKind::DropBetweenBridges { .. } => ("filter", "FORWARD", true),
        RuleKind::BlockLocalnetFromBridge { .. } => ("filter", "INPUT", true),
        RuleKind::Dnat { hook, .. } => (
            "nat",
            match hook {
                Hook::Prerouting => "PREROUTING",
                Hook::Output => "OUTPUT",
            },
            false,
        ),
    }
}
// ANCHOR_END: iptables_place

// ANCHOR: iptables_spec
/// What a rule matches and its target, as the space-separated iptables arguments.
fn iptables_spec(kind: &RuleKind) -> String {
    match kind {
        RuleKind::MasqueradeOutbound { subnet, bridge } => {
            format!("-s {subnet} ! -o {bridge} -j MASQUERADE")
        }
        RuleKind::MasqueradeLoopback { bridge } => {
            format!("-s 127.0.0.0/8 -o {bridge} -j MASQUERADE")
        }
        RuleKind::MasqueradeHairpin { subnet, bridge } => {
            format!("-s {subnet} -o {bridge} -m conntrack --ctstate DNAT -j MASQUERADE")
        }
        RuleKind::AcceptForwardFrom { bridge } => format!("-i {bridge} -j ACCEPT"),
        RuleKind::AcceptForwardTo { bridge } => format!("-o {bridge} -j ACCEPT"),
        RuleKind::DropBetweenBridges { from, to } => format!("-i {from} -o {to} -j DROP"),
        RuleKind::BlockLocalnetFromBridge { bridge } => format!(
            "-i {bridge} -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED -j DROP"
        ),
        RuleKind::Dnat {
            host_ip,
            protocol,
            host_port,
            to,
            ..
        } => match host_ip {
            Some(ip) => format!(
                "-d {ip}/32 -p {p} -m {p} --dport {host_port} -j DNAT --to-destination {to}",
                p = protocol.name()
            ),
            // addrtype LOCAL: only packets for one of this host's own addresses, not traffic
            // the host merely routes elsewhere.
            None => format!(
                "-p {p} -m {p} --dport {host_port} -m addrtype --dst-type LOCAL -j DNAT --to-destination {to}",
                p = protocol.name()
            ),
        },
    }
}
// ANCHOR_END: iptables_spec

// ANCHOR: render_nft
/// The chain of our nft table and the rule text, as `nft add rule ip minidock CHAIN TEXT`.
pub fn render_nft(rule: &RuleSpec) -> (&'static str, String) {
    let text = nft_text(&rule.kind);
    (
        nft_chain(&rule.kind),
        format!("{text} comment \"{}\"", rule.comment),
    )
}
// ANCHOR_END: render_nft

// ANCHOR: nft_chain
/// The base chain of our table a rule goes in, one per hook (see [`NFT_CHAINS`]).
fn nft_chain(kind: &RuleKind) -> &'static str {
    match kind {
        RuleKind::MasqueradeOutbound { .. }
        | RuleKind::MasqueradeLoopback { .. }
        | RuleKind::MasqueradeHairpin { .. } => "postrouting",
        RuleKind::AcceptForwardFrom { .. }
        | RuleKind::AcceptForwardTo { .. }
        | RuleKind::DropBetweenBridges { .. } => "forward",
        RuleKind::BlockLocalnetFromBridge { .. } => "input",
        RuleKind::Dnat { hook, .. } => match hook {
            Hook::Prerouting => "prerouting",
            Hook::Output => "output",
        },
    }
}
// ANCHOR_END: nft_chain

// ANCHOR: nft_text
/// What a rule matches and its verdict, in nft's rule syntax (nft(8)).
fn nft_text(kind: &RuleKind) -> String {
    match kind {
        RuleKind::MasqueradeOutbound { subnet, bridge } => {
            format!("ip saddr {subnet} oifname != \"{bridge}\" masquerade")
        }
        RuleKind::MasqueradeLoopback { bridge } => {
            format!("ip saddr 127.0.0.0/8 oifname \"{bridge}\" masquerade")
        }
        RuleKind::MasqueradeHairpin { subnet, bridge } => {
            format!("ip saddr {subnet} oifname \"{bridge}\" ct status dnat masquerade")
        }
        RuleKind::AcceptForwardFrom { bridge } => format!("iifname \"{bridge}\" accept"),
        RuleKind::AcceptForwardTo { bridge } => format!("oifname \"{bridge}\" accept"),
        RuleKind::DropBetweenBridges { from, to } => {
            format!("iifname \"{from}\" oifname \"{to}\" drop")
        }
        RuleKind::BlockLocalnetFromBridge { bridge } => format!(
            "iifname \"{bridge}\" ip daddr 127.0.0.0/8 ct state != {{ established, related }} drop"
        ),
        RuleKind::Dnat {
            host_ip,
            protocol,
            host_port,
            to,
            ..
        } => match host_ip {
            Some(ip) => format!(
                "ip daddr {ip} {} dport {host_port} dnat to {to}",
                protocol.name()
            ),
            None => format!(
                "fib daddr type local {} dport {host_port} dnat to {to}",
                protocol.name()
            ),
        },
    }
}
// ANCHOR_END: nft_text

// ANCHOR: nft_chains
/// Our table and its base chains, one per hook we use. `add` is idempotent in nft.
const NFT_CHAINS: &str = "\
add table ip minidock
add chain ip minidock prerouting { type nat hook prerouting priority dstnat; policy accept; }
add chain ip minidock output { type nat hook output priority -100; policy accept; }
add chain ip minidock postrouting { type nat hook postrouting priority srcnat; policy accept; }
add chain ip minidock input { type filter hook input priority filter; policy accept; }
add chain ip minidock forward { type filter hook forward priority filter; policy accept; }
";
// ANCHOR_END: nft_chains

/// A rule we added, recorded with what it takes to delete exactly it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "kebab-case")]
pub enum AppliedRule {
    /// Deleted with `BINARY -t TABLE -D CHAIN SPEC...`, which removes the first rule that
    /// matches SPEC exactly, comment included.
    Iptables {
        binary: String,
        table: String,
        chain: String,
        spec: Vec<String>,
    },
    /// Deleted by handle, after checking that the rule at that handle still has our comment.
    Nft {
        chain: String,
        handle: u64,
        comment: String,
        rule: String,
    },
}

impl fmt::Display for AppliedRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppliedRule::Iptables {
                binary,
                table,
                chain,
                spec,
            } => write!(f, "{binary} -t {table} -A {chain} {}", shell_words(spec)),
            AppliedRule::Nft {
                chain,
                handle,
                rule,
                ..
            } => write!(
                f,
                "nft add rule ip {NFT_TABLE} {chain} {rule}  # handle {handle}"
            ),
        }
    }
}

fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if w.is_empty() || w.contains(char::is_whitespace) {
                format!("'{w}'")
            } else {
                w.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs a command, returning stdout; on failure an error with the command line and stderr.
fn run(cmd: &mut Command) -> Result<String> {
    let line = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = cmd.output().with_context(|| format!("running {line}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        bail!("{line}: {} ({first})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn iptables(binary: &str) -> Command {
    let mut cmd = Command::new(binary);
    // Wait for the xtables lock instead of failing when another tool holds it.
    cmd.args(["-w", "10"]);
    cmd
}

// ANCHOR: add_rule
/// Adds one rule with `backend` and returns how to delete it.
pub fn add_rule(backend: Backend, rule: &RuleSpec) -> Result<AppliedRule> {
    match backend {
        Backend::IptablesNft | Backend::IptablesLegacy => {
            let r = render_iptables(rule);
            let binary = backend.name();
            let op = explain_add(binary, &r);
            run(iptables(binary)
                .args(["-t", r.table, op, r.chain])
                .args(&r.spec))?;
            Ok(applied_iptables(binary, r))
        }
        Backend::Nft => add_nft_rule(rule),
    }
}

/// Shows the iptables command that adds `r` (under `--explain`) and returns its operation,
/// `-I` (first in the chain) or `-A` (last).
fn explain_add(binary: &str, r: &IptablesRule) -> &'static str {
    let op = if r.insert { "-I" } else { "-A" };
    explain::step(
        "add a netfilter rule",
        || {
            let spec = shell_words(&r.spec);
            format!("{binary} -t {} {op} {} {spec}", r.table, r.chain)
        },
        Chapter::Networking,
    );
    op
}

/// The record of an iptables rule added with `binary`.
fn applied_iptables(binary: &str, r: IptablesRule) -> AppliedRule {
    AppliedRule::Iptables {
        binary: binary.to_owned(),
        table: r.table.to_owned(),
        chain: r.chain.to_owned(),
        spec: r.spec,
    }
}
// ANCHOR_END: add_rule

// ANCHOR: add_nft_rule
/// Adds one rule to our nft table, made first if missing, and records its handle.
fn add_nft_rule(rule: &RuleSpec) -> Result<AppliedRule> {
    ensure_nft_table()?;
    let (chain, text) = render_nft(rule);
    explain::step(
        "add a netfilter rule",
        || format!("nft add rule ip {NFT_TABLE} {chain} {text}"),
        Chapter::Networking,
    );
    // A drop between bridges goes first, above the bridges' accepts.
    let verb = match rule.kind {
        RuleKind::DropBetweenBridges { .. } => "insert",
        _ => "add",
    };
    // --echo --handle prints the rule back with the handle the kernel gave it.
    let out = run(Command::new("nft")
        .args(["--echo", "--handle", verb, "rule", "ip", NFT_TABLE, chain])
        .arg(&text))?;
    let handle = out
        .lines()
        .find_map(|l| {
            l.rsplit_once("# handle ")
                .and_then(|(_, h)| h.trim().parse().ok())
        })
        .with_context(|| format!("nft did not report the new rule's handle: {out:?}"))?;
    Ok(AppliedRule::Nft {
        chain: chain.to_owned(),
        handle,
        comment: rule.comment.clone(),
        rule: text,
    })
}
// ANCHOR_END: add_nft_rule

// ANCHOR: add_rules
/// Adds `rules` in order; if one fails, deletes the ones already added and returns the error.
/// With an iptables backend the rules of one table go in one `iptables-restore --noflush`
/// call, which the kernel applies as one transaction (all of them or none): one process per
/// table instead of one per rule. With `iptables-nft`, a published port's DNAT rules go over
/// netlink, in one transaction too, and no process at all ([`add_dnat_by_netlink`]).
pub fn add_rules(backend: Backend, rules: &[RuleSpec]) -> Result<Vec<AppliedRule>> {
    if backend == Backend::IptablesNft
        && let Some(added) = add_dnat_by_netlink(rules)?
    {
        return Ok(added);
    }
    if backend != Backend::Nft && rules.len() > 1 {
        let rendered: Vec<IptablesRule> = rules.iter().map(render_iptables).collect();
        if rendered.iter().all(|r| restore_words(&r.spec).is_some()) {
            return add_iptables_batch(backend.name(), rendered);
        }
    }
    let mut added = Vec::new();
    for rule in rules {
        match add_rule(backend, rule) {
            Ok(applied) => added.push(applied),
            Err(err) => {
                for applied in added.iter().rev() {
                    let _ = delete_rule(applied);
                }
                return Err(err);
            }
        }
    }
    Ok(added)
}

// ANCHOR_END: add_rules

// ANCHOR: add_iptables_batch
/// Adds iptables rules with one `BINARY-restore` call per table, tables in the order they
/// first appear; if a table's call fails, the tables already added are deleted again.
fn add_iptables_batch(binary: &str, rules: Vec<IptablesRule>) -> Result<Vec<AppliedRule>> {
    let mut added: Vec<AppliedRule> = Vec::new();
    for table in tables_in_order(rules.iter().map(|r| r.table)) {
        let lines: Vec<String> = rules
            .iter()
            .filter(|r| r.table == table)
            .map(|r| restore_line(explain_add(binary, r), r.chain, &r.spec))
            .collect();
        if let Err(err) = restore(binary, table, &lines) {
            if let (_, Some(undo_err)) = delete_rules(&added) {
                return Err(err.context(format!("{undo_err:#}")));
            }
            return Err(err);
        }
        let of_table = rules.iter().filter(|r| r.table == table).cloned();
        added.extend(of_table.map(|r| applied_iptables(binary, r)));
    }
    Ok(added)
}
// ANCHOR_END: add_iptables_batch

/// Adds DNAT rules as `iptables-nft` does, over netlink in one nf_tables transaction
/// ([`super::nftables::add_dnat_rules`]), when every rule is a DNAT and the kernel takes
/// them; `None` (nothing added) when not, and `iptables-restore` takes over. No answer from
/// the kernel is an error: the rules may be in, so adding them again would double them.
fn add_dnat_by_netlink(rules: &[RuleSpec]) -> Result<Option<Vec<AppliedRule>>> {
    let mut dnat = Vec::with_capacity(rules.len());
    for rule in rules {
        let RuleKind::Dnat {
            host_ip,
            protocol,
            host_port,
            to,
            ..
        } = rule.kind
        else {
            return Ok(None);
        };
        dnat.push(super::nftables::DnatRule {
            chain: iptables_place(&rule.kind).1,
            protocol: match protocol {
                Protocol::Tcp => 6,
                Protocol::Udp => 17,
            },
            host_ip,
            host_port,
            to,
            comment: &rule.comment,
        });
    }
    match super::nftables::add_dnat_rules(&dnat) {
        Ok(()) => {}
        Err(err) if err.errno == nix::errno::Errno::EAGAIN => {
            return Err(err).context("adding DNAT rules over netlink: no answer from the kernel");
        }
        Err(_) => return Ok(None),
    }
    let binary = Backend::IptablesNft.name();
    let rendered = rules.iter().map(render_iptables);
    let added = rendered.map(|r| {
        explain_add(binary, &r);
        applied_iptables(binary, r)
    });
    Ok(Some(added.collect()))
}

/// The distinct tables, in the order they first appear.
fn tables_in_order<'a>(tables: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for table in tables {
        if !out.contains(&table) {
            out.push(table);
        }
    }
    out
}

/// The words of a rule as iptables-restore(8) reads them back: a word with whitespace in
/// double quotes. `None` when a word holds what its parser would read differently (a quote,
/// a backslash, a line break, or nothing at all).
fn restore_words(spec: &[String]) -> Option<String> {
    let mut words = Vec::with_capacity(spec.len());
    for w in spec {
        if w.is_empty() || w.contains(['"', '\'', '\\', '\n', '\r']) {
            return None;
        }
        if w.contains(char::is_whitespace) {
            words.push(format!("\"{w}\""));
        } else {
            words.push(w.clone());
        }
    }
    Some(words.join(" "))
}

/// One line of iptables-restore's input: `OP CHAIN SPEC...` (the spec was checked with
/// [`restore_words`]).
fn restore_line(op: &str, chain: &str, spec: &[String]) -> String {
    format!("{op} {chain} {}", restore_words(spec).unwrap_or_default())
}

/// Runs `BINARY-restore --noflush -w 10` on `lines` of `table`: one transaction that changes
/// only those rules, as iptables-restore(8) describes `--noflush`.
fn restore(binary: &str, table: &str, lines: &[String]) -> Result<()> {
    use std::io::Write;
    let program = format!("{binary}-restore");
    let input = format!("*{table}\n{}\nCOMMIT\n", lines.join("\n"));
    let mut child = Command::new(&program)
        .args(["--noflush", "-w", "10"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running {program}"))?;
    let written = child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes());
    let out = child
        .wait_with_output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        bail!(
            "{program} --noflush of {input:?}: {} ({})",
            out.status,
            first.trim()
        );
    }
    written.with_context(|| format!("writing to {program}"))
}

fn ensure_nft_table() -> Result<()> {
    use std::io::Write;
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running nft")?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(NFT_CHAINS.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "creating the nft table ip {NFT_TABLE}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The rules of our nft table as JSON objects (`nft --json`), or none if there is no table.
fn nft_rules() -> Result<Vec<serde_json::Value>> {
    let out = Command::new("nft")
        .args(["--json", "list", "table", "ip", NFT_TABLE])
        .output()
        .context("running nft")?;
    if !out.status.success() {
        // No such table: nothing of ours is there.
        return Ok(Vec::new());
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing nft --json output")?;
    Ok(doc["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item.get("rule").cloned())
        .collect())
}

// ANCHOR: delete_rule
/// Deletes one rule we added. A rule that is already gone is not an error (teardown is
/// idempotent); a rule that is there but cannot be deleted is.
pub fn delete_rule(rule: &AppliedRule) -> Result<()> {
    match rule {
        AppliedRule::Iptables {
            binary,
            table,
            chain,
            spec,
        } => {
            explain_delete(binary, table, chain, spec);
            match run(iptables(binary).args(["-t", table, "-D", chain]).args(spec)) {
                Ok(_) => Ok(()),
                Err(err) => {
                    // -C exits 1 when no such rule exists: then it was already deleted.
                    let check = iptables(binary)
                        .args(["-t", table, "-C", chain])
                        .args(spec)
                        .output();
                    match check {
                        Ok(out) if out.status.code() == Some(1) => Ok(()),
                        _ => Err(err),
                    }
                }
            }
        }
        AppliedRule::Nft {
            chain,
            handle,
            comment,
            ..
        } => delete_nft_rule(chain, *handle, comment),
    }
}
// ANCHOR_END: delete_rule

/// Shows the iptables command that deletes a rule (under `--explain`).
fn explain_delete(binary: &str, table: &str, chain: &str, spec: &[String]) {
    explain::step(
        "delete a netfilter rule",
        || format!("{binary} -t {table} -D {chain} {}", shell_words(spec)),
        Chapter::Networking,
    );
}

// ANCHOR: delete_nft_rule
/// Deletes the rule at `handle` in our nft table's `chain`, if it still carries `comment`.
fn delete_nft_rule(chain: &str, handle: u64, comment: &str) -> Result<()> {
    // Handles are unique within a table, but a table deleted and recreated by someone else
    // could reuse ours: only delete the rule if it still carries our comment.
    let ours = nft_rules()?.into_iter().any(|r| {
        r["chain"] == chain && r["handle"].as_u64() == Some(handle) && r["comment"] == comment
    });
    if !ours {
        return Ok(());
    }
    explain::step(
        "delete a netfilter rule",
        || format!("nft delete rule ip {NFT_TABLE} {chain} handle {handle}"),
        Chapter::Networking,
    );
    let handle = handle.to_string();
    run(Command::new("nft").args(["delete", "rule", "ip", NFT_TABLE, chain, "handle", &handle]))?;
    Ok(())
}
// ANCHOR_END: delete_nft_rule

// ANCHOR: delete_rules
/// Deletes `rules` in the order given, as [`delete_rule`] each. The iptables rules of one
/// table go in one transaction: with `iptables-nft` a netlink batch by handle, else (or when
/// that declines) one `iptables-restore --noflush` call; when that fails (a rule is already
/// gone, which `-D` in a transaction refuses) they are deleted one by one. Returns the rules
/// that are still there, in the order given, and the first error.
pub fn delete_rules(rules: &[AppliedRule]) -> (Vec<AppliedRule>, Option<anyhow::Error>) {
    let mut kept = Vec::new();
    let mut first_error = None;
    let mut i = 0;
    while i < rules.len() {
        let group = same_table_run(&rules[i..]);
        let batched = delete_iptables_batch(&rules[i..i + group]);
        if !batched {
            for rule in &rules[i..i + group] {
                if let Err(err) = delete_rule(rule) {
                    first_error.get_or_insert(err);
                    kept.push(rule.clone());
                }
            }
        }
        i += group;
    }
    (kept, first_error)
}
// ANCHOR_END: delete_rules

/// How many rules from the first are iptables rules of the same binary and table (at least 1).
fn same_table_run(rules: &[AppliedRule]) -> usize {
    let key = |r: &AppliedRule| match r {
        AppliedRule::Iptables { binary, table, .. } => Some((binary.clone(), table.clone())),
        AppliedRule::Nft { .. } => None,
    };
    let Some(first) = key(&rules[0]) else {
        return 1;
    };
    1 + rules[1..]
        .iter()
        .take_while(|r| key(r).as_ref() == Some(&first))
        .count()
}

/// Deletes iptables rules of one binary and table in one transaction; false when it did not
/// (nothing was deleted then).
fn delete_iptables_batch(rules: &[AppliedRule]) -> bool {
    let mut lines = Vec::with_capacity(rules.len());
    let mut target = None;
    for rule in rules {
        let AppliedRule::Iptables {
            binary,
            table,
            chain,
            spec,
        } = rule
        else {
            return false;
        };
        if restore_words(spec).is_none() {
            return false;
        }
        lines.push(restore_line("-D", chain, spec));
        target = Some((binary, table));
    }
    let Some((binary, table)) = target else {
        return false;
    };
    if !(binary == "iptables-nft" && delete_by_netlink(table, rules))
        && restore(binary, table, &lines).is_err()
    {
        return false;
    }
    for rule in rules {
        if let AppliedRule::Iptables {
            binary,
            table,
            chain,
            spec,
        } = rule
        {
            explain_delete(binary, table, chain, spec);
        }
    }
    true
}

/// Deletes `iptables-nft` rules of `table` by handle over netlink, found by their chain and
/// comment ([`super::nftables::delete_commented`]); false when it did not (nothing was
/// deleted then, and `iptables-restore` takes over).
fn delete_by_netlink(table: &str, rules: &[AppliedRule]) -> bool {
    let mut wanted = Vec::with_capacity(rules.len());
    for rule in rules {
        let AppliedRule::Iptables { chain, spec, .. } = rule else {
            return false;
        };
        let comment = spec.iter().skip_while(|w| *w != "--comment").nth(1);
        match comment {
            Some(comment) if comment.starts_with("minidock:") => {
                wanted.push((chain.clone(), comment.clone()));
            }
            _ => return false,
        }
    }
    super::nftables::delete_commented(table, &wanted).unwrap_or(false)
}

/// Deletes our nft table once no rule of ours is left in it (with nft, the table is ours).
pub fn remove_nft_table_if_empty() -> Result<()> {
    if !Backend::Nft.is_available() {
        return Ok(());
    }
    let exists = Command::new("nft")
        .args(["list", "table", "ip", NFT_TABLE])
        .output()
        .is_ok_and(|o| o.status.success());
    if exists && nft_rules()?.is_empty() {
        explain::step(
            "delete our empty nft table",
            || format!("nft delete table ip {NFT_TABLE}"),
            Chapter::Networking,
        );
        run(Command::new("nft").args(["delete", "table", "ip", NFT_TABLE]))?;
    }
    Ok(())
}

/// Every minidock rule currently in the kernel for `backend`, one per line, as the tool
/// itself prints them (for the tour, and for tests that check nothing is left).
pub fn list_rules(backend: Backend) -> Result<Vec<String>> {
    match backend {
        Backend::IptablesNft | Backend::IptablesLegacy => {
            let mut lines = Vec::new();
            for table in ["nat", "filter"] {
                let out = run(iptables(backend.name()).args(["-t", table, "-S"]))?;
                lines.extend(
                    out.lines()
                        .filter(|l| l.contains("minidock:"))
                        .map(|l| format!("-t {table} {l}")),
                );
            }
            Ok(lines)
        }
        Backend::Nft => Ok(nft_rules()?
            .iter()
            .map(|r| {
                format!(
                    "ip {NFT_TABLE} {}: handle {} comment {}",
                    r["chain"].as_str().unwrap_or("?"),
                    r["handle"],
                    r["comment"]
                )
            })
            .collect()),
    }
}

/// `nft list table ip minidock`, the way nft prints it (for the tour).
pub fn nft_table_text() -> Result<String> {
    run(Command::new("nft").args(["list", "table", "ip", NFT_TABLE]))
}

// ANCHOR: sysctl
/// Reads a sysctl under /proc/sys, e.g. `net/ipv4/ip_forward`. /proc/sys/net shows the
/// network namespace of the thread that opens the file.
pub fn read_sysctl(name: &str) -> Result<String> {
    let path = format!("/proc/sys/{name}");
    Ok(std::fs::read_to_string(&path)
        .with_context(|| format!("reading {path}"))?
        .trim()
        .to_owned())
}

pub fn write_sysctl(name: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{name}");
    explain::step(
        "set a sysctl",
        || format!("write({path:?}, \"{value}\")"),
        Chapter::Networking,
    );
    std::fs::write(&path, value).with_context(|| format!("writing {value} to {path}"))
}
// ANCHOR_END: sysctl

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet() -> Subnet {
        "10.88.0.0/16".parse().unwrap()
    }

    #[test]
    fn port_mappings_parse_and_bad_ones_get_one_line_errors() {
        assert_eq!(
            "8080:80".parse::<PortMapping>().unwrap(),
            PortMapping {
                host_ip: None,
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp
            }
        );
        assert_eq!(
            "5353:53/udp".parse::<PortMapping>().unwrap().protocol,
            Protocol::Udp
        );
        assert_eq!(
            "1:2/tcp".parse::<PortMapping>().unwrap().to_string(),
            "1:2/tcp"
        );
        for (bad, why) in [
            ("70000:80", "port 70000 is out of range"),
            ("0:80", "port 0 is out of range"),
            ("8080", "expected HOST_PORT:CONTAINER_PORT"),
            ("8080:80/sctp", "unknown protocol \"sctp\""),
            ("x:80", "\"x\" is not a port number"),
        ] {
            let err = bad.parse::<PortMapping>().unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(!err.contains('\n'));
        }
    }

    #[test]
    fn backends_parse_by_name() {
        for b in Backend::ALL {
            assert_eq!(b.name().parse::<Backend>().unwrap(), b);
        }
        assert!("pf".parse::<Backend>().is_err());
    }

    #[test]
    fn iptables_rules_read_like_iptables_save() {
        let mut all: Vec<_> = bridge_rules("mdbr0", subnet())
            .iter()
            .map(render_iptables)
            .collect();
        all.extend(
            publish_rules(
                "c1",
                "8080:80".parse().unwrap(),
                Ipv4Addr::new(10, 88, 0, 2),
            )
            .iter()
            .map(render_iptables),
        );
        let text: Vec<String> = all
            .iter()
            .map(|r| {
                format!(
                    "-t {} {} {} {}",
                    r.table,
                    if r.insert { "-I" } else { "-A" },
                    r.chain,
                    r.spec.join(" ")
                )
            })
            .collect();
        insta::assert_snapshot!(text.join("\n"));
    }

    #[test]
    fn nft_rules_live_in_our_table() {
        let mut all: Vec<_> = bridge_rules("mdbr0", subnet())
            .iter()
            .map(render_nft)
            .collect();
        all.extend(
            publish_rules(
                "c1",
                "5353:53/udp".parse().unwrap(),
                Ipv4Addr::new(10, 88, 0, 2),
            )
            .iter()
            .map(render_nft),
        );
        let text: Vec<String> = all.iter().map(|(c, r)| format!("{c}: {r}")).collect();
        insta::assert_snapshot!(text.join("\n"));
    }

    #[test]
    fn a_requested_backend_that_is_missing_is_a_one_line_error() {
        // Not through $PATH: name lookup only, so this never runs a tool.
        let err = Backend::choose(Some("bogus")).unwrap_err().to_string();
        assert!(err.contains("unknown NAT backend"), "{err}");
    }

    #[test]
    fn applied_rules_round_trip_through_json() {
        let rule = AppliedRule::Nft {
            chain: "prerouting".into(),
            handle: 7,
            comment: "minidock:c1:8080:80/tcp".into(),
            rule: "tcp dport 8080 dnat to 10.0.0.2:80".into(),
        };
        let json = serde_json::to_string(&rule).unwrap();
        assert!(json.contains("\"backend\":\"nft\""), "{json}");
        assert_eq!(serde_json::from_str::<AppliedRule>(&json).unwrap(), rule);
    }
}
