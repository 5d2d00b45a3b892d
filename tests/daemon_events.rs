//! `minidock daemon`'s events, commit, save/load and the fixes of its container routes,
//! driven by the real docker CLI through `DOCKER_HOST`: each test asserts what the CLI
//! printed and its exit code.

mod common;

use common::daemon::Daemon;
use common::text;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Now as the CLI's `--since`/`--until` take it: Unix seconds with nine fraction digits.
fn unix_now() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}

const EVENT_FORMAT: &str = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Status}}";

#[test]
fn events_since_until_list_a_runs_life_as_dockerd_does() {
    let Some(d) = Daemon::start("minidock-devents-run") else {
        return;
    };
    let since = unix_now();
    let name = "devents-run";
    let out = d.docker(&["run", "--name", name, "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let id = d.ok(&["inspect", "--format", "{{.Id}}", name]);
    let id = id.trim();
    d.ok(&["rm", name]);
    let until = unix_now();
    let filter = format!("container={name}");
    let args = [
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        &filter,
        "--format",
        EVENT_FORMAT,
    ];
    // dockerd's sequence for `docker run` (create, the CLI's attach, start, die) and `rm`.
    let want = format!(
        "container create {name} create\ncontainer attach {name} attach\n\
         container start {name} start\ncontainer die {name} die\n\
         container destroy {name} destroy\n"
    );
    assert_eq!(d.ok(&args), want);
    // The same journal through minidock's own CLI.
    assert_eq!(d.minidock(&args), want);
    // The default format: the time, the type, the action, the ID and the sorted attributes.
    let die = d.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        &filter,
        "--filter",
        "event=die",
    ]);
    // execDuration is whole seconds the process ran: 0 on a quiet machine, more under load.
    let (head, tail) = die
        .split_once(" (execDuration=")
        .expect("an execDuration attribute");
    assert!(head.ends_with(&format!(" container die {id}")), "{die:?}");
    let (seconds, tail) = tail.split_once(',').unwrap();
    assert!(seconds.parse::<u64>().is_ok(), "{die:?}");
    assert_eq!(
        tail,
        format!(" exitCode=3, image=busybox, name={name})\n"),
        "{die:?}"
    );
    assert_eq!(die.lines().count(), 1, "{die}");
    let stamp = die.split(' ').next().unwrap();
    assert_eq!(stamp.len(), "2024-05-01T12:00:00.000000000Z".len(), "{die}");
    // The API's JSON: the legacy fields of a container event and the scope.
    let json = d.curl(&[
        &format!(
            "http://localhost/events?since={since}&until={until}&filters=%7B%22event%22%3A%7B%22start%22%3Atrue%7D%7D"
        ),
    ]);
    let event: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(event["status"], "start", "{json}");
    assert_eq!(event["id"], id, "{json}");
    assert_eq!(event["from"], "busybox", "{json}");
    assert_eq!(event["Type"], "container", "{json}");
    assert_eq!(event["Actor"]["Attributes"]["name"], name, "{json}");
    assert_eq!(event["scope"], "local", "{json}");
    // Another type's events pass `type=` and not a container filter.
    d.ok(&["volume", "create", "devents-vol"]);
    d.ok(&["volume", "rm", "devents-vol"]);
    let until = unix_now();
    let volumes = d.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=volume",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}",
    ]);
    assert_eq!(
        volumes,
        "volume create devents-vol local\nvolume destroy devents-vol local\n"
    );
    let bad = d.fails(&["events", "--filter", "nokey"], 125);
    assert!(
        bad.contains("bad format of filter (expected name=value)"),
        "{bad}"
    );
}

/// Reads lines until one starts with `want` (at most 60 s: a bound, not a measure).
fn read_until(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    want: &str,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    for line in lines {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.starts_with(want) {
            return seen;
        }
        assert!(Instant::now() < deadline, "no {want:?} in {seen:?}");
    }
    panic!("the stream ended without {want:?}: {seen:?}");
}

