//! `minidock daemon`: the real docker CLI drives minidock through the Engine API on a unix
//! socket (`DOCKER_HOST`). Each test asserts what the CLI printed and its exit code; where
//! the output is stable it is compared with the same command against a private dockerd.

mod common;

use common::daemon::Daemon;
use common::dockerd::{Dockerd, require_docker};
use common::pty::Pty;
use common::text;
use std::time::{Duration, Instant};

fn daemon(prefix: &str) -> Option<Daemon> {
    Daemon::start(prefix)
}

/// Runs each of `commands` with the same docker CLI against minidock's daemon and dockerd,
/// and describes those whose stdout, stderr or exit code differ, each side's container IDs
/// (`ids.0` minidock's, `ids.1` dockerd's) replaced by `ID` first.
fn differences(
    d: &Daemon,
    dockerd: &Dockerd,
    commands: &[&[&str]],
    ids: &(Vec<String>, Vec<String>),
) -> Vec<String> {
    let shown = |out: std::process::Output, ids: &[String]| {
        let mut both = (text(&out.stdout), text(&out.stderr));
        for id in ids {
            both.0 = both.0.replace(id.as_str(), "ID");
            both.1 = both.1.replace(id.as_str(), "ID");
        }
        (both.0, both.1, out.status.code())
    };
    let mut differ = Vec::new();
    for args in commands {
        let ours = shown(d.docker(args), &ids.0);
        let theirs = shown(dockerd.docker(args), &ids.1);
        if ours != theirs {
            differ.push(format!(
                "docker {args:?}:\n  minidock {ours:?}\n  dockerd  {theirs:?}"
            ));
        }
    }
    differ
}

/// Waits (at most 30 s) until `docker ARGS` prints `want`.
fn eventually(d: &Daemon, args: &[&str], want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = text(&d.docker(args).stdout);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "docker {args:?}: {got:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ping_version_and_info_answer_as_the_cli_negotiates() {
    let Some(d) = daemon("minidock-daemon-sys") else {
        return;
    };
    // ANCHOR: curl_ping
    let ping = d.curl(&["-i", "http://localhost/_ping"]);
    // ANCHOR_END: curl_ping
    assert!(ping.starts_with("HTTP/1.1 200 OK"), "{ping}");
    assert!(ping.ends_with("\r\n\r\nOK"), "{ping}");
    let lower = ping.to_lowercase();
    for header in [
        "api-version: 1.41",
        "ostype: linux",
        "docker-experimental: false",
    ] {
        assert!(lower.contains(header), "{header} missing: {ping}");
    }
    let head = d.curl(&["-I", "http://localhost/_ping"]);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(
        d.ok(&[
            "version",
            "--format",
            "{{.Server.APIVersion}} {{.Client.APIVersion}}"
        ]),
        "1.41 1.41\n"
    );
    assert_eq!(
        d.ok(&[
            "info",
            "--format",
            "{{.Images}} {{.Containers}} {{.OSType}} {{.Driver}}"
        ]),
        "1 0 linux overlay2\n"
    );
    // An unknown route is Docker's 404 body.
    let missing = d.curl(&["http://localhost/v1.41/nothing"]);
    assert_eq!(missing, "{\"message\":\"page not found\"}\n");
    // An Engine API route minidock does not serve is Docker's "not implemented" (501).
    let err = d.fails(&["plugin", "ls"], 1);
    assert_eq!(
        err,
        "Error response from daemon: GET /plugins is not supported by minidock daemon\n"
    );
}

#[test]
fn run_rm_prints_the_output_and_exits_with_the_status() {
    let Some(d) = daemon("minidock-daemon-run") else {
        return;
    };
    for _ in 0..3 {
        let out = d.docker(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ]);
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        assert_eq!(text(&out.stdout), "out\n");
        assert_eq!(text(&out.stderr), "err\n");
    }
    assert_eq!(d.ok(&["run", "--rm", "busybox", "echo", "hi"]), "hi\n");
    // -i: the client's input reaches the container, and its end ends the container's stdin.
    let mut cmd = d.docker_command();
    cmd.args(["run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"typed\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "typed\ndone\n");
    // --rm: nothing left, seen from both fronts.
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert_eq!(d.minidock(&["ps", "-aq"]), "");
    // Nor in the daemon's process table: a shim that ended is no zombie of the daemon's.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !zombie_children(d.pid()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(zombie_children(d.pid()), Vec::<String>::new());
}

/// The children of process `pid` that exited and were not reaped, as `PID (COMM)`.
fn zombie_children(pid: u32) -> Vec<String> {
    let mut zombies = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        if fields.first() == Some(&"Z") && fields.get(1) == Some(&pid.to_string().as_str()) {
            zombies.push(format!("{head})"));
        }
    }
    zombies
}

#[test]
fn a_detached_container_is_listed_logged_inspected_stopped_and_removed() {
    let Some(d) = daemon("minidock-daemon-life") else {
        return;
    };
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--label",
        "tier=front",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two >&2; exec sleep 1000",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    // The daemon's container is minidock's: the CLI without a daemon lists it too.
    assert_eq!(
        d.minidock(&["ps", "--format", "{{.Names}} {{.State}}"]),
        "web running\n"
    );
    assert_eq!(
        d.ok(&[
            "ps",
            "--format",
            "{{.ID}} {{.Names}} {{.Command}} {{.State}}"
        ]),
        format!("{} web \"sh -c 'echo one; ec…\" running\n", &id[..12])
    );
    assert_eq!(
        d.ok(&["ps", "-q", "--filter", "label=tier=front"]),
        format!("{}\n", &id[..12])
    );
    assert_eq!(d.ok(&["ps", "-q", "--filter", "name=nothing"]), "");
    eventually(&d, &["logs", "web"], "one\n");
    let logs = d.docker(&["logs", "web"]);
    assert_eq!(text(&logs.stderr), "two\n");
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.Name}} {{.State.Status}} {{.Config.Labels}}",
            "web"
        ]),
        "/web running map[tier:front]\n"
    );
    // One record, two fronts: the same JSON, in Docker's field order.
    assert_eq!(d.ok(&["inspect", "web"]), d.minidock(&["inspect", "web"]));
    // A container the CLI made shows through the daemon.
    d.minidock(&["create", "--name", "made-by-cli", "busybox", "true"]);
    // (How long `web` is up depends on when `ps` runs: only its start is compared.)
    let listed = d.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert_eq!(lines[0], "made-by-cli Created", "{listed}");
    assert!(lines[1].starts_with("web Up "), "{listed}");
    // Removing a running container needs force: Docker's 409.
    let err = d.fails(&["rm", "web"], 1);
    assert_eq!(
        err,
        format!(
            "Error response from daemon: You cannot remove a running container {id}. Stop the \
             container before attempting removal or force remove\n"
        )
    );
    assert_eq!(d.ok(&["stop", "-t", "1", "web"]), "web\n");
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "web"
        ]),
        "exited 137\n"
    );
    assert_eq!(d.ok(&["start", "web"]), "web\n");
    assert_eq!(
        d.ok(&["rm", "-f", "web", "made-by-cli"]),
        "web\nmade-by-cli\n"
    );
    assert_eq!(d.minidock(&["ps", "-aq"]), "");
    let err = d.fails(&["rm", "web"], 1);
    assert_eq!(err, "Error response from daemon: No such container: web\n");
}

#[test]
fn logs_follow_ends_when_the_container_exits() {
    let Some(d) = daemon("minidock-daemon-logs") else {
        return;
    };
    d.ok(&[
        "run",
        "-d",
        "--name",
        "counter",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo $i; sleep 0.2; done",
    ]);
    assert_eq!(d.ok(&["logs", "-f", "counter"]), "1\n2\n3\n");
    assert_eq!(d.ok(&["logs", "--tail", "1", "counter"]), "3\n");
    let stamped = d.ok(&["logs", "-t", "--tail", "1", "counter"]);
    assert!(
        stamped.ends_with("Z 3\n") && stamped.len() == 33,
        "{stamped:?}"
    );
    assert_eq!(d.ok(&["wait", "counter"]), "0\n");
}

#[test]
fn run_it_is_a_terminal_through_the_hijacked_connection() {
    let Some(d) = daemon("minidock-daemon-tty") else {
        return;
    };
    let mut pty = Pty::new(24, 80);
    // The pty is the CLI's controlling terminal, as in a real session.
    let mut client = pty.spawn_controlling(
        d.docker_command()
            .args(["run", "-it", "--rm", "busybox", "sh"]),
    );
    pty.wait_for("# ");
    // The shell's arithmetic proves the keys reached it.
    pty.write(b"echo hi-$((6*7))\r");
    pty.wait_for("hi-42");
    pty.write(b"stty size\r");
    pty.wait_for("24 80");
    pty.write(b"exit 5\r");
    let status = pty.wait_exit(&mut client, "docker run -it");
    assert_eq!(status.code(), Some(5), "{}", pty.output());
}

#[test]
fn stopping_the_daemon_leaves_containers_running() {
    let Some(mut d) = daemon("minidock-daemon-live") else {
        return;
    };
    d.ok(&["run", "-d", "--name", "keeps", "busybox", "sleep", "1000"]);
    d.stop();
    assert!(
        !d.socket().exists(),
        "the socket stayed after the daemon stopped"
    );
    assert_eq!(
        d.minidock(&["ps", "--format", "{{.Names}} {{.State}}"]),
        "keeps running\n"
    );
    d.spawn();
    assert_eq!(d.ok(&["ps", "--format", "{{.Names}}"]), "keeps\n");
    d.ok(&["rm", "-f", "keeps"]);
}

