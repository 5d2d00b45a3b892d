//! Namespaces: run a process in new namespaces, with its own hostname, PID 1, mounts, IPC,
//! network stack, user ids and cgroup root.
//!
//! The sequence is the one every container runtime uses (see clone(2), namespaces(7) and
//! user_namespaces(7)):
//!
//! 1. the parent makes two pipes: `go` (parent to child) and `errors` (child to parent);
//! 2. `clone(2)` starts the child in all the new namespaces at once;
//! 3. the parent writes the child's uid/gid maps (only the parent can, from outside), then
//!    says "go";
//! 4. the child sets the hostname, prepares its mounts and root, and calls `execve(2)`;
//! 5. if anything in the child fails, it writes the error to the `errors` pipe. That pipe is
//!    close-on-exec, so a successful execve closes it and the parent reads end-of-file: no
//!    message means the command is running.

pub mod tour;

use crate::cli::{Exit, code};
use crate::explain::{self, Chapter};
use crate::rootfs;
use anyhow::{Context, Result, bail};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Gid, Pid, Uid};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

// ANCHOR: namespace
/// The seven namespace types the kernel offers (namespaces(7)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    /// Hostname and NIS domain name.
    Uts,
    /// Process ids: the first process inside is PID 1.
    Pid,
    /// The mount table.
    Mount,
    /// System V IPC objects and POSIX message queues.
    Ipc,
    /// Network devices, addresses, routes, firewall rules, ports.
    Net,
    /// User and group ids, and the capabilities that go with them.
    User,
    /// The root of the process's view of the cgroup tree.
    Cgroup,
}
// ANCHOR_END: namespace

impl Namespace {
    /// Every namespace type.
    pub const ALL: [Namespace; 7] = [
        Namespace::Uts,
        Namespace::Pid,
        Namespace::Mount,
        Namespace::Ipc,
        Namespace::Net,
        Namespace::User,
        Namespace::Cgroup,
    ];

    // ANCHOR: clone_flag
    /// The `CLONE_NEW*` flag that creates this namespace in clone(2) and unshare(2).
    pub fn clone_flag(self) -> CloneFlags {
        match self {
            Namespace::Uts => CloneFlags::CLONE_NEWUTS,
            Namespace::Pid => CloneFlags::CLONE_NEWPID,
            Namespace::Mount => CloneFlags::CLONE_NEWNS,
            Namespace::Ipc => CloneFlags::CLONE_NEWIPC,
            Namespace::Net => CloneFlags::CLONE_NEWNET,
            Namespace::User => CloneFlags::CLONE_NEWUSER,
            Namespace::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        }
    }
    // ANCHOR_END: clone_flag

    // ANCHOR: proc_name

    /// The file name under `/proc/PID/ns/` that identifies this namespace.
    pub fn proc_name(self) -> &'static str {
        match self {
            Namespace::Uts => "uts",
            Namespace::Pid => "pid",
            Namespace::Mount => "mnt",
            Namespace::Ipc => "ipc",
            Namespace::Net => "net",
            Namespace::User => "user",
            Namespace::Cgroup => "cgroup",
        }
    }
    // ANCHOR_END: proc_name
}

/// The namespace a process is in, as the kernel names it: `uts:[4026531838]`. Two processes
/// are in the same namespace exactly when these are equal.
pub fn ns_id(pid: &str, ns: Namespace) -> Result<String> {
    let path = format!("/proc/{pid}/ns/{}", ns.proc_name());
    let target = std::fs::read_link(&path).with_context(|| format!("readlink {path}"))?;
    Ok(target.to_string_lossy().into_owned())
}

