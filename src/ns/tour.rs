//! `ns-demo tour`: for each of the seven namespaces, start a process in a new one and show
//! the kernel's own evidence from outside and from inside. Nothing here is simulated: every
//! value printed is read from /proc, a syscall or the mount table at that moment.

use super::{Child, Namespace, Sandbox, ns_id};
use anyhow::{Context, Result, bail};
use nix::unistd::{ForkResult, Gid, Uid};
use std::path::{Path, PathBuf};

const TOUR_HOSTNAME: &str = "minidock-tour";

fn heading(number: usize, title: &str) {
    println!("\n== {number}/7 {title} ==");
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Runs `f` in a child in the given namespaces and fails unless it returned 0.
fn inside(namespaces: &[Namespace], f: impl FnMut() -> i32) -> Result<()> {
    inside_sandbox(Sandbox::new(namespaces), f)
}

fn inside_sandbox(sandbox: Sandbox, mut f: impl FnMut() -> i32) -> Result<()> {
    let status = sandbox.run(Child::Call(Box::new(&mut f)))?;
    if status != 0 {
        bail!("the process inside the namespace failed (status {status})");
    }
    Ok(())
}

/// Prints one line of evidence and turns a failed read into a non-zero child status.
fn evidence(result: Result<String>) -> i32 {
    match result {
        Ok(line) => {
            println!("{line}");
            0
        }
        Err(err) => {
            eprintln!("ns-demo: {err:#}");
            1
        }
    }
}

fn hostname() -> Result<String> {
    Ok(nix::unistd::gethostname()
        .context("gethostname")?
        .to_string_lossy()
        .into_owned())
}

fn uts() -> Result<()> {
    heading(1, "UTS namespace: the hostname");
    let before = hostname()?;
    let outside = ns_id("self", Namespace::Uts)?;
    println!("outside: {outside}  hostname {before:?}");
    let sandbox = Sandbox {
        hostname: Some(TOUR_HOSTNAME.into()),
        ..Sandbox::new(&[Namespace::Uts])
    };
    inside_sandbox(sandbox, || {
        evidence((|| {
            let id = ns_id("self", Namespace::Uts)?;
            Ok(format!(
                "inside:  {id}  hostname {:?}  (a different namespace: {})",
                hostname()?,
                yes_no(id != outside)
            ))
        })())
    })?;
    let after = hostname()?;
    println!(
        "after:   the host's hostname is unchanged: {}",
        yes_no(after == before)
    );
    Ok(())
}

fn pid() -> Result<()> {
    heading(2, "PID namespace: the first process is PID 1");
    println!(
        "outside: {}  our pid is {}",
        ns_id("self", Namespace::Pid)?,
        std::process::id()
    );
    let sandbox = Sandbox::new(&[Namespace::Pid]);
    let pid = sandbox.spawn(Child::Call(Box::new(|| {
        evidence((|| {
            // /proc was remounted in the new mount namespace, so it lists only our processes.
            let mut pids: Vec<u32> = std::fs::read_dir("/proc")
                .context("reading /proc")?
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            pids.sort();
            Ok(format!(
                "inside:  {}  getpid() = {}  processes in /proc: {pids:?}",
                ns_id("self", Namespace::Pid)?,
                std::process::id()
            ))
        })())
    })))?;
    let status = super::wait_for(pid)?;
    if status != 0 {
        bail!("the process inside the PID namespace failed (status {status})");
    }
    println!("outside: the same process was pid {pid} on the host");
    Ok(())
}

fn mounts_with(dir: &Path) -> Result<bool> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
    let dir = dir.to_string_lossy();
    Ok(table.lines().any(|l| l.split(' ').nth(4) == Some(&*dir)))
}

fn mount() -> Result<()> {
    heading(3, "mount namespace: a private mount table");
    let dir = tempfile::Builder::new()
        .prefix("minidock-tour-mnt")
        .tempdir()
        .context("creating a temp dir")?;
    let target = dir.path().to_path_buf();
    println!("outside: {}", ns_id("self", Namespace::Mount)?);
    inside(&[Namespace::Mount], || {
        evidence((|| {
            nix::mount::mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                nix::mount::MsFlags::empty(),
                None::<&str>,
            )
            .context("mount tmpfs")?;
            Ok(format!(
                "inside:  {}  mounted a tmpfs on the tour's temp dir; in our mount table: {}",
                ns_id("self", Namespace::Mount)?,
                yes_no(mounts_with(&target)?)
            ))
        })())
    })?;
    println!(
        "outside: that tmpfs is in the host's mount table: {}",
        yes_no(mounts_with(&target)?)
    );
    Ok(())
}

fn ipc() -> Result<()> {
    heading(4, "IPC namespace: System V message queues");
    // SAFETY: plain syscall wrappers with no pointers.
    let queue = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
    if queue < 0 {
        return Err(std::io::Error::last_os_error()).context("msgget(IPC_PRIVATE)");
    }
    let listed = |queue: i32| -> Result<bool> {
        let table = std::fs::read_to_string("/proc/sysvipc/msg").context("/proc/sysvipc/msg")?;
        Ok(table
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some(&queue.to_string())))
    };
    let result = (|| {
        println!(
            "outside: {}  created a message queue; listed in /proc/sysvipc/msg: {}",
            ns_id("self", Namespace::Ipc)?,
            yes_no(listed(queue)?)
        );
        inside(&[Namespace::Ipc], || {
            evidence((|| {
                Ok(format!(
                    "inside:  {}  the host's queue is listed here: {}",
                    ns_id("self", Namespace::Ipc)?,
                    yes_no(listed(queue)?)
                ))
            })())
        })
    })();
    // SAFETY: removes the queue we created; the null buffer is allowed for IPC_RMID.
    unsafe { libc::msgctl(queue, libc::IPC_RMID, std::ptr::null_mut()) };
    result
}

