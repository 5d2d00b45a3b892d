//! The container process's own setup, from the spec: everything between clone(2) and
//! execve(2), in the order the runtime spec and runc use. It runs in the child, inside the new
//! namespaces, as root of them.

use super::hooks::{self, HookState, Kind};
use super::mounts;
use super::spec;
use crate::explain::{self, Chapter};
use crate::ns::{Namespace, Ready};
use crate::rootfs;
use crate::security::{self, caps, paths};
use crate::syscall::{self, Mount};
use anyhow::{Context, Result, bail};
use nix::mount::{MsFlags, mount};
use oci_spec::runtime::{PosixRlimitType, Spec};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// What the child needs besides the spec.
pub struct InitContext<'a> {
    /// Create the new cgroup namespace now, in the child, after the parent moved it into the
    /// container's cgroup (so that cgroup becomes the namespace's root).
    pub unshare_cgroup: bool,
    /// The container's cgroup directories, one per hierarchy (`Cgroup::paths`): the v1 binds
    /// of the cgroup mount.
    pub cgroup_dirs: &'a [PathBuf],
    /// On v1 without a user namespace, the `tasks` files through which the process moves
    /// itself into its v1 hierarchies before anything else (`cgroup::join_self`). It is born
    /// in its cgroup2 directory, if any; where it could not be, and with `None` (in a user
    /// namespace), the runtime places it while it mounts.
    pub cgroup_tasks: Option<&'a [PathBuf]>,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    /// For `create`: the exec fifo, opened with O_PATH before pivot_root. The process blocks
    /// opening it for writing until `start` opens it for reading, then execs.
    pub exec_fifo: Option<&'a OwnedFd>,
    /// Namespaces to join (path given in the spec), opened before clone.
    pub join: &'a [(Namespace, OwnedFd)],
    /// With `process.terminal`: the socket on which to send the pty master to the runtime.
    pub console: Option<std::os::fd::RawFd>,
    /// `linux.seccomp`, compiled in the parent before clone: the child only installs it.
    pub seccomp: Option<&'a security::seccomp::Program>,
    /// Descriptors to install as stdin, stdout and stderr right before execve (see
    /// [`super::spawn_with_stdio`]); `None` keeps the inherited one.
    pub stdio: [Option<std::os::fd::RawFd>; 3],
    /// The state the `createContainer` and `startContainer` hooks read (its pid is replaced
    /// by this process's own, as runc does).
    pub hook_state: &'a HookState,
    /// With `prestart` or `createRuntime` hooks: the pipe on which to ask the runtime to run
    /// them (one byte), and the one on which it answers (`0` when they all succeeded).
    pub hooks_sync: Option<(std::os::fd::RawFd, std::os::fd::RawFd)>,
    /// Whether the spec asks for a new user namespace with a mapping for uid 0.
    pub become_mapped_root: bool,
    /// Create the new IPC namespace now, as the user namespace's root, so it (and its mqueue
    /// filesystem) belongs to that root, as with runc.
    pub unshare_ipc: bool,
}

fn setns_type(ns: Namespace) -> nix::sched::CloneFlags {
    ns.clone_flag()
}

// ANCHOR: init
/// The child's side of `create`/`run`, step by step. Returns only on failure.
pub fn container_init(ctx: &InitContext, ready: &Ready) -> Result<i32> {
    let spec = ctx.spec;
    let process = spec.process().as_ref().context("process: missing")?;
    // 0. Into the container's cgroup v1 hierarchies, by this process itself (see `join_self`).
    if let Some(tasks) = ctx.cgroup_tasks {
        crate::cgroup::join_self(tasks)?;
    }
    protect_the_runtime(ctx, process)?;
    // 1. Join the namespaces the spec names by path (a shared network namespace, say).
    join_namespaces(ctx)?;
    // 2. The hostname, in the new UTS namespace.
    if let Some(hostname) = spec.hostname() {
        crate::ns::set_hostname(hostname)?;
    }
    // 3. The filesystem: mounts, devices, the hooks, pivot_root (or chroot without a mount
    //    namespace), then the sysctls and the paths to mask. The runtime moves us into the
    //    container's cgroup meanwhile; what needs the cgroup waits for that (`enter_cgroup`).
    setup_filesystem(ctx, ready)?;
    enter_cgroup(ctx, ready)?;
    // A terminal, opened from the container's own /dev/ptmx, as its stdin/stdout/stderr.
    if let Some(socket) = ctx.console {
        crate::tty::setup_console_in_child(socket)?;
    }
    // 4. Limits on this process (rlimits are per process, inherited across execve).
    for rlimit in process.rlimits().as_deref().unwrap_or_default() {
        set_rlimit(rlimit.typ(), rlimit.soft(), rlimit.hard())?;
    }
    // 5. and 6. The spec's user, capabilities and working directory.
    become_user(ctx, process)?;
    // 7. Find the program in the container's PATH now, so "not found" is reported before
    //    `create` returns, as runc does.
    let args = process.args().as_deref().unwrap_or_default();
    let env: Vec<String> = process.env().clone().unwrap_or_default();
    let program = find_program(&args[0], &env)?;
    // 8. `create` stops here until `start`.
    wait_for_start(ctx, ready)?;
    // 9. The last steps before execve.
    confine(ctx, process)?;
    // 10. The signal state of a fresh process: minidock (like every Rust program) ignores
    //     SIGPIPE, and an ignored signal stays ignored across execve (signal(7)); `yes | head`
    //     in the container would then never end. Then exec, with the stdio asked for.
    reset_signals();
    Err(exec(&program, args, &env, &ctx.stdio))
}
// ANCHOR_END: init

