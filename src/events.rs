//! Docker's events: what happened to containers, images, volumes and networks, one record per
//! action, as `docker events` and the Engine API's `GET /events` show them.
//!
//! Docker's daemon keeps its events in memory (the newest 256) and streams them to whoever
//! listens. minidock has no long-lived process that every action passes through (the CLI is
//! daemonless), so the library functions that act append each event to a journal in the state
//! root, `events.jsonl`: one JSON line in the Engine API's `Message` shape per event, written
//! with `O_APPEND` in one `write(2)` under `events.lock`. The journal keeps the newest
//! [`KEEP`] events: once it grows past [`MAX_BYTES`], the newest lines are copied to a temporary
//! file renamed over it, under the same lock. Readers (`minidock events`, the daemon's
//! `GET /events`) read it and follow it by polling ([`Follower`]).
//!
//! An event that cannot be written (a full disk, a state root not made yet) is lost; the
//! action itself is not failed for it, as Docker's daemon does not fail one.

use crate::container::Paths;
use crate::container::state::ContainerState;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The journal's file name in the state root.
pub const JOURNAL: &str = "events.jsonl";
const LOCK: &str = "events.lock";
/// Past this size (bytes) the journal is cut to its newest [`KEEP`] events.
pub const MAX_BYTES: u64 = 1 << 20;
/// How many events a cut journal keeps.
pub const KEEP: usize = 2000;

/// What an event happened to: its ID and attributes (a container's labels, `image`, `name`;
/// an image's `name`; a network's `name` and `type`; ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

/// One event in the Engine API's `events.Message` shape; `status`, `id` and `from` are the
/// deprecated fields Docker still fills for container (all three) and image (`status`, `id`)
/// events. `time` is in seconds since the epoch, `timeNano` in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Message {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

impl Message {
    /// A `kind` event (`container`, `image`, `volume`, `network`) happening now.
    pub fn new(kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) -> Self {
        let nanos = nanos_of(SystemTime::now());
        let mut message = Message {
            kind: kind.to_owned(),
            action: action.to_owned(),
            actor: Actor {
                id: id.to_owned(),
                attributes,
            },
            scope: "local".to_owned(),
            time: nanos.div_euclid(1_000_000_000),
            time_nano: nanos,
            ..Message::default()
        };
        if kind == "container" || kind == "image" {
            message.status = action.to_owned();
            message.id = id.to_owned();
        }
        if kind == "container" {
            message.from = message
                .actor
                .attributes
                .get("image")
                .cloned()
                .unwrap_or_default();
        }
        message
    }
}

fn nanos_of(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn attributes(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

// ANCHOR: record
/// Appends `message` to the journal in `root`: one line, one `write(2)` on an `O_APPEND`
/// descriptor, under `events.lock`; cuts the journal to its newest [`KEEP`] events once it is
/// past [`MAX_BYTES`]. Errors: the journal cannot be opened, written or cut.
pub fn append(root: &Path, message: &Message) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if !root.is_dir() {
        return Ok(());
    }
    let mut line = serde_json::to_vec(message)?;
    line.push(b'\n');
    let _lock = crate::state::lock_file(&root.join(LOCK))?;
    let path = root.join(JOURNAL);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(&line)
        .with_context(|| format!("appending to {}", path.display()))?;
    if file.metadata()?.len() > MAX_BYTES {
        cut(&path)?;
    }
    Ok(())
}
// ANCHOR_END: record

/// Keeps the newest [`KEEP`] lines of the journal (temp file + rename).
fn cut(path: &Path) -> Result<()> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let lines: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut kept = Vec::new();
    for line in &lines[lines.len().saturating_sub(KEEP)..] {
        kept.extend_from_slice(line);
        kept.push(b'\n');
    }
    crate::state::write_atomic_unsynced_with_mode(path, &kept, 0o600)
}

/// Records an event; a failure loses the event only (see the module's documentation).
pub fn record(root: &Path, message: Message) {
    let _ = append(root, &message);
}

