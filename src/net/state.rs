//! The network state directory (`/var/lib/minidock/network` by default): the IPAM pools, one
//! record per bridge and per container (with the exact NAT rules added for it), and what we
//! changed in the host's sysctls. Every change happens under one `flock(2)` and every file is
//! replaced atomically (write a temp file, fsync, rename(2)), so a crash leaves either the old
//! or the new version of a file, never half of one. The records of a running container skip
//! the fsync ([`StateDir::write_unsynced`]): a power cut ends what they describe.

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The default state root of the network module.
pub const DEFAULT_ROOT: &str = "/var/lib/minidock/network";

#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// Held while reading and changing the state; dropping it releases the lock.
pub struct StateLock {
    _lock: Flock<File>,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    // ANCHOR: state_lock
    /// Takes the exclusive lock. flock(2) locks belong to the open file description, so two
    /// processes, or two threads that each opened the file, exclude each other; the kernel
    /// drops the lock when its holder dies, so a crash never leaves the state locked.
    pub fn lock(&self) -> Result<StateLock> {
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("creating the state dir {}", self.root.display()))?;
        let path = self.root.join(".lock");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| errno)
            .with_context(|| format!("flock({}, LOCK_EX)", path.display()))?;
        Ok(StateLock { _lock: lock })
    }
    // ANCHOR_END: state_lock

    pub fn read<T: DeserializeOwned>(&self, rel: &str) -> Result<Option<T>> {
        let path = self.root.join(rel);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("parsing {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    // ANCHOR: atomic_write
    /// Replaces `rel` atomically: readers see the old file or the new one, never a mix.
    pub fn write<T: Serialize>(&self, rel: &str, value: &T) -> Result<()> {
        self.replace(rel, value, true)
    }

    /// [`StateDir::write`] without the fsync, for the records of a running container (its
    /// attachments and its address leases): readers still see the old or the new file, and
    /// only a power cut can lose the last version, when it has also ended the container,
    /// its veths and its rules; a lease whose owner is gone is reclaimed by the next
    /// allocation. The same reasoning as `crate::state::write_atomic_unsynced`.
    pub fn write_unsynced<T: Serialize>(&self, rel: &str, value: &T) -> Result<()> {
        self.replace(rel, value, false)
    }

    fn replace<T: Serialize>(&self, rel: &str, value: &T, sync: bool) -> Result<()> {
        let path = self.root.join(rel);
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut bytes = serde_json::to_vec_pretty(value)?;
        bytes.push(b'\n');
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            path.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let result = (|| -> Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(&bytes)?;
            // fsync before rename: otherwise after a power cut the new name could point at
            // a file whose data never reached the disk.
            if sync {
                file.sync_all()?;
            }
            std::fs::rename(&tmp, &path)?;
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.with_context(|| format!("writing {}", path.display()))
    }
    // ANCHOR_END: atomic_write

    pub fn remove(&self, rel: &str) -> Result<()> {
        let path = self.root.join(rel);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
        }
    }

    /// The names (without `.json`) of the records in directory `rel`, sorted.
    pub fn list(&self, rel: &str) -> Result<Vec<String>> {
        let dir = self.root.join(rel);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        };
        let mut names = Vec::new();
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".json")
                && !stem.starts_with('.')
            {
                names.push(stem.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        state.write("a/b.json", &vec![1, 2, 3]).unwrap();
        state.write("a/b.json", &vec![4]).unwrap();
        assert_eq!(state.read::<Vec<i32>>("a/b.json").unwrap(), Some(vec![4]));
        assert_eq!(state.list("a").unwrap(), vec!["b".to_string()]);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(state.read::<Vec<i32>>("missing.json").unwrap(), None);
        state.remove("a/b.json").unwrap();
        state.remove("a/b.json").unwrap();
    }
}
