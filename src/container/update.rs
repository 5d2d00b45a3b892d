//! `update [OPTIONS] CONTAINER...`: new resource limits for a container, as `docker update`
//! sets them. A running container's cgroup files are written at once (the runtime's own
//! resources writer, [`crate::cgroup::Cgroup::apply`], over the directories the container
//! runs in); the limits are also kept in the bundle's `config.json`, so the next start applies
//! them, and in `state.json`, so `inspect` shows them under `HostConfig`.

use super::state::{ContainerState, RunConfig, Status};
use super::{Paths, REQUEST_FAILED};
use crate::cgroup::units;
use crate::cli::Exit;
use crate::explain::{self, Chapter};
use anyhow::{Context, Result};
use serde_json::{Value, json};

/// The limits `update` changes; `None` leaves one as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateOptions {
    /// `-m`: bytes.
    pub memory: Option<i64>,
    /// `--memory-swap`: memory plus swap in bytes; -1 for unlimited swap.
    pub memory_swap: Option<i64>,
    /// `--cpus`: billionths of a CPU.
    pub nano_cpus: Option<i64>,
    /// `--cpu-shares`: relative weight (default 1024).
    pub cpu_shares: Option<u64>,
    /// `--pids-limit`: -1 (or 0) for unlimited.
    pub pids_limit: Option<i64>,
}

fn bad_flag(message: String) -> anyhow::Error {
    Exit::new(REQUEST_FAILED, message).into()
}

impl UpdateOptions {
    /// Parses Docker's flags: sizes as `-m` takes them (`32m`, `1g`), `--cpus` as a decimal.
    /// `--memory-swap -1` is unlimited swap. Errors exit 1.
    pub fn parse(
        memory: Option<&str>,
        memory_swap: Option<&str>,
        cpus: Option<&str>,
        cpu_shares: Option<u64>,
        pids_limit: Option<i64>,
    ) -> Result<UpdateOptions> {
        let size = |flag: &str, text: &str| -> Result<i64> {
            if text == "-1" {
                return Ok(-1);
            }
            let bytes = units::parse_size(text).map_err(|e| bad_flag(format!("{flag}: {e:#}")))?;
            i64::try_from(bytes).map_err(|_| bad_flag(format!("{flag}: {text:?} is too large")))
        };
        let memory = memory.map(|m| size("--memory", m)).transpose()?;
        if memory.is_some_and(|m| m >= 0 && m < crate::cgroup::MIN_MEMORY as i64) {
            return Err(bad_flag(
                "minimum memory limit allowed is 6MB (--memory)".into(),
            ));
        }
        let memory_swap = memory_swap.map(|m| size("--memory-swap", m)).transpose()?;
        if let (Some(m), Some(s)) = (memory, memory_swap)
            && s >= 0
            && s < m
        {
            return Err(bad_flag(
                "minimum memoryswap limit should be larger than memory limit, see usage".into(),
            ));
        }
        let nano_cpus = cpus
            .map(|c| {
                units::parse_cpus(c)
                    .map(|q| (q.quota_us as i64) * 1_000_000_000 / q.period_us as i64)
                    .map_err(|e| bad_flag(format!("{e:#}")))
            })
            .transpose()?;
        Ok(UpdateOptions {
            memory,
            memory_swap,
            nano_cpus,
            cpu_shares,
            pids_limit,
        })
    }

    fn is_empty(&self) -> bool {
        *self == UpdateOptions::default()
    }

    /// The same limits as a runtime-spec `linux.resources` fragment (config-linux.md).
    fn oci_resources(&self) -> Value {
        let mut out = json!({});
        if let Some(m) = self.memory {
            out["memory"]["limit"] = json!(m);
        }
        if let Some(s) = self.memory_swap {
            out["memory"]["swap"] = json!(s);
        }
        if let Some(n) = self.nano_cpus {
            let period = units::CPU_PERIOD_US as i64;
            out["cpu"]["quota"] = json!(n * period / 1_000_000_000);
            out["cpu"]["period"] = json!(period);
        }
        if let Some(s) = self.cpu_shares {
            out["cpu"]["shares"] = json!(s);
        }
        if let Some(p) = self.pids_limit {
            out["pids"]["limit"] = json!(if p <= 0 { -1 } else { p });
        }
        out
    }

    /// Records the limits where `inspect` reads them.
    fn record(&self, config: &mut RunConfig) {
        if let Some(m) = self.memory {
            config.memory = m.max(0);
        }
        if let Some(s) = self.memory_swap {
            config.memory_swap = s;
        }
        if let Some(n) = self.nano_cpus {
            config.nano_cpus = n;
        }
        if let Some(s) = self.cpu_shares {
            config.cpu_shares = s as i64;
        }
        if let Some(p) = self.pids_limit {
            config.pids_limit = p.max(0);
        }
    }
}

