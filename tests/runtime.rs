//! `minidock runtime`: the OCI runtime, checked against runc on the same bundle.

#[path = "common/bundle.rs"]
mod bundle;
mod common;

use assert_cmd::prelude::*;
use bundle::{
    Bundle, Root, minidock, require_peers, run_minidock, run_runc, state_root, unique_id,
};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// What a process can see of its confinement: hostname, ids, its mounts (point and type),
/// capabilities, no_new_privs, seccomp mode, the root directory, and rlimits.
const INSPECT: &str = "hostname; id; ls /; \
    awk '{print $5, $9}' /proc/self/mountinfo | sort; \
    grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status; \
    ulimit -n; cat /proc/kcore | wc -c; touch /proc/sys/x 2>&1 | sed 's/.*: //'; \
    exit 3";

#[test]
fn runs_the_runc_spec_bundle_exactly_as_runc_does() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["sh", "-c", INSPECT]);
    let ours = run_minidock(&bundle);
    let theirs = run_runc(&bundle);
    let text = |o: &Output| String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        text(&ours),
        text(&theirs),
        "stdout differs from runc's (layout {})\nminidock stderr: {}",
        common::cgroup_layout_name(),
        String::from_utf8_lossy(&ours.stderr)
    );
    assert_eq!(ours.status.code(), Some(3));
    assert_eq!(theirs.status.code(), Some(3));
}

#[test]
fn memory_limits_are_enforced_like_runc() {
    if !require_peers() {
        return;
    }
    // A 32 MiB limit; the shell reads 64 MiB into memory and is OOM-killed: 137.
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived",
    ]);
    bundle.edit(|c| {
        c["linux"]["resources"]["memory"] =
            serde_json::json!({"limit": 33554432, "swap": 33554432});
    });
    let ours = run_minidock(&bundle);
    let theirs = run_runc(&bundle);
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "runc: {:?}",
        theirs
    );
    assert_eq!(
        ours.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&ours.stderr)
    );
}

#[test]
fn create_start_state_delete() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["sh", "-c", "echo started > /tmp/started; sleep 30"]);
    bundle.edit(|c| c["root"]["readonly"] = false.into());
    let root = state_root();
    let id = unique_id("life");
    // The container inherits create's stdio, as with runc: give it /dev/null, or reading
    // create's output would wait for the container to exit.
    let status = minidock(&root)
        .args(["runtime", "create", "--bundle"])
        .arg(bundle.path())
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let state = |root: &Root| -> serde_json::Value {
        let out = minidock(root)
            .args(["runtime", "state", &id])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let created = state(&root);
    assert_eq!(created["status"], "created");
    assert_eq!(created["id"], id.as_str());
    let pid = created["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert!(
        !bundle.path().join("rootfs/tmp/started").exists(),
        "it ran before start"
    );
    minidock(&root)
        .args(["runtime", "start", &id])
        .assert()
        .success();
    assert_eq!(state(&root)["status"], "running");
    // Deleting a running container needs --force.
    minidock(&root)
        .args(["runtime", "delete", &id])
        .assert()
        .failure();
    minidock(&root)
        .args(["runtime", "kill", &id, "KILL"])
        .assert()
        .success();
    for _ in 0..200 {
        if state(&root)["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(state(&root)["status"], "stopped");
    minidock(&root)
        .args(["runtime", "delete", &id])
        .assert()
        .success();
    minidock(&root)
        .args(["runtime", "state", &id])
        .assert()
        .code(1);
    assert!(
        std::fs::read_dir("/sys/fs/cgroup/pids/minidock")
            .into_iter()
            .flatten()
            .all(|e| e.unwrap().file_name().to_string_lossy() != id),
        "the cgroup was left behind"
    );
}

#[test]
fn errors_inside_the_child_reach_the_user() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["/no/such/program"]);
    let out = run_minidock(&bundle);
    // runc's status for every failure of its own, this one included.
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/no/such/program"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn a_malformed_config_names_the_field() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["true"]);
    bundle.edit(|c| c["process"]["args"] = "true".into());
    let out = run_minidock(&bundle);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("config.json: process.args: invalid type"),
        "{stderr}"
    );
}

#[test]
fn a_symlinked_proc_in_the_image_is_refused() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["true"]);
    let proc_dir = bundle.path().join("rootfs/proc");
    std::fs::remove_dir(&proc_dir).unwrap();
    std::os::unix::fs::symlink("/etc", &proc_dir).unwrap();
    let out = run_minidock(&bundle);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to mount proc on /proc: it is a symlink"),
        "{stderr}"
    );
    assert!(common::mounts_containing(bundle.path().to_str().unwrap()).is_empty());
}

