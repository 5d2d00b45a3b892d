//! `inspect`: a container as Docker's API describes it, and the data its `-f` template runs
//! over (see [`crate::format`]).

use super::state::{ContainerState, Status};
use super::{Paths, short_id};
use crate::format::{self, Json, Shape};
use anyhow::Result;
use gotmpl::Value;
use std::collections::BTreeMap;

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct InspectState {
    status: &'static str,
    running: bool,
    paused: bool,
    restarting: bool,
    #[serde(rename = "OOMKilled")]
    oom_killed: bool,
    dead: bool,
    pid: i32,
    exit_code: i32,
    error: String,
    started_at: String,
    finished_at: String,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct HostConfig {
    binds: Option<Vec<String>>,
    log_config: LogConfig,
    network_mode: String,
    port_bindings: BTreeMap<String, Vec<super::state::PortBinding>>,
    restart_policy: super::state::RestartPolicy,
    auto_remove: bool,
    cap_add: Option<Vec<String>>,
    cap_drop: Option<Vec<String>>,
    dns: Vec<String>,
    dns_options: Vec<String>,
    dns_search: Vec<String>,
    extra_hosts: Option<Vec<String>>,
    group_add: Option<Vec<String>>,
    privileged: bool,
    publish_all_ports: bool,
    readonly_rootfs: bool,
    security_opt: Option<Vec<String>>,
    cpu_shares: i64,
    memory: i64,
    nano_cpus: i64,
    memory_swap: i64,
    pids_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    init: Option<bool>,
    volumes_from: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tmpfs: Option<BTreeMap<String, String>>,
}

/// The logging driver: minidock's logs are JSON lines, Docker's default `json-file`.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct LogConfig {
    #[serde(rename = "Type")]
    kind: &'static str,
    config: BTreeMap<String, String>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct GraphDriver {
    data: BTreeMap<&'static str, String>,
    name: &'static str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Config {
    hostname: String,
    domainname: String,
    user: String,
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    tty: bool,
    open_stdin: bool,
    stdin_once: bool,
    env: Vec<String>,
    cmd: Option<Vec<String>>,
    image: String,
    volumes: Option<BTreeMap<String, BTreeMap<String, String>>>,
    working_dir: String,
    entrypoint: Option<Vec<String>>,
    on_build: Option<()>,
    labels: BTreeMap<String, String>,
    stop_signal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_timeout: Option<i64>,
}

/// The container's settings on one network (moby's `EndpointSettings`), as `inspect` and the
/// API's container list show them.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Endpoint {
    #[serde(rename = "NetworkID")]
    network_id: String,
    #[serde(rename = "EndpointID")]
    endpoint_id: String,
    gateway: String,
    #[serde(rename = "IPAddress")]
    ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    ip_prefix_len: u8,
    mac_address: String,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkSettings {
    bridge: String,
    #[serde(rename = "SandboxID")]
    sandbox_id: String,
    sandbox_key: String,
    ports: BTreeMap<String, Option<Vec<super::state::PortBinding>>>,
    gateway: String,
    #[serde(rename = "IPAddress")]
    ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    ip_prefix_len: u8,
    mac_address: String,
    networks: BTreeMap<String, Endpoint>,
}

// ANCHOR: inspect
/// `inspect`'s JSON for one container, in Docker's shape and field order.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    id: String,
    created: String,
    path: String,
    args: Vec<String>,
    state: InspectState,
    image: String,
    resolv_conf_path: String,
    hostname_path: String,
    hosts_path: String,
    log_path: String,
    name: String,
    restart_count: u32,
    driver: &'static str,
    platform: &'static str,
    mount_label: String,
    process_label: String,
    app_armor_profile: String,
    #[serde(rename = "ExecIDs")]
    exec_ids: Option<Vec<String>>,
    host_config: HostConfig,
    graph_driver: GraphDriver,
    mounts: Vec<super::state::MountPoint>,
    config: Config,
    network_settings: NetworkSettings,
}
// ANCHOR_END: inspect

fn some_if_any(list: &[String]) -> Option<Vec<String>> {
    (!list.is_empty()).then(|| list.to_vec())
}

