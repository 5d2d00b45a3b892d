//! `minidock daemon` driven by clients other than the docker CLI's everyday commands: the
//! CLI's `network connect`/`disconnect`, the Docker SDK for Python (`docker` on PyPI, in the
//! venv `scripts/lib/prereqs.sh` makes) running tests/sdk/session.py, and Debian's
//! `docker-compose` bringing up tests/sdk/compose.yml. Each runs inside a private network
//! namespace of its own (networks make bridges and firewall rules).

mod common;

use common::daemon::Daemon;
use common::text;
use std::path::PathBuf;
use std::process::Command;

/// Runs `f` with a daemon on a fresh busybox root, inside a private network namespace.
fn in_private_netns(prefix: &str, f: impl FnOnce(&Daemon) + Send) {
    if !common::daemon::require_daemon_prerequisites() {
        return;
    }
    common::net::private_netns(|| {
        if let Some(d) = Daemon::start(prefix) {
            f(&d);
        }
    });
}

#[test]
fn network_connect_and_disconnect_change_a_running_containers_interfaces() {
    in_private_netns("minidock-clients-connect", |d| {
        d.ok(&["network", "create", "--subnet", "10.131.0.0/24", "front"]);
        d.ok(&["network", "create", "--subnet", "10.132.0.0/24", "back"]);
        d.ok(&[
            "run",
            "-d",
            "--name",
            "app",
            "--network",
            "front",
            "busybox",
            "sleep",
            "300",
        ]);
        assert_eq!(
            d.ok(&[
                "network",
                "connect",
                "--alias",
                "db",
                "--ip",
                "10.132.0.50",
                "back",
                "app"
            ]),
            ""
        );
        let networks =
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}";
        assert_eq!(
            d.ok(&["inspect", "-f", networks, "app"]),
            "back=10.132.0.50 front=10.131.0.2 \n"
        );
        // The kernel's evidence: a second interface with the address asked for.
        let eth1 = d.ok(&["exec", "app", "ip", "-4", "-o", "addr", "show", "eth1"]);
        assert!(eth1.contains("inet 10.132.0.50/24"), "{eth1}");
        // The alias answers on the network it was given for, through the embedded DNS.
        let ping = d.ok(&[
            "run",
            "--rm",
            "--network",
            "back",
            "busybox",
            "ping",
            "-c",
            "1",
            "db",
        ]);
        assert!(ping.starts_with("PING db (10.132.0.50)"), "{ping}");
        let err = d.fails(&["network", "connect", "back", "app"], 1);
        assert_eq!(
            err,
            "Error response from daemon: endpoint with name app already exists in network back\n"
        );
        let err = d.fails(&["network", "connect", "nothing", "app"], 1);
        assert_eq!(
            err,
            "Error response from daemon: network nothing not found\n"
        );
        let err = d.fails(&["network", "connect", "back", "nobody"], 1);
        assert_eq!(
            err,
            "Error response from daemon: No such container: nobody\n"
        );
        let err = d.fails(&["network", "connect", "host", "app"], 1);
        assert_eq!(
            err,
            "Error response from daemon: container cannot be disconnected from host network or \
             connected to host network\n"
        );
        assert_eq!(d.ok(&["network", "disconnect", "back", "app"]), "");
        assert_eq!(
            d.ok(&["inspect", "-f", networks, "app"]),
            "front=10.131.0.2 \n"
        );
        let gone = d.docker(&["exec", "app", "ip", "link", "show", "eth1"]);
        assert!(
            !gone.status.success() && text(&gone.stderr).contains("can't find device 'eth1'"),
            "{gone:?}"
        );
        let err = d.fails(&["network", "disconnect", "back", "app"], 1);
        assert!(
            err.starts_with("Error response from daemon: container ")
                && err.contains(" is not connected to network back"),
            "{err}"
        );
        // A stopped container keeps a network connected to it for its next start.
        d.ok(&[
            "create",
            "--name",
            "later",
            "--network",
            "front",
            "busybox",
            "ip",
            "-4",
            "-o",
            "addr",
        ]);
        d.ok(&["network", "connect", "back", "later"]);
        let out = d.ok(&["start", "-a", "later"]);
        assert!(out.contains("eth1    inet 10.132.0."), "{out}");
        // The first container on a network started its resolver: stopping it still records
        // its exit (the resolver holds none of its supervisor's descriptors).
        assert_eq!(d.ok(&["stop", "-t", "1", "app"]), "app\n");
        assert_eq!(
            d.ok(&[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.ExitCode}}",
                "app"
            ]),
            "exited 137\n"
        );
        d.ok(&["rm", "-f", "app", "later"]);
        d.ok(&["network", "rm", "front", "back"]);
    });
}

