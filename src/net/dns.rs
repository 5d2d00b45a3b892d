//! The embedded DNS resolver's answers: what a container on a user network hears back when it
//! asks `127.0.0.11` for a name (the server that listens there is [`super::resolver`]).
//!
//! The rules are Docker's (moby `libnetwork/resolver.go`): an `A` question for a container
//! name or `--network-alias` on the same network, compared case-insensitively, alone or
//! followed by `.NETWORK`, is answered from the network's members with TTL 600, recursion
//! available and not authoritative; `AAAA` and `MX` questions for such a name get an empty
//! `NOERROR` (the name exists, it has no IPv6 address and no mail exchanger); `PTR` questions
//! for a member's address get `NAME.NETWORK.`. Everything else is forwarded, verbatim, to the
//! upstream servers in turn, skipping one that answers `SERVFAIL` or `REFUSED`; when none
//! answers (or the network is `--internal`, which has no upstream), the answer is `SERVFAIL`.
//! A message with no question gets no answer, one that does not parse gets `FORMERR`.
//!
//! DNS messages are read and written by `hickory-proto` (RFC 1035).

use anyhow::Result;
use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// The address every container on a user network has as its only `nameserver`.
pub const RESOLVER_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// The TTL of an answer from the network's own records, in seconds (Docker's `respTTL`).
pub const TTL: u32 = 600;

/// How long one upstream server has to answer before the next is tried (Docker's
/// `extIOTimeout`, 4 s).
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(4);

/// One member of a network as the resolver knows it: the names it answers to (container name,
/// short ID, aliases) and its IPv4 address on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub names: Vec<String>,
    pub addr: Ipv4Addr,
}

/// A network's names: its own name (for `NAME.NETWORK` questions and `PTR` answers) and its
/// members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zone {
    pub network: String,
    pub hosts: Vec<Host>,
}

impl Zone {
    /// The addresses of `name` (with or without a trailing dot or a `.NETWORK` suffix),
    /// compared case-insensitively; `None` when no member has that name.
    pub fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let suffix = format!(".{}", self.network.to_ascii_lowercase());
        let bare = name.strip_suffix(&suffix).filter(|b| !b.is_empty());
        let found: Vec<Ipv4Addr> = self
            .hosts
            .iter()
            .filter(|h| {
                h.names.iter().any(|n| {
                    let n = n.to_ascii_lowercase();
                    n == name || bare == Some(n.as_str())
                })
            })
            .map(|h| h.addr)
            .collect();
        (!found.is_empty()).then_some(found)
    }

    /// The name of the member at `addr`, as `NAME.NETWORK`.
    pub fn reverse(&self, addr: Ipv4Addr) -> Option<String> {
        let host = self.hosts.iter().find(|h| h.addr == addr)?;
        let name = host.names.first()?;
        Some(format!("{name}.{}", self.network))
    }
}

/// Where a question the network cannot answer goes: given the query's bytes, the upstream's
/// answer, or `None` when no upstream answered.
pub type Upstream<'a> = &'a mut dyn FnMut(&[u8]) -> Option<Vec<u8>>;

// ANCHOR: answer
/// The response to the DNS query `query` (wire format, RFC 1035 section 4), from `zone` or
/// else from `upstream`. `None` means "send nothing" (a message with no question, or one too
/// short to carry an ID).
pub fn answer(query: &[u8], zone: &Zone, upstream: Upstream<'_>) -> Option<Vec<u8>> {
    answer_from(query, std::slice::from_ref(zone), upstream)
}

