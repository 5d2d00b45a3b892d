//! A small rtnetlink client: just the messages a container runtime needs (links, addresses,
//! routes), written out by hand so a reader can see every byte that goes to the kernel.
//!
//! `ip link add ...` is a program that builds one of these messages and writes it to a
//! `NETLINK_ROUTE` socket (rtnetlink(7)). Doing it ourselves costs a `sendmsg` and a `recvmsg`
//! (microseconds) instead of a fork+exec of `ip` (milliseconds), which is what keeps
//! `minidock run` fast.
//!
//! Wire format (netlink(7), rtnetlink(7)): every message is a 16-byte `nlmsghdr`, then a
//! fixed family header (`ifinfomsg`, `ifaddrmsg` or `rtmsg`), then a list of attributes. An
//! attribute is a 4-byte header (`u16` length, `u16` type) followed by its payload, padded to
//! 4 bytes; a "nested" attribute's payload is itself a list of attributes.
//!
//! ```text
//! nlmsghdr { len, type=RTM_NEWLINK, flags=REQUEST|ACK|CREATE|EXCL, seq, pid }
//! ifinfomsg { family, type, index, flags, change }
//! IFLA_IFNAME "veth1234"
//! IFLA_LINKINFO { IFLA_INFO_KIND "veth", IFLA_INFO_DATA { VETH_INFO_PEER { ifinfomsg, IFLA_IFNAME "eth0", IFLA_NET_NS_FD 7 } } }
//! ```

use crate::explain::{self, Chapter};
use std::ffi::CStr;
use std::fmt;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

// Message types and flags, from include/uapi/linux/netlink.h and rtnetlink.h. Spelled out
// here (not taken from libc) so the numbers a reader sees in a packet capture are on the page.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_GETROUTE: u16 = 26;

const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_REPLACE: u16 = 0x100;
/// Set by the kernel on an error message that carries extended-ack attributes.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// Set by the kernel when it did not copy our whole request back into the error (CAP_ACK).
const NLM_F_CAPPED: u16 = 0x100;
const NLMSGERR_ATTR_MSG: u16 = 1;

const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;

// Link attributes (include/uapi/linux/if_link.h).
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_PROTINFO: u16 = 12;
/// `IFLA_BRPORT_MODE` inside `IFLA_PROTINFO`: the port's hairpin mode.
const IFLA_BRPORT_MODE: u16 = 4;
const NLA_F_NESTED: u16 = 0x8000;
const AF_BRIDGE: u8 = 7;
const RTM_SETLINK: u16 = 19;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1; // include/uapi/linux/veth.h

// Address attributes (include/uapi/linux/if_addr.h).
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;

// Route attributes and values (include/uapi/linux/rtnetlink.h).
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

const IFF_UP: u32 = libc::IFF_UP as u32;
const AF_UNSPEC: u8 = libc::AF_UNSPEC as u8;
const AF_INET: u8 = libc::AF_INET as u8;

/// `ifindex` of the loopback device in every network namespace (`LOOPBACK_IFINDEX` in
/// include/net/net_namespace.h): `lo` is always created first, so it never needs a lookup.
pub const LOOPBACK_INDEX: u32 = 1;

const HEADER_LEN: usize = 16;

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// A netlink error: the errno the kernel answered with, plus its extended-ack message when it
/// gave one ("Unknown device type", "Attribute failed policy validation", ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetlinkError {
    pub errno: nix::errno::Errno,
    pub message: Option<String>,
}

impl fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(msg) => write!(f, "{} ({msg})", self.errno.desc()),
            None => write!(f, "{}", self.errno.desc()),
        }
    }
}

impl std::error::Error for NetlinkError {}

impl From<nix::errno::Errno> for NetlinkError {
    fn from(errno: nix::errno::Errno) -> Self {
        NetlinkError {
            errno,
            message: None,
        }
    }
}

pub type Result<T> = std::result::Result<T, NetlinkError>;

// ANCHOR: message_builder
/// Builds one netlink request: header, family header, then attributes.
#[derive(Debug, Clone)]
pub struct Message {
    buf: Vec<u8>,
    open_nests: Vec<usize>,
}
// ANCHOR_END: message_builder

// ANCHOR: message_impl
impl Message {
    /// A request of type `kind` (`RTM_NEWLINK`, ...) with `flags` plus `NLM_F_REQUEST`; the
    /// length and sequence number are written by [`Message::finish`].
    pub fn new(kind: u16, flags: u16) -> Self {
        let mut buf = vec![0u8; HEADER_LEN];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        Message {
            buf,
            open_nests: Vec::new(),
        }
    }

