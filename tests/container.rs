//! The container lifecycle of `minidock`: run, ps, logs, stop, kill, wait, rm, start, restart,
//! inspect, exec, cp, export, top, against a busybox image imported into a temp root per test.
//!
//! Every test removes its containers and then checks, from the kernel's own tables, that
//! nothing is left: no mount under its root, no cgroup of its containers, no runtime state.

mod common;

use assert_cmd::prelude::*;
use common::{require_busybox_overlay, text};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A state root with the `busybox` image imported, and the containers made in it.
struct Env {
    root: tempfile::TempDir,
    finished: bool,
}

impl Env {
    fn new() -> Option<Env> {
        if !require_busybox_overlay() {
            return None;
        }
        let env = Env {
            root: tempfile::Builder::new()
                .prefix("minidock-ctr")
                .tempdir()
                .unwrap(),
            finished: false,
        };
        env.import("busybox", |_| {});
        Some(env)
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    /// Imports a busybox rootfs, changed by `edit`, as image `name`.
    fn import(&self, name: &str, edit: impl FnOnce(&Path)) {
        let rootfs = tempfile::Builder::new()
            .prefix("minidock-ctr-rootfs")
            .tempdir()
            .unwrap();
        common::build_busybox_rootfs(rootfs.path());
        edit(rootfs.path());
        let tar = rootfs.path().with_extension("tar");
        common::tar_dir(rootfs.path(), &tar);
        let out = self.ok(&["import", tar.to_str().unwrap(), name]);
        assert!(out.starts_with("sha256:"), "{out}");
        std::fs::remove_file(&tar).unwrap();
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("minidock").unwrap();
        cmd.arg("--root").arg(self.root());
        cmd
    }

    fn output(&self, args: &[&str]) -> Output {
        self.cmd().args(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs and asserts success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        common::ok_stdout(args, &self.output(args))
    }

    /// Runs and asserts the exit code; returns stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.output(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "minidock {args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stderr)
    }

    /// `run -d ...`: the full ID.
    fn detach(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        let id = self.ok(&all).trim().to_owned();
        assert_eq!(id.len(), 64, "{id}");
        id
    }

    fn inspect(&self, container: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, container])
            .trim_end()
            .to_owned()
    }

    fn all_ids(&self) -> Vec<String> {
        self.ok(&["ps", "-aq", "--no-trunc"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Removes every container, then checks that nothing is left behind.
    fn finish(mut self) {
        self.finished = true;
        let mut leftovers = common::leftovers::Leftovers::before_removal(self.root());
        let ids = self.all_ids();
        for id in &ids {
            leftovers.removed(id, &self.output(&["rm", "-f", id]));
        }
        leftovers.check();
        assert_clean(self.root(), &ids);
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if !self.finished {
            // A failed test: clean up everything (the failure is reported already).
            let mut leftovers = common::leftovers::Leftovers::before_removal(self.root());
            let out = self.output(&["ps", "-aq", "--no-trunc"]);
            for id in text(&out.stdout).lines() {
                leftovers.removed(id, &self.output(&["rm", "-f", id]));
            }
            leftovers.check();
        }
    }
}

/// No mount under `root`, no cgroup of these containers, no runtime state, no container dirs.
fn assert_clean(root: &Path, ids: &[String]) {
    let mounts = common::mounts_containing(&root.display().to_string());
    assert!(mounts.is_empty(), "leftover mounts: {mounts:?}");
    for id in ids {
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap() {
            let dir = hierarchy.unwrap().path().join("minidock").join(id);
            assert!(!dir.exists(), "leftover cgroup {}", dir.display());
        }
    }
    let runtime = root.join("run/runtime");
    let left: Vec<_> = std::fs::read_dir(&runtime)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "leftover runtime state: {left:?}");
    let containers: Vec<_> = std::fs::read_dir(root.join("containers"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(containers.is_empty(), "leftover containers: {containers:?}");
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Docker's count of a directory's size: everything but directories, each inode once.
fn upper_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                pending.push(path);
            } else if seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    total
}

fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
}

// ------------------------------------------------------------------------------------------
// run
// ------------------------------------------------------------------------------------------

#[test]
fn run_prints_the_output_and_exits_with_the_status() {
    let Some(env) = Env::new() else { return };
    let out = env.output(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");
    // --rm left nothing.
    assert_eq!(env.ok(&["ps", "-aq"]), "");
    env.finish();
}

/// A `--rm` container's overlay is mounted `volatile` (its upper dir is thrown away, so it is
/// never flushed to disk, and the unmount skips a syncfs of the whole disk); a container that
/// is kept gets a plain overlay. The evidence is the kernel's: the superblock options of `/` in
/// the container's own mountinfo.
#[test]
fn only_a_removed_containers_overlay_is_volatile() {
    let Some(env) = Env::new() else { return };
    let root_line = "grep ' / / ' /proc/self/mountinfo";
    let removed = env.ok(&["run", "--rm", "busybox", "sh", "-c", root_line]);
    let options = |line: &str| line.split(" - ").nth(1).unwrap_or_default().to_owned();
    let removed = options(&removed);
    assert!(removed.starts_with("overlay "), "{removed}");
    // Linux 6.6 and later show the option as `fsync=volatile`.
    let volatile = |options: &str| {
        options
            .trim_end()
            .split(',')
            .any(|o| o == "volatile" || o == "fsync=volatile")
    };
    assert!(volatile(&removed), "{removed}");
    let kept = env.ok(&["run", "--name", "kept", "busybox", "sh", "-c", root_line]);
    let kept = options(&kept);
    assert!(kept.starts_with("overlay "), "{kept}");
    assert!(!volatile(&kept), "{kept}");
    // The kept container starts again on the same upper and work dirs.
    env.ok(&["start", "kept"]);
    env.ok(&["rm", "-f", "kept"]);
    env.finish();
}

#[test]
fn exit_codes_follow_docker() {
    let Some(env) = Env::new() else { return };
    let err = env.fails(&["run", "--rm", "busybox", "nonexistent"], 127);
    assert!(err.contains("executable file not found"), "{err}");
    env.fails(&["run", "--rm", "busybox", "/etc/passwd"], 126);
    let err = env.fails(&["run", "--rm", "nosuchimage", "true"], 125);
    assert!(err.contains("no such image"), "{err}");
    env.fails(&["run", "--rm", "-m", "lots", "busybox", "true"], 125);
    env.fails(
        &["run", "--rm", "--network", "bridge", "busybox", "true"],
        125,
    );
    env.fails(
        &["run", "--rm", "--cap-add", "NOPE", "busybox", "true"],
        125,
    );
    // A failed start without --rm leaves a created container carrying the error.
    env.fails(&["run", "--name", "failed", "busybox", "nonexistent"], 127);
    assert_eq!(
        env.inspect("failed", "{{.State.Status}} {{.State.ExitCode}}"),
        "created 127"
    );
    env.finish();
}

#[test]
fn an_oom_kill_gives_137() {
    let Some(env) = Env::new() else { return };
    let hog = "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived";
    let out = env.output(&[
        "run", "--name", "hog", "-m", "32m", "busybox", "sh", "-c", hog,
    ]);
    assert_eq!(out.status.code(), Some(137), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        env.inspect("hog", "{{.State.ExitCode}} {{.State.OOMKilled}}"),
        "137 true"
    );
    env.finish();
}

#[test]
fn flags_shape_the_container() {
    let Some(env) = Env::new() else { return };
    let env_file = env.root().join("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=1\n\nBOTH=file\n").unwrap();
    let out = env.ok(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "-e",
        "BOTH=flag",
        "--env-file",
        env_file.to_str().unwrap(),
        "-w",
        "/tmp/work",
        "-u",
        "nobody",
        "-h",
        "box",
        "busybox",
        "sh",
        "-c",
        "echo $A $FROM_FILE $BOTH $HOSTNAME; hostname; pwd; id",
    ]);
    assert_eq!(
        out,
        "1 1 flag box\nbox\n/tmp/work\nuid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "-u", "4242:0", "busybox", "id"]),
        "uid=4242 gid=0(root) groups=0(root)\n"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "--entrypoint", "echo", "busybox", "a", "b"]),
        "a b\n"
    );
    // The default hostname is the short ID, as with Docker.
    let hostname = env.ok(&["run", "--name", "named", "busybox", "hostname"]);
    let id = env.inspect("named", "{{.Id}}");
    assert_eq!(hostname.trim(), &id[..12]);
    env.fails(&["run", "--rm", "-u", "nosuchuser", "busybox", "true"], 125);
    env.finish();
}

