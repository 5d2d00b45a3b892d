//! The check for the OCI bundle lesson (18): a config.json that makes `minidock runtime run`
//! do what `docker run -i --hostname bundle-box --read-only -m 32m busybox sh -c ...` does.
//!
//! The checker runs the bundle with `minidock runtime run` and looks at the container's
//! process from the host: its UTS namespace and hostname (setns(2), uname(2)), its root mount
//! (mountinfo, proc(5)), and its memory cgroup's limit files.

use super::{READY, descendants, line, never_ready, run_observed, unmount_leftovers};
use crate::workshop::Observation;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const HOSTNAME: &str = "bundle-box";
/// -m 32m, in bytes; memory+swap is twice that when only -m is given.
const MEMORY: u64 = 32 << 20;

const WHAT_UTS: &str = "the container's UTS namespace and hostname, seen from the host";
const WHAT_ROOT: &str = "the container's / in its mount namespace (mountinfo options)";
const WHAT_MEMORY: &str = "its memory cgroup's limit, read from the cgroup files";
const WHAT_SWAP: &str = "its memory cgroup's memory+swap limit";

pub fn lesson18_bundle(bin: &Path) -> Result<Vec<Observation>> {
    super::require_root()?;
    let bundle = tempfile::Builder::new()
        .prefix("minidock-workshop-bundle")
        .tempdir()
        .context("creating the bundle directory")?;
    busybox_rootfs(&bundle.path().join("rootfs"))?;
    let written = super::run_captured(Command::new(bin).arg(bundle.path()), LIMIT)?;
    if let Some(failed) = super::failed_run("the program writes BUNDLE/config.json", &written) {
        return Ok(vec![failed.likely(
            "the program failed before config.json was written whole: its error is on the line above",
        )]);
    }
    let state = bundle.path().join("state");
    let id = format!("workshop-bundle-{}", std::process::id());
    let before = nix::unistd::gethostname().context("gethostname")?;
    let runtime = || {
        let mut cmd = Command::new(minidock()?);
        cmd.arg("runtime").arg("--root").arg(&state);
        anyhow::Ok(cmd)
    };
    let result = run_observed(
        runtime()?
            .args(["run", "--bundle"])
            .arg(bundle.path())
            .arg(&id),
        LIMIT,
        READY,
        |pid| observe(*descendants(pid).last().unwrap_or(&pid)),
    );
    // Whatever happened: no container, no cgroup, no mount, no renamed host left behind.
    let _ = runtime()?.args(["delete", "--force", &id]).output();
    unmount_leftovers(bundle.path());
    let after = nix::unistd::gethostname().context("gethostname")?;
    if after != before {
        nix::unistd::sethostname(&before).context("restoring the hostname")?;
    }
    let (output, seen) = result?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut observations = vec![
        Observation::judged(
            "the host's hostname",
            format!("unchanged ({before:?})"),
            if after == before {
                format!("unchanged ({before:?})")
            } else {
                format!("renamed to {after:?}: the hostname was set outside a new UTS namespace")
            },
            after == before,
        )
        .likely(NO_UTS),
    ];
    if !output.status.success() && seen.is_none() {
        observations.push(
            super::failed_run("minidock runtime run --bundle BUNDLE", &output)
                .map(|failed| failed.likely(refused_likely(&output)))
                .unwrap_or_else(|| never_ready(WHAT_UTS, HOSTNAME)),
        );
        return Ok(observations);
    }
    observations.push(
        Observation::equal("hostname inside", HOSTNAME, line(&stdout, 0)).likely(
            "the container kept another name: \"hostname\" in config.json is what --hostname sets",
        ),
    );
    observations.push(
        Observation::equal(
            "touch /written inside",
            "touch: /written: Read-only file system",
            line(&stdout, 1),
        )
        .likely(WRITABLE_ROOT),
    );
    match seen {
        Some(seen) => observations.extend(seen),
        None => {
            for what in [WHAT_UTS, WHAT_ROOT, WHAT_MEMORY] {
                observations.push(never_ready(what, "read from the live container"));
            }
        }
    }
    Ok(observations)
}

/// The misunderstanding behind a hostname without a UTS namespace of the container's.
const NO_UTS: &str = "a hostname needs a UTS namespace of its own: without {\"type\": \"uts\"} in linux.namespaces, sethostname would rename the host, and the runtime refuses (as runc does)";

/// The misunderstanding behind a root the container can write to.
const WRITABLE_ROOT: &str =
    "the root stays writable unless root.readonly is true: that field is what --read-only sets";

