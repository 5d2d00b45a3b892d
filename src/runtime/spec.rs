//! Reading a bundle's `config.json` (the OCI runtime spec, config.md) with errors that name the
//! field, and turning its parts into the types of minidock's mechanism modules.

use crate::cgroup::devices::{self, DeviceRule};
use crate::cgroup::{BlockIo, CgroupsPath, Limit, Resources};
use crate::ns::{IdMapping, IdMaps, Namespace};
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};
use std::path::{Path, PathBuf};

/// Loads `BUNDLE/config.json`. A malformed file gets one line naming the field, such as
/// `config.json: process.args: invalid type: string "sh", expected a sequence`.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("{}", path.display()))
}

pub fn parse(text: &str) -> Result<Spec> {
    Ok(parse_with_warnings(text)?.0)
}

/// [`parse`], also returning the capabilities of `process.capabilities` that cannot be
/// granted because this kernel (or minidock) does not know them. They are left out of the
/// spec; runtime-spec 1.1 (config.md, "Linux Process") asks the runtime to log a warning for
/// each and go on, and runc prints `ignoring unknown or unavailable capabilities: [...]`.
pub fn parse_with_warnings(text: &str) -> Result<(Spec, Vec<String>)> {
    let mut value: serde_json::Value = serde_json::from_str(text)?;
    let ignored = strip_unknown_capabilities(&mut value);
    let spec: Spec = serde_path_to_error::deserialize(value).map_err(|err| {
        let field = err.path().to_string();
        let inner = err.into_inner();
        if field == "." {
            anyhow::anyhow!("{inner}")
        } else {
            anyhow::anyhow!("{field}: {inner}")
        }
    })?;
    validate(&spec)?;
    Ok((spec, ignored))
}

/// Removes the capability names nobody knows from every set of `process.capabilities`, and
/// returns them with those this kernel does not know (above `cap_last_cap`), sorted, once each.
fn strip_unknown_capabilities(config: &mut serde_json::Value) -> Vec<String> {
    use oci_spec::runtime::Capability;
    let last = crate::security::caps::last_cap();
    let mut ignored = std::collections::BTreeSet::new();
    let Some(sets) = config
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return Vec::new();
    };
    for set in sets.values_mut().filter_map(|s| s.as_array_mut()) {
        set.retain(|name| {
            let Some(text) = name.as_str() else {
                return true;
            };
            match serde_json::from_value::<Capability>(name.clone()) {
                Ok(cap) => {
                    if crate::security::caps::capability_number(cap) > last {
                        ignored.insert(text.to_owned());
                    }
                    true
                }
                Err(_) => {
                    ignored.insert(text.to_owned());
                    false
                }
            }
        });
    }
    ignored.into_iter().collect()
}

// ANCHOR: check_rootless
/// runc's checks of a bundle run by a user other than root (`runc --rootless`,
/// libcontainer/configs/validate/rootless.go), in runc's words: the container needs a user
/// namespace of its own with both id maps, because only a user namespace makes the user root
/// of anything; and a `uid=`/`gid=` mount option must name an id the container maps.
pub fn check_rootless(spec: &Spec) -> Result<()> {
    if !namespaces(spec)
        .iter()
        .any(|(ns, _)| *ns == Namespace::User)
    {
        bail!("rootless container requires user namespaces");
    }
    let linux = spec.linux().as_ref();
    let uids = linux
        .and_then(|l| l.uid_mappings().clone())
        .unwrap_or_default();
    let gids = linux
        .and_then(|l| l.gid_mappings().clone())
        .unwrap_or_default();
    if uids.is_empty() {
        bail!("User namespaces enabled, but no uid mappings found.");
    }
    if gids.is_empty() {
        bail!("User namespaces enabled, but no gid mappings found.");
    }
    for mount in spec.mounts().iter().flatten() {
        for option in mount.options().iter().flatten() {
            for (key, maps) in [("uid", &uids), ("gid", &gids)] {
                let Some(id) = option.strip_prefix(key).and_then(|o| o.strip_prefix('=')) else {
                    continue;
                };
                let Ok(id) = id.parse::<i64>() else { continue };
                if !maps.iter().any(|m| {
                    let start = i64::from(m.container_id());
                    id >= start && id < start + i64::from(m.size())
                }) {
                    bail!(
                        "cannot specify {key}= mount options for unmapped {key} in rootless \
                         containers"
                    );
                }
            }
        }
    }
    Ok(())
}
// ANCHOR_END: check_rootless

