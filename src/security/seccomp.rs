//! Seccomp: Docker's default syscall filter, compiled by hand from the OCI `linux.seccomp`
//! data into a classic BPF program and installed with seccomp(2).
//!
//! With a filter installed, every system call the process makes first runs a small program in
//! the kernel. The program sees the call's number, the CPU architecture and the six arguments
//! (`struct seccomp_data`), and returns a verdict: allow, fail with an errno, kill. Docker's
//! default profile allows about 350 calls and fails the rest with EPERM. The ones it refuses
//! are the ones that reach kernel-global state: `keyctl` (the keyring is not namespaced),
//! `kexec_load`, `init_module`, `mount`/`unshare`/`setns` without CAP_SYS_ADMIN, `clone` with
//! namespace flags, `bpf`, `perf_event_open`, `io_uring_*`...
//!
//! Three parts:
//! 1. [`default_profile`]: Docker's profile as data, in the OCI `LinuxSeccomp` shape, so it
//!    goes into `config.json` like any other field and `runc` could run it too.
//! 2. [`compile`]: OCI data -> BPF instructions, written here rather than with libseccomp (a C
//!    library) or seccompiler (whose rule model is not the OCI one), so the whole path is in
//!    front of the reader. [`Program::run`] interprets the result, which is how the tests check
//!    a filter without installing it.
//! 3. [`install`]: `seccomp(SECCOMP_SET_MODE_FILTER)`, the last step before execve.

use super::syscalls_x86_64::SYSCALLS_X86_64;
use crate::explain;
use crate::state;
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use Capability as C;
use LinuxSeccompOperator as Op;

// ---------------------------------------------------------------------------------------------
// 1. Docker's default profile, as data
// ---------------------------------------------------------------------------------------------

/// One rule of Docker's profile, with moby's `includes`/`excludes` conditions on the
/// container's capabilities: Docker keeps a group only if the bounding set has the `needs`
/// capability and not the `unless` one.
#[derive(Clone, Copy)]
struct Group {
    names: &'static [&'static str],
    action: GroupAction,
    /// `(argument index, operator, value, value_two)`.
    arg: Option<(usize, LinuxSeccompOperator, u64, u64)>,
    needs: Option<Capability>,
    unless: Option<Capability>,
}

#[derive(Clone, Copy)]
enum GroupAction {
    Allow,
    Errno(u32),
}

impl Group {
    const fn allow(names: &'static [&'static str]) -> Group {
        Group {
            names,
            action: GroupAction::Allow,
            arg: None,
            needs: None,
            unless: None,
        }
    }
    const fn errno(names: &'static [&'static str], errno: i32) -> Group {
        Group {
            action: GroupAction::Errno(errno as u32),
            ..Group::allow(names)
        }
    }
    const fn arg(
        self,
        index: usize,
        op: LinuxSeccompOperator,
        value: u64,
        value_two: u64,
    ) -> Group {
        Group {
            arg: Some((index, op, value, value_two)),
            ..self
        }
    }
    const fn needs(self, cap: Capability) -> Group {
        Group {
            needs: Some(cap),
            ..self
        }
    }
    const fn unless(self, cap: Capability) -> Group {
        Group {
            unless: Some(cap),
            ..self
        }
    }
}

/// The CLONE_NEW* flags: clone(2) with any of these creates a namespace.
const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

// ANCHOR: allowlist
/// Calls every container may make, whatever its capabilities (moby
/// `profiles/seccomp/default.json`, 2025: io_uring removed, calls up to kernel 6.13 added).
/// Names of other architectures' calls (`chown32`, `_llseek`...) are kept as Docker writes
/// them: the compiler skips names the x86_64 table does not have, as runc does.
#[rustfmt::skip]
const DOCKER_ALLOWED: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
    "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
    "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
    "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    // ANCHOR_END: allowlist
    // ANCHOR: allowlist_rest
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
    "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
    "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
    "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
    "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
    "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
    "futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid",
    "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
    "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
    "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area",
    "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "getxattrat", "inotify_add_watch",
    "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy",
    "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set",
    "io_setup", "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen",
    "listmount", "listxattr", "listxattrat", "llistxattr", "_llseek", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack", "membarrier", "memfd_create",
    "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2",
    "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
    "mq_unlink", "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open",
    "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc",
    "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv",
    "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64",
    "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv",
    "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr",
    "removexattrat", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
    "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
    "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop",
    "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg",
    "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32",
    "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32",
    "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
    "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid",
    "setuid32", "setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown",
    "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
    "splice", "stat", "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat",
    "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
    "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask",
    "uname", "unlink", "unlinkat", "uretprobe", "utime", "utimensat", "utimensat_time64", "utimes",
    "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write", "writev",
];
// ANCHOR_END: allowlist_rest

// ANCHOR: groups
/// The rest of Docker's profile, for x86_64 (the groups for arm, s390, ppc and riscv are left
/// out). The order is Docker's, and it matters: the first matching rule decides.
#[rustfmt::skip]
const DOCKER_GROUPS: &[Group] = &[
    // Docker requires kernel 4.8 for these (before it, ptrace could bypass seccomp); minidock
    // needs a newer kernel anyway.
    Group::allow(&["process_vm_readv", "process_vm_writev", "ptrace"]),
    // socket(2), but not AF_VSOCK (40): vsock reaches the hypervisor, not the container's net.
    Group::allow(&["socket"]).arg(0, Op::ScmpCmpNe, libc::AF_VSOCK as u64, 0),
    // personality(2) only for harmless personas: Linux, UNAME26, and the query 0xffffffff.
    Group::allow(&["personality"]).arg(0, Op::ScmpCmpEq, 0x0, 0),
    Group::allow(&["personality"]).arg(0, Op::ScmpCmpEq, 0x0008, 0),
    Group::allow(&["personality"]).arg(0, Op::ScmpCmpEq, 0x20000, 0),
    Group::allow(&["personality"]).arg(0, Op::ScmpCmpEq, 0x20008, 0),
    Group::allow(&["personality"]).arg(0, Op::ScmpCmpEq, 0xffff_ffff, 0),
    Group::allow(&["arch_prctl", "modify_ldt"]),
    // ANCHOR_END: groups
    // ANCHOR: groups_caps
    Group::allow(&["open_by_handle_at"]).needs(C::DacReadSearch),
    Group::allow(&[
        "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
        "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount",
        "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
        "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
    ])
    .needs(C::SysAdmin),
    // Without CAP_SYS_ADMIN, clone(2) only without CLONE_NEW* flags:
    // (flags & CLONE_NAMESPACE_FLAGS) == 0. fork() and pthread_create() pass.
    Group::allow(&["clone"])
        .arg(0, Op::ScmpCmpMaskedEq, CLONE_NAMESPACE_FLAGS, 0)
        .unless(C::SysAdmin),
    // clone3 passes its flags in a struct in memory, which a seccomp filter cannot read. So it
    // fails with ENOSYS, "not implemented", and glibc falls back to clone(2), which the rule
    // above can check. EPERM would be taken for a real refusal.
    Group::errno(&["clone3"], libc::ENOSYS).unless(C::SysAdmin),
    Group::allow(&["reboot"]).needs(C::SysBoot),
    Group::allow(&["chroot"]).needs(C::SysChroot),
    Group::allow(&["delete_module", "init_module", "finit_module"]).needs(C::SysModule),
    Group::allow(&["acct"]).needs(C::SysPacct),
    Group::allow(&[
        "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
        "ptrace",
    ])
    .needs(C::SysPtrace),
    Group::allow(&["iopl", "ioperm"]).needs(C::SysRawio),
    Group::allow(&["settimeofday", "stime", "clock_settime", "clock_settime64"]).needs(C::SysTime),
    Group::allow(&["vhangup"]).needs(C::SysTtyConfig),
    Group::allow(&["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"])
        .needs(C::SysNice),
    Group::allow(&["syslog"]).needs(C::Syslog),
    Group::allow(&["bpf"]).needs(C::Bpf),
    Group::allow(&["perf_event_open"]).needs(C::Perfmon),
];
// ANCHOR_END: groups_caps

