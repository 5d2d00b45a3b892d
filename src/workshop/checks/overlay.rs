//! Checks for the overlay lessons (06 copy-up, 07 whiteouts and layers).
//!
//! The checker builds the "image" layer itself in a scratch directory, runs the learner's
//! program on it, and then reads the evidence the kernel left: the mount table, the files and
//! device nodes in the upper dir, the overlay xattrs, and the entries of the layer the program
//! wrote, which it finally applies with minidock's own unpacker. Whatever happens, it unmounts
//! and removes the scratch directory.

use super::{Need, Trace, describe_failure, require_root, run_captured};
use crate::image::layer::{self, ApplyOptions, Compression};
use crate::overlay;
use crate::workshop::Observation;
use anyhow::{Context, Result};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const ORIGINAL: &str = "from the image\n";
const NEW_TEXT: &str = "edited in the container\n";

/// A scratch directory with `lower/ upper/ work/ merged/`. On drop, whatever the learner left
/// mounted on `merged` is detached before the directory is removed.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new(lesson: &str) -> Result<Scratch> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("minidock-{lesson}-"))
            .tempdir()
            .context("creating a scratch directory")?;
        for sub in ["lower", "upper", "work", "merged"] {
            std::fs::create_dir(dir.path().join(sub))?;
        }
        Ok(Scratch { dir })
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, content: &str) -> Result<()> {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))
    }

    fn layer_args(&self) -> Vec<PathBuf> {
        ["lower", "upper", "work", "merged"]
            .iter()
            .map(|d| self.path(d))
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let merged = self.path("merged");
        // A learner may have mounted more than once; peel every layer off.
        for _ in 0..8 {
            match overlay::mount_type(&merged) {
                Ok(Some(_)) => {
                    let _ = nix::mount::umount2(&merged, nix::mount::MntFlags::MNT_DETACH);
                }
                _ => break,
            }
        }
    }
}

/// The owner (uid and gid) and mode the checker gives the image's `hello.txt` in lesson 06.
const IMAGE_ID: u32 = 4242;
const IMAGE_MODE: u32 = 0o604;

fn describe_owner(uid: u32, gid: u32, mode: u32) -> String {
    format!("uid {uid}, gid {gid}, mode {mode:04o}")
}

fn read_or_absent(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => format!("{text:?}"),
        Err(_) => "(absent)".into(),
    }
}

fn exit_status(output: &std::process::Output) -> Observation {
    Observation::judged(
        "the program itself",
        "exit status 0",
        if output.status.success() {
            "exit status 0".to_owned()
        } else {
            describe_failure(output)
        },
        output.status.success(),
    )
}

