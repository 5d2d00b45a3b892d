//! `minidock runtime` on the runtime-spec items runc honours: the read-only cgroupfs,
//! `root.path` without a private mount namespace, a user namespace without host root,
//! `linux.sysctl`, a hostname without a UTS namespace, `process.oomScoreAdj`,
//! `linux.rootfsPropagation`, the config read once at `create`, every hook, annotations,
//! unknown capabilities and runc's exit status. Each test
//! runs the same bundle under runc and compares.

#[path = "common/bundle.rs"]
mod bundle;
mod common;

use bundle::{
    Bundle, Root, minidock, require_peers, run_minidock, run_runc, runc, same_as_runc, state_root,
    stderr, stdout, unique_id,
};
use serde_json::json;
use std::process::{Command, Stdio};

/// For every file that sets a limit and every cgroup mount point (the v1 tmpfs and each
/// hierarchy, or the cgroup2 mount): what writing a higher limit, and making a cgroup, does.
/// The error text only, after the path (shells word the prefix differently).
const CGROUP_WRITES: &str = "cd /sys/fs/cgroup; \
    for f in memory.limit_in_bytes memory/memory.limit_in_bytes memory.max pids/pids.max pids.max; do \
      [ -f $f ] && { echo 1073741824 > $f; } 2>&1 | sed \"s|^.*: |$f: |\"; \
    done; \
    for d in $(awk '$5 ~ \"^/sys/fs/cgroup\" {print $5}' /proc/self/mountinfo | sort); do \
      mkdir $d/x 2>&1 | sed \"s|^.*: |$d: |\"; \
    done; true";

/// Gives the config a private cgroup namespace, or takes it away (`runc spec` has one on v2
/// hosts only, and runc refuses a namespace listed twice).
fn set_cgroupns(c: &mut serde_json::Value, wanted: bool) {
    let namespaces = c["linux"]["namespaces"].as_array_mut().unwrap();
    namespaces.retain(|n| n["type"] != "cgroup");
    if wanted {
        namespaces.push(json!({"type": "cgroup"}));
    }
}

#[test]
fn the_cgroupfs_is_read_only_as_with_runc() {
    if !require_peers() {
        return;
    }
    // Docker's way on v2 is a private cgroup namespace; runc spec's default has none. Both.
    for cgroupns in [true, false] {
        let bundle = Bundle::new(&["sh", "-c", CGROUP_WRITES]);
        bundle.edit(|c| {
            c["linux"]["resources"]["memory"] = json!({"limit": 33554432});
            c["linux"]["resources"]["pids"] = json!({"limit": 100});
            set_cgroupns(c, cgroupns);
        });
        let ours = same_as_runc(&bundle);
        let text = stdout(&ours);
        // Not a vacuous pass: limits were tried and refused, cgroups were not made. On v1
        // the tmpfs holding the hierarchies is runc's: writable but 0555, and the container's
        // root has no CAP_DAC_OVERRIDE here. Everything else is read-only.
        let refused = |l: &&str| l.ends_with("Read-only file system");
        let limits = text
            .lines()
            .filter(|l| !l.starts_with('/'))
            .filter(refused)
            .count();
        let mkdirs = text
            .lines()
            .filter(|l| l.starts_with('/'))
            .filter(refused)
            .count();
        let layout = common::cgroup_layout_name();
        assert!(
            mkdirs >= 1 && (limits >= 2 || !cgroupns),
            "too few refusals (layout {layout}, cgroupns {cgroupns}):\n{text}"
        );
        assert!(
            text.lines().all(
                |l| refused(&l) || (layout != "v2" && l == "/sys/fs/cgroup: Permission denied")
            ),
            "{text}"
        );
    }
}