/// The `mounts` destinations that are not absolute. runtime-spec 1.1 (config.md, "Mounts")
/// asks for absolute ones; runc warns about the others and takes them as relative to the
/// container's root, and so does minidock.
pub fn relative_mount_destinations(spec: &Spec) -> Vec<PathBuf> {
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    mounts
        .iter()
        .map(|m| m.destination().clone())
        .filter(|d| !d.is_absolute())
        .collect()
}

/// The checks the spec asks a runtime to make before it creates anything.
fn validate(spec: &Spec) -> Result<()> {
    let process = spec.process().as_ref().context("process: missing")?;
    check_process(process)?;
    if spec.root().is_none() {
        bail!("root: missing (the bundle's root filesystem)");
    }
    let namespaces = namespaces(spec);
    for (i, ns) in namespaces.iter().enumerate() {
        if namespaces[..i].iter().any(|(other, _)| *other == ns.0) {
            bail!("linux.namespaces: {:?} is listed twice", ns.0.proc_name());
        }
        if ns.1.is_some() && ns.0 == Namespace::User {
            bail!("linux.namespaces: joining a user namespace by path is not supported");
        }
    }
    // A hostname outside a UTS namespace of the container's would rename the host (runc's
    // validator refuses it with these words).
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty())
        && !namespaces.iter().any(|(ns, _)| *ns == Namespace::Uts)
    {
        bail!("hostname: unable to set hostname without a private UTS namespace");
    }
    let linux = spec.linux().as_ref();
    if !namespaces.iter().any(|(ns, _)| *ns == Namespace::Mount) {
        let listed = |l: Option<&Vec<String>>| l.is_some_and(|l| !l.is_empty());
        if linux.is_some_and(|l| {
            listed(l.masked_paths().as_ref()) || listed(l.readonly_paths().as_ref())
        }) {
            bail!(
                "linux.maskedPaths and linux.readonlyPaths need a mount namespace (linux.namespaces)"
            );
        }
    }
    for key in linux
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        check_sysctl(key, &namespaces)?;
    }
    Ok(())
}

/// The checks runc makes on a process (`config.json`'s or `exec`'s) before it runs it:
/// `args` names a program, `cwd` is absolute, every id is in 0..=2147483647 (a uid of
/// 4294967295 is -1 to setresuid(2), which would leave the process root), and every `env`
/// entry is `NAME=VALUE` with a non-empty name and no NUL byte. Errors use runc's words.
pub fn check_process(process: &oci_spec::runtime::Process) -> Result<()> {
    if process.args().as_ref().is_none_or(Vec::is_empty) {
        bail!("process.args: must name at least the program to run");
    }
    if !process.cwd().is_absolute() {
        bail!("process.cwd: {:?} must be an absolute path", process.cwd());
    }
    let user = process.user();
    let groups = user.additional_gids().as_ref();
    let ids = [user.uid(), user.gid()].into_iter();
    if ids
        .chain(groups.into_iter().flatten().copied())
        .any(|id| id > i32::MAX as u32)
    {
        bail!(
            "process.user: uids and gids must be in range 0-{}",
            i32::MAX
        );
    }
    for entry in process.env().as_ref().into_iter().flatten() {
        match entry.split_once('=') {
            None => bail!("process.env: invalid environment variable: {entry:?}"),
            Some(("", _)) => {
                bail!("process.env: environment variable name can't be empty: {entry:?}")
            }
            Some(_) if entry.contains('\0') => {
                bail!(
                    "process.env: environment variable value can't contain null(\\x00): {entry:?}"
                )
            }
            Some(_) => {}
        }
    }
    Ok(())
}