/// The errno of Docker's default action: EPERM, "Operation not permitted".
pub const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

// ANCHOR: default_profile
/// Docker's default seccomp profile for a container whose bounding set is `bounding`, in the
/// OCI shape (moby resolves its `includes`/`excludes` the same way, against the bounding set,
/// when it writes config.json). Calls outside the list fail with EPERM.
pub fn default_profile(bounding: &[Capability]) -> LinuxSeccomp {
    let mut syscalls = vec![syscall_rule(&Group::allow(DOCKER_ALLOWED))];
    for group in DOCKER_GROUPS {
        let has_needed = group.needs.is_none_or(|c| bounding.contains(&c));
        let has_excluded = group.unless.is_some_and(|c| bounding.contains(&c));
        if has_needed && !has_excluded {
            syscalls.push(syscall_rule(group));
        }
    }
    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(LinuxSeccompAction::ScmpActErrno);
    profile.set_default_errno_ret(Some(DEFAULT_ERRNO));
    profile.set_architectures(Some(vec![Arch::ScmpArchX86_64]));
    profile.set_syscalls(Some(syscalls));
    profile
}
// ANCHOR_END: default_profile

fn syscall_rule(group: &Group) -> LinuxSyscall {
    let mut rule = LinuxSyscall::default();
    rule.set_names(group.names.iter().map(|n| n.to_string()).collect());
    match group.action {
        GroupAction::Allow => {
            rule.set_action(LinuxSeccompAction::ScmpActAllow);
        }
        GroupAction::Errno(errno) => {
            rule.set_action(LinuxSeccompAction::ScmpActErrno);
            rule.set_errno_ret(Some(errno));
        }
    }
    if let Some((index, op, value, value_two)) = group.arg {
        let value_two = (value_two != 0).then_some(value_two);
        rule.set_args(Some(vec![seccomp_arg(index, value, value_two, op)]));
    }
    rule
}

/// One OCI argument condition. (oci-spec gives `LinuxSeccompArg` a builder but no setters.)
pub fn seccomp_arg(
    index: usize,
    value: u64,
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
) -> LinuxSeccompArg {
    let builder = LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op);
    let builder = match value_two {
        Some(v) => builder.value_two(v),
        None => builder,
    };
    builder
        .build()
        .expect("every field of LinuxSeccompArg has a default")
}

// ---------------------------------------------------------------------------------------------
// 2. The compiler: OCI data -> classic BPF
// ---------------------------------------------------------------------------------------------

/// `AUDIT_ARCH_X86_64` (linux/audit.h): EM_X86_64 | 64-bit | little-endian.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// Bit 30 of the syscall number marks the x32 ABI (x86_64 registers, 32-bit pointers). Its
/// calls carry the x86_64 audit arch, so the arch check alone does not catch them.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// The kernel refuses longer filters (BPF_MAXINSNS).
pub const MAX_INSTRUCTIONS: usize = 4096;

// Seccomp return values (linux/seccomp.h). The low 16 bits carry data (the errno).
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
pub const RET_DATA: u32 = 0x0000_ffff;

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h), only the ones the compiler emits.
const LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS (0x20): A = seccomp_data[k]
const ALU_AND_K: u16 = 0x54; // BPF_ALU (4) | BPF_AND (0x50) | BPF_K (0): A &= k
const JMP_JA: u16 = 0x05; // BPF_JMP (5) | BPF_JA (0): pc += k
const JMP_JEQ_K: u16 = 0x05 | 0x10; // pc += (A == k) ? jt : jf
const JMP_JGT_K: u16 = 0x05 | 0x20; // pc += (A > k) ? jt : jf
const JMP_JGE_K: u16 = 0x05 | 0x30; // pc += (A >= k) ? jt : jf
const JMP_JSET_K: u16 = 0x05 | 0x40; // pc += (A & k) ? jt : jf
const RET_K: u16 = 0x06; // BPF_RET (6) | BPF_K (0): return k

// Offsets in `struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }`.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_ARGS: u32 = 16;

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// install() hands the kernel a pointer to Insns as `struct sock_filter`s.
const _: () = assert!(std::mem::size_of::<Insn>() == std::mem::size_of::<libc::sock_filter>());

impl Insn {
    const fn new(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }
}

/// A compiled filter: the instructions the kernel will run on every system call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    insns: Vec<Insn>,
    /// `SECCOMP_FILTER_FLAG_*` for seccomp(2), from the profile's `flags`.
    flags: u32,
}

