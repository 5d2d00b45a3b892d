//! Containers: what `minidock run` and its friends (`ps`, `logs`, `stop`, `exec`...) do, on top
//! of the image store, overlayfs and the OCI runtime.
//!
//! The layers are the real stack's. Docker's engine turns `docker run`'s flags and the image
//! config into an OCI bundle, and a shim asks runc to run it; here:
//!
//! 1. [`create`] resolves the image in the store, mounts its unpacked layers as overlay lowers
//!    under a fresh upper dir, and writes the bundle: `config.json`, the OCI runtime spec
//!    built by [`spec`] from the image config and the flags;
//! 2. a supervisor ([`shim`]) starts the bundle with [`crate::runtime`], owns the container's
//!    stdout and stderr, writes them to the log ([`logs`]), waits, and records the exit status
//!    in `state.json` ([`state`]). For `run -d` the supervisor is a detached `minidock shim`
//!    process; in the foreground, `minidock run` supervises the container itself;
//! 3. every later command (`ps`, `stop`, `exec`, `rm`...) reads `state.json` and checks the
//!    kernel (is the pid still that process?) rather than trusting what was written; if the
//!    supervisor is gone, it finishes the supervisor's work first ([`recover`]).
//!
//! On disk, `<root>/containers/<id>/` holds `config.json` (the spec, plus the top-level `Image`
//! the image store reads to keep an image in use), `state.json`, `log`, `upper/`, `work/` and
//! `merged/` (the overlay, the bundle's `root.path`), and the `hostname`, `hosts` and
//! `resolv.conf` files bound into the container.

pub mod attach;
pub mod cli;
pub mod diff;
pub mod exec;
pub mod filter;
pub mod fs;
pub mod init;
pub mod inspect;
pub mod liveness;
pub mod logs;
pub mod monitor;
pub mod network;
pub mod pause;
pub mod prune;
pub mod recover;
pub mod rename;
pub mod shim;
pub mod spec;
pub mod state;
pub mod stats;
pub mod top;
pub mod update;
pub mod user;

pub use state::{ContainerState, Status};

use crate::cli::{Exit, code};
use crate::explain;
use crate::image::store::Store;
use crate::runtime::signal::Signal;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// Docker's CLI exits 1 when a request about an existing container fails (no such container,
/// not running, a conflict); `run` and `create` exit 125.
pub const REQUEST_FAILED: u8 = 1;

/// Where minidock keeps containers: the state root (`--root`), and the OCI runtime's own
/// state root beside it.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
    pub runtime_root: PathBuf,
}

impl Paths {
    /// The paths for `--root` (or `$MINIDOCK_ROOT`, or the defaults).
    pub fn new(cli_root: Option<&Path>) -> Paths {
        // Absolute, because the paths end up in config.json and in the shim's arguments.
        let absolute = |path: PathBuf| match std::env::current_dir() {
            Ok(cwd) if path.is_relative() => cwd.join(path),
            _ => path,
        };
        Paths {
            root: absolute(crate::state::root(cli_root)),
            runtime_root: absolute(crate::runtime::state_root(cli_root)),
        }
    }

    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// `<root>/containers/<id>`: the container's directory, which is also its OCI bundle.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.containers().join(id)
    }

    /// The lock every read-modify-write of a container's state takes, and `create` while it
    /// checks that a name is free. It lives beside `containers/`, not in it: the image store
    /// reads every entry of `containers/` as a container.
    pub fn lock(&self) -> Result<crate::state::Lock> {
        crate::state::private_dir(&self.root)?;
        crate::state::lock_file(&self.root.join("containers.lock"))
    }

    /// Every container, newest first, after recovering those whose supervisor is gone
    /// ([`recover`]): what it returns is what the kernel shows, not only what was written.
    pub fn list(&self) -> Result<Vec<ContainerState>> {
        match state::outside_snapshot(|| recover::recover_all_or_warn_read(self)) {
            Some(mut all) => {
                sort_newest_first(&mut all);
                Ok(all)
            }
            None => self.list_recorded(),
        }
    }

    /// Every container as recorded, newest first; for callers that hold [`Paths::lock`].
    pub(crate) fn list_recorded(&self) -> Result<Vec<ContainerState>> {
        let dir = self.containers();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        let mut all = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            let id = entry.file_name().to_string_lossy().into_owned();
            // A directory without state.json is a `create` that failed before its first
            // write, or an `rm` killed half way: there is nothing to show (recovery removes it).
            if let Ok(Some(state)) = ContainerState::load(self, &id) {
                all.push(state);
            }
        }
        sort_newest_first(&mut all);
        Ok(all)
    }

    // ANCHOR: resolve
    /// Finds a container as Docker does: by full ID, then by name, then by a unique ID prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<ContainerState> {
        let wanted = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        let all = self.list()?;
        if let Some(found) = all.iter().find(|c| c.id == wanted) {
            return Ok(found.clone());
        }
        if let Some(found) = all.iter().find(|c| c.name == wanted) {
            return Ok(found.clone());
        }
        let hex = !wanted.is_empty() && wanted.bytes().all(|b| b.is_ascii_hexdigit());
        let matching: Vec<&ContainerState> = if hex {
            all.iter().filter(|c| c.id.starts_with(wanted)).collect()
        } else {
            Vec::new()
        };
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(no_such_container(name_or_id)),
            _ => Err(Exit::new(
                REQUEST_FAILED,
                format!("multiple containers match the ID prefix {name_or_id:?}"),
            )
            .into()),
        }
    }
    // ANCHOR_END: resolve
}

