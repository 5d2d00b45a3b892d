//! Starting a command inside a cgroup, so that not one instruction of it runs outside.
//!
//! The naive order, fork, exec, then write the pid into `cgroup.procs`, lets the command run
//! unlimited for a moment, and a fork bomb can escape in that moment. Two correct orders:
//!
//! 1. **cgroup2, Linux 5.7+:** clone3(2) with `CLONE_INTO_CGROUP`. The kernel creates the child
//!    directly in the target cgroup; there is no moment outside it, and no extra write.
//! 2. **Everywhere else:** fork a child that first waits on a pipe; the parent writes its pid
//!    into `cgroup.procs` (of every v1 hierarchy), then tells it to go, and only then does the
//!    child call execve(2).
//!
//! Either way, a second pipe with `O_CLOEXEC` reports a failed execve to the parent: a
//! successful execve closes it (EOF), a failed one writes errno into it first. This is how
//! std::process::Command tells "not found" from "started".

use super::Cgroup;
use crate::cli::{Exit, code};
use crate::explain::{self, Chapter};
use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::ffi::{CString, OsString, c_char};
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// How the child got into its cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Placement {
    /// Born inside it: clone3(CLONE_INTO_CGROUP).
    CloneIntoCgroup,
    /// Forked, written into `cgroup.procs` by the parent, then released to exec.
    ProcsBeforeExec,
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Placement::CloneIntoCgroup => "clone3(CLONE_INTO_CGROUP)",
            Placement::ProcsBeforeExec => "cgroup.procs before exec",
        })
    }
}

/// A started command.
#[derive(Debug, Clone, Copy)]
pub struct Child {
    pub pid: Pid,
    pub placement: Placement,
}

/// The signals a parent usually catches or ignores. The child resets them to the default
/// before execve: an ignored signal stays ignored across execve (signal(7)), and Rust ignores
/// SIGPIPE at startup, which would make `yes | head` loop forever.
const RESET_SIGNALS: [libc::c_int; 5] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGPIPE,
];

// ANCHOR: clone_args
/// `struct clone_args` of include/uapi/linux/sched.h, up to `cgroup` (CLONE_ARGS_SIZE_VER2,
/// 88 bytes, Linux 5.7). The kernel tells versions apart by the size passed next to it.
#[repr(C)]
#[derive(Debug, Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// include/uapi/linux/sched.h: "Clone into a specific cgroup given the right permissions."
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
// ANCHOR_END: clone_args

impl Cgroup {
    /// Starts `argv` (looked up in PATH) inside this cgroup and returns once it has exec'd.
    /// An execve failure is an error with Docker's status: 127 not found, 126 not executable.
    pub fn spawn(&self, argv: &[OsString]) -> Result<Child> {
        self.spawn_with(argv, Placement::CloneIntoCgroup)
    }

    // ANCHOR: spawn
    /// Like [`Cgroup::spawn`], choosing the way in: `ProcsBeforeExec` forces fork +
    /// `cgroup.procs` even where clone3 would work (to compare the two, and to test the
    /// fallback on a kernel that has clone3).
    pub fn spawn_with(&self, argv: &[OsString], prefer: Placement) -> Result<Child> {
        let Some(program) = argv.first() else {
            bail!("no command to run");
        };
        let args: Vec<CString> = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()
            .context("an argument contains a NUL byte")?;
        let mut arg_ptrs: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        arg_ptrs.push(std::ptr::null());
        let (exec_read, exec_write) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe2 for the exec report")?;
        let child = self.start_signals_blocked(prefer, &arg_ptrs, &exec_read, &exec_write)?;
        // Our copy of the write end must go, or the read below would wait for ourselves.
        drop(exec_write);
        exec_report(&child, &exec_read, program)?;
        Ok(child)
    }
    // ANCHOR_END: spawn

