//! The light shim (`minidock-shim`): what stays with a detached container while it runs.
//!
//! The `minidock` binary is large, and a shim that is `minidock` re-executed keeps megabytes
//! of it resident for each container. Docker splits the work the same way as this module:
//! containerd-shim is a small program that asks runc (a child process that exits) to make the
//! container, and is then only the container's parent. Here the light shim:
//!
//! 1. becomes a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`), so the container's process
//!    becomes its child when the process that made it exits;
//! 2. makes the container's pipes and runs `minidock shim-step ID` with their other ends (as
//!    descriptors 3 to 6), which launches the container and records it
//!    ([`super::shim::step_main`]), and reads its one-line answer;
//! 3. copies the output to the log and serves attach clients ([`super::attach`]), waits for
//!    the process, and runs `minidock shim-step --exited STATUS ID`, which tears the run down,
//!    records the exit (removes an `--rm` container) and restarts the process when the
//!    restart policy says so (then the light shim goes on from 3), or answers `done`. Only
//!    then do the attach clients get the exit frame: whoever sees it (a foreground `run`) finds
//!    the exit recorded, as Docker's CLI waits for it.
//!
//! The first answer goes to the CLI that started the shim, on the shim's stdout, in the form
//! [`super::shim::start_detached`] reads. A foreground `run` passes its attach socket as the
//! shim's stdin (`--client-on-stdin`): that client gets the first run's output from its start.

use super::attach::Server;
use super::logs::LogWriter;
use super::shim::{OutputKind, Outputs, pump};
use anyhow::{Context, Result, bail};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use std::io::{BufRead, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The light shim's command line: `minidock-shim --minidock EXE --root ROOT --runtime-root
/// DIR [--restart-after-ms MS] [--client-on-stdin] [--explain] ID`.
#[derive(Debug, Default)]
pub struct Options {
    pub minidock: PathBuf,
    pub root: PathBuf,
    pub runtime_root: PathBuf,
    pub restart_after_ms: Option<u64>,
    /// Our stdin is a connected attach client (its hello byte sent).
    pub client_on_stdin: bool,
    pub explain: bool,
    pub id: String,
}

impl Options {
    /// Parses the arguments after the program name; errors name the bad argument.
    pub fn parse(args: &[String]) -> Result<Options> {
        let mut options = Options::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().cloned().context(format!("{arg} needs a value"));
            match arg.as_str() {
                "--minidock" => options.minidock = value()?.into(),
                "--root" => options.root = value()?.into(),
                "--runtime-root" => options.runtime_root = value()?.into(),
                "--restart-after-ms" => {
                    options.restart_after_ms = Some(value()?.parse().context("--restart-after-ms")?)
                }
                "--explain" => options.explain = true,
                "--client-on-stdin" => options.client_on_stdin = true,
                id if !id.starts_with('-') && options.id.is_empty() => options.id = id.to_owned(),
                other => bail!("unexpected argument {other:?}"),
            }
        }
        if options.id.is_empty() || options.minidock.as_os_str().is_empty() {
            bail!("usage: minidock-shim --minidock EXE --root ROOT --runtime-root DIR ID");
        }
        Ok(options)
    }
}

// ANCHOR: monitor
/// Runs the light shim until the container stops for good.
pub fn run(options: &Options) -> Result<()> {
    nix::sys::prctl::set_child_subreaper(true).context("PR_SET_CHILD_SUBREAPER")?;
    let (mut report, null, mut client) = take_stdio(options)?;
    // The last run's exit frame goes out once the step after it has recorded the exit.
    let mut exited: Option<(Option<Server>, i32)> = None;
    // With --explain, a foreground CLI shows the steps up to its exit frame: our stderr stays
    // its stderr until then.
    let mut trace_to_client = options.client_on_stdin && options.explain;
    let mut step: Vec<String> = match options.restart_after_ms {
        Some(ms) => vec!["--resume-after-ms".into(), ms.to_string()],
        None => vec![],
    };
    loop {
        let launched = launch(options, &step);
        send_exit_frame(exited.take(), &mut trace_to_client, &null);
        let launched = launched?;
        let answer = launched.answer.clone();
        let mut answer_cli = |line: &str| {
            if let Some(mut pipe) = report.take() {
                let _ = pipe.write_all(line.as_bytes());
                let _ = pipe.write_all(b"\n");
                if !trace_to_client {
                    let _ = nix::unistd::dup2_stderr(&null);
                }
            }
        };
        let Some((pid, backoff_ms)) = parse_ok(&answer) else {
            answer_cli(if answer.starts_with("error ") {
                &answer
            } else {
                "done"
            });
            return Ok(());
        };
        let (server, status, ran) = serve_run(
            options,
            launched.outputs,
            pid,
            client.take(),
            &mut answer_cli,
        )?;
        exited = Some((server, status));
        step = exited_step(status, ran, backoff_ms);
    }
}
// ANCHOR_END: monitor

