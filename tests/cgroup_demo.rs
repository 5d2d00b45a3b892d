//! cgroup-demo on this host's real cgroup layout. Every test prints the layout it ran on and
//! names it in its assertions: the CI host is v1-hybrid, the VM lane pure v2, and a green run
//! must say which of the two paths it proved.
//!
//! The evidence is read from the kernel: the cgroup's own counters (read by the test from the
//! cgroup's files while the command waits on its stdin), `/proc/self/cgroup` of the command,
//! and the cgroup directories, which must all be gone.

mod common;

use assert_cmd::prelude::*;
use minidock::cgroup::Version;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn layout() -> &'static str {
    let name = common::cgroup_layout_name();
    eprintln!("cgroup layout of this host: {name}");
    name
}

fn cgroup_demo() -> Command {
    let mut cmd = Command::cargo_bin("cgroup-demo").unwrap();
    cmd.arg("--quiet");
    cmd
}

fn helper() -> String {
    assert_cmd::cargo::cargo_bin("cgroup-demo")
        .to_string_lossy()
        .into_owned()
}

/// A cgroup name no other test uses.
fn unique(test: &str) -> String {
    format!("test-{test}-{}", std::process::id())
}

/// The directories named `name` under `minidock/` in any hierarchy: after a run, none.
fn leftovers(name: &str) -> Vec<PathBuf> {
    leftovers_in("minidock", name)
}

fn leftovers_in(parent: &str, name: &str) -> Vec<PathBuf> {
    let layout = minidock::cgroup::detect().expect("detecting the cgroup layout");
    let mut mounts: Vec<PathBuf> = layout.controllers.iter().map(|c| c.mount.clone()).collect();
    mounts.extend(layout.unified.clone());
    mounts.sort();
    mounts.dedup();
    mounts
        .into_iter()
        .map(|m| m.join(parent).join(name))
        .filter(|p| p.exists())
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// The number after `prefix` in the report, e.g. "= " in "= 0.50 CPU measured".
fn number_after(report: &str, prefix: &str, suffix: &str) -> Option<f64> {
    report.lines().find_map(|line| {
        let start = line.find(prefix)? + prefix.len();
        let rest = &line[start..];
        let end = rest.find(suffix)?;
        rest[..end].trim().parse().ok()
    })
}

#[test]
fn info_names_the_layout_and_where_each_controller_lives() {
    if !common::require_root() {
        return;
    }
    let layout = layout();
    let out = cgroup_demo().arg("info").output().unwrap();
    assert!(out.status.success(), "{layout}: {}", describe(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!("cgroup layout: {layout} ")),
        "{layout}: {stdout}"
    );
    for controller in ["memory", "cpu", "pids"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{controller} "))),
            "{layout}: no {controller} line in:\n{stdout}"
        );
    }
    assert!(stdout.contains("this process (pid "), "{layout}: {stdout}");
    let json = cgroup_demo().args(["info", "--json"]).output().unwrap();
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let expected_kind = match layout {
        "v1-hybrid" => "hybrid",
        other => other,
    };
    assert_eq!(value["kind"], expected_kind, "{layout}");
}

#[test]
fn a_memory_hog_is_oom_killed_at_32m_and_exits_137() {
    if !common::require_root() {
        return;
    }
    let layout = layout();
    let name = unique("oom");
    let detected = minidock::cgroup::detect().unwrap();
    let events = match detected.default_version() {
        Version::V1 => detected
            .controller("memory")
            .unwrap()
            .mount
            .join("memory.oom_control"),
        Version::V2 => detected.unified.clone().unwrap().join("memory.events"),
    };
    let (dir, file) = (events.parent().unwrap(), events.file_name().unwrap());
    let events = dir.join("minidock").join(&name).join(file);
    // A first hog is OOM-killed; then the command waits on its stdin while the test reads the
    // kernel's counter in the cgroup itself. Then it becomes a second hog, whose death by the
    // OOM killer is cgroup-demo's exit status.
    let script = r#""$0" hog --mib 256 >/dev/null; echo READY; read x; exec "$0" hog --mib 256"#;
    let (mut child, _, mut rest) = common::mounts::start_until_ready(
        cgroup_demo()
            .args(["run", "--memory", "32M", "--name", &name, "--"])
            .args(["sh", "-c", script, helper().as_str()])
            .stderr(Stdio::piped()),
        "READY",
    );
    let counters = std::fs::read_to_string(&events).unwrap();
    let kills = keyed(&counters, "oom_kill");
    assert!(
        kills >= 1,
        "{layout}: no OOM kill in {}:\n{counters}",
        events.display()
    );
    drop(child.stdin.take());
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut rest, &mut stdout).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(137), "{layout}: {}", describe(&out));
    assert!(
        stderr.contains("exit    137: killed by the OOM killer (memory limit 32 MiB)"),
        "{layout}: {stderr}"
    );
    // The hog got partway and no further: it never printed that it got everything.
    assert!(stdout.contains("hog: 8 MiB written"), "{layout}: {stdout}");
    assert!(!stdout.contains("nothing stopped me"), "{layout}: {stdout}");
    assert_eq!(
        leftovers(&name),
        Vec::<PathBuf>::new(),
        "{layout}: cgroup left behind"
    );
}

