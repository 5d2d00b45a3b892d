//! `minidock build`: Dockerfiles built into a temp state root with a busybox image, and the
//! results checked by running them (files, owners, modes, env, user, workdir, entrypoint and
//! cmd) and by the image config (labels, exposed ports, volumes, stop signal, history); the
//! layer cache by the step lines and image IDs of rebuilds; and against Docker's classic
//! builder (a private dockerd, `DOCKER_BUILDKIT=0`) on the same Dockerfile and context.

mod common;

use assert_cmd::prelude::*;
use common::{require_busybox_overlay, text};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A state root with `busybox` imported, and a build context dir.
struct Env {
    root: tempfile::TempDir,
    ctx: tempfile::TempDir,
}

impl Env {
    fn new() -> Option<Env> {
        if !require_busybox_overlay() {
            return None;
        }
        let env = Env {
            root: tempfile::Builder::new()
                .prefix("minidock-build")
                .tempdir()
                .unwrap(),
            ctx: tempfile::Builder::new()
                .prefix("minidock-build-ctx")
                .tempdir()
                .unwrap(),
        };
        let rootfs = common::busybox_rootfs();
        let tar = env.root.path().join("busybox.tar");
        common::tar_dir(rootfs.path(), &tar);
        env.ok(&["import", tar.to_str().unwrap(), "busybox"]);
        fs::remove_file(&tar).unwrap();
        Some(env)
    }

    fn ctx(&self) -> &Path {
        self.ctx.path()
    }

    fn write(&self, name: &str, content: &str, mode: u32) {
        let path = self.ctx().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn output(&self, args: &[&str]) -> Output {
        let mut cmd = Command::cargo_bin("minidock").unwrap();
        cmd.arg("--root").arg(self.root.path());
        cmd.args(args).stdin(Stdio::null()).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        common::ok_stdout(args, &self.output(args))
    }

    /// `build ARGS CONTEXT`: its stdout.
    fn build(&self, args: &[&str]) -> String {
        let mut all = vec!["build"];
        all.extend_from_slice(args);
        all.push(self.ctx().to_str().unwrap());
        self.ok(&all)
    }

    fn config(&self, image: &str) -> serde_json::Value {
        let json = self.ok(&["image", "inspect", "-f", "{{json .Config}}", image]);
        serde_json::from_str(&json).unwrap()
    }

    /// `run --rm IMAGE ARGS`: stdout.
    fn run(&self, image: &str, args: &[&str]) -> String {
        let mut all = vec!["run", "--rm", image];
        all.extend_from_slice(args);
        self.ok(&all)
    }

    /// No container is left behind by a build.
    fn assert_no_containers(&self) {
        let ps = self.ok(&["ps", "-a", "-q"]);
        assert_eq!(ps.trim(), "", "containers left by the build");
    }
}

/// The image ID a build printed last (`Successfully built <id>`).
fn built_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap_or_else(|| panic!("no 'Successfully built' in:\n{stdout}"))
        .to_owned()
}

const EVERYTHING: &str = r#"FROM busybox
ARG SECRET=default
MAINTAINER Ada <ada@example.com>
ENV A=1 B="two words"
LABEL com.example.x=y "with space"=z
WORKDIR /app
COPY --chown=1000:1001 a.txt ./
COPY --chmod=0750 sub /opt/sub
COPY f*.conf /etc/conf/
RUN echo "secret=$SECRET" > /app/run-saw && chown 1000 /app/run-saw
WORKDIR rel
USER 1000:1001
EXPOSE 80 53/udp 8000-8001
VOLUME /data
ENTRYPOINT ["/bin/echo", "entry"]
CMD ["cmd", "args"]
STOPSIGNAL SIGINT
"#;

fn everything_context(env: &Env) {
    env.write("Dockerfile", EVERYTHING, 0o644);
    env.write("a.txt", "hello\n", 0o640);
    env.write("sub/inner/s", "sub\n", 0o644);
    env.write("f1.conf", "one\n", 0o600);
    env.write("f2.conf", "two\n", 0o644);
    env.write("other.txt", "not copied\n", 0o644);
}

