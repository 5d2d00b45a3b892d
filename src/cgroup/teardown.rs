//! Removing a container's cgroups, child cgroups included.
//!
//! A container may make cgroups of its own below its cgroup (`mkdir
//! /sys/fs/cgroup/memory/x`), and start processes in them. The kernel refuses to rmdir a
//! cgroup that has children or processes (EBUSY), so teardown must reach the whole subtree:
//!
//! - **v2**: one write of `1` into `cgroup.kill` of the top directory SIGKILLs every process
//!   of the subtree, and the kernel makes sure none escapes by forking at that moment
//!   (Documentation/admin-guide/cgroup-v2.rst, "cgroup.kill", Linux 5.14).
//! - **v1**: no such file. Freeze the group (its `freezer` directory: a frozen task cannot
//!   fork), SIGKILL every task listed anywhere in each subtree, thaw so the signals are
//!   delivered, and repeat until the subtrees are empty.
//!
//! Then every directory is removed depth-first, children before parents.

use super::freezer::{self, FreezerState};
use super::{read_procs, remove_dir, write_file};
use crate::explain::{self, Chapter};
use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every directory of the subtree at `dir`, parents before children.
pub fn subtree(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(entries) = std::fs::read_dir(&out[i]) {
            let mut children: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect();
            children.sort();
            out.extend(children);
        }
        i += 1;
    }
    out
}

/// The processes anywhere in the subtrees at `dirs`.
fn procs_below(dirs: &[PathBuf]) -> Result<Vec<nix::unistd::Pid>> {
    let mut all = Vec::new();
    for dir in dirs.iter().filter(|d| d.exists()) {
        for cgroup in subtree(dir) {
            all.extend(read_procs(&cgroup)?);
        }
    }
    all.sort_unstable();
    all.dedup();
    Ok(all)
}

// ANCHOR: kill_all
/// Kills every process in the subtrees at `dirs` (the directories of one group: one per v1
/// hierarchy, or the v2 one) and waits until they are empty. Missing directories are fine.
pub fn kill_all(dirs: &[PathBuf]) -> Result<()> {
    if procs_below(dirs)?.is_empty() {
        return Ok(());
    }
    for dir in dirs.iter().filter(|d| d.join("cgroup.kill").exists()) {
        write_file(dir, "cgroup.kill", "1", "kill everything in the subtree")?;
    }
    let frozen: Vec<&PathBuf> = dirs
        .iter()
        .filter(|d| d.join("freezer.state").exists())
        .collect();
    for dir in &frozen {
        // A group whose tasks cannot freeze (stuck in the kernel) is still killed below.
        let _ = freezer::set_state(dir, FreezerState::Frozen);
    }
    let signalled = signal_all(dirs);
    for dir in &frozen {
        freezer::set_state(dir, FreezerState::Thawed)
            .with_context(|| format!("thawing {}", dir.display()))?;
    }
    signalled?;
    wait_empty(dirs)
}
// ANCHOR_END: kill_all

/// SIGKILL to every process listed in the subtrees (ESRCH: it died on its own meanwhile).
fn signal_all(dirs: &[PathBuf]) -> Result<()> {
    for pid in procs_below(dirs)? {
        let _ = kill(pid, Signal::SIGKILL);
    }
    Ok(())
}

