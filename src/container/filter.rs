//! `--filter KEY=VALUE` of `ps` (and the `images` filters' parsing), as Docker's daemon reads
//! them (moby `api/types/filters` and `daemon/list.go`): the values of one key are
//! alternatives (any may match), different keys must all match.
//!
//! `ps` keys: `status` (created, restarting, running, removing, paused, exited, dead; it also
//! lists stopped containers without `-a`), `name` (a Go regular expression, searched in `/NAME`
//! and `NAME`), `id` (the full ID or the start of exactly one ID, then also searched in the
//! full ID as an expression), `label` (`KEY` or `KEY=VALUE`, every one must match),
//! `ancestor` (an image name or ID: containers of that image), `exited` (exit code, with `-a`),
//! `before` and `since` (a container name or ID), `volume` (a volume's name, a bind mount's
//! source, or either's destination in the container, each exactly), `network` (a network's
//! name exactly, or the start of its ID), `publish` and `expose` (`PORT[/PROTO]` or
//! `START-END[/PROTO]`, the protocol `tcp` when none: a host port a running container
//! publishes, or a container port it exposes or publishes), and `isolation` (taken, and on
//! Linux, where every container has the `default` isolation, it selects every container).
//! Errors are Docker's: a value without `=` exits 125 (`bad format of filter (expected
//! name=value)`), an unknown key or status value exits 1 (`Invalid filter 'KEY'`,
//! `Invalid filter 'status=VALUE'`), as does a port value that does not parse.

use super::state::{ContainerState, Status};
use crate::cli::Exit;
use anyhow::Result;
use std::collections::BTreeMap;

/// The parsed `--filter` values, by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters(BTreeMap<String, Vec<String>>);

/// The keys `ps --filter` takes.
pub const PS_KEYS: &[&str] = &[
    "ancestor",
    "before",
    "exited",
    "expose",
    "id",
    "isolation",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

/// The statuses `status=` takes (moby `container.IsValidStateString`).
pub const STATUSES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

impl Filters {
    /// Parses `KEY=VALUE` arguments and checks the keys against `accepted`.
    pub fn parse(args: &[String], accepted: &[&str]) -> Result<Filters> {
        let mut filters = BTreeMap::<String, Vec<String>>::new();
        for arg in args {
            let Some((key, value)) = arg.split_once('=') else {
                return Err(Exit::new(
                    crate::cli::code::FAILED,
                    format!(
                        "invalid argument {arg:?} for \"-f, --filter\" flag: bad format of \
                         filter (expected name=value)"
                    ),
                )
                .into());
            };
            let key = key.trim().to_lowercase();
            if !accepted.contains(&key.as_str()) {
                return Err(invalid(&key));
            }
            filters
                .entry(key)
                .or_default()
                .push(value.trim().to_owned());
        }
        Ok(Filters(filters))
    }

    /// The values given for `key` (empty when none).
    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// moby's `Args.Match`: a value equal to `source`, or a regular expression found in it.
    /// A value that is not a valid expression matches only itself.
    pub fn matches(&self, key: &str, source: &str) -> bool {
        let values = self.get(key);
        values.is_empty()
            || values.iter().any(|value| {
                value == source || regex::Regex::new(value).is_ok_and(|re| re.is_match(source))
            })
    }

    /// moby's `MatchKVList`: every `KEY` must be a label, every `KEY=VALUE` a label with that
    /// value.
    pub fn matches_labels(&self, key: &str, labels: &BTreeMap<String, String>) -> bool {
        self.get(key)
            .iter()
            .all(|wanted| match wanted.split_once('=') {
                Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
                None => labels.contains_key(wanted),
            })
    }
}

/// Docker's `Invalid filter 'TEXT'`, exit 1.
pub fn invalid(text: &str) -> anyhow::Error {
    Exit::new(super::REQUEST_FAILED, format!("Invalid filter '{text}'")).into()
}

/// The status name `ps` shows in STATE and `status=` matches: `paused` for a frozen one,
/// `restarting` for one waiting to restart.
pub fn state_name(c: &ContainerState) -> &'static str {
    if super::pause::is_paused(c) {
        "paused"
    } else if c.is_restarting() {
        "restarting"
    } else {
        c.observe().name()
    }
}

/// One port of a running container, as the Engine API's container list shows it: the
/// container's port, the host port publishing it (`None` when only exposed), the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPort {
    pub private: u16,
    pub public: Option<u16>,
    pub proto: String,
}

