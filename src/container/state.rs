//! `state.json`: what minidock remembers about one container.
//!
//! It is written by several processes: `create`, the supervisor (running, then the exit
//! status), `rm`. Every write replaces the file atomically ([`crate::state::write_atomic_unsynced`]), so
//! readers need no lock; read-modify-writes hold [`super::Paths::lock`].
//!
//! What was written can be out of date: a supervisor killed with SIGKILL never records the
//! exit (the next command's [`super::recover`] does it for it). So [`ContainerState::observe`]
//! checks the kernel: a recorded pid is only "running" while
//! that pid is alive *and* is still the same process (its start time matches, since pids are
//! reused).

use super::Paths;
use crate::runtime::process_start_time;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Go's zero time, which Docker shows for a time that never happened.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A container's status, as Docker names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, never started (or its start failed).
    #[default]
    Created,
    Running,
    /// Stopped, with its exit code recorded.
    Exited,
    /// Stopped, but its supervisor was killed before it could record how: the exit code is
    /// lost.
    Dead,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

/// One bind, volume or tmpfs mount of a container, as `inspect` shows it under `Mounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    #[serde(rename = "Type")]
    pub kind: String,
    /// A volume's name; absent for other mounts, as in Docker's JSON.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: String,
    pub destination: String,
    /// `local` for a volume; absent for other mounts.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

/// What the container was asked to be: the image config merged with the flags. `inspect`
/// shows it as `Config` and `HostConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RunConfig {
    pub hostname: String,
    pub user: String,
    /// `--group-add`, as given.
    pub group_add: Vec<String>,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub working_dir: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub auto_remove: bool,
    pub network_mode: String,
    pub binds: Vec<String>,
    pub mounts: Vec<MountPoint>,
    /// `--volumes-from`, as given.
    pub volumes_from: Vec<String>,
    /// `--tmpfs`: the path and its options as given.
    pub tmpfs: BTreeMap<String, String>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    /// Bytes; 0 for no limit.
    pub memory: i64,
    /// Billionths of a CPU; 0 for no limit.
    pub nano_cpus: i64,
    /// 0 for no limit.
    pub pids_limit: i64,
    /// Memory plus swap in bytes; 0 when not set, -1 for unlimited swap.
    pub memory_swap: i64,
    /// Relative CPU weight; 0 when not set (the kernel's 1024).
    pub cpu_shares: i64,
    /// The signal `stop` sends first (the image's `StopSignal`, default SIGTERM).
    pub stop_signal: String,
    /// The image's `ExposedPorts` (`"80/tcp"`), as the container was created with them.
    pub exposed_ports: Vec<String>,
    /// The image's `Labels`.
    pub labels: BTreeMap<String, String>,
    /// The image's `Volumes` (container paths).
    pub volumes: Vec<String>,
    /// `--restart`: what the supervisor does when the process exits.
    pub restart_policy: RestartPolicy,
    /// `--stop-timeout`: seconds `stop` waits before SIGKILL when `-t` is not given.
    pub stop_timeout: Option<i64>,
    /// `--init`: PID 1 is `/sbin/docker-init`, which runs the command as its child.
    pub init: bool,
    /// `-p`: `"80/tcp"` to the host addresses and ports asked for (`HostConfig.PortBindings`).
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    /// `-P`: every exposed port on an ephemeral host port.
    pub publish_all_ports: bool,
    /// `--dns`, `--dns-search`, `--add-host` (`NAME:IP`), as given.
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub extra_hosts: Vec<String>,
    /// `--dns-option`, as given (resolv.conf's `options`).
    pub dns_options: Vec<String>,
    /// `--ip`, or empty.
    pub ip_address: String,
    /// `--network-alias`, as given.
    pub aliases: Vec<String>,
}

/// One host address and port of a published port, as Docker's `PortBinding` (an empty
/// `HostIp` is every address, an empty `HostPort` an ephemeral port).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

// ANCHOR: restart_policy
/// `--restart`, as Docker's `HostConfig.RestartPolicy`: `Name` is `no`, `on-failure`, `always`
/// or `unless-stopped`; `MaximumRetryCount` only counts for `on-failure` (0: no limit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: i64,
}

