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
    let tar = user.busybox_tar();
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
    user.load_busybox();
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
    // Either user-mode network will do; slirp4netns is the default when it is there.
    let (slirp, pasta) = (
        common::have("slirp4netns", "--version"),
        common::have("pasta", "--version"),
    );
    let user_mode = &checks["user-mode network"];
    assert_eq!(ok("user-mode network"), slirp || pasta, "{user_mode:?}");
    if slirp || pasta {
        let default = if slirp { "slirp4netns" } else { "pasta" };
        let detail = user_mode["detail"].as_str().unwrap();
        assert!(
            detail.ends_with(&format!("(default: {default})")),
            "{detail}"
        );
    }
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
    user.load_busybox();
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
    inspect_shows_the_user_mode_network(&user, &id, &publish);
    let slirp_pid = users_forwarder(&user, &id, "slirp4netns.pid");
    http_hello(port);
    user.ok(&["rm", "-f", &id]);
    assert!(exited(slirp_pid), "rm left slirp4netns running");
}

/// The pid in the container's `file` (its user-mode forwarder's), checked to be the user's
/// process, not root's.
fn users_forwarder(user: &RootlessUser, id: &str, file: &str) -> i32 {
    let path = user
        .data_dir()
        .join("minidock/containers")
        .join(id)
        .join(file);
    let pid: i32 = std::fs::read_to_string(&path)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(status_ids(pid, "Uid:"), vec![user.uid; 4]);
    pid
}

