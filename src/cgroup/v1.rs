//! cgroup v1: one hierarchy per controller, so one group is several directories.
//!
//! A process on a v1 host belongs to one cgroup in *each* hierarchy: `/proc/self/cgroup` has a
//! line per hierarchy. So "the cgroup" of a container is `memory/minidock/NAME`,
//! `cpu/minidock/NAME`, `pids/minidock/NAME`... each with its own `cgroup.procs`, and the
//! process must be written into every one of them. Each hierarchy also has its own idea of the
//! file names: `memory.limit_in_bytes` here is `memory.max` on v2.

use super::{
    ControllerFiles, Layout, Limit, MANAGED_CONTROLLERS, Resources, Stats, Version, kill_listed,
    make_dir, make_parents, read_keyed, read_procs, read_u64, remove_dir, write_file,
};
use anyhow::{Context, Result, bail};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The v1 memory controller reports "no limit" as the largest page-aligned counter value
/// (PAGE_COUNTER_MAX pages), 9223372036854771712 on x86-64; anything this large is unlimited.
const V1_UNLIMITED_ABOVE: u64 = 1 << 62;

/// One group across the v1 hierarchies: a directory per hierarchy.
#[derive(Debug)]
pub struct Cgroup {
    /// Every managed controller and its directory. Co-mounted controllers (`cpu,cpuacct`)
    /// share one directory.
    dirs: Vec<(&'static str, PathBuf)>,
}

impl Cgroup {
    /// The group made of existing directories, one per controller.
    pub fn from_dirs(dirs: Vec<(&'static str, PathBuf)>) -> Cgroup {
        Cgroup { dirs }
    }

    // ANCHOR: v1_create
    /// Creates `HIERARCHY/parent/name` in the hierarchy of each managed controller this host
    /// mounts as v1. On failure, the directories made so far are removed again.
    pub fn create(layout: &Layout, parent: &str, name: &str) -> Result<Cgroup> {
        let mut cgroup = Cgroup { dirs: Vec::new() };
        for &controller in MANAGED_CONTROLLERS {
            let Some(found) = layout.controller(controller) else {
                continue;
            };
            if found.version != Version::V1 {
                continue;
            }
            let dir = found.mount.join(parent).join(name);
            if !cgroup.dirs.iter().any(|(_, d)| *d == dir) {
                let made = make_parents(&found.mount, parent)
                    .and_then(|_| make_dir(&dir, false, "create the cgroup"));
                if let Err(err) = made {
                    let _ = cgroup.remove();
                    return Err(err);
                }
            }
            cgroup.dirs.push((controller, dir));
        }
        if cgroup.dirs.is_empty() {
            bail!(
                "the {} layout has no v1 hierarchy for memory, cpu or pids",
                layout.kind.name()
            );
        }
        Ok(cgroup)
    }
    // ANCHOR_END: v1_create

    /// The directory of one controller.
    pub fn path_of(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, d)| d.as_path())
    }

