//! A process's whole mount namespace, seen from the host: a `chroot` hides the old root from
//! the process's own `/proc/self/mountinfo`, never from here.

use std::io::BufRead;
use std::process::{Child, ChildStdout, Command, Stdio};

/// What is left of a child's stdout after [`start_until_ready`].
pub type Rest = std::io::BufReader<ChildStdout>;

/// `(major:minor, root)` of this process's mount at `/` (mountinfo fields 3 and 4, proc(5)):
/// a namespace holding a mount with both has the host's root in it.
pub fn host_root_mount() -> (String, String) {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .rev()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f.len() > 4 && f[4] == "/")
        .map(|f| (f[2].to_owned(), f[3].to_owned()))
        .expect("no mount at / in /proc/self/mountinfo")
}

/// `pid` and its descendants, parents first (from /proc/PID/task/PID/children).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut family = vec![pid];
    let mut i = 0;
    while i < family.len() {
        let p = family[i];
        let children =
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        family.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
        i += 1;
    }
    family
}

/// The mountinfo of each mount namespace, other than this test's, that `pid` or one of its
/// descendants is in, read from the namespace's own root with setns(2).
pub fn descendant_namespaces_mountinfo(pid: u32) -> Vec<String> {
    let own = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let mut seen = Vec::new();
    let mut tables = Vec::new();
    for p in descendants(pid) {
        let Ok(ns) = std::fs::read_link(format!("/proc/{p}/ns/mnt")) else {
            continue;
        };
        if ns == own || seen.contains(&ns) {
            continue;
        }
        seen.push(ns);
        tables.push(minidock::workshop::namespace_mountinfo(p).unwrap());
    }
    tables
}

/// The mount points in `mountinfo` of the host's root filesystem at its root: the old root.
pub fn old_root_mounts(mountinfo: &str) -> Vec<String> {
    let (dev, root) = host_root_mount();
    mountinfo
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .filter(|f| f.len() > 4 && f[2] == dev && f[3] == root)
        .map(|f| f[4].to_owned())
        .collect()
}

/// Starts `cmd` with stdin and stdout piped and reads its stdout until the line `ready`: the
/// command then waits on its stdin (`read x`), alive to be looked at. Returns the child, the
/// lines before `ready` and the rest of its stdout; closing the child's stdin lets it finish.
pub fn start_until_ready(cmd: &mut Command, ready: &str) -> (Child, Vec<String>, Rest) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 && line.trim_end() != ready {
        lines.push(line.trim_end().to_owned());
        line.clear();
    }
    if line.trim_end() != ready {
        let status = child.wait();
        panic!("the command ended ({status:?}) before {ready:?}: {lines:?}");
    }
    (child, lines, stdout)
}
