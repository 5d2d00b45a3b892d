//! The supervisor of a running container: Docker's containerd-shim, in one function.
//!
//! A container's process must have a parent that waits for it: only the parent gets its exit
//! status (wait(2)). That parent also owns the other ends of the container's stdout and stderr
//! pipes, or the output has nowhere to go. For `run -d`, the CLI must return at once, so it
//! cannot be that parent: it starts a **shim**, the `minidock` binary again as the hidden
//! `minidock shim ID` subcommand, detached from the terminal (setsid(2), stdio on /dev/null).
//! The shim starts the container with [`crate::runtime`], copies its output to the log, waits,
//! records the exit code and finish time in `state.json`, unmounts the overlay (or removes the
//! whole container with `--rm`), and exits. In the foreground, `minidock run` runs the very
//! same [`supervise`] itself, and also copies the output to the terminal.
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
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// `-i`: the container reads our stdin.
    pub stdin: bool,
}

impl Attach {
    /// Our own stdin, stdout and stderr.
    pub fn terminal(interactive: bool) -> Result<Attach> {
        Ok(Attach {
            stdout: std::io::stdout().as_fd().try_clone_to_owned()?,
            stderr: std::io::stderr().as_fd().try_clone_to_owned()?,
            stdin: interactive,
        })
    }
}

/// The signals the foreground `run` passes on to the container instead of dying of them, as
/// Docker's CLI does (`--sig-proxy`, on by default).
const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

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
    let state = match ContainerState::load(paths, id)? {
        Some(state) => state,
        None => bail!("container {id} does not exist"),
    };
    if state.observe() == Status::Running {
        let err = anyhow::Error::new(Exit::new(
            super::REQUEST_FAILED,
            format!("container {id} is already running"),
        ));
        started(Err(&err));
        return Err(err);
    }
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
    started(Ok(launched.0.as_raw()));
    supervise_runs(paths, &state, launched, attach, Backoff::default())
}

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
// ANCHOR_END: supervise

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