#[test]
fn the_cgroupfs_is_writable_when_the_mount_says_rw() {
    if !require_peers() {
        return;
    }
    // runc keeps the spec's options: with "rw" the container can make cgroups under its own
    // (its own limits stay out of reach on v2 all the same: the kernel refuses writes to the
    // root of a cgroup namespace, cgroups(7) "nsdelegate").
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "cd /sys/fs/cgroup; d=pids; [ -d $d ] || d=.; mkdir $d/x && rmdir $d/x && echo made",
    ]);
    bundle.edit(|c| {
        c["linux"]["resources"]["pids"] = json!({"limit": 100});
        for m in c["mounts"].as_array_mut().unwrap() {
            if m["type"] == "cgroup" {
                m["options"] = json!(["nosuid", "noexec", "nodev", "relatime", "rw"]);
            }
        }
        // The cgroup namespace makes the container's own cgroup the root on v2.
        set_cgroupns(c, true);
    });
    let ours = same_as_runc(&bundle);
    assert_eq!(stdout(&ours), "made\n", "{}", stderr(&ours));
}

/// Runs `RUNTIME ...` inside a fresh private mount namespace in which the bundle's /proc is
/// mounted: the "host" mount namespace of a config that has none of its own.
fn in_private_mount_ns(bundle: &Bundle, runtime_cmd: &str) -> std::process::Output {
    let proc_dir = bundle.path().join("rootfs/proc");
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t proc proc {} && exec {runtime_cmd}",
            proc_dir.display()
        ))
        .output()
        .unwrap()
}

#[test]
fn root_path_is_the_root_without_a_mount_namespace() {
    if !require_peers() {
        return;
    }
    for keep_mounts in [false, true] {
        root_path_without_a_mount_namespace(keep_mounts);
    }
}

/// runc spec's bundle without its mount namespace, masked and read-only paths, with or
/// without its `mounts` (runc makes them in its own mount namespace then).
fn root_path_without_a_mount_namespace(keep_mounts: bool) {
    let bundle = Bundle::new(&["sh", "-c", "ls /; ls /proc/self/ns/mnt; ls /dev"]);
    bundle.edit(|c| {
        let namespaces: Vec<serde_json::Value> = c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] != "mount")
            .cloned()
            .collect();
        c["linux"]["namespaces"] = namespaces.into();
        if !keep_mounts {
            c["mounts"] = json!([]);
        }
        c["linux"]["maskedPaths"] = json!([]);
        c["linux"]["readonlyPaths"] = json!([]);
    });
    let (md_root, runc_root) = (state_root(), state_root());
    let md = format!(
        "{} --root {} runtime run --bundle {} {}",
        assert_cmd::cargo::cargo_bin("minidock").display(),
        md_root.0.path().display(),
        bundle.path().display(),
        unique_id("md")
    );
    let rc = format!(
        "runc --root {} run --bundle {} {}",
        runc_root.0.path().display(),
        bundle.path().display(),
        unique_id("runc")
    );
    let ours = in_private_mount_ns(&bundle, &md);
    let theirs = in_private_mount_ns(&bundle, &rc);
    assert!(theirs.status.success(), "runc: {}", stderr(&theirs));
    assert_eq!(stdout(&ours), stdout(&theirs), "{}", stderr(&ours));
    assert_eq!(ours.status.code(), theirs.status.code());
    assert!(stdout(&ours).starts_with("bin\n"), "{}", stdout(&ours));
}

#[test]
fn masked_paths_without_a_mount_namespace_are_refused_as_by_runc() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["echo", "ran"]);
    bundle.edit(|c| {
        let namespaces: Vec<serde_json::Value> = c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] != "mount")
            .cloned()
            .collect();
        c["linux"]["namespaces"] = namespaces.into();
    });
    let ours = same_as_runc(&bundle);
    assert_eq!(ours.status.code(), Some(1));
    assert!(
        stderr(&ours).contains("mount namespace"),
        "{}",
        stderr(&ours)
    );
}

