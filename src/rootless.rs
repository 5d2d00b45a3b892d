//! Rootless minidock: an unprivileged user runs containers inside a user namespace of its own,
//! as rootless Docker (rootlesskit) and podman do (user_namespaces(7), newuidmap(1)).
//!
//! When `minidock` starts with an effective uid other than 0, [`enter`] runs before anything
//! else. It joins the user and mount namespaces held by a long-lived *holder* process, making
//! the holder first when there is none:
//!
//! 1. a child unshares `CLONE_NEWUSER | CLONE_NEWNS` and waits;
//! 2. the parent maps it: uid 0 inside is the user, 1..=N the user's subordinate range from
//!    `/etc/subuid` (and `/etc/subgid`), written by the setuid helpers `newuidmap` and
//!    `newgidmap`, because only a privileged writer may map ids other than its own; without a
//!    range, the one id the user owns is mapped directly (setgroups denied first);
//! 3. the child becomes the holder (`minidock-holder`): it sleeps forever, so the namespaces
//!    outlive every command, and its pid is recorded in `$XDG_RUNTIME_DIR/minidock/holder.pid`;
//! 4. every command, the first included, setns(2)s into the holder's user namespace (which
//!    makes it root there, with every capability in it) and then its mount namespace, so the
//!    overlay mounts one command makes are the ones `rm` later unmounts.
//!
//! Inside, minidock is root of a namespace that owns nothing on the host: it can mount
//! overlay (with `userxattr`), proc, tmpfs and binds, make every other namespace, and chown
//! among the mapped ids. It cannot write the host's cgroups (see [`cgroup_for`]), make network
//! devices on the host's network, mknod devices, or reach any id it was not given.
//!
//! State lives where rootless podman keeps its own: images and containers under
//! `$XDG_DATA_HOME/minidock` (else `~/.local/share/minidock`), runtime state, locks and the
//! holder's pid under `$XDG_RUNTIME_DIR/minidock` (else `/tmp/minidock-run-UID`), both 0700.

use crate::cgroup::{self, Cgroup, Resources};
use crate::ns::{IdMapping, IdMaps};
use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, setns, unshare};
use nix::unistd::{ForkResult, Gid, Pid, Uid, User, fork};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The name the holder process shows in `ps` (`/proc/PID/comm`).
pub const HOLDER_NAME: &str = "minidock-holder";

/// The file under [`runtime_dir`] holding the holder's pid.
pub const HOLDER_PID_FILE: &str = "holder.pid";

/// A subordinate id range of `/etc/subuid` or `/etc/subgid` (subuid(5)): `count` ids from
/// `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubRange {
    pub start: u32,
    pub count: u32,
}

/// True when this process runs in a user namespace other than the host's: the rootless mode
/// every part of minidock adapts to (no cgroups without delegation, no bridge, no mknod).
pub fn active() -> bool {
    !crate::rootfs::in_initial_user_namespace()
}

/// `$XDG_DATA_HOME/minidock`, else `$HOME/.local/share/minidock`: the rootless state root
/// (images, containers, volumes).
pub fn data_root() -> PathBuf {
    match std::env::var_os("XDG_DATA_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("minidock"),
        _ => home().join(".local/share/minidock"),
    }
}

/// `$XDG_RUNTIME_DIR/minidock`, else `/tmp/minidock-run-UID` (UID: the user's id on the
/// host): runtime state, locks, sockets and the holder's pid.
pub fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("minidock"),
        _ => PathBuf::from(format!("/tmp/minidock-run-{}", host_uid())),
    }
}

/// The socket a rootless `minidock daemon` listens on by default, as rootless dockerd's
/// `$XDG_RUNTIME_DIR/docker.sock`: `$XDG_RUNTIME_DIR/minidock.sock`, else
/// `/tmp/minidock-run-UID/minidock.sock` (inside the user's 0700 runtime dir).
pub fn daemon_socket() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("minidock.sock"),
        _ => runtime_dir().join("minidock.sock"),
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| User::from_uid(Uid::current()).ok().flatten().map(|u| u.dir))
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// The user's uid on the host: the outside id that uid 0 maps to once inside.
fn host_uid() -> u32 {
    let outside = std::fs::read_to_string("/proc/self/uid_map")
        .ok()
        .and_then(|map| first_outside_of(&map, 0));
    outside.unwrap_or_else(|| Uid::current().as_raw())
}

