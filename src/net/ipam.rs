//! IP address management: hands out addresses from a subnet, one per container.
//!
//! The pool of a network lives in `ipam/<network>.json` under the state root and is only read
//! and changed under the state lock, so two `minidock run`s started at the same moment never
//! get the same address. Each allocation records its *owner* (a process, or a pinned
//! namespace): if the owner is gone, for example because minidock crashed before tearing a
//! container down, the address is reclaimed at the next allocation instead of leaking forever.

use super::state::StateDir;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::str::FromStr;

/// An IPv4 subnet like `10.88.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// The subnet an interface address like 192.168.1.7/24 is on (192.168.1.0/24).
    pub fn of(addr: Ipv4Addr, prefix: u8) -> Subnet {
        let prefix = prefix.min(32);
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Subnet {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        }
    }

    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & self.mask() == u32::from(self.network)
    }

    /// Two subnets overlap when one contains the other's network address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    /// The first usable address, the conventional gateway (`.1`).
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// How many addresses can go to hosts (network and broadcast excluded).
    pub fn host_count(&self) -> u32 {
        (!self.mask()).saturating_sub(1)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let (addr, prefix) = s.split_once('/').with_context(|| {
            format!("invalid subnet {s:?}: expected ADDRESS/PREFIX, like 10.88.0.0/16")
        })?;
        let addr: Ipv4Addr = addr
            .parse()
            .with_context(|| format!("invalid subnet {s:?}: {addr:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .with_context(|| {
                format!("invalid subnet {s:?}: the prefix must be 8 to 30 (a bridge needs a gateway and at least one container)")
            })?;
        let subnet = Subnet::of(addr, prefix);
        let network = subnet.network;
        if network != addr {
            bail!("invalid subnet {s:?}: host bits are set (did you mean {network}/{prefix}?)");
        }
        if addr.is_loopback() || addr.is_multicast() || addr.is_broadcast() || addr.is_unspecified()
        {
            bail!("invalid subnet {s:?}: not a unicast network");
        }
        Ok(subnet)
    }
}

impl TryFrom<String> for Subnet {
    type Error = anyhow::Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

// ANCHOR: owner
/// Who holds an address. An allocation whose owner is gone is stale and gets reclaimed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// A process (the container's init). The start time (field 22 of /proc/PID/stat) tells a
    /// recycled pid from the original process.
    Process { pid: i32, start_time: u64 },
    /// A namespace pinned at `path` (net-demo's containers); `inode` identifies it.
    PinnedNetns { path: PathBuf, inode: u64 },
}

impl Owner {
    pub fn process(pid: i32) -> Result<Owner> {
        let start_time = process_start_time(pid)
            .with_context(|| format!("reading the start time of process {pid}"))?;
        Ok(Owner::Process { pid, start_time })
    }

    pub fn is_alive(&self) -> bool {
        match self {
            Owner::Process { pid, start_time } => {
                process_start_time(*pid).is_some_and(|t| t == *start_time)
            }
            Owner::PinnedNetns { path, inode } => {
                super::netns::is_pinned(path)
                    && std::fs::metadata(path).is_ok_and(|m| m.ino() == *inode)
            }
        }
    }
}
// ANCHOR_END: owner

fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let after_comm = &stat[stat.rfind(')')? + 2..];
    // after_comm starts at field 3; the start time is field 22.
    after_comm.split(' ').nth(22 - 3)?.parse().ok()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub container: String,
    pub owner: Owner,
}

/// The pool of one network, as stored in `ipam/<network>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pool {
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// The last address handed out; the next search starts after it, so a just-released
    /// address is not reused at once (peers may still have it in their ARP caches).
    pub last: Option<Ipv4Addr>,
    pub allocations: BTreeMap<Ipv4Addr, Allocation>,
}

fn pool_file(network: &str) -> String {
    format!("ipam/{network}.json")
}

// ANCHOR: allocate
/// Allocates an address for `container` in `network`'s pool (created on first use). Returns
/// the container's existing address when it already has one. Takes the state lock itself.
pub fn allocate(
    state: &StateDir,
    network: &str,
    subnet: Subnet,
    gateway: Ipv4Addr,
    container: &str,
    owner: Owner,
) -> Result<Ipv4Addr> {
    allocate_requested(state, network, subnet, gateway, container, owner, None)
}

// ANCHOR_END: allocate

// ANCHOR: allocate_requested
/// [`allocate`], with `requested` (`--ip`) instead of the next free address when given: it
/// must be a host address of the subnet, not the gateway, and free (Docker's errors: `no
/// configured subnet contains IP ADDR`, `Address already in use`).
pub fn allocate_requested(
    state: &StateDir,
    network: &str,
    subnet: Subnet,
    gateway: Ipv4Addr,
    container: &str,
    owner: Owner,
    requested: Option<Ipv4Addr>,
) -> Result<Ipv4Addr> {
    let _lock = state.lock()?;
    let file = pool_file(network);
    let mut pool = load_pool(state, &file, network, subnet, gateway)?;
    // Reclaim what crashed owners left behind.
    pool.allocations.retain(|_, a| a.owner.is_alive());
    if let Some((addr, _)) = pool
        .allocations
        .iter()
        .find(|(_, a)| a.container == container)
    {
        return Ok(*addr);
    }
    let addr = match requested {
        Some(addr) => check_requested(&pool, addr)?,
        None => next_free(&pool, network)?,
    };
    record_allocation(state, &file, pool, addr, container, owner)
}
// ANCHOR_END: allocate_requested

