//! Checks for the cgroup lessons (04 memory, 05 pids).
//!
//! The checker picks the cgroup's path (under `minidock/` in the right hierarchy of this host),
//! runs the learner's program with it, and then reads the kernel's files in that cgroup: the
//! limit as the kernel stored it, and the counters only the kernel writes (OOM kills, refused
//! forks, peaks). Whatever happens, it removes the cgroup afterwards. The program runs traced
//! ([`Trace`]): the limit and the move into the cgroup count only when the learner's own
//! program wrote them, not a shell it started.

use super::{Need, Trace, describe_failure, require_root, run_captured};
use crate::cgroup::{self, Layout, Version, parse_flat_keyed};
use crate::workshop::Observation;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// Moving a process into a cgroup: cgroup.procs, or v1's per-thread `tasks` file.
const JOIN: Need<'static> = Need::AnyOf(&[Need::Write("cgroup.procs"), Need::Write("tasks")]);

/// The cgroup a check hands to the learner, removed (with anything still inside) on drop.
struct LessonCgroup {
    dir: PathBuf,
}

impl LessonCgroup {
    fn new(layout: &Layout, controller: &str, lesson: &str) -> Result<LessonCgroup> {
        let parent = cgroup::prepare_parent(layout, controller)?;
        let dir = parent.join(format!("{lesson}-{}", std::process::id()));
        // A leftover from an interrupted check would make the learner's mkdir fail.
        cgroup::remove_existing(&dir)?;
        Ok(LessonCgroup { dir })
    }

    /// A file's content, trimmed, or None when it is not there.
    fn read(&self, file: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(file))
            .ok()
            .map(|s| s.trim().to_owned())
    }

    /// One key of a flat keyed file such as `memory.events`.
    fn keyed(&self, file: &str, key: &str) -> Option<u64> {
        let text = std::fs::read_to_string(self.dir.join(file)).ok()?;
        parse_flat_keyed(&text).get(key).copied()
    }
}

impl Drop for LessonCgroup {
    fn drop(&mut self) {
        if let Err(err) = cgroup::remove_existing(&self.dir) {
            eprintln!("warning: removing {}: {err:#}", self.dir.display());
        }
    }
}

fn show(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "(no such file)".to_owned(), |v| v.to_string())
}

fn created(cgroup: &LessonCgroup) -> Observation {
    let exists = cgroup.dir.is_dir();
    Observation::judged(
        "the cgroup directory was created",
        cgroup.dir.display().to_string(),
        if exists {
            "exists".to_owned()
        } else {
            "missing (TODO 1: mkdir)".to_owned()
        },
        exists,
    )
    .likely("the cgroup does not exist: a cgroup is a directory the kernel fills with files when you create it")
}

/// The misunderstanding behind a limit that holds nobody.
const NOT_INSIDE: &str = "the limit is set, but the work never ran inside the cgroup: a limit applies only to the processes in its cgroup.procs, and a process starts in its parent's cgroup. Did you move the child into the cgroup before it started?";

