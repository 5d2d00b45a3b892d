//! The cgroup side of isolation, checked against runc on the same bundle: the devices
//! controller (v1 lists, v2 eBPF), a container cgroup in every hierarchy, `linux.cgroupsPath`,
//! the rest of `linux.resources`, and teardown of child cgroups.

#[path = "common/bundle.rs"]
mod bundle;
mod common;

use bundle::{
    Bundle, Root, minidock, require_peers, run_minidock, run_runc, runc, state_root, unique_id,
};
use common::text;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn v2() -> bool {
    common::cgroup_layout_name() == "v2"
}

/// `runc spec` over a busybox rootfs, with `args`; on v2 with a cgroup namespace, so that
/// /sys/fs/cgroup inside is the container's own cgroup under both runtimes.
fn cgroup_bundle(args: &[&str]) -> Bundle {
    let bundle = Bundle::new(args);
    if v2() {
        bundle.edit(|c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            if !ns.iter().any(|n| n["type"] == "cgroup") {
                ns.push(serde_json::json!({"type": "cgroup"}));
            }
        });
    }
    bundle
}

/// Runs the bundle under both and asserts the same outcome: both ran with the same stdout
/// and exit status, or both refused to start. Returns (minidock, runc).
fn same_as_runc(bundle: &Bundle) -> (Output, Output) {
    let ours = run_minidock(bundle);
    let theirs = run_runc(bundle);
    let report = format!(
        "layout {}\nminidock: {:?}\n{}{}\nrunc: {:?}\n{}{}",
        common::cgroup_layout_name(),
        ours.status.code(),
        text(&ours.stdout),
        text(&ours.stderr),
        theirs.status.code(),
        text(&theirs.stdout),
        text(&theirs.stderr)
    );
    assert_eq!(text(&ours.stdout), text(&theirs.stdout), "{report}");
    // Both exit 1 when they cannot start the container, else with the program's status.
    assert_eq!(ours.status.code(), theirs.status.code(), "{report}");
    (ours, theirs)
}

/// A file of the container's own cgroup as the process sees it: v1 `/sys/fs/cgroup/CTRL/F`,
/// v2 (in a cgroup namespace) `/sys/fs/cgroup/F`.
fn file(controller: &str, name: &str) -> String {
    if v2() {
        format!("/sys/fs/cgroup/{name}")
    } else {
        format!("/sys/fs/cgroup/{controller}/{name}")
    }
}

/// `cat` of each file, each preceded by its name.
fn cat(files: &[String]) -> String {
    files
        .iter()
        .map(|f| format!("echo {f}; cat {f};"))
        .collect::<String>()
}

// ANCHOR: mknod_test
/// With CAP_MKNOD a process may make the node, but `runc spec`'s deny-all
/// device rule must still refuse opening it (v1: devices.list; v2: the eBPF program).
#[test]
fn a_denied_device_cannot_be_opened_even_with_cap_mknod() {
    if !require_peers() {
        return;
    }
    let bundle = cgroup_bundle(&["sh", "-c", "mknod /dev/lc c 10 237 && exec 3</dev/lc"]);
    bundle.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            let caps = c["process"]["capabilities"][set].as_array_mut().unwrap();
            caps.push("CAP_MKNOD".into());
        }
    });
    let (ours, theirs) = same_as_runc(&bundle);
    assert_eq!(ours.status.code(), Some(1), "{}", text(&ours.stderr));
    for output in [&ours, &theirs] {
        let stderr = text(&output.stderr);
        assert!(stderr.contains("Operation not permitted"), "{stderr}");
    }
    // An allowed device, made the same way, opens under both: /dev/null is c 1:3.
    let allowed = cgroup_bundle(&[
        "sh",
        "-c",
        "mknod /dev/n2 c 1 3 && echo x > /dev/n2 && echo opened",
    ]);
    allowed.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            let caps = c["process"]["capabilities"][set].as_array_mut().unwrap();
            caps.push("CAP_MKNOD".into());
        }
    });
    let (ours, _) = same_as_runc(&allowed);
    assert_eq!(text(&ours.stdout), "opened\n");
}
// ANCHOR_END: mknod_test

