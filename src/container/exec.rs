//! `exec`: run one more process inside a running container.
//!
//! There is nothing to "enter": a container is its process's namespaces, cgroup and security
//! settings. A new process becomes part of it by joining each of them:
//!
//! 1. open `/proc/PID/ns/*` of the container's process (PID 1 inside it);
//! 2. join its PID namespace with setns(2) *in this process*: for a PID namespace that only
//!    decides where this process's future children go (pid_namespaces(7)), so the process
//!    forked next is born inside, with a pid of the container's;
//! 3. clone the child into the container's cgroup2 directory (clone3 with
//!    `CLONE_INTO_CGROUP`; where refused, the parent writes it into `cgroup.procs`), and write
//!    its tid into each v1 hierarchy's `tasks`;
//! 4. the child joins the other namespaces (the mount namespace last but one: after it, `/` is
//!    the container's root), then takes the container's security settings (capabilities, user,
//!    no_new_privs, seccomp) exactly as its first process did, and execs.
//!
//! The child is the host's minidock binary until execve, with host memory, inside the
//! container's PID namespace: so it is made non-dumpable first, or a process in the container
//! could open `/proc/PID/exe` and overwrite the binary (CVE-2019-5736, which was found through
//! `runc exec`), and every inherited descriptor is marked close-on-exec (CVE-2024-21626).

use super::spec::{
    DEFAULT_PATH, clean_container_path, dedup_env, parse_env_flag, replace_or_append_env,
    resolve_user,
};
use super::state::ContainerState;
use super::user::{home_of, read_user_file};
use super::{Paths, Status};
use crate::cli::Exit;
use crate::explain;
use crate::ns::Namespace;
use crate::runtime::init;
use crate::security::{self, caps};
use anyhow::{Context, Result};
use oci_spec::runtime::LinuxCapabilities;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

/// `exec`'s flags.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub command: Vec<String>,
    pub interactive: bool,
    pub tty: bool,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub env: Vec<String>,
    /// A process that cannot start is dockerd's `OCI runtime exec failed: ...` on stdout and
    /// exit code 126 ([`oci_exec_failed`]), not an error.
    pub oci_start_errors: bool,
    /// The process's stdout and stderr are /dev/null; ours carries only a failure to start
    /// (with `oci_start_errors`) and is closed once the process runs, so a caller reading it
    /// to its end learns whether it started (`minidock daemon`'s detached exec).
    pub start_report: bool,
}

/// Everything the child needs, prepared before the fork. `minidock runtime exec` fills it
/// from a runtime-spec `process` instead of from `docker exec`'s flags.
pub(crate) struct Prepared {
    /// The container's namespaces that differ from ours ([`namespaces_to_join`]).
    pub join: Vec<(Namespace, OwnedFd)>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub capabilities: Option<LinuxCapabilities>,
    /// `process.rlimits`, set before the user changes.
    pub rlimits: Vec<oci_spec::runtime::PosixRlimit>,
    pub no_new_privs: bool,
    pub seccomp: Option<std::sync::Arc<security::seccomp::Program>>,
    /// Installed as stdin (e.g. /dev/null); `None` keeps the inherited one.
    pub stdin: Option<OwnedFd>,
    /// With a terminal: the socket on which the child sends the pty master.
    pub console: Option<crate::tty::ConsoleSocket>,
}

// ANCHOR: namespaces_to_join
/// The namespaces of `pid` that differ from ours: those the container has of its own. (With
/// `--network host`, say, its network namespace is ours, and there is nothing to join.)
pub(crate) fn namespaces_to_join(pid: i32) -> Result<Vec<(Namespace, OwnedFd)>> {
    let mut join = Vec::new();
    // The user namespace first: the others belong to it, and joining it gives the
    // capabilities needed to join them (user_namespaces(7)). The mount namespace goes last
    // but one: once in it, paths are the container's. The cgroup namespace after it, as
    // runc's nsexec does.
    for ns in [
        Namespace::User,
        Namespace::Ipc,
        Namespace::Uts,
        Namespace::Net,
        Namespace::Pid,
        Namespace::Mount,
        Namespace::Cgroup,
    ] {
        let theirs = crate::ns::ns_id(&pid.to_string(), ns)?;
        let ours = crate::ns::ns_id("self", ns)?;
        if theirs == ours {
            continue;
        }
        let path = format!("/proc/{pid}/ns/{}", ns.proc_name());
        let fd: OwnedFd = std::fs::File::open(&path)
            .with_context(|| format!("opening {path}"))?
            .into();
        join.push((ns, fd));
    }
    Ok(join)
}
// ANCHOR_END: namespaces_to_join

