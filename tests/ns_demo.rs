//! ns-demo: each namespace's effect, asserted from the kernel's own evidence.

mod common;

use assert_cmd::prelude::*;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

fn ns_demo() -> Command {
    let mut cmd = Command::cargo_bin("ns-demo").unwrap();
    cmd.arg("--quiet");
    cmd
}

/// ns-demo run as the unprivileged user nobody.
fn ns_demo_as_nobody() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("ns-demo"));
    cmd.arg("--quiet").uid(65534).gid(65534);
    cmd
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn host_hostname() -> String {
    nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn own_ns(name: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn uts_sets_the_hostname_inside_and_leaves_the_host_alone() {
    if !common::require_root() {
        return;
    }
    let before = host_hostname();
    let out = stdout_of(ns_demo().args([
        "run",
        "--uts",
        "--hostname",
        "box",
        "--",
        "sh",
        "-c",
        "hostname; readlink /proc/self/ns/uts",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "box");
    assert_ne!(
        lines[1],
        own_ns("uts"),
        "the command ran in our own UTS namespace"
    );
    assert_eq!(host_hostname(), before);
}

#[test]
fn pid_makes_the_command_pid_1_with_a_fresh_proc() {
    if !common::require_root() {
        return;
    }
    let out = stdout_of(ns_demo().args([
        "run",
        "--pid",
        "--mount",
        "--",
        "sh",
        "-c",
        "echo $$; ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1");
    // Only the shell (1) and the pipeline's own processes: none of the host's.
    let pids: Vec<u32> = lines[1]
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids[0], 1);
    assert!(
        pids.len() <= 6,
        "host processes leaked into /proc: {pids:?}"
    );
}

#[test]
fn rootfs_pivots_into_busybox_and_hides_the_host() {
    if !common::require_root()
        || !common::prerequisite(
            std::path::Path::new("/bin/busybox").exists(),
            "busybox-static (/bin/busybox) is not installed",
        )
    {
        return;
    }
    let rootfs = common::busybox_rootfs();
    // A marker file that exists only on the host, next to the rootfs.
    let marker = tempfile::NamedTempFile::new().unwrap();
    let marker_path = marker.path().to_str().unwrap().to_owned();
    // The command waits on its stdin at the end, so its mount namespace can be read from the
    // host while it lives: from inside, mountinfo hides whatever is outside the root (a
    // chroot would pass an inside-only check).
    let script = format!(
        "ls /; test -e {marker_path} && echo host-visible || echo host-hidden; cat /proc/self/mountinfo; echo READY; read x || true"
    );
    let (mut child, lines, _rest) = common::mounts::start_until_ready(
        ns_demo()
            .arg("run")
            .arg("--all")
            .arg("--rootfs")
            .arg(rootfs.path())
            .args(["--", "sh", "-c", &script]),
        "READY",
    );
    let namespaces = common::mounts::descendant_namespaces_mountinfo(child.id());
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "ns-demo: {status:?}\n{lines:?}");
    let out = lines.join("\n");
    let listing: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .take_while(|l| !l.starts_with("host-"))
        .collect();
    let expected: Vec<String> = {
        let mut names: Vec<String> = std::fs::read_dir(rootfs.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(listing, expected, "/ inside is not the rootfs");
    assert!(out.contains("host-hidden"), "{out}");
    let mount_points: Vec<&str> = out.lines().filter_map(|l| l.split(' ').nth(4)).collect();
    assert!(mount_points.contains(&"/proc"), "{out}");
    assert!(mount_points.contains(&"/dev/pts"), "{out}");
    // The old root was detached: the command's whole mount namespace, read from the host,
    // holds no mount of the host's / (a chroot would leave it there, hidden from inside).
    assert!(
        !namespaces.is_empty(),
        "the command is not in a mount namespace of its own"
    );
    for table in &namespaces {
        let old = common::mounts::old_root_mounts(table);
        assert!(
            old.is_empty(),
            "the host's / is still mounted at {old:?}:\n{table}"
        );
    }
    // Nothing stays mounted on the host.
    assert!(common::mounts_containing(rootfs.path().to_str().unwrap()).is_empty());
}

#[test]
fn net_shows_only_lo() {
    if !common::require_root() {
        return;
    }
    let out = stdout_of(ns_demo().args([
        "run",
        "--net",
        "--",
        "sh",
        "-c",
        "ls /sys/class/net >/dev/null; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
    ]));
    assert_eq!(out.trim(), "lo");
}

#[test]
fn user_maps_root_inside_to_the_caller_outside() {
    if !common::require_root() {
        return;
    }
    // As root, 0 maps to 0, which proves nothing: run ns-demo as nobody instead. An
    // unprivileged user gets uid 0 (and a hostname of its own) inside a user namespace.
    let out = stdout_of(ns_demo_as_nobody().args([
        "run",
        "--user",
        "--uts",
        "--hostname",
        "userns",
        "--",
        "sh",
        "-c",
        "id -u; hostname; cat /proc/self/uid_map",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0");
    assert_eq!(lines[1], "userns");
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["0", "65534", "1"]
    );
}

#[test]
fn ipc_and_cgroup_namespaces_are_new() {
    if !common::require_root() {
        return;
    }
    let out = stdout_of(ns_demo().args([
        "run",
        "--ipc",
        "--cgroup",
        "--",
        "sh",
        "-c",
        "readlink /proc/self/ns/ipc; readlink /proc/self/ns/cgroup; grep '^0::' /proc/self/cgroup",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_ne!(lines[0], own_ns("ipc"));
    assert_ne!(lines[1], own_ns("cgroup"));
    assert_eq!(lines[2], "0::/");
}

#[test]
fn exit_status_is_the_commands_own_and_exec_failures_are_126_or_127() {
    if !common::require_root() {
        return;
    }
    ns_demo()
        .args(["run", "--uts", "--", "sh", "-c", "exit 7"])
        .assert()
        .code(7);
    let out = ns_demo()
        .args(["run", "--uts", "--", "no-such-command-xyz"])
        .assert()
        .code(127);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(
        stderr.trim(),
        "ns-demo: exec \"no-such-command-xyz\": executable file not found"
    );
    // A file that exists but has no execute bit.
    let not_executable = tempfile::NamedTempFile::new().unwrap();
    ns_demo()
        .args(["run", "--uts", "--"])
        .arg(not_executable.path())
        .assert()
        .code(126);
    // Killed by a signal: 128 + signal number, as a shell reports it. (Not with --pid: the
    // kernel ignores SIGKILL sent to a namespace's PID 1 from inside it, pid_namespaces(7).)
    ns_demo()
        .args(["run", "--uts", "--", "sh", "-c", "kill -9 $$"])
        .assert()
        .code(137);
}

#[test]
fn bad_input_gets_one_line_and_no_panic() {
    let out = ns_demo()
        .args(["run", "--rootfs", "/definitely/not/here", "--", "true"])
        .assert()
        .code(125);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn without_root_it_says_what_is_missing() {
    if !common::require_root() {
        return;
    }
    let out = ns_demo_as_nobody()
        .args(["run", "--uts", "--", "true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("needs root"), "{stderr}");
    assert!(stderr.contains("--user"), "{stderr}");
}

#[test]
fn the_tour_shows_every_namespace() {
    if !common::require_root() {
        return;
    }
    let tour = ns_demo()
        .arg("tour")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let tour_pid = tour.id();
    let out = tour.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = String::from_utf8(out.stdout).unwrap();
    let hostname = regex_escape(&host_hostname());
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"(uts|pid|mnt|ipc|net|user|cgroup):\[\d+\]", "$1:[INODE]");
    settings.add_filter(r"pid (is )?\d+", "pid $1[PID]");
    settings.add_filter(r"minidock-tour-\d+", "minidock-tour-[PID]");
    settings.add_filter(&format!("hostname \"{hostname}\""), "hostname \"[HOST]\"");
    settings.bind(|| insta::assert_snapshot!(out));
    // Beyond the snapshot: every inside namespace differs from the outside one.
    for ns in ["uts", "pid", "mnt", "ipc", "net", "user", "cgroup"] {
        let ids: Vec<&str> = out
            .lines()
            .filter_map(|l| {
                l.split_whitespace()
                    .find(|w| w.starts_with(&format!("{ns}:[")))
            })
            .collect();
        assert_eq!(ids.len(), 2, "{ns}: {ids:?}");
        assert_ne!(ids[0], ids[1], "{ns} namespace did not change");
    }
    // The tour's cgroup, named after its pid, is gone from the cgroup2 mount (at
    // /sys/fs/cgroup/unified on a hybrid host, /sys/fs/cgroup on a pure v2 one).
    let cgroup2 = cgroup2_mount();
    assert!(
        cgroup2.join("cgroup.procs").is_file(),
        "{}",
        cgroup2.display()
    );
    let left = cgroup2.join(format!("minidock-tour-{tour_pid}"));
    assert!(
        out.contains(&format!("/minidock-tour-{tour_pid}")),
        "the tour did not use {}:\n{out}",
        left.display()
    );
    assert!(!left.exists(), "the tour left {} behind", left.display());
}

/// Where cgroup2 is mounted, from this process's mount table.
fn cgroup2_mount() -> std::path::PathBuf {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.contains(" - cgroup2 "))
        .and_then(|l| l.split(' ').nth(4))
        .map(std::path::PathBuf::from)
        .expect("no cgroup2 mount")
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}
