//! A bundle made the way users make one (`runc spec` over a busybox rootfs), and running it
//! under minidock and under runc with private state roots, to compare the two.
#![allow(dead_code)]

use super::common;
use assert_cmd::prelude::*;
use std::path::Path;
use std::process::{Command, Output};

pub struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    /// `runc spec`, a busybox rootfs, `process.args` set and no terminal.
    pub fn new(args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("minidock-bundle")
            .tempdir()
            .unwrap();
        let status = Command::new("runc")
            .arg("spec")
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "runc spec failed");
        common::build_busybox_rootfs(&dir.path().join("rootfs"));
        let bundle = Bundle { dir };
        bundle.edit(|config| {
            config["process"]["terminal"] = false.into();
            config["process"]["args"] = args.iter().map(|a| serde_json::Value::from(*a)).collect();
        });
        bundle
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn edit(&self, f: impl FnOnce(&mut serde_json::Value)) {
        let path = self.path().join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        f(&mut config);
        std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    }

    /// Sets `linux.resources.KEY` to `value`.
    pub fn resources(&self, key: &str, value: serde_json::Value) {
        self.edit(|c| c["linux"]["resources"][key] = value);
    }
}

pub fn unique_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A private state root, removed with the value.
pub struct Root(pub tempfile::TempDir);

pub fn state_root() -> Root {
    Root(
        tempfile::Builder::new()
            .prefix("minidock-root")
            .tempdir()
            .unwrap(),
    )
}

/// `minidock --root ROOT`.
pub fn minidock(root: &Root) -> Command {
    let mut cmd = Command::cargo_bin("minidock").unwrap();
    cmd.arg("--root").arg(root.0.path());
    cmd
}

/// `runc --root ROOT`.
pub fn runc(root: &Root) -> Command {
    let mut cmd = Command::new("runc");
    cmd.arg("--root").arg(root.0.path());
    cmd
}

/// `minidock runtime run` on the bundle.
pub fn run_minidock(bundle: &Bundle) -> Output {
    let root = state_root();
    minidock(&root)
        .args(["runtime", "run", "--bundle"])
        .arg(bundle.path())
        .arg(unique_id("md"))
        .output()
        .unwrap()
}

/// `runc run` on the bundle.
pub fn run_runc(bundle: &Bundle) -> Output {
    let root = state_root();
    runc(&root)
        .args(["run", "--bundle"])
        .arg(bundle.path())
        .arg(unique_id("runc"))
        .output()
        .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the bundle under both and asserts the same stdout and exit status; returns
/// minidock's output.
pub fn same_as_runc(bundle: &Bundle) -> Output {
    let ours = run_minidock(bundle);
    let theirs = run_runc(bundle);
    assert_eq!(
        stdout(&ours),
        stdout(&theirs),
        "stdout differs from runc's (layout {})\nminidock stderr: {}\nrunc stderr: {}",
        common::cgroup_layout_name(),
        stderr(&ours),
        stderr(&theirs)
    );
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "exit status differs from runc's\nminidock stderr: {}\nrunc stderr: {}",
        stderr(&ours),
        stderr(&theirs)
    );
    ours
}

/// Skips (fails under CI) unless root with runc and busybox-static.
pub fn require_peers() -> bool {
    common::require_root()
        && common::prerequisite(
            minidock::doctor::which("runc").is_some(),
            "runc is not installed (apt-get install runc)",
        )
        && common::prerequisite(
            Path::new("/bin/busybox").exists(),
            "busybox-static is not installed",
        )
}
