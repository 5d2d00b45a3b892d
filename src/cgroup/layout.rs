//! Which cgroup layout this host has, and where each controller lives.
//!
//! A controller (memory, cpu, pids, ...) can be attached to exactly one hierarchy at a time
//! (cgroups(7), "Cgroups version 1 and version 2"). Hosts come in three shapes:
//!
//! - **v2** (unified): one `cgroup2` mount, usually `/sys/fs/cgroup`, holding every controller.
//! - **v1** (legacy): one `cgroup` mount per controller, or per group of co-mounted controllers
//!   such as `cpu,cpuacct`, under `/sys/fs/cgroup/<name>`.
//! - **hybrid**: the v1 mounts, plus a `cgroup2` mount (systemd puts it at
//!   `/sys/fs/cgroup/unified`) that holds the controllers v1 did not take, often none.
//!
//! The layout is read from `/proc/self/mountinfo` (proc(5)), not guessed from paths, so a
//! fixture of that file is all the tests need.

use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// The controllers the kernel knows (include/linux/cgroup_subsys.h). On a v1 mount they appear
/// among the mount options; every other option (`rw`, `nosuid`, `name=systemd`, ...) is not a
/// controller.
const KNOWN_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "io",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// The three shapes of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    V1,
    V2,
    Hybrid,
}

impl Kind {
    /// The short name used in test names and messages: "v1", "v2", "v1-hybrid".
    pub fn name(self) -> &'static str {
        match self {
            Kind::V1 => "v1",
            Kind::V2 => "v2",
            Kind::Hybrid => "v1-hybrid",
        }
    }
}

/// A cgroup API version: which files a cgroup directory has and how to write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Version {
    V1,
    V2,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1 => "cgroup v1",
            Version::V2 => "cgroup2",
        })
    }
}

/// One controller and the mount of the hierarchy it is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Controller {
    pub name: String,
    pub version: Version,
    /// Where its hierarchy is mounted: `/sys/fs/cgroup/memory` (v1) or the cgroup2 mount.
    pub mount: PathBuf,
}

/// The host's cgroup layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    pub kind: Kind,
    /// The cgroup2 mount, if there is one (on a hybrid host it may hold no controller at all).
    pub unified: Option<PathBuf>,
    /// Every controller available, sorted by name.
    pub controllers: Vec<Controller>,
}

impl Layout {
    pub fn controller(&self, name: &str) -> Option<&Controller> {
        self.controllers.iter().find(|c| c.name == name)
    }

    /// The version minidock uses by default: cgroup2 when the host is pure v2; on v1 and
    /// hybrid hosts the controllers live in v1, so v1.
    pub fn default_version(&self) -> Version {
        match self.kind {
            Kind::V2 => Version::V2,
            Kind::V1 | Kind::Hybrid => Version::V1,
        }
    }

    /// Is `controller` usable through `version` on this host? If not, the error says where it
    /// is instead, e.g. "the v1-hybrid layout has no cpu controller on cgroup2 (...)".
    pub fn require(&self, controller: &str, version: Version) -> Result<&Controller> {
        match self.controller(controller) {
            Some(found) if found.version == version => Ok(found),
            Some(found) => bail!(
                "the {} layout has no {controller} controller on {version}: it is attached to the \
                 {} hierarchy at {}, and a controller lives in one hierarchy at a time",
                self.kind.name(),
                match found.version {
                    Version::V1 => "v1",
                    Version::V2 => "cgroup2",
                },
                found.mount.display()
            ),
            None => bail!(
                "the {} layout has no {controller} controller at all (is it disabled on the \
                 kernel command line, e.g. cgroup_disable={controller}?)",
                self.kind.name()
            ),
        }
    }

    /// A few lines for `cgroup-demo info` and `minidock doctor`.
    pub fn describe(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unified = self
            .unified
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        match self.kind {
            Kind::V2 => writeln!(f, "cgroup layout: v2 (unified hierarchy at {unified})")?,
            Kind::V1 => writeln!(f, "cgroup layout: v1 (one hierarchy per controller)")?,
            Kind::Hybrid => writeln!(
                f,
                "cgroup layout: v1-hybrid (v1 controllers, plus a cgroup2 mount at {unified})"
            )?,
        }
        for c in &self.controllers {
            let version = match c.version {
                Version::V1 => "v1",
                Version::V2 => "cgroup2",
            };
            writeln!(f, "  {:<11}{version:<9}{}", c.name, c.mount.display())?;
        }
        Ok(())
    }
}