/// The input of a filter, as the kernel fills `struct seccomp_data`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    /// A call of `nr` on x86_64 with the given arguments (the rest zero).
    pub fn x86_64(nr: i64, args: &[u64]) -> SeccompData {
        let mut data = SeccompData {
            nr: nr as i32,
            arch: AUDIT_ARCH_X86_64,
            ..Default::default()
        };
        data.args[..args.len()].copy_from_slice(args);
        data
    }

    /// The 32-bit word at byte `offset`, little-endian, as `BPF_LD|BPF_W|BPF_ABS` reads it.
    fn word(&self, offset: u32) -> Option<u32> {
        let mut bytes = [0u8; 64];
        bytes[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        bytes[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        bytes[8..16].copy_from_slice(&self.instruction_pointer.to_ne_bytes());
        for (i, arg) in self.args.iter().enumerate() {
            bytes[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
        }
        let at = offset as usize;
        (at.is_multiple_of(4) && at + 4 <= bytes.len())
            .then(|| u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes")))
    }
}

impl Program {
    pub fn instructions(&self) -> &[Insn] {
        &self.insns
    }

    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    pub fn flags(&self) -> u32 {
        self.flags
    }

    // ANCHOR: run
    /// Runs the filter on one system call, as the kernel would, and returns its verdict (a
    /// `RET_*` value). Only the instructions the compiler emits are understood; every jump
    /// goes forward, so the loop ends.
    pub fn run(&self, data: &SeccompData) -> Result<u32> {
        let mut a: u32 = 0;
        let mut pc = 0usize;
        while let Some(insn) = self.insns.get(pc) {
            pc += 1;
            let jump = |taken: bool| usize::from(if taken { insn.jt } else { insn.jf });
            match insn.code {
                LD_W_ABS => {
                    a = data
                        .word(insn.k)
                        .with_context(|| format!("load from bad offset {}", insn.k))?
                }
                ALU_AND_K => a &= insn.k,
                JMP_JA => pc += insn.k as usize,
                JMP_JEQ_K => pc += jump(a == insn.k),
                JMP_JGT_K => pc += jump(a > insn.k),
                JMP_JGE_K => pc += jump(a >= insn.k),
                JMP_JSET_K => pc += jump(a & insn.k != 0),
                RET_K => return Ok(insn.k),
                code => bail!("instruction {}: unknown opcode {code:#x}", pc - 1),
            }
        }
        bail!("the program ran past its end without returning")
    }
    // ANCHOR_END: run

    /// The program as bytes, for the cache file: the flags word, then 8 bytes per instruction
    /// (native endian, the layout of `struct sock_filter`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.insns.len() * 8);
        out.extend_from_slice(&self.flags.to_ne_bytes());
        for insn in &self.insns {
            out.extend_from_slice(&insn.code.to_ne_bytes());
            out.push(insn.jt);
            out.push(insn.jf);
            out.extend_from_slice(&insn.k.to_ne_bytes());
        }
        out
    }

    /// Reads back [`Program::to_bytes`], checking the shape: whole instructions, within the
    /// kernel's limit, starting with the architecture check and ending with a return.
    pub fn from_bytes(bytes: &[u8]) -> Result<Program> {
        if bytes.len() < 4 || !(bytes.len() - 4).is_multiple_of(8) {
            bail!("a seccomp program is a flags word and whole 8-byte instructions");
        }
        let flags = u32::from_ne_bytes(bytes[0..4].try_into().expect("4 bytes"));
        let insns: Vec<Insn> = bytes[4..]
            .chunks_exact(8)
            .map(|c| Insn {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        if insns.is_empty() || insns.len() > MAX_INSTRUCTIONS {
            bail!(
                "a seccomp program has 1 to {MAX_INSTRUCTIONS} instructions, not {}",
                insns.len()
            );
        }
        if insns[0] != Insn::new(LD_W_ABS, 0, 0, OFFSET_ARCH) {
            bail!("a seccomp program must start by loading the architecture");
        }
        if insns.last().map(|i| i.code) != Some(RET_K) {
            bail!("a seccomp program must end with a return");
        }
        Ok(Program { insns, flags })
    }

    /// A readable listing, one instruction a line, for debugging and for the book.
    pub fn disassemble(&self) -> String {
        let mut out = String::new();
        for (pc, i) in self.insns.iter().enumerate() {
            let text = match i.code {
                LD_W_ABS => format!("ld  [{}]", i.k),
                ALU_AND_K => format!("and #{:#x}", i.k),
                JMP_JA => format!("ja  {}", pc + 1 + i.k as usize),
                JMP_JEQ_K | JMP_JGT_K | JMP_JGE_K | JMP_JSET_K => {
                    let op = match i.code {
                        JMP_JEQ_K => "jeq",
                        JMP_JGT_K => "jgt",
                        JMP_JGE_K => "jge",
                        _ => "jset",
                    };
                    let t = pc + 1 + usize::from(i.jt);
                    let f = pc + 1 + usize::from(i.jf);
                    format!("{op} #{:#x}, {t}, {f}", i.k)
                }
                RET_K => format!("ret #{:#x}", i.k),
                code => format!("??? {code:#x}"),
            };
            out.push_str(&format!("{pc:4}: {text}\n"));
        }
        out
    }
}

/// A jump target inside the program being assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Label(usize);

// ANCHOR: asm
/// The compiler's assembly: straight-line instructions, labels, and two kinds of jump.
///
/// Classic BPF conditional jumps reach at most 255 instructions ahead (`jt`/`jf` are bytes),
/// and a filter for 350 syscalls is longer than that. So every conditional jump here is
/// emitted as "skip the next instruction or not", followed by an unconditional `ja`, whose
/// 32-bit offset reaches anywhere. Slightly longer programs, never an out-of-range jump.
enum Asm {
    Insn(Insn),
    /// `if (A <op> k) == when { goto to }`
    JumpIf {
        op: u16,
        k: u32,
        when: bool,
        to: Label,
    },
    Goto(Label),
    Place(Label),
}
// ANCHOR_END: asm

#[derive(Default)]
struct Assembler {
    code: Vec<Asm>,
    labels: usize,
}

impl Assembler {
    fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }
    fn load(&mut self, offset: u32) {
        self.code.push(Asm::Insn(Insn::new(LD_W_ABS, 0, 0, offset)));
    }
    fn and(&mut self, mask: u32) {
        self.code.push(Asm::Insn(Insn::new(ALU_AND_K, 0, 0, mask)));
    }
    fn ret(&mut self, verdict: u32) {
        self.code.push(Asm::Insn(Insn::new(RET_K, 0, 0, verdict)));
    }
    fn jump_if(&mut self, op: u16, k: u32, when: bool, to: Label) {
        self.code.push(Asm::JumpIf { op, k, when, to });
    }
    fn goto(&mut self, to: Label) {
        self.code.push(Asm::Goto(to));
    }
    fn place(&mut self, label: Label) {
        self.code.push(Asm::Place(label));
    }

    /// Lays the program out: first every label's address, then the instructions with their
    /// jump offsets, which are relative to the next instruction.
    fn finish(self) -> Result<Vec<Insn>> {
        let mut address = vec![None; self.labels];
        let mut pc = 0usize;
        for item in &self.code {
            match item {
                Asm::Insn(_) | Asm::Goto(_) => pc += 1,
                Asm::JumpIf { .. } => pc += 2,
                Asm::Place(Label(l)) => address[*l] = Some(pc),
            }
        }
        let target = |Label(l): Label, from: usize| -> Result<u32> {
            let to = address[l].context("internal error: a label was never placed")?;
            if to < from {
                bail!("internal error: a backward jump (BPF only jumps forward)");
            }
            Ok((to - from) as u32)
        };
        let mut out = Vec::with_capacity(pc);
        for item in self.code {
            match item {
                Asm::Insn(insn) => out.push(insn),
                Asm::Goto(to) => {
                    let k = target(to, out.len() + 1)?;
                    out.push(Insn::new(JMP_JA, 0, 0, k));
                }
                Asm::JumpIf { op, k, when, to } => {
                    // when == true: taken -> fall onto the `ja`, else skip it.
                    let (jt, jf) = if when { (0, 1) } else { (1, 0) };
                    out.push(Insn::new(op, jt, jf, k));
                    let k = target(to, out.len() + 1)?;
                    out.push(Insn::new(JMP_JA, 0, 0, k));
                }
                Asm::Place(_) => {}
            }
        }
        Ok(out)
    }
}

/// One way a rule can match: all its conditions hold (an empty list always matches).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Alternative {
    conditions: Vec<Condition>,
    verdict: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Condition {
    index: u32,
    op: u32,
    value: u64,
    value_two: u64,
}

fn verdict(action: LinuxSeccompAction, errno: Option<u32>) -> Result<u32> {
    Ok(match action {
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
        LinuxSeccompAction::ScmpActErrno => RET_ERRNO | (errno.unwrap_or(DEFAULT_ERRNO) & RET_DATA),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActTrace => RET_TRACE | (errno.unwrap_or(0) & RET_DATA),
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActNotify => {
            bail!("linux.seccomp: SCMP_ACT_NOTIFY (a seccomp agent) is not supported")
        }
    })
}

fn filter_flag(flag: LinuxSeccompFilterFlag) -> u32 {
    match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC as u32,
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG as u32,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
            libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32
        }
        // SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, linux/seccomp.h (5.19).
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 1 << 5,
    }
}

/// The syscall number of `name` on x86_64, if it has one.
pub fn syscall_number(name: &str) -> Option<u32> {
    SYSCALLS_X86_64
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, nr)| *nr as u32)
}