/// The outside id that `inside` maps to in a uid_map or gid_map text.
fn first_outside_of(map: &str, inside: u32) -> Option<u32> {
    map.lines().find_map(|line| {
        let f: Vec<u32> = line
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        (f.len() == 3 && inside >= f[0] && inside - f[0] < f[2]).then(|| f[1] + (inside - f[0]))
    })
}

/// Docker's `net.ipv4.ping_group_range` for a container: `0 2147483647`, every group; in
/// rootless mode `0 LAST`, LAST the highest gid mapped here, because the kernel refuses a
/// range holding gids its user namespace does not map (EINVAL).
pub fn ping_group_range() -> String {
    let map = std::fs::read_to_string("/proc/self/gid_map").unwrap_or_default();
    let last = if active() { last_inside(&map) } else { None };
    format!("0 {}", last.unwrap_or(2_147_483_647))
}

/// The highest inside id of a uid_map or gid_map text.
fn last_inside(map: &str) -> Option<u32> {
    map_lines(map)
        .into_iter()
        .filter(|[_, _, count]| *count > 0)
        .map(|[inside, _, count]| inside.saturating_add(count - 1))
        .max()
        .map(|last| last.min(2_147_483_647))
}

// ANCHOR: sub_range
/// The first range of `user` (by name or by numeric id) in a subuid(5)/subgid(5) text:
/// lines of `NAME:START:COUNT`. `None` when the user has none.
pub fn sub_range(text: &str, name: &str, id: u32) -> Option<SubRange> {
    text.lines().find_map(|line| {
        let mut fields = line.trim().split(':');
        let (who, start, count) = (fields.next()?, fields.next()?, fields.next()?);
        if who != name && who.parse::<u32>().ok() != Some(id) {
            return None;
        }
        let (start, count) = (start.parse().ok()?, count.parse().ok()?);
        (count > 0).then_some(SubRange { start, count })
    })
}
// ANCHOR_END: sub_range

/// The user's subordinate uid and gid ranges from `/etc/subuid` and `/etc/subgid`; `None`
/// unless both exist.
pub fn user_ranges() -> Option<(SubRange, SubRange)> {
    let uid = Uid::current();
    let gid = Gid::current();
    let name = User::from_uid(uid).ok().flatten().map(|u| u.name)?;
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let uids = sub_range(&read("/etc/subuid"), &name, uid.as_raw())?;
    let gids = sub_range(&read("/etc/subgid"), &name, gid.as_raw())
        .or_else(|| sub_range(&read("/etc/subgid"), &name, uid.as_raw()))?;
    Some((uids, gids))
}

// ANCHOR: enter
/// Joins the holder's user and mount namespaces, making the holder first when none is
/// running (see the module docs). Call it first thing in `main`, while the process has one
/// thread: setns(2) into a user namespace refuses a multithreaded caller. The working
/// directory is kept (setns into a mount namespace moves it to that namespace's root).
pub fn enter() -> Result<()> {
    let dir = runtime_dir();
    crate::state::private_dir(&dir)?;
    let cwd = std::env::current_dir().ok();
    let holder = {
        let _lock = crate::state::lock_file(&dir.join("holder.lock"))?;
        match running_holder(&dir) {
            Some(pid) => pid,
            None => start_holder(&dir)?,
        }
    };
    join(holder)?;
    if let Some(cwd) = cwd {
        // A directory the namespace cannot see leaves the process at `/`, as `cd` fails.
        let _ = std::env::set_current_dir(cwd);
    }
    Ok(())
}
// ANCHOR_END: enter

/// The recorded holder, when it is still running as ours.
fn running_holder(dir: &Path) -> Option<Pid> {
    let text = std::fs::read_to_string(dir.join(HOLDER_PID_FILE)).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse::<u32>()
        .ok()?;
    (comm.trim_end() == HOLDER_NAME && uid == Uid::current().as_raw()).then(|| Pid::from_raw(pid))
}

/// Set once this process has joined the holder's namespaces ([`enter`]).
static JOINED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True once this process has joined the holder's user namespace: a command run by a user
/// other than root, whose host ids (a bundle's `uidMappings`) are the holder's parent's.
pub fn joined() -> bool {
    JOINED.load(std::sync::atomic::Ordering::Relaxed)
}

