//! An unprivileged user made for one test, to run minidock rootless as a student without root
//! would: `useradd` with a home in a temp dir, a subordinate id range in `/etc/subuid` and
//! `/etc/subgid` (useradd's own, or one this helper writes under a lock), and commands run as
//! that user by `setpriv --reuid --regid --init-groups` with a clean environment
//! (`HOME`, `XDG_DATA_HOME`, `XDG_RUNTIME_DIR` inside the temp home). Dropping it kills every
//! process of the user and of its user namespaces, removes the cgroup it delegated, runs
//! `userdel`, and removes the lines it wrote.

use super::{prerequisite, text};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The lock every test takes around its edits of /etc/subuid and /etc/subgid.
const SUB_LOCK: &str = "/etc/subuid.minidock-test.lock";

/// A subordinate range, as a `(start, count)` pair.
pub type Range = (u32, u32);

pub struct RootlessUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The range in /etc/subuid and /etc/subgid; `None` for a user made without one.
    pub range: Option<Range>,
    home: tempfile::TempDir,
    /// Lines this helper appended to /etc/subuid and /etc/subgid (removed on drop).
    wrote: Option<String>,
    /// A delegated cgroup v2 directory (removed on drop) and the leaf the user's commands
    /// run in.
    delegated: Option<(PathBuf, PathBuf)>,
}

/// Skip unless root with `useradd`, `setpriv` and the `uidmap` helpers; under CI, fail.
pub fn require_rootless_tools() -> bool {
    super::require_root()
        && prerequisite(
            Path::new("/usr/bin/newuidmap").exists() && Path::new("/usr/bin/newgidmap").exists(),
            "newuidmap/newgidmap are missing (apt-get install uidmap)",
        )
        && prerequisite(
            super::have("setpriv", "--version") && super::have("useradd", "--help"),
            "setpriv and useradd are missing (util-linux, passwd)",
        )
}

impl RootlessUser {
    /// A fresh user with a subordinate id range. `None` (skip) when a prerequisite is missing.
    pub fn new() -> Option<RootlessUser> {
        RootlessUser::make(true)
    }

    /// A fresh user with no subordinate ids at all: minidock maps only its own id.
    pub fn without_range() -> Option<RootlessUser> {
        RootlessUser::make(false)
    }

