//! `MINIDOCK_TRACE=FILE`: a timeline of the daemon's requests and of the shims they start.
//!
//! Each line is `SECONDS.MICROS PID WHAT`, appended in one `write(2)` (`O_APPEND`), so the
//! daemon, a container's light shim and its `minidock shim-step` children (who inherit the
//! variable) interleave in one file in time order. Without the variable nothing is written.
//! It answers "where does `docker run --rm` spend its time": the request's arrival and its
//! answer, the shim's launch, the container's exit and the exit frame.

use std::io::Write;
use std::sync::OnceLock;

/// The environment variable naming the timeline file.
pub const VARIABLE: &str = "MINIDOCK_TRACE";

fn file() -> Option<&'static std::fs::File> {
    static FILE: OnceLock<Option<std::fs::File>> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::env::var_os(VARIABLE).filter(|p| !p.is_empty())?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
    })
    .as_ref()
}

/// Whether a timeline is being written.
pub fn enabled() -> bool {
    file().is_some()
}

/// Appends one line, `what` after the wall-clock time and this process's pid; `what` is only
/// formatted when a timeline is written.
pub fn mark(what: impl FnOnce() -> String) {
    let Some(mut file) = file() else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let line = format!(
        "{}.{:06} {} {}\n",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        what()
    );
    let _ = file.write_all(line.as_bytes());
}
