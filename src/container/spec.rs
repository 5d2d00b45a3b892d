//! From an image and `minidock run`'s flags to an OCI runtime spec (`config.json`).
//!
//! This is the engine's half of the job, the part Docker's daemon does before it calls runc:
//! the image config says what to run (`Entrypoint`, `Cmd`, `Env`, `WorkingDir`, `User`), the
//! flags override it and add limits and mounts, and Docker's defaults fill the rest (the
//! namespaces, the standard mounts, the security profile). The runtime then does exactly what
//! the spec says and nothing more, so `config.json` is the whole contract between the layers:
//! `minidock runtime run --bundle <root>/containers/<id> x` would start the same container.

use super::state::{MountPoint, RunConfig};
use crate::cgroup::{Limit, Resources, units};
use crate::cli::{Exit, code};
use crate::explain;
use crate::security::{self, ContainerSecurity, SecurityOptions};
use anyhow::{Context, Result};
use oci_spec::image::{Config as ImageConfig, ImageConfiguration};
use oci_spec::runtime::{
    Linux, LinuxBuilder, LinuxCpuBuilder, LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder, LinuxNamespace,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder, Mount, MountBuilder, Process, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};
use std::path::{Path, PathBuf};

/// Where a container's own network namespace is pinned, in its bundle.
pub const NETNS_PIN: &str = "netns";

/// The PATH a container gets when its image sets none (Docker's `DefaultPathEnv`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `run`'s flags as typed, before any checking.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The command and its arguments after the image name (replaces the image's `Cmd`).
    pub command: Vec<String>,
    /// `--entrypoint` (an empty string clears the image's).
    pub entrypoint: Option<String>,
    /// `-e KEY=VALUE`, or `-e KEY` to pass the caller's value.
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// `--group-add`: more groups for the process, names or gids.
    pub group_add: Vec<String>,
    pub hostname: Option<String>,
    pub memory: Option<String>,
    pub cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub volumes: Vec<String>,
    /// `--mount`, `--tmpfs` and `--volumes-from`, as typed (see [`crate::volume`]).
    pub mounts: Vec<String>,
    pub tmpfs: Vec<String>,
    pub volumes_from: Vec<String>,
    pub read_only: bool,
    pub network: Option<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub privileged: bool,
    pub tty: bool,
    pub interactive: bool,
    pub auto_remove: bool,
    /// `--restart` as typed (`no`, `on-failure[:N]`, `always`, `unless-stopped`).
    pub restart: String,
    /// `--label KEY=VALUE` (or `KEY`), and `--label-file`.
    pub labels: Vec<String>,
    pub label_files: Vec<PathBuf>,
    pub stop_signal: Option<String>,
    /// `--stop-timeout`, seconds.
    pub stop_timeout: Option<i64>,
    /// `--init`.
    pub init: bool,
    /// `-p`, as typed.
    pub publish: Vec<String>,
    /// `--expose PORT[/PROTO]` or `START-END[/PROTO]`, as typed.
    pub expose: Vec<String>,
    /// `-P`.
    pub publish_all: bool,
    /// `--dns`, `--dns-search`, `--dns-option`, `--add-host NAME:IP`, `--ip`.
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_option: Vec<String>,
    pub add_host: Vec<String>,
    pub ip: Option<String>,
    /// `--network-alias`: more names the container answers to on a user network.
    pub network_alias: Vec<String>,
}

/// The network a container gets (`--network`).
pub use super::network::Mode as Network;

/// One mount the container asked for: `-v`, `--mount`, `--tmpfs`, `--volumes-from` or the
/// image's `VOLUME` (see [`crate::volume`]).
pub use crate::volume::MountRequest as Volume;

/// The flags, checked and parsed. Every error here happens before anything is created.
#[derive(Debug, Clone)]
pub struct ParsedOptions {
    pub options: RunOptions,
    /// `-e` and `--env-file`, in order, `KEY=VALUE` each.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub resources: Resources,
    pub volumes: Vec<Volume>,
    /// `--volumes-from`: the container, and `Some(read_only)` when `:ro` or `:rw` is given.
    pub volumes_from: Vec<(String, Option<bool>)>,
    pub network: Network,
    /// `-p`, parsed: `("80/tcp", binding)` pairs in order.
    pub port_bindings: Vec<(String, super::state::PortBinding)>,
    /// `--expose`, each range one port at a time: `"7000/udp"`, in order.
    pub exposed: Vec<String>,
    pub security: SecurityOptions,
    pub restart_policy: super::state::RestartPolicy,
    /// `--label-file` then `--label`, in order, `(KEY, VALUE)` each.
    pub labels: Vec<(String, String)>,
}

fn bad_flag(message: String) -> anyhow::Error {
    Exit::new(code::FAILED, message).into()
}

/// Text in Docker's single quotes when it is short printable text, otherwise quoted and
/// escaped (it may come from an image).
fn single_quoted(text: &str) -> String {
    if text.chars().count() <= crate::cli::QUOTE_MAX
        && text.chars().all(|c| c == ' ' || c.is_ascii_graphic())
    {
        format!("'{text}'")
    } else {
        crate::cli::quote(text)
    }
}

// ANCHOR: clean_path
/// Cleans an absolute path inside the container (a working directory, a mount destination) as
/// text, as Go's `path.Clean` does and Docker with it: `.` and empty components go, `..`
/// removes the previous one, and a `..` at `/` stays at `/` (the root's parent is the root,
/// in the container as on the host), so `/../../tmp` is `/tmp`. Only then is the path
/// resolved, inside the rootfs, where a symlink cannot lead out either
/// (`runtime::mounts::secure_join`, and chdir after pivot_root). A relative path is refused,
/// with Docker's message.
pub fn clean_container_path(what: &str, path: &str) -> Result<String> {
    if !path.starts_with('/') {
        return Err(bad_flag(format!(
            "{what} {} is invalid, it needs to be an absolute path",
            single_quoted(path)
        )));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}
// ANCHOR_END: clean_path

/// Parses one `-v` (see [`crate::volume::parse_volume_flag`]).
pub fn parse_volume(text: &str) -> Result<Volume> {
    crate::volume::parse_volume_flag(text)
}

/// `-v`, `--mount` and `--tmpfs` together, refusing two mounts on one path as Docker does.
fn parse_mounts(options: &RunOptions) -> Result<Vec<Volume>> {
    let mut all = Vec::new();
    for text in &options.volumes {
        all.push(parse_volume(text)?);
    }
    for text in &options.mounts {
        all.push(crate::volume::parse_mount_flag(text)?);
    }
    for text in &options.tmpfs {
        let mut tmpfs = crate::volume::parse_tmpfs_flag(text)?;
        tmpfs.unlisted = true;
        all.push(tmpfs);
    }
    for (i, m) in all.iter().enumerate() {
        if all[..i].iter().any(|o| o.container == m.container) {
            anyhow::bail!("Duplicate mount point: {}", m.container);
        }
    }
    Ok(all)
}

// ANCHOR: env
/// Checks one `-e` value as the docker CLI does (`opts.ValidateEnv`): only an empty name is
/// refused. `KEY` alone takes the caller's value; when the caller has none it stays a bare
/// `KEY`, which removes the image's `KEY` from the container (see [`merge_env`]).
pub fn parse_env_flag(text: &str) -> Result<String> {
    let key = text.split_once('=').map_or(text, |(k, _)| k);
    if key.is_empty() {
        return Err(bad_flag(format!(
            "invalid environment variable {} (-e): the name is empty",
            crate::cli::quote(text)
        )));
    }
    if text.contains('=') {
        return Ok(text.to_owned());
    }
    Ok(match std::env::var_os(key) {
        Some(value) => format!("{key}={}", value.to_string_lossy()),
        None => text.to_owned(),
    })
}

// ANCHOR_END: env

// ANCHOR: env_file
/// Reads an `--env-file` as the docker CLI does (its `kvfile` format): UTF-8 only, a BOM at
/// the start dropped, leading whitespace trimmed, blank lines and `#` comments skipped,
/// `KEY=VALUE` kept as it is (trailing whitespace included). A bare `KEY` takes the caller's
/// value and is left out when the caller has none (unlike `-e KEY`, it removes nothing).
/// A name that is empty or holds a space or tab is refused.
pub fn read_env_file(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path)
        .map_err(|e| bad_flag(format!("reading env file {}: {e}", path.display())))?;
    let invalid = |why: String| bad_flag(format!("invalid env file ({}): {why}", path.display()));
    let mut out = Vec::new();
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = match n {
            0 => line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line),
            _ => line,
        };
        let line = std::str::from_utf8(line)
            .map_err(|_| invalid(format!("invalid utf8 bytes at line {}", n + 1)))?
            .trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, has_value) = line
            .split_once('=')
            .map_or((line, false), |(k, _)| (k, true));
        if key.is_empty() {
            return Err(invalid(format!(
                "no variable name on line {}",
                crate::cli::quote(line)
            )));
        }
        if key.contains([' ', '\t']) {
            return Err(invalid(format!(
                "variable {} contains whitespaces",
                crate::cli::quote(key)
            )));
        }
        if has_value {
            out.push(line.to_owned());
        } else if let Some(value) = std::env::var_os(key) {
            out.push(format!("{key}={}", value.to_string_lossy()));
        }
    }
    Ok(out)
}

fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}
// ANCHOR_END: env_file

// ANCHOR: merge_env
/// The container's `Config.Env` as Docker's daemon merges it (moby `merge`, daemon/commit.go):
/// the flags' entries as given, a bare `KEY` included, then each image entry whose key no
/// flag names.
pub fn merge_env(flags: &[String], image: &[String]) -> Vec<String> {
    let mut env = flags.to_vec();
    env.extend(
        image
            .iter()
            .filter(|i| !flags.iter().any(|f| env_key(f) == env_key(i)))
            .cloned(),
    );
    env
}
// ANCHOR_END: merge_env

// ANCHOR: replace_env
/// moby's `ReplaceOrAppendEnvValues`: each override replaces the default with its key, or is
/// appended; a bare `KEY` removes the default's `KEY`. (Like moby, an appended entry is not
/// replaced by a later one with the same key: [`dedup_env`] settles that, as runc does.)
pub fn replace_or_append_env(defaults: &[String], overrides: &[String]) -> Vec<String> {
    let mut env: Vec<Option<String>> = defaults.iter().cloned().map(Some).collect();
    let known = |key: &str| defaults.iter().rposition(|d| env_key(d) == key);
    for entry in overrides {
        match (entry.contains('='), known(env_key(entry))) {
            (false, Some(i)) => env[i] = None,
            (false, None) => {}
            (true, Some(i)) => env[i] = Some(entry.clone()),
            (true, None) => env.push(Some(entry.clone())),
        }
    }
    env.into_iter().flatten().collect()
}

// ANCHOR_END: replace_env

// ANCHOR: dedup_env
/// runc's `prepareEnv`: one entry per key, the last one given, at its place; an empty `HOME`
/// is dropped, and a missing one becomes `HOME=home` at the end.
pub fn dedup_env(env: &[String], home: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<String> = Vec::new();
    for entry in env.iter().rev() {
        let key = env_key(entry);
        if !seen.insert(key) || entry == "HOME=" {
            continue;
        }
        out.push(entry.clone());
    }
    out.reverse();
    if !out.iter().any(|e| env_key(e) == "HOME") {
        out.push(format!("HOME={home}"));
    }
    out
}

/// The process's environment, as Docker (`CreateDaemonEnvironment`) and runc make it from the
/// container's `Config.Env`: `PATH`, `HOSTNAME` and, with a terminal, `TERM`, each replaced
/// or removed by `Config.Env`, which adds the rest; then [`dedup_env`] with the user's home.
pub fn process_env(config_env: &[String], hostname: &str, tty: bool, home: &str) -> Vec<String> {
    let mut defaults = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        defaults.push("TERM=xterm".into());
    }
    dedup_env(&replace_or_append_env(&defaults, config_env), home)
}
// ANCHOR_END: dedup_env

/// Sets `KEY=VALUE` in `env`, replacing an existing `KEY`.
pub fn set_env(env: &mut Vec<String>, entry: &str) {
    let key = entry.split_once('=').map_or(entry, |(k, _)| k);
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(existing) => *existing = entry.to_owned(),
        None => env.push(entry.to_owned()),
    }
}

impl ParsedOptions {
    pub fn parse(options: &RunOptions) -> Result<ParsedOptions> {
        let mut env = Vec::new();
        for file in &options.env_files {
            env.extend(read_env_file(file)?);
        }
        for entry in &options.env {
            env.push(parse_env_flag(entry)?);
        }
        let workdir = options
            .workdir
            .as_deref()
            .map(|w| clean_container_path("the working directory", w))
            .transpose()?;
        let mut resources = Resources::default();
        if let Some(memory) = &options.memory {
            let bytes =
                units::parse_size(memory).map_err(|e| bad_flag(format!("--memory: {e}")))?;
            resources.memory = Some(Limit::Value(bytes));
        }
        if let Some(cpus) = &options.cpus {
            let quota = units::parse_cpus(cpus).map_err(|e| bad_flag(format!("{e}")))?;
            resources = resources.with_cpus(quota);
        }
        if let Some(limit) = options.pids_limit {
            // Docker: 0 or -1 mean no limit.
            if limit > 0 {
                resources.pids = Some(Limit::Value(limit as u64));
            }
        }
        let online = std::thread::available_parallelism().map_or(1, |n| n.get());
        for warning in resources
            .validate(online)
            .map_err(|e| bad_flag(format!("{e}")))?
        {
            eprintln!("WARNING: {warning}");
        }
        let volumes = parse_mounts(options)?;
        let volumes_from = options
            .volumes_from
            .iter()
            .map(|v| crate::volume::parse_volumes_from(v))
            .collect::<Result<Vec<_>>>()?;
        let network = Network::parse(options.network.as_deref())?;
        let user_network =
            matches!(&network, Network::Bridge(n) if n != super::network::DEFAULT_NETWORK_NAME);
        if !options.network_alias.is_empty() && !user_network {
            return Err(bad_flag(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            ));
        }
        let port_bindings = parse_network_flags(options, &network)?;
        let exposed = parse_expose(&options.expose)?;
        let mut security = SecurityOptions {
            cap_add: options.cap_add.clone(),
            cap_drop: options.cap_drop.clone(),
            privileged: options.privileged,
            ..Default::default()
        };
        for opt in &options.security_opt {
            security
                .add_security_opt(opt)
                .map_err(|e| bad_flag(format!("{e:#}")))?;
        }
        // The capability names are checked now (not only in the spec), so a typo is one line.
        security::container_security(&security, 0).map_err(|e| bad_flag(format!("{e:#}")))?;
        let (restart_policy, labels) = parse_run_flags(options)?;
        Ok(ParsedOptions {
            options: options.clone(),
            env,
            workdir,
            resources,
            volumes,
            volumes_from,
            network,
            port_bindings,
            exposed,
            security,
            restart_policy,
            labels,
        })
    }
}

