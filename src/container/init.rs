//! `--init`: a tiny init as the container's PID 1, Docker's `docker-init` (tini).
//!
//! PID 1 of a PID namespace has two duties a normal program does not fulfil: every orphan of
//! the namespace becomes its child, so it must reap them (or they stay zombies), and it gets
//! only the signals it installed a handler for (pid_namespaces(7)), so a `stop` of a program
//! that never handles SIGTERM waits for the SIGKILL. The init runs the command as its child,
//! passes every signal it receives on to that child, reaps every child that exits, and exits
//! with the command's status (128 + the signal number when a signal ended it, as a shell
//! reports it).
//!
//! It is the `minidock` binary itself: the container gets it bound read-only at
//! [`INIT_PATH`], and the binary becomes the init when it is started under the name
//! `docker-init` ([`is_init`]). The binary is dynamically linked: the image must hold the C
//! library it was built against (at the dynamic loader's path, [`loader`]); `create` refuses
//! `--init` for an image without it.

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, execvp, fork};
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where the init is bound inside the container, as Docker binds its `docker-init`.
pub const INIT_PATH: &str = "/sbin/docker-init";

/// Whether this process was started as the init (`argv[0]` ends in `docker-init`).
pub fn is_init(argv0: &std::ffi::OsStr) -> bool {
    Path::new(argv0).file_name() == Some(std::ffi::OsStr::new("docker-init"))
}

/// The ELF interpreter (dynamic loader) the running binary needs, from its `PT_INTERP`
/// program header; `None` for a static binary.
pub fn loader(exe: &Path) -> Option<PathBuf> {
    let bytes = std::fs::read(exe).ok()?;
    let u16_at = |o: usize| Some(u16::from_le_bytes(bytes.get(o..o + 2)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(bytes.get(o..o + 8)?.try_into().ok()?));
    // ELF64, little endian.
    if bytes.get(..4)? != b"\x7fELF" || bytes.get(4)? != &2 || bytes.get(5)? != &1 {
        return None;
    }
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    for i in 0..phnum {
        let header = phoff.checked_add(i.checked_mul(phentsize)?)?;
        const PT_INTERP: u32 = 3;
        if u32::from_le_bytes(bytes.get(header..header + 4)?.try_into().ok()?) != PT_INTERP {
            continue;
        }
        let offset = usize::try_from(u64_at(header + 8)?).ok()?;
        let size = usize::try_from(u64_at(header + 32)?).ok()?;
        let text = bytes.get(offset..offset.checked_add(size)?)?;
        let text = text.split(|b| *b == 0).next()?;
        return Some(PathBuf::from(std::ffi::OsStr::from_bytes(text)));
    }
    None
}

// ANCHOR: init_main
/// `docker-init [--] COMMAND [ARG...]`: runs the command as a child, forwards signals to it,
/// reaps every child, and returns the command's exit status.
pub fn main(argv: &[OsString]) -> i32 {
    let Some(command) = command_of(argv) else {
        eprintln!("docker-init: usage: docker-init [--] COMMAND [ARG...]");
        return 1;
    };
    // Every signal waits for us to take it; the child gets a clean mask back.
    let all = SigSet::all();
    if sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None).is_err() {
        return 1;
    }
    let Some(child) = start_child(&command) else {
        return 1;
    };
    loop {
        let Ok(signal) = all.wait() else { continue };
        if signal != Signal::SIGCHLD {
            let _ = kill(child, signal);
            continue;
        }
        if let Some(status) = reap(child) {
            return status;
        }
    }
}
// ANCHOR_END: init_main

// ANCHOR: init_child
/// The command after an optional `--`; `None` when there is none, or an argument holds a
/// NUL byte.
fn command_of(argv: &[OsString]) -> Option<Vec<CString>> {
    let mut args = argv.iter().skip(1).peekable();
    if args.peek().is_some_and(|a| a.as_bytes() == b"--") {
        args.next();
    }
    match args
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(command) if !command.is_empty() => Some(command),
        _ => None,
    }
}

/// Forks and execs `command` with an empty signal mask; exits 127 (not found) or 126 in the
/// child when the exec fails. `None` when the fork fails.
fn start_child(command: &[CString]) -> Option<Pid> {
    // SAFETY: single-threaded here; the child only resets its mask and execs.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
            let err = execvp(&command[0], command).unwrap_err();
            eprintln!(
                "docker-init: exec {:?}: {err}",
                command[0].to_string_lossy()
            );
            std::process::exit(if err == nix::errno::Errno::ENOENT {
                127
            } else {
                126
            });
        }
        Ok(ForkResult::Parent { child }) => Some(child),
        Err(err) => {
            eprintln!("docker-init: fork: {err}");
            None
        }
    }
}
// ANCHOR_END: init_child

// ANCHOR: init_reap
/// Reaps every exited child; returns the command's status once it is among them.
fn reap(command: Pid) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == command => result = Some(code),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == command => {
                result = Some(128 + signal as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => {}
        }
    }
}
// ANCHOR_END: init_reap

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loader_is_read_from_the_elf_header() {
        let exe = std::env::current_exe().unwrap();
        let found = loader(&exe);
        // This test binary is linked as minidock is.
        if let Some(path) = found {
            assert!(path.is_absolute() && path.exists(), "{path:?}");
        }
        assert_eq!(loader(Path::new("/nonexistent")), None);
        assert!(is_init(std::ffi::OsStr::new("/sbin/docker-init")));
        assert!(!is_init(std::ffi::OsStr::new("minidock")));
    }
}
