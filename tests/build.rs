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
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
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
    let out = common::output_with_stdin(
        Command::cargo_bin("minidock")
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
            .arg("-"),
        b"FROM busybox\nRUN echo loud\nCMD [\"true\"]\n",
    );
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
        // A missing base is pulled: here from a port where nothing listens.
        (
            "FROM 127.0.0.1:1/nosuchimage\n",
            "pulling the base image 127.0.0.1:1/nosuchimage",
        ),
        (
            "FROM busybox\nADD http://127.0.0.1:1/x /x\n",
            "failed to GET http://127.0.0.1:1/x",
        ),
        (
            "FROM busybox\nCOPY --chown=nosuchuser a /a\n",
            "can't find uid for user nosuchuser: no such user: nosuchuser",
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

    // SHELL, HEALTHCHECK and ONBUILD in the config and history, and the triggers in a child.
    env.write("Dockerfile", PARENT, 0o644);
    env.write("child.txt", "child\n", 0o644);
    let compare = |tag: &str, lines: &[&str], fields: &[&str], steps: usize| {
        let docker_build = d
            .docker_command()
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "--network", "none", "-t", tag])
            .arg(env.ctx())
            .output()
            .unwrap();
        assert!(docker_build.status.success(), "{docker_build:?}");
        let ours = env.build(&["-t", tag]);
        let pick = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| lines.iter().any(|p| l.starts_with(p)))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(pick(&ours), pick(&text(&docker_build.stdout)), "{ours}");
        let docker_config: serde_json::Value =
            serde_json::from_str(&d.ok(&["image", "inspect", "-f", "{{json .Config}}", tag]))
                .unwrap();
        let config = env.config(tag);
        for field in fields {
            assert_eq!(config[field], docker_config[field], "{tag}: {field}");
        }
        let args = ["history", "--no-trunc", "--format", "{{.CreatedBy}}", tag];
        let (ours, theirs) = (history(env.ok(&args)), history(d.ok(&args)));
        assert_eq!(ours[..steps], theirs[..steps], "{tag}");
    };
    let fields = ["Healthcheck", "OnBuild", "Shell", "Cmd"];
    compare("parent", &["Step ", "Successfully tagged"], &fields, 5);
    env.write(
        "Dockerfile",
        "FROM parent\nRUN echo child > /child-ran\n",
        0o644,
    );
    let lines = ["Step ", "# ", " ---> Using", "Successfully tagged"];
    compare("child", &lines, &fields, 3);

    // The same images listed: the step images only with -a.
    let count = |out: String| out.lines().count();
    for args in [["images", "-q"], ["images", "-aq"]] {
        assert_eq!(count(env.ok(&args)), count(d.ok(&args)), "{args:?}");
    }
}

/// A parent with `SHELL`, `HEALTHCHECK` and `ONBUILD`, and a child built on it.
const PARENT: &str = r#"FROM busybox
SHELL ["/bin/sh", "-ec"]
HEALTHCHECK --interval=5m --timeout=3s --retries=3 CMD wget -q -O- localhost || exit 1
ONBUILD RUN echo "trigger ran with $0 $-" > /onbuild-ran
ONBUILD COPY child.txt /child.txt
CMD echo parent
"#;

