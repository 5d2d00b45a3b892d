//! What every binary does at its edge: print an error as one line and exit with a Docker-style
//! status code.

use std::fmt;
use std::process::ExitCode;

/// Docker's exit codes for failures that are not the contained program's own status
/// (docker-run(1), "Exit Status").
pub mod code {
    /// minidock itself failed (bad input, a failing syscall, ...).
    pub const FAILED: u8 = 125;
    /// The command was found but could not be executed.
    pub const CANNOT_EXECUTE: u8 = 126;
    /// The command was not found.
    pub const NOT_FOUND: u8 = 127;
}

/// An error that decides the process exit status. Attach it with `anyhow::Error::new` or
/// `.context(..)`; [`run_main`] finds it anywhere in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Exit {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// The exit status an error should produce: the code of the first [`Exit`] in its chain, or
/// 125.
pub fn exit_code_of(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<Exit>().map(|exit| exit.code))
        .unwrap_or(code::FAILED)
}

/// Runs a binary's body. On error, prints `PROG: outer context: ...: root cause` on one line
/// (no backtrace, no panic) and exits with the error's code. On success, exits with the status
/// the body returned (the contained program's own status, for example).
pub fn run_main(prog: &str, body: impl FnOnce() -> anyhow::Result<u8>) -> ExitCode {
    match body() {
        Ok(status) => ExitCode::from(status),
        Err(err) => {
            eprintln!("{prog}: {err:#}");
            ExitCode::from(exit_code_of(&err))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn the_exit_code_is_found_under_context() {
        let err = Err::<(), _>(Exit::new(code::NOT_FOUND, "exec \"nope\": not found"))
            .context("running the container")
            .unwrap_err();
        assert_eq!(exit_code_of(&err), 127);
        assert_eq!(
            format!("{err:#}"),
            "running the container: exec \"nope\": not found"
        );
    }

    #[test]
    fn plain_errors_are_125() {
        assert_eq!(exit_code_of(&anyhow::anyhow!("boom")), 125);
    }
}