/// On v1 the kernel's own list, in the container's devices cgroup, is runc's line for line.
#[test]
fn the_device_list_is_runcs() {
    if !require_peers() {
        return;
    }
    if v2() {
        // No devices.list on v2: the rules are the eBPF program, which
        // a_denied_device_cannot_be_opened_even_with_cap_mknod puts to work.
        eprintln!("v2: no devices.list to compare; see the mknod test");
        return;
    }
    let bundle = cgroup_bundle(&["cat", "/sys/fs/cgroup/devices/devices.list"]);
    let (ours, _) = same_as_runc(&bundle);
    let list = text(&ours.stdout);
    assert!(list.starts_with("b *:* m\nc *:* m\nc 1:3 rwm\n"), "{list}");
    assert!(!list.contains("a *:* rwm"), "{list}");
}

/// Removes `/NAME` (and what is below) in every hierarchy: the parents runc and minidock leave.
fn remove_everywhere(name: &str) {
    for hierarchy in minidock::cgroup::layout::detect_hierarchies().unwrap() {
        minidock::cgroup::remove_existing(&hierarchy.mount.join(name)).unwrap();
    }
}

/// Sets `linux.cgroupsPath`, without a cgroup namespace: the paths in /proc/self/cgroup are
/// then the host's, and comparable.
fn set_cgroups_path(bundle: &Bundle, path: &str) {
    bundle.edit(|c| {
        c["linux"]["cgroupsPath"] = path.into();
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "cgroup");
    });
}

/// An absolute cgroupsPath is below each hierarchy's root, in every hierarchy (named ones
/// too): /proc/self/cgroup reads the same under both runtimes.
#[test]
fn an_absolute_cgroups_path_lands_where_runc_puts_it() {
    if !require_peers() {
        return;
    }
    let top = unique_id("minidock-itest");
    let bundle = cgroup_bundle(&["cat", "/proc/self/cgroup"]);
    set_cgroups_path(&bundle, &format!("/{top}/c"));
    let (ours, _) = same_as_runc(&bundle);
    remove_everywhere(&top);
    let lines = text(&ours.stdout);
    assert!(lines.lines().count() >= 1, "{lines}");
    for line in lines.lines() {
        assert!(line.ends_with(&format!(":/{top}/c")), "{lines}");
    }
}

/// A relative cgroupsPath is below the runtime's own cgroup in each hierarchy.
#[test]
fn a_relative_cgroups_path_lands_where_runc_puts_it() {
    if !require_peers() {
        return;
    }
    let top = unique_id("minidock-itest");
    let bundle = cgroup_bundle(&["cat", "/proc/self/cgroup"]);
    set_cgroups_path(&bundle, &format!("{top}/c"));
    let (ours, _) = same_as_runc(&bundle);
    for m in minidock::cgroup::layout::own_cgroups().unwrap() {
        for hierarchy in minidock::cgroup::layout::detect_hierarchies().unwrap() {
            if hierarchy.matches(&m) {
                let own = hierarchy.mount.join(m.path.trim_start_matches('/'));
                minidock::cgroup::remove_existing(&own.join(&top)).unwrap();
            }
        }
    }
    if ours.status.success() {
        let lines = text(&ours.stdout);
        for line in lines.lines() {
            assert!(line.ends_with(&format!("/{top}/c")), "{lines}");
        }
    }
}

