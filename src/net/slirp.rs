//! User-mode networking for rootless containers, with slirp4netns(1), as rootless podman's
//! default. A user namespace owns nothing of the host's network, so no bridge or veth can
//! reach it; instead slirp4netns opens a TAP device (`tap0`) inside the container's network
//! namespace and plays, in user space, the network behind it: a gateway (10.0.2.2), a DNS
//! forwarder (10.0.2.3) and the container's address (10.0.2.100), each connection turned into
//! an ordinary socket of the user's on the host. A published port is a listening socket it
//! opens on the host (`add_hostfwd` on its API socket), forwarding to the container.

use crate::net::Attachment;
use crate::net::nat::{PortMapping, Protocol};
use anyhow::{Context, Result, bail};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// The container's address on the slirp4netns network (`--configure`'s default).
pub const CONTAINER_ADDRESS: &str = "10.0.2.100";

/// The gateway slirp4netns plays on its network (`--configure`'s default route).
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);

/// The prefix length of slirp4netns's network, `10.0.2.0/24` (its default `--cidr`).
pub const PREFIX: u8 = 24;

/// The interface slirp4netns opens in the container's network namespace.
pub const TAP: &str = "tap0";

/// What `inspect` shows of a container on user-mode networking, kept in its directory while
/// the network is up: the address, gateway and published ports (as a bridge's
/// [`Attachment`], with no bridge or host-side veth), and the MAC address of its TAP device,
/// which the kernel chose at random.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserModeNet {
    pub attachment: Attachment,
    /// `aa:bb:cc:dd:ee:ff`.
    pub mac_address: String,
}

impl UserModeNet {
    /// The record of container `id` on slirp4netns's network, in the namespace pinned at
    /// `netns`, with its published `ports`. Errors: the TAP device is missing.
    pub fn read(id: &str, netns: &Path, ports: Vec<PortMapping>) -> Result<UserModeNet> {
        let mac = tap_mac(netns)?;
        Ok(UserModeNet {
            attachment: Attachment {
                container: id.to_owned(),
                bridge: String::new(),
                host_veth: String::new(),
                interface: TAP.to_owned(),
                address: CONTAINER_ADDRESS.parse().expect("a literal address"),
                prefix: PREFIX,
                gateway: GATEWAY,
                ports,
                rules: Vec::new(),
            },
            mac_address: crate::net::netlink::format_mac(mac),
        })
    }

    /// The record of container `id` on pasta's network, which `inspect` shows as podman does:
    /// only the published `ports`, no address, gateway or MAC (pasta copies the host's, and
    /// they reach nothing from the host).
    pub fn unaddressed(id: &str, ports: Vec<PortMapping>) -> UserModeNet {
        UserModeNet {
            attachment: Attachment {
                container: id.to_owned(),
                bridge: String::new(),
                host_veth: String::new(),
                interface: String::new(),
                address: Ipv4Addr::UNSPECIFIED,
                prefix: 0,
                gateway: Ipv4Addr::UNSPECIFIED,
                ports,
                rules: Vec::new(),
            },
            mac_address: String::new(),
        }
    }
}

/// The MAC address of [`TAP`] in the network namespace at `netns`: `ioctl(SIOCGIFHWADDR)` on
/// a socket made inside it (netdevice(7)).
pub fn tap_mac(netns: &Path) -> Result<[u8; 6]> {
    let ns = crate::net::Netns::open(netns)?;
    let mac = ns.run(|| -> std::io::Result<[u8; 6]> {
        // SAFETY: a datagram socket this closure owns, and an ifreq it zeroed and named.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let fd = OwnedFd::from_raw_fd(fd);
            let mut req: libc::ifreq = std::mem::zeroed();
            for (dst, src) in req.ifr_name.iter_mut().zip(TAP.bytes()) {
                *dst = src as libc::c_char;
            }
            if libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let data = req.ifr_ifru.ifru_hwaddr.sa_data;
            Ok(std::array::from_fn(|i| data[i] as u8))
        }
    })?;
    mac.with_context(|| format!("reading the MAC address of {TAP} in {}", netns.display()))
}

// ANCHOR: start
/// Starts slirp4netns for the network namespace pinned at `netns`, with its API socket at
/// `api_socket`, and waits until `tap0` is up and configured (`--ready-fd`). The process runs
/// in a session of its own, so it outlives the caller; [`stop`] ends it. Host loopback is not
/// reachable from the container (`--disable-host-loopback`). Its messages go to `log`, whose
/// last line an error quotes.
pub fn start(netns: &Path, api_socket: &Path, log: &Path) -> Result<Pid> {
    let log_file =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let (ready_r, ready_w): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe2")?;
    let _ = std::fs::remove_file(api_socket);
    let mut cmd = Command::new("slirp4netns");
    cmd.args(["--configure", "--mtu=65520", "--disable-host-loopback"])
        .args(["--netns-type=path", "--ready-fd=3"])
        .arg("--api-socket")
        .arg(api_socket)
        .arg(netns)
        .arg("tap0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    let write_end = ready_w.as_raw_fd();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if libc::dup2(write_end, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    crate::explain::step(
        "start user-mode networking",
        || {
            format!(
                "slirp4netns --configure --netns-type=path {} tap0",
                netns.display()
            )
        },
        crate::explain::Chapter::Networking,
    );
    let mut child = cmd
        .spawn()
        .context("starting slirp4netns (apt-get install slirp4netns)")?;
    drop(ready_w);
    let mut byte = [0u8; 1];
    let ready = std::fs::File::from(ready_r).read(&mut byte).unwrap_or(0) == 1;
    if !ready {
        let _ = child.kill();
        let status = child.wait().ok();
        let status = status.map_or_else(String::new, |s| s.to_string());
        bail!(
            "slirp4netns did not come up ({status}): {}",
            super::usermode::said(log)
        );
    }
    Ok(Pid::from_raw(child.id() as i32))
}
// ANCHOR_END: start

// ANCHOR: add_hostfwd
/// Publishes one port: asks slirp4netns on its API socket to listen on the host's
/// `HOST_IP:HOST_PORT` (`0.0.0.0` without one) and forward to the container's port.
pub fn add_hostfwd(api_socket: &Path, mapping: &PortMapping) -> Result<()> {
    let host_addr = mapping
        .host_ip
        .map_or_else(|| "0.0.0.0".to_owned(), |ip| ip.to_string());
    let proto = match mapping.protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    };
    let request = serde_json::json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": proto,
            "host_addr": host_addr,
            "host_port": mapping.host_port,
            "guest_port": mapping.container_port,
        }
    });
    let mut stream = UnixStream::connect(api_socket)
        .with_context(|| format!("connecting to {}", api_socket.display()))?;
    stream.write_all(request.to_string().as_bytes())?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    let reply: serde_json::Value = serde_json::from_str(&reply)
        .map_err(|e| crate::cli::untrusted_error("slirp4netns's reply", e))?;
    if let Some(error) = reply.get("error") {
        bail!(
            "publishing {host_addr}:{}: slirp4netns: {}",
            mapping.host_port,
            crate::cli::quote(error.to_string())
        );
    }
    Ok(())
}
// ANCHOR_END: add_hostfwd

/// Ends the slirp4netns whose pid is in `pid_file` and removes the file
/// ([`super::usermode::stop`]). Idempotent.
pub fn stop(pid_file: &Path) -> Result<()> {
    super::usermode::stop(super::usermode::Kind::Slirp4netns, pid_file)
}
