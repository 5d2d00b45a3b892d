//! `minidock runtime` speaks runc's command line: each verb is run under runc and minidock on
//! the same bundle (`runc spec` over busybox) with the same arguments, and what the kernel
//! shows afterwards (pid files, /proc, cgroup files, freezer state) is compared.
//!
//! minidock is called as `minidock runtime --root DIR ...`: runc's `--root`, after the verb
//! group, is the runtime's state directory itself.

#[path = "common/bundle.rs"]
mod bundle;
mod common;

use assert_cmd::cargo::CommandCargoExt;
use bundle::{Bundle, require_peers, stdout, unique_id};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// One runtime (runc or minidock) with its own state directory. Dropping it force-deletes
/// every container it still lists.
struct Runtime {
    name: &'static str,
    root: tempfile::TempDir,
}

impl Runtime {
    fn both() -> [Runtime; 2] {
        ["runc", "minidock"].map(|name| Runtime {
            name,
            root: tempfile::Builder::new()
                .prefix("minidock-cli-root")
                .tempdir()
                .unwrap(),
        })
    }

    fn command(&self) -> Command {
        let mut cmd = if self.name == "runc" {
            Command::new("runc")
        } else {
            let mut cmd = Command::cargo_bin("minidock").unwrap();
            cmd.arg("runtime");
            cmd
        };
        cmd.arg("--root").arg(self.root.path());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// A verb whose container inherits our stdio (create, run -d, exec -d): /dev/null, or
    /// reading its output would wait for the container.
    fn spawn_verb(&self, args: &[&str]) -> std::process::ExitStatus {
        self.command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
    }

    fn state(&self, id: &str) -> serde_json::Value {
        let out = self.run(&["state", id]);
        assert!(out.status.success(), "{} state: {out:?}", self.name);
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn wait_stopped(&self, id: &str) {
        for _ in 0..500 {
            if self.state(id)["status"] == "stopped" {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{}: {id} never stopped", self.name);
    }

    /// `run -d` of `bundle` as `id`; returns the container's pid.
    fn run_detached(&self, bundle: &Bundle, id: &str) -> i32 {
        let bundle = bundle.path().to_str().unwrap();
        let status = self.spawn_verb(&["run", "-d", "--bundle", bundle, id]);
        assert!(status.success(), "{} run -d", self.name);
        self.state(id)["pid"].as_i64().unwrap() as i32
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let out = self.run(&["list", "-q"]);
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = self.run(&["delete", "--force", id]);
        }
    }
}

/// The directory of `pid`'s cgroup for `controller` (v1), or its v2 directory.
fn cgroup_dir(pid: i32, controller: &str) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        if controllers.split(',').any(|c| c == controller) {
            return Path::new("/sys/fs/cgroup")
                .join(controllers)
                .join(path.trim_start_matches('/'));
        }
    }
    let v2 = text.lines().find(|l| l.starts_with("0::")).unwrap();
    let unified = if Path::new("/sys/fs/cgroup/unified").exists() {
        "/sys/fs/cgroup/unified"
    } else {
        "/sys/fs/cgroup"
    };
    Path::new(unified).join(v2[3..].trim_start_matches('/'))
}

/// FROZEN or THAWED, as the kernel reports the freezer of `pid`'s cgroup.
fn freezer_state(pid: i32) -> String {
    let dir = cgroup_dir(pid, "freezer");
    match std::fs::read_to_string(dir.join("freezer.state")) {
        Ok(text) => text.trim().to_owned(),
        Err(_) => {
            let events = std::fs::read_to_string(dir.join("cgroup.events")).unwrap();
            if events.contains("frozen 1") {
                "FROZEN"
            } else {
                "THAWED"
            }
            .into()
        }
    }
}

#[test]
fn create_writes_the_pid_file_and_kill_takes_a_number() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["sleep", "1000"]);
    for rt in Runtime::both() {
        let id = unique_id("pidfile");
        let pid_file = rt.root.path().join("init.pid");
        let status = rt.spawn_verb(&[
            "create",
            "--bundle",
            bundle.path().to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--no-pivot",
            "--no-new-keyring",
            &id,
        ]);
        assert!(status.success(), "{} create --pid-file", rt.name);
        let text = std::fs::read_to_string(&pid_file).unwrap();
        let state = rt.state(&id);
        assert_eq!(state["status"], "created", "{}", rt.name);
        assert_eq!(
            text,
            state["pid"].to_string(),
            "{}: no newline, the pid",
            rt.name
        );
        assert!(Path::new(&format!("/proc/{text}")).exists());
        assert!(rt.run(&["start", &id]).status.success());
        assert_eq!(rt.state(&id)["status"], "running", "{}", rt.name);
        // containerd's shim passes the signal as a number.
        assert!(rt.run(&["kill", &id, "9"]).status.success(), "{}", rt.name);
        rt.wait_stopped(&id);
        assert!(rt.run(&["delete", &id]).status.success());
        assert_eq!(
            rt.run(&["state", &id]).status.code(),
            Some(1),
            "{}",
            rt.name
        );
    }
}

