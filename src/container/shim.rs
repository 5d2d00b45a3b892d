//! The supervisor of a running container: Docker's containerd-shim, in one function.
//!
//! A container's process must have a parent that waits for it: only the parent gets its exit
//! status (wait(2)). That parent also owns the other ends of the container's stdout and stderr
//! pipes, or the output has nowhere to go. For `run -d`, the CLI must return at once, so it
//! cannot be that parent: it starts a **shim**, the `minidock` binary again as the hidden
//! `minidock shim ID` subcommand, detached from the terminal (setsid(2), stdio on /dev/null).
//! The shim starts the container with [`crate::runtime`], copies its output to the log, waits,
//! records the exit code and finish time in `state.json`, unmounts the overlay (or removes the
//! whole container with `--rm`), and exits. In the foreground without a terminal, `minidock
//! run` runs the very same [`supervise`] itself, and also copies the output to the terminal
//! (with a terminal it attaches to a light shim instead: [`super::attach::foreground`]).
//!
//! If a shim (or the foreground `run`) is killed, the next command that reads the container
//! notices (the recorded supervisor's pid and start time no longer match a live process), kills
//! what is left in the container's cgroups and records exit code 137, as containerd does when a
//! shim dies; see [`super::recover`].

use super::logs::{LogWriter, Stream};
use super::state::{self as cstate, ContainerState, Status, ZERO_TIME};
use super::{Paths, mount_rootfs, remove_files, unmount_rootfs};
use crate::cli::{Exit, code, exit_code_of};
use crate::explain::{self, Chapter};
use anyhow::{Context, Result, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::Stdio;

/// The terminal side of a foreground container: where its output goes besides the log.
pub struct Attach {
    /// None: the container's stdout goes only to the log (`run -a STDERR`).
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// `-i`: the container reads our stdin.
    pub stdin: bool,
    /// `--sig-proxy`: the signals this process receives go to the container's process.
    pub sig_proxy: bool,
}

impl Attach {
    /// Our own stdin, stdout and stderr.
    pub fn terminal(interactive: bool) -> Result<Attach> {
        Attach::streams(interactive, true, true)
    }

    /// Some of our streams, as `run -a STDIN|STDOUT|STDERR` chooses them.
    pub fn streams(stdin: bool, stdout: bool, stderr: bool) -> Result<Attach> {
        let ours = |wanted: bool, fd: BorrowedFd| -> Result<Option<OwnedFd>> {
            Ok(if wanted {
                Some(fd.try_clone_to_owned()?)
            } else {
                None
            })
        };
        Ok(Attach {
            stdout: ours(stdout, std::io::stdout().as_fd())?,
            stderr: ours(stderr, std::io::stderr().as_fd())?,
            stdin,
            sig_proxy: true,
        })
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe2")
}

fn dev_null() -> Result<OwnedFd> {
    Ok(std::fs::File::open("/dev/null")
        .context("opening /dev/null")?
        .into())
}

/// Records a failed start: the container stays `created`, with the error and the exit code
/// the CLI reports (126, 127...), as Docker does.
fn record_failed_start(paths: &Paths, id: &str, err: &anyhow::Error) {
    let _ = ContainerState::update(paths, id, |s| {
        s.status = Status::Created;
        s.restarting = false;
        s.error = format!("{err:#}");
        s.exit_code = i32::from(exit_code_of(err));
        s.pid = 0;
        s.supervisor_pid = 0;
        s.supervisor_start_time = 0;
    });
}

// ANCHOR: supervise
/// Starts container `id` and supervises it until it exits for good; returns its last exit
/// status. With a restart policy (`--restart`), the process is started again after each exit
/// the policy allows, after [`Backoff`]'s delay, in the same container (the same upper dir;
/// fresh cgroups, as `start` makes them). `started` is called once, as soon as the container
/// first runs (with its pid) or failed to start; the detached shim uses it to let the CLI
/// return.
pub fn supervise(
    paths: &Paths,
    id: &str,
    attach: Option<Attach>,
    started: &mut dyn FnMut(Result<i32, &anyhow::Error>),
) -> Result<u8> {
    // One start at a time: the lock is held until the container is recorded running.
    let start = match super::claim_start(paths, id) {
        Ok(start) => start,
        Err(err) => {
            started(Err(&err));
            return Err(err);
        }
    };
    let state = match ContainerState::load(paths, id)? {
        Some(state) => state,
        None => bail!("container {id} does not exist"),
    };
    // From now on this process owns the container: if it dies, the next command's recovery
    // finishes its work (see [`super::recover`]). A start is a new life for the restart
    // policy, as with Docker: no restarts counted, no stop remembered.
    let (me, me_start) = cstate::me();
    if let Err(err) = ContainerState::update(paths, id, |s| {
        s.supervisor_pid = me;
        s.supervisor_start_time = me_start;
        s.restart_count = 0;
        s.restarting = false;
        s.has_been_manually_stopped = false;
    }) {
        started(Err(&err));
        return Err(err);
    }
    let launched = match open_log_and_launch(paths, &state, attach.as_ref()) {
        Ok(launched) => launched,
        Err(err) => {
            started(Err(&err));
            return Err(err);
        }
    };
    drop(start);
    started(Ok(launched.0.as_raw()));
    supervise_runs(paths, &state, launched, attach, Backoff::default())
}
// ANCHOR_END: supervise

// ANCHOR: supervise_runs
/// Supervises the running process, and restarts it as long as the policy says so. Attached
/// (the foreground `run`, `start -a`), it returns at the first exit, as Docker's CLI does: a
/// detached shim takes over the restarts ([`hand_over`]).
fn supervise_runs(
    paths: &Paths,
    state: &ContainerState,
    mut launched: Running,
    mut attach: Option<Attach>,
    mut backoff: Backoff,
) -> Result<u8> {
    let id = &state.id;
    let attached = attach.is_some();
    loop {
        let ran_since = std::time::Instant::now();
        let (pid, outputs, cgroup, log) = launched;
        let exit = run_to_exit(paths, id, pid, outputs, cgroup, log, attach.take())?;
        let delay = backoff.next(ran_since.elapsed());
        let current = match schedule_restart(paths, state, &exit) {
            Some(current) => current,
            None => return finish(paths, state, exit),
        };
        if attached {
            hand_over(paths, id, delay)?;
            exit.pumped?;
            return exit.status;
        }
        if !wait_to_restart(paths, id, delay) {
            return finish(paths, state, exit);
        }
        // A failed start is recorded: the container stays stopped, with the error.
        launched = open_log_and_launch(paths, &current, None)?;
    }
}
// ANCHOR_END: supervise_runs

/// What one run of the container's process left: its status and the teardown's results.
struct RunExit {
    status: Result<u8>,
    pumped: Result<()>,
    removed_cgroup: Result<()>,
    unmounted: Result<()>,
    exit_code: i32,
    oom_killed: bool,
}

type Running = (Pid, Outputs, crate::cgroup::Cgroup, LogWriter);

use super::attach::{Request, Server};

/// Opens the log (once `run -d` returns, `logs -f` may open it) and launches the process;
/// a failed start is recorded (and an `--rm` container removed).
fn open_log_and_launch(
    paths: &Paths,
    state: &ContainerState,
    attach: Option<&Attach>,
) -> Result<Running> {
    let log = LogWriter::open(&paths.dir(&state.id).join("log"))?;
    let (pid, outputs, cgroup) = launch_or_record(paths, state, attach, None)?;
    Ok((pid, outputs, cgroup, log))
}

/// [`launch`], and a failed start recorded (and an `--rm` container removed).
fn launch_or_record(
    paths: &Paths,
    state: &ContainerState,
    attach: Option<&Attach>,
    given: Option<Given>,
) -> Result<(Pid, Outputs, crate::cgroup::Cgroup)> {
    let id = &state.id;
    match launch(paths, state, attach, given) {
        Ok(launched) => Ok(launched),
        Err(err) => {
            let _ = super::network::release(paths, id);
            let _ = unmount_rootfs(paths, id);
            let _ = crate::volume::unmount_driver_volumes(paths, state);
            record_failed_start(paths, id, &err);
            if state.config.auto_remove {
                let _lock = paths.lock();
                let _ = remove_files(paths, id);
                let _ = crate::volume::remove_anonymous(paths, state);
            }
            Err(err)
        }
    }
}

// ANCHOR: hand_over
/// The attached supervisor's exit is the CLI's: a detached shim goes on, waits `delay` and
/// restarts the container (`minidock shim --restart-after-ms MS ID`).
fn hand_over(paths: &Paths, id: &str, delay: std::time::Duration) -> Result<()> {
    let ms = delay.as_millis().to_string();
    start_shim(paths, id, &["--restart-after-ms", &ms], None)
}

/// The detached shim's side of [`hand_over`]: records itself as the supervisor, answers at
/// once, then waits `delay` and restarts the process, as [`supervise`] would have.
fn resume(
    paths: &Paths,
    id: &str,
    delay: std::time::Duration,
    started: &mut dyn FnMut(Result<i32, &anyhow::Error>),
) -> Result<u8> {
    let (me, me_start) = cstate::me();
    let recorded = ContainerState::update(paths, id, |s| {
        s.supervisor_pid = me;
        s.supervisor_start_time = me_start;
    });
    let state = match recorded {
        Ok(Some(state)) => state,
        Ok(None) => {
            let err = super::no_such_container(id);
            started(Err(&err));
            return Err(err);
        }
        Err(err) => {
            started(Err(&err));
            return Err(err);
        }
    };
    started(Ok(0));
    if !wait_to_restart(paths, id, delay) {
        let _ = ContainerState::update(paths, id, |s| {
            s.status = Status::Exited;
            s.restarting = false;
        });
        return Ok(0);
    }
    let launched = open_log_and_launch(paths, &state, None)?;
    supervise_runs(paths, &state, launched, None, Backoff { timeout: delay })
}
// ANCHOR_END: hand_over

/// Copies the output until the container closes it, reaps it, and tears down what this run
/// used (its cgroups, the runtime's state, the network pin, the overlay mount).
fn run_to_exit(
    paths: &Paths,
    id: &str,
    pid: Pid,
    mut outputs: Outputs,
    mut cgroup: crate::cgroup::Cgroup,
    log: LogWriter,
    attach: Option<Attach>,
) -> Result<RunExit> {
    let mut server = outputs.server.take();
    if let Some(server) = server.as_mut() {
        server.await_first_clients(&paths.dir(id));
    }
    let pumped = pump(outputs, log, attach, pid, &mut server);
    let status = crate::ns::wait_for(pid);
    if let Some(server) = server {
        server.finish(status.as_ref().map_or(-1, |s| i32::from(*s)));
    }
    // The OOM killer's count is in the cgroup, which goes away next.
    let oom_killed = oom_killed(&cgroup);
    let removed_cgroup = cgroup.remove();
    Ok(teardown(
        paths,
        id,
        status,
        pumped,
        removed_cgroup,
        oom_killed,
    ))
}

fn oom_killed(cgroup: &crate::cgroup::Cgroup) -> bool {
    cgroup
        .stats()
        .ok()
        .and_then(|s| s.oom_kills)
        .is_some_and(|n| n > 0)
}

/// Releases what the run used besides its cgroups (the driver filesystems of its volumes, the
/// runtime's state, the network pin, the overlay mount) and gathers the results.
fn teardown(
    paths: &Paths,
    id: &str,
    status: Result<u8>,
    pumped: Result<()>,
    removed_cgroup: Result<()>,
    oom_killed: bool,
) -> RunExit {
    // Its last process is gone: the driver filesystems of its volumes go unless in use.
    let removed_cgroup = removed_cgroup.and(release_volumes(paths, id));
    crate::runtime::forget(&paths.runtime_root, id);
    let exit_code = status.as_ref().map_or(-1, |s| i32::from(*s));
    // A stopped container keeps its upper dir, but not its mount. Unmount before recording the
    // exit: whoever sees "exited" (`start`, `cp`) may mount it again at once. The network's
    // teardown and the unmount do not depend on each other and each mostly waits for the
    // kernel (deleting a veth and unmounting wait for RCU grace periods): they run side by
    // side.
    let (released, unmounted) = std::thread::scope(|scope| {
        let network = scope.spawn(|| super::network::release(paths, id));
        let unmounted = unmount_rootfs(paths, id);
        let released = network
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the network teardown panicked")));
        (released, unmounted)
    });
    let unmounted = released.and(unmounted);
    crate::events::container_died(paths, id, exit_code);
    RunExit {
        status,
        pumped,
        removed_cgroup,
        unmounted,
        exit_code,
        oom_killed,
    }
}

// ANCHOR: schedule_restart
/// Decides, under the state lock, whether the policy restarts the process that just exited;
/// if so, records the exit with `Restarting` and one more `RestartCount` (as moby counts a
/// restart when it schedules it) and returns the new state.
fn schedule_restart(
    paths: &Paths,
    state: &ContainerState,
    exit: &RunExit,
) -> Option<ContainerState> {
    // Nothing to schedule (and nothing to write) for an `--rm` container, or when the policy
    // as recorded now says no; a `stop` meanwhile is checked again under the lock.
    let now = ContainerState::load(paths, &state.id).ok().flatten()?;
    if now.config.auto_remove
        || !now.config.restart_policy.should_restart(
            exit.exit_code,
            now.restart_count,
            now.has_been_manually_stopped,
        )
    {
        return None;
    }
    let mut restart = false;
    // The policy as recorded now: `update --restart` may have changed it.
    let recorded = ContainerState::update(paths, &state.id, |s| {
        let policy = &s.config.restart_policy;
        restart = !s.config.auto_remove
            && policy.should_restart(exit.exit_code, s.restart_count, s.has_been_manually_stopped);
        if restart {
            s.restarting = true;
            s.restart_count += 1;
            s.exit_code = exit.exit_code;
            s.oom_killed = exit.oom_killed;
            s.finished_at = crate::state::rfc3339(std::time::SystemTime::now());
            s.pid = 0;
        }
    });
    match recorded {
        Ok(Some(current)) if restart => {
            explain::trace!(PuttingTogether: "the restart policy starts the process again"
                => "write(\"state.json\", RestartCount={})", current.restart_count);
            Some(current)
        }
        _ => None,
    }
}
// ANCHOR_END: schedule_restart

/// Sleeps `delay` before a restart, in short naps, watching `state.json`: returns false when
/// a user stopped the container (or removed it) meanwhile.
fn wait_to_restart(paths: &Paths, id: &str, delay: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + delay;
    loop {
        match ContainerState::load(paths, id) {
            Ok(Some(s)) if !s.has_been_manually_stopped => {}
            _ => return false,
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(std::time::Duration::from_millis(20)));
    }
}

/// Unmounts the driver filesystems of the container's volumes that no running container uses.
fn release_volumes(paths: &Paths, id: &str) -> Result<()> {
    match ContainerState::load(paths, id)? {
        Some(state) => crate::volume::unmount_driver_volumes(paths, &state),
        None => Ok(()),
    }
}

/// Records the last exit (the container is stopped for good) and removes an `--rm` container.
fn finish(paths: &Paths, state: &ContainerState, exit: RunExit) -> Result<u8> {
    let exit_code = exit.exit_code;
    explain::trace!(PuttingTogether: "record the exit status"
        => "write(\"state.json\", ExitCode={exit_code})");
    let _ = ContainerState::update(paths, &state.id, |s| {
        // A restart called off (`stop`, `kill`) keeps the exit's time, recorded when the
        // restart was scheduled, as dockerd keeps it.
        if !s.restarting {
            s.finished_at = crate::state::rfc3339(std::time::SystemTime::now());
        }
        s.status = Status::Exited;
        s.restarting = false;
        s.exit_code = exit_code;
        s.oom_killed = exit.oom_killed;
        s.pid = 0;
    });
    if state.config.auto_remove {
        let _lock = paths.lock()?;
        let existed = paths.dir(&state.id).exists();
        remove_files(paths, &state.id)?;
        if existed {
            crate::events::container(paths, state, "destroy", &[]);
        }
        crate::volume::remove_anonymous(paths, state)?;
    }
    exit.pumped?;
    exit.removed_cgroup?;
    exit.unmounted?;
    exit.status
}

// ANCHOR: backoff
/// The delay before each restart, as moby's restart manager computes it: 100 ms before the
/// first, doubled before each next one up to one minute, and back to 100 ms once the process
/// had run for 10 seconds or more.
#[derive(Debug, Default)]
pub struct Backoff {
    timeout: std::time::Duration,
}

impl Backoff {
    const FIRST: std::time::Duration = std::time::Duration::from_millis(100);
    const MAX: std::time::Duration = std::time::Duration::from_secs(60);
    const RESET_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

    /// The delay before the next restart, after a run that lasted `ran`.
    pub fn next(&mut self, ran: std::time::Duration) -> std::time::Duration {
        if ran >= Backoff::RESET_AFTER {
            self.timeout = std::time::Duration::ZERO;
        }
        self.timeout = if self.timeout.is_zero() {
            Backoff::FIRST
        } else {
            (self.timeout * 2).min(Backoff::MAX)
        };
        self.timeout
    }
}
// ANCHOR_END: backoff

/// Where the container's output comes from: two pipes, or the master end of its terminal;
/// and the attach socket the shim serves.
pub(crate) struct Outputs {
    pub(crate) kind: OutputKind,
    pub(crate) server: Option<Server>,
}

pub(crate) enum OutputKind {
    /// `stdin`: the write end of the container's stdin, kept for attach clients (`-i`).
    Pipes {
        stdout: OwnedFd,
        stderr: OwnedFd,
        stdin: Option<OwnedFd>,
    },
    Terminal(OwnedFd),
}

// ANCHOR: launch
/// Mounts the rootfs, starts the container with its stdio connected to us, and records it as
/// running.
fn launch(
    paths: &Paths,
    state: &ContainerState,
    attach: Option<&Attach>,
    given: Option<Given>,
) -> Result<(Pid, Outputs, crate::cgroup::Cgroup)> {
    let id = &state.id;
    prepare_run(paths, state)?;
    let bundle = paths.dir(id);
    let (launched, outputs) = if state.config.tty {
        spawn_with_terminal(paths, id, &bundle, given.as_ref())?
    } else if let Some(given) = &given {
        spawn_with_given(paths, state, &bundle, given)?
    } else {
        spawn_with_pipes(paths, state, &bundle, attach)?
    };
    let pid = launched.pid;
    // Before the container is recorded running: whoever sees it running may attach (a light
    // shim binds its own).
    let server = match given {
        None => Server::bind(&paths.runtime_root.join(id)).ok(),
        Some(_) => None,
    };
    let outputs = Outputs {
        kind: outputs,
        server,
    };
    let supervisor = given.as_ref().map_or_else(cstate::me, |g| g.supervisor);
    record_running(paths, id, pid, launched.cgroup.paths(), supervisor)?;
    let crate::runtime::Launched {
        cgroup, console, ..
    } = launched;
    drop(console);
    Ok((pid, outputs, cgroup))
}
// ANCHOR_END: launch

// ANCHOR: prepare_run
/// Makes the container ready to run: what a killed supervisor may have left behind from a
/// previous run goes first, then the volumes, the rootfs and the network go in place.
fn prepare_run(paths: &Paths, state: &ContainerState) -> Result<()> {
    let id = &state.id;
    // What a killed supervisor may have left behind from a previous run.
    crate::runtime::forget(&paths.runtime_root, id);
    super::remove_cgroups(state)?;
    crate::volume::mount_driver_volumes(paths, state)?;
    mount_rootfs(paths, state)?;
    super::network::connect(paths, state)?;
    Ok(())
}
// ANCHOR_END: prepare_run

// ANCHOR: spawn_with_terminal
/// Starts a container with a terminal (`-t`): the runtime makes the pty and hands back its
/// master end, which is the container's only output; a light shim's child sends the master
/// on to the shim, which outlives it.
fn spawn_with_terminal(
    paths: &Paths,
    id: &str,
    bundle: &std::path::Path,
    given: Option<&Given>,
) -> Result<(crate::runtime::Launched, OutputKind)> {
    let launched = crate::runtime::spawn(&paths.runtime_root, id, bundle)?;
    let Some(master) = launched
        .console
        .as_ref()
        .map(|m| m.try_clone())
        .transpose()?
    else {
        bail!("the runtime gave no terminal for a container with process.terminal");
    };
    if let Some(given) = given {
        crate::tty::send_master_on(given.console.as_fd(), master.as_fd())?;
    }
    Ok((launched, OutputKind::Terminal(master)))
}
// ANCHOR_END: spawn_with_terminal

// ANCHOR: spawn_with_given
/// Starts a container on the pipes a light shim gave (`minidock shim-step`): the shim holds
/// the other ends, so this process has no output to copy.
fn spawn_with_given(
    paths: &Paths,
    state: &ContainerState,
    bundle: &std::path::Path,
    given: &Given,
) -> Result<(crate::runtime::Launched, OutputKind)> {
    let stdio = crate::runtime::Stdio {
        stdin: Some(if state.config.open_stdin {
            given.stdin.try_clone()?
        } else {
            dev_null()?
        }),
        stdout: Some(given.stdout.try_clone()?),
        stderr: Some(given.stderr.try_clone()?),
    };
    let launched =
        crate::runtime::spawn_with_stdio(&paths.runtime_root, &state.id, bundle, &stdio)?;
    let master = dev_null()?;
    Ok((launched, OutputKind::Terminal(master)))
}
// ANCHOR_END: spawn_with_given

// ANCHOR: spawn_with_pipes
/// Starts a container without a terminal: fresh pipes for its stdout and stderr (and its
/// stdin with `-i`), whose read ends this process keeps.
fn spawn_with_pipes(
    paths: &Paths,
    state: &ContainerState,
    bundle: &std::path::Path,
    attach: Option<&Attach>,
) -> Result<(crate::runtime::Launched, OutputKind)> {
    // ANCHOR: launch_pipes
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    // Without -i the container reads /dev/null, as with Docker: it must not compete with
    // the terminal for our input. With -i and no terminal of ours, it reads a pipe whose
    // other end the shim keeps for attach clients.
    let (stdin, stdin_w) = match attach {
        Some(a) if a.stdin => (None, None),
        _ if state.config.open_stdin => {
            let (r, w) = pipe()?;
            (Some(r), Some(w))
        }
        _ => (Some(dev_null()?), None),
    };
    let stdio = crate::runtime::Stdio {
        stdin,
        stdout: Some(stdout_w),
        stderr: Some(stderr_w),
    };
    explain::trace!(PuttingTogether: "give the container pipes for stdout and stderr"
        => "pipe2(O_CLOEXEC) x2; dup2 onto 1 and 2 in the container");
    let launched =
        crate::runtime::spawn_with_stdio(&paths.runtime_root, &state.id, bundle, &stdio)?;
    // Our copies of the write ends go now: once the container's are closed too, we read
    // end-of-file.
    drop(stdio);
    // ANCHOR_END: launch_pipes
    let outputs = OutputKind::Pipes {
        stdout: stdout_r,
        stderr: stderr_r,
        stdin: stdin_w,
    };
    Ok((launched, outputs))
}
// ANCHOR_END: spawn_with_pipes

// ANCHOR: record_running
/// Records the container as running, with its process and its supervisor. A container
/// removed while it started must not run, as nobody could ever stop it; one stopped while a
/// restart was on its way is killed at once.
fn record_running(
    paths: &Paths,
    id: &str,
    pid: Pid,
    cgroup_paths: Vec<std::path::PathBuf>,
    (me, me_start): (i32, u64),
) -> Result<()> {
    let mut stopped_by_user = false;
    let recorded = ContainerState::update(paths, id, |s| {
        // A `stop` while a restart was on its way: it ends here.
        stopped_by_user = s.has_been_manually_stopped;
        s.restarting = false;
        s.status = Status::Running;
        s.pid = pid.as_raw();
        s.pid_start_time = crate::runtime::process_start_time(pid.as_raw()).unwrap_or(0);
        s.supervisor_pid = me;
        s.supervisor_start_time = me_start;
        s.cgroup_paths = cgroup_paths;
        s.exit_code = 0;
        s.oom_killed = false;
        s.error.clear();
        s.started_at = crate::state::rfc3339(std::time::SystemTime::now());
        s.finished_at = ZERO_TIME.to_owned();
    });
    if !matches!(recorded, Ok(Some(_))) {
        // Removed while starting (`rm -f` from elsewhere), or the state cannot be written:
        // nobody could ever stop this container, so it must not run.
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = crate::ns::wait_for(pid);
        recorded?;
        bail!("container {id} was removed while it started");
    }
    if stopped_by_user {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    }
    if let Ok(Some(started)) = &recorded {
        crate::events::volumes_mounted(paths, started);
        crate::events::container(paths, started, "start", &[]);
    }
    Ok(())
}
// ANCHOR_END: record_running

fn write_all_fd(fd: BorrowedFd, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

// ANCHOR: pump
/// Copies the container's output to the log, to the terminal when attached, and to the
/// attach clients, until it is closed. Attached, it also passes our signals on to the
/// container and, with a terminal, our keystrokes and window size; the attach clients'
/// keystrokes, window sizes and signals go the same way ([`super::attach`]).
pub(crate) fn pump(
    outputs: Outputs,
    log: LogWriter,
    attach: Option<Attach>,
    pid: Pid,
    server: &mut Option<Server>,
) -> Result<()> {
    let (sources, stdin_sink) = output_sources(outputs.kind);
    let terminal = sources.len() == 1;
    let stdin = std::io::stdin();
    let _raw = attach_terminal(attach.as_ref(), terminal, &stdin, sources[0].0.as_fd());
    let stdin_open = terminal && attach.as_ref().is_some_and(|a| a.stdin);
    // Without --sig-proxy those Docker's CLI ignores are caught and ignored.
    let sig_proxy = attach.as_ref().is_some_and(|a| a.sig_proxy);
    let (mask, signals) = block_signals(attach.as_ref(), terminal)?;
    let (out, err) = match attach {
        Some(a) => (a.stdout, a.stderr),
        None => (None, None),
    };
    let mut pump = Pump {
        sources,
        stdin_sink,
        out,
        err,
        log,
        terminal,
        stdin_open,
        sig_proxy,
        pid,
        buf: vec![0u8; 64 * 1024],
    };
    let result = loop {
        if pump.sources.is_empty() {
            break Ok(());
        }
        match pump.poll(&signals, &stdin, server.as_ref()) {
            Ok(Some(ready)) => pump.handle(&ready, &signals, &stdin, server),
            Ok(None) => continue,
            Err(e) => break Err(e),
        }
    };
    let _ = mask.thread_unblock();
    result
}
// ANCHOR_END: pump

// ANCHOR: pump_state
/// What the pump reads from and writes to between two polls.
struct Pump {
    /// The container's outputs still open: two pipes, or the pty master alone.
    sources: Vec<(OwnedFd, Stream)>,
    /// Where the attach clients' keystrokes go: the stdin pipe, or the pty master.
    stdin_sink: Option<OwnedFd>,
    /// Our terminal's stdout and stderr, when attached.
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    log: LogWriter,
    terminal: bool,
    /// Our stdin is copied to the container's terminal (`-it` in the foreground).
    stdin_open: bool,
    sig_proxy: bool,
    pid: Pid,
    buf: Vec<u8>,
}

/// Which of the pump's descriptors poll(2) found ready: the sources, the signalfd, our stdin
/// (at `stdin_at`, when open) and the attach server's (from `server_at`).
struct Ready {
    flags: Vec<bool>,
    stdin_at: usize,
    server_at: usize,
}
// ANCHOR_END: pump_state

// ANCHOR: output_sources
/// The container's outputs to read, and where keystrokes for it go: with pipes, its stdout
/// and stderr and the write end of its stdin; with a terminal, the pty master for both.
fn output_sources(kind: OutputKind) -> (Vec<(OwnedFd, Stream)>, Option<OwnedFd>) {
    match kind {
        OutputKind::Pipes {
            stdout,
            stderr,
            stdin,
        } => (
            vec![(stdout, Stream::Stdout), (stderr, Stream::Stderr)],
            stdin,
        ),
        OutputKind::Terminal(master) => {
            let sink = master.try_clone().ok();
            (vec![(master, Stream::Stdout)], sink)
        }
    }
}
// ANCHOR_END: output_sources

// ANCHOR: attach_terminal
/// Attached with a terminal: the user's keys go to the container as typed (^C included), in
/// raw mode until the returned guard is dropped, and our window size becomes the container's.
fn attach_terminal(
    attach: Option<&Attach>,
    terminal: bool,
    stdin: &std::io::Stdin,
    master: BorrowedFd,
) -> Option<crate::tty::RawMode> {
    // With a terminal, the user's keys go to the container as typed (^C included).
    let raw = match attach {
        Some(a) if terminal && a.stdin => crate::tty::RawMode::enter(stdin.as_fd()),
        _ => None,
    };
    if terminal && attach.is_some() {
        crate::tty::copy_window_size(stdin.as_fd(), master);
    }
    raw
}
// ANCHOR_END: attach_terminal

// ANCHOR: block_signals
/// Blocks the signals an attached pump passes on (and SIGWINCH with a terminal), and returns
/// them as a readable descriptor for the poll loop.
fn block_signals(attach: Option<&Attach>, terminal: bool) -> Result<(SigSet, SignalFd)> {
    // Signals arrive as a readable fd. They are blocked only now, after the clone: the
    // container must not inherit the mask.
    let mut mask = SigSet::empty();
    if let Some(a) = attach {
        mask = super::attach::caught_signals(a.sig_proxy);
        if terminal {
            mask.add(Signal::SIGWINCH);
        }
    }
    mask.thread_block()
        .context("blocking the forwarded signals")?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("signalfd")?;
    Ok((mask, signals))
}
// ANCHOR_END: block_signals

impl Pump {
    // ANCHOR: pump_poll
    /// Waits until one of the descriptors is ready; `None` when a signal interrupted the wait.
    fn poll(
        &self,
        signals: &SignalFd,
        stdin: &std::io::Stdin,
        server: Option<&Server>,
    ) -> Result<Option<Ready>> {
        let mut fds: Vec<PollFd> = self
            .sources
            .iter()
            .map(|(fd, _)| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
            .collect();
        fds.push(PollFd::new(signals.as_fd(), PollFlags::POLLIN));
        let stdin_at = fds.len();
        if self.stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        let server_at = fds.len();
        if let Some(server) = server {
            fds.extend(
                server
                    .fds()
                    .into_iter()
                    .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
            );
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => return Ok(None),
            Err(e) => return Err(anyhow::Error::new(e).context("poll")),
            Ok(_) => {}
        }
        let flags = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        Ok(Some(Ready {
            flags,
            stdin_at,
            server_at,
        }))
    }
    // ANCHOR_END: pump_poll

    // ANCHOR: pump_handle
    /// Serves what is ready: signals, our keystrokes, the attach clients' requests, then the
    /// container's output; an output that reached its end is finished in the log.
    fn handle(
        &mut self,
        ready: &Ready,
        signals: &SignalFd,
        stdin: &std::io::Stdin,
        server: &mut Option<Server>,
    ) {
        let n_sources = self.sources.len();
        if ready.flags[n_sources] {
            self.forward_signals(signals, stdin);
        }
        if self.stdin_open && ready.flags[ready.stdin_at] {
            self.copy_keys(stdin);
        }
        if let Some(server) = server.as_mut() {
            for request in server.serve(&ready.flags[ready.server_at..]) {
                serve(request, &mut self.stdin_sink, self.terminal, self.pid);
            }
        }
        let mut closed = Vec::new();
        for i in 0..n_sources {
            if ready.flags[i] && self.copy_output(i, server) {
                closed.push(i);
            }
        }
        for i in closed.into_iter().rev() {
            let (_, stream) = self.sources.remove(i);
            let _ = self.log.finish(stream);
        }
    }
    // ANCHOR_END: pump_handle

    // ANCHOR: pump_signals
    /// Passes the signals we received on to the container's process (`--sig-proxy`); a
    /// window change of our terminal becomes the container's window size.
    fn forward_signals(&self, signals: &SignalFd, stdin: &std::io::Stdin) {
        while let Ok(Some(info)) = signals.read_signal() {
            let signo = info.ssi_signo as i32;
            if signo == libc::SIGWINCH && self.terminal {
                crate::tty::copy_window_size(stdin.as_fd(), self.sources[0].0.as_fd());
            }
            if self.sig_proxy {
                send_signal(self.pid, signo);
            }
        }
    }
    // ANCHOR_END: pump_signals

    // ANCHOR: pump_keys
    /// Copies our keystrokes to the container's terminal; at the end of our input, it types
    /// the terminal's EOF character, as typing ^D would.
    fn copy_keys(&mut self, stdin: &std::io::Stdin) {
        match nix::unistd::read(stdin, &mut self.buf) {
            Ok(0) | Err(_) => {
                // End of input: the terminal's EOF character, as typing ^D would.
                let _ = write_all_fd(self.sources[0].0.as_fd(), &[4]);
                self.stdin_open = false;
            }
            Ok(n) => {
                let _ = write_all_fd(self.sources[0].0.as_fd(), &self.buf[..n]);
            }
        }
    }
    // ANCHOR_END: pump_keys

    // ANCHOR: pump_output
    /// Copies one chunk of the container's output `i` three ways; true when the output
    /// reached its end.
    fn copy_output(&mut self, i: usize, server: &mut Option<Server>) -> bool {
        let (fd, stream) = (&self.sources[i].0, &self.sources[i].1);
        let (buf, log) = (&mut self.buf, &mut self.log);
        let (out, err) = (&mut self.out, &mut self.err);
        // ANCHOR: pump_copy
        match nix::unistd::read(fd, buf) {
            // EIO on a pty master: every slave descriptor is closed.
            Ok(0) | Err(nix::errno::Errno::EIO) => return true,
            Ok(n) => {
                let chunk = &buf[..n];
                let sink = match stream {
                    Stream::Stdout => out,
                    Stream::Stderr => err,
                };
                // A closed terminal (the user's pipe went away) stops the copy to it,
                // never the log.
                if let Some(fd) = sink
                    && write_all_fd(fd.as_fd(), chunk).is_err()
                {
                    *sink = None;
                }
                if let Some(server) = server.as_mut() {
                    server.broadcast(*stream == Stream::Stderr, chunk);
                }
                // A full disk loses log lines, but the container must not block on a
                // pipe nobody drains.
                let _ = log.write(*stream, chunk);
            }
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
            Err(_) => return true,
        }
        // ANCHOR_END: pump_copy
        false
    }
    // ANCHOR_END: pump_output
}

// ANCHOR: pump_serve
/// Carries out an attach client's request: keystrokes to the container's stdin, a window
/// size to its terminal, a signal to its process, the end of its input (the stdin pipe
/// closed; with a terminal, the EOF character typed, as at the in-process `run`).
fn serve(request: Request, stdin: &mut Option<OwnedFd>, terminal: bool, pid: Pid) {
    match request {
        Request::Stdin(bytes) => {
            if let Some(fd) = stdin {
                let _ = write_all_fd(fd.as_fd(), &bytes);
            }
        }
        Request::Resize(rows, cols) => {
            if let (Some(fd), true) = (stdin.as_ref(), terminal) {
                super::attach::set_window_size(fd.as_fd(), rows, cols);
            }
        }
        Request::Signal(signo) => send_signal(pid, signo),
        Request::CloseStdin if terminal => {
            if let Some(fd) = stdin {
                let _ = write_all_fd(fd.as_fd(), &[4]);
            }
        }
        Request::CloseStdin => *stdin = None,
    }
}

fn send_signal(pid: Pid, signo: i32) {
    if let Ok(signal) = crate::runtime::signal::Signal::from_number(signo) {
        let _ = signal.send(pid.as_raw());
    }
}
// ANCHOR_END: pump_serve

// ANCHOR: start_detached
/// Starts a container under a detached shim and returns once it runs (or failed to start,
/// with the error and exit code the shim reports).
pub fn start_detached(paths: &Paths, id: &str) -> Result<()> {
    match start_shim(paths, id, &[], None) {
        // Another start won the race: it runs, as this start wanted.
        Err(err) if super::is_already_running(&err, id) => Ok(()),
        started => started,
    }
}
// ANCHOR_END: start_detached

/// Starts a container under the light shim with `client`, a connected attach socket whose
/// hello byte is written, as its first client (the shim's stdin); returns once it runs.
pub fn start_attached(paths: &Paths, id: &str, client: OwnedFd) -> Result<()> {
    start_shim(paths, id, &["--client-on-stdin"], Some(client))
}

/// Whether the light shim is installed beside this binary: a foreground `run` can then be
/// Docker's create, start and attach ([`super::attach::foreground`]).
pub fn light_shim_installed() -> bool {
    light_shim().is_some()
}

/// Starts `minidock shim [ARGS] ID` (with `client` as its stdin, or /dev/null) and waits for
/// its one-line answer.
fn start_shim(paths: &Paths, id: &str, args: &[&str], client: Option<OwnedFd>) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let mut command = match light_shim() {
        Some((shim, minidock)) => {
            let mut command = std::process::Command::new(shim);
            command
                .arg("--minidock")
                .arg(minidock)
                .arg("--root")
                .arg(&paths.root);
            command
        }
        None => {
            let mut command = std::process::Command::new("/proc/self/exe");
            command.arg("--root").arg(&paths.root).arg("shim");
            command
        }
    };
    command
        .arg("--runtime-root")
        .arg(&paths.runtime_root)
        .args(args)
        .arg(id)
        .stdin(client.map_or_else(Stdio::null, Stdio::from))
        // The shim answers on its stdout: one line, then it lets go of the pipe.
        .stdout(Stdio::piped())
        // With --explain, the shim's steps (and the container's, up to execve) go to our
        // stderr until the container runs.
        .stderr(if explain::enabled() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    if explain::enabled() {
        command.arg("--explain");
    }
    explain::step(
        "start a shim to supervise the container",
        || {
            let program = command.get_program().to_string_lossy().into_owned();
            let shim = if program.ends_with("minidock-shim") {
                String::new()
            } else {
                "\"shim\", ".to_owned()
            };
            format!(
                "fork(); setsid(); fork(); execve(\"{program}\", [{shim}\"{}\"])",
                super::short_id(id)
            )
        },
        Chapter::PuttingTogether,
    );
    // SAFETY: setsid(2), fork(2) and _exit(2) are async-signal-safe. The shim leaves our
    // session and process group, so a ^C or a hangup of this terminal never reaches it; and
    // it is a grandchild (the child that forked it exits at once), so it is never ours to
    // reap: a long-lived caller (`minidock daemon`) gathers no zombie as each shim ends, and
    // the shim, not being a session leader, never gains a controlling terminal.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            match libc::fork() {
                -1 => Err(std::io::Error::last_os_error()),
                0 => Ok(()),
                _ => libc::_exit(0),
            }
        });
    }
    let mut child = command.spawn().context("starting the shim")?;
    let mut answer = String::new();
    let read = child
        .stdout
        .take()
        .context("the shim's stdout")?
        .read_to_string(&mut answer)
        .context("reading the shim's answer");
    // The child that forked the shim has exited: reaped here. The shim lives on.
    let _ = child.wait();
    read?;
    parse_report(answer.trim_end())
}

