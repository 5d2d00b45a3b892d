//! `minidock commit`, `import URL`, and a pull-then-run round trip, against a busybox image
//! imported into a temp root per test (and the real CNCF registry for the pull).
//!
//! Each test removes its containers with `rm -f` and checks that no mount under its root is
//! left.

mod common;

use assert_cmd::prelude::*;
use common::{have, require_busybox_overlay, text};
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A busybox root filesystem as a tar (scripts/busybox-rootfs).
fn busybox_tar() -> Vec<u8> {
    let rootfs = common::busybox_rootfs();
    let out = Command::new("tar")
        .arg("-C")
        .arg(rootfs.path())
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

/// A temp state root; on drop, its containers are removed and no mount under it may remain.
struct Env {
    root: tempfile::TempDir,
    containers: Vec<String>,
}

impl Env {
    fn new() -> Env {
        Env {
            root: tempfile::Builder::new()
                .prefix("minidock-commit")
                .tempdir()
                .unwrap(),
            containers: Vec::new(),
        }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    fn output(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::cargo_bin("minidock").unwrap();
        cmd.arg("--root").arg(self.root()).args(args);
        let Some(input) = stdin else {
            return cmd.stdin(Stdio::null()).output().unwrap();
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs and asserts success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        common::ok_stdout(args, &self.output(args, None))
    }

    /// Runs and asserts failure; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        common::failed_stderr(args, &self.output(args, None))
    }

    /// `import - NAME` of a busybox rootfs; returns the image ID.
    fn import_busybox(&self, name: &str) -> String {
        let out = self.output(&["import", "-", name], Some(&busybox_tar()));
        assert!(out.status.success(), "import: {}", text(&out.stderr));
        let id = text(&out.stdout).trim().to_owned();
        assert!(id.starts_with("sha256:"), "{id}");
        id
    }

    /// A container name unique to this test run, removed on drop.
    fn container(&mut self, prefix: &str) -> String {
        let name = format!("{prefix}-{}", std::process::id());
        self.containers.push(name.clone());
        name
    }

    fn inspect_image(&self, image: &str) -> serde_json::Value {
        let out = self.ok(&["image", "inspect", image]);
        let all: serde_json::Value = serde_json::from_str(&out).unwrap();
        all[0].clone()
    }

    fn image_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .ok(&["images", "-q", "--no-trunc"])
            .lines()
            .map(str::to_owned)
            .collect();
        ids.sort();
        ids
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for name in &self.containers {
            let _ = self.output(&["rm", "-f", name], None);
        }
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

/// The entries of the last layer of `image`, read from a `docker save` archive of it.
fn last_layer_entries(archive: &Path) -> Vec<String> {
    let mut files = std::collections::HashMap::new();
    let mut outer = tar::Archive::new(fs::File::open(archive).unwrap());
    for entry in outer.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        files.insert(path, bytes);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let layers = manifest[0]["Layers"].as_array().unwrap();
    let last = layers.last().unwrap().as_str().unwrap();
    let blob = &files[last];
    // The layer may be stored plain or gzip in the archive.
    let tar_bytes = if blob.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&blob[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        blob.clone()
    };
    let mut layer = tar::Archive::new(&tar_bytes[..]);
    let mut names: Vec<String> = layer
        .entries()
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_owned()
        })
        .collect();
    names.sort();
    names
}

// ------------------------------------------------------------------------------------------
// commit
// ------------------------------------------------------------------------------------------

#[test]
fn a_committed_container_runs_with_its_changes_its_deletions_and_the_new_cmd() {
    if !require_busybox_overlay() {
        return;
    }
    let mut env = Env::new();
    let base = env.import_busybox("busybox");
    let name = env.container("commit-src");
    env.ok(&[
        "run",
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "echo hello-from-commit > /hello && rm /etc/passwd",
    ]);
    let id = env
        .ok(&[
            "commit",
            "-m",
            "added hello",
            "-a",
            "Ada <ada@example.com>",
            "-c",
            r#"CMD ["cat","/hello"]"#,
            &name,
            "committed:v1",
        ])
        .trim()
        .to_owned();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_ne!(id, base);

    // The default CMD applies, and the new file is there.
    let out = env.ok(&["run", "--rm", "committed:v1"]);
    assert_eq!(out, "hello-from-commit\n");
    // The whiteout hides the deleted file; the base's other files are still there.
    let out = env.ok(&[
        "run",
        "--rm",
        "committed:v1",
        "sh",
        "-c",
        "test -e /etc/passwd && echo passwd-present; test -e /etc/group && echo group-present",
    ]);
    assert_eq!(out, "group-present\n");
    // The base image is untouched.
    let out = env.ok(&["run", "--rm", "busybox", "cat", "/etc/passwd"]);
    assert!(out.contains("root:"), "{out}");

    // history: the new entry on top, with its message and the container's command.
    let history = env.ok(&["history", "--no-trunc", "committed:v1"]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 3, "{history}");
    assert!(lines[1].starts_with(&id), "{history}");
    assert!(lines[1].contains("added hello"), "{history}");
    assert!(lines[1].contains("echo hello-from-commit"), "{history}");

    // inspect: two layers, the base's first; the author and the CMD are in the config.
    let committed = env.inspect_image("committed:v1");
    let base_inspect = env.inspect_image("busybox");
    let layers = committed["RootFS"]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "{committed}");
    assert_eq!(layers[0], base_inspect["RootFS"]["Layers"][0]);
    assert_eq!(committed["Author"], "Ada <ada@example.com>");
    assert_eq!(
        committed["Config"]["Cmd"],
        serde_json::json!(["cat", "/hello"])
    );

    // The layer holds exactly the container's changes: not the mount points the runtime
    // made for /etc/hosts and /etc/resolv.conf (the busybox rootfs has neither).
    let archive = env.root().join("committed.tar");
    env.ok(&["save", "-o", archive.to_str().unwrap(), "committed:v1"]);
    assert_eq!(
        last_layer_entries(&archive),
        ["etc", "etc/.wh.passwd", "hello"],
        "the committed layer"
    );

    // skopeo, the interop peer, reads the saved archive.
    if common::prerequisite(
        have("skopeo", "--version"),
        "skopeo is not installed (apt-get install skopeo)",
    ) {
        let out = Command::new("skopeo")
            .arg("inspect")
            .arg(format!("docker-archive:{}", archive.display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "skopeo: {}", text(&out.stderr));
        let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(seen["Layers"].as_array().unwrap().len(), 2, "{seen}");
    }
}

#[test]
fn a_running_container_commits_and_a_bad_change_stores_nothing() {
    if !require_busybox_overlay() {
        return;
    }
    let mut env = Env::new();
    env.import_busybox("busybox");
    let name = env.container("commit-live");
    env.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "echo live > /live && exec sleep 300",
    ]);
    // Wait for the file to be written.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = env.output(&["exec", &name, "cat", "/live"], None);
        if out.status.success() && text(&out.stdout) == "live\n" {
            break;
        }
        assert!(Instant::now() < deadline, "the container never wrote /live");
        std::thread::sleep(Duration::from_millis(50));
    }

    let before = env.image_ids();
    let err = env.fails(&["commit", "-c", "RUN rm -rf /", &name, "bad:v1"]);
    assert!(err.contains("invalid --change"), "{err}");
    assert_eq!(env.image_ids(), before, "a refused commit stored an image");
    let err = env.fails(&["commit", "no-such-container-xyz", "bad:v1"]);
    assert!(err.contains("no such container"), "{err}");

    // Untagged: listed by ID only; it runs, with the file.
    let id = env.ok(&["commit", &name]).trim().to_owned();
    assert!(env.image_ids().contains(&id), "{id}");
    let out = env.ok(&["run", "--rm", &id, "cat", "/live"]);
    assert_eq!(out, "live\n");
}

