//! Volumes: named, anonymous (`-v /path`, the image's `VOLUME`), `--volumes-from`, `--mount`,
//! `--tmpfs`, `volume create|ls|inspect|rm|prune`, `rm -v`, `run --rm`, `cp` and `export`.
//!
//! The evidence is the kernel's and the disk's: the files in `<root>/volumes/<name>/_data`,
//! the container's own /proc/self/mountinfo, the host's mount table for a volume with driver
//! options. Shapes and messages are compared with Docker's (a private dockerd,
//! tests/common/dockerd.rs).

mod common;

use common::dockerd::{Dockerd, require_docker};
use common::engine::Minidock;
use common::{require_busybox_overlay, text};
use std::path::PathBuf;

fn minidock() -> Option<Minidock> {
    require_busybox_overlay().then(|| Minidock::with_busybox("minidock-volumes"))
}

fn data(m: &Minidock, volume: &str) -> PathBuf {
    m.root().join("volumes").join(volume).join("_data")
}

fn volume_names(m: &Minidock) -> Vec<String> {
    m.ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_owned)
        .collect()
}

fn is_anonymous_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn a_named_volume_is_shared_and_outlives_every_container() {
    let Some(m) = minidock() else { return };
    // Before volumes, `-v myvol:/data` was refused (exit 125) and --volumes-from was unknown.
    m.ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "myvol:/data",
        "busybox",
        "sh",
        "-c",
        "echo written > /data/file",
    ]);
    assert_eq!(
        std::fs::read_to_string(data(&m, "myvol").join("file")).unwrap(),
        "written\n"
    );
    let next = m.ok(&[
        "run",
        "--rm",
        "-v",
        "myvol:/data",
        "busybox",
        "cat",
        "/data/file",
    ]);
    assert_eq!(next, "written\n");
    let from = m.ok(&[
        "run",
        "--name",
        "reader",
        "--volumes-from",
        "writer:ro",
        "busybox",
        "sh",
        "-c",
        "cat /data/file; grep ' /data ' /proc/self/mountinfo",
    ]);
    let mut lines = from.lines();
    assert_eq!(lines.next(), Some("written"));
    // The same directory, bound again, read-only: nothing was copied.
    let mount = lines.next().unwrap();
    assert_eq!(
        m.inspect("reader", "{{json .HostConfig.VolumesFrom}}"),
        r#"["writer:ro"]"#
    );
    assert!(mount.contains("/volumes/myvol/_data /data ro,"), "{mount}");
    m.ok(&["rm", "-v", "writer", "reader"]);
    assert_eq!(volume_names(&m), ["myvol"]);
    let again = m.ok(&[
        "run",
        "--rm",
        "-v",
        "myvol:/data",
        "busybox",
        "cat",
        "/data/file",
    ]);
    assert_eq!(again, "written\n");
    m.ok(&["volume", "rm", "myvol"]);
    assert!(!m.root().join("volumes/myvol").exists());
}

#[test]
fn copy_up_fills_a_new_volume_unless_nocopy() {
    let Some(m) = minidock() else { return };
    let listing = m.ok(&["run", "--rm", "-v", "etcvol:/etc", "busybox", "ls", "/etc"]);
    assert!(listing.lines().any(|l| l == "passwd"), "{listing}");
    assert!(data(&m, "etcvol").join("passwd").is_file());
    let image = m.ok(&["run", "--rm", "busybox", "cat", "/etc/passwd"]);
    assert_eq!(
        std::fs::read_to_string(data(&m, "etcvol").join("passwd")).unwrap(),
        image
    );
    for flags in [
        ["-v", "nocopy1:/etc:nocopy"],
        ["--mount", "source=nocopy2,target=/etc,volume-nocopy"],
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend(flags);
        args.extend(["busybox", "ls", "-A", "/etc"]);
        // Only what the runtime binds over the empty volume (hosts, hostname, resolv.conf).
        let listing = m.ok(&args);
        assert!(!listing.contains("passwd"), "{flags:?}: {listing}");
    }
    assert!(!data(&m, "nocopy1").join("passwd").exists());
    // An existing volume that has content keeps it.
    std::fs::write(data(&m, "etcvol").join("mine"), "x").unwrap();
    std::fs::remove_file(data(&m, "etcvol").join("group")).unwrap();
    let listing = m.ok(&["run", "--rm", "-v", "etcvol:/etc", "busybox", "ls", "/etc"]);
    assert!(listing.lines().any(|l| l == "mine"), "{listing}");
    assert!(!listing.lines().any(|l| l == "group"), "{listing}");
}

