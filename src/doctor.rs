//! `minidock doctor`: checks this machine for everything minidock and the workshop need, and
//! says how to fix what is missing. Workshop rooms run it first.
//!
//! Every check asks the kernel or the filesystem directly; none trusts a version number.

use crate::ns::Namespace;
use serde::Serialize;
use std::path::Path;

/// One line of the report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// How to fix it, when not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

fn root() -> Check {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        Check::pass("root", "running as root (uid 0)")
    } else {
        Check::pass(
            "root",
            format!(
                "running as uid {uid}: rootless mode, in a user namespace of minidock's own \
                 (the rootless checks below)"
            ),
        )
    }
}

// ANCHOR: rootless_checks
/// What rootless mode needs (`crate::rootless`), checked as the user who will run it.
fn rootless() -> Vec<Check> {
    let mut checks = vec![sub_ids()];
    checks.extend(["newuidmap", "newgidmap"].map(id_map_helper));
    if let Ok(value) = std::fs::read_to_string("/proc/sys/kernel/unprivileged_userns_clone") {
        let name = "unprivileged_userns_clone";
        checks.push(if value.trim() == "0" {
            Check::fail(
                name,
                "kernel.unprivileged_userns_clone is 0",
                "sysctl -w kernel.unprivileged_userns_clone=1 (as root; persist it in /etc/sysctl.d)",
            )
        } else {
            Check::pass(name, format!("kernel.unprivileged_userns_clone is {}", value.trim()))
        });
    }
    checks.push(cgroup_delegation());
    checks.push(overlay_in_user_namespace());
    checks.push(user_mode_network());
    checks.push(tun_device());
    checks
}

/// slirp4netns and pasta open /dev/net/tun as the user.
fn tun_device() -> Check {
    let name = "/dev/net/tun";
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name)
    {
        Ok(_) => Check::pass(name, "readable and writable by this user"),
        Err(err) => Check::fail(
            name,
            format!("cannot be opened by this user ({err}): the default network cannot start"),
            "as root: chmod 0666 /dev/net/tun (Debian's udev default)",
        ),
    }
}
// ANCHOR_END: rootless_checks

/// The default network of a rootless container: slirp4netns, else pasta
/// (`net::usermode::Kind::rootless_default`); either installed is enough.
fn user_mode_network() -> Check {
    let name = "user-mode network";
    let found: Vec<String> = ["slirp4netns", "pasta"]
        .into_iter()
        .filter_map(|p| which(p).map(|path| path.display().to_string()))
        .collect();
    if found.is_empty() {
        return Check::fail(
            name,
            "neither slirp4netns nor pasta is installed: the default network cannot start",
            "apt-get install slirp4netns (or passt, for pasta) (as root)",
        );
    }
    let default = crate::net::usermode::Kind::rootless_default().name();
    Check::pass(name, format!("{} (default: {default})", found.join(", ")))
}

fn sub_ids() -> Check {
    let name = "subordinate ids";
    let uid = nix::unistd::getuid();
    let user = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name);
    match crate::rootless::user_ranges() {
        Some((uids, gids)) => Check::pass(
            name,
            format!(
                "{user}: uids {}+{}, gids {}+{} in /etc/subuid and /etc/subgid",
                uids.start, uids.count, gids.start, gids.count
            ),
        ),
        None => Check::fail(
            name,
            format!(
                "no range for {user} in /etc/subuid and /etc/subgid: only uid {uid} can be mapped"
            ),
            format!(
                "as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user} \
                 (a range no other user has)"
            ),
        ),
    }
}

