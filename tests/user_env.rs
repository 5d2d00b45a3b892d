//! Users, groups, the environment and the working directory, resolved as Docker resolves
//! them (moby's `getUser` over moby/sys `GetExecUser`, the CLI's `ValidateEnv` and env-file
//! reader, the daemon's env merge, `filepath.Clean` of `-w`), checked in the kernel's own
//! evidence: `/proc/self/status` of the container's process, `id` and `env` inside it.
//! The runtime's half (a missing `process.cwd`) is checked against runc on the same bundle.

#[path = "common/bundle.rs"]
mod bundle;
mod common;

use assert_cmd::prelude::*;
use common::{require_busybox_overlay, text};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
    nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
    app:x:1000:1000::/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\n\
    nogroup:x:65534:\n\
    app:x:1000:\n\
    wheel:x:10:root,app\n\
    g1:x:1234:nobody,app\n\
    g2:x:2345:nobody\n";

/// A state root with image `users` (busybox with the passwd and group above, `ENV FOO=img
/// BAR=b`) imported; every container is run with `--rm` and the test ends with nothing left.
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
                .prefix("minidock-user")
                .tempdir()
                .unwrap(),
        };
        env.import("users", &["ENV FOO=img BAR=b"], |_| {});
        Some(env)
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    fn import(&self, name: &str, changes: &[&str], edit: impl FnOnce(&Path)) {
        let rootfs = tempfile::Builder::new()
            .prefix("minidock-user-rootfs")
            .tempdir()
            .unwrap();
        common::build_busybox_rootfs(rootfs.path());
        std::fs::write(rootfs.path().join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(rootfs.path().join("etc/group"), GROUP).unwrap();
        edit(rootfs.path());
        let tar = rootfs.path().with_extension("tar");
        common::tar_dir(rootfs.path(), &tar);
        let mut args = vec!["import".to_owned()];
        for change in changes {
            args.extend(["-c".to_owned(), change.to_string()]);
        }
        args.extend([tar.display().to_string(), name.to_owned()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ok(&args);
        std::fs::remove_file(&tar).unwrap();
    }

    fn output(&self, args: &[&str], vars: &[(&str, Option<&str>)]) -> Output {
        let mut cmd = Command::cargo_bin("minidock").unwrap();
        cmd.arg("--root").arg(self.root()).args(args);
        for (key, value) in vars {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        cmd.stdin(Stdio::null()).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        common::ok_stdout(args, &self.output(args, &[]))
    }

    /// `run --rm ARGS` with the caller's variables changed by `vars`; asserts success.
    fn run(&self, args: &[&str], vars: &[(&str, Option<&str>)]) -> String {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        common::ok_stdout(&all, &self.output(&all, vars))
    }

    /// `run --rm ARGS`, asserting exit code 125; returns stderr.
    fn refused(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        let out = self.output(&all, &[]);
        assert_eq!(
            out.status.code(),
            Some(125),
            "minidock {all:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stderr)
    }

    /// Removes the containers, then checks that no mount and no container is left.
    fn finish(self) {
        for id in self.ok(&["ps", "-aq", "--no-trunc"]).lines() {
            self.ok(&["rm", "-f", id]);
        }
        let mounts = common::mounts_containing(&self.root().display().to_string());
        assert!(mounts.is_empty(), "leftover mounts: {mounts:?}");
        let left = std::fs::read_dir(self.root().join("containers"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(left, 0, "leftover containers");
    }
}

/// What the process is, from `id` and from the kernel (`Groups:` of /proc/self/status).
const WHO: &str = "id; id -G; grep -E '^(Uid|Gid|Groups):' /proc/self/status | tr -s '\\t ' ' '; \
    echo HOME=$HOME";

fn who(uid: u32, gid: u32, groups: &str, id: &str, home: &str) -> String {
    let id_g: Vec<&str> = groups.split(' ').collect();
    // `id -G` shows the gid first, then the other groups; the kernel keeps them sorted.
    let mut first = vec![gid.to_string()];
    first.extend(
        id_g.iter()
            .filter(|g| **g != gid.to_string())
            .map(|g| g.to_string()),
    );
    let mut sorted: Vec<u32> = id_g.iter().map(|g| g.parse().unwrap()).collect();
    sorted.sort();
    let sorted: Vec<String> = sorted.iter().map(u32::to_string).collect();
    format!(
        "{id}\n{}\nUid: {uid} {uid} {uid} {uid}\nGid: {gid} {gid} {gid} {gid}\nGroups: {} \nHOME={home}\n",
        first.join(" "),
        sorted.join(" ")
    )
}

#[test]
fn every_form_of_user_gets_dockers_ids_and_groups() {
    let Some(env) = Env::new() else { return };
    // (-u, uid, gid, the process's groups, `id`, HOME); the primary gid is always a group
    // (CVE-2022-36109), and /etc/group adds more only when no group is named.
    let cases = [
        (
            "4242:4242",
            4242,
            4242,
            "4242",
            "uid=4242 gid=4242 groups=4242",
            "/",
        ),
        (
            "nobody",
            65534,
            65534,
            "65534 1234 2345",
            "uid=65534(nobody) gid=65534(nogroup) groups=1234(g1),2345(g2),65534(nogroup)",
            "/nonexistent",
        ),
        (
            "app",
            1000,
            1000,
            "1000 10 1234",
            "uid=1000(app) gid=1000(app) groups=10(wheel),1000(app),1234(g1)",
            "/home/app",
        ),
        (
            "1000",
            1000,
            1000,
            "1000 10 1234",
            "uid=1000(app) gid=1000(app) groups=10(wheel),1000(app),1234(g1)",
            "/home/app",
        ),
        (
            "app:wheel",
            1000,
            10,
            "10",
            "uid=1000(app) gid=10(wheel) groups=10(wheel)",
            "/home/app",
        ),
        (
            "app:4242",
            1000,
            4242,
            "4242",
            "uid=1000(app) gid=4242 groups=4242",
            "/home/app",
        ),
        (
            "1000:10",
            1000,
            10,
            "10",
            "uid=1000(app) gid=10(wheel) groups=10(wheel)",
            "/home/app",
        ),
        (
            "4242:g2",
            4242,
            2345,
            "2345",
            "uid=4242 gid=2345(g2) groups=2345(g2)",
            "/",
        ),
        (
            "4242",
            4242,
            0,
            "0",
            "uid=4242 gid=0(root) groups=0(root)",
            "/",
        ),
        (
            "root",
            0,
            0,
            "0 10",
            "uid=0(root) gid=0(root) groups=0(root),10(wheel)",
            "/root",
        ),
    ];
    for (user, uid, gid, groups, id, home) in cases {
        let out = env.run(&["-u", user, "users", "sh", "-c", WHO], &[]);
        assert_eq!(out, who(uid, gid, groups, id, home), "-u {user}");
    }
    // The image's USER takes the same path; -u "" keeps it.
    env.import("as-nobody", &["USER nobody"], |_| {});
    let out = env.run(&["as-nobody", "sh", "-c", WHO], &[]);
    assert_eq!(
        out,
        who(65534, 65534, "65534 1234 2345", cases[1].4, "/nonexistent")
    );
    let out = env.run(&["-u", "", "as-nobody", "id", "-G"], &[]);
    assert_eq!(out, "65534 1234 2345\n");
    // No user at all: root, with the groups that list root.
    assert_eq!(env.run(&["users", "id", "-G"], &[]), "0 10\n");
    env.finish();
}

#[test]
fn unknown_users_and_groups_are_refused_as_docker_refuses_them() {
    let Some(env) = Env::new() else { return };
    for (user, message) in [
        (
            "nosuch",
            "unable to find user nosuch: no matching entries in passwd file",
        ),
        (
            "app:nosuch",
            "unable to find group nosuch: no matching entries in group file",
        ),
        ("2147483648", "uids and gids must be in range 0-2147483647"),
        ("-1", "uids and gids must be in range 0-2147483647"),
        (
            "0:4294967296",
            "uids and gids must be in range 0-2147483647",
        ),
    ] {
        let flag = format!("--user={user}");
        let err = env.refused(&[&flag, "users", "true"]);
        assert!(err.contains(message), "-u {user}: {err}");
    }
    let err = env.refused(&["--group-add", "nosuch", "users", "true"]);
    assert!(
        err.contains("unable to find group nosuch: no matching entries in group file"),
        "{err}"
    );
    let err = env.refused(&["--group-add", "-1", "users", "true"]);
    assert!(
        err.contains("uids and gids must be in range 0-2147483647"),
        "{err}"
    );
    // An image without /etc/passwd: a uid still works, a name does not.
    env.import("nopasswd", &[], |rootfs| {
        std::fs::remove_file(rootfs.join("etc/passwd")).unwrap();
    });
    assert_eq!(
        env.run(
            &[
                "-u",
                "7:8",
                "nopasswd",
                "sh",
                "-c",
                "id -u; id -G; echo $HOME"
            ],
            &[]
        ),
        "7\n8\n/\n"
    );
    env.refused(&["-u", "root", "nopasswd", "true"]);
    env.finish();
}

#[test]
fn group_add_appends_names_and_numbers_after_the_users_groups() {
    let Some(env) = Env::new() else { return };
    let out = env.run(
        &[
            "-u",
            "app",
            "--group-add",
            "g2",
            "--group-add",
            "777",
            "--group-add",
            "wheel",
            "users",
            "sh",
            "-c",
            "grep '^Groups:' /proc/self/status",
        ],
        &[],
    );
    // wheel comes from /etc/group and from --group-add: the process is in it once, as with
    // Docker.
    assert_eq!(out, "Groups:\t10 777 1000 1234 2345 \n");
    let out = env.run(
        &["-u", "4242:4242", "--group-add", "10", "users", "id"],
        &[],
    );
    assert_eq!(out, "uid=4242 gid=4242 groups=10(wheel),4242\n");
    // exec -u takes the container's --group-add too, as Docker's does.
    let id = env
        .ok(&["run", "-d", "--group-add", "g1", "users", "sleep", "1000"])
        .trim()
        .to_owned();
    assert_eq!(
        env.inspect(&id, "{{json .HostConfig.GroupAdd}}"),
        "[\"g1\"]"
    );
    assert_eq!(
        env.ok(&["exec", "-u", "4242:4242", &id, "id", "-G"]),
        "4242 1234\n"
    );
    assert_eq!(
        env.ok(&[
            "exec",
            "-u",
            "nobody",
            &id,
            "grep",
            "^Groups:",
            "/proc/self/status"
        ]),
        "Groups:\t1234 2345 65534 \n"
    );
    env.ok(&["rm", "-f", &id]);
    env.finish();
}

impl Env {
    fn inspect(&self, container: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, container])
            .trim_end()
            .to_owned()
    }
}

#[test]
fn a_bare_e_name_unset_here_removes_the_images_variable() {
    let Some(env) = Env::new() else { return };
    let unset = [("FOO", None), ("BAR", None)];
    let print = [
        "users",
        "sh",
        "-c",
        "echo \"FOO=${FOO-unset} BAR=${BAR-unset}\"",
    ];
    let with = |flags: &[&str], vars: &[(&str, Option<&str>)]| {
        let mut args = flags.to_vec();
        args.extend_from_slice(&print);
        env.run(&args, vars)
    };
    assert_eq!(with(&[], &unset), "FOO=img BAR=b\n");
    // -e FOO with FOO unset here: the image's FOO is gone.
    assert_eq!(with(&["-e", "FOO"], &unset), "FOO=unset BAR=b\n");
    // ...and with FOO set here, the caller's value.
    assert_eq!(
        with(&["-e", "FOO"], &[("FOO", Some("host")), ("BAR", None)]),
        "FOO=host BAR=b\n"
    );
    assert_eq!(with(&["-e", "FOO="], &unset), "FOO= BAR=b\n");
    // In an --env-file, a bare unset name is left out: the image's value stays.
    let file = env.root().join("env");
    std::fs::write(&file, "FOO\nBAR=file\n").unwrap();
    let file = file.to_str().unwrap();
    assert_eq!(with(&["--env-file", file], &unset), "FOO=img BAR=file\n");
    assert_eq!(
        with(&["--env-file", file], &[("FOO", Some("host"))]),
        "FOO=host BAR=file\n"
    );
    // -e after --env-file: both go to the daemon, in that order. Docker's merge removes a
    // bare name only from what came before the flags (the image's and its own defaults), so
    // the file's BAR stays.
    assert_eq!(
        with(&["--env-file", file, "-e", "BAR"], &unset),
        "FOO=img BAR=file\n"
    );
    // Config.Env as Docker's daemon merges it: the flags' entries as given, then the image's.
    let id = env
        .output(
            &[
                "run", "-d", "-e", "FOO", "-e", "NEW=1", "users", "sleep", "1000",
            ],
            &unset,
        )
        .stdout;
    let id = text(&id).trim().to_owned();
    assert_eq!(
        env.inspect(&id, "{{json .Config.Env}}"),
        r#"["FOO","NEW=1","BAR=b"]"#
    );
    let out = env.ok(&["exec", &id, "env"]);
    let keys: Vec<&str> = out.lines().map(|l| l.split('=').next().unwrap()).collect();
    assert_eq!(keys, ["PATH", "HOSTNAME", "NEW", "BAR", "HOME"], "{out}");
    // exec -e BAR, unset here, removes it from the exec'd process too.
    let out = env.output(&["exec", "-e", "BAR", &id, "env"], &unset);
    assert!(!text(&out.stdout).contains("BAR"), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("NEW=1"));
    env.ok(&["rm", "-f", &id]);
    env.finish();
}

#[test]
fn workdirs_are_cleaned_made_and_entered_as_docker_does() {
    let Some(env) = Env::new() else { return };
    // Cleaned as text first (`..` at / stays at /), then resolved inside the rootfs.
    assert_eq!(
        env.run(&["-w", "/../../../../tmp", "users", "pwd"], &[]),
        "/tmp\n"
    );
    let err = env.refused(&["-w", "x", "users", "pwd"]);
    assert!(
        err.contains("the working directory 'x' is invalid, it needs to be an absolute path"),
        "{err}"
    );
    // A missing directory is made, as root (0755), before the process becomes its user.
    let out = env.run(
        &[
            "-u",
            "1000:1000",
            "-w",
            "/newdir/sub",
            "users",
            "sh",
            "-c",
            "pwd; stat -c '%a %u:%g' /newdir /newdir/sub; id -u",
        ],
        &[],
    );
    assert_eq!(out, "/newdir/sub\n755 0:0\n755 0:0\n1000\n");
    // Also under --read-only and from the image's WORKDIR.
    env.import("wd", &["WORKDIR /made/by/image"], |_| {});
    assert_eq!(
        env.run(&["--read-only", "-u", "app", "wd", "pwd"], &[]),
        "/made/by/image\n"
    );
    let err = env.refused(&["-w", "/etc/passwd", "users", "pwd"]);
    assert!(
        err.contains("Cannot mkdir: /etc/passwd is not a directory"),
        "{err}"
    );
    // Through a symlink climbing out of the rootfs, the directory is made inside it.
    let outside = env.root().join("outside");
    let target = format!("../../../../../../../../..{}", outside.display());
    env.import("hostile", &[], |rootfs| {
        std::os::unix::fs::symlink(&target, rootfs.join("escape")).unwrap();
    });
    let out = env.run(&["-w", "/escape/wd", "hostile", "pwd", "-P"], &[]);
    assert_eq!(out, format!("{}/wd\n", outside.display()));
    assert!(!outside.exists(), "the symlink led out of the rootfs");
    let id = env
        .ok(&["create", "-w", "/a/../../b", "users", "pwd"])
        .trim()
        .to_owned();
    assert_eq!(env.inspect(&id, "{{.Config.WorkingDir}}"), "/b");
    env.ok(&["rm", &id]);
    env.finish();
}

#[test]
fn the_runtime_makes_a_missing_cwd_as_runc_does() {
    if !bundle::require_peers() {
        return;
    }
    // A cwd that is missing, unclean, and under a user that could not make it.
    let bundle = bundle::Bundle::new(&[
        "sh",
        "-c",
        "pwd; stat -c '%n %a %u:%g' /newdir /newdir/sub; id -u; grep '^Groups:' /proc/self/status",
    ]);
    let fresh = |b: &bundle::Bundle| {
        let _ = std::fs::remove_dir_all(b.path().join("rootfs/newdir"));
    };
    bundle.edit(|c| {
        c["process"]["cwd"] = "/newdir/../../newdir/sub".into();
        c["process"]["user"] =
            serde_json::json!({"uid": 1000, "gid": 1000, "additionalGids": [1000]});
    });
    fresh(&bundle);
    let theirs = bundle::run_runc(&bundle);
    fresh(&bundle);
    let ours = bundle::run_minidock(&bundle);
    assert_eq!(
        bundle::stdout(&ours),
        "/newdir/sub\n/newdir 755 0:0\n/newdir/sub 755 0:0\n1000\nGroups:\t1000 \n",
        "{}",
        bundle::stderr(&ours)
    );
    assert_eq!(
        bundle::stdout(&ours),
        bundle::stdout(&theirs),
        "{}",
        bundle::stderr(&theirs)
    );
    assert_eq!(ours.status.code(), theirs.status.code());
    // A read-only rootfs: made before the remount, as runc does.
    bundle.edit(|c| c["root"]["readonly"] = true.into());
    fresh(&bundle);
    let theirs = bundle::run_runc(&bundle);
    fresh(&bundle);
    let ours = bundle::run_minidock(&bundle);
    assert_eq!(
        bundle::stdout(&ours),
        bundle::stdout(&theirs),
        "{}",
        bundle::stderr(&ours)
    );
    assert_eq!(ours.status.code(), Some(0));
    // A file in the way fails both.
    bundle.edit(|c| c["process"]["cwd"] = "/etc/passwd".into());
    let theirs = bundle::run_runc(&bundle);
    let ours = bundle::run_minidock(&bundle);
    assert_ne!(theirs.status.code(), Some(0));
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "{}",
        bundle::stderr(&ours)
    );
}
