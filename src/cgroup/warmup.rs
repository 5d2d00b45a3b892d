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
//! [`GracePeriod::start`] begins that wait on a thread of its own, by writing this process's
//! pid into the cgroup it is already in (a move that changes nothing), while the caller
//! prepares the container. [`GracePeriod::finish`] joins the thread before the caller clones:
//! no thread may run while a child is cloned from a multithreaded process. The real move that
//! follows then takes microseconds. The warm-up is an optimisation only: when it cannot write
//! (no permission, a cgroup namespace hiding the path), nothing changes but the time.

use super::{Version, cgroup_dir_of};
use nix::unistd::Pid;
use std::io::Write;
use std::thread::JoinHandle;

/// A thread that re-writes our own pid into our own cgroup; see the module docs.
pub struct GracePeriod(Option<JoinHandle<()>>);

// ANCHOR: warmup
impl GracePeriod {
    /// Starts the thread. It detects the layout and reads `/proc/self/cgroup` to find our
    /// cgroup in one hierarchy (the cgroup2 mount on a v2 host, the first v1 controller
    /// otherwise).
    pub fn start() -> GracePeriod {
        let thread = std::thread::Builder::new()
            .name("cgroup-warmup".into())
            .spawn(move || {
                let Ok(layout) = super::detect() else {
                    return;
                };
                let pick = match layout.default_version() {
                    Version::V2 => layout.controllers.iter().find(|c| c.version == Version::V2),
                    Version::V1 => layout.controllers.iter().find(|c| c.version == Version::V1),
                };
                let me = Pid::this();
                if let Some(controller) = pick
                    && let Ok(Some(dir)) = cgroup_dir_of(&layout, &controller.name, me)
                {
                    let procs = std::fs::OpenOptions::new()
                        .write(true)
                        .open(dir.join("cgroup.procs"));
                    if let Ok(mut procs) = procs {
                        let _ = procs.write_all(me.to_string().as_bytes());
                    }
                }
            });
        GracePeriod(thread.ok())
    }

    /// Waits for the thread: call it before cloning.
    pub fn finish(mut self) {
        self.join();
    }

    fn join(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}
// ANCHOR_END: warmup

impl Drop for GracePeriod {
    fn drop(&mut self) {
        self.join();
    }
}
