//! The container subcommands of `minidock`, with Docker's flags and output: `run`, `create`,
//! `start`, `stop`, `restart`, `kill`, `rm`, `wait`, `ps`, `logs`, `inspect`, `exec`, `cp`,
//! `export`, `top`, and the hidden `shim`.
//!
//! `src/bin/minidock.rs` flattens [`ContainerCommand`] into its own subcommands and calls
//! [`run_command`]; the tables are built by functions that return strings, so the tests check
//! exactly what a user sees.

use super::logs::LogsOptions;
use super::shim::{Attach, start_detached, supervise};
use super::spec::RunOptions;
use super::state::{ContainerState, Status};
use super::{CreateOptions, Paths, short_id};
use crate::cli::{Exit, code, exit_code_of};
use crate::image::cli::{format_table, human_duration};
use crate::state::disk_full_at;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const NETWORK_HELP: &str = "\
Networking: a container gets --network none by default for now (its own network namespace, \
with only a loopback device), or --network host. Bridge networking and -p come in a later \
issue.";

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
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Number of CPUs (e.g. 0.5)
    #[arg(long)]
    pub cpus: Option<String>,
    /// Limit on processes (-1 or 0: unlimited)
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Bind mount a host directory: HOST_PATH:CONTAINER_PATH[:ro]
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    pub volumes: Vec<String>,
    /// Mount the container's root filesystem read-only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Network: none (default: its own namespace, loopback only) or host
    #[arg(long, value_name = "none|host")]
    pub network: Option<String>,
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
            name: self.name.clone(),
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
                cpus: self.cpus.clone(),
                pids_limit: self.pids_limit,
                volumes: self.volumes.clone(),
                read_only: self.read_only,
                network: self.network.clone(),
                cap_add: self.cap_add.clone(),
                cap_drop: self.cap_drop.clone(),
                security_opt: self.security_opt.clone(),
                privileged: self.privileged,
                tty: self.tty,
                interactive: self.interactive,
                auto_remove: self.rm,
            },
            supervised: false,
        }
    }
}

