//! `minidock runtime`: runc's command line (runc(8)), so that anything that drives runc can
//! drive minidock instead. containerd's runc shim (`containerd-shim-runc-v2`, through
//! go-runc) calls, for every container:
//!
//! ```text
//! RUNTIME --root DIR --log BUNDLE/log.json --log-format json create --bundle BUNDLE
//!         --pid-file BUNDLE/init.pid [--console-socket SOCK] ID
//! RUNTIME ... start ID | state ID | kill [--all] ID SIGNUM | delete [--force] ID
//! RUNTIME ... exec --process FILE.json --detach --pid-file FILE [--console-socket SOCK] ID
//! RUNTIME ... ps --format json ID | pause ID | resume ID | update --resources - ID
//! ```
//!
//! The global options come before the verb, as in runc. `--root` here is the runtime's state
//! directory (runc's meaning), not minidock's state root: `minidock --root R runtime ...`
//! keeps `R/run/runtime`, `minidock runtime --root DIR ...` uses `DIR` itself. A binary
//! called `minidock-runc` (a symlink to `minidock`) behaves as `minidock runtime`, which is
//! how a runtime is named to containerd or dockerd (`"runtimes": {"minidock": {"path":
//! "/usr/local/bin/minidock-runc"}}`).
//!
//! Every failure exits with status 1, as runc does, after one line on stderr and, with
//! `--log`, one line in the log (`{"level":"error","msg":"...","time":"RFC3339"}` with
//! `--log-format json`, which containerd's shim reads back to report the error).

use super::{exec, ops};
use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The name under which the `minidock` binary behaves as `minidock runtime`.
pub const RUNC_NAME: &str = "minidock-runc";

/// runc's global options and verbs.
#[derive(Parser, Debug)]
#[command(
    name = "minidock runtime",
    about = "The OCI runtime, with runc's command line: run a bundle (rootfs + config.json)",
    version
)]
pub struct RuntimeCli {
    /// The runtime's state directory (runc's --root). Default: RUN/run/runtime of minidock's
    /// state root when one is given (`minidock --root RUN runtime`, $MINIDOCK_ROOT), else
    /// /run/minidock/runtime.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Also append log lines (errors, and with --debug each verb) to FILE.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// The format of --log lines: `text` (logfmt) or `json` (one object per line).
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    log_format: LogFormat,
    /// Log each verb and its arguments too.
    #[arg(long)]
    debug: bool,
    /// Use systemd to manage cgroups: not supported (minidock writes cgroupfs itself).
    #[arg(long)]
    systemd_cgroup: bool,
    /// The criu binary, for checkpoint and restore: accepted, unused (minidock does not
    /// checkpoint).
    #[arg(long, value_name = "PATH")]
    criu: Option<PathBuf>,
    /// Rootless mode: `false` and `auto` are accepted; `true` is not supported.
    #[arg(long, value_name = "true|false|auto", num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    rootless: Option<String>,
    #[command(subcommand)]
    verb: Verb,
}

