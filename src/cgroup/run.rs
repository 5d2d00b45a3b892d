//! `cgroup-demo run`: create a cgroup, apply limits, run a command inside, report what the
//! kernel counted, and remove the cgroup on every path.

use super::{Cgroup, Layout, Limit, Placement, Resources, Stats, Version, units};
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// What to run, and how.
#[derive(Debug, Clone)]
pub struct Request {
    pub resources: Resources,
    pub version: Version,
    /// Where to create it, relative to each hierarchy's root: [`super::PARENT`] normally.
    pub parent: String,
    /// The cgroup's name in `parent`.
    pub name: String,
    pub argv: Vec<OsString>,
    /// How to get the command into the cgroup: `CloneIntoCgroup` uses clone3 where the kernel
    /// can (v2), falling back to `cgroup.procs`; `ProcsBeforeExec` always writes `cgroup.procs`.
    pub placement: Placement,
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(Signal),
}

/// Everything `run` learned.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub layout_name: &'static str,
    pub version: Version,
    pub parent: String,
    pub name: String,
    pub paths: Vec<PathBuf>,
    pub placement: Placement,
    pub ended: Ended,
    /// Wall time from the start of the command to its end.
    pub wall: Duration,
    pub stats: Stats,
    pub resources: Resources,
}

impl Outcome {
    /// Killed by the OOM killer: the kernel's counter says so *and* the command died of
    /// SIGKILL. The signal alone proves nothing: anyone can send SIGKILL.
    pub fn oom_killed(&self) -> bool {
        self.ended == Ended::Signaled(Signal::SIGKILL) && self.stats.oom_kills.unwrap_or(0) > 0
    }

    /// The exit status, as a shell reports it: the command's own, or 128 + signal.
    pub fn exit_code(&self) -> u8 {
        match self.ended {
            Ended::Exited(code) => code as u8,
            Ended::Signaled(signal) => 128u8.wrapping_add(signal as i32 as u8),
        }
    }

    /// CPU time used, as a fraction of one CPU over the wall time.
    pub fn cpu_share(&self) -> Option<f64> {
        let usage = self.stats.cpu_usage?;
        let wall = self.wall.as_secs_f64();
        (wall > 0.0).then(|| usage.as_secs_f64() / wall)
    }

    /// Why the command ended, when it was not a plain exit.
    pub fn reason(&self) -> Option<String> {
        let memory_limit = self
            .resources
            .memory
            .and_then(Limit::value)
            .map(units::format_size)
            .unwrap_or_else(|| "none".into());
        if self.oom_killed() {
            return Some(format!(
                "killed by the OOM killer (memory limit {memory_limit})"
            ));
        }
        match self.ended {
            Ended::Signaled(signal) => {
                Some(format!("killed by signal {} ({signal})", signal as i32))
            }
            Ended::Exited(_) if self.stats.oom_kills.unwrap_or(0) > 0 => Some(format!(
                "the OOM killer killed {} process(es) in the cgroup (memory limit {memory_limit})",
                self.stats.oom_kills.unwrap_or(0)
            )),
            Ended::Exited(_) => None,
        }
    }

    /// The report `cgroup-demo run` prints: one line per controller, the kernel's numbers.
    pub fn report(&self) -> String {
        let s = &self.stats;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "cgroup {}/{} on the {} layout ({}), entered by {}",
            self.parent, self.name, self.layout_name, self.version, self.placement
        );
        let limit = |l: Option<Limit>, fmt: &dyn Fn(u64) -> String| match l {
            Some(Limit::Value(v)) => format!("{} limit", fmt(v)),
            Some(Limit::Unlimited) => "no limit".to_owned(),
            None => "limit n/a".to_owned(),
        };
        let opt = |v: Option<u64>, fmt: &dyn Fn(u64) -> String| v.map_or("n/a".into(), fmt);
        let size = |v: u64| units::format_size(v);
        let count = |v: u64| v.to_string();
        let _ = writeln!(
            out,
            "  memory  peak {} of {}, {} OOM kill(s)",
            opt(s.memory_peak, &size),
            limit(s.memory_limit, &size),
            opt(s.oom_kills, &count),
        );
        let cpu_limit = match (s.cpu_quota, s.cpu_period_us) {
            (Some(Limit::Value(q)), Some(p)) if p > 0 => {
                format!("limit {:.2} CPU", q as f64 / p as f64)
            }
            (Some(Limit::Unlimited), _) => "no limit".to_owned(),
            _ => "limit n/a".to_owned(),
        };
        let _ = writeln!(
            out,
            "  cpu     {} used in {:.2} s wall = {} CPU measured, {cpu_limit}, throttled in {} periods",
            s.cpu_usage
                .map_or("n/a".into(), |u| format!("{:.2} s", u.as_secs_f64())),
            self.wall.as_secs_f64(),
            self.cpu_share().map_or("n/a".into(), |f| format!("{f:.2}")),
            opt(s.cpu_throttled_periods, &count),
        );
        let _ = writeln!(
            out,
            "  pids    peak {} of {}, {} fork(s) refused",
            opt(s.pids_peak, &count),
            limit(s.pids_limit, &count),
            opt(s.pids_refused, &count),
        );
        let _ = write!(out, "  exit    {}", self.exit_code());
        if let Some(reason) = self.reason() {
            let _ = write!(out, ": {reason}");
        }
        out.push('\n');
        out
    }
}

