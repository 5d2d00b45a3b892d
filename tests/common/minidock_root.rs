//! A temp state root with the busybox image imported, and `minidock --root ROOT` commands
//! against it. Dropping it removes every container (`rm -f`).

use super::{build_busybox_rootfs, tar_dir, text};
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub struct Root {
    dir: tempfile::TempDir,
    /// Environment variables given to every command (`None`: removed).
    env: Vec<(String, Option<String>)>,
}

impl Root {
    /// A root with `busybox` imported. `env` is set (or, with `None`, removed) for every
    /// command run against it.
    pub fn new(env: &[(&str, Option<&str>)]) -> Root {
        let dir = tempfile::Builder::new()
            .prefix("minidock-root")
            .tempdir()
            .unwrap();
        let root = Root {
            dir,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_owned)))
                .collect(),
        };
        let rootfs = tempfile::Builder::new()
            .prefix("minidock-rootfs")
            .tempdir()
            .unwrap();
        build_busybox_rootfs(rootfs.path());
        let tar = rootfs.path().with_extension("tar");
        tar_dir(rootfs.path(), &tar);
        root.ok(&["import", tar.to_str().unwrap(), "busybox"]);
        std::fs::remove_file(&tar).unwrap();
        root
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("minidock"));
        cmd.arg("--root").arg(self.path());
        for (key, value) in &self.env {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    pub fn output(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Stdout, asserting success.
    pub fn ok(&self, args: &[&str]) -> String {
        super::ok_stdout(args, &self.output(args))
    }

    /// Stderr, asserting the exit code.
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

    /// Removes every container, asserting success.
    pub fn remove_all(&self) {
        let ids = self.ok(&["ps", "-aq", "--no-trunc"]);
        for id in ids.lines() {
            self.ok(&["rm", "-f", id]);
        }
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let out = self.output(&["ps", "-aq", "--no-trunc"]);
        for id in text(&out.stdout).lines() {
            let _ = self.output(&["rm", "-f", id]);
        }
    }
}