/// The light shim, `minidock-shim` beside this binary, and this binary's path; `None` when
/// it is not installed (then the shim is `minidock shim`, this binary re-executed).
fn light_shim() -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let minidock = std::env::current_exe().ok()?;
    let shim = minidock.with_file_name("minidock-shim");
    shim.is_file().then_some((shim, minidock))
}

fn parse_report(answer: &str) -> Result<()> {
    if answer.starts_with("ok ") {
        return Ok(());
    }
    if let Some(rest) = answer.strip_prefix("error ") {
        let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
        let code = code.parse().unwrap_or(code::FAILED);
        return Err(Exit::new(code, message.to_owned()).into());
    }
    bail!("the shim exited before starting the container (answer {answer:?})")
}

// ANCHOR: shim_main
/// `minidock shim ID`: the detached supervisor's entry point. With `restart_after`, the
/// container's process has exited and its restart policy holds: wait that long, then
/// restart it and supervise it ([`hand_over`]).
pub fn shim_main(
    paths: &Paths,
    id: &str,
    restart_after: Option<std::time::Duration>,
) -> Result<u8> {
    // The answer pipe is our stdout: keep it aside, and put /dev/null in its place, so no
    // stray print of ours (or of a library) can keep the CLI waiting.
    let mut report = Some(std::fs::File::from(
        std::io::stdout().as_fd().try_clone_to_owned()?,
    ));
    let null = dev_null()?;
    nix::unistd::dup2_stdout(&null).context("dup2 /dev/null onto stdout")?;
    let explaining = explain::enabled();
    let mut answer = |started: Result<i32, &anyhow::Error>| {
        let line = match started {
            Ok(pid) => format!("ok {pid}\n"),
            Err(err) => format!(
                "error {} {}\n",
                exit_code_of(err),
                format!("{err:#}").replace('\n', " ")
            ),
        };
        if let Some(mut pipe) = report.take() {
            let _ = pipe.write_all(line.as_bytes());
        }
        // Let go of the CLI's stderr too: from now on nobody is there to read it.
        if explaining {
            explain::enable(false);
            let _ = nix::unistd::dup2_stderr(&null);
        }
    };
    let result = match restart_after {
        Some(delay) => resume(paths, id, delay, &mut answer),
        None => supervise(paths, id, None, &mut answer),
    };
    // A shim's exit status is nobody's business: the container's is in state.json.
    result.map(|_| 0)
}
// ANCHOR_END: shim_main

