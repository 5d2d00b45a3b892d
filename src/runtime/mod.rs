//! The OCI runtime: takes a bundle (a root filesystem and a runtime-spec `config.json`) and
//! runs it, with runc's verbs and semantics (runtime.md, "Operations"):
//!
//! - `create` sets everything up (namespaces, mounts, cgroup, ...) and leaves the container
//!   process waiting just before execve, in the **created** state;
//! - `start` lets it exec the user's program: **running**;
//! - `state` prints the state JSON; `kill` signals the process; `delete` removes what `create`
//!   made once the process is **stopped**;
//! - `run` is create + start + wait, in the foreground, with the program's exit status.
//!
//! It uses the mechanism modules unchanged: `ns` for clone and the id maps, `rootfs` for
//! pivot_root and /dev, `cgroup` for `linux.resources`, and `security` for capabilities,
//! seccomp and masked paths.

pub mod cli;
pub mod events;
pub mod exec;
pub mod hooks;
pub mod init;
pub mod mounts;
pub mod ops;
pub mod signal;
pub mod spec;

use crate::cgroup::{self, Cgroup};
use crate::cli::{Exit, code};
use crate::explain::{self, Chapter};
use crate::ns::{self, Namespace};
use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Where the runtime keeps its state: `/run/minidock/runtime`, or `ROOT/run/runtime` when a
/// state root is given (`--root` or `MINIDOCK_ROOT`), so tests never share state.
pub fn state_root(cli_root: Option<&Path>) -> PathBuf {
    match cli_root
        .map(Path::to_owned)
        .or_else(|| std::env::var_os("MINIDOCK_ROOT").map(PathBuf::from))
    {
        Some(root) => root.join("run/runtime"),
        None if crate::rootless::active() => crate::rootless::runtime_dir().join("runtime"),
        None => PathBuf::from("/run/minidock/runtime"),
    }
}

/// The OCI status of a container (runtime.md, "State").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    /// Running, with every process frozen by `pause` (runc's extra status).
    Paused,
    Stopped,
}

/// What the runtime remembers about a container, in `STATE_ROOT/ID/state.json`. The first
/// fields are the OCI state; the rest is what `delete` needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    #[serde(default)]
    pub annotations: std::collections::HashMap<String, String>,
    pub rootfs: PathBuf,
    pub created: String,
    /// The process's start time (field 22 of /proc/PID/stat), to tell it from a later
    /// process that got the same pid.
    #[serde(default)]
    pub pid_start_time: u64,
    #[serde(default)]
    pub cgroup_paths: Vec<PathBuf>,
    /// The directories of `cgroup_paths` that existed before `create` joined them (a
    /// `linux.cgroupsPath` naming an existing cgroup): `delete` kills nothing in them, and
    /// removes one only when it is empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joined_cgroup_paths: Vec<PathBuf>,
}

/// A container id becomes a directory name and a cgroup name: letters, digits, `_ . -`.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        return Err(Exit::new(
            code::FAILED,
            format!("invalid container id {id:?}: use letters, digits, '_', '.' and '-'"),
        )
        .into());
    }
    Ok(())
}

/// The start time of a live (not zombie) process, in clock ticks since boot: with the pid, it
/// names one process for good, since pids are reused.
pub fn process_start_time(pid: i32) -> Option<u64> {
    use std::io::Read;
    // One read: the line is a few hundred bytes, and procfs gives it whole to a buffer that
    // holds it (read_to_string would stat the file, whose size is 0, and probe in 32 bytes).
    let mut bytes = Vec::with_capacity(1024);
    std::fs::File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .read_to_end(&mut bytes)
        .ok()?;
    let stat = String::from_utf8_lossy(&bytes);
    // The command name (field 2) may contain spaces: count fields after its closing ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // `after` starts at field 3 (state); starttime is field 22.
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

impl State {
    fn dir(root: &Path, id: &str) -> PathBuf {
        root.join(id)
    }

    pub fn load(root: &Path, id: &str) -> Result<State> {
        validate_id(id)?;
        let path = State::dir(root, id).join("state.json");
        let text = std::fs::read_to_string(&path).map_err(|_| {
            anyhow::Error::new(Exit::new(
                code::FAILED,
                format!("container {id:?} does not exist"),
            ))
        })?;
        let mut state: State =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        state.status = state.current_status(root);
        Ok(state)
    }

    fn save(&self, root: &Path) -> Result<()> {
        let path = State::dir(root, &self.id).join("state.json");
        // 0600 as runc writes it: the annotations are the caller's.
        crate::state::write_atomic_unsynced_with_mode(
            &path,
            &serde_json::to_vec_pretty(self)?,
            0o600,
        )
    }

    /// Created while the exec fifo exists and the process is alive; running once it has
    /// exec'd; stopped when the process is gone.
    fn current_status(&self, root: &Path) -> Status {
        if self.pid <= 0 || process_start_time(self.pid) != Some(self.pid_start_time) {
            return Status::Stopped;
        }
        if State::dir(root, &self.id).join("exec.fifo").exists() {
            Status::Created
        } else if ops::is_frozen(self) {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// The OCI state JSON that `state` prints.
    pub fn oci_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": self.status,
            "pid": if self.status == Status::Stopped { 0 } else { self.pid },
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "annotations": self.annotations,
        })
    }
}

