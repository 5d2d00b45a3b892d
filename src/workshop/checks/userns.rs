//! The check for the user namespace lesson (15): an unprivileged program becomes root in a
//! user namespace of its own, mapping its own uid and gid.
//!
//! The program runs as [`UID`]/[`GID`] (as the learner when the checker is not root); the
//! checker reads the command's `uid_map`, `gid_map`,
//! `setgroups` and `status` from the host (proc(5), user_namespaces(7)) while it waits.

use super::{Need, READY, Trace, descendants, failed_run, line, never_ready, run_observed};
use crate::workshop::Observation;
use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);
/// The ordinary user the checker runs an unprivileged lesson as: ids no account uses.
pub(crate) const UID: u32 = 41500;
pub(crate) const GID: u32 = 41501;

/// A directory an ordinary user can use, holding a copy of the lesson binary it can run (the
/// lessons' target directory may not be reachable by other users). Mode 0777: the command
/// writes there.
pub(crate) fn unprivileged_workdir(bin: &Path) -> Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::Builder::new()
        .prefix("minidock-workshop-user")
        .tempdir()
        .context("creating a temp dir")?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
        .context("opening the temp dir to every user")?;
    let copy = dir.path().join("lesson");
    std::fs::copy(bin, &copy).context("copying the lesson program")?;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))
        .context("making the lesson program executable")?;
    Ok((dir, copy))
}

/// The ordinary user's uid and gid: [`UID`]/[`GID`] when the checker is root, else the
/// checker's own (a learner without root checks lesson 15 as themself).
pub(crate) fn ordinary_ids() -> (u32, u32) {
    if nix::unistd::geteuid().is_root() {
        (UID, GID)
    } else {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    }
}

/// `cmd` started as the ordinary user ([`ordinary_ids`]) in `dir`: as root, as [`UID`]/[`GID`]
/// with no supplementary groups; without root, as the checker's own user.
pub(crate) fn as_ordinary_user(mut cmd: Command, dir: &Path) -> Command {
    cmd.current_dir(dir);
    if nix::unistd::geteuid().is_root() {
        // As root, std drops the supplementary groups itself (setgroups(0)) before setuid.
        cmd.uid(UID).gid(GID);
    }
    cmd
}

/// Field `name` of `/proc/PID/status` (proc(5)), whitespace collapsed, or "(none)".
pub(crate) fn status_field(pid: u32, name: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "(none)".to_owned())
}

/// A `/proc/PID/FILE` with its whitespace collapsed, "(empty)" when it holds nothing.
fn proc_file(pid: u32, file: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        "(empty)".to_owned()
    } else {
        words.join(" ")
    }
}

const WHAT_NS: &str = "the command's user namespace, seen from the host";
const WHAT_UID_MAP: &str = "/proc/PID/uid_map";
const WHAT_GID_MAP: &str = "/proc/PID/gid_map";
const WHAT_SETGROUPS: &str = "/proc/PID/setgroups";
const WHAT_CAPS: &str = "/proc/PID/status CapEff (capabilities in its own namespace)";

/// Runs without root too (`rootless = true` in lessons.toml): the program then runs as the
/// learner, whose ids the maps must name.
pub fn lesson15_userns(bin: &Path) -> Result<Vec<Observation>> {
    let (dir, copy) = unprivileged_workdir(bin)?;
    // Traced as the ordinary user: strace needs no privilege over its own child.
    let trace = Trace::new(&copy, Some(ordinary_ids()))?;
    let script = format!("id -u; id -g; echo {READY}; read x || true");
    let (output, seen) = run_observed(
        as_ordinary_user(trace.command(), dir.path()).args(["/bin/sh", "-c", &script]),
        LIMIT,
        READY,
        |pid| observe(*descendants(pid).last().unwrap_or(&pid)),
    )?;
    let made = trace.observe(&[
        Need::Namespace("CLONE_NEWUSER"),
        Need::Write("uid_map"),
        Need::Write("gid_map"),
    ]);
    if let Some(failed) = failed_run("the program runs the command as an ordinary user", &output) {
        let likely = user_likely(&output);
        return Ok(vec![made, failed.likely(likely)]);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let ids = format!("{} {}", line(&stdout, 0), line(&stdout, 1));
    let likely = ids_likely(&ids);
    let mut observations = vec![
        made,
        Observation::equal("id -u and id -g inside", "0 0", ids).likely(likely),
    ];
    match seen {
        Some(seen) => observations.extend(seen),
        None => {
            for what in [WHAT_NS, WHAT_UID_MAP, WHAT_GID_MAP, WHAT_SETGROUPS] {
                observations.push(never_ready(what, "read from the live command"));
            }
        }
    }
    Ok(observations)
}

/// What a failed run most likely means, picked from the program's error (stderr).
fn user_likely(output: &std::process::Output) -> &'static str {
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("CLONE_NEWUSER") {
        "unshare(CLONE_NEWUSER) was refused: this host may forbid unprivileged user namespaces (user.max_user_namespaces, kernel.apparmor_restrict_unprivileged_userns)"
    } else if stderr.contains("gid_map") {
        "the kernel refused the gid map (EPERM): an unprivileged process must write \"deny\" to /proc/self/setgroups first, then its gid map"
    } else if stderr.contains("uid_map") || stderr.contains("setgroups") {
        "the kernel refused a map file: each is written once, from this namespace or its parent, and an unprivileged process maps its own id only (\"0 OUTSIDE 1\")"
    } else {
        "the program failed before the command ran: its error is on the line above"
    }
}