// ANCHOR: confine
/// Step 9 of [`container_init`]: no new privileges, then seccomp, so that the filter confines
/// only the container's program, not this setup.
fn confine(ctx: &InitContext, process: &oci_spec::runtime::Process) -> Result<()> {
    let no_new_privs = process.no_new_privileges() == Some(true);
    if no_new_privs {
        security::set_no_new_privs()?;
        if let Some(program) = ctx.seccomp {
            security::seccomp::install(program)?;
        }
    }
    Ok(())
}
// ANCHOR_END: confine

// ANCHOR: protect
/// Before anything else: no descriptor of the caller may survive into the container, and the
/// runtime binary must be out of the container's reach; then the OOM score, and the mapped
/// root of a new user namespace.
fn protect_the_runtime(ctx: &InitContext, process: &oci_spec::runtime::Process) -> Result<()> {
    // A leaked directory fd is a way out of the rootfs (CVE-2024-21626): mark every inherited
    // descriptor close-on-exec now.
    close_range_cloexec();
    // Until execve this process *is* the host's minidock binary. Non-dumpable, its
    // /proc/PID/exe can only be opened with CAP_SYS_PTRACE on the host, so a process in the
    // container cannot reach the binary and overwrite it (CVE-2019-5736). execve resets the
    // flag for the container's own program (prctl(2), PR_SET_DUMPABLE).
    explain::trace!(PuttingTogether: "hide the runtime binary from the container"
        => "prctl(PR_SET_DUMPABLE, SUID_DUMP_DISABLE)");
    nix::sys::prctl::set_dumpable(false).context("prctl(PR_SET_DUMPABLE, 0)")?;
    if let Some(score) = process.oom_score_adj() {
        set_oom_score_adj(score)?;
    }
    // In a new user namespace this process still has the host's uid 0, which the namespace
    // does not map: files it created would belong to nobody (mkdir fails with EOVERFLOW on a
    // filesystem mounted in the namespace). Become the namespace's root first, as runc does.
    if ctx.become_mapped_root {
        become_root_of_user_namespace(ctx.unshare_ipc)?;
    }
    Ok(())
}
// ANCHOR_END: protect

/// Joins the namespaces the spec names by path (opened before clone).
fn join_namespaces(ctx: &InitContext) -> Result<()> {
    for (ns, fd) in ctx.join {
        explain::step(
            "join an existing namespace",
            || format!("setns(fd, CLONE_NEW{})", ns.proc_name().to_uppercase()),
            Chapter::RuntimeSpec,
        );
        nix::sched::setns(fd, setns_type(*ns))
            .with_context(|| format!("setns into the {} namespace", ns.proc_name()))?;
    }
    Ok(())
}

// ANCHOR: become_user
/// Becomes the spec's user with the capabilities the spec grants, and enters `process.cwd`.
/// Without no_new_privs the kernel takes a seccomp filter only while we still hold
/// CAP_SYS_ADMIN, so then the filter goes in first, before the capabilities are dropped and
/// the user switched (as runc does; Docker's default).
fn become_user(ctx: &InitContext, process: &oci_spec::runtime::Process) -> Result<()> {
    let no_new_privs = process.no_new_privileges() == Some(true);
    if let (Some(program), false) = (ctx.seccomp, no_new_privs) {
        security::seccomp::install(program)?;
    }
    // The working directory, first as root (runc's order): a directory only the container's
    // user may enter (a volume it owns) is entered after the switch instead.
    let cwd = process.cwd();
    let enter_later = enter_cwd(cwd, true)?;
    let user = process.user();
    let capabilities = process.capabilities().as_ref();
    if let Some(caps) = capabilities {
        caps::apply_bounding_set(caps)?;
        if user.uid() != 0 {
            caps::keep_capabilities_across_setuid()?;
        }
    }
    let additional = user.additional_gids().as_deref().unwrap_or_default();
    switch_user(user.uid(), user.gid(), additional)?;
    if let Some(caps) = capabilities {
        caps::apply_process_capabilities(caps)?;
    }
    if enter_later {
        enter_cwd(cwd, false)?;
    }
    check_cwd_inside_root(cwd)
}
// ANCHOR_END: become_user

