//! The hostile layer corpus: archives built byte by byte that try to write, link, chmod or
//! delete outside the directory they are unpacked into. For each, the unpacker must fail with
//! the exact one-line error naming the entry (or, for the "defused" cases, succeed without
//! touching anything outside), and nothing outside DIR may change.
//!
//! The archives are made with the tar crate's `Header` API, writing the raw name bytes
//! ourselves: the crate's own path setters refuse `..` and absolute paths, which is exactly
//! what an attacker would not do.

mod common;

use minidock::image::layer::{self, ApplyOptions, Compression};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tar::{EntryType, Header};

// ---------------------------------------------------------------- archive construction

/// A tar stream under construction.
struct Tar {
    out: Vec<u8>,
}

fn header(kind: EntryType, name: &[u8], size: u64, link: Option<&[u8]>, mode: u32) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    let gnu = h.as_gnu_mut().unwrap();
    assert!(name.len() <= 100, "use long_name for names over 100 bytes");
    gnu.name[..name.len()].copy_from_slice(name);
    if let Some(link) = link {
        gnu.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_cksum();
    h
}

impl Tar {
    fn new() -> Self {
        Tar { out: Vec::new() }
    }

    fn raw(mut self, h: &Header, data: &[u8]) -> Self {
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    fn file(self, name: &str, data: &[u8]) -> Self {
        let h = header(
            EntryType::Regular,
            name.as_bytes(),
            data.len() as u64,
            None,
            0o644,
        );
        self.raw(&h, data)
    }

    fn dir(self, name: &str, mode: u32) -> Self {
        let h = header(EntryType::Directory, name.as_bytes(), 0, None, mode);
        self.raw(&h, &[])
    }

    fn symlink(self, name: &str, target: &str) -> Self {
        let h = header(
            EntryType::Symlink,
            name.as_bytes(),
            0,
            Some(target.as_bytes()),
            0o777,
        );
        self.raw(&h, &[])
    }

    fn hardlink(self, name: &str, target: &str) -> Self {
        let h = header(
            EntryType::Link,
            name.as_bytes(),
            0,
            Some(target.as_bytes()),
            0o644,
        );
        self.raw(&h, &[])
    }

    fn device(self, name: &str, kind: EntryType, major: u32, minor: u32) -> Self {
        let mut h = header(kind, name.as_bytes(), 0, None, 0o660);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.raw(&h, &[])
    }

    /// A GNU long-name header ('L'): the next entry's real name, however long.
    fn long_name(self, name: &[u8]) -> Self {
        let mut data = name.to_vec();
        data.push(0);
        let h = header(
            EntryType::GNULongName,
            b"././@LongLink",
            data.len() as u64,
            None,
            0o644,
        );
        self.raw(&h, &data)
    }

    /// A pax extended header ('x') with the given records, for the next entry.
    fn pax(self, records: &[(&str, &[u8])]) -> Self {
        let mut data = Vec::new();
        for (key, value) in records {
            let body = key.len() + value.len() + 3;
            let mut len = body + 1;
            while len != body + len.to_string().len() {
                len = body + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        let h = header(
            EntryType::XHeader,
            b"././@PaxHeader",
            data.len() as u64,
            None,
            0o644,
        );
        self.raw(&h, &data)
    }

    fn build(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0u8, 1024));
        self.out
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

// ---------------------------------------------------------------- the sandbox

/// sandbox/
///   outside/victim.txt   what an attack would overwrite, chmod or delete
///   outside/sub/
///   dir/                 DIR, the only place a layer may write
struct Sandbox {
    tmp: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("minidock-hostile-")
            .tempdir()
            .unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(outside.join("sub")).unwrap();
        std::fs::write(outside.join("victim.txt"), "precious\n").unwrap();
        std::fs::set_permissions(outside.join("victim.txt"), PermissionsExt::from_mode(0o600))
            .unwrap();
        std::fs::set_permissions(&outside, PermissionsExt::from_mode(0o750)).unwrap();
        std::fs::create_dir(tmp.path().join("dir")).unwrap();
        Sandbox { tmp }
    }

    fn root(&self) -> &Path {
        self.tmp.path()
    }

    fn dir(&self) -> PathBuf {
        self.root().join("dir")
    }

    fn outside(&self) -> String {
        self.root().join("outside").to_string_lossy().into_owned()
    }

    /// Everything in the sandbox except DIR: type, mode, owner, size, content or target, and
    /// the mtime of non-directories (a directory's mtime changes when a temp dir comes and
    /// goes next to DIR, which is allowed).
    fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        walk(self.root(), self.root(), &self.dir(), &mut out);
        out
    }

    fn apply(&self, tar: &[u8], opts: &ApplyOptions) -> Result<layer::Applied, String> {
        layer::apply(tar, Compression::None, &self.dir(), opts).map_err(|e| format!("{e:#}"))
    }

    /// Applies `tar` to DIR and asserts the exact error and that nothing outside changed.
    fn refuses(&self, tar: &[u8], opts: &ApplyOptions, expected: &str) {
        let before = self.snapshot();
        let err = self
            .apply(tar, opts)
            .expect_err("a hostile layer was applied");
        assert_eq!(err, expected);
        assert_eq!(self.snapshot(), before, "something outside DIR changed");
    }
}

fn walk(root: &Path, path: &Path, skip: &Path, out: &mut BTreeMap<PathBuf, String>) {
    if path == skip {
        return;
    }
    let meta = std::fs::symlink_metadata(path).unwrap();
    let rel = path.strip_prefix(root).unwrap().to_path_buf();
    let ft = meta.file_type();
    let common = format!(
        "mode={:o} uid={} gid={}",
        meta.mode(),
        meta.uid(),
        meta.gid()
    );
    let line = if ft.is_dir() {
        format!("dir {common}")
    } else if ft.is_symlink() {
        format!("symlink -> {:?}", std::fs::read_link(path).unwrap())
    } else if ft.is_file() {
        format!(
            "file {common} nlink={} mtime={} {:?}",
            meta.nlink(),
            meta.mtime(),
            std::fs::read_to_string(path).unwrap_or_default()
        )
    } else {
        format!("special {common} rdev={}", meta.rdev())
    };
    out.insert(rel, line);
    if ft.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            walk(root, &entry.unwrap().path(), skip, out);
        }
    }
}