// ANCHOR: send_exit_frame
/// Sends the last run's exit frame to the attach clients, once the step after it has recorded
/// the exit; a foreground CLI's trace ends there, and our stderr goes to /dev/null.
fn send_exit_frame(
    exited: Option<(Option<Server>, i32)>,
    trace_to_client: &mut bool,
    null: &OwnedFd,
) {
    if let Some((server, status)) = exited {
        if let Some(server) = server {
            server.finish(status);
        }
        if std::mem::take(trace_to_client) {
            let _ = nix::unistd::dup2_stderr(null);
        }
    }
}
// ANCHOR_END: send_exit_frame

// ANCHOR: take_stdio
/// Takes the CLI's answer pipe (our stdout) aside and puts /dev/null in its place, so no
/// stray print keeps the CLI waiting; with `--client-on-stdin`, our stdin is the first attach
/// client. Returns the pipe, /dev/null and the client.
fn take_stdio(
    options: &Options,
) -> Result<(
    Option<std::fs::File>,
    OwnedFd,
    Option<std::os::unix::net::UnixStream>,
)> {
    // The CLI's answer pipe is our stdout: kept aside, /dev/null in its place.
    let report = Some(std::fs::File::from(
        std::io::stdout().as_fd().try_clone_to_owned()?,
    ));
    let null: OwnedFd = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")?
        .into();
    nix::unistd::dup2_stdout(&null)?;
    let client = if options.client_on_stdin {
        let fd = std::io::stdin().as_fd().try_clone_to_owned()?;
        nix::unistd::dup2_stdin(&null)?;
        Some(std::os::unix::net::UnixStream::from(fd))
    } else {
        None
    };
    Ok((report, null, client))
}
// ANCHOR_END: take_stdio

// ANCHOR: serve_run
/// One run of the container's process: the attach socket bound (the first client adopted)
/// before the CLI hears `ok PID`, then the output pumped until it ends, and the process
/// reaped. Returns the server, the exit status and how long the process ran.
fn serve_run(
    options: &Options,
    outputs: OutputKind,
    pid: i32,
    client: Option<std::os::unix::net::UnixStream>,
    answer_cli: &mut dyn FnMut(&str),
) -> Result<(Option<Server>, i32, std::time::Duration)> {
    let dir = options.runtime_root.join(&options.id);
    let mut server = Server::bind(&dir).ok();
    if let (Some(server), Some(client)) = (server.as_mut(), client) {
        server.adopt(client);
    }
    answer_cli(&format!("ok {pid}"));
    let container_dir = options.root.join("containers").join(&options.id);
    if let Some(server) = server.as_mut() {
        server.await_first_clients(&container_dir);
    }
    let log = LogWriter::open(&container_dir.join("log"))?;
    let ran_since = std::time::Instant::now();
    let outputs = Outputs {
        kind: outputs,
        server: None,
    };
    let _ = pump(outputs, log, None, Pid::from_raw(pid), &mut server);
    let status = wait_for(pid);
    Ok((server, status, ran_since.elapsed()))
}

/// The next `shim-step`'s arguments after the process exited with `status`.
fn exited_step(status: i32, ran: std::time::Duration, backoff_ms: u64) -> Vec<String> {
    vec![
        "--exited".into(),
        status.to_string(),
        "--ran-ms".into(),
        ran.as_millis().to_string(),
        "--backoff-ms".into(),
        backoff_ms.to_string(),
    ]
}
// ANCHOR_END: serve_run

