//! Linux capabilities: Docker's default set, `--cap-add`/`--cap-drop`, and applying an OCI
//! `process.capabilities` in the container's child process.
//!
//! Root's power is split into about forty capabilities (capabilities(7)). A process has five
//! sets of them:
//!
//! - **bounding**: the ceiling. No execve(2) can ever grant a capability outside it, not even a
//!   setuid-root binary. Dropping from it is one-way.
//! - **permitted**: what the process may switch on.
//! - **effective**: what the kernel checks right now.
//! - **inheritable**: what may pass through execve to a program whose file also marks it.
//! - **ambient**: what passes through execve to an ordinary program (needs permitted and
//!   inheritable).
//!
//! Why raw `capset(2)` rather than the `caps` crate: `caps` is fine, but it has its own
//! `Capability` enum, so every set would be translated from oci-spec's enum to caps' enum and
//! back, and it hides the one data structure worth seeing (two 32-bit words per set). The
//! system calls are short; writing them here keeps the whole path readable.

use crate::explain::{self, Chapter};
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

// ANCHOR: table
/// Every capability the kernel defines, with its bit number (`include/uapi/linux/capability.h`)
/// and its name as it appears in `config.json` and in `/proc/PID/status` tools.
pub const CAPABILITY_TABLE: [(Capability, u8, &str); 41] = [
    (Capability::Chown, 0, "CAP_CHOWN"),
    (Capability::DacOverride, 1, "CAP_DAC_OVERRIDE"),
    (Capability::DacReadSearch, 2, "CAP_DAC_READ_SEARCH"),
    (Capability::Fowner, 3, "CAP_FOWNER"),
    (Capability::Fsetid, 4, "CAP_FSETID"),
    (Capability::Kill, 5, "CAP_KILL"),
    (Capability::Setgid, 6, "CAP_SETGID"),
    (Capability::Setuid, 7, "CAP_SETUID"),
    (Capability::Setpcap, 8, "CAP_SETPCAP"),
    (Capability::LinuxImmutable, 9, "CAP_LINUX_IMMUTABLE"),
    (Capability::NetBindService, 10, "CAP_NET_BIND_SERVICE"),
    (Capability::NetBroadcast, 11, "CAP_NET_BROADCAST"),
    (Capability::NetAdmin, 12, "CAP_NET_ADMIN"),
    (Capability::NetRaw, 13, "CAP_NET_RAW"),
    (Capability::IpcLock, 14, "CAP_IPC_LOCK"),
    (Capability::IpcOwner, 15, "CAP_IPC_OWNER"),
    (Capability::SysModule, 16, "CAP_SYS_MODULE"),
    (Capability::SysRawio, 17, "CAP_SYS_RAWIO"),
    (Capability::SysChroot, 18, "CAP_SYS_CHROOT"),
    (Capability::SysPtrace, 19, "CAP_SYS_PTRACE"),
    (Capability::SysPacct, 20, "CAP_SYS_PACCT"),
    (Capability::SysAdmin, 21, "CAP_SYS_ADMIN"),
    (Capability::SysBoot, 22, "CAP_SYS_BOOT"),
    (Capability::SysNice, 23, "CAP_SYS_NICE"),
    (Capability::SysResource, 24, "CAP_SYS_RESOURCE"),
    (Capability::SysTime, 25, "CAP_SYS_TIME"),
    (Capability::SysTtyConfig, 26, "CAP_SYS_TTY_CONFIG"),
    (Capability::Mknod, 27, "CAP_MKNOD"),
    (Capability::Lease, 28, "CAP_LEASE"),
    (Capability::AuditWrite, 29, "CAP_AUDIT_WRITE"),
    (Capability::AuditControl, 30, "CAP_AUDIT_CONTROL"),
    (Capability::Setfcap, 31, "CAP_SETFCAP"),
    (Capability::MacOverride, 32, "CAP_MAC_OVERRIDE"),
    (Capability::MacAdmin, 33, "CAP_MAC_ADMIN"),
    (Capability::Syslog, 34, "CAP_SYSLOG"),
    (Capability::WakeAlarm, 35, "CAP_WAKE_ALARM"),
    (Capability::BlockSuspend, 36, "CAP_BLOCK_SUSPEND"),
    (Capability::AuditRead, 37, "CAP_AUDIT_READ"),
    (Capability::Perfmon, 38, "CAP_PERFMON"),
    (Capability::Bpf, 39, "CAP_BPF"),
    (Capability::CheckpointRestore, 40, "CAP_CHECKPOINT_RESTORE"),
];
// ANCHOR_END: table