#[test]
fn a_hostname_without_a_uts_namespace_is_refused_as_by_runc() {
    if !require_peers() {
        return;
    }
    // This thread's own UTS namespace: a runtime that set the hostname anyway renames it, and
    // never the host.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUTS).unwrap();
    let before = nix::unistd::gethostname().unwrap();
    let bundle = Bundle::new(&["hostname"]);
    bundle.edit(|c| {
        c["hostname"] = json!("no-uts-box");
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "uts");
    });
    let ours = same_as_runc(&bundle);
    assert_eq!(ours.status.code(), Some(1), "{}", stdout(&ours));
    assert!(
        stderr(&ours).contains("without a private UTS namespace"),
        "{}",
        stderr(&ours)
    );
    assert_eq!(nix::unistd::gethostname().unwrap(), before);
}

#[test]
fn root_path_is_the_root_in_a_mount_namespace_joined_by_path() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "ls /; awk '{print $5}' /proc/self/mountinfo | sort",
    ]);
    let run_in_joined = |runtime: &str| {
        // A mount namespace of its own for each run: the runtime pivots inside it.
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sleep", "60"])
            .spawn()
            .unwrap();
        let ns = format!("/proc/{}/ns/mnt", holder.id());
        for _ in 0..500 {
            if std::fs::read_link(&ns).ok() != std::fs::read_link("/proc/self/ns/mnt").ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        bundle.edit(|c| {
            for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
                if n["type"] == "mount" {
                    n["path"] = ns.clone().into();
                }
            }
        });
        let out = if runtime == "runc" {
            run_runc(&bundle)
        } else {
            run_minidock(&bundle)
        };
        let _ = holder.kill();
        let _ = holder.wait();
        out
    };
    let ours = run_in_joined("minidock");
    let theirs = run_in_joined("runc");
    assert!(theirs.status.success(), "runc: {}", stderr(&theirs));
    assert_eq!(stdout(&ours), stdout(&theirs), "{}", stderr(&ours));
    assert!(stdout(&ours).starts_with("bin\n"), "{}", stdout(&ours));
}

/// A user namespace mapping container ids 0-999 to host ids 1000-1999, a writable root, and
/// the rootfs given to the mapped root, as a user would give it.
fn in_a_user_namespace(bundle: &Bundle) {
    bundle.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 1000, "size": 1000}]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
        c["root"]["readonly"] = false.into();
    });
    let status = Command::new("chown")
        .args(["-R", "1000:1000"])
        .arg(bundle.path().join("rootfs"))
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_user_namespace_without_host_root_runs_as_its_root() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "id; ls -ld /dev /dev/pts /dev/shm /dev/mqueue /dev/null | awk '{print $1, $3, $4, $NF}'; \
         cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/x && echo wrote",
    ]);
    in_a_user_namespace(&bundle);
    let ours = same_as_runc(&bundle);
    assert!(
        stdout(&ours).starts_with("uid=0(root) gid=0(root)"),
        "{}",
        stdout(&ours)
    );
    assert!(stdout(&ours).ends_with("wrote\n"), "{}", stdout(&ours));
}

#[test]
fn a_user_namespace_without_host_root_waits_in_created_and_starts() {
    if !require_peers() {
        return;
    }
    // The exec fifo belongs to the host's root: the container's root (host uid 1000) must
    // be given it to open, or the created process dies before `start`.
    let bundle = Bundle::new(&["sh", "-c", "id -u > /out"]);
    in_a_user_namespace(&bundle);
    let original = std::fs::read_to_string(bundle.path().join("config.json")).unwrap();
    let ours = create_edit_start(&bundle, "minidock");
    std::fs::write(bundle.path().join("config.json"), &original).unwrap();
    let theirs = create_edit_start(&bundle, "runc");
    assert_eq!(ours, theirs);
    assert_eq!(ours, "Some(0) 0\n");
}