/// What [`select_containers`] needs beyond a container's record.
pub trait Facts {
    /// The ID of the image `name` names (`None` when no image has that name): `ancestor=`.
    fn image_id(&self, name: &str) -> Option<String>;
    /// The container's networks as (name, ID), the ID empty until the container first
    /// started (as dockerd records it): `network=`.
    fn networks(&self, c: &ContainerState) -> Vec<(String, String)>;
    /// The container's ports while it runs (none otherwise): `publish=` and `expose=`.
    fn ports(&self, c: &ContainerState) -> Vec<ListedPort>;
}

/// What `ps` selects from `containers` (newest first): parsed filters, `all`, and `last` (the
/// `-n`/`-l` count, which lists stopped containers too). The values are checked in moby's
/// order (`exited`, `status`, `before`, `since`, `publish`, `expose`), so the first bad one
/// is the one reported.
pub fn select_containers(
    containers: Vec<ContainerState>,
    filters: &Filters,
    all: bool,
    last: Option<usize>,
    facts: &impl Facts,
) -> Result<Vec<ContainerState>> {
    let exited: Vec<i32> = filters
        .get("exited")
        .iter()
        .map(|code| {
            code.parse::<i32>().map_err(|_| {
                anyhow::Error::from(Exit::new(
                    super::REQUEST_FAILED,
                    format!("strconv.Atoi: parsing {code:?}: invalid syntax"),
                ))
            })
        })
        .collect::<Result<_>>()?;
    for status in filters.get("status") {
        if !STATUSES.contains(&status.as_str()) {
            return Err(invalid(&format!("status={status}")));
        }
    }
    let position = |key: &str| -> Result<Option<usize>> {
        let Some(name) = filters.get(key).first() else {
            return Ok(None);
        };
        let wanted = name.strip_prefix('/').unwrap_or(name);
        containers
            .iter()
            .position(|c| c.id == *wanted || c.name == wanted || c.id.starts_with(wanted))
            .map(Some)
            .ok_or_else(|| {
                Exit::new(
                    super::REQUEST_FAILED,
                    // dockerd's words for it, and its 500.
                    format!("no such container {wanted}"),
                )
                .into()
            })
    };
    // Newest first: `since` keeps those above it, `before` those below it.
    let (before, since) = (position("before")?, position("since")?);
    let ancestors: Vec<String> = filters
        .get("ancestor")
        .iter()
        .filter_map(|a| facts.image_id(a))
        .collect();
    let publish = port_ranges(filters, "publish")?;
    let expose = port_ranges(filters, "expose")?;
    let by_id = id_matches(&containers, filters.get("id"));
    let everything = all || last.is_some() || filters.contains("status");
    let mut selected = Vec::new();
    for (index, c) in containers.into_iter().enumerate() {
        let state = state_name(&c);
        let keep = (everything || ["running", "paused", "restarting"].contains(&state))
            && since.is_none_or(|s| index < s)
            && before.is_none_or(|b| index > b)
            && (filters.get("status").is_empty()
                || filters.get("status").iter().any(|s| s == state))
            // moby matches the name with and without its `/`: `name=^web$` finds `/web`.
            && (filters.matches("name", &format!("/{}", c.name))
                || filters.matches("name", &c.name))
            && by_id.as_ref().is_none_or(|ids| ids.contains(&c.id))
            && filters.matches("id", &c.id)
            && filters.matches_labels("label", &c.config.labels)
            && (!filters.contains("ancestor") || ancestors.contains(&c.image_id))
            && (exited.is_empty()
                || (c.observe() == Status::Exited && exited.contains(&c.exit_code)))
            && (!filters.contains("volume") || has_volume(&c, filters.get("volume")))
            && (!filters.contains("network") || on_network(&facts.networks(&c), filters))
            && has_port(&publish, &expose, || facts.ports(&c));
        if keep {
            selected.push(c);
        }
    }
    if let Some(n) = last {
        selected.truncate(n);
    }
    Ok(selected)
}

