//! `attach`, `start -a`/`-i` and `run -a`: the stdio of a container through its shim's attach
//! socket. A terminal on the client's side is a pty the test holds (tests/common/pty.rs); the
//! evidence is what the container's own shell prints (`stty size` for the window size, its
//! exit status, a trap that saw a signal) and, for the shapes, the docker CLI against a
//! private dockerd.

mod common;

use common::dockerd::{Dockerd, require_docker};
use common::pty::Pty;
use common::root::BusyboxRoot;
use common::text;
use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> Option<BusyboxRoot> {
    BusyboxRoot::new("minidock-attach")
}

/// Whether the container is running, as `inspect` says.
fn running(root: &BusyboxRoot, name: &str) -> bool {
    root.ok(&["inspect", "-f", "{{.State.Running}}", name])
        .trim()
        == "true"
}

/// Waits (at most 30 s) for `child` to exit; kills it and panics if it does not.
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the client never exited");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `minidock attach ARGS` with the pty as its terminal.
fn attach_in(root: &BusyboxRoot, pty: &mut Pty, args: &[&str]) -> Child {
    in_pty(root.cmd().arg("attach").args(args), pty)
}

/// `cmd` with the pty as its terminal.
fn in_pty(cmd: &mut Command, pty: &mut Pty) -> Child {
    let child = cmd
        .stdin(pty.stdio())
        .stdout(pty.stdio())
        .stderr(pty.stdio())
        .spawn()
        .unwrap();
    pty.close_slave();
    child
}

/// Sends `input` on stdin and closes it; returns the output (panics after 60 s).
fn with_stdin(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out,
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("{cmd:?} never exited");
        }
    }
}

#[test]
fn attach_to_a_tty_shell_types_reads_and_detaches_with_ctrl_p_ctrl_q() {
    let Some(root) = root() else { return };
    root.ok(&["run", "-dit", "--name", "tty-shell", "busybox", "sh"]);
    let mut pty = Pty::new(24, 80);
    let mut client = attach_in(&root, &mut pty, &["tty-shell"]);
    // The shell's arithmetic proves the keys reached it (the echo of the line shows the
    // expression, not its value).
    pty.write(b"echo hi-$((6*7))\r");
    pty.wait_for("hi-42");
    pty.write(b"\x10\x11");
    let status = wait_exit(&mut client);
    // Docker's CLI ends a detached attach with this error, status 1.
    assert_eq!(status.code(), Some(1), "{}", pty.output());
    pty.wait_for("read escape sequence");
    assert!(
        running(&root, "tty-shell"),
        "detaching stopped the container"
    );
    // A second client finds the same shell, with the same state.
    let mut pty = Pty::new(24, 80);
    let mut client = attach_in(&root, &mut pty, &["tty-shell"]);
    pty.write(b"exit 5\r");
    assert_eq!(wait_exit(&mut client).code(), Some(5), "{}", pty.output());
    assert!(!running(&root, "tty-shell"));
}

