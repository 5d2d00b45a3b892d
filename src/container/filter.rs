//! `--filter KEY=VALUE` of `ps` (and the `images` filters' parsing), as Docker's daemon reads
//! them (moby `api/types/filters` and `daemon/list.go`): the values of one key are
//! alternatives (any may match), different keys must all match.
//!
//! `ps` keys: `status` (created, restarting, running, removing, paused, exited, dead; it also
//! lists stopped containers without `-a`), `name` and `id` (Go regular expressions, searched
//! in `/NAME` and in the full ID), `label` (`KEY` or `KEY=VALUE`, every one must match),
//! `ancestor` (an image name or ID: containers of that image), `exited` (exit code, with `-a`),
//! `before` and `since` (a container name or ID). Errors are Docker's: a value without `=`
//! exits 125 (`bad format of filter (expected name=value)`), an unknown key or status value
//! exits 1 (`Invalid filter 'KEY'`, `Invalid filter 'status=VALUE'`).

use super::state::{ContainerState, Status};
use crate::cli::Exit;
use anyhow::Result;
use std::collections::BTreeMap;

/// The parsed `--filter` values, by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters(BTreeMap<String, Vec<String>>);

/// The keys `ps --filter` takes.
pub const PS_KEYS: &[&str] = &[
    "ancestor", "before", "exited", "id", "label", "name", "since", "status",
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

/// What `ps` selects from `containers` (newest first): parsed filters, `all`, and `last` (the
/// `-n`/`-l` count, which lists stopped containers too). `image_id_of` resolves an
/// `ancestor=` value to an image ID (`None` when no image has that name).
pub fn select_containers(
    containers: Vec<ContainerState>,
    filters: &Filters,
    all: bool,
    last: Option<usize>,
    image_id_of: impl Fn(&str) -> Option<String>,
) -> Result<Vec<ContainerState>> {
    for status in filters.get("status") {
        if !STATUSES.contains(&status.as_str()) {
            return Err(invalid(&format!("status={status}")));
        }
    }
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
    let ancestors: Vec<String> = filters
        .get("ancestor")
        .iter()
        .filter_map(|a| image_id_of(a))
        .collect();
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
                    format!("No such container: {wanted}"),
                )
                .into()
            })
    };
    // Newest first: `since` keeps those above it, `before` those below it.
    let (since, before) = (position("since")?, position("before")?);
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
            && filters.matches("id", &c.id)
            && filters.matches_labels("label", &c.config.labels)
            && (!filters.contains("ancestor") || ancestors.contains(&c.image_id))
            && (exited.is_empty()
                || (c.observe() == Status::Exited && exited.contains(&c.exit_code)));
        if keep {
            selected.push(c);
        }
    }
    if let Some(n) = last {
        selected.truncate(n);
    }
    Ok(selected)
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
}
