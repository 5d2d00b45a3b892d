//! The embedded DNS resolver's process: one per user network, serving `127.0.0.11:53` (UDP
//! and TCP) inside every member container's network namespace, with the answers of
//! [`super::dns::answer`].
//!
//! minidock has no daemon, so the server is a small process of its own (as podman's
//! aardvark-dns is), `minidock network-resolver DIR`, where `DIR` is the network's resolver
//! directory:
//!
//! ```text
//! DIR/config.json          the network's name and upstream servers ([`Config`])
//! DIR/members/ID.json      one record per member container ([`Member`])
//! DIR/control.sock         the process's control socket: "sync\n" -> "ok\n"
//! DIR/running.lock         flock'd by the process for as long as it lives
//! DIR/spawn.lock           serialises starting, syncing and stopping it
//! DIR/resolver.log         its standard error
//! ```
//!
//! For each member the process opens its two sockets from a thread that has entered the
//! member's pinned network namespace (setns(2)); a socket stays in the namespace it was made
//! in, so one process on the host serves them all with poll(2), and forwards from the host's
//! namespace. [`ResolverDir::add_member`] writes the record, starts the process if none holds
//! `running.lock` (a crashed one holds nothing, so the next member restarts it, and it opens
//! sockets for every live member again), else asks the running one to re-read the records;
//! either way it returns once the sockets are bound, so the container's first question is
//! never lost. The process forks at once and serves from the child, so whoever started it
//! (a container's supervisor) keeps no child, zombie or thread for it. It exits when the
//! network has no member left.
//!
//! A container on several user networks is a member of each network's resolver, but only the
//! first one ([`Member::serve`]) holds its sockets (one `127.0.0.11:53` per namespace); that one
//! answers from its own members, then from the records of the container's other networks
//! ([`Member::also`]).

use super::dns::{self, Host, RESOLVER_ADDR, Zone};
use super::netns::Netns;
use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// The hidden `minidock` subcommand that runs the resolver process.
pub const SUBCOMMAND: &str = "network-resolver";

/// How long a DNS-over-TCP client may stay idle before its connection is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// A network's resolver settings (`DIR/config.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The network's name: `NAME.NETWORK` questions and `PTR` answers use it.
    pub network: String,
    /// Where questions the network cannot answer go; empty for an `--internal` network.
    pub upstream: Vec<SocketAddr>,
}

/// One member container (`DIR/members/ID.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The container's ID (the record's file name).
    pub id: String,
    /// The names it answers to: container name, short ID, `--network-alias`es.
    pub names: Vec<String>,
    /// Its IPv4 address on the network.
    pub addr: Ipv4Addr,
    /// Its pinned network namespace (a bind mount of `/proc/PID/ns/net`).
    pub netns: PathBuf,
    /// Whether this network's resolver holds the container's `127.0.0.11:53` sockets. A
    /// container on several user networks has one pair of sockets, held by its first user
    /// network's resolver; the others only know its name.
    #[serde(default = "serves_by_default")]
    pub serve: bool,
    /// The resolver directories of the container's other user networks, whose members the
    /// serving resolver also answers for (read when a question comes).
    #[serde(default)]
    pub also: Vec<PathBuf>,
}

fn serves_by_default() -> bool {
    true
}

impl Member {
    /// A member that holds its own sockets and is on no other user network.
    pub fn new(id: &str, names: Vec<String>, addr: Ipv4Addr, netns: PathBuf) -> Member {
        Member {
            id: id.to_owned(),
            names,
            addr,
            netns,
            serve: true,
            also: Vec::new(),
        }
    }
}

/// A network's resolver directory.
#[derive(Debug, Clone)]
pub struct ResolverDir {
    path: PathBuf,
}

