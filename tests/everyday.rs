//! The everyday commands: `version`, `info`, `diff`, `pause`/`unpause`, `rename`, `update`,
//! `container prune`, `image prune`, `system df`, and the `image ...`/`container ...` aliases,
//! against a busybox image imported into a temp root per test.
//!
//! Output shapes are Docker's (the column headers, the JSON keys, the text blocks, the exit
//! codes); the values are checked against the kernel's own evidence: the freezer file and the
//! process state of a paused container, the cgroup files an update wrote, the overlay upper
//! dir a diff reads, uname, /etc/os-release, /proc/meminfo and the cgroup mounts for info.

mod common;

use assert_cmd::prelude::*;
use common::{require_busybox_overlay, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A state root with the `busybox` image imported.
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
                .prefix("minidock-everyday")
                .tempdir()
                .unwrap(),
        };
        env.import("busybox", |_| {});
        Some(env)
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    /// Imports a busybox rootfs, changed by `edit`, as image `name`.
    fn import(&self, name: &str, edit: impl FnOnce(&Path)) {
        let rootfs = tempfile::Builder::new()
            .prefix("minidock-everyday-rootfs")
            .tempdir()
            .unwrap();
        common::build_busybox_rootfs(rootfs.path());
        edit(rootfs.path());
        let tar = rootfs.path().with_extension("tar");
        common::tar_dir(rootfs.path(), &tar);
        self.ok(&["import", tar.to_str().unwrap(), name]);
        std::fs::remove_file(&tar).unwrap();
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("minidock").unwrap();
        cmd.arg("--root").arg(self.root());
        // No user config changes what info reports.
        cmd.env("MINIDOCK_CONFIG", self.root().join("config"));
        cmd
    }

    fn output(&self, args: &[&str]) -> Output {
        self.cmd().args(args).stdin(Stdio::null()).output().unwrap()
    }

    fn with_stdin(&self, args: &[&str], input: &str) -> Output {
        common::output_with_stdin(self.cmd().args(args), input.as_bytes())
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

    /// `run -d --name NAME busybox ARGS...`: the full ID.
    fn detach(&self, name: &str, args: &[&str]) -> String {
        let mut all = vec!["run", "-d", "--name", name, "busybox"];
        all.extend_from_slice(args);
        let id = self.ok(&all).trim().to_owned();
        assert_eq!(id.len(), 64, "{id}");
        id
    }

    fn inspect(&self, container: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, container])
            .trim_end()
            .to_owned()
    }

    fn pid(&self, container: &str) -> i32 {
        self.inspect(container, "{{.State.Pid}}").parse().unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let mut leftovers = common::leftovers::Leftovers::before_removal(self.root());
        let out = self.output(&["ps", "-aq", "--no-trunc"]);
        for id in text(&out.stdout).lines() {
            leftovers.removed(id, &self.output(&["rm", "-f", id]));
        }
        leftovers.check();
    }
}

/// The cgroup mounts of this host: (mount point, super options such as `freezer` or the
/// cgroup2 mount's empty list) from /proc/self/mountinfo.
fn cgroup_mounts() -> Vec<(PathBuf, String, bool)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let options = right.nth(1).unwrap_or_default().to_owned();
            let mount = PathBuf::from(left.split(' ').nth(4)?);
            match fstype {
                "cgroup" => Some((mount, options, false)),
                "cgroup2" => Some((mount, options, true)),
                _ => None,
            }
        })
        .collect()
}

fn pure_v2() -> bool {
    common::cgroup_layout_name() == "v2"
}

/// The directory of process `pid` in the v1 hierarchy of `controller`, or in the cgroup2
/// hierarchy on a pure-v2 host.
fn cgroup_dir(pid: i32, controller: &str) -> PathBuf {
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for (mount, options, v2) in cgroup_mounts() {
        let wanted = if pure_v2() {
            v2
        } else {
            !v2 && options.split(',').any(|o| o == controller)
        };
        if !wanted {
            continue;
        }
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) =
                (parts.next(), parts.next().unwrap(), parts.next().unwrap());
            let matches = if pure_v2() {
                controllers.is_empty()
            } else {
                controllers.split(',').any(|c| c == controller)
            };
            if matches {
                return mount.join(path.trim_start_matches('/'));
            }
        }
    }
    panic!("no {controller} cgroup for {pid}:\n{own}");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .trim()
        .to_owned()
}

fn process_state(pid: i32) -> char {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("State:")).unwrap();
    line["State:".len()..].trim().chars().next().unwrap()
}

fn keys(value: &serde_json::Value) -> Vec<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

// ------------------------------------------------------------------------------------------
// version
// ------------------------------------------------------------------------------------------

