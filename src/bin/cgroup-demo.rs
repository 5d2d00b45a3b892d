//! cgroup-demo: limit memory, cpu and pids with cgroups v1 and v2, and read what the kernel
//! counted. Thin front: parse the flags, call `minidock::cgroup`, print.
//! Run by a user without root, `run` works in the cgroup v2 subtree delegated to that user
//! (`minidock::rootless::delegated_base`) and is refused, in one line naming what is
//! missing, where nothing is delegated.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use minidock::cgroup::{self, Cgroup, Limit, Placement, Resources, Version, run, units};
use minidock::cli::{Exit, code};
use std::ffi::OsString;

#[derive(Parser)]
#[command(
    name = "cgroup-demo",
    about = "Limit memory, cpu and pids with cgroups (v1 and v2), and see the kernel's counters"
)]
struct Cli {
    /// Do not print the trace of kernel-level steps.
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the cgroup layout of this host (v1, v2 or hybrid) and this process's cgroups.
    Info {
        /// Print the layout as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run CMD in a new cgroup with limits, then print what the kernel counted.
    Run(Box<RunArgs>),
    /// Three guided demonstrations: a memory hog, a fork bomb and a busy loop.
    Tour,
    /// Workload: allocate and write MIB mebibytes.
    #[command(hide = true)]
    Hog {
        #[arg(long, default_value_t = 256)]
        mib: usize,
    },
    /// Workload: a fork bomb (refuses to run without a pids limit).
    #[command(hide = true)]
    Forkbomb {
        #[arg(long)]
        hold: bool,
    },
    /// Workload: a busy loop.
    #[command(hide = true)]
    Spin {
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Memory limit, e.g. 32M (binary units: k, m, g).
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory plus swap, e.g. 64M, or -1 for unlimited swap [default: same as --memory, no swap].
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// CPU limit in CPUs, e.g. 0.5 (a quota of 50 ms per 100 ms).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    cpus: Option<String>,
    /// Relative CPU weight against other groups, 2..262144 (default 1024).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    cpu_shares: Option<String>,
    /// Most processes and threads the group may have.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pids: Option<String>,
    /// Which hierarchy to use: 1 or 2 [default: 2 on a v2 host, 1 on v1 and hybrid hosts].
    #[arg(long, value_name = "1|2")]
    cgroup_version: Option<String>,
    /// The cgroup's name [default: cgroup-demo-PID-N].
    #[arg(long)]
    name: Option<String>,
    /// Where to create it, relative to each hierarchy's root, as Docker's --cgroup-parent.
    #[arg(long, value_name = "PATH", default_value = cgroup::PARENT)]
    cgroup_parent: String,
    /// On cgroup2, start the command with fork + cgroup.procs instead of
    /// clone3(CLONE_INTO_CGROUP), to compare the two.
    #[arg(long)]
    no_clone3: bool,
    /// The command and its arguments (put `--` before a command that starts with `-`).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    cmd: Vec<OsString>,
}

fn main() -> std::process::ExitCode {
    minidock::cli::run_main("cgroup-demo", || {
        let cli = match Cli::try_parse() {
            Ok(cli) => cli,
            Err(err) if !err.use_stderr() => err.exit(), // --help, --version
            Err(err) => return Err(one_line_usage_error(&err)),
        };
        minidock::explain::enable(!cli.quiet && !is_workload(&cli.command));
        match cli.command {
            Command::Info { json } => info(json),
            Command::Run(args) => run_command(*args),
            Command::Tour => {
                let mut layout = cgroup::detect()?;
                if !nix::unistd::geteuid().is_root() {
                    layout = rootless_place(layout, Version::V2)?.0;
                }
                let helper = std::env::current_exe().context("finding cgroup-demo itself")?;
                cgroup::tour::tour(&layout, &helper, &mut std::io::stdout())
            }
            Command::Hog { mib } => cgroup::workloads::hog(mib),
            Command::Forkbomb { hold } => cgroup::workloads::forkbomb(hold),
            Command::Spin { seconds } => cgroup::workloads::spin(seconds),
        }
    })
}

fn is_workload(command: &Command) -> bool {
    matches!(
        command,
        Command::Hog { .. } | Command::Forkbomb { .. } | Command::Spin { .. }
    )
}

/// clap's errors span several lines; keep what is wrong on one ("error: the following
/// required arguments were not provided:" is followed by the arguments on the next line).
fn one_line_usage_error(err: &clap::Error) -> anyhow::Error {
    let rendered = err.render().to_string();
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut message = lines
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_owned();
    if message.ends_with(':')
        && let Some(detail) = lines.next()
    {
        message = format!("{message} {detail}");
    }
    anyhow!(Exit::new(code::FAILED, format!("{message} (see --help)")))
}

fn info(json: bool) -> Result<u8> {
    let layout = cgroup::detect()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&layout)?);
        return Ok(0);
    }
    print!("{layout}");
    println!("this process (pid {}) is in:", std::process::id());
    for membership in cgroup::layout::own_cgroups()? {
        let hierarchy = if membership.hierarchy_id == 0 {
            "cgroup2".to_owned()
        } else {
            membership.controllers.clone()
        };
        println!("  {hierarchy:<15}{}", membership.path);
    }
    Ok(0)
}

