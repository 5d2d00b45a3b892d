//! The security defaults, checked against what the kernel reports.
//!
//! Every test confines a forked child, never the test process itself: capabilities, no_new_privs
//! and seccomp filters cannot be undone. Mounts (masks, read-only paths) happen inside a private
//! mount namespace that dies with the child, and anything touching the hostname inside a private
//! UTS namespace, so the host is never changed even if the code under test is wrong.

mod common;

use anyhow::{Context, Result, bail, ensure};
use minidock::security::{self, caps, paths, seccomp};
use nix::fcntl::OFlag;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, pipe2};
use oci_spec::runtime::{Capability, LinuxCapabilities};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// Runs `body` in a forked child. Ok(text the child printed to stdout) if it returned Ok,
/// else the child's error. The closure may end in execve, whose output is then captured.
fn in_child(body: impl FnOnce() -> Result<()>) -> Result<String, String> {
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).expect("pipe2");
    let (err_read, err_write) = pipe2(OFlag::O_CLOEXEC).expect("pipe2");
    // SAFETY: the child only runs `body` and then _exit()s; glibc keeps malloc usable after
    // fork, and the child touches no lock another test thread could hold.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            drop(read_end);
            drop(err_read);
            // The child's stdout is the pipe (dup2 clears close-on-exec on fd 1).
            // SAFETY: plain descriptor juggling in the child.
            unsafe { libc::dup2(write_end.as_raw_fd(), 1) };
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
            let (code, message) = match outcome {
                Ok(Ok(())) => (0, String::new()),
                Ok(Err(e)) => (1, format!("{e:#}")),
                Err(_) => (2, "the child panicked".to_string()),
            };
            let _ = nix::unistd::write(&err_write, message.as_bytes());
            // SAFETY: ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            drop(err_write);
            let stdout = read_all(read_end);
            let error = read_all(err_read);
            match waitpid(child, None).expect("waitpid") {
                WaitStatus::Exited(_, 0) if error.is_empty() => Ok(stdout),
                status => Err(format!("{error} ({status:?}); stdout: {stdout}")),
            }
        }
    }
}

fn read_all(fd: OwnedFd) -> String {
    let mut text = String::new();
    std::fs::File::from(fd)
        .read_to_string(&mut text)
        .expect("read pipe");
    text
}

/// The `errno` of a raw system call's result, or None when it succeeded.
fn errno_of(rc: libc::c_long) -> Option<i32> {
    (rc == -1).then(|| std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// One field of /proc/self/status.
fn status_field(name: &str) -> Result<String> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
        .with_context(|| format!("no {name} in /proc/self/status"))
}

fn status_mask(name: &str) -> Result<u64> {
    caps::parse_status_mask(&status_field(name)?)
}

/// A private mount namespace (and UTS namespace) for this child: nothing it mounts reaches
/// the host, and a hostname it writes stays its own.
fn private_namespaces() -> Result<()> {
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS).context("unshare")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("make / private")?;
    Ok(())
}

fn docker_default_caps() -> LinuxCapabilities {
    caps::oci_capabilities(&caps::DOCKER_DEFAULT_CAPABILITIES, 0)
}

fn finit_module_errno() -> Option<i32> {
    // SAFETY: an invalid fd and an empty string: with CAP_SYS_MODULE the kernel answers EBADF,
    // without it EPERM, and nothing is ever loaded. A kernel built without module support
    // answers ENOSYS either way.
    errno_of(unsafe { libc::syscall(libc::SYS_finit_module, -1, c"".as_ptr(), 0) })
}

