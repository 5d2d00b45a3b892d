//! `minidock`'s command line against Docker's: exit codes (125 for a bad flag or a failed
//! `run`, 126 and 127 for a command that cannot run, 1 for a wrong number of arguments, an
//! unknown command and every other failed request), flag values that start with `-`, the
//! daemon's checks of `--cpus` and `-m`, and signals: every name and number Docker accepts,
//! the real-time ones included, in `kill -s`, `stop -s`, the image's STOPSIGNAL and
//! `runtime kill`; `kill` returns once a SIGKILLed container is recorded as exited.
//!
//! The parse-level cases are also run through the installed docker CLI (pointed at a socket
//! that does not exist, so it never reaches a daemon) to compare exit codes and messages.

mod common;

use assert_cmd::prelude::*;
use common::{require_busybox_overlay, text};
use std::process::{Command, Output, Stdio};

/// A state root, with the `busybox` image imported when containers are needed.
struct Env {
    root: tempfile::TempDir,
    finished: bool,
}

impl Env {
    fn bare() -> Env {
        Env {
            root: tempfile::Builder::new()
                .prefix("minidock-compat")
                .tempdir()
                .unwrap(),
            finished: false,
        }
    }

    fn with_busybox() -> Option<Env> {
        if !require_busybox_overlay() {
            return None;
        }
        let env = Env::bare();
        env.import("busybox", &[]);
        Some(env)
    }

    /// Imports a busybox rootfs as image `name`, with `import -c` changes.
    fn import(&self, name: &str, changes: &[&str]) {
        let rootfs = tempfile::Builder::new()
            .prefix("minidock-compat-rootfs")
            .tempdir()
            .unwrap();
        common::build_busybox_rootfs(rootfs.path());
        let tar = rootfs.path().with_extension("tar");
        common::tar_dir(rootfs.path(), &tar);
        let mut args = vec!["import"];
        for change in changes {
            args.extend(["-c", change]);
        }
        args.extend([tar.to_str().unwrap(), name]);
        self.ok(&args);
        std::fs::remove_file(&tar).unwrap();
    }

    fn output(&self, args: &[&str]) -> Output {
        Command::cargo_bin("minidock")
            .unwrap()
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        common::ok_stdout(args, &self.output(args))
    }

    /// Runs and asserts the exit code; returns stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.output(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "minidock {args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stderr)
    }

    fn inspect(&self, container: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, container])
            .trim_end()
            .to_owned()
    }

    fn detach(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        self.ok(&all).trim().to_owned()
    }

    /// Removes every container, then checks that no mount is left under the root.
    fn finish(mut self) {
        self.finished = true;
        for id in self.ok(&["ps", "-aq", "--no-trunc"]).lines() {
            self.ok(&["rm", "-f", id]);
        }
        let mounts = common::mounts_containing(&self.root.path().display().to_string());
        assert!(mounts.is_empty(), "leftover mounts: {mounts:?}");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if !self.finished {
            let out = self.output(&["ps", "-aq", "--no-trunc"]);
            for id in text(&out.stdout).lines() {
                let _ = self.output(&["rm", "-f", id]);
            }
        }
    }
}

/// The CPUs this process may use, as Docker counts them (sched_getaffinity, as `nproc`).
fn cpus() -> String {
    let out = Command::new("nproc").output().unwrap();
    text(&out.stdout).trim().to_owned()
}

