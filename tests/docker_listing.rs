//! `stats`, `ps` and `images` next to Docker's: a private Debian `dockerd`
//! (tests/common/dockerd.rs) and minidock run the same containers, and what does not depend on
//! the moment must be the same text: `stats`' column names, JSON keys, the `-m` limit, NET I/O
//! without a network, PIDS, the zeros of a container that is not running; which containers
//! and images each `--filter`, `-n`, `-l` and `-s` selects; and the exit codes and messages of
//! bad filters and unknown names.

mod common;

use assert_cmd::prelude::*;
use common::dockerd::{Dockerd, require_docker};
use common::text;
use std::process::{Command, Output, Stdio};

struct Minidock {
    root: tempfile::TempDir,
}

impl Minidock {
    fn new() -> Minidock {
        let minidock = Minidock {
            root: tempfile::Builder::new()
                .prefix("minidock-docker-stats")
                .tempdir()
                .unwrap(),
        };
        let rootfs = common::busybox_rootfs();
        let tar = rootfs.path().with_extension("tar");
        common::tar_dir(rootfs.path(), &tar);
        minidock.ok(&["import", tar.to_str().unwrap(), "busybox"]);
        std::fs::remove_file(&tar).unwrap();
        minidock
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

    /// Runs `args` under both; docker's stderr (without its `Error response from daemon: `)
    /// must be in ours (minidock says `no such container` in lower case), and the exit code
    /// and stdout the same.
    fn same(&self, docker: &Dockerd, args: &[&str]) {
        let (ours, theirs) = (self.output(args), docker.docker(args));
        assert_eq!(
            ours.status.code(),
            theirs.status.code(),
            "{args:?}\nours: {ours:?}\ndocker's: {theirs:?}"
        );
        assert_eq!(text(&ours.stdout), text(&theirs.stdout), "{args:?}");
        let message = text(&theirs.stderr);
        let message = message
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("Error response from daemon: ");
        assert!(
            text(&ours.stderr)
                .to_lowercase()
                .contains(&message.to_lowercase()),
            "{args:?}: ours {:?}, docker's {message:?}",
            text(&ours.stderr)
        );
    }
}

impl Drop for Minidock {
    fn drop(&mut self) {
        for id in text(&self.output(&["ps", "-aq", "--no-trunc"]).stdout).lines() {
            let _ = self.output(&["rm", "-f", id]);
        }
    }
}

/// The column names of a table's header line (cells are 3 or more spaces apart).
fn columns(table: &str) -> Vec<String> {
    let header = table.lines().next().unwrap_or_default();
    header
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

fn json_keys(line: &str) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    value.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn stats_prints_what_docker_prints() {
    if !require_docker() {
        return;
    }
    let docker = Dockerd::start();
    docker.load_busybox();
    let minidock = Minidock::new();
    let run = [
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "stats-same",
        "-m",
        "64m",
    ];
    let command = ["busybox", "sh", "-c", "sleep 100 & sleep 100"];
    docker.ok(&[&run[..], &command[..]].concat());
    minidock.ok(&[&run[..], &command[..]].concat());
    let create = [
        "create",
        "--network",
        "none",
        "--name",
        "stats-idle",
        "busybox",
        "true",
    ];
    docker.ok(&create);
    minidock.ok(&create);

    // The default table: the same columns.
    let theirs = docker.ok(&["stats", "--no-stream"]);
    let ours = minidock.ok(&["stats", "--no-stream"]);
    assert_eq!(
        columns(&ours),
        columns(&theirs),
        "ours:\n{ours}\ndocker's:\n{theirs}"
    );
    assert_eq!(
        ours.lines().count(),
        theirs.lines().count(),
        "{ours}{theirs}"
    );

    // `{{json .}}`: the same keys.
    let json = [
        "stats",
        "--no-stream",
        "--format",
        "{{json .}}",
        "stats-same",
    ];
    assert_eq!(json_keys(&minidock.ok(&json)), json_keys(&docker.ok(&json)));

    // What does not depend on the moment: the same text.
    let steady = [
        "stats",
        "--no-stream",
        "--format",
        "{{.Container}}|{{.Name}}|{{.NetIO}}|{{.PIDs}}|{{.MemUsage}}",
        "stats-same",
    ];
    // MEM USAGE itself varies from run to run: its limit does not.
    let without_usage = |out: String| -> String {
        let (head, usage) = out.trim_end().rsplit_once('|').unwrap();
        format!("{head}|{}", usage.split_once(" / ").unwrap().1)
    };
    let ours = without_usage(minidock.ok(&steady));
    assert_eq!(ours, without_usage(docker.ok(&steady)));
    assert!(
        ours.ends_with("|0B / 0B|2|64MiB") || ours.ends_with("|0B / 0B|3|64MiB"),
        "{ours}"
    );

    // A container that is not running: zeros, and the whole text is the same.
    let idle = [
        "stats",
        "--no-stream",
        "--format",
        "table {{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
        "stats-idle",
    ];
    assert_eq!(minidock.ok(&idle), docker.ok(&idle));

    // An unknown container: exit 1, and Docker's words.
    let missing = ["stats", "--no-stream", "stats-nosuch"];
    let (ours, theirs) = (minidock.output(&missing), docker.docker(&missing));
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "{ours:?} {theirs:?}"
    );
    assert_eq!(ours.status.code(), Some(1));
    for out in [&ours, &theirs] {
        let stderr = text(&out.stderr).to_lowercase();
        assert!(
            stderr.contains("no such container: stats-nosuch"),
            "{stderr}"
        );
    }
}

#[test]
fn ps_and_images_filters_select_what_docker_selects() {
    if !require_docker() {
        return;
    }
    let docker = Dockerd::start();
    docker.load_busybox();
    let minidock = Minidock::new();
    // The same containers, in the same order (ps lists the newest first).
    let steps: &[&[&str]] = &[
        &["tag", "busybox", "bb2:v1"],
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "web1",
            "busybox",
            "sleep",
            "100",
        ],
        &[
            "run",
            "--network",
            "none",
            "--name",
            "ex3",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ],
        &[
            "create",
            "--network",
            "none",
            "--name",
            "cr1",
            "bb2:v1",
            "true",
        ],
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "pp1",
            "busybox",
            "sleep",
            "100",
        ],
        &["pause", "pp1"],
    ];
    for step in steps {
        let _ = docker.docker(step);
        let _ = minidock.output(step);
    }
    let names = ["--format", "{{.Names}}"];
    let cases: &[&[&str]] = &[
        &["ps", "--filter", "status=exited"],
        &[
            "ps",
            "--filter",
            "status=paused",
            "--format",
            "{{.Names}} {{.State}}",
        ],
        &[
            "ps",
            "-a",
            "--filter",
            "status=running",
            "--filter",
            "status=created",
        ],
        &["ps", "-a", "--filter", "exited=3"],
        &["ps", "--filter", "exited=3"],
        &["ps", "-a", "--filter", "name=1"],
        &["ps", "-a", "--filter", "name=^/?web"],
        &["ps", "-a", "--filter", "name=["],
        &["ps", "-a", "--filter", "ancestor=busybox"],
        &["ps", "-a", "--filter", "ancestor=bb2:v1"],
        &["ps", "-a", "--filter", "ancestor=nosuch"],
        &["ps", "-a", "--filter", "since=ex3"],
        &["ps", "-a", "--filter", "before=ex3"],
        &["ps", "-n", "2"],
        &["ps", "-l"],
        &["ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}"],
        &[
            "ps",
            "-a",
            "--no-trunc",
            "--format",
            "{{.Names}} {{.Command}}",
        ],
        &["ps", "-a", "--format", "{{.Names}} {{.Command}}"],
    ];
    for case in cases {
        let mut args = case.to_vec();
        if !case.contains(&"--format") {
            args.extend_from_slice(&names);
        }
        minidock.same(&docker, &args);
    }
    // The header of `ps -s`.
    let (ours, theirs) = (minidock.ok(&["ps", "-s"]), docker.ok(&["ps", "-s"]));
    assert_eq!(columns(&ours), columns(&theirs));
    // Bad filters: Docker's codes and words.
    for case in [
        &["ps", "-a", "--filter", "status=bogus"][..],
        &["ps", "--filter", "foo=bar"],
        &["ps", "--filter", "foo"],
        &["ps", "-a", "--filter", "exited=x"],
        &["images", "--filter", "dangling=x"],
        &["images", "--filter", "nope=1"],
    ] {
        minidock.same(&docker, case);
    }
    // images: the same rows (the IDs differ, the names do not). The docker CLI prints the
    // tags of one image in a Go map's order, which changes from run to run: compare the rows
    // as sets.
    let rows = ["--format", "{{.Repository}}:{{.Tag}}"];
    for case in [
        &["images", "--filter", "dangling=true"][..],
        &["images", "--filter", "dangling=false"],
        &["images", "--filter", "reference=bb*"],
        &["images", "--filter", "reference=bb2:*"],
        &["images", "--filter", "reference=*:latest"],
        &["images", "--filter", "label=nosuch"],
        &["images", "--filter", "before=bb2:v1"],
    ] {
        let mut args = case.to_vec();
        args.extend_from_slice(&rows);
        let (ours, theirs) = (minidock.output(&args), docker.docker(&args));
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
        let sorted = |out: &std::process::Output| {
            let mut lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
            lines.sort();
            lines
        };
        assert_eq!(sorted(&ours), sorted(&theirs), "{args:?}");
    }
    let _ = docker.docker(&["unpause", "pp1"]);
}

