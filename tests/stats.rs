//! `stats`: Docker's columns and `{{json .}}` keys, and values checked against the kernel's
//! own counters: a busy container's CPU %, the bytes a container put into a tmpfs, the `-m`
//! limit, and `pids.current` of the container's cgroup. Runs on v1 (hybrid) and, in the VM
//! lane, on pure v2. The same columns next to Docker's own output: tests/docker_stats.rs.

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
                .prefix("minidock-stats")
                .tempdir()
                .unwrap(),
        };
        let rootfs = tempfile::Builder::new()
            .prefix("minidock-stats-rootfs")
            .tempdir()
            .unwrap();
        common::build_busybox_rootfs(rootfs.path());
        let tar = rootfs.path().with_extension("tar");
        common::tar_dir(rootfs.path(), &tar);
        env.ok(&["import", tar.to_str().unwrap(), "busybox"]);
        std::fs::remove_file(&tar).unwrap();
        Some(env)
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

    /// `run -d --name NAME [FLAGS...] busybox ARGS...`.
    fn detach(&self, name: &str, flags: &[&str], args: &[&str]) -> String {
        let mut all = vec!["run", "-d", "--name", name];
        all.extend_from_slice(flags);
        all.push("busybox");
        all.extend_from_slice(args);
        self.ok(&all).trim().to_owned()
    }

    fn pid(&self, container: &str) -> i32 {
        self.ok(&["inspect", "-f", "{{.State.Pid}}", container])
            .trim()
            .parse()
            .unwrap()
    }

    /// One `stats --no-stream --format '{{json .}}'` row of a container.
    fn stats(&self, container: &str) -> serde_json::Map<String, serde_json::Value> {
        let out = self.ok(&["stats", "--no-stream", "--format", "{{json .}}", container]);
        let value: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        value.as_object().unwrap().clone()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let out = self.output(&["ps", "-aq", "--no-trunc"]);
        for id in text(&out.stdout).lines() {
            let _ = self.output(&["rm", "-f", id]);
        }
    }
}

fn field(row: &serde_json::Map<String, serde_json::Value>, key: &str) -> String {
    row[key].as_str().unwrap().to_owned()
}

fn percent(text: &str) -> f64 {
    text.strip_suffix('%').unwrap().parse().unwrap()
}

/// `1.5MiB` etc. in bytes (the binary units of MEM USAGE).
fn binary_bytes(text: &str) -> f64 {
    let units = [
        ("GiB", 1u64 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("B", 1),
    ];
    for (unit, scale) in units {
        if let Some(number) = text.strip_suffix(unit) {
            return number.parse::<f64>().unwrap() * scale as f64;
        }
    }
    panic!("not a size: {text}");
}

/// The container's cgroup directory holding `file` (its v1 hierarchy, or the v2 directory).
fn cgroup_file(pid: i32, file: &str) -> PathBuf {
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for mount_line in info.lines() {
        let Some((left, right)) = mount_line.split_once(" - ") else {
            continue;
        };
        if !right.starts_with("cgroup") {
            continue;
        }
        let mount = Path::new(left.split(' ').nth(4).unwrap());
        let root = left.split(' ').nth(3).unwrap();
        for line in own.lines() {
            let path = line.splitn(3, ':').nth(2).unwrap();
            let relative = path.strip_prefix(root).unwrap_or(path);
            let candidate = mount.join(relative.trim_start_matches('/')).join(file);
            if candidate.exists() {
                return candidate;
            }
        }
    }
    panic!("no {file} for {pid}:\n{own}");
}

#[test]
fn the_table_has_dockers_columns_and_json_has_dockers_keys() {
    let Some(env) = Env::new() else { return };
    env.detach("stats-cols", &[], &["sleep", "100"]);
    let out = env.ok(&["stats", "--no-stream"]);
    let header = out.lines().next().unwrap();
    let columns: Vec<&str> = header
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        columns,
        [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS"
        ],
        "{out}"
    );
    let row = env.stats("stats-cols");
    let keys: Vec<&str> = row.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "BlockIO",
            "CPUPerc",
            "Container",
            "ID",
            "MemPerc",
            "MemUsage",
            "Name",
            "NetIO",
            "PIDs"
        ]
    );
    assert_eq!(field(&row, "Container"), "stats-cols");
    assert_eq!(field(&row, "Name"), "stats-cols");
    assert_eq!(field(&row, "ID").len(), 12);
    // --network none (the default here): only the loopback, which Docker does not count.
    assert_eq!(field(&row, "NetIO"), "0B / 0B");
}