/// Waits until the subtrees hold no process, killing again what appears (a fork that was
/// under way when the first signal came).
fn wait_empty(dirs: &[PathBuf]) -> Result<()> {
    for _ in 0..400 {
        if procs_below(dirs)?.is_empty() {
            return Ok(());
        }
        signal_all(dirs)?;
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!(
        "processes in {} survived 2 s of SIGKILL",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

// ANCHOR: remove_all
/// Kills what is in the subtrees at `dirs` and removes them, children first. Trying every
/// directory even when one fails; idempotent (missing directories are fine).
pub fn remove_all(dirs: &[PathBuf]) -> Result<()> {
    // Most of the time the container's processes are gone and it made no child cgroups: then
    // rmdir(2) alone succeeds. It fails (EBUSY) while a process or a child cgroup remains, and
    // leaves the directory as it was, so the whole teardown below takes over.
    let rest: Vec<PathBuf> = dirs
        .iter()
        .filter(|d| {
            explain::step(
                "remove the cgroup",
                || format!("rmdir({})", d.display()),
                Chapter::Cgroups,
            );
            match std::fs::remove_dir(d) {
                Ok(()) => false,
                Err(err) => err.kind() != std::io::ErrorKind::NotFound,
            }
        })
        .cloned()
        .collect();
    if rest.is_empty() {
        return Ok(());
    }
    let dirs = &rest[..];
    kill_all(dirs)?;
    let mut first_error = None;
    for dir in dirs.iter().filter(|d| d.exists()) {
        for cgroup in subtree(dir).iter().rev() {
            if let Err(err) = remove_dir(cgroup) {
                first_error.get_or_insert(err);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}
// ANCHOR_END: remove_all

// ANCHOR: remove_after_pid_namespace
/// Removes the subtrees at `dirs`, children first, killing nothing: what runc's `delete` does
/// for a container with a PID namespace of its own. Its processes all die with its init (the
/// kernel kills a PID namespace's members when its PID 1 dies), so this first waits for the
/// processes of `pid_ns` to leave ([`wait_pid_namespace_gone`]). A directory that stays busy
/// holds processes of another container that was placed in the same cgroup (a shared
/// `linux.cgroupsPath`): it is left in place, and returned.
pub fn remove_after_pid_namespace(dirs: &[PathBuf], pid_ns: Option<u64>) -> Result<Vec<PathBuf>> {
    wait_pid_namespace_gone(dirs, pid_ns)?;
    let mut left = Vec::new();
    for dir in dirs {
        // Most of the time the cgroup is empty and has no child: rmdir(2) alone does it.
        explain::step(
            "remove the cgroup",
            || format!("rmdir({})", dir.display()),
            Chapter::Cgroups,
        );
        match std::fs::remove_dir(dir) {
            Ok(()) => continue,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => {}
        }
        for cgroup in subtree(dir).iter().rev() {
            // Children first: a cgroup with processes, or with a child left, stays.
            if read_procs(cgroup)?.is_empty() && subtree(cgroup).len() == 1 {
                remove_dir(cgroup)?;
            } else if !left.contains(dir) {
                left.push(dir.clone());
            }
        }
    }
    Ok(left)
}
// ANCHOR_END: remove_after_pid_namespace

/// Waits up to 2 s until no process in the subtrees at `dirs` is in the PID namespace `pid_ns`
/// (the inode of `/proc/PID/ns/pid`; `None`: nothing to wait for, its init is long gone).
pub fn wait_pid_namespace_gone(dirs: &[PathBuf], pid_ns: Option<u64>) -> Result<()> {
    let Some(ns) = pid_ns else {
        return Ok(());
    };
    for _ in 0..400 {
        if !procs_below(dirs)?
            .iter()
            .any(|pid| pid_namespace(*pid) == Some(ns))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// The inode of the PID namespace `pid` is in, or `None` once it has exited.
pub fn pid_namespace(pid: nix::unistd::Pid) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|m| m.ino())
}

/// The directory at the same path as `dir` in the v1 `freezer` hierarchy (`memory/minidock/x`
/// gives `freezer/minidock/x`), where one exists: a single directory of a v1 group is then
/// still frozen while it is killed.
pub fn freezer_twin(dir: &Path) -> Option<PathBuf> {
    let hierarchies = super::layout::detect_hierarchies().ok()?;
    let freezer = hierarchies.iter().find(|h| h.has("freezer"))?;
    let own = hierarchies
        .iter()
        .filter(|h| dir.starts_with(&h.mount))
        .max_by_key(|h| h.mount.as_os_str().len())?;
    let twin = freezer.mount.join(dir.strip_prefix(&own.mount).ok()?);
    (twin != dir && twin != freezer.mount && twin.is_dir()).then_some(twin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subtree_lists_parents_before_children() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("c");
        std::fs::create_dir_all(top.join("x/y")).unwrap();
        std::fs::create_dir_all(top.join("a")).unwrap();
        let names: Vec<String> = subtree(&top)
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["c", "c/a", "c/x", "c/x/y"]);
        // Plain directories stand for cgroups with no process: removed depth-first.
        remove_all(std::slice::from_ref(&top)).unwrap();
        assert!(!top.exists());
        remove_all(&[top]).unwrap();
    }
}
