//! cgroups: detect the layout, and limit memory, cpu and pids on v1 and v2.
//!
//! A control group is a directory in a special filesystem. You create one with mkdir(2), set a
//! limit by writing a number into one of its files, put a process in it by writing the pid into
//! `cgroup.procs`, read what the kernel counted from other files, and remove it with rmdir(2)
//! once it is empty. Everything here is those five operations.
//!
//! - [`detect`] finds the host's layout: v2, v1, or hybrid ([`layout`]).
//! - [`Resources`] are the limits, shaped after the OCI runtime spec's `linux.resources`.
//! - [`Cgroup`] is one cgroup under the `minidock` parent: create, [`Cgroup::apply`] the limits,
//!   [`Cgroup::spawn`] a command inside, read [`Stats`], and remove it on drop.
//! - [`v1`] and [`v2`] hold one small type per controller (memory, cpu, pids, cpuset, blkio or
//!   io, hugetlb, net_cls, net_prio), which know the file names and formats of their version.
//! - [`devices`] is the devices allowlist: v1 `devices.allow`/`devices.deny`, v2 an eBPF
//!   program; [`teardown`] kills and removes a group with its child cgroups.
//! - [`CgroupsPath`] is the runtime spec's `linux.cgroupsPath`.

pub mod devices;
pub mod freezer;
pub mod layout;
pub mod run;
pub(crate) mod spawn;
pub mod teardown;
pub mod tour;
pub mod units;
pub mod v1;
pub mod v2;
pub mod workloads;

pub use layout::{Controller, Kind, Layout, Version, detect, parse};
pub use spawn::{Child, Placement};
pub use units::CpuQuota;

use crate::explain::{self, Chapter};
use anyhow::{Context, Result, bail};
use nix::unistd::Pid;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every cgroup minidock makes lives under this parent, in each hierarchy, the way Docker's
/// cgroupfs driver uses `docker/`: one place to look, and one place to clean.
pub const PARENT: &str = "minidock";

/// The smallest memory limit accepted, as in Docker (6 MiB, `linuxMinMemory` in moby). The
/// kernel itself accepts far less (even 0 on v1), but then not even a shell can start, and the
/// learner would see a confusing OOM kill instead of a clear message.
pub const MIN_MEMORY: u64 = 6 << 20;

/// A limit, or explicitly none: `max` in v2 files, `-1` in v1 files and in the OCI spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Limit {
    Unlimited,
    Value(u64),
}

impl Limit {
    /// The OCI spec's convention: a negative number means no limit.
    pub fn from_oci(value: i64) -> Limit {
        u64::try_from(value).map_or(Limit::Unlimited, Limit::Value)
    }

    pub fn value(self) -> Option<u64> {
        match self {
            Limit::Unlimited => None,
            Limit::Value(value) => Some(value),
        }
    }
}

// ANCHOR: resources
/// The limits for one cgroup. The fields follow the OCI runtime spec's `linux.resources`
/// (config-linux.md, "Control groups"), so the OCI runtime fills this from a `config.json`
/// and `cgroup-demo` fills it from its flags. `None` leaves the kernel's default untouched.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resources {
    /// `memory.limit`: bytes of RAM (including page cache) the group may use.
    pub memory: Option<Limit>,
    /// `memory.swap`: memory **plus** swap, the v1 meaning the OCI spec kept. On v2 the kernel
    /// wants swap alone, so the v2 writer subtracts `memory`.
    pub memory_swap: Option<Limit>,
    /// `cpu.quota`: microseconds of CPU time per period, summed over all CPUs.
    pub cpu_quota: Option<Limit>,
    /// `cpu.period`: the length of a period in microseconds (100000 by default).
    pub cpu_period: Option<u64>,
    /// `cpu.shares`: relative weight against sibling groups, 2..=262144, default 1024. On v2 it
    /// becomes `cpu.weight` (1..=10000, default 100) with the runc/crun conversion.
    pub cpu_shares: Option<u64>,
    /// `pids.limit`: how many tasks (processes and threads) the group may hold.
    pub pids: Option<Limit>,
    /// `memory.reservation`: the soft limit in bytes (v1 `memory.soft_limit_in_bytes`, v2
    /// `memory.low`).
    pub memory_reservation: Option<Limit>,
    /// `memory.swappiness`: 0..=100 (v1 only).
    pub memory_swappiness: Option<u64>,
    /// `memory.disableOOMKiller` (v1 `memory.oom_control`; v2 has none).
    pub oom_kill_disable: Option<bool>,
    /// `cpu.cpus` and `cpu.mems`: the cpuset lists, like `0-1,3`.
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// `devices`: the device rules in order, with the runtime's defaults appended
    /// ([`devices::DEFAULT_ALLOWED`]). `None` leaves the device access untouched.
    pub devices: Option<Vec<devices::DeviceRule>>,
    /// `blockIO`: weights and throttles.
    pub block_io: Option<BlockIo>,
    /// `hugepageLimits`: page size (`2MB`, `1GB`) and the limit in bytes.
    pub hugepage_limits: Vec<(String, u64)>,
    /// `network.classID` (v1 `net_cls.classid`).
    pub net_class_id: Option<u32>,
    /// `network.priorities`: interface name and priority (v1 `net_prio.ifpriomap`).
    pub net_priorities: Vec<(String, u32)>,
    /// `unified`: cgroup2 file name and the value written into it as is (v2 only).
    pub unified: BTreeMap<String, String>,
}
// ANCHOR_END: resources

