//! `pause` and `unpause`: every process of a running container stopped at once by the cgroup
//! freezer, and let go again ([`crate::cgroup::freezer`]; on v1 the `freezer` hierarchy's
//! `freezer.state`, on v2 `cgroup.freeze`), as `docker pause` has containerd ask runc.
//!
//! Paused is not recorded: it is read from the kernel, the container's freezer file, so what
//! `ps` and `inspect` show is what the kernel does. A paused container is still running
//! (`inspect` shows `Running: true, Paused: true`, status `paused`; `ps` shows
//! `Up 5 seconds (Paused)`), and a signal sent to it (`kill`, `stop`, `rm -f`) thaws it
//! afterwards as dockerd does ([`thaw_after_signal`]), since a frozen task on v1 handles no
//! signal, SIGKILL included, until thawed.

use super::state::{ContainerState, Status};
use super::{Paths, REQUEST_FAILED};
use crate::cgroup::freezer::{self, FreezerState};
use crate::cli::Exit;
use crate::explain::{self, Chapter};
use crate::runtime::signal::Signal;
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
            if let Some(frozen) = kept::frozen(state) {
                return frozen;
            }
            let dir = freezer_dir(state);
            if let Some(dir) = &dir {
                kept::keep(state, dir);
            }
            dir.and_then(|dir| freezer::state(&dir).ok().flatten())
                .is_some_and(|s| s == FreezerState::Frozen)
        })
}

/// Keeps each running container's v1 `freezer.state` open from now on, for a process that
/// asks again and again (`minidock daemon`): one `pread` per look instead of finding and
/// opening the file.
pub fn keep_freezer_files() {
    kept::enable();
}

/// The kept `freezer.state` files, by container ID, with the cgroup paths they were found
/// from. A file is kept only where [`freezer_dir`] finds it first: in the first directory
/// under a `freezer` hierarchy, which cannot gain a `cgroup.freeze` (a v1 hierarchy has
/// none). While the cgroup paths are the same and the file reads, it is the file
/// [`freezer_dir`] would find: a removed cgroup's files fail with `ENODEV`, and a directory
/// made again at the same path is another file.
mod kept {
    use super::ContainerState;
    use std::collections::HashMap;
    use std::os::unix::fs::FileExt;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    /// At most this many files are kept; past it they are all closed and opened again.
    const MOST: usize = 512;

    type Kept = HashMap<String, (Vec<PathBuf>, std::fs::File)>;
    static KEPT: Mutex<Option<Kept>> = Mutex::new(None);

    pub(super) fn enable() {
        if let Ok(mut kept) = KEPT.lock() {
            kept.get_or_insert_with(HashMap::new);
        }
    }

    /// Frozen (or freezing) as the kept file reads now; `None` when none is kept for these
    /// cgroup paths or it no longer reads (it is then closed).
    pub(super) fn frozen(state: &ContainerState) -> Option<bool> {
        let mut guard = KEPT.lock().ok()?;
        let kept = guard.as_mut()?;
        let (paths, file) = kept.get(&state.id)?;
        let mut text = [0u8; 16];
        let read = (*paths == state.cgroup_paths)
            .then(|| file.read_at(&mut text, 0).ok())
            .flatten()
            .filter(|n| *n > 0);
        let Some(read) = read else {
            kept.remove(&state.id);
            return None;
        };
        Some(text[..read].trim_ascii() != b"THAWED")
    }

    /// Keeps `dir`'s `freezer.state` for `state` when `dir` is the first directory of a
    /// `freezer` hierarchy among its cgroup paths.
    pub(super) fn keep(state: &ContainerState, dir: &Path) {
        let first = state
            .cgroup_paths
            .iter()
            .find(|d| d.components().any(|c| c.as_os_str() == "freezer"));
        if first.map(PathBuf::as_path) != Some(dir) {
            return;
        }
        let Ok(mut guard) = KEPT.lock() else {
            return;
        };
        let Some(kept) = guard.as_mut() else {
            return;
        };
        let Ok(file) = std::fs::File::open(dir.join("freezer.state")) else {
            return;
        };
        if kept.len() >= MOST {
            *kept = HashMap::new();
        }
        kept.insert(state.id.clone(), (state.cgroup_paths.clone(), file));
    }
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
    if state.is_restarting() && wanted == FreezerState::Frozen {
        return Err(super::restarting(&state.id));
    }
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

/// After `signal` was sent to a container, thaws it if it is paused and moby's
/// `killWithSignal` would: for SIGKILL, and for any other signal when the container has no
/// stop signal of its own or `signal` is that stop signal (so `stop` of a paused container
/// lets its process handle the stop signal at once). A frozen task on v1 handles no signal,
/// SIGKILL included, until thawed. A thaw after another signal than SIGKILL is an `unpause`
/// event, as dockerd logs one; after SIGKILL the container dies before dockerd notes it.
pub fn thaw_after_signal(paths: &Paths, state: &ContainerState, signal: Signal) -> Result<()> {
    let own = match state.config.stop_signal.as_str() {
        "" => None,
        text => Some(Signal::parse(text).ok()),
    };
    if signal != Signal::KILL && own.is_some_and(|own| own != Some(signal)) {
        return Ok(());
    }
    if thaw(state)? && signal != Signal::KILL {
        crate::events::container(paths, state, "unpause", &[]);
    }
    Ok(())
}

/// Thaws a frozen container; whether it was frozen. The thaw is asked for and not waited on:
/// the container's supervisor may tear the cgroup down (and remove it) as soon as the
/// processes are gone, which is fine.
fn thaw(state: &ContainerState) -> Result<bool> {
    let Some(dir) = freezer_dir(state) else {
        return Ok(false);
    };
    if freezer::state(&dir).ok().flatten() != Some(FreezerState::Frozen) {
        return Ok(false);
    }
    let (file, value) = if dir.join("freezer.state").exists() {
        ("freezer.state", "THAWED")
    } else {
        ("cgroup.freeze", "0")
    };
    match std::fs::write(dir.join(file), value) {
        Ok(()) => Ok(true),
        Err(_) if !dir.exists() => Ok(false),
        Err(e) => Err(e).with_context(|| format!("thawing {}", dir.display())),
    }
}