/// GETs / from 127.0.0.1:`port` until the answer says hello (a forwarder takes a moment).
fn http_hello(port: u16) {
    let mut body = String::new();
    for _ in 0..100 {
        body = http_get(port).unwrap_or_default();
        if body.contains("hello") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(body.contains("hello"), "{body:?}");
}

/// Whether process `pid` has exited (gone, or a zombie not yet reaped).
fn exited(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
}

/// `inspect` shows slirp4netns's network as the container sees it (address, prefix,
/// gateway, and the MAC address `ip link` shows for tap0), at the top of NetworkSettings and
/// in the default network's entry; `ps` and `inspect` show the published port.
fn inspect_shows_the_user_mode_network(user: &RootlessUser, id: &str, publish: &str) {
    let link = user.ok(&["exec", id, "ip", "-o", "link", "show", "tap0"]);
    let mac = link
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC in {link:?}"));
    let fields = "{{.IPAddress}}/{{.IPPrefixLen}} {{.Gateway}} {{.MacAddress}}";
    let top = user.ok(&[
        "inspect",
        "-f",
        &format!("{{{{with .NetworkSettings}}}}{fields}{{{{end}}}}"),
        id,
    ]);
    let expected = format!("10.0.2.100/24 10.0.2.2 {mac}\n");
    assert_eq!(top, expected);
    let entry =
        format!("{{{{with index .NetworkSettings.Networks \"bridge\"}}}}{fields}{{{{end}}}}");
    assert_eq!(user.ok(&["inspect", "-f", &entry, id]), expected);
    let ports = user.ok(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", id]);
    let (ip, port) = publish.rsplit_once(':').unwrap().0.split_once(':').unwrap();
    assert_eq!(
        ports.trim(),
        format!(r#"{{"80/tcp":[{{"HostIp":"{ip}","HostPort":"{port}"}}]}}"#)
    );
    let ps = user.ok(&["ps", "--format", "{{.Ports}}"]);
    assert_eq!(ps, format!("{ip}:{port}->80/tcp\n"));
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

/// A bundle as a user makes one for `runc --rootless`: a busybox rootfs and `runc spec
/// --rootless` (a user namespace mapping root to the user's own ids), owned by the user, with
/// `args` and no terminal.
fn rootless_bundle(user: &RootlessUser, args: &[&str]) -> std::path::PathBuf {
    let bundle = user.home().join("bundle");
    common::build_busybox_rootfs(&bundle.join("rootfs"));
    let owner = format!("{}:{}", user.uid, user.gid);
    let chown = std::process::Command::new("chown")
        .args(["-R", &owner])
        .arg(&bundle)
        .status()
        .unwrap();
    assert!(chown.success());
    let spec = user
        .command(Path::new("runc"))
        .args(["spec", "--rootless", "--bundle"])
        .arg(&bundle)
        .output()
        .unwrap();
    ok_stdout(&["runc", "spec", "--rootless"], &spec);
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(args);
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    bundle
}

/// `create` and `start` of a long-running container from `bundle` by `runtime` (`runc`, or
/// `minidock runtime`) as the user; the host's view of its process (Uid and Gid of
/// /proc/PID/status) and `list`'s OWNER; then `kill` and `delete`.
fn rootless_runtime_run(
    user: &RootlessUser,
    runtime: &[&Path],
    bundle: &Path,
) -> (Vec<u32>, Vec<u32>, String) {
    let run = |args: &[&str]| {
        let mut cmd = user.command(runtime[0]);
        cmd.args(&runtime[1..]).args(args);
        let out = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        ok_stdout(args, &out)
    };
    let bundle_arg = bundle.to_str().unwrap();
    // The container keeps its stdio: give it none, so the command's output ends.
    let mut create = user.command(runtime[0]);
    create.args(&runtime[1..]);
    create.args(["create", "--bundle", bundle_arg, "rl1"]);
    let status = create
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{runtime:?} create failed");
    run(&["start", "rl1"]);
    let state: serde_json::Value = serde_json::from_str(&run(&["state", "rl1"])).unwrap();
    let pid = state["pid"].as_i64().unwrap() as i32;
    let ids = (status_ids(pid, "Uid:"), status_ids(pid, "Gid:"));
    let list: serde_json::Value = serde_json::from_str(&run(&["list", "-f", "json"])).unwrap();
    let owner = list[0]["owner"].as_str().unwrap().to_owned();
    run(&["kill", "rl1", "KILL"]);
    run(&["delete", "--force", "rl1"]);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists() || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
        }
    );
    (ids.0, ids.1, owner)
}

#[test]
fn the_runtime_runs_a_runc_rootless_bundle_as_runc_does() {
    let Some(user) = RootlessUser::new() else {
        return;
    };
    if !common::prerequisite(common::have("runc", "--version"), "runc is not installed") {
        return;
    }
    let bundle = rootless_bundle(&user, &["sleep", "1000"]);
    let minidock = assert_cmd::cargo::cargo_bin("minidock");
    let ours = rootless_runtime_run(&user, &[&minidock, Path::new("runtime")], &bundle);
    let runc = rootless_runtime_run(&user, &[Path::new("runc")], &bundle);
    // Root in the bundle's user namespace is the user on the host, under both.
    assert_eq!(ours, runc);
    assert_eq!(
        ours,
        (vec![user.uid; 4], vec![user.gid; 4], user.name.clone())
    );
    let runc_flag = user.minidock(&["runtime", "--rootless=true", "list", "-q"]);
    assert_eq!(ok_stdout(&["runtime", "--rootless=true"], &runc_flag), "");

    // A host id that is neither the user's nor subordinate is refused.
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["linux"]["uidMappings"][0]["hostID"] = 0.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let args = [
        "runtime",
        "run",
        "--bundle",
        bundle.to_str().unwrap(),
        "rl2",
    ];
    let err = failed_stderr(&args, &user.minidock(&args));
    assert!(
        err.contains("uidMappings: host id 0 is neither this user's own id"),
        "{err}"
    );
    assert_eq!(user.ok(&["runtime", "list", "-q"]), "");
}

#[test]
fn a_user_without_root_builds_an_image_with_a_run_step() {
    let Some(user) = RootlessUser::new() else {
        return;
    };
    user.load_busybox();
    let context = user.home().join("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM busybox\nRUN echo built > /built && id -u > /uid && chown 1000:1000 /built\n\
         CMD [\"sh\", \"-c\", \"cat /built /uid; stat -c %u:%g /built\"]\n",
    )
    .unwrap();
    let out = user.ok(&["build", "-t", "rootless-built", context.to_str().unwrap()]);
    assert!(
        out.contains("Successfully tagged rootless-built:latest"),
        "{out}"
    );
    let out = user.ok(&["run", "--rm", "--network", "none", "rootless-built"]);
    assert_eq!(out, "built\n0\n1000:1000\n");
    // The layer's file belongs to the subordinate id that 1000 maps to, on the host.
    let (start, _) = user.range.unwrap();
    let layers = user.data_dir().join("minidock");
    let found = find_file(&layers, "built").expect("the RUN step's file is in a layer");
    let meta = std::fs::metadata(&found).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (start + 999, start + 999),
        "{}",
        found.display()
    );
    assert_eq!(user.ok(&["ps", "-aq"]), "");
    assert_private(&user);
}

/// The first regular file named `name` under `dir`.
fn find_file(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let kind = entry.file_type().ok()?;
        if kind.is_dir() {
            if let Some(found) = find_file(&entry.path(), name) {
                return Some(found);
            }
        } else if kind.is_file() && entry.file_name() == name {
            return Some(entry.path());
        }
    }
    None
}

