//! Whether a recorded process (a container's process, its supervisor) still runs, asked again
//! and again by a long-lived process (`minidock daemon`, after [`enable`]).
//!
//! A process is named by its pid and its start time (`/proc/PID/stat` field 22), since pids
//! are reused. Reading that file costs an open, a read and a close per process per look.
//! Instead, once the start time proved a pid to be the recorded process, a pidfd of it
//! (`pidfd_open(2)`, Linux 5.3) is kept: it becomes readable when the process exits, so one
//! `poll` with no timeout answers "still running". A process seen exited, or not watched, is
//! read from `/proc` as before; a pidfd always names the process it was opened on, so a
//! reused pid never looks alive.

use std::collections::HashMap;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::sync::Mutex;

/// At most this many pidfds are kept; past it they are all closed, and opened again as
/// processes are looked at.
const MOST: usize = 512;

/// The kept pidfds, by pid and start time; `None` until [`enable`].
static KEPT: Mutex<Option<HashMap<(i32, u64), OwnedFd>>> = Mutex::new(None);

/// Keeps pidfds from now on (a process that asks many times, as the daemon).
pub fn enable() {
    if let Ok(mut kept) = KEPT.lock() {
        kept.get_or_insert_with(HashMap::new);
    }
}

/// The start time of process `pid` now (`None`: gone, or a zombie), where `expected` is the
/// start time recorded for it: answered by a kept pidfd while that process runs, else read
/// from `/proc/PID/stat` ([`crate::runtime::process_start_time`]).
pub fn start_time(pid: i32, expected: u64) -> Option<u64> {
    if still_running(pid, expected) {
        return Some(expected);
    }
    // Opened before the start time is read: if that time is the recorded one, the pidfd is
    // of the recorded process, or of one that has exited already (which polls readable).
    let pidfd = enabled().then(|| pidfd_open(pid)).flatten();
    let seen = crate::runtime::process_start_time(pid);
    if let Some(pidfd) = pidfd
        && seen == Some(expected)
    {
        keep((pid, expected), pidfd);
    }
    seen
}

fn enabled() -> bool {
    KEPT.lock().is_ok_and(|kept| kept.is_some())
}

/// Whether the process kept for `(pid, start)` has not exited; a pidfd seen readable (or
/// failing) is closed.
fn still_running(pid: i32, start: u64) -> bool {
    let Ok(mut guard) = KEPT.lock() else {
        return false;
    };
    let Some(kept) = guard.as_mut() else {
        return false;
    };
    let Some(pidfd) = kept.get(&(pid, start)) else {
        return false;
    };
    let mut fds = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let running = nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO) == Ok(0);
    if !running {
        kept.remove(&(pid, start));
    }
    running
}

fn keep(key: (i32, u64), pidfd: OwnedFd) {
    if let Ok(mut guard) = KEPT.lock()
        && let Some(kept) = guard.as_mut()
    {
        if kept.len() >= MOST {
            *kept = HashMap::new();
        }
        kept.insert(key, pidfd);
    }
}

/// `pidfd_open(pid, 0)`: close-on-exec, as the call always makes it.
fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    if pid <= 0 {
        return None;
    }
    // SAFETY: the call takes two integers and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a non-negative result is a descriptor this process owns and nothing else holds.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_pidfd_tells_a_running_process_from_an_exited_one() {
        enable();
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawning sleep");
        let pid = child.id() as i32;
        let start = crate::runtime::process_start_time(pid).expect("the child's start time");
        assert_eq!(start_time(pid, start), Some(start));
        assert!(
            KEPT.lock()
                .unwrap()
                .as_ref()
                .unwrap()
                .contains_key(&(pid, start))
        );
        // A wrong start time (a reused pid) is never the kept process.
        assert_eq!(start_time(pid, start + 1), Some(start));
        assert!(still_running(pid, start));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!still_running(pid, start));
        assert_eq!(start_time(pid, start), None);
        assert!(
            !KEPT
                .lock()
                .unwrap()
                .as_ref()
                .unwrap()
                .contains_key(&(pid, start))
        );
    }
}