#[test]
fn every_instruction_shows_in_the_running_image() {
    let Some(env) = Env::new() else { return };
    everything_context(&env);
    let out = env.build(&["-t", "everything", "--build-arg", "SECRET=hunter2"]);
    assert!(out.starts_with("Step 1/17 : FROM busybox\n ---> "), "{out}");
    assert!(out.contains("Step 10/17 : RUN echo"), "{out}");
    assert!(out.contains(" ---> Running in "), "{out}");
    assert!(out.contains("Removing intermediate container "), "{out}");
    assert!(
        out.ends_with("Successfully tagged everything:latest\n"),
        "{out}"
    );
    env.assert_no_containers();

    // Entrypoint and Cmd combine; user and workdir as set.
    assert_eq!(env.run("everything", &[]), "entry cmd args\n");
    let sh = |script: &str| {
        env.ok(&[
            "run",
            "--rm",
            "--entrypoint",
            "/bin/sh",
            "everything",
            "-c",
            script,
        ])
    };
    assert_eq!(sh("id -u; id -g; pwd"), "1000\n1001\n/app/rel\n");
    // Files: owners and modes as COPY's flags say, the RUN's file with the build arg.
    // (as root: user 1000 may not enter the 0750 directory, as the kernel says)
    let listing = env.ok(&["run", "--rm", "-u", "0", "--entrypoint", "/bin/sh", "everything", "-c", "stat -c '%n %u:%g %a' /app/a.txt /opt/sub /opt/sub/inner/s /etc/conf/f1.conf /etc/conf/f2.conf /app/run-saw"]);
    assert_eq!(
        listing,
        "/app/a.txt 1000:1001 640\n/opt/sub 0:0 750\n/opt/sub/inner/s 0:0 750\n\
         /etc/conf/f1.conf 0:0 600\n/etc/conf/f2.conf 0:0 644\n/app/run-saw 1000:0 644\n"
    );
    assert_eq!(sh("cat /app/a.txt /app/run-saw"), "hello\nsecret=hunter2\n");
    assert_eq!(
        sh("ls /app /etc/conf"),
        "/app:\na.txt\nrel\nrun-saw\n\n/etc/conf:\nf1.conf\nf2.conf\n"
    );
    // The build arg reached RUN only: not in the image's environment nor its config.
    let environ = sh("env");
    assert!(
        environ.contains("A=1\n") && environ.contains("B=two words\n"),
        "{environ}"
    );
    assert!(!environ.contains("SECRET"), "{environ}");

    let config = env.config("everything");
    assert!(!config.to_string().contains("hunter2"), "{config}");
    assert_eq!(
        config["Labels"],
        serde_json::json!({"com.example.x": "y", "with space": "z"})
    );
    assert_eq!(
        config["ExposedPorts"],
        serde_json::json!({"53/udp": {}, "80/tcp": {}, "8000/tcp": {}, "8001/tcp": {}})
    );
    assert_eq!(config["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(config["StopSignal"], "SIGINT");
    assert_eq!(config["User"], "1000:1001");
    assert_eq!(config["WorkingDir"], "/app/rel");
    let author = env.ok(&["image", "inspect", "-f", "{{.Author}}", "everything"]);
    assert_eq!(author.trim(), "Ada <ada@example.com>");
    // History: one entry per step after FROM, as the classic builder writes them.
    let history = env.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "everything",
    ]);
    let history: Vec<&str> = history.lines().collect();
    assert_eq!(history[0], "/bin/sh -c #(nop)  STOPSIGNAL SIGINT");
    assert_eq!(history[1], r#"/bin/sh -c #(nop)  CMD ["cmd" "args"]"#);
    assert!(
        history.contains(&r#"|1 SECRET=hunter2 /bin/sh -c echo "secret=$SECRET" > /app/run-saw && chown 1000 /app/run-saw"#),
        "{history:#?}"
    );
    assert_eq!(history.len(), 17, "{history:#?}");
}

#[test]
fn an_unchanged_rebuild_hits_the_cache_and_a_changed_file_misses_it() {
    let Some(env) = Env::new() else { return };
    everything_context(&env);
    let first = env.build(&["-t", "cached"]);
    assert!(!first.contains("Using cache"), "{first}");
    let second = env.build(&["-t", "cached"]);
    assert_eq!(
        second.matches(" ---> Using cache\n").count(),
        16,
        "{second}"
    );
    assert!(!second.contains("Running in"), "{second}");
    assert_eq!(built_id(&first), built_id(&second));

    // A file COPY reads changes: that step and every later one run again.
    env.write("sub/inner/s", "changed\n", 0o644);
    let third = env.build(&["-t", "cached"]);
    assert_eq!(third.matches(" ---> Using cache\n").count(), 6, "{third}");
    assert!(third.contains("Running in"), "{third}");
    assert_ne!(built_id(&third), built_id(&first));
    let s = env.ok(&[
        "run",
        "--rm",
        "-u",
        "0",
        "--entrypoint",
        "cat",
        "cached",
        "/opt/sub/inner/s",
    ]);
    assert_eq!(s, "changed\n");

    // A file nothing copies does not matter; --no-cache runs every step.
    env.write("other.txt", "changed too\n", 0o644);
    let fourth = env.build(&["-t", "cached"]);
    assert_eq!(
        fourth.matches(" ---> Using cache\n").count(),
        16,
        "{fourth}"
    );
    // A build arg RUN sees is part of its key: another value runs it again.
    let other = env.build(&["-t", "cached", "--build-arg", "SECRET=other"]);
    assert_eq!(other.matches(" ---> Using cache\n").count(), 8, "{other}");
    assert!(other.contains("Running in"), "{other}");
    let fifth = env.build(&["-t", "cached", "--no-cache"]);
    assert!(!fifth.contains("Using cache"), "{fifth}");
    env.assert_no_containers();
}

#[test]
fn a_failing_run_stops_the_build_with_dockers_message_and_status() {
    let Some(env) = Env::new() else { return };
    env.write(
        "Dockerfile",
        "FROM busybox\nRUN echo before; exit 3\nENV NEVER=1\n",
        0o644,
    );
    let out = env.output(&["build", "-t", "fails", env.ctx().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("before\n"), "{stdout}");
    assert!(!stdout.contains("Step 3/3"), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("The command '/bin/sh -c echo before; exit 3' returned a non-zero code: 3"),
        "{stderr}"
    );
    env.assert_no_containers();
    assert!(!env.output(&["image", "inspect", "fails"]).status.success());
}

#[test]
fn stdin_dockerfile_quiet_iidfile_and_labels() {
    let Some(env) = Env::new() else { return };
    let iid = env.ctx().join("iid");
    let mut child = Command::cargo_bin("minidock")
        .unwrap()
        .arg("--root")
        .arg(env.root.path())
        .args([
            "build",
            "-q",
            "--label",
            "b=2",
            "--label",
            "a=1",
            "-t",
            "fromstdin:v1",
        ])
        .arg("--iidfile")
        .arg(&iid)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM busybox\nRUN echo loud\nCMD [\"true\"]\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let id = fs::read_to_string(&iid).unwrap();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(text(&out.stdout), format!("{id}\n"));
    let config = env.config("fromstdin:v1");
    assert_eq!(config["Labels"], serde_json::json!({"a": "1", "b": "2"}));
    let inspected = env.ok(&["image", "inspect", "-f", "{{.Id}}", "fromstdin:v1"]);
    assert_eq!(inspected.trim(), id);
}

#[test]
fn what_is_not_supported_is_refused() {
    let Some(env) = Env::new() else { return };
    let cases = [
        (
            "FROM --platform=linux/s390x busybox\n",
            "FROM --platform=linux/s390x is not supported",
        ),
        ("FROM nosuchimage\n", "minidock build does not pull"),
        (
            "FROM busybox\nHEALTHCHECK CMD true\n",
            "HEALTHCHECK is not supported",
        ),
        (
            "FROM busybox\nONBUILD RUN true\n",
            "ONBUILD is not supported",
        ),
        (
            "FROM busybox\nADD http://127.0.0.1:1/x /x\n",
            "ADD from a URL is not supported",
        ),
    ];
    for (dockerfile, message) in cases {
        env.write("Dockerfile", dockerfile, 0o644);
        let out = env.output(&["build", env.ctx().to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{dockerfile}: {out:?}");
        assert!(
            text(&out.stderr).contains(message),
            "{dockerfile}: {}",
            text(&out.stderr)
        );
    }
    // A symlink to a host path resolves inside the context (where there is no etc/passwd),
    // never to the host's file.
    std::os::unix::fs::symlink("/etc/passwd", env.ctx().join("escape")).unwrap();
    env.write("Dockerfile", "FROM busybox\nCOPY escape /x\n", 0o644);
    let out = env.output(&["build", env.ctx().to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("file not found in build context"),
        "{out:?}"
    );
    env.assert_no_containers();
}

#[test]
fn add_unpacks_local_archives_and_copies_other_files() {
    let Some(env) = Env::new() else { return };
    let tree = tempfile::tempdir().unwrap();
    fs::create_dir_all(tree.path().join("pkg/bin")).unwrap();
    fs::write(tree.path().join("pkg/bin/tool"), "tool\n").unwrap();
    fs::set_permissions(
        tree.path().join("pkg/bin/tool"),
        fs::Permissions::from_mode(0o751),
    )
    .unwrap();
    std::os::unix::fs::chown(tree.path().join("pkg/bin/tool"), Some(123), Some(456)).unwrap();
    for (name, flag) in [("plain.tar", ""), ("gz.tar.gz", "z"), ("xz.tar.xz", "J")] {
        let status = Command::new("tar")
            .arg(format!("-c{flag}f"))
            .arg(env.ctx().join(name))
            .arg("-C")
            .arg(tree.path())
            .arg("pkg")
            .status()
            .unwrap();
        assert!(status.success());
    }
    env.write("note.txt", "note\n", 0o644);
    env.write(
        "Dockerfile",
        "FROM busybox\nADD plain.tar /p/\nADD gz.tar.gz /g\nADD --chown=7:8 xz.tar.xz /x\nADD note.txt /n/\n",
        0o644,
    );
    env.build(&["-t", "added"]);
    let found = env.run(
        "added",
        &[
            "stat",
            "-c",
            "%n %u:%g %a",
            "/p/pkg/bin/tool",
            "/g/pkg/bin/tool",
            "/x/pkg/bin/tool",
            "/n/note.txt",
        ],
    );
    assert_eq!(
        found,
        "/p/pkg/bin/tool 123:456 751\n/g/pkg/bin/tool 123:456 751\n\
         /x/pkg/bin/tool 7:8 751\n/n/note.txt 0:0 644\n"
    );
    assert_eq!(env.run("added", &["cat", "/g/pkg/bin/tool"]), "tool\n");
}

const STAGES: &str = r#"FROM busybox AS builder
RUN mkdir /out && echo built > /out/artifact && chmod 0700 /out/artifact
FROM busybox AS unused
RUN exit 7
FROM busybox
COPY --from=builder /out /opt/
COPY --from=0 /out/artifact /single
COPY --from=builder /bin/sh /sh-copy
"#;

#[test]
fn multi_stage_copies_from_an_earlier_stage_and_skips_stages_not_needed() {
    let Some(env) = Env::new() else { return };
    env.write("Dockerfile", STAGES, 0o644);
    let out = env.build(&["-t", "staged"]);
    assert!(!out.contains("RUN exit 7"), "{out}");
    let found = env.run(
        "staged",
        &[
            "stat",
            "-c",
            "%n %u %a",
            "/opt/artifact",
            "/single",
            "/sh-copy",
        ],
    );
    // /bin/sh is a symlink to /bin/busybox in the stage: the file it names is copied.
    assert!(
        found == "/opt/artifact 0 700\n/single 0 700\n/sh-copy 0 755\n",
        "{found}"
    );
    assert_eq!(env.run("staged", &["cat", "/single"]), "built\n");
    // --target: the named stage is the result.
    let out = env.build(&["-t", "first", "--target", "builder"]);
    assert!(!out.contains("COPY"), "{out}");
    assert_eq!(env.run("first", &["cat", "/out/artifact"]), "built\n");
    env.assert_no_containers();
    assert_eq!(
        common::mounts_containing(env.root.path().to_str().unwrap()),
        Vec::<String>::new()
    );
}

#[test]
fn dockerignore_excludes_with_exceptions() {
    let Some(env) = Env::new() else { return };
    env.write("Dockerfile", "FROM busybox\nCOPY . /ctx/\n", 0o644);
    env.write(
        ".dockerignore",
        "# docs out\n*.md\n!keep.md\nsub/inner\n**/*.tmp\n",
        0o644,
    );
    for name in [
        "a.md",
        "keep.md",
        "sub/inner/x",
        "sub/y",
        "sub/deep/z.tmp",
        "top.tmp",
        "c",
    ] {
        env.write(name, name, 0o644);
    }
    env.build(&["-t", "ignored"]);
    let found = env.run("ignored", &["find", "/ctx", "-type", "f"]);
    let mut found: Vec<&str> = found.lines().collect();
    found.sort();
    assert_eq!(
        found,
        [
            "/ctx/.dockerignore",
            "/ctx/Dockerfile",
            "/ctx/c",
            "/ctx/keep.md",
            "/ctx/sub/y"
        ]
    );
    // An excluded file named as a source is not found, as Docker says.
    env.write("Dockerfile", "FROM busybox\nCOPY a.md /\n", 0o644);
    let out = env.output(&["build", env.ctx().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("excluded by .dockerignore"),
        "{out:?}"
    );
    // A changed excluded file leaves the cache valid.
    env.write("Dockerfile", "FROM busybox\nCOPY . /ctx/\n", 0o644);
    env.write("a.md", "changed", 0o644);
    let again = env.build(&["-t", "ignored"]);
    assert!(again.contains(" ---> Using cache\n"), "{again}");
}

/// The same Dockerfile and context through Docker's classic builder: the same step lines,
/// image config and history.
#[test]
fn docker_classic_builder_builds_the_same_image() {
    if !common::dockerd::require_docker() {
        return;
    }
    let Some(env) = Env::new() else { return };
    everything_context(&env);
    // The classic builder has no COPY --chmod (it requires BuildKit).
    env.write(
        "Dockerfile",
        &EVERYTHING.replace("--chmod=0750 ", ""),
        0o644,
    );
    let d = common::dockerd::Dockerd::start();
    d.load_busybox();
    let out = d
        .docker_command()
        .env("DOCKER_BUILDKIT", "0")
        .args([
            "build",
            "--network",
            "none",
            "-t",
            "everything",
            "--build-arg",
            "SECRET=s",
        ])
        .arg(env.ctx())
        .output()
        .unwrap();
    let docker_out = text(&out.stdout);
    assert!(out.status.success(), "{docker_out}\n{}", text(&out.stderr));
    let ours = env.build(&["-t", "everything", "--build-arg", "SECRET=s"]);
    let steps = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.starts_with("Step ") || l.starts_with("Successfully tagged"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(steps(&ours), steps(&docker_out));
    let docker_config: serde_json::Value =
        serde_json::from_str(&d.ok(&["image", "inspect", "-f", "{{json .Config}}", "everything"]))
            .unwrap();
    let config = env.config("everything");
    for field in [
        "Env",
        "Labels",
        "ExposedPorts",
        "Volumes",
        "StopSignal",
        "User",
        "WorkingDir",
        "Entrypoint",
        "Cmd",
    ] {
        assert_eq!(config[field], docker_config[field], "{field}");
    }
    // COPY's content hash is Docker's own tarsum; the words around it must match.
    let hash = regex::Regex::new("(file|dir|multi):[0-9a-f]{64}").unwrap();
    let history = |out: String| -> Vec<String> {
        out.lines()
            .map(|l| hash.replace_all(l, "$1:<hash>").into_owned())
            .collect()
    };
    let args = [
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "everything",
    ];
    let docker_history = history(d.ok(&args));
    let our_history = history(env.ok(&args));
    // Docker's last entry is the base image's import; ours names the same step differently.
    let n = docker_history.len() - 1;
    assert_eq!(our_history[..n], docker_history[..n]);
}