#[test]
fn sysctls_and_the_oom_score_are_set_inside() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/domainname /proc/self/oom_score_adj",
    ]);
    bundle.edit(|c| {
        c["linux"]["sysctl"] = json!({
            "kernel.shmmax": "123456789",
            "net/ipv4/ip_forward": "1",
            "kernel.domainname": "example.test"
        });
        c["process"]["oomScoreAdj"] = 500.into();
    });
    let ours = same_as_runc(&bundle);
    assert_eq!(stdout(&ours), "123456789\n1\nexample.test\n500\n");
    // The host's values are untouched.
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(),
        "123456789\n"
    );
}

#[test]
fn sysctls_that_would_change_the_host_are_refused_as_by_runc() {
    if !require_peers() {
        return;
    }
    let without = |c: &mut serde_json::Value, kind: &str| {
        let namespaces: Vec<serde_json::Value> = c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] != kind)
            .cloned()
            .collect();
        c["linux"]["namespaces"] = namespaces.into();
    };
    let cases: [(&str, &str, Option<&str>); 4] = [
        ("vm.swappiness", "10", None),
        ("kernel.hostname", "x", None),
        ("net.ipv4.ip_forward", "1", Some("network")),
        ("kernel.shmmax", "1", Some("ipc")),
    ];
    for (key, value, drop_ns) in cases {
        let bundle = Bundle::new(&["echo", "ran"]);
        bundle.edit(|c| {
            c["linux"]["sysctl"] = json!({ key: value });
            if let Some(kind) = drop_ns {
                without(c, kind);
            }
        });
        let ours = same_as_runc(&bundle);
        assert_eq!(ours.status.code(), Some(1), "{key}: {}", stderr(&ours));
        assert!(stderr(&ours).contains(key), "{}", stderr(&ours));
    }
}

/// The propagation of each mount as the container sees it, without peer group numbers.
const PROPAGATION: &str = "awk '{t=\"private\"; for(i=7;$i!=\"-\";i++){sub(/:.*/,\"\",$i); t=$i} print $5, t}' /proc/self/mountinfo | sort";

#[test]
fn rootfs_propagation_is_applied_as_by_runc() {
    if !require_peers() {
        return;
    }
    for propagation in [
        "shared",
        "slave",
        "private",
        "unbindable",
        "rshared",
        "rslave",
        "rprivate",
        "runbindable",
    ] {
        let bundle = Bundle::new(&["sh", "-c", PROPAGATION]);
        bundle.edit(|c| c["linux"]["rootfsPropagation"] = propagation.into());
        let ours = run_minidock(&bundle);
        let theirs = run_runc(&bundle);
        assert_eq!(
            (stdout(&ours), ours.status.code()),
            (stdout(&theirs), theirs.status.code()),
            "rootfsPropagation {propagation}\nminidock: {}\nrunc: {}",
            stderr(&ours),
            stderr(&theirs)
        );
        // Nothing of the container reached the host's mount table.
        assert!(
            common::mounts_containing(bundle.path().to_str().unwrap()).is_empty(),
            "{propagation}: mounts leaked to the host"
        );
    }
}

/// `runc --root ROOT ARGS`, or `minidock --root ROOT runtime ARGS` for "minidock".
fn runtime_verb(runtime: &str, root: &Root, args: &[&str]) -> Command {
    let mut c = if runtime == "runc" {
        runc(root)
    } else {
        let mut c = minidock(root);
        c.arg("runtime");
        c
    };
    c.args(args);
    c
}