#[test]
fn limits_and_security_reach_the_kernel() {
    let Some(env) = Env::new() else { return };
    // On v1 the runtime binds the container's own cgroup dirs at /sys/fs/cgroup/<controller>.
    let out = env.ok(&[
        "run",
        "--rm",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "20",
        "busybox",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max \
         /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/memory.max \
         /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max",
    ]);
    let numbers: Vec<&str> = out.split_whitespace().collect();
    assert!(numbers.contains(&"67108864"), "{out}");
    assert!(numbers.contains(&"20"), "{out}");
    assert!(numbers.contains(&"50000"), "{out}");
    let status = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[
            "busybox",
            "grep",
            "-E",
            "^(CapEff|Seccomp):",
            "/proc/self/status",
        ]);
        env.ok(&all)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Docker's default capabilities and its seccomp filter (mode 2).
    assert_eq!(status(&[]), "CapEff: 00000000a80425fb Seccomp: 2");
    assert_eq!(
        status(&["--cap-drop", "all", "--cap-add", "kill"]),
        "CapEff: 0000000000000020 Seccomp: 2"
    );
    assert_eq!(
        status(&["--security-opt", "seccomp=unconfined"]),
        "CapEff: 00000000a80425fb Seccomp: 0"
    );
    assert!(status(&["--privileged"]).ends_with("Seccomp: 0"));
    // --read-only, and a read-only volume.
    let host = env.root().join("shared");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("hello"), "from the host\n").unwrap();
    let volume = format!("{}:/data:ro", host.display());
    let out = env.output(&[
        "run",
        "--rm",
        "--read-only",
        "-v",
        &volume,
        "busybox",
        "sh",
        "-c",
        "cat /data/hello; touch /x 2>&1; touch /data/y 2>&1; exit 0",
    ]);
    assert_eq!(
        text(&out.stdout),
        "from the host\ntouch: /x: Read-only file system\ntouch: /data/y: Read-only file system\n"
    );
    let volume = format!("{}:/data", host.display());
    env.ok(&[
        "run",
        "--rm",
        "-v",
        &volume,
        "busybox",
        "touch",
        "/data/written",
    ]);
    assert!(host.join("written").exists());
    // --network none: loopback only; host: the host's devices.
    let none = env.ok(&["run", "--rm", "busybox", "ls", "/sys/class/net"]);
    assert_eq!(none, "lo\n");
    // ...and up, as Docker's: 127.0.0.1 answers.
    let lo = env.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ip link show lo | head -1; ping -c1 -W2 127.0.0.1 >/dev/null && echo reachable",
    ]);
    assert!(lo.contains(",UP") && lo.ends_with("reachable\n"), "{lo}");
    let host_net = env.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    let ours: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(host_net.lines().count(), ours.len(), "{host_net}");
    env.finish();
}