/// One key of a flat keyed cgroup file (`memory.events`, `memory.oom_control`, `cpu.stat`).
fn keyed(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
}

#[test]
fn pids_20_contains_a_fork_bomb_and_the_host_still_forks() {
    if !common::require_root() {
        return;
    }
    let layout = layout();
    let name = unique("forkbomb");
    let mut demo = cgroup_demo()
        .args(["run", "--pids", "20", "--name", &name, "--"])
        .args([helper().as_str(), "forkbomb", "--hold"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the bomb has hit the limit (it says so, then holds).
    let mut stdout = std::io::BufReader::new(demo.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert!(
        first.contains("failed with EAGAIN"),
        "{layout}: the bomb's first line: {first:?}"
    );
    // While the bomb is contained, the host forks fine.
    let host = Command::new("true").status().unwrap();
    assert!(
        host.success(),
        "{layout}: the host could not fork during the bomb"
    );
    let pids_dir = minidock::cgroup::detect()
        .unwrap()
        .controller("pids")
        .map(|c| c.mount.join("minidock").join(&name))
        .unwrap();
    let current: u64 = std::fs::read_to_string(pids_dir.join("pids.current"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        current <= 20,
        "{layout}: pids.current {current} is above pids.max 20"
    );
    // SIGTERM to cgroup-demo: forwarded to the bomb, then the cgroup is emptied and removed.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(demo.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = demo.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{layout}: {stderr}");
    let refused = number_after(&stderr, "limit, ", " fork(s) refused").unwrap_or(0.0);
    assert!(
        refused >= 1.0,
        "{layout}: the kernel refused no fork:\n{stderr}"
    );
    assert!(
        stderr.contains("pids    peak ") && stderr.contains("of 20 limit"),
        "{layout}: {stderr}"
    );
    assert_eq!(
        leftovers(&name),
        Vec::<PathBuf>::new(),
        "{layout}: cgroup left behind"
    );
}

#[test]
fn cpus_half_measures_about_half_a_cpu_from_the_cgroups_own_usage() {
    if !common::require_root() {
        return;
    }
    let layout = layout();
    // Others compile on this 2-core machine. A busy loop in minidock/NAME competes with every
    // host process at the top of the cpu hierarchy, and could get less than its half CPU for
    // that reason alone. So the test runs it under its own top-level parent with the highest
    // cpu weight: then nothing else can starve it, and only the quota holds it at 0.5.
    let detected = minidock::cgroup::detect().unwrap();
    let parent = format!("minidock-test-cpu-{}", std::process::id());
    let mut priority =
        minidock::cgroup::Cgroup::create_in(&detected, detected.default_version(), "", &parent)
            .unwrap();
    priority
        .apply(&minidock::cgroup::Resources {
            cpu_shares: Some(262_144),
            ..Default::default()
        })
        .unwrap();
    let name = unique("cpu");
    // The command times the spin, then waits on its stdin while the test reads the cgroup's
    // cpu usage from the kernel's own file.
    let usage_file = match detected.default_version() {
        Version::V1 => detected
            .controller("cpuacct")
            .unwrap()
            .mount
            .join("cpuacct.usage"),
        Version::V2 => detected.unified.clone().unwrap().join("cpu.stat"),
    };
    let (dir, file) = (
        usage_file.parent().unwrap(),
        usage_file.file_name().unwrap(),
    );
    let usage_file = dir.join(&parent).join(&name).join(file);
    let script =
        r#"date +%s%N; "$0" spin --seconds 2 >/dev/null; date +%s%N; echo READY; read x || true"#;
    let (mut child, lines, _rest) = common::mounts::start_until_ready(
        cgroup_demo()
            .args([
                "run",
                "--cpus",
                "0.5",
                "--cgroup-parent",
                &parent,
                "--name",
                &name,
                "--",
            ])
            .args(["sh", "-c", script, helper().as_str()])
            .stderr(Stdio::piped()),
        "READY",
    );
    let counters = std::fs::read_to_string(&usage_file).unwrap();
    let used_ns = match detected.default_version() {
        Version::V1 => counters.trim().parse::<u64>().unwrap(),
        Version::V2 => keyed(&counters, "usage_usec") * 1000,
    };
    let stamps: Vec<u64> = lines.iter().map(|l| l.trim().parse().unwrap()).collect();
    let wall_ns = stamps[1] - stamps[0];
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{layout}: {}", describe(&out));
    let share = used_ns as f64 / wall_ns as f64;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "{layout}: {} says {used_ns} ns used in {wall_ns} ns: {share:.2} CPU for --cpus 0.5 (loadavg {load})",
        usage_file.display()
    );
    assert!(
        (0.35..=0.65).contains(&share),
        "{layout}: measured {share} CPU, expected 0.35..0.65 (loadavg {load}):\n{stderr}"
    );
    assert!(stderr.contains("limit 0.50 CPU"), "{layout}: {stderr}");
    assert_eq!(
        leftovers_in(&parent, &name),
        Vec::<PathBuf>::new(),
        "{layout}: cgroup left behind"
    );
    priority.remove().unwrap();
}

#[test]
fn ctrl_c_is_forwarded_and_the_cgroup_is_still_removed() {
    if !common::require_root() {
        return;
    }
    let layout = layout();
    let name = unique("sigint");
    let demo = cgroup_demo()
        .args(["run", "--pids", "10", "--name", &name, "--", "sleep", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the command to be in its cgroup, then interrupt cgroup-demo.
    let deadline = Instant::now() + Duration::from_secs(20);
    while leftovers(&name).is_empty() || procs_in(&name).is_empty() {
        assert!(
            Instant::now() < deadline,
            "{layout}: the command never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(demo.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = demo.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{layout}: {}", describe(&out));
    assert!(
        text(&out.stderr).contains("killed by signal 2 (SIGINT)"),
        "{layout}"
    );
    assert_eq!(
        leftovers(&name),
        Vec::<PathBuf>::new(),
        "{layout}: cgroup left behind"
    );
}

fn procs_in(name: &str) -> String {
    leftovers(name)
        .iter()
        .filter_map(|dir| std::fs::read_to_string(dir.join("cgroup.procs")).ok())
        .collect()
}

#[test]
fn on_cgroup2_the_command_starts_inside_by_clone3_or_by_cgroup_procs() {
    if !common::require_root() {
        return;
    }
    let layout = layout();
    let detected = minidock::cgroup::detect().unwrap();
    if !common::prerequisite(
        detected.unified.is_some(),
        "this host has no cgroup2 mount (pure v1): the v2 path cannot run here",
    ) {
        return;
    }
    // On a hybrid host cgroup2 has no memory, cpu or pids controller, so the run takes no
    // limits; it still proves the v2 path: mkdir in cgroup2, clone3(CLONE_INTO_CGROUP) or the
    // fork + cgroup.procs fallback, cpu.stat, rmdir. On a v2 host it limits pids too.
    for (flag, placement) in [
        (None, "clone3(CLONE_INTO_CGROUP)"),
        (Some("--no-clone3"), "cgroup.procs before exec"),
    ] {
        let name = unique(if flag.is_some() { "procs2" } else { "clone3" });
        let mut cmd = cgroup_demo();
        cmd.args(["run", "--cgroup-version", "2", "--name", &name]);
        cmd.args(flag);
        if layout == "v2" {
            cmd.args(["--pids", "20"]);
        }
        let out = cmd
            .args(["--", "cat", "/proc/self/cgroup"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{layout}: {}", describe(&out));
        let stdout = text(&out.stdout);
        assert!(
            stdout.lines().any(|l| l == format!("0::/minidock/{name}")),
            "{layout}/{placement}: the command was not in the cgroup2 group:\n{stdout}"
        );
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("entered by {placement}")),
            "{layout}: expected {placement} (kernel {}):\n{stderr}",
            std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default()
        );
        if layout == "v2" {
            assert!(stderr.contains("of 20 limit"), "{layout}: {stderr}");
        }
        assert_eq!(
            leftovers(&name),
            Vec::<PathBuf>::new(),
            "{layout}: cgroup left behind"
        );
    }
}

/// True once /proc/PID is gone (killed and reaped by init), within a few seconds.
fn process_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for init: either way it no longer runs.
        if state.is_empty() || state.split(") ").nth(1).is_some_and(|s| s.starts_with('Z')) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn processes_left_behind_are_killed_before_the_cgroup_is_removed() {
    if !common::require_root() {
        return;
    }
    let layout = layout();
    let detected = minidock::cgroup::detect().unwrap();
    // The default hierarchy (v1 here: SIGKILL what cgroup.procs lists), and cgroup2 where the
    // host has a mount (cgroup.kill).
    let mut versions = vec!["default"];
    if detected.unified.is_some() && layout != "v2" {
        versions.push("2");
    }
    for version in versions {
        let name = unique(&format!("orphan{version}"));
        let mut cmd = cgroup_demo();
        cmd.args(["run", "--name", &name]);
        if version != "default" {
            cmd.args(["--cgroup-version", version]);
        }
        // The shell ends at once and leaves a background sleep behind in the cgroup.
        let out = cmd
            .args(["--", "sh", "-c", "sleep 600 >/dev/null 2>&1 & echo $!"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{layout}/{version}: {}",
            describe(&out)
        );
        let orphan: u32 = text(&out.stdout).trim().parse().unwrap();
        assert!(
            process_gone(orphan),
            "{layout}/{version}: the orphan {orphan} survived the cgroup's removal"
        );
        assert_eq!(
            leftovers(&name),
            Vec::<PathBuf>::new(),
            "{layout}/{version}: cgroup left behind"
        );
    }
}

#[test]
fn a_controller_missing_from_the_chosen_hierarchy_is_named_with_the_reason() {
    if !common::require_root() {
        return;
    }
    let layout = layout();
    let (version, expected) = match layout {
        "v1-hybrid" => (
            "2",
            "the v1-hybrid layout has no memory controller on cgroup2: it is attached to the v1 hierarchy",
        ),
        "v2" => (
            "1",
            "the v2 layout has no memory controller on cgroup v1: it is attached to the cgroup2 hierarchy",
        ),
        _ => ("2", "the v1 layout has no cgroup2 mount"),
    };
    let name = unique("missing");
    let out = cgroup_demo()
        .args([
            "run",
            "--cgroup-version",
            version,
            "--memory",
            "32M",
            "--name",
            &name,
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{layout}: {}", describe(&out));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.lines().count(),
        1,
        "{layout}: not one line:\n{stderr}"
    );
    assert!(stderr.contains(expected), "{layout}: {stderr}");
    assert_eq!(
        leftovers(&name),
        Vec::<PathBuf>::new(),
        "{layout}: cgroup left behind"
    );
}

#[test]
fn bad_input_is_one_line_and_leaves_no_cgroup() {
    if !common::require_root() {
        return;
    }
    let layout = layout();
    let cases: &[&[&str]] = &[
        &["--memory", "32Q"],
        &["--memory", "-1"],
        &["--memory", ""],
        &["--memory", "1M"],
        &["--memory", "32M", "--memory-swap", "16M"],
        &["--cpus", "0"],
        &["--cpus", "0.001"],
        &["--cpus", "lots"],
        &["--pids", "0"],
        &["--pids", "-5"],
        &["--cpu-shares", "1"],
        &["--cgroup-version", "3"],
        &["--name", "../escape"],
    ];
    let mut transcript = String::new();
    for (i, args) in cases.iter().enumerate() {
        let name = unique(&format!("bad{i}"));
        let mut cmd = cgroup_demo();
        cmd.arg("run").args(*args);
        if !args.contains(&"--name") {
            cmd.args(["--name", &name]);
        }
        let out = cmd.args(["--", "true"]).output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{layout}: {args:?}:\n{stderr}");
        assert_eq!(
            leftovers(&name),
            Vec::<PathBuf>::new(),
            "{layout}: {args:?} left a cgroup"
        );
        transcript.push_str(&format!("{args:?} -> {:?}: {}", out.status.code(), stderr));
    }
    insta::assert_snapshot!(transcript);
}

#[test]
fn more_cpus_than_the_machine_has_is_a_warning_like_docker() {
    if !common::require_root() {
        return;
    }
    let layout = layout();
    let name = unique("manycpus");
    let out = cgroup_demo()
        .args(["run", "--cpus", "512", "--name", &name, "--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{layout}: {}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("cgroup-demo: warning: the cpu limit of 512 CPUs is more than the "),
        "{layout}: {stderr}"
    );
    assert_eq!(
        leftovers(&name),
        Vec::<PathBuf>::new(),
        "{layout}: cgroup left behind"
    );
}

#[test]
fn a_missing_command_exits_127_and_leaves_no_cgroup() {
    if !common::require_root() {
        return;
    }
    let layout = layout();
    let name = unique("notfound");
    let out = cgroup_demo()
        .args(["run", "--name", &name, "--", "/no/such/program"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127), "{layout}: {}", describe(&out));
    assert_eq!(
        text(&out.stderr),
        "cgroup-demo: exec \"/no/such/program\": not found\n",
        "{layout}"
    );
    assert_eq!(
        leftovers(&name),
        Vec::<PathBuf>::new(),
        "{layout}: cgroup left behind"
    );
}
