//! `/exec/...` (and `POST /containers/ID/exec`): processes started in a running container.
//!
//! An exec instance is recorded by the daemon; its start runs `minidock exec` (the CLI's own
//! code: it joins the container's namespaces and cgroups, which a process must do for
//! itself) as a child of the daemon with pipes for its stdio, or a pty whose master the
//! daemon holds, and copies them to and from the hijacked connection.

use super::error::{ApiError, ApiResult};
use super::{Body, Query, Shared, blocking, empty, json};
use crate::container::Status;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json as object;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One exec instance, as `POST /containers/ID/exec` made it.
#[derive(Debug, Clone, Default)]
pub struct ExecRecord {
    pub id: String,
    pub container: String,
    pub config: ExecConfig,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub pid: u32,
    /// The pty master of a running exec with a terminal (for `resize`).
    pub master: Option<Arc<OwnedFd>>,
}

/// Docker's `ExecConfig` (the body of `POST /containers/ID/exec`), the fields minidock takes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    pub cmd: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub detach_keys: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct StartBody {
    detach: bool,
}

/// Routes `/exec/REST`.
pub async fn route(
    daemon: Shared,
    req: Request<Incoming>,
    rest: &[&str],
) -> ApiResult<Response<Body>> {
    let query = Query::parse(req.uri().query());
    match (req.method().clone(), rest) {
        (Method::POST, [id, "start"]) => {
            let id = id.to_string();
            start(daemon, &id, req).await
        }
        (Method::POST, [id, "resize"]) => resize(&daemon, id, &query),
        (Method::GET, [id, "json"]) => inspect(&daemon, id),
        _ => Err(ApiError::not_found_route()),
    }
}

fn no_such_exec(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("No such exec instance: {id}"),
    )
}

/// Exec instance `id`; 404 when there is none, or its container was removed meanwhile (by
/// anyone: the record then goes too).
fn record(daemon: &Shared, id: &str) -> ApiResult<ExecRecord> {
    let found = daemon
        .execs
        .lock()
        .ok()
        .and_then(|execs| execs.get(id).cloned());
    match found {
        Some(exec) if daemon.paths.dir(&exec.container).exists() => Ok(exec),
        Some(_) => {
            forget_removed(daemon);
            Err(no_such_exec(id))
        }
        None => Err(no_such_exec(id)),
    }
}

/// Drops the exec records of containers that no longer exist, as dockerd drops a container's
/// execs with it: removed through this daemon, by `minidock rm`, or by `--rm`. A record costs
/// one stat.
pub fn forget_removed(daemon: &Shared) {
    if let Ok(mut execs) = daemon.execs.lock() {
        execs.retain(|_, exec| daemon.paths.dir(&exec.container).exists());
    }
}

fn update(daemon: &Shared, id: &str, change: impl FnOnce(&mut ExecRecord)) {
    if let Ok(mut execs) = daemon.execs.lock()
        && let Some(record) = execs.get_mut(id)
    {
        change(record);
    }
}

/// `POST /containers/ID/exec`: records an exec instance for a running container; 201 with
/// its ID. Refused as dockerd refuses it: a container not running or paused (409), detach
/// keys that do not parse (500).
pub async fn create(
    daemon: Shared,
    container: &str,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let config: ExecConfig = super::body_json::<Option<ExecConfig>>(req)
        .await?
        .unwrap_or_default();
    if config.cmd.as_ref().is_none_or(Vec::is_empty) {
        return Err(ApiError::bad_parameter("No exec command specified"));
    }
    let d = daemon.clone();
    let wanted = container.to_owned();
    let state = blocking(move || d.paths.resolve(&wanted)).await?;
    if state.observe() != Status::Running {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Container {} is not running", state.id),
        ));
    }
    if state.is_restarting() {
        return Err(crate::container::restarting(&state.id).into());
    }
    if crate::container::pause::is_paused(&state) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Container {container} is paused, unpause the container before exec"),
        ));
    }
    if let Some(keys) = config.detach_keys.as_deref().filter(|k| !k.is_empty())
        && crate::container::attach::parse_detach_keys(keys).is_err()
    {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Invalid escape keys ({keys}) provided"),
        ));
    }
    forget_removed(&daemon);
    let id = crate::container::new_id().map_err(ApiError::from)?;
    let exec = ExecRecord {
        id: id.clone(),
        container: state.id,
        config,
        ..ExecRecord::default()
    };
    if let Ok(mut execs) = daemon.execs.lock() {
        execs.insert(id.clone(), exec);
    }
    Ok(json(StatusCode::CREATED, &object!({ "Id": id })))
}

