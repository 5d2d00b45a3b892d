//! cgroup v1: one hierarchy per controller, so one group is several directories.
//!
//! A process on a v1 host belongs to one cgroup in *each* hierarchy: `/proc/self/cgroup` has a
//! line per hierarchy. So "the cgroup" of a container is `memory/minidock/NAME`,
//! `cpu/minidock/NAME`, `pids/minidock/NAME`... each with its own `cgroup.procs`, and the
//! process must be written into every one of them. Each hierarchy also has its own idea of the
//! file names: `memory.limit_in_bytes` here is `memory.max` on v2.

use super::layout::Hierarchy;
use super::{
    ControllerFiles, Limit, Resources, Stats, make_dir, make_parents, read_keyed, read_optional,
    read_procs, read_u64, write_file,
};
use anyhow::{Context, Result, bail};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The v1 memory controller reports "no limit" as the largest page-aligned counter value
/// (PAGE_COUNTER_MAX pages), 9223372036854771712 on x86-64; anything this large is unlimited.
const V1_UNLIMITED_ABOVE: u64 = 1 << 62;

/// A controller's writer: its share of the resources into its directory.
type Writer = fn(&Path, &Resources) -> Result<()>;

/// One group across the v1 hierarchies: a directory per hierarchy.
#[derive(Debug)]
pub struct Cgroup {
    /// Each hierarchy's controllers (`cpu,cpuacct`, `name=systemd`, empty for the cgroup2
    /// mount of a hybrid host) and the group's directory there.
    dirs: Vec<(String, PathBuf)>,
    /// The directories of `dirs` that existed before [`Cgroup::create`] joined them.
    joined: Vec<PathBuf>,
}

impl Cgroup {
    /// The group made of existing directories: each hierarchy's controllers (as in
    /// `/proc/self/cgroup`) and the group's directory there.
    pub fn from_dirs(dirs: Vec<(String, PathBuf)>) -> Cgroup {
        Cgroup {
            dirs,
            joined: Vec::new(),
        }
    }

    // ANCHOR: v1_create
    /// Creates the group in every hierarchy of `hierarchies`, as runc does: at
    /// `MOUNT/parent_of(hierarchy)/name`. Without a directory in, say, `devices` or
    /// `name=systemd`, the container would stay in the host's root cgroup there. An existing
    /// directory is an error unless `may_exist`, and then it is joined: never killed in nor
    /// removed by [`Cgroup::remove`]. On failure, the directories made so far are removed again.
    pub fn create(
        hierarchies: &[Hierarchy],
        parent_of: &dyn Fn(&Hierarchy) -> Result<String>,
        name: &str,
        may_exist: bool,
    ) -> Result<Cgroup> {
        let mut cgroup = Cgroup {
            dirs: Vec::new(),
            joined: Vec::new(),
        };
        for hierarchy in hierarchies {
            let made = parent_of(hierarchy).and_then(|parent| {
                let dir = hierarchy.mount.join(&parent).join(name);
                make_parents(&hierarchy.mount, &parent)?;
                if !make_dir(&dir, may_exist, "create the cgroup")? {
                    cgroup.joined.push(dir.clone());
                }
                cgroup
                    .dirs
                    .push((hierarchy.controllers.clone(), dir.clone()));
                if hierarchy.has("cpuset") {
                    inherit_cpuset(&hierarchy.mount, &dir)?;
                }
                Ok(())
            });
            if let Err(err) = made {
                let _ = cgroup.remove();
                return Err(err);
            }
        }
        if !cgroup.dirs.iter().any(|(c, _)| !c.is_empty()) {
            bail!("this host mounts no cgroup v1 hierarchy");
        }
        Ok(cgroup)
    }
    // ANCHOR_END: v1_create

