//! Archives and the init layer against Debian's Docker 20.10 (`docker.io`), run privately
//! (tests/common/dockerd.rs): `docker load` takes what `minidock save` writes (Docker 25's
//! combined OCI + docker-archive layout) and gets the same image ID; minidock loads what
//! `docker save` writes, plain and compressed, committed images with a `Parent` included;
//! `export` of a fresh container lists the same entries as `docker export` (the init layer's
//! included); `commit` of an unchanged container gives the same RootFS as Docker's (no layer).

mod common;

use common::dockerd::{Dockerd, require_docker};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A minidock state root.
struct Minidock {
    root: tempfile::TempDir,
}

impl Minidock {
    fn new() -> Minidock {
        Minidock {
            root: tempfile::Builder::new()
                .prefix("minidock-docker-archives")
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

    fn export(&self, container: &str) -> Vec<u8> {
        let out = self.output(&["export", container]);
        assert!(out.status.success(), "{}", common::text(&out.stderr));
        out.stdout
    }
}

impl Drop for Minidock {
    fn drop(&mut self) {
        let ids = self.output(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.output(&["rm", "-f", id]);
        }
    }
}

/// `docker export`'s bytes.
fn docker_export(docker: &Dockerd, container: &str) -> Vec<u8> {
    let out = docker.docker(&["export", container]);
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    out.stdout
}

/// The entries of a tar as `name type mode` lines (no `./`, no trailing `/`; times left out,
/// they differ by when each container was made).
fn listing(tar_bytes: &[u8]) -> BTreeSet<String> {
    let mut archive = tar::Archive::new(tar_bytes);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let header = entry.header();
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = name
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_owned();
            let link = header
                .link_name_bytes()
                .map(|l| format!(" -> {}", String::from_utf8_lossy(&l)))
                .unwrap_or_default();
            format!(
                "{name} {:?} {:o}{link}",
                header.entry_type(),
                // Go's archive/tar also writes the file type bits (`c_ISREG`...).
                header.mode().unwrap() & 0o7777
            )
        })
        .collect()
}

/// `docker image inspect -f '{{json .RootFS}}' IMAGE` and minidock's, as JSON values.
fn root_fs(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap()
}

/// Compresses `file` with `tool -c` into `file.ext`.
fn compress(file: &Path, tool: &str, ext: &str) -> std::path::PathBuf {
    let out = Command::new(tool).arg("-c").arg(file).output().unwrap();
    assert!(out.status.success(), "{tool}: {out:?}");
    let packed = file.with_extension(format!("tar.{ext}"));
    std::fs::write(&packed, out.stdout).unwrap();
    packed
}

#[test]
fn archives_and_the_init_layer_match_docker_20_10() {
    if !require_docker() || !common::require_busybox_overlay() {
        return;
    }
    let docker = Dockerd::start();
    docker.load_busybox();
    let md = Minidock::new();
    let work = tempfile::Builder::new()
        .prefix("minidock-docker-archives-work")
        .tempdir()
        .unwrap();
    let file = |name: &str| work.path().join(name);

    // Docker's commit of an unchanged container adds no layer; Docker's commit with a change
    // gives an image whose manifest.json entry has a `Parent`.
    docker.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "same",
        "busybox",
        "true",
    ]);
    docker.ok(&["commit", "same", "dsame:1"]);
    docker.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "changed",
        "busybox",
        "touch",
        "/new",
    ]);
    docker.ok(&["commit", "changed", "dchanged:1"]);

    // docker save -> minidock load, plain and gzip-compressed: same IDs, and it runs.
    let saved = file("docker.tar");
    let path = saved.to_str().unwrap();
    docker.ok(&[
        "save",
        "-o",
        path,
        "busybox:latest",
        "dsame:1",
        "dchanged:1",
    ]);
    for archive in [saved.clone(), compress(&saved, "gzip", "gz")] {
        let other = Minidock::new();
        other.ok(&["load", "-i", archive.to_str().unwrap()]);
        for image in ["busybox:latest", "dsame:1", "dchanged:1"] {
            let id = docker.ok(&["image", "inspect", "-f", "{{.Id}}", image]);
            assert_eq!(other.ok(&["image", "inspect", "-f", "{{.Id}}", image]), id);
        }
    }
    md.ok(&["load", "-i", path]);
    let ran = md.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "dchanged:1",
        "ls",
        "/new",
    ]);
    assert_eq!(ran, "/new\n");

    // minidock's commit of an unchanged container: the same RootFS as Docker's.
    md.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "same",
        "busybox",
        "true",
    ]);
    md.ok(&["commit", "same", "msame:1"]);
    let rootfs_of = "{{json .RootFS}}";
    assert_eq!(
        root_fs(&md.ok(&["image", "inspect", "-f", rootfs_of, "msame:1"])),
        root_fs(&docker.ok(&["image", "inspect", "-f", rootfs_of, "dsame:1"]))
    );

    // export of a fresh container: the same entries as Docker's, init layer included.
    docker.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "ex",
        "busybox",
        "true",
    ]);
    md.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "ex",
        "busybox",
        "true",
    ]);
    let theirs = listing(&docker_export(&docker, "ex"));
    let ours = listing(&md.export("ex"));
    assert!(theirs.contains(".dockerenv Regular 755"));
    assert_eq!(
        ours.symmetric_difference(&theirs).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "minidock's export differs from Docker's"
    );

    // minidock save -> docker load: the same image ID, and Docker runs it.
    md.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "mchanged",
        "busybox",
        "touch",
        "/mine",
    ]);
    md.ok(&[
        "commit",
        "-c",
        r#"CMD ["ls", "/mine"]"#,
        "mchanged",
        "mine/img:1",
    ]);
    let ours_tar = file("minidock.tar");
    md.ok(&["save", "-o", ours_tar.to_str().unwrap(), "mine/img:1"]);
    let loaded = docker.ok(&["load", "-i", ours_tar.to_str().unwrap()]);
    assert_eq!(loaded, "Loaded image: mine/img:1\n");
    assert_eq!(
        docker.ok(&["image", "inspect", "-f", "{{.Id}}", "mine/img:1"]),
        md.ok(&["image", "inspect", "-f", "{{.Id}}", "mine/img:1"])
    );
    let ran = docker.ok(&["run", "--rm", "--network", "none", "mine/img:1"]);
    assert_eq!(ran, "/mine\n");
}