/// Waits until `path` exists in container `name`.
fn wait_for_file(env: &Env, name: &str, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !env
        .output(&["exec", name, "test", "-e", path], None)
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "the container never made {path}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The freezer writes `strace` saw `minidock ARGS` make: `(file, value)` pairs for writes to
/// `freezer.state` (v1) or `cgroup.freeze` (v2).
fn freezer_writes(env: &Env, args: &[&str]) -> Vec<(String, String)> {
    let log = env
        .root()
        .join(format!("strace-{}.log", std::process::id()));
    let status = Command::new("strace")
        .args(["-f", "-qq", "-y", "-s", "16", "-e", "trace=write", "-o"])
        .arg(&log)
        .arg(assert_cmd::cargo::cargo_bin("minidock"))
        .arg("--root")
        .arg(env.root())
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "minidock {args:?} under strace failed");
    let trace = fs::read_to_string(&log).unwrap();
    fs::remove_file(&log).unwrap();
    trace
        .lines()
        .filter_map(|line| {
            let file = ["freezer.state>", "cgroup.freeze>"]
                .into_iter()
                .find(|f| line.contains(f))?;
            let value = line.split(", \"").nth(1)?.split('"').next()?;
            Some((file.trim_end_matches('>').to_owned(), value.to_owned()))
        })
        .collect()
}