#[test]
fn failures_exit_1_with_a_json_line_in_the_log() {
    if !require_peers() {
        return;
    }
    for rt in Runtime::both() {
        let log = rt.root.path().join("log.json");
        let out = rt
            .command()
            .arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "start", "no-such-container"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}: {out:?}", rt.name);
        let text = std::fs::read_to_string(&log).unwrap();
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap())
            .unwrap_or_else(|e| panic!("{}: {text}: {e}", rt.name));
        assert_eq!(last["level"], "error", "{}: {text}", rt.name);
        assert!(!last["msg"].as_str().unwrap().is_empty());
        let time = last["time"].as_str().unwrap();
        assert!(minidock::state::parse_rfc3339(time).is_some(), "{time}");
    }
}

#[test]
fn the_systemd_cgroup_driver_is_refused() {
    if !require_peers() {
        return;
    }
    let [_, md] = Runtime::both();
    let out = md
        .command()
        .args(["--systemd-cgroup", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not supported"));
}

#[test]
fn kill_all_and_ps_see_every_process_of_the_cgroup() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    for rt in Runtime::both() {
        let id = unique_id("killall");
        rt.run_detached(&bundle, &id);
        // The shell and its two sleeps (the shell forks them right away; wait for both).
        let mut pids: Vec<i32> = Vec::new();
        for _ in 0..500 {
            let out = rt.run(&["ps", "--format", "json", &id]);
            assert!(out.status.success(), "{} ps: {out:?}", rt.name);
            pids = serde_json::from_slice(&out.stdout).unwrap();
            if pids.len() == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(pids.len(), 3, "{}: {pids:?}", rt.name);
        let table = stdout(&rt.run(&["ps", &id]));
        assert!(table.starts_with("UID"), "{}: {table}", rt.name);
        assert_eq!(table.lines().count(), 4, "{}: {table}", rt.name);
        // SIGTERM to every process: the sleeps die, then the shell's wait ends. Without
        // --all only PID 1 would get it, and PID 1 of a namespace ignores it.
        assert!(rt.run(&["kill", "--all", &id, "TERM"]).status.success());
        rt.wait_stopped(&id);
        for pid in pids {
            let alive = minidock::runtime::process_start_time(pid).is_some();
            assert!(!alive, "{}: {pid} survived kill --all", rt.name);
        }
        assert!(rt.run(&["delete", &id]).status.success());
    }
}

#[test]
fn pause_and_resume_use_the_freezer() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["sleep", "1000"]);
    for rt in Runtime::both() {
        let id = unique_id("pause");
        let pid = rt.run_detached(&bundle, &id);
        assert_eq!(
            rt.run(&["resume", &id]).status.code(),
            Some(1),
            "{}",
            rt.name
        );
        assert!(rt.run(&["pause", &id]).status.success(), "{}", rt.name);
        assert_eq!(rt.state(&id)["status"], "paused", "{}", rt.name);
        assert_eq!(freezer_state(pid), "FROZEN", "{}", rt.name);
        assert!(rt.run(&["resume", &id]).status.success(), "{}", rt.name);
        assert_eq!(rt.state(&id)["status"], "running", "{}", rt.name);
        assert_eq!(freezer_state(pid), "THAWED", "{}", rt.name);
        // A paused container goes with delete --force.
        assert!(rt.run(&["pause", &id]).status.success());
        assert!(
            rt.run(&["delete", "--force", &id]).status.success(),
            "{}",
            rt.name
        );
        assert_eq!(rt.run(&["state", &id]).status.code(), Some(1));
    }
}