/// The format of `--log` lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `table` for people, `json` for programs (`ps`, `list`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// The options `create` and `run` share.
#[derive(clap::Args, Debug)]
struct CreateArgs {
    /// The bundle: a directory with config.json and the root filesystem.
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    bundle: PathBuf,
    /// Write the container process's pid to FILE (atomically: temp file + rename).
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// With process.terminal: the unix socket that receives the pty master.
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Accepted: minidock always uses pivot_root(2) (the container sees the same root).
    #[arg(long)]
    no_pivot: bool,
    /// Accepted: minidock never creates a session keyring (as runc with this flag).
    #[arg(long)]
    no_new_keyring: bool,
    /// Descriptors beyond stdio to pass to the process: only 0 is supported.
    #[arg(long, default_value_t = 0, value_name = "N")]
    preserve_fds: u32,
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// Create a container from a bundle; it waits before exec until `start`.
    Create {
        #[command(flatten)]
        args: CreateArgs,
        /// Accepted for go-runc's callers: `create` always returns once the container waits.
        #[arg(short, long, hide = true)]
        detach: bool,
        id: String,
    },
    /// Let a created container execute its program.
    Start { id: String },
    /// Print the container's OCI state as JSON.
    State { id: String },
    /// Send a signal (name or number, default SIGTERM) to the container's process.
    Kill {
        /// Signal every process in the container's cgroup, not only its first process.
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Remove a stopped container's cgroup and state (--force: kill it first).
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create and start a container; without --detach wait and exit with its status.
    Run {
        #[command(flatten)]
        args: CreateArgs,
        /// Return once the container runs, instead of waiting for it.
        #[arg(short, long)]
        detach: bool,
        id: String,
    },
    /// Run one more process in a running container.
    Exec(exec::ExecArgs),
    /// The processes in the container's cgroup (json: their pids).
    Ps {
        #[arg(short, long, value_enum, default_value = "table")]
        format: Format,
        id: String,
        /// Options for ps(1) with --format table (default -ef).
        #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
        ps_args: Vec<String>,
    },
    /// List the containers in the state directory.
    List {
        #[arg(short, long, value_enum, default_value = "table")]
        format: Format,
        /// Only the ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Freeze every process of a running container (cgroup freezer).
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Change the cgroup limits of a running container.
    Update(ops::UpdateArgs),
    /// What this runtime supports, as runc's features JSON.
    Features,
    /// The container's cgroup counters as JSON lines, every --interval or once (--stats).
    Events(super::events::EventsArgs),
}

/// Finds `runtime` in minidock's own command line: `minidock [--root R] [--explain] runtime
/// ARGS...`, or any command line of a binary called [`RUNC_NAME`]. Returns minidock's state
/// root (if given), whether `--explain` was given, and the runtime's arguments (ARGS with a
/// program name in front); `None` for every other command.
pub fn split_args(argv: &[OsString]) -> Option<(Option<PathBuf>, bool, Vec<OsString>)> {
    let program = argv.first()?;
    let name = Path::new(program).file_name().unwrap_or_default();
    if name == RUNC_NAME {
        return Some((None, false, argv.to_vec()));
    }
    let (mut root, mut explain) = (None, false);
    let mut i = 1;
    while i < argv.len() {
        let arg = argv[i].to_string_lossy();
        if arg == "--explain" {
            explain = true;
        } else if arg == "--root" {
            root = Some(PathBuf::from(argv.get(i + 1)?));
            i += 1;
        } else if let Some(dir) = arg.strip_prefix("--root=") {
            root = Some(PathBuf::from(dir));
        } else if arg == "runtime" {
            let mut rest = vec![OsString::from("minidock runtime")];
            rest.extend_from_slice(&argv[i + 1..]);
            return Some((root, explain, rest));
        } else {
            return None;
        }
        i += 1;
    }
    None
}

/// Runs `minidock runtime` with `args` (program name first). `minidock_root` is minidock's
/// state root from before the verb; the runtime's `--root` wins over it.
pub fn main(minidock_root: Option<&Path>, args: Vec<OsString>) -> ExitCode {
    let cli = match RuntimeCli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let usage = err.use_stderr();
            let _ = err.print();
            // runc exits 1 on a bad command line too; --help and --version are successes.
            return ExitCode::from(if usage { 1 } else { 0 });
        }
    };
    let logger = Logger {
        path: cli.log.clone(),
        format: cli.log_format,
    };
    if cli.debug {
        logger.write("debug", &format!("{:?}", cli.verb));
    }
    // runc's exec fails with 255, so that a failure is told apart from the program's status.
    let failure = if matches!(cli.verb, Verb::Exec(_)) {
        255
    } else {
        1
    };
    match dispatch(minidock_root, cli) {
        Ok(status) => ExitCode::from(status),
        Err(err) => {
            let message = format!("{err:#}");
            logger.write("error", &message);
            eprintln!("minidock runtime: {message}");
            ExitCode::from(failure)
        }
    }
}

