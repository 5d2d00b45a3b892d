//! The local image store: references, verified blobs, the tag index under parallel writers,
//! `import`, `images`, `image inspect`, `rmi` and garbage collection.
//!
//! These tests call the library directly (no root needed): the store is plain files under a
//! temp state root. The interop test reads the store with skopeo, which proves it is a real
//! OCI image layout.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use minidock::image::cli::{ImagesArgs, images_table, inspect, to_docker_json};
use minidock::image::import::{ImportOptions, import};
use minidock::image::reference::Reference;
use minidock::image::store::{
    Blob, ContainerUse, Removed, Store, containers_from_state, parse_digest, sha256_digest,
};

/// A fixed creation time, so that image IDs and CREATED are reproducible.
const CREATED: u64 = 1_700_000_000;

fn created() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(CREATED)
}

fn temp_root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("minidock-store-test")
        .tempdir()
        .expect("creating a temp state root")
}

/// A small root filesystem as a tar, built in memory with fixed owners and times, so the same
/// `variant` always gives the same bytes (and so the same DiffID).
fn rootfs_tar(variant: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(CREATED);
        header.set_size(data.len() as u64);
        if let Some(target) = link {
            header.set_link_name(target).unwrap();
        }
        builder.append_data(&mut header, path, data).unwrap();
    };
    add("bin/", tar::EntryType::Directory, 0o755, b"", None);
    add(
        "bin/hello",
        tar::EntryType::Regular,
        0o755,
        b"#!/bin/sh\necho hello\n",
        None,
    );
    add("bin/sh", tar::EntryType::Symlink, 0o777, b"", Some("hello"));
    add("etc/", tar::EntryType::Directory, 0o755, b"", None);
    add(
        "etc/variant",
        tar::EntryType::Regular,
        0o644,
        variant.as_bytes(),
        None,
    );
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn options(changes: &[&str]) -> ImportOptions {
    ImportOptions {
        source: "-".into(),
        changes: changes.iter().map(|c| c.to_string()).collect(),
        created: Some(created()),
        ..ImportOptions::default()
    }
}

fn name(text: &str) -> Reference {
    Reference::parse(text).unwrap()
}

/// The file names in a directory, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn blobs(root: &Path) -> Vec<String> {
    names_in(&root.join("images/blobs/sha256"))
}

fn ingest(root: &Path) -> Vec<String> {
    names_in(&root.join("images/ingest"))
}

/// Every name in the tag index, normalised.
fn tag_index(store: &Store) -> BTreeSet<String> {
    store
        .entries()
        .unwrap()
        .iter()
        .filter_map(|e| minidock::image::store::ref_name(e).map(str::to_owned))
        .collect()
}

/// Snapshot settings that redact what differs between runs and hosts: digests, IDs, the temp
/// root, the architecture.
fn redactions(root: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&root.display().to_string()), "[root]");
    settings.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[digest]");
    settings.add_filter(r"/layers/[0-9a-f]{64}", "/layers/[chain-id]");
    settings.add_filter(r"\b[0-9a-f]{12}\b", "[id]");
    settings.add_filter(
        r#""Architecture": "[a-z0-9]+""#,
        r#""Architecture": "[arch]""#,
    );
    // The compressed layer's size depends on the gzip implementation; the rest is exact.
    settings.add_filter(r"(?m)\b\d+(\.\d+)?[kMG]?B$", "[size]");
    settings.add_filter(r#""Size": \d+"#, r#""Size": [size]"#);
    settings
}

fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

// ------------------------------------------------------------------------------------------
// References
// ------------------------------------------------------------------------------------------