/// How `create` was asked to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Stop before exec until `start`.
    Create,
    /// Exec at once (the foreground `run`).
    Run,
}

/// A container started by [`spawn`]: its process (our child) and its cgroup, which is
/// removed (killing what is left in it) when this is dropped.
pub struct Launched {
    pub pid: Pid,
    pub cgroup: Cgroup,
    /// With `process.terminal`: the master end of the container's pty.
    pub console: Option<OwnedFd>,
}

fn now_rfc3339() -> String {
    crate::state::rfc3339(std::time::SystemTime::now())
}

/// Reads the bundle's config once, makes the state directory and starts the container
/// process ([`launch_in`]). `runc_rootless`: the bundle came through runc's verbs run by a
/// user other than root, so runc's rootless checks apply ([`spec::check_rootless`]).
fn launch(
    root: &Path,
    id: &str,
    bundle: &Path,
    mode: Mode,
    stdio: Option<&Stdio>,
    runc_rootless: bool,
) -> Result<(Launched, Spec)> {
    let bundle = bundle
        .canonicalize()
        .with_context(|| format!("bundle {} does not exist", bundle.display()))?;
    // config.json is read once, here: `start` and `delete` use the copy kept with the state.
    let config_path = bundle.join("config.json");
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let (spec, ignored) =
        spec::parse_with_warnings(&text).with_context(|| format!("{}", config_path.display()))?;
    if runc_rootless {
        spec::check_rootless(&spec)?;
    }
    if !ignored.is_empty() {
        eprintln!(
            "minidock: warning: ignoring unknown or unavailable capabilities: [{}]",
            ignored.join(" ")
        );
    }
    for relative in spec::relative_mount_destinations(&spec) {
        eprintln!(
            "minidock: warning: mount destination {relative:?} is not absolute: it is taken \
             as relative to the container's root, as runc does"
        );
    }
    let rootfs = spec::rootfs(&spec, &bundle)?;
    let dir = State::dir(root, id);
    // Modes as runc makes them: the root 0700 (an existing one keeps its mode), each
    // container's directory 0711.
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .with_context(|| format!("mkdir {}", root.display()))?;
    // mkdir is atomic: two `create`s with one id cannot both succeed.
    match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Exit::new(code::FAILED, format!("container {id:?} already exists")).into());
        }
        Err(e) => return Err(e).with_context(|| format!("mkdir {}", dir.display())),
    }
    let result = save_config(&dir, &text, mode)
        .and_then(|()| launch_in(&spec, &bundle, &rootfs, &dir, id, mode, stdio));
    match result {
        Ok(launched) => Ok((launched, spec)),
        Err(err) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(err)
        }
    }
}

/// Keeps the config `create` read in the state directory (mode 0600: it may hold secrets in
/// `process.env`), for `start` and `delete`.
fn save_config(dir: &Path, text: &str, mode: Mode) -> Result<()> {
    if mode != Mode::Create {
        return Ok(());
    }
    let path = dir.join("config.json");
    let tmp = dir.join("config.json.tmp");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))
}