/// The name of x86_64 syscall `nr`.
pub fn syscall_name(nr: u32) -> Option<&'static str> {
    SYSCALLS_X86_64
        .binary_search_by_key(&i64::from(nr), |(_, n)| *n)
        .ok()
        .map(|i| SYSCALLS_X86_64[i].0)
}

/// The rules of a profile, per syscall number, in profile order.
struct Resolved {
    default: u32,
    rules: BTreeMap<u32, Vec<Alternative>>,
    unknown_names: Vec<String>,
}

// ANCHOR: resolve
/// Resolves a profile into rules per x86_64 syscall number, in profile order, as runc does:
/// a rule with the default action is skipped, and names this architecture lacks are
/// collected instead of failing.
fn resolve(profile: &LinuxSeccomp) -> Result<Resolved> {
    if !cfg!(target_arch = "x86_64") {
        bail!("the seccomp compiler only knows x86_64");
    }
    let default = verdict(profile.default_action(), profile.default_errno_ret())?;
    check_architectures(profile)?;
    let mut rules: BTreeMap<u32, Vec<Alternative>> = BTreeMap::new();
    let mut unknown_names = Vec::new();
    for (i, call) in profile.syscalls().iter().flatten().enumerate() {
        let verdict = verdict(call.action(), call.errno_ret())
            .with_context(|| format!("linux.seccomp.syscalls[{i}]"))?;
        // runc skips a rule whose action is the default one: it cannot change anything.
        if verdict == default {
            continue;
        }
        let alternatives = alternatives(conditions(i, call)?, verdict);
        for name in call.names() {
            match syscall_number(name) {
                Some(nr) => rules
                    .entry(nr)
                    .or_default()
                    .extend(alternatives.iter().cloned()),
                None => unknown_names.push(name.clone()),
            }
        }
    }
    drop_unreachable(&mut rules);
    Ok(Resolved {
        default,
        rules,
        unknown_names,
    })
}
// ANCHOR_END: resolve

// ANCHOR: resolve_arch
/// Refuses a profile whose `architectures` leave out x86_64: its rules would be meant for
/// another ABI's numbers. An empty or missing list means the native one.
fn check_architectures(profile: &LinuxSeccomp) -> Result<()> {
    if let Some(arches) = profile.architectures()
        && !arches.is_empty()
        && !arches
            .iter()
            .any(|a| matches!(a, Arch::ScmpArchX86_64 | Arch::ScmpArchNative))
    {
        bail!("linux.seccomp.architectures has no SCMP_ARCH_X86_64, the only one minidock filters");
    }
    Ok(())
}
// ANCHOR_END: resolve_arch

// ANCHOR: resolve_conditions
/// The argument conditions of rule `i`. A syscall has six arguments, so an index past 5 is
/// refused rather than read from beyond `seccomp_data`.
fn conditions(i: usize, call: &LinuxSyscall) -> Result<Vec<Condition>> {
    let args = call.args().as_deref().unwrap_or(&[]);
    let mut conditions = Vec::new();
    for arg in args {
        if arg.index() >= 6 {
            bail!(
                "linux.seccomp.syscalls[{i}]: argument index {} (a syscall has 6)",
                arg.index()
            );
        }
        conditions.push(Condition {
            index: arg.index() as u32,
            op: arg.op() as u32,
            value: arg.value(),
            value_two: arg.value_two().unwrap_or(0),
        });
    }
    Ok(conditions)
}

/// runc's rule for combining conditions: conditions on different arguments must all hold
/// (AND); if one argument appears twice, each condition becomes a rule of its own (OR).
fn alternatives(conditions: Vec<Condition>, verdict: u32) -> Vec<Alternative> {
    let mut seen = [0; 6];
    conditions.iter().for_each(|c| seen[c.index as usize] += 1);
    if seen.iter().any(|&n| n > 1) {
        conditions
            .iter()
            .map(|c| Alternative {
                conditions: vec![*c],
                verdict,
            })
            .collect()
    } else {
        vec![Alternative {
            conditions,
            verdict,
        }]
    }
}
// ANCHOR_END: resolve_conditions

// ANCHOR: resolve_unreachable
/// After an unconditional alternative, later ones for the same call can never be reached:
/// they are dropped, so the compiled program has no dead code.
fn drop_unreachable(rules: &mut BTreeMap<u32, Vec<Alternative>>) {
    for alternatives in rules.values_mut() {
        if let Some(first_always) = alternatives.iter().position(|a| a.conditions.is_empty()) {
            alternatives.truncate(first_always + 1);
        }
    }
}
// ANCHOR_END: resolve_unreachable

// The OCI operators as numbers (oci-spec's enum is `repr(u32)`), so conditions can be sorted
// and hashed.
const OP_NE: u32 = Op::ScmpCmpNe as u32;
const OP_LT: u32 = Op::ScmpCmpLt as u32;
const OP_LE: u32 = Op::ScmpCmpLe as u32;
const OP_EQ: u32 = Op::ScmpCmpEq as u32;
const OP_GE: u32 = Op::ScmpCmpGe as u32;
const OP_GT: u32 = Op::ScmpCmpGt as u32;
const OP_MASKED_EQ: u32 = Op::ScmpCmpMaskedEq as u32;

// ANCHOR: condition
/// Emits the test of one condition on a 64-bit argument. BPF registers are 32-bit, so the
/// filter loads the two halves separately, high word first. Jumps to `fail` when the
/// condition does not hold, falls through when it does.
///
/// All 64 bits are compared, as libseccomp does. A filter sees registers, not C types: for an
/// `int` argument the kernel ignores the high word, so a rule such as "socket family != 40"
/// is only as strong as that (a raw syscall can set the high bits).
fn emit_condition(asm: &mut Assembler, c: &Condition, fail: Label) -> Result<()> {
    let low = OFFSET_ARGS + 8 * c.index; // x86_64 is little-endian: low word first
    let high = low + 4;
    let (v_hi, v_lo) = ((c.value >> 32) as u32, c.value as u32);
    let pass = asm.label();
    match c.op {
        OP_EQ => {
            asm.load(high);
            asm.jump_if(JMP_JEQ_K, v_hi, false, fail);
            asm.load(low);
            asm.jump_if(JMP_JEQ_K, v_lo, false, fail);
        }
        OP_NE => {
            asm.load(high);
            asm.jump_if(JMP_JEQ_K, v_hi, false, pass);
            asm.load(low);
            asm.jump_if(JMP_JEQ_K, v_lo, true, fail);
        }
        OP_MASKED_EQ => {
            // OCI and libseccomp: `value` is the mask, `valueTwo` the expected result.
            let (m_hi, m_lo) = ((c.value >> 32) as u32, c.value as u32);
            let (d_hi, d_lo) = ((c.value_two >> 32) as u32, c.value_two as u32);
            if m_hi != 0 || d_hi != 0 {
                asm.load(high);
                asm.and(m_hi);
                asm.jump_if(JMP_JEQ_K, d_hi, false, fail);
            }
            asm.load(low);
            asm.and(m_lo);
            asm.jump_if(JMP_JEQ_K, d_lo, false, fail);
        }
        OP_GT | OP_GE | OP_LT | OP_LE => emit_ordering(asm, c, (high, low), pass, fail),
        other => bail!("unknown seccomp operator {other}"),
    }
    asm.place(pass);
    Ok(())
}
// ANCHOR_END: condition