/// setns(2) into the holder's user namespace, then its mount namespace.
fn join(holder: Pid) -> Result<()> {
    let open = |ns: &str| -> Result<OwnedFd> {
        let path = format!("/proc/{holder}/ns/{ns}");
        Ok(std::fs::File::open(&path)
            .with_context(|| format!("opening {path}"))?
            .into())
    };
    let (user, mnt) = (open("user")?, open("mnt")?);
    setns(&user, CloneFlags::CLONE_NEWUSER)
        .context("setns into the rootless user namespace (is this process multithreaded?)")?;
    setns(&mnt, CloneFlags::CLONE_NEWNS).context("setns into the rootless mount namespace")?;
    // Root inside, with no supplementary groups of the host's (they would show as nogroup).
    let _ = nix::unistd::setgroups(&[]);
    JOINED.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// The name of the user on the host, who is root in the holder's namespace: what runc's
/// `list` shows as OWNER of a rootless container. `None` unless [`joined`].
pub fn host_user_name() -> Option<String> {
    if !joined() {
        return None;
    }
    let uid = Uid::from_raw(host_uid());
    let name = User::from_uid(uid).ok().flatten().map(|u| u.name);
    Some(name.unwrap_or_else(|| uid.to_string()))
}

// ANCHOR: holder_ids
/// A bundle's id mappings, whose host ids are the host's (as `runc --rootless` reads them),
/// rewritten into the ids of the holder's user namespace, the parent of the container's:
/// `holder_map` is that namespace's `uid_map` or `gid_map` text (`kind` names it in errors).
/// A mapping is split where the holder's ranges meet, so `0 1001 1` (the user itself) becomes
/// `0 0 1` and `1 100000 65536` (its subordinate range) `1 1 65536`. Errors: a host id the
/// holder does not map, which `newuidmap` would refuse too.
pub fn to_holder_ids(holder_map: &str, maps: &[IdMapping], kind: &str) -> Result<Vec<IdMapping>> {
    let holder = map_lines(holder_map);
    let mut out = Vec::new();
    for m in maps {
        let mut done = 0;
        while done < m.count {
            let (Some(host), Some(inside)) =
                (m.outside.checked_add(done), m.inside.checked_add(done))
            else {
                bail!("{kind}: {} {} {} overflows", m.inside, m.outside, m.count);
            };
            let Some([h_in, h_out, h_count]) = holder
                .iter()
                .copied()
                .find(|[_, o, c]| host >= *o && host - o < *c)
            else {
                bail!(
                    "{kind}: host id {host} is neither this user's own id nor in its \
                     subordinate range (/etc/subuid, /etc/subgid), so it cannot be mapped"
                );
            };
            let count = (h_count - (host - h_out)).min(m.count - done);
            let outside = h_in + (host - h_out);
            out.push(IdMapping {
                inside,
                outside,
                count,
            });
            done += count;
        }
    }
    Ok(out)
}
// ANCHOR_END: holder_ids

/// The `[inside, outside, count]` lines of a uid_map or gid_map text.
fn map_lines(map: &str) -> Vec<[u32; 3]> {
    map.lines()
        .filter_map(|line| {
            let f: Vec<u32> = line
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            <[u32; 3]>::try_from(f).ok()
        })
        .collect()
}

/// [`to_holder_ids`] for both maps, from this process's own `/proc/self/uid_map` and
/// `gid_map` (the holder's, once [`joined`]).
pub fn holder_id_maps(maps: &IdMaps) -> Result<IdMaps> {
    let read =
        |file: &str| std::fs::read_to_string(file).with_context(|| format!("reading {file}"));
    Ok(IdMaps {
        uids: to_holder_ids(&read("/proc/self/uid_map")?, &maps.uids, "uidMappings")?,
        gids: to_holder_ids(&read("/proc/self/gid_map")?, &maps.gids, "gidMappings")?,
    })
}

// ANCHOR: start_holder
/// Forks the holder, maps its new user namespace from outside, and records its pid.
fn start_holder(dir: &Path) -> Result<Pid> {
    let (ready_r, ready_w) = nix::unistd::pipe().context("pipe")?;
    let (go_r, go_w) = nix::unistd::pipe().context("pipe")?;
    // SAFETY: called while the process has one thread (see `enter`); the child only makes
    // system calls before it sleeps forever.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            drop((ready_r, go_w));
            holder_main(ready_w, go_r)
        }
        ForkResult::Parent { child } => {
            drop((ready_w, go_r));
            map_holder(child, ready_r, go_w)?;
            crate::state::write_atomic(
                &dir.join(HOLDER_PID_FILE),
                format!("{child}\n").as_bytes(),
            )?;
            Ok(child)
        }
    }
}