pub fn lesson06_copy_up(bin: &Path) -> Result<Vec<Observation>> {
    require_root()?;
    let scratch = Scratch::new("lesson06")?;
    scratch.write("lower/hello.txt", ORIGINAL)?;
    scratch.write("lower/untouched.txt", "nobody writes me\n")?;
    // The image's file has an owner and a mode of its own: copy-up carries them into UPPER,
    // a file written into UPPER directly would not have them.
    let image_file = scratch.path("lower/hello.txt");
    std::os::unix::fs::chown(&image_file, Some(IMAGE_ID), Some(IMAGE_ID))
        .context("chown of the image's file")?;
    std::fs::set_permissions(
        &image_file,
        std::os::unix::fs::PermissionsExt::from_mode(IMAGE_MODE),
    )
    .context("chmod of the image's file")?;
    let trace = Trace::new(bin, None)?;
    let output = run_captured(trace.command().args(scratch.layer_args()), LIMIT)?;
    let mut observations = vec![trace.observe(&[Need::MountType("overlay")])];

    let mounted = overlay::mount_info(&scratch.path("merged"))?;
    observations.push(Observation::equal(
        "the filesystem on MERGED (/proc/self/mountinfo)",
        "overlay",
        mounted
            .as_ref()
            .map_or("(not a mount point)".to_owned(), |m| m.fstype.clone()),
    ).likely("MERGED is not an overlay mount, so the kernel merges nothing: only a mounted overlay makes LOWER and UPPER one filesystem (copied files are a second copy of the image, not a union of its layers)"));
    if let Some(m) = mounted.as_ref().filter(|m| m.fstype == "overlay") {
        let lower = format!("lowerdir={}", scratch.path("lower").display());
        let upper = format!("upperdir={}", scratch.path("upper").display());
        let options: Vec<&str> = m.options.split(',').collect();
        observations.push(Observation::judged(
            "its layers (the mount's options)",
            format!("{lower},{upper}"),
            m.options.clone(),
            options.contains(&lower.as_str()) && options.contains(&upper.as_str()),
        ).likely("the overlay on MERGED has other layers than LOWER (read-only) and UPPER (writable)"));
    }
    observations.push(Observation::equal(
        "UPPER/hello.txt: the kernel copied the file up, then wrote",
        format!("{NEW_TEXT:?}"),
        read_or_absent(&scratch.path("upper/hello.txt")),
    ).likely("the new text is not in UPPER: a write lands in the upper layer only when it goes through the overlay mounted on MERGED"));
    observations.push(Observation::equal(
        "UPPER/hello.txt's owner and mode: the image file's, carried up by the kernel",
        describe_owner(IMAGE_ID, IMAGE_ID, IMAGE_MODE),
        std::fs::symlink_metadata(scratch.path("upper/hello.txt")).map_or_else(
            |_| "(absent)".to_owned(),
            |m| describe_owner(m.uid(), m.gid(), m.mode() & 0o7777),
        ),
    ).likely(if scratch.path("upper/hello.txt").exists() {
        "UPPER/hello.txt was written there directly, not copied up by the kernel: copy-up keeps the image file's owner and mode. Write through MERGED, never into UPPER yourself"
    } else {
        "nothing was copied up: the kernel copies a file up only when it is written through a mounted overlay"
    }));
    observations.push(Observation::equal(
        "LOWER/hello.txt: the image layer is untouched",
        format!("{ORIGINAL:?}"),
        read_or_absent(&scratch.path("lower/hello.txt")),
    ).likely("the image layer changed: the kernel never writes to LOWER, so something wrote there directly"));
    let mut in_upper: Vec<String> = std::fs::read_dir(scratch.path("upper"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    in_upper.sort();
    observations.push(Observation::equal(
        "what UPPER holds: only what changed",
        "[hello.txt]",
        format!("[{}]", in_upper.join(", ")),
    ).likely(if in_upper.is_empty() {
        "UPPER is empty: no write went through an overlay"
    } else {
        "UPPER holds other files than the one written through MERGED: the kernel copies up only what changes"
    }));
    observations.push(exit_status(&output));
    Ok(observations)
}

pub fn lesson07_whiteouts(bin: &Path) -> Result<Vec<Observation>> {
    require_root()?;
    let scratch = Scratch::new("lesson07")?;
    let image = |root: &str| -> Result<()> {
        scratch.write(&format!("{root}/keep.txt"), "keep\n")?;
        scratch.write(&format!("{root}/old.txt"), "old\n")?;
        scratch.write(&format!("{root}/cache/a.tmp"), "a\n")?;
        scratch.write(&format!("{root}/cache/b.tmp"), "b\n")
    };
    image("lower")?;
    // A change the container made before the program ran, under a name no program can know
    // in advance: the layer is the whole upper dir, as `docker commit` makes it.
    let earlier = earlier_change();
    scratch.write(&format!("upper/{}", earlier.0), &earlier.1)?;
    let layer_path = scratch.path("layer.tar");
    let output = run_captured(
        Command::new(bin)
            .args(scratch.layer_args())
            .arg(&layer_path),
        LIMIT,
    )?;
    let mut observations = Vec::new();

    let old = std::fs::symlink_metadata(scratch.path("upper/old.txt"));
    observations.push(Observation::equal(
        "UPPER/old.txt: the kernel's whiteout",
        "character device 0:0",
        match &old {
            Ok(m) if m.file_type().is_char_device() => format!(
                "character device {}:{}",
                libc::major(m.rdev()),
                libc::minor(m.rdev())
            ),
            Ok(_) => "not a character device".into(),
            Err(_) => "(absent)".into(),
        },
    ).likely("old.txt was not deleted through MERGED: the kernel records the deletion of a lower file as a character device 0:0 in UPPER"));
    let opaque =
        layer::beneath::lgetxattr(&scratch.path("upper/cache"), layer::OVERLAY_OPAQUE_XATTR)
            .ok()
            .flatten();
    observations.push(Observation::equal(
        &format!("UPPER/cache: {}", layer::OVERLAY_OPAQUE_XATTR),
        "\"y\"",
        opaque.map_or("(not set)".into(), |v| {
            format!("{:?}", String::from_utf8_lossy(&v))
        }),
    ).likely("cache was not removed and made again through MERGED: only then does the kernel mark the new directory opaque, hiding the lower one's files"));

    match layer_entries(&layer_path) {
        Err(err) => observations.push(Observation::judged(
            "the layer LAYER_TAR",
            "a tar archive",
            format!("{err:#}"),
            false,
        )),
        Ok(entries) => {
            let find = |name: &str| entries.iter().find(|(n, _)| n == name);
            let empty_file = |name: &str| match find(name) {
                Some((_, kind)) => kind.clone(),
                None => "(missing)".into(),
            };
            observations.push(Observation::equal(
                "the layer's entry .wh.old.txt (old.txt deleted)",
                "empty regular file",
                empty_file(".wh.old.txt"),
            ).likely("the layer does not carry the deletion: the kernel's whiteout (a character device 0:0) must become an empty regular file .wh.NAME in the layer"));
            observations.push(Observation::equal(
                "the layer's entry cache/.wh..wh..opq (cache replaced)",
                "empty regular file",
                empty_file("cache/.wh..wh..opq"),
            ).likely("the layer has no opaque marker for cache: applied on the image, the old files of cache come back. An opaque directory in UPPER (its xattr) must get an empty .wh..wh..opq entry in the layer"));
            let devices: Vec<&str> = entries
                .iter()
                .filter(|(_, kind)| kind.starts_with("character device"))
                .map(|(name, _)| name.as_str())
                .collect();
            observations.push(Observation::equal(
                "character devices in the layer (kernel whiteouts must not leak into it)",
                "none",
                if devices.is_empty() {
                    "none".to_owned()
                } else {
                    devices.join(", ")
                },
            ).likely("the kernel's whiteouts went into the layer as devices: the image-spec spells a deletion as an empty file .wh.NAME, and an unpacker makes a device of a device"));
            // The proof that matters: the image plus this layer is what the container saw.
            image("replay")?;
            let replayed = std::fs::File::open(&layer_path)
                .map_err(anyhow::Error::from)
                .and_then(|blob| {
                    layer::apply(
                        blob,
                        Compression::None,
                        &scratch.path("replay"),
                        &ApplyOptions::default(),
                    )
                })
                .map(|_| tree(&scratch.path("replay")));
            let mut expected = [
                "cache/".to_owned(),
                "cache/fresh.txt".to_owned(),
                earlier.0.clone(),
                "keep.txt".to_owned(),
            ];
            expected.sort();
            observations.push(Observation::equal(
                "the image with your layer applied (minidock's unpacker)",
                format!("[{}]", expected.join(", ")),
                match replayed {
                    Ok(names) => format!("[{}]", names.join(", ")),
                    Err(err) => format!("applying failed: {err:#}"),
                },
            ).likely("the image with your layer applied is not what the container saw through MERGED: a deletion, a replaced directory or a change is missing from the layer"));
            observations.push(Observation::equal(
                &format!(
                    "{}, in UPPER before your program ran, in the layer",
                    earlier.0
                ),
                format!("{:?}", earlier.1),
                read_or_absent(&scratch.path("replay").join(&earlier.0)),
            ).likely("the layer is not written from UPPER: a change UPPER already held is missing. A layer is everything in UPPER, not a list of what you think changed"));
        }
    }
    observations.push(exit_status(&output));
    Ok(observations)
}

/// A file name and content no program knows in advance (time and pid), for lesson 07's
/// change already in UPPER.
fn earlier_change() -> (String, String) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tag = format!("{}-{nanos}", std::process::id());
    (
        format!("earlier-{tag}.txt"),
        format!("written earlier {tag}\n"),
    )
}

/// The layer's entries as (name without "./" or trailing "/", what it is).
fn layer_entries(path: &Path) -> Result<Vec<(String, String)>> {
    let file = std::fs::File::open(path).context("(no layer written)")?;
    let mut archive = tar::Archive::new(file);
    let mut out = Vec::new();
    for entry in archive.entries().context("reading the tar")? {
        let entry = entry.context("reading the tar")?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = raw
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_owned();
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Regular if header.size().unwrap_or(1) == 0 => {
                "empty regular file".to_owned()
            }
            tar::EntryType::Regular => "regular file with data".to_owned(),
            tar::EntryType::Char => format!(
                "character device {}:{}",
                header.device_major().ok().flatten().unwrap_or(0),
                header.device_minor().ok().flatten().unwrap_or(0)
            ),
            other => format!("{other:?}"),
        };
        out.push((name, kind));
    }
    Ok(out)
}

/// Every path under `root`, sorted, directories with a trailing "/".
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            if path.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                out.push(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}
