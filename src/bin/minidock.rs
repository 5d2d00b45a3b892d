//! minidock: a small Docker, built from the mechanisms the demos show one at a time.
use clap::{Parser, Subcommand};
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
    Image(image_cli::ImageCommand),
    /// Download an image from a registry.
    Pull(minidock::registry::cli::PullArgs),
    /// Upload an image to a registry.
    Push(minidock::registry::cli::PushArgs),
    /// Log in to a registry (credentials go to $MINIDOCK_CONFIG/config.json, else
    /// ~/.minidock/config.json, mode 0600).
    Login(minidock::registry::cli::LoginArgs),
    /// Log out from a registry.
    Logout(minidock::registry::cli::LogoutArgs),
    /// Save images to a tar archive (docker save format, or --format oci).
    Save(image_cli::SaveArgs),
    /// Load images from a tar archive (docker save or OCI format).
    Load(image_cli::LoadArgs),
    /// Show the history of an image.
    History(image_cli::HistoryArgs),
    /// Create a new image from a container's changes.
    Commit(image_cli::CommitArgs),
    #[command(flatten)]
    Container(minidock::container::cli::ContainerCommand),
    /// The OCI runtime, with runc's verbs: run a bundle (rootfs + config.json).
    #[command(subcommand)]
    Runtime(RuntimeCommand),
    /// Manage minidock itself.
    #[command(subcommand)]
    System(SystemCommand),
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
}

#[derive(Subcommand)]
enum RuntimeCommand {
    /// Create a container from a bundle; it waits before exec until `start`.
    Create {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// With process.terminal: the unix socket that receives the pty master.
        #[arg(long, value_name = "PATH")]
        console_socket: Option<PathBuf>,
        id: String,
    },
    /// Let a created container execute its program.
    Start { id: String },
    /// Print the container's OCI state as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to the container's process.
    Kill {
        id: String,
        #[arg(default_value = "TERM")]
        signal: String,
    },
    /// Remove a stopped container's cgroup and state.
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create, start and wait for a container; exit with its status.
    Run {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        id: String,
    },
}

fn runtime(root: Option<&std::path::Path>, command: RuntimeCommand) -> anyhow::Result<u8> {
    let state_root = minidock::runtime::state_root(root);
    match command {
        RuntimeCommand::Create {
            bundle,
            console_socket,
            id,
        } => minidock::runtime::create(&state_root, &id, &bundle, console_socket.as_deref())
            .map(|()| 0),
        RuntimeCommand::Start { id } => minidock::runtime::start(&state_root, &id).map(|()| 0),
        RuntimeCommand::State { id } => {
            let state = minidock::runtime::state(&state_root, &id)?;
            println!("{}", serde_json::to_string_pretty(&state)?);
            Ok(0)
        }
        RuntimeCommand::Kill { id, signal } => {
            let signal = minidock::runtime::parse_signal(&signal)?;
            minidock::runtime::kill(&state_root, &id, signal).map(|()| 0)
        }
        RuntimeCommand::Delete { force, id } => {
            minidock::runtime::delete(&state_root, &id, force).map(|()| 0)
        }
        RuntimeCommand::Run { bundle, id } => minidock::runtime::run(&state_root, &id, &bundle),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    explain::enable(cli.explain);
    let root = minidock::state::root(cli.root.as_deref());
    minidock::cli::run_main("minidock", || match cli.command {
        Command::Import(args) => image_cli::run_import(&root, &args),
        Command::Images(args) => image_cli::run_images(&root, &args),
        Command::Tag(args) => image_cli::run_tag(&root, &args),
        Command::Rmi(args) => image_cli::run_rmi(&root, &args),
        Command::Image(command) => image_cli::run_image(&root, &command),
        Command::Pull(args) => minidock::registry::cli::run_pull(&root, &args),
        Command::Push(args) => minidock::registry::cli::run_push(&root, &args),
        Command::Login(args) => minidock::registry::cli::run_login(&args),
        Command::Logout(args) => minidock::registry::cli::run_logout(&args),
        Command::Save(args) => image_cli::run_save(&root, &args),
        Command::Load(args) => image_cli::run_load(&root, &args),
        Command::History(args) => image_cli::run_history(&root, &args),
        Command::Commit(args) => image_cli::run_commit(&root, &args),
        Command::Container(command) => {
            minidock::container::cli::run_command(cli.root.as_deref(), &command)
        }
        Command::Runtime(command) => runtime(cli.root.as_deref(), command),
        Command::System(SystemCommand::Prune(args)) => {
            let paths = minidock::container::Paths::new(cli.root.as_deref());
            minidock::container::prune::run_prune(&paths, &args)
        }
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
