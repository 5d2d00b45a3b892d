//! Deleting `iptables-nft` rules over `NETLINK_NETFILTER`, without running iptables.
//!
//! `iptables-nft` keeps its rules in nf_tables: table `nat` of family `ip` holds chains
//! `PREROUTING`, `OUTPUT`, ..., and every rule there has a handle, a number unique in its
//! table. `-m comment --comment TEXT` becomes an `xt` match expression named `comment` whose
//! data is the text (newer iptables also put it in the rule's user data). So the rules that
//! carry one of our comments can be found with one dump per chain and deleted by handle in one
//! batch: a `sendmsg` and its acks, where `iptables-restore` is a fork and exec that loads
//! the whole table. The wire format is nfnetlink's (include/uapi/linux/netfilter/nfnetlink.h
//! and nf_tables.h): the 16-byte `nlmsghdr`, a 4-byte `nfgenmsg` (family, version, resource
//! id), then attributes; the type is `NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_*`.
//!
//! ```text
//! NFNL_MSG_BATCH_BEGIN  { nfgenmsg { AF_UNSPEC, 0, res_id=NFNL_SUBSYS_NFTABLES } }
//! NFT_MSG_DELRULE       { nfgenmsg { NFPROTO_IPV4 } NFTA_RULE_TABLE "nat" NFTA_RULE_CHAIN "OUTPUT" NFTA_RULE_HANDLE 42 }
//! NFNL_MSG_BATCH_END    { nfgenmsg { AF_UNSPEC, 0, res_id=NFNL_SUBSYS_NFTABLES } }
//! ```
//!
//! The batch is one transaction: every rule goes, or (one is missing) none does.

use super::netlink::{self, Message, NLM_F_ACK, Netlink};
use anyhow::{Context, Result};
use std::collections::BTreeMap;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
const NFT_MSG_NEWRULE: u16 = NFNL_SUBSYS_NFTABLES << 8 | 6;
const NFT_MSG_GETRULE: u16 = NFNL_SUBSYS_NFTABLES << 8 | 7;
const NFT_MSG_DELRULE: u16 = NFNL_SUBSYS_NFTABLES << 8 | 8;
const NFPROTO_IPV4: u8 = 2;

const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_MATCH_NAME: u16 = 1;
const NFTA_MATCH_INFO: u16 = 3;
/// libnftnl's user-data record type for a rule's comment (`NFTNL_UDATA_RULE_COMMENT`).
const UDATA_RULE_COMMENT: u8 = 0;

/// `struct nfgenmsg` (4 bytes): address family, version (`NFNETLINK_V0`), resource id (big
/// endian; the subsystem for batch messages).
fn nfgenmsg(family: u8, res_id: u16) -> [u8; 4] {
    let id = res_id.to_be_bytes();
    [family, 0, id[0], id[1]]
}

/// One rule of a chain as the kernel lists it: its handle and its comment, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainRule {
    pub handle: u64,
    pub comment: Option<String>,
}

/// The rules of `table`/`chain` (family `ip`), in chain order: one `NFT_MSG_GETRULE` dump
/// filtered by table and chain.
pub fn chain_rules(nl: &mut Netlink, table: &str, chain: &str) -> netlink::Result<Vec<ChainRule>> {
    let mut msg = Message::new(NFT_MSG_GETRULE, 0);
    msg.raw(&nfgenmsg(NFPROTO_IPV4, 0))
        .attr_str(NFTA_RULE_TABLE, table)
        .attr_str(NFTA_RULE_CHAIN, chain);
    let replies = nl.dump(&mut msg, NFT_MSG_NEWRULE)?;
    Ok(replies.iter().filter_map(|p| parse_rule(p)).collect())
}

/// Reads a rule's handle and comment from an `NFT_MSG_NEWRULE` payload.
fn parse_rule(payload: &[u8]) -> Option<ChainRule> {
    let mut rule = ChainRule {
        handle: 0,
        comment: None,
    };
    let mut has_handle = false;
    for (kind, value) in netlink::attributes(payload.get(4..)?) {
        match kind {
            NFTA_RULE_HANDLE => {
                rule.handle = u64::from_be_bytes(value.try_into().ok()?);
                has_handle = true;
            }
            NFTA_RULE_EXPRESSIONS if rule.comment.is_none() => {
                rule.comment = comment_match(value);
            }
            NFTA_RULE_USERDATA if rule.comment.is_none() => {
                rule.comment = comment_udata(value);
            }
            _ => {}
        }
    }
    has_handle.then_some(rule)
}

