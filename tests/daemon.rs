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
    // --rm: nothing left, seen from both fronts.
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert_eq!(d.minidock(&["ps", "-aq"]), "");
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
    // A container the CLI made shows through the daemon.
    d.minidock(&["create", "--name", "made-by-cli", "busybox", "true"]);
    assert_eq!(
        d.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]),
        "made-by-cli Created\nweb Up Less than a second\n".replace(
            "Up Less than a second",
            d.ok(&["ps", "--format", "{{.Status}}", "--filter", "name=web"])
                .trim()
        )
    );
    // Removing a running container needs force: Docker's 409.
    let err = d.fails(&["rm", "web"], 1);
    assert_eq!(
        err,
        "Error response from daemon: cannot remove container \"/web\": container is running: \
         stop the container before removing or force remove\n"
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
    let mut cmd = d.docker_command();
    cmd.args(["run", "-it", "--rm", "busybox", "sh"])
        .stdin(pty.stdio())
        .stdout(pty.stdio())
        .stderr(pty.stdio());
    // SAFETY: setsid(2) and ioctl(2) are async-signal-safe: the pty becomes the CLI's
    // controlling terminal, as in a real session.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut client = cmd.spawn().unwrap();
    pty.close_slave();
    pty.wait_for("# ");
    // The shell's arithmetic proves the keys reached it.
    pty.write(b"echo hi-$((6*7))\r");
    pty.wait_for("hi-42");
    pty.write(b"stty size\r");
    pty.wait_for("24 80");
    pty.write(b"exit 5\r");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = client.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "docker run -it never exited: {}",
            pty.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
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
        text(&out.stderr).contains("TCP is not supported"),
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
    ];
    for args in commands {
        let ours = d.docker(args);
        let theirs = dockerd.docker(args);
        assert_eq!(
            (text(&ours.stdout), text(&ours.stderr), ours.status.code()),
            (
                text(&theirs.stdout),
                text(&theirs.stderr),
                theirs.status.code()
            ),
            "docker {args:?}"
        );
    }
}