// ANCHOR: network_flags
/// Checks `-p`, `--ip`, `--dns`, `--add-host` against `--network` as Docker 20.10 does, with
/// its messages (exit 125). Ports published in `host` mode are dropped with Docker's warning.
fn parse_network_flags(
    options: &RunOptions,
    network: &Network,
) -> Result<Vec<(String, super::state::PortBinding)>> {
    let mut bindings = Vec::new();
    for text in &options.publish {
        bindings.extend(super::network::parse_publish(text)?);
    }
    for entry in &options.add_host {
        let ok = entry.split_once(':').is_some_and(|(name, ip)| {
            !name.is_empty()
                && (ip == super::network::HOST_GATEWAY || ip.parse::<std::net::IpAddr>().is_ok())
        });
        if !ok {
            return Err(bad_flag(format!(
                "invalid argument {entry:?} for \"--add-host\" flag: bad format for add-host: {entry:?}"
            )));
        }
    }
    for dns in &options.dns {
        if dns.parse::<std::net::IpAddr>().is_err() {
            return Err(bad_flag(format!(
                "invalid argument {dns:?} for \"--dns\" flag: {dns} is not an ip address"
            )));
        }
    }
    if let Some(ip) = &options.ip
        && ip.parse::<std::net::Ipv4Addr>().is_err()
    {
        return Err(bad_flag(format!("invalid IPv4 address: {ip}")));
    }
    match network {
        Network::Container(_) => {
            let conflict = |what: &str| {
                Err(bad_flag(format!(
                    "conflicting options: {what} and the network mode"
                )))
            };
            if !bindings.is_empty() || options.publish_all {
                return conflict("port publishing");
            }
            if !options.dns.is_empty()
                || !options.dns_search.is_empty()
                || !options.dns_option.is_empty()
            {
                return conflict("dns");
            }
            if !options.add_host.is_empty() {
                return conflict("custom host-to-IP mapping");
            }
            if options.hostname.is_some() {
                return conflict("hostname");
            }
        }
        Network::Host if !bindings.is_empty() || options.publish_all => {
            eprintln!("WARNING: Published ports are discarded when using host network mode");
            bindings.clear();
        }
        _ => {}
    }
    if options.ip.is_some()
        && !matches!(network, Network::Bridge(name) if name != super::network::DEFAULT_NETWORK_NAME)
    {
        return Err(bad_flag(
            "user specified IP address is supported on user defined networks only".into(),
        ));
    }
    Ok(bindings)
}
// ANCHOR_END: network_flags

// ANCHOR: init_mount
/// `--init`: this very binary, bound read-only at `/sbin/docker-init` as Docker binds its
/// own. It is dynamically linked, so the image must hold its dynamic loader (checked in the
/// mounted rootfs `merged`); an image without one is refused (exit 125).
fn init_mount(merged: &Path) -> Result<Mount> {
    let exe = std::env::current_exe().context("finding the minidock binary for --init")?;
    if let Some(loader) = super::init::loader(&exe) {
        let inside = merged.join(loader.strip_prefix("/").unwrap_or(&loader));
        if !inside.exists() {
            return Err(bad_flag(format!(
                "--init is not supported for this image: the init is the minidock binary, \
                 which needs the image to provide its C library ({} is missing)",
                loader.display()
            )));
        }
    }
    Ok(MountBuilder::default()
        .destination(super::init::INIT_PATH)
        .typ("bind")
        .source(exe)
        .options(vec!["rbind".into(), "rprivate".into(), "ro".into()])
        .build()?)
}
// ANCHOR_END: init_mount

// ANCHOR: run_flags
/// Checks `--restart`, `--label`, `--label-file`, `--stop-signal` as Docker 20.10 does, with
/// its messages: a bad policy, `--restart` with `--rm`, an unknown signal exit 125.
fn parse_run_flags(
    options: &RunOptions,
) -> Result<(super::state::RestartPolicy, Vec<(String, String)>)> {
    let policy = super::state::RestartPolicy::parse(&options.restart).map_err(bad_flag)?;
    if options.auto_remove && policy.is_set() {
        return Err(bad_flag("Conflicting options: --restart and --rm".into()));
    }
    if let Some(signal) = &options.stop_signal {
        crate::runtime::parse_signal(signal)
            .map_err(|_| bad_flag(format!("Invalid signal: {signal}")))?;
    }
    let mut lines = Vec::new();
    for file in &options.label_files {
        lines.extend(read_label_file(file)?);
    }
    lines.extend(options.labels.iter().cloned());
    let labels = lines
        .into_iter()
        .map(|line| match line.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (line, String::new()),
        })
        .collect();
    Ok((policy, labels))
}
// ANCHOR_END: run_flags

/// Reads a `--label-file` as the docker CLI does (`readKVStrings`): one `KEY=VALUE` a line,
/// empty lines and `#` comments skipped.
fn read_label_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad_flag(format!("open {}: {e}", path.display())))?;
    Ok(text
        .lines()
        .map(|l| l.trim_start())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

pub use super::user::{ResolvedUser, resolve_user};

// ANCHOR: workdir
/// Makes the working directory in the container's rootfs if it is missing, as Docker's daemon
/// does at create and start (`SetupWorkingDirectory`): resolved inside the rootfs, created as
/// root with mode 0755, so a process running as another user still starts in it. An existing
/// file there is refused with Docker's message.
pub fn setup_working_directory(rootfs: &Path, cwd: &str) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let path = crate::runtime::mounts::secure_join(rootfs, Path::new(cwd))?;
    if let Err(err) = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&path)
    {
        if path.exists() && !path.is_dir() {
            return Err(bad_flag(format!("Cannot mkdir: {cwd} is not a directory")));
        }
        return Err(err).with_context(|| format!("mkdir {}", path.display()));
    }
    Ok(())
}
// ANCHOR_END: workdir

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount> {
    Ok(MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()?)
}

// ANCHOR: default_mounts
/// Docker's standard mounts (moby's `oci.DefaultSpec`): a fresh /proc for the new PID
/// namespace, a tmpfs /dev with its own devpts (the runtime adds the device nodes), /sys
/// read-only, the container's own cgroups read-only, a POSIX message queue and /dev/shm.
/// `--privileged` drops `ro` from /sys and the cgroups, as moby's `clearReadOnly` does.
fn default_mounts(privileged: bool) -> Result<Vec<Mount>> {
    let writable_when_privileged = ["/sys", "/sys/fs/cgroup"];
    DEFAULT_MOUNTS
        .into_iter()
        .map(|(destination, typ, source, options)| {
            let options: Vec<&str> = options
                .iter()
                .copied()
                .filter(|o| {
                    !(privileged && *o == "ro" && writable_when_privileged.contains(&destination))
                })
                .collect();
            mount(destination, typ, source, &options)
        })
        .collect()
}
// ANCHOR_END: default_mounts

// ANCHOR: default_mounts_table
/// Docker's standard mounts as destination, type, source and options, in the order they are
/// mounted: /dev before the devpts, mqueue and shm mounts made inside it.
const DEFAULT_MOUNTS: [(&str, &str, &str, &[&str]); 7] = [
    ("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
    (
        "/dev",
        "tmpfs",
        "tmpfs",
        &["nosuid", "strictatime", "mode=755", "size=65536k"],
    ),
    (
        "/dev/pts",
        "devpts",
        "devpts",
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ],
    ),
    (
        "/sys",
        "sysfs",
        "sysfs",
        &["nosuid", "noexec", "nodev", "ro"],
    ),
    (
        "/sys/fs/cgroup",
        "cgroup",
        "cgroup",
        &["ro", "nosuid", "noexec", "nodev"],
    ),
    (
        "/dev/mqueue",
        "mqueue",
        "mqueue",
        &["nosuid", "noexec", "nodev"],
    ),
    (
        "/dev/shm",
        "tmpfs",
        "shm",
        &["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"],
    ),
];
// ANCHOR_END: default_mounts_table