#[test]
fn version_prints_client_and_server_blocks() {
    let Some(env) = Env::new() else { return };
    let out = env.ok(&["version"]);
    let kernel = text(&Command::new("uname").arg("-r").output().unwrap().stdout);
    let expected_lines = [
        "Client:".to_owned(),
        format!(" Version:           {}", env!("CARGO_PKG_VERSION")),
        " API version:       1.41".to_owned(),
        " OS/Arch:           linux/amd64".to_owned(),
        " Context:           default".to_owned(),
        String::new(),
        "Server: minidock".to_owned(),
        " Engine:".to_owned(),
        format!("  Version:          {}", env!("CARGO_PKG_VERSION")),
        "  API version:      1.41 (minimum version 1.41)".to_owned(),
        "  OS/Arch:          linux/amd64".to_owned(),
        format!("  Kernel:           {}", kernel.trim()),
        "  Experimental:     false".to_owned(),
    ];
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..expected_lines.len()], expected_lines, "{out}");

    let same = env.ok(&[
        "version",
        "--format",
        "{{.Client.Version}} {{.Server.Version}}",
    ]);
    let v = env!("CARGO_PKG_VERSION");
    assert_eq!(same, format!("{v} {v}\n"));
    let json = env.json(&["version", "--format", "json"]);
    assert_eq!(keys(&json), ["Client", "Server"]);
    for key in [
        "Version",
        "ApiVersion",
        "DefaultAPIVersion",
        "Os",
        "Arch",
        "Context",
    ] {
        assert!(json["Client"].get(key).is_some(), "Client.{key}: {json}");
    }
    let server = &json["Server"];
    for key in [
        "Platform",
        "Components",
        "Version",
        "ApiVersion",
        "MinAPIVersion",
        "Os",
        "Arch",
        "KernelVersion",
    ] {
        assert!(server.get(key).is_some(), "Server.{key}: {json}");
    }
    assert_eq!(server["KernelVersion"], kernel.trim());
    assert_eq!(server["Components"][0]["Name"], "Engine");
    // {{json .}} and json are the same.
    assert_eq!(
        env.ok(&["version", "--format", "{{json .}}"]),
        env.ok(&["version", "--format", "json"])
    );
    let err = env.fails(&["version", "--format", "{{.Nope"], 1);
    assert!(err.contains("template parsing error"), "{err}");
}

// ------------------------------------------------------------------------------------------
// info
// ------------------------------------------------------------------------------------------

