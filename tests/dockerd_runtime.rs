//! minidock as a drop-in for runc under containerd: Debian's `dockerd` (which starts its own
//! `containerd`, which starts `containerd-shim-runc-v2` per container) is configured with
//! minidock as an extra runtime, and the docker CLI runs containers with it. The shim then
//! calls minidock with runc's command line (`--root`, `--log`, `--log-format json`,
//! `create --bundle --pid-file [--console-socket]`, `start`, `state`, `kill`, `delete`,
//! `exec --process --detach --pid-file`).
//!
//! The runtime is named to dockerd by path: a symlink `minidock-runc` to the `minidock`
//! binary, which behaves as `minidock runtime` under that name (no wrapper script).
//!
//! dockerd runs inside a private network namespace (only loopback, `--bridge=none`,
//! `--iptables=false`) and a private mount namespace with a tmpfs on /run, with its data
//! root, exec root, pid file and socket in a temp dir; containers use `--network none`.
//! Every step is done with `--runtime=runc` first, to prove the harness, then with
//! `--runtime=minidock`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn have(program: &str) -> bool {
    minidock::doctor::which(program).is_some()
}

fn require_docker() -> bool {
    common::require_root()
        && [
            "dockerd",
            "containerd",
            "containerd-shim-runc-v2",
            "docker",
            "runc",
            "unshare",
            "ip",
        ]
        .iter()
        .all(|p| {
            common::prerequisite(
                have(p),
                &format!("{p} is missing (apt-get install docker.io)"),
            )
        })
}

/// A private dockerd. Dropping it removes every container, stops dockerd (which stops its
/// containerd), kills any shim left, removes its cgroup parent and its directory.
struct Dockerd {
    dir: tempfile::TempDir,
    daemon: Option<Child>,
    cgroup_parent: String,
}

impl Dockerd {
    fn start() -> Dockerd {
        let dir = tempfile::Builder::new()
            .prefix("minidock-dockerd")
            .tempdir()
            .unwrap();
        let runtime = dir.path().join(minidock::runtime::cli::RUNC_NAME);
        let binary = assert_cmd::cargo::cargo_bin("minidock");
        std::os::unix::fs::symlink(&binary, &runtime).unwrap();
        let config = serde_json::json!({"runtimes": {"minidock": {"path": runtime}}});
        std::fs::write(dir.path().join("daemon.json"), config.to_string()).unwrap();
        let cgroup_parent = format!("minidock-dockerd-test-{}", std::process::id());
        let d = dir.path().display();
        let script = format!(
            "ip link set lo up && mount -t tmpfs -o mode=0755 tmpfs /run && \
             exec dockerd --config-file {d}/daemon.json --data-root {d}/data \
             --exec-root {d}/exec --pidfile {d}/dockerd.pid -H unix://{d}/docker.sock \
             --bridge=none --iptables=false --ip6tables=false --userland-proxy=false \
             --storage-driver overlay2 --cgroup-parent {cgroup_parent} \
             > {d}/dockerd.log 2>&1"
        );
        let daemon = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut dockerd = Dockerd {
            dir,
            daemon: Some(daemon),
            cgroup_parent,
        };
        dockerd.wait_ready();
        dockerd
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("dockerd.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        for _ in 0..600 {
            if let Some(status) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("dockerd exited with {status}:\n{}", self.log());
            }
            if self.docker(&["version"]).status.success() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("dockerd never answered:\n{}", self.log());
    }

    fn docker_command(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.arg("-H")
            .arg(format!("unix://{}/docker.sock", self.path().display()))
            .stdin(Stdio::null());
        cmd
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.docker_command().args(args).output().unwrap()
    }

    /// `docker ARGS`, which must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}\n{}\ndockerd log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Where containerd's shim keeps the runtime's state (its `--root`).
    fn runtime_root(&self) -> PathBuf {
        self.path().join("exec/runtime-runc/moby")
    }

    fn load_busybox(&self) {
        let rootfs = common::busybox_rootfs();
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(rootfs.path())
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = self
            .docker_command()
            .args(["import", "-", "busybox:latest"])
            .stdin(tar.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(
            tar.wait().unwrap().success(),
            "tar of the busybox rootfs failed"
        );
        assert!(out.status.success(), "docker import: {out:?}");
    }

    /// Kills what is left of this daemon's processes: they all name our temp dir.
    fn kill_leftovers(&self) {
        let needle = self.path().to_string_lossy().into_owned();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let ids = String::from_utf8_lossy(&self.docker(&["ps", "-aq"]).stdout).into_owned();
        for id in ids.lines() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        if let Some(mut daemon) = self.daemon.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(daemon.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = daemon.wait();
        }
        self.kill_leftovers();
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(hierarchy.path().join(&self.cgroup_parent));
        }
    }
}