fn prepare(paths: &Paths, state: &ContainerState, options: &ExecOptions) -> Result<Prepared> {
    let pid = state.pid;
    let bundle = paths.dir(&state.id);
    let spec = crate::runtime::spec::load(&bundle)?;
    let process = spec.process().as_ref().context("process: missing")?;
    let container_root = PathBuf::from(format!("/proc/{pid}/root"));
    let user = process.user();
    let (uid, gid, additional_gids, home) = match &options.user {
        Some(text) => {
            let resolved = resolve_user(&container_root, text, &state.config.group_add)?;
            (
                resolved.uid,
                resolved.gid,
                resolved.additional_gids,
                resolved.home,
            )
        }
        None => (
            user.uid(),
            user.gid(),
            user.additional_gids().clone().unwrap_or_default(),
            home_of(
                read_user_file(&container_root, "/etc/passwd")?.as_deref(),
                user.uid().into(),
            )?,
        ),
    };
    // Docker's: the container's environment (made again, for this terminal or none), the
    // flags' over it (a bare KEY unset here removes KEY), then runc's HOME for this user.
    let flags = options
        .env
        .iter()
        .map(|e| parse_env_flag(e))
        .collect::<Result<Vec<_>>>()?;
    let config = &state.config;
    let mut defaults = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={}", config.hostname),
    ];
    if options.tty {
        defaults.push("TERM=xterm".into());
    }
    let daemon_env = replace_or_append_env(&defaults, &config.env);
    let env = dedup_env(&replace_or_append_env(&daemon_env, &flags), &home);
    // The container's capabilities, shaped for the user this process runs as.
    let capabilities = process.capabilities().as_ref().map(|c| {
        let bounding: Vec<_> = c.bounding().iter().flatten().copied().collect();
        if uid == user.uid() {
            c.clone()
        } else {
            caps::oci_capabilities(&bounding, uid)
        }
    });
    let cwd = match &options.workdir {
        Some(w) => PathBuf::from(clean_container_path("the working directory", w)?),
        None => process.cwd().clone(),
    };
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(profile) => Some(security::seccomp::compile_cached(
            profile,
            Some(&paths.runtime_root.join(".seccomp-cache")),
        )?),
        None => None,
    };
    Ok(Prepared {
        join: namespaces_to_join(pid)?,
        args: options.command.clone(),
        env,
        cwd,
        uid,
        gid,
        additional_gids,
        capabilities,
        rlimits: Vec::new(),
        no_new_privs: process.no_new_privileges() == Some(true),
        seccomp,
        stdin: if options.interactive || options.tty {
            None
        } else {
            Some(std::fs::File::open("/dev/null")?.into())
        },
        console: if options.tty {
            Some(crate::tty::ConsoleSocket::new()?)
        } else {
            None
        },
    })
}

// ANCHOR: exec_child
/// The child, between fork and execve. Returns only on failure.
fn exec_child(p: &Prepared) -> Result<i32> {
    init::close_range_cloexec();
    nix::sys::prctl::set_dumpable(false).context("prctl(PR_SET_DUMPABLE, 0)")?;
    join_namespaces(p)?;
    match (&p.console, &p.stdin) {
        (Some(socket), _) => crate::tty::setup_console_in_child(socket.child.as_raw_fd())?,
        (None, Some(null)) => init::connect_stdio(&[Some(null.as_raw_fd()), None, None])?,
        (None, None) => {}
    }
    take_on_limits_and_user(p)?;
    explain::trace!(RuntimeSpec: "enter the working directory" => "chdir({:?})", p.cwd);
    nix::unistd::chdir(&p.cwd).map_err(|errno| {
        // runc's words, which dockerd passes on.
        let why = super::fs::go_error(errno);
        let message = format!(
            "chdir to cwd ({:?}) set in config.json failed: {why}",
            p.cwd
        );
        Exit::new(super::REQUEST_FAILED, message)
    })?;
    let program = init::find_program(&p.args[0], &p.env)?;
    if p.no_new_privs {
        security::set_no_new_privs()?;
        if let Some(program) = &p.seccomp {
            security::seccomp::install(program)?;
        }
    }
    init::reset_signals();
    Err(init::exec(&program, &p.args, &p.env, &[None, None, None]))
}
// ANCHOR_END: exec_child

