//! Small traffic tools for the tour, the tests and the workshop checks: ping, a tiny HTTP
//! server, an HTTP GET, and a UDP echo server. Each opens its socket inside a chosen network
//! namespace (a socket belongs to the namespace it was created in), so none needs `ip netns
//! exec` or a binary in the container.

use super::netns::Netns;
use anyhow::{Context, Result, bail};
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn, recvfrom, sendto,
    setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Runs `f` inside `netns`, or right here when `netns` is `None`.
fn inside<R: Send>(netns: Option<&Netns>, f: impl FnOnce() -> R + Send) -> Result<R> {
    match netns {
        Some(ns) => ns.run(f),
        None => Ok(f()),
    }
}

/// The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of the
/// 16-bit words.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

// ANCHOR: ping
/// Sends one ICMP echo request from inside `netns` to `target` and waits for the reply, like
/// `ping -c 1`. Returns the round-trip time.
pub fn ping(netns: Option<&Netns>, target: Ipv4Addr, timeout: Duration) -> Result<Duration> {
    let sock: OwnedFd = inside(netns, || {
        socket(
            AddressFamily::Inet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::Icmp,
        )
    })?
    .context("socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)")?;
    let id = (std::process::id() as u16) ^ (target.octets()[3] as u16) << 8;
    let seq: u16 = 1;
    // type 8 (echo request), code 0, checksum, identifier, sequence, then a payload.
    let mut packet = vec![8u8, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(b"minidock ping payload, 56 bytes like ping(8) sends...");
    let sum = checksum(&packet);
    packet[2..4].copy_from_slice(&sum.to_be_bytes());

    let started = Instant::now();
    let to = SockaddrIn::from(SocketAddrV4::new(target, 0));
    sendto(sock.as_raw_fd(), &packet, &to, MsgFlags::empty())
        .context("sendto (ICMP echo request)")?;
    let mut buf = [0u8; 1500];
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            bail!("no reply from {target} within {timeout:?}");
        }
        setsockopt(
            &sock,
            sockopt::ReceiveTimeout,
            &TimeVal::new(left.as_secs() as _, left.subsec_micros().max(1) as _),
        )?;
        let (len, from) = match recvfrom::<SockaddrIn>(sock.as_raw_fd(), &mut buf) {
            Ok(got) => got,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("recvfrom (ICMP)"),
        };
        // A raw socket hands us the IP header too; its length is in the low nibble (words).
        let ihl = ((buf[0] & 0x0f) as usize) * 4;
        let icmp = &buf[ihl.min(len)..len];
        let from_target = from.is_some_and(|a| a.ip() == target);
        if from_target
            && icmp.len() >= 8
            && icmp[0] == 0
            && icmp[4..6] == id.to_be_bytes()
            && icmp[6..8] == seq.to_be_bytes()
        {
            return Ok(started.elapsed());
        }
    }
}
// ANCHOR_END: ping

/// A tiny HTTP server, listening inside a namespace on its own thread, answering every
/// request with `body`. It stops when the process exits or after [`HttpServer::stop`].
pub struct HttpServer {
    pub addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl HttpServer {
    pub fn start(netns: Option<&Netns>, port: u16, body: String) -> Result<HttpServer> {
        let listener = inside(netns, move || TcpListener::bind(("0.0.0.0", port)))?
            .with_context(|| format!("listening on 0.0.0.0:{port}"))?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut req = [0u8; 1024];
                        let _ = conn.read(&mut req);
                        let reply = format!(
                            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = conn.write_all(reply.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(HttpServer { addr, stop })
    }

    pub fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

// ANCHOR: http_get
/// `GET /` over HTTP/1.0 from inside `netns` (or here); returns the status line and the body.
pub fn http_get(netns: Option<&Netns>, addr: SocketAddrV4) -> Result<(String, String)> {
    let timeout = Duration::from_secs(5);
    let mut conn = inside(netns, move || {
        TcpStream::connect_timeout(&SocketAddr::V4(addr), timeout)
    })?
    .with_context(|| format!("connecting to {addr}"))?;
    conn.set_read_timeout(Some(timeout))?;
    conn.write_all(format!("GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut response = Vec::new();
    conn.read_to_end(&mut response)
        .with_context(|| format!("reading the response from {addr}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or("").to_owned();
    Ok((status, body.to_owned()))
}
// ANCHOR_END: http_get

/// A UDP echo server inside a namespace, on its own thread: every datagram is sent back.
/// It stops when dropped.
pub struct UdpEcho {
    pub addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl UdpEcho {
    pub fn start(netns: Option<&Netns>, port: u16) -> Result<UdpEcho> {
        let sock = inside(netns, move || UdpSocket::bind(("0.0.0.0", port)))?
            .with_context(|| format!("binding udp 0.0.0.0:{port}"))?;
        let addr = sock.local_addr()?;
        // Wake up now and then to notice the stop flag.
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok((len, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(&buf[..len], from);
                }
            }
        });
        Ok(UdpEcho { addr, stop })
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Sends `payload` to `addr` over UDP from inside `netns` (or here) and returns the answer.
pub fn udp_request(netns: Option<&Netns>, addr: SocketAddrV4, payload: &[u8]) -> Result<Vec<u8>> {
    let sock =
        inside(netns, || UdpSocket::bind(("0.0.0.0", 0)))?.context("binding a udp socket")?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    sock.send_to(payload, addr)
        .with_context(|| format!("sending to udp {addr}"))?;
    let mut buf = [0u8; 2048];
    let (len, _) = sock
        .recv_from(&mut buf)
        .with_context(|| format!("waiting for an answer from udp {addr}"))?;
    Ok(buf[..len].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_matches_rfc_1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2, complement 220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        // A packet with its checksum filled in sums to zero.
        let mut p = vec![8, 0, 0, 0, 0, 1, 0, 1, 0xab];
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&p), 0);
    }
}
