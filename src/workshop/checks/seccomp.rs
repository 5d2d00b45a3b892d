//! The check for the seccomp lesson (17): an unprivileged program installs a filter under which
//! mkdir fails with EPERM and everything else works.
//!
//! The checker reads `Seccomp:` and `NoNewPrivs:` of the live command from `/proc/PID/status`
//! (proc(5)), and watches mkdir fail with EPERM while a write succeeds and the command lives on.
//! The program runs under strace(1), so the filter counts only when the learner's own program
//! installed it (strace's `-e inject` makes mkdir fail from outside, under a filter of its
//! own), and the command also makes mkdir with i386's numbers (`int 0x80`, [`mkdir_i386`]),
//! which a filter that never reads `seccomp_data.arch` takes for another x86_64 call.

use super::userns::{as_ordinary_user, ordinary_ids, status_field, unprivileged_workdir};
use super::{Need, READY, Trace, descendants, failed_run, line, never_ready, run_observed};
use crate::workshop::Observation;
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);
/// What mkdir(1) prints for EPERM: strerror(3) of errno 1.
const EPERM_TEXT: &str = "Operation not permitted";
/// Installing a filter: seccomp(2), or the older prctl(2) PR_SET_SECCOMP.
const INSTALL: Need<'static> = Need::AnyOf(&[
    Need::Call("seccomp"),
    Need::CallWith("prctl", "PR_SET_SECCOMP"),
]);

pub fn lesson17_seccomp(bin: &Path) -> Result<Vec<Observation>> {
    super::require_root()?;
    let (dir, copy) = unprivileged_workdir(bin)?;
    // Traced as the ordinary user: strace needs no privilege over its own child.
    let trace = Trace::new(&copy, Some(ordinary_ids()))?;
    let made = dir.path().join("made");
    let made_i386 = dir.path().join("made-i386");
    let file = dir.path().join("written");
    let helper = std::env::current_exe().context("locating the workshop binary")?;
    // $? of a command killed by SIGSYS (31) is 159.
    let script = format!(
        "out=$(mkdir {} 2>&1); echo \"$? $out\"; echo hello > {} && echo write-ok || echo write-failed; out=$({} i386-mkdir {} 2>&1); echo \"$? $out\"; echo {READY}; read x || true",
        made.display(),
        file.display(),
        helper.display(),
        made_i386.display()
    );
    let (output, seen) = run_observed(
        as_ordinary_user(trace.command(), dir.path()).args(["/bin/sh", "-c", &script]),
        LIMIT,
        READY,
        |pid| observe(*descendants(pid).last().unwrap_or(&pid)),
    )?;
    let installed = trace.observe(&[INSTALL]);
    if let Some(failed) = failed_run("the program runs the command as an ordinary user", &output) {
        return Ok(vec![installed, failed.likely(refused_likely(&output))]);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut observations = vec![
        installed,
        mkdir_observation(&line(&stdout, 0)),
        Observation::equal(
            "the directory, seen from the host",
            "not created",
            if made.exists() {
                "created"
            } else {
                "not created"
            },
        )
        .likely("mkdir went through: no filter answered it with an errno"),
        Observation::equal(
            "other system calls in the command (open, write)",
            "write-ok",
            line(&stdout, 1),
        )
        .likely("other system calls were refused too: the filter must allow every call but the two that create a directory"),
        i386_observation(
            &line(&stdout, 2),
            made_i386.exists(),
            kernel_makes_i386_calls(),
        ),
    ];
    match seen {
        Some(seen) => observations.extend(seen),
        None => observations.push(never_ready(
            "/proc/PID/status Seccomp and NoNewPrivs",
            "read from the live command",
        )),
    }
    Ok(observations)
}

/// What a program whose filter the kernel refused most likely got wrong, from its error.
fn refused_likely(output: &std::process::Output) -> &'static str {
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("seccomp") && stderr.contains("Permission denied") {
        "seccomp refused the filter (EACCES): a process without CAP_SYS_ADMIN must set no_new_privs first, so that nothing it executes gains privileges"
    } else if stderr.contains("seccomp") && stderr.contains("Invalid argument") {
        "seccomp refused the filter program (EINVAL): every instruction must be a valid classic BPF one, and the program must end in a return"
    } else {
        "the program failed before the command ran: its error is on the line above"
    }
}

/// mkdir's exit status and message: it must fail with EPERM, and not be killed.
fn mkdir_observation(seen: &str) -> Observation {
    let expected = format!("exit status 1, {EPERM_TEXT} (EPERM)");
    let (status, text) = seen.split_once(' ').unwrap_or((seen, ""));
    let actual = match status {
        "1" if text.contains(EPERM_TEXT) => expected.clone(),
        "0" => "the directory was made: the filter does not catch this call (mkdir and mkdirat on x86_64)".to_owned(),
        "159" => "killed by SIGSYS (exit status 159): the filter kills, where Docker's answers EPERM (SECCOMP_RET_ERRNO)".to_owned(),
        _ => format!("exit status {status}, {text:?}"),
    };
    let ok = actual == expected;
    let likely = match status {
        "0" => {
            "mkdir was allowed: no filter answers it with EPERM (on x86_64 both mkdir and mkdirat create a directory)"
        }
        "159" => {
            "the filter kills the process (SECCOMP_RET_KILL_PROCESS): Docker's profile answers with an errno (SECCOMP_RET_ERRNO | EPERM), and the command lives on"
        }
        _ => "mkdir failed with another error: the filter's errno must be EPERM",
    };
    Observation::judged("mkdir in the command", expected, actual, ok).likely(likely)
}