// ANCHOR: device_rules
/// One rule of `linux.resources.devices` (config-linux.md, "Device allowlist"): `None` for the
/// type means every type (`a`), `None` for a number means every number (`*`).
fn device_rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
) -> Result<LinuxDeviceCgroup> {
    let mut rule = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .access("rwm");
    if let Some(typ) = typ {
        rule = rule.typ(typ);
    }
    if let Some(major) = major {
        rule = rule.major(major);
    }
    if let Some(minor) = minor {
        rule = rule.minor(minor);
    }
    Ok(rule.build()?)
}

/// The devices a container may create and open, as Docker gives them (moby's
/// `oci.DefaultLinuxSpec`): first deny everything, then allow `c 1:5` (zero), `c 1:3` (null),
/// `c 1:9` (urandom), `c 1:8` (random), `c 5:0` (tty) and `c 5:1` (console), each `rwm`, and
/// deny `c 10:229` (fuse) once more. `--privileged` allows every device (`a *:* rwm`). The
/// runtime turns the list into the devices cgroup (v1 `devices.deny`/`devices.allow`, v2 an
/// eBPF program), so a device node the container makes itself, such as `mknod kmsg c 1 11`,
/// cannot be opened.
pub fn device_rules(privileged: bool) -> Result<Vec<LinuxDeviceCgroup>> {
    if privileged {
        return Ok(vec![device_rule(true, None, None, None)?]);
    }
    let c = Some(LinuxDeviceType::C);
    let mut rules = vec![device_rule(false, None, None, None)?];
    for (major, minor) in [(1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1)] {
        rules.push(device_rule(true, c, Some(major), Some(minor))?);
    }
    rules.push(device_rule(false, c, Some(10), Some(229))?);
    Ok(rules)
}
// ANCHOR_END: device_rules

// ANCHOR: host_devices
/// Every device node under `dev` (the host's `/dev`), for `--privileged`, chosen as Docker
/// chooses them (containerd's `oci.HostDevices`): character and block devices, recursively,
/// with their numbers, mode, owner and group; not `console`, not fifos, sockets, symlinks or
/// regular files, and not the directories that hold mounts of their own or runtime state
/// (`pts`, `shm`, `fd`, `mqueue`, `.lxc`, `.lxd-mounts`, `.udev`). A node that vanishes while
/// the walk runs is skipped. Paths are the host's, which are also the container's.
pub fn host_devices(dev: &Path) -> Result<Vec<LinuxDevice>> {
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dev)
        .with_context(|| format!("listing {}", dev.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("listing {}", dev.display()))?;
    entries.sort_by_key(|e| e.file_name());
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let metadata = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("lstat {}", path.display())),
        };
        if metadata.file_type().is_dir() {
            let skipped = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
            if !skipped.iter().any(|s| name == *s) {
                out.extend(host_devices(&path)?);
            }
            continue;
        }
        if name == "console" {
            continue;
        }
        out.extend(host_device(&path, &metadata)?);
    }
    Ok(out)
}
// ANCHOR_END: host_devices

// ANCHOR: host_device
/// The device node at `path` as the spec lists it: its type, numbers, mode, owner and group;
/// `None` when it is no character or block device.
fn host_device(path: &Path, metadata: &std::fs::Metadata) -> Result<Option<LinuxDevice>> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let kind = metadata.file_type();
    let typ = if kind.is_char_device() {
        LinuxDeviceType::C
    } else if kind.is_block_device() {
        LinuxDeviceType::B
    } else {
        return Ok(None);
    };
    let rdev = metadata.rdev();
    Ok(Some(
        LinuxDeviceBuilder::default()
            .path(path)
            .typ(typ)
            .major(i64::from(nix::sys::stat::major(rdev) as u32))
            .minor(i64::from(nix::sys::stat::minor(rdev) as u32))
            .file_mode(metadata.mode() & 0o7777)
            .uid(metadata.uid())
            .gid(metadata.gid())
            .build()?,
    ))
}
// ANCHOR_END: host_device

fn namespace(typ: LinuxNamespaceType) -> Result<LinuxNamespace> {
    Ok(LinuxNamespaceBuilder::default().typ(typ).build()?)
}

// ANCHOR: etc_mounts
/// The files Docker manages for every container, bound over the image's from the container's
/// own directory (see [`write_etc_files`]): `/etc/resolv.conf`, `/etc/hostname` and
/// `/etc/hosts`. They are read-only under `--read-only`, as Docker makes them (the flag
/// remounts only the root, and a bind mount on top of it keeps its own flags). A `-v` on one
/// of those paths replaces the generated file, with the volume's own mode.
fn etc_mounts(volumes: &[Volume], read_only: bool) -> Result<Vec<Mount>> {
    let mut mounts = Vec::new();
    for file in ["resolv.conf", "hostname", "hosts"] {
        let destination = format!("/etc/{file}");
        if volumes.iter().any(|v| v.container == destination) {
            continue;
        }
        let mut options: Vec<String> = vec!["rbind".into(), "rprivate".into()];
        if read_only {
            options.push("ro".into());
        }
        mounts.push(
            MountBuilder::default()
                .destination(destination)
                .typ("bind")
                .source(file)
                .options(options)
                .build()?,
        );
    }
    Ok(mounts)
}
// ANCHOR_END: etc_mounts

/// What [`build`] makes: the spec, and what `inspect` will show of it.
pub struct Built {
    pub spec: Spec,
    pub hostname: String,
    pub config: RunConfig,
}

/// Whether the host runs cgroup v2 only. Docker gives containers a cgroup namespace there, and
/// shares the host's on v1, where the runtime binds the container's own cgroup dirs instead.
fn pure_cgroup_v2() -> bool {
    crate::cgroup::detect().is_ok_and(|l| l.kind == crate::cgroup::Kind::V2)
}

// ANCHOR: build
/// Builds the container's spec. `bundle` is its directory, with its overlay mounted on
/// `merged`, where the user is looked up. Each step below is one part of the spec.
pub fn build(
    parsed: &ParsedOptions,
    image: &ImageConfiguration,
    bundle: &Path,
    id: &str,
) -> Result<Built> {
    let rootfs = &bundle.join("merged");
    explain::trace!(PuttingTogether: "turn the image config and flags into a spec"
        => "(Entrypoint + Cmd, Env, WorkingDir, User; defaults for the rest)");
    let options = &parsed.options;
    let config = image.config().clone().unwrap_or_default();
    let command = command(options, &config, rootfs)?;
    let hostname = hostname(parsed, id);
    let (user_text, user, config_env, env) = user_and_env(parsed, &config, rootfs, &hostname)?;
    let cwd = working_dir(parsed, &config, rootfs)?;
    let security = security::container_security(&parsed.security, user.uid)?;
    let process = process(options, &user, command.args, env, &cwd, &security)?;
    let (mounts, mount_points) = mounts(parsed, command.init)?;
    let linux = linux(parsed, bundle, id, &security)?;
    let spec = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("merged")
                .readonly(options.read_only)
                .build()?,
        )
        .process(process)
        .hostname(hostname.clone())
        .mounts(mounts)
        .linux(linux)
        .build()?;
    let run_config = RunConfig {
        hostname: hostname.clone(),
        user: user_text.unwrap_or_default(),
        env: config_env,
        cmd: command.cmd,
        entrypoint: command.entrypoint,
        working_dir: cwd,
        mounts: mount_points,
        ..run_config(parsed, &config)
    };
    Ok(Built {
        spec,
        hostname,
        config: run_config,
    })
}
// ANCHOR_END: build