/// Checks that this kernel has every namespace in `wanted`, and that we may create them.
/// The error is one line saying what is missing and how to get it.
pub fn check_support(wanted: &[Namespace]) -> Result<()> {
    for ns in wanted {
        let path = format!("/proc/self/ns/{}", ns.proc_name());
        if !Path::new(&path).exists() {
            bail!(
                "this kernel has no {} namespace ({path} is missing); build it with CONFIG_{}_NS=y",
                ns.proc_name(),
                match ns {
                    Namespace::Mount => "MNT".to_string(),
                    other => other.proc_name().to_uppercase(),
                }
            );
        }
    }
    let needs_root = wanted.iter().any(|ns| *ns != Namespace::User);
    if needs_root && !Uid::effective().is_root() && !wanted.contains(&Namespace::User) {
        let names: Vec<&str> = wanted.iter().map(|ns| ns.proc_name()).collect();
        bail!(
            "creating {} namespaces needs root (CAP_SYS_ADMIN): run as root, or add --user to create them inside a new user namespace",
            names.join(",")
        );
    }
    Ok(())
}

/// What the child runs once its namespaces are ready.
pub enum Child<'a> {
    /// execvp(3) this command.
    Exec(Vec<String>),
    /// Run a function (used by the tour to read evidence from inside), exit with its value.
    Call(Box<dyn FnMut() -> i32 + 'a>),
}

// ANCHOR: sandbox
/// A process to start in new namespaces.
#[derive(Debug, Clone, Default)]
pub struct Sandbox {
    pub namespaces: Vec<Namespace>,
    /// Set inside the new UTS namespace.
    pub hostname: Option<String>,
    /// pivot_root into this directory (needs the mount namespace).
    pub rootfs: Option<PathBuf>,
}
// ANCHOR_END: sandbox

/// How the child ended, in the shell's convention: its exit code, or 128 + the signal.
pub fn exit_status_code(status: WaitStatus) -> Option<u8> {
    match status {
        WaitStatus::Exited(_, code) => Some(code as u8),
        WaitStatus::Signaled(_, signal, _) => Some(128u8.wrapping_add(signal as u8)),
        _ => None,
    }
}

impl Sandbox {
    pub fn new(namespaces: &[Namespace]) -> Self {
        Sandbox {
            namespaces: namespaces.to_vec(),
            ..Default::default()
        }
    }

    pub fn has(&self, ns: Namespace) -> bool {
        self.namespaces.contains(&ns)
    }

    /// Fills in what the choices imply, so the result is always coherent:
    /// a new PID namespace needs a fresh /proc, which needs a private mount namespace, and a
    /// rootfs needs a mount namespace for pivot_root.
    pub fn normalized(mut self) -> Self {
        // A hostname outside a new UTS namespace would rename the host itself.
        if self.hostname.is_some() && !self.has(Namespace::Uts) {
            self.namespaces.push(Namespace::Uts);
        }
        if (self.has(Namespace::Pid) || self.rootfs.is_some()) && !self.has(Namespace::Mount) {
            explain::note(
                "(a new PID namespace or a rootfs needs its own mount namespace: adding --mount)",
            );
            self.namespaces.push(Namespace::Mount);
        }
        self.namespaces.sort();
        self.namespaces.dedup();
        self
    }

    /// Starts `child` in the namespaces, waits for it, and returns its exit status (the
    /// command's own, or 128 + signal). An error inside the child (exec not found, a mount
    /// failing) comes back as an `Err` carrying the child's message and Docker's exit code.
    pub fn run(&self, child: Child<'_>) -> Result<u8> {
        let pid = self.spawn(child)?;
        wait_for(pid)
    }

    /// Starts `child` in the namespaces and returns its pid once it is running (exec
    /// succeeded, or the function started). The caller must wait for it.
    pub fn spawn(&self, mut child: Child<'_>) -> Result<Pid> {
        let sandbox = self.clone().normalized();
        check_support(&sandbox.namespaces)?;
        if let Some(rootfs) = &sandbox.rootfs
            && !rootfs.is_dir()
        {
            return Err(Exit::new(
                code::FAILED,
                format!("rootfs {} is not a directory", rootfs.display()),
            )
            .into());
        }
        // Prepare everything that allocates before clone: the child only makes syscalls.
        let argv: Vec<CString> = match &child {
            Child::Exec(args) => {
                if args.is_empty() {
                    bail!("no command given");
                }
                args.iter()
                    .map(|a| CString::new(a.as_str()).context("argument contains a NUL byte"))
                    .collect::<Result<_>>()?
            }
            Child::Call(_) => Vec::new(),
        };
        let id_maps = sandbox
            .has(Namespace::User)
            .then(|| IdMaps::root_to(Uid::effective(), Gid::effective()));
        spawn_process(
            &sandbox.namespaces,
            id_maps.as_ref(),
            Go::BeforeChildSetup,
            None,
            &mut |_pid, _| Ok(()),
            &mut |_ready| child_setup(&sandbox, &argv, &mut child),
        )
    }
}