// ANCHOR: docker_default
/// The capabilities Docker leaves a container (moby `oci/caps/defaults.go`). Everything else,
/// CAP_SYS_ADMIN above all (mount, namespaces, sethostname...), CAP_NET_ADMIN, CAP_SYS_MODULE,
/// CAP_SYS_PTRACE, CAP_SYS_TIME, is gone. The list keeps what ordinary programs expect of
/// "root": chown files, bind port 80, switch to another user, ping (NET_RAW).
pub const DOCKER_DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];
// ANCHOR_END: docker_default

/// The kernel's bit number for a capability.
pub fn capability_number(cap: Capability) -> u8 {
    CAPABILITY_TABLE
        .iter()
        .find(|(c, _, _)| *c == cap)
        .map(|(_, number, _)| *number)
        .expect("every Capability variant is in CAPABILITY_TABLE")
}

/// The `CAP_*` name of a capability, as Docker and config.json spell it.
pub fn capability_name(cap: Capability) -> &'static str {
    CAPABILITY_TABLE
        .iter()
        .find(|(c, _, _)| *c == cap)
        .map(|(_, _, name)| *name)
        .expect("every Capability variant is in CAPABILITY_TABLE")
}

/// Every capability, in kernel bit order.
pub fn all_capabilities() -> Vec<Capability> {
    CAPABILITY_TABLE.iter().map(|(c, _, _)| *c).collect()
}

/// A set of capabilities as the kernel stores it: bit N set for capability N.
pub fn capability_mask<'a>(caps: impl IntoIterator<Item = &'a Capability>) -> u64 {
    caps.into_iter()
        .fold(0, |mask, cap| mask | (1u64 << capability_number(*cap)))
}

/// One `--cap-add`/`--cap-drop` argument: a capability, or Docker's magic word `ALL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapArg {
    All,
    One(Capability),
}

// ANCHOR: parse
/// Parses a capability the way Docker does: case-insensitive, with or without the `CAP_`
/// prefix (`CAP_NET_ADMIN`, `net_admin` and `Net_Admin` are the same), or `ALL`.
pub fn parse_capability(text: &str) -> Result<CapArg> {
    let upper = text.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(CapArg::All);
    }
    let name = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    CAPABILITY_TABLE
        .iter()
        .find(|(_, _, known)| *known == name)
        .map(|(cap, _, _)| CapArg::One(*cap))
        .with_context(|| format!("unknown capability: {name:?}"))
}
// ANCHOR_END: parse

fn parse_all(args: &[String]) -> Result<Vec<CapArg>> {
    args.iter().map(|a| parse_capability(a)).collect()
}

// ANCHOR: tweak
/// Applies `--cap-add` and `--cap-drop` to `base` with Docker's rules (moby
/// `oci/caps.TweakCapabilities`):
///
/// - `--cap-add ALL` gives every capability except the ones dropped by name;
/// - otherwise `--cap-drop ALL` starts from nothing and keeps only the added ones;
/// - otherwise the drops are removed from `base`, then the adds are added.
///
/// The result is in kernel bit order, without duplicates.
pub fn tweak_capabilities(
    base: &[Capability],
    add: &[String],
    drop: &[String],
) -> Result<Vec<Capability>> {
    let add = parse_all(add)?;
    let drop = parse_all(drop)?;
    let dropped = |cap: &Capability| drop.contains(&CapArg::One(*cap));
    let added: Vec<Capability> = add
        .iter()
        .filter_map(|a| match a {
            CapArg::One(cap) => Some(*cap),
            CapArg::All => None,
        })
        .collect();
    let mut caps: Vec<Capability> = if add.contains(&CapArg::All) {
        all_capabilities()
            .into_iter()
            .filter(|c| !dropped(c))
            .collect()
    } else if drop.contains(&CapArg::All) {
        added
    } else {
        base.iter()
            .copied()
            .filter(|c| !dropped(c))
            .chain(added)
            .collect()
    };
    caps.sort_by_key(|c| capability_number(*c));
    caps.dedup();
    Ok(caps)
}
// ANCHOR_END: tweak