/// Command lines that fail (or succeed) before any container or image is touched, with the
/// exit status Docker's CLI gives them.
const PARSE_CASES: &[(&[&str], i32)] = &[
    (&["run", "-m", "-5", "busybox", "true"], 125),
    (&["run", "-m=-5", "busybox", "true"], 125),
    (&["run", "--memory", "abc", "busybox", "true"], 125),
    (&["run", "--cpus", "abc", "busybox", "true"], 125),
    (&["run", "--bogus", "busybox"], 125),
    (&["run", "-m"], 125),
    (&["kill", "-s"], 125),
    (&["ps", "--bogus"], 125),
    (&["images", "--bogus"], 125),
    (&["image", "ls", "--bogus"], 125),
    (&["stop", "-t", "abc", "x"], 125),
    (&["--bogus"], 125),
    (&["bogus"], 1),
    (&["image", "bogus"], 1),
    (&["run"], 1),
    (&["rm"], 1),
    (&["tag", "a"], 1),
    (&["logs", "a", "b"], 1),
    (&["ps", "extra"], 1),
    (&[], 0),
    (&["image"], 0),
    (&["run", "--help"], 0),
    (&["--version"], 0),
];

#[test]
fn usage_errors_exit_as_dockers_cli_does() {
    let env = Env::bare();
    for (args, code) in PARSE_CASES {
        env.fails(args, *code);
    }
    // Docker's own words for a value that looks like a flag.
    let err = env.fails(&["run", "-m", "-5", "busybox", "true"], 125);
    assert!(
        err.starts_with(
            "minidock: invalid argument \"-5\" for \"-m, --memory\" flag: invalid size: '-5'\n"
        ),
        "{err}"
    );
    let err = env.fails(&["run", "--bogus", "busybox"], 125);
    assert!(
        err.starts_with("minidock: unknown flag: --bogus\n"),
        "{err}"
    );
    let err = env.fails(&["bogus"], 1);
    assert!(
        err.starts_with("minidock: unknown command: minidock bogus\n"),
        "{err}"
    );
    let err = env.fails(&["run"], 1);
    assert!(
        err.starts_with("minidock: 'minidock run' requires at least 1 argument\n"),
        "{err}"
    );
    // A value is taken whatever it looks like, as pflag takes it.
    let err = env.fails(&["run", "--name", "--rm", "busybox", "true"], 125);
    assert!(err.contains("invalid container name \"--rm\""), "{err}");
}

