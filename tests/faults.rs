//! Faults injected into `minidock`, and what the next command must make of them: a killed shim,
//! a killed foreground `--rm` run, `run -d`, `load` and `pull` killed at several points (with
//! strace's syscall fault injection, so each point is exact), a crash leftover directory, a full
//! disk (a small tmpfs as the state root), and random bytes fed to `load` and `import`.
//!
//! After each fault the next command succeeds, and the kernel's tables and the state root show
//! that nothing is left: no process, mount, cgroup, or byte of a partial download.

mod common;

use common::{have, require_busybox_overlay, text};
use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn strace_available() -> bool {
    common::prerequisite(
        have("strace", "-V"),
        "strace is not installed (apt-get install strace)",
    )
}

/// A busybox rootfs as a tar file, made once per test in `dir`.
fn busybox_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    fs::create_dir_all(&rootfs).unwrap();
    common::build_busybox_rootfs(&rootfs);
    let tar = dir.join("busybox.tar");
    common::tar_dir(&rootfs, &tar);
    fs::remove_dir_all(&rootfs).unwrap();
    tar
}

/// A state root, removed (with its containers) on drop.
struct Env {
    root: PathBuf,
    _dir: Option<tempfile::TempDir>,
    scratch: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("minidock-faults")
            .tempdir()
            .unwrap();
        Env {
            root: dir.path().to_path_buf(),
            _dir: Some(dir),
            scratch: scratch(),
        }
    }

    /// A state root at `root` (a mount point the test owns).
    fn at(root: &Path) -> Env {
        Env {
            root: root.to_path_buf(),
            _dir: None,
            scratch: scratch(),
        }
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_minidock"));
        cmd.arg("--root").arg(&self.root);
        cmd
    }

    fn output(&self, args: &[&str]) -> Output {
        self.cmd().args(args).stdin(Stdio::null()).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        common::ok_stdout(args, &self.output(args))
    }

    fn fails(&self, args: &[&str]) -> String {
        common::failed_stderr(args, &self.output(args))
    }

    /// Runs minidock under strace, SIGKILLed at the `nth` call of `syscall` (by any of its
    /// threads or children): the fault lands at the same point every time.
    fn killed_at(&self, syscall: &str, nth: u32, args: &[&str]) -> Output {
        Command::new("strace")
            .args(["-f", "-qq", "-o", "/dev/null", "-e"])
            .arg(format!("trace={syscall}"))
            .arg("-e")
            .arg(format!("inject={syscall}:signal=KILL:when={nth}"))
            .arg(env!("CARGO_BIN_EXE_minidock"))
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn import_busybox(&self, name: &str) {
        let tar = busybox_tar(self.scratch.path());
        self.ok(&["import", tar.to_str().unwrap(), name]);
        fs::remove_file(tar).unwrap();
    }

    fn container_ids(&self) -> Vec<String> {
        names_in(&self.root.join("containers"))
    }

    /// The bytes in `images/ingest`, the half-unpacked layers and the half-written index.
    fn leftover_bytes(&self) -> u64 {
        let mut total = du(&self.root.join("images/ingest"));
        for name in names_in(&self.root.join("images")) {
            if name.starts_with(".tmp-") {
                total += du(&self.root.join("images").join(name));
            }
        }
        for name in names_in(&self.root.join("layers")) {
            if name.starts_with('.') {
                total += du(&self.root.join("layers").join(name));
            }
        }
        total
    }

    /// Every container removed, then: no mount under the root, no cgroup or runtime state of
    /// `ids`, no container directory, no leftover bytes.
    fn assert_clean(&self, ids: &[String]) {
        for id in self.ok(&["ps", "-aq", "--no-trunc"]).lines() {
            self.ok(&["rm", "-f", id]);
        }
        let mounts = common::mounts_containing(&self.root.join("containers").display().to_string());
        assert!(mounts.is_empty(), "leftover mounts: {mounts:?}");
        for id in ids {
            for dir in cgroup_dirs(id) {
                assert!(!dir.exists(), "leftover cgroup {}", dir.display());
            }
            let runtime = self.root.join("run/runtime").join(id);
            assert!(!runtime.exists(), "leftover runtime state {runtime:?}");
        }
        assert_eq!(self.container_ids(), Vec::<String>::new());
        assert_eq!(self.leftover_bytes(), 0, "leftover bytes");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let out = self.output(&["ps", "-aq", "--no-trunc"]);
        for id in text(&out.stdout).lines() {
            let _ = self.output(&["rm", "-f", id]);
        }
    }
}

