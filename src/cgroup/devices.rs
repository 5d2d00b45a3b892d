//! The devices controller: which device nodes a container may create (mknod) and open.
//!
//! Capabilities decide who may call mknod(2); the devices controller decides which devices a
//! node may stand for, and it is checked on every open(2) too. So even a container holding
//! CAP_MKNOD cannot make `/dev/kmsg` (c 1:11) and write into the host's kernel log.
//!
//! The rules are the runtime spec's `linux.resources.devices` (config-linux.md, "Devices
//! allowlist"): allow or deny, a type (`a` all, `c` char, `b` block), a major and a minor
//! number (or any), and the access (`r` read, `w` write, `m` mknod). Later rules win.
//!
//! - **v1** (Documentation/admin-guide/cgroup-v1/devices.rst): the `devices` hierarchy keeps a
//!   default (allow or deny all) and a list of exceptions; writing `a` into `devices.deny`
//!   empties the list and denies by default, and each line written into `devices.allow` adds
//!   an exception. [`apply_v1`] writes exactly that.
//! - **v2** has no devices files: the check is an eBPF program of type
//!   `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the cgroup (Documentation/admin-guide/
//!   cgroup-v2.rst, "Device controller"). [`program`] generates it from the same rules, and
//!   [`attach_v2`] loads it with bpf(2) and attaches it to the cgroup directory.

use super::write_file;
use crate::explain::{self, Chapter};
use crate::state;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

/// Which devices a rule is about: `a` (all, char and block), `c` or `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum DeviceType {
    All,
    Char,
    Block,
}

/// The access bits, with the values of the kernel's `BPF_DEVCG_ACC_*` (include/uapi/linux/
/// bpf.h): mknod 1, read 2, write 4. The v1 files spell them `m`, `r`, `w`.
pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;
/// `rwm`.
pub const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// One rule of the devices allowlist. `None` for major or minor is the wildcard `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceType,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// A set of `ACC_*` bits.
    pub access: u8,
}

impl DeviceRule {
    /// An allow rule for a char device with all access: `c MAJOR:MINOR rwm`.
    pub const fn char_rwm(major: u32, minor: Option<u32>) -> DeviceRule {
        DeviceRule {
            allow: true,
            kind: DeviceType::Char,
            major: Some(major),
            minor,
            access: ACC_ALL,
        }
    }

    /// Builds a rule from the spec's fields: `type` (`a`, `c`, `b`; missing means `a`),
    /// `major`/`minor` (missing or -1 mean any), `access` (one or more of `r`, `w`, `m`).
    /// Errors: an unknown type or access letter, a number out of range, and a missing or empty
    /// access, which runc refuses too ("device access ... cannot be empty").
    pub fn from_spec(
        allow: bool,
        kind: Option<&str>,
        major: Option<i64>,
        minor: Option<i64>,
        access: Option<&str>,
    ) -> Result<DeviceRule> {
        let kind = match kind.unwrap_or("a") {
            "a" => DeviceType::All,
            "c" | "u" => DeviceType::Char,
            "b" => DeviceType::Block,
            other => bail!("device type \"{other}\" is not a, c or b"),
        };
        let number = |n: Option<i64>, what: &str| -> Result<Option<u32>> {
            match n {
                None | Some(-1) => Ok(None),
                Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(Some(n as u32)),
                Some(n) => bail!("device {what} number {n} out of range"),
            }
        };
        Ok(DeviceRule {
            allow,
            kind,
            major: number(major, "major")?,
            minor: number(minor, "minor")?,
            access: match access {
                None | Some("") => bail!("device access cannot be empty"),
                Some(access) => parse_access(access)?,
            },
        })
    }

    fn same_device(&self, other: &DeviceRule) -> bool {
        (self.kind, self.major, self.minor) == (other.kind, other.major, other.minor)
    }
}

/// Parses `rwm` (any subset, any order) into `ACC_*` bits; an empty string means `rwm`.
pub fn parse_access(text: &str) -> Result<u8> {
    if text.is_empty() {
        return Ok(ACC_ALL);
    }
    text.chars().try_fold(0, |bits, c| {
        Ok(bits
            | match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                other => bail!("device access \"{text}\": '{other}' is not r, w or m"),
            })
    })
}

