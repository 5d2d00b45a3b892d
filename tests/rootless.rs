//! Rootless minidock, as a user without root: each test makes an unprivileged user
//! (`common::rootless`) and runs `minidock` as that user, with its state under the user's
//! `XDG_DATA_HOME` and `XDG_RUNTIME_DIR`. The evidence is the kernel's: the uid map of the
//! holder's user namespace, `/proc/PID/status` of a container process seen from the host,
//! the owner and mode of every file the runs made, and the cgroup files of a limited
//! container in a delegated subtree (pure cgroup v2, the VM lane).

mod common;

use common::rootless::RootlessUser;
use common::{failed_stderr, ok_stdout, text};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A user with the busybox image pulled from a local registry (pushed there by root).
fn user_with_busybox() -> Option<(RootlessUser, common::registry::Registry, String)> {
    let user = RootlessUser::new()?;
    let registry = common::registry::Registry::start(None)?;
    let root = common::minidock_root::Root::new(&[]);
    let name = registry.name("rootless/busybox:1");
    root.ok(&["tag", "busybox", &name]);
    root.ok(&["push", &name]);
    let out = user.ok(&["pull", &name]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    Some((user, registry, name))
}

/// `Uid:` or `Gid:` of /proc/PID/status: the four ids as the host sees them.
fn status_ids(pid: i32, key: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

#[test]
fn a_user_without_root_pulls_runs_execs_and_reads_logs() {
    let Some((user, _registry, image)) = user_with_busybox() else {
        return;
    };
    // uid 0 inside is the user outside: the holder's maps, from the host.
    let holder = user.holder_pid().expect("the holder's pid is recorded");
    let uid_map = std::fs::read_to_string(format!("/proc/{holder}/uid_map")).unwrap();
    let (start, count) = user.range.unwrap();
    let lines: Vec<Vec<u32>> = uid_map
        .lines()
        .map(|l| l.split_whitespace().map(|n| n.parse().unwrap()).collect())
        .collect();
    assert_eq!(
        lines,
        vec![vec![0, user.uid, 1], vec![1, start, count]],
        "{uid_map}"
    );

    let out = user.ok(&["run", "--rm", &image, "id"]);
    assert_eq!(out, "uid=0(root) gid=0(root) groups=0(root)\n");

    let id = user.ok(&["run", "-d", &image, "sh", "-c", "echo started; sleep 1000"]);
    let id = id.trim();
    let pid: i32 = user
        .ok(&["inspect", "-f", "{{.State.Pid}}", id])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(status_ids(pid, "Uid:"), vec![user.uid; 4]);
    assert_eq!(status_ids(pid, "Gid:"), vec![user.gid; 4]);
    let out = user.ok(&["exec", id, "sh", "-c", "id -u; cat /proc/self/uid_map"]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("0"));
    assert_eq!(
        lines
            .next()
            .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>()),
        Some(vec!["0".to_owned(), user.uid.to_string(), "1".to_owned()])
    );
    // Another id inside is a subordinate id outside, which the user owns too.
    assert_eq!(user.ok(&["exec", "-u", "1000", id, "id", "-u"]), "1000\n");
    let logs = user.minidock(&["logs", id]);
    assert_eq!(ok_stdout(&["logs"], &logs), "started\n");
    user.ok(&["rm", "-f", id]);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "rm -f left the container process running"
    );
    assert_eq!(user.ok(&["ps", "-aq"]), "");
    assert_private(&user);
}

/// Nothing a rootless run made belongs to a user other than this one (or its subordinate
/// ids), and no one else can enter the state directories.
fn assert_private(user: &RootlessUser) {
    let (start, count) = user.range.unwrap_or((0, 0));
    let ours = |uid: u32| uid == user.uid || (uid >= start && uid - start < count);
    for top in [
        user.data_dir().join("minidock"),
        user.run_dir().join("minidock"),
    ] {
        let meta = std::fs::metadata(&top).unwrap();
        assert_eq!(meta.uid(), user.uid, "{}", top.display());
        assert_eq!(meta.mode() & 0o777, 0o700, "{}", top.display());
        let mut stack = vec![top];
        while let Some(path) = stack.pop() {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            assert!(
                ours(meta.uid()),
                "{} belongs to {}",
                path.display(),
                meta.uid()
            );
            assert!(
                ours(meta.gid()) || meta.gid() == user.gid,
                "{}",
                path.display()
            );
            if meta.is_dir() {
                stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            }
        }
    }
}