#[test]
fn the_same_command_lines_give_the_docker_clis_codes() {
    let have_docker = Command::new("docker").arg("--version").output().is_ok();
    if !common::prerequisite(have_docker, "the docker CLI is not installed (docker.io)") {
        return;
    }
    let env = Env::bare();
    for (args, _) in PARSE_CASES {
        let docker = Command::new("docker")
            .args(*args)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env("DOCKER_CONFIG", env.root.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let ours = env.output(args);
        assert_eq!(
            ours.status.code(),
            docker.status.code(),
            "{args:?}: docker said {}",
            text(&docker.stderr)
        );
    }
    let docker = Command::new("docker")
        .args(["run", "-m", "-5", "busybox", "true"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("DOCKER_CONFIG", env.root.path())
        .output()
        .unwrap();
    let theirs = text(&docker.stderr);
    let ours = text(&env.output(&["run", "-m", "-5", "busybox", "true"]).stderr);
    assert_eq!(
        ours.lines().next().unwrap(),
        format!("minidock: {}", theirs.lines().next().unwrap())
    );
}

#[test]
fn the_daemons_checks_of_cpus_and_memory() {
    let env = Env::bare();
    let n = cpus();
    let range = format!(
        "minidock: Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available\n"
    );
    // `run` exits 125; `create` passes on the daemon's refusal, 1.
    assert_eq!(
        env.fails(&["run", "--cpus", "-1", "busybox", "true"], 125),
        range
    );
    assert_eq!(
        env.fails(&["run", "--cpus", "1000", "busybox", "true"], 125),
        range
    );
    assert_eq!(
        env.fails(&["create", "--cpus", "1000", "busybox"], 1),
        range
    );
    assert_eq!(
        env.fails(&["run", "-m", "5", "busybox", "true"], 125),
        "minidock: Minimum memory limit allowed is 6MB\n"
    );
    let err = env.fails(&["run", "--cpus", "0.0000000001", "busybox", "true"], 125);
    assert!(err.contains("value is too precise"), "{err}");
    // A missing image: 125 from run, 1 from create.
    let err = env.fails(&["run", "nosuchimage", "true"], 125);
    assert!(err.contains("no such image"), "{err}");
    env.fails(&["create", "nosuchimage"], 1);
    // runc's verbs keep runc's status.
    env.fails(&["runtime", "kill", "nosuchcontainer", "KILL"], 1);
}

#[test]
fn commands_that_cannot_run_give_126_and_127() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let err = env.fails(&["run", "--rm", "busybox", "nonexistent"], 127);
    assert!(err.contains("executable file not found"), "{err}");
    env.fails(&["run", "--rm", "busybox", "/etc/passwd"], 126);
    let id = env.detach(&["busybox", "sleep", "1000"]);
    env.fails(&["exec", &id, "nonexistent"], 127);
    env.fails(&["exec", &id, "/etc/passwd"], 126);
    env.fails(&["exec", &id, "sh", "-c", "exit 3"], 3);
    env.ok(&["rm", "-f", &id]);
    // A name in use or not a name: the daemon's refusal, 125 from run and 1 from create.
    env.ok(&["create", "--name", "web", "busybox", "true"]);
    let err = env.fails(&["run", "--name", "web", "busybox", "true"], 125);
    assert!(err.contains("already in use"), "{err}");
    env.fails(&["create", "--name", "web", "busybox", "true"], 1);
    env.fails(&["create", "--name", "a/b", "busybox", "true"], 1);
    env.fails(&["run", "--rm", "--name", "a/b", "busybox", "true"], 125);
    // An empty name is no name, as in Docker: a generated one is given.
    env.ok(&["run", "--rm", "--name", "", "busybox", "true"]);
    let id = env.ok(&["create", "--name", "", "busybox", "true"]);
    let name = env.inspect(id.trim(), "{{.Name}}");
    assert!(name.starts_with('/') && name.len() > 2, "{name:?}");
    env.ok(&["rm", id.trim()]);
    let ok = env.output(&["run", "--rm", "--cpus", "1", "-m", "6m", "busybox", "true"]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    env.finish();
}

/// A container whose shell exits 77 when signal 37 (SIGRTMIN+3) arrives; PID 1 of a PID
/// namespace ignores any signal it has no handler for, so the exit code is the proof.
const RT_TRAP: &str = "trap 'exit 77' 37; while true; do sleep 0.1; done";

/// Waits until `pid` has a handler for `signal` (its bit in `SigCgt` of /proc/PID/status):
/// until then the trap is not installed and PID 1 of a namespace would ignore the signal.
fn wait_catches(pid: &str, signal: u32) {
    let bit = 1u64 << (signal - 1);
    for _ in 0..1000 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .map(|mask| u64::from_str_radix(mask.trim(), 16).unwrap())
            .unwrap();
        if caught & bit != 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{pid} never installed a handler for signal {signal}");
}

#[test]
fn kill_takes_every_signal_docker_takes() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    for signal in ["37", "RTMIN+3", "SIGRTMIN+3", "sigrtmin+3"] {
        let id = env.detach(&["busybox", "sh", "-c", RT_TRAP]);
        wait_catches(&env.inspect(&id, "{{.State.Pid}}"), 37);
        assert_eq!(env.ok(&["kill", "-s", signal, &id]), format!("{id}\n"));
        assert_eq!(env.ok(&["wait", &id]), "77\n", "kill -s {signal}");
    }
    let id = env.detach(&["busybox", "sleep", "1000"]);
    let err = env.fails(&["kill", "-s", "RTMIN+16", &id], 1);
    assert_eq!(err, "minidock: invalid signal: \"RTMIN+16\"\n");
    env.finish();
}

#[test]
fn stop_sends_the_images_real_time_stop_signal() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    env.import("rtstop", &["STOPSIGNAL SIGRTMIN+3"]);
    let id = env.detach(&["rtstop", "sh", "-c", RT_TRAP]);
    assert_eq!(env.inspect(&id, "{{.Config.StopSignal}}"), "SIGRTMIN+3");
    wait_catches(&env.inspect(&id, "{{.State.Pid}}"), 37);
    // Without the signal the shell ignores SIGTERM and dies only of SIGKILL, with 137.
    env.ok(&["stop", "-t", "20", &id]);
    assert_eq!(env.inspect(&id, "{{.State.ExitCode}}"), "77");
    // `stop -s` overrides the image's.
    let id = env.detach(&["busybox", "sh", "-c", RT_TRAP]);
    wait_catches(&env.inspect(&id, "{{.State.Pid}}"), 37);
    env.ok(&["stop", "-s", "RTMIN+3", "-t", "20", &id]);
    assert_eq!(env.inspect(&id, "{{.State.ExitCode}}"), "77");
    env.finish();
}

#[test]
fn ps_never_shows_a_killed_container_up() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    for round in 0..20 {
        let id = env.detach(&["busybox", "sleep", "1000"]);
        env.ok(&["kill", &id]);
        let running = env.ok(&["ps", "-q", "--no-trunc"]);
        assert!(!running.contains(&id), "round {round}: still up after kill");
        assert_eq!(
            env.inspect(&id, "{{.State.Status}} {{.State.ExitCode}}"),
            "exited 137",
            "round {round}"
        );
        env.ok(&["rm", &id]);
    }
    env.finish();
}