/// What the container runs: the image's `Entrypoint` and `Cmd` as the flags change them, and
/// the whole argument vector (behind `docker-init --` with `--init`).
struct Command {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    args: Vec<String>,
    /// The bind mount of `docker-init`, with `--init`.
    init: Option<Mount>,
}

// ANCHOR: command
/// What to run: `--entrypoint` replaces the image's `Entrypoint` and then also drops its `Cmd`;
/// arguments after the image name replace `Cmd`. Errors when nothing is left to run.
fn command(options: &RunOptions, config: &ImageConfig, rootfs: &Path) -> Result<Command> {
    let (entrypoint, cmd) = entrypoint_and_cmd(options, config);
    let mut args: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();
    if args.is_empty() {
        return Err(no_command());
    }
    let init = options.init.then(|| init_mount(rootfs)).transpose()?;
    if init.is_some() {
        args.splice(0..0, [super::init::INIT_PATH.to_owned(), "--".to_owned()]);
    }
    Ok(Command {
        entrypoint,
        cmd,
        args,
        init,
    })
}

/// The entrypoint and command a container runs, from its flags over its image's.
fn entrypoint_and_cmd(options: &RunOptions, config: &ImageConfig) -> (Vec<String>, Vec<String>) {
    let entrypoint: Vec<String> = match options.entrypoint.as_deref() {
        Some("") => Vec::new(),
        Some(e) => vec![e.to_owned()],
        None => config.entrypoint().clone().unwrap_or_default(),
    };
    let cmd: Vec<String> = if !options.command.is_empty() {
        options.command.clone()
    } else if options.entrypoint.is_some() {
        Vec::new()
    } else {
        config.cmd().clone().unwrap_or_default()
    };
    (entrypoint, cmd)
}
// ANCHOR_END: command

/// dockerd's `No command specified`: neither the flags nor the image give a command. A
/// refused request, as `docker create` exits (1); `run` makes it 125.
fn no_command() -> anyhow::Error {
    Exit::new(crate::cli::code::REQUEST_FAILED, "No command specified").into()
}

/// Refuses, before anything is made, a container with nothing to run (dockerd checks it
/// before the name: `No command specified` comes first). Errors: exit 1, the API's 400.
pub fn check_command(options: &RunOptions, image: &ImageConfiguration) -> Result<()> {
    let config = image.config().clone().unwrap_or_default();
    let (entrypoint, cmd) = entrypoint_and_cmd(options, &config);
    if entrypoint.is_empty() && cmd.is_empty() {
        return Err(no_command());
    }
    Ok(())
}

/// `--hostname`, else the host's name with the host's network (as in Docker), else the short
/// container ID.
fn hostname(parsed: &ParsedOptions, id: &str) -> String {
    match (&parsed.options.hostname, &parsed.network) {
        (Some(h), _) => h.clone(),
        (None, Network::Host) => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| super::short_id(id).to_owned()),
        (None, _) => super::short_id(id).to_owned(),
    }
}

/// The user as typed (`-u`, else the image's `USER`), as resolved in the rootfs's
/// `/etc/passwd` and `/etc/group`, the environment `inspect` shows and the process's own.
type UserAndEnv = (Option<String>, ResolvedUser, Vec<String>, Vec<String>);

// ANCHOR: user_and_env
/// The environment: the flags', then the image's for the keys the flags do not name. The
/// process also gets PATH, HOSTNAME, TERM with a terminal, and HOME from passwd.
fn user_and_env(
    parsed: &ParsedOptions,
    config: &ImageConfig,
    rootfs: &Path,
    hostname: &str,
) -> Result<UserAndEnv> {
    let options = &parsed.options;
    let config_env = merge_env(&parsed.env, config.env().as_deref().unwrap_or_default());
    // An empty -u keeps the image's USER, as Docker's merge does.
    let user_text = options
        .user
        .clone()
        .filter(|u| !u.is_empty())
        .or_else(|| config.user().clone())
        .filter(|u| !u.is_empty());
    let user = resolve_user(
        rootfs,
        user_text.as_deref().unwrap_or_default(),
        &options.group_add,
    )?;
    let env = process_env(&config_env, hostname, options.tty, &user.home);
    Ok((user_text, user, config_env, env))
}
// ANCHOR_END: user_and_env

/// `-w`, else the image's `WorkingDir`, else `/`; made in the rootfs when missing.
fn working_dir(parsed: &ParsedOptions, config: &ImageConfig, rootfs: &Path) -> Result<String> {
    let cwd = match &parsed.workdir {
        Some(w) => w.clone(),
        None => match config.working_dir().as_deref() {
            Some(w) if !w.is_empty() => clean_container_path("the image's WorkingDir", w)?,
            _ => "/".to_owned(),
        },
    };
    if cwd != "/" {
        setup_working_directory(rootfs, &cwd)?;
    }
    Ok(cwd)
}

// ANCHOR: process
/// The spec's `process`: what runs, as whom, where, with which capabilities.
fn process(
    options: &RunOptions,
    user: &ResolvedUser,
    args: Vec<String>,
    env: Vec<String>,
    cwd: &str,
    security: &ContainerSecurity,
) -> Result<Process> {
    Ok(ProcessBuilder::default()
        .terminal(options.tty)
        .user(
            UserBuilder::default()
                .uid(user.uid)
                .gid(user.gid)
                .additional_gids(user.additional_gids.clone())
                .build()?,
        )
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(security.capabilities.clone())
        .no_new_privileges(security.no_new_privileges)
        // Docker's default (`--oom-score-adj 0`), whatever minidock itself runs with.
        .oom_score_adj(0)
        // No rlimits: the container keeps the limits minidock was started with, as Docker's
        // do unless --ulimit is given (raising a hard limit would need CAP_SYS_RESOURCE).
        .rlimits(Vec::new())
        .build()?)
}
// ANCHOR_END: process

// ANCHOR: mounts
/// The spec's `mounts`: Docker's defaults, the volumes (parents before children, so
/// `/data/sub` lands on top of `/data`), the `/etc` files and `docker-init`; and the mount
/// points `inspect` lists.
fn mounts(parsed: &ParsedOptions, init: Option<Mount>) -> Result<(Vec<Mount>, Vec<MountPoint>)> {
    let mut mounts = default_mounts(parsed.options.privileged)?;
    let mut mount_points = Vec::new();
    let mut volumes = parsed.volumes.clone();
    volumes.sort_by_key(|v| v.container.matches('/').count());
    for volume in &volumes {
        mounts.push(crate::volume::spec_mount(volume)?);
        mount_points.extend(crate::volume::mount_point(volume));
    }
    mounts.extend(etc_mounts(&volumes, parsed.options.read_only)?);
    mounts.extend(init);
    Ok((mounts, mount_points))
}
// ANCHOR_END: mounts

// ANCHOR: namespaces
/// The namespaces the container gets: its own PID, IPC, UTS and mount namespaces; the network
/// namespace pinned for it (or another container's, or none with the host's network); a cgroup
/// namespace on a pure v2 host, as Docker gives.
fn namespaces(parsed: &ParsedOptions, bundle: &Path) -> Result<Vec<LinuxNamespace>> {
    let mut namespaces = vec![
        namespace(LinuxNamespaceType::Pid)?,
        namespace(LinuxNamespaceType::Ipc)?,
        namespace(LinuxNamespaceType::Uts)?,
        namespace(LinuxNamespaceType::Mount)?,
    ];
    let netns_path = match &parsed.network {
        // Made and pinned before the start (see `container::network::connect`): the runtime
        // joins it by path, as runc joins the namespace Docker's network layer prepared.
        Network::None | Network::Bridge(_) | Network::UserMode(_) => Some(bundle.join(NETNS_PIN)),
        // The other container's pin (its ID was resolved by `create`).
        Network::Container(other) => bundle.parent().map(|d| d.join(other).join(NETNS_PIN)),
        Network::Host => None,
    };
    if let Some(path) = netns_path {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .path(path)
                .build()?,
        );
    }
    if pure_cgroup_v2() {
        namespaces.push(namespace(LinuxNamespaceType::Cgroup)?);
    }
    Ok(namespaces)
}
// ANCHOR_END: namespaces

