//! Security defaults, as Docker's: what still separates a root process in a container from
//! root on the host once the namespaces are in place.
//!
//! Namespaces give the container its own view of the system; they do not take power away. A
//! process that is root inside could still load a kernel module, read physical memory through
//! `/proc/kcore` or reboot the machine. Docker stacks four more layers, and so does minidock:
//!
//! 1. [`caps`]: drop most of root's capabilities (CAP_SYS_ADMIN, CAP_SYS_MODULE...).
//! 2. [`set_no_new_privs`]: no execve can gain privileges again (setuid bits, file caps).
//! 3. [`seccomp`]: a syscall filter refuses the calls that reach kernel-global state.
//! 4. [`paths`]: mask or make read-only the parts of /proc and /sys that are the host's.
//!
//! Pure functions build the data that goes into `config.json` ([`container_security`]); the
//! `apply_*` functions make the system calls in the container's child process.
//!
//! # Order in the child, between pivot_root and execve
//!
//! ```text
//! paths::apply_readonly_paths(linux.readonlyPaths)     after /proc and /sys are mounted
//! paths::apply_masked_paths(linux.maskedPaths)
//! [seccomp::install(program)]      only if seccomp AND NOT noNewPrivileges (see below)
//! caps::apply_bounding_set(caps)   needs CAP_SETPCAP, so before capset
//! caps::keep_capabilities_across_setuid()              only if the user changes
//! <setgroups, setresgid, setresuid>
//! caps::apply_process_capabilities(caps)               capset + ambient
//! set_no_new_privs()                                   if process.noNewPrivileges
//! seccomp::install(program)                            if seccomp and noNewPrivileges
//! execve
//! ```
//!
//! Compile the filter before clone ([`seccomp::compile_cached`], in the parent), so the child
//! only installs it. The filter goes last, so it does not filter the runtime's own setup
//! calls. The kernel accepts a filter only from a process with no_new_privs or CAP_SYS_ADMIN;
//! when the spec does not ask for no_new_privs (Docker's default), the filter must be installed
//! while CAP_SYS_ADMIN is still effective, before the capabilities are dropped: that is what
//! runc does. The calls left after it (capset, prctl, setresuid, execve) are all in Docker's
//! allowlist.

pub mod caps;
pub mod paths;
pub mod seccomp;
mod syscalls_x86_64;

use crate::explain;
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxCapabilities, LinuxSeccomp};

// ANCHOR: nnp
/// Sets no_new_privs on the calling thread (prctl(2), `PR_SET_NO_NEW_PRIVS`). From then on,
/// execve never grants privileges: setuid and setgid bits and file capabilities are ignored.
/// It is inherited by every child and can never be unset. It is also what lets an
/// unprivileged process install a seccomp filter.
pub fn set_no_new_privs() -> Result<()> {
    explain::trace!(Security: "forbid gaining privileges on execve"
        => "prctl(PR_SET_NO_NEW_PRIVS, 1)");
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("prctl(PR_SET_NO_NEW_PRIVS, 1)");
    }
    Ok(())
}
// ANCHOR_END: nnp

/// Whether no_new_privs is set on the calling thread.
pub fn no_new_privs() -> Result<bool> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error()).context("prctl(PR_GET_NO_NEW_PRIVS)");
    }
    Ok(rc == 1)
}

/// What `--security-opt seccomp=...` asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum SeccompChoice {
    /// Docker's default profile, resolved against the container's capabilities.
    #[default]
    Default,
    /// `seccomp=unconfined`: no filter at all.
    Unconfined,
    /// `seccomp=/path/profile.json`: this profile, in the OCI `linux.seccomp` shape.
    Profile(LinuxSeccomp),
}

/// The security flags of `minidock run`, with Docker's defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecurityOptions {
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `--privileged`: every capability, no seccomp, no masked or read-only paths.
    pub privileged: bool,
    pub seccomp: SeccompChoice,
    /// `--security-opt no-new-privileges`. Off by default, as in Docker: setuid programs
    /// inside the image (su, ping on some distributions) keep working.
    pub no_new_privileges: bool,
}

impl SecurityOptions {
    /// Applies one `--security-opt` value. Docker accepts `key=value` and the older
    /// `key:value`: `seccomp=unconfined`, `seccomp=FILE`, `no-new-privileges[=true|false]`.
    pub fn add_security_opt(&mut self, opt: &str) -> Result<()> {
        let (key, value) = match opt.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        match (key, value) {
            ("no-new-privileges", None) => self.no_new_privileges = true,
            ("no-new-privileges", Some(v)) => {
                self.no_new_privileges = v.parse().map_err(|_| {
                    anyhow::anyhow!("invalid --security-opt {opt:?}: expected true or false")
                })?
            }
            ("seccomp", Some("unconfined")) => self.seccomp = SeccompChoice::Unconfined,
            ("seccomp", Some(path)) if !path.is_empty() => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("read seccomp profile {path}"))?;
                let profile: LinuxSeccomp = serde_json::from_str(&text).with_context(|| {
                    format!("seccomp profile {path} is not an OCI linux.seccomp")
                })?;
                self.seccomp = SeccompChoice::Profile(profile);
            }
            _ => bail!(
                "invalid --security-opt {opt:?}: minidock knows seccomp=unconfined, seccomp=FILE and no-new-privileges"
            ),
        }
        Ok(())
    }
}