#[test]
fn healthcheck_onbuild_and_shell_are_kept_and_triggers_run_in_a_child() {
    let Some(env) = Env::new() else { return };
    env.write("Dockerfile", PARENT, 0o644);
    env.write("child.txt", "from the child's context\n", 0o644);
    let out = env.build(&["-t", "parent"]);
    assert!(!out.contains("Executing"), "{out}");
    let config = env.config("parent");
    assert_eq!(
        config["Healthcheck"],
        serde_json::json!({
            "Test": ["CMD-SHELL", "wget -q -O- localhost || exit 1"],
            "Interval": 300_000_000_000u64,
            "Timeout": 3_000_000_000u64,
            "Retries": 3,
        })
    );
    assert_eq!(
        config["OnBuild"],
        serde_json::json!([
            r#"RUN echo "trigger ran with $0 $-" > /onbuild-ran"#,
            "COPY child.txt /child.txt"
        ])
    );
    assert_eq!(config["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
    // The shell form uses the SHELL, in CMD and in the history.
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["/bin/sh", "-ec", "echo parent"])
    );
    let history = env.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "parent",
    ]);
    let history: Vec<&str> = history.lines().collect();
    assert_eq!(
        history[..5],
        [
            r#"/bin/sh -ec #(nop)  CMD ["/bin/sh" "-ec" "echo parent"]"#,
            "/bin/sh -ec #(nop)  ONBUILD COPY child.txt /child.txt",
            r#"/bin/sh -ec #(nop)  ONBUILD RUN echo "trigger ran with $0 $-" > /onbuild-ran"#,
            r#"/bin/sh -ec #(nop)  HEALTHCHECK &{["CMD-SHELL" "wget -q -O- localhost || exit 1"] "5m0s" "3s" "0s" '\x03'}"#,
            "/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]",
        ]
    );
    // The parent's triggers did not run in the parent.
    let ls = env.run("parent", &["ls", "/"]);
    assert!(!ls.contains("onbuild-ran"), "{ls}");

    // The child: the triggers run first, then its own steps, with the parent's shell.
    env.write(
        "Dockerfile",
        "FROM parent\nRUN echo child > /child-ran\n",
        0o644,
    );
    let out = env.build(&["-t", "child"]);
    assert!(
        out.starts_with("Step 1/2 : FROM parent\n# Executing 2 build triggers\n ---> Running in "),
        "{out}"
    );
    let ran = env.run(
        "child",
        &["cat", "/onbuild-ran", "/child.txt", "/child-ran"],
    );
    assert_eq!(
        ran,
        "trigger ran with /bin/sh ce\nfrom the child's context\nchild\n"
    );
    let config = env.config("child");
    assert_eq!(config["OnBuild"], serde_json::Value::Null);
    assert_eq!(config["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
    assert_eq!(config["Healthcheck"]["Retries"], 3);
    let history = env.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "child",
    ]);
    assert!(
        history.starts_with("/bin/sh -ec echo child > /child-ran\n"),
        "{history}"
    );
    // A grandchild has no triggers left to run.
    env.write("Dockerfile", "FROM child\nRUN true\n", 0o644);
    let out = env.build(&["-t", "grandchild"]);
    assert!(!out.contains("Executing"), "{out}");
    env.assert_no_containers();
}

const HEREDOCS: &str = r#"FROM busybox
ENV WHO=world
RUN <<EOF
echo one > /plain
echo two >> /plain
EOF
RUN <<EOF
#!/bin/sh
echo "script $0" > /script
EOF
RUN cat <<A > /a && cat <<-'B' > /b
hello $WHO
A
	tab $WHO
	B
COPY <<EOF /etc/expanded
hi "$WHO"
EOF
COPY <<'EOF' <<NAMED /docs/
raw $WHO
EOF
second $WHO
NAMED
"#;

#[test]
fn heredocs_in_run_and_copy_follow_buildkit() {
    let Some(env) = Env::new() else { return };
    env.write("Dockerfile", HEREDOCS, 0o644);
    let out = env.build(&["-t", "heredocs"]);
    assert!(out.contains("Successfully tagged heredocs:latest"), "{out}");
    let files = [
        "/plain",
        "/script",
        "/a",
        "/b",
        "/etc/expanded",
        "/docs/EOF",
        "/docs/NAMED",
    ];
    let mut cat = vec!["cat"];
    cat.extend(files);
    assert_eq!(
        env.run("heredocs", &cat),
        "one\ntwo\nscript /dev/pipes/EOF\nhello world\ntab $WHO\nhi \"world\"\nraw $WHO\nsecond world\n"
    );
    let modes = env.run(
        "heredocs",
        &["stat", "-c", "%n %a %u", "/etc/expanded", "/docs/EOF"],
    );
    assert_eq!(modes, "/etc/expanded 644 0\n/docs/EOF 644 0\n");
    // The script's text is part of the cache key.
    let again = env.build(&["-t", "heredocs"]);
    assert_eq!(again.matches(" ---> Using cache\n").count(), 6, "{again}");
    env.write(
        "Dockerfile",
        &HEREDOCS.replace("script $0", "changed $0"),
        0o644,
    );
    let changed = env.build(&["-t", "heredocs"]);
    assert_eq!(
        changed.matches(" ---> Using cache\n").count(),
        2,
        "{changed}"
    );
    env.assert_no_containers();
}

const ADD_USERS: &str = "FROM busybox\n\
    RUN echo 'app:x:1234:1:app:/:/bin/sh' >> /etc/passwd && echo 'staff:x:4321:' >> /etc/group\n\
    COPY --chown=app:staff a.txt /named\n";

