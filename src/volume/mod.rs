//! Volumes: directories the engine keeps apart from every container's filesystem, so that
//! their data outlives the containers that use them, as Docker's `local` volume driver does.
//!
//! A volume is a directory `<root>/volumes/<name>/_data` and its metadata
//! `<root>/volumes/<name>/volume.json`, which is Docker's API `Volume` (`Name`, `Driver`,
//! `Mountpoint`, `CreatedAt`, `Labels`, `Options`, `Scope`). A container gets it as a plain
//! bind mount of `_data` on its path: there is nothing more to a volume at run time, which is
//! why `--volumes-from` copies nothing (it binds the same directories again) and why a volume
//! survives `rm` (the container's directory never held it).
//!
//! - **Named** volumes (`-v NAME:/path`, `volume create`) are made on first use.
//! - **Anonymous** volumes (`-v /path`, the image's `VOLUME`, `--mount` without a source) get
//!   a random 64-hex name and the label `com.docker.volume.anonymous`, as Docker 23 and later
//!   label them; `run --rm` and `rm -v` remove them, and `volume prune` removes only them
//!   unless `-a` is given (Docker 23's rule: API 1.42 and later).
//! - **Copy-up**: a new, empty volume mounted over a path that has content in the image gets
//!   that content first (`nocopy`, `volume-nocopy` turn it off).
//! - `volume create --opt type=...,device=...,o=...`: the local driver mounts that filesystem
//!   on `_data` when a container using the volume starts, and unmounts it when the last one
//!   stops (or when recovery finds its supervisor dead).

pub mod cli;
pub mod parse;

pub use parse::{
    MountKind, MountRequest, parse_mount_flag, parse_tmpfs_flag, parse_volume_flag,
    parse_volumes_from,
};

use crate::cli::Exit;
use crate::container::{ContainerState, Paths, Status};
use crate::explain::{self, Chapter};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The only volume driver: volumes are directories in the state root.
pub const DRIVER: &str = "local";

/// The label Docker 23 and later put on anonymous volumes; `volume prune` without `-a` removes
/// only the volumes that carry it.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The local driver's `--opt` keys.
const DRIVER_OPTIONS: [&str; 3] = ["type", "device", "o"];

/// Docker's API `Volume` (`GET /volumes/{name}`), as `volume inspect` prints it (keys in this
/// order; `Labels` and `Options` are `null` when empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    /// RFC 3339, seconds, UTC.
    pub created_at: String,
    pub driver: String,
    pub labels: Option<BTreeMap<String, String>>,
    /// The `_data` directory, absolute.
    pub mountpoint: String,
    pub name: String,
    /// The local driver's options (`type`, `device`, `o`).
    pub options: Option<BTreeMap<String, String>>,
    pub scope: String,
}

impl Volume {
    /// Whether Docker counts it as anonymous (it carries [`ANONYMOUS_LABEL`]).
    pub fn anonymous(&self) -> bool {
        self.labels
            .as_ref()
            .is_some_and(|l| l.contains_key(ANONYMOUS_LABEL))
    }

    /// The driver's options, when there are any: a filesystem to mount on `_data`.
    fn driver_options(&self) -> Option<&BTreeMap<String, String>> {
        self.options.as_ref().filter(|o| !o.is_empty())
    }
}

/// A refusal of a request about a volume (Docker's daemon answers; the CLI exits 1).
fn refused(message: String) -> anyhow::Error {
    Exit::new(crate::container::REQUEST_FAILED, message).into()
}

/// The volumes of one state root: `<root>/volumes`.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    lock: PathBuf,
}

impl Store {
    /// The volumes of state root `root` (nothing is made until a volume is created).
    pub fn new(root: &Path) -> Store {
        Store {
            dir: root.join("volumes"),
            lock: root.join("volumes.lock"),
        }
    }

    /// The lock every change of the volumes takes (create, remove, mount, unmount).
    fn lock(&self) -> Result<crate::state::Lock> {
        crate::state::lock_file(&self.lock)
    }