#[test]
fn limits_need_a_delegated_cgroup_v2_subtree() {
    let Some(mut user) = RootlessUser::new() else {
        return;
    };
    let root = common::minidock_root::Root::new(&[]);
    let tar = user.home().join("busybox.tar");
    root.ok(&["save", "-o", tar.to_str().unwrap(), "busybox"]);
    std::os::unix::fs::chown(&tar, Some(user.uid), None).unwrap();
    if !user.delegate_cgroup() {
        // v1 (or hybrid): nothing can be delegated, and a limit is refused, never ignored.
        user.ok(&["load", "-i", tar.to_str().unwrap()]);
        for flag in [["-m", "32m"], ["--cpus", "1"], ["--pids-limit", "10"]] {
            let args = ["run", "--rm", flag[0], flag[1], "busybox", "true"];
            let err = failed_stderr(&args, &user.minidock(&args));
            assert!(
                err.contains("need a cgroup v2 subtree delegated to this user")
                    && err.contains(common::cgroup_layout_name()),
                "{err}"
            );
        }
        assert_eq!(user.ok(&["ps", "-aq"]), "");
        return;
    }
    user.ok(&["load", "-i", tar.to_str().unwrap()]);
    let args = [
        "run",
        "-d",
        "-m",
        "32m",
        "--pids-limit",
        "10",
        "busybox",
        "sleep",
        "1000",
    ];
    let id = user.ok(&args);
    let id = id.trim();
    let dir = user.delegated_cgroup().unwrap().join("minidock").join(id);
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap();
    assert_eq!(read("memory.max"), "33554432\n");
    assert_eq!(read("pids.max"), "10\n");
    let pid = user.ok(&["inspect", "-f", "{{.State.Pid}}", id]);
    assert!(
        read("cgroup.procs").lines().any(|l| l == pid.trim()),
        "{}",
        read("cgroup.procs")
    );
    user.ok(&["rm", "-f", id]);
    assert!(!dir.exists(), "rm left {}", dir.display());
}

#[test]
fn host_and_none_networks_work_and_a_user_bridge_is_refused() {
    let Some(user) = RootlessUser::new() else {
        return;
    };
    let root = common::minidock_root::Root::new(&[]);
    let tar = user.home().join("busybox.tar");
    root.ok(&["save", "-o", tar.to_str().unwrap(), "busybox"]);
    std::os::unix::fs::chown(&tar, Some(user.uid), None).unwrap();
    user.ok(&["load", "-i", tar.to_str().unwrap()]);
    let netns = |network: &str| {
        let args = ["run", "--rm", "--network", network, "busybox", "sh", "-c"];
        let script = "readlink /proc/self/ns/net; ls /sys/class/net";
        let out = user.ok(&[&args[..], &[script]].concat());
        let mut lines = out.lines().map(str::to_owned);
        let ns = lines.next().unwrap();
        (ns, lines.collect::<Vec<_>>().join(" "))
    };
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    let host = host.to_string_lossy();
    let (ns, links) = netns("none");
    assert_ne!(ns, host);
    assert_eq!(links, "lo");
    let (ns, _) = netns("host");
    assert_eq!(ns, host);
    // A user-defined network is a bridge: refused, with what to use instead.
    let out = user.minidock_with_bridge(&["network", "create", "rootless-net"]);
    ok_stdout(&["network", "create"], &out);
    let args = [
        "run",
        "--rm",
        "--network",
        "rootless-net",
        "busybox",
        "true",
    ];
    let err = failed_stderr(&args, &user.minidock_with_bridge(&args));
    assert!(
        err.contains("rootless: network \"rootless-net\" is a bridge")
            && err.contains("--network none"),
        "{err}"
    );
}

#[test]
fn without_a_subordinate_range_only_the_user_is_mapped_and_that_is_said_once() {
    let Some(user) = RootlessUser::without_range() else {
        return;
    };
    let first = user.minidock(&["images"]);
    ok_stdout(&["images"], &first);
    let said = text(&first.stderr);
    assert!(
        said.contains("no subordinate ids for uid") && said.contains("cannot be unpacked"),
        "{said}"
    );
    let holder = user.holder_pid().unwrap();
    let uid_map = std::fs::read_to_string(format!("/proc/{holder}/uid_map")).unwrap();
    let fields: Vec<String> = uid_map.split_whitespace().map(str::to_owned).collect();
    assert_eq!(
        fields,
        vec!["0".to_owned(), user.uid.to_string(), "1".into()]
    );
    let again = user.minidock(&["images"]);
    ok_stdout(&["images"], &again);
    assert_eq!(text(&again.stderr), "");
}

/// `doctor --json` as the user: its checks, by name.
fn doctor(user: &RootlessUser) -> (bool, std::collections::HashMap<String, serde_json::Value>) {
    let out = user.minidock(&["doctor", "--json"]);
    let checks: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let by_name = checks
        .into_iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c))
        .collect();
    (out.status.success(), by_name)
}