#[test]
fn info_counts_containers_and_reads_the_machine() {
    let Some(env) = Env::new() else { return };
    let before = env.json(&["info", "--format", "json"]);
    assert_eq!(
        (
            &before["Containers"],
            &before["ContainersRunning"],
            &before["ContainersStopped"]
        ),
        (&0.into(), &0.into(), &0.into())
    );
    assert_eq!(before["Images"], 1);
    env.detach("info-run", &["sleep", "1000"]);
    env.ok(&["run", "--name", "info-done", "busybox", "true"]);
    env.detach("info-paused", &["sleep", "1000"]);
    env.ok(&["pause", "info-paused"]);
    let info = env.json(&["info", "--format", "json"]);
    let counts = [
        "Containers",
        "ContainersRunning",
        "ContainersPaused",
        "ContainersStopped",
    ]
    .map(|k| info[k].as_u64().unwrap());
    assert_eq!(counts, [3, 1, 1, 1], "{info}");

    let uname = |arg: &str| {
        text(&Command::new("uname").arg(arg).output().unwrap().stdout)
            .trim()
            .to_owned()
    };
    assert_eq!(info["KernelVersion"], uname("-r"));
    assert_eq!(info["Architecture"], uname("-m"));
    assert_eq!(info["Name"], uname("-n"));
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap();
    let pretty = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .unwrap()
        .trim_matches('"');
    assert_eq!(info["OperatingSystem"], pretty);
    let nproc = text(&Command::new("nproc").output().unwrap().stdout);
    assert_eq!(info["NCPU"].to_string(), nproc.trim());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mem = info["MemTotal"].as_u64().unwrap();
    // sysinfo(2) and /proc/meminfo count the same pages.
    assert_eq!(mem / 1024, kib, "{info}");
    assert_eq!(info["DockerRootDir"], env.root().to_str().unwrap());
    assert_eq!(info["Driver"], "overlay2");
    assert_eq!(info["CgroupDriver"], "cgroupfs");
    let version = if pure_v2() { "2" } else { "1" };
    assert_eq!(info["CgroupVersion"], version);
    let security: Vec<&str> = info["SecurityOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut expected = vec!["name=seccomp,profile=builtin"];
    if pure_v2() {
        expected.push("name=cgroupns");
    }
    assert_eq!(security, expected);
    assert_eq!(
        info["RegistryConfig"]["InsecureRegistryCIDRs"][0],
        "127.0.0.0/8"
    );

    let out = env.ok(&["info"]);
    for line in [
        "Client:",
        "Server:",
        " Containers: 3",
        "  Running: 1",
        "  Paused: 1",
        "  Stopped: 1",
        " Images: 1",
        " Storage Driver: overlay2",
        " Cgroup Driver: cgroupfs",
        &format!(" Cgroup Version: {version}"),
        " Security Options:",
        "  seccomp",
        "   Profile: builtin",
        &format!(" Kernel Version: {}", uname("-r")),
        &format!(" Operating System: {pretty}"),
        &format!(" CPUs: {}", nproc.trim()),
        &format!(" Docker Root Dir: {}", env.root().display()),
        " Insecure Registries:",
        "  127.0.0.0/8",
    ] {
        assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
    }
    assert!(
        out.contains(" Total Memory: ") && out.contains("GiB\n"),
        "{out}"
    );
    assert_eq!(
        env.ok(&["system", "info", "--format", "{{.ContainersPaused}}"]),
        "1\n"
    );
}

// ------------------------------------------------------------------------------------------
// diff
// ------------------------------------------------------------------------------------------

#[test]
fn diff_lists_added_changed_and_deleted_paths_as_docker() {
    let Some(env) = Env::new() else { return };
    env.import("diffimg", |rootfs| {
        std::fs::create_dir_all(rootfs.join("data/keep")).unwrap();
        std::fs::write(rootfs.join("data/old"), "old").unwrap();
        std::fs::create_dir_all(rootfs.join("srv/app")).unwrap();
        std::fs::write(rootfs.join("srv/app/conf"), "a=1\n").unwrap();
        std::fs::write(rootfs.join("srv/app/gone"), "x").unwrap();
    });
    let script = "echo new > /srv/app/added; echo a=2 > /srv/app/conf; rm /srv/app/gone; \
                  rm -r /data; mkdir /data; echo n > /data/fresh; mkdir -p /opt/x; \
                  touch /opt/x/y; echo ready; sleep 1000";
    let id = env
        .ok(&[
            "run", "-d", "--name", "differ", "diffimg", "sh", "-c", script,
        ])
        .trim()
        .to_owned();
    let log_ready = || env.ok(&["logs", "differ"]).contains("ready");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !log_ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "the script never finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = env.ok(&["diff", "differ"]);
    assert_eq!(
        out,
        "D /data\nA /data/fresh\nA /opt\nA /opt/x\nA /opt/x/y\nC /srv/app\nA /srv/app/added\n\
         C /srv/app/conf\nD /srv/app/gone\n",
        "{out}"
    );
    // The kernel's evidence behind the D lines: a whiteout (char 0:0) and an opaque dir.
    let upper = PathBuf::from(env.inspect("differ", "{{.GraphDriver.Data.UpperDir}}"));
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let gone = std::fs::symlink_metadata(upper.join("srv/app/gone")).unwrap();
    assert!(gone.file_type().is_char_device() && gone.rdev() == 0);
    let opaque = xattr(&upper.join("data"), "trusted.overlay.opaque");
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]), "data is not opaque");
    // The runtime's mount points live in the init layer, below the upper dir, and are never
    // in the diff.
    assert!(!upper.join("etc/hosts").exists());
    for hidden in [
        "/etc",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/etc/hostname",
        "/dev",
        "/proc",
    ] {
        assert!(
            !out.lines().any(|l| &l[2..] == hidden),
            "{hidden} shown:\n{out}"
        );
    }
    // A stopped container still has its changes; the full ID and `container diff` work too.
    env.ok(&["stop", "-t", "0", "differ"]);
    assert_eq!(env.ok(&["container", "diff", &id]), out);
    let err = env.fails(&["diff", "no-such-container"], 1);
    assert!(err.contains("no such container"), "{err}");
}

// ------------------------------------------------------------------------------------------
// pause / unpause
// ------------------------------------------------------------------------------------------