#[test]
fn an_images_volume_is_anonymous_and_goes_with_rm_v_and_run_rm() {
    let Some(m) = minidock() else { return };
    m.import("withvol", &["VOLUME /data"]);
    // Before volumes, an image's VOLUME made nothing.
    m.ok(&[
        "run",
        "--name",
        "first",
        "withvol",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    let name = m.inspect(
        "first",
        "{{range .Mounts}}{{.Name}} {{.Destination}}{{end}}",
    );
    let (name, destination) = name.split_once(' ').unwrap();
    assert!(is_anonymous_name(name), "{name}");
    assert_eq!(destination, "/data");
    assert_eq!(
        std::fs::read_to_string(data(&m, name).join("f")).unwrap(),
        "kept\n"
    );
    let labels = m.ok(&["volume", "inspect", "-f", "{{json .Labels}}", name]);
    assert_eq!(labels.trim(), r#"{"com.docker.volume.anonymous":""}"#);
    // `rm` without -v keeps it; with -v, anonymous volumes go and named ones stay.
    m.ok(&["rm", "first"]);
    assert_eq!(volume_names(&m), [name]);
    m.ok(&["volume", "rm", name]);
    m.ok(&[
        "run",
        "--name",
        "second",
        "-v",
        "/anon",
        "-v",
        "named:/named",
        "withvol",
        "true",
    ]);
    assert_eq!(volume_names(&m).len(), 3);
    m.ok(&["rm", "-v", "second"]);
    assert_eq!(volume_names(&m), ["named"]);
    m.ok(&[
        "run",
        "--rm",
        "-v",
        "/anon",
        "-v",
        "named:/named",
        "withvol",
        "true",
    ]);
    assert_eq!(volume_names(&m), ["named"]);
    // -v over the image's VOLUME replaces it: no anonymous volume.
    m.ok(&["run", "--rm", "-v", "named:/data", "withvol", "true"]);
    m.ok(&[
        "create",
        "--name",
        "third",
        "-v",
        "named:/data",
        "withvol",
        "true",
    ]);
    assert_eq!(volume_names(&m), ["named"]);
    // A VOLUME given by `commit --change` makes one too.
    m.ok(&["commit", "--change", "VOLUME /state", "third", "committed"]);
    m.ok(&["run", "--name", "fourth", "committed", "touch", "/state/x"]);
    let made = m.inspect(
        "fourth",
        "{{range .Mounts}}{{if eq .Destination \"/state\"}}{{.Name}}{{end}}{{end}}",
    );
    assert!(is_anonymous_name(&made), "{made}");
    assert!(data(&m, &made).join("x").is_file());
}

#[test]
fn a_volume_in_use_is_not_removed() {
    let Some(m) = minidock() else { return };
    let id = m.ok(&["create", "-v", "busy:/b", "busybox", "true"]);
    let id = id.trim();
    // -f does not remove a volume in use either.
    for args in [
        vec!["volume", "rm", "busy"],
        vec!["volume", "rm", "-f", "busy"],
    ] {
        let err = m.fails(&args, 1);
        assert!(
            err.contains(&format!("remove busy: volume is in use - [{id}]")),
            "{err}"
        );
    }
    assert!(data(&m, "busy").is_dir());
    assert_eq!(
        m.fails(&["volume", "rm", "nosuch"], 1).trim(),
        "minidock: get nosuch: no such volume"
    );
    assert_eq!(m.ok(&["volume", "rm", "-f", "nosuch"]), "nosuch\n");
    assert_eq!(
        m.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]),
        ""
    );
    m.ok(&["rm", id]);
    assert_eq!(
        m.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]),
        "busy\n"
    );
    assert_eq!(m.ok(&["volume", "rm", "busy"]), "busy\n");
}