// ANCHOR: check_sysctl
/// Refuses a `linux.sysctl` key that would change the host rather than the container: only
/// the keys a namespace of the container's own isolates are allowed, as runc allows them
/// (IPC keys with an IPC namespace, `net.*` with a network namespace that is not the
/// runtime's own, `kernel.domainname` with a UTS namespace).
pub fn check_sysctl(key: &str, namespaces: &[(Namespace, Option<PathBuf>)]) -> Result<()> {
    let key = sysctl_dotted(key);
    let has = |want: Namespace| namespaces.iter().find(|(ns, _)| *ns == want);
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
        if has(Namespace::Ipc).is_none() {
            bail!("linux.sysctl: {key:?} is not allowed in the host's IPC namespace");
        }
        return Ok(());
    }
    if key.starts_with("net.") {
        let host = match has(Namespace::Net) {
            None => true,
            Some((_, None)) => false,
            Some((_, Some(path))) => same_file(path, Path::new("/proc/self/ns/net"))?,
        };
        if host {
            bail!("linux.sysctl: {key:?} is not allowed in the host's network namespace");
        }
        return Ok(());
    }
    if has(Namespace::Uts).is_some() {
        match key.as_str() {
            "kernel.domainname" => return Ok(()),
            "kernel.hostname" => bail!("linux.sysctl: {key:?} conflicts with the hostname field"),
            _ => {}
        }
    }
    bail!("linux.sysctl: {key:?} is not in a separate kernel namespace")
}
// ANCHOR_END: check_sysctl

/// A sysctl name with dots (`net.ipv4.ip_forward`); `net/ipv4/ip_forward` is accepted too.
pub fn sysctl_dotted(key: &str) -> String {
    if key.contains('/') {
        key.chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                c => c,
            })
            .collect()
    } else {
        key.to_owned()
    }
}

fn same_file(a: &Path, b: &Path) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let meta = |p: &Path| std::fs::metadata(p).with_context(|| format!("stat {}", p.display()));
    let (a, b) = (meta(a)?, meta(b)?);
    Ok(a.dev() == b.dev() && a.ino() == b.ino())
}

/// The root filesystem, as an absolute path (`root.path` is relative to the bundle).
pub fn rootfs(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let root = spec.root().as_ref().context("root: missing")?;
    let path = bundle.join(root.path());
    path.canonicalize()
        .with_context(|| format!("root.path: {} does not exist", path.display()))
}

fn namespace_of(typ: LinuxNamespaceType) -> Option<Namespace> {
    Some(match typ {
        LinuxNamespaceType::Mount => Namespace::Mount,
        LinuxNamespaceType::Cgroup => Namespace::Cgroup,
        LinuxNamespaceType::Uts => Namespace::Uts,
        LinuxNamespaceType::Ipc => Namespace::Ipc,
        LinuxNamespaceType::User => Namespace::User,
        LinuxNamespaceType::Pid => Namespace::Pid,
        LinuxNamespaceType::Network => Namespace::Net,
        LinuxNamespaceType::Time => return None,
    })
}

/// The spec's namespaces: each type, and the path to join when it is an existing one.
pub fn namespaces(spec: &Spec) -> Vec<(Namespace, Option<PathBuf>)> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|ns| Some((namespace_of(ns.typ())?, ns.path().clone())))
        .collect()
}

/// The spec's `uidMappings` and `gidMappings`, `None` without any. Rootless (joined to the
/// holder, see [`crate::rootless`]), the host ids are turned into the holder namespace's, so
/// a bundle made by `runc spec --rootless` maps root to the user, as with runc. Errors: a
/// host id the user cannot map.
pub fn id_maps(spec: &Spec) -> Result<Option<IdMaps>> {
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(None);
    };
    let convert = |maps: &Option<Vec<LinuxIdMapping>>| -> Vec<IdMapping> {
        maps.iter()
            .flatten()
            .map(|m| IdMapping {
                inside: m.container_id(),
                outside: m.host_id(),
                count: m.size(),
            })
            .collect()
    };
    let maps = IdMaps {
        uids: convert(linux.uid_mappings()),
        gids: convert(linux.gid_mappings()),
    };
    if maps.uids.is_empty() {
        return Ok(None);
    }
    if crate::rootless::joined() {
        return crate::rootless::holder_id_maps(&maps).map(Some);
    }
    Ok(Some(maps))
}