/// The capabilities of a new container: Docker's default set tweaked by `--cap-add` and
/// `--cap-drop`, or every capability with `--privileged` (which ignores add and drop, as
/// Docker does).
pub fn container_capabilities(
    add: &[String],
    drop: &[String],
    privileged: bool,
) -> Result<Vec<Capability>> {
    if privileged {
        // Still parse them, so a typo is an error even with --privileged.
        parse_all(add)?;
        parse_all(drop)?;
        return Ok(all_capabilities());
    }
    tweak_capabilities(&DOCKER_DEFAULT_CAPABILITIES, add, drop)
}

// ANCHOR: oci
/// The OCI `process.capabilities` for a container process running as `uid`, shaped as Docker
/// shapes it (moby `oci.SetCapabilities`):
///
/// - root gets the list as its bounding, permitted and effective sets;
/// - any other user gets it only as the bounding set, because that is what execve would leave
///   a non-root user anyway: the kernel clears permitted and effective when a non-root user
///   executes a program without file capabilities (capabilities(7), "Transformation of
///   capabilities during execve()").
///
/// Inheritable and ambient stay empty: since CVE-2022-24769, Docker no longer fills the
/// inheritable set, which let file capabilities of binaries in the image be raised.
pub fn oci_capabilities(caps: &[Capability], uid: u32) -> LinuxCapabilities {
    let set: Capabilities = caps.iter().copied().collect();
    // Every field set explicitly: LinuxCapabilities::default() is not empty (it holds
    // AUDIT_WRITE, KILL and NET_BIND_SERVICE in all five sets).
    let mut oci = LinuxCapabilities::default();
    oci.set_bounding(Some(set.clone()));
    oci.set_inheritable(None);
    oci.set_ambient(None);
    if uid == 0 {
        oci.set_permitted(Some(set.clone()));
        oci.set_effective(Some(set));
    } else {
        oci.set_permitted(None);
        oci.set_effective(None);
    }
    oci
}
// ANCHOR_END: oci

/// The five sets of an OCI `process.capabilities`, as kernel bit masks. A missing set is
/// empty (the runtime spec: "if the set is omitted, it is empty").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapMasks {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

impl CapMasks {
    pub fn from_oci(caps: &LinuxCapabilities) -> CapMasks {
        let mask = |set: &Option<Capabilities>| set.as_ref().map_or(0, capability_mask);
        CapMasks {
            bounding: mask(caps.bounding()),
            effective: mask(caps.effective()),
            permitted: mask(caps.permitted()),
            inheritable: mask(caps.inheritable()),
            ambient: mask(caps.ambient()),
        }
    }
}

/// Formats a mask as `/proc/PID/status` prints it (`CapBnd:\t00000000a80425fb`).
pub fn status_hex(mask: u64) -> String {
    format!("{mask:016x}")
}

/// The highest capability number this kernel knows (`/proc/sys/kernel/cap_last_cap`). A
/// capability above it cannot be dropped or raised; Docker's `ALL` stops there too.
/// Read once per process.
pub fn last_cap() -> u8 {
    static LAST: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40)
    })
}

fn known_caps_mask() -> u64 {
    let last = u32::from(last_cap()).min(63);
    if last == 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    }
}

/// Names of the capabilities in a mask, for messages.
pub fn mask_names(mask: u64) -> Vec<&'static str> {
    CAPABILITY_TABLE
        .iter()
        .filter(|(_, n, _)| mask & (1u64 << n) != 0)
        .map(|(_, _, name)| *name)
        .collect()
}

/// A capability set as strace(1) prints one: `1<<CAP_CHOWN|1<<CAP_KILL`, or `0`.
fn strace_mask(mask: u64) -> String {
    if mask == 0 {
        return "0".into();
    }
    let names: Vec<String> = (0..64u8)
        .filter(|n| mask & (1u64 << n) != 0)
        .map(|n| format!("1<<{}", cap_name(n)))
        .collect();
    names.join("|")
}

/// A capability's name as capabilities(7) and strace(1) spell it (`CAP_NET_RAW`), or its
/// number when this table does not know it.
fn cap_name(cap: u8) -> String {
    mask_names(1u64 << cap)
        .into_iter()
        .next()
        .map_or_else(|| cap.to_string(), |name| name.to_string())
}