/// The `blockIO` part of `linux.resources`: a device is its major and minor number.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BlockIo {
    /// 10..=1000 (v1 `blkio.weight` or `blkio.bfq.weight`, v2 `io.bfq.weight` or `io.weight`).
    pub weight: Option<u16>,
    /// 10..=1000, v1 CFQ only (`blkio.leaf_weight`).
    pub leaf_weight: Option<u16>,
    /// Per device: (major, minor, weight, leaf weight).
    pub weight_device: Vec<(i64, i64, Option<u16>, Option<u16>)>,
    /// Per device: (major, minor, bytes or operations per second).
    pub throttle_read_bps: Vec<(i64, i64, u64)>,
    pub throttle_write_bps: Vec<(i64, i64, u64)>,
    pub throttle_read_iops: Vec<(i64, i64, u64)>,
    pub throttle_write_iops: Vec<(i64, i64, u64)>,
}

impl Resources {
    /// Sets `cpu_quota` and `cpu_period` from a `--cpus` value.
    pub fn with_cpus(mut self, cpus: CpuQuota) -> Self {
        self.cpu_quota = Some(Limit::Value(cpus.quota_us));
        self.cpu_period = Some(cpus.period_us);
        self
    }

    /// Refuses values the kernel would refuse or that make no sense, with one line that says
    /// why; returns warnings for values that are legal but will not do what the user expects.
    pub fn validate(&self, online_cpus: usize) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        if let Some(Limit::Value(memory)) = self.memory
            && memory < MIN_MEMORY
        {
            bail!(
                "memory limit {} is below the minimum of {}: the command could not even start \
                 (docker refuses less too)",
                units::format_size(memory),
                units::format_size(MIN_MEMORY)
            );
        }
        match (self.memory, self.memory_swap) {
            (None | Some(Limit::Unlimited), Some(Limit::Value(_))) => {
                bail!("a memory+swap limit needs a memory limit too")
            }
            (Some(Limit::Value(memory)), Some(Limit::Value(swap))) if swap < memory => bail!(
                "the memory+swap limit ({}) must be at least the memory limit ({})",
                units::format_size(swap),
                units::format_size(memory)
            ),
            _ => {}
        }
        if let Some(shares) = self.cpu_shares
            && !(2..=262_144).contains(&shares)
        {
            bail!("cpu shares {shares} out of range: the kernel takes 2 to 262144 (default 1024)");
        }
        let period = self.cpu_period.unwrap_or(units::CPU_PERIOD_US);
        if !(1_000..=1_000_000).contains(&period) {
            bail!("cpu period {period} us out of range: the kernel takes 1000 to 1000000 us");
        }
        if let Some(Limit::Value(quota)) = self.cpu_quota {
            if quota < units::MIN_CPU_QUOTA_US {
                bail!(
                    "cpu quota {quota} us is below the kernel's minimum of {} us per period",
                    units::MIN_CPU_QUOTA_US
                );
            }
            let cpus = quota as f64 / period as f64;
            if cpus > online_cpus as f64 {
                warnings.push(format!(
                    "the cpu limit of {cpus} CPUs is more than the {online_cpus} CPUs of this \
                     machine: it can never be reached, so it limits nothing"
                ));
            }
        }
        if self.pids == Some(Limit::Value(0)) {
            bail!("a pids limit of 0 would not even let the command start (use 1 or more)");
        }
        Ok(warnings)
    }

    /// The controllers these limits need, in the order they are written (v1 names; `blkio`
    /// is `io` on v2, and `devices` there is an eBPF program, not a controller).
    pub fn controllers(&self) -> Vec<&'static str> {
        let mut needed = Vec::new();
        if self.memory.is_some()
            || self.memory_swap.is_some()
            || self.memory_reservation.is_some()
            || self.memory_swappiness.is_some()
            || self.oom_kill_disable.is_some()
        {
            needed.push("memory");
        }
        if self.cpuset_cpus.is_some() || self.cpuset_mems.is_some() {
            needed.push("cpuset");
        }
        if self.devices.is_some() {
            needed.push("devices");
        }
        if self.block_io.is_some() {
            needed.push("blkio");
        }
        if !self.hugepage_limits.is_empty() {
            needed.push("hugetlb");
        }
        if self.net_class_id.is_some() {
            needed.push("net_cls");
        }
        if !self.net_priorities.is_empty() {
            needed.push("net_prio");
        }
        if self.cpu_quota.is_some() || self.cpu_period.is_some() || self.cpu_shares.is_some() {
            needed.push("cpu");
        }
        if self.pids.is_some() {
            needed.push("pids");
        }
        needed
    }
}

/// The hugetlb file for page size `size` (`2MB`): `hugetlb.2MB.SUFFIX`. Errors on a size that
/// is not a plain name.
pub(crate) fn hugetlb_file(size: &str, suffix: &str) -> Result<String> {
    if size.is_empty() || !size.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!("hugepageLimits: page size \"{size}\" is not like 2MB or 1GB");
    }
    Ok(format!("hugetlb.{size}.{suffix}"))
}