/// Runs every check with `runtime`.
fn check_runtime(docker: &Dockerd, runtime: &str) {
    let flag = format!("--runtime={runtime}");
    let base = ["run", flag.as_str(), "--network", "none"];

    // docker run --rm: create, start, wait, delete.
    let hi = docker.ok(&[&base[..], &["--rm", "busybox", "echo", "hi"]].concat());
    assert_eq!(hi, "hi\n", "{runtime}");

    // stdin reaches the container through the pipes the shim gives the runtime.
    let mut cat = docker
        .docker_command()
        .args([&base[..], &["--rm", "-i", "busybox", "cat"]].concat())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut cat.stdin.take().unwrap(), b"through stdin\n").unwrap();
    let out = cat.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "through stdin\n",
        "{runtime}"
    );

    // A failure inside the runtime reaches the user through the shim's reading of --log:
    // docker turns "no such file or directory" into status 127.
    let missing = docker.docker(&[&base[..], &["--rm", "busybox", "/no/such/program"]].concat());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(127), "{runtime}: {stderr}");
    assert!(stderr.contains("/no/such/program"), "{runtime}: {stderr}");

    // A detached container: it handles SIGTERM with status 7.
    let script = "trap 'exit 7' TERM; sleep 1000 & wait";
    let id = docker
        .ok(&[&base[..], &["-d", "busybox", "sh", "-c", script]].concat())
        .trim()
        .to_owned();
    let pid = docker.ok(&["inspect", "-f", "{{.State.Pid}}", &id]);
    let pid = pid.trim();
    // The runtime really is the one asked for: minidock can read only its own state.
    let state = Command::new(assert_cmd::cargo::cargo_bin("minidock"))
        .args(["runtime", "--root"])
        .arg(docker.runtime_root())
        .args(["state", &id])
        .output()
        .unwrap();
    assert_eq!(state.status.success(), runtime == "minidock", "{state:?}");
    if runtime == "minidock" {
        let state: serde_json::Value = serde_json::from_slice(&state.stdout).unwrap();
        assert_eq!(state["status"], "running");
        assert_eq!(state["pid"].to_string(), pid);
    }

    // docker exec: same namespaces as the container's first process, and its exit status.
    let ns = docker.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt",
    ]);
    let expected: String = ["pid", "mnt"]
        .iter()
        .map(|n| {
            format!(
                "{}\n",
                std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
                    .unwrap()
                    .display()
            )
        })
        .collect();
    assert_eq!(ns, expected, "{runtime}");
    let failed = docker.docker(&["exec", &id, "sh", "-c", "exit 3"]);
    assert_eq!(failed.status.code(), Some(3), "{runtime}: {failed:?}");
    let tty = docker.ok(&["exec", "-t", &id, "tty"]);
    assert_eq!(tty.trim_end(), "/dev/pts/0", "{runtime}");

    // docker stop: SIGTERM reaches the trap well within the grace period (SIGKILL: 137).
    docker.ok(&["stop", "-t", "60", &id]);
    let code = docker.ok(&["inspect", "-f", "{{.State.ExitCode}}", &id]);
    assert_eq!(code.trim(), "7", "{runtime}");
    docker.ok(&["rm", &id]);

    // A terminal made in the container's own devpts.
    let tty = docker.ok(&[&base[..], &["--rm", "-t", "busybox", "tty"]].concat());
    assert_eq!(tty.trim_end(), "/dev/pts/0", "{runtime}");
}

#[test]
fn dockerd_runs_containers_with_minidock_as_its_runtime() {
    if !require_docker() {
        return;
    }
    let docker = Dockerd::start();
    docker.load_busybox();
    check_runtime(&docker, "runc");
    check_runtime(&docker, "minidock");
    let left: Vec<_> = std::fs::read_dir(docker.runtime_root())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        // minidock's compiled seccomp filters, cached by hash: not a container's.
        .filter(|name| name != ".seccomp-cache")
        .collect();
    assert!(left.is_empty(), "container state left behind: {left:?}");
}
