//! `overlay-demo tour`: overlayfs's rules, shown with evidence read from the layer
//! directories themselves (stat, xattrs, file contents), never from what we meant to do.

use anyhow::{Context, Result, bail};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{OVERLAY_OPAQUE_XATTR, mount};
use crate::image::layer::{self, Compression};

/// Runs the tour in a scratch directory, printing to `out`. Needs root (it mounts).
pub fn tour(out: &mut dyn Write) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the tour mounts overlays, which needs root: run it with sudo");
    }
    let scratch = tempfile::Builder::new()
        .prefix("minidock-overlay-tour-")
        .tempdir()
        .context("creating a scratch directory")?;
    let result = run(scratch.path(), out);
    // The mounts are unmounted by their guards inside `run`, before the directory goes.
    drop(scratch);
    result
}

struct Stage {
    root: PathBuf,
}

impl Stage {
    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn write(&self, rel: &str, content: &str) -> Result<()> {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
        // Explicit, so the output does not depend on the caller's umask.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        Ok(())
    }

    /// One line of evidence about `rel`, read from the filesystem.
    fn describe(&self, rel: &str) -> String {
        let path = self.path(rel);
        let what = match fs::symlink_metadata(&path) {
            Err(_) => "absent".to_string(),
            Ok(m) if m.file_type().is_char_device() => format!(
                "character device {}:{}{}",
                libc::major(m.rdev()),
                libc::minor(m.rdev()),
                if m.rdev() == 0 { "  <- a whiteout" } else { "" }
            ),
            Ok(m) if m.is_dir() => {
                let opaque = layer::beneath::lgetxattr(&path, OVERLAY_OPAQUE_XATTR)
                    .ok()
                    .flatten();
                let mut names: Vec<String> = fs::read_dir(&path)
                    .map(|d| {
                        d.filter_map(|e| e.ok())
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                names.sort();
                let xattr = match opaque {
                    Some(v) => format!(
                        ", {OVERLAY_OPAQUE_XATTR}={:?}  <- opaque",
                        String::from_utf8_lossy(&v)
                    ),
                    None => String::new(),
                };
                format!("directory [{}]{xattr}", names.join(", "))
            }
            Ok(m) => {
                let content = fs::read_to_string(&path).unwrap_or_default();
                format!(
                    "file {:o}, {} bytes: {:?}",
                    m.permissions().mode() & 0o7777,
                    m.len(),
                    content
                )
            }
        };
        format!("     {rel:<28} {what}")
    }
}

fn run(root: &Path, out: &mut dyn Write) -> Result<()> {
    let stage = Stage {
        root: root.to_path_buf(),
    };
    // Three image layers. `base` is the bottom one.
    stage.write("base/etc/motd", "welcome from the image\n")?;
    stage.write("base/bin/tool", "#!/bin/sh\necho tool\n")?;
    fs::set_permissions(
        stage.path("base/bin/tool"),
        fs::Permissions::from_mode(0o755),
    )?;
    stage.write("base/data/a.txt", "a\n")?;
    stage.write("base/data/b.txt", "b\n")?;
    stage.write("base/who", "base\n")?;
    stage.write("base/only-in-base", "1\n")?;
    stage.write("mid/who", "mid\n")?;
    stage.write("mid/only-in-mid", "2\n")?;
    stage.write("top/who", "top\n")?;
    stage.write("top/only-in-top", "3\n")?;
    for dir in [
        "c1/upper",
        "c1/work",
        "c1/merged",
        "c2/upper",
        "c2/work",
        "c2/merged",
    ] {
        fs::create_dir_all(stage.path(dir))?;
    }
    let lowers = vec![stage.path("top"), stage.path("mid"), stage.path("base")];

    writeln!(
        out,
        "Three image layers (lowerdir=top:mid:base, leftmost on top) and a writable upper \
         dir,\nmounted on c1/merged: the view container 1 gets.\n"
    )?;
    let mut c1 = mount(
        &lowers,
        &stage.path("c1/upper"),
        &stage.path("c1/work"),
        &stage.path("c1/merged"),
    )?;

    writeln!(
        out,
        "1. Copy-up: writing a file of the image copies it up first"
    )?;
    writeln!(
        out,
        "   before: {}",
        stage.describe("c1/upper/etc/motd").trim_start()
    )?;
    fs::write(
        stage.path("c1/merged/etc/motd"),
        "edited in the container\n",
    )?;
    writeln!(out, "   wrote c1/merged/etc/motd; now:")?;
    for rel in ["c1/merged/etc/motd", "c1/upper/etc/motd", "base/etc/motd"] {
        writeln!(out, "{}", stage.describe(rel))?;
    }
    writeln!(
        out,
        "   The lower layer is untouched: other containers still see the original.\n"
    )?;

    writeln!(
        out,
        "2. Deleting a file of the image leaves a whiteout in the upper dir"
    )?;
    fs::remove_file(stage.path("c1/merged/bin/tool"))?;
    writeln!(out, "   removed c1/merged/bin/tool; now:")?;
    for rel in ["c1/merged/bin/tool", "c1/upper/bin/tool", "base/bin/tool"] {
        writeln!(out, "{}", stage.describe(rel))?;
    }
    writeln!(out)?;

    writeln!(
        out,
        "3. Removing a directory and making it again gives an opaque directory"
    )?;
    fs::remove_dir_all(stage.path("c1/merged/data"))?;
    fs::create_dir(stage.path("c1/merged/data"))?;
    fs::write(stage.path("c1/merged/data/new.txt"), "new\n")?;
    writeln!(
        out,
        "   rm -r c1/merged/data; mkdir c1/merged/data; wrote data/new.txt; now:"
    )?;
    for rel in ["c1/merged/data", "c1/upper/data", "base/data"] {
        writeln!(out, "{}", stage.describe(rel))?;
    }
    writeln!(
        out,
        "   Without the xattr, a.txt and b.txt would show through from the layer below.\n"
    )?;

    writeln!(out, "4. Shadowing: the topmost layer that has a name wins")?;
    for rel in [
        "top/who",
        "mid/who",
        "base/who",
        "c1/merged/who",
        "c1/merged",
    ] {
        writeln!(out, "{}", stage.describe(rel))?;
    }
    writeln!(out)?;

    writeln!(out, "5. Two containers share the image layers")?;
    let mut c2 = mount(
        &lowers,
        &stage.path("c2/upper"),
        &stage.path("c2/work"),
        &stage.path("c2/merged"),
    )?;
    for rel in ["c1/merged/etc/motd", "c2/merged/etc/motd"] {
        writeln!(out, "{}", stage.describe(rel))?;
    }
    let inode = |rel: &str| fs::metadata(stage.path(rel)).map(|m| m.ino());
    let (i1, i2, base) = (
        inode("c1/merged/only-in-base")?,
        inode("c2/merged/only-in-base")?,
        inode("base/only-in-base")?,
    );
    writeln!(
        out,
        "     only-in-base has inode {i1} in c1, {i2} in c2, {base} in base: {}",
        if i1 == i2 && i2 == base {
            "one file on disk, shared"
        } else {
            "different inodes"
        }
    )?;
    writeln!(out, "   Container 1's edit lives in c1/upper only.\n")?;
    c2.unmount()?;
    c1.unmount()?;

    writeln!(
        out,
        "6. The upper dir is the container's change set: as an image layer"
    )?;
    let blob = diff_entries(&stage.path("c1/upper"))?;
    for name in blob {
        writeln!(out, "     {name}")?;
    }
    writeln!(
        out,
        "   (overlay-demo diff c1/upper -o layer.tar writes it; whiteouts became .wh. files)"
    )?;
    Ok(())
}

/// The entry names of the layer `diff` makes from `upper`.
fn diff_entries(upper: &Path) -> Result<Vec<String>> {
    let mut blob = Vec::new();
    layer::diff(upper, &mut blob, Compression::None)?;
    let mut archive = tar::Archive::new(&blob[..]);
    let mut names = Vec::new();
    for entry in archive.entries()? {
        let entry = entry?;
        let kind = if entry.header().entry_type().is_dir() {
            "/"
        } else {
            ""
        };
        names.push(format!(
            "{}{kind}",
            String::from_utf8_lossy(&entry.path_bytes())
        ));
    }
    Ok(names)
}