/// The parent's side: waits until the child has unshared (`ready`), writes its maps, and
/// tells it to go on or to end (`go`); a child that fails is reaped.
fn map_holder(child: Pid, ready: OwnedFd, go: OwnedFd) -> Result<()> {
    let mut byte = [0u8; 1];
    let unshared = std::fs::File::from(ready).read(&mut byte).unwrap_or(0) == 1;
    if !unshared {
        let _ = nix::sys::wait::waitpid(child, None);
        bail!(
            "unshare(CLONE_NEWUSER|CLONE_NEWNS) failed: user namespaces are disabled here (run \
             `minidock doctor`)"
        );
    }
    let mapped = map_ids(child);
    std::fs::File::from(go)
        .write_all(if mapped.is_ok() { b"g" } else { b"x" })
        .context("starting the holder")?;
    if mapped.is_err() {
        let _ = nix::sys::wait::waitpid(child, None);
    }
    mapped
}
// ANCHOR_END: start_holder

// ANCHOR: holder_main
/// The holder: unshare, say so, wait to be mapped, then sleep until killed.
fn holder_main(ready: OwnedFd, go: OwnedFd) -> ! {
    if unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).is_err() {
        std::process::exit(1);
    }
    let _ = std::fs::File::from(ready).write_all(b"r");
    let mut byte = [0u8; 1];
    if std::fs::File::from(go).read(&mut byte).unwrap_or(0) != 1 || byte[0] != b'g' {
        std::process::exit(1);
    }
    let _ = nix::unistd::setsid();
    let _ = nix::sys::prctl::set_name(c"minidock-holder");
    let _ = std::env::set_current_dir("/");
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in [0, 1, 2] {
            // SAFETY: dup2 onto the standard descriptors, which this process owns.
            unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd) };
        }
    }
    loop {
        nix::unistd::pause();
    }
}
// ANCHOR_END: holder_main

// ANCHOR: map_ids
/// Writes the holder's uid and gid maps: root inside is the user, and 1..=N its subordinate
/// range, through the setuid `newuidmap`/`newgidmap`; without a range, only the user's own ids
/// (which an unprivileged writer may map itself, with setgroups denied), said once.
fn map_ids(pid: Pid) -> Result<()> {
    let (uid, gid) = (Uid::current().as_raw(), Gid::current().as_raw());
    let Some((uids, gids)) = user_ranges() else {
        eprintln!(
            "minidock: no subordinate ids for uid {uid} in /etc/subuid and /etc/subgid: only \
             uid {uid} is mapped (to root); an image whose files belong to other ids cannot be \
             unpacked, and a container cannot run as another user (see `minidock doctor`)"
        );
        return crate::ns::write_id_maps(
            pid,
            &crate::ns::IdMaps::root_to(Uid::from_raw(uid), Gid::from_raw(gid)),
        );
    };
    run_map_helper("newuidmap", pid, uid, uids)?;
    run_map_helper("newgidmap", pid, gid, gids)
}

/// `newuidmap PID 0 ID 1 1 START COUNT` (or newgidmap).
fn run_map_helper(helper: &str, pid: Pid, id: u32, range: SubRange) -> Result<()> {
    let args = [
        pid.to_string(),
        "0".into(),
        id.to_string(),
        "1".into(),
        "1".into(),
        range.start.to_string(),
        range.count.to_string(),
    ];
    crate::explain::step(
        "map the subordinate ids with the setuid helper",
        || format!("{helper} {}", args.join(" ")),
        crate::explain::Chapter::Namespaces,
    );
    let out = Command::new(helper).args(&args).output().with_context(|| {
        format!("running {helper} (apt-get install uidmap; see `minidock doctor`)")
    })?;
    if !out.status.success() {
        bail!(
            "{helper} {} failed: {}",
            args.join(" "),
            crate::cli::quote(String::from_utf8_lossy(&out.stderr).trim_end())
        );
    }
    Ok(())
}
// ANCHOR_END: map_ids