/// Records a container event: the actor is the container, its attributes its labels, `image`
/// (as the user named it), `name` and `extra` (`exitCode` for `die`, `signal` for `kill`,
/// ...).
pub fn container(paths: &Paths, state: &ContainerState, action: &str, extra: &[(&str, String)]) {
    let mut attrs = state.config.labels.clone();
    attrs.insert("image".into(), state.image.clone());
    attrs.insert("name".into(), state.name.trim_start_matches('/').to_owned());
    attrs.extend(attributes(extra));
    record(
        &paths.root,
        Message::new("container", action, &state.id, attrs),
    );
}

/// Records a container event for the container `name_or_id` names (nothing when none does).
pub fn container_named(paths: &Paths, name_or_id: &str, action: &str, extra: &[(&str, String)]) {
    if let Ok(state) = paths.resolve(name_or_id) {
        container(paths, &state, action, extra);
    }
}

/// Records an exec event: `exec_create` and `exec_start` carry the command in their action
/// (`exec_start: sh -c date`), as Docker's; the attribute `execID` names the exec instance.
pub fn exec(
    paths: &Paths,
    state: &ContainerState,
    action: &str,
    exec_id: &str,
    command: &[String],
) {
    let action = format!("{action}: {}", command.join(" "));
    container(paths, state, &action, &[("execID", exec_id.to_owned())]);
}

/// Records a container's `die`: `exitCode`, and `execDuration` (whole seconds since it
/// started), as Docker 23 and later add.
pub fn container_died(paths: &Paths, id: &str, exit_code: i32) {
    let Ok(Some(state)) = ContainerState::load(paths, id) else {
        return;
    };
    let ran = crate::state::parse_rfc3339(&state.started_at)
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map_or(0, |d| d.as_secs());
    let extra = [
        ("exitCode", exit_code.to_string()),
        ("execDuration", ran.to_string()),
    ];
    container(paths, &state, "die", &extra);
}

/// Records an image event: the actor is `id` (an image ID, or the reference pulled or
/// pushed), with the attribute `name` (the reference).
pub fn image(root: &Path, id: &str, name: &str, action: &str) {
    let attrs = attributes(&[("name", name.to_owned())]);
    record(root, Message::new("image", action, id, attrs));
}

/// Records an image event whose actor and `name` are the image's ID (`load`, `save`,
/// `import`, `untag`, `delete`, as moby's).
pub fn image_by_id(root: &Path, id: &impl std::fmt::Display, action: &str) {
    let id = id.to_string();
    image(root, &id, &id, action);
}

/// Records what an image removal did: an `untag` event per name removed (the actor and its
/// `name` are the image's ID, as moby's), a `delete` per image deleted.
pub fn images_removed(
    root: &Path,
    image_id: &impl std::fmt::Display,
    removed: &[crate::image::store::Removed],
) {
    for r in removed {
        match r {
            crate::image::store::Removed::Untagged(_) => image_by_id(root, image_id, "untag"),
            crate::image::store::Removed::Deleted(id) => image_by_id(root, id, "delete"),
        }
    }
}

/// Records a container's `commit`: `comment`, the new image's `imageID` and `imageRef` (its
/// first name, empty without one).
pub fn committed(
    paths: &Paths,
    state: &ContainerState,
    image: &crate::image::store::Image,
    names: &[crate::image::reference::Reference],
    comment: Option<&str>,
) {
    let extra = [
        ("comment", comment.unwrap_or("").to_owned()),
        ("imageID", image.id.to_string()),
        (
            "imageRef",
            names.first().map(|n| n.familiar()).unwrap_or_default(),
        ),
    ];
    container(paths, state, "commit", &extra);
}

/// Records a prune of `kind` (`container`, `image`, `volume`, `network`), once it is done: no
/// actor ID, the attribute `reclaimed` (bytes freed), as dockerd's.
pub fn pruned(root: &Path, kind: &str, reclaimed: u64) {
    let attrs = attributes(&[("reclaimed", reclaimed.to_string())]);
    record(root, Message::new(kind, "prune", "", attrs));
}

