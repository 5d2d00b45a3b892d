//! `cgroup-demo tour`: three guided demonstrations, each judged by what the kernel counted in
//! the cgroup, never by what the misbehaving program says about itself.

use super::run::{Request, run};
use super::{Cgroup, Layout, Limit, Placement, Resources, units};
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// The share of one CPU the cpu demonstration accepts for a 0.5 CPU limit. The upper bound is
/// the limit at work; the lower bound allows for a busy machine, where other processes may take
/// some of the half CPU the group is allowed.
pub const CPU_SHARE_RANGE: std::ops::RangeInclusive<f64> = 0.35..=0.65;

/// Runs the three demonstrations, printing as it goes. `helper` is the `cgroup-demo` binary,
/// whose hidden `hog`, `forkbomb` and `spin` subcommands are the workloads. Returns 0 when
/// every demonstration showed its evidence, 1 otherwise.
pub fn tour(layout: &Layout, helper: &Path, out: &mut dyn Write) -> Result<u8> {
    let version = layout.default_version();
    write!(out, "{layout}")?;
    let mut failed = 0;
    let argv = |args: &[&str]| -> Vec<OsString> {
        std::iter::once(helper.as_os_str().to_owned())
            .chain(args.iter().map(OsString::from))
            .collect()
    };
    let request = |resources: Resources, args: &[&str]| Request {
        resources,
        version,
        parent: super::PARENT.to_owned(),
        name: Cgroup::unique_name("cgroup-demo-tour"),
        argv: argv(args),
        placement: Placement::CloneIntoCgroup,
    };
    let mut verdict = |out: &mut dyn Write, ok: bool, text: String| -> Result<()> {
        if !ok {
            failed += 1;
        }
        writeln!(out, "  {} {text}", if ok { "✔" } else { "✘" })?;
        Ok(())
    };

    // 1. Memory.
    writeln!(
        out,
        "\n== 1/3 memory: a hog that wants 256 MiB, limited to 32 MiB =="
    )?;
    out.flush()?;
    let limit = 32u64 << 20;
    let before = mem_available()?;
    let memory = Resources {
        memory: Some(Limit::Value(limit)),
        // memory+swap = memory: no swap to escape into.
        memory_swap: Some(Limit::Value(limit)),
        ..Default::default()
    };
    let outcome = run(layout, &request(memory, &["hog", "--mib", "256"]))?;
    let after = mem_available()?;
    write!(out, "{}", outcome.report())?;
    verdict(
        out,
        outcome.oom_killed(),
        format!(
            "the cgroup's OOM-kill counter reads {} and the hog died of SIGKILL: killed at its \
             limit, peak {}",
            outcome
                .stats
                .oom_kills
                .map_or("n/a".into(), |n| n.to_string()),
            outcome
                .stats
                .memory_peak
                .map_or("n/a".into(), units::format_size),
        ),
    )?;
    verdict(
        out,
        true,
        format!(
            "the host is unaffected: MemAvailable {} before, {} after, and this tour (pid {}, \
             outside the cgroup) is still running",
            units::format_size(before),
            units::format_size(after),
            std::process::id()
        ),
    )?;

    // 2. Pids.
    writeln!(
        out,
        "\n== 2/3 pids: a fork bomb in a cgroup with pids.max = 20 =="
    )?;
    out.flush()?;
    let pids = Resources {
        pids: Some(Limit::Value(20)),
        ..Default::default()
    };
    let outcome = run(layout, &request(pids, &["forkbomb"]))?;
    write!(out, "{}", outcome.report())?;
    let refused = outcome.stats.pids_refused.unwrap_or(0);
    verdict(
        out,
        refused > 0,
        format!(
            "the kernel refused {refused} fork(s) in the cgroup (pids.events \"max\"); the bomb \
             saw EAGAIN"
        ),
    )?;
    let host = Command::new("true")
        .status()
        .context("forking `true` on the host")?;
    verdict(
        out,
        host.success(),
        "the host still forks: `true` started and ended outside the cgroup".into(),
    )?;

    // 3. Cpu.
    writeln!(
        out,
        "\n== 3/3 cpu: a busy loop for 2 s, limited to --cpus 0.5 =="
    )?;
    out.flush()?;
    let cpu = Resources::default().with_cpus(units::parse_cpus("0.5")?);
    let outcome = run(layout, &request(cpu, &["spin", "--seconds", "2"]))?;
    write!(out, "{}", outcome.report())?;
    let share = outcome.cpu_share().unwrap_or(0.0);
    verdict(
        out,
        CPU_SHARE_RANGE.contains(&share),
        format!(
            "measured {share:.2} CPU from the cgroup's own usage counter, next to the limit of \
             0.50 CPU (load average: {})",
            load_average()
        ),
    )?;

    writeln!(
        out,
        "\n{}",
        if failed == 0 {
            "all three limits held, as the kernel's counters show"
        } else {
            "some evidence is missing: see the ✘ lines above"
        }
    )?;
    Ok(u8::from(failed > 0))
}

/// MemAvailable from /proc/meminfo, in bytes.
fn mem_available() -> Result<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    let kib = text
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .context("no MemAvailable in /proc/meminfo")?;
    Ok(kib * 1024)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "n/a".into())
}