#[test]
fn detach_keys_are_dockers_syntax_and_replace_the_default() {
    let Some(root) = root() else { return };
    root.ok(&["run", "-dit", "--name", "keys", "busybox", "sh"]);
    let mut pty = Pty::new(24, 80);
    let mut client = attach_in(&root, &mut pty, &["--detach-keys", "ctrl-x,y", "keys"]);
    // ctrl-p ctrl-q are keys like any other now: the client stays.
    pty.write(b"\x10\x11echo still-$((1+1))\r");
    pty.wait_for("still-2");
    assert!(
        client.try_wait().unwrap().is_none(),
        "ctrl-p ctrl-q detached"
    );
    pty.write(b"\x18y");
    assert_eq!(wait_exit(&mut client).code(), Some(1), "{}", pty.output());
    assert!(running(&root, "keys"));
    // Without a terminal here, only --no-stdin gets as far as the keys (Docker's order).
    let out = root.output(&["attach", "--no-stdin", "--detach-keys", "ctrl-1", "keys"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Invalid detach keys (ctrl-1) provided"));
}

#[test]
fn attach_to_a_non_tty_interactive_container_splits_stdout_and_stderr_and_returns_its_status() {
    let Some(root) = root() else { return };
    root.ok(&["run", "-di", "--name", "pipes", "busybox", "sh"]);
    let mut cmd = root.cmd();
    cmd.args(["attach", "pipes"]);
    let out = with_stdin(cmd, b"echo out-$((2*3)); echo err-$((3*3)) >&2; exit 3\n");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(text(&out.stdout), "out-6\n");
    assert_eq!(text(&out.stderr), "err-9\n");
    // What went through the attach is in the log too.
    let logs = root.output(&["logs", "pipes"]);
    assert_eq!(text(&logs.stdout), "out-6\n");
    assert_eq!(text(&logs.stderr), "err-9\n");
}

#[test]
fn no_stdin_keeps_the_input_to_the_client() {
    let Some(root) = root() else { return };
    root.ok(&["run", "-di", "--name", "nostdin", "busybox", "sh"]);
    let mut cmd = root.cmd();
    cmd.args(["attach", "--no-stdin", "nostdin"]);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"exit 4\n").unwrap();
    // The shell never read it: it runs on, and the client with it, until we stop it.
    std::thread::sleep(Duration::from_millis(500));
    assert!(running(&root, "nostdin"));
    assert!(child.try_wait().unwrap().is_none());
    root.ok(&["kill", "nostdin"]);
    assert_eq!(wait_exit(&mut child).code(), Some(137));
}

/// A container that prints `tick` every 0.1 s once its trap for USR1 is set; the trap
/// prints `got-usr1` and exits 9.
const TICKER: &str = "trap 'echo got-usr1; exit 9' USR1; while true; do echo tick; sleep 0.1; done";

/// `minidock attach ARGS` with piped stdout, returned once it has copied a `tick` (its signal
/// handling is in place by then).
fn attach_to_ticker(
    root: &BusyboxRoot,
    args: &[&str],
) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = root
        .cmd()
        .arg("attach")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30)).expect("no tick");
    assert_eq!(first, "tick");
    (child, rx)
}

#[test]
fn sig_proxy_passes_signals_to_the_container_and_can_be_turned_off() {
    let Some(root) = root() else { return };
    root.ok(&[
        "run", "-d", "--name", "proxy", "busybox", "sh", "-c", TICKER,
    ]);
    let (mut child, rx) = attach_to_ticker(&root, &["proxy"]);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
    let status = wait_exit(&mut child);
    let lines: Vec<String> = rx.try_iter().collect();
    let log = root.output(&["logs", "proxy"]);
    assert_eq!(
        status.code(),
        Some(9),
        "{status:?}; attach copied {lines:?}; logs: {}",
        String::from_utf8_lossy(&log.stdout)
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("got-usr1"),
        "{lines:?}"
    );
    assert_eq!(
        root.ok(&["inspect", "-f", "{{.State.ExitCode}}", "proxy"])
            .trim(),
        "9"
    );

    root.ok(&[
        "run", "-d", "--name", "noproxy", "busybox", "sh", "-c", TICKER,
    ]);
    let (mut child, _rx) = attach_to_ticker(&root, &["--sig-proxy=false", "noproxy"]);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    // As Docker's CLI: the signal neither reaches the container nor ends the client, which
    // stays attached until the container's end (137 from `kill`, not 9 from the trap).
    root.ok(&["kill", "noproxy"]);
    assert_eq!(wait_exit(&mut child).code(), Some(137));
}

#[test]
fn a_resized_window_is_the_containers_stty_size() {
    let Some(root) = root() else { return };
    root.ok(&["run", "-dit", "--name", "winch", "busybox", "sh"]);
    let mut pty = Pty::new(30, 100);
    let mut client = attach_in(&root, &mut pty, &["winch"]);
    pty.write(b"echo size-$(stty size | tr ' ' x)\r");
    pty.wait_for("size-30x100");
    pty.resize(41, 123);
    let pid = nix::unistd::Pid::from_raw(client.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGWINCH).unwrap();
    // The resize travels on the socket ahead of the next keys.
    pty.write(b"echo size-$(stty size | tr ' ' x)\r");
    pty.wait_for("size-41x123");
    pty.write(b"exit\r");
    assert_eq!(wait_exit(&mut client).code(), Some(0), "{}", pty.output());
}

