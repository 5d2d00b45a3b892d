//! The container subcommands of `minidock`, with Docker's flags and output: `run`, `create`,
//! `start`, `stop`, `restart`, `kill`, `rm`, `wait`, `ps`, `logs`, `inspect`, `exec`, `cp`,
//! `export`, `top`, and the hidden `shim`.
//!
//! `src/bin/minidock.rs` flattens [`ContainerCommand`] into its own subcommands and calls
//! [`run_command`]; the tables are built by functions that return strings, so the tests check
//! exactly what a user sees.

use super::attach::Foreground;
use super::logs::LogsOptions;
use super::shim::{Attach, start_detached, supervise};
use super::spec::RunOptions;
use super::state::{ContainerState, Status};
use super::{CreateOptions, Paths, short_id};
use crate::cli::{Exit, code, exit_code_of};
use crate::image::cli::{format_table, human_duration};
use crate::runtime::signal::Signal;
use crate::state::disk_full_at;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const NETWORK_HELP: &str = "\
Networking: a container joins the default bridge network (minidock0) unless --network says \
none, host, container:NAME or another bridge network. -p and -P publish its ports on the host \
(IPv4 only).";

/// `minidock run|create [OPTIONS] IMAGE [COMMAND] [ARG...]`
#[derive(Debug, Clone, clap::Args)]
#[command(disable_help_flag = true, after_help = NETWORK_HELP)]
pub struct RunArgs {
    /// Run in the background and print the container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Keep stdin open: the container reads this terminal's input
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the container a terminal (a pty)
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Attach to STDIN, STDOUT or STDERR (repeatable; default: STDOUT and STDERR, and STDIN
    /// with -i)
    #[arg(short = 'a', long = "attach", value_name = "STREAM", value_parser = parse_stream)]
    pub attach: Vec<String>,
    /// Name the container ([a-zA-Z0-9][a-zA-Z0-9_.-]+)
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to pass this one's value)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file (KEY=VALUE lines)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// The working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// The user to run as: name|uid[:group|gid]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Add a supplementary group (a name or a gid) to the process
    #[arg(long = "group-add", value_name = "GROUP", allow_hyphen_values = true)]
    pub group_add: Vec<String>,
    /// The container's hostname
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Override the image's ENTRYPOINT
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Memory limit (e.g. 32m, 1g)
    #[arg(short = 'm', long, value_parser = parse_memory_arg)]
    pub memory: Option<String>,
    /// Number of CPUs (e.g. 0.5)
    #[arg(long, value_parser = parse_cpus_arg)]
    pub cpus: Option<NanoCpus>,
    /// Limit on processes (-1 or 0: unlimited)
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Bind mount a volume: NAME:/PATH, /HOST:/PATH or /PATH (anonymous), [:ro|rw,nocopy]
    #[arg(short = 'v', long = "volume", value_name = "[SOURCE:]/PATH[:OPTIONS]")]
    pub volumes: Vec<String>,
    /// Attach a filesystem mount: type=bind|volume|tmpfs,source=,target=,readonly,...
    #[arg(long = "mount", value_name = "MOUNT")]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory: /PATH[:OPTIONS]
    #[arg(long = "tmpfs", value_name = "/PATH[:OPTIONS]")]
    pub tmpfs: Vec<String>,
    /// Mount the volumes of another container: CONTAINER[:ro|rw]
    #[arg(long = "volumes-from", value_name = "CONTAINER[:ro|rw]")]
    pub volumes_from: Vec<String>,
    /// Mount the container's root filesystem read-only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Connect to a network: bridge (default), none, host, container:NAME or a network name
    #[arg(long = "network", alias = "net", value_name = "NETWORK")]
    pub network: Option<String>,
    /// Publish a container's port(s) to the host: [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    pub publish: Vec<String>,
    /// Expose a port or a range of ports: PORT[/PROTO] or START-END[/PROTO]
    #[arg(long = "expose", value_name = "PORTS")]
    pub expose: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Set custom DNS servers
    #[arg(long = "dns", value_name = "IP")]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "OPTION")]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (NAME:IP)
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_host: Vec<String>,
    /// IPv4 address (on a user-defined network)
    #[arg(long = "ip", value_name = "ADDRESS")]
    pub ip: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", value_name = "ALIAS")]
    pub network_alias: Vec<String>,
    /// Add a Linux capability
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a Linux capability
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Security options: seccomp=unconfined, seccomp=PROFILE.json, no-new-privileges
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Give the container every capability, no seccomp filter, nothing masked
    #[arg(long)]
    pub privileged: bool,
    /// Restart policy: no, on-failure[:max-retries], always, unless-stopped
    #[arg(long, value_name = "POLICY", default_value = "no")]
    pub restart: String,
    /// Set a label (KEY=VALUE, or KEY for an empty value)
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Read labels from a file (KEY=VALUE lines)
    #[arg(long = "label-file", value_name = "FILE")]
    pub label_file: Vec<PathBuf>,
    /// The signal that stops the container (name or number)
    #[arg(long = "stop-signal", value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before killing the container
    #[arg(
        long = "stop-timeout",
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    pub stop_timeout: Option<i64>,
    /// Write the container ID to this file
    #[arg(long, value_name = "FILE")]
    pub cidfile: Option<PathBuf>,
    /// Run an init as PID 1 that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Proxy received signals to the process
    #[arg(
        long = "sig-proxy",
        value_name = "true|false",
        default_value_t = true,
        default_missing_value = "true",
        num_args = 0..=1,
        require_equals = true,
        action = clap::ArgAction::Set
    )]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q)
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// The image
    pub image: String,
    /// The command and its arguments (default: the image's)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