/// Every path under `dir` with its kind, size, mode, owner and mtime: what a write into a
/// layer would change.
fn tree_listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        out.push(format!(
            "{} {:o} {} {} {} {}",
            path.display(),
            meta.mode(),
            meta.uid(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec()
        ));
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out.sort();
    out
}

#[test]
fn where_overlay_is_refused_the_layers_are_copied_and_stay_untouched() {
    let Some(user) = RootlessUser::new() else {
        return;
    };
    user.load_busybox();
    // A first container unpacks the layers (on overlay).
    user.ok(&["run", "--rm", "--network", "none", "busybox", "true"]);
    let layers = user.data_dir().join("minidock/layers");
    let before = tree_listing(&layers);
    // MINIDOCK_ROOTLESS_OVERLAY=0 asks for the copy this kernel would not need.
    let copied = |args: &[&str]| {
        let mut cmd = user.command(Path::new("env"));
        cmd.arg("MINIDOCK_ROOTLESS_OVERLAY=0")
            .arg(assert_cmd::cargo::cargo_bin("minidock"))
            .args(args);
        cmd.output().unwrap()
    };
    let script = "echo changed > /etc/passwd; rm /bin/true; echo new > /new; \
                  cat /etc/passwd /new; ls /bin/true 2>&1 | wc -l; cat /proc/self/mountinfo";
    let args = [
        "run",
        "--name",
        "copied",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        script,
    ];
    let first = copied(&args);
    let out = ok_stdout(&args, &first);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("changed"));
    assert_eq!(lines.next(), Some("new"));
    assert_eq!(lines.next(), Some("1"), "{out}");
    // The root is the copy, bound: no overlay in the container's mount table.
    let root_line = out
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap();
    assert!(!root_line.contains(" - overlay "), "{root_line}");
    assert!(
        text(&first.stderr).contains("each container gets a copy"),
        "{}",
        text(&first.stderr)
    );
    assert_eq!(
        tree_listing(&layers),
        before,
        "the container wrote into a layer"
    );
    // A second container is said nothing more, and starts from the image, not the first copy.
    let args = [
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "cat",
        "/etc/passwd",
    ];
    let second = copied(&args);
    assert!(!ok_stdout(&args, &second).contains("changed"));
    assert_eq!(text(&second.stderr), "");
    let args = ["commit", "copied", "copied:1"];
    let err = failed_stderr(&args, &copied(&args));
    assert!(err.contains("commit is not supported"), "{err}");
    user.ok(&["rm", "copied"]);
    // `cp` out of a running container on copied layers mounts nothing more over it, so `rm`
    // leaves no mount behind.
    let args = [
        "run",
        "-d",
        "--name",
        "copied2",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ];
    ok_stdout(&args, &copied(&args));
    let out = user.home().join("passwd");
    let dest = out.to_str().unwrap();
    ok_stdout(&["cp"], &copied(&["cp", "copied2:/etc/passwd", dest]));
    ok_stdout(&["cp"], &copied(&["cp", "copied2:/etc/group", dest]));
    let holder = user.holder_pid().unwrap();
    let merged_mounts = || {
        let table = std::fs::read_to_string(format!("/proc/{holder}/mountinfo")).unwrap();
        table.lines().filter(|l| l.contains("/merged ")).count()
    };
    assert_eq!(merged_mounts(), 1);
    user.ok(&["rm", "-f", "copied2"]);
    assert_eq!(merged_mounts(), 0);
    assert_eq!(tree_listing(&layers), before);
    assert_private(&user);
}