#[test]
fn docker_default_capabilities_take_sys_admin_and_sys_module_away() {
    if !common::require_root() {
        return;
    }
    in_child(|| {
        private_namespaces()?;
        // Before: root can set the (private) hostname, and gets past the module capability
        // check, so the checks below can tell the difference.
        nix::unistd::sethostname("minidock-before").context("sethostname before the drop")?;
        let modules_before = finit_module_errno();
        ensure!(
            matches!(modules_before, Some(libc::EBADF | libc::ENOSYS)),
            "finit_module before the drop: {modules_before:?}"
        );

        caps::apply_capabilities(&docker_default_caps())?;

        let expected = caps::capability_mask(&caps::DOCKER_DEFAULT_CAPABILITIES);
        for (field, want) in [
            ("CapBnd", expected),
            ("CapEff", expected),
            ("CapPrm", expected),
            ("CapInh", 0),
            ("CapAmb", 0),
        ] {
            let got = status_mask(field)?;
            ensure!(got == want, "{field}: expected {want:016x}, got {got:016x}");
        }
        match nix::unistd::sethostname("minidock-after") {
            Err(nix::errno::Errno::EPERM) => {}
            other => bail!("sethostname without CAP_SYS_ADMIN: expected EPERM, got {other:?}"),
        }
        // CAP_SYS_MODULE (bit 16) is out of CapEff above; when this kernel can load modules at
        // all, the call must now stop at the capability check. (Without CONFIG_MODULES it is
        // ENOSYS whatever the capabilities; the seccomp test shows the filter refusing it.)
        let errno = finit_module_errno();
        if modules_before == Some(libc::EBADF) {
            ensure!(
                errno == Some(libc::EPERM),
                "finit_module: expected EPERM, got {errno:?}"
            );
        } else {
            ensure!(errno == Some(libc::ENOSYS), "finit_module: {errno:?}");
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn cap_add_and_ambient_capabilities_reach_the_kernel() {
    if !common::require_root() {
        return;
    }
    in_child(|| {
        let caps_list = caps::container_capabilities(
            &["net_admin".to_string()],
            &["CAP_CHOWN".to_string(), "mknod".to_string()],
            false,
        )?;
        let mut oci = caps::oci_capabilities(&caps_list, 0);
        let bind: oci_spec::runtime::Capabilities = [Capability::NetBindService].into();
        oci.set_inheritable(Some(bind.clone()));
        oci.set_ambient(Some(bind));
        caps::apply_capabilities(&oci)?;
        let bnd = status_mask("CapBnd")?;
        ensure!(
            bnd & (1 << 12) != 0,
            "CAP_NET_ADMIN added: CapBnd {bnd:016x}"
        );
        ensure!(
            bnd & 1 == 0 && bnd & (1 << 27) == 0,
            "CHOWN and MKNOD dropped: {bnd:016x}"
        );
        let amb = status_mask("CapAmb")?;
        ensure!(
            amb == 1 << 10,
            "CapAmb: expected NET_BIND_SERVICE only, got {amb:016x}"
        );
        Ok(())
    })
    .unwrap();
}

/// The sequence for a container user other than root: bounding set, keep capabilities,
/// switch user, then capset.
#[test]
fn capabilities_for_a_non_root_user_survive_the_user_switch() {
    if !common::require_root() {
        return;
    }
    let switch_user = || -> Result<()> {
        let id = nix::unistd::Uid::from_raw(1000);
        let gid = nix::unistd::Gid::from_raw(1000);
        nix::unistd::setgroups(&[]).context("setgroups")?;
        nix::unistd::setresgid(gid, gid, gid).context("setresgid")?;
        nix::unistd::setresuid(id, id, id).context("setresuid")?;
        Ok(())
    };
    // Docker's shape for a non-root user: only the bounding set.
    in_child(|| {
        let oci = caps::oci_capabilities(&caps::DOCKER_DEFAULT_CAPABILITIES, 1000);
        caps::apply_bounding_set(&oci)?;
        caps::keep_capabilities_across_setuid()?;
        switch_user()?;
        caps::apply_process_capabilities(&oci)?;
        let expected = caps::capability_mask(&caps::DOCKER_DEFAULT_CAPABILITIES);
        ensure!(status_mask("CapBnd")? == expected, "CapBnd");
        ensure!(
            status_mask("CapEff")? == 0 && status_mask("CapPrm")? == 0,
            "no caps left"
        );
        Ok(())
    })
    .unwrap();
    // A spec that does give the user a capability: it is still there after the switch.
    in_child(|| {
        let mut oci = caps::oci_capabilities(&caps::DOCKER_DEFAULT_CAPABILITIES, 0);
        let bind: oci_spec::runtime::Capabilities = [Capability::NetBindService].into();
        oci.set_effective(Some(bind.clone()));
        oci.set_permitted(Some(bind));
        caps::apply_bounding_set(&oci)?;
        caps::keep_capabilities_across_setuid()?;
        switch_user()?;
        caps::apply_process_capabilities(&oci)?;
        ensure!(nix::unistd::getuid().as_raw() == 1000, "uid");
        let eff = status_mask("CapEff")?;
        ensure!(
            eff == 1 << 10,
            "CapEff: expected NET_BIND_SERVICE, got {eff:016x}"
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn runc_spec_style_ambient_without_inheritable_is_skipped_not_fatal() {
    if !common::require_root() {
        return;
    }
    // `runc spec` asks for ambient AUDIT_WRITE, KILL, NET_BIND_SERVICE with no inheritable set.
    let runc_default = LinuxCapabilities::default();
    let mut runc_spec = runc_default.clone();
    runc_spec.set_inheritable(None);
    in_child(|| {
        caps::apply_capabilities(&runc_spec)?;
        let want = caps::capability_mask(runc_spec.bounding().as_ref().unwrap());
        ensure!(status_mask("CapEff")? == want, "CapEff");
        ensure!(
            status_mask("CapAmb")? == 0,
            "no ambient capability could be raised"
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn privileged_applies_even_when_the_runtime_lacks_a_capability() {
    if !common::require_root() {
        return;
    }
    let held = std::fs::read_to_string("/proc/self/status").unwrap();
    let held = held
        .lines()
        .find_map(|l| l.strip_prefix("CapPrm:"))
        .map(|v| caps::parse_status_mask(v).unwrap())
        .unwrap();
    in_child(|| {
        caps::apply_capabilities(&caps::oci_capabilities(&caps::all_capabilities(), 0))?;
        let eff = status_mask("CapEff")?;
        ensure!(
            eff == held,
            "CapEff: expected the runtime's own {held:016x}, got {eff:016x}"
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn no_new_privs_shows_in_proc_status() {
    if !common::require_root() {
        return;
    }
    in_child(|| {
        ensure!(status_field("NoNewPrivs")? == "0", "NoNewPrivs before");
        security::set_no_new_privs()?;
        ensure!(status_field("NoNewPrivs")? == "1", "NoNewPrivs after");
        ensure!(security::no_new_privs()?, "PR_GET_NO_NEW_PRIVS");
        Ok(())
    })
    .unwrap();
}

fn unshare_user_errno() -> Option<i32> {
    // SAFETY: plain syscall; on success only this (child) process changes namespace.
    errno_of(unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER) })
}

fn clone3_errno() -> Option<i32> {
    // SAFETY: a NULL argument struct of size 0: the kernel refuses it (EINVAL) before anything.
    errno_of(unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0) })
}

fn add_key_errno() -> Option<i32> {
    // SAFETY: NULL pointers: unfiltered, the kernel answers EFAULT and adds nothing.
    errno_of(unsafe { libc::syscall(libc::SYS_add_key, 0, 0, 0, 0, 0) })
}

fn keyctl_errno() -> Option<i32> {
    // SAFETY: KEYCTL_GET_KEYRING_ID of the process keyring, without creating it.
    errno_of(unsafe { libc::syscall(libc::SYS_keyctl, 0, -2, 0) })
}

/// Forks and waits; true if the grandchild ran and exited 0.
fn fork_works() -> Result<bool> {
    // SAFETY: the grandchild exits at once.
    match unsafe { fork() }.context("fork under seccomp")? {
        ForkResult::Child => unsafe { libc::_exit(0) },
        ForkResult::Parent { child } => {
            Ok(matches!(waitpid(child, None)?, WaitStatus::Exited(_, 0)))
        }
    }
}

/// Checks what the default filter lets through, from inside a filtered process.
fn check_default_filter() -> Result<()> {
    ensure!(status_field("Seccomp")? == "2", "Seccomp: 2 (filter mode)");
    for (what, errno, want) in [
        ("keyctl", keyctl_errno(), libc::EPERM),
        ("add_key", add_key_errno(), libc::EPERM),
        ("unshare(CLONE_NEWUSER)", unshare_user_errno(), libc::EPERM),
        ("clone3", clone3_errno(), libc::ENOSYS),
        ("finit_module", finit_module_errno(), libc::EPERM),
    ] {
        ensure!(
            errno == Some(want),
            "{what}: expected errno {want}, got {errno:?}"
        );
    }
    // SAFETY: clone with a namespace flag and no stack: refused before it runs.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::CLONE_NEWUSER | libc::SIGCHLD,
            0,
            0,
            0,
            0,
        )
    };
    ensure!(
        errno_of(rc) == Some(libc::EPERM),
        "clone(CLONE_NEWUSER): {rc}"
    );
    ensure!(nix::unistd::getpid().as_raw() > 0, "getpid");
    nix::unistd::write(std::io::stdout(), b"write ok\n").context("write")?;
    ensure!(fork_works()?, "fork");
    let answer = std::thread::spawn(|| 42)
        .join()
        .map_err(|_| anyhow::anyhow!("thread"))?;
    ensure!(
        answer == 42,
        "a thread (clone3 gets ENOSYS, glibc falls back to clone)"
    );
    Ok(())
}

#[test]
fn the_default_seccomp_profile_blocks_and_allows_what_docker_does() {
    if !common::require_root() {
        return;
    }
    // The same calls without the filter, so the test can tell the filter's answer from the
    // kernel's: root may unshare a user namespace, and the bad arguments give other errors.
    let unfiltered = in_child(|| {
        // Before the unshare below: in a new user namespace we would lose CAP_SYS_MODULE and
        // get EPERM from the kernel itself (on kernels that have module support).
        let module = finit_module_errno();
        ensure!(
            module != Some(libc::EPERM),
            "finit_module unfiltered: {module:?}"
        );
        ensure!(add_key_errno() == Some(libc::EFAULT), "add_key unfiltered");
        ensure!(clone3_errno() == Some(libc::EINVAL), "clone3 unfiltered");
        ensure!(
            unshare_user_errno().is_none(),
            "unshare(CLONE_NEWUSER) unfiltered"
        );
        Ok(())
    });
    assert_eq!(unfiltered, Ok(String::new()));

    let profile = seccomp::default_profile(&caps::DOCKER_DEFAULT_CAPABILITIES);
    let program = seccomp::compile(&profile).unwrap();
    let out = in_child(|| {
        security::set_no_new_privs()?;
        seccomp::install(&program)?;
        check_default_filter()
    })
    .unwrap();
    assert_eq!(out, "write ok\n");
}

#[test]
fn a_program_from_the_disk_cache_is_accepted_by_the_kernel() {
    if !common::require_root() {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let mut profile = seccomp::default_profile(&caps::DOCKER_DEFAULT_CAPABILITIES);
    profile.set_default_errno_ret(Some(libc::EACCES as u32)); // unique to this test
    seccomp::compile_cached(&profile, Some(cache.path())).unwrap();
    let key = seccomp::profile_key(&profile).unwrap();
    let bytes = std::fs::read(cache.path().join(format!("seccomp-{key}.bpf"))).unwrap();
    let program = seccomp::Program::from_bytes(&bytes).unwrap();
    in_child(|| {
        security::set_no_new_privs()?;
        seccomp::install(&program)?;
        let errno = keyctl_errno();
        ensure!(
            errno == Some(libc::EACCES),
            "keyctl: expected EACCES, got {errno:?}"
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn installing_without_no_new_privs_or_cap_sys_admin_is_refused() {
    if !common::require_root() {
        return;
    }
    let program = seccomp::compile(&seccomp::default_profile(&[])).unwrap();
    let err = in_child(|| {
        caps::apply_capabilities(&docker_default_caps())?;
        seccomp::install(&program)
    })
    .unwrap_err();
    assert!(
        err.contains("EACCES") || err.contains("Permission denied"),
        "{err}"
    );
    assert!(
        err.contains("no_new_privs"),
        "the error explains the fix: {err}"
    );
}

/// The masked files and directories that exist here and have something to hide.
fn non_empty_masked_paths() -> (Vec<String>, Vec<String>) {
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    for path in paths::default_masked_paths() {
        let p = Path::new(&path);
        if p.is_dir() && std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_some()) {
            dirs.push(path);
        } else if p.is_file() && std::fs::read(p).is_ok_and(|b| !b.is_empty()) {
            files.push(path);
        }
    }
    (files, dirs)
}

#[test]
fn masked_paths_read_empty_and_missing_ones_are_skipped() {
    if !common::require_root() {
        return;
    }
    let (files, dirs) = non_empty_masked_paths();
    let what = "a masked file and directory with content on this host (/proc/keys, /sys/firmware)";
    if !common::prerequisite(!files.is_empty() && !dirs.is_empty(), what) {
        return;
    }
    in_child(|| {
        private_namespaces()?;
        // Every default path, existing or not (this kernel lacks some: they are skipped).
        paths::apply_masked_paths(&paths::default_masked_paths())?;
        paths::mask_path(Path::new("/proc/minidock-does-not-exist"))?;

        let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
        for file in &files {
            let bytes = std::fs::read(file)?;
            ensure!(
                bytes.is_empty(),
                "masked {file} still reads {} bytes",
                bytes.len()
            );
            ensure!(
                mounts
                    .lines()
                    .any(|l| l.split(' ').nth(4) == Some(file.as_str())),
                "{file} is a mount point"
            );
        }
        for dir in &dirs {
            let entries = std::fs::read_dir(dir)?.count();
            ensure!(entries == 0, "masked {dir} lists {entries} entries");
            match std::fs::write(format!("{dir}/minidock-x"), b"x") {
                Err(e) if e.raw_os_error() == Some(libc::EROFS) => {}
                other => bail!("writing into masked {dir}: {other:?}"),
            }
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn readonly_paths_refuse_writes_and_keep_their_flags() {
    if !common::require_root() {
        return;
    }
    in_child(|| {
        private_namespaces()?;
        // Private UTS namespace: this write changes only the child's own hostname.
        std::fs::write("/proc/sys/kernel/hostname", "minidock-rw")
            .context("/proc/sys is writable before")?;

        paths::apply_readonly_paths(&paths::default_readonly_paths())?;

        match std::fs::write("/proc/sys/kernel/hostname", "minidock-ro") {
            Err(e) if e.raw_os_error() == Some(libc::EROFS) => {}
            other => bail!("write to read-only /proc/sys: expected EROFS, got {other:?}"),
        }
        // Opened for writing, never written: the open itself must fail. (Some kernels, such
        // as this VM's, are built without sysrq.)
        if Path::new("/proc/sysrq-trigger").exists() {
            match std::fs::OpenOptions::new()
                .write(true)
                .open("/proc/sysrq-trigger")
            {
                Err(e) if e.raw_os_error() == Some(libc::EROFS) => {}
                other => {
                    bail!("open /proc/sysrq-trigger for writing: expected EROFS, got {other:?}")
                }
            }
        }
        // Each existing path is now its own read-only mount, and keeps the other flags of the
        // /proc mount it came from (nosuid, nodev, noexec, relatime... whatever they were).
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
        let options_of = |mount_point: &str| -> Result<Vec<String>> {
            let line = mounts
                .lines()
                .rfind(|l| l.split(' ').nth(4) == Some(mount_point))
                .with_context(|| format!("{mount_point} is a mount point"))?;
            let mut options: Vec<String> = line
                .split(' ')
                .nth(5)
                .unwrap_or_default()
                .split(',')
                .map(str::to_string)
                .collect();
            options.sort();
            Ok(options)
        };
        let mut expected = options_of("/proc")?;
        expected
            .iter_mut()
            .filter(|o| *o == "rw")
            .for_each(|o| *o = "ro".into());
        expected.sort();
        for path in paths::default_readonly_paths() {
            if Path::new(&path).exists() {
                let options = options_of(&path)?;
                ensure!(
                    options == expected,
                    "{path}: options {options:?}, expected {expected:?}"
                );
            }
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn symlinks_are_never_mount_targets() {
    if !common::require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink("/etc", &link).unwrap();
    let link_for_child = link.clone();
    let err = in_child(move || {
        private_namespaces()?;
        paths::mask_path(&link_for_child)
    })
    .unwrap_err();
    assert!(err.contains("symlink"), "{err}");
    let err = in_child(move || {
        private_namespaces()?;
        paths::readonly_path(&link)
    })
    .unwrap_err();
    assert!(err.contains("symlink"), "{err}");
}

/// The whole sequence a runtime runs between pivot_root and execve, then execve: what the
/// container's program sees afterwards, from its own /proc/self/status.
#[test]
fn everything_together_survives_execve() {
    if !common::require_root() {
        return;
    }
    let busybox = Path::new("/bin/busybox");
    if !common::prerequisite(busybox.exists(), "/bin/busybox (busybox-static)") {
        return;
    }
    let sec = security::container_security(
        &security::SecurityOptions {
            no_new_privileges: true,
            ..Default::default()
        },
        0,
    )
    .unwrap();
    let program = seccomp::compile(sec.seccomp.as_ref().unwrap()).unwrap();
    let interrupts = std::fs::read("/proc/interrupts").unwrap_or_default();
    if !common::prerequisite(!interrupts.is_empty(), "/proc/interrupts with content") {
        return;
    }
    let script = "grep -E '^(CapBnd|CapEff|CapInh|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status; \
                  wc -c < /proc/interrupts; \
                  (echo x > /proc/sys/kernel/hostname) 2>/dev/null || echo hostname-refused; \
                  hostname minidock-x 2>/dev/null || echo sethostname-refused";
    let out = in_child(|| {
        private_namespaces()?;
        paths::apply_readonly_paths(&sec.readonly_paths)?;
        paths::apply_masked_paths(&sec.masked_paths)?;
        caps::apply_bounding_set(&sec.capabilities)?;
        caps::apply_process_capabilities(&sec.capabilities)?;
        security::set_no_new_privs()?;
        seccomp::install(&program)?;
        let err = exec(&["/bin/busybox", "sh", "-c", script]);
        bail!("execve: {err}")
    })
    .unwrap();
    let lines: Vec<&str> = out.lines().map(|l| l.trim()).collect();
    let field = |name: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("{name} missing in {out}"))
    };
    assert_eq!(field("CapBnd"), "00000000a80425fb", "{out}");
    assert_eq!(field("CapEff"), "00000000a80425fb", "{out}");
    assert_eq!(field("CapInh"), "0000000000000000", "{out}");
    assert_eq!(field("CapAmb"), "0000000000000000", "{out}");
    assert_eq!(field("NoNewPrivs"), "1", "{out}");
    assert_eq!(field("Seccomp"), "2", "{out}");
    assert!(
        lines.contains(&"0"),
        "masked /proc/interrupts has 0 bytes: {out}"
    );
    assert!(lines.contains(&"hostname-refused"), "{out}");
    assert!(lines.contains(&"sethostname-refused"), "{out}");
}

/// execv, returning only on failure.
fn exec(argv: &[&str]) -> std::io::Error {
    let args: Vec<std::ffi::CString> = argv
        .iter()
        .map(|a| std::ffi::CString::new(*a).expect("no NUL"))
        .collect();
    let _ = nix::unistd::execv(&args[0], &args);
    std::io::Error::last_os_error()
}
