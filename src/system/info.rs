//! `info`: system-wide information, as `docker info` prints it, every value read when asked.

use super::{bytes_size, render};
use crate::container::{Paths, Status};
use crate::format::Shape;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

/// Docker's `RegistryConfig`, as minidock applies it (`registry::config::RegistryConfig`):
/// the insecure registries and networks (loopback always), and Docker Hub's mirrors, from
/// `daemon.json` and the CLI's `config.json`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegistryConfig {
    #[serde(rename = "InsecureRegistryCIDRs")]
    pub insecure_registry_cidrs: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub mirrors: Vec<String>,
}

/// `info`'s record, with Docker's JSON keys (`docker info --format '{{json .}}'`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Info {
    pub containers: usize,
    pub containers_running: usize,
    pub containers_paused: usize,
    pub containers_stopped: usize,
    pub images: usize,
    pub driver: &'static str,
    pub driver_status: Vec<[String; 2]>,
    pub logging_driver: &'static str,
    pub cgroup_driver: &'static str,
    pub cgroup_version: String,
    pub kernel_version: String,
    pub operating_system: String,
    #[serde(rename = "OSType")]
    pub os_type: &'static str,
    pub architecture: String,
    pub index_server_address: &'static str,
    pub registry_config: RegistryConfig,
    #[serde(rename = "NCPU")]
    pub ncpu: usize,
    pub mem_total: u64,
    pub docker_root_dir: String,
    pub name: String,
    pub server_version: &'static str,
    pub security_options: Vec<String>,
    pub experimental_build: bool,
    pub live_restore_enabled: bool,
    pub warnings: Vec<String>,
}

/// The name Docker gives a filesystem type (statfs(2) `f_type`) as `Backing Filesystem`.
fn backing_filesystem(path: &Path) -> String {
    let dir = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    let Ok(stat) = nix::sys::statfs::statfs(dir) else {
        return "<unknown>".to_owned();
    };
    match stat.filesystem_type().0 as u64 {
        0xef53 => "extfs",
        0x5846_5342 => "xfs",
        0x9123_683e => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794c_7630 => "overlayfs",
        0x2fc1_2fc1 => "zfs",
        0xf2f5_2010 => "f2fs",
        _ => "<unknown>",
    }
    .to_owned()
}

/// Gathers the record. Errors: the state root or the image store cannot be read.
pub fn info(paths: &Paths) -> Result<Info> {
    let containers = paths.list().context("listing containers")?;
    let running_or_paused: Vec<_> = containers
        .iter()
        .filter(|c| c.observe() == Status::Running)
        .collect();
    let paused = running_or_paused
        .iter()
        .filter(|c| crate::container::pause::is_paused(c))
        .count();
    let images = crate::image::store::Store::open(&paths.root)?
        .images()?
        .len();
    let layout = crate::cgroup::detect().context("reading the cgroup layout")?;
    let v2 = layout.kind == crate::cgroup::layout::Kind::V2;
    let mut security_options = vec!["name=seccomp,profile=builtin".to_owned()];
    if v2 {
        // On pure v2 every container gets its own cgroup namespace, as Docker's default.
        security_options.push("name=cgroupns".to_owned());
    }
    let config = crate::registry::auth::ConfigFile::load(&crate::registry::auth::config_path())
        .unwrap_or_default();
    let registries = crate::registry::config::RegistryConfig::load(&config.insecure_registries)?;
    let uname = nix::sys::utsname::uname().context("uname")?;
    Ok(Info {
        containers: containers.len(),
        containers_running: running_or_paused.len() - paused,
        containers_paused: paused,
        containers_stopped: containers.len() - running_or_paused.len(),
        images,
        driver: "overlay2",
        driver_status: vec![
            ["Backing Filesystem".into(), backing_filesystem(&paths.root)],
            ["Supports d_type".into(), "true".into()],
        ],
        logging_driver: "json-file",
        cgroup_driver: "cgroupfs",
        cgroup_version: if v2 { "2" } else { "1" }.to_owned(),
        kernel_version: uname.release().to_string_lossy().into_owned(),
        operating_system: super::operating_system(),
        os_type: "linux",
        architecture: uname.machine().to_string_lossy().into_owned(),
        index_server_address: "https://index.docker.io/v1/",
        registry_config: RegistryConfig {
            insecure_registry_cidrs: registries
                .insecure_cidrs
                .iter()
                .map(ToString::to_string)
                .collect(),
            insecure_registries: registries.insecure_hosts.clone(),
            mirrors: registries.mirrors.clone(),
        },
        ncpu: super::cpus(),
        mem_total: super::total_memory()?,
        docker_root_dir: paths.root.to_string_lossy().into_owned(),
        name: uname.nodename().to_string_lossy().into_owned(),
        server_version: super::VERSION,
        security_options,
        experimental_build: false,
        live_restore_enabled: false,
        warnings: Vec::new(),
    })
}