/// Newest container first (ties by ID). Times are compared as times: RFC 3339 strings with a
/// trimmed fraction do not sort.
fn sort_newest_first(all: &mut [ContainerState]) {
    all.sort_by_cached_key(|c| {
        (
            std::cmp::Reverse(crate::state::parse_rfc3339(&c.created)),
            c.id.clone(),
        )
    });
}

pub(crate) fn no_such_container(name: &str) -> anyhow::Error {
    Exit::new(REQUEST_FAILED, format!("no such container: {name}")).into()
}

/// A new container ID: 32 random bytes as 64 hex digits, as Docker's (`ps` shows the first 12).
pub fn new_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .context("reading /dev/urandom")?;
    Ok(crate::image::store::hex(&bytes))
}

/// The 12-digit form of an ID.
pub fn short_id(id: &str) -> &str {
    &id[..id.len().min(12)]
}

// ANCHOR: validate_name
/// A container name becomes part of paths and messages, so it is held to Docker's rule:
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]+`. No `/`, no `..`, nothing a shell or a path would treat
/// specially.
pub fn validate_name(name: &str) -> Result<()> {
    let name = name.strip_prefix('/').unwrap_or(name);
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = name.len() >= 2
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !(first_ok && rest_ok) {
        return Err(Exit::new(
            REQUEST_FAILED,
            format!(
                "invalid container name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, \
                 at least 2 characters"
            ),
        )
        .into());
    }
    Ok(())
}
// ANCHOR_END: validate_name

/// A name like Docker's `focused_turing`: an adjective and a scientist, then a number if
/// that is taken.
fn generate_name(taken: &dyn Fn(&str) -> bool, seed: &str) -> String {
    const ADJECTIVES: [&str; 24] = [
        "admiring", "brave", "calm", "clever", "dazzling", "eager", "elegant", "festive",
        "focused", "gifted", "happy", "jolly", "keen", "kind", "lucid", "modest", "nifty",
        "quirky", "relaxed", "serene", "sharp", "tender", "vibrant", "zealous",
    ];
    const SCIENTISTS: [&str; 24] = [
        "babbage", "bardeen", "curie", "dijkstra", "einstein", "euler", "feynman", "gauss",
        "hopper", "hypatia", "johnson", "kepler", "knuth", "lamarr", "lovelace", "meitner",
        "noether", "pascal", "ritchie", "shannon", "thompson", "torvalds", "turing", "wozniak",
    ];
    // The ID is random: its digits pick the words.
    let number = u64::from_str_radix(&seed[..seed.len().min(8)], 16).unwrap_or(0);
    let base = format!(
        "{}_{}",
        ADJECTIVES[(number % 24) as usize],
        SCIENTISTS[(number / 24 % 24) as usize]
    );
    let mut candidate = base.clone();
    let mut n = 1;
    while taken(&candidate) {
        candidate = format!("{base}{n}");
        n += 1;
    }
    candidate
}

/// What `create` needs besides the flags that shape the spec.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The image, as the user named it.
    pub image: String,
    pub name: Option<String>,
    pub run: spec::RunOptions,
    /// The calling process goes on to supervise the container (`run`): it stays recorded as
    /// the container's supervisor, so a `run` killed before the container starts leaves a
    /// container that recovery can tell apart from a plain `create`.
    pub supervised: bool,
    /// A build's `RUN` step ([`ContainerState::build_step`]).
    pub build_step: bool,
}

/// Removes a container's directory on an error during `create`, unless disarmed.
struct CreateGuard<'a> {
    paths: &'a Paths,
    id: String,
    armed: bool,
}

impl Drop for CreateGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _lock = self.paths.lock();
            let _ = remove_files(self.paths, &self.id);
        }
    }
}

// ANCHOR: create
/// `minidock create` (and the first half of `run`): everything up to starting the process.
/// Returns the new container's state. Errors exit 125, as Docker's do.
pub fn create(paths: &Paths, options: &CreateOptions) -> Result<ContainerState> {
    if let Some(name) = &options.name {
        validate_name(name)?;
    }
    // Check every flag before anything is made, so bad input leaves nothing behind.
    let mut parsed = spec::ParsedOptions::parse(&options.run)?;
    let shared_etc = resolve_network(paths, &mut parsed)?;

    // Hold a lease on the store from the moment we rely on the image until config.json names
    // it: `rmi` and garbage collection wait for us.
    // The state root is 0700 (its containers hold environments and files no other user may
    // read), and an existing root with a wider mode is narrowed.
    crate::state::private_dir(&paths.root)?;
    let store = Store::open(&paths.root)?;
    let lease = store.lease()?;
    let image = store.resolve(&options.image)?;
    check_stop_signal(&image)?;
    spec::check_command(&parsed.options, &image.config)?;
    let layers = store.unpacked_layers(&image)?;
    let lowers: Vec<PathBuf> = layers.into_iter().rev().collect();

    let id = new_id()?;
    // Recover first: a killed container's name is free again once it is removed.
    recover::recover_all_or_warn(paths);
    let mut state = record_new(paths, options, &id, &image)?;
    let mut guard = CreateGuard {
        paths,
        id: id.clone(),
        armed: true,
    };
    let (built, made) = make_bundle(paths, &mut state, lowers, parsed, &image, shared_etc, lease)?;

    state.config = built.config;
    state.creating = false;
    if !options.supervised {
        state.supervisor_pid = 0;
        state.supervisor_start_time = 0;
    }
    state.save(paths)?;
    guard.armed = false;
    made.keep();
    crate::events::container(paths, &state, "create", &[]);
    Ok(state)
}
// ANCHOR_END: create

// ANCHOR: check_stop_signal
/// A stop signal that does not parse is refused now, as Docker's daemon refuses it, so
/// `stop` never has to guess.
fn check_stop_signal(image: &crate::image::store::Image) -> Result<()> {
    if let Some(text) = image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.stop_signal().as_ref())
    {
        Signal::parse(text).context("the image's STOPSIGNAL")?;
    }
    Ok(())
}
// ANCHOR_END: check_stop_signal

// ANCHOR: record_new
/// Names the container, makes its directory and writes its state, under the state lock: two
/// `create`s never take the same name. The state names this process as its creator, so a
/// `create` killed from now on leaves a container the next command's recovery removes.
fn record_new(
    paths: &Paths,
    options: &CreateOptions,
    id: &str,
    image: &crate::image::store::Image,
) -> Result<ContainerState> {
    let _lock = paths.lock()?;
    let others = paths.list_recorded()?;
    let name = match &options.name {
        Some(name) => {
            let name = name.strip_prefix('/').unwrap_or(name).to_owned();
            if let Some(other) = others.iter().find(|c| c.name == name) {
                return Err(Exit::new(
                    REQUEST_FAILED,
                    format!(
                        "Conflict. The container name \"/{name}\" is already in use by \
                         container \"{}\". You have to remove (or rename) that container to \
                         be able to reuse that name.",
                        other.id
                    ),
                )
                .into());
            }
            name
        }
        None => generate_name(&|n| others.iter().any(|c| c.name == n), id),
    };
    let dir = paths.dir(id);
    crate::state::private_dir(&paths.containers())?;
    explain::trace!(PuttingTogether: "make the container's directory"
        => "mkdir(\"{}\")", dir.display());
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&dir)
        .with_context(|| format!("mkdir {}", dir.display()))?;
    let mut state = ContainerState::new(id, &name, &options.image, image.id.as_ref());
    state.creating = true;
    state.build_step = options.build_step;
    (state.supervisor_pid, state.supervisor_start_time) = self::state::me();
    state.config.auto_remove = options.run.auto_remove;
    if let Err(err) = state.save(paths) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(err);
    }
    Ok(state)
}
// ANCHOR_END: record_new

// ANCHOR: make_bundle
/// Makes the bundle: the overlay's directories and mount over Docker's init layer and the
/// image's `lowers`, the volumes, the `/etc` files and `config.json`; the store's `lease`
/// ends once `config.json` names the image.
fn make_bundle<'a>(
    paths: &'a Paths,
    state: &mut ContainerState,
    lowers: Vec<PathBuf>,
    parsed: spec::ParsedOptions,
    image: &crate::image::store::Image,
    shared_etc: Option<ContainerState>,
    lease: crate::image::store::Lease,
) -> Result<(spec::Built, crate::volume::Made<'a>)> {
    let (id, dir) = (state.id.clone(), paths.dir(&state.id));
    // ANCHOR: create_bundle
    for sub in ["upper", "work", "merged"] {
        std::fs::create_dir(dir.join(sub))
            .with_context(|| format!("mkdir {}", dir.join(sub).display()))?;
    }
    // Docker's init layer goes between the image and the container's own changes.
    let mut lowers = lowers;
    lowers.insert(0, spec::init_layer_dir(&paths.root)?);
    state.lower_dirs = lowers;
    mount_rootfs(paths, state)?;

    let (parsed, made) = prepare_volumes(paths, parsed, &image.config, &dir)?;

    let mut built = spec::build(&parsed, &image.config, &dir, &id)?;
    match &shared_etc {
        Some(other) => share_etc_files(paths, other, &dir, &mut built)?,
        None => {
            let gateway = network::host_gateway(paths, &built.config)?;
            network::write_etc_files(&dir, &built.config, &parsed.network, gateway)?
        }
    }
    spec::write_bundle(&dir, &built.spec, image.id.as_ref())?;
    drop(lease);
    // ANCHOR_END: create_bundle
    Ok((built, made))
}
// ANCHOR_END: make_bundle

/// The container's volumes (named, anonymous, `--volumes-from`, the image's `VOLUME`), made
/// now (see [`crate::volume::prepare`]); the anonymous ones go again unless the container is
/// created after all.
fn prepare_volumes<'a>(
    paths: &'a Paths,
    parsed: spec::ParsedOptions,
    image: &oci_spec::image::ImageConfiguration,
    dir: &Path,
) -> Result<(spec::ParsedOptions, crate::volume::Made<'a>)> {
    let image_volumes = image
        .config()
        .as_ref()
        .and_then(|c| c.volumes().clone())
        .unwrap_or_default();
    let wanted = crate::volume::Wanted {
        requests: &parsed.volumes,
        volumes_from: &parsed.volumes_from,
        image_volumes: &image_volumes,
    };
    let (volumes, made) = crate::volume::prepare(paths, &wanted, &dir.join("merged"))?;
    Ok((spec::ParsedOptions { volumes, ..parsed }, made))
}

/// Checks `--network` against what exists: a bridge network by name or ID (the predefined
/// ones made on first use), or a running container for `container:NAME`, whose ID replaces
/// the name. Returns that container, whose `/etc` files this one shares.
fn resolve_network(
    paths: &Paths,
    parsed: &mut spec::ParsedOptions,
) -> Result<Option<ContainerState>> {
    match &parsed.network {
        network::Mode::Bridge(name) => {
            let net = network::find_network(&network::state_dir(paths), name)?;
            if net.driver != "bridge" {
                parsed.network = match net.driver.as_str() {
                    "host" => network::Mode::Host,
                    _ => network::Mode::None,
                };
            } else {
                parsed.network = network::Mode::Bridge(net.name);
            }
            Ok(None)
        }
        network::Mode::Container(name) => {
            let other = paths
                .resolve(name)
                .map_err(|_| Exit::new(code::FAILED, format!("No such container: {name}")))?;
            if other.observe() != Status::Running || !network::Mode::of(&other.config).own_netns() {
                return Err(Exit::new(
                    code::FAILED,
                    format!(
                        "cannot join network of a non running container: {}",
                        other.id
                    ),
                )
                .into());
            }
            parsed.network = network::Mode::Container(other.id.clone());
            Ok(Some(other))
        }
        _ => Ok(None),
    }
}

/// `--network container:NAME` shares that container's hostname, `/etc/hosts` and
/// `/etc/resolv.conf`, as Docker's: copies of its files, and its hostname in the spec.
fn share_etc_files(
    paths: &Paths,
    other: &ContainerState,
    dir: &Path,
    built: &mut spec::Built,
) -> Result<()> {
    for file in ["hostname", "hosts", "resolv.conf"] {
        let from = paths.dir(&other.id).join(file);
        let bytes = std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
        crate::state::write_atomic_unsynced_with_mode(&dir.join(file), &bytes, 0o644)?;
    }
    built.hostname = other.config.hostname.clone();
    built.config.hostname = other.config.hostname.clone();
    built.spec.set_hostname(Some(other.config.hostname.clone()));
    if let Some(process) = built.spec.process_mut() {
        let env = process.env().clone().unwrap_or_default();
        let env = env
            .into_iter()
            .map(|e| match e.strip_prefix("HOSTNAME=") {
                Some(_) => format!("HOSTNAME={}", other.config.hostname),
                None => e,
            })
            .collect();
        process.set_env(Some(env));
    }
    Ok(())
}

/// Takes container `id`'s start lock, an flock(2) on its directory: a start holds it from its
/// check that the container does not run until the container is recorded running (or its
/// start failed), so two starts at once (`minidock start` and the daemon's, two `docker
/// start`s) never launch it twice: the second finds it running ([`already_running`]). A
/// command that mounts the rootfs of a stopped container for a while (`cp`, `export`) takes
/// it to unmount ([`release_rootfs`]). Errors: no such container (removed meanwhile).
pub fn lock_start(paths: &Paths, id: &str) -> Result<crate::state::Lock> {
    let dir = paths.dir(id);
    crate::state::lock_dir(&dir).map_err(|err| {
        if dir.is_dir() {
            err
        } else {
            no_such_container(id)
        }
    })
}

