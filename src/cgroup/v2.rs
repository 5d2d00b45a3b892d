//! cgroup v2: one tree, and one directory per group holding every controller's files.
//!
//! Two rules of the unified hierarchy shape this code (Documentation/admin-guide/cgroup-v2.rst):
//!
//! - **Top-down enabling.** A controller's files appear in a cgroup only if its parent lists the
//!   controller in `cgroup.subtree_control`. So before `minidock/NAME` can have `memory.max`,
//!   both the root and `minidock` must have `+memory` written into their `subtree_control`.
//! - **No internal processes.** A cgroup that hands controllers to its children must not hold
//!   processes itself (the root is exempt). `minidock` only ever holds directories.

use super::{
    ControllerFiles, Limit, Resources, Stats, kill_listed, make_dir, read_keyed, read_optional,
    read_procs, read_u64, remove_dir, write_file,
};
use crate::explain;
use anyhow::{Context, Result, bail};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One cgroup2 directory.
#[derive(Debug)]
pub struct Cgroup {
    path: PathBuf,
    /// The directory existed before [`Cgroup::create_at`] joined it: it is not removed.
    joined: bool,
}

impl Cgroup {
    // ANCHOR: v2_create
    /// Creates `mount/parent/name`, enabling the `wanted` controllers this host has on the way
    /// down so that the new directory gets their files.
    pub fn create(mount: &Path, parent: &str, name: &str, wanted: &[&str]) -> Result<Cgroup> {
        Cgroup::create_at(mount, parent, name, wanted, false)
    }

    /// [`Cgroup::create`], joining an existing directory when `may_exist` ([`Cgroup::joined`]).
    pub fn create_at(
        mount: &Path,
        parent: &str,
        name: &str,
        wanted: &[&str],
        may_exist: bool,
    ) -> Result<Cgroup> {
        let parent_dir = prepare_parent(mount, parent, wanted)?;
        let path = parent_dir.join(name);
        let joined = !make_dir(&path, may_exist, "create the cgroup")?;
        Ok(Cgroup { path, joined })
    }
    // ANCHOR_END: v2_create

    /// An existing cgroup2 directory.
    pub fn open(path: impl Into<PathBuf>) -> Cgroup {
        Cgroup {
            path: path.into(),
            joined: false,
        }
    }