#[test]
fn chown_takes_names_from_the_image_and_link_is_accepted() {
    let Some(env) = Env::new() else { return };
    env.write("a.txt", "a\n", 0o644);
    // The classic builder takes a user alone as the group's name too.
    let alone = format!("{ADD_USERS}COPY --chown=nobody a.txt /user-alone\n");
    env.write("Dockerfile", &alone, 0o644);
    let out = env.output(&["build", env.ctx().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("can't find gid for group nobody: no such group: nobody"),
        "{}",
        text(&out.stderr)
    );
    let names = format!(
        "{ADD_USERS}COPY --chown=nobody:nogroup --link a.txt /nobody\nCOPY --chown=app:7 a.txt /mixed\n"
    );
    env.write("Dockerfile", &names, 0o644);
    env.build(&["-t", "owners"]);
    let owners = env.run(
        "owners",
        &["stat", "-c", "%n %u:%g", "/named", "/nobody", "/mixed"],
    );
    assert_eq!(
        owners,
        "/named 1234:4321\n/nobody 65534:65534\n/mixed 1234:7\n"
    );
    env.assert_no_containers();
}

/// An HTTP server on 127.0.0.1 answering GETs from `files` (path, body, Last-Modified),
/// 404 otherwise; it serves until the test process ends. Returns `http://127.0.0.1:PORT`.
fn http_server(files: Vec<(&'static str, Vec<u8>, Option<&'static str>)>) -> String {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
            }
            let path = request.split(' ').nth(1).unwrap_or("");
            let reply = match files.iter().find(|(p, _, _)| *p == path) {
                Some((_, body, modified)) => {
                    let mut head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n",
                        body.len()
                    );
                    if let Some(m) = modified {
                        head.push_str(&format!("Last-Modified: {m}\r\n"));
                    }
                    let mut reply = format!("{head}\r\n").into_bytes();
                    reply.extend_from_slice(body);
                    reply
                }
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&reply);
        }
    });
    format!("http://{addr}")
}

/// A gzip'd tar of `files` (name, content), made by the host's `tar czf`.
fn tarball(files: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        fs::write(dir.path().join(name), content).unwrap();
    }
    let out = Command::new("tar")
        .arg("czf")
        .arg("-")
        .arg("-C")
        .arg(dir.path())
        .args(files.iter().map(|(n, _)| *n))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.starts_with(&[0x1f, 0x8b]));
    out.stdout
}

