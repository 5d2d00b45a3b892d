//! Checks for the namespace lessons (01 UTS, 02 PID, 03 pivot_root).
//!
//! Each check compares what the learner's process saw with what the checker reads from its
//! own side of the kernel: namespace inodes, the host's hostname, the host's mount table; and
//! the program runs traced, so that the lesson's system calls count only when the learner's
//! own program made them ([`Trace`]).

use super::{
    Need, OLD_ROOT_EXPECTED, OLD_ROOT_FROM_HOST, READY, SET_HOSTNAME, Trace, descendants,
    failed_run, host_mounts_unchanged, line, never_ready, old_root_detached, require_root,
    rootfs_with_marker, run_observed, unmount_leftovers,
};
use crate::workshop::Observation;
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

fn own_ns(name: &str) -> Result<String> {
    let path = format!("/proc/self/ns/{name}");
    Ok(std::fs::read_link(&path)
        .with_context(|| format!("readlink {path}"))?
        .to_string_lossy()
        .into_owned())
}

fn hostname() -> Result<String> {
    Ok(nix::unistd::gethostname()
        .context("gethostname")?
        .to_string_lossy()
        .into_owned())
}

pub(super) fn mount_table() -> Result<Vec<String>> {
    Ok(std::fs::read_to_string("/proc/self/mountinfo")
        .context("reading /proc/self/mountinfo")?
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .collect())
}

pub fn lesson01_uts(bin: &Path) -> Result<Vec<Observation>> {
    require_root()?;
    let host_before = hostname()?;
    let host_uts = own_ns("uts")?;
    let trace = Trace::new(bin, None)?;
    // While the command waits on its stdin, the checker reads its UTS namespace and that
    // namespace's hostname itself: printed text proves nothing.
    let (output, from_host) = run_observed(
        trace.command().args([
            "workshop-box",
            "sh",
            "-c",
            &format!("hostname; readlink /proc/self/ns/uts; echo {READY}; read x || true"),
        ]),
        LIMIT,
        READY,
        |pid| command_uts(pid, &host_uts),
    )?;
    let host_after = hostname()?;
    let mut observations = Vec::new();
    if host_after != host_before {
        // A learner who sets the hostname without a new namespace renames the machine: put it
        // back, and say so.
        let _ = nix::unistd::sethostname(&host_before);
    }
    observations.push(
        Observation::equal(
            "the host's hostname is unchanged",
            host_before.clone(),
            host_after,
        )
        .likely(
            "sethostname ran in the host's UTS namespace and renamed the machine (the checker put the name back): did you set the hostname before moving into a UTS namespace of your own, or without one?",
        ),
    );
    observations.push(trace.observe(&[Need::Namespace("CLONE_NEWUTS"), SET_HOSTNAME]));
    if let Some(failed) = failed_run("the program runs the command", &output) {
        observations.push(failed);
        return Ok(observations);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    observations.push(
        Observation::equal("hostname inside", "workshop-box", line(&stdout, 0))
            .likely("the command still sees the old name: was the hostname set at all?"),
    );
    let inside_uts = line(&stdout, 1);
    observations.push(
        Observation::judged(
            "UTS namespace inside (/proc/self/ns/uts)",
            format!("not {host_uts} (the host's)"),
            inside_uts.clone(),
            inside_uts.starts_with("uts:[") && inside_uts != host_uts,
        )
        .likely("the command runs in the host's UTS namespace: nothing made a new one for it"),
    );
    observations.push(from_host.unwrap_or_else(|| never_ready(UTS_FROM_HOST, UTS_EXPECTED)));
    Ok(observations)
}

const UTS_FROM_HOST: &str = "the command's UTS namespace and its hostname, seen from the host";
const UTS_EXPECTED: &str = "a UTS namespace of its own whose hostname is workshop-box";

/// The command's UTS namespace (`/proc/PID/ns/uts`) and the hostname in it (setns, uname),
/// read from the host while it waits.
fn command_uts(pid: u32, host_uts: &str) -> Observation {
    let command = descendants(pid).last().copied().unwrap_or(pid);
    let seen = || -> Result<(String, String)> {
        let ns = own_ns_of(command, "uts")?;
        Ok((ns, crate::workshop::namespace_hostname(command)?))
    };
    match seen() {
        Ok((ns, name)) => Observation::judged(
            UTS_FROM_HOST,
            UTS_EXPECTED,
            format!("{ns} (the host's is {host_uts}), hostname {name:?}"),
            ns != host_uts && name == "workshop-box",
        )
        .likely(if ns == host_uts {
            "the command runs in the host's UTS namespace: nothing made a new one for it"
        } else {
            "the command has a UTS namespace of its own, but its hostname was not set in it"
        }),
        Err(err) => Observation::judged(UTS_FROM_HOST, UTS_EXPECTED, format!("{err:#}"), false),
    }
}

fn own_ns_of(pid: u32, name: &str) -> Result<String> {
    let path = format!("/proc/{pid}/ns/{name}");
    Ok(std::fs::read_link(&path)
        .with_context(|| format!("readlink {path}"))?
        .to_string_lossy()
        .into_owned())
}

const PID_FROM_HOST: &str =
    "the command seen from the host: its pid in its own namespace (NSpid) and its /proc";
const PID_EXPECTED: &str =
    "pid 1 in a PID namespace of its own, a new procfs mounted on /proc in its mount namespace";

/// The command's pids (`NSpid` in `/proc/PID/status`, proc(5)), its PID namespace and the
/// procfs on `/proc` in its mount namespace, read from the host while it waits: its /proc must
/// be a new procfs (another device than the checker's), not the host's.
fn command_pid(pid: u32, host_pid: &str) -> Observation {
    let command = descendants(pid).last().copied().unwrap_or(pid);
    let seen = || -> Result<(String, bool)> {
        let ns = own_ns_of(command, "pid")?;
        let status = std::fs::read_to_string(format!("/proc/{command}/status"))
            .context("reading the command's status")?;
        let nspid = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let host_proc = proc_device(&std::fs::read_to_string("/proc/self/mountinfo")?);
        let inside_proc = proc_device(&crate::workshop::namespace_mountinfo(command)?);
        let ok = ns != host_pid
            && nspid.split_whitespace().last() == Some("1")
            && inside_proc.is_some()
            && inside_proc != host_proc;
        Ok((
            format!(
                "{ns} (the host's is {host_pid}), NSpid {nspid:?}, /proc device {} (the host's {})",
                inside_proc.as_deref().unwrap_or("(no procfs on /proc)"),
                host_proc.as_deref().unwrap_or("(none)")
            ),
            ok,
        ))
    };
    match seen() {
        Ok((actual, ok)) => Observation::judged(PID_FROM_HOST, PID_EXPECTED, actual, ok).likely(
            "seen from the host, the command is not PID 1 of a namespace of its own with its own /proc",
        ),
        Err(err) => Observation::judged(PID_FROM_HOST, PID_EXPECTED, format!("{err:#}"), false),
    }
}

/// The device (`major:minor`, mountinfo field 3) of the topmost procfs mounted on `/proc`.
fn proc_device(mountinfo: &str) -> Option<String> {
    mountinfo
        .lines()
        .rev()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f.len() > 4 && f[4] == "/proc" && f.contains(&"proc"))
        .map(|f| f[2].to_owned())
}