/// One line of a uid or gid map: `count` ids starting at `inside` map to ids starting at
/// `outside` (user_namespaces(7)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMapping {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// The uid and gid maps of a new user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMaps {
    pub uids: Vec<IdMapping>,
    pub gids: Vec<IdMapping>,
}

impl IdMaps {
    /// Root inside is `uid`/`gid` outside, and nothing else is mapped.
    pub fn root_to(uid: Uid, gid: Gid) -> Self {
        let one = |outside| {
            vec![IdMapping {
                inside: 0,
                outside,
                count: 1,
            }]
        };
        IdMaps {
            uids: one(uid.as_raw()),
            gids: one(gid.as_raw()),
        }
    }
}

/// Tells the parent that the child finished its setup and is about to wait (the OCI runtime's
/// "created" state) before it execs. See [`spawn_process`].
pub struct Ready {
    fd: RawFd,
    go: RawFd,
    went: std::cell::Cell<bool>,
}

/// When the child waits for the parent's go (after the id maps and `parent_setup`): before
/// `child_setup` runs, or only when `child_setup` calls [`Ready::wait_for_parent`], so that its
/// work overlaps the parent's (moving a process into a cgroup can take milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Go {
    BeforeChildSetup,
    WhenChildAsks,
}

impl Ready {
    /// Waits until the parent has finished `parent_setup`; at once if that was already waited
    /// for. With [`Go::WhenChildAsks`] the child must call this before anything that needs it
    /// (its cgroup, say) and before execve.
    pub fn wait_for_parent(&self) -> Result<()> {
        if !self.went.get() {
            wait_for_go(self.go)?;
            self.went.set(true);
        }
        Ok(())
    }

    pub fn signal(&self) {
        // SAFETY: `fd` is the write end of the status pipe, valid in the child.
        let mut pipe = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(self.fd) });
        let _ = pipe.write_all(b"R");
    }
}