// ANCHOR: resources
/// The cgroup limits (`--memory`, `--cpus`, `--pids-limit`) and the device rules.
fn resources(parsed: &ParsedOptions) -> Result<LinuxResources> {
    let mut resources = LinuxResourcesBuilder::default();
    let limits = &parsed.resources;
    if let Some(Limit::Value(bytes)) = limits.memory {
        resources = resources.memory(LinuxMemoryBuilder::default().limit(bytes as i64).build()?);
    }
    if let (Some(Limit::Value(quota)), Some(period)) = (limits.cpu_quota, limits.cpu_period) {
        resources = resources.cpu(
            LinuxCpuBuilder::default()
                .quota(quota as i64)
                .period(period)
                .build()?,
        );
    }
    if let Some(Limit::Value(pids)) = limits.pids {
        resources = resources.pids(LinuxPidsBuilder::default().limit(pids as i64).build()?);
    }
    resources = resources.devices(device_rules(parsed.options.privileged)?);
    Ok(resources.build()?)
}
// ANCHOR_END: resources

// ANCHOR: linux
/// The spec's `linux`: the cgroup, named as Docker names `/docker/<id>`, the namespaces, the
/// limits, the security profile, the host's devices with `--privileged`, and the sysctls.
fn linux(
    parsed: &ParsedOptions,
    bundle: &Path,
    id: &str,
    security: &ContainerSecurity,
) -> Result<Linux> {
    let mut linux = LinuxBuilder::default()
        .cgroups_path(format!("/{}/{id}", crate::cgroup::PARENT))
        .namespaces(namespaces(parsed, bundle)?)
        .resources(resources(parsed)?)
        .masked_paths(security.masked_paths.clone())
        .readonly_paths(security.readonly_paths.clone());
    if let Some(seccomp) = &security.seccomp {
        linux = linux.seccomp(seccomp.clone());
    }
    if parsed.options.privileged {
        linux = linux.devices(host_devices(Path::new("/dev"))?);
    }
    if parsed.network != Network::Host {
        linux = linux.sysctl(unprivileged_net_sysctls());
    }
    Ok(linux.build()?)
}
// ANCHOR_END: linux

/// Docker's defaults for a network namespace of the container's own: binding ports below 1024
/// and ICMP echo sockets need no capability inside it.
fn unprivileged_net_sysctls() -> std::collections::HashMap<String, String> {
    std::collections::HashMap::from([
        (
            "net.ipv4.ip_unprivileged_port_start".to_owned(),
            "0".to_owned(),
        ),
        (
            "net.ipv4.ping_group_range".to_owned(),
            crate::rootless::ping_group_range(),
        ),
    ])
}

/// What `inspect` shows of the flags (`HostConfig` and `Config`), apart from the fields
/// [`build`] resolves itself (user, environment, command, working directory, mount points).
fn run_config(parsed: &ParsedOptions, config: &ImageConfig) -> RunConfig {
    let options = &parsed.options;
    let limits = &parsed.resources;
    RunConfig {
        group_add: options.group_add.clone(),
        tty: options.tty,
        open_stdin: options.interactive,
        auto_remove: options.auto_remove,
        network_mode: network_mode(parsed),
        binds: parsed
            .volumes
            .iter()
            .filter(|v| !v.text.is_empty())
            .map(|v| v.text.clone())
            .collect(),
        volumes_from: options.volumes_from.clone(),
        tmpfs: options
            .tmpfs
            .iter()
            .map(|t| {
                let (path, opts) = t.split_once(':').unwrap_or((t, ""));
                (path.to_owned(), opts.to_owned())
            })
            .collect(),
        privileged: options.privileged,
        readonly_rootfs: options.read_only,
        cap_add: options.cap_add.clone(),
        cap_drop: options.cap_drop.clone(),
        security_opt: options.security_opt.clone(),
        memory: limits.memory.and_then(Limit::value).unwrap_or(0) as i64,
        nano_cpus: match (limits.cpu_quota, limits.cpu_period) {
            (Some(Limit::Value(q)), Some(p)) if p > 0 => (q as i64) * 1_000_000_000 / p as i64,
            _ => 0,
        },
        pids_limit: limits.pids.and_then(Limit::value).unwrap_or(0) as i64,
        stop_signal: options
            .stop_signal
            .clone()
            .or_else(|| config.stop_signal().clone())
            .unwrap_or_else(|| "SIGTERM".into()),
        exposed_ports: exposed_ports(parsed, config),
        labels: config
            .labels()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .chain(parsed.labels.iter().cloned())
            .collect(),
        volumes: crate::volume::config_volumes(
            config.volumes().as_deref().unwrap_or_default(),
            &parsed.volumes,
        ),
        restart_policy: parsed.restart_policy.clone(),
        stop_timeout: options.stop_timeout,
        init: options.init,
        port_bindings: port_bindings(parsed),
        publish_all_ports: options.publish_all,
        dns: options.dns.clone(),
        dns_search: options.dns_search.clone(),
        dns_options: options.dns_option.clone(),
        extra_hosts: options.add_host.clone(),
        ip_address: options.ip.clone().unwrap_or_default(),
        aliases: options.network_alias.clone(),
        ..RunConfig::default()
    }
}

/// `HostConfig.NetworkMode`: `default` for the default bridge, `container:<id>`, or the name.
fn network_mode(parsed: &ParsedOptions) -> String {
    match &parsed.network {
        Network::Bridge(_) if parsed.options.network.is_none() => "default".to_owned(),
        Network::Container(id) => format!("container:{id}"),
        other => other.network_name(),
    }
}

/// The image's exposed ports, then those of `--expose` and the published ones it does not
/// expose.
fn exposed_ports(parsed: &ParsedOptions, config: &ImageConfig) -> Vec<String> {
    let mut ports = config.exposed_ports().clone().unwrap_or_default();
    let more = parsed
        .exposed
        .iter()
        .chain(parsed.port_bindings.iter().map(|(key, _)| key));
    for key in more {
        if !ports.contains(key) {
            ports.push(key.clone());
        }
    }
    ports
}

/// `--expose` as the docker CLI reads it, each range one port at a time (`"7000/udp"`), with
/// its messages (exit 125).
fn parse_expose(values: &[String]) -> Result<Vec<String>> {
    use super::filter::{parse_port_range, split_proto_port};
    let mut out = Vec::new();
    for value in values {
        if value.contains(':') {
            return Err(bad_flag(format!(
                "invalid port format for --expose: {value}"
            )));
        }
        let (proto, port) = split_proto_port(value);
        let (start, end) = parse_port_range(port).map_err(|e| {
            bad_flag(format!(
                "invalid range format for --expose: {value}, error: {}",
                e.cli_text()
            ))
        })?;
        for number in start..=end {
            let key = format!("{number}/{proto}");
            if !out.contains(&key) {
                out.push(key);
            }
        }
    }
    Ok(out)
}

/// `-p`'s bindings grouped by container port, as `HostConfig.PortBindings`.
fn port_bindings(
    parsed: &ParsedOptions,
) -> std::collections::BTreeMap<String, Vec<super::state::PortBinding>> {
    let mut map = std::collections::BTreeMap::new();
    for (key, binding) in &parsed.port_bindings {
        map.entry(key.clone())
            .or_insert_with(Vec::new)
            .push(binding.clone());
    }
    map
}