// ANCHOR: step
/// What a light shim ([`super::monitor`]) gives `minidock shim-step` for one launch: the
/// container's ends of its stdin, stdout and stderr pipes, a unix socket on which the pty
/// master goes back (with `-t`), and the light shim's pid and start time, recorded as the
/// container's supervisor.
pub struct Given {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub console: OwnedFd,
    pub supervisor: (i32, u64),
}

/// The work of one `minidock shim-step`.
pub enum Step {
    /// Start the container (`start`, `run -d`).
    First,
    /// Restart it after this delay (a restart policy handed over by an attached `run`).
    Resume(std::time::Duration),
    /// Its process exited with `status` after running `ran`; the back-off so far was
    /// `backoff`. Tear the run down; restart it if the policy says so.
    Exited {
        status: i32,
        ran: std::time::Duration,
        backoff: std::time::Duration,
    },
}
// ANCHOR_END: step

// ANCHOR: step_main
/// `minidock shim-step`: the container-making half of a light shim, run as its child (as
/// containerd-shim runs `runc create`). It launches the container, whose process becomes the
/// light shim's child when this one exits (the shim is a subreaper), and prints one line:
/// `ok PID BACKOFF_MS` (running), `done` (stopped for good) or `error CODE MESSAGE`.
pub fn step_main(paths: &Paths, id: &str, step: Step, given: Given) -> Result<u8> {
    let line = match run_step(paths, id, step, given) {
        Ok(Some((pid, backoff))) => format!("ok {pid} {}", backoff.as_millis()),
        Ok(None) => "done".to_owned(),
        Err(err) => format!(
            "error {} {}",
            exit_code_of(&err),
            format!("{err:#}").replace('\n', " ")
        ),
    };
    println!("{line}");
    Ok(0)
}
// ANCHOR_END: step_main