/// Merges `fragment` into `target`, object by object.
fn merge(target: &mut Value, fragment: &Value) {
    match (target, fragment) {
        (Value::Object(t), Value::Object(f)) => {
            for (key, value) in f {
                merge(t.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (t, f) => *t = f.clone(),
    }
}

/// Writes the limits into the cgroup directories of a running container.
fn apply_live(state: &ContainerState, fragment: &Value) -> Result<()> {
    let mut spec = oci_spec::runtime::Spec::default();
    let resources: oci_spec::runtime::LinuxResources =
        serde_json::from_value(fragment.clone()).context("building the resources")?;
    let mut linux = oci_spec::runtime::Linux::default();
    linux.set_resources(Some(resources));
    spec.set_linux(Some(linux));
    let mut wanted = crate::runtime::spec::resources(&spec)?;
    // The device rules stay as the container was made with.
    wanted.devices = None;
    let layout = crate::cgroup::detect()?;
    let cgroup = crate::cgroup::Cgroup::open_existing(&layout, &state.cgroup_paths)?;
    explain::step(
        "write the new limits into the container's cgroup",
        || format!("write({:?}, ...)", state.cgroup_paths),
        Chapter::PuttingTogether,
    );
    cgroup.apply(&wanted)
}

/// `update`: applies `options` to container `name` (running or not). Errors exit 1:
/// no flag given, no such container, a memory limit above the memory-plus-swap limit already
/// set, a limit the kernel refuses.
pub fn update(paths: &Paths, name: &str, options: &UpdateOptions) -> Result<()> {
    if options.is_empty() {
        return Err(bad_flag(
            "you must provide one or more flags when using this command".into(),
        ));
    }
    let state = paths.resolve(name)?;
    let swap = state.config.memory_swap;
    if let (Some(memory), None) = (options.memory, options.memory_swap)
        && swap > 0
        && memory > swap
    {
        return Err(bad_flag(
            "memory limit should be smaller than already set memoryswap limit, update the \
             memoryswap at the same time"
                .into(),
        ));
    }
    let fragment = options.oci_resources();
    if state.observe() == Status::Running && state.process_alive() {
        apply_live(&state, &fragment)
            .map_err(|err| bad_flag(format!("cannot update container {}: {err:#}", state.id)))?;
    }
    let _lock = paths.lock()?;
    let bundle = paths.dir(&state.id).join("config.json");
    let text = std::fs::read(&bundle).with_context(|| format!("reading {}", bundle.display()))?;
    let mut spec: Value =
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", bundle.display()))?;
    merge(&mut spec["linux"]["resources"], &fragment);
    let bytes = serde_json::to_vec_pretty(&spec)?;
    crate::state::write_atomic_unsynced_with_mode(&bundle, &bytes, 0o600)?;
    let Some(mut current) = ContainerState::load(paths, &state.id)? else {
        return Err(super::no_such_container(name));
    };
    options.record(&mut current.config);
    current.save(paths)
}

/// `update`: the restart policy `restart` when given, and the limits `options` when given
/// or when no restart policy is (then at least one is needed); records `update`, as dockerd
/// does once per container updated. Errors: as [`update_restart_policy`] and [`update`].
pub fn update_container(
    paths: &Paths,
    name: &str,
    restart: Option<&super::state::RestartPolicy>,
    options: &UpdateOptions,
) -> Result<()> {
    if let Some(policy) = restart {
        update_restart_policy(paths, name, policy)?;
    }
    if restart.is_none() || *options != UpdateOptions::default() {
        update(paths, name, options)?;
    }
    crate::events::container_named(paths, name, "update", &[]);
    Ok(())
}

/// `update --restart`: a new restart policy, which the supervisor of a running container
/// reads at the process's next exit. Refused for an `--rm` container, as Docker does.
pub fn update_restart_policy(
    paths: &Paths,
    name: &str,
    policy: &super::state::RestartPolicy,
) -> Result<()> {
    let state = paths.resolve(name)?;
    if state.config.auto_remove && policy.is_set() {
        return Err(bad_flag(
            "Restart policy cannot be updated because AutoRemove is enabled for the container"
                .into(),
        ));
    }
    ContainerState::update(paths, &state.id, |s| {
        s.config.restart_policy = policy.clone();
    })?
    .ok_or_else(|| super::no_such_container(name))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_oci_resources() {
        let options =
            UpdateOptions::parse(Some("64m"), Some("-1"), Some("0.5"), Some(512), Some(-1))
                .unwrap();
        assert_eq!(options.nano_cpus, Some(500_000_000));
        assert_eq!(
            options.oci_resources(),
            json!({"memory": {"limit": 67108864, "swap": -1},
                   "cpu": {"quota": 50000, "period": 100000, "shares": 512},
                   "pids": {"limit": -1}})
        );
        assert!(UpdateOptions::parse(Some("64m"), Some("32m"), None, None, None).is_err());
        assert!(UpdateOptions::parse(Some("1m"), None, None, None, None).is_err());
        assert!(UpdateOptions::parse(None, None, Some("x"), None, None).is_err());
        let mut config = RunConfig::default();
        options.record(&mut config);
        assert_eq!((config.memory, config.pids_limit), (67108864, 0));
    }
}
