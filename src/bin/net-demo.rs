//! net-demo: container networking step by step: a bridge, veth pairs into network namespaces,
//! addresses from a pool, NAT and published ports. Every kernel step is traced on stderr.
use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use minidock::cli::{Exit, code};
use minidock::net::{
    self, BridgeConfig, ContainerNetns, Netns, PortMapping, StateDir, Subnet, nat, netns, tour,
};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "net-demo",
    about = "Container networking, one kernel step at a time: bridge, veth, IPAM, NAT, -p",
    after_help = "Start with `net-demo tour`. Run by a user without root, it works in a network \
                  namespace of that user's own (the host's network is untouched). The steps go \
                  to stderr; --quiet hides them."
)]
struct Cli {
    /// State directory (IPAM pools, records of what was added, pinned namespaces). Default:
    /// /var/lib/minidock/network, and for a user without root
    /// $XDG_RUNTIME_DIR/minidock/net-demo/state.
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// NAT backend: auto, iptables-nft, iptables-legacy or nft (default: $MINIDOCK_NAT_BACKEND, else auto).
    #[arg(long, global = true)]
    nat_backend: Option<String>,
    /// Do not print the kernel steps.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Two containers on a bridge: addresses, routes, ping, a published HTTP server, teardown.
    Tour {
        #[arg(long, default_value = "mdtour0")]
        bridge: String,
        #[arg(long, default_value = "10.89.0.0/24")]
        subnet: String,
        /// The host port to publish the container's port 80 on.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Stop before the teardown, to look around (Enter or Ctrl-C continues).
        #[arg(long)]
        pause: bool,
    },
    /// Create a bridge with the gateway address and NAT for its subnet.
    Bridge {
        #[arg(long, default_value = "minidock0")]
        name: String,
        #[arg(long, default_value = "10.88.0.0/16")]
        subnet: String,
        /// No NAT rules and no ip_forward (containers reach only each other and the host).
        #[arg(long)]
        no_nat: bool,
    },
    /// Create a container (a pinned network namespace) and connect it to a bridge.
    Veth {
        /// The container's name.
        name: String,
        #[arg(long, default_value = "minidock0")]
        bridge: String,
    },
    /// Publish container ports on the host: HOST_PORT:CONTAINER_PORT[/tcp|udp].
    Publish {
        name: String,
        #[arg(required = true)]
        ports: Vec<String>,
    },
    /// Run a command inside a container's network namespace (like `ip netns exec`).
    Exec {
        name: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Show links, addresses and routes of the host or of a container, and minidock's rules.
    Show { name: Option<String> },
    /// Tear down one container, or with no name everything in the state directory.
    Teardown { name: Option<String> },
    /// (bench) Connect `count` containers, pinned at NETNS_PREFIX0, NETNS_PREFIX1, ..., to a
    /// bridge with netlink only (no IPAM, no NAT), as scripts/bench.d/netsetup times it.
    #[command(name = "__bench-setup", hide = true)]
    BenchSetup {
        #[arg(long)]
        netns_prefix: String,
        #[arg(long)]
        count: u32,
        #[arg(long)]
        bridge: String,
        /// Container i gets gateway + 1 + i.
        #[arg(long)]
        gateway: std::net::Ipv4Addr,
        #[arg(long)]
        prefix: u8,
    },
    /// (tests) Allocate one address, owned by process `owner`.
    #[command(name = "__ipam-allocate", hide = true)]
    IpamAllocate {
        id: String,
        #[arg(long)]
        network: String,
        #[arg(long)]
        subnet: String,
        #[arg(long)]
        owner: i32,
    },
}

fn main() -> std::process::ExitCode {
    minidock::cli::run_main("net-demo", || {
        let cli = Cli::parse();
        minidock::explain::enable(!cli.quiet);
        let root = match (&cli.root, nix::unistd::geteuid().is_root()) {
            (Some(root), _) => root.clone(),
            (None, true) => PathBuf::from(net::DEFAULT_ROOT),
            (None, false) => rootless_dir().join("state"),
        };
        if !nix::unistd::geteuid().is_root() {
            enter_own_network(cli.quiet)?;
        }
        run(cli, &root)
    })
}

/// Where a user without root keeps net-demo's state and network namespace.
fn rootless_dir() -> PathBuf {
    minidock::rootless::runtime_dir().join("net-demo")
}

/// Run by a user without root: become root of the user's own user namespace (the holder's,
/// as `minidock` does), then join the user's own network namespace, pinned at
/// `$XDG_RUNTIME_DIR/minidock/net-demo/netns` and made on first use. Every bridge, veth, rule
/// and sysctl net-demo makes is then in that namespace, never on the host's network.
fn enter_own_network(quiet: bool) -> Result<()> {
    minidock::rootless::enter().context("rootless")?;
    let pin = rootless_dir().join("netns");
    let created = netns::join_pinned(&pin).context("joining the user's own network namespace")?;
    // iptables-legacy's lock, /run/xtables.lock, is the host's and only host root may open
    // it: the user's own lock file instead (iptables(8), XTABLES_LOCKFILE).
    // SAFETY: the process has one thread here (rootless::enter requires it).
    unsafe { std::env::set_var("XTABLES_LOCKFILE", rootless_dir().join("xtables.lock")) };
    if !quiet {
        eprintln!(
            "net-demo: without root: working in the network namespace {} ({}), not on the \
             host's network",
            pin.display(),
            if created {
                "made now"
            } else {
                "kept from before"
            }
        );
    }
    Ok(())
}

fn backend(cli_choice: &Option<String>) -> Result<nat::Backend> {
    nat::Backend::choose(cli_choice.as_deref())
}

fn bridge_config(state: &StateDir, name: &str) -> Result<BridgeConfig> {
    let record = net::bridge(state, name)?.with_context(|| {
        format!("network {name} is not set up: run `net-demo bridge --name {name}` first")
    })?;
    Ok(BridgeConfig {
        name: record.name,
        subnet: record.subnet,
        gateway: record.gateway,
    })
}

fn run(cli: Cli, root: &std::path::Path) -> Result<u8> {
    let state = StateDir::new(root);
    match cli.command {
        Command::Tour {
            bridge,
            subnet,
            port,
            pause,
        } => {
            let backend = backend(&cli.nat_backend)?;
            tour::install_interrupt_handler()?;
            let opts = tour::TourOptions {
                state,
                bridge: BridgeConfig::new(&bridge, subnet.parse()?)?,
                backend,
                host_port: port,
                pause,
            };
            tour::run(&opts, &mut std::io::stdout().lock())?;
        }
        Command::Bridge {
            name,
            subnet,
            no_nat,
        } => {
            let cfg = BridgeConfig::new(&name, subnet.parse()?)?;
            let nat = if no_nat {
                None
            } else {
                Some(backend(&cli.nat_backend)?)
            };
            let record = net::setup_bridge(&state, &cfg, nat)?;
            println!(
                "bridge {} {} gateway {} (NAT: {})",
                record.name,
                record.subnet,
                record.gateway,
                record.backend.map_or("none".into(), |b| b.to_string())
            );
        }
        Command::Veth { name, bridge } => {
            let cfg = bridge_config(&state, &bridge)?;
            let path = tour::netns_path(&state, &name);
            if net::attachment(&state, &name)?.is_some() {
                bail!("container {name} already exists");
            }
            netns::pin_new(&path)?;
            let att = net::setup_container_network(
                &state,
                &cfg,
                &name,
                &ContainerNetns::Pinned(path.clone()),
            );
            match att {
                Ok(att) => println!(
                    "{name}: {}/{} on {}, host end {} on {}, gateway {}",
                    att.address, att.prefix, att.interface, att.host_veth, att.bridge, att.gateway
                ),
                Err(err) => {
                    // Nothing half-configured: the namespace goes too.
                    let _ = netns::unpin(&path);
                    return Err(err);
                }
            }
        }
        Command::Publish { name, ports } => {
            let ports = ports
                .iter()
                .map(|p| p.parse::<PortMapping>())
                .collect::<Result<Vec<_>>>()?;
            for rule in net::publish(&state, &name, &ports)? {
                println!("{rule}");
            }
        }
        Command::Exec { name, command } => {
            let ns = tour::open_container(&state, &name)?;
            nix::sched::setns(ns.fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .context("setns(CLONE_NEWNET)")?;
            let err = std::process::Command::new(&command[0])
                .args(&command[1..])
                .exec();
            let code = if err.kind() == std::io::ErrorKind::NotFound {
                code::NOT_FOUND
            } else {
                code::CANNOT_EXECUTE
            };
            return Err(Exit::new(code, format!("exec {:?}: {err}", command[0])).into());
        }
        Command::Show { name } => match name {
            Some(name) => {
                let ns = tour::open_container(&state, &name)?;
                print!("{}", net::describe(&mut ns.netlink()?)?);
            }
            None => {
                print!("{}", net::describe(&mut net::netlink::Netlink::open()?)?);
                for record in net::bridges(&state)? {
                    let nat = record.backend.map_or("none".into(), |b| b.to_string());
                    println!("bridge {} {} (NAT: {nat})", record.name, record.subnet);
                    for rule in &record.rules {
                        println!("  {rule}");
                    }
                }
                for att in net::attachments(&state)? {
                    let ports: Vec<String> = att.ports.iter().map(|p| p.to_string()).collect();
                    println!(
                        "container {} {}/{} via {} ports [{}]",
                        att.container,
                        att.address,
                        att.prefix,
                        att.host_veth,
                        ports.join(", ")
                    );
                    for rule in &att.rules {
                        println!("  {rule}");
                    }
                }
            }
        },
        Command::Teardown { name } => teardown(&state, name.as_deref())?,
        Command::BenchSetup {
            netns_prefix,
            count,
            bridge,
            gateway,
            prefix,
        } => {
            for i in 0..count {
                let ns = Netns::open(&PathBuf::from(format!("{netns_prefix}{i}")))?;
                let host_veth = format!("vb{i}");
                let link = net::VethLink {
                    bridge: &bridge,
                    host_veth: &host_veth,
                    address: std::net::Ipv4Addr::from(u32::from(gateway) + 1 + i),
                    prefix,
                    gateway,
                    mac: None,
                };
                net::connect_veth(&ns, &link)?;
            }
        }
        Command::IpamAllocate {
            id,
            network,
            subnet,
            owner,
        } => {
            let subnet: Subnet = subnet.parse()?;
            let addr = net::ipam::allocate(
                &state,
                &network,
                subnet,
                subnet.first_host(),
                &id,
                net::Owner::process(owner)?,
            )?;
            println!("{addr}");
        }
    }
    Ok(0)
}

/// One container (its rules, veth, address and pinned namespace), or everything.
fn teardown(state: &StateDir, name: Option<&str>) -> Result<()> {
    let names: Vec<String> = match name {
        Some(name) => vec![name.to_owned()],
        None => {
            let mut names: Vec<String> = net::attachments(state)?
                .into_iter()
                .map(|a| a.container)
                .collect();
            if let Ok(entries) = std::fs::read_dir(state.path("netns")) {
                for entry in entries.flatten() {
                    names.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
            names.sort();
            names.dedup();
            names
        }
    };
    for name in &names {
        net::teardown_container_network(state, name)?;
        netns::unpin(&tour::netns_path(state, name))?;
        println!("removed container {name}");
    }
    if name.is_none() {
        for record in net::bridges(state)? {
            net::teardown_bridge(state, &record.name)?;
            println!("removed bridge {}", record.name);
        }
    }
    Ok(())
}