    fn make(with_range: bool) -> Option<RootlessUser> {
        if !require_rootless_tools() {
            return None;
        }
        let home = tempfile::Builder::new()
            .prefix("minidock-rootless-home")
            .tempdir()
            .unwrap();
        fs::set_permissions(home.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let name = format!("mdrl{}", std::process::id() % 100_000 * 100 + next_serial());
        let _lock = sub_lock();
        let out = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/bin/sh", "--user-group"])
            .arg("--home-dir")
            .arg(home.path())
            .arg(&name)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            text(&out.stderr)
        );
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").arg(flag).arg(&name).output().unwrap();
            text(&out.stdout).trim().parse().unwrap()
        };
        let mut user = RootlessUser {
            uid: id("-u"),
            gid: id("-g"),
            name,
            range: None,
            home,
            wrote: None,
            delegated: None,
        };
        if with_range {
            user.range = Some(user.ensure_range());
        } else {
            user.remove_ranges();
        }
        for dir in ["", "run", "data"] {
            let path = user.home.path().join(dir);
            fs::create_dir_all(&path).unwrap();
            std::os::unix::fs::chown(&path, Some(user.uid), Some(user.gid)).unwrap();
        }
        fs::set_permissions(user.run_dir(), fs::Permissions::from_mode(0o700)).unwrap();
        Some(user)
    }

    /// The user's range from useradd's lines, or a new one appended past every range there.
    fn ensure_range(&mut self) -> Range {
        let subuid = fs::read_to_string("/etc/subuid").unwrap_or_default();
        let subgid = fs::read_to_string("/etc/subgid").unwrap_or_default();
        let mine = |text: &str| find_range(text, &self.name);
        if let (Some(uids), Some(gids)) = (mine(&subuid), mine(&subgid))
            && uids == gids
        {
            return uids;
        }
        self.remove_ranges();
        let end = |text: &str| {
            text.lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    let start: u64 = f.get(1)?.parse().ok()?;
                    let count: u64 = f.get(2)?.parse().ok()?;
                    Some(start + count)
                })
                .max()
                .unwrap_or(100_000)
        };
        let start = end(&subuid).max(end(&subgid)).max(100_000) as u32;
        let line = format!("{}:{start}:65536\n", self.name);
        for file in ["/etc/subuid", "/etc/subgid"] {
            let mut f = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .unwrap();
            f.write_all(line.as_bytes()).unwrap();
        }
        self.wrote = Some(line);
        (start, 65536)
    }

    /// Removes every line of this user from /etc/subuid and /etc/subgid.
    fn remove_ranges(&self) {
        for file in ["/etc/subuid", "/etc/subgid"] {
            let Ok(content) = fs::read_to_string(file) else {
                continue;
            };
            let prefix = format!("{}:", self.name);
            let kept: String = content
                .lines()
                .filter(|l| !l.starts_with(&prefix))
                .map(|l| format!("{l}\n"))
                .collect();
            if kept != content {
                let temp = format!("{file}.minidock-test-{}", std::process::id());
                fs::write(&temp, kept).unwrap();
                fs::set_permissions(&temp, fs::Permissions::from_mode(0o644)).unwrap();
                fs::rename(&temp, file).unwrap();
            }
        }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The busybox image as a `docker save` tar in the user's home, owned by the user (saved
    /// from a root-owned state root that is removed again).
    pub fn busybox_tar(&self) -> PathBuf {
        let root = super::minidock_root::Root::new(&[]);
        let tar = self.home().join("busybox.tar");
        root.ok(&["save", "-o", tar.to_str().unwrap(), "busybox"]);
        std::os::unix::fs::chown(&tar, Some(self.uid), None).unwrap();
        tar
    }

    /// Loads the busybox image into the user's own store ([`RootlessUser::busybox_tar`]).
    pub fn load_busybox(&self) {
        let tar = self.busybox_tar();
        self.ok(&["load", "-i", tar.to_str().unwrap()]);
    }

    /// `$XDG_DATA_HOME` of the user's commands.
    pub fn data_dir(&self) -> PathBuf {
        self.home().join("data")
    }

    /// `$XDG_RUNTIME_DIR` of the user's commands.
    pub fn run_dir(&self) -> PathBuf {
        self.home().join("run")
    }

    /// The holder process's pid, once a command has made it.
    pub fn holder_pid(&self) -> Option<i32> {
        let pid = fs::read_to_string(self.run_dir().join("minidock/holder.pid")).ok()?;
        pid.trim().parse().ok()
    }

    /// Gives the user a cgroup v2 subtree of its own, as systemd's `Delegate=yes` does for
    /// `user@UID.service`: a directory it owns (with its `cgroup.procs`, `cgroup.subtree_control`
    /// and `cgroup.threads`), the controllers enabled above it, and a leaf `cli` that every
    /// later command of the user starts in. `false` when this host is not pure cgroup v2.
    pub fn delegate_cgroup(&mut self) -> bool {
        let mount = Path::new("/sys/fs/cgroup");
        if super::cgroup_layout_name() != "v2" {
            return false;
        }
        let wanted = ["memory", "pids", "cpu"];
        let available = fs::read_to_string(mount.join("cgroup.controllers")).unwrap();
        for c in wanted {
            assert!(available.split_whitespace().any(|a| a == c), "no {c}");
            fs::write(mount.join("cgroup.subtree_control"), format!("+{c}")).unwrap();
        }
        let dir = mount.join(format!("minidock-test-{}", self.name));
        let leaf = dir.join("cli");
        fs::create_dir_all(&leaf).unwrap();
        for path in [
            dir.clone(),
            dir.join("cgroup.procs"),
            dir.join("cgroup.subtree_control"),
            dir.join("cgroup.threads"),
            leaf.clone(),
            leaf.join("cgroup.procs"),
            leaf.join("cgroup.threads"),
        ] {
            std::os::unix::fs::chown(&path, Some(self.uid), Some(self.gid)).unwrap();
        }
        self.delegated = Some((dir, leaf));
        true
    }

    /// The delegated cgroup directory, after [`RootlessUser::delegate_cgroup`].
    pub fn delegated_cgroup(&self) -> Option<&Path> {
        self.delegated.as_ref().map(|(dir, _)| dir.as_path())
    }

    /// `PROGRAM ARGS` as the user, with a clean environment whose `XDG_*` point into the temp
    /// home, in the home directory, stdin from /dev/null. In the delegated leaf when there is
    /// one.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new("setpriv");
        if let Some((_, leaf)) = &self.delegated {
            // The process enters the leaf (as root) before it drops to the user.
            cmd = Command::new("sh");
            cmd.arg("-c")
                .arg("echo $$ > \"$0\" && exec setpriv \"$@\"")
                .arg(leaf.join("cgroup.procs"));
        }
        cmd.args(["--reuid", &self.uid.to_string()])
            .args(["--regid", &self.gid.to_string()])
            .arg("--init-groups")
            .arg("env")
            .arg("-i")
            .arg(format!("HOME={}", self.home().display()))
            .arg(format!("USER={}", self.name))
            .arg(format!("LOGNAME={}", self.name))
            .arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .arg(format!("XDG_DATA_HOME={}", self.data_dir().display()))
            .arg(format!("XDG_RUNTIME_DIR={}", self.run_dir().display()))
            .arg("MINIDOCK_BRIDGE=none")
            .arg(program)
            .current_dir(self.home())
            .stdin(Stdio::null());
        cmd
    }

    /// `minidock ARGS` as the user.
    pub fn minidock(&self, args: &[&str]) -> Output {
        self.command(&minidock_bin()).args(args).output().unwrap()
    }

    /// `minidock ARGS` as the user, with the default bridge on (`MINIDOCK_BRIDGE` unset). A
    /// user namespace owns nothing of the host's network, so even a bridge minidock failed to
    /// refuse could not be made.
    pub fn minidock_with_bridge(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(Path::new("env"));
        cmd.arg("-u").arg("MINIDOCK_BRIDGE").arg(minidock_bin());
        cmd.args(args).output().unwrap()
    }

    /// `minidock ARGS` as the user, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        super::ok_stdout(args, &self.minidock(args))
    }

    /// Every process of this user, and every process in a user namespace its holder made.
    pub fn processes(&self) -> Vec<i32> {
        let holder_ns = self
            .holder_pid()
            .and_then(|pid| fs::read_link(format!("/proc/{pid}/ns/user")).ok());
        let mut found = Vec::new();
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next()?.parse::<u32>().ok());
            let ns = fs::read_link(format!("/proc/{pid}/ns/user")).ok();
            if uid == Some(self.uid) || (holder_ns.is_some() && ns == holder_ns) {
                found.push(pid);
            }
        }
        found
    }
}

