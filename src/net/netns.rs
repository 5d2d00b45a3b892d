//! Network namespaces: open one, work inside it, pin a new one to a file, and make a private
//! one for tests and workshop checks.
//!
//! A network namespace is a whole copy of the network stack: its own links, addresses, routes,
//! netfilter rules and `/proc/sys/net` settings (network_namespaces(7)). A process enters one
//! with setns(2), and the kernel keeps it alive while anything refers to it: a process inside,
//! an open `/proc/PID/ns/net` file descriptor, or a bind mount of that file (which is all
//! `ip netns add` does).

use super::netlink::{LOOPBACK_INDEX, Netlink};
use crate::explain::{self, Chapter};
use anyhow::{Context, Result, anyhow};
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// An open network namespace. Holding the descriptor keeps the namespace alive.
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    /// Where it was opened from, for messages.
    pub origin: PathBuf,
}

impl Netns {
    /// Opens a namespace file: `/proc/PID/ns/net`, or a pinned namespace.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path)
            .with_context(|| format!("opening network namespace {}", path.display()))?;
        Ok(Netns {
            fd: file.into(),
            origin: path.to_path_buf(),
        })
    }

    /// The network namespace of process `pid`.
    pub fn of_pid(pid: i32) -> Result<Self> {
        Self::open(&PathBuf::from(format!("/proc/{pid}/ns/net")))
    }

    /// The calling thread's own network namespace.
    pub fn current() -> Result<Self> {
        Self::open(Path::new("/proc/thread-self/ns/net"))
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The namespace's identity: the (device, inode) of its nsfs file, the same for every path
    /// that refers to it (what `ls -L -i /proc/PID/ns/net` shows).
    pub fn id(&self) -> Result<(u64, u64)> {
        let meta = File::from(self.fd.try_clone()?).metadata()?;
        Ok((meta.dev(), meta.ino()))
    }

    // ANCHOR: netns_run
    /// Runs `f` inside this namespace. Namespaces belong to threads, not processes: as root of
    /// the host the calling thread enters it and comes back when `f` returns,
    /// which costs two setns(2) calls and no other thread to schedule; in a user namespace,
    /// which may not enter the host's namespace again, `f` runs on a short-lived thread
    /// instead. Sockets that `f` creates stay bound to this namespace either way.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R> {
        if !crate::rootfs::in_initial_user_namespace() {
            return self.run_on_thread(f);
        }
        let home = Entered::remember_home()?;
        self.trace_enter();
        nix::sched::setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET)
            .with_context(|| format!("setns(CLONE_NEWNET) into {}", self.origin.display()))?;
        let result = f();
        drop(home);
        Ok(result)
    }

    /// [`Netns::run`] on a short-lived thread that has entered this namespace.
    fn run_on_thread<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| -> Result<R> {
                    self.trace_enter();
                    nix::sched::setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET).with_context(
                        || format!("setns(CLONE_NEWNET) into {}", self.origin.display()),
                    )?;
                    Ok(f())
                })
                .join()
                .map_err(|_| anyhow!("the thread inside {} panicked", self.origin.display()))?
        })
    }
    // ANCHOR_END: netns_run

    /// The trace line of entering this namespace.
    fn trace_enter(&self) {
        explain::step(
            "enter the netns",
            || format!("setns({}, CLONE_NEWNET)", self.origin.display()),
            Chapter::Networking,
        );
    }

    /// A netlink socket that talks to this namespace (opened from inside it).
    pub fn netlink(&self) -> Result<Netlink> {
        self.run(|| {
            explain::step(
                "open a netlink socket in the netns",
                || "socket(AF_NETLINK, NETLINK_ROUTE)".to_owned(),
                Chapter::Networking,
            );
            Netlink::open()
        })?
        .with_context(|| format!("opening a netlink socket in {}", self.origin.display()))
    }
}

/// The calling thread inside another network namespace, until dropped: dropping it enters
/// the thread's own namespace again. A thread that cannot go back would configure the wrong
/// namespace from then on, so that failure aborts the process.
struct Entered {
    home: OwnedFd,
}

impl Entered {
    /// Keeps a descriptor of the calling thread's own namespace, entered again on drop; the
    /// caller then leaves it (setns(2) or unshare(2)).
    fn remember_home() -> Result<Entered> {
        let home: OwnedFd = File::open("/proc/thread-self/ns/net")
            .context("opening the thread's own network namespace")?
            .into();
        Ok(Entered { home })
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        explain::step(
            "go back to the thread's own netns",
            || "setns(/proc/thread-self/ns/net as it was, CLONE_NEWNET)".to_owned(),
            Chapter::Networking,
        );
        if nix::sched::setns(self.home.as_fd(), CloneFlags::CLONE_NEWNET).is_err() {
            eprintln!("minidock: cannot enter the thread's own network namespace again");
            std::process::abort();
        }
    }
}