#[test]
fn prune_removes_unused_anonymous_volumes_unless_all() {
    let Some(m) = minidock() else { return };
    m.ok(&["volume", "create", "--label", "keep=yes", "named1"]);
    m.ok(&["run", "--name", "user1", "-v", "/anon", "busybox", "true"]);
    let anon = m.inspect("user1", "{{range .Mounts}}{{.Name}}{{end}}");
    std::fs::write(data(&m, &anon).join("f"), vec![0u8; 2000]).unwrap();
    // In use by a stopped container: kept.
    assert_eq!(
        m.ok(&["volume", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    m.ok(&["rm", "user1"]);
    assert_eq!(
        m.ok(&["volume", "prune", "-f"]),
        format!("Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 2kB\n")
    );
    assert_eq!(volume_names(&m), ["named1"]);
    assert_eq!(
        m.ok(&["volume", "ls", "-q", "--filter", "label=keep=yes"]),
        "named1\n"
    );
    assert_eq!(
        m.ok(&["volume", "ls", "-q", "--filter", "label=keep=no"]),
        ""
    );
    assert_eq!(
        m.ok(&["volume", "prune", "-af"]),
        "Deleted Volumes:\nnamed1\n\nTotal reclaimed space: 0B\n"
    );
    assert!(volume_names(&m).is_empty());
}

/// `volume prune -af`, run again and again while containers are created with an anonymous and
/// a named volume, never removes a volume that a `create` is about to use: every run finds its
/// volumes (Docker's daemon holds a reference on a volume from create on).
#[test]
fn prune_never_takes_a_volume_from_a_container_being_created() {
    let Some(m) = minidock() else { return };
    let done = std::sync::atomic::AtomicBool::new(false);
    let failures: Vec<String> = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = m.output(&["volume", "prune", "-af"]);
            }
        });
        let mut failures = Vec::new();
        for i in 0..12 {
            let named = format!("racy{i}");
            let out = m.output(&[
                "run",
                "--rm",
                "-v",
                "/x",
                "-v",
                &format!("{named}:/y"),
                "busybox",
                "sh",
                "-c",
                "echo hi > /x/f && echo hi > /y/f && cat /x/f /y/f",
            ]);
            if !out.status.success() || text(&out.stdout) != "hi\nhi\n" {
                failures.push(format!("run {i}: {:?} {}", out.status, text(&out.stderr)));
            }
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        failures
    });
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn read_only_root_keeps_volumes_writable_and_tmpfs_options_show() {
    let Some(m) = minidock() else { return };
    let out = m.output(&[
        "run",
        "--rm",
        "--read-only",
        "-v",
        "rw1:/w",
        "--tmpfs",
        "/t:size=2m,mode=1700",
        "--mount",
        "type=tmpfs,target=/u,tmpfs-size=1m,tmpfs-mode=700",
        "busybox",
        "sh",
        "-c",
        "echo ok > /w/f && cat /w/f; grep -E ' /(t|u) ' /proc/self/mountinfo; touch /rootfile",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Read-only file system"));
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("ok"));
    let mounts: Vec<&str> = lines.collect();
    let find = |path: &str| {
        *mounts
            .iter()
            .find(|l| l.split(' ').nth(4) == Some(path))
            .unwrap_or_else(|| panic!("no {path} in {mounts:?}"))
    };
    for (path, size, mode) in [
        ("/t", "size=2048k", "mode=1700"),
        ("/u", "size=1024k", "mode=700"),
    ] {
        let line = find(path);
        assert!(line.contains(" - tmpfs tmpfs "), "{line}");
        assert!(line.contains("nosuid,nodev,noexec"), "{line}");
        assert!(line.contains(size) && line.contains(mode), "{line}");
    }
    assert_eq!(
        std::fs::read_to_string(data(&m, "rw1").join("f")).unwrap(),
        "ok\n"
    );
}

/// Whether the host's mount table has something mounted on `path`.
fn mounted(path: &std::path::Path) -> Option<String> {
    let wanted = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(wanted.as_str()))
        .map(str::to_owned)
}

#[test]
fn a_volume_with_driver_options_is_mounted_while_used_and_reclaimed_after_a_crash() {
    let Some(m) = minidock() else { return };
    m.ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=3m,uid=1000",
        "tv",
    ]);
    let path = data(&m, "tv");
    assert_eq!(mounted(&path), None);
    let inside = m.ok(&[
        "run",
        "--rm",
        "-v",
        "tv:/tv",
        "busybox",
        "grep",
        " /tv ",
        "/proc/self/mountinfo",
    ]);
    assert!(
        inside.contains(" - tmpfs tmpfs rw,size=3072k,uid=1000"),
        "{inside}"
    );
    assert_eq!(mounted(&path), None, "unmounted once its last user stopped");
    let id = m.ok(&["run", "-d", "-v", "tv:/tv", "busybox", "sleep", "1000"]);
    let id = id.trim();
    let line = mounted(&path).expect("mounted while the container runs");
    assert!(line.contains("size=3072k"), "{line}");
    // Kill the supervisor and the container: the next command's recovery unmounts it.
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(m.root().join("containers").join(id).join("state.json")).unwrap(),
    )
    .unwrap();
    let pid = |key: &str| state[key].as_i64().unwrap() as i32;
    for key in ["SupervisorPid", "Pid"] {
        let pid = nix::unistd::Pid::from_raw(pid(key));
        nix::sys::signal::kill(pid, nix::sys::signal::SIGKILL).unwrap();
    }
    // Both are reaped (by init) before recovery looks: poll, bounded.
    for _ in 0..1000 {
        let gone = ["SupervisorPid", "Pid"]
            .iter()
            .all(|k| !std::path::Path::new(&format!("/proc/{}", pid(k))).exists());
        if gone {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let status = m.inspect(id, "{{.State.Status}} {{.State.ExitCode}}");
    assert_eq!(status, "exited 137");
    assert_eq!(mounted(&path), None);
    m.ok(&["rm", id]);
    m.ok(&["volume", "rm", "tv"]);
}

#[test]
fn cp_reaches_into_volumes_and_export_leaves_them_out() {
    let Some(m) = minidock() else { return };
    m.ok(&[
        "create",
        "--name",
        "cpc",
        "-v",
        "cpvol:/data/vol",
        "busybox",
        "true",
    ]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "hello").unwrap();
    m.ok(&[
        "cp",
        dir.path().join("in.txt").to_str().unwrap(),
        "cpc:/data/vol/",
    ]);
    assert_eq!(
        std::fs::read_to_string(data(&m, "cpvol").join("in.txt")).unwrap(),
        "hello"
    );
    std::fs::write(data(&m, "cpvol").join("out.txt"), "world").unwrap();
    let out = dir.path().join("out");
    m.ok(&["cp", "cpc:/data/vol", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("out.txt")).unwrap(),
        "world"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("in.txt")).unwrap(),
        "hello"
    );
    let one = dir.path().join("one.txt");
    m.ok(&["cp", "cpc:/data/vol/out.txt", one.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&one).unwrap(), "world");
    let tar = m.cmd().args(["export", "cpc"]).output().unwrap();
    assert!(tar.status.success());
    let mut archive = tar::Archive::new(tar.stdout.as_slice());
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.iter().any(|n| n.contains("etc/passwd")), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.contains("out.txt") || n.contains("in.txt")),
        "{names:?}"
    );
}