fn flatten() -> ApplyOptions {
    ApplyOptions::default()
}

// ---------------------------------------------------------------- the corpus

#[test]
fn h01_dotdot_traversal() {
    let sb = Sandbox::new();
    let tar = Tar::new().file("../outside/victim.txt", b"pwned").build();
    sb.refuses(
        &tar,
        &flatten(),
        "entry \"../outside/victim.txt\": path leaves the layer through \"..\"",
    );
}

#[test]
fn h02_dotdot_hidden_deeper() {
    let sb = Sandbox::new();
    let tar = Tar::new()
        .dir("a/", 0o755)
        .file("a/b/../../../outside/evil", b"pwned")
        .build();
    sb.refuses(
        &tar,
        &flatten(),
        "entry \"a/b/../../../outside/evil\": path leaves the layer through \"..\"",
    );
}

#[test]
fn h03_absolute_path() {
    let sb = Sandbox::new();
    let name = format!("{}/evil", sb.outside());
    let tar = Tar::new().file(&name, b"pwned").build();
    sb.refuses(
        &tar,
        &flatten(),
        &format!("entry \"{name}\": absolute path (layer paths are relative to the layer root)"),
    );
}

#[test]
fn h04_symlink_then_write_through_it() {
    let sb = Sandbox::new();
    let tar = Tar::new()
        .symlink("link", &sb.outside())
        .file("link/victim.txt", b"pwned")
        .build();
    sb.refuses(
        &tar,
        &flatten(),
        "entry \"link/victim.txt\": \"link\" is a symlink, and layer paths may not pass through symlinks",
    );
}

