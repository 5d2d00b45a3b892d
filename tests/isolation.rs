//! Isolation as Docker gives it, through `minidock run` with a busybox image in a temp root:
//! the devices a container may open, a read-only cgroupfs, read-only `/etc` files under
//! `--read-only`, private state on disk, and the host's devices for `--privileged`.
//!
//! Every test asserts the kernel's evidence (an errno, the devices cgroup's own list, the
//! host's kernel log, file modes, what `nobody` can read) and removes what it made.

mod common;

use assert_cmd::prelude::*;
use common::{require_busybox_overlay, text};
use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A word no kernel log or file holds by chance.
fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("minidock-{what}-{}-{nanos}", std::process::id())
}

/// A state root (`root`, made by minidock inside `parent`) with `busybox` imported. `parent`
/// is 0755, so what another user may read is decided by the modes minidock gives.
struct Env {
    parent: tempfile::TempDir,
}

impl Env {
    fn new() -> Option<Env> {
        if !require_busybox_overlay() {
            return None;
        }
        let parent = tempfile::Builder::new()
            .prefix("minidock-iso")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = Env { parent };
        let rootfs = tempfile::Builder::new()
            .prefix("minidock-iso-rootfs")
            .tempdir()
            .unwrap();
        common::build_busybox_rootfs(rootfs.path());
        let tar = env.parent.path().join("busybox.tar");
        common::tar_dir(rootfs.path(), &tar);
        let out = env.ok(&["import", tar.to_str().unwrap(), "busybox"]);
        assert!(out.starts_with("sha256:"), "{out}");
        std::fs::remove_file(&tar).unwrap();
        Some(env)
    }

    fn root(&self) -> PathBuf {
        self.parent.path().join("root")
    }

    fn output(&self, args: &[&str]) -> Output {
        Command::cargo_bin("minidock")
            .unwrap()
            .arg("--root")
            .arg(self.root())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs and asserts success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        common::ok_stdout(args, &self.output(args))
    }

    /// `run --rm [flags] busybox sh -c script`.
    fn sh(&self, flags: &[&str], script: &str) -> Output {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "sh", "-c", script]);
        self.output(&args)
    }

    /// `run -d [flags] busybox sleep 1000`: the full ID.
    fn detach(&self, flags: &[&str]) -> String {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "sleep", "1000"]);
        let id = self.ok(&args).trim().to_owned();
        assert_eq!(id.len(), 64, "{id}");
        id
    }

    fn pid(&self, id: &str) -> i32 {
        self.ok(&["inspect", "-f", "{{.State.Pid}}", id])
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let out = self.output(&["ps", "-aq", "--no-trunc"]);
        for id in text(&out.stdout).lines() {
            let _ = self.output(&["rm", "-f", id]);
        }
        let left = common::mounts_containing(&self.parent.path().display().to_string());
        if !std::thread::panicking() {
            assert!(left.is_empty(), "leftover mounts: {left:?}");
        }
    }
}

fn dmesg() -> String {
    let out = Command::new("dmesg").output().expect("running dmesg");
    assert!(out.status.success(), "dmesg: {}", text(&out.stderr));
    text(&out.stdout)
}

// Input 1: a container made /dev/kmsg itself and wrote into the host's kernel log.
#[test]
fn a_device_node_made_inside_cannot_be_opened() {
    let Some(env) = Env::new() else { return };
    let marker = unique("kmsg");
    let out = env.sh(
        &[],
        &format!("mknod /tmp/k c 1 11 && echo {marker} > /tmp/k"),
    );
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "the write went through");
    assert!(
        stderr.contains("Operation not permitted"),
        "expected EPERM from the devices cgroup: {stderr}"
    );
    assert!(
        !dmesg().contains(&marker),
        "the container wrote into the host's kernel log"
    );
}

