//! `minidock save`, `load` and `history`, with skopeo as the other side: minidock's archives
//! must be what skopeo reads as `docker-archive:` and `oci-archive:`, and what skopeo writes
//! must load into minidock.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A test's state root.
struct World {
    root: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        World {
            root: tempfile::Builder::new()
                .prefix("minidock-archive")
                .tempdir()
                .unwrap(),
        }
    }

    fn minidock(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_minidock"))
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.minidock(args);
        assert!(
            out.status.success(),
            "minidock {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.minidock(args);
        assert!(!out.status.success(), "minidock {args:?} should fail");
        String::from_utf8(out.stderr).unwrap()
    }

    fn inspect(&self, image: &str) -> serde_json::Value {
        let all: serde_json::Value =
            serde_json::from_str(&self.ok(&["image", "inspect", image])).unwrap();
        all[0].clone()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// Imports a one-file image; returns its ID.
    fn import(&self, content: &str, name: &str) -> String {
        let tar = self.path("in.tar");
        fs::write(&tar, tar_of(&[("hello.txt", content.as_bytes())])).unwrap();
        let id = self.ok(&[
            "import",
            "-c",
            r#"CMD ["cat", "/hello.txt"]"#,
            "-m",
            "a test image",
            tar.to_str().unwrap(),
            name,
        ]);
        fs::remove_file(tar).unwrap();
        id.trim().to_owned()
    }
}

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_size(data.len() as u64);
        builder.append_data(&mut header, path, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn skopeo_available() -> bool {
    common::prerequisite(
        Command::new("skopeo").arg("--version").output().is_ok(),
        "skopeo is not installed (apt-get install skopeo)",
    )
}

fn archive_names(path: &Path) -> Vec<String> {
    let mut archive = tar::Archive::new(fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_docker_archive_is_read_by_skopeo_and_loads_back() {
    if !skopeo_available() {
        return;
    }
    // The default is Docker 25's archive, which is both formats; docker-legacy is Docker 24's.
    for format in ["docker", "docker-legacy"] {
        docker_archive_round_trip(format);
    }
}

fn docker_archive_round_trip(format: &str) {
    let world = World::new();
    let id = world.import("saved\n", "saved/app:1");
    let file = world.path("app.tar");
    let mut args = vec!["save", "-o", file.to_str().unwrap(), "saved/app:1"];
    if format != "docker" {
        args.extend(["--format", format]);
    }
    world.ok(&args);

    let names = archive_names(&file);
    assert!(names.contains(&"manifest.json".to_owned()), "{names:?}");
    assert!(names.contains(&"repositories".to_owned()), "{names:?}");
    let hex = id.trim_start_matches("sha256:");
    let (config_name, both) = match format {
        "docker" => (format!("blobs/sha256/{hex}"), true),
        _ => (format!("{hex}.json"), false),
    };
    assert!(names.contains(&config_name), "{names:?}");
    assert_eq!(
        names.iter().any(|n| n.ends_with("/layer.tar")),
        !both,
        "{names:?}"
    );
    assert_eq!(names.contains(&"index.json".to_owned()), both, "{names:?}");
    assert_eq!(names.contains(&"oci-layout".to_owned()), both, "{names:?}");

    // skopeo reads it as Docker's format (and the default one as OCI's too), and sees our
    // config and our layer's DiffID.
    let mut transports = vec!["docker-archive"];
    if both {
        transports.push("oci-archive");
    }
    let ours = world.inspect("saved/app:1");
    for transport in transports {
        let inspect: serde_json::Value = serde_json::from_str(&skopeo(&[
            "inspect",
            "--config",
            &format!("{transport}:{}", file.display()),
        ]))
        .unwrap();
        assert_eq!(
            inspect["config"]["Cmd"],
            serde_json::json!(["cat", "/hello.txt"]),
            "{transport}"
        );
        assert_eq!(inspect["rootfs"]["diff_ids"], ours["RootFS"]["Layers"]);
        // skopeo copies it out, verifying every layer on the way.
        let copy = tempfile::tempdir().unwrap();
        skopeo(&[
            "copy",
            &format!("{transport}:{}", file.display()),
            &format!("oci:{}:x", copy.path().display()),
        ]);
    }

    // And minidock loads it into an empty store: same image ID, same name.
    let other = World::new();
    let out = other.ok(&["load", "-i", file.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: saved/app:1\n");
    assert_eq!(other.inspect("saved/app:1")["Id"], id.as_str());
    let history = other.ok(&["history", "saved/app:1"]);
    assert!(history.starts_with("IMAGE"), "{history}");
    assert!(history.contains("a test image"), "{history}");
}

#[test]
fn an_oci_archive_is_read_by_skopeo_and_loads_back_with_its_digests() {
    if !skopeo_available() {
        return;
    }
    let world = World::new();
    let id = world.import("oci\n", "oci/app:2");
    let file = world.path("app-oci.tar");
    world.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        file.to_str().unwrap(),
        "oci/app:2",
    ]);
    let names = archive_names(&file);
    assert!(names.contains(&"index.json".to_owned()), "{names:?}");
    assert!(names.contains(&"oci-layout".to_owned()), "{names:?}");
    let digest = world.inspect("oci/app:2")["Descriptor"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let inspect: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        &format!("oci-archive:{}", file.display()),
    ]))
    .unwrap();
    assert_eq!(inspect["Digest"], digest.as_str());

    let other = World::new();
    let out = other.ok(&["load", "-i", file.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: oci/app:2\n");
    let loaded = other.inspect("oci/app:2");
    assert_eq!(loaded["Id"], id.as_str());
    assert_eq!(
        loaded["Descriptor"]["digest"],
        digest.as_str(),
        "the manifest survived"
    );
}

#[test]
fn a_docker_archive_written_by_skopeo_loads_and_its_layer_unpacks() {
    if !skopeo_available() {
        return;
    }
    let world = World::new();
    let id = world.import("from skopeo\n", "src/app:3");
    let file = world.path("skopeo.tar");
    skopeo(&[
        "copy",
        &format!(
            "oci:{}:docker.io/src/app:3",
            world.root.path().join("images").display()
        ),
        &format!("docker-archive:{}:skopeo/made:latest", file.display()),
    ]);
    let other = World::new();
    let out = other.ok(&["load", "-i", file.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: skopeo/made:latest\n");
    let loaded = other.inspect("skopeo/made");
    assert_eq!(loaded["Id"], id.as_str());
    assert_eq!(
        loaded["Config"]["Cmd"],
        serde_json::json!(["cat", "/hello.txt"])
    );

    // Its layer is whole: the store unpacks it (the same code `run` uses).
    let store = minidock::image::store::Store::open(other.root.path()).unwrap();
    let image = store.resolve("skopeo/made").unwrap();
    let layers = store.unpacked_layers(&image).unwrap();
    assert_eq!(
        fs::read_to_string(layers[0].join("hello.txt")).unwrap(),
        "from skopeo\n"
    );
}

/// An archive with these (name, bytes) files.
fn archive_with(files: &[(&str, &[u8])]) -> Vec<u8> {
    tar_of(files)
}

#[test]
fn archives_with_a_bad_manifest_json_are_refused_and_load_nothing() {
    let world = World::new();
    let layer = tar_of(&[("f", b"x")]);
    let diff_id = minidock::image::store::sha256_digest(&layer).to_string();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not json", b"{not json".to_vec(), "invalid manifest.json"),
        (
            "not a list",
            br#"{"Config":"c.json"}"#.to_vec(),
            "invalid manifest.json",
        ),
        ("empty", b"[]".to_vec(), "lists no image"),
        (
            "missing config",
            br#"[{"Config":"nope.json","RepoTags":["a:1"],"Layers":["l.tar"]}]"#.to_vec(),
            "the archive has no file \"nope.json\"",
        ),
        (
            "escaping path",
            br#"[{"Config":"../../etc/passwd","RepoTags":["a:1"],"Layers":[]}]"#.to_vec(),
            "invalid path",
        ),
        (
            "layer count",
            br#"[{"Config":"c.json","RepoTags":["a:1"],"Layers":[]}]"#.to_vec(),
            "lists 0 layers, its config 1",
        ),
        (
            "wrong layer",
            br#"[{"Config":"c.json","RepoTags":["a:1"],"Layers":["other.tar"]}]"#.to_vec(),
            "does not match its DiffID",
        ),
    ];
    let other_layer = tar_of(&[("g", b"y")]);
    for (what, manifest, expected) in cases {
        let file = world.path("bad.tar");
        fs::write(
            &file,
            archive_with(&[
                ("manifest.json", &manifest),
                ("c.json", &config),
                ("l.tar", &layer),
                ("other.tar", &other_layer),
            ]),
        )
        .unwrap();
        let err = world.fails(&["load", "-i", file.to_str().unwrap()]);
        assert!(err.contains(expected), "{what}: {err}");
        assert!(
            world.ok(&["images", "-q"]).is_empty(),
            "{what}: nothing loaded"
        );
    }
    // Not an image archive at all.
    let file = world.path("plain.tar");
    fs::write(&file, tar_of(&[("etc/hostname", b"x")])).unwrap();
    let err = world.fails(&["load", "-i", file.to_str().unwrap()]);
    assert!(err.contains("not an image archive"), "{err}");
    // An entry climbing out of the archive.
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..9].copy_from_slice(b"../escape");
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(1);
    header.set_mode(0o644);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &b"x"[..]).unwrap();
    fs::write(&file, builder.into_inner().unwrap()).unwrap();
    let err = world.fails(&["load", "-i", file.to_str().unwrap()]);
    assert!(err.contains("escapes the archive"), "{err}");
    assert!(!world.root.path().join("images/escape").exists());
    assert!(!world.root.path().join("escape").exists());
}

#[test]
fn save_to_a_file_is_atomic_and_load_reads_stdin() {
    let world = World::new();
    world.import("stdin\n", "pipe/app:1");
    let file = world.path("out.tar");
    // A failing save (no such image) leaves no file behind.
    let err = world.fails(&["save", "-o", file.to_str().unwrap(), "pipe/app:1", "nope"]);
    assert!(err.contains("no such image: nope"), "{err}");
    assert!(!file.exists());
    let leftovers: Vec<_> = fs::read_dir(world.root.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".minidock-save")
        })
        .collect();
    assert!(leftovers.is_empty());

    world.ok(&["save", "-o", file.to_str().unwrap(), "pipe/app:1"]);
    let other = World::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_minidock"))
        .arg("--root")
        .arg(other.root.path())
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&fs::read(&file).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Loaded image: pipe/app:1\n"
    );
}

#[test]
fn history_shows_the_configs_history_newest_first() {
    let world = World::new();
    let id = world.import("h\n", "hist/app:1");
    let out = world.ok(&["history", "hist/app:1"]);
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d+ (seconds|minutes|hours|days|weeks|months|years) ago|Less than a second ago|About an? (minute|hour) ago", "[AGE]");
    settings.add_filter(&id[7..19], "[ID]");
    settings.add_filter(r"/tmp/\S+", "[PATH]");
    settings.bind(|| insta::assert_snapshot!("history", out));
    assert_eq!(
        world.ok(&["history", "-q", "hist/app:1"]),
        format!("{}\n", &id[7..19])
    );
    let err = world.fails(&["history", "nope"]);
    assert!(err.contains("no such image: nope"), "{err}");
}

/// `docker load` takes an archive compressed with gzip, bzip2, xz or zstd (it sniffs the magic
/// bytes); so does `load`, from a file or from stdin. The compressors are the system's own.
#[test]
fn load_takes_compressed_archives() {
    let tools = ["gzip", "bzip2", "xz", "zstd"];
    if !tools.iter().all(|t| {
        common::prerequisite(
            common::have(t, "--version"),
            &format!("{t} is not installed"),
        )
    }) {
        return;
    }
    let world = World::new();
    let id = world.import("packed\n", "packed/app:1");
    let file = world.path("app.tar");
    world.ok(&["save", "-o", file.to_str().unwrap(), "packed/app:1"]);
    for tool in tools {
        let packed = world.path(&format!("app.tar.{tool}"));
        let out = Command::new(tool)
            .args(["-c", file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{tool}: {out:?}");
        fs::write(&packed, &out.stdout).unwrap();

        let other = World::new();
        let loaded = other.ok(&["load", "-i", packed.to_str().unwrap()]);
        assert_eq!(loaded, "Loaded image: packed/app:1\n", "{tool}");
        assert_eq!(other.inspect("packed/app:1")["Id"], id.as_str(), "{tool}");

        // import takes the same compressions (moby's DecompressStream): same DiffID.
        let rootfs = world.path("rootfs.tar");
        fs::write(&rootfs, tar_of(&[("hello.txt", b"packed\n")])).unwrap();
        let packed_rootfs = Command::new(tool)
            .args(["-c", rootfs.to_str().unwrap()])
            .output()
            .unwrap();
        let packed_path = world.path(&format!("rootfs.tar.{tool}"));
        fs::write(&packed_path, packed_rootfs.stdout).unwrap();
        other.ok(&["import", rootfs.to_str().unwrap(), "plain:1"]);
        other.ok(&["import", packed_path.to_str().unwrap(), "packed:1"]);
        assert_eq!(
            other.inspect("packed:1")["RootFS"],
            other.inspect("plain:1")["RootFS"],
            "{tool}"
        );

        let third = World::new();
        let mut child = Command::new(env!("CARGO_BIN_EXE_minidock"))
            .arg("--root")
            .arg(third.root.path())
            .arg("load")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
        let piped = child.wait_with_output().unwrap();
        assert!(piped.status.success(), "{tool} on stdin");
        assert_eq!(third.inspect("packed/app:1")["Id"], id.as_str(), "{tool}");
    }
}