#[test]
fn events_stream_while_a_container_starts() {
    let Some(d) = Daemon::start("minidock-devents-stream") else {
        return;
    };
    let since = unix_now();
    d.ok(&["volume", "create", "devents-first"]);
    let mut events = d
        .docker_command()
        .args([
            "events",
            "--since",
            &since,
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = events.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    // The stream is live once the event made before it was asked for is printed; what comes
    // after that can only come through following the journal.
    read_until(&mut lines, "volume create");
    let name = "devents-stream";
    d.ok(&["run", "-d", "--name", name, "busybox", "sleep", "60"]);
    let seen = read_until(&mut lines, &format!("container start {name}"));
    assert!(
        seen.contains(&format!("container create {name}")),
        "{seen:?}"
    );
    d.ok(&["rm", "-f", name]);
    read_until(&mut lines, &format!("container destroy {name}"));
    let _ = events.kill();
    let _ = events.wait();
}

#[test]
fn commit_makes_an_image_of_the_containers_changes() {
    let Some(d) = Daemon::start("minidock-devents-commit") else {
        return;
    };
    let since = unix_now();
    d.ok(&[
        "run",
        "--name",
        "devents-c",
        "busybox",
        "sh",
        "-c",
        "echo made > /made",
    ]);
    let id = d.ok(&[
        "commit",
        "-m",
        "the file",
        "-a",
        "Ada <ada@example.com>",
        "-c",
        "ENV GREETING=hi",
        "-c",
        r#"CMD ["cat", "/made"]"#,
        "devents-c",
        "devents/committed:1",
    ]);
    let hex = id
        .trim()
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("{id:?}"));
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id:?}"
    );
    assert_eq!(d.ok(&["run", "--rm", "devents/committed:1"]), "made\n");
    let inspect = d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}|{{.Comment}}|{{.Author}}|{{.Config.Env}}",
        "devents/committed:1",
    ]);
    assert!(
        inspect.starts_with(&format!("{}|the file|Ada <ada@example.com>|", id.trim())),
        "{inspect}"
    );
    assert!(inspect.contains("GREETING=hi"), "{inspect}");
    let err = d.fails(&["commit", "devents-nope"], 1);
    assert_eq!(
        err,
        "Error response from daemon: No such container: devents-nope\n"
    );
    let until = unix_now();
    let events = d.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "event=commit",
        "--format",
        "{{.Actor.Attributes.name}} {{.Actor.Attributes.comment}}",
    ]);
    assert_eq!(events, "devents-c the file\n");
}

#[test]
fn save_and_load_round_trip_through_a_file_and_a_pipe() {
    let Some(d) = Daemon::start("minidock-devents-save") else {
        return;
    };
    let image = "devents/saved:1";
    d.ok(&["tag", "busybox", image]);
    let file = d.root.path().join("saved.tar");
    let file = file.to_str().unwrap();
    assert_eq!(d.ok(&["save", "-o", file, image]), "");
    let listing = std::process::Command::new("tar")
        .args(["-tf", file])
        .output()
        .unwrap();
    assert!(listing.status.success());
    let listing = text(&listing.stdout);
    assert!(listing.lines().any(|l| l == "manifest.json"), "{listing}");
    assert!(listing.lines().any(|l| l == "index.json"), "{listing}");
    d.ok(&["rmi", image]);
    assert_eq!(
        d.ok(&["load", "-i", file]),
        format!("Loaded image: {image}\n")
    );
    assert_eq!(
        d.ok(&["load", "-q", "-i", file]),
        format!("Loaded image: {image}\n")
    );
    // `docker save | docker load`, the archive streamed out and back in.
    let piped = std::process::Command::new("sh")
        .args(["-c", &format!("docker save {image} | docker load")])
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_CONFIG", d.root.path().join("docker-config"))
        .output()
        .unwrap();
    assert!(piped.status.success(), "{}", text(&piped.stderr));
    assert_eq!(text(&piped.stdout), format!("Loaded image: {image}\n"));
    // By name in the path, as older clients ask.
    let by_path = d.curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{content_type}",
        "http://localhost/images/devents%2Fsaved:1/get",
    ]);
    assert_eq!(by_path, "200 application/x-tar");
    let err = d.fails(&["save", "-o", file, "devents-nope"], 1);
    assert!(err.contains("No such image: devents-nope"), "{err}");
    let bad = d.fails(&["load", "-i", "/dev/null"], 1);
    assert!(bad.starts_with("Error response from daemon: "), "{bad}");
    let tags = d.ok(&["image", "inspect", "--format", "{{.RepoTags}}", image]);
    assert!(tags.contains(image), "{tags}");
}