    /// Whether the directory existed before [`Cgroup::create_at`] joined it.
    pub fn joined(&self) -> bool {
        self.joined
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn apply(&self, resources: &Resources) -> Result<()> {
        self.apply_cached(resources, None)
    }

    /// Writes every controller's share of `resources`, then `unified` as given, and attaches
    /// the device program (cached in `cache_dir`).
    pub fn apply_cached(&self, resources: &Resources, cache_dir: Option<&Path>) -> Result<()> {
        CpuSet::apply(&self.path, resources)?;
        Memory::apply(&self.path, resources)?;
        Cpu::apply(&self.path, resources)?;
        Pids::apply(&self.path, resources)?;
        Io::apply(&self.path, resources)?;
        Hugetlb::apply(&self.path, resources)?;
        Unified::apply(&self.path, resources)?;
        if let Some(rules) = &resources.devices {
            super::devices::attach_v2(&self.path, rules, cache_dir)?;
        }
        Ok(())
    }

    /// Moves a process into this cgroup: the write moves every thread of `pid`.
    pub fn add_pid(&self, pid: Pid) -> Result<()> {
        write_file(
            &self.path,
            "cgroup.procs",
            &pid.to_string(),
            "move the process into the cgroup",
        )
    }

    pub fn stats(&self) -> Result<Stats> {
        let mut stats = Stats::default();
        Memory::read_stats(&self.path, &mut stats)?;
        Cpu::read_stats(&self.path, &mut stats)?;
        Pids::read_stats(&self.path, &mut stats)?;
        Io::read_stats(&self.path, &mut stats)?;
        Ok(stats)
    }

    // ANCHOR: v2_kill
    /// Kills everything inside. Linux 5.14 added `cgroup.kill`: one write SIGKILLs every
    /// process in the subtree, and the kernel makes sure a process forking at that moment
    /// cannot escape. Older kernels: kill what `cgroup.procs` lists, until nothing is left.
    pub fn kill_all(&self) -> Result<()> {
        if read_procs(&self.path)?.is_empty() {
            return Ok(());
        }
        if self.path.join("cgroup.kill").exists() {
            write_file(
                &self.path,
                "cgroup.kill",
                "1",
                "kill everything in the cgroup",
            )?;
            for _ in 0..400 {
                if read_procs(&self.path)?.is_empty() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        kill_listed(&self.path)
    }
    // ANCHOR_END: v2_kill

    /// Removes the directory, unless it was joined.
    pub fn remove(&self) -> Result<()> {
        if self.joined {
            return Ok(());
        }
        remove_dir(&self.path)
    }
}

// ANCHOR: v2_parent
/// Makes `mount/parent` (each level of `a/b`) and enables, from the root down to it, those of
/// the `wanted` controllers this hierarchy has (`cgroup.controllers` of the root), so that its
/// children get their files.
pub fn prepare_parent(mount: &Path, parent: &str, wanted: &[&str]) -> Result<PathBuf> {
    let available = read_optional(mount, "cgroup.controllers")?.unwrap_or_default();
    let enable: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|c| available.split_whitespace().any(|a| a == *c))
        .collect();
    enable_controllers(mount, &enable)?;
    let mut dir = mount.to_path_buf();
    for component in parent.split('/').filter(|c| !c.is_empty()) {
        dir.push(component);
        make_dir(&dir, true, "create the parent cgroup")?;
        enable_controllers(&dir, &enable)?;
    }
    Ok(dir)
}

/// Writes `+ctrl ...` into `dir/cgroup.subtree_control` for the controllers not enabled yet.
fn enable_controllers(dir: &Path, controllers: &[&str]) -> Result<()> {
    let current = read_optional(dir, "cgroup.subtree_control")?.unwrap_or_default();
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| !current.split_whitespace().any(|e| e == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    write_file(
        dir,
        "cgroup.subtree_control",
        &missing.join(" "),
        "enable controllers for children",
    )
    .with_context(|| {
        format!(
            "enabling {} below {} (EBUSY here means that cgroup holds processes: the \
             no-internal-processes rule)",
            controllers.join(", "),
            dir.display()
        )
    })
}
// ANCHOR_END: v2_parent

/// A v2 limit as the file wants it: a number, or `max`.
fn limit_text(limit: Limit) -> String {
    match limit {
        Limit::Unlimited => "max".to_owned(),
        Limit::Value(value) => value.to_string(),
    }
}

fn parse_limit(text: &str) -> Result<Limit> {
    match text.trim() {
        "max" => Ok(Limit::Unlimited),
        value => Ok(Limit::Value(
            value
                .parse()
                .with_context(|| format!("parsing limit \"{value}\""))?,
        )),
    }
}

fn read_limit(dir: &Path, file: &str) -> Result<Option<Limit>> {
    read_optional(dir, file)?
        .map(|text| parse_limit(&text).with_context(|| format!("in {}", dir.join(file).display())))
        .transpose()
}

/// The memory controller: `memory.max`, `memory.swap.max`.
pub struct Memory;

// ANCHOR: v2_memory
impl ControllerFiles for Memory {
    const NAME: &'static str = "memory";

    fn apply(dir: &Path, resources: &Resources) -> Result<()> {
        if let Some(limit) = resources.memory {
            write_file(
                dir,
                "memory.max",
                &limit_text(limit),
                "set the memory limit",
            )?;
        }
        if let Some(swap) = resources.memory_swap {
            apply_swap(dir, swap, resources.memory)?;
        }
        memory_extras(dir, resources)
    }

    fn read_stats(dir: &Path, stats: &mut Stats) -> Result<()> {
        stats.memory_current = read_u64(dir, "memory.current")?;
        stats.memory_peak = read_u64(dir, "memory.peak")?;
        stats.memory_limit = read_limit(dir, "memory.max")?;
        // memory.events counts for the whole subtree: "max" is how often the limit was hit,
        // "oom_kill" how many processes the OOM killer killed.
        stats.memory_limit_hits = read_keyed(dir, "memory.events", "max")?;
        stats.oom_kills = read_keyed(dir, "memory.events", "oom_kill")?;
        stats.memory_inactive_file = read_keyed(dir, "memory.stat", "inactive_file")?;
        Ok(())
    }
}
// ANCHOR_END: v2_memory

// ANCHOR: v2_swap
/// Writes `memory.swap.max`. The OCI spec's `swap` is memory+swap (the v1 meaning);
/// memory.swap.max is swap alone, so the memory limit is subtracted. Docker's
/// `--memory 32M --memory-swap 32M` means no swap, which a kernel without swap accounting
/// gives anyway: only a real swap limit there is an error.
fn apply_swap(dir: &Path, swap: Limit, memory: Option<Limit>) -> Result<()> {
    let swap_only = match (swap, memory) {
        (Limit::Value(total), Some(Limit::Value(memory))) => {
            Limit::Value(total.saturating_sub(memory))
        }
        _ => Limit::Unlimited,
    };
    if dir.join("memory.swap.max").exists() {
        write_file(
            dir,
            "memory.swap.max",
            &limit_text(swap_only),
            "set the swap limit",
        )?;
    } else if swap_only != Limit::Value(0) {
        bail!(
            "this kernel cannot limit swap: {} has no memory.swap.max (swap accounting \
             is off)",
            dir.display()
        );
    } else {
        explain::note("no memory.swap.max here (no swap accounting): swap not limited");
    }
    Ok(())
}
// ANCHOR_END: v2_swap

/// The soft limit is `memory.low` on v2; swappiness and the OOM killer switch have no v2
/// file, so asking for them is an error rather than a silent no-op.
fn memory_extras(dir: &Path, resources: &Resources) -> Result<()> {
    if let Some(reservation) = resources.memory_reservation {
        write_file(
            dir,
            "memory.low",
            &limit_text(reservation),
            "set the soft limit",
        )?;
    }
    if let Some(swappiness) = resources.memory_swappiness {
        bail!("memory.swappiness ({swappiness}): cgroup v2 has no per-group swappiness");
    }
    if resources.oom_kill_disable == Some(true) {
        bail!("memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer");
    }
    Ok(())
}

/// The cpu controller: `cpu.max` (bandwidth) and `cpu.weight` (share against siblings).
pub struct Cpu;

// ANCHOR: v2_cpu
impl ControllerFiles for Cpu {
    const NAME: &'static str = "cpu";

    fn apply(dir: &Path, resources: &Resources) -> Result<()> {
        if resources.cpu_quota.is_some() || resources.cpu_period.is_some() {
            // One file, two numbers: "$QUOTA $PERIOD", where QUOTA may be "max".
            let quota = resources.cpu_quota.unwrap_or(Limit::Unlimited);
            let period = resources.cpu_period.unwrap_or(super::units::CPU_PERIOD_US);
            let value = format!("{} {period}", limit_text(quota));
            write_file(dir, "cpu.max", &value, "set the cpu quota per period")?;
        }
        if let Some(shares) = resources.cpu_shares {
            let weight = shares_to_weight(shares).to_string();
            write_file(dir, "cpu.weight", &weight, "set the cpu weight")?;
        }
        Ok(())
    }

    fn read_stats(dir: &Path, stats: &mut Stats) -> Result<()> {
        // cpu.stat's usage lines are kept by the cgroup core, so they are there even where the
        // cpu controller is not enabled.
        stats.cpu_usage = read_keyed(dir, "cpu.stat", "usage_usec")?.map(Duration::from_micros);
        stats.cpu_throttled_periods = read_keyed(dir, "cpu.stat", "nr_throttled")?;
        if let Some(text) = read_optional(dir, "cpu.max")? {
            let (quota, period) = parse_cpu_max(&text)
                .with_context(|| format!("parsing {}", dir.join("cpu.max").display()))?;
            stats.cpu_quota = Some(quota);
            stats.cpu_period_us = Some(period);
        }
        Ok(())
    }
}
// ANCHOR_END: v2_cpu

/// Parses `cpu.max`: "max 100000" or "50000 100000".
pub fn parse_cpu_max(text: &str) -> Result<(Limit, u64)> {
    let mut fields = text.split_whitespace();
    let (Some(quota), Some(period), None) = (fields.next(), fields.next(), fields.next()) else {
        bail!("expected \"QUOTA PERIOD\", found \"{}\"", text.trim());
    };
    Ok((parse_limit(quota)?, period.parse()?))
}

/// Converts v1 `cpu.shares` (2..=262144, default 1024) into v2 `cpu.weight` (1..=10000,
/// default 100). This is the formula runc 1.3.2 and crun 1.23 adopted (runc#4772): a curve
/// through the three points that matter, min to min, default to default, max to max. The older
/// linear formula turned the default 1024 into weight 39, a silent demotion.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    // Round the exponent a little first: 1024 gives 2 plus float noise, whose ceiling would be
    // 101 instead of 100.
    let exponent = (exponent * 1e9).round() / 1e9;
    (10f64.powf(exponent).ceil() as u64).clamp(1, 10_000)
}

// ANCHOR: v2_more
/// The cpuset controller: `cpuset.cpus`, `cpuset.mems`, as on v1.
pub struct CpuSet;

impl CpuSet {
    fn apply(dir: &Path, resources: &Resources) -> Result<()> {
        if let Some(cpus) = &resources.cpuset_cpus {
            write_file(dir, "cpuset.cpus", cpus, "set the cpus")?;
        }
        if let Some(mems) = &resources.cpuset_mems {
            write_file(dir, "cpuset.mems", mems, "set the memory nodes")?;
        }
        Ok(())
    }
}

/// The io controller: `io.bfq.weight` (10..=1000, as blkio) where BFQ offers it, otherwise
/// `io.weight` (1..=10000, converted as runc does); throttles as `io.max` lines
/// `MAJOR:MINOR rbps=N`. v2 has no leaf weights.
pub struct Io;

impl Io {
    fn apply(dir: &Path, resources: &Resources) -> Result<()> {
        let Some(io) = &resources.block_io else {
            return Ok(());
        };
        if io.leaf_weight.is_some() || io.weight_device.iter().any(|d| d.3.is_some()) {
            bail!("blockIO leafWeight: cgroup v2 has no leaf weights");
        }
        let bfq = dir.join("io.bfq.weight").exists();
        let (file, convert): (&str, fn(u16) -> u64) = if bfq {
            ("io.bfq.weight", u64::from)
        } else {
            ("io.weight", blkio_to_io_weight)
        };
        if let Some(weight) = io.weight {
            write_file(dir, file, &convert(weight).to_string(), "set the io weight")?;
        }
        for &(major, minor, weight, _) in &io.weight_device {
            if let Some(w) = weight {
                let line = format!("{major}:{minor} {}", convert(w));
                write_file(dir, file, &line, "set a device's io weight")?;
            }
        }
        let throttles = [
            ("rbps", &io.throttle_read_bps),
            ("wbps", &io.throttle_write_bps),
            ("riops", &io.throttle_read_iops),
            ("wiops", &io.throttle_write_iops),
        ];
        for (key, devices) in throttles {
            for (major, minor, rate) in devices {
                let line = format!("{major}:{minor} {key}={rate}");
                write_file(dir, "io.max", &line, "throttle a device")?;
            }
        }
        Ok(())
    }
}

impl Io {
    /// The bytes read and written, from `io.stat` (`MAJOR:MINOR rbytes=N wbytes=N rios=N
    /// wios=N dbytes=N dios=N` per device), which exists where the parent enables `io`.
    fn read_stats(dir: &Path, stats: &mut Stats) -> Result<()> {
        if let Some(text) = read_optional(dir, "io.stat")? {
            let (read, write) = parse_io_stat(&text);
            stats.io_read_bytes = Some(read);
            stats.io_write_bytes = Some(write);
        }
        Ok(())
    }
}

/// Sums `rbytes` and `wbytes` of an `io.stat` file over the devices.
pub fn parse_io_stat(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for pair in text.split_whitespace() {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let Ok(value) = value.parse::<u64>() else {
            continue;
        };
        match key {
            "rbytes" => read = read.saturating_add(value),
            "wbytes" => write = write.saturating_add(value),
            _ => {}
        }
    }
    (read, write)
}

/// blkio weight 10..=1000 to io.weight 1..=10000, linearly (runc's
/// `ConvertBlkIOToIOWeightValue`).
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

/// The hugetlb controller: `hugetlb.<SIZE>.max`.
pub struct Hugetlb;

impl Hugetlb {
    fn apply(dir: &Path, resources: &Resources) -> Result<()> {
        for (size, limit) in &resources.hugepage_limits {
            let file = super::hugetlb_file(size, "max")?;
            write_file(dir, &file, &limit.to_string(), "set a huge page limit")?;
        }
        Ok(())
    }
}

/// `linux.resources.unified`: each key is a file of the cgroup directory, each value written
/// as is. The key must be a plain file name (no `/`, no leading `.`), of a file the cgroup
/// has (a controller that is not enabled has none).
pub struct Unified;

impl Unified {
    fn apply(dir: &Path, resources: &Resources) -> Result<()> {
        for (key, value) in &resources.unified {
            if key.is_empty() || key.contains('/') || key.starts_with('.') {
                bail!("linux.resources.unified: \"{key}\" is not a cgroup file name");
            }
            if !dir.join(key).exists() {
                bail!(
                    "linux.resources.unified: {} has no file \"{key}\" (is its controller \
                     enabled?)",
                    dir.display()
                );
            }
            write_file(dir, key, value, "write a unified resource")?;
        }
        Ok(())
    }
}
// ANCHOR_END: v2_more

/// The pids controller: `pids.max`.
pub struct Pids;

// ANCHOR: v2_pids
impl ControllerFiles for Pids {
    const NAME: &'static str = "pids";

    fn apply(dir: &Path, resources: &Resources) -> Result<()> {
        if let Some(limit) = resources.pids {
            write_file(dir, "pids.max", &limit_text(limit), "set the pids limit")?;
        }
        Ok(())
    }

    fn read_stats(dir: &Path, stats: &mut Stats) -> Result<()> {
        stats.pids_current = read_u64(dir, "pids.current")?;
        stats.pids_peak = read_u64(dir, "pids.peak")?;
        stats.pids_limit = read_limit(dir, "pids.max")?;
        // pids.events "max": how many forks failed with EAGAIN because of pids.max.
        stats.pids_refused = read_keyed(dir, "pids.events", "max")?;
        Ok(())
    }
}
// ANCHOR_END: v2_pids

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::fs;

    /// A fake cgroup2 mount in a temp dir. In the real filesystem mkdir(2) makes a cgroup's
    /// interface files; here [`FakeCgroupfs::populate`] plays the kernel's part.
    pub(crate) struct FakeCgroupfs {
        pub root: tempfile::TempDir,
    }

    const LEAF_FILES: &[&str] = &[
        "cgroup.procs",
        "cgroup.kill",
        "cgroup.subtree_control",
        "memory.max",
        "memory.swap.max",
        "memory.current",
        "memory.peak",
        "memory.events",
        "cpu.max",
        "cpu.weight",
        "cpu.stat",
        "pids.max",
        "pids.current",
        "pids.peak",
        "pids.events",
    ];

    impl FakeCgroupfs {
        pub(crate) fn new(controllers: &str) -> FakeCgroupfs {
            let root = tempfile::tempdir().unwrap();
            fs::write(root.path().join("cgroup.controllers"), controllers).unwrap();
            fs::write(root.path().join("cgroup.subtree_control"), "").unwrap();
            // The parent exists already, as after an earlier run, with its files.
            fs::create_dir(root.path().join("minidock")).unwrap();
            fs::write(root.path().join("minidock/cgroup.subtree_control"), "").unwrap();
            FakeCgroupfs { root }
        }

        pub(crate) fn path(&self) -> &Path {
            self.root.path()
        }

        pub(crate) fn populate(&self, dir: &Path) {
            for file in LEAF_FILES {
                fs::write(dir.join(file), "").unwrap();
            }
        }

        pub(crate) fn read(&self, relative: &str) -> String {
            fs::read_to_string(self.root.path().join(relative)).unwrap()
        }
    }

    #[test]
    fn io_throttles_become_io_max_lines_and_weights_convert() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["io.max", "io.weight", "pids.max"] {
            fs::write(dir.path().join(f), "").unwrap();
        }
        let resources = Resources {
            block_io: Some(crate::cgroup::BlockIo {
                weight: Some(1000),
                throttle_write_iops: vec![(254, 0, 100)],
                ..Default::default()
            }),
            unified: [("pids.max".to_owned(), "7".to_owned())].into(),
            ..Default::default()
        };
        Io::apply(dir.path(), &resources).unwrap();
        Unified::apply(dir.path(), &resources).unwrap();
        let read = |f: &str| fs::read_to_string(dir.path().join(f)).unwrap();
        assert_eq!(read("io.max"), "254:0 wiops=100");
        assert_eq!(read("io.weight"), "10000");
        assert_eq!(read("pids.max"), "7");
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        let escape = Resources {
            unified: [("../x".to_owned(), "1".to_owned())].into(),
            ..Default::default()
        };
        assert!(Unified::apply(dir.path(), &escape).is_err());
        let missing = Resources {
            unified: [("memory.high".to_owned(), "1".to_owned())].into(),
            ..Default::default()
        };
        assert!(Unified::apply(dir.path(), &missing).is_err());
    }