/// A cgroupsPath naming a cgroup that existed before is joined, as runc joins it; `delete
/// --force` then leaves it, and the host process in it, alone (runc kills only the container's
/// init and fails to rmdir the busy directory). A throwaway cgroup made here stands for a host
/// one like `/system.slice`.
#[test]
fn delete_leaves_a_joined_host_cgroup_and_its_processes() {
    if !require_peers() {
        return;
    }
    let top = unique_id("minidock-itest-host");
    // The memory and pids hierarchies (or the v2 one): a new cpuset cgroup takes no process.
    let hierarchies: Vec<_> = minidock::cgroup::layout::detect_hierarchies()
        .unwrap()
        .into_iter()
        .filter(|h| v2() || h.has("memory") || h.has("pids"))
        .collect();
    let mut host = Command::new("sleep").arg("1000").spawn().unwrap();
    let placed: std::io::Result<()> = hierarchies.iter().try_for_each(|h| {
        let dir = h.mount.join(&top);
        std::fs::create_dir(&dir)?;
        std::fs::write(dir.join("cgroup.procs"), host.id().to_string())
    });
    let bundle = Bundle::new(&["sleep", "1000"]);
    bundle.edit(|c| c["linux"]["cgroupsPath"] = format!("/{top}").into());
    let root = state_root();
    let id = unique_id("md");
    // The container keeps create's stdio: give it a file, so nothing waits for its end.
    let log = tempfile::tempfile().unwrap();
    let created = minidock(&root)
        .args(["runtime", "create", "--bundle"])
        .arg(bundle.path())
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.try_clone().unwrap())
        .status()
        .unwrap();
    let deleted = minidock(&root)
        .args(["runtime", "delete", "--force", &id])
        .output()
        .unwrap();
    let alive = host.try_wait().unwrap().is_none();
    let left: Vec<bool> = hierarchies
        .iter()
        .map(|h| h.mount.join(&top).is_dir())
        .collect();
    let _ = host.kill();
    let _ = host.wait();
    remove_everywhere(&top);
    placed.unwrap();
    assert!(created.success(), "create failed: {created:?}");
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    assert!(
        alive,
        "delete killed a process of the host cgroup it joined"
    );
    assert!(
        left.iter().all(|l| *l),
        "delete removed the host cgroup it joined: {left:?}"
    );
}

/// A cgroupsPath is cleaned as runc cleans it: repeated slashes and `.` go, and `..` stops at
/// the root, so `//TOP//c` and `/x/../../TOP/c` land at `/TOP/c` under both runtimes.
#[test]
fn a_cgroups_path_is_cleaned_as_runc_cleans_it() {
    if !require_peers() {
        return;
    }
    let top = unique_id("minidock-itest");
    for written in [format!("//{top}//c/"), format!("/x/../../{top}/./c")] {
        let bundle = cgroup_bundle(&["cat", "/proc/self/cgroup"]);
        set_cgroups_path(&bundle, &written);
        let (ours, _) = same_as_runc(&bundle);
        remove_everywhere(&top);
        let lines = text(&ours.stdout);
        assert!(ours.status.success(), "{written}: {}", text(&ours.stderr));
        for line in lines.lines() {
            assert!(line.ends_with(&format!(":/{top}/c")), "{written}: {lines}");
        }
    }
    // A path that cleans to the root names no cgroup of the container's own.
    let bundle = cgroup_bundle(&["true"]);
    bundle.edit(|c| c["linux"]["cgroupsPath"] = "/a/..".into());
    let ours = run_minidock(&bundle);
    assert_eq!(ours.status.code(), Some(1));
    assert!(text(&ours.stderr).contains("linux.cgroupsPath"));
}

