//! One check per lesson, grouped by mechanism. Each runs the learner's binary and reads the
//! kernel's own evidence; none trusts what the binary says about itself alone.

mod bundle;
mod caps;
mod cgroup;
mod container;
mod daemon;
mod net;
mod ns;
mod overlay;
mod registry;
mod run_step;
mod seccomp;
mod trace;
mod userns;
mod volume;

use super::Observation;
use anyhow::{Context, Result, bail};
pub use seccomp::mkdir_i386;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
pub(crate) use trace::{Need, SET_HOSTNAME, Trace};

type Check = fn(&Path) -> Result<Vec<Observation>>;

/// The table of checks, by lesson id. A lesson id in `lessons.toml` with no row here fails the
/// manifest test.
const CHECKS: &[(u32, Check)] = &[
    (1, ns::lesson01_uts),
    (2, ns::lesson02_pid),
    (3, ns::lesson03_pivot_root),
    (4, cgroup::lesson04_memory),
    (5, cgroup::lesson05_pids),
    (6, overlay::lesson06_copy_up),
    (7, overlay::lesson07_whiteouts),
    (8, net::lesson08_veth),
    (9, net::lesson09_bridge_publish),
    (10, container::lesson10_container),
    (11, container::lesson11_exec),
    (12, registry::lesson12_fetch_and_verify),
    (13, volume::lesson13_volume),
    (14, run_step::lesson14_run_step),
    (15, userns::lesson15_userns),
    (16, caps::lesson16_capabilities),
    (17, seccomp::lesson17_seccomp),
    (18, bundle::lesson18_bundle),
    (19, daemon::lesson19_daemon_client),
];

#[cfg(test)]
pub fn has_check(id: u32) -> bool {
    CHECKS.iter().any(|(lesson, _)| *lesson == id)
}

pub fn run(id: u32, bin: &Path) -> Result<Vec<Observation>> {
    match CHECKS.iter().find(|(lesson, _)| *lesson == id) {
        Some((_, check)) => check(bin),
        None => bail!("lesson {id} has no check"),
    }
}

/// Runs a learner's program with captured output, killing it after `limit`: a half-finished
/// lesson may well hang (waiting on a pipe, a child that never exits), and the checker must
/// still report.
pub(crate) fn run_captured(cmd: &mut Command, limit: Duration) -> Result<Output> {
    run_observed(cmd, limit, "", |_| ()).map(|(output, _)| output)
}

/// The line a lesson's command prints when it has done its work and waits on its stdin, so the
/// checker can look at the live process from the host ([`run_observed`]).
pub(crate) const READY: &str = "WORKSHOP_READY";

/// Runs a learner's program as [`run_captured`] does, with stdin a pipe. When the program
/// prints the line [`READY`], `observe` is called with its pid while it is still alive (the
/// command then waits for its stdin to close); then stdin is closed and the run completes.
/// `observe` is not called when the program exits without printing it, nor when `ready` is
/// empty (stdin is closed at once then). RUST_BACKTRACE is removed from the program's
/// environment: a failed run is reported by its error's last line, not a backtrace's.
pub(crate) fn run_observed<T>(
    cmd: &mut Command,
    limit: Duration,
    ready: &str,
    observe: impl FnOnce(u32) -> T,
) -> Result<(Output, Option<T>)> {
    let mut child = cmd
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let stdin = child.stdin.take();
    let (lines_rx, stdout) = read_lines(child.stdout.take().expect("piped stdout"));
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let stderr = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = err_pipe.read_to_end(&mut bytes);
        bytes
    });
    let deadline = Instant::now() + limit;
    let seen = !ready.is_empty() && wait_for_line(&lines_rx, ready, deadline);
    let observed = seen.then(|| observe(child.id()));
    drop(stdin);
    let status = wait_until(&mut child, deadline).with_context(|| {
        format!(
            "{:?} did not finish within {}s",
            cmd.get_program(),
            limit.as_secs()
        )
    })?;
    let output = Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    Ok((output, observed))
}

