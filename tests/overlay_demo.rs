//! overlay-demo and the overlay/layer library: copy-up, whiteouts, opaque directories,
//! shadowing, shared lowers, the CLI's errors, and diff -> apply round trips checked against
//! the kernel's own merged view.

mod common;

use assert_cmd::Command;
use minidock::image::layer::{self, ApplyOptions, Compression};
use minidock::overlay;
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

fn scratch(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("minidock-overlay-{tag}-"))
        .tempdir()
        .unwrap()
}

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn mkdirs(root: &Path, dirs: &[&str]) {
    for d in dirs {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: NUL-terminated strings, value from one slice.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr {name} on {}", path.display());
}

fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: NUL-terminated strings; buf valid for its length.
    let rc = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if rc < 0 {
        return None;
    }
    buf.truncate(rc as usize);
    Some(buf)
}

fn user_xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: as above.
    let rc = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if rc <= 0 {
        return Vec::new();
    }
    buf.truncate(rc as usize);
    let mut out: Vec<(String, Vec<u8>)> = buf
        .split(|&b| b == 0)
        .filter(|n| n.starts_with(b"user."))
        .map(|n| {
            let name = String::from_utf8_lossy(n).into_owned();
            let value = get_xattr(path, &name).unwrap_or_default();
            (name, value)
        })
        .collect();
    out.sort();
    out
}

/// A layer stack with its own upper, work and merged dirs, unmounted on drop.
struct Stack {
    tmp: tempfile::TempDir,
    mount: Option<overlay::OverlayMount>,
}