/// The v1 line: `c 1:3 rwm`, `b *:* m`, `a *:* rwm`.
impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            DeviceType::All => 'a',
            DeviceType::Char => 'c',
            DeviceType::Block => 'b',
        };
        let number = |n: Option<u32>| n.map_or("*".to_owned(), |n| n.to_string());
        let mut access = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(c);
            }
        }
        let (major, minor) = (number(self.major), number(self.minor));
        write!(f, "{kind} {major}:{minor} {access}")
    }
}

// ANCHOR: default_allowed
/// The devices every container may use after the spec's rules, as runc appends them (its
/// `AllowedDevices`) and Docker's default list has them: mknod of any char or block device
/// (the node is useless without read or write), null, zero, full, random, urandom, tty,
/// ptmx, the pty slaves (136:*) and tun (10:200).
pub const DEFAULT_ALLOWED: &[DeviceRule] = &[
    DeviceRule {
        allow: true,
        kind: DeviceType::Char,
        major: None,
        minor: None,
        access: ACC_MKNOD,
    },
    DeviceRule {
        allow: true,
        kind: DeviceType::Block,
        major: None,
        minor: None,
        access: ACC_MKNOD,
    },
    DeviceRule::char_rwm(1, Some(3)),
    DeviceRule::char_rwm(1, Some(8)),
    DeviceRule::char_rwm(1, Some(7)),
    DeviceRule::char_rwm(5, Some(0)),
    DeviceRule::char_rwm(1, Some(5)),
    DeviceRule::char_rwm(1, Some(9)),
    DeviceRule::char_rwm(136, None),
    DeviceRule::char_rwm(5, Some(2)),
    DeviceRule::char_rwm(10, Some(200)),
];
// ANCHOR_END: default_allowed

// ANCHOR: effective
/// What a list of rules leaves in place, computed the way the v1 kernel applies them one by
/// one (devices.rst): a default for every device, and the exceptions to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effective {
    /// Allow everything not listed (a "blacklist"), or deny it (an allowlist).
    pub default_allow: bool,
    /// The exceptions, each with `allow == !default_allow`, one per device.
    pub exceptions: Vec<DeviceRule>,
}

/// Folds `rules` starting from "allow all" (what a new cgroup inherits from the root): a type
/// `a` rule resets the default and empties the list; a rule against the default adds an
/// exception (or access to an existing one); a rule agreeing with the default takes its access
/// away from the exception for exactly that device.
pub fn effective(rules: &[DeviceRule]) -> Effective {
    let mut out = Effective {
        default_allow: true,
        exceptions: Vec::new(),
    };
    for rule in rules {
        if rule.kind == DeviceType::All {
            out.default_allow = rule.allow;
            out.exceptions.clear();
        } else if rule.allow != out.default_allow {
            match out.exceptions.iter_mut().find(|e| e.same_device(rule)) {
                Some(existing) => existing.access |= rule.access,
                None => out.exceptions.push(*rule),
            }
        } else {
            for existing in out.exceptions.iter_mut().filter(|e| e.same_device(rule)) {
                existing.access &= !rule.access;
            }
            out.exceptions.retain(|e| e.access != 0);
        }
    }
    // In runc's order (and so the order devices.list shows): block before char, the wildcard
    // before any number.
    out.exceptions.sort_by_key(|e| {
        let number = |n: Option<u32>| n.map_or(-1, i64::from);
        (
            e.kind != DeviceType::Block,
            number(e.major),
            number(e.minor),
        )
    });
    out
}
// ANCHOR_END: effective

// ANCHOR: apply_v1
/// Writes `rules` into the v1 devices cgroup `dir`. With a deny-all default: `a` into
/// `devices.deny` (the kernel empties the list and denies everything), then each exception
/// into `devices.allow`. With an allow-all default the other way round; a list that allows
/// everything writes nothing, since a new cgroup inherits its parent's list.
pub fn apply_v1(dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    let effective = effective(rules);
    let (reset, except) = if effective.default_allow {
        ("devices.allow", "devices.deny")
    } else {
        ("devices.deny", "devices.allow")
    };
    if !(effective.default_allow && effective.exceptions.is_empty()) {
        write_file(dir, reset, "a", "reset the device rules")?;
    }
    for rule in &effective.exceptions {
        write_file(dir, except, &rule.to_string(), "add a device rule")
            .with_context(|| format!("device rule \"{rule}\""))?;
    }
    Ok(())
}
// ANCHOR_END: apply_v1

