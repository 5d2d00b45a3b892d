//! overlay-demo: overlayfs and image layers, one mechanism at a time.
//!
//! Every kernel-level step is traced to stderr (pass `--quiet` to silence it); the work is
//! done by `minidock::overlay` and `minidock::image::layer`, the same code `minidock` runs.
//! Run by a user without root, `mount`, `umount` and `tour` work as rootless `minidock`
//! does: inside the user's own user and mount namespaces, with overlayfs's `userxattr`.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use minidock::image::layer::{self, ApplyOptions, Whiteouts};
use minidock::{explain, overlay};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "overlay-demo",
    about = "Union filesystems and image layers, step by step"
)]
struct Cli {
    /// Do not trace the system calls.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Mount an overlay and leave it mounted (undo with `overlay-demo umount`).
    Mount {
        /// Lower dirs, top layer first, separated by ':' (as the kernel's lowerdir).
        #[arg(long, value_name = "A[:B...]")]
        lower: String,
        #[arg(long)]
        upper: PathBuf,
        #[arg(long)]
        work: PathBuf,
        merged: PathBuf,
    },
    /// Unmount an overlay mounted by `mount`.
    Umount { merged: PathBuf },
    /// Show copy-up, whiteouts, opaque dirs, shadowing and shared layers, with evidence.
    Tour,
    /// Turn an upper dir into an OCI layer (.tar, .tar.gz or .tar.zst, by the name).
    Diff {
        upper: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Unpack a layer safely. A new DIR is created atomically; an existing DIR gets the layer
    /// applied on top (OCI whiteout semantics).
    Apply {
        layer: PathBuf,
        dir: PathBuf,
        /// DIR will be an overlay lower layer: keep whiteouts in the kernel's format.
        #[arg(long)]
        overlay_lower: bool,
        /// Refuse layers with more entries than this.
        #[arg(long, default_value_t = layer::DEFAULT_MAX_ENTRIES)]
        max_entries: u64,
        /// syncfs before reporting success.
        #[arg(long)]
        sync: bool,
    },
}

fn main() -> std::process::ExitCode {
    minidock::cli::run_main("overlay-demo", || {
        let cli = Cli::parse();
        explain::enable(!cli.quiet);
        if !nix::unistd::geteuid().is_root() && needs_mounts(&cli.command) {
            // As `minidock` does: root of the user's own user namespace, in the mount
            // namespace its holder keeps, so `umount` finds what `mount` left.
            minidock::rootless::enter().context("rootless")?;
        }
        run(cli.command)?;
        Ok(0)
    })
}

/// Whether the command mounts or unmounts (run by a user without root, it does so in the
/// user's own user and mount namespaces, `minidock::rootless::enter`); `diff` and `apply`
/// only read and write files, so they run as the user.
fn needs_mounts(command: &Command) -> bool {
    matches!(
        command,
        Command::Mount { .. } | Command::Umount { .. } | Command::Tour
    )
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Mount {
            lower,
            upper,
            work,
            merged,
        } => {
            let lowers: Vec<PathBuf> = lower.split(':').map(PathBuf::from).collect();
            let mounted = overlay::mount(&lowers, &upper, &work, &merged)?;
            println!("mounted overlay on {}", mounted.leak().display());
        }
        Command::Umount { merged } => {
            overlay::unmount(&merged)?;
            println!("unmounted {}", merged.display());
        }
        Command::Tour => overlay::tour(&mut std::io::stdout().lock())?,
        Command::Diff { upper, output } => {
            let (digests, compression) = layer::diff_to_file(&upper, &output)
                .with_context(|| format!("diffing {}", upper.display()))?;
            println!("wrote {} ({})", output.display(), compression.media_type());
            println!("digest:  {} ({} bytes)", digests.digest, digests.size);
            println!("diff_id: {}", digests.diff_id);
        }
        Command::Apply {
            layer: path,
            dir,
            overlay_lower,
            max_entries,
            sync,
        } => {
            let opts = ApplyOptions {
                whiteouts: if overlay_lower {
                    Whiteouts::Overlay
                } else {
                    Whiteouts::Apply
                },
                max_entries,
                sync,
                ..ApplyOptions::default()
            };
            let (blob, compression) = layer::open_blob(&path)?;
            let reader = std::io::BufReader::with_capacity(256 * 1024, blob);
            let context = || format!("applying {} to {}", path.display(), dir.display());
            let applied = if dir.exists() {
                layer::apply(reader, compression, &dir, &opts).with_context(context)?
            } else {
                layer::unpack_to_new_dir(reader, compression, &dir, &opts).with_context(context)?
            };
            println!("applied {} entries to {}", applied.entries, dir.display());
            println!("digest:  {}", applied.digests.digest);
            println!("diff_id: {}", applied.digests.diff_id);
        }
    }
    Ok(())
}