impl Default for RestartPolicy {
    fn default() -> RestartPolicy {
        RestartPolicy {
            name: "no".into(),
            maximum_retry_count: 0,
        }
    }
}

// ANCHOR_END: restart_policy

// ANCHOR: restart_policy_parse
impl RestartPolicy {
    /// Parses `--restart` as the docker CLI does (`opts.ParseRestartPolicy`) and checks it as
    /// Docker 20.10's daemon does (`validateRestartPolicy`). The error is Docker's message.
    pub fn parse(text: &str) -> std::result::Result<RestartPolicy, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let (name, count) = match parts.as_slice() {
            [""] => ("no", 0),
            [name] => (*name, 0),
            [name, count] => {
                let count = count
                    .parse::<i64>()
                    .map_err(|_| "maximum retry count must be an integer".to_owned())?;
                (if name.is_empty() { "no" } else { *name }, count)
            }
            _ => return Err("invalid restart policy format".into()),
        };
        match name {
            "no" | "always" | "unless-stopped" if count != 0 => Err(format!(
                "maximum retry count cannot be used with restart policy '{name}'"
            )),
            "on-failure" if count < 0 => Err("maximum retry count cannot be negative".into()),
            "no" | "always" | "unless-stopped" | "on-failure" => Ok(RestartPolicy {
                name: name.to_owned(),
                maximum_retry_count: count,
            }),
            other => Err(format!("invalid restart policy '{other}'")),
        }
    }

    // ANCHOR_END: restart_policy_parse

    // ANCHOR: should_restart
    /// Whether a policy is set at all (anything but `no`).
    pub fn is_set(&self) -> bool {
        self.name != "no" && !self.name.is_empty()
    }

    /// moby's `RestartManager.ShouldRestart`: whether a process that exited with `exit_code`
    /// after `restart_count` restarts is started again. A user's `stop` (or `kill`) ends
    /// every policy.
    pub fn should_restart(
        &self,
        exit_code: i32,
        restart_count: u32,
        stopped_by_user: bool,
    ) -> bool {
        if stopped_by_user {
            return false;
        }
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                exit_code != 0
                    && (self.maximum_retry_count == 0
                        || i64::from(restart_count) < self.maximum_retry_count)
            }
            _ => false,
        }
    }
    // ANCHOR_END: should_restart
}

// ANCHOR: state
/// `<root>/containers/<id>/state.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerState {
    pub id: String,
    pub name: String,
    /// The image as the user named it (`busybox`), for `ps`.
    pub image: String,
    /// The image ID, `sha256:<hex>`.
    pub image_id: String,
    pub created: String,
    /// The status as last recorded; see [`ContainerState::observe`] for the truth.
    pub status: Status,
    /// The container's process (PID 1 inside it), as the host sees it, and its start time.
    pub pid: i32,
    pub pid_start_time: u64,
    /// The process that waits for the container and records its exit: the detached shim, or
    /// the foreground `minidock run`.
    pub supervisor_pid: i32,
    pub supervisor_start_time: u64,
    pub exit_code: i32,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    /// Why the last start failed, if it did.
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// How many times the supervisor restarted the process (`--restart`).
    pub restart_count: u32,
    /// The supervisor waits to restart the process (the process is not running): `ps` shows
    /// `Restarting`, `inspect` `"restarting"`.
    pub restarting: bool,
    /// Set by `stop` and `kill` before they signal, as moby's `HasBeenManuallyStopped`: the
    /// supervisor then records the exit instead of restarting; `start` clears it.
    pub has_been_manually_stopped: bool,
    /// True from `create`'s first write of this file until its last: a container whose
    /// creator died in between was never handed to anyone, and the next command removes it.
    pub creating: bool,
    /// A build's `RUN` container: the next command removes it once its builder is gone.
    pub build_step: bool,
    /// The cgroup directories of the current (or last) run.
    pub cgroup_paths: Vec<PathBuf>,
    /// The overlay's lower dirs, top first: the image's unpacked layers.
    pub lower_dirs: Vec<PathBuf>,
    pub config: RunConfig,
}
// ANCHOR_END: state