#[test]
fn pause_freezes_the_cgroup_and_unpause_thaws_it() {
    let Some(env) = Env::new() else { return };
    let id = env.detach("frozen", &["sleep", "1000"]);
    let pid = env.pid("frozen");
    let freezer = cgroup_dir(pid, "freezer");
    let (file, frozen, thawed) = if pure_v2() {
        ("cgroup.freeze", "1", "0")
    } else {
        ("freezer.state", "FROZEN", "THAWED")
    };
    assert_eq!(read(&freezer.join(file)), thawed);
    assert_eq!(env.ok(&["pause", "frozen"]), "frozen\n");
    assert_eq!(read(&freezer.join(file)), frozen);
    if pure_v2() {
        assert!(read(&freezer.join("cgroup.events")).contains("frozen 1"));
    } else {
        // A v1-frozen task sleeps uninterruptibly in the freezer.
        assert_eq!(process_state(pid), 'D');
    }
    assert_eq!(
        env.inspect(
            "frozen",
            "{{.State.Status}} {{.State.Running}} {{.State.Paused}}"
        ),
        "paused true true"
    );
    let ps = env.ok(&["ps", "--format", "{{.Status}}|{{.State}}"]);
    assert!(
        ps.starts_with("Up ") && ps.ends_with(" (Paused)|paused\n"),
        "{ps}"
    );
    let table = env.ok(&["ps"]);
    assert!(table.contains("(Paused)"), "{table}");

    let err = env.fails(&["pause", "frozen"], 1);
    assert!(
        err.contains(&format!("Container {id} is already paused")),
        "{err}"
    );
    assert_eq!(env.ok(&["unpause", "frozen"]), "frozen\n");
    assert_eq!(read(&freezer.join(file)), thawed);
    assert_ne!(process_state(pid), 'D');
    assert_eq!(
        env.inspect("frozen", "{{.State.Status}} {{.State.Paused}}"),
        "running false"
    );
    let err = env.fails(&["unpause", "frozen"], 1);
    assert!(
        err.contains(&format!("Container {id} is not paused")),
        "{err}"
    );

    // A paused container is killed for good by kill and rm -f.
    env.ok(&["container", "pause", "frozen"]);
    env.ok(&["kill", "frozen"]);
    assert_eq!(env.ok(&["wait", "frozen"]), "137\n");
    let err = env.fails(&["pause", "frozen"], 1);
    assert!(
        err.contains(&format!("Container {id} is not running")),
        "{err}"
    );
    // dockerd 20.10: a container that does not run is "not paused".
    let err = env.fails(&["unpause", "frozen"], 1);
    assert!(
        err.contains(&format!("Container {id} is not paused")),
        "{err}"
    );
    env.detach("frozen2", &["sleep", "1000"]);
    let pid2 = env.pid("frozen2");
    env.ok(&["pause", "frozen2"]);
    env.ok(&["rm", "-f", "frozen2"]);
    assert!(!Path::new(&format!("/proc/{pid2}")).exists() || process_state(pid2) == 'Z');
    env.fails(&["pause", "no-such-container"], 1);
}

