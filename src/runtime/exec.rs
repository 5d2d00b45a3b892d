//! `minidock runtime exec`: runc's `exec`, one more process in a running container.
//!
//! The process is a runtime-spec `process` object (config.md, "Process"): the file given with
//! `--process` (what containerd's shim passes), or the container's own `process` from its
//! config.json with the command line's args and overrides (`--cwd`, `--env`, `--user`,
//! `--cap`, `--no-new-privs`, `--tty`). It joins the container's namespaces and cgroup and
//! takes the container's seccomp filter and the process's capabilities, user, rlimits and
//! no_new_privs, through the same code as `minidock exec` (`crate::container::exec`).
//! AppArmor profiles are honoured only on hosts without AppArmor (where they mean nothing);
//! SELinux labels are not supported.

use super::{State, Status};
use crate::container::exec::{Prepared, namespaces_to_join, spawn_in};
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{Capability, LinuxCapabilities, Process, Spec};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// runc's `exec` options.
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// A runtime-spec process JSON file: the process to run (the other options are ignored).
    #[arg(short, long, value_name = "FILE")]
    process: Option<PathBuf>,
    /// Return once the process runs, instead of waiting for it.
    #[arg(short, long)]
    detach: bool,
    /// Write the new process's pid to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// With a terminal: the unix socket that receives the pty master.
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Give the process a terminal.
    #[arg(short, long)]
    tty: bool,
    /// The working directory inside the container.
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// Set an environment variable (NAME=VALUE), repeatable.
    #[arg(short, long, value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// Run as UID[:GID] (numbers, as in runc).
    #[arg(short, long, value_name = "UID[:GID]")]
    user: Option<String>,
    /// Add a capability (CAP_NAME) to the bounding, effective and permitted sets (as runc;
    /// for a non-root user those last two are cleared by execve), repeatable.
    #[arg(short = 'c', long, value_name = "CAP")]
    cap: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    no_new_privs: bool,
    /// Descriptors beyond stdio to pass: only 0 is supported.
    #[arg(long, default_value_t = 0, value_name = "N")]
    preserve_fds: u32,
    id: String,
    /// The command and its arguments (without --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Runs the exec. Detached: returns 0 once the process has exec'd (it is then the caller's to
/// reap, as containerd's shim does as a subreaper). Else waits and returns its exit status.
pub fn exec(root: &Path, args: &ExecArgs) -> Result<u8> {
    if args.preserve_fds > 0 {
        bail!("--preserve-fds {} is not supported", args.preserve_fds);
    }
    let state = State::load(root, &args.id)?;
    if state.status != Status::Running {
        bail!(
            "cannot exec in a container that is {:?}: it must be running",
            state.status
        );
    }
    let spec = super::spec::load(&state.bundle)?;
    let process = process(args, &spec)?;
    let mut prepared = prepare(root, &state, &spec, &process)?;
    let terminal = prepared.console.is_some();
    if terminal && args.console_socket.is_none() && args.detach {
        bail!("a detached process with a terminal needs --console-socket");
    }
    let child = spawn_in(&prepared, state.pid, &state.cgroup_paths)
        .with_context(|| format!("exec in container {:?}", state.id))?;
    let master = match prepared.console.take() {
        Some(socket) => Some(crate::tty::receive_master(socket.parent.as_fd())?),
        None => None,
    };
    if let Some(path) = &args.pid_file {
        super::cli::write_pid_file(path, child.as_raw())?;
    }
    match (master, &args.console_socket) {
        (Some(master), Some(path)) => crate::tty::send_master(path, master.as_fd())?,
        (Some(master), None) => return crate::tty::proxy(master, child),
        (None, _) => {}
    }
    if args.detach {
        return Ok(0);
    }
    crate::ns::wait_for(child)
}

