//! `stats`: what each container uses, computed as `docker stats` does (docker/cli
//! `cli/command/container/stats_helpers.go`), from the counters the kernel keeps for the
//! container's cgroup ([`crate::cgroup::Cgroup::stats`]) and its network namespace.
//!
//! | Column      | cgroup v1                                        | cgroup v2                       |
//! |-------------|--------------------------------------------------|---------------------------------|
//! | CPU %       | `cpuacct.usage` (ns)                             | `cpu.stat` `usage_usec`         |
//! | MEM USAGE   | `memory.usage_in_bytes` - `total_inactive_file`  | `memory.current` - `inactive_file` |
//! | LIMIT       | `memory.limit_in_bytes`, else the host's memory  | `memory.max`, else the host's   |
//! | BLOCK I/O   | `blkio.throttle.io_service_bytes_recursive`      | `io.stat` `rbytes`/`wbytes`     |
//! | PIDS        | `pids.current`                                   | `pids.current`                  |
//!
//! CPU % is a rate, so it takes two samples: the container's CPU time over the same interval of
//! the whole machine's (`/proc/stat`), times the number of online CPUs (a container busy on
//! both CPUs of a 2-CPU host shows 200%). NET I/O is read from `/proc/<pid>/net/dev` of the
//! container's process, every interface but the loopback (so `0B / 0B` with `--network none`;
//! with `--network host` the host's interfaces are not the container's and it is `0B / 0B`, as
//! in Docker).

use super::state::{ContainerState, Status};
use super::{Paths, short_id};
use crate::cli::Exit;
use anyhow::{Context, Result};
use std::io::Write;
use std::time::Duration;

/// How far apart the two samples of a CPU % are: Docker's stats collector samples every second.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Docker's default `stats` table.
pub const STATS_TABLE: &str = r"{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// The column names of `stats --format 'table ...'`, by field (docker/cli `stats.go`).
pub const STATS_HEADER: &[(&str, &str)] = &[
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

/// `stats`' options, as its flags.
#[derive(Debug, Clone, Default)]
pub struct StatsOptions {
    /// Every container, not only the running ones (when none is named).
    pub all: bool,
    /// One table and return, instead of redrawing it every [`INTERVAL`].
    pub no_stream: bool,
    pub no_trunc: bool,
    pub format: Option<String>,
    /// Names or IDs; none means every (running) container, listed again at each redraw.
    pub containers: Vec<String>,
}

/// One reading of a container's counters. Zero everywhere for a container that is not running.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// The container's CPU time, nanoseconds.
    pub cpu_ns: u64,
    /// The machine's CPU time (all CPUs, idle included), nanoseconds.
    pub system_ns: u64,
    pub online_cpus: u64,
    /// Bytes charged, and the inactive page cache among them.
    pub memory_usage: u64,
    pub memory_inactive_file: u64,
    /// The memory limit, or the host's memory without one; 0 when not running.
    pub memory_limit: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub pids: u64,
}

// ANCHOR: cpu_percent
/// CPU %: the container's share of the machine's CPU time between two samples, scaled to the
/// online CPUs (docker/cli `calculateCPUPercentUnix`). 0 when either delta is not positive.
pub fn cpu_percent(previous: &Sample, now: &Sample) -> f64 {
    let cpu_delta = now.cpu_ns as f64 - previous.cpu_ns as f64;
    let system_delta = now.system_ns as f64 - previous.system_ns as f64;
    if cpu_delta > 0.0 && system_delta > 0.0 {
        cpu_delta / system_delta * now.online_cpus as f64 * 100.0
    } else {
        0.0
    }
}
// ANCHOR_END: cpu_percent

// ANCHOR: memory
/// MEM USAGE: the bytes charged minus the inactive page cache, which the kernel would reclaim
/// first (docker/cli `calculateMemUsageUnixNoCache`).
pub fn memory_usage(sample: &Sample) -> u64 {
    if sample.memory_inactive_file < sample.memory_usage {
        sample.memory_usage - sample.memory_inactive_file
    } else {
        sample.memory_usage
    }
}

/// MEM %: usage over the limit, 0 without a limit.
pub fn memory_percent(sample: &Sample) -> f64 {
    if sample.memory_limit == 0 {
        return 0.0;
    }
    memory_usage(sample) as f64 / sample.memory_limit as f64 * 100.0
}