#[test]
fn logs_tail_that_is_negative_or_not_a_number_means_all_as_dockerd() {
    let Some(d) = Daemon::start("minidock-devents-tail") else {
        return;
    };
    let name = "devents-tail";
    d.ok(&["run", "--name", name, "busybox", "sh", "-c", "seq 1 7"]);
    let all = "1\n2\n3\n4\n5\n6\n7\n";
    assert_eq!(d.ok(&["logs", "--tail=-5", name]), all);
    assert_eq!(d.ok(&["logs", "--tail", "abc", name]), all);
    assert_eq!(d.ok(&["logs", "--tail", "all", name]), all);
    assert_eq!(d.ok(&["logs", "--tail", "2", name]), "6\n7\n");
    assert_eq!(d.ok(&["logs", "--tail", "0", name]), "");
}

/// Waits (at most 60 s) for `child` to exit; its status.
fn exit_of(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} never returned");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn attach_and_wait_follow_a_container_the_cli_created_and_started() {
    let Some(d) = Daemon::start("minidock-devents-external") else {
        return;
    };
    let name = "devents-external";
    let since = unix_now();
    let script = "echo up; while [ ! -e /release ]; do sleep 0.05; done; exit 4";
    d.minidock(&["create", "--name", name, "busybox", "sh", "-c", script]);
    let curl = |path: &str| {
        std::process::Command::new("curl")
            .args(["-sS", "-N", "--unix-socket"])
            .arg(d.socket())
            .args([
                "-X",
                "POST",
                &format!("http://localhost/containers/{name}/{path}"),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // A wait for the next exit, then an attach (the docker CLI refuses to attach to a
    // container that does not run: the API does not).
    let mut wait = curl("wait?condition=next-exit");
    let mut attach = curl("attach?stream=1&stdout=1&stderr=1");
    // The attach is registered once its event is in the journal.
    let filter = format!("container={name}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let until = unix_now();
        let events = d.minidock(&[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            &filter,
            "--filter",
            "event=attach",
        ]);
        if !events.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the attach never came");
        std::thread::sleep(Duration::from_millis(20));
    }
    d.minidock(&["start", name]);
    d.minidock(&["exec", name, "touch", "/release"]);
    assert!(exit_of(&mut attach, "the attach").success());
    assert!(exit_of(&mut wait, "the wait").success());
    let mut body = String::new();
    std::io::Read::read_to_string(&mut wait.stdout.take().unwrap(), &mut body).unwrap();
    assert_eq!(body, "{\"StatusCode\":4,\"Error\":null}\n");
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.ExitCode}}", name]),
        "4\n"
    );
}

/// The host pids of the processes whose command line is exactly `args` and that are PID 1 of
/// their PID namespace (a container's first process; a child the shell forked shows the same
/// command line until it executes).
fn pids_running(args: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = args
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    let first_in_namespace = |pid: &i32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .is_some_and(|ids| ids.split_whitespace().last() == Some("1"))
    };
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .filter(first_in_namespace)
        .collect()
}

/// How many mounts are exactly at `path` in this process's mount table.
fn mounts_at(path: &std::path::Path) -> usize {
    common::mounts_containing(&path.display().to_string())
        .iter()
        .filter(|p| std::path::Path::new(p) == path)
        .count()
}