// ---------------------------------------------------------------------------------------------
// v2: the eBPF program. Documentation/bpf/standardization/instruction-set.rst gives the
// encoding: 8 bytes per instruction, `opcode`, `dst_reg:4 src_reg:4`, `offset` (s16), `imm`
// (s32). The opcode is class | operation | source (K = immediate, X = register).

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn` (include/uapi/linux/bpf.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// `dst_reg` in the low nibble, `src_reg` in the high one (little-endian bitfields).
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const _: () = assert!(std::mem::size_of::<Insn>() == 8);

/// dst = *(u32 *)(src + off): BPF_LDX | BPF_MEM | BPF_W.
pub const LDX_MEM_W: u8 = 0x01 | 0x60;
/// dst &= imm, 32-bit: BPF_ALU | BPF_AND | BPF_K.
pub const ALU32_AND_K: u8 = 0x04 | 0x50;
/// dst >>= imm, 32-bit: BPF_ALU | BPF_RSH | BPF_K.
pub const ALU32_RSH_K: u8 = 0x04 | 0x70;
/// dst = imm, 32-bit: BPF_ALU | BPF_MOV | BPF_K.
pub const ALU32_MOV_K: u8 = 0x04 | 0xb0;
/// dst = src, 32-bit: BPF_ALU | BPF_MOV | BPF_X.
pub const ALU32_MOV_X: u8 = 0x04 | 0xb0 | 0x08;
/// if dst != imm goto pc + off: BPF_JMP | BPF_JNE | BPF_K.
pub const JMP_JNE_K: u8 = 0x05 | 0x50;
/// if dst != src goto pc + off: BPF_JMP | BPF_JNE | BPF_X.
pub const JMP_JNE_X: u8 = 0x05 | 0x50 | 0x08;
/// return r0: BPF_JMP | BPF_EXIT.
pub const JMP_EXIT: u8 = 0x05 | 0x90;

/// `BPF_DEVCG_DEV_BLOCK` and `BPF_DEVCG_DEV_CHAR`: the type half of `access_type`.
pub const DEV_BLOCK: i32 = 1;
pub const DEV_CHAR: i32 = 2;

impl Insn {
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | (dst & 0x0f),
            off,
            imm,
        }
    }

    pub fn dst(&self) -> u8 {
        self.regs & 0x0f
    }

    pub fn src(&self) -> u8 {
        self.regs >> 4
    }
}

// ANCHOR: ebpf_program
/// The program for `rules`. Its input (r1) is `struct bpf_cgroup_dev_ctx { u32 access_type;
/// u32 major; u32 minor; }`, where `access_type` is `(ACC_* << 16) | DEV_*`; it returns 1 to
/// allow and 0 to refuse (with EPERM). The shape is runc's: load the fields into r2..r5, then
/// one block per exception, last rule first, and the default at the end.
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let effective = effective(rules);
    let mut insns = vec![
        Insn::new(LDX_MEM_W, 2, 1, 0, 0),        // r2 = access_type
        Insn::new(ALU32_AND_K, 2, 0, 0, 0xffff), // r2 = device type
        Insn::new(LDX_MEM_W, 3, 1, 0, 0),        // r3 = access_type
        Insn::new(ALU32_RSH_K, 3, 0, 0, 16),     // r3 = requested access
        Insn::new(LDX_MEM_W, 4, 1, 4, 0),        // r4 = major
        Insn::new(LDX_MEM_W, 5, 1, 8, 0),        // r5 = minor
    ];
    for rule in effective.exceptions.iter().rev() {
        insns.extend(rule_block(rule));
    }
    insns.push(Insn::new(
        ALU32_MOV_K,
        0,
        0,
        0,
        i32::from(effective.default_allow),
    ));
    insns.push(Insn::new(JMP_EXIT, 0, 0, 0, 0));
    insns
}
// ANCHOR_END: ebpf_program

