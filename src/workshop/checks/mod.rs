//! One check per lesson, grouped by mechanism. Each runs the learner's binary and reads the
//! kernel's own evidence; none trusts what the binary says about itself alone.

mod cgroup;
mod net;
mod ns;
mod overlay;

use super::Observation;
use anyhow::{Result, bail};
use std::path::Path;

type Check = fn(&Path) -> Result<Vec<Observation>>;

/// The table of checks, by lesson id. A lesson id in `lessons.toml` with no row here fails the
/// manifest test.
const CHECKS: &[(u32, Check)] = &[
    (1, ns::lesson01_uts),
    (2, ns::lesson02_pid),
    (3, ns::lesson03_pivot_root),
];

pub fn has_check(id: u32) -> bool {
    CHECKS.iter().any(|(lesson, _)| *lesson == id)
}

pub fn run(id: u32, bin: &Path) -> Result<Vec<Observation>> {
    match CHECKS.iter().find(|(lesson, _)| *lesson == id) {
        Some((_, check)) => check(bin),
        None => bail!("lesson {id} has no check"),
    }
}
