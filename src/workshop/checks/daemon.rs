//! The check for the daemon client lesson (19): a program that asks `minidock daemon` for
//! `GET /containers/json` over its unix socket and prints what `docker ps -a` prints.
//!
//! The checker makes a temp state root with busybox imported and two containers created in it,
//! starts `minidock daemon` on a temp socket, runs the learner's program with the socket's
//! path, and compares its lines with what the real docker CLI prints for the same daemon
//! (`DOCKER_HOST=unix://SOCKET docker ps -a --no-trunc --format '{{.ID}} {{.Names}}'`).
//! The program runs under strace(1) ([`Trace`]): the connection to the socket counts only when
//! the learner's own program made it, not the docker CLI or curl(1) it ran.

use super::bundle::{busybox_rootfs, minidock};
use super::{Need, Trace};
use crate::workshop::Observation;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);
const NAMES: [&str; 2] = ["lesson19-web", "lesson19-db"];
const FORMAT: &str = "{{.ID}} {{.Names}}";
const WHAT_COUNT: &str = "how many containers the program printed";
const WHAT_LINES: &str = "its lines, against docker ps -a --no-trunc --format '{{.ID}} {{.Names}}'";

/// The misunderstanding behind a list of running containers only.
const RUNNING_ONLY: &str = "the daemon lists only running containers unless the query asks for all=1 (what docker ps -a sends)";
/// The misunderstanding behind names printed with their leading '/'.
const LEADING_SLASH: &str = "the API keeps a leading '/' on every name (\"/web\"): docker ps prints the names without it, joined by ','";

/// A temp state root with its `minidock daemon`: dropping it stops the daemon (SIGTERM,
/// then SIGKILL) and removes the containers; the temp dir goes last.
struct Lab {
    daemon: Option<Child>,
    root: tempfile::TempDir,
}

impl Lab {
    fn minidock(&self) -> Result<Command> {
        let mut cmd = Command::new(minidock()?);
        cmd.arg("--root")
            .arg(self.root.path())
            .env("MINIDOCK_BRIDGE", "none")
            .env("MINIDOCK_CONFIG", self.root.path().join("daemon-config"))
            .stdin(Stdio::null());
        Ok(cmd)
    }

    fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.minidock()?.args(args).output()?;
        anyhow::ensure!(
            out.status.success(),
            "minidock {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn socket(&self) -> PathBuf {
        self.root.path().join("docker.sock")
    }

    /// Busybox imported, the two containers created, the daemon listening.
    fn start() -> Result<Lab> {
        let root = tempfile::Builder::new()
            .prefix("minidock-workshop-daemon")
            .tempdir()
            .context("creating a temp state root")?;
        let mut lab = Lab { daemon: None, root };
        let rootfs = lab.root.path().join("rootfs");
        busybox_rootfs(&rootfs)?;
        let tar = lab.root.path().join("busybox.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .context("running tar")?;
        anyhow::ensure!(status.success(), "tar of the busybox rootfs failed");
        lab.ok(&["import", &tar.to_string_lossy(), "busybox"])?;
        for name in NAMES {
            lab.ok(&["create", "--name", name, "busybox", "true"])?;
        }
        let child = lab
            .minidock()?
            .arg("daemon")
            .arg("-H")
            .arg(format!("unix://{}", lab.socket().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting minidock daemon")?;
        lab.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(lab.socket()).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "minidock daemon never listened on {}",
                    lab.socket().display()
                );
            }
            if let Some(status) = lab
                .daemon
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("minidock daemon exited: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(lab)
    }

    /// What the real docker CLI prints for this daemon.
    fn docker_ps(&self) -> Result<String> {
        let out = Command::new("docker")
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.root.path().join("docker-config"))
            .args(["ps", "-a", "--no-trunc", "--format", FORMAT])
            .stdin(Stdio::null())
            .output()
            .context("running the docker CLI (apt-get install docker.io)")?;
        anyhow::ensure!(
            out.status.success(),
            "docker ps failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for name in NAMES {
            if let Ok(mut cmd) = self.minidock() {
                let _ = cmd.args(["rm", "-f", name]).output();
            }
        }
    }
}

pub fn lesson19_daemon_client(bin: &Path) -> Result<Vec<Observation>> {
    super::require_root()?;
    let lab = Lab::start()?;
    let trace = Trace::new(bin, None)?;
    let socket = lab.socket();
    let output = super::run_captured(trace.command().arg(&socket), LIMIT)?;
    let connected = trace.observe(&[Need::Connect(&socket.to_string_lossy())]);
    let expected = lab.docker_ps()?;
    drop(lab);
    if let Some(failed) =
        super::failed_run("the program asks SOCKET for GET /containers/json", &output)
    {
        return Ok(vec![connected, failed.likely(failure_likely(&output))]);
    }
    let mut observations = vec![connected];
    observations.extend(compare(&expected, &String::from_utf8_lossy(&output.stdout)));
    Ok(observations)
}

/// The program's lines against the docker CLI's, with what most likely differs.
fn compare(expected: &str, actual: &str) -> Vec<Observation> {
    let want: Vec<&str> = expected.lines().map(str::trim).collect();
    let got: Vec<&str> = actual
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let slash = got.iter().any(|l| {
        l.split(' ')
            .nth(1)
            .is_some_and(|n| n.starts_with('/') || n.contains(",/"))
    });
    let lines = if slash {
        LEADING_SLASH
    } else if got.len() < want.len() {
        RUNNING_ONLY
    } else {
        "each line is the container's full Id, a space, and its Names without the leading '/', joined by ',' (docker ps's order, the API's)"
    };
    vec![
        Observation::equal(WHAT_COUNT, want.len().to_string(), got.len().to_string())
            .likely(RUNNING_ONLY),
        Observation::equal(WHAT_LINES, want.join(" | "), got.join(" | ")).likely(lines),
    ]
}

/// What a program that failed most likely got wrong, from its error.
fn failure_likely(output: &Output) -> &'static str {
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("connecting") || stderr.contains("Connection refused") {
        "the program did not reach the daemon: connect to the unix socket whose path is the first argument (a path, not unix://PATH)"
    } else if stderr.contains("answered") {
        "the daemon refused the request: an HTTP/1.1 request is a request line (GET PATH HTTP/1.1), a Host header, and an empty line, each line ended by CRLF"
    } else if stderr.contains("end of headers") {
        "the response was cut short: read until the daemon closes the connection (Connection: close), not a single read"
    } else {
        "the program failed before it printed the list: its error is on the line above"
    }
}
