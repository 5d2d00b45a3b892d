//! The step tracer shared by every binary.
//!
//! Each kernel-level step prints one line to stderr: its number, what it does, the system call
//! with its key arguments, and the book chapter that teaches it:
//!
//! ```text
//! [ 3] pivot_root into the rootfs        pivot_root(".", ".")                       book: 2 Namespaces
//! ```
//!
//! The mechanism functions call [`step`] themselves, right before the real call, so the trace
//! is the real sequence of calls and never a script that could drift from the code.
//!
//! Lines go to stderr so that stdout stays the contained program's own output.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// The chapters of the book, so a trace line points a reader at the page that explains it.
/// The numbers match `book/src/SUMMARY.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chapter {
    Namespaces,
    Cgroups,
    Overlay,
    Networking,
    PuttingTogether,
    RuntimeSpec,
    Security,
    Images,
    Volumes,
}

impl Chapter {
    pub fn title(self) -> &'static str {
        match self {
            Chapter::Namespaces => "2 Namespaces",
            Chapter::Cgroups => "3 cgroups",
            Chapter::Overlay => "4 Union filesystems and layers",
            Chapter::Networking => "5 Networking",
            Chapter::PuttingTogether => "6 Putting it together",
            Chapter::RuntimeSpec => "7 The OCI runtime spec",
            Chapter::Security => "8 Security defaults",
            Chapter::Images => "9 Images and registries",
            Chapter::Volumes => "10 Volumes",
        }
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns tracing on or off for this process (and the children it clones afterwards).
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
    if on {
        // Allocate the shared counter now, before any clone, so parent and children share it.
        counter();
    }
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The step counter lives in a shared anonymous mapping rather than in a plain static: after
/// clone(2) without CLONE_VM the child gets a copy of every static, and its steps would restart
/// at the parent's number. A MAP_SHARED page stays the same memory in both processes (mmap(2)),
/// so the numbers keep counting across the parent and the container process.
fn counter() -> &'static AtomicU32 {
    static COUNTER: OnceLock<&'static AtomicU32> = OnceLock::new();
    static FALLBACK: AtomicU32 = AtomicU32::new(0);
    COUNTER.get_or_init(|| {
        // SAFETY: a fresh anonymous mapping of one page, never unmapped, so the reference is
        // valid for the rest of the process; AtomicU32 has no invalid bit patterns and the page
        // is zero-filled.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                std::mem::size_of::<AtomicU32>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            &FALLBACK
        } else {
            // SAFETY: see above.
            unsafe { &*(page as *const AtomicU32) }
        }
    })
}

/// Formats one trace line. Kept separate from printing so it can be unit-tested.
pub fn format_step(number: u32, what: &str, call: &str, chapter: Chapter) -> String {
    format!(
        "[{number:>2}] {what:<34} {call:<52} book: {}",
        chapter.title()
    )
}

/// Records one kernel-level step. `call` is only evaluated when tracing is on, so building the
/// argument string costs nothing on the fast path of `minidock run`.
pub fn step(what: &str, call: impl FnOnce() -> String, chapter: Chapter) {
    if !enabled() {
        return;
    }
    let number = counter().fetch_add(1, Ordering::Relaxed) + 1;
    let line = format_step(number, what, &call(), chapter);
    // One write per line so lines from a parent and its child never interleave mid-line.
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// Prints a heading or a note between steps (no number), only when tracing is on.
pub fn note(text: &str) {
    if enabled() {
        let _ = writeln!(std::io::stderr().lock(), "     {text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_line_has_number_call_and_chapter() {
        let line = format_step(
            3,
            "pivot_root into the rootfs",
            "pivot_root(\".\", \".\")",
            Chapter::Namespaces,
        );
        assert!(line.starts_with("[ 3] pivot_root into the rootfs"));
        assert!(line.contains("pivot_root(\".\", \".\")"));
        assert!(line.ends_with("book: 2 Namespaces"));
    }

    #[test]
    fn steps_are_numbered_in_order() {
        enable(true);
        let before = counter().load(Ordering::Relaxed);
        step("one", || "a()".into(), Chapter::Cgroups);
        step("two", || "b()".into(), Chapter::Cgroups);
        assert!(counter().load(Ordering::Relaxed) >= before + 2);
    }

    #[test]
    fn the_call_is_not_built_when_tracing_is_off() {
        // Tests share the process-wide flag, so only assert the closure contract in isolation.
        let built = std::cell::Cell::new(false);
        if !enabled() {
            step(
                "x",
                || {
                    built.set(true);
                    String::new()
                },
                Chapter::Overlay,
            );
            assert!(!built.get());
        }
    }
}