    /// The directory of one controller.
    pub fn path_of(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| c.split(',').any(|c| c == controller))
            .map(|(_, d)| d.as_path())
    }

    /// The directories that existed before [`Cgroup::create`] joined them.
    pub fn joined(&self) -> &[PathBuf] {
        &self.joined
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

    /// Writes each controller's share of `resources` into its hierarchy's directory. A
    /// controller this host does not mount is an error, never a silent skip.
    pub fn apply(&self, resources: &Resources) -> Result<()> {
        let needed = resources.controllers();
        let writers: [(&str, Writer); 9] = [
            ("cpuset", CpuSet::apply),
            ("memory", Memory::apply),
            ("cpu", Cpu::apply),
            ("pids", Pids::apply),
            ("devices", Devices::apply),
            ("blkio", Blkio::apply),
            ("hugetlb", Hugetlb::apply),
            ("net_cls", NetCls::apply),
            ("net_prio", NetPrio::apply),
        ];
        for (controller, apply) in writers {
            if needed.contains(&controller) {
                apply(self.require(controller)?, resources)?;
            }
        }
        if !resources.unified.is_empty() {
            bail!("linux.resources.unified: cannot be used on cgroup v1");
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

    /// The `tasks` file of the directory in every v1 hierarchy, for [`super::join_self`].
    pub fn task_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = Vec::new();
        for (controllers, dir) in &self.dirs {
            let file = dir.join("tasks");
            if !controllers.is_empty() && !files.contains(&file) {
                files.push(file);
            }
        }
        files
    }

    /// The group's directory in a hybrid host's cgroup2 mount (no controllers), if any.
    pub fn cgroup2_dir(&self) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| c.is_empty())
            .map(|(_, dir)| dir.as_path())
    }

    /// Writes `pid` into `cgroup.procs` of the directory in a hybrid host's cgroup2 mount, if
    /// the group has one (the v1 hierarchies are joined through [`Cgroup::task_files`]).
    pub fn add_pid_to_cgroup2(&self, pid: Pid) -> Result<()> {
        for (_, dir) in self.dirs.iter().filter(|(c, _)| c.is_empty()) {
            write_file(
                dir,
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
        if let Some(dir) = self.path_of("blkio") {
            Blkio::read_stats(dir, &mut stats)?;
        }
        Ok(stats)
    }

    /// v1 has no `cgroup.kill`: freeze, SIGKILL every task of every subtree, thaw, wait.
    pub fn kill_all(&self) -> Result<()> {
        super::teardown::kill_all(&self.paths())
    }

    /// Kills what is left and removes every directory it made, child cgroups first.
    pub fn remove(&self) -> Result<()> {
        let mut made = self.paths();
        made.retain(|d| !self.joined.contains(d));
        super::teardown::remove_all(&made)
    }
}

// ANCHOR: inherit_cpuset
/// A new v1 cpuset cgroup starts with empty `cpuset.cpus` and `cpuset.mems`, and the kernel
/// refuses to put a task into it (ENOSPC) until both are set (cgroup-v1/cpusets.rst). So each
/// level from the mount down to `dir` gets its parent's values where it has none yet.
fn inherit_cpuset(mount: &Path, dir: &Path) -> Result<()> {
    let Ok(below) = dir.strip_prefix(mount) else {
        bail!("{} is not below {}", dir.display(), mount.display());
    };
    let mut parent = mount.to_path_buf();
    for component in below.components() {
        let child = parent.join(component);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let current = read_optional(&child, file)?.unwrap_or_default();
            if current.trim().is_empty() {
                let value = read_optional(&parent, file)?.unwrap_or_default();
                write_file(&child, file, value.trim(), "copy the parent's cpuset")?;
            }
        }
        parent = child;
    }
    Ok(())
}
// ANCHOR_END: inherit_cpuset

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
        for (file, value, what) in memory_writes(dir, resources)? {
            write_file(dir, file, &value, what).with_context(|| {
                format!("setting {file} (EBUSY here means the group already uses more)")
            })?;
        }
        memory_extras(dir, resources)
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
        stats.memory_inactive_file = read_keyed(dir, "memory.stat", "total_inactive_file")?;
        Ok(())
    }
}
// ANCHOR_END: v1_memory

// ANCHOR: v1_memory_order
/// The limit writes, in an order the kernel accepts: (file, value, what the trace says).
/// Asking to limit swap where the kernel has no `memory.memsw.*` files is an error, unless
/// the swap limit equals the memory one (no swap at all, which needs no file).
fn memory_writes(
    dir: &Path,
    resources: &Resources,
) -> Result<Vec<(&'static str, String, &'static str)>> {
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
    Ok(writes)
}
// ANCHOR_END: v1_memory_order

