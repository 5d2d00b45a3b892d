//! Lesson 17: a seccomp filter that makes one system call fail with EPERM.
//!
//! Usage: lesson17 CMD [ARGS...]
//!
//! This program runs as an ordinary user (the checker starts it as uid 41500). Run CMD so that
//! creating a directory fails with "Operation not permitted" while every other system call
//! works as before, for CMD and everything it starts: what Docker's seccomp profile does to
//! keyctl, mount or unshare.
//! Read: book chapter "Security defaults", seccomp(2), prctl(2).
//!
//! Check your work: `workshop check 17` (as root: the checker switches to the ordinary user).

use anyhow::{Context, Result};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (program_name, program_args) = args
        .split_first()
        .context("usage: lesson17 CMD [ARGS...]")?;

    // TODO 1: a filter (a classic BPF program over struct seccomp_data) under which
    //         creating a directory fails with EPERM, while the process keeps running. On
    //         x86_64 there are two system calls that create one. A call made with another
    //         architecture's numbers must not slip through.
    // TODO 2: install it for this process and every program it executes. The checker runs
    //         you as an ordinary user, without CAP_SYS_ADMIN: the kernel wants a promise first.
    let _ = (stmt, jump, program, AUDIT_ARCH_X86_64, OFFSET_NR, OFFSET_ARCH);

    // exec replaces this process with CMD; the filter stays with it.
    let err = Command::new(program_name).args(program_args).exec();
    Err(err).with_context(|| format!("exec {program_name}"))
}

// ---- Given (in given.rs, shared by the starter, the solution and the wrong answers): the
// BPF_STMT and BPF_JUMP helpers, struct seccomp_data's offsets, and struct sock_fprog.
#[path = "given.rs"]
mod given;
use given::*;