// ANCHOR: load_pool
/// Reads the network's pool, or starts an empty one on first use. A pool is never reused
/// with another subnet: a network recreated with a new subnet must not hand out old addresses.
fn load_pool(
    state: &StateDir,
    file: &str,
    network: &str,
    subnet: Subnet,
    gateway: Ipv4Addr,
) -> Result<Pool> {
    Ok(match state.read::<Pool>(file)? {
        Some(pool) if pool.subnet != subnet => bail!(
            "network {network} already uses subnet {} (not {subnet})",
            pool.subnet
        ),
        Some(pool) => pool,
        None => Pool {
            subnet,
            gateway,
            last: None,
            allocations: BTreeMap::new(),
        },
    })
}
// ANCHOR_END: load_pool

/// The first and last host addresses of a subnet: neither its network address nor its
/// broadcast address.
fn host_range(subnet: Subnet) -> (u32, u32) {
    (
        u32::from(subnet.network) + 1,
        u32::from(subnet.broadcast()) - 1,
    )
}

// ANCHOR: check_requested
/// Checks an address asked for with `--ip`: a host address of the subnet that is neither the
/// gateway nor taken, with Docker's error messages.
fn check_requested(pool: &Pool, addr: Ipv4Addr) -> Result<Ipv4Addr> {
    let (first, last) = host_range(pool.subnet);
    if !(first..=last).contains(&u32::from(addr)) {
        bail!("no configured subnet contains IP {addr}");
    }
    if addr == pool.gateway || pool.allocations.contains_key(&addr) {
        bail!("Address already in use");
    }
    Ok(addr)
}
// ANCHOR_END: check_requested

// ANCHOR: next_free
/// The next free host address after the last one handed out, wrapping around the subnet: a
/// released address is not reused at once, while it may still sit in the neighbours' ARP
/// caches.
fn next_free(pool: &Pool, network: &str) -> Result<Ipv4Addr> {
    let subnet = pool.subnet;
    let (first, last) = host_range(subnet);
    let count = last - first + 1;
    let offset = pool
        .last
        .filter(|a| subnet.contains(*a))
        .map_or(0, |a| (u32::from(a) + 1).saturating_sub(first) % count);
    let free = (0..count)
        .map(|i| first + (offset + i) % count)
        .map(Ipv4Addr::from)
        .find(|a| *a != pool.gateway && !pool.allocations.contains_key(a));
    let Some(addr) = free else {
        bail!(
            "the address pool {subnet} of network {network} is exhausted ({} addresses in use)",
            pool.allocations.len()
        );
    };
    Ok(addr)
}
// ANCHOR_END: next_free

fn record_allocation(
    state: &StateDir,
    file: &str,
    mut pool: Pool,
    addr: Ipv4Addr,
    container: &str,
    owner: Owner,
) -> Result<Ipv4Addr> {
    pool.allocations.insert(
        addr,
        Allocation {
            container: container.to_owned(),
            owner,
        },
    );
    pool.last = Some(addr);
    crate::explain::step(
        "allocate an address (IPAM)",
        || {
            format!(
                "flock({}, LOCK_EX); rename(.., {file}) -> {addr}",
                state.path(".lock").display()
            )
        },
        crate::explain::Chapter::Networking,
    );
    state.write_unsynced(file, &pool)?;
    Ok(addr)
}

/// Releases `container`'s address. Returns it, or `None` when it had none (idempotent).
pub fn release(state: &StateDir, network: &str, container: &str) -> Result<Option<Ipv4Addr>> {
    let _lock = state.lock()?;
    let file = pool_file(network);
    let Some(mut pool) = state.read::<Pool>(&file)? else {
        return Ok(None);
    };
    let found = pool
        .allocations
        .iter()
        .find(|(_, a)| a.container == container)
        .map(|(addr, _)| *addr);
    if let Some(addr) = found {
        pool.allocations.remove(&addr);
        state.write_unsynced(&file, &pool)?;
    }
    Ok(found)
}

/// The pool of `network`, if it has one.
pub fn pool(state: &StateDir, network: &str) -> Result<Option<Pool>> {
    state.read(&pool_file(network))
}

