//! `minidock daemon`: the Docker Engine API over a unix socket, so the docker CLI drives
//! minidock (`DOCKER_HOST=unix:///run/minidock.sock docker run ...`).
//!
//! Docker's client never touches a container: it sends HTTP requests to the daemon, which does
//! the work. Here every endpoint calls the same library functions as the `minidock` CLI (the
//! CLI stays daemonless, as podman's), so containers and images made through either are the
//! same ones, under the same locks. The HTTP server is hyper on a single-threaded tokio
//! runtime; the library's blocking calls run on tokio's blocking pool.
//!
//! Routes follow the Engine API (<https://docs.docker.com/reference/api/engine/>): a
//! `/v1.NN` prefix is accepted and stripped; the version advertised is
//! [`crate::system::API_VERSION`].
//!
//! Stopping the daemon leaves running containers running: their shims own them.
//!
//! `MINIDOCK_TRACE=FILE` writes a timeline of the requests and of the shims they start
//! ([`trace`]).

pub mod auth;
pub mod build;
pub mod containers;
pub mod error;
pub mod exec;
pub mod images;
pub mod networks;
pub mod registry;
pub mod system;
pub mod tls;
pub mod trace;
pub mod transfer;
pub mod volumes;

use anyhow::{Context, Result, bail};
use error::{ApiError, ApiResult};
use hyper::body::Bytes;
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use crate::container::Paths;

/// The socket `minidock daemon` listens on when no `-H` is given (Docker's).
pub const DEFAULT_HOST: &str = "unix:///run/minidock.sock";

/// `minidock daemon`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DaemonArgs {
    /// Socket to listen on, `unix:///PATH` or `tcp://HOST:PORT` (repeatable). TCP only with
    /// --tlsverify and its certificates: without TLS client certificates a TCP socket would
    /// give root to whoever reaches it.
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    #[command(flatten)]
    pub tls: tls::TlsArgs,
    /// Group that owns the sockets (mode 0660), as Docker's `docker` group.
    #[arg(short = 'G', long = "group", value_name = "GROUP")]
    pub group: Option<String>,
}

/// A response body: all at once, or streamed (logs, wait, pull progress) from a channel whose
/// sender the handler keeps.
pub enum Body {
    Full(Option<Bytes>),
    Stream(tokio::sync::mpsc::Receiver<Bytes>),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(rx) => rx.poll_recv(cx).map(|chunk| match chunk {
                Some(b) => Some(Ok(Frame::data(b))),
                None => {
                    trace::mark(|| "stream end".into());
                    None
                }
            }),
        }
    }
}

/// A request the daemon answers with a connection of its own to a container's shim, once the
/// container starts (`docker run` attaches and waits before it starts the container).
pub struct Pending {
    /// The attach hello's stream bits (`container::attach::WANT_*`; 0: the exit frame only).
    pub wants: u8,
    pub reply: tokio::sync::oneshot::Sender<std::os::unix::net::UnixStream>,
}

/// What every handler shares: the state root and the connections waiting for a start.
pub struct Daemon {
    pub paths: Paths,
    /// The `--root` the daemon was given, for the `minidock` processes it starts (`exec`).
    pub root_arg: Option<PathBuf>,
    pub pending: Mutex<HashMap<String, Vec<Pending>>>,
    /// Exec instances by ID, while their container exists ([`exec::forget_removed`]).
    pub execs: Mutex<HashMap<String, exec::ExecRecord>>,
    /// Connections being served, and how many were ever accepted ([`trim_when_idle`]).
    pub connections: std::sync::atomic::AtomicUsize,
    pub accepted: std::sync::atomic::AtomicU64,
}

pub type Shared = Arc<Daemon>;