impl RunArgs {
    fn create_options(&self) -> CreateOptions {
        CreateOptions {
            image: self.image.clone(),
            name: self.name.clone().filter(|n| !n.is_empty()),
            run: RunOptions {
                command: self.command.clone(),
                entrypoint: self.entrypoint.clone(),
                env: self.env.clone(),
                env_files: self.env_file.clone(),
                workdir: self.workdir.clone(),
                user: self.user.clone(),
                group_add: self.group_add.clone(),
                hostname: self.hostname.clone(),
                memory: self.memory.clone(),
                cpus: self.cpus.filter(|n| n.0 != 0).map(|n| n.to_string()),
                pids_limit: self.pids_limit,
                volumes: self.volumes.clone(),
                mounts: self.mount.clone(),
                tmpfs: self.tmpfs.clone(),
                volumes_from: self.volumes_from.clone(),
                read_only: self.read_only,
                network: self.network.clone(),
                cap_add: self.cap_add.clone(),
                cap_drop: self.cap_drop.clone(),
                security_opt: self.security_opt.clone(),
                privileged: self.privileged,
                tty: self.tty,
                interactive: self.interactive,
                auto_remove: self.rm,
                restart: self.restart.clone(),
                labels: self.label.clone(),
                label_files: self.label_file.clone(),
                stop_signal: self.stop_signal.clone(),
                stop_timeout: self.stop_timeout,
                init: self.init,
                publish: self.publish.clone(),
                expose: self.expose.clone(),
                publish_all: self.publish_all,
                dns: self.dns.clone(),
                dns_search: self.dns_search.clone(),
                dns_option: self.dns_option.clone(),
                add_host: self.add_host.clone(),
                ip: self.ip.clone(),
                network_alias: self.network_alias.clone(),
            },
            supervised: false,
            build_step: false,
        }
    }
}