/// The limit `stats` shows: the cgroup's, unless there is none or it exceeds the host's memory
/// (moby's `machineMemory` cap).
pub fn shown_limit(cgroup_limit: Option<u64>, host_memory: u64) -> u64 {
    match cgroup_limit {
        Some(limit) if limit <= host_memory || host_memory == 0 => limit,
        _ => host_memory,
    }
}
// ANCHOR_END: memory

// ANCHOR: system_cpu
/// The machine's CPU time in nanoseconds from `/proc/stat`: the first seven numbers of the
/// `cpu` line (user, nice, system, idle, iowait, irq, softirq), in clock ticks, as moby's
/// `getSystemCPUUsage` sums them. `None` when the line is not there or not numbers.
pub fn system_cpu_ns(proc_stat: &str, ticks_per_second: u64) -> Option<u64> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(7)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if fields.len() < 7 || ticks_per_second == 0 {
        return None;
    }
    let ticks: u128 = fields.iter().map(|&t| u128::from(t)).sum();
    u64::try_from(ticks * 1_000_000_000 / u128::from(ticks_per_second)).ok()
}
// ANCHOR_END: system_cpu

// ANCHOR: net_dev
/// NET I/O: received and sent bytes summed over every interface of a `/proc/<pid>/net/dev`
/// but `lo` (`IFACE: rx_bytes rx_packets ... (8 receive fields) tx_bytes ...`).
pub fn parse_net_dev(text: &str) -> (u64, u64) {
    let (mut rx, mut tx) = (0u64, 0u64);
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<u64> = counters
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        if let (Some(r), Some(t)) = (fields.first(), fields.get(8)) {
            rx = rx.saturating_add(*r);
            tx = tx.saturating_add(*t);
        }
    }
    (rx, tx)
}
// ANCHOR_END: net_dev

fn clock_ticks() -> u64 {
    // SAFETY: sysconf with a valid name.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

fn online_cpus() -> u64 {
    // SAFETY: sysconf with a valid name.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if cpus > 0 { cpus as u64 } else { 1 }
}

/// The host's memory in bytes (`/proc/meminfo` `MemTotal`), as moby's `machineMemory`.
pub fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// Reads one sample of a container: zeros when it is not running (or stops while it is read).
pub fn sample(state: &ContainerState) -> Result<Sample> {
    if state.observe() != Status::Running || !state.process_alive() {
        return Ok(Sample::default());
    }
    match read_sample(state) {
        Ok(sample) => Ok(sample),
        // It ended between the check and the reading: its cgroup is gone.
        Err(_) if !state.process_alive() => Ok(Sample::default()),
        Err(err) => Err(err),
    }
}

fn read_sample(state: &ContainerState) -> Result<Sample> {
    let proc_stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let layout = crate::cgroup::detect()?;
    let cgroup = crate::cgroup::Cgroup::open_existing(&layout, &state.cgroup_paths)
        .with_context(|| format!("opening the cgroup of container {}", state.id))?;
    let counters = cgroup
        .stats()
        .with_context(|| format!("reading the cgroup of container {}", state.id))?;
    let (net_rx, net_tx) = if state.config.network_mode == "host" {
        (0, 0)
    } else {
        std::fs::read_to_string(format!("/proc/{}/net/dev", state.pid))
            .map(|text| parse_net_dev(&text))
            .unwrap_or_default()
    };
    Ok(Sample {
        cpu_ns: counters.cpu_usage.map_or(0, |d| d.as_nanos() as u64),
        system_ns: system_cpu_ns(&proc_stat, clock_ticks()).unwrap_or(0),
        online_cpus: online_cpus(),
        memory_usage: counters.memory_current.unwrap_or(0),
        memory_inactive_file: counters.memory_inactive_file.unwrap_or(0),
        memory_limit: shown_limit(counters.memory_limit.and_then(|l| l.value()), host_memory()),
        net_rx,
        net_tx,
        block_read: counters.io_read_bytes.unwrap_or(0),
        block_write: counters.io_write_bytes.unwrap_or(0),
        pids: counters.pids_current.unwrap_or(0),
    })
}

// ANCHOR: sizes
/// Go's `%.Ng` for a non-negative value: `precision` significant digits, trailing zeros
/// dropped, the exponent form (`1e+03`) when the exponent is below -4 or reaches `precision`.
pub fn go_g(value: f64, precision: usize) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let precision = precision.max(1);
    let scientific = format!("{:.*e}", precision - 1, value);
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let trim = |text: &str| {
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            text.to_owned()
        }
    };
    if exponent < -4 || exponent >= precision as i32 {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exponent.abs())
    } else {
        let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
        trim(&format!("{value:.decimals$}"))
    }
}