#[test]
fn runtime_kill_takes_real_time_signals() {
    if !require_busybox_overlay()
        || !common::prerequisite(common::have("runc", "--version"), "runc is not installed")
    {
        return;
    }
    let root = tempfile::Builder::new()
        .prefix("minidock-compat-rt")
        .tempdir()
        .unwrap();
    let bundle = tempfile::Builder::new()
        .prefix("minidock-compat-bundle")
        .tempdir()
        .unwrap();
    let status = Command::new("runc")
        .arg("spec")
        .current_dir(bundle.path())
        .status()
        .unwrap();
    assert!(status.success());
    common::build_busybox_rootfs(&bundle.path().join("rootfs"));
    let config_path = bundle.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["sh", "-c", RT_TRAP]);
    std::fs::write(&config_path, config.to_string()).unwrap();
    // The container inherits the verb's stdio: /dev/null, or reading it would wait for the
    // container's end.
    let runtime = |args: &[&str]| {
        Command::cargo_bin("minidock")
            .unwrap()
            .arg("runtime")
            .arg("--root")
            .arg(root.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
    };
    let state = |id: &str| -> serde_json::Value {
        let out = Command::cargo_bin("minidock")
            .unwrap()
            .args(["runtime", "--root"])
            .arg(root.path())
            .args(["state", id])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    for (n, signal) in ["37", "RTMIN+3", "sigrtmin+3"].iter().enumerate() {
        let id = format!("rtkill-{}-{n}", std::process::id());
        let bundle_path = bundle.path().to_str().unwrap();
        assert!(runtime(&["run", "-d", "--bundle", bundle_path, &id]).success());
        wait_catches(&state(&id)["pid"].to_string(), 37);
        let killed = runtime(&["kill", &id, signal]).success();
        let mut stopped = false;
        for _ in 0..500 {
            if !killed || state(&id)["status"] == "stopped" {
                stopped = killed;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(runtime(&["delete", "--force", &id]).success());
        assert!(killed, "runtime kill {signal} failed");
        assert!(stopped, "runtime kill {signal}: the trap never ran");
    }
    assert_eq!(runtime(&["kill", "nosuch", "RTMIN+16"]).code(), Some(1));
}

/// A state root whose container list cannot be read gives one line, not a warning from the
/// recovery pass and then the same error again.
#[test]
fn an_unreadable_container_list_is_one_error_line() {
    let env = Env::bare();
    std::fs::write(env.root.path().join("containers"), "").unwrap();
    for args in [&["ps"][..], &["ps", "-a"]] {
        let stderr = env.fails(args, 1);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains("Not a directory"), "{args:?}: {stderr}");
    }
}