/// The refusal of a start that finds the container running (a container waiting to restart
/// runs too). A detached start ([`shim::start_detached`]) takes it as done, as Docker's start
/// of a running container changes nothing and succeeds.
pub fn already_running(id: &str) -> anyhow::Error {
    Exit::new(REQUEST_FAILED, format!("container {id} is already running")).into()
}

/// Whether `err` is [`already_running`]'s refusal for container `id`, also as the shim
/// reports it back (its code and message).
pub fn is_already_running(err: &anyhow::Error, id: &str) -> bool {
    let refusal = format!("container {id} is already running");
    err.downcast_ref::<Exit>()
        .is_some_and(|e| e.code == REQUEST_FAILED && e.message == refusal)
}

/// Claims container `id` for a start: takes its start lock ([`lock_start`]) and refuses a
/// container that runs ([`already_running`]). Hold the lock until the container is recorded
/// running: the next start then finds it running.
pub fn claim_start(paths: &Paths, id: &str) -> Result<crate::state::Lock> {
    let lock = lock_start(paths, id)?;
    let state = ContainerState::load(paths, id)?.ok_or_else(|| no_such_container(id))?;
    if state.observe() == Status::Running || state.process_alive() {
        return Err(already_running(id));
    }
    Ok(lock)
}

/// Mounts the container's overlay on `merged` if it is not mounted already: lowers are the
/// image's unpacked layers, the upper dir keeps the container's own changes. The check and the
/// mount hold the containers lock, so two callers at once (a start and a `cp`) never stack two
/// overlays on `merged`: overlayfs only warns when a second mount shares an upper dir, and the
/// unmount of one would leave the other.
pub fn mount_rootfs(paths: &Paths, state: &ContainerState) -> Result<()> {
    let dir = paths.dir(&state.id);
    let merged = dir.join("merged");
    let _lock = paths.lock()?;
    // Mounted already: an overlay, or the bind of copied layers (`overlay::copy_mount`).
    if crate::overlay::mount_type(&merged)?.is_some() {
        return Ok(());
    }
    // A `--rm` container's upper dir goes with it: never flushed to disk (`volatile`). A
    // second mount of it (its start after a reboot) must first remove the kernel's marker of
    // the earlier volatile mount, or overlayfs refuses the work dir.
    let volatile = state.config.auto_remove;
    if volatile {
        let marker = dir.join("work/work/incompat/volatile");
        match std::fs::remove_dir(&marker) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", marker.display())),
        }
    }
    let mount = crate::overlay::mount_with(
        &state.lower_dirs,
        &dir.join("upper"),
        &dir.join("work"),
        &merged,
        volatile,
    )?;
    // The overlay stays mounted after this function: the container's supervisor unmounts it
    // when the container stops, or `rm` does.
    mount.leak();
    Ok(())
}