/// The misunderstanding behind a command that is not PID 1 of its namespace.
const NOT_PID_1: &str = "the command is not PID 1: a new PID namespace does not move the process that asks for it, only the next child it forks (and when that child exits, the namespace is dead and every later fork fails). Did you exec the command without forking first?";

pub fn lesson02_pid(bin: &Path) -> Result<Vec<Observation>> {
    require_root()?;
    let mounts_before = mount_table()?;
    let host_pid = own_ns("pid")?;
    let trace = Trace::new(bin, None)?;
    let (output, from_host) = run_observed(
        trace.command().args([
            "sh",
            "-c",
            &format!(
                "echo $$; ls /proc | grep -cE '^[0-9]+$'; readlink /proc/self/ns/pid; echo {READY}; read x || true"
            ),
        ]),
        LIMIT,
        READY,
        |pid| command_pid(pid, &host_pid),
    )?;
    let mounts_after = mount_table()?;
    let mut observations = Vec::new();
    let leaked: Vec<String> = mounts_after
        .iter()
        .filter(|m| {
            mounts_after.iter().filter(|x| x == m).count()
                > mounts_before.iter().filter(|x| x == m).count()
        })
        .cloned()
        .collect();
    if !leaked.is_empty() {
        // A /proc mounted without making / private propagates to the host: clean it up.
        for mount in &leaked {
            let _ = nix::mount::umount2(mount.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
    observations.push(host_mounts_unchanged(&leaked));
    observations.push(trace.observe(&[
        Need::Namespace("CLONE_NEWPID"),
        Need::Namespace("CLONE_NEWNS"),
        Need::MountType("proc"),
    ]));
    if let Some(failed) = failed_run("the program runs the command", &output) {
        // The usual cause: the command itself was left outside the new PID namespace, its
        // first child became PID 1 there, and once that child exited no fork could succeed.
        observations.push(failed.likely(NOT_PID_1));
        return Ok(observations);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    observations.push(
        Observation::equal("the shell's pid ($$)", "1", line(&stdout, 0)).likely(
            if line(&stdout, 2) == host_pid {
                "the command runs in the host's PID namespace: nothing made a new one for it"
            } else {
                NOT_PID_1
            },
        ),
    );
    let count = line(&stdout, 1);
    observations.push(Observation::judged(
        "processes listed in /proc inside",
        "only the command's own (at most 4)",
        count.clone(),
        count.parse::<u32>().is_ok_and(|n| (1..=4).contains(&n)),
    ).likely("/proc lists the host's processes: a procfs shows the PID namespace of the process that mounts it, so mount a new one from inside the new namespace"));
    let inside = line(&stdout, 2);
    observations.push(
        Observation::judged(
            "PID namespace inside",
            format!("not {host_pid} (the host's)"),
            inside.clone(),
            inside.starts_with("pid:[") && inside != host_pid,
        )
        .likely("the command runs in the host's PID namespace"),
    );
    observations.push(from_host.unwrap_or_else(|| never_ready(PID_FROM_HOST, PID_EXPECTED)));
    Ok(observations)
}

pub fn lesson03_pivot_root(bin: &Path) -> Result<Vec<Observation>> {
    require_root()?;
    let rootfs = rootfs_with_marker("inside the rootfs")?;
    let host_marker = tempfile::NamedTempFile::new().context("creating the host marker")?;
    let host_marker_path = host_marker.path().to_string_lossy().into_owned();
    let mounts_before = mount_table()?;
    let trace = Trace::new(bin, None)?;

    // The command stays alive (reading its stdin) while the checker looks at its mount
    // namespace from the host: from inside, a chroot hides the old root.
    let (output, from_host) = run_observed(
        trace.command().arg(rootfs.path()).args([
            "/bin/sh",
            "-c",
            &format!(
                "cat /WORKSHOP_ROOTFS 2>/dev/null || echo missing; test -e {host_marker_path} && echo host-visible || echo host-hidden; cut -d' ' -f5 /proc/self/mountinfo | sort | tr '\\n' ' '; echo; echo {READY}; read x || true"
            ),
        ]),
        LIMIT,
        READY,
        old_root_detached,
    )?;
    let from_host = from_host.unwrap_or_else(|| never_ready(OLD_ROOT_FROM_HOST, OLD_ROOT_EXPECTED));
    let mounts_after = mount_table()?;
    // Mounts of the rootfs left on the host, and a /proc mounted over the host's.
    let mut leaked = unmount_leftovers(rootfs.path());
    if mounts_after.iter().filter(|m| *m == "/proc").count()
        > mounts_before.iter().filter(|m| *m == "/proc").count()
    {
        let _ = nix::mount::umount2("/proc", nix::mount::MntFlags::MNT_DETACH);
        leaked.push("/proc".into());
    }
    let mut observations = vec![
        host_mounts_unchanged(&leaked),
        trace.observe(&[Need::Namespace("CLONE_NEWNS"), Need::Call("pivot_root")]),
    ];
    if let Some(failed) = failed_run("the program runs /bin/sh from the rootfs", &output) {
        observations.push(failed);
        return Ok(observations);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    observations.push(
        Observation::equal(
            "/WORKSHOP_ROOTFS read inside",
            "inside the rootfs",
            line(&stdout, 0),
        )
        .likely("the command's / is still the host's: the rootfs never became its root"),
    );
    observations.push(
        Observation::equal(
            "a host file outside the rootfs",
            "host-hidden",
            line(&stdout, 1),
        )
        .likely("the host's files are still reachable: the old root is still there"),
    );
    let inside_mounts = line(&stdout, 2);
    let points: Vec<&str> = inside_mounts.split_whitespace().collect();
    observations.push(Observation::judged(
        "mount points inside (the old root detached)",
        "/ and /proc only",
        inside_mounts.clone(),
        points.contains(&"/")
            && points.contains(&"/proc")
            && points.iter().all(|p| *p == "/" || p.starts_with("/proc")),
    ).likely("the command sees other mounts than its new / and /proc: is the old root still there, or /proc not mounted after the pivot?"));
    observations.push(from_host);
    Ok(observations)
}