// ANCHOR: condition_order
/// Emits `>`, `>=`, `<` or `<=` on a 64-bit argument whose words are at `(high, low)`: the
/// high words decide unless they are equal, and only then do the low words. Jumps to `pass`
/// or `fail` as soon as the answer is known.
fn emit_ordering(asm: &mut Assembler, c: &Condition, words: (u32, u32), pass: Label, fail: Label) {
    let (high, low) = words;
    let (v_hi, v_lo) = ((c.value >> 32) as u32, c.value as u32);
    if c.op == OP_GT || c.op == OP_GE {
        // high > v_hi: holds; high < v_hi: fails; equal: the low words decide.
        asm.load(high);
        asm.jump_if(JMP_JGT_K, v_hi, true, pass);
        asm.jump_if(JMP_JEQ_K, v_hi, false, fail);
        asm.load(low);
        let low_op = if c.op == OP_GT { JMP_JGT_K } else { JMP_JGE_K };
        asm.jump_if(low_op, v_lo, false, fail);
    } else {
        // high < v_hi: holds; high > v_hi: fails; equal: the low words decide.
        asm.load(high);
        asm.jump_if(JMP_JGE_K, v_hi, false, pass);
        asm.jump_if(JMP_JEQ_K, v_hi, false, fail);
        asm.load(low);
        let low_op = if c.op == OP_LT { JMP_JGE_K } else { JMP_JGT_K };
        asm.jump_if(low_op, v_lo, true, fail);
    }
}
// ANCHOR_END: condition_order

/// What happens to one syscall number: a plain verdict, or a chain of conditional rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Outcome {
    Verdict(u32),
    Rules(Vec<Alternative>),
}

/// A run of consecutive syscall numbers with the same outcome.
struct Range {
    first: u32,
    outcome: usize,
}

// ANCHOR: compile
/// Compiles an OCI `linux.seccomp` into a BPF program for x86_64.
///
/// The program has three parts:
/// 1. the architecture check: a call made through another ABI (32-bit `int 0x80`, or x32)
///    would be looked up in the wrong table, since numbers differ between ABIs, so it kills
///    the process;
/// 2. a binary search over the syscall number: consecutive numbers with the same outcome are
///    merged into ranges, and each step halves the ranges, so any call is decided in about
///    log2(ranges) comparisons, not a walk down 350 of them;
/// 3. one block per distinct outcome: a plain `ret`, or the argument checks of the call's
///    rules, in profile order, ending with the default action.
pub fn compile(profile: &LinuxSeccomp) -> Result<Program> {
    let resolved = resolve(profile)?;
    let flags = profile
        .flags()
        .iter()
        .flatten()
        .fold(0, |acc, f| acc | filter_flag(*f));
    let (outcomes, ranges) = outcome_ranges(&resolved);

    let mut asm = Assembler::default();
    let kill = asm.label();
    let high = asm.label();
    let outcome_labels: Vec<Label> = outcomes.iter().map(|_| asm.label()).collect();

    // ANCHOR: compile_program
    // 1. Architecture.
    asm.load(OFFSET_ARCH);
    asm.jump_if(JMP_JEQ_K, AUDIT_ARCH_X86_64, false, kill);
    asm.load(OFFSET_NR);
    asm.jump_if(JMP_JGE_K, X32_SYSCALL_BIT, true, high);
    // 2. Binary search over the ranges.
    emit_search(&mut asm, &ranges, &outcomes, &outcome_labels);
    // Numbers with bit 30 set: x32 calls are a foreign ABI (kill); negative numbers, such as
    // the -1 a debugger uses to skip a call, are not a syscall: the default action.
    asm.place(high);
    asm.jump_if(JMP_JGE_K, 0x8000_0000, true, outcome_labels[0]);
    asm.place(kill);
    asm.ret(RET_KILL_PROCESS);
    // ANCHOR_END: compile_program
    // 3. One block per outcome.
    emit_outcomes(&mut asm, &outcomes, &outcome_labels, resolved.default)?;
    let insns = finish_program(asm, &resolved.unknown_names)?;
    Ok(Program { insns, flags })
}
// ANCHOR_END: compile

// ANCHOR: outcome_ranges
/// The distinct outcomes, numbered (0 is the default action), and the ranges: the numbers
/// up to one past the last rule, walked in order, a new range starting where the outcome
/// changes. Fewer ranges mean a shorter search.
fn outcome_ranges(resolved: &Resolved) -> (Vec<Outcome>, Vec<Range>) {
    let mut outcomes: Vec<Outcome> = vec![Outcome::Verdict(resolved.default)];
    let mut ranges: Vec<Range> = Vec::new();
    let last_nr = resolved.rules.keys().next_back().copied().unwrap_or(0);
    for nr in 0..=last_nr + 1 {
        let outcome = match resolved.rules.get(&nr).map(Vec::as_slice) {
            None => Outcome::Verdict(resolved.default),
            Some([only]) if only.conditions.is_empty() => Outcome::Verdict(only.verdict),
            Some(alternatives) => Outcome::Rules(alternatives.to_vec()),
        };
        let id = match outcomes.iter().position(|o| *o == outcome) {
            Some(id) => id,
            None => {
                outcomes.push(outcome);
                outcomes.len() - 1
            }
        };
        if ranges.last().map(|r| r.outcome) != Some(id) {
            ranges.push(Range {
                first: nr,
                outcome: id,
            });
        }
    }
    (outcomes, ranges)
}
// ANCHOR_END: outcome_ranges

// ANCHOR: emit_outcomes
/// Part 3 of the program: one block per outcome. The default action is a `ret`; a call with
/// rules tries each alternative in profile order (its conditions, then its verdict) and ends
/// with the default action. Plain verdicts other than the default are returned inside the
/// search itself, so they get no block.
fn emit_outcomes(
    asm: &mut Assembler,
    outcomes: &[Outcome],
    labels: &[Label],
    default: u32,
) -> Result<()> {
    for (id, (outcome, label)) in outcomes.iter().zip(labels).enumerate() {
        match outcome {
            Outcome::Verdict(v) if id == 0 => {
                asm.place(*label);
                asm.ret(*v);
            }
            Outcome::Verdict(_) => {}
            Outcome::Rules(alternatives) => {
                asm.place(*label);
                for alternative in alternatives {
                    let next = asm.label();
                    for condition in &alternative.conditions {
                        emit_condition(asm, condition, next)?;
                    }
                    asm.ret(alternative.verdict);
                    asm.place(next);
                }
                asm.ret(default);
            }
        }
    }
    Ok(())
}
// ANCHOR_END: emit_outcomes