/// `newuidmap`/`newgidmap`: installed, and setuid root (or with file capabilities), because
/// only a privileged writer may map ids other than its own.
fn id_map_helper(helper: &str) -> Check {
    use std::os::unix::fs::MetadataExt;
    let fix = "apt-get install uidmap (as root)";
    let Some(path) = which(helper) else {
        return Check::fail(helper, "not installed", fix);
    };
    let meta = match std::fs::metadata(&path) {
        Ok(meta) => meta,
        Err(err) => return Check::fail(helper, format!("{}: {err}", path.display()), fix),
    };
    let setuid = meta.mode() & 0o4000 != 0 && meta.uid() == 0;
    let caps = crate::image::layer::beneath::lgetxattr(&path, "security.capability")
        .ok()
        .flatten()
        .is_some();
    if setuid || caps {
        let how = if setuid {
            "setuid root"
        } else {
            "file capabilities"
        };
        Check::pass(helper, format!("{} ({how})", path.display()))
    } else {
        Check::fail(
            helper,
            format!(
                "{} is neither setuid root nor given capabilities",
                path.display()
            ),
            format!(
                "chmod u+s {} (as root), or reinstall uidmap",
                path.display()
            ),
        )
    }
}

fn cgroup_delegation() -> Check {
    let name = "cgroup delegation";
    let Ok(layout) = crate::cgroup::detect() else {
        return Check::fail(name, "no cgroup layout", "mount cgroup2 at /sys/fs/cgroup");
    };
    match crate::rootless::delegated_base(&layout) {
        Some(base) => Check::pass(
            name,
            format!("containers' cgroups go under {}/minidock", base.display()),
        ),
        None if layout.kind != crate::cgroup::Kind::V2 => Check::fail(
            name,
            format!(
                "the {} layout cannot delegate: -m, --cpus and --pids-limit are refused",
                layout.kind.name()
            ),
            "boot with systemd.unified_cgroup_hierarchy=1 (pure cgroup v2), then log in again",
        ),
        None => Check::fail(
            name,
            "no directory above this process's cgroup belongs to you: -m, --cpus and \
             --pids-limit are refused",
            "as root: mkdir /etc/systemd/system/user@.service.d and give it delegate.conf with \
             [Service] Delegate=cpu cpuset io memory pids; systemctl daemon-reload; log in again",
        ),
    }
}

/// Mounts an overlay with `userxattr` in a throwaway child's own user and mount namespaces.
fn overlay_in_user_namespace() -> Check {
    let name = "overlay in a user namespace";
    let fix = "use Linux 5.11 or later (overlayfs in user namespaces): rootless containers need it";
    let Ok(dir) = tempfile::tempdir() else {
        return Check::fail(
            name,
            "cannot make a temp dir",
            "set TMPDIR to a writable directory",
        );
    };
    for sub in ["lower", "upper", "work", "merged"] {
        if std::fs::create_dir(dir.path().join(sub)).is_err() {
            return Check::fail(
                name,
                "cannot make a temp dir",
                "set TMPDIR to a writable directory",
            );
        }
    }
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    let options = format!(
        "lowerdir={0}/lower,upperdir={0}/upper,workdir={0}/work,userxattr",
        dir.path().display()
    );
    // SAFETY: the child only makes system calls and leaves with _exit.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            // The exit status names the step that failed.
            let step = (|| -> Result<(), i32> {
                use nix::sched::CloneFlags;
                nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
                    .map_err(|_| 2)?;
                // Its own maps, from inside: setgroups denied first, as for any unprivileged
                // writer (user_namespaces(7)).
                let write = |file: &str, text: String| {
                    std::fs::write(format!("/proc/self/{file}"), text).map_err(|_| 3)
                };
                write("setgroups", "deny".into())?;
                write("uid_map", format!("0 {uid} 1"))?;
                write("gid_map", format!("0 {gid} 1"))?;
                nix::mount::mount(
                    Some("overlay"),
                    &dir.path().join("merged"),
                    Some("overlay"),
                    nix::mount::MsFlags::empty(),
                    Some(options.as_str()),
                )
                .map_err(|errno| 10 + (errno as i32).min(100))
            })();
            // SAFETY: leave the forked copy immediately.
            unsafe { libc::_exit(step.err().unwrap_or(0)) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => match crate::ns::wait_for(child) {
            Ok(0) => Check::pass(name, "mount -t overlay -o userxattr works"),
            Ok(2) => Check::fail(name, "unshare(CLONE_NEWUSER|CLONE_NEWNS) failed", fix),
            Ok(3) => Check::fail(name, "writing the uid/gid maps failed", fix),
            Ok(code) if code > 10 => Check::fail(
                name,
                format!(
                    "mount -t overlay -o userxattr was refused: {}",
                    nix::errno::Errno::from_raw(code as i32 - 10).desc()
                ),
                fix,
            ),
            _ => Check::fail(name, "the checking process failed", fix),
        },
        Err(errno) => Check::fail(name, format!("fork failed: {errno}"), "retry"),
    }
}

