//! The check for the capabilities lesson (16): a root process drops to Docker's default set in
//! all five capability sets before it executes the command.
//!
//! The checker reads `CapBnd`, `CapEff`, `CapPrm`, `CapInh` and `CapAmb` of the live command
//! from `/proc/PID/status` (proc(5)) and watches what the command can no longer do.

use super::userns::status_field;
use super::{Need, READY, Trace, descendants, failed_run, line, never_ready, run_observed};
use crate::security::caps::{DOCKER_DEFAULT_CAPABILITIES, capability_mask, mask_names, status_hex};
use crate::workshop::Observation;
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);
/// The name the command tries to give its UTS namespace, which CAP_SYS_ADMIN guards.
const NAME: &str = "lesson16-box";

/// The five sets as `/proc/PID/status` names them, and what each must hold: Docker's set in
/// bounding, effective and permitted, nothing in inheritable and ambient (moby since
/// CVE-2022-24769).
fn expected_sets() -> [(&'static str, u64); 5] {
    let docker = capability_mask(&DOCKER_DEFAULT_CAPABILITIES);
    [
        ("CapBnd", docker),
        ("CapEff", docker),
        ("CapPrm", docker),
        ("CapInh", 0),
        ("CapAmb", 0),
    ]
}

/// The misunderstanding behind a command that still holds CAP_SYS_ADMIN. The kernel shows the
/// same sets after execve whether effective was cut before it or nothing was dropped at all.
const STILL_ADMIN: &str = "the bounding set still holds CAP_SYS_ADMIN, and when root executes a program the kernel refills permitted and effective from the bounding set: only what leaves the bounding set stays dropped";

pub fn lesson16_capabilities(bin: &Path) -> Result<Vec<Observation>> {
    super::require_root()?;
    let dir = tempfile::Builder::new()
        .prefix("minidock-workshop-caps")
        .tempdir()
        .context("creating a temp dir")?;
    let trace = Trace::new(bin, None)?;
    let before = nix::unistd::gethostname().context("gethostname")?;
    let node = dir.path().join("null");
    let script = format!(
        "out=$(busybox hostname {NAME} 2>&1); echo \"$? $out\"; busybox mknod {} c 1 3 && echo mknod-ok || echo mknod-failed; echo {READY}; read x || true",
        node.display()
    );
    let result = run_observed(
        trace.command().args(["/bin/sh", "-c", &script]),
        LIMIT,
        READY,
        |pid| observe(*descendants(pid).last().unwrap_or(&pid)),
    );
    // A program that kept CAP_SYS_ADMIN renamed the checker's own UTS namespace: undo it.
    let after = nix::unistd::gethostname().context("gethostname")?;
    if after != before {
        nix::unistd::sethostname(&before).context("restoring the hostname")?;
    }
    let (output, seen) = result?;
    let made = trace.observe(&[
        Need::CallWith("prctl", "PR_CAPBSET_DROP"),
        Need::Call("capset"),
    ]);
    if let Some(failed) = failed_run("the program runs the command", &output) {
        return Ok(vec![made, failed]);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let hostname = line(&stdout, 0);
    let refused = !hostname.starts_with("0 ") && hostname.contains("Operation not permitted");
    let mut observations = vec![
        made,
        Observation::judged(
            "sethostname (needs CAP_SYS_ADMIN) in the command",
            "refused: Operation not permitted",
            if refused {
                "refused: Operation not permitted".to_owned()
            } else {
                format!("{hostname:?}: the command still holds CAP_SYS_ADMIN")
            },
            refused,
        )
        .likely(STILL_ADMIN),
        Observation::equal(
            "mknod (CAP_MKNOD, which Docker keeps) in the command",
            "mknod-ok",
            line(&stdout, 1),
        )
        .likely(
            "CAP_MKNOD is gone: Docker's set keeps it, so drop only what lies outside Docker's set",
        ),
    ];
    match seen {
        Some(seen) => observations.extend(seen),
        None => observations.push(never_ready(
            "/proc/PID/status capability sets",
            "read from the live command",
        )),
    }
    Ok(observations)
}

/// The five sets of the live command `pid`, read from the host.
fn observe(pid: u32) -> Vec<Observation> {
    expected_sets()
        .into_iter()
        .map(|(field, mask)| {
            let actual = status_field(pid, field);
            let ok = actual == status_hex(mask);
            let got = crate::security::caps::parse_status_mask(&actual).unwrap_or(0);
            let extra = mask_names(got & !mask);
            let missing = mask_names(mask & !got);
            let detail = if ok {
                actual
            } else {
                format!("{actual} (extra: {extra:?}, missing: {missing:?})")
            };
            Observation::judged(
                &format!("/proc/PID/status {field}"),
                status_hex(mask),
                detail,
                ok,
            )
            .likely(why(field, extra.is_empty()))
        })
        .collect()
}

/// The likely misunderstanding behind a wrong set: one holding more than it should, or (when
/// `only_missing`) one missing capabilities Docker keeps.
fn why(field: &str, only_missing: bool) -> &'static str {
    match field {
        "CapInh" | "CapAmb" => {
            "something is passed on: Docker leaves inheritable and ambient empty, so no capability survives execve for a non-root user"
        }
        _ if only_missing => {
            "capabilities Docker keeps were dropped too: drop only those outside Docker's set"
        }
        "CapBnd" => {
            "the bounding set still holds capabilities outside Docker's set: it limits what execve gives root, so drop from it"
        }
        _ => {
            "when root executes a program, the kernel refills permitted and effective from the bounding set: what stays in the bounding set comes back"
        }
    }
}