/// The IDs `id=` values name, as moby's `filterByNameIDMatches` finds them in its ID index:
/// each value the full ID or the start of exactly one ID (case matters), so an empty value,
/// an ambiguous start or an expression names no container. None without `id=`.
fn id_matches(containers: &[ContainerState], wanted: &[String]) -> Option<Vec<String>> {
    if wanted.is_empty() {
        return None;
    }
    let mut ids = Vec::new();
    for value in wanted.iter().filter(|v| !v.is_empty()) {
        let mut found = containers
            .iter()
            .filter(|c| c.id.starts_with(value.as_str()));
        if let (Some(one), None) = (found.next(), found.next()) {
            ids.push(one.id.clone());
        }
    }
    Some(ids)
}

/// moby's `volume=`: a mount whose destination, or whose volume name (a bind mount's source
/// when it has none), is one of `wanted`, exactly.
fn has_volume(c: &ContainerState, wanted: &[String]) -> bool {
    c.config.mounts.iter().any(|m| {
        let name = if m.name.is_empty() {
            &m.source
        } else {
            &m.name
        };
        wanted
            .iter()
            .any(|w| w == name || (!m.destination.is_empty() && *w == m.destination))
    })
}

/// moby's `network=`: a network named exactly a value, or one whose ID starts with it.
fn on_network(networks: &[(String, String)], filters: &Filters) -> bool {
    filters.get("network").iter().any(|wanted| {
        networks
            .iter()
            .any(|(name, id)| name == wanted || id.starts_with(wanted.as_str()))
    })
}

/// `publish=` (a published host port) and `expose=` (a container port) each, when given,
/// match one of the container's ports; `ports` is asked only then.
fn has_port(
    publish: &[PortRange],
    expose: &[PortRange],
    ports: impl FnOnce() -> Vec<ListedPort>,
) -> bool {
    if publish.is_empty() && expose.is_empty() {
        return true;
    }
    let ports = ports();
    let any = |ranges: &[PortRange], pick: &dyn Fn(&ListedPort) -> Option<u16>| {
        ranges.is_empty()
            || ports
                .iter()
                .any(|p| pick(p).is_some_and(|n| ranges.iter().any(|r| r.contains(n, &p.proto))))
    };
    any(publish, &|p| p.public) && any(expose, &|p| Some(p.private))
}

/// A `publish=` or `expose=` value: ports `start..=end` of protocol `proto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRange {
    start: u16,
    end: u16,
    proto: String,
}

impl PortRange {
    fn contains(&self, port: u16, proto: &str) -> bool {
        (self.start..=self.end).contains(&port) && self.proto == proto
    }
}

/// The values of `key` (`publish` or `expose`) as moby's `portOp` reads them, with its
/// errors (exit 1): a `:` is refused, then `PORT[/PROTO]` or `START-END[/PROTO]` is parsed
/// as go-connections' `SplitProtoPort` and `ParsePortRange` do.
pub fn port_ranges(filters: &Filters, key: &str) -> Result<Vec<PortRange>> {
    let failed =
        |message: String| -> anyhow::Error { Exit::new(super::REQUEST_FAILED, message).into() };
    let mut out = Vec::new();
    for value in filters.get(key) {
        if value.contains(':') {
            return Err(failed(format!(
                "filter for '{key}' should not contain ':': {value}"
            )));
        }
        let (proto, port) = split_proto_port(value);
        let (start, end) = parse_port_range(port).map_err(|e| {
            failed(format!(
                "error while looking up for {key} {value}: {}",
                e.daemon_text()
            ))
        })?;
        out.push(PortRange {
            start,
            end,
            proto: proto.to_owned(),
        });
    }
    Ok(out)
}

/// go-connections' `SplitProtoPort`: (protocol, port), `tcp` when no protocol is given, both
/// empty when the port is.
pub fn split_proto_port(value: &str) -> (&str, &str) {
    let mut parts = value.split('/');
    let port = parts.next().unwrap_or_default();
    if port.is_empty() {
        return ("", "");
    }
    match parts.next() {
        None | Some("") => ("tcp", port),
        Some(proto) => (proto, port),
    }
}

/// Why a port or range did not parse ([`parse_port_range`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRangeError {
    Empty,
    /// The range, its end below its start.
    Reversed(String),
    /// Go's `strconv.ParseUint` message.
    Number(String),
}

impl PortRangeError {
    /// The words of the go-connections dockerd 20.10 vendors (its `ps` filters).
    pub fn daemon_text(&self) -> String {
        match self {
            PortRangeError::Empty => "Empty string specified for ports.".into(),
            PortRangeError::Reversed(r) => format!("Invalid range specified for the Port: {r}"),
            PortRangeError::Number(m) => m.clone(),
        }
    }

