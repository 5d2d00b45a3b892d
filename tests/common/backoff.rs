//! A container held in its restart back-off: its supervisor and the processes under it are
//! stopped (SIGSTOP) while `state.json` says it waits to restart, so it stays `restarting`,
//! with a live supervisor and no process, for as long as the test needs; dropping the hold
//! lets them go on (SIGCONT).

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Held {
    stopped: Vec<i32>,
}

impl Drop for Held {
    fn drop(&mut self) {
        for pid in &self.stopped {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGCONT);
        }
    }
}

/// The recorded state of container `id` under the state root `root`.
pub fn state_json(root: &Path, id: &str) -> serde_json::Value {
    let path = root.join("containers").join(id).join("state.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// `pid` and every process under it, parents first (`/proc/PID/task/*/children`).
fn tree(pid: i32) -> Vec<i32> {
    let mut all = vec![pid];
    let mut at = 0;
    while at < all.len() {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", all[at]));
        for task in tasks.into_iter().flatten().flatten() {
            let children = std::fs::read_to_string(task.path().join("children"));
            all.extend(
                children
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
        at += 1;
    }
    all
}

/// Holds container `id` (state root `root`, a restart policy whose process keeps exiting)
/// in its restart back-off: waits (at most 30 s) for a back-off of 400 ms or more (the third
/// restart's: the hold comes well before its end), stops its supervisor's processes, and keeps
/// them stopped only if the same back-off is still recorded then and none of them holds the
/// containers lock.
pub fn hold(root: &Path, id: &str) -> Held {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "{id} never waited to restart");
        let before = state_json(root, id);
        let supervisor = before["SupervisorPid"].as_i64().unwrap_or(0) as i32;
        let count = before["RestartCount"].as_u64().unwrap_or(0);
        if before["Restarting"] != true || count < 3 || supervisor <= 0 {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let mut held = Held {
            stopped: Vec::new(),
        };
        // Until a look finds nobody new: a process started before its parent stopped is
        // stopped at the next look.
        loop {
            let new: Vec<i32> = tree(supervisor)
                .into_iter()
                .filter(|pid| !held.stopped.contains(pid))
                .filter(|pid| kill(Pid::from_raw(*pid), Signal::SIGSTOP).is_ok())
                .collect();
            if new.is_empty() {
                break;
            }
            held.stopped.extend(new);
        }
        let after = state_json(root, id);
        // Stopped between its write of the back-off and its letting go of the lock, it would
        // keep every other writer waiting.
        let lock = minidock::state::try_lock_file(&root.join("containers.lock")).unwrap();
        if lock.is_some()
            && after["Restarting"] == true
            && after["RestartCount"] == before["RestartCount"]
        {
            return held;
        }
        drop(held);
    }
}
