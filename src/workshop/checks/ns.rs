//! Checks for the namespace lessons.
use crate::workshop::Observation;
use anyhow::{Result, bail};
use std::path::Path;

pub fn lesson01_uts(_bin: &Path) -> Result<Vec<Observation>> {
    bail!("not written yet")
}
pub fn lesson02_pid(_bin: &Path) -> Result<Vec<Observation>> {
    bail!("not written yet")
}
pub fn lesson03_pivot_root(_bin: &Path) -> Result<Vec<Observation>> {
    bail!("not written yet")
}