/// The bytes of the files under `path`, as `du --apparent-size -s` counts them.
fn du(path: &Path) -> u64 {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| du(&e.path())).sum())
            .unwrap_or(0),
        Ok(meta) => meta.len(),
        Err(_) => 0,
    }
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("minidock-faults-scratch")
        .tempdir()
        .unwrap()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Where a container's cgroups would be, on either layout.
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut dirs = vec![Path::new("/sys/fs/cgroup/minidock").join(id)];
    for hierarchy in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        dirs.push(hierarchy.path().join("minidock").join(id));
    }
    dirs
}

/// Alive and not a zombie.
fn process_alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn state_json(env: &Env, id: &str) -> serde_json::Value {
    let path = env.root.join("containers").join(id).join("state.json");
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn sigkill(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

/// The shim's pid and the container's, from its state.json.
fn shim_and_pid(env: &Env, id: &str) -> (i32, i32) {
    let state = state_json(env, id);
    (
        state["SupervisorPid"].as_i64().unwrap() as i32,
        state["Pid"].as_i64().unwrap() as i32,
    )
}

/// SIGKILLs the shim and waits until it is gone.
fn kill_shim(shim: i32) {
    sigkill(shim);
    wait_for("the shim to die", Duration::from_secs(10), || {
        !process_alive(shim)
    });
}

// ------------------------------------------------------------------------------------------
// Supervisors killed
// ------------------------------------------------------------------------------------------

#[test]
fn a_killed_shim_leaves_an_exited_137_container_with_nothing_running() {
    if !require_busybox_overlay() {
        return;
    }
    let env = Env::new();
    env.import_busybox("busybox");
    let id = env
        .ok(&["run", "-d", "busybox", "sleep", "1000"])
        .trim()
        .to_owned();
    let (shim, pid) = shim_and_pid(&env, &id);
    assert!(process_alive(pid));
    kill_shim(shim);
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (137)"), "{ps}");
    assert!(!ps.contains("Up "), "{ps}");
    assert!(!process_alive(pid), "the container's process was killed");
    for dir in cgroup_dirs(&id) {
        assert!(!dir.exists(), "its cgroup {} is gone", dir.display());
    }
    assert_eq!(
        env.ok(&["inspect", "-f", "{{.State.ExitCode}}", &id])
            .trim(),
        "137"
    );
    env.ok(&["rm", &id]);
    env.assert_clean(&[id]);
}

#[test]
fn an_rm_container_whose_cli_or_shim_was_killed_is_removed() {
    if !require_busybox_overlay() {
        return;
    }
    let env = Env::new();
    env.import_busybox("busybox");
    let stderr = env.scratch.path().join("run.stderr");
    let mut cli = env
        .cmd()
        .args(["run", "--rm", "busybox", "sleep", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    wait_for("the container to run", Duration::from_secs(60), || {
        if let Some(status) = cli.try_wait().unwrap() {
            panic!(
                "run exited ({status}): {}",
                fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        env.output(&["ps", "-q"]).stdout.len() > 1
    });
    let id = env.container_ids().pop().unwrap();
    let pid = state_json(&env, &id)["Pid"].as_i64().unwrap() as i32;
    cli.kill().unwrap();
    cli.wait().unwrap();
    assert_eq!(env.ok(&["ps", "-aq"]), "", "the --rm container is removed");
    assert!(!process_alive(pid));
    // The same for a detached --rm container whose shim is killed.
    let detached = env
        .ok(&["run", "-d", "--rm", "busybox", "sleep", "1000"])
        .trim()
        .to_owned();
    let (shim, detached_pid) = shim_and_pid(&env, &detached);
    kill_shim(shim);
    assert_eq!(
        env.ok(&["ps", "-aq"]),
        "",
        "the detached --rm container is removed"
    );
    assert!(!process_alive(detached_pid));
    env.assert_clean(&[id, detached]);
    env.ok(&["run", "--rm", "busybox", "true"]);
}

// ------------------------------------------------------------------------------------------
// Crash leftovers
// ------------------------------------------------------------------------------------------

#[test]
fn a_container_directory_without_state_json_is_reclaimed() {
    if !require_busybox_overlay() {
        return;
    }
    let env = Env::new();
    env.import_busybox("busybox");
    // What a `create` that hit a full disk before its first write, or an `rm` killed half
    // way, leaves: a directory with files but no state.json.
    let id = "5eed".repeat(16);
    let upper = env.root.join("containers").join(&id).join("upper");
    fs::create_dir_all(&upper).unwrap();
    fs::write(upper.join("data"), vec![7u8; 100_000]).unwrap();
    assert_eq!(env.ok(&["ps", "-aq"]), "");
    assert_eq!(env.container_ids(), Vec::<String>::new());
    env.ok(&["run", "--rm", "busybox", "true"]);
    env.assert_clean(&[id]);
}

#[test]
fn run_killed_at_several_points_leaves_nothing_after_the_next_command() {
    if !require_busybox_overlay() || !strace_available() {
        return;
    }
    // mkdirat: the layer unpacker (a fresh store unpacks on the first run); mount: the overlay
    // mount, after state.json exists; renameat: the first atomic state.json write.
    for (syscall, nth) in [
        ("mkdirat", 3),
        ("mount", 1),
        ("renameat", 1),
        ("renameat", 2),
    ] {
        let env = Env::new();
        env.import_busybox("busybox");
        let out = env.killed_at(syscall, nth, &["run", "-d", "busybox", "sleep", "1000"]);
        assert!(!out.status.success(), "{syscall}#{nth}: not killed");
        let ids = env.container_ids();
        let dirty = !ids.is_empty() || env.leftover_bytes() > 0;
        assert!(dirty, "{syscall}#{nth}: the fault left nothing to reclaim");
        // The next container command: nothing of the killed run is listed or left.
        assert_eq!(env.ok(&["ps", "-aq"]), "", "{syscall}#{nth}");
        assert_eq!(env.container_ids(), Vec::<String>::new(), "{syscall}#{nth}");
        env.ok(&["run", "--rm", "busybox", "true"]);
        env.assert_clean(&ids);
    }
}

#[test]
fn a_build_killed_during_run_leaves_no_container_after_the_next_command() {
    if !require_busybox_overlay() {
        return;
    }
    let env = Env::new();
    env.import_busybox("busybox");
    let context = env.scratch.path().join("context");
    fs::create_dir_all(&context).unwrap();
    fs::write(context.join("Dockerfile"), "FROM busybox\nRUN sleep 1000\n").unwrap();
    let mut build = env
        .cmd()
        .args(["build", "--network", "none", "-q"])
        .arg(&context)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the RUN step to run", Duration::from_secs(60), || {
        assert!(build.try_wait().unwrap().is_none(), "build exited");
        env.output(&["ps", "-q"]).stdout.len() > 1
    });
    let ids = env.container_ids();
    let pid = state_json(&env, &ids[0])["Pid"].as_i64().unwrap() as i32;
    build.kill().unwrap();
    build.wait().unwrap();
    // Docker's daemon removes the step's container when the build is cancelled.
    assert_eq!(
        env.ok(&["ps", "-aq"]),
        "",
        "the RUN step's container is removed"
    );
    assert!(!process_alive(pid));
    env.assert_clean(&ids);
}

#[test]
fn rm_killed_half_way_is_finished_by_the_next_command() {
    if !require_busybox_overlay() || !strace_available() {
        return;
    }
    let env = Env::new();
    env.import_busybox("busybox");
    // unlinkat: rm's recursive removal of the container's directory, part done; at the later
    // points state.json is gone and the directory is no container any more.
    let mut without_state = 0;
    for nth in [1, 3, 5, 7, 9] {
        let id = env
            .ok(&["run", "-d", "busybox", "sleep", "1000"])
            .trim()
            .to_owned();
        let out = env.killed_at("unlinkat", nth, &["rm", "-f", &id]);
        assert!(!out.status.success(), "unlinkat#{nth}: not killed");
        assert_eq!(env.container_ids(), vec![id.clone()], "unlinkat#{nth}");
        let dir = env.root.join("containers").join(&id);
        if !dir.join("state.json").exists() {
            without_state += 1;
        }
        // The next command lists it (if its state.json survived) or reclaims it; either
        // way `rm` ends it.
        if env.ok(&["ps", "-aq", "--no-trunc"]).contains(&id) {
            env.ok(&["rm", "-f", &id]);
        }
        env.assert_clean(&[id]);
    }
    assert!(
        without_state > 0,
        "no kill point left a directory without state.json"
    );
}

#[test]
fn load_killed_at_several_points_is_reclaimed_by_the_next_command() {
    if !require_busybox_overlay() || !strace_available() {
        return;
    }
    let source = Env::new();
    source.import_busybox("busybox");
    let archive = source.scratch.path().join("busybox-save.tar");
    source.ok(&["save", "-o", archive.to_str().unwrap(), "busybox"]);
    let archive = archive.to_str().unwrap();
    // write: mid-extract into ingest/load-*; fsync: a blob written, not yet named.
    for (syscall, nth) in [("write", 40), ("fsync", 1), ("fsync", 2), ("fsync", 3)] {
        let env = Env::new();
        env.ok(&["images"]);
        let out = env.killed_at(syscall, nth, &["load", "-i", archive]);
        assert!(!out.status.success(), "{syscall}#{nth}: not killed");
        assert!(
            env.leftover_bytes() > 0,
            "{syscall}#{nth}: nothing left to reclaim"
        );
        env.ok(&["images"]);
        assert_eq!(env.leftover_bytes(), 0, "{syscall}#{nth}");
        env.ok(&["load", "-i", archive]);
        assert_eq!(env.leftover_bytes(), 0);
        env.ok(&["run", "--rm", "busybox", "true"]);
        env.assert_clean(&[]);
    }
}

#[test]
fn system_prune_removes_stopped_containers_dangling_images_and_leftovers() {
    if !require_busybox_overlay() {
        return;
    }
    let env = Env::new();
    env.import_busybox("busybox");
    env.import_busybox("busybox");
    let stopped = env.ok(&["create", "busybox", "true"]).trim().to_owned();
    let ingest = env.root.join("images/ingest/blob-left-by-a-killed-pull");
    fs::write(&ingest, vec![1u8; 200_000]).unwrap();
    let out = env.ok(&["system", "prune", "-f"]);
    assert!(
        out.starts_with(&format!(
            "Deleted Containers:\n{stopped}\n\nDeleted Images:\ndeleted: sha256:"
        )),
        "{out}"
    );
    let total = out.lines().last().unwrap();
    assert!(total.starts_with("Total reclaimed space: "), "{out}");
    assert_ne!(total, "Total reclaimed space: 0B");
    assert!(!ingest.exists());
    let images = env.ok(&["images", "-q"]);
    assert_eq!(
        images.lines().count(),
        1,
        "the tagged image stays: {images}"
    );
    // Without -f it asks, and a "n" keeps everything.
    env.ok(&["create", "busybox", "true"]);
    let mut asked = env
        .cmd()
        .args(["system", "prune", "-a"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    asked.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let asked = asked.wait_with_output().unwrap();
    assert!(text(&asked.stdout).contains("Are you sure you want to continue? [y/N]"));
    assert_eq!(env.ok(&["ps", "-aq"]).lines().count(), 1);
    let all = env.ok(&["system", "prune", "-a", "-f"]);
    assert!(all.contains("untagged: busybox:latest"), "{all}");
    assert_eq!(env.ok(&["images", "-q"]), "");
    env.assert_clean(&[stopped]);
}

// ------------------------------------------------------------------------------------------
// Pull, against a local registry
// ------------------------------------------------------------------------------------------

/// A `docker-registry serve` on 127.0.0.1:<free port>, storage in a temp dir; killed on drop.
struct Registry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Option<Registry> {
        if !common::prerequisite(
            have("docker-registry", "--version"),
            "docker-registry is not installed (apt-get install docker-registry)",
        ) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("minidock-faults-registry")
            .tempdir()
            .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let registry = Registry {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&registry.addr).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(registry)
    }

    /// Pushes a busybox image from a scratch store; returns its name in the registry.
    fn with_busybox(&self) -> String {
        let source = Env::new();
        source.import_busybox("busybox");
        let name = format!("{}/faults/busybox:1", self.addr);
        source.ok(&["tag", "busybox", &name]);
        source.ok(&["push", &name]);
        name
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn pull_killed_at_several_points_is_reclaimed_by_the_next_command() {
    if !require_busybox_overlay() || !strace_available() {
        return;
    }
    let Some(registry) = Registry::start() else {
        return;
    };
    let name = registry.with_busybox();
    // strace counts each thread's calls: fsync 1, a blob downloaded into ingest/, not yet
    // named (the config on the main thread, the layer on its download thread); 2, the
    // manifest; 3, the new index.json before its rename. mkdirat: the layer half unpacked.
    for (syscall, nth) in [("fsync", 1), ("fsync", 2), ("fsync", 3), ("mkdirat", 3)] {
        let env = Env::new();
        env.ok(&["images"]);
        let out = env.killed_at(syscall, nth, &["pull", &name]);
        assert!(!out.status.success(), "{syscall}#{nth}: not killed");
        assert!(
            env.leftover_bytes() > 0,
            "{syscall}#{nth}: nothing left to reclaim"
        );
        env.ok(&["images"]);
        assert_eq!(env.leftover_bytes(), 0, "{syscall}#{nth}");
        env.ok(&["pull", &name]);
        env.ok(&["run", "--rm", &name, "true"]);
        env.assert_clean(&[]);
    }
}

// ------------------------------------------------------------------------------------------
// A full disk
// ------------------------------------------------------------------------------------------

/// A tmpfs of `size` mounted on a temp dir, unmounted (lazily, with whatever is on it) on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("minidock-faults-tmpfs")
            .tempdir()
            .unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(format!("size={size},mode=0755").as_str()),
        )
        .unwrap();
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.dir.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Fills the filesystem holding `dir` up to its last byte; returns the filler file.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut file = fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 << 10];
    loop {
        match file.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    while file.write(&[0]).is_ok_and(|n| n == 1) {}
    filler
}

fn assert_disk_full(stderr: &str, mount: &Path) {
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("the disk is full")
            && stderr.contains(&format!(
                "the tmpfs filesystem mounted at {}",
                mount.display()
            )),
        "{stderr}"
    );
    assert!(!stderr.contains("connection broke") && !stderr.contains("not a valid tar"));
}

#[test]
fn a_full_disk_is_said_as_such_in_import_load_pull_create_commit_and_save() {
    if !require_busybox_overlay() {
        return;
    }
    let Some(registry) = Registry::start() else {
        return;
    };
    let name = registry.with_busybox();
    let tmpfs = Tmpfs::mount("8m");
    let env = Env::at(&tmpfs.path().join("root"));
    let tar = busybox_tar(env.scratch.path());
    let tar = tar.to_str().unwrap();
    env.ok(&["import", tar, "busybox"]);
    let archive = env.scratch.path().join("save.tar");
    env.ok(&["save", "-o", archive.to_str().unwrap(), "busybox"]);
    let created = env.ok(&["create", "--name", "full", "busybox", "true"]);
    let filler = fill(tmpfs.path());
    assert_disk_full(&env.fails(&["commit", "full", "committed"]), tmpfs.path());
    let saved = tmpfs.path().join("saved.tar");
    assert_disk_full(
        &env.fails(&["save", "-o", saved.to_str().unwrap(), "busybox"]),
        tmpfs.path(),
    );
    assert!(!saved.exists(), "no truncated archive under the name");
    assert_disk_full(&env.fails(&["import", tar, "other"]), tmpfs.path());
    assert_disk_full(
        &env.fails(&["load", "-i", archive.to_str().unwrap()]),
        tmpfs.path(),
    );
    assert_disk_full(&env.fails(&["pull", &name]), tmpfs.path());
    assert_disk_full(&env.fails(&["create", "busybox", "true"]), tmpfs.path());
    // Room again: the next commands succeed and nothing of the failed ones is left.
    fs::remove_file(filler).unwrap();
    env.ok(&["images"]);
    assert_eq!(env.leftover_bytes(), 0);
    env.ok(&["run", "--rm", "busybox", "true"]);
    env.ok(&["pull", &name]);
    env.ok(&["commit", "full", "committed"]);
    env.assert_clean(&[created.trim().to_owned()]);
}

// ------------------------------------------------------------------------------------------
// Untrusted text in errors
// ------------------------------------------------------------------------------------------

#[test]
fn random_bytes_give_one_quoted_bounded_error_line() {
    let env = Env::new();
    let mut random = vec![0u8; 1 << 20];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
        .unwrap();
    // Bytes that a terminal would act on, and what tar's checksum parser echoes back.
    random[148..156].copy_from_slice(b"\x1b[2J\n\r\x07\x9b");
    let input = env.scratch.path().join("random.bin");
    fs::write(&input, &random).unwrap();
    for args in [
        vec!["load", "-i", input.to_str().unwrap()],
        vec!["import", input.to_str().unwrap(), "random"],
    ] {
        let err = env.fails(&args);
        let line = err.strip_suffix('\n').unwrap_or(&err);
        assert!(
            !line.contains('\n'),
            "{args:?}: more than one line: {err:?}"
        );
        assert!(
            !line.chars().any(|c| c.is_control()),
            "{args:?}: control characters: {err:?}"
        );
        assert!(line.chars().count() < 300, "{args:?}: {err:?}");
        assert!(
            line.contains("not a valid tar archive: \""),
            "{args:?}: {err:?}"
        );
    }
    assert_eq!(env.leftover_bytes(), 0);
}
