//! Every tar form Go's archive/tar reads (so every layer Docker accepts) unpacks to the files it
//! describes: ustar, GNU long names and links, pax records (path, linkpath, size, uid/gid,
//! mtime, xattrs) and sparse files in all four GNU forms (old GNU `S`, PAX 0.0, 0.1 and 1.0).
//! The archives are made by GNU tar and by Python's tarfile, not by minidock, and a sparse
//! file must come out with its holes: the kernel's block count says so.

mod common;

use minidock::image::layer::{self, ApplyOptions, Compression};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SPARSE_SIZE: u64 = 8 << 20;

/// An 8 MiB file that is mostly holes: data at the start, in the middle and at the end.
fn make_sparse(dir: &Path) -> PathBuf {
    use std::io::{Seek, SeekFrom, Write};
    let path = dir.join("sparse");
    let mut file = std::fs::File::create(&path).unwrap();
    file.set_len(SPARSE_SIZE).unwrap();
    file.write_all(&b"head".repeat(100)).unwrap();
    file.seek(SeekFrom::Start(4 << 20)).unwrap();
    file.write_all(&b"middle".repeat(1000)).unwrap();
    file.seek(SeekFrom::Start(SPARSE_SIZE - 4)).unwrap();
    file.write_all(b"tail").unwrap();
    path
}

/// An 8 MiB file with 40 separate islands of data: more map entries than an old GNU header
/// holds (4), so its map continues in extension blocks.
fn make_many_islands(dir: &Path) -> PathBuf {
    use std::io::{Seek, SeekFrom, Write};
    let path = dir.join("islands");
    let mut file = std::fs::File::create(&path).unwrap();
    file.set_len(SPARSE_SIZE).unwrap();
    for i in 0..40u64 {
        file.seek(SeekFrom::Start(i * (200 << 10))).unwrap();
        file.write_all(format!("island {i}").as_bytes()).unwrap();
    }
    path
}

/// Asserts that `got` holds the same bytes as `want` and takes at most 256 KiB on disk (40
/// islands of one 4 KiB block each at most).
fn assert_sparse_copy(want: &Path, got: &Path) {
    let meta = std::fs::metadata(got).unwrap();
    assert_eq!(
        meta.len(),
        SPARSE_SIZE,
        "{} has the wrong size",
        got.display()
    );
    assert!(
        std::fs::read(want).unwrap() == std::fs::read(got).unwrap(),
        "{} differs from the original",
        got.display()
    );
    assert!(
        meta.blocks() * 512 <= 256 << 10,
        "{} is not sparse: {} blocks",
        got.display(),
        meta.blocks()
    );
}

fn require_gnu_tar() -> bool {
    common::prerequisite(
        Command::new("tar")
            .arg("--version")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("GNU tar")),
        "GNU tar is not installed",
    )
}

fn require_python() -> bool {
    common::prerequisite(common::have("python3", "-V"), "python3 is not installed")
}

/// `tar ARGS` in `dir`, asserting success.
fn gnu_tar(dir: &Path, args: &[&str]) {
    let status = Command::new("tar")
        .current_dir(dir)
        .args(args)
        .stderr(Stdio::inherit())
        .status()
        .unwrap();
    assert!(status.success(), "tar {args:?} failed");
}

/// The value of the xattr `name` of `path` (not following a symlink), asserting it exists.
pub fn xattr(path: &Path, name: &str) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let name = std::ffi::CString::new(name).unwrap();
    let mut value = vec![0u8; 4096];
    // SAFETY: both strings are NUL-terminated and the buffer is as long as we say.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    assert!(
        n >= 0,
        "lgetxattr {name:?}: {}",
        std::io::Error::last_os_error()
    );
    value.truncate(n as usize);
    value
}

/// Unpacks `archive` into a fresh directory with the layer unpacker.
fn unpack(archive: &Path) -> tempfile::TempDir {
    let out = tempfile::Builder::new()
        .prefix("minidock-tar-forms-out")
        .tempdir()
        .unwrap();
    let file = std::fs::File::open(archive).unwrap();
    layer::apply(
        file,
        Compression::None,
        out.path(),
        &ApplyOptions::default(),
    )
    .unwrap_or_else(|e| panic!("unpacking {}: {e:#}", archive.display()));
    out
}