/// The working directory must be inside the rootfs: the kernel names a directory outside the
/// process's root `(unreachable)/...` (getcwd(2)).
fn check_cwd_inside_root(cwd: &Path) -> Result<()> {
    let here = nix::unistd::getcwd().context("getcwd")?;
    if here.to_string_lossy().starts_with("(unreachable)") {
        bail!(
            "process.cwd {} resolves outside the container's root",
            cwd.display()
        );
    }
    Ok(())
}

// ANCHOR: wait_for_start
/// `create` ends here: the runtime is told the container is created, and this process blocks
/// opening the exec fifo for writing until `start` opens it for reading. Then the
/// `startContainer` hooks run, in the container.
fn wait_for_start(ctx: &InitContext, ready: &Ready) -> Result<()> {
    if let Some(fifo) = ctx.exec_fifo {
        ready.signal();
        explain::trace!(RuntimeSpec: "wait for `start` (the exec fifo)"
            => "open(\"exec.fifo\", O_WRONLY)");
        let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"0"))
            .context("waiting on the exec fifo")?;
    }
    run_hooks_in_container(ctx, Kind::StartContainer, "created")
}
// ANCHOR_END: wait_for_start

// ANCHOR: enter_cgroup
/// Waits until the runtime has moved this process into the container's cgroup, then, with a
/// new cgroup namespace, unshares it: the cgroup this process is in when the namespace is made
/// becomes its root. This process was born in its cgroup2 directory (clone3 with
/// `CLONE_INTO_CGROUP`) and joined its v1 hierarchies itself (`cgroup::join_self`); where it
/// could not, the runtime places it while we mount (`ns::Go::WhenChildAsks`), because its
/// write can wait milliseconds for an RCU grace period. The hooks, a cgroup2 mount and the
/// rest of the process setup (user, capabilities, seccomp, execve) come after this.
/// Idempotent.
fn enter_cgroup(ctx: &InitContext, ready: &Ready) -> Result<()> {
    ready.wait_for_parent()?;
    static UNSHARED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if ctx.unshare_cgroup && !UNSHARED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        explain::trace!(RuntimeSpec: "a new cgroup namespace, rooted at our cgroup"
            => "unshare(CLONE_NEWCGROUP)");
        let new_cgroup = nix::sched::CloneFlags::CLONE_NEWCGROUP;
        nix::sched::unshare(new_cgroup).context("unshare(CLONE_NEWCGROUP)")?;
    }
    Ok(())
}
// ANCHOR_END: enter_cgroup

// ANCHOR: filesystem
/// The container's filesystem: the spec's mounts and devices under the rootfs, the
/// `prestart`, `createRuntime` and `createContainer` hooks, then pivot_root into it, as runc
/// does. In a mount namespace of its own (new, or joined by path) that is all private to
/// the container; without one, as with runc, the mounts are made in the runtime's mount
/// namespace (where they outlive the container) and the process only chroots (the spec
/// validation refused masked and read-only paths then).
fn setup_filesystem(ctx: &InitContext, ready: &Ready) -> Result<()> {
    let spec = ctx.spec;
    let mount_ns = spec::namespaces(spec)
        .iter()
        .any(|(ns, _)| *ns == Namespace::Mount);
    if mount_ns {
        let propagation = spec
            .linux()
            .as_ref()
            .and_then(|l| l.rootfs_propagation().clone());
        set_root_propagation(ctx.rootfs, propagation.as_deref())?;
        explain::step(
            "make the rootfs a mount point",
            || {
                let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
                explain::mount_call(Some(ctx.rootfs), ctx.rootfs, None, bind, None)
            },
            Chapter::RuntimeSpec,
        );
        rootfs::bind(ctx.rootfs, ctx.rootfs)?;
    }
    mount_and_create_devices(ctx, ready)?;
    // Hooks see the process in its cgroup, as with runc.
    if spec.hooks().is_some() {
        enter_cgroup(ctx, ready)?;
    }
    run_runtime_hooks(ctx)?;
    nix::unistd::chdir(ctx.rootfs).with_context(|| format!("chdir {}", ctx.rootfs.display()))?;
    run_hooks_in_container(ctx, Kind::CreateContainer, "creating")?;
    if !mount_ns {
        explain::step(
            "change the root directory (no mount namespace)",
            || format!("chroot({:?}); chdir(\"/\")", ctx.rootfs),
            Chapter::RuntimeSpec,
        );
        nix::unistd::chroot(ctx.rootfs)
            .with_context(|| format!("chroot {}", ctx.rootfs.display()))?;
        nix::unistd::chdir("/").context("chdir /")?;
        create_cwd(spec)?;
        return write_sysctls(spec);
    }
    rootfs::pivot_root_into(ctx.rootfs)?;
    create_cwd(spec)?;
    if spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly() == Some(true))
    {
        explain::step(
            "make the root filesystem read-only",
            || "mount(NULL, \"/\", NULL, MS_BIND|MS_REMOUNT|MS_RDONLY)".into(),
            Chapter::RuntimeSpec,
        );
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .context("remount / read-only")?;
    }
    // /proc is the container's now: the sysctls, then hide or freeze what belongs to the host.
    write_sysctls(spec)?;
    paths::apply_readonly_paths(&linux_list(spec, |l| l.readonly_paths().clone()))?;
    paths::apply_masked_paths(&linux_list(spec, |l| l.masked_paths().clone()))
}

