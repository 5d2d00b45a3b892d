//! The registry settings of the daemon configuration: Docker's `daemon.json` keys
//! `registry-mirrors` and `insecure-registries`, and the rules dockerd applies to them
//! (moby `registry/config.go`).
//!
//! The file is shared by the `minidock` CLI and `minidock daemon`: `$MINIDOCK_DAEMON_CONFIG`
//! if set, else `/etc/minidock/daemon.json` ([`daemon_config_path`]). A missing file is an
//! empty configuration; keys minidock does not read are kept as they are.
//!
//! ```json
//! {
//!   "registry-mirrors": ["http://10.0.0.5:5000", "https://mirror.example.com"],
//!   "insecure-registries": ["registry.lan:5000", "10.0.0.0/8"]
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The environment variable naming the daemon configuration file.
pub const DAEMON_CONFIG_ENV: &str = "MINIDOCK_DAEMON_CONFIG";
/// Where the daemon configuration file is when [`DAEMON_CONFIG_ENV`] is not set.
pub const DEFAULT_DAEMON_CONFIG: &str = "/etc/minidock/daemon.json";

/// The keys of `daemon.json` minidock reads; the others are kept in `other`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DaemonConfig {
    /// Mirrors of Docker Hub, tried in order before it: `http(s)://host[:port][/path]`.
    #[serde(
        default,
        rename = "registry-mirrors",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub registry_mirrors: Vec<String>,
    /// Registries (`host[:port]`) or networks (CIDR) spoken to over plain HTTP or over TLS
    /// without certificate verification.
    #[serde(
        default,
        rename = "insecure-registries",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub insecure_registries: Vec<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// The path of the daemon configuration: `$MINIDOCK_DAEMON_CONFIG`, else
/// [`DEFAULT_DAEMON_CONFIG`].
pub fn daemon_config_path() -> PathBuf {
    match std::env::var_os(DAEMON_CONFIG_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(DEFAULT_DAEMON_CONFIG),
    }
}

impl DaemonConfig {
    /// Reads a `daemon.json`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<DaemonConfig> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing the daemon configuration {}", path.display())),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(DaemonConfig::default()),
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// An IP network, `10.0.0.0/8` or `::1/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR/PREFIX`; None for anything else.
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = text.split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > bits {
            return None;
        }
        Some(Cidr {
            network: mask(addr, prefix),
            prefix,
        })
    }

    /// Whether `addr` is inside the network (an IPv4 address never is in an IPv6 one).
    pub fn contains(&self, addr: IpAddr) -> bool {
        addr.is_ipv4() == self.network.is_ipv4() && mask(addr, self.prefix) == self.network
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = if prefix == 0 {
                0
            } else {
                bits & (u32::MAX << (32 - prefix))
            };
            IpAddr::V4(kept.into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = if prefix == 0 {
                0
            } else {
                bits & (u128::MAX << (128 - prefix))
            };
            IpAddr::V6(kept.into())
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

// ANCHOR: registry_config
/// Docker's registry service configuration: the mirrors of Docker Hub, and which registries
/// are insecure. Loopback (`127.0.0.0/8`, `::1/128`) is always insecure, as in dockerd;
/// `docker.io` never is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Normalised mirror URLs (one trailing `/`), duplicates removed, in order.
    pub mirrors: Vec<String>,
    /// Insecure networks, loopback last.
    pub insecure_cidrs: Vec<Cidr>,
    /// Insecure registries named by `host[:port]`.
    pub insecure_hosts: Vec<String>,
}
// ANCHOR_END: registry_config

impl RegistryConfig {
    // ANCHOR: registry_config_new
    /// Validates mirrors and insecure entries as dockerd does at start (an invalid one is an
    /// error naming it).
    pub fn new(mirrors: &[String], insecure: &[String]) -> Result<RegistryConfig> {
        let mut config = RegistryConfig::default();
        for mirror in mirrors {
            let mirror = validate_mirror(mirror)?;
            if !config.mirrors.contains(&mirror) {
                config.mirrors.push(mirror);
            }
        }
        let loopback = ["127.0.0.0/8".to_owned(), "::1/128".to_owned()];
        for entry in insecure.iter().chain(&loopback) {
            match parse_insecure(entry)? {
                Insecure::Network(cidr) => {
                    if !config.insecure_cidrs.contains(&cidr) {
                        config.insecure_cidrs.push(cidr);
                    }
                }
                Insecure::Host(host) => {
                    if !config.insecure_hosts.contains(&host) {
                        config.insecure_hosts.push(host);
                    }
                }
            }
        }
        Ok(config)
    }
    // ANCHOR_END: registry_config_new

    /// The configuration in effect: `daemon.json`'s keys, with the `insecure-registries` of
    /// the CLI's `config.json` and of `--insecure-registry` flags added.
    pub fn load(extra_insecure: &[String]) -> Result<RegistryConfig> {
        let path = daemon_config_path();
        let daemon = DaemonConfig::load(&path)?;
        let mut insecure = daemon.insecure_registries.clone();
        insecure.extend(extra_insecure.iter().cloned());
        RegistryConfig::new(&daemon.registry_mirrors, &insecure)
            .with_context(|| format!("in {}", path.display()))
    }

    // ANCHOR: is_secure
    /// dockerd's `isSecureIndex`: false for a registry (`host[:port]`) listed as insecure,
    /// or whose address (the host itself, or what it resolves to) is in an insecure network.
    pub fn is_secure(&self, registry: &str) -> bool {
        let registry = normalize_index_name(registry);
        if registry == "docker.io" {
            return true;
        }
        if self.insecure_hosts.iter().any(|h| h == registry) {
            return false;
        }
        if self.insecure_cidrs.is_empty() {
            return true;
        }
        let host = host_of(registry);
        let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => (host, 0)
                .to_socket_addrs()
                .map(|addrs| addrs.map(|a| a.ip()).collect())
                .unwrap_or_default(),
        };
        !addresses
            .iter()
            .any(|addr| self.insecure_cidrs.iter().any(|cidr| cidr.contains(*addr)))
    }
    // ANCHOR_END: is_secure
}

