//! `minidock attach`: the stdio of a running container, served by its shim.
//!
//! The shim owns the container's stdio, as containerd-shim does: the pipes (or the pty master)
//! stay open in the shim for the container's whole life, so a client can come and go. The shim
//! listens on a unix socket in the container's runtime directory (`<runtime root>/<id>/
//! attach.sock`); each client that connects first sends one byte saying which streams it wants
//! (1 stdin, 2 stdout, 4 stderr), then:
//!
//! - shim to client: Docker's multiplexed stream (moby's `stdcopy`): an 8-byte header
//!   `[stream, 0, 0, 0, length (u32 big-endian)]` then the bytes, with stream 1 for stdout and
//!   2 for stderr; a last frame of stream [`EXIT`] carries the exit status (i32 big-endian)
//!   once the process has been reaped.
//! - client to shim: frames `[kind, length (u32 big-endian)]` then the bytes: keystrokes for
//!   the container's stdin, a window size (rows and columns, u16 big-endian each) that the shim
//!   sets on the pty with `TIOCSWINSZ`, a signal number (i32 big-endian) the shim sends to
//!   the container's process (`--sig-proxy`), or the end of the client's input (`run -i`:
//!   Docker's `StdinOnce`), on which the shim closes the container's stdin (with a terminal,
//!   it types the EOF character, ^D).
//!
//! The detach keys (ctrl-p ctrl-q, or `--detach-keys` in Docker's syntax) are recognised in
//! the client, on its way from the terminal to the socket, and only with a terminal, as moby
//! does: the client leaves, the container and its shim go on.
//!
//! A foreground `run -i`/`-t` and `start -a`/`-i` are Docker's CLI: create (`run`), start
//! under the light shim, attach, and wait for the exit frame ([`foreground`]). The client's
//! socket is made before the start and handed to the shim as its stdin, so the container's
//! first output is already the client's.