// ANCHOR: resources
/// `linux.resources` as the cgroup module's [`Resources`]. The device rules are the spec's,
/// followed by the default list runc appends ([`devices::DEFAULT_ALLOWED`]), so `runc spec`'s
/// deny-all rule leaves exactly runc's devices usable. Errors name the field.
pub fn resources(spec: &Spec) -> Result<Resources> {
    let mut out = Resources::default();
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(out);
    };
    let Some(resources) = linux.resources().as_ref() else {
        return Ok(out);
    };
    out.devices = Some(device_rules(
        resources.devices().as_deref().unwrap_or_default(),
    )?);
    if let Some(memory) = resources.memory() {
        out.memory = memory_bytes("limit", memory.limit())?;
        out.memory_swap = memory_bytes("swap", memory.swap())?;
        out.memory_reservation = memory_bytes("reservation", memory.reservation())?;
        out.memory_swappiness = memory.swappiness();
        out.oom_kill_disable = memory.disable_oom_killer();
    }
    if let Some(cpu) = resources.cpu() {
        out.cpu_quota = set(cpu.quota()).map(Limit::from_oci);
        out.cpu_period = set(cpu.period());
        out.cpu_shares = set(cpu.shares());
        out.cpuset_cpus = cpu.cpus().clone().filter(|c| !c.is_empty());
        out.cpuset_mems = cpu.mems().clone().filter(|m| !m.is_empty());
    }
    if let Some(pids) = resources.pids() {
        out.pids = set(Some(pids.limit())).map(Limit::from_oci);
    }
    out.block_io = resources.block_io().as_ref().map(block_io);
    for limit in resources.hugepage_limits().iter().flatten() {
        let bytes = u64::try_from(limit.limit()).with_context(|| {
            format!(
                "linux.resources.hugepageLimits: negative limit for {}",
                limit.page_size()
            )
        })?;
        out.hugepage_limits.push((limit.page_size().clone(), bytes));
    }
    if let Some(network) = resources.network() {
        out.net_class_id = set(network.class_id());
        for p in network.priorities().iter().flatten() {
            out.net_priorities.push((p.name().clone(), p.priority()));
        }
    }
    out.unified = resources
        .unified()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    Ok(out)
}
// ANCHOR_END: resources

/// runc's convention for `linux.resources`: a zero leaves the kernel's value alone (Docker
/// sends `0` for every limit the user did not set, `"shares": 0`, `"weight": 0`, ...).
fn set<T: Default + PartialEq>(value: Option<T>) -> Option<T> {
    value.filter(|v| *v != T::default())
}

/// A `linux.resources.memory` field: bytes, `-1` for no limit. The kernel refuses any other
/// negative number in these files, and so does runc (`failed to write "-5"`); refused here
/// before anything is created. Pids and the CPU quota, where runc reads any negative number
/// as no limit, go through [`Limit::from_oci`].
fn memory_bytes(field: &str, value: Option<i64>) -> Result<Option<Limit>> {
    match set(value) {
        Some(n) if n < -1 => bail!(
            "linux.resources.memory.{field}: {n} is not a number of bytes, or -1 for no limit"
        ),
        other => Ok(other.map(Limit::from_oci)),
    }
}

