//! The freezer: stop every process of a cgroup at once, and let them go again.
//!
//! `docker pause`, `runc pause` and a safe teardown all need it. A frozen process does not
//! run, so it cannot fork while we kill its siblings one by one, and it does not notice that
//! it was stopped (unlike SIGSTOP, which its parent can see with waitpid and which a process
//! can be sent again and again).
//!
//! - v1 (Documentation/admin-guide/cgroup-v1/freezer-subsystem.rst): write `FROZEN` or
//!   `THAWED` into `freezer.state` of the group's directory in the `freezer` hierarchy. The
//!   file reads `FREEZING` until every task has stopped.
//! - v2 (Documentation/admin-guide/cgroup-v2.rst, "Core Interface Files"): write `1` or `0`
//!   into `cgroup.freeze`; `cgroup.events` says `frozen 1` once the whole subtree is stopped.

use super::{read_keyed, read_optional, write_file};
use anyhow::{Result, bail};
use std::path::Path;
use std::time::Duration;

/// Frozen or not, as `runc pause` and `runc resume` set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezerState {
    Frozen,
    Thawed,
}

// ANCHOR: set_state
/// Freezes or thaws the cgroup directory `dir` and waits (up to 2 s) until the kernel says it
/// is done. `dir` is the group's v2 directory, or its directory in the v1 `freezer` hierarchy;
/// which one is told by the files it has. Errors: no freezer file in `dir`, a write the kernel
/// refuses, or tasks that never stop (a task in uninterruptible sleep on a hung device).
pub fn set_state(dir: &Path, state: FreezerState) -> Result<()> {
    let frozen = state == FreezerState::Frozen;
    let done = || -> Result<bool> {
        if dir.join("cgroup.freeze").exists() {
            let events = read_keyed(dir, "cgroup.events", "frozen")?;
            Ok(events == Some(u64::from(frozen)))
        } else {
            let text = read_optional(dir, "freezer.state")?.unwrap_or_default();
            Ok(text.trim() == if frozen { "FROZEN" } else { "THAWED" })
        }
    };
    if dir.join("cgroup.freeze").exists() {
        let what = if frozen {
            "freeze the cgroup"
        } else {
            "thaw the cgroup"
        };
        write_file(dir, "cgroup.freeze", if frozen { "1" } else { "0" }, what)?;
    } else if dir.join("freezer.state").exists() {
        let (value, what) = if frozen {
            ("FROZEN", "freeze the cgroup")
        } else {
            ("THAWED", "thaw the cgroup")
        };
        write_file(dir, "freezer.state", value, what)?;
    } else {
        bail!(
            "{} has no freezer (neither cgroup.freeze nor freezer.state)",
            dir.display()
        );
    }
    for _ in 0..400 {
        if done()? {
            return Ok(());
        }
        // v1 only moves from FREEZING to FROZEN when asked again (freezer-subsystem.rst).
        if frozen && dir.join("freezer.state").exists() {
            write_file(dir, "freezer.state", "FROZEN", "freeze the cgroup")?;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!(
        "the processes in {} did not {} within 2 s",
        dir.display(),
        if frozen { "freeze" } else { "thaw" }
    )
}
// ANCHOR_END: set_state

/// Whether the cgroup directory `dir` is frozen now; `None` where it has no freezer.
pub fn state(dir: &Path) -> Result<Option<FreezerState>> {
    if dir.join("cgroup.freeze").exists() {
        let frozen = read_optional(dir, "cgroup.freeze")?.unwrap_or_default();
        return Ok(Some(if frozen.trim() == "1" {
            FreezerState::Frozen
        } else {
            FreezerState::Thawed
        }));
    }
    Ok(read_optional(dir, "freezer.state")?.map(|text| {
        if text.trim() == "THAWED" {
            FreezerState::Thawed
        } else {
            FreezerState::Frozen
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_files_are_told_apart() {
        let v1 = tempfile::tempdir().unwrap();
        std::fs::write(v1.path().join("freezer.state"), "THAWED\n").unwrap();
        assert_eq!(state(v1.path()).unwrap(), Some(FreezerState::Thawed));
        // A plain file takes the write and reads it back, as the kernel's does once frozen.
        set_state(v1.path(), FreezerState::Frozen).unwrap();
        assert_eq!(state(v1.path()).unwrap(), Some(FreezerState::Frozen));

        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.freeze"), "0\n").unwrap();
        std::fs::write(v2.path().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        assert_eq!(state(v2.path()).unwrap(), Some(FreezerState::Thawed));
        // The fake's cgroup.events never says frozen: the wait must give up with an error.
        let err = set_state(v2.path(), FreezerState::Frozen).unwrap_err();
        assert!(err.to_string().contains("did not freeze"), "{err:#}");

        let none = tempfile::tempdir().unwrap();
        assert_eq!(state(none.path()).unwrap(), None);
        assert!(set_state(none.path(), FreezerState::Frozen).is_err());
    }
}