#[test]
fn references_normalise_as_docker_does() {
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    let inputs = [
        "busybox".to_owned(),
        "busybox:latest".to_owned(),
        "docker.io/library/busybox:latest".to_owned(),
        "index.docker.io/library/busybox".to_owned(),
        "library/busybox:1.36".to_owned(),
        "user/app".to_owned(),
        "user/app:v1.0-rc_2".to_owned(),
        "localhost/app".to_owned(),
        "localhost:5000/team/app:dev".to_owned(),
        "127.0.0.1:5000/app".to_owned(),
        "registry.example.com/a/b/c:tag".to_owned(),
        "[::1]:5000/app:x".to_owned(),
        "a.b-c__d/e".to_owned(),
        "user/a_b.c__d-e--f".to_owned(),
        "my--app".to_owned(),
        format!("busybox@{digest}"),
        format!("busybox:1.36@{digest}"),
        // Bad ones: each must say why, on one line.
        String::new(),
        "Busybox".to_owned(),
        "busybox:".to_owned(),
        "busybox:-x".to_owned(),
        "busybox:a/b".to_owned(),
        "a//b".to_owned(),
        "-app".to_owned(),
        "app-".to_owned(),
        "a...b".to_owned(),
        "has space".to_owned(),
        "localhost:port/app".to_owned(),
        "busybox@sha256:abc".to_owned(),
        format!("busybox@md5:{}", "0".repeat(32)),
        "0123456789abcdef".repeat(4),
        format!("x:{}", "t".repeat(129)),
        "a".repeat(256),
    ];
    let mut table = String::new();
    for input in &inputs {
        let line = match Reference::parse(input) {
            Ok(r) => format!(
                "{input:?} -> {r} (familiar {}, domain {}, path {})",
                r.familiar(),
                r.domain(),
                r.path()
            ),
            Err(err) => {
                let message = format!("{err:#}");
                assert!(!message.contains('\n'), "multi-line error: {message}");
                format!("{input:?} -> error: {message}")
            }
        };
        table.push_str(&line);
        table.push('\n');
    }
    insta::assert_snapshot!(table);
}

// ------------------------------------------------------------------------------------------
// Blobs
// ------------------------------------------------------------------------------------------

#[test]
fn a_blob_that_does_not_match_its_digest_is_rejected_and_nothing_is_named() {
    let root = temp_root();
    let store = Store::open(root.path()).unwrap();
    let claimed = Blob {
        digest: sha256_digest(b"the real content"),
        size: 16,
    };
    let err = store
        .put_blob(b"tampered content", Some(&claimed))
        .unwrap_err();
    assert!(format!("{err:#}").contains("digest mismatch"), "{err:#}");
    assert!(blobs(root.path()).is_empty(), "a bad blob was named");
    assert!(
        ingest(root.path()).is_empty(),
        "a temp file was left behind"
    );

    // Right digest, wrong size: rejected too.
    let wrong_size = Blob {
        digest: sha256_digest(b"the real content"),
        size: 99,
    };
    let err = store
        .put_blob(b"the real content", Some(&wrong_size))
        .unwrap_err();
    assert!(format!("{err:#}").contains("size mismatch"), "{err:#}");
    assert!(blobs(root.path()).is_empty());

    // The genuine bytes are stored under their digest, and reading verifies them again.
    let blob = store.put_blob(b"the real content", Some(&claimed)).unwrap();
    assert_eq!(blob, claimed);
    assert_eq!(blobs(root.path()), vec![claimed.digest.digest().to_owned()]);
    assert_eq!(
        store.read_blob(&claimed.digest).unwrap(),
        b"the real content"
    );
    let path = store.blob_path(&claimed.digest).unwrap();
    fs::write(&path, b"bit rot").unwrap();
    let err = store.read_blob(&claimed.digest).unwrap_err();
    assert!(format!("{err:#}").contains("corrupt"), "{err:#}");
}

