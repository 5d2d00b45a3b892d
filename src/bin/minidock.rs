//! minidock: a small Docker, built from the mechanisms the demos show one at a time.
use clap::{Parser, Subcommand};
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
    /// Check this machine for everything minidock and the workshop need.
    Doctor {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    explain::enable(cli.explain);
    minidock::cli::run_main("minidock", || match cli.command {
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
