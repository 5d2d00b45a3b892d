//! `minidock cp`: Docker's table of cases (`docker container cp`, moby `pkg/archive/copy.go`),
//! each row both ways (host to container, container to host), against a busybox image whose
//! root holds the files to copy, in a temp root per test:
//!
//! ```text
//! /d/a, /d/sub/b     a directory          /f      a file ("f\n")
//! /lf -> f           a symlink to a file  /ld -> /d    a symlink to a directory
//! /up -> /           a symlink out of the root, which must stay inside it
//! /dl -> /tmp/dl-target, /ddl -> /tmp/ddl-dir    dangling symlinks
//! ```
//!
//! Every error is checked for Docker's message and its exit code (1).

mod common;

use assert_cmd::prelude::*;
use common::{require_busybox_overlay, text};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temp state root with one running container `c1`, and a host directory `host/` holding
/// the same kinds of files: `hd/a`, `hd/sub/b`, `hf` ("hf\n"), `hl -> hf`, `hdlink -> hd`,
/// `dangling -> dangling-target`. Commands run in the host directory.
struct Env {
    root: tempfile::TempDir,
}

impl Env {
    fn new() -> Option<Env> {
        if !require_busybox_overlay() {
            return None;
        }
        let env = Env {
            root: tempfile::Builder::new()
                .prefix("minidock-cp")
                .tempdir()
                .unwrap(),
        };
        fs::create_dir(env.host("")).unwrap();
        let rootfs = common::busybox_rootfs();
        let r = rootfs.path();
        fs::create_dir_all(r.join("d/sub")).unwrap();
        fs::write(r.join("d/a"), "a\n").unwrap();
        fs::write(r.join("d/sub/b"), "b\n").unwrap();
        fs::write(r.join("f"), "f\n").unwrap();
        symlink("f", r.join("lf")).unwrap();
        symlink("/d", r.join("ld")).unwrap();
        symlink("/", r.join("up")).unwrap();
        symlink("/tmp/dl-target", r.join("dl")).unwrap();
        symlink("/tmp/ddl-dir", r.join("ddl")).unwrap();
        let tar = env.root().join("rootfs.tar");
        common::tar_dir(r, &tar);
        env.ok(&["import", tar.to_str().unwrap(), "files"]);
        env.ok(&["run", "-d", "--name", "c1", "files", "sleep", "1000"]);

        let host = env.host("");
        fs::create_dir_all(host.join("hd/sub")).unwrap();
        fs::write(host.join("hd/a"), "ha\n").unwrap();
        fs::write(host.join("hd/sub/b"), "hb\n").unwrap();
        fs::write(host.join("hf"), "hf\n").unwrap();
        symlink("hf", host.join("hl")).unwrap();
        symlink("hd", host.join("hdlink")).unwrap();
        symlink("dangling-target", host.join("dangling")).unwrap();
        Some(env)
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    /// A path under the host directory, as text.
    fn host(&self, rel: &str) -> PathBuf {
        self.root().join("host").join(rel)
    }

    fn hs(&self, rel: &str) -> String {
        self.host(rel).to_str().unwrap().to_owned()
    }

    fn output(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::cargo_bin("minidock")
            .unwrap()
            .arg("--root")
            .arg(self.root())
            .args(args)
            .current_dir(self.host(""))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        common::ok_stdout(args, &self.output(args, b""))
    }

    /// Runs `cp ARGS`, asserts exit code 1 and `message` as the error; returns nothing.
    fn cp_fails(&self, args: &[&str], message: &str) {
        let mut all = vec!["cp"];
        all.extend_from_slice(args);
        let out = self.output(&all, b"");
        assert_eq!(
            out.status.code(),
            Some(1),
            "cp {args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            text(&out.stderr),
            format!("minidock: {message}\n"),
            "cp {args:?}"
        );
    }

    fn cp(&self, args: &[&str]) {
        let mut all = vec!["cp"];
        all.extend_from_slice(args);
        self.ok(&all);
    }

    /// What the container sees: `sh -c SCRIPT` inside it.
    fn inside(&self, script: &str) -> String {
        self.ok(&["exec", "c1", "sh", "-c", script])
    }

    /// `find DIR` inside the container, sorted, with each file's content after a colon.
    fn tree_inside(&self, dir: &str) -> String {
        self.inside(&format!(
            "cd {dir} && find . | sort | while read p; do \
             if [ -f \"$p\" ]; then echo \"$p:$(cat \"$p\")\"; else echo \"$p\"; fi; done"
        ))
    }
}

/// `find DIR` on the host, sorted, with each file's content after a colon.
fn tree(dir: &Path) -> String {
    let mut lines = Vec::new();
    let mut stack = vec![PathBuf::from(".")];
    while let Some(rel) = stack.pop() {
        let path = dir.join(&rel);
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            lines.push(rel.display().to_string());
            for entry in fs::read_dir(&path).unwrap() {
                stack.push(rel.join(entry.unwrap().file_name()));
            }
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).unwrap();
            lines.push(format!("{} -> {}", rel.display(), target.display()));
        } else {
            let content = fs::read_to_string(&path).unwrap();
            lines.push(format!("{}:{}", rel.display(), content.trim_end()));
        }
    }
    lines.sort();
    lines.join("\n") + "\n"
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.output(&["rm", "-f", "c1"], b"");
        if !std::thread::panicking() {
            let root = self.root().to_string_lossy().into_owned();
            assert_eq!(
                common::mounts_containing(&root),
                Vec::<String>::new(),
                "mounts left under the test root"
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// SRC_PATH is a file
// ------------------------------------------------------------------------------------------

#[test]
fn a_file_to_a_missing_path_is_written_as_that_path() {
    let Some(env) = Env::new() else { return };
    env.cp(&["c1:/f", &env.hs("new")]);
    assert_eq!(fs::read_to_string(env.host("new")).unwrap(), "f\n");
    env.cp(&[&env.hs("hf"), "c1:/new"]);
    assert_eq!(env.inside("cat /new"), "hf\n");
    // A dangling symlink is followed: the file is written where it points.
    env.cp(&["c1:/f", &env.hs("dangling")]);
    assert_eq!(
        fs::read_to_string(env.host("dangling-target")).unwrap(),
        "f\n"
    );
    assert!(
        fs::symlink_metadata(env.host("dangling"))
            .unwrap()
            .is_symlink()
    );
    env.cp(&[&env.hs("hf"), "c1:/dl"]);
    assert_eq!(
        env.inside("cat /tmp/dl-target; readlink /dl"),
        "hf\n/tmp/dl-target\n"
    );
}

#[test]
fn a_file_to_a_missing_path_ending_in_a_slash_is_no_such_directory() {
    let Some(env) = Env::new() else { return };
    // Docker's ErrDirNotExists; nothing is written, not even a file named `nodir`.
    env.cp_fails(
        &["c1:/f", &format!("{}/", env.hs("nodir"))],
        "no such directory",
    );
    assert!(!env.host("nodir").exists());
    env.cp_fails(&[&env.hs("hf"), "c1:/nodir/"], "no such directory");
    env.cp_fails(&[&env.hs("hf"), "c1:/nodir/."], "no such directory");
    assert_eq!(env.inside("test -e /nodir || echo absent"), "absent\n");
    // A missing parent directory.
    let missing = env.hs("nodir");
    env.cp_fails(
        &["c1:/f", &format!("{missing}/x")],
        &format!("stat {missing}: no such file or directory"),
    );
    env.cp_fails(
        &[&env.hs("hf"), "c1:/nodir/x"],
        "no such container:path: c1:/nodir",
    );
    env.cp_fails(
        &[&env.hs("hf"), "c1:/f/x"],
        "extraction point is not a directory",
    );
}

#[test]
fn a_file_to_a_dangling_container_link_ending_in_a_slash_is_no_such_directory() {
    let Some(env) = Env::new() else { return };
    // The trailing `/` asks for a directory: the daemon's stat follows the link, finds
    // nothing, and Docker says "no such directory" (exit 1); nothing is written where the link
    // points, not even a file named after its target.
    env.cp_fails(&[&env.hs("hf"), "c1:/dl/"], "no such directory");
    env.cp_fails(&[&env.hs("hf"), "c1:/ddl/."], "no such directory");
    assert_eq!(
        env.inside("test -e /tmp/dl-target || test -e /tmp/ddl-dir || echo absent"),
        "absent\n"
    );
    // A link to an existing directory, with the slash: the file goes inside it.
    env.cp(&[&env.hs("hf"), "c1:/ld/"]);
    assert_eq!(env.inside("cat /d/hf"), "hf\n");
}

#[test]
fn a_file_to_an_existing_file_overwrites_it() {
    let Some(env) = Env::new() else { return };
    env.cp(&["c1:/f", &env.hs("hf")]);
    assert_eq!(fs::read_to_string(env.host("hf")).unwrap(), "f\n");
    fs::write(env.host("hf"), "hf\n").unwrap();
    env.cp(&[&env.hs("hf"), "c1:/f"]);
    assert_eq!(env.inside("cat /f"), "hf\n");
    // Through a symlink to a file: the file is overwritten, the link stays.
    env.cp(&["c1:/d/a", &env.hs("hl")]);
    assert_eq!(fs::read_to_string(env.host("hf")).unwrap(), "a\n");
    assert!(fs::symlink_metadata(env.host("hl")).unwrap().is_symlink());
    env.cp(&[&env.hs("hd/a"), "c1:/lf"]);
    assert_eq!(env.inside("cat /f; readlink /lf"), "ha\nf\n");
}

#[test]
fn a_file_to_an_existing_directory_goes_inside_under_its_name() {
    let Some(env) = Env::new() else { return };
    env.cp(&["c1:/f", &env.hs("hd")]);
    env.cp(&["c1:/d/a", &format!("{}/", env.hs("hd/sub"))]);
    assert_eq!(
        tree(&env.host("hd")),
        ".\n./a:ha\n./f:f\n./sub\n./sub/a:a\n./sub/b:hb\n"
    );
    env.cp(&[&env.hs("hf"), "c1:/d"]);
    env.cp(&[&env.hs("hd/a"), "c1:/d/sub/"]);
    // A file never replaces a directory of its name there (Docker's NoOverwriteDirNonDir).
    fs::create_dir_all(env.host("x/f")).unwrap();
    fs::create_dir(env.host("y")).unwrap();
    fs::write(env.host("y/sub"), "not a dir\n").unwrap();
    let x = env.hs("x");
    env.cp_fails(
        &["c1:/f", &x],
        &format!("cannot overwrite directory \"{x}/f\" with non-directory \"{x}\""),
    );
    env.cp_fails(
        &[&env.hs("y/sub"), "c1:/d"],
        "cannot overwrite directory \"/d/sub\" with non-directory \"/d\"",
    );
    assert_eq!(
        env.tree_inside("/d"),
        ".\n./a:a\n./hf:hf\n./sub\n./sub/a:ha\n./sub/b:b\n"
    );
}

// ------------------------------------------------------------------------------------------
// SRC_PATH is a directory
// ------------------------------------------------------------------------------------------

#[test]
fn a_directory_to_a_missing_path_is_created_with_its_contents() {
    let Some(env) = Env::new() else { return };
    env.cp(&["c1:/d", &env.hs("new")]);
    // A trailing `/` on a missing destination is fine for a directory source.
    env.cp(&["c1:/d/.", &format!("{}/", env.hs("new2"))]);
    for dir in ["new", "new2"] {
        assert_eq!(
            tree(&env.host(dir)),
            ".\n./a:a\n./sub\n./sub/b:b\n",
            "{dir}"
        );
    }
    env.cp(&[&env.hs("hd"), "c1:/new"]);
    env.cp(&[&format!("{}/", env.hs("hd")), "c1:/new2/"]);
    for dir in ["/new", "/new2"] {
        assert_eq!(
            env.tree_inside(dir),
            ".\n./a:ha\n./sub\n./sub/b:hb\n",
            "{dir}"
        );
    }
    // A dangling symlink is followed: the directory is made where it points.
    env.cp(&["c1:/d", &env.hs("dangling")]);
    assert_eq!(
        tree(&env.host("dangling-target")),
        ".\n./a:a\n./sub\n./sub/b:b\n"
    );
    env.cp(&[&env.hs("hd"), "c1:/ddl"]);
    assert_eq!(
        env.tree_inside("/tmp/ddl-dir"),
        ".\n./a:ha\n./sub\n./sub/b:hb\n"
    );
}

#[test]
fn a_directory_to_an_existing_file_cannot_be_copied() {
    let Some(env) = Env::new() else { return };
    env.cp_fails(&["c1:/d", &env.hs("hf")], "cannot copy directory");
    assert_eq!(fs::read_to_string(env.host("hf")).unwrap(), "hf\n");
    env.cp_fails(&[&env.hs("hd"), "c1:/f"], "cannot copy directory");
    assert_eq!(env.inside("cat /f"), "f\n");
}

#[test]
fn a_directory_to_an_existing_directory_goes_inside_it() {
    let Some(env) = Env::new() else { return };
    env.cp(&["c1:/d", &env.hs("hd")]);
    assert_eq!(
        tree(&env.host("hd")),
        ".\n./a:ha\n./d\n./d/a:a\n./d/sub\n./d/sub/b:b\n./sub\n./sub/b:hb\n"
    );
    // A directory never replaces a non-directory of its name there.
    fs::create_dir_all(env.host("z")).unwrap();
    fs::write(env.host("z/d"), "not a dir\n").unwrap();
    let z = env.hs("z");
    env.cp_fails(
        &["c1:/d", &z],
        &format!("cannot overwrite non-directory \"{z}/d\" with directory \"{z}\""),
    );
    fs::create_dir_all(env.host("w/f")).unwrap();
    env.cp_fails(
        &[&env.hs("w/f"), "c1:/"],
        "cannot overwrite non-directory \"/f\" with directory \"/\"",
    );
    assert_eq!(env.inside("cat /f"), "f\n");
    // A symlink source ending in `/` names the directory it points to.
    env.cp(&["c1:/ld/", &env.hs("hd")]);
    assert_eq!(tree(&env.host("hd/ld")), ".\n./a:a\n./sub\n./sub/b:b\n");
    env.cp(&[&format!("{}/", env.hs("hdlink")), "c1:/d"]);
    assert_eq!(
        env.tree_inside("/d/hdlink"),
        ".\n./a:ha\n./d\n./d/a:a\n./d/sub\n./d/sub/b:b\n./ld\n./ld/a:a\n./ld/sub\n./ld/sub/b:b\n./sub\n./sub/b:hb\n"
    );
    env.inside("rm -r /d/hdlink");
    env.cp(&[&env.hs("hd/sub"), "c1:/d"]);
    assert_eq!(env.tree_inside("/d"), ".\n./a:a\n./sub\n./sub/b:hb\n");
}

#[test]
fn a_directory_ending_in_slash_dot_copies_its_contents() {
    let Some(env) = Env::new() else { return };
    env.cp(&["c1:/d/.", &env.hs("hd")]);
    assert_eq!(tree(&env.host("hd")), ".\n./a:a\n./sub\n./sub/b:b\n");
    fs::create_dir(env.host("other")).unwrap();
    fs::write(env.host("other/o"), "o\n").unwrap();
    env.cp(&[&format!("{}/.", env.hs("other")), "c1:/d"]);
    assert_eq!(env.tree_inside("/d"), ".\n./a:a\n./o:o\n./sub\n./sub/b:b\n");
}

// ------------------------------------------------------------------------------------------
// symlinks, streams, ownership, errors
// ------------------------------------------------------------------------------------------

#[test]
fn a_symlink_source_is_copied_as_a_link_and_followed_with_dash_l() {
    let Some(env) = Env::new() else { return };
    env.cp(&["c1:/lf", &env.hs("link")]);
    assert_eq!(fs::read_link(env.host("link")).unwrap(), Path::new("f"));
    env.cp(&["-L", "c1:/lf", &env.hs("followed")]);
    assert_eq!(fs::read_to_string(env.host("followed")).unwrap(), "f\n");
    // A link to a directory: -L copies the directory under the link's name.
    env.cp(&["-L", "c1:/ld", &env.hs("hd")]);
    assert_eq!(tree(&env.host("hd/ld")), ".\n./a:a\n./sub\n./sub/b:b\n");
    // A trailing slash follows the link too (it names the directory).
    env.cp(&["c1:/ld/", &env.hs("slash")]);
    assert_eq!(tree(&env.host("slash")), ".\n./a:a\n./sub\n./sub/b:b\n");

    env.cp(&[&env.hs("hl"), "c1:/hl"]);
    env.cp(&["-L", &env.hs("hl"), "c1:/hl2"]);
    assert_eq!(
        env.inside("readlink /hl; cat /hl2; test -L /hl2 || echo regular"),
        "hf\nhf\nregular\n"
    );
}

#[test]
fn container_paths_are_resolved_inside_the_container_root() {
    let Some(env) = Env::new() else { return };
    // /up -> / is the container's /, never the host's: reading, writing, and as a
    // destination symlink.
    env.cp(&["c1:/up/f", &env.hs("read")]);
    assert_eq!(fs::read_to_string(env.host("read")).unwrap(), "f\n");
    let marker = format!("minidock-cp-test-{}", std::process::id());
    env.cp(&[&env.hs("hf"), &format!("c1:/up/tmp/{marker}")]);
    assert!(
        !Path::new("/tmp").join(&marker).exists(),
        "cp wrote onto the host"
    );
    assert_eq!(env.inside(&format!("cat /tmp/{marker}")), "hf\n");
    env.cp(&[&env.hs("hf"), "c1:/up"]);
    assert!(!Path::new("/hf").exists(), "cp wrote onto the host's /");
    assert_eq!(env.inside("cat /hf"), "hf\n");
    // A dangling destination symlink to an absolute path is followed in the container's
    // root: the host's /tmp is untouched.
    let escape = format!("minidock-cp-escape-{}", std::process::id());
    env.inside(&format!("ln -s /tmp/{escape} /esc"));
    env.cp(&[&env.hs("hf"), "c1:/esc"]);
    assert!(
        !Path::new("/tmp").join(&escape).exists(),
        "cp wrote onto the host"
    );
    assert_eq!(
        env.inside(&format!("cat /tmp/{escape}; readlink /esc")),
        format!("hf\n/tmp/{escape}\n")
    );
    // The destination symlink /ld -> /d is followed inside the root.
    env.cp(&[&env.hs("hd/a"), "c1:/ld"]);
    assert_eq!(env.inside("cat /d/a"), "ha\n");
}

#[test]
fn dash_as_source_extracts_a_tar_from_stdin_into_a_directory() {
    let Some(env) = Env::new() else { return };
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(3);
    builder
        .append_data(&mut header, "x/streamed", &b"st\n"[..])
        .unwrap();
    let archive = builder.into_inner().unwrap();
    let out = env.output(&["cp", "-", "c1:/d"], &archive);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(env.inside("cat /d/x/streamed"), "st\n");
    // gzip as well, as Docker's daemon decompresses what it is sent.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&archive).unwrap();
    let out = env.output(&["cp", "-", "c1:/tmp"], &gz.finish().unwrap());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(env.inside("cat /tmp/x/streamed"), "st\n");
    // bzip2 and xz too, made by the system's own compressors.
    for (tool, dir) in [("bzip2", "/srv"), ("xz", "/opt")] {
        let mut child = Command::new(tool)
            .arg("-c")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        child.stdin.take().unwrap().write_all(&archive).unwrap();
        let packed = child.wait_with_output().unwrap();
        assert!(packed.status.success());
        env.inside(&format!("mkdir -p {dir}"));
        let out = env.output(&["cp", "-", &format!("c1:{dir}")], &packed.stdout);
        assert!(out.status.success(), "{tool}: {}", text(&out.stderr));
        assert_eq!(env.inside(&format!("cat {dir}/x/streamed")), "st\n");
    }
    // The destination must be an existing directory.
    for to in ["/f", "/missing"] {
        let out = env.output(&["cp", "-", &format!("c1:{to}")], &archive);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            text(&out.stderr),
            format!("minidock: destination \"c1:{to}\" must be a directory\n")
        );
    }
}

#[test]
fn dash_as_destination_writes_a_tar_to_stdout() {
    let Some(env) = Env::new() else { return };
    let out = env.output(&["cp", "c1:/d", "-"], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut names: Vec<String> = tar::Archive::new(&out.stdout[..])
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            e.path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_owned()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["d", "d/a", "d/sub", "d/sub/b"]);
    // A file: one entry with its content; nothing named `-` is written.
    let out = env.output(&["cp", "c1:/f", "-"], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut archive = tar::Archive::new(&out.stdout[..]);
    let mut entries = archive.entries().unwrap();
    let mut entry = entries.next().unwrap().unwrap();
    assert_eq!(entry.path().unwrap(), Path::new("f"));
    assert_eq!(std::io::read_to_string(&mut entry).unwrap(), "f\n");
    assert!(entries.next().is_none());
    assert!(!env.host("-").exists());
    env.cp_fails(&["-", "-"], "must specify at least one container source");
    env.cp_fails(
        &[&env.hs("hf"), "-"],
        "must specify at least one container source",
    );
}

#[test]
fn archive_mode_keeps_uid_and_gid_else_root_owns_the_copy() {
    let Some(env) = Env::new() else { return };
    std::os::unix::fs::chown(env.host("hf"), Some(1234), Some(5678)).unwrap();
    env.cp(&[&env.hs("hf"), "c1:/plain"]);
    env.cp(&["-a", &env.hs("hf"), "c1:/kept"]);
    assert_eq!(
        env.inside("stat -c '%u:%g' /plain /kept"),
        "0:0\n1234:5678\n"
    );
    // Copied out, files belong to the caller.
    env.inside("chown 42:43 /f");
    env.cp(&["-a", "c1:/f", &env.hs("out")]);
    let meta = fs::metadata(env.host("out")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
}

#[test]
fn a_missing_source_fails_as_docker_does() {
    let Some(env) = Env::new() else { return };
    env.cp_fails(
        &["c1:/nonexistent", &env.hs("")],
        "no such container:path: c1:/nonexistent",
    );
    let missing = env.hs("nonexistent");
    env.cp_fails(
        &[&missing, "c1:/"],
        &format!("lstat {missing}: no such file or directory"),
    );
    env.cp_fails(
        &["c1:/f", "c1:/g"],
        "copying between containers is not supported",
    );
}

/// `cp` writes a plain archive, not an image layer: a file named `.wh.f` (or `.wh..wh..opq`)
/// is copied as that file, and `/f` stays, as Docker's untar leaves such names alone.
#[test]
fn whiteout_names_are_ordinary_files_for_cp() {
    let Some(env) = Env::new() else { return };
    fs::create_dir(env.host("wh")).unwrap();
    fs::write(env.host("wh/.wh.f"), "not a whiteout\n").unwrap();
    fs::write(env.host("wh/.wh..wh..opq"), "not a marker\n").unwrap();
    env.cp(&[&env.hs("wh/.wh.f"), "c1:/"]);
    env.cp(&[&env.hs("wh"), "c1:/d/"]);
    assert_eq!(
        env.inside("cat /f /.wh.f; ls -A /d/wh | sort; cat /d/a"),
        "f\nnot a whiteout\n.wh..wh..opq\n.wh.f\na\n"
    );
    // The same through a tar stream on stdin.
    let tar = env.root().join("wh.tar");
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(env.host("wh"))
        .arg("-cf")
        .arg(&tar)
        .arg(".wh.f")
        .status()
        .unwrap();
    assert!(status.success());
    let out = env.output(&["cp", "-", "c1:/d/sub"], &fs::read(&tar).unwrap());
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        env.inside("cat /d/sub/.wh.f /d/sub/b"),
        "not a whiteout\nb\n"
    );
}

// ------------------------------------------------------------------------------------------
// What Docker's copy sees through the container's mounts, and what it refuses
// ------------------------------------------------------------------------------------------

/// The entries of a tar, in order: path (without a trailing `/`), mode, content.
fn tar_entries(archive: &[u8]) -> Vec<(String, u32, String)> {
    tar::Archive::new(archive)
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_owned();
            let mode = e.header().mode().unwrap();
            (path, mode, std::io::read_to_string(&mut e).unwrap())
        })
        .collect()
}

