// Given code for lesson 16, shared by the starter, the solution and the wrong answers.
#![allow(dead_code)]

/// The capabilities Docker leaves a container (moby `oci/caps/defaults.go`), as the kernel's
/// bit numbers (capabilities(7), <linux/capability.h>).
pub const DOCKER_DEFAULT: [(u32, &str); 14] = [
    (0, "CAP_CHOWN"),
    (1, "CAP_DAC_OVERRIDE"),
    (3, "CAP_FOWNER"),
    (4, "CAP_FSETID"),
    (5, "CAP_KILL"),
    (6, "CAP_SETGID"),
    (7, "CAP_SETUID"),
    (8, "CAP_SETPCAP"),
    (10, "CAP_NET_BIND_SERVICE"),
    (13, "CAP_NET_RAW"),
    (18, "CAP_SYS_CHROOT"),
    (27, "CAP_MKNOD"),
    (29, "CAP_AUDIT_WRITE"),
    (31, "CAP_SETFCAP"),
];

/// Docker's set as a bit mask: bit N is capability N.
pub fn docker_mask() -> u64 {
    DOCKER_DEFAULT.iter().fold(0, |mask, (n, _)| mask | 1 << n)
}

/// The highest capability number this kernel knows (/proc/sys/kernel/cap_last_cap).
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// capset(2) for this thread: the effective, permitted and inheritable sets as bit masks.
/// (The C library has no wrapper for it, and neither has nix: this is the raw system call with
/// its version-3 header, 64-bit sets split into two 32-bit halves.)
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> std::io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let half = |mask: u64, i: u32| (mask >> (32 * i)) as u32;
    let data: Vec<Data> = (0..2)
        .map(|i| Data {
            effective: half(effective, i),
            permitted: half(permitted, i),
            inheritable: half(inheritable, i),
        })
        .collect();
    let header = Header { version: 0x2008_0522, pid: 0 };
    // SAFETY: the header and two data structs live across the call, as capset(2) requires.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}
