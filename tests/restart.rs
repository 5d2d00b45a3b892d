//! Restart policies (`run --restart`) and the run flags `--label`, `--label-file`,
//! `--stop-signal`, `--stop-timeout`, `--cidfile`, against a busybox image imported into a temp
//! root per test.
//!
//! The evidence is the kernel's and the container's own: the start times a container writes
//! into a bind-mounted file (from `/proc/uptime`), the pids of the processes the supervisor
//! started, the shim's own process, the files a trapped signal leaves.

mod common;

use assert_cmd::prelude::*;
use common::{require_busybox_overlay, text};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

struct Env {
    root: tempfile::TempDir,
}

impl Env {
    fn new() -> Option<Env> {
        if !require_busybox_overlay() {
            return None;
        }
        let env = Env {
            root: tempfile::Builder::new()
                .prefix("minidock-restart")
                .tempdir()
                .unwrap(),
        };
        let rootfs = tempfile::Builder::new()
            .prefix("minidock-restart-rootfs")
            .tempdir()
            .unwrap();
        common::build_busybox_rootfs(rootfs.path());
        let tar = rootfs.path().with_extension("tar");
        common::tar_dir(rootfs.path(), &tar);
        env.ok(&["import", tar.to_str().unwrap(), "busybox"]);
        // The same with the C library the minidock binary needs (`--init` binds it in).
        let minidock = assert_cmd::cargo::cargo_bin("minidock");
        let ldd = Command::new("ldd").arg(&minidock).output().unwrap();
        for word in text(&ldd.stdout).split_whitespace() {
            if word.starts_with('/') {
                let inside = rootfs.path().join(word.trim_start_matches('/'));
                std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
                std::fs::copy(word, &inside).unwrap();
            }
        }
        common::tar_dir(rootfs.path(), &tar);
        env.ok(&["import", tar.to_str().unwrap(), "glibcbox"]);
        std::fs::remove_file(&tar).unwrap();
        Some(env)
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    /// A directory of the test's own, bind-mounted at /data by [`Env::detach`].
    fn data(&self) -> std::path::PathBuf {
        let dir = self.root().join("data");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn output(&self, args: &[&str]) -> Output {
        Command::cargo_bin("minidock")
            .unwrap()
            .arg("--root")
            .arg(self.root())
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

    /// `run -d --name NAME -v DATA:/data FLAGS... busybox ARGS...`
    fn detach(&self, name: &str, flags: &[&str], args: &[&str]) -> String {
        self.detach_image(name, flags, "busybox", args)
    }

    fn detach_image(&self, name: &str, flags: &[&str], image: &str, args: &[&str]) -> String {
        let volume = format!("{}:/data", self.data().display());
        let mut all = vec!["run", "-d", "--name", name, "-v", &volume];
        all.extend_from_slice(flags);
        all.push(image);
        all.extend_from_slice(args);
        self.ok(&all).trim().to_owned()
    }

    fn inspect(&self, container: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, container])
            .trim_end()
            .to_owned()
    }

    fn state_json(&self, id: &str) -> serde_json::Value {
        let path = self.root().join("containers").join(id).join("state.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// Whether the container's recorded supervisor (the shim) still lives.
    fn shim_alive(&self, id: &str) -> bool {
        let state = self.state_json(id);
        let pid = state["SupervisorPid"].as_i64().unwrap();
        pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let out = self.output(&["ps", "-aq", "--no-trunc"]);
        for id in text(&out.stdout).lines() {
            let _ = self.output(&["rm", "-f", id]);
        }
        if !std::thread::panicking() {
            let mounts = common::mounts_containing(&self.root().display().to_string());
            assert!(mounts.is_empty(), "leftover mounts: {mounts:?}");
        }
    }
}

/// Polls `pred` every 20 ms for at most `secs` seconds.
fn eventually(secs: u64, mut pred: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if pred() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    pred()
}

/// The start times (seconds since boot) the container wrote, one a line.
fn starts(env: &Env) -> Vec<f64> {
    std::fs::read_to_string(env.data().join("starts"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn on_failure_3_restarts_exactly_three_times_after_the_backoff() {
    let Some(env) = Env::new() else { return };
    env.detach(
        "onfail",
        &["--restart", "on-failure:3"],
        &["sh", "-c", "cat /proc/uptime >> /data/starts; exit 3"],
    );
    // `wait` waits through the restarts, for the last exit.
    assert_eq!(env.ok(&["wait", "onfail"]).trim(), "3");
    assert_eq!(env.inspect("onfail", "{{.RestartCount}}"), "3");
    assert_eq!(
        env.inspect("onfail", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 3"
    );
    assert_eq!(
        env.inspect("onfail", "{{json .HostConfig.RestartPolicy}}"),
        r#"{"Name":"on-failure","MaximumRetryCount":3}"#
    );
    let status = env.ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(status.starts_with("Exited (3) "), "{status}");
    // The first start and three restarts: four starts, no more.
    let times = starts(&env);
    assert_eq!(times.len(), 4, "{times:?}");
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // The back-off is at least 100, 200, 400 ms (uptime counts in hundredths).
    for (gap, least) in gaps.iter().zip([0.1, 0.2, 0.4]) {
        assert!(*gap >= least - 0.011, "gaps {gaps:?}");
    }
}

/// The delays double: over six restarts they reach 3.2 s. Each gap between two starts is the
/// delay plus a teardown and a start, whose cost varies with the machine's load; two delays
/// apart, the doubling (at least 600 ms from the second on) outgrows that variation.
#[test]
fn the_delays_between_restarts_double() {
    let Some(env) = Env::new() else { return };
    env.detach(
        "backoff",
        &["--restart", "on-failure:6"],
        &["sh", "-c", "cat /proc/uptime >> /data/starts; exit 1"],
    );
    assert_eq!(env.ok(&["wait", "backoff"]).trim(), "1");
    assert_eq!(env.inspect("backoff", "{{.RestartCount}}"), "6");
    let times = starts(&env);
    assert_eq!(times.len(), 7, "{times:?}");
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, least) in gaps.iter().zip([0.1, 0.2, 0.4, 0.8, 1.6, 3.2]) {
        assert!(*gap >= least - 0.011, "gaps {gaps:?}");
    }
    for i in 1..4 {
        assert!(gaps[i + 2] > gaps[i], "gaps {gaps:?}");
    }
    assert!(gaps[5] >= gaps[3] * 1.5, "gaps {gaps:?}");
}

#[test]
fn on_failure_never_restarts_a_success_and_no_never_restarts() {
    let Some(env) = Env::new() else { return };
    for (name, policy, exit) in [("ok0", "on-failure", "0"), ("no1", "no", "1")] {
        let id = env.detach(
            name,
            &["--restart", policy],
            &[
                "sh",
                "-c",
                &format!("echo {name} >> /data/starts; exit {exit}"),
            ],
        );
        assert_eq!(env.ok(&["wait", name]).trim(), exit);
        assert!(eventually(10, || !env.shim_alive(&id)));
        assert_eq!(env.inspect(name, "{{.RestartCount}}"), "0");
        assert_eq!(env.inspect(name, "{{.State.Status}}"), "exited");
    }
    assert_eq!(
        std::fs::read_to_string(env.data().join("starts")).unwrap(),
        "ok0\nno1\n"
    );
    assert_eq!(
        env.inspect("no1", "{{json .HostConfig.RestartPolicy}}"),
        r#"{"Name":"no","MaximumRetryCount":0}"#
    );
}

/// `always` and `unless-stopped` start the process again when it is killed from outside,
/// and stop for good on `stop`.
#[test]
fn always_and_unless_stopped_survive_kill_9_and_end_on_stop() {
    let Some(env) = Env::new() else { return };
    for policy in ["always", "unless-stopped"] {
        let id = env.detach(policy, &["--restart", policy], &["sleep", "1000"]);
        let first: i32 = env.inspect(policy, "{{.State.Pid}}").parse().unwrap();
        assert!(first > 0);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(first),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let mut second = 0;
        assert!(
            eventually(20, || {
                second = env.inspect(policy, "{{.State.Pid}}").parse().unwrap();
                second > 0 && second != first
            }),
            "{policy}: no new process"
        );
        assert!(Path::new(&format!("/proc/{second}")).exists());
        assert!(!Path::new(&format!("/proc/{first}")).exists());
        assert_eq!(env.inspect(policy, "{{.RestartCount}}"), "1");
        assert_eq!(env.inspect(policy, "{{.State.Status}}"), "running");
        env.ok(&["stop", "-t", "1", policy]);
        assert_eq!(env.inspect(policy, "{{.State.Status}}"), "exited");
        // The shim ends: nobody is left to restart it.
        assert!(
            eventually(10, || !env.shim_alive(&id)),
            "{policy}: shim lives"
        );
        assert_eq!(env.inspect(policy, "{{.State.Status}}"), "exited");
        assert_eq!(env.inspect(policy, "{{.RestartCount}}"), "1");
        assert!(!Path::new(&format!("/proc/{second}")).exists());
        // `start` begins a new life: the policy holds again, the count starts over.
        env.ok(&["start", policy]);
        assert_eq!(env.inspect(policy, "{{.RestartCount}}"), "0");
        env.ok(&["rm", "-f", policy]);
    }
}

/// Between restarts a container shows as Docker shows it: `Restarting (CODE) ... ago` in
/// `ps`, `"restarting"` in inspect; `stop` then ends it at once.
#[test]
fn a_container_waiting_to_restart_shows_restarting_and_stops() {
    let Some(env) = Env::new() else { return };
    let id = env.detach("flap", &["--restart", "always"], &["sh", "-c", "exit 2"]);
    let mut seen = String::new();
    assert!(
        eventually(30, || {
            seen = env.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
            seen.starts_with("flap Restarting (2) ") && seen.trim_end().ends_with(" ago")
        }),
        "ps: {seen}"
    );
    let state = env.inspect(
        "flap",
        "{{.State.Status}} {{.State.Running}} {{.State.Restarting}} {{.State.Pid}}",
    );
    // The process may be in a brief run between two waits.
    assert!(
        state == "restarting true true 0" || state.starts_with("running true false "),
        "{state}"
    );
    env.ok(&["stop", "flap"]);
    assert!(eventually(10, || !env.shim_alive(&id)));
    assert_eq!(
        env.inspect("flap", "{{.State.Status}} {{.State.Restarting}}"),
        "exited false"
    );
}

/// The files `minidock ARGS` names in its system calls, as strace(1) saw them (one line
/// each); `None` without strace (outside CI).
fn file_syscalls(env: &Env, args: &[&str]) -> Option<(Output, Vec<String>)> {
    if !common::prerequisite(
        common::dockerd::have("strace"),
        "strace is missing (apt-get install strace)",
    ) {
        return None;
    }
    let log = env.root().join("ps.strace");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=%file", "-o"])
        .arg(&log)
        .arg(assert_cmd::cargo::cargo_bin("minidock"))
        .arg("--root")
        .arg(env.root())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let seen = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    Some((out, seen.lines().map(str::to_owned).collect()))
}

/// A container waiting out its restart back-off has its exit recorded: `ps` shows it
/// `Restarting` at once, without waiting for an exit to be recorded (which would read its
/// `state.json` again and again). What needs its process gets dockerd's refusal; `kill` ends
/// the restart policy without a signal, keeping the last exit, as dockerd does.
#[test]
fn a_container_in_its_backoff_is_restarting_at_once_and_kill_ends_it() {
    let Some(env) = Env::new() else { return };
    let id = env.detach("flap", &["--restart", "always"], &["sh", "-c", "exit 2"]);
    // Held in the back-off: still restarting, its supervisor alive, for as long as needed.
    let held = common::backoff::hold(env.root(), &id);
    let Some((out, seen)) = file_syscalls(&env, &["ps", "--format", "{{.Names}} {{.Status}}"])
    else {
        return;
    };
    let listed = common::ok_stdout(&["ps"], &out);
    assert!(listed.starts_with("flap Restarting (2) "), "{listed}");
    let state_file = format!("{id}/state.json");
    let looks: Vec<&String> = seen.iter().filter(|l| l.contains(&state_file)).collect();
    // One listing reads it a few times; a wait for an exit to be recorded, every 10 ms.
    assert!(looks.len() <= 4, "{} looks: {looks:#?}", looks.len());
    assert_eq!(
        env.inspect(
            "flap",
            "{{.State.Status}} {{.State.Restarting}} {{.State.Pid}}"
        ),
        "restarting true 0"
    );
    // Its state is `restarting`, not `running`, as dockerd names it (and filters on it).
    assert_eq!(env.ok(&["ps", "--format", "{{.State}}"]), "restarting\n");
    let only = |status: &str| env.ok(&["ps", "-q", "--filter", &format!("status={status}")]);
    assert_eq!(only("restarting").len(), 13);
    assert_eq!(only("running"), "");
    let restarting =
        format!("minidock: Container {id} is restarting, wait until the container is running\n");
    for args in [
        &["exec", "flap", "true"][..],
        &["pause", "flap"],
        &["top", "flap"],
    ] {
        assert_eq!(env.fails(args, 1), restarting, "{args:?}");
    }
    assert_eq!(
        env.fails(&["unpause", "flap"], 1),
        format!("minidock: Container {id} is not paused\n")
    );
    // kill: no process to signal; the restart is called off. SIGKILL waits for the exit to be
    // recorded, which the held supervisor does once let go.
    let finished = env.inspect("flap", "{{.State.FinishedAt}} {{.RestartCount}}");
    let kill = Command::cargo_bin("minidock")
        .unwrap()
        .arg("--root")
        .arg(env.root())
        .args(["kill", "flap"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        eventually(10, || env.state_json(&id)["HasBeenManuallyStopped"] == true),
        "kill recorded no stop"
    );
    drop(held);
    let out = kill.wait_with_output().unwrap();
    assert_eq!(common::ok_stdout(&["kill"], &out), "flap\n");
    assert_eq!(
        env.inspect(
            "flap",
            "{{.State.Status}} {{.State.Restarting}} {{.State.ExitCode}}"
        ),
        "exited false 2"
    );
    // Nobody is left to restart it; the last exit's time and count stay.
    assert!(eventually(10, || !env.shim_alive(&id)), "the shim lives");
    assert_eq!(
        env.inspect("flap", "{{.State.FinishedAt}} {{.RestartCount}}"),
        finished
    );
    assert_eq!(
        env.fails(&["kill", "flap"], 1),
        format!("minidock: container {id} is not running\n")
    );
}

/// `update --restart` changes the policy of a running container: its supervisor follows it.
#[test]
fn update_restart_reaches_the_running_supervisor() {
    let Some(env) = Env::new() else { return };
    env.detach("upd", &[], &["sleep", "1000"]);
    env.ok(&["update", "--restart", "always", "upd"]);
    assert_eq!(
        env.inspect("upd", "{{.HostConfig.RestartPolicy.Name}}"),
        "always"
    );
    let first: i32 = env.inspect("upd", "{{.State.Pid}}").parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(eventually(20, || env.inspect("upd", "{{.RestartCount}}") == "1"));
    assert!(
        env.fails(&["update", "--restart", "always:2", "upd"], 1)
            .contains("maximum retry count cannot be used with restart policy 'always'")
    );
}

#[test]
fn bad_restart_policies_are_refused_as_docker_refuses_them() {
    let Some(env) = Env::new() else { return };
    for (flags, message) in [
        (
            vec!["--restart", "always:3"],
            "maximum retry count cannot be used with restart policy 'always'",
        ),
        (
            vec!["--restart=on-failure:-1"],
            "maximum retry count cannot be negative",
        ),
        (
            vec!["--restart", "on-failure:x"],
            "maximum retry count must be an integer",
        ),
        (
            vec!["--restart", "sometimes"],
            "invalid restart policy 'sometimes'",
        ),
        (
            vec!["--rm", "--restart", "always"],
            "Conflicting options: --restart and --rm",
        ),
        (vec!["--stop-signal", "SIGNOPE"], "Invalid signal: SIGNOPE"),
    ] {
        for verb in ["run", "create"] {
            let mut args = vec![verb];
            args.extend_from_slice(&flags);
            args.extend_from_slice(&["busybox", "true"]);
            let err = env.fails(&args, 125);
            assert!(err.contains(message), "{args:?}: {err}");
        }
    }
    // Nothing was made.
    assert_eq!(env.ok(&["ps", "-aq"]), "");
    // `--rm` with `--restart no` is no conflict.
    env.ok(&["run", "--rm", "--restart", "no", "busybox", "true"]);
}

#[test]
fn labels_stop_signal_and_stop_timeout_are_recorded_and_used() {
    let Some(env) = Env::new() else { return };
    let file = env.root().join("labels");
    std::fs::write(&file, "# a comment\n\nfrom.file=1\nboth=file\n").unwrap();
    let file_arg = file.display().to_string();
    env.detach(
        "flags",
        &[
            "-l",
            "a=b",
            "--label",
            "empty",
            "--label-file",
            &file_arg,
            "--label",
            "both=flag",
            "--stop-signal",
            "SIGUSR1",
            "--stop-timeout",
            "1",
        ],
        &[
            "sh",
            "-c",
            "trap 'echo usr1 > /data/signal; exit 5' USR1; while true; do sleep 0.1; done",
        ],
    );
    assert_eq!(
        env.inspect("flags", "{{json .Config.Labels}}"),
        r#"{"a":"b","both":"flag","empty":"","from.file":"1"}"#
    );
    assert_eq!(
        env.ok(&["ps", "--format", "{{.Labels}}"]).trim(),
        "a=b,both=flag,empty=,from.file=1"
    );
    assert_eq!(
        env.inspect("flags", "{{.Config.StopSignal}} {{.Config.StopTimeout}}"),
        "SIGUSR1 1"
    );
    env.ok(&["stop", "flags"]);
    assert_eq!(
        std::fs::read_to_string(env.data().join("signal")).unwrap(),
        "usr1\n"
    );
    assert_eq!(env.inspect("flags", "{{.State.ExitCode}}"), "5");

    // A stop signal the process ignores: `stop` kills it after --stop-timeout (1 s), not
    // after the default 10 s.
    env.detach(
        "stubborn",
        &["--stop-timeout", "1"],
        &[
            "sh",
            "-c",
            "trap 'echo term >> /data/term' TERM; while true; do sleep 0.1; done",
        ],
    );
    let before = std::time::Instant::now();
    env.ok(&["stop", "stubborn"]);
    assert!(
        before.elapsed() < Duration::from_secs(8),
        "{:?}",
        before.elapsed()
    );
    assert_eq!(env.inspect("stubborn", "{{.State.ExitCode}}"), "137");
    assert_eq!(
        std::fs::read_to_string(env.data().join("term")).unwrap(),
        "term\n"
    );
    // Without --stop-timeout, Config.StopTimeout is absent, as Docker omits it.
    let json = env.ok(&["inspect", "stubborn"]);
    assert!(json.contains("\"StopTimeout\": 1"), "{json}");
    env.ok(&["create", "--name", "plain", "busybox", "true"]);
    assert!(!env.ok(&["inspect", "plain"]).contains("StopTimeout"));
    assert_eq!(env.inspect("plain", "{{.Config.StopTimeout}}"), "<nil>");
}

#[test]
fn cidfile_gets_the_full_id_and_is_never_overwritten() {
    let Some(env) = Env::new() else { return };
    let cidfile = env.root().join("cid");
    let cid_arg = cidfile.display().to_string();
    let id = env
        .ok(&["create", "--cidfile", &cid_arg, "busybox", "true"])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64);
    assert_eq!(std::fs::read_to_string(&cidfile).unwrap(), id);
    let err = env.fails(&["run", "--cidfile", &cid_arg, "busybox", "true"], 125);
    assert!(
        err.contains(&format!(
            "Container ID file found, make sure the other container isn't running or delete {cid_arg}"
        )),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&cidfile).unwrap(), id);
    assert_eq!(env.ok(&["ps", "-aq", "--no-trunc"]).trim(), id);
    // A create that fails leaves no cidfile behind.
    let other = env.root().join("cid2");
    let other_arg = other.display().to_string();
    env.fails(
        &[
            "run",
            "--cidfile",
            &other_arg,
            "--name",
            "x",
            "nosuchimage",
            "true",
        ],
        125,
    );
    assert!(!other.exists());
}

/// A foreground `run` returns at the first exit, with its code, as Docker's CLI does; a
/// detached shim carries on with the restarts.
#[test]
fn a_foreground_run_returns_at_the_first_exit_and_the_restarts_go_on() {
    let Some(env) = Env::new() else { return };
    let volume = format!("{}:/data", env.data().display());
    let out = env.output(&[
        "run",
        "--name",
        "fg",
        "-v",
        &volume,
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "cat /proc/uptime >> /data/starts; echo run; exit 4",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "run\n");
    assert_eq!(env.ok(&["wait", "fg"]).trim(), "4");
    assert_eq!(env.inspect("fg", "{{.RestartCount}}"), "2");
    assert_eq!(starts(&env).len(), 3);
    assert_eq!(env.ok(&["logs", "fg"]), "run\nrun\nrun\n");
}

/// The processes in the PID namespace of host pid `pid1`, with their state letters.
fn processes_beside(pid1: i32) -> Vec<(i32, char)> {
    let ns = std::fs::read_link(format!("/proc/{pid1}/ns/pid")).unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::read_link(format!("/proc/{pid}/ns/pid"))
            .ok()
            .as_ref()
            != Some(&ns)
        {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let state = stat.rsplit_once(") ").unwrap().1.chars().next().unwrap();
        found.push((pid, state));
    }
    found
}

/// `--init`: PID 1 is docker-init, which reaps the orphans a plain PID 1 leaves as zombies
/// and passes SIGTERM on, so `stop` ends `sleep` at once with 143.
#[test]
fn init_reaps_zombies_and_forwards_sigterm() {
    let Some(env) = Env::new() else { return };
    // An orphan reparented to PID 1; `exec sleep` as PID 1 never waits for it.
    let orphan = "(sh -c 'sleep 0.2; echo > /data/$0' $0 &); exec sleep 100";
    for (name, flags) in [("plain", vec![]), ("withinit", vec!["--init"])] {
        env.detach_image(name, &flags, "glibcbox", &["sh", "-c", orphan, name]);
        let pid1: i32 = env.inspect(name, "{{.State.Pid}}").parse().unwrap();
        assert!(eventually(10, || env.data().join(name).exists()));
        let zombie = || processes_beside(pid1).iter().any(|(_, s)| *s == 'Z');
        if name == "plain" {
            assert!(eventually(10, zombie), "no zombie without --init");
            assert_eq!(env.inspect(name, "{{.HostConfig.Init}}"), "<nil>");
        } else {
            assert!(eventually(10, || !zombie() && processes_beside(pid1).len() == 2));
            assert_eq!(env.inspect(name, "{{.HostConfig.Init}}"), "true");
            let comm = std::fs::read_to_string(format!("/proc/{pid1}/cmdline")).unwrap();
            assert!(comm.starts_with("/sbin/docker-init\0--\0sh\0"), "{comm:?}");
        }
    }
    // SIGTERM reaches `sleep` through the init: it dies of it, long before stop's timeout.
    env.detach_image("term", &["--init"], "glibcbox", &["sh", "-c", "sleep 100"]);
    let before = std::time::Instant::now();
    env.ok(&["stop", "-t", "30", "term"]);
    assert!(
        before.elapsed() < Duration::from_secs(20),
        "{:?}",
        before.elapsed()
    );
    assert_eq!(env.inspect("term", "{{.State.ExitCode}}"), "143");
    // An image without the C library the binary needs is refused.
    let err = env.fails(&["run", "--init", "busybox", "true"], 125);
    assert!(
        err.contains("--init is not supported for this image"),
        "{err}"
    );
}