/// The config `create` kept for container `id`.
fn saved_config(root: &Path, id: &str) -> Result<Spec> {
    let path = State::dir(root, id).join("config.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    spec::parse(&text).with_context(|| format!("{}", path.display()))
}

/// The state given to hooks, without the pid (each hook point fills it in).
fn hook_state(spec: &Spec, bundle: &Path, id: &str, status: &str) -> hooks::HookState {
    hooks::HookState {
        oci_version: OCI_VERSION.into(),
        id: id.into(),
        status: status.into(),
        pid: 0,
        bundle: bundle.to_owned(),
        annotations: spec.annotations().clone().unwrap_or_default(),
    }
}

/// The host uid and gid that are root in the container's new user namespace, if it has one
/// that maps 0.
fn mapped_root(spec: &Spec) -> Option<(u32, u32)> {
    let new_userns = spec::namespaces(spec)
        .iter()
        .any(|(ns, path)| *ns == Namespace::User && path.is_none());
    let maps = spec::id_maps(spec).ok().flatten().filter(|_| new_userns)?;
    let root = |m: &[ns::IdMapping]| m.iter().find(|m| m.inside == 0).map(|m| m.outside);
    Some((root(&maps.uids)?, root(&maps.gids)?))
}

/// The runtime-spec version minidock implements, reported in the state.
const OCI_VERSION: &str = "1.0.2";

// ANCHOR: launch
/// `create`'s work once the state directory exists: the cgroup, the namespaces to join, the
/// exec fifo, the seccomp filter and the terminal, then the clone (`spawn_container`).
fn launch_in(
    spec: &Spec,
    bundle: &Path,
    rootfs: &Path,
    dir: &Path,
    id: &str,
    mode: Mode,
    stdio: Option<&Stdio>,
) -> Result<Launched> {
    // The cgroup first, with its limits, so the process is limited from its first instruction.
    let cgroup = make_cgroup(spec, dir, id)?;
    let (mut new, unshare_cgroup, join) = open_namespaces(spec)?;
    let fifo = (mode == Mode::Create)
        .then(|| make_exec_fifo(spec, dir))
        .transpose()?;
    let seccomp = compile_seccomp(spec, dir)?;
    let console = console_socket(spec)?;
    let hook_state = hook_state(spec, bundle, id, "creating");
    let sync = HooksSync::new(spec)?;
    let (become_mapped_root, unshare_ipc) = ipc_after_root(spec, &mut new);
    let cgroup_dirs = cgroup.paths();
    let cgroup_tasks = self_join_files(spec, &cgroup, &join)?;
    let ctx = init::InitContext {
        cgroup_tasks: cgroup_tasks.as_deref(),
        hook_state: &hook_state,
        hooks_sync: sync.as_ref().map(HooksSync::child_ends),
        become_mapped_root,
        unshare_ipc,
        unshare_cgroup,
        cgroup_dirs: &cgroup_dirs,
        console: console.as_ref().map(|c| c.child.as_raw_fd()),
        spec,
        bundle,
        rootfs,
        exec_fifo: fifo.as_ref(),
        join: &join,
        seccomp: seccomp.as_deref(),
        stdio: stdio.map(Stdio::raw).unwrap_or_default(),
    };
    let pid = spawn_container(spec, &new, &cgroup, sync, &hook_state, &ctx)
        .with_context(|| format!("starting container {id:?}"))?;
    let console = receive_console(console)?;
    Ok(Launched {
        pid,
        cgroup,
        console,
    })
}
// ANCHOR_END: launch

// ANCHOR: launch_cgroup
/// The container's cgroup, made and limited before the process exists. Rootless, it goes
/// under the user's delegated subtree and gets no device rules (nor needs them: mknod is
/// refused in a user namespace, and /dev holds bind mounts of the host's nodes), as runc
/// rootless. Otherwise `linux.cgroupsPath` places it, or the container's id names it.
fn make_cgroup(spec: &Spec, dir: &Path, id: &str) -> Result<Cgroup> {
    let mut resources = spec::resources(spec)?;
    let cgroup = if crate::rootless::active() {
        resources.devices = None;
        crate::rootless::cgroup_for(&resources, id)?
    } else {
        let layout = cgroup::detect()?;
        let version = layout.default_version();
        Cgroup::check(&layout, version, &resources)?;
        match spec::cgroups_path(spec)? {
            Some(path) => Cgroup::create_at(&layout, version, &path, true)?,
            None => Cgroup::create(&layout, version, id)?,
        }
    };
    warn_if_not_empty(&cgroup);
    let cache = dir.parent().map(|runtime| runtime.join(".devices-cache"));
    cgroup.apply_cached(&resources, cache.as_deref())?;
    Ok(cgroup)
}
// ANCHOR_END: launch_cgroup

// ANCHOR: launch_console
/// The socket the container sends its terminal's master end over, when `process.terminal`
/// asks for one.
fn console_socket(spec: &Spec) -> Result<Option<crate::tty::ConsoleSocket>> {
    let terminal = spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    if terminal {
        Ok(Some(crate::tty::ConsoleSocket::new()?))
    } else {
        Ok(None)
    }
}
// ANCHOR_END: launch_console

// ANCHOR: launch_ipc
/// Whether the child becomes root of its new user namespace before anything else, and then
/// makes the IPC namespace itself, as that root, so the namespace and its mqueue filesystem
/// belong to the user namespace's root, as with runc. The IPC namespace is then taken out of
/// those the clone makes.
fn ipc_after_root(spec: &Spec, new: &mut Vec<Namespace>) -> (bool, bool) {
    let become_mapped_root = new.contains(&Namespace::User) && mapped_root(spec).is_some();
    let unshare_ipc = become_mapped_root && new.contains(&Namespace::Ipc);
    new.retain(|ns| !(unshare_ipc && *ns == Namespace::Ipc));
    (become_mapped_root, unshare_ipc)
}
// ANCHOR_END: launch_ipc

// ANCHOR: launch_receive_console
/// The terminal's master end, which the container sent over the console socket before exec
/// (or before waiting in `created`).
fn receive_console(console: Option<crate::tty::ConsoleSocket>) -> Result<Option<OwnedFd>> {
    console
        .map(|socket| crate::tty::receive_master(socket.parent.as_fd()))
        .transpose()
}
// ANCHOR_END: launch_receive_console

// ANCHOR: launch_self_join
/// The v1 `tasks` files the container process writes itself into, first thing (`None` on v2,
/// where it is born in its cgroup). Only without a user namespace: in one it may not write
/// them, and the runtime writes its tid into them instead.
fn self_join_files(
    spec: &Spec,
    cgroup: &Cgroup,
    join: &[(Namespace, OwnedFd)],
) -> Result<Option<Vec<PathBuf>>> {
    let user_ns =
        spec::id_maps(spec)?.is_some() || join.iter().any(|(ns, _)| *ns == Namespace::User);
    let files = cgroup.task_files();
    Ok((!user_ns && !files.is_empty()).then_some(files))
}
// ANCHOR_END: launch_self_join

/// The namespaces to make (`linux.namespaces` without a path), whether the child unshares a
/// new cgroup namespace itself, and the ones to join, opened now. A PID namespace is joined by
/// this process itself, because setns(CLONE_NEWPID) only moves the children created afterwards.
type Namespaces = (Vec<Namespace>, bool, Vec<(Namespace, OwnedFd)>);

// ANCHOR: open_namespaces
fn open_namespaces(spec: &Spec) -> Result<Namespaces> {
    let mut new = Vec::new();
    let mut unshare_cgroup = false;
    let mut join: Vec<(Namespace, OwnedFd)> = Vec::new();
    for (ns, path) in spec::namespaces(spec) {
        match path {
            // A new cgroup namespace takes the cgroup the process is in *when it is made* as
            // its root. At clone time that is still ours, so the child unshares it once we
            // have moved it into the container's cgroup (as runc does).
            None if ns == Namespace::Cgroup => unshare_cgroup = true,
            None => new.push(ns),
            Some(path) => {
                let fd: OwnedFd = std::fs::File::open(&path)
                    .with_context(|| format!("linux.namespaces: opening {}", path.display()))?
                    .into();
                if ns == Namespace::Pid {
                    nix::sched::setns(&fd, ns.clone_flag())
                        .with_context(|| format!("setns into {}", path.display()))?;
                } else {
                    join.push((ns, fd));
                }
            }
        }
    }
    Ok((new, unshare_cgroup, join))
}
// ANCHOR_END: open_namespaces

// ANCHOR: exec_fifo
/// `create`'s exec fifo (fifo(7)) in the state directory, opened O_PATH: the container
/// process opens it for writing through this descriptor and blocks until `start` opens it
/// for reading.
fn make_exec_fifo(spec: &Spec, dir: &Path) -> Result<OwnedFd> {
    let path = dir.join("exec.fifo");
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .with_context(|| format!("mkfifo {}", path.display()))?;
    // In a user namespace the container's root is another uid on the host: the fifo is its to
    // open (as runc chowns it).
    if let Some((uid, gid)) = mapped_root(spec) {
        nix::unistd::chown(
            &path,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .with_context(|| format!("chown {}", path.display()))?;
    }
    Ok(OwnedFd::from(
        std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?,
    ))
}
// ANCHOR_END: exec_fifo

/// Compiles `linux.seccomp` here, once, cached by the profile's hash: the child only installs
/// it.
fn compile_seccomp(
    spec: &Spec,
    dir: &Path,
) -> Result<Option<std::sync::Arc<crate::security::seccomp::Program>>> {
    let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    let cache = dir.parent().map(|runtime| runtime.join(".seccomp-cache"));
    Ok(Some(crate::security::seccomp::compile_cached(
        profile,
        cache.as_deref(),
    )?))
}

/// Clones the container process into its namespaces and cgroup (`ns::spawn_process`): it is
/// born in the cgroup2 directory, if the group has one (clone3 with `CLONE_INTO_CGROUP`), and
/// joins its v1 hierarchies itself (`ctx.cgroup_tasks`); we place it where it could not
/// ([`place_in_cgroup`]). With `sync`, a thread of ours runs the `prestart` and
/// `createRuntime` hooks when the process asks for them, between its mounts and its
/// pivot_root.
fn spawn_container(
    spec: &Spec,
    new: &[Namespace],
    cgroup: &Cgroup,
    mut sync: Option<HooksSync>,
    hook_state: &hooks::HookState,
    ctx: &init::InitContext,
) -> Result<Pid> {
    let id_maps = spec::id_maps(spec)?;
    // The child mounts while we finish placing it, unless it must first wait for its uid and
    // gid maps.
    let user_ns = id_maps.is_some() || ctx.join.iter().any(|(ns, _)| *ns == Namespace::User);
    let go = if user_ns {
        ns::Go::BeforeChildSetup
    } else {
        ns::Go::WhenChildAsks
    };
    std::thread::scope(|scope| {
        let mut hooks_thread = None;
        let spawned = ns::spawn_process(
            new,
            id_maps.as_ref(),
            go,
            cgroup.cgroup2_dir(),
            &mut |pid, born_in_cgroup2| {
                place_in_cgroup(cgroup, pid, born_in_cgroup2, ctx.cgroup_tasks.is_some())?;
                if let Some(sync) = sync.take() {
                    let mut state = hook_state.clone();
                    state.pid = pid.as_raw();
                    hooks_thread = Some(scope.spawn(move || sync.serve(spec, &state)));
                }
                Ok(())
            },
            &mut |ready| init::container_init(ctx, ready),
        );
        // A hook's own error says more than the container's "the hooks failed".
        match hooks_thread.map(|t| t.join()) {
            Some(Ok(Err(err))) => Err(err),
            Some(Err(_)) => bail!("the thread running the prestart hooks panicked"),
            _ => spawned,
        }
    })
}

// ANCHOR: place_in_cgroup
/// The runtime's part in placing the container process `pid`: into the cgroup2 directory
/// through `cgroup.procs` only where it was not born there (clone3 refused), and into the v1
/// hierarchies through `tasks`, by its tid, only where it does not join them itself (in a
/// new user namespace). It is single-threaded until execve, so its one thread is the process.
fn place_in_cgroup(cgroup: &Cgroup, pid: Pid, born_in_cgroup2: bool, joins_v1: bool) -> Result<()> {
    if !born_in_cgroup2 {
        cgroup.add_pid_to_cgroup2(pid)?;
    }
    if !joins_v1 {
        cgroup.add_tid_to_tasks(pid)?;
    }
    Ok(())
}
// ANCHOR_END: place_in_cgroup

/// The pipes on which the container process asks the runtime to run the `prestart` and
/// `createRuntime` hooks (runc's "procHooks" message): after its mounts, before pivot_root.
struct HooksSync {
    ask: (OwnedFd, OwnedFd),
    answer: (OwnedFd, OwnedFd),
}

impl HooksSync {
    /// Pipes when the spec has such hooks; none otherwise.
    fn new(spec: &Spec) -> Result<Option<HooksSync>> {
        if hooks::of(spec, hooks::Kind::Prestart).is_empty()
            && hooks::of(spec, hooks::Kind::CreateRuntime).is_empty()
        {
            return Ok(None);
        }
        let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe2 (hooks)");
        Ok(Some(HooksSync {
            ask: pipe()?,
            answer: pipe()?,
        }))
    }

    /// The container's ends: where it asks, where it reads the answer.
    fn child_ends(&self) -> (std::os::fd::RawFd, std::os::fd::RawFd) {
        (self.ask.1.as_raw_fd(), self.answer.0.as_raw_fd())
    }

    /// The runtime's side, after clone: waits for the container to ask, runs the hooks and
    /// answers. If the container fails first, its end closes and nothing runs.
    fn serve(self, spec: &Spec, state: &hooks::HookState) -> Result<()> {
        let HooksSync { ask, answer } = self;
        drop(ask.1);
        let mut asked = std::fs::File::from(ask.0);
        let mut byte = [0u8];
        if !matches!(std::io::Read::read(&mut asked, &mut byte), Ok(1)) {
            return Ok(());
        }
        let result = hooks::run_all(spec, hooks::Kind::Prestart, state)
            .and_then(|()| hooks::run_all(spec, hooks::Kind::CreateRuntime, state));
        let reply = if result.is_ok() { b"0" } else { b"1" };
        let _ = std::io::Write::write_all(&mut std::fs::File::from(answer.1), reply);
        result
    }
}

use std::os::unix::fs::OpenOptionsExt;

fn new_state(id: &str, bundle: &Path, spec: &Spec, launched: &Launched) -> Result<State> {
    let pid = launched.pid.as_raw();
    let bundle = bundle.canonicalize()?;
    Ok(State {
        oci_version: OCI_VERSION.into(),
        id: id.into(),
        status: Status::Created,
        pid,
        rootfs: spec::rootfs(spec, &bundle)?,
        bundle,
        annotations: spec.annotations().clone().unwrap_or_default(),
        created: now_rfc3339(),
        pid_start_time: process_start_time(pid).unwrap_or(0),
        cgroup_paths: launched.cgroup.paths(),
        joined_cgroup_paths: launched.cgroup.joined(),
    })
}

/// `create`: everything but the exec. The process waits on the exec fifo. With
/// `process.terminal`, the pty master is sent to the unix socket at `console_socket`, as
/// runc's `--console-socket` does.
pub fn create(root: &Path, id: &str, bundle: &Path, console_socket: Option<&Path>) -> Result<()> {
    validate_id(id)?;
    let (mut launched, spec) = launch(
        root,
        id,
        bundle,
        Mode::Create,
        None,
        crate::rootless::joined(),
    )?;
    if let Some(master) = launched.console.take() {
        let result = (|| -> Result<()> {
            let path = console_socket
                .context("process.terminal is true: pass --console-socket to receive the pty")?;
            let stream = std::os::unix::net::UnixStream::connect(path)
                .with_context(|| format!("connecting to {}", path.display()))?;
            let fds = [master.as_raw_fd()];
            nix::sys::socket::sendmsg::<()>(
                stream.as_raw_fd(),
                &[std::io::IoSlice::new(b"pty")],
                &[nix::sys::socket::ControlMessage::ScmRights(&fds)],
                nix::sys::socket::MsgFlags::empty(),
                None,
            )
            .context("sending the pty master to the console socket")?;
            Ok(())
        })();
        if let Err(err) = result {
            let _ = nix::sys::signal::kill(launched.pid, Signal::SIGKILL);
            let _ = ns::wait_for(launched.pid);
            forget(root, id);
            return Err(err);
        }
    }
    let state = new_state(id, bundle, &spec, &launched)?;
    // The process outlives us: so does its cgroup, which `delete` removes by path.
    let Launched { cgroup, .. } = launched;
    std::mem::forget(cgroup);
    state.save(root)
}

/// `start`: lets a created container exec its program, then runs the poststart hooks.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let state = State::load(root, id)?;
    if state.status != Status::Created {
        bail!("container {id:?} is {:?}, not created", state.status);
    }
    let fifo = State::dir(root, id).join("exec.fifo");
    explain::step(
        "let the container exec",
        || format!("open({fifo:?}, O_RDONLY); read()"),
        Chapter::RuntimeSpec,
    );
    let mut file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .with_context(|| format!("opening {}", fifo.display()))?;
    // The writer opens its end as soon as we have opened ours; wait for its byte, or for the
    // process to die (then nobody will ever write).
    let mut byte = [0u8; 1];
    loop {
        match std::io::Read::read(&mut file, &mut byte) {
            Ok(1) => break,
            Ok(_) | Err(_) => {
                if process_start_time(state.pid) != Some(state.pid_start_time) {
                    // Gone: but it may have written its byte, exec'd and run to its end since
                    // the read above; the byte then waits in the fifo.
                    if matches!(std::io::Read::read(&mut file, &mut byte), Ok(1)) {
                        break;
                    }
                    let _ = std::fs::remove_file(&fifo);
                    bail!("container {id:?} exited before it could start");
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }
    std::fs::remove_file(&fifo).with_context(|| format!("removing {}", fifo.display()))?;
    let spec = saved_config(root, id)?;
    let mut running = state;
    running.status = Status::Running;
    hooks::run_all_warning(&spec, hooks::Kind::Poststart, &running.hook_state());
    Ok(())
}

impl State {
    /// This state as the hooks read it.
    fn hook_state(&self) -> hooks::HookState {
        hooks::HookState {
            oci_version: self.oci_version.clone(),
            id: self.id.clone(),
            status: serde_json::to_value(self.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            pid: if self.status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: self.bundle.clone(),
            annotations: self.annotations.clone(),
        }
    }
}

/// Maps a failed runtime verb to runc's exit status, 1, keeping its message. (`minidock
/// run`, the Docker-like command, keeps Docker's 125/126/127.)
pub fn runc_failure(err: anyhow::Error) -> anyhow::Error {
    Exit::new(1, format!("{err:#}")).into()
}

pub fn state(root: &Path, id: &str) -> Result<serde_json::Value> {
    Ok(State::load(root, id)?.oci_json())
}

/// Parses a signal as Docker does (`KILL`, `SIGKILL`, `9`, `SIGRTMIN+3`, `37`): see
/// [`signal::Signal::parse`].
pub fn parse_signal(text: &str) -> Result<signal::Signal> {
    signal::Signal::parse(text)
}

/// `kill`: sends `signal` to the container's first process.
pub fn kill(root: &Path, id: &str, signal: signal::Signal) -> Result<()> {
    let state = State::load(root, id)?;
    if state.status == Status::Stopped {
        bail!("container {id:?} is not running");
    }
    explain::step(
        "signal the container",
        || format!("kill({}, {signal})", state.pid),
        Chapter::RuntimeSpec,
    );
    signal
        .send(state.pid)
        .with_context(|| format!("kill({}, {signal})", state.pid))
}

/// `delete`: removes the cgroup and the state of a stopped (or, with `force`, any) container.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let state = State::load(root, id)?;
    match state.status {
        Status::Stopped | Status::Created => {}
        _ if force => {}
        status => bail!("container {id:?} is {status:?}: stop it first, or use --force"),
    }
    let spec = saved_config(root, id).ok();
    remove_cgroups(&state, spec.as_ref())?;
    std::fs::remove_dir_all(State::dir(root, id))
        .with_context(|| format!("removing the state of {id:?}"))?;
    if let Some(spec) = spec {
        let mut stopped = state;
        stopped.status = Status::Stopped;
        hooks::run_all_warning(&spec, hooks::Kind::Poststop, &stopped.hook_state());
    }
    Ok(())
}

/// runc's warning when a `linux.cgroupsPath` names a cgroup that already holds processes
/// (another container's, usually): the two then share limits, and their teardown must spare
/// each other (see [`remove_cgroups`]).
fn warn_if_not_empty(cgroup: &Cgroup) {
    let joined = cgroup.joined();
    let count = joined
        .iter()
        .map(|dir| cgroup::read_procs(dir).map_or(0, |pids| pids.len()))
        .max()
        .unwrap_or(0);
    if count > 0 {
        eprintln!("minidock: warning: container's cgroup is not empty: {count} process(es) found");
    }
}

/// Stops the container's processes and removes its cgroups, as runc's `delete` does. With a
/// PID namespace of its own, SIGKILL to its init ends all of them, and nothing else is killed:
/// each cgroup is removed once empty, and one that still holds processes of another container
/// (a `linux.cgroupsPath` shared by two containers) is left, with a warning for those this
/// container made; a cgroup it joined (one that existed before `create`) is removed only when
/// empty, and never below. Without one, every process in the cgroups this container made is
/// killed, and the cgroups it joined are left as they are.
fn remove_cgroups(state: &State, spec: Option<&Spec>) -> Result<()> {
    let own_pid_ns = spec.is_some_and(|spec| {
        spec::namespaces(spec)
            .iter()
            .any(|(kind, path)| *kind == Namespace::Pid && path.is_none())
    });
    let mut pid_ns = None;
    if state.status != Status::Stopped {
        let init = Pid::from_raw(state.pid);
        pid_ns = cgroup::teardown::pid_namespace(init);
        let _ = nix::sys::signal::kill(init, Signal::SIGKILL);
    }
    let (joined, made): (Vec<PathBuf>, Vec<PathBuf>) = state
        .cgroup_paths
        .iter()
        .cloned()
        .partition(|dir| state.joined_cgroup_paths.contains(dir));
    if !own_pid_ns {
        return cgroup::remove_paths(&made);
    }
    cgroup::teardown::wait_pid_namespace_gone(&joined, pid_ns)?;
    for dir in cgroup::teardown::remove_after_pid_namespace(&made, pid_ns)? {
        eprintln!(
            "minidock: warning: leaving cgroup {}: it holds processes of another container",
            dir.display()
        );
    }
    for dir in joined {
        // runc removes a joined cgroup too once it is empty; busy (EBUSY) it stays, silently.
        let _ = std::fs::remove_dir(dir);
    }
    Ok(())
}

/// Starts a container from a bundle at once (no created state), as a child of the calling
/// process, with the caller's stdin/stdout/stderr. This is what `run` and minidock's shim
/// use; the caller waits with [`crate::ns::wait_for`] and then calls [`forget`].
pub fn spawn(root: &Path, id: &str, bundle: &Path) -> Result<Launched> {
    validate_id(id)?;
    Ok(launch(root, id, bundle, Mode::Run, None, false)?.0)
}

/// Descriptors to give the container as its stdin, stdout and stderr instead of the caller's
/// (`None` keeps the caller's). minidock's shim passes pipes, to read the container's output.
#[derive(Debug, Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

impl Stdio {
    fn raw(&self) -> [Option<std::os::fd::RawFd>; 3] {
        [&self.stdin, &self.stdout, &self.stderr].map(|fd| fd.as_ref().map(|fd| fd.as_raw_fd()))
    }
}

/// [`spawn`] with the container's stdio connected to `stdio`. The descriptors are installed as
/// 0, 1 and 2 in the container process just before execve, so the runtime's own messages
/// (`--explain`, errors) still reach the caller's terminal. The caller keeps its copies: close
/// the write ends of output pipes after this returns, or their reader never sees end-of-file.
pub fn spawn_with_stdio(root: &Path, id: &str, bundle: &Path, stdio: &Stdio) -> Result<Launched> {
    validate_id(id)?;
    Ok(launch(root, id, bundle, Mode::Run, Some(stdio), false)?.0)
}

/// Removes the runtime's state of a container started with [`spawn`] once it has exited.
pub fn forget(root: &Path, id: &str) {
    let _ = std::fs::remove_dir_all(State::dir(root, id));
}

// ANCHOR: run
/// `run`: create, start and wait, in the foreground. Returns the program's exit status.
pub fn run(root: &Path, id: &str, bundle: &Path) -> Result<u8> {
    validate_id(id)?;
    let (mut launched, spec) =
        launch(root, id, bundle, Mode::Run, None, crate::rootless::joined())?;
    let bundle_abs = bundle.canonicalize().unwrap_or_else(|_| bundle.to_owned());
    let mut hook_state = hook_state(&spec, &bundle_abs, id, "running");
    hook_state.pid = launched.pid.as_raw();
    let result = (|| {
        let mut state = new_state(id, bundle, &spec, &launched)?;
        state.status = Status::Running;
        state.save(root)?;
        hooks::run_all_warning(&spec, hooks::Kind::Poststart, &state.hook_state());
        match launched.console.take() {
            Some(master) => crate::tty::proxy(master, launched.pid),
            None => ns::wait_for(launched.pid),
        }
    })();
    if result.is_err() {
        let _ = nix::sys::signal::kill(launched.pid, Signal::SIGKILL);
        let _ = ns::wait_for(launched.pid);
    }
    // The cgroup goes with `launched` (Drop kills what is left and removes it).
    drop(launched);
    forget(root, id);
    hook_state.status = "stopped".into();
    hook_state.pid = 0;
    hooks::run_all_warning(&spec, hooks::Kind::Poststop, &hook_state);
    result
}
// ANCHOR_END: run

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_names_not_paths() {
        for bad in ["", "../x", "a/b", ".hidden", "white space"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        validate_id("web-1_a.b").unwrap();
    }

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("KILL").unwrap(), signal::Signal::KILL);
        assert_eq!(parse_signal("sigterm").unwrap(), signal::Signal::TERM);
        assert_eq!(parse_signal("9").unwrap(), signal::Signal::KILL);
        assert_eq!(parse_signal("RTMIN+3").unwrap().number(), 37);
        assert!(parse_signal("NOPE").is_err());
    }
}