#[test]
fn h05_relative_symlink_then_write() {
    let sb = Sandbox::new();
    let tar = Tar::new()
        .symlink("up", "../outside")
        .file("up/evil", b"pwned")
        .build();
    sb.refuses(
        &tar,
        &flatten(),
        "entry \"up/evil\": \"up\" is a symlink, and layer paths may not pass through symlinks",
    );
}

#[test]
fn h06_symlink_chain_in_one_layer() {
    let sb = Sandbox::new();
    let tar = Tar::new()
        .dir("x/", 0o755)
        .symlink("x/a", "b")
        .symlink("x/b", "../../outside")
        .file("x/a/evil", b"pwned")
        .build();
    sb.refuses(
        &tar,
        &flatten(),
        "entry \"x/a/evil\": \"x/a\" is a symlink, and layer paths may not pass through symlinks",
    );
}

#[test]
fn h07_symlink_chain_across_two_layers() {
    let sb = Sandbox::new();
    // Layer 1 is harmless on its own: a symlink is just data.
    let first = Tar::new().symlink("etc", &sb.outside()).build();
    sb.apply(&first, &flatten()).unwrap();
    let second = Tar::new().file("etc/victim.txt", b"pwned").build();
    sb.refuses(
        &second,
        &flatten(),
        "entry \"etc/victim.txt\": \"etc\" is a symlink, and layer paths may not pass through symlinks",
    );
}

#[test]
fn h08_directories_created_through_an_earlier_layers_symlink() {
    // CVE-2021-38511 (tar-rs): the file failed, but its parent directories were already made
    // outside the target.
    let sb = Sandbox::new();
    let first = Tar::new().symlink("parent", "..").build();
    sb.apply(&first, &flatten()).unwrap();
    let second = Tar::new().file("parent/exploit/foo/bar", b"x").build();
    sb.refuses(
        &second,
        &flatten(),
        "entry \"parent/exploit/foo/bar\": \"parent\" is a symlink, and layer paths may not pass through symlinks",
    );
    assert!(!sb.root().join("exploit").exists());
}

#[test]
fn h09_hardlink_target_with_dotdot() {
    let sb = Sandbox::new();
    let tar = Tar::new().hardlink("h", "../outside/victim.txt").build();
    sb.refuses(
        &tar,
        &flatten(),
        "entry \"h\": hardlink target \"../outside/victim.txt\": path leaves the layer through \"..\"",
    );
}

#[test]
fn h10_hardlink_to_an_absolute_path() {
    let sb = Sandbox::new();
    let target = format!("{}/victim.txt", sb.outside());
    let tar = Tar::new().hardlink("h", &target).build();
    sb.refuses(
        &tar,
        &flatten(),
        &format!(
            "entry \"h\": hardlink target \"{target}\": absolute path (layer paths are relative to the layer root)"
        ),
    );
}

#[test]
fn h11_hardlink_through_a_symlink() {
    let sb = Sandbox::new();
    let tar = Tar::new()
        .symlink("link", &sb.outside())
        .hardlink("h", "link/victim.txt")
        .build();
    sb.refuses(
        &tar,
        &flatten(),
        "entry \"h\": hardlink target \"link/victim.txt\": \"link\" is a symlink, and layer paths may not pass through symlinks",
    );
}

#[test]
fn h12_whiteout_through_a_symlink() {
    let sb = Sandbox::new();
    let tar = Tar::new()
        .symlink("link", &sb.outside())
        .file("link/.wh.victim.txt", b"")
        .build();
    sb.refuses(
        &tar,
        &flatten(),
        "entry \"link/.wh.victim.txt\": \"link\" is a symlink, and layer paths may not pass through symlinks",
    );
}

#[test]
fn h13_opaque_marker_through_a_symlink() {
    // Applied, this would empty the directory the symlink points at.
    let sb = Sandbox::new();
    let tar = Tar::new()
        .symlink("link", &sb.outside())
        .file("link/.wh..wh..opq", b"")
        .build();
    sb.refuses(
        &tar,
        &flatten(),
        "entry \"link/.wh..wh..opq\": \"link\" is a symlink, and layer paths may not pass through symlinks",
    );
}