/// What the kernel counted for a cgroup. `None` where this kernel or layout does not have the
/// file (e.g. `memory.peak` before Linux 5.19 on v2).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Bytes charged to the group now.
    pub memory_current: Option<u64>,
    /// The most bytes ever charged (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`).
    pub memory_peak: Option<u64>,
    /// The memory limit as the kernel stored it (rounded down to a page).
    pub memory_limit: Option<Limit>,
    /// How often usage hit the limit (v1 `memory.failcnt`, v2 `memory.events` "max"). Recent
    /// kernels may leave the v1 counter at 0: the OOM-kill count is the reliable evidence.
    pub memory_limit_hits: Option<u64>,
    /// Processes the OOM killer killed in this group (v1 `memory.oom_control` "oom_kill",
    /// v2 `memory.events` "oom_kill").
    pub oom_kills: Option<u64>,
    /// Page cache not recently used, which the kernel reclaims first (v1 `memory.stat`
    /// "total_inactive_file", v2 `memory.stat` "inactive_file"): `docker stats` leaves it out
    /// of MEM USAGE.
    pub memory_inactive_file: Option<u64>,
    /// CPU time used by the group (v1 `cpuacct.usage`, v2 `cpu.stat` "usage_usec").
    pub cpu_usage: Option<Duration>,
    /// The CPU limit as the kernel stored it: quota per period.
    pub cpu_quota: Option<Limit>,
    pub cpu_period_us: Option<u64>,
    /// Periods in which the group used up its quota and was stopped until the next one.
    pub cpu_throttled_periods: Option<u64>,
    pub pids_current: Option<u64>,
    /// The most tasks at once (`pids.peak`, Linux 6.x).
    pub pids_peak: Option<u64>,
    pub pids_limit: Option<Limit>,
    /// Forks refused because of `pids.max` (`pids.events` "max").
    pub pids_refused: Option<u64>,
    /// Bytes read from and written to block devices, summed over the devices (v1
    /// `blkio.throttle.io_service_bytes_recursive` "Read"/"Write", v2 `io.stat` "rbytes" and
    /// "wbytes"). `None` where the group has no such file (v2 without the io controller).
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
}

/// One controller of one cgroup version: which files it writes for which [`Resources`], and
/// which counters it reads. Each is a small unit type, as in youki's libcgroups, so the file
/// names of a controller are all in one place.
pub trait ControllerFiles {
    /// The controller's name, as in `cgroup.controllers` and the v1 mount options.
    const NAME: &'static str;
    /// Writes this controller's share of `resources` into the cgroup directory `dir`.
    fn apply(dir: &Path, resources: &Resources) -> Result<()>;
    /// Reads this controller's counters from `dir` into `stats`.
    fn read_stats(dir: &Path, stats: &mut Stats) -> Result<()>;
}

/// One cgroup, under [`PARENT`], in every hierarchy it needs. It is removed on drop: the
/// processes still in it are killed first, since the kernel refuses to rmdir a populated
/// cgroup (EBUSY).
#[derive(Debug)]
pub struct Cgroup {
    name: String,
    parent: String,
    backend: Backend,
    removed: bool,
}

#[derive(Debug)]
enum Backend {
    V1(v1::Cgroup),
    V2(v2::Cgroup),
}

/// The controllers minidock limits and counts with: memory, cpu, pids, and on v1 `cpuacct`,
/// which counts cpu time in its own hierarchy when it is not co-mounted with `cpu`. On v1 the
/// cgroup is made in every hierarchy, these and all others.
pub const MANAGED_CONTROLLERS: &[&str] = &["memory", "cpu", "cpuacct", "pids"];

/// The controllers enabled for a v2 cgroup, where the host has them: every one
/// `linux.resources` can set.
pub const V2_CONTROLLERS: &[&str] = &["cpuset", "cpu", "io", "memory", "hugetlb", "pids"];

// ANCHOR: cgroups_path
/// Where a cgroup goes: the runtime spec's `linux.cgroupsPath` (config-linux.md, "Cgroups
/// path"). `/a/b` is below each hierarchy's root; `a/b` is below the cgroup the runtime
/// itself is in, in each hierarchy (what runc does with a relative path). The last component
/// is the cgroup's name, the rest its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupsPath {
    pub relative: bool,
    /// `a` of `/a/b`: created when missing, and left in place.
    pub parent: String,
    pub name: String,
}

impl CgroupsPath {
    /// Parses a `cgroupsPath`, cleaned lexically as runc cleans it (Go's `filepath.Clean`,
    /// rooted at `/`): `//a//b` is `/a/b`, and `..` never climbs above the hierarchy's root
    /// (or, relative, above the runtime's cgroup): `/a/../../etc` is `/etc`. Errors: a path
    /// that cleans to nothing (`""`, `/`, `a/..`), and control characters, which would make
    /// `/proc/PID/cgroup` unreadable line by line.
    pub fn parse(text: &str) -> Result<CgroupsPath> {
        let relative = !text.starts_with('/');
        let mut components: Vec<&str> = Vec::new();
        for component in text.split('/') {
            match component {
                "" | "." => {}
                ".." => drop(components.pop()),
                name => components.push(name),
            }
        }
        if components.is_empty() || text.chars().any(char::is_control) {
            bail!(
                "linux.cgroupsPath {text:?}: expected a path like /a/b or a/b that names a \
                 cgroup below the root, without control characters"
            );
        }
        let (name, parent) = components.split_last().expect("not empty");
        Ok(CgroupsPath {
            relative,
            parent: parent.join("/"),
            name: (*name).to_owned(),
        })
    }
}
// ANCHOR_END: cgroups_path

