//! What a test must not leave behind under its state root, checked by every container harness
//! when it is dropped: a second overlay mounted on a container's `merged` while one is there
//! (checked before the containers are removed), a `rm -f` that failed, and, once every
//! container is removed, a process still working on the root (a shim, a `shim-step`), a mount
//! under the root (an overlay, a network pin, a volume's filesystem) and a minidock cgroup of
//! one of its containers. Whatever is found is cleaned up first (killed, unmounted, removed),
//! then reported by a panic naming each leftover, so a leak fails the test that made it
//! instead of staying on the host.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a harness found while it tore down its root; reported by [`Leftovers::check`].
#[derive(Debug, Default)]
pub struct Leftovers {
    root: PathBuf,
    ids: Vec<String>,
    found: Vec<String>,
}

impl Leftovers {
    /// Call before the containers are removed: notes the root's containers (their cgroups are
    /// checked after their removal) and every overlay mounted more than once on one container's
    /// `merged`.
    pub fn before_removal(root: &Path) -> Leftovers {
        let ids = container_ids(root);
        let mut found = Vec::new();
        for id in &ids {
            let merged = root.join("containers").join(id).join("merged");
            let n = mount_points(&merged.display().to_string())
                .iter()
                .filter(|p| Path::new(p) == merged)
                .count();
            if n > 1 {
                found.push(format!(
                    "{n} overlays stacked on {} (a rootfs mounted again while mounted)",
                    merged.display()
                ));
            }
        }
        Leftovers {
            root: root.to_path_buf(),
            ids,
            found,
        }
    }

    /// Notes the outcome of a `rm -f ID` run by the harness: a failure is a leftover.
    pub fn removed(&mut self, id: &str, out: &std::process::Output) {
        if !out.status.success() {
            self.found.push(format!(
                "`rm -f {id}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim_end()
            ));
        }
    }

    /// Call once every container is removed: waits (at most 10 s) for the processes that name
    /// the root to end, then kills those left, unmounts every mount under the root and removes
    /// the containers' cgroups, and panics naming each leftover (unless the test is already
    /// failing, when it only cleans up).
    pub fn check(mut self) {
        self.found.extend(processes_left(&self.root));
        self.found.extend(mounts_left(&self.root));
        self.found.extend(cgroups_left(&self.ids));
        if !self.found.is_empty() && !std::thread::panicking() {
            panic!(
                "the test left these behind under {} (now cleaned up):\n  {}",
                self.root.display(),
                self.found.join("\n  ")
            );
        }
    }
}

/// The names of the entries of `ROOT/containers` (every container, with or without a
/// readable state).
pub fn container_ids(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join("containers"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

/// The mount points at or under `prefix` in this thread's mount namespace (a test in a
/// private namespace sees its own), deepest first; a deleted mount point without its
/// ` (deleted)` mark.
fn mount_points(prefix: &str) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap_or_default();
    let mut found: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.trim_end_matches("//deleted").to_owned())
        .filter(|p| p == prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.len()));
    found
}

/// Mounts left under `root`, each unmounted (detached) once named.
fn mounts_left(root: &Path) -> Vec<String> {
    let left = mount_points(&root.display().to_string());
    for _ in 0..8 {
        let now = mount_points(&root.display().to_string());
        if now.is_empty() {
            break;
        }
        for point in now {
            let _ = nix::mount::umount2(point.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
    left.into_iter()
        .map(|p| format!("a mount on {p}"))
        .collect()
}

/// Processes other than this one whose command line names `root`: pid and command line.
fn processes_naming(root: &Path) -> Vec<(i32, String)> {
    let needle = root.display().to_string();
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
            let names = |arg: &str| arg == needle || arg.starts_with(&format!("{needle}/"));
            line.split(' ')
                .any(names)
                .then(|| (pid, line.trim_end().to_owned()))
        })
        .collect()
}

/// Processes still naming `root` 10 s after the containers were removed, each killed.
fn processes_left(root: &Path) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut left = processes_naming(root);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        left = processes_naming(root);
    }
    for (pid, _) in &left {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    left.into_iter()
        .map(|(pid, cmd)| format!("process {pid} still running: {cmd}"))
        .collect()
}

/// The cgroup hierarchies this host mounts (cgroup v1 and v2), from this process's mountinfo.
fn cgroup_mounts() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let mount = PathBuf::from(left.split(' ').nth(4)?);
            matches!(fstype, "cgroup" | "cgroup2").then_some(mount)
        })
        .collect()
}

/// The `minidock/ID` cgroups left of containers `ids`, each killed and removed once named.
fn cgroups_left(ids: &[String]) -> Vec<String> {
    let mut left = Vec::new();
    for hierarchy in cgroup_mounts() {
        for id in ids {
            let dir = hierarchy.join("minidock").join(id);
            if dir.is_dir() {
                let _ = minidock::cgroup::remove_existing(&dir);
                left.push(format!("the cgroup {}", dir.display()));
            }
        }
    }
    left
}
