//! minidock: a small Docker, built from the mechanisms the demos show one at a time.
use clap::{Parser, Subcommand};
use minidock::container::Paths;
use minidock::image::cli as image_cli;
use minidock::{doctor, explain};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "minidock", about = "How Docker works, built for real", version)]
struct Cli {
    /// State directory (images, containers, volumes). Default: $MINIDOCK_ROOT, else
    /// /var/lib/minidock.
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Print every kernel-level step with its syscall and book chapter.
    #[arg(long, global = true)]
    explain: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import the contents of a rootfs tarball (or - for stdin) as a one-layer image.
    Import(image_cli::ImportArgs),
    /// List images.
    Images(image_cli::ImagesArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(image_cli::TagArgs),
    /// Remove one or more images.
    Rmi(image_cli::RmiArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(minidock::system::aliases::ImageCommand),
    /// Manage containers.
    #[command(subcommand, name = "container")]
    ContainerManage(minidock::system::aliases::ContainerManageCommand),
    /// Get real time events from minidock (its journal of events, `docker events`).
    Events(minidock::events::EventsArgs),
    /// Show the minidock version information.
    Version(minidock::system::VersionArgs),
    /// Display system-wide information.
    Info(minidock::system::info::InfoArgs),
    /// Download an image from a registry.
    Pull(minidock::registry::cli::PullArgs),
    /// Upload an image to a registry.
    Push(minidock::registry::cli::PushArgs),
    /// Log in to a registry (credentials go to $MINIDOCK_CONFIG/config.json, else
    /// ~/.minidock/config.json, mode 0600).
    Login(minidock::registry::cli::LoginArgs),
    /// Log out from a registry.
    Logout(minidock::registry::cli::LogoutArgs),
    /// Search Docker Hub, or REGISTRY/TERM a registry's catalog, for images.
    Search(minidock::registry::search::SearchArgs),
    /// Save images to a tar archive (docker save format, or --format oci).
    Save(image_cli::SaveArgs),
    /// Load images from a tar archive (docker save or OCI format).
    Load(image_cli::LoadArgs),
    /// Show the history of an image.
    History(image_cli::HistoryArgs),
    /// Create a new image from a container's changes.
    Commit(image_cli::CommitArgs),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(minidock::volume::cli::VolumeCommand),
    /// Build an image from a Dockerfile.
    Build(minidock::build::cli::BuildCommand),
    #[command(flatten)]
    Container(minidock::container::cli::ContainerCommand),
    /// The OCI runtime, with runc's command line: run a bundle (rootfs + config.json). See
    /// `minidock runtime --help`; a symlink named minidock-runc behaves as this command.
    #[command(disable_help_flag = true)]
    Runtime {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Manage minidock itself.
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(minidock::net::cli::NetworkCommand),
    /// A user network's embedded DNS resolver process (started by minidock itself).
    #[command(hide = true, name = "network-resolver")]
    NetworkResolver {
        /// The network's resolver directory.
        dir: PathBuf,
    },
    /// Serve the Docker Engine API on a unix socket, so the docker CLI drives minidock.
    Daemon(minidock::daemon::DaemonArgs),
    /// Check this machine for everything minidock and the workshop need.
    Doctor {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SystemCommand {
    /// Remove stopped containers, dangling images and what interrupted commands left behind.
    Prune(minidock::container::prune::PruneArgs),
    /// Show minidock disk usage.
    Df(minidock::system::df::DfArgs),
    /// Display system-wide information.
    Info(minidock::system::info::InfoArgs),
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Bound into a container as /sbin/docker-init (`run --init`), the binary is its PID 1.
    if argv
        .first()
        .is_some_and(|a| minidock::container::init::is_init(a))
    {
        return ExitCode::from(minidock::container::init::main(&argv) as u8);
    }
    // runc's command line has its own --root: it is parsed apart from minidock's.
    if let Some((root, explain_on, args)) = minidock::runtime::cli::split_args(&argv) {
        explain::enable(explain_on);
        if let Err(status) = enter_rootless() {
            return status;
        }
        return minidock::runtime::cli::main(root.as_deref(), args);
    }
    let cli = match minidock::cli::parse_args::<Cli>("minidock", argv) {
        Ok(cli) => cli,
        Err(status) => return status,
    };
    explain::enable(cli.explain);
    // `doctor` checks the rootless setup from outside, as the user.
    if !matches!(cli.command, Command::Doctor { .. })
        && let Err(status) = enter_rootless()
    {
        return status;
    }
    let root = minidock::state::root(cli.root.as_deref());
    minidock::cli::run_main("minidock", || match cli.command {
        Command::Import(args) => image_cli::run_import(&root, &args),
        Command::Images(args) => image_cli::run_images(&root, &args),
        Command::Tag(args) => image_cli::run_tag(&root, &args),
        Command::Rmi(args) => image_cli::run_rmi(&root, &args),
        Command::Image(command) => {
            minidock::system::aliases::run_image(cli.root.as_deref(), &root, &command)
        }
        Command::ContainerManage(command) => {
            minidock::system::aliases::run_container(cli.root.as_deref(), &root, &command)
        }
        Command::Version(args) => minidock::system::run_version(&args),
        Command::Events(args) => {
            minidock::events::run_events(&Paths::new(cli.root.as_deref()), &args)
        }
        Command::Info(args) | Command::System(SystemCommand::Info(args)) => {
            let paths = minidock::container::Paths::new(cli.root.as_deref());
            minidock::system::info::run_info(&paths, &args)
        }
        Command::System(SystemCommand::Df(args)) => {
            let paths = minidock::container::Paths::new(cli.root.as_deref());
            minidock::system::df::run_df(&paths, &args)
        }
        Command::Pull(args) => minidock::registry::cli::run_pull(&root, &args),
        Command::Push(args) => minidock::registry::cli::run_push(&root, &args),
        Command::Login(args) => minidock::registry::cli::run_login(&args),
        Command::Logout(args) => minidock::registry::cli::run_logout(&args),
        Command::Search(args) => minidock::registry::search::run_search(&args),
        Command::Save(args) => image_cli::run_save(&root, &args),
        Command::Load(args) => image_cli::run_load(&root, &args),
        Command::History(args) => image_cli::run_history(&root, &args),
        Command::Commit(args) => image_cli::run_commit(&root, &args),
        Command::Volume(command) => {
            minidock::volume::cli::run_command(cli.root.as_deref(), &command)
        }
        Command::Build(args) => {
            let paths = minidock::container::Paths::new(cli.root.as_deref());
            minidock::build::cli::run_build(&paths, &args)
        }
        Command::Container(command) => {
            minidock::container::cli::run_command(cli.root.as_deref(), &command)
        }
        Command::Runtime { args } => {
            // Reached only when split_args did not see `runtime`; parse it the same way.
            let mut full = vec![std::ffi::OsString::from("minidock runtime")];
            full.extend(args);
            let status = minidock::runtime::cli::main(cli.root.as_deref(), full);
            Ok(if status == ExitCode::SUCCESS { 0 } else { 1 })
        }
        Command::System(SystemCommand::Prune(args)) => {
            let paths = minidock::container::Paths::new(cli.root.as_deref());
            minidock::container::prune::run_prune(&paths, &args)
        }
        Command::Network(command) => {
            let paths = minidock::container::Paths::new(cli.root.as_deref());
            minidock::net::cli::run(&paths, &command)
        }
        Command::NetworkResolver { dir } => {
            minidock::net::resolver::serve(&dir)?;
            Ok(0)
        }
        Command::Daemon(args) => minidock::daemon::run(cli.root.as_deref(), &args),
        Command::Doctor { json } => {
            let checks = doctor::run();
            if json {
                println!("{}", serde_json::to_string_pretty(&checks)?);
            } else {
                print!("{}", doctor::render(&checks));
            }
            Ok(if checks.iter().all(|c| c.ok) { 0 } else { 1 })
        }
    })
}

/// Run by a user other than root, minidock works inside its own user namespace
/// (`minidock::rootless`). Called while the process has one thread.
fn enter_rootless() -> Result<(), ExitCode> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    match minidock::rootless::enter() {
        Ok(()) => Ok(()),
        Err(err) => Err(minidock::cli::run_main("minidock", || {
            Err(err.context("rootless"))
        })),
    }
}