#[test]
fn exec_joins_the_namespaces_and_the_cgroup() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["sleep", "1000"]);
    for rt in Runtime::both() {
        let id = unique_id("exec");
        let pid = rt.run_detached(&bundle, &id);
        let out = rt.run(&[
            "exec",
            &id,
            "sh",
            "-c",
            "for n in mnt pid net uts ipc; do readlink /proc/self/ns/$n; done; exit 5",
        ]);
        assert_eq!(out.status.code(), Some(5), "{}: {out:?}", rt.name);
        let theirs: String = ["mnt", "pid", "net", "uts", "ipc"]
            .iter()
            .map(|n| {
                let link = std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
                format!("{}\n", link.display())
            })
            .collect();
        assert_eq!(stdout(&out), theirs, "{}", rt.name);

        // --process, --detach and --pid-file, as containerd's shim calls it.
        let process = rt.root.path().join("process.json");
        std::fs::write(
            &process,
            serde_json::json!({
                "args": ["sleep", "1000"], "cwd": "/tmp", "env": ["PATH=/bin"],
                "user": {"uid": 1000, "gid": 1000},
                "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100}],
                "noNewPrivileges": true
            })
            .to_string(),
        )
        .unwrap();
        let pid_file = rt.root.path().join("exec.pid");
        let status = rt.spawn_verb(&[
            "exec",
            "--process",
            process.to_str().unwrap(),
            "--detach",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
        ]);
        assert!(status.success(), "{} exec --process --detach", rt.name);
        let child: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{child}/status")).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap()
                .split_whitespace()
                .nth(1)
                .unwrap()
                .to_owned()
        };
        assert_eq!(field("Uid:"), "1000", "{}", rt.name);
        assert_eq!(field("NoNewPrivs:"), "1", "{}", rt.name);
        let limits = std::fs::read_to_string(format!("/proc/{child}/limits")).unwrap();
        assert!(
            limits
                .lines()
                .any(|l| l.starts_with("Max open files")
                    && l.split_whitespace().nth(3) == Some("100")),
            "{}: {limits}",
            rt.name
        );
        assert_eq!(
            cgroup_dir(child, "pids"),
            cgroup_dir(pid, "pids"),
            "{}",
            rt.name
        );
        let ps: Vec<i32> =
            serde_json::from_slice(&rt.run(&["ps", "--format", "json", &id]).stdout).unwrap();
        assert!(ps.contains(&child), "{}: {ps:?}", rt.name);
        assert!(rt.run(&["delete", "--force", &id]).status.success());
    }
}

#[test]
fn list_prints_what_runc_prints() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["sleep", "1000"]);
    let lists: Vec<(String, String)> = Runtime::both()
        .iter()
        .map(|rt| {
            let empty = stdout(&rt.run(&["list", "--format", "json"]));
            let header = stdout(&rt.run(&["list"]));
            (empty, header)
        })
        .collect();
    assert_eq!(lists[0], lists[1], "runc, then minidock, on an empty root");
    for rt in Runtime::both() {
        let id = unique_id("list");
        let status = rt.spawn_verb(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
        assert!(status.success());
        assert_eq!(
            stdout(&rt.run(&["list", "-q"])),
            format!("{id}\n"),
            "{}",
            rt.name
        );
        let list: serde_json::Value =
            serde_json::from_slice(&rt.run(&["list", "--format", "json"]).stdout).unwrap();
        let entry = &list[0];
        assert_eq!(entry["id"], id.as_str(), "{}", rt.name);
        assert_eq!(entry["status"], "created", "{}", rt.name);
        assert_eq!(entry["pid"], rt.state(&id)["pid"], "{}", rt.name);
        assert_eq!(entry["owner"], "root", "{}", rt.name);
        let table = stdout(&rt.run(&["list"]));
        let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(row[0], id, "{}: {table}", rt.name);
        assert_eq!(row[2], "created", "{}: {table}", rt.name);
        assert!(rt.run(&["delete", "--force", &id]).status.success());
    }
}