/// The parsed query string; a key given twice keeps its last value.
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A boolean parameter as moby's `httputils.BoolValue`: anything but empty, `0`, `no`,
    /// `false` and `none` is true.
    pub fn bool(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| {
            !matches!(
                v.trim().to_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            )
        })
    }

    /// An integer parameter; absent or empty is `None`, anything else that does not parse
    /// is a 400.
    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_parameter(format!("invalid value for {key:?}: {v:?}"))),
        }
    }

    /// `filters` (JSON: `{"key":{"value":true}}`, or the older `{"key":["value"]}`) as the
    /// CLI's `--filter KEY=VALUE` list.
    pub fn filters(&self) -> ApiResult<Vec<String>> {
        let Some(text) = self.get("filters").filter(|t| !t.is_empty()) else {
            return Ok(Vec::new());
        };
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ApiError::bad_parameter(format!("invalid filters: {e}")))?;
        let mut out = Vec::new();
        for (key, values) in value.as_object().into_iter().flatten() {
            match values {
                serde_json::Value::Object(map) => {
                    out.extend(map.keys().map(|v| format!("{key}={v}")));
                }
                serde_json::Value::Array(list) => out.extend(
                    list.iter()
                        .filter_map(|v| v.as_str())
                        .map(|v| format!("{key}={v}")),
                ),
                _ => return Err(ApiError::bad_parameter("invalid filters")),
            }
        }
        Ok(out)
    }

    /// A prune's `filters`, those whose key is one of `taken` (the ones minidock applies).
    /// The others are refused, as ignoring one would remove more than asked for: a key of
    /// `known` (dockerd applies it, minidock does not) as `filter "KEY=VALUE" is not
    /// supported by WHAT`, any other with dockerd's words, `Invalid filter 'KEY'`.
    pub fn prune_filters(
        &self,
        what: &str,
        taken: &[&str],
        known: &[&str],
    ) -> ApiResult<Vec<String>> {
        let filters = self.filters()?;
        for filter in &filters {
            let key = filter.split_once('=').map_or(filter.as_str(), |(k, _)| k);
            if taken.contains(&key) {
                continue;
            }
            if known.contains(&key) {
                return Err(ApiError::bad_parameter(format!(
                    "filter {filter:?} is not supported by {what}"
                )));
            }
            return Err(ApiError::bad_parameter(format!("Invalid filter '{key}'")));
        }
        Ok(filters)
    }
}

/// A JSON response with `status`.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    json_bytes(status, serde_json::to_vec(value).unwrap_or_default())
}

/// A JSON response of `bytes`, serialised already, with the newline Docker's ends with.
pub fn json_bytes(status: StatusCode, mut bytes: Vec<u8>) -> Response<Body> {
    bytes.push(b'\n');
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Body::Full(Some(Bytes::from(bytes))))
        .unwrap_or_else(|_| Response::new(Body::Full(None)))
}

/// An empty response (`204 No Content`, `304 Not Modified`, ...).
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::Full(None));
    *response.status_mut() = status;
    response
}

/// A streamed response: the handler sends chunks into the returned sender; the headers go
/// out at once.
pub fn streamed(content_type: &str) -> (Response<Body>, tokio::sync::mpsc::Sender<Bytes>) {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let response = Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", content_type)
        .body(Body::Stream(rx))
        .unwrap_or_else(|_| Response::new(Body::Full(None)));
    (response, tx)
}

/// A blocking writer into a [`streamed`] response's channel: what is written goes out in
/// chunks of `chunk` bytes (the last one at `flush` or drop). A gone client is `BrokenPipe`.
pub struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buffer: Vec<u8>,
    chunk: usize,
}

impl ChannelWriter {
    /// A writer sending through `tx` in chunks of `chunk` bytes.
    pub fn new(tx: tokio::sync::mpsc::Sender<Bytes>, chunk: usize) -> Self {
        Self {
            tx,
            buffer: Vec::with_capacity(chunk),
            chunk,
        }
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= self.chunk {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        use std::io::Write;
        let _ = self.flush();
    }
}

/// Runs a blocking library call on tokio's blocking pool.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> ApiResult<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("a worker failed: {e}"),
        )),
    }
}

/// Reads a request's whole body (at most 16 MiB) and parses it as JSON; an empty body is
/// `null`.
pub async fn body_json<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> ApiResult<T> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(req.into_body(), 16 << 20);
    let bytes = limited
        .collect()
        .await
        .map_err(|e| ApiError::bad_parameter(format!("reading the request body: {e}")))?
        .to_bytes();
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"null"
    } else {
        &bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_parameter(format!("invalid JSON in the request body: {e}")))
}