// ANCHOR: run_step
/// Claims the container for the light shim, decides whether (and as what) it runs next,
/// and launches it; `None` when it stays stopped.
fn run_step(
    paths: &Paths,
    id: &str,
    step: Step,
    given: Given,
) -> Result<Option<(i32, std::time::Duration)>> {
    let first = matches!(step, Step::First);
    // A first start holds the start lock until the container is recorded running.
    let _start = first.then(|| super::claim_start(paths, id)).transpose()?;
    let state = record_supervisor(paths, id, given.supervisor, first)?;
    // ANCHOR: run_step_core
    let Some((state, backoff)) = next_run(paths, state, step)? else {
        return Ok(None);
    };
    let (pid, _outputs, cgroup) = launch_or_record(paths, &state, None, Some(given))?;
    // The cgroup outlives this process: the next step removes it from `state.json`'s paths.
    std::mem::forget(cgroup);
    // ANCHOR_END: run_step_core
    Ok(Some((pid.as_raw(), backoff)))
}
// ANCHOR_END: run_step

// ANCHOR: next_run
/// The state to launch next and the back-off so far: a first start, a restart after the
/// handed-over delay, or, after an exit, the teardown and a restart if the policy allows;
/// `None` when the container stays stopped.
fn next_run(
    paths: &Paths,
    state: ContainerState,
    step: Step,
) -> Result<Option<(ContainerState, std::time::Duration)>> {
    let id = &state.id;
    Ok(Some(match step {
        Step::First => (state, std::time::Duration::ZERO),
        Step::Resume(delay) => {
            if !wait_to_restart(paths, id, delay) {
                let _ = ContainerState::update(paths, id, |s| {
                    s.status = Status::Exited;
                    s.restarting = false;
                });
                return Ok(None);
            }
            (state, delay)
        }
        Step::Exited {
            status,
            ran,
            backoff,
        } => {
            let exit = exited(paths, &state, status);
            let mut backoff = Backoff { timeout: backoff };
            let delay = backoff.next(ran);
            let Some(current) = schedule_restart(paths, &state, &exit) else {
                finish(paths, &state, exit)?;
                return Ok(None);
            };
            if !wait_to_restart(paths, id, delay) {
                finish(paths, &state, exit)?;
                return Ok(None);
            }
            (current, backoff.timeout)
        }
    }))
}
// ANCHOR_END: next_run