#[test]
fn tcp_and_a_live_socket_are_refused() {
    let Some(d) = daemon("minidock-daemon-refuse") else {
        return;
    };
    let out = d.daemon_fails(&["-H", "tcp://127.0.0.1:2375"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("without TLS client certificates"),
        "{}",
        text(&out.stderr)
    );
    let live = format!("unix://{}", d.socket().display());
    let out = d.daemon_fails(&["-H", &live]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("another daemon is listening"),
        "{}",
        text(&out.stderr)
    );
    // The live daemon still answers.
    d.ok(&["version"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(d.socket()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660);
}

/// The same commands against a private dockerd print the same.
#[test]
fn the_cli_prints_what_it_prints_against_dockerd() {
    if !require_docker() {
        return;
    }
    let Some(d) = daemon("minidock-daemon-same") else {
        return;
    };
    let dockerd = Dockerd::start();
    dockerd.load_busybox();
    let commands: &[&[&str]] = &[
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
        &["run", "--rm", "busybox", "echo", "hi"],
        &["rm", "nosuch"],
        &["stop", "nosuch"],
        &["logs", "nosuch"],
        &["ps", "-a", "--format", "{{.Names}}"],
        &["run", "--rm", "--name", "named", "busybox", "true"],
        &["inspect", "nosuch"],
        &["image", "inspect", "nosuch"],
        &["rmi", "nosuch"],
        &["rmi", "nosuch:v2"],
        &["tag", "nosuch", "other"],
        &["exec", "nosuch", "true"],
        &["kill", "nosuch"],
        &["start", "nosuch"],
        &["wait", "nosuch"],
        &["images", "--format", "{{.Repository}}:{{.Tag}}"],
    ];
    let mut differ = Vec::new();
    for args in commands {
        let ours = d.docker(args);
        let theirs = dockerd.docker(args);
        let ours = (text(&ours.stdout), text(&ours.stderr), ours.status.code());
        let theirs = (
            text(&theirs.stdout),
            text(&theirs.stderr),
            theirs.status.code(),
        );
        if ours != theirs {
            differ.push(format!(
                "docker {args:?}:\n  minidock {ours:?}\n  dockerd  {theirs:?}"
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

/// Refusals whose words (and exit codes) are dockerd 20.10's: an exec whose program is missing
/// (runc's message on stdout, 126), a memory limit under 6 MB on update, `top` with ps
/// arguments ps refuses or whose output has no PID column, rename's and kill's refusals.
/// Container IDs are replaced by `ID` before comparing.
#[test]
fn refusals_print_what_they_print_against_dockerd() {
    if !require_docker() {
        return;
    }
    let Some(d) = daemon("minidock-daemon-refusals") else {
        return;
    };
    let dockerd = Dockerd::start();
    dockerd.load_busybox();
    let setup: &[&[&str]] = &[
        &["run", "-d", "--name", "web", "busybox", "sleep", "1000"],
        &["create", "--name", "other", "busybox", "true"],
    ];
    let mut ids = (Vec::new(), Vec::new());
    for args in setup {
        ids.0.push(d.ok(args).trim().to_owned());
        ids.1.push(dockerd.ok(args).trim().to_owned());
    }
    let commands: &[&[&str]] = &[
        &["exec", "web", "nosuchprogram"],
        &["exec", "-i", "web", "nosuchprogram"],
        &["exec", "web", "sh", "-c", "exit 127"],
        &["update", "--memory", "1k", "web"],
        &["update", "--memory", "1k", "nosuch"],
        &["top", "web", "-bogus"],
        &["top", "web", "-o", "comm"],
        &["top", "other"],
        &["rename", "web", "bad/name"],
        &["rename", "nosuch", "bad/name"],
        &["rename", "web", "other"],
        &["rename", "web", "web"],
        &["kill", "-s", "BOGUS", "web"],
        &["kill", "-s", "SIGBOGUS", "nosuch"],
        &["kill", "-s", "0", "web"],
        &["kill", "-s", "999", "web"],
        &["kill", "-s", "32", "web"],
        &["kill", "-s", "-1", "web"],
        &["kill", "-s", "999", "nosuch"],
        &["kill", "-s", "RTMIN+16", "web"],
        &["kill", "other"],
    ];
    let differ = differences(&d, &dockerd, commands, &ids);
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    // ps arguments are ps's: the columns asked for, the container's process in them.
    let top = d.ok(&["top", "web", "-o", "pid,comm"]);
    let theirs = dockerd.ok(&["top", "web", "-o", "pid,comm"]);
    let first = |t: &str| t.lines().next().unwrap_or("").to_owned();
    assert_eq!(first(&top), first(&theirs));
    let rows: Vec<&str> = top.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{top}");
    assert!(rows[0].trim_end().ends_with(" sleep"), "{top}");
}

/// Requests a user gets wrong, answered in dockerd 20.10's words and exit codes: a missing
/// network or `--volumes-from` container (never a pull of the image that is there), limits
/// and restart policies dockerd refuses at create and update, an exec into a paused or
/// stopped container or as a user the image lacks (dockerd's line on stdout, 126), detach
/// keys that do not parse, unpause of a container that does not run, a prune filter that is
/// not one. Container IDs are replaced by `ID` before comparing.
#[test]
fn mistakes_get_dockerds_answers() {
    if !require_docker() {
        return;
    }
    let Some(d) = daemon("minidock-daemon-mistakes") else {
        return;
    };
    let dockerd = Dockerd::start();
    dockerd.load_busybox();
    let setup: &[&[&str]] = &[
        &["run", "-d", "--name", "web", "busybox", "sleep", "1000"],
        &["run", "-d", "--name", "frozen", "busybox", "sleep", "1000"],
        &["create", "--name", "stopped", "busybox", "true"],
    ];
    let mut ids = (Vec::new(), Vec::new());
    for args in setup {
        ids.0.push(d.ok(args).trim().to_owned());
        ids.1.push(dockerd.ok(args).trim().to_owned());
    }
    d.ok(&["pause", "frozen"]);
    dockerd.ok(&["pause", "frozen"]);
    let commands: &[&[&str]] = &[
        &["run", "--rm", "--volumes-from", "nosuch", "busybox", "true"],
        &["run", "--rm", "--network", "nosuch", "busybox", "true"],
        &["run", "--rm", "--cpus", "1000", "busybox", "true"],
        &["create", "--restart", "on-failure:-1", "busybox"],
        &["create", "--restart", "always:3", "busybox"],
        &["update", "--cpus", "1000", "web"],
        &["update", "--cpus", "1000", "nosuch"],
        &["exec", "frozen", "true"],
        &["exec", "stopped", "true"],
        &["exec", "--detach-keys", "bogus", "web", "true"],
        &["exec", "-u", "nosuch", "web", "true"],
        &["unpause", "stopped"],
        &["unpause", "web"],
        &["volume", "prune", "-f", "--filter", "bogus=1"],
        &["network", "prune", "-f", "--filter", "bogus=1"],
        &["ps", "--filter", "name=^web$", "--format", "{{.Names}}"],
        &["ps", "--filter", "name=^/web$", "--format", "{{.Names}}"],
    ];
    let differ = differences(&d, &dockerd, commands, &ids);
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

/// A prune filter minidock does not apply is refused, never ignored: ignoring it would remove
/// every unused volume or network instead of those it selects (dockerd removes none of these).
#[test]
fn a_prune_filter_not_applied_is_refused_and_nothing_is_removed() {
    let Some(d) = daemon("minidock-daemon-prune-filter") else {
        return;
    };
    d.ok(&["volume", "create", "keepme"]);
    d.ok(&["network", "create", "keepnet"]);
    let err = d.fails(&["volume", "prune", "-f", "--filter", "label=nope"], 1);
    assert_eq!(
        err,
        "Error response from daemon: filter \"label=nope\" is not supported by volume prune\n"
    );
    let err = d.fails(&["network", "prune", "-f", "--filter", "until=1h"], 1);
    assert_eq!(
        err,
        "Error response from daemon: filter \"until=1h\" is not supported by network prune\n"
    );
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "keepme\n");
    assert!(
        d.ok(&["network", "ls", "--format", "{{.Name}}"])
            .lines()
            .any(|n| n == "keepnet")
    );
    // Without filters both prune as before.
    d.ok(&["volume", "prune", "-f"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "");
    d.ok(&["network", "prune", "-f"]);
}

/// `docker cp` with a container path that is not absolute takes it from the container's root,
/// as dockerd does (`web:etc/hostname`, `web:tmp`, `web:../../etc/hostname`).
#[test]
fn cp_takes_a_relative_container_path_from_the_root() {
    let Some(d) = daemon("minidock-daemon-cp-relative") else {
        return;
    };
    d.ok(&["run", "-d", "--name", "web", "busybox", "sleep", "1000"]);
    let host = tempfile::Builder::new()
        .prefix("minidock-cp-relative")
        .tempdir()
        .unwrap();
    let out = host.path().join("passwd");
    d.ok(&["cp", "web:../../etc/passwd", out.to_str().unwrap()]);
    let copied = std::fs::read_to_string(&out).unwrap();
    assert_eq!(copied, d.ok(&["exec", "web", "cat", "/etc/passwd"]));
    let file = host.path().join("note");
    std::fs::write(&file, "hello\n").unwrap();
    d.ok(&["cp", file.to_str().unwrap(), "web:tmp"]);
    assert_eq!(d.ok(&["exec", "web", "cat", "/tmp/note"]), "hello\n");
    d.ok(&["cp", file.to_str().unwrap(), "web:relative"]);
    assert_eq!(d.ok(&["exec", "web", "cat", "/relative"]), "hello\n");
}

/// As dockerd 20.10 (same docker CLI): `docker cp` reads the generated `/etc` files of a
/// container that has run through their bind mounts (running or exited), refuses a copy onto
/// one with the kernel's EBUSY and keeps the bind, refuses any copy into a `--read-only`
/// root, and places tar entries by joining their names onto the destination.
#[test]
fn cp_sees_and_keeps_the_containers_mounts_as_dockerd() {
    let Some(d) = daemon("minidock-daemon-cp-mounts") else {
        return;
    };
    d.ok(&["run", "-d", "--name", "web", "busybox", "sleep", "1000"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "ro",
        "--read-only",
        "busybox",
        "sleep",
        "1000",
    ]);
    let host = tempfile::Builder::new()
        .prefix("minidock-cp-mounts")
        .tempdir()
        .unwrap();
    let hosts = d.ok(&["exec", "web", "cat", "/etc/hosts"]);
    let hostname = d.ok(&["exec", "web", "cat", "/etc/hostname"]);
    let file = host.path().join("hosts");
    std::fs::write(&file, "1.2.3.4 foo\n").unwrap();
    let file = file.to_str().unwrap();
    let busy = "Error response from daemon: Error processing tar file(exit status 1): \
                unlinkat /etc/hosts: device or resource busy\n";
    for state in ["running", "exited"] {
        let out = d.docker(&["cp", "web:/etc/hostname", "-"]);
        let mut archive = tar::Archive::new(&out.stdout[..]);
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.header().mode().unwrap(), 0o644, "{state}");
        assert_eq!(std::io::read_to_string(&mut entry).unwrap(), hostname);
        let copied = host.path().join("copied");
        d.ok(&["cp", "web:/etc", copied.to_str().unwrap()]);
        let read = std::fs::read_to_string(copied.join("hosts")).unwrap();
        assert_eq!(read, hosts, "{state}");
        std::fs::remove_dir_all(&copied).unwrap();
        assert_eq!(d.fails(&["cp", file, "web:/etc/hosts"], 1), busy, "{state}");
        assert_eq!(d.fails(&["cp", file, "web:/etc/"], 1), busy, "{state}");
        if state == "running" {
            let mountinfo = d.ok(&["exec", "web", "cat", "/proc/self/mountinfo"]);
            let bound = mountinfo
                .lines()
                .any(|l| l.split(' ').nth(4) == Some("/etc/hosts"));
            assert!(bound, "{mountinfo}");
            assert_eq!(d.ok(&["exec", "web", "cat", "/etc/hosts"]), hosts);
        }
        let refused = "Error response from daemon: container rootfs is marked read-only\n";
        assert_eq!(d.fails(&["cp", file, "ro:/tmp/"], 1), refused, "{state}");
        d.ok(&["stop", "-t", "0", "web", "ro"]);
    }
    d.ok(&["start", "web"]);
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in [("../../tmp/x", "x\n"), ("/abs", "abs\n")] {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(content.len() as u64);
        header.set_cksum();
        builder.append(&header, content.as_bytes()).unwrap();
    }
    let archive = builder.into_inner().unwrap();
    let out = common::output_with_stdin(d.docker_command().args(["cp", "-", "web:/tmp"]), &archive);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        d.ok(&["exec", "web", "cat", "/tmp/x", "/tmp/abs"]),
        "x\nabs\n"
    );
    d.ok(&["rm", "-f", "web", "ro"]);
}

/// `docker import` through the daemon (`POST /images/create?fromSrc=-`): the tarball in the
/// request's body becomes an image, named, with `-c` changes and `-m`, printed as dockerd
/// prints it (the ID), runnable at once; a tarball that is not one is an error.
#[test]
fn docker_import_makes_an_image_of_the_tarball() {
    let Some(d) = daemon("minidock-daemon-import") else {
        return;
    };
    let rootfs = common::busybox_rootfs();
    let tar = rootfs.path().with_extension("tar");
    common::tar_dir(rootfs.path(), &tar);
    let id = d.ok(&[
        "import",
        "-c",
        "ENV GREETING=hi",
        "-c",
        "CMD [\"sh\", \"-c\", \"echo $GREETING\"]",
        "-m",
        "from a test",
        tar.to_str().unwrap(),
        "imported:v1",
    ]);
    std::fs::remove_file(&tar).unwrap();
    assert!(id.starts_with("sha256:") && id.len() == 72, "{id:?}");
    assert_eq!(
        d.ok(&["images", "--format", "{{.ID}}", "imported:v1"]),
        format!("{}\n", &id[7..19])
    );
    assert_eq!(d.ok(&["run", "--rm", "imported:v1"]), "hi\n");
    assert_eq!(
        d.ok(&[
            "image",
            "history",
            "--format",
            "{{.Comment}}",
            "imported:v1"
        ]),
        "from a test\n"
    );
    let out = d.docker_stdin(&["import", "-", "garbage:v1"], "not a tarball");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    d.ok(&["rmi", "imported:v1"]);
}

#[test]
fn exec_runs_in_the_container_with_pipes_and_with_a_terminal() {
    let Some(d) = daemon("minidock-daemon-exec") else {
        return;
    };
    d.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]);
    let out = d.docker(&["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 4"]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        (text(&out.stdout), text(&out.stderr)),
        ("out\n".into(), "err\n".into())
    );
    // -i: the client's input, then its end, reach the process.
    let mut cmd = d.docker_command();
    cmd.args(["exec", "-i", "box", "sh", "-c", "cat; echo done"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"piped\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "piped\ndone\n");
    // The exec shares the container's namespaces: it sees the container's PID 1.
    assert_eq!(
        d.ok(&["exec", "box", "cat", "/proc/1/cmdline"]),
        "sleep\x001000\x00"
    );
    d.ok(&["exec", "-d", "box", "touch", "/tmp/made-by-exec"]);
    eventually(&d, &["diff", "box"], "C /tmp\nA /tmp/made-by-exec\n");
    // -it through a pty: the terminal's size reaches the process.
    let mut pty = Pty::new(30, 100);
    let mut client = pty.spawn_controlling(d.docker_command().args(["exec", "-it", "box", "sh"]));
    pty.wait_for("# ");
    pty.write(b"stty size; echo x-$((6*7))\r");
    pty.wait_for("x-42");
    assert!(pty.output().contains("30 100"), "{}", pty.output());
    pty.write(b"exit 6\r");
    let status = pty.wait_exit(&mut client, "docker exec -it");
    assert_eq!(status.code(), Some(6), "{}", pty.output());
    let top = d.ok(&["top", "box"]);
    assert!(top.starts_with("UID "), "{top}");
    assert!(top.contains("sleep 1000"), "{top}");
}

#[test]
fn images_are_listed_tagged_inspected_and_removed() {
    let Some(d) = daemon("minidock-daemon-images") else {
        return;
    };
    let id = d.minidock(&["images", "-q", "--no-trunc"]);
    assert_eq!(
        d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]),
        format!("busybox:latest {}", &id.trim()[7..19]) + "\n"
    );
    d.ok(&["tag", "busybox", "mine/box:v1"]);
    assert_eq!(
        d.minidock(&["images", "-q", "mine/box"]),
        d.ok(&["images", "-q", "mine/box"])
    );
    assert_eq!(
        d.ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Id}} {{.RepoTags}}",
            "mine/box:v1"
        ]),
        format!("{} [busybox:latest mine/box:v1]\n", id.trim())
    );
    assert_eq!(d.ok(&["rmi", "mine/box:v1"]), "Untagged: mine/box:v1\n");
    let err = d.fails(&["rmi", "mine/box:v1"], 1);
    assert_eq!(
        err,
        "Error response from daemon: No such image: mine/box:v1\n"
    );
    assert_eq!(
        d.ok(&["image", "inspect", "busybox"]),
        d.minidock(&["image", "inspect", "busybox"])
    );
    let history = d.ok(&["history", "--format", "{{.ID}} {{.Size}}", "busybox"]);
    assert!(history.starts_with(&id.trim()[7..19]), "{history}");
}

#[test]
fn pull_streams_dockers_progress_and_run_pulls_a_missing_image() {
    let Some(d) = daemon("minidock-daemon-pull") else {
        return;
    };
    let Some(registry) = common::registry::Registry::start(None) else {
        return;
    };
    let name = registry.name("daemon/busybox:1");
    d.minidock(&["tag", "busybox", &name]);
    d.minidock(&["push", &name]);
    d.minidock(&["rmi", &name]);
    let pulled = d.ok(&["pull", &name]);
    let lines: Vec<&str> = pulled.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"1: Pulling from daemon/busybox"),
        "{pulled}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("Digest: sha256:")),
        "{pulled}"
    );
    assert_eq!(
        &lines[lines.len() - 2..],
        [
            format!("Status: Downloaded newer image for {name}").as_str(),
            name.as_str()
        ],
        "{pulled}"
    );
    // `run` of an image the store lacks: create's 404 makes the CLI pull it first.
    let other = registry.name("daemon/other:2");
    d.minidock(&["tag", "busybox", &other]);
    d.minidock(&["push", &other]);
    d.minidock(&["rmi", &other]);
    let out = d.docker(&["run", "--rm", &other, "echo", "pulled"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stdout).lines().last(), Some("pulled"), "{out:?}");
    // The CLI shows the pull's progress on stderr, as against dockerd.
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "Unable to find image '{other}' locally\n2: Pulling from daemon/other\n"
        )),
        "{err}"
    );
    assert!(
        err.ends_with(&format!("Status: Downloaded newer image for {other}\n")),
        "{err}"
    );
    let err = d.fails(&["pull", &registry.name("daemon/none:1")], 1);
    assert!(err.contains("manifest unknown"), "{err}");
}

