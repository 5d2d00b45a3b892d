//! What the two user-mode networks have in common: slirp4netns(1) ([`super::slirp`]) and
//! pasta(1) ([`super::pasta`]) each run as a process of the user's, outside the container,
//! that plays the container's network in user space through a TAP device in its namespace.
//! Which one a container gets ([`Kind`]), and how the process is ended.

use anyhow::{Context, Result};
use nix::unistd::Pid;
use std::path::Path;

/// The user-mode network a container is on (`--network slirp4netns` or `--network pasta`, as
/// podman's modes of those names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// slirp4netns: a NAT'ed network of its own (10.0.2.0/24), its ports forwarded on its API
    /// socket.
    Slirp4netns,
    /// pasta: the host's own address and routes copied into the container, ports given on its
    /// command line (`-t`, `-u`).
    Pasta,
}

impl Kind {
    /// `--network`'s word for it: `slirp4netns` or `pasta`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Slirp4netns => "slirp4netns",
            Kind::Pasta => "pasta",
        }
    }

    /// The kind `--network`'s word names, if it names one.
    pub fn parse(text: &str) -> Option<Kind> {
        [Kind::Slirp4netns, Kind::Pasta]
            .into_iter()
            .find(|k| k.name() == text)
    }

    /// The default network of a rootless container: slirp4netns when it is installed (on
    /// `$PATH`), else pasta, so a machine with only passt's package still has a network.
    pub fn rootless_default() -> Kind {
        Kind::default_in(&std::env::var_os("PATH").unwrap_or_default())
    }

    /// [`Kind::rootless_default`] for the search path `path` (`$PATH`'s form).
    pub fn default_in(path: &std::ffi::OsStr) -> Kind {
        let found = std::env::split_paths(path).any(|dir| dir.join("slirp4netns").is_file());
        if found {
            Kind::Slirp4netns
        } else {
            Kind::Pasta
        }
    }

    /// The file in the container's directory holding the process's pid.
    pub fn pid_file(self) -> &'static str {
        match self {
            Kind::Slirp4netns => "slirp4netns.pid",
            Kind::Pasta => "pasta.pid",
        }
    }

    /// True when `comm` (`/proc/PID/comm`) is this kind's process: pasta runs as `passt`
    /// (or the `passt.avx2` build it re-executes).
    fn is_ours(self, comm: &str) -> bool {
        match self {
            Kind::Slirp4netns => comm == "slirp4netns",
            Kind::Pasta => comm == "pasta" || comm.starts_with("passt"),
        }
    }
}

/// Ends the process of `kind` whose pid is in `pid_file` (when it still is that program) and
/// removes the file; the process is gone (or a zombie for its parent to reap) when this
/// returns, so its host ports are free again. Idempotent.
pub fn stop(kind: Kind, pid_file: &Path) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(pid_file) else {
        return Ok(());
    };
    if let Ok(pid) = text.trim().parse::<i32>() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if kind.is_ours(comm.trim_end()) {
            end(Pid::from_raw(pid));
        }
    }
    std::fs::remove_file(pid_file)
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(e)
            }
        })
        .with_context(|| format!("removing {}", pid_file.display()))
}

/// SIGTERM, then up to a second for `pid` to end, then SIGKILL. A process that has ended but
/// is not yet reaped (state `Z`) has released its sockets.
fn end(pid: Pid) {
    use nix::sys::signal::{Signal, kill};
    let ended = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
    };
    for signal in [Signal::SIGTERM, Signal::SIGKILL] {
        let _ = kill(pid, signal);
        for _ in 0..100 {
            if ended() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// The lines of a user-mode network process's log, joined with `; ` and quoted, for an error.
pub fn said(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("Failed to send"))
        .collect();
    crate::cli::quote(lines.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slirp4netns_is_the_default_when_installed_and_pasta_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = std::env::join_paths([dir.path()]).unwrap();
        assert_eq!(Kind::default_in(&path), Kind::Pasta);
        std::fs::write(dir.path().join("slirp4netns"), "").unwrap();
        assert_eq!(Kind::default_in(&path), Kind::Slirp4netns);
        assert_eq!(Kind::parse("pasta"), Some(Kind::Pasta));
        assert_eq!(Kind::parse("bridge"), None);
        assert!(Kind::Pasta.is_ours("passt.avx2") && !Kind::Pasta.is_ours("sh"));
    }
}