fn custom_size(size: f64, base: f64, units: &[&str], precision: usize) -> String {
    let (mut size, mut unit) = (size, 0);
    while size >= base && unit < units.len() - 1 {
        size /= base;
        unit += 1;
    }
    format!("{}{}", go_g(size, precision), units[unit])
}

/// go-units `BytesSize`: binary units, four significant digits (`1.5MiB`, `7.667GiB`, `0B`).
pub fn bytes_size(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    custom_size(bytes as f64, 1024.0, UNITS, 4)
}

/// go-units `HumanSizeWithPrecision(size, 3)`: decimal units, three significant digits
/// (`12.3kB`, `0B`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    custom_size(bytes as f64, 1000.0, UNITS, 3)
}
// ANCHOR_END: sizes

/// One container as `stats --format` sees it: docker/cli's `statsContext` fields. `container`
/// is what the user named it (the short ID when none was named).
pub fn stats_row(
    container: &str,
    state: &ContainerState,
    previous: &Sample,
    now: &Sample,
    no_trunc: bool,
) -> gotmpl::Value {
    let id = if no_trunc {
        state.id.clone()
    } else {
        short_id(&state.id).to_owned()
    };
    let name = if state.name.is_empty() {
        "--".to_owned()
    } else {
        state.name.clone()
    };
    crate::format::row(vec![
        ("Container", container.to_owned()),
        ("ID", id),
        ("Name", name),
        ("CPUPerc", format!("{:.2}%", cpu_percent(previous, now))),
        (
            "MemUsage",
            format!(
                "{} / {}",
                bytes_size(memory_usage(now)),
                bytes_size(now.memory_limit)
            ),
        ),
        ("MemPerc", format!("{:.2}%", memory_percent(now))),
        (
            "NetIO",
            format!("{} / {}", human_size(now.net_rx), human_size(now.net_tx)),
        ),
        (
            "BlockIO",
            format!(
                "{} / {}",
                human_size(now.block_read),
                human_size(now.block_write)
            ),
        ),
        ("PIDs", now.pids.to_string()),
    ])
}

/// The containers to show: those named (all must exist, else exit 1 with Docker's message for
/// each), or every running one (every one with `all`), labelled by their short ID.
fn targets(paths: &Paths, options: &StatsOptions) -> Result<Vec<(String, ContainerState)>> {
    if options.containers.is_empty() {
        return Ok(paths
            .list()
            .context("listing containers")?
            .into_iter()
            .filter(|c| options.all || c.observe() == Status::Running)
            .map(|c| (short_id(&c.id).to_owned(), c))
            .collect());
    }
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &options.containers {
        match paths.resolve(name) {
            Ok(state) => found.push((name.clone(), state)),
            Err(err) => errors.push(crate::cli::one_line(&format!("{err:#}"))),
        }
    }
    if let Some(last) = errors.pop() {
        for err in errors {
            eprintln!("minidock: {err}");
        }
        return Err(Exit::new(super::REQUEST_FAILED, last).into());
    }
    Ok(found)
}

fn sample_all(targets: &[(String, ContainerState)]) -> Result<Vec<Sample>> {
    targets.iter().map(|(_, state)| sample(state)).collect()
}