/// `info`'s text, in `docker info`'s layout.
pub fn info_text(i: &Info) -> String {
    let mut out = format!(
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n\nServer:\n",
        super::VERSION
    );
    out += &format!(
        " Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n Images: {}\n",
        i.containers, i.containers_running, i.containers_paused, i.containers_stopped, i.images
    );
    out += &format!(
        " Server Version: {}\n Storage Driver: {}\n",
        i.server_version, i.driver
    );
    for [key, value] in &i.driver_status {
        out += &format!("  {key}: {value}\n");
    }
    out += &format!(
        " Logging Driver: {}\n Cgroup Driver: {}\n Cgroup Version: {}\n Security Options:\n",
        i.logging_driver, i.cgroup_driver, i.cgroup_version
    );
    for option in &i.security_options {
        let mut parts = option.split(',');
        let name = parts.next().unwrap_or_default();
        out += &format!("  {}\n", name.trim_start_matches("name="));
        for part in parts {
            if let Some((key, value)) = part.split_once('=') {
                out += &format!("   {}{}: {value}\n", key[..1].to_uppercase(), &key[1..]);
            }
        }
    }
    out += &format!(
        " Kernel Version: {}\n Operating System: {}\n OSType: {}\n Architecture: {}\n \
         CPUs: {}\n Total Memory: {}\n Name: {}\n Docker Root Dir: {}\n Debug Mode: false\n \
         Experimental: {}\n",
        i.kernel_version,
        i.operating_system,
        i.os_type,
        i.architecture,
        i.ncpu,
        bytes_size(i.mem_total),
        i.name,
        i.docker_root_dir,
        i.experimental_build
    );
    out += " Insecure Registries:\n";
    let registries = &i.registry_config;
    for registry in registries
        .insecure_registries
        .iter()
        .chain(&registries.insecure_registry_cidrs)
    {
        out += &format!("  {registry}\n");
    }
    if !registries.mirrors.is_empty() {
        out += " Registry Mirrors:\n";
        for mirror in &registries.mirrors {
            out += &format!("  {mirror}\n");
        }
    }
    out += &format!(" Live Restore Enabled: {}\n", i.live_restore_enabled);
    out
}

/// `minidock info [--format TEMPLATE]`
#[derive(Debug, Clone, clap::Args)]
pub struct InfoArgs {
    /// Format the output with a Go template ({{.ContainersRunning}}), or json
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

const INFO_SHAPE: Shape = Shape {
    maps: &[],
    pointers: &[],
    omitted: &[],
};

/// `minidock info`.
pub fn run_info(paths: &Paths, args: &InfoArgs) -> Result<u8> {
    let record = info(paths)?;
    match &args.format {
        Some(format) => print!("{}", render(format, &record, &INFO_SHAPE)?),
        None => print!("{}", info_text(&record)),
    }
    Ok(0)
}
