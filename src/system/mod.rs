//! `version`, `info` and `system df`: what minidock is and what it holds, in the shapes
//! `docker version`, `docker info` and `docker system df` print (text blocks, or a Go template
//! over Docker's JSON keys with `--format`, `json` being `{{json .}}`).
//!
//! Everything but minidock's own version is read from the machine when asked: the containers
//! and images in the state root, the cgroup layout from the mounts, the kernel from uname(2),
//! the OS from `/etc/os-release`, the memory from sysinfo(2), the CPUs from the scheduler's
//! affinity mask.

pub mod aliases;
pub mod df;
pub mod info;

use crate::cli::Exit;
use crate::format::{Format, Json, Shape};
use anyhow::{Context, Result};
use serde::Serialize;

/// minidock's version (the crate's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Docker Engine API version whose object shapes minidock's JSON output follows (Docker
/// 20.10's, API 1.41): what `version` reports as its API version.
pub const API_VERSION: &str = "1.41";

/// The OCI runtime-spec version minidock's runtime implements.
pub const RUNTIME_SPEC_VERSION: &str = "1.0.2";

/// `GOARCH`'s name for this machine's architecture, as Docker prints `OS/Arch`.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The running kernel's release (`uname -r`).
pub fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs a `--format` over a record serialised as Docker's JSON: `json` is `{{json .}}`.
/// Errors exit 1 with Docker's `template parsing error: ...`.
pub fn render(format: &str, record: &impl Serialize, shape: &Shape) -> Result<String> {
    let text = if format == "json" {
        "{{json .}}"
    } else {
        format
    };
    let fail = |err: anyhow::Error| Exit::new(1, format!("{err:#}"));
    let template = Format::inspect(text).map_err(fail)?;
    let value = crate::format::to_value(&Json::of(record)?, shape);
    let mut out = template.execute(&value).map_err(fail)?;
    out.push('\n');
    Ok(out)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ClientVersion {
    version: &'static str,
    api_version: &'static str,
    #[serde(rename = "DefaultAPIVersion")]
    default_api_version: &'static str,
    os: &'static str,
    arch: &'static str,
    context: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Component {
    name: &'static str,
    version: &'static str,
    details: std::collections::BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Platform {
    name: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ServerVersion {
    platform: Platform,
    components: Vec<Component>,
    version: &'static str,
    api_version: &'static str,
    #[serde(rename = "MinAPIVersion")]
    min_api_version: &'static str,
    os: &'static str,
    arch: &'static str,
    kernel_version: String,
    experimental: bool,
}

/// `version`'s record: Docker's `Client` and `Server` objects (the server being the engine
/// that runs containers here: minidock itself and its built-in OCI runtime).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    client: ClientVersion,
    server: ServerVersion,
}

impl Version {
    /// The `Server` object alone: the Engine API's `GET /version` answer.
    pub fn server(&self) -> serde_json::Value {
        serde_json::to_value(&self.server).unwrap_or_default()
    }
}

/// The version record of this binary on this machine.
pub fn version() -> Version {
    let kernel = kernel_version();
    let engine = [
        ("ApiVersion", API_VERSION.to_owned()),
        ("Arch", go_arch().to_owned()),
        ("Experimental", "false".to_owned()),
        ("KernelVersion", kernel.clone()),
        ("MinAPIVersion", API_VERSION.to_owned()),
        ("Os", "linux".to_owned()),
    ];
    Version {
        client: ClientVersion {
            version: VERSION,
            api_version: API_VERSION,
            default_api_version: API_VERSION,
            os: "linux",
            arch: go_arch(),
            context: "default",
        },
        server: ServerVersion {
            platform: Platform { name: "minidock" },
            components: vec![
                Component {
                    name: "Engine",
                    version: VERSION,
                    details: engine.into_iter().collect(),
                },
                Component {
                    name: "runtime",
                    version: VERSION,
                    details: [("Spec", RUNTIME_SPEC_VERSION.to_owned())]
                        .into_iter()
                        .collect(),
                },
            ],
            version: VERSION,
            api_version: API_VERSION,
            min_api_version: API_VERSION,
            os: "linux",
            arch: go_arch(),
            kernel_version: kernel,
            experimental: false,
        },
    }
}

/// `version`'s text, laid out as docker/cli's template lays it out (values at column 20).
pub fn version_text(v: &Version) -> String {
    let line = |indent: usize, key: &str, value: &str| {
        let label = format!("{}{key}:", " ".repeat(indent));
        format!("{label:<20}{value}\n")
    };
    let c = &v.client;
    let mut out = String::from("Client:\n");
    out += &line(1, "Version", c.version);
    out += &line(1, "API version", c.api_version);
    out += &line(1, "OS/Arch", &format!("{}/{}", c.os, c.arch));
    out += &line(1, "Context", c.context);
    let s = &v.server;
    out += &format!("\nServer: {}\n", s.platform.name);
    for component in &s.components {
        out += &format!(" {}:\n", component.name);
        out += &line(2, "Version", component.version);
        if component.name == "Engine" {
            out += &line(
                2,
                "API version",
                &format!("{} (minimum version {})", s.api_version, s.min_api_version),
            );
            out += &line(2, "OS/Arch", &format!("{}/{}", s.os, s.arch));
            out += &line(2, "Kernel", &s.kernel_version);
            out += &line(2, "Experimental", &s.experimental.to_string());
        } else {
            for (key, value) in &component.details {
                out += &line(2, key, value);
            }
        }
    }
    out
}

/// `minidock version [--format TEMPLATE]`
#[derive(Debug, Clone, clap::Args)]
pub struct VersionArgs {
    /// Format the output with a Go template ({{.Server.Version}}), or json
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

/// The shape of [`Version`] for templates: `Details` is a map.
const VERSION_SHAPE: Shape = Shape {
    maps: &["Server.Components.Details"],
    pointers: &[],
    omitted: &[],
};

/// `minidock version`.
pub fn run_version(args: &VersionArgs) -> Result<u8> {
    let record = version();
    match &args.format {
        Some(format) => print!("{}", render(format, &record, &VERSION_SHAPE)?),
        None => print!("{}", version_text(&record)),
    }
    Ok(0)
}

/// `/etc/os-release`'s `PRETTY_NAME` (os-release(5)), else `NAME`, else `Linux`.
pub fn operating_system() -> String {
    let text = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_owned())
    };
    field("PRETTY_NAME")
        .or_else(|| field("NAME"))
        .unwrap_or_else(|| "Linux".to_owned())
}

/// The number of CPUs this process may run on (sched_getaffinity(2)), as Go's `NumCPU`.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Total RAM in bytes (sysinfo(2)).
pub fn total_memory() -> Result<u64> {
    let info = nix::sys::sysinfo::sysinfo().context("sysinfo")?;
    Ok(info.ram_total())
}

/// go-units `BytesSize`: binary units, four significant digits (`23.54GiB`).
pub fn bytes_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let decimals = match value {
        v if v >= 1000.0 => 0,
        v if v >= 100.0 => 1,
        v if v >= 10.0 => 2,
        _ => 3,
    };
    let mut text = format!("{value:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_as_go_units() {
        assert_eq!(bytes_size(25276059648), "23.54GiB");
        assert_eq!(bytes_size(2085441536), "1.942GiB");
        assert_eq!(bytes_size(512), "512B");
        assert_eq!(bytes_size(1 << 30), "1GiB");
    }

    #[test]
    fn version_text_has_dockers_blocks() {
        let text = version_text(&version());
        assert!(text.starts_with("Client:\n Version:           "), "{text}");
        assert!(text.contains("\nServer: minidock\n Engine:\n  Version:          "));
        assert!(text.contains("  API version:      1.41 (minimum version 1.41)\n"));
    }
}
