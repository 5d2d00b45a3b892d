//! The runc verbs beyond the OCI lifecycle: `list`, `ps`, `kill --all`, `pause`, `resume`,
//! `update` and `features` (runc(8)). They all work on what `create` recorded in the state:
//! the container's process and its cgroup directories.
//!
//! Pausing uses the cgroup freezer (`crate::cgroup::freezer`): on v2 the container's own
//! directory (`cgroup.freeze`); on v1 the directory of the same name in the `freezer`
//! hierarchy, into which the container's processes are moved when it is paused.

use super::cli::Format;
use super::signal::Signal;
use super::{State, Status};
use crate::cgroup::freezer::{self, FreezerState};
use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The pids in the container's cgroup directories now, sorted and without repeats.
pub fn pids(state: &State) -> Vec<i32> {
    let mut pids = BTreeSet::new();
    for dir in &state.cgroup_paths {
        let text = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    pids.into_iter().collect()
}

fn load_live(root: &Path, id: &str) -> Result<State> {
    let state = State::load(root, id)?;
    if state.status == Status::Stopped {
        bail!("container {id:?} is not running");
    }
    Ok(state)
}

/// `kill --all`: sends `signal` to every process in the container's cgroup.
pub fn kill_all(root: &Path, id: &str, signal: Signal) -> Result<()> {
    let state = load_live(root, id)?;
    for pid in pids(&state) {
        // A process may exit between reading cgroup.procs and kill(2): that is fine.
        match signal.send(pid) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(errno) => return Err(errno).with_context(|| format!("kill({pid}, {signal})")),
        }
    }
    if state.status == Status::Paused && signal == Signal::KILL {
        // A frozen process only dies once thawed.
        set_frozen(&state, FreezerState::Thawed)?;
    }
    Ok(())
}

/// `delete`: as [`super::delete`], and a paused container (with `force`) is killed and thawed
/// first; the v1 freezer directory that `pause` made goes too.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let state = State::load(root, id)?;
    let freezer = freezer_dir(&state);
    if state.status == Status::Paused {
        if !force {
            bail!("container {id:?} is paused: resume it first, or use --force");
        }
        kill_all(root, id, Signal::KILL)?;
    }
    super::delete(root, id, force)?;
    if let Some(dir) = freezer.filter(|dir| !state.cgroup_paths.contains(dir)) {
        crate::cgroup::remove_existing(&dir)?;
    }
    Ok(())
}

/// The freezer directory of a container: its v2 directory, else `freezer/REL` where REL is the
/// container's path inside its other v1 hierarchies.
pub fn freezer_dir(state: &State) -> Option<PathBuf> {
    if let Some(dir) = state
        .cgroup_paths
        .iter()
        .find(|dir| dir.join("cgroup.freeze").exists() || dir.join("freezer.state").exists())
    {
        return Some(dir.clone());
    }
    let layout = crate::cgroup::detect().ok()?;
    let freezer = layout.controller("freezer")?;
    let relative = state.cgroup_paths.iter().find_map(|dir| {
        layout
            .controllers
            .iter()
            .find_map(|c| dir.strip_prefix(&c.mount).ok())
    })?;
    Some(freezer.mount.join(relative))
}

/// True while the container's freezer says it is frozen.
pub fn is_frozen(state: &State) -> bool {
    let Some(dir) = freezer_dir(state) else {
        return false;
    };
    match std::fs::read_to_string(dir.join("freezer.state")) {
        Ok(text) => text.trim() == "FROZEN",
        Err(_) => std::fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|t| t.trim() == "1"),
    }
}

fn set_frozen(state: &State, wanted: FreezerState) -> Result<()> {
    let dir = freezer_dir(state).context("this host has no cgroup freezer")?;
    if wanted == FreezerState::Frozen && !state.cgroup_paths.contains(&dir) {
        // v1: move every process in; children of a moved process are born inside. Repeat
        // after freezing for any process forked by one not yet moved.
        std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        move_into(state, &dir)?;
        freezer::set_state(&dir, wanted)?;
        return move_into(state, &dir);
    }
    freezer::set_state(&dir, wanted)
}

fn move_into(state: &State, dir: &Path) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    loop {
        let inside = std::fs::read_to_string(&procs).unwrap_or_default();
        let inside: BTreeSet<i32> = inside.lines().filter_map(|l| l.parse().ok()).collect();
        let missing: Vec<i32> = pids(state)
            .into_iter()
            .filter(|p| !inside.contains(p))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        for pid in missing {
            match std::fs::write(&procs, pid.to_string()) {
                Ok(()) => {}
                // Exited meanwhile.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("moving {pid} into {}", dir.display()));
                }
            }
        }
    }
}