#[test]
fn sparse_files_in_every_gnu_form_come_out_whole_and_sparse() {
    if !require_gnu_tar() {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("minidock-tar-forms")
        .tempdir()
        .unwrap();
    let src = work.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let original = make_sparse(&src);
    let islands = make_many_islands(&src);
    let forms: &[(&str, &[&str])] = &[
        ("gnu", &["--format=gnu"]),
        ("pax-0.0", &["--format=pax", "--sparse-version=0.0"]),
        ("pax-0.1", &["--format=pax", "--sparse-version=0.1"]),
        ("pax-1.0", &["--format=pax", "--sparse-version=1.0"]),
        ("posix", &["--format=posix"]),
    ];
    for (name, flags) in forms {
        let archive = work.path().join(format!("{name}.tar"));
        let mut args = vec!["--sparse", "-C", "src", "-cf", archive.to_str().unwrap()];
        args.extend_from_slice(flags);
        args.extend(["sparse", "islands"]);
        gnu_tar(work.path(), &args);
        let out = unpack(&archive);
        let mut names: Vec<_> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["islands", "sparse"],
            "{name}: the layer holds {names:?}"
        );
        assert_sparse_copy(&original, &out.path().join("sparse"));
        assert_sparse_copy(&islands, &out.path().join("islands"));
    }
}