#[test]
fn no_file_descriptor_of_the_caller_leaks_inside() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["ls", "/proc/self/fd"]);
    let root = state_root();
    // An fd opened without O_CLOEXEC, as a careless caller would leave it.
    let leaked: PathBuf = std::env::temp_dir();
    let fd = nix::fcntl::open(
        &leaked,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let fd_number = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let mut cmd = minidock(&root);
    cmd.args(["runtime", "run", "--bundle"])
        .arg(bundle.path())
        .arg(unique_id("fd"));
    // SAFETY: only clears FD_CLOEXEC on an fd we own, in the forked child before exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::fcntl(fd_number, libc::F_SETFD, 0);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fds: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    // 0, 1, 2, and the directory ls itself opened.
    assert!(
        !fds.contains(&fd_number.to_string()) || fd_number <= 3,
        "fd {fd_number} leaked: {fds:?}"
    );
    assert!(fds.len() <= 4, "{fds:?}");
}

#[test]
fn a_terminal_is_made_inside_the_container() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "tty; test -t 0 && echo stdin-is-a-tty; read line; echo got:$line",
    ]);
    bundle.edit(|c| c["process"]["terminal"] = true.into());
    let root = state_root();
    let mut child = minidock(&root)
        .args(["runtime", "run", "--bundle"])
        .arg(bundle.path())
        .arg(unique_id("tty"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{text}");
    // The pty comes from the container's own devpts instance: its first pty. The terminal
    // echoes "hello" whenever it arrives, which may be between `tty`'s name and its newline.
    let number: String = text
        .split("/dev/pts/")
        .nth(1)
        .unwrap_or_default()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(number, "0", "{text}");
    assert!(text.contains("stdin-is-a-tty\n"), "{text}");
    assert!(text.contains("got:hello\n"), "{text}");
}

#[test]
fn the_runtime_binary_is_out_of_reach_of_the_container() {
    if !require_peers() {
        return;
    }
    // A created container is still the minidock binary, waiting before execve: the moment a
    // CVE-2019-5736 attack would use to open /proc/PID/exe and overwrite the runtime.
    let bundle = Bundle::new(&["true"]);
    let root = state_root();
    let id = unique_id("exe");
    let status = minidock(&root)
        .args(["runtime", "create", "--bundle"])
        .arg(bundle.path())
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let out = minidock(&root)
        .args(["runtime", "state", &id])
        .output()
        .unwrap();
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    // Root without CAP_SYS_PTRACE (as in a container with Docker's default capabilities).
    let probe = |target: i64| -> bool {
        let out = Command::new("sh")
            .args(["-c", &format!("exec 3</proc/{target}/exe && echo opened")])
            .env("PATH", "/usr/bin:/bin")
            .pre_exec_drop_ptrace()
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("opened")
    };
    // The control: an ordinary process with the same capabilities as the probe. (The kernel
    // also refuses a caller whose capabilities are not a superset of the target's, so the
    // control must not hold CAP_SYS_PTRACE either.)
    let ordinary = Command::new("sleep")
        .arg("30")
        .pre_exec_drop_ptrace()
        .spawn()
        .unwrap();
    let control = probe(ordinary.id() as i64);
    let reached = probe(pid);
    let mut ordinary = ordinary;
    let _ = ordinary.kill();
    let _ = ordinary.wait();
    minidock(&root)
        .args(["runtime", "delete", "--force", &id])
        .assert()
        .success();
    assert!(
        control,
        "the probe could not open an ordinary process's exe: it proves nothing"
    );
    assert!(
        !reached,
        "/proc/{pid}/exe of the waiting runtime was reachable"
    );
}

trait DropPtrace {
    fn pre_exec_drop_ptrace(&mut self) -> &mut Self;
}

impl DropPtrace for Command {
    fn pre_exec_drop_ptrace(&mut self) -> &mut Self {
        // SAFETY: only prctl/capset-free calls in the forked child before exec.
        unsafe {
            self.pre_exec(|| {
                if libc::prctl(libc::PR_CAPBSET_DROP, 19 /* CAP_SYS_PTRACE */, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        }
    }
}

#[test]
fn devices_and_poststart_hooks_from_the_spec() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "stat -c '%F %t:%T %a %u:%g' /dev/minidock-null /dev/fifo0",
    ]);
    let hook_out = bundle.path().join("hook-state.json");
    bundle.edit(|c| {
        c["linux"]["devices"] = serde_json::json!([
            {"path": "/dev/minidock-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 7, "gid": 8},
            {"path": "/dev/fifo0", "type": "p", "major": 0, "minor": 0, "fileMode": 0o600}
        ]);
        // The spec passes the container's state on the hook's stdin.
        c["hooks"] = serde_json::json!({"poststart": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {}", hook_out.display())]
        }]});
    });
    let out = run_minidock(&bundle);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "character special file 1:3 640 7:8\nfifo 0:0 600 0:0\n"
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&hook_out).unwrap()).unwrap();
    assert_eq!(state["status"], "running");
    assert!(state["pid"].as_i64().unwrap() > 0);
    assert_eq!(state["bundle"], bundle.path().to_str().unwrap());
}