// ANCHOR: pin_network
/// Makes the container's network namespace before it starts: `--network none` is a namespace
/// with only `lo`, up, as Docker's. It is pinned at `<dir>/netns` with a bind mount (what
/// `ip netns add` does) and the spec names that path, so the runtime joins it. A bridge
/// network wires its veth into this same namespace before the container starts
/// (`network::connect`).
pub fn pin_network(paths: &Paths, id: &str) -> Result<()> {
    let pin = paths.dir(id).join(spec::NETNS_PIN);
    crate::net::netns::unpin(&pin)?;
    let netns = crate::net::netns::pin_new(&pin)?;
    netns
        .netlink()?
        .set_up(crate::net::netlink::LOOPBACK_INDEX, "lo", None)
        .context("bringing up lo in the container's network namespace")
}
// ANCHOR_END: pin_network

/// Releases the pin of the container's network namespace (the namespace itself goes when its
/// last process does).
pub fn unpin_network(paths: &Paths, id: &str) -> Result<()> {
    crate::net::netns::unpin(&paths.dir(id).join(spec::NETNS_PIN))
}

/// Unmounts the container's overlay (nothing to do when it is not mounted). Every overlay on
/// `merged` goes, should there be more than one, so none outlives the container.
pub fn unmount_rootfs(paths: &Paths, id: &str) -> Result<()> {
    let merged = paths.dir(id).join("merged");
    // Each pass removes the topmost mount; the bound only guards against a mount table that
    // does not change.
    for _ in 0..16 {
        if let Err(err) = crate::overlay::unmount(&merged) {
            // Busy (a process of ours still has a file open in it): detach it, so it disappears
            // from the mount table now and is freed when the last user closes it.
            nix::mount::umount2(&merged, nix::mount::MntFlags::MNT_DETACH)
                .with_context(|| format!("{err:#}; detaching {}", merged.display()))?;
        }
        if crate::overlay::mount_type(&merged)?.as_deref() != Some("overlay") {
            return Ok(());
        }
    }
    bail!("{} stays mounted after 16 unmounts", merged.display())
}