impl Cgroup {
    /// A name that no other live process uses: `PREFIX-PID-N`.
    pub fn unique_name(prefix: &str) -> String {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}-{}-{n}", std::process::id())
    }

    /// Checks that `resources` can be enforced through `version` on this host, before anything
    /// is created, so a refusal leaves nothing behind.
    pub fn check(layout: &Layout, version: Version, resources: &Resources) -> Result<()> {
        for controller in resources.controllers() {
            match (controller, version) {
                ("devices", Version::V2) => {}
                ("blkio", Version::V2) => drop(layout.require("io", version)?),
                (controller, _) => drop(layout.require(controller, version)?),
            }
        }
        if version == Version::V1 && !resources.unified.is_empty() {
            bail!(
                "linux.resources.unified: cannot be used on cgroup v1 (the {} layout)",
                layout.kind.name()
            );
        }
        Ok(())
    }

    /// Creates `PARENT/name` in the hierarchies of `version`.
    pub fn create(layout: &Layout, version: Version, name: &str) -> Result<Cgroup> {
        Cgroup::create_in(layout, version, PARENT, name)
    }

    /// Creates `parent/name` in the hierarchies of `version`. `parent` is a path relative to
    /// each hierarchy's root, like Docker's `--cgroup-parent`: `minidock`, `a/b`, or empty for
    /// the root itself. Missing levels are created (and left in place: they may be shared).
    pub fn create_in(
        layout: &Layout,
        version: Version,
        parent: &str,
        name: &str,
    ) -> Result<Cgroup> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            bail!("invalid cgroup name \"{name}\": use letters, digits, '-' and '_'");
        }
        let parent = parent.trim_matches('/');
        if parent
            .split('/')
            .any(|c| c == "." || c == ".." || (c.is_empty() && !parent.is_empty()))
        {
            bail!("invalid cgroup parent \"{parent}\": use a relative path like minidock or a/b");
        }
        let path = CgroupsPath {
            relative: false,
            parent: parent.to_owned(),
            name: name.to_owned(),
        };
        Cgroup::create_at(layout, version, &path, false)
    }

    // ANCHOR: create_at
    /// Creates the cgroup at `path` in the hierarchies of `version`: on v1 in every hierarchy
    /// the host mounts (and the cgroup2 one of a hybrid host), on v2 in the one tree. An
    /// existing directory is joined when `may_exist` (as runc joins an existing `cgroupsPath`),
    /// refused otherwise.
    pub fn create_at(
        layout: &Layout,
        version: Version,
        path: &CgroupsPath,
        may_exist: bool,
    ) -> Result<Cgroup> {
        let own = if path.relative {
            layout::own_cgroups()?
        } else {
            Vec::new()
        };
        let parent_of = |hierarchy: &layout::Hierarchy| -> Result<String> {
            if !path.relative {
                return Ok(path.parent.clone());
            }
            let mine = own.iter().find(|m| hierarchy.matches(m)).with_context(|| {
                format!(
                    "this process has no cgroup in the hierarchy at {}",
                    hierarchy.mount.display()
                )
            })?;
            Ok(format!("{}/{}", mine.path.trim_matches('/'), path.parent)
                .trim_matches('/')
                .to_owned())
        };
        let backend = match version {
            Version::V1 => {
                let hierarchies = layout::detect_hierarchies()?;
                Backend::V1(v1::Cgroup::create(
                    &hierarchies,
                    &parent_of,
                    &path.name,
                    may_exist,
                )?)
            }
            Version::V2 => {
                let Some(mount) = &layout.unified else {
                    bail!(
                        "the {} layout has no cgroup2 mount to create a cgroup in",
                        layout.kind.name()
                    );
                };
                let unified = layout::Hierarchy {
                    controllers: String::new(),
                    mount: mount.clone(),
                };
                let parent = parent_of(&unified)?;
                Backend::V2(v2::Cgroup::create_at(
                    mount,
                    &parent,
                    &path.name,
                    V2_CONTROLLERS,
                    may_exist,
                )?)
            }
        };
        Ok(Cgroup {
            name: path.name.clone(),
            parent: path.parent.clone(),
            backend,
            removed: false,
        })
    }
    // ANCHOR_END: create_at

    /// The cgroup whose directories `dirs` already are (what [`Cgroup::paths`] returned when
    /// it was created), to read or change its limits from another process, as `runc update`
    /// does. It is not ours: dropping it, or [`Cgroup::remove`], leaves the directories.
    /// Errors: no directory given, or one outside every hierarchy of `layout`.
    pub fn open_existing(layout: &Layout, dirs: &[PathBuf]) -> Result<Cgroup> {
        let Some(first) = dirs.first() else {
            bail!("no cgroup directory recorded");
        };
        let backend = if layout.kind == Kind::V2 {
            Backend::V2(v2::Cgroup::open(first.clone()))
        } else {
            // Each directory belongs to the hierarchy mounted above it (`cpu,cpuacct`,
            // `name=systemd`, or the cgroup2 mount of a hybrid host).
            let hierarchies = layout::detect_hierarchies()?;
            let mut found = Vec::new();
            for dir in dirs {
                let Some(h) = hierarchies.iter().find(|h| dir.starts_with(&h.mount)) else {
                    bail!("{} is in no cgroup hierarchy of this host", dir.display());
                };
                found.push((h.controllers.clone(), dir.clone()));
            }
            Backend::V1(v1::Cgroup::from_dirs(found))
        };
        let name = first.file_name().unwrap_or_default().to_string_lossy();
        Ok(Cgroup {
            name: name.into_owned(),
            parent: String::new(),
            backend,
            removed: true,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The parent path it was created in, relative to each hierarchy's root.
    pub fn parent(&self) -> &str {
        &self.parent
    }

    /// Creates `base/minidock/name` in a cgroup2 subtree delegated to the caller (`base`, a
    /// directory it owns, as systemd's `Delegate=yes` gives): controllers are enabled from
    /// `base` down, never above it, where the caller may not write. Errors: a controller
    /// `resources` needs that `base` was not given (its `cgroup.controllers`).
    pub fn create_delegated(base: &Path, name: &str, resources: &Resources) -> Result<Cgroup> {
        let available = std::fs::read_to_string(base.join("cgroup.controllers"))
            .with_context(|| format!("reading {}/cgroup.controllers", base.display()))?;
        for needed in resources.controllers() {
            if needed != "devices" && !available.split_whitespace().any(|c| c == needed) {
                bail!(
                    "the delegated cgroup {} has no {needed} controller (enable it in its \
                     parent's cgroup.subtree_control)",
                    base.display()
                );
            }
        }
        let cgroup = v2::Cgroup::create_at(base, PARENT, name, V2_CONTROLLERS, false)?;
        Ok(Cgroup {
            name: name.to_owned(),
            parent: PARENT.to_owned(),
            backend: Backend::V2(cgroup),
            removed: false,
        })
    }

    /// No cgroup at all: no directory, no limits, nothing to remove. A rootless container
    /// without a delegated subtree and without limits runs so, in the cgroup of its caller.
    pub fn none() -> Cgroup {
        Cgroup {
            name: String::new(),
            parent: String::new(),
            backend: Backend::V1(v1::Cgroup::from_dirs(Vec::new())),
            removed: true,
        }
    }

    pub fn version(&self) -> Version {
        match self.backend {
            Backend::V1(_) => Version::V1,
            Backend::V2(_) => Version::V2,
        }
    }

    /// The directories of [`Cgroup::paths`] that existed before [`Cgroup::create_at`] joined
    /// them: not ours, so teardown neither kills what is in them nor removes them.
    pub fn joined(&self) -> Vec<PathBuf> {
        match &self.backend {
            Backend::V1(cgroup) => cgroup.joined().to_vec(),
            Backend::V2(cgroup) => cgroup
                .joined()
                .then(|| cgroup.path().to_owned())
                .into_iter()
                .collect(),
        }
    }

    /// The directories this cgroup made: [`Cgroup::paths`] without the [`Cgroup::joined`] ones.
    pub fn owned_paths(&self) -> Vec<PathBuf> {
        let joined = self.joined();
        self.paths()
            .into_iter()
            .filter(|d| !joined.contains(d))
            .collect()
    }

    /// Every directory this cgroup consists of (one per v1 hierarchy, or the one v2 directory).
    pub fn paths(&self) -> Vec<PathBuf> {
        match &self.backend {
            Backend::V1(cgroup) => cgroup.paths(),
            Backend::V2(cgroup) => vec![cgroup.path().to_owned()],
        }
    }

    /// The directory of one controller: where to look for `memory.*` files, for example.
    pub fn path_of(&self, controller: &str) -> Option<PathBuf> {
        match &self.backend {
            Backend::V1(cgroup) => cgroup.path_of(controller).map(Path::to_owned),
            Backend::V2(cgroup) => Some(cgroup.path().to_owned()),
        }
    }

    /// The v2 directory, for clone3(CLONE_INTO_CGROUP).
    pub fn v2_path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::V1(_) => None,
            Backend::V2(cgroup) => Some(cgroup.path()),
        }
    }

    /// Writes the limits.
    pub fn apply(&self, resources: &Resources) -> Result<()> {
        self.apply_cached(resources, None)
    }

    /// Writes the limits; on v2 the device program is cached in `cache_dir`
    /// ([`devices::compile_cached`]).
    pub fn apply_cached(&self, resources: &Resources, cache_dir: Option<&Path>) -> Result<()> {
        match &self.backend {
            Backend::V1(cgroup) => cgroup.apply(resources),
            Backend::V2(cgroup) => cgroup.apply_cached(resources, cache_dir),
        }
    }

    /// Moves a process (all its threads) into this cgroup.
    pub fn add_pid(&self, pid: Pid) -> Result<()> {
        match &self.backend {
            Backend::V1(cgroup) => cgroup.add_pid(pid),
            Backend::V2(cgroup) => cgroup.add_pid(pid),
        }
    }

    /// The cgroup2 directory of the group, into which a process can be born
    /// (clone3(CLONE_INTO_CGROUP)): the v2 directory, or the one in a hybrid host's cgroup2
    /// mount. `None` on pure v1.
    pub fn cgroup2_dir(&self) -> Option<&Path> {
        match &self.backend {
            Backend::V1(cgroup) => cgroup.cgroup2_dir(),
            Backend::V2(cgroup) => Some(cgroup.path()),
        }
    }

    /// The `tasks` file of the group's directory in every v1 hierarchy (none on v2): a
    /// single-threaded process joins the v1 hierarchies through them, by writing `0` itself
    /// ([`join_self`]), with no RCU grace period, or written there by its tid
    /// ([`Cgroup::add_tid_to_tasks`]).
    pub fn task_files(&self) -> Vec<PathBuf> {
        match &self.backend {
            Backend::V1(cgroup) => cgroup.task_files(),
            Backend::V2(_) => Vec::new(),
        }
    }

    /// Moves the thread `tid` into every v1 hierarchy through `tasks`: for a process that
    /// may not write them itself (one in a new user namespace) and is single-threaded, so
    /// that its one thread is the whole process.
    pub fn add_tid_to_tasks(&self, tid: Pid) -> Result<()> {
        for file in self.task_files() {
            let dir = file.parent().unwrap_or(Path::new("/"));
            write_file(
                dir,
                "tasks",
                &tid.to_string(),
                "move the process into the cgroup",
            )?;
        }
        Ok(())
    }

    /// Moves `pid` into the group's cgroup2 directory ([`Cgroup::cgroup2_dir`]) through
    /// `cgroup.procs`, if there is one: where it could not be born there.
    pub fn add_pid_to_cgroup2(&self, pid: Pid) -> Result<()> {
        match &self.backend {
            Backend::V1(cgroup) => cgroup.add_pid_to_cgroup2(pid),
            Backend::V2(cgroup) => cgroup.add_pid(pid),
        }
    }

    /// The processes in this cgroup now.
    pub fn procs(&self) -> Result<Vec<Pid>> {
        match &self.backend {
            Backend::V1(cgroup) => cgroup.procs(),
            Backend::V2(cgroup) => read_procs(cgroup.path()),
        }
    }

    pub fn stats(&self) -> Result<Stats> {
        match &self.backend {
            Backend::V1(cgroup) => cgroup.stats(),
            Backend::V2(cgroup) => cgroup.stats(),
        }
    }

    /// Kills every process in the directories it made and waits until they are empty.
    pub fn kill_all(&self) -> Result<()> {
        teardown::kill_all(&self.owned_paths())
    }

    // ANCHOR: remove
    /// Kills what is left inside, child cgroups included, and removes the directories, children
    /// first ([`teardown`]). Directories it joined are left as they are. Safe to call twice;
    /// drop calls it too, so a cgroup is removed on every path, errors included.
    pub fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        teardown::remove_all(&self.owned_paths())?;
        self.removed = true;
        Ok(())
    }
    // ANCHOR_END: remove
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if let Err(err) = self.remove() {
            eprintln!("warning: removing cgroup {}: {err:#}", self.name);
        }
    }
}