impl ContainerState {
    pub fn new(id: &str, name: &str, image: &str, image_id: &str) -> ContainerState {
        ContainerState {
            id: id.to_owned(),
            name: name.to_owned(),
            image: image.to_owned(),
            image_id: image_id.to_owned(),
            created: crate::state::rfc3339(std::time::SystemTime::now()),
            status: Status::Created,
            started_at: ZERO_TIME.to_owned(),
            finished_at: ZERO_TIME.to_owned(),
            ..Default::default()
        }
    }

    fn path(paths: &Paths, id: &str) -> PathBuf {
        paths.dir(id).join("state.json")
    }

    /// Reads a container's state; `None` when it does not exist (any more).
    pub fn load(paths: &Paths, id: &str) -> Result<Option<ContainerState>> {
        let path = ContainerState::path(paths, id);
        let cached = cache::lookup(&path);
        if let Some((_, Some(state))) = &cached {
            return Ok(Some(state.clone()));
        }
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let state: ContainerState = serde_json::from_slice(&bytes)
            .with_context(|| format!("parsing {}", path.display()))?;
        if let Some((Some(key), None)) = cached {
            cache::keep(path, key, &state);
        }
        Ok(Some(state))
    }

    /// Replaces state.json atomically. Callers that read it first hold [`Paths::lock`].
    pub fn save(&self, paths: &Paths) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).context("serialising state.json")?;
        // 0600, as Docker's config.v2.json: it holds the container's environment.
        crate::state::write_atomic_unsynced_with_mode(
            &ContainerState::path(paths, &self.id),
            &bytes,
            0o600,
        )
    }

    /// Applies `change` to the current state.json under the lock. `None` when the container
    /// has been removed meanwhile.
    pub fn update(
        paths: &Paths,
        id: &str,
        change: impl FnOnce(&mut ContainerState),
    ) -> Result<Option<ContainerState>> {
        let _lock = paths.lock()?;
        let Some(mut state) = ContainerState::load(paths, id)? else {
            return Ok(None);
        };
        change(&mut state);
        state.save(paths)?;
        Ok(Some(state))
    }

    /// Whether the recorded container process is alive (and not a later process with its pid).
    pub fn process_alive(&self) -> bool {
        alive(self.pid, self.pid_start_time)
    }

    /// Whether the recorded supervisor is alive.
    pub fn supervisor_alive(&self) -> bool {
        alive(self.supervisor_pid, self.supervisor_start_time)
    }

    // ANCHOR: observe
    /// The status as the kernel shows it. A container recorded as running is running while its
    /// process lives, or while its supervisor lives (it is about to record the exit); when
    /// both are gone, nobody will ever record how it ended: it is dead.
    pub fn observe(&self) -> Status {
        match self.status {
            Status::Running if self.process_alive() || self.supervisor_alive() => Status::Running,
            Status::Running => Status::Dead,
            other => other,
        }
    }
    // ANCHOR_END: observe

    /// Whether its supervisor waits to start the process again (`--restart`, between an exit
    /// and the restart): the container counts as running, yet has no process. `ps` shows
    /// `Restarting`; what needs the process is refused ([`super::restarting`]).
    pub fn is_restarting(&self) -> bool {
        self.restarting && self.observe() == Status::Running
    }

    /// The command line as `ps` shows it: the process's args joined by spaces.
    pub fn command(&self) -> String {
        let mut args = self.config.entrypoint.clone();
        args.extend(self.config.cmd.iter().cloned());
        args.join(" ")
    }
}

/// Parsed `state.json` files kept by a long-lived process ([`enable_cache`]), each with the
/// file's identity when read (device, inode, size, change time). A state is only ever replaced
/// by renaming a new file over it, so an unchanged identity is an unchanged state: a listing
/// costs a stat per container, not a read and a parse.
mod cache {
    use super::ContainerState;
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    /// At most this many states are kept; past it the cache starts over.
    const MOST: usize = 4096;