fn dispatch(minidock_root: Option<&Path>, cli: RuntimeCli) -> Result<u8> {
    if cli.systemd_cgroup {
        bail!("--systemd-cgroup is not supported: minidock manages cgroups through cgroupfs");
    }
    if cli.rootless.as_deref() == Some("true") && !crate::rootless::joined() {
        bail!(
            "--rootless=true is for a user other than root: minidock run by root runs \
             containers as root"
        );
    }
    let root = cli
        .root
        .clone()
        .unwrap_or_else(|| super::state_root(minidock_root));
    match cli.verb {
        Verb::Create { args, id, .. } => create(&root, &id, &args).map(|()| 0),
        Verb::Start { id } => super::start(&root, &id).map(|()| 0),
        Verb::State { id } => {
            let state = super::state(&root, &id)?;
            println!("{}", serde_json::to_string_pretty(&state)?);
            Ok(0)
        }
        Verb::Kill { all, id, signal } => {
            let signal = match signal.as_str() {
                "0" => super::signal::Signal::EXISTS,
                _ => super::parse_signal(&signal)?,
            };
            if all {
                ops::kill_all(&root, &id, signal).map(|()| 0)
            } else {
                super::kill(&root, &id, signal).map(|()| 0)
            }
        }
        Verb::Delete { force, id } => ops::delete(&root, &id, force).map(|()| 0),
        Verb::Run { args, detach, id } => run(&root, &id, &args, detach),
        Verb::Exec(args) => exec::exec(&root, &args),
        Verb::Ps {
            format,
            id,
            ps_args,
        } => ops::ps(&root, &id, format, &ps_args).map(|()| 0),
        Verb::List { format, quiet } => ops::list(&root, format, quiet).map(|()| 0),
        Verb::Pause { id } => ops::pause(&root, &id).map(|()| 0),
        Verb::Resume { id } => ops::resume(&root, &id).map(|()| 0),
        Verb::Update(args) => ops::update(&root, &args).map(|()| 0),
        Verb::Events(args) => super::events::events(&root, &args).map(|()| 0),
        Verb::Features => {
            println!("{}", serde_json::to_string_pretty(&ops::features())?);
            Ok(0)
        }
    }
}

fn check_create_args(args: &CreateArgs) -> Result<()> {
    if args.preserve_fds > 0 {
        bail!("--preserve-fds {} is not supported", args.preserve_fds);
    }
    Ok(())
}

fn create(root: &Path, id: &str, args: &CreateArgs) -> Result<()> {
    check_create_args(args)?;
    super::create(root, id, &args.bundle, args.console_socket.as_deref())?;
    if let Some(pid_file) = &args.pid_file {
        let state = super::State::load(root, id)?;
        if let Err(err) = write_pid_file(pid_file, state.pid) {
            let _ = super::delete(root, id, true);
            return Err(err);
        }
    }
    Ok(())
}

/// `run`: with --detach, create + start and return (the container is then the caller's to
/// reap, as with runc); else in the foreground, with the program's exit status.
fn run(root: &Path, id: &str, args: &CreateArgs, detach: bool) -> Result<u8> {
    if !detach && args.pid_file.is_none() && args.console_socket.is_none() {
        check_create_args(args)?;
        return super::run(root, id, &args.bundle);
    }
    create(root, id, args)?;
    let started = super::start(root, id).and_then(|()| {
        if detach {
            return Ok(0);
        }
        // The container process is our child: `create` cloned it in this process.
        let pid = super::State::load(root, id)?.pid;
        crate::ns::wait_for(nix::unistd::Pid::from_raw(pid))
    });
    if started.is_err() || !detach {
        let _ = super::delete(root, id, true);
    }
    started
}