#[test]
fn doctor_checks_the_rootless_setup_as_the_user() {
    let Some(mut user) = RootlessUser::new() else {
        return;
    };
    let delegated = user.delegate_cgroup();
    let (_, checks) = doctor(&user);
    let ok = |name: &str| checks[name]["ok"].as_bool().unwrap();
    let (start, count) = user.range.unwrap();
    let detail = checks["subordinate ids"]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("uids {start}+{count}")),
        "{detail}"
    );
    for name in [
        "subordinate ids",
        "newuidmap",
        "newgidmap",
        "overlay in a user namespace",
    ] {
        assert!(ok(name), "{:?}", checks[name]);
    }
    // Delegation is found exactly when the test gave it, and nothing was made by looking.
    assert_eq!(
        ok("cgroup delegation"),
        delegated,
        "{:?}",
        checks["cgroup delegation"]
    );
    let tun_mode = std::fs::metadata("/dev/net/tun").map_or(0, |m| m.mode());
    assert_eq!(
        ok("/dev/net/tun"),
        tun_mode & 0o006 == 0o006,
        "{:?}",
        checks["/dev/net/tun"]
    );
    assert!(!user.data_dir().join("minidock").exists());
    assert!(
        user.holder_pid().is_none(),
        "doctor entered the user namespace"
    );

    let Some(bare) = RootlessUser::without_range() else {
        return;
    };
    let (success, checks) = doctor(&bare);
    assert!(!success);
    let subids = &checks["subordinate ids"];
    assert!(!subids["ok"].as_bool().unwrap());
    let fix = subids["fix"].as_str().unwrap();
    assert!(fix.contains("usermod --add-subuids"), "{fix}");
}

#[test]
fn ns_demo_runs_rootless_with_a_user_namespace_and_says_why_without_one() {
    let Some(user) = RootlessUser::new() else {
        return;
    };
    let demo = assert_cmd::cargo::cargo_bin("ns-demo");
    let args = ["-q", "run", "--user", "--pid", "--hostname", "demo", "--"];
    let out = user
        .command(&demo)
        .args(args)
        .args([
            "sh",
            "-c",
            "id -u; hostname; echo $$; cat /proc/self/uid_map",
        ])
        .output()
        .unwrap();
    let out = ok_stdout(&args, &out);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..3], ["0", "demo", "1"], "{out}");
    let map: Vec<String> = lines[3].split_whitespace().map(str::to_owned).collect();
    assert_eq!(map, ["0".to_owned(), user.uid.to_string(), "1".into()]);
    // Without --user, the demo says what is missing.
    let out = user
        .command(&demo)
        .args(["-q", "run", "--pid", "--", "true"])
        .output()
        .unwrap();
    let err = failed_stderr(&["run", "--pid"], &out);
    assert!(err.contains("add --user"), "{err}");
}

#[test]
fn the_default_network_is_user_mode_and_publishes_ports_through_slirp4netns() {
    if !common::prerequisite(
        common::have("slirp4netns", "--version"),
        "slirp4netns is not installed (apt-get install slirp4netns)",
    ) || !common::prerequisite(
        Path::new("/dev/net/tun").exists(),
        "/dev/net/tun is missing (modprobe tun)",
    ) {
        return;
    }
    // In a private network namespace: the forwarder listens on its loopback, and the
    // container's traffic has nowhere else to go.
    common::net::private_netns(user_mode_network);
}

fn user_mode_network() {
    let Some(user) = RootlessUser::new() else {
        return;
    };
    let _tun = open_tun_device();
    let root = common::minidock_root::Root::new(&[]);
    let tar = user.home().join("busybox.tar");
    root.ok(&["save", "-o", tar.to_str().unwrap(), "busybox"]);
    std::os::unix::fs::chown(&tar, Some(user.uid), None).unwrap();
    user.ok(&["load", "-i", tar.to_str().unwrap()]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{port}:80");
    let script = "mkdir /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www";
    let args = ["run", "-d", "-p", &publish, "busybox", "sh", "-c", script];
    let out = user.minidock_with_bridge(&args);
    let id = ok_stdout(&args, &out).trim().to_owned();
    let addr = user.ok(&["exec", &id, "ip", "-4", "-o", "addr", "show", "tap0"]);
    assert!(addr.contains("inet 10.0.2.100/24"), "{addr}");
    let slirp_pid: i32 = std::fs::read_to_string(
        user.data_dir()
            .join("minidock/containers")
            .join(&id)
            .join("slirp4netns.pid"),
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    // The forwarder is the user's process, not root's.
    assert_eq!(status_ids(slirp_pid, "Uid:"), vec![user.uid; 4]);
    let mut body = String::new();
    for _ in 0..100 {
        body = http_get(port).unwrap_or_default();
        if body.contains("hello") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(body.contains("hello"), "{body:?}");
    user.ok(&["rm", "-f", &id]);
    assert!(
        !Path::new(&format!("/proc/{slirp_pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{slirp_pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "rm left slirp4netns running"
    );
}

/// `GET /` on 127.0.0.1:PORT; the whole response.
fn http_get(port: u16) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut out = String::new();
    stream.read_to_string(&mut out)?;
    Ok(out)
}

/// slirp4netns opens /dev/net/tun as the user: Debian's udev makes it 0666, and this machine's
/// may be narrower. In this test's private mount namespace a 0666 node of the same device
/// (10:200) is bound over it; the host's node is left as it is.
fn open_tun_device() -> tempfile::TempDir {
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("minidock-rootless-tun")
        .tempdir()
        .unwrap();
    let node = dir.path().join("tun");
    mknod(
        &node,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(10, 200),
    )
    .unwrap();
    std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o666)).unwrap();
    nix::mount::mount(
        Some(&node),
        "/dev/net/tun",
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    dir
}