/// Memory values below -1 are refused, as runc fails writing them; a device rule without
/// access is refused, as runc refuses it. Both exit 1, before the process runs.
#[test]
fn bad_resource_values_are_refused_as_by_runc() {
    if !require_peers() {
        return;
    }
    let cases: [(&str, serde_json::Value, &str); 4] = [
        ("memory", serde_json::json!({"limit": -5}), "memory.limit"),
        (
            "memory",
            serde_json::json!({"reservation": -5}),
            "memory.reservation",
        ),
        (
            "devices",
            serde_json::json!([{"allow": false, "access": ""}]),
            "access",
        ),
        ("devices", serde_json::json!([{"allow": false}]), "access"),
    ];
    for (key, value, mentioned) in cases {
        let bundle = cgroup_bundle(&["echo", "ran"]);
        bundle.resources(key, value.clone());
        let (ours, _) = same_as_runc(&bundle);
        let stderr = text(&ours.stderr);
        assert_eq!(ours.status.code(), Some(1), "{key} {value}: {stderr}");
        assert!(stderr.contains(mentioned), "{key} {value}: {stderr}");
    }
    // -1 is no limit, under both.
    let bundle = cgroup_bundle(&["cat", &file("memory", "memory.limit_in_bytes")]);
    if !v2() {
        bundle.resources("memory", serde_json::json!({"limit": -1}));
        let (ours, _) = same_as_runc(&bundle);
        assert!(ours.status.success(), "{}", text(&ours.stderr));
    }
}

/// Two containers given the same cgroupsPath share the cgroup; deleting the first (which made
/// it) must not kill the second, as runc kills only the init of a container with its own PID
/// namespace. Deleting the second then removes the cgroup, under both runtimes.
#[test]
fn deleting_one_of_two_containers_in_one_cgroup_spares_the_other() {
    if !require_peers() {
        return;
    }
    for runtime in ["minidock", "runc"] {
        let top = unique_id("minidock-itest-shared");
        let bundle = Bundle::new(&["sleep", "1000"]);
        bundle.edit(|c| c["linux"]["cgroupsPath"] = format!("/{top}").into());
        let root = state_root();
        let verb = |args: &[&str]| {
            let mut cmd = if runtime == "runc" {
                runc(&root)
            } else {
                let mut cmd = minidock(&root);
                cmd.arg("runtime");
                cmd
            };
            // The container keeps create's stdio: a file for stderr and no stdout (but for
            // `state`), so nothing here waits for its end.
            let mut log = tempfile::tempfile().unwrap();
            cmd.args(args)
                .stdin(Stdio::null())
                .stderr(log.try_clone().unwrap());
            if args[0] != "state" {
                cmd.stdout(Stdio::null());
            }
            let mut output = cmd.output().unwrap();
            std::io::Seek::rewind(&mut log).unwrap();
            std::io::Read::read_to_end(&mut log, &mut output.stderr).unwrap();
            output
        };
        let (a, b) = (unique_id("a"), unique_id("b"));
        let bundle_path = bundle.path().to_str().unwrap();
        let created_a = verb(&["create", "--bundle", bundle_path, &a]);
        let created_b = verb(&["create", "--bundle", bundle_path, &b]);
        let state: serde_json::Value =
            serde_json::from_slice(&verb(&["state", &b]).stdout).unwrap_or_default();
        let pid = state["pid"].as_i64().unwrap_or(0);
        let deleted_a = verb(&["delete", "--force", &a]);
        let b_alive = pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists();
        let deleted_b = verb(&["delete", "--force", &b]);
        let left: Vec<PathBuf> = minidock::cgroup::layout::detect_hierarchies()
            .unwrap()
            .into_iter()
            .map(|h| h.mount.join(&top))
            .filter(|d| d.exists())
            .collect();
        remove_everywhere(&top);
        let report = format!("{runtime}: b's pid {pid}; {}", text(&deleted_a.stderr));
        assert!(
            created_a.status.success() && created_b.status.success(),
            "{report}"
        );
        // runc warns that the second one joins a cgroup with a process in it.
        let warned = text(&created_b.stderr);
        assert!(
            warned.contains("container's cgroup is not empty: 1 process(es) found"),
            "{report}: {warned}"
        );
        assert!(deleted_a.status.success(), "{report}");
        assert!(
            b_alive,
            "{report}: deleting the first container killed the second"
        );
        assert!(
            deleted_b.status.success(),
            "{report}: {}",
            text(&deleted_b.stderr)
        );
        assert!(
            left.is_empty(),
            "{report}: cgroups left after both deletes: {left:?}"
        );
    }
}

