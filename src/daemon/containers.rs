//! `/containers/...`: the container endpoints, each a call of the library the CLI uses.

use super::error::{ApiError, ApiResult};
use super::{Body, Pending, Query, Shared, blocking, empty, json, json_bytes, streamed};
use crate::container::attach::{self, EscapeProxy};
use crate::container::{self, ContainerState, CreateOptions, Status, spec::RunOptions};
use anyhow::{Context, Result};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json as object};
use std::collections::BTreeMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Routes `/containers/REST`.
pub async fn route(
    daemon: Shared,
    req: Request<Incoming>,
    rest: &[&str],
) -> ApiResult<Response<Body>> {
    let query = Query::parse(req.uri().query());
    let method = req.method().clone();
    match (method, rest) {
        (Method::GET, ["json"]) => list(daemon, &query).await,
        (Method::POST, ["prune"]) => prune(daemon, &query).await,
        (Method::GET, [id, "export"]) => export(daemon, id).await,
        (Method::GET, [id, "stats"]) => stats(daemon, id, &query).await,
        (Method::HEAD, [id, "archive"]) => archive_stat(daemon, id, &query, false).await,
        (Method::GET, [id, "archive"]) => archive_stat(daemon, id, &query, true).await,
        (Method::PUT, [id, "archive"]) => archive_put(daemon, id, &query, req).await,
        (Method::POST, [id, "update"]) => update(daemon, id, req).await,
        (Method::POST, ["create"]) => create(daemon, &query, req).await,
        (Method::GET, [id, "json"]) => inspect(daemon, id).await,
        (Method::POST, [id, "start"]) => start(daemon, id).await,
        (Method::POST, [id, "stop"]) => stop(daemon, id, &query).await,
        (Method::POST, [id, "restart"]) => restart(daemon, id, &query).await,
        (Method::POST, [id, "kill"]) => kill(daemon, id, &query).await,
        (Method::POST, [id, "wait"]) => wait(daemon, id, &query).await,
        (Method::DELETE, [id]) => remove(daemon, id, &query).await,
        (Method::GET, [id, "logs"]) => logs(daemon, id, &query).await,
        (Method::POST, [id, "attach"]) => attach(daemon, id, &query, req).await,
        (Method::POST, [id, "resize"]) => resize(daemon, id, &query).await,
        (Method::GET, [id, "top"]) => top(daemon, id, &query).await,
        (Method::GET, [id, "changes"]) => changes(daemon, id).await,
        (Method::POST, [id, "rename"]) => rename(daemon, id, &query).await,
        (Method::POST, [id, "exec"]) => {
            let id = id.to_string();
            super::exec::create(daemon, &id, req).await
        }
        (Method::POST, [id, "pause"]) => pause(daemon, id, true).await,
        (Method::POST, [id, "unpause"]) => pause(daemon, id, false).await,
        _ => Err(ApiError::not_found_route()),
    }
}

/// Finds a container by name, ID or ID prefix (404 with Docker's words).
async fn resolve(daemon: &Shared, name: &str) -> ApiResult<ContainerState> {
    let d = daemon.clone();
    let wanted = name.to_owned();
    blocking(move || d.paths.resolve(&wanted)).await
}

// ANCHOR: list
/// `GET /containers/json`: `ps`'s selection (`all`, `limit`, `filters`), each container as
/// Docker's summary, with `size` its `SizeRw` and `SizeRootFs`.
async fn list(daemon: Shared, query: &Query) -> ApiResult<Response<Body>> {
    let filters = query.filters()?;
    let all = query.bool("all");
    let size = query.bool("size");
    let last = query.int("limit")?.filter(|n| *n > 0).map(|n| n as usize);
    let body = blocking(move || {
        container::state::snapshot(|| {
            let selected = container::cli::select(&daemon.paths, &filters, all, last)?;
            let now = std::time::SystemTime::now();
            let mut rows = Vec::new();
            for c in &selected {
                let mut row = summary(&daemon.paths, c, now);
                if size {
                    // Go's `omitempty`: a zero is left out.
                    let (rw, rootfs) = container::cli::sizes(&daemon.paths, c)?;
                    row.size_rw = (rw > 0).then_some(rw);
                    row.size_root_fs = (rootfs > 0).then_some(rootfs);
                }
                rows.push(row);
            }
            Ok(serde_json::to_vec(&rows)?)
        })
    })
    .await
    .map_err(|mut err| {
        // dockerd's 400s are the filters it does not know; a value that does not parse is
        // its 500.
        if err.status == StatusCode::INTERNAL_SERVER_ERROR
            && err.message.starts_with("Invalid filter")
        {
            err.status = StatusCode::BAD_REQUEST;
        }
        err
    })?;
    Ok(json_bytes(StatusCode::OK, body))
}
// ANCHOR_END: list

/// One container as the API's list shows it (moby's `types.Container`), its keys in
/// alphabetical order as the API has always written them.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Summary<'a> {
    command: String,
    /// Seconds since the epoch.
    created: u64,
    host_config: NetworkMode,
    id: &'a str,
    image: &'a str,
    #[serde(rename = "ImageID")]
    image_id: &'a str,
    labels: &'a BTreeMap<String, String>,
    /// Each mount as an object with its keys in alphabetical order.
    mounts: Value,
    names: [String; 1],
    network_settings: Networks,
    ports: Vec<Port>,
    /// Bytes of the image and the container's layer, with `size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<u64>,
    /// Bytes written in the container's layer, with `size` and in `system df`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<u64>,
    state: &'static str,
    status: String,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkMode {
    network_mode: String,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Networks {
    networks: BTreeMap<String, container::inspect::Endpoint>,
}

/// A published port (with `IP` and `PublicPort`) or an exposed one (without).
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Port {
    #[serde(rename = "IP", skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    private_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_port: Option<u16>,
    #[serde(rename = "Type")]
    kind: String,
}

/// One container as the API's list shows it (moby's `types.Container`).
pub(super) fn summary<'a>(
    paths: &container::Paths,
    c: &'a ContainerState,
    now: std::time::SystemTime,
) -> Summary<'a> {
    let created = crate::state::parse_rfc3339(&c.created)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let network = container::network::Mode::of(&c.config).network_name();
    Summary {
        command: container::cli::ps_command(c),
        created,
        host_config: NetworkMode {
            network_mode: network,
        },
        id: &c.id,
        image: &c.image,
        image_id: &c.image_id,
        labels: &c.config.labels,
        mounts: serde_json::to_value(&c.config.mounts).unwrap_or_default(),
        names: [format!("/{}", c.name)],
        network_settings: Networks {
            networks: container::inspect::networks(paths, c),
        },
        ports: ports(paths, c),
        size_root_fs: None,
        size_rw: None,
        state: container::filter::state_name(c),
        status: container::cli::status_text(c, now),
    }
}

/// The container's ports: each binding of a published port, and each exposed port alone.
fn ports(paths: &container::Paths, c: &ContainerState) -> Vec<Port> {
    let att = container::network::attachment(paths, &c.id);
    let ports = container::network::settings_ports(&c.config, att.as_ref());
    let mut port_list = Vec::new();
    for (key, bindings) in ports {
        let (number, proto) = key.split_once('/').unwrap_or((&key, "tcp"));
        let private: u16 = number.parse().unwrap_or(0);
        match bindings {
            Some(list) if !list.is_empty() => {
                for b in list {
                    port_list.push(Port {
                        ip: Some(b.host_ip),
                        private_port: private,
                        public_port: Some(b.host_port.parse::<u16>().unwrap_or(0)),
                        kind: proto.to_owned(),
                    });
                }
            }
            _ => port_list.push(Port {
                ip: None,
                private_port: private,
                public_port: None,
                kind: proto.to_owned(),
            }),
        }
    }
    port_list
}

async fn inspect(daemon: Shared, id: &str) -> ApiResult<Response<Body>> {
    let state = resolve(&daemon, id).await?;
    // The record itself, not a `Value`: its fields keep Docker's order.
    let record = blocking(move || Ok(container::inspect::inspect(&daemon.paths, &state))).await?;
    Ok(json(StatusCode::OK, &record))
}

