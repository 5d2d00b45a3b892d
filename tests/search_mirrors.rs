//! `minidock search`, registry mirrors and insecure registries, against real components: the
//! CNCF distribution registry (`docker-registry serve`) playing Docker Hub, another one
//! configured as its pull-through mirror (`proxy.remoteurl`), registries on a dummy
//! interface's address with and without TLS, and the docker CLI through a private dockerd for
//! `search`'s output. Registries run inside private network namespaces (or on loopback), so
//! no traffic leaves the machine; a pull that falls back to Docker Hub fails there at once.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use common::registry::Registry;
use minidock::net::netns;
use serde_json::json;

/// A private state root, client config dir and `daemon.json` (`MINIDOCK_DAEMON_CONFIG`) for
/// minidock; with `netns`, minidock runs inside that network namespace (through nsenter).
struct Env {
    root: tempfile::TempDir,
    config: tempfile::TempDir,
    netns: Option<PathBuf>,
}

impl Env {
    fn new() -> Env {
        let temp = |prefix: &str| tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
        Env {
            root: temp("minidock-sm-root"),
            config: temp("minidock-sm-config"),
            netns: None,
        }
    }

    fn daemon_json_path(&self) -> PathBuf {
        self.config.path().join("daemon.json")
    }

    fn set_daemon_json(&self, value: serde_json::Value) {
        fs::write(self.daemon_json_path(), value.to_string()).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        let binary = env!("CARGO_BIN_EXE_minidock");
        let mut command = match &self.netns {
            Some(netns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", netns.display())).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        command
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .env("MINIDOCK_CONFIG", self.config.path())
            .env("MINIDOCK_DAEMON_CONFIG", self.daemon_json_path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        common::ok_stdout(args, &self.run(args))
    }

    /// Runs minidock, insisting on exit status `code`; returns stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "minidock {args:?}: {}\n{}",
            common::text(&out.stderr),
            common::text(&out.stdout)
        );
        common::text(&out.stderr)
    }

    /// Imports a one-file image as `name`; returns its ID.
    fn import_tiny(&self, name: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("rootfs")).unwrap();
        fs::write(dir.path().join("rootfs/hello"), format!("{name}\n")).unwrap();
        let tar = dir.path().join("layer.tar");
        common::tar_dir(&dir.path().join("rootfs"), &tar);
        self.ok(&["import", tar.to_str().unwrap(), name])
            .trim()
            .to_owned()
    }

    fn image_id(&self, name: &str) -> String {
        self.ok(&["image", "inspect", "--format", "{{.Id}}", name])
            .trim()
            .to_owned()
    }
}

/// Runs `f` inside a private network namespace with only `lo` (root needed).
fn in_private_netns(f: impl FnOnce() + Send) {
    netns::isolated(|| {
        f();
        Ok(())
    })
    .expect("a private network namespace");
}

/// A loopback port nothing listens on.
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn position(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} is not in:\n{haystack}"))
}

// ------------------------------------------------------------------------------------------
// Mirrors
// ------------------------------------------------------------------------------------------