pub fn lesson04_memory(bin: &Path) -> Result<Vec<Observation>> {
    require_root()?;
    let layout = cgroup::detect()?;
    let version = layout.require("memory", layout.default_version())?.version;
    let cgroup = LessonCgroup::new(&layout, "memory", "lesson04")?;
    let trace = Trace::new(bin, None)?;
    let output = run_captured(trace.command().arg(&cgroup.dir), LIMIT)?;
    let limit = Need::AnyOf(&[
        Need::Write("memory.max"),
        Need::Write("memory.limit_in_bytes"),
    ]);
    let mut observations = vec![created(&cgroup), trace.observe(&[limit, JOIN])];
    if !cgroup.dir.is_dir() {
        return Ok(observations);
    }
    let (limit_file, events_file, peak_file) = match version {
        Version::V2 => ("memory.max", "memory.events", "memory.peak"),
        Version::V1 => (
            "memory.limit_in_bytes",
            "memory.oom_control",
            "memory.max_usage_in_bytes",
        ),
    };
    let limit = (32u64 << 20).to_string();
    observations.push(
        Observation::equal(
            &format!("the memory limit in {limit_file}"),
            limit.clone(),
            show(cgroup.read(limit_file)),
        )
        .likely("the limit is not 32 MiB: the file takes plain bytes (33554432), and the name differs between cgroup v1 and v2"),
    );
    let oom_kills = cgroup.keyed(events_file, "oom_kill");
    observations.push(
        Observation::judged(
            &format!("OOM kills the kernel counted in the cgroup ({events_file}, oom_kill)"),
            "at least 1",
            show(oom_kills),
            oom_kills.is_some_and(|n| n >= 1),
        )
        .likely(NOT_INSIDE),
    );
    // memory.peak exists on v2 since Linux 5.19; where it is missing, the OOM-kill counter
    // above is the proof on its own.
    if let Some(peak) = cgroup.read(peak_file) {
        let peak: u64 = peak.parse().unwrap_or(0);
        observations.push(
            Observation::judged(
                &format!("the cgroup's peak usage ({peak_file})"),
                "between 8 MiB (the hog ran inside) and 32 MiB (the limit)",
                format!("{peak} bytes ({} MiB)", peak >> 20),
                (8 << 20..=32 << 20).contains(&peak),
            )
            .likely(NOT_INSIDE),
        );
    }
    if !output.status.success() {
        observations.push(Observation::judged(
            "the program itself",
            "exit status 0",
            describe_failure(&output),
            false,
        ));
    }
    Ok(observations)
}

pub fn lesson05_pids(bin: &Path) -> Result<Vec<Observation>> {
    require_root()?;
    let layout = cgroup::detect()?;
    layout.require("pids", layout.default_version())?;
    let cgroup = LessonCgroup::new(&layout, "pids", "lesson05")?;
    let trace = Trace::new(bin, None)?;
    let output = run_captured(trace.command().arg(&cgroup.dir), LIMIT)?;
    let host_forks = Command::new("true").status().is_ok_and(|s| s.success());
    let needs = [Need::Write("pids.max"), JOIN];
    let mut observations = vec![created(&cgroup), trace.observe(&needs)];
    if cgroup.dir.is_dir() {
        observations.push(
            Observation::equal("the limit in pids.max", "20", show(cgroup.read("pids.max")))
                .likely("pids.max does not hold 20: the limit was never written"),
        );
        let refused = cgroup.keyed("pids.events", "max");
        observations.push(
            Observation::judged(
                "forks the kernel refused in the cgroup (pids.events, max)",
                "at least 1",
                show(refused),
                refused.is_some_and(|n| n >= 1),
            )
            .likely(NOT_INSIDE),
        );
        // pids.peak is recent (Linux 6.x); without it, pids.events above is the proof.
        if let Some(peak) = cgroup.read("pids.peak") {
            observations.push(
                Observation::judged(
                    "the most tasks at once (pids.peak)",
                    "between 2 and 20",
                    peak.clone(),
                    peak.parse::<u64>().is_ok_and(|n| (2..=20).contains(&n)),
                )
                .likely(NOT_INSIDE),
            );
        }
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let saw = stdout
        .lines()
        .find(|l| l.starts_with("bomb:"))
        .unwrap_or("(nothing)");
    observations.push(
        Observation::judged(
            "what the bomb saw inside",
            "fork failed with EAGAIN",
            saw,
            saw.contains("EAGAIN"),
        )
        .likely(if cgroup.dir.is_dir() {
            NOT_INSIDE
        } else {
            "nothing limited the bomb: there is no cgroup to hold it"
        }),
    );
    observations.push(Observation::judged(
        "the host still forks",
        "`true` runs",
        if host_forks {
            "`true` runs"
        } else {
            "fork failed"
        },
        host_forks,
    ));
    if !output.status.success() {
        observations.push(Observation::judged(
            "the program itself",
            "exit status 0",
            describe_failure(&output),
            false,
        ));
    }
    Ok(observations)
}
