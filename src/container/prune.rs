//! `minidock system prune`: removes what nothing uses, as `docker system prune` does: stopped
//! containers, then dangling images (with `--all`, every image no container uses), then what
//! interrupted commands left behind (see [`super::recover`] and
//! [`crate::image::store::Store::reclaim`]), and prints `Total reclaimed space`. Volumes are
//! left alone, as `docker system prune` leaves them without `--volumes` (see `volume prune`).

use super::Paths;
use super::state::Status;
use crate::image::cli::human_size;
use crate::image::store::{Removed, Store, containers_from_state, disk_usage};
use anyhow::{Context, Result};
use std::io::{BufRead, Write};

/// `minidock system prune [-a] [-f]`
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Full IDs of the containers removed.
    pub containers: Vec<String>,
    /// The names untagged and the images deleted, in order.
    pub images: Vec<Removed>,
    /// Bytes freed under the state root (containers, images, layers, leftovers).
    pub reclaimed: u64,
}

// ANCHOR: prune
/// Removes every stopped container, every dangling image (every image no container uses with
/// `all`), and every crash leftover; waits for running imports and pulls to finish first.
pub fn prune(paths: &Paths, all: bool) -> Result<Pruned> {
    let containers = prune_containers(paths)?;
    let images = prune_images(paths, all)?;
    Ok(Pruned {
        containers: containers.containers,
        images: images.images,
        reclaimed: containers.reclaimed + images.reclaimed,
    })
}
// ANCHOR_END: prune

/// `container prune`: removes every stopped container (created, exited or dead), each with
/// its `destroy`, then records `container prune` with the bytes reclaimed, as dockerd does.
pub fn prune_containers(paths: &Paths) -> Result<Pruned> {
    let before = disk_usage(&paths.root);
    let containers = remove_stopped(paths)?;
    let reclaimed = before.saturating_sub(disk_usage(&paths.root));
    crate::events::pruned(&paths.root, "container", reclaimed);
    Ok(Pruned {
        containers,
        images: Vec::new(),
        reclaimed,
    })
}

/// `image prune [-a]`: removes dangling images (with `all`, every image no container uses)
/// and the blobs and layers only they held, then records `image prune` with the bytes
/// reclaimed, as dockerd does.
pub fn prune_images(paths: &Paths, all: bool) -> Result<Pruned> {
    let before = disk_usage(&paths.root);
    let images = remove_unused_images(paths, all)?;
    let reclaimed = before.saturating_sub(disk_usage(&paths.root));
    crate::events::pruned(&paths.root, "image", reclaimed);
    Ok(Pruned {
        containers: Vec::new(),
        images,
        reclaimed,
    })
}

/// Removes the stopped containers; returns their IDs.
fn remove_stopped(paths: &Paths) -> Result<Vec<String>> {
    // Recover first, reporting any failure: a container whose supervisor died is stopped now.
    super::recover::recover_all(paths)?;
    let mut removed = Vec::new();
    for container in paths.list().context("listing containers")? {
        let starting = container.status == Status::Created && container.supervisor_alive();
        if container.observe() == Status::Running || starting {
            continue;
        }
        super::remove(paths, &container.id, false)?;
        removed.push(container.id);
    }
    Ok(removed)
}

/// Untags and deletes the unused images, then collects what nothing references.
fn remove_unused_images(paths: &Paths, all: bool) -> Result<Vec<Removed>> {
    let store = Store::open(&paths.root)?;
    let in_use = |_: &Store| containers_from_state(&paths.root);
    let mut removed = Vec::new();
    for image in store.images()? {
        let used = in_use(&store)?.iter().any(|u| {
            u.image == image.id.as_ref() || image.names.iter().any(|n| n.to_string() == u.image)
        });
        if used || !(all || image.names.is_empty()) {
            continue;
        }
        // Name by name, as Docker untags each reference, then the image goes with its last.
        let mut targets: Vec<String> = image.names.iter().map(|n| n.to_string()).collect();
        if targets.is_empty() {
            targets.push(image.id.to_string());
        }
        for target in targets {
            removed.extend(store.remove(&target, false, in_use)?);
        }
    }
    store.gc()?;
    Ok(removed)
}

/// What `system prune` prints: Docker's sections, then the total.
pub fn report(pruned: &Pruned) -> String {
    let mut out = String::new();
    if !pruned.containers.is_empty() {
        out.push_str("Deleted Containers:\n");
        for id in &pruned.containers {
            out.push_str(id);
            out.push('\n');
        }
        out.push('\n');
    }
    if !pruned.images.is_empty() {
        out.push_str("Deleted Images:\n");
        for event in &pruned.images {
            match event {
                Removed::Untagged(name) => {
                    out.push_str(&format!("untagged: {}\n", name.familiar()))
                }
                Removed::Deleted(id) => out.push_str(&format!("deleted: {id}\n")),
            }
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(pruned.reclaimed)
    ));
    out
}

/// The warning Docker prints before it asks.
fn warning(all: bool) -> String {
    let images = if all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    format!(
        "WARNING! This will remove:\n  - all stopped containers\n  - {images}\n  \
         - what interrupted commands left behind (partial downloads, half-made containers)\n\n\
         Are you sure you want to continue? [y/N] "
    )
}

/// Prints `warning` and reads the answer: whether it was `y` or `yes`, as Docker asks.
pub fn confirm(warning: &str) -> Result<bool> {
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{warning}").context("writing to stdout")?;
    stdout.flush().context("writing to stdout")?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// `minidock system prune`: asks first unless `--force`, as Docker does (anything but `y` or
/// `yes` leaves everything in place).
pub fn run_prune(paths: &Paths, args: &PruneArgs) -> Result<u8> {
    if !args.force && !confirm(&warning(args.all))? {
        return Ok(0);
    }
    let pruned = prune(paths, args.all)?;
    print!("{}", report(&pruned));
    Ok(0)
}

/// `minidock container prune [-f]`
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ContainerPruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// `container prune`: Docker's prompt unless `--force`, then the removed IDs and the total.
pub fn run_container_prune(paths: &Paths, args: &ContainerPruneArgs) -> Result<u8> {
    let warning = "WARNING! This will remove all stopped containers.\n\
                   Are you sure you want to continue? [y/N] ";
    if !args.force && !confirm(warning)? {
        return Ok(0);
    }
    print!("{}", report(&prune_containers(paths)?));
    Ok(0)
}

/// `minidock image prune [-a] [-f]`
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// `image prune`: Docker's prompt unless `--force`, then the untagged and deleted images and
/// the total.
pub fn run_image_prune(paths: &Paths, args: &ImagePruneArgs) -> Result<u8> {
    let what = if args.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    let warning =
        format!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
    if !args.force && !confirm(&warning)? {
        return Ok(0);
    }
    print!("{}", report(&prune_images(paths, args.all)?));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_has_dockers_sections() {
        let id = "a".repeat(64);
        let pruned = Pruned {
            containers: vec![id.clone()],
            images: vec![Removed::Deleted(crate::image::store::sha256_digest(
                b"config",
            ))],
            reclaimed: 1_300_000,
        };
        let text = report(&pruned);
        assert!(text.starts_with(&format!(
            "Deleted Containers:\n{id}\n\nDeleted Images:\ndeleted: sha256:"
        )));
        assert!(
            text.ends_with("\n\nTotal reclaimed space: 1.3MB\n"),
            "{text}"
        );
        assert_eq!(report(&Pruned::default()), "Total reclaimed space: 0B\n");
    }
}