// ANCHOR: step_teardown
/// Records the light shim (`supervisor`: its pid and start time) as the container's
/// supervisor, in one write of `state.json`; a `first` start is also a new life for the
/// restart policy, as in [`supervise`]. The step after an exit finds the same shim recorded
/// and writes nothing.
fn record_supervisor(
    paths: &Paths,
    id: &str,
    (pid, start): (i32, u64),
    first: bool,
) -> Result<ContainerState> {
    if !first
        && let Some(state) = ContainerState::load(paths, id)?
        && (state.supervisor_pid, state.supervisor_start_time) == (pid, start)
    {
        return Ok(state);
    }
    ContainerState::update(paths, id, |s| {
        s.supervisor_pid = pid;
        s.supervisor_start_time = start;
        if first {
            s.restart_count = 0;
            s.restarting = false;
            s.has_been_manually_stopped = false;
        }
    })?
    .ok_or_else(|| super::no_such_container(id))
}

/// Tears down the run that exited with `status` (its cgroups found from `state.json`): the
/// OOM killer's count read first, then each empty cgroup removed with one rmdir(2); only
/// what is left (a process or a child cgroup remains) goes through the whole teardown.
fn exited(paths: &Paths, state: &ContainerState, status: i32) -> RunExit {
    let oom = oom_kills(&state.cgroup_paths) > 0;
    for dir in &state.cgroup_paths {
        // EBUSY leaves it as it was, for the teardown below.
        let _ = std::fs::remove_dir(dir);
    }
    let removed = super::remove_cgroups(state);
    let status = u8::try_from(status).context("the exit status of the container");
    teardown(paths, &state.id, status, Ok(()), removed, oom)
}
// ANCHOR_END: step_teardown

/// The processes the OOM killer killed in the cgroups at `dirs`: the `oom_kill` line of the
/// memory controller's `memory.oom_control` (v1) or `memory.events` (v2), whichever of them
/// has one; 0 when none does.
fn oom_kills(dirs: &[std::path::PathBuf]) -> u64 {
    let count = |text: String| {
        text.lines()
            .find_map(|line| line.strip_prefix("oom_kill ")?.trim().parse::<u64>().ok())
    };
    dirs.iter()
        .flat_map(|dir| [dir.join("memory.oom_control"), dir.join("memory.events")])
        .find_map(|file| std::fs::read_to_string(file).ok().and_then(count))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_backoff_doubles_caps_at_a_minute_and_resets_after_ten_seconds() {
        let mut backoff = Backoff::default();
        let short = Duration::from_millis(5);
        let delays: Vec<u128> = (0..4).map(|_| backoff.next(short).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800]);
        for _ in 0..20 {
            backoff.next(short);
        }
        assert_eq!(backoff.next(short), Duration::from_secs(60));
        assert_eq!(
            backoff.next(Duration::from_secs(10)),
            Duration::from_millis(100)
        );
    }
}