/// The soft limit, swappiness and the OOM killer switch: `memory.soft_limit_in_bytes`,
/// `memory.swappiness` (0..=100), `memory.oom_control` (`1` disables the OOM killer).
fn memory_extras(dir: &Path, resources: &Resources) -> Result<()> {
    if let Some(reservation) = resources.memory_reservation {
        let value = limit_text(reservation);
        write_file(
            dir,
            "memory.soft_limit_in_bytes",
            &value,
            "set the soft limit",
        )?;
    }
    if let Some(swappiness) = resources.memory_swappiness {
        if swappiness > 100 {
            bail!("memory.swappiness {swappiness} out of range: the kernel takes 0 to 100");
        }
        let value = swappiness.to_string();
        write_file(dir, "memory.swappiness", &value, "set the swappiness")?;
    }
    if let Some(disable) = resources.oom_kill_disable {
        let value = if disable { "1" } else { "0" };
        write_file(dir, "memory.oom_control", value, "switch the OOM killer")?;
    }
    Ok(())
}

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

// ANCHOR: v1_more
/// The cpuset controller: `cpuset.cpus` and `cpuset.mems` (lists like `0-1,3`).
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

/// The devices controller: `devices.deny` and `devices.allow` ([`super::devices::apply_v1`]).
pub struct Devices;

impl Devices {
    fn apply(dir: &Path, resources: &Resources) -> Result<()> {
        match &resources.devices {
            Some(rules) => super::devices::apply_v1(dir, rules),
            None => Ok(()),
        }
    }
}

/// The blkio controller: weights (`blkio.weight`, or `blkio.bfq.weight` where only the BFQ
/// scheduler offers them) and `blkio.throttle.*_device` lines `MAJOR:MINOR RATE`.
pub struct Blkio;

impl Blkio {
    fn apply(dir: &Path, resources: &Resources) -> Result<()> {
        let Some(io) = &resources.block_io else {
            return Ok(());
        };
        let bfq = !dir.join("blkio.weight").exists();
        let (weight, weight_device) = if bfq {
            ("blkio.bfq.weight", "blkio.bfq.weight_device")
        } else {
            ("blkio.weight", "blkio.weight_device")
        };
        if let Some(value) = io.weight {
            write_file(dir, weight, &value.to_string(), "set the io weight")?;
        }
        if let Some(value) = io.leaf_weight {
            write_file(
                dir,
                "blkio.leaf_weight",
                &value.to_string(),
                "set the leaf weight",
            )?;
        }
        for &(major, minor, weight, leaf) in &io.weight_device {
            if let Some(w) = weight {
                let line = format!("{major}:{minor} {w}");
                write_file(dir, weight_device, &line, "set a device's io weight")?;
            }
            if let Some(w) = leaf {
                let line = format!("{major}:{minor} {w}");
                write_file(dir, "blkio.leaf_weight_device", &line, "set a leaf weight")?;
            }
        }
        let throttles = [
            ("blkio.throttle.read_bps_device", &io.throttle_read_bps),
            ("blkio.throttle.write_bps_device", &io.throttle_write_bps),
            ("blkio.throttle.read_iops_device", &io.throttle_read_iops),
            ("blkio.throttle.write_iops_device", &io.throttle_write_iops),
        ];
        for (file, devices) in throttles {
            for (major, minor, rate) in devices {
                let line = format!("{major}:{minor} {rate}");
                write_file(dir, file, &line, "throttle a device")?;
            }
        }
        Ok(())
    }
}

impl Blkio {
    /// The bytes read and written: `blkio.throttle.io_service_bytes_recursive` (lines
    /// `MAJOR:MINOR Read|Write|Sync|Async|Discard|Total BYTES`, then `Total BYTES`), which the
    /// kernel keeps whatever the I/O scheduler; `blkio.throttle.io_service_bytes` before the
    /// recursive file existed (Linux 4.x).
    fn read_stats(dir: &Path, stats: &mut Stats) -> Result<()> {
        let text = match read_optional(dir, "blkio.throttle.io_service_bytes_recursive")? {
            Some(text) => Some(text),
            None => read_optional(dir, "blkio.throttle.io_service_bytes")?,
        };
        if let Some(text) = text {
            let (read, write) = parse_io_service_bytes(&text);
            stats.io_read_bytes = Some(read);
            stats.io_write_bytes = Some(write);
        }
        Ok(())
    }
}