/// The `minidock` parent in the hierarchy of `controller`, created if needed, with the
/// controller enabled for its children on cgroup2. The workshop checks make the learner's
/// cgroup inside it.
pub fn prepare_parent(layout: &Layout, controller: &str) -> Result<PathBuf> {
    let Some(found) = layout.controller(controller) else {
        bail!(
            "the {} layout has no {controller} controller",
            layout.kind.name()
        );
    };
    match found.version {
        Version::V1 => make_parents(&found.mount, PARENT),
        Version::V2 => v2::prepare_parent(&found.mount, PARENT, &[controller]),
    }
}

/// Kills what is in an existing cgroup directory and its child cgroups, and removes them all,
/// children first; a missing one is fine. In a v1 hierarchy, the directory at the same path in
/// the freezer hierarchy (if any) is frozen meanwhile; it is not removed.
pub fn remove_existing(dir: &Path) -> Result<()> {
    // Gone already (a second teardown): no need to look for its freezer in the mount table.
    if !dir.exists() {
        return Ok(());
    }
    let dirs = [dir.to_path_buf()];
    if let Some(twin) = teardown::freezer_twin(dir) {
        teardown::kill_all(&[dir.to_path_buf(), twin])?;
    }
    teardown::remove_all(&dirs)
}

/// Kills what is in the directories of one group (one per v1 hierarchy, or the v2 one) and
/// their child cgroups, and removes them all, children first ([`teardown::remove_all`]).
pub fn remove_paths(dirs: &[PathBuf]) -> Result<()> {
    teardown::remove_all(dirs)
}