// ANCHOR: pin_new
/// Creates a new network namespace and pins it at `path` with a bind mount, as `ip netns add`
/// does, so it outlives this process. Like every new network namespace it has only `lo`,
/// and `lo` is down.
pub fn pin_new(path: &Path) -> Result<Netns> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    // The mount point: an empty file (a namespace file is not a directory).
    File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    // As in `Netns::run`: on the calling thread when it can come back, else on a thread.
    let pinned = if crate::rootfs::in_initial_user_namespace() {
        Entered::remember_home().and_then(|home| {
            let pinned = unshare_and_pin(path);
            drop(home);
            pinned
        })
    } else {
        std::thread::scope(|scope| {
            scope
                .spawn(|| unshare_and_pin(path))
                .join()
                .map_err(|_| anyhow!("the netns thread panicked"))?
        })
    };
    if let Err(err) = pinned {
        let _ = std::fs::remove_file(path);
        return Err(err);
    }
    Netns::open(path)
}
// ANCHOR_END: pin_new

// ANCHOR: unshare_and_pin
/// Moves the calling thread into a new network namespace and bind-mounts it on `path`.
fn unshare_and_pin(path: &Path) -> Result<()> {
    explain::trace!(Networking: "create a network namespace" => "unshare(CLONE_NEWNET)");
    nix::sched::unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET)")?;
    let netns = Path::new("/proc/thread-self/ns/net");
    crate::syscall::Mount::bind(netns, path, MsFlags::empty())
        .run(Chapter::Networking, "pin it with a bind mount")
}
// ANCHOR_END: unshare_and_pin

/// Unpins a namespace made by [`pin_new`]: lazy unmount, then remove the file. The namespace
/// itself goes away when nothing else refers to it. Missing pins are fine (idempotent).
pub fn unpin(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    explain::step(
        "unpin the network namespace",
        || format!("umount2({path:?}, MNT_DETACH)"),
        Chapter::Networking,
    );
    match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
        Err(e) => return Err(e).with_context(|| format!("unmounting {}", path.display())),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// The identity ((device, inode), as [`Netns::id`]) of the namespace pinned at `path`, when
/// one is.
pub fn pinned_id(path: &Path) -> Option<(u64, u64)> {
    if !is_pinned(path) {
        return None;
    }
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// True when a process other than the caller is inside the namespace `id` ((device, inode),
/// as [`Netns::id`]): its `/proc/PID/ns/net` is that namespace. Other holders (an open
/// descriptor, a socket, another bind mount) are not seen. When `/proc` cannot be read, true.
pub fn has_processes(id: (u64, u64)) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true;
    };
    let me = std::process::id();
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .any(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| (m.dev(), m.ino()) == id)
        })
}

/// True when `path` is a pinned namespace (a mounted nsfs file), not a leftover empty file.
pub fn is_pinned(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}

// ANCHOR: join_pinned
/// Joins (setns(2)) the network namespace pinned at `path`, pinning a new one there first
/// ([`pin_new`]) when there is none, and brings its `lo` up. The calling thread, the threads
/// it starts and the processes it spawns then live in that namespace. Call it while the process
/// has one thread. Run by root of a user namespace (`rootless::enter`), it gives a user without
/// root a network of its own: that root holds CAP_NET_ADMIN over the network namespaces its
/// user namespace owns, and over no other (user_namespaces(7)). Returns whether the namespace
/// was made now. Errors: the pin cannot be made or opened, or setns(2) refuses it.
pub fn join_pinned(path: &Path) -> Result<bool> {
    if let Some(parent) = path.parent() {
        crate::state::private_dir(parent)?;
    }
    let _lock = crate::state::lock_file(&path.with_extension("lock"))?;
    let created = !is_pinned(path);
    if created {
        // An empty mount point left from a namespace that went with an earlier holder.
        let _ = std::fs::remove_file(path);
        pin_new(path)?;
    }
    let ns = Netns::open(path)?;
    nix::sched::setns(ns.fd(), CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("setns({}, CLONE_NEWNET)", path.display()))?;
    let mut nl = Netlink::open().context("opening a netlink socket")?;
    nl.set_up(LOOPBACK_INDEX, "lo", None)
        .with_context(|| format!("bringing up lo in {}", path.display()))?;
    Ok(created)
}
// ANCHOR_END: join_pinned

// ANCHOR: isolated
/// Runs `f` on a new thread inside a fresh, private network namespace and mount namespace,
/// with `lo` up. Everything `f` creates (links, rules, sysctls, mounts) and every process it
/// spawns lives there and vanishes with it: the host's network is never touched. Tests and
/// the workshop checks run their scenarios this way.
pub fn isolated<R: Send>(f: impl FnOnce() -> Result<R> + Send) -> Result<R> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<R> {
                nix::sched::unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS)
                    .context("unshare(CLONE_NEWNET | CLONE_NEWNS) for a private network")?;
                // Our pins are bind mounts: keep them from propagating back to the host.
                nix::mount::mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&str>,
                )
                .context("making / a private mount tree")?;
                let mut nl = Netlink::open().context("opening a netlink socket")?;
                nl.set_up(LOOPBACK_INDEX, "lo", None)
                    .context("bringing up lo in the private netns")?;
                f()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
// ANCHOR_END: isolated