#[test]
fn cpuset_is_set_like_runc() {
    if !require_peers() {
        return;
    }
    let files = [file("cpuset", "cpuset.cpus"), file("cpuset", "cpuset.mems")];
    let bundle = cgroup_bundle(&["sh", "-c", &cat(&files)]);
    bundle.resources("cpu", serde_json::json!({"cpus": "0", "mems": "0"}));
    let (ours, _) = same_as_runc(&bundle);
    assert!(ours.status.success(), "{}", text(&ours.stderr));
    assert!(text(&ours.stdout).contains("cpuset.cpus\n0\n"));
}

#[test]
fn memory_reservation_swappiness_and_the_oom_killer_are_set_like_runc() {
    if !require_peers() {
        return;
    }
    if v2() {
        let bundle = cgroup_bundle(&["cat", "/sys/fs/cgroup/memory.low"]);
        bundle.resources("memory", serde_json::json!({"reservation": 16777216}));
        let (ours, _) = same_as_runc(&bundle);
        assert_eq!(text(&ours.stdout), "16777216\n");
        // v2 has no swappiness file: minidock says so instead of dropping it.
        bundle.resources("memory", serde_json::json!({"swappiness": 10}));
        let ours = run_minidock(&bundle);
        assert_eq!(ours.status.code(), Some(1));
        assert!(text(&ours.stderr).contains("swappiness"));
        return;
    }
    let files = [
        file("memory", "memory.soft_limit_in_bytes"),
        file("memory", "memory.swappiness"),
        file("memory", "memory.oom_control"),
    ];
    let bundle = cgroup_bundle(&["sh", "-c", &cat(&files)]);
    bundle.resources(
        "memory",
        serde_json::json!({"reservation": 16777216, "swappiness": 10, "disableOOMKiller": true}),
    );
    let (ours, _) = same_as_runc(&bundle);
    let out = text(&ours.stdout);
    assert!(
        out.contains("16777216\n") && out.contains("\n10\n"),
        "{out}"
    );
    assert!(out.contains("oom_kill_disable 1"), "{out}");
}

/// The first disk (not a loop or zram device): `MAJOR:MINOR`.
fn a_disk() -> (i64, i64) {
    for entry in std::fs::read_dir("/sys/block").unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("loop") || name.starts_with("zram") || name.starts_with("ram") {
            continue;
        }
        let dev = std::fs::read_to_string(format!("/sys/block/{name}/dev")).unwrap();
        let (major, minor) = dev.trim().split_once(':').unwrap();
        return (major.parse().unwrap(), minor.parse().unwrap());
    }
    panic!("no disk in /sys/block");
}

#[test]
fn block_io_weight_and_throttles_are_set_like_runc() {
    if !require_peers() {
        return;
    }
    let (major, minor) = a_disk();
    let device = |rate: u64| serde_json::json!([{"major": major, "minor": minor, "rate": rate}]);
    let files: Vec<String> = if v2() {
        vec![file("io", "io.max")]
    } else {
        [
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_bps_device",
            "blkio.throttle.read_iops_device",
            "blkio.throttle.write_iops_device",
        ]
        .iter()
        .map(|f| file("blkio", f))
        .collect()
    };
    let bundle = cgroup_bundle(&["sh", "-c", &cat(&files)]);
    bundle.resources(
        "blockIO",
        serde_json::json!({
            "throttleReadBpsDevice": device(1048576),
            "throttleWriteBpsDevice": device(2097152),
            "throttleReadIOPSDevice": device(200),
            "throttleWriteIOPSDevice": device(100),
        }),
    );
    let (ours, _) = same_as_runc(&bundle);
    assert!(ours.status.success(), "{}", text(&ours.stderr));
    assert!(text(&ours.stdout).contains(&format!("{major}:{minor}")));
    // The weight: where the kernel offers it under both, and leafWeight, which needs CFQ
    // (gone since Linux 5.0) and so is refused by both.
    let weight = if v2() {
        "io.bfq.weight"
    } else {
        "blkio.bfq.weight"
    };
    let bundle = cgroup_bundle(&["sh", "-c", &cat(&[file("blkio", weight)])]);
    bundle.resources("blockIO", serde_json::json!({"weight": 300}));
    same_as_runc(&bundle);
    bundle.resources("blockIO", serde_json::json!({"leafWeight": 300}));
    if v2() {
        // cgroup v2 has no leaf weight at all; runc drops the value without a word, minidock
        // refuses it.
        let ours = run_minidock(&bundle);
        assert_eq!(ours.status.code(), Some(1));
        assert!(
            text(&ours.stderr).contains("leafWeight"),
            "{}",
            text(&ours.stderr)
        );
    } else {
        let (ours, _) = same_as_runc(&bundle);
        assert!(!ours.status.success());
    }
}