/// Reads a request's whole body into an unnamed temp file (a tar of any size, not held in
/// memory), rewound for reading.
pub async fn spool_body(req: Request<Incoming>) -> ApiResult<std::fs::File> {
    use hyper::body::Body as _;
    let failed = |e: std::io::Error| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("temp file: {e}"))
    };
    let mut spool = tempfile::tempfile().map_err(failed)?;
    let mut incoming = req.into_body();
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut incoming).poll_frame(cx)).await
    {
        let frame =
            frame.map_err(|e| ApiError::bad_parameter(format!("reading the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            std::io::Write::write_all(&mut spool, &data).map_err(failed)?;
        }
    }
    std::io::Seek::rewind(&mut spool).map_err(failed)?;
    Ok(spool)
}

// ANCHOR: split_version
/// The API version a path's `/v1.NN` prefix asks for (`None` without one), and the path's
/// other segments.
fn split_version(path: &str) -> (Option<String>, Vec<String>) {
    let mut parts: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect();
    let versioned = parts.first().is_some_and(|first| {
        first
            .strip_prefix('v')
            .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
    });
    let version = if versioned {
        Some(parts.remove(0)[1..].to_owned())
    } else {
        None
    };
    (version, parts)
}
// ANCHOR_END: split_version

// ANCHOR: check_version
/// dockerd's answer to a request whose version prefix is newer than the API it serves: 400,
/// "client version 9.99 is too new. Maximum supported API version is 1.41". Older versions
/// are served (clients that pin an older version get the current shapes).
fn check_version(version: Option<&str>) -> ApiResult<()> {
    let Some(version) = version else {
        return Ok(());
    };
    let numbers = |v: &str| -> Vec<u64> {
        v.split('.')
            .map(|n| n.parse().unwrap_or(u64::MAX))
            .collect()
    };
    if numbers(version) > numbers(crate::system::API_VERSION) {
        return Err(ApiError::bad_parameter(format!(
            "client version {version} is too new. Maximum supported API version is {}",
            crate::system::API_VERSION
        )));
    }
    Ok(())
}
// ANCHOR_END: check_version

// ANCHOR: route
/// Answers one request: the route is the method and the path's segments.
async fn route(daemon: Shared, req: Request<Incoming>) -> ApiResult<Response<Body>> {
    let (version, parts) = split_version(req.uri().path());
    check_version(version.as_deref())?;
    let words: Vec<&str> = parts.iter().map(String::as_str).collect();
    let method = req.method().clone();
    let area = words.first().copied().unwrap_or("");
    let shown = format!("{method} /{}", parts.join("/"));
    route_to(daemon, req, &words).await.map_err(|err| {
        if err == ApiError::not_found_route() && ENGINE_AREAS.contains(&area) {
            return ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                format!("{shown} is not supported by minidock daemon"),
            );
        }
        err
    })
}

/// The Engine API's areas: a route in one of them that minidock does not serve is answered
/// 501 (Docker's "not implemented"), anything else 404.
const ENGINE_AREAS: &[&str] = &[
    "_ping",
    "auth",
    "build",
    "commit",
    "configs",
    "containers",
    "distribution",
    "events",
    "exec",
    "images",
    "info",
    "networks",
    "nodes",
    "plugins",
    "secrets",
    "services",
    "session",
    "swarm",
    "system",
    "tasks",
    "version",
    "volumes",
];
// ANCHOR_END: route