/// runc's rootless validator's refusals, each a change to a `runc spec --rootless` bundle.
type BundleChange = (&'static str, fn(&mut serde_json::Value));

const RUNC_ROOTLESS_REFUSALS: [BundleChange; 4] = [
    ("no user namespace", |c| {
        let list = c["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|ns| ns["type"] != "user");
    }),
    ("no uid mappings", |c| {
        c["linux"]["uidMappings"] = serde_json::json!([]);
    }),
    ("no gid mappings", |c| {
        c["linux"]["gidMappings"] = serde_json::json!([]);
    }),
    ("an unmapped gid= mount option", |c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        let pts = mounts
            .iter_mut()
            .find(|m| m["destination"] == "/dev/pts")
            .unwrap();
        pts["options"].as_array_mut().unwrap().push("gid=5".into());
    }),
];

#[test]
fn the_runtime_refuses_what_runcs_rootless_validator_refuses_in_its_words() {
    let Some(user) = RootlessUser::new() else {
        return;
    };
    if !common::prerequisite(common::have("runc", "--version"), "runc is not installed") {
        return;
    }
    let bundle = rootless_bundle(&user, &["true"]);
    let path = bundle.join("config.json");
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let minidock = assert_cmd::cargo::cargo_bin("minidock");
    let bundle_arg = bundle.to_str().unwrap();
    let run_args = ["--rootless=true", "run", "--bundle", bundle_arg, "rl3"];
    for (what, change) in RUNC_ROOTLESS_REFUSALS {
        let mut config = original.clone();
        change(&mut config);
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let runc = user
            .command(Path::new("runc"))
            .args(run_args)
            .output()
            .unwrap();
        let runc_err = failed_stderr(&run_args, &runc);
        // runc logs `time=... level=error msg="runc run failed: SENTENCE"`.
        let sentence = runc_err
            .split_once("runc run failed: ")
            .and_then(|(_, rest)| rest.split_once('"'))
            .unwrap_or_else(|| panic!("{what}: runc said {runc_err:?}"))
            .0;
        let ours = user
            .command(&minidock)
            .arg("runtime")
            .args(run_args)
            .output()
            .unwrap();
        let our_err = failed_stderr(&run_args, &ours);
        assert_eq!(
            (ours.status.code(), our_err.as_str()),
            (
                runc.status.code(),
                format!("minidock runtime: {sentence}\n").as_str()
            ),
            "{what}"
        );
    }
    assert_eq!(user.ok(&["runtime", "list", "-q"]), "");
}

/// pasta copies the host's outbound interface into the container and refuses to start
/// without one: in the test's private namespace, a veth pair stands for it (`rl3up0`,
/// 192.0.2.10/24, default route via 192.0.2.1, TEST-NET-1: nothing is sent anywhere).
fn outbound_interface() {
    for args in [
        "link add rl3up0 type veth peer name rl3up1",
        "link set rl3up1 up",
        "addr add 192.0.2.10/24 dev rl3up0",
        "link set rl3up0 up",
        "link set lo up",
        "route add default via 192.0.2.1",
    ] {
        let out = std::process::Command::new("ip")
            .args(args.split(' '))
            .output()
            .unwrap();
        ok_stdout(&["ip", args], &out);
    }
}

/// pasta's prerequisites: the program, and /dev/net/tun.
fn have_pasta() -> bool {
    common::prerequisite(
        common::have("pasta", "--version"),
        "pasta is not installed (apt-get install passt)",
    ) && common::prerequisite(
        Path::new("/dev/net/tun").exists(),
        "/dev/net/tun is missing (modprobe tun)",
    )
}

#[test]
fn pasta_publishes_a_port_on_the_hosts_loopback_and_rm_leaves_nothing() {
    if !have_pasta() {
        return;
    }
    common::net::private_netns(pasta_network);
}

fn pasta_network() {
    let Some(user) = RootlessUser::new() else {
        return;
    };
    let _tun = open_tun_device();
    outbound_interface();
    user.load_busybox();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{port}:80");
    let script = "mkdir /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www";
    let args = [
        "run",
        "-d",
        "--network",
        "pasta",
        "-p",
        &publish,
        "busybox",
        "sh",
        "-c",
        script,
    ];
    let id = user.ok(&args).trim().to_owned();
    // The host's interface, address and route, copied in: no NAT'ed network of its own.
    let addr = user.ok(&["exec", &id, "ip", "-4", "-o", "addr", "show", "rl3up0"]);
    assert!(addr.contains("inet 192.0.2.10/24"), "{addr}");
    let route = user.ok(&["exec", &id, "ip", "route", "show", "default"]);
    assert!(
        route.starts_with("default via 192.0.2.1 dev rl3up0"),
        "{route}"
    );
    // inspect shows what podman shows for pasta: the mode, the ports, the namespace, and no
    // address, gateway, MAC or network entry.
    let fields = "{{.HostConfig.NetworkMode}}|{{.NetworkSettings.IPAddress}}|\
                  {{.NetworkSettings.Gateway}}|{{.NetworkSettings.MacAddress}}|\
                  {{json .NetworkSettings.Networks}}|{{json .NetworkSettings.Ports}}";
    assert_eq!(
        user.ok(&["inspect", "-f", fields, &id]),
        format!(
            "pasta||||{{}}|{{\"80/tcp\":[{{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"{port}\"}}]}}\n"
        )
    );
    let key = user.ok(&["inspect", "-f", "{{.NetworkSettings.SandboxKey}}", &id]);
    assert!(key.trim().ends_with("netns"), "{key}");
    let pid_file = user
        .data_dir()
        .join("minidock/containers")
        .join(&id)
        .join("pasta.pid");
    let pasta_pid = users_forwarder(&user, &id, "pasta.pid");
    http_hello(port);
    user.ok(&["rm", "-f", &id]);
    assert!(exited(pasta_pid), "rm left pasta running");
    // No pasta for this container's namespace (the shim may still be on its way out).
    let left: Vec<String> = common::net::pids_with_args(&[&format!("{id}/netns")])
        .into_iter()
        .map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            format!(
                "{pid}: {}",
                String::from_utf8_lossy(&cmd).replace('\0', " ")
            )
        })
        .collect();
    assert!(left.is_empty(), "rm left pasta running: {left:?}");
    assert!(!pid_file.exists());
    // Its port is free again.
    std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
}