#[test]
fn commit_starts_from_the_containers_config_and_merges_the_changes_over_it() {
    if !require_busybox_overlay() {
        return;
    }
    let mut env = Env::new();
    // An image with a config of its own: what the container inherits must reach the commit.
    let out = env.output(
        &[
            "import",
            "-c",
            "ENV B=img",
            "-c",
            "LABEL team=infra",
            "-c",
            "EXPOSE 80",
            "-c",
            "VOLUME /data",
            "-c",
            "STOPSIGNAL SIGUSR1",
            "-",
            "configured",
        ],
        Some(&busybox_tar()),
    );
    assert!(out.status.success(), "import: {}", text(&out.stderr));
    let name = env.container("commit-config");
    // The first run leaves /tmp/quick and sleeps; a run of the commit finds it and ends.
    env.ok(&[
        "run",
        "-d",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "--name",
        &name,
        "configured",
        "sh",
        "-c",
        "pwd; echo A=$A B=$B; test -e /tmp/quick || { touch /tmp/quick; exec sleep 300; }",
    ]);
    wait_for_file(&env, &name, "/tmp/quick");
    env.ok(&["commit", &name, "ccimg:v1"]);
    // The container's command, environment, working directory and user.
    assert_eq!(env.ok(&["run", "--rm", "ccimg:v1"]), "/tmp\nA=1 B=img\n");
    assert_eq!(env.ok(&["run", "--rm", "ccimg:v1", "id", "-u"]), "65534\n");
    let config = &env.inspect_image("ccimg:v1")["Config"];
    let env_list = config["Env"].as_array().unwrap();
    assert!(env_list.contains(&"A=1".into()), "{config}");
    assert!(env_list.contains(&"B=img".into()), "{config}");
    assert_eq!(config["WorkingDir"], "/tmp", "{config}");
    assert_eq!(config["User"], "nobody", "{config}");
    assert_eq!(config["Cmd"][0], "sh", "{config}");
    assert_eq!(
        config["Labels"],
        serde_json::json!({"team": "infra"}),
        "{config}"
    );
    assert_eq!(
        config["ExposedPorts"],
        serde_json::json!({"80/tcp": {}}),
        "{config}"
    );
    assert_eq!(
        config["Volumes"],
        serde_json::json!({"/data": {}}),
        "{config}"
    );
    assert_eq!(config["StopSignal"], "SIGUSR1", "{config}");

    // --change over it: ENV adds to the container's, ENTRYPOINT drops the Cmd (no CMD among
    // the changes), LABEL adds to the image's.
    env.ok(&[
        "commit",
        "-c",
        "ENV C=3",
        "-c",
        r#"ENTRYPOINT ["echo"]"#,
        "-c",
        "LABEL tier=web",
        &name,
        "ccimg:v2",
    ]);
    let config = &env.inspect_image("ccimg:v2")["Config"];
    assert_eq!(config["Cmd"], serde_json::Value::Null, "{config}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["echo"]),
        "{config}"
    );
    assert_eq!(
        config["Labels"],
        serde_json::json!({"team": "infra", "tier": "web"}),
        "{config}"
    );
    assert_eq!(env.ok(&["run", "--rm", "ccimg:v2", "hi"]), "hi\n");
    let out = env.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        "ccimg:v2",
        "-c",
        "echo $A$B$C; pwd",
    ]);
    assert_eq!(out, "1img3\n/tmp\n");
    // CMD then ENTRYPOINT keeps the CMD.
    env.ok(&[
        "commit",
        "-c",
        r#"CMD ["hello"]"#,
        "-c",
        r#"ENTRYPOINT ["echo"]"#,
        &name,
        "ccimg:v3",
    ]);
    assert_eq!(env.ok(&["run", "--rm", "ccimg:v3"]), "hello\n");
}