/// The security part of a container's OCI spec: what goes into `process.capabilities`,
/// `process.noNewPrivileges`, `linux.seccomp`, `linux.maskedPaths` and `linux.readonlyPaths`.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSecurity {
    pub capabilities: LinuxCapabilities,
    pub no_new_privileges: bool,
    pub seccomp: Option<LinuxSeccomp>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
}

// ANCHOR: container_security
/// Turns `minidock run`'s flags into the security fields of the OCI spec, as Docker does for
/// `docker run`. `uid` is the container process's user (capabilities are shaped by it).
///
/// `--privileged` removes the confinement: all capabilities, no seccomp filter, nothing masked
/// or read-only (and, in the runtime, the host's devices).
pub fn container_security(opts: &SecurityOptions, uid: u32) -> Result<ContainerSecurity> {
    let caps = caps::container_capabilities(&opts.cap_add, &opts.cap_drop, opts.privileged)?;
    let seccomp = match (&opts.seccomp, opts.privileged) {
        (_, true) | (SeccompChoice::Unconfined, _) => None,
        (SeccompChoice::Default, false) => Some(seccomp::default_profile(&caps)),
        (SeccompChoice::Profile(profile), false) => Some(profile.clone()),
    };
    let (masked_paths, readonly_paths) = if opts.privileged {
        (Vec::new(), Vec::new())
    } else {
        (
            paths::default_masked_paths(),
            paths::default_readonly_paths(),
        )
    };
    Ok(ContainerSecurity {
        capabilities: caps::oci_capabilities(&caps, uid),
        no_new_privileges: opts.no_new_privileges,
        seccomp,
        masked_paths,
        readonly_paths,
    })
}
// ANCHOR_END: container_security

#[cfg(test)]
mod tests {
    use super::*;
    use caps::CapMasks;

    #[test]
    fn docker_defaults() {
        let sec = container_security(&SecurityOptions::default(), 0).unwrap();
        assert_eq!(CapMasks::from_oci(&sec.capabilities).bounding, 0xa80425fb);
        assert!(sec.seccomp.is_some());
        assert!(!sec.no_new_privileges);
        assert!(sec.masked_paths.contains(&"/proc/kcore".to_string()));
        assert!(sec.readonly_paths.contains(&"/proc/sys".to_string()));
    }

    #[test]
    fn privileged_and_unconfined() {
        let privileged = SecurityOptions {
            privileged: true,
            ..Default::default()
        };
        let sec = container_security(&privileged, 0).unwrap();
        assert!(sec.seccomp.is_none());
        assert!(sec.masked_paths.is_empty() && sec.readonly_paths.is_empty());
        assert_eq!(
            CapMasks::from_oci(&sec.capabilities).bounding.count_ones() as usize,
            caps::CAPABILITY_TABLE.len()
        );

        let mut opts = SecurityOptions::default();
        opts.add_security_opt("seccomp=unconfined").unwrap();
        opts.add_security_opt("no-new-privileges").unwrap();
        let sec = container_security(&opts, 1000).unwrap();
        assert!(sec.seccomp.is_none());
        assert!(sec.no_new_privileges);
        assert!(!sec.masked_paths.is_empty());
        assert_eq!(CapMasks::from_oci(&sec.capabilities).effective, 0);
    }

    #[test]
    fn cap_add_changes_the_seccomp_profile_too() {
        let opts = SecurityOptions {
            cap_add: vec!["sys_admin".into()],
            ..Default::default()
        };
        let sec = container_security(&opts, 0).unwrap();
        let program = seccomp::compile(sec.seccomp.as_ref().unwrap()).unwrap();
        let mount = seccomp::syscall_number("mount").unwrap();
        let verdict = program
            .run(&seccomp::SeccompData::x86_64(i64::from(mount), &[]))
            .unwrap();
        assert_eq!(verdict, seccomp::RET_ALLOW);
    }

    #[test]
    fn security_opt_parsing() {
        let mut opts = SecurityOptions::default();
        opts.add_security_opt("no-new-privileges:true").unwrap();
        assert!(opts.no_new_privileges);
        opts.add_security_opt("no-new-privileges=false").unwrap();
        assert!(!opts.no_new_privileges);
        assert!(opts.add_security_opt("no-new-privileges=maybe").is_err());
        assert!(opts.add_security_opt("apparmor=docker-default").is_err());
        assert!(opts.add_security_opt("seccomp=").is_err());
        let err = opts
            .add_security_opt("seccomp=/nonexistent/profile.json")
            .unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/profile.json"));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.json");
        let profile = seccomp::default_profile(&caps::DOCKER_DEFAULT_CAPABILITIES);
        std::fs::write(&file, serde_json::to_string(&profile).unwrap()).unwrap();
        opts.add_security_opt(&format!("seccomp={}", file.display()))
            .unwrap();
        assert_eq!(opts.seccomp, SeccompChoice::Profile(profile));
        std::fs::write(&file, "{\"defaultAction\": 3}").unwrap();
        assert!(
            opts.add_security_opt(&format!("seccomp={}", file.display()))
                .is_err()
        );
    }
}