/// dockerd 20.10 thaws a paused container after the signal `kill` or `stop` sends it, unless
/// the container has a stop signal of its own and the signal is another one (then it stays
/// paused), and logs `unpause`: checked against a dockerd peer, `kill -s TERM` leaves a paused
/// `sleep` running and not paused, and `stop` of a paused container whose process traps
/// SIGTERM ends at once with the trap's exit code.
#[test]
fn a_signal_to_a_paused_container_thaws_it_as_dockerd_does() {
    let Some(env) = Env::new() else { return };
    env.detach("term", &["sleep", "1000"]);
    env.ok(&["pause", "term"]);
    assert_eq!(env.ok(&["kill", "-s", "TERM", "term"]), "term\n");
    assert_eq!(
        env.inspect("term", "{{.State.Status}} {{.State.Paused}}"),
        "running false"
    );
    // `--until` counts whole seconds: past this one, every event so far is in.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let actions = env.ok(&[
        "events",
        "--since",
        "1h",
        "--until",
        "0s",
        "--filter",
        "container=term",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(actions, "create\nstart\npause\nkill\nunpause\n");

    // Its own stop signal is USR1: TERM leaves it paused, USR1 thaws it.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "own",
        "--stop-signal",
        "USR1",
        "busybox",
        "sleep",
        "1000",
    ]);
    env.ok(&["pause", "own"]);
    env.ok(&["kill", "-s", "TERM", "own"]);
    assert_eq!(
        env.inspect("own", "{{.State.Status}} {{.State.Paused}}"),
        "paused true"
    );
    env.ok(&["kill", "-s", "USR1", "own"]);
    assert_eq!(
        env.inspect("own", "{{.State.Status}} {{.State.Paused}}"),
        "running false"
    );

    // stop: the trap runs as soon as the container is thawed, long before the timeout.
    env.detach(
        "polite",
        &[
            "sh",
            "-c",
            "trap 'exit 5' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while env.ok(&["logs", "polite"]) != "ready\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "the trap was never set"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    env.ok(&["pause", "polite"]);
    let started = std::time::Instant::now();
    assert_eq!(env.ok(&["stop", "-t", "30", "polite"]), "polite\n");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "stop waited {:?}",
        started.elapsed()
    );
    assert_eq!(
        env.inspect("polite", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 5"
    );
}

// ------------------------------------------------------------------------------------------
// rename
// ------------------------------------------------------------------------------------------

#[test]
fn rename_changes_the_name_and_refuses_as_docker() {
    let Some(env) = Env::new() else { return };
    let id = env.detach("before", &["sleep", "1000"]);
    let other = env.detach("taken", &["sleep", "1000"]);
    assert_eq!(env.ok(&["rename", "before", "after"]), "");
    assert_eq!(env.inspect(&id, "{{.Name}}"), "/after");
    env.fails(&["inspect", "before"], 1);
    let names = env.ok(&["ps", "--format", "{{.Names}}"]);
    assert!(names.lines().any(|n| n == "after"), "{names}");

    let err = env.fails(&["rename", "after", "taken"], 1);
    assert!(
        err.contains(&format!(
            "the container name \"/taken\" is already in use by container \"{other}\""
        )),
        "{err}"
    );
    let err = env.fails(&["rename", "after", "after"], 1);
    assert!(err.contains("same name as its current name"), "{err}");
    let err = env.fails(&["rename", "after", "bad/name"], 1);
    assert!(err.contains("invalid container name"), "{err}");
    env.fails(&["rename", "no-such-container", "x1"], 1);
    // The old name is free for a new container.
    env.detach("before", &["true"]);
    env.ok(&["container", "rename", "after", "again"]);
    assert_eq!(env.inspect(&id, "{{.Name}}"), "/again");
}

// ------------------------------------------------------------------------------------------
// update
// ------------------------------------------------------------------------------------------

#[test]
fn update_writes_the_cgroup_of_a_running_container() {
    let Some(env) = Env::new() else { return };
    env.detach("limited", &["sleep", "1000"]);
    let pid = env.pid("limited");
    let out = env.ok(&[
        "update",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--pids-limit",
        "50",
        "limited",
    ]);
    assert_eq!(out, "limited\n");
    if pure_v2() {
        let dir = cgroup_dir(pid, "");
        assert_eq!(read(&dir.join("memory.max")), "67108864");
        assert_eq!(read(&dir.join("cpu.max")), "50000 100000");
        // The runtime's conversion of shares to weight (runc 1.2's and crun's).
        let weight = minidock::cgroup::v2::shares_to_weight(512);
        assert_eq!(weight, 59);
        assert_eq!(read(&dir.join("cpu.weight")), weight.to_string());
        assert_eq!(read(&dir.join("pids.max")), "50");
    } else {
        assert_eq!(
            read(&cgroup_dir(pid, "memory").join("memory.limit_in_bytes")),
            "67108864"
        );
        let cpu = cgroup_dir(pid, "cpu");
        assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(&cpu.join("cpu.shares")), "512");
        assert_eq!(read(&cgroup_dir(pid, "pids").join("pids.max")), "50");
    }
    let host = env.inspect(
        "limited",
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.PidsLimit}}",
    );
    assert_eq!(host, "67108864 500000000 512 50");
    // The pids limit holds: the container never holds more than 50 tasks.
    let out = env.output(&[
        "exec",
        "limited",
        "sh",
        "-c",
        "i=0; while [ $i -lt 60 ]; do sleep 1000 >/dev/null 2>&1 & i=$((i+1)); done",
    ]);
    assert!(
        text(&out.stderr).contains("can't fork"),
        "{}",
        text(&out.stderr)
    );
    let current = if pure_v2() {
        cgroup_dir(pid, "").join("pids.current")
    } else {
        cgroup_dir(pid, "pids").join("pids.current")
    };
    // 50 at the most: the container's sleep, the exec'd shell and 48 sleeps; the shell has
    // exited since.
    assert_eq!(read(&current), "49");
    let events = read(&current.with_file_name("pids.events"));
    assert!(events.starts_with("max ") && events != "max 0", "{events}");

    // Unlimited again.
    env.ok(&["update", "--pids-limit", "-1", "limited"]);
    let pids = if pure_v2() {
        cgroup_dir(pid, "").join("pids.max")
    } else {
        cgroup_dir(pid, "pids").join("pids.max")
    };
    assert_eq!(read(&pids), "max");
    assert_eq!(env.inspect("limited", "{{.HostConfig.PidsLimit}}"), "<nil>");

    env.ok(&["update", "--restart", "always", "limited"]);
    assert_eq!(
        env.inspect("limited", "{{.HostConfig.RestartPolicy.Name}}"),
        "always"
    );
    let err = env.fails(&["update", "--restart", "always:1", "limited"], 1);
    assert!(
        err.contains("maximum retry count cannot be used with restart policy 'always'"),
        "{err}"
    );
    let err = env.fails(&["update", "limited"], 1);
    assert!(err.contains("you must provide one or more flags"), "{err}");
    env.fails(&["update", "-m", "64m", "no-such-container"], 1);
    env.fails(&["update", "-m", "1k", "limited"], 1);
    // Memory above the memory-plus-swap limit already set: refused before the kernel is asked.
    env.ok(&["update", "-m", "32m", "--memory-swap", "64m", "limited"]);
    let err = env.fails(&["update", "-m", "100m", "limited"], 1);
    assert!(
        err.contains("update the memoryswap at the same time"),
        "{err}"
    );
    env.ok(&["update", "-m", "100m", "--memory-swap", "200m", "limited"]);
    assert_eq!(
        env.inspect(
            "limited",
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}"
        ),
        "104857600 209715200"
    );
}

