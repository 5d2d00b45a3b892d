//! Crash recovery: what a command does when it finds a container whose supervisor is gone.
//!
//! A container's supervisor (the detached shim, or the foreground `minidock run`) is the only
//! process that records how the container ended, unmounts its rootfs and, with `--rm`, removes
//! it. If the supervisor is killed, nobody would. So every command that lists or resolves
//! containers ([`super::Paths::list`]) first checks each container's recorded supervisor
//! against the kernel (pid and start time, as [`ContainerState::supervisor_alive`] does) and
//! finishes its work, as containerd does when a shim dies (it kills the task and publishes
//! exit status 137, 128 + SIGKILL):
//!
//! - **running, supervisor dead**: whatever is left in the container's cgroups is killed, the
//!   cgroups, the network pin and the overlay mount go, and the exit is recorded as 137;
//! - **being created, creator dead** (`create` was killed, or hit a full disk): the container
//!   was never handed to the user, so it is removed entirely;
//! - **created or exited, supervisor dead while starting it**: whatever the start left in its
//!   cgroups is killed and its cgroups go; its status stays;
//! - **`--rm`, supervisor dead**: removed entirely, as Docker's daemon removes it;
//! - **a directory without `state.json`** (a `create` that failed before its first write, an
//!   `rm` killed half way): removed.
//!
//! Every decision is made again under [`super::Paths::lock`], after reading `state.json`
//! afresh, so a supervisor that records its exit meanwhile wins and two commands recovering at
//! once do the work once.

use super::state::{ContainerState, Status};
use super::{Paths, remove_files};
use crate::explain::{self, Chapter};
use anyhow::Result;
use std::time::Duration;

/// The exit code containerd records for a container whose shim died: 128 + SIGKILL.
pub const SHIM_DIED_EXIT_CODE: i32 = 137;

/// What recovery does with one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing: its supervisor is alive, or it has none and needs none.
    Keep,
    /// Kill what is left, release its cgroups and mounts, record exit code 137.
    RecordKilled,
    /// Kill what a start left in its cgroups and release them; its status stays.
    Release,
    /// Remove it entirely (`--rm`, or a `create` that never finished).
    Remove,
}

// ANCHOR: decide
/// What recovery does with a container in this state, checking its supervisor in the kernel.
pub fn decide(state: &ContainerState) -> Action {
    let owned = state.supervisor_pid > 0;
    if owned && state.supervisor_alive() {
        return Action::Keep;
    }
    match state.status {
        _ if state.creating || state.build_step => Action::Remove,
        Status::Running | Status::Dead if state.config.auto_remove => Action::Remove,
        Status::Running | Status::Dead => Action::RecordKilled,
        Status::Created | Status::Exited if owned && state.config.auto_remove => Action::Remove,
        Status::Created | Status::Exited if owned => Action::Release,
        Status::Created | Status::Exited => Action::Keep,
    }
}
// ANCHOR_END: decide

/// Recovers every container in `containers/` that needs it (see the module docs). Errors on
/// one container do not stop the others; the first one is returned.
pub fn recover_all(paths: &Paths) -> Result<()> {
    recover_each(paths).0.map_or(Ok(()), Err)
}

/// [`recover_all`] for commands that only read: a container that cannot be recovered (a
/// process that does not die, a busy mount) must not hide the others, so the error is
/// printed as a warning and the command goes on.
pub fn recover_all_or_warn(paths: &Paths) {
    let _ = recover_all_or_warn_read(paths);
}

/// [`recover_all_or_warn`], giving back the states it read when none needed recovery nor
/// changed while it looked (what listing them afresh would read); `None` when they must be
/// read again.
pub(crate) fn recover_all_or_warn_read(paths: &Paths) -> Option<Vec<ContainerState>> {
    let (error, states) = recover_each(paths);
    if let Some(err) = error {
        eprintln!(
            "minidock: warning: {}",
            crate::cli::one_line(&format!("{err:#}"))
        );
    }
    states
}

/// Recovers every container that needs it: the first error, and the states read when every
/// one was kept as it was read.
fn recover_each(paths: &Paths) -> (Option<anyhow::Error>, Option<Vec<ContainerState>>) {
    let dir = paths.containers();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (None, Some(Vec::new())),
        // Nothing to recover from a directory that cannot be read: the command's own listing
        // meets the same error and reports it, once.
        Err(_) => return (None, None),
    };
    let (mut first_error, mut kept) = (None, Some(Vec::new()));
    for entry in entries.flatten() {
        let id = entry.file_name().to_string_lossy().into_owned();
        if id.starts_with('.') {
            kept = None;
            continue;
        }
        let needed = match ContainerState::load(paths, &id) {
            Ok(Some(state)) => {
                let needed = settle(paths, &state) || decide(&state) != Action::Keep;
                match kept.as_mut() {
                    Some(list) if !needed => list.push(state),
                    _ => kept = None,
                }
                needed
            }
            Ok(None) => true,
            // A damaged state.json is shown by the commands that read it; not ours to remove.
            Err(_) => false,
        };
        if needed {
            kept = None;
            if let Err(err) = recover(paths, &id) {
                first_error.get_or_insert(err.context(format!("recovering container {id}")));
            }
        }
    }
    (first_error, kept)
}