#[test]
fn inspect_shows_mounts_as_docker_does() {
    let Some(m) = minidock() else { return };
    let host = tempfile::tempdir().unwrap();
    // `rslave` needs a source on a shared or slave mount, as with Docker.
    let _shared = TestMount::new(host.path(), true);
    let bind = format!("{}:/host:ro", host.path().display());
    m.ok(&[
        "create",
        "--name",
        "mounts",
        "-v",
        "v1:/v1",
        "-v",
        "/anon",
        "-v",
        &bind,
        "--tmpfs",
        "/t",
        "--mount",
        "type=tmpfs,target=/x",
        "--mount",
        &format!(
            "type=bind,src={},dst=/w,bind-propagation=rslave",
            host.path().display()
        ),
        "busybox",
        "true",
    ]);
    let mounts: serde_json::Value =
        serde_json::from_str(&m.inspect("mounts", "{{json .Mounts}}")).unwrap();
    let by_destination = |d: &str| {
        mounts
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["Destination"] == d)
            .cloned()
            .unwrap_or_else(|| panic!("no {d} in {mounts}"))
    };
    let named = by_destination("/v1");
    assert_eq!(
        named,
        serde_json::json!({"Type": "volume", "Name": "v1",
            "Source": data(&m, "v1").display().to_string(), "Destination": "/v1",
            "Driver": "local", "Mode": "z", "RW": true, "Propagation": ""})
    );
    let anon = by_destination("/anon");
    assert_eq!(anon["Mode"], "");
    assert!(is_anonymous_name(anon["Name"].as_str().unwrap()));
    assert_eq!(
        by_destination("/host"),
        serde_json::json!({"Type": "bind", "Source": host.path().display().to_string(),
            "Destination": "/host", "Mode": "ro", "RW": false, "Propagation": "rprivate"})
    );
    assert_eq!(by_destination("/w")["Propagation"], "rslave");
    assert_eq!(
        by_destination("/x"),
        serde_json::json!({"Type": "tmpfs", "Source": "", "Destination": "/x", "Mode": "",
            "RW": true, "Propagation": ""})
    );
    // --tmpfs is not among Docker's Mounts.
    assert_eq!(mounts.as_array().unwrap().len(), 5, "{mounts}");
    let record: serde_json::Value = serde_json::from_str(&m.ok(&["inspect", "mounts"])).unwrap();
    let host_config = &record[0]["HostConfig"];
    assert_eq!(host_config["Tmpfs"], serde_json::json!({"/t": ""}));
    assert_eq!(host_config["VolumesFrom"], serde_json::Value::Null);
    // An anonymous `-v /path` is in Config.Volumes, as the docker CLI puts it there.
    assert_eq!(
        m.inspect("mounts", "{{json .Config.Volumes}}"),
        r#"{"/anon":{}}"#
    );
    let binds = m.inspect("mounts", "{{json .HostConfig.Binds}}");
    assert_eq!(binds, serde_json::json!(["v1:/v1", bind]).to_string());
}

/// The part of docker's stderr that is the message (without `Error response from daemon: `
/// or `docker: `), which must be in ours.
fn docker_message(stderr: &[u8]) -> String {
    let message = text(stderr);
    let first = message.lines().next().unwrap_or_default();
    first
        .trim_start_matches("docker: ")
        .trim_start_matches("Error response from daemon: ")
        .to_owned()
}