/// [`answer`] for a container on several user networks: the first of `zones` (in the order of
/// the container's networks) that knows the name answers, as Docker's resolver asks each of a
/// container's networks in turn before going upstream.
pub fn answer_from(query: &[u8], zones: &[Zone], upstream: Upstream<'_>) -> Option<Vec<u8>> {
    let request = match Message::from_vec(query) {
        Ok(m) => m,
        Err(_) => return format_error(query),
    };
    let question = request.queries.first()?.clone();
    if request.metadata.message_type != MessageType::Query {
        return None;
    }
    for zone in zones {
        if let Some(local) = answer_locally(&request, &question, zone) {
            return local.to_vec().ok();
        }
    }
    if let Some(reply) = upstream(query) {
        return Some(reply);
    }
    response(&request, ResponseCode::ServFail).to_vec().ok()
}
// ANCHOR_END: answer

/// The answer from the network's own records, or `None` when the question goes upstream.
fn answer_locally(request: &Message, question: &Query, zone: &Zone) -> Option<Message> {
    let name = question.name();
    let records: Vec<Record> = match question.query_type() {
        RecordType::A => {
            let addrs = zone.lookup(&name.to_ascii())?;
            let rdata = |a| RData::A(A(a));
            addrs
                .into_iter()
                .map(|a| Record::from_rdata(name.clone(), TTL, rdata(a)))
                .collect()
        }
        RecordType::AAAA | RecordType::MX => {
            zone.lookup(&name.to_ascii())?;
            Vec::new()
        }
        RecordType::PTR => {
            let addr = ptr_address(&name.to_ascii())?;
            let host = Name::from_ascii(format!("{}.", zone.reverse(addr)?)).ok()?;
            vec![Record::from_rdata(name.clone(), TTL, RData::PTR(PTR(host)))]
        }
        _ => return None,
    };
    let mut reply = response(request, ResponseCode::NoError);
    reply.answers = records;
    Some(reply)
}

/// The IPv4 address a `d.c.b.a.in-addr.arpa.` name stands for.
fn ptr_address(name: &str) -> Option<Ipv4Addr> {
    let lower = name.to_ascii_lowercase();
    let digits = lower.trim_end_matches('.').strip_suffix(".in-addr.arpa")?;
    let octets: Vec<u8> = digits
        .split('.')
        .map(|d| d.parse().ok())
        .collect::<Option<_>>()?;
    match octets[..] {
        [d, c, b, a] => Some(Ipv4Addr::new(a, b, c, d)),
        _ => None,
    }
}

/// A response to `request` with its ID, opcode, question and RD flag, RA set.
fn response(request: &Message, code: ResponseCode) -> Message {
    let mut reply = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    reply.metadata = Metadata::response_from_request(&request.metadata);
    reply.metadata.recursion_available = true;
    reply.metadata.response_code = code;
    reply.queries = request.queries.clone();
    if request.edns.is_some() {
        reply.edns = Some(Edns::new());
    }
    reply
}

/// `FORMERR` for a message that does not parse, when it is long enough to carry a header.
fn format_error(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let id = u16::from_be_bytes([query[0], query[1]]);
    Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
        .to_vec()
        .ok()
}

/// The upstream servers of a `resolv.conf` text (resolv.conf(5)): every `nameserver` line's
/// address on port 53, without loopback addresses (a loopback server on the host is out of
/// the container's reach, and Docker drops them too).
pub fn upstream_servers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            let ip: IpAddr = words.next()?.split('%').next()?.parse().ok()?;
            (!ip.is_loopback()).then_some(SocketAddr::new(ip, 53))
        })
        .collect()
}

/// Asks `servers` in turn, over UDP or TCP as the client asked, and returns the first answer
/// that is neither `SERVFAIL` nor `REFUSED` (Docker's `forwardExtDNS`). A server gets
/// [`UPSTREAM_TIMEOUT`]; `None` when none answered.
pub fn forward(servers: &[SocketAddr], query: &[u8], tcp: bool) -> Option<Vec<u8>> {
    servers.iter().find_map(|server| {
        let reply = if tcp {
            exchange_tcp(*server, query)
        } else {
            exchange_udp(*server, query)
        };
        let reply = reply.ok()?;
        let code = ResponseCode::from(0, reply.get(3)? & 0x0f);
        let failed = matches!(code, ResponseCode::ServFail | ResponseCode::Refused);
        (!failed).then_some(reply)
    })
}