// ANCHOR: create_cwd
/// Makes `process.cwd` if it is missing, as runc does right after pivot_root (before the
/// rootfs may turn read-only): as root, mode 0755, so the process can start there whatever
/// user it becomes. `/` is the container's own now, so the path (however unclean, `..`
/// included) and its symlinks resolve inside the container.
fn create_cwd(spec: &Spec) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let Some(cwd) = spec.process().as_ref().map(|p| p.cwd()) else {
        return Ok(());
    };
    explain::trace!(RuntimeSpec: "make the working directory if it is missing"
        => "mkdir -p {cwd:?} (mode 0755)");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(cwd)
        .with_context(|| format!("mkdir {}", cwd.display()))
}
// ANCHOR_END: create_cwd

/// The spec's `mounts`, the default devices in its /dev, and `linux.devices`.
fn mount_and_create_devices(ctx: &InitContext, ready: &Ready) -> Result<()> {
    let spec = ctx.spec;
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if m.typ().as_deref() == Some("cgroup") {
            mount_cgroup(ctx, ready, m)?;
            continue;
        }
        mounts::mount_one(ctx.rootfs, ctx.bundle, m)?;
    }
    // As runc: the spec's devices, then the default ones it did not list, then /dev/ptmx as
    // the container's own devpts multiplexer even when linux.devices lists the host's node (a
    // privileged container's), then the symlinks.
    for device in spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
    {
        create_device(ctx.rootfs, device)?;
    }
    let dev = ctx.rootfs.join("dev");
    if dev.is_dir() {
        rootfs::link_ptmx(&dev)?;
        rootfs::populate_dev(&dev)?;
        // runc's (and Docker's) /dev/core, where this kernel has a /proc/kcore.
        let core = dev.join("core");
        if Path::new("/proc/kcore").exists() && std::fs::symlink_metadata(&core).is_err() {
            std::os::unix::fs::symlink("/proc/kcore", &core)
                .with_context(|| format!("symlink {}", core.display()))?;
        }
    }
    Ok(())
}
// ANCHOR_END: filesystem

/// `linux.rootfsPropagation` (`shared`, `slave`, `private`, `unbindable`, each also with an
/// `r` for the whole tree) applied to `/` of the new mount namespace, as runc applies it;
/// without it, every mount becomes private. The rootfs's parent mount is then made private
/// if it is shared, so the rootfs bind cannot propagate to the host (runc does the same).
fn set_root_propagation(rootfs: &Path, propagation: Option<&str>) -> Result<()> {
    let Some(name) = propagation.filter(|p| !p.is_empty()) else {
        return rootfs::make_mounts_private();
    };
    let options = mounts::parse_options(&[name.to_owned()]);
    if options.propagation.is_empty() {
        bail!("linux.rootfsPropagation: unknown propagation {name:?}");
    }
    explain::step(
        "set the propagation of the container's /",
        || explain::mount_call(None, Path::new("/"), None, options.propagation, None),
        Chapter::RuntimeSpec,
    );
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        options.propagation,
        None::<&str>,
    )
    .with_context(|| format!("linux.rootfsPropagation {name:?}: mount(\"/\")"))?;
    let (parent, shared) = mounts::parent_mount(rootfs)?;
    if shared {
        mount(
            None::<&str>,
            &parent,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .with_context(|| format!("making {} private", parent.display()))?;
    }
    Ok(())
}