#[test]
fn start_attach_and_interactive_print_and_return_the_status() {
    let Some(root) = root() else { return };
    root.ok(&[
        "create",
        "--name",
        "sa",
        "busybox",
        "sh",
        "-c",
        "echo out-$((5*5)); exit 6",
    ]);
    let out = root.output(&["start", "-a", "sa"]);
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    assert_eq!(text(&out.stdout), "out-25\n");
    let script = "read x; echo got-$x; exit 4";
    root.ok(&[
        "create", "-i", "--name", "si", "busybox", "sh", "-c", script,
    ]);
    let mut cmd = root.cmd();
    cmd.args(["start", "-i", "si"]);
    let out = with_stdin(cmd, b"abc\n");
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert_eq!(text(&out.stdout), "got-abc\n");
}

#[test]
fn run_attach_chooses_the_streams() {
    let Some(root) = root() else { return };
    let command = ["busybox", "sh", "-c", "echo out; echo err >&2"];
    let out = root.output(&[&["run", "--rm", "-a", "stdout"][..], &command[..]].concat());
    assert_eq!(
        (text(&out.stdout), text(&out.stderr)),
        ("out\n".into(), "".into())
    );
    let out = root.output(&[&["run", "--rm", "-a", "STDERR"][..], &command[..]].concat());
    assert_eq!(
        (text(&out.stdout), text(&out.stderr)),
        ("".into(), "err\n".into())
    );
    let both = ["run", "--rm", "-a", "stdout", "-a", "stderr"];
    let out = root.output(&[&both[..], &command[..]].concat());
    assert_eq!(
        (text(&out.stdout), text(&out.stderr)),
        ("out\n".into(), "err\n".into())
    );
}

/// Runs `args` under both; the exit codes are the same and docker's message (without its
/// `Error response from daemon: ` and `Error: `) is in ours. The output is not compared:
/// with piped input, docker's daemon may see the input before the output is attached.
fn same(root: &BusyboxRoot, docker: &Dockerd, args: &[&str], input: &[u8]) {
    let mut cmd = root.cmd();
    cmd.args(args);
    let ours = with_stdin(cmd, input);
    let mut cmd = docker.docker_command();
    cmd.args(args);
    let theirs = with_stdin(cmd, input);
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "{args:?}\nours: {ours:?}\ndocker's: {theirs:?}"
    );
    let message = text(&theirs.stderr);
    let message = message
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("Error response from daemon: ")
        .trim_start_matches("Error: ")
        .to_owned();
    assert!(
        text(&ours.stderr)
            .to_lowercase()
            .contains(&message.to_lowercase()),
        "{args:?}: ours {:?}, docker's {message:?}",
        text(&ours.stderr)
    );
}

#[test]
fn exit_codes_and_messages_are_dockers() {
    let Some(root) = root() else { return };
    if !require_docker() {
        return;
    }
    let docker = Dockerd::start();
    docker.load_busybox();
    for args in [
        &["run", "-di", "--name", "shell", "busybox", "sh"][..],
        &["create", "--name", "stopped", "busybox", "true"][..],
    ] {
        root.ok(args);
        docker.ok(args);
    }
    // The status passes through.
    same(&root, &docker, &["attach", "shell"], b"echo hi; exit 3\n");
    same(&root, &docker, &["attach", "stopped"], b"");
    same(&root, &docker, &["attach", "nothing-by-that-name"], b"");
    same(
        &root,
        &docker,
        &["run", "-a", "bogus", "busybox", "true"],
        b"",
    );
    same(
        &root,
        &docker,
        &["run", "-d", "-a", "stdout", "busybox", "true"],
        b"",
    );
    same(&root, &docker, &["start", "-a", "stopped"], b"");
}