#[test]
fn update_of_a_stopped_container_applies_at_its_next_start() {
    let Some(env) = Env::new() else { return };
    env.ok(&["create", "--name", "later", "busybox", "sleep", "1000"]);
    env.ok(&["container", "update", "-m", "48m", "later"]);
    assert_eq!(env.inspect("later", "{{.HostConfig.Memory}}"), "50331648");
    env.ok(&["start", "later"]);
    let pid = env.pid("later");
    let limit = if pure_v2() {
        cgroup_dir(pid, "").join("memory.max")
    } else {
        cgroup_dir(pid, "memory").join("memory.limit_in_bytes")
    };
    assert_eq!(read(&limit), "50331648");
}

// ------------------------------------------------------------------------------------------
// prune, system df
// ------------------------------------------------------------------------------------------

#[test]
fn container_prune_asks_then_removes_stopped_containers() {
    let Some(env) = Env::new() else { return };
    let running = env.detach("keeps-running", &["sleep", "1000"]);
    env.ok(&["run", "--name", "stopped", "busybox", "true"]);
    let stopped = env.inspect("stopped", "{{.Id}}");
    let warning = "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ";
    let out = env.with_stdin(&["container", "prune"], "n\n");
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), warning);
    assert_eq!(env.ok(&["ps", "-aq", "--no-trunc"]).lines().count(), 2);

    let out = env.with_stdin(&["container", "prune"], "y\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(
        printed.starts_with(&format!(
            "{warning}Deleted Containers:\n{stopped}\n\nTotal reclaimed space: "
        )),
        "{printed}"
    );
    assert_eq!(env.ok(&["ps", "-aq", "--no-trunc"]), format!("{running}\n"));
    assert_eq!(
        env.ok(&["container", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
}

/// dockerd 20.10 refuses to delete by ID an image a running (or paused) container uses, even
/// forced: `conflict: unable to delete IMAGE (cannot be forced) - image is being used by
/// running container CONTAINER`, exit 1, and the image keeps its name. By name, the refusal
/// quotes the name as given.
#[test]
fn rmi_of_an_image_a_running_container_uses_is_refused_even_forced() {
    let Some(env) = Env::new() else { return };
    let id = env.detach("user", &["sleep", "1000"]);
    let image = env.ok(&["images", "-q", "busybox"]).trim().to_owned();
    let conflict = format!(
        "conflict: unable to delete {image} (cannot be forced) - image is being used by running container {}",
        &id[..12]
    );
    for args in [&["rmi", "-f", &image][..], &["rmi", &image][..]] {
        let err = env.fails(args, 1);
        assert!(err.contains(&conflict), "{args:?}: {err}");
    }
    env.ok(&["pause", "user"]);
    let err = env.fails(&["rmi", "-f", &image], 1);
    assert!(err.contains(&conflict), "{err}");
    let err = env.fails(&["rmi", "busybox"], 1);
    assert!(
        err.contains(&format!(
            "conflict: unable to remove repository reference \"busybox\" (must force) - container {} is using its referenced image {image}",
            &id[..12]
        )),
        "{err}"
    );
    assert_eq!(
        env.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "busybox:latest\n"
    );
    env.ok(&["rm", "-f", "user"]);
    let removed = env.ok(&["rmi", "-f", &image]);
    assert!(
        removed.starts_with("Untagged: busybox:latest\nDeleted: sha256:"),
        "{removed}"
    );
}

#[test]
fn image_prune_removes_dangling_then_unused_images() {
    let Some(env) = Env::new() else { return };
    env.import("spare", |rootfs| {
        std::fs::write(rootfs.join("spare"), "1").unwrap()
    });
    // A dangling image: imported without a name.
    let rootfs = common::busybox_rootfs();
    std::fs::write(rootfs.path().join("dangling"), "1").unwrap();
    let tar = rootfs.path().with_extension("tar");
    common::tar_dir(rootfs.path(), &tar);
    let dangling = env.ok(&["import", tar.to_str().unwrap()]).trim().to_owned();
    std::fs::remove_file(&tar).unwrap();
    env.detach("user", &["sleep", "1000"]);

    let out = env.with_stdin(&["image", "prune"], "\n");
    assert_eq!(
        text(&out.stdout),
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
    );
    let out = env.ok(&["image", "prune", "-f"]);
    assert!(
        out.starts_with(&format!(
            "Deleted Images:\ndeleted: {dangling}\n\nTotal reclaimed space: "
        )),
        "{out}"
    );
    let out = env.with_stdin(&["image", "prune", "-a"], "y\n");
    let printed = text(&out.stdout);
    assert!(
        printed.starts_with(
            "WARNING! This will remove all images without at least one container associated to \
             them.\nAre you sure you want to continue? [y/N] Deleted Images:\nuntagged: spare:latest\n"
        ),
        "{printed}"
    );
    let left = env.ok(&["image", "ls", "--format", "{{.Repository}}"]);
    assert_eq!(left, "busybox\n");
}

#[test]
fn system_df_counts_images_and_containers() {
    let Some(env) = Env::new() else { return };
    let empty = env.ok(&["system", "df"]);
    let lines: Vec<Vec<&str>> = empty
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(lines[0], ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    assert_eq!(lines[1][..3], ["Images", "1", "0"]);
    assert!(lines[1][4].ends_with("(100%)"), "{empty}");
    assert_eq!(lines[2], ["Containers", "0", "0", "0B", "0B"]);
    assert_eq!(lines[3], ["Local Volumes", "0", "0", "0B", "0B"]);
    assert_eq!(lines[4], ["Build Cache", "0", "0", "0B", "0B"]);

    env.detach(
        "writer",
        &["sh", "-c", "head -c 300000 /dev/zero > /blob; sleep 1000"],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let upper = PathBuf::from(env.inspect("writer", "{{.GraphDriver.Data.UpperDir}}"));
    while std::fs::metadata(upper.join("blob")).map_or(true, |m| m.len() < 300000) {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never wrote"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    env.ok(&["run", "--name", "done", "busybox", "true"]);
    let rows: Vec<serde_json::Value> = env
        .ok(&["system", "df", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        keys(&rows[0]),
        ["Active", "Reclaimable", "Size", "TotalCount", "Type"]
    );
    assert_eq!(
        (&rows[0]["Type"], &rows[0]["TotalCount"], &rows[0]["Active"]),
        (&"Images".into(), &"1".into(), &"1".into())
    );
    assert_eq!(rows[0]["Reclaimable"], "0B (0%)");
    assert_eq!(
        (&rows[1]["Type"], &rows[1]["TotalCount"], &rows[1]["Active"]),
        (&"Containers".into(), &"2".into(), &"1".into())
    );
    assert_eq!(rows[1]["Size"], "300kB", "{:?}", rows[1]);
    assert_eq!(
        env.ok(&["system", "df", "--format", "{{.Type}}={{.TotalCount}}"]),
        "Images=1\nContainers=2\nLocal Volumes=0\nBuild Cache=0\n"
    );
    let verbose = env.ok(&["system", "df", "-v"]);
    for header in [
        "Images space usage:",
        "Containers space usage:",
        "Local Volumes space usage:",
        "Build cache usage: 0B",
    ] {
        assert!(verbose.lines().any(|l| l == header), "{header}: {verbose}");
    }
    let columns = |prefix: &str| -> Vec<String> {
        let line = verbose.lines().find(|l| l.starts_with(prefix)).unwrap();
        line.split("  ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        columns("REPOSITORY"),
        [
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS"
        ]
    );
    assert_eq!(
        columns("CONTAINER ID"),
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "LOCAL VOLUMES",
            "SIZE",
            "CREATED",
            "STATUS",
            "NAMES"
        ]
    );
    assert_eq!(columns("VOLUME NAME"), ["VOLUME NAME", "LINKS", "SIZE"]);
    let busybox = columns("busybox");
    assert_eq!(busybox.last().unwrap(), "2");
}

// ------------------------------------------------------------------------------------------
// aliases
// ------------------------------------------------------------------------------------------

#[test]
fn management_aliases_run_the_same_commands() {
    let Some(env) = Env::new() else { return };
    let id = env.detach("aliased", &["sleep", "1000"]);
    // The same command: the same header and the same rows (the times left out, since
    // they move between two runs).
    let no_times = "{{.ID}} {{.Repository}}:{{.Tag}} {{.Size}}";
    // The header's words: a column's width follows its widest cell, and a STATUS such as
    // `Up 1 second` can grow to `Up 2 seconds` between two runs.
    let header = |args: &[&str]| {
        let out = env.ok(args);
        out.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(header(&["image", "ls"]), header(&["images"]));
    assert_eq!(
        env.ok(&["image", "ls", "--format", no_times]),
        env.ok(&["images", "--format", no_times])
    );
    assert_eq!(env.ok(&["image", "list", "-q"]), env.ok(&["images", "-q"]));
    let history = "{{.ID}} {{.CreatedBy}} {{.Size}}";
    assert_eq!(
        env.ok(&["image", "history", "--format", history, "busybox"]),
        env.ok(&["history", "--format", history, "busybox"])
    );
    assert_eq!(
        env.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]),
        env.ok(&["inspect", "-f", "{{.Image}}", "aliased"])
    );
    env.ok(&["image", "tag", "busybox", "copy:1"]);
    env.ok(&["image", "rm", "copy:1"]);
    let tar = env.root().join("saved.tar");
    env.ok(&["image", "save", "-o", tar.to_str().unwrap(), "busybox"]);
    assert!(
        env.ok(&["image", "load", "-i", tar.to_str().unwrap()])
            .contains("busybox")
    );
    let rows = "{{.ID}} {{.Image}} {{.Command}} {{.State}} {{.Names}}";
    for listing in [
        ["container", "ls"],
        ["container", "list"],
        ["container", "ps"],
    ] {
        assert_eq!(header(&listing), header(&["ps"]), "{listing:?}");
        let mut with_format = listing.to_vec();
        with_format.extend(["--format", rows]);
        assert_eq!(env.ok(&with_format), env.ok(&["ps", "--format", rows]));
    }
    assert_eq!(
        env.ok(&["container", "ls", "-aq", "--no-trunc"]),
        format!("{id}\n")
    );
    assert_eq!(
        env.ok(&["container", "inspect", "-f", "{{.Id}}", "aliased"]),
        format!("{id}\n")
    );
    assert_eq!(
        env.ok(&["container", "exec", "aliased", "echo", "hi"]),
        "hi\n"
    );
    assert!(env.ok(&["container", "top", "aliased"]).contains("sleep"));
    env.ok(&["container", "stop", "-t", "0", "aliased"]);
    assert_eq!(env.ok(&["container", "wait", "aliased"]), "137\n");
    env.ok(&["container", "rm", "aliased"]);
    assert_eq!(env.ok(&["container", "ls", "-aq"]), "");
    // Only the commands that exist: no `container prune` at the top level. An unknown command
    // exits 1, as Docker's CLI does.
    env.fails(&["prune"], 1);
}

/// The value of the extended attribute `name` of `path` (not following a symlink), or `None`.
fn xattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let name = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: both strings are NUL-terminated and `buf` is valid for its length.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n >= 0).then(|| {
        buf.truncate(n as usize);
        buf
    })
}

// ------------------------------------------------------------------------------------------
// events of restart, update and the prunes
// ------------------------------------------------------------------------------------------

/// Now as `--since`/`--until` take it: Unix seconds with nine fraction digits.
fn unix_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}

#[test]
fn restart_update_and_prunes_record_dockerds_events() {
    let Some(env) = Env::new() else { return };
    let id = env.detach("cycled", &["sleep", "1000"]);
    let stopped = env.ok(&["create", "--name", "unused", "busybox", "true"]);
    let stopped = stopped.trim();
    env.ok(&["volume", "create", "spare"]);
    let since = unix_now();
    assert_eq!(env.ok(&["restart", "-t", "1", "cycled"]), "cycled\n");
    assert_eq!(env.inspect("cycled", "{{.State.Status}}"), "running");
    assert_eq!(
        env.ok(&["update", "--cpu-shares", "512", "cycled"]),
        "cycled\n"
    );
    env.ok(&["container", "prune", "-f"]);
    assert!(env.ok(&["volume", "prune", "-f", "-a"]).contains("spare"));
    env.ok(&["image", "prune", "-f"]);
    env.ok(&["network", "prune", "-f"]);
    let until = unix_now();
    let events = env.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "event=start",
        "--filter",
        "event=restart",
        "--filter",
        "event=update",
        "--filter",
        "event=destroy",
        "--filter",
        "event=prune",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}",
    ]);
    let lines: Vec<&str> = events.lines().collect();
    let attrs = r#"{"image":"busybox","name":"cycled"}"#;
    assert_eq!(lines.len(), 8, "{events}");
    assert_eq!(
        &lines[..4],
        &[
            format!("container start {id} {attrs}"),
            format!("container restart {id} {attrs}"),
            format!("container update {id} {attrs}"),
            format!(r#"container destroy {stopped} {{"image":"busybox","name":"unused"}}"#),
        ],
        "{events}"
    );
    for (line, kind) in lines[4..]
        .iter()
        .zip(["container", "volume", "image", "network"])
    {
        let bytes = line
            .strip_prefix(&format!(r#"{kind} prune  {{"reclaimed":""#))
            .and_then(|tail| tail.strip_suffix(r#""}"#))
            .unwrap_or_else(|| panic!("{kind} prune: {events}"));
        assert!(bytes.parse::<u64>().is_ok(), "{events}");
    }
}