    /// Appends raw bytes (a family header) and pads to 4 bytes.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    // ANCHOR: message_attr
    /// Appends one attribute: `u16` length (header included, padding not), `u16` type, payload.
    pub fn attr(&mut self, kind: u16, payload: &[u8]) -> &mut Self {
        let len = (4 + payload.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.raw(payload)
    }
    // ANCHOR_END: message_attr

    /// A `u32` attribute in host byte order.
    pub fn attr_u32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.attr(kind, &value.to_ne_bytes())
    }

    /// A string attribute, NUL-terminated as the kernel's `NLA_STRING` policy expects.
    pub fn attr_str(&mut self, kind: u16, value: &str) -> &mut Self {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        self.attr(kind, &bytes)
    }
}
// ANCHOR_END: message_impl

// ANCHOR: message_nested
impl Message {
    /// Opens a nested attribute; its length is filled in by [`Message::end_nested`].
    pub fn begin_nested(&mut self, kind: u16) -> &mut Self {
        self.open_nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self
    }

    /// Closes the innermost nested attribute, writing its length (header included).
    pub fn end_nested(&mut self) -> &mut Self {
        let start = self
            .open_nests
            .pop()
            .expect("end_nested without begin_nested");
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// Writes the total length and the sequence number; returns the bytes to send.
    pub fn finish(&mut self, seq: u32) -> &[u8] {
        assert!(self.open_nests.is_empty(), "unclosed nested attribute");
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf
    }
}
// ANCHOR_END: message_nested

// ANCHOR: ifinfomsg
/// `struct ifinfomsg` (16 bytes): family, pad, type, index, flags, change. `change` is the mask
/// of `flags` bits to apply, so `flags=IFF_UP, change=IFF_UP` means "bring it up".
pub fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0] = AF_UNSPEC;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}
// ANCHOR_END: ifinfomsg

// ANCHOR: ifaddrmsg
/// `struct ifaddrmsg` (8 bytes): family, prefix length, flags, scope, index.
pub fn ifaddrmsg(prefix: u8, index: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = AF_INET;
    b[1] = prefix;
    b[3] = RT_SCOPE_UNIVERSE;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b
}
// ANCHOR_END: ifaddrmsg

// ANCHOR: rtmsg
/// `struct rtmsg` (12 bytes): family, dst_len, src_len, tos, table, protocol, scope, type, flags.
pub fn rtmsg(dst_len: u8) -> [u8; 12] {
    [
        AF_INET,
        dst_len,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
        0,
        0,
        0,
        0,
    ]
}
// ANCHOR_END: rtmsg

// ANCHOR: veth_message
/// The `RTM_NEWLINK` request of [`Netlink::create_veth`]: the host end's ifinfomsg and
/// attributes, then `IFLA_LINKINFO` with kind `veth` and, nested in its data, the peer's own
/// ifinfomsg and attributes, see veth(4) and rtnetlink(7).
fn veth_message(
    host: &str,
    peer: &str,
    ns_fd: RawFd,
    master: Option<u32>,
    mtu: Option<u32>,
    peer_mac: Option<[u8; 6]>,
) -> Message {
    let mut msg = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    // IFF_UP in the family header: the kernel applies it right after creating the link
    // (rtnl_configure_link), so no second "set up" message is needed.
    msg.raw(&ifinfomsg(0, IFF_UP, IFF_UP))
        .attr_str(IFLA_IFNAME, host);
    if let Some(master) = master {
        msg.attr_u32(IFLA_MASTER, master);
    }
    if let Some(mtu) = mtu {
        msg.attr_u32(IFLA_MTU, mtu);
    }
    msg.begin_nested(IFLA_LINKINFO)
        .attr_str(IFLA_INFO_KIND, "veth")
        .begin_nested(IFLA_INFO_DATA)
        .begin_nested(VETH_INFO_PEER)
        // The peer's own ifinfomsg and attributes. Its flags must stay 0: the kernel
        // configures the peer before the two ends are joined, and bringing up a veth
        // without its other end fails with ENOTCONN (veth_open), so the peer is brought
        // up from inside its namespace afterwards.
        .raw(&ifinfomsg(0, 0, 0))
        .attr_str(IFLA_IFNAME, peer)
        .attr_u32(IFLA_NET_NS_FD, ns_fd as u32);
    if let Some(mtu) = mtu {
        msg.attr_u32(IFLA_MTU, mtu);
    }
    // The peer's MAC, set as it is made (rtnl_create_link), instead of a later request.
    if let Some(mac) = peer_mac {
        msg.attr(IFLA_ADDRESS, &mac);
    }
    msg.end_nested().end_nested().end_nested();
    msg
}
// ANCHOR_END: veth_message