// ANCHOR: bounding
/// Drops every capability outside `caps.bounding` from the bounding set, one
/// `prctl(PR_CAPBSET_DROP, cap)` per capability. Needs CAP_SETPCAP in the effective set, so it
/// runs first, before capset(2) takes CAP_SETPCAP away.
pub fn apply_bounding_set(caps: &LinuxCapabilities) -> Result<()> {
    let keep = CapMasks::from_oci(caps).bounding;
    let last = last_cap();
    let dropped: Vec<u8> = (0..=last).filter(|n| keep & (1u64 << n) == 0).collect();
    for cap in dropped {
        explain::trace!(Security: "drop a capability from the bounding set"
            => "prctl(PR_CAPBSET_DROP, {})", cap_name(cap));
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("prctl(PR_CAPBSET_DROP, {cap})"));
        }
    }
    Ok(())
}
// ANCHOR_END: bounding

/// Keeps the permitted set across a switch from uid 0 to another user (`PR_SET_KEEPCAPS`).
/// Without it setresuid(2) empties permitted and effective, and the later capset could not
/// give a non-root container user the capabilities its spec asks for. The flag is cleared by
/// execve, so it never outlives the container's setup.
pub fn keep_capabilities_across_setuid() -> Result<()> {
    explain::step(
        "keep capabilities across the user switch",
        || "prctl(PR_SET_KEEPCAPS, 1)".into(),
        Chapter::Security,
    );
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("prctl(PR_SET_KEEPCAPS, 1)");
    }
    Ok(())
}

// ANCHOR: capset_abi
/// `struct __user_cap_header_struct` (linux/capability.h).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`: one 32-bit word of each set. Version 3 of the ABI passes
/// two of them, capabilities 0-31 then 32-63.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
// ANCHOR_END: capset_abi

/// The calling thread's effective, permitted and inheritable sets (`capget(2)`).
pub fn current_sets() -> Result<(u64, u64, u64)> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: the header and a two-element data array, as the v3 ABI requires.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("capget");
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ))
}

/// The calling thread's bounding set, one `prctl(PR_CAPBSET_READ)` per capability.
pub fn bounding_set() -> Result<u64> {
    bounding_of(u64::MAX)
}

/// Which of the capabilities in `asked` are in the calling thread's bounding set: one
/// `prctl(PR_CAPBSET_READ)` per capability asked about (and known to this kernel).
pub fn bounding_of(asked: u64) -> Result<u64> {
    let mut mask = 0;
    for cap in (0..=last_cap().min(63)).filter(|cap| asked & (1u64 << cap) != 0) {
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) };
        match rc {
            1 => mask |= 1u64 << cap,
            0 => {}
            _ => {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("prctl(PR_CAPBSET_READ, {cap})"));
            }
        }
    }
    Ok(mask)
}

// ANCHOR: capset
/// Sets effective, permitted and inheritable with one `capset(2)`, then the ambient set with
/// `prctl(PR_CAP_AMBIENT)`. Runs after the bounding set is dropped and after the switch to
/// the container's user.
///
/// A capability the runtime itself does not hold cannot be granted (capset would fail with
/// EPERM), and neither can one this kernel does not know; those are left out, the way runc
/// warns and goes on. The same for an ambient capability that is not both permitted and
/// inheritable: `runc spec` asks for ambient capabilities without inheritable ones, and runc
/// skips them with a warning.
pub fn apply_process_capabilities(caps: &LinuxCapabilities) -> Result<()> {
    let want = CapMasks::from_oci(caps);
    let known = known_caps_mask();
    let grant = grantable(&want, known)?;
    capset(grant.effective, grant.permitted, grant.inheritable)?;
    apply_ambient(want.ambient & known, grant.permitted & grant.inheritable)
}
// ANCHOR_END: capset