    #[test]
    fn create_enables_the_controllers_top_down() {
        let fake = FakeCgroupfs::new("cpuset cpu io memory pids\n");
        let cgroup = Cgroup::create(
            fake.path(),
            "minidock",
            "box1",
            &["memory", "cpu", "cpuacct", "pids"],
        )
        .unwrap();
        assert_eq!(cgroup.path(), fake.path().join("minidock/box1"));
        assert!(cgroup.path().is_dir());
        // cpuacct is a v1-only controller: cgroup2 does not list it, so it is not asked for.
        assert_eq!(fake.read("cgroup.subtree_control"), "+memory +cpu +pids");
        assert_eq!(
            fake.read("minidock/cgroup.subtree_control"),
            "+memory +cpu +pids"
        );
    }

    #[test]
    fn a_nested_parent_gets_the_controllers_at_every_level() {
        let fake = FakeCgroupfs::new("memory pids");
        for level in ["a", "a/b"] {
            fs::create_dir(fake.path().join(level)).unwrap();
            fs::write(fake.path().join(level).join("cgroup.subtree_control"), "").unwrap();
        }
        let dir = prepare_parent(fake.path(), "a/b", &["memory", "cpu", "pids"]).unwrap();
        assert_eq!(dir, fake.path().join("a/b"));
        assert_eq!(fake.read("cgroup.subtree_control"), "+memory +pids");
        assert_eq!(fake.read("a/cgroup.subtree_control"), "+memory +pids");
        assert_eq!(fake.read("a/b/cgroup.subtree_control"), "+memory +pids");
        // The root itself as the parent: only the root's subtree_control is written.
        assert_eq!(
            prepare_parent(fake.path(), "", &["memory"]).unwrap(),
            fake.path()
        );
    }