#[test]
fn starts_at_once_from_the_cli_and_the_daemon_run_the_container_once() {
    let Some(d) = Daemon::start("minidock-devents-starts") else {
        return;
    };
    let name = "devents-starts";
    // Each run says so, waits for /release, takes it away for the next run, and exits 4. The
    // no-op `:` naming the state root tells its processes from any other test's.
    let script = format!(
        ": {}; echo run; while [ ! -e /release ]; do sleep 0.05; done; rm /release; exit 4",
        d.root.path().display()
    );
    let script = script.as_str();
    d.minidock(&["create", "--name", name, "busybox", "sh", "-c", script]);
    let id = d.minidock(&["inspect", "--format", "{{.Id}}", name]);
    let merged = d
        .root
        .path()
        .join("containers")
        .join(id.trim())
        .join("merged");
    // The first round starts it created (its rootfs mounted by create), the others exited
    // (its rootfs unmounted by the last exit).
    let rounds = 3;
    for round in 0..rounds {
        let mut starts = Vec::new();
        for _ in 0..3 {
            let mut cli = d.root.cmd();
            cli.args(["start", name]);
            let mut docker = d.docker_command();
            docker.args(["start", name]);
            for cmd in [&mut cli, &mut docker] {
                starts.push(
                    cmd.stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap(),
                );
            }
        }
        // Every start succeeds, as Docker's start of a running container does.
        for (i, start) in starts.into_iter().enumerate() {
            let out = start.wait_with_output().unwrap();
            let who = if i % 2 == 0 { "minidock" } else { "docker" };
            assert!(
                out.status.success(),
                "round {round}: {who} start: {}",
                text(&out.stderr)
            );
            assert_eq!(
                text(&out.stdout),
                format!("{name}\n"),
                "round {round}: {who}"
            );
        }
        // One process, the one recorded, on one overlay.
        let pids = pids_running(&["sh", "-c", script]);
        assert_eq!(
            pids.len(),
            1,
            "round {round}: the container's processes: {pids:?}"
        );
        let recorded = d.minidock(&["inspect", "--format", "{{.State.Pid}}", name]);
        assert_eq!(recorded.trim(), pids[0].to_string(), "round {round}");
        assert_eq!(
            mounts_at(&merged),
            1,
            "round {round}: overlays on {merged:?}"
        );
        d.minidock(&["exec", name, "touch", "/release"]);
        let mut wait = d.root.cmd();
        let mut wait = wait
            .args(["wait", name])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        assert!(exit_of(&mut wait, "the wait").success(), "round {round}");
        let mut code = String::new();
        std::io::Read::read_to_string(&mut wait.stdout.take().unwrap(), &mut code).unwrap();
        assert_eq!(code, "4\n", "round {round}");
        assert_eq!(
            mounts_at(&merged),
            0,
            "round {round}: overlays left on {merged:?}"
        );
    }
    // The journal of the container's output: one line per run.
    let logs = d.minidock(&["logs", name]);
    assert_eq!(logs, "run\n".repeat(rounds), "{logs}");
}