/// Records a volume event: the actor is the volume's name, with `driver` and `extra`
/// (`container`, `destination`, `read/write` for `mount`).
pub fn volume(root: &Path, name: &str, driver: &str, action: &str, extra: &[(&str, String)]) {
    let mut attrs = attributes(&[("driver", driver.to_owned())]);
    attrs.extend(attributes(extra));
    record(root, Message::new("volume", action, name, attrs));
}

/// Records a network event: the actor is the network's ID, with `name`, `type` (its driver)
/// and `extra` (`container` for `connect` and `disconnect`).
pub fn network(
    root: &Path,
    id: &str,
    name: &str,
    driver: &str,
    action: &str,
    extra: &[(&str, String)],
) {
    let mut attrs = attributes(&[("name", name.to_owned()), ("type", driver.to_owned())]);
    attrs.extend(attributes(extra));
    record(root, Message::new("network", action, id, attrs));
}

/// [`network`] for the networks of the network state dir `state` (`<root>/network`); nothing
/// for a state dir elsewhere (a test's).
pub fn network_in(
    state: &crate::net::state::StateDir,
    id: &str,
    name: &str,
    driver: &str,
    action: &str,
    extra: &[(&str, String)],
) {
    if let Some(root) = root_of(state) {
        network(root, id, name, driver, action, extra);
    }
}

/// [`pruned`] of networks, for the network state dir `state` (nothing for one elsewhere).
pub fn networks_pruned(state: &crate::net::state::StateDir) {
    if let Some(root) = root_of(state) {
        pruned(root, "network", 0);
    }
}

/// The state root of the network state dir `state` (`<root>/network`), None for a state dir
/// elsewhere.
fn root_of(state: &crate::net::state::StateDir) -> Option<&Path> {
    let dir = state.root();
    match (dir.parent(), dir.file_name().and_then(|n| n.to_str())) {
        (Some(root), Some("network")) => Some(root),
        _ => None,
    }
}

/// Records a volume `mount` for each volume of a container that starts: `container`,
/// `destination`, `driver`, `propagation` and `read/write`, as Docker's.
pub fn volumes_mounted(paths: &Paths, state: &ContainerState) {
    for m in state.config.mounts.iter().filter(|m| m.kind == "volume") {
        let extra = [
            ("container", state.id.clone()),
            ("destination", m.destination.clone()),
            ("propagation", m.propagation.clone()),
            ("read/write", m.rw.to_string()),
        ];
        volume(&paths.root, &m.name, &m.driver, "mount", &extra);
    }
}

// ANCHOR: filter
/// `--filter KEY=VALUE` for events, as moby's `daemon/events.Filter`: values of one key are
/// alternatives, different keys must all hold. `container`, `volume` and `network` match the
/// actor's ID or its `name` attribute exactly or as a prefix; `event` matches the action
/// exactly (as a prefix for `exec_create`, `exec_start` and `health_status`, whose actions
/// carry the command); `type` and `scope` exactly; `image` the actor's ID or its image name,
/// with or without the tag; `label` a `KEY` present or `KEY=VALUE` among the attributes.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pairs: Vec<(String, String)>,
}
// ANCHOR_END: filter

impl Filter {
    // ANCHOR: filter_parse
    /// Parses `KEY=VALUE` flags. Errors: one without `=`, as the CLI's
    /// `bad format of filter (expected name=value)`.
    pub fn parse(flags: &[String]) -> Result<Filter> {
        let mut pairs = Vec::new();
        for flag in flags {
            let Some((key, value)) = flag.split_once('=') else {
                return Err(crate::cli::Exit::new(
                    crate::cli::code::FAILED,
                    format!(
                        "invalid argument {} for \"-f, --filter\" flag: bad format of filter \
                         (expected name=value)",
                        crate::cli::quote(flag)
                    ),
                )
                .into());
            };
            pairs.push((key.trim().to_lowercase(), value.trim().to_owned()));
        }
        Ok(Filter { pairs })
    }
    // ANCHOR_END: filter_parse