/// A tar of entries named byte for byte (`../x`, `/abs`): a file with its content, or a
/// symlink (`content` starting with `->`).
fn raw_tar(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in entries {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        match content.strip_prefix("->") {
            Some(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
                header.set_size(0);
                header.set_cksum();
                builder.append(&header, &b""[..]).unwrap();
            }
            None => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(content.len() as u64);
                header.set_cksum();
                builder.append(&header, content.as_bytes()).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

/// As dockerd: the generated `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` of a
/// container that has run are copied out as the container reads them (its bind mounts), alone
/// or in a copy of `/etc`, running or exited; a container never started shows the image's.
#[test]
fn generated_etc_files_are_copied_out_as_the_container_sees_them() {
    let Some(env) = Env::new() else { return };
    let files = ["hostname", "hosts", "resolv.conf"];
    let seen: Vec<String> = files
        .iter()
        .map(|f| env.inside(&format!("cat /etc/{f}")))
        .collect();
    assert!(
        seen[0].len() > 1 && seen[1].contains("localhost"),
        "{seen:?}"
    );
    for state in ["running", "exited"] {
        for (file, content) in files.iter().zip(&seen) {
            let out = env.output(&["cp", &format!("c1:/etc/{file}"), "-"], b"");
            assert!(out.status.success(), "{}", text(&out.stderr));
            let want = vec![(file.to_string(), 0o644, content.clone())];
            assert_eq!(tar_entries(&out.stdout), want, "{state} {file}");
            env.cp(&[&format!("c1:/etc/{file}"), &env.hs("")]);
            assert_eq!(&fs::read_to_string(env.host(file)).unwrap(), content);
            fs::remove_file(env.host(file)).unwrap();
        }
        let out = env.output(&["cp", "c1:/etc", "-"], b"");
        assert!(out.status.success(), "{}", text(&out.stderr));
        let listed = tar_entries(&out.stdout);
        for (file, content) in files.iter().zip(&seen) {
            let path = format!("etc/{file}");
            let entry = listed.iter().find(|e| e.0 == path);
            assert_eq!(entry, Some(&(path, 0o644, content.clone())), "{state}");
        }
        env.ok(&["stop", "-t", "0", "c1"]);
    }
    env.ok(&["create", "--name", "c2", "files", "true"]);
    let out = env.output(&["cp", "c2:/etc/hostname", "-"], b"");
    env.ok(&["rm", "c2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        tar_entries(&out.stdout),
        [("hostname".to_owned(), 0o755, String::new())]
    );
}

/// As dockerd: a copy that would replace a generated `/etc` file of a container that has
/// run (a file, or one in a directory copied) is refused with the kernel's EBUSY, running or
/// exited, nothing of it is written, and the bind mount stays; before the first start the
/// file is the image's, and is replaced.
#[test]
fn a_copy_onto_a_generated_etc_file_is_refused_whole_and_the_bind_stays() {
    let Some(env) = Env::new() else { return };
    fs::create_dir_all(env.host("he/etc")).unwrap();
    fs::write(env.host("he/etc/hosts"), "1.2.3.4 foo\n").unwrap();
    fs::write(env.host("he/etc/newf"), "new\n").unwrap();
    let hosts = env.inside("cat /etc/hosts");
    let busy = "Error processing tar file(exit status 1): unlinkat /etc/hosts: device or \
                resource busy";
    let stream = raw_tar(&[("newf", "new\n"), ("hosts", "1.2.3.4 foo\n")]);
    for state in ["running", "exited"] {
        env.cp_fails(&[&env.hs("he/etc/hosts"), "c1:/etc/hosts"], busy);
        env.cp_fails(&[&env.hs("he/etc/hosts"), "c1:/etc/"], busy);
        env.cp_fails(&[&env.hs("he/etc"), "c1:/"], busy);
        let out = env.output(&["cp", "-", "c1:/etc"], &stream);
        assert_eq!(out.status.code(), Some(1), "{state}");
        assert_eq!(text(&out.stderr), format!("minidock: {busy}\n"), "{state}");
        let out = env.output(&["cp", "c1:/etc/hosts", "-"], b"");
        assert_eq!(tar_entries(&out.stdout)[0].2, hosts, "{state}");
        if state == "running" {
            let mountinfo = env.inside("cat /proc/self/mountinfo");
            assert!(
                mountinfo
                    .lines()
                    .any(|l| l.split(' ').nth(4) == Some("/etc/hosts")),
                "{mountinfo}"
            );
            env.ok(&["stop", "-t", "0", "c1"]);
        }
    }
    env.ok(&["start", "c1"]);
    assert_eq!(
        env.inside("cat /etc/hosts; ls /etc/newf 2>&1 || true"),
        format!("{hosts}ls: /etc/newf: No such file or directory\n")
    );
    env.ok(&["create", "--name", "c2", "files", "true"]);
    let copied = env.output(&["cp", &env.hs("he/etc/hosts"), "c2:/etc/hosts"], b"");
    let out = env.output(&["cp", "c2:/etc/hosts", "-"], b"");
    env.ok(&["rm", "c2"]);
    assert!(copied.status.success(), "{}", text(&copied.stderr));
    assert_eq!(tar_entries(&out.stdout)[0].2, "1.2.3.4 foo\n");
}

/// As dockerd: `--read-only` refuses every copy into the root, running or not, with its
/// message; a read-write volume of that container still takes one.
#[test]
fn a_read_only_root_takes_no_copy_but_its_volumes_do() {
    let Some(env) = Env::new() else { return };
    fs::create_dir(env.host("vol")).unwrap();
    let bind = format!("{}:/data", env.hs("vol"));
    env.ok(&[
        "run",
        "-d",
        "--name",
        "ro",
        "--read-only",
        "-v",
        &bind,
        "files",
        "sleep",
        "1000",
    ]);
    let refused = "container rootfs is marked read-only";
    let stream = raw_tar(&[("s", "s\n")]);
    for state in ["running", "exited"] {
        env.cp_fails(&[&env.hs("hf"), "ro:/tmp/"], refused);
        env.cp_fails(&[&env.hs("hd"), "ro:/"], refused);
        let out = env.output(&["cp", "-", "ro:/tmp"], &stream);
        assert_eq!(out.status.code(), Some(1), "{state}");
        assert_eq!(
            text(&out.stderr),
            format!("minidock: {refused}\n"),
            "{state}"
        );
        env.cp(&[&env.hs("hf"), "ro:/data/"]);
        assert_eq!(fs::read_to_string(env.host("vol/hf")).unwrap(), "hf\n");
        fs::remove_file(env.host("vol/hf")).unwrap();
        env.ok(&["stop", "-t", "0", "ro"]);
    }
    env.ok(&["rm", "ro"]);
}

/// As dockerd: tar entries are placed by joining their names onto the destination (an
/// absolute name lands under it, `../../tmp/x` into `/tmp` is `/tmp/x`); one that leaves it is
/// refused with moby's message. A refused archive writes nothing, and an entry below a
/// symlink (which the unpacker does not follow) refuses the archive before anything is
/// written.
#[test]
fn a_tar_stream_is_placed_as_dockerd_places_it_or_refused_whole() {
    let Some(env) = Env::new() else { return };
    env.inside("mkdir -p /t/dst /ud");
    let put = |to: &str, entries: &[(&str, &str)]| {
        env.output(&["cp", "-", &format!("c1:{to}")], &raw_tar(entries))
    };
    let out = put("/t", &[("../../../../t/x", "x\n"), ("/abs", "abs\n")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(env.inside("cat /t/x /t/abs"), "x\nabs\n");
    let out = put("/", &[("../up-x", "up\n")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(env.inside("cat /up-x"), "up\n");
    let refusals = [
        (
            vec![("first", "1\n"), ("a/../../../t/y", "y\n")],
            "Error processing tar file(exit status 1): \"../../t/y\" is outside of \"/t/dst\"",
        ),
        (
            vec![("first", "1\n"), ("bl", "->../../../etc")],
            "Error processing tar file(exit status 1): invalid symlink \"/t/dst/bl\" -> \
             \"../../../etc\"",
        ),
        (
            vec![("first", "1\n"), ("esc", "->/t"), ("esc/f", "f\n")],
            "extracting \"esc/f\": \"esc\" is a symbolic link; extracting through a symbolic \
             link is not supported",
        ),
    ];
    for (entries, message) in refusals {
        let out = put("/t/dst", &entries);
        assert_eq!(out.status.code(), Some(1), "{entries:?}");
        assert_eq!(text(&out.stderr), format!("minidock: {message}\n"));
    }
    // A symlink already there, in the container, is not followed either.
    env.inside("ln -s /ud /t/dst/there");
    let out = put("/t/dst", &[("first", "1\n"), ("there/f", "f\n")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "minidock: extracting \"there/f\": \"there\" is a symbolic link; extracting through \
         a symbolic link is not supported\n"
    );
    assert_eq!(
        env.inside("ls -A /t/dst /ud /t"),
        "/t:\nabs\ndst\nx\n\n/t/dst:\nthere\n\n/ud:\n"
    );
}