#[test]
fn stdin_only_with_i_and_a_terminal_with_t() {
    let Some(env) = Env::new() else { return };
    let feed = |args: &[&str]| {
        let mut child = env
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"typed\n").unwrap();
        text(&child.wait_with_output().unwrap().stdout)
    };
    assert_eq!(feed(&["run", "--rm", "-i", "busybox", "cat"]), "typed\n");
    assert_eq!(feed(&["run", "--rm", "busybox", "cat"]), "");
    // -t: a pty made inside the container; its output comes back through it (\r\n).
    let out = env.output(&["run", "--rm", "-t", "busybox", "sh", "-c", "tty; exit 4"]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(text(&out.stdout), "/dev/pts/0\r\n");
    env.finish();
}

#[test]
fn explain_shows_every_step_from_the_image_to_execve() {
    let Some(env) = Env::new() else { return };
    let out = env.output(&["--explain", "run", "--rm", "busybox", "true"]);
    assert!(out.status.success());
    let trace = text(&out.stderr);
    let steps = [
        "look the image up in the store",
        "mount the overlay",
        "turn the image config and flags into a spec",
        "write the bundle's config.json",
        "clone into new namespaces",
        "pivot_root into the rootfs",
        "install the seccomp filter",
        "execute the container's program",
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
    // The process is placed in its cgroup after the clone, before the exec, and never by a
    // write of its pid into `cgroup.procs` (or of a tid into `tasks`): that write takes the
    // lock every fork and exit on the machine takes, and waits for an RCU grace period. It
    // is born in its cgroup2 directory (clone3 with CLONE_INTO_CGROUP), and moves itself into
    // each v1 hierarchy by writing 0 into `tasks` before its first mount.
    let at = |step: &str| {
        trace
            .find(step)
            .unwrap_or_else(|| panic!("no {step:?} in:\n{trace}"))
    };
    let lines = |what: &str| -> Vec<&str> { trace.lines().filter(|l| l.contains(what)).collect() };
    let pid_writes: Vec<&str> = trace
        .lines()
        .filter(|l| {
            l.contains("/cgroup.procs, \"")
                || (l.contains("/tasks, \"") && !l.contains("/tasks, \"0\")"))
        })
        .collect();
    assert!(pid_writes.is_empty(), "{trace}");
    let moves = lines("move the process into the cgroup");
    let born = lines("CLONE_INTO_CGROUP");
    for line in &moves {
        assert!(line.contains("/tasks, \"0\")"), "{trace}");
    }
    if !moves.is_empty() {
        let first_move = at("move the process into the cgroup");
        assert!(at("clone into new namespaces") < first_move, "{trace}");
        assert!(first_move < at("pivot_root into the rootfs"), "{trace}");
    }
    match common::cgroup_layout_name() {
        "v1" => {
            assert!(moves.len() >= 3, "{trace}");
            assert!(born.is_empty(), "{trace}");
        }
        "v1-hybrid" => {
            assert!(moves.len() >= 3, "{trace}");
            assert_eq!(born.len(), 1, "{trace}");
            assert!(
                born[0].contains("cgroup=open(\"/sys/fs/cgroup/unified/"),
                "{trace}"
            );
        }
        _ => {
            assert!(moves.is_empty(), "{trace}");
            assert_eq!(born.len(), 1, "{trace}");
        }
    }
    env.finish();
}

/// The container's process, and a process `exec` starts in it, are in the container's cgroup
/// in every hierarchy, as the kernel lists them in /proc/PID/cgroup: the cgroup2 directory
/// they were born in and each v1 hierarchy they joined through `tasks`.
#[test]
fn the_process_is_in_the_containers_cgroup_in_every_hierarchy() {
    let Some(env) = Env::new() else { return };
    let id = env.detach(&["busybox", "sleep", "1000"]);
    let pid: i32 = env.inspect(&id, "{{.State.Pid}}").parse().unwrap();
    let listed = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let lines: Vec<&str> = listed.lines().collect();
    for line in &lines {
        let path = line.splitn(3, ':').nth(2).unwrap();
        assert!(path.ends_with(&format!("/{id}")), "{listed}");
    }
    let unified = lines.iter().filter(|l| l.starts_with("0::")).count();
    let layout = common::cgroup_layout_name();
    match layout {
        "v1" => assert!(lines.len() >= 3 && unified == 0, "{listed}"),
        "v1-hybrid" => assert!(lines.len() >= 4 && unified == 1, "{listed}"),
        _ => assert!(lines.len() == 1 && unified == 1, "{listed}"),
    }
    // exec: born in the cgroup2 directory too, the v1 hierarchies written through `tasks`.
    let out = env.output(&["--explain", "exec", &id, "cat", "/proc/self/cgroup"]);
    assert!(out.status.success(), "{out:?}");
    let (seen, trace) = (text(&out.stdout), text(&out.stderr));
    assert!(!trace.contains("/cgroup.procs"), "{trace}");
    assert_eq!(
        trace.contains("CLONE_INTO_CGROUP"),
        layout != "v1",
        "{trace}"
    );
    for line in seen.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap();
        // On v2 the container has a cgroup namespace rooted at its cgroup.
        let inside = if layout == "v2" {
            path == "/"
        } else {
            path.ends_with(&format!("/{id}"))
        };
        assert!(inside, "{seen}");
    }
    assert_eq!(seen.lines().count(), lines.len(), "{seen}");
    env.ok(&["rm", "-f", &id]);
    env.finish();
}