/// Docker's `StrSlice`: a string or a list of strings.
fn str_slice(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(list) => Some(
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct PortBindingBody {
    host_ip: Option<String>,
    host_port: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct RestartPolicyBody {
    name: Option<String>,
    maximum_retry_count: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct MountBody {
    #[serde(rename = "Type")]
    kind: Option<String>,
    source: Option<String>,
    target: Option<String>,
    read_only: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct HostConfigBody {
    binds: Option<Vec<String>>,
    network_mode: Option<String>,
    port_bindings: Option<BTreeMap<String, Option<Vec<PortBindingBody>>>>,
    restart_policy: Option<RestartPolicyBody>,
    auto_remove: Option<bool>,
    volumes_from: Option<Vec<String>>,
    cap_add: Option<Vec<String>>,
    cap_drop: Option<Vec<String>>,
    dns: Option<Vec<String>>,
    dns_search: Option<Vec<String>>,
    extra_hosts: Option<Vec<String>>,
    group_add: Option<Vec<String>>,
    privileged: Option<bool>,
    publish_all_ports: Option<bool>,
    readonly_rootfs: Option<bool>,
    security_opt: Option<Vec<String>>,
    tmpfs: Option<BTreeMap<String, String>>,
    memory: Option<i64>,
    nano_cpus: Option<i64>,
    pids_limit: Option<i64>,
    init: Option<bool>,
    mounts: Option<Vec<MountBody>>,
    /// The fields minidock does not apply: refused unless unset ([`unsupported_field`]).
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct EndpointBody {
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<BTreeMap<String, Value>>,
    aliases: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct NetworkingBody {
    endpoints_config: Option<BTreeMap<String, Option<EndpointBody>>>,
}

// ANCHOR: create_body
/// The fields of Docker's `ContainerCreateRequest` that minidock's `create` takes.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct CreateBody {
    hostname: Option<String>,
    user: Option<String>,
    env: Option<Vec<String>>,
    cmd: Value,
    entrypoint: Value,
    image: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    working_dir: Option<String>,
    tty: Option<bool>,
    open_stdin: Option<bool>,
    stop_signal: Option<String>,
    stop_timeout: Option<i64>,
    exposed_ports: Option<BTreeMap<String, Value>>,
    host_config: Option<HostConfigBody>,
    networking_config: Option<NetworkingBody>,
    /// `-v /PATH` without a source: the paths that get an anonymous volume.
    volumes: Option<BTreeMap<String, Value>>,
    healthcheck: Option<Value>,
}
// ANCHOR_END: create_body

/// `NanoCpus` as `--cpus` writes it: `1.5` for 1500000000.
fn cpus_text(nanos: i64) -> String {
    let whole = nanos / 1_000_000_000;
    let fraction = format!("{:09}", nanos % 1_000_000_000);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{fraction}")
    }
}

/// `-p` values for `PortBindings`: `IP:HOST:PORT/PROTO`, `HOST:PORT/PROTO` or `PORT/PROTO`.
fn publish_flags(bindings: &BTreeMap<String, Option<Vec<PortBindingBody>>>) -> Vec<String> {
    let mut out = Vec::new();
    for (port, list) in bindings {
        for b in list.iter().flatten() {
            let ip = b.host_ip.as_deref().unwrap_or("");
            let host = b.host_port.as_deref().unwrap_or("");
            out.push(match (ip, host) {
                ("", "") => port.clone(),
                ("", host) => format!("{host}:{port}"),
                (ip, host) => format!("{ip}:{host}:{port}"),
            });
        }
    }
    out
}

/// `--mount` values for `HostConfig.Mounts`.
fn mount_flags(mounts: &[MountBody]) -> Vec<String> {
    mounts
        .iter()
        .map(|m| {
            let mut parts = vec![format!("type={}", m.kind.as_deref().unwrap_or("volume"))];
            if let Some(source) = m.source.as_deref().filter(|s| !s.is_empty()) {
                parts.push(format!("source={source}"));
            }
            parts.push(format!("target={}", m.target.as_deref().unwrap_or("")));
            if m.read_only == Some(true) {
                parts.push("readonly".into());
            }
            parts.join(",")
        })
        .collect()
}

// ANCHOR: create_options
/// The request as `create`'s options: the body's fields are the CLI's flags after the docker
/// CLI parsed them, so each becomes the flag it came from.
/// What dockerd refuses before it looks at the image (`verifyContainerSettings`), in its
/// order and words: a memory limit that is negative or under 6 MiB, a CPU limit out of
/// range, a restart policy with a retry count it cannot take (negative, or with a policy
/// other than `on-failure`) or an unknown name.
fn check_host_config(host: Option<&HostConfigBody>) -> ApiResult<()> {
    if let Some(field) = host.and_then(|h| unsupported_field(&h.other)) {
        return Err(ApiError::bad_parameter(format!(
            "HostConfig.{field} is not supported by minidock"
        )));
    }
    let memory = host.and_then(|h| h.memory).unwrap_or(0);
    if memory < 0 || (memory > 0 && memory < crate::cgroup::MIN_MEMORY as i64) {
        return Err(ApiError::bad_parameter(
            "Minimum memory limit allowed is 6MB",
        ));
    }
    if let Some(nanos) = host.and_then(|h| h.nano_cpus).filter(|n| *n != 0) {
        container::cli::check_nano_cpus(nanos)
            .map_err(|e| ApiError::bad_parameter(e.to_string()))?;
    }
    let policy = host.and_then(|h| h.restart_policy.as_ref());
    if let Some(name) = policy
        .and_then(|p| p.name.as_deref())
        .filter(|n| !n.is_empty())
    {
        let text = match policy.and_then(|p| p.maximum_retry_count).unwrap_or(0) {
            0 => name.to_owned(),
            count => format!("{name}:{count}"),
        };
        container::state::RestartPolicy::parse(&text).map_err(ApiError::bad_parameter)?;
    }
    Ok(())
}

/// A health check (`--health-cmd`, compose's `healthcheck:`) is refused: minidock runs
/// none, and a container reported without its health would mislead. `NONE` (no check) is
/// taken.
fn check_healthcheck(healthcheck: Option<&Value>) -> ApiResult<()> {
    let test = healthcheck
        .and_then(|h| h.get("Test"))
        .and_then(Value::as_array)
        .filter(|test| !test.is_empty());
    match test {
        Some(test) if test[0] != "NONE" => Err(ApiError::bad_parameter(
            "Config.Healthcheck is not supported by minidock",
        )),
        _ => Ok(()),
    }
}

/// The first field of `other` (the host config's fields that minidock does not apply:
/// `CpuShares`, `Ulimits`, `ShmSize`, `PidMode`, `LogConfig`'s options...) whose value asks
/// for something: `None` when each is unset as the docker CLI sends it (null, false, 0, "",
/// empty, `MemorySwappiness` -1) or names what minidock does anyway (the `json-file` log
/// driver, `private` or `shareable` IPC, the `default` isolation, the `host` user namespace).
/// The client-side `ContainerIDFile` and the first terminal size, `ConsoleSize`, are let
/// through. Accepting the others would leave a container without what was asked, silently.
fn unsupported_field(other: &BTreeMap<String, Value>) -> Option<&str> {
    fn unset(value: &Value) -> bool {
        match value {
            Value::Null | Value::Bool(false) => true,
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::String(s) => s.is_empty(),
            Value::Array(list) => list.iter().all(unset),
            Value::Object(map) => map.values().all(unset),
            Value::Bool(true) => false,
        }
    }
    other
        .iter()
        .find(|(key, value)| {
            let done_anyway = match (key.as_str(), value.as_str()) {
                ("ContainerIDFile" | "ConsoleSize", _) => true,
                ("MemorySwappiness", _) => value.as_i64() == Some(-1),
                ("IpcMode", Some(mode)) => matches!(mode, "private" | "shareable"),
                ("Isolation", Some(isolation)) => isolation == "default",
                ("UsernsMode", Some(mode)) => mode == "host",
                ("LogConfig", _) => {
                    value.get("Type").and_then(Value::as_str) == Some("json-file")
                        && value.get("Config").is_none_or(unset)
                }
                _ => false,
            };
            !done_anyway && !unset(value)
        })
        .map(|(key, _)| key.as_str())
}

/// The volumes of a create request: the binds (`-v SOURCE:/PATH`), then an anonymous volume
/// (`-v /PATH`) for each path of `Config.Volumes` that no bind or mount already targets.
fn volume_flags(
    binds: Vec<String>,
    anonymous: Option<BTreeMap<String, Value>>,
    mounts: &[MountBody],
) -> Vec<String> {
    let targeted = |path: &str| {
        binds
            .iter()
            .any(|b| b.split(':').nth(1).is_some_and(|target| target == path))
            || mounts.iter().any(|m| m.target.as_deref() == Some(path))
    };
    let paths: Vec<String> = anonymous
        .unwrap_or_default()
        .into_keys()
        .filter(|path| !targeted(path))
        .collect();
    binds.into_iter().chain(paths).collect()
}

fn create_options(body: CreateBody, name: Option<String>) -> CreateOptions {
    let host = body.host_config.unwrap_or_default();
    let mut command = str_slice(&body.cmd).unwrap_or_default();
    let entrypoint = str_slice(&body.entrypoint).map(|mut words| {
        if words.len() > 1 {
            let rest: Vec<String> = words.drain(1..).collect();
            command.splice(0..0, rest);
        }
        words.into_iter().next().unwrap_or_default()
    });
    let endpoint = body
        .networking_config
        .and_then(|n| n.endpoints_config)
        .and_then(|e| e.into_values().next().flatten())
        .unwrap_or_default();
    let ip = endpoint
        .ipam_config
        .as_ref()
        .and_then(|c| c.get("IPv4Address"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let restart = host.restart_policy.unwrap_or_default();
    let restart = match (
        restart.name.as_deref().unwrap_or(""),
        restart.maximum_retry_count,
    ) {
        ("", _) => "no".to_owned(),
        ("on-failure", Some(n)) if n > 0 => format!("on-failure:{n}"),
        (name, _) => name.to_owned(),
    };
    let network = host
        .network_mode
        .filter(|m| !m.is_empty() && m != "default");
    let text = |s: Option<String>| s.filter(|s| !s.is_empty());
    CreateOptions {
        build_step: false,
        image: body.image.unwrap_or_default(),
        name: name.filter(|n| !n.is_empty()),
        run: RunOptions {
            command,
            entrypoint,
            env: body.env.unwrap_or_default(),
            workdir: text(body.working_dir),
            user: text(body.user),
            group_add: host.group_add.unwrap_or_default(),
            hostname: text(body.hostname),
            memory: host.memory.filter(|m| *m > 0).map(|m| m.to_string()),
            cpus: host.nano_cpus.filter(|n| *n > 0).map(cpus_text),
            pids_limit: host.pids_limit.filter(|n| *n != 0),
            volumes: volume_flags(
                host.binds.unwrap_or_default(),
                body.volumes,
                host.mounts.as_deref().unwrap_or_default(),
            ),
            mounts: mount_flags(host.mounts.as_deref().unwrap_or_default()),
            tmpfs: host
                .tmpfs
                .unwrap_or_default()
                .into_iter()
                .map(|(path, opts)| {
                    if opts.is_empty() {
                        path
                    } else {
                        format!("{path}:{opts}")
                    }
                })
                .collect(),
            volumes_from: host.volumes_from.unwrap_or_default(),
            read_only: host.readonly_rootfs.unwrap_or(false),
            network,
            cap_add: host.cap_add.unwrap_or_default(),
            cap_drop: host.cap_drop.unwrap_or_default(),
            security_opt: host.security_opt.unwrap_or_default(),
            privileged: host.privileged.unwrap_or(false),
            tty: body.tty.unwrap_or(false),
            interactive: body.open_stdin.unwrap_or(false),
            auto_remove: host.auto_remove.unwrap_or(false),
            restart,
            labels: body
                .labels
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            stop_signal: text(body.stop_signal),
            stop_timeout: body.stop_timeout,
            init: host.init.unwrap_or(false),
            publish: publish_flags(&host.port_bindings.unwrap_or_default()),
            // The docker CLI sends `--expose` one port at a time, with the published ones.
            expose: body.exposed_ports.unwrap_or_default().into_keys().collect(),
            publish_all: host.publish_all_ports.unwrap_or(false),
            dns: host.dns.unwrap_or_default(),
            dns_search: host.dns_search.unwrap_or_default(),
            add_host: host.extra_hosts.unwrap_or_default(),
            ip,
            network_alias: endpoint.aliases.unwrap_or_default(),
            ..RunOptions::default()
        },
        supervised: false,
    }
}
// ANCHOR_END: create_options

// ANCHOR: create
/// `POST /containers/create?name=NAME`: 404 `No such image` when the image is not in the
/// store (the CLI then pulls it and asks again), else `create`, answering 201 with the ID.
async fn create(
    daemon: Shared,
    query: &Query,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let body: CreateBody = super::body_json::<Option<CreateBody>>(req)
        .await?
        .unwrap_or_default();
    check_host_config(body.host_config.as_ref())?;
    check_healthcheck(body.healthcheck.as_ref())?;
    let options = create_options(body, query.get("name").map(str::to_owned));
    if options.image.is_empty() {
        return Err(ApiError::bad_parameter(
            "config cannot be empty in order to create a container",
        ));
    }
    let image = options.image.clone();
    let d = daemon.clone();
    let known = blocking(move || {
        let store = crate::image::store::Store::open(&d.paths.root)?;
        Ok(store.resolve(&image).is_ok())
    })
    .await?;
    if !known {
        let shown = crate::image::reference::Reference::parse(&options.image)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| options.image.clone());
        return Err(ApiError::no_such_image(&shown));
    }
    let state = tokio::task::spawn_blocking(move || container::create(&daemon.paths, &options))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|err| create_error(&err))?;
    Ok(json(
        StatusCode::CREATED,
        &object!({ "Id": state.id, "Warnings": [] }),
    ))
}
// ANCHOR_END: create

/// A refused `create` once the image was found: a 404 then names something else the request
/// refers to (a network, the container of `--volumes-from` or `--network container:NAME`),
/// which dockerd answers 400, as a 404 would make the docker CLI pull the image and try again.
fn create_error(err: &anyhow::Error) -> ApiError {
    match ApiError::from_input(err) {
        e if e.status == StatusCode::NOT_FOUND => ApiError::bad_parameter(e.message),
        e => e,
    }
}

// ANCHOR: start
/// Starts container `id` under a detached shim. The connections that were waiting for this
/// start (an attach, a wait) are made now: the shim is told how many to wait for before it
/// copies any output ([`attach::FIRST_CLIENTS`]), so they miss nothing.
pub async fn start_container(daemon: &Shared, id: &str) -> ApiResult<()> {
    let waiting: Vec<Pending> = daemon
        .pending
        .lock()
        .map(|mut p| p.remove(id).unwrap_or_default())
        .unwrap_or_default();
    let d = daemon.clone();
    let owned = id.to_owned();
    blocking(move || start_and_connect(&d.paths, &owned, waiting)).await
}

/// One blocking step: announces the `waiting` connections to the shim, starts it, and makes
/// them once it answered (the container runs, or already ran: the shim holds its output
/// until they came).
fn start_and_connect(paths: &container::Paths, id: &str, waiting: Vec<Pending>) -> Result<()> {
    let marker = paths.dir(id).join(attach::FIRST_CLIENTS);
    if !waiting.is_empty() {
        std::fs::write(&marker, waiting.len().to_string())
            .with_context(|| format!("writing {}", marker.display()))?;
    }
    if let Err(err) = container::shim::start_detached(paths, id) {
        let _ = std::fs::remove_file(&marker);
        return Err(err);
    }
    for pending in waiting {
        if let Ok(stream) = attach::connect_wanting(paths, id, pending.wants) {
            let _ = pending.reply.send(stream);
        }
    }
    Ok(())
}
// ANCHOR_END: start

async fn start(daemon: Shared, id: &str) -> ApiResult<Response<Body>> {
    let state = resolve(&daemon, id).await?;
    container::check_not_paused(&state)
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, format!("{e:#}")))?;
    if state.observe() == Status::Running {
        return Ok(empty(StatusCode::NOT_MODIFIED));
    }
    start_container(&daemon, &state.id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

fn signal_of(query: &Query) -> ApiResult<Option<crate::runtime::signal::Signal>> {
    query
        .get("signal")
        .filter(|s| !s.is_empty())
        .map(|s| {
            crate::runtime::signal::Signal::parse(s)
                .map_err(|e| ApiError::bad_parameter(format!("{e:#}")))
        })
        .transpose()
}

fn timeout_of(query: &Query) -> ApiResult<Option<std::time::Duration>> {
    Ok(query.int("t")?.map(|t| {
        if t < 0 {
            std::time::Duration::from_secs(u64::from(u32::MAX))
        } else {
            std::time::Duration::from_secs(t as u64)
        }
    }))
}

async fn stop(daemon: Shared, id: &str, query: &Query) -> ApiResult<Response<Body>> {
    let (timeout, signal) = (timeout_of(query)?, signal_of(query)?);
    let state = resolve(&daemon, id).await?;
    if state.observe() != Status::Running {
        return Ok(empty(StatusCode::NOT_MODIFIED));
    }
    blocking(move || container::stop(&daemon.paths, &state.id, timeout, signal)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn restart(daemon: Shared, id: &str, query: &Query) -> ApiResult<Response<Body>> {
    let (timeout, signal) = (timeout_of(query)?, signal_of(query)?);
    let state = resolve(&daemon, id).await?;
    let d = daemon.clone();
    let owned = state.id.clone();
    blocking(move || container::stop(&d.paths, &owned, timeout, signal)).await?;
    start_container(&daemon, &state.id).await?;
    crate::events::container(&daemon.paths, &state, "restart", &[]);
    Ok(empty(StatusCode::NO_CONTENT))
}

/// What dockerd 20.10 makes of `kill`'s `signal` (moby's `signal.ParseSignal`, then
/// `ValidSignalForPlatform`): a decimal number (sign allowed), or a name with or without
/// `SIG` in any case. 0 and unknown names are a 400, `Invalid signal: TEXT`, before the
/// container is looked at; a number Linux has no signal for is `Err(Some(n))`, the `n`
/// (as Go's uint64) dockerd's 500 names once the container is found.
fn kill_signal(text: &str) -> Result<crate::runtime::signal::Signal, Option<u64>> {
    use crate::runtime::signal::{SIGRTMIN, Signal};
    let number = text
        .strip_prefix('+')
        .filter(|t| !t.starts_with(['+', '-']))
        .unwrap_or(text)
        .parse::<i64>();
    match number {
        Ok(0) => Err(None),
        Ok(n) if (1..32).contains(&n) || (i64::from(SIGRTMIN)..=64).contains(&n) => {
            Signal::from_number(n as i32).map_err(|_| Some(n as u64))
        }
        Ok(n) => Err(Some(n as u64)),
        Err(_) => Signal::parse(text).map_err(|_| None),
    }
}

/// `POST /containers/ID/kill?signal=`: dockerd's words for each refusal, behind its
/// `Cannot kill container: NAME: ` (see [`kill_signal`]).
async fn kill(daemon: Shared, id: &str, query: &Query) -> ApiResult<Response<Body>> {
    let raw = query.get("signal").unwrap_or("");
    let signal = match raw {
        "" => Ok(crate::runtime::signal::Signal::KILL),
        text => kill_signal(text),
    };
    if let Err(None) = signal {
        return Err(ApiError::bad_parameter(format!("Invalid signal: {raw}")));
    }
    let cannot = |message: String| format!("Cannot kill container: {id}: {message}");
    let state = resolve(&daemon, id).await.map_err(|mut err| {
        err.message = cannot(err.message);
        err
    })?;
    let signal = signal.map_err(|number| {
        let shown = number.unwrap_or_default();
        let message = format!("The linux daemon does not support signal {shown}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, cannot(message))
    })?;
    if state.observe() != Status::Running {
        let message = format!("Container {} is not running", state.id);
        return Err(ApiError::new(StatusCode::CONFLICT, cannot(message)));
    }
    blocking(move || container::kill(&daemon.paths, &state.id, signal)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn remove(daemon: Shared, id: &str, query: &Query) -> ApiResult<Response<Body>> {
    let (force, volumes) = (query.bool("force"), query.bool("v"));
    let state = resolve(&daemon, id).await?;
    if state.observe() == Status::Running && !force {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            container::remove_refusal(&state),
        ));
    }
    let d = daemon.clone();
    blocking(move || {
        container::remove_with_volumes(&d.paths, &state.id, force, volumes)?;
        container::state::forget_cached(&d.paths, &state.id);
        Ok(())
    })
    .await?;
    super::exec::forget_removed(&daemon);
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Registers a connection to be made when container `id` starts: by this daemon
/// ([`start_container`]), or by anyone else (`minidock start`), which
/// [`watch_external_start`] notices.
fn register(
    daemon: &Shared,
    id: &str,
    wants: u8,
) -> tokio::sync::oneshot::Receiver<std::os::unix::net::UnixStream> {
    let (reply, rx) = tokio::sync::oneshot::channel();
    let mut first = false;
    if let Ok(mut pending) = daemon.pending.lock() {
        let list = pending.entry(id.to_owned()).or_default();
        first = list.is_empty();
        list.push(Pending { wants, reply });
    }
    if first {
        let started_at = ContainerState::load(&daemon.paths, id)
            .ok()
            .flatten()
            .map(|s| s.started_at)
            .unwrap_or_default();
        tokio::spawn(watch_external_start(
            daemon.clone(),
            id.to_owned(),
            started_at,
        ));
    }
    rx
}

// ANCHOR: watch_external_start
/// While connections wait for container `id` to start, looks at its state each time its
/// directory changes (inotify: a `state.json` renamed in, the directory removed; and once a
/// second in case an event is missed): once something other than this daemon started it
/// (`minidock start`; its `StartedAt` moved on from `started_at`, or it runs), the waiting
/// connections are made to its shim now, and see its output from then on. One that exited
/// already gets no connection: a `wait` then reads the recorded exit code, an attach ends.
/// A container removed meanwhile drops them.
async fn watch_external_start(daemon: Shared, id: String, started_at: String) {
    // Watching before the first look: a start between the two is not missed.
    let watch = DirWatch::new(&daemon.paths.dir(&id), DirWatch::REPLACED).ok();
    loop {
        let still_waiting = daemon
            .pending
            .lock()
            .is_ok_and(|p| p.get(&id).is_some_and(|l| !l.is_empty()));
        if !still_waiting {
            return;
        }
        let (d, owned) = (daemon.clone(), id.clone());
        let state = blocking(move || ContainerState::load(&d.paths, &owned)).await;
        let started = match &state {
            Ok(Some(s)) => s.observe() == Status::Running || s.started_at != started_at,
            Ok(None) => true,
            Err(_) => false,
        };
        if !started {
            changed_or_second(watch.as_ref()).await;
            continue;
        }
        let waiting: Vec<Pending> = daemon
            .pending
            .lock()
            .map(|mut p| p.remove(&id).unwrap_or_default())
            .unwrap_or_default();
        return connect_when_served(daemon, id, waiting).await;
    }
}
// ANCHOR_END: watch_external_start

/// Connects `waiting` to the shim of container `id`, which another process started. Its
/// state says it runs a moment before the shim listens on its attach socket, so while the
/// container runs, a refused connection is tried again each time its runtime directory gets
/// a new entry (inotify; or after a second), ten times at most. Those never connected are
/// dropped: a `wait` then reads the recorded exit code, an attach ends.
async fn connect_when_served(daemon: Shared, id: String, mut waiting: Vec<Pending>) {
    let dir = daemon.paths.runtime_root.join(&id);
    let watch = DirWatch::new(&dir, libc::IN_CREATE | libc::IN_MOVED_TO).ok();
    for _ in 0..10 {
        let (d, owned) = (daemon.clone(), id.clone());
        let tried = tokio::task::spawn_blocking(move || connect_all(&d.paths, &owned, waiting));
        let Ok((left, running)) = tried.await else {
            return;
        };
        if left.is_empty() || !running {
            return;
        }
        waiting = left;
        changed_or_second(watch.as_ref()).await;
    }
}

/// Connects each of `waiting` to the shim of container `id`; returns those refused, and
/// whether the container runs (when some were).
fn connect_all(paths: &container::Paths, id: &str, waiting: Vec<Pending>) -> (Vec<Pending>, bool) {
    let mut left = Vec::new();
    for pending in waiting {
        match attach::connect_wanting(paths, id, pending.wants) {
            Ok(stream) => {
                let _ = pending.reply.send(stream);
            }
            Err(_) => left.push(pending),
        }
    }
    let running = !left.is_empty()
        && ContainerState::load(paths, id)
            .ok()
            .flatten()
            .is_some_and(|s| s.observe() == Status::Running);
    (left, running)
}

/// Waits for an event of `watch` or a second; 50 ms without a watch (inotify refused).
async fn changed_or_second(watch: Option<&DirWatch>) {
    match watch {
        Some(watch) => watch.changed(std::time::Duration::from_secs(1)).await,
        None => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
    }
}

/// Reads a shim connection's frames until its exit frame: the process's exit status.
async fn exit_status(stream: std::os::unix::net::UnixStream) -> Option<i32> {
    stream.set_nonblocking(true).ok()?;
    let mut stream = tokio::net::UnixStream::from_std(stream).ok()?;
    loop {
        let (kind, body) = read_frame(&mut stream).await.ok()?;
        if kind == attach::EXIT {
            let bytes: [u8; 4] = body.get(..4)?.try_into().ok()?;
            return Some(i32::from_be_bytes(bytes));
        }
    }
}

/// One frame of a shim connection: its stream byte and its bytes (at most 1 MiB are kept).
async fn read_frame<R>(reader: &mut R) -> std::io::Result<(u8, Vec<u8>)>
where
    R: tokio::io::AsyncRead + Unpin,
{
    let mut header = [0u8; 8];
    reader.read_exact(&mut header).await?;
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let mut body = vec![0u8; len.min(1 << 20)];
    reader.read_exact(&mut body).await?;
    Ok((header[0], body))
}

// ANCHOR: wait
/// `POST /containers/ID/wait?condition=...`: the headers go at once (the CLI starts the
/// container only once they came), the body `{"StatusCode":N,"Error":null}` when it exits.
/// `not-running` answers at once for a stopped container; `next-exit` waits for the next
/// exit, through the exit frame of the shim's attach socket (made at the start when the
/// container is not running yet); `removed` also waits until the container is gone.
async fn wait(daemon: Shared, id: &str, query: &Query) -> ApiResult<Response<Body>> {
    let condition = query.get("condition").unwrap_or("not-running").to_owned();
    if !matches!(
        condition.as_str(),
        "" | "not-running" | "next-exit" | "removed"
    ) {
        return Err(ApiError::bad_parameter(format!(
            "invalid condition: {condition:?}"
        )));
    }
    let state = resolve(&daemon, id).await?;
    let running = state.observe() == Status::Running;
    let (response, tx) = streamed("application/json");
    let waiting = if running {
        None
    } else if condition == "not-running" || condition.is_empty() {
        let _ = tx.send(wait_body(state.exit_code)).await;
        return Ok(response);
    } else {
        Some(register(&daemon, &state.id, 0))
    };
    tokio::spawn(async move {
        let stream = match waiting {
            Some(rx) => rx.await.ok(),
            None => {
                let d = daemon.clone();
                let id = state.id.clone();
                blocking(move || attach::connect_wanting(&d.paths, &id, 0))
                    .await
                    .ok()
            }
        };
        let status = match stream {
            Some(stream) => exit_status(stream).await,
            None => None,
        };
        let status = match status {
            Some(status) => status,
            None => last_exit_code(&daemon, &state.id).await,
        };
        if condition == "removed" {
            wait_removed(&daemon, &state.id).await;
        }
        let _ = tx.send(wait_body(status)).await;
    });
    Ok(response)
}
// ANCHOR_END: wait

/// The wait's answer, `{"StatusCode":N,"Error":null}`, keys in Docker's order.
fn wait_body(status: i32) -> Bytes {
    Bytes::from(format!("{{\"StatusCode\":{status},\"Error\":null}}\n"))
}

/// The exit code once the container is not running (the library's `wait`), or the recorded
/// one; 0 for a container gone meanwhile.
async fn last_exit_code(daemon: &Shared, id: &str) -> i32 {
    let d = daemon.clone();
    let owned = id.to_owned();
    blocking(move || container::wait(&d.paths, &owned))
        .await
        .unwrap_or(0)
}

/// Returns once container `id` is gone (its `state.json` removed): woken by inotify on the
/// container's directory, with a look every second in case an event is missed.
async fn wait_removed(daemon: &Shared, id: &str) {
    let dir = daemon.paths.dir(id);
    let watch = DirWatch::new(&dir, DirWatch::REMOVED).ok();
    loop {
        let d = daemon.clone();
        let owned = id.to_owned();
        let gone = blocking(move || Ok(ContainerState::load(&d.paths, &owned)?.is_none()))
            .await
            .unwrap_or(true);
        if gone {
            return;
        }
        match &watch {
            Some(watch) => watch.changed(std::time::Duration::from_secs(1)).await,
            None => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
}

/// An inotify watch on a directory (inotify(7)), for the events of [`DirWatch::REMOVED`] or
/// [`DirWatch::REPLACED`].
struct DirWatch(tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>);

impl DirWatch {
    /// What removing the directory does: an entry deleted or moved away, the directory itself
    /// deleted or moved.
    const REMOVED: u32 =
        libc::IN_DELETE | libc::IN_MOVED_FROM | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF;
    /// Those, and a file renamed into it (how `state.json` is replaced).
    const REPLACED: u32 = DirWatch::REMOVED | libc::IN_MOVED_TO;

    fn new(dir: &std::path::Path, mask: u32) -> std::io::Result<DirWatch> {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: inotify_init1 takes flags only; the fd is owned from here on.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh fd nobody else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
        // SAFETY: a valid fd and NUL-terminated path.
        let watch = unsafe {
            libc::inotify_add_watch(std::os::fd::AsRawFd::as_raw_fd(&fd), path.as_ptr(), mask)
        };
        if watch < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the AsyncFd owns the fd from here on; nothing else closes it.
        let fd = unsafe { tokio::io::unix::AsyncFd::register(fd) }?;
        Ok(DirWatch(fd))
    }

    /// Waits until an event came (they are read and dropped) or `limit` passed.
    async fn changed(&self, limit: std::time::Duration) {
        let read = async {
            loop {
                let Ok(mut guard) = self.0.readable().await else {
                    return std::future::pending::<()>().await;
                };
                let mut buf = [0u8; 4096];
                let result = guard.try_io(|fd| {
                    // SAFETY: reads into a buffer of the length given.
                    let n = unsafe {
                        libc::read(
                            std::os::fd::AsRawFd::as_raw_fd(fd),
                            buf.as_mut_ptr().cast(),
                            buf.len(),
                        )
                    };
                    if n < 0 {
                        Err(std::io::Error::last_os_error())
                    } else {
                        Ok(())
                    }
                });
                if result.is_ok() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(limit, read).await;
    }
}

/// moby's `stdcopy` frame: `[stream, 0, 0, 0, length (u32 big-endian)]` then the bytes.
pub fn frame(stream: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + bytes.len());
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

fn stream_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

// ANCHOR: logs
/// `GET /containers/ID/logs`: the library's `logs` (`follow`, `tail`, `since`, `until`,
/// `timestamps`), multiplexed without a tty, raw with one.
async fn logs(daemon: Shared, id: &str, query: &Query) -> ApiResult<Response<Body>> {
    let (want_out, want_err) = (query.bool("stdout"), query.bool("stderr"));
    if !want_out && !want_err {
        return Err(ApiError::bad_parameter(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let now = std::time::SystemTime::now();
    let time = |key: &str| -> ApiResult<Option<std::time::SystemTime>> {
        query
            .get(key)
            .filter(|v| !v.is_empty() && *v != "0")
            .map(|v| {
                container::logs::parse_log_time(key, v, now)
                    .map_err(|e| ApiError::bad_parameter(format!("{e:#}")))
            })
            .transpose()
    };
    let options = container::logs::LogsOptions {
        follow: query.bool("follow"),
        tail: query.get("tail").and_then(|t| t.parse().ok()),
        timestamps: query.bool("timestamps"),
        since: time("since")?,
        until: time("until")?,
        details: query.bool("details"),
    };
    let state = resolve(&daemon, id).await?;
    let tty = state.config.tty;
    let (response, tx) = streamed(stream_type(tty));
    tokio::task::spawn_blocking(move || {
        let _ = container::logs::logs_to(&daemon.paths, &state, &options, &mut |stderr, bytes| {
            if (stderr && !want_err) || (!stderr && !want_out) {
                return Ok(());
            }
            let chunk = if tty {
                bytes.to_vec()
            } else {
                frame(if stderr { 2 } else { 1 }, bytes)
            };
            tx.blocking_send(Bytes::from(chunk))
                .map_err(|_| anyhow::anyhow!("the client went away"))
        });
    });
    Ok(response)
}
// ANCHOR_END: logs

// ANCHOR: attach
/// `POST /containers/ID/attach`: the connection hijack. With `Upgrade: tcp` the answer is
/// `101 UPGRADED` and the connection becomes the container's stdio (without it, a 200 whose
/// body is the output): the shim's frames go to the client (as they are without a tty, the
/// bytes alone with one), the client's bytes go to the container's stdin. A container that
/// is not running yet is attached when it starts.
async fn attach(
    daemon: Shared,
    id: &str,
    query: &Query,
    mut req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let state = resolve(&daemon, id).await?;
    crate::events::container(&daemon.paths, &state, "attach", &[]);
    let tty = state.config.tty;
    let stdin = query.bool("stdin") && state.config.open_stdin;
    let mut wants = 0;
    if stdin {
        wants |= attach::WANT_STDIN;
    }
    if query.bool("stdout") {
        wants |= attach::WANT_STDOUT;
    }
    if query.bool("stderr") {
        wants |= attach::WANT_STDERR;
    }
    let keys = match query.get("detachKeys").filter(|k| !k.is_empty()) {
        Some(keys) => attach::parse_detach_keys(keys)
            .map_err(|e| ApiError::bad_parameter(format!("{e:#}")))?,
        None => attach::parse_detach_keys(attach::DEFAULT_DETACH_KEYS)?,
    };
    // An attach made before the start is the run's own (`docker run -i`, `start -ai`): the
    // end of its input ends the container's stdin, as Docker's `StdinOnce`.
    let stdin_once = state.observe() != Status::Running;
    let shim = if state.observe() == Status::Running {
        let d = daemon.clone();
        let owned = state.id.clone();
        let stream = blocking(move || attach::connect_wanting(&d.paths, &owned, wants)).await?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send(stream);
        rx
    } else {
        register(&daemon, &state.id, wants)
    };
    let upgrade_asked = req
        .headers()
        .get(hyper::header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"tcp"));
    if !upgrade_asked {
        let (response, tx) = streamed(stream_type(tty));
        tokio::spawn(async move {
            if let Ok(shim) = shim.await {
                let _ = output_to_channel(shim, tx, tty).await;
            }
        });
        return Ok(response);
    }
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let (Ok(shim), Ok(upgraded)) = (shim.await, upgrade.await) else {
            return;
        };
        let client = hyper_util::rt::TokioIo::new(upgraded);
        let input = stdin.then(|| Input {
            proxy: tty.then(|| EscapeProxy::new(keys)),
            stdin_once,
        });
        let _ = pipe(shim, client, tty, input).await;
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("Content-Type", stream_type(tty))
        .header(hyper::header::CONNECTION, "Upgrade")
        .header(hyper::header::UPGRADE, "tcp")
        .body(Body::Full(None))
        .unwrap_or_else(|_| Response::new(Body::Full(None))))
}
// ANCHOR_END: attach

/// Without a hijack: the shim's output frames into a streamed response, until the exit
/// frame.
async fn output_to_channel(
    shim: std::os::unix::net::UnixStream,
    tx: tokio::sync::mpsc::Sender<Bytes>,
    tty: bool,
) -> std::io::Result<()> {
    shim.set_nonblocking(true)?;
    let mut shim = tokio::net::UnixStream::from_std(shim)?;
    loop {
        let (stream, body) = read_frame(&mut shim).await?;
        if stream == attach::EXIT {
            return Ok(());
        }
        let chunk = if tty { body } else { frame(stream, &body) };
        if tx.send(Bytes::from(chunk)).await.is_err() {
            return Ok(());
        }
    }
}

/// The client's input to a container: through the detach keys (with a terminal), and
/// whether its end ends the container's stdin.
struct Input {
    proxy: Option<EscapeProxy>,
    stdin_once: bool,
}

// ANCHOR: pipe
/// Copies between a shim connection and an attached client until the exit frame (or the
/// detach keys, when `stdin` carries an escape proxy): [`copy_output`] one way,
/// [`copy_input`] the other. `stdin`: `None` when the client's input is not wanted.
async fn pipe<C>(
    shim: std::os::unix::net::UnixStream,
    client: C,
    tty: bool,
    stdin: Option<Input>,
) -> std::io::Result<()>
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    shim.set_nonblocking(true)?;
    let shim = tokio::net::UnixStream::from_std(shim)?;
    let (shim_r, shim_w) = shim.into_split();
    let (client_r, client_w) = tokio::io::split(client);
    tokio::select! {
        _ = copy_output(shim_r, client_w, tty) => {}
        _ = copy_input(client_r, shim_w, stdin) => {}
    }
    Ok(())
}
// ANCHOR_END: pipe

// ANCHOR: copy_output
/// The shim's stdout and stderr frames to the client (the bytes alone with a `tty`) until the
/// exit frame or a failed write; then the client's side is shut.
async fn copy_output<W>(mut shim: tokio::net::unix::OwnedReadHalf, mut client: W, tty: bool)
where
    W: tokio::io::AsyncWrite + Unpin,
{
    while let Ok((stream, body)) = read_frame(&mut shim).await {
        if stream == attach::EXIT {
            break;
        }
        let sent = if tty {
            client.write_all(&body).await
        } else {
            client.write_all(&frame(stream, &body)).await
        };
        if sent.and(client.flush().await).is_err() {
            break;
        }
    }
    let _ = client.shutdown().await;
}
// ANCHOR_END: copy_output

// ANCHOR: copy_input
/// The client's bytes to the container's stdin as the shim's stdin frames, through the
/// detach keys with a terminal. Returns only at the detach keys: the end of the client's
/// input (which closes the container's stdin with `stdin_once`) leaves the output running.
async fn copy_input<R>(
    mut client: R,
    mut shim: tokio::net::unix::OwnedWriteHalf,
    stdin: Option<Input>,
) where
    R: tokio::io::AsyncRead + Unpin,
{
    let Some(Input {
        mut proxy,
        stdin_once,
    }) = stdin
    else {
        return std::future::pending::<()>().await;
    };
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match client.read(&mut buf).await {
            Ok(0) | Err(_) => {
                if stdin_once {
                    let _ = shim.write_all(&attach::close_stdin_frame()).await;
                }
                return std::future::pending::<()>().await;
            }
            Ok(n) => n,
        };
        let (bytes, detached) = match proxy.as_mut() {
            Some(p) => p.filter(&buf[..n]),
            None => (buf[..n].to_vec(), false),
        };
        if !bytes.is_empty() && shim.write_all(&attach::stdin_frame(&bytes)).await.is_err() {
            return std::future::pending::<()>().await;
        }
        if detached {
            return;
        }
    }
}
// ANCHOR_END: copy_input

async fn resize(daemon: Shared, id: &str, query: &Query) -> ApiResult<Response<Body>> {
    let rows = query.int("h")?.unwrap_or(0).clamp(0, i64::from(u16::MAX)) as u16;
    let cols = query.int("w")?.unwrap_or(0).clamp(0, i64::from(u16::MAX)) as u16;
    let state = resolve(&daemon, id).await?;
    if state.observe() != Status::Running {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Container {} is not running", state.id),
        ));
    }
    blocking(move || {
        use std::io::Write;
        let mut stream = attach::connect_wanting(&daemon.paths, &state.id, 0)?;
        stream.write_all(&attach::resize_frame(rows, cols))?;
        Ok(())
    })
    .await?;
    Ok(empty(StatusCode::OK))
}

/// `GET /containers/ID/top?ps_args=`: without `ps_args`, `top`'s table; with them, as
/// dockerd 20.10: the host's `ps` run with them ([`ps_top`]). Either way
/// `{"Titles": [...], "Processes": [[...]]}`.
async fn top(daemon: Shared, id: &str, query: &Query) -> ApiResult<Response<Body>> {
    let ps_args = query.get("ps_args").unwrap_or("").to_owned();
    let state = resolve(&daemon, id).await?;
    if state.observe() != Status::Running {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Container {} is not running", state.id),
        ));
    }
    if state.is_restarting() {
        return Err(container::restarting(&state.id).into());
    }
    if !ps_args.is_empty() {
        let pids = blocking(move || container::top::cgroup_pids(&state)).await?;
        let (titles, processes) = ps_top(&ps_args, &pids).await?;
        return Ok(json(
            StatusCode::OK,
            &object!({ "Titles": titles, "Processes": processes }),
        ));
    }
    let owned = state.id;
    let text = blocking(move || container::top::top(&daemon.paths, &owned)).await?;
    let mut lines = text.lines();
    let titles: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let processes: Vec<Vec<String>> = lines
        .map(|line| split_columns(line, titles.len()))
        .collect();
    Ok(json(
        StatusCode::OK,
        &object!({ "Titles": titles, "Processes": processes }),
    ))
}

/// dockerd's `top` with `ps_args`: `ps ARGS -qPID,PID...` (ARGS split at single spaces), or
/// `ps ARGS` when ps refuses that; a ps that fails is a 500, `ps: ` and the first line of its
/// error. The rows kept are those of `pids` (and the thread lines under them), each cut
/// into as many columns as the titles.
async fn ps_top(
    ps_args: &str,
    pids: &std::collections::BTreeSet<i32>,
) -> ApiResult<(Vec<String>, Vec<Vec<String>>)> {
    if let Some(bad) = ps_args_refused(ps_args) {
        return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, bad));
    }
    let args: Vec<&str> = ps_args.split(' ').collect();
    let listed: Vec<String> = pids.iter().map(i32::to_string).collect();
    let with_pids = format!("-q{}", listed.join(","));
    let run = |extra: Option<String>| {
        let mut command = tokio::process::Command::new("ps");
        command.args(&args).args(extra);
        async move { command.stdin(std::process::Stdio::null()).output().await }
    };
    let mut output = run(Some(with_pids)).await;
    if !output.as_ref().is_ok_and(|o| o.status.success()) {
        output = run(None).await;
    }
    let output =
        output.map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("ps: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.split('\n').next().unwrap_or("");
        let why = if first.is_empty() {
            format!("exit status {}", output.status.code().unwrap_or(-1))
        } else {
            first.to_owned()
        };
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("ps: {why}"),
        ));
    }
    parse_ps_output(&String::from_utf8_lossy(&output.stdout), pids)
        .map_err(|message| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message))
}

/// moby's `validatePSArgs`: a `KEY=PID...` column rename other than `pid=` is refused.
fn ps_args_refused(ps_args: &str) -> Option<String> {
    let words: Vec<&str> = ps_args.split(char::is_whitespace).collect();
    for (i, word) in words.iter().enumerate() {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        // `KEY= PID` (spaces after the `=`) counts as well.
        let value = if value.is_empty() {
            words[i + 1..]
                .iter()
                .find(|w| !w.is_empty())
                .copied()
                .unwrap_or("")
        } else {
            value
        };
        if i > 0 && value.starts_with("PID") && key != "pid" && !key.contains('=') {
            return Some(format!("specifying \"{key}={value}\" is not allowed"));
        }
    }
    None
}

/// moby's `parsePSOutput`: the titles are the first line's fields; a row is kept when its
/// PID is one of `pids`, and a thread row (PID `-`) when the row before was kept.
fn parse_ps_output(
    output: &str,
    pids: &std::collections::BTreeSet<i32>,
) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let fields = |line: &str| -> Vec<String> {
        line.split([' ', '\t', '\n', '\x0B', '\x0C', '\r'])
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let mut lines = output.split('\n');
    let titles = fields(lines.next().unwrap_or(""));
    let Some(at) = titles.iter().position(|t| t == "PID") else {
        return Err("Couldn't find PID field in ps output".into());
    };
    let (mut processes, mut previous_kept) = (Vec::new(), false);
    for line in lines.filter(|l| !l.is_empty()) {
        let mut row = fields(line);
        let Some(pid) = row.get(at).cloned() else {
            continue;
        };
        let keep = if pid == "-" {
            previous_kept
        } else {
            let number: i64 = pid
                .parse()
                .map_err(|e| format!("Unexpected pid '{pid}': {e}"))?;
            previous_kept = i32::try_from(number).is_ok_and(|n| pids.contains(&n));
            previous_kept
        };
        if keep && row.len() >= titles.len() {
            let last = row.split_off(titles.len() - 1).join(" ");
            row.push(last);
            processes.push(row);
        }
    }
    Ok((titles, processes))
}

/// A table row cut into `n` columns at runs of spaces; the last column keeps its spaces.
fn split_columns(line: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line.trim_start();
    while out.len() + 1 < n {
        let end = rest.find(' ').unwrap_or(rest.len());
        out.push(rest[..end].to_owned());
        rest = rest[end..].trim_start();
    }
    out.push(rest.trim_end().to_owned());
    out
}

/// `GET /containers/ID/changes`: `diff`'s changes, `Kind` 0 changed, 1 added, 2 deleted.
async fn changes(daemon: Shared, id: &str) -> ApiResult<Response<Body>> {
    let state = resolve(&daemon, id).await?;
    let found = blocking(move || {
        let upper = daemon.paths.dir(&state.id).join("upper");
        container::diff::changes(&upper, &state.lower_dirs)
    })
    .await?;
    let list: Vec<Value> = found
        .iter()
        .map(|c| {
            let kind = match c.kind {
                'A' => 1,
                'D' => 2,
                _ => 0,
            };
            object!({ "Path": c.path, "Kind": kind })
        })
        .collect();
    Ok(json(StatusCode::OK, &list))
}

/// `POST /containers/ID/rename?name=NEW`: dockerd 20.10's checks, in its order and words
/// (an empty name, the container, its own name, then `Error when allocating new name: ...`
/// for an invalid or taken name), then the library's `rename`.
async fn rename(daemon: Shared, id: &str, query: &Query) -> ApiResult<Response<Body>> {
    let name = query.get("name").unwrap_or("").to_owned();
    if id.is_empty() || name.is_empty() {
        return Err(ApiError::bad_parameter(
            "Neither old nor new names may be empty",
        ));
    }
    let wanted = format!("/{}", name.strip_prefix('/').unwrap_or(&name));
    let state = resolve(&daemon, id).await?;
    if format!("/{}", state.name) == wanted {
        return Err(ApiError::bad_parameter(
            "Renaming a container with the same name as its current name",
        ));
    }
    let allocating = |message: String| format!("Error when allocating new name: {message}");
    if container::validate_name(&wanted).is_err() {
        return Err(ApiError::bad_parameter(allocating(format!(
            "Invalid container name ({wanted}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        ))));
    }
    let (d, target) = (daemon.clone(), wanted[1..].to_owned());
    let holder = blocking(move || {
        let all = d.paths.list()?;
        Ok(all.into_iter().find(|c| c.name == target).map(|c| c.id))
    })
    .await?;
    if let Some(holder) = holder {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            allocating(format!(
                "Conflict. The container name \"{wanted}\" is already in use by container \
                 \"{holder}\". You have to remove (or rename) that container to be able to \
                 reuse that name."
            )),
        ));
    }
    let owned = state.id.clone();
    blocking(move || container::rename::rename(&daemon.paths, &owned, &name)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn pause(daemon: Shared, id: &str, frozen: bool) -> ApiResult<Response<Body>> {
    let owned = id.to_owned();
    blocking(move || {
        if frozen {
            container::pause::pause(&daemon.paths, &owned)
        } else {
            container::pause::unpause(&daemon.paths, &owned)
        }
    })
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/prune`: `container prune`, `{"ContainersDeleted": [ID...],
/// "SpaceReclaimed": BYTES}`. Filters (`until`, `label`) are not supported: 400.
async fn prune(daemon: Shared, query: &Query) -> ApiResult<Response<Body>> {
    if let Some(filter) = query.filters()?.first() {
        return Err(ApiError::bad_parameter(format!(
            "filter {filter:?} is not supported by container prune"
        )));
    }
    let d = daemon.clone();
    let pruned = blocking(move || container::prune::prune_containers(&d.paths)).await?;
    super::exec::forget_removed(&daemon);
    Ok(json(
        StatusCode::OK,
        &object!({
            "ContainersDeleted": pruned.containers,
            "SpaceReclaimed": pruned.reclaimed,
        }),
    ))
}

/// `GET /containers/{id}/export`: `export`'s tar, streamed.
async fn export(daemon: Shared, id: &str) -> ApiResult<Response<Body>> {
    let state = resolve(&daemon, id).await?;
    let (response, tx) = super::streamed("application/x-tar");
    tokio::task::spawn_blocking(move || {
        let mut sink = super::ChannelWriter::new(tx, 32 << 10);
        // A failure half way cuts the stream short: the client sees a truncated archive.
        let _ = container::fs::export_to(&daemon.paths, &state.id, &mut sink);
    });
    Ok(response)
}

/// One reading as Docker's `StatsJSON` (`GET /containers/{id}/stats`), from the library's
/// samples: the docker CLI computes its columns from these fields as `minidock stats` does.
fn stats_json(
    state: &ContainerState,
    previous: &container::stats::Sample,
    now: &container::stats::Sample,
) -> Value {
    let cpu = |s: &container::stats::Sample| {
        object!({
            "cpu_usage": { "total_usage": s.cpu_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0 },
            "system_cpu_usage": s.system_ns,
            "online_cpus": s.online_cpus,
            "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 },
        })
    };
    let networks = if now.net_rx == 0 && now.net_tx == 0 {
        object!({})
    } else {
        object!({ "eth0": { "rx_bytes": now.net_rx, "tx_bytes": now.net_tx } })
    };
    let block =
        |op: &str, value: u64| object!({ "major": 0, "minor": 0, "op": op, "value": value });
    object!({
        "read": crate::state::rfc3339(std::time::SystemTime::now()),
        "preread": "0001-01-01T00:00:00Z",
        "pids_stats": { "current": now.pids },
        "blkio_stats": {
            "io_service_bytes_recursive": [block("read", now.block_read), block("write", now.block_write)],
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu(now),
        "precpu_stats": cpu(previous),
        "memory_stats": {
            "usage": now.memory_usage,
            "stats": { "total_inactive_file": now.memory_inactive_file },
            "limit": now.memory_limit,
        },
        "name": format!("/{}", state.name),
        "id": state.id,
        "networks": networks,
    })
}

/// `GET /containers/{id}/stats?stream=&one-shot=`: with `stream` (the default) a reading every
/// second, each with the one before as `precpu_stats`; `stream=false` one reading taken a
/// second after the first (so it has a CPU rate), `one-shot=true` at once (no rate).
async fn stats(daemon: Shared, id: &str, query: &Query) -> ApiResult<Response<Body>> {
    let state = resolve(&daemon, id).await?;
    let stream = query.get("stream").is_none_or(|_| query.bool("stream"));
    let one_shot = !stream && query.bool("one-shot");
    let (response, tx) = streamed("application/json");
    tokio::task::spawn_blocking(move || {
        let mut previous = container::stats::Sample::default();
        if !stream && !one_shot {
            previous = container::stats::sample(&state).unwrap_or_default();
            std::thread::sleep(container::stats::INTERVAL);
        }
        loop {
            let now = container::stats::sample(&state).unwrap_or_default();
            let line = format!("{}\n", stats_json(&state, &previous, &now));
            if tx.blocking_send(Bytes::from(line)).is_err() || !stream {
                return;
            }
            previous = now;
            std::thread::sleep(container::stats::INTERVAL);
        }
    });
    Ok(response)
}

/// `POST /containers/{id}/update`'s body (moby's `container.UpdateConfig`), the fields
/// `update` changes; zero (or absent) leaves a limit as it is, as dockerd does.
#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct UpdateBody {
    memory: i64,
    memory_swap: i64,
    nano_cpus: i64,
    cpu_shares: i64,
    pids_limit: Option<i64>,
    restart_policy: Option<RestartBody>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct RestartBody {
    name: String,
    maximum_retry_count: i64,
}

/// `POST /containers/{id}/update`: `update`'s limits and restart policy;
/// `{"Warnings": []}`.
async fn update(daemon: Shared, id: &str, req: Request<Incoming>) -> ApiResult<Response<Body>> {
    let body: Option<UpdateBody> = super::body_json(req).await?;
    let body = body.unwrap_or_default();
    let restart = body
        .restart_policy
        .as_ref()
        .filter(|p| !p.name.is_empty())
        .map(|p| {
            let text = match p.maximum_retry_count {
                0 => p.name.clone(),
                count => format!("{}:{count}", p.name),
            };
            container::state::RestartPolicy::parse(&text).map_err(ApiError::bad_parameter)
        })
        .transpose()?;
    let positive = |v: i64| (v != 0).then_some(v);
    let options = container::update::UpdateOptions {
        memory: positive(body.memory),
        memory_swap: positive(body.memory_swap),
        nano_cpus: positive(body.nano_cpus),
        cpu_shares: u64::try_from(body.cpu_shares).ok().filter(|s| *s != 0),
        pids_limit: body.pids_limit.filter(|p| *p != 0),
    };
    if body.memory != 0 && body.memory < crate::cgroup::MIN_MEMORY as i64 {
        // dockerd looks the container up first, then refuses the limit.
        resolve(&daemon, id).await?;
        return Err(ApiError::bad_parameter(
            "Minimum memory limit allowed is 6MB",
        ));
    }
    if body.nano_cpus != 0 {
        resolve(&daemon, id).await?;
        container::cli::check_nano_cpus(body.nano_cpus)
            .map_err(|e| ApiError::bad_parameter(e.to_string()))?;
    }
    let name = id.to_owned();
    blocking(move || {
        container::update::update_container(&daemon.paths, &name, restart.as_ref(), &options)
    })
    .await?;
    Ok(json(StatusCode::OK, &object!({ "Warnings": [] })))
}

/// A library error about a container path: 404 when it does not exist, in dockerd's words
/// ("Could not find the file PATH in container NAME", with the name the request gave).
fn path_error(err: ApiError, container: &str, path: &str) -> ApiError {
    if err.message.contains("no such container:path") {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Could not find the file {path} in container {container}"),
        );
    }
    err
}

/// The `path` of an archive request (400 when there is none).
fn archive_path(query: &Query) -> ApiResult<String> {
    query
        .get("path")
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_parameter("path is required"))
}

/// A container path as dockerd takes it: a relative one is relative to the container's root
/// (`docker cp web:etc/hostname .` is `/etc/hostname`).
fn rooted(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

/// `HEAD` (with `body` false) or `GET /containers/{id}/archive?path=`: the path's stat in
/// `X-Docker-Container-Path-Stat` (base64 JSON), and for `GET` its tar.
async fn archive_stat(
    daemon: Shared,
    id: &str,
    query: &Query,
    body: bool,
) -> ApiResult<Response<Body>> {
    use base64::Engine;
    let state = resolve(&daemon, id).await?;
    let given = archive_path(query)?;
    let path = rooted(&given);
    let (d, cid, p) = (daemon.clone(), state.id.clone(), path.clone());
    let stat = blocking(move || container::fs::stat_path(&d.paths, &cid, &p))
        .await
        .map_err(|err| path_error(err, id, &given))?;
    let header = base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(&stat).unwrap_or_default());
    let mut response = if body {
        let (response, tx) = streamed("application/x-tar");
        tokio::task::spawn_blocking(move || {
            let mut sink = super::ChannelWriter::new(tx, 32 << 10);
            // A failure half way cuts the stream short: the client sees a truncated archive.
            let _ = container::fs::archive_out(&daemon.paths, &state.id, &path, &mut sink);
        });
        response
    } else {
        empty(StatusCode::OK)
    };
    if let Ok(value) = hyper::header::HeaderValue::from_str(&header) {
        response
            .headers_mut()
            .insert("X-Docker-Container-Path-Stat", value);
    }
    Ok(response)
}

/// `PUT /containers/{id}/archive?path=&copyUIDGID=`: the body's tar unpacked into the
/// directory `path`.
async fn archive_put(
    daemon: Shared,
    id: &str,
    query: &Query,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let state = resolve(&daemon, id).await?;
    let shown = archive_path(query)?;
    let path = rooted(&shown);
    let preserve = query.bool("copyUIDGID");
    let spool = super::spool_body(req).await?;
    blocking(move || container::fs::archive_in(&daemon.paths, &state.id, &path, spool, preserve))
        .await
        .map_err(|err| path_error(err, id, &shown))?;
    Ok(empty(StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_request_becomes_the_clis_flags() {
        let body: CreateBody = serde_json::from_str(
            r#"{"Image":"busybox","Cmd":["echo","hi"],"Entrypoint":null,"Env":null,
                "Tty":true,"OpenStdin":true,"Labels":{"a":"b"},
                "HostConfig":{"AutoRemove":true,"NetworkMode":"default","NanoCpus":1500000000,
                  "Memory":0,"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]},
                  "RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3},"PidsLimit":null}}"#,
        )
        .unwrap();
        let options = create_options(body, Some("web".into()));
        assert_eq!(options.image, "busybox");
        assert_eq!(options.name.as_deref(), Some("web"));
        let run = &options.run;
        assert_eq!(run.command, ["echo", "hi"]);
        assert!(run.tty && run.interactive && run.auto_remove);
        assert_eq!(run.network, None);
        assert_eq!(run.cpus.as_deref(), Some("1.5"));
        assert_eq!(run.memory, None);
        assert_eq!(run.publish, ["8080:80/tcp"]);
        assert_eq!(run.restart, "on-failure:3");
        assert_eq!(run.labels, ["a=b"]);
    }

    #[test]
    fn an_entrypoint_list_keeps_its_arguments_before_the_command() {
        let body: CreateBody =
            serde_json::from_str(r#"{"Image":"x","Entrypoint":["sh","-c"],"Cmd":"echo"}"#).unwrap();
        let options = create_options(body, None);
        assert_eq!(options.run.entrypoint.as_deref(), Some("sh"));
        assert_eq!(options.run.command, ["-c", "echo"]);
    }

    #[test]
    fn kill_signals_are_read_as_dockerd_reads_them() {
        assert_eq!(kill_signal("9").unwrap().number(), 9);
        assert_eq!(kill_signal("+9").unwrap().number(), 9);
        assert_eq!(kill_signal("sigusr1").unwrap().number(), 10);
        assert_eq!(kill_signal("RTMIN+1").unwrap().number(), 35);
        assert_eq!(kill_signal("0").unwrap_err(), None);
        assert_eq!(kill_signal("BOGUS").unwrap_err(), None);
        assert_eq!(kill_signal("32").unwrap_err(), Some(32));
        assert_eq!(kill_signal("999").unwrap_err(), Some(999));
        assert_eq!(kill_signal("-1").unwrap_err(), Some(u64::MAX));
    }

    #[test]
    fn ps_output_keeps_the_containers_rows_and_their_threads() {
        let out =
            "  PID  LWP CMD\n   10    - sleep 1\n    -   11 -\n   20    - other\n    -   21 -\n";
        let pids = [10].into_iter().collect();
        let (titles, rows) = parse_ps_output(out, &pids).unwrap();
        assert_eq!(titles, ["PID", "LWP", "CMD"]);
        assert_eq!(rows, [vec!["10", "-", "sleep 1"], vec!["-", "11", "-"]]);
        assert_eq!(
            parse_ps_output("COMMAND\nsleep\n", &pids).unwrap_err(),
            "Couldn't find PID field in ps output"
        );
        assert_eq!(
            ps_args_refused("-o user=PID").as_deref(),
            Some("specifying \"user=PID\" is not allowed")
        );
        assert_eq!(ps_args_refused("-o pid=PID"), None);
    }

    #[test]
    fn top_rows_keep_the_commands_spaces() {
        assert_eq!(
            split_columns("root  1  0  sleep 100 ", 4),
            ["root", "1", "0", "sleep 100"]
        );
    }
}