// ANCHOR: write_bundle
/// Writes `config.json` into the bundle directory. Beside the OCI fields it carries
/// `"Image": "sha256:<id>"`, which is how the image store sees that a container uses an
/// image (`image::store::containers_from_state`); runtimes ignore fields they do not know.
pub fn write_bundle(dir: &Path, spec: &Spec, image_id: &str) -> Result<()> {
    let path = dir.join("config.json");
    explain::trace!(PuttingTogether: "write the bundle's config.json"
        => "write(\"{}\")", path.display());
    let mut value = serde_json::to_value(spec).context("serialising the spec")?;
    value["Image"] = serde_json::Value::from(image_id);
    let bytes = serde_json::to_vec_pretty(&value)?;
    // 0600: the spec holds the container's environment (`-e SECRET=...`), as Docker keeps its
    // container config.
    crate::state::write_atomic_unsynced_with_mode(&path, &bytes, 0o600)
}
// ANCHOR_END: write_bundle

// ANCHOR: init_layer
/// The directory of the init layer, inside the state root: one for every container, as its
/// content never differs from one container to the next.
pub const INIT_LAYER: &str = "init-layer";

/// What Docker's init layer holds (moby `daemon/initlayer`): the mount points the runtime binds
/// or mounts over, and `/.dockerenv`, as (path, what): a directory, an empty file, or a symlink
/// to the target given.
pub const INIT_LAYER_ENTRIES: [(&str, InitEntry); 10] = [
    ("dev/pts", InitEntry::Dir),
    ("dev/shm", InitEntry::Dir),
    ("proc", InitEntry::Dir),
    ("sys", InitEntry::Dir),
    (".dockerenv", InitEntry::File),
    ("etc/resolv.conf", InitEntry::File),
    ("etc/hosts", InitEntry::File),
    ("etc/hostname", InitEntry::File),
    ("dev/console", InitEntry::File),
    ("etc/mtab", InitEntry::Symlink("/proc/mounts")),
];

/// One entry of the init layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitEntry {
    Dir,
    File,
    Symlink(&'static str),
}
// ANCHOR_END: init_layer

// ANCHOR: init_layer_dir
/// The init layer at `<root>/init-layer`, made on first use, and its path: the overlay lower
/// just below every container's upper dir, as Docker stacks its `<id>-init` layer. The files
/// the runtime binds over (`/etc/hosts`, ...) and the mount points exist there, so starting a
/// container writes nothing into its upper dir: `commit` of an unchanged container has no
/// changes to record. Docker makes one such layer per container; its content is the same for
/// all, and overlayfs never writes a lower, so minidock makes it once and shares it. It is
/// built in a temp dir and published by one rename: a crash leaves no half-made layer, and of
/// two `create`s at once, the second's rename fails and it uses the first's.
pub fn init_layer_dir(root: &Path) -> Result<PathBuf> {
    let init = root.join(INIT_LAYER);
    if init.is_dir() {
        return Ok(init);
    }
    remove_stale_init_temps(root);
    let temp = tempfile::Builder::new()
        .prefix(".init-layer-")
        .tempdir_in(root)
        .with_context(|| format!("creating a temp dir in {}", root.display()))?;
    write_init_layer(temp.path())?;
    match std::fs::rename(temp.path(), &init) {
        Ok(()) => {
            let _ = temp.keep();
            Ok(init)
        }
        Err(_) if init.is_dir() => Ok(init),
        Err(e) => Err(e).with_context(|| format!("renaming into {}", init.display())),
    }
}
// ANCHOR_END: init_layer_dir

/// Removes the temp dirs of init layers whose making was killed before its rename: those
/// over a minute old (a younger one may belong to a `create` running now).
fn remove_stale_init_temps(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let minute = std::time::Duration::from_secs(60);
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > minute));
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(".init-layer-")
            && stale
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

