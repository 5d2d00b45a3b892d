//! The misbehaving programs the tour and the tests run inside a cgroup, as hidden
//! `cgroup-demo` subcommands: a memory hog, a fork bomb, a busy loop. They report what they
//! did; the evidence that a limit worked always comes from the cgroup's own counters.

use anyhow::{Result, bail};
use nix::unistd::ForkResult;
use std::io::Write;
use std::time::{Duration, Instant};

/// Allocates `mib` MiB, one MiB at a time, and writes to every byte so the kernel really has
/// to back it with memory (an untouched allocation costs nothing: memory is charged to the
/// cgroup when a page is first written). Prints its progress every 8 MiB, so the output shows
/// how far it got before the OOM killer stopped it.
pub fn hog(mib: usize) -> Result<u8> {
    let mut kept: Vec<Vec<u8>> = Vec::with_capacity(mib);
    let mut out = std::io::stdout();
    for n in 1..=mib {
        kept.push(vec![0xA5; 1 << 20]);
        if n % 8 == 0 {
            writeln!(out, "hog: {n} MiB written")?;
            out.flush()?;
        }
    }
    std::hint::black_box(&kept);
    writeln!(out, "hog: all {mib} MiB written, and nothing stopped me")?;
    Ok(0)
}

/// How far a fork bomb may go outside a limit: it refuses to start when its cgroup allows more
/// tasks than this, so running it by mistake on the host cannot hurt.
const BOMB_SAFETY_LIMIT: u64 = 1000;

/// A fork bomb: every process forks as fast as it can, and every child does the same. The first
/// process reports the first fork that fails, and its errno (EAGAIN when `pids.max` refuses it).
/// With `hold`, it then waits to be killed (so a test can look at the host meanwhile).
pub fn forkbomb(hold: bool) -> Result<u8> {
    refuse_without_pids_limit()?;
    let mut forked = 0u64;
    loop {
        // SAFETY: this program is single-threaded; the child only loops on fork and sleep.
        match unsafe { nix::unistd::fork() } {
            Ok(ForkResult::Child) => bomb_forever(),
            Ok(ForkResult::Parent { .. }) => forked += 1,
            Err(errno) => {
                println!(
                    "forkbomb: fork number {} failed with {errno:?} ({}) after {forked} successful forks",
                    forked + 1,
                    errno.desc()
                );
                break;
            }
        }
    }
    if hold {
        println!("forkbomb: holding; kill me to end");
        loop {
            nix::unistd::pause();
        }
    }
    Ok(0)
}

/// The bomb's children: keep forking; after a refused fork, wait a little and try again, as a
/// real bomb would.
fn bomb_forever() -> ! {
    loop {
        // SAFETY: single-threaded child.
        match unsafe { nix::unistd::fork() } {
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Reads `pids.max` of our own cgroup: the bomb only goes off inside a limit.
fn refuse_without_pids_limit() -> Result<()> {
    let layout = super::detect()?;
    let dir = super::cgroup_dir_of(&layout, "pids", nix::unistd::getpid())?;
    let limit = match &dir {
        Some(dir) => super::read_optional(dir, "pids.max")?,
        None => None,
    };
    match limit.as_deref().map(str::trim) {
        Some(value) if value.parse::<u64>().is_ok_and(|n| n <= BOMB_SAFETY_LIMIT) => Ok(()),
        _ => bail!(
            "refusing to fork-bomb outside a pids limit of at most {BOMB_SAFETY_LIMIT} \
             (run it as: cgroup-demo run --pids 20 -- cgroup-demo forkbomb)"
        ),
    }
}

/// Spins on the CPU for `seconds` of wall time. How much CPU it actually got is measured from
/// its cgroup by whoever started it.
pub fn spin(seconds: f64) -> Result<u8> {
    if !(seconds.is_finite() && seconds > 0.0) {
        bail!("spin: --seconds must be a positive number");
    }
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let mut turns = 0u64;
    while Instant::now() < until {
        turns = std::hint::black_box(turns.wrapping_add(1));
    }
    Ok(0)
}