/// Reads a pipe to its end in a thread, which returns every byte; each line is also sent, as
/// it arrives, to the receiver.
fn read_lines(
    pipe: std::process::ChildStdout,
) -> (
    std::sync::mpsc::Receiver<String>,
    std::thread::JoinHandle<Vec<u8>>,
) {
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let mut pipe = std::io::BufReader::new(pipe);
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        loop {
            let start = bytes.len();
            match std::io::BufRead::read_until(&mut pipe, b'\n', &mut bytes) {
                Ok(0) | Err(_) => break bytes,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&bytes[start..]).trim().to_owned();
                    let _ = lines_tx.send(line);
                }
            }
        }
    });
    (lines_rx, reader)
}

/// True once `ready` arrives; false when the output ends or the deadline passes first.
fn wait_for_line(
    lines: &std::sync::mpsc::Receiver<String>,
    ready: &str,
    deadline: Instant,
) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line == ready => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
}

/// Waits for the child until `deadline`; kills it then, and fails.
fn wait_until(
    child: &mut std::process::Child,
    deadline: Instant,
) -> Result<std::process::ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().context("waiting for the lesson program")? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            // The program's own children too: a traced program is strace's child.
            for pid in descendants(child.id()).into_iter().rev() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill();
            let _ = child.wait();
            bail!("killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The processes descended from `pid` (itself included) whose mount namespace differs from
/// the checker's: where a learner's program put its command.
pub(crate) fn descendants_in_other_mount_ns(pid: u32) -> Vec<u32> {
    let own = std::fs::read_link("/proc/self/ns/mnt").ok();
    descendants(pid)
        .into_iter()
        .filter(|p| std::fs::read_link(format!("/proc/{p}/ns/mnt")).ok() != own)
        .collect()
}

/// `pid` and every process descended from it, parents before children: while a lesson's
/// command waits on its stdin, the last one is the command itself.
pub(crate) fn descendants(pid: u32) -> Vec<u32> {
    let mut family = vec![pid];
    let mut i = 0;
    while i < family.len() {
        let parent = family[i];
        let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .unwrap_or_default();
        family.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
        i += 1;
    }
    family
}

/// The old root as a mount of the checker's own: `(major:minor, root)` of the mount at `/`
/// (fields 3 and 4 of mountinfo, proc(5)). A mount namespace that still holds a mount of the
/// same filesystem and root has not detached the host's root.
pub(crate) fn host_root_mount() -> Result<(String, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
    text.lines()
        .rev()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f.len() > 4 && f[4] == "/")
        .map(|f| (f[2].to_owned(), f[3].to_owned()))
        .context("no mount at / in /proc/self/mountinfo")
}

pub(crate) const OLD_ROOT_FROM_HOST: &str =
    "the command's mount namespace, seen from the host (setns, mountinfo)";
pub(crate) const OLD_ROOT_EXPECTED: &str =
    "the host's / is not in it (pivot_root, then umount2 of the old root)";

/// The failed observation of a check that looks at the live command from the host when the
/// command never got there: it never printed [`READY`] (the program printed the expected
/// lines itself, or ran nothing that waits).
pub(crate) fn never_ready(what: &str, expected: &str) -> Observation {
    Observation::judged(
        what,
        expected,
        format!(
            "nothing to look at: the command never printed {READY} and waited, so the checker's command did not run as asked (was the output printed by the program itself?)"
        ),
        false,
    )
    .likely(PRINTED_ITSELF)
}

/// The misunderstanding behind a command the checker never found running.
pub(crate) const PRINTED_ITSELF: &str = "the lines came from your program, not from the command: did your program print the expected output itself instead of running the command it was given (exec) in the new namespaces?";

/// The misunderstanding behind an old root still mounted in the command's namespace.
pub(crate) const OLD_ROOT_STILL_THERE: &str = "the old root is still mounted in your namespace: did you chroot instead of pivot_root, or forget to detach the old root after the pivot?";