#[test]
fn h14_whiteout_naming_the_parent() {
    let sb = Sandbox::new();
    let tar = Tar::new().dir("a/", 0o755).file("a/.wh...", b"").build();
    sb.refuses(
        &tar,
        &flatten(),
        "entry \"a/.wh...\": whiteout that names no file",
    );
    let tar = Tar::new().file(".wh..", b"").build();
    sb.refuses(
        &tar,
        &flatten(),
        "entry \".wh..\": whiteout that names no file",
    );
}

#[test]
fn h15_whiteout_with_dotdot_in_its_path() {
    let sb = Sandbox::new();
    let tar = Tar::new().file("../outside/.wh.victim.txt", b"").build();
    sb.refuses(
        &tar,
        &flatten(),
        "entry \"../outside/.wh.victim.txt\": path leaves the layer through \"..\"",
    );
}

#[test]
fn h16_device_node_without_root() {
    let sb = Sandbox::new();
    let opts = ApplyOptions {
        allow_devices: false,
        ..flatten()
    };
    let tar = Tar::new().device("dev/sda", EntryType::Block, 8, 0).build();
    sb.refuses(
        &tar,
        &opts,
        "entry \"dev/sda\": a block device can only be created as root (CAP_MKNOD)",
    );
    assert!(!sb.dir().join("dev/sda").exists());
}

#[test]
fn h17_huge_number_of_entries() {
    let sb = Sandbox::new();
    let opts = ApplyOptions {
        max_entries: 1000,
        ..flatten()
    };
    let mut tar = Tar::new();
    for i in 0..1001 {
        tar = tar.file(&format!("f{i:04}"), b"");
    }
    sb.refuses(
        &tar.build(),
        &opts,
        "entry \"f1000\": over the limit of 1000 entries per layer",
    );
}

#[test]
fn h18_truncated_gzip_leaves_no_layer() {
    let sb = Sandbox::new();
    let mut tar = Tar::new();
    for i in 0..50 {
        tar = tar.file(&format!("f{i:02}"), &[b'x'; 3000]);
    }
    let blob = gzip(&tar.build());
    let cut = &blob[..blob.len() / 2];
    let layers = sb.root().join("layers");
    std::fs::create_dir(&layers).unwrap();
    let before = sb.snapshot();
    let err = layer::unpack_to_new_dir(cut, Compression::Gzip, &layers.join("l1"), &flatten())
        .unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "entry \"f22\": reading its data: gzip: the stream ends early (truncated layer)"
    );
    assert_eq!(sb.snapshot(), before, "a partial layer was left behind");
    assert_eq!(std::fs::read_dir(&layers).unwrap().count(), 0);
}

#[test]
fn h19_traversal_hidden_in_a_gnu_long_name() {
    let sb = Sandbox::new();
    let name = format!("{}../../outside/evil", "a/".repeat(60));
    let tar = Tar::new()
        .long_name(name.as_bytes())
        .file("innocent", b"pwned")
        .build();
    sb.refuses(
        &tar,
        &flatten(),
        // The name is untrusted: quoted, and cut to its first 64 characters.
        &format!(
            "entry \"{}…\": path leaves the layer through \"..\"",
            &name[..64]
        ),
    );
}

#[test]
fn h20_absolute_path_in_a_pax_record() {
    let sb = Sandbox::new();
    let name = format!("{}/evil", sb.outside());
    let tar = Tar::new()
        .pax(&[("path", name.as_bytes())])
        .file("innocent", b"pwned")
        .build();
    sb.refuses(
        &tar,
        &flatten(),
        &format!("entry \"{name}\": absolute path (layer paths are relative to the layer root)"),
    );
}