    /// How long ago a file must have changed for its state to be kept.
    const SETTLED: std::time::Duration = std::time::Duration::from_millis(100);

    pub(super) type Key = (u64, u64, u64, i64, i64, i64, i64);
    type Kept = HashMap<PathBuf, (Key, ContainerState)>;

    pub(super) static CACHE: Mutex<Option<Kept>> = Mutex::new(None);

    fn key_of(path: &Path) -> Option<Key> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some((
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        ))
    }

    /// `None` when the cache is off; else the file's identity (`None`: it cannot be stat'ed)
    /// and the state kept for it when that identity is unchanged.
    pub(super) fn lookup(path: &Path) -> Option<(Option<Key>, Option<ContainerState>)> {
        if CACHE.lock().ok()?.is_none() {
            return None;
        }
        let key = key_of(path);
        let mut guard = CACHE.lock().ok()?;
        let kept = guard.as_mut()?;
        let Some(key) = key else {
            kept.remove(path);
            return Some((None, None));
        };
        let state = kept
            .get(path)
            .filter(|(k, _)| *k == key)
            .map(|(_, s)| s.clone());
        Some((Some(key), state))
    }

    /// Drops what is kept for `path`; the memory of an emptied cache goes back too.
    pub(super) fn forget(path: &Path) {
        if let Ok(mut guard) = CACHE.lock()
            && let Some(kept) = guard.as_mut()
            && kept.remove(path).is_some()
            && kept.is_empty()
        {
            *kept = HashMap::new();
        }
    }

    /// Keeps `state`, read from `path` whose identity was `key`, unless the file changed in
    /// the last [`SETTLED`]: file times are kernel ticks, so a file replaced twice within a
    /// tick by one of the same size (and a reused inode) would look unchanged.
    pub(super) fn keep(path: PathBuf, key: Key, state: &ContainerState) {
        let changed = std::time::UNIX_EPOCH
            + std::time::Duration::new(key.5.max(0) as u64, key.6.clamp(0, 999_999_999) as u32);
        let settled = std::time::SystemTime::now()
            .duration_since(changed)
            .is_ok_and(|age| age >= SETTLED);
        if !settled {
            return;
        }
        if let Ok(mut guard) = CACHE.lock()
            && let Some(kept) = guard.as_mut()
        {
            if kept.len() >= MOST {
                kept.clear();
            }
            kept.insert(path, (key, state.clone()));
        }
    }
}

/// Keeps parsed states in memory from now on, for a long-lived process (`minidock daemon`):
/// [`ContainerState::load`] then reads a `state.json` again only once it was replaced. A
/// recorded process's liveness ([`super::liveness`]) and a container's freezer state
/// ([`super::pause`]) are then answered from descriptors kept open.
pub fn enable_cache() {
    if let Ok(mut guard) = cache::CACHE.lock() {
        guard.get_or_insert_with(Default::default);
    }
    super::liveness::enable();
    super::pause::keep_freezer_files();
}

/// Drops the parsed state kept for container `id` ([`enable_cache`]): for its removal, after
/// which nothing may look it up again to notice it is gone.
pub fn forget_cached(paths: &Paths, id: &str) {
    cache::forget(&ContainerState::path(paths, id));
}

/// Whether `pid` is the live process that started at `start_time`.
pub fn alive(pid: i32, start_time: u64) -> bool {
    pid > 0 && start_time_seen(pid, start_time) == Some(start_time)
}

/// What one look at the kernel saw, while [`snapshot`] runs: each process's start time
/// (`None`: gone) and each container's paused state, by ID.
#[derive(Default)]
struct Snapshot {
    start_times: std::collections::HashMap<i32, Option<u64>>,
    paused: std::collections::HashMap<String, bool>,
}

thread_local! {
    static SNAPSHOT: std::cell::RefCell<Option<Snapshot>> = const { std::cell::RefCell::new(None) };
}