/// Reads this host's layout from `/proc/self/mountinfo` and the cgroup2 mount's
/// `cgroup.controllers`.
pub fn detect() -> Result<Layout> {
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    parse(&mountinfo, |mount| {
        let path = mount.join("cgroup.controllers");
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    })
}

// ANCHOR: parse
/// Works out the layout from the text of a mountinfo file. `v2_controllers` returns the content
/// of `cgroup.controllers` at a cgroup2 mount point: which controllers that hierarchy has is not
/// in the mount table.
pub fn parse(mountinfo: &str, v2_controllers: impl Fn(&Path) -> Result<String>) -> Result<Layout> {
    let mut controllers: Vec<Controller> = Vec::new();
    let mut unified: Option<PathBuf> = None;
    for line in mountinfo.lines() {
        let Some(mount) = MountLine::parse(line) else {
            continue;
        };
        match mount.fstype {
            "cgroup" => add_v1_controllers(&mut controllers, &mount),
            // The same hierarchy may be mounted twice (bind mounts in containers): the first
            // mount wins, as for v1.
            "cgroup2" if unified.is_none() => unified = Some(mount.mount_point),
            _ => {}
        }
    }
    // Only v1 hierarchies have added controllers so far.
    let any_v1 = !controllers.is_empty();
    if let Some(mount) = &unified {
        add_v2_controllers(&mut controllers, mount, &v2_controllers(mount)?);
    }
    let kind = match (any_v1, unified.is_some()) {
        (true, true) => Kind::Hybrid,
        (true, false) => Kind::V1,
        (false, true) => Kind::V2,
        (false, false) => bail!(
            "no cgroup filesystem is mounted (nothing of type cgroup or cgroup2 in /proc/self/mountinfo)"
        ),
    };
    controllers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Layout {
        kind,
        unified,
        controllers,
    })
}
// ANCHOR_END: parse

// ANCHOR: parse_controllers
/// The controllers of one v1 mount, read from its super options (`rw,memory`): a v1
/// hierarchy names its controllers there. When the same controller is mounted twice, the
/// first mount wins.
fn add_v1_controllers(controllers: &mut Vec<Controller>, mount: &MountLine) {
    for option in mount.super_options.split(',') {
        if KNOWN_CONTROLLERS.contains(&option) && !controllers.iter().any(|c| c.name == option) {
            controllers.push(Controller {
                name: option.to_owned(),
                version: Version::V1,
                mount: mount.mount_point.clone(),
            });
        }
    }
}

/// The controllers of the cgroup2 mount, from its `cgroup.controllers` (`text`), except those
/// a v1 hierarchy already holds.
fn add_v2_controllers(controllers: &mut Vec<Controller>, mount: &Path, text: &str) {
    for name in text.split_whitespace() {
        // A controller bound to a v1 hierarchy is never listed by cgroup2 too, but be safe.
        if !controllers.iter().any(|c| c.name == name) {
            controllers.push(Controller {
                name: name.to_owned(),
                version: Version::V2,
                mount: mount.to_path_buf(),
            });
        }
    }
}
// ANCHOR_END: parse_controllers

/// One hierarchy a process belongs to: a v1 mount (its controllers, or `name=systemd` for a
/// named one) or the cgroup2 mount (empty `controllers`). A process has one cgroup in each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hierarchy {
    /// As the second field of `/proc/self/cgroup` says it: `cpu,cpuacct`, `name=systemd`, or
    /// empty for cgroup2.
    pub controllers: String,
    pub mount: PathBuf,
}

impl Hierarchy {
    /// Does this hierarchy hold `controller` (or is it the named one, `name=systemd`)?
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.split(',').any(|c| c == controller)
    }

    /// Is `membership` (a line of `/proc/self/cgroup`) this hierarchy's?
    pub fn matches(&self, membership: &Membership) -> bool {
        let mut ours: Vec<&str> = self.controllers.split(',').collect();
        let mut theirs: Vec<&str> = membership.controllers.split(',').collect();
        ours.sort_unstable();
        theirs.sort_unstable();
        ours == theirs && (membership.hierarchy_id == 0) == self.controllers.is_empty()
    }
}