/// Walks a list of attributes: yields `(type, payload)` pairs. The type's top two bits are
/// flags (`NLA_F_NESTED`, `NLA_F_NET_BYTEORDER`) and are masked off.
pub fn attributes(mut bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if bytes.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([bytes[0], bytes[1]]) as usize;
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]) & 0x3fff;
        if len < 4 || len > bytes.len() {
            return None;
        }
        let payload = &bytes[4..len];
        bytes = &bytes[align4(len).min(bytes.len())..];
        Some((kind, payload))
    })
}

/// One parsed message: its type, flags and sequence number, and the bytes after the header.
#[derive(Debug)]
struct Received<'a> {
    kind: u16,
    flags: u16,
    seq: u32,
    payload: &'a [u8],
}

fn messages(mut bytes: &[u8]) -> impl Iterator<Item = Received<'_>> {
    std::iter::from_fn(move || {
        if bytes.len() < HEADER_LEN {
            return None;
        }
        let len = u32::from_ne_bytes(bytes[0..4].try_into().unwrap()) as usize;
        if len < HEADER_LEN || len > bytes.len() {
            return None;
        }
        let msg = Received {
            kind: u16::from_ne_bytes([bytes[4], bytes[5]]),
            flags: u16::from_ne_bytes([bytes[6], bytes[7]]),
            seq: u32::from_ne_bytes(bytes[8..12].try_into().unwrap()),
            payload: &bytes[HEADER_LEN..len],
        };
        bytes = &bytes[align4(len).min(bytes.len())..];
        Some(msg)
    })
}

/// Decodes the payload of an `NLMSG_ERROR` message: `Ok(())` for an ack (errno 0), else the
/// errno and the extended-ack text.
fn decode_error(flags: u16, payload: &[u8]) -> Result<()> {
    if payload.len() < 4 {
        return Err(nix::errno::Errno::EBADMSG.into());
    }
    let code = i32::from_ne_bytes(payload[0..4].try_into().unwrap());
    if code == 0 {
        return Ok(());
    }
    let mut message = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        // After the errno comes our request's header (only the header when capped), then TLVs.
        let echoed = if flags & NLM_F_CAPPED != 0 || payload.len() < 4 + HEADER_LEN {
            HEADER_LEN
        } else {
            u32::from_ne_bytes(payload[4..8].try_into().unwrap()) as usize
        };
        let tlv_start = (4 + align4(echoed)).min(payload.len());
        for (kind, value) in attributes(&payload[tlv_start..]) {
            if kind == NLMSGERR_ATTR_MSG {
                let text = CStr::from_bytes_until_nul(value)
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| String::from_utf8_lossy(value).into_owned());
                message = Some(text);
            }
        }
    }
    Err(NetlinkError {
        errno: nix::errno::Errno::from_raw(-code),
        message,
    })
}