    /// Each directory once.
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = Vec::new();
        for (_, dir) in &self.dirs {
            if !paths.contains(dir) {
                paths.push(dir.clone());
            }
        }
        paths
    }

    fn require(&self, controller: &str) -> Result<&Path> {
        self.path_of(controller)
            .with_context(|| format!("this cgroup has no {controller} hierarchy"))
    }

    pub fn apply(&self, resources: &Resources) -> Result<()> {
        let needed = resources.controllers();
        if needed.contains(&"memory") {
            Memory::apply(self.require("memory")?, resources)?;
        }
        if needed.contains(&"cpu") {
            Cpu::apply(self.require("cpu")?, resources)?;
        }
        if needed.contains(&"pids") {
            Pids::apply(self.require("pids")?, resources)?;
        }
        Ok(())
    }

    /// Writes `pid` into `cgroup.procs` of every hierarchy.
    pub fn add_pid(&self, pid: Pid) -> Result<()> {
        for dir in self.paths() {
            write_file(
                &dir,
                "cgroup.procs",
                &pid.to_string(),
                "move the process into the cgroup",
            )?;
        }
        Ok(())
    }

    /// Every process in any of the directories.
    pub fn procs(&self) -> Result<Vec<Pid>> {
        let mut all = Vec::new();
        for dir in self.paths() {
            for pid in read_procs(&dir)? {
                if !all.contains(&pid) {
                    all.push(pid);
                }
            }
        }
        Ok(all)
    }

    pub fn stats(&self) -> Result<Stats> {
        let mut stats = Stats::default();
        if let Some(dir) = self.path_of("memory") {
            Memory::read_stats(dir, &mut stats)?;
        }
        if let Some(dir) = self.path_of("cpu") {
            Cpu::read_stats(dir, &mut stats)?;
        }
        if let Some(dir) = self.path_of("cpuacct") {
            CpuAcct::read_stats(dir, &mut stats)?;
        }
        if let Some(dir) = self.path_of("pids") {
            Pids::read_stats(dir, &mut stats)?;
        }
        Ok(stats)
    }

    /// v1 has no `cgroup.kill`: SIGKILL what each `cgroup.procs` lists until all are empty.
    pub fn kill_all(&self) -> Result<()> {
        for dir in self.paths() {
            kill_listed(&dir)?;
        }
        Ok(())
    }

    /// Removes every directory, trying them all even if one fails.
    pub fn remove(&self) -> Result<()> {
        let mut first_error = None;
        for dir in self.paths() {
            if let Err(err) = remove_dir(&dir) {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// A v1 limit as the file wants it: a number, or `-1` for none.
fn limit_text(limit: Limit) -> String {
    match limit {
        Limit::Unlimited => "-1".to_owned(),
        Limit::Value(value) => value.to_string(),
    }
}

fn memory_limit(value: u64) -> Limit {
    if value >= V1_UNLIMITED_ABOVE {
        Limit::Unlimited
    } else {
        Limit::Value(value)
    }
}

/// The memory controller: `memory.limit_in_bytes`, `memory.memsw.limit_in_bytes`.
pub struct Memory;

// ANCHOR: v1_memory
impl ControllerFiles for Memory {
    const NAME: &'static str = "memory";

    fn apply(dir: &Path, resources: &Resources) -> Result<()> {
        let memory = resources.memory.map(limit_text);
        let has_memsw = dir.join("memory.memsw.limit_in_bytes").exists();
        let memsw = match resources.memory_swap {
            Some(swap) if has_memsw => Some(limit_text(swap)),
            Some(swap) if swap != resources.memory.unwrap_or(Limit::Unlimited) => bail!(
                "this kernel cannot limit swap: {} has no memory.memsw.limit_in_bytes (boot with \
                 swapaccount=1)",
                dir.display()
            ),
            _ => None,
        };
        // The kernel keeps limit_in_bytes <= memsw.limit_in_bytes at every moment and refuses
        // (EINVAL) a write that would break it. So when the new limit is above the current
        // memory+swap limit, raise memory+swap first; otherwise lower memory first.
        let current_memsw = read_u64(dir, "memory.memsw.limit_in_bytes")?.unwrap_or(u64::MAX);
        let raising = matches!(resources.memory, Some(Limit::Value(m)) if m > current_memsw)
            || resources.memory == Some(Limit::Unlimited);
        let mut writes: Vec<(&str, String, &str)> = Vec::new();
        if let Some(value) = memory {
            writes.push(("memory.limit_in_bytes", value, "set the memory limit"));
        }
        if let Some(value) = memsw {
            let write = (
                "memory.memsw.limit_in_bytes",
                value,
                "set the memory+swap limit",
            );
            if raising {
                writes.insert(0, write);
            } else {
                writes.push(write);
            }
        }
        for (file, value, what) in writes {
            write_file(dir, file, &value, what).with_context(|| {
                format!("setting {file} (EBUSY here means the group already uses more)")
            })?;
        }
        Ok(())
    }

    fn read_stats(dir: &Path, stats: &mut Stats) -> Result<()> {
        stats.memory_current = read_u64(dir, "memory.usage_in_bytes")?;
        stats.memory_peak = read_u64(dir, "memory.max_usage_in_bytes")?;
        stats.memory_limit = read_u64(dir, "memory.limit_in_bytes")?.map(memory_limit);
        // With memory+swap limited too, a charge may fail on either counter; the memsw one
        // first when both limits are equal.
        let hits = read_u64(dir, "memory.failcnt")?;
        let memsw_hits = read_u64(dir, "memory.memsw.failcnt")?;
        stats.memory_limit_hits = hits.max(memsw_hits);
        // "oom_kill" joined memory.oom_control in Linux 4.13; before that v1 could only say
        // "under_oom" while it was happening.
        stats.oom_kills = read_keyed(dir, "memory.oom_control", "oom_kill")?;
        Ok(())
    }
}
// ANCHOR_END: v1_memory

/// The cpu controller: CFS bandwidth (`cpu.cfs_quota_us` per `cpu.cfs_period_us`) and
/// `cpu.shares`.
pub struct Cpu;

// ANCHOR: v1_cpu
impl ControllerFiles for Cpu {
    const NAME: &'static str = "cpu";

    fn apply(dir: &Path, resources: &Resources) -> Result<()> {
        // Two files where v2 has one (cpu.max). The period goes first, so that the quota is
        // checked against the period it is meant for.
        if let Some(period) = resources.cpu_period {
            write_file(
                dir,
                "cpu.cfs_period_us",
                &period.to_string(),
                "set the cpu period",
            )?;
        }
        if let Some(quota) = resources.cpu_quota {
            write_file(
                dir,
                "cpu.cfs_quota_us",
                &limit_text(quota),
                "set the cpu quota",
            )?;
        }
        if let Some(shares) = resources.cpu_shares {
            write_file(dir, "cpu.shares", &shares.to_string(), "set the cpu shares")?;
        }
        Ok(())
    }

    fn read_stats(dir: &Path, stats: &mut Stats) -> Result<()> {
        stats.cpu_throttled_periods = read_keyed(dir, "cpu.stat", "nr_throttled")?;
        stats.cpu_period_us = read_u64(dir, "cpu.cfs_period_us")?;
        if let Some(text) = super::read_optional(dir, "cpu.cfs_quota_us")? {
            let quota: i64 = text
                .trim()
                .parse()
                .with_context(|| format!("parsing {}", dir.join("cpu.cfs_quota_us").display()))?;
            stats.cpu_quota = Some(Limit::from_oci(quota));
        }
        Ok(())
    }
}
// ANCHOR_END: v1_cpu

/// The cpuacct controller: it only counts. Its hierarchy may be separate from cpu's (as on the
/// CI host, `/sys/fs/cgroup/cpuacct`) or co-mounted (`/sys/fs/cgroup/cpu,cpuacct`).
pub struct CpuAcct;

impl ControllerFiles for CpuAcct {
    const NAME: &'static str = "cpuacct";

    fn apply(_dir: &Path, _resources: &Resources) -> Result<()> {
        Ok(())
    }

    fn read_stats(dir: &Path, stats: &mut Stats) -> Result<()> {
        // Nanoseconds, where v2's cpu.stat counts microseconds.
        stats.cpu_usage = read_u64(dir, "cpuacct.usage")?.map(Duration::from_nanos);
        Ok(())
    }
}

/// The pids controller came late to v1 (Linux 4.3) and already speaks the v2 dialect:
/// `pids.max` with "max", `pids.current`, `pids.events`. So v1 uses the v2 type as is.
pub use super::v2::Pids;

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fake_memory_dir(memsw: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        if let Some(memsw) = memsw {
            fs::write(dir.path().join("memory.memsw.limit_in_bytes"), memsw).unwrap();
        }
        dir
    }

    #[test]
    fn the_v1_writers_use_the_v1_names() {
        let dir = fake_memory_dir(Some("9223372036854771712\n"));
        Memory::apply(
            dir.path(),
            &Resources {
                memory: Some(Limit::Value(32 << 20)),
                memory_swap: Some(Limit::Value(32 << 20)),
                ..Default::default()
            },
        )
        .unwrap();
        let read = |f: &str| fs::read_to_string(dir.path().join(f)).unwrap();
        assert_eq!(read("memory.limit_in_bytes"), "33554432");
        assert_eq!(read("memory.memsw.limit_in_bytes"), "33554432");

        let cpu = tempfile::tempdir().unwrap();
        for f in ["cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.shares"] {
            fs::write(cpu.path().join(f), "").unwrap();
        }
        Cpu::apply(
            cpu.path(),
            &Resources {
                cpu_quota: Some(Limit::Value(50_000)),
                cpu_period: Some(100_000),
                cpu_shares: Some(512),
                ..Default::default()
            },
        )
        .unwrap();
        let read = |f: &str| fs::read_to_string(cpu.path().join(f)).unwrap();
        assert_eq!(read("cpu.cfs_period_us"), "100000");
        assert_eq!(read("cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu.shares"), "512");
    }

    #[test]
    fn without_swap_accounting_only_a_no_swap_request_is_accepted() {
        let dir = fake_memory_dir(None);
        let no_swap = Resources {
            memory: Some(Limit::Value(32 << 20)),
            memory_swap: Some(Limit::Value(32 << 20)),
            ..Default::default()
        };
        Memory::apply(dir.path(), &no_swap).unwrap();
        let more = Resources {
            memory_swap: Some(Limit::Value(64 << 20)),
            ..no_swap
        };
        let err = Memory::apply(dir.path(), &more).unwrap_err().to_string();
        assert!(err.contains("swapaccount=1"), "{err}");
    }

    #[test]
    fn the_v1_readers_understand_oom_control_and_nanoseconds() {
        let dir = tempfile::tempdir().unwrap();
        let write = |f: &str, s: &str| fs::write(dir.path().join(f), s).unwrap();
        write("memory.usage_in_bytes", "0\n");
        write("memory.max_usage_in_bytes", "33554432\n");
        write("memory.limit_in_bytes", "33554432\n");
        write("memory.failcnt", "1713\n");
        write(
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        );
        write("cpuacct.usage", "1500000000\n");
        write(
            "cpu.stat",
            "nr_periods 20\nnr_throttled 18\nthrottled_time 900000000\n",
        );
        write("cpu.cfs_quota_us", "-1\n");
        write("cpu.cfs_period_us", "100000\n");
        let mut stats = Stats::default();
        Memory::read_stats(dir.path(), &mut stats).unwrap();
        CpuAcct::read_stats(dir.path(), &mut stats).unwrap();
        Cpu::read_stats(dir.path(), &mut stats).unwrap();
        assert_eq!(stats.memory_peak, Some(32 << 20));
        assert_eq!(stats.memory_limit, Some(Limit::Value(32 << 20)));
        assert_eq!(stats.memory_limit_hits, Some(1713));
        assert_eq!(stats.oom_kills, Some(1));
        assert_eq!(stats.cpu_usage, Some(Duration::from_millis(1500)));
        assert_eq!(stats.cpu_throttled_periods, Some(18));
        assert_eq!(stats.cpu_quota, Some(Limit::Unlimited));
        assert_eq!(memory_limit(9223372036854771712), Limit::Unlimited);
    }
}