#[test]
fn a_detached_container_is_the_child_of_the_light_shim() {
    let Some(root) = root() else { return };
    let id = root.ok(&["run", "-d", "busybox", "sleep", "1000"]);
    let id = id.trim();
    let pid = root.ok(&["inspect", "-f", "{{.State.Pid}}", id]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
    let parent = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .unwrap()
        .trim()
        .to_owned();
    // The kernel's parent is the shim recorded as the supervisor, and it is minidock-shim,
    // a subreaper, not the minidock binary.
    let state = std::fs::read_to_string(root.path().join("containers").join(id).join("state.json"))
        .unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["SupervisorPid"].to_string(), parent);
    let exe = std::fs::read_link(format!("/proc/{parent}/exe")).unwrap();
    assert_eq!(exe.file_name().unwrap(), "minidock-shim", "{exe:?}");
    let shim_status = std::fs::read_to_string(format!("/proc/{parent}/status")).unwrap();
    assert!(shim_status.contains("State:\tS"), "{shim_status}");
}

/// Waits (at most 30 s) until `inspect` no longer finds `name`.
fn wait_removed(root: &BusyboxRoot, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while root.output(&["inspect", name]).status.success() {
        assert!(Instant::now() < deadline, "{name} was never removed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn run_it_detaches_with_ctrl_p_ctrl_q_and_attach_finds_the_same_shell() {
    let Some(root) = root() else { return };
    let mut pty = Pty::new(24, 80);
    let mut client = in_pty(
        root.cmd()
            .args(["run", "-it", "--name", "runit", "busybox", "sh"]),
        &mut pty,
    );
    pty.write(b"x=$((6*7)); echo hi-$x\r");
    pty.wait_for("hi-42");
    pty.write(b"\x10\x11");
    // As Docker's `run`: status 0 and no message.
    assert_eq!(wait_exit(&mut client).code(), Some(0), "{}", pty.output());
    assert!(
        !pty.output().contains("read escape sequence"),
        "{}",
        pty.output()
    );
    assert!(running(&root, "runit"), "detaching stopped the container");
    // The shell that was typed into is still there: it remembers $x.
    let mut pty = Pty::new(24, 80);
    let mut client = attach_in(&root, &mut pty, &["runit"]);
    pty.write(b"echo again-$x\r");
    pty.wait_for("again-42");
    pty.write(b"exit 5\r");
    assert_eq!(wait_exit(&mut client).code(), Some(5), "{}", pty.output());
    assert_eq!(
        root.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "runit"
        ])
        .trim(),
        "exited 5"
    );
}