    // ANCHOR: spawn_signals
    /// Starts the child with the signals we forward blocked, until the child has reset them:
    /// otherwise a Ctrl-C between clone and execve would run the parent's handler inside the
    /// child. The parent's mask is restored whether or not the start worked.
    fn start_signals_blocked(
        &self,
        prefer: Placement,
        argv: &[*const c_char],
        exec_read: &OwnedFd,
        exec_write: &OwnedFd,
    ) -> Result<Child> {
        let mut forwarded = SigSet::empty();
        for sig in [
            Signal::SIGINT,
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGQUIT,
        ] {
            forwarded.add(sig);
        }
        let mut old_mask = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&forwarded), Some(&mut old_mask))
            .context("blocking signals around fork")?;
        let started = self.start(prefer, argv, exec_read, exec_write);
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
        started
    }
    // ANCHOR_END: spawn_signals

    fn start(
        &self,
        prefer: Placement,
        argv: &[*const c_char],
        exec_read: &OwnedFd,
        exec_write: &OwnedFd,
    ) -> Result<Child> {
        if prefer == Placement::CloneIntoCgroup
            && let Some(dir) = self.v2_path()
            && let Some(pid) = clone_into_cgroup(dir, argv, exec_read, exec_write)?
        {
            return Ok(Child {
                pid,
                placement: Placement::CloneIntoCgroup,
            });
        }
        let pid = self.fork_then_join(argv, exec_read, exec_write)?;
        Ok(Child {
            pid,
            placement: Placement::ProcsBeforeExec,
        })
    }

    // ANCHOR: fork_then_join
    /// Forks a child held at a pipe, moves it into the cgroup, then lets it exec.
    fn fork_then_join(
        &self,
        argv: &[*const c_char],
        exec_read: &OwnedFd,
        exec_write: &OwnedFd,
    ) -> Result<Pid> {
        let (go_read, go_write) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe2 for the go signal")?;
        explain::step(
            "fork the command, held before exec",
            || "fork()".into(),
            Chapter::Cgroups,
        );
        // SAFETY: the child only calls async-signal-safe functions (close, sigaction,
        // sigprocmask, read, execvp, write, _exit) on memory prepared before the fork.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(Errno::last()).context("fork");
        }
        if pid == 0 {
            let fds = ChildFds {
                go_read: Some(go_read.as_raw_fd()),
                close: [go_write.as_raw_fd(), exec_read.as_raw_fd()],
                exec_write: exec_write.as_raw_fd(),
            };
            // SAFETY: in the child of fork, see above.
            unsafe { exec_child(&fds, argv) }
        }
        let pid = Pid::from_raw(pid);
        drop(go_read);
        if let Err(err) = self.add_pid(pid) {
            // The child is still waiting: kill it, so nothing runs outside the cgroup.
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(err.context("moving the child into its cgroup"));
        }
        explain::step(
            "let the command exec",
            || "write(go pipe, \"1\") then execve() in the child".into(),
            Chapter::Cgroups,
        );
        nix::unistd::write(&go_write, b"1").context("releasing the child")?;
        Ok(pid)
    }
    // ANCHOR_END: fork_then_join
}

// ANCHOR: spawn_report
/// Reads the exec report: the pipe is close-on-exec, so EOF means the child's execve
/// worked, while four bytes are the errno of a failed one. That failure becomes Docker's
/// status: 127 for a command not found, 126 for one that cannot be executed.
fn exec_report(child: &Child, exec_read: &OwnedFd, program: &OsString) -> Result<()> {
    let mut errno_bytes = [0u8; 4];
    let read = read_full(exec_read, &mut errno_bytes);
    if read == errno_bytes.len() {
        let _ = waitpid(child.pid, None);
        let errno = Errno::from_raw(i32::from_ne_bytes(errno_bytes));
        let name = program.to_string_lossy();
        return Err(match errno {
            Errno::ENOENT => Exit::new(code::NOT_FOUND, format!("exec \"{name}\": not found")),
            other => Exit::new(
                code::CANNOT_EXECUTE,
                format!("exec \"{name}\": {}", other.desc()),
            ),
        }
        .into());
    }
    Ok(())
}
// ANCHOR_END: spawn_report

// ANCHOR: clone3
/// clone3(CLONE_INTO_CGROUP): the child is born in `dir`. Returns `None` when this kernel
/// cannot do it ([`clone3_into`]), so the caller falls back to fork + cgroup.procs.
fn clone_into_cgroup(
    dir: &Path,
    argv: &[*const c_char],
    exec_read: &OwnedFd,
    exec_write: &OwnedFd,
) -> Result<Option<Pid>> {
    explain::step(
        "start the command in the cgroup",
        || {
            format!(
                "clone3({{flags: CLONE_INTO_CGROUP, cgroup: open({})}})",
                dir.display()
            )
        },
        Chapter::Cgroups,
    );
    match clone3_into(dir, 0)? {
        None => {
            explain::note("clone3(CLONE_INTO_CGROUP) unsupported here: falling back to fork");
            Ok(None)
        }
        Some(0) => {
            let fds = ChildFds {
                go_read: None,
                close: [exec_read.as_raw_fd(), -1],
                exec_write: exec_write.as_raw_fd(),
            };
            // SAFETY: in the child of clone3, see clone3_call.
            unsafe { exec_child(&fds, argv) }
        }
        Some(pid) => Ok(Some(Pid::from_raw(pid as i32))),
    }
}
// ANCHOR_END: clone3