// ANCHOR: pid_file
/// Writes `pid` (decimal, no newline, as runc) to `path` through a temp file in the same
/// directory and rename(2): a reader such as containerd's shim never sees a partial number.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    crate::state::write_atomic_unsynced(path, pid.to_string().as_bytes())
        .with_context(|| format!("writing the pid file {}", path.display()))
}
// ANCHOR_END: pid_file

/// Where `--log` lines go, and in which format.
struct Logger {
    path: Option<PathBuf>,
    format: LogFormat,
}

impl Logger {
    /// Appends one line; a log that cannot be written is reported on stderr only.
    fn write(&self, level: &str, message: &str) {
        let Some(path) = &self.path else { return };
        let line = log_line(self.format, level, message, std::time::SystemTime::now());
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(err) = written {
            eprintln!(
                "minidock runtime: writing the log {}: {err}",
                path.display()
            );
        }
    }
}

/// One log line, newline included: `{"level":..,"msg":..,"time":..}` (json) or
/// `time="..." level=... msg="..."` (text, logfmt), as runc's logrus writes them.
pub fn log_line(
    format: LogFormat,
    level: &str,
    message: &str,
    time: std::time::SystemTime,
) -> String {
    let time = crate::state::rfc3339(time);
    match format {
        LogFormat::Json => {
            let line = serde_json::json!({"level": level, "msg": message, "time": time});
            format!("{line}\n")
        }
        LogFormat::Text => {
            let quoted = serde_json::Value::from(message).to_string();
            format!("time=\"{time}\" level={level} msg={quoted}\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn runtime_is_found_after_minidock_options() {
        let (root, explain, rest) = split_args(&os(&[
            "minidock",
            "--root",
            "/r",
            "--explain",
            "runtime",
            "state",
            "x",
        ]))
        .unwrap();
        assert_eq!(root.as_deref(), Some(Path::new("/r")));
        assert!(explain);
        assert_eq!(rest, os(&["minidock runtime", "state", "x"]));
        assert!(split_args(&os(&["minidock", "run", "runtime"])).is_none());
        assert!(split_args(&os(&["minidock", "--root", "/r", "ps"])).is_none());
    }

    #[test]
    fn the_runc_name_is_runtime_mode() {
        let argv = os(&["/usr/bin/minidock-runc", "--root", "/x", "list"]);
        let (root, _, rest) = split_args(&argv).unwrap();
        assert_eq!(root, None);
        assert_eq!(rest, argv);
    }

    #[test]
    fn go_runc_command_lines_parse() {
        for line in [
            "r --root /run/x --log /b/log.json --log-format json create --bundle /b --pid-file /b/init.pid --console-socket /s.sock id1",
            "r --root /run/x --log /b/log.json --log-format json exec --process /tmp/p.json --detach --pid-file /b/e.pid id1",
            "r --root /run/x --log /b/log.json --log-format json kill --all id1 9",
            "r --root /run/x --log /b/log.json --log-format json delete --force id1",
            "r --root /run/x --rootless=false --debug ps --format json id1",
            "r --root /run/x update --resources - id1",
            "r --root /run/x create --bundle /b --no-pivot --no-new-keyring --detach id1",
        ] {
            let args: Vec<&str> = line.split(' ').collect();
            RuntimeCli::try_parse_from(args).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }

    #[test]
    fn json_log_lines_are_what_the_shim_reads() {
        let line = log_line(
            LogFormat::Json,
            "error",
            "exec: \"nope\": not found",
            std::time::UNIX_EPOCH,
        );
        let value: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(value["level"], "error");
        assert_eq!(value["msg"], "exec: \"nope\": not found");
        assert!(
            value["time"]
                .as_str()
                .unwrap()
                .starts_with("1970-01-01T00:00:00")
        );
        let text = log_line(LogFormat::Text, "error", "a \"b\"", std::time::UNIX_EPOCH);
        assert!(
            text.ends_with("level=error msg=\"a \\\"b\\\"\"\n"),
            "{text}"
        );
    }

    #[test]
    fn pid_files_hold_the_number_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("init.pid");
        write_pid_file(&path, 4242).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "4242");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