/// `create` of the bundle as `id` under `runtime`. The container inherits create's stdio:
/// /dev/null, or reading create's output would wait for the container to exit.
fn create(runtime: &str, root: &Root, bundle: &Bundle, id: &str) {
    let status = runtime_verb(
        runtime,
        root,
        &["create", "--bundle", bundle.path().to_str().unwrap(), id],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .status()
    .unwrap();
    assert!(status.success(), "{runtime} create");
}

/// Polls `state` until the container is stopped, 500 times at most.
fn wait_stopped(runtime: &str, root: &Root, id: &str) {
    for _ in 0..500 {
        let out = runtime_verb(runtime, root, &["state", id])
            .output()
            .unwrap();
        let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if state["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// create, then change config.json, then start: the container runs what was created.
fn create_edit_start(bundle: &Bundle, runtime: &str) -> String {
    let root = state_root();
    let id = unique_id("once");
    let cmd = |args: &[&str]| runtime_verb(runtime, &root, args);
    create(runtime, &root, bundle, &id);
    bundle.edit(|c| {
        c.as_object_mut().unwrap().remove("process");
        c["hooks"] = json!({"poststart": [{"path": "/bin/false"}]});
    });
    let started = cmd(&["start", &id]).output().unwrap();
    wait_stopped(runtime, &root, &id);
    let deleted = cmd(&["delete", "--force", &id]).output().unwrap();
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    let out = bundle.path().join("rootfs/out");
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    format!("{:?} {text}", started.status.code())
}

#[test]
fn start_uses_the_config_read_at_create() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["sh", "-c", "echo created-config > /out"]);
    let original = std::fs::read_to_string(bundle.path().join("config.json")).unwrap();
    bundle.edit(|c| c["root"]["readonly"] = false.into());
    let ours = create_edit_start(&bundle, "minidock");
    std::fs::write(bundle.path().join("config.json"), &original).unwrap();
    bundle.edit(|c| c["root"]["readonly"] = false.into());
    let theirs = create_edit_start(&bundle, "runc");
    assert_eq!(ours, theirs);
    assert_eq!(ours, "Some(0) created-config\n");
}

/// A hook that appends a line to `log`: its kind (argv[0] is `sh`, $0 the kind), an env
/// variable, whether it runs in the runtime's mount namespace or the container's, and the
/// status and annotations of the state on its stdin.
fn logging_hook(kind: &str, log: &str) -> serde_json::Value {
    let host_mnt = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let script = format!(
        "read s; m=$(readlink /proc/self/ns/mnt); [ \"$m\" = \"{}\" ] && m=runtime-ns || m=container-ns; \
         echo \"$0 $HOOKVAR $m $(echo \"$s\" | grep -o '\"status\":\"[a-z]*\"') $(echo \"$s\" | grep -o '\"annotations\":{{[^}}]*}}')\" >> {log}",
        host_mnt.display()
    );
    json!({"path": "/bin/sh", "args": ["sh", "-c", script, kind], "env": ["HOOKVAR=from-env"]})
}

const HOOK_KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

fn bundle_with_logging_hooks() -> (Bundle, std::path::PathBuf) {
    let bundle = Bundle::new(&["sh", "-c", "echo program >> /hooklog"]);
    let log = bundle.path().join("rootfs/hooklog");
    bundle.edit(|c| {
        c["root"]["readonly"] = false.into();
        c["annotations"] = json!({"org.example.key": "value"});
        let mut hooks = serde_json::Map::new();
        for kind in HOOK_KINDS {
            // startContainer's path and files are the container's.
            let path = if kind == "startContainer" {
                "/hooklog".to_owned()
            } else {
                log.display().to_string()
            };
            hooks.insert(kind.into(), json!([logging_hook(kind, &path)]));
        }
        c["hooks"] = hooks.into();
    });
    (bundle, log)
}

#[test]
fn every_hook_runs_in_order_and_namespace_as_with_runc() {
    if !require_peers() {
        return;
    }
    let (bundle, log) = bundle_with_logging_hooks();
    let read_log = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        text
    };
    let ours = run_minidock(&bundle);
    assert!(ours.status.success(), "{}", stderr(&ours));
    let ours_log = read_log();
    let theirs = run_runc(&bundle);
    assert!(theirs.status.success(), "{}", stderr(&theirs));
    let theirs_log = read_log();
    // runc runs poststart while the program starts (and calls its state "created"): compare
    // everything else line for line, in order.
    let without_poststart = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with("poststart "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(without_poststart(&ours_log), without_poststart(&theirs_log));
    let annotations = "\"annotations\":{\"org.example.key\":\"value\"}";
    assert_eq!(
        without_poststart(&ours_log),
        [
            format!("prestart from-env runtime-ns \"status\":\"creating\" {annotations}"),
            format!("createRuntime from-env runtime-ns \"status\":\"creating\" {annotations}"),
            format!("createContainer from-env container-ns \"status\":\"creating\" {annotations}"),
            format!("startContainer from-env container-ns \"status\":\"created\" {annotations}"),
            "program".into(),
            format!("poststop from-env runtime-ns \"status\":\"stopped\" {annotations}"),
        ]
    );
    // runtime.md: poststart runs after the program started, so its state says "running".
    assert!(
        ours_log.contains(&format!(
            "poststart from-env runtime-ns \"status\":\"running\" {annotations}"
        )),
        "{ours_log}"
    );
}

/// `create`, `start`, wait for the program, `delete`: the hook log, without poststart.
fn hooks_through_the_verbs(bundle: &Bundle, log: &std::path::Path, runtime: &str) -> Vec<String> {
    let root = state_root();
    let id = unique_id("verbs");
    let cmd = |args: &[&str]| runtime_verb(runtime, &root, args);
    create(runtime, &root, bundle, &id);
    let after_create = std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        cmd(&["start", &id]).status().unwrap().success(),
        "{runtime} start"
    );
    wait_stopped(runtime, &root, &id);
    assert!(
        cmd(&["delete", &id]).status().unwrap().success(),
        "{runtime} delete"
    );
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let _ = std::fs::remove_file(log);
    // The creation hooks ran by the time `create` returned. (runc 1.1 also runs poststart
    // there, at create: runtime.md has it after `start`, as runc 1.2 does.)
    let creation = after_create
        .lines()
        .filter(|l| !l.starts_with("poststart "));
    assert_eq!(creation.count(), 3, "{runtime}: {after_create}");
    if runtime == "minidock" {
        assert!(!after_create.contains("poststart"), "{after_create}");
        assert!(
            text.contains("poststart from-env runtime-ns \"status\":\"running\""),
            "{text}"
        );
    }
    text.lines()
        .filter(|l| !l.starts_with("poststart "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn hooks_run_at_create_start_and_delete_as_with_runc() {
    if !require_peers() {
        return;
    }
    let (bundle, log) = bundle_with_logging_hooks();
    let ours = hooks_through_the_verbs(&bundle, &log, "minidock");
    let theirs = hooks_through_the_verbs(&bundle, &log, "runc");
    assert_eq!(ours, theirs);
    assert_eq!(ours.len(), 6, "{ours:?}");
}

#[test]
fn a_failing_creation_hook_fails_the_container_as_with_runc() {
    if !require_peers() {
        return;
    }
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
    ] {
        let (bundle, log) = bundle_with_logging_hooks();
        bundle.edit(|c| c["hooks"][kind] = json!([{"path": "/bin/false"}]));
        let ours = run_minidock(&bundle);
        let ours_log = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        let theirs = run_runc(&bundle);
        let theirs_log = std::fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(ours.status.code(), theirs.status.code(), "{kind}");
        assert_eq!(ours.status.code(), Some(1), "{kind}: {}", stderr(&ours));
        assert!(!ours_log.contains("program"), "{kind}: {ours_log}");
        assert!(!theirs_log.contains("program"), "{kind}: {theirs_log}");
    }
}

#[test]
fn a_hook_past_its_timeout_fails_the_container_as_with_runc() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["echo", "ran"]);
    bundle.edit(|c| {
        c["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    });
    let ours = same_as_runc(&bundle);
    assert_eq!(ours.status.code(), Some(1));
    assert!(stderr(&ours).contains("timeout"), "{}", stderr(&ours));
}

#[test]
fn failing_poststart_and_poststop_hooks_only_warn() {
    if !require_peers() {
        return;
    }
    // runtime.md, "Lifecycle": a failing poststart or poststop hook is logged as a warning
    // and the lifecycle goes on. (runc 1.1 kills the container on a failing poststart; the
    // spec is the reference here.)
    let (bundle, log) = bundle_with_logging_hooks();
    bundle.edit(|c| {
        for kind in ["poststart", "poststop"] {
            let logging = c["hooks"][kind][0].clone();
            c["hooks"][kind] = json!([{"path": "/bin/false"}, logging]);
        }
    });
    let ours = run_minidock(&bundle);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(ours.status.success(), "{}", stderr(&ours));
    assert!(text.contains("program\n"), "{text}");
    for kind in ["poststart", "poststop"] {
        assert!(
            stderr(&ours).contains(&format!("warning: {kind} hook \"/bin/false\"")),
            "{}",
            stderr(&ours)
        );
        assert!(text.contains(&format!("{kind} from-env")), "{text}");
    }
}

#[test]
fn the_state_carries_the_annotations() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["sleep", "30"]);
    bundle.edit(|c| c["annotations"] = json!({"org.example.a": "1", "org.example.b": "two"}));
    let annotations = |runtime: &str| -> serde_json::Value {
        let root = state_root();
        let id = unique_id("ann");
        let cmd = |args: &[&str]| runtime_verb(runtime, &root, args);
        create(runtime, &root, &bundle, &id);
        let out = cmd(&["state", &id]).output().unwrap();
        let _ = cmd(&["delete", "--force", &id]).status();
        let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        state["annotations"].clone()
    };
    let ours = annotations("minidock");
    assert_eq!(ours, annotations("runc"));
    assert_eq!(ours, json!({"org.example.a": "1", "org.example.b": "two"}));
}

#[test]
fn an_unknown_capability_is_dropped_with_a_warning_as_by_runc() {
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["sh", "-c", "grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status"]);
    bundle.edit(|c| {
        for set in ["bounding", "permitted", "effective"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push("CAP_NO_SUCH_THING".into());
        }
    });
    let ours = same_as_runc(&bundle);
    assert_eq!(ours.status.code(), Some(0));
    let theirs = run_runc(&bundle);
    for out in [&ours, &theirs] {
        let text = stderr(out);
        assert!(
            text.contains("ignoring unknown or unavailable capabilities")
                && text.contains("CAP_NO_SUCH_THING"),
            "{text}"
        );
    }
}

#[test]
fn failures_of_runtime_verbs_exit_1_as_with_runc() {
    if !require_peers() {
        return;
    }
    let root = state_root();
    for args in [
        vec!["state", "no-such-container"],
        vec!["start", "no-such-container"],
        vec!["kill", "no-such-container", "KILL"],
        vec!["delete", "no-such-container"],
    ] {
        let ours = minidock(&root).arg("runtime").args(&args).output().unwrap();
        let theirs = runc(&root).args(&args).output().unwrap();
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
        assert_eq!(ours.status.code(), Some(1), "{args:?}");
    }
    // A program that does not exist, and a malformed config.
    let missing = Bundle::new(&["/no/such/program"]);
    assert_eq!(same_as_runc(&missing).status.code(), Some(1));
    let malformed = Bundle::new(&["true"]);
    malformed.edit(|c| c["process"]["args"] = "true".into());
    assert_eq!(same_as_runc(&malformed).status.code(), Some(1));
    let twice = Bundle::new(&["true"]);
    twice.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "ipc"}))
    });
    assert_eq!(same_as_runc(&twice).status.code(), Some(1));
}