// ANCHOR: clone3_into
/// clone3(`flags` | CLONE_INTO_CGROUP) into the cgroup2 directory `dir`, with SIGCHLD as the
/// exit signal. Returns twice, as fork does: `Some(pid)` in the parent, `Some(0)` in the
/// child. `None` when this kernel cannot (ENOSYS: no clone3 before 5.3, or a seccomp filter;
/// E2BIG: no `cgroup` field before 5.7; EINVAL: no `CLONE_INTO_CGROUP`, or `dir` is not on
/// the cgroup2 hierarchy) or we may not (EPERM, EACCES: no write access to the cgroups'
/// common ancestor's `cgroup.procs`): the caller then clones or forks and writes
/// `cgroup.procs`. Other errors (EBUSY: the no-internal-processes rule, as `dir` enables
/// controllers for children; EAGAIN: its pids.max is reached) are errors.
///
/// Only the child of a single-threaded caller, or one that calls only async-signal-safe
/// functions until execve, may do anything but that in the child (fork(2)).
pub(crate) fn clone3_into(dir: &Path, flags: u64) -> Result<Option<libc::c_long>> {
    let cgroup_fd = nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("opening {}", dir.display()))?;
    match clone3_call(&cgroup_fd, flags) {
        Err(Errno::ENOSYS | Errno::E2BIG | Errno::EINVAL | Errno::EPERM | Errno::EACCES) => {
            Ok(None)
        }
        Err(errno) => Err(errno).with_context(|| format!("clone3 into {}", dir.display())),
        Ok(pid) => Ok(Some(pid)),
    }
}
// ANCHOR_END: clone3_into

// ANCHOR: clone3_call
/// The clone3 system call itself, which libc has no wrapper for: `struct clone_args` and
/// its size. Returns twice, as fork does: the child's pid in the parent, 0 in the child.
fn clone3_call(cgroup_fd: &OwnedFd, flags: u64) -> nix::Result<libc::c_long> {
    let mut args = CloneArgs {
        flags: flags | CLONE_INTO_CGROUP,
        // Like fork: the parent gets SIGCHLD when the child ends, so waitpid works as usual.
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup_fd.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM behaves like fork: the child gets a copy of our memory
    // and continues on a copy of this stack. glibc's cached thread id is stale in a child
    // made by a raw clone3 (as after its clone(3) wrapper), which nothing before execve
    // depends on.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    Errno::result(ret)
}
// ANCHOR_END: clone3_call

/// The descriptors the child deals with before execve.
struct ChildFds {
    /// Wait for one byte on this before exec (fork path only).
    go_read: Option<RawFd>,
    /// Parent-side ends to close, so that EOF means what it should (-1: none).
    close: [RawFd; 2],
    /// Where to write errno if execve fails.
    exec_write: RawFd,
}

/// The child's side, between clone and execve. Never returns.
///
/// # Safety
/// Call only in a freshly forked/cloned child. Uses only async-signal-safe functions and
/// allocates nothing: after fork in a multi-threaded parent, another thread may have held the
/// malloc lock.
unsafe fn exec_child(fds: &ChildFds, argv: &[*const c_char]) -> ! {
    unsafe {
        for fd in fds.close {
            if fd >= 0 {
                libc::close(fd);
            }
        }
        for sig in RESET_SIGNALS {
            libc::signal(sig, libc::SIG_DFL);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        if let Some(go) = fds.go_read {
            let mut byte = 0u8;
            loop {
                let n = libc::read(go, (&raw mut byte).cast(), 1);
                if n == 1 {
                    break;
                }
                if n < 0 && *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                // EOF: the parent gave up (it could not move us into the cgroup). Never run
                // the command outside its cgroup.
                libc::_exit(code::FAILED as i32);
            }
        }
        libc::execvp(argv[0], argv.as_ptr());
        let errno = (*libc::__errno_location()).to_ne_bytes();
        libc::write(fds.exec_write, errno.as_ptr().cast(), errno.len());
        libc::_exit(code::NOT_FOUND as i32)
    }
}

/// Reads until `buf` is full or EOF; returns how many bytes came.
fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    got
}