// ANCHOR: route_to
/// The handler for a request's method and path segments (without the version prefix); an
/// unknown route is [`ApiError::not_found_route`].
async fn route_to(
    daemon: Shared,
    req: Request<Incoming>,
    words: &[&str],
) -> ApiResult<Response<Body>> {
    let method = req.method().clone();
    match (words.first().copied(), words.len()) {
        (Some("_ping"), 1) => Ok(system::ping(&method)),
        (Some("version"), 1) if method == Method::GET => system::version().await,
        (Some("info"), 1) if method == Method::GET => system::info(daemon).await,
        (Some("events"), 1) if method == Method::GET => system::events(daemon, &req).await,
        (Some("commit"), 1) if method == Method::POST => transfer::commit(daemon, req).await,
        (Some("system"), 2) if method == Method::GET && words[1] == "df" => {
            system::df(daemon).await
        }
        (Some("auth"), 1) if method == Method::POST => auth::login(daemon, req).await,
        (Some("build"), 1) if method == Method::POST => build::build(daemon, req).await,
        (Some("containers"), _) => containers::route(daemon, req, &words[1..]).await,
        (Some("exec"), _) => exec::route(daemon, req, &words[1..]).await,
        (Some("images"), _) => images::route(daemon, req, &words[1..]).await,
        (Some("networks"), _) => networks::route(daemon, req, &words[1..]).await,
        (Some("volumes"), _) => volumes::route(daemon, req, &words[1..]).await,
        _ => Err(ApiError::not_found_route()),
    }
}
// ANCHOR_END: route_to

/// Every response carries the API version and the server's name, as dockerd's.
async fn handle(
    daemon: Shared,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let shown = trace::enabled().then(|| format!("{} {}", req.method(), req.uri()));
    if let Some(shown) = &shown {
        trace::mark(|| format!("> {shown}"));
    }
    let mut response = route(daemon, req).await.unwrap_or_else(|err| {
        let mut response = json(err.status, &serde_json::json!({ "message": err.message }));
        *response.status_mut() = err.status;
        response
    });
    let headers = response.headers_mut();
    headers.insert(
        "Api-Version",
        hyper::header::HeaderValue::from_static(crate::system::API_VERSION),
    );
    headers.insert(
        "Server",
        hyper::header::HeaderValue::from_static(concat!(
            "minidock/",
            env!("CARGO_PKG_VERSION"),
            " (linux)"
        )),
    );
    if let Some(shown) = &shown {
        trace::mark(|| format!("< {} {shown}", response.status().as_u16()));
    }
    Ok(response)
}

// ANCHOR: default_socket
/// The socket the daemon listens on when no `-H` names one: `/run/minidock.sock`
/// ([`DEFAULT_HOST`]), or for a user other than root [`crate::rootless::daemon_socket`], as
/// rootless dockerd's default is `$XDG_RUNTIME_DIR/docker.sock`.
pub fn default_socket() -> PathBuf {
    if crate::rootless::joined() {
        crate::rootless::daemon_socket()
    } else {
        PathBuf::from(DEFAULT_HOST.trim_start_matches("unix://"))
    }
}
// ANCHOR_END: default_socket

/// The unix socket paths named by `-H` (the default when none); the `tcp://` hosts are
/// [`tls::tcp_addrs`]'.
pub fn socket_paths(hosts: &[String]) -> Result<Vec<PathBuf>> {
    let hosts: Vec<&str> = if hosts.is_empty() {
        vec!["unix://"]
    } else {
        hosts.iter().map(String::as_str).collect()
    };
    hosts
        .into_iter()
        .map(|host| {
            if host.starts_with("tcp://") {
                return Ok(PathBuf::new());
            }
            if let Some(path) = host.strip_prefix("unix://") {
                if path.is_empty() {
                    return Ok(default_socket());
                }
                return Ok(PathBuf::from(path));
            }
            bail!(
                "invalid host {}: use unix:///PATH or tcp://HOST:PORT",
                crate::cli::quote(host)
            )
        })
        .collect::<Result<Vec<PathBuf>>>()
        .map(|mut paths| {
            paths.retain(|p| !p.as_os_str().is_empty());
            paths
        })
}

// ANCHOR: listen
/// Binds a unix socket at `path`, mode 0660, owned by root (rootless: the user, root of its
/// namespace) and `group` when given. A stale socket (nobody accepts on it) is replaced; a
/// live one is refused.
fn listen(path: &Path, group: Option<u32>) -> Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!("{} exists and is not a socket", path.display());
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "another daemon is listening on {}: refusing to replace its socket",
                path.display()
            );
        }
        std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod {}", path.display()))?;
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(0)),
        group.map(nix::unistd::Gid::from_raw),
    )
    .with_context(|| format!("chown {}", path.display()))?;
    listener.set_nonblocking(true)?;
    say_rootless_host(path);
    Ok(listener)
}
// ANCHOR_END: listen