#[test]
fn root_gets_pasta_and_slirp4netns_when_it_names_them_as_podman_does() {
    if !have_pasta()
        || !common::prerequisite(
            common::have("slirp4netns", "--version"),
            "slirp4netns is not installed (apt-get install slirp4netns)",
        )
    {
        return;
    }
    common::net::private_netns(|| {
        outbound_interface();
        let root = common::minidock_root::Root::new(&[]);
        for (network, address) in [("pasta", ""), ("slirp4netns", "10.0.2.100")] {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let publish = format!("127.0.0.1:{port}:80");
            let script =
                "mkdir /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www";
            let args = [
                "run",
                "-d",
                "--network",
                network,
                "-p",
                &publish,
                "busybox",
                "sh",
                "-c",
                script,
            ];
            let id = root.ok(&args).trim().to_owned();
            let shown = root.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", &id]);
            assert_eq!(shown, format!("{address}\n"), "{network}");
            let mut body = String::new();
            for _ in 0..100 {
                body = http_get(port).unwrap_or_default();
                if body.contains("hello") {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            assert!(body.contains("hello"), "{network}: {body:?}");
            root.ok(&["rm", "-f", &id]);
            // Both take the namespace's pin path, which names the container.
            let left = common::net::pids_with_args(&[&format!("{id}/netns")]);
            assert!(left.is_empty(), "rm left {network} running: {left:?}");
        }
    });
}

#[test]
fn the_daemon_listens_on_the_users_socket_and_runs_containers_rootless() {
    let Some(user) = RootlessUser::new() else {
        return;
    };
    if !common::prerequisite(
        common::dockerd::have("docker"),
        "the docker CLI is missing (apt-get install docker.io)",
    ) {
        return;
    }
    user.load_busybox();
    let socket = user.run_dir().join("minidock.sock");
    let host = format!("unix://{}", socket.display());
    let mut daemon = user
        .command(&assert_cmd::cargo::cargo_bin("minidock"))
        .arg("daemon")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The startup line names the socket as DOCKER_HOST; it comes once the socket is bound.
    let mut said = String::new();
    let mut stderr = std::io::BufReader::new(daemon.stderr.take().unwrap());
    std::io::BufRead::read_line(&mut stderr, &mut said).unwrap();
    assert_eq!(
        said,
        format!(
            "minidock daemon: rootless, listening on {host}; for the docker CLI: export \
             DOCKER_HOST={host}\n"
        )
    );
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (user.uid, 0o660));
    let docker = |args: &[&str]| {
        let out = user
            .command(Path::new("docker"))
            .args(["-H", &host])
            .args(args)
            .output()
            .unwrap();
        ok_stdout(args, &out)
    };
    assert_eq!(docker(&["run", "--rm", "busybox", "echo", "hi"]), "hi\n");
    // What cannot work rootless is Docker's error in one line: a limit without a delegated
    // subtree (none is given here, on either layout).
    let args = ["-H", &host, "run", "--rm", "-m", "32m", "busybox", "true"];
    let out = user
        .command(Path::new("docker"))
        .args(args)
        .output()
        .unwrap();
    let err = failed_stderr(&args, &out);
    assert!(
        err.lines().any(|l| l.starts_with(
            "docker: Error response from daemon: rootless: resource limits (memory) need a \
             cgroup v2 subtree delegated to this user"
        )),
        "{err}"
    );
    // A user-defined network is a record, made; a container on it (a bridge) is refused.
    docker(&["network", "create", "rl3net"]);
    let args = [
        "-H",
        &host,
        "run",
        "--rm",
        "--network",
        "rl3net",
        "busybox",
        "true",
    ];
    let out = user
        .command(Path::new("docker"))
        .args(args)
        .output()
        .unwrap();
    let err = failed_stderr(&args, &out);
    assert!(
        err.contains("Error response from daemon: rootless: network \"rl3net\" is a bridge"),
        "{err}"
    );
    docker(&["network", "rm", "rl3net"]);
    let id = docker(&["run", "-d", "busybox", "sleep", "1000"]);
    let id = id.trim();
    // The container is the user's on the host, as with `minidock run` rootless.
    let pid: i32 = docker(&["inspect", "-f", "{{.State.Pid}}", id])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(status_ids(pid, "Uid:"), vec![user.uid; 4]);
    let ps = docker(&["ps", "--format", "{{.ID}} {{.Image}}"]);
    assert_eq!(ps, format!("{} busybox\n", &id[..12]));
    // The CLI without the daemon sees the same state, in the rootless dirs.
    assert_eq!(user.ok(&["ps", "-q", "--no-trunc"]), format!("{id}\n"));
    docker(&["rm", "-f", id]);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    assert!(daemon.wait().unwrap().success());
    assert!(!socket.exists(), "the daemon left its socket");
    let holder = user.holder_pid().unwrap();
    let left: Vec<i32> = user
        .processes()
        .into_iter()
        .filter(|p| *p != holder)
        .filter(|p| common::net::pids_with_args(&["minidock", "daemon"]).contains(p))
        .collect();
    assert!(left.is_empty(), "the daemon left {left:?}");
}

/// The mountinfo line of `path` in the mount namespace of `pid`, if something is mounted there.
fn mount_line(pid: i32, path: &Path) -> Option<String> {
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let path = path.to_str().unwrap();
    info.lines()
        .find(|l| l.split_whitespace().nth(4) == Some(path))
        .map(str::to_owned)
}

#[test]
fn overlay_demo_mounts_in_the_users_own_namespaces_with_userxattr() {
    let Some(user) = RootlessUser::new() else {
        return;
    };
    let demo = assert_cmd::cargo::cargo_bin("overlay-demo");
    let dir = |name: &str| user.home().join(name);
    for name in ["lower", "upper", "work", "merged"] {
        std::fs::create_dir(dir(name)).unwrap();
        std::os::unix::fs::chown(dir(name), Some(user.uid), Some(user.gid)).unwrap();
    }
    std::fs::write(dir("lower/from-lower"), "lower\n").unwrap();
    std::fs::write(dir("upper/from-upper"), "upper\n").unwrap();
    let run = |args: &[&str]| user.command(&demo).args(args).output().unwrap();
    let (lower, upper, work, merged) = (dir("lower"), dir("upper"), dir("work"), dir("merged"));
    let args = [
        "-q",
        "mount",
        "--lower",
        lower.to_str().unwrap(),
        "--upper",
        upper.to_str().unwrap(),
        "--work",
        work.to_str().unwrap(),
        merged.to_str().unwrap(),
    ];
    let out = ok_stdout(&args, &run(&args));
    assert!(out.starts_with("mounted overlay on"), "{out}");
    // The kernel's evidence: an overlay with userxattr in the holder's mount namespace only.
    let holder = user.holder_pid().expect("a holder");
    let line = mount_line(holder, &merged).expect("the overlay in the holder's namespace");
    assert!(
        line.contains(" - overlay ") && line.contains("userxattr"),
        "{line}"
    );
    assert_eq!(mount_line(std::process::id() as i32, &merged), None);
    let seen = format!("/proc/{holder}/root{}", merged.display());
    let mut names: Vec<String> = std::fs::read_dir(&seen)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["from-lower", "from-upper"]);
    let args = ["-q", "umount", merged.to_str().unwrap()];
    ok_stdout(&args, &run(&args));
    assert_eq!(mount_line(holder, &merged), None);
    // The tour runs too, in the same namespaces.
    let out = ok_stdout(&["-q", "tour"], &run(&["-q", "tour"]));
    assert!(out.to_lowercase().contains("whiteout"), "{out}");
}