fn namespaces() -> Vec<Check> {
    Namespace::ALL
        .iter()
        .map(|ns| {
            let name = format!("{} namespace", ns.proc_name());
            let path = format!("/proc/self/ns/{}", ns.proc_name());
            if Path::new(&path).exists() {
                Check::pass(name, format!("{path} exists"))
            } else {
                Check::fail(
                    name,
                    format!("{path} is missing"),
                    "use a kernel built with this namespace (CONFIG_*_NS=y); any distribution kernel has it",
                )
            }
        })
        .collect()
}

/// Tries to create a user namespace in a throwaway child, because the sysctls that can forbid
/// it differ between distributions (max_user_namespaces, Debian's unprivileged_userns_clone,
/// Ubuntu's AppArmor restriction).
fn user_namespaces() -> Check {
    let name = "user namespaces";
    let max = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .unwrap_or_default()
        .trim()
        .to_owned();
    if max == "0" {
        return Check::fail(
            name,
            "user.max_user_namespaces is 0",
            "sysctl -w user.max_user_namespaces=15000",
        );
    }
    // SAFETY: the child only calls unshare and _exit.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let ok = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_ok();
            // SAFETY: leave the forked copy immediately.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => match crate::ns::wait_for(child) {
            Ok(0) => Check::pass(name, format!("unshare(CLONE_NEWUSER) works (max {max})")),
            _ => Check::fail(
                name,
                "unshare(CLONE_NEWUSER) failed",
                "sysctl -w kernel.unprivileged_userns_clone=1 (Debian) or check AppArmor's userns restriction (Ubuntu)",
            ),
        },
        Err(errno) => Check::fail(name, format!("fork failed: {errno}"), "retry"),
    }
}

fn cgroups() -> Vec<Check> {
    let layout = match crate::cgroup::detect() {
        Ok(layout) => layout,
        Err(err) => {
            return vec![Check::fail(
                "cgroup layout",
                format!("{err:#}"),
                "mount cgroup2 at /sys/fs/cgroup (systemd does this on every modern distribution)",
            )];
        }
    };
    let mut checks = vec![Check::pass(
        "cgroup layout",
        layout
            .describe()
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("cgroup layout: ")
            .to_owned(),
    )];
    for controller in ["memory", "cpu", "pids"] {
        let name = format!("cgroup {controller} controller");
        checks.push(match layout.controller(controller) {
            Some(found) => Check::pass(
                name,
                format!("{} at {}", found.version, found.mount.display()),
            ),
            None => Check::fail(
                name,
                "not available",
                format!(
                    "enable it: on v2, echo +{controller} > /sys/fs/cgroup/cgroup.subtree_control; check the kernel command line for cgroup_disable={controller}"
                ),
            ),
        });
    }
    checks
}