// ANCHOR: exec_command
/// `minidock [--root ROOT] exec --oci-start-errors [--start-report] [-i] [-t] [-u USER]
/// [-w DIR] [-e VAR]... ID CMD...` (`--start-report` for a detached start).
fn command(
    daemon: &Shared,
    exec: &ExecRecord,
    detach: bool,
) -> std::io::Result<std::process::Command> {
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    if let Some(root) = &daemon.root_arg {
        cmd.arg("--root").arg(root);
    }
    cmd.arg("exec").arg("--oci-start-errors");
    if detach {
        cmd.arg("--start-report");
    }
    let config = &exec.config;
    if config.attach_stdin {
        cmd.arg("-i");
    }
    if config.tty {
        cmd.arg("-t");
    }
    if let Some(user) = config.user.as_deref().filter(|u| !u.is_empty()) {
        cmd.args(["-u", user]);
    }
    if let Some(dir) = config.working_dir.as_deref().filter(|d| !d.is_empty()) {
        cmd.args(["-w", dir]);
    }
    for env in config.env.iter().flatten() {
        cmd.args(["-e", env]);
    }
    cmd.arg(&exec.container);
    cmd.args(config.cmd.iter().flatten());
    Ok(cmd)
}
// ANCHOR_END: exec_command

/// A pty pair whose slave becomes the controlling terminal of the child (`setsid`,
/// `TIOCSCTTY`), so `resize` reaches it as SIGWINCH.
fn with_terminal(cmd: &mut std::process::Command) -> std::io::Result<OwnedFd> {
    use std::os::unix::process::CommandExt;
    let pty = nix::pty::openpty(None, None).map_err(std::io::Error::from)?;
    let slave = pty.slave;
    cmd.stdin(std::process::Stdio::from(slave.try_clone()?))
        .stdout(std::process::Stdio::from(slave.try_clone()?))
        .stderr(std::process::Stdio::from(slave));
    // SAFETY: setsid(2) and ioctl(2) are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(pty.master)
}

// ANCHOR: start
/// `POST /exec/ID/start`: runs the exec instance. Detached, it answers 200 once the process
/// runs, or dockerd's refusal when it cannot start ([`start_error`]); else the
/// connection is hijacked (`101 UPGRADED`) and carries the process's stdio (multiplexed
/// without a tty, raw with one) until it exits; its exit code is recorded first, so an
/// inspect right after the stream ends sees it.
async fn start(daemon: Shared, id: &str, mut req: Request<Incoming>) -> ApiResult<Response<Body>> {
    let exec = record(&daemon, id)?;
    refuse_a_second_start(&exec)?;
    let upgrade = hyper::upgrade::on(&mut req);
    let body: StartBody = super::body_json::<Option<StartBody>>(req)
        .await?
        .unwrap_or_default();
    let mut cmd = command(&daemon, &exec, body.detach).map_err(io_error)?;
    let tty = exec.config.tty;
    let master = if tty && !body.detach {
        Some(Arc::new(with_terminal(&mut cmd).map_err(io_error)?))
    } else {
        let piped = |wanted: bool| {
            if wanted && !body.detach {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            }
        };
        // Detached, stdout is the start report (`--start-report`).
        cmd.stdin(piped(exec.config.attach_stdin))
            .stdout(std::process::Stdio::piped())
            .stderr(piped(true));
        None
    };
    let mut child = tokio::process::Command::from(cmd)
        .kill_on_drop(false)
        .spawn()
        .map_err(io_error)?;
    let pid = child.id().unwrap_or(0);
    update(&daemon, id, |r| {
        r.running = true;
        r.pid = pid;
        r.master = master.clone();
    });
    if body.detach {
        return run_detached(daemon, id, child).await;
    }
    let owned = id.to_owned();
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            let _ = child.kill().await;
            finish(&daemon, &owned, None);
            return;
        };
        let client = hyper_util::rt::TokioIo::new(upgraded);
        let status = match master {
            Some(master) => pipe_terminal(client, master, &mut child).await,
            None => pipe_streams(client, &mut child).await,
        };
        finish(&daemon, &owned, status);
    });
    let content_type = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("Content-Type", content_type)
        .header(hyper::header::CONNECTION, "Upgrade")
        .header(hyper::header::UPGRADE, "tcp")
        .body(Body::Full(None))
        .unwrap_or_else(|_| Response::new(Body::Full(None))))
}
// ANCHOR_END: start