// ------------------------------------------------------------------------------------------
// names and hostile input
// ------------------------------------------------------------------------------------------

#[test]
fn names_are_validated_and_unique() {
    let Some(env) = Env::new() else { return };
    for bad in ["../escape", "a/b", "x", ".hidden", "with space"] {
        let err = env.fails(&["run", "--rm", "--name", bad, "busybox", "true"], 125);
        assert!(err.contains("invalid container name"), "{err}");
    }
    assert!(!env.root().join("containers/escape").exists());
    env.ok(&["create", "--name", "web", "busybox", "true"]);
    let err = env.fails(&["run", "--name", "web", "busybox", "true"], 125);
    assert!(err.contains("already in use"), "{err}");
    // A generated name is a valid one.
    let id = env.ok(&["create", "busybox", "true"]);
    let name = env.inspect(id.trim(), "{{.Name}}");
    assert!(
        name.len() > 3
            && name[1..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "{name}"
    );
    env.finish();
}

#[test]
fn workdirs_and_volumes_cannot_escape_the_rootfs() {
    // `..` at the root stays there (Go's path.Clean, as Docker cleans these paths); what is
    // refused is a relative path.
    let Some(env) = Env::new() else { return };
    let outside = env.root().join("outside");
    // An image whose /escape is a symlink climbing far above its root, towards `outside`.
    let target = format!("../../../../../../../../..{}", outside.display());
    env.import("hostile", |rootfs| {
        std::os::unix::fs::symlink(&target, rootfs.join("escape")).unwrap();
    });
    for args in [
        vec!["-w", "relative"],
        vec!["-v", "/tmp:relative"],
        vec!["-v", "/tmp:/.."],
        vec!["-v", "/tmp:/"],
        vec!["-v", "not a name:/data"],
    ] {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(&args);
        all.extend_from_slice(&["busybox", "true"]);
        env.fails(&all, 125);
    }
    // Through the symlink, the volume and the workdir land inside the container's root.
    let host = env.root().join("volume");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("mark"), "v\n").unwrap();
    let volume = format!("{}:/escape/sub", host.display());
    let out = env.ok(&[
        "run",
        "--rm",
        "-v",
        &volume,
        "-w",
        "/escape/wd",
        "hostile",
        "sh",
        "-c",
        "cat /escape/sub/mark; pwd -P",
    ]);
    assert_eq!(out, format!("v\n{}/wd\n", outside.display()));
    let volume = format!("{}:/../../escape/../data", host.display());
    let out = env.ok(&[
        "run",
        "--rm",
        "-v",
        &volume,
        "-w",
        "/../../etc",
        "hostile",
        "sh",
        "-c",
        "cat /data/mark; pwd -P",
    ]);
    assert_eq!(out, "v\n/etc\n");
    assert!(!outside.exists(), "the symlink led out of the rootfs");
    env.finish();
}

#[test]
fn a_symlinked_proc_in_the_image_is_hidden_by_the_init_layer() {
    let Some(env) = Env::new() else { return };
    env.import("badproc", |rootfs| {
        std::fs::remove_dir(rootfs.join("proc")).unwrap();
        std::os::unix::fs::symlink("/", rootfs.join("proc")).unwrap();
    });
    // As with Docker 20.10: the init layer's /proc directory lies over the image's symlink,
    // so procfs is mounted on a real directory inside the rootfs. (The runtime's own refusal
    // of a symlinked mount destination is tested in tests/runtime.rs.)
    let script = "test ! -L /proc && test -e /proc/self/status && echo procfs";
    let out = env.ok(&["run", "--rm", "badproc", "sh", "-c", script]);
    assert_eq!(out, "procfs\n");
    env.finish();
}

#[test]
fn descriptors_of_the_caller_do_not_leak_in() {
    let Some(env) = Env::new() else { return };
    let file = std::fs::File::open("/etc/hostname").unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let mut cmd = env.cmd();
    // `; true` keeps the shell alive (it would exec ls, whose own directory fd is 3).
    cmd.args(["run", "--rm", "busybox", "sh", "-c", "ls /proc/$$/fd; true"]);
    // SAFETY: dup2 in the child before exec: fd 7 is inherited by minidock.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "0\n1\n2\n");
    env.finish();
}

// ------------------------------------------------------------------------------------------
// the detached lifecycle
// ------------------------------------------------------------------------------------------

