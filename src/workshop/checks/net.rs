//! Checks for the networking lessons (08 veth, 09 bridge and published port).
//!
//! Each check runs in a private network namespace of its own (`net::netns::isolated`), so a
//! learner's half-finished program can only ever change that throwaway network, never the
//! host's. The "containers" are `sleep` processes, each alone in a new network namespace. After
//! the learner's program ran, the check asks the kernel over netlink what links, addresses and
//! routes exist inside each namespace, then sends real traffic: a ping, and for lesson 09 an
//! HTTP request through the published port to a server the check itself starts inside the
//! container.

use super::{Need, Trace, describe_failure, require_root, run_captured};
use crate::net::netlink::Netlink;
use crate::net::{Netns, netns, probe};
use crate::workshop::Observation;
use anyhow::{Context, Result};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const PING: Duration = Duration::from_secs(3);

/// A process alone in a new network namespace; killed on drop.
struct Container {
    child: Child,
}

impl Container {
    fn start() -> Result<Container> {
        let mut cmd = Command::new("sleep");
        cmd.arg("600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: unshare(2) is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)
            });
        }
        // spawn() returns after the exec succeeded, so the unshare has happened by then.
        let child = cmd
            .spawn()
            .context("starting a `sleep` in a new network namespace")?;
        Ok(Container { child })
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn netns(&self) -> Result<Netns> {
        Netns::of_pid(self.child.id() as i32)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `NAME (KIND) UP 10.0.0.1/24` for the link called `name`, as the kernel reports it.
fn link_summary(nl: &mut Netlink, name: &str) -> Result<Option<(String, bool)>> {
    let links = nl.links()?;
    let Some(link) = links.iter().find(|l| l.name == name) else {
        return Ok(None);
    };
    let addrs: Vec<String> = nl
        .addresses()?
        .into_iter()
        .filter(|a| a.index == link.index)
        .map(|a| format!("{}/{}", a.address, a.prefix))
        .collect();
    let master = link
        .master
        .and_then(|m| links.iter().find(|l| l.index == m))
        .map(|m| format!(" master {}", m.name))
        .unwrap_or_default();
    let text = format!(
        "{name} ({}) {} {}{master}",
        link.kind.as_deref().unwrap_or("?"),
        if link.up { "UP" } else { "DOWN" },
        if addrs.is_empty() {
            "(no address)".into()
        } else {
            addrs.join(" ")
        }
    );
    Ok(Some((text, link.up)))
}

/// One observation about a link: it exists with `kind`, is up, and (if given) has `address`
/// and is attached to `master`.
fn link_observation(
    what: &str,
    nl: &mut Netlink,
    name: &str,
    kind: &str,
    address: Option<&str>,
    master: Option<&str>,
) -> Result<Observation> {
    let mut expected = format!("{name} ({kind}) UP");
    if let Some(a) = address {
        expected.push_str(&format!(" {a}"));
    }
    if let Some(m) = master {
        expected.push_str(&format!(" master {m}"));
    }
    Ok(match link_summary(nl, name)? {
        None => Observation::judged(what, expected, format!("no link named {name}"), false)
            .likely(format!(
                "no {name} in this namespace: a link lives in exactly one network namespace, and one made in the host's namespace stays there. Was {name} made in (or moved into) this one?"
            )),
        Some((actual, up)) => {
            let ok = up
                && actual.starts_with(&format!("{name} ({kind})"))
                && address.is_none_or(|a| actual.split(' ').any(|w| w == a))
                && master.is_none_or(|m| actual.ends_with(&format!(" master {m}")));
            Observation::judged(what, expected, actual, ok).likely(format!(
                "{name} is here but not configured as asked: `ip` configures the namespace of the process that runs it, so configure {name} from inside its namespace, and bring it up"
            ))
        }
    })
}

fn ping_observation(what: &str, from: Option<&Netns>, to: Ipv4Addr) -> Observation {
    match probe::ping(from, to, PING) {
        Ok(rtt) => Observation::judged(
            what,
            "an echo reply",
            format!("echo reply in {:.3} ms", rtt.as_secs_f64() * 1000.0),
            true,
        ),
        Err(err) => Observation::judged(what, "an echo reply", format!("{err:#}"), false)
            .likely("no echo reply: both ends must be up, in their namespaces, with addresses of one subnet"),
    }
}

fn program_observation(output: &std::process::Output) -> Option<Observation> {
    (!output.status.success()).then(|| {
        Observation::judged(
            "the program itself",
            "exit status 0",
            describe_failure(output),
            false,
        )
    })
}

pub fn lesson08_veth(bin: &Path) -> Result<Vec<Observation>> {
    require_root()?;
    netns::isolated(|| {
        let trace = Trace::new(bin, None)?;
        let (a, b) = (Container::start()?, Container::start()?);
        let output = run_captured(trace.command().arg(a.pid()).arg(b.pid()), LIMIT)?;
        let (ns_a, ns_b) = (a.netns()?, b.netns()?);
        let mut observations = vec![
            trace.observe(&[Need::Join("CLONE_NEWNET")]),
            link_observation(
                "the veth end in A's namespace",
                &mut ns_a.netlink()?,
                "veth-a",
                "veth",
                Some("10.0.0.1/24"),
                None,
            )?,
            link_observation(
                "the veth end in B's namespace",
                &mut ns_b.netlink()?,
                "veth-b",
                "veth",
                Some("10.0.0.2/24"),
                None,
            )?,
            ping_observation(
                "ping 10.0.0.2 from A",
                Some(&ns_a),
                Ipv4Addr::new(10, 0, 0, 2),
            ),
            ping_observation(
                "ping 10.0.0.1 from B",
                Some(&ns_b),
                Ipv4Addr::new(10, 0, 0, 1),
            ),
        ];
        observations.extend(program_observation(&output));
        Ok(observations)
    })
}

/// The misunderstanding behind a published port the host itself cannot reach.
const PUBLISH_FROM_HOST: &str = "the host's own connections to 127.0.0.1:8080 never pass nat PREROUTING (only packets arriving from outside do): they go through the nat table's OUTPUT chain, and after DNAT they need route_localnet=1 on br0 and a MASQUERADE of 127.0.0.0/8 leaving br0. Is the DNAT in PREROUTING only?";

pub fn lesson09_bridge_publish(bin: &Path) -> Result<Vec<Observation>> {
    require_root()?;
    netns::isolated(|| {
        let trace = Trace::new(bin, None)?;
        let container = Container::start()?;
        let output = run_captured(trace.command().arg(container.pid()), LIMIT)?;
        let ns = container.netns()?;
        let mut host = Netlink::open()?;
        let mut inside = ns.netlink()?;
        let mut observations = vec![
            trace.observe(&[Need::Join("CLONE_NEWNET")]),
            link_observation(
                "the bridge on the host",
                &mut host,
                "br0",
                "bridge",
                Some("10.0.0.1/24"),
                None,
            )?,
            link_observation(
                "the host end of the veth pair",
                &mut host,
                "veth0",
                "veth",
                None,
                Some("br0"),
            )?,
            link_observation(
                "the container's end",
                &mut inside,
                "eth0",
                "veth",
                Some("10.0.0.2/24"),
                None,
            )?,
        ];
        let default = inside.routes()?.into_iter().find(|r| r.prefix == 0);
        observations.push(Observation::equal(
            "the container's default route",
            "via 10.0.0.1",
            default.map_or("none".into(), |r| {
                r.gateway
                    .map_or("no gateway".into(), |g| format!("via {g}"))
            }),
        ).likely("no default route in the container: its answers to anything outside 10.0.0.0/24 have no way out"));
        observations.push(ping_observation(
            "ping 10.0.0.2 from the host",
            None,
            Ipv4Addr::new(10, 0, 0, 2),
        ));
        // A secret only the server in the container knows, so no other answer can pass.
        let secret = format!(
            "lesson09 secret {:x}\n",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
                ^ u128::from(std::process::id())
        );
        let _server = probe::HttpServer::start(Some(&ns), 80, secret.clone())
            .context("starting the HTTP server in the container")?;
        let fetched = probe::http_get(None, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
        observations.push(match fetched {
            Ok((_, body)) => Observation::equal(
                "GET http://127.0.0.1:8080/ on the host reaches the container's port 80",
                secret.trim(),
                body.trim(),
            ),
            Err(err) => Observation::judged(
                "GET http://127.0.0.1:8080/ on the host reaches the container's port 80",
                secret.trim(),
                format!("{err:#}"),
                false,
            )
            .likely(PUBLISH_FROM_HOST),
        });
        observations.extend(program_observation(&output));
        Ok(observations)
    })
}
