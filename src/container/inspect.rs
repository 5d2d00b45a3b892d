//! `inspect`: a container as Docker's API describes it, and the `-f` Go-template subset people
//! use with it (`{{.State.Pid}}`, `{{json .Mounts}}`...).

use super::state::{ContainerState, Status};
use super::{Paths, short_id};
use anyhow::{Result, bail};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
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
    network_mode: String,
    auto_remove: bool,
    cap_add: Option<Vec<String>>,
    cap_drop: Option<Vec<String>>,
    privileged: bool,
    readonly_rootfs: bool,
    security_opt: Option<Vec<String>>,
    memory: i64,
    nano_cpus: i64,
    pids_limit: Option<i64>,
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
    volumes: Option<()>,
    working_dir: String,
    entrypoint: Option<Vec<String>>,
    on_build: Option<()>,
    labels: BTreeMap<String, String>,
    stop_signal: String,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Endpoint {
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
    ports: BTreeMap<String, ()>,
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
    let mut networks = BTreeMap::new();
    networks.insert(
        config.network_mode.clone(),
        Endpoint {
            network_id: String::new(),
            endpoint_id: String::new(),
            gateway: String::new(),
            ip_address: String::new(),
            ip_prefix_len: 0,
            mac_address: String::new(),
        },
    );
    ContainerInspect {
        id: state.id.clone(),
        created: state.created.clone(),
        path,
        args,
        state: InspectState {
            status: status.name(),
            running: status == Status::Running,
            paused: false,
            restarting: false,
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
            network_mode: config.network_mode.clone(),
            auto_remove: config.auto_remove,
            cap_add: some_if_any(&config.cap_add),
            cap_drop: some_if_any(&config.cap_drop),
            privileged: config.privileged,
            readonly_rootfs: config.readonly_rootfs,
            security_opt: some_if_any(&config.security_opt),
            memory: config.memory,
            nano_cpus: config.nano_cpus,
            pids_limit: (config.pids_limit > 0).then_some(config.pids_limit),
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
            volumes: None,
            working_dir: config.working_dir.clone(),
            entrypoint: some_if_any(&config.entrypoint),
            on_build: None,
            labels: BTreeMap::new(),
            stop_signal: config.stop_signal.clone(),
        },
        network_settings: NetworkSettings {
            bridge: String::new(),
            sandbox_id: String::new(),
            sandbox_key: String::new(),
            ports: BTreeMap::new(),
            gateway: String::new(),
            ip_address: String::new(),
            ip_prefix_len: 0,
            mac_address: String::new(),
            networks,
        },
    }
}

/// A JSON value that keeps the order of object keys, so a template prints `{{json .Mounts}}`
/// in Docker's field order (serde_json's own `Value` sorts keys).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        struct JsonVisitor;
        impl<'de> Visitor<'de> for JsonVisitor {
            type Value = Json;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_none<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Number(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Number(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
                serde_json::Number::from_f64(v)
                    .map(Json::Number)
                    .ok_or_else(|| E::custom("not a JSON number"))
            }
            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::String(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut pairs = Vec::new();
                while let Some((key, value)) = map.next_entry()? {
                    pairs.push((key, value));
                }
                Ok(Json::Object(pairs))
            }
        }
        deserializer.deserialize_any(JsonVisitor)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(b) => serializer.serialize_bool(*b),
            Json::Number(n) => n.serialize(serializer),
            Json::String(s) => serializer.serialize_str(s),
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(pairs) => {
                let mut map = serializer.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl Json {
    pub fn of(value: &impl Serialize) -> Result<Json> {
        let text = serde_json::to_string(value)?;
        Ok(serde_json::from_str(&text)?)
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// How Go's text/template prints a value: strings bare, lists as `[a b]`, structs as
    /// `{a b}`, nil as `<nil>`... close enough for the fields people print.
    fn go_format(&self, top: bool) -> String {
        match self {
            Json::Null if top => "<no value>".into(),
            Json::Null => "<nil>".into(),
            Json::Bool(b) => b.to_string(),
            Json::Number(n) => n.to_string(),
            Json::String(s) => s.clone(),
            Json::Array(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(|i| i.go_format(false))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Json::Object(pairs) => format!(
                "map[{}]",
                pairs
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", v.go_format(false)))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        }
    }
}

// ANCHOR: template
/// Renders a `--format` template: text with `{{.Field.Sub}}` and `{{json .Field}}` actions.
/// Anything else (range, if, pipelines) is refused with a clear message.
pub fn render(template: &str, value: &Json) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            bail!("template: unclosed action in {template:?}");
        };
        let action = after[..end].trim();
        rest = &after[end + 2..];
        let (json, path) = match action.strip_prefix("json ") {
            Some(path) => (true, path.trim()),
            None => (false, action),
        };
        if !path.starts_with('.') || path.contains(' ') || path.contains('|') {
            bail!(
                "template: unsupported action {{{{{action}}}}}: minidock knows {{{{.Field}}}} and \
                 {{{{json .Field}}}}"
            );
        }
        let mut current = value;
        for key in path.split('.').filter(|k| !k.is_empty()) {
            current = match current.get(key) {
                Some(next) => next,
                None => bail!("template: can't evaluate field {key} in {path}"),
            };
        }
        if json {
            out.push_str(&serde_json::to_string(current)?);
        } else {
            out.push_str(&current.go_format(true));
        }
    }
    out.push_str(rest);
    Ok(out)
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
    fn templates_print_like_go() {
        let value: Json = serde_json::from_str(
            r#"{"Id":"abc","State":{"Pid":42,"Status":"running"},"Config":{"Env":["A=1","B=2"],"Cmd":null},
                "Mounts":[{"Type":"bind","Source":"/s","RW":true}]}"#,
        )
        .unwrap();
        let r = |t: &str| render(t, &value).unwrap();
        assert_eq!(r("{{.State.Pid}}"), "42");
        assert_eq!(
            r("pid={{ .State.Pid }} {{.State.Status}}"),
            "pid=42 running"
        );
        assert_eq!(r("{{.Config.Env}}"), "[A=1 B=2]");
        assert_eq!(
            r("{{json .Mounts}}"),
            r#"[{"Type":"bind","Source":"/s","RW":true}]"#
        );
        assert_eq!(r("{{.Id}}"), "abc");
        assert!(render("{{.Nope}}", &value).is_err());
        assert!(render("{{range .Mounts}}x{{end}}", &value).is_err());
        assert!(render("{{.Id", &value).is_err());
    }
}