#[test]
fn h21_oversized_pax_header() {
    let sb = Sandbox::new();
    let value = vec![b'a'; 2 << 20];
    let tar = Tar::new()
        .pax(&[("comment", &value)])
        .file("f", b"")
        .build();
    sb.refuses(
        &tar,
        &flatten(),
        "entry \"././@PaxHeader\": extension header is over the limit of 1048576 bytes",
    );
}

#[test]
fn h22_overlay_xattr_smuggled_in_a_pax_record() {
    // trusted.overlay.redirect in a lower layer makes overlayfs look up another path.
    let sb = Sandbox::new();
    let tar = Tar::new()
        .pax(&[("SCHILY.xattr.trusted.overlay.redirect", b"/etc")])
        .dir("d/", 0o755)
        .build();
    sb.refuses(
        &tar,
        &ApplyOptions::overlay_lower(),
        "entry \"d/\": xattr \"trusted.overlay.redirect\" is reserved for overlayfs",
    );
}

#[test]
fn h23_the_root_replaced_by_a_file() {
    let sb = Sandbox::new();
    let tar = Tar::new().file("./", b"").symlink(".", "/").build();
    sb.refuses(
        &tar,
        &flatten(),
        "entry \".\": names the layer root, which can only be a directory",
    );
}

#[test]
fn h24_whiteout_through_a_symlink_as_an_overlay_lower() {
    let sb = Sandbox::new();
    let tar = Tar::new()
        .symlink("link", &sb.outside())
        .file("link/.wh.victim.txt", b"")
        .build();
    sb.refuses(
        &tar,
        &ApplyOptions::overlay_lower(),
        "entry \"link/.wh.victim.txt\": \"link\" is a symlink, and layer paths may not pass through symlinks",
    );
}

// ---------------------------------------------------------------- defused, not refused