    /// The words of the go-connections the docker CLI vendors (its `--expose`).
    pub fn cli_text(&self) -> String {
        match self {
            PortRangeError::Empty => "empty string specified for ports".into(),
            PortRangeError::Reversed(r) => format!("invalid range specified for port: {r}"),
            PortRangeError::Number(m) => m.clone(),
        }
    }
}

/// go-connections' `ParsePortRange`: `PORT` or `START-END` (what follows a second `-` is
/// ignored), as (start, end).
pub fn parse_port_range(ports: &str) -> std::result::Result<(u16, u16), PortRangeError> {
    if ports.is_empty() {
        return Err(PortRangeError::Empty);
    }
    let Some((first, rest)) = ports.split_once('-') else {
        let port = parse_uint16(ports)?;
        return Ok((port, port));
    };
    let start = parse_uint16(first)?;
    let end = parse_uint16(rest.split('-').next().unwrap_or_default())?;
    if end < start {
        return Err(PortRangeError::Reversed(ports.to_owned()));
    }
    Ok((start, end))
}

/// Go's `strconv.ParseUint(text, 10, 16)`: decimal digits only, with its two errors.
fn parse_uint16(text: &str) -> std::result::Result<u16, PortRangeError> {
    let quoted = crate::build::shell::go_quote(text);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PortRangeError::Number(format!(
            "strconv.ParseUint: parsing {quoted}: invalid syntax"
        )));
    }
    text.parse().map_err(|_| {
        PortRangeError::Number(format!(
            "strconv.ParseUint: parsing {quoted}: value out of range"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(args: &[&str]) -> Result<Filters> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        Filters::parse(&args, PS_KEYS)
    }

    #[test]
    fn filters_parse_and_match_as_mobys() {
        let f = filters(&["name=^/?web", "label=tier", "label=app=web"]).unwrap();
        assert!(f.matches("name", "/web1"));
        assert!(!f.matches("name", "/app-web"));
        assert!(f.matches("id", "anything"));
        let mut labels = BTreeMap::from([("tier".to_owned(), String::new())]);
        assert!(!f.matches_labels("label", &labels));
        labels.insert("app".into(), "web".into());
        assert!(f.matches_labels("label", &labels));
        // A bad expression matches only itself.
        assert!(!filters(&["name=["]).unwrap().matches("name", "/x["));
        assert!(filters(&["name=["]).unwrap().matches("name", "["));
        let err = filters(&["foo=bar"]).unwrap_err();
        assert_eq!(err.to_string(), "Invalid filter 'foo'");
        let err = filters(&["foo"]).unwrap_err();
        assert!(err.to_string().contains("bad format of filter"), "{err}");
    }

    #[test]
    fn port_values_parse_as_go_connections() {
        let ranges = |value: &str| {
            port_ranges(&filters(&[&format!("publish={value}")]).unwrap(), "publish")
                .map_err(|e| e.to_string())
        };
        let one = |start, end, proto: &str| {
            Ok(vec![PortRange {
                start,
                end,
                proto: proto.to_owned(),
            }])
        };
        assert_eq!(ranges("80"), one(80, 80, "tcp"));
        assert_eq!(ranges("80/"), one(80, 80, "tcp"));
        assert_eq!(ranges("53/udp"), one(53, 53, "udp"));
        assert_eq!(ranges("1-2-3/udp"), one(1, 2, "udp"));
        let err = |text: &str| Err(format!("error while looking up for publish {text}"));
        assert_eq!(
            ranges("+5"),
            err("+5: strconv.ParseUint: parsing \"+5\": invalid syntax")
        );
        assert_eq!(
            ranges("65536"),
            err("65536: strconv.ParseUint: parsing \"65536\": value out of range")
        );
        assert_eq!(
            ranges("/tcp"),
            err("/tcp: Empty string specified for ports.")
        );
        assert_eq!(
            ranges("9-8"),
            err("9-8: Invalid range specified for the Port: 9-8")
        );
        assert_eq!(
            ranges("1:2"),
            Err("filter for 'publish' should not contain ':': 1:2".to_owned())
        );
        let range = &ranges("79-81").unwrap()[0];
        assert!(range.contains(80, "tcp"));
        assert!(!range.contains(80, "udp") && !range.contains(82, "tcp"));
    }
}