#[test]
fn update_writes_new_limits_into_the_cgroup() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["sleep", "1000"]);
    for rt in Runtime::both() {
        let id = unique_id("update");
        let pid = rt.run_detached(&bundle, &id);
        let out = rt.run(&["update", "--pids-limit", "20", "--memory", "52428800", &id]);
        assert!(out.status.success(), "{}: {out:?}", rt.name);
        let read = |controller: &str, v1: &str, v2: &str| {
            let dir = cgroup_dir(pid, controller);
            std::fs::read_to_string(dir.join(v1))
                .or_else(|_| std::fs::read_to_string(dir.join(v2)))
                .unwrap()
                .trim()
                .to_owned()
        };
        assert_eq!(read("pids", "pids.max", "pids.max"), "20", "{}", rt.name);
        assert_eq!(
            read("memory", "memory.limit_in_bytes", "memory.max"),
            "52428800",
            "{}",
            rt.name
        );
        // --resources -, as containerd sends it: zeros mean "unchanged".
        let mut child = rt
            .command()
            .args(["update", "--resources", "-", &id])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let body =
            r#"{"pids":{"limit":30},"cpu":{"shares":0,"quota":0,"period":0},"memory":{"limit":0}}"#;
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), body.as_bytes()).unwrap();
        assert!(
            child.wait().unwrap().success(),
            "{} update --resources -",
            rt.name
        );
        assert_eq!(read("pids", "pids.max", "pids.max"), "30", "{}", rt.name);
        assert_eq!(
            read("memory", "memory.limit_in_bytes", "memory.max"),
            "52428800",
            "{}",
            rt.name
        );
        assert!(rt.run(&["delete", "--force", &id]).status.success());
    }
}

#[test]
fn features_have_runcs_shape() {
    if !require_peers() {
        return;
    }
    let [runc, md] = Runtime::both();
    let parse = |rt: &Runtime| -> serde_json::Value {
        let out = rt.run(&["features"]);
        assert!(out.status.success(), "{}", rt.name);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (theirs, ours) = (parse(&runc), parse(&md));
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&theirs), keys(&ours));
    for key in keys(&theirs["linux"]) {
        assert!(ours["linux"].get(&key).is_some(), "linux.{key} missing");
    }
    assert_eq!(ours["linux"]["namespaces"], theirs["linux"]["namespaces"]);
    assert_eq!(
        ours["linux"]["seccomp"]["operators"],
        theirs["linux"]["seccomp"]["operators"]
    );
    // Only what minidock does: no systemd driver, no AppArmor, no seccomp agent.
    assert_eq!(ours["linux"]["cgroup"]["systemd"], false);
    assert_eq!(ours["linux"]["apparmor"]["enabled"], false);
    let caps = ours["linux"]["capabilities"].as_array().unwrap();
    assert_eq!(
        caps.len(),
        theirs["linux"]["capabilities"].as_array().unwrap().len()
    );
}

#[test]
fn run_in_the_foreground_writes_the_pid_file_and_keeps_the_status() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["sh", "-c", "echo $$; exit 4"]);
    for rt in Runtime::both() {
        let id = unique_id("fg");
        let pid_file = rt.root.path().join("run.pid");
        let bundle_dir = bundle.path().to_str().unwrap();
        let out = rt.run(&[
            "run",
            "--bundle",
            bundle_dir,
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
        ]);
        assert_eq!(out.status.code(), Some(4), "{}: {out:?}", rt.name);
        // PID 1 of its namespace, with some host pid in the file.
        assert_eq!(stdout(&out), "1\n", "{}", rt.name);
        let text = std::fs::read_to_string(&pid_file).unwrap();
        assert!(text.parse::<i32>().unwrap() > 1, "{}: {text:?}", rt.name);
        assert_eq!(
            rt.run(&["state", &id]).status.code(),
            Some(1),
            "{}: not deleted",
            rt.name
        );
    }
}