/// The book's walk through `docker run`, by hand: create, wait (its headers come at once),
/// attach without a hijack (the body is the output, multiplexed), start.
#[test]
fn create_wait_attach_and_start_by_hand_with_curl() {
    let Some(d) = daemon("minidock-daemon-curl") else {
        return;
    };
    // ANCHOR: curl_create
    let created = d.curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"Image": "busybox", "Cmd": ["echo", "hello"]}"#,
        "http://localhost/v1.41/containers/create?name=by-hand",
    ]);
    // ANCHOR_END: curl_create
    assert!(created.starts_with("{\"Id\":\""), "{created}");
    let (wait, head) = common::daemon::request_head(
        d.socket(),
        "POST",
        "/v1.41/containers/by-hand/wait?condition=next-exit",
    );
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let (attach, head) = common::daemon::request_head(
        d.socket(),
        "POST",
        "/v1.41/containers/by-hand/attach?stream=1&stdout=1&stderr=1",
    );
    assert!(
        head.contains("application/vnd.docker.multiplexed-stream"),
        "{head}"
    );
    // ANCHOR: curl_start
    let started = d.curl(&[
        "-i",
        "-X",
        "POST",
        "http://localhost/v1.41/containers/by-hand/start",
    ]);
    // ANCHOR_END: curl_start
    assert!(started.starts_with("HTTP/1.1 204 No Content"), "{started}");
    let rest = |mut stream: std::os::unix::net::UnixStream| {
        let mut bytes = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut bytes);
        bytes
    };
    let output = rest(attach);
    let frame = b"\x01\x00\x00\x00\x00\x00\x00\x06hello\n";
    assert!(
        output.windows(frame.len()).any(|w| w == frame),
        "{output:?}"
    );
    let waited = text(&rest(wait));
    assert!(
        waited.contains("{\"StatusCode\":0,\"Error\":null}"),
        "{waited}"
    );
    // ANCHOR: curl_logs
    let logs = d.curl(&["http://localhost/v1.41/containers/by-hand/logs?stdout=1"]);
    // ANCHOR_END: curl_logs
    assert_eq!(logs.as_bytes(), frame);
    d.ok(&["rm", "by-hand"]);
}

#[test]
fn a_wait_and_an_attach_before_a_start_elsewhere_are_woken_by_the_change_not_a_poll() {
    let Some(d) = daemon("minidock-daemon-external-start") else {
        return;
    };
    let id = d
        .minidock(&[
            "create",
            "--name",
            "elsewhere",
            "busybox",
            "sh",
            "-c",
            "sleep 2; echo later; exit 3",
        ])
        .trim()
        .to_owned();
    let (wait, head) = common::daemon::request_head(
        d.socket(),
        "POST",
        "/v1.41/containers/elsewhere/wait?condition=next-exit",
    );
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let (attach, head) = common::daemon::request_head(
        d.socket(),
        "POST",
        "/v1.41/containers/elsewhere/attach?stream=1&stdout=1&stderr=1",
    );
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    // While nothing happens to the container, the daemon does not look at its state (a poll
    // every 50 ms looked 30 times in these 1.5 s; inotify, and a look each second, at most 2).
    let Some(seen) = d.file_syscalls(&id, Duration::from_millis(1500)) else {
        return;
    };
    assert!(seen.len() <= 3, "the daemon polled the state: {seen:#?}");
    // `minidock start`, not the daemon's: the daemon sees the state change and connects both.
    d.minidock(&["start", "elsewhere"]);
    let rest = |mut stream: std::os::unix::net::UnixStream| {
        let mut bytes = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut bytes);
        bytes
    };
    let output = rest(attach);
    let frame = b"\x01\x00\x00\x00\x00\x00\x00\x06later\n";
    assert!(
        output.windows(frame.len()).any(|w| w == frame),
        "{output:?}"
    );
    let waited = text(&rest(wait));
    assert!(
        waited.contains("{\"StatusCode\":3,\"Error\":null}"),
        "{waited}"
    );
    d.ok(&["rm", "elsewhere"]);
}

#[test]
fn kill_restart_pause_rename_and_wait_change_the_container() {
    let Some(d) = daemon("minidock-daemon-verbs") else {
        return;
    };
    d.ok(&[
        "run",
        "-d",
        "--name",
        "v1",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' USR1; while true; do sleep 0.1; done",
    ]);
    assert_eq!(d.ok(&["pause", "v1"]), "v1\n");
    assert_eq!(d.ok(&["ps", "--format", "{{.State}}"]), "paused\n");
    assert_eq!(d.ok(&["unpause", "v1"]), "v1\n");
    assert_eq!(d.ok(&["rename", "v1", "w1"]), "");
    assert_eq!(d.minidock(&["ps", "--format", "{{.Names}}"]), "w1\n");
    // The trap proves the signal reached the container's process.
    assert_eq!(d.ok(&["kill", "-s", "USR1", "w1"]), "w1\n");
    assert_eq!(d.ok(&["wait", "w1"]), "7\n");
    let err = d.fails(&["kill", "w1"], 1);
    assert!(err.contains("is not running"), "{err}");
    assert_eq!(d.ok(&["restart", "-t", "1", "w1"]), "w1\n");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}}", "w1"]),
        "true\n"
    );
    assert_eq!(d.ok(&["kill", "w1"]), "w1\n");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.ExitCode}}", "w1"]),
        "137\n"
    );
}

/// `State` and `Status` of container `name` in the daemon's listing of every container.
fn listed(d: &Daemon, name: &str) -> Option<(String, String)> {
    let answer = d.curl(&["http://localhost/v1.41/containers/json?all=1"]);
    let list: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let wanted = format!("/{name}");
    list.as_array()?
        .iter()
        .find(|c| c["Names"][0] == wanted.as_str())
        .map(|c| (text_of(&c["State"]), text_of(&c["Status"])))
}

fn text_of(value: &serde_json::Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// Waits (at most 10 s) until process `pid` has exited (gone, or a zombie).
fn exited(pid: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat.rsplit(')').next().unwrap_or("").starts_with(" Z"))
    {
        assert!(Instant::now() < deadline, "process {pid} still runs");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_listing_asks_known_processes_and_freezers_without_opening_files() {
    let Some(d) = daemon("minidock-daemon-list-files") else {
        return;
    };
    for name in ["l1", "l2"] {
        d.ok(&["run", "-d", "--name", name, "busybox", "sleep", "3600"]);
    }
    // The first listing finds each process and freezer file; the next ones only ask them.
    assert_eq!(listed(&d, "l1").unwrap().0, "running");
    let socket = d.socket().to_owned();
    let lister = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        for _ in 0..5 {
            let out = std::process::Command::new("curl")
                .arg("-sSf")
                .arg("--unix-socket")
                .arg(&socket)
                .arg("http://localhost/v1.41/containers/json")
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
    });
    let Some(seen) = d.file_syscalls("", Duration::from_millis(2500)) else {
        return;
    };
    lister.join().unwrap();
    // The listings happened while strace looked: each looked at both state files.
    let states = seen.iter().filter(|l| l.contains("state.json")).count();
    assert!(states >= 10, "{states} looks at state.json: {seen:#?}");
    let opened: Vec<_> = seen
        .iter()
        .filter(|l| l.contains("/proc/") || l.contains("freezer"))
        .collect();
    assert!(opened.is_empty(), "files opened to list: {opened:#?}");
}

/// A container waiting out its restart back-off has its exit recorded: a listing shows it
/// restarting at once, and does not wait for an exit to be recorded (a wait reads its state
/// every 10 ms: some 200 looks in 2 s, where the listings below look a few times each).
#[test]
fn a_container_in_its_backoff_is_listed_restarting_without_a_wait() {
    let Some(d) = daemon("minidock-daemon-backoff") else {
        return;
    };
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "flap",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "exit 2",
    ]);
    let id = id.trim().to_owned();
    let held = common::backoff::hold(d.root.path(), &id);
    let listed = d.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(listed.starts_with("flap Restarting (2) "), "{listed}");
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Restarting}} {{.State.Pid}}",
            "flap"
        ]),
        "restarting true 0\n"
    );
    let socket = d.socket().to_owned();
    let lister = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        let mut answers = Vec::new();
        for path in ["containers/json", "containers/flap/json"].repeat(2) {
            let out = std::process::Command::new("curl")
                .arg("-sSf")
                .arg("--unix-socket")
                .arg(&socket)
                .arg(format!("http://localhost/v1.41/{path}"))
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
            answers.push((path, text(&out.stdout)));
        }
        answers
    });
    let Some(seen) = d.file_syscalls(&format!("{id}/state.json"), Duration::from_millis(2500))
    else {
        return;
    };
    for (path, answer) in lister.join().unwrap() {
        let state = match path {
            "containers/json" => r#""State":"restarting""#,
            _ => r#""Status":"restarting""#,
        };
        assert!(answer.contains(state), "{path}: {answer}");
    }
    assert!(
        seen.len() <= 20,
        "{} looks at its state: {seen:#?}",
        seen.len()
    );
    drop(held);
    d.ok(&["rm", "-f", "flap"]);
}