/// `linux.sysctl`, written to /proc/sys once the container's namespaces exist (the keys were
/// checked by [`spec::check_sysctl`]).
fn write_sysctls(spec: &Spec) -> Result<()> {
    let sysctls = spec.linux().as_ref().and_then(|l| l.sysctl().clone());
    for (key, value) in sysctls.into_iter().flatten() {
        let path = PathBuf::from("/proc/sys").join(spec::sysctl_dotted(&key).replace('.', "/"));
        explain::step(
            "set a namespaced kernel parameter",
            || format!("write({path:?}, {value:?})"),
            Chapter::RuntimeSpec,
        );
        std::fs::write(&path, &value)
            .with_context(|| format!("linux.sysctl: writing {value:?} to {}", path.display()))?;
    }
    Ok(())
}

/// `process.oomScoreAdj`, in /proc/self/oom_score_adj (inherited by the program). A score
/// the process already has is not written again: in a user namespace, a non-dumpable
/// process's /proc files belong to the host's root, so the write would be refused.
fn set_oom_score_adj(score: i32) -> Result<()> {
    let current = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
    if current.trim() == score.to_string() {
        return Ok(());
    }
    explain::step(
        "set the OOM killer's score adjustment",
        || format!("write(\"/proc/self/oom_score_adj\", \"{score}\")"),
        Chapter::RuntimeSpec,
    );
    std::fs::write("/proc/self/oom_score_adj", score.to_string()).with_context(|| {
        format!("process.oomScoreAdj: writing {score} (lowering it needs CAP_SYS_RESOURCE)")
    })
}

/// Becomes uid 0 of the user namespace this process was cloned into, creates the IPC
/// namespace if asked, then takes gid 0 and no supplementary groups (the host's mean nothing
/// there). runc's order, so the IPC namespace's mqueue root is `root:nogroup` as with runc.
fn become_root_of_user_namespace(unshare_ipc: bool) -> Result<()> {
    use nix::unistd::{Gid, Uid};
    explain::step(
        "become root of the user namespace",
        || "setresuid(0, 0, 0)".into(),
        Chapter::Namespaces,
    );
    let (uid, gid) = (Uid::from_raw(0), Gid::from_raw(0));
    nix::unistd::setresuid(uid, uid, uid).context("setresuid(0) in the user namespace")?;
    if unshare_ipc {
        explain::step(
            "a new IPC namespace, owned by the user namespace",
            || "unshare(CLONE_NEWIPC)".into(),
            Chapter::Namespaces,
        );
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWIPC)
            .context("unshare(CLONE_NEWIPC)")?;
    }
    explain::step(
        "drop the supplementary groups",
        || "setgroups(0, [])".into(),
        Chapter::Namespaces,
    );
    let _ = nix::unistd::setgroups(&[]);
    explain::step(
        "become root's group",
        || "setresgid(0, 0, 0)".into(),
        Chapter::Namespaces,
    );
    nix::unistd::setresgid(gid, gid, gid).context("setresgid(0) in the user namespace")
}

/// Asks the runtime, over `hooks_sync`, to run the `prestart` and `createRuntime` hooks, and
/// waits for its answer.
fn run_runtime_hooks(ctx: &InitContext) -> Result<()> {
    let Some((ask, answer)) = ctx.hooks_sync else {
        return Ok(());
    };
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    // SAFETY: both are pipe ends the runtime opened for this process; ManuallyDrop leaves
    // them open (they close on execve).
    let (mut ask, mut answer) = unsafe {
        (
            std::mem::ManuallyDrop::new(std::fs::File::from_raw_fd(ask)),
            std::mem::ManuallyDrop::new(std::fs::File::from_raw_fd(answer)),
        )
    };
    ask.write_all(b"H")
        .context("asking the runtime to run the prestart hooks")?;
    let mut byte = [0u8];
    match answer.read(&mut byte) {
        Ok(1) if byte[0] == b'0' => Ok(()),
        _ => bail!("the prestart or createRuntime hooks failed"),
    }
}

/// Runs the hooks of `kind` from inside the container's namespaces, with this process's pid.
fn run_hooks_in_container(ctx: &InitContext, kind: Kind, status: &str) -> Result<()> {
    if hooks::of(ctx.spec, kind).is_empty() {
        return Ok(());
    }
    let mut state = ctx.hook_state.clone();
    state.pid = std::process::id() as i32;
    state.status = status.into();
    hooks::run_all(ctx.spec, kind, &state)
}

