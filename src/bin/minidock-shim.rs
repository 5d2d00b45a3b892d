//! minidock-shim: the light shim that stays with a detached container
//! (`minidock::container::monitor`).
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    ExitCode::from(minidock::container::monitor::main(&args))
}