/// What needs the process of a container waiting to restart is refused with dockerd's words
/// (`attach` by the CLI itself, from `State.Restarting`); `kill` calls the restart off without
/// a signal: the container stays exited, with its last exit. Container IDs are replaced by
/// `ID` before comparing. dockerd's back-off is waited out to its seventh restart (6.4 s
/// before the next), minidock's held.
#[test]
fn a_container_waiting_to_restart_gets_dockerds_answers() {
    if !require_docker() {
        return;
    }
    let Some(d) = daemon("minidock-daemon-restarting") else {
        return;
    };
    let dockerd = Dockerd::start();
    dockerd.load_busybox();
    let run = [
        "run",
        "-d",
        "--name",
        "flap",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "exit 2",
    ];
    let theirs_id = dockerd.ok(&run).trim().to_owned();
    let ours_id = d.ok(&run).trim().to_owned();
    let backoff = "{{.State.Status}} {{.RestartCount}}";
    let deadline = Instant::now() + Duration::from_secs(60);
    let seventh = |docker: &dyn Fn(&[&str]) -> String| loop {
        let seen = docker(&["inspect", "-f", backoff, "flap"]);
        match seen.trim().split_once(' ') {
            Some(("restarting", count)) if count.parse::<u32>().unwrap() >= 7 => {
                break count.to_owned();
            }
            _ => assert!(Instant::now() < deadline, "{seen}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let theirs_count = seventh(&|args| dockerd.ok(args));
    let ours_count = seventh(&|args| d.ok(args));
    let shown = |out: std::process::Output, id: &str| {
        let shown = |bytes: &[u8]| text(bytes).replace(id, "ID");
        (shown(&out.stdout), shown(&out.stderr), out.status.code())
    };
    let commands: &[&[&str]] = &[
        &["ps", "--format", "{{.Names}} {{.State}}"],
        &[
            "ps",
            "--filter",
            "status=restarting",
            "--format",
            "{{.Names}}",
        ],
        &["ps", "--filter", "status=running", "--format", "{{.Names}}"],
        &["exec", "flap", "true"],
        &["pause", "flap"],
        &["unpause", "flap"],
        &["top", "flap"],
        &["top", "flap", "-o", "pid"],
        &["attach", "flap"],
    ];
    let after = "{{.State.FinishedAt}} {{.RestartCount}}";
    let state = "{{.State.Status}} {{.State.Restarting}} {{.State.ExitCode}} {{.State.Pid}}";
    // dockerd's side first, all within its back-off (minidock's is held): the answers, the
    // last exit, then the kill and what it left.
    let theirs: Vec<_> = commands
        .iter()
        .map(|args| shown(dockerd.docker(args), &theirs_id))
        .collect();
    let their_finish = dockerd.ok(&["inspect", "-f", after, "flap"]);
    let their_kill_at = std::time::SystemTime::now();
    let their_kill = shown(dockerd.docker(&["kill", "flap"]), &theirs_id);
    assert_eq!(
        their_finish.split_whitespace().nth(1),
        Some(theirs_count.as_str()),
        "dockerd restarted it meanwhile"
    );
    let their_state = dockerd.ok(&["inspect", "-f", state, "flap"]);
    let their_end = dockerd.ok(&["inspect", "-f", after, "flap"]);
    let mut differ = Vec::new();
    for (args, theirs) in commands.iter().zip(theirs) {
        let ours = shown(d.docker(args), &ours_id);
        if ours != theirs {
            differ.push(format!(
                "docker {args:?}:\n  minidock {ours:?}\n  dockerd  {theirs:?}"
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    let our_finish = d.ok(&["inspect", "-f", after, "flap"]);
    let our_kill_at = std::time::SystemTime::now();
    assert_eq!(shown(d.docker(&["kill", "flap"]), &ours_id), their_kill);
    assert_eq!(
        our_finish.split_whitespace().nth(1),
        Some(ours_count.as_str()),
        "minidock restarted it meanwhile"
    );
    assert_eq!(d.ok(&["inspect", "-f", state, "flap"]), their_state);
    // The last exit's time (not the kill's) and the count stay.
    let our_end = d.ok(&["inspect", "-f", after, "flap"]);
    for (front, before, end, kill_at) in [
        ("minidock", our_finish, our_end, our_kill_at),
        ("dockerd", their_finish, their_end, their_kill_at),
    ] {
        let (time, count) = end.trim().split_once(' ').unwrap();
        let exited = minidock::state::parse_rfc3339(time).unwrap();
        assert!(exited < kill_at, "{front}: {before} then {end}");
        assert_eq!(before.split_whitespace().nth(1), Some(count), "{front}");
    }
    // Nobody is left to restart it.
    let shim = common::backoff::state_json(d.root.path(), &ours_id)["SupervisorPid"].to_string();
    if shim != "0" {
        exited(&shim);
    }
    let ours = shown(d.docker(&["kill", "flap"]), &ours_id);
    let theirs = shown(dockerd.docker(&["kill", "flap"]), &theirs_id);
    assert_eq!(ours, theirs);
}

#[test]
fn a_listing_sees_at_once_what_the_cli_and_the_shims_changed() {
    let Some(d) = daemon("minidock-daemon-list-fresh") else {
        return;
    };
    for name in ["f1", "f2", "f3", "f4"] {
        d.ok(&["run", "-d", "--name", name, "busybox", "sleep", "3600"]);
    }
    // Listed twice, apart: the daemon keeps every state, process and freezer file it saw.
    assert_eq!(listed(&d, "f1").unwrap().0, "running");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(listed(&d, "f1").unwrap().0, "running");
    let state = |name: &str| listed(&d, name).map(|(state, _)| state);
    d.minidock(&["pause", "f1"]);
    let (paused, status) = listed(&d, "f1").unwrap();
    assert_eq!(paused, "paused");
    assert!(status.ends_with("(Paused)"), "{status}");
    d.minidock(&["unpause", "f1"]);
    assert_eq!(state("f1").unwrap(), "running");
    d.minidock(&["rename", "f1", "g1"]);
    assert_eq!(
        (state("f1"), state("g1").unwrap()),
        (None, "running".into())
    );
    d.minidock(&["stop", "-t", "1", "f2"]);
    assert_eq!(state("f2").unwrap(), "exited");
    d.minidock(&["create", "--name", "c1", "busybox", "true"]);
    assert_eq!(state("c1").unwrap(), "created");
    // The container's process killed from outside: its shim records the exit and ends.
    let pid = d.ok(&["inspect", "-f", "{{.State.Pid}}", "f3"]);
    let pid = pid.trim();
    assert!(
        std::process::Command::new("kill")
            .args(["-9", pid])
            .status()
            .unwrap()
            .success()
    );
    exited(pid);
    let (state_f3, status) = listed(&d, "f3").unwrap();
    assert_eq!(state_f3, "exited");
    assert!(status.starts_with("Exited (137) "), "{status}");
    // The shim itself killed: the listing's recovery records the exit.
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "f4"]);
    let record = std::fs::read_to_string(
        d.root
            .path()
            .join("containers")
            .join(id.trim())
            .join("state.json"),
    )
    .unwrap();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    let shim = record["SupervisorPid"].to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &shim])
            .status()
            .unwrap()
            .success()
    );
    exited(&shim);
    assert_eq!(state("f4").unwrap(), "exited");
    d.minidock(&["rm", "-f", "g1"]);
    assert_eq!(state("g1"), None);
}

#[test]
fn the_group_owns_the_socket() {
    let Some(d) = daemon("minidock-daemon-group") else {
        return;
    };
    let gid = nix::unistd::Group::from_name("daemon")
        .unwrap()
        .map(|g| g.gid.as_raw());
    let Some(gid) = gid else {
        panic!("this machine has no group named daemon");
    };
    let socket = d.root.path().join("grouped.sock");
    let mut child = d
        .root
        .cmd()
        .args(["daemon", "--group", "daemon", "-H"])
        .arg(format!("unix://{}", socket.display()))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "the daemon never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&socket).unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let status = child.wait().unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (0, gid, 0o660)
    );
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "the socket stayed");
}

#[test]
fn volumes_are_created_listed_inspected_removed_and_pruned() {
    let Some(d) = daemon("minidock-daemon-vol") else {
        return;
    };
    assert_eq!(d.ok(&["volume", "create", "data"]), "data\n");
    assert_eq!(
        d.ok(&["volume", "create", "--label", "team=web", "labelled"]),
        "labelled\n"
    );
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "data\nlabelled\n");
    // The CLI's own front sees the same volumes.
    assert_eq!(d.minidock(&["volume", "ls", "-q"]), "data\nlabelled\n");
    assert_eq!(
        d.ok(&[
            "volume",
            "ls",
            "-f",
            "label=team=web",
            "--format",
            "{{.Name}}"
        ]),
        "labelled\n"
    );
    assert_eq!(
        d.ok(&[
            "volume",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}}",
            "labelled"
        ]),
        "labelled local local map[team:web]\n"
    );
    let err = d.fails(&["volume", "inspect", "nothing"], 1);
    assert_eq!(
        err,
        "Error response from daemon: get nothing: no such volume\n"
    );
    let bad = d.fails(&["volume", "create", "-d", "nfs", "x"], 1);
    assert!(bad.contains("plugin \"nfs\" not found"), "{bad}");
    // In use: refused with Docker's 409, then removed once the container is gone.
    let id = d.ok(&["run", "-d", "-v", "data:/d", "busybox", "sleep", "300"]);
    let id = id.trim();
    let err = d.fails(&["volume", "rm", "data"], 1);
    assert_eq!(
        err,
        format!("Error response from daemon: remove data: volume is in use - [{id}]\n")
    );
    d.ok(&["rm", "-f", id]);
    assert_eq!(d.ok(&["volume", "rm", "data"]), "data\n");
    let err = d.fails(&["volume", "rm", "data"], 1);
    assert_eq!(
        err,
        "Error response from daemon: get data: no such volume\n"
    );
    assert_eq!(d.ok(&["volume", "rm", "-f", "data"]), "data\n");
    // API 1.41's prune removes every unused volume, named ones too.
    assert_eq!(
        d.ok(&["volume", "prune", "-f"]),
        "Deleted Volumes:\nlabelled\n\nTotal reclaimed space: 0B\n"
    );
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn networks_are_created_listed_inspected_removed_and_pruned() {
    if !common::daemon::require_daemon_prerequisites() {
        return;
    }
    // Removing a network tears down its firewall rules: inside a namespace of the test's own.
    common::net::private_netns(|| {
        let Some(d) = daemon("minidock-daemon-net") else {
            return;
        };
        let id = d.ok(&[
            "network",
            "create",
            "--label",
            "team=web",
            "--subnet",
            "10.123.0.0/24",
            "webnet",
        ]);
        let id = id.trim();
        assert_eq!(id.len(), 64, "{id}");
        assert_eq!(
            d.ok(&[
                "network",
                "ls",
                "--format",
                "{{.Name}} {{.Driver}} {{.Scope}}"
            ]),
            "bridge bridge local\nhost host local\nnone null local\nwebnet bridge local\n"
        );
        assert_eq!(
            d.ok(&["network", "ls", "-q", "-f", "label=team=web"]),
            format!("{}\n", &id[..12])
        );
        // The CLI's own front sees the same network.
        assert_eq!(
            d.minidock(&["network", "ls", "-q", "--no-trunc", "-f", "name=webnet"]),
            format!("{id}\n")
        );
        assert_eq!(
            d.ok(&[
                "network",
                "inspect",
                "-f",
                "{{.Name}} {{.Id}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{.Labels}}",
                "webnet"
            ]),
            format!("webnet {id} 10.123.0.0/24 10.123.0.1 map[team:web]\n")
        );
        let err = d.fails(&["network", "create", "webnet"], 1);
        assert_eq!(
            err,
            "Error response from daemon: network with name webnet already exists\n"
        );
        let err = d.fails(&["network", "create", "-d", "overlay", "other"], 1);
        assert_eq!(
            err,
            "Error response from daemon: plugin \"overlay\" not found\n"
        );
        let err = d.fails(&["network", "inspect", "nothing"], 1);
        assert_eq!(
            err,
            "Error response from daemon: network nothing not found\n"
        );
        let err = d.fails(&["network", "rm", "bridge"], 1);
        assert_eq!(
            err,
            "Error response from daemon: bridge is a pre-defined network and cannot be removed\n\
             exit status 1\n"
        );
        assert_eq!(d.ok(&["network", "rm", "webnet"]), "webnet\n");
        let err = d.fails(&["network", "rm", "webnet"], 1);
        // The docker CLI's `network rm` ends its errors with that line.
        assert_eq!(
            err,
            "Error response from daemon: network webnet not found\nexit status 1\n"
        );
        d.ok(&["network", "create", "--subnet", "10.124.0.0/24", "first"]);
        d.ok(&["network", "create", "--subnet", "10.125.0.0/24", "second"]);
        assert_eq!(
            d.ok(&["network", "prune", "-f"]),
            "Deleted Networks:\nfirst\nsecond\n\n"
        );
        assert_eq!(
            d.ok(&["network", "ls", "--format", "{{.Name}}"]),
            "bridge\nhost\nnone\n"
        );
    });
}