// ANCHOR: cgroup_for
/// The cgroup of a rootless container. With a delegated cgroup v2 subtree
/// ([`delegated_base`], as systemd's `Delegate=yes` gives `user@UID.service`), the
/// container's cgroup is made in it, as `BASE/minidock/ID`, and limits work. Without one, limits (`-m`, `--cpus`, `--pids-limit`, ...) are
/// refused with what is missing, and a container without limits runs in no cgroup of its own.
pub fn cgroup_for(resources: &Resources, id: &str) -> Result<Cgroup> {
    let layout = cgroup::detect()?;
    if let Some(base) = delegated_base(&layout) {
        return Cgroup::create_delegated(&base, id, resources);
    }
    let limits: Vec<&str> = resources
        .controllers()
        .into_iter()
        .filter(|c| *c != "devices")
        .collect();
    if !limits.is_empty() {
        let what = format!("resource limits ({})", limits.join(", "));
        bail!(
            "{}; run without limits, or see `minidock doctor`",
            no_delegation(&layout, &what)
        );
    }
    Ok(Cgroup::none())
}
// ANCHOR_END: cgroup_for

/// What a rootless program says when `what` (a plural noun: "resource limits (memory)")
/// needs a delegated cgroup v2 subtree and [`delegated_base`] finds none: `rootless: WHAT
/// need a cgroup v2 subtree delegated to this user, and REASON` (the layout, or the missing
/// ownership).
pub fn no_delegation(layout: &cgroup::Layout, what: &str) -> String {
    format!(
        "rootless: {what} need a cgroup v2 subtree delegated to this user, and {}",
        no_delegation_reason(layout)
    )
}

/// Why no delegated subtree was found, in words.
fn no_delegation_reason(layout: &cgroup::Layout) -> String {
    if layout.kind != cgroup::Kind::V2 {
        return format!(
            "this host has the cgroup {} layout (delegation needs pure cgroup v2)",
            layout.kind.name()
        );
    }
    "no directory above this process's cgroup belongs to the user (systemd's Delegate=yes \
     does that for user@UID.service)"
        .to_owned()
}

/// The delegated cgroup v2 subtree: the topmost directory above this process's cgroup (its
/// own included) that belongs to its uid. `None` on v1 and hybrid hosts, or when there is none.
pub fn delegated_base(layout: &cgroup::Layout) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    if layout.kind != cgroup::Kind::V2 {
        return None;
    }
    let mount = layout.unified.clone()?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let relative = own.lines().find_map(|l| l.strip_prefix("0::"))?.to_owned();
    let uid = Uid::current().as_raw();
    let mut best = None;
    let mut dir = PathBuf::from(relative.trim_start_matches('/'));
    while !dir.as_os_str().is_empty() {
        if std::fs::metadata(mount.join(&dir)).is_ok_and(|meta| meta.uid() == uid) {
            best = Some(mount.join(&dir));
        }
        if !dir.pop() {
            break;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_ranges_are_found_by_name_or_id() {
        let text = "alice:100000:65536\n1001:200000:1000\nbob:300000:0\n";
        assert_eq!(
            sub_range(text, "alice", 1000),
            Some(SubRange {
                start: 100000,
                count: 65536
            })
        );
        assert_eq!(
            sub_range(text, "carol", 1001).map(|r| r.start),
            Some(200000)
        );
        assert_eq!(sub_range(text, "bob", 1002), None);
        assert_eq!(sub_range("garbage\n::\n", "x", 1), None);
    }

    #[test]
    fn host_ids_become_the_holders_ids() {
        let holder = "         0       1001          1\n         1     100000      65536\n";
        let m = |inside, outside, count| IdMapping {
            inside,
            outside,
            count,
        };
        assert_eq!(
            to_holder_ids(holder, &[m(0, 1001, 1)], "u").unwrap(),
            [m(0, 0, 1)]
        );
        assert_eq!(
            to_holder_ids(holder, &[m(0, 1001, 1), m(1, 100000, 65536)], "u").unwrap(),
            [m(0, 0, 1), m(1, 1, 65536)]
        );
        // A range that runs from the subordinate ids past their end is refused.
        let err = to_holder_ids(holder, &[m(0, 165000, 1000)], "u").unwrap_err();
        assert!(err.to_string().contains("host id 165536"), "{err}");
        assert!(to_holder_ids(holder, &[m(0, 5, 1)], "u").is_err());
        assert!(to_holder_ids(holder, &[m(u32::MAX, 1001, 2)], "u").is_err());
    }

    #[test]
    fn map_lookups_follow_the_ranges() {
        let map = "         0       1000          1\n         1     100000      65536\n";
        assert_eq!(first_outside_of(map, 0), Some(1000));
        assert_eq!(first_outside_of(map, 2), Some(100001));
        assert_eq!(first_outside_of(map, 65537), None);
        assert_eq!(last_inside(map), Some(65536));
        assert_eq!(last_inside("0 0 4294967295\n"), Some(2_147_483_647));
    }
}
