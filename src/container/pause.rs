//! `pause` and `unpause`: every process of a running container stopped at once by the cgroup
//! freezer, and let go again ([`crate::cgroup::freezer`]; on v1 the `freezer` hierarchy's
//! `freezer.state`, on v2 `cgroup.freeze`), as `docker pause` has containerd ask runc.
//!
//! Paused is not recorded: it is read from the kernel, the container's freezer file, so what
//! `ps` and `inspect` show is what the kernel does. A paused container is still running
//! (`inspect` shows `Running: true, Paused: true`, status `paused`; `ps` shows
//! `Up 5 seconds (Paused)`), and a SIGKILL sent to it (`kill`, `stop` past its timeout,
//! `rm -f`) thaws it afterwards, since a frozen task on v1 only dies once thawed.

use super::state::{ContainerState, Status};
use super::{Paths, REQUEST_FAILED};
use crate::cgroup::freezer::{self, FreezerState};
use crate::cli::Exit;
use crate::explain::{self, Chapter};
use anyhow::{Context, Result};
use std::path::PathBuf;

/// The container's freezer directory: its directory in the v1 `freezer` hierarchy
/// (`freezer.state`) where the host mounts one, as runc uses on a v1 or hybrid host, else its
/// v2 directory (`cgroup.freeze`).
fn freezer_dir(state: &ContainerState) -> Option<PathBuf> {
    // The directory under a hierarchy named `freezer` is looked at first: a listing asks
    // for every running container, and the other hierarchies would each cost a failed stat.
    let named_freezer = |dir: &&PathBuf| dir.components().any(|c| c.as_os_str() == "freezer");
    let with = |file: &str| {
        let (first, rest): (Vec<&PathBuf>, Vec<&PathBuf>) =
            state.cgroup_paths.iter().partition(named_freezer);
        first
            .into_iter()
            .chain(rest)
            .find(|dir| dir.join(file).exists())
            .cloned()
    };
    with("freezer.state").or_else(|| with("cgroup.freeze"))
}

/// Whether the container runs and its freezer says frozen (or freezing).
pub fn is_paused(state: &ContainerState) -> bool {
    state.observe() == Status::Running
        && state.process_alive()
        && super::state::paused_seen(&state.id, || {
            freezer_dir(state)
                .and_then(|dir| freezer::state(&dir).ok().flatten())
                .is_some_and(|s| s == FreezerState::Frozen)
        })
}

fn freeze(state: &ContainerState, wanted: FreezerState) -> Result<()> {
    let dir = freezer_dir(state).context("the container's cgroups have no freezer")?;
    freezer::set_state(&dir, wanted)
}

fn not_running(name: &str) -> anyhow::Error {
    Exit::new(REQUEST_FAILED, format!("Container {name} is not running")).into()
}

fn set(paths: &Paths, name: &str, wanted: FreezerState) -> Result<()> {
    let state = paths.resolve(name)?;
    let running = state.observe() == Status::Running && state.process_alive();
    // A container that does not run is not paused either: dockerd says which it is not.
    if !running && wanted == FreezerState::Frozen {
        return Err(not_running(&state.id));
    }
    let paused = running && is_paused(&state);
    match wanted {
        FreezerState::Frozen if paused => Err(Exit::new(
            REQUEST_FAILED,
            format!("Container {} is already paused", state.id),
        )
        .into()),
        FreezerState::Thawed if !paused => Err(Exit::new(
            REQUEST_FAILED,
            format!("Container {} is not paused", state.id),
        )
        .into()),
        FreezerState::Frozen => {
            explain::step(
                "freeze every process of the container",
                || {
                    format!(
                        "write(\"{}\", FROZEN)",
                        freezer_dir(&state).unwrap_or_default().display()
                    )
                },
                Chapter::PuttingTogether,
            );
            freeze(&state, FreezerState::Frozen)
                .with_context(|| format!("pausing container {}", state.id))
        }
        FreezerState::Thawed => {
            explain::step(
                "thaw every process of the container",
                || {
                    format!(
                        "write(\"{}\", THAWED)",
                        freezer_dir(&state).unwrap_or_default().display()
                    )
                },
                Chapter::PuttingTogether,
            );
            freeze(&state, FreezerState::Thawed)
                .with_context(|| format!("unpausing container {}", state.id))
        }
    }
}

/// `pause CONTAINER`. Errors (exit 1, as Docker's): no such container, `Container ID is not
/// running`, `Container ID is already paused`.
pub fn pause(paths: &Paths, name: &str) -> Result<()> {
    set(paths, name, FreezerState::Frozen)?;
    crate::events::container_named(paths, name, "pause", &[]);
    Ok(())
}

/// `unpause CONTAINER`. Errors (exit 1): no such container, `Container ID is not paused`
/// (a container that does not run included, as Docker's).
pub fn unpause(paths: &Paths, name: &str) -> Result<()> {
    set(paths, name, FreezerState::Thawed)?;
    crate::events::container_named(paths, name, "unpause", &[]);
    Ok(())
}

/// After a SIGKILL was sent to a paused container: thaws it, so its processes die (a frozen
/// task on v1 never handles the signal). Nothing to do when it is not frozen. The thaw is
/// asked for and not waited on: the container's supervisor may tear the cgroup down (and
/// remove it) as soon as the processes are gone, which is fine.
pub fn thaw_after_kill(state: &ContainerState) -> Result<()> {
    let Some(dir) = freezer_dir(state) else {
        return Ok(());
    };
    if freezer::state(&dir).ok().flatten() != Some(FreezerState::Frozen) {
        return Ok(());
    }
    let (file, value) = if dir.join("freezer.state").exists() {
        ("freezer.state", "THAWED")
    } else {
        ("cgroup.freeze", "0")
    };
    match std::fs::write(dir.join(file), value) {
        Ok(()) => Ok(()),
        Err(_) if !dir.exists() => Ok(()),
        Err(e) => Err(e).with_context(|| format!("thawing {}", dir.display())),
    }
}