/// A tar of `entries`: (name, link target or None for a file holding `x`), names written
/// as they are (`..` included).
fn raw_tar(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, link) in entries {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        match link {
            Some(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
                header.set_size(0);
                header.set_cksum();
                builder.append(&header, &b""[..]).unwrap();
            }
            None => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(1);
                header.set_cksum();
                builder.append(&header, &b"x"[..]).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

#[test]
fn an_upload_refused_partway_leaves_nothing_in_the_container() {
    let Some(d) = Daemon::start("minidock-devents-upload") else {
        return;
    };
    let name = "devents-upload";
    d.ok(&["create", "--name", name, "busybox", "true"]);
    let put = |entries: &[(&str, Option<&str>)]| {
        let file = d.root.path().join("upload.tar");
        std::fs::write(&file, raw_tar(entries)).unwrap();
        d.curl(&[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/x-tar",
            "--data-binary",
            &format!("@{}", file.display()),
            "-w",
            " %{http_code}",
            &format!("http://localhost/containers/{name}/archive?path=/tmp"),
        ])
    };
    assert_eq!(
        put(&[("first.txt", None), ("../escape", None)]),
        "{\"message\":\"Error processing tar file(exit status 1): \\\"../escape\\\" is outside \
         of \\\"/tmp\\\"\"}\n 500"
    );
    assert_eq!(
        put(&[("second.txt", None), ("link", Some("../../etc"))]),
        "{\"message\":\"Error processing tar file(exit status 1): invalid symlink \\\"/tmp/link\\\" \
         -> \\\"../../etc\\\"\"}\n 500"
    );
    for file in ["/tmp/first.txt", "/tmp/second.txt", "/escape", "/tmp/link"] {
        let err = d.fails(&["cp", &format!("{name}:{file}"), "-"], 1);
        assert!(err.contains(file), "{file}: {err}");
    }
    // A tar whose entries all stay inside is unpacked.
    assert_eq!(
        put(&[("third.txt", None), ("ok", Some("third.txt"))]),
        " 200"
    );
    let out = d.docker(&["cp", &format!("{name}:/tmp/third.txt"), "-"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// `docker events --format` for the events of `docker restart`, `update` and the prunes,
/// between `since` and now (the daemon's, then minidock's own CLI, which must agree).
fn lifecycle_events(d: &Daemon, since: &str) -> String {
    let until = unix_now();
    let args = [
        "events",
        "--since",
        since,
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
    ];
    let shown = d.ok(&args);
    assert_eq!(d.minidock(&args), shown);
    shown
}

#[test]
fn restart_update_and_prunes_are_events_as_dockerd_20_10_records_them() {
    let Some(d) = Daemon::start("minidock-devents-life") else {
        return;
    };
    let id = d.ok(&["run", "-d", "--name", "life", "busybox", "sleep", "1000"]);
    let id = id.trim().to_owned();
    let dead = d.ok(&["create", "--name", "life-dead", "busybox", "true"]);
    let dead = dead.trim().to_owned();
    d.ok(&["volume", "create", "life-vol"]);
    let since = unix_now();
    assert_eq!(d.ok(&["restart", "-t", "1", "life"]), "life\n");
    assert_eq!(d.ok(&["update", "--cpu-shares", "512", "life"]), "life\n");
    d.ok(&["container", "prune", "-f"]);
    let pruned = d.ok(&["volume", "prune", "-f"]);
    assert!(pruned.contains("life-vol"), "{pruned}");
    d.ok(&["image", "prune", "-f"]);
    let events = lifecycle_events(&d, &since);
    let lines: Vec<&str> = events.lines().collect();
    // dockerd's order: `start` then `restart`; one `update`; each pruned container's
    // `destroy`, then one `prune` per kind with no actor and the bytes reclaimed; a pruned
    // volume has no `destroy` of its own.
    let life = r#"{"image":"busybox","name":"life"}"#;
    let want_head = [
        format!("container start {id} {life}"),
        format!("container restart {id} {life}"),
        format!("container update {id} {life}"),
        format!(r#"container destroy {dead} {{"image":"busybox","name":"life-dead"}}"#),
    ];
    assert_eq!(lines.len(), 7, "{events}");
    assert_eq!(&lines[..4], &want_head, "{events}");
    for (line, kind) in lines[4..].iter().zip(["container", "volume", "image"]) {
        let tail = line
            .strip_prefix(&format!(r#"{kind} prune  {{"reclaimed":""#))
            .unwrap_or_else(|| panic!("{kind} prune: {events}"));
        let bytes = tail.strip_suffix(r#""}"#).unwrap();
        assert!(bytes.parse::<u64>().is_ok(), "{events}");
    }
    // A failed update records nothing.
    let since = unix_now();
    d.fails(&["update", "--cpu-shares", "512", "no-such-life"], 1);
    assert_eq!(lifecycle_events(&d, &since), "");
}

#[test]
fn events_refuse_a_since_after_until_as_dockerd_20_10() {
    let Some(d) = Daemon::start("minidock-devents-window") else {
        return;
    };
    for (since, until, since_sent, until_sent) in [
        ("200", "100", "200", "100"),
        (
            "1796099143.5",
            "1796099143.25",
            "1796099143.5",
            "1796099143.25",
        ),
        (
            "2026-12-01T05:00:00Z",
            "2026-12-01T04:00:00Z",
            "1796101200.000000000",
            "1796097600.000000000",
        ),
    ] {
        let args = ["events", "--since", since, "--until", until];
        let words =
            format!("`since` time ({since_sent}) cannot be after `until` time ({until_sent})\n");
        let err = d.fails(&args, 1);
        assert_eq!(err, format!("Error response from daemon: {words}"));
        let out = d.root.output(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(text(&out.stderr), format!("minidock: {words}"));
        assert_eq!(text(&out.stdout), "");
    }
    // The same time on both sides is a window: nothing in it, and no error.
    assert_eq!(d.ok(&["events", "--since", "5", "--until", "5"]), "");
    assert_eq!(d.minidock(&["events", "--since", "5", "--until", "5"]), "");
    // A duration ago goes out as whole seconds.
    let err = d.fails(&["events", "--since", "1m", "--until", "2m"], 1);
    assert!(
        err.starts_with("Error response from daemon: `since` time (")
            && err.contains(") cannot be after `until` time (")
            && !err.contains('.'),
        "{err}"
    );
}
