// Given code for lesson 17, shared by the starter, the solution and the wrong answers.
#![allow(dead_code)]

pub use libc::sock_filter;

/// The architecture number of x86_64 in `seccomp_data.arch` (<linux/audit.h>).
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// Offsets in `struct seccomp_data` (seccomp(2)): the system call number, then the
/// architecture.
pub const OFFSET_NR: u32 = 0;
pub const OFFSET_ARCH: u32 = 4;

/// BPF_STMT of <linux/filter.h>: one instruction without a jump.
pub fn stmt(code: u32, k: u32) -> sock_filter {
    sock_filter { code: code as u16, jt: 0, jf: 0, k }
}

/// BPF_JUMP of <linux/filter.h>: compare with `k`, then skip `jt` instructions when true and
/// `jf` when false.
pub fn jump(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code: code as u16, jt, jf, k }
}

/// The `struct sock_fprog` seccomp(2) takes, pointing at `filter` (which must outlive it).
pub fn program(filter: &[sock_filter]) -> libc::sock_fprog {
    libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut sock_filter,
    }
}