#[test]
fn run_and_start_take_detach_keys() {
    let Some(root) = root() else { return };
    let mut pty = Pty::new(24, 80);
    let mut client = in_pty(
        root.cmd().args([
            "run",
            "-it",
            "--detach-keys",
            "ctrl-x,y",
            "--name",
            "runkeys",
            "busybox",
            "sh",
        ]),
        &mut pty,
    );
    // ctrl-p ctrl-q reach the shell as keys like any other.
    pty.write(b"\x10\x11echo still-$((1+1))\r");
    pty.wait_for("still-2");
    assert!(
        client.try_wait().unwrap().is_none(),
        "ctrl-p ctrl-q detached"
    );
    pty.write(b"\x18y");
    assert_eq!(wait_exit(&mut client).code(), Some(0), "{}", pty.output());
    assert!(running(&root, "runkeys"));

    root.ok(&["create", "-it", "--name", "startkeys", "busybox", "sh"]);
    let mut pty = Pty::new(24, 80);
    let mut client = in_pty(
        root.cmd()
            .args(["start", "-ai", "--detach-keys", "ctrl-x,y", "startkeys"]),
        &mut pty,
    );
    pty.write(b"echo started-$((2+3))\r");
    pty.wait_for("started-5");
    pty.write(b"\x18y");
    assert_eq!(wait_exit(&mut client).code(), Some(0), "{}", pty.output());
    assert!(running(&root, "startkeys"));

    // Bad keys: exit 1 before the start; the container stays created, as with Docker.
    let out = root.output(&[
        "run",
        "-t",
        "--detach-keys",
        "ctrl-1",
        "--name",
        "badkeys",
        "busybox",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("Invalid detach keys (ctrl-1) provided"));
    assert_eq!(
        root.ok(&["inspect", "-f", "{{.State.Status}}", "badkeys"])
            .trim(),
        "created"
    );
    let out = root.output(&["start", "-a", "--detach-keys", "ctrl-1", "badkeys"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn run_sig_proxy_false_leaves_the_container_alone_and_a_tty_run_proxies() {
    let Some(root) = root() else { return };
    let mut child = root
        .cmd()
        .args([
            "run",
            "--sig-proxy=false",
            "--name",
            "runnoproxy",
            "busybox",
            "sh",
            "-c",
            TICKER,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "tick\n");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
    // Not passed on, not fatal to the client (Docker's CLI ignores it too): the container
    // ends by `kill` (137), not by its trap (9).
    root.ok(&["kill", "runnoproxy"]);
    assert_eq!(wait_exit(&mut child).code(), Some(137));
    // The container is the shim's: killing the client leaves it running.
    root.ok(&["rm", "runnoproxy"]);
    let mut child = root
        .cmd()
        .args([
            "run",
            "--sig-proxy=false",
            "--name",
            "orphan",
            "busybox",
            "sh",
            "-c",
            TICKER,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        running(&root, "orphan"),
        "the container died with its client"
    );

    // With a terminal too, Docker's `run` passes signals on.
    let mut pty = Pty::new(24, 80);
    let mut client = in_pty(
        root.cmd().args([
            "run", "-t", "--name", "ttyproxy", "busybox", "sh", "-c", TICKER,
        ]),
        &mut pty,
    );
    pty.wait_for("tick");
    let pid = nix::unistd::Pid::from_raw(client.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
    assert_eq!(wait_exit(&mut client).code(), Some(9), "{}", pty.output());
    pty.wait_for("got-usr1");
}

#[test]
fn run_rm_it_detached_is_removed_when_it_exits_later() {
    let Some(root) = root() else { return };
    let mut pty = Pty::new(24, 80);
    let mut client = in_pty(
        root.cmd()
            .args(["run", "--rm", "-it", "--name", "rmlater", "busybox", "sh"]),
        &mut pty,
    );
    pty.write(b"echo up-$((3*3))\r");
    pty.wait_for("up-9");
    pty.write(b"\x10\x11");
    assert_eq!(wait_exit(&mut client).code(), Some(0), "{}", pty.output());
    assert!(running(&root, "rmlater"));
    let id = root.ok(&["inspect", "-f", "{{.Id}}", "rmlater"]);
    let mut pty = Pty::new(24, 80);
    let mut client = attach_in(&root, &mut pty, &["rmlater"]);
    pty.write(b"exit 3\r");
    assert_eq!(wait_exit(&mut client).code(), Some(3), "{}", pty.output());
    wait_removed(&root, "rmlater");
    assert!(!root.path().join("containers").join(id.trim()).exists());
}

#[test]
fn a_foreground_tty_run_passes_the_status_and_a_start_failure_through() {
    let Some(root) = root() else { return };
    let out = root.output(&["run", "--rm", "-t", "busybox", "sh", "-c", "tty; exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert_eq!(text(&out.stdout), "/dev/pts/0\r\n");
    let out = root.output(&["run", "--rm", "-t", "busybox", "no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    let out = root.output(&["run", "--rm", "-t", "busybox", "/etc"]);
    assert_eq!(out.status.code(), Some(126), "{out:?}");
    assert_eq!(root.ok(&["ps", "-aq"]), "", "--rm left a container");
    // Piped input is no terminal: `-it` is refused before anything is made.
    let mut cmd = root.cmd();
    cmd.args(["run", "--rm", "-it", "busybox", "sh", "-c", "read x"]);
    let out = with_stdin(cmd, b"abc\n");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(root.ok(&["ps", "-aq"]), "");
}

/// Runs `args` in a pty under both, types `line`, waits for `expect` and types ctrl-p
/// ctrl-q; returns each one's status and whether it printed "read escape sequence".
fn detached_under_both(
    root: &BusyboxRoot,
    docker: &Dockerd,
    args: &[&str],
    line: &[u8],
    expect: &str,
) -> [(Option<i32>, bool); 2] {
    let mut ours = root.cmd();
    ours.args(args);
    let mut theirs = docker.docker_command();
    theirs.args(args);
    [ours, theirs].map(|mut cmd| {
        let mut pty = Pty::new(24, 80);
        let mut client = in_pty(&mut cmd, &mut pty);
        pty.write(line);
        pty.wait_for(expect);
        pty.write(b"\x10\x11");
        let status = wait_exit(&mut client);
        // The pty's reader may lag behind the exit.
        std::thread::sleep(Duration::from_millis(300));
        (status.code(), pty.output().contains("read escape sequence"))
    })
}

#[test]
fn detaching_is_dockers_for_run_start_and_attach() {
    let Some(root) = root() else { return };
    if !require_docker() {
        return;
    }
    let docker = Dockerd::start();
    docker.load_busybox();
    let run = ["run", "-it", "--name", "both", "busybox", "sh"];
    let [ours, theirs] = detached_under_both(&root, &docker, &run, b"echo r-$((2*4))\r", "r-8");
    assert_eq!(ours, theirs);
    assert_eq!(ours, (Some(0), false));
    let [ours, theirs] = detached_under_both(
        &root,
        &docker,
        &["attach", "both"],
        b"echo a-$((2*5))\r",
        "a-10",
    );
    assert_eq!(ours, theirs);
    assert_eq!(ours, (Some(1), true));
    let create = ["create", "-it", "--name", "st", "busybox", "sh"];
    root.ok(&create);
    docker.ok(&create);
    let [ours, theirs] = detached_under_both(
        &root,
        &docker,
        &["start", "-ai", "st"],
        b"echo s-$((2*6))\r",
        "s-12",
    );
    assert_eq!(ours, theirs);
    assert_eq!(ours, (Some(0), false));
    // Without a terminal the keys are bytes like any other, as moby copies them.
    let mut ours = root.cmd();
    ours.args(["run", "--rm", "-i", "busybox", "cat"]);
    let mut theirs = docker.docker_command();
    theirs.args(["run", "--rm", "-i", "busybox", "cat"]);
    let [ours, theirs] = [ours, theirs].map(|cmd| with_stdin(cmd, b"a\x10\x11b\n"));
    assert_eq!(ours.stdout, theirs.stdout);
    assert_eq!(ours.stdout, b"a\x10\x11b\n");
    let [ours, theirs] = [root.output(&["ps", "-q"]), docker.docker(&["ps", "-q"])];
    assert_eq!(text(&ours.stdout).lines().count(), 2);
    assert_eq!(text(&theirs.stdout).lines().count(), 2);
}

#[test]
fn a_tty_run_with_a_restart_policy_returns_at_the_first_exit_and_its_shim_goes_on() {
    let Some(root) = root() else { return };
    let script = "echo run; exit 4";
    let out = root.output(&[
        "run",
        "-t",
        "--name",
        "ttyrestart",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert_eq!(text(&out.stdout), "run\r\n");
    assert_eq!(root.ok(&["wait", "ttyrestart"]).trim(), "4");
    assert_eq!(
        root.ok(&["inspect", "-f", "{{.RestartCount}}", "ttyrestart"])
            .trim(),
        "2"
    );
    assert_eq!(root.ok(&["logs", "ttyrestart"]), "run\r\nrun\r\nrun\r\n");
}

#[test]
fn explain_traces_a_tty_run_through_its_shim_to_the_removal() {
    let Some(root) = root() else { return };
    let out = root.output(&["--explain", "run", "--rm", "-t", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let trace = text(&out.stderr);
    let steps = [
        "mount the overlay",
        "start a shim to supervise the container",
        "clone into new namespaces",
        "open a terminal in the container",
        "unmount the overlay",
        "record the exit status",
        "remove the container's directory",
    ];
    let mut last = 0;
    for step in steps {
        let at = trace[last..]
            .find(step)
            .unwrap_or_else(|| panic!("step {step:?} missing or out of order in:\n{trace}"));
        last += at;
    }
    // From its terminal on, the container's own steps go where its stderr goes: the pty.
    assert!(
        text(&out.stdout).contains("execute the container's program"),
        "{out:?}"
    );
}

/// Runs `args` (a container printing ticks) under both, sends `signal` to the client once
/// it has copied a tick, kills the container and returns both clients' exit codes.
fn signalled_under_both(
    root: &BusyboxRoot,
    docker: &Dockerd,
    args: &[&str],
    name: &str,
    signal: nix::sys::signal::Signal,
) -> [Option<i32>; 2] {
    let mut ours = root.cmd();
    ours.args(args);
    let mut theirs = docker.docker_command();
    theirs.args(args);
    let kill_ours = || root.ok(&["kill", name]);
    let kill_theirs = || docker.ok(&["kill", name]);
    let kills: [&dyn Fn() -> String; 2] = [&kill_ours, &kill_theirs];
    let mut codes = [None, None];
    for (i, mut cmd) in [ours, theirs].into_iter().enumerate() {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert_eq!(line, "tick\n");
        // Keep draining, so the container never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
        kills[i]();
        codes[i] = wait_exit(&mut child).code();
    }
    codes
}

#[test]
fn signals_without_sig_proxy_are_ignored_as_dockers() {
    let Some(root) = root() else { return };
    if !require_docker() {
        return;
    }
    let docker = Dockerd::start();
    docker.load_busybox();
    use nix::sys::signal::Signal;
    let run = [
        "run",
        "--sig-proxy=false",
        "--name",
        "np",
        "busybox",
        "sh",
        "-c",
        TICKER,
    ];
    for signal in [Signal::SIGTERM, Signal::SIGUSR1] {
        let codes = signalled_under_both(&root, &docker, &run, "np", signal);
        assert_eq!(codes, [Some(137), Some(137)], "run {signal:?}");
        root.ok(&["rm", "np"]);
        docker.ok(&["rm", "np"]);
    }
    let detached = ["run", "-d", "--name", "np", "busybox", "sh", "-c", TICKER];
    root.ok(&detached);
    docker.ok(&detached);
    let attach = ["attach", "--sig-proxy=false", "np"];
    let codes = signalled_under_both(&root, &docker, &attach, "np", Signal::SIGTERM);
    assert_eq!(codes, [Some(137), Some(137)], "attach");
}

/// A container that prints `tick` every 0.1 s once its trap for `signal` (a name or number
/// as `trap` takes it) is set; the trap prints `got-SIGNAL` and exits 9.
fn trap_ticker(signal: &str) -> String {
    format!("trap 'echo got-{signal}; exit 9' {signal}; while true; do echo tick; sleep 0.1; done")
}

/// Spawns `cmd` (a client of a ticker), sends `signo` once it has copied a tick, and returns
/// how it exited; with `then_kill`, kills container `name` after the signal (through `kill`).
fn signal_client(
    mut cmd: Command,
    signo: i32,
    then_kill: Option<&dyn Fn()>,
) -> std::process::ExitStatus {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "tick\n");
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signo) }, 0);
    if let Some(kill) = then_kill {
        std::thread::sleep(Duration::from_millis(500));
        kill();
    }
    wait_exit(&mut child)
}

#[test]
fn every_catchable_signal_is_passed_on_or_ignored_as_dockers() {
    use std::os::unix::process::ExitStatusExt;
    let Some(root) = root() else { return };
    if !require_docker() {
        return;
    }
    let docker = Dockerd::start();
    docker.load_busybox();
    // Passed on (the trap's 9), for `run` in this process and `attach` through the shim.
    for (signo, name) in [
        (libc::SIGALRM, "ALRM"),
        (37, "37"),
        (libc::SIGWINCH, "WINCH"),
    ] {
        let script = trap_ticker(name);
        let run = ["run", "--rm", "busybox", "sh", "-c", &script];
        let mut ours = root.cmd();
        ours.args(run);
        let mut theirs = docker.docker_command();
        theirs.args(run);
        let codes = [ours, theirs].map(|cmd| signal_client(cmd, signo, None).code());
        assert_eq!(codes, [Some(9), Some(9)], "run, signal {name}");
        let detached = ["run", "-d", "--name", "sig", "busybox", "sh", "-c", &script];
        root.ok(&detached);
        docker.ok(&detached);
        let mut ours = root.cmd();
        ours.args(["attach", "sig"]);
        let mut theirs = docker.docker_command();
        theirs.args(["attach", "sig"]);
        let codes = [ours, theirs].map(|cmd| signal_client(cmd, signo, None).code());
        assert_eq!(codes, [Some(9), Some(9)], "attach, signal {name}");
        root.ok(&["rm", "sig"]);
        docker.ok(&["rm", "sig"]);
    }
    // Without --sig-proxy: SIGALRM is ignored (the client stays until the `kill`, 137),
    // SIGHUP ends the client, and the container goes on.
    let script = trap_ticker("ALRM");
    let run = [
        "run",
        "--sig-proxy=false",
        "--name",
        "np",
        "busybox",
        "sh",
        "-c",
        &script,
    ];
    let mut ours = root.cmd();
    ours.args(run);
    let kill_ours = || {
        root.ok(&["kill", "np"]);
    };
    let ours = signal_client(ours, libc::SIGALRM, Some(&kill_ours));
    let mut theirs = docker.docker_command();
    theirs.args(run);
    let kill_theirs = || {
        docker.ok(&["kill", "np"]);
    };
    let theirs = signal_client(theirs, libc::SIGALRM, Some(&kill_theirs));
    assert_eq!([ours.code(), theirs.code()], [Some(137), Some(137)]);
    root.ok(&["rm", "np"]);
    docker.ok(&["rm", "np"]);
    let mut ours = root.cmd();
    ours.args(run);
    let mut theirs = docker.docker_command();
    theirs.args(run);
    let signals = [ours, theirs].map(|cmd| signal_client(cmd, libc::SIGHUP, None).signal());
    assert_eq!(signals, [Some(libc::SIGHUP), Some(libc::SIGHUP)]);
    assert!(running(&root, "np"));
    root.ok(&["rm", "-f", "np"]);
}

#[test]
fn a_terminal_for_a_piped_stdin_is_refused_as_dockers() {
    let Some(root) = root() else { return };
    if !require_docker() {
        return;
    }
    let docker = Dockerd::start();
    docker.load_busybox();
    let run = ["run", "-it", "--name", "notty", "busybox", "true"];
    same(&root, &docker, &run, b"\n");
    let mut ours = root.cmd();
    ours.args(run);
    let out = with_stdin(ours, b"\n");
    assert_eq!(
        text(&out.stderr),
        "minidock: the input device is not a TTY\n"
    );
    // Nothing was created.
    assert!(!root.output(&["inspect", "notty"]).status.success());
    assert!(!docker.docker(&["inspect", "notty"]).status.success());
    // `-i` attaches stdin even when `-a` names only stdout.
    let run = ["run", "-it", "-a", "stdout", "busybox", "true"];
    same(&root, &docker, &run, b"");
    let detached = ["run", "-dt", "--name", "ttyd", "busybox", "sh"];
    root.ok(&detached);
    docker.ok(&detached);
    same(&root, &docker, &["attach", "ttyd"], b"exit 3\n");
    assert!(running(&root, "ttyd"));
    // Without a terminal on the container's side, piped input is fine.
    same(
        &root,
        &docker,
        &["run", "--rm", "-t", "busybox", "true"],
        b"",
    );
}

#[test]
fn bad_detach_keys_fail_the_attach_as_dockers() {
    let Some(root) = root() else { return };
    if !require_docker() {
        return;
    }
    let docker = Dockerd::start();
    docker.load_busybox();
    for (name, tty) in [("bk-t", "-t"), ("bk", "--sig-proxy=true")] {
        let run = [
            "run",
            tty,
            "--detach-keys",
            "ctrl-1",
            "--name",
            name,
            "busybox",
            "true",
        ];
        same(&root, &docker, &run, b"");
        // The container stays created.
        let status = ["inspect", "-f", "{{.State.Status}}", name];
        assert_eq!(root.ok(&status).trim(), "created");
        assert_eq!(docker.ok(&status).trim(), "created");
    }
    same(
        &root,
        &docker,
        &["start", "-a", "--detach-keys", "ab", "bk"],
        b"",
    );
    let status = ["inspect", "-f", "{{.State.Status}}", "bk"];
    assert_eq!(root.ok(&status).trim(), "created");
    let detached = ["run", "-d", "--name", "up", "busybox", "sleep", "100"];
    root.ok(&detached);
    docker.ok(&detached);
    same(
        &root,
        &docker,
        &["attach", "--detach-keys", "ctrl-1", "up"],
        b"",
    );
    // A detached run never attaches: its keys are not looked at.
    let run = ["run", "-d", "--detach-keys", "ctrl-1", "busybox", "true"];
    same(&root, &docker, &run, b"");
}