#[test]
fn add_fetches_urls_and_contexts_come_from_urls_and_stdin() {
    let Some(env) = Env::new() else { return };
    let context = tarball(&[
        ("Dockerfile", "FROM busybox\nCOPY in-tar.txt /in-tar.txt\n"),
        ("in-tar.txt", "from the tarball\n"),
    ]);
    let pkg = tarball(&[("x", "x\n")]);
    let base = http_server(vec![
        (
            "/files/pkg.tar.gz",
            pkg.clone(),
            Some("Tue, 15 Nov 1994 08:12:31 GMT"),
        ),
        ("/files/plain.txt", b"plain\n".to_vec(), None),
        ("/context.tar.gz", context.clone(), None),
        (
            "/Dockerfile",
            b"FROM busybox\nLABEL from=url\n".to_vec(),
            None,
        ),
    ]);
    env.write(
        "Dockerfile",
        &format!(
            "FROM busybox\nADD {base}/files/pkg.tar.gz /downloads/\nADD --chown=65534:65534 {base}/files/plain.txt /plain\n"
        ),
        0o644,
    );
    env.build(&["-t", "fetched"]);
    // Not unpacked, 0600, the server's mtime.
    let stat = env.run(
        "fetched",
        &[
            "stat",
            "-c",
            "%n %a %u:%g %Y %s",
            "/downloads/pkg.tar.gz",
            "/plain",
        ],
    );
    let lines: Vec<&str> = stat.lines().collect();
    assert_eq!(
        lines[0],
        format!("/downloads/pkg.tar.gz 600 0:0 784887151 {}", pkg.len())
    );
    assert!(lines[1].starts_with("/plain 600 65534:65534 "), "{stat}");
    env.write(
        "Dockerfile",
        &format!("FROM busybox\nADD {base}/nothing /x\n"),
        0o644,
    );
    let out = env.output(&["build", env.ctx().to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains(&format!("failed to GET {base}/nothing with status 404")),
        "{out:?}"
    );

    // The context as a URL: a tarball, or a Dockerfile alone.
    let url = format!("{base}/context.tar.gz");
    env.ok(&["build", "-t", "url-context", &url]);
    assert_eq!(
        env.run("url-context", &["cat", "/in-tar.txt"]),
        "from the tarball\n"
    );
    let url = format!("{base}/Dockerfile");
    env.ok(&["build", "-t", "url-dockerfile", &url]);
    assert_eq!(env.config("url-dockerfile")["Labels"]["from"], "url");

    // The context as a tarball on stdin.
    let mut child = Command::cargo_bin("minidock")
        .unwrap()
        .arg("--root")
        .arg(env.root.path())
        .args(["build", "-t", "stdin-context", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&context).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        env.run("stdin-context", &["cat", "/in-tar.txt"]),
        "from the tarball\n"
    );
    env.assert_no_containers();
}

#[test]
fn a_missing_base_is_pulled_and_pull_always_pulls() {
    let Some(env) = Env::new() else { return };
    let Some(registry) = common::registry::Registry::start(None) else {
        return;
    };
    let name = format!("{}/build-test/base:1", registry.addr);
    env.ok(&["tag", "busybox", &name]);
    env.ok(&["push", &name]);
    env.ok(&["rmi", &name]);
    env.write(
        "Dockerfile",
        &format!("FROM {name}\nRUN echo on-pulled > /x\n"),
        0o644,
    );
    let out = env.build(&["-t", "on-pulled"]);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    assert_eq!(env.run("on-pulled", &["cat", "/x"]), "on-pulled\n");
    let out = env.build(&["-t", "on-pulled"]);
    assert!(!out.contains("Pulling from"), "{out}");
    let out = env.build(&["-t", "on-pulled", "--pull"]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {name}"))
            && out.contains(" ---> Using cache"),
        "{out}"
    );
    env.assert_no_containers();
}

#[test]
fn intermediate_images_are_hidden_and_rmi_removes_them() {
    let Some(env) = Env::new() else { return };
    env.write(
        "Dockerfile",
        "FROM busybox\nRUN echo 1 > /one\nENV A=1\nRUN echo 2 > /two\n",
        0o644,
    );
    let out = env.build(&["-t", "steps"]);
    let ids: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix(" ---> "))
        .filter(|l| !l.starts_with("Running") && !l.starts_with("Using"))
        .collect();
    assert_eq!(ids.len(), 4, "{out}");
    let listed = |all: bool| -> Vec<String> {
        let mut args = vec!["images", "-q", "--no-trunc"];
        if all {
            args.push("-a");
        }
        let mut ids: Vec<String> = env
            .ok(&args)
            .lines()
            .map(|l| l.trim_start_matches("sha256:")[..12].to_owned())
            .collect();
        ids.sort();
        ids
    };
    let mut shown = vec![ids[0].to_owned(), ids[3].to_owned()];
    shown.sort();
    assert_eq!(listed(false), shown);
    let mut all: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    all.sort();
    assert_eq!(listed(true), all);
    // Each step's parent is the step before it.
    let parent = env.ok(&["image", "inspect", "-f", "{{.Parent}}", "steps"]);
    assert!(
        parent.starts_with(&format!("sha256:{}", ids[2])),
        "{parent}"
    );
    // An intermediate image with a child cannot be deleted by ID.
    let out = env.output(&["rmi", ids[1]]);
    assert!(
        text(&out.stderr).contains("image has dependent child images"),
        "{out:?}"
    );

    // A longer build on the same steps: rmi of the first untags it (a child uses it).
    env.write(
        "Dockerfile",
        "FROM busybox\nRUN echo 1 > /one\nENV A=1\nRUN echo 2 > /two\nENV B=2\n",
        0o644,
    );
    env.build(&["-t", "longer"]);
    assert_eq!(env.ok(&["rmi", "steps"]), "Untagged: steps:latest\n");
    assert_eq!(listed(true).len(), 5);
    // rmi of the last removes every step image nothing else uses, as Docker does.
    let out = env.ok(&["rmi", "longer"]);
    let deleted = out.lines().filter(|l| l.starts_with("Deleted: ")).count();
    assert_eq!(deleted, 4, "{out}");
    assert_eq!(listed(true), vec![ids[0].to_owned()]);
    env.assert_no_containers();
}