/// Opens the log (once `run -d` returns, `logs -f` may open it) and launches the process;
/// a failed start is recorded (and an `--rm` container removed).
fn open_log_and_launch(
    paths: &Paths,
    state: &ContainerState,
    attach: Option<&Attach>,
) -> Result<Running> {
    let id = &state.id;
    let log = LogWriter::open(&paths.dir(id).join("log"))?;
    match launch(paths, state, attach) {
        Ok((pid, outputs, cgroup)) => Ok((pid, outputs, cgroup, log)),
        Err(err) => {
            let _ = super::network::release(paths, id);
            let _ = unmount_rootfs(paths, id);
            record_failed_start(paths, id, &err);
            if state.config.auto_remove {
                let _lock = paths.lock();
                let _ = remove_files(paths, id);
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
    start_shim(paths, id, &["--restart-after-ms", &ms])
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
    outputs: Outputs,
    mut cgroup: crate::cgroup::Cgroup,
    log: LogWriter,
    attach: Option<Attach>,
) -> Result<RunExit> {
    let pumped = pump(outputs, log, attach, pid);
    let status = crate::ns::wait_for(pid);
    // The OOM killer's count is in the cgroup, which goes away next.
    let oom_killed = cgroup
        .stats()
        .ok()
        .and_then(|s| s.oom_kills)
        .is_some_and(|n| n > 0);
    let removed_cgroup = cgroup.remove();
    crate::runtime::forget(&paths.runtime_root, id);
    let exit_code = status.as_ref().map_or(-1, |s| i32::from(*s));
    // A stopped container keeps its upper dir, but not its mount. Unmount before recording the
    // exit: whoever sees "exited" (`start`, `cp`) may mount it again at once.
    let unmounted = super::network::release(paths, id).and(unmount_rootfs(paths, id));
    Ok(RunExit {
        status,
        pumped,
        removed_cgroup,
        unmounted,
        exit_code,
        oom_killed,
    })
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
            explain::step(
                "the restart policy starts the process again",
                || {
                    format!(
                        "write(\"state.json\", RestartCount={})",
                        current.restart_count
                    )
                },
                Chapter::PuttingTogether,
            );
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

/// Records the last exit (the container is stopped for good) and removes an `--rm` container.
fn finish(paths: &Paths, state: &ContainerState, exit: RunExit) -> Result<u8> {
    let exit_code = exit.exit_code;
    explain::step(
        "record the exit status",
        || format!("write(\"state.json\", ExitCode={exit_code})"),
        Chapter::PuttingTogether,
    );
    let _ = ContainerState::update(paths, &state.id, |s| {
        s.status = Status::Exited;
        s.restarting = false;
        s.exit_code = exit_code;
        s.oom_killed = exit.oom_killed;
        s.finished_at = crate::state::rfc3339(std::time::SystemTime::now());
        s.pid = 0;
    });
    if state.config.auto_remove {
        let _lock = paths.lock()?;
        remove_files(paths, &state.id)?;
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

/// Where the container's output comes from: two pipes, or the master end of its terminal.
enum Outputs {
    Pipes { stdout: OwnedFd, stderr: OwnedFd },
    Terminal(OwnedFd),
}

// ANCHOR: launch
/// Mounts the rootfs, starts the container with its stdio connected to us, and records it as
/// running.
fn launch(
    paths: &Paths,
    state: &ContainerState,
    attach: Option<&Attach>,
) -> Result<(Pid, Outputs, crate::cgroup::Cgroup)> {
    let id = &state.id;
    // What a killed supervisor may have left behind from a previous run.
    crate::runtime::forget(&paths.runtime_root, id);
    super::remove_cgroups(state)?;
    mount_rootfs(paths, state)?;
    super::network::connect(paths, state)?;
    let bundle = paths.dir(id);
    let (launched, outputs) = if state.config.tty {
        let launched = crate::runtime::spawn(&paths.runtime_root, id, &bundle)?;
        let Some(master) = launched
            .console
            .as_ref()
            .map(|m| m.try_clone())
            .transpose()?
        else {
            bail!("the runtime gave no terminal for a container with process.terminal");
        };
        (launched, Outputs::Terminal(master))
    } else {
        let (stdout_r, stdout_w) = pipe()?;
        let (stderr_r, stderr_w) = pipe()?;
        // Without -i the container reads /dev/null, as with Docker: it must not compete with
        // the terminal for our input.
        let stdin = match attach {
            Some(a) if a.stdin => None,
            _ => Some(dev_null()?),
        };
        let stdio = crate::runtime::Stdio {
            stdin,
            stdout: Some(stdout_w),
            stderr: Some(stderr_w),
        };
        explain::step(
            "give the container pipes for stdout and stderr",
            || "pipe2(O_CLOEXEC) x2; dup2 onto 1 and 2 in the container".into(),
            Chapter::PuttingTogether,
        );
        let launched = crate::runtime::spawn_with_stdio(&paths.runtime_root, id, &bundle, &stdio)?;
        // Our copies of the write ends go now: once the container's are closed too, we read
        // end-of-file.
        drop(stdio);
        (
            launched,
            Outputs::Pipes {
                stdout: stdout_r,
                stderr: stderr_r,
            },
        )
    };
    let pid = launched.pid;
    let (me, me_start) = cstate::me();
    let cgroup_paths = launched.cgroup.paths();
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
    let crate::runtime::Launched {
        cgroup, console, ..
    } = launched;
    drop(console);
    Ok((pid, outputs, cgroup))
}
// ANCHOR_END: launch

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
/// Copies the container's output to the log (and to the terminal when attached) until it is
/// closed. Attached, it also passes our signals on to the container and, with a terminal,
/// our keystrokes and window size.
fn pump(outputs: Outputs, mut log: LogWriter, attach: Option<Attach>, pid: Pid) -> Result<()> {
    let mut sources: Vec<(OwnedFd, Stream)> = match outputs {
        Outputs::Pipes { stdout, stderr } => {
            vec![(stdout, Stream::Stdout), (stderr, Stream::Stderr)]
        }
        Outputs::Terminal(master) => vec![(master, Stream::Stdout)],
    };
    let terminal = sources.len() == 1;
    let stdin = std::io::stdin();
    // With a terminal, the user's keys go to the container as typed (^C included).
    let _raw = match &attach {
        Some(a) if terminal && a.stdin => crate::tty::RawMode::enter(stdin.as_fd()),
        _ => None,
    };
    if terminal && attach.is_some() {
        crate::tty::copy_window_size(stdin.as_fd(), sources[0].0.as_fd());
    }
    let mut stdin_open = terminal && attach.as_ref().is_some_and(|a| a.stdin);
    // Signals arrive as a readable fd. They are blocked only now, after the clone: the
    // container must not inherit the mask.
    let mut mask = SigSet::empty();
    if attach.is_some() {
        for signal in FORWARDED {
            mask.add(signal);
        }
        if terminal {
            mask.add(Signal::SIGWINCH);
        }
    }
    mask.thread_block()
        .context("blocking the forwarded signals")?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("signalfd")?;
    let (mut out, mut err) = match attach {
        Some(a) => (Some(a.stdout), Some(a.stderr)),
        None => (None, None),
    };
    let mut buf = vec![0u8; 64 * 1024];
    let result = loop {
        if sources.is_empty() {
            break Ok(());
        }
        let mut fds: Vec<PollFd> = sources
            .iter()
            .map(|(fd, _)| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
            .collect();
        fds.push(PollFd::new(signals.as_fd(), PollFlags::POLLIN));
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => break Err(anyhow::Error::new(e).context("poll")),
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let n_sources = sources.len();
        if ready[n_sources] {
            while let Ok(Some(info)) = signals.read_signal() {
                let signo = info.ssi_signo as i32;
                if signo == libc::SIGWINCH {
                    crate::tty::copy_window_size(stdin.as_fd(), sources[0].0.as_fd());
                } else if let Ok(signal) = crate::runtime::signal::Signal::from_number(signo) {
                    let _ = signal.send(pid.as_raw());
                }
            }
        }
        if stdin_open && ready.get(n_sources + 1) == Some(&true) {
            match nix::unistd::read(&stdin, &mut buf) {
                Ok(0) | Err(_) => {
                    // End of input: the terminal's EOF character, as typing ^D would.
                    let _ = write_all_fd(sources[0].0.as_fd(), &[4]);
                    stdin_open = false;
                }
                Ok(n) => {
                    let _ = write_all_fd(sources[0].0.as_fd(), &buf[..n]);
                }
            }
        }
        let mut closed = Vec::new();
        for (i, (fd, stream)) in sources.iter().enumerate() {
            if !ready[i] {
                continue;
            }
            match nix::unistd::read(fd, &mut buf) {
                // EIO on a pty master: every slave descriptor is closed.
                Ok(0) | Err(nix::errno::Errno::EIO) => closed.push(i),
                Ok(n) => {
                    let chunk = &buf[..n];
                    let sink = match stream {
                        Stream::Stdout => &mut out,
                        Stream::Stderr => &mut err,
                    };
                    // A closed terminal (the user's pipe went away) stops the copy to it,
                    // never the log.
                    if let Some(fd) = sink
                        && write_all_fd(fd.as_fd(), chunk).is_err()
                    {
                        *sink = None;
                    }
                    // A full disk loses log lines, but the container must not block on a
                    // pipe nobody drains.
                    let _ = log.write(*stream, chunk);
                }
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(_) => closed.push(i),
            }
        }
        for i in closed.into_iter().rev() {
            let (_, stream) = sources.remove(i);
            let _ = log.finish(stream);
        }
    };
    let _ = mask.thread_unblock();
    result
}
// ANCHOR_END: pump

// ANCHOR: start_detached
/// Starts a container under a detached shim and returns once it runs (or failed to start,
/// with the error and exit code the shim reports).
pub fn start_detached(paths: &Paths, id: &str) -> Result<()> {
    start_shim(paths, id, &[])
}
// ANCHOR_END: start_detached

/// Starts `minidock shim [ARGS] ID` and waits for its one-line answer.
fn start_shim(paths: &Paths, id: &str, args: &[&str]) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new("/proc/self/exe");
    command
        .arg("--root")
        .arg(&paths.root)
        .arg("shim")
        .arg("--runtime-root")
        .arg(&paths.runtime_root)
        .args(args)
        .arg(id)
        .stdin(Stdio::null())
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
            format!(
                "fork(); setsid(); execve(\"/proc/self/exe\", [\"shim\", \"{}\"])",
                super::short_id(id)
            )
        },
        Chapter::PuttingTogether,
    );
    // SAFETY: setsid(2) is async-signal-safe; the shim leaves our session and process group,
    // so a ^C or a hangup of this terminal never reaches it.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut child = command.spawn().context("starting the shim")?;
    let mut answer = String::new();
    child
        .stdout
        .take()
        .context("the shim's stdout")?
        .read_to_string(&mut answer)
        .context("reading the shim's answer")?;
    // The shim lives on; we never wait for it (it is reparented when we exit).
    drop(child);
    parse_report(answer.trim_end())
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