/// The container's `config.json`.
fn spec_of(env: &Env, id: &str) -> serde_json::Value {
    let path = env.root().join("containers").join(id).join("config.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

// Input 1 and 8 in the spec: the device rules and devices Docker puts in its spec.
#[test]
fn the_spec_carries_dockers_device_rules() {
    let Some(env) = Env::new() else { return };
    let id = env.detach(&[]);
    let spec = spec_of(&env, &id);
    let rule = |allow: bool, major: i64, minor: i64| serde_json::json!({"allow": allow, "type": "c", "major": major, "minor": minor, "access": "rwm"});
    // moby's DefaultLinuxSpec, in its order.
    let docker = serde_json::json!([
        {"allow": false, "access": "rwm"},
        rule(true, 1, 5),
        rule(true, 1, 3),
        rule(true, 1, 9),
        rule(true, 1, 8),
        rule(true, 5, 0),
        rule(true, 5, 1),
        rule(false, 10, 229),
    ]);
    assert_eq!(spec["linux"]["resources"]["devices"], docker);
    assert!(spec["linux"].get("devices").is_none(), "{}", spec["linux"]);
    let cgroup = spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/sys/fs/cgroup")
        .unwrap();
    assert_eq!(
        cgroup["options"],
        serde_json::json!(["ro", "nosuid", "noexec", "nodev"])
    );
    env.ok(&["rm", "-f", &id]);

    let mut before = BTreeSet::new();
    host_devices(Path::new("/dev"), &mut before);
    let id = env.detach(&["--privileged"]);
    let mut after = BTreeSet::new();
    host_devices(Path::new("/dev"), &mut after);
    let spec = spec_of(&env, &id);
    assert_eq!(
        spec["linux"]["resources"]["devices"],
        serde_json::json!([{"allow": true, "access": "rwm"}])
    );
    let listed: BTreeSet<String> = spec["linux"]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{} {} {}:{}",
                d["path"].as_str().unwrap(),
                d["type"].as_str().unwrap(),
                d["major"],
                d["minor"]
            )
        })
        .collect();
    // A node that came or went meanwhile (another test's loop device) may be listed or not.
    let missing: Vec<_> = before
        .intersection(&after)
        .filter(|d| !listed.contains(*d))
        .collect();
    let extra: Vec<_> = listed
        .iter()
        .filter(|d| !before.contains(*d) && !after.contains(*d))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not listed: {missing:?}; not on the host: {extra:?}"
    );
    env.ok(&["rm", "-f", &id]);
}

/// Docker's allow list (moby's `DefaultLinuxSpec`), as `devices.list` shows it.
const DOCKER_ALLOWED: [&str; 6] = [
    "c 1:5 rwm",
    "c 1:3 rwm",
    "c 1:9 rwm",
    "c 1:8 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
];

/// What runc adds to every container's list (libcontainer's `AllowedDevices`).
const RUNC_ALLOWED: [&str; 11] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:8 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:5 rwm",
    "c 1:9 rwm",
    "c 136:* rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
];

// Input 1, the cgroup side: the container's devices cgroup holds the allow list.
#[test]
fn the_devices_cgroup_holds_dockers_allow_list() {
    let Some(env) = Env::new() else { return };
    let id = env.detach(&[]);
    let pid = env.pid(&id);
    let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    if common::cgroup_layout_name() == "v2" {
        // No devices.list on v2: the kernel lists the device programs attached to the cgroup.
        let path = membership
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .expect("the container's process is in a cgroup2 cgroup");
        let dir = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
        let count = device_programs(&dir);
        assert!(
            count >= 1,
            "no BPF_CGROUP_DEVICE program on {}",
            dir.display()
        );
        return;
    }
    let path = membership
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == "devices")
                .then_some(path)
        })
        .expect("the container's process is in a devices hierarchy");
    let list_path = Path::new("/sys/fs/cgroup/devices")
        .join(path.trim_start_matches('/'))
        .join("devices.list");
    let list = std::fs::read_to_string(&list_path).unwrap();
    let lines: BTreeSet<&str> = list.lines().collect();
    assert!(
        !lines.contains("a *:* rwm"),
        "{}: every device is allowed",
        list_path.display()
    );
    // Exactly what a Docker 20.10 container on runc shows: Docker's rules, then runc's.
    let want: BTreeSet<&str> = DOCKER_ALLOWED.into_iter().chain(RUNC_ALLOWED).collect();
    assert_eq!(lines, want, "{}", list_path.display());
}

/// How many `BPF_CGROUP_DEVICE` programs are attached to the cgroup `dir` (bpf(2)
/// `BPF_PROG_QUERY`).
fn device_programs(dir: &Path) -> u32 {
    use std::os::fd::AsRawFd;
    const BPF_PROG_QUERY: libc::c_long = 16;
    const BPF_CGROUP_DEVICE: u32 = 6;
    let cgroup = std::fs::File::open(dir).unwrap();
    // union bpf_attr, query: target_fd, attach_type, query_flags, attach_flags, prog_ids
    // (u64), prog_cnt.
    let mut attr = [0u32; 32];
    attr[0] = cgroup.as_raw_fd() as u32;
    attr[1] = BPF_CGROUP_DEVICE;
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_QUERY,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr) as u32,
        )
    };
    assert_eq!(
        rc,
        0,
        "bpf(BPF_PROG_QUERY) on {}: {}",
        dir.display(),
        std::io::Error::last_os_error()
    );
    attr[6]
}

