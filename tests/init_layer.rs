//! The init layer and `export`, as Docker has them: a container's overlay has an init layer
//! between its image and its own changes (`/.dockerenv`, `/etc/mtab -> /proc/mounts`, empty
//! `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` and `/dev/console` to mount over, and the
//! mount point directories), so running a container writes nothing of its own; `commit` of an
//! unchanged container adds no layer (only a history entry marked `empty_layer`); `export`
//! writes the merged view, init layer included, with every file's xattrs.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A temp state root whose containers are removed on drop.
struct Env {
    root: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            root: tempfile::Builder::new()
                .prefix("minidock-init-layer")
                .tempdir()
                .unwrap(),
        }
    }

    fn output(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_minidock"))
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        common::ok_stdout(args, &self.output(args))
    }

    fn inspect(&self, args: &[&str]) -> serde_json::Value {
        let all: serde_json::Value = serde_json::from_str(&self.ok(args)).unwrap();
        all[0].clone()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let ids = self.output(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.output(&["rm", "-f", id]);
        }
        let root = self.root.path().to_string_lossy().into_owned();
        assert!(common::mounts_containing(&root).is_empty());
    }
}

/// Sets the xattr `name` of `path` (not following a symlink).
fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let name = std::ffi::CString::new(name).unwrap();
    // SAFETY: NUL-terminated strings and a buffer of the length given.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "lsetxattr: {}", std::io::Error::last_os_error());
}

/// A file capability for cap_net_raw (VFS_CAP_REVISION_2, permitted, effective).
const CAP_NET_RAW: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Imports busybox as `bb:1`, with a file that has xattrs, as GNU tar writes them.
fn import_busybox(env: &Env) {
    let rootfs = common::busybox_rootfs();
    let file = rootfs.path().join("capable");
    std::fs::write(&file, b"x").unwrap();
    set_xattr(&file, "security.capability", &CAP_NET_RAW);
    set_xattr(&file, "user.note", b"kept");
    let tar = rootfs.path().with_extension("tar");
    let status = Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "-C"])
        .arg(rootfs.path())
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    env.ok(&["import", tar.to_str().unwrap(), "bb:1"]);
    std::fs::remove_file(tar).unwrap();
}

/// Pax records as (key, value).
type Records = Vec<(String, Vec<u8>)>;

/// The entries of an exported archive: name (no `./`, no trailing `/`) and pax records.
fn exported(bytes: &[u8]) -> Vec<(String, Records)> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = name
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_owned();
        let mut records = Vec::new();
        if let Some(extensions) = entry.pax_extensions().unwrap() {
            for extension in extensions {
                let extension = extension.unwrap();
                records.push((
                    extension.key().unwrap().to_owned(),
                    extension.value_bytes().to_vec(),
                ));
            }
        }
        out.push((name, records));
    }
    out
}

#[test]
fn running_a_container_changes_nothing_and_its_commit_adds_no_layer() {
    if !common::require_busybox_overlay() {
        return;
    }
    let env = Env::new();
    import_busybox(&env);
    let id = env
        .ok(&["run", "-d", "--network", "none", "bb:1", "sleep", "1000"])
        .trim()
        .to_owned();
    // The runtime found every mount point in the init layer: the upper dir is still empty.
    let dir = env.root.path().join("containers").join(&id);
    let upper: Vec<_> = std::fs::read_dir(dir.join("upper"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(upper.is_empty(), "the upper dir holds {upper:?}");
    let mtab = env.ok(&["exec", &id, "readlink", "/etc/mtab"]);
    assert_eq!(mtab, "/proc/mounts\n");
    env.ok(&["exec", &id, "test", "-f", "/.dockerenv"]);

    env.ok(&["commit", &id, "same:1"]);
    let base = env.inspect(&["image", "inspect", "bb:1"]);
    let same = env.inspect(&["image", "inspect", "same:1"]);
    assert_eq!(same["RootFS"], base["RootFS"]);
    let history = env.ok(&["history", "same:1"]);
    let newest = history.lines().nth(1).unwrap();
    assert!(
        newest.contains("sleep 1000") && newest.contains(" 0B "),
        "{history}"
    );

    // A change is still a layer, and holds only that change.
    env.ok(&["exec", &id, "touch", "/new"]);
    env.ok(&["commit", &id, "changed:1"]);
    let changed = env.inspect(&["image", "inspect", "changed:1"]);
    assert_eq!(changed["RootFS"]["Layers"].as_array().unwrap().len(), 2);
}

#[test]
fn export_writes_the_merged_view_with_the_init_layer_and_xattrs() {
    if !common::require_busybox_overlay() {
        return;
    }
    let env = Env::new();
    import_busybox(&env);
    env.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "ex",
        "bb:1",
        "true",
    ]);
    let out = env.output(&["export", "ex"]);
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let entries = exported(&out.stdout);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    for wanted in [
        ".dockerenv",
        "dev/console",
        "dev/pts",
        "dev/shm",
        "etc/hostname",
        "etc/hosts",
        "etc/mtab",
        "etc/resolv.conf",
        "proc",
        "sys",
    ] {
        assert!(names.contains(&wanted), "no {wanted} in {names:?}");
    }
    let (_, records) = entries.iter().find(|(n, _)| n == "capable").unwrap();
    assert!(
        records.contains(&(
            "SCHILY.xattr.security.capability".to_owned(),
            CAP_NET_RAW.to_vec()
        )),
        "{records:?}"
    );
    assert!(
        records.contains(&("SCHILY.xattr.user.note".to_owned(), b"kept".to_vec())),
        "{records:?}"
    );
    assert!(
        !records.iter().any(|(k, _)| k.contains("overlay")),
        "{records:?}"
    );
}