use super::Paths;
use super::state::{ContainerState, Status};
use crate::cli::Exit;
use anyhow::{Context, Result, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The socket's name in the container's runtime directory.
pub const SOCKET: &str = "attach.sock";

/// The hello byte's bits: which streams a client attaches to.
pub const WANT_STDIN: u8 = 1;
pub const WANT_STDOUT: u8 = 2;
pub const WANT_STDERR: u8 = 4;

/// Shim-to-client stream numbers (moby's `stdcopy`), and the exit frame.
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const EXIT: u8 = 255;

/// A file in the container's directory, written before a start: the number of attach clients
/// the shim waits for (at most [`FIRST_CLIENTS_WAIT`]) before it copies any output, so a
/// client that asked before the start (`docker run`'s attach and wait) sees all of it.
pub const FIRST_CLIENTS: &str = "attach-first";

/// How long a shim waits for the clients [`FIRST_CLIENTS`] announced.
pub const FIRST_CLIENTS_WAIT: Duration = Duration::from_secs(5);

/// Client-to-shim frame kinds.
const STDIN_DATA: u8 = 0;
const RESIZE: u8 = 1;
const SIGNAL: u8 = 2;
const CLOSE_STDIN: u8 = 3;

/// Docker's default detach keys: ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// Binds or connects through `/proc/self/fd/N/attach.sock`, so the socket's path never
/// exceeds `sun_path`'s 108 bytes however deep the state root is.
fn short_path(dir: &Path) -> Result<(OwnedFd, PathBuf)> {
    let dir_fd: OwnedFd = std::fs::File::open(dir)
        .with_context(|| format!("opening {}", dir.display()))?
        .into();
    let path = PathBuf::from(format!("/proc/self/fd/{}/{SOCKET}", dir_fd.as_raw_fd()));
    Ok((dir_fd, path))
}

/// What a client asked of the shim.
pub enum Request {
    Stdin(Vec<u8>),
    /// Rows, columns.
    Resize(u16, u16),
    Signal(i32),
    /// The client's input ended (`run -i`): close the container's stdin.
    CloseStdin,
}

struct Client {
    stream: UnixStream,
    wants: u8,
}

// ANCHOR: server
/// The shim's side: the listening socket and the attached clients.
pub struct Server {
    listener: UnixListener,
    clients: Vec<Client>,
}

impl Server {
    /// Listens on `dir/attach.sock` (`dir`: the container's runtime directory).
    pub fn bind(dir: &Path) -> Result<Server> {
        let (_dir_fd, path) = short_path(dir)?;
        let _ = std::fs::remove_file(&path);
        let listener =
            UnixListener::bind(&path).with_context(|| format!("binding {}", dir.display()))?;
        // Only root may type into a container (connect(2) needs write permission).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .context("chmod the attach socket")?;
        listener.set_nonblocking(true)?;
        Ok(Server {
            listener,
            clients: Vec::new(),
        })
    }

    // ANCHOR_END: server

    // ANCHOR: server_fds
    /// The descriptors to poll for input: the listener first, then each client.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut fds = vec![self.listener.as_fd()];
        fds.extend(self.clients.iter().map(|c| c.stream.as_fd()));
        fds
    }

    // ANCHOR_END: server_fds

    // ANCHOR: server_serve
    /// Handles what poll found ready (`ready[i]` for `fds()[i]`): accepts new clients and
    /// returns their requests. A client that leaves or misbehaves is dropped.
    pub fn serve(&mut self, ready: &[bool]) -> Vec<Request> {
        let mut requests = Vec::new();
        let mut gone = Vec::new();
        for (i, client) in self.clients.iter_mut().enumerate() {
            if ready.get(i + 1) != Some(&true) {
                continue;
            }
            match read_request(&mut client.stream) {
                Ok(Some(request)) => {
                    let stdin_allowed = client.wants & WANT_STDIN != 0;
                    if stdin_allowed || !matches!(request, Request::Stdin(_) | Request::CloseStdin)
                    {
                        requests.push(request);
                    }
                }
                Ok(None) | Err(_) => gone.push(i),
            }
        }
        for i in gone.into_iter().rev() {
            self.clients.remove(i);
        }
        if ready.first() == Some(&true) {
            while let Ok((stream, _)) = self.listener.accept() {
                if let Some(client) = hello(stream) {
                    self.clients.push(client);
                }
            }
        }
        requests
    }

    // ANCHOR_END: server_serve

    // ANCHOR: server_adopt
    /// Adds a client connected before the container started (a foreground `run`'s, passed to
    /// the shim as its stdin); its hello byte is already in the socket.
    pub fn adopt(&mut self, stream: UnixStream) {
        if let Some(client) = hello(stream) {
            self.clients.push(client);
        }
    }

    /// Before the first output is copied: when `container_dir` holds [`FIRST_CLIENTS`], removes
    /// it and waits for that many clients (at most [`FIRST_CLIENTS_WAIT`] in all).
    pub fn await_first_clients(&mut self, container_dir: &Path) {
        let marker = container_dir.join(FIRST_CLIENTS);
        let Ok(text) = std::fs::read_to_string(&marker) else {
            return;
        };
        let _ = std::fs::remove_file(&marker);
        let wanted: usize = text.trim().parse().unwrap_or(0).min(64);
        let deadline = std::time::Instant::now() + FIRST_CLIENTS_WAIT;
        while self.clients.len() < wanted {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            if ms == 0 {
                return;
            }
            let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) => return,
                Err(nix::errno::Errno::EINTR) | Ok(_) => {}
                Err(_) => return,
            }
            while let Ok((stream, _)) = self.listener.accept() {
                if let Some(client) = hello(stream) {
                    self.clients.push(client);
                }
            }
        }
    }
    // ANCHOR_END: server_adopt

    // ANCHOR: server_broadcast
    /// Copies output of the container (stream 1 or 2) to the clients that want it.
    pub fn broadcast(&mut self, stderr: bool, bytes: &[u8]) {
        let (stream, want) = if stderr {
            (STDERR, WANT_STDERR)
        } else {
            (STDOUT, WANT_STDOUT)
        };
        self.clients.retain_mut(|c| {
            c.wants & want == 0 || write_frame(&mut c.stream, stream, bytes).is_ok()
        });
    }
    // ANCHOR_END: server_broadcast

    // ANCHOR: server_finish
    /// Tells every client the exit status and lets them go.
    pub fn finish(mut self, status: i32) {
        for client in &mut self.clients {
            let _ = write_frame(&mut client.stream, EXIT, &status.to_be_bytes());
        }
    }
    // ANCHOR_END: server_finish
}

/// Reads a new client's hello byte (it comes at once; a silent client is dropped).
fn hello(stream: UnixStream) -> Option<Client> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    // A client that stops reading must not stop the container's output.
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    let mut byte = [0u8; 1];
    (&stream).read_exact(&mut byte).ok()?;
    Some(Client {
        stream,
        wants: byte[0],
    })
}