// ANCHOR: spawn_process
/// The mechanism under every container start: clone a child into new `namespaces` (and,
/// given a cgroup2 directory, into that cgroup: [`clone_child`]), let the parent prepare it
/// from outside (`parent_setup`: uid/gid maps first, then whatever the caller needs, such as
/// putting it into a cgroup or giving it a network; it is told whether the child was born in
/// `cgroup2`), then let the child run `child_setup`, which ends in execve.
///
/// Returns the child's pid once it has exec'd, or once it called [`Ready::signal`]. If the
/// child fails first, its error comes back here with its message and exit code, and the child
/// is reaped.
pub fn spawn_process(
    namespaces: &[Namespace],
    id_maps: Option<&IdMaps>,
    go: Go,
    cgroup2: Option<&Path>,
    parent_setup: &mut dyn FnMut(Pid, bool) -> Result<()>,
    child_setup: &mut dyn FnMut(&Ready) -> Result<i32>,
) -> Result<Pid> {
    let (go_read, go_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe2 (go)")?;
    let (status_read, status_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe2 (status)")?;
    let (go_r, status_w) = (go_read.as_raw_fd(), status_write.as_raw_fd());
    let flags = namespaces
        .iter()
        .fold(CloneFlags::empty(), |flags, ns| flags | ns.clone_flag());
    // Rust's stdout buffer would be copied into the child and printed twice.
    let _ = std::io::stdout().flush();
    let child_main = Box::new(|| {
        let ready = Ready {
            fd: status_w,
            go: go_r,
            went: std::cell::Cell::new(false),
        };
        child_main(&ready, go, child_setup)
    });
    let (pid, in_cgroup) = clone_child(flags, cgroup2, child_main)?;
    drop(go_read);
    drop(status_write);
    // From here on, kill and reap the child if we fail, so no half-started process stays.
    let parent_side = || -> Result<()> {
        if let Some(maps) = id_maps {
            write_id_maps(pid, maps)?;
        }
        parent_setup(pid, in_cgroup)?;
        let mut go = std::fs::File::from(go_write);
        // A child that failed before it waited has closed its end: its own error, on the
        // status pipe, says more than our EPIPE.
        let told = go.write_all(b"G").context("telling the child to go");
        drop(go);
        read_child_status(status_read)?;
        told
    };
    if let Err(err) = parent_side() {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        return Err(err);
    }
    Ok(pid)
}
// ANCHOR_END: spawn_process

// ANCHOR: clone
/// Clones the child that runs `child_main` into new namespaces (`flags`). Given a cgroup2
/// directory, the child is born in that cgroup (clone3 with `CLONE_INTO_CGROUP`), so nobody
/// writes it into `cgroup.procs` (a write that waits for an RCU grace period, see the cgroups
/// chapter); where the kernel cannot or we may not, plain clone(2). The bool says whether the
/// child was born in `cgroup2`.
fn clone_child(
    flags: CloneFlags,
    cgroup2: Option<&Path>,
    mut child_main: nix::sched::CloneCb<'_>,
) -> Result<(Pid, bool)> {
    if let Some(dir) = cgroup2 {
        trace_clone(flags, Some(dir));
        match crate::cgroup::spawn::clone3_into(dir, flags.bits() as u64)? {
            // SAFETY: in the child of a fork-like clone3; child_main ends in execve or _exit.
            Some(0) => unsafe { libc::_exit(child_main() as i32) },
            Some(pid) => return Ok((Pid::from_raw(pid as i32), true)),
            None => explain::note("clone3(CLONE_INTO_CGROUP) refused here: plain clone"),
        }
    }
    trace_clone(flags, None);
    let mut stack = vec![0u8; 1024 * 1024];
    // SAFETY: the child runs on its own stack, in a copy of our address space (no CLONE_VM),
    // and leaves only through execve or _exit.
    let pid = unsafe { nix::sched::clone(child_main, &mut stack, flags, Some(libc::SIGCHLD)) }
        .context("clone(2) into new namespaces")?;
    Ok((pid, false))
}
// ANCHOR_END: clone

/// The `--explain` line of [`clone_child`]'s call: clone3 into `cgroup2`, or plain clone.
fn trace_clone(flags: CloneFlags, cgroup2: Option<&Path>) {
    match cgroup2 {
        Some(dir) => explain::step(
            "clone into new namespaces and the cgroup",
            || clone3_call(flags, dir),
            Chapter::Namespaces,
        ),
        None => explain::step(
            "clone into new namespaces",
            || format!("clone(flags={})", explain::clone_flags(flags, "SIGCHLD")),
            Chapter::Namespaces,
        ),
    }
}

/// The clone3 call of [`clone_child`] as strace prints it.
fn clone3_call(flags: CloneFlags, dir: &Path) -> String {
    let flags = explain::clone_flags(flags, "CLONE_INTO_CGROUP");
    format!(
        "clone3({{flags={flags}, exit_signal=SIGCHLD, cgroup=open({:?})}})",
        dir.display()
    )
}

/// The child's side of [`spawn_process`]: waits for the parent's go where `go` says, runs
/// `child_setup`, and reports a failure on the status pipe. Never returns.
fn child_main(ready: &Ready, go: Go, child_setup: &mut dyn FnMut(&Ready) -> Result<i32>) -> isize {
    let result = match go {
        Go::BeforeChildSetup => ready.wait_for_parent(),
        Go::WhenChildAsks => Ok(()),
    }
    .and_then(|()| child_setup(ready))
    .and_then(|status| ready.wait_for_parent().map(|()| status));
    // Only reached when setup failed or a function finished: report and exit without
    // running the parent's destructors or atexit handlers twice.
    let status = match result {
        Ok(status) => status,
        Err(err) => report_to_parent(ready.fd, &err),
    };
    let _ = std::io::stdout().flush();
    // SAFETY: _exit is async-signal-safe and ends only this process.
    unsafe { libc::_exit(status) }
}

/// Waits until the parent has prepared us (id maps, cgroup): before that we may be "nobody".
fn wait_for_go(go: RawFd) -> Result<()> {
    let mut byte = [0u8; 1];
    // SAFETY: `go` is the read end the parent gave us; we own this copy after clone.
    let mut go_file = unsafe { std::fs::File::from_raw_fd(go) };
    go_file
        .read_exact(&mut byte)
        .context("waiting for the parent (it exited?)")
}

/// Waits for a child and returns its exit status in the shell's convention.
pub fn wait_for(pid: Pid) -> Result<u8> {
    loop {
        let status = waitpid(pid, None).with_context(|| format!("waitpid({pid})"))?;
        if let Some(code) = exit_status_code(status) {
            return Ok(code);
        }
    }
}

// ANCHOR: id_maps
/// Writes the uid and gid maps of the child's new user namespace, from the parent namespace.
/// Each file is written once, by a process in the parent namespace or in the namespace itself
/// (user_namespaces(7)). For an unprivileged
/// writer, `setgroups` must be denied before `gid_map` is written, or the process could drop
/// supplementary groups to gain access (CVE-2014-8989).
pub fn write_id_maps(pid: Pid, maps: &IdMaps) -> Result<()> {
    let render = |lines: &[IdMapping]| {
        lines
            .iter()
            .map(|m| format!("{} {} {}\n", m.inside, m.outside, m.count))
            .collect::<String>()
    };
    let (uid_map, gid_map) = (render(&maps.uids), render(&maps.gids));
    write_proc(pid, "uid_map", &uid_map, "map uids inside to uids outside")?;
    if !Uid::effective().is_root() {
        let what = "refuse setgroups before mapping gids";
        write_proc(pid, "setgroups", "deny", what)?;
    }
    write_proc(pid, "gid_map", &gid_map, "map gids inside to gids outside")
}
// ANCHOR_END: id_maps

/// Writes `content` to `/proc/PID/FILE`, traced as the step `what`.
fn write_proc(pid: Pid, file: &str, content: &str, what: &str) -> Result<()> {
    let path = format!("/proc/{pid}/{file}");
    explain::trace!(Namespaces: what => "write({path:?}, {:?})", content.trim_end());
    std::fs::write(&path, content).with_context(|| format!("writing {content:?} to {path}"))
}

// ANCHOR: child_setup
/// The child's half: everything between clone and execve. Returns only on failure, or with
/// the function's status for `Child::Call`.
fn child_setup(sandbox: &Sandbox, argv: &[CString], child: &mut Child) -> Result<i32> {
    if let Some(hostname) = &sandbox.hostname {
        set_hostname(hostname)?;
    }
    if sandbox.has(Namespace::Mount) {
        rootfs::make_mounts_private()?;
        match &sandbox.rootfs {
            Some(dir) => rootfs::enter_rootfs(dir, &rootfs::RootfsOptions::for_sandbox(sandbox))?,
            None if sandbox.has(Namespace::Pid) => rootfs::mount_proc(Path::new("/proc"))?,
            None => {}
        }
    }
    match child {
        Child::Call(function) => Ok(function()),
        Child::Exec(_) => Err(exec(argv)),
    }
}
// ANCHOR_END: child_setup

// ANCHOR: hostname
/// Sets the hostname. Inside a new UTS namespace this changes only the namespace's copy;
/// the host keeps its own (uts_namespaces(7)).
pub fn set_hostname(hostname: &str) -> Result<()> {
    explain::trace!(Namespaces: "set the hostname" => "sethostname({hostname:?})");
    nix::unistd::sethostname(hostname).with_context(|| format!("sethostname({hostname:?})"))
}
// ANCHOR_END: hostname

/// execvp(3) the command. Returns only on failure, with the error and Docker's exit code:
/// 127 when the file is not there, 126 when it is there but cannot be executed.
pub fn exec(argv: &[CString]) -> anyhow::Error {
    let program = argv[0].to_string_lossy().into_owned();
    explain::step(
        "execute the command",
        || format!("execve({program:?}, ...)"),
        Chapter::Namespaces,
    );
    let errno = match nix::unistd::execvp(&argv[0], argv) {
        Ok(never) => match never {},
        Err(errno) => errno,
    };
    exec_error(&program, errno)
}

/// Turns an execve(2) errno into Docker's message and exit code.
pub fn exec_error(program: &str, errno: nix::errno::Errno) -> anyhow::Error {
    use nix::errno::Errno;
    match errno {
        Errno::ENOENT | Errno::ENOTDIR => Exit::new(
            code::NOT_FOUND,
            format!("exec {program:?}: executable file not found"),
        )
        .into(),
        Errno::EACCES | Errno::ENOEXEC | Errno::EPERM | Errno::EISDIR => Exit::new(
            code::CANNOT_EXECUTE,
            format!("exec {program:?}: cannot execute: {}", errno.desc()),
        )
        .into(),
        other => anyhow::anyhow!("exec {program:?}: {}", other.desc()),
    }
}

/// Sends an error from the child to the parent: `E`, one byte of exit code, then the message.
/// Returns the exit code for the child to `_exit` with.
fn report_to_parent(fd: RawFd, err: &anyhow::Error) -> i32 {
    let exit = crate::cli::exit_code_of(err);
    let mut message = vec![b'E', exit];
    message.extend_from_slice(format!("{err:#}").as_bytes());
    // SAFETY: `fd` is the write end of the errors pipe, valid in the child.
    let mut pipe = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    let _ = pipe.write_all(&message);
    i32::from(exit)
}

/// Reads the status pipe: end-of-file means the child exec'd (the pipe is close-on-exec) or
/// finished its function; `R` means it is ready and waiting; `E` carries its error.
fn read_child_status(fd: OwnedFd) -> Result<()> {
    let mut pipe = std::fs::File::from(fd);
    let mut kind = [0u8; 1];
    match pipe
        .read(&mut kind)
        .context("reading the child's status pipe")?
    {
        0 => return Ok(()),
        _ if kind[0] == b'R' => return Ok(()),
        _ => {}
    }
    let mut message = Vec::new();
    pipe.read_to_end(&mut message)
        .context("reading the child's error")?;
    match message.split_first() {
        Some((&exit, text)) => {
            Err(Exit::new(exit, String::from_utf8_lossy(text).into_owned()).into())
        }
        None => bail!("the child failed without saying why"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_namespace_has_a_distinct_flag_and_proc_name() {
        let mut flags = CloneFlags::empty();
        let mut names = std::collections::HashSet::new();
        for ns in Namespace::ALL {
            assert!(!flags.contains(ns.clone_flag()));
            flags |= ns.clone_flag();
            assert!(names.insert(ns.proc_name()));
        }
    }

    #[test]
    fn a_pid_namespace_brings_a_mount_namespace() {
        let sandbox = Sandbox::new(&[Namespace::Pid]).normalized();
        assert_eq!(sandbox.namespaces, vec![Namespace::Pid, Namespace::Mount]);
        let sandbox = Sandbox {
            rootfs: Some("/x".into()),
            ..Sandbox::new(&[Namespace::Uts])
        }
        .normalized();
        assert!(sandbox.has(Namespace::Mount));
    }

    #[test]
    fn exec_errors_map_to_docker_exit_codes() {
        use nix::errno::Errno;
        let code_of = |e| crate::cli::exit_code_of(&exec_error("x", e));
        assert_eq!(code_of(Errno::ENOENT), 127);
        assert_eq!(code_of(Errno::EACCES), 126);
        assert_eq!(code_of(Errno::ENOEXEC), 126);
        assert_eq!(code_of(Errno::E2BIG), 125);
    }

    #[test]
    fn shell_convention_for_signals() {
        let pid = Pid::from_raw(1);
        assert_eq!(
            exit_status_code(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            Some(137)
        );
        assert_eq!(exit_status_code(WaitStatus::Exited(pid, 3)), Some(3));
    }
}