/// dockerd's 409 for a start of an exec instance that was started before.
fn refuse_a_second_start(exec: &ExecRecord) -> ApiResult<()> {
    let again = match (exec.exit_code, exec.running) {
        (Some(_), _) => "has already run",
        (None, true) => "is already running",
        (None, false) => return Ok(()),
    };
    Err(ApiError::new(
        StatusCode::CONFLICT,
        format!("Error: Exec command {} {again}", exec.id),
    ))
}

/// A detached exec whose `minidock exec` was spawned with `--start-report`: 200 once its
/// process runs (its exit is recorded when it comes), or dockerd's refusal when it cannot
/// start, recorded as dockerd records it (exit code 126, pid 0).
async fn run_detached(
    daemon: Shared,
    id: &str,
    mut child: tokio::process::Child,
) -> ApiResult<Response<Body>> {
    let failure = start_report(&mut child).await;
    if !failure.is_empty() {
        let status = child.wait().await.ok().and_then(|s| exit_code(&s));
        update(&daemon, id, |r| r.pid = 0);
        finish(&daemon, id, status);
        return Err(start_error(failure));
    }
    let owned = id.to_owned();
    tokio::spawn(async move {
        let status = child.wait().await.ok().and_then(|s| exit_code(&s));
        finish(&daemon, &owned, status);
    });
    Ok(empty(StatusCode::OK))
}

/// A detached exec's start report: its `minidock exec`'s stdout read to its end, which comes
/// once the process runs; empty then, else why it could not start.
async fn start_report(child: &mut tokio::process::Child) -> String {
    let mut report = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_end(&mut report).await;
    }
    String::from_utf8_lossy(&report).trim_end().to_owned()
}

/// dockerd's answer to a detached exec that could not start: the runtime's refusal
/// (`OCI runtime exec failed: ...`) is a 400, any other (a user the image lacks) a 500.
fn start_error(message: String) -> ApiError {
    if message.starts_with("OCI runtime exec failed") {
        ApiError::bad_parameter(message)
    } else {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

fn io_error(err: std::io::Error) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
}

fn exit_code(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s))
}

fn finish(daemon: &Shared, id: &str, status: Option<i32>) {
    update(daemon, id, |r| {
        r.running = false;
        r.exit_code = Some(status.unwrap_or(126));
        r.master = None;
    });
}