fn write_frame(stream: &mut UnixStream, kind: u8, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(std::io::Error::other)?;
    let mut frame = Vec::with_capacity(8 + bytes.len());
    frame.extend_from_slice(&[kind, 0, 0, 0]);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(bytes);
    stream.write_all(&frame)
}

/// A client's frame; `None` at end of stream.
fn read_request(stream: &mut UnixStream) -> Result<Option<Request>> {
    let mut header = [0u8; 5];
    match stream.read_exact(&mut header) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other.context("reading an attach frame")?,
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > 1 << 20 {
        bail!("attach frame of {len} bytes");
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    Ok(Some(match (header[0], body.as_slice()) {
        (STDIN_DATA, _) => Request::Stdin(body),
        (RESIZE, [r0, r1, c0, c1]) => Request::Resize(
            u16::from_be_bytes([*r0, *r1]),
            u16::from_be_bytes([*c0, *c1]),
        ),
        (SIGNAL, [a, b, c, d]) => Request::Signal(i32::from_be_bytes([*a, *b, *c, *d])),
        (CLOSE_STDIN, []) => Request::CloseStdin,
        (kind, _) => bail!("unknown attach frame kind {kind}"),
    }))
}

fn send_request(stream: &mut UnixStream, kind: u8, bytes: &[u8]) -> std::io::Result<()> {
    u32::try_from(bytes.len()).map_err(std::io::Error::other)?;
    stream.write_all(&request_frame(kind, bytes))
}

/// Sets the window size `rows` x `cols` on the pty master `fd` (`TIOCSWINSZ`).
pub fn set_window_size(fd: BorrowedFd, rows: u16, cols: u16) {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize struct.
    unsafe {
        libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &size);
    }
}

// ANCHOR: detach_keys
/// Parses Docker's `--detach-keys` (moby's `term.ToBytes`): comma-separated keys, each a
/// single character or `ctrl-X` with X one of `a`-`z`, `@`, `[`, `\`, `]`, `^`, `_`. Bad keys
/// exit 1 with the line Docker's CLI prints when its daemon refuses the attach request (HTTP
/// 400), then the daemon's reason, which that line leaves out.
pub fn parse_detach_keys(text: &str) -> Result<Vec<u8>> {
    let invalid = || {
        Exit::new(
            1,
            format!(
                "unable to upgrade to tcp, received 400: Invalid detach keys ({text}) provided"
            ),
        )
    };
    let mut keys = Vec::new();
    for key in text.split(',') {
        let lower = key.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("ctrl-") {
            let &[c] = rest.as_bytes() else {
                return Err(invalid().into());
            };
            keys.push(match c {
                b'a'..=b'z' => c - b'a' + 1,
                b'@' => 0,
                b'[' => 27,
                b'\\' => 28,
                b']' => 29,
                b'^' => 30,
                b'_' => 31,
                _ => return Err(invalid().into()),
            });
        } else {
            let &[c] = key.as_bytes() else {
                return Err(invalid().into());
            };
            keys.push(c);
        }
    }
    Ok(keys)
}
// ANCHOR_END: detach_keys

// ANCHOR: escape_proxy
/// Watches keystrokes for the detach sequence, as moby's escape proxy does: bytes that may
/// begin the sequence are held back, and passed on once the sequence turns out otherwise.
pub struct EscapeProxy {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeProxy {
    pub fn new(keys: Vec<u8>) -> EscapeProxy {
        EscapeProxy { keys, matched: 0 }
    }

    /// The bytes to pass on, and whether the sequence is complete (detach: what follows it
    /// is dropped).
    pub fn filter(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        for &byte in input {
            if self.keys.is_empty() {
                out.push(byte);
            } else if byte == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                out.push(byte);
            }
        }
        (out, false)
    }
}
// ANCHOR_END: escape_proxy

/// `minidock attach`'s options.
pub struct AttachOptions {
    /// Do not attach stdin.
    pub no_stdin: bool,
    /// Pass the signals this process receives on to the container (only without a tty, as
    /// Docker's CLI does); off, they are ignored, as Docker's CLI ignores them.
    pub sig_proxy: bool,
    pub detach_keys: Option<String>,
}