    #[test]
    fn controllers_already_enabled_are_not_written_again() {
        let fake = FakeCgroupfs::new("cpu memory pids");
        fs::write(
            fake.path().join("cgroup.subtree_control"),
            "cpu memory pids\n",
        )
        .unwrap();
        fs::write(
            fake.path().join("minidock/cgroup.subtree_control"),
            "memory\n",
        )
        .unwrap();
        Cgroup::create(fake.path(), "minidock", "box2", &["memory", "cpu", "pids"]).unwrap();
        assert_eq!(fake.read("cgroup.subtree_control"), "cpu memory pids\n");
        assert_eq!(fake.read("minidock/cgroup.subtree_control"), "+cpu +pids");
    }

    #[test]
    fn a_second_cgroup_with_the_same_name_is_refused() {
        let fake = FakeCgroupfs::new("memory");
        Cgroup::create(fake.path(), "minidock", "same", &["memory"]).unwrap();
        let err = Cgroup::create(fake.path(), "minidock", "same", &["memory"]).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
    }

    #[test]
    fn the_writers_use_the_exact_v2_file_names_and_formats() {
        let fake = FakeCgroupfs::new("cpu memory pids");
        let cgroup =
            Cgroup::create(fake.path(), "minidock", "box3", &["memory", "cpu", "pids"]).unwrap();
        fake.populate(cgroup.path());
        let resources = Resources {
            memory: Some(Limit::Value(32 << 20)),
            memory_swap: Some(Limit::Value(32 << 20)),
            cpu_quota: Some(Limit::Value(50_000)),
            cpu_period: Some(100_000),
            cpu_shares: Some(1024),
            pids: Some(Limit::Value(20)),
            ..Default::default()
        };
        cgroup.apply(&resources).unwrap();
        cgroup.add_pid(Pid::from_raw(4242)).unwrap();
        assert_eq!(fake.read("minidock/box3/memory.max"), "33554432");
        assert_eq!(fake.read("minidock/box3/memory.swap.max"), "0");
        assert_eq!(fake.read("minidock/box3/cpu.max"), "50000 100000");
        assert_eq!(fake.read("minidock/box3/cpu.weight"), "100");
        assert_eq!(fake.read("minidock/box3/pids.max"), "20");
        assert_eq!(fake.read("minidock/box3/cgroup.procs"), "4242");
    }