/// The live command's seccomp mode and no_new_privs bit, read from the host.
fn observe(pid: u32) -> Vec<Observation> {
    vec![
        Observation::equal(
            "/proc/PID/status Seccomp (2 is a filter)",
            "2",
            status_field(pid, "Seccomp"),
        )
        .likely("the command runs without a seccomp filter: none was installed before the exec"),
        Observation::equal(
            "/proc/PID/status NoNewPrivs",
            "1",
            status_field(pid, "NoNewPrivs"),
        )
        .likely("no_new_privs is not set: an unprivileged process sets it before it may install a filter"),
    ]
}

/// What the command's `int 0x80` mkdir ([`mkdir_i386`]) showed: `seen` is its `$?` and output,
/// `made` whether the directory exists on the host, `i386` whether this kernel makes i386
/// calls at all. The filter must refuse another architecture's calls (kill or any errno,
/// ENOSYS included), not read their numbers as x86_64's. Where the kernel makes no i386
/// calls (IA32 emulation off), no such call can reach a filter, and the observation says so.
fn i386_observation(seen: &str, made: bool, i386: bool) -> Observation {
    let expected = "not created: the filter refuses calls of another architecture";
    let (status, text) = seen.split_once(' ').unwrap_or((seen, ""));
    let refused = status == "159" || status.parse::<u8>().is_ok_and(|n| (1..=125).contains(&n));
    let actual = if made {
        "created: mkdir made with i386's number (39) went through the filter".to_owned()
    } else if !i386 {
        "this kernel makes no i386 system calls (IA32 emulation off): none can reach the filter"
            .to_owned()
    } else if refused && text.trim().is_empty() {
        expected.to_owned()
    } else {
        format!("the i386 mkdir did not run as asked: exit status {status}, {text:?}")
    };
    let ok = actual == expected || (!i386 && !made);
    Observation::judged(
        "mkdir with i386 numbers (int 0x80) in the command",
        expected,
        actual,
        ok,
    )
    .likely(
        "the filter reads the call's number without its architecture: another architecture's numbers mean other calls (39 is mkdir on i386, getpid on x86_64), so load seccomp_data.arch first and refuse anything but AUDIT_ARCH_X86_64",
    )
}

/// Whether this kernel makes i386 system calls (IA32 emulation): the checker's own,
/// unfiltered `int 0x80` mkdir under a parent that does not exist gets ENOENT where it does,
/// ENOSYS where it does not.
fn kernel_makes_i386_calls() -> bool {
    let path = Path::new("/nonexistent-minidock-i386-probe/dir");
    !matches!(mkdir_i386(path), Ok(libc::ENOSYS) | Err(_))
}

/// Bytes mapped for [`mkdir_i386`]'s path.
const PAGE: usize = 4096;
/// mkdir's number in i386's system call table (arch/x86/entry/syscalls/syscall_32.tbl).
const I386_MKDIR: i32 = 39;

/// mkdir(2) of `path` (mode 0755) made with i386's system call numbers, through `int 0x80`, as
/// any 64-bit process may: the kernel hands a seccomp filter `AUDIT_ARCH_I386` and number 39,
/// which on x86_64 is getpid. Returns the call's errno, 0 when the directory was made.
///
/// Errors: a path with a NUL or of [`PAGE`] bytes or more, no memory below 4 GiB (the call
/// takes 32-bit pointers), or an architecture other than x86_64.
pub fn mkdir_i386(path: &Path) -> Result<i32> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    anyhow::ensure!(
        bytes.len() < PAGE && !bytes.contains(&0),
        "a path of at most {} bytes without NUL, not {path:?}",
        PAGE - 1
    );
    #[cfg(target_arch = "x86_64")]
    {
        use libc::{MAP_32BIT, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT;
        // SAFETY: a fresh anonymous mapping, used by this function alone.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                PROT_READ | PROT_WRITE,
                flags,
                -1,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error()).context("mmap(MAP_32BIT)");
        }
        // SAFETY: the mapping holds PAGE zeroed bytes, so the copy stays NUL-terminated.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), page.cast::<u8>(), bytes.len()) };
        let ret: i32;
        // SAFETY: int 0x80 with eax = i386 mkdir, ebx = the path (below 4 GiB), ecx = the
        // mode; rbx belongs to LLVM, so it is swapped in and back. r8 to r11 may be clobbered.
        unsafe {
            std::arch::asm!(
                "xchg {path}, rbx",
                "int 0x80",
                "xchg {path}, rbx",
                path = inout(reg) page as u64 => _,
                inlateout("eax") I386_MKDIR => ret,
                in("ecx") 0o755u32,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _,
                options(nostack),
            );
            libc::munmap(page, PAGE);
        }
        Ok(if ret < 0 { -ret } else { 0 })
    }
    #[cfg(not(target_arch = "x86_64"))]
    anyhow::bail!("the i386 mkdir is made on x86_64 only")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_refusing_another_architecture_with_enosys_passes() {
        assert!(i386_observation("38 ", false, true).ok);
        assert!(i386_observation("1 ", false, true).ok);
        assert!(i386_observation("159 ", false, true).ok);
    }

    #[test]
    fn a_filter_blind_to_the_architecture_fails_where_i386_calls_exist() {
        let seen = i386_observation("0 ", true, true);
        assert!(!seen.ok, "{}", seen.actual);
    }

    #[test]
    fn without_i386_calls_the_observation_says_why_it_passes() {
        let seen = i386_observation("38 ", false, false);
        assert!(seen.ok);
        assert!(
            seen.actual.contains("no i386 system calls"),
            "{}",
            seen.actual
        );
    }
}