/// The venv's python with the Docker SDK: `MINIDOCK_PYTHON_SDK`, else `target/python-sdk`
/// (`install_python_sdk` in scripts/lib/prereqs.sh). None (skip) when missing, outside CI.
fn sdk_python() -> Option<PathBuf> {
    let python = std::env::var_os("MINIDOCK_PYTHON_SDK")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::repo().join("target/python-sdk/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import docker"])
        .output()
        .is_ok_and(|o| o.status.success());
    common::prerequisite(
        ok,
        "the Docker SDK for Python (scripts/test installs it: install_python_sdk in \
         scripts/lib/prereqs.sh, or MINIDOCK_PYTHON_SDK=PYTHON)",
    )
    .then_some(python)
}

#[test]
fn the_python_sdk_runs_a_session_of_containers_images_volumes_and_networks() {
    let Some(python) = sdk_python() else {
        return;
    };
    in_private_netns("minidock-clients-sdk", |d| {
        let Some(registry) = common::registry::Registry::start(None) else {
            return;
        };
        let pulled = registry.name("sdk/busybox:1");
        d.minidock(&["tag", "busybox", &pulled]);
        d.minidock(&["push", &pulled]);
        d.minidock(&["rmi", &pulled]);
        let out = Command::new(&python)
            .arg(common::repo().join("tests/sdk/session.py"))
            .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
            .env("SDK_PULL", &pulled)
            .env("SDK_PREFIX", "sdk")
            .output()
            .unwrap();
        let got = text(&out.stdout);
        assert!(out.status.success(), "{got}{}", text(&out.stderr));
        let want = format!(
            "ping: True\n\
             run: hello from the sdk\n\
             run failed: 3 failing\n\
             logs: started\n\
             status: running sdk-web web\n\
             exec: 4 exec 3\n\
             exec demux: 0 True None\n\
             list: ['sdk-web']\n\
             stopped: exited 137\n\
             removed: []\n\
             images: ['busybox:latest']\n\
             pulled: ['{pulled}', 'busybox:latest']\n\
             tagged: ['{pulled}', 'busybox:latest', 'sdk/copy:v1']\n\
             images after: ['busybox:latest']\n\
             volume: sdk-vol local {{'kept': 'no'}}\n\
             volumes: ['sdk-vol']\n\
             volumes after: []\n\
             networks: ['sdk-net']\n\
             connected: ['sdk-back', 'sdk-net']\n\
             disconnected: ['sdk-net']\n\
             networks after: []\n"
        );
        assert_eq!(got, want);
        assert_eq!(d.minidock(&["ps", "-aq"]), "");
    });
}

/// `docker-compose -p PROJECT -f tests/sdk/compose.yml ARGS` against the daemon: its output.
fn compose(d: &Daemon, project: &str, args: &[&str]) -> std::process::Output {
    Command::new("docker-compose")
        .args(["--ansi", "never", "-p", project, "-f"])
        .arg(common::repo().join("tests/sdk/compose.yml"))
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_CONFIG", d.root.path().join("docker-config"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn docker_compose_brings_up_a_server_and_its_client_and_takes_them_down() {
    if !common::prerequisite(
        common::dockerd::have("docker-compose"),
        "docker-compose is missing (apt-get install docker-compose)",
    ) {
        return;
    }
    in_private_netns("minidock-clients-compose", |d| {
        let up = compose(d, "mdk", &["up", "-d"]);
        assert!(up.status.success(), "{up:?}");
        let err = text(&up.stderr);
        assert!(
            err.contains("Creating network \"mdk_default\" with the default driver"),
            "{err}"
        );
        // The client fetched the page by the service's name, then exited 0.
        assert_eq!(d.ok(&["wait", "mdk_client_1"]), "0\n");
        let logs = compose(d, "mdk", &["logs", "--no-color", "client"]);
        assert!(logs.status.success(), "{logs:?}");
        assert!(
            text(&logs.stdout).contains("client_1  | hello from web"),
            "{logs:?}"
        );
        assert_eq!(
            d.minidock(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"])
                .lines()
                .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>(),
            ["mdk_client_1 Exited", "mdk_web_1 Up"]
        );
        let down = compose(d, "mdk", &["down", "-v"]);
        assert!(down.status.success(), "{down:?}");
        assert!(
            text(&down.stderr).contains("Removing network mdk_default"),
            "{down:?}"
        );
        // Nothing is left behind.
        assert_eq!(d.minidock(&["ps", "-aq"]), "");
        assert_eq!(
            d.minidock(&["network", "ls", "--format", "{{.Name}}"]),
            "bridge\nhost\nnone\n"
        );
        assert_eq!(d.minidock(&["volume", "ls", "-q"]), "");
    });
}