    #[test]
    fn unlimited_is_written_as_max_and_untouched_fields_stay_untouched() {
        let fake = FakeCgroupfs::new("cpu memory pids");
        let cgroup =
            Cgroup::create(fake.path(), "minidock", "box4", &["memory", "cpu", "pids"]).unwrap();
        fake.populate(cgroup.path());
        cgroup
            .apply(&Resources {
                memory: Some(Limit::Unlimited),
                memory_swap: Some(Limit::Unlimited),
                cpu_quota: Some(Limit::Unlimited),
                pids: Some(Limit::Unlimited),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(fake.read("minidock/box4/memory.max"), "max");
        assert_eq!(fake.read("minidock/box4/memory.swap.max"), "max");
        assert_eq!(fake.read("minidock/box4/cpu.max"), "max 100000");
        assert_eq!(fake.read("minidock/box4/pids.max"), "max");
        assert_eq!(
            fake.read("minidock/box4/cpu.weight"),
            "",
            "no shares given, no write"
        );
    }

    #[test]
    fn a_missing_controller_file_is_an_error_naming_the_path() {
        let fake = FakeCgroupfs::new("memory");
        let cgroup = Cgroup::create(fake.path(), "minidock", "box5", &["memory"]).unwrap();
        // No populate: like a cgroup whose parent did not enable pids.
        let err = cgroup
            .apply(&Resources {
                pids: Some(Limit::Value(5)),
                ..Default::default()
            })
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("minidock/box5/pids.max"),
            "{err:#}"
        );
    }

    #[test]
    fn swap_needs_accounting_unless_no_swap_is_wanted() {
        let fake = FakeCgroupfs::new("memory");
        let cgroup = Cgroup::create(fake.path(), "minidock", "box6", &["memory"]).unwrap();
        fs::write(cgroup.path().join("memory.max"), "").unwrap();
        let no_swap = Resources {
            memory: Some(Limit::Value(64 << 20)),
            memory_swap: Some(Limit::Value(64 << 20)),
            ..Default::default()
        };
        cgroup.apply(&no_swap).unwrap();
        let some_swap = Resources {
            memory_swap: Some(Limit::Value(128 << 20)),
            ..no_swap
        };
        let err = cgroup.apply(&some_swap).unwrap_err().to_string();
        assert!(err.contains("cannot limit swap"), "{err}");
    }

    #[test]
    fn the_readers_parse_memory_events_cpu_stat_and_pids() {
        let fake = FakeCgroupfs::new("cpu memory pids");
        let cgroup =
            Cgroup::create(fake.path(), "minidock", "box7", &["memory", "cpu", "pids"]).unwrap();
        fake.populate(cgroup.path());
        let dir = cgroup.path();
        fs::write(dir.join("memory.current"), "1236992\n").unwrap();
        fs::write(dir.join("memory.peak"), "33554432\n").unwrap();
        fs::write(dir.join("memory.max"), "33554432\n").unwrap();
        fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 112\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        fs::write(
            dir.join("cpu.stat"),
            "usage_usec 1003457\nuser_usec 1000000\nsystem_usec 3457\nnr_periods 20\n\
             nr_throttled 19\nthrottled_usec 950000\nnr_bursts 0\nburst_usec 0\n",
        )
        .unwrap();
        fs::write(dir.join("cpu.max"), "50000 100000\n").unwrap();
        fs::write(dir.join("pids.current"), "3\n").unwrap();
        fs::write(dir.join("pids.peak"), "20\n").unwrap();
        fs::write(dir.join("pids.max"), "20\n").unwrap();
        fs::write(dir.join("pids.events"), "max 57\n").unwrap();
        fs::write(
            dir.join("memory.stat"),
            "anon 4096\nfile 8192\ninactive_file 4096\n",
        )
        .unwrap();
        fs::write(
            dir.join("io.stat"),
            "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n\
             8:16 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n",
        )
        .unwrap();
        let stats = cgroup.stats().unwrap();
        assert_eq!(
            stats,
            Stats {
                memory_current: Some(1236992),
                memory_peak: Some(33554432),
                memory_limit: Some(Limit::Value(33554432)),
                memory_limit_hits: Some(112),
                oom_kills: Some(1),
                cpu_usage: Some(Duration::from_micros(1003457)),
                cpu_quota: Some(Limit::Value(50_000)),
                cpu_period_us: Some(100_000),
                cpu_throttled_periods: Some(19),
                pids_current: Some(3),
                pids_peak: Some(20),
                pids_limit: Some(Limit::Value(20)),
                pids_refused: Some(57),
                memory_inactive_file: Some(4096),
                io_read_bytes: Some(4097),
                io_write_bytes: Some(8194),
            }
        );
    }

    #[test]
    fn files_a_kernel_lacks_read_as_none() {
        let fake = FakeCgroupfs::new("");
        let cgroup = Cgroup::create(fake.path(), "minidock", "bare", &["memory"]).unwrap();
        fs::write(cgroup.path().join("cpu.stat"), "usage_usec 10\n").unwrap();
        let stats = cgroup.stats().unwrap();
        assert_eq!(stats.cpu_usage, Some(Duration::from_micros(10)));
        assert_eq!(stats.memory_peak, None);
        assert_eq!(stats.oom_kills, None);
        assert_eq!(fake.read("cgroup.subtree_control"), "", "nothing to enable");
    }

    #[test]
    fn cpu_max_parses_and_rejects_junk() {
        assert_eq!(
            parse_cpu_max("max 100000\n").unwrap(),
            (Limit::Unlimited, 100_000)
        );
        assert_eq!(
            parse_cpu_max("50000 100000").unwrap(),
            (Limit::Value(50_000), 100_000)
        );
        assert!(parse_cpu_max("50000").is_err());
        assert!(parse_cpu_max("a b").is_err());
    }

    #[test]
    fn shares_map_to_weights_at_min_default_and_max() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert!(shares_to_weight(512) < 100 && shares_to_weight(2048) > 100);
    }

    #[test]
    fn kill_all_on_an_empty_cgroup_writes_nothing() {
        let fake = FakeCgroupfs::new("memory");
        let cgroup = Cgroup::create(fake.path(), "minidock", "empty", &[]).unwrap();
        fake.populate(cgroup.path());
        cgroup.kill_all().unwrap();
        assert_eq!(fake.read("minidock/empty/cgroup.kill"), "");
    }
}