#[test]
fn d01_a_file_replaces_a_symlink_instead_of_writing_through_it() {
    // CVE-2018-20990 (tar-rs): a link entry, then a file of the same name, overwrote the
    // link's target. Image-spec says: unlink, then recreate.
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let tar = Tar::new()
        .symlink("victim", &format!("{}/victim.txt", sb.outside()))
        .file("victim", b"mine")
        .build();
    sb.apply(&tar, &flatten()).unwrap();
    assert_eq!(std::fs::read(sb.dir().join("victim")).unwrap(), b"mine");
    assert!(
        !std::fs::symlink_metadata(sb.dir().join("victim"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(sb.snapshot(), before);
}

#[test]
fn d02_a_file_replaces_a_hardlink_instead_of_truncating_it() {
    let sb = Sandbox::new();
    let tar = Tar::new()
        .file("original", b"keep me")
        .hardlink("alias", "original")
        .file("alias", b"new")
        .build();
    sb.apply(&tar, &flatten()).unwrap();
    assert_eq!(
        std::fs::read(sb.dir().join("original")).unwrap(),
        b"keep me"
    );
    assert_eq!(std::fs::read(sb.dir().join("alias")).unwrap(), b"new");
}

#[test]
fn d03_a_directory_swapped_for_a_symlink_is_not_chmod_through() {
    // CVE-2021-32760 (containerd): directory modes are applied at the end; if a later entry
    // replaced the directory with a symlink, a path-based chmod would follow it.
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let tar = Tar::new()
        .dir("d/", 0o777)
        .symlink("d", &sb.outside())
        .build();
    sb.apply(&tar, &flatten()).unwrap();
    assert_eq!(sb.snapshot(), before, "the symlink's target was chmod-ed");
}

#[test]
fn d04_a_symlinked_directory_is_replaced_not_entered() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let first = Tar::new().symlink("etc", &sb.outside()).build();
    sb.apply(&first, &flatten()).unwrap();
    let second = Tar::new()
        .dir("etc/", 0o755)
        .file("etc/victim.txt", b"x")
        .build();
    sb.apply(&second, &flatten()).unwrap();
    assert!(sb.dir().join("etc").is_dir());
    assert!(
        !std::fs::symlink_metadata(sb.dir().join("etc"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(sb.snapshot(), before);
}

#[test]
fn d05_setuid_bits_survive() {
    let sb = Sandbox::new();
    let mut h = header(EntryType::Regular, b"bin/su", 2, None, 0o4755);
    h.set_cksum();
    let tar = Tar::new().raw(&h, b"#!").build();
    sb.apply(&tar, &flatten()).unwrap();
    let mode = std::fs::metadata(sb.dir().join("bin/su")).unwrap().mode();
    assert_eq!(mode & 0o7777, 0o4755);
}

// ---------------------------------------------------------------- through the CLI

#[test]
fn the_cli_prints_one_line_and_exits_125() {
    let sb = Sandbox::new();
    let tar = Tar::new().file("../outside/victim.txt", b"pwned").build();
    let path = sb.root().join("evil.tar");
    std::fs::write(&path, tar).unwrap();
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("overlay-demo"))
        .args(["-q", "apply"])
        .arg(&path)
        .arg(sb.root().join("layers-new"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        format!(
            "overlay-demo: applying {} to {}: entry \"../outside/victim.txt\": path leaves the layer through \"..\"\n",
            path.display(),
            sb.root().join("layers-new").display()
        )
    );
    assert!(!sb.root().join("layers-new").exists());
}

#[test]
fn device_nodes_are_refused_when_not_running_as_root() {
    if !common::require_root() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new();
    // nobody must be able to reach the sandbox and write DIR's parent.
    std::fs::set_permissions(sb.root(), PermissionsExt::from_mode(0o777)).unwrap();
    let tar = Tar::new().device("dev/null", EntryType::Char, 1, 3).build();
    let path = sb.root().join("dev.tar");
    std::fs::write(&path, tar).unwrap();
    std::fs::set_permissions(&path, PermissionsExt::from_mode(0o644)).unwrap();
    let before = sb.snapshot();
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("overlay-demo"))
        .args(["-q", "apply"])
        .arg(&path)
        .arg(sb.root().join("as-nobody"))
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.ends_with(
            "entry \"dev/null\": a character device can only be created as root (CAP_MKNOD)\n"
        ),
        "{stderr}"
    );
    assert!(!sb.root().join("as-nobody").exists());
    assert_eq!(sb.snapshot(), before);
}

#[test]
fn a_plain_layer_applies_with_oci_whiteouts() {
    let sb = Sandbox::new();
    std::fs::write(sb.dir().join("g"), "from a lower layer").unwrap();
    let tar = Tar::new().file("f", b"1").file(".wh.g", b"").build();
    let applied = sb.apply(&tar, &flatten()).unwrap();
    assert_eq!(applied.entries, 2);
    assert_eq!(std::fs::read(sb.dir().join("f")).unwrap(), b"1");
    assert!(sb.dir().join("g").symlink_metadata().is_err());
}

#[test]
fn a_plain_layer_applies_with_kernel_whiteouts() {
    if !common::require_root() {
        return;
    }
    let sb = Sandbox::new();
    let tar = Tar::new().file("f", b"1").file(".wh.g", b"").build();
    let applied = sb.apply(&tar, &ApplyOptions::overlay_lower()).unwrap();
    assert_eq!(applied.entries, 2);
    let g = sb.dir().join("g").symlink_metadata().unwrap();
    assert!(layer::is_whiteout(&g));
}

#[test]
fn a_large_file_is_copied_whole() {
    // Over the 4 MiB read-at-once size: written in chunks, byte for byte.
    let sb = Sandbox::new();
    let data: Vec<u8> = (0..(5 << 20) + 123).map(|i: u32| (i % 251) as u8).collect();
    let tar = Tar::new().file("big", &data).file("after", b"next").build();
    sb.apply(&tar, &flatten()).unwrap();
    assert_eq!(std::fs::read(sb.dir().join("big")).unwrap(), data);
    assert_eq!(std::fs::read(sb.dir().join("after")).unwrap(), b"next");
}