// ANCHOR: join_namespaces
/// Joins each of the container's namespaces but the PID one, which the parent joined before
/// the fork (a process never changes its own PID namespace).
fn join_namespaces(p: &Prepared) -> Result<()> {
    for (ns, fd) in p.join.iter().filter(|(ns, _)| *ns != Namespace::Pid) {
        explain::trace!(Namespaces: "join the container's namespace"
            => "setns(fd of /proc/PID/ns/{}, {})", ns.proc_name(), clone_flag_name(*ns));
        nix::sched::setns(fd, ns.clone_flag())
            .with_context(|| format!("setns into the container's {} namespace", ns.proc_name()))?;
    }
    Ok(())
}

/// The name of `ns`'s clone flag, as setns(2) takes it.
fn clone_flag_name(ns: Namespace) -> String {
    // The mount namespace's flag kept its 2002 name: CLONE_NEWNS.
    let flag = match ns {
        Namespace::Mount => "NS".to_owned(),
        other => other.proc_name().to_uppercase(),
    };
    format!("CLONE_NEW{flag}")
}
// ANCHOR_END: join_namespaces

// ANCHOR: take_on_limits_and_user
/// Takes on what the container's first process got, in the same order (see
/// `runtime::init`): resource limits, seccomp (before the user switch when `no_new_privs`
/// is off, as only a privileged process may install it then), capabilities and the user.
fn take_on_limits_and_user(p: &Prepared) -> Result<()> {
    // The same order as the container's first process (see runtime::init).
    for rlimit in &p.rlimits {
        init::set_rlimit(rlimit.typ(), rlimit.soft(), rlimit.hard())?;
    }
    if let (Some(program), false) = (&p.seccomp, p.no_new_privs) {
        security::seccomp::install(program)?;
    }
    if let Some(caps) = &p.capabilities {
        caps::apply_bounding_set(caps)?;
        if p.uid != 0 {
            caps::keep_capabilities_across_setuid()?;
        }
    }
    init::switch_user(p.uid, p.gid, &p.additional_gids)?;
    if let Some(caps) = &p.capabilities {
        caps::apply_process_capabilities(caps)?;
    }
    Ok(())
}
// ANCHOR_END: take_on_limits_and_user

// ANCHOR: check_exec
/// Docker's refusals before an exec: the container must be running and not paused, and a
/// command must be given. Each is a request failure (exit 1), with Docker's words.
fn check_exec(state: &ContainerState, options: &ExecOptions) -> Result<()> {
    if state.is_restarting() {
        return Err(super::restarting(&state.id));
    }
    if state.observe() != Status::Running || !state.process_alive() {
        let message = format!("container {} is not running", state.id);
        return Err(Exit::new(super::REQUEST_FAILED, message).into());
    }
    if super::pause::is_paused(state) {
        let message = format!(
            "Container {} is paused, unpause the container before exec",
            state.id
        );
        return Err(Exit::new(super::REQUEST_FAILED, message).into());
    }
    if options.command.is_empty() {
        return Err(Exit::new(super::REQUEST_FAILED, "no command given").into());
    }
    Ok(())
}
// ANCHOR_END: check_exec

// ANCHOR: exec
/// `exec`: runs `options.command` in the running container and returns its exit status.
pub fn exec(paths: &Paths, name_or_id: &str, options: &ExecOptions) -> Result<u8> {
    let state = paths.resolve(name_or_id)?;
    check_exec(&state, options)?;
    let pid = state.pid;
    let mut report = match options.start_report {
        true => Some(set_aside_stdout()?),
        false => None,
    };
    let mut prepared = match prepare(paths, &state, options) {
        Ok(prepared) => prepared,
        // dockerd's words for a user or directory it cannot take are the error's own.
        Err(err) if options.oci_start_errors => {
            let message = crate::cli::one_line(&format!("{err:#}"));
            return Ok(start_failed(&message, report.as_mut()));
        }
        Err(err) => return Err(err),
    };
    let exec_id = super::new_id()?;
    crate::events::exec(paths, &state, "exec_create", &exec_id, &options.command);
    crate::events::exec(paths, &state, "exec_start", &exec_id, &options.command);
    let child = match spawn_in(&prepared, pid, &state.cgroup_paths) {
        Ok(child) => child,
        Err(err) if options.oci_start_errors => {
            return Ok(start_failed(&oci_exec_failed(&err), report.as_mut()));
        }
        Err(err) => return Err(err),
    };
    // It runs: the end of the report says so.
    drop(report);
    let status = match prepared.console.take() {
        Some(socket) => {
            let master = crate::tty::receive_master(std::os::fd::AsFd::as_fd(&socket.parent))?;
            crate::tty::proxy(master, child)
        }
        None => crate::ns::wait_for(child),
    };
    let code = status.as_ref().map_or(-1, |s| i32::from(*s)).to_string();
    crate::events::container(
        paths,
        &state,
        "exec_die",
        &[("execID", exec_id), ("exitCode", code)],
    );
    status
}
// ANCHOR_END: exec