/// The minidock binary under test, which the test user must be able to run.
fn minidock_bin() -> PathBuf {
    let bin = assert_cmd::cargo::cargo_bin("minidock");
    assert!(
        reachable_by_others(&bin),
        "{} is not readable and executable by other users: the test user cannot run it",
        bin.display()
    );
    bin
}

/// The `(start, count)` of `name`'s line in a subuid/subgid text.
fn find_range(text: &str, name: &str) -> Option<Range> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() != 3 || f[0] != name {
            return None;
        }
        Some((f[1].parse().ok()?, f[2].parse().ok()?))
    })
}

/// Whether every directory above `path` is searchable by others and `path` readable and
/// executable by them.
pub fn reachable_by_others(path: &Path) -> bool {
    let mode = |p: &Path| fs::metadata(p).map(|m| m.mode()).unwrap_or(0);
    path.ancestors().skip(1).all(|dir| mode(dir) & 0o001 != 0) && mode(path) & 0o005 == 0o005
}

/// The lock on [`SUB_LOCK`], held until the file is dropped (closing releases a flock).
fn sub_lock() -> std::fs::File {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(SUB_LOCK)
        .unwrap();
    // SAFETY: flock(2) on a descriptor this function owns.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {SUB_LOCK}");
    file
}

fn next_serial() -> u32 {
    static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    SERIAL.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 100
}

impl Drop for RootlessUser {
    fn drop(&mut self) {
        // Everything the user started, until nothing is left (a shim may fork while we kill).
        for _ in 0..50 {
            let pids = self.processes();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::SIGKILL,
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if let Some((dir, _)) = self.delegated.take() {
            remove_cgroup_tree(&dir);
        }
        let _lock = sub_lock();
        let _ = Command::new("userdel").arg(&self.name).output();
        if self.wrote.take().is_some() || self.range.is_some() {
            self.remove_ranges();
        }
    }
}

/// Removes a cgroup directory and its children, deepest first.
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}