    // ANCHOR: filter_match
    /// The values given for `key`, None when the key was not given at all (then it does not
    /// filter).
    fn values(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self
            .pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then_some(values)
    }

    /// Whether `key` holds for an event whose side of it is `source`: not given, or one of
    /// its values equals one of `source`.
    fn exact(&self, key: &str, source: &[&str]) -> bool {
        self.values(key)
            .is_none_or(|values| values.iter().any(|v| source.contains(v)))
    }

    /// As [`Filter::exact`], a value also matching as a prefix (an ID's first characters).
    fn fuzzy(&self, key: &str, source: &[&str]) -> bool {
        self.values(key).is_none_or(|values| {
            values
                .iter()
                .any(|v| source.iter().any(|s| s == v || s.starts_with(v)))
        })
    }

    // ANCHOR_END: filter_match

    // ANCHOR: filter_includes
    /// Whether `event` passes every filter.
    pub fn includes(&self, event: &Message) -> bool {
        let attrs = &event.actor.attributes;
        let id = event.actor.id.as_str();
        let name = attrs.get("name").map_or("", String::as_str);
        let fuzzy_event = self.values("event").is_some_and(|values| {
            values
                .iter()
                .any(|v| matches!(*v, "exec_create" | "exec_start" | "health_status"))
        });
        let event_ok = if fuzzy_event {
            self.fuzzy("event", &[&event.action])
        } else {
            self.exact("event", &[&event.action])
        };
        let image_name = match event.kind.as_str() {
            "image" => name,
            _ => attrs.get("image").map_or("", String::as_str),
        };
        let images = [id, image_name, strip_tag(id), strip_tag(image_name)];
        event_ok
            && self.exact("type", &[&event.kind])
            && self.exact("scope", &[&event.scope])
            && self.fuzzy("container", &[id, name])
            && self.fuzzy("volume", &[id, name])
            && self.fuzzy("network", &[id, name])
            && self.exact("image", &images)
            && self.labels(attrs)
    }

    /// `label=`: every value given must hold, `KEY` present or `KEY=VALUE` among the
    /// attributes.
    fn labels(&self, attrs: &BTreeMap<String, String>) -> bool {
        self.values("label").is_none_or(|values| {
            values.iter().all(|want| match want.split_once('=') {
                Some((k, v)) => attrs.get(k).is_some_and(|have| have == v),
                None => attrs.contains_key(*want),
            })
        })
    }
    // ANCHOR_END: filter_includes
}

/// A reference without its tag (`busybox:1.36` → `busybox`; a registry port stays).
fn strip_tag(reference: &str) -> &str {
    let reference = reference.split('@').next().unwrap_or(reference);
    match reference.rfind(':') {
        Some(colon) if !reference[colon..].contains('/') => &reference[..colon],
        _ => reference,
    }
}

// ANCHOR: follower
/// Reads the journal from a point on, and what is appended to it later (polling). A cut
/// journal (a new file) is read again from its start, without the events already given.
pub struct Follower {
    path: PathBuf,
    offset: u64,
    inode: u64,
    last_nano: i64,
    since: i64,
    until: Option<i64>,
}

impl Follower {
    /// Follows the journal in `root`, giving the events at or after `since` (all that are
    /// kept, back to the oldest) up to `until` (both inclusive, as Docker's). Without
    /// `since`, only events appended from now on.
    pub fn new(root: &Path, since: Option<SystemTime>, until: Option<SystemTime>) -> Follower {
        let path = root.join(JOURNAL);
        let (inode, len) = std::fs::metadata(&path).map_or((0, 0), |m| {
            use std::os::unix::fs::MetadataExt;
            (m.ino(), m.len())
        });
        Follower {
            path,
            offset: if since.is_some() { 0 } else { len },
            inode,
            last_nano: i64::MIN,
            since: since.map_or(i64::MIN, nanos_of),
            until: until.map(nanos_of),
        }
    }