#[test]
fn the_store_is_an_oci_image_layout() {
    let root = temp_root();
    Store::open(root.path()).unwrap();
    let layout: serde_json::Value =
        serde_json::from_slice(&fs::read(root.path().join("images/oci-layout")).unwrap()).unwrap();
    assert_eq!(layout["imageLayoutVersion"], "1.0.0");
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(root.path().join("images/index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["manifests"], serde_json::json!([]));
}

// ------------------------------------------------------------------------------------------
// Import, images, inspect
// ------------------------------------------------------------------------------------------

#[test]
fn import_makes_a_one_layer_oci_image() {
    let root = temp_root();
    let store = Store::open(root.path()).unwrap();
    let tar = rootfs_tar("one");
    let image = import(
        &store,
        &tar[..],
        &[name("busybox")],
        &options(&[r#"CMD ["/bin/sh"]"#, "ENV PATH=/bin"]),
    )
    .unwrap();

    // The layer's DiffID is the sha256 of the tar as given; its blob is gzip.
    let diff_id = sha256_digest(&tar);
    assert_eq!(image.config.rootfs().diff_ids(), &vec![diff_id.to_string()]);
    let layer = &image.manifest.layers()[0];
    assert_eq!(
        layer.media_type().to_string(),
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let blob = fs::read(store.blob_path(layer.digest()).unwrap()).unwrap();
    assert_eq!(&blob[..2], &[0x1f, 0x8b], "the layer blob is gzip");
    assert_eq!(sha256_digest(&blob), *layer.digest());
    assert_eq!(blob.len() as u64, layer.size());
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut unpacked)
        .unwrap();
    assert_eq!(unpacked, tar, "the blob decompresses to the original tar");

    // The ID is the config's digest, and every blob is stored under its own digest.
    assert_eq!(
        image.id,
        sha256_digest(&store.read_blob(&image.id).unwrap())
    );
    assert_eq!(blobs(root.path()).len(), 3, "manifest, config, layer");
    assert!(ingest(root.path()).is_empty());

    // The same tar, gzip-compressed, is the same layer (same DiffID), hence the same image ID.
    let again = import(
        &store,
        &gzip(&tar)[..],
        &[name("again")],
        &options(&[r#"CMD ["/bin/sh"]"#, "ENV PATH=/bin"]),
    )
    .unwrap();
    assert_eq!(again.id, image.id);
    assert_eq!(
        tag_index(&store),
        BTreeSet::from([
            "docker.io/library/again:latest".to_owned(),
            "docker.io/library/busybox:latest".to_owned()
        ])
    );
}

#[test]
fn images_and_inspect_show_what_docker_shows() {
    let root = temp_root();
    let store = Store::open(root.path()).unwrap();
    import(
        &store,
        &rootfs_tar("one")[..],
        &[name("busybox")],
        &options(&[
            r#"CMD ["sh"]"#,
            "WORKDIR /srv",
            "EXPOSE 8080",
            "LABEL org.example=yes",
        ]),
    )
    .unwrap();
    import(
        &store,
        &gzip(&rootfs_tar("two"))[..],
        &[name("localhost:5000/team/app:v2")],
        &options(&[]),
    )
    .unwrap();
    store.tag("busybox", &name("busybox:1.36")).unwrap();

    let two_hours_later = created() + Duration::from_secs(2 * 3600);
    let table = images_table(&store, &ImagesArgs::default(), two_hours_later).unwrap();
    redactions(root.path()).bind(|| insta::assert_snapshot!("images", table));

    let with_digests = ImagesArgs {
        digests: true,
        ..ImagesArgs::default()
    };
    let table = images_table(&store, &with_digests, two_hours_later).unwrap();
    redactions(root.path()).bind(|| insta::assert_snapshot!("images_digests", table));

    let quiet = ImagesArgs {
        quiet: true,
        ..ImagesArgs::default()
    };
    let ids = images_table(&store, &quiet, two_hours_later).unwrap();
    assert_eq!(ids.lines().count(), 2, "-q lists each image once:\n{ids}");
    assert!(ids.lines().all(|id| id.len() == 12));

    let only_busybox = ImagesArgs {
        filter: Some("busybox:1.36".into()),
        ..ImagesArgs::default()
    };
    let table = images_table(&store, &only_busybox, two_hours_later).unwrap();
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.contains("1.36"));

    let image = store.resolve("busybox").unwrap();
    let json = to_docker_json(&vec![inspect(&store, &image).unwrap()]).unwrap();
    redactions(root.path()).bind(|| insta::assert_snapshot!("inspect", json));
}

#[test]
fn images_are_found_by_name_id_and_id_prefix() {
    let root = temp_root();
    let store = Store::open(root.path()).unwrap();
    let image = import(
        &store,
        &rootfs_tar("one")[..],
        &[name("busybox:1.36")],
        &options(&[]),
    )
    .unwrap();
    let hex = image.id.digest();
    for text in [
        "busybox:1.36".to_owned(),
        "docker.io/library/busybox:1.36".to_owned(),
        image.id.to_string(),
        hex.to_owned(),
        hex[..12].to_owned(),
        format!("sha256:{}", &hex[..6]),
        format!("busybox@{}", image.manifest_descriptor.digest()),
    ] {
        assert_eq!(store.resolve(&text).unwrap().id, image.id, "{text}");
    }
    let err = store.resolve("busybox").unwrap_err();
    assert_eq!(format!("{err:#}"), "no such image: busybox");
    assert_eq!(minidock::cli::exit_code_of(&err), 1);
}

#[test]
fn hostile_or_broken_tarballs_are_refused_and_leave_nothing() {
    let root = temp_root();
    let store = Store::open(root.path()).unwrap();

    let mut climbing = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    // tar::Builder refuses '..' itself, so write the name into the header by hand.
    header.as_old_mut().name[..13].copy_from_slice(b"../etc/passwd");
    header.set_cksum();
    climbing.append(&header, &b"evil"[..]).unwrap();
    let climbing = climbing.into_inner().unwrap();

    let mut xz = vec![0xfd, b'7', b'z', b'X', b'Z', 0x00];
    xz.extend_from_slice(&[0; 100]);

    for (input, expected) in [
        (Vec::new(), "empty"),
        (
            b"this is not a tar archive, just some text that goes on".repeat(20),
            "tar",
        ),
        (climbing, "'..'"),
        (xz, "xz"),
        (
            gzip(b"not a tar inside the gzip either, no no no").repeat(20),
            "tar",
        ),
    ] {
        let err = import(&store, &input[..], &[name("bad")], &options(&[])).unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains(expected),
            "expected {expected:?} in: {message}"
        );
        assert!(!message.contains('\n'));
    }
    assert!(blobs(root.path()).is_empty(), "{:?}", blobs(root.path()));
    assert!(ingest(root.path()).is_empty());
    assert!(store.entries().unwrap().is_empty());

    let err = import(&store, &rootfs_tar("x")[..], &[], &options(&["RUN true"])).unwrap_err();
    assert!(format!("{err:#}").contains("invalid --change"));
}

// ------------------------------------------------------------------------------------------
// The tag index under parallel writers
// ------------------------------------------------------------------------------------------

#[test]
fn twenty_parallel_tags_are_all_kept() {
    let root = temp_root();
    let store = Store::open(root.path()).unwrap();
    import(
        &store,
        &rootfs_tar("one")[..],
        &[name("busybox")],
        &options(&[]),
    )
    .unwrap();

    // Each thread opens the store on its own, as separate CLI processes would; flock(2) locks
    // belong to open files, so the threads exclude each other as processes do.
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let root: PathBuf = root.path().to_path_buf();
            std::thread::spawn(move || {
                let store = Store::open(&root).unwrap();
                store
                    .tag("busybox", &name(&format!("parallel/t{i}:v{i}")))
                    .unwrap();
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let mut expected: BTreeSet<String> = (0..20)
        .map(|i| format!("docker.io/parallel/t{i}:v{i}"))
        .collect();
    expected.insert("docker.io/library/busybox:latest".into());
    assert_eq!(tag_index(&store), expected);
    // index.json is replaced whole, never left as a temp file.
    assert!(
        names_in(&root.path().join("images"))
            .iter()
            .all(|n| !n.starts_with(".tmp")),
        "{:?}",
        names_in(&root.path().join("images"))
    );
}

#[test]
fn parallel_imports_under_the_same_tag_keep_a_consistent_index() {
    let root = temp_root();
    Store::open(root.path()).unwrap();
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let root: PathBuf = root.path().to_path_buf();
            std::thread::spawn(move || {
                let store = Store::open(&root).unwrap();
                import(
                    &store,
                    &rootfs_tar(&format!("v{i}"))[..],
                    &[name("racy")],
                    &options(&[]),
                )
                .unwrap();
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let store = Store::open(root.path()).unwrap();
    let images = store.images().unwrap();
    // Six images: one holds the tag, the five others are untagged (dangling), none lost.
    assert_eq!(images.len(), 6);
    assert_eq!(images.iter().filter(|i| !i.names.is_empty()).count(), 1);
    assert_eq!(blobs(root.path()).len(), 18);
}

// ------------------------------------------------------------------------------------------
// rmi and garbage collection
// ------------------------------------------------------------------------------------------

#[test]
fn rmi_untags_then_deletes_and_collects_garbage() {
    let root = temp_root();
    let store = Store::open(root.path()).unwrap();
    let one = import(
        &store,
        &rootfs_tar("one")[..],
        &[name("busybox")],
        &options(&[]),
    )
    .unwrap();
    let two = import(
        &store,
        &rootfs_tar("two")[..],
        &[name("other")],
        &options(&[]),
    )
    .unwrap();
    store.tag("busybox", &name("busybox:1.36")).unwrap();
    let no_containers = |_: &Store| Ok(Vec::new());
    // A stray temp file from a writer killed mid-blob, and an unpacked layer of image one.
    fs::write(root.path().join("images/ingest/blob-killed"), b"half").unwrap();
    let chain = one.chain_ids().unwrap();
    fs::create_dir_all(store.layer_dir(&chain[0]).join("bin")).unwrap();
    let two_chain = two.chain_ids().unwrap();
    fs::create_dir_all(store.layer_dir(&two_chain[0])).unwrap();

    // Two names: removing one only untags.
    let events = store.remove("busybox:1.36", false, no_containers).unwrap();
    assert_eq!(events, vec![Removed::Untagged(name("busybox:1.36"))]);
    assert_eq!(blobs(root.path()).len(), 6);

    // The last name: untag, delete, and collect its three blobs and its unpacked layer.
    let events = store.remove("busybox", false, no_containers).unwrap();
    assert_eq!(
        events,
        vec![
            Removed::Untagged(name("busybox")),
            Removed::Deleted(one.id.clone())
        ]
    );
    let left: BTreeSet<String> = blobs(root.path()).into_iter().collect();
    let expected: BTreeSet<String> = [
        two.id.digest().to_owned(),
        two.manifest_descriptor.digest().digest().to_owned(),
        two.manifest.layers()[0].digest().digest().to_owned(),
    ]
    .into();
    assert_eq!(left, expected);
    assert!(
        ingest(root.path()).is_empty(),
        "stale temp files are collected"
    );
    assert!(
        !store.layer_dir(&chain[0]).exists(),
        "its unpacked layer is collected"
    );
    assert!(store.layer_dir(&two_chain[0]).exists(), "other layers stay");

    let err = store.remove("busybox", false, no_containers).unwrap_err();
    assert_eq!(format!("{err:#}"), "no such image: busybox");
}

#[test]
fn rmi_refuses_an_image_a_container_uses_unless_forced() {
    let root = temp_root();
    let store = Store::open(root.path()).unwrap();
    let image = import(
        &store,
        &rootfs_tar("one")[..],
        &[name("busybox")],
        &options(&[]),
    )
    .unwrap();
    // The container layer records the image ID in <root>/containers/<id>/config.json; a
    // container directory is one once it has its state.json.
    let container = "c0ffee0123456789c0ffee0123456789";
    let dir = root.path().join("containers").join(container);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("state.json"), "{}").unwrap();
    fs::write(
        dir.join("config.json"),
        serde_json::json!({ "Image": image.id.to_string() }).to_string(),
    )
    .unwrap();
    assert_eq!(
        containers_from_state(root.path()).unwrap(),
        vec![ContainerUse {
            container: container.into(),
            image: image.id.to_string(),
            running: false,
        }]
    );
    let in_use = |store: &Store| containers_from_state(store.state_root());

    let err = store.remove("busybox", false, in_use).unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.starts_with("conflict: unable to remove repository reference"),
        "{message}"
    );
    assert!(message.contains("c0ffee012345"), "{message}");
    assert_eq!(minidock::cli::exit_code_of(&err), 1);
    let err = store.remove(image.short_id(), false, in_use).unwrap_err();
    assert!(format!("{err:#}").contains("being used by container c0ffee012345"));
    assert_eq!(blobs(root.path()).len(), 3, "nothing was removed");

    // Forced: the name goes, the content stays (untagged) for the container's sake.
    let events = store.remove("busybox", true, in_use).unwrap();
    assert_eq!(events, vec![Removed::Untagged(name("busybox"))]);
    assert_eq!(blobs(root.path()).len(), 3);
    let images = store.images().unwrap();
    assert_eq!(images.len(), 1);
    assert!(images[0].names.is_empty());

    // Once the container is gone, the untagged image is removed by ID.
    fs::remove_dir_all(&dir).unwrap();
    let events = store.remove(image.short_id(), false, in_use).unwrap();
    assert_eq!(events, vec![Removed::Deleted(image.id.clone())]);
    assert!(blobs(root.path()).is_empty());
    assert!(store.entries().unwrap().is_empty());
}

#[test]
fn rmi_by_id_of_an_image_in_two_repositories_needs_force() {
    let root = temp_root();
    let store = Store::open(root.path()).unwrap();
    let image = import(
        &store,
        &rootfs_tar("one")[..],
        &[name("busybox")],
        &options(&[]),
    )
    .unwrap();
    store.tag("busybox", &name("mirror/busybox")).unwrap();
    let none = |_: &Store| Ok(Vec::new());
    let err = store.remove(image.id.as_ref(), false, none).unwrap_err();
    assert!(format!("{err:#}").contains("referenced in multiple repositories"));
    let events = store.remove(image.id.as_ref(), true, none).unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[2], Removed::Deleted(image.id.clone()));
    assert!(blobs(root.path()).is_empty());
}

#[test]
fn a_retag_leaves_the_old_image_dangling_as_docker_does() {
    let root = temp_root();
    let store = Store::open(root.path()).unwrap();
    let old = import(
        &store,
        &rootfs_tar("old")[..],
        &[name("app")],
        &options(&[]),
    )
    .unwrap();
    let new = import(
        &store,
        &rootfs_tar("new")[..],
        &[name("app")],
        &options(&[]),
    )
    .unwrap();
    assert_ne!(old.id, new.id);
    assert_eq!(store.resolve("app").unwrap().id, new.id);
    let dangling = store.resolve(old.id.digest()).unwrap();
    assert!(dangling.names.is_empty());
    let table = images_table(&store, &ImagesArgs::default(), created()).unwrap();
    assert!(table.lines().any(|l| l.starts_with("<none>")), "{table}");
}

#[test]
fn a_digest_reference_resolves_within_its_repository() {
    let root = temp_root();
    let store = Store::open(root.path()).unwrap();
    let image = import(
        &store,
        &rootfs_tar("one")[..],
        &[name("busybox")],
        &options(&[]),
    )
    .unwrap();
    let manifest = image.manifest_descriptor.digest().to_string();
    assert_eq!(
        store.resolve(&format!("busybox@{manifest}")).unwrap().id,
        image.id
    );
    assert!(store.resolve(&format!("other@{manifest}")).is_err());
    assert!(parse_digest("sha256:nothex").is_err());
}

// ------------------------------------------------------------------------------------------
// Interop: the store is a standard OCI layout that skopeo reads
// ------------------------------------------------------------------------------------------

#[test]
fn skopeo_reads_the_store_as_an_oci_layout() {
    let skopeo = Command::new("skopeo").arg("--version").output();
    if !common::prerequisite(
        skopeo.is_ok_and(|o| o.status.success()),
        "skopeo is not installed (apt-get install skopeo)",
    ) {
        return;
    }
    let root = temp_root();
    let store = Store::open(root.path()).unwrap();
    let image = import(
        &store,
        &rootfs_tar("one")[..],
        &[name("busybox")],
        &options(&[r#"CMD ["sh"]"#]),
    )
    .unwrap();
    let layout = format!(
        "oci:{}:docker.io/library/busybox:latest",
        store.dir().display()
    );
    let out = Command::new("skopeo")
        .args(["inspect", "--config", &layout])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!([image.config.rootfs().diff_ids()[0]])
    );

    // skopeo copies it out, re-verifying every digest on the way.
    let copy = temp_root();
    let out = Command::new("skopeo")
        .args(["copy", &layout, &format!("dir:{}", copy.path().display())])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        copy.path()
            .join(image.manifest.layers()[0].digest().digest())
            .exists()
    );
}

#[test]
fn a_lease_holds_off_garbage_collection_until_the_image_is_indexed() {
    use nix::fcntl::{Flock, FlockArg};
    let root = temp_root();
    let store = Store::open(root.path()).unwrap();
    let lease = store.lease().unwrap();
    // A writer under a lease: its blob is stored but not yet referenced by index.json.
    let fresh = store.put_blob(b"a fresh, unreferenced blob", None).unwrap();
    // Garbage collection takes gc.lock exclusively, so it would wait now.
    let gc_lock = fs::File::open(root.path().join("images/gc.lock")).unwrap();
    assert!(
        Flock::lock(gc_lock, FlockArg::LockExclusiveNonblock).is_err(),
        "garbage collection could run while a writer holds a lease"
    );
    drop(lease);
    let report = store.gc().unwrap();
    assert_eq!(report.blobs_removed, vec![fresh.digest.digest().to_owned()]);
    assert!(blobs(root.path()).is_empty());
}

// ------------------------------------------------------------------------------------------
// Unpacked layers
// ------------------------------------------------------------------------------------------

/// Stores a two-layer image by hand, as `pull` and `load` will: blobs first, then the name.
fn two_layer_image(store: &Store, tag: &str) -> minidock::image::store::Image {
    use oci_spec::image::{
        ImageConfigurationBuilder, ImageManifestBuilder, MediaType, RootFsBuilder,
    };
    let base = rootfs_tar("base");
    let mut top = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(3);
    header.set_mtime(CREATED);
    top.append_data(&mut header, "etc/top", &b"top"[..])
        .unwrap();
    let top = top.into_inner().unwrap();

    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in [&base, &top] {
        let blob = store.put_blob(&gzip(tar), None).unwrap();
        layers.push(blob.descriptor(MediaType::ImageLayerGzip));
        diff_ids.push(sha256_digest(tar).to_string());
    }
    let config = ImageConfigurationBuilder::default()
        .rootfs(RootFsBuilder::default().diff_ids(diff_ids).build().unwrap())
        .build()
        .unwrap();
    let config = store
        .put_blob(&serde_json::to_vec(&config).unwrap(), None)
        .unwrap();
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config.descriptor(MediaType::ImageConfig))
        .layers(layers)
        .build()
        .unwrap();
    let manifest = store
        .put_blob(&serde_json::to_vec(&manifest).unwrap(), None)
        .unwrap();
    store
        .add_image(&manifest.descriptor(MediaType::ImageManifest), &[name(tag)])
        .unwrap();
    store.resolve(tag).unwrap()
}

#[test]
fn layers_are_unpacked_once_by_chain_id_and_shared() {
    let root = temp_root();
    let store = Store::open(root.path()).unwrap();
    let image = two_layer_image(&store, "stacked");
    let chain = image.chain_ids().unwrap();
    assert_eq!(
        chain[1],
        sha256_digest(format!("{} {}", chain[0], image.config.rootfs().diff_ids()[1]).as_bytes())
    );

    // Eight containers starting at once: one unpacks each layer, all get the same dirs.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let root: PathBuf = root.path().to_path_buf();
            std::thread::spawn(move || {
                let store = Store::open(&root).unwrap();
                let image = store.resolve("stacked").unwrap();
                store.unpacked_layers(&image).unwrap()
            })
        })
        .collect();
    // Join them all before asserting, so the temp root outlives every thread.
    let joined: Vec<_> = threads.into_iter().map(|t| t.join()).collect();
    let results: Vec<Vec<PathBuf>> = joined.into_iter().map(|r| r.unwrap()).collect();
    let dirs = &results[0];
    assert!(results.iter().all(|r| r == dirs));
    assert_eq!(
        dirs,
        &vec![store.layer_dir(&chain[0]), store.layer_dir(&chain[1])]
    );
    assert_eq!(
        fs::read_to_string(dirs[0].join("bin/hello")).unwrap(),
        "#!/bin/sh\necho hello\n"
    );
    assert_eq!(
        fs::read_link(dirs[0].join("bin/sh")).unwrap(),
        Path::new("hello")
    );
    assert_eq!(fs::read_to_string(dirs[1].join("etc/top")).unwrap(), "top");
    assert!(
        !dirs[1].join("bin").exists(),
        "a layer dir holds only its own diff"
    );
    // Nothing but the two layers (and their lock files) is left in layers/.
    let left: Vec<String> = names_in(&store.layers_dir())
        .into_iter()
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");

    // Unpacked once: a file added to the layer dir survives the next call.
    fs::write(dirs[1].join("marker"), b"").unwrap();
    assert_eq!(&store.unpacked_layers(&image).unwrap(), dirs);
    assert!(dirs[1].join("marker").exists());

    // rmi collects the unpacked layers with the blobs.
    store.remove("stacked", false, |_| Ok(Vec::new())).unwrap();
    assert!(
        names_in(&store.layers_dir()).is_empty(),
        "{:?}",
        names_in(&store.layers_dir())
    );
    assert!(blobs(root.path()).is_empty());
}

#[test]
fn a_layer_whose_content_does_not_match_its_diff_id_is_not_unpacked() {
    use oci_spec::image::{
        ImageConfigurationBuilder, ImageManifestBuilder, MediaType, RootFsBuilder,
    };
    let root = temp_root();
    let store = Store::open(root.path()).unwrap();
    let layer = store.put_blob(&gzip(&rootfs_tar("real")), None).unwrap();
    // The config claims another tar's DiffID.
    let config = ImageConfigurationBuilder::default()
        .rootfs(
            RootFsBuilder::default()
                .diff_ids(vec![sha256_digest(&rootfs_tar("claimed")).to_string()])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let config = store
        .put_blob(&serde_json::to_vec(&config).unwrap(), None)
        .unwrap();
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .config(config.descriptor(MediaType::ImageConfig))
        .layers(vec![layer.descriptor(MediaType::ImageLayerGzip)])
        .build()
        .unwrap();
    let manifest = store
        .put_blob(&serde_json::to_vec(&manifest).unwrap(), None)
        .unwrap();
    store
        .add_image(
            &manifest.descriptor(MediaType::ImageManifest),
            &[name("liar")],
        )
        .unwrap();
    let image = store.resolve("liar").unwrap();
    let err = store.unpacked_layers(&image).unwrap_err();
    assert!(format!("{err:#}").contains("diff_id"), "{err:#}");
    // No layer directory, complete or partial, is left under a ChainID.
    let left: Vec<String> = names_in(&store.layers_dir())
        .into_iter()
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_busybox_rootfs_imports_and_unpacks_into_a_runnable_tree() {
    if !common::prerequisite(
        Path::new("/bin/busybox").exists(),
        "busybox-static (/bin/busybox) is not installed",
    ) {
        return;
    }
    let rootfs = common::busybox_rootfs();
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    tar.append_dir_all(".", rootfs.path()).unwrap();
    let tar = tar.into_inner().unwrap();

    let root = temp_root();
    let store = Store::open(root.path()).unwrap();
    let image = import(
        &store,
        &gzip(&tar)[..],
        &[name("busybox")],
        &options(&[r#"CMD ["sh"]"#]),
    )
    .unwrap();
    let dirs = store.unpacked_layers(&image).unwrap();
    assert_eq!(dirs.len(), 1);
    let busybox = dirs[0].join("bin/busybox");
    assert_eq!(
        fs::read(&busybox).unwrap(),
        fs::read("/bin/busybox").unwrap()
    );
    assert_eq!(
        fs::read_link(dirs[0].join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    // The unpacked busybox runs.
    let out = Command::new(&busybox)
        .args(["echo", "hello from the layer"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from the layer\n"
    );
}