// ANCHOR: write_init_layer
/// Fills the empty directory `init` with the init layer's entries, each entry's parents first,
/// with Docker's modes (root's, 0755) whatever the umask; entries are at most two deep.
pub fn write_init_layer(init: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // chmod after creating, so the umask does not narrow Docker's modes.
    let make = |path: &Path, create: &dyn Fn(&Path) -> std::io::Result<()>| {
        create(path)
            .and_then(|()| std::fs::set_permissions(path, PermissionsExt::from_mode(0o755)))
            .with_context(|| format!("creating {}", path.display()))
    };
    let mkdir = |path: &Path| match std::fs::create_dir(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    };
    make(init, &mkdir)?;
    for (rel, entry) in INIT_LAYER_ENTRIES {
        let path = init.join(rel);
        if let Some(parent) = path.parent().filter(|p| !p.is_dir()) {
            make(parent, &mkdir)?;
        }
        match entry {
            InitEntry::Dir => make(&path, &mkdir)?,
            InitEntry::File => make(&path, &|p| std::fs::File::create_new(p).map(drop))?,
            InitEntry::Symlink(target) => std::os::unix::fs::symlink(target, &path)
                .with_context(|| format!("creating {}", path.display()))?,
        }
    }
    Ok(())
}
// ANCHOR_END: write_init_layer

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_are_cleaned_as_go_does_and_relative_ones_refused() {
        // Go's path.Clean: `..` at the root stays at the root.
        for (path, clean) in [
            ("/a/./b//c/../d", "/a/b/d"),
            ("/", "/"),
            ("//", "/"),
            ("/..", "/"),
            ("/../etc", "/etc"),
            ("/../../../../tmp", "/tmp"),
            ("/a/../../etc/", "/etc"),
            ("/a/b/..", "/a"),
            ("/.../x", "/.../x"),
        ] {
            assert_eq!(clean_container_path("w", path).unwrap(), clean, "{path}");
        }
        let err = clean_container_path("the working directory", "x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the working directory 'x' is invalid, it needs to be an absolute path"
        );
        assert!(clean_container_path("w", "").is_err());
        assert!(clean_container_path("w", "./x").is_err());
        // Text from an image is quoted and escaped when it is not plain.
        let err = clean_container_path("w", "a\x1b[2J").unwrap_err();
        assert!(err.to_string().contains("\"a\\x1b[2J\""), "{err}");
    }

    #[test]
    fn volumes_parse_like_docker() {
        let v = parse_volume("/srv/data:/data:ro").unwrap();
        assert_eq!(v.host, PathBuf::from("/srv/data"));
        assert_eq!(v.container, "/data");
        assert!(v.read_only);
        assert!(!parse_volume("/a:/b").unwrap().read_only);
        // Docker cleans the destination as Go's path.Clean does.
        assert_eq!(parse_volume("/a:/../../x/").unwrap().container, "/x");
        for bad in ["/a:relative", "/a:/", "/a:/..", "/a:/b:xx", "a b:/data"] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_entries_replace_by_key() {
        let mut env = vec!["PATH=/bin".to_owned(), "A=1".to_owned()];
        set_env(&mut env, "A=2");
        set_env(&mut env, "B=3");
        assert_eq!(env, ["PATH=/bin", "A=2", "B=3"]);
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn env_flags_are_checked_as_the_docker_cli_does() {
        assert!(parse_env_flag("=x").is_err());
        assert!(parse_env_flag("").is_err());
        // Only an empty name is refused; the rest is the container's business.
        assert_eq!(parse_env_flag("A B=x").unwrap(), "A B=x");
        assert_eq!(parse_env_flag("A=").unwrap(), "A=");
        // Unset here: stays bare, to remove the image's.
        assert_eq!(
            parse_env_flag("MINIDOCK_SURELY_UNSET_VAR").unwrap(),
            "MINIDOCK_SURELY_UNSET_VAR"
        );
        assert_eq!(
            parse_env_flag("PATH").unwrap(),
            format!("PATH={}", std::env::var("PATH").unwrap())
        );
    }

    #[test]
    fn env_files_are_read_as_the_docker_cli_does() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("env");
        std::fs::write(
            &file,
            "\u{feff}A=1\n  # comment\n\n\tB=two words \r\nMINIDOCK_SURELY_UNSET_VAR\nPATH\nC=\n",
        )
        .unwrap();
        assert_eq!(
            read_env_file(&file).unwrap(),
            [
                "A=1".to_owned(),
                "B=two words ".into(),
                format!("PATH={}", std::env::var("PATH").unwrap()),
                "C=".into()
            ]
        );
        for bad in ["=x\n", "A B=1\n", "A\tB\n"] {
            std::fs::write(&file, bad).unwrap();
            assert!(read_env_file(&file).is_err(), "{bad:?}");
        }
        std::fs::write(&file, b"A=\xff\n").unwrap();
        let err = read_env_file(&file).unwrap_err().to_string();
        assert!(err.contains("invalid utf8 bytes at line 1"), "{err}");
    }

    #[test]
    fn env_merges_as_dockers_daemon_does() {
        let image = strings(&["PATH=/img", "FOO=img", "BAR=b"]);
        // The flags' entries first, as given; a bare name drops the image's entry.
        let config = merge_env(&strings(&["FOO", "NEW=1"]), &image);
        assert_eq!(config, ["FOO", "NEW=1", "PATH=/img", "BAR=b"]);
        assert_eq!(merge_env(&[], &image), image);
        let env = process_env(&config, "box", false, "/root");
        assert_eq!(
            env,
            ["PATH=/img", "HOSTNAME=box", "NEW=1", "BAR=b", "HOME=/root"]
        );
        // A bare default name removes the default; the last of duplicates wins.
        let env = process_env(
            &strings(&["HOSTNAME", "A=1", "A=2", "TERM=vt100"]),
            "h",
            true,
            "/",
        );
        assert_eq!(
            env,
            [
                &format!("PATH={DEFAULT_PATH}"),
                "TERM=vt100",
                "A=2",
                "HOME=/"
            ]
        );
        // An empty HOME is replaced by passwd's; a set one is kept.
        assert_eq!(
            process_env(&strings(&["HOME="]), "h", false, "/home/app")
                .last()
                .unwrap(),
            "HOME=/home/app"
        );
        assert_eq!(
            process_env(&strings(&["HOME=/x", "Z=1"]), "h", false, "/home/app"),
            [
                &format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=h",
                "HOME=/x",
                "Z=1"
            ]
        );
    }

    fn rule_text(rule: &LinuxDeviceCgroup) -> String {
        let number = |n: Option<i64>| n.map_or("*".to_owned(), |n| n.to_string());
        format!(
            "{} {} {}:{} {}",
            if rule.allow() { "allow" } else { "deny" },
            rule.typ().map_or("a".to_owned(), |t| t.as_str().to_owned()),
            number(rule.major()),
            number(rule.minor()),
            rule.access().as_deref().unwrap_or("")
        )
    }

    #[test]
    fn device_rules_are_dockers() {
        let rules: Vec<String> = device_rules(false).unwrap().iter().map(rule_text).collect();
        assert_eq!(
            rules,
            [
                "deny a *:* rwm",
                "allow c 1:5 rwm",
                "allow c 1:3 rwm",
                "allow c 1:9 rwm",
                "allow c 1:8 rwm",
                "allow c 5:0 rwm",
                "allow c 5:1 rwm",
                "deny c 10:229 rwm",
            ]
        );
        let privileged: Vec<String> = device_rules(true).unwrap().iter().map(rule_text).collect();
        assert_eq!(privileged, ["allow a *:* rwm"]);
        // In config.json a rule for every device names no type and no numbers, as moby's.
        let json = serde_json::to_value(&device_rules(false).unwrap()[0]).unwrap();
        assert_eq!(json, serde_json::json!({"allow": false, "access": "rwm"}));
    }

    #[test]
    fn the_cgroup_mount_is_read_only_unless_privileged() {
        let options = |privileged: bool, destination: &str| {
            default_mounts(privileged)
                .unwrap()
                .iter()
                .find(|m| m.destination() == Path::new(destination))
                .unwrap()
                .options()
                .clone()
                .unwrap()
                .join(",")
        };
        assert_eq!(options(false, "/sys/fs/cgroup"), "ro,nosuid,noexec,nodev");
        assert_eq!(options(false, "/sys"), "nosuid,noexec,nodev,ro");
        assert_eq!(options(true, "/sys/fs/cgroup"), "nosuid,noexec,nodev");
        assert_eq!(options(true, "/sys"), "nosuid,noexec,nodev");
        assert_eq!(options(true, "/proc"), "nosuid,noexec,nodev");
    }

    #[test]
    fn etc_files_follow_read_only_and_give_way_to_volumes() {
        let options = |m: &Mount| m.options().clone().unwrap().join(",");
        let rw = etc_mounts(&[], false).unwrap();
        assert_eq!(rw.len(), 3);
        assert!(rw.iter().all(|m| options(m) == "rbind,rprivate"));
        let ro = etc_mounts(&[], true).unwrap();
        assert!(ro.iter().all(|m| options(m) == "rbind,rprivate,ro"));
        let volume = parse_volume("/srv/hosts:/etc/hosts").unwrap();
        let mounts = etc_mounts(&[volume], true).unwrap();
        let destinations: Vec<_> = mounts.iter().map(|m| m.destination().clone()).collect();
        assert_eq!(
            destinations,
            [
                PathBuf::from("/etc/resolv.conf"),
                PathBuf::from("/etc/hostname")
            ]
        );
    }

    #[test]
    fn host_devices_are_chosen_as_moby_does() {
        use nix::sys::stat::{Mode, SFlag, makedev, mknod};
        if !nix::unistd::geteuid().is_root() {
            assert!(
                std::env::var("CI").is_err(),
                "this test needs root (mknod) under CI"
            );
            eprintln!("SKIPPED: host_devices_are_chosen_as_moby_does needs root (mknod)");
            return;
        }
        let dev = tempfile::tempdir().unwrap();
        let node = |path: &str, kind: SFlag, major: u64, minor: u64| {
            let path = dev.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            mknod(
                &path,
                kind,
                Mode::from_bits_truncate(0o640),
                makedev(major, minor),
            )
            .unwrap();
        };
        node("null", SFlag::S_IFCHR, 1, 3);
        node("loop0", SFlag::S_IFBLK, 7, 0);
        node("net/tun", SFlag::S_IFCHR, 10, 200);
        node("console", SFlag::S_IFCHR, 5, 1);
        node("pts/0", SFlag::S_IFCHR, 136, 0);
        node(".udev/x", SFlag::S_IFCHR, 1, 3);
        node("initctl", SFlag::S_IFIFO, 0, 0);
        std::os::unix::fs::symlink("null", dev.path().join("core")).unwrap();
        std::fs::write(dev.path().join("regular"), "").unwrap();
        let found: Vec<String> = host_devices(dev.path())
            .unwrap()
            .iter()
            .map(|d| {
                format!(
                    "{} {} {}:{} {:o}",
                    d.path().strip_prefix(dev.path()).unwrap().display(),
                    d.typ().as_str(),
                    d.major(),
                    d.minor(),
                    d.file_mode().unwrap()
                )
            })
            .collect();
        assert_eq!(
            found,
            ["loop0 b 7:0 640", "net/tun c 10:200 640", "null c 1:3 640"]
        );
    }
}
