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

use common::dockerd::{Dockerd, require_docker};
use std::process::{Command, Stdio};

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
