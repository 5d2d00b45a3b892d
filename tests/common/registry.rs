//! A throwaway CNCF distribution registry (Debian's `docker-registry serve CONFIG`) for tests,
//! on a free port, with its storage and log in a temp dir; killed on drop.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::prerequisite;

fn have(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// A `docker-registry serve` on `HOST:<free port>`. Killed (and its dir removed) on drop.
pub struct Registry {
    child: Child,
    /// `HOST:PORT`.
    pub addr: String,
    pub dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry on 127.0.0.1; with `auth`, one that wants HTTP Basic credentials
    /// (htpasswd with a bcrypt hash). None (skip) when the registry is not installed,
    /// outside CI.
    pub fn start(auth: Option<(&str, &str)>) -> Option<Registry> {
        let dir = Registry::dir()?;
        let mut yaml = String::new();
        if let Some((user, password)) = auth {
            if !prerequisite(
                have("htpasswd", "-h"),
                "htpasswd is not installed (apt-get install apache2-utils)",
            ) {
                return None;
            }
            let htpasswd = dir.path().join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-B", "-b", "-c"])
                .arg(&htpasswd)
                .args([user, password])
                .output()
                .unwrap();
            assert!(out.status.success(), "htpasswd: {out:?}");
            yaml = format!(
                "auth:\n  htpasswd:\n    realm: minidock-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        Some(Registry::serve(dir, "127.0.0.1", &yaml, "http"))
    }

    /// Starts a registry on `host` with `yaml` added to its configuration as top-level keys
    /// (`auth:`, `proxy:`, ...).
    pub fn start_with(host: &str, yaml: &str) -> Option<Registry> {
        let dir = Registry::dir()?;
        Some(Registry::serve(dir, host, yaml, "http"))
    }

    /// Starts a registry on `host` serving HTTPS with a fresh self-signed certificate (openssl).
    pub fn start_tls(host: &str) -> Option<Registry> {
        if !prerequisite(
            have("openssl", "version"),
            "openssl is not installed (apt-get install openssl)",
        ) {
            return None;
        }
        let dir = Registry::dir()?;
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", &format!("/CN={host}")])
            .args(["-addext", &format!("subjectAltName=IP:{host}")])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl: {out:?}");
        let tls = format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            cert.display(),
            key.display()
        );
        Some(Registry::serve(dir, host, &tls, "https"))
    }

    fn dir() -> Option<tempfile::TempDir> {
        if !prerequisite(
            have("docker-registry", "--version"),
            "docker-registry is not installed (apt-get install docker-registry)",
        ) {
            return None;
        }
        Some(
            tempfile::Builder::new()
                .prefix("minidock-registry")
                .tempdir()
                .unwrap(),
        )
    }

    /// Writes the config and starts `docker-registry serve`; `extra` goes under `http:` for
    /// https, else at the top level.
    fn serve(dir: tempfile::TempDir, host: &str, extra: &str, scheme: &str) -> Registry {
        // A free port: bind :0, note the port, release it for the registry.
        let port = TcpListener::bind((host, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("{host}:{port}");
        let (http_extra, top_extra) = if scheme == "https" {
            (extra, "")
        } else {
            ("", extra)
        };
        let config = dir.path().join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{http_extra}{top_extra}",
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
        let mut registry = Registry { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&registry.addr).is_err() {
            if let Ok(Some(status)) = registry.child.try_wait() {
                panic!("docker-registry exited ({status}): {}", registry.log());
            }
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// `HOST:PORT/<path>`.
    pub fn name(&self, path: &str) -> String {
        format!("{}/{path}", self.addr)
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// What the registry logged (with its access log: one line per request).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The repositories the registry holds, from its own `GET /v2/_catalog` over plain HTTP.
    pub fn catalog(&self) -> Vec<String> {
        let body = http_get(&self.addr, "/v2/_catalog?n=1000");
        let json: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|err| panic!("catalog of {}: {err}: {body}", self.addr));
        json["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.0 GET; returns the body.
pub fn http_get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}