// ANCHOR: ebpf_rule_block
/// One rule: each check that fails jumps past the block to the next rule; a request that
/// passes them all gets the rule's verdict.
fn rule_block(rule: &DeviceRule) -> Vec<Insn> {
    // (code, dst, src, imm) of each check; the jump offsets are known once all are listed.
    let mut checks: Vec<(u8, u8, u8, i32)> = Vec::new();
    match rule.kind {
        DeviceType::Char => checks.push((JMP_JNE_K, 2, 0, DEV_CHAR)),
        DeviceType::Block => checks.push((JMP_JNE_K, 2, 0, DEV_BLOCK)),
        DeviceType::All => {}
    }
    if rule.access != ACC_ALL {
        // r1 = requested & allowed; if r1 != requested, something asked is not allowed.
        checks.push((ALU32_MOV_X, 1, 3, 0));
        checks.push((ALU32_AND_K, 1, 0, i32::from(rule.access)));
        checks.push((JMP_JNE_X, 1, 3, 0));
    }
    if let Some(major) = rule.major {
        checks.push((JMP_JNE_K, 4, 0, major as i32));
    }
    if let Some(minor) = rule.minor {
        checks.push((JMP_JNE_K, 5, 0, minor as i32));
    }
    let len = checks.len() + 2;
    let mut block: Vec<Insn> = checks
        .iter()
        .enumerate()
        .map(|(i, &(code, dst, src, imm))| {
            let off = if code & 0x07 == 0x05 { len - i - 1 } else { 0 };
            Insn::new(code, dst, src, off as i16, imm)
        })
        .collect();
    block.push(Insn::new(ALU32_MOV_K, 0, 0, 0, i32::from(rule.allow)));
    block.push(Insn::new(JMP_EXIT, 0, 0, 0, 0));
    block
}
// ANCHOR_END: ebpf_rule_block

/// Runs a generated program on one request, as the kernel would: for the tests, since
/// BPF_PROG_TEST_RUN does not support this program type. Only the instructions [`program`]
/// emits are understood. Returns the verdict (1 allow, 0 deny).
pub fn run(insns: &[Insn], kind: i32, access: u8, major: u32, minor: u32) -> Result<u32> {
    let mut reg = [0u64; 11];
    let ctx = [(i32::from(access) << 16 | kind) as u32, major, minor];
    let mut pc = 0usize;
    while let Some(insn) = insns.get(pc) {
        pc += 1;
        let (dst, src) = (usize::from(insn.dst()), usize::from(insn.src()));
        let imm32 = insn.imm as u32;
        match insn.code {
            LDX_MEM_W => reg[dst] = u64::from(ctx[insn.off as usize / 4]),
            ALU32_AND_K => reg[dst] = u64::from(reg[dst] as u32 & imm32),
            ALU32_RSH_K => reg[dst] = u64::from(reg[dst] as u32 >> imm32),
            ALU32_MOV_K => reg[dst] = u64::from(imm32),
            ALU32_MOV_X => reg[dst] = u64::from(reg[src] as u32),
            JMP_JNE_K if reg[dst] != insn.imm as i64 as u64 => pc += insn.off as usize,
            JMP_JNE_X if reg[dst] != reg[src] => pc += insn.off as usize,
            JMP_JNE_K | JMP_JNE_X => {}
            JMP_EXIT => return Ok(reg[0] as u32),
            other => bail!("instruction {other:#04x} at {} is not understood", pc - 1),
        }
    }
    bail!("the program ran off its end")
}

// ---------------------------------------------------------------------------------------------
// Caching, loading and attaching.

/// Bumped whenever the generator's output changes, so old cache files are not reused.
const GENERATOR_VERSION: &str = "minidock-devices-1";

/// The cache key of a rule list: sha256 of the generator version and the rules' JSON.
pub fn rules_key(rules: &[DeviceRule]) -> Result<String> {
    let json = serde_json::to_vec(rules).context("serialize the device rules")?;
    Ok(state::sha256_hex(&[
        GENERATOR_VERSION.as_bytes(),
        b"\0",
        &json,
    ]))
}

fn memo() -> &'static Mutex<HashMap<String, Arc<Vec<Insn>>>> {
    static MEMO: OnceLock<Mutex<HashMap<String, Arc<Vec<Insn>>>>> = OnceLock::new();
    MEMO.get_or_init(Default::default)
}

fn to_bytes(insns: &[Insn]) -> Vec<u8> {
    insns
        .iter()
        .flat_map(|i| {
            let mut b = vec![i.code, i.regs];
            b.extend(i.off.to_le_bytes());
            b.extend(i.imm.to_le_bytes());
            b
        })
        .collect()
}