/// Unmounts the overlay a command mounted for a while on a stopped container (`cp`,
/// `export`), unless the container started meanwhile and runs on it: under its start lock
/// ([`lock_start`]), so no start is half way.
pub fn release_rootfs(paths: &Paths, id: &str) -> Result<()> {
    let _start = lock_start(paths, id)?;
    match ContainerState::load(paths, id)? {
        Some(state) if state.observe() == Status::Running => Ok(()),
        _ => unmount_rootfs(paths, id),
    }
}

/// The cgroup directories the runtime makes for container `id`: the ones recorded, and the
/// ones its name implies (a supervisor killed before it recorded them leaves those).
fn cgroup_dirs(state: &ContainerState) -> Vec<PathBuf> {
    let mut dirs = state.cgroup_paths.clone();
    if let Ok(layout) = crate::cgroup::detect() {
        for controller in crate::cgroup::MANAGED_CONTROLLERS {
            if let Some(found) = layout.controller(controller) {
                dirs.push(found.mount.join(crate::cgroup::PARENT).join(&state.id));
            }
        }
        if let Some(unified) = &layout.unified {
            dirs.push(unified.join(crate::cgroup::PARENT).join(&state.id));
        }
    }
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Kills whatever is left in the container's cgroups and removes them.
pub(crate) fn remove_cgroups(state: &ContainerState) -> Result<()> {
    for dir in cgroup_dirs(state) {
        crate::cgroup::remove_existing(&dir)
            .with_context(|| format!("removing cgroup {}", dir.display()))?;
    }
    Ok(())
}

// ANCHOR: remove_files
/// Removes everything a container is made of: its cgroups (killing what is left in them), the
/// runtime's state, the overlay mount, and its directory. Idempotent.
pub fn remove_files(paths: &Paths, id: &str) -> Result<()> {
    // Without a readable state.json, the cgroups its ID implies are still checked.
    let state = match ContainerState::load(paths, id) {
        Ok(Some(state)) => state,
        _ => ContainerState {
            id: id.to_owned(),
            ..ContainerState::default()
        },
    };
    remove_cgroups(&state)?;
    crate::runtime::forget(&paths.runtime_root, id);
    let dir = paths.dir(id);
    if !dir.exists() {
        return Ok(());
    }
    network::release(paths, id)?;
    unmount_rootfs(paths, id)?;
    // `merged` must be an empty directory now. If it were still a mount, a recursive removal
    // would walk into the container's files, so it is removed on its own first.
    let merged = dir.join("merged");
    match std::fs::remove_dir(&merged) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", merged.display())),
    }
    explain::trace!(PuttingTogether: "remove the container's directory"
        => "rm -r \"{}\"", dir.display());
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", dir.display())),
    }
}
// ANCHOR_END: remove_files