/// Containers named on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct ContainersArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `minidock attach [OPTIONS] CONTAINER`
#[derive(Debug, Clone, clap::Args)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process (without a tty)
    #[arg(
        long = "sig-proxy",
        value_name = "true|false",
        default_value_t = true,
        default_missing_value = "true",
        num_args = 0..=1,
        require_equals = true,
        action = clap::ArgAction::Set
    )]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q)
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct StartArgs {
    /// Attach: print the container's output and exit with its status
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// The container reads this terminal's input
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q)
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct StopArgs {
    /// Signal to send to the container (default: the image's STOPSIGNAL, else SIGTERM)
    #[arg(short = 's', long = "signal")]
    pub signal: Option<String>,
    /// Seconds to wait for the container to stop before killing it (default: the container's
    /// --stop-timeout, else 10; negative: forever)
    #[arg(short = 't', long = "timeout", alias = "time")]
    pub time: Option<i64>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct KillArgs {
    /// The signal to send (name or number: KILL, SIGRTMIN+3, 37)
    #[arg(short = 's', long = "signal", default_value = "KILL")]
    pub signal: String,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RmArgs {
    /// Kill a running container first
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove the anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct PsArgs {
    /// Show all containers (default: only running ones)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only show container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output based on conditions provided (status, name, id, label, ancestor,
    /// exited, before, since, volume, network, publish, expose, isolation)
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", allow_negative_numbers = true, default_value_t = -1)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    /// Format the output with a Go template ({{.ID}}, {{json .}}, or `table` and columns:
    /// ID, Image, Command, CreatedAt, RunningFor, Ports, State, Status, Size, Names, Labels,
    /// Mounts, Networks, LocalVolumes)
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    /// Keep printing what the container writes
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines ("all" for everything)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42
    /// minutes)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42
    /// minutes)
    #[arg(long)]
    pub until: Option<String>,
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    /// Format the output with a Go template ({{.State.Pid}}, {{json .Mounts}}, {{range}}...)
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ExecArgs {
    /// Keep stdin open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The user to run as: name|uid[:group|gid]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// The working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Set an environment variable
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// A process that cannot start is reported as dockerd reports it (its runtime's message
    /// on stdout, exit code 126): what `minidock daemon` asks for, as Docker's API does.
    #[arg(long, hide = true)]
    pub oci_start_errors: bool,
    /// The process's stdout and stderr are /dev/null, and ours is closed once it runs: what
    /// `minidock daemon` reads to learn whether a detached exec started.
    #[arg(long, hide = true)]
    pub start_report: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// SRC_PATH or CONTAINER:SRC_PATH
    pub source: String,
    /// DEST_PATH or CONTAINER:DEST_PATH
    pub destination: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// Write to a file instead of stdout
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    #[arg(value_name = "PORT")]
    pub port: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format the output with a Go template ({{json .}}, or `table` and columns: Container,
    /// ID, Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs)
    #[arg(long)]
    pub format: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct UpdateArgs {
    /// Memory limit (e.g. 32m, 1g)
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory plus swap limit: -1 for unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs (e.g. 0.5)
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// Limit on processes (-1: unlimited)
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy: no, on-failure[:max-retries], always, unless-stopped
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ShimArgs {
    #[arg(long = "runtime-root")]
    pub runtime_root: PathBuf,
    /// Restart the exited process after this many milliseconds (a restart policy handed
    /// over by an attached `run`).
    #[arg(long = "restart-after-ms")]
    pub restart_after_ms: Option<u64>,
    pub id: String,
}

/// `minidock shim-step`: one launch or teardown for a light shim (`minidock-shim`).
#[derive(Debug, Clone, clap::Args)]
pub struct ShimStepArgs {
    #[arg(long = "runtime-root")]
    pub runtime_root: PathBuf,
    /// Restart the exited process after this many milliseconds.
    #[arg(long = "resume-after-ms")]
    pub resume_after_ms: Option<u64>,
    /// The process exited with this status: tear the run down, maybe restart it.
    #[arg(long, requires_all = ["ran_ms", "backoff_ms"])]
    pub exited: Option<i32>,
    /// How long the process ran, in milliseconds.
    #[arg(long = "ran-ms")]
    pub ran_ms: Option<u64>,
    /// The restart back-off so far, in milliseconds.
    #[arg(long = "backoff-ms")]
    pub backoff_ms: Option<u64>,
    pub id: String,
}

/// The container subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ContainerCommand {
    /// Create and run a new container from an image
    Run(Box<RunArgs>),
    /// Create a new container (without starting it)
    Create(Box<RunArgs>),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Stop one or more running containers (SIGTERM, then SIGKILL)
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Send a signal to one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),
    /// List containers
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Display detailed information on one or more containers
    Inspect(InspectArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Copy files between a container and the host
    Cp(CpArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// (internal) supervise a detached container
    #[command(hide = true)]
    Shim(ShimArgs),
    /// (internal) launch or tear down a container for a light shim
    #[command(hide = true, name = "shim-step")]
    ShimStep(ShimStepArgs),
}

/// `run -a`'s value: one of Docker's stream names, in any case.
fn parse_stream(text: &str) -> std::result::Result<String, String> {
    let upper = text.to_ascii_uppercase();
    match upper.as_str() {
        "STDIN" | "STDOUT" | "STDERR" => Ok(upper),
        _ => Err("valid streams are STDIN, STDOUT and STDERR".to_owned()),
    }
}

/// A signal flag's value, parsed as Docker's daemon parses it (`signal.ParseSignal`): a
/// signal it refuses fails the request (exit 1), not the command line.
fn request_signal(text: &str) -> Result<Signal> {
    Signal::parse(text).map_err(|err| Exit::new(super::REQUEST_FAILED, err.to_string()).into())
}

/// `-m`'s value, checked as Docker's `units.RAMInBytes` checks it: a number, an optional
/// unit `k`, `m`, `g`, `t` or `p` (any case, optionally followed by `i` and `b`) and nothing
/// else; the text is kept for the spec.
fn parse_memory_arg(text: &str) -> std::result::Result<String, String> {
    ram_in_bytes(text)
        .map(|_| text.to_owned())
        .ok_or_else(|| format!("invalid size: '{text}'"))
}

/// Docker's `units.RAMInBytes`: bytes, binary units; `None` when the text is not a size.
pub fn ram_in_bytes(text: &str) -> Option<i64> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    if !number.starts_with(|c: char| c.is_ascii_digit()) || number.ends_with('.') {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let (letter, rest) = unit.split_at(unit.len().min(1));
    let (shift, rest) = match "kmgtp".find(letter) {
        Some(i) if !letter.is_empty() => (10 * (i as i32 + 1), rest),
        _ => (0, unit.as_str()),
    };
    let rest = rest.strip_prefix('i').unwrap_or(rest);
    if !(rest.is_empty() || rest == "b") {
        return None;
    }
    Some((value * 2f64.powi(shift)) as i64)
}

/// `--cpus` as Docker holds it: billionths of a CPU (`NanoCPUs`); 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NanoCpus(pub i64);

impl std::fmt::Display for NanoCpus {
    /// As a decimal number of CPUs: `1.5`, `0.01`, `2`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let (whole, part) = (
            self.0.unsigned_abs() / 1_000_000_000,
            self.0.unsigned_abs() % 1_000_000_000,
        );
        let part = format!("{part:09}");
        match part.trim_end_matches('0') {
            "" => write!(f, "{sign}{whole}"),
            digits => write!(f, "{sign}{whole}.{digits}"),
        }
    }
}

/// `--cpus`'s value, parsed as Docker's `opts.NanoCPUs` parses it: a rational number (`1.5`,
/// `3/2`, `-1`) that is a whole number of billionths.
fn parse_cpus_arg(text: &str) -> std::result::Result<NanoCpus, String> {
    let nanos = match text.split_once('/') {
        Some((a, b)) => {
            let (a, b) = (a.parse::<i64>(), b.parse::<i64>());
            match (a, b) {
                (Ok(a), Ok(b)) if b != 0 => {
                    let n = i128::from(a) * 1_000_000_000;
                    if n % i128::from(b) != 0 {
                        return Err("value is too precise".into());
                    }
                    i64::try_from(n / i128::from(b))
                        .map_err(|_| "value is too large".to_string())?
                }
                _ => return Err(format!("failed to parse {text} as a rational number")),
            }
        }
        None => decimal_nanos(text)?,
    };
    Ok(NanoCpus(nanos))
}

/// A decimal number (`-0.5`, `2`, `1.25`) times 10^9, exactly; errors as Docker's do.
fn decimal_nanos(text: &str) -> std::result::Result<i64, String> {
    let bad = || format!("failed to parse {text} as a rational number");
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, part) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && part.is_empty()) || !all_digits(whole) || !all_digits(part) {
        return Err(bad());
    }
    let part = part.trim_end_matches('0');
    if part.len() > 9 {
        return Err("value is too precise".into());
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let part: i64 = format!("{part:0<9}").parse().map_err(|_| bad())?;
    let nanos = whole
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(part))
        .ok_or_else(|| "value is too large".to_string())?;
    Ok(if negative { -nanos } else { nanos })
}

/// The limits Docker's daemon refuses at create (`verifyPlatformContainerResources`): CPUs
/// outside 0.01 to the number of CPUs, and a memory limit under 6 MiB.
pub fn check_resources(args: &RunArgs) -> Result<()> {
    if let Some(NanoCpus(nanos)) = args.cpus {
        check_nano_cpus(nanos)?;
    }
    let memory = args.memory.as_deref().and_then(ram_in_bytes).unwrap_or(0);
    if memory > 0 && memory < MIN_MEMORY {
        anyhow::bail!("Minimum memory limit allowed is 6MB");
    }
    Ok(())
}

/// Docker's check of a CPU limit in billionths of a CPU (`NanoCpus`, `--cpus` times 10^9):
/// negative or more than the CPUs this process may run on is refused, in Docker's words.
pub fn check_nano_cpus(nanos: i64) -> Result<()> {
    let online = online_cpus();
    if nanos < 0 || nanos > online * 1_000_000_000 {
        anyhow::bail!(
            "Range of CPUs is from 0.01 to {online}.00, as there are only {online} CPUs available"
        );
    }
    Ok(())
}

/// Docker's smallest memory limit (`linuxMinMemory`): 6 MiB.
const MIN_MEMORY: i64 = 6 << 20;

/// The CPUs this process may run on (sched_getaffinity(2)), as Go's `runtime.NumCPU`.
fn online_cpus() -> i64 {
    let Ok(set) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) else {
        return 1;
    };
    let count = (0..nix::sched::CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .count();
    count.max(1) as i64
}

/// `stop -t`: seconds; a negative value waits as long as it takes, as Docker's does.
fn stop_timeout(seconds: i64) -> Duration {
    const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    u64::try_from(seconds).map_or(FOREVER, Duration::from_secs)
}

/// `run`'s errors exit 125, except "cannot execute" (126) and "not found" (127), as Docker's.
fn run_error(err: anyhow::Error) -> anyhow::Error {
    match exit_code_of(&err) {
        code::CANNOT_EXECUTE | code::NOT_FOUND | code::FAILED => err,
        _ => Exit::new(code::FAILED, format!("{err:#}")).into(),
    }
}

/// `create`'s errors: a flag minidock cannot use exits 125, as the docker CLI's own checks
/// do; a refused request (no such image, a name in use) exits 1, as `docker create` does
/// with the daemon's errors.
fn create_error(err: anyhow::Error) -> anyhow::Error {
    let explicit = err.chain().any(|cause| cause.is::<Exit>());
    if explicit {
        err
    } else {
        Exit::new(super::REQUEST_FAILED, format!("{err:#}")).into()
    }
}

/// Runs `body` for each container argument, as Docker does: print the argument on success,
/// the error on failure, go on with the next; exit 1 if any failed.
fn for_each(names: &[String], mut body: impl FnMut(&str) -> Result<Option<String>>) -> Result<u8> {
    let mut failed = false;
    for name in names {
        match body(name) {
            Ok(Some(line)) => println!("{line}"),
            Ok(None) => {}
            Err(err) => {
                eprintln!("minidock: {}", crate::cli::one_line(&format!("{err:#}")));
                failed = true;
            }
        }
    }
    Ok(if failed { super::REQUEST_FAILED } else { 0 })
}

/// Dispatches one container subcommand.
pub fn run_command(cli_root: Option<&Path>, command: &ContainerCommand) -> Result<u8> {
    let paths = Paths::new(cli_root);
    match command {
        ContainerCommand::Run(args) => run_run(&paths, args),
        ContainerCommand::Create(args) => {
            // The daemon's refusals exit 1 from `docker create`, 125 from `docker run`.
            check_resources(args).map_err(crate::image::cli::request_failed)?;
            let state = create_with_cidfile(&paths, args, &args.create_options(), create_error)?;
            println!("{}", state.id);
            Ok(0)
        }
        ContainerCommand::Start(args) => run_start(&paths, args),
        ContainerCommand::Attach(args) => super::attach::attach(
            &paths,
            &args.container,
            &super::attach::AttachOptions {
                no_stdin: args.no_stdin,
                sig_proxy: args.sig_proxy,
                detach_keys: args.detach_keys.clone(),
            },
        ),
        ContainerCommand::Stop(args) => {
            let signal = args.signal.as_deref().map(request_signal).transpose()?;
            for_each(&args.containers, |name| {
                super::stop(&paths, name, args.time.map(stop_timeout), signal)?;
                Ok(Some(name.to_owned()))
            })
        }
        ContainerCommand::Restart(args) => for_each(&args.containers, |name| {
            let signal = args.signal.as_deref().map(request_signal).transpose()?;
            let timeout = args.time.map(stop_timeout);
            super::restart(&paths, name, timeout, signal, |id| {
                start_detached(&paths, id)
            })?;
            Ok(Some(name.to_owned()))
        }),
        ContainerCommand::Kill(args) => {
            let signal = request_signal(&args.signal)?;
            for_each(&args.containers, |name| {
                super::kill(&paths, name, signal)?;
                Ok(Some(name.to_owned()))
            })
        }
        ContainerCommand::Rm(args) => for_each(&args.containers, |name| {
            super::remove_with_volumes(&paths, name, args.force, args.volumes)?;
            Ok(Some(name.to_owned()))
        }),
        ContainerCommand::Wait(args) => for_each(&args.containers, |name| {
            Ok(Some(super::wait(&paths, name)?.to_string()))
        }),
        ContainerCommand::Ps(args) => {
            let text = ps_table(&paths, args, SystemTime::now())
                .map_err(crate::image::cli::request_failed)?;
            print!("{text}");
            Ok(0)
        }
        ContainerCommand::Logs(args) => {
            let tail = match args.tail.as_str() {
                "all" | "-1" => None,
                n => Some(n.parse::<usize>().map_err(|_| {
                    Exit::new(
                        super::REQUEST_FAILED,
                        format!("invalid --tail {n:?}: a number, or all"),
                    )
                })?),
            };
            let now = SystemTime::now();
            let time = |flag: &str, value: &Option<String>| {
                value
                    .as_deref()
                    .map(|v| super::logs::parse_log_time(flag, v, now))
                    .transpose()
            };
            let options = LogsOptions {
                follow: args.follow,
                tail,
                timestamps: args.timestamps,
                since: time("since", &args.since)?,
                until: time("until", &args.until)?,
                details: args.details,
            };
            super::logs::logs(&paths, &args.container, &options)?;
            Ok(0)
        }
        ContainerCommand::Inspect(args) => run_inspect(&paths, args),
        ContainerCommand::Exec(args) => {
            let options = super::exec::ExecOptions {
                command: args.command.clone(),
                interactive: args.interactive,
                tty: args.tty,
                user: args.user.clone(),
                workdir: args.workdir.clone(),
                env: args.env.clone(),
                oci_start_errors: args.oci_start_errors,
                start_report: args.start_report,
            };
            super::exec::exec(&paths, &args.container, &options)
        }
        ContainerCommand::Cp(args) => {
            let options = super::fs::CpOptions {
                follow_link: args.follow_link,
                archive: args.archive,
            };
            super::fs::cp(&paths, &args.source, &args.destination, &options)?;
            Ok(0)
        }
        ContainerCommand::Export(args) => {
            super::fs::export(&paths, &args.container, args.output.as_deref())?;
            Ok(0)
        }
        ContainerCommand::Port(args) => {
            let state = paths.resolve(&args.container)?;
            let att = super::network::attachment(&paths, &state.id);
            let ports = super::network::settings_ports(&state.config, att.as_ref());
            let text = super::network::port_lines(&state.name, &ports, args.port.as_deref())
                .map_err(|e| Exit::new(code::REQUEST_FAILED, format!("{e:#}")))?;
            print!("{text}");
            Ok(0)
        }
        ContainerCommand::Top(args) => {
            print!("{}", super::top::top(&paths, &args.container)?);
            Ok(0)
        }
        ContainerCommand::Diff(args) => {
            print!("{}", super::diff::diff(&paths, &args.container)?);
            Ok(0)
        }
        ContainerCommand::Stats(args) => super::stats::stats(
            &paths,
            &super::stats::StatsOptions {
                all: args.all,
                no_stream: args.no_stream,
                no_trunc: args.no_trunc,
                format: args.format.clone(),
                containers: args.containers.clone(),
            },
        ),
        ContainerCommand::Pause(args) => for_each(&args.containers, |name| {
            super::pause::pause(&paths, name)?;
            Ok(Some(name.to_owned()))
        }),
        ContainerCommand::Unpause(args) => for_each(&args.containers, |name| {
            super::pause::unpause(&paths, name)?;
            Ok(Some(name.to_owned()))
        }),
        ContainerCommand::Rename(args) => {
            super::rename::rename(&paths, &args.container, &args.new_name)?;
            Ok(0)
        }
        ContainerCommand::Update(args) => run_update(&paths, args),
        ContainerCommand::Shim(args) => {
            let paths = Paths {
                root: paths.root.clone(),
                runtime_root: args.runtime_root.clone(),
            };
            let delay = args.restart_after_ms.map(Duration::from_millis);
            super::shim::shim_main(&paths, &args.id, delay)
        }
        ContainerCommand::ShimStep(args) => {
            let paths = Paths {
                root: paths.root.clone(),
                runtime_root: args.runtime_root.clone(),
            };
            run_shim_step(&paths, args)
        }
    }
}

fn run_shim_step(paths: &Paths, args: &ShimStepArgs) -> Result<u8> {
    use super::shim::{Given, Step};
    use std::os::fd::{FromRawFd, OwnedFd};
    let step = match (args.resume_after_ms, args.exited) {
        (Some(ms), _) => Step::Resume(Duration::from_millis(ms)),
        (None, Some(status)) => Step::Exited {
            status,
            ran: Duration::from_millis(args.ran_ms.unwrap_or(0)),
            backoff: Duration::from_millis(args.backoff_ms.unwrap_or(0)),
        },
        (None, None) => Step::First,
    };
    for fd in 3..=6 {
        nix::fcntl::fcntl(
            // SAFETY: checked open by F_GETFD just below; no one else owns 3..6 here.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::fcntl::FcntlArg::F_GETFD,
        )
        .with_context(|| format!("descriptor {fd} from the light shim"))?;
    }
    let parent = nix::unistd::getppid().as_raw();
    // SAFETY: the light shim passes 3..6 (checked open above), owned by nobody else here.
    let given = unsafe {
        Given {
            stdin: OwnedFd::from_raw_fd(3),
            stdout: OwnedFd::from_raw_fd(4),
            stderr: OwnedFd::from_raw_fd(5),
            console: OwnedFd::from_raw_fd(6),
            supervisor: (
                parent,
                crate::runtime::process_start_time(parent).unwrap_or(0),
            ),
        }
    };
    super::shim::step_main(paths, &args.id, step, given)
}

// ANCHOR: run_run
/// `minidock run`: create, then start detached (print the ID), or in the foreground (print
/// the output, exit with the container's status): with a terminal (`-t`) or `--sig-proxy=false`
/// as Docker's CLI, started under the light shim and attached to it, so the detach keys leave
/// it running and a signal that ends this process does not end it ([`attached`]); otherwise
/// supervised in this process, which spares `run --rm IMAGE true` a shim and lets `-i` hand
/// the container this process's own stdin.
pub fn run_run(paths: &Paths, args: &RunArgs) -> Result<u8> {
    check_run_args(args)?;
    let options = CreateOptions {
        supervised: true,
        ..args.create_options()
    };
    let state = create_with_cidfile(paths, args, &options, run_error)?;
    if args.detach {
        start_detached(paths, &state.id).map_err(run_error)?;
        println!("{}", state.id);
        return Ok(0);
    }
    let wants = |stream: &str| args.attach.is_empty() || args.attach.iter().any(|a| a == stream);
    let foreground = Foreground {
        stdin: args.interactive && wants("STDIN"),
        stdout: wants("STDOUT"),
        stderr: wants("STDERR"),
        sig_proxy: args.sig_proxy,
        detach_keys: args.detach_keys.as_deref(),
    };
    if args.tty || !args.sig_proxy {
        return attached(paths, &state, &foreground, run_error);
    }
    // Bad detach keys fail the attach request: exit 1, the container stays created.
    super::attach::parse_detach_keys(
        args.detach_keys
            .as_deref()
            .unwrap_or(super::attach::DEFAULT_DETACH_KEYS),
    )?;
    let mut attach = Attach::streams(foreground.stdin, foreground.stdout, foreground.stderr)?;
    attach.sig_proxy = args.sig_proxy;
    supervise(paths, &state.id, Some(attach), &mut |_| {}).map_err(run_error)
}
// ANCHOR_END: run_run

// ANCHOR: check_run_args
/// What `run` refuses before anything is made, as Docker's CLI: `-a` with `-d`, a terminal
/// for a stdin that is not one, and resource flags out of range.
fn check_run_args(args: &RunArgs) -> Result<()> {
    if args.detach && !args.attach.is_empty() {
        return Err(Exit::new(
            super::REQUEST_FAILED,
            "conflicting options: cannot specify both --attach and --detach",
        )
        .into());
    }
    // Docker's CLI: `-i` attaches stdin whatever `-a` says.
    let attach_stdin = args.interactive || args.attach.iter().any(|a| a == "STDIN");
    if !args.detach && args.tty && attach_stdin {
        super::attach::check_tty()?;
    }
    check_resources(args).map_err(run_error)?;
    Ok(())
}
// ANCHOR_END: check_run_args

/// A foreground `run` or `start -a` as Docker's CLI does it: start under the light shim, attach,
/// wait ([`super::attach::foreground`]); supervised in this process when the light shim is not
/// installed. A failed start's error goes through `exit_of`.
fn attached(
    paths: &Paths,
    state: &ContainerState,
    foreground: &Foreground,
    exit_of: fn(anyhow::Error) -> anyhow::Error,
) -> Result<u8> {
    if super::shim::light_shim_installed() {
        // Bad detach keys fail before the start (exit 1, the container stays created).
        super::attach::parse_detach_keys(
            foreground
                .detach_keys
                .unwrap_or(super::attach::DEFAULT_DETACH_KEYS),
        )?;
        return super::attach::foreground(paths, state, foreground).map_err(exit_of);
    }
    let mut attach = Attach::streams(foreground.stdin, foreground.stdout, foreground.stderr)?;
    attach.sig_proxy = foreground.sig_proxy;
    supervise(paths, &state.id, Some(attach), &mut |_| {}).map_err(exit_of)
}

// ANCHOR: cidfile
/// `create` with `--cidfile`, as the docker CLI does it: the file is made (it must not exist)
/// before the container, gets the full ID once it exists, and is removed if `create` fails.
/// `exit_of` gives a failed `create` its exit code (`run` and `create` differ, as Docker's).
fn create_with_cidfile(
    paths: &Paths,
    args: &RunArgs,
    options: &CreateOptions,
    exit_of: fn(anyhow::Error) -> anyhow::Error,
) -> Result<ContainerState> {
    let cidfile = match &args.cidfile {
        Some(path) => {
            if path.exists() {
                return Err(Exit::new(
                    code::FAILED,
                    format!(
                        "Container ID file found, make sure the other container isn't running \
                         or delete {}",
                        path.display()
                    ),
                )
                .into());
            }
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(|e| {
                    Exit::new(
                        code::FAILED,
                        format!("failed to create the container ID file: {e}"),
                    )
                })?;
            Some((path, file))
        }
        None => None,
    };
    let created = super::create(paths, options)
        .map_err(|err| exit_of(disk_full_at(err, &paths.containers())));
    match (created, cidfile) {
        (Ok(state), Some((path, mut file))) => {
            use std::io::Write;
            file.write_all(state.id.as_bytes())
                .with_context(|| format!("writing the container ID file {}", path.display()))
                .map_err(exit_of)?;
            Ok(state)
        }
        (Err(err), Some((path, _))) => {
            let _ = std::fs::remove_file(path);
            Err(err)
        }
        (created, None) => created,
    }
}
// ANCHOR_END: cidfile

fn run_start(paths: &Paths, args: &StartArgs) -> Result<u8> {
    // `-i` attaches too, as Docker's.
    if args.attach || args.interactive {
        // Docker attaches to one container at a time.
        let [name] = args.containers.as_slice() else {
            return Err(Exit::new(
                super::REQUEST_FAILED,
                "you cannot start and attach multiple containers at once",
            )
            .into());
        };
        let state = paths.resolve(name)?;
        super::check_not_paused(&state)?;
        if state.observe() == Status::Running {
            return Err(Exit::new(
                super::REQUEST_FAILED,
                format!("container {name} is already running"),
            )
            .into());
        }
        // Docker's `start` passes signals on only without a terminal, and has no --sig-proxy.
        let foreground = Foreground {
            stdin: args.interactive && state.config.open_stdin,
            stdout: true,
            stderr: true,
            sig_proxy: !state.config.tty,
            detach_keys: args.detach_keys.as_deref(),
        };
        if state.config.tty {
            return attached(paths, &state, &foreground, |err| err);
        }
        super::attach::parse_detach_keys(
            args.detach_keys
                .as_deref()
                .unwrap_or(super::attach::DEFAULT_DETACH_KEYS),
        )?;
        let attach = Attach::terminal(args.interactive)?;
        return supervise(paths, &state.id, Some(attach), &mut |_| {});
    }
    for_each(&args.containers, |name| {
        let state = paths.resolve(name)?;
        super::check_not_paused(&state)?;
        if state.observe() != Status::Running {
            start_detached(paths, &state.id)?;
        }
        Ok(Some(name.to_owned()))
    })
}

fn run_update(paths: &Paths, args: &UpdateArgs) -> Result<u8> {
    let restart = args
        .restart
        .as_deref()
        .map(super::state::RestartPolicy::parse)
        .transpose()
        .map_err(|e| Exit::new(super::REQUEST_FAILED, e))?;
    let options = super::update::UpdateOptions::parse(
        args.memory.as_deref(),
        args.memory_swap.as_deref(),
        args.cpus.as_deref(),
        args.cpu_shares,
        args.pids_limit,
    )?;
    for_each(&args.containers, |name| {
        super::update::update_container(paths, name, restart.as_ref(), &options)?;
        Ok(Some(name.to_owned()))
    })
}

fn run_inspect(paths: &Paths, args: &InspectArgs) -> Result<u8> {
    // A bad template fails before any container is looked at, as Docker's does.
    let format = args
        .format
        .as_deref()
        .map(crate::format::Format::inspect)
        .transpose()
        .map_err(|err| Exit::new(crate::format::BAD_TEMPLATE, format!("{err:#}")))?;
    let mut found = Vec::new();
    let mut failed = false;
    for name in &args.containers {
        match paths.resolve(name) {
            Ok(state) => found.push(super::inspect::inspect(paths, &state)),
            Err(err) => {
                eprintln!("minidock: {}", crate::cli::one_line(&format!("{err:#}")));
                failed = true;
            }
        }
    }
    match &format {
        Some(format) => {
            for one in &found {
                let value = super::inspect::template_value(one)?;
                match format.execute(&value) {
                    Ok(text) => println!("{text}"),
                    Err(err) => {
                        eprintln!("minidock: {err:#}");
                        failed = true;
                    }
                }
            }
        }
        None => println!("{}", crate::image::cli::to_docker_json(&found)?),
    }
    Ok(if failed { super::REQUEST_FAILED } else { 0 })
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…` when cut.
fn ellipsis(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// Go's `strconv.Quote`, enough for command lines.
fn go_quote(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn since(time: &str, now: SystemTime) -> Duration {
    crate::state::parse_rfc3339(time)
        .and_then(|t| now.duration_since(t).ok())
        .unwrap_or_default()
}

/// The STATUS column: `Up 3 seconds`, `Exited (0) 5 seconds ago`, `Created`, `Dead`.
pub fn status_text(state: &ContainerState, now: SystemTime) -> String {
    match state.observe() {
        Status::Running if super::pause::is_paused(state) => format!(
            "Up {} (Paused)",
            human_duration(since(&state.started_at, now))
        ),
        Status::Running if state.restarting => format!(
            "Restarting ({}) {} ago",
            state.exit_code,
            human_duration(since(&state.finished_at, now))
        ),
        Status::Running => format!("Up {}", human_duration(since(&state.started_at, now))),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            state.exit_code,
            human_duration(since(&state.finished_at, now))
        ),
        Status::Created => "Created".into(),
        Status::Dead => "Dead".into(),
    }
}

// ANCHOR: ps
/// `ps`: Docker's columns, newest container first; `--format` runs a Go template over each
/// container's [`ps_row`].
pub fn ps_table(paths: &Paths, args: &PsArgs, now: SystemTime) -> Result<String> {
    let custom = crate::format::chosen(args.format.as_deref(), args.quiet);
    let format = custom
        .map(|text| crate::format::Format::list(text, PS_TABLE))
        .transpose()?;
    let containers = ps_select(paths, args)?;
    if let Some(format) = format {
        // Sizes cost a walk of each container's files: only when the template shows them,
        // as Docker asks for them only then.
        let sized = args.size || custom.is_some_and(|text| text.contains(".Size"));
        let rows: Vec<_> = containers
            .iter()
            .map(|c| {
                let size = if sized {
                    container_size(paths, c)?
                } else {
                    "0B".to_owned()
                };
                Ok(ps_row(paths, c, &size, args, now))
            })
            .collect::<Result<_>>()?;
        return format.render_list(&rows, &crate::format::header(PS_HEADER));
    }
    let id = |c: &ContainerState| {
        if args.no_trunc {
            c.id.clone()
        } else {
            short_id(&c.id).to_owned()
        }
    };
    if args.quiet {
        return Ok(containers.iter().map(|c| id(c) + "\n").collect());
    }
    let mut header: Vec<String> = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec();
    if args.size {
        header.push("SIZE".into());
    }
    let mut rows = vec![header];
    for c in &containers {
        let size = if args.size {
            container_size(paths, c)?
        } else {
            String::new()
        };
        let row = ps_row(paths, c, &size, args, now);
        let field = |name: &str| row.field(name).map(|v| v.to_string()).unwrap_or_default();
        let mut cells = [
            "ID",
            "Image",
            "Command",
            "RunningFor",
            "Status",
            "Ports",
            "Names",
        ]
        .map(field)
        .to_vec();
        if args.size {
            cells.push(field("Size"));
        }
        rows.push(cells);
    }
    Ok(format_table(&rows))
}

/// The containers `ps` lists, newest first: `--filter`, `-a`, `-n`/`-l`
/// ([`super::filter::select_containers`]).
fn ps_select(paths: &Paths, args: &PsArgs) -> Result<Vec<ContainerState>> {
    let last = match (args.latest, args.last) {
        (true, _) => Some(1),
        (false, n) if n > 0 => Some(n as usize),
        _ => None,
    };
    select(paths, &args.filter, args.all, last)
}

/// The containers `ps` lists, newest first: `filter` as `--filter` takes them (`KEY=VALUE`
/// each), `all` (`-a`), `last` (`-n`). The Engine API's container list selects the same way.
pub fn select(
    paths: &Paths,
    filter: &[String],
    all: bool,
    last: Option<usize>,
) -> Result<Vec<ContainerState>> {
    let filters = super::filter::Filters::parse(filter, super::filter::PS_KEYS)?;
    let containers = paths.list().context("listing containers")?;
    let facts = StoreFacts {
        paths,
        store: std::cell::OnceCell::new(),
    };
    super::filter::select_containers(containers, &filters, all, last, &facts)
}

/// [`super::filter::Facts`] from the state root: the image store (opened only for an
/// `ancestor=` filter), the networks and the ports of a container.
struct StoreFacts<'a> {
    paths: &'a Paths,
    store: std::cell::OnceCell<Option<crate::image::store::Store>>,
}

impl super::filter::Facts for StoreFacts<'_> {
    fn image_id(&self, name: &str) -> Option<String> {
        self.store
            .get_or_init(|| crate::image::store::Store::open(&self.paths.root).ok())
            .as_ref()
            .and_then(|s| s.resolve(name).ok())
            .map(|image| image.id.to_string())
    }

    fn networks(&self, c: &ContainerState) -> Vec<(String, String)> {
        let started = c.started_at != super::state::ZERO_TIME;
        super::network::inspect_networks(self.paths, c)
            .into_iter()
            .map(|(name, id, _)| (name, if started { id } else { String::new() }))
            .collect()
    }

    fn ports(&self, c: &ContainerState) -> Vec<super::filter::ListedPort> {
        listed_ports(self.paths, c)
    }
}

/// The container's ports as the Engine API lists them: each binding of a published port,
/// and each exposed port alone; none while it does not run.
pub fn listed_ports(paths: &Paths, c: &ContainerState) -> Vec<super::filter::ListedPort> {
    let att = super::network::attachment(paths, &c.id);
    let mut out = Vec::new();
    for (key, bindings) in super::network::settings_ports(&c.config, att.as_ref()) {
        let (number, proto) = key.split_once('/').unwrap_or((&key, "tcp"));
        let private: u16 = number.parse().unwrap_or(0);
        let publics: Vec<Option<u16>> = match bindings {
            Some(list) if !list.is_empty() => list
                .iter()
                .map(|b| Some(b.host_port.parse::<u16>().unwrap_or(0)))
                .collect(),
            _ => vec![None],
        };
        out.extend(publics.into_iter().map(|public| super::filter::ListedPort {
            private,
            public,
            proto: proto.to_owned(),
        }));
    }
    out
}

/// Docker's default `ps` table, as a template.
pub const PS_TABLE: &str =
    r"{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// The column names of `ps --format 'table ...'`, by field.
pub const PS_HEADER: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

/// The SIZE of `ps --format '{{.Size}}'`, as Docker's CLI prints [`sizes`]: what the
/// container wrote, and with the image's size, `(virtual ...)`.
fn container_size(paths: &Paths, c: &ContainerState) -> Result<String> {
    let (written, rootfs) = sizes(paths, c)?;
    let written_text = crate::image::cli::human_size(written);
    Ok(if rootfs > 0 {
        format!(
            "{written_text} (virtual {})",
            crate::image::cli::human_size(rootfs)
        )
    } else {
        written_text
    })
}

/// The Engine API's `SizeRw` and `SizeRootFs` of a container, in bytes: what it wrote (the
/// files of its upper dir), and that plus its image's size (0 when the image is gone, as
/// dockerd's without a parent layer).
pub fn sizes(paths: &Paths, c: &ContainerState) -> Result<(u64, u64)> {
    let upper = paths.dir(&c.id).join("upper");
    let written = if upper.is_dir() {
        crate::image::size::directory_size(&upper)
            .with_context(|| format!("measuring {}", upper.display()))?
    } else {
        0
    };
    let store = crate::image::store::Store::open(&paths.root)?;
    let image = match store.resolve(&c.image_id) {
        Ok(image) => crate::image::size::image_size(&store, &image)?,
        Err(_) => return Ok((written, 0)),
    };
    Ok((written, written + image))
}

/// One container as `ps --format` sees it: Docker's `ContainerContext` fields, as strings
/// (IDs, commands and mount names cut unless `--no-trunc`); `size` is the SIZE column.
pub fn ps_row(
    paths: &Paths,
    c: &ContainerState,
    size: &str,
    args: &PsArgs,
    now: SystemTime,
) -> gotmpl::Value {
    let att = super::network::attachment(paths, &c.id);
    let ports =
        super::network::display_ports(&super::network::settings_ports(&c.config, att.as_ref()));
    let trunc = !args.no_trunc;
    let command = if trunc {
        ellipsis(&ps_command(c), 20)
    } else {
        ps_command(c)
    };
    let mounts: Vec<String> = c
        .config
        .mounts
        .iter()
        .map(|m| {
            // A volume by its name, anything else by its source, as Docker's formatter does.
            let name = if m.name.is_empty() {
                &m.source
            } else {
                &m.name
            };
            if trunc {
                ellipsis(name, 15)
            } else {
                name.clone()
            }
        })
        .collect();
    let created = crate::state::parse_rfc3339(&c.created).unwrap_or(std::time::UNIX_EPOCH);
    crate::format::row(vec![
        ("ID", display_id_of(&c.id, trunc)),
        ("Image", c.image.clone()),
        ("Command", go_quote(&command)),
        ("CreatedAt", crate::format::go_time(created)),
        (
            "RunningFor",
            format!("{} ago", human_duration(since(&c.created, now))),
        ),
        ("Ports", ports),
        ("State", super::filter::state_name(c).to_owned()),
        ("Status", status_text(c, now)),
        ("Size", size.to_owned()),
        ("Names", c.name.clone()),
        (
            "Labels",
            c.config
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("Mounts", mounts.join(",")),
        (
            "Networks",
            super::network::network_names(paths, c).join(","),
        ),
        (
            "LocalVolumes",
            c.config
                .mounts
                .iter()
                .filter(|m| m.driver == crate::volume::DRIVER)
                .count()
                .to_string(),
        ),
    ])
}

/// The COMMAND of `ps` as moby builds it: the program, then its arguments, those with a space
/// in single quotes (`sh -c 'exit 3'`).
pub fn ps_command(c: &ContainerState) -> String {
    let mut args = c.config.entrypoint.iter().chain(&c.config.cmd);
    let Some(program) = args.next() else {
        return String::new();
    };
    let mut command = program.clone();
    for arg in args {
        command.push(' ');
        if arg.contains(' ') {
            command.push_str(&format!("'{arg}'"));
        } else {
            command.push_str(arg);
        }
    }
    command
}

fn display_id_of(id: &str, trunc: bool) -> String {
    if trunc { short_id(id) } else { id }.to_owned()
}
// ANCHOR_END: ps

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct Wired {
        #[command(subcommand)]
        command: ContainerCommand,
    }

    #[test]
    fn the_clap_definitions_are_consistent() {
        Wired::command().debug_assert();
    }

    #[test]
    fn options_after_the_image_belong_to_the_command() {
        let wired = Wired::parse_from([
            "x", "run", "--rm", "-h", "box", "busybox", "ls", "-l", "--rm",
        ]);
        let ContainerCommand::Run(args) = wired.command else {
            panic!("not run");
        };
        assert!(args.rm);
        assert_eq!(args.hostname.as_deref(), Some("box"));
        assert_eq!(args.image, "busybox");
        assert_eq!(args.command, ["ls", "-l", "--rm"]);
    }

    #[test]
    fn cpus_are_rational_numbers_of_billionths() {
        assert_eq!(parse_cpus_arg("1.5"), Ok(NanoCpus(1_500_000_000)));
        assert_eq!(parse_cpus_arg("3/2"), Ok(NanoCpus(1_500_000_000)));
        assert_eq!(parse_cpus_arg("-1"), Ok(NanoCpus(-1_000_000_000)));
        assert_eq!(parse_cpus_arg(".01"), Ok(NanoCpus(10_000_000)));
        assert_eq!(parse_cpus_arg("0"), Ok(NanoCpus(0)));
        assert_eq!(
            parse_cpus_arg("abc"),
            Err("failed to parse abc as a rational number".into())
        );
        assert_eq!(
            parse_cpus_arg("0.0000000001"),
            Err("value is too precise".into())
        );
        assert_eq!(NanoCpus(1_500_000_000).to_string(), "1.5");
        assert_eq!(NanoCpus(2_000_000_000).to_string(), "2");
        assert_eq!(NanoCpus(10_000_000).to_string(), "0.01");
    }

    #[test]
    fn memory_sizes_are_checked_as_dockers_ram_in_bytes() {
        assert_eq!(ram_in_bytes("32m"), Some(32 << 20));
        assert_eq!(ram_in_bytes("64MiB"), Some(64 << 20));
        assert_eq!(ram_in_bytes("1.5g"), Some(3 << 29));
        assert_eq!(ram_in_bytes("5 k"), Some(5 << 10));
        assert_eq!(ram_in_bytes("4096"), Some(4096));
        for bad in ["-5", "abc", "", "5x", "m", "1.", "5 mm"] {
            assert_eq!(ram_in_bytes(bad), None, "{bad}");
        }
        assert_eq!(parse_memory_arg("-5"), Err("invalid size: '-5'".into()));
    }

    #[test]
    fn commands_are_cut_and_quoted_like_docker() {
        assert_eq!(
            ellipsis("sh -c echo hello world", 20),
            "sh -c echo hello wo…"
        );
        assert_eq!(go_quote("echo \"hi\""), "\"echo \\\"hi\\\"\"");
    }
}