#[test]
fn a_docker_hub_pull_tries_each_mirror_in_order_and_comes_through_the_pull_through_one() {
    if !common::require_root() {
        return;
    }
    in_private_netns(|| {
        let Some(hub) = Registry::start(None) else {
            return;
        };
        let proxy = format!("proxy:\n  remoteurl: http://{}\n", hub.addr);
        let Some(mirror) = Registry::start_with("127.0.0.1", &proxy) else {
            return;
        };
        let Some(empty) = Registry::start(None) else {
            return;
        };
        let source = Env::new();
        let id = source.import_tiny(&hub.name("library/tiny:1"));
        source.ok(&["push", "-q", &hub.name("library/tiny:1")]);

        let target = Env::new();
        let dead = format!("http://127.0.0.1:{}", dead_port());
        let empty_url = format!("http://{}", empty.addr);
        let mirror_url = format!("http://{}/", mirror.addr);
        target.set_daemon_json(json!({
            "registry-mirrors": [dead, empty_url, mirror_url],
            "debug": true
        }));
        assert!(
            !mirror.catalog().contains(&"library/tiny".to_owned()),
            "the mirror starts empty"
        );
        let out = target.run(&["--explain", "pull", "tiny:1"]);
        let (stdout, trace) = (common::text(&out.stdout), common::text(&out.stderr));
        assert!(out.status.success(), "pull failed: {trace}\n{stdout}");
        assert!(
            stdout.contains("Status: Downloaded newer image for tiny:1"),
            "{stdout}"
        );
        assert_eq!(stdout.lines().last(), Some("docker.io/library/tiny:1"));
        assert_eq!(target.image_id("tiny:1"), id);

        // The dead mirror first, then the one without the image (404), then the proxy; never
        // Docker Hub itself.
        let manifest = "/v2/library/tiny/manifests/1";
        let tried_dead = position(&trace, &format!("GET {dead}/v2/"));
        let tried_empty = position(&trace, &format!("GET {empty_url}{manifest}"));
        let tried_mirror = position(&trace, &format!("GET http://{}{manifest}", mirror.addr));
        assert!(
            tried_dead < tried_empty && tried_empty < tried_mirror,
            "{trace}"
        );
        assert!(!trace.contains("registry-1.docker.io"), "{trace}");
        assert!(
            empty
                .log()
                .contains(&format!("\"GET {manifest} HTTP/1.1\" 404")),
            "the empty mirror answered 404: {}",
            empty.log()
        );
        // The pull-through mirror fetched the image from "Docker Hub" and keeps it.
        assert!(
            mirror.catalog().contains(&"library/tiny".to_owned()),
            "{:?}",
            mirror.catalog()
        );

        // A name on another registry never goes to the mirrors.
        let out = target.run(&["--explain", "pull", &hub.name("library/tiny:1")]);
        let trace = common::text(&out.stderr);
        assert!(out.status.success(), "{trace}");
        assert!(!trace.contains(&dead), "{trace}");

        // info lists the mirrors (normalised with one trailing slash), as docker info does.
        let info = target.ok(&["info"]);
        assert!(
            info.contains(&format!(
                " Registry Mirrors:\n  {dead}/\n  {empty_url}/\n  {mirror_url}\n"
            )),
            "{info}"
        );
    });
}

#[test]
fn when_every_mirror_fails_the_pull_falls_back_to_docker_hub() {
    if !common::require_root() {
        return;
    }
    in_private_netns(|| {
        let target = Env::new();
        let dead = format!("http://127.0.0.1:{}", dead_port());
        target.set_daemon_json(json!({ "registry-mirrors": [dead] }));
        let out = target.run(&["--explain", "pull", "busybox"]);
        let trace = common::text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{trace}");
        // The mirror was asked first; then Docker Hub, unreachable from this namespace.
        let tried_mirror = position(&trace, &format!("GET {dead}/v2/"));
        let tried_hub = position(&trace, "GET https://registry-1.docker.io/v2/");
        assert!(tried_mirror < tried_hub, "{trace}");
        let last = trace.lines().last().unwrap();
        assert!(
            last.starts_with("minidock: cannot reach registry docker.io over HTTPS"),
            "{last}"
        );

        // search never goes to the mirrors: a bare term asks Docker Hub's search API, which
        // is unreachable here; one line, exit 1.
        let err = target.fails(&["search", "busybox"], 1);
        assert!(
            err.starts_with(
                "minidock: searching Docker Hub: GET https://index.docker.io/v1/search?q=busybox&n=25: "
            ) && err.lines().count() == 1,
            "{err}"
        );
        // is-automated=true matches nothing, so nothing is asked (with the CLI's warning).
        let out = target.run(&["search", "-f", "is-automated=true", "busybox"]);
        assert!(out.status.success(), "{}", common::text(&out.stderr));
        assert_eq!(common::text(&out.stdout), table(&[]));
        assert!(
            common::text(&out.stderr)
                .starts_with("WARNING: the \"is-automated\" filter is deprecated"),
            "{}",
            common::text(&out.stderr)
        );

        // A mirror that is not an http(s) URL is refused as dockerd refuses it.
        target.set_daemon_json(json!({ "registry-mirrors": ["ftp://127.0.0.1:1"] }));
        let err = target.fails(&["pull", "busybox"], 125);
        assert!(
            err.contains(r#"invalid mirror: unsupported scheme "ftp" in "ftp://127.0.0.1:1""#),
            "{err}"
        );
    });
}

// ------------------------------------------------------------------------------------------
// Insecure registries
// ------------------------------------------------------------------------------------------

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(out.status.success(), "ip {args:?}: {out:?}");
}

