//! User-mode networking with pasta(1) (Debian's `passt` package), rootless podman 5's
//! default. Like slirp4netns ([`super::slirp`]) it opens a TAP device in the container's
//! network namespace and answers the container's traffic with ordinary sockets of the user's
//! on the host; unlike slirp4netns it has no network of its own to NAT: it copies the host's
//! interface name, address and routes into the namespace (`--config-net`), and maps each
//! connection onto a host socket directly, so there is no address translation and no second
//! TCP stack in between. A published port is a host socket pasta binds itself, named on its
//! command line (`-t` for TCP, `-u` for UDP), so nothing needs an API socket.

use super::nat::{PortMapping, Protocol};
use super::usermode;
use anyhow::{Context, Result, bail};
use nix::unistd::Pid;
use std::path::Path;
use std::process::{Command, Stdio};

// ANCHOR: port_args
/// pasta's port options for `mappings`, as podman writes them: `-t [HOST_IP/]HOST:CONTAINER`
/// per TCP port and `-u ...` per UDP port, `none` for a protocol without any (pasta's default,
/// `auto`, would forward every port the container binds), and `-T none -U none`: nothing of
/// the host's loopback is forwarded into the container.
pub fn port_args(mappings: &[PortMapping]) -> Vec<String> {
    let mut out = Vec::new();
    for (flag, protocol) in [("-t", Protocol::Tcp), ("-u", Protocol::Udp)] {
        let specs: Vec<String> = mappings
            .iter()
            .filter(|m| m.protocol == protocol)
            .map(|m| {
                let addr = m.host_ip.map(|ip| format!("{ip}/")).unwrap_or_default();
                format!("{addr}{}:{}", m.host_port, m.container_port)
            })
            .collect();
        if specs.is_empty() {
            out.extend([flag.to_owned(), "none".to_owned()]);
        }
        for spec in specs {
            out.extend([flag.to_owned(), spec]);
        }
    }
    out.extend(["-T", "none", "-U", "none"].map(str::to_owned));
    out
}
// ANCHOR_END: port_args

/// `mappings` with every host port 0 (`-p 80`) replaced by a free port of the host's, chosen
/// by binding port 0 (pasta takes only fixed ports).
pub fn choose_host_ports(mappings: &[PortMapping]) -> Result<Vec<PortMapping>> {
    mappings
        .iter()
        .map(|m| {
            if m.host_port != 0 {
                return Ok(*m);
            }
            let ip = m.host_ip.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
            let port = match m.protocol {
                Protocol::Tcp => std::net::TcpListener::bind((ip, 0))?.local_addr()?.port(),
                Protocol::Udp => std::net::UdpSocket::bind((ip, 0))?.local_addr()?.port(),
            };
            Ok(PortMapping {
                host_port: port,
                ..*m
            })
        })
        .collect::<std::io::Result<_>>()
        .context("choosing a free host port")
}

// ANCHOR: start
/// Starts pasta for the network namespace pinned at `netns` with the published `mappings`
/// (host ports fixed, see [`choose_host_ports`]). pasta configures the namespace, binds the
/// ports and then goes to the background, writing its pid to `pid_file`; its messages go to
/// `log`, which an error quotes. `--runas 0:0` keeps it the caller (root of the user's
/// namespace when rootless): pasta run as root otherwise turns itself into `nobody`, who may
/// not enter the namespace. `--no-map-gw`: the gateway address does not reach the host's
/// loopback (as slirp4netns's `--disable-host-loopback`). Ended by [`usermode::stop`].
pub fn start(netns: &Path, mappings: &[PortMapping], pid_file: &Path, log: &Path) -> Result<Pid> {
    let log_file =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut cmd = Command::new("pasta");
    cmd.args(["--config-net", "--quiet", "--no-map-gw", "--runas", "0:0"])
        .args(port_args(mappings))
        .arg("--pid")
        .arg(pid_file)
        .arg("--netns")
        .arg(netns)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    crate::explain::step(
        "start user-mode networking",
        || format!("{cmd:?}").replace('"', ""),
        crate::explain::Chapter::Networking,
    );
    let status = cmd
        .status()
        .context("starting pasta (apt-get install passt)")?;
    let pid = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok());
    match pid {
        Some(pid) if status.success() => Ok(Pid::from_raw(pid)),
        _ => {
            let _ = usermode::stop(usermode::Kind::Pasta, pid_file);
            bail!("pasta did not come up ({status}): {}", usermode::said(log))
        }
    }
}
// ANCHOR_END: start

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_named_as_podman_names_them() {
        let m = |ip: Option<&str>, host, container, protocol| PortMapping {
            host_ip: ip.map(|i| i.parse().unwrap()),
            host_port: host,
            container_port: container,
            protocol,
        };
        assert_eq!(port_args(&[]).join(" "), "-t none -u none -T none -U none");
        let args = port_args(&[
            m(Some("127.0.0.1"), 8080, 80, Protocol::Tcp),
            m(None, 5353, 53, Protocol::Udp),
            m(None, 2222, 22, Protocol::Tcp),
        ]);
        assert_eq!(
            args.join(" "),
            "-t 127.0.0.1/8080:80 -t 2222:22 -u 5353:53 -T none -U none"
        );
    }
}