#[test]
fn volume_commands_and_mount_flags_match_docker() {
    if !require_docker() || !require_busybox_overlay() {
        return;
    }
    let docker = Dockerd::start();
    docker.load_busybox();
    let m = Minidock::with_busybox("minidock-volumes-docker");
    let both = |args: &[&str]| (m.output(args), docker.docker(args));
    // The same refusals, with the same exit codes, from create (1 for the daemon's, 125 for
    // the CLI's) and run (always 125).
    let bad = [
        vec!["-v", "bad name:/x"],
        vec!["-v", "v1:rel"],
        vec!["-v", "v1:/x:foo"],
        vec!["-v", "/a:/b:/c:/d"],
        vec!["-v", "v1:/"],
        vec!["-v", ":/x"],
        vec!["-v", "v1:/x:rw,ro"],
        vec!["--mount", "type=bind,target=/x"],
        vec!["--mount", "type=bind,source=/surely/not/here,target=/x"],
        vec!["--mount", "type=volume,target=/x,bind-propagation=shared"],
        vec!["--mount", "type=tmpfs,source=foo,target=/x"],
        vec!["--mount", "type=foo,target=/x"],
        vec!["--mount", "type=volume"],
        vec!["--mount", "target=/x,typo=1"],
        vec!["--mount", "type=bind,source=/tmp,target=/x,volume-nocopy"],
        vec!["--mount", "type=volume,target=/x,tmpfs-size=1"],
        vec!["--mount", "type=volume,target=rel"],
        vec!["--mount", "type=tmpfs,target=/x,tmpfs-size=abc"],
        vec!["--mount", "type=volume,target=/x,readonly=maybe"],
        vec!["--volumes-from", "nosuch"],
        vec!["--tmpfs", "rel"],
    ];
    for flags in &bad {
        for command in ["create", "run"] {
            let mut args = vec![command];
            args.extend(flags);
            args.extend(["busybox", "true"]);
            let (ours, theirs) = both(&args);
            assert_eq!(
                ours.status.code(),
                theirs.status.code(),
                "{args:?}\nours: {ours:?}\ndocker's: {theirs:?}"
            );
            let message = docker_message(&theirs.stderr);
            assert!(
                text(&ours.stderr)
                    .to_lowercase()
                    .contains(&message.to_lowercase()),
                "{args:?}: ours {:?}, docker's {message:?}",
                text(&ours.stderr)
            );
        }
    }
    // volume create / inspect / ls: the same JSON, but for the time and the directory.
    for args in [
        vec!["volume", "create", "plain"],
        vec![
            "volume",
            "create",
            "--label",
            "a=b",
            "--opt",
            "type=tmpfs",
            "--opt",
            "device=tmpfs",
            "--opt",
            "o=size=1m",
            "withopts",
        ],
    ] {
        let (ours, theirs) = both(&args);
        assert_eq!(text(&ours.stdout), text(&theirs.stdout));
    }
    let normal = |json: &str| {
        let mut value: serde_json::Value = serde_json::from_str(json).unwrap();
        for v in value.as_array_mut().unwrap() {
            v["CreatedAt"] = "T".into();
            let mountpoint = v["Mountpoint"].as_str().unwrap().to_owned();
            assert!(
                mountpoint.ends_with(&format!("/volumes/{}/_data", v["Name"].as_str().unwrap()))
            );
            v["Mountpoint"] = "M".into();
        }
        value
    };
    let (ours, theirs) = both(&["volume", "inspect", "plain", "withopts"]);
    assert_eq!(normal(&text(&ours.stdout)), normal(&text(&theirs.stdout)));
    let created = text(&ours.stdout);
    assert!(
        created.contains("\"CreatedAt\": \"20") && created.contains("Z\",\n"),
        "{created}"
    );
    let (ours, theirs) = both(&["volume", "ls"]);
    assert_eq!(text(&ours.stdout), text(&theirs.stdout));
    let keys = |out: &[u8]| -> Vec<Vec<String>> {
        text(out)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let mut pairs: Vec<String> = v
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(k, _)| *k != "Mountpoint")
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                pairs.sort();
                pairs
            })
            .collect()
    };
    let (ours, theirs) = both(&["volume", "ls", "--format", "{{json .}}"]);
    assert_eq!(keys(&ours.stdout), keys(&theirs.stdout));
    for args in [
        vec!["volume", "ls", "-q", "--filter", "label=a"],
        vec!["volume", "ls", "--filter", "name=with"],
        vec!["volume", "ls", "--filter", "foo=bar"],
        vec!["volume", "inspect", "nosuch"],
        vec!["volume", "rm", "nosuch"],
        vec!["volume", "rm", "-f", "nosuch"],
        vec!["volume", "ls", "-f", "dangling=maybe"],
        vec!["volume", "ls", "-f", "dangling"],
        vec!["volume", "create", "-d", "nosuchdriver", "zz"],
    ] {
        let (ours, theirs) = both(&args);
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
        assert_eq!(text(&ours.stdout), text(&theirs.stdout), "{args:?}");
        let message = docker_message(&theirs.stderr);
        assert!(text(&ours.stderr).contains(&message), "{args:?}: {message}");
    }
    // In use: both refuse, exit 1, and name the container.
    for tool in [0, 1] {
        let create = [
            "create", "--name", "user", "-v", "plain:/p", "busybox", "true",
        ];
        let id = if tool == 0 {
            m.ok(&create)
        } else {
            docker.ok(&create)
        };
        let args = ["volume", "rm", "plain"];
        let out = if tool == 0 {
            m.output(&args)
        } else {
            docker.docker(&args)
        };
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr)
                .contains(&format!("remove plain: volume is in use - [{}]", id.trim())),
            "{}",
            text(&out.stderr)
        );
    }
    let (ours, theirs) = both(&["inspect", "-f", "{{json .Mounts}}", "user"]);
    let mut ours: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap();
    let mut theirs: serde_json::Value = serde_json::from_slice(&theirs.stdout).unwrap();
    ours[0]["Source"] = "S".into();
    theirs[0]["Source"] = "S".into();
    assert_eq!(ours, theirs);
    m.ok(&["rm", "user"]);
    docker.ok(&["rm", "user"]);
    docker.ok(&["volume", "rm", "plain", "withopts"]);
}

