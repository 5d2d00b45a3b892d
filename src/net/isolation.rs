//! Isolation between bridge networks, as Docker's `DOCKER-ISOLATION` chains: a container on
//! one network cannot reach a container on another through the host's routing. For every pair
//! of minidock bridges set up with NAT, two `FORWARD` rules drop what is routed from one to
//! the other, inserted first so the bridges' own accepts do not let it through. Traffic
//! inside one bridge is switched, not routed, and stays allowed; so does traffic to and from
//! the outside.
//!
//! The rules of each pair are recorded in `isolation.json` in the network state dir, so
//! [`unisolate`] deletes exactly those when a bridge goes.

use super::nat::{self, AppliedRule, RuleKind, RuleSpec};
use super::{BridgeRecord, StateDir};
use anyhow::Result;
use serde::{Deserialize, Serialize};

const RECORD: &str = "isolation.json";

/// The rules added for one pair of bridges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Pair {
    a: String,
    b: String,
    rules: Vec<AppliedRule>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    pairs: Vec<Pair>,
}

impl Pair {
    fn involves(&self, bridge: &str) -> bool {
        self.a == bridge || self.b == bridge
    }
}

/// The two rules that keep bridges `a` and `b` apart.
pub fn isolation_rules(a: &str, b: &str) -> Vec<RuleSpec> {
    let comment = format!("minidock:isolate:{a}:{b}");
    [(a, b), (b, a)]
        .into_iter()
        .map(|(from, to)| RuleSpec {
            kind: RuleKind::DropBetweenBridges {
                from: from.to_owned(),
                to: to.to_owned(),
            },
            comment: comment.clone(),
        })
        .collect()
}

// ANCHOR: isolate
/// Isolates bridge `bridge` from every other minidock bridge with the same NAT backend, for
/// the pairs that are not isolated yet. Idempotent; a bridge set up without NAT is left as is.
pub fn isolate(state: &StateDir, bridge: &str) -> Result<()> {
    let _lock = state.lock()?;
    let Some(me) = state.read::<BridgeRecord>(&format!("bridges/{bridge}.json"))? else {
        return Ok(());
    };
    let Some(backend) = me.backend else {
        return Ok(());
    };
    let mut record: Record = state.read(RECORD)?.unwrap_or_default();
    for other in state.list("bridges")? {
        let known = record
            .pairs
            .iter()
            .any(|p| p.involves(bridge) && p.involves(&other));
        if other == bridge || known {
            continue;
        }
        let Some(rec) = state.read::<BridgeRecord>(&format!("bridges/{other}.json"))? else {
            continue;
        };
        if rec.backend != Some(backend) {
            continue;
        }
        let rules = nat::add_rules(backend, &isolation_rules(bridge, &other))?;
        record.pairs.push(Pair {
            a: bridge.to_owned(),
            b: other,
            rules,
        });
        state.write(RECORD, &record)?;
    }
    Ok(())
}
// ANCHOR_END: isolate

/// Deletes the isolation rules of every pair `bridge` is in. Idempotent.
pub fn unisolate(state: &StateDir, bridge: &str) -> Result<()> {
    let _lock = state.lock()?;
    let Some(mut record) = state.read::<Record>(RECORD)? else {
        return Ok(());
    };
    while let Some(i) = record.pairs.iter().position(|p| p.involves(bridge)) {
        for rule in record.pairs[i].rules.iter().rev() {
            nat::delete_rule(rule)?;
        }
        record.pairs.remove(i);
        state.write(RECORD, &record)?;
    }
    if record.pairs.is_empty() {
        state.remove(RECORD)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_drops_both_directions_first_in_forward() {
        let rules = isolation_rules("br-aaa", "br-bbb");
        let text: Vec<String> = rules
            .iter()
            .map(|r| {
                let ipt = nat::render_iptables(r);
                format!(
                    "{} {} {} {}",
                    ipt.table,
                    ipt.chain,
                    ipt.insert,
                    ipt.spec.join(" ")
                )
            })
            .collect();
        assert_eq!(
            text,
            [
                "filter FORWARD true -i br-aaa -o br-bbb -m comment --comment minidock:isolate:br-aaa:br-bbb -j DROP",
                "filter FORWARD true -i br-bbb -o br-aaa -m comment --comment minidock:isolate:br-aaa:br-bbb -j DROP",
            ]
        );
        let (chain, nft) = nat::render_nft(&rules[0]);
        assert_eq!(chain, "forward");
        assert_eq!(
            nft,
            "iifname \"br-aaa\" oifname \"br-bbb\" drop comment \"minidock:isolate:br-aaa:br-bbb\""
        );
    }
}