/// `stats`: prints the table once (`--no-stream`) or redraws it every [`INTERVAL`], clearing
/// the screen first as Docker does (`ESC[2J ESC[H`), until interrupted or stdout closes.
/// Errors: a bad template, or a named container that does not exist (exit 1).
pub fn stats(paths: &Paths, options: &StatsOptions) -> Result<u8> {
    let text = crate::format::chosen(options.format.as_deref(), false).unwrap_or("table");
    let format = crate::format::Format::list(text, STATS_TABLE)
        .map_err(|err| Exit::new(super::REQUEST_FAILED, format!("{err:#}")))?;
    let header = crate::format::header(STATS_HEADER);
    let mut shown = targets(paths, options)?;
    let mut previous = sample_all(&shown)?;
    loop {
        std::thread::sleep(INTERVAL);
        let now = sample_all(&shown)?;
        let rows: Vec<_> = shown
            .iter()
            .zip(previous.iter().zip(&now))
            .map(|((label, state), (before, after))| {
                stats_row(label, state, before, after, options.no_trunc)
            })
            .collect();
        let table = format
            .render_list(&rows, &header)
            .map_err(|err| Exit::new(super::REQUEST_FAILED, format!("{err:#}")))?;
        let clear = if options.no_stream {
            ""
        } else {
            "\x1b[2J\x1b[H"
        };
        let mut out = std::io::stdout().lock();
        match write!(out, "{clear}{table}").and_then(|()| out.flush()) {
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
            other => other.context("writing to stdout")?,
        }
        drop(out);
        if options.no_stream {
            return Ok(0);
        }
        if options.containers.is_empty() {
            // Containers come and go: list them again, and start a new one from this sample.
            let listed = targets(paths, options)?;
            previous = listed
                .iter()
                .map(|(_, c)| {
                    shown
                        .iter()
                        .position(|(_, s)| s.id == c.id)
                        .map_or_else(|| sample(c), |i| Ok(now[i]))
                })
                .collect::<Result<_>>()?;
            shown = listed;
        } else {
            // A named container may have been restarted meanwhile: read its state again.
            for (_, state) in &mut shown {
                if let Ok(Some(fresh)) = ContainerState::load(paths, &state.id) {
                    *state = fresh;
                }
            }
            previous = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_printed_as_go_units_does() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(1536 * 1024), "1.5MiB");
        assert_eq!(bytes_size(64 << 20), "64MiB");
        assert_eq!(bytes_size(8_232_468_480), "7.667GiB");
        assert_eq!(bytes_size(1023), "1023B");
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(12_345), "12.3kB");
        assert_eq!(human_size(656), "656B");
        assert_eq!(human_size(999_600), "1e+03kB");
        assert_eq!(go_g(0.000012345, 3), "1.23e-05");
        assert_eq!(go_g(100.0, 3), "100");
    }

    #[test]
    fn cpu_percent_is_the_share_of_the_system_delta_times_the_cpus() {
        let before = Sample {
            cpu_ns: 1_000_000_000,
            system_ns: 10_000_000_000,
            online_cpus: 2,
            ..Sample::default()
        };
        // One CPU busy for the whole second on a 2-CPU machine: 2 s of system time passed.
        let after = Sample {
            cpu_ns: 2_000_000_000,
            system_ns: 12_000_000_000,
            ..before
        };
        assert_eq!(format!("{:.2}", cpu_percent(&before, &after)), "100.00");
        assert_eq!(cpu_percent(&after, &after), 0.0);
    }

    #[test]
    fn memory_leaves_out_inactive_file_and_caps_the_limit() {
        let sample = Sample {
            memory_usage: 30 << 20,
            memory_inactive_file: 10 << 20,
            memory_limit: 80 << 20,
            ..Sample::default()
        };
        assert_eq!(memory_usage(&sample), 20 << 20);
        assert_eq!(memory_percent(&sample), 25.0);
        assert_eq!(shown_limit(Some(64 << 20), 8 << 30), 64 << 20);
        assert_eq!(shown_limit(Some(u64::MAX), 8 << 30), 8 << 30);
        assert_eq!(shown_limit(None, 8 << 30), 8 << 30);
    }

    #[test]
    fn proc_stat_and_net_dev_are_read_as_moby_reads_them() {
        let stat = "cpu  100 2 30 800 5 1 2 7 0 0\ncpu0 50 1 15 400 2 0 1 3 0 0\n";
        assert_eq!(system_cpu_ns(stat, 100), Some(9_400_000_000));
        assert_eq!(system_cpu_ns("intr 1\n", 100), None);
        let dev = "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
             lo:  500 5 0 0 0 0 0 0  500 5 0 0 0 0 0 0\n  \
             eth0: 1234 10 0 0 0 0 0 0 4321 9 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(dev), (1234, 4321));
    }
}