// ANCHOR: caught_signals
/// The signals a foreground client catches. With `sig_proxy`, every catchable signal but
/// SIGCHLD, SIGPIPE and SIGURG, to pass on to the container (SIGWINCH too, besides the
/// resize), as Docker's CLI (`signal.Notify` of all, `ForwardAllSignals`) does. Without, the
/// ones Docker's CLI, a Go program, ignores then: SIGINT and SIGTERM, the user signals,
/// the timers, SIGWINCH, SIGIO, SIGPWR, SIGXCPU, SIGXFSZ and the real-time signals; SIGHUP
/// still ends the client and SIGTSTP still stops it.
pub fn caught_signals(sig_proxy: bool) -> SigSet {
    use crate::runtime::signal::{SIGRTMAX, SIGRTMIN};
    const NOT_PROXIED: [i32; 5] = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGCHLD,
        libc::SIGPIPE,
        libc::SIGURG,
    ];
    const IGNORED: [i32; 14] = [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGWINCH,
        libc::SIGIO,
        libc::SIGPWR,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGURG,
        libc::SIGCONT,
    ];
    let standard = 1..SIGRTMIN - 2;
    let caught: Vec<i32> = if sig_proxy {
        standard
            .filter(|s| !NOT_PROXIED.contains(s))
            .chain(SIGRTMIN..=SIGRTMAX)
            .collect()
    } else {
        IGNORED.into_iter().chain(SIGRTMIN..=SIGRTMAX).collect()
    };
    // SAFETY: sigemptyset and sigaddset fill the set; every number is a valid signal.
    unsafe {
        let mut raw: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut raw);
        for signo in caught {
            libc::sigaddset(&mut raw, signo);
        }
        SigSet::from_sigset_t_unchecked(raw)
    }
}
// ANCHOR_END: caught_signals

/// How a client's session ended.
enum Ended {
    /// The container exited with this status.
    Exited(u8),
    /// The user typed the detach keys.
    Detached,
}

/// What a client does besides copying the streams.
struct Session {
    /// The container has a terminal: raw mode, window sizes, detach keys.
    tty: bool,
    sig_proxy: bool,
    detach: EscapeProxy,
    /// The end of our input closes the container's stdin (`run -i`, Docker's `StdinOnce`).
    stdin_once: bool,
}

// ANCHOR: attach
/// `minidock attach CONTAINER`: connects this terminal to a running container's stdio through
/// its shim, and returns its exit status once it exits. The detach keys end it with "read
/// escape sequence" on stderr and status 1, as Docker's CLI does.
pub fn attach(paths: &Paths, name: &str, options: &AttachOptions) -> Result<u8> {
    let state = paths.resolve(name)?;
    if state.observe() != Status::Running {
        return Err(Exit::new(
            1,
            "You cannot attach to a stopped container, start it first",
        )
        .into());
    }
    if super::pause::is_paused(&state) {
        return Err(Exit::new(
            1,
            "You cannot attach to a paused container, unpause it first",
        )
        .into());
    }
    if state.config.tty && !options.no_stdin {
        check_tty()?;
    }
    let keys = parse_detach_keys(
        options
            .detach_keys
            .as_deref()
            .unwrap_or(DEFAULT_DETACH_KEYS),
    )?;
    let stdin = state.config.open_stdin && !options.no_stdin;
    let stream = connect(paths, &state, stdin)?;
    crate::events::container(paths, &state, "attach", &[]);
    let client = Client {
        stream,
        wants: if stdin { WANT_STDIN } else { 0 },
    };
    let session = Session {
        tty: state.config.tty,
        sig_proxy: options.sig_proxy && !state.config.tty,
        detach: EscapeProxy::new(keys),
        stdin_once: false,
    };
    match pump_client(client, session)? {
        Ended::Exited(status) => Ok(status),
        Ended::Detached => {
            eprintln!("read escape sequence");
            Ok(1)
        }
    }
}
// ANCHOR_END: attach

/// Refuses a container's terminal to a client whose stdin is not one (piped or redirected),
/// as Docker's CLI does for `run -it` and `attach`: exit 1, "the input device is not a TTY".
pub fn check_tty() -> Result<()> {
    if !nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        return Err(Exit::new(1, "the input device is not a TTY").into());
    }
    Ok(())
}

/// A foreground `run` or `start -a`: which streams it attaches, whether it passes signals on,
/// and its detach keys (Docker's syntax, default ctrl-p,ctrl-q).
pub struct Foreground<'a> {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub sig_proxy: bool,
    pub detach_keys: Option<&'a str>,
}