#[test]
fn exec_joins_the_user_namespace_first() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["sleep", "1000"]);
    bundle.edit(|c| {
        let linux = &mut c["linux"];
        linux["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "user"}));
        let map = serde_json::json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
        linux["uidMappings"] = map.clone();
        linux["gidMappings"] = map;
    });
    for rt in Runtime::both() {
        let id = unique_id("userns");
        let pid = rt.run_detached(&bundle, &id);
        let out = rt.run(&["exec", &id, "readlink", "/proc/self/ns/user"]);
        assert!(out.status.success(), "{}: {out:?}", rt.name);
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
        assert_eq!(
            stdout(&out).trim_end(),
            theirs.to_str().unwrap(),
            "{}",
            rt.name
        );
        assert!(rt.run(&["delete", "--force", &id]).status.success());
    }
}

#[test]
fn exec_options_change_the_process_as_runcs_do() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["sleep", "1000"]);
    let outputs: Vec<Output> = Runtime::both()
        .iter()
        .map(|rt| {
            let id = unique_id("execopts");
            rt.run_detached(&bundle, &id);
            let out = rt.run(&[
                "exec",
                "--user",
                "1000:1000",
                "--cwd",
                "/tmp",
                "--env",
                "GREETING=hi",
                "--cap",
                "CAP_SYS_ADMIN",
                "--no-new-privs",
                &id,
                "sh",
                "-c",
                "id -u; id -g; pwd; echo $GREETING; \
                 grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status",
            ]);
            assert!(rt.run(&["delete", "--force", &id]).status.success());
            out
        })
        .collect();
    assert!(outputs[0].status.success(), "runc: {:?}", outputs[0]);
    assert_eq!(
        stdout(&outputs[1]),
        stdout(&outputs[0]),
        "minidock, then runc: {:?}",
        outputs[1]
    );
}

#[test]
fn failed_execs_exit_255_and_bad_ids_or_env_are_refused_as_by_runc() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["sleep", "1000"]);
    for rt in Runtime::both() {
        let id = unique_id("execbad");
        rt.run_detached(&bundle, &id);
        for args in [
            vec!["exec", "no-such-container", "true"],
            vec!["exec", &id, "/no/such/program"],
            // uid 4294967295 is -1 to setresuid(2): the process would stay root.
            vec!["exec", "--user", "4294967295", &id, "id", "-u"],
            vec!["exec", "--user", "0:4294967295", &id, "id", "-g"],
            vec!["exec", "--env", "NOEQUALS", &id, "true"],
            vec!["exec", "--env", "=x", &id, "true"],
        ] {
            let out = rt.run(&args);
            assert_eq!(
                out.status.code(),
                Some(255),
                "{} {args:?}: {out:?}",
                rt.name
            );
            assert_eq!(stdout(&out), "", "{} {args:?} ran the program", rt.name);
        }
        assert!(rt.run(&["delete", "--force", &id]).status.success());
    }
}

#[test]
fn kill_with_signal_0_checks_that_the_container_runs_as_runcs_does() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["sleep", "1000"]);
    for rt in Runtime::both() {
        let id = unique_id("kill0");
        let pid = rt.run_detached(&bundle, &id);
        let out = rt.run(&["kill", &id, "0"]);
        assert!(out.status.success(), "{} kill 0: {out:?}", rt.name);
        assert!(
            minidock::runtime::process_start_time(pid).is_some(),
            "{}",
            rt.name
        );
        assert_eq!(rt.state(&id)["status"], "running", "{}", rt.name);
        assert!(rt.run(&["kill", &id, "KILL"]).status.success());
        rt.wait_stopped(&id);
        let out = rt.run(&["kill", &id, "0"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{} kill 0 when stopped",
            rt.name
        );
        assert!(rt.run(&["delete", &id]).status.success());
    }
}