/// A trigger is a Dockerfile of its own (moby's `processOnBuild` parses each alone): an error
/// in it is on its line 1, whatever line the parent's `ONBUILD` was on.
#[test]
fn an_error_in_an_onbuild_trigger_is_on_the_triggers_line_1() {
    let Some(env) = Env::new() else { return };
    env.write(
        "Dockerfile",
        "FROM busybox\nENV A=1\nONBUILD COPY --bogus=1 a b\nONBUILD ENV\n",
        0o644,
    );
    env.build(&["-t", "bad-triggers"]);
    env.write("Dockerfile", "FROM bad-triggers\nRUN true\n", 0o644);
    let out = env.output(&["build", "-t", "child", env.ctx().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        text(&out.stderr).trim_end(),
        "minidock: ONBUILD trigger:1: COPY: Unknown flag: bogus"
    );
}

/// `images -f dangling=true`, with or without `-a`, lists the untagged images no image was made
/// from (moby's image list takes `imageStore.Heads()`); the classic builder's intermediate
/// images are never among them. `dangling=false` lists only the tagged ones, even with `-a`.
#[test]
fn dangling_images_are_untagged_heads_never_intermediate_images() {
    let Some(env) = Env::new() else { return };
    env.write(
        "Dockerfile",
        "FROM busybox\nENV A=1\nRUN echo hi > /x\nENV B=2\n",
        0o644,
    );
    let first = built_id(&env.build(&["-t", "steps"]));
    env.write(
        "Dockerfile",
        "FROM busybox\nENV A=1\nRUN echo hi > /x\nENV B=3\n",
        0o644,
    );
    let second = built_id(&env.build(&["-t", "steps"]));
    let full = |id: &str| env.ok(&["image", "inspect", "-f", "{{.Id}}", id]);
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["images", "--no-trunc", "-q"];
        all.extend_from_slice(args);
        env.ok(&all).lines().map(str::to_owned).collect()
    };
    // The two intermediate images (ENV A, RUN; shared by both builds) exist: -a shows
    // them, with busybox and the two results.
    assert_eq!(ids(&["-a"]).len(), 5, "{:?}", ids(&["-a"]));
    for args in [&["-f", "dangling=true"][..], &["-a", "-f", "dangling=true"]] {
        assert_eq!(ids(args), [full(&first).trim()], "{args:?}");
    }
    let busybox = full("busybox");
    for args in [
        &["-f", "dangling=false"][..],
        &["-a", "-f", "dangling=false"],
    ] {
        assert_eq!(
            ids(args),
            [full(&second).trim(), busybox.trim()],
            "{args:?}"
        );
    }
}

/// COPY keeps each copied file's, symlink's and directory's modification time in whole
/// seconds (moby copies through a tar whose headers `FileInfoHeader` truncates to the second),
/// from the context and from a stage; the directory a directory's contents go into, and the
/// parents a copy creates, have the time of the build. Checked against Docker 20.10's
/// classic builder on this Dockerfile.
#[test]
fn copy_keeps_mtimes_in_whole_seconds_as_docker() {
    let Some(env) = Env::new() else { return };
    env.write("f.txt", "a\n", 0o644);
    env.write("dir/g.txt", "b\n", 0o644);
    env.write("dir/sub/h.txt", "c\n", 0o644);
    std::os::unix::fs::symlink("g.txt", env.ctx().join("dir/link")).unwrap();
    let at = |secs: u64| std::time::UNIX_EPOCH + std::time::Duration::new(secs, 123_456_789);
    let file_time = 1_577_934_245; // 2020-01-02 03:04:05
    let dir_time = 1_557_126_489; // 2019-05-06 07:08:09
    for f in ["f.txt", "dir/g.txt", "dir/sub/h.txt"] {
        let file = fs::File::options()
            .write(true)
            .open(env.ctx().join(f))
            .unwrap();
        file.set_modified(at(file_time)).unwrap();
    }
    for d in ["dir/sub", "dir"] {
        fs::File::open(env.ctx().join(d))
            .unwrap()
            .set_modified(at(dir_time))
            .unwrap();
    }
    env.write(
        "Dockerfile",
        "FROM busybox\nCOPY f.txt /one/f.txt\nCOPY dir /three\n\
         FROM busybox\nCOPY --from=0 /three /six\nCOPY --from=0 /one/f.txt /seven.txt\n",
        0o644,
    );
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    env.build(&["-t", "mtimes"]);
    let paths = [
        "/six",
        "/six/g.txt",
        "/six/link",
        "/six/sub",
        "/six/sub/h.txt",
        "/seven.txt",
    ];
    let mut args = vec!["stat", "-c", "%n %Y %y"];
    args.extend_from_slice(&paths);
    let stat = env.run("mtimes", &args);
    let seen: Vec<(&str, u64, &str)> = stat
        .lines()
        .map(|l| {
            let mut w = l.splitn(3, ' ');
            let (n, s, y) = (w.next().unwrap(), w.next().unwrap(), w.next().unwrap());
            (n, s.parse().unwrap(), y)
        })
        .collect();
    let symlink_time = fs::symlink_metadata(env.ctx().join("dir/link"))
        .unwrap()
        .mtime() as u64;
    let expected = [file_time, symlink_time, dir_time, file_time, file_time];
    for ((name, secs, full), want) in seen[1..].iter().zip(expected) {
        assert_eq!(*secs, want, "{name}: {stat}");
        assert!(full.contains(".000000000 "), "{name}: {full}");
    }
    assert_eq!(seen[0].0, "/six");
    assert!(seen[0].1 >= started, "/six has the build's time: {stat}");
}