/// The directory of the cgroup `pid` is in, in the hierarchy of `controller`: for the tests and the
/// workshop checks, which look at the kernel's view rather than at what a binary says.
pub fn cgroup_dir_of(layout: &Layout, controller: &str, pid: Pid) -> Result<Option<PathBuf>> {
    let Some(found) = layout.controller(controller) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .with_context(|| format!("reading /proc/{pid}/cgroup"))?;
    let membership = layout::parse_proc_cgroup(&text)
        .into_iter()
        .find(|m| match found.version {
            Version::V2 => m.hierarchy_id == 0,
            Version::V1 => m.controllers.split(',').any(|c| c == controller),
        });
    Ok(membership.map(|m| found.mount.join(m.path.trim_start_matches('/'))))
}

// ANCHOR: join_self
/// Moves the calling thread into the v1 cgroups whose `tasks` files are given
/// ([`Cgroup::task_files`]) by writing `0` (the caller itself) into each; for a
/// single-threaded process that is the whole process. Writing a pid into `cgroup.procs`, or
/// any other thread's tid into `tasks`, makes the kernel take `cgroup_threadgroup_rwsem` for
/// writing, and the first writer after a quiet moment waits for an RCU grace period
/// (milliseconds); a thread moving itself needs no such lock (kernel/cgroup/cgroup.c,
/// `cgroup_procs_write_start`). Errors name the file.
pub fn join_self(task_files: &[PathBuf]) -> Result<()> {
    for file in task_files {
        explain::trace!(Cgroups: "move the process into the cgroup"
            => "write({}, \"0\")", file.display());
        std::fs::OpenOptions::new()
            .write(true)
            .open(file)
            .and_then(|mut handle| handle.write_all(b"0"))
            .with_context(|| format!("writing \"0\" to {}", file.display()))?;
    }
    Ok(())
}
// ANCHOR_END: join_self