fn run_command(args: RunArgs) -> Result<u8> {
    let resources = resources_from(&args)?;
    let online = std::thread::available_parallelism().map_or(1, usize::from);
    for warning in resources.validate(online)? {
        eprintln!("cgroup-demo: warning: {warning}");
    }
    let layout = cgroup::detect()?;
    let version = match args.cgroup_version.as_deref() {
        None => layout.default_version(),
        Some("1") => Version::V1,
        Some("2") => Version::V2,
        Some(other) => bail!("invalid --cgroup-version \"{other}\": use 1 or 2"),
    };
    let (layout, version) = if nix::unistd::geteuid().is_root() {
        (layout, version)
    } else {
        rootless_place(layout, version)?
    };
    let request = run::Request {
        resources,
        version,
        parent: args.cgroup_parent,
        name: args
            .name
            .unwrap_or_else(|| Cgroup::unique_name("cgroup-demo")),
        argv: args.cmd,
        placement: if args.no_clone3 {
            Placement::ProcsBeforeExec
        } else {
            Placement::CloneIntoCgroup
        },
    };
    let outcome = run::run(&layout, &request)?;
    // The report goes to stderr: stdout is the command's own output.
    eprint!("{}", outcome.report());
    Ok(outcome.exit_code())
}

// ANCHOR: rootless_place
/// Where a user without root makes its cgroup: the layout seen from the cgroup v2 subtree
/// delegated to it (`minidock::rootless::delegated_base`), whose directory stands for the
/// cgroup2 mount, so `--cgroup-parent` is made inside it and only the controllers delegated
/// there are enabled. Errors (exit status 1): no delegated subtree (a v1 or hybrid host, or
/// nothing the user owns), in the words rootless `minidock run -m` uses; `--cgroup-version 1`.
fn rootless_place(layout: cgroup::Layout, version: Version) -> Result<(cgroup::Layout, Version)> {
    let what = "cgroup-demo's cgroups";
    let base = minidock::rootless::delegated_base(&layout).ok_or_else(|| {
        let line = minidock::rootless::no_delegation(&layout, what);
        anyhow!(Exit::new(
            code::REQUEST_FAILED,
            format!("{line}; see `minidock doctor`")
        ))
    })?;
    if version == Version::V1 {
        let line =
            "rootless: --cgroup-version 1 needs root (only a cgroup v2 subtree is delegated)";
        bail!(Exit::new(code::REQUEST_FAILED, line));
    }
    let delegated = cgroup::Layout {
        unified: Some(base),
        ..layout
    };
    Ok((delegated, Version::V2))
}
// ANCHOR_END: rootless_place

fn resources_from(args: &RunArgs) -> Result<Resources> {
    let memory = args
        .memory
        .as_deref()
        .map(|s| units::parse_size(s).map(Limit::Value))
        .transpose()
        .context("--memory")?;
    let memory_swap = match args.memory_swap.as_deref() {
        Some("-1") => Some(Limit::Unlimited),
        Some(text) => Some(Limit::Value(
            units::parse_size(text).context("--memory-swap")?,
        )),
        // No swap unless asked for: the limit then means what it says, on every host.
        None => memory,
    };
    let pids = args
        .pids
        .as_deref()
        .map(|s| parse_count("--pids", s).map(Limit::Value))
        .transpose()?;
    let cpu_shares = args
        .cpu_shares
        .as_deref()
        .map(|s| parse_count("--cpu-shares", s))
        .transpose()?;
    let mut resources = Resources {
        memory,
        memory_swap,
        cpu_shares,
        pids,
        ..Default::default()
    };
    if let Some(cpus) = &args.cpus {
        resources = resources.with_cpus(units::parse_cpus(cpus)?);
    }
    Ok(resources)
}

fn parse_count(flag: &str, text: &str) -> Result<u64> {
    text.trim()
        .parse()
        .map_err(|_| anyhow!("invalid {flag} \"{text}\": expected a whole number like 20"))
}