    /// Whether `until` has passed: nothing more can come.
    pub fn done(&self) -> bool {
        self.until
            .is_some_and(|until| nanos_of(SystemTime::now()) > until)
    }

    /// The events appended since the last call (the first: those at or after `since`), in
    /// the journal's order. Errors: the journal cannot be read.
    pub fn next_events(&mut self) -> Result<Vec<Message>> {
        use std::os::unix::fs::MetadataExt;
        let mut file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("opening {}", self.path.display())),
        };
        let meta = file.metadata()?;
        if meta.ino() != self.inode || meta.len() < self.offset {
            self.inode = meta.ino();
            self.offset = 0;
        }
        file.seek(std::io::SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", self.path.display()))?;
        // Only whole lines: a line being written is read at the next call.
        let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        self.offset += whole as u64;
        let mut out = Vec::new();
        for line in bytes[..whole].split(|b| *b == b'\n') {
            let Ok(event) = serde_json::from_slice::<Message>(line) else {
                continue;
            };
            if event.time_nano <= self.last_nano || event.time_nano < self.since {
                continue;
            }
            if self.until.is_some_and(|until| event.time_nano > until) {
                continue;
            }
            self.last_nano = event.time_nano;
            out.push(event);
        }
        Ok(out)
    }
}
// ANCHOR_END: follower

/// dockerd's refusal of a window that ends before it begins: `until` given and before
/// `since`. `since_text` and `until_text` are the values as the request carries them, which
/// the words repeat. Errors: exit 1 (the API's 400), `` `since` time (S) cannot be after
/// `until` time (U) ``.
pub fn check_window(
    since: Option<(SystemTime, &str)>,
    until: Option<(SystemTime, &str)>,
) -> Result<()> {
    if let (Some((since, since_text)), Some((until, until_text))) = (since, until)
        && until < since
    {
        return Err(crate::cli::Exit::new(
            crate::cli::code::REQUEST_FAILED,
            format!("`since` time ({since_text}) cannot be after `until` time ({until_text})"),
        )
        .into());
    }
    Ok(())
}

/// A `--since`/`--until` value as the docker CLI sends it (its `timetypes.GetTimestamp`):
/// Unix seconds as given, a duration ago as whole Unix seconds, any other time as
/// `SECONDS.NANOSECONDS`; `time` is what `value` was read as.
pub fn as_sent(value: &str, time: SystemTime) -> String {
    let nanos = nanos_of(time);
    let unix = value.split_once('.').map_or(value, |(whole, _)| whole);
    if !unix.is_empty() && unix.chars().all(|c| c.is_ascii_digit()) {
        value.to_owned()
    } else if value != "0" && crate::container::logs::parse_go_duration(value).is_some() {
        nanos.div_euclid(1_000_000_000).to_string()
    } else {
        format!(
            "{}.{:09}",
            nanos.div_euclid(1_000_000_000),
            nanos.rem_euclid(1_000_000_000)
        )
    }
}

/// How often a follower looks at the journal.
pub const POLL: Duration = Duration::from_millis(100);

// ANCHOR: pretty
/// An event as `docker events` prints it without `--format`: the time (RFC 3339 with nine
/// fraction digits, UTC), the type, the action, the actor's ID, then its attributes sorted by
/// key in parentheses: `2024-05-01T12:00:00.000000000Z container start 3f2a… (image=busybox,
/// name=web)`.
pub fn pretty(event: &Message) -> String {
    let nanos = u64::try_from(event.time_nano).unwrap_or(0);
    let whole = UNIX_EPOCH + Duration::from_secs(nanos / 1_000_000_000);
    let seconds = crate::state::rfc3339(whole);
    let mut out = format!(
        "{}.{:09}Z {} {} {}",
        seconds.trim_end_matches('Z'),
        nanos % 1_000_000_000,
        event.kind,
        event.action,
        event.actor.id
    );
    if !event.actor.attributes.is_empty() {
        let attrs: Vec<String> = event
            .actor
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!(" ({})", attrs.join(", ")));
    }
    out
}
// ANCHOR_END: pretty