// ---------------------------------------------------------------------------------------------
// File helpers shared by v1 and v2. Interface files hold one value, or "key value" lines (the
// "flat keyed" format of Documentation/admin-guide/cgroup-v2.rst, "Conventions").

/// Writes one value into an interface file, tracing it. The file must exist: the kernel made
/// it when the directory was created, and a missing one means the controller is not there (no
/// O_CREAT, so a typo never creates a stray file in a fake tree either).
pub(crate) fn write_file(dir: &Path, file: &str, value: &str, what: &str) -> Result<()> {
    let path = dir.join(file);
    explain::step(
        what,
        || format!("write({}, \"{value}\")", path.display()),
        Chapter::Cgroups,
    );
    let mut handle = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // One write(2) per value: the kernel parses each write on its own.
    handle
        .write_all(value.as_bytes())
        .with_context(|| format!("writing \"{value}\" to {}", path.display()))
}

/// The content of an interface file, or `None` if this kernel or layout does not have it.
pub(crate) fn read_optional(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// A file holding one number.
pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<Option<u64>> {
    let Some(text) = read_optional(dir, file)? else {
        return Ok(None);
    };
    let value = text.trim();
    value
        .parse()
        .map(Some)
        .with_context(|| format!("parsing \"{value}\" in {}", dir.join(file).display()))
}

/// Parses the flat keyed format: `key value` per line. Lines that do not fit are skipped, so a
/// kernel that adds a key never breaks us.
pub fn parse_flat_keyed(text: &str) -> BTreeMap<&str, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key, value.trim().parse().ok()?))
        })
        .collect()
}

/// One key of a flat keyed file.
pub(crate) fn read_keyed(dir: &Path, file: &str, key: &str) -> Result<Option<u64>> {
    Ok(read_optional(dir, file)?.and_then(|text| parse_flat_keyed(&text).get(key).copied()))
}

/// The pids in a `cgroup.procs` file.
pub(crate) fn read_procs(dir: &Path) -> Result<Vec<Pid>> {
    let text = read_optional(dir, "cgroup.procs")?.unwrap_or_default();
    Ok(text
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .map(Pid::from_raw)
        .collect())
}

/// Removes a cgroup directory. rmdir(2) fails with EBUSY for a moment after the last process
/// was killed, until the kernel has finished tearing it down, so retry for up to a second.
pub(crate) fn remove_dir(dir: &Path) -> Result<()> {
    explain::step(
        "remove the cgroup",
        || format!("rmdir({})", dir.display()),
        Chapter::Cgroups,
    );
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(err) => return Err(err).with_context(|| format!("rmdir {}", dir.display())),
        }
    }
}

