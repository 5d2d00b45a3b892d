//! A private Debian `dockerd` for tests: inside a private network namespace (only loopback,
//! `--bridge=none`, `--iptables=false`) and a private mount namespace with a tmpfs on /run,
//! with its data root, exec root, pid file and socket in a temp dir. minidock is configured as
//! an extra runtime named `minidock` (a `minidock-runc` symlink to the binary).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use super::{busybox_rootfs, prerequisite, require_root};

pub fn have(program: &str) -> bool {
    minidock::doctor::which(program).is_some()
}

/// Skip unless root with dockerd and its tools; under CI, fail.
pub fn require_docker() -> bool {
    require_root()
        && [
            "dockerd",
            "containerd",
            "containerd-shim-runc-v2",
            "docker",
            "runc",
            "unshare",
            "ip",
        ]
        .iter()
        .all(|p| {
            prerequisite(
                have(p),
                &format!("{p} is missing (apt-get install docker.io)"),
            )
        })
}

/// A private dockerd. Dropping it removes every container, stops dockerd (which stops its
/// containerd), kills any shim left, removes its cgroup parent and its directory.
pub struct Dockerd {
    dir: tempfile::TempDir,
    daemon: Option<Child>,
    cgroup_parent: String,
}

impl Dockerd {
    pub fn start() -> Dockerd {
        Dockerd::start_with("--bridge=none --iptables=false --ip6tables=false")
    }

    /// A private dockerd with its default bridge `docker0` and its iptables rules, inside its
    /// private network namespace (so both are that namespace's), without the userland proxy.
    pub fn start_with_bridge() -> Dockerd {
        Dockerd::start_with("--ip6tables=false")
    }

    /// A private dockerd with `network` flags (`--bridge`, `--iptables`, ...).
    pub fn start_with(network: &str) -> Dockerd {
        let dir = tempfile::Builder::new()
            .prefix("minidock-dockerd")
            .tempdir()
            .unwrap();
        let runtime = dir.path().join(minidock::runtime::cli::RUNC_NAME);
        let binary = assert_cmd::cargo::cargo_bin("minidock");
        std::os::unix::fs::symlink(&binary, &runtime).unwrap();
        let config = serde_json::json!({"runtimes": {"minidock": {"path": runtime}}});
        std::fs::write(dir.path().join("daemon.json"), config.to_string()).unwrap();
        let cgroup_parent = format!("minidock-dockerd-test-{}", std::process::id());
        let d = dir.path().display();
        let script = format!(
            "ip link set lo up && mount -t tmpfs -o mode=0755 tmpfs /run && \
             exec dockerd --config-file {d}/daemon.json --data-root {d}/data \
             --exec-root {d}/exec --pidfile {d}/dockerd.pid -H unix://{d}/docker.sock \
             {network} --userland-proxy=false \
             --storage-driver overlay2 --cgroup-parent {cgroup_parent} \
             > {d}/dockerd.log 2>&1"
        );
        let daemon = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut dockerd = Dockerd {
            dir,
            daemon: Some(daemon),
            cgroup_parent,
        };
        dockerd.wait_ready();
        dockerd
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("dockerd.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        for _ in 0..600 {
            if let Some(status) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("dockerd exited with {status}:\n{}", self.log());
            }
            if self.docker(&["version"]).status.success() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("dockerd never answered:\n{}", self.log());
    }

    pub fn docker_command(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.arg("-H")
            .arg(format!("unix://{}/docker.sock", self.path().display()))
            .stdin(Stdio::null());
        cmd
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_command().args(args).output().unwrap()
    }

    /// `docker ARGS`, which must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}\n{}\ndockerd log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Where containerd's shim keeps the runtime's state (its `--root`).
    pub fn runtime_root(&self) -> PathBuf {
        self.path().join("exec/runtime-runc/moby")
    }

    pub fn load_busybox(&self) {
        let rootfs = busybox_rootfs();
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(rootfs.path())
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = self
            .docker_command()
            .args(["import", "-", "busybox:latest"])
            .stdin(tar.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(
            tar.wait().unwrap().success(),
            "tar of the busybox rootfs failed"
        );
        assert!(out.status.success(), "docker import: {out:?}");
    }

    /// Kills what is left of this daemon's processes: they all name our temp dir.
    fn kill_leftovers(&self) {
        let needle = self.path().to_string_lossy().into_owned();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let ids = String::from_utf8_lossy(&self.docker(&["ps", "-aq"]).stdout).into_owned();
        for id in ids.lines() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        if let Some(mut daemon) = self.daemon.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(daemon.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = daemon.wait();
        }
        self.kill_leftovers();
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(hierarchy.path().join(&self.cgroup_parent));
        }
    }
}