#[test]
fn a_create_that_fails_leaves_no_anonymous_volume() {
    let Some(m) = minidock() else { return };
    // busybox is static: it has no dynamic loader for --init, and the spec refuses it after
    // the volumes are made.
    m.fails(&["create", "--init", "-v", "/anon", "busybox", "true"], 125);
    m.fails(&["run", "--init", "-v", "/anon", "busybox", "true"], 125);
    assert!(volume_names(&m).is_empty(), "{:?}", volume_names(&m));
    assert_eq!(m.ok(&["ps", "-aq"]), "");
}

#[test]
fn no_mount_goes_on_or_under_proc() {
    let Some(m) = minidock() else { return };
    let host = tempfile::tempdir().unwrap();
    let bind = host.path().join("x");
    let bind_on = |dest: &str| format!("{}:{dest}", bind.display());
    m.import("procvol", &[r#"VOLUME ["/proc/sys"]"#]);
    let inside: Vec<Vec<String>> = vec![
        vec!["-v".into(), "procsys:/proc/sys".into()],
        vec!["-v".into(), bind_on("/proc/self/cwd")],
        vec!["-v".into(), "procroot:/proc/1/root".into()],
        vec![
            "--mount".into(),
            "source=procm,target=/proc/sys/kernel".into(),
        ],
        vec!["--tmpfs".into(), "/proc/sys".into()],
    ];
    for flags in &inside {
        let mut args = vec!["run", "--rm"];
        args.extend(flags.iter().map(String::as_str));
        args.extend(["busybox", "true"]);
        let stderr = m.fails(&args, 125);
        assert!(
            stderr.contains("cannot be mounted because it is inside /proc"),
            "{flags:?}: {stderr}"
        );
    }
    let stderr = m.fails(&["run", "--rm", "procvol", "true"], 125);
    assert!(stderr.contains("inside /proc"), "{stderr}");
    let stderr = m.fails(
        &["run", "--rm", "-v", "procall:/proc", "busybox", "true"],
        125,
    );
    assert!(
        stderr.contains("\"/proc\" cannot be mounted because it is not of type proc"),
        "{stderr}"
    );
    // Nothing of the kernel's sysctls went into a volume, and the host path has no mount.
    for volume in ["procsys", "procroot", "procm", "procall"] {
        let files = std::fs::read_dir(data(&m, volume)).map_or(0, |d| d.count());
        assert_eq!(files, 0, "{volume}");
    }
    assert_eq!(m.ok(&["ps", "-aq"]), "");
    // The files lxcfs emulates may be covered, as runc allows.
    std::fs::write(&bind, "not the kernel's\n").unwrap();
    let out = m.ok(&[
        "run",
        "--rm",
        "-v",
        &bind_on("/proc/uptime"),
        "busybox",
        "cat",
        "/proc/uptime",
    ]);
    assert_eq!(out, "not the kernel's\n");
}

#[test]
fn cp_refuses_read_only_volumes_and_binds() {
    let Some(m) = minidock() else { return };
    let host = tempfile::tempdir().unwrap();
    let bind = host.path().join("d");
    std::fs::create_dir(&bind).unwrap();
    let file = host.path().join("f");
    std::fs::write(&file, "new\n").unwrap();
    let bind_flag = format!("{}:/bro:ro", bind.display());
    let tar = host.path().join("f.tar");
    let status = std::process::Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(host.path())
        .arg("f")
        .status()
        .unwrap();
    assert!(status.success());
    for detach in [true, false] {
        let name = if detach { "roc" } else { "roc2" };
        let mut args = vec!["create", "--name", name];
        args.extend(["-v", "rovol:/ro:ro", "-v", &bind_flag, "-v", "rwvol:/rw"]);
        args.extend(["busybox", "sleep", "1000"]);
        m.ok(&args);
        if detach {
            m.ok(&["start", name]);
        }
        let file = file.to_str().unwrap();
        for dest in ["/ro/x", "/bro/x", "/ro", "/bro/"] {
            let target = format!("{name}:{dest}");
            let stderr = m.fails(&["cp", file, &target], 1);
            assert_eq!(
                stderr, "minidock: mounted volume is marked read-only\n",
                "{dest}"
            );
        }
        let out = m
            .cmd()
            .args(["cp", "-", &format!("{name}:/ro")])
            .stdin(std::fs::File::open(&tar).unwrap())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        // A writable volume takes the copy.
        m.ok(&["cp", file, &format!("{name}:/rw/x")]);
        m.ok(&["rm", "-f", name]);
    }
    assert_eq!(std::fs::read_dir(&bind).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(data(&m, "rovol")).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_to_string(data(&m, "rwvol").join("x")).unwrap(),
        "new\n"
    );
}

#[test]
fn cp_onto_a_file_mount_point_is_refused_and_the_bind_stays() {
    let Some(m) = minidock() else { return };
    let host = tempfile::tempdir().unwrap();
    let bound = host.path().join("f.txt");
    std::fs::write(&bound, "bound\n").unwrap();
    let new = host.path().join("new.txt");
    std::fs::write(&new, "new\n").unwrap();
    let resolv = host.path().join("resolv.conf");
    std::fs::write(&resolv, "new\n").unwrap();
    let flag = format!("{}:/etc/f.txt", bound.display());
    m.ok(&[
        "run", "-d", "--name", "fb", "-v", &flag, "busybox", "sleep", "1000",
    ]);
    let (new, resolv) = (new.to_str().unwrap(), resolv.to_str().unwrap());
    for (source, dest, target) in [
        (new, "fb:/etc/f.txt", "/etc/f.txt"),
        (new, "fb:/etc/resolv.conf", "/etc/resolv.conf"),
        (resolv, "fb:/etc/", "/etc/resolv.conf"),
    ] {
        let stderr = m.fails(&["cp", source, dest], 1);
        assert_eq!(
            stderr,
            format!(
                "minidock: Error processing tar file(exit status 1): unlinkat {target}: \
                 device or resource busy\n"
            ),
            "{dest}"
        );
    }
    // The container's binds are still there: the kernel's mount table and what it reads.
    let mountinfo = m.ok(&["exec", "fb", "cat", "/proc/self/mountinfo"]);
    for point in ["/etc/f.txt", "/etc/resolv.conf"] {
        assert!(
            mountinfo
                .lines()
                .any(|l| l.split(' ').nth(4) == Some(point)),
            "{point}: {mountinfo}"
        );
    }
    std::fs::write(&bound, "changed\n").unwrap();
    assert_eq!(m.ok(&["exec", "fb", "cat", "/etc/f.txt"]), "changed\n");
    assert_ne!(m.ok(&["exec", "fb", "cat", "/etc/resolv.conf"]), "new\n");
    m.ok(&["rm", "-f", "fb"]);
}

#[test]
fn a_relative_image_volume_is_under_the_root() {
    let Some(m) = minidock() else { return };
    m.import("relvol", &[r#"VOLUME ["data"]"#]);
    let mountinfo = m.ok(&[
        "run",
        "--name",
        "rel",
        "relvol",
        "cat",
        "/proc/self/mountinfo",
    ]);
    assert!(
        mountinfo
            .lines()
            .any(|l| l.split(' ').nth(4) == Some("/data")),
        "{mountinfo}"
    );
    let names = volume_names(&m);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(is_anonymous_name(&names[0]), "{names:?}");
    assert_eq!(
        m.inspect("rel", "{{range .Mounts}}{{.Destination}}{{end}}"),
        "/data"
    );
    m.ok(&["rm", "-v", "rel"]);
    assert!(volume_names(&m).is_empty());
}

#[test]
fn a_source_starting_with_a_dot_is_a_bind_relative_to_the_current_directory() {
    let Some(m) = minidock() else { return };
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir(cwd.path().join(".hid")).unwrap();
    std::fs::write(cwd.path().join(".hid/f"), "hidden\n").unwrap();
    let out = m
        .cmd()
        .args([
            "run", "--name", "dot", "-v", ".hid:/x", "busybox", "cat", "/x/f",
        ])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hidden\n");
    let mounts = m.inspect("dot", "{{range .Mounts}}{{.Type}} {{.Source}}{{end}}");
    assert_eq!(
        mounts,
        format!("bind {}", cwd.path().join(".hid").display())
    );
    assert!(volume_names(&m).is_empty(), "{:?}", volume_names(&m));
    m.ok(&["rm", "dot"]);
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct TestMount(PathBuf);

impl TestMount {
    /// Mounts a tmpfs on `path`, with shared propagation or private.
    fn new(path: &std::path::Path, shared: bool) -> TestMount {
        let mounted = TestMount(path.to_owned());
        let propagation = if shared {
            "--make-shared"
        } else {
            "--make-private"
        };
        mounted.mount(&["-t", "tmpfs", "tmpfs"]);
        mounted.mount(&[propagation]);
        mounted
    }

    fn mount(&self, args: &[&str]) {
        let status = std::process::Command::new("mount")
            .args(args)
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "mount {args:?}");
    }
}

impl Drop for TestMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn shared_and_slave_binds_need_a_shared_or_slave_source_mount() {
    let Some(m) = minidock() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let mounted = TestMount::new(&src, false);
    let s = src.display().to_string();
    for (flag, value, what) in [
        ("-v", format!("{s}:/x:rshared"), "a shared mount"),
        ("-v", format!("{s}:/x:shared"), "a shared mount"),
        ("-v", format!("{s}:/x:rslave"), "a shared or slave mount"),
        (
            "--mount",
            format!("type=bind,source={s},target=/x,bind-propagation=rslave"),
            "a shared or slave mount",
        ),
    ] {
        let stderr = m.fails(&["run", "--rm", flag, &value, "busybox", "true"], 125);
        assert_eq!(
            stderr,
            format!("minidock: path {s} is mounted on {s} but it is not {what}\n"),
            "{value}"
        );
    }
    assert_eq!(m.ok(&["ps", "-aq"]), "");
    // A shared source mount takes both.
    mounted.mount(&["--make-shared"]);
    for option in ["rshared", "rslave"] {
        let value = format!("{s}:/x:{option}");
        m.ok(&["run", "--rm", "-v", &value, "busybox", "true"]);
    }
}

#[test]
fn cp_follows_a_symlink_in_the_container_into_a_volume() {
    let Some(m) = minidock() else { return };
    // `/link` and `/etc/rel` lead into the volume at /data, as absolute and relative links.
    m.ok(&[
        "run",
        "--name",
        "cplink",
        "-v",
        "cplinkvol:/data",
        "busybox",
        "sh",
        "-c",
        "ln -s /data /link && ln -s ../data /etc/rel",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.txt");
    std::fs::write(&file, "through the link").unwrap();
    // Into the volume: through a directory link, and onto the link itself (followed, as
    // Docker extracts into the directory a destination link points to).
    m.ok(&["cp", file.to_str().unwrap(), "cplink:/link/"]);
    std::fs::write(&file, "onto the link").unwrap();
    m.ok(&["cp", file.to_str().unwrap(), "cplink:/etc/rel/second.txt"]);
    let vol = data(&m, "cplinkvol");
    assert_eq!(
        std::fs::read_to_string(vol.join("in.txt")).unwrap(),
        "through the link"
    );
    assert_eq!(
        std::fs::read_to_string(vol.join("second.txt")).unwrap(),
        "onto the link"
    );
    // Out of the volume, through either link.
    let one = dir.path().join("one.txt");
    m.ok(&["cp", "cplink:/link/in.txt", one.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&one).unwrap(), "through the link");
    let two = dir.path().join("two.txt");
    m.ok(&["cp", "cplink:/etc/rel/second.txt", two.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&two).unwrap(), "onto the link");
    // The link itself, without a trailing slash, is copied as a link.
    let link = dir.path().join("link");
    m.ok(&["cp", "cplink:/link", link.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        std::path::Path::new("/data")
    );
    // The container's own root has no such files: they are the volume's.
    let upper = m.root().join("containers");
    let found = std::process::Command::new("find")
        .arg(&upper)
        .args(["-name", "second.txt", "-path", "*upper*"])
        .output()
        .unwrap();
    assert_eq!(text(&found.stdout), "");
    m.ok(&["rm", "cplink"]);
    m.ok(&["volume", "rm", "cplinkvol"]);
}