/// Every container's overlay shares the one init layer of the state root, made once with
/// Docker's modes; a container's own directory holds no copy of it, so `run --rm` creates
/// and removes none of its files.
#[test]
fn containers_share_one_init_layer_made_once() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !common::require_busybox_overlay() {
        return;
    }
    let env = Env::new();
    import_busybox(&env);
    let shared = env.root.path().join("init-layer");
    let mut inodes = Vec::new();
    for _ in 0..2 {
        let id = env.ok(&["create", "--network", "none", "bb:1", "true"]);
        let id = id.trim();
        let inspect = env.inspect(&["inspect", id]);
        let lower = inspect["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap();
        let first = lower.split(':').next().unwrap();
        assert_eq!(Path::new(first), shared, "{lower}");
        let dir = env.root.path().join("containers").join(id);
        assert!(!dir.join("init").exists(), "{id} has its own init layer");
        inodes.push(std::fs::metadata(&shared).unwrap().ino());
    }
    assert_eq!(inodes[0], inodes[1], "the init layer was made again");
    for rel in [
        "",
        "dev",
        "dev/pts",
        "etc",
        "etc/hosts",
        ".dockerenv",
        "dev/console",
    ] {
        let meta = std::fs::metadata(shared.join(rel)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755, "{rel:?}");
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "{rel:?}");
    }
    let mtab = std::fs::read_link(shared.join("etc/mtab")).unwrap();
    assert_eq!(mtab, Path::new("/proc/mounts"));
    // No temp dir of its making is left in the root.
    let temps: Vec<_> = std::fs::read_dir(env.root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".init-layer"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
    // A `run --rm` leaves the shared layer as it was, and nothing of its own.
    env.ok(&["run", "--rm", "--network", "none", "bb:1", "true"]);
    let entries = std::fs::read_dir(&shared).unwrap().count();
    assert_eq!(entries, 5, "dev, etc, proc, sys, .dockerenv");
}

/// A killed first `create` leaves its half-made init layer in a temp dir; the next one that
/// makes the layer removes such a dir once it is over a minute old, and leaves a younger one,
/// which may belong to a `create` running at the same time.
#[test]
fn a_killed_init_layers_temp_dir_is_removed_by_the_next_create() {
    if !common::require_busybox_overlay() {
        return;
    }
    let env = Env::new();
    import_busybox(&env);
    let stale = env.root.path().join(".init-layer-killed");
    let young = env.root.path().join(".init-layer-running");
    for dir in [&stale, &young] {
        std::fs::create_dir_all(dir.join("etc")).unwrap();
    }
    let status = std::process::Command::new("touch")
        .args(["-d", "2 minutes ago"])
        .arg(&stale)
        .status()
        .unwrap();
    assert!(status.success());
    env.ok(&["run", "--rm", "--network", "none", "bb:1", "true"]);
    assert!(!stale.exists(), "the stale temp dir was left");
    assert!(young.exists(), "a young temp dir was removed");
}