#[test]
fn export_and_the_container_and_image_prunes_answer_as_the_cli_expects() {
    let Some(d) = daemon("minidock-daemon-prune") else {
        return;
    };
    let out = d.docker(&[
        "run",
        "--name",
        "ex",
        "busybox",
        "sh",
        "-c",
        "echo exported > /made",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let tar = d.socket().with_file_name("ex.tar");
    let tar_arg = tar.to_str().unwrap();
    assert_eq!(d.ok(&["export", "-o", tar_arg, "ex"]), "");
    let listed = std::process::Command::new("tar")
        .args(["-xOf", tar_arg, "made"])
        .output()
        .unwrap();
    assert_eq!(text(&listed.stdout), "exported\n", "{listed:?}");
    let err = d.fails(&["export", "-o", tar_arg, "nothing"], 1);
    assert_eq!(
        err,
        "Error response from daemon: No such container: nothing\n"
    );
    std::fs::remove_file(&tar).unwrap();
    // container prune: the stopped container goes, the running one stays.
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "ex"]);
    let kept = d.ok(&["run", "-d", "busybox", "sleep", "300"]);
    let pruned = d.ok(&["container", "prune", "-f"]);
    let want = format!(
        "Deleted Containers:\n{}\n\nTotal reclaimed space: ",
        id.trim()
    );
    assert!(pruned.starts_with(&want), "{pruned}");
    assert_eq!(d.ok(&["ps", "-aq", "--no-trunc"]), kept);
    // image prune: nothing dangling; with -a the image in use stays until its container goes.
    assert_eq!(
        d.ok(&["image", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    assert_eq!(
        d.ok(&["image", "prune", "-af"]),
        "Total reclaimed space: 0B\n"
    );
    d.ok(&["rm", "-f", kept.trim()]);
    let image = d.ok(&["inspect", "-f", "{{.Id}}", "busybox"]);
    let pruned = d.ok(&["image", "prune", "-af"]);
    let want = format!(
        "Deleted Images:\nuntagged: busybox:latest\ndeleted: {}\n\nTotal reclaimed space: ",
        image.trim()
    );
    assert!(pruned.starts_with(&want), "{pruned}");
    assert_eq!(d.ok(&["images", "-q"]), "");
}

#[test]
fn stats_answer_once_and_streamed() {
    let Some(d) = daemon("minidock-daemon-stats") else {
        return;
    };
    let id = d.ok(&["run", "-d", "--name", "st", "busybox", "sleep", "300"]);
    let id = id.trim();
    assert_eq!(
        d.ok(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Container}} {{.Name}} {{.ID}} {{.PIDs}} {{.NetIO}}",
            "st"
        ]),
        format!("st st {} 1 0B / 0B\n", &id[..12])
    );
    let err = d.fails(&["stats", "--no-stream", "nothing"], 1);
    assert_eq!(
        err,
        "Error response from daemon: No such container: nothing\n"
    );
    // Streamed: each reading carries the one before as precpu_stats.
    let mut curl = std::process::Command::new("curl")
        .args(["-sN", "--unix-socket"])
        .arg(d.socket())
        .arg("http://localhost/v1.41/containers/st/stats")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(curl.stdout.take().unwrap()));
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let second: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    curl.kill().unwrap();
    curl.wait().unwrap();
    assert_eq!(first["id"], id);
    assert_eq!(first["name"], "/st");
    assert_eq!(first["pids_stats"]["current"], 1);
    assert_eq!(first["precpu_stats"]["system_cpu_usage"], 0);
    let system = first["cpu_stats"]["system_cpu_usage"].as_u64().unwrap();
    assert!(system > 0, "{first}");
    assert_eq!(second["precpu_stats"]["system_cpu_usage"], system);
    assert!(second["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > system);
    d.ok(&["rm", "-f", "st"]);
}

#[test]
fn update_changes_the_limits_and_the_restart_policy() {
    let Some(d) = daemon("minidock-daemon-update") else {
        return;
    };
    d.ok(&["run", "-d", "--name", "up", "busybox", "sleep", "300"]);
    assert_eq!(
        d.ok(&["update", "--memory", "64m", "--pids-limit", "50", "up"]),
        "up\n"
    );
    assert_eq!(d.ok(&["update", "--restart", "on-failure:3", "up"]), "up\n");
    let shown = "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} \
                 {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}";
    assert_eq!(
        d.ok(&["inspect", "-f", shown, "up"]),
        "67108864 50 on-failure:3\n"
    );
    // Both fronts read the same record.
    assert_eq!(
        d.minidock(&["inspect", "-f", shown, "up"]),
        "67108864 50 on-failure:3\n"
    );
    let err = d.fails(&["update", "--memory", "64m", "nothing"], 1);
    assert_eq!(
        err,
        "Error response from daemon: No such container: nothing\n"
    );
    d.ok(&["rm", "-f", "up"]);
}

#[test]
fn system_df_prints_what_minidock_system_df_prints() {
    let Some(d) = daemon("minidock-daemon-df") else {
        return;
    };
    d.ok(&["volume", "create", "kept"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "-v",
        "kept:/d",
        "busybox",
        "sh",
        "-c",
        "echo x > /d/f; sleep 300",
    ]);
    d.docker(&[
        "run",
        "--name",
        "done",
        "busybox",
        "sh",
        "-c",
        "echo y > /written",
    ]);
    let shown = d.ok(&["system", "df"]);
    let own = d.minidock(&["system", "df"]);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 5, "{shown}");
    // The same measures: the docker CLI prints the image size with four digits (1.986MB)
    // where `minidock system df` prints three, so that row is compared by its counts.
    let own_lines: Vec<&str> = own.lines().collect();
    assert_eq!(lines[0], own_lines[0]);
    assert_eq!(lines[2..], own_lines[2..], "{shown}{own}");
    assert!(lines[0].starts_with("TYPE "), "{shown}");
    let counts = |line: &str| {
        line.split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(counts(lines[1]).starts_with("Images 1 1 "), "{shown}");
    assert!(counts(lines[2]).starts_with("Containers 2 1 "), "{shown}");
    assert!(counts(lines[3]).starts_with("Local Volumes 1 1"), "{shown}");
    d.ok(&["rm", "-f", "busy", "done"]);
}

#[test]
fn cp_copies_both_ways_through_the_archive_endpoints() {
    let Some(d) = daemon("minidock-daemon-cp") else {
        return;
    };
    d.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "busybox",
        "sh",
        "-c",
        "echo inside > /in.txt; sleep 300",
    ]);
    eventually(&d, &["exec", "box", "cat", "/in.txt"], "inside\n");
    let dir = d.socket().with_file_name("cp");
    std::fs::create_dir(&dir).unwrap();
    let out = dir.join("out.txt");
    assert_eq!(d.ok(&["cp", "box:/in.txt", out.to_str().unwrap()]), "");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "inside\n");
    let src = dir.join("host.txt");
    std::fs::write(&src, "from the host\n").unwrap();
    assert_eq!(d.ok(&["cp", src.to_str().unwrap(), "box:/tmp/"]), "");
    assert_eq!(
        d.ok(&["exec", "box", "cat", "/tmp/host.txt"]),
        "from the host\n"
    );
    let err = d.fails(&["cp", "box:/nothing", out.to_str().unwrap()], 1);
    assert!(err.contains("/nothing"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    d.ok(&["rm", "-f", "box"]);
}

#[test]
fn cp_through_hostile_paths_stays_in_the_container_and_a_missing_path_is_dockerds_404() {
    let Some(d) = daemon("minidock-daemon-cp-hostile") else {
        return;
    };
    let dir = d.socket().with_file_name("cp-hostile");
    std::fs::create_dir(&dir).unwrap();
    let host_dir = dir.to_str().unwrap().to_owned();
    d.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "300"]);
    // Absolute and relative symlinks that would name the host's directory if followed there.
    let links = format!(
        "mkdir -p /d {host_dir} && ln -s {host_dir} /abs && ln -s ../../../../..{host_dir} /rel \
         && ln -s / /d/root && echo ok"
    );
    assert_eq!(d.ok(&["exec", "box", "sh", "-c", &links]), "ok\n");
    let src = dir.join("host.txt");
    std::fs::write(&src, "from the host\n").unwrap();
    let src = src.to_str().unwrap();
    for target in ["box:/abs/", "box:/rel/"] {
        assert_eq!(d.ok(&["cp", src, target]), "");
    }
    // The copies went to the container's own directory of that name, never the host's.
    let listed = d.docker(&["exec", "box", "ls", &host_dir]);
    assert_eq!(
        text(&listed.stdout),
        "host.txt\n",
        "{}",
        text(&listed.stderr)
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "only host.txt in the host's directory"
    );
    // `..` and a symlink to / resolve inside the container's root.
    let passwd = dir.join("passwd");
    d.ok(&["cp", "box:/d/root/etc/passwd", passwd.to_str().unwrap()]);
    let container_passwd = d.ok(&["exec", "box", "cat", "/etc/passwd"]);
    assert_eq!(std::fs::read_to_string(&passwd).unwrap(), container_passwd);
    let err = d.fails(
        &[
            "cp",
            "box:/../../../../etc/shadow",
            passwd.to_str().unwrap(),
        ],
        1,
    );
    assert_eq!(
        err,
        "Error response from daemon: Could not find the file /../../../../etc/shadow in container box\n"
    );
    let err = d.fails(&["cp", "box:/nothing", passwd.to_str().unwrap()], 1);
    assert_eq!(
        err,
        "Error response from daemon: Could not find the file /nothing in container box\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    d.ok(&["rm", "-f", "box"]);
}

#[test]
fn a_newer_api_version_than_served_is_dockerds_400() {
    let Some(d) = daemon("minidock-daemon-version") else {
        return;
    };
    let answer = d.curl(&["-i", "http://localhost/v9.99/containers/json"]);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(
        answer.ends_with(
            "\r\n\r\n{\"message\":\"client version 9.99 is too new. Maximum supported API version is 1.41\"}\n"
        ),
        "{answer}"
    );
    // The version the CLI negotiates, and an older one, are served.
    for version in ["v1.41", "v1.24"] {
        let list = d.curl(&[&format!("http://localhost/{version}/containers/json")]);
        assert_eq!(list, "[]\n");
    }
}

#[test]
fn a_memory_limit_under_6mb_or_negative_is_dockerds_400_before_the_image_is_looked_at() {
    let Some(d) = daemon("minidock-daemon-minmem") else {
        return;
    };
    for image in ["busybox", "no-such-image"] {
        let out = d.docker(&["create", "-m", "1k", image, "true"]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert_eq!(
            common::text(&out.stderr),
            "Error response from daemon: Minimum memory limit allowed is 6MB\n"
        );
    }
    let answer = d.curl(&[
        "-i",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"Image":"busybox","HostConfig":{"Memory":-5}}"#,
        "http://localhost/v1.41/containers/create",
    ]);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(
        answer.ends_with("{\"message\":\"Minimum memory limit allowed is 6MB\"}\n"),
        "{answer}"
    );
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}

