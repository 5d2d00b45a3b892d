//! ns-demo: run a command in new namespaces, or take the guided tour of all seven.
use clap::{Parser, Subcommand};
use minidock::explain;
use minidock::ns::{self, Child, Namespace, Sandbox};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "ns-demo", about = "Linux namespaces, one at a time", version)]
struct Cli {
    /// Do not print the kernel-level steps (they are on by default in the demos).
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run CMD in the chosen new namespaces.
    Run(RunArgs),
    /// The guided tour: each namespace's effect, read from the kernel.
    Tour,
}

#[derive(clap::Args)]
struct RunArgs {
    /// A new UTS namespace (hostname).
    #[arg(long)]
    uts: bool,
    /// A new PID namespace: CMD is PID 1, with a fresh /proc.
    #[arg(long)]
    pid: bool,
    /// A new mount namespace.
    #[arg(long)]
    mount: bool,
    /// A new IPC namespace.
    #[arg(long)]
    ipc: bool,
    /// A new network namespace (only lo, down).
    #[arg(long)]
    net: bool,
    /// A new user namespace: uid/gid 0 inside maps to the caller outside.
    #[arg(long)]
    user: bool,
    /// A new cgroup namespace.
    #[arg(long)]
    cgroup: bool,
    /// All seven.
    #[arg(long)]
    all: bool,
    /// The hostname inside (implies --uts).
    #[arg(long)]
    hostname: Option<String>,
    /// pivot_root into this directory, with /proc, /dev and /sys mounted (implies --mount).
    #[arg(long)]
    rootfs: Option<PathBuf>,
    /// The command and its arguments.
    #[arg(required = true, last = true)]
    cmd: Vec<String>,
}

impl RunArgs {
    fn sandbox(&self) -> Sandbox {
        let chosen = [
            (self.uts, Namespace::Uts),
            (self.pid, Namespace::Pid),
            (self.mount, Namespace::Mount),
            (self.ipc, Namespace::Ipc),
            (self.net, Namespace::Net),
            (self.user, Namespace::User),
            (self.cgroup, Namespace::Cgroup),
        ];
        let namespaces: Vec<Namespace> = chosen
            .into_iter()
            .filter(|(on, _)| *on || self.all)
            .map(|(_, ns)| ns)
            .collect();
        Sandbox {
            hostname: self.hostname.clone(),
            rootfs: self.rootfs.clone(),
            ..Sandbox::new(&namespaces)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    explain::enable(!cli.quiet);
    minidock::cli::run_main("ns-demo", || match cli.command {
        Command::Run(args) => args.sandbox().run(Child::Exec(args.cmd.clone())),
        Command::Tour => ns::tour::run().map(|()| 0),
    })
}