#[test]
fn logs_since_until_tail_timestamps_and_details_print_what_docker_prints() {
    if !require_docker() {
        return;
    }
    let docker = Dockerd::start();
    docker.load_busybox();
    let minidock = Minidock::new();
    let run = [
        "run",
        "--network",
        "none",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        // One stream only: the order of lines across stdout and stderr is a race in Docker too.
        "echo one; echo two; echo three",
    ];
    docker.ok(&run);
    minidock.ok(&run);
    for case in [
        &["logs", "talker"][..],
        &["logs", "--details", "talker"],
        &["logs", "--tail", "1", "talker"],
        &["logs", "--tail", "all", "talker"],
        &["logs", "--since", "10m", "talker"],
        &["logs", "--since", "2000-01-01T00:00:00Z", "talker"],
        &["logs", "--until", "2000-01-01", "talker"],
        &["logs", "--until", "946684800", "talker"],
        &["logs", "--since", "bogus", "talker"],
        &["logs", "-f", "talker"],
        &["logs", "nosuch-talker"],
    ] {
        minidock.same(&docker, case);
    }
    // -t: RFC 3339 with nine fraction digits, then the line.
    let stamped = minidock.ok(&["logs", "-t", "talker"]);
    let theirs = docker.ok(&["logs", "-t", "talker"]);
    for out in [&stamped, &theirs] {
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        for (line, word) in lines.iter().zip(["one", "two", "three"]) {
            let (time, rest) = line.split_once(' ').unwrap();
            assert_eq!(rest, word);
            assert_eq!(time.len(), "2024-05-01T12:00:00.123456789Z".len(), "{time}");
            assert!(minidock::state::parse_rfc3339(time).is_some(), "{time}");
        }
    }
}