// ANCHOR: compile_finish
/// Resolves the jumps and checks the length against the kernel's limit on a filter. Says
/// once how many of the profile's names are not x86_64 syscalls (Docker's profile names
/// 32-bit calls such as `chown32`), so a skipped name is visible in the trace.
fn finish_program(asm: Assembler, unknown_names: &[String]) -> Result<Vec<Insn>> {
    let insns = asm.finish()?;
    if insns.len() > MAX_INSTRUCTIONS {
        bail!(
            "the seccomp filter needs {} instructions, more than the kernel's {MAX_INSTRUCTIONS}",
            insns.len()
        );
    }
    if !unknown_names.is_empty() {
        explain::note(&format!(
            "seccomp: {} names are not x86_64 syscalls and were skipped (e.g. {})",
            unknown_names.len(),
            unknown_names[0]
        ));
    }
    Ok(insns)
}
// ANCHOR_END: compile_finish

// ANCHOR: search
/// Emits the binary search: with the syscall number in A, jump to the outcome of the range
/// that contains it. `ranges` is sorted, and each range runs up to the next one's start.
fn emit_search(asm: &mut Assembler, ranges: &[Range], outcomes: &[Outcome], labels: &[Label]) {
    if let [only] = ranges {
        match outcomes[only.outcome] {
            // A plain verdict is returned right here, saving a jump.
            Outcome::Verdict(v) => asm.ret(v),
            Outcome::Rules(_) => asm.goto(labels[only.outcome]),
        }
        return;
    }
    let middle = ranges.len() / 2;
    let upper_half = asm.label();
    asm.jump_if(JMP_JGE_K, ranges[middle].first, true, upper_half);
    emit_search(asm, &ranges[..middle], outcomes, labels);
    asm.place(upper_half);
    emit_search(asm, &ranges[middle..], outcomes, labels);
}
// ANCHOR_END: search

// ---------------------------------------------------------------------------------------------
// Compile once: an in-process memo and an on-disk cache
// ---------------------------------------------------------------------------------------------

/// Bumped whenever the compiler's output changes, so old cache files are not reused.
const COMPILER_VERSION: &str = "minidock-seccomp-1";

/// The cache key of a profile: sha256 of the compiler version, the architecture and the
/// profile's JSON.
pub fn profile_key(profile: &LinuxSeccomp) -> Result<String> {
    let json = serde_json::to_vec(profile).context("serialize linux.seccomp")?;
    Ok(state::sha256_hex(&[
        COMPILER_VERSION.as_bytes(),
        b"\0x86_64\0",
        &json,
    ]))
}

fn memo() -> &'static Mutex<HashMap<String, Arc<Program>>> {
    static MEMO: OnceLock<Mutex<HashMap<String, Arc<Program>>>> = OnceLock::new();
    MEMO.get_or_init(Default::default)
}

// ANCHOR: cached
/// Compiles `profile` at most once: first this process's memo, then `cache_dir` (a file
/// `seccomp-<key>.bpf` per profile), then the compiler. The cache directory must be writable by
/// root only (it is created 0700): whoever can write a cached program chooses the filter.
///
/// A failure to read or write the cache is not an error, the filter is simply compiled.
pub fn compile_cached(profile: &LinuxSeccomp, cache_dir: Option<&Path>) -> Result<Arc<Program>> {
    let key = profile_key(profile)?;
    if let Some(program) = memo().lock().expect("seccomp memo").get(&key) {
        return Ok(program.clone());
    }
    let file = cache_dir.map(|dir| dir.join(format!("seccomp-{key}.bpf")));
    let cached = file
        .as_ref()
        .and_then(|f| std::fs::read(f).ok())
        .and_then(|bytes| Program::from_bytes(&bytes).ok());
    let program = match cached {
        Some(program) => program,
        None => {
            let program = compile(profile)?;
            if let (Some(dir), Some(file)) = (cache_dir, &file)
                && let Err(e) = state::write_cache_file(dir, file, &program.to_bytes())
            {
                explain::note(&format!("seccomp cache not written: {e:#}"));
            }
            program
        }
    };
    let program = Arc::new(program);
    memo()
        .lock()
        .expect("seccomp memo")
        .insert(key, program.clone());
    Ok(program)
}
// ANCHOR_END: cached

// ---------------------------------------------------------------------------------------------
// 3. Installing the filter
// ---------------------------------------------------------------------------------------------

// ANCHOR: install
/// Installs the filter on the calling thread with `seccomp(SECCOMP_SET_MODE_FILTER)`; it is
/// inherited by children and kept across execve, and it can never be removed.
///
/// The kernel only accepts a filter from a process that has set no_new_privs or holds
/// CAP_SYS_ADMIN: otherwise a filter could trick a setuid program into failing a call it
/// relies on (dropping privileges, say) and keep running with its privileges.
pub fn install(program: &Program) -> Result<()> {
    explain::trace!(Security: "install the seccomp filter"
        => "seccomp(SECCOMP_SET_MODE_FILTER, {}, {{len={}}})", program.flags, program.len());
    let fprog = libc::sock_fprog {
        len: u16::try_from(program.len()).context("seccomp program too long")?,
        // Insn has the layout of struct sock_filter (repr(C), same fields).
        filter: program.insns.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points to program.len() valid instructions, alive for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            program.flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        let hint = if err.raw_os_error() == Some(libc::EACCES) {
            " (set no_new_privs first, or keep CAP_SYS_ADMIN until the filter is installed)"
        } else {
            ""
        };
        return Err(err).with_context(|| format!("seccomp(SECCOMP_SET_MODE_FILTER){hint}"));
    }
    Ok(())
}
// ANCHOR_END: install

/// Compiles (or reuses) and installs `profile`: the seccomp step of the container's child.
pub fn apply_seccomp(profile: &LinuxSeccomp, cache_dir: Option<&Path>) -> Result<()> {
    let program = compile_cached(profile, cache_dir)?;
    install(&program)
}