impl ResolverDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ResolverDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn member_path(&self, id: &str) -> Result<PathBuf> {
        let valid = !id.is_empty()
            && !id.starts_with('.')
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            bail!("invalid member id {id:?}");
        }
        Ok(self.path.join("members").join(format!("{id}.json")))
    }

    /// Writes `DIR/config.json` (atomically), making `DIR`.
    pub fn write_config(&self, config: &Config) -> Result<()> {
        std::fs::create_dir_all(self.path.join("members"))
            .with_context(|| format!("creating {}", self.path.display()))?;
        let bytes = serde_json::to_vec_pretty(config)?;
        crate::state::write_atomic(&self.path.join("config.json"), &bytes)
    }

    /// Reads `DIR/config.json`.
    pub fn config(&self) -> Result<Config> {
        let path = self.path.join("config.json");
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    /// Every member record, by ID; records that do not parse are left out.
    pub fn members(&self) -> Result<Vec<Member>> {
        let dir = self.path.join("members");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        };
        let mut members = BTreeMap::new();
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let parsed = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Member>(&b).ok());
                if let Some(m) = parsed {
                    members.insert(m.id.clone(), m);
                }
            }
        }
        Ok(members.into_values().collect())
    }

    /// Records `member` and returns once the resolver serves it: starts the process with
    /// `exe` (the `minidock` binary) when none runs, else has the running one re-read the
    /// records. Errors: the records cannot be written, or the process fails to start (its
    /// log is in the message).
    pub fn add_member(&self, member: &Member, exe: &Path) -> Result<()> {
        let path = self.member_path(&member.id)?;
        let _lock = self.spawn_lock()?;
        std::fs::create_dir_all(self.path.join("members"))?;
        crate::state::write_atomic(&path, &serde_json::to_vec_pretty(member)?)?;
        if self.is_running()? {
            self.sync()
        } else {
            self.spawn(exe)
        }
    }

    /// Removes member `id`'s record and has the resolver close its sockets (it exits when
    /// that was the last member). Idempotent.
    pub fn remove_member(&self, id: &str) -> Result<()> {
        let path = self.member_path(id)?;
        if !self.path.exists() {
            return Ok(());
        }
        let _lock = self.spawn_lock()?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
        }
        if self.is_running()? {
            self.sync()?;
        }
        Ok(())
    }

    /// Removes every record and the directory itself, stopping the process first. Idempotent.
    pub fn remove(&self) -> Result<()> {
        if !self.path.exists() {
            return Ok(());
        }
        for m in self.members()? {
            self.remove_member(&m.id)?;
        }
        std::fs::remove_dir_all(&self.path)
            .with_context(|| format!("removing {}", self.path.display()))
    }

    /// Whether a resolver process is alive for this directory: it holds `running.lock`.
    pub fn is_running(&self) -> Result<bool> {
        let path = self.path.join("running.lock");
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
        };
        Ok(Flock::lock(file, FlockArg::LockExclusiveNonblock).is_err())
    }

    fn spawn_lock(&self) -> Result<Flock<File>> {
        std::fs::create_dir_all(&self.path)
            .with_context(|| format!("creating {}", self.path.display()))?;
        lock_file(&self.path.join("spawn.lock"), FlockArg::LockExclusive)
    }

    /// Asks the running process to re-read the records; returns once it has.
    fn sync(&self) -> Result<()> {
        let path = self.path.join("control.sock");
        let mut stream = with_short_path(&self.path, |short| UnixStream::connect(short))
            .with_context(|| format!("connecting to the resolver at {}", path.display()))?;
        stream.write_all(b"sync\n")?;
        let mut reply = String::new();
        BufReader::new(stream).read_line(&mut reply)?;
        if reply.trim_end() != "ok" {
            bail!(
                "the resolver of {} said {:?}",
                self.path.display(),
                reply.trim_end()
            );
        }
        Ok(())
    }

    /// Starts the process and waits for its "ready" line.
    fn spawn(&self, exe: &Path) -> Result<()> {
        use std::os::unix::process::CommandExt;
        let log_path = self.path.join("resolver.log");
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let mut command = Command::new(exe);
        command
            .arg(SUBCOMMAND)
            .arg(&self.path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0);
        // The resolver outlives its caller: it must hold none of the caller's descriptors (a
        // supervisor's copy of a container's output pipes would keep that container's output
        // open, so its supervisor would never see the exit).
        // SAFETY: close_range(2) is a plain system call, safe between fork and exec.
        unsafe {
            command.pre_exec(|| {
                crate::runtime::init::close_range_cloexec();
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {} {SUBCOMMAND}", exe.display()))?;
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout).read_line(&mut line)?;
        // The process forks at once and its first half exits ([`serve`]): reaping it here
        // leaves the caller with no child, no zombie and no thread (a thread would make the
        // caller's own later forks unsafe).
        child.wait().context("waiting for the resolver to detach")?;
        if line.trim_end() != "ready" {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!("the DNS resolver did not start: {}", log.trim());
        }
        Ok(())
    }
}

/// Runs `f` with a short path to `dir/control.sock`, `/proc/self/fd/N/control.sock`: a unix
/// socket's path must fit in 108 bytes (unix(7)), and a state root may be longer.
fn with_short_path<T>(
    dir: &Path,
    f: impl FnOnce(&Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    use std::os::fd::AsRawFd;
    let handle = File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}/control.sock", handle.as_raw_fd()));
    f(&short)
}

fn lock_file(path: &Path, how: FlockArg) -> Result<Flock<File>> {
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    Flock::lock(file, how)
        .map_err(|(_, errno)| errno)
        .with_context(|| format!("flock({})", path.display()))
}

/// A member's two listening sockets, inside its network namespace (none when another
/// network's resolver serves it).
struct Endpoint {
    member: Member,
    sockets: Option<(Arc<UdpSocket>, TcpListener)>,
}

impl Endpoint {
    fn open(member: &Member) -> Result<Self> {
        let ns = Netns::open(&member.netns)?;
        if !member.serve {
            return Ok(Endpoint {
                member: member.clone(),
                sockets: None,
            });
        }
        let (udp, tcp) = ns.run(|| -> Result<(UdpSocket, TcpListener)> {
            let at = (RESOLVER_ADDR, 53);
            let udp = UdpSocket::bind(at).context("bind(127.0.0.11:53/udp)")?;
            let tcp = TcpListener::bind(at).context("bind(127.0.0.11:53/tcp)")?;
            Ok((udp, tcp))
        })??;
        Ok(Endpoint {
            member: member.clone(),
            sockets: Some((Arc::new(udp), tcp)),
        })
    }
}

/// The zones a question from `member` is answered from: its network's, then those of its
/// other user networks, read from their directories now (their members change on their own).
fn zones_for(own: &Zone, also: &[PathBuf]) -> Vec<Zone> {
    let mut zones = vec![own.clone()];
    for dir in also {
        let dir = ResolverDir::new(dir);
        let (Ok(config), Ok(members)) = (dir.config(), dir.members()) else {
            continue;
        };
        let hosts = members.into_iter().map(|m| Host {
            names: m.names,
            addr: m.addr,
        });
        zones.push(Zone {
            network: config.network,
            hosts: hosts.collect(),
        });
    }
    zones
}

/// The running process's state: its control socket, the open endpoints by member ID, and
/// what the answers are made from.
struct Server {
    dir: ResolverDir,
    control: UnixListener,
    endpoints: BTreeMap<String, Endpoint>,
    zone: Arc<Zone>,
    upstream: Arc<Vec<SocketAddr>>,
    running: Option<Flock<File>>,
}

// ANCHOR: serve
/// The resolver process (`minidock network-resolver DIR`): takes `running.lock`, binds the
/// control socket, opens every live member's sockets, prints `ready`, then serves until the
/// network has no member left. Errors: another process serves `DIR`, or `DIR` cannot be read.
pub fn serve(dir: &Path) -> Result<()> {
    if !detach()? {
        return Ok(());
    }
    let dir = ResolverDir::new(dir);
    let running = lock_file(
        &dir.path.join("running.lock"),
        FlockArg::LockExclusiveNonblock,
    )
    .context("another resolver serves this network")?;
    let control_path = dir.path.join("control.sock");
    let _ = std::fs::remove_file(&control_path);
    let control = with_short_path(&dir.path, |short| UnixListener::bind(short))
        .with_context(|| format!("binding {}", control_path.display()))?;
    let mut server = Server {
        dir,
        control,
        endpoints: BTreeMap::new(),
        zone: Arc::default(),
        upstream: Arc::default(),
        running: Some(running),
    };
    server.reload()?;
    println!("ready");
    std::io::stdout().flush()?;
    while !server.endpoints.is_empty() {
        server.poll_once()?;
    }
    let _ = std::fs::remove_file(&control_path);
    Ok(())
}
// ANCHOR_END: serve

/// Forks; the parent returns `false` (and exits, so the caller reaps it at once), the child
/// `true`, in a session of its own.
fn detach() -> Result<bool> {
    let threads = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
    if threads != 1 {
        bail!("the resolver must detach before it starts threads ({threads} running)");
    }
    // SAFETY: the process has one thread (checked above), so the child may run any code.
    match unsafe { nix::unistd::fork() }.context("fork")? {
        nix::unistd::ForkResult::Parent { .. } => Ok(false),
        nix::unistd::ForkResult::Child => {
            nix::unistd::setsid().context("setsid")?;
            Ok(true)
        }
    }
}

impl Server {
    /// Re-reads the records: opens sockets for new live members, closes removed ones'.
    fn reload(&mut self) -> Result<()> {
        let config = self.dir.config()?;
        let members = self.dir.members()?;
        self.endpoints
            .retain(|id, ep| members.iter().any(|m| m.id == *id && *m == ep.member));
        for m in &members {
            if self.endpoints.contains_key(&m.id) {
                continue;
            }
            match Endpoint::open(m) {
                Ok(ep) => {
                    self.endpoints.insert(m.id.clone(), ep);
                }
                // A member whose namespace is gone is a dead container: it is not served.
                Err(e) => eprintln!("member {:?}: {e:#}", m.id),
            }
        }
        let hosts = self.endpoints.values().map(|ep| Host {
            names: ep.member.names.clone(),
            addr: ep.member.addr,
        });
        self.zone = Arc::new(Zone {
            network: config.network,
            hosts: hosts.collect(),
        });
        self.upstream = Arc::new(config.upstream);
        Ok(())
    }

    /// Waits for one event and handles it.
    fn poll_once(&mut self) -> Result<()> {
        let eps: Vec<(&Endpoint, &Arc<UdpSocket>, &TcpListener)> = self
            .endpoints
            .values()
            .filter_map(|ep| ep.sockets.as_ref().map(|(u, t)| (ep, u, t)))
            .collect();
        let mut fds = vec![PollFd::new(self.control.as_fd(), PollFlags::POLLIN)];
        for (_, udp, tcp) in &eps {
            fds.push(PollFd::new(udp.as_fd(), PollFlags::POLLIN));
            fds.push(PollFd::new(tcp.as_fd(), PollFlags::POLLIN));
        }
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => return Ok(()),
            r => r.context("poll")?,
        };
        let ready: Vec<usize> = fds
            .iter()
            .enumerate()
            .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
            .map(|(i, _)| i)
            .collect();
        drop(fds);
        for i in ready.iter().copied().filter(|i| *i > 0) {
            let (ep, udp, tcp) = eps[(i - 1) / 2];
            if (i - 1) % 2 == 0 {
                self.udp_query(udp, &ep.member.also);
            } else if let Ok((stream, _)) = tcp.accept() {
                self.tcp_client(stream, &ep.member.also);
            }
        }
        if ready.first() == Some(&0) {
            self.control_request();
        }
        Ok(())
    }

    fn udp_query(&self, socket: &Arc<UdpSocket>, also: &[PathBuf]) {
        let mut buf = vec![0u8; 65535];
        let Ok((n, peer)) = socket.recv_from(&mut buf) else {
            return;
        };
        buf.truncate(n);
        let (socket, zone, upstream) = (socket.clone(), self.zone.clone(), self.upstream.clone());
        let also = also.to_vec();
        std::thread::spawn(move || {
            let zones = zones_for(&zone, &also);
            let mut ask = |q: &[u8]| dns::forward(&upstream, q, false);
            if let Some(reply) = dns::answer_from(&buf, &zones, &mut ask) {
                let _ = socket.send_to(&reply, peer);
            }
        });
    }

    fn tcp_client(&self, mut stream: TcpStream, also: &[PathBuf]) {
        let (zone, upstream) = (self.zone.clone(), self.upstream.clone());
        let also = also.to_vec();
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(TCP_IDLE));
            while let Ok(query) = dns::read_tcp_message(&mut stream) {
                let zones = zones_for(&zone, &also);
                let mut ask = |q: &[u8]| dns::forward(&upstream, q, true);
                let Some(reply) = dns::answer_from(&query, &zones, &mut ask) else {
                    break;
                };
                if dns::write_tcp_message(&mut stream, &reply).is_err() {
                    break;
                }
            }
        });
    }

    /// Handles one "sync" request: reload, and when no member is left, give up the control
    /// socket and the lock before saying "ok", so the next `add_member` starts a new process.
    fn control_request(&mut self) {
        let Ok((stream, _)) = self.control.accept() else {
            return;
        };
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_err() || line.trim_end() != "sync" {
            return;
        }
        let reply = match self.reload() {
            Ok(()) => "ok\n".to_owned(),
            Err(e) => format!("error: {e:#}\n"),
        };
        if self.endpoints.is_empty() {
            let _ = std::fs::remove_file(self.dir.path.join("control.sock"));
            self.running = None;
        }
        let _ = (&stream).write_all(reply.as_bytes());
    }
}
