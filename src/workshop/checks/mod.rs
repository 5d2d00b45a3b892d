//! One check per lesson, grouped by mechanism. Each runs the learner's binary and reads the
//! kernel's own evidence; none trusts what the binary says about itself alone.

mod cgroup;
mod container;
mod net;
mod ns;
mod overlay;
mod registry;

use super::Observation;
use anyhow::{Context, Result, bail};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for the lesson program")? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{:?} did not finish within {}s (killed)",
                cmd.get_program(),
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
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
}

/// A failed observation when the learner's program did not exit 0 (`what` says what it was
/// asked to do), or None when it did and its output can be checked.
pub(crate) fn failed_run(what: &str, output: &Output) -> Option<Observation> {
    (!output.status.success())
        .then(|| Observation::judged(what, "exit status 0", describe_failure(output), false))
}
