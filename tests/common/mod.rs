//! Shared helpers for the integration tests.
//!
//! Prerequisites: when one is missing, a test skips with a loud message on a developer's
//! machine, and FAILS under `CI=true`, so CI never passes by skipping.
#![allow(dead_code)]

pub mod backoff;
pub mod daemon;
pub mod dockerd;
pub mod engine;
pub mod leftovers;
pub mod minidock_root;
pub mod mounts;
pub mod net;
pub mod pty;
pub mod registry;
pub mod root;
pub mod rootless;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Runs before each test binary's `main`: the suite runs without the default bridge (as
/// dockerd's `--bridge none`), so tests that are not about networking never make a bridge or
/// NAT rules on the host. The networking tests remove the variable for their commands and run
/// inside network namespaces of their own.
#[ctor::ctor(unsafe)]
fn without_the_default_bridge() {
    if std::env::var_os("MINIDOCK_BRIDGE").is_none() {
        // SAFETY: before main, no other thread reads the environment.
        unsafe { std::env::set_var("MINIDOCK_BRIDGE", "none") };
    }
}

/// True when running in CI (`CI=true`), where a missing prerequisite is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Call at the top of a test: returns false (skip) when `ok` is false outside CI; panics with
/// `why` under CI.
pub fn prerequisite(ok: bool, why: &str) -> bool {
    if ok {
        return true;
    }
    if in_ci() {
        panic!("prerequisite missing under CI=true: {why}");
    }
    eprintln!("SKIPPED (prerequisite missing, would fail under CI=true): {why}");
    false
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skip unless root; under CI, fail.
pub fn require_root() -> bool {
    prerequisite(
        is_root(),
        "this test needs root (namespaces, mounts, cgroups)",
    )
}

/// The cgroup layout of this host, for test names and messages: "v1-hybrid", "v1" or "v2".
pub fn cgroup_layout_name() -> &'static str {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let v1 = mounts.lines().any(|l| l.contains(" - cgroup "));
    let v2 = mounts.lines().any(|l| l.contains(" - cgroup2 "));
    match (v1, v2) {
        (true, true) => "v1-hybrid",
        (true, false) => "v1",
        _ => "v2",
    }
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A busybox rootfs made by `scripts/busybox-rootfs` into a fresh temp dir.
pub fn busybox_rootfs() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("minidock-test-rootfs")
        .tempdir()
        .expect("creating a temp dir");
    build_busybox_rootfs(dir.path());
    dir
}

pub fn build_busybox_rootfs(dir: &Path) {
    let status = Command::new(repo().join("scripts/busybox-rootfs"))
        .arg(dir)
        .status()
        .expect("running scripts/busybox-rootfs");
    assert!(status.success(), "scripts/busybox-rootfs failed");
}

/// Mount points whose path contains `needle`, from this process's mount table.
pub fn mounts_containing(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// Runs `cmd` with `input` on its stdin (then closed) and collects stdout and stderr.
pub fn output_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that exits without reading its input is not an error of the test's.
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

/// Bytes as text, invalid UTF-8 replaced.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// True when `PROGRAM ARG` can be started (its exit status does not matter).
pub fn have(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Skip unless root with busybox-static and overlayfs; under CI, fail.
pub fn require_busybox_overlay() -> bool {
    require_root()
        && prerequisite(
            Path::new("/bin/busybox").exists(),
            "busybox-static is not installed (apt-get install busybox-static)",
        )
        && prerequisite(
            minidock::overlay::overlay_supported(),
            "the kernel has no overlayfs",
        )
}

/// `tar -C DIR -cf TAR .`, asserting success.
pub fn tar_dir(dir: &Path, tar: &Path) {
    let status = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
}

/// The stdout of `minidock ARGS`, asserting that it succeeded.
pub fn ok_stdout(args: &[&str], out: &Output) -> String {
    assert!(
        out.status.success(),
        "minidock {args:?} failed ({:?}): {}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The stderr of `minidock ARGS`, asserting that it failed.
pub fn failed_stderr(args: &[&str], out: &Output) -> String {
    assert!(
        !out.status.success(),
        "minidock {args:?} should have failed: {}",
        text(&out.stdout)
    );
    text(&out.stderr)
}

/// buildkit's Dockerfile parser corpus: `MINIDOCK_DOCKERFILE_CORPUS` when set, else
/// `../shared/dockerfile-corpus` next to the repository. `None` (after a loud message) when
/// absent outside CI; a panic under `CI=true`.
pub fn dockerfile_corpus() -> Option<PathBuf> {
    let dir = match std::env::var_os("MINIDOCK_DOCKERFILE_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => repo().join("../shared/dockerfile-corpus"),
    };
    let ok = dir.join("testfiles").is_dir();
    let why = format!(
        "the buildkit Dockerfile corpus at {} (or MINIDOCK_DOCKERFILE_CORPUS)",
        dir.display()
    );
    prerequisite(ok, &why).then_some(dir)
}