/// Sums the `Read` and `Write` lines of a v1 `blkio.*io_service_bytes*` file over the devices.
pub fn parse_io_service_bytes(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, op, value] = fields.as_slice() else {
            continue;
        };
        let Ok(value) = value.parse::<u64>() else {
            continue;
        };
        match *op {
            "Read" => read = read.saturating_add(value),
            "Write" => write = write.saturating_add(value),
            _ => {}
        }
    }
    (read, write)
}

/// The hugetlb controller: `hugetlb.<SIZE>.limit_in_bytes`, SIZE as the kernel names the
/// page size (`2MB`, `1GB`).
pub struct Hugetlb;

impl Hugetlb {
    fn apply(dir: &Path, resources: &Resources) -> Result<()> {
        for (size, limit) in &resources.hugepage_limits {
            let file = super::hugetlb_file(size, "limit_in_bytes")?;
            write_file(dir, &file, &limit.to_string(), "set a huge page limit")?;
        }
        Ok(())
    }
}

/// The net_cls controller: `net_cls.classid`, the tc class id of the group's packets.
pub struct NetCls;

impl NetCls {
    fn apply(dir: &Path, resources: &Resources) -> Result<()> {
        if let Some(id) = resources.net_class_id {
            write_file(dir, "net_cls.classid", &id.to_string(), "set the class id")?;
        }
        Ok(())
    }
}

/// The net_prio controller: one `IFNAME PRIORITY` line per write into `net_prio.ifpriomap`.
pub struct NetPrio;

impl NetPrio {
    fn apply(dir: &Path, resources: &Resources) -> Result<()> {
        for (name, priority) in &resources.net_priorities {
            let line = format!("{name} {priority}");
            write_file(
                dir,
                "net_prio.ifpriomap",
                &line,
                "set an interface priority",
            )?;
        }
        Ok(())
    }
}
// ANCHOR_END: v1_more

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
    fn blkio_and_net_prio_write_one_line_per_device() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "blkio.bfq.weight",
            "blkio.throttle.read_bps_device",
            "net_prio.ifpriomap",
            "net_cls.classid",
        ] {
            fs::write(dir.path().join(f), "").unwrap();
        }
        let resources = Resources {
            block_io: Some(crate::cgroup::BlockIo {
                weight: Some(300),
                throttle_read_bps: vec![(8, 0, 1 << 20)],
                ..Default::default()
            }),
            net_class_id: Some(0x100001),
            net_priorities: vec![("lo".into(), 5)],
            ..Default::default()
        };
        Blkio::apply(dir.path(), &resources).unwrap();
        NetCls::apply(dir.path(), &resources).unwrap();
        NetPrio::apply(dir.path(), &resources).unwrap();
        let read = |f: &str| fs::read_to_string(dir.path().join(f)).unwrap();
        assert_eq!(read("blkio.bfq.weight"), "300");
        assert_eq!(read("blkio.throttle.read_bps_device"), "8:0 1048576");
        assert_eq!(read("net_cls.classid"), "1048577");
        assert_eq!(read("net_prio.ifpriomap"), "lo 5");
        // No CFQ: the leaf weight has no file, and that is an error, not a skip.
        let leaf = Resources {
            block_io: Some(crate::cgroup::BlockIo {
                leaf_weight: Some(300),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(Blkio::apply(dir.path(), &leaf).is_err());
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

    #[test]
    fn io_service_bytes_are_summed_by_operation() {
        let text = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 12288\n8:0 Async 0\n\
                    8:0 Discard 0\n8:0 Total 12288\n8:16 Read 1\n8:16 Write 2\nTotal 12291\n";
        assert_eq!(parse_io_service_bytes(text), (4097, 8194));
        assert_eq!(parse_io_service_bytes("Total 0\n"), (0, 0));
    }
}