/// A container whose process just ended while its supervisor lives: the supervisor is about to
/// record the exit, so wait for that (bounded) rather than show `Up` for a process that is gone.
/// Whether it had to wait. A container waiting to restart has its exit recorded already
/// (`restarting`): it is shown as it is, at once.
fn settle(paths: &Paths, state: &ContainerState) -> bool {
    if !exit_unrecorded(state) {
        return false;
    }
    explain::trace!(PuttingTogether: "its process is gone: wait for its supervisor to record it"
        => "read(\"{}/state.json\") until the exit is in it", super::short_id(&state.id));
    super::wait_until(Duration::from_secs(2), || {
        ContainerState::load(paths, &state.id)
            .ok()
            .flatten()
            .is_none_or(|s| !exit_unrecorded(&s))
    });
    true
}

/// Recorded running, its process gone, its supervisor alive and not (yet) waiting to restart
/// it: the exit is on its way to `state.json`.
fn exit_unrecorded(state: &ContainerState) -> bool {
    state.status == Status::Running
        && !state.restarting
        && !state.process_alive()
        && state.supervisor_alive()
}

// ANCHOR: recover
/// Recovers container `id` under the containers lock, deciding again on a fresh read.
pub fn recover(paths: &Paths, id: &str) -> Result<()> {
    let _lock = paths.lock()?;
    let state = match ContainerState::load(paths, id)? {
        Some(state) => state,
        None if paths.dir(id).is_dir() => {
            explain::step(
                "reclaim a container directory without state.json",
                || format!("rm -r \"{}\"", paths.dir(id).display()),
                Chapter::PuttingTogether,
            );
            return remove_files(paths, id);
        }
        None => return Ok(()),
    };
    let action = decide(&state);
    if action == Action::Keep {
        return Ok(());
    }
    explain::step(
        "its supervisor is gone: kill what is left in its cgroups",
        || format!("kill(cgroup.procs of {}, SIGKILL)", super::short_id(id)),
        Chapter::PuttingTogether,
    );
    if action == Action::Remove {
        crate::volume::unmount_driver_volumes(paths, &state)?;
        remove_files(paths, id)?;
        if state.config.auto_remove {
            crate::volume::remove_anonymous(paths, &state)?;
        }
        return Ok(());
    }
    super::remove_cgroups(&state)?;
    crate::runtime::forget(&paths.runtime_root, id);
    super::network::release(paths, id)?;
    // A created or exited container keeps its rootfs mount until `rm` (or its next start
    // mounts it again): only a container that was running loses it, as its supervisor would
    // have unmounted it.
    if action == Action::RecordKilled {
        super::unmount_rootfs(paths, id)?;
        crate::volume::unmount_driver_volumes(paths, &state)?;
    }
    let mut state = state;
    state.supervisor_pid = 0;
    state.supervisor_start_time = 0;
    if action == Action::RecordKilled {
        state.status = Status::Exited;
        state.exit_code = SHIM_DIED_EXIT_CODE;
        state.pid = 0;
        state.finished_at = crate::state::rfc3339(std::time::SystemTime::now());
    }
    state.save(paths)
}
// ANCHOR_END: recover

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: Status, auto_remove: bool, supervisor: Option<(i32, u64)>) -> ContainerState {
        let mut state = ContainerState::new("a", "b", "busybox", "sha256:00");
        state.status = status;
        state.config.auto_remove = auto_remove;
        if let Some((pid, start)) = supervisor {
            state.supervisor_pid = pid;
            state.supervisor_start_time = start;
        }
        state
    }

    #[test]
    fn a_live_supervisor_keeps_its_container() {
        let me = crate::container::state::me();
        for status in [Status::Created, Status::Running, Status::Exited] {
            assert_eq!(decide(&state(status, true, Some(me))), Action::Keep);
        }
    }

    #[test]
    fn a_dead_supervisor_means_137_or_removal() {
        let dead = Some((i32::MAX, 1));
        assert_eq!(
            decide(&state(Status::Running, false, dead)),
            Action::RecordKilled
        );
        assert_eq!(decide(&state(Status::Running, true, dead)), Action::Remove);
        assert_eq!(decide(&state(Status::Exited, true, dead)), Action::Remove);
        assert_eq!(decide(&state(Status::Exited, false, dead)), Action::Release);
        assert_eq!(decide(&state(Status::Created, true, dead)), Action::Remove);
        assert_eq!(
            decide(&state(Status::Created, false, dead)),
            Action::Release
        );
        let mut creating = state(Status::Created, false, dead);
        creating.creating = true;
        assert_eq!(decide(&creating), Action::Remove);
        for status in [Status::Running, Status::Exited, Status::Created] {
            let mut step = state(status, false, dead);
            step.build_step = true;
            assert_eq!(decide(&step), Action::Remove, "a build step, {status:?}");
        }
    }

    #[test]
    fn a_container_without_a_supervisor_is_left_alone_unless_it_claims_to_run() {
        assert_eq!(decide(&state(Status::Created, true, None)), Action::Keep);
        assert_eq!(decide(&state(Status::Exited, true, None)), Action::Keep);
        assert_eq!(
            decide(&state(Status::Running, false, None)),
            Action::RecordKilled
        );
    }
}
