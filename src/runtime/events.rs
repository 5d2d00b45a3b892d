//! `runtime events`: runc's `events` verb. It prints the container's cgroup counters as a JSON
//! line, `{"type":"stats","id":ID,"data":{...}}`, once with `--stats`, or every `--interval`
//! (Go duration, default `5s`) until interrupted, with an `{"type":"oom","id":ID}` line when
//! the OOM killer killed a process in the container since the last look.
//!
//! `data` has runc's shape (libcontainer's `types.Stats`) for the counters minidock's cgroup
//! module reads: `cpu.usage.total` (nanoseconds), `cpu.throttling.throttled_periods`,
//! `memory.usage` (`usage`, `max`, `limit`, `failcnt`, bytes), `memory.raw` (the controller's
//! `memory.stat`), `pids` (`current`, `limit`) and `blkio` totals. runc's per-CPU times,
//! `cpuset`, swap and kernel memory, hugetlb and RDT figures are not given.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use super::State;
use crate::cgroup::{Cgroup, Limit, Stats};

/// Arguments of `runtime events`, as runc's.
#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    /// Display the container's stats then exit.
    #[arg(long)]
    pub stats: bool,
    /// The stats collection interval (a Go duration: 5s, 500ms, 1m).
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    pub interval: Duration,
    pub id: String,
}

/// Go's duration syntax, as runc's `--interval` flag reads it.
fn parse_interval(text: &str) -> Result<Duration, String> {
    crate::build::instructions::go_duration(text)
        .map(Duration::from_nanos)
        .ok_or_else(|| format!("invalid value {text:?} for flag -interval: parse error"))
}

/// `events`: refused for a stopped container, as runc refuses it; otherwise prints stats once
/// (`--stats`) or every interval until killed, and OOM events as they are counted.
pub fn events(root: &Path, args: &EventsArgs) -> Result<()> {
    let state = State::load(root, &args.id)?;
    if state.status == super::Status::Stopped {
        bail!("container with id {} is not running", args.id);
    }
    if args.interval.is_zero() {
        bail!("duration interval must be greater than 0");
    }
    let cgroup = open_cgroup(&state)?;
    if args.stats {
        return print_line(&stats_event(&args.id, &cgroup)?);
    }
    let mut oom_kills = cgroup.stats()?.oom_kills.unwrap_or(0);
    loop {
        std::thread::sleep(args.interval);
        let stats = cgroup.stats()?;
        let now = stats.oom_kills.unwrap_or(0);
        if now > oom_kills {
            print_line(&json!({"type": "oom", "id": args.id}))?;
        }
        oom_kills = now;
        print_line(&stats_event(&args.id, &cgroup)?)?;
    }
}

/// The container's cgroup as `create` recorded it; reading it never removes it.
fn open_cgroup(state: &State) -> Result<Cgroup> {
    let layout = crate::cgroup::detect()?;
    Cgroup::open_existing(&layout, &state.cgroup_paths)
}

fn print_line(event: &Value) -> Result<()> {
    use std::io::Write;
    let mut line = serde_json::to_vec(event)?;
    line.push(b'\n');
    std::io::stdout()
        .lock()
        .write_all(&line)
        .context("writing an event to stdout")
}

/// One `stats` event: `{"type":"stats","id":ID,"data":{...}}`.
pub fn stats_event(id: &str, cgroup: &Cgroup) -> Result<Value> {
    let stats = cgroup.stats()?;
    let raw = cgroup
        .path_of("memory")
        .map(|dir| memory_stat(&dir))
        .unwrap_or_default();
    Ok(json!({"type": "stats", "id": id, "data": stats_data(&stats, raw)}))
}

/// runc's `types.Stats` from minidock's counters; absent counters are left out or zero, as
/// runc's `omitempty` fields are.
fn stats_data(stats: &Stats, raw: Map<String, Value>) -> Value {
    let limit = match stats.memory_limit {
        Some(Limit::Value(bytes)) => bytes,
        // runc prints the kernel's "no limit" value (PAGE_COUNTER_MAX pages, in bytes).
        _ => 9_223_372_036_854_771_712,
    };
    let mut throttling = Map::new();
    if let Some(periods) = stats.cpu_throttled_periods.filter(|p| *p > 0) {
        throttling.insert("throttled_periods".into(), periods.into());
    }
    let mut pids = Map::new();
    pids.insert("current".into(), stats.pids_current.unwrap_or(0).into());
    if let Some(Limit::Value(max)) = stats.pids_limit {
        pids.insert("limit".into(), max.into());
    }
    json!({
        "cpu": {
            "usage": {"total": stats.cpu_usage.map_or(0, |d| d.as_nanos() as u64)},
            "throttling": throttling,
        },
        "memory": {
            "usage": {
                "limit": limit,
                "usage": stats.memory_current.unwrap_or(0),
                "max": stats.memory_peak.unwrap_or(0),
                "failcnt": stats.memory_limit_hits.unwrap_or(0),
            },
            "raw": raw,
        },
        "pids": pids,
        "blkio": blkio(stats),
        "hugetlb": {},
        "intel_rdt": {},
        "network_interfaces": null,
    })
}

/// The bytes read and written, as runc's `io_service_bytes_recursive` entries (summed over
/// the devices, so without a device number); empty where the group has no I/O counters.
fn blkio(stats: &Stats) -> Value {
    let entries: Vec<Value> = [
        ("Read", stats.io_read_bytes),
        ("Write", stats.io_write_bytes),
    ]
    .into_iter()
    .filter_map(|(op, bytes)| bytes.map(|value| json!({"op": op, "value": value})))
    .collect();
    if entries.is_empty() {
        json!({})
    } else {
        json!({"io_service_bytes_recursive": entries})
    }
}

/// `memory.stat`'s `name value` lines as a JSON object of numbers.
fn memory_stat(dir: &Path) -> Map<String, Value> {
    let text = std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(' ')?;
            Some((name.to_owned(), value.trim().parse::<u64>().ok()?.into()))
        })
        .collect()
}