// ANCHOR: hierarchies
/// Every hierarchy mounted in `mountinfo`, each once (the first mount of a hierarchy wins):
/// the v1 ones, named ones included, then the cgroup2 mount. runc makes a container's cgroup
/// in each of them, so that nothing of the container stays in the host's root cgroup.
pub fn hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    let mut unified = None;
    for mount in mountinfo.lines().filter_map(MountLine::parse) {
        match mount.fstype {
            "cgroup" => {
                let controllers: Vec<&str> = mount
                    .super_options
                    .split(',')
                    .filter(|o| KNOWN_CONTROLLERS.contains(o) || o.starts_with("name="))
                    .collect();
                let controllers = controllers.join(",");
                if !controllers.is_empty() && !out.iter().any(|h| h.controllers == controllers) {
                    out.push(Hierarchy {
                        controllers,
                        mount: mount.mount_point,
                    });
                }
            }
            "cgroup2" if unified.is_none() => unified = Some(mount.mount_point),
            _ => {}
        }
    }
    out.extend(unified.map(|mount| Hierarchy {
        controllers: String::new(),
        mount,
    }));
    out
}
// ANCHOR_END: hierarchies

/// [`hierarchies`] of this host.
pub fn detect_hierarchies() -> Result<Vec<Hierarchy>> {
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    Ok(hierarchies(&mountinfo))
}

/// The fields of one mountinfo line that matter here (proc(5), "/proc/pid/mountinfo"):
/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`.
struct MountLine<'a> {
    mount_point: PathBuf,
    fstype: &'a str,
    super_options: &'a str,
}

impl<'a> MountLine<'a> {
    fn parse(line: &'a str) -> Option<MountLine<'a>> {
        let (before, after) = line.split_once(" - ")?;
        let mount_point = before.split(' ').nth(4)?;
        let mut after = after.split(' ');
        let fstype = after.next()?;
        let _source = after.next()?;
        let super_options = after.next().unwrap_or("");
        Some(MountLine {
            mount_point: PathBuf::from(unescape_octal(mount_point)),
            fstype,
            super_options,
        })
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\040`, `\011`, `\012`, `\134`.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of `/proc/<pid>/cgroup` (cgroups(7)): `hierarchy-id:controllers:path`. On v2 the
/// line is `0::/path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub hierarchy_id: u32,
    /// Comma-separated controllers of a v1 hierarchy (`memory`, `cpu,cpuacct`,
    /// `name=systemd`); empty for cgroup2.
    pub controllers: String,
    pub path: String,
}

/// Parses `/proc/<pid>/cgroup`.
pub fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            Some(Membership {
                hierarchy_id: parts.next()?.parse().ok()?,
                controllers: parts.next()?.to_owned(),
                path: parts.next()?.to_owned(),
            })
        })
        .collect()
}