/// Restores the default disposition of the signals a runtime catches or ignores, and unblocks
/// every signal: dispositions set to "ignore" and the signal mask survive execve.
pub fn reset_signals() {
    for signal in [
        libc::SIGPIPE,
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
    ] {
        // SAFETY: setting a default disposition has no memory effects.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    }
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
}

/// dup2(2)s the given descriptors onto 0, 1 and 2 (which clears their close-on-exec flag).
pub fn connect_stdio(stdio: &[Option<std::os::fd::RawFd>; 3]) -> Result<()> {
    for (target, fd) in stdio.iter().enumerate() {
        if let Some(fd) = fd {
            // SAFETY: dup2 onto a standard descriptor, which we mean to replace.
            if unsafe { libc::dup2(*fd, target as i32) } < 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("dup2 onto fd {target}"));
            }
        }
    }
    Ok(())
}

/// chdir to `process.cwd`. With `may_wait`, a permission error is not one yet: `Ok(true)`
/// says to try again as the container's user.
fn enter_cwd(cwd: &Path, may_wait: bool) -> Result<bool> {
    explain::step(
        "enter the working directory",
        || format!("chdir({cwd:?})"),
        Chapter::RuntimeSpec,
    );
    match nix::unistd::chdir(cwd) {
        Ok(()) => Ok(false),
        Err(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM) if may_wait => Ok(true),
        Err(errno) => Err(errno).with_context(|| format!("chdir to process.cwd {}", cwd.display())),
    }
}

// ANCHOR: switch_user
/// Becomes `process.user`: supplementary groups first, then the gid, then the uid (after the
/// uid changes, we would no longer be allowed to change the others).
pub fn switch_user(uid: u32, gid: u32, additional: &[u32]) -> Result<()> {
    use nix::unistd::{Gid, Uid};
    explain::trace!(Security: "set the supplementary groups"
        => "setgroups({}, {additional:?})", additional.len());
    let groups: Vec<Gid> = additional.iter().map(|g| Gid::from_raw(*g)).collect();
    // setgroups is refused in a user namespace whose setgroups file says "deny".
    if let Err(errno) = nix::unistd::setgroups(&groups)
        && !groups.is_empty()
    {
        return Err(errno).context("setgroups");
    }
    let (gid, uid) = (Gid::from_raw(gid), Uid::from_raw(uid));
    explain::trace!(Security: "become the container's group" => "setresgid({gid}, {gid}, {gid})");
    nix::unistd::setresgid(gid, gid, gid).with_context(|| format!("setresgid({gid})"))?;
    explain::trace!(Security: "become the container's user" => "setresuid({uid}, {uid}, {uid})");
    nix::unistd::setresuid(uid, uid, uid).with_context(|| format!("setresuid({uid})"))
}
// ANCHOR_END: switch_user

fn linux_list(
    spec: &Spec,
    get: impl Fn(&oci_spec::runtime::Linux) -> Option<Vec<String>>,
) -> Vec<String> {
    spec.linux().as_ref().and_then(get).unwrap_or_default()
}

/// Marks every descriptor from 3 up close-on-exec (close_range(2), Linux 5.11).
pub fn close_range_cloexec() {
    // SAFETY: plain syscall; failure (an old kernel) leaves the descriptors as they were, and
    // the fds minidock itself opens are O_CLOEXEC anyway.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
}

// ANCHOR: mount_cgroup
/// A `cgroup` mount: cgroup2 on a pure v2 host; on v1 a tmpfs holding, for each hierarchy, a
/// bind of the container's own cgroup directory. The mount's options apply to the cgroup2
/// mount and to each bind: with `ro` (Docker's and `runc spec`'s default) the container can
/// neither raise its own limits nor make cgroups. The tmpfs itself stays writable, as with
/// runc: nothing in it reaches the kernel's cgroups.
fn mount_cgroup(ctx: &InitContext, ready: &Ready, m: &oci_spec::runtime::Mount) -> Result<()> {
    let destination = m.destination().as_path();
    // The source names the mount in the mount table; runc keeps the spec's ("cgroup").
    let source = m
        .source()
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cgroup".into());
    let options = mounts::parse_options(m.options().as_deref().unwrap_or_default());
    let flags = options.flags;
    let target = mounts::secure_join(ctx.rootfs, destination)?;
    std::fs::create_dir_all(&target).with_context(|| format!("mkdir {}", target.display()))?;
    // One read of the mount table: the layout, then the v1 hierarchies to bind.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
    let layout = crate::cgroup::layout::parse(&mountinfo, |mount| {
        let path = mount.join("cgroup.controllers");
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    })?;
    if layout.kind == crate::cgroup::Kind::V2 {
        // A cgroup2 mount shows the hierarchy from the root of our cgroup namespace.
        enter_cgroup(ctx, ready)?;
        return mount_cgroup2(&source, &target, flags);
    }
    mount_cgroup_tmpfs(&target, flags)?;
    for (name, host_dir) in container_v1_cgroups(&mountinfo, ctx.cgroup_dirs) {
        bind_v1_cgroup(&name, &host_dir, &target, flags)?;
    }
    Ok(())
}
// ANCHOR_END: mount_cgroup

