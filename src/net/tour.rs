//! `net-demo tour`: two "containers" (network namespaces) on a bridge, ping between them, an
//! HTTP server in one published on a host port and fetched through 127.0.0.1, the NAT rules
//! shown, then everything torn down, on success, on error and on Ctrl-C alike.

use super::netlink::Netlink;
use super::netns::{self, Netns};
use super::{BridgeConfig, ContainerNetns, PortMapping, Protocol, StateDir, nat, probe};
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: the one thing a signal handler may safely do here.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C (SIGINT) and SIGTERM set a flag instead of killing us, so the current step ends
/// and the teardown still runs. No SA_RESTART: a blocking read returns EINTR at once.
pub fn install_interrupt_handler() -> Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(sig, &action) }.with_context(|| format!("sigaction({sig})"))?;
    }
    Ok(())
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Between steps: stop if the user pressed Ctrl-C.
pub fn check_interrupted() -> Result<()> {
    if interrupted() {
        return Err(crate::cli::Exit::new(130, "interrupted (everything was torn down)").into());
    }
    Ok(())
}

/// Waits until a line (or end of file) arrives on stdin, or Ctrl-C. Polls in short steps
/// rather than blocking in read(2): std's line reading retries on EINTR, so a blocked read
/// would never notice the signal.
fn wait_for_enter() -> Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let mut buf = [0u8; 256];
    while !interrupted() {
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(200u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => match nix::unistd::read(stdin.as_fd(), &mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) if buf[..n].contains(&b'\n') => return Ok(()),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).context("reading stdin"),
            },
            Err(e) => return Err(e).context("poll(stdin)"),
        }
    }
    Ok(())
}

/// Where net-demo pins the namespace of container `name`.
pub fn netns_path(state: &StateDir, name: &str) -> PathBuf {
    state.path("netns").join(name)
}

#[derive(Debug, Clone)]
pub struct TourOptions {
    pub state: StateDir,
    pub bridge: BridgeConfig,
    pub backend: nat::Backend,
    pub host_port: u16,
    /// Wait for Enter (or Ctrl-C) before tearing down, to explore with `net-demo exec`.
    pub pause: bool,
}

/// Tears the tour down when dropped, unless [`Cleanup::finish`] already did.
struct Cleanup<'a> {
    opts: &'a TourOptions,
    containers: Vec<String>,
    done: bool,
}

impl Cleanup<'_> {
    fn finish(&mut self) -> Result<()> {
        self.done = true;
        let state = &self.opts.state;
        let mut first_error = None;
        if let Err(e) = super::teardown_bridge(state, &self.opts.bridge.name) {
            first_error.get_or_insert(e);
        }
        for name in &self.containers {
            if let Err(e) = super::teardown_container_network(state, name)
                .and_then(|()| netns::unpin(&netns_path(state, name)))
            {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            None => Ok(()),
            Some(e) => Err(e.context("tearing down the tour")),
        }
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.done {
            eprintln!("net-demo: tearing down after an error or an interrupt");
            if let Err(e) = self.finish() {
                eprintln!("net-demo: {e:#}");
            }
        }
    }
}

fn heading(out: &mut dyn Write, text: &str) -> Result<()> {
    writeln!(out, "\n== {text}")?;
    Ok(())
}

