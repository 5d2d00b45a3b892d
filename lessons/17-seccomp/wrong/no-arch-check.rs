//! Lesson 17, a known-wrong answer: the filter never looks at the architecture.
//!
//! It compares the call's number with x86_64's numbers for mkdir and mkdirat, whatever
//! architecture the call was made with: a 64-bit process can make i386 calls (`int 0x80`),
//! where 39 is mkdir (and 83 on x86_64 is not), so mkdir slips through. Docker's profile
//! checks `seccomp_data.arch` first. `workshop verify` proves the check fails it.

use anyhow::{Context, Result};
use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (program_name, program_args) = args
        .split_first()
        .context("usage: lesson17 CMD [ARGS...]")?;

    let errno = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let filter = [
        // mkdir and mkdirat answer EPERM; everything else runs.
        stmt(BPF_LD | BPF_W | BPF_ABS, OFFSET_NR),
        jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SYS_mkdir as u32, 2, 0),
        jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SYS_mkdirat as u32, 1, 0),
        stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW),
        stmt(BPF_RET | BPF_K, errno),
    ];
    let fprog = program(&filter);
    // Without CAP_SYS_ADMIN, a filter needs no_new_privs first: no setuid program run under
    // the filter can gain privileges the filter could trick it into misusing.
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("prctl(PR_SET_NO_NEW_PRIVS)");
    }
    // SAFETY: fprog points at `filter`, which lives across the call; the kernel copies it.
    let rc = unsafe {
        libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &fprog as *const _)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("seccomp(SECCOMP_SET_MODE_FILTER)");
    }

    let err = Command::new(program_name).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program_name}"))
}

#[path = "../given.rs"]
mod given;
use given::*;