/// The text of an `xt` match named `comment` among a rule's expressions (its data is
/// `struct xt_comment_info`: the text, NUL-padded).
fn comment_match(expressions: &[u8]) -> Option<String> {
    for (_, elem) in netlink::attributes(expressions).filter(|(k, _)| *k == NFTA_LIST_ELEM) {
        let mut attrs = netlink::attributes(elem);
        let is_match = attrs.any(|(k, v)| k == NFTA_EXPR_NAME && v == b"match\0");
        let data = netlink::attributes(elem).find(|(k, _)| *k == NFTA_EXPR_DATA);
        let Some((_, data)) = data.filter(|_| is_match) else {
            continue;
        };
        let field = |want| netlink::attributes(data).find(|(k, _)| *k == want);
        if field(NFTA_MATCH_NAME).is_some_and(|(_, n)| n == b"comment\0") {
            return field(NFTA_MATCH_INFO).map(|(_, info)| c_text(info));
        }
    }
    None
}

/// The comment record of a rule's user data: records of `u8` type, `u8` length, value.
fn comment_udata(mut data: &[u8]) -> Option<String> {
    while data.len() >= 2 {
        let (kind, len) = (data[0], data[1] as usize);
        let value = data.get(2..2 + len)?;
        if kind == UDATA_RULE_COMMENT {
            return Some(c_text(value));
        }
        data = &data[2 + len..];
    }
    None
}

/// Text up to the first NUL.
fn c_text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

// ANCHOR: delete_commented
/// Deletes, in one nf_tables transaction, the `iptables-nft` rules of `table` named by
/// `wanted` (chain, comment) pairs, one kernel rule per pair. Returns `Ok(false)`, deleting
/// nothing, unless every (chain, comment) has exactly as many rules in the kernel as pairs
/// in `wanted`, so a rule someone else added with the same comment is never taken, and a
/// rule already gone is left for the caller to confirm.
pub fn delete_commented(table: &str, wanted: &[(String, String)]) -> Result<bool> {
    let mut nl = Netlink::open_protocol(libc::NETLINK_NETFILTER)
        .context("opening a NETLINK_NETFILTER socket")?;
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (chain, comment) in wanted {
        *counts.entry((chain, comment)).or_default() += 1;
    }
    let mut handles = Vec::new();
    let mut listed: BTreeMap<&str, Vec<ChainRule>> = BTreeMap::new();
    for (&(chain, comment), &count) in &counts {
        if !listed.contains_key(chain) {
            let rules = chain_rules(&mut nl, table, chain)
                .with_context(|| format!("listing nf_tables chain {table} {chain}"))?;
            listed.insert(chain, rules);
        }
        let found: Vec<u64> = listed[chain]
            .iter()
            .filter(|r| r.comment.as_deref() == Some(comment))
            .map(|r| r.handle)
            .collect();
        if found.len() != count {
            return Ok(false);
        }
        handles.extend(found.into_iter().map(|h| (chain, h)));
    }
    delete_handles(&mut nl, table, &handles)?;
    Ok(true)
}
// ANCHOR_END: delete_commented

// ANCHOR: delete_handles
/// Deletes the rules at `handles` ((chain, handle) pairs) of `table` in one batch:
/// `BATCH_BEGIN`, one `NFT_MSG_DELRULE` each (acked), `BATCH_END`, sent in one `sendmsg`.
fn delete_handles(nl: &mut Netlink, table: &str, handles: &[(&str, u64)]) -> Result<()> {
    let mut msgs = vec![batch_message(NFNL_MSG_BATCH_BEGIN)];
    for &(chain, handle) in handles {
        let mut msg = Message::new(NFT_MSG_DELRULE, NLM_F_ACK);
        msg.raw(&nfgenmsg(NFPROTO_IPV4, 0))
            .attr_str(NFTA_RULE_TABLE, table)
            .attr_str(NFTA_RULE_CHAIN, chain)
            .attr(NFTA_RULE_HANDLE, &handle.to_be_bytes());
        msgs.push(msg);
    }
    msgs.push(batch_message(NFNL_MSG_BATCH_END));
    nl.request_batch(&mut msgs)
        .with_context(|| format!("deleting rules of nf_tables table ip {table}"))
}
// ANCHOR_END: delete_handles

/// Nested attributes carry this flag on the wire, as libnftnl sets it.
const NLA_F_NESTED: u16 = 0x8000;
const NLM_F_CREATE: u16 = 0x400;
/// `NLM_F_APPEND`: the rule goes at the end of its chain (iptables' `-A`).
const NLM_F_APPEND: u16 = 0x800;
const NFTA_RULE_COMPAT: u16 = 5;
const NFTA_RULE_COMPAT_PROTO: u16 = 1;
const NFTA_RULE_COMPAT_FLAGS: u16 = 2;
const NFT_META_L4PROTO: u32 = 16;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_REG_1: u32 = 1;
const NFT_CMP_EQ: u32 = 0;
/// `XT_ADDRTYPE_LOCAL`, the `--dst-type LOCAL` bit of `struct xt_addrtype_info_v1`.
const XT_ADDRTYPE_LOCAL: u16 = 1 << 2;
/// `NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED`: `--to-destination ADDR:PORT`.
const NAT_RANGE_IP_AND_PORT: u32 = 0x1 | 0x2;

