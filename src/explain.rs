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
    write_line(&line);
}

/// Writes `line` and its newline to stderr in one write(2): stderr is unbuffered, and
/// `writeln!` would make two, letting a parent's and its child's lines interleave mid-line.
fn write_line(line: &str) {
    let _ = std::io::stderr()
        .lock()
        .write_all(format!("{line}\n").as_bytes());
}

/// [`step`] in one line, so a trace line does not crowd the code it describes:
/// `explain::trace!(Chapter: "what" => "call", args...)` names a [`Chapter`] variant, the
/// step, then the call as `format!` takes it; the call is formatted only when tracing is on.
macro_rules! trace {
    ($chapter:ident: $what:expr => $($call:tt)+) => {
        $crate::explain::step($what, || format!($($call)+), $crate::explain::Chapter::$chapter)
    };
}
pub(crate) use trace;

/// mount(2)'s flags as strace(1) prints them: names joined by `|` in bit order, `0` for none,
/// and any bit without a name in hex. No Rust `Debug` form reaches a trace line.
pub fn ms_flags(flags: nix::mount::MsFlags) -> String {
    use nix::mount::MsFlags as F;
    const NAMES: &[(F, &str)] = &[
        (F::MS_RDONLY, "MS_RDONLY"),
        (F::MS_NOSUID, "MS_NOSUID"),
        (F::MS_NODEV, "MS_NODEV"),
        (F::MS_NOEXEC, "MS_NOEXEC"),
        (F::MS_SYNCHRONOUS, "MS_SYNCHRONOUS"),
        (F::MS_REMOUNT, "MS_REMOUNT"),
        (F::MS_MANDLOCK, "MS_MANDLOCK"),
        (F::MS_DIRSYNC, "MS_DIRSYNC"),
        (F::MS_NOATIME, "MS_NOATIME"),
        (F::MS_NODIRATIME, "MS_NODIRATIME"),
        (F::MS_BIND, "MS_BIND"),
        (F::MS_MOVE, "MS_MOVE"),
        (F::MS_REC, "MS_REC"),
        (F::MS_SILENT, "MS_SILENT"),
        (F::MS_POSIXACL, "MS_POSIXACL"),
        (F::MS_UNBINDABLE, "MS_UNBINDABLE"),
        (F::MS_PRIVATE, "MS_PRIVATE"),
        (F::MS_SLAVE, "MS_SLAVE"),
        (F::MS_SHARED, "MS_SHARED"),
        (F::MS_RELATIME, "MS_RELATIME"),
        (F::MS_I_VERSION, "MS_I_VERSION"),
        (F::MS_STRICTATIME, "MS_STRICTATIME"),
        (F::MS_LAZYTIME, "MS_LAZYTIME"),
    ];
    let mut names: Vec<String> = NAMES
        .iter()
        .filter(|(flag, _)| flags.contains(*flag))
        .map(|(_, name)| (*name).to_owned())
        .collect();
    let named = NAMES.iter().fold(F::empty(), |all, (flag, _)| all | *flag);
    let rest = flags.bits() & !named.bits();
    if rest != 0 {
        names.push(format!("{rest:#x}"));
    }
    if names.is_empty() {
        "0".to_owned()
    } else {
        names.join("|")
    }
}

/// clone(2)'s namespace flags as strace(1) prints them, in bit order, then the exit signal:
/// `CLONE_NEWNS|CLONE_NEWPID|SIGCHLD`.
pub fn clone_flags(flags: nix::sched::CloneFlags, signal: &str) -> String {
    use nix::sched::CloneFlags as F;
    let names = [
        (F::CLONE_NEWNS, "CLONE_NEWNS"),
        (F::CLONE_NEWCGROUP, "CLONE_NEWCGROUP"),
        (F::CLONE_NEWUTS, "CLONE_NEWUTS"),
        (F::CLONE_NEWIPC, "CLONE_NEWIPC"),
        (F::CLONE_NEWUSER, "CLONE_NEWUSER"),
        (F::CLONE_NEWPID, "CLONE_NEWPID"),
        (F::CLONE_NEWNET, "CLONE_NEWNET"),
    ];
    let mut out: Vec<&str> = names
        .iter()
        .filter(|(flag, _)| flags.contains(*flag))
        .map(|(_, name)| *name)
        .collect();
    out.push(signal);
    out.join("|")
}

/// A mount(2) call as strace(1) prints it: quoted strings, `NULL` for an absent argument,
/// the flags by [`ms_flags`]. `mount_call(None, "/", None, MS_REC|MS_PRIVATE, None)` is
/// `mount(NULL, "/", NULL, MS_REC|MS_PRIVATE, NULL)`.
pub fn mount_call(
    source: Option<&std::path::Path>,
    target: &std::path::Path,
    fstype: Option<&str>,
    flags: nix::mount::MsFlags,
    data: Option<&str>,
) -> String {
    let quoted = |s: Option<String>| s.map_or_else(|| "NULL".to_owned(), |s| format!("{s:?}"));
    format!(
        "mount({}, {}, {}, {}, {})",
        quoted(source.map(|p| p.to_string_lossy().into_owned())),
        quoted(Some(target.to_string_lossy().into_owned())),
        quoted(fstype.map(str::to_owned)),
        ms_flags(flags),
        quoted(data.map(str::to_owned)),
    )
}

/// Prints a heading or a note between steps (no number), only when tracing is on.
pub fn note(text: &str) {
    if enabled() {
        write_line(&format!("     {text}"));
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
    fn flags_and_mounts_read_as_strace_prints_them() {
        use nix::mount::MsFlags as F;
        assert_eq!(ms_flags(F::empty()), "0");
        assert_eq!(
            ms_flags(F::MS_STRICTATIME | F::MS_NOSUID),
            "MS_NOSUID|MS_STRICTATIME"
        );
        assert_eq!(
            mount_call(
                Some(std::path::Path::new("tmpfs")),
                std::path::Path::new("/c/merged/dev"),
                Some("tmpfs"),
                F::MS_NOSUID | F::MS_STRICTATIME,
                Some("mode=755,size=65536k"),
            ),
            r#"mount("tmpfs", "/c/merged/dev", "tmpfs", MS_NOSUID|MS_STRICTATIME, "mode=755,size=65536k")"#
        );
        assert_eq!(
            mount_call(
                None,
                std::path::Path::new("/"),
                None,
                F::MS_REC | F::MS_PRIVATE,
                None
            ),
            r#"mount(NULL, "/", NULL, MS_REC|MS_PRIVATE, NULL)"#
        );
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