#[test]
fn the_daemon_starts_always_and_unless_stopped_containers_at_its_start() {
    let Some(mut d) = daemon("minidock-daemon-restore") else {
        return;
    };
    for (name, policy) in [("al", "always"), ("us", "unless-stopped"), ("no", "no")] {
        d.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            "busybox",
            "sleep",
            "300",
        ]);
        d.ok(&["stop", "-t", "1", name]);
    }
    assert_eq!(d.ok(&["ps", "-q"]), "");
    d.stop();
    d.spawn();
    // `always` comes back even after a user's stop; `unless-stopped` and `no` stay stopped.
    assert_eq!(
        d.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]),
        "no exited\nus exited\nal running\n"
    );
    d.ok(&["rm", "-f", "al", "us", "no"]);
}

/// `docker login` checks the password through `POST /auth`; pull and push then carry it in
/// `X-Registry-Auth` (the daemon has no credentials of its own).
#[test]
fn login_push_and_pull_through_a_registry_that_wants_a_password() {
    let Some(d) = daemon("minidock-daemon-auth") else {
        return;
    };
    let Some(registry) = common::registry::Registry::start(Some(("alice", "s3cret"))) else {
        return;
    };
    let addr = registry.addr.as_str();
    let login = ["login", "-u", "alice", "--password-stdin", addr];
    let out = d.docker_stdin(&login, "wrong\n");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        text(&out.stderr).trim_end(),
        format!(
            "Error response from daemon: login attempt to http://{addr}/v2/ failed with status: 401 Unauthorized"
        ),
        "{out:?}"
    );
    let name = registry.name("private/app:1");
    d.ok(&["tag", "busybox", &name]);
    // Not logged in: the registry refuses the push.
    let out = d.docker(&["push", &name]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("unauthorized"), "{out:?}");
    // The registry's own storage (its catalog wants the password too).
    let stored = registry
        .storage()
        .join("docker/registry/v2/repositories/private/app/_manifests/tags/1");
    assert!(!stored.exists());

    let out = d.docker_stdin(&login, "s3cret\n");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stdout), "Login Succeeded\n", "{out:?}");
    let pushed = d.ok(&["push", &name]);
    let lines: Vec<&str> = pushed.lines().collect();
    assert_eq!(
        lines[0],
        format!("The push refers to repository [{addr}/private/app]"),
        "{pushed}"
    );
    assert!(lines.iter().any(|l| l.ends_with(": Pushed")), "{pushed}");
    let last = lines.last().unwrap();
    assert!(last.starts_with("1: digest: sha256:"), "{pushed}");
    assert!(last.contains(" size: "), "{pushed}");
    assert!(stored.is_dir(), "{}", stored.display());
    // Again: the registry has every blob.
    let again = d.ok(&["push", &name]);
    assert!(again.contains(": Layer already exists"), "{again}");
    assert!(!again.contains(": Pushed"), "{again}");

    d.ok(&["rmi", &name]);
    let pulled = d.ok(&["pull", &name]);
    assert!(
        pulled.ends_with(&format!(
            "Status: Downloaded newer image for {name}\n{name}\n"
        )),
        "{pulled}"
    );
    d.ok(&["logout", addr]);
    d.ok(&["rmi", &name]);
    let err = d.fails(&["pull", &name], 1);
    assert!(err.contains("unauthorized"), "{err}");
}

#[test]
fn push_of_a_missing_image_fails_as_with_dockerd_and_all_tags_pushes_each_tag() {
    let Some(d) = daemon("minidock-daemon-push-none") else {
        return;
    };
    let Some(registry) = common::registry::Registry::start(None) else {
        return;
    };
    let name = registry.name("nothing/here:1");
    let out = d.docker(&["push", &name]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        format!(
            "The push refers to repository [{}]\n",
            registry.name("nothing/here")
        )
    );
    assert_eq!(
        text(&out.stderr),
        format!(
            "An image does not exist locally with the tag: {}\n",
            registry.name("nothing/here")
        )
    );
    assert!(registry.catalog().is_empty());
    // `push -a`: no tag in the request, every tag of the repository pushed.
    for tag in ["1", "2"] {
        d.ok(&[
            "tag",
            "busybox",
            &registry.name(&format!("every/tag:{tag}")),
        ]);
    }
    let out = d.ok(&["push", "-a", &registry.name("every/tag")]);
    let digests: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(": digest: sha256:"))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(digests, ["1", "2"], "{out}");
    assert_eq!(registry.catalog(), ["every/tag"]);
}

/// The `Step` lines of a classic build's output.
fn steps(output: &str) -> Vec<&str> {
    output.lines().filter(|l| l.starts_with("Step ")).collect()
}

/// `DOCKER_BUILDKIT=0 docker build` sends the context as a tarball to `POST /build`, which
/// runs the build `minidock build` runs.
#[test]
fn docker_build_prints_the_classic_builders_lines() {
    let Some(d) = daemon("minidock-daemon-build") else {
        return;
    };
    let ctx = d.root.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("greeting"), "hi from the context\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY greeting /greeting\nRUN echo run says $(cat /greeting)\nLABEL a=b\n",
    )
    .unwrap();
    let dir = ctx.to_str().unwrap();
    let mut build = d.docker_command();
    build.env("DOCKER_BUILDKIT", "0").args([
        "build",
        "--no-cache",
        "-t",
        "built:1",
        "-t",
        "built:2",
        dir,
    ]);
    let out = build.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let got = text(&out.stdout);
    let lines: Vec<&str> = got.lines().collect();
    let run = lines
        .iter()
        .position(|l| *l == "run says hi from the context")
        .unwrap_or_else(|| panic!("{got}"));
    assert!(lines[run - 2].starts_with("Step 3/4 : RUN echo"), "{got}");
    assert!(lines[run - 1].starts_with(" ---> Running in "), "{got}");
    assert_eq!(
        &lines[lines.len() - 2..],
        ["Successfully tagged built:1", "Successfully tagged built:2"],
        "{got}"
    );
    let built = lines[lines.len() - 3]
        .strip_prefix("Successfully built ")
        .unwrap_or_else(|| panic!("{got}"));
    let id = d.ok(&["images", "-q", "built:2"]);
    assert_eq!(id.trim(), built);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.Config.Labels.a}}", "built:1"]),
        "b\n"
    );
    let cli = d.minidock(&["build", "--no-cache", "-t", "cli", dir]);
    assert_eq!(steps(&got), steps(&cli));
    assert_eq!(steps(&got).len(), 4);

    // A failing RUN: dockerd's message, and its status as the exit code, as `minidock build`.
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN exit 3\n").unwrap();
    let out = d
        .docker_command()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", dir])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        text(&out.stderr)
            .ends_with("The command '/bin/sh -c exit 3' returned a non-zero code: 3\n"),
        "{out:?}"
    );
    let cli = d.root.output(&["build", dir]);
    assert_eq!(cli.status.code(), Some(3), "{cli:?}");
    assert_eq!(steps(&text(&out.stdout)), steps(&text(&cli.stdout)));

    // A Dockerfile on stdin, no context; `-q` prints the ID alone.
    let mut piped = d.docker_command();
    piped.env("DOCKER_BUILDKIT", "0");
    let out = {
        common::output_with_stdin(
            piped.args(["build", "-q", "-t", "piped", "-"]),
            b"FROM busybox\nENV PIPED=yes\n",
        )
    };
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "piped"]);
    assert_eq!(text(&out.stdout), id);
    assert_eq!(
        d.ok(&["run", "--rm", "piped", "sh", "-c", "echo $PIPED"]),
        "yes\n"
    );
    // BuildKit is refused with what to do instead.
    let out = d.curl(&["-X", "POST", "http://d/build?version=2"]);
    assert!(out.contains("DOCKER_BUILDKIT=0"), "{out}");
}

/// `docker search REGISTRY/TERM` through `GET /images/search`: the results `minidock search`
/// prints (the distribution registry has no `/v1/search`: its catalog), in Docker's columns.
#[test]
fn search_of_a_registry_prints_what_minidock_search_prints() {
    let Some(d) = daemon("minidock-daemon-search") else {
        return;
    };
    let Some(registry) = common::registry::Registry::start(None) else {
        return;
    };
    for repo in ["team/searched", "other/searchedtoo", "team/unrelated"] {
        let name = registry.name(&format!("{repo}:1"));
        d.minidock(&["tag", "busybox", &name]);
        d.minidock(&["push", "-q", &name]);
    }
    let term = registry.name("searched");
    let got = d.ok(&["search", &term]);
    assert_eq!(got, d.minidock(&["search", &term]));
    let names = d.ok(&["search", "--format", "{{.Name}} {{.StarCount}}", &term]);
    assert_eq!(
        names,
        format!(
            "{} 0\n{} 0\n",
            registry.name("other/searchedtoo"),
            registry.name("team/searched")
        )
    );
    let one = d.ok(&["search", "--limit", "1", "--format", "{{.Name}}", &term]);
    assert_eq!(one, format!("{}\n", registry.name("other/searchedtoo")));
    let official = d.ok(&[
        "search",
        "-f",
        "is-official=true",
        "--format",
        "{{.Name}}",
        &term,
    ]);
    assert_eq!(official, "");
    let err = d.fails(&["search", "-f", "foo=1", &term], 1);
    assert_eq!(err, "Error response from daemon: Invalid filter 'foo'\n");
    let err = d.fails(&["search", "--limit", "101", &term], 1);
    assert_eq!(
        err,
        "Error response from daemon: Limit 101 is outside the range of [1, 100]\n"
    );
}

/// Runs `openssl ARGS` in `dir`, which must succeed.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// A CA (`NAME-ca.pem`) and a certificate it signed for `usage` (`NAME.pem`, `NAME-key.pem`),
/// with `extra` extensions.
fn certificate(dir: &std::path::Path, name: &str, usage: &str, extra: &str) {
    let ca = format!("{name}-ca.pem");
    let ca_key = format!("{name}-ca-key.pem");
    if !dir.join(&ca).exists() {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=minidock test CA",
                "-keyout",
                &ca_key,
                "-out",
                &ca,
            ],
        );
    }
    let (key, csr, cert, ext) = (
        format!("{name}-key.pem"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &key,
            "-out",
            &csr,
        ],
    );
    std::fs::write(dir.join(&ext), format!("extendedKeyUsage={usage}\n{extra}")).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &ext,
            "-out",
            &cert,
        ],
    );
}