/// Removes the daemon's sockets when it stops.
struct Sockets(Vec<PathBuf>);

impl Drop for Sockets {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn group_id(name: &str) -> Result<u32> {
    if let Ok(gid) = name.parse() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(name).context("reading the group database")? {
        Some(group) => Ok(group.gid.as_raw()),
        None => bail!("no such group: {}", crate::cli::quote(name)),
    }
}

// ANCHOR: serve
/// `minidock daemon`: serves the Engine API on every socket until SIGINT or SIGTERM.
pub fn run(cli_root: Option<&Path>, args: &DaemonArgs) -> Result<u8> {
    // One malloc arena, and blocking threads that end a second after their last call: an
    // idle daemon holds what it needs, not what the last burst of requests took. Blocks of
    // 64 KiB and more (listings, request bodies, hyper's buffers) are mappings of their own,
    // unmapped when freed: a fixed threshold, as glibc's moving one would soon put them in
    // the heap, where one small block left behind pins the pages around it.
    // SAFETY: mallopt(3) only tunes the allocator; the runtime's threads start after it.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 10);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 10);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build()
        .context("starting the async runtime")?;
    // SIGTERM and SIGINT are handled before any socket exists: whoever sees the socket can
    // stop the daemon, and it removes its sockets.
    let (mut term, mut int) = {
        use tokio::signal::unix::{SignalKind, signal};
        let _entered = runtime.enter();
        (
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        )
    };
    let paths = Paths::new(cli_root);
    let sockets = socket_paths(&args.hosts)?;
    let tcp = tls::tcp_addrs(&args.hosts)?;
    let acceptor = tls::acceptor(&args.tls, &tcp)?;
    let mut tcp_listeners = Vec::new();
    for addr in &tcp {
        let listener =
            std::net::TcpListener::bind(addr).with_context(|| format!("binding tcp://{addr}"))?;
        listener.set_nonblocking(true)?;
        tcp_listeners.push(listener);
    }
    let group = args.group.as_deref().map(group_id).transpose()?;
    crate::state::private_dir(&paths.root)?;
    let mut listeners = Vec::new();
    let mut bound = Sockets(Vec::new());
    for path in &sockets {
        listeners.push(listen(path, group)?);
        bound.0.push(path.clone());
    }
    restart_on_start(&paths);
    crate::container::state::enable_cache();
    let root_arg = cli_root.map(|_| paths.root.clone());
    let daemon: Shared = Arc::new(Daemon {
        paths,
        root_arg,
        pending: Mutex::new(HashMap::new()),
        execs: Mutex::new(HashMap::new()),
        connections: Default::default(),
        accepted: Default::default(),
    });
    runtime.block_on(async move {
        for listener in listeners {
            let listener = tokio::net::UnixListener::from_std(listener)?;
            tokio::spawn(accept_loop(listener, daemon.clone()));
        }
        for listener in tcp_listeners {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let acceptor = acceptor.clone().context("TCP without TLS")?;
            tokio::spawn(tls::accept_loop(listener, acceptor, daemon.clone()));
        }
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        anyhow::Ok(())
    })?;
    drop(bound);
    // Handlers still blocked in the library (a `wait`, a followed log) are not waited for.
    runtime.shutdown_background();
    Ok(0)
}

/// Rootless, the startup line says where the daemon listens and how the docker CLI reaches
/// it (as rootless dockerd's setup tool prints `export DOCKER_HOST=...`), because the socket is
/// not the one the CLI looks for by default.
fn say_rootless_host(socket: &Path) {
    if crate::rootless::joined() {
        eprintln!(
            "minidock daemon: rootless, listening on unix://{0}; for the docker CLI: export \
             DOCKER_HOST=unix://{0}",
            socket.display()
        );
    }
}

/// As dockerd at its start: every exited container whose restart policy is `always`, or
/// `unless-stopped` and not stopped by the user, is started again (through the detached start
/// `minidock start` uses). A failure is reported and the others are still started.
fn restart_on_start(paths: &Paths) {
    let containers = match paths.list() {
        Ok(containers) => containers,
        Err(err) => {
            eprintln!("minidock daemon: listing containers: {err:#}");
            return;
        }
    };
    for c in containers {
        let policy = c.config.restart_policy.name.as_str();
        let wanted =
            policy == "always" || (policy == "unless-stopped" && !c.has_been_manually_stopped);
        if !wanted || c.observe() != crate::container::Status::Exited {
            continue;
        }
        if let Err(err) = crate::container::shim::start_detached(paths, &c.id) {
            eprintln!("minidock daemon: restarting container {}: {err:#}", c.id);
        }
    }
}

async fn accept_loop(listener: tokio::net::UnixListener, daemon: Shared) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(serve(stream, daemon.clone()));
    }
}