#[test]
fn a_busy_container_shows_cpu_and_an_idle_one_does_not() {
    let Some(env) = Env::new() else { return };
    env.detach("stats-busy", &[], &["sh", "-c", "yes >/dev/null"]);
    env.detach("stats-idle", &[], &["sleep", "100"]);
    // One busy process is a whole CPU (100%) on an idle machine; other work on a shared
    // machine can take some of it in any one second, so the best of three samples counts.
    let busy = (0..3)
        .map(|_| percent(&field(&env.stats("stats-busy"), "CPUPerc")))
        .fold(0.0, f64::max);
    assert!(busy > 50.0, "yes used {busy}% of the CPUs");
    let idle = percent(&field(&env.stats("stats-idle"), "CPUPerc"));
    assert!(idle < 5.0, "sleep used {idle}% of the CPUs");
}

#[test]
fn memory_is_what_the_container_allocated_within_its_limit() {
    let Some(env) = Env::new() else { return };
    env.detach(
        "stats-mem",
        &["-m", "64m"],
        &[
            "sh",
            "-c",
            "head -c 20m /dev/zero > /dev/shm/fill && sleep 100",
        ],
    );
    let pid = env.pid("stats-mem");
    // Wait until the file is written: its size is the kernel's evidence.
    let fill = PathBuf::from(format!("/proc/{pid}/root/dev/shm/fill"));
    while std::fs::metadata(&fill).map(|m| m.len()).unwrap_or(0) < 20 << 20 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let row = env.stats("stats-mem");
    let usage = field(&row, "MemUsage");
    let (used, limit) = usage.split_once(" / ").unwrap();
    assert_eq!(limit, "64MiB", "{usage}");
    let used = binary_bytes(used);
    assert!(
        (20.0 * 1048576.0..28.0 * 1048576.0).contains(&used),
        "20 MiB in a tmpfs, but MEM USAGE is {usage}"
    );
    // MEM USAGE is printed to 0.01 MiB and MEM % to 0.01 %: both roundings count.
    let expected = used / (64.0 * 1048576.0) * 100.0;
    assert!(
        (percent(&field(&row, "MemPerc")) - expected).abs() < 0.02,
        "{row:?}"
    );
}

#[test]
fn pids_is_the_cgroups_pids_current() {
    let Some(env) = Env::new() else { return };
    env.detach(
        "stats-pids",
        &[],
        &["sh", "-c", "sleep 100 & sleep 100 & sleep 100 & wait"],
    );
    let pid = env.pid("stats-pids");
    let current = cgroup_file(pid, "pids.current");
    while std::fs::read_to_string(&current).unwrap().trim() != "4" {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let row = env.stats("stats-pids");
    assert_eq!(field(&row, "PIDs"), "4");
    assert_eq!(
        field(&row, "PIDs"),
        std::fs::read_to_string(&current).unwrap().trim()
    );
}

#[test]
fn stopped_containers_show_zeros_with_all_and_unknown_ones_exit_1() {
    let Some(env) = Env::new() else { return };
    env.ok(&["create", "--name", "stats-stopped", "busybox", "true"]);
    let running = env.ok(&["stats", "--no-stream"]);
    assert!(!running.contains("stats-stopped"), "{running}");
    let all = env.ok(&[
        "stats",
        "--no-stream",
        "-a",
        "--format",
        "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.MemPerc}} {{.NetIO}} {{.BlockIO}} {{.PIDs}}",
    ]);
    assert_eq!(all, "stats-stopped 0.00% 0B / 0B 0.00% 0B / 0B 0B / 0B 0\n");
    let out = env.output(&["stats", "--no-stream", "stats-nosuch"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr)
            .to_lowercase()
            .contains("no such container: stats-nosuch"),
        "{out:?}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn streaming_redraws_the_table_after_clearing_the_screen() {
    use std::io::Read;
    let Some(env) = Env::new() else { return };
    env.detach("stats-stream", &[], &["sleep", "100"]);
    let mut child = Command::cargo_bin("minidock")
        .unwrap()
        .arg("--root")
        .arg(env.root.path())
        .args(["stats", "stats-stream"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let clear = "\x1b[2J\x1b[H";
    // Two whole frames: each starts with ESC[2J ESC[H (clear, cursor home) and the header.
    while String::from_utf8_lossy(&seen).matches(clear).count() < 3 {
        let mut buffer = [0u8; 4096];
        let n = stdout.read(&mut buffer).unwrap();
        assert!(n > 0, "stats ended: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buffer[..n]);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = String::from_utf8_lossy(&seen).into_owned();
    let frames: Vec<&str> = text.split(clear).skip(1).take(2).collect();
    for frame in frames {
        let lines: Vec<&str> = frame.lines().collect();
        assert_eq!(lines.len(), 2, "{frame:?}");
        assert!(lines[0].starts_with("CONTAINER ID   NAME"), "{frame:?}");
        assert!(lines[1].contains("stats-stream"), "{frame:?}");
    }
}