pub fn inspect(paths: &Paths, state: &ContainerState) -> ContainerInspect {
    let dir = paths.dir(&state.id);
    let path_of = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let status = state.observe();
    let paused = super::pause::is_paused(state);
    let config = &state.config;
    let mut args: Vec<String> = config.entrypoint.clone();
    args.extend(config.cmd.iter().cloned());
    let path = if args.is_empty() {
        String::new()
    } else {
        args.remove(0)
    };
    let lower = state
        .lower_dirs
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(":");
    let mut data = BTreeMap::new();
    data.insert("LowerDir", lower);
    data.insert("MergedDir", path_of("merged"));
    data.insert("UpperDir", path_of("upper"));
    data.insert("WorkDir", path_of("work"));
    let mode = super::network::Mode::of(config);
    let att = super::network::attachment(paths, &state.id);
    let networks = networks(paths, state);
    let main = networks.get(&mode.network_name());
    let text = |f: fn(&Endpoint) -> String| main.map(f).unwrap_or_default();
    let sandbox_key = if mode.own_netns() && att.is_some() {
        path_of(super::spec::NETNS_PIN)
    } else {
        String::new()
    };
    ContainerInspect {
        id: state.id.clone(),
        created: state.created.clone(),
        path,
        args,
        state: InspectState {
            status: match status {
                _ if paused => "paused",
                Status::Running if state.restarting => "restarting",
                other => other.name(),
            },
            running: status == Status::Running,
            paused,
            restarting: status == Status::Running && state.restarting,
            oom_killed: state.oom_killed,
            dead: status == Status::Dead,
            pid: if status == Status::Running && state.process_alive() {
                state.pid
            } else {
                0
            },
            exit_code: state.exit_code,
            error: state.error.clone(),
            started_at: state.started_at.clone(),
            finished_at: state.finished_at.clone(),
        },
        image: state.image_id.clone(),
        resolv_conf_path: path_of("resolv.conf"),
        hostname_path: path_of("hostname"),
        hosts_path: path_of("hosts"),
        log_path: path_of("log"),
        name: format!("/{}", state.name),
        restart_count: state.restart_count,
        driver: "overlay2",
        platform: "linux",
        mount_label: String::new(),
        process_label: String::new(),
        app_armor_profile: String::new(),
        exec_ids: None,
        host_config: HostConfig {
            binds: some_if_any(&config.binds),
            log_config: LogConfig {
                kind: "json-file",
                config: BTreeMap::new(),
            },
            network_mode: config.network_mode.clone(),
            port_bindings: config.port_bindings.clone(),
            restart_policy: config.restart_policy.clone(),
            auto_remove: config.auto_remove,
            cap_add: some_if_any(&config.cap_add),
            cap_drop: some_if_any(&config.cap_drop),
            dns: config.dns.clone(),
            dns_options: config.dns_options.clone(),
            dns_search: config.dns_search.clone(),
            extra_hosts: some_if_any(&config.extra_hosts),
            group_add: some_if_any(&config.group_add),
            privileged: config.privileged,
            publish_all_ports: config.publish_all_ports,
            readonly_rootfs: config.readonly_rootfs,
            security_opt: some_if_any(&config.security_opt),
            cpu_shares: config.cpu_shares,
            memory: config.memory,
            nano_cpus: config.nano_cpus,
            memory_swap: config.memory_swap,
            pids_limit: (config.pids_limit > 0).then_some(config.pids_limit),
            init: config.init.then_some(true),
            volumes_from: some_if_any(&config.volumes_from),
            tmpfs: (!config.tmpfs.is_empty()).then(|| config.tmpfs.clone()),
        },
        graph_driver: GraphDriver {
            data,
            name: "overlay2",
        },
        mounts: config.mounts.clone(),
        config: Config {
            hostname: config.hostname.clone(),
            domainname: String::new(),
            user: config.user.clone(),
            attach_stdin: config.open_stdin,
            attach_stdout: true,
            attach_stderr: true,
            tty: config.tty,
            open_stdin: config.open_stdin,
            stdin_once: config.open_stdin,
            env: config.env.clone(),
            cmd: some_if_any(&config.cmd),
            image: state.image.clone(),
            volumes: (!config.volumes.is_empty()).then(|| {
                config
                    .volumes
                    .iter()
                    .map(|v| (v.clone(), BTreeMap::new()))
                    .collect()
            }),
            working_dir: config.working_dir.clone(),
            entrypoint: some_if_any(&config.entrypoint),
            on_build: None,
            labels: config.labels.clone(),
            stop_signal: config.stop_signal.clone(),
            stop_timeout: config.stop_timeout,
        },
        network_settings: NetworkSettings {
            bridge: String::new(),
            sandbox_id: if sandbox_key.is_empty() {
                String::new()
            } else {
                crate::state::sha256_hex(&[b"sandbox", state.id.as_bytes()])
            },
            sandbox_key,
            ports: super::network::settings_ports(config, att.as_ref()),
            gateway: text(|e| e.gateway.clone()),
            ip_address: text(|e| e.ip_address.clone()),
            ip_prefix_len: main.map_or(0, |e| e.ip_prefix_len),
            mac_address: text(|e| e.mac_address.clone()),
            networks,
        },
    }
}