/// Resources whose controller this layout may lack (hugetlb is on cgroup2 on the hybrid
/// host; net_cls and net_prio are not mounted): applied where runc applies them, refused
/// where runc refuses them, and never dropped without a word.
#[test]
fn hugetlb_and_network_resources_match_runc() {
    if !require_peers() {
        return;
    }
    let bundle = cgroup_bundle(&["sh", "-c", &cat(&[file("hugetlb", "hugetlb.2MB.max")])]);
    bundle.resources(
        "hugepageLimits",
        serde_json::json!([{"pageSize": "2MB", "limit": 4194304}]),
    );
    let (ours, _) = same_as_runc(&bundle);
    if !ours.status.success() {
        assert!(
            text(&ours.stderr).contains("hugetlb"),
            "{}",
            text(&ours.stderr)
        );
    }
    let bundle = cgroup_bundle(&["true"]);
    bundle.resources(
        "network",
        serde_json::json!({"classID": 1048577, "priorities": [{"name": "lo", "priority": 5}]}),
    );
    let ours = run_minidock(&bundle);
    let has = |c: &str| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(c)
    };
    if !(has(",net_cls") && has(",net_prio")) {
        assert_eq!(ours.status.code(), Some(1));
        assert!(
            text(&ours.stderr).contains("net_cls"),
            "{}",
            text(&ours.stderr)
        );
        if !v2() {
            same_as_runc(&bundle);
        }
    } else {
        same_as_runc(&bundle);
    }
}

#[test]
fn unified_is_written_on_v2_and_refused_on_v1_like_runc() {
    if !require_peers() {
        return;
    }
    let bundle = cgroup_bundle(&["cat", "/sys/fs/cgroup/pids.max"]);
    bundle.resources("unified", serde_json::json!({"pids.max": "7"}));
    let (ours, _) = same_as_runc(&bundle);
    if v2() {
        assert_eq!(text(&ours.stdout), "7\n");
    } else {
        assert!(
            text(&ours.stderr).contains("unified"),
            "{}",
            text(&ours.stderr)
        );
    }
}

/// The container's cgroup directories, from the host: where its process is.
fn cgroup_dirs_of(pid: i32) -> Vec<PathBuf> {
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let members = minidock::cgroup::layout::parse_proc_cgroup(&own);
    let mut dirs = Vec::new();
    for hierarchy in minidock::cgroup::layout::detect_hierarchies().unwrap() {
        if let Some(m) = members.iter().find(|m| hierarchy.matches(m)) {
            dirs.push(hierarchy.mount.join(m.path.trim_start_matches('/')));
        }
    }
    dirs
}

/// Deletes a container with --force when dropped, so a failed assertion leaves nothing.
struct ForceDelete<'a>(&'a Root, &'a str);

impl Drop for ForceDelete<'_> {
    fn drop(&mut self) {
        let _ = minidock(self.0)
            .args(["runtime", "delete", "--force", self.1])
            .output();
    }
}