/// What a process's own mount namespace holds beyond its root: checked from the host, where a
/// `chroot` cannot hide the old root. `pid` is the learner's program; each of its descendants
/// in a mount namespace of its own is looked at. Mount points listed are whole-namespace.
pub(crate) fn old_root_detached(pid: u32) -> Observation {
    let what = OLD_ROOT_FROM_HOST;
    let expected = OLD_ROOT_EXPECTED;
    let verdict = || -> Result<(String, bool)> {
        let (dev, root) = host_root_mount()?;
        let pids = descendants_in_other_mount_ns(pid);
        anyhow::ensure!(
            !pids.is_empty(),
            "no process in a new mount namespace (unshare(CLONE_NEWNS)?)"
        );
        for p in pids {
            let mounts = crate::workshop::namespace_mountinfo(p)?;
            let old: Vec<&str> = mounts
                .lines()
                .map(|l| l.split(' ').collect::<Vec<_>>())
                .filter(|f| f.len() > 4 && f[2] == dev && f[3] == root)
                .map(|f| f[4])
                .collect();
            if !old.is_empty() {
                let count = mounts.lines().count();
                return Ok((
                    format!(
                        "the host's / is still mounted at {old:?} among {count} mounts: a chroot hides it from the process, but it is still there"
                    ),
                    false,
                ));
            }
        }
        Ok((expected.to_owned(), true))
    };
    match verdict() {
        Ok((actual, ok)) => {
            Observation::judged(what, expected, actual, ok).likely(OLD_ROOT_STILL_THERE)
        }
        Err(err) => Observation::judged(what, expected, format!("{err:#}"), false).likely(
            "the command shares the host's mount namespace: without a mount namespace of its own, every mount and the new root would be the host's",
        ),
    }
}

/// The lines a program printed, or a one-line summary of how it failed, for an observation.
pub(crate) fn describe_failure(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or("").trim();
    format!("the program exited with {} ({last})", output.status)
}

/// Skips the checks with one clear line when not root: every lesson creates namespaces.
pub(crate) fn require_root() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the workshop checks need root (namespaces, mounts, cgroups): run with sudo");
    }
    Ok(())
}

/// Line `n` of a program's output, trimmed, or "(nothing)" when it printed less.
pub(crate) fn line(stdout: &str, n: usize) -> String {
    stdout
        .lines()
        .nth(n)
        .unwrap_or("(nothing)")
        .trim()
        .to_owned()
}

/// A busybox rootfs in a temp dir (made by `scripts/busybox-rootfs`), holding a file
/// `/WORKSHOP_ROOTFS` with `marker` in it: only a process whose root is this rootfs reads it.
pub(crate) fn rootfs_with_marker(marker: &str) -> Result<tempfile::TempDir> {
    let rootfs = tempfile::Builder::new()
        .prefix("minidock-workshop-rootfs")
        .tempdir()
        .context("creating a temp dir")?;
    let script = super::lessons_dir()
        .parent()
        .map(|repo| repo.join("scripts/busybox-rootfs"))
        .context("locating scripts/busybox-rootfs")?;
    let status = Command::new(&script)
        .arg(rootfs.path())
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    anyhow::ensure!(status.success(), "{} failed", script.display());
    std::fs::write(rootfs.path().join("WORKSHOP_ROOTFS"), format!("{marker}\n"))
        .context("writing the rootfs marker")?;
    Ok(rootfs)
}

/// Mounts under `dir` that leaked to the host (a learner who forgot to make / private):
/// detach them so nothing stays behind, and return them for the report.
pub(crate) fn unmount_leftovers(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    let leaked: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_owned)
        .collect();
    for mount in leaked.iter().rev() {
        let _ = nix::mount::umount2(mount.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
    leaked
}

/// The observation every check that mounts makes first: nothing leaked to the host's mount
/// table (`leaked` lists what had, already detached by the caller).
pub(crate) fn host_mounts_unchanged(leaked: &[String]) -> Observation {
    Observation::judged(
        "the host's mount table is unchanged",
        "no new mounts on the host",
        if leaked.is_empty() {
            "no new mounts on the host".to_owned()
        } else {
            format!("leaked to the host (now removed): {leaked:?}; make / private first")
        },
        leaked.is_empty(),
    )
    .likely(
        "your mounts propagated to the host: a new mount namespace keeps the host's shared propagation, so did you forget to make every mount in it private (recursively) before mounting?",
    )
}

/// A failed observation when the learner's program did not exit 0 (`what` says what it was
/// asked to do), or None when it did and its output can be checked.
pub(crate) fn failed_run(what: &str, output: &Output) -> Option<Observation> {
    (!output.status.success())
        .then(|| Observation::judged(what, "exit status 0", describe_failure(output), false))
}