#[test]
fn insecure_registries_allow_plain_http_and_unverified_tls_by_network_or_by_name() {
    if !common::require_root() {
        return;
    }
    in_private_netns(|| {
        // A non-loopback address, on this namespace's own `lo`.
        ip(&["addr", "add", "10.99.0.1/32", "dev", "lo"]);
        let Some(tls) = Registry::start_tls("10.99.0.1") else {
            return;
        };
        let Some(plain) = Registry::start_with("10.99.0.1", "") else {
            return;
        };
        let env = Env::new();
        env.import_tiny("tiny:1");
        let tls_name = tls.name("t/tiny:1");
        let plain_name = plain.name("p/tiny:1");
        env.ok(&["tag", "tiny:1", &tls_name]);
        env.ok(&["tag", "tiny:1", &plain_name]);

        // Secure by default: the self-signed certificate is refused, plain HTTP never tried.
        let err = env.fails(&["push", &tls_name], 1);
        assert!(
            err.contains(&format!("cannot reach registry {} over HTTPS", tls.addr)),
            "{err}"
        );
        assert!(err.contains("invalid peer certificate"), "{err}");
        let err = env.fails(&["push", &plain_name], 1);
        assert!(
            err.contains("plain HTTP is only used for loopback and insecure registries: --insecure-registry, or insecure-registries in daemon.json"),
            "{err}"
        );

        // A network: both registries, TLS without verification and plain HTTP.
        env.set_daemon_json(json!({ "insecure-registries": ["10.99.0.0/24"] }));
        env.ok(&["push", "-q", &tls_name]);
        env.ok(&["push", "-q", &plain_name]);
        assert_eq!(plain.catalog(), ["p/tiny"]);
        let other = Env::new();
        other.set_daemon_json(json!({ "insecure-registries": ["10.99.0.0/24"] }));
        other.ok(&["pull", "-q", &tls_name]);
        assert_eq!(other.image_id(&tls_name), env.image_id("tiny:1"));
        let info = other.ok(&["info"]);
        assert!(
            info.contains(" Insecure Registries:\n  10.99.0.0/24\n  127.0.0.0/8\n  ::1/128\n"),
            "{info}"
        );

        // A name: that host:port only.
        env.set_daemon_json(json!({ "insecure-registries": [plain.addr] }));
        env.ok(&["push", "-q", &plain_name]);
        let err = env.fails(&["push", &tls_name], 1);
        assert!(err.contains("invalid peer certificate"), "{err}");
    });
}

// ------------------------------------------------------------------------------------------
// search
// ------------------------------------------------------------------------------------------

/// A fake registry on `listener`: `/v1/search` answers `results` (at most `n` of them), or
/// 404 without; `/v2/_catalog` lists `catalog` two at a time, each page linking the next;
/// anything else answers 200 `{}`. Returns the request targets it saw.
fn fake_registry(
    listener: TcpListener,
    results: Option<serde_json::Value>,
    catalog: Vec<String>,
) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = answer(stream, results.as_ref(), &catalog, &log);
        }
    });
    seen
}