/// `minidock events`'s flags, as `docker events`'s.
#[derive(Debug, Clone, clap::Args)]
pub struct EventsArgs {
    /// Show all events created since timestamp (Unix seconds, RFC 3339, or a duration ago).
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp.
    #[arg(long)]
    pub until: Option<String>,
    /// Filter output based on conditions provided (`type=`, `container=`, `event=`,
    /// `image=`, `label=`, `volume=`, `network=`).
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
    /// Format output using a custom template: `json` (each event as JSON), or a Go template.
    #[arg(long)]
    pub format: Option<String>,
}

/// `minidock events`: prints the events at or after `--since`, then follows the journal until
/// `--until` (forever without it). Errors: a time or filter that does not parse, a template
/// that does not parse (exit 1, as Docker's CLI), an unreadable journal.
pub fn run_events(paths: &Paths, args: &EventsArgs) -> Result<u8> {
    let now = SystemTime::now();
    let time = |flag: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| crate::container::logs::parse_log_time(flag, v, now))
            .transpose()
    };
    let since = time("since", &args.since)?;
    let until = time("until", &args.until)?;
    let sent = |time: Option<SystemTime>, value: &Option<String>| {
        time.zip(value.as_deref()).map(|(t, v)| (t, as_sent(v, t)))
    };
    let (since_sent, until_sent) = (sent(since, &args.since), sent(until, &args.until));
    check_window(
        since_sent.as_ref().map(|(t, v)| (*t, v.as_str())),
        until_sent.as_ref().map(|(t, v)| (*t, v.as_str())),
    )?;
    let filter = Filter::parse(&args.filters)?;
    let template = args.format.as_deref().filter(|f| !f.is_empty());
    if let Some(format) = template {
        // A template that does not parse is refused before anything is read.
        if format != "json" {
            crate::format::Format::inspect(format)
                .map_err(|err| crate::cli::Exit::new(1, format!("{err:#}")))?;
        }
    }
    let mut follower = Follower::new(&paths.root, since, until);
    let mut out = std::io::stdout().lock();
    loop {
        for event in follower.next_events()? {
            if !filter.includes(&event) {
                continue;
            }
            let line = match template {
                Some("json") => format!("{}\n", serde_json::to_string(&event)?),
                Some(format) => crate::system::render(format, &go_fields(&event), &SHAPE)?,
                None => format!("{}\n", pretty(&event)),
            };
            out.write_all(line.as_bytes())?;
            out.flush()?;
        }
        if follower.done() {
            return Ok(0);
        }
        std::thread::sleep(POLL);
    }
}

/// An event under the Go field names of `events.Message`, which a template sees (`.Status`,
/// `.ID`, `.From`, `.Scope`, `.Time`, `.TimeNano`, besides `.Type`, `.Action`, `.Actor`); `json`
/// still prints the API's JSON keys.
fn go_fields(event: &Message) -> serde_json::Value {
    serde_json::json!({
        "Status": event.status,
        "ID": event.id,
        "From": event.from,
        "Type": event.kind,
        "Action": event.action,
        "Actor": event.actor,
        "Scope": event.scope,
        "Time": event.time,
        "TimeNano": event.time_nano,
    })
}