impl Stack {
    fn new(tag: &str, layers: &[&str]) -> Stack {
        let tmp = scratch(tag);
        mkdirs(tmp.path(), &["upper", "work", "merged"]);
        mkdirs(tmp.path(), layers);
        Stack { tmp, mount: None }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Mounts with `lowers` given top first.
    fn mount(&mut self, lowers: &[&str]) {
        let lowers: Vec<PathBuf> = lowers.iter().map(|l| self.p(l)).collect();
        self.mount = Some(
            overlay::mount(
                &lowers,
                &self.p("upper"),
                &self.p("work"),
                &self.p("merged"),
            )
            .unwrap(),
        );
    }

    fn unmount(&mut self) {
        if let Some(mut m) = self.mount.take() {
            m.unmount().unwrap();
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.unmount();
    }
}

// ---------------------------------------------------------------- overlay rules

#[test]
fn copy_up_puts_a_copy_in_upper_and_leaves_the_lower_untouched() {
    if !common::require_root() {
        return;
    }
    let mut s = Stack::new("copyup", &["lower"]);
    write(&s.p("lower/etc/motd"), "image\n");
    s.mount(&["lower"]);
    assert!(!s.p("upper/etc/motd").exists());
    std::fs::write(s.p("merged/etc/motd"), "container\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(s.p("upper/etc/motd")).unwrap(),
        "container\n"
    );
    assert_eq!(
        std::fs::read_to_string(s.p("lower/etc/motd")).unwrap(),
        "image\n"
    );
    assert_eq!(
        std::fs::read_to_string(s.p("merged/etc/motd")).unwrap(),
        "container\n"
    );
}

#[test]
fn deleting_a_lower_file_leaves_a_whiteout() {
    if !common::require_root() {
        return;
    }
    let mut s = Stack::new("whiteout", &["lower"]);
    write(&s.p("lower/bin/tool"), "x");
    s.mount(&["lower"]);
    std::fs::remove_file(s.p("merged/bin/tool")).unwrap();
    let meta = std::fs::symlink_metadata(s.p("upper/bin/tool")).unwrap();
    assert!(meta.file_type().is_char_device());
    assert_eq!(meta.rdev(), 0);
    assert!(overlay::is_whiteout(&meta));
    assert!(s.p("lower/bin/tool").exists());
    assert!(!s.p("merged/bin/tool").exists());
}

#[test]
fn recreating_a_lower_directory_makes_it_opaque() {
    if !common::require_root() {
        return;
    }
    let mut s = Stack::new("opaque", &["lower"]);
    write(&s.p("lower/data/a"), "a");
    write(&s.p("lower/data/b"), "b");
    s.mount(&["lower"]);
    std::fs::remove_dir_all(s.p("merged/data")).unwrap();
    std::fs::create_dir(s.p("merged/data")).unwrap();
    assert!(overlay::is_opaque(&s.p("upper/data")).unwrap());
    assert_eq!(std::fs::read_dir(s.p("merged/data")).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(s.p("lower/data")).unwrap().count(), 2);
}

#[test]
fn the_leftmost_lower_shadows_the_others() {
    if !common::require_root() {
        return;
    }
    let mut s = Stack::new("shadow", &["top", "mid", "base"]);
    for layer in ["top", "mid", "base"] {
        write(&s.p(&format!("{layer}/who")), layer);
        write(&s.p(&format!("{layer}/only-{layer}")), layer);
    }
    write(&s.p("base/only-below-top"), "base");
    write(&s.p("mid/only-below-top"), "mid");
    s.mount(&["top", "mid", "base"]);
    assert_eq!(std::fs::read_to_string(s.p("merged/who")).unwrap(), "top");
    assert_eq!(
        std::fs::read_to_string(s.p("merged/only-below-top")).unwrap(),
        "mid"
    );
    for layer in ["top", "mid", "base"] {
        assert!(s.p(&format!("merged/only-{layer}")).exists());
    }
}

#[test]
fn two_mounts_share_a_lower_and_keep_their_own_changes() {
    if !common::require_root() {
        return;
    }
    let mut a = Stack::new("share-a", &["image"]);
    write(&a.p("image/file"), "shared\n");
    let mut b = Stack::new("share-b", &[]);
    let image = a.p("image");
    b.mount = Some(
        overlay::mount(
            std::slice::from_ref(&image),
            &b.p("upper"),
            &b.p("work"),
            &b.p("merged"),
        )
        .unwrap(),
    );
    a.mount(&["image"]);
    let ino = |p: PathBuf| std::fs::metadata(p).unwrap().ino();
    assert_eq!(ino(a.p("merged/file")), ino(image.join("file")));
    assert_eq!(ino(b.p("merged/file")), ino(image.join("file")));
    std::fs::write(a.p("merged/file"), "changed by a\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(b.p("merged/file")).unwrap(),
        "shared\n"
    );
    assert_eq!(
        std::fs::read_to_string(image.join("file")).unwrap(),
        "shared\n"
    );
}

#[test]
fn unmount_is_idempotent_and_leak_keeps_the_mount() {
    if !common::require_root() {
        return;
    }
    let s = Stack::new("leak", &["lower"]);
    let m = overlay::mount(&[s.p("lower")], &s.p("upper"), &s.p("work"), &s.p("merged")).unwrap();
    let merged = m.leak();
    assert_eq!(
        overlay::mount_type(&merged).unwrap().as_deref(),
        Some("overlay")
    );
    overlay::unmount(&merged).unwrap();
    assert_eq!(overlay::mount_type(&merged).unwrap(), None);
    overlay::unmount(&merged).unwrap();
    let mut m =
        overlay::mount(&[s.p("lower")], &s.p("upper"), &s.p("work"), &s.p("merged")).unwrap();
    m.unmount().unwrap();
    m.unmount().unwrap();
    drop(m);
    assert_eq!(overlay::mount_type(&merged).unwrap(), None);
}

// ---------------------------------------------------------------- the CLI

#[test]
fn cli_mount_and_umount() {
    if !common::require_root() {
        return;
    }
    let s = Stack::new("cli", &["a", "b"]);
    write(&s.p("a/x"), "from a");
    write(&s.p("b/x"), "from b");
    let lower = format!("{}:{}", s.p("a").display(), s.p("b").display());
    Command::cargo_bin("overlay-demo")
        .unwrap()
        .args(["-q", "mount", "--lower", &lower, "--upper"])
        .arg(s.p("upper"))
        .arg("--work")
        .arg(s.p("work"))
        .arg(s.p("merged"))
        .assert()
        .success()
        .stdout(format!("mounted overlay on {}\n", s.p("merged").display()));
    assert_eq!(std::fs::read_to_string(s.p("merged/x")).unwrap(), "from a");
    for _ in 0..2 {
        Command::cargo_bin("overlay-demo")
            .unwrap()
            .args(["-q", "umount"])
            .arg(s.p("merged"))
            .assert()
            .success();
    }
    assert_eq!(overlay::mount_type(&s.p("merged")).unwrap(), None);
}

#[test]
fn cli_mount_errors_name_the_problem() {
    if !common::require_root() {
        return;
    }
    let s = Stack::new("errors", &["lower"]);
    let missing = s.p("nope");
    let run = |lower: &Path, upper: &Path, work: &Path| {
        let out = Command::cargo_bin("overlay-demo")
            .unwrap()
            .args(["-q", "mount", "--lower"])
            .arg(lower)
            .arg("--upper")
            .arg(upper)
            .arg("--work")
            .arg(work)
            .arg(s.p("merged"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(125));
        String::from_utf8(out.stderr).unwrap()
    };
    assert_eq!(
        run(&missing, &s.p("upper"), &s.p("work")),
        format!(
            "overlay-demo: lower dir {} does not exist\n",
            missing.display()
        )
    );
    // A tmpfs of our own, so upper and work are surely on different filesystems.
    let tmpfs = s.p("tmpfs");
    std::fs::create_dir(&tmpfs).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &tmpfs,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    std::fs::create_dir(tmpfs.join("work")).unwrap();
    let err = run(&s.p("lower"), &s.p("upper"), &tmpfs.join("work"));
    nix::mount::umount(&tmpfs).unwrap();
    assert_eq!(
        err,
        format!(
            "overlay-demo: upper dir {} and work dir {} are on different filesystems; overlayfs \
             renames from one to the other, so they must share one\n",
            s.p("upper").display(),
            tmpfs.join("work").display()
        )
    );
    assert_eq!(overlay::mount_type(&s.p("merged")).unwrap(), None);
}

#[test]
fn the_tour_shows_its_evidence() {
    if !common::require_root() {
        return;
    }
    let out = Command::cargo_bin("overlay-demo")
        .unwrap()
        .arg("tour")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("mount(\"overlay\""),
        "the trace shows the mount: {stderr}"
    );
    insta::with_settings!({filters => vec![(r"inode \d+ in c1, \d+ in c2, \d+ in base", "inode [ino] in c1, [ino] in c2, [ino] in base")]}, {
        insta::assert_snapshot!(stdout);
    });
}

// ---------------------------------------------------------------- diff and apply

/// Everything observable about a tree: per path its type, mode, owner, size, content or
/// target, device number, user xattrs and mtime; plus which paths are hardlinks of each
/// other.
fn observe(root: &Path) -> (BTreeMap<String, String>, Vec<Vec<String>>) {
    fn walk(
        root: &Path,
        dir: &Path,
        out: &mut BTreeMap<String, String>,
        inodes: &mut BTreeMap<(u64, u64), Vec<String>>,
    ) {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let m = std::fs::symlink_metadata(&path).unwrap();
            let ft = m.file_type();
            let what = if ft.is_dir() {
                "dir".to_owned()
            } else if ft.is_symlink() {
                format!(
                    "symlink -> {}",
                    std::fs::read_link(&path).unwrap().display()
                )
            } else if ft.is_file() {
                if m.nlink() > 1 {
                    inodes
                        .entry((m.dev(), m.ino()))
                        .or_default()
                        .push(rel.clone());
                }
                format!("file {:?}", std::fs::read(&path).unwrap())
            } else if ft.is_char_device() || ft.is_block_device() {
                format!("device {}:{}", libc::major(m.rdev()), libc::minor(m.rdev()))
            } else {
                "fifo".to_owned()
            };
            out.insert(
                rel,
                format!(
                    "{what} mode={:o} uid={} gid={} mtime={} xattrs={:?}",
                    if ft.is_symlink() {
                        0
                    } else {
                        m.mode() & 0o7777
                    },
                    m.uid(),
                    m.gid(),
                    m.mtime(),
                    user_xattrs(&path)
                ),
            );
            if ft.is_dir() {
                walk(root, &path, out, inodes);
            }
        }
    }
    let mut out = BTreeMap::new();
    let mut inodes = BTreeMap::new();
    walk(root, root, &mut out, &mut inodes);
    let mut groups: Vec<Vec<String>> = inodes.into_values().filter(|g| g.len() > 1).collect();
    groups.sort();
    (out, groups)
}

/// Two image layers with most of what a layer can hold, and a container that changes them
/// in every way a container can.
fn build_changed_stack(s: &mut Stack) {
    let base = s.p("base");
    write(&base.join("etc/motd"), "welcome\n");
    write(&base.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
    write(&base.join("bin/su"), "#!/bin/sh\n");
    std::fs::set_permissions(base.join("bin/su"), PermissionsExt::from_mode(0o4755)).unwrap();
    write(&base.join("bin/tool"), "tool\n");
    std::fs::hard_link(base.join("bin/tool"), base.join("bin/tool-alias")).unwrap();
    symlink("tool", base.join("bin/tool-link")).unwrap();
    symlink("/etc/motd", base.join("motd-abs")).unwrap();
    write(&base.join("data/a"), "a");
    write(&base.join("data/sub/b"), "b");
    write(&base.join("gone-dir/x"), "x");
    write(&base.join("home/user/.profile"), "export A=1\n");
    std::os::unix::fs::chown(base.join("home/user"), Some(1000), Some(1000)).unwrap();
    std::os::unix::fs::chown(base.join("home/user/.profile"), Some(1000), Some(100)).unwrap();
    set_xattr(&base.join("etc/passwd"), "user.origin", b"base\n\x00\xff");
    nix::sys::stat::mknod(
        &base.join("null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    nix::unistd::mkfifo(
        &base.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    let long = format!("deep/{}/{}", "d".repeat(90), "f".repeat(90));
    write(&base.join(long), "long path\n");
    std::fs::create_dir(base.join("empty")).unwrap();
    std::fs::set_permissions(base.join("empty"), PermissionsExt::from_mode(0o1777)).unwrap();

    let app = s.p("app");
    write(&app.join("etc/motd"), "app motd\n");
    write(&app.join("app/main"), "main\n");
    write(&app.join("data/sub/b"), "b from app");
    std::fs::set_permissions(app.join("app/main"), PermissionsExt::from_mode(0o755)).unwrap();

    // Old times on the image, so the comparison sees which times the container changed.
    age(&base);
    age(&app);
    s.mount(&["app", "base"]);
    let m = s.p("merged");
    std::fs::write(m.join("etc/passwd"), "root:x:0:0::/root:/bin/bash\n").unwrap(); // copy-up
    std::fs::set_permissions(m.join("bin/tool"), PermissionsExt::from_mode(0o700)).unwrap(); // metadata copy-up
    std::os::unix::fs::chown(m.join("etc/motd"), Some(5), Some(6)).unwrap();
    std::fs::remove_file(m.join("bin/tool-link")).unwrap(); // whiteout
    std::fs::remove_dir_all(m.join("gone-dir")).unwrap(); // whiteout of a directory
    std::fs::remove_dir_all(m.join("data")).unwrap(); // opaque
    write(&m.join("data/new"), "new");
    std::fs::rename(m.join("app/main"), m.join("app/main2")).unwrap();
    std::fs::hard_link(m.join("etc/passwd"), m.join("etc/passwd-link")).unwrap();
    symlink("../etc/passwd", m.join("bin/passwd-link")).unwrap();
    set_xattr(
        &m.join("home/user/.profile"),
        "user.note",
        b"set in the container",
    );
    std::fs::remove_file(m.join("fifo")).unwrap();
    std::fs::create_dir(m.join("fifo")).unwrap(); // a file replaced by a directory
    write(&m.join("fifo/inside"), "i");
    std::fs::remove_dir_all(m.join("empty")).unwrap();
    write(&m.join("empty"), "a directory replaced by a file"); // and the other way round
    write(&m.join("srv/www/index.html"), "<h1>hi</h1>");
    std::fs::set_permissions(m.join("srv/www"), PermissionsExt::from_mode(0o2750)).unwrap();
}

/// Sets the atime and mtime of everything under `dir` (not following symlinks) to 2020-09-13.
fn age(dir: &Path) {
    use nix::sys::stat::{UtimensatFlags, utimensat};
    use nix::sys::time::TimeSpec;
    let t = TimeSpec::new(1_600_000_000, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if std::fs::symlink_metadata(&path).unwrap().is_dir() {
            age(&path);
        }
        utimensat(
            nix::fcntl::AT_FDCWD,
            &path,
            &t,
            &t,
            UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }
}

fn diff_to_vec(dir: &Path, compression: Compression) -> (Vec<u8>, layer::LayerDigests) {
    let mut blob = Vec::new();
    let digests = layer::diff(dir, &mut blob, compression).unwrap();
    (blob, digests)
}

#[test]
fn diff_then_apply_over_the_lowers_gives_the_merged_view() {
    if !common::require_root() {
        return;
    }
    let mut s = Stack::new("roundtrip", &["base", "app"]);
    build_changed_stack(&mut s);
    let merged_view = observe(&s.p("merged"));
    s.unmount();
    // What the comparison below covers, so a broken setup cannot make it vacuous.
    let (paths, links) = &merged_view;
    let has = |path: &str, needle: &str| paths.get(path).is_some_and(|d| d.contains(needle));
    assert!(has("bin/su", "mode=4755"));
    assert!(has("bin/tool", "mode=700"));
    assert!(has("null", "device 1:3"));
    assert!(has("etc/motd", "uid=5 gid=6"));
    assert!(has("etc/passwd", "user.origin"));
    assert!(has("home/user/.profile", "user.note"));
    assert!(has("srv/www", "mode=2750"));
    assert!(has("fifo", "dir") && has("empty", "file"));
    assert!(!paths.contains_key("bin/tool-link") && !paths.contains_key("gone-dir"));
    assert!(paths.contains_key("data/new") && !paths.contains_key("data/a"));
    assert!(paths.contains_key("app/main2") && !paths.contains_key("app/main"));
    assert!(links.contains(&vec!["etc/passwd".to_owned(), "etc/passwd-link".to_owned()]));
    // Copy-up (of bin/tool, by its chmod) breaks a hardlink: overlayfs without index=on.
    assert!(!links.contains(&vec!["bin/tool".to_owned(), "bin/tool-alias".to_owned()]));
    assert!(!has("etc/passwd", "mtime=1600000000") && has("motd-abs", "mtime=1600000000"));
    assert_eq!(paths.len(), 27, "{paths:#?}");

    // The layers, bottom first: each lower dir as a layer, then the upper dir's diff.
    let layers: Vec<(Vec<u8>, layer::LayerDigests)> = ["base", "app", "upper"]
        .iter()
        .map(|d| diff_to_vec(&s.p(d), Compression::Gzip))
        .collect();
    // Deterministic: the same dir gives the same bytes.
    let (again, again_digests) = diff_to_vec(&s.p("upper"), Compression::Gzip);
    assert_eq!(again, layers[2].0);
    assert_eq!(again_digests, layers[2].1);

    // 1. Flattened onto one directory, with OCI whiteout semantics.
    let flat = s.p("flat");
    std::fs::create_dir(&flat).unwrap();
    for (blob, digests) in &layers {
        let opts = ApplyOptions {
            expect_digest: Some(digests.digest.clone()),
            expect_diff_id: Some(digests.diff_id.clone()),
            ..ApplyOptions::default()
        };
        let applied = layer::apply(&blob[..], Compression::Gzip, &flat, &opts).unwrap();
        assert_eq!(&applied.digests, digests);
    }
    assert_eq!(
        observe(&flat),
        merged_view,
        "flattened layers != merged view"
    );

    // 2. One directory per layer with kernel whiteouts, stacked again by overlayfs.
    let mut restacked = Stack::new("restacked", &[]);
    let mut names = Vec::new();
    for (i, (blob, _)) in layers.iter().enumerate() {
        let dir = restacked.p(&format!("layer{i}"));
        layer::unpack_to_new_dir(
            &blob[..],
            Compression::Gzip,
            &dir,
            &ApplyOptions::overlay_lower(),
        )
        .unwrap();
        names.push(format!("layer{i}"));
    }
    names.reverse();
    let lowers: Vec<&str> = names.iter().map(String::as_str).collect();
    restacked.mount(&lowers);
    assert_eq!(
        observe(&restacked.p("merged")),
        merged_view,
        "re-stacked layers != merged view"
    );
}

#[test]
fn diff_translates_whiteouts_and_opaque_dirs() {
    if !common::require_root() {
        return;
    }
    let mut s = Stack::new("entries", &["lower"]);
    write(&s.p("lower/old"), "o");
    write(&s.p("lower/d/x"), "x");
    s.mount(&["lower"]);
    std::fs::remove_file(s.p("merged/old")).unwrap();
    std::fs::remove_dir_all(s.p("merged/d")).unwrap();
    std::fs::create_dir(s.p("merged/d")).unwrap();
    write(&s.p("merged/d/y"), "y");
    write(&s.p("merged/-first"), "sorts before .wh. entries");
    s.unmount();
    let (blob, _) = diff_to_vec(&s.p("upper"), Compression::None);
    let mut archive = tar::Archive::new(&blob[..]);
    let entries: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            format!(
                "{:?} {}",
                e.header().entry_type(),
                String::from_utf8_lossy(&e.path_bytes())
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            "Regular .wh.old",
            "Regular -first",
            "Directory d",
            "Regular d/.wh..wh..opq",
            "Regular d/y",
        ]
    );
    assert!(get_xattr(&s.p("upper/d"), "trusted.overlay.opaque").is_some());
}

#[test]
fn cli_diff_and_apply_report_the_same_digests() {
    if !common::require_root() {
        return;
    }
    let s = scratch("cli-diff");
    write(&s.path().join("upper/etc/hosts"), "127.0.0.1 localhost\n");
    let layer_path = s.path().join("layer.tar.gz");
    let diff = Command::cargo_bin("overlay-demo")
        .unwrap()
        .args(["-q", "diff"])
        .arg(s.path().join("upper"))
        .arg("-o")
        .arg(&layer_path)
        .assert()
        .success();
    let diff_out = String::from_utf8(diff.get_output().stdout.clone()).unwrap();
    assert!(
        diff_out.contains("application/vnd.oci.image.layer.v1.tar+gzip"),
        "{diff_out}"
    );
    let apply = Command::cargo_bin("overlay-demo")
        .unwrap()
        .args(["-q", "apply"])
        .arg(&layer_path)
        .arg(s.path().join("rootfs"))
        .assert()
        .success();
    let apply_out = String::from_utf8(apply.get_output().stdout.clone()).unwrap();
    let digest_line = |text: &str, key: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(key))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        digest_line(&diff_out, "digest:"),
        digest_line(&apply_out, "digest:")
    );
    assert_eq!(
        digest_line(&diff_out, "diff_id:"),
        digest_line(&apply_out, "diff_id:")
    );
    assert_eq!(
        std::fs::read_to_string(s.path().join("rootfs/etc/hosts")).unwrap(),
        "127.0.0.1 localhost\n"
    );
    // The compressed digest is the sha256 of the file itself.
    let bytes = std::fs::read(&layer_path).unwrap();
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(digest_line(&diff_out, "digest:"), format!("sha256:{hex}"));
}