fn parse_ok(answer: &str) -> Option<(i32, u64)> {
    let mut words = answer.strip_prefix("ok ")?.split(' ');
    Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
}

struct Launched {
    answer: String,
    outputs: OutputKind,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe2")
}

/// Runs `minidock shim-step STEP ID` with the container's ends of fresh pipes (3: stdin,
/// 4: stdout, 5: stderr, 6: the console socket) and returns its answer and our ends.
fn launch(options: &Options, step: &[String]) -> Result<Launched> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    let (stdin_r, stdin_w) = pipe()?;
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    let (console, console_child) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("socketpair")?;
    let mut command = Command::new(&options.minidock);
    command
        .arg("--root")
        .arg(&options.root)
        .arg("shim-step")
        .arg("--runtime-root")
        .arg(&options.runtime_root)
        .args(step)
        .arg(&options.id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if options.explain {
        command.arg("--explain");
    }
    // Copies above 9 first, so that no dup2 onto 3..6 closes a source still to be copied.
    let high = [&stdin_r, &stdout_w, &stderr_w, &console_child]
        .map(|fd| nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10)));
    let high: Vec<OwnedFd> = high
        .into_iter()
        .map(|fd| {
            // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nobody else owns.
            fd.map(|raw| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) })
        })
        .collect::<nix::Result<_>>()
        .context("F_DUPFD_CLOEXEC")?;
    let fds: Vec<i32> = high.iter().map(|fd| fd.as_raw_fd()).collect();
    // SAFETY: dup2 is async-signal-safe; the copies on 3..6 lose close-on-exec.
    unsafe {
        command.pre_exec(move || {
            for (i, fd) in fds.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    crate::daemon::trace::mark(|| format!("shim: shim-step {step:?}"));
    let mut child = command.spawn().context("starting minidock shim-step")?;
    let mut answer = String::new();
    std::io::BufReader::new(child.stdout.take().context("shim-step's stdout")?)
        .read_line(&mut answer)
        .context("reading shim-step's answer")?;
    crate::daemon::trace::mark(|| format!("shim: shim-step answered {:?}", answer.trim_end()));
    let _ = child.wait();
    drop((stdin_r, stdout_w, stderr_w, console_child, high));
    let answer = answer.trim_end().to_owned();
    let outputs = if answer.starts_with("ok ") && is_tty(&console)? {
        let master = crate::tty::receive_master(console.as_fd())?;
        OutputKind::Terminal(master)
    } else {
        OutputKind::Pipes {
            stdout: stdout_r,
            stderr: stderr_r,
            stdin: Some(stdin_w),
        }
    };
    Ok(Launched { answer, outputs })
}

/// Whether shim-step sent a pty master (it has exited: the socket holds the message or is
/// at end of file).
fn is_tty(console: &OwnedFd) -> Result<bool> {
    let mut fds = [nix::poll::PollFd::new(
        console.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).context("poll")?;
    let mut byte = [0u8; 1];
    let n = nix::sys::socket::recv(
        console.as_raw_fd(),
        &mut byte,
        nix::sys::socket::MsgFlags::MSG_PEEK | nix::sys::socket::MsgFlags::MSG_DONTWAIT,
    );
    Ok(matches!(n, Ok(1)))
}

/// Waits for the container's process (our child since shim-step exited), reaping any other
/// orphan on the way; returns its status as a shell reports it (128 + signal).
fn wait_for(pid: i32) -> i32 {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => {
                crate::daemon::trace::mark(|| format!("shim: process {pid} exited {code}"));
                return code;
            }
            Ok(WaitStatus::Signaled(p, signal, _)) if p.as_raw() == pid => {
                crate::daemon::trace::mark(|| format!("shim: process {pid} killed by {signal}"));
                return 128 + signal as i32;
            }
            Err(nix::errno::Errno::EINTR) | Ok(_) => {}
            Err(_) => return 255,
        }
    }
}

/// `minidock-shim`'s `main`: 0 once the container stopped for good, 1 on a failure.
pub fn main(args: &[String]) -> u8 {
    match Options::parse(args).and_then(|options| run(&options)) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("minidock-shim: {err:#}");
            1
        }
    }
}