fn from_bytes(bytes: &[u8]) -> Option<Vec<Insn>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(8) {
        return None;
    }
    let insns: Vec<Insn> = bytes
        .chunks_exact(8)
        .map(|b| Insn {
            code: b[0],
            regs: b[1],
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect();
    (insns.last()?.code == JMP_EXIT).then_some(insns)
}

// ANCHOR: devices_cached
/// Generates the program for `rules` at most once: first this process's memo, then
/// `cache_dir` (a file `devices-<key>.ebpf` per rule list, the directory created 0700), then
/// [`program`]. A cache that cannot be read or written is not an error.
pub fn compile_cached(rules: &[DeviceRule], cache_dir: Option<&Path>) -> Result<Arc<Vec<Insn>>> {
    let key = rules_key(rules)?;
    if let Some(insns) = memo().lock().expect("devices memo").get(&key) {
        return Ok(insns.clone());
    }
    let file = cache_dir.map(|dir| dir.join(format!("devices-{key}.ebpf")));
    let cached = file
        .as_ref()
        .and_then(|f| std::fs::read(f).ok())
        .and_then(|bytes| from_bytes(&bytes));
    let insns = Arc::new(cached.unwrap_or_else(|| {
        let insns = program(rules);
        if let (Some(dir), Some(file)) = (cache_dir, &file)
            && let Err(e) = state::write_cache_file(dir, file, &to_bytes(&insns))
        {
            explain::note(&format!("device program cache not written: {e:#}"));
        }
        insns
    }));
    memo()
        .lock()
        .expect("devices memo")
        .insert(key, insns.clone());
    Ok(insns)
}
// ANCHOR_END: devices_cached

/// bpf(2) commands and constants (include/uapi/linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Other programs may stay attached along the path (systemd's, a parent runtime's): all run,
/// and all must allow.
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;

/// The first fields of `union bpf_attr` for BPF_PROG_LOAD.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// The fields of `union bpf_attr` for BPF_PROG_ATTACH.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &T) -> std::io::Result<libc::c_long> {
    // SAFETY: attr points at a repr(C) prefix of union bpf_attr of the size passed; the
    // kernel reads only that many bytes (and treats the rest of the union as zero).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>(),
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

// ANCHOR: ebpf_load
/// Loads `insns` as a BPF_PROG_TYPE_CGROUP_DEVICE program (license "GPL", as runc uses) and
/// returns its descriptor. On a refusal by the verifier, the error carries its log.
pub fn load(insns: &[Insn]) -> Result<OwnedFd> {
    let license = c"GPL";
    let mut log = vec![0u8; 1 << 16];
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    attr.prog_name[..7].copy_from_slice(b"devices");
    explain::step(
        "load the device filter",
        || format!("bpf(BPF_PROG_LOAD, CGROUP_DEVICE, {} insns)", insns.len()),
        Chapter::Security,
    );
    let fd = match bpf(BPF_PROG_LOAD, &attr) {
        Ok(fd) => fd,
        Err(err) => {
            // Again with the verifier's log, to say why.
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = bpf(BPF_PROG_LOAD, &attr);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            bail!("bpf(BPF_PROG_LOAD) of the device filter: {err}; verifier: {text:?}");
        }
    };
    // SAFETY: a successful BPF_PROG_LOAD returns a new descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
// ANCHOR_END: ebpf_load

// ANCHOR: attach_v2
/// Generates (or takes from the cache) the program for `rules`, loads it and attaches it to
/// the cgroup2 directory `dir` (BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI). The
/// attachment keeps the program alive for as long as the cgroup exists; the descriptors are
/// closed on return.
pub fn attach_v2(dir: &Path, rules: &[DeviceRule], cache_dir: Option<&Path>) -> Result<()> {
    let insns = compile_cached(rules, cache_dir)?;
    let prog = load(&insns)?;
    let cgroup = std::fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    explain::step(
        "attach the device filter",
        || format!("bpf(BPF_PROG_ATTACH, {}, BPF_CGROUP_DEVICE)", dir.display()),
        Chapter::Security,
    );
    bpf(BPF_PROG_ATTACH, &attr).with_context(|| {
        format!(
            "bpf(BPF_PROG_ATTACH) of the device filter to {}",
            dir.display()
        )
    })?;
    Ok(())
}
// ANCHOR_END: attach_v2

#[cfg(test)]
mod tests;