#[test]
fn ps_shows_dockers_columns() {
    let Some(env) = Env::new() else { return };
    env.detach(&["--name", "ps-running", "busybox", "sleep", "1000"]);
    env.fails(
        &[
            "run",
            "--name",
            "ps-exited",
            "busybox",
            "sh",
            "-c",
            "exit 2",
        ],
        2,
    );
    env.ok(&[
        "create",
        "--name",
        "ps-created",
        "busybox",
        "echo",
        "hello world, a long command",
    ]);
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\b[0-9a-f]{12}\b", "[id]");
    settings.add_filter(
        r"(Less than a second|About a minute|\d+ seconds?|\d+ minutes)",
        "[time]",
    );
    // Column widths follow the cell contents, which the redactions change.
    settings.add_filter(r" {2,}", "  ");
    settings.bind(|| {
        insta::assert_snapshot!("ps", env.ok(&["ps"]));
        insta::assert_snapshot!("ps_all", env.ok(&["ps", "-a"]));
    });
    assert_eq!(env.ok(&["ps", "-q"]).lines().count(), 1);
    // --format: a template per container, or a table with Docker's header names.
    assert_eq!(
        env.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]),
        "ps-created created\nps-exited exited\nps-running running\n"
    );
    let table = env.ok(&[
        "ps",
        "--format",
        r"table {{.Names}}\t{{upper .State}}\t{{.Command}}",
    ]);
    assert_eq!(
        table,
        "NAMES        STATE     COMMAND\nps-running   RUNNING   \"sleep 1000\"\n"
    );
    assert_eq!(
        env.ok(&["ps", "--format", "table"])
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        [
            "CONTAINER",
            "ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ]
    );
    assert_eq!(
        env.ok(&["ps", "--format", "{{json .Names}}"]),
        "\"ps-running\"\n"
    );
    // {{.Size}}: what the container wrote, and with its image, as Docker's SIZE.
    env.ok(&[
        "exec",
        "ps-running",
        "sh",
        "-c",
        "head -c 50000 /dev/zero > /written",
    ]);
    let id = env.ok(&["ps", "-q", "--no-trunc"]).trim().to_owned();
    let written = upper_size(&env.root().join("containers").join(&id).join("upper"));
    assert!(written >= 50_000, "{written}");
    let image: u64 = env
        .ok(&["image", "inspect", "-f", "{{.Size}}", "busybox"])
        .trim()
        .parse()
        .unwrap();
    let human = minidock::image::cli::human_size;
    assert_eq!(
        env.ok(&["ps", "--format", "{{.Names}}: {{.Size}}"]),
        format!(
            "ps-running: {} (virtual {})\n",
            human(written),
            human(written + image)
        )
    );
    let err = env.fails(&["ps", "--format", "{{.Nope}}"], 1);
    assert!(
        err.starts_with("minidock: template parsing error: "),
        "{err}"
    );
    let ids = env.ok(&["ps", "-aq", "--no-trunc"]);
    assert_eq!(ids.lines().count(), 3);
    assert!(ids.lines().all(|id| id.len() == 64));
    let full = env.ok(&["ps", "-a", "--no-trunc"]);
    assert!(
        // moby quotes an argument with a space in it.
        full.contains("\"echo 'hello world, a long command'\""),
        "{full}"
    );
    env.finish();
}

#[test]
fn logs_keep_stdout_and_stderr_apart() {
    let Some(env) = Env::new() else { return };
    env.fails(
        &[
            "run",
            "--name",
            "talker",
            "busybox",
            "sh",
            "-c",
            "for i in 1 2 3; do echo out$i; done; echo err >&2; exit 1",
        ],
        1,
    );
    let out = env.output(&["logs", "talker"]);
    assert_eq!(text(&out.stdout), "out1\nout2\nout3\n");
    assert_eq!(text(&out.stderr), "err\n");
    assert_eq!(env.ok(&["logs", "--tail", "2", "talker"]), "out3\n");
    let stamped = env.ok(&["logs", "-t", "talker"]);
    for line in stamped.lines() {
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(minidock::state::parse_rfc3339(time).is_some(), "{line}");
        assert!(rest.starts_with("out"), "{line}");
    }
    // The log is Docker's json-file format.
    let id = env.inspect("talker", "{{.Id}}");
    let raw = std::fs::read_to_string(env.root().join("containers").join(&id).join("log")).unwrap();
    let first: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "out1\n");
    assert_eq!(first["stream"], "stdout");
    // -f follows a running container until it exits.
    env.detach(&[
        "--name",
        "slow",
        "busybox",
        "sh",
        "-c",
        "echo a; sleep 1; echo b",
    ]);
    assert_eq!(env.ok(&["logs", "-f", "slow"]), "a\nb\n");
    env.finish();
}

#[test]
fn stop_kills_a_process_that_ignores_sigterm() {
    let Some(env) = Env::new() else { return };
    env.detach(&[
        "--name",
        "stubborn",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; sleep 1000",
    ]);
    env.detach(&[
        "--name",
        "polite",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' TERM; while true; do sleep 0.1; done",
    ]);
    assert_eq!(
        env.ok(&["stop", "-t", "1", "stubborn", "polite"]),
        "stubborn\npolite\n"
    );
    assert_eq!(
        env.inspect(
            "stubborn",
            "{{.State.Status}} {{.State.ExitCode}} {{.State.Pid}}"
        ),
        "exited 137 0"
    );
    assert_eq!(env.inspect("polite", "{{.State.ExitCode}}"), "7");
    // Stopping a stopped container is not an error.
    env.ok(&["stop", "polite"]);
    env.finish();
}

#[test]
fn kill_wait_and_rm() {
    let Some(env) = Env::new() else { return };
    env.detach(&[
        "--name",
        "target",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 5' USR1; while true; do sleep 0.1; done",
    ]);
    // rm refuses a running container without -f.
    let err = env.fails(&["rm", "target"], 1);
    assert!(err.contains("running"), "{err}");
    let waiter = env
        .cmd()
        .args(["wait", "target"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // PID 1 of a PID namespace ignores a signal it has no handler for: send USR1 only once
    // the shell's trap is in place (bit 10 of SigCgt).
    let pid = env.inspect("target", "{{.State.Pid}}");
    let caught = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (libc::SIGUSR1 - 1)) != 0)
    };
    for _ in 0..1000 {
        if caught() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(caught(), "the trap for USR1 was never installed");
    assert_eq!(env.ok(&["kill", "-s", "USR1", "target"]), "target\n");
    let waited = waiter.wait_with_output().unwrap();
    assert_eq!(text(&waited.stdout), "5\n", "wait: {waited:?}");
    // Not running any more.
    env.fails(&["kill", "target"], 1);
    env.ok(&["rm", "target"]);
    env.fails(&["inspect", "target"], 1);
    // rm -f on a running container.
    let id = env.detach(&["busybox", "sleep", "1000"]);
    let pid: i32 = env.inspect(&id, "{{.State.Pid}}").parse().unwrap();
    assert!(process_alive(pid));
    env.ok(&["rm", "-f", &id[..12]]);
    assert!(!process_alive(pid));
    env.finish();
}