// ANCHOR: tour
pub fn run(opts: &TourOptions, out: &mut dyn Write) -> Result<()> {
    let state = &opts.state;
    let names = ["tour-a", "tour-b"];
    let mut cleanup = Cleanup {
        opts,
        containers: Vec::new(),
        done: false,
    };

    heading(
        out,
        &format!("1. a bridge: {} {}", opts.bridge.name, opts.bridge.subnet),
    )?;
    writeln!(out, "NAT backend: {}", opts.backend)?;
    super::setup_bridge(state, &opts.bridge, Some(opts.backend))?;
    check_interrupted()?;

    heading(
        out,
        "2. two containers, each a network namespace with a veth pair to the bridge",
    )?;
    let mut addresses = Vec::new();
    let mut spaces = Vec::new();
    for name in names {
        let path = netns_path(state, name);
        cleanup.containers.push(name.to_owned());
        let ns = netns::pin_new(&path)?;
        let att = super::setup_container_network(
            state,
            &opts.bridge,
            name,
            &ContainerNetns::Pinned(path),
        )?;
        writeln!(
            out,
            "{name}: {}/{} on {} (host end {}), gateway {}",
            att.address, att.prefix, att.interface, att.host_veth, att.gateway
        )?;
        write!(out, "{}", super::describe(&mut ns.netlink()?)?)?;
        addresses.push(att.address);
        spaces.push(ns);
        check_interrupted()?;
    }
    writeln!(out, "host:")?;
    write!(out, "{}", super::describe(&mut Netlink::open()?)?)?;

    heading(out, "3. ping across the bridge")?;
    for (from, to) in [(0, 1), (1, 0)] {
        let rtt = probe::ping(Some(&spaces[from]), addresses[to], Duration::from_secs(3))
            .with_context(|| format!("ping from {} to {}", names[from], addresses[to]))?;
        writeln!(
            out,
            "{} -> {}: echo reply in {:.3} ms",
            names[from],
            addresses[to],
            rtt.as_secs_f64() * 1000.0
        )?;
        check_interrupted()?;
    }

    heading(
        out,
        &format!(
            "4. an HTTP server in {} on port 80, published on host port {}",
            names[1], opts.host_port
        ),
    )?;
    let body = format!("hello from {} ({}) through NAT\n", names[1], addresses[1]);
    let server = probe::HttpServer::start(Some(&spaces[1]), 80, body)?;
    let mapping = PortMapping {
        host_ip: None,
        host_port: opts.host_port,
        container_port: 80,
        protocol: Protocol::Tcp,
    };
    super::publish(state, names[1], &[mapping])?;
    writeln!(out, "rules minidock added ({}):", opts.backend)?;
    print_rules(opts.backend, out)?;
    writeln!(
        out,
        "net.ipv4.ip_forward = {}, net.ipv4.conf.{}.route_localnet = {}",
        nat::read_sysctl("net/ipv4/ip_forward")?,
        opts.bridge.name,
        nat::read_sysctl(&format!(
            "net/ipv4/conf/{}/route_localnet",
            opts.bridge.name
        ))?
    )?;
    check_interrupted()?;

    heading(
        out,
        &format!(
            "5. fetch http://127.0.0.1:{}/ from the host",
            opts.host_port
        ),
    )?;
    let (status, page) =
        probe::http_get(None, SocketAddrV4::new(Ipv4Addr::LOCALHOST, opts.host_port))?;
    writeln!(out, "{status}")?;
    write!(out, "{page}")?;
    check_interrupted()?;

    if opts.pause {
        writeln!(
            out,
            "\npaused: try `net-demo --root {} exec tour-a -- sh`; press Enter (or Ctrl-C) to tear down",
            state.root().display()
        )?;
        out.flush()?;
        wait_for_enter()?;
        check_interrupted()?;
    }

    heading(out, "6. teardown")?;
    server.stop();
    drop(spaces);
    cleanup.finish()?;
    writeln!(out, "links left on the host:")?;
    write!(out, "{}", super::describe(&mut Netlink::open()?)?)?;
    let left = nat::list_rules(opts.backend)?;
    writeln!(out, "minidock rules left: {}", left.len())?;
    if !left.is_empty() {
        bail!("rules left after teardown: {left:?}");
    }
    Ok(())
}
// ANCHOR_END: tour

/// Prints the rules as the backend's own tool lists them.
pub fn print_rules(backend: nat::Backend, out: &mut dyn Write) -> Result<()> {
    match backend {
        nat::Backend::Nft => write!(out, "{}", nat::nft_table_text()?)?,
        _ => {
            for rule in nat::list_rules(backend)? {
                writeln!(out, "  {backend} {rule}")?;
            }
        }
    }
    Ok(())
}

/// Opens the pinned namespace of net-demo container `name`.
pub fn open_container(state: &StateDir, name: &str) -> Result<Netns> {
    let path = netns_path(state, name);
    if !netns::is_pinned(&path) {
        bail!(
            "no container {name} (no namespace pinned at {})",
            path.display()
        );
    }
    Netns::open(&path)
}