// ANCHOR: mount_cgroup_v2
/// On a pure v2 host: one cgroup2 mount with the spec's flags. Made after entering the
/// container's cgroup, so the cgroup namespace shows that cgroup as the root.
fn mount_cgroup2(source: &str, target: &Path, flags: MsFlags) -> Result<()> {
    let cgroup2 = Mount::fs(source, target, "cgroup2", flags);
    let mounted = cgroup2.run(Chapter::RuntimeSpec, "mount cgroup2");
    match mounted.as_ref().err().and_then(syscall::errno) {
        // In a user namespace on the host's network, /sys is the host's, bound (see
        // mounts::mount_one), and a cgroup2 mount over its cgroup directory is refused:
        // bind the host's instead, as runc does (rootfs_linux.go, mountCgroupV2).
        Some(nix::errno::Errno::EPERM | nix::errno::Errno::EBUSY)
            if !crate::rootfs::in_initial_user_namespace() =>
        {
            bind_host_cgroup2(target, flags)
        }
        _ => mounted,
    }
}
// ANCHOR_END: mount_cgroup_v2

// ANCHOR: mount_cgroup_v2_bind
/// The fallback of [`mount_cgroup2`] in a user namespace: a bind of the host's
/// `/sys/fs/cgroup`, then a remount for `ro`, since a bind takes its flags only from a
/// remount.
fn bind_host_cgroup2(target: &Path, flags: MsFlags) -> Result<()> {
    let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(
        Some("/sys/fs/cgroup"),
        target,
        None::<&str>,
        bind,
        None::<&str>,
    )
    .with_context(|| format!("bind mount /sys/fs/cgroup on {}", target.display()))?;
    let remount = bind | MsFlags::MS_REMOUNT | (flags & MsFlags::MS_RDONLY);
    mount(None::<&str>, target, None::<&str>, remount, None::<&str>)
        .with_context(|| format!("remount {}", target.display()))
}
// ANCHOR_END: mount_cgroup_v2_bind

// ANCHOR: mount_cgroup_tmpfs
/// On v1: the tmpfs that holds one directory per hierarchy. It is writable whatever the
/// spec says (the binds inside carry the `ro`), and keeps the mode of the directory it
/// covers (0555 in sysfs), as runc keeps it.
fn mount_cgroup_tmpfs(target: &Path, flags: MsFlags) -> Result<()> {
    let stat = || format!("stat {}", target.display());
    let covered = std::fs::metadata(target).with_context(stat)?.permissions();
    let writable = flags - MsFlags::MS_RDONLY;
    let tmpfs = Mount::fs("tmpfs", target, "tmpfs", writable).data("mode=755");
    let what = "mount a tmpfs for the cgroup hierarchies";
    tmpfs.run(Chapter::RuntimeSpec, what)?;
    std::fs::set_permissions(target, covered).with_context(|| format!("chmod {}", target.display()))
}
// ANCHOR_END: mount_cgroup_tmpfs

// ANCHOR: mount_cgroup_v1
/// On v1, for hierarchy `name`: a directory in the tmpfs holding a bind of the container's
/// cgroup there (`host_dir`). A bind takes no flags: `ro` and the rest come with a second,
/// remounting call (mount(2), MS_REMOUNT).
fn bind_v1_cgroup(name: &str, host_dir: &Path, target: &Path, flags: MsFlags) -> Result<()> {
    let dir = target.join(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let bind = Mount::bind(host_dir, &dir, MsFlags::MS_REC);
    bind.run(Chapter::RuntimeSpec, "bind the container's cgroup")?;
    let remount = Mount::change(&dir, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags);
    remount.run(Chapter::RuntimeSpec, "remount it with the mount's flags")
}
// ANCHOR_END: mount_cgroup_v1

/// For each v1 hierarchy mounted on the host: its directory name under /sys/fs/cgroup, and
/// the container's cgroup there (the one of `dirs` under its mount point), from the text of
/// /proc/self/mountinfo.
fn container_v1_cgroups(mountinfo: &str, dirs: &[PathBuf]) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        if after.split(' ').next() != Some("cgroup") {
            continue;
        }
        let Some(mount_point) = before.split(' ').nth(4).map(PathBuf::from) else {
            continue;
        };
        let Some(name) = mount_point
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
        else {
            continue;
        };
        if let Some(dir) = dirs.iter().find(|d| d.starts_with(&mount_point))
            && !out.iter().any(|(n, _)| *n == name)
        {
            out.push((name, dir.clone()));
        }
    }
    out.sort();
    out
}

