//! A temp minidock state root with the busybox image imported, for container tests.
//! Dropping it removes every container it holds and fails the test if anything of theirs is
//! left ([`super::leftovers`]).

use assert_cmd::prelude::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::leftovers::Leftovers;
use super::{busybox_rootfs, tar_dir, text};

pub struct BusyboxRoot {
    dir: tempfile::TempDir,
}

impl BusyboxRoot {
    /// None when the prerequisites are missing (and not in CI, where that fails).
    pub fn new(prefix: &str) -> Option<BusyboxRoot> {
        if !super::require_busybox_overlay() {
            return None;
        }
        let root = BusyboxRoot {
            dir: tempfile::Builder::new().prefix(prefix).tempdir().unwrap(),
        };
        let rootfs = busybox_rootfs();
        let tar = rootfs.path().with_extension("tar");
        tar_dir(rootfs.path(), &tar);
        root.ok(&["import", tar.to_str().unwrap(), "busybox"]);
        std::fs::remove_file(&tar).unwrap();
        Some(root)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `minidock --root ROOT`, with stdin on /dev/null unless the caller says otherwise.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("minidock").unwrap();
        cmd.arg("--root").arg(self.path()).stdin(Stdio::null());
        cmd
    }

    pub fn output(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// `minidock ARGS`, which must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        super::ok_stdout(args, &self.output(args))
    }
}

impl Drop for BusyboxRoot {
    fn drop(&mut self) {
        let mut leftovers = Leftovers::before_removal(self.path());
        let out = self.output(&["ps", "-aq", "--no-trunc"]);
        for id in text(&out.stdout).lines() {
            leftovers.removed(id, &self.output(&["rm", "-f", id]));
        }
        leftovers.check();
    }
}
