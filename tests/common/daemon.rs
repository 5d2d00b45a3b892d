//! `minidock daemon` on a temporary socket, over a temp state root with busybox imported
//! ([`super::root::BusyboxRoot`]), and the real docker CLI pointed at it (`DOCKER_HOST`).
//! Dropping it stops the daemon (SIGTERM, then SIGKILL), removes every container and fails the
//! test if anything of theirs is left ([`super::leftovers`]).

use super::root::BusyboxRoot;
use super::text;
use assert_cmd::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    /// Declared first: stopped before the root's containers are removed.
    daemon: Option<Child>,
    socket: PathBuf,
    /// More `minidock daemon` flags (`-H tcp://...`, `--tlsverify`, ...).
    extra: Vec<String>,
    pub root: BusyboxRoot,
}

/// Skip unless root, busybox and overlayfs, and the docker CLI; under CI, fail.
pub fn require_daemon_prerequisites() -> bool {
    super::require_busybox_overlay()
        && super::prerequisite(
            super::dockerd::have("docker"),
            "the docker CLI is missing (apt-get install docker.io)",
        )
}

impl Daemon {
    /// A daemon on `ROOT/../NAME.sock` serving a fresh busybox root; `None` when the
    /// prerequisites are missing (outside CI).
    pub fn start(prefix: &str) -> Option<Daemon> {
        Daemon::start_with(prefix, &[])
    }

    /// [`Daemon::start`] with more `minidock daemon` flags.
    pub fn start_with(prefix: &str, extra: &[&str]) -> Option<Daemon> {
        if !require_daemon_prerequisites() {
            return None;
        }
        let root = BusyboxRoot::new(prefix)?;
        let socket = root.path().join("docker.sock");
        let mut daemon = Daemon {
            daemon: None,
            socket,
            extra: extra.iter().map(|a| a.to_string()).collect(),
            root,
        };
        daemon.spawn();
        Some(daemon)
    }

    /// Starts the daemon process and waits until its socket answers `_ping`.
    pub fn spawn(&mut self) {
        let child = self
            .root
            .cmd()
            .args(["daemon", "-H"])
            .arg(format!("unix://{}", self.socket.display()))
            // The daemon's own registry credentials: none (clients send theirs).
            .env("MINIDOCK_CONFIG", self.root.path().join("daemon-config"))
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            assert!(Instant::now() < deadline, "the daemon never listened");
            if let Some(status) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("the daemon exited: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the daemon (SIGTERM) and waits for it; its stderr.
    pub fn stop(&mut self) -> String {
        let Some(mut child) = self.daemon.take() else {
            return String::new();
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.wait();
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
        }
        err
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The daemon's pid (it must be running).
    pub fn pid(&self) -> u32 {
        self.daemon.as_ref().expect("the daemon runs").id()
    }

    /// The system calls naming a file whose path contains `needle` that the daemon's threads
    /// made during `window`, as strace(1) saw them (one line each); `None` without strace
    /// (outside CI).
    pub fn file_syscalls(&self, needle: &str, window: Duration) -> Option<Vec<String>> {
        if !super::prerequisite(
            super::dockerd::have("strace"),
            "strace is missing (apt-get install strace)",
        ) {
            return None;
        }
        let log = self.root.path().join("daemon.strace");
        let mut strace = Command::new("strace")
            .args(["-f", "-qq", "-e", "trace=%file", "-o"])
            .arg(&log)
            .arg("-p")
            .arg(self.pid().to_string())
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(window);
        let pid = nix::unistd::Pid::from_raw(strace.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
        strace.wait().unwrap();
        let seen = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        Some(
            seen.lines()
                .filter(|line| line.contains(needle))
                .map(str::to_owned)
                .collect(),
        )
    }

    /// `docker` with `DOCKER_HOST` on the daemon's socket, stdin on /dev/null.
    pub fn docker_command(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", self.root.path().join("docker-config"))
            .stdin(Stdio::null());
        cmd
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_command().args(args).output().unwrap()
    }

    /// `docker ARGS` with `input` on its stdin (`login --password-stdin`, `build -`).
    pub fn docker_stdin(&self, args: &[&str], input: &str) -> Output {
        crate::common::output_with_stdin(self.docker_command().args(args), input.as_bytes())
    }

    /// `docker ARGS`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        super::ok_stdout(args, &self.docker(args))
    }

    /// `docker ARGS`, which must exit `code`; its stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.docker(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "docker {args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stderr)
    }

    /// `minidock --root ROOT ARGS`, which must succeed; its stdout.
    pub fn minidock(&self, args: &[&str]) -> String {
        self.root.ok(args)
    }

    /// `curl --unix-socket SOCKET ARGS` (`curl` must be on PATH), with the response
    /// headers (`-i`); its output.
    pub fn curl(&self, args: &[&str]) -> String {
        let out = Command::new("curl")
            .arg("-sS")
            .arg("--unix-socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "curl {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    /// `minidock daemon ARGS` run to its end (it must fail): its output.
    pub fn daemon_fails(&self, args: &[&str]) -> Output {
        let mut cmd = Command::cargo_bin("minidock").unwrap();
        cmd.arg("--root")
            .arg(self.root.path())
            .arg("daemon")
            .args(args)
            .stdin(Stdio::null());
        cmd.output().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An HTTP/1.1 request on the daemon's socket whose response head has come: the stream, for
/// the rest of the response, and the head (`HTTP/1.1 200 OK\r\n...`).
pub fn request_head(
    socket: &Path,
    method: &str,
    path: &str,
) -> (std::os::unix::net::UnixStream, String) {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    (stream, text(&head))
}