/// Serves the API on one connection (a unix socket's, or a TCP one after its TLS handshake),
/// with the upgrades `attach` and `exec` hijack it with.
async fn serve<S>(stream: S, daemon: Shared)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use std::sync::atomic::Ordering;
    daemon.connections.fetch_add(1, Ordering::SeqCst);
    daemon.accepted.fetch_add(1, Ordering::SeqCst);
    let shared = daemon.clone();
    let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .with_upgrades()
        .await;
    if daemon.connections.fetch_sub(1, Ordering::SeqCst) == 1 {
        tokio::spawn(trim_when_idle(daemon));
    }
}

/// How long a blocking-pool thread waits for another call before it ends.
const BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(1);

/// Once no connection came for a quarter of a second more than the blocking threads' keep-alive
/// after the last one ended, gives the allocator's free memory back to the kernel
/// (malloc_trim(3)), so an idle daemon's resident memory does not keep the high-water mark of
/// the requests before. The wait outlives the blocking threads: each frees its cache of small
/// blocks (glibc's tcache) into the heap as it ends, and a trim before that would leave those
/// pages resident.
async fn trim_when_idle(daemon: Shared) {
    use std::sync::atomic::Ordering;
    let seen = daemon.accepted.load(Ordering::SeqCst);
    tokio::time::sleep(BLOCKING_KEEP_ALIVE + std::time::Duration::from_millis(250)).await;
    if daemon.connections.load(Ordering::SeqCst) == 0
        && daemon.accepted.load(Ordering::SeqCst) == seen
    {
        // SAFETY: malloc_trim(3) takes a size and touches only the allocator's own state.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
// ANCHOR_END: serve

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(path: &str) -> Vec<String> {
        split_version(path).1
    }

    #[test]
    fn the_version_prefix_is_stripped() {
        assert_eq!(segments("/v1.41/containers/json"), ["containers", "json"]);
        assert_eq!(
            segments("/containers/a%2Fb/json"),
            ["containers", "a/b", "json"]
        );
        assert_eq!(segments("/_ping"), ["_ping"]);
        assert_eq!(segments("/version"), ["version"]);
    }

    #[test]
    fn a_newer_version_than_served_is_refused() {
        assert!(check_version(Some("1.41")).is_ok());
        assert!(check_version(Some("1.24")).is_ok());
        assert!(check_version(None).is_ok());
        let err = check_version(Some("9.99")).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            err.message,
            "client version 9.99 is too new. Maximum supported API version is 1.41"
        );
        assert!(check_version(Some("1.100")).is_err());
    }

    #[test]
    fn tcp_is_left_to_tls_and_unix_paths_are_read() {
        assert!(
            socket_paths(&["tcp://0.0.0.0:2375".into()])
                .unwrap()
                .is_empty()
        );
        let err = socket_paths(&["http://x".into()]).unwrap_err();
        assert!(err.to_string().contains("invalid host"), "{err}");
        assert_eq!(
            socket_paths(&["unix:///tmp/x.sock".into()]).unwrap(),
            [PathBuf::from("/tmp/x.sock")]
        );
        assert_eq!(
            socket_paths(&[]).unwrap(),
            [PathBuf::from("/run/minidock.sock")]
        );
    }

    #[test]
    fn filters_become_the_clis_flags() {
        let q = Query::parse(Some(
            "filters=%7B%22name%22%3A%7B%22web%22%3Atrue%7D%7D&all=1",
        ));
        assert_eq!(q.filters().unwrap(), ["name=web"]);
        assert!(q.bool("all"));
        assert!(!q.bool("size"));
    }
}