/// Sends SIGKILL to every process listed in `dir/cgroup.procs` until the list stays empty.
/// Killed processes cannot fork, so each round shrinks what a fork bomb can still make.
pub(crate) fn kill_listed(dir: &Path) -> Result<()> {
    for _ in 0..200 {
        let pids = read_procs(dir)?;
        if pids.is_empty() {
            return Ok(());
        }
        for pid in pids {
            // ESRCH: it died on its own in between.
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!(
        "processes in {} survived 200 rounds of SIGKILL",
        dir.display()
    )
}

/// Creates each level of `parent` (like `a/b`) under `mount` that does not exist yet, and
/// returns the last one.
pub(crate) fn make_parents(mount: &Path, parent: &str) -> Result<PathBuf> {
    let mut dir = mount.to_path_buf();
    for component in parent.split('/').filter(|c| !c.is_empty()) {
        dir.push(component);
        make_dir(&dir, true, "create the parent cgroup")?;
    }
    Ok(dir)
}

/// Creates a directory, tracing it; an existing one is fine when `may_exist` (the shared
/// parent), an error otherwise (a name clash would mix two runs' processes). Returns whether
/// it made the directory (false: it existed).
pub(crate) fn make_dir(dir: &Path, may_exist: bool, what: &str) -> Result<bool> {
    explain::step(
        what,
        || format!("mkdir({})", dir.display()),
        Chapter::Cgroups,
    );
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(err) if may_exist && err.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {
            bail!(
                "cgroup {} already exists (another run with the same name?)",
                dir.display()
            )
        }
        Err(err) => Err(err).with_context(|| format!("mkdir {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_files_parse_and_skip_junk() {
        let keys = parse_flat_keyed("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\nweird\n");
        assert_eq!(keys["max"], 12);
        assert_eq!(keys["oom_kill"], 1);
        assert_eq!(keys.len(), 5);
    }

    #[test]
    fn resources_validate_like_docker() {
        let small = Resources {
            memory: Some(Limit::Value(1 << 20)),
            ..Default::default()
        };
        let err = small.validate(2).unwrap_err().to_string();
        assert_eq!(
            err,
            "memory limit 1 MiB is below the minimum of 6 MiB: the command could not even start \
             (docker refuses less too)"
        );
        let many = Resources::default().with_cpus(units::parse_cpus("4").unwrap());
        let warnings = many.validate(2).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("more than the 2 CPUs"), "{warnings:?}");
        let zero_pids = Resources {
            pids: Some(Limit::Value(0)),
            ..Default::default()
        };
        assert!(zero_pids.validate(2).is_err());
        let swap_only = Resources {
            memory_swap: Some(Limit::Value(64 << 20)),
            ..Default::default()
        };
        assert!(swap_only.validate(2).is_err());
        assert_eq!(
            Resources {
                cpu_shares: Some(512),
                pids: Some(Limit::Value(3)),
                ..Default::default()
            }
            .controllers(),
            ["cpu", "pids"]
        );
    }

    #[test]
    fn names_and_parents_cannot_leave_the_hierarchy() {
        let layout = Layout {
            kind: Kind::V2,
            unified: Some(PathBuf::from("/nonexistent/cgroup2")),
            controllers: vec![],
        };
        let err = |parent: &str, name: &str| {
            Cgroup::create_in(&layout, Version::V2, parent, name)
                .unwrap_err()
                .to_string()
        };
        assert!(err("minidock", "../x").starts_with("invalid cgroup name"));
        assert!(err("minidock", "a/b").starts_with("invalid cgroup name"));
        assert!(err("../etc", "x").starts_with("invalid cgroup parent"));
        assert!(err("a//b", "x").starts_with("invalid cgroup parent"));
        assert!(err("a/./b", "x").starts_with("invalid cgroup parent"));
    }

    #[test]
    fn cgroups_paths_are_absolute_or_relative_and_never_escape() {
        let parts = |text: &str| {
            let p = CgroupsPath::parse(text).unwrap();
            (p.relative, p.parent, p.name)
        };
        let owned = |relative: bool, parent: &str, name: &str| {
            (relative, parent.to_owned(), name.to_owned())
        };
        assert_eq!(parts("/a/b/c"), owned(false, "a/b", "c"));
        assert_eq!(parts("x"), owned(true, "", "x"));
        // Cleaned as runc cleans it: `..` stops at the root.
        assert_eq!(parts("//a//b"), owned(false, "a", "b"));
        assert_eq!(parts("/a/./b/"), owned(false, "a", "b"));
        assert_eq!(parts("/a/../../etc"), owned(false, "", "etc"));
        assert_eq!(parts("a/../../b"), owned(true, "", "b"));
        for bad in ["", "/", "..", "a/..", "/a/\n/b", "a\tb"] {
            let err = CgroupsPath::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("linux.cgroupsPath"), "{bad}: {err}");
            // One line, in single spaces, the path quoted.
            assert!(!err.contains('\n') && !err.contains("  "), "{bad}: {err}");
        }
    }

    #[test]
    fn unified_is_refused_on_v1_and_devices_need_no_v2_controller() {
        let layout = Layout {
            kind: Kind::V2,
            unified: Some(PathBuf::from("/sys/fs/cgroup")),
            controllers: vec![],
        };
        let devices = Resources {
            devices: Some(devices::DEFAULT_ALLOWED.to_vec()),
            ..Default::default()
        };
        Cgroup::check(&layout, Version::V2, &devices).unwrap();
        let unified = Resources {
            unified: [("pids.max".to_owned(), "7".to_owned())].into(),
            ..Default::default()
        };
        let err = Cgroup::check(&layout, Version::V1, &unified).unwrap_err();
        assert!(err.to_string().contains("unified"), "{err}");
        assert!(hugetlb_file("../x", "max").is_err());
        assert_eq!(hugetlb_file("2MB", "max").unwrap(), "hugetlb.2MB.max");
    }

    #[test]
    fn oci_negative_means_unlimited() {
        assert_eq!(Limit::from_oci(-1), Limit::Unlimited);
        assert_eq!(Limit::from_oci(20), Limit::Value(20));
    }
}