// Input 1 and 4 through `run`: a default container cannot open loop-control; --privileged
// can open what it makes.
#[test]
fn privileged_opens_what_it_makes_and_the_default_cannot() {
    let Some(env) = Env::new() else { return };
    let out = env.sh(
        &[],
        "mknod /tmp/lc c 10 237 && exec 3</tmp/lc && echo opened",
    );
    assert!(!text(&out.stdout).contains("opened"), "c 10:237 was opened");
    assert!(
        text(&out.stderr).contains("Operation not permitted"),
        "{}",
        text(&out.stderr)
    );
    let out = env.sh(
        &["--privileged"],
        "mknod /tmp/n c 1 3 && echo x > /tmp/n && exec 3</tmp/n && echo opened",
    );
    assert_eq!(text(&out.stdout).trim(), "opened", "{}", text(&out.stderr));
    if Path::new("/dev/loop-control").exists() {
        let out = env.sh(
            &["--privileged"],
            "mknod /tmp/lc c 10 237 && exec 3</tmp/lc && echo opened",
        );
        assert_eq!(text(&out.stdout).trim(), "opened", "{}", text(&out.stderr));
    }
}

// Input 2: the container raised its own limits and made cgroups on the host.
#[test]
fn the_cgroupfs_is_read_only() {
    let Some(env) = Env::new() else { return };
    let name = unique("cg");
    let v2 = common::cgroup_layout_name() == "v2";
    let (memory, pids) = if v2 {
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max")
    } else {
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/pids/pids.max",
        )
    };
    // Every hierarchy: the cgroup2 mount on v2; on v1 each directory of the tmpfs (the tmpfs
    // itself is the container's own, and runc leaves it writable).
    let hierarchies = if v2 {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/*/"
    };
    let script = format!(
        "echo 1073741824 > {memory}; cat {memory}; echo max > {pids}; cat {pids}; \
         for d in {hierarchies}; do echo DIR $d; mkdir $d/{name} && echo MADE $d; done"
    );
    let out = env.sh(&["-m", "32m", "--pids-limit", "50"], &script);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    // Whatever happened inside, no cgroup of that name may stay on the host.
    let mut made_on_host = Vec::new();
    for entry in walk_dirs(Path::new("/sys/fs/cgroup"), 4) {
        if entry.file_name().is_some_and(|n| n == name.as_str()) {
            let _ = std::fs::remove_dir(&entry);
            made_on_host.push(entry);
        }
    }
    assert!(
        made_on_host.is_empty(),
        "host cgroups made: {made_on_host:?}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"33554432"), "{stdout}{stderr}");
    assert_eq!(lines.get(1), Some(&"50"), "{stdout}{stderr}");
    assert!(!stdout.contains("MADE"), "{stdout}");
    let dirs: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("DIR "))
        .copied()
        .collect();
    if !v2 {
        for hierarchy in ["memory", "pids", "devices", "cpu", "freezer", "blkio"] {
            let dir = format!("DIR /sys/fs/cgroup/{hierarchy}/");
            assert!(dirs.contains(&dir.as_str()), "{dir} not seen: {stdout}");
        }
    }
    let read_only = stderr.matches("Read-only file system").count();
    // Two writes and one mkdir per directory, each refused.
    assert_eq!(read_only, 2 + dirs.len(), "{stderr}");
}

/// Directories under `dir`, `depth` levels deep, without following symlinks.
fn walk_dirs(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if depth == 0 {
        return out;
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(entry.path());
            out.extend(walk_dirs(&entry.path(), depth - 1));
        }
    }
    out
}

const ETC_FILES: [&str; 3] = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];

// Input 6: --read-only left /etc/hosts, /etc/hostname and /etc/resolv.conf writable.
#[test]
fn read_only_covers_the_etc_files() {
    let Some(env) = Env::new() else { return };
    let script = "for f in /etc/hosts /etc/hostname /etc/resolv.conf; do \
                  echo 1.2.3.4 x >> $f && echo WROTE $f; done; cat /proc/self/mountinfo";
    let out = env.sh(&["--read-only"], script);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(!stdout.contains("WROTE"), "{stdout}");
    assert_eq!(
        stderr.matches("Read-only file system").count(),
        3,
        "{stderr}"
    );
    for file in ETC_FILES {
        let options = mount_options(&stdout, file);
        assert!(options.split(',').any(|o| o == "ro"), "{file}: {options}");
    }
    // Without the flag they stay writable, as Docker's.
    let out = env.sh(&[], script);
    let stdout = text(&out.stdout);
    for file in ETC_FILES {
        assert!(stdout.contains(&format!("WROTE {file}")), "{stdout}");
        let options = mount_options(&stdout, file);
        assert!(options.split(',').any(|o| o == "rw"), "{file}: {options}");
    }
}

/// The per-mount options of the mount at `target` in a mountinfo text.
fn mount_options(mountinfo: &str, target: &str) -> String {
    mountinfo
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(target))
        .filter_map(|l| l.split(' ').nth(5))
        .next_back()
        .unwrap_or_else(|| panic!("no mount at {target}: {mountinfo}"))
        .to_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// `runuser -u nobody -- args`.
fn as_nobody(args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .args(args)
        .output()
        .expect("running runuser")
}

// Input 7: the state root, container dirs and config were readable by every user.
#[test]
fn state_is_private_to_root() {
    let Some(env) = Env::new() else { return };
    if !common::prerequisite(
        Command::new("runuser").arg("--version").output().is_ok(),
        "runuser (util-linux) is not installed",
    ) {
        return;
    }
    // A root left by an older minidock, or made by `import`, with a wider mode.
    std::fs::set_permissions(env.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = unique("secret");
    let id = env.detach(&["-e", &format!("SECRET={secret}")]);
    let dir = env.root().join("containers").join(&id);
    let log = dir.join("log");
    let mut waited = 0;
    while !log.exists() && waited < 500 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        waited += 1;
    }
    for file in ["config.json", "state.json"] {
        let path = dir.join(file);
        let out = as_nobody(&["cat", path.to_str().unwrap()]);
        assert!(!out.status.success(), "nobody read {file}");
        assert!(!text(&out.stdout).contains(&secret), "nobody read {file}");
    }
    let out = as_nobody(&["grep", "-r", &secret, env.root().to_str().unwrap()]);
    assert!(
        !text(&out.stdout).contains(&secret),
        "nobody found the secret: {}",
        text(&out.stdout)
    );
    let root_mode = mode(&env.root());
    assert!(
        root_mode == 0o700 || (root_mode == 0o711 && mode(&dir) == 0o700),
        "state root {:o}, container dir {:o}",
        root_mode,
        mode(&dir)
    );
    assert_eq!(mode(&dir.join("config.json")), 0o600);
    assert_eq!(mode(&dir.join("state.json")), 0o600);
    assert_eq!(mode(&log), 0o640);
    // The container's own processes still read the files it is given.
    let out = env.ok(&["exec", "-u", "nobody", &id, "cat", "/etc/hostname"]);
    assert_eq!(out.trim(), &id[..12]);
    env.ok(&["rm", "-f", &id]);
}

/// The host's device nodes as Docker gives them to a privileged container (containerd's
/// `HostDevices`): char and block devices under /dev, not in pts, shm, fd, mqueue, .lxc,
/// .lxd-mounts or .udev, not `console`. Each as "path type major:minor".
fn host_devices(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(md) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        let kind = md.file_type();
        if kind.is_dir() {
            let skipped = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
            if !skipped.contains(&name.as_str()) {
                host_devices(&entry.path(), out);
            }
            continue;
        }
        let typ = if kind.is_char_device() {
            "c"
        } else if kind.is_block_device() {
            "b"
        } else {
            continue;
        };
        if name == "console" {
            continue;
        }
        let rdev = md.rdev();
        out.insert(format!(
            "{} {typ} {}:{}",
            entry.path().display(),
            libc::major(rdev),
            libc::minor(rdev)
        ));
    }
}

/// The device nodes of a container's /dev (outside its pts, shm and mqueue mounts), in the
/// form of [`host_devices`].
fn container_devices(env: &Env, flags: &[&str]) -> BTreeSet<String> {
    let script = "find /dev -path /dev/pts -prune -o -path /dev/shm -prune \
                  -o -path /dev/mqueue -prune -o \\( -type c -o -type b \\) \
                  -exec stat -c '%n %F %t %T' {} +; echo PTMX $(readlink /dev/ptmx)";
    let out = env.sh(flags, script);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("PTMX pts/ptmx"),
        "/dev/ptmx is not the link to pts/ptmx: {stdout}"
    );
    stdout
        .lines()
        .filter(|l| !l.starts_with("PTMX"))
        .map(|l| {
            let fields: Vec<&str> = l.rsplitn(3, ' ').collect();
            let (minor, major, rest) = (fields[0], fields[1], fields[2]);
            let (path, kind) = rest.split_once(' ').unwrap();
            let typ = if kind.starts_with("character") {
                "c"
            } else {
                "b"
            };
            let hex = |h: &str| u32::from_str_radix(h, 16).unwrap();
            format!("{path} {typ} {}:{}", hex(major), hex(minor))
        })
        .collect()
}

// Input 8: --privileged gave only the default nodes in /dev; Docker gives every host device.
#[test]
fn privileged_sees_the_hosts_devices() {
    let Some(env) = Env::new() else { return };
    // The host's /dev before and after: a node that comes or goes meanwhile (a loop device
    // of another test) may be there or not.
    let host = || {
        let mut set = BTreeSet::new();
        host_devices(Path::new("/dev"), &mut set);
        // runc replaces the host's /dev/ptmx with the link to the container's pts/ptmx.
        set.retain(|d| !d.starts_with("/dev/ptmx "));
        set
    };
    let before = host();
    let inside = container_devices(&env, &["--privileged"]);
    let after = host();
    let always: BTreeSet<_> = before.intersection(&after).cloned().collect();
    let ever: BTreeSet<_> = before.union(&after).cloned().collect();
    assert!(always.len() > 6, "the host has only {always:?}");
    let missing: Vec<_> = always.difference(&inside).collect();
    let extra: Vec<_> = inside.difference(&ever).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing in the container: {missing:?}; not on the host: {extra:?}"
    );
    // A default container has only the runtime-spec's default devices, as Docker's.
    let default = container_devices(&env, &[]);
    let want: BTreeSet<String> = [
        "/dev/null c 1:3",
        "/dev/zero c 1:5",
        "/dev/full c 1:7",
        "/dev/random c 1:8",
        "/dev/urandom c 1:9",
        "/dev/tty c 5:0",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(default, want);
}

// The cgroup namespace as Docker sets it: private on pure v2 (the container sees its cgroup
// as `/`), the host's on v1.
#[test]
fn the_cgroup_namespace_is_dockers() {
    let Some(env) = Env::new() else { return };
    let out = env.sh(&[], "readlink /proc/self/ns/cgroup; cat /proc/self/cgroup");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let inside = stdout.lines().next().unwrap();
    let host = std::fs::read_link("/proc/self/ns/cgroup").unwrap();
    let host = host.to_str().unwrap();
    if common::cgroup_layout_name() == "v2" {
        assert_ne!(
            inside, host,
            "the container shares the host's cgroup namespace"
        );
        assert_eq!(stdout.lines().nth(1), Some("0::/"), "{stdout}");
    } else {
        assert_eq!(inside, host, "v1: Docker keeps the host's cgroup namespace");
        assert!(stdout.contains("/minidock/"), "{stdout}");
    }
}

// Input 3: a container that made a cgroup of its own below its cgroup, with a process in it,
// could not be removed (EBUSY). `--privileged` gives it a writable cgroupfs to do so.
#[test]
fn rm_removes_the_cgroups_a_container_made_and_kills_their_processes() {
    let Some(env) = Env::new() else { return };
    let v2 = minidock::cgroup::detect().unwrap().kind == minidock::cgroup::Kind::V2;
    let inner = if v2 {
        "/sys/fs/cgroup/inner".to_owned()
    } else {
        "/sys/fs/cgroup/memory/inner".to_owned()
    };
    let name = unique("child");
    let script = format!(
        "mkdir {inner} && sleep 1000 & sleep 1; echo $! > {inner}/cgroup.procs; sleep 1000"
    );
    let id = env.ok(&[
        "run",
        "-d",
        "--privileged",
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    let id = id.trim();
    let pid = env.pid(id);
    // Seen from the host: the container's cgroup and the child it made, holding a process.
    let layout = minidock::cgroup::detect().unwrap();
    let controller = if v2 { "pids" } else { "memory" };
    let mut child = None;
    for _ in 0..100 {
        let dir =
            minidock::cgroup::cgroup_dir_of(&layout, controller, nix::unistd::Pid::from_raw(pid))
                .unwrap()
                .expect("the container's cgroup");
        let candidate = dir.join("inner");
        let procs = std::fs::read_to_string(candidate.join("cgroup.procs")).unwrap_or_default();
        if !procs.trim().is_empty() {
            child = Some((candidate, procs));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (child, procs) = child.expect("the container made a child cgroup with a process in it");
    let sleeper: i32 = procs.lines().next().unwrap().trim().parse().unwrap();
    env.ok(&["rm", "-f", &name]);
    assert!(!child.exists(), "{} is left", child.display());
    assert!(
        !Path::new(&format!("/proc/{sleeper}")).exists()
            || std::fs::read_to_string(format!("/proc/{sleeper}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "the process in the child cgroup survived"
    );
}