#[test]
fn commit_pauses_a_running_container_and_thaws_it() {
    if !require_busybox_overlay()
        || !common::prerequisite(
            have("strace", "-V"),
            "strace is not installed (apt-get install strace)",
        )
    {
        return;
    }
    let mut env = Env::new();
    env.import_busybox("busybox");
    let name = env.container("commit-pause");
    env.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "touch /up; exec sleep 300",
    ]);
    wait_for_file(&env, &name, "/up");
    // By default (and with -p / --pause=true) the container is frozen, then thawed.
    for args in [
        vec!["commit"],
        vec!["commit", "-p"],
        vec!["commit", "--pause=true"],
    ] {
        let writes = freezer_writes(&env, &[args.as_slice(), &[name.as_str()]].concat());
        let values: Vec<&str> = writes.iter().map(|(_, v)| v.as_str()).collect();
        assert!(
            values.first().is_some_and(|v| *v == "FROZEN" || *v == "1"),
            "{args:?}: {writes:?}"
        );
        assert!(
            values.last().is_some_and(|v| *v == "THAWED" || *v == "0"),
            "{args:?}: {writes:?}"
        );
    }
    // The container runs on, thawed.
    let id = env
        .ok(&["inspect", "-f", "{{.Id}}", &name])
        .trim()
        .to_owned();
    let freezer = ["/sys/fs/cgroup/freezer/minidock", "/sys/fs/cgroup/minidock"]
        .iter()
        .map(|parent| Path::new(parent).join(&id))
        .find(|dir| dir.exists())
        .expect("the container's freezer directory");
    let state = fs::read_to_string(freezer.join("freezer.state"))
        .or_else(|_| fs::read_to_string(freezer.join("cgroup.freeze")))
        .unwrap();
    assert!(matches!(state.trim(), "THAWED" | "0"), "{state}");
    assert_eq!(env.ok(&["exec", &name, "echo", "runs"]), "runs\n");
    // --pause=false leaves the freezer alone.
    let writes = freezer_writes(&env, &["commit", "--pause=false", &name]);
    assert_eq!(writes, Vec::<(String, String)>::new());
}

// ------------------------------------------------------------------------------------------
// import URL
// ------------------------------------------------------------------------------------------

/// Serves `body` on 127.0.0.1 for `requests` requests (404 for any path but `/rootfs.tar`),
/// then stops. Returns the base URL.
fn serve(body: Vec<u8>, requests: usize) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        for _ in 0..requests {
            let (mut stream, _) = listener.accept().unwrap();
            let path = read_request_path(&mut stream);
            let response = if path == "/rootfs.tar" {
                let mut head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                head.extend_from_slice(&body);
                head
            } else {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
            };
            let _ = stream.write_all(&response);
        }
    });
    (base, handle)
}

fn read_request_path(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let head = text(&head);
    head.split_whitespace().nth(1).unwrap_or("").to_owned()
}

#[test]
fn import_reads_a_rootfs_from_an_http_url() {
    if !require_busybox_overlay() {
        return;
    }
    let env = Env::new();
    let (base, server) = serve(busybox_tar(), 2);

    let err = env.fails(&["import", &format!("{base}/missing.tar"), "fromurl:bad"]);
    assert!(err.contains("404"), "{err}");

    let url = format!("{base}/rootfs.tar");
    let id = env.ok(&["import", &url, "fromurl:v1"]).trim().to_owned();
    server.join().unwrap();
    assert!(id.starts_with("sha256:"), "{id}");
    let history = env.ok(&["history", "--no-trunc", "fromurl:v1"]);
    assert!(
        history.contains(&format!("Imported from {url}")),
        "{history}"
    );
    let out = env.ok(&["run", "--rm", "fromurl:v1", "echo", "from-url"]);
    assert_eq!(out, "from-url\n");
}

// ------------------------------------------------------------------------------------------
// pull, then run
// ------------------------------------------------------------------------------------------

/// A `docker-registry serve` on 127.0.0.1:<free port>, storage in a temp dir; killed on drop.
struct Registry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Option<Registry> {
        if !common::prerequisite(
            have("docker-registry", "--version"),
            "docker-registry is not installed (apt-get install docker-registry)",
        ) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("minidock-commit-registry")
            .tempdir()
            .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut registry = Registry {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&registry.addr).is_err() {
            if let Ok(Some(status)) = registry.child.try_wait() {
                panic!("docker-registry exited ({status})");
            }
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(registry)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_image_pushed_then_pulled_into_an_empty_store_runs() {
    if !require_busybox_overlay() {
        return;
    }
    let Some(registry) = Registry::start() else {
        return;
    };
    let name = format!("{}/commit-test/busybox:1", registry.addr);
    let source = Env::new();
    let id = source.import_busybox(&name);
    source.ok(&["push", &name]);

    let target = Env::new();
    assert!(target.image_ids().is_empty());
    target.ok(&["pull", &name]);
    assert_eq!(target.image_ids(), [id]);
    let out = target.ok(&["run", "--rm", &name, "sh", "-c", "echo pulled-and-ran"]);
    assert_eq!(out, "pulled-and-ran\n");
}