/// Runs `work` as one look at the kernel: a process's start time (whether a container's
/// process or supervisor lives) and a container's freezer state are read once, then taken
/// from what was seen. A listing that looks at a container several times (its state, its
/// status text, a filter) so sees it the same each time and reads /proc once. Recovery
/// ([`super::Paths::list`]) always reads afresh.
pub fn snapshot<T>(work: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            if self.0 {
                SNAPSHOT.with(|s| *s.borrow_mut() = None);
            }
        }
    }
    let outermost = SNAPSHOT.with(|s| {
        let mut s = s.borrow_mut();
        let outermost = s.is_none();
        s.get_or_insert_with(Snapshot::default);
        outermost
    });
    let _reset = Reset(outermost);
    work()
}

/// Runs `work` outside any [`snapshot`] (what it reads is read afresh); the snapshot is back
/// afterwards.
pub(crate) fn outside_snapshot<T>(work: impl FnOnce() -> T) -> T {
    struct Restore(Option<Snapshot>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(kept) = self.0.take() {
                SNAPSHOT.with(|s| *s.borrow_mut() = Some(kept));
            }
        }
    }
    let _restore = Restore(SNAPSHOT.with(|s| s.borrow_mut().take()));
    work()
}

/// Process `pid`'s start time, `expected` being the one recorded ([`super::liveness`]).
fn start_time_seen(pid: i32, expected: u64) -> Option<u64> {
    SNAPSHOT.with(|s| match s.borrow_mut().as_mut() {
        Some(seen) => *seen
            .start_times
            .entry(pid)
            .or_insert_with(|| super::liveness::start_time(pid, expected)),
        None => super::liveness::start_time(pid, expected),
    })
}

/// Whether container `id` is paused, by `look` (the freezer), or as seen before in this
/// [`snapshot`].
pub(crate) fn paused_seen(id: &str, look: impl FnOnce() -> bool) -> bool {
    let seen = SNAPSHOT.with(|s| s.borrow().as_ref().and_then(|s| s.paused.get(id).copied()));
    if let Some(paused) = seen {
        return paused;
    }
    let paused = look();
    SNAPSHOT.with(|s| {
        if let Some(snapshot) = s.borrow_mut().as_mut() {
            snapshot.paused.insert(id.to_owned(), paused);
        }
    });
    paused
}

/// This process's own pid and start time, to record as a supervisor.
pub fn me() -> (i32, u64) {
    let pid = std::process::id() as i32;
    (pid, process_start_time(pid).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_parse_and_decide_as_dockers() {
        let p = RestartPolicy::parse("on-failure:3").unwrap();
        assert_eq!((p.name.as_str(), p.maximum_retry_count), ("on-failure", 3));
        assert!(p.should_restart(1, 2, false));
        assert!(!p.should_restart(1, 3, false));
        assert!(!p.should_restart(0, 0, false));
        assert!(!p.should_restart(1, 0, true));
        assert!(
            RestartPolicy::parse("always")
                .unwrap()
                .should_restart(0, 99, false)
        );
        assert!(
            !RestartPolicy::parse("no")
                .unwrap()
                .should_restart(1, 0, false)
        );
        assert_eq!(RestartPolicy::parse("").unwrap(), RestartPolicy::default());
        assert_eq!(
            RestartPolicy::parse("always:3").unwrap_err(),
            "maximum retry count cannot be used with restart policy 'always'"
        );
        assert!(RestartPolicy::parse("always:0").is_ok());
        assert_eq!(
            RestartPolicy::parse("on-failure:-1").unwrap_err(),
            "maximum retry count cannot be negative"
        );
        assert_eq!(
            RestartPolicy::parse("a:b:c").unwrap_err(),
            "invalid restart policy format"
        );
    }

    #[test]
    fn a_running_container_without_process_or_supervisor_is_dead() {
        let mut state = ContainerState::new("a", "b", "busybox", "sha256:00");
        state.status = Status::Running;
        state.pid = i32::MAX;
        assert_eq!(state.observe(), Status::Dead);
        let (pid, start) = me();
        state.supervisor_pid = pid;
        state.supervisor_start_time = start;
        assert_eq!(state.observe(), Status::Running);
        // A reused pid is another process.
        state.supervisor_start_time += 1;
        assert_eq!(state.observe(), Status::Dead);
    }
}