/// Deletes `network`'s pool file (when its bridge is torn down).
pub fn remove_pool(state: &StateDir, network: &str) -> Result<()> {
    state.remove(&pool_file(network))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Owner {
        Owner::process(std::process::id() as i32).unwrap()
    }

    #[test]
    fn subnets_parse_and_bad_ones_are_refused_with_a_reason() {
        let s: Subnet = "10.88.0.0/16".parse().unwrap();
        assert_eq!(s.to_string(), "10.88.0.0/16");
        assert_eq!(s.first_host(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 88, 255, 255));
        assert!(s.contains(Ipv4Addr::new(10, 88, 3, 4)));
        assert!(!s.contains(Ipv4Addr::new(10, 89, 0, 1)));
        for (bad, why) in [
            ("10.88.0.1/16", "did you mean 10.88.0.0/16"),
            ("10.88.0.0", "expected ADDRESS/PREFIX"),
            ("10.88.0.0/31", "prefix must be 8 to 30"),
            ("10.88.0.0/x", "prefix must be 8 to 30"),
            ("300.1.0.0/16", "not an IPv4 address"),
            ("127.0.0.0/8", "not a unicast network"),
        ] {
            let err = bad.parse::<Subnet>().unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn overlap_is_symmetric() {
        let a: Subnet = "10.88.0.0/16".parse().unwrap();
        let b: Subnet = "10.88.4.0/24".parse().unwrap();
        let c: Subnet = "10.89.0.0/16".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert_eq!(Subnet::of(Ipv4Addr::new(10, 88, 4, 7), 24), b);
        assert!(!a.overlaps(&c) && !c.overlaps(&a));
    }

    #[test]
    fn addresses_skip_the_gateway_and_the_pool_runs_out_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let subnet: Subnet = "10.1.2.0/29".parse().unwrap(); // .1 to .6 usable, .1 is gateway
        let gw = subnet.first_host();
        let mut got = Vec::new();
        for i in 0..5 {
            got.push(allocate(&state, "n", subnet, gw, &format!("c{i}"), me()).unwrap());
        }
        assert_eq!(got[0], Ipv4Addr::new(10, 1, 2, 2));
        assert!(!got.contains(&gw));
        let err = allocate(&state, "n", subnet, gw, "c9", me()).unwrap_err();
        assert!(
            err.to_string()
                .contains("is exhausted (5 addresses in use)"),
            "{err}"
        );
        // Asking again for the same container gives the same address.
        assert_eq!(
            allocate(&state, "n", subnet, gw, "c3", me()).unwrap(),
            got[3]
        );
        assert_eq!(release(&state, "n", "c3").unwrap(), Some(got[3]));
        assert_eq!(release(&state, "n", "c3").unwrap(), None);
        assert_eq!(
            allocate(&state, "n", subnet, gw, "c9", me()).unwrap(),
            got[3]
        );
        let other: Subnet = "10.1.3.0/29".parse().unwrap();
        let err = allocate(&state, "n", other, gw, "x", me()).unwrap_err();
        assert!(
            err.to_string().contains("already uses subnet 10.1.2.0/29"),
            "{err}"
        );
    }

    #[test]
    fn a_released_address_is_not_reused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let subnet: Subnet = "10.1.2.0/24".parse().unwrap();
        let gw = subnet.first_host();
        let a = allocate(&state, "n", subnet, gw, "a", me()).unwrap();
        release(&state, "n", "a").unwrap();
        let b = allocate(&state, "n", subnet, gw, "b", me()).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn addresses_of_dead_owners_are_reclaimed() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let subnet: Subnet = "10.1.2.0/30".parse().unwrap(); // one usable address besides .1
        let gw = subnet.first_host();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = Owner::process(child.id() as i32).unwrap();
        child.wait().unwrap();
        assert!(!dead.is_alive());
        let a = allocate(&state, "n", subnet, gw, "crashed", dead).unwrap();
        let b = allocate(&state, "n", subnet, gw, "next", me()).unwrap();
        assert_eq!(a, b, "the crashed container's address is reused");
        // A recycled pid with another start time is not the owner either.
        let pid = std::process::id() as i32;
        let recycled = Owner::Process {
            pid,
            start_time: process_start_time(pid).unwrap() + 1,
        };
        assert!(!recycled.is_alive());
        assert!(me().is_alive());
    }

    // ANCHOR: parallel_allocations
    #[test]
    fn fifty_parallel_allocations_get_fifty_distinct_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let subnet: Subnet = "10.77.0.0/24".parse().unwrap();
        let threads: Vec<_> = (0..50)
            .map(|i| {
                let root = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    // Each thread opens the lock file itself: a separate open file description,
                    // exactly like a separate process.
                    let state = StateDir::new(root);
                    allocate(
                        &state,
                        "n",
                        subnet,
                        subnet.first_host(),
                        &format!("c{i}"),
                        me(),
                    )
                    .unwrap()
                })
            })
            .collect();
        let mut addrs: Vec<Ipv4Addr> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        addrs.sort();
        addrs.dedup();
        assert_eq!(addrs.len(), 50);
        let pool = pool(&StateDir::new(dir.path()), "n").unwrap().unwrap();
        assert_eq!(pool.allocations.len(), 50);
    }
    // ANCHOR_END: parallel_allocations
}