/// A `NETLINK_ROUTE` socket. A netlink socket talks to the network namespace it was *created*
/// in, for its whole life, whatever namespace the thread moves to later; that is how one
/// process configures several namespaces (see [`crate::net::netns::Netns::netlink`]).
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens a `NETLINK_ROUTE` socket in the calling thread's network namespace.
    pub fn open() -> Result<Self> {
        Self::open_protocol(libc::NETLINK_ROUTE)
    }

    /// Opens a socket of netlink family `protocol` (`NETLINK_ROUTE`, `NETLINK_NETFILTER`, see
    /// netlink(7)) in the calling thread's network namespace.
    pub fn open_protocol(protocol: libc::c_int) -> Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if raw < 0 {
            return Err(nix::errno::Errno::last().into());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // Ask for error text (EXT_ACK) and for errors that do not echo our whole request
        // (CAP_ACK). Both are optional; old kernels just ignore the failure here.
        for opt in [NETLINK_EXT_ACK, NETLINK_CAP_ACK] {
            let one: libc::c_int = 1;
            // SAFETY: setsockopt with a pointer to a live c_int and its size.
            unsafe {
                libc::setsockopt(
                    raw,
                    SOL_NETLINK,
                    opt,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        // Never hang forever waiting for an answer.
        let timeout = libc::timeval {
            tv_sec: 5,
            tv_usec: 0,
        };
        // SAFETY: as above, with a live timeval.
        unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        Ok(Netlink {
            fd,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    fn send(&mut self, msg: &mut Message) -> Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let bytes = msg.finish(seq);
        // Destination: the kernel (port id 0), which is the default of an unconnected
        // netlink socket, so a plain send(2) is enough.
        // SAFETY: sending from a live buffer of the given length.
        let sent =
            unsafe { libc::send(self.fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
        if sent < 0 {
            return Err(nix::errno::Errno::last().into());
        }
        Ok(seq)
    }

    fn recv(&mut self) -> Result<usize> {
        loop {
            // SAFETY: receiving into our own buffer, bounded by its length. MSG_TRUNC makes the
            // kernel report the real length, so a too-small buffer is detected, not ignored.
            let got = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_TRUNC,
                )
            };
            if got < 0 {
                let errno = nix::errno::Errno::last();
                if errno == nix::errno::Errno::EINTR {
                    continue;
                }
                return Err(errno.into());
            }
            let got = got as usize;
            if got > self.buf.len() {
                return Err(nix::errno::Errno::EMSGSIZE.into());
            }
            return Ok(got);
        }
    }

    /// Sends a request with `NLM_F_ACK` and waits for the kernel's answer: an `NLMSG_ERROR`
    /// message whose errno is 0 on success.
    pub fn request(&mut self, msg: &mut Message) -> Result<()> {
        let flags = u16::from_ne_bytes([msg.buf[6], msg.buf[7]]);
        msg.buf[6..8].copy_from_slice(&(flags | NLM_F_ACK).to_ne_bytes());
        let seq = self.send(msg)?;
        loop {
            let len = self.recv()?;
            for m in messages(&self.buf[..len]) {
                if m.seq == seq && m.kind == NLMSG_ERROR {
                    return decode_error(m.flags, m.payload);
                }
            }
        }
    }

    /// Sends `msgs` in one `send(2)` (a netfilter batch is several messages in one datagram)
    /// and waits for the answer to each message that asks for an ack (`NLM_F_ACK`): `Ok`
    /// when every one is 0, else the first error.
    pub fn request_batch(&mut self, msgs: &mut [Message]) -> Result<()> {
        let mut bytes = Vec::new();
        let mut waiting = Vec::new();
        for msg in msgs.iter_mut() {
            self.seq = self.seq.wrapping_add(1);
            let flags = u16::from_ne_bytes([msg.buf[6], msg.buf[7]]);
            if flags & NLM_F_ACK != 0 {
                waiting.push(self.seq);
            }
            bytes.extend_from_slice(msg.finish(self.seq));
        }
        // SAFETY: sending from a live buffer of the given length.
        let sent =
            unsafe { libc::send(self.fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
        if sent < 0 {
            return Err(nix::errno::Errno::last().into());
        }
        while !waiting.is_empty() {
            let len = self.recv()?;
            for m in messages(&self.buf[..len]) {
                if m.kind == NLMSG_ERROR && waiting.contains(&m.seq) {
                    decode_error(m.flags, m.payload)?;
                    waiting.retain(|&s| s != m.seq);
                }
            }
        }
        Ok(())
    }

    /// Sends a dump request (`NLM_F_DUMP` is added) and returns the payloads of its replies of
    /// type `reply`, up to `NLMSG_DONE`.
    pub fn dump(&mut self, msg: &mut Message, reply: u16) -> Result<Vec<Vec<u8>>> {
        let flags = u16::from_ne_bytes([msg.buf[6], msg.buf[7]]);
        msg.buf[6..8].copy_from_slice(&(flags | NLM_F_DUMP).to_ne_bytes());
        self.collect(msg, reply, true)
    }

    /// Sends a request and collects the payloads of the replies of type `reply`: one for a
    /// plain GET, many for a dump (`NLM_F_DUMP`), which ends with `NLMSG_DONE`.
    fn collect(&mut self, msg: &mut Message, reply: u16, dump: bool) -> Result<Vec<Vec<u8>>> {
        let seq = self.send(msg)?;
        let mut out = Vec::new();
        loop {
            let len = self.recv()?;
            for m in messages(&self.buf[..len]) {
                if m.seq != seq {
                    continue;
                }
                match m.kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        decode_error(m.flags, m.payload)?;
                        return Ok(out);
                    }
                    kind if kind == reply => {
                        out.push(m.payload.to_vec());
                        if !dump {
                            return Ok(out);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    // ANCHOR: link_index
    /// The index of the link called `name`, or `None` when there is none (`ENODEV`).
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        let mut msg = Message::new(RTM_GETLINK, 0);
        msg.raw(&ifinfomsg(0, 0, 0)).attr_str(IFLA_IFNAME, name);
        match self.collect(&mut msg, RTM_NEWLINK, false) {
            Ok(replies) => Ok(replies.first().and_then(|p| parse_link(p)).map(|l| l.index)),
            Err(e) if e.errno == nix::errno::Errno::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }
    // ANCHOR_END: link_index

    // ANCHOR: create_bridge
    /// `ip link add NAME type bridge`: RTM_NEWLINK with IFLA_INFO_KIND "bridge".
    pub fn create_bridge(&mut self, name: &str) -> Result<()> {
        explain::step(
            "create the bridge",
            || format!("sendmsg(RTM_NEWLINK, ifname={name:?}, kind=\"bridge\")"),
            Chapter::Networking,
        );
        let mut msg = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        msg.raw(&ifinfomsg(0, 0, 0))
            .attr_str(IFLA_IFNAME, name)
            .begin_nested(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "bridge")
            .end_nested();
        self.request(&mut msg)
    }
    // ANCHOR_END: create_bridge

    // ANCHOR: create_veth
    /// Creates a veth pair in one message: `host` here, attached to `master` and up, and `peer`
    /// (still down) created directly inside the namespace `peer_netns` (IFLA_NET_NS_FD on the
    /// peer). Making the peer in place avoids moving it afterwards, which costs the kernel an
    /// RCU grace period per move (dev_change_net_namespace).
    pub fn create_veth(
        &mut self,
        host: &str,
        peer: &str,
        peer_netns: BorrowedFd<'_>,
        master: Option<u32>,
        mtu: Option<u32>,
    ) -> Result<()> {
        let ns_fd: RawFd = peer_netns.as_raw_fd();
        explain::trace!(Networking: "create veth pair, peer in netns" => "sendmsg(RTM_NEWLINK, \
            ifname={host:?}, kind=\"veth\", peer={peer:?}, peer.net_ns_fd={ns_fd}, master={})",
            master.map_or("-".into(), |m| m.to_string()));
        let mut msg = veth_message(host, peer, ns_fd, master, mtu, None);
        self.request(&mut msg)
    }
    // ANCHOR_END: create_veth

    /// [`Netlink::create_veth`] with the peer's MAC address given (`IFLA_ADDRESS` on the
    /// peer), so the peer never needs a request of its own for it.
    pub fn create_veth_with_mac(
        &mut self,
        host: &str,
        peer: &str,
        peer_netns: BorrowedFd<'_>,
        master: Option<u32>,
        peer_mac: [u8; 6],
    ) -> Result<()> {
        let ns_fd: RawFd = peer_netns.as_raw_fd();
        explain::step(
            "create veth pair, peer in netns",
            || {
                format!(
                    "sendmsg(RTM_NEWLINK, ifname={host:?}, kind=\"veth\", peer={peer:?}, peer.net_ns_fd={ns_fd}, peer.address={}, master={})",
                    format_mac(peer_mac),
                    master.map_or("-".into(), |m| m.to_string())
                )
            },
            Chapter::Networking,
        );
        let mut msg = veth_message(host, peer, ns_fd, master, None, Some(peer_mac));
        self.request(&mut msg)
    }

    /// `ip link add HOST type veth peer name PEER`, both ends here and down (for lessons and
    /// tests that want to move an end themselves).
    pub fn create_veth_pair(&mut self, host: &str, peer: &str) -> Result<()> {
        explain::step(
            "create a veth pair",
            || format!("sendmsg(RTM_NEWLINK, ifname={host:?}, kind=\"veth\", peer={peer:?})"),
            Chapter::Networking,
        );
        let mut msg = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        msg.raw(&ifinfomsg(0, 0, 0))
            .attr_str(IFLA_IFNAME, host)
            .begin_nested(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "veth")
            .begin_nested(IFLA_INFO_DATA)
            .begin_nested(VETH_INFO_PEER)
            .raw(&ifinfomsg(0, 0, 0))
            .attr_str(IFLA_IFNAME, peer)
            .end_nested()
            .end_nested()
            .end_nested();
        self.request(&mut msg)
    }

    // ANCHOR: set_up
    /// `ip link set dev INDEX up` (and `master M` when given): RTM_NEWLINK on an existing index.
    pub fn set_up(&mut self, index: u32, name: &str, master: Option<u32>) -> Result<()> {
        explain::step(
            "bring the link up",
            || match master {
                Some(m) => {
                    format!("sendmsg(RTM_NEWLINK, {name:?} index={index}, IFF_UP, master={m})")
                }
                None => format!("sendmsg(RTM_NEWLINK, {name:?} index={index}, IFF_UP)"),
            },
            Chapter::Networking,
        );
        let mut msg = Message::new(RTM_NEWLINK, 0);
        msg.raw(&ifinfomsg(index, IFF_UP, IFF_UP));
        if let Some(master) = master {
            msg.attr_u32(IFLA_MASTER, master);
        }
        self.request(&mut msg)
    }
    // ANCHOR_END: set_up

    /// `ip link set dev INDEX address MAC`: RTM_NEWLINK with IFLA_ADDRESS.
    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> Result<()> {
        explain::step(
            "set the link's MAC address",
            || {
                format!(
                    "sendmsg(RTM_NEWLINK, index={index}, IFLA_ADDRESS={})",
                    format_mac(mac)
                )
            },
            Chapter::Networking,
        );
        let mut msg = Message::new(RTM_NEWLINK, 0);
        msg.raw(&ifinfomsg(index, 0, 0)).attr(IFLA_ADDRESS, &mac);
        self.request(&mut msg)
    }

    /// `bridge link set dev INDEX hairpin on`: the bridge may send a frame back out of the
    /// port it came in on, so a container reaches its own published port through the host's
    /// address (its DNAT'ed packet returns through its own veth). Docker sets it on every
    /// port when its userland proxy is off. An `RTM_SETLINK` of family `AF_BRIDGE` with
    /// `IFLA_PROTINFO { IFLA_BRPORT_MODE = 1 }` (rtnetlink(7), `br_setport`).
    pub fn set_hairpin(&mut self, index: u32) -> Result<()> {
        explain::step(
            "let the bridge port send frames back where they came from (hairpin)",
            || format!("sendmsg(RTM_SETLINK, AF_BRIDGE, index={index}, IFLA_BRPORT_MODE=1)"),
            Chapter::Networking,
        );
        let mut info = ifinfomsg(index, 0, 0);
        info[0] = AF_BRIDGE;
        let mut msg = Message::new(RTM_SETLINK, 0);
        msg.raw(&info)
            .begin_nested(IFLA_PROTINFO | NLA_F_NESTED)
            .attr(IFLA_BRPORT_MODE, &[1])
            .end_nested();
        self.request(&mut msg)
    }

    /// `ip link del NAME`. Deleting one end of a veth pair deletes both.
    pub fn delete_link(&mut self, name: &str) -> Result<()> {
        explain::step(
            "delete the link",
            || format!("sendmsg(RTM_DELLINK, ifname={name:?})"),
            Chapter::Networking,
        );
        let mut msg = Message::new(RTM_DELLINK, 0);
        msg.raw(&ifinfomsg(0, 0, 0)).attr_str(IFLA_IFNAME, name);
        self.request(&mut msg)
    }

    // ANCHOR: add_address
    /// `ip addr add ADDR/PREFIX dev INDEX`. For IPv4, IFA_LOCAL is the interface's own address;
    /// IFA_ADDRESS is the same on a broadcast link (it is the peer only on point-to-point).
    pub fn add_address(&mut self, index: u32, addr: Ipv4Addr, prefix: u8) -> Result<()> {
        explain::step(
            "assign the address",
            || format!("sendmsg(RTM_NEWADDR, index={index}, {addr}/{prefix})"),
            Chapter::Networking,
        );
        let broadcast = if prefix >= 31 {
            addr
        } else {
            Ipv4Addr::from(u32::from(addr) | (u32::MAX >> prefix))
        };
        let mut msg = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        msg.raw(&ifaddrmsg(prefix, index))
            .attr(IFA_LOCAL, &addr.octets())
            .attr(IFA_ADDRESS, &addr.octets())
            .attr(IFA_BROADCAST, &broadcast.octets());
        self.request(&mut msg)
    }
    // ANCHOR_END: add_address

    // ANCHOR: add_default_route
    /// `ip route add default via GATEWAY dev INDEX`: a route to 0.0.0.0/0 in the main table.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr, index: u32) -> Result<()> {
        explain::step(
            "add the default route",
            || format!("sendmsg(RTM_NEWROUTE, 0.0.0.0/0 via {gateway} oif={index})"),
            Chapter::Networking,
        );
        let mut msg = Message::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        msg.raw(&rtmsg(0))
            .attr(RTA_GATEWAY, &gateway.octets())
            .attr_u32(RTA_OIF, index);
        self.request(&mut msg)
    }
    // ANCHOR_END: add_default_route

    /// `ip route replace default via GATEWAY dev INDEX`: the default route, whatever it was.
    pub fn replace_default_route(&mut self, gateway: Ipv4Addr, index: u32) -> Result<()> {
        explain::step(
            "replace the default route",
            || format!("sendmsg(RTM_NEWROUTE, NLM_F_REPLACE, 0.0.0.0/0 via {gateway} oif={index})"),
            Chapter::Networking,
        );
        let mut msg = Message::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
        msg.raw(&rtmsg(0))
            .attr(RTA_GATEWAY, &gateway.octets())
            .attr_u32(RTA_OIF, index);
        self.request(&mut msg)
    }

    /// Every link in this namespace (`ip link show`).
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let mut msg = Message::new(RTM_GETLINK, NLM_F_DUMP);
        msg.raw(&ifinfomsg(0, 0, 0));
        let replies = self.collect(&mut msg, RTM_NEWLINK, true)?;
        Ok(replies.iter().filter_map(|p| parse_link(p)).collect())
    }

    /// Every IPv4 address in this namespace (`ip -4 addr show`).
    pub fn addresses(&mut self) -> Result<Vec<Address>> {
        let mut msg = Message::new(RTM_GETADDR, NLM_F_DUMP);
        msg.raw(&ifaddrmsg(0, 0));
        let replies = self.collect(&mut msg, RTM_NEWADDR, true)?;
        Ok(replies.iter().filter_map(|p| parse_address(p)).collect())
    }

    /// The IPv4 routes of the main table (`ip -4 route show`).
    pub fn routes(&mut self) -> Result<Vec<Route>> {
        let mut msg = Message::new(RTM_GETROUTE, NLM_F_DUMP);
        msg.raw(&rtmsg(0));
        let replies = self.collect(&mut msg, RTM_NEWROUTE, true)?;
        Ok(replies
            .iter()
            .filter_map(|p| parse_route(p))
            .filter(|r| r.table == RT_TABLE_MAIN as u32)
            .collect())
    }
}

/// One link, as a dump reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub up: bool,
    pub master: Option<u32>,
    /// "bridge", "veth", ... (`None` for devices without a link kind, like `lo`).
    pub kind: Option<String>,
}

/// One IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    pub address: Ipv4Addr,
    pub prefix: u8,
}

/// One IPv4 route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub oif: Option<u32>,
    pub table: u32,
}

/// `aa:bb:cc:dd:ee:ff`, as `ip link` prints a MAC address.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

fn ipv4(bytes: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(bytes).ok().map(Ipv4Addr::from)
}

fn string(bytes: &[u8]) -> String {
    CStr::from_bytes_until_nul(bytes)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_else(|_| String::from_utf8_lossy(bytes).into_owned())
}

fn parse_link(payload: &[u8]) -> Option<Link> {
    let header = payload.get(..16)?;
    let index = u32::from_ne_bytes(header[4..8].try_into().ok()?);
    let flags = u32::from_ne_bytes(header[8..12].try_into().ok()?);
    let mut link = Link {
        index,
        name: String::new(),
        up: flags & IFF_UP != 0,
        master: None,
        kind: None,
    };
    for (kind, value) in attributes(&payload[16..]) {
        match kind {
            IFLA_IFNAME => link.name = string(value),
            IFLA_MASTER => link.master = value.try_into().ok().map(u32::from_ne_bytes),
            IFLA_LINKINFO => {
                for (inner, v) in attributes(value) {
                    if inner == IFLA_INFO_KIND {
                        link.kind = Some(string(v));
                    }
                }
            }
            _ => {}
        }
    }
    Some(link)
}

fn parse_address(payload: &[u8]) -> Option<Address> {
    let header = payload.get(..8)?;
    if header[0] != AF_INET {
        return None;
    }
    let mut local = None;
    let mut address = None;
    for (kind, value) in attributes(&payload[8..]) {
        match kind {
            IFA_LOCAL => local = ipv4(value),
            IFA_ADDRESS => address = ipv4(value),
            _ => {}
        }
    }
    Some(Address {
        index: u32::from_ne_bytes(header[4..8].try_into().ok()?),
        address: local.or(address)?,
        prefix: header[1],
    })
}

fn parse_route(payload: &[u8]) -> Option<Route> {
    let header = payload.get(..12)?;
    if header[0] != AF_INET || header[7] != RTN_UNICAST {
        return None;
    }
    let mut route = Route {
        destination: Ipv4Addr::UNSPECIFIED,
        prefix: header[1],
        gateway: None,
        oif: None,
        table: header[4] as u32,
    };
    for (kind, value) in attributes(&payload[12..]) {
        match kind {
            RTA_DST => route.destination = ipv4(value)?,
            RTA_GATEWAY => route.gateway = ipv4(value),
            RTA_OIF => route.oif = value.try_into().ok().map(u32::from_ne_bytes),
            RTA_TABLE => route.table = value.try_into().ok().map(u32::from_ne_bytes)?,
            _ => {}
        }
    }
    Some(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes([b[at], b[at + 1]])
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn the_header_carries_length_type_flags_and_sequence() {
        let mut msg = Message::new(RTM_GETLINK, 0);
        msg.raw(&ifinfomsg(7, 0, 0));
        let bytes = msg.finish(42).to_vec();
        assert_eq!(bytes.len(), 32);
        assert_eq!(u32_at(&bytes, 0), 32);
        assert_eq!(u16_at(&bytes, 4), RTM_GETLINK);
        assert_eq!(u16_at(&bytes, 6), NLM_F_REQUEST);
        assert_eq!(u32_at(&bytes, 8), 42);
        assert_eq!(
            u32_at(&bytes, 20),
            7,
            "ifi_index follows family, pad and type"
        );
    }

    #[test]
    fn a_string_attribute_is_nul_terminated_and_padded_to_four_bytes() {
        let mut msg = Message::new(RTM_NEWLINK, 0);
        msg.attr_str(IFLA_IFNAME, "eth0");
        let bytes = msg.finish(1).to_vec();
        // 4-byte attribute header + "eth0\0" = 9, padded to 12.
        assert_eq!(u16_at(&bytes, 16), 9);
        assert_eq!(u16_at(&bytes, 18), IFLA_IFNAME);
        assert_eq!(&bytes[20..25], b"eth0\0");
        assert_eq!(bytes.len(), 16 + 12);
    }

    #[test]
    fn nested_attributes_get_their_total_length() {
        let mut msg = Message::new(RTM_NEWLINK, 0);
        msg.begin_nested(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "veth")
            .begin_nested(IFLA_INFO_DATA)
            .attr_u32(99, 5)
            .end_nested()
            .end_nested();
        let bytes = msg.finish(1).to_vec();
        let outer: Vec<_> = attributes(&bytes[16..]).collect();
        assert_eq!(outer.len(), 1);
        assert_eq!(outer[0].0, IFLA_LINKINFO);
        let inner: Vec<_> = attributes(outer[0].1).collect();
        assert_eq!(inner[0], (IFLA_INFO_KIND, &b"veth\0"[..]));
        assert_eq!(inner[1].0, IFLA_INFO_DATA);
        let data: Vec<_> = attributes(inner[1].1).collect();
        assert_eq!(data, vec![(99, &5u32.to_ne_bytes()[..])]);
    }

    #[test]
    fn an_ack_is_an_error_message_with_errno_zero() {
        assert_eq!(decode_error(0, &[0, 0, 0, 0]), Ok(()));
    }

    #[test]
    fn an_error_carries_errno_and_the_extended_ack_text() {
        // errno -EEXIST, our capped request header (16 bytes), then NLMSGERR_ATTR_MSG.
        let mut payload = (-libc::EEXIST).to_ne_bytes().to_vec();
        payload.extend_from_slice(&[0u8; 16]);
        let text = b"File exists\0";
        payload.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes());
        payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        payload.extend_from_slice(text);
        let err = decode_error(NLM_F_ACK_TLVS | NLM_F_CAPPED, &payload).unwrap_err();
        assert_eq!(err.errno, nix::errno::Errno::EEXIST);
        assert_eq!(err.message.as_deref(), Some("File exists"));
    }

    #[test]
    fn a_link_dump_entry_parses() {
        let mut msg = Message::new(RTM_NEWLINK, 0);
        msg.raw(&ifinfomsg(5, IFF_UP, 0))
            .attr_str(IFLA_IFNAME, "br0")
            .attr_u32(IFLA_MASTER, 3)
            .begin_nested(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "bridge")
            .end_nested();
        let bytes = msg.finish(1).to_vec();
        let link = parse_link(&bytes[16..]).unwrap();
        assert_eq!(
            link,
            Link {
                index: 5,
                name: "br0".into(),
                up: true,
                master: Some(3),
                kind: Some("bridge".into())
            }
        );
    }

    #[test]
    fn an_address_and_a_route_parse() {
        let mut msg = Message::new(RTM_NEWADDR, 0);
        msg.raw(&ifaddrmsg(24, 2))
            .attr(IFA_LOCAL, &[10, 0, 0, 2])
            .attr(IFA_ADDRESS, &[10, 0, 0, 2]);
        let bytes = msg.finish(1).to_vec();
        assert_eq!(
            parse_address(&bytes[16..]),
            Some(Address {
                index: 2,
                address: Ipv4Addr::new(10, 0, 0, 2),
                prefix: 24
            })
        );
        let mut msg = Message::new(RTM_NEWROUTE, 0);
        msg.raw(&rtmsg(0))
            .attr(RTA_GATEWAY, &[10, 0, 0, 1])
            .attr_u32(RTA_OIF, 2)
            .attr_u32(RTA_TABLE, 254);
        let bytes = msg.finish(1).to_vec();
        assert_eq!(
            parse_route(&bytes[16..]),
            Some(Route {
                destination: Ipv4Addr::UNSPECIFIED,
                prefix: 0,
                gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
                oif: Some(2),
                table: 254
            })
        );
    }

    #[test]
    fn truncated_input_stops_the_iterators_instead_of_panicking() {
        assert_eq!(attributes(&[8, 0, 1]).count(), 0);
        assert_eq!(attributes(&[200, 0, 1, 0, 0, 0]).count(), 0);
        assert_eq!(messages(&[1, 2, 3]).count(), 0);
        assert!(parse_link(&[0; 4]).is_none());
    }
}