/// `pause`: freezes every process of a running container.
pub fn pause(root: &Path, id: &str) -> Result<()> {
    let state = State::load(root, id)?;
    if state.status != Status::Running {
        bail!("container {id:?} is {:?}, not running", state.status);
    }
    set_frozen(&state, FreezerState::Frozen)
}

/// `resume`: thaws a paused container.
pub fn resume(root: &Path, id: &str) -> Result<()> {
    let state = State::load(root, id)?;
    if state.status != Status::Paused {
        bail!("container {id:?} is {:?}, not paused", state.status);
    }
    set_frozen(&state, FreezerState::Thawed)
}

/// `ps`: json prints the pids in the container's cgroup (`[1234,1240]`); table runs ps(1) with
/// `ps_args` (default `-ef`) and keeps its header and the container's lines.
pub fn ps(root: &Path, id: &str, format: Format, ps_args: &[String]) -> Result<()> {
    let state = State::load(root, id)?;
    let pids = pids(&state);
    if format == Format::Json {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let output = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("running ps")?;
    if !output.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps printed no PID column")?;
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(())
}

/// `list`: the containers in the state directory, as runc prints them (json: `null` when
/// there are none, as runc).
pub fn list(root: &Path, format: Format, quiet: bool) -> Result<()> {
    let mut states = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.path().join("state.json").exists() {
                continue;
            }
            if let Ok(state) = State::load(root, &name) {
                states.push(state);
            }
        }
    }
    states.sort_by(|a, b| a.id.cmp(&b.id));
    if quiet {
        for state in &states {
            println!("{}", state.id);
        }
        return Ok(());
    }
    // runc shows the owner of the state; rootless, that is the user, not root inside.
    let owner = crate::rootless::host_user_name().unwrap_or_else(|| "root".to_owned());
    if format == Format::Json {
        let list: Vec<serde_json::Value> = states
            .iter()
            .map(|s| {
                let mut value = s.oci_json();
                value["owner"] = owner.clone().into();
                value
            })
            .collect();
        let json = if list.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::Value::from(list)
        };
        println!("{json}");
        return Ok(());
    }
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for s in &states {
        let value = s.oci_json();
        rows.push([
            s.id.clone(),
            value["pid"].to_string(),
            value["status"].as_str().unwrap_or_default().to_owned(),
            s.bundle.display().to_string(),
            s.created.clone(),
            owner.clone(),
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}

/// Columns padded to their widest cell plus 4, at least 12, as Go's tabwriter does for runc.
fn table(rows: &[[String; 6]]) -> String {
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0).max(8) + 4)
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// runc's `update` options.
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// A runtime-spec `linux.resources` JSON file, or - for stdin (what containerd passes).
    #[arg(short, long, value_name = "FILE")]
    resources: Option<PathBuf>,
    /// Memory limit in bytes (suffixes k, m, g allowed).
    #[arg(short, long, value_name = "BYTES")]
    memory: Option<String>,
    /// Memory plus swap limit in bytes (-1: unlimited).
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// CPU time in microseconds per period (-1: unlimited).
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPU period in microseconds.
    #[arg(long, value_name = "US")]
    cpu_period: Option<u64>,
    /// CPU shares (relative weight).
    #[arg(long, value_name = "N")]
    cpu_shares: Option<u64>,
    /// Maximum number of tasks (-1: unlimited).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    id: String,
}

fn bytes(text: &str) -> Result<i64> {
    if text == "-1" {
        return Ok(-1);
    }
    let bytes =
        crate::cgroup::units::parse_size(text).with_context(|| format!("invalid size {text:?}"))?;
    i64::try_from(bytes).context("size too large")
}