/// The cgroups of this process, one per hierarchy.
pub fn own_cgroups() -> Result<Vec<Membership>> {
    let text = std::fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
    Ok(parse_proc_cgroup(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mount table of the CI host (Debian 12, booted with the legacy layout).
    pub const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// A systemd v1 host with cpu and cpuacct co-mounted.
    const V1: &str = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,pids
";

    /// A current distribution: one cgroup2 mount.
    const V2: &str = "\
22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    fn controllers_file(text: &'static str) -> impl Fn(&Path) -> Result<String> {
        move |_| Ok(text.to_owned())
    }

    fn summary(layout: &Layout) -> Vec<String> {
        layout
            .controllers
            .iter()
            .map(|c| format!("{} {:?} {}", c.name, c.version, c.mount.display()))
            .collect()
    }

    #[test]
    fn the_hybrid_layout_has_v1_controllers_and_an_empty_cgroup2() {
        let layout = parse(HYBRID, controllers_file("hugetlb\n")).unwrap();
        assert_eq!(layout.kind, Kind::Hybrid);
        assert_eq!(
            layout.unified,
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            summary(&layout),
            [
                "cpu V1 /sys/fs/cgroup/cpu",
                "cpuacct V1 /sys/fs/cgroup/cpuacct",
                "cpuset V1 /sys/fs/cgroup/cpuset",
                "hugetlb V2 /sys/fs/cgroup/unified",
                "memory V1 /sys/fs/cgroup/memory",
                "pids V1 /sys/fs/cgroup/pids",
            ]
        );
        assert_eq!(layout.default_version(), Version::V1);
        let err = layout.require("cpu", Version::V2).unwrap_err().to_string();
        assert!(
            err.starts_with("the v1-hybrid layout has no cpu controller on cgroup2"),
            "{err}"
        );
        assert!(err.contains("/sys/fs/cgroup/cpu"), "{err}");
        assert!(layout.require("memory", Version::V1).is_ok());
    }

    #[test]
    fn co_mounted_v1_controllers_share_one_mount_and_named_hierarchies_are_not_controllers() {
        let layout = parse(V1, |_| panic!("no cgroup2 mount to read")).unwrap();
        assert_eq!(layout.kind, Kind::V1);
        assert_eq!(layout.unified, None);
        assert_eq!(
            summary(&layout),
            [
                "cpu V1 /sys/fs/cgroup/cpu,cpuacct",
                "cpuacct V1 /sys/fs/cgroup/cpu,cpuacct",
                "memory V1 /sys/fs/cgroup/memory",
                "pids V1 /sys/fs/cgroup/pids",
            ]
        );
    }

    #[test]
    fn the_v2_layout_reads_its_controllers_from_cgroup_controllers() {
        let layout = parse(V2, |mount| {
            assert_eq!(mount, Path::new("/sys/fs/cgroup"));
            Ok("cpuset cpu io memory hugetlb pids rdma misc\n".into())
        })
        .unwrap();
        assert_eq!(layout.kind, Kind::V2);
        assert_eq!(layout.default_version(), Version::V2);
        assert_eq!(layout.controllers.len(), 8);
        assert_eq!(
            layout.controller("memory").unwrap().mount,
            PathBuf::from("/sys/fs/cgroup")
        );
        let err = layout.require("cpu", Version::V1).unwrap_err().to_string();
        assert!(
            err.contains("the v2 layout has no cpu controller on cgroup v1"),
            "{err}"
        );
    }

    #[test]
    fn no_cgroup_mount_is_an_error() {
        let err = parse("22 1 259:2 / / rw - ext4 /dev/sda1 rw\n", |_| {
            Ok(String::new())
        })
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("no cgroup filesystem is mounted"), "{err}");
    }

    #[test]
    fn escaped_mount_points_are_decoded() {
        let text = "30 25 0:27 / /tmp/my\\040cgroups rw - cgroup2 cgroup2 rw\n";
        let layout = parse(text, |_| Ok("pids".into())).unwrap();
        assert_eq!(layout.unified, Some(PathBuf::from("/tmp/my cgroups")));
    }

    #[test]
    fn the_description_lists_each_controller_with_its_hierarchy() {
        let layout = parse(HYBRID, controllers_file("")).unwrap();
        let text = layout.describe();
        assert!(text.starts_with("cgroup layout: v1-hybrid"), "{text}");
        assert!(
            text.contains("  memory     v1       /sys/fs/cgroup/memory\n"),
            "{text}"
        );
        let json = serde_json::to_value(&layout).unwrap();
        assert_eq!(json["kind"], "hybrid");
        assert_eq!(json["controllers"][0]["name"], "cpu");
    }

    #[test]
    fn every_hierarchy_is_listed_once_named_ones_too() {
        let found = hierarchies(HYBRID);
        let names: Vec<&str> = found.iter().map(|h| h.controllers.as_str()).collect();
        assert_eq!(
            names,
            [
                "cpu",
                "cpuacct",
                "cpuset",
                "memory",
                "pids",
                "name=systemd",
                ""
            ]
        );
        let co = hierarchies(V1);
        assert_eq!(co[1].controllers, "cpu,cpuacct");
        assert!(co[1].has("cpuacct"));
        let line = &parse_proc_cgroup("5:cpuacct,cpu:/x\n")[0];
        assert!(co[1].matches(line));
        assert!(!co[2].matches(line));
        assert_eq!(hierarchies(V2).len(), 1);
    }

    #[test]
    fn proc_cgroup_lines_are_split_in_three() {
        let lines = parse_proc_cgroup("4:memory:/process_api/x\n1:cpu,cpuacct:/\n0::/user.slice\n");
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].controllers, "memory");
        assert_eq!(lines[0].path, "/process_api/x");
        assert_eq!(lines[2].hierarchy_id, 0);
        assert_eq!(lines[2].path, "/user.slice");
    }
}