/// `events --stats` prints one JSON line of runc's shape from the container's cgroup (the
/// same keys runc gives for what both read, and the pids count of its one process); a
/// stopped container, a missing one and a zero interval are refused with exit 1 by both; a
/// streaming `events --interval` prints a line per interval.
#[test]
fn events_print_runcs_stats_lines_and_refuse_what_runc_refuses() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["sleep", "1000"]);
    for rt in Runtime::both() {
        let id = unique_id("events");
        rt.run_detached(&bundle, &id);
        let out = rt.run(&["events", "--stats", &id]);
        assert!(out.status.success(), "{} events --stats: {out:?}", rt.name);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.lines().count(), 1, "{}: {text}", rt.name);
        let event: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(event["type"], "stats", "{}", rt.name);
        assert_eq!(event["id"], id.as_str(), "{}", rt.name);
        let data = &event["data"];
        for key in ["cpu", "memory", "pids", "blkio", "hugetlb", "intel_rdt"] {
            assert!(data[key].is_object(), "{}: no {key} in {data}", rt.name);
        }
        assert!(data["network_interfaces"].is_null(), "{}", rt.name);
        assert_eq!(data["pids"]["current"], 1, "{}: {data}", rt.name);
        assert!(
            data["cpu"]["usage"]["total"].as_u64().unwrap() > 0,
            "{}",
            rt.name
        );
        assert!(
            data["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
            "{}",
            rt.name
        );
        assert!(
            data["memory"]["raw"].as_object().unwrap().len() > 5,
            "{}",
            rt.name
        );
        let out = rt.run(&["events", "--interval", "0s", &id]);
        assert_eq!(out.status.code(), Some(1), "{} --interval 0s", rt.name);
        let mut stream = rt.command();
        stream.args(["events", "--interval", "200ms", &id]);
        stream.stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = stream.spawn().unwrap();
        // Two lines come, an interval apart at least (a slow machine only spaces them more).
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                if line.is_err() || tx.send(std::time::Instant::now()).is_err() {
                    return;
                }
            }
        });
        let wait = std::time::Duration::from_secs(30);
        let first = rx.recv_timeout(wait);
        let second = rx.recv_timeout(wait);
        child.kill().unwrap();
        child.wait().unwrap();
        let (first, second) = (first.unwrap(), second.unwrap());
        assert!(
            second - first >= std::time::Duration::from_millis(150),
            "{}: lines {:?} apart",
            rt.name,
            second - first
        );
        assert!(rt.run(&["kill", &id, "KILL"]).status.success());
        rt.wait_stopped(&id);
        let out = rt.run(&["events", "--stats", &id]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{} events of a stopped one",
            rt.name
        );
        assert!(rt.run(&["delete", &id]).status.success());
        let out = rt.run(&["events", "--stats", &id]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{} events of a missing one",
            rt.name
        );
    }
}

/// A mount whose destination is not absolute is taken as relative to the container's root,
/// with a warning that names it, by both runtimes.
#[test]
fn a_relative_mount_destination_is_mounted_with_a_warning_as_by_runc() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["sh", "-c", "grep -c ' /rel tmpfs ' /proc/mounts"]);
    bundle.edit(|config| {
        let mount = serde_json::json!({"destination": "rel", "type": "tmpfs", "source": "tmpfs"});
        config["mounts"].as_array_mut().unwrap().push(mount);
    });
    for rt in Runtime::both() {
        let id = unique_id("relmount");
        let path = bundle.path().to_str().unwrap();
        let out = rt.run(&["run", "--bundle", path, &id]);
        assert!(out.status.success(), "{}: {out:?}", rt.name);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "1",
            "{}",
            rt.name
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("rel") && stderr.contains("not absolute"),
            "{}: {stderr}",
            rt.name
        );
        let _ = rt.run(&["delete", "--force", &id]);
    }
}