// ANCHOR: run
/// Runs `request.argv` in a new cgroup and returns what happened. The cgroup is removed before
/// this returns, on success and on error (its `Drop`), and when Ctrl-C or SIGTERM arrives
/// (forwarded to the command, which then ends, and we clean up as usual).
pub fn run(layout: &Layout, request: &Request) -> Result<Outcome> {
    Cgroup::check(layout, request.version, &request.resources)?;
    let mut cgroup = Cgroup::create_in(layout, request.version, &request.parent, &request.name)?;
    cgroup.apply(&request.resources)?;
    let forwarder = SignalForwarder::install()?;
    let start = Instant::now();
    let child = cgroup.spawn_with(&request.argv, request.placement)?;
    forwarder.forward_to(child.pid);
    let ended = wait_for(child.pid)?;
    let wall = start.elapsed();
    let stats = cgroup.stats()?;
    let paths = cgroup.paths();
    cgroup.remove()?;
    Ok(Outcome {
        layout_name: layout.kind.name(),
        version: request.version,
        parent: cgroup.parent().to_owned(),
        name: request.name.clone(),
        paths,
        placement: child.placement,
        ended,
        wall,
        stats,
        resources: request.resources.clone(),
    })
}
// ANCHOR_END: run

/// Waits for `pid` to end, through EINTR (our own signal handler interrupts waitpid).
fn wait_for(pid: Pid) -> Result<Ended> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Ended::Exited(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(Ended::Signaled(signal)),
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(err) => return Err(err).with_context(|| format!("waitpid({pid})")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Signal forwarding: Ctrl-C and SIGTERM go to the command; we stay alive to clean up.

/// The pid signals go to (0: none yet).
static CHILD: AtomicI32 = AtomicI32::new(0);
/// A signal that came before there was a child to forward it to.
static PENDING: AtomicI32 = AtomicI32::new(0);

const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

extern "C" fn forward(signal: libc::c_int) {
    // Only async-signal-safe work here: atomics and kill(2).
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, signal) };
    } else {
        PENDING.store(signal, Ordering::SeqCst);
    }
}

/// Catches the forwarded signals while it lives; restores the old handlers on drop.
struct SignalForwarder {
    old: Vec<(Signal, SigAction)>,
}

impl SignalForwarder {
    fn install() -> Result<SignalForwarder> {
        CHILD.store(0, Ordering::SeqCst);
        PENDING.store(0, Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(forward),
            SaFlags::empty(),
            SigSet::empty(),
        );
        let mut old = Vec::new();
        for signal in FORWARDED {
            // SAFETY: the handler only touches atomics and calls kill(2).
            let previous = unsafe { sigaction(signal, &action) }
                .with_context(|| format!("sigaction({signal})"))?;
            old.push((signal, previous));
        }
        Ok(SignalForwarder { old })
    }

    /// From now on signals go to `pid`; one that came earlier is delivered now.
    fn forward_to(&self, pid: Pid) {
        CHILD.store(pid.as_raw(), Ordering::SeqCst);
        let pending = PENDING.swap(0, Ordering::SeqCst);
        if pending != 0 {
            // SAFETY: plain kill(2) of our own child.
            unsafe { libc::kill(pid.as_raw(), pending) };
        }
    }
}

impl Drop for SignalForwarder {
    fn drop(&mut self) {
        CHILD.store(0, Ordering::SeqCst);
        for (signal, previous) in &self.old {
            // SAFETY: restoring the disposition that was there before.
            let _ = unsafe { sigaction(*signal, previous) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(ended: Ended, oom_kills: Option<u64>) -> Outcome {
        Outcome {
            layout_name: "v2",
            version: Version::V2,
            parent: "minidock".into(),
            name: "t".into(),
            paths: vec![],
            placement: Placement::CloneIntoCgroup,
            ended,
            wall: Duration::from_secs(2),
            stats: Stats {
                oom_kills,
                cpu_usage: Some(Duration::from_millis(1000)),
                ..Default::default()
            },
            resources: Resources {
                memory: Some(Limit::Value(32 << 20)),
                ..Default::default()
            },
        }
    }

    #[test]
    fn an_oom_kill_needs_the_counter_and_the_signal() {
        let oom = outcome(Ended::Signaled(Signal::SIGKILL), Some(1));
        assert!(oom.oom_killed());
        assert_eq!(oom.exit_code(), 137);
        assert_eq!(
            oom.reason().unwrap(),
            "killed by the OOM killer (memory limit 32 MiB)"
        );
        let plain_kill = outcome(Ended::Signaled(Signal::SIGKILL), Some(0));
        assert!(!plain_kill.oom_killed());
        assert_eq!(plain_kill.reason().unwrap(), "killed by signal 9 (SIGKILL)");
        let survived = outcome(Ended::Exited(1), Some(2));
        assert_eq!(survived.exit_code(), 1);
        assert!(survived.reason().unwrap().contains("killed 2 process(es)"));
    }

    #[test]
    fn the_cpu_share_is_usage_over_wall_time() {
        let o = outcome(Ended::Exited(0), None);
        assert!((o.cpu_share().unwrap() - 0.5).abs() < 1e-9);
        assert!(o.report().contains("= 0.50 CPU measured"), "{}", o.report());
    }
}