// ANCHOR: foreground
/// Docker's CLI's `run` after `create`, and `start -a`: connects a client socket, starts the
/// container under the light shim with the other end as its first client, then copies the
/// streams until the exit frame (the container's status, once its exit is recorded and an
/// `--rm` container removed) or the detach keys (0; the container goes on, and its shim
/// removes it at its exit with `--rm`). Bad detach keys exit 1 before the start, as Docker's
/// CLI fails its attach request then.
pub fn foreground(paths: &Paths, state: &ContainerState, options: &Foreground) -> Result<u8> {
    let keys = parse_detach_keys(options.detach_keys.unwrap_or(DEFAULT_DETACH_KEYS))?;
    let (ours, theirs) = UnixStream::pair().context("socketpair for the attach client")?;
    let mut wants = 0;
    for (wanted, bit) in [
        (options.stdin, WANT_STDIN),
        (options.stdout, WANT_STDOUT),
        (options.stderr, WANT_STDERR),
    ] {
        if wanted {
            wants |= bit;
        }
    }
    (&ours)
        .write_all(&[wants])
        .context("writing the attach hello")?;
    crate::events::container(paths, state, "attach", &[]);
    super::shim::start_attached(paths, &state.id, theirs.into())?;
    let client = Client {
        stream: ours,
        wants,
    };
    let session = Session {
        tty: state.config.tty,
        sig_proxy: options.sig_proxy,
        detach: EscapeProxy::new(keys),
        stdin_once: true,
    };
    Ok(match pump_client(client, session)? {
        Ended::Exited(status) => status,
        Ended::Detached => 0,
    })
}
// ANCHOR_END: foreground

/// Connects to the shim of `state` and says hello.
fn connect(paths: &Paths, state: &ContainerState, stdin: bool) -> Result<UnixStream> {
    let mut wants = WANT_STDOUT | WANT_STDERR;
    if stdin {
        wants |= WANT_STDIN;
    }
    connect_wanting(paths, &state.id, wants)
}

/// Connects to the shim of container `id` and says hello: `wants` is the streams (the
/// `WANT_*` bits; 0 for the exit frame only). The shim then sends its frames (see the module's
/// documentation).
pub fn connect_wanting(paths: &Paths, id: &str, wants: u8) -> Result<UnixStream> {
    let dir = paths.runtime_root.join(id);
    let (_dir_fd, path) = short_path(&dir)?;
    let mut stream = UnixStream::connect(&path)
        .with_context(|| format!("connecting to the shim of container {id}"))?;
    stream.write_all(&[wants])?;
    Ok(stream)
}

/// A client's frame of keystrokes for the container's stdin.
pub fn stdin_frame(bytes: &[u8]) -> Vec<u8> {
    request_frame(STDIN_DATA, bytes)
}

/// A client's frame ending the container's stdin ([`Request::CloseStdin`]).
pub fn close_stdin_frame() -> Vec<u8> {
    request_frame(CLOSE_STDIN, &[])
}

/// A client's frame setting the container's terminal to `rows` x `cols`.
pub fn resize_frame(rows: u16, cols: u16) -> Vec<u8> {
    let mut size = rows.to_be_bytes().to_vec();
    size.extend_from_slice(&cols.to_be_bytes());
    request_frame(RESIZE, &size)
}

fn request_frame(kind: u8, bytes: &[u8]) -> Vec<u8> {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    let mut frame = vec![kind];
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(bytes);
    frame
}