#[test]
fn cgroup_demo_runs_in_a_delegated_subtree_and_names_what_is_missing_without_one() {
    let Some(mut user) = RootlessUser::new() else {
        return;
    };
    let demo = assert_cmd::cargo::cargo_bin("cgroup-demo");
    let name = format!("demo-{}", user.uid);
    let args = [
        "--quiet",
        "run",
        "--pids",
        "10",
        "--name",
        &name,
        "--",
        "sh",
        "-c",
        "cat /proc/self/cgroup",
    ];
    if !user.delegate_cgroup() {
        for args in [&args[..], &["--quiet", "tour"]] {
            let out = user.command(&demo).args(args).output().unwrap();
            assert_eq!(out.status.code(), Some(1), "{args:?}");
            let err = failed_stderr(args, &out);
            assert!(
                err.starts_with(
                    "cgroup-demo: rootless: cgroup-demo's cgroups need a cgroup v2 \
                     subtree delegated to this user"
                ) && err.contains(common::cgroup_layout_name())
                    && err.lines().count() == 1,
                "{err}"
            );
        }
        return;
    }
    let out = user.command(&demo).args(args).output().unwrap();
    let out = ok_stdout(&args, &out);
    let base = user.delegated_cgroup().unwrap().to_owned();
    let relative = base.strip_prefix("/sys/fs/cgroup").unwrap();
    let expected = format!("0::/{}/minidock/{name}", relative.display());
    assert_eq!(out.trim(), expected, "{out}");
    assert!(!base.join("minidock").join(&name).exists());
    // The tour runs there too: its cgroups are made under the delegated subtree, and go.
    let out = user
        .command(&demo)
        .args(["--quiet", "tour"])
        .output()
        .unwrap();
    let tour = ok_stdout(&["tour"], &out);
    assert!(tour.contains('✔') && !tour.contains('✘'), "{tour}");
    let left: Vec<_> = std::fs::read_dir(base.join("minidock"))
        .map(|dir| {
            dir.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "the tour left {left:?}");
}

/// The names of the links in the test's own network namespace (`ip -o link`).
fn host_links() -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    let mut names: Vec<String> = text(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    names
}

/// net-demo as a user without root: the tour and the step commands work in the user's own
/// network namespace (pinned under the runtime dir), the host's links never change, and
/// teardown leaves only that namespace's pin.
#[test]
fn net_demo_runs_in_a_network_namespace_of_the_users_own() {
    let Some(user) = RootlessUser::new() else {
        return;
    };
    let net_demo = assert_cmd::cargo::cargo_bin("net-demo");
    let run = |args: &[&str]| user.command(&net_demo).args(args).output().unwrap();
    let before = host_links();
    let out = run(&["tour"]);
    let tour = ok_stdout(&["tour"], &out);
    // The published port answered, and the tour removed its rules.
    assert!(
        tour.contains(" 200 ") && tour.contains("minidock rules left: 0"),
        "{tour}"
    );
    let err = text(&out.stderr);
    assert!(err.contains("not on the host's network"), "{err}");
    assert_eq!(host_links(), before);
    let steps: [&[&str]; 3] = [
        &[
            "bridge",
            "--name",
            "mdr0",
            "--subnet",
            "10.89.7.0/24",
            "--nat-backend",
            "iptables-legacy",
        ],
        &["veth", "c1", "--bridge", "mdr0"],
        &["publish", "c1", "8081:80"],
    ];
    for args in steps {
        ok_stdout(args, &run(args));
    }
    let shown = ok_stdout(&["show"], &run(&["show"]));
    assert!(shown.contains("mdr0"), "{shown}");
    let after = host_links();
    assert_eq!(after, before);
    assert!(!after.iter().any(|l| l == "mdr0"));
    ok_stdout(&["teardown"], &run(&["teardown"]));
    let shown = ok_stdout(&["show"], &run(&["show"]));
    assert!(!shown.contains("mdr0"), "{shown}");
    assert_eq!(host_links(), before);
    // What stays: the pinned namespace (with only lo) and an empty state.
    let dir = user.run_dir().join("minidock/net-demo");
    assert!(dir.join("netns").exists());
    let left: Vec<_> = std::fs::read_dir(dir.join("state/netns"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}
