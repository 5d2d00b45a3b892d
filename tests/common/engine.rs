//! A temp state root with images imported from the busybox rootfs, and `minidock` commands
//! run against it. Dropping it removes every container and volume, and fails the test if
//! anything of theirs is left ([`super::leftovers`]).

use assert_cmd::prelude::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::leftovers::Leftovers;
use super::{ok_stdout, text};

pub struct Minidock {
    root: tempfile::TempDir,
}

impl Minidock {
    /// A fresh state root (`prefix` names its temp dir) with `busybox` imported.
    pub fn with_busybox(prefix: &str) -> Minidock {
        let minidock = Minidock {
            root: tempfile::Builder::new().prefix(prefix).tempdir().unwrap(),
        };
        minidock.import("busybox", &[]);
        minidock
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Imports the busybox rootfs as image `name`, with `import --change` for each of
    /// `changes` (`VOLUME /data`).
    pub fn import(&self, name: &str, changes: &[&str]) {
        let rootfs = super::busybox_rootfs();
        let tar = rootfs.path().with_extension("tar");
        super::tar_dir(rootfs.path(), &tar);
        let mut args = vec!["import"];
        for change in changes {
            args.extend(["--change", change]);
        }
        args.extend([tar.to_str().unwrap(), name]);
        self.ok(&args);
        std::fs::remove_file(&tar).unwrap();
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("minidock").unwrap();
        cmd.arg("--root").arg(self.root());
        cmd.env("MINIDOCK_CONFIG", self.root().join("config"));
        cmd
    }

    pub fn output(&self, args: &[&str]) -> Output {
        self.cmd().args(args).stdin(Stdio::null()).output().unwrap()
    }

    /// `minidock ARGS`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        ok_stdout(args, &self.output(args))
    }

    /// `minidock ARGS`, which must exit `code`; its stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
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

    /// `inspect -f FORMAT CONTAINER`, trimmed.
    pub fn inspect(&self, container: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, container])
            .trim_end()
            .to_owned()
    }
}

impl Drop for Minidock {
    fn drop(&mut self) {
        let mut leftovers = Leftovers::before_removal(self.root());
        for id in text(&self.output(&["ps", "-aq", "--no-trunc"]).stdout).lines() {
            leftovers.removed(id, &self.output(&["rm", "-f", id]));
        }
        let _ = self.output(&["volume", "prune", "-af"]);
        leftovers.check();
    }
}