/// `git daemon` serving the repositories under `base` on 127.0.0.1 (a free port), killed
/// with the git-daemon it starts when dropped.
struct GitDaemon {
    child: std::process::Child,
    port: u16,
}

impl GitDaemon {
    fn start(base: &Path) -> GitDaemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("git")
            .arg("daemon")
            .arg("--export-all")
            .arg(format!("--base-path={}", base.display()))
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg("--reuseaddr")
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // `git daemon` runs git-daemon as its child: a group of their own, killed whole.
            .process_group(0)
            .spawn()
            .unwrap();
        let daemon = GitDaemon { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return daemon;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("git daemon did not listen on 127.0.0.1:{port}");
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// `git` in `dir`, which must succeed.
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// A git context (`git://HOST/repo.git#REF:DIR`) is cloned at REF and DIR is the context, as
/// the docker CLI's classic build does; the refusals read as Docker 20.10's (checked against
/// it on the same repository).
#[test]
fn a_git_url_context_is_cloned_at_its_ref_and_directory() {
    if !common::prerequisite(
        common::dockerd::have("git"),
        "git is missing (apt-get install git)",
    ) {
        return;
    }
    let Some(env) = Env::new() else { return };
    let base = tempfile::Builder::new()
        .prefix("minidock-build-git")
        .tempdir()
        .unwrap();
    let repo = base.path().join("repo.git");
    fs::create_dir_all(repo.join("app")).unwrap();
    git(&repo, &["init", "-q", "-b", "main", "."]);
    fs::write(
        repo.join("app/Dockerfile"),
        "FROM busybox\nCOPY hello.txt /hello.txt\n",
    )
    .unwrap();
    fs::write(repo.join("app/hello.txt"), "from main\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "main"]);
    git(&repo, &["checkout", "-q", "-b", "other"]);
    fs::write(repo.join("app/hello.txt"), "from other\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "other"]);
    let daemon = GitDaemon::start(base.path());
    let url = format!("git://127.0.0.1:{}/repo.git", daemon.port);
    for (fragment, want) in [("#main:app", "from main\n"), ("#other:app", "from other\n")] {
        let context = format!("{url}{fragment}");
        env.ok(&["build", "-q", "-t", "from-git", &context]);
        assert_eq!(env.run("from-git", &["cat", "/hello.txt"]), want);
    }
    let prefix = "minidock: unable to prepare context: unable to 'git clone' to temporary \
                  context directory: ";
    for (fragment, message) in [
        ("#-x", "invalid refspec: -x\n".to_owned()),
        // Docker's text, git's newline escaped: an error is one line.
        (
            "#nosuch",
            "error fetching: fatal: couldn't find remote ref nosuch\\n: exit status 128\n".into(),
        ),
    ] {
        let out = env.output(&["build", &format!("{url}{fragment}")]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert_eq!(text(&out.stderr), format!("{prefix}{message}"));
    }
    for (fragment, tail) in [
        (
            "#main:app/Dockerfile",
            "error setting git context, not a directory: ",
        ),
        ("#main:nodir", "stat "),
    ] {
        let out = env.output(&["build", &format!("{url}{fragment}")]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with(&format!("{prefix}{tail}")), "{stderr}");
    }
    // The clones are gone with their builds.
    let tmp = env.root.path().join("tmp");
    let left: Vec<_> = fs::read_dir(&tmp).map(|d| d.collect()).unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// A cached rebuild reads no unchanged file: the hash of what `COPY` copies is kept under
/// the files' stat data (inode, size, modification and change times) once they are over a
/// second old. A file rewritten with the same size and its old modification time has a new
/// change time (the kernel's clock sets it; nothing sets it back), so the step misses.
#[test]
fn copy_hashes_are_kept_by_stat_data_and_a_rewritten_file_still_misses() {
    let Some(env) = Env::new() else { return };
    env.write("Dockerfile", "FROM busybox\nCOPY a.txt /a.txt\n", 0o644);
    env.write("a.txt", "one\n", 0o644);
    let first = env.build(&["-t", "sums"]);
    assert!(!first.contains("Using cache"), "{first}");
    let sums = env.root.path().join("images/build-cache/sums");
    let count = || fs::read_dir(&sums).map_or(0, |d| d.count());
    // The change time is the kernel's clock: only waiting makes the file old enough to be
    // trusted (over a second).
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let second = env.build(&["-t", "sums"]);
    assert_eq!(second.matches(" ---> Using cache\n").count(), 1, "{second}");
    assert_eq!(built_id(&second), built_id(&first));
    // The kept hash is the one the step's history names.
    assert_eq!(count(), 1);
    let entry = fs::read_dir(&sums).unwrap().next().unwrap().unwrap();
    let sum = fs::read_to_string(entry.path()).unwrap();
    let history = env.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "sums",
    ]);
    let copy = format!("/bin/sh -c #(nop) COPY file:{sum} in /a.txt ");
    assert_eq!(history.lines().next(), Some(copy.as_str()), "{history}");
    let third = env.build(&["-t", "sums"]);
    assert_eq!(third.matches(" ---> Using cache\n").count(), 1, "{third}");

    // Same size, the old modification time put back: the change time still differs.
    let path = env.ctx().join("a.txt");
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    fs::write(&path, "two\n").unwrap();
    let file = fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(mtime).unwrap();
    drop(file);
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    let changed = env.build(&["-t", "sums"]);
    assert!(!changed.contains("Using cache"), "{changed}");
    assert_eq!(env.run("sums", &["cat", "/a.txt"]), "two\n");
    env.assert_no_containers();
}

/// A cache entry whose image was removed is a miss: the step runs again.
#[test]
fn a_removed_images_cache_entries_miss() {
    let Some(env) = Env::new() else { return };
    env.write(
        "Dockerfile",
        "FROM busybox\nENV A=1\nRUN echo 1 > /one\n",
        0o644,
    );
    env.build(&["-t", "gone"]);
    let again = env.build(&["-t", "gone"]);
    assert_eq!(again.matches(" ---> Using cache\n").count(), 2, "{again}");
    let out = env.ok(&["rmi", "gone"]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("Deleted: ")).count(),
        2,
        "{out}"
    );
    let rebuilt = env.build(&["-t", "gone"]);
    assert!(!rebuilt.contains("Using cache"), "{rebuilt}");
    assert!(rebuilt.contains("Running in"), "{rebuilt}");
    assert_eq!(env.run("gone", &["cat", "/one"]), "1\n");
    env.assert_no_containers();
}

#[test]
fn a_source_climbing_out_of_the_context_is_forbidden_as_by_docker() {
    let Some(env) = Env::new() else { return };
    env.write("a/y", "y\n", 0o644);
    env.write("x", "x\n", 0o644);
    // What the classic builder prints for each: one leading `/`, then `./`, dropped.
    for (source, shown) in [
        ("../outside", "../outside"),
        ("a/../../x", "a/../../x"),
        ("./../x", "../x"),
        ("/../x", "../x"),
        ("..", ".."),
    ] {
        env.write(
            "Dockerfile",
            &format!("FROM busybox\nCOPY {source} /d/\n"),
            0o644,
        );
        let out = env.output(&["build", "-q", env.ctx().to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{source}: {out:?}");
        let wanted = format!("COPY failed: forbidden path outside the build context: {shown} ()");
        assert!(text(&out.stderr).contains(&wanted), "{source}: {out:?}");
    }
    env.write("Dockerfile", "FROM busybox\nCOPY a/../x /d/\n", 0o644);
    let id = built_id(&env.build(&[]));
    assert_eq!(env.run(&id, &["cat", "/d/x"]), "x\n");
}