enum Insecure {
    Network(Cidr),
    Host(String),
}

/// One `insecure-registries` entry, as dockerd's `loadInsecureRegistries` reads it: an
/// `http://` or `https://` prefix is dropped, another scheme refused; a CIDR is a network,
/// anything else must be `host[:port]`.
fn parse_insecure(entry: &str) -> Result<Insecure> {
    let entry = normalize_index_name(entry);
    if entry.starts_with('-') || entry.ends_with('-') {
        bail!("invalid index name ({entry}). Cannot begin or end with a hyphen");
    }
    let lower = entry.to_ascii_lowercase();
    let entry = if lower.starts_with("http://") {
        &entry[7..]
    } else if lower.starts_with("https://") {
        &entry[8..]
    } else if entry.contains("://") {
        bail!("insecure registry {entry} should not contain '://'");
    } else {
        entry
    };
    if let Some(cidr) = Cidr::parse(entry) {
        return Ok(Insecure::Network(cidr));
    }
    let host = host_of(entry);
    let valid_host = host.parse::<IpAddr>().is_ok()
        || (!host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
    if !valid_host {
        bail!("insecure registry {entry} is not valid: invalid host {host:?}");
    }
    if let Some(port) = port_of(entry)
        && port.parse::<u16>().is_err()
    {
        bail!("insecure registry {entry} is not valid: invalid port {port:?}");
    }
    Ok(Insecure::Host(entry.to_owned()))
}

// ANCHOR: validate_mirror
/// dockerd's `ValidateMirror`: an `http` or `https` URL without query, fragment or user
/// info; returned with exactly one trailing `/`.
pub fn validate_mirror(url: &str) -> Result<String> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    if scheme != "http" && scheme != "https" {
        bail!("invalid mirror: unsupported scheme {scheme:?} in {url:?}");
    }
    if url.contains('?') || url.contains('#') {
        bail!("invalid mirror: query or fragment at end of the URI {url:?}");
    }
    let authority = rest.split('/').next().unwrap_or(rest);
    if authority.contains('@') {
        bail!("invalid mirror: username/password not allowed in URI {url:?}");
    }
    if authority.is_empty() {
        bail!("invalid mirror: {url:?} is not a valid URI");
    }
    Ok(format!("{}/", url.trim_end_matches('/')))
}
// ANCHOR_END: validate_mirror

/// `index.docker.io` is Docker Hub's old name for `docker.io`.
fn normalize_index_name(name: &str) -> &str {
    if name == "index.docker.io" {
        "docker.io"
    } else {
        name
    }
}

/// `host` of `host:port`, `[v6]:port`, `host` or a bare IPv6 address.
pub fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    if registry.parse::<IpAddr>().is_ok() {
        return registry;
    }
    registry.rsplit_once(':').map_or(registry, |(host, _)| host)
}

fn port_of(registry: &str) -> Option<&str> {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split_once("]:").map(|(_, port)| port);
    }
    if registry.parse::<IpAddr>().is_ok() {
        return None;
    }
    registry.rsplit_once(':').map(|(_, port)| port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_are_validated_and_normalised_as_dockerd_does() {
        assert_eq!(
            validate_mirror("http://127.0.0.1:5000").unwrap(),
            "http://127.0.0.1:5000/"
        );
        assert_eq!(
            validate_mirror("https://m.example.com/hub//").unwrap(),
            "https://m.example.com/hub/"
        );
        for bad in [
            "m.example.com",
            "ftp://m.example.com",
            "https://m.example.com/?x=1",
            "https://u:p@m.example.com",
        ] {
            assert!(validate_mirror(bad).is_err(), "{bad}");
        }
        let config = RegistryConfig::new(
            &[
                "http://a:1".into(),
                "http://a:1/".into(),
                "http://b:2".into(),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(config.mirrors, ["http://a:1/", "http://b:2/"]);
    }

    #[test]
    fn insecure_registries_follow_dockerds_rules() {
        let config = RegistryConfig::new(
            &[],
            &[
                "registry.lan:5000".into(),
                "http://plain.lan".into(),
                "10.1.0.0/16".into(),
                "docker.io".into(),
            ],
        )
        .unwrap();
        assert!(!config.is_secure("registry.lan:5000"));
        assert!(config.is_secure("registry.lan:5001"));
        assert!(!config.is_secure("plain.lan"));
        assert!(!config.is_secure("10.1.200.3:443"));
        assert!(config.is_secure("10.2.0.1:443"));
        // Loopback is always insecure; Docker Hub never is.
        assert!(!config.is_secure("127.0.0.1:5000"));
        assert!(!config.is_secure("[::1]:5000"));
        assert!(config.is_secure("docker.io"));
        assert!(config.is_secure("index.docker.io"));
        assert!(RegistryConfig::new(&[], &["tcp://x:1".into()]).is_err());
        assert!(RegistryConfig::new(&[], &["-x".into()]).is_err());
        assert!(RegistryConfig::new(&[], &["x:port".into()]).is_err());
    }

    #[test]
    fn cidrs_contain_their_addresses() {
        let net = Cidr::parse("192.168.1.77/24").unwrap();
        assert_eq!(net.to_string(), "192.168.1.0/24");
        assert!(net.contains("192.168.1.1".parse().unwrap()));
        assert!(!net.contains("192.168.2.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("10.0.0.0").is_none());
    }
}
