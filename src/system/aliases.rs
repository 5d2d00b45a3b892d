//! Docker's management commands: `image ...` and `container ...` name the same commands as the
//! top-level ones (`image ls` is `images`, `container ls` is `ps`), plus the ones that exist
//! only there (`image prune`, `container prune`).

use crate::container::Paths;
use crate::container::cli::{ContainerCommand, PsArgs};
use crate::container::prune::{ContainerPruneArgs, ImagePruneArgs};
use crate::image::cli as image_cli;
use crate::registry::cli as registry_cli;
use anyhow::Result;
use std::path::Path;

/// `minidock image ...`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ImageCommand {
    #[command(flatten)]
    Base(image_cli::ImageCommand),
    /// Download an image from a registry
    Pull(registry_cli::PullArgs),
    /// Upload an image to a registry
    Push(registry_cli::PushArgs),
    /// Save one or more images to a tar archive
    Save(image_cli::SaveArgs),
    /// Load an image from a tar archive
    Load(image_cli::LoadArgs),
    /// Show the history of an image
    History(image_cli::HistoryArgs),
    /// Remove unused images
    Prune(ImagePruneArgs),
}

/// Runs an `image` subcommand; `cli_root` is `--root` as given, `root` the state root.
pub fn run_image(cli_root: Option<&Path>, root: &Path, command: &ImageCommand) -> Result<u8> {
    match command {
        ImageCommand::Base(command) => image_cli::run_image(root, command),
        ImageCommand::Pull(args) => registry_cli::run_pull(root, args),
        ImageCommand::Push(args) => registry_cli::run_push(root, args),
        ImageCommand::Save(args) => image_cli::run_save(root, args),
        ImageCommand::Load(args) => image_cli::run_load(root, args),
        ImageCommand::History(args) => image_cli::run_history(root, args),
        ImageCommand::Prune(args) => {
            crate::container::prune::run_image_prune(&Paths::new(cli_root), args)
        }
    }
}

/// `minidock container ...`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ContainerManageCommand {
    #[command(flatten)]
    Base(ContainerCommand),
    /// List containers
    #[command(visible_alias = "list")]
    Ls(PsArgs),
    /// Create a new image from a container's changes
    Commit(image_cli::CommitArgs),
    /// Remove all stopped containers
    Prune(ContainerPruneArgs),
}

/// Runs a `container` subcommand.
pub fn run_container(
    cli_root: Option<&Path>,
    root: &Path,
    command: &ContainerManageCommand,
) -> Result<u8> {
    match command {
        ContainerManageCommand::Base(command) => {
            crate::container::cli::run_command(cli_root, command)
        }
        ContainerManageCommand::Ls(args) => {
            crate::container::cli::run_command(cli_root, &ContainerCommand::Ps(args.clone()))
        }
        ContainerManageCommand::Commit(args) => image_cli::run_commit(root, args),
        ContainerManageCommand::Prune(args) => {
            crate::container::prune::run_container_prune(&Paths::new(cli_root), args)
        }
    }
}