#[test]
fn long_names_pax_records_and_xattrs_from_python_tarfile() {
    if !require_python() || !common::require_root() {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("minidock-tar-forms")
        .tempdir()
        .unwrap();
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(120));
    let script = r#"
import io, sys, tarfile
long, out = sys.argv[1], sys.argv[2]
def add(t, name, data=b"", **kw):
    info = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(info, k, v)
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
with tarfile.open(out + "/gnu.tar", "w", format=tarfile.GNU_FORMAT) as t:
    add(t, long, b"gnu long name")
    add(t, "gnulink", type=tarfile.SYMTYPE, linkname="/" + long)
    add(t, "big-ids", b"x", uid=3000000, gid=3000001)
with tarfile.open(out + "/pax.tar", "w", format=tarfile.PAX_FORMAT) as t:
    add(t, long, b"pax long name", pax_headers={"mtime": "1700000000.25"})
    add(t, "paxlink", type=tarfile.SYMTYPE, linkname="/" + long)
    add(t, "big-ids", b"y", uid=3000000, gid=3000001)
    add(t, "xattrs", b"z", pax_headers={
        "SCHILY.xattr.user.note": "hello",
        "SCHILY.xattr.security.capability":
            "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    })
with tarfile.open(out + "/ustar.tar", "w", format=tarfile.USTAR_FORMAT) as t:
    add(t, "a/" + "p" * 90 + "/" + "n" * 90, b"ustar prefix")
"#;
    let status = Command::new("python3")
        .args(["-c", script, &long, work.path().to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());

    let gnu = unpack(&work.path().join("gnu.tar"));
    assert_eq!(
        std::fs::read(gnu.path().join(&long)).unwrap(),
        b"gnu long name"
    );
    let target = std::fs::read_link(gnu.path().join("gnulink")).unwrap();
    assert_eq!(target, Path::new(&format!("/{long}")));
    let ids = std::fs::metadata(gnu.path().join("big-ids")).unwrap();
    assert_eq!((ids.uid(), ids.gid()), (3000000, 3000001));

    let pax = unpack(&work.path().join("pax.tar"));
    let file = std::fs::metadata(pax.path().join(&long)).unwrap();
    assert_eq!(
        std::fs::read(pax.path().join(&long)).unwrap(),
        b"pax long name"
    );
    assert_eq!((file.mtime(), file.mtime_nsec()), (1700000000, 250_000_000));
    let target = std::fs::read_link(pax.path().join("paxlink")).unwrap();
    assert_eq!(target, Path::new(&format!("/{long}")));
    let ids = std::fs::metadata(pax.path().join("big-ids")).unwrap();
    assert_eq!((ids.uid(), ids.gid()), (3000000, 3000001));
    let xattrs = pax.path().join("xattrs");
    assert_eq!(xattr(&xattrs, "user.note"), b"hello");
    assert_eq!(
        xattr(&xattrs, "security.capability")[..8],
        [1, 0, 0, 2, 0, 0x20, 0, 0]
    );

    let ustar = unpack(&work.path().join("ustar.tar"));
    let name = format!("a/{}/{}", "p".repeat(90), "n".repeat(90));
    assert_eq!(
        std::fs::read(ustar.path().join(name)).unwrap(),
        b"ustar prefix"
    );
}

/// A pax `size` record replaces the header's size (which cannot hold 8 GiB and more), so it
/// decides where the next header is: an archive written with it must unpack every entry.
#[test]
fn a_pax_size_record_overrides_the_header_size() {
    let mut data = Vec::new();
    let records = b"13 size=1000\n";
    let mut pax = tar::Header::new_ustar();
    pax.set_entry_type(tar::EntryType::XHeader);
    pax.set_path("PaxHeaders/big").unwrap();
    pax.set_size(records.len() as u64);
    pax.set_cksum();
    data.extend_from_slice(pax.as_bytes());
    data.extend_from_slice(records);
    data.resize(1024, 0);
    let mut header = tar::Header::new_ustar();
    header.set_path("big").unwrap();
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(0);
    header.set_cksum();
    data.extend_from_slice(header.as_bytes());
    data.extend_from_slice(&[b'b'; 1000]);
    data.resize(data.len() + 24, 0);
    let mut after = tar::Header::new_ustar();
    after.set_path("after").unwrap();
    after.set_mode(0o644);
    after.set_uid(0);
    after.set_gid(0);
    after.set_mtime(0);
    after.set_size(5);
    after.set_cksum();
    data.extend_from_slice(after.as_bytes());
    data.extend_from_slice(b"after");
    data.resize(data.len() + 507 + 1024, 0);

    let out = tempfile::tempdir().unwrap();
    layer::apply(
        &data[..],
        Compression::None,
        out.path(),
        &ApplyOptions::default(),
    )
    .unwrap();
    assert_eq!(std::fs::read(out.path().join("big")).unwrap(), [b'b'; 1000]);
    assert_eq!(std::fs::read(out.path().join("after")).unwrap(), b"after");
}

/// The same files through `minidock import`, and then `save` and `load`: the layer minidock
/// stores and unpacks for a container holds the 8 MiB file, sparse.
#[test]
fn an_imported_pax_sparse_file_is_unpacked_for_containers() {
    if !require_gnu_tar() || !common::require_busybox_overlay() {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("minidock-tar-forms")
        .tempdir()
        .unwrap();
    let rootfs = common::busybox_rootfs();
    let original = make_sparse(rootfs.path());
    let archive = work.path().join("rootfs.tar");
    gnu_tar(
        work.path(),
        &[
            "--sparse",
            "--format=pax",
            "-C",
            rootfs.path().to_str().unwrap(),
            "-cf",
            archive.to_str().unwrap(),
            ".",
        ],
    );
    let image = "sparse:test";
    let first = Root::new();
    first.ok(&["import", archive.to_str().unwrap(), image]);
    first.check_sparse(image, &original);
    // The same layer through save and load into another store.
    let saved = work.path().join("saved.tar");
    first.ok(&["save", "-o", saved.to_str().unwrap(), image]);
    let second = Root::new();
    second.ok(&["load", "-i", saved.to_str().unwrap()]);
    second.check_sparse(image, &original);
}

/// A private state root.
struct Root(tempfile::TempDir);

impl Root {
    fn new() -> Root {
        Root(
            tempfile::Builder::new()
                .prefix("minidock-root")
                .tempdir()
                .unwrap(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_minidock"))
            .arg("--root")
            .arg(self.0.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        common::ok_stdout(args, &out)
    }

    /// Runs `image` (which unpacks its layer) and checks the file there and on disk.
    fn check_sparse(&self, image: &str, original: &Path) {
        let size = self.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            image,
            "stat",
            "-c",
            "%s",
            "/sparse",
        ]);
        assert_eq!(size.trim(), SPARSE_SIZE.to_string());
        let layers = self.0.path().join("layers");
        let unpacked: Vec<PathBuf> = std::fs::read_dir(&layers)
            .unwrap()
            .map(|e| e.unwrap().path().join("sparse"))
            .filter(|p| p.exists())
            .collect();
        assert_eq!(unpacked.len(), 1, "layers: {unpacked:?}");
        assert_sparse_copy(original, &unpacked[0]);
    }
}
