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
    let tail =
        format!(" container die {id} (execDuration=0, exitCode=3, image=busybox, name={name})\n");
    assert!(die.ends_with(&tail), "{die:?} does not end with {tail:?}");
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