/// What `id -u` and `id -g` printing `ids` most likely means.
fn ids_likely(ids: &str) -> String {
    let (uid, gid) = ids.split_once(' ').unwrap_or((ids, ""));
    if uid == ordinary_ids().0.to_string() {
        "the command is still the ordinary user: it runs in the host's user namespace, and nothing made a new one for it".to_owned()
    } else if uid == "65534" || gid == "65534" {
        let kind = if uid == "65534" { "uid" } else { "gid" };
        format!(
            "the command reads 65534 (the overflow id): no {kind} is mapped, so write a line of /proc/self/{kind}_map as well"
        )
    } else {
        "the command is not root inside: map 0 inside to your own id outside".to_owned()
    }
}

/// The observations made on the live command `pid` from the host.
fn observe(pid: u32) -> Vec<Observation> {
    let own = std::fs::read_link("/proc/self/ns/user").ok();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/user")).ok();
    let new_ns = theirs.is_some() && theirs != own;
    let (uid, gid) = ordinary_ids();
    let expected_uid = format!("0 {uid} 1");
    let expected_gid = format!("0 {gid} 1");
    let mut out = vec![
        Observation::judged(
            WHAT_NS,
            "a user namespace of its own",
            if new_ns {
                "a user namespace of its own".to_owned()
            } else {
                format!("the host's ({theirs:?})")
            },
            new_ns,
        )
        .likely("the command runs in the host's user namespace: nothing made a new one for it"),
    ];
    let uid_map = proc_file(pid, "uid_map");
    let gid_map = proc_file(pid, "gid_map");
    out.push(map_observation(WHAT_UID_MAP, &expected_uid, uid_map, "uid"));
    out.push(map_observation(WHAT_GID_MAP, &expected_gid, gid_map, "gid"));
    out.push(
        Observation::equal(WHAT_SETGROUPS, "deny", proc_file(pid, "setgroups")).likely(
            if new_ns {
                "setgroups still says allow: an unprivileged process must write \"deny\" to it before its gid map (CVE-2014-8989)"
            } else {
                "the host's setgroups: the command is in the host's user namespace"
            },
        ),
    );
    out.push(Observation::equal(
        "/proc/PID/status Uid and Gid (the ids the host sees)",
        format!("{uid} {uid} {uid} {uid} / {gid} {gid} {gid} {gid}"),
        format!(
            "{} / {}",
            status_field(pid, "Uid"),
            status_field(pid, "Gid")
        ),
    ).likely("the host sees other ids than the ordinary user's: a user namespace changes ids only inside it"));
    // Every capability this kernel knows, 0 to cap_last_cap.
    let last = u32::from(crate::security::caps::last_cap());
    let full = crate::security::caps::status_hex(u64::MAX >> (63 - last.min(63)));
    out.push(
        Observation::equal(WHAT_CAPS, full, status_field(pid, "CapEff")).likely(if new_ns {
            "the command lost its capabilities at execve: uid 0 must be mapped before the exec"
        } else {
            "an ordinary user holds no capability in the host's user namespace: a process is root only in a user namespace of its own"
        }),
    );
    out
}

fn map_observation(what: &str, expected: &str, actual: String, kind: &str) -> Observation {
    let ok = actual == expected;
    let likely = match actual.as_str() {
        "(empty)" => format!(
            "no {kind} is mapped: nothing was written to /proc/self/{kind}_map, so every {kind} reads as 65534 inside"
        ),
        "0 0 4294967295" => {
            format!("the host's identity {kind} map: the command is in the host's user namespace")
        }
        _ => format!(
            "the {kind} map is not \"0 OUTSIDE 1\" with your own {kind} outside: an unprivileged process maps its own id, once"
        ),
    };
    let actual = match actual.as_str() {
        "(empty)" => format!(
            "(empty): no {kind} is mapped, so every {kind} reads as 65534 (the overflow id) inside"
        ),
        "0 0 4294967295" => format!("0 0 4294967295: the host's own {kind} map, no new namespace"),
        _ => actual,
    };
    Observation::judged(what, expected, actual, ok).likely(likely)
}
