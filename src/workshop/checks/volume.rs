//! The check for the volume lesson (13): a host directory bind-mounted in the container's
//! mount namespace before pivot_root.
//!
//! It compares the file the command wrote with what the host directory holds, and reads the
//! command's whole mount namespace from the host (setns(2), mountinfo): the volume must be a
//! mount there, at the target inside the new root.

use super::{
    Need, OLD_ROOT_EXPECTED, OLD_ROOT_FROM_HOST, READY, Trace, descendants_in_other_mount_ns,
    failed_run, host_mounts_unchanged, line, never_ready, old_root_detached, rootfs_with_marker,
    run_observed, unmount_leftovers,
};
use crate::workshop::Observation;
use anyhow::{Context, Result};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);
/// Where the command sees the volume, and the file it writes there.
const TARGET: &str = "/data";
const FILE: &str = "WORKSHOP_VOLUME";
const WRITTEN: &str = "written inside the container";

const MOUNT_FROM_HOST: &str =
    "a mount of the volume in the new root, seen from the host (setns, mountinfo)";

pub fn lesson13_volume(bin: &Path) -> Result<Vec<Observation>> {
    super::require_root()?;
    let rootfs = rootfs_with_marker("inside the rootfs")?;
    let volume = tempfile::Builder::new()
        .prefix("minidock-workshop-volume")
        .tempdir()
        .context("creating the volume directory")?;
    let mounts_before = super::ns::mount_table()?;
    let script = format!(
        "echo '{WRITTEN}' > {TARGET}/{FILE} && echo wrote || echo write-failed; cat /WORKSHOP_ROOTFS 2>/dev/null || echo missing; echo {READY}; read x || true"
    );
    let volume_dir = volume.path().to_path_buf();
    let trace = Trace::new(bin, None)?;
    let (output, from_host) = run_observed(
        trace
            .command()
            .arg(rootfs.path())
            .arg(volume.path())
            .arg(TARGET)
            .args(["/bin/sh", "-c", &script]),
        LIMIT,
        READY,
        |pid| (volume_mounted(pid, &volume_dir), old_root_detached(pid)),
    )?;
    let mut leaked = unmount_leftovers(rootfs.path());
    leaked.extend(unmount_leftovers(volume.path()));
    let mounts_after = super::ns::mount_table()?;
    leaked.extend(
        mounts_after
            .iter()
            .filter(|m| !mounts_before.contains(m))
            .cloned(),
    );
    let mut observations = vec![
        host_mounts_unchanged(&leaked),
        trace.observe(&[
            Need::Namespace("CLONE_NEWNS"),
            Need::BindFrom(&volume.path().to_string_lossy()),
            Need::Call("pivot_root"),
        ]),
    ];
    if let Some(failed) = failed_run("the program runs /bin/sh with the volume", &output) {
        observations.push(failed.likely(
            "the program failed before the command ran: if a mount failed with ENOENT, the host path VOLUME no longer resolves after pivot_root (the host's tree is gone with the old root). Did you mount the volume after pivot_root?",
        ));
        return Ok(observations);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    observations.push(
        Observation::equal(
            "/WORKSHOP_ROOTFS read inside",
            "inside the rootfs",
            line(&stdout, 1),
        )
        .likely("the rootfs never became the command's /"),
    );
    observations.push(written_to_host(volume.path(), rootfs.path()));
    let (mounted, detached) = match from_host {
        Some(seen) => seen,
        None => (
            never_ready(MOUNT_FROM_HOST, &expected_mount()),
            never_ready(OLD_ROOT_FROM_HOST, OLD_ROOT_EXPECTED),
        ),
    };
    observations.push(mounted);
    observations.push(detached);
    Ok(observations)
}

fn expected_mount() -> String {
    format!("the host directory mounted at {TARGET}, inside the new root")
}

/// The file as the host sees it: in the volume directory, and not in the rootfs's own
/// directory under the mount.
fn written_to_host(volume: &Path, rootfs: &Path) -> Observation {
    let in_volume = std::fs::read_to_string(volume.join(FILE)).ok();
    let under = rootfs.join(TARGET.trim_start_matches('/')).join(FILE);
    let expected = format!("{WRITTEN:?} in the host directory, nothing under the mount");
    let actual = match (in_volume.as_deref().map(str::trim), under.exists()) {
        (Some(WRITTEN), false) => expected.clone(),
        (Some(WRITTEN), true) => format!(
            "{WRITTEN:?} in the host directory, and a copy in the rootfs at {}: the command wrote into the rootfs, not the volume",
            under.display()
        ),
        (Some(other), _) => format!("{other:?} in the host directory"),
        (None, _) => format!("no {FILE} in the host directory"),
    };
    let ok = actual == expected;
    Observation::judged(
        "the file the command wrote, read on the host",
        expected,
        actual,
        ok,
    )
    .likely("what the command wrote under the target did not land in the host directory (only): a volume is the host directory itself, mounted, not a copy")
}

/// Whether the namespace of the command holds a mount of `volume` at [`TARGET`]: a mount
/// whose device (mountinfo field 3) is the volume's and whose root (field 4) is the volume
/// directory within that filesystem, proc(5).
fn volume_mounted(pid: u32, volume: &Path) -> Observation {
    let expected = expected_mount();
    let verdict = || -> Result<(String, bool)> {
        let meta = std::fs::metadata(volume).context("reading the volume directory")?;
        let dev = format!(
            "{}:{}",
            nix::sys::stat::major(meta.dev()),
            nix::sys::stat::minor(meta.dev())
        );
        let volume = volume.to_string_lossy();
        let pids = descendants_in_other_mount_ns(pid);
        let command = pids
            .last()
            .context("no process in a new mount namespace (unshare(CLONE_NEWNS)?)")?;
        let mounts = crate::workshop::namespace_mountinfo(*command)?;
        let points: Vec<String> = mounts
            .lines()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .filter(|f| f.len() > 4 && f[2] == dev && f[3] != "/" && volume.ends_with(f[3]))
            .map(|f| f[4].to_owned())
            .collect();
        Ok(match points.as_slice() {
            [] => (
                format!(
                    "the host directory is not mounted (among {} mounts): what the command writes under {TARGET} stays in the rootfs",
                    mounts.lines().count()
                ),
                false,
            ),
            [point] if point == TARGET => (expected.clone(), true),
            _ => (format!("the host directory mounted at {points:?}"), false),
        })
    };
    match verdict() {
        Ok((actual, ok)) => Observation::judged(MOUNT_FROM_HOST, &expected, actual, ok).likely(
            "there is no mount of the volume at the target: copied files are a snapshot, not a volume, and what the container writes later stays in the rootfs. Bind-mount the host directory at ROOTFS + TARGET before pivot_root",
        ),
        Err(err) => Observation::judged(MOUNT_FROM_HOST, &expected, format!("{err:#}"), false),
    }
}