/// The networks the container is on, by name, with its settings on each
/// (`NetworkSettings.Networks`).
pub fn networks(paths: &Paths, state: &ContainerState) -> BTreeMap<String, Endpoint> {
    let mut networks = BTreeMap::new();
    let user_mode = super::network::user_mode(paths, &state.id);
    for (name, network_id, att) in super::network::inspect_networks(paths, state) {
        let mut e = endpoint(state, network_id, att.as_ref());
        if let (Some(u), Some(att)) = (&user_mode, &att)
            && *att == u.attachment
        {
            // User-mode networking: the TAP device's own MAC, which the kernel chose.
            e.mac_address = u.mac_address.clone();
        }
        networks.insert(name, e);
    }
    networks
}

/// The container's endpoint on its network: the address, gateway and MAC while it is
/// connected, only the network's ID otherwise (as Docker shows a stopped container).
fn endpoint(
    state: &ContainerState,
    network_id: String,
    att: Option<&crate::net::Attachment>,
) -> Endpoint {
    let mut e = Endpoint {
        network_id,
        endpoint_id: String::new(),
        gateway: String::new(),
        ip_address: String::new(),
        ip_prefix_len: 0,
        mac_address: String::new(),
    };
    if let Some(att) = att {
        e.endpoint_id = crate::state::sha256_hex(&[state.id.as_bytes(), e.network_id.as_bytes()]);
        e.gateway = att.gateway.to_string();
        e.ip_address = att.address.to_string();
        e.ip_prefix_len = att.prefix;
        e.mac_address = crate::net::netlink::format_mac(super::network::mac_of(att.address));
    }
    e
}

// ANCHOR: template
/// Which objects of [`ContainerInspect`] are Go maps, and the nil pointers Go's JSON omits:
/// what `inspect -f` needs to print `{{.State}}` as Docker does.
pub const TEMPLATE_SHAPE: Shape = Shape {
    maps: &[
        "GraphDriver.Data",
        "Config.Labels",
        "NetworkSettings.Ports",
        "NetworkSettings.Networks",
        "Config.Volumes",
        "HostConfig.Tmpfs",
    ],
    pointers: &[
        "State.Health",
        "HostConfig.PidsLimit",
        "HostConfig.Init",
        "Config.StopTimeout",
    ],
    omitted: &[
        ("State", "Health"),
        ("HostConfig", "Init"),
        ("Config", "StopTimeout"),
    ],
};

/// `inspect -f`'s data for one container.
pub fn template_value(record: &ContainerInspect) -> Result<Value> {
    Ok(format::to_value(&Json::of(record)?, &TEMPLATE_SHAPE))
}
// ANCHOR_END: template

/// The ID shown where Docker abbreviates: 12 digits.
pub fn display_id(id: &str, no_trunc: bool) -> &str {
    if no_trunc { id } else { short_id(id) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_prints_as_dockers_struct() {
        let json: Json = serde_json::from_str(
            r#"{"State":{"Status":"exited","Running":false,"Pid":0},"GraphDriver":{"Data":{"B":"2","A":"1"}}}"#,
        )
        .unwrap();
        let value = format::to_value(&json, &TEMPLATE_SHAPE);
        let render = |t: &str| format::Format::inspect(t).unwrap().execute(&value).unwrap();
        assert_eq!(render("{{.State}}"), "{exited false 0 <nil>}");
        assert_eq!(render("{{.GraphDriver.Data}}"), "map[A:1 B:2]");
    }
}