/// The verdict's action, for messages: "allow", "errno 1", "kill process"...
pub fn describe_verdict(verdict: u32) -> String {
    match verdict & !RET_DATA {
        RET_ALLOW => "allow".into(),
        RET_ERRNO => format!("errno {}", verdict & RET_DATA),
        RET_KILL_PROCESS => "kill process".into(),
        RET_KILL_THREAD => "kill thread".into(),
        RET_TRAP => "trap".into(),
        RET_TRACE => "trace".into(),
        RET_LOG => "log".into(),
        other => format!("{other:#x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::caps::DOCKER_DEFAULT_CAPABILITIES;

    fn docker() -> Program {
        compile(&default_profile(&DOCKER_DEFAULT_CAPABILITIES)).unwrap()
    }

    fn run(program: &Program, name: &str, args: &[u64]) -> u32 {
        let nr = syscall_number(name).unwrap_or_else(|| panic!("no syscall {name}"));
        program
            .run(&SeccompData::x86_64(i64::from(nr), args))
            .unwrap()
    }

    const EPERM: u32 = RET_ERRNO | 1;

    #[test]
    fn the_table_is_sorted_unique_and_agrees_with_libc() {
        assert!(SYSCALLS_X86_64.windows(2).all(|w| w[0].1 < w[1].1));
        let mut names: Vec<&str> = SYSCALLS_X86_64.iter().map(|(n, _)| *n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SYSCALLS_X86_64.len());
        assert_eq!(syscall_number("read"), Some(0));
        assert_eq!(syscall_number("getpid"), Some(libc::SYS_getpid as u32));
        assert_eq!(syscall_number("keyctl"), Some(libc::SYS_keyctl as u32));
        assert_eq!(syscall_number("fchmodat2"), Some(452));
        assert_eq!(syscall_number("futex_wake"), Some(454));
        assert_eq!(syscall_name(libc::SYS_unshare as u32), Some("unshare"));
        assert_eq!(syscall_number("chown32"), None);
    }

    #[test]
    fn the_program_starts_with_the_arch_check_and_fits_the_kernel() {
        let p = docker();
        let i = p.instructions();
        assert_eq!(i[0], Insn::new(LD_W_ABS, 0, 0, OFFSET_ARCH));
        assert_eq!((i[1].code, i[1].k), (JMP_JEQ_K, AUDIT_ARCH_X86_64));
        assert!(p.len() < MAX_INSTRUCTIONS, "{} instructions", p.len());
        assert_eq!(Program::from_bytes(&p.to_bytes()).unwrap(), p);
        println!("docker default profile: {} BPF instructions", p.len());
    }

    #[test]
    fn a_foreign_architecture_or_x32_is_killed() {
        let p = docker();
        let mut data = SeccompData::x86_64(libc::SYS_getpid, &[]);
        data.arch = 0x4000_0003; // AUDIT_ARCH_I386
        assert_eq!(p.run(&data).unwrap(), RET_KILL_PROCESS);
        let x32 = SeccompData::x86_64(i64::from(X32_SYSCALL_BIT) | libc::SYS_getpid, &[]);
        assert_eq!(p.run(&x32).unwrap(), RET_KILL_PROCESS);
        assert_eq!(p.run(&SeccompData::x86_64(-1, &[])).unwrap(), EPERM);
    }

    #[test]
    fn dockers_policy_allows_and_refuses_the_right_calls() {
        let p = docker();
        for name in [
            "read",
            "write",
            "getpid",
            "execve",
            "exit_group",
            "futex",
            "rt_sigreturn",
            "openat",
            "wait4",
            "fchmodat2",
            "mseal",
        ] {
            assert_eq!(run(&p, name, &[]), RET_ALLOW, "{name}");
        }
        for name in [
            "keyctl",
            "add_key",
            "request_key",
            "kexec_load",
            "init_module",
            "finit_module",
            "mount",
            "unshare",
            "setns",
            "sethostname",
            "bpf",
            "perf_event_open",
            "io_uring_setup",
            "reboot",
            "open_by_handle_at",
        ] {
            if let Some(nr) = syscall_number(name) {
                let v = p.run(&SeccompData::x86_64(i64::from(nr), &[])).unwrap();
                assert_eq!(v, EPERM, "{name}: {}", describe_verdict(v));
            }
        }
        // Numbers past the end of the table get the default action too.
        assert_eq!(p.run(&SeccompData::x86_64(1000, &[])).unwrap(), EPERM);
        // ptrace is allowed (kernel >= 4.8), chroot by CAP_SYS_CHROOT which Docker keeps.
        assert_eq!(run(&p, "ptrace", &[]), RET_ALLOW);
        assert_eq!(run(&p, "chroot", &[]), RET_ALLOW);
    }

    #[test]
    fn clone_is_allowed_only_without_namespace_flags() {
        let p = docker();
        let fork_flags = libc::SIGCHLD as u64;
        let thread_flags = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        assert_eq!(run(&p, "clone", &[fork_flags]), RET_ALLOW);
        assert_eq!(run(&p, "clone", &[thread_flags]), RET_ALLOW);
        for flag in [
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWNS,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWCGROUP,
        ] {
            assert_eq!(
                run(&p, "clone", &[fork_flags | flag as u64]),
                EPERM,
                "{flag:#x}"
            );
        }
        // Flags in the high word do not matter to the mask.
        assert_eq!(run(&p, "clone", &[fork_flags | (1 << 40)]), RET_ALLOW);
        assert_eq!(run(&p, "clone3", &[]), RET_ERRNO | libc::ENOSYS as u32);
    }

    #[test]
    fn cap_sys_admin_opens_the_admin_group() {
        let mut caps = DOCKER_DEFAULT_CAPABILITIES.to_vec();
        caps.push(Capability::SysAdmin);
        let p = compile(&default_profile(&caps)).unwrap();
        assert_eq!(run(&p, "mount", &[]), RET_ALLOW);
        assert_eq!(run(&p, "clone", &[libc::CLONE_NEWUSER as u64]), RET_ALLOW);
        assert_eq!(run(&p, "clone3", &[]), RET_ALLOW);
        assert_eq!(run(&p, "keyctl", &[]), EPERM);
    }

    #[test]
    fn argument_filters_compare_all_64_bits() {
        let p = docker();
        assert_eq!(run(&p, "personality", &[0]), RET_ALLOW);
        assert_eq!(run(&p, "personality", &[0xffff_ffff]), RET_ALLOW);
        assert_eq!(run(&p, "personality", &[0x0040_0000]), EPERM); // READ_IMPLIES_EXEC
        assert_eq!(run(&p, "personality", &[0x1_0000_0000]), EPERM);
        assert_eq!(run(&p, "socket", &[libc::AF_INET as u64]), RET_ALLOW);
        assert_eq!(run(&p, "socket", &[libc::AF_VSOCK as u64]), EPERM);
        // libseccomp's 64-bit semantics (see emit_condition): a high word makes it "not 40".
        assert_eq!(
            run(&p, "socket", &[(1 << 32) | libc::AF_VSOCK as u64]),
            RET_ALLOW
        );
    }

    /// Every operator against a direct 64-bit evaluation, on values around the word boundary.
    #[test]
    fn every_operator_matches_plain_arithmetic() {
        let values = [
            0u64,
            1,
            5,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_0000_0005,
            0x5_0000_0000,
            u64::MAX,
        ];
        let ops = [
            Op::ScmpCmpEq,
            Op::ScmpCmpNe,
            Op::ScmpCmpLt,
            Op::ScmpCmpLe,
            Op::ScmpCmpGe,
            Op::ScmpCmpGt,
            Op::ScmpCmpMaskedEq,
        ];
        for op in ops {
            for &value in &values {
                let value_two = 0x5;
                let mut profile = LinuxSeccomp::default();
                profile.set_default_action(LinuxSeccompAction::ScmpActErrno);
                let arg = seccomp_arg(2, value, Some(value_two), op);
                let mut rule = LinuxSyscall::default();
                rule.set_names(vec!["getpid".into()]);
                rule.set_action(LinuxSeccompAction::ScmpActAllow);
                rule.set_args(Some(vec![arg]));
                profile.set_syscalls(Some(vec![rule]));
                let p = compile(&profile).unwrap();
                for &x in &values {
                    let expected = match op {
                        Op::ScmpCmpEq => x == value,
                        Op::ScmpCmpNe => x != value,
                        Op::ScmpCmpLt => x < value,
                        Op::ScmpCmpLe => x <= value,
                        Op::ScmpCmpGe => x >= value,
                        Op::ScmpCmpGt => x > value,
                        Op::ScmpCmpMaskedEq => x & value == value_two,
                    };
                    let got = run(&p, "getpid", &[0, 0, x]) == RET_ALLOW;
                    assert_eq!(got, expected, "{x:#x} {op:?} {value:#x}");
                }
            }
        }
    }

    #[test]
    fn first_matching_rule_wins_and_repeated_arguments_mean_or() {
        let arg = |value: u64| seccomp_arg(0, value, None, Op::ScmpCmpEq);
        let mut rule = LinuxSyscall::default();
        rule.set_names(vec!["kill".into()]);
        rule.set_action(LinuxSeccompAction::ScmpActAllow);
        rule.set_args(Some(vec![arg(1), arg(2)]));
        let mut trap = LinuxSyscall::default();
        trap.set_names(vec!["kill".into()]);
        trap.set_action(LinuxSeccompAction::ScmpActTrap);
        let mut profile = LinuxSeccomp::default();
        profile.set_default_action(LinuxSeccompAction::ScmpActKillProcess);
        profile.set_syscalls(Some(vec![rule, trap]));
        let p = compile(&profile).unwrap();
        assert_eq!(run(&p, "kill", &[1]), RET_ALLOW);
        assert_eq!(run(&p, "kill", &[2]), RET_ALLOW);
        assert_eq!(run(&p, "kill", &[3]), RET_TRAP);
        assert_eq!(run(&p, "getpid", &[]), RET_KILL_PROCESS);
    }

    #[test]
    fn bad_profiles_are_refused() {
        let mut profile = LinuxSeccomp::default();
        profile.set_architectures(Some(vec![Arch::ScmpArchAarch64]));
        assert!(compile(&profile).is_err());
        let mut profile = LinuxSeccomp::default();
        profile.set_default_action(LinuxSeccompAction::ScmpActNotify);
        assert!(
            compile(&profile)
                .unwrap_err()
                .to_string()
                .contains("NOTIFY")
        );
        let bad_arg = seccomp_arg(6, 0, None, Op::ScmpCmpEq);
        let mut rule = LinuxSyscall::default();
        rule.set_names(vec!["read".into()]);
        rule.set_action(LinuxSeccompAction::ScmpActErrno);
        rule.set_args(Some(vec![bad_arg]));
        let mut profile = LinuxSeccomp::default();
        profile.set_syscalls(Some(vec![rule]));
        assert!(
            compile(&profile)
                .unwrap_err()
                .to_string()
                .contains("index 6")
        );
    }

    #[test]
    fn the_profile_is_oci_json() {
        let json = serde_json::to_value(default_profile(&DOCKER_DEFAULT_CAPABILITIES)).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["defaultErrnoRet"], 1);
        assert_eq!(json["architectures"][0], "SCMP_ARCH_X86_64");
        let text = json.to_string();
        assert!(text.contains("\"SCMP_CMP_MASKED_EQ\""));
        assert!(
            text.contains("2114060288"),
            "the CLONE_NEW* mask, as Docker writes it"
        );
        let back: LinuxSeccomp = serde_json::from_value(json).unwrap();
        assert_eq!(back, default_profile(&DOCKER_DEFAULT_CAPABILITIES));
    }

    #[test]
    fn compile_time_and_the_cache() {
        let profile = default_profile(&DOCKER_DEFAULT_CAPABILITIES);
        let start = std::time::Instant::now();
        let program = compile(&profile).unwrap();
        println!(
            "compile: {:?} for {} instructions",
            start.elapsed(),
            program.len()
        );

        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("seccomp");
        // A profile unique to this test, so the in-process memo does not answer first.
        let mut unique = profile.clone();
        unique.set_default_errno_ret(Some(77));
        let first = compile_cached(&unique, Some(&cache)).unwrap();
        let key = profile_key(&unique).unwrap();
        let file = cache.join(format!("seccomp-{key}.bpf"));
        let on_disk = Program::from_bytes(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(&on_disk, first.as_ref());
        let start = std::time::Instant::now();
        let again = compile_cached(&unique, Some(&cache)).unwrap();
        println!("memo hit: {:?}", start.elapsed());
        assert!(Arc::ptr_eq(&first, &again));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&cache).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_corrupt_cache_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut profile = default_profile(&DOCKER_DEFAULT_CAPABILITIES);
        profile.set_default_errno_ret(Some(78));
        let key = profile_key(&profile).unwrap();
        std::fs::write(dir.path().join(format!("seccomp-{key}.bpf")), b"garbage!!").unwrap();
        let program = compile_cached(&profile, Some(dir.path())).unwrap();
        assert_eq!(program.as_ref(), &compile(&profile).unwrap());
        assert!(Program::from_bytes(b"garbage!!").is_err());
    }

    /// The same decision as the BPF program, computed directly from the resolved rules.
    fn reference(resolved: &Resolved, data: &SeccompData) -> u32 {
        if data.arch != AUDIT_ARCH_X86_64 {
            return RET_KILL_PROCESS;
        }
        let nr = data.nr as u32;
        if nr >= 0x8000_0000 {
            return resolved.default;
        }
        if nr >= X32_SYSCALL_BIT {
            return RET_KILL_PROCESS;
        }
        let holds = |c: &Condition| {
            let x = data.args[c.index as usize];
            match c.op {
                OP_EQ => x == c.value,
                OP_NE => x != c.value,
                OP_LT => x < c.value,
                OP_LE => x <= c.value,
                OP_GE => x >= c.value,
                OP_GT => x > c.value,
                OP_MASKED_EQ => x & c.value == c.value_two,
                _ => unreachable!(),
            }
        };
        resolved
            .rules
            .get(&nr)
            .and_then(|alts| alts.iter().find(|a| a.conditions.iter().all(holds)))
            .map_or(resolved.default, |a| a.verdict)
    }

    #[test]
    fn every_syscall_number_gets_the_verdict_of_its_rules() {
        let mut with_admin = DOCKER_DEFAULT_CAPABILITIES.to_vec();
        with_admin.push(Capability::SysAdmin);
        for caps in [DOCKER_DEFAULT_CAPABILITIES.to_vec(), with_admin, vec![]] {
            let profile = default_profile(&caps);
            let resolved = resolve(&profile).unwrap();
            let program = compile(&profile).unwrap();
            let arg_sets: [&[u64]; 4] = [
                &[],
                &[libc::CLONE_NEWUSER as u64],
                &[8],
                &[libc::AF_VSOCK as u64, 1, 2, 3, 4, 5],
            ];
            for nr in (0..600).chain([X32_SYSCALL_BIT, X32_SYSCALL_BIT + 1, u32::MAX]) {
                for args in arg_sets {
                    let data = SeccompData::x86_64(i64::from(nr), args);
                    assert_eq!(
                        program.run(&data).unwrap(),
                        reference(&resolved, &data),
                        "syscall {nr} ({:?}) args {args:?}",
                        syscall_name(nr)
                    );
                }
            }
        }
    }

    #[test]
    fn the_listing_reads_like_bpf_assembly() {
        let listing = docker().disassemble();
        assert!(
            listing.starts_with("   0: ld  [4]\n   1: jeq #0xc000003e"),
            "{listing}"
        );
        assert!(listing.contains("ret #0x7fff0000"));
    }
}