/// Containers named on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct ContainersArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct StartArgs {
    /// Attach: print the container's output and exit with its status
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// The container reads this terminal's input
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait for the container to stop before killing it
    #[arg(short = 't', long = "time", alias = "timeout", default_value_t = 10)]
    pub time: u64,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct KillArgs {
    /// The signal to send (name or number)
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
    /// exited, before, since)
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
    /// Restart policy (not supported: minidock has no restart policies)
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ShimArgs {
    #[arg(long = "runtime-root")]
    pub runtime_root: PathBuf,
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
}

/// `run`'s errors exit 125, except "cannot execute" (126) and "not found" (127), as Docker's.
fn run_error(err: anyhow::Error) -> anyhow::Error {
    match exit_code_of(&err) {
        code::CANNOT_EXECUTE | code::NOT_FOUND | code::FAILED => err,
        _ => Exit::new(code::FAILED, format!("{err:#}")).into(),
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
            let state = super::create(&paths, &args.create_options())
                .map_err(|err| run_error(disk_full_at(err, &paths.containers())))?;
            println!("{}", state.id);
            Ok(0)
        }
        ContainerCommand::Start(args) => run_start(&paths, args),
        ContainerCommand::Stop(args) => for_each(&args.containers, |name| {
            super::stop(&paths, name, Duration::from_secs(args.time))?;
            Ok(Some(name.to_owned()))
        }),
        ContainerCommand::Restart(args) => for_each(&args.containers, |name| {
            super::stop(&paths, name, Duration::from_secs(args.time))?;
            let state = paths.resolve(name)?;
            start_detached(&paths, &state.id)?;
            Ok(Some(name.to_owned()))
        }),
        ContainerCommand::Kill(args) => {
            let signal = crate::runtime::parse_signal(&args.signal)?;
            for_each(&args.containers, |name| {
                super::kill(&paths, name, signal)?;
                Ok(Some(name.to_owned()))
            })
        }
        ContainerCommand::Rm(args) => for_each(&args.containers, |name| {
            super::remove(&paths, name, args.force)?;
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
            super::shim::shim_main(&paths, &args.id)
        }
    }
}

// ANCHOR: run_run
/// `minidock run`: create, then start detached (print the ID) or supervise in the foreground
/// (print the output, exit with the container's status).
pub fn run_run(paths: &Paths, args: &RunArgs) -> Result<u8> {
    let options = CreateOptions {
        supervised: true,
        ..args.create_options()
    };
    let state = super::create(paths, &options)
        .map_err(|err| run_error(disk_full_at(err, &paths.containers())))?;
    if args.detach {
        start_detached(paths, &state.id).map_err(run_error)?;
        println!("{}", state.id);
        return Ok(0);
    }
    let attach = Attach::terminal(args.interactive)?;
    supervise(paths, &state.id, Some(attach), &mut |_| {}).map_err(run_error)
}
// ANCHOR_END: run_run

fn run_start(paths: &Paths, args: &StartArgs) -> Result<u8> {
    if args.attach {
        // Docker attaches to one container at a time.
        let [name] = args.containers.as_slice() else {
            return Err(Exit::new(
                super::REQUEST_FAILED,
                "you cannot start and attach multiple containers at once",
            )
            .into());
        };
        let state = paths.resolve(name)?;
        if state.observe() == Status::Running {
            return Err(Exit::new(
                super::REQUEST_FAILED,
                format!("container {name} is already running"),
            )
            .into());
        }
        let attach = Attach::terminal(args.interactive)?;
        return supervise(paths, &state.id, Some(attach), &mut |_| {});
    }
    for_each(&args.containers, |name| {
        let state = paths.resolve(name)?;
        if state.observe() != Status::Running {
            start_detached(paths, &state.id)?;
        }
        Ok(Some(name.to_owned()))
    })
}

fn run_update(paths: &Paths, args: &UpdateArgs) -> Result<u8> {
    if args.restart.is_some() {
        return Err(Exit::new(
            super::REQUEST_FAILED,
            "update --restart is not supported: minidock has no restart policies",
        )
        .into());
    }
    let options = super::update::UpdateOptions::parse(
        args.memory.as_deref(),
        args.memory_swap.as_deref(),
        args.cpus.as_deref(),
        args.cpu_shares,
        args.pids_limit,
    )?;
    for_each(&args.containers, |name| {
        super::update::update(paths, name, &options)?;
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
                Ok(ps_row(c, &size, args, now))
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
        let row = ps_row(c, &size, args, now);
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
    let filters = super::filter::Filters::parse(&args.filter, super::filter::PS_KEYS)?;
    let last = match (args.latest, args.last) {
        (true, _) => Some(1),
        (false, n) if n > 0 => Some(n as usize),
        _ => None,
    };
    let containers = paths.list().context("listing containers")?;
    let store = crate::image::store::Store::open(&paths.root).ok();
    super::filter::select_containers(containers, &filters, args.all, last, |name| {
        store
            .as_ref()
            .and_then(|s| s.resolve(name).ok())
            .map(|image| image.id.to_string())
    })
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

/// The SIZE of `ps --format '{{.Size}}'`, as Docker's: what the container wrote (its upper
/// dir), and with the image's size, `(virtual ...)`.
fn container_size(paths: &Paths, c: &ContainerState) -> Result<String> {
    let upper = paths.dir(&c.id).join("upper");
    let written = if upper.is_dir() {
        crate::image::size::directory_size(&upper)?
    } else {
        0
    };
    let store = crate::image::store::Store::open(&paths.root)?;
    let image = match store.resolve(&c.image_id) {
        Ok(image) => crate::image::size::image_size(&store, &image)?,
        Err(_) => 0,
    };
    let written_text = crate::image::cli::human_size(written);
    Ok(if written + image > 0 {
        format!(
            "{written_text} (virtual {})",
            crate::image::cli::human_size(written + image)
        )
    } else {
        written_text
    })
}

/// One container as `ps --format` sees it: Docker's `ContainerContext` fields, as strings
/// (IDs, commands and mount names cut unless `--no-trunc`); `size` is the SIZE column.
pub fn ps_row(c: &ContainerState, size: &str, args: &PsArgs, now: SystemTime) -> gotmpl::Value {
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
            if trunc {
                ellipsis(&m.source, 15)
            } else {
                m.source.clone()
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
        ("Ports", String::new()),
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
        ("Networks", c.config.network_mode.clone()),
        ("LocalVolumes", "0".to_owned()),
    ])
}

/// The COMMAND of `ps` as moby builds it: the program, then its arguments, those with a space
/// in single quotes (`sh -c 'exit 3'`).
fn ps_command(c: &ContainerState) -> String {
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
    fn commands_are_cut_and_quoted_like_docker() {
        assert_eq!(
            ellipsis("sh -c echo hello world", 20),
            "sh -c echo hello wo…"
        );
        assert_eq!(go_quote("echo \"hi\""), "\"echo \\\"hi\\\"\"");
    }
}