#[test]
fn exec_joins_a_running_detached_container() {
    let Some(env) = Env::new() else { return };
    let id = env.detach(&[
        "--name",
        "box",
        "-h",
        "boxhost",
        "-e",
        "FROM_RUN=1",
        "busybox",
        "sleep",
        "1000",
    ]);
    let pid: i32 = env.inspect("box", "{{.State.Pid}}").parse().unwrap();
    let out = env.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "hostname; echo $FROM_RUN; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$; pwd",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "boxhost");
    assert_eq!(lines[1], "1");
    assert_eq!(lines[2], "sleep 1000 ");
    // A pid of the container's own PID namespace.
    assert!(lines[3].parse::<i32>().unwrap() < 100, "{out}");
    assert_eq!(lines[4], "/");
    // The same namespaces as the container's process, seen from the host.
    let out = env.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "for ns in mnt net uts ipc; do readlink /proc/self/ns/$ns; done",
    ]);
    let theirs: Vec<String> = ["mnt", "net", "uts", "ipc"]
        .iter()
        .map(|ns| {
            std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(out.lines().collect::<Vec<_>>(), theirs);
    // ...its cgroup, and its confinement.
    let out = env.ok(&["exec", "box", "cat", "/proc/self/cgroup"]);
    if common::cgroup_layout_name() == "v2" {
        // On v2 the container has a cgroup namespace rooted at its cgroup: "/" is the
        // container's cgroup, and a process outside it would show a "/.." path.
        assert_eq!(out.trim(), "0::/", "{out}");
    } else {
        assert!(out.contains(&id), "{out}");
    }
    let out = env.ok(&[
        "exec",
        "box",
        "grep",
        "-E",
        "^(CapEff|Seccomp):",
        "/proc/self/status",
    ]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>().join(" "),
        "CapEff: 00000000a80425fb Seccomp: 2"
    );
    // -u, -w, -e, the exit status, and "not found".
    assert_eq!(
        env.ok(&[
            "exec",
            "-u",
            "nobody",
            "-w",
            "/tmp",
            "-e",
            "X=2",
            "box",
            "sh",
            "-c",
            "id -u; pwd; echo $X $FROM_RUN"
        ]),
        "65534\n/tmp\n2 1\n"
    );
    env.fails(&["exec", "box", "sh", "-c", "exit 9"], 9);
    env.fails(&["exec", "box", "nonexistent"], 127);
    // -i: our stdin; without it, none.
    let mut child = env
        .cmd()
        .args(["exec", "-i", "box", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"piped\n").unwrap();
    assert_eq!(text(&child.wait_with_output().unwrap().stdout), "piped\n");
    // -t: a terminal of the container's devpts.
    assert_eq!(
        env.ok(&["exec", "-t", "box", "tty"]).trim_end(),
        "/dev/pts/0"
    );
    // top lists the container's processes by host pid.
    let top = env.ok(&["top", "box"]);
    assert!(top.starts_with("UID"), "{top}");
    assert!(
        top.lines()
            .any(|l| l.contains(&pid.to_string()) && l.ends_with("sleep 1000")),
        "{top}"
    );
    env.ok(&["stop", "-t", "0", "box"]);
    env.fails(&["exec", "box", "true"], 1);
    env.finish();
}

#[test]
fn start_after_stop_keeps_the_files_written_before() {
    let Some(env) = Env::new() else { return };
    env.detach(&["--name", "keeper", "busybox", "sleep", "1000"]);
    env.ok(&["exec", "keeper", "sh", "-c", "echo kept > /root/file"]);
    let first: i32 = env.inspect("keeper", "{{.State.Pid}}").parse().unwrap();
    env.ok(&["stop", "-t", "0", "keeper"]);
    // Stopped: no overlay mount left.
    assert!(common::mounts_containing(&env.root().display().to_string()).is_empty());
    assert_eq!(env.ok(&["start", "keeper"]), "keeper\n");
    assert_eq!(env.ok(&["exec", "keeper", "cat", "/root/file"]), "kept\n");
    let second: i32 = env.inspect("keeper", "{{.State.Pid}}").parse().unwrap();
    assert_ne!(first, second);
    // restart: a new process again, files still there.
    assert_eq!(env.ok(&["restart", "-t", "0", "keeper"]), "keeper\n");
    let third: i32 = env.inspect("keeper", "{{.State.Pid}}").parse().unwrap();
    assert_ne!(third, second);
    assert_eq!(env.ok(&["exec", "keeper", "cat", "/root/file"]), "kept\n");
    // start -a: in the foreground, with the output and the status.
    env.ok(&[
        "create",
        "--name",
        "once",
        "busybox",
        "sh",
        "-c",
        "echo attached; exit 6",
    ]);
    let out = env.output(&["start", "-a", "once"]);
    assert_eq!(out.status.code(), Some(6));
    assert_eq!(text(&out.stdout), "attached\n");
    env.finish();
}

#[test]
fn inspect_is_docker_shaped() {
    let Some(env) = Env::new() else { return };
    let host = env.root().join("vol");
    std::fs::create_dir(&host).unwrap();
    let volume = format!("{}:/data:ro", host.display());
    let id = env.detach(&[
        "--name", "insp", "-h", "insp", "-e", "K=V", "-v", &volume, "-m", "64m", "busybox",
        "sleep", "1000",
    ]);
    let pid: i32 = env.inspect("insp", "{{.State.Pid}}").parse().unwrap();
    assert!(process_alive(pid));
    assert_eq!(env.inspect("insp", "{{.State.Status}}"), "running");
    assert_eq!(env.inspect("insp", "{{.Id}}"), id);
    assert_eq!(env.inspect("insp", "{{.Name}}"), "/insp");
    assert_eq!(env.inspect("insp", "{{.Config.Env}}"), "[K=V]");
    assert_eq!(
        env.inspect("insp", "[{{.NetworkSettings.IPAddress}}]"),
        "[]"
    );
    assert_eq!(
        env.inspect("insp", "{{json .Mounts}}"),
        format!(
            r#"[{{"Type":"bind","Source":"{}","Destination":"/data","Mode":"ro","RW":false,"Propagation":"rprivate"}}]"#,
            host.display()
        )
    );
    // Go's text/template, whole: range, index, if, with, len and Docker's functions.
    let templates = [
        (
            "{{range .Mounts}}{{.Destination}}:{{.RW}},{{end}}",
            "/data:false,".to_owned(),
        ),
        ("{{index .Config.Env 0}}", "K=V".to_owned()),
        (
            "{{if .State.Running}}up{{else}}down{{end}}",
            "up".to_owned(),
        ),
        (
            "{{with .HostConfig}}{{.Memory}}{{end}}",
            "67108864".to_owned(),
        ),
        ("{{len .Config.Env}}", "1".to_owned()),
        (r#"{{join .Args ","}}"#, "1000".to_owned()),
        (
            "{{upper .State.Status}} {{title .Config.Hostname}}",
            "RUNNING Insp".to_owned(),
        ),
        (
            r#"{{lower "ABC"}} {{index (split .Name "/") 1}}"#,
            "abc insp".to_owned(),
        ),
        ("{{println .Path}}", "sleep".to_owned()),
        (
            "{{.GraphDriver.Name}} {{len .GraphDriver.Data}}",
            "overlay2 4".to_owned(),
        ),
        (
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}",
            "none".to_owned(),
        ),
        ("{{.State.Pid}}", pid.to_string()),
        // nil prints as Go prints the nil: a slice, a map, a pointer.
        (
            "{{.Config.Entrypoint}} {{len .HostConfig.CapAdd}} {{.Config.Volumes}} {{.HostConfig.PidsLimit}}",
            "[] 0 map[] <nil>".to_owned(),
        ),
    ];
    for (template, expected) in templates {
        assert_eq!(env.inspect("insp", template), expected, "{template}");
    }
    env.ok(&["stop", "-t", "0", "insp"]);
    // A struct prints as Go prints it, in field order: Docker's `{{.State}}`.
    let state = format!(
        "{{exited false false false false false 0 137  {} {} <nil>}}",
        env.inspect("insp", "{{.State.StartedAt}}"),
        env.inspect("insp", "{{.State.FinishedAt}}")
    );
    assert_eq!(env.inspect("insp", "{{.State}}"), state);
    assert_eq!(
        env.inspect("insp", "{{json .State.Status}} {{json .Config.Cmd}}"),
        r#""exited" ["sleep","1000"]"#
    );
    // A bad template: one line; exit 64 when it does not parse, else 1, as docker inspect.
    for (bad, code) in [
        ("{{.Nope}}", 1),
        ("{{.Id", 64),
        ("{{nosuch .Id}}", 64),
        ("{{range .State}}{{end}}", 1),
    ] {
        let err = env.fails(&["inspect", "-f", bad, "insp"], code);
        assert!(
            err.starts_with("minidock: template parsing error: "),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let json = env.ok(&["inspect", "insp"]);
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&env.root().display().to_string()), "[root]");
    settings.add_filter(r"[0-9a-f]{64}", "[id]");
    settings.add_filter(r"\d{4}-\d\d-\d\dT[0-9:.]+Z", "[time]");
    settings.bind(|| insta::assert_snapshot!("inspect", json));
    env.finish();
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

#[test]
fn cp_works_both_ways_and_stays_inside() {
    let Some(env) = Env::new() else { return };
    env.detach(&[
        "--name",
        "files",
        "busybox",
        "sh",
        "-c",
        "mkdir /data; echo inside > /data/in.txt; ln -s / /data/root; sleep 1000",
    ]);
    wait_for("the container's files", Duration::from_secs(10), || {
        env.output(&["exec", "files", "test", "-L", "/data/root"])
            .status
            .success()
    });
    let host = env.root().join("host");
    std::fs::create_dir_all(host.join("dir/sub")).unwrap();
    std::fs::write(host.join("dir/sub/f.txt"), "from the host\n").unwrap();
    // Host to container: a directory into an existing one, a file under a new name.
    env.ok(&["cp", host.join("dir").to_str().unwrap(), "files:/data"]);
    env.ok(&[
        "cp",
        host.join("dir/sub/f.txt").to_str().unwrap(),
        "files:/data/renamed.txt",
    ]);
    assert_eq!(
        env.ok(&[
            "exec",
            "files",
            "cat",
            "/data/dir/sub/f.txt",
            "/data/renamed.txt"
        ]),
        "from the host\nfrom the host\n"
    );
    // Container to host.
    let out = env.root().join("out");
    std::fs::create_dir(&out).unwrap();
    env.ok(&["cp", "files:/data/in.txt", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("in.txt")).unwrap(),
        "inside\n"
    );
    env.ok(&["cp", "files:/data", out.join("copy").to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("copy/dir/sub/f.txt")).unwrap(),
        "from the host\n"
    );
    assert_eq!(
        std::fs::read_link(out.join("copy/root")).unwrap(),
        PathBuf::from("/")
    );
    // The container's symlink to / is the container's /, in both directions.
    let marker = format!("minidock-cp-{}", std::process::id());
    env.ok(&[
        "cp",
        host.join("dir/sub/f.txt").to_str().unwrap(),
        &format!("files:/data/root/tmp/{marker}"),
    ]);
    assert!(
        !Path::new("/tmp").join(&marker).exists(),
        "cp wrote through a symlink onto the host"
    );
    assert_eq!(
        env.ok(&["exec", "files", "cat", &format!("/tmp/{marker}")]),
        "from the host\n"
    );
    env.ok(&[
        "cp",
        "files:/data/root/etc/passwd",
        out.join("passwd").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(out.join("passwd")).unwrap(),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    );
    env.fails(&["cp", "files:/nonexistent", out.to_str().unwrap()], 1);
    // A stopped container can be copied from too (its overlay is mounted for the copy).
    env.ok(&["stop", "-t", "0", "files"]);
    env.ok(&[
        "cp",
        "files:/data/in.txt",
        out.join("again.txt").to_str().unwrap(),
    ]);
    assert!(common::mounts_containing(&env.root().display().to_string()).is_empty());
    // export: the whole filesystem as a tar.
    let archive = env.root().join("export.tar");
    env.ok(&["export", "-o", archive.to_str().unwrap(), "files"]);
    let listing = Command::new("tar")
        .arg("-tvf")
        .arg(&archive)
        .output()
        .unwrap();
    let listing = text(&listing.stdout);
    assert!(listing.contains(" bin/busybox"), "{listing}");
    assert!(listing.contains(" data/in.txt"), "{listing}");
    assert!(listing.contains(" data/root -> /\n"), "{listing}");
    let streamed = env.cmd().args(["export", "files"]).output().unwrap();
    assert_eq!(streamed.stdout, std::fs::read(&archive).unwrap());
    env.finish();
}

// ------------------------------------------------------------------------------------------
// robustness
// ------------------------------------------------------------------------------------------

#[test]
fn twenty_parallel_runs_get_distinct_ids() {
    let Some(env) = Env::new() else { return };
    let children: Vec<_> = (0..20)
        .map(|_| {
            env.cmd()
                .args(["run", "--rm", "busybox", "hostname"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut hostnames = std::collections::BTreeSet::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        hostnames.insert(text(&out.stdout).trim().to_owned());
    }
    // The hostname is the short ID: 20 runs, 20 IDs.
    assert_eq!(hostnames.len(), 20, "{hostnames:?}");
    env.finish();
}

#[test]
fn many_sequential_runs_leave_nothing_behind() {
    let Some(env) = Env::new() else { return };
    // 200 on the host; the VM lane, under software emulation, sets fewer.
    let runs: usize = std::env::var("MINIDOCK_TEST_SEQUENTIAL_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    for _ in 0..runs {
        env.ok(&["run", "--rm", "busybox", "true"]);
    }
    assert!(
        minidock::container::Paths::new(Some(env.root()))
            .list()
            .unwrap()
            .is_empty()
    );
    env.finish();
}

/// The pid of the detached shim supervising container `id`.
fn shim_of(id: &str) -> i32 {
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        // `minidock shim ID`, or the light shim `minidock-shim ... ID`.
        let shim = args.contains(&b"shim".as_slice())
            || args.first().is_some_and(|a| a.ends_with(b"minidock-shim"));
        if shim && args.contains(&id.as_bytes()) {
            return pid;
        }
    }
    panic!("no shim for {id}");
}

#[test]
fn a_killed_shim_or_cli_leaves_a_truthful_state() {
    let Some(env) = Env::new() else { return };
    // The shim: SIGKILLed. The next command notices, kills what is left of the container and
    // records 137, as containerd does when a shim dies.
    let id = env.detach(&["--name", "orphan", "busybox", "sleep", "1000"]);
    let pid: i32 = env.inspect("orphan", "{{.State.Pid}}").parse().unwrap();
    let shim = shim_of(&id);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("the shim to die", Duration::from_secs(10), || {
        !process_alive(shim)
    });
    assert_eq!(env.inspect("orphan", "{{.State.Status}}"), "exited");
    assert_eq!(env.inspect("orphan", "{{.State.ExitCode}}"), "137");
    assert!(!process_alive(pid), "the container's process is gone");
    assert!(env.ok(&["ps", "-a"]).contains("Exited (137)"));
    // The foreground CLI: SIGKILLed, the same.
    let mut cli = env
        .cmd()
        .args(["run", "--name", "fg", "busybox", "sleep", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the foreground container", Duration::from_secs(10), || {
        env.output(&["inspect", "-f", "{{.State.Status}}", "fg"])
            .stdout
            == b"running\n"
    });
    cli.kill().unwrap();
    cli.wait().unwrap();
    assert_eq!(env.inspect("fg", "{{.State.Status}}"), "exited");
    assert_eq!(env.inspect("fg", "{{.State.ExitCode}}"), "137");
    // rm cleans both up: cgroups, mounts, state (checked by finish).
    env.ok(&["rm", "orphan", "fg"]);
    env.finish();
}