/// `ps --filter` `volume`, `network`, `publish`, `expose` and `isolation` and `ps -s`: the
/// same containers under dockerd and minidock's CLI (inside a private network namespace, as
/// they are on user networks with published ports) and the same rows, messages and codes.
#[test]
fn ps_volume_network_port_filters_and_sizes_select_what_docker_selects() {
    if !require_docker() {
        return;
    }
    common::net::private_netns(|| {
        let docker = Dockerd::start();
        docker.load_busybox();
        let minidock = Minidock::new();
        let rootfs = common::busybox_rootfs();
        let tar = rootfs.path().with_extension("tar");
        common::tar_dir(rootfs.path(), &tar);
        let bind = format!("{}:/hosttmp", rootfs.path().display());
        let tar_arg = tar.to_str().unwrap();
        let steps: &[&[&str]] = &[
            &["network", "create", "n1"],
            &["volume", "create", "v1"],
            &["import", "--change", "EXPOSE 90 7000/udp", tar_arg, "exp"],
            &[
                "run",
                "-d",
                "--name",
                "ca",
                "--network",
                "n1",
                "-v",
                "v1:/data",
                "-p",
            ],
            &[
                "run",
                "-d",
                "--name",
                "cb",
                "--network",
                "n1",
                "-v",
                &bind,
                "--expose",
                "4444",
                "--expose",
                "3000-3001/udp",
                "exp",
            ],
            &[
                "create",
                "--name",
                "cd",
                "--network",
                "n1",
                "-p",
                "53/udp",
                "busybox",
            ],
            &[
                "run",
                "--name",
                "ce",
                "--network",
                "none",
                "busybox",
                "sh",
                "-c",
            ],
        ];
        let tails: &[&[&str]] = &[
            &[],
            &[],
            &[],
            &["8080:80", "busybox", "sleep", "1000"],
            &["sleep", "1000"],
            &["true"],
            &["echo hi > /file; dd if=/dev/zero of=/big bs=1k count=100 2>/dev/null"],
        ];
        for (step, tail) in steps.iter().zip(tails) {
            let args = [*step, *tail].concat();
            docker.ok(&args);
            minidock.ok(&args);
        }
        std::fs::remove_file(&tar).unwrap();
        for filter in [
            "volume=v1",
            "volume=/data",
            "volume=/hosttmp",
            "volume=/data/",
            "network=n1",
            "network=none",
            "network=n",
            "network=",
            "publish=8080",
            "publish=80",
            "publish=8079-8081/tcp",
            "expose=80",
            "expose=90",
            "expose=7000/udp",
            "expose=53/udp",
            "expose=4444",
            "expose=3001/udp",
            "isolation=default",
            "publish=abc",
            "publish=1:2",
            "expose=70000",
            "expose=3-1",
            "since=nope",
        ] {
            minidock.same(
                &docker,
                &["ps", "-a", "--filter", filter, "--format", "{{.Names}}"],
            );
        }
        minidock.same(
            &docker,
            &["ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}"],
        );
        // `--expose` values the docker CLI refuses: its words, exit 125.
        for value in ["1:2", "abc", "5-3/udp", "/tcp", "70000"] {
            let args = ["create", "--expose", value, "busybox"];
            let (ours, theirs) = (minidock.output(&args), docker.docker(&args));
            assert_eq!(ours.status.code(), Some(125), "{ours:?}");
            assert_eq!(theirs.status.code(), Some(125), "{theirs:?}");
            let message = text(&theirs.stderr);
            let message = message
                .lines()
                .next()
                .unwrap()
                .trim_start_matches("docker: ");
            assert_eq!(text(&ours.stderr), format!("minidock: {message}\n"));
        }
        for name in ["ca", "cb"] {
            docker.ok(&["rm", "-f", name]);
            minidock.ok(&["rm", "-f", name]);
        }
        drop(minidock);
    });
}
