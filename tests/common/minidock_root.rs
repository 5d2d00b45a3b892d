//! A temp state root with the busybox image imported, and `minidock --root ROOT` commands
//! against it. Dropping it removes every container (`rm -f`) and fails the test if anything
//! of theirs is left ([`super::leftovers`]).

use super::leftovers::Leftovers;
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
        Root::new_in(&std::env::temp_dir(), env)
    }

    /// As [`Root::new`], with the state root made under `parent`.
    pub fn new_in(parent: &Path, env: &[(&str, Option<&str>)]) -> Root {
        let dir = tempfile::Builder::new()
            .prefix("minidock-root")
            .tempdir_in(parent)
            .unwrap();
        let root = Root {
            dir,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_owned)))
                .collect(),
        };
        root.import("busybox", &[]);
        root
    }

    /// Imports a busybox rootfs as image `name`, with `import -c` instructions (`EXPOSE 80`).
    pub fn import(&self, name: &str, changes: &[&str]) {
        let rootfs = tempfile::Builder::new()
            .prefix("minidock-rootfs")
            .tempdir()
            .unwrap();
        build_busybox_rootfs(rootfs.path());
        let tar = rootfs.path().with_extension("tar");
        tar_dir(rootfs.path(), &tar);
        let mut args = vec!["import"];
        for change in changes {
            args.extend(["-c", change]);
        }
        args.extend([tar.to_str().unwrap(), name]);
        self.ok(&args);
        std::fs::remove_file(&tar).unwrap();
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
        let mut leftovers = Leftovers::before_removal(self.path());
        let out = self.output(&["ps", "-aq", "--no-trunc"]);
        for id in text(&out.stdout).lines() {
            leftovers.removed(id, &self.output(&["rm", "-f", id]));
        }
        leftovers.check();
    }
}

/// The pid of the `minidock shim` supervising container `id` (full ID).
pub fn shim_of(id: &str) -> Option<i32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        // The light shim (`minidock-shim ... ID`), or `minidock shim ID` where it is absent.
        let shim = args.first().is_some_and(|a| a.ends_with(b"minidock-shim"))
            || args.contains(&b"shim".as_slice());
        if shim && args.contains(&id.as_bytes()) {
            return Some(pid);
        }
    }
    None
}