/// The process to run: `--process FILE`, or the container's own with the command line's
/// changes.
fn process(args: &ExecArgs, spec: &Spec) -> Result<Process> {
    if let Some(path) = &args.process {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let deserializer = &mut serde_json::Deserializer::from_str(&text);
        return serde_path_to_error::deserialize(deserializer)
            .map_err(|err| anyhow::anyhow!("{}: {}: {}", path.display(), err.path(), err.inner()));
    }
    if args.command.is_empty() {
        bail!("exec needs a command, or --process FILE");
    }
    let mut process = spec.process().clone().context("process: missing")?;
    process.set_args(Some(args.command.clone()));
    process.set_terminal(Some(args.tty));
    if let Some(cwd) = &args.cwd {
        process.set_cwd(cwd.clone());
    }
    let mut env = process.env().clone().unwrap_or_default();
    for entry in &args.env {
        crate::container::spec::set_env(&mut env, entry);
    }
    process.set_env(Some(env));
    if let Some(user) = &args.user {
        let (uid, gid) = parse_user(user)?;
        let mut spec_user = process.user().clone();
        spec_user.set_uid(uid);
        spec_user.set_gid(gid);
        process.set_user(spec_user);
    }
    if !args.cap.is_empty() {
        let mut caps = process.capabilities().clone().unwrap_or_default();
        add_capabilities(&mut caps, &args.cap)?;
        process.set_capabilities(Some(caps));
    }
    if args.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    Ok(process)
}

/// `UID[:GID]`, numbers only (runc's `--user`); the gid defaults to 0.
pub fn parse_user(text: &str) -> Result<(u32, u32)> {
    let (uid, gid) = text.split_once(':').unwrap_or((text, "0"));
    let number = |s: &str| {
        s.parse::<u32>()
            .with_context(|| format!("--user {text:?}: expected UID[:GID] as numbers"))
    };
    Ok((number(uid)?, number(gid)?))
}

fn add_capabilities(caps: &mut LinuxCapabilities, names: &[String]) -> Result<()> {
    use crate::security::caps::{CapArg, parse_capability};
    for name in names {
        let CapArg::One(cap) = parse_capability(name)? else {
            bail!("--cap takes one capability, not {name:?}");
        };
        let add = |set: &Option<std::collections::HashSet<Capability>>| {
            let mut set = set.clone().unwrap_or_default();
            set.insert(cap);
            Some(set)
        };
        caps.set_bounding(add(caps.bounding()));
        caps.set_effective(add(caps.effective()));
        caps.set_permitted(add(caps.permitted()));
    }
    Ok(())
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|text| text.trim() == "Y")
}

fn prepare(root: &Path, state: &State, spec: &Spec, process: &Process) -> Result<Prepared> {
    super::spec::check_process(process)?;
    let args = process.args().clone().unwrap_or_default();
    if process
        .apparmor_profile()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
        && apparmor_enabled()
    {
        bail!("process.apparmorProfile: AppArmor profiles are not supported");
    }
    if process
        .selinux_label()
        .as_ref()
        .is_some_and(|l| !l.is_empty())
    {
        bail!("process.selinuxLabel: SELinux labels are not supported");
    }
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(profile) => Some(crate::security::seccomp::compile_cached(
            profile,
            Some(&root.join(".seccomp-cache")),
        )?),
        None => None,
    };
    let user = process.user();
    Ok(Prepared {
        join: namespaces_to_join(state.pid)?,
        args,
        env: process.env().clone().unwrap_or_default(),
        cwd: process.cwd().clone(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        capabilities: process.capabilities().clone(),
        rlimits: process.rlimits().clone().unwrap_or_default(),
        no_new_privs: process.no_new_privileges() == Some(true),
        seccomp,
        stdin: None,
        console: if process.terminal() == Some(true) {
            Some(crate::tty::ConsoleSocket::new()?)
        } else {
            None
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_numbers() {
        assert_eq!(parse_user("1000").unwrap(), (1000, 0));
        assert_eq!(parse_user("1000:100").unwrap(), (1000, 100));
        assert!(parse_user("nobody").is_err());
    }

    #[test]
    fn added_capabilities_go_to_the_bounding_effective_and_permitted_sets() {
        let mut caps = LinuxCapabilities::default();
        add_capabilities(&mut caps, &["sys_admin".into()]).unwrap();
        for set in [caps.bounding(), caps.effective(), caps.permitted()] {
            assert!(set.as_ref().unwrap().contains(&Capability::SysAdmin));
        }
        let ambient = caps.ambient().clone().unwrap_or_default();
        assert!(!ambient.contains(&Capability::SysAdmin));
        assert!(add_capabilities(&mut caps, &["nope".into()]).is_err());
    }
}