fn interfaces() -> Result<Vec<String>> {
    Ok(nix::net::if_::if_nameindex()
        .context("if_nameindex")?
        .iter()
        .map(|i| i.name().to_string_lossy().into_owned())
        .collect())
}

fn net() -> Result<()> {
    heading(5, "network namespace: its own interfaces");
    let outside = interfaces()?;
    println!(
        "outside: {}  interfaces other than lo: {}",
        ns_id("self", Namespace::Net)?,
        yes_no(outside.iter().any(|i| i != "lo"))
    );
    inside(&[Namespace::Net], || {
        evidence((|| {
            Ok(format!(
                "inside:  {}  interfaces: {:?}",
                ns_id("self", Namespace::Net)?,
                interfaces()?
            ))
        })())
    })
}

/// Runs `f` in a forked child and returns its exit status, for steps that change the calling
/// process itself (its uid, its cgroup) and must not change the tour's.
fn in_forked_child(f: impl FnOnce() -> Result<()>) -> Result<u8> {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: ns-demo is single-threaded; the child only runs `f` and exits.
    match unsafe { nix::unistd::fork() }.context("fork")? {
        ForkResult::Child => {
            let status = match f() {
                Ok(()) => 0,
                Err(err) => {
                    eprintln!("ns-demo: {err:#}");
                    1
                }
            };
            let _ = std::io::stdout().flush();
            // SAFETY: leave the forked copy without running the parent's destructors.
            unsafe { libc::_exit(status) }
        }
        ForkResult::Parent { child } => super::wait_for(child),
    }
}

fn user() -> Result<()> {
    heading(6, "user namespace: root inside, nobody outside");
    // As root, mapping "0 inside" to the caller would map 0 to 0, which shows nothing. So the
    // tour first becomes the unprivileged user nobody (65534) in a forked child, and then
    // creates the user namespace from there: no privilege is needed for that.
    let nobody = 65534;
    let status = in_forked_child(|| {
        nix::unistd::setgroups(&[]).context("setgroups([])")?;
        nix::unistd::setgid(Gid::from_raw(nobody)).context("setgid(65534)")?;
        nix::unistd::setuid(Uid::from_raw(nobody)).context("setuid(65534)")?;
        // Changing uid makes a process non-dumpable, and then its /proc/PID files (uid_map
        // among them) belong to root (proc(5), PR_SET_DUMPABLE): make it dumpable again so
        // nobody may write its own child's map.
        nix::sys::prctl::set_dumpable(true).context("prctl(PR_SET_DUMPABLE, 1)")?;
        println!(
            "outside: {}  uid {}",
            ns_id("self", Namespace::User)?,
            Uid::current()
        );
        inside(&[Namespace::User], || {
            evidence((|| {
                let map = std::fs::read_to_string("/proc/self/uid_map").context("uid_map")?;
                Ok(format!(
                    "inside:  {}  uid {}  uid_map {:?}",
                    ns_id("self", Namespace::User)?,
                    Uid::current(),
                    map.split_whitespace().collect::<Vec<_>>().join(" ")
                ))
            })())
        })
    })?;
    if status != 0 {
        bail!("the user namespace step failed (status {status})");
    }
    Ok(())
}

/// The cgroup2 mount point: `/sys/fs/cgroup` on a pure v2 host, `/sys/fs/cgroup/unified` on a
/// hybrid one.
fn cgroup2_mount() -> Result<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
    table
        .lines()
        .find(|l| l.contains(" - cgroup2 "))
        .and_then(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .context("no cgroup2 mount in /proc/self/mountinfo")
}

fn unified_cgroup_line() -> Result<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
    text.lines()
        .find(|l| l.starts_with("0::"))
        .map(str::to_owned)
        .context("no cgroup2 line in /proc/self/cgroup")
}

fn cgroup() -> Result<()> {
    heading(7, "cgroup namespace: its own cgroup is the root");
    // Put the child in a cgroup of its own first, so there is a path to hide.
    let dir = cgroup2_mount()?.join(format!("minidock-tour-{}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let status = in_forked_child(|| {
        let procs = dir.join("cgroup.procs");
        std::fs::write(&procs, std::process::id().to_string())
            .with_context(|| format!("writing {}", procs.display()))?;
        println!(
            "outside: {}  /proc/self/cgroup: {}",
            ns_id("self", Namespace::Cgroup)?,
            unified_cgroup_line()?
        );
        inside(&[Namespace::Cgroup], || {
            evidence((|| {
                Ok(format!(
                    "inside:  {}  /proc/self/cgroup: {}",
                    ns_id("self", Namespace::Cgroup)?,
                    unified_cgroup_line()?
                ))
            })())
        })
    });
    let removed = std::fs::remove_dir(&dir).with_context(|| format!("rmdir {}", dir.display()));
    let status = status?;
    removed?;
    if status != 0 {
        bail!("the cgroup namespace step failed (status {status})");
    }
    Ok(())
}

/// Runs the whole tour.
pub fn run() -> Result<()> {
    super::check_support(&Namespace::ALL)?;
    if !Uid::effective().is_root() {
        bail!("the tour needs root (it creates every namespace type and mounts): run it with sudo");
    }
    println!("Each step starts a process in one new namespace and reads the kernel's evidence");
    println!("from outside and inside. Namespace ids are the inode numbers of /proc/PID/ns/*.");
    uts()?;
    pid()?;
    mount()?;
    ipc()?;
    net()?;
    user()?;
    cgroup()?;
    println!(
        "\nSeven namespaces, seven views of the same kernel. A container is a process in all of them."
    );
    Ok(())
}
