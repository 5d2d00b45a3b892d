//! Checks for the lessons that put the mechanisms together (10: a whole container, 11: exec).

use super::{
    Need, OLD_ROOT_EXPECTED, OLD_ROOT_FROM_HOST, READY, SET_HOSTNAME, Trace, descendants,
    failed_run, host_mounts_unchanged, line, never_ready, old_root_detached, require_root,
    rootfs_with_marker, run_observed, unmount_leftovers,
};
use crate::cgroup::{self, Cgroup};
use crate::ns::{Child, Namespace, Sandbox};
use crate::workshop::Observation;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

fn own_ns(pid: &str, ns: Namespace) -> Result<String> {
    crate::ns::ns_id(pid, ns)
}

/// The cgroup directory a learner's process should join: where cpu time is counted
/// (`cpuacct` on v1, the one directory on v2).
fn accounting_dir(cgroup: &Cgroup) -> Option<PathBuf> {
    cgroup
        .path_of("cpuacct")
        .filter(|p| p.exists())
        .or_else(|| cgroup.v2_path().map(Path::to_owned))
}

pub fn lesson10_container(bin: &Path) -> Result<Vec<Observation>> {
    require_root()?;
    let trace = Trace::new(bin, None)?;
    let rootfs = rootfs_with_marker("inside the rootfs")?;
    let host_marker = tempfile::NamedTempFile::new().context("creating the host marker")?;
    let layout = cgroup::detect()?;
    let mut cgroup = Cgroup::create(
        &layout,
        layout.default_version(),
        &Cgroup::unique_name("workshop-lesson10"),
    )?;
    let dir = accounting_dir(&cgroup).context("no cgroup directory that counts cpu time")?;
    let script = format!(
        "hostname; echo $$; cat /WORKSHOP_ROOTFS 2>/dev/null || echo missing; \
         test -e {} && echo host-visible || echo host-hidden; \
         tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' '; echo; \
         i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo {READY}; read x || true",
        host_marker.path().display()
    );
    // While the command waits on its stdin, the checker looks at its mount namespace from the
    // host: from inside, a chroot hides the old root.
    let output = run_observed(
        trace
            .command()
            .arg(rootfs.path())
            .arg(&dir)
            .args(["/bin/sh", "-c", &script]),
        LIMIT,
        READY,
        old_root_detached,
    );
    let stats = cgroup.stats();
    let leftover = unmount_leftovers(rootfs.path());
    let _ = cgroup.remove();
    let (output, from_host) = output?;
    let from_host = from_host.unwrap_or_else(|| never_ready(OLD_ROOT_FROM_HOST, OLD_ROOT_EXPECTED));
    let mut observations = vec![
        host_mounts_unchanged(&leftover),
        trace.observe(&[
            Need::Namespace("CLONE_NEWUTS"),
            Need::Namespace("CLONE_NEWPID"),
            Need::Namespace("CLONE_NEWNS"),
            Need::Namespace("CLONE_NEWIPC"),
            Need::Namespace("CLONE_NEWNET"),
            SET_HOSTNAME,
            Need::Call("pivot_root"),
        ]),
    ];
    if let Some(failed) = failed_run("the program runs /bin/sh from the rootfs", &output) {
        observations.push(failed);
        return Ok(observations);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let inside = [
        (
            "hostname inside",
            "lesson10",
            "the hostname was not set in a UTS namespace of the command's own",
        ),
        (
            "the shell's pid ($$)",
            "1",
            "the command is not PID 1: a new PID namespace takes effect for the next child forked, not for the process that made it",
        ),
        (
            "/WORKSHOP_ROOTFS read inside",
            "inside the rootfs",
            "the rootfs never became the command's /",
        ),
        (
            "a host file outside the rootfs",
            "host-hidden",
            "the host's files are still reachable from the command",
        ),
        (
            "network interfaces inside (/proc/net/dev)",
            "lo",
            "the command sees the host's network: it has no network namespace of its own",
        ),
    ];
    for (i, (what, expected, likely)) in inside.into_iter().enumerate() {
        observations.push(Observation::equal(what, expected, line(&stdout, i)).likely(likely));
    }
    let cpu = stats.ok().and_then(|s| s.cpu_usage).unwrap_or_default();
    observations.push(Observation::judged(
        "cpu time charged to the cgroup",
        format!("more than 0 in {}", dir.display()),
        format!("{} µs", cpu.as_micros()),
        !cpu.is_zero(),
    ).likely("the command ran outside the cgroup: a cgroup counts only the processes listed in its cgroup.procs, and a child starts in its parent's cgroup"));
    observations.push(from_host);
    Ok(observations)
}

pub fn lesson11_exec(bin: &Path) -> Result<Vec<Observation>> {
    require_root()?;
    let trace = Trace::new(bin, None)?;
    let rootfs = rootfs_with_marker("inside the container")?;
    let container = Sandbox {
        hostname: Some("lesson11-box".into()),
        rootfs: Some(rootfs.path().to_owned()),
        ..Sandbox::new(&[
            Namespace::Uts,
            Namespace::Pid,
            Namespace::Mount,
            Namespace::Ipc,
            Namespace::Net,
        ])
    };
    let quiet = crate::explain::enabled();
    crate::explain::enable(false);
    let pid = container.spawn(Child::Exec(vec!["sleep".into(), "60".into()]));
    crate::explain::enable(quiet);
    let pid = pid.context("starting the container to exec into")?;
    let target = pid.as_raw().to_string();
    let expected: Result<Vec<String>> = [Namespace::Uts, Namespace::Net, Namespace::Pid]
        .iter()
        .map(|ns| own_ns(&target, *ns))
        .collect();
    // The command's own PID namespace is read from the host while it waits on its stdin: a
    // `readlink` it starts would show only where its children go.
    let output = run_observed(
        trace.command().arg(&target).args([
            "/bin/sh",
            "-c",
            &format!(
                "hostname; readlink /proc/self/ns/uts; readlink /proc/self/ns/net; \
                 readlink /proc/self/ns/pid; cat /WORKSHOP_ROOTFS 2>/dev/null || echo missing; \
                 echo {READY}; read x || true"
            ),
        ]),
        LIMIT,
        READY,
        |pid| {
            let command = descendants(pid).last().copied().unwrap_or(pid);
            own_ns(&command.to_string(), Namespace::Pid)
                .unwrap_or_else(|e| format!("unreadable ({e:#})"))
        },
    );
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = crate::ns::wait_for(pid);
    let ((output, command_pid_ns), expected) = (output?, expected?);
    let joined = trace.observe(&[
        Need::Join("CLONE_NEWUTS"),
        Need::Join("CLONE_NEWNET"),
        Need::Join("CLONE_NEWPID"),
        Need::Join("CLONE_NEWNS"),
    ]);
    if let Some(failed) = failed_run("the program runs the command in the container", &output) {
        return Ok(vec![joined, failed]);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut observations = vec![
        joined,
        Observation::equal(
            "hostname seen by the command",
            "lesson11-box",
            line(&stdout, 0),
        ),
    ];
    for (i, name) in ["UTS", "network", "PID"].iter().enumerate() {
        observations.push(
            Observation::equal(
                &format!("{name} namespace of the command"),
                expected[i].clone(),
                line(&stdout, i + 1),
            )
            .likely(format!(
                "the command is not in the container's {name} namespace: was it joined through /proc/PID/ns before the exec?"
            )),
        );
    }
    observations.push(
        Observation::equal(
            "a file of the container's rootfs",
            "inside the container",
            line(&stdout, 4),
        )
        .likely(
            "the command sees the host's files: the container's mount namespace was not joined",
        ),
    );
    observations.push(Observation::judged(
        "PID namespace of the command itself (/proc/PID/ns/pid, read from the host)",
        expected[2].clone(),
        command_pid_ns
            .clone()
            .unwrap_or_else(|| "(the command never ran)".into()),
        command_pid_ns.as_ref() == Some(&expected[2]),
    ).likely(if line(&stdout, 3) == expected[2] {
        "the command itself stayed in the host's PID namespace while its children are in the container's: joining a PID namespace moves only the children made afterwards, so did you exec without forking first?"
    } else {
        "the command is not in the container's PID namespace, nor are its children: it was never joined"
    }));
    Ok(observations)
}