// ANCHOR: grantable
/// Step 1 of [`apply_process_capabilities`]: the part of the wanted sets the kernel will
/// accept from this process. Permitted is cut to what the runtime holds, effective to
/// permitted, and inheritable to the ceiling `cap_capset` enforces; what is left out is said
/// once, as runc warns. Only `bounding` and `ambient` of the result are unused.
fn grantable(want: &CapMasks, known: u64) -> Result<CapMasks> {
    let (effective_now, held, held_inheritable) = current_sets()?;
    let permitted = want.permitted & held & known;
    let effective = want.effective & permitted;
    // The kernel's rules for the new inheritable set (security/commoncap.c, cap_capset): never
    // outside the old inheritable set plus the bounding set, and without CAP_SETPCAP, never
    // outside the old inheritable set plus the permitted one.
    let setpcap = effective_now & (1u64 << capability_number(Capability::Setpcap)) != 0;
    // Only the capabilities that decide something are looked up in the bounding set.
    let open = want.inheritable & !held_inheritable & known & if setpcap { u64::MAX } else { held };
    let inheritable = want.inheritable & (held_inheritable | bounding_of(open)?) & known;
    let missing = (want.permitted | want.effective) & known & !held;
    if missing != 0 {
        explain::note(&format!(
            "not granted (the runtime does not hold them): {}",
            mask_names(missing).join(", ")
        ));
    }
    Ok(CapMasks {
        bounding: 0,
        effective,
        permitted,
        inheritable,
        ambient: 0,
    })
}
// ANCHOR_END: grantable

// ANCHOR: capset_call
/// Step 2 of [`apply_process_capabilities`]: one `capset(2)` for the three main sets, each
/// 64-bit mask split into the two 32-bit halves of the v3 ABI. The error names the sets in
/// `/proc/PID/status` form, so it can be compared with what the process holds.
fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<()> {
    explain::trace!(Security: "set the process's capabilities"
        => "capset({{version=_LINUX_CAPABILITY_VERSION_3, pid=0}}, \
            {{effective={}, permitted={}, inheritable={}}})",
        strace_mask(effective), strace_mask(permitted), strace_mask(inheritable));
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: the header and a two-element data array, as the v3 ABI requires.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        let [e, p, i] = [effective, permitted, inheritable].map(status_hex);
        return Err(err).context(format!(
            "capset(effective={e}, permitted={p}, inheritable={i})"
        ));
    }
    Ok(())
}
// ANCHOR_END: capset_call

fn apply_ambient(want: u64, raisable: u64) -> Result<()> {
    explain::step(
        "clear the ambient capabilities",
        || "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)".into(),
        Chapter::Security,
    );
    let clear = libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong;
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_CAP_AMBIENT, clear, 0, 0, 0) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
    }
    if want & !raisable != 0 {
        explain::note(&format!(
            "ambient capabilities skipped (not both permitted and inheritable): {}",
            mask_names(want & !raisable).join(", ")
        ));
    }
    let raise = libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong;
    for cap in (0..64u8).filter(|n| want & raisable & (1u64 << n) != 0) {
        explain::step(
            "raise an ambient capability",
            || {
                format!(
                    "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, {}, 0, 0)",
                    cap_name(cap)
                )
            },
            Chapter::Security,
        );
        // SAFETY: prctl with integer arguments only.
        let rc =
            unsafe { libc::prctl(libc::PR_CAP_AMBIENT, raise, libc::c_ulong::from(cap), 0, 0) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("prctl(PR_CAP_AMBIENT_RAISE, {cap})"));
        }
    }
    Ok(())
}

/// The whole capability step for a process that keeps its user: drop the bounding set, then
/// set the other four. When the runtime switches user, call [`apply_bounding_set`], then
/// [`keep_capabilities_across_setuid`], switch user, then [`apply_process_capabilities`].
pub fn apply_capabilities(caps: &LinuxCapabilities) -> Result<()> {
    apply_bounding_set(caps)?;
    apply_process_capabilities(caps)
}

/// Parses a `Cap*:` line value of `/proc/PID/status` (16 hex digits).
pub fn parse_status_mask(hex: &str) -> Result<u64> {
    u64::from_str_radix(hex.trim(), 16).with_context(|| format!("not a capability mask: {hex:?}"))
}