/// The resources `update` asks for: the file's, then each flag over it.
fn requested(args: &UpdateArgs) -> Result<oci_spec::runtime::LinuxResources> {
    use oci_spec::runtime::{LinuxPids, LinuxResources};
    let mut resources: LinuxResources = match args.resources.as_deref() {
        None => LinuxResources::default(),
        Some(path) => {
            let text = if path == Path::new("-") {
                std::io::read_to_string(std::io::stdin()).context("reading stdin")?
            } else {
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?
            };
            serde_json::from_str(&text).context("parsing the resources JSON")?
        }
    };
    // As in runc, a zero means "leave as it is" (docker update sends zeros for the limits it
    // does not change).
    let nonzero_i = |v: Option<i64>| v.filter(|v| *v != 0);
    let nonzero_u = |v: Option<u64>| v.filter(|v| *v != 0);
    let mut memory = resources.memory().unwrap_or_default();
    memory.set_limit(nonzero_i(memory.limit()));
    memory.set_swap(nonzero_i(memory.swap()));
    memory.set_reservation(nonzero_i(memory.reservation()));
    if let Some(m) = &args.memory {
        memory.set_limit(Some(bytes(m)?));
    }
    if let Some(m) = &args.memory_swap {
        memory.set_swap(Some(bytes(m)?));
    }
    resources.set_memory(Some(memory));
    let mut cpu = resources.cpu().clone().unwrap_or_default();
    cpu.set_quota(nonzero_i(cpu.quota()));
    cpu.set_period(nonzero_u(cpu.period()));
    cpu.set_shares(nonzero_u(cpu.shares()));
    if resources.pids().is_some_and(|p| p.limit() == 0) {
        resources.set_pids(None);
    }
    if args.cpu_quota.is_some() {
        cpu.set_quota(args.cpu_quota);
    }
    if args.cpu_period.is_some() {
        cpu.set_period(args.cpu_period);
    }
    if args.cpu_shares.is_some() {
        cpu.set_shares(args.cpu_shares);
    }
    resources.set_cpu(Some(cpu));
    if let Some(limit) = args.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(limit);
        resources.set_pids(Some(pids));
    }
    Ok(resources)
}

/// `update`: writes new limits into the container's existing cgroup directories.
pub fn update(root: &Path, args: &UpdateArgs) -> Result<()> {
    let state = load_live(root, &args.id)?;
    let mut linux = oci_spec::runtime::Linux::default();
    linux.set_resources(Some(requested(args)?));
    let mut spec = oci_spec::runtime::Spec::default();
    spec.set_linux(Some(linux));
    let resources = super::spec::resources(&spec)?;
    let layout = crate::cgroup::detect()?;
    let cgroup = crate::cgroup::Cgroup::open_existing(&layout, &state.cgroup_paths)?;
    cgroup
        .apply(&resources)
        .with_context(|| format!("updating the limits of {:?}", args.id))
}

/// runc's `features` JSON (features.md of the runtime spec): what this runtime supports.
pub fn features() -> serde_json::Value {
    let capabilities: Vec<&str> = crate::security::caps::all_capabilities()
        .into_iter()
        .map(crate::security::caps::capability_name)
        .collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.0.2",
        "hooks": [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "mountOptions": [
            "async", "bind", "dev", "exec", "noatime", "nodev", "nodiratime", "noexec",
            "nosuid", "private", "rbind", "relatime", "ro", "rprivate", "rshared", "rslave",
            "runbindable", "rw", "shared", "slave", "strictatime", "suid", "sync",
            "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": capabilities,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": [
                    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                    "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                    "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"
                ],
                "operators": [
                    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                    "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"
                ],
                "archs": ["SCMP_ARCH_X86_64"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false}
        },
        "annotations": {
            "org.minidock.version": env!("CARGO_PKG_VERSION")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_line_up() {
        let rows = [
            ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from),
            ["a", "1", "running", "/b", "t", "root"].map(String::from),
        ];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0].find("PID"), lines[1].find('1'));
        assert_eq!(lines[0].find("OWNER"), lines[1].find("root"));
    }

    #[test]
    fn update_flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.json");
        std::fs::write(
            &file,
            r#"{"memory":{"limit":1000000,"swap":0},"pids":{"limit":5},"cpu":{"period":0,"shares":0}}"#,
        )
        .unwrap();
        let args = UpdateArgs {
            resources: Some(file),
            memory: Some("64m".into()),
            memory_swap: None,
            cpu_quota: Some(-1),
            cpu_period: None,
            cpu_shares: None,
            pids_limit: None,
            id: "x".into(),
        };
        let r = requested(&args).unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 5);
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(-1));
        // Zeros (what docker update sends for what it leaves alone) are not written.
        assert_eq!(r.cpu().as_ref().unwrap().period(), None);
        assert_eq!(r.cpu().as_ref().unwrap().shares(), None);
        assert_eq!(r.memory().as_ref().unwrap().swap(), None);
    }

    #[test]
    fn features_name_only_what_is_supported() {
        let f = features();
        assert_eq!(f["linux"]["cgroup"]["systemd"], false);
        let actions = f["linux"]["seccomp"]["actions"].as_array().unwrap();
        assert!(!actions.iter().any(|a| a == "SCMP_ACT_NOTIFY"));
        assert!(
            f["linux"]["capabilities"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == "CAP_SYS_ADMIN")
        );
    }
}