fn answer(
    mut stream: TcpStream,
    results: Option<&serde_json::Value>,
    catalog: &[String],
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let target = request.split(' ').nth(1).unwrap_or("").to_owned();
    log.lock().unwrap().push(target.clone());
    let query = |key: &str| {
        target
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
    };
    let (status, body, link) = if target.starts_with("/v1/search") {
        match results {
            Some(results) => {
                let n: usize = query("n").and_then(|n| n.parse().ok()).unwrap_or(25);
                let all = results.as_array().unwrap();
                let some: Vec<_> = all.iter().take(n).cloned().collect();
                let body = json!({"num_results": all.len(), "query": query("q"), "results": some});
                ("200 OK", body.to_string(), String::new())
            }
            None => (
                "404 Not Found",
                "404 page not found\n".to_owned(),
                String::new(),
            ),
        }
    } else if target.starts_with("/v2/_catalog") {
        let page: usize = query("page").and_then(|p| p.parse().ok()).unwrap_or(0);
        let items: Vec<_> = catalog.iter().skip(page * 2).take(2).collect();
        let link = if (page + 1) * 2 < catalog.len() {
            format!(
                "Link: </v2/_catalog?n=2&page={}>; rel=\"next\"\r\n",
                page + 1
            )
        } else {
            String::new()
        };
        ("200 OK", json!({ "repositories": items }).to_string(), link)
    } else {
        ("200 OK", "{}".to_owned(), String::new())
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{link}\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// Docker's search table for rows of (name, description, stars, official), laid out as
/// docker/cli's tabwriter does (minimum width 10, padding 3).
fn table(rows: &[(&str, &str, &str, &str)]) -> String {
    let mut all = vec![["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]];
    all.extend(rows.iter().map(|r| [r.0, r.1, r.2, r.3]));
    let width = |i: usize| {
        all.iter()
            .map(|r| r[i].chars().count() + 3)
            .max()
            .unwrap()
            .max(10)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    all.iter()
        .map(|r| format!("{:<w0$}{:<w1$}{:<w2$}{}\n", r[0], r[1], r[2], r[3]))
        .collect()
}

#[test]
fn search_of_a_registry_lists_its_catalog_in_dockers_columns() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let env = Env::new();
    env.import_tiny("tiny:1");
    for repo in ["library/tiny", "alpha/tinybox", "beta/other"] {
        let name = registry.name(&format!("{repo}:1"));
        env.ok(&["tag", "tiny:1", &name]);
        env.ok(&["push", "-q", &name]);
    }
    let alpha = registry.name("alpha/tinybox");
    let library = registry.name("library/tiny");
    let term = registry.name("tiny");
    assert_eq!(
        env.ok(&["search", &term]),
        table(&[(&alpha, "", "0", ""), (&library, "", "0", "")])
    );
    // The limit counts results before the filters, as dockerd's does.
    assert_eq!(
        env.ok(&["search", "--limit", "1", &term]),
        table(&[(&alpha, "", "0", "")])
    );
    assert_eq!(
        env.ok(&["search", "--filter", "is-official=true", &term]),
        table(&[])
    );
    assert_eq!(
        env.ok(&["search", "-f", "is-official=false", "-f", "stars=0", &term]),
        table(&[(&alpha, "", "0", ""), (&library, "", "0", "")])
    );
    assert_eq!(env.ok(&["search", "-f", "stars=1", &term]), table(&[]));
    assert_eq!(
        env.ok(&[
            "search",
            "--format",
            "{{.Name}}|{{.StarCount}}",
            &registry.name("")
        ]),
        format!(
            "{alpha}|0\n{}|0\n{library}|0\n",
            registry.name("beta/other")
        )
    );

    // Errors: dockerd's words and the docker CLI's exit codes.
    let err = env.fails(&["search", "-f", "foo=1", &term], 1);
    assert_eq!(err, "minidock: Invalid filter 'foo'\n");
    let err = env.fails(&["search", "--limit", "101", &term], 1);
    assert_eq!(
        err,
        "minidock: Limit 101 is outside the range of [1, 100]\n"
    );
    let err = env.fails(&["search", "-f", "nonsense", &term], 125);
    assert!(
        err.contains("bad format of filter (expected name=value)"),
        "{err}"
    );
    let err = env.fails(&["search", "http://x/y"], 1);
    assert!(err.contains("should not have a scheme"), "{err}");
    env.fails(&["search"], 1);
}

#[test]
fn search_follows_the_catalogs_link_headers() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let repos: Vec<String> = ["a/box", "b/box", "c/nothing", "d/box", "e/box"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let seen = fake_registry(listener, None, repos);
    let env = Env::new();
    let out = env.ok(&["search", "--format", "{{.Name}}", &format!("{addr}/box")]);
    assert_eq!(
        out,
        format!("{addr}/a/box\n{addr}/b/box\n{addr}/d/box\n{addr}/e/box\n")
    );
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.contains(&"/v1/search?q=box&n=25".to_owned()),
        "{seen:?}"
    );
    for page in [
        "/v2/_catalog?n=100",
        "/v2/_catalog?n=2&page=1",
        "/v2/_catalog?n=2&page=2",
    ] {
        assert!(seen.contains(&page.to_owned()), "{page} not in {seen:?}");
    }
}

#[test]
fn search_prints_what_the_docker_cli_prints() {
    if !common::dockerd::require_docker() {
        return;
    }
    let dockerd = common::dockerd::Dockerd::start();
    let netns = PathBuf::from(format!("/proc/{}/ns/net", dockerd.pid()));
    // The fake registry listens inside dockerd's private network namespace.
    let listener = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = fs::File::open(&netns).unwrap();
                nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                TcpListener::bind("127.0.0.1:0").unwrap()
            })
            .join()
            .unwrap()
    });
    let addr = listener.local_addr().unwrap().to_string();
    let results = json!([
        {"name": "busybox", "description": "Busybox base image.", "star_count": 3300,
         "is_official": true, "is_automated": false},
        {"name": "someone/busybox-tools", "description":
            "Tools\nfor busybox, with a description longer than forty-five characters",
         "star_count": 12, "is_official": false, "is_automated": true},
        {"name": "other/bb", "description": "", "star_count": 0, "is_official": false},
        {"name": "café/bb", "description": "Une très longue description accentuée, plus de quarante-cinq",
         "star_count": 7, "is_official": false}
    ]);
    fake_registry(listener, Some(results), Vec::new());
    let mut env = Env::new();
    env.netns = Some(netns);
    let term = format!("{addr}/busybox");
    let cases: &[&[&str]] = &[
        &[],
        &["--no-trunc"],
        &["--limit", "2"],
        &["--filter", "is-official=true"],
        &["--filter", "stars=10", "--filter", "stars=5"],
        &["--filter", "is-official=false", "--no-trunc"],
        &[
            "--format",
            "{{.Name}}: {{.StarCount}} [{{.IsOfficial}}] {{.Description}}",
        ],
        &["--format", "table {{.Name}}\t{{.IsOfficial}}"],
        &["--format", "table"],
    ];
    for case in cases {
        let mut args = vec!["search"];
        args.extend_from_slice(case);
        args.push(&term);
        let docker = dockerd.ok(&args);
        assert_eq!(
            env.ok(&args),
            docker,
            "minidock {args:?} differs from docker"
        );
    }
    let failing: &[&[&str]] = &[
        &["--filter", "foo=1"],
        &["--filter", "is-official=maybe"],
        &["--filter", "stars=x"],
        &["--limit", "101"],
        &["--filter", "nonsense"],
    ];
    let mut differences = Vec::new();
    for case in failing {
        let mut args = vec!["search"];
        args.extend_from_slice(case);
        args.push(&term);
        let docker = dockerd.docker(&args);
        let ours = env.run(&args);
        let docker_err = common::text(&docker.stderr);
        let docker_line = docker_err.lines().next().unwrap_or("");
        let docker_line = docker_line
            .strip_prefix("Error response from daemon: ")
            .unwrap_or(docker_line);
        let ours_err = common::text(&ours.stderr);
        let ours_line = ours_err.lines().next().unwrap_or("");
        if ours.status.code() != docker.status.code()
            || ours_line.strip_prefix("minidock: ") != Some(docker_line)
        {
            differences.push(format!(
                "{args:?}: docker {:?} {docker_line:?}, minidock {:?} {ours_line:?}",
                docker.status.code(),
                ours.status.code()
            ));
        }
    }
    assert!(differences.is_empty(), "{differences:#?}");
}