/// Copies the shim's frames to our stdout and stderr, and our stdin (through the detach
/// keys, with a terminal), window size and signals to the shim, until the exit frame.
fn pump_client(mut client: Client, mut session: Session) -> Result<Ended> {
    let stdin = std::io::stdin();
    let tty = session.tty;
    let mut stdin_open = client.wants & WANT_STDIN != 0;
    let raw = if tty && stdin_open {
        crate::tty::RawMode::enter(stdin.as_fd())
    } else {
        None
    };
    // Caught either way: Docker's CLI, without --sig-proxy, neither passes them on nor dies
    // of them (it stays attached).
    let mut mask = caught_signals(session.sig_proxy);
    if tty {
        mask.add(Signal::SIGWINCH);
        send_window_size(&mut client.stream, stdin.as_fd());
    }
    mask.thread_block().context("blocking signals")?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("signalfd")?;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let mut fds = vec![
            PollFd::new(client.stream.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => other.context("poll")?,
        };
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[1] {
            while let Ok(Some(info)) = signals.read_signal() {
                let signo = info.ssi_signo as i32;
                if signo == libc::SIGWINCH && tty {
                    send_window_size(&mut client.stream, stdin.as_fd());
                }
                if session.sig_proxy {
                    let _ = send_request(&mut client.stream, SIGNAL, &signo.to_be_bytes());
                }
            }
        }
        if stdin_open && ready[2] {
            match nix::unistd::read(&stdin, &mut buf) {
                // Our input ended: an attach leaves the container's stdin open (Docker's
                // StdinOnce is false for it), a foreground run closes it.
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    if session.stdin_once {
                        let _ = send_request(&mut client.stream, CLOSE_STDIN, &[]);
                    }
                }
                Ok(n) => {
                    let (bytes, detached) = if tty {
                        session.detach.filter(&buf[..n])
                    } else {
                        (buf[..n].to_vec(), false)
                    };
                    if !bytes.is_empty() {
                        send_request(&mut client.stream, STDIN_DATA, &bytes)
                            .context("writing to the shim")?;
                    }
                    if detached {
                        drop(raw);
                        return Ok(Ended::Detached);
                    }
                }
            }
        }
        if ready[0]
            && let Some(status) = copy_frame(&mut client.stream)?
        {
            return Ok(Ended::Exited(status));
        }
    }
}

fn send_window_size(stream: &mut UnixStream, terminal: BorrowedFd) {
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize struct.
    if unsafe { libc::ioctl(terminal.as_raw_fd(), libc::TIOCGWINSZ, &mut size) } != 0 {
        return;
    }
    let mut bytes = size.ws_row.to_be_bytes().to_vec();
    bytes.extend_from_slice(&size.ws_col.to_be_bytes());
    let _ = send_request(stream, RESIZE, &bytes);
}

/// Copies one frame from the shim to our stdout or stderr; the exit status once it comes.
fn copy_frame(stream: &mut UnixStream) -> Result<Option<u8>> {
    let mut header = [0u8; 8];
    if let Err(e) = stream.read_exact(&mut header) {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            // The shim died: recovery records what happened to the container.
            bail!("the container's shim went away");
        }
        return Err(e).context("reading from the shim");
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let mut body = vec![0u8; len];
    stream
        .read_exact(&mut body)
        .context("reading from the shim")?;
    match header[0] {
        STDOUT => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&body);
            let _ = out.flush();
        }
        STDERR => {
            let _ = std::io::stderr().write_all(&body);
        }
        EXIT => {
            let status = match body.as_slice() {
                [a, b, c, d] => i32::from_be_bytes([*a, *b, *c, *d]),
                _ => bail!("a malformed exit frame from the shim"),
            };
            return Ok(Some(u8::try_from(status).unwrap_or(255)));
        }
        other => bail!("an unknown stream {other} from the shim"),
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_follow_dockers_syntax() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), [16, 17]);
        assert_eq!(parse_detach_keys("ctrl-@,a,ctrl-_").unwrap(), [0, b'a', 31]);
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("ab").is_err());
    }

    #[test]
    fn the_proxy_catches_every_signal_but_the_uncatchable_and_chld_pipe_urg() {
        let all = caught_signals(true);
        let has = |set: &SigSet, s: i32| unsafe { libc::sigismember(set.as_ref(), s) } == 1;
        for s in [
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGALRM,
            libc::SIGTSTP,
            libc::SIGWINCH,
            34,
            64,
        ] {
            assert!(has(&all, s), "{s}");
        }
        for s in [
            libc::SIGCHLD,
            libc::SIGPIPE,
            libc::SIGURG,
            libc::SIGKILL,
            32,
            33,
        ] {
            assert!(!has(&all, s), "{s}");
        }
        let ignored = caught_signals(false);
        assert!(has(&ignored, libc::SIGTERM) && has(&ignored, 40));
        assert!(!has(&ignored, libc::SIGHUP) && !has(&ignored, libc::SIGTSTP));
    }

    #[test]
    fn the_escape_proxy_holds_a_prefix_and_releases_it_on_a_mismatch() {
        let mut proxy = EscapeProxy::new(vec![16, 17]);
        assert_eq!(proxy.filter(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(proxy.filter(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(proxy.filter(b"d\x10"), (b"d".to_vec(), false));
        assert_eq!(proxy.filter(b"\x11e"), (Vec::new(), true));
    }
}