    /// `<root>/volumes/<name>/_data`, what containers bind.
    pub fn data(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    fn metadata(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("volume.json")
    }

    /// The volume `name`, or `None` when there is none.
    pub fn find(&self, name: &str) -> Result<Option<Volume>> {
        if parse::check_volume_name(name).is_err() {
            return Ok(None);
        }
        let path = self.metadata(name);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("reading {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The volume `name`; Docker's "no such volume" (exit 1) when there is none.
    pub fn get(&self, name: &str) -> Result<Volume> {
        self.find(name)?
            .ok_or_else(|| refused(format!("get {name}: no such volume")))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("listing {}", self.dir.display())),
        };
        let mut all = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", self.dir.display()))?;
            if let Some(volume) = self.find(&entry.file_name().to_string_lossy())? {
                all.push(volume);
            }
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    // ANCHOR: create
    /// Creates volume `name` (an existing one is returned as it is, as Docker's `volume
    /// create` does): `_data` (mode 0755, as Docker's), then `volume.json`, written whole.
    /// Returns the volume and whether it is new. `options` are the local driver's (`type`
    /// and `device` are both needed, `o` is optional).
    pub fn create(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<(Volume, bool)> {
        parse::check_volume_name(name)?;
        check_driver_options(name, &options)?;
        let _lock = self.lock()?;
        if let Some(existing) = self.find(name)? {
            return Ok((existing, false));
        }
        crate::state::private_dir(&self.dir)?;
        let data = self.data(name);
        explain::step(
            "make the volume's directory",
            || format!("mkdir(\"{}\")", data.display()),
            Chapter::Volumes,
        );
        std::fs::create_dir_all(&data).with_context(|| format!("mkdir {}", data.display()))?;
        let now = std::time::SystemTime::now();
        let seconds = now.duration_since(std::time::UNIX_EPOCH).map_or(now, |d| {
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(d.as_secs())
        });
        let volume = Volume {
            created_at: crate::state::rfc3339(seconds),
            driver: DRIVER.into(),
            labels: (!labels.is_empty()).then_some(labels),
            mountpoint: data.to_string_lossy().into_owned(),
            name: name.to_owned(),
            options: (!options.is_empty()).then_some(options),
            scope: "local".into(),
        };
        let json = serde_json::to_vec_pretty(&volume)?;
        crate::state::write_atomic(&self.metadata(name), &json)?;
        crate::events::volume(self.state_root(), name, DRIVER, "create", &[]);
        Ok((volume, true))
    }
    // ANCHOR_END: create

    /// Removes volume `name` and its data. `users` are the containers that use it: while
    /// there is one, the removal is refused with Docker's message (exit 1).
    pub fn remove(&self, name: &str, users: &[String]) -> Result<()> {
        let driver = self.remove_unrecorded(name, users)?;
        crate::events::volume(self.state_root(), name, &driver, "destroy", &[]);
        Ok(())
    }

    /// [`Store::remove`] without the `destroy` event (a prune records only its `prune`, as
    /// dockerd's); returns the volume's driver.
    pub fn remove_unrecorded(&self, name: &str, users: &[String]) -> Result<String> {
        let _lock = self.lock()?;
        let volume = self
            .find(name)?
            .ok_or_else(|| refused(format!("get {name}: no such volume")))?;
        if !users.is_empty() {
            return Err(refused(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        unmount_data(&volume)?;
        let dir = self.dir.join(name);
        explain::step(
            "remove the volume",
            || format!("rm -r \"{}\"", dir.display()),
            Chapter::Volumes,
        );
        // The metadata goes first: a removal cut short leaves no half volume that looks whole.
        match std::fs::remove_file(self.metadata(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", dir.display())),
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", dir.display())),
        }
        Ok(volume.driver)
    }

    /// The state root the volumes are in.
    fn state_root(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }
}

/// The local driver's checks of `--opt`, with Docker's messages.
fn check_driver_options(name: &str, options: &BTreeMap<String, String>) -> Result<()> {
    if let Some(key) = options
        .keys()
        .find(|k| !DRIVER_OPTIONS.contains(&k.as_str()))
    {
        return Err(refused(format!("create {name}: invalid option: {key:?}")));
    }
    if options.is_empty() {
        return Ok(());
    }
    for needed in ["type", "device"] {
        if options.get(needed).is_none_or(|v| v.is_empty()) {
            return Err(refused(format!(
                "create {name}: missing required option: {needed:?}"
            )));
        }
    }
    Ok(())
}

/// Which containers use which volume: volume name to container IDs, every container counted
/// whatever its state (Docker refuses to remove a volume a stopped container still names).
pub fn users(containers: &[ContainerState]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for container in containers {
        for mount in &container.config.mounts {
            if mount.kind == "volume" && !mount.name.is_empty() {
                out.entry(mount.name.clone())
                    .or_default()
                    .push(container.id.clone());
            }
        }
    }
    out
}

/// The volume names a container uses.
fn volume_names(state: &ContainerState) -> impl Iterator<Item = &str> {
    state
        .config
        .mounts
        .iter()
        .filter(|m| m.kind == "volume" && !m.name.is_empty())
        .map(|m| m.name.as_str())
}

// ANCHOR: copy_up
/// Docker's copy-up (`copyExistingContents`): when the new volume is empty and the image has
/// a directory at the mount's path, its content is copied in, with owners, modes, times and
/// symlinks as they are (`cp -a`, which follows no symlink below the top), and the volume's
/// root takes that directory's owner and mode. The path is resolved inside the rootfs, where
/// the image's symlinks cannot lead out.
fn copy_up(rootfs: &Path, container_path: &str, data: &Path) -> Result<()> {
    let source = crate::runtime::mounts::secure_join(rootfs, Path::new(container_path))?;
    let Ok(meta) = std::fs::symlink_metadata(&source) else {
        return Ok(());
    };
    let empty = std::fs::read_dir(data)
        .with_context(|| format!("reading {}", data.display()))?
        .next()
        .is_none();
    if !meta.is_dir() || !empty {
        return Ok(());
    }
    explain::step(
        "copy the image's files into the new volume",
        || format!("cp -a \"{}/.\" \"{}\"", source.display(), data.display()),
        Chapter::Volumes,
    );
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(source.join("."))
        .arg(data)
        .output()
        .context("running cp -a for the copy-up")?;
    if !out.status.success() {
        anyhow::bail!(
            "copying {container_path} of the image into the volume: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    use std::os::unix::fs::MetadataExt;
    std::os::unix::fs::chown(data, Some(meta.uid()), Some(meta.gid()))
        .with_context(|| format!("chown {}", data.display()))?;
    std::fs::set_permissions(
        data,
        std::os::unix::fs::PermissionsExt::from_mode(meta.mode() & 0o7777),
    )
    .with_context(|| format!("chmod {}", data.display()))
}
// ANCHOR_END: copy_up

/// What [`prepare`] was given: the container's own mount requests, `--volumes-from`, and the
/// image's `VOLUME` paths.
pub struct Wanted<'a> {
    pub requests: &'a [MountRequest],
    pub volumes_from: &'a [(String, Option<bool>)],
    pub image_volumes: &'a [String],
}

// ANCHOR: spec_mount
/// The runtime-spec mount for one request: a bind of the host path or of the volume's
/// `_data` (`rbind`, its propagation, `ro`/`rw`), or a fresh tmpfs with its options. A `-v`
/// bind makes a missing host directory first, as Docker's does.
pub fn spec_mount(m: &MountRequest) -> Result<oci_spec::runtime::Mount> {
    check_proc_destination(m)?;
    let access = if m.read_only { "ro" } else { "rw" };
    let builder = oci_spec::runtime::MountBuilder::default().destination(&m.container);
    let built = match m.kind {
        MountKind::Tmpfs => {
            let mut options = m.tmpfs.clone();
            options.push(access.into());
            builder.typ("tmpfs").source("tmpfs").options(options)
        }
        MountKind::Bind | MountKind::Volume => {
            if m.kind == MountKind::Bind && m.create_host && !m.host.exists() {
                std::fs::create_dir_all(&m.host)
                    .with_context(|| format!("creating {}", m.host.display()))?;
            }
            check_propagation(&m.host, &m.propagation)?;
            let propagation = if m.propagation.is_empty() {
                "rprivate"
            } else {
                &m.propagation
            };
            builder.typ("bind").source(&m.host).options(vec![
                "rbind".into(),
                propagation.into(),
                access.into(),
            ])
        }
    };
    Ok(built.build()?)
}
// ANCHOR_END: spec_mount

// ANCHOR: propagation
/// The mount holding `path` as Docker's `getSourceMount` finds it: the longest mount point
/// above the resolved path (the first mounted there), with its optional fields (`shared:N`,
/// `master:N`) from /proc/self/mountinfo (proc(5)).
fn source_mount(path: &Path) -> Result<(String, Vec<String>)> {
    let real = path
        .canonicalize()
        .with_context(|| format!("resolving {}", path.display()))?;
    let real = real.to_string_lossy();
    let info = std::fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
    let mut best: Option<(String, Vec<String>)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(point) = fields.get(4).map(|p| crate::overlay::unescape_mountinfo(p)) else {
            continue;
        };
        let holds = point == "/" || *real == point || real.starts_with(&format!("{point}/"));
        if !holds || best.as_ref().is_some_and(|(b, _)| b.len() >= point.len()) {
            continue;
        }
        let optional = fields.iter().skip(6).take_while(|f| **f != "-");
        best = Some((point, optional.map(|f| f.to_string()).collect()));
    }
    best.with_context(|| format!("no mount holds {real}"))
}

/// Docker's `ensureShared` and `ensureSharedOrSlave`: a bind with `shared`/`rshared`
/// propagation needs a source on a shared mount, with `slave`/`rslave` on a shared or slave
/// one, or the propagation could not happen. Refused with Docker's words (exit 125).
fn check_propagation(source: &Path, propagation: &str) -> Result<()> {
    let (needs, what): (&[&str], &str) = match propagation {
        "shared" | "rshared" => (&["shared:"], "a shared mount"),
        "slave" | "rslave" => (&["shared:", "master:"], "a shared or slave mount"),
        _ => return Ok(()),
    };
    let (point, optional) = source_mount(source)?;
    if optional
        .iter()
        .any(|o| needs.iter().any(|n| o.starts_with(n)))
    {
        return Ok(());
    }
    Err(parse::cli_error(format!(
        "path {} is mounted on {point} but it is not {what}",
        source.display()
    )))
}
// ANCHOR_END: propagation

// ANCHOR: proc_destination
/// The files under /proc runc lets a mount cover (those lxcfs emulates).
const VALID_PROC_MOUNTS: [&str; 10] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// Refuses a bind, volume or tmpfs on /proc or under it, as runc's `checkProcMount` does
/// (with its words, exit 125): over /proc it would hide the container's proc, under it it
/// would cover the kernel's files (`/proc/sys`) or reach the root (`/proc/1/root`). Only
/// the files lxcfs emulates ([`VALID_PROC_MOUNTS`]) may be covered.
pub fn check_proc_destination(m: &MountRequest) -> Result<()> {
    let dest = m.container.as_str();
    let why = if dest == "/proc" {
        "is not of type proc"
    } else if dest.starts_with("/proc/") && !VALID_PROC_MOUNTS.contains(&dest) {
        "is inside /proc"
    } else {
        return Ok(());
    };
    let source = match m.kind {
        MountKind::Tmpfs => "tmpfs".to_owned(),
        _ => m.host.display().to_string(),
    };
    Err(parse::cli_error(format!(
        "error mounting {source:?} to rootfs at {dest:?}: {dest:?} cannot be mounted because it {why}"
    )))
}
// ANCHOR_END: proc_destination

/// What `inspect` shows of one request under `Mounts` (nothing for `--tmpfs`).
pub fn mount_point(m: &MountRequest) -> Option<crate::container::state::MountPoint> {
    if m.unlisted {
        return None;
    }
    let volume = m.kind == MountKind::Volume;
    Some(crate::container::state::MountPoint {
        kind: m.kind.name().into(),
        name: if volume {
            m.name.clone()
        } else {
            String::new()
        },
        source: if m.kind == MountKind::Tmpfs {
            String::new()
        } else {
            m.host.to_string_lossy().into_owned()
        },
        destination: m.container.clone(),
        driver: if volume { DRIVER.into() } else { String::new() },
        mode: m.mode.clone(),
        rw: !m.read_only,
        propagation: m.propagation.clone(),
    })
}

/// The container's `Config.Volumes`, as Docker's CLI and daemon make it: the image's `VOLUME`
/// paths and each anonymous `-v /path` (which is also what `commit` carries into the image).
pub fn config_volumes(image: &[String], requests: &[MountRequest]) -> Vec<String> {
    let mut out: Vec<String> = image.to_vec();
    let anonymous_flags = requests
        .iter()
        .filter(|m| m.kind == MountKind::Volume && m.create_host && m.text.is_empty());
    for m in anonymous_flags {
        if !out.contains(&m.container) {
            out.push(m.container.clone());
        }
    }
    out
}

/// The mounts of another container, for `--volumes-from` (tmpfs mounts are its own).
fn mounts_from(paths: &Paths, name: &str, read_only: Option<bool>) -> Result<Vec<MountRequest>> {
    let other = paths.resolve(name)?;
    let mut out = Vec::new();
    for m in &other.config.mounts {
        let kind = match m.kind.as_str() {
            "bind" => MountKind::Bind,
            "volume" => MountKind::Volume,
            _ => continue,
        };
        out.push(MountRequest {
            kind,
            host: PathBuf::from(&m.source),
            name: m.name.clone(),
            container: m.destination.clone(),
            read_only: read_only.unwrap_or(!m.rw),
            propagation: m.propagation.clone(),
            nocopy: true,
            ..MountRequest::default()
        });
    }
    Ok(out)
}

// ANCHOR: prepare
/// Makes the mounts of a new container whole, as Docker's daemon does at create: the
/// container's own requests first, then `--volumes-from` (the other container's binds and
/// volumes, bound again: nothing is copied), then the image's `VOLUME` paths that nothing
/// else covers (anonymous volumes). Each volume is created if needed (anonymous ones with a
/// fresh 64-hex name) and gets its `_data` as host path; a new empty volume gets the image's
/// files at its path (copy-up) from `rootfs`. Returns the mounts and the anonymous volumes it
/// made, which go again unless the caller keeps them.
pub fn prepare<'a>(
    paths: &'a Paths,
    wanted: &Wanted,
    rootfs: &Path,
) -> Result<(Vec<MountRequest>, Made<'a>)> {
    let mut mounts: Vec<MountRequest> = wanted.requests.to_vec();
    add_volumes_from(paths, wanted.volumes_from, &mut mounts)?;
    add_image_volumes(wanted.image_volumes, &mut mounts)?;
    let made = create_volumes(paths, rootfs, &mut mounts)?;
    Ok((mounts, made))
}
// ANCHOR_END: prepare

// ANCHOR: prepare_covered
/// Whether one of `mounts` already has the container path `path`: the first to claim a path
/// keeps it.
fn covered(mounts: &[MountRequest], path: &str) -> bool {
    mounts.iter().any(|m| m.container == path)
}
// ANCHOR_END: prepare_covered

// ANCHOR: prepare_volumes_from
/// Step 1 of [`prepare`]: the mounts of each `--volumes-from` container, at the paths the
/// container's own requests leave free.
fn add_volumes_from(
    paths: &Paths,
    volumes_from: &[(String, Option<bool>)],
    mounts: &mut Vec<MountRequest>,
) -> Result<()> {
    for (name, read_only) in volumes_from {
        for m in mounts_from(paths, name, *read_only)? {
            if !covered(mounts, &m.container) {
                mounts.push(m);
            }
        }
    }
    Ok(())
}
// ANCHOR_END: prepare_volumes_from

// ANCHOR: prepare_image_volumes
/// Step 2 of [`prepare`]: an anonymous volume for each of the image's `VOLUME` paths that
/// no mount covers yet, so data written there outlives the container's writable layer.
fn add_image_volumes(image_volumes: &[String], mounts: &mut Vec<MountRequest>) -> Result<()> {
    for path in image_volumes {
        // Docker's daemon cleans the image's path and binds it under the container's root:
        // a relative `data` is `/data`.
        let absolute = if path.starts_with('/') || path.is_empty() {
            path.clone()
        } else {
            format!("/{path}")
        };
        let path = crate::container::spec::clean_container_path("the image's VOLUME", &absolute)?;
        if !covered(mounts, &path) {
            mounts.push(MountRequest {
                kind: MountKind::Volume,
                container: path,
                ..MountRequest::default()
            });
        }
    }
    Ok(())
}
// ANCHOR_END: prepare_image_volumes

// ANCHOR: prepare_create
/// Step 3 of [`prepare`]: creates each volume that does not exist yet (an anonymous one
/// under a fresh 64-hex name), points the mount at its `_data`, and copies the image's
/// files into a new one. The anonymous volumes made here are in the returned [`Made`], which
/// removes them again if creating the container fails.
fn create_volumes<'a>(
    paths: &'a Paths,
    rootfs: &Path,
    mounts: &mut [MountRequest],
) -> Result<Made<'a>> {
    let store = Store::new(&paths.root);
    let mut made = Made {
        paths,
        names: Vec::new(),
    };
    for m in mounts.iter_mut().filter(|m| m.kind == MountKind::Volume) {
        let mut labels = BTreeMap::new();
        if m.name.is_empty() {
            m.name = crate::container::new_id()?;
            labels.insert(ANONYMOUS_LABEL.to_owned(), String::new());
        }
        let (volume, new) = store.create(&m.name, labels, BTreeMap::new())?;
        if new && volume.anonymous() {
            made.names.push(volume.name.clone());
        }
        m.host = PathBuf::from(&volume.mountpoint);
        // A volume the driver mounts is empty until a container starts: no copy-up.
        if !m.nocopy && volume.driver_options().is_none() {
            copy_up(rootfs, &m.container, &m.host)?;
        }
    }
    Ok(made)
}
// ANCHOR_END: prepare_create

/// Removes the anonymous volumes `names` made for a container that was not created.
fn forget(paths: &Paths, names: &[String]) {
    let store = Store::new(&paths.root);
    for name in names {
        let _ = store.remove(name, &[]);
    }
}

/// The anonymous volumes [`prepare`] made for a container being created: dropped, it removes
/// them, unless [`Made::keep`] said the container exists.
pub struct Made<'a> {
    paths: &'a Paths,
    names: Vec<String>,
}

impl Made<'_> {
    /// The container was created: its volumes stay.
    pub fn keep(mut self) {
        self.names.clear();
    }
}

impl Drop for Made<'_> {
    fn drop(&mut self) {
        forget(self.paths, &self.names);
    }
}

// ANCHOR: remove_anonymous
/// `rm -v` and `run --rm`: removes the anonymous volumes of container `state` that no other
/// container uses; named volumes stay, as with Docker.
pub fn remove_anonymous(paths: &Paths, state: &ContainerState) -> Result<()> {
    if volume_names(state).next().is_none() {
        return Ok(());
    }
    let store = Store::new(&paths.root);
    let others: Vec<ContainerState> = paths
        .list_recorded()?
        .into_iter()
        .filter(|c| c.id != state.id)
        .collect();
    let users = users(&others);
    for name in volume_names(state) {
        let Some(volume) = store.find(name)? else {
            continue;
        };
        if volume.anonymous() && !users.contains_key(name) {
            store.remove(name, &[])?;
        }
    }
    Ok(())
}
// ANCHOR_END: remove_anonymous

// ANCHOR: driver_mount
/// Before container `state` starts: mounts, on `_data`, the filesystem of each of its
/// volumes that has driver options and is not mounted yet (`mount -t TYPE -o O DEVICE`, or
/// a bind when `type` is `none` with `o=bind`), as the local driver does.
pub fn mount_driver_volumes(paths: &Paths, state: &ContainerState) -> Result<()> {
    if volume_names(state).next().is_none() {
        return Ok(());
    }
    let store = Store::new(&paths.root);
    let _lock = store.lock()?;
    for name in volume_names(state) {
        let Some(volume) = store.find(name)? else {
            continue;
        };
        let Some(options) = volume.driver_options() else {
            continue;
        };
        let data = PathBuf::from(&volume.mountpoint);
        if crate::overlay::mount_type(&data)?.is_some() {
            continue;
        }
        mount_volume_data(name, options, &data)?;
    }
    Ok(())
}
// ANCHOR_END: driver_mount

// ANCHOR: driver_mount_one
/// Mounts volume `name`'s filesystem on its `_data` from its driver options, read as
/// `mount -t TYPE -o O DEVICE` reads them: `o` is split into flags and data by the same
/// parser as a runtime-spec mount's options, and `type=none` means a bind.
fn mount_volume_data(name: &str, options: &BTreeMap<String, String>, data: &Path) -> Result<()> {
    let o: Vec<String> = options
        .get("o")
        .map(|o| o.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let parsed = crate::runtime::mounts::parse_options(&o);
    let typ = options.get("type").map_or("none", String::as_str);
    let device = options.get("device").map_or("", String::as_str);
    let mut flags = parsed.flags;
    if parsed.bind || typ == "none" {
        flags |= nix::mount::MsFlags::MS_BIND;
    }
    let data_text = parsed.data.join(",");
    explain::step(
        "mount the volume's filesystem",
        || {
            let data_text = (!data_text.is_empty()).then_some(data_text.as_str());
            let device = Some(std::path::Path::new(device));
            explain::mount_call(device, data, Some(typ), flags, data_text)
        },
        Chapter::Volumes,
    );
    nix::mount::mount(
        Some(device),
        data,
        Some(typ),
        flags,
        (!data_text.is_empty()).then_some(data_text.as_str()),
    )
    .with_context(|| format!("mounting {typ} {device:?} for volume {name}"))
}
// ANCHOR_END: driver_mount_one

// ANCHOR: driver_unmount
/// After container `state` stopped (or was found dead): unmounts the driver filesystems of
/// its volumes that no running container uses any more. Idempotent.
pub fn unmount_driver_volumes(paths: &Paths, state: &ContainerState) -> Result<()> {
    if volume_names(state).next().is_none() {
        return Ok(());
    }
    let store = Store::new(&paths.root);
    let _lock = store.lock()?;
    let running: Vec<ContainerState> = paths
        .list_recorded()?
        .into_iter()
        .filter(|c| c.id != state.id && c.status == Status::Running && c.process_alive())
        .collect();
    let busy = users(&running);
    for name in volume_names(state) {
        if busy.contains_key(name) {
            continue;
        }
        if let Some(volume) = store.find(name)? {
            unmount_data(&volume)?;
        }
    }
    Ok(())
}
// ANCHOR_END: driver_unmount

/// Unmounts what the driver mounted on the volume's `_data` (nothing when it has no options
/// or nothing is mounted).
fn unmount_data(volume: &Volume) -> Result<()> {
    if volume.driver_options().is_none() {
        return Ok(());
    }
    let data = Path::new(&volume.mountpoint);
    while crate::overlay::mount_type(data)?.is_some() {
        explain::step(
            "unmount the volume's filesystem",
            || format!("umount2({data:?}, MNT_DETACH)"),
            Chapter::Volumes,
        );
        nix::mount::umount2(data, nix::mount::MntFlags::MNT_DETACH)
            .with_context(|| format!("unmounting {}", data.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_are_made_listed_and_removed() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::new(root.path());
        let labels = BTreeMap::from([("a".to_owned(), "b".to_owned())]);
        let (made, new) = store.create("v1", labels, BTreeMap::new()).unwrap();
        assert!(new && store.data("v1").is_dir());
        assert_eq!(made.mountpoint, store.data("v1").to_string_lossy());
        let (again, new) = store
            .create("v1", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert!(!new);
        assert_eq!(again, made);
        assert_eq!(store.list().unwrap(), std::slice::from_ref(&made));
        let err = store.remove("v1", &["c1".into()]).unwrap_err();
        assert_eq!(err.to_string(), "remove v1: volume is in use - [c1]");
        store.remove("v1", &[]).unwrap();
        assert!(store.list().unwrap().is_empty());
        assert_eq!(
            store.get("v1").unwrap_err().to_string(),
            "get v1: no such volume"
        );
    }

    #[test]
    fn driver_options_are_checked_as_the_local_driver_does() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::new(root.path());
        let opts = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let err = |pairs: &[(&str, &str)]| {
            store
                .create("x1", BTreeMap::new(), opts(pairs))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(err(&[("foo", "bar")]), "create x1: invalid option: \"foo\"");
        assert_eq!(
            err(&[("type", "tmpfs")]),
            "create x1: missing required option: \"device\""
        );
        assert_eq!(
            err(&[("device", "tmpfs")]),
            "create x1: missing required option: \"type\""
        );
        assert!(store.list().unwrap().is_empty());
    }
}