/// TCP is served only with TLS, and only to clients with a certificate the daemon's CA
/// signed: `docker --tlsverify -H tcp://...` works; without a certificate, with one from
/// another CA, or without TLS, the connection goes nowhere.
#[test]
fn tcp_is_served_with_tls_to_clients_with_a_certificate() {
    if !common::prerequisite(
        common::have("openssl", "version"),
        "openssl is not installed (apt-get install openssl)",
    ) {
        return;
    }
    let certs = tempfile::Builder::new()
        .prefix("minidock-daemon-tls")
        .tempdir()
        .unwrap();
    let dir = certs.path();
    // The client's CA signs the daemon's certificate too, as in Docker's guide.
    certificate(dir, "server", "serverAuth", "subjectAltName=IP:127.0.0.1\n");
    std::fs::copy(dir.join("server-ca.pem"), dir.join("client-ca.pem")).unwrap();
    std::fs::copy(dir.join("server-ca-key.pem"), dir.join("client-ca-key.pem")).unwrap();
    certificate(dir, "client", "clientAuth", "");
    certificate(dir, "stranger", "clientAuth", "");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("tcp://127.0.0.1:{port}");
    let file = |name: &str| dir.join(name).display().to_string();
    let flags = [
        "-H".to_owned(),
        host.clone(),
        "--tlsverify".to_owned(),
        "--tlscacert".to_owned(),
        file("server-ca.pem"),
        "--tlscert".to_owned(),
        file("server.pem"),
        "--tlskey".to_owned(),
        file("server-key.pem"),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let Some(d) = Daemon::start_with("minidock-daemon-tls", &flags) else {
        return;
    };
    let docker = |tls: &[String], args: &[&str]| {
        let mut cmd = std::process::Command::new("docker");
        cmd.env("DOCKER_CONFIG", d.root.path().join("docker-config"))
            .env_remove("DOCKER_HOST")
            .args(tls)
            .args(["-H", &host])
            .args(args)
            .stdin(std::process::Stdio::null());
        cmd.output().unwrap()
    };
    let with = |name: &str| {
        vec![
            "--tlsverify".to_owned(),
            "--tlscacert".to_owned(),
            file("client-ca.pem"),
            "--tlscert".to_owned(),
            file(&format!("{name}.pem")),
            "--tlskey".to_owned(),
            file(&format!("{name}-key.pem")),
        ]
    };
    let out = docker(&with("client"), &["version", "--format", "{{.Server.Os}}"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stdout), "linux\n");
    let out = docker(
        &with("client"),
        &["run", "--rm", "busybox", "echo", "over tls"],
    );
    assert_eq!(text(&out.stdout), "over tls\n", "{out:?}");

    // No client certificate: the handshake fails.
    let out = docker(
        &[
            "--tlsverify".into(),
            "--tlscacert".into(),
            file("client-ca.pem"),
        ],
        &["version", "--format", "{{.Server.Os}}"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("tls:"), "{out:?}");
    // A certificate another CA signed.
    let out = docker(&with("stranger"), &["ps"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("tls:"), "{out:?}");
    // Plain HTTP.
    let out = docker(&[], &["ps"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // The unix socket still serves.
    assert_eq!(d.ok(&["ps", "-q"]), "");
}

/// `docker ARGS` against one daemon, as (stdout, stderr, exit code).
type Docker<'a> = &'a dyn Fn(&[&str]) -> std::process::Output;

/// Runs `docker ARGS` and notes what it printed and its exit code.
fn note(seen: &mut Vec<String>, docker: Docker, args: &[&str]) -> String {
    let out = docker(args);
    let stdout = text(&out.stdout);
    seen.push(format!(
        "docker {args:?}: {stdout:?} {:?} {:?}",
        text(&out.stderr),
        out.status.code()
    ));
    stdout
}

/// `curl -sS --unix-socket SOCKET ARGS`: the body, then a line with the HTTP status.
fn curl_at(socket: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}", "--unix-socket"])
        .arg(socket)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Replaces each of `ids` (in full, then its first 12 characters) by `ID`.
fn without_ids(seen: &[String], ids: &[String]) -> String {
    let mut all = seen.join("\n");
    for id in ids.iter().filter(|id| id.len() >= 12) {
        all = all.replace(id.as_str(), "ID").replace(&id[..12], "ID");
    }
    all
}

/// Signals to paused containers, as dockerd 20.10 answers them: a signal is followed by a
/// thaw (and an `unpause` event) unless the container has another stop signal of its own, so
/// `kill -s TERM` leaves a paused `sleep` running, `stop` lets a trap run at once, and `kill`
/// and `rm -f` end it.
fn paused_signals(docker: Docker) -> (Vec<String>, Vec<String>) {
    let (mut seen, mut ids) = (Vec::new(), Vec::new());
    let mut run = |args: &[&str]| {
        let out = docker(args);
        assert!(out.status.success(), "docker {args:?}: {out:?}");
        ids.push(text(&out.stdout).trim().to_owned());
    };
    run(&["run", "-d", "--name", "term", "busybox", "sleep", "1000"]);
    run(&[
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
    let trap = "trap 'exit 5' TERM; echo ready; while true; do sleep 0.1; done";
    run(&["run", "-d", "--name", "polite", "busybox", "sh", "-c", trap]);
    run(&["run", "-d", "--name", "gone", "busybox", "sleep", "1000"]);
    for name in ["term", "own", "polite", "gone"] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while name == "polite" && text(&docker(&["logs", name]).stdout) != "ready\n" {
            assert!(Instant::now() < deadline, "the trap was never set");
            std::thread::sleep(Duration::from_millis(20));
        }
        note(&mut seen, docker, &["pause", name]);
    }
    let state = ["inspect", "-f", "{{.State.Status}} {{.State.Paused}}"];
    note(&mut seen, docker, &["kill", "-s", "TERM", "term"]);
    note(&mut seen, docker, &[&state[..], &["term"]].concat());
    note(&mut seen, docker, &["kill", "-s", "TERM", "own"]);
    note(&mut seen, docker, &[&state[..], &["own"]].concat());
    note(&mut seen, docker, &["kill", "own"]);
    note(&mut seen, docker, &["wait", "own"]);
    let started = Instant::now();
    note(&mut seen, docker, &["stop", "-t", "30", "polite"]);
    seen.push(format!(
        "stop took under 10 s: {}",
        started.elapsed() < Duration::from_secs(10)
    ));
    note(&mut seen, docker, &["wait", "polite"]);
    note(&mut seen, docker, &["rm", "-f", "gone"]);
    note(&mut seen, docker, &["ps", "-aq", "--filter", "name=gone"]);
    // `--until` counts whole seconds: past this one, every event so far is in.
    std::thread::sleep(Duration::from_millis(1100));
    let events = [
        "events",
        "--since",
        "1h",
        "--until",
        "0s",
        "--format",
        "{{.Action}}",
    ];
    note(
        &mut seen,
        docker,
        &[&events[..], &["--filter", "container=term"]].concat(),
    );
    (seen, ids)
}

#[test]
fn signals_to_a_paused_container_thaw_it_as_dockerd_does() {
    if !require_docker() {
        return;
    }
    let Some(d) = daemon("minidock-daemon-paused") else {
        return;
    };
    let dockerd = Dockerd::start();
    dockerd.load_busybox();
    let (ours, our_ids) = paused_signals(&|args| d.docker(args));
    let (theirs, their_ids) = paused_signals(&|args| dockerd.docker(args));
    let ours = without_ids(&ours, &our_ids);
    assert_eq!(ours, without_ids(&theirs, &their_ids));
    assert!(ours.contains("\"running false\\n\""), "{ours}");
    assert!(ours.contains("stop took under 10 s: true"), "{ours}");
    let events = "\"create\\nstart\\npause\\nkill\\nunpause\\n\"";
    assert!(ours.contains(events), "{ours}");
}

/// A detached exec that cannot start, `rmi` of an image a running container uses, and the
/// exec instances of a removed container, as dockerd 20.10 answers them.
fn exec_and_rmi_refusals(docker: Docker, socket: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let (mut seen, mut ids) = (Vec::new(), Vec::new());
    let web = note(
        &mut seen,
        docker,
        &["run", "-d", "--name", "web", "busybox", "sleep", "1000"],
    );
    ids.push(web.trim().to_owned());
    note(&mut seen, docker, &["exec", "-d", "web", "nosuch-program"]);
    note(&mut seen, docker, &["exec", "-d", "web", "/etc/passwd"]);
    note(
        &mut seen,
        docker,
        &["exec", "-d", "-w", "/nosuchdir", "web", "true"],
    );
    note(
        &mut seen,
        docker,
        &["exec", "-d", "-u", "nosuchuser", "web", "true"],
    );
    note(
        &mut seen,
        docker,
        &["exec", "-w", "/nosuchdir", "web", "true"],
    );
    note(
        &mut seen,
        docker,
        &["exec", "-d", "web", "sh", "-c", "exit 3"],
    );
    // Exec instances through the API: a failed start, a second start, and after the
    // container's removal, 404s.
    let json = ["-H", "Content-Type: application/json", "-X", "POST", "-d"];
    let mut exec = |cmd: &str| {
        let body = format!("{{\"Cmd\": [{cmd}]}}");
        let url = "http://localhost/v1.41/containers/web/exec";
        let answer = curl_at(socket, &[&json[..], &[&body, url]].concat());
        let value: serde_json::Value =
            serde_json::from_str(answer.lines().next().unwrap_or("")).unwrap();
        let id = value["Id"].as_str().unwrap_or_default().to_owned();
        ids.push(id.clone());
        id
    };
    let (failing, sleeping, unstarted) = (
        exec("\"nosuch\""),
        exec("\"sleep\", \"1000\""),
        exec("\"true\""),
    );
    let start = |id: &str| {
        let url = format!("http://localhost/v1.41/exec/{id}/start");
        curl_at(socket, &[&json[..], &["{\"Detach\": true}", &url]].concat())
    };
    let inspect = |id: &str| curl_at(socket, &[&format!("http://localhost/v1.41/exec/{id}/json")]);
    seen.push(start(&failing));
    let shown: serde_json::Value =
        serde_json::from_str(inspect(&failing).lines().next().unwrap_or("")).unwrap();
    seen.push(format!(
        "{} {} {}",
        shown["Running"], shown["ExitCode"], shown["Pid"]
    ));
    seen.push(start(&failing));
    seen.push(start(&sleeping));
    seen.push(start(&sleeping));
    seen.push(inspect(&unstarted).lines().last().unwrap_or("").to_owned());
    note(&mut seen, docker, &["rm", "-f", "web"]);
    for id in [&failing, &sleeping, &unstarted] {
        seen.push(inspect(id));
    }
    // rmi of the image of a running container: by ID a conflict even forced.
    let user = note(
        &mut seen,
        docker,
        &["run", "-d", "--name", "user", "busybox", "sleep", "1000"],
    );
    ids.push(user.trim().to_owned());
    let image = text(&docker(&["images", "-q", "busybox"]).stdout)
        .trim()
        .to_owned();
    ids.push(image.clone());
    note(&mut seen, docker, &["rmi", "-f", &image]);
    note(&mut seen, docker, &["rmi", &image]);
    note(&mut seen, docker, &["rmi", "busybox"]);
    let url = format!("http://localhost/v1.41/images/{image}?force=1");
    seen.push(curl_at(socket, &["-X", "DELETE", &url]));
    note(
        &mut seen,
        docker,
        &["images", "--format", "{{.Repository}}:{{.Tag}}"],
    );
    (seen, ids)
}

#[test]
fn failed_detached_execs_rmi_conflicts_and_removed_execs_answer_as_dockerd() {
    if !require_docker() {
        return;
    }
    let Some(d) = daemon("minidock-daemon-refused") else {
        return;
    };
    let dockerd = Dockerd::start();
    dockerd.load_busybox();
    let (ours, our_ids) = exec_and_rmi_refusals(&|args| d.docker(args), d.socket());
    let socket = dockerd.path().join("docker.sock");
    let (theirs, their_ids) = exec_and_rmi_refusals(&|args| dockerd.docker(args), &socket);
    let ours = without_ids(&ours, &our_ids);
    assert_eq!(ours, without_ids(&theirs, &their_ids));
    for words in [
        "executable file not found in $PATH: unknown\\n\" Some(1)",
        "No such exec instance: ID\"}\n\n404",
        "(cannot be forced) - image is being used by running container ID",
    ] {
        assert!(ours.contains(words), "{words}: {ours}");
    }
}

#[test]
fn anonymous_volumes_are_made_and_settings_minidock_does_not_apply_are_refused() {
    let Some(d) = daemon("minidock-daemon-anon") else {
        return;
    };
    // `-v /PATH` is the request's `Config.Volumes`: an anonymous volume, which outlives the
    // container.
    let out = d.docker(&[
        "run",
        "--name",
        "anon",
        "-v",
        "/anonv",
        "busybox",
        "sh",
        "-c",
        "echo precious > /anonv/f && cat /anonv/f",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stdout), "precious\n");
    let volume = d.ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}",
        "anon",
    ]);
    let fields: Vec<&str> = volume.split_whitespace().collect();
    assert_eq!((fields[0], fields[2]), ("volume", "/anonv"), "{volume:?}");
    d.ok(&["rm", "anon"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), fields[1]);
    d.ok(&["volume", "rm", fields[1]]);
    // What minidock would not apply is refused, not dropped; what it does anyway is taken.
    for (flags, field) in [
        (&["--cpu-shares", "512"][..], "HostConfig.CpuShares"),
        (&["--ulimit", "nofile=1024:2048"][..], "HostConfig.Ulimits"),
        (&["--shm-size", "1m"][..], "HostConfig.ShmSize"),
        (&["--log-opt", "max-size=1m"][..], "HostConfig.LogConfig"),
        (&["--pid", "host"][..], "HostConfig.PidMode"),
        (&["--health-cmd", "true"][..], "Config.Healthcheck"),
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend(flags);
        args.extend(["busybox", "true"]);
        let out = d.docker(&args);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {out:?}");
        assert!(
            text(&out.stderr).contains(&format!("{field} is not supported by minidock")),
            "{args:?}: {out:?}"
        );
    }
    let taken = d.docker(&[
        "run",
        "--rm",
        "--log-driver",
        "json-file",
        "--ipc",
        "private",
        "busybox",
        "true",
    ]);
    assert_eq!(taken.status.code(), Some(0), "{taken:?}");
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}

/// `ps --filter` `volume`, `network`, `publish`, `expose` and `isolation`, and `ps -s`, as
/// the same docker CLI sees them from dockerd and from minidock: the same containers (on two
/// user networks, with a volume, a bind mount, published ports and an image's exposed ones)
/// and the same rows, sizes, messages and exit codes, bad port values included.
#[test]
fn ps_volume_network_port_filters_and_sizes_answer_as_dockerd() {
    if !common::daemon::require_daemon_prerequisites() || !require_docker() {
        return;
    }
    common::net::private_netns(|| {
        let Some(d) = daemon("minidock-daemon-psf") else {
            return;
        };
        let docker = Dockerd::start();
        docker.load_busybox();
        let rootfs = common::busybox_rootfs();
        let tar = rootfs.path().with_extension("tar");
        common::tar_dir(rootfs.path(), &tar);
        let bind = format!("{}:/hosttmp", rootfs.path().display());
        let steps: &[&[&str]] = &[
            &["network", "create", "n1"],
            &["network", "create", "n2"],
            &["volume", "create", "v1"],
            &[
                "import",
                "--change",
                "EXPOSE 90 7000/udp",
                tar.to_str().unwrap(),
                "exp",
            ],
            &[
                "run",
                "-d",
                "--name",
                "ca",
                "--network",
                "n1",
                "-v",
                "v1:/data",
            ],
            &[
                "run",
                "-d",
                "--name",
                "cb",
                "--network",
                "n2",
                "-v",
                &bind,
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
            &[
                "run",
                "--name",
                "cf",
                "--network",
                "n2",
                "-p",
                "9000:9000",
                "busybox",
            ],
            &[
                "run",
                "-d",
                "--name",
                "cg",
                "--network",
                "n2",
                "-p",
                "127.0.0.1:5000:5001/udp",
                "--expose",
                "4444",
                "--expose",
                "3000-3001/udp",
            ],
        ];
        let tails: &[&[&str]] = &[
            &[],
            &[],
            &[],
            &[],
            &["-p", "8080:80", "busybox", "sleep", "1000"],
            &["sleep", "1000"],
            &["true"],
            &["echo hi > /file; dd if=/dev/zero of=/big bs=1k count=100 2>/dev/null"],
            &["true"],
            &["-p", "6000-6001:7000-7001", "busybox", "sleep", "1000"],
        ];
        for (step, tail) in steps.iter().zip(tails) {
            let args = [*step, *tail].concat();
            docker.ok(&args);
            d.ok(&args);
        }
        std::fs::remove_file(&tar).unwrap();
        let outcome =
            |out: std::process::Output| (out.status.code(), text(&out.stdout), text(&out.stderr));
        let prefix = |id: String| id.trim()[..6].to_owned();
        let (ours_n2, theirs_n2) = (
            prefix(d.ok(&["network", "inspect", "-f", "{{.Id}}", "n2"])),
            prefix(docker.ok(&["network", "inspect", "-f", "{{.Id}}", "n2"])),
        );
        let mut cases: Vec<Vec<&str>> = [
            "volume=v1",
            "volume=/data",
            "volume=/hosttmp",
            "volume=v",
            "volume=",
            "network=n1",
            "network=n",
            "network=none",
            "publish=8080",
            "publish=8080/udp",
            "publish=80",
            "publish=9000",
            "publish=5000/udp",
            "publish=5999-6000",
            "publish=80/",
            "expose=80",
            "expose=90",
            "expose=7000/udp",
            "expose=7000",
            "expose=7000-7001",
            "expose=5001/udp",
            "expose=53/udp",
            "expose=4444",
            "expose=3001/udp",
            "expose=3000-3005/tcp",
            "isolation=default",
            "isolation=hyperv",
            // Bad values: dockerd's messages, exit 1.
            "publish=abc",
            "publish=80:80",
            "publish=",
            "publish=/tcp",
            "publish=81-80",
            "publish=70000",
            "expose=-5",
            "expose=7-",
            "since=nope",
            "before=nope",
        ]
        .iter()
        .map(|f| vec!["ps", "-a", "--filter", f, "--format", "{{.Names}}"])
        .collect();
        cases.push(vec![
            "ps",
            "--filter",
            "publish=6000",
            "--filter",
            "volume=v1",
        ]);
        cases.push(vec![
            "ps",
            "--filter",
            "volume=v1",
            "--filter",
            "volume=/hosttmp",
        ]);
        cases.push(vec!["ps", "--filter", "publish=x", "--filter", "exited=x"]);
        cases.push(vec!["ps", "--filter", "expose=x", "--filter", "publish=y"]);
        cases.push(vec![
            "ps",
            "--filter",
            "network=n1",
            "--filter",
            "expose=80/tcp",
        ]);
        cases.push(vec!["ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}"]);
        for case in &mut cases {
            if !case.contains(&"--format") {
                case.extend(["--format", "{{.Names}}"]);
            }
            let (ours, theirs) = (outcome(d.docker(case)), outcome(docker.docker(case)));
            assert_eq!(ours, theirs, "{case:?}");
        }
        // A network's ID, or its start: each daemon's own.
        let ours = d.ok(&[
            "ps",
            "-a",
            "--filter",
            &format!("network={ours_n2}"),
            "--format",
            "{{.Names}}",
        ]);
        let theirs = docker.ok(&[
            "ps",
            "-a",
            "--filter",
            &format!("network={theirs_n2}"),
            "--format",
            "{{.Names}}",
        ]);
        assert_eq!(ours, theirs);
        assert_eq!(ours, "cg\ncf\ncb\n");
        // The sizes themselves, in bytes: what ce wrote, and that with the image.
        let sizes = d.curl(&["http://localhost/containers/json?all=1&size=1"]);
        let rows: serde_json::Value = serde_json::from_str(&sizes).unwrap();
        let ce = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["Names"][0] == "/ce")
            .unwrap();
        assert_eq!(ce["SizeRw"], 102403, "{ce}");
        let image: u64 = d
            .ok(&["image", "inspect", "-f", "{{.Size}}", "busybox"])
            .trim()
            .parse()
            .unwrap();
        assert_eq!(ce["SizeRootFs"], 102403 + image, "{ce}");
        let cd = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["Names"][0] == "/cd")
            .unwrap();
        assert!(cd.get("SizeRw").is_none(), "{cd}");
        for name in ["ca", "cb", "cg"] {
            d.ok(&["rm", "-f", name]);
            docker.ok(&["rm", "-f", name]);
        }
    });
}

/// The list's `NetworkSettings.Networks` names the container's networks, so `docker ps`'s
/// NETWORKS column shows what it shows with dockerd.
#[test]
fn ps_shows_each_containers_networks_as_dockerd_does() {
    if !require_docker() {
        return;
    }
    let Some(d) = daemon("minidock-daemon-ps-networks") else {
        return;
    };
    let dockerd = Dockerd::start();
    dockerd.load_busybox();
    let listing = |docker: &dyn Fn(&[&str]) -> std::process::Output| {
        for (name, network) in [("psnet-none", "none"), ("psnet-host", "host")] {
            let out = docker(&[
                "create",
                "--name",
                name,
                "--network",
                network,
                "busybox",
                "true",
            ]);
            assert_eq!(out.status.code(), Some(0), "{out:?}");
        }
        let out = docker(&["ps", "-a", "--format", "{{.Names}} {{.Networks}}"]);
        let mut lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
        lines.sort();
        docker(&["rm", "psnet-none", "psnet-host"]);
        lines
    };
    let ours = listing(&|args| d.docker(args));
    let theirs = listing(&|args| dockerd.docker(args));
    assert_eq!(ours, ["psnet-host host", "psnet-none none"]);
    assert_eq!(ours, theirs);
}

/// What a paused or running container refuses, what `id=` selects and the order of
/// `create`'s refusals, against dockerd 20.10 (IDs replaced by `ID`); minidock's own CLI
/// refuses in the same words.
#[test]
fn paused_running_and_name_refusals_match_dockerd() {
    if !require_docker() {
        return;
    }
    let Some(d) = daemon("minidock-daemon-paused") else {
        return;
    };
    let dockerd = Dockerd::start();
    dockerd.load_busybox();
    let setup: &[&[&str]] = &[
        &["run", "-d", "--name", "ru", "busybox", "sleep", "1000"],
        &["run", "-d", "--name", "pa", "busybox", "sleep", "1000"],
    ];
    let mut ids = (Vec::new(), Vec::new());
    for args in setup {
        ids.0.push(d.ok(args).trim().to_owned());
        ids.1.push(dockerd.ok(args).trim().to_owned());
    }
    d.ok(&["pause", "pa"]);
    dockerd.ok(&["pause", "pa"]);
    let commands: &[&[&str]] = &[
        &["start", "pa"],
        &["start", "ru"],
        &["ps", "-a", "--filter", "id=", "--format", "{{.Names}}"],
        &["ps", "-a", "--filter", "id=.", "--format", "{{.Names}}"],
        &["ps", "-a", "--filter", "id=", "--filter", "name=ru", "-q"],
        &["rm", "ru"],
        &["rm", "pa"],
        &["create", "--name", "ru", "busybox", "true"],
        &["create", "--name", "nocmd", "busybox"],
        &["create", "--name", "ru", "busybox"],
        &["events", "--since", "200", "--until", "100"],
    ];
    let differ = differences(&d, &dockerd, commands, &ids);
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    // `id=` takes the start of exactly one ID.
    let pa = &ids.0[1];
    let filter = format!("id={}", &pa[..5]);
    let args = [
        "ps",
        "-a",
        "--filter",
        filter.as_str(),
        "--format",
        "{{.Names}}",
    ];
    assert_eq!(d.ok(&args), "pa\n");
    assert_eq!(d.minidock(&args), "pa\n");
    assert_eq!(d.minidock(&["ps", "-a", "--filter", "id=", "-q"]), "");
    // minidock's CLI: the same words, exit 1 as `docker start`, `rm` and `create` (125 from
    // `run`, as `docker run`).
    let refusals: &[(&[&str], i32, String)] = &[
        (
            &["start", "pa"],
            1,
            "cannot start a paused container, try unpause instead".to_owned(),
        ),
        (
            &["rm", "pa"],
            1,
            format!(
                "You cannot remove a paused container {pa}. Unpause and then stop the \
                 container before attempting removal or force remove"
            ),
        ),
        (
            &["rm", "ru"],
            1,
            format!(
                "You cannot remove a running container {}. Stop the container before \
                 attempting removal or force remove",
                ids.0[0]
            ),
        ),
        (
            &["create", "--name", "pa", "busybox", "true"],
            1,
            format!(
                "Conflict. The container name \"/pa\" is already in use by container \"{pa}\". \
                 You have to remove (or rename) that container to be able to reuse that name."
            ),
        ),
        (
            &["create", "--name", "pa", "busybox"],
            1,
            "No command specified".to_owned(),
        ),
        (
            &["run", "--name", "pa", "busybox"],
            125,
            "No command specified".to_owned(),
        ),
    ];
    for (args, code, words) in refusals {
        let out = d.root.output(args);
        assert_eq!(out.status.code(), Some(*code), "{args:?}");
        assert_eq!(
            text(&out.stderr),
            format!("minidock: {words}\n"),
            "{args:?}"
        );
        assert_eq!(text(&out.stdout), "", "{args:?}");
    }
    // dockerd's status codes: 409 for the paused start, 400 for nothing to run and for a
    // window that ends before it begins.
    let status = |args: &[&str]| {
        let mut all = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        d.curl(&all)
    };
    assert_eq!(
        status(&["-X", "POST", "http://localhost/containers/pa/start"]),
        "409"
    );
    let body = r#"{"Image":"busybox"}"#;
    let json = "Content-Type: application/json";
    let create = "http://localhost/containers/create?name=ru";
    assert_eq!(
        status(&["-X", "POST", "-H", json, "-d", body, create]),
        "400"
    );
    assert_eq!(
        status(&["http://localhost/events?since=200&until=100"]),
        "400"
    );
    dockerd.docker(&["unpause", "pa"]);
}