/// The Go types of `events.Message` that a template sees: the attributes are a map.
pub const SHAPE: crate::format::Shape = crate::format::Shape {
    maps: &["Actor.Attributes"],
    pointers: &[],
    omitted: &[],
};

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Message {
        let attrs = attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Message::new(kind, action, id, attrs)
    }

    #[test]
    fn container_events_carry_the_legacy_fields_and_docker_keys() {
        let e = event(
            "container",
            "start",
            "abc",
            &[("image", "busybox"), ("name", "web")],
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["status"], "start");
        assert_eq!(json["id"], "abc");
        assert_eq!(json["from"], "busybox");
        assert_eq!(json["Actor"]["ID"], "abc");
        assert_eq!(json["scope"], "local");
        assert_eq!(json["time"].as_i64().unwrap(), e.time_nano / 1_000_000_000);
        let v = event("volume", "create", "data", &[("driver", "local")]);
        let json = serde_json::to_value(&v).unwrap();
        assert!(json.get("status").is_none() && json.get("from").is_none());
    }

    #[test]
    fn filters_match_as_mobys() {
        let f = |flags: &[&str]| {
            Filter::parse(&flags.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
        };
        let e = event(
            "container",
            "exec_start: sh -c true",
            "abcdef",
            &[
                ("image", "busybox:1.36"),
                ("name", "web"),
                ("tier", "front"),
            ],
        );
        assert!(f(&["container=web"]).includes(&e));
        assert!(f(&["container=abc"]).includes(&e));
        assert!(!f(&["container=db"]).includes(&e));
        assert!(f(&["container=db", "container=web"]).includes(&e));
        assert!(f(&["event=exec_start"]).includes(&e));
        assert!(!f(&["event=exec"]).includes(&e));
        assert!(f(&["image=busybox"]).includes(&e));
        assert!(f(&["label=tier", "label=tier=front"]).includes(&e));
        assert!(!f(&["label=tier=back"]).includes(&e));
        assert!(!f(&["type=image"]).includes(&e));
        assert!(Filter::parse(&["nokey".into()]).is_err());
    }

    #[test]
    fn the_journal_is_followed_and_cut_to_its_newest_events() {
        let dir = tempfile::tempdir().unwrap();
        let start = SystemTime::now();
        let mut follower = Follower::new(dir.path(), Some(start), None);
        for n in 0..3 {
            append(
                dir.path(),
                &event("volume", "create", &format!("v{n}"), &[]),
            )
            .unwrap();
        }
        let got: Vec<String> = follower
            .next_events()
            .unwrap()
            .into_iter()
            .map(|e| e.actor.id)
            .collect();
        assert_eq!(got, ["v0", "v1", "v2"]);
        assert!(follower.next_events().unwrap().is_empty());
        let path = dir.path().join(JOURNAL);
        cut(&path).unwrap();
        append(dir.path(), &event("volume", "destroy", "v3", &[])).unwrap();
        let got: Vec<String> = follower
            .next_events()
            .unwrap()
            .into_iter()
            .map(|e| e.actor.id)
            .collect();
        assert_eq!(got, ["v3"]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 4);
    }

    #[test]
    fn a_window_that_ends_before_it_begins_is_refused_in_the_sent_words() {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(as_sent("1796099143.5", at(1)), "1796099143.5");
        assert_eq!(as_sent("10m", at(1_700_000_000)), "1700000000");
        let t = UNIX_EPOCH + Duration::from_nanos(1_796_101_200_000_000_007);
        assert_eq!(as_sent("2026-12-01T05:00:00Z", t), "1796101200.000000007");
        let err = check_window(Some((at(200), "200")), Some((at(100), "100"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`since` time (200) cannot be after `until` time (100)"
        );
        assert!(check_window(Some((at(5), "5")), Some((at(5), "5"))).is_ok());
        assert!(check_window(None, Some((at(5), "5"))).is_ok());
    }

    #[test]
    fn pretty_prints_as_the_docker_cli() {
        let mut e = event(
            "container",
            "die",
            "abc",
            &[("name", "web"), ("exitCode", "3")],
        );
        e.time_nano = 1_700_000_000_123_456_789;
        assert_eq!(
            pretty(&e),
            "2023-11-14T22:13:20.123456789Z container die abc (exitCode=3, name=web)"
        );
    }
}
