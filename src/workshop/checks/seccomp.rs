//! The check for the seccomp lesson (17): an unprivileged program installs a filter under which
//! mkdir fails with EPERM and everything else works.
//!
//! The checker reads `Seccomp:` and `NoNewPrivs:` of the live command from `/proc/PID/status`
//! (proc(5)), and watches mkdir fail with EPERM while a write succeeds and the command lives on.

use super::userns::{as_ordinary_user, status_field, unprivileged_workdir};
use super::{READY, descendants, failed_run, line, never_ready, run_observed};
use crate::workshop::Observation;
use anyhow::Result;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);
/// What mkdir(1) prints for EPERM: strerror(3) of errno 1.
const EPERM_TEXT: &str = "Operation not permitted";

pub fn lesson17_seccomp(bin: &Path) -> Result<Vec<Observation>> {
    super::require_root()?;
    let (dir, copy) = unprivileged_workdir(bin)?;
    let made = dir.path().join("made");
    let file = dir.path().join("written");
    // $? of a command killed by SIGSYS (31) is 159.
    let script = format!(
        "out=$(mkdir {} 2>&1); echo \"$? $out\"; echo hello > {} && echo write-ok || echo write-failed; echo {READY}; read x || true",
        made.display(),
        file.display()
    );
    let (output, seen) = run_observed(
        as_ordinary_user(Command::new(&copy), dir.path()).args(["/bin/sh", "-c", &script]),
        LIMIT,
        READY,
        |pid| observe(*descendants(pid).last().unwrap_or(&pid)),
    )?;
    if let Some(failed) = failed_run("the program runs the command as an ordinary user", &output) {
        return Ok(vec![failed.likely(refused_likely(&output))]);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut observations = vec![
        mkdir_observation(&line(&stdout, 0)),
        Observation::equal(
            "the directory, seen from the host",
            "not created",
            if made.exists() {
                "created"
            } else {
                "not created"
            },
        )
        .likely("mkdir went through: no filter answered it with an errno"),
        Observation::equal(
            "other system calls in the command (open, write)",
            "write-ok",
            line(&stdout, 1),
        )
        .likely("other system calls were refused too: the filter must allow every call but the two that create a directory"),
    ];
    match seen {
        Some(seen) => observations.extend(seen),
        None => observations.push(never_ready(
            "/proc/PID/status Seccomp and NoNewPrivs",
            "read from the live command",
        )),
    }
    Ok(observations)
}

/// What a program whose filter the kernel refused most likely got wrong, from its error.
fn refused_likely(output: &std::process::Output) -> &'static str {
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("seccomp") && stderr.contains("Permission denied") {
        "seccomp refused the filter (EACCES): a process without CAP_SYS_ADMIN must set no_new_privs first, so that nothing it executes gains privileges"
    } else if stderr.contains("seccomp") && stderr.contains("Invalid argument") {
        "seccomp refused the filter program (EINVAL): every instruction must be a valid classic BPF one, and the program must end in a return"
    } else {
        "the program failed before the command ran: its error is on the line above"
    }
}

/// mkdir's exit status and message: it must fail with EPERM, and not be killed.
fn mkdir_observation(seen: &str) -> Observation {
    let expected = format!("exit status 1, {EPERM_TEXT} (EPERM)");
    let (status, text) = seen.split_once(' ').unwrap_or((seen, ""));
    let actual = match status {
        "1" if text.contains(EPERM_TEXT) => expected.clone(),
        "0" => "the directory was made: the filter does not catch this call (mkdir and mkdirat on x86_64)".to_owned(),
        "159" => "killed by SIGSYS (exit status 159): the filter kills, where Docker's answers EPERM (SECCOMP_RET_ERRNO)".to_owned(),
        _ => format!("exit status {status}, {text:?}"),
    };
    let ok = actual == expected;
    let likely = match status {
        "0" => {
            "mkdir was allowed: no filter answers it with EPERM (on x86_64 both mkdir and mkdirat create a directory)"
        }
        "159" => {
            "the filter kills the process (SECCOMP_RET_KILL_PROCESS): Docker's profile answers with an errno (SECCOMP_RET_ERRNO | EPERM), and the command lives on"
        }
        _ => "mkdir failed with another error: the filter's errno must be EPERM",
    };
    Observation::judged("mkdir in the command", expected, actual, ok).likely(likely)
}

/// The live command's seccomp mode and no_new_privs bit, read from the host.
fn observe(pid: u32) -> Vec<Observation> {
    vec![
        Observation::equal(
            "/proc/PID/status Seccomp (2 is a filter)",
            "2",
            status_field(pid, "Seccomp"),
        )
        .likely("the command runs without a seccomp filter: none was installed before the exec"),
        Observation::equal(
            "/proc/PID/status NoNewPrivs",
            "1",
            status_field(pid, "NoNewPrivs"),
        )
        .likely("no_new_privs is not set: an unprivileged process sets it before it may install a filter"),
    ]
}