/// The exit code of a `docker exec` whose process could not start, with dockerd.
pub const OCI_EXEC_FAILED: u8 = 126;

/// An exec that could not start, as dockerd answers it: `message` on stdout, or on the
/// `report` set aside ([`set_aside_stdout`]), ended `\r\n`; exit code [`OCI_EXEC_FAILED`].
fn start_failed(message: &str, report: Option<&mut std::fs::File>) -> u8 {
    use std::io::Write;
    let line = format!("{message}\r\n");
    let _ = match report {
        Some(file) => file.write_all(line.as_bytes()),
        None => {
            let mut out = std::io::stdout();
            out.write_all(line.as_bytes()).and_then(|()| out.flush())
        }
    };
    OCI_EXEC_FAILED
}

/// For [`ExecOptions::start_report`]: our stdout moved to a close-on-exec descriptor, which is
/// returned, and /dev/null put on fds 1 and 2 for the process to inherit.
fn set_aside_stdout() -> Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor, which the File then owns.
    let fd = unsafe { libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("duplicating stdout");
    }
    // SAFETY: `fd` is ours alone.
    let report = unsafe { std::fs::File::from_raw_fd(fd) };
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .context("opening /dev/null")?;
    init::connect_stdio(&[None, Some(null.as_raw_fd()), Some(null.as_raw_fd())])?;
    Ok(report)
}

/// dockerd 20.10's words for an exec whose process could not start, as runc words them:
/// `OCI runtime exec failed: exec failed: unable to start container process: exec:
/// "PROGRAM": executable file not found in $PATH: unknown` (a missing path is `stat PATH: no
/// such file or directory`).
pub fn oci_exec_failed(err: &anyhow::Error) -> String {
    let message = crate::cli::one_line(&format!("{}", err.root_cause()));
    let why = match message
        .strip_prefix("exec \"")
        .and_then(|m| m.split_once("\": "))
    {
        Some((program, "no such file or directory")) => {
            format!("exec: \"{program}\": stat {program}: no such file or directory")
        }
        Some((program, rest)) => format!("exec: \"{program}\": {rest}"),
        None => message,
    };
    format!(
        "OCI runtime exec failed: exec failed: unable to start container process: {why}: unknown"
    )
}

// ANCHOR: spawn_in
/// Starts the process `p` describes inside the container whose first process is `pid`: joins
/// its PID namespace (for our children), clones the child into the cgroup2 directory of
/// `cgroup_dirs` (if any), writes it into the others, and lets the child join the rest and
/// exec. Returns the child's pid once it has exec'd.
pub(crate) fn spawn_in(
    p: &Prepared,
    pid: i32,
    cgroup_dirs: &[PathBuf],
) -> Result<nix::unistd::Pid> {
    if let Some((_, fd)) = p.join.iter().find(|(ns, _)| *ns == Namespace::Pid) {
        explain::trace!(Namespaces: "join the container's PID namespace (for our children)"
            => "setns(fd of /proc/{pid}/ns/pid, CLONE_NEWPID)");
        nix::sched::setns(fd, Namespace::Pid.clone_flag())
            .context("setns into the container's PID namespace")?;
    }
    // Born in the cgroup2 directory (the only one with `cgroup.controllers`), if any; the
    // runtime writes the rest, each v1 hierarchy through `tasks` (the child is one thread).
    let cgroup2 = cgroup_dirs
        .iter()
        .find(|dir| dir.join("cgroup.controllers").exists());
    crate::ns::spawn_process(
        &[],
        None,
        crate::ns::Go::BeforeChildSetup,
        cgroup2.map(PathBuf::as_path),
        &mut |child, born_in_cgroup2| {
            for dir in cgroup_dirs {
                let file = if Some(dir) == cgroup2 {
                    if born_in_cgroup2 {
                        continue;
                    }
                    dir.join("cgroup.procs")
                } else {
                    dir.join("tasks")
                };
                explain::trace!(Cgroups: "put the process into the container's cgroup"
                    => "write(\"{}\", \"{child}\")", file.display());
                std::fs::write(&file, child.to_string())
                    .with_context(|| format!("writing {child} to {}", file.display()))?;
            }
            Ok(())
        },
        &mut |_ready| exec_child(p),
    )
}
// ANCHOR_END: spawn_in
