//! The first move into a cgroup is slow; start paying for it early.
//!
//! Writing a pid into `cgroup.procs` takes the kernel's one global
//! `cgroup_threadgroup_rwsem` for writing (kernel/cgroup/cgroup.c, `cgroup_attach_lock`). It is
//! a per-CPU rw-semaphore: readers (every fork and exit on the machine) take it almost for free,
//! and the price is paid by the first writer after a quiet spell, which waits for an RCU grace
//! period while the readers switch to the slow path (`rcu_sync_enter`). Writers that follow
//! within about a grace period skip that wait. On a small VM the grace period is 5 to 15 ms:
//! more than the rest of a container start put together.
//!
//! [`GracePeriod::start`] begins that wait at once, in a forked process that moves itself into
//! the cgroup it is already in (a move that changes nothing), while the caller prepares the
//! container. The container's own move, a few milliseconds later, then waits only for what is
//! left of the grace period. A process, not a thread: the runtime clones the container process
//! meanwhile, and no other thread may run while a multithreaded process clones. The warm-up is
//! an optimisation only: when it cannot write (no permission, a cgroup namespace hiding the
//! path), nothing changes but the time.

use super::cgroup_dir_of;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};
use std::ffi::CString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// The forked process that moves itself; see the module docs. Dropping it reaps the process.
pub struct GracePeriod(Option<Pid>);

// ANCHOR: warmup
impl GracePeriod {
    /// Forks the process. Before the fork, our own cgroup in one hierarchy is found (the
    /// cgroup2 mount on a v2 host, the first v1 controller otherwise) and its `cgroup.procs`
    /// path made ready: the child only makes system calls, then `_exit`s.
    pub fn start() -> GracePeriod {
        let Some(path) =
            own_procs_file().and_then(|p| CString::new(p.into_os_string().into_vec()).ok())
        else {
            return GracePeriod(None);
        };
        // SAFETY: the child calls only async-signal-safe functions (open, write, _exit) on
        // memory prepared before the fork.
        match unsafe { nix::unistd::fork() } {
            Ok(ForkResult::Child) => unsafe {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd >= 0 {
                    // "0" is the writing process itself (cgroup_procs_write_start).
                    libc::write(fd, b"0".as_ptr().cast(), 1);
                }
                libc::_exit(0)
            },
            Ok(ForkResult::Parent { child }) => GracePeriod(Some(child)),
            Err(_) => GracePeriod(None),
        }
    }
}
// ANCHOR_END: warmup

/// `cgroup.procs` of the cgroup this process is in, in one hierarchy.
fn own_procs_file() -> Option<PathBuf> {
    let layout = super::detect().ok()?;
    let version = layout.default_version();
    let controller = layout.controllers.iter().find(|c| c.version == version)?;
    let dir = cgroup_dir_of(&layout, &controller.name, Pid::this()).ok()??;
    Some(dir.join("cgroup.procs"))
}

impl Drop for GracePeriod {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = waitpid(pid, None);
        }
    }
}
