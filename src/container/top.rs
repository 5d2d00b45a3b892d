//! `top`: the processes of a container, found through its cgroup (every process the container
//! starts lands there, and nothing else does), shown with `ps -ef`'s columns as Docker does.

use super::{Paths, Status};
use crate::cli::Exit;
use anyhow::{Context, Result};
use std::collections::BTreeSet;

/// One process, as the host sees it.
struct Process {
    uid: u32,
    pid: i32,
    ppid: i32,
    start_ticks: u64,
    cpu_ticks: u64,
    tty_nr: i32,
    command: String,
}

fn read_process(pid: i32) -> Option<Process> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2 (comm) may contain spaces and parentheses: split after its last ')'.
    let close = stat.rfind(')')?;
    let comm = &stat[stat.find('(')? + 1..close];
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    // fields[0] is field 3 (state).
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<i64>().ok());
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let command = if cmdline.is_empty() {
        format!("[{comm}]")
    } else {
        cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    Some(Process {
        uid,
        pid,
        ppid: field(4)? as i32,
        tty_nr: field(7)? as i32,
        cpu_ticks: (field(14)? + field(15)?) as u64,
        start_ticks: field(22)? as u64,
        command,
    })
}

fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[0].to_owned())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

fn tty_name(tty_nr: i32) -> String {
    if tty_nr == 0 {
        return "?".into();
    }
    let (major, minor) = (
        (tty_nr >> 8) & 0xfff,
        (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00),
    );
    match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 => format!("tty{minor}"),
        _ => "?".into(),
    }
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf with a valid name.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

fn boot_time() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|b| b.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The pids in a container's cgroup.
pub fn cgroup_pids(state: &super::ContainerState) -> Result<BTreeSet<i32>> {
    let mut pids = BTreeSet::new();
    for dir in &state.cgroup_paths {
        let procs = dir.join("cgroup.procs");
        if let Ok(text) = std::fs::read_to_string(&procs) {
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            break;
        }
    }
    Ok(pids)
}

// ANCHOR: top
/// `top`: a `ps -ef`-style table of the container's processes.
pub fn top(paths: &Paths, name_or_id: &str) -> Result<String> {
    let state = paths.resolve(name_or_id)?;
    if state.observe() != Status::Running {
        return Err(Exit::new(
            super::REQUEST_FAILED,
            format!("container {} is not running", state.id),
        )
        .into());
    }
    if state.is_restarting() {
        return Err(super::restarting(&state.id));
    }
    let pids = cgroup_pids(&state).context("reading the container's cgroup")?;
    let ticks = clock_ticks();
    let boot = boot_time();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut rows = vec![
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    ];
    for process in pids.into_iter().filter_map(read_process) {
        let started = boot + process.start_ticks / ticks;
        let elapsed = now.saturating_sub(started).max(1);
        let cpu_secs = process.cpu_ticks / ticks;
        let stime = {
            let secs_of_day = started % 86_400;
            format!("{:02}:{:02}", secs_of_day / 3600, secs_of_day % 3600 / 60)
        };
        rows.push(vec![
            user_name(process.uid),
            process.pid.to_string(),
            process.ppid.to_string(),
            (cpu_secs * 100 / elapsed).to_string(),
            stime,
            tty_name(process.tty_nr),
            format!(
                "{:02}:{:02}:{:02}",
                cpu_secs / 3600,
                cpu_secs % 3600 / 60,
                cpu_secs % 60
            ),
            process.command,
        ]);
    }
    Ok(crate::image::cli::format_table(&rows))
}
// ANCHOR_END: top