/// Without a tty: the child's stdout and stderr to the client as `stdcopy` frames, the
/// client's bytes to its stdin (closed when the client closes its side); then its status.
async fn pipe_streams<C>(client: C, child: &mut tokio::process::Child) -> Option<i32>
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let mut stdout = child.stdout.take()?;
    let mut stderr = child.stderr.take()?;
    let mut stdin = child.stdin.take();
    let (mut out_buf, mut err_buf, mut in_buf) =
        (vec![0u8; 32768], vec![0u8; 32768], vec![0u8; 32768]);
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        tokio::select! {
            n = stdout.read(&mut out_buf), if out_open => match n {
                Ok(0) | Err(_) => out_open = false,
                Ok(n) => {
                    let _ = client_w.write_all(&super::containers::frame(1, &out_buf[..n])).await;
                }
            },
            n = stderr.read(&mut err_buf), if err_open => match n {
                Ok(0) | Err(_) => err_open = false,
                Ok(n) => {
                    let _ = client_w.write_all(&super::containers::frame(2, &err_buf[..n])).await;
                }
            },
            n = client_r.read(&mut in_buf), if stdin.is_some() => match n {
                Ok(0) | Err(_) => stdin = None,
                Ok(n) => {
                    if let Some(pipe) = stdin.as_mut()
                        && pipe.write_all(&in_buf[..n]).await.is_err()
                    {
                        stdin = None;
                    }
                }
            },
        }
    }
    drop(stdin);
    let status = child.wait().await.ok().and_then(|s| exit_code(&s));
    let _ = client_w.shutdown().await;
    status
}

/// With a tty: the pty master's output to the client as it is, the client's bytes to the
/// master; then the child's status.
async fn pipe_terminal<C>(
    client: C,
    master: Arc<OwnedFd>,
    child: &mut tokio::process::Child,
) -> Option<i32>
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let reader = std::fs::File::from(master.try_clone().ok()?);
    let mut writer = tokio::fs::File::from_std(std::fs::File::from(master.try_clone().ok()?));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    // A pty master reads block: a thread of the blocking pool reads it (EIO once the child
    // and everything it started closed the terminal).
    tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let mut buf = vec![0u8; 32768];
        while let Ok(n) = std::io::Read::read(&mut reader, &mut buf) {
            if n == 0 || tx.blocking_send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut in_buf = vec![0u8; 32768];
    let mut input_open = true;
    loop {
        tokio::select! {
            chunk = rx.recv() => match chunk {
                Some(bytes) => {
                    let _ = client_w.write_all(&bytes).await;
                }
                None => break,
            },
            n = client_r.read(&mut in_buf), if input_open => match n {
                Ok(0) | Err(_) => input_open = false,
                Ok(n) => {
                    let _ = writer.write_all(&in_buf[..n]).await;
                    let _ = writer.flush().await;
                }
            },
        }
    }
    let status = child.wait().await.ok().and_then(|s| exit_code(&s));
    let _ = client_w.shutdown().await;
    drop(master);
    status
}

/// `POST /exec/ID/resize?h=ROWS&w=COLS`: the size of the exec's terminal.
fn resize(daemon: &Shared, id: &str, query: &Query) -> ApiResult<Response<Body>> {
    let rows = query.int("h")?.unwrap_or(0).clamp(0, i64::from(u16::MAX)) as u16;
    let cols = query.int("w")?.unwrap_or(0).clamp(0, i64::from(u16::MAX)) as u16;
    let exec = record(daemon, id)?;
    if let Some(master) = &exec.master {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize struct.
        unsafe {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size);
        }
    }
    Ok(empty(StatusCode::OK))
}

/// `GET /exec/ID/json`: whether it runs, and its exit code once it exited.
fn inspect(daemon: &Shared, id: &str) -> ApiResult<Response<Body>> {
    let exec = record(daemon, id)?;
    let config = &exec.config;
    let cmd = config.cmd.clone().unwrap_or_default();
    Ok(json(
        StatusCode::OK,
        &object!({
            "ID": exec.id,
            "Running": exec.running,
            "ExitCode": exec.exit_code,
            "ProcessConfig": {
                "tty": config.tty,
                "entrypoint": cmd.first(),
                "arguments": cmd.get(1..).unwrap_or_default(),
                "privileged": false,
                "user": config.user.clone().unwrap_or_default(),
            },
            "OpenStdin": config.attach_stdin,
            "OpenStderr": config.attach_stderr,
            "OpenStdout": config.attach_stdout,
            "CanRemove": false,
            "ContainerID": exec.container,
            "DetachKeys": "",
            "Pid": exec.pid,
        }),
    ))
}