#[test]
fn ids_out_of_range_and_malformed_env_are_refused_as_by_runc() {
    if !require_peers() {
        return;
    }
    // 4294967295 is -1 to setresuid(2) and setresgid(2): "no change", so the process would
    // run as root; runc refuses every id above 2147483647.
    let edits: [fn(&mut serde_json::Value); 6] = [
        |c| c["process"]["user"]["uid"] = json!(4294967295u32),
        |c| c["process"]["user"]["gid"] = json!(4294967295u32),
        |c| c["process"]["user"]["uid"] = json!(2147483648u32),
        |c| c["process"]["user"]["additionalGids"] = json!([4294967295u32]),
        |c| c["process"]["env"] = json!(["A=1", "NOEQUALS"]),
        |c| c["process"]["env"] = json!(["=x"]),
    ];
    for edit in edits {
        let bundle = Bundle::new(&["id"]);
        bundle.edit(edit);
        let ours = same_as_runc(&bundle);
        assert_eq!(ours.status.code(), Some(1), "{}", stderr(&ours));
        assert_eq!(stdout(&ours), "", "the program ran");
    }
}

#[test]
fn minidock_run_gets_the_read_only_cgroupfs_and_privileged_a_writable_one() {
    if !require_peers() {
        return;
    }
    // `minidock run --rm -m 32m busybox sh -c 'echo 1073741824 > ...limit...'`:
    // Docker answers "Read-only file system" and the limit stays 32 MiB.
    let root = state_root();
    let rootfs = tempfile::Builder::new()
        .prefix("minidock-spec-rootfs")
        .tempdir()
        .unwrap();
    common::build_busybox_rootfs(rootfs.path());
    let tar = rootfs.path().with_extension("tar");
    common::tar_dir(rootfs.path(), &tar);
    let imported = minidock(&root)
        .args(["import", tar.to_str().unwrap(), "busybox"])
        .output()
        .unwrap();
    std::fs::remove_file(&tar).unwrap();
    assert!(imported.status.success(), "{}", stderr(&imported));
    let run = |extra: &[&str], script: &str| {
        let mut cmd = minidock(&root);
        cmd.args(["run", "--rm"]).args(extra);
        cmd.args(["busybox", "sh", "-c", script]).output().unwrap()
    };
    let raise = "cd /sys/fs/cgroup; f=memory/memory.limit_in_bytes; [ -f $f ] || f=memory.max; \
        echo 1073741824 > $f; cat $f; d=pids; [ -d $d ] || d=.; mkdir $d/x";
    let confined = run(&["-m", "32m"], raise);
    assert_eq!(stdout(&confined), "33554432\n", "{}", stderr(&confined));
    assert_eq!(
        stderr(&confined).matches("Read-only file system").count(),
        2,
        "{}",
        stderr(&confined)
    );
    // With --privileged the container may make cgroups under its own.
    let make = "cd /sys/fs/cgroup; d=pids; [ -d $d ] || d=.; mkdir $d/x && rmdir $d/x && echo made";
    let privileged = run(&["-m", "32m", "--privileged"], make);
    assert_eq!(stdout(&privileged), "made\n", "{}", stderr(&privileged));
}

/// The state is private as runc keeps it: a new root 0700, state.json 0600 (its annotations
/// are the caller's), the container's directory not listable by others.
#[test]
fn the_state_is_private_as_with_runc() {
    use assert_cmd::cargo::CommandCargoExt;
    use std::os::unix::fs::PermissionsExt;
    if !require_peers() {
        return;
    }
    let bundle = Bundle::new(&["true"]);
    let parent = state_root();
    let root = parent.0.path().join("state");
    let id = unique_id("md");
    let status = Command::cargo_bin("minidock")
        .unwrap()
        .arg("--root")
        .arg(&root)
        .args(["runtime", "create", "--bundle"])
        .arg(bundle.path())
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
    let dir = root.join("run/runtime").join(&id);
    let modes = (
        mode(&root).ok(),
        mode(&dir).ok(),
        mode(&dir.join("state.json")).ok(),
    );
    let _ = Command::cargo_bin("minidock")
        .unwrap()
        .arg("--root")
        .arg(&root)
        .args(["runtime", "delete", "--force", &id])
        .status();
    assert!(status.success());
    assert_eq!(modes, (Some(0o700), Some(0o711), Some(0o600)));
}