/// What a bundle the runtime refused most likely got wrong, from the runtime's error.
fn refused_likely(output: &std::process::Output) -> &'static str {
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("UTS namespace") {
        NO_UTS
    } else if stderr.contains("config.json") {
        "the runtime refused config.json: the field its error names has another name, shape or value than the runtime-spec asks for"
    } else {
        "the runtime refused the bundle: its error is on the line above"
    }
}

/// The `minidock` binary beside the running `workshop`.
pub(super) fn minidock() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the workshop binary")?;
    let path = exe.with_file_name("minidock");
    anyhow::ensure!(
        path.is_file(),
        "no minidock binary at {}: build it",
        path.display()
    );
    Ok(path)
}

/// A busybox root filesystem at `dir`, made by `scripts/busybox-rootfs`.
pub(super) fn busybox_rootfs(dir: &Path) -> Result<()> {
    let script = crate::workshop::lessons_dir()
        .parent()
        .map(|repo| repo.join("scripts/busybox-rootfs"))
        .context("locating scripts/busybox-rootfs")?;
    let status = Command::new(&script)
        .arg(dir)
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    anyhow::ensure!(status.success(), "{} failed", script.display());
    Ok(())
}

/// The observations made on the live container process `pid` from the host.
fn observe(pid: u32) -> Vec<Observation> {
    let (limit, swap) = memory(pid);
    vec![uts(pid), root_readonly(pid), limit, swap]
}

fn uts(pid: u32) -> Observation {
    let own = std::fs::read_link("/proc/self/ns/uts").ok();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/uts")).ok();
    let expected = format!("a UTS namespace of its own, hostname {HOSTNAME:?}");
    let actual = match crate::workshop::namespace_hostname(pid) {
        Ok(name) if theirs.is_some() && theirs != own => {
            format!("a UTS namespace of its own, hostname {name:?}")
        }
        Ok(name) => {
            format!("the host's UTS namespace (hostname {name:?}): add a \"uts\" namespace")
        }
        Err(err) => format!("{err:#}"),
    };
    let ok = actual == expected;
    let likely = if theirs.is_some() && theirs != own {
        "the container's UTS namespace has another name: \"hostname\" in config.json is what --hostname sets"
    } else {
        "the container runs in the host's UTS namespace: a name of its own needs {\"type\": \"uts\"} in linux.namespaces (a hostname set in the host's would rename the host)"
    };
    Observation::judged(WHAT_UTS, expected, actual, ok).likely(likely)
}

/// The options (mountinfo field 6) of the topmost mount at `/` in the container's namespace.
fn root_readonly(pid: u32) -> Observation {
    let expected = "mounted ro";
    let actual = match crate::workshop::namespace_mountinfo(pid) {
        Ok(text) => match text
            .lines()
            .rev()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .find(|f| f.len() > 5 && f[4] == "/")
        {
            Some(f) if f[5].split(',').any(|o| o == "ro") => expected.to_owned(),
            Some(f) => format!("mounted {}: root.readonly is what --read-only sets", f[5]),
            None => "no mount at /".to_owned(),
        },
        Err(err) => format!("{err:#}"),
    };
    let ok = actual == expected;
    Observation::judged(WHAT_ROOT, expected, actual, ok).likely(WRITABLE_ROOT)
}

/// The memory and memory+swap limits of the cgroup `pid` is in (`/proc/PID/cgroup`): v1's
/// `memory.limit_in_bytes` and `memory.memsw.limit_in_bytes`, or v2's `memory.max` and
/// `memory.swap.max` (swap alone there), as bytes.
fn memory(pid: u32) -> (Observation, Observation) {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let v1 = cgroups
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_owned()));
    let read = |path: PathBuf| {
        std::fs::read_to_string(&path)
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| format!("(no {})", path.display()))
    };
    let (limit, swap, swap_expected) = match v1 {
        Some(path) => {
            let dir = Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'));
            let swap = read(dir.join("memory.memsw.limit_in_bytes"));
            (read(dir.join("memory.limit_in_bytes")), swap, 2 * MEMORY)
        }
        None => {
            let path = cgroups
                .lines()
                .find_map(|l| l.strip_prefix("0::"))
                .unwrap_or("/");
            let dir = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
            (
                read(dir.join("memory.max")),
                read(dir.join("memory.swap.max")),
                MEMORY,
            )
        }
    };
    (
        Observation::equal(WHAT_MEMORY, MEMORY.to_string(), limit).likely(
            "the memory cgroup has no 32 MiB limit: linux.resources.memory.limit, in bytes, is what -m sets",
        ),
        Observation::equal(WHAT_SWAP, swap_expected.to_string(), swap).likely(
            "the memory+swap limit is not twice the limit: linux.resources.memory.swap is memory+swap, and Docker sets it to twice -m when -m is given alone",
        ),
    )
}