/// Checks a whole list of `--cap-add`/`--cap-drop` values, for early, one-line errors.
pub fn validate_names(names: &[String]) -> Result<()> {
    for name in names {
        if name.trim().is_empty() {
            bail!("empty capability name");
        }
        parse_capability(name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_table_matches_the_kernel_numbering() {
        for (i, (_, number, name)) in CAPABILITY_TABLE.iter().enumerate() {
            assert_eq!(usize::from(*number), i, "{name}");
        }
        assert_eq!(capability_number(Capability::SysAdmin), 21);
        assert_eq!(capability_number(Capability::CheckpointRestore), 40);
    }

    #[test]
    fn names_parse_with_or_without_prefix_in_any_case() {
        for text in ["CAP_NET_ADMIN", "net_admin", "Net_Admin", " cap_net_admin "] {
            assert_eq!(
                parse_capability(text).unwrap(),
                CapArg::One(Capability::NetAdmin),
                "{text}"
            );
        }
        assert_eq!(parse_capability("all").unwrap(), CapArg::All);
        assert_eq!(parse_capability("ALL").unwrap(), CapArg::All);
        assert_eq!(
            parse_capability("syslog").unwrap(),
            CapArg::One(Capability::Syslog)
        );
    }

    #[test]
    fn unknown_names_are_one_line_errors() {
        let err = parse_capability("net_admn").unwrap_err().to_string();
        assert_eq!(err, "unknown capability: \"CAP_NET_ADMN\"");
        assert!(parse_capability("").is_err());
        assert!(parse_capability("CAP_").is_err());
        assert!(validate_names(&strings(&["chown", " "])).is_err());
    }

    #[test]
    fn the_docker_default_mask_is_what_docker_containers_show() {
        // `docker run --rm busybox grep CapBnd /proc/self/status` prints 00000000a80425fb.
        assert_eq!(
            status_hex(capability_mask(&DOCKER_DEFAULT_CAPABILITIES)),
            "00000000a80425fb"
        );
    }

    #[test]
    fn cap_add_and_drop_follow_docker() {
        let base = DOCKER_DEFAULT_CAPABILITIES;
        let caps =
            tweak_capabilities(&base, &strings(&["net_admin"]), &strings(&["CAP_CHOWN"])).unwrap();
        assert!(caps.contains(&Capability::NetAdmin));
        assert!(!caps.contains(&Capability::Chown));
        assert_eq!(caps.len(), base.len());

        let only = tweak_capabilities(&base, &strings(&["kill"]), &strings(&["ALL"])).unwrap();
        assert_eq!(only, vec![Capability::Kill]);

        let all = tweak_capabilities(&base, &strings(&["all"]), &strings(&["sys_admin"])).unwrap();
        assert_eq!(all.len(), CAPABILITY_TABLE.len() - 1);
        assert!(!all.contains(&Capability::SysAdmin));

        // Adding one already there does not duplicate it; no change keeps the base.
        let same = tweak_capabilities(&base, &strings(&["chown"]), &[]).unwrap();
        assert_eq!(same.len(), base.len());
        assert!(tweak_capabilities(&base, &strings(&["bogus"]), &[]).is_err());
    }

    #[test]
    fn privileged_gets_everything() {
        let caps = container_capabilities(&strings(&["chown"]), &strings(&["kill"]), true).unwrap();
        assert_eq!(caps.len(), CAPABILITY_TABLE.len());
        assert!(container_capabilities(&strings(&["nope"]), &[], true).is_err());
    }

    #[test]
    fn the_oci_shape_depends_on_the_user() {
        let root = oci_capabilities(&DOCKER_DEFAULT_CAPABILITIES, 0);
        let masks = CapMasks::from_oci(&root);
        assert_eq!(masks.bounding, 0xa80425fb);
        assert_eq!(masks.effective, 0xa80425fb);
        assert_eq!(masks.permitted, 0xa80425fb);
        assert_eq!(masks.inheritable, 0);
        assert_eq!(masks.ambient, 0);

        let user = oci_capabilities(&DOCKER_DEFAULT_CAPABILITIES, 1000);
        let masks = CapMasks::from_oci(&user);
        assert_eq!(masks.bounding, 0xa80425fb);
        assert_eq!(masks.effective | masks.permitted, 0);

        // The JSON uses the CAP_ names, as config.json does.
        let json = serde_json::to_string(&root).unwrap();
        assert!(json.contains("\"CAP_NET_BIND_SERVICE\""), "{json}");
        assert!(!json.contains("ambient"), "{json}");
    }

    #[test]
    fn status_masks_parse() {
        assert_eq!(parse_status_mask("00000000a80425fb\n").unwrap(), 0xa80425fb);
        assert!(parse_status_mask("xyz").is_err());
        assert_eq!(mask_names(0b11), vec!["CAP_CHOWN", "CAP_DAC_OVERRIDE"]);
    }
}