/// Kills a helper process when dropped (it is reaped by then on the passing path).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ANCHOR: child_cgroup_test
/// A child cgroup below the container's, with a process of the container in it, does not stop
/// `delete`: the process dies with the container's PID namespace, and the subtree is removed.
#[test]
fn delete_removes_child_cgroups_and_kills_what_is_in_them() {
    if !require_peers() {
        return;
    }
    let bundle = cgroup_bundle(&["sleep", "1000"]);
    let root = state_root();
    let id = unique_id("child");
    // The container keeps create's stdio: give it a file, so nothing waits for its end.
    let log = tempfile::tempfile().unwrap();
    let status = minidock(&root)
        .args(["runtime", "create", "--bundle"])
        .arg(bundle.path())
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.try_clone().unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let _cleanup = ForceDelete(&root, &id);
    let state: serde_json::Value = serde_json::from_slice(
        &minidock(&root)
            .args(["runtime", "state", &id])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let dirs = cgroup_dirs_of(state["pid"].as_i64().unwrap() as i32);
    // What `mkdir /sys/fs/cgroup/memory/x` inside would make, with a process in it.
    let memory = if v2() {
        dirs.iter().find(|d| d.join("cgroup.kill").exists())
    } else {
        dirs.iter()
            .find(|d| d.join("memory.limit_in_bytes").exists())
    }
    .unwrap();
    let child = memory.join("x");
    std::fs::create_dir(&child).unwrap();
    std::fs::create_dir(child.join("deeper")).unwrap();
    // A second process in the container's PID namespace (nsenter forks it there), moved into
    // the child cgroup.
    let pid = state["pid"].as_i64().unwrap().to_string();
    let sleeper = Command::new("nsenter")
        .args(["-t", &pid, "-p", "--", "sleep", "1000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut sleeper = KillOnDrop(sleeper);
    let children = format!("/proc/{0}/task/{0}/children", sleeper.0.id());
    let mut inside = String::new();
    for _ in 0..400 {
        inside = std::fs::read_to_string(&children).unwrap_or_default();
        if !inside.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::fs::write(child.join("cgroup.procs"), inside.trim()).unwrap();
    let output = minidock(&root)
        .args(["runtime", "delete", "--force", &id])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(sleeper.0.wait().unwrap().signal(), Some(9));
    // In every hierarchy the container had a cgroup of its own, and it is gone.
    assert!(
        dirs.iter().all(|d| d.to_string_lossy().contains(&id)),
        "{dirs:?}"
    );
    for dir in &dirs {
        assert!(!dir.exists(), "{} is left", dir.display());
    }
}
// ANCHOR_END: child_cgroup_test

/// `remove_existing`, which `minidock rm` uses per directory, reaches child cgroups too; on
/// v1 it freezes the group through its freezer directory meanwhile and leaves that thawed.
#[test]
fn remove_existing_kills_and_removes_a_subtree() {
    if !common::require_root() {
        return;
    }
    use minidock::cgroup::{self, Cgroup, freezer};
    let layout = cgroup::detect().unwrap();
    let version = layout.default_version();
    let mut group = Cgroup::create_in(&layout, version, "minidock", &unique_id("rmx")).unwrap();
    let memory = group.path_of("memory").unwrap();
    let child = memory.join("x");
    std::fs::create_dir_all(child.join("deeper")).unwrap();
    let sleeper = Command::new("sleep")
        .arg("1000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut sleeper = KillOnDrop(sleeper);
    std::fs::write(child.join("cgroup.procs"), sleeper.0.id().to_string()).unwrap();
    cgroup::remove_existing(&memory).unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(sleeper.0.wait().unwrap().signal(), Some(9));
    assert!(!memory.exists());
    if let Some(freezer_dir) = group
        .path_of("freezer")
        .filter(|_| version == cgroup::Version::V1)
    {
        assert_eq!(
            freezer::state(&freezer_dir).unwrap(),
            Some(freezer::FreezerState::Thawed)
        );
    }
    group.remove().unwrap();
}