fn overlayfs() -> Check {
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if filesystems.lines().any(|l| l.ends_with("\toverlay")) {
        return Check::pass("overlayfs", "listed in /proc/filesystems");
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let module = Path::new("/lib/modules")
        .join(&release)
        .join("kernel/fs/overlayfs");
    if module.exists() {
        Check::fail(
            "overlayfs",
            "built as a module, not loaded yet",
            "modprobe overlay",
        )
    } else {
        Check::fail(
            "overlayfs",
            "not in /proc/filesystems",
            "use a kernel with CONFIG_OVERLAY_FS",
        )
    }
}

/// Finds an executable on PATH (or the usual sbin directories, which root's PATH may lack).
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|dir| Path::new(dir).join(program))
        .find(|candidate| {
            use std::os::unix::fs::PermissionsExt;
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn nat_backends() -> Vec<Check> {
    let fix = "apt-get install iptables nftables";
    let mut checks: Vec<Check> = ["iptables-nft", "iptables-legacy", "nft"]
        .into_iter()
        .map(|tool| match which(tool) {
            Some(path) => Check::pass(format!("NAT backend {tool}"), path.display().to_string()),
            None => Check::fail(format!("NAT backend {tool}"), "not installed", fix),
        })
        .collect();
    // One backend is enough to run containers; report the others as information only.
    if checks.iter().any(|c| c.ok) {
        for check in checks.iter_mut().filter(|c| !c.ok) {
            check.ok = true;
            check.detail = "not installed (optional: another backend is)".into();
            check.fix = None;
        }
    }
    checks
}

/// True when the ELF file at `path` has no program interpreter (PT_INTERP), i.e. it is
/// statically linked and will run inside a rootfs that has no libc.
pub fn is_static_elf(path: &Path) -> std::io::Result<bool> {
    let bytes = std::fs::read(path)?;
    let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not a 64-bit ELF file");
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return Err(invalid());
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
    };
    // ELF64 header: e_phoff at 0x20, e_phentsize at 0x36, e_phnum at 0x38 (elf(5)).
    let phoff = u64_at(0x20).ok_or_else(invalid)?;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        let entry = phoff + i * phentsize;
        let kind = bytes
            .get(entry..entry + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .ok_or_else(invalid)?;
        if kind == PT_INTERP {
            return Ok(false);
        }
    }
    Ok(true)
}

fn busybox() -> Check {
    let path = Path::new("/bin/busybox");
    match is_static_elf(path) {
        Ok(true) => Check::pass("busybox-static", "/bin/busybox is statically linked"),
        Ok(false) => Check::fail(
            "busybox-static",
            "/bin/busybox is dynamically linked",
            "apt-get install busybox-static",
        ),
        Err(_) => Check::fail(
            "busybox-static",
            "/bin/busybox not found",
            "apt-get install busybox-static",
        ),
    }
}

fn seccomp() -> Check {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if status.lines().any(|l| l.starts_with("Seccomp:")) {
        Check::pass("seccomp", "the kernel supports seccomp filters")
    } else {
        Check::fail(
            "seccomp",
            "no Seccomp field in /proc/self/status",
            "use a kernel with CONFIG_SECCOMP_FILTER",
        )
    }
}

/// Runs every check.
pub fn run() -> Vec<Check> {
    let mut checks = vec![root()];
    checks.extend(namespaces());
    checks.push(user_namespaces());
    if !nix::unistd::geteuid().is_root() {
        checks.extend(rootless());
    }
    checks.extend(cgroups());
    checks.push(overlayfs());
    checks.extend(nat_backends());
    checks.push(seccomp());
    checks.push(busybox());
    checks
}

/// The human report: ✔/✘, the finding, and the fix.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for check in checks {
        let mark = if check.ok { "✔" } else { "✘" };
        out.push_str(&format!("{mark} {:<29} {}\n", check.name, check.detail));
        if let Some(fix) = &check.fix {
            out.push_str(&format!("  {:<29} fix: {fix}\n", ""));
        }
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        out.push_str("all checks passed: this machine can run minidock and the workshop\n");
    } else {
        out.push_str(&format!("{failed} check(s) failed: see the fixes above\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_static_binary_has_no_interpreter() {
        // The test binary itself is dynamically linked (unless built with crt-static).
        let me = std::env::current_exe().unwrap();
        let dynamic = !is_static_elf(&me).unwrap();
        let static_build = cfg!(target_feature = "crt-static");
        assert_eq!(dynamic, !static_build);
        assert!(
            is_static_elf(Path::new("/etc/passwd")).is_err() || !Path::new("/etc/passwd").exists()
        );
    }

    #[test]
    fn the_report_shows_fixes_for_failures() {
        let text = render(&[
            Check::pass("root", "uid 0"),
            Check::fail("overlayfs", "missing", "modprobe overlay"),
        ]);
        assert!(text.contains("✔ root"));
        assert!(text.contains("✘ overlayfs"));
        assert!(text.contains("fix: modprobe overlay"));
        assert!(text.contains("1 check(s) failed"));
    }
}