/// Waits until `pred` holds, checking every 10 ms, for at most `limit`. Returns whether it did.
pub(crate) fn wait_until(limit: std::time::Duration, mut pred: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if pred() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Sends `signal` to the container's process (PID 1 inside it). For SIGKILL it returns only
/// once the process is gone and its exit is recorded, as Docker's daemon waits after a kill,
/// so `ps` right after never shows it up; other signals return once delivered. A paused
/// container is thawed after the signal, as dockerd does ([`pause::thaw_after_signal`]). A
/// container waiting to restart gets no signal: its restart policy ends, as with Docker.
pub fn kill(paths: &Paths, name_or_id: &str, signal: Signal) -> Result<()> {
    let mut state = paths.resolve(name_or_id)?;
    if state.is_restarting() {
        match end_restart(paths, &state.id, signal)? {
            Some(started) => state = started,
            None => return Ok(()),
        }
    }
    if state.observe() != Status::Running || !state.process_alive() {
        return Err(Exit::new(
            REQUEST_FAILED,
            format!("container {} is not running", state.id),
        )
        .into());
    }
    // A kill by the user, whatever the signal, ends the restart policy, as moby's
    // `killWithSignal` marks the container manually stopped.
    mark_stopped_by_user(paths, &state.id)?;
    explain::trace!(PuttingTogether: "signal the container's process"
        => "kill({}, {signal})", state.pid);
    crate::events::container(
        paths,
        &state,
        "kill",
        &[("signal", signal.number().to_string())],
    );
    signal
        .send(state.pid)
        .with_context(|| format!("kill({}, {signal})", state.pid))?;
    pause::thaw_after_signal(paths, &state, signal)?;
    if signal == Signal::KILL {
        wait_gone(paths, &state)?;
    }
    Ok(())
}

/// `kill` of a container waiting to restart: there is no process to signal, and the kill
/// ends the restart policy (moby's `killWithSignal` cancels the restart's wait and sends
/// nothing). SIGKILL returns once the supervisor has recorded it exited. The stop is
/// recorded under the lock the supervisor records a restarted process under: if the process
/// was started meanwhile, its state is returned, to signal it as any running container.
fn end_restart(paths: &Paths, id: &str, signal: Signal) -> Result<Option<ContainerState>> {
    let mut restarting = false;
    let now = ContainerState::update(paths, id, |s| {
        restarting = s.restarting;
        s.has_been_manually_stopped = true;
    })?
    .ok_or_else(|| no_such_container(id))?;
    if !restarting {
        return Ok(Some(now));
    }
    explain::trace!(PuttingTogether: "no process to signal: its restart policy ends"
        => "write(\"state.json\", HasBeenManuallyStopped=true)");
    if signal == Signal::KILL {
        wait_recorded(paths, id, std::time::Duration::from_secs(10));
    }
    Ok(None)
}

/// Waits until the container's process is gone and its exit recorded (by its supervisor, or
/// by recovery when the supervisor is gone too).
fn wait_gone(paths: &Paths, state: &ContainerState) -> Result<()> {
    let limit = std::time::Duration::from_secs(10);
    wait_until(limit, || !state.process_alive());
    match wait_recorded(paths, &state.id, limit) {
        Some(last) if last.observe() == Status::Running => Err(Exit::new(
            REQUEST_FAILED,
            format!(
                "container {} was sent SIGKILL but its exit was not recorded within {} seconds",
                state.id,
                limit.as_secs()
            ),
        )
        .into()),
        Some(last) if last.observe() == Status::Dead => recover::recover(paths, &state.id),
        _ => Ok(()),
    }
}

/// After the container's process is gone, its supervisor records the exit; wait for that (or
/// for the supervisor to turn out dead too).
fn wait_recorded(paths: &Paths, id: &str, limit: std::time::Duration) -> Option<ContainerState> {
    let mut last = None;
    wait_until(limit, || match ContainerState::load(paths, id) {
        Ok(Some(state)) => {
            let done = state.observe() != Status::Running;
            last = Some(state);
            done
        }
        _ => true,
    });
    last
}

/// Docker's refusal of what needs the container's process while its restart policy waits
/// to start it again (`exec`, `pause`, `top`): a conflict (409 through the Engine API).
pub fn restarting(id: &str) -> anyhow::Error {
    let message = format!("Container {id} is restarting, wait until the container is running");
    Exit::new(REQUEST_FAILED, message).into()
}

/// Records that a user stopped the container (`stop`, `kill`, `rm -f`), before any signal:
/// its supervisor then records the exit instead of restarting it (moby's
/// `HasBeenManuallyStopped`).
fn mark_stopped_by_user(paths: &Paths, id: &str) -> Result<()> {
    ContainerState::update(paths, id, |s| s.has_been_manually_stopped = true)?;
    Ok(())
}

// ANCHOR: stop
/// `stop`: `signal` (`stop -s`; by default the container's stop signal, else SIGTERM), then
/// SIGKILL after `timeout` (by default the container's `--stop-timeout`, else 10 seconds; a
/// negative one never kills). PID 1 of a PID namespace only gets the signals it has a handler
/// for (pid_namespaces(7)), so a program that never installed one for SIGTERM (`sleep`) only
/// stops at the SIGKILL, as with Docker. The stop is recorded first, so a restart policy ends
/// (a container waiting to restart stops at once).
pub fn stop(
    paths: &Paths,
    name_or_id: &str,
    timeout: Option<std::time::Duration>,
    signal: Option<Signal>,
) -> Result<()> {
    let state = paths.resolve(name_or_id)?;
    if state.observe() != Status::Running {
        return Ok(());
    }
    // A negative --stop-timeout waits for the process however long it takes, as Docker's.
    let timeout = timeout.unwrap_or_else(|| match state.config.stop_timeout.unwrap_or(10) {
        seconds if seconds < 0 => std::time::Duration::from_secs(u64::from(u32::MAX)),
        seconds => std::time::Duration::from_secs(seconds as u64),
    });
    let signal = match signal {
        Some(signal) => signal,
        None => stop_signal(&state)?,
    };
    mark_stopped_by_user(paths, &state.id)?;
    if state.process_alive() {
        signal_then_kill(paths, &state, signal, timeout);
    }
    wait_recorded(paths, &state.id, std::time::Duration::from_secs(10));
    crate::events::container(paths, &state, "stop", &[]);
    Ok(())
}
// ANCHOR_END: stop

// ANCHOR: signal_then_kill
/// Sends `signal` and waits up to `timeout` for the process to exit; then SIGKILL, which
/// cannot be caught, ignored or blocked. A frozen container is thawed after each signal as
/// dockerd thaws it ([`pause::thaw_after_signal`]), so it can handle the signal or die.
fn signal_then_kill(
    paths: &Paths,
    state: &ContainerState,
    signal: Signal,
    timeout: std::time::Duration,
) {
    let pid = state.pid;
    explain::trace!(PuttingTogether: "ask the container to stop" => "kill({pid}, {signal})");
    crate::events::container(
        paths,
        state,
        "kill",
        &[("signal", signal.number().to_string())],
    );
    let _ = signal.send(pid);
    let _ = pause::thaw_after_signal(paths, state, signal);
    if !wait_until(timeout, || !state.process_alive()) {
        explain::trace!(PuttingTogether: "it did not stop in time: kill it"
            => "kill({pid}, SIGKILL)");
        crate::events::container(paths, state, "kill", &[("signal", "9".to_owned())]);
        let _ = Signal::KILL.send(pid);
        let _ = pause::thaw_after_signal(paths, state, Signal::KILL);
        wait_until(std::time::Duration::from_secs(10), || {
            !state.process_alive()
        });
    }
}
// ANCHOR_END: signal_then_kill

// ANCHOR: stop_signal
/// The signal `stop` sends first: the container's `StopSignal` (from the image's
/// `STOPSIGNAL`), SIGTERM when it has none.
pub fn stop_signal(state: &ContainerState) -> Result<Signal> {
    match state.config.stop_signal.as_str() {
        "" => Ok(Signal::TERM),
        text => Signal::parse(text)
            .with_context(|| format!("the stop signal of container {}", state.id)),
    }
}
// ANCHOR_END: stop_signal

/// `rm`: removes a stopped container; with `force`, kills a running one first.
pub fn remove(paths: &Paths, name_or_id: &str, force: bool) -> Result<()> {
    remove_with_volumes(paths, name_or_id, force, false)
}

/// `rm [-f] [-v]`: [`remove`], and with `volumes` its anonymous volumes that no other
/// container uses (named ones stay, as with Docker).
pub fn remove_with_volumes(
    paths: &Paths,
    name_or_id: &str,
    force: bool,
    volumes: bool,
) -> Result<()> {
    let state = paths.resolve(name_or_id)?;
    if state.observe() == Status::Running {
        if !force {
            return Err(Exit::new(REQUEST_FAILED, remove_refusal(&state)).into());
        }
        mark_stopped_by_user(paths, &state.id)?;
        if state.process_alive() {
            crate::events::container(paths, &state, "kill", &[("signal", "9".to_owned())]);
            let _ = Signal::KILL.send(state.pid);
            let _ = pause::thaw_after_signal(paths, &state, Signal::KILL);
            wait_until(std::time::Duration::from_secs(10), || {
                !state.process_alive()
            });
        }
        wait_recorded(paths, &state.id, std::time::Duration::from_secs(10));
    }
    // A supervisor may still be between recording the exit and exiting (unmounting, or
    // removing an --rm container itself): removal is idempotent, so both may go ahead.
    let _lock = paths.lock()?;
    let existed = paths.dir(&state.id).exists();
    remove_files(paths, &state.id)?;
    if existed {
        crate::events::container(paths, &state, "destroy", &[]);
    }
    if volumes {
        crate::volume::remove_anonymous(paths, &state)?;
    }
    Ok(())
}

/// dockerd's refusal to remove a running container without force (its 409), naming the
/// state: `You cannot remove a running container ID. Stop the container before attempting
/// removal or force remove`; a paused one is to be unpaused first, as its words say.
pub fn remove_refusal(state: &ContainerState) -> String {
    let shown = match filter::state_name(state) {
        "running" if state.restarting => "restarting",
        name => name,
    };
    let procedure = if shown == "paused" {
        "Unpause and then stop the container before attempting removal or force remove"
    } else {
        "Stop the container before attempting removal or force remove"
    };
    format!(
        "You cannot remove a {shown} container {}. {procedure}",
        state.id
    )
}

/// The words of dockerd's refusal to start a paused container (its 409).
pub const START_PAUSED: &str = "cannot start a paused container, try unpause instead";

/// Refuses the start of a paused container, as dockerd does (exit 1; the API's 409) rather
/// than taking it as already running.
pub fn check_not_paused(state: &ContainerState) -> Result<()> {
    if pause::is_paused(state) {
        return Err(Exit::new(REQUEST_FAILED, START_PAUSED).into());
    }
    Ok(())
}

/// `restart`: stops the container as [`stop`] does (when it runs), starts it with `start`
/// (given its ID), and records `restart` after the `start`, as dockerd does.
pub fn restart(
    paths: &Paths,
    name_or_id: &str,
    timeout: Option<std::time::Duration>,
    signal: Option<Signal>,
    start: impl FnOnce(&str) -> Result<()>,
) -> Result<()> {
    stop(paths, name_or_id, timeout, signal)?;
    let state = paths.resolve(name_or_id)?;
    start(&state.id)?;
    crate::events::container(paths, &state, "restart", &[]);
    Ok(())
}

/// `wait`: blocks until the container stops, and returns its exit code.
pub fn wait(paths: &Paths, name_or_id: &str) -> Result<i32> {
    let state = paths.resolve(name_or_id)?;
    let id = state.id.clone();
    loop {
        match ContainerState::load(paths, &id)? {
            // Removed meanwhile (`--rm`, or `rm -f` from elsewhere).
            None => return Err(no_such_container(name_or_id)),
            // Its supervisor died while we waited: recover it, and read it again.
            Some(state) if recover::decide(&state) != recover::Action::Keep => {
                recover::recover(paths, &id)?;
                continue;
            }
            Some(state) => match state.observe() {
                Status::Running => {}
                Status::Created if state.supervisor_alive() => {}
                Status::Dead => {
                    bail!("container {id} died without its exit status (its supervisor was killed)")
                }
                _ => return Ok(state.exit_code),
            },
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_not_paths() {
        for bad in [
            "",
            "a",
            "../x",
            "a/b",
            ".hidden",
            "-x",
            "white space",
            "x\0y",
            "é1",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        for good in ["web", "web-1_a.b", "/web", "1a"] {
            validate_name(good).unwrap();
        }
    }

    #[test]
    fn generated_names_are_valid_and_free() {
        let id = new_id().unwrap();
        assert_eq!(id.len(), 64);
        let first = generate_name(&|_| false, &id);
        validate_name(&first).unwrap();
        let second = generate_name(&|n| n == first, &id);
        assert_eq!(second, format!("{first}1"));
    }
}