// ANCHOR: create_device
/// Creates one entry of `linux.devices` (config-linux.md, "Devices"): mknod as real root; in a
/// user namespace, where mknod of devices is refused, a bind mount of the host's node.
fn create_device(rootfs: &Path, device: &oci_spec::runtime::LinuxDevice) -> Result<()> {
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    use oci_spec::runtime::LinuxDeviceType;
    let path = device.path();
    let target = mounts::secure_join(rootfs, path)?;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("mkdir {}", parent.display()))?;
    }
    let kind = match device.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => bail!(
            "linux.devices: {} has type \"a\", which only cgroup rules may use",
            path.display()
        ),
    };
    let (major, minor) = (device.major() as u64, device.minor() as u64);
    let mode = device.file_mode().unwrap_or(0o666);
    if !rootfs::in_initial_user_namespace() {
        std::fs::File::create(&target).with_context(|| format!("creating {}", target.display()))?;
        return rootfs::bind(path, &target);
    }
    explain::step(
        "create a device node",
        || {
            let kind = match kind {
                SFlag::S_IFBLK => "S_IFBLK",
                SFlag::S_IFIFO => "S_IFIFO",
                _ => "S_IFCHR",
            };
            format!("mknod({target:?}, {kind}|0{mode:o}, makedev({major}, {minor}))")
        },
        Chapter::RuntimeSpec,
    );
    let _ = std::fs::remove_file(&target);
    mknod(
        &target,
        kind,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    )
    .with_context(|| format!("mknod {}", path.display()))?;
    // mknod(2) applies the umask: set the mode the spec asked for exactly.
    std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))?;
    nix::unistd::chown(
        &target,
        device.uid().map(nix::unistd::Uid::from_raw),
        device.gid().map(nix::unistd::Gid::from_raw),
    )
    .with_context(|| format!("chown {}", path.display()))
}
// ANCHOR_END: create_device

fn rlimit_resource(typ: PosixRlimitType) -> libc::__rlimit_resource_t {
    match typ {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub(crate) fn set_rlimit(typ: PosixRlimitType, soft: u64, hard: u64) -> Result<()> {
    explain::step(
        "set a resource limit",
        || format!("setrlimit({typ:?}, {{soft: {soft}, hard: {hard}}})"),
        Chapter::RuntimeSpec,
    );
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: a valid rlimit struct for a known resource.
    if unsafe { libc::setrlimit(rlimit_resource(typ), &limit) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("setrlimit {typ:?} soft {soft} hard {hard} (raising a hard limit needs CAP_SYS_RESOURCE)"));
    }
    Ok(())
}

/// Looks `program` up in the PATH of the container's environment (not the runtime's), in the
/// container's filesystem.
pub fn find_program(program: &str, env: &[String]) -> Result<PathBuf> {
    use crate::cli::{Exit, code};
    use std::os::unix::fs::PermissionsExt;
    let not_found = || -> anyhow::Error {
        Exit::new(
            code::NOT_FOUND,
            format!("exec {program:?}: executable file not found in $PATH"),
        )
        .into()
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => Ok(path),
            Ok(_) => Err(Exit::new(
                code::CANNOT_EXECUTE,
                format!("exec {program:?}: permission denied"),
            )
            .into()),
            Err(_) => Err(Exit::new(
                code::NOT_FOUND,
                format!("exec {program:?}: no such file or directory"),
            )
            .into()),
        };
    }
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path_var
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(not_found)
}

/// execve(2)s the program, after installing `stdio` as 0, 1 and 2 (last, so that every step
/// before, this one's trace included, still reaches the caller's stderr).
pub fn exec(
    program: &Path,
    args: &[String],
    env: &[String],
    stdio: &[Option<std::os::fd::RawFd>; 3],
) -> anyhow::Error {
    let to_c = |s: &str| CString::new(s).unwrap_or_default();
    let argv: Vec<CString> = args.iter().map(|a| to_c(a)).collect();
    let envp: Vec<CString> = env.iter().map(|e| to_c(e)).collect();
    let path = to_c(&program.to_string_lossy());
    explain::step(
        "execute the container's program",
        || format!("execve({program:?}, {args:?}, [{} env vars])", env.len()),
        Chapter::RuntimeSpec,
    );
    if let Err(err) = connect_stdio(stdio) {
        return err;
    }
    let errno = match nix::unistd::execve(&path, &argv, &envp) {
        Ok(never) => match never {},
        Err(errno) => errno,
    };
    crate::ns::exec_error(&program.to_string_lossy(), errno)
}
