//! `rename OLD NEW`: a container's name is only a record in its `state.json`, so renaming is
//! one locked read-modify-write; the processes, cgroups and files are named by the ID.

use super::state::ContainerState;
use super::{Paths, REQUEST_FAILED};
use crate::cli::Exit;
use anyhow::Result;

/// Renames container `old` (name or ID) to `new`. Errors exit 1, as Docker's do: no such
/// container; `new` not of the form `[a-zA-Z0-9][a-zA-Z0-9_.-]+`; `new` the container's own
/// name; `new` in use by another container (the same conflict message `create` gives).
pub fn rename(paths: &Paths, old: &str, new: &str) -> Result<()> {
    let fail = |message: String| -> anyhow::Error { Exit::new(REQUEST_FAILED, message).into() };
    super::validate_name(new).map_err(|err| fail(format!("{err:#}")))?;
    let new = new.strip_prefix('/').unwrap_or(new);
    let state = paths.resolve(old)?;
    if state.name == new {
        return Err(fail(
            "renaming a container with the same name as its current name".into(),
        ));
    }
    let _lock = paths.lock()?;
    if let Some(other) = paths.list_recorded()?.iter().find(|c| c.name == new) {
        return Err(fail(format!(
            "the container name \"/{new}\" is already in use by container {:?}: remove (or \
             rename) that container to be able to reuse that name",
            other.id
        )));
    }
    let Some(mut current) = ContainerState::load(paths, &state.id)? else {
        return Err(super::no_such_container(old));
    };
    let old_name = format!("/{}", current.name);
    current.name = new.to_owned();
    current.save(paths)?;
    crate::events::container(paths, &current, "rename", &[("oldName", old_name)]);
    Ok(())
}
