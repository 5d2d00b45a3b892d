//! What the checker sees from the host: a whole mount namespace, and the throwaway environment
//! every check runs in.

use anyhow::{Context, Result, bail};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;

/// The mountinfo (proc(5)) of the whole mount namespace process `pid` is in, read from that
/// namespace's own root.
///
/// `/proc/PID/mountinfo` leaves out every mount outside the process's root, so after a
/// `chroot` the host's mounts vanish from it although they are still in the namespace. A
/// process that joins the namespace with setns(2) gets the namespace's root as its own root
/// (mount_namespaces(7)), so its `/proc/self/mountinfo` lists everything. A forked child joins
/// and reads (the checker itself may have threads, which setns(CLONE_NEWNS) refuses); it opens
/// `self/mountinfo` through the checker's procfs, so the namespace needs no `/proc` of its own.
///
/// Errors: the process is gone, or setns is refused (not root).
pub fn namespace_mountinfo(pid: u32) -> Result<String> {
    let proc_dir = File::open("/proc").context("opening /proc")?;
    read_in_namespace(pid, "mnt", |ns, out| {
        copy_mountinfo(ns, proc_dir.as_raw_fd(), out)
    })
}

/// The hostname (uname(2) `nodename`) of the UTS namespace process `pid` is in, read by a
/// forked child that joins it with setns(2): what the process itself would see, whatever it
/// printed.
///
/// Errors: the process is gone, or setns is refused (not root).
pub fn namespace_hostname(pid: u32) -> Result<String> {
    read_in_namespace(pid, "uts", |ns, out| {
        // SAFETY: plain system calls on descriptors this process owns, with a stack buffer.
        unsafe {
            let mut name: libc::utsname = std::mem::zeroed();
            if libc::setns(ns, libc::CLONE_NEWUTS) != 0 || libc::uname(&mut name) != 0 {
                return false;
            }
            let len = libc::strlen(name.nodename.as_ptr());
            libc::write(out, name.nodename.as_ptr().cast(), len) == len as isize
        }
    })
    .map(|name| name.trim().to_owned())
}

/// Forks a child that runs `job(namespace fd, pipe fd)` on `/proc/PID/ns/KIND` and exits; the
/// text it writes into the pipe is returned when it succeeds. The child must call only
/// async-signal-safe functions (the checker may have threads).
fn read_in_namespace(pid: u32, kind: &str, job: impl FnOnce(i32, i32) -> bool) -> Result<String> {
    let ns_path = format!("/proc/{pid}/ns/{kind}");
    let ns = File::open(&ns_path).with_context(|| format!("opening {ns_path}"))?;
    let (read_end, write_end) = nix::unistd::pipe().context("pipe")?;
    // SAFETY: the child calls only async-signal-safe functions (setns, openat, read, write,
    // uname, _exit) on memory prepared before the fork, and never returns.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            drop(read_end);
            let ok = job(ns.as_raw_fd(), write_end.as_raw_fd());
            // SAFETY: _exit ends the forked child without running the parent's destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut text = String::new();
            File::from(read_end)
                .read_to_string(&mut text)
                .with_context(|| format!("reading from the {kind} namespace of process {pid}"))?;
            match waitpid(child, None).context("waitpid")? {
                WaitStatus::Exited(_, 0) => Ok(text),
                _ => bail!("could not join the {kind} namespace of process {pid} (setns)"),
            }
        }
    }
}

/// The forked child's part of [`namespace_mountinfo`]: join, open, copy. No allocation.
fn copy_mountinfo(ns: i32, proc_dir: i32, out: i32) -> bool {
    // SAFETY: plain system calls on descriptors this process owns, with a stack buffer.
    unsafe {
        if libc::setns(ns, libc::CLONE_NEWNS) != 0 {
            return false;
        }
        let fd = libc::openat(proc_dir, c"self/mountinfo".as_ptr(), libc::O_RDONLY);
        if fd < 0 {
            return false;
        }
        let mut buf = [0u8; 4096];
        loop {
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            if n <= 0 {
                return n == 0;
            }
            if libc::write(out, buf.as_ptr().cast(), n as usize) != n {
                return false;
            }
        }
    }
}

/// Moves the checker into a throwaway environment before it runs a learner's program: a mount
/// namespace of its own whose `/` is shared (MS_SHARED), and a UTS namespace of its own.
///
/// Many hosts (Debian's systemd among them) make `/` shared, others do not. Here it always is,
/// so a learner's program that forgets MS_PRIVATE leaks its mounts into the checker's table,
/// where the check sees them (and they never reach the host). The UTS namespace keeps a
/// `sethostname` without a namespace from renaming the host. No command is turned off in it: a
/// program that runs unshare(1), nsenter(1) or busybox to make a lesson's system calls fails
/// because the checker traces which program made each call (strace -f), whatever its name.
/// Called once per process.
///
/// Errors: unshare(2) or mount(2) refused (not root).
pub fn enter_throwaway_environment() -> Result<()> {
    static DONE: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let enter = || -> Result<()> {
            unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS)
                .context("unshare(CLONE_NEWNS|CLONE_NEWUTS)")?;
            // Private first, so no peer group is shared with the host, then shared: new peer
            // groups that only this namespace and the learner's copies of it belong to.
            for (flags, name) in [
                (MsFlags::MS_PRIVATE, "private"),
                (MsFlags::MS_SHARED, "shared"),
            ] {
                mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | flags,
                    None::<&str>,
                )
                .with_context(|| format!("making / {name}"))?;
            }
            Ok(())
        };
        enter().map_err(|e| format!("{e:#}"))
    })
    .clone()
    .map_err(|e| anyhow::anyhow!("entering the checker's throwaway environment: {e}"))
}