/// `linux.resources.devices` followed by runc's defaults.
fn device_rules(rules: &[oci_spec::runtime::LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>> {
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let parsed = DeviceRule::from_spec(
            rule.allow(),
            rule.typ().map(|t| t.as_str().to_owned()).as_deref(),
            rule.major(),
            rule.minor(),
            rule.access().as_deref(),
        )
        .with_context(|| format!("linux.resources.devices[{i}]"))?;
        out.push(parsed);
    }
    out.extend_from_slice(devices::DEFAULT_ALLOWED);
    Ok(out)
}

fn block_io(io: &oci_spec::runtime::LinuxBlockIo) -> BlockIo {
    let throttle = |list: &Option<Vec<oci_spec::runtime::LinuxThrottleDevice>>| {
        list.iter()
            .flatten()
            .map(|d| (d.major(), d.minor(), d.rate()))
            .collect()
    };
    BlockIo {
        weight: set(io.weight()),
        leaf_weight: set(io.leaf_weight()),
        weight_device: io
            .weight_device()
            .iter()
            .flatten()
            .map(|d| (d.major(), d.minor(), d.weight(), d.leaf_weight()))
            .collect(),
        throttle_read_bps: throttle(io.throttle_read_bps_device()),
        throttle_write_bps: throttle(io.throttle_write_bps_device()),
        throttle_read_iops: throttle(io.throttle_read_iops_device()),
        throttle_write_iops: throttle(io.throttle_write_iops_device()),
    }
}

/// `linux.cgroupsPath`, when the spec has one.
pub fn cgroups_path(spec: &Spec) -> Result<Option<CgroupsPath>> {
    let Some(path) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
    else {
        return Ok(None);
    };
    CgroupsPath::parse(&path.to_string_lossy()).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_config_names_the_field() {
        let err = parse(r#"{"ociVersion":"1.0.2","process":{"args":"sh","cwd":"/","user":{"uid":0,"gid":0}},"root":{"path":"rootfs"}}"#)
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.starts_with("process.args:"), "{text}");
    }

    #[test]
    fn a_relative_cwd_is_refused() {
        let err = parse(r#"{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"tmp","user":{"uid":0,"gid":0}},"root":{"path":"rootfs"}}"#)
            .unwrap_err();
        assert!(format!("{err:#}").contains("process.cwd"));
    }

    #[test]
    fn resources_follow_the_oci_conventions() {
        let spec = parse(r#"{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},"root":{"path":"rootfs"},
            "linux":{"resources":{"memory":{"limit":33554432,"swap":-1},"pids":{"limit":20},"cpu":{"quota":50000,"period":100000}}}}"#)
            .unwrap();
        let r = resources(&spec).unwrap();
        assert_eq!(r.memory, Some(Limit::Value(32 << 20)));
        assert_eq!(r.memory_swap, Some(Limit::Unlimited));
        assert_eq!(r.pids, Some(Limit::Value(20)));
        assert_eq!(r.cpu_quota, Some(Limit::Value(50000)));
    }

    #[test]
    fn runcs_rootless_checks_refuse_what_runc_refuses() {
        let spec = |linux: &str, mounts: &str| {
            parse(&format!(
                r#"{{"ociVersion":"1.0.2","process":{{"args":["sh"],"cwd":"/","user":{{"uid":0,"gid":0}}}},"root":{{"path":"rootfs"}},"mounts":[{mounts}],"linux":{linux}}}"#
            ))
            .unwrap()
        };
        let userns = r#""namespaces":[{"type":"user"},{"type":"mount"}]"#;
        let maps = r#""uidMappings":[{"containerID":0,"hostID":1000,"size":1}],"gidMappings":[{"containerID":0,"hostID":1000,"size":1}]"#;
        let devpts = |opt: &str| {
            format!(
                r#"{{"destination":"/dev/pts","type":"devpts","source":"devpts","options":["{opt}"]}}"#
            )
        };
        let err = |s: &Spec| check_rootless(s).unwrap_err().to_string();
        assert_eq!(
            err(&spec(r#"{"namespaces":[{"type":"mount"}]}"#, "")),
            "rootless container requires user namespaces"
        );
        assert!(err(&spec(&format!("{{{userns}}}"), "")).contains("no uid mappings found"));
        let ok = spec(&format!("{{{userns},{maps}}}"), &devpts("gid=0"));
        check_rootless(&ok).unwrap();
        let gid5 = spec(&format!("{{{userns},{maps}}}"), &devpts("gid=5"));
        assert_eq!(
            err(&gid5),
            "cannot specify gid= mount options for unmapped gid in rootless containers"
        );
    }
}