fn exchange_udp(server: SocketAddr, query: &[u8]) -> Result<Vec<u8>> {
    let any: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(any)?;
    socket.connect(server)?;
    socket.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    socket.send(query)?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf)?;
        // A reply to another query (same socket, earlier retry) is not ours.
        if n >= 2 && query.len() >= 2 && buf[..2] == query[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

fn exchange_tcp(server: SocketAddr, query: &[u8]) -> Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&server, UPSTREAM_TIMEOUT)?;
    stream.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    stream.set_write_timeout(Some(UPSTREAM_TIMEOUT))?;
    write_tcp_message(&mut stream, query)?;
    Ok(read_tcp_message(&mut stream)?)
}

/// Reads one DNS-over-TCP message: a two-byte big-endian length, then the message
/// (RFC 1035 section 4.2.2).
pub fn read_tcp_message(stream: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut msg)?;
    Ok(msg)
}

/// Writes one DNS-over-TCP message (length prefix, then the bytes).
pub fn write_tcp_message(stream: &mut impl Write, msg: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(std::io::Error::other)?;
    let mut framed = Vec::with_capacity(msg.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(msg);
    stream.write_all(&framed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Zone {
        Zone {
            network: "appnet".into(),
            hosts: vec![
                Host {
                    names: vec!["web".into(), "0123456789ab".into(), "frontend".into()],
                    addr: Ipv4Addr::new(10, 89, 0, 2),
                },
                Host {
                    names: vec!["db".into(), "store".into()],
                    addr: Ipv4Addr::new(10, 89, 0, 3),
                },
                Host {
                    names: vec!["db2".into(), "store".into()],
                    addr: Ipv4Addr::new(10, 89, 0, 4),
                },
            ],
        }
    }

    fn query(name: &str, qtype: RecordType) -> Vec<u8> {
        let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.queries
            .push(Query::query(Name::from_ascii(name).unwrap(), qtype));
        m.to_vec().unwrap()
    }

    fn ask(name: &str, qtype: RecordType) -> (Message, bool) {
        let mut forwarded = false;
        let mut upstream = |_: &[u8]| {
            forwarded = true;
            None
        };
        let bytes = answer(&query(name, qtype), &zone(), &mut upstream).unwrap();
        (Message::from_vec(&bytes).unwrap(), forwarded)
    }

    fn a_records(m: &Message) -> Vec<Ipv4Addr> {
        m.answers
            .iter()
            .filter_map(|r| match r.data {
                RData::A(A(a)) => Some(a),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_container_name_is_answered_with_its_address() {
        let (m, forwarded) = ask("web.", RecordType::A);
        assert!(!forwarded);
        assert_eq!(m.metadata.id, 0x4242);
        assert_eq!(m.metadata.message_type, MessageType::Response);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.recursion_available && m.metadata.recursion_desired);
        assert!(!m.metadata.authoritative);
        assert_eq!(a_records(&m), vec![Ipv4Addr::new(10, 89, 0, 2)]);
        assert_eq!(m.answers[0].ttl, TTL);
        assert_eq!(m.answers[0].name.to_ascii(), "web.");
        assert_eq!(m.queries.len(), 1);
    }

    #[test]
    fn names_are_case_insensitive_and_the_answer_keeps_the_asked_case() {
        let (m, _) = ask("WeB.", RecordType::A);
        assert_eq!(a_records(&m), vec![Ipv4Addr::new(10, 89, 0, 2)]);
        assert_eq!(m.answers[0].name.to_ascii(), "WeB.");
    }

    #[test]
    fn aliases_short_ids_and_name_dot_network_resolve() {
        for name in [
            "frontend.",
            "0123456789ab.",
            "web.appnet.",
            "FRONTEND.AppNet.",
        ] {
            let (m, forwarded) = ask(name, RecordType::A);
            assert!(!forwarded, "{name}");
            assert_eq!(a_records(&m), vec![Ipv4Addr::new(10, 89, 0, 2)], "{name}");
        }
    }

    #[test]
    fn a_shared_alias_answers_every_member_that_has_it() {
        let (m, _) = ask("store.", RecordType::A);
        let mut got = a_records(&m);
        got.sort();
        assert_eq!(
            got,
            vec![Ipv4Addr::new(10, 89, 0, 3), Ipv4Addr::new(10, 89, 0, 4)]
        );
    }

    #[test]
    fn aaaa_and_mx_for_a_member_are_empty_noerror() {
        for t in [RecordType::AAAA, RecordType::MX] {
            let (m, forwarded) = ask("db.", t);
            assert!(!forwarded);
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert!(m.answers.is_empty());
        }
    }

    #[test]
    fn ptr_of_a_member_gives_name_dot_network() {
        let (m, forwarded) = ask("3.0.89.10.in-addr.arpa.", RecordType::PTR);
        assert!(!forwarded);
        match &m.answers[0].data {
            RData::PTR(PTR(n)) => assert_eq!(n.to_ascii(), "db.appnet."),
            other => panic!("not a PTR: {other:?}"),
        }
    }

    #[test]
    fn unknown_names_and_other_types_are_forwarded_verbatim() {
        let reply = b"upstream's bytes".to_vec();
        for (name, t) in [
            ("example.org.", RecordType::A),
            ("web.othernet.", RecordType::A),
            ("9.0.89.10.in-addr.arpa.", RecordType::PTR),
            ("web.", RecordType::TXT),
        ] {
            let q = query(name, t);
            let mut seen = Vec::new();
            let mut upstream = |bytes: &[u8]| {
                seen = bytes.to_vec();
                Some(reply.clone())
            };
            let got = answer(&q, &zone(), &mut upstream);
            assert_eq!(got.as_deref(), Some(&reply[..]), "{name}");
            assert_eq!(seen, q, "{name}");
        }
    }

    #[test]
    fn no_upstream_answer_is_servfail() {
        let (m, forwarded) = ask("example.org.", RecordType::A);
        assert!(forwarded);
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(m.metadata.id, 0x4242);
        assert_eq!(m.queries[0].name().to_ascii(), "example.org.");
    }

    #[test]
    fn garbage_gets_formerr_or_nothing() {
        let mut never = |_: &[u8]| -> Option<Vec<u8>> { panic!("forwarded garbage") };
        assert_eq!(answer(b"\x01", &zone(), &mut never), None);
        let bytes = answer(b"\xab\xcd\x01\x00\x00\x05garbage!", &zone(), &mut never).unwrap();
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(m.metadata.id, 0xabcd);
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        let mut no_question = Message::new(7, MessageType::Query, OpCode::Query);
        no_question.metadata.recursion_desired = true;
        let q = no_question.to_vec().unwrap();
        assert_eq!(answer(&q, &zone(), &mut never), None);
    }

    #[test]
    fn upstream_servers_skip_loopback_and_comments() {
        let conf = "# generated\nsearch example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.53\n\
                    nameserver ::1\nnameserver 2001:db8::53\nnameserver fe80::1%eth0\noptions ndots:2\n";
        let got: Vec<String> = upstream_servers(conf)
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(got, ["192.0.2.53:53", "[2001:db8::53]:53", "[fe80::1]:53"]);
    }

    #[test]
    fn tcp_framing_round_trips() {
        let mut buf = Vec::new();
        write_tcp_message(&mut buf, b"abc").unwrap();
        assert_eq!(buf, b"\x00\x03abc");
        assert_eq!(read_tcp_message(&mut &buf[..]).unwrap(), b"abc");
    }
}