/// A DNAT rule as `iptables-nft` writes it into nf_tables (family `ip`, table `nat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnatRule<'a> {
    pub chain: &'a str,
    /// IP protocol number: 6 (tcp) or 17 (udp).
    pub protocol: u8,
    /// `-d ADDR/32`, else `-m addrtype --dst-type LOCAL`.
    pub host_ip: Option<std::net::Ipv4Addr>,
    pub host_port: u16,
    pub to: std::net::SocketAddrV4,
    pub comment: &'a str,
}

// ANCHOR: add_dnat_rules
/// Appends `rules` to table `nat` in one nf_tables transaction, each expression for
/// expression what `iptables-nft -t nat -A CHAIN -p P [-d IP/32] -m P --dport N [-m addrtype
/// --dst-type LOCAL] -m comment --comment C -j DNAT --to-destination A:P` writes, so
/// `iptables -S` reads them back as those commands and `iptables -D` deletes them. A chain
/// iptables has not made yet is the kernel's `ENOENT`, and nothing is added; an error with
/// no answer from the kernel (a timeout, `EAGAIN`) leaves the outcome unknown.
pub fn add_dnat_rules(rules: &[DnatRule<'_>]) -> netlink::Result<()> {
    let mut nl = Netlink::open_protocol(libc::NETLINK_NETFILTER)?;
    let mut msgs = vec![batch_message(NFNL_MSG_BATCH_BEGIN)];
    msgs.extend(rules.iter().map(dnat_message));
    msgs.push(batch_message(NFNL_MSG_BATCH_END));
    nl.request_batch(&mut msgs)
}
// ANCHOR_END: add_dnat_rules

/// `NFNL_MSG_BATCH_BEGIN` or `_END` for the nf_tables subsystem.
fn batch_message(kind: u16) -> Message {
    let mut msg = Message::new(kind, 0);
    msg.raw(&nfgenmsg(libc::AF_UNSPEC as u8, NFNL_SUBSYS_NFTABLES));
    msg
}

// ANCHOR: dnat_message
/// The `NFT_MSG_NEWRULE` of one DNAT rule: its matches, a counter and the DNAT target, plus
/// the protocol for the `xt` extensions (`NFTA_RULE_COMPAT`).
fn dnat_message(rule: &DnatRule<'_>) -> Message {
    let mut msg = Message::new(NFT_MSG_NEWRULE, NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND);
    msg.raw(&nfgenmsg(NFPROTO_IPV4, 0))
        .attr_str(NFTA_RULE_TABLE, "nat")
        .attr_str(NFTA_RULE_CHAIN, rule.chain)
        .begin_nested(NFTA_RULE_EXPRESSIONS | NLA_F_NESTED);
    expr_meta_l4proto(&mut msg);
    expr_cmp(&mut msg, &[rule.protocol]);
    if let Some(ip) = rule.host_ip {
        expr_payload(&mut msg, NFT_PAYLOAD_NETWORK_HEADER, 16, 4);
        expr_cmp(&mut msg, &ip.octets());
    }
    expr_payload(&mut msg, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
    expr_cmp(&mut msg, &rule.host_port.to_be_bytes());
    if rule.host_ip.is_none() {
        let mut info = [0u8; 8];
        info[2..4].copy_from_slice(&XT_ADDRTYPE_LOCAL.to_ne_bytes());
        expr_xt(&mut msg, "match", "addrtype", 1, &info);
    }
    let mut comment = [0u8; 256];
    let text = &rule.comment.as_bytes()[..rule.comment.len().min(255)];
    comment[..text.len()].copy_from_slice(text);
    expr_xt(&mut msg, "match", "comment", 0, &comment);
    expr_counter(&mut msg);
    expr_xt(&mut msg, "target", "DNAT", 2, &nat_range(rule.to));
    msg.end_nested()
        .begin_nested(NFTA_RULE_COMPAT | NLA_F_NESTED)
        .attr(
            NFTA_RULE_COMPAT_PROTO,
            &u32::from(rule.protocol).to_be_bytes(),
        )
        .attr(NFTA_RULE_COMPAT_FLAGS, &0u32.to_be_bytes())
        .end_nested();
    msg
}
// ANCHOR_END: dnat_message

/// `struct nf_nat_range2` for one address and port (48 bytes with `XT_ALIGN` padding).
fn nat_range(to: std::net::SocketAddrV4) -> [u8; 48] {
    let mut info = [0u8; 48];
    info[0..4].copy_from_slice(&NAT_RANGE_IP_AND_PORT.to_ne_bytes());
    info[4..8].copy_from_slice(&to.ip().octets());
    info[20..24].copy_from_slice(&to.ip().octets());
    info[36..38].copy_from_slice(&to.port().to_be_bytes());
    info[38..40].copy_from_slice(&to.port().to_be_bytes());
    info
}

/// One expression: a list element with the expression's name and its nested data.
fn expr(msg: &mut Message, name: &str, data: impl FnOnce(&mut Message)) {
    msg.begin_nested(NFTA_LIST_ELEM | NLA_F_NESTED)
        .attr_str(NFTA_EXPR_NAME, name)
        .begin_nested(NFTA_EXPR_DATA | NLA_F_NESTED);
    data(msg);
    msg.end_nested().end_nested();
}

/// `meta load l4proto => reg 1`.
fn expr_meta_l4proto(msg: &mut Message) {
    expr(msg, "meta", |m| {
        m.attr(2, &NFT_META_L4PROTO.to_be_bytes()) // NFTA_META_KEY
            .attr(1, &NFT_REG_1.to_be_bytes()); // NFTA_META_DREG
    });
}

/// `cmp eq reg 1 VALUE`.
fn expr_cmp(msg: &mut Message, value: &[u8]) {
    expr(msg, "cmp", |m| {
        m.attr(1, &NFT_REG_1.to_be_bytes()) // NFTA_CMP_SREG
            .attr(2, &NFT_CMP_EQ.to_be_bytes()) // NFTA_CMP_OP
            .begin_nested(3 | NLA_F_NESTED) // NFTA_CMP_DATA
            .attr(1, value) // NFTA_DATA_VALUE
            .end_nested();
    });
}

/// `payload load LEN b @ BASE header + OFFSET => reg 1`.
fn expr_payload(msg: &mut Message, base: u32, offset: u32, len: u32) {
    expr(msg, "payload", |m| {
        m.attr(1, &NFT_REG_1.to_be_bytes()) // NFTA_PAYLOAD_DREG
            .attr(2, &base.to_be_bytes()) // NFTA_PAYLOAD_BASE
            .attr(3, &offset.to_be_bytes()) // NFTA_PAYLOAD_OFFSET
            .attr(4, &len.to_be_bytes()); // NFTA_PAYLOAD_LEN
    });
}

/// An x_tables extension run by nf_tables (`match` or `target`): its name, revision and
/// the extension's own struct, as iptables-legacy would hand it to the kernel.
fn expr_xt(msg: &mut Message, kind: &str, name: &str, rev: u32, info: &[u8]) {
    expr(msg, kind, |m| {
        m.attr_str(1, name) // NFTA_MATCH_NAME / NFTA_TARGET_NAME
            .attr(2, &rev.to_be_bytes()) // _REV
            .attr(3, info); // _INFO
    });
}

/// `counter packets 0 bytes 0`, which iptables puts on every rule.
fn expr_counter(msg: &mut Message) {
    expr(msg, "counter", |m| {
        m.attr(1, &0u64.to_be_bytes()) // NFTA_COUNTER_BYTES
            .attr(2, &0u64.to_be_bytes()); // NFTA_COUNTER_PACKETS
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_reads_its_handle_and_comment_match() {
        let mut info = b"minidock:abc:8080:80/tcp".to_vec();
        info.resize(256, 0);
        let mut msg = Message::new(NFT_MSG_NEWRULE, 0);
        msg.raw(&nfgenmsg(NFPROTO_IPV4, 0))
            .attr_str(NFTA_RULE_TABLE, "nat")
            .attr(NFTA_RULE_HANDLE, &7u64.to_be_bytes())
            .begin_nested(NFTA_RULE_EXPRESSIONS)
            .begin_nested(NFTA_LIST_ELEM)
            .attr_str(NFTA_EXPR_NAME, "counter")
            .end_nested()
            .begin_nested(NFTA_LIST_ELEM)
            .attr_str(NFTA_EXPR_NAME, "match")
            .begin_nested(NFTA_EXPR_DATA)
            .attr_str(NFTA_MATCH_NAME, "comment")
            .attr(NFTA_MATCH_INFO, &info)
            .end_nested()
            .end_nested()
            .end_nested();
        let bytes = msg.finish(1).to_vec();
        let rule = parse_rule(&bytes[16..]).unwrap();
        assert_eq!(rule.handle, 7);
        assert_eq!(rule.comment.as_deref(), Some("minidock:abc:8080:80/tcp"));
    }

    #[test]
    fn a_comment_in_user_data_is_read_too() {
        let mut data = vec![1, 2, 9, 9, UDATA_RULE_COMMENT, 4];
        data.extend_from_slice(b"abc\0");
        assert_eq!(comment_udata(&data).as_deref(), Some("abc"));
        assert_eq!(comment_udata(&[0, 9, 1]), None);
    }
}
